//! Docker's default seccomp policy, authored here in Rust, and the parser for Docker-format
//! profiles (`--security-opt seccomp=/path.json`, `--seccomp-profile`).
//!
//! The default policy is Docker's, rule for rule (moby/profiles `seccomp/default.json`, as
//! vendored by moby at `seccomp/v0.2.3`): deny by default with `EPERM`; allow the ordinary
//! syscalls; unlock privileged syscalls only when the container holds the capability that
//! guards them; `clone` only without namespace flags and `unshare` not at all unless the
//! container holds `CAP_SYS_ADMIN` (user namespaces included); `clone3` answers `ENOSYS` so
//! libc falls back to the filterable `clone`; `personality` only for harmless personas;
//! `socket` for every address family but `AF_ALG` and `AF_VSOCK`.
//!
//! Both the default policy and custom profiles are expressed as a [`Profile`] (Docker's JSON
//! shape, with `includes`/`excludes` conditions on capabilities, architectures and kernel
//! version) and turned into the OCI [`LinuxSeccomp`] for one container by [`Profile::compile`],
//! following moby's `setupSeccomp`.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::{Deserialize, Deserializer, Serialize};

/// Errors of profile parsing/compilation.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The JSON does not parse as a Docker seccomp profile.
    #[error("decoding seccomp profile failed: {0}")]
    Parse(String),
    /// The profile is inconsistent.
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
}

/// Docker's seccomp profile document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Action when no rule matches. A profile without one and without rules means "no
    /// filter" (as in moby).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<LinuxSeccompAction>,
    /// errno returned by the default action when it is SCMP_ACT_ERRNO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Flat architecture list (exclusive with `arch_map`), libseccomp names (`SCMP_ARCH_X86`).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<String>,
    /// Architecture map: the entry of the native architecture and its sub-architectures apply.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arch_map: Vec<ArchMap>,
    /// Filter flags.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    /// SCMP_ACT_NOTIFY listener.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listener_path: String,
    /// Opaque listener metadata.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listener_metadata: String,
    /// The rules.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub syscalls: Vec<Rule>,
}

/// One `archMap` entry. Architectures are kept as libseccomp names so that a profile naming an
/// architecture berth cannot run (Docker's own lists `SCMP_ARCH_LOONGARCH64`) still loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    /// The main architecture.
    pub architecture: String,
    /// Architectures that run on it (x86 and x32 on x86_64); `null` in Docker's JSON for
    /// architectures without any.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<String>,
}

/// One syscall rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Syscall names.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
    /// Legacy single name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Action.
    pub action: LinuxSeccompAction,
    /// errno for SCMP_ACT_ERRNO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument conditions (all must match).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Arg>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The rule applies only when all of these hold.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Filter::is_empty"
    )]
    pub includes: Filter,
    /// The rule does not apply when any of these holds.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Filter::is_empty"
    )]
    pub excludes: Filter,
}

/// A syscall argument condition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Argument index (0–5).
    pub index: u32,
    /// Value (the mask for SCMP_CMP_MASKED_EQ).
    pub value: u64,
    /// Second value (the compared value for SCMP_CMP_MASKED_EQ).
    #[serde(default)]
    pub value_two: u64,
    /// Operator.
    pub op: LinuxSeccompOperator,
}

/// `includes` / `excludes` conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities (CAP_…).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<String>,
    /// Architectures in libseccomp's naming as moby maps Go's (amd64, x86, x32, arm64, arm …).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arches: Vec<String>,
    /// Minimum kernel version ("4.8").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub min_kernel: String,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_empty()
    }
}

/// Go's JSON decoder leaves a slice empty for `null`; serde would refuse it.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The architecture of this build as moby names it in `includes`/`excludes` (its `goToNative`
/// map: Go's `GOARCH` turned into libseccomp's name, so `386` is `x86`).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loongarch64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        "mips" if cfg!(target_endian = "little") => "mipsel",
        other => other,
    }
}

/// The libseccomp name of this build's architecture (`SCMP_ARCH_X86_64`).
fn native_scmp_arch() -> Option<&'static str> {
    Some(match native_arch() {
        "amd64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc" => "SCMP_ARCH_PPC",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel" => "SCMP_ARCH_MIPSEL",
        _ => return None,
    })
}

/// A libseccomp architecture name as the OCI spec's [`Arch`].
fn oci_arch(name: &str) -> Result<Arch, SeccompError> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
        SeccompError::Invalid(format!(
            "architecture {name:?} is not supported by berth's OCI runtime interface"
        ))
    })
}

/// The running kernel's (major, minor).
pub fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| parse_kernel_version(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}

fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().unwrap_or("0").parse().unwrap_or(0);
    Some((major, minor))
}

fn normalize_cap(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

impl Profile {
    /// Turns the profile into the OCI seccomp config for a container holding `caps` (its
    /// bounding set), on this architecture and the running kernel. `None`: the profile names
    /// neither a default action nor rules, which moby takes as "no filter".
    pub fn compile(&self, caps: &[String]) -> Result<Option<LinuxSeccomp>, SeccompError> {
        self.compile_for(caps, native_arch(), kernel_version())
    }

    /// [`Profile::compile`] for an explicit architecture (moby's naming, see [`native_arch`])
    /// and kernel version.
    pub fn compile_for(
        &self,
        caps: &[String],
        arch: &str,
        kernel: (u32, u32),
    ) -> Result<Option<LinuxSeccomp>, SeccompError> {
        let Some(default_action) = self.default_action else {
            if self.syscalls.is_empty() {
                return Ok(None);
            }
            return Err(SeccompError::Invalid(
                "the profile has rules but no 'defaultAction'".into(),
            ));
        };
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(SeccompError::Invalid(
                "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
            ));
        }
        let caps: Vec<String> = caps.iter().map(|c| normalize_cap(c)).collect();
        let mut arches = self
            .architectures
            .iter()
            .map(|a| oci_arch(a))
            .collect::<Result<Vec<_>, _>>()?;
        let native = scmp_arch_of(arch);
        if let Some(m) = self
            .arch_map
            .iter()
            .find(|m| Some(m.architecture.as_str()) == native)
        {
            arches.push(oci_arch(&m.architecture)?);
            for sub in &m.sub_architectures {
                let sub = oci_arch(sub)?;
                // Deliberate difference (docs/compatibility.md): a sub-architecture the
                // kernel cannot run needs no filter. The x32 ABI is compiled out of many
                // kernels, and every architecture in the filter costs the runtime time on
                // each create and exec; the kernel refuses x32 calls there anyway.
                if sub == Arch::ScmpArchX32 && !x32_supported() {
                    continue;
                }
                arches.push(sub);
            }
        }
        let mut syscalls = Vec::with_capacity(self.syscalls.len());
        for rule in &self.syscalls {
            let mut names = rule.names.clone();
            if !rule.name.is_empty() {
                if !names.is_empty() {
                    return Err(SeccompError::Invalid(
                        "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'".into(),
                    ));
                }
                names.push(rule.name.clone());
            }
            if !rule.applies(&caps, arch, kernel)? {
                continue;
            }
            if names.is_empty() {
                continue;
            }
            let mut s = LinuxSyscall::default();
            s.set_names(names);
            s.set_action(rule.action);
            s.set_errno_ret(rule.errno_ret);
            if !rule.args.is_empty() {
                let mut args = Vec::with_capacity(rule.args.len());
                for a in &rule.args {
                    if a.index > 5 {
                        return Err(SeccompError::Invalid(format!(
                            "syscall argument index {} out of range 0-5",
                            a.index
                        )));
                    }
                    let mut b = LinuxSeccompArgBuilder::default()
                        .index(a.index as usize)
                        .value(a.value)
                        .op(a.op);
                    if a.value_two != 0 {
                        b = b.value_two(a.value_two);
                    }
                    args.push(
                        b.build()
                            .map_err(|e| SeccompError::Invalid(e.to_string()))?,
                    );
                }
                s.set_args(Some(args));
            }
            syscalls.push(s);
        }
        let mut out = LinuxSeccomp::default();
        out.set_default_action(default_action);
        out.set_default_errno_ret(self.default_errno_ret);
        out.set_architectures((!arches.is_empty()).then_some(arches));
        out.set_flags((!self.flags.is_empty()).then(|| self.flags.clone()));
        out.set_listener_path(
            (!self.listener_path.is_empty()).then(|| self.listener_path.clone().into()),
        );
        out.set_listener_metadata(
            (!self.listener_metadata.is_empty()).then(|| self.listener_metadata.clone()),
        );
        out.set_syscalls(Some(syscalls));
        Ok(Some(out))
    }
}

/// moby's `nativeToSeccomp`: the libseccomp architecture for one of its native names.
fn scmp_arch_of(native: &str) -> Option<&'static str> {
    if native == native_arch() {
        return native_scmp_arch();
    }
    Some(match native {
        "x86" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "mipsel" => "SCMP_ARCH_MIPSEL",
        "ppc" => "SCMP_ARCH_PPC",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390" => "SCMP_ARCH_S390",
        "s390x" => "SCMP_ARCH_S390X",
        _ => return None,
    })
}

impl Rule {
    /// moby's conditions: any excluded arch or cap, or a kernel at least the excluded version,
    /// drops the rule; so does a missing included arch or cap, or an older kernel.
    fn applies(
        &self,
        caps: &[String],
        arch: &str,
        kernel: (u32, u32),
    ) -> Result<bool, SeccompError> {
        let exc = &self.excludes;
        if exc.arches.iter().any(|a| a == arch) {
            return Ok(false);
        }
        if exc.caps.iter().any(|c| caps.contains(&normalize_cap(c))) {
            return Ok(false);
        }
        if !exc.min_kernel.is_empty() && kernel >= min_kernel(&exc.min_kernel)? {
            return Ok(false);
        }
        let inc = &self.includes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            return Ok(false);
        }
        if !inc.caps.iter().all(|c| caps.contains(&normalize_cap(c))) {
            return Ok(false);
        }
        if !inc.min_kernel.is_empty() && kernel < min_kernel(&inc.min_kernel)? {
            return Ok(false);
        }
        Ok(true)
    }
}

fn min_kernel(s: &str) -> Result<(u32, u32), SeccompError> {
    parse_kernel_version(s).ok_or_else(|| SeccompError::Invalid(format!("invalid minKernel {s:?}")))
}

/// Parses a Docker-format profile.
pub fn parse_profile(json: &[u8]) -> Result<Profile, SeccompError> {
    serde_json::from_slice(json).map_err(|e| SeccompError::Parse(e.to_string()))
}

/// Parses a Docker-format profile and compiles it for a container holding `caps`; `None` when
/// the profile asks for no filter.
pub fn custom_profile(json: &[u8], caps: &[String]) -> Result<Option<LinuxSeccomp>, SeccompError> {
    parse_profile(json)?.compile(caps)
}

/// Whether the running kernel executes x32 system calls (x86_64 only). Probed once, in a
/// forked child so that a host seccomp filter that kills on unknown ABIs cannot take the daemon
/// down: the child calls x32 `getpid` and exits 0 when it worked.
pub fn x32_supported() -> bool {
    static X32: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *X32.get_or_init(|| {
        if !cfg!(target_arch = "x86_64") {
            return false;
        }
        const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
        // SAFETY: the child only makes two raw system calls (getpid through the x32 ABI, then
        // _exit), which are async-signal-safe, so forking a multi-threaded process is fine.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above.
            let r = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
            // SAFETY: see above.
            unsafe { libc::_exit(if r > 0 { 0 } else { 1 }) };
        }
        if pid < 0 {
            // Cannot tell: keep the filter for x32 (the safe side).
            return true;
        }
        let mut status = 0;
        // SAFETY: waiting for the child we just forked.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    })
}

/// Docker's default seccomp configuration for a container holding `caps` (its bounding set).
pub fn default_profile(caps: &[String]) -> LinuxSeccomp {
    // The built-in profile contains only valid rules and a default action, so compiling cannot
    // fail; fall back to an empty allowlist (deny everything) rather than panicking if it ever
    // did.
    match default_policy().compile(caps) {
        Ok(Some(s)) => s,
        _ => {
            let mut s = LinuxSeccomp::default();
            s.set_default_action(LinuxSeccompAction::ScmpActErrno);
            s.set_default_errno_ret(Some(1));
            s
        }
    }
}

/// Syscalls allowed to every container. Everything not here (or in a conditional rule below)
/// fails with EPERM: notably mount, umount2, pivot_root, setns, keyctl, add_key, request_key,
/// bpf, perf_event_open, kexec_*, *_module, open_by_handle_at, reboot, swapon/swapoff,
/// userfaultfd, io_uring_*, acct, settimeofday, iopl/ioperm, quotactl, vm86, uselib, ustat,
/// sysfs, _sysctl, nfsservctl, lookup_dcookie, move_pages, get/set_mempolicy, mbind, kcmp.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Namespace flags of clone(2)/unshare(2).
const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWCGROUP: u64 = 0x0200_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
/// Every namespace flag: `clone` without CAP_SYS_ADMIN must have none of them set.
const CLONE_NAMESPACES: u64 = CLONE_NEWNS
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
    | CLONE_NEWCGROUP;
/// Address families refused by `socket` (the kernel crypto API and the VM host channel).
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
const ENOSYS: u32 = 38;

fn allow(names: &[&str]) -> Rule {
    Rule {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: LinuxSeccompAction::ScmpActAllow,
        ..Default::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// An allow rule applying only when the container holds every capability of `caps`.
fn with_caps(mut r: Rule, caps: &[&str]) -> Rule {
    r.includes.caps = strings(caps);
    r
}

/// An allow rule applying only on the architectures `arches` (moby's naming).
fn with_arches(mut r: Rule, arches: &[&str]) -> Rule {
    r.includes.arches = strings(arches);
    r
}

fn with_args(mut r: Rule, args: Vec<Arg>) -> Rule {
    r.args = args;
    r
}

fn arg(index: u32, value: u64, op: LinuxSeccompOperator) -> Arg {
    Arg {
        index,
        value,
        value_two: 0,
        op,
    }
}

fn arch_map(arch: &str, subs: &[&str]) -> ArchMap {
    ArchMap {
        architecture: arch.into(),
        sub_architectures: strings(subs),
    }
}

/// Docker's default policy as a [`Profile`] (before capability/arch/kernel conditions apply):
/// the rules of moby/profiles `seccomp/default.json` (v0.2.3), in its order.
pub fn default_policy() -> Profile {
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpGt, ScmpCmpLt, ScmpCmpMaskedEq};
    let mut rules = vec![allow(ALLOWED)];

    // ptrace and friends are safe on kernels >= 4.8 (seccomp can no longer be bypassed).
    let mut pt = allow(&["process_vm_readv", "process_vm_writev", "ptrace"]);
    pt.includes.min_kernel = "4.8".into();
    rules.push(pt);

    // socket(2) for every family but AF_ALG (38) and AF_VSOCK (40).
    rules.push(with_args(
        allow(&["socket"]),
        vec![arg(0, AF_ALG, ScmpCmpLt)],
    ));
    rules.push(with_args(
        allow(&["socket"]),
        vec![arg(0, AF_ALG + 1, ScmpCmpEq)],
    ));
    rules.push(with_args(
        allow(&["socket"]),
        vec![arg(0, AF_VSOCK, ScmpCmpGt)],
    ));

    // personality(2): PER_LINUX, PER_LINUX32, UNAME26 (and with PER_LINUX32), and the query.
    for persona in [0x0u64, 0x0008, 0x20000, 0x20008, 0xffff_ffff] {
        rules.push(with_args(
            allow(&["personality"]),
            vec![arg(0, persona, ScmpCmpEq)],
        ));
    }

    // Architecture-specific basics.
    rules.push(with_arches(
        allow(&["sync_file_range2", "swapcontext"]),
        &["ppc64le"],
    ));
    rules.push(with_arches(
        allow(&[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ]),
        &["arm", "arm64"],
    ));
    rules.push(with_arches(allow(&["arch_prctl"]), &["amd64", "x32"]));
    rules.push(with_arches(
        allow(&["modify_ldt"]),
        &["amd64", "x32", "x86"],
    ));
    rules.push(with_arches(
        allow(&[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ]),
        &["s390", "s390x"],
    ));
    rules.push(with_arches(allow(&["riscv_flush_icache"]), &["riscv64"]));

    // Capability-gated syscalls.
    rules.push(with_caps(
        allow(&["open_by_handle_at"]),
        &["CAP_DAC_READ_SEARCH"],
    ));
    rules.push(with_caps(
        allow(&[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ]),
        &["CAP_SYS_ADMIN"],
    ));
    // Without CAP_SYS_ADMIN: clone(2) only without namespace flags (user namespaces included;
    // on s390 the flags are argument 1), and no unshare(2) at all.
    let mut clone = with_args(
        allow(&["clone"]),
        vec![arg(0, CLONE_NAMESPACES, ScmpCmpMaskedEq)],
    );
    clone.excludes.caps = strings(&["CAP_SYS_ADMIN"]);
    clone.excludes.arches = strings(&["s390", "s390x"]);
    rules.push(clone);
    let mut clone_s390 = with_args(
        allow(&["clone"]),
        vec![arg(1, CLONE_NAMESPACES, ScmpCmpMaskedEq)],
    );
    clone_s390.comment = "s390 parameter ordering for clone is different".into();
    clone_s390.includes.arches = strings(&["s390", "s390x"]);
    clone_s390.excludes.caps = strings(&["CAP_SYS_ADMIN"]);
    rules.push(clone_s390);
    // clone3 passes its flags in memory where seccomp cannot look: answer ENOSYS so that libc
    // falls back to clone(2), which the rule above can filter.
    rules.push(Rule {
        names: strings(&["clone3"]),
        action: LinuxSeccompAction::ScmpActErrno,
        errno_ret: Some(ENOSYS),
        excludes: Filter {
            caps: strings(&["CAP_SYS_ADMIN"]),
            ..Default::default()
        },
        ..Default::default()
    });
    rules.push(with_caps(allow(&["reboot"]), &["CAP_SYS_BOOT"]));
    rules.push(with_caps(allow(&["chroot"]), &["CAP_SYS_CHROOT"]));
    rules.push(with_caps(
        allow(&["delete_module", "init_module", "finit_module"]),
        &["CAP_SYS_MODULE"],
    ));
    rules.push(with_caps(allow(&["acct"]), &["CAP_SYS_PACCT"]));
    rules.push(with_caps(
        allow(&[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ]),
        &["CAP_SYS_PTRACE"],
    ));
    rules.push(with_caps(allow(&["iopl", "ioperm"]), &["CAP_SYS_RAWIO"]));
    rules.push(with_caps(
        allow(&["settimeofday", "stime", "clock_settime", "clock_settime64"]),
        &["CAP_SYS_TIME"],
    ));
    rules.push(with_caps(allow(&["vhangup"]), &["CAP_SYS_TTY_CONFIG"]));
    rules.push(with_caps(
        allow(&[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ]),
        &["CAP_SYS_NICE"],
    ));
    rules.push(with_caps(allow(&["syslog"]), &["CAP_SYSLOG"]));
    rules.push(with_caps(allow(&["bpf"]), &["CAP_BPF"]));
    rules.push(with_caps(allow(&["perf_event_open"]), &["CAP_PERFMON"]));

    Profile {
        default_action: Some(LinuxSeccompAction::ScmpActErrno),
        default_errno_ret: Some(1),
        arch_map: vec![
            arch_map("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            arch_map("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
            arch_map(
                "SCMP_ARCH_MIPS64",
                &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
            ),
            arch_map(
                "SCMP_ARCH_MIPS64N32",
                &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"],
            ),
            arch_map(
                "SCMP_ARCH_MIPSEL64",
                &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"],
            ),
            arch_map(
                "SCMP_ARCH_MIPSEL64N32",
                &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"],
            ),
            arch_map("SCMP_ARCH_S390X", &["SCMP_ARCH_S390"]),
            arch_map("SCMP_ARCH_RISCV64", &[]),
            arch_map("SCMP_ARCH_LOONGARCH64", &[]),
        ],
        syscalls: rules,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn caps(extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = crate::spec::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// Names with an unconditional allow rule.
    fn unconditional(s: &LinuxSeccomp) -> Vec<String> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
            .flat_map(|r| r.names().clone())
            .collect()
    }

    fn rules_for<'a>(s: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    const BLOCKED: &[&str] = &[
        "mount",
        "umount2",
        "umount",
        "pivot_root",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "userfaultfd",
        "open_by_handle_at",
        "acct",
        "settimeofday",
        "clock_settime",
        "iopl",
        "ioperm",
        "quotactl",
        "io_uring_setup",
        "io_uring_enter",
        "syslog",
        "kcmp",
        "clone3",
        "vm86",
        "uselib",
        "ustat",
        "sysfs",
        "_sysctl",
        "nfsservctl",
        "lookup_dcookie",
        "move_pages",
        "mbind",
        "set_mempolicy",
        "get_mempolicy",
    ];

    #[test]
    fn default_shape() {
        let s = default_profile(&caps(&[]));
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        if cfg!(target_arch = "x86_64") {
            let mut want = vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86];
            if x32_supported() {
                want.push(Arch::ScmpArchX32);
            }
            assert_eq!(s.architectures().as_ref().unwrap(), &want);
        }
        let allowed = unconditional(&s);
        for name in ["read", "write", "execve", "chroot"] {
            assert!(
                allowed.contains(&name.to_string()),
                "{name} should be allowed"
            );
        }
        assert!(!allowed.contains(&"clone".to_string()));
        for name in BLOCKED {
            assert!(
                !allowed.contains(&name.to_string()),
                "{name} must not be allowed"
            );
        }
        // No allow rule at all (with or without args) for the fully blocked ones.
        for name in [
            "mount",
            "umount2",
            "pivot_root",
            "setns",
            "keyctl",
            "add_key",
            "bpf",
            "perf_event_open",
            "kexec_load",
            "init_module",
            "reboot",
            "swapon",
            "userfaultfd",
            "open_by_handle_at",
            "request_key",
            "unshare",
            "lsm_set_self_attr",
        ] {
            assert!(rules_for(&s, name).is_empty(), "{name} has a rule");
        }
        // unshare: not at all without CAP_SYS_ADMIN, user namespaces included (Docker's rule;
        // berth used to allow unshare(CLONE_NEWUSER)).
        assert!(rules_for(&s, "unshare").is_empty());
        // clone filtered, clone3 ENOSYS
        let cl = rules_for(&s, "clone");
        assert_eq!(cl.len(), 1);
        assert_eq!(cl[0].args().as_ref().unwrap()[0].value(), 0x7E02_0000);
        let c3 = rules_for(&s, "clone3");
        assert_eq!(c3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(c3[0].errno_ret(), Some(38));
        // socket: every family but AF_ALG (38) and AF_VSOCK (40).
        let so: Vec<(u64, LinuxSeccompOperator)> = rules_for(&s, "socket")
            .iter()
            .map(|r| {
                let a = r.args().as_ref().unwrap()[0];
                (a.value(), a.op())
            })
            .collect();
        assert_eq!(
            so,
            vec![
                (38, LinuxSeccompOperator::ScmpCmpLt),
                (39, LinuxSeccompOperator::ScmpCmpEq),
                (40, LinuxSeccompOperator::ScmpCmpGt)
            ]
        );
        // personality: 5 filtered rules
        assert_eq!(rules_for(&s, "personality").len(), 5);
        // ptrace allowed on this (>= 4.8) kernel
        assert!(allowed.contains(&"ptrace".to_string()));
    }

    #[test]
    fn sys_admin_unlocks() {
        let s = default_profile(&caps(&["CAP_SYS_ADMIN"]));
        let allowed = unconditional(&s);
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "bpf",
            "perf_event_open",
        ] {
            assert!(allowed.contains(&name.to_string()), "{name}");
        }
        // The ENOSYS clone3 rule and the filtered clone rule are gone.
        assert!(rules_for(&s, "clone3")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
        assert!(rules_for(&s, "clone").iter().all(|r| r.args().is_none()));
        assert!(!allowed.contains(&"reboot".to_string()));
    }

    #[test]
    fn other_caps_unlock() {
        for (cap, call) in [
            ("CAP_SYS_PTRACE", "kcmp"),
            ("CAP_SYS_MODULE", "init_module"),
            ("CAP_SYS_TIME", "settimeofday"),
            ("CAP_SYS_BOOT", "reboot"),
            ("CAP_SYS_NICE", "mbind"),
            ("CAP_SYS_RAWIO", "iopl"),
            ("CAP_SYS_PACCT", "acct"),
            ("CAP_SYSLOG", "syslog"),
            ("CAP_BPF", "bpf"),
            ("CAP_PERFMON", "perf_event_open"),
            ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
            ("sys_tty_config", "vhangup"),
        ] {
            assert!(!unconditional(&default_profile(&caps(&[]))).contains(&call.to_string()));
            assert!(
                unconditional(&default_profile(&caps(&[cap]))).contains(&call.to_string()),
                "{cap} should unlock {call}"
            );
        }
        // chroot needs CAP_SYS_CHROOT, which is a default cap.
        let no_chroot: Vec<String> = caps(&[])
            .into_iter()
            .filter(|c| c != "CAP_SYS_CHROOT")
            .collect();
        assert!(!unconditional(&default_profile(&no_chroot)).contains(&"chroot".to_string()));
    }

    #[test]
    fn old_kernel_blocks_ptrace() {
        let s = default_policy()
            .compile_for(&caps(&[]), "amd64", (4, 4))
            .unwrap()
            .unwrap();
        assert!(!unconditional(&s).contains(&"ptrace".to_string()));
        let s = default_policy()
            .compile_for(&caps(&[]), "arm64", (6, 1))
            .unwrap()
            .unwrap();
        assert!(unconditional(&s).contains(&"set_tls".to_string()));
        assert!(!unconditional(&s).contains(&"arch_prctl".to_string()));
    }

    #[test]
    fn custom_profile_docker_format() {
        let json = br#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"name": "chmod", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]},
                {"names": ["reboot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_BOOT"]}}
            ]
        }"#;
        let s = custom_profile(json, &caps(&[])).unwrap().unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        let sc = s.syscalls().as_ref().unwrap();
        assert_eq!(sc.len(), 2);
        assert_eq!(sc[0].names(), &vec!["chmod".to_string()]);
        assert_eq!(sc[0].errno_ret(), Some(13));
        assert_eq!(sc[1].args().as_ref().unwrap()[0].value(), 511);
        assert!(matches!(
            custom_profile(b"{", &[]),
            Err(SeccompError::Parse(_))
        ));
        assert!(matches!(
            custom_profile(br#"{"defaultAction":"SCMP_ACT_NOPE"}"#, &[]),
            Err(SeccompError::Parse(_))
        ));
        let both = br#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":[]}]}"#;
        assert!(matches!(
            custom_profile(both, &[]),
            Err(SeccompError::Invalid(_))
        ));
    }

    #[test]
    fn docker_json_conventions_load() {
        // Docker's own profile: null subArchitectures, architectures berth cannot run,
        // comments, null includes.
        let json = br#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null},
                {"architecture": "SCMP_ARCH_LOONGARCH64", "subArchitectures": null}
            ],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": null,
                 "comment": "", "includes": null, "excludes": {}},
                {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["amd64", "x32", "x86"]}}
            ]
        }"#;
        let p = parse_profile(json).unwrap();
        assert_eq!(p.arch_map[1].sub_architectures, Vec::<String>::new());
        let s = p.compile_for(&[], "amd64", (6, 1)).unwrap().unwrap();
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86]
        );
        assert_eq!(s.syscalls().as_ref().unwrap().len(), 2);
        // On 32-bit x86 the arch rule uses moby's name "x86" (not Go's "386").
        let s = p.compile_for(&[], "x86", (6, 1)).unwrap().unwrap();
        assert_eq!(s.syscalls().as_ref().unwrap().len(), 2);
        let s = p.compile_for(&[], "arm64", (6, 1)).unwrap().unwrap();
        assert_eq!(s.syscalls().as_ref().unwrap().len(), 1);
        // No default action and no rules: no filter at all (moby); rules without a default
        // action are an error.
        assert_eq!(custom_profile(b"{}", &[]).unwrap(), None);
        assert!(matches!(
            custom_profile(
                br#"{"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
                &[]
            ),
            Err(SeccompError::Invalid(_))
        ));
        // A flat architecture list naming one the OCI interface cannot express is refused.
        assert!(matches!(
            custom_profile(
                br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_LOONGARCH64"]}"#,
                &[]
            ),
            Err(SeccompError::Invalid(_))
        ));
    }

    /// berth's default policy equals Docker's `default.json`, rule for rule and name for name.
    /// moby's file is not part of this repository: point `BERTH_DOCKER_SECCOMP_PROFILE` at a
    /// copy (moby/profiles `seccomp/default.json`) to run it; without it the test has nothing
    /// to compare with and returns.
    #[test]
    fn default_policy_equals_dockers_file() {
        let Some(path) = std::env::var_os("BERTH_DOCKER_SECCOMP_PROFILE") else {
            return;
        };
        let docker = parse_profile(&std::fs::read(path).unwrap()).unwrap();
        let ours = default_policy();
        assert_eq!(ours.default_action, docker.default_action);
        assert_eq!(ours.default_errno_ret, docker.default_errno_ret);
        assert_eq!(ours.arch_map, docker.arch_map);
        assert_eq!(ours.syscalls.len(), docker.syscalls.len());
        for (i, (a, b)) in ours.syscalls.iter().zip(&docker.syscalls).enumerate() {
            assert_eq!(a, b, "rule {i} differs");
        }
        assert_eq!(ours, docker);
    }

    #[test]
    fn default_policy_roundtrips_through_json() {
        let p = default_policy();
        let json = serde_json::to_vec(&p).unwrap();
        let back = parse_profile(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.compile(&caps(&[])).unwrap(),
            Some(default_profile(&caps(&[])))
        );
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        (
            proptest::collection::vec("[a-z_0-9]{1,12}", 1..4),
            prop_oneof![
                Just(LinuxSeccompAction::ScmpActAllow),
                Just(LinuxSeccompAction::ScmpActErrno),
                Just(LinuxSeccompAction::ScmpActLog)
            ],
            proptest::option::of(0u32..200),
            proptest::collection::vec((0u32..6, any::<u64>(), any::<u64>()), 0..3),
            proptest::collection::vec(
                prop_oneof![
                    Just("CAP_SYS_ADMIN".to_string()),
                    Just("CAP_CHOWN".to_string())
                ],
                0..2,
            ),
        )
            .prop_map(|(names, action, errno_ret, args, caps)| Rule {
                names,
                action,
                errno_ret,
                args: args
                    .into_iter()
                    .map(|(index, value, value_two)| Arg {
                        index,
                        value,
                        value_two,
                        op: LinuxSeccompOperator::ScmpCmpMaskedEq,
                    })
                    .collect(),
                includes: Filter {
                    caps,
                    ..Default::default()
                },
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn parser_roundtrip(rules in proptest::collection::vec(arb_rule(), 0..8), errno in proptest::option::of(0u32..100)) {
            let p = Profile {
                default_action: Some(LinuxSeccompAction::ScmpActErrno),
                default_errno_ret: errno,
                architectures: vec!["SCMP_ARCH_X86_64".into()],
                syscalls: rules,
                ..Default::default()
            };
            let json = serde_json::to_vec(&p).unwrap();
            let back = parse_profile(&json).unwrap();
            prop_assert_eq!(&back, &p);
            let compiled = back.compile(&caps(&[])).unwrap().unwrap();
            let expected = p.syscalls.iter().filter(|r| !r.includes.caps.iter().any(|c| c == "CAP_SYS_ADMIN")).count();
            prop_assert_eq!(compiled.syscalls().as_ref().unwrap().len(), expected);
        }

        #[test]
        fn parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = custom_profile(&data, &[]);
        }

        #[test]
        fn parser_arbitrary_json_values(idx in any::<u32>(), val in any::<u64>(), name in ".{0,20}", kernel in ".{0,8}") {
            let json = serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": [name], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": idx, "value": val, "op": "SCMP_CMP_EQ"}],
                    "includes": {"minKernel": kernel}}]
            });
            let _ = custom_profile(json.to_string().as_bytes(), &[]);
        }
    }

    #[test]
    fn x32_probe_agrees_with_the_kernel_config() {
        // Where the kernel publishes its config, the probe must agree with it.
        let Ok(out) = std::process::Command::new("sh")
            .args([
                "-c",
                "zcat /proc/config.gz 2>/dev/null | grep -c '^CONFIG_X86_X32_ABI=y'",
            ])
            .output()
        else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if !std::path::Path::new("/proc/config.gz").exists() || !cfg!(target_arch = "x86_64") {
            return;
        }
        assert_eq!(x32_supported(), text.trim() == "1");
    }
}
