//! `berth daemon`: flags + daemon.json → engine → API server on the configured sockets.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use berth_api::server::{serve, Listener};
use berth_engine::config::{EngineConfig, FileConfig, RuntimeEntry, DEFAULT_CONFIG_FILE};
use berth_engine::Engine;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};

#[derive(Args, Debug, Clone)]
pub struct DaemonArgs {
    /// Daemon socket(s) to listen on (unix:///path or tcp://host:port)
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    pub hosts: Vec<String>,
    /// Root directory of persistent state
    #[arg(long = "data-root", value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Root directory for execution state (sockets, bundles)
    #[arg(long = "exec-root", value_name = "DIR")]
    pub exec_root: Option<PathBuf>,
    /// Daemon configuration file
    #[arg(long = "config-file", value_name = "FILE", default_value = DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,
    /// Path to use for the daemon PID file
    #[arg(short = 'p', long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Default OCI runtime for containers
    #[arg(long = "default-runtime", value_name = "NAME")]
    pub default_runtime: Option<String>,
    /// Register an additional OCI compatible runtime (name=path)
    #[arg(long = "add-runtime", value_name = "NAME=PATH")]
    pub add_runtime: Vec<String>,
    /// Path to the docker-init binary (tini)
    #[arg(long = "init-path", value_name = "FILE")]
    pub init_path: Option<PathBuf>,
    /// Run an init inside containers to forward signals and reap processes
    #[arg(long = "init")]
    pub init: bool,
    /// Set parent cgroup for all containers
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Preferred registry mirror
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub registry_mirrors: Vec<String>,
    /// Enable insecure registry communication
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Set the max concurrent downloads
    #[arg(long = "max-concurrent-downloads", value_name = "N")]
    pub max_concurrent_downloads: Option<u32>,
    /// Default driver for container logs
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Default log driver options for containers (key=value)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opts: Vec<String>,
    /// Path to the default seccomp profile
    #[arg(long = "seccomp-profile", value_name = "FILE")]
    pub seccomp_profile: Option<String>,
    /// Set no-new-privileges by default for new containers
    #[arg(long = "no-new-privileges")]
    pub no_new_privileges: bool,
    /// Limit the CPU real-time period in microseconds for the parent cgroup for all containers
    #[arg(long = "cpu-rt-period", value_name = "INT")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds for the parent cgroup for all containers
    #[arg(long = "cpu-rt-runtime", value_name = "INT")]
    pub cpu_rt_runtime: Option<i64>,
    /// Use TLS; implied by --tlsverify
    #[arg(long = "tls", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls: Option<bool>,
    /// Use TLS and verify the remote
    #[arg(long = "tlsverify", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tlsverify: Option<bool>,
    /// Trust certs signed only by this CA (default ~/.docker/ca.pem)
    #[arg(long = "tlscacert", value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default ~/.docker/cert.pem)
    #[arg(long = "tlscert", value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file (default ~/.docker/key.pem)
    #[arg(long = "tlskey", value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
}

/// Docker refuses a setting given both as a flag and in daemon.json.
fn merge(args: &DaemonArgs, m: &ArgMatches, file: FileConfig) -> anyhow::Result<FileConfig> {
    let mut fc = file;
    let mut conflicts = Vec::new();
    let explicit = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    macro_rules! set {
        ($id:literal, $key:literal, $field:ident, $val:expr) => {
            if explicit($id) {
                if let Some(existing) = &fc.$field {
                    conflicts.push(format!(
                        "{}: (from flag: {:?}, from file: {:?})",
                        $key, $val, existing
                    ));
                } else {
                    fc.$field = Some($val);
                }
            }
        };
    }
    set!("hosts", "hosts", hosts, args.hosts.clone());
    set!(
        "data_root",
        "data-root",
        data_root,
        args.data_root.clone().unwrap_or_default()
    );
    set!(
        "exec_root",
        "exec-root",
        exec_root,
        args.exec_root.clone().unwrap_or_default()
    );
    set!(
        "pidfile",
        "pidfile",
        pidfile,
        args.pidfile.clone().unwrap_or_default()
    );
    set!("debug", "debug", debug, args.debug);
    set!(
        "log_level",
        "log-level",
        log_level,
        args.log_level.clone().unwrap_or_default()
    );
    set!(
        "default_runtime",
        "default-runtime",
        default_runtime,
        args.default_runtime.clone().unwrap_or_default()
    );
    set!(
        "init_path",
        "init-path",
        init_path,
        args.init_path.clone().unwrap_or_default()
    );
    set!("init", "init", init, args.init);
    set!(
        "cgroup_parent",
        "cgroup-parent",
        cgroup_parent,
        args.cgroup_parent.clone().unwrap_or_default()
    );
    set!(
        "registry_mirrors",
        "registry-mirrors",
        registry_mirrors,
        args.registry_mirrors.clone()
    );
    set!(
        "insecure_registries",
        "insecure-registries",
        insecure_registries,
        args.insecure_registries.clone()
    );
    set!(
        "max_concurrent_downloads",
        "max-concurrent-downloads",
        max_concurrent_downloads,
        args.max_concurrent_downloads.unwrap_or(3)
    );
    set!(
        "log_driver",
        "log-driver",
        log_driver,
        args.log_driver.clone().unwrap_or_default()
    );
    set!(
        "seccomp_profile",
        "seccomp-profile",
        seccomp_profile,
        args.seccomp_profile.clone().unwrap_or_default()
    );
    set!(
        "no_new_privileges",
        "no-new-privileges",
        no_new_privileges,
        args.no_new_privileges
    );
    set!(
        "cpu_rt_period",
        "cpu-rt-period",
        cpu_rt_period,
        args.cpu_rt_period.unwrap_or(0)
    );
    set!(
        "cpu_rt_runtime",
        "cpu-rt-runtime",
        cpu_rt_runtime,
        args.cpu_rt_runtime.unwrap_or(0)
    );
    set!("tls", "tls", tls, args.tls.unwrap_or(true));
    set!(
        "tlsverify",
        "tlsverify",
        tlsverify,
        args.tlsverify.unwrap_or(true)
    );
    set!(
        "tlscacert",
        "tlscacert",
        tlscacert,
        args.tlscacert.clone().unwrap_or_default()
    );
    set!(
        "tlscert",
        "tlscert",
        tlscert,
        args.tlscert.clone().unwrap_or_default()
    );
    set!(
        "tlskey",
        "tlskey",
        tlskey,
        args.tlskey.clone().unwrap_or_default()
    );
    if explicit("log_opts") {
        let mut opts = std::collections::BTreeMap::new();
        for kv in &args.log_opts {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("invalid log-opt {kv:?}: expected key=value"))?;
            opts.insert(k.to_string(), v.to_string());
        }
        if fc.log_opts.is_some() {
            conflicts.push(format!(
                "log-opts: (from flag: {opts:?}, from file: {:?})",
                fc.log_opts
            ));
        } else {
            fc.log_opts = Some(opts);
        }
    }
    for r in &args.add_runtime {
        let (name, path) = r
            .split_once('=')
            .with_context(|| format!("invalid runtime {r:?}: expected name=path"))?;
        let map = fc.runtimes.get_or_insert_with(Default::default);
        if map.contains_key(name) {
            conflicts.push(format!(
                "runtimes: {name} is defined both as a flag and in the configuration file"
            ));
        }
        map.insert(
            name.to_string(),
            RuntimeEntry {
                path: path.to_string(),
                runtime_args: vec![],
            },
        );
    }
    if !conflicts.is_empty() {
        bail!(
            "unable to configure the berth daemon with file {}: the following directives are specified both as a flag and in the configuration file: {}",
            args.config_file.display(),
            conflicts.join(", ")
        );
    }
    Ok(fc)
}

/// Entry point; `matches` are the daemon subcommand's matches (to know which flags were given).
pub fn run(args: DaemonArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let explicit_config = matches.value_source("config_file") == Some(ValueSource::CommandLine);
    let file = FileConfig::load(&args.config_file, explicit_config)?;
    let fc = merge(&args, matches, file)?;
    let level = if fc.debug == Some(true) {
        "debug".to_string()
    } else {
        fc.log_level.clone().unwrap_or_else(|| "info".into())
    };
    let filter = match level.as_str() {
        "fatal" => "error".to_string(),
        l => l.to_string(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let shim_source = std::env::current_exe().context("cannot find the berth binary")?;
    let cfg = EngineConfig::from_file_config(&fc, shim_source)?;
    let hosts = if cfg.hosts.is_empty() {
        vec![berth_api::DEFAULT_HOST.to_string()]
    } else {
        cfg.hosts.clone()
    };
    let tls = ApiTls::from_config(&fc, |k| std::env::var(k).ok())?;
    let server_tls = match &tls {
        Some(t) => Some(
            berth_api::tls::server_config(Some(&t.ca), &t.cert, &t.key, t.verify)
                .context("invalid TLS configuration")?,
        ),
        None => None,
    };
    for h in &hosts {
        check_tcp_exposure(h, tls.as_ref(), &fc)?;
    }
    let pidfile = fc
        .pidfile
        .clone()
        .unwrap_or_else(|| cfg.exec_root.join("berth.pid"));

    // The daemon should be the last thing the OOM killer picks (Docker uses -500 too).
    let _ = std::fs::write("/proc/self/oom_score_adj", "-500");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berthd")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let _pid = PidFile::create(&pidfile)?;
        let engine = Engine::open(cfg).await?;
        let mut listeners = Vec::new();
        for h in &hosts {
            listeners.push(match (&server_tls, h.starts_with("tcp://")) {
                (Some(cfg), true) => Listener::bind_tls(h, cfg.clone()).await?,
                _ => Listener::bind(h).await?,
            });
        }
        let backend = Arc::new(berth_engine::Daemon(engine.clone()));
        tracing::info!("berth daemon {} ready", env!("CARGO_PKG_VERSION"));
        serve(listeners, backend, shutdown_signal()).await?;
        engine.shutdown().await;
        for h in &hosts {
            if let Some(p) = h.strip_prefix("unix://") {
                let _ = std::fs::remove_file(p);
            }
        }
        Ok::<(), anyhow::Error>(())
    })
}

/// The API's TLS settings after Docker's rules: `tlsverify` given (with any value) or
/// `DOCKER_TLS_VERIFY` set implies TLS; with TLS, clients are verified unless `tlsverify` is
/// false; the files default to `ca.pem`, `cert.pem`, `key.pem` in `DOCKER_CERT_PATH`, else
/// `DOCKER_CONFIG`, else `~/.docker`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiTls {
    verify: bool,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl ApiTls {
    fn from_config(
        fc: &FileConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<ApiTls>> {
        let set = |k: &str| env(k).filter(|v| !v.is_empty());
        let env_verify = set("DOCKER_TLS_VERIFY").is_some();
        let tls = fc.tlsverify.is_some() || env_verify || fc.tls == Some(true);
        if !tls {
            return Ok(None);
        }
        let verify = fc.tlsverify.unwrap_or(true);
        let dir = set("DOCKER_CERT_PATH")
            .or_else(|| set("DOCKER_CONFIG"))
            .map(PathBuf::from)
            .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from("/root/.docker"));
        let pick = |v: &Option<PathBuf>, default: &str| match v {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => dir.join(default),
        };
        Ok(Some(ApiTls {
            verify,
            ca: pick(&fc.tlscacert, "ca.pem"),
            cert: pick(&fc.tlscert, "cert.pem"),
            key: pick(&fc.tlskey, "key.pem"),
        }))
    }
}

/// Plain TCP gives root on this machine to everyone who can reach the port. Docker warns and
/// (for non-loopback addresses without an explicit `--tls=false`/`--tlsverify=false`) delays
/// its start, announcing a hard failure; berth makes it that failure now (decision 0012),
/// and only warns for loopback addresses or when the risk was accepted explicitly.
fn check_tcp_exposure(host: &str, tls: Option<&ApiTls>, fc: &FileConfig) -> anyhow::Result<()> {
    let Some(addr) = host.strip_prefix("tcp://") else {
        return Ok(());
    };
    if tls.is_some_and(|t| t.verify) {
        return Ok(());
    }
    tracing::warn!(host, "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.");
    tracing::warn!(host, "Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!");
    // Docker's checkTLSAuthOK: TLS explicitly off, or TLS on with tlsverify given either way.
    let explicit = fc.tls == Some(false) || (tls.is_some() && fc.tlsverify.is_some());
    if explicit || is_loopback(addr) {
        return Ok(());
    }
    bail!(
        "refusing to listen on {host} without --tlsverify: everyone who can reach this address would get root access on this machine. Use --tlsverify with --tlscacert, --tlscert and --tlskey, listen on a loopback address, or explicitly specify '--tls=false' or '--tlsverify=false' to accept the risk"
    )
}

/// Whether every address `host:port` names is a loopback address ("localhost" included).
fn is_loopback(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h,
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    match (host, 0).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    let mut int = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
}

/// The daemon's pid file; refuses to start over a live daemon, replaces a stale file.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &std::path::Path) -> anyhow::Result<PidFile> {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(pid) = s.trim().parse::<i32>() {
                if pid != std::process::id() as i32 && process_alive(pid) {
                    bail!(
                        "pid file found, ensure berth daemon is not running or delete {}",
                        path.display()
                    );
                }
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A pid is alive if it exists and is not a zombie (PID 1 here reaps slowly).
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state is the field after the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// Parses the `daemon` subcommand from raw arguments, keeping the matches (for value sources).
pub fn parse(argv: &[std::ffi::OsString]) -> (DaemonArgs, ArgMatches) {
    let cmd =
        DaemonArgs::augment_args(clap::Command::new("berth daemon").about("Run the berth daemon"));
    let m = cmd.get_matches_from(argv);
    let args = match DaemonArgs::from_arg_matches(&m) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    (args, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fc(json: &str) -> FileConfig {
        FileConfig::parse(json).unwrap()
    }

    #[test]
    fn tls_rules() {
        let none = |_: &str| None;
        assert_eq!(ApiTls::from_config(&fc("{}"), none).unwrap(), None);
        assert_eq!(
            ApiTls::from_config(&fc(r#"{"tls": false}"#), none).unwrap(),
            None
        );
        // tlsverify given (even false) implies TLS; tls alone verifies clients.
        let t = ApiTls::from_config(&fc(r#"{"tlsverify": false}"#), none)
            .unwrap()
            .unwrap();
        assert!(!t.verify);
        let home = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        let t = ApiTls::from_config(&fc(r#"{"tls": true}"#), home)
            .unwrap()
            .unwrap();
        assert!(t.verify);
        assert_eq!(t.ca, PathBuf::from("/home/u/.docker/ca.pem"));
        let env = |k: &str| match k {
            "DOCKER_TLS_VERIFY" => Some("1".to_string()),
            "DOCKER_CERT_PATH" => Some("/certs".to_string()),
            _ => None,
        };
        let t = ApiTls::from_config(&fc(r#"{"tlscert": "/x/c.pem"}"#), env)
            .unwrap()
            .unwrap();
        assert!(t.verify);
        assert_eq!(t.ca, PathBuf::from("/certs/ca.pem"));
        assert_eq!(t.cert, PathBuf::from("/x/c.pem"));
    }

    #[test]
    fn plain_tcp_exposure() {
        let plain = fc("{}");
        assert!(check_tcp_exposure("unix:///x.sock", None, &plain).is_ok());
        assert!(check_tcp_exposure("tcp://127.0.0.1:2375", None, &plain).is_ok());
        assert!(check_tcp_exposure("tcp://[::1]:2375", None, &plain).is_ok());
        assert!(check_tcp_exposure("tcp://localhost:2375", None, &plain).is_ok());
        let e = check_tcp_exposure("tcp://0.0.0.0:2375", None, &plain).unwrap_err();
        assert!(e.to_string().contains("--tls=false"), "{e}");
        // Forced.
        assert!(check_tcp_exposure("tcp://0.0.0.0:2375", None, &fc(r#"{"tls": false}"#)).is_ok());
        // TLS without client verification, explicitly.
        let f = fc(r#"{"tlsverify": false}"#);
        let t = ApiTls::from_config(&f, |_| None).unwrap();
        assert!(check_tcp_exposure("tcp://0.0.0.0:2376", t.as_ref(), &f).is_ok());
        // Verified TLS is fine anywhere.
        let f = fc(r#"{"tlsverify": true}"#);
        let t = ApiTls::from_config(&f, |_| None).unwrap();
        assert!(check_tcp_exposure("tcp://0.0.0.0:2376", t.as_ref(), &f).is_ok());
    }
}
