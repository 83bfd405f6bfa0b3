//! berth-engine: the daemon's domain. It owns container records, names, the life-cycle state
//! machine and events, and glues the image store (`berth-image`) to the runtime
//! (`berth-runtime`). It implements `berth_api::Backend`; it knows no HTTP.

pub mod check;
pub mod config;
pub mod ids;
pub mod netfiles;

pub use backend::Daemon;
pub use network::firewall_table;
mod archive;
mod attach;
mod backend;
mod build;
mod container;
mod create;
mod detach;
mod distribution;
mod dns;
mod events;
mod exec;
mod filters;
mod health;
mod images;
mod inspect;
mod lifecycle;
mod logs;
mod netproxy;
mod network;
mod ops;
mod resources;
mod restart;
mod shimexe;
mod start;
mod stats;
mod system;
mod update;
mod volumes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use berth_api::ApiError;
use berth_image::store::ImageStore;
use berth_runtime::OciRuntime;

pub use config::{EngineConfig, FileConfig};
use container::Container;
use events::EventBus;

/// Errors while opening the engine (the daemon cannot start).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the image store under {path}: {message}")]
    Images { path: PathBuf, message: String },
    #[error("cannot prepare the supervisor binary at {path}: {message}")]
    Shim { path: PathBuf, message: String },
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot open the volume store: {0}")]
    Volumes(String),
}

/// Containers by id and by name.
#[derive(Default)]
pub(crate) struct Containers {
    by_id: HashMap<String, Arc<Container>>,
    /// name (without `/`) → id
    names: HashMap<String, String>,
}

pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) containers: RwLock<Containers>,
    pub(crate) execs: exec::ExecTable,
    pub(crate) events: Arc<EventBus>,
    pub(crate) runtimes: HashMap<String, OciRuntime>,
    pub(crate) shim_exe: PathBuf,
    pub(crate) engine_id: String,
    pub(crate) cgroup_mode: berth_runtime::cgroups::CgroupMode,
    pub(crate) runtime_versions: std::sync::OnceLock<std::collections::BTreeMap<String, String>>,
    /// Registry client state shared by pulls and pushes (connections, tokens, transfers).
    pub(crate) dist: Arc<distribution::Distribution>,
    /// Networks, container network attachments, published ports.
    pub(crate) net: network::NetMgr,
    /// The health-check scheduler's queue.
    pub(crate) health_tx: health::SchedulerTx,
    /// The `local` volume driver's store.
    pub(crate) volumes: Arc<volumes::VolumeStore>,
    /// The embedded DNS server (127.0.0.11 in containers on user-defined networks).
    pub(crate) dns: dns::Dns,
}

impl Engine {
    /// Opens the stores under the configured roots, prepares the supervisor binary and
    /// re-adopts containers whose supervisors survived the previous daemon.
    pub async fn open(cfg: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        for d in [
            cfg.data_root.clone(),
            cfg.data_root.join("containers"),
            cfg.data_root.join("tmp"),
            cfg.exec_root.clone(),
            cfg.exec_root.join("containers"),
            cfg.exec_root.join("runc"),
        ] {
            std::fs::create_dir_all(&d).map_err(|source| EngineError::Dir {
                path: d.clone(),
                source,
            })?;
        }
        restrict(&cfg.data_root, 0o711);
        restrict(&cfg.exec_root, 0o700);
        let data_root = cfg.data_root.clone();
        let images = tokio::task::spawn_blocking(move || ImageStore::open(&data_root))
            .await
            .map_err(|e| EngineError::Images {
                path: cfg.data_root.clone(),
                message: e.to_string(),
            })?
            .map_err(|e| EngineError::Images {
                path: cfg.data_root.clone(),
                message: e.to_string(),
            })?;
        let shim_exe = shimexe::prepare(&cfg.shim_source, &cfg.exec_root).map_err(|message| {
            EngineError::Shim {
                path: cfg.exec_root.join(shimexe::SHIM_NAME),
                message,
            }
        })?;
        let mut runtimes = HashMap::new();
        for (name, r) in &cfg.runtimes {
            // Resolve a bare name (`runc`) against PATH once, now: the daemon then always runs
            // the same binary, and no lookup happens per container.
            let path = resolve_in_path(&r.path).unwrap_or_else(|| {
                tracing::warn!("OCI runtime {name}: {} not found in PATH", r.path.display());
                r.path.clone()
            });
            let mut rt = OciRuntime::new(name.clone(), path, cfg.exec_root.join(name));
            rt.extra_args = r.args.clone();
            runtimes.insert(name.clone(), rt);
        }
        let volumes = volumes::VolumeStore::open(&cfg.data_root)
            .map_err(|e| EngineError::Volumes(e.to_string()))?;
        let engine_id = engine_id(&cfg.data_root);
        let dist = distribution::Distribution::new(&cfg)
            .map_err(|e| EngineError::Config(config::ConfigError::Invalid(e)))?;
        let net = network::NetMgr::open(&cfg).await;
        let (health_tx, health_rx) = health::channel();
        let engine = Arc::new(Engine {
            net,
            dns: dns::Dns::start(),
            images: Arc::new(images),
            containers: RwLock::new(Containers::default()),
            execs: exec::ExecTable::default(),
            events: Arc::new(EventBus::new()),
            runtimes,
            shim_exe,
            engine_id,
            cgroup_mode: berth_runtime::cgroups::detect_mode()
                .unwrap_or(berth_runtime::cgroups::CgroupMode::V2),
            runtime_versions: std::sync::OnceLock::new(),
            dist,
            health_tx,
            volumes: Arc::new(volumes),
            cfg,
        });
        health::spawn_scheduler(&engine, health_rx);
        engine.restore().await;
        engine.cleanup_builds().await;
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Called on daemon shutdown. Containers keep running under their supervisors.
    pub async fn shutdown(&self) {
        tracing::info!("engine shutting down; containers keep running under their supervisors");
        shimexe::release(&self.cfg.exec_root);
    }

    pub(crate) fn runtime(&self, name: &str) -> Result<&OciRuntime, ApiError> {
        self.runtimes.get(name).ok_or_else(|| {
            ApiError::bad_request(format!("unknown or invalid runtime name: {name}"))
        })
    }

    /// Finds a container by full ID, name, or unique ID prefix (Docker's rules).
    pub(crate) fn lookup(&self, ref_: &str) -> Result<Arc<Container>, ApiError> {
        self.try_lookup(ref_)?
            .ok_or_else(|| ApiError::not_found(format!("No such container: {ref_}")))
    }

    pub(crate) fn try_lookup(&self, ref_: &str) -> Result<Option<Arc<Container>>, ApiError> {
        if ref_.is_empty() {
            return Ok(None);
        }
        let cs = self.containers.read().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cs.by_id.get(ref_) {
            return Ok(Some(c.clone()));
        }
        let name = ref_.strip_prefix('/').unwrap_or(ref_);
        if let Some(id) = cs.names.get(name) {
            if let Some(c) = cs.by_id.get(id) {
                return Ok(Some(c.clone()));
            }
        }
        let mut found: Option<&Arc<Container>> = None;
        for (id, c) in &cs.by_id {
            if id.starts_with(ref_) {
                if found.is_some() {
                    return Err(ApiError::bad_request(format!(
                        "multiple IDs found with provided prefix: {ref_}"
                    )));
                }
                found = Some(c);
            }
        }
        Ok(found.cloned())
    }

    pub(crate) fn all_containers(&self) -> Vec<Arc<Container>> {
        let cs = self.containers.read().unwrap_or_else(|p| p.into_inner());
        cs.by_id.values().cloned().collect()
    }

    pub(crate) fn events_handle(&self) -> Arc<EventBus> {
        self.events.clone()
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }
}

fn restrict(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!("cannot set permissions of {}: {e}", p.display());
    }
}

/// A stable ID for this engine (shown by `info`), kept under the data root.
fn engine_id(data_root: &Path) -> String {
    let p = data_root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return s;
        }
    }
    let id = ids::new_id();
    if let Err(e) = berth_image::fsutil::write_atomic(data_root, "engine-id", id.as_bytes()) {
        tracing::warn!("cannot persist the engine id: {e}");
    }
    id
}

/// An absolute path for `p`: as given when it has a slash, else the first executable match in
/// PATH.
fn resolve_in_path(p: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if p.components().count() > 1 || p.is_absolute() {
        return Some(p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(p)).find(|c| {
        std::fs::metadata(c)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}
