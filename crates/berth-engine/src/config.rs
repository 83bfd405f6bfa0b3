//! Daemon configuration: `daemon.json` (Docker's key names where they overlap) merged with
//! command-line flags by the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
pub const DEFAULT_RUNTIME: &str = "runc";
pub const DEFAULT_INIT_PATH: &str = "/usr/bin/tini-static";
pub const DEFAULT_CGROUP_PARENT: &str = "/berth";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unable to read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unable to configure the berth daemon with file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid daemon configuration: {0}")]
    Invalid(String),
}

/// One OCI runtime entry of `runtimes` in daemon.json.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeEntry {
    pub path: String,
    #[serde(rename = "runtimeArgs", default)]
    pub runtime_args: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UlimitEntry {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Soft")]
    pub soft: i64,
    #[serde(rename = "Hard")]
    pub hard: i64,
}

/// The keys berth understands in daemon.json. Unknown keys are refused, as Docker does, so a
/// typo never silently changes nothing.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Option<Vec<String>>,
    pub pidfile: Option<PathBuf>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    pub group: Option<String>,
    pub runtimes: Option<BTreeMap<String, RuntimeEntry>>,
    pub default_runtime: Option<String>,
    pub log_driver: Option<String>,
    pub log_opts: Option<BTreeMap<String, String>>,
    pub init: Option<bool>,
    pub init_path: Option<PathBuf>,
    pub default_ulimits: Option<BTreeMap<String, UlimitEntry>>,
    pub cgroup_parent: Option<String>,
    pub storage_driver: Option<String>,
    pub live_restore: Option<bool>,
    pub default_shm_size: Option<String>,
    pub no_new_privileges: Option<bool>,
    pub seccomp_profile: Option<String>,
    pub shutdown_timeout: Option<u64>,
    pub registry_mirrors: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub max_concurrent_downloads: Option<u32>,
    pub max_concurrent_uploads: Option<u32>,
    // Networking (Docker's keys).
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub default_address_pools: Option<Vec<AddressPoolEntry>>,
    pub mtu: Option<u32>,
    pub ip_masq: Option<bool>,
    pub iptables: Option<bool>,
    pub ip_forward: Option<bool>,
    pub userland_proxy: Option<bool>,
    pub userland_proxy_path: Option<PathBuf>,
    pub icc: Option<bool>,
    pub ipv6: Option<bool>,
    pub fixed_cidr_v6: Option<String>,
    pub ip6tables: Option<bool>,
    pub fixed_cidr: Option<String>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_opts: Option<Vec<String>>,
    pub cpu_rt_period: Option<i64>,
    pub cpu_rt_runtime: Option<i64>,
    // The API's TLS (read by the binary, which owns the listeners).
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    /// berth's own key: the host's resolv.conf that containers' DNS settings derive from
    /// (default /etc/resolv.conf).
    pub host_resolv_conf: Option<PathBuf>,
}

/// One entry of `default-address-pools`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddressPoolEntry {
    pub base: String,
    pub size: u8,
}

/// The daemon's networking settings.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// Name of the default bridge; None with `"bridge": "none"` (no default bridge network).
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub pools: Vec<AddressPoolEntry>,
    pub mtu: Option<u32>,
    pub ip_masq: bool,
    pub iptables: bool,
    pub ip_forward: bool,
    /// `userland-proxy` (Docker's default true). With firewall rules the kernel forwards every
    /// published port (loopback included, decision 0016); without them (`"iptables": false`)
    /// the userland proxy does, unless this is false.
    pub userland_proxy: bool,
    /// `icc` for the default bridge (`enable_icc`).
    pub icc: bool,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opts: Vec<String>,
    /// The host's resolv.conf (`host-resolv-conf`, default /etc/resolv.conf).
    pub host_resolv_conf: PathBuf,
    /// `ipv6`: IPv6 on the default bridge, from `fixed-cidr-v6` (else a unique local /64).
    pub ipv6: bool,
    pub fixed_cidr_v6: Option<String>,
}

pub const DEFAULT_BRIDGE: &str = "berth0";

impl FileConfig {
    /// Reads the file; a missing file at the default path is an empty configuration.
    pub fn load(path: &Path, must_exist: bool) -> Result<FileConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok(FileConfig::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        FileConfig::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<FileConfig, String> {
        if text.trim().is_empty() {
            return Ok(FileConfig::default());
        }
        serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            // serde says "unknown field `x`, expected one of …"; Docker says which directive.
            match msg.strip_prefix("unknown field `") {
                Some(rest) => {
                    let key = rest.split('`').next().unwrap_or(rest);
                    format!("the following directives don't match any configuration option: {key}")
                }
                None => msg,
            }
        })
    }
}

/// Log options for the json-file driver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub max_size: Option<u64>,
    pub max_file: u32,
    /// The options as given (daemon.json `log-opts`: the defaults merged into each new
    /// container's `LogConfig.Config`, as dockerd's `mergeAndVerifyLogConfig` does).
    pub raw: BTreeMap<String, String>,
}

/// The log drivers dockerd ships; berth implements json-file and none.
pub const DOCKER_LOG_DRIVERS: &[&str] = &[
    "awslogs",
    "etwlogs",
    "fluentd",
    "gcplogs",
    "gelf",
    "journald",
    "json-file",
    "local",
    "logentries",
    "none",
    "splunk",
    "syslog",
];

/// Checks a log driver name: json-file and none work; another of dockerd's drivers is not
/// implemented by berth; any other name is looked up as a plugin by dockerd and not found
/// (its message).
pub fn check_log_driver(name: &str) -> Result<(), String> {
    match name {
        "json-file" | "none" => Ok(()),
        d if DOCKER_LOG_DRIVERS.contains(&d) => Err(format!(
            "logging driver {d} is not supported by berth (json-file, none)"
        )),
        d => Err(format!(
            "error looking up logging plugin {d}: plugin \"{d}\" not found"
        )),
    }
}

impl LogOptions {
    /// Docker's `ValidateLogOpt` of the json-file driver: the keys it knows.
    pub fn check_keys(opts: &BTreeMap<String, String>) -> Result<(), String> {
        for k in opts.keys() {
            match k.as_str() {
                "max-size" | "max-file" | "labels" | "labels-regex" | "env" | "env-regex"
                | "tag" => {}
                // Accepted by Docker's json-file driver; berth does not compress rotated
                // files yet: refused rather than ignored.
                "compress" => {
                    return Err(format!(
                        "log option {k} is not supported by berth's json-file driver yet"
                    ))
                }
                _ => return Err(format!("unknown log opt '{k}' for json-file log driver")),
            }
        }
        Ok(())
    }

    /// The values of Docker's json-file options, with its messages: `max-size` in decimal
    /// units (`10m` is 10,000,000 bytes, as `units.FromHumanSize`), positive; `max-file` at
    /// least 1. Without `max-size` the log never rotates and `max-file` has no effect (as in
    /// dockerd).
    pub fn parse_values(opts: &BTreeMap<String, String>) -> Result<LogOptions, String> {
        let mut out = LogOptions {
            max_size: None,
            max_file: 1,
            raw: opts.clone(),
        };
        for key in ["labels-regex", "env-regex"] {
            if let Some(re) = opts.get(key) {
                regex::Regex::new(re).map_err(|e| format!("{key}: {e}"))?;
            }
        }
        if let Some(v) = opts.get("max-size") {
            let n = berth_api::units::from_human_size(v).map_err(|e| e.to_string())?;
            if n <= 0 {
                return Err("max-size must be a positive number".to_string());
            }
            out.max_size = Some(n as u64);
        }
        if let Some(v) = opts.get("max-file") {
            let n: i64 = v
                .parse()
                .map_err(|_| format!("strconv.Atoi: parsing {v:?}: invalid syntax"))?;
            if n < 1 {
                return Err("max-file cannot be less than 1".to_string());
            }
            out.max_file = u32::try_from(n).unwrap_or(u32::MAX);
        }
        Ok(out)
    }

    /// Keys and values (daemon.json `log-opts`).
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<LogOptions, ConfigError> {
        LogOptions::check_keys(opts).map_err(ConfigError::Invalid)?;
        LogOptions::parse_values(opts)
            .map_err(|e| ConfigError::Invalid(format!("failed to set log opts: {e}")))
    }
}

/// A configured OCI runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub name: String,
    pub path: PathBuf,
    pub args: Vec<String>,
}

/// The engine's resolved configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    pub default_runtime: String,
    pub log_opts: LogOptions,
    pub log_driver: String,
    pub init_default: bool,
    pub init_path: PathBuf,
    pub cgroup_parent: String,
    pub default_shm_size: i64,
    pub no_new_privileges: bool,
    pub seccomp_profile: Option<String>,
    pub default_ulimits: Vec<UlimitEntry>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub max_concurrent_downloads: u32,
    pub max_concurrent_uploads: u32,
    /// `cpu-rt-period`/`cpu-rt-runtime` (µs, 0 = unset): the real-time budget given to the
    /// cgroup parents of containers that ask for one (cgroup v1).
    pub cpu_rt_period: i64,
    pub cpu_rt_runtime: i64,
    /// Path of the berth binary to run as the per-container supervisor.
    pub shim_source: PathBuf,
    pub hosts: Vec<String>,
    pub net: NetConfig,
}

impl EngineConfig {
    /// Builds the engine configuration from a (flag-merged) file configuration.
    pub fn from_file_config(fc: &FileConfig, shim_source: PathBuf) -> Result<Self, ConfigError> {
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "runc".to_string(),
            RuntimeConfig {
                name: "runc".into(),
                path: PathBuf::from("runc"),
                args: vec![],
            },
        );
        for (name, r) in fc.runtimes.iter().flatten() {
            if name == "runc" {
                // Docker refuses to redefine the built-in runtime name.
                return Err(ConfigError::Invalid(
                    "runtime name 'runc' is reserved".to_string(),
                ));
            }
            runtimes.insert(
                name.clone(),
                RuntimeConfig {
                    name: name.clone(),
                    path: PathBuf::from(&r.path),
                    args: r.runtime_args.clone(),
                },
            );
        }
        let default_runtime = fc
            .default_runtime
            .clone()
            .unwrap_or_else(|| DEFAULT_RUNTIME.to_string());
        if !runtimes.contains_key(&default_runtime) {
            return Err(ConfigError::Invalid(format!(
                "default runtime {default_runtime} is not configured in runtimes"
            )));
        }
        let log_driver = fc.log_driver.clone().unwrap_or_else(|| "json-file".into());
        check_log_driver(&log_driver).map_err(ConfigError::Invalid)?;
        let log_opts = LogOptions::parse(&fc.log_opts.clone().unwrap_or_default())?;
        if let Some(d) = &fc.storage_driver {
            if d != "overlay2" {
                return Err(ConfigError::Invalid(format!(
                    "storage driver {d} is not supported by berth (overlay2)"
                )));
            }
        }
        if fc.live_restore == Some(false) {
            return Err(ConfigError::Invalid(
                "live-restore cannot be disabled: berth's supervisors always keep containers running across daemon restarts".to_string(),
            ));
        }
        let (cpu_rt_period, cpu_rt_runtime) = (
            fc.cpu_rt_period.unwrap_or(0),
            fc.cpu_rt_runtime.unwrap_or(0),
        );
        if cpu_rt_period != 0 || cpu_rt_runtime != 0 {
            // dockerd's validateCPURealtimeOptions.
            match berth_runtime::cgroups::detect_mode() {
                Ok(berth_runtime::cgroups::CgroupMode::V2) => {
                    return Err(ConfigError::Invalid(
                        "daemon-scoped cpu-rt-period and cpu-rt-runtime are not implemented for cgroup v2".into(),
                    ))
                }
                _ if !Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() => {
                    return Err(ConfigError::Invalid(
                        "CPU real-time scheduler is not supported by this kernel".into(),
                    ))
                }
                _ => {}
            }
        }
        let default_shm_size = match &fc.default_shm_size {
            Some(s) => berth_api::units::ram_in_bytes(s)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
            None => 64 * 1024 * 1024,
        };
        let net = net_config(fc)?;
        Ok(EngineConfig {
            net,
            data_root: fc
                .data_root
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT)),
            exec_root: fc
                .exec_root
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_EXEC_ROOT)),
            runtimes,
            default_runtime,
            log_opts,
            log_driver,
            init_default: fc.init.unwrap_or(false),
            init_path: fc
                .init_path
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_INIT_PATH)),
            cgroup_parent: fc
                .cgroup_parent
                .clone()
                .unwrap_or_else(|| DEFAULT_CGROUP_PARENT.to_string()),
            default_shm_size,
            no_new_privileges: fc.no_new_privileges.unwrap_or(false),
            seccomp_profile: fc.seccomp_profile.clone(),
            default_ulimits: fc
                .default_ulimits
                .clone()
                .unwrap_or_default()
                .into_values()
                .collect(),
            registry_mirrors: fc.registry_mirrors.clone().unwrap_or_default(),
            insecure_registries: fc.insecure_registries.clone().unwrap_or_default(),
            max_concurrent_downloads: fc.max_concurrent_downloads.unwrap_or(3),
            max_concurrent_uploads: fc.max_concurrent_uploads.unwrap_or(5),
            cpu_rt_period,
            cpu_rt_runtime,
            shim_source,
            hosts: fc.hosts.clone().unwrap_or_default(),
        })
    }
}

/// Checks and resolves the networking keys.
fn net_config(fc: &FileConfig) -> Result<NetConfig, ConfigError> {
    let bridge = match fc.bridge.as_deref() {
        None | Some("") => Some(DEFAULT_BRIDGE.to_string()),
        Some("none") => None,
        Some(b) => {
            if b.len() > 15
                || !b
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(ConfigError::Invalid(format!(
                    "invalid bridge name {b:?}: at most 15 letters, digits, '-', '_' or '.'"
                )));
            }
            Some(b.to_string())
        }
    };
    if let Some(m) = fc.mtu {
        if !(68..=65535).contains(&m) {
            return Err(ConfigError::Invalid(format!(
                "invalid MTU number: {m} (between 68 and 65535)"
            )));
        }
    }
    let fixed_cidr_v6 = fc
        .fixed_cidr_v6
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            berth_net::ipam::parse_subnet6(s)
                .map(|n| n.to_string())
                .map_err(|e| ConfigError::Invalid(format!("fixed-cidr-v6: {e}")))
        })
        .transpose()?;
    if fixed_cidr_v6.is_some() && fc.ipv6 != Some(true) {
        return Err(ConfigError::Invalid(
            "\"fixed-cidr-v6\" needs \"ipv6\": true (IPv6 on the default bridge)".to_string(),
        ));
    }
    if fc.fixed_cidr.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ConfigError::Invalid(
            "\"fixed-cidr\" is not implemented by berth yet: the default bridge allocates from all of \"bip\"'s subnet".to_string(),
        ));
    }
    if fc.userland_proxy_path.is_some() {
        return Err(ConfigError::Invalid(
            "\"userland-proxy-path\" is not supported: berth's userland proxy is built in (berth userland-proxy)".to_string(),
        ));
    }
    let iptables = fc.iptables.unwrap_or(true);
    let ip_masq = fc.ip_masq.unwrap_or(true);
    if ip_masq && !iptables && fc.ip_masq == Some(true) {
        return Err(ConfigError::Invalid(
            "conflicting options: ip-masq needs iptables (berth's nftables rules) enabled"
                .to_string(),
        ));
    }
    Ok(NetConfig {
        bridge,
        bip: fc.bip.clone().filter(|s| !s.is_empty()),
        pools: fc.default_address_pools.clone().unwrap_or_default(),
        mtu: fc.mtu,
        ip_masq,
        iptables,
        ip_forward: fc.ip_forward.unwrap_or(true),
        userland_proxy: fc.userland_proxy.unwrap_or(true),
        icc: fc.icc.unwrap_or(true),
        dns: fc.dns.clone().unwrap_or_default(),
        dns_search: fc.dns_search.clone().unwrap_or_default(),
        dns_opts: fc.dns_opts.clone().unwrap_or_default(),
        host_resolv_conf: fc
            .host_resolv_conf
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("/etc/resolv.conf")),
        ipv6: fc.ipv6 == Some(true),
        fixed_cidr_v6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_keys() {
        let fc = FileConfig::parse(
            r#"{"bridge":"bt0","bip":"10.9.0.1/24","mtu":1400,"ip-masq":false,
                "default-address-pools":[{"base":"10.10.0.0/16","size":24}],"dns":["1.1.1.1"]}"#,
        )
        .unwrap();
        let c = EngineConfig::from_file_config(&fc, "/x".into()).unwrap();
        assert_eq!(c.net.bridge.as_deref(), Some("bt0"));
        assert_eq!(c.net.bip.as_deref(), Some("10.9.0.1/24"));
        assert_eq!(c.net.mtu, Some(1400));
        assert!(!c.net.ip_masq);
        assert!(c.net.iptables);
        assert_eq!(c.net.pools[0].size, 24);
        let none = FileConfig::parse(r#"{"bridge":"none"}"#).unwrap();
        assert!(EngineConfig::from_file_config(&none, "/x".into())
            .unwrap()
            .net
            .bridge
            .is_none());
        let dflt = EngineConfig::from_file_config(&FileConfig::default(), "/x".into()).unwrap();
        assert_eq!(dflt.net.bridge.as_deref(), Some(DEFAULT_BRIDGE));
        assert!(dflt.net.userland_proxy, "Docker's default");
        let off = FileConfig::parse(r#"{"userland-proxy":false,"iptables":false}"#).unwrap();
        let off = EngineConfig::from_file_config(&off, "/x".into()).unwrap();
        assert!(!off.net.userland_proxy && !off.net.iptables);
        let v6off = FileConfig::parse(r#"{"ipv6":false,"ip6tables":false,"icc":false}"#).unwrap();
        let v6off = EngineConfig::from_file_config(&v6off, "/x".into()).unwrap();
        assert!(!v6off.net.icc && !v6off.net.ipv6);
        let v6 =
            FileConfig::parse(r#"{"ipv6":true,"fixed-cidr-v6":"fd00:3::7/64","ip6tables":true}"#)
                .unwrap();
        let v6 = EngineConfig::from_file_config(&v6, "/x".into()).unwrap();
        assert!(v6.net.ipv6);
        assert_eq!(v6.net.fixed_cidr_v6.as_deref(), Some("fd00:3::/64"));
        for bad in [
            r#"{"bridge":"a-very-long-bridge-name"}"#,
            r#"{"bridge":"bad name"}"#,
            r#"{"mtu":10}"#,
            r#"{"ipv6":true,"fixed-cidr-v6":"fd00::/130"}"#,
            r#"{"ipv6":true,"fixed-cidr-v6":"10.0.0.0/8"}"#,
            r#"{"fixed-cidr-v6":"fd00::/64"}"#,
            r#"{"fixed-cidr":"10.1.0.0/25"}"#,
            r#"{"userland-proxy-path":"/usr/bin/docker-proxy"}"#,
        ] {
            let fc = FileConfig::parse(bad).unwrap();
            assert!(
                EngineConfig::from_file_config(&fc, "/x".into()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_docker_keys() {
        let fc = FileConfig::parse(
            r#"{"data-root":"/d","runtimes":{"crun":{"path":"/usr/bin/crun","runtimeArgs":["--debug"]}},
                "default-runtime":"crun","log-opts":{"max-size":"10m","max-file":"3"},
                "registry-mirrors":["http://127.0.0.1:5000"],"live-restore":true}"#,
        )
        .unwrap();
        let c = EngineConfig::from_file_config(&fc, "/proc/self/exe".into()).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert_eq!(c.default_runtime, "crun");
        assert_eq!(c.runtimes["crun"].args, vec!["--debug"]);
        assert_eq!(c.log_opts.max_size, Some(10_000_000));
        assert_eq!(c.log_opts.max_file, 3);
        assert_eq!(c.registry_mirrors, vec!["http://127.0.0.1:5000"]);
    }

    #[test]
    fn refuses_unknown_and_bad_values() {
        assert_eq!(
            FileConfig::parse(r#"{"data-rot":"/x"}"#).unwrap_err(),
            "the following directives don't match any configuration option: data-rot"
        );
        assert!(FileConfig::parse("{").is_err());
        let fc = FileConfig::parse(r#"{"default-runtime":"nope"}"#).unwrap();
        assert!(EngineConfig::from_file_config(&fc, "/x".into()).is_err());
        // max-file without max-size: accepted (the log does not rotate), as by dockerd.
        let fc = FileConfig::parse(r#"{"log-opts":{"max-file":"3"}}"#).unwrap();
        let c = EngineConfig::from_file_config(&fc, "/x".into()).unwrap();
        assert_eq!((c.log_opts.max_size, c.log_opts.max_file), (None, 3));
        let fc = FileConfig::parse(r#"{"log-opts":{"max-size":"ten"}}"#).unwrap();
        assert!(EngineConfig::from_file_config(&fc, "/x".into()).is_err());
        let fc = FileConfig::parse(r#"{"storage-driver":"vfs"}"#).unwrap();
        assert!(EngineConfig::from_file_config(&fc, "/x".into()).is_err());
        assert_eq!(FileConfig::parse("  ").unwrap(), FileConfig::default());
    }
}
