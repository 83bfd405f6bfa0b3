//! `run` / `create` flags → the `POST /containers/create` body, built as the Docker CLI 28
//! does (`cli/command/container/opts.go`): every key present, `NetworkMode: "default"` with a
//! `default` endpoint, the same defaults, normalisations and client-side validation texts.

use std::collections::BTreeMap;
use std::path::Path;

use berth_api::models::*;

use super::flags::{Check, Flag, Matches};
use super::units;

/// The flags shared by `run` and `create` (Docker's `addFlags`).
pub fn container_flags(create: bool) -> Vec<Flag> {
    vec![
        Flag::list("add-host", "list", "Add a custom host-to-IP mapping (host:ip)").check(Check::ExtraHost),
        Flag::list("annotation", "map", "Add an annotation to the container (passed through to the OCI runtime)").default("map[]"),
        Flag::list("attach", "list", "Attach to STDIN, STDOUT or STDERR").short('a').check(Check::Attach),
        Flag::value("blkio-weight", "uint16", "Block IO (relative weight), between 10 and 1000, or 0 to disable").default("0"),
        Flag::list("blkio-weight-device", "list", "Block IO weight (relative device weight)").default("[]"),
        Flag::list("cap-add", "list", "Add Linux capabilities"),
        Flag::list("cap-drop", "list", "Drop Linux capabilities"),
        Flag::value("cgroup-parent", "string", "Optional parent cgroup for the container"),
        Flag::value("cgroupns", "string", "Cgroup namespace to use (host|private)\n'host':    Run the container in the host's cgroup namespace\n'private': Run the container in its own private cgroup namespace\n'':        Use the cgroup namespace as configured by the\n           default-cgroupns-mode option on the daemon (default)"),
        Flag::value("cidfile", "string", "Write the container ID to the file"),
        Flag::value("cpu-count", "int", "CPU count (Windows only)").hidden(),
        Flag::value("cpu-percent", "int", "CPU percent (Windows only)").hidden(),
        Flag::value("cpu-period", "int", "Limit CPU CFS (Completely Fair Scheduler) period"),
        Flag::value("cpu-quota", "int", "Limit CPU CFS (Completely Fair Scheduler) quota"),
        Flag::value("cpu-rt-period", "int", "Limit CPU real-time period in microseconds"),
        Flag::value("cpu-rt-runtime", "int", "Limit CPU real-time runtime in microseconds"),
        Flag::value("cpu-shares", "int", "CPU shares (relative weight)").short('c'),
        Flag::value("cpus", "decimal", "Number of CPUs"),
        Flag::value("cpuset-cpus", "string", "CPUs in which to allow execution (0-3, 0,1)"),
        Flag::value("cpuset-mems", "string", "MEMs in which to allow execution (0-3, 0,1)"),
        Flag::list("device", "list", "Add a host device to the container"),
        Flag::list("device-cgroup-rule", "list", "Add a rule to the cgroup allowed devices list"),
        Flag::list("device-read-bps", "list", "Limit read rate (bytes per second) from a device").default("[]"),
        Flag::list("device-read-iops", "list", "Limit read rate (IO per second) from a device").default("[]"),
        Flag::list("device-write-bps", "list", "Limit write rate (bytes per second) to a device").default("[]"),
        Flag::list("device-write-iops", "list", "Limit write rate (IO per second) to a device").default("[]"),
        Flag::bool("disable-content-trust", "Skip image verification (default true)").hidden(),
        Flag::list("dns", "list", "Set custom DNS servers"),
        Flag::list("dns-option", "list", "Set DNS options"),
        Flag::list("dns-opt", "list", "Set DNS options").hidden(),
        Flag::list("dns-search", "list", "Set custom DNS search domains"),
        Flag::value("domainname", "string", "Container NIS domain name"),
        Flag::value("entrypoint", "string", "Overwrite the default ENTRYPOINT of the image"),
        Flag::list("env", "list", "Set environment variables").short('e').check(Check::Env),
        Flag::list("env-file", "list", "Read in a file of environment variables"),
        Flag::list("expose", "list", "Expose a port or a range of ports"),
        Flag::value("gpus", "gpu-request", "GPU devices to add to the container ('all' to pass all GPUs)"),
        Flag::list("group-add", "list", "Add additional groups to join"),
        Flag::value("health-cmd", "string", "Command to run to check health"),
        Flag::value("health-interval", "duration", "Time between running the check (ms|s|m|h)").default("0s"),
        Flag::value("health-retries", "int", "Consecutive failures needed to report unhealthy"),
        Flag::value("health-start-interval", "duration", "Time between running the check during the start period (ms|s|m|h)").default("0s"),
        Flag::value("health-start-period", "duration", "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)").default("0s"),
        Flag::value("health-timeout", "duration", "Maximum time to allow one check to run (ms|s|m|h)").default("0s"),
        Flag::bool("help", "Print usage"),
        Flag::value("hostname", "string", "Container host name").short('h'),
        Flag::bool("init", "Run an init inside the container that forwards signals and reaps processes"),
        Flag::bool("interactive", "Keep STDIN open even if not attached").short('i'),
        Flag::value("io-maxbandwidth", "bytes", "Maximum IO bandwidth limit for the system drive (Windows only)").hidden(),
        Flag::value("io-maxiops", "uint", "Maximum IOps limit for the system drive (Windows only)").hidden(),
        Flag::value("ip", "string", "IPv4 address (e.g., 172.30.100.104)"),
        Flag::value("ip6", "string", "IPv6 address (e.g., 2001:db8::33)"),
        Flag::value("ipc", "string", "IPC mode to use"),
        Flag::value("isolation", "string", "Container isolation technology"),
        Flag::value("kernel-memory", "bytes", "Kernel memory limit").hidden(),
        Flag::list("label", "list", "Set meta data on a container").short('l').check(Check::Label),
        Flag::list("label-file", "list", "Read in a line delimited file of labels"),
        Flag::list("link", "list", "Add link to another container"),
        Flag::list("link-local-ip", "list", "Container IPv4/IPv6 link-local addresses"),
        Flag::value("log-driver", "string", "Logging driver for the container"),
        Flag::list("log-opt", "list", "Log driver options"),
        Flag::value("mac-address", "string", "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        Flag::value("memory", "bytes", "Memory limit").short('m'),
        Flag::value("memory-reservation", "bytes", "Memory soft limit"),
        Flag::value("memory-swap", "bytes", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap").check(Check::SwapBytes),
        Flag::value("memory-swappiness", "int", "Tune container memory swappiness (0 to 100)").default("-1"),
        Flag::list("mount", "mount", "Attach a filesystem mount to the container").check(Check::Mount),
        Flag::value("name", "string", "Assign a name to the container"),
        Flag::list("net", "network", "Connect a container to a network").hidden(),
        Flag::list("net-alias", "list", "Add network-scoped alias for the container").hidden(),
        Flag::list("network", "network", "Connect a container to a network"),
        Flag::list("network-alias", "list", "Add network-scoped alias for the container"),
        Flag::bool("no-healthcheck", "Disable any container-specified HEALTHCHECK"),
        Flag::bool("oom-kill-disable", "Disable OOM Killer"),
        Flag::value("oom-score-adj", "int", "Tune host's OOM preferences (-1000 to 1000)"),
        Flag::value("pid", "string", "PID namespace to use"),
        Flag::value("pids-limit", "int", "Tune container pids limit (set -1 for unlimited)"),
        Flag::value("platform", "string", "Set platform if server is multi-platform capable"),
        Flag::bool("privileged", "Give extended privileges to this container"),
        Flag::list("publish", "list", "Publish a container's port(s) to the host").short('p'),
        Flag::bool("publish-all", "Publish all exposed ports to random ports").short('P'),
        Flag::value(
            "pull",
            "string",
            if create {
                "Pull image before creating (\"always\", \"missing\", \"never\")"
            } else {
                "Pull image before running (\"always\", \"missing\", \"never\")"
            },
        )
        .default("\"missing\""),
        Flag::bool("quiet", "Suppress the pull output").short('q'),
        Flag::bool("read-only", "Mount the container's root filesystem as read only"),
        Flag::value("restart", "string", "Restart policy to apply when a container exits").default("\"no\""),
        Flag::bool("rm", "Automatically remove the container and its associated anonymous volumes when it exits"),
        Flag::value("runtime", "string", "Runtime to use for this container"),
        Flag::list("security-opt", "list", "Security Options"),
        Flag::value("shm-size", "bytes", "Size of /dev/shm"),
        Flag::value("stop-signal", "string", "Signal to stop the container"),
        Flag::value("stop-timeout", "int", "Timeout (in seconds) to stop a container"),
        Flag::list("storage-opt", "list", "Storage driver options for the container"),
        Flag::list("sysctl", "map", "Sysctl options").default("map[]").check(Check::Sysctl),
        Flag::list("tmpfs", "list", "Mount a tmpfs directory"),
        Flag::bool("tty", "Allocate a pseudo-TTY").short('t'),
        Flag::list("ulimit", "ulimit", "Ulimit options").default("[]"),
        Flag::bool("use-api-socket", "Bind mount the API socket and required auth (not supported)").hidden(),
        Flag::value("user", "string", "Username or UID (format: <name|uid>[:<group|gid>])").short('u'),
        Flag::value("userns", "string", "User namespace to use"),
        Flag::value("uts", "string", "UTS namespace to use"),
        Flag::list("volume", "list", "Bind mount a volume").short('v'),
        Flag::value("volume-driver", "string", "Optional volume driver for the container"),
        Flag::list("volumes-from", "list", "Mount volumes from the specified container(s)"),
        Flag::value("workdir", "string", "Working directory inside the container").short('w'),
    ]
}

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

/// Everything `run`/`create` take from the command line.
#[derive(Debug, Clone)]
pub struct ContainerOptions {
    pub body: ContainerCreateBody,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub pull: PullPolicy,
    pub quiet: bool,
    pub cidfile: Option<String>,
}

/// Validation at flag-parse time for the list flags that Docker validates in `Set`.
pub fn check_list_value(check: Check, value: &str) -> Result<(), String> {
    match check {
        Check::Env => validate_env(value, |_| None).map(|_| ()),
        Check::Attach => match value.to_lowercase().as_str() {
            "stdin" | "stdout" | "stderr" => Ok(()),
            _ => Err("valid streams are STDIN, STDOUT and STDERR".to_string()),
        },
        Check::Mount => parse_mount(value).map(|_| ()),
        Check::ExtraHost => validate_extra_host(value).map(|_| ()),
        Check::Sysctl => validate_sysctl(value).map(|_| ()),
        Check::Label => {
            let key = value.split_once('=').map_or(value, |(k, _)| k);
            if key.trim().is_empty() {
                Err(format!("invalid label '{value}': empty name"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Docker's `ValidateEnv`: `KEY=value` as is; a bare `KEY` takes the value from our
/// environment when set, else stays bare.
pub fn validate_env(val: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (k, has_value) = match val.split_once('=') {
        Some((k, _)) => (k, true),
        None => (val, false),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {val}"));
    }
    if has_value {
        return Ok(val.to_string());
    }
    Ok(match lookup(k) {
        Some(v) => format!("{k}={v}"),
        None => val.to_string(),
    })
}

/// Go's error text for a failed `open(2)` of `path`.
pub fn go_open_error(path: &str, e: &std::io::Error) -> String {
    format!("open {path}: {}", go_errno_text(e))
}

/// The lower-case `strerror` text Go prints for an OS error.
pub fn go_errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut c = desc.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
        None => e.to_string(),
    }
}

const WHITESPACE: &[char] = &[' ', '\t'];

/// Looks up an environment variable (for bare `KEY` entries).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Docker's `parseKeyValueFile`: `KEY=value` lines, `#` comments, blank lines, a UTF-8 BOM;
/// a bare `KEY` is looked up with `empty` (dropped when that returns `None`).
pub fn parse_kv_file(
    filename: &str,
    content: &[u8],
    empty: Option<EnvLookup<'_>>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (n, raw) in content.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = if n == 0 {
            raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw)
        } else {
            raw
        };
        let line = std::str::from_utf8(raw).map_err(|_| {
            format!(
                "env file {filename} contains invalid utf8 bytes at line {}: {raw:?}",
                n + 1
            )
        })?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        let variable = variable.trim_start_matches(WHITESPACE);
        if variable.contains(WHITESPACE) {
            return Err(format!(
                "poorly formatted environment: variable '{variable}' contains whitespaces"
            ));
        }
        if variable.is_empty() {
            return Err(format!(
                "poorly formatted environment: no variable name on line '{line}'"
            ));
        }
        match value {
            Some(v) => out.push(format!("{variable}={v}")),
            None => {
                if let Some(f) = empty {
                    if let Some(v) = f(line) {
                        out.push(format!("{}={v}", variable.trim()));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn read_kv_files(files: &[String], empty: Option<EnvLookup<'_>>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for f in files {
        let content = std::fs::read(f).map_err(|e| go_open_error(f, &e))?;
        out.extend(parse_kv_file(f, &content, empty)?);
    }
    Ok(out)
}

/// `KEY=value` strings to a map (`KEY` alone → empty value).
fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.clone(), String::new()),
        })
        .collect()
}

/// go-units `ParseUlimit`: `nofile=1024[:2048]`.
pub fn parse_ulimit(val: &str) -> Result<Ulimit, String> {
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let Some((name, limits)) = val.split_once('=') else {
        return Err(format!("invalid ulimit argument: {val}"));
    };
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parse = |s: &str| {
        s.parse::<i64>().map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            format!(
                "strconv.ParseInt: parsing {}: {why}",
                super::flags::go_quote(s)
            )
        })
    };
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [s] => {
            let s = parse(s)?;
            (s, s)
        }
        [s, h] => {
            let h = parse(h)?;
            (parse(s)?, h)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// Docker's `ValidateExtraHost`: `host:ip`, `host=ip`, `host:[v6]`, `host:host-gateway`.
pub fn validate_extra_host(val: &str) -> Result<String, String> {
    let (k, v) = match val.split_once('=').or_else(|| val.split_once(':')) {
        Some(kv) => kv,
        None => {
            return Err(format!(
                "bad format for add-host: {}",
                super::flags::go_quote(val)
            ))
        }
    };
    if k.is_empty() || k.contains(':') {
        return Err(format!(
            "bad format for add-host: {}",
            super::flags::go_quote(val)
        ));
    }
    let mut v = v;
    if v != "host-gateway" {
        if v.len() > 2 && v.starts_with('[') && v.ends_with(']') {
            v = &v[1..v.len() - 1];
        }
        if v.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "invalid IP address in add-host: {}",
                super::flags::go_quote(v)
            ));
        }
    }
    Ok(format!("{k}:{v}"))
}

/// Docker's `ValidateSysctl`: only namespaced sysctls.
pub fn validate_sysctl(val: &str) -> Result<String, String> {
    const ALLOWED: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let not_allowed = || format!("sysctl '{val}' is not allowed");
    let Some((key, _)) = val.split_once('=') else {
        return Err(not_allowed());
    };
    if ALLOWED.contains(&key) || key.starts_with("net.") || key.starts_with("fs.mqueue.") {
        Ok(val.to_string())
    } else {
        Err(not_allowed())
    }
}

/// Splits one CSV record (Go's `encoding/csv` for a single line: quoted fields, `""` escapes).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' => return Err("parse error on line 1: bare \" in non-quoted-field".to_string()),
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            c => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("parse error on line 1: extraneous or missing \" in quoted-field".to_string());
    }
    fields.push(cur);
    Ok(fields)
}

/// Docker's `MountOpt.Set` (`--mount type=bind,src=/a,dst=/b,readonly`).
pub fn parse_mount(value: &str) -> Result<Mount, String> {
    let fields = csv_fields(value)?;
    let mut m = Mount {
        kind: "volume".to_string(),
        ..Mount::default()
    };
    let parse_bool = |key: &str, v: &str| {
        super::flags::parse_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"))
    };
    for field in fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => volume_opts(&mut m).no_copy = true,
                "bind-nonrecursive" => {
                    m.bind_options
                        .get_or_insert_with(Default::default)
                        .non_recursive = true
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        match key.as_str() {
            "type" => m.kind = val.to_lowercase(),
            "source" | "src" => {
                m.source = val.clone();
                if val == "." || val.starts_with("./") {
                    if let Ok(abs) = std::path::absolute(&val) {
                        m.source = abs.to_string_lossy().into_owned();
                    }
                }
            }
            "target" | "dst" | "destination" => m.target = val,
            "readonly" | "ro" => m.read_only = parse_bool(&key, &val)?,
            "consistency" => m.consistency = val.to_lowercase(),
            "bind-propagation" => {
                m.bind_options
                    .get_or_insert_with(Default::default)
                    .propagation = val.to_lowercase()
            }
            "bind-nonrecursive" => {
                m.bind_options
                    .get_or_insert_with(Default::default)
                    .non_recursive = parse_bool(&key, &val)?
            }
            "volume-nocopy" => {
                volume_opts(&mut m).no_copy = super::flags::parse_bool(&val)
                    .ok_or_else(|| format!("invalid value for volume-nocopy: {val}"))?
            }
            "volume-label" => {
                let (k, v) = val.split_once('=').unwrap_or((val.as_str(), ""));
                if !k.is_empty() {
                    volume_opts(&mut m)
                        .labels
                        .get_or_insert_with(Default::default)
                        .insert(k.to_string(), v.to_string());
                }
            }
            "volume-driver" => {
                volume_opts(&mut m)
                    .driver_config
                    .get_or_insert_with(Default::default)
                    .name = val
            }
            "volume-opt" => {
                let (k, v) = val.split_once('=').unwrap_or((val.as_str(), ""));
                if !k.is_empty() {
                    volume_opts(&mut m)
                        .driver_config
                        .get_or_insert_with(Default::default)
                        .options
                        .get_or_insert_with(Default::default)
                        .insert(k.to_string(), v.to_string());
                }
            }
            "tmpfs-size" => {
                m.tmpfs_options
                    .get_or_insert_with(Default::default)
                    .size_bytes = units::ram_in_bytes(&val)
                    .map_err(|_| format!("invalid value for {key}: {val}"))?
            }
            "tmpfs-mode" => {
                m.tmpfs_options.get_or_insert_with(Default::default).mode =
                    u64::from_str_radix(&val, 8)
                        .ok()
                        .filter(|v| *v <= u32::MAX as u64)
                        .ok_or_else(|| format!("invalid value for {key}: {val}"))?
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if m.kind.is_empty() {
        return Err("type is required".to_string());
    }
    if m.target.is_empty() {
        return Err("target is required".to_string());
    }
    if m.volume_options.is_some() && m.kind != "volume" {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{}'",
            m.kind
        ));
    }
    if m.bind_options.is_some() && m.kind != "bind" {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{}'",
            m.kind
        ));
    }
    if m.tmpfs_options.is_some() && m.kind != "tmpfs" {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{}'",
            m.kind
        ));
    }
    Ok(m)
}

/// Docker always creates the driver config along with the volume options.
fn volume_opts(m: &mut Mount) -> &mut VolumeOptions {
    let v = m.volume_options.get_or_insert_with(Default::default);
    v.driver_config.get_or_insert_with(Default::default);
    v
}

/// `nat.SplitProtoPort`: `80/udp` → (`udp`, `80`).
fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".to_string(), parts[0].to_string());
    }
    (parts[1].to_string(), parts[0].to_string())
}

/// `nat.ParsePortRange`: `80` or `8000-8010`.
fn parse_port_range(ports: &str) -> Result<(u16, u16), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".to_string());
    }
    let parse = |s: &str| {
        s.parse::<u16>().map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow => "value out of range",
                _ => "invalid syntax",
            };
            format!(
                "strconv.ParseUint: parsing {}: {why}",
                super::flags::go_quote(s)
            )
        })
    };
    match ports.split_once('-') {
        None => {
            let p = parse(ports)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let b = b.split('-').next().unwrap_or(b);
            let (start, end) = (parse(a)?, parse(b)?);
            if end < start {
                return Err(format!("invalid range specified for port: {ports}"));
            }
            Ok((start, end))
        }
    }
}

/// `nat.ParsePortSpec`: `[ip:][hostPort:]containerPort[/proto]` → (port, binding) pairs.
pub fn parse_port_spec(raw: &str) -> Result<Vec<(String, PortBinding)>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (mut ip, host) = match n {
        1 => (String::new(), String::new()),
        2 => (String::new(), parts[0].to_string()),
        3 => (parts[0].to_string(), parts[1].to_string()),
        _ => (parts[..n - 2].join(":"), parts[n - 2].to_string()),
    };
    let (proto, container) = split_proto_port(container);
    if ip.starts_with('[') {
        ip = ip
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(|| format!("invalid IP address {ip}: missing ']' in address"))?
            .to_string();
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_port_range(&container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host.is_empty() {
        (0, 0)
    } else {
        parse_port_range(&host).map_err(|_| format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ));
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let cport = start + i;
        let mut host_port = if host.is_empty() {
            String::new()
        } else {
            (hstart + i).to_string()
        };
        if start == end && hstart != hend {
            host_port = format!("{host_port}-{hend}");
        }
        out.push((
            format!("{cport}/{proto}"),
            PortBinding {
                host_ip: ip.clone(),
                host_port,
            },
        ));
    }
    Ok(out)
}

/// Docker's `validDeviceMode`: a non-empty subset of `rwm`.
fn valid_device_mode(mode: &str) -> bool {
    if mode.is_empty() || mode.len() > 3 {
        return false;
    }
    let mut seen = [false; 3];
    for c in mode.chars() {
        let i = match c {
            'r' => 0,
            'w' => 1,
            'm' => 2,
            _ => return false,
        };
        if seen[i] {
            return false;
        }
        seen[i] = true;
    }
    true
}

/// `--device /dev/a[:/dev/b][:rwm]`.
pub fn parse_device(device: &str) -> Result<DeviceMapping, String> {
    if device.matches(':').count() > 2 {
        return Err(format!("bad format for path: {device}"));
    }
    let parts: Vec<&str> = device.splitn(3, ':').collect();
    if parts[0].is_empty() {
        return Err(format!("bad format for path: {device}"));
    }
    let (src, mut dst, mut perms) = (parts[0], "", "rwm");
    match parts.as_slice() {
        [_] => {}
        [_, b] => {
            if valid_device_mode(b) {
                perms = b;
            } else {
                dst = b;
            }
        }
        [_, b, c] => {
            if !valid_device_mode(c) {
                return Err(format!("bad mode specified: {c}"));
            }
            dst = b;
            perms = c;
        }
        _ => return Err(format!("invalid device specification: {device}")),
    }
    let dst = if dst.is_empty() { src } else { dst };
    if !dst.starts_with('/') {
        return Err(format!("{dst} is not an absolute path"));
    }
    Ok(DeviceMapping {
        path_on_host: src.to_string(),
        path_in_container: dst.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

/// Docker's `ParseRestartPolicy`.
pub fn parse_restart_policy(policy: &str) -> Result<RestartPolicy, String> {
    if policy.is_empty() {
        return Ok(RestartPolicy::default());
    }
    let (k, v) = policy.split_once(':').unwrap_or((policy, ""));
    if policy.contains(':') && k.is_empty() {
        return Err("invalid restart policy format: no policy provided before colon".to_string());
    }
    let mut p = RestartPolicy {
        name: k.to_string(),
        maximum_retry_count: 0,
    };
    if !v.is_empty() {
        p.maximum_retry_count = v.parse().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?;
    }
    Ok(p)
}

/// Docker's `parseSecurityOpts`: a `seccomp=<file>` profile is read here and sent inline.
pub fn parse_security_opts(opts: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(opts.len());
    for opt in opts {
        let (k, v) = match opt.split_once('=') {
            Some(kv) => kv,
            None if opt == "no-new-privileges" => (opt.as_str(), ""),
            None => opt.split_once(':').unwrap_or((opt.as_str(), "")),
        };
        if v.is_empty() && k != "no-new-privileges" {
            return Err(format!(
                "Invalid --security-opt: {}",
                super::flags::go_quote(opt)
            ));
        }
        if k == "seccomp" && v != "builtin" && v != "unconfined" {
            let content = std::fs::read(v).map_err(|e| {
                format!(
                    "opening seccomp profile ({v}) failed: {}",
                    go_open_error(v, &e)
                )
            })?;
            let compact = compact_json(&content)
                .map_err(|e| format!("compacting json for seccomp profile ({v}) failed: {e}"))?;
            out.push(format!("seccomp={compact}"));
        } else {
            out.push(opt.clone());
        }
    }
    Ok(out)
}

/// Go's `json.Compact`: removes insignificant whitespace, keeping key order.
pub fn compact_json(input: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(input).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(input).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    Ok(out)
}

/// `path:rate` for the blkio throttle flags; `bytes`: rates are sizes (`1mb`), else counts.
fn parse_throttle(val: &str, bytes: bool) -> Result<ThrottleDevice, String> {
    let (path, rate) = val
        .split_once(':')
        .ok_or_else(|| format!("bad format: {val}"))?;
    if !path.starts_with("/dev/") {
        return Err(format!("bad format for device path: {val}"));
    }
    let rate = if bytes {
        units::ram_in_bytes(rate)
            .ok()
            .and_then(|r| u64::try_from(r).ok())
            .ok_or_else(|| {
                format!("invalid rate for device: {val}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
            })?
    } else {
        rate.parse::<u64>().map_err(|_| {
            format!("invalid rate for device: {val}. The correct format is <device-path>:<number>. Number must be a positive integer")
        })?
    };
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate,
    })
}

fn parse_weight_device(val: &str) -> Result<WeightDevice, String> {
    let (path, w) = val
        .split_once(':')
        .ok_or_else(|| format!("bad format: {val}"))?;
    if !path.starts_with("/dev/") {
        return Err(format!("bad format for device path: {val}"));
    }
    let weight: u16 = w
        .parse()
        .ok()
        .filter(|w| *w == 0 || (10..=1000).contains(w))
        .ok_or_else(|| format!("invalid weight for device: {val}"))?;
    Ok(WeightDevice {
        path: path.to_string(),
        weight,
    })
}

/// Docker's `ValidateMACAddress`.
fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    matches!(parts.len(), 6 | 8 | 20)
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_user_defined_network(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

fn device_cgroup_rule_ok(rule: &str) -> bool {
    let parts: Vec<&str> = rule.split(' ').collect();
    let [kind, majmin, perms] = parts.as_slice() else {
        return false;
    };
    let num = |s: &str| s == "*" || (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()));
    matches!(*kind, "a" | "c" | "b")
        && majmin
            .split_once(':')
            .is_some_and(|(a, b)| num(a) && num(b))
        && (1..=3).contains(&perms.len())
        && perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// Builds the create request from parsed flags (Docker's `parse()`); `args[0]` is the image.
/// `env` looks up variables for bare `-e KEY`; `console` is stdout's `(rows, cols)`.
pub fn parse(
    m: &Matches,
    env: &dyn Fn(&str) -> Option<String>,
    console: (u16, u16),
) -> Result<ContainerOptions, String> {
    if m.flag("use-api-socket") {
        return Err("--use-api-socket is not implemented by berth".to_string());
    }
    if m.changed("gpus") {
        return Err(
            "--gpus is not implemented by berth: GPU device requests are not supported".to_string(),
        );
    }
    let image = m.args.first().cloned().unwrap_or_default();
    let cmd: Vec<String> = m.args.iter().skip(1).cloned().collect();
    let attach: Vec<String> = m.list("attach").iter().map(|a| a.to_lowercase()).collect();
    let stdin = m.flag("interactive");
    let mac = m.string("mac-address").unwrap_or_default();
    if !mac.is_empty() && !valid_mac(&mac) {
        return Err(format!("{mac} is not a valid mac address"));
    }
    let attach_stdin = attach.iter().any(|a| a == "stdin") || stdin;
    let (attach_stdout, attach_stderr) = if attach.is_empty() {
        (true, true)
    } else {
        (
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };
    let swappiness = m.int("memory-swappiness").unwrap_or(-1);
    if swappiness != -1 && !(0..=100).contains(&swappiness) {
        return Err(format!(
            "invalid value: {swappiness}. Valid memory swappiness range is 0-100"
        ));
    }

    // -v: binds (with a source) and anonymous volumes.
    let mut binds = Vec::new();
    let mut volumes = BTreeMap::new();
    for v in m.list("volume") {
        if v.is_empty() {
            return Err("invalid empty volume spec".to_string());
        }
        match v.split_once(':') {
            Some((src, rest)) if !src.is_empty() => {
                let src = if !src.starts_with('/') && src.starts_with('.') {
                    std::path::absolute(src)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| src.to_string())
                } else {
                    src.to_string()
                };
                binds.push(format!("{src}:{rest}"));
            }
            _ => {
                volumes.insert(v.clone(), EmptyObject {});
            }
        }
    }

    let tmpfs: BTreeMap<String, String> = m
        .list("tmpfs")
        .iter()
        .map(|t| match t.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();

    let entrypoint = if m.changed("entrypoint") {
        Some(vec![m.string("entrypoint").unwrap_or_default()])
    } else {
        None
    };

    // Ports.
    let mut exposed: BTreeMap<String, EmptyObject> = BTreeMap::new();
    let mut bindings: PortMap = BTreeMap::new();
    for p in m.list("publish") {
        for (port, binding) in parse_port_spec(&p)? {
            exposed.insert(port.clone(), EmptyObject {});
            bindings
                .entry(port)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }
    for e in m.list("expose") {
        let (proto, port) = split_proto_port(&e);
        let (start, end) = parse_port_range(&port)
            .map_err(|err| format!("invalid range format for --expose: {e}, error: {err}"))?;
        for p in start..=end {
            exposed
                .entry(format!("{p}/{proto}"))
                .or_insert(EmptyObject {});
        }
    }

    let devices = m
        .list("device")
        .iter()
        .map(|d| parse_device(d))
        .collect::<Result<Vec<_>, _>>()?;

    // Environment: files first, then -e.
    let mut env_vars = read_kv_files(&m.list("env-file"), Some(env))?;
    for e in m.list("env") {
        env_vars.push(validate_env(&e, env)?);
    }
    let mut label_list = read_kv_files(&m.list("label-file"), None)?;
    label_list.extend(m.list("label"));

    let pid = m.string("pid").unwrap_or_default();
    if !(pid.is_empty()
        || pid == "host"
        || pid
            .strip_prefix("container:")
            .is_some_and(|c| !c.is_empty()))
    {
        return Err("--pid: invalid PID mode".to_string());
    }
    let uts = m.string("uts").unwrap_or_default();
    if !(uts.is_empty() || uts == "host") {
        return Err("--uts: invalid UTS mode".to_string());
    }
    let userns = m.string("userns").unwrap_or_default();
    if !(userns.is_empty() || userns == "host") {
        return Err("--userns: invalid USER mode".to_string());
    }
    let cgroupns = m.string("cgroupns").unwrap_or_default();
    if !matches!(cgroupns.as_str(), "" | "host" | "private") {
        return Err("--cgroupns: invalid CGROUP mode".to_string());
    }
    let restart = parse_restart_policy(&m.string("restart").unwrap_or_else(|| "no".into()))?;
    let log_opts = kv_map(&m.list("log-opt"));
    let security = parse_security_opts(&m.list("security-opt"))?;
    let mut storage = BTreeMap::new();
    for o in m.list("storage-opt") {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| "invalid storage option".to_string())?;
        storage.insert(k.to_string(), v.to_string());
    }

    // Health check.
    let dur = |name: &str| -> i64 {
        m.value(name)
            .and_then(|v| units::parse_go_duration(v).ok())
            .unwrap_or(0)
    };
    let health_cmd = m.string("health-cmd").unwrap_or_default();
    let (interval, timeout, start_period, start_interval) = (
        dur("health-interval"),
        dur("health-timeout"),
        dur("health-start-period"),
        dur("health-start-interval"),
    );
    let retries = m.int("health-retries").unwrap_or(0);
    let have_health = !health_cmd.is_empty()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || retries != 0
        || start_interval != 0;
    let healthcheck = if m.flag("no-healthcheck") {
        if have_health {
            return Err("--no-healthcheck conflicts with --health-* options".to_string());
        }
        Some(HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..Default::default()
        })
    } else if have_health {
        for (v, name) in [
            (interval, "--health-interval"),
            (timeout, "--health-timeout"),
            (retries, "--health-retries"),
            (start_period, "--health-start-period"),
            (start_interval, "--health-start-interval"),
        ] {
            if v < 0 {
                return Err(format!("{name} cannot be negative"));
            }
        }
        Some(HealthConfig {
            test: (!health_cmd.is_empty()).then(|| vec!["CMD-SHELL".to_string(), health_cmd]),
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        })
    } else {
        None
    };

    for rule in m.list("device-cgroup-rule") {
        if !device_cgroup_rule_ok(&rule) {
            return Err(format!("invalid device cgroup format '{rule}'"));
        }
    }
    if !m.list("annotation").is_empty() {
        return Err("--annotation is not implemented by berth: the create body has no Annotations field yet".to_string());
    }

    let bytes = |name: &str| -> i64 {
        m.value(name)
            .and_then(|v| units::ram_in_bytes(v).ok())
            .unwrap_or(0)
    };
    let memory_swap = match m.value("memory-swap") {
        Some("-1") => -1,
        _ => bytes("memory-swap"),
    };
    let mut ulimits: BTreeMap<String, Ulimit> = BTreeMap::new();
    for u in m.list("ulimit") {
        let u = parse_ulimit(&u)?;
        ulimits.insert(u.name.clone(), u);
    }
    let (cap_add, cap_drop) = effective_caps(&m.list("cap-add"), &m.list("cap-drop"));
    let list_or_null = |name: &str| {
        let l = m.list(name);
        (!l.is_empty()).then_some(l)
    };
    let mut dns_options = m.list("dns-option");
    dns_options.extend(m.list("dns-opt"));

    let extra_hosts = m
        .list("add-host")
        .iter()
        .map(|h| validate_extra_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    let sysctls = kv_map(&m.list("sysctl"));

    let mut networks = m.list("network");
    networks.extend(m.list("net"));
    let mut aliases = m.list("network-alias");
    aliases.extend(m.list("net-alias"));
    let network_mode = networks
        .first()
        .map(|n| network_target(n))
        .unwrap_or_else(|| "default".to_string());
    let links = m.list("link");

    let nano_cpus = m
        .value("cpus")
        .and_then(|v| units::parse_nano_cpus(v).ok())
        .unwrap_or(0);

    let host_config = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        container_id_file: m.string("cidfile").unwrap_or_default(),
        log_config: LogConfig {
            kind: m.string("log-driver").unwrap_or_default(),
            config: Some(log_opts),
        },
        network_mode: network_mode.clone(),
        port_bindings: Some(bindings),
        restart_policy: restart.clone(),
        auto_remove: m.flag("rm"),
        volume_driver: m.string("volume-driver").unwrap_or_default(),
        volumes_from: list_or_null("volumes-from"),
        cap_add,
        cap_drop,
        cgroupns_mode: cgroupns,
        dns: Some(m.list("dns")),
        dns_options: Some(dns_options),
        dns_search: Some(m.list("dns-search")),
        extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
        group_add: list_or_null("group-add"),
        ipc_mode: m.string("ipc").unwrap_or_default(),
        cgroup: String::new(),
        links: (!links.is_empty()).then(|| links.clone()),
        oom_score_adj: m.int("oom-score-adj").unwrap_or(0),
        pid_mode: pid,
        privileged: m.flag("privileged"),
        publish_all_ports: m.flag("publish-all"),
        readonly_rootfs: m.flag("read-only"),
        security_opt: (!security.is_empty()).then_some(security),
        storage_opt: (!storage.is_empty()).then_some(storage),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        uts_mode: uts,
        userns_mode: userns,
        shm_size: bytes("shm-size"),
        sysctls: (!sysctls.is_empty()).then_some(sysctls),
        runtime: m.string("runtime").unwrap_or_default(),
        console_size: [console.0 as u64, console.1 as u64],
        isolation: m.string("isolation").unwrap_or_default(),
        cpu_shares: m.int("cpu-shares").unwrap_or(0),
        memory: bytes("memory"),
        nano_cpus,
        cgroup_parent: m.string("cgroup-parent").unwrap_or_default(),
        blkio_weight: m
            .value("blkio-weight")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        blkio_weight_device: Some(
            m.list("blkio-weight-device")
                .iter()
                .map(|v| parse_weight_device(v))
                .collect::<Result<_, _>>()?,
        ),
        blkio_device_read_bps: Some(throttles(m, "device-read-bps", true)?),
        blkio_device_write_bps: Some(throttles(m, "device-write-bps", true)?),
        blkio_device_read_iops: Some(throttles(m, "device-read-iops", false)?),
        blkio_device_write_iops: Some(throttles(m, "device-write-iops", false)?),
        cpu_period: m.int("cpu-period").unwrap_or(0),
        cpu_quota: m.int("cpu-quota").unwrap_or(0),
        cpu_realtime_period: m.int("cpu-rt-period").unwrap_or(0),
        cpu_realtime_runtime: m.int("cpu-rt-runtime").unwrap_or(0),
        cpuset_cpus: m.string("cpuset-cpus").unwrap_or_default(),
        cpuset_mems: m.string("cpuset-mems").unwrap_or_default(),
        devices: Some(devices),
        device_cgroup_rules: list_or_null("device-cgroup-rule"),
        device_requests: None,
        kernel_memory: bytes("kernel-memory"),
        kernel_memory_tcp: 0,
        memory_reservation: bytes("memory-reservation"),
        memory_swap,
        memory_swappiness: Some(swappiness),
        oom_kill_disable: Some(m.flag("oom-kill-disable")),
        pids_limit: Some(m.int("pids-limit").unwrap_or(0)),
        ulimits: Some(ulimits.into_values().collect()),
        cpu_count: m.int("cpu-count").unwrap_or(0),
        cpu_percent: m.int("cpu-percent").unwrap_or(0),
        io_maximum_iops: m
            .value("io-maxiops")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        io_maximum_bandwidth: bytes("io-maxbandwidth").max(0) as u64,
        mounts: {
            let mounts = m
                .list("mount")
                .iter()
                .map(|v| parse_mount(v))
                .collect::<Result<Vec<_>, _>>()?;
            (!mounts.is_empty()).then_some(mounts)
        },
        masked_paths: None,
        readonly_paths: None,
        init: m.changed("init").then(|| m.flag("init")),
    };

    if host_config.auto_remove && !(restart.name.is_empty() || restart.name == "no") {
        return Err("conflicting options: cannot specify both --restart and --rm".to_string());
    }

    let config = ContainerConfig {
        hostname: m.string("hostname").unwrap_or_default(),
        domainname: m.string("domainname").unwrap_or_default(),
        user: m.string("user").unwrap_or_default(),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: m.flag("tty"),
        open_stdin: stdin,
        // When stdin is attached, close it when the client disconnects.
        stdin_once: stdin && attach_stdin,
        env: (!env_vars.is_empty()).then_some(env_vars),
        cmd: (!cmd.is_empty()).then_some(cmd),
        healthcheck,
        args_escaped: false,
        image,
        volumes: Some(volumes),
        working_dir: m.string("workdir").unwrap_or_default(),
        entrypoint,
        network_disabled: false,
        mac_address: mac.clone(),
        on_build: None,
        labels: Some(kv_map(&label_list)),
        stop_signal: m.string("stop-signal").unwrap_or_default(),
        stop_timeout: if m.changed("stop-timeout") {
            Some(m.int("stop-timeout").unwrap_or(0))
        } else {
            None
        },
        shell: None,
    };

    let endpoints = network_endpoints(m, &networks, &aliases, &links, &mac)?;

    let pull = match m.value("pull").unwrap_or("missing") {
        "always" => PullPolicy::Always,
        "missing" | "" => PullPolicy::Missing,
        "never" => PullPolicy::Never,
        other => {
            return Err(format!(
            "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
        ))
        }
    };
    Ok(ContainerOptions {
        body: ContainerCreateBody {
            config,
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            }),
        },
        name: m.string("name"),
        platform: m.string("platform").filter(|p| !p.is_empty()),
        pull,
        quiet: m.flag("quiet"),
        cidfile: m.string("cidfile").filter(|c| !c.is_empty()),
    })
}

fn throttles(m: &Matches, name: &str, bytes: bool) -> Result<Vec<ThrottleDevice>, String> {
    m.list(name)
        .iter()
        .map(|v| parse_throttle(v, bytes))
        .collect()
}

/// `--network name` or the advanced `--network name=x,alias=y,ip=z` form: the network name.
fn network_target(spec: &str) -> String {
    if !spec.contains('=') {
        return spec.to_string();
    }
    spec.split(',')
        .find_map(|f| {
            f.strip_prefix("name=")
                .or_else(|| f.strip_prefix("network="))
        })
        .unwrap_or(spec)
        .to_string()
}

/// Docker's `parseNetworkOpts`: the `default` endpoint when no network is given; a single
/// network without endpoint options gets no endpoint entry.
fn network_endpoints(
    m: &Matches,
    networks: &[String],
    aliases: &[String],
    links: &[String],
    mac: &str,
) -> Result<BTreeMap<String, EndpointSettings>, String> {
    let mut endpoints = BTreeMap::new();
    let first = networks
        .first()
        .map(|n| network_target(n))
        .unwrap_or_else(|| "default".to_string());
    if !aliases.is_empty() && !is_user_defined_network(&first) {
        return Err(
            "network-scoped aliases are only supported for user-defined networks".to_string(),
        );
    }
    let (mut user_defined, mut builtin) = (false, false);
    let targets: Vec<String> = if networks.is_empty() {
        vec!["default".to_string()]
    } else {
        networks.to_vec()
    };
    for (i, spec) in targets.iter().enumerate() {
        let name = network_target(spec);
        if is_user_defined_network(&name) {
            user_defined = true;
        } else {
            builtin = true;
        }
        let mut ep = EndpointSettings::default();
        let mut ipam = EndpointIpamConfig::default();
        // Advanced syntax options.
        if spec.contains('=') {
            for field in spec.split(',') {
                let (k, v) = field.split_once('=').unwrap_or((field, ""));
                match k {
                    "name" | "network" => {}
                    "alias" => ep.aliases.get_or_insert_with(Vec::new).push(v.to_string()),
                    "ip" => ipam.ipv4_address = v.to_string(),
                    "ip6" => ipam.ipv6_address = v.to_string(),
                    "mac-address" => ep.mac_address = v.to_string(),
                    "link-local-ip" => ipam
                        .link_local_ips
                        .get_or_insert_with(Vec::new)
                        .push(v.to_string()),
                    "driver-opt" => {
                        let (dk, dv) = v.split_once('=').unwrap_or((v, ""));
                        ep.driver_opts
                            .get_or_insert_with(BTreeMap::new)
                            .insert(dk.to_string(), dv.to_string());
                    }
                    _ => return Err(format!("invalid field key {k}")),
                }
            }
        }
        if i == 0 {
            if !aliases.is_empty() {
                if ep.aliases.is_some() {
                    return Err("conflicting options: cannot specify both --network-alias and per-network alias".to_string());
                }
                ep.aliases = Some(aliases.to_vec());
            }
            if is_user_defined_network(&name) && !links.is_empty() {
                ep.links = Some(links.to_vec());
            }
            if let Some(ip) = m.string("ip").filter(|s| !s.is_empty()) {
                ipam.ipv4_address = ip;
            }
            if let Some(ip) = m.string("ip6").filter(|s| !s.is_empty()) {
                ipam.ipv6_address = ip;
            }
            let lls = m.list("link-local-ip");
            if !lls.is_empty() {
                ipam.link_local_ips = Some(lls);
            }
            if !mac.is_empty() {
                ep.mac_address = mac.to_string();
            }
        }
        if ipam != EndpointIpamConfig::default() {
            ep.ipam_config = Some(ipam);
        }
        if endpoints.contains_key(&name) {
            return Err(format!(
                "network {} is specified multiple times",
                super::flags::go_quote(&name)
            ));
        }
        // A single network without options gets no endpoint entry (the daemon creates it).
        if !networks.is_empty()
            && i == 0
            && networks.len() == 1
            && ep == EndpointSettings::default()
        {
            continue;
        }
        endpoints.insert(name, ep);
    }
    if user_defined && builtin {
        return Err("conflicting options: cannot attach both user-defined and non-user-defined network-modes".to_string());
    }
    Ok(endpoints)
}

/// Docker's `EffectiveCapAddCapDrop`: `CAP_` prefixes, upper case, `ALL` wins, adding wins
/// over dropping; `None` when empty.
pub fn effective_caps(
    add: &[String],
    drop: &[String],
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    fn normalize(caps: &[String]) -> Vec<String> {
        let mut out: Vec<String> = caps
            .iter()
            .map(|c| c.trim().to_uppercase())
            .filter(|c| !c.is_empty())
            .map(|c| {
                if c != "ALL" && !c.starts_with("CAP_") {
                    format!("CAP_{c}")
                } else {
                    c
                }
            })
            .collect();
        out.sort();
        out.dedup();
        if out.iter().any(|c| c == "ALL") {
            out = vec!["ALL".to_string()];
        }
        out
    }
    let add = normalize(add);
    let drop: Vec<String> = normalize(drop)
        .into_iter()
        .filter(|c| !add.contains(c))
        .collect();
    (
        (!add.is_empty()).then_some(add),
        (!drop.is_empty()).then_some(drop),
    )
}

/// Docker's `term.ToBytes` for `--detach-keys` (`ctrl-p,ctrl-q`).
pub fn detach_key_bytes(keys: &str) -> Result<Vec<u8>, String> {
    let mut codes = Vec::new();
    for key in keys.split(',') {
        if key.len() != 1 {
            let k = key.to_lowercase();
            if k.len() == 6 && k.starts_with("ctrl-") {
                let c = k.as_bytes()[5];
                let code = match c {
                    b'a'..=b'z' => c - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(format!("Unknown character: '{key}'")),
                };
                codes.push(code);
                continue;
            }
            return Err(format!("Unknown character: '{key}'"));
        }
        codes.push(key.as_bytes()[0]);
    }
    Ok(codes)
}

/// `run -d`: nothing attaches (Docker's `runContainer`).
pub fn detach(body: &mut ContainerCreateBody) {
    let c = &mut body.config;
    c.attach_stdin = false;
    c.attach_stdout = false;
    c.attach_stderr = false;
    c.stdin_once = false;
}

/// `--cidfile`: refuse an existing file (another container may own it), else create it.
pub fn create_cidfile(path: &str) -> Result<std::fs::File, String> {
    if Path::new(path).exists() {
        return Err(format!(
            "container ID file found, make sure the other container isn't running or delete {path}"
        ));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            format!(
                "failed to create the container ID file: {}",
                go_open_error(path, &e)
            )
        })
}

#[cfg(test)]
mod tests;
