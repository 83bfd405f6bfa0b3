//! `berth system check [--repair]`: walks a data root (and exec root) while no daemon uses
//! them and reports — or mends — what crashes leave: half-written files, orphaned layers and
//! blobs, records naming layers that are gone, container directories without records,
//! container layers without containers, mounts nobody uses, supervisors (shims) without
//! container records, and running containers whose supervisor is gone. The image side is
//! `berth_image::store::check`; this module adds the containers.
//!
//! The daemon runs the cheap part at every start (`ImageStore::open` and `Engine::restore`
//! remove the same leftovers); the check is for the administrator who wants to know, and
//! for the repairs that need no running daemon.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use berth_image::layer::LayerStore;
use berth_image::store::check as image_check;
use berth_runtime::shim::files;
use berth_runtime::ShimClient;

use crate::container::{load_record, ContainerRecord, Status, RECORD_FILE};

const TRASH_PREFIX: &str = ".trash-";
const QUARANTINE_PREFIX: &str = ".unreadable-";

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `image` or `container`.
    pub area: &'static str,
    /// What kind of problem (`orphaned layer`, `half-written`, …).
    pub problem: String,
    pub path: PathBuf,
    pub detail: String,
    /// A notice (something set aside for an administrator), not an error.
    pub notice: bool,
}

/// Errors of the check itself (not findings).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("checking the images under {path}: {message}")]
    Images { path: PathBuf, message: String },
    #[error(
        "{action} {path}: {source}; fix the permissions or the file system and run the check again"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CheckError + 'a {
    move |source| CheckError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn container(problem: &str, path: PathBuf, detail: impl Into<String>) -> Finding {
    Finding {
        area: "container",
        problem: problem.to_string(),
        path,
        detail: detail.into(),
        notice: false,
    }
}

/// What is on disk about containers.
struct Containers {
    findings: Vec<Finding>,
    records: HashMap<String, ContainerRecord>,
    quarantined: HashSet<String>,
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, CheckError> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .collect::<Result<Vec<_>, _>>()
            .map_err(io("listing", dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("listing", dir)(e)),
    }
}

/// Mount points (from /proc/self/mountinfo) under `root`.
fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(root) && p != root)
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn shim_alive(bundle: &Path) -> bool {
    bundle.join(files::SHIM_SOCK).exists() && ShimClient::connect(bundle).await.is_ok()
}

async fn scan_containers(data_root: &Path, exec_root: &Path) -> Result<Containers, CheckError> {
    let mut out = Containers {
        findings: Vec::new(),
        records: HashMap::new(),
        quarantined: HashSet::new(),
    };
    let dir = data_root.join("containers");
    for ent in read_dir(&dir)? {
        let name = ent.file_name().to_string_lossy().into_owned();
        let path = ent.path();
        if let Some(id) = name.strip_prefix(QUARANTINE_PREFIX) {
            out.quarantined.insert(id.to_string());
            out.findings.push(Finding {
                notice: true,
                ..container(
                    "set aside",
                    path,
                    "an unreadable container record kept with its filesystem for an administrator",
                )
            });
            continue;
        }
        if !path.is_dir() {
            continue;
        }
        if name.starts_with(TRASH_PREFIX) {
            out.findings.push(container(
                "half-written",
                path,
                "a container removal that was interrupted",
            ));
            continue;
        }
        if !path.join(RECORD_FILE).exists() {
            out.findings.push(container(
                "half-written",
                path,
                "a container create interrupted before its record was written",
            ));
            continue;
        }
        for f in read_dir(&path)? {
            let n = f.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') && n.contains(".tmp-") {
                out.findings.push(container(
                    "half-written",
                    f.path(),
                    "an interrupted write of a container record",
                ));
            }
        }
        match load_record(&path) {
            Ok(rec) => {
                out.records.insert(rec.id.clone(), rec);
            }
            Err(e) => out
                .findings
                .push(container("unreadable container record", path, e)),
        }
    }
    let unreadable: HashSet<String> = out
        .findings
        .iter()
        .filter(|f| f.problem == "unreadable container record")
        .filter_map(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();

    // Container layers.
    let layers = layer_store(data_root)?;
    let rw_ids: HashSet<String> = layers
        .rw_ids()
        .map_err(|e| CheckError::Images {
            path: data_root.to_path_buf(),
            message: e.to_string(),
        })?
        .into_iter()
        .collect();
    for id in &rw_ids {
        if !out.records.contains_key(id)
            && !out.quarantined.contains(id)
            && !unreadable.contains(id)
        {
            out.findings.push(container(
                "orphaned container layer",
                data_root.join("overlay2").join(id),
                format!("the read-write layer of {id}, a container that does not exist"),
            ));
        }
    }
    let mut alive = HashSet::new();
    for (id, rec) in &out.records {
        if !rw_ids.contains(id) {
            out.findings.push(container(
                "missing container layer",
                data_root.join("overlay2").join(id),
                format!(
                    "container {} ({id}) has no read-write layer; its changes are lost",
                    rec.name
                ),
            ));
        }
        let bundle = exec_root.join("containers").join(id);
        if rec.state.status.is_running() {
            if shim_alive(&bundle).await {
                alive.insert(id.clone());
            } else {
                out.findings.push(container(
                    "supervisor gone",
                    bundle,
                    format!(
                        "container {} ({id}) is recorded as {} but its supervisor is gone",
                        rec.name,
                        rec.state.status.as_str()
                    ),
                ));
            }
        }
    }
    // Bundles (and their supervisors) without records.
    for ent in read_dir(&exec_root.join("containers"))? {
        let id = ent.file_name().to_string_lossy().into_owned();
        if out.records.contains_key(&id) || unreadable.contains(&id) || !ent.path().is_dir() {
            continue;
        }
        let live = shim_alive(&ent.path()).await;
        out.findings.push(container(
            if live {
                "shim without record"
            } else {
                "bundle without record"
            },
            ent.path(),
            if live {
                format!("a supervisor runs container {id}, which has no record")
            } else {
                format!("the runtime bundle of {id}, a container that does not exist")
            },
        ));
    }
    // Mounts of containers that are not running.
    for root in [data_root, exec_root] {
        for m in mounts_under(root) {
            let owner = m
                .strip_prefix(data_root.join("overlay2"))
                .ok()
                .and_then(|r| r.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            let used = owner.as_ref().is_some_and(|id| alive.contains(id));
            if !used && m.starts_with(data_root.join("overlay2")) {
                out.findings.push(container(
                    "dangling mount",
                    m,
                    "a container filesystem mounted while its container is not running",
                ));
            }
        }
    }
    Ok(out)
}

fn layer_store(data_root: &Path) -> Result<LayerStore, CheckError> {
    Ok(LayerStore::at(data_root))
}

/// Every finding, images first. Changes nothing.
pub async fn scan(data_root: &Path, exec_root: &Path) -> Result<Vec<Finding>, CheckError> {
    let mut out: Vec<Finding> = image_check::scan(data_root)
        .map_err(|e| CheckError::Images {
            path: data_root.to_path_buf(),
            message: e.to_string(),
        })?
        .into_iter()
        .map(|f| Finding {
            area: "image",
            problem: f.problem.as_str().to_string(),
            path: f.path,
            detail: f.detail,
            notice: false,
        })
        .collect();
    out.extend(scan_containers(data_root, exec_root).await?.findings);
    Ok(out)
}

/// Mends every finding that can be mended, containers first (so that layers only their
/// leftovers kept become orphans), then the images; returns what is left.
pub async fn repair(data_root: &Path, exec_root: &Path) -> Result<Vec<Finding>, CheckError> {
    let found = scan_containers(data_root, exec_root).await?;
    let layers = layer_store(data_root)?;
    for f in found
        .findings
        .iter()
        .filter(|f| f.problem == "dangling mount")
    {
        let _ = nix::mount::umount2(&f.path, nix::mount::MntFlags::MNT_DETACH);
    }
    for f in &found.findings {
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match f.problem.as_str() {
            "half-written" if f.path.is_dir() => {
                std::fs::remove_dir_all(&f.path).map_err(io("removing", &f.path))?
            }
            "half-written" => std::fs::remove_file(&f.path).map_err(io("removing", &f.path))?,
            "unreadable container record" => {
                // Never delete what cannot be read: set it aside with its filesystem.
                let aside = f.path.with_file_name(format!("{QUARANTINE_PREFIX}{name}"));
                std::fs::rename(&f.path, &aside).map_err(io("setting aside", &f.path))?;
            }
            "orphaned container layer" => {
                let _ = layers.unmount_rw(&name);
                layers.remove_rw(&name).map_err(|e| CheckError::Images {
                    path: f.path.clone(),
                    message: e.to_string(),
                })?;
            }
            "missing container layer" => {
                if let Some(rec) = found.records.get(&name) {
                    let top = image_check::image_top_layer(data_root, &rec.image_id);
                    layers
                        .create_rw(&name, top.as_ref())
                        .map_err(|e| CheckError::Images {
                            path: f.path.clone(),
                            message: format!(
                                "recreating the layer of {}: {e}; remove the container",
                                rec.name
                            ),
                        })?;
                }
            }
            "supervisor gone" => {
                // Its processes may outlive the supervisor: end them before recording the exit.
                kill_container(exec_root, &name).await;
                if let Some(rec) = found.records.get(&name) {
                    mark_exited(data_root, rec)?;
                }
                let _ = std::fs::remove_dir_all(&f.path);
            }
            "shim without record" => {
                stop_orphan(exec_root, &name, &f.path).await;
                let _ = std::fs::remove_dir_all(&f.path);
            }
            "bundle without record" => {
                let _ = std::fs::remove_dir_all(&f.path);
            }
            _ => {}
        }
    }
    image_check::repair(data_root).map_err(|e| CheckError::Images {
        path: data_root.to_path_buf(),
        message: e.to_string(),
    })?;
    scan(data_root, exec_root).await
}

/// Records the exit of a container whose supervisor is gone, as the daemon does when it
/// finds one at start (exit code 255, no pid).
fn mark_exited(data_root: &Path, rec: &ContainerRecord) -> Result<(), CheckError> {
    let dir = data_root.join("containers").join(&rec.id);
    let mut r = rec.clone();
    r.state.status = Status::Exited;
    r.state.pid = 0;
    r.state.shim_pid = 0;
    r.state.exit_code = 255;
    r.state.finished_at = Some(chrono::Utc::now());
    if r.state.error.is_empty() {
        r.state.error = "the container's supervisor was gone (berth system check)".into();
    }
    let bytes =
        serde_json::to_vec(&r).map_err(|e| io("encoding", &dir)(std::io::Error::other(e)))?;
    berth_image::fsutil::write_atomic(&dir, RECORD_FILE, &bytes).map_err(io("writing", &dir))
}

/// Kills container `id` with every runtime whose state directory under the exec root knows
/// it (`<exec-root>/runc`, named after the runtime), then deletes it from the runtime.
async fn kill_container(exec_root: &Path, id: &str) {
    for ent in std::fs::read_dir(exec_root).into_iter().flatten().flatten() {
        let root = ent.path();
        if root.join(id).join("state.json").exists() {
            for args in [
                vec!["kill", "--all", id, "KILL"],
                vec!["delete", "--force", id],
            ] {
                let _ = tokio::process::Command::new(ent.file_name())
                    .arg("--root")
                    .arg(&root)
                    .args(args)
                    .output()
                    .await;
            }
        }
    }
}

/// Kills the container of a supervisor that has no record and waits for the supervisor to
/// end (killing it if it does not).
async fn stop_orphan(exec_root: &Path, id: &str, bundle: &Path) {
    kill_container(exec_root, id).await;
    if let Ok(shim) = ShimClient::connect(bundle).await {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), shim.wait()).await;
    }
    if let Ok(pid) = std::fs::read_to_string(bundle.join(files::SHIM_PID)) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
