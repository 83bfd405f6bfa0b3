//! A container: its persisted record, its live state and the per-container locks.
//!
//! The record (`<data-root>/containers/<id>/config.v2.json`) is the source of truth across
//! daemon restarts; it is replaced atomically (temp + fsync + rename) on every change, so a
//! kill -9 at any instant leaves either the old or the new record.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_api::models::{ContainerConfig, HostConfig};
use berth_runtime::{AttachStream, ShimClient};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

pub const RECORD_FILE: &str = "config.v2.json";

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Running in Docker's sense: the process exists (also while paused).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// The persisted state part of the record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateRecord {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub oom_killed: bool,
    /// Pid of the supervisor while running (informational; the socket is what counts).
    pub shim_pid: i64,
    /// Set by stop/kill so that an exit is not mistaken for a crash (restart policies later).
    #[serde(default)]
    pub stopped_by_user: bool,
    /// Docker's `State.Health`: absent until a start with a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<berth_api::models::Health>,
}

/// Everything berth keeps about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub created: DateTime<Utc>,
    pub path: String,
    pub args: Vec<String>,
    /// The merged configuration (image defaults + request), as inspect shows it.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// Image ID (`sha256:…`).
    pub image_id: String,
    /// The image as the user named it (`busybox`), shown by ps.
    pub image_name: String,
    pub state: StateRecord,
    pub restart_count: i64,
    /// OCI runtime name (`runc`).
    pub runtime: String,
    /// The network mode the container actually got (`none`, `host`, `container:<id>`).
    pub network_mode: String,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// Binds, volumes and `--mount` tmpfs mounts (inspect's `Mounts`).
    pub mounts: Vec<crate::volumes::MountRecord>,
    /// Docker's HasBeenStartedBefore: decides whether a restart reuses the rw layer.
    #[serde(default)]
    pub has_been_started: bool,
    /// Maximum json-file size and count for this container.
    #[serde(default)]
    pub log_max_size: Option<u64>,
    #[serde(default = "one")]
    pub log_max_file: u32,
    /// False when the log driver is `none`.
    #[serde(default = "yes")]
    pub log_enabled: bool,
    /// The networks the container is on, by name, with their settings (aliases, static
    /// addresses): `NetworkingConfig.EndpointsConfig`, then connects and disconnects.
    #[serde(default)]
    pub endpoints_config: std::collections::BTreeMap<String, berth_api::models::EndpointSettings>,
    /// The live network attachment while it runs (namespace, endpoints, published ports).
    #[serde(default)]
    pub sandbox: Option<crate::network::Sandbox>,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

/// What waiters watch: changes on every state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunState {
    pub status: Status,
    pub exit_code: i64,
    /// Incremented on every exit, so `next-exit` waiters see the next one.
    pub exits: u64,
    pub removed: bool,
}

#[derive(Default)]
struct ShimSlot {
    shim: Option<Arc<ShimClient>>,
    pending: Vec<PendingAttach>,
}

/// Where an attach client gets its stream.
pub enum AttachSource {
    Shim(Arc<ShimClient>),
    Queued(oneshot::Receiver<AttachStream>),
}

/// An attach request waiting for the container to start.
pub type PendingAttach = (AttachWants, oneshot::Sender<AttachStream>);

#[derive(Debug, Clone, Copy, Default)]
pub struct AttachWants {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

pub struct Container {
    pub id: String,
    /// `<data-root>/containers/<id>`
    pub dir: PathBuf,
    /// `<exec-root>/containers/<id>`: the OCI bundle and the shim's files.
    pub bundle: PathBuf,
    record: Mutex<ContainerRecord>,
    /// Serialises life-cycle operations (start, stop, kill, remove, restart, pause).
    pub op: tokio::sync::Mutex<()>,
    state_tx: watch::Sender<RunState>,
    /// The supervisor and the attach clients waiting for it, under one lock so that an attach
    /// either gets the supervisor or is queued before `start` takes the queue.
    slot: Mutex<ShimSlot>,
    pub exec_ids: Mutex<Vec<String>>,
    /// The supervisor of the last run, which may still be cleaning up after the exit.
    pub prev_shim_pid: Mutex<Option<i32>>,
    /// Restart policy state (back-off, pending restart). Lock order: before `record`.
    restart: Mutex<crate::restart::RestartManager>,
    /// Health-check monitor state. Lock order: before `record`.
    health: Mutex<crate::health::Monitor>,
    /// The process of the bundle's OCI spec, parsed once per spec file (keyed by its mtime and
    /// size): every exec (and so every health probe) starts from it, and parsing the spec with
    /// its seccomp profile at each probe was most of a probe's cost in the daemon.
    pub(crate) spec_process:
        Mutex<Option<(std::time::SystemTime, u64, oci_spec::runtime::Process)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Container {
    pub fn new(rec: ContainerRecord, data_root: &Path, exec_root: &Path) -> Arc<Container> {
        let rs = RunState {
            status: rec.state.status,
            exit_code: rec.state.exit_code,
            exits: 0,
            removed: false,
        };
        let (state_tx, _) = watch::channel(rs);
        Arc::new(Container {
            id: rec.id.clone(),
            dir: data_root.join("containers").join(&rec.id),
            bundle: exec_root.join("containers").join(&rec.id),
            record: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            state_tx,
            slot: Mutex::new(ShimSlot::default()),
            exec_ids: Mutex::new(Vec::new()),
            prev_shim_pid: Mutex::new(None),
            restart: Mutex::new(Default::default()),
            health: Mutex::new(Default::default()),
            spec_process: Mutex::new(None),
        })
    }

    /// A snapshot of the record.
    pub fn record(&self) -> ContainerRecord {
        lock(&self.record).clone()
    }

    /// Reads part of the record without cloning all of it.
    pub fn with<R>(&self, f: impl FnOnce(&ContainerRecord) -> R) -> R {
        f(&lock(&self.record))
    }

    /// Changes the record in memory, persists it, and publishes the new run state.
    pub fn update(&self, f: impl FnOnce(&mut ContainerRecord)) -> std::io::Result<()> {
        let bytes = self.change(f)?;
        berth_image::fsutil::write_atomic(&self.dir, RECORD_FILE, &bytes)
    }

    /// Like [`Container::update`] but written without fsyncs: for states whose loss in a power
    /// failure is harmless (the exit of a container that is removed next).
    pub fn update_volatile(&self, f: impl FnOnce(&mut ContainerRecord)) -> std::io::Result<()> {
        let bytes = self.change(f)?;
        berth_image::fsutil::write_replace(&self.dir, RECORD_FILE, &bytes, 0o600)
    }

    /// Applies `f` to the record in memory, publishes the new run state and returns the
    /// record's bytes for the caller to persist.
    fn change(&self, f: impl FnOnce(&mut ContainerRecord)) -> std::io::Result<Vec<u8>> {
        let (bytes, rs) = {
            let mut r = lock(&self.record);
            f(&mut r);
            let bytes = serde_json::to_vec(&*r).map_err(std::io::Error::other)?;
            (bytes, (r.state.status, r.state.exit_code))
        };
        self.publish(rs.0, rs.1, false);
        Ok(bytes)
    }

    /// Changes the record in memory only, without waking waiters (health results: frequent,
    /// and best-effort persisted as in Docker).
    pub fn modify_quiet<R>(&self, f: impl FnOnce(&mut ContainerRecord) -> R) -> R {
        f(&mut lock(&self.record))
    }

    /// Persists the current record without fsyncs (see [`Container::update_volatile`]).
    pub fn save_volatile(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&*lock(&self.record)).map_err(std::io::Error::other)?;
        berth_image::fsutil::write_replace(&self.dir, RECORD_FILE, &bytes, 0o600)
    }

    pub(crate) fn restart_manager(&self) -> MutexGuard<'_, crate::restart::RestartManager> {
        lock(&self.restart)
    }

    pub(crate) fn health_monitor(&self) -> MutexGuard<'_, crate::health::Monitor> {
        lock(&self.health)
    }

    /// Changes the state in memory only (e.g. `removing`: the record is deleted next).
    pub fn set_status_in_memory(&self, status: Status) {
        let code = {
            let mut r = lock(&self.record);
            r.state.status = status;
            r.state.exit_code
        };
        self.publish(status, code, false);
    }

    /// Persists the current record without changing it.
    pub fn save(&self) -> std::io::Result<()> {
        self.update(|_| {})
    }

    fn publish(&self, status: Status, exit_code: i64, exited: bool) {
        self.state_tx.send_modify(|s| {
            s.status = status;
            s.exit_code = exit_code;
            if exited {
                s.exits += 1;
            }
        });
    }

    /// Records an exit (after `update` wrote it): wakes `next-exit` waiters.
    pub fn notify_exit(&self) {
        let (st, code) = self.with(|r| (r.state.status, r.state.exit_code));
        self.publish(st, code, true);
    }

    /// Marks the container removed: wakes `removed` waiters.
    pub fn notify_removed(&self) {
        self.state_tx.send_modify(|s| s.removed = true);
    }

    pub fn subscribe(&self) -> watch::Receiver<RunState> {
        self.state_tx.subscribe()
    }

    pub fn shim(&self) -> Option<Arc<ShimClient>> {
        lock(&self.slot).shim.clone()
    }

    /// Clears the supervisor (exit) and drops queued attach clients (they see EOF).
    pub fn clear_shim(&self) {
        let mut s = lock(&self.slot);
        s.shim = None;
        s.pending.clear();
    }

    /// Installs the supervisor of a new start and returns the attach clients that queued.
    pub fn set_shim(&self, shim: Arc<ShimClient>) -> Vec<PendingAttach> {
        let mut s = lock(&self.slot);
        s.shim = Some(shim);
        std::mem::take(&mut s.pending)
    }

    /// The supervisor if there is one, else a queue place until the next start.
    pub fn attach_or_queue(&self, wants: AttachWants) -> AttachSource {
        let mut s = lock(&self.slot);
        match &s.shim {
            Some(shim) => AttachSource::Shim(shim.clone()),
            None => {
                let (tx, rx) = oneshot::channel();
                s.pending.push((wants, tx));
                AttachSource::Queued(rx)
            }
        }
    }

    pub fn status(&self) -> Status {
        self.with(|r| r.state.status)
    }

    pub fn name(&self) -> String {
        self.with(|r| r.name.clone())
    }
}

/// Loads a record from `<dir>/config.v2.json`.
pub fn load_record(dir: &Path) -> Result<ContainerRecord, String> {
    let p = dir.join(RECORD_FILE);
    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display()))
}

/// RFC 3339 with nanoseconds, as Docker writes timestamps; the zero time when unset.
pub fn docker_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}
