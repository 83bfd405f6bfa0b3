//! OCI runtime spec generation with Docker's semantics and defaults.
//!
//! [`build`] turns [`SpecOptions`] (what `docker run` flags mean once the engine resolved the
//! image config and the user) into an [`oci_spec::runtime::Spec`]. Docker's defaults: the 14
//! default capabilities, the default seccomp profile, masked and read-only paths, the standard
//! mounts, device cgroup rules, `PATH`, 64 MiB `/dev/shm`; `--privileged` lifts them.
//!
//! The spec is assembled as OCI JSON and decoded into the typed `Spec` (the builder API of
//! oci-spec would triple the code for the same checks); every value that comes from the user is
//! validated here first.

use crate::seccomp::{self, SeccompError};
use crate::user::ResolvedUser;
use oci_spec::runtime::{Capability, Spec};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Docker's default capabilities.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability known to the OCI spec types (what `ALL` and `--privileged` grant).
pub const ALL_CAPS: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETGID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
];

/// Docker's masked paths (moby `defaultLinuxMaskedPaths`, with /proc/interrupts and the CPU
/// thermal-throttle directories of advisory GHSA-6fw5-f8r9-fgfm): see [`default_masked_paths`].
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// [`DEFAULT_MASKED_PATHS`] plus `/sys/devices/system/cpu/cpuN/thermal_throttle` of every
/// possible CPU where it exists on this host (they leak host activity); computed once.
pub fn default_masked_paths() -> &'static [String] {
    static PATHS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let mut v: Vec<String> = DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        let possible =
            std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
        for cpu in parse_cpu_list(possible.trim()) {
            let p = format!("/sys/devices/system/cpu/cpu{cpu}/thermal_throttle");
            if Path::new(&p).exists() {
                v.push(p);
            }
        }
        v
    })
}

/// A kernel CPU list (`0-3,5,7-8`); malformed parts are skipped.
fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    // Bounded: a hostile or corrupt list must not make us loop for ever.
                    out.extend(a..=b.min(a.saturating_add(4096)));
                }
            }
            None => out.extend(part.trim().parse::<u32>().ok()),
        }
    }
    out
}

/// Docker's read-only paths.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default PATH.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default /dev/shm size (64 MiB).
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// Where `--init` mounts the init binary.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Docker's minimum memory limit.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Errors of spec generation.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A capability name that does not exist.
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    /// An unknown ulimit name.
    #[error("invalid ulimit type: {0}")]
    UnknownUlimit(String),
    /// soft > hard.
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitSoftAboveHard {
        /// soft
        soft: i64,
        /// hard
        hard: i64,
    },
    /// The requested hard limit is above the daemon's own hard limit.
    #[error("ulimit {name}: hard limit {requested} is above the daemon's hard limit {host}; raising a hard limit is not permitted on this host, use a value <= {host}")]
    UlimitAboveHost {
        /// ulimit name
        name: String,
        /// requested hard limit
        requested: String,
        /// the daemon's hard limit
        host: String,
    },
    /// Conflicting or out-of-range options, with Docker's wording.
    #[error("{0}")]
    Invalid(String),
    /// A `--device` that cannot be used.
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    Device {
        /// host path
        path: String,
        /// why
        reason: String,
    },
    /// The seccomp profile is invalid.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// Internal: the generated JSON did not decode as an OCI spec (a bug).
    #[error("internal error building the OCI spec: {0}")]
    Internal(String),
}

/// The seccomp mode (`--security-opt seccomp=`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SeccompMode {
    /// Docker's default profile.
    #[default]
    Default,
    /// `seccomp=unconfined`.
    Unconfined,
    /// A custom profile in Docker's JSON format.
    Custom(String),
}

/// The network namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum NetworkNs {
    /// A fresh namespace (loopback only until the engine configures it).
    #[default]
    New,
    /// The host's namespace (`--network host`).
    Host,
    /// Join an existing namespace (a bind-mounted netns file or `/proc/<pid>/ns/net`).
    Path(PathBuf),
}

/// A bind mount (`-v /host:/ctr:ro`, `--mount type=bind`).
#[derive(Debug, Clone, PartialEq)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Container path.
    pub destination: String,
    /// Read-only.
    pub readonly: bool,
    /// Propagation: private, rprivate (default), shared, rshared, slave, rslave.
    pub propagation: Option<String>,
    /// A plain bind (`bind-nonrecursive`) instead of a recursive one.
    pub non_recursive: bool,
}

/// A tmpfs mount (`--tmpfs /run:rw,size=64m`).
#[derive(Debug, Clone, PartialEq)]
pub struct TmpfsMount {
    /// Container path.
    pub destination: String,
    /// Docker's option string (comma separated), may be empty.
    pub options: String,
}

/// A `--device host[:container[:perms]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMapping {
    /// Host device node.
    pub path_on_host: PathBuf,
    /// Path in the container (defaults to the host path when empty).
    pub path_in_container: String,
    /// cgroup permissions, "rwm" by default.
    pub cgroup_permissions: String,
}

/// A `--ulimit name=soft:hard`. Negative values mean unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct Ulimit {
    /// nofile, nproc, core, …
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// Resource limits, in Docker's HostConfig units (0 = unset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// `-m`, bytes.
    pub memory: i64,
    /// `--memory-swap`, bytes of memory+swap; -1 unlimited; 0 = default (2× memory).
    pub memory_swap: i64,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: i64,
    /// `--cpus` × 1e9.
    pub nano_cpus: i64,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `--cpu-quota`, µs.
    pub cpu_quota: i64,
    /// `--cpu-period`, µs.
    pub cpu_period: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--pids-limit`; None, 0 or -1 = unlimited.
    pub pids_limit: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--blkio-weight` (10–1000, 0 = unset).
    pub blkio_weight: u16,
    /// `--memory-swappiness` (0–100; None = the kernel's default).
    pub memory_swappiness: Option<i64>,
    /// `--cpu-rt-period`, µs (0 = unset).
    pub cpu_realtime_period: i64,
    /// `--cpu-rt-runtime`, µs (0 = unset).
    pub cpu_realtime_runtime: i64,
    /// `--blkio-weight-device`: (device path, weight).
    pub blkio_weight_device: Vec<(String, u16)>,
    /// `--device-read-bps` (device path, bytes per second).
    pub blkio_read_bps: Vec<(String, u64)>,
    /// `--device-write-bps`.
    pub blkio_write_bps: Vec<(String, u64)>,
    /// `--device-read-iops`.
    pub blkio_read_iops: Vec<(String, u64)>,
    /// `--device-write-iops`.
    pub blkio_write_iops: Vec<(String, u64)>,
}

/// Everything [`build`] needs.
#[derive(Debug, Clone, Default)]
pub struct SpecOptions {
    /// The container's root filesystem (merged overlay dir).
    pub rootfs: PathBuf,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// Resolved entrypoint + cmd.
    pub args: Vec<String>,
    /// Image env + `-e`, in order (later wins).
    pub env: Vec<String>,
    /// Working directory; empty = "/".
    pub cwd: String,
    /// Resolved `--user` (+ `--group-add` in `additional_gids`), see [`crate::user::resolve`].
    pub user: ResolvedUser,
    /// Hostname (ignored with host UTS).
    pub hostname: String,
    /// Domain name.
    pub domainname: String,
    /// `-t`.
    pub tty: bool,
    /// Initial console size (height, width).
    pub console_size: Option<(u16, u16)>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=`.
    pub seccomp: SeccompMode,
    /// `--network`.
    pub network: NetworkNs,
    /// `--pid host`.
    pub pid_host: bool,
    /// `--ipc host`.
    pub ipc_host: bool,
    /// `--uts host`.
    pub uts_host: bool,
    /// Bind mounts.
    pub binds: Vec<BindMount>,
    /// tmpfs mounts.
    pub tmpfs: Vec<TmpfsMount>,
    /// Engine-provided /etc/hostname.
    pub hostname_path: Option<PathBuf>,
    /// Engine-provided /etc/hosts.
    pub hosts_path: Option<PathBuf>,
    /// Engine-provided /etc/resolv.conf.
    pub resolv_conf_path: Option<PathBuf>,
    /// Resource limits.
    pub resources: Resources,
    /// Whether the host accounts swap (see [`crate::cgroups::swap_accounting`]); when false,
    /// swap limits are left out like Docker does.
    pub swap_accounting: bool,
    /// cgroups path, e.g. `/berth/<id>`.
    pub cgroups_path: Option<String>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
    /// `--sysctl`.
    pub sysctls: BTreeMap<String, String>,
    /// `--shm-size` (None = 64 MiB).
    pub shm_size: Option<u64>,
    /// `--device`.
    pub devices: Vec<DeviceMapping>,
    /// `--init`: host path of the init binary (tini), mounted at /sbin/docker-init.
    pub init: Option<PathBuf>,
    /// Replaces the default masked paths.
    pub masked_paths: Option<Vec<String>>,
    /// Replaces the default read-only paths.
    pub readonly_paths: Option<Vec<String>>,
}

/// Normalizes a capability name to `CAP_X` and checks it exists. "ALL" is returned as "ALL".
pub fn normalize_capability(name: &str) -> Result<String, SpecError> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        // Double check against the OCI types so the spec always decodes.
        serde_json::from_value::<Capability>(Value::String(full.clone()))
            .map_err(|_| SpecError::UnknownCapability(full.clone()))?;
        Ok(full)
    } else {
        Err(SpecError::UnknownCapability(full))
    }
}

/// The kernel's number of a capability (`CAP_CHOWN` = 0 …).
pub fn capability_number(name: &str) -> Option<u32> {
    const ORDER: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    ORDER.iter().position(|c| *c == name).map(|i| i as u32)
}

/// The capability bounding set of this process (`CapBnd` in /proc/self/status). A container
/// cannot get more than its runtime has; on hosts (or in sandboxes) where some capability is
/// missing, `ALL` means "all that this host allows" instead of failing the container's start.
pub fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// Docker's capability computation (`caps.TweakCapabilities`), with `ALL` limited to the
/// capabilities in this host's bounding set.
pub fn effective_capabilities(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
) -> Result<Vec<String>, SpecError> {
    effective_capabilities_within(privileged, cap_add, cap_drop, host_bounding_set())
}

/// [`effective_capabilities`] for a given bounding set (testable).
pub fn effective_capabilities_within(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
    bounding: u64,
) -> Result<Vec<String>, SpecError> {
    let all: Vec<&str> = ALL_CAPS
        .iter()
        .copied()
        .filter(|c| capability_number(c).is_none_or(|n| n >= 64 || bounding & (1u64 << n) != 0))
        .collect();
    let adds = cap_add
        .iter()
        .map(|c| normalize_capability(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = cap_drop
        .iter()
        .map(|c| normalize_capability(c))
        .collect::<Result<Vec<_>, _>>()?;
    if privileged {
        return Ok(all.iter().map(|s| s.to_string()).collect());
    }
    let mut caps: Vec<String> = Vec::new();
    let push = |caps: &mut Vec<String>, c: &str| {
        if c != "ALL" && !caps.iter().any(|x| x == c) {
            caps.push(c.to_string());
        }
    };
    if adds.iter().any(|c| c == "ALL") {
        for c in &all {
            if !drops.iter().any(|d| d == c) {
                push(&mut caps, c);
            }
        }
    } else if drops.iter().any(|c| c == "ALL") {
        for c in &adds {
            push(&mut caps, c);
        }
    } else {
        for c in DEFAULT_CAPS {
            if !drops.iter().any(|d| d == c) {
                push(&mut caps, c);
            }
        }
        for c in &adds {
            push(&mut caps, c);
        }
    }
    Ok(caps)
}

fn rlimit_resource(name: &str) -> Option<(&'static str, libc::__rlimit_resource_t)> {
    Some(match name {
        "as" => ("RLIMIT_AS", libc::RLIMIT_AS),
        "core" => ("RLIMIT_CORE", libc::RLIMIT_CORE),
        "cpu" => ("RLIMIT_CPU", libc::RLIMIT_CPU),
        "data" => ("RLIMIT_DATA", libc::RLIMIT_DATA),
        "fsize" => ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        "locks" => ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        "memlock" => ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        "msgqueue" => ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        "nice" => ("RLIMIT_NICE", libc::RLIMIT_NICE),
        "nofile" => ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        "nproc" => ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        "rss" => ("RLIMIT_RSS", libc::RLIMIT_RSS),
        "rtprio" => ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        "rttime" => ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
        "sigpending" => ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        "stack" => ("RLIMIT_STACK", libc::RLIMIT_STACK),
        _ => return None,
    })
}

fn rlim(v: i64) -> u64 {
    if v < 0 {
        u64::MAX
    } else {
        v as u64
    }
}

fn show_rlim(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// The daemon's current hard limit for a resource.
fn host_hard_limit(res: libc::__rlimit_resource_t) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid, properly aligned struct passed.
    let rc = unsafe { libc::getrlimit(res, &mut r) };
    if rc != 0 {
        return u64::MAX;
    }
    r.rlim_max
}

fn ulimits_json(ulimits: &[Ulimit]) -> Result<Vec<Value>, SpecError> {
    let mut out = Vec::new();
    for u in ulimits {
        let (typ, res) =
            rlimit_resource(&u.name).ok_or_else(|| SpecError::UnknownUlimit(u.name.clone()))?;
        let (soft, hard) = (rlim(u.soft), rlim(u.hard));
        if soft > hard {
            return Err(SpecError::UlimitSoftAboveHard {
                soft: u.soft,
                hard: u.hard,
            });
        }
        let host = host_hard_limit(res);
        if hard > host {
            return Err(SpecError::UlimitAboveHost {
                name: u.name.clone(),
                requested: show_rlim(hard),
                host: show_rlim(host),
            });
        }
        out.push(json!({"type": typ, "hard": hard, "soft": soft}));
    }
    Ok(out)
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// Docker's environment: PATH default, HOSTNAME, TERM=xterm with a tty, then the given env
/// (replacing same-named entries), then HOME from passwd if still unset.
pub fn build_env(opts: &SpecOptions) -> Vec<String> {
    process_env(
        &opts.hostname,
        opts.tty,
        &opts.env,
        opts.user.home.as_deref(),
    )
}

/// The environment of a container process (init or exec), as moby's
/// `CreateDaemonEnvironment` and exec build it: Docker's default PATH, `HOSTNAME`, `TERM=xterm`
/// with a tty, then `env` (the container's, then an exec's own) replacing same-named entries,
/// then `HOME` from the user's passwd entry (or `/`) if still unset. An image without PATH
/// (any image made by `import`) thus still finds its binaries.
pub fn process_env(hostname: &str, tty: bool, env: &[String], home: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = vec![DEFAULT_PATH_ENV.to_string()];
    if !hostname.is_empty() {
        out.push(format!("HOSTNAME={hostname}"));
    }
    if tty {
        out.push("TERM=xterm".into());
    }
    for e in env {
        let k = env_key(e);
        if let Some(slot) = out.iter_mut().find(|x| env_key(x) == k) {
            *slot = e.clone();
        } else {
            out.push(e.clone());
        }
    }
    if !out.iter().any(|e| env_key(e) == "HOME") {
        let home = home.filter(|h| !h.is_empty()).unwrap_or("/");
        out.push(format!("HOME={home}"));
    }
    out
}

/// Docker's tmpfs option merge: defaults `noexec,nosuid,nodev,rprivate`, then the user's
/// options; a later flag overrides its opposite, a later `key=value` its key.
pub fn tmpfs_options(user: &str) -> Vec<String> {
    const PAIRS: &[(&str, &str)] = &[
        ("exec", "noexec"),
        ("suid", "nosuid"),
        ("dev", "nodev"),
        ("rw", "ro"),
        ("atime", "noatime"),
        ("diratime", "nodiratime"),
        ("relatime", "norelatime"),
        ("strictatime", "nostrictatime"),
        ("sync", "async"),
        ("mand", "nomand"),
    ];
    const PROPAGATION: &[&str] = &[
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ];
    let mut out: Vec<String> = vec![
        "noexec".into(),
        "nosuid".into(),
        "nodev".into(),
        "rprivate".into(),
    ];
    for opt in user.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((k, _)) = opt.split_once('=') {
            out.retain(|o| o.split_once('=').map(|(ok, _)| ok) != Some(k));
        } else if PROPAGATION.contains(&opt) {
            out.retain(|o| !PROPAGATION.contains(&o.as_str()));
        } else if let Some(&(a, b)) = PAIRS.iter().find(|(a, b)| *a == opt || *b == opt) {
            out.retain(|o| o != a && o != b);
        } else {
            out.retain(|o| o != opt);
        }
        out.push(opt.to_string());
    }
    out
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

fn depth(p: &str) -> usize {
    Path::new(p).components().count()
}

fn device_json(d: &DeviceMapping) -> Result<(Value, Value), SpecError> {
    let err = |reason: String| SpecError::Device {
        path: d.path_on_host.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(&d.path_on_host).map_err(|e| err(e.to_string()))?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else if ft.is_dir() {
        return Err(err(
            "not implemented: mapping a directory of devices; pass each device node".into(),
        ));
    } else {
        return Err(err("not a device node".into()));
    };
    let perms = if d.cgroup_permissions.is_empty() {
        "rwm".to_string()
    } else {
        d.cgroup_permissions.clone()
    };
    if perms.is_empty() || !perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(err(format!("invalid device cgroup permissions {perms:?}")));
    }
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev) as i64, libc::minor(rdev) as i64);
    let dest = if d.path_in_container.is_empty() {
        d.path_on_host.display().to_string()
    } else {
        d.path_in_container.clone()
    };
    let dev = json!({
        "path": dest, "type": typ, "major": major, "minor": minor,
        "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid(),
    });
    let rule = json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": perms});
    Ok((dev, rule))
}

fn default_device_rules() -> Vec<Value> {
    let allow = |t: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut m = Map::new();
        m.insert("allow".into(), json!(true));
        m.insert("type".into(), json!(t));
        if let Some(v) = major {
            m.insert("major".into(), json!(v));
        }
        if let Some(v) = minor {
            m.insert("minor".into(), json!(v));
        }
        m.insert("access".into(), json!(access));
        Value::Object(m)
    };
    vec![
        json!({"allow": false, "access": "rwm"}),
        allow("c", Some(1), Some(3), "rwm"), // null
        allow("c", Some(1), Some(5), "rwm"), // zero
        allow("c", Some(1), Some(7), "rwm"), // full
        allow("c", Some(1), Some(8), "rwm"), // random
        allow("c", Some(1), Some(9), "rwm"), // urandom
        allow("c", Some(5), Some(0), "rwm"), // tty
        allow("c", Some(5), Some(1), "rwm"), // console
        allow("c", Some(136), None, "rwm"),  // pts
        allow("c", Some(5), Some(2), "rwm"), // ptmx
        json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}), // fuse
        // mknod of any device node (CAP_MKNOD); after the fuse deny: cgroup v1 cannot punch a
        // hole into a wildcard rule.
        allow("c", None, None, "m"),
        allow("b", None, None, "m"),
    ]
}

fn resources_json(opts: &SpecOptions, device_rules: Vec<Value>) -> Result<Value, SpecError> {
    let r = &opts.resources;
    let mut res = Map::new();
    res.insert("devices".into(), Value::Array(device_rules));
    let mut mem = Map::new();
    if r.memory != 0 && r.memory < MIN_MEMORY {
        return Err(SpecError::Invalid(
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    if r.memory > 0 {
        mem.insert("limit".into(), json!(r.memory));
    }
    if opts.swap_accounting {
        let swap = match (r.memory, r.memory_swap) {
            (m, 0) if m > 0 => Some(m * 2),
            (_, -1) => Some(-1),
            (m, s) if s > 0 => {
                if m > 0 && s < m {
                    return Err(SpecError::Invalid(
                        "Minimum memoryswap limit should be larger than memory limit, see usage"
                            .into(),
                    ));
                }
                if m == 0 {
                    return Err(SpecError::Invalid(
                        "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
                    ));
                }
                Some(s)
            }
            _ => None,
        };
        if let Some(s) = swap {
            mem.insert("swap".into(), json!(s));
        }
    }
    if r.memory_reservation > 0 {
        if r.memory > 0 && r.memory_reservation > r.memory {
            return Err(SpecError::Invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage"
                    .into(),
            ));
        }
        mem.insert("reservation".into(), json!(r.memory_reservation));
    }
    if r.oom_kill_disable {
        mem.insert("disableOOMKiller".into(), json!(true));
    }
    if let Some(sw) = r.memory_swappiness {
        if !(0..=100).contains(&sw) {
            return Err(SpecError::Invalid(format!(
                "Invalid value: {sw}, valid memory swappiness range is 0-100"
            )));
        }
        mem.insert("swappiness".into(), json!(sw));
    }
    if !mem.is_empty() {
        res.insert("memory".into(), Value::Object(mem));
    }
    let mut cpu = Map::new();
    if r.nano_cpus != 0 {
        if r.cpu_period != 0 {
            return Err(SpecError::Invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        if r.cpu_quota != 0 {
            return Err(SpecError::Invalid(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
            ));
        }
        if r.nano_cpus < 0 {
            return Err(SpecError::Invalid(
                "Range of CPUs is from 0.01 to the number of CPUs available".into(),
            ));
        }
        let period: i64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(r.nano_cpus * period / 1_000_000_000));
    }
    if r.cpu_period != 0 {
        if !(1000..=1_000_000).contains(&r.cpu_period) {
            return Err(SpecError::Invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into(),
            ));
        }
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if r.cpu_quota != 0 {
        if r.cpu_quota > 0 && r.cpu_quota < 1000 {
            return Err(SpecError::Invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
            ));
        }
        cpu.insert("quota".into(), json!(r.cpu_quota));
    }
    if r.cpu_shares != 0 {
        if r.cpu_shares < 0 {
            return Err(SpecError::Invalid("invalid CPU shares".into()));
        }
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.cpu_realtime_period != 0 {
        cpu.insert("realtimePeriod".into(), json!(r.cpu_realtime_period));
    }
    if r.cpu_realtime_runtime != 0 {
        cpu.insert("realtimeRuntime".into(), json!(r.cpu_realtime_runtime));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = r.pids_limit {
        if p > 0 {
            res.insert("pids".into(), json!({"limit": p}));
        }
    }
    let mut bio = Map::new();
    if r.blkio_weight != 0 {
        if !(10..=1000).contains(&r.blkio_weight) {
            return Err(SpecError::Invalid(
                "Range of blkio weight is from 10 to 1000".into(),
            ));
        }
        bio.insert("weight".into(), json!(r.blkio_weight));
    }
    if !r.blkio_weight_device.is_empty() {
        let mut v = Vec::new();
        for (path, weight) in &r.blkio_weight_device {
            let (major, minor) = block_device_numbers(path)?;
            v.push(json!({"major": major, "minor": minor, "weight": weight}));
        }
        bio.insert("weightDevice".into(), Value::Array(v));
    }
    for (key, list) in [
        ("throttleReadBpsDevice", &r.blkio_read_bps),
        ("throttleWriteBpsDevice", &r.blkio_write_bps),
        ("throttleReadIOPSDevice", &r.blkio_read_iops),
        ("throttleWriteIOPSDevice", &r.blkio_write_iops),
    ] {
        if list.is_empty() {
            continue;
        }
        let mut v = Vec::new();
        for (path, rate) in list {
            let (major, minor) = block_device_numbers(path)?;
            v.push(json!({"major": major, "minor": minor, "rate": rate}));
        }
        bio.insert(key.into(), Value::Array(v));
    }
    if !bio.is_empty() {
        res.insert("blockIO".into(), Value::Object(bio));
    }
    Ok(Value::Object(res))
}

/// The device numbers of a host block device path (moby stats the path the user named).
pub fn block_device_numbers(path: &str) -> Result<(u64, u64), SpecError> {
    let md =
        std::fs::metadata(path).map_err(|e| SpecError::Invalid(format!("stat {path}: {e}")))?;
    let rdev = md.rdev();
    Ok((libc::major(rdev) as u64, libc::minor(rdev) as u64))
}

/// Builds the OCI spec.
pub fn build(opts: &SpecOptions) -> Result<Spec, SpecError> {
    let caps = effective_capabilities(opts.privileged, &opts.cap_add, &opts.cap_drop)?;

    // Process.
    let mut args = opts.args.clone();
    if opts.init.is_some() {
        let mut a = vec![INIT_PATH.to_string(), "--".to_string()];
        a.append(&mut args);
        args = a;
    }
    if args.is_empty() {
        return Err(SpecError::Invalid("No command specified".into()));
    }
    let mut process = Map::new();
    process.insert("terminal".into(), json!(opts.tty));
    if opts.tty {
        if let Some((h, w)) = opts.console_size {
            process.insert("consoleSize".into(), json!({"height": h, "width": w}));
        }
    }
    let mut user = json!({"uid": opts.user.uid, "gid": opts.user.gid});
    if !opts.user.additional_gids.is_empty() {
        user["additionalGids"] = json!(opts.user.additional_gids);
    }
    process.insert("user".into(), user);
    process.insert("args".into(), json!(args));
    process.insert("env".into(), json!(build_env(opts)));
    let cwd = if opts.cwd.is_empty() { "/" } else { &opts.cwd };
    if !cwd.starts_with('/') {
        return Err(SpecError::Invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    process.insert("cwd".into(), json!(cwd));
    process.insert(
        "capabilities".into(),
        json!({"bounding": caps, "effective": caps, "permitted": caps}),
    );
    let rlimits = ulimits_json(&opts.ulimits)?;
    if !rlimits.is_empty() {
        process.insert("rlimits".into(), Value::Array(rlimits));
    }
    if opts.no_new_privileges {
        process.insert("noNewPrivileges".into(), json!(true));
    }
    if let Some(adj) = opts.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::Invalid(format!(
                "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
            )));
        }
        process.insert("oomScoreAdj".into(), json!(adj));
    }

    // Mounts.
    let user_dests: Vec<&str> = opts
        .binds
        .iter()
        .map(|b| b.destination.as_str())
        .chain(opts.tmpfs.iter().map(|t| t.destination.as_str()))
        .collect();
    let sys_ro = !opts.privileged || opts.readonly_rootfs;
    let shm_size = opts.shm_size.unwrap_or(DEFAULT_SHM_SIZE);
    let shm_size_opt = format!("size={shm_size}");
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            if sys_ro {
                &["nosuid", "noexec", "nodev", "ro"]
            } else {
                &["nosuid", "noexec", "nodev"]
            },
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            if sys_ro {
                &["ro", "nosuid", "noexec", "nodev"]
            } else {
                &["nosuid", "noexec", "nodev"]
            },
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        if opts.ipc_host {
            mount("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate"])
        } else {
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", &shm_size_opt],
            )
        },
    ];
    mounts.retain(|m| {
        let d = m["destination"].as_str().unwrap_or_default();
        !user_dests.contains(&d)
    });
    let file_ro = opts.readonly_rootfs;
    for (dest, src) in [
        ("/etc/resolv.conf", &opts.resolv_conf_path),
        ("/etc/hostname", &opts.hostname_path),
        ("/etc/hosts", &opts.hosts_path),
    ] {
        if let Some(src) = src {
            if user_dests.contains(&dest) {
                continue;
            }
            let mut o = vec!["rbind", "rprivate"];
            if file_ro {
                o.push("ro");
            }
            mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": o}));
        }
    }
    if let Some(init) = &opts.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["bind", "ro"]}));
    }
    let mut user_mounts: Vec<(usize, Value)> = Vec::new();
    let mut rootfs_propagation: Option<&str> = None;
    for b in &opts.binds {
        if !b.destination.starts_with('/') {
            return Err(SpecError::Invalid(format!(
                "invalid mount config: the mount destination {:?} is not an absolute path",
                b.destination
            )));
        }
        let prop = b.propagation.as_deref().unwrap_or("rprivate");
        if ![
            "private", "rprivate", "shared", "rshared", "slave", "rslave",
        ]
        .contains(&prop)
        {
            return Err(SpecError::Invalid(format!(
                "invalid propagation mode: {prop}"
            )));
        }
        match prop {
            "shared" | "rshared" => rootfs_propagation = Some("shared"),
            "slave" | "rslave" if rootfs_propagation.is_none() => {
                rootfs_propagation = Some("rslave")
            }
            _ => {}
        }
        let mut o = vec![if b.non_recursive { "bind" } else { "rbind" }, prop];
        if b.readonly {
            o.push("ro");
        }
        user_mounts.push((
            depth(&b.destination),
            json!({"destination": b.destination, "type": "bind", "source": b.source, "options": o}),
        ));
    }
    for t in &opts.tmpfs {
        if !t.destination.starts_with('/') {
            return Err(SpecError::Invalid(format!(
                "invalid mount config: the mount destination {:?} is not an absolute path",
                t.destination
            )));
        }
        user_mounts.push((
            depth(&t.destination),
            json!({"destination": t.destination, "type": "tmpfs", "source": "tmpfs", "options": tmpfs_options(&t.options)}),
        ));
    }
    user_mounts.sort_by_key(|(d, _)| *d);
    mounts.extend(user_mounts.into_iter().map(|(_, m)| m));

    // Namespaces.
    let mut namespaces = vec![json!({"type": "mount"})];
    match &opts.network {
        NetworkNs::New => namespaces.push(json!({"type": "network"})),
        NetworkNs::Host => {}
        NetworkNs::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    if !opts.uts_host {
        namespaces.push(json!({"type": "uts"}));
    }
    if !opts.pid_host {
        namespaces.push(json!({"type": "pid"}));
    }
    if !opts.ipc_host {
        namespaces.push(json!({"type": "ipc"}));
    }

    // Devices.
    let mut devices = Vec::new();
    let mut rules = if opts.privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        default_device_rules()
    };
    for d in &opts.devices {
        let (dev, rule) = device_json(d)?;
        devices.push(dev);
        if !opts.privileged {
            rules.push(rule);
        }
    }

    let mut linux = Map::new();
    linux.insert("namespaces".into(), Value::Array(namespaces));
    linux.insert("resources".into(), resources_json(opts, rules)?);
    if !devices.is_empty() {
        linux.insert("devices".into(), Value::Array(devices));
    }
    if let Some(p) = &opts.cgroups_path {
        linux.insert("cgroupsPath".into(), json!(p));
    }
    if !opts.sysctls.is_empty() {
        linux.insert("sysctl".into(), json!(opts.sysctls));
    }
    if let Some(p) = rootfs_propagation {
        linux.insert("rootfsPropagation".into(), json!(p));
    }
    if !opts.privileged {
        let masked: Vec<String> = opts
            .masked_paths
            .clone()
            .unwrap_or_else(|| default_masked_paths().to_vec());
        let ro: Vec<String> = opts.readonly_paths.clone().unwrap_or_else(|| {
            DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        linux.insert("maskedPaths".into(), json!(masked));
        linux.insert("readonlyPaths".into(), json!(ro));
        let sc = match &opts.seccomp {
            SeccompMode::Default => Some(seccomp::default_profile(&caps)),
            SeccompMode::Unconfined => None,
            SeccompMode::Custom(json) => seccomp::custom_profile(json.as_bytes(), &caps)?,
        };
        if let Some(sc) = sc {
            linux.insert(
                "seccomp".into(),
                serde_json::to_value(sc).map_err(|e| SpecError::Internal(e.to_string()))?,
            );
        }
    }

    let mut spec = Map::new();
    spec.insert("ociVersion".into(), json!("1.0.2-dev"));
    spec.insert(
        "root".into(),
        json!({"path": opts.rootfs, "readonly": opts.readonly_rootfs}),
    );
    spec.insert("process".into(), Value::Object(process));
    if !opts.uts_host && !opts.hostname.is_empty() {
        spec.insert("hostname".into(), json!(opts.hostname));
    }
    if !opts.uts_host && !opts.domainname.is_empty() {
        spec.insert("domainname".into(), json!(opts.domainname));
    }
    spec.insert("mounts".into(), Value::Array(mounts));
    spec.insert("linux".into(), Value::Object(linux));
    serde_json::from_value(Value::Object(spec)).map_err(|e| SpecError::Internal(e.to_string()))
}

/// Writes `spec` as `<bundle>/config.json` (temp file + fsync + rename, mode 0600).
pub fn write_config(bundle: &Path, spec: &Spec) -> std::io::Result<()> {
    let data = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
    crate::sys::write_atomic(&bundle.join("config.json"), &data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(
            super::parse_cpu_list("0-3,5,7-8"),
            vec![0, 1, 2, 3, 5, 7, 8]
        );
        assert_eq!(super::parse_cpu_list("0"), vec![0]);
        assert_eq!(super::parse_cpu_list(""), Vec::<u32>::new());
        assert_eq!(super::parse_cpu_list("x,2-y,4"), vec![4]);
        assert_eq!(super::parse_cpu_list("0-4294967295").len(), 4097);
        let m = super::default_masked_paths();
        assert!(m.iter().any(|p| p == "/proc/interrupts"));
        assert!(m
            .iter()
            .all(|p| !p.contains("thermal") || std::path::Path::new(p).exists()));
    }

    use super::*;

    fn base() -> SpecOptions {
        SpecOptions {
            rootfs: "/rootfs".into(),
            args: vec!["sh".into()],
            hostname: "abc123".into(),
            cgroups_path: Some("/berth/abc".into()),
            swap_accounting: true,
            ..Default::default()
        }
    }

    fn js(o: &SpecOptions) -> Value {
        serde_json::to_value(build(o).unwrap()).unwrap()
    }

    fn strs(v: &Value) -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    fn mount_of<'a>(v: &'a Value, dest: &str) -> Option<&'a Value> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
    }

    #[test]
    fn defaults_match_docker() {
        let v = js(&base());
        let mut want: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        want.sort();
        let c = &v["process"]["capabilities"];
        assert_eq!(strs(&c["bounding"]), want);
        assert_eq!(strs(&c["effective"]), want);
        assert_eq!(strs(&c["permitted"]), want);
        assert!(c.get("inheritable").is_none());
        assert!(c.get("ambient").is_none());
        assert_eq!(v["process"]["cwd"], "/");
        assert_eq!(v["process"]["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(v["process"]["env"][0], DEFAULT_PATH_ENV);
        assert!(v["process"].get("rlimits").is_none());
        assert!(
            v["process"].get("noNewPrivileges").is_none()
                || v["process"]["noNewPrivileges"] == false
        );
        assert_eq!(v["hostname"], "abc123");
        assert_eq!(v["root"]["readonly"], false);
        let lx = &v["linux"];
        assert_eq!(lx["cgroupsPath"], "/berth/abc");
        assert_eq!(
            lx["maskedPaths"].as_array().unwrap().len(),
            default_masked_paths().len()
        );
        assert_eq!(strs(&lx["readonlyPaths"]).len(), 5);
        assert_eq!(lx["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        let ns: Vec<&str> = lx["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, vec!["mount", "network", "uts", "pid", "ipc"]);
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            vec![
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ]
        );
        assert!(mount_of(&v, "/sys").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(mount_of(&v, "/sys/fs/cgroup").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(mount_of(&v, "/dev/shm").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("size=67108864")));
        let devs = lx["resources"]["devices"].as_array().unwrap();
        assert_eq!(devs[0], json!({"allow": false, "access": "rwm"}));
        assert!(devs
            .iter()
            .any(|d| d["major"] == 1 && d["minor"] == 3 && d["allow"] == true));
        assert!(devs
            .iter()
            .any(|d| d["major"] == 10 && d["minor"] == 229 && d["allow"] == false));
        assert!(lx["resources"].get("memory").is_none());
        assert!(lx["resources"].get("pids").is_none());
    }

    #[test]
    fn privileged_lifts_restrictions() {
        let v = js(&SpecOptions {
            privileged: true,
            ..base()
        });
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            effective_capabilities(true, &[], &[]).unwrap().len()
        );
        assert!(v["linux"].get("seccomp").is_none());
        assert!(v["linux"].get("maskedPaths").is_none());
        assert!(v["linux"].get("readonlyPaths").is_none());
        assert_eq!(
            v["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
        assert!(!mount_of(&v, "/sys").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(v["process"].get("apparmorProfile").is_none());
    }

    #[test]
    fn caps_add_drop() {
        let caps = |add: &[&str], drop: &[&str]| {
            let mut c = effective_capabilities(
                false,
                &add.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &drop.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .unwrap();
            c.sort();
            c
        };
        let c = caps(&["sys_admin", "CAP_NET_ADMIN"], &["chown", "Cap_Kill"]);
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert!(!c.contains(&"CAP_KILL".to_string()));
        assert_eq!(c.len(), 14);
        assert_eq!(caps(&["chown"], &["ALL"]), vec!["CAP_CHOWN"]);
        assert_eq!(
            caps(&["all"], &["sys_admin"]).len(),
            effective_capabilities(true, &[], &[]).unwrap().len() - 1
        );
        assert_eq!(caps(&[], &["all"]), Vec::<String>::new());
        let err = effective_capabilities(false, &["CAP_FOO".into()], &[]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FOO\"");
        let err = effective_capabilities(false, &[], &["foo".into()]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FOO\"");
        // seccomp follows the caps: sys_admin unlocks mount
        let v = js(&SpecOptions {
            cap_add: vec!["SYS_ADMIN".into()],
            ..base()
        });
        let sc = v["linux"]["seccomp"]["syscalls"].as_array().unwrap();
        assert!(sc
            .iter()
            .any(|r| r["names"].as_array().unwrap().contains(&json!("mount"))));
        let v = js(&base());
        let sc = v["linux"]["seccomp"]["syscalls"].as_array().unwrap();
        assert!(!sc
            .iter()
            .any(|r| r["names"].as_array().unwrap().contains(&json!("mount"))));
    }

    #[test]
    fn readonly_and_engine_files() {
        let v = js(&SpecOptions {
            readonly_rootfs: true,
            hostname_path: Some("/c/hostname".into()),
            hosts_path: Some("/c/hosts".into()),
            resolv_conf_path: Some("/c/resolv.conf".into()),
            ..base()
        });
        assert_eq!(v["root"]["readonly"], true);
        let m = mount_of(&v, "/etc/hosts").unwrap();
        assert_eq!(m["source"], "/c/hosts");
        assert_eq!(m["type"], "bind");
        assert_eq!(m["options"], json!(["rbind", "rprivate", "ro"]));
        let v = js(&SpecOptions {
            hosts_path: Some("/c/hosts".into()),
            ..base()
        });
        assert_eq!(
            mount_of(&v, "/etc/hosts").unwrap()["options"],
            json!(["rbind", "rprivate"])
        );
    }

    #[test]
    fn user_env_tty_cwd() {
        let v = js(&SpecOptions {
            user: ResolvedUser {
                uid: 33,
                gid: 33,
                additional_gids: vec![50, 7],
                home: Some("/var/www".into()),
                name: Some("www-data".into()),
            },
            env: vec!["PATH=/custom".into(), "A=1".into()],
            tty: true,
            console_size: Some((40, 120)),
            cwd: "/work".into(),
            ..base()
        });
        let p = &v["process"];
        assert_eq!(
            p["user"],
            json!({"uid": 33, "gid": 33, "additionalGids": [50, 7]})
        );
        assert_eq!(
            p["env"],
            json!([
                "PATH=/custom",
                "HOSTNAME=abc123",
                "TERM=xterm",
                "A=1",
                "HOME=/var/www"
            ])
        );
        assert_eq!(p["terminal"], true);
        assert_eq!(p["consoleSize"], json!({"height": 40, "width": 120}));
        assert_eq!(p["cwd"], "/work");
        assert!(build(&SpecOptions {
            cwd: "rel".into(),
            ..base()
        })
        .is_err());
    }

    #[test]
    fn namespaces_modes() {
        let v = js(&SpecOptions {
            network: NetworkNs::Host,
            pid_host: true,
            ipc_host: true,
            uts_host: true,
            ..base()
        });
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, vec!["mount"]);
        assert!(v.get("hostname").is_none());
        assert_eq!(mount_of(&v, "/dev/shm").unwrap()["type"], "bind");
        let v = js(&SpecOptions {
            network: NetworkNs::Path("/run/netns/x".into()),
            ..base()
        });
        assert_eq!(
            v["linux"]["namespaces"][1],
            json!({"type": "network", "path": "/run/netns/x"})
        );
    }

    #[test]
    fn seccomp_modes() {
        let v = js(&SpecOptions {
            seccomp: SeccompMode::Unconfined,
            ..base()
        });
        assert!(v["linux"].get("seccomp").is_none());
        let v = js(&SpecOptions {
            seccomp: SeccompMode::Custom(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}"#.into()),
            ..base()
        });
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        assert!(matches!(
            build(&SpecOptions {
                seccomp: SeccompMode::Custom("nope".into()),
                ..base()
            }),
            Err(SpecError::Seccomp(_))
        ));
        let v = js(&SpecOptions {
            no_new_privileges: true,
            ..base()
        });
        assert_eq!(v["process"]["noNewPrivileges"], true);
    }

    #[test]
    fn mounts_binds_tmpfs_shm() {
        let v = js(&SpecOptions {
            binds: vec![
                BindMount {
                    source: "/h/a".into(),
                    destination: "/data/x".into(),
                    readonly: true,
                    propagation: None,
                    non_recursive: true,
                },
                BindMount {
                    source: "/h/b".into(),
                    destination: "/data".into(),
                    readonly: false,
                    propagation: Some("rshared".into()),
                    non_recursive: false,
                },
                BindMount {
                    source: "/h/shm".into(),
                    destination: "/dev/shm".into(),
                    readonly: false,
                    propagation: None,
                    non_recursive: false,
                },
            ],
            tmpfs: vec![TmpfsMount {
                destination: "/run".into(),
                options: "exec,size=64m,mode=1777".into(),
            }],
            shm_size: Some(1 << 20),
            ..base()
        });
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        // default /dev/shm replaced; parents before children
        assert_eq!(dests.iter().filter(|d| **d == "/dev/shm").count(), 1);
        let pos = |d: &str| dests.iter().position(|x| *x == d).unwrap();
        assert!(pos("/data") < pos("/data/x"));
        assert_eq!(
            mount_of(&v, "/data/x").unwrap()["options"],
            json!(["bind", "rprivate", "ro"])
        );
        assert_eq!(
            mount_of(&v, "/data").unwrap()["options"],
            json!(["rbind", "rshared"])
        );
        assert_eq!(v["linux"]["rootfsPropagation"], "shared");
        assert_eq!(
            mount_of(&v, "/run").unwrap()["options"],
            json!([
                "nosuid",
                "nodev",
                "rprivate",
                "exec",
                "size=64m",
                "mode=1777"
            ])
        );
        let v = js(&SpecOptions {
            shm_size: Some(1 << 20),
            ..base()
        });
        assert!(mount_of(&v, "/dev/shm").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("size=1048576")));
        assert_eq!(
            tmpfs_options("ro,noexec,rprivate"),
            vec!["nosuid", "nodev", "ro", "noexec", "rprivate"]
        );
    }

    #[test]
    fn resources_map_like_docker() {
        let r = |res: Resources| {
            js(&SpecOptions {
                resources: res,
                ..base()
            })["linux"]["resources"]
                .clone()
        };
        let v = r(Resources {
            memory: 64 << 20,
            ..Default::default()
        });
        assert_eq!(v["memory"], json!({"limit": 64 << 20, "swap": 128 << 20}));
        let v = r(Resources {
            memory: 64 << 20,
            memory_swap: -1,
            ..Default::default()
        });
        assert_eq!(v["memory"]["swap"], -1);
        let v = r(Resources {
            memory: 64 << 20,
            memory_swap: 100 << 20,
            memory_reservation: 32 << 20,
            oom_kill_disable: true,
            ..Default::default()
        });
        assert_eq!(
            v["memory"],
            json!({"limit": 64 << 20, "swap": 100 << 20, "reservation": 32 << 20, "disableOOMKiller": true})
        );
        let no_swap = js(&SpecOptions {
            swap_accounting: false,
            resources: Resources {
                memory: 64 << 20,
                ..Default::default()
            },
            ..base()
        });
        assert!(no_swap["linux"]["resources"]["memory"]
            .get("swap")
            .is_none());
        let v = r(Resources {
            nano_cpus: 1_500_000_000,
            cpu_shares: 512,
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            ..Default::default()
        });
        assert_eq!(
            v["cpu"],
            json!({"period": 100000, "quota": 150000, "shares": 512, "cpus": "0-1", "mems": "0"})
        );
        let v = r(Resources {
            cpu_quota: 50000,
            cpu_period: 100000,
            ..Default::default()
        });
        assert_eq!(v["cpu"], json!({"period": 100000, "quota": 50000}));
        assert_eq!(
            r(Resources {
                pids_limit: Some(10),
                ..Default::default()
            })["pids"],
            json!({"limit": 10})
        );
        assert!(r(Resources {
            pids_limit: Some(-1),
            ..Default::default()
        })
        .get("pids")
        .is_none());
        assert!(r(Resources {
            pids_limit: Some(0),
            ..Default::default()
        })
        .get("pids")
        .is_none());
        assert_eq!(
            r(Resources {
                blkio_weight: 300,
                ..Default::default()
            })["blockIO"],
            json!({"weight": 300})
        );
        let bad = |res: Resources| {
            build(&SpecOptions {
                resources: res,
                ..base()
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            bad(Resources {
                memory: 1 << 20,
                ..Default::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            bad(Resources {
                memory: 64 << 20,
                memory_swap: 32 << 20,
                ..Default::default()
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            bad(Resources {
                nano_cpus: 1,
                cpu_period: 1000,
                ..Default::default()
            }),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        );
        assert!(bad(Resources {
            blkio_weight: 5,
            ..Default::default()
        })
        .contains("blkio"));
    }

    #[test]
    fn ulimits_checked_against_host() {
        let mut host = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut host) };
        let ok = js(&SpecOptions {
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 100,
                hard: 200,
            }],
            ..base()
        });
        assert_eq!(
            ok["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100}])
        );
        if host.rlim_max != libc::RLIM_INFINITY {
            let too_high = host.rlim_max as i64 + 1;
            let err = build(&SpecOptions {
                ulimits: vec![Ulimit {
                    name: "nofile".into(),
                    soft: 100,
                    hard: too_high,
                }],
                ..base()
            })
            .unwrap_err();
            assert!(matches!(err, SpecError::UlimitAboveHost { .. }), "{err}");
            assert!(err
                .to_string()
                .contains("raising a hard limit is not permitted"));
        }
        assert!(matches!(
            build(&SpecOptions {
                ulimits: vec![Ulimit {
                    name: "nofile".into(),
                    soft: 300,
                    hard: 200
                }],
                ..base()
            }),
            Err(SpecError::UlimitSoftAboveHard { .. })
        ));
        assert!(matches!(
            build(&SpecOptions {
                ulimits: vec![Ulimit {
                    name: "bogus".into(),
                    soft: 1,
                    hard: 1
                }],
                ..base()
            }),
            Err(SpecError::UnknownUlimit(_))
        ));
    }

    #[test]
    fn init_sysctl_oom_devices_paths() {
        let v = js(&SpecOptions {
            init: Some("/usr/bin/tini-static".into()),
            args: vec!["sleep".into(), "1".into()],
            sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
            oom_score_adj: Some(500),
            devices: vec![DeviceMapping {
                path_on_host: "/dev/null".into(),
                path_in_container: "/dev/mynull".into(),
                cgroup_permissions: "rw".into(),
            }],
            masked_paths: Some(vec!["/proc/x".into()]),
            readonly_paths: Some(vec![]),
            domainname: "example.org".into(),
            ..base()
        });
        assert_eq!(
            v["process"]["args"],
            json!(["/sbin/docker-init", "--", "sleep", "1"])
        );
        let m = mount_of(&v, "/sbin/docker-init").unwrap();
        assert_eq!(m["source"], "/usr/bin/tini-static");
        assert_eq!(m["options"], json!(["bind", "ro"]));
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        assert_eq!(v["process"]["oomScoreAdj"], 500);
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/mynull");
        assert_eq!(v["linux"]["devices"][0]["major"], 1);
        assert_eq!(v["linux"]["devices"][0]["minor"], 3);
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules.last().unwrap()["access"], "rw");
        assert_eq!(v["linux"]["maskedPaths"], json!(["/proc/x"]));
        assert_eq!(v["linux"]["readonlyPaths"], json!([]));
        assert_eq!(v["domainname"], "example.org");
        assert!(matches!(
            build(&SpecOptions {
                devices: vec![DeviceMapping {
                    path_on_host: "/etc/passwd".into(),
                    path_in_container: String::new(),
                    cgroup_permissions: String::new()
                }],
                ..base()
            }),
            Err(SpecError::Device { .. })
        ));
        assert!(build(&SpecOptions {
            oom_score_adj: Some(5000),
            ..base()
        })
        .is_err());
        assert!(build(&SpecOptions {
            args: vec![],
            ..base()
        })
        .is_err());
    }

    #[test]
    fn all_is_limited_to_the_bounding_set() {
        let without_sys_resource = !(1u64 << 24);
        let caps = effective_capabilities_within(true, &[], &[], without_sys_resource).unwrap();
        assert_eq!(caps.len(), ALL_CAPS.len() - 1);
        assert!(!caps.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        let caps = effective_capabilities_within(false, &["ALL".into()], &[], without_sys_resource)
            .unwrap();
        assert!(!caps.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        // An explicit request is kept: the runtime then reports why it cannot be granted.
        let caps = effective_capabilities_within(
            false,
            &["SYS_RESOURCE".into()],
            &[],
            without_sys_resource,
        )
        .unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        assert_eq!(capability_number("CAP_CHOWN"), Some(0));
        assert_eq!(capability_number("CAP_SYS_RESOURCE"), Some(24));
        assert_eq!(capability_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        for c in ALL_CAPS {
            assert!(capability_number(c).is_some(), "{c}");
        }
    }
}
