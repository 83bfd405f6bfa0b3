//! Volumes: the `local` driver's store ([`store`]), the parsing of a container's mounts
//! ([`mounts`]), the `/volumes` API and the glue to containers — volumes made and referenced
//! at create (with Docker's copy-up of image content into a new empty volume), mounted
//! while the container runs, released (and anonymous ones removed on request) at removal.

pub(crate) mod mounts;
pub(crate) mod store;

use std::collections::{BTreeMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_api::models::{
    Volume, VolumeCreateBody, VolumeListResponse, VolumeUsageData, VolumesPruneReport,
};
use berth_api::{ApiError, ApiVersion, Filters};

use crate::container::{Container, ContainerRecord};
use crate::images::join_err;
use crate::Engine;
pub(crate) use mounts::{MountPlan, MountRecord};
pub(crate) use store::{VolumeError, VolumeInfo, VolumeStore};

/// Set while a prune runs (Docker allows one at a time).
pub(crate) static PRUNE_RUNNING: AtomicBool = AtomicBool::new(false);

pub(crate) fn api_err(e: VolumeError) -> ApiError {
    match e {
        VolumeError::Invalid(m) => ApiError::bad_request(m),
        VolumeError::NotFound(m) => ApiError::not_found(m),
        VolumeError::InUse(m) => ApiError::conflict(m),
        VolumeError::Io(m) => ApiError::internal(m),
    }
}

/// The API's view of a volume.
fn to_api(v: &VolumeInfo) -> Volume {
    let m = &v.meta;
    Volume {
        created_at: m.created_at_text(),
        driver: m.driver.clone(),
        labels: (!m.labels.is_empty()).then(|| m.labels.clone()),
        mountpoint: v.mountpoint.to_string_lossy().into_owned(),
        name: m.name.clone(),
        options: (!m.options.is_empty()).then(|| m.options.clone()),
        scope: "local".into(),
        status: None,
        usage_data: None,
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// moby's `filters.Args.Match`: equal, or the value as an (unanchored) regular expression.
fn name_matches(f: &Filters, name: &str) -> bool {
    let want = f.get("name");
    want.is_empty()
        || want
            .iter()
            .any(|w| *w == name || regex::Regex::new(w).is_ok_and(|r| r.is_match(name)))
}

fn labels_match(f: &Filters, labels: &BTreeMap<String, String>) -> bool {
    f.match_kv_list("label", labels)
        && (!f.contains("label!") || !f.match_kv_list("label!", labels))
}

/// The bytes under a volume's data directory (-1 when it cannot be read, as Docker reports).
fn data_size(path: &Path) -> i64 {
    let dir = match rustix_open_dir(path) {
        Ok(d) => d,
        Err(_) => return -1,
    };
    berth_image::fstree::tree_size(dir.as_fd()).map_or(-1, |n| n as i64)
}

fn rustix_open_dir(path: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    Ok(std::os::fd::OwnedFd::from(f))
}

use std::os::unix::fs::OpenOptionsExt;

impl Engine {
    fn emit_volume(&self, action: &str, name: &str, attrs: &[(&str, String)]) {
        let attrs: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.events.emit("volume", action, name, attrs);
    }

    /// Runs a volume store operation off the async threads.
    async fn vol<T: Send + 'static>(
        &self,
        f: impl FnOnce(&VolumeStore) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let s = self.volumes.clone();
        tokio::task::spawn_blocking(move || f(&s))
            .await
            .map_err(join_err)
    }

    /// `GET /volumes`.
    pub(crate) async fn volume_list(&self, f: Filters) -> Result<VolumeListResponse, ApiError> {
        f.validate(&["dangling", "name", "driver", "label"])?;
        let dangling = f.bool_value("dangling")?;
        let vols = self.vol(|s| s.list()).await?;
        let mut out = Vec::new();
        for v in &vols {
            if !f.exact_match("driver", &v.meta.driver)
                || !name_matches(&f, &v.meta.name)
                || !labels_match(&f, &v.meta.labels)
            {
                continue;
            }
            if let Some(d) = dangling {
                if (self.volumes.ref_count(&v.meta.name) == 0) != d {
                    continue;
                }
            }
            out.push(to_api(v));
        }
        Ok(VolumeListResponse {
            volumes: Some(out),
            warnings: None,
        })
    }

    /// `POST /volumes/create`.
    pub(crate) async fn volume_create(&self, body: VolumeCreateBody) -> Result<Volume, ApiError> {
        let (info, created) = self
            .vol(move |s| {
                s.create(
                    Some(&body.name),
                    &body.driver,
                    body.labels.unwrap_or_default(),
                    body.driver_opts.unwrap_or_default(),
                    None,
                )
            })
            .await?
            .map_err(api_err)?;
        if created {
            self.emit_volume(
                "create",
                &info.meta.name,
                &[("driver", info.meta.driver.clone())],
            );
        }
        Ok(to_api(&info))
    }

    /// `GET /volumes/{name}`.
    pub(crate) async fn volume_inspect(&self, name: &str) -> Result<Volume, ApiError> {
        self.volumes
            .get(name, None)
            .map(|v| to_api(&v))
            .map_err(api_err)
    }

    /// `DELETE /volumes/{name}?force=`: 409 naming the containers while it is in use; with
    /// `force` a missing volume is not an error.
    pub(crate) async fn volume_remove(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let n = name.to_string();
        let removed = self
            .vol(move |s| s.remove(&n, force))
            .await?
            .map_err(api_err)?;
        if let Some(meta) = removed {
            self.emit_volume("destroy", name, &[("driver", meta.driver)]);
        }
        Ok(())
    }

    /// `POST /volumes/prune`: unused local volumes without mount options; anonymous ones only
    /// unless `all=true` (API 1.42+; older clients prune every unused volume).
    pub(crate) async fn volume_prune(
        &self,
        version: ApiVersion,
        mut f: Filters,
    ) -> Result<VolumesPruneReport, ApiError> {
        if PRUNE_RUNNING.swap(true, Ordering::SeqCst) {
            return Err(ApiError::conflict("a prune operation is already running"));
        }
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                PRUNE_RUNNING.store(false, Ordering::SeqCst);
            }
        }
        let _reset = Reset;
        if !version.at_least(1, 42) {
            f.add("all", "true");
        }
        f.validate(&["label", "label!", "all"])?;
        let all = match f.get("all").as_slice() {
            [] => false,
            [one] => go_bool(one).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid filter 'all': strconv.ParseBool: parsing {one:?}: invalid syntax"
                ))
            })?,
            many => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter 'all=[{}]': only one value is expected",
                    many.join(" ")
                )))
            }
        };
        let vols = self.vol(|s| s.list()).await?;
        let mut report = VolumesPruneReport {
            volumes_deleted: Some(Vec::new()),
            space_reclaimed: 0,
        };
        for v in vols {
            let m = &v.meta;
            if m.driver != store::LOCAL_DRIVER
                || !m.options.is_empty()
                || (!all && !m.is_anonymous())
                || !labels_match(&f, &m.labels)
                || self.volumes.ref_count(&m.name) > 0
            {
                continue;
            }
            let name = m.name.clone();
            let path = v.mountpoint.clone();
            let res = self
                .vol(move |s| {
                    let size = data_size(&path).max(0) as u64;
                    s.remove(&name, false).map(|r| (r, size))
                })
                .await?;
            match res {
                Ok((Some(meta), size)) => {
                    report.space_reclaimed += size;
                    if let Some(d) = report.volumes_deleted.as_mut() {
                        d.push(meta.name.clone());
                    }
                    self.emit_volume("destroy", &meta.name, &[("driver", meta.driver)]);
                }
                Ok((None, _)) => {}
                Err(e) => tracing::warn!(volume = %m.name, "could not remove volume: {e}"),
            }
        }
        let reclaimed = report.space_reclaimed.to_string();
        self.emit_volume("prune", "", &[("reclaimed", reclaimed)]);
        Ok(report)
    }

    /// The local volumes without mount options, with their size and reference count
    /// (`system df`).
    pub(crate) async fn volumes_usage(&self) -> Result<Vec<Volume>, ApiError> {
        self.vol(|s| {
            s.list()
                .into_iter()
                .filter(|v| v.meta.options.is_empty())
                .map(|v| {
                    let mut a = to_api(&v);
                    a.usage_data = Some(VolumeUsageData {
                        ref_count: s.ref_count(&v.meta.name) as i64,
                        size: data_size(&v.mountpoint),
                    });
                    a
                })
                .collect()
        })
        .await
    }

    // ----- containers -----

    /// At create: makes (or looks up) and references the volumes of `plan` for container
    /// `id`, creates the anonymous volumes of `Config.Volumes`, and copies the image's content
    /// at each volume's mount point into the volume when the volume is empty (Docker's
    /// copy-up). The container's rootfs is mounted for the copy and unmounted after. On error
    /// every reference taken is released and the volumes made for the container are removed.
    pub(crate) async fn attach_volumes(
        self: &Arc<Self>,
        id: &str,
        plan: MountPlan,
        tmpfs: &[String],
    ) -> Result<Vec<MountRecord>, ApiError> {
        let mut out: Vec<(MountRecord, bool)> = Vec::new();
        let res = self.attach_inner(id, plan, tmpfs, &mut out).await;
        let records: Vec<MountRecord> = out.into_iter().map(|(r, _)| r).collect();
        match res {
            Ok(()) => Ok(records),
            Err(e) => {
                self.detach_volumes(id, &records, true).await;
                Err(e)
            }
        }
    }

    async fn attach_inner(
        self: &Arc<Self>,
        id: &str,
        plan: MountPlan,
        tmpfs: &[String],
        out: &mut Vec<(MountRecord, bool)>,
    ) -> Result<(), ApiError> {
        fn put(out: &mut Vec<(MountRecord, bool)>, rec: MountRecord, copy: bool) {
            out.retain(|(r, _)| r.destination != rec.destination);
            out.push((rec, copy));
        }
        // 1. --volumes-from: the other container's mounts (later ones override earlier ones).
        for (cref, mode) in &plan.volumes_from {
            let other = self
                .lookup(cref)
                .map_err(|e| ApiError::bad_request(e.message))?;
            let rw = mounts::volumes_from_rw(mode);
            for m in other.with(|r| r.mounts.clone()) {
                if m.kind != "volume" && m.kind != "bind" {
                    continue;
                }
                let mut rec = MountRecord {
                    point: m.point.clone(),
                    anonymous: m.anonymous,
                    non_recursive: m.non_recursive,
                    skip_source_creation: m.skip_source_creation,
                    tmpfs_options: String::new(),
                };
                rec.rw = m.rw && rw;
                rec.mode = String::new();
                if m.kind == "volume" {
                    let v = self.volumes.get(&m.name, Some(id)).map_err(api_err)?;
                    rec.source = v.mountpoint.to_string_lossy().into_owned();
                }
                put(out, rec, false);
            }
        }
        // 2. -v and --mount.
        for pm in plan.mounts {
            let mut rec = pm.rec;
            let mut copy = false;
            if let Some(req) = pm.volume {
                let (info, created) = self
                    .vol({
                        let id = id.to_string();
                        let req = req.clone();
                        move |s| {
                            s.create(
                                req.name.as_deref(),
                                &req.driver,
                                req.labels,
                                req.options,
                                Some(&id),
                            )
                        }
                    })
                    .await?
                    .map_err(api_err)?;
                if created {
                    self.emit_volume(
                        "create",
                        &info.meta.name,
                        &[("driver", info.meta.driver.clone())],
                    );
                }
                rec.name = info.meta.name.clone();
                rec.source = info.mountpoint.to_string_lossy().into_owned();
                rec.driver = info.meta.driver.clone();
                if rec.mode.is_empty() {
                    // moby's setBindModeIfNull for local volumes.
                    rec.mode = "z".into();
                }
                copy = req.copy_data;
            }
            put(out, rec, copy);
        }
        // 3. Config.Volumes: anonymous volumes where nothing else is mounted.
        let anon: Vec<String> = plan
            .anonymous
            .into_iter()
            .filter(|d| !out.iter().any(|(r, _)| &r.destination == d) && !tmpfs.contains(d))
            .collect();
        let needs_copy = out.iter().any(|(r, c)| *c && r.kind == "volume");
        if anon.is_empty() && !needs_copy {
            return Ok(());
        }
        let rootfs = self.mount_rw_layer(id).await?;
        let res = self.attach_with_rootfs(id, &rootfs, anon, out).await;
        self.unmount_rw_layer(id).await;
        res
    }

    async fn attach_with_rootfs(
        self: &Arc<Self>,
        id: &str,
        rootfs: &Path,
        anon: Vec<String>,
        out: &mut Vec<(MountRecord, bool)>,
    ) -> Result<(), ApiError> {
        for dest in anon {
            let (r2, d2) = (rootfs.to_path_buf(), dest.clone());
            let existing_file = tokio::task::spawn_blocking(move || not_a_dir(&r2, &d2))
                .await
                .map_err(join_err)?;
            if let Some(path) = existing_file {
                return Err(ApiError::bad_request(format!(
                    "cannot mount volume over existing file, file exists {path}"
                )));
            }
            let (info, _) = self
                .vol({
                    let id = id.to_string();
                    move |s| s.create(None, "", BTreeMap::new(), BTreeMap::new(), Some(&id))
                })
                .await?
                .map_err(api_err)?;
            self.emit_volume(
                "create",
                &info.meta.name,
                &[("driver", info.meta.driver.clone())],
            );
            out.push((
                MountRecord {
                    point: berth_api::models::MountPoint {
                        kind: "volume".into(),
                        name: info.meta.name.clone(),
                        source: info.mountpoint.to_string_lossy().into_owned(),
                        destination: dest,
                        driver: info.meta.driver.clone(),
                        mode: String::new(),
                        rw: true,
                        propagation: String::new(),
                    },
                    anonymous: true,
                    ..MountRecord::default()
                },
                true,
            ));
        }
        for (rec, copy) in out.iter() {
            if !*copy || rec.kind != "volume" {
                continue;
            }
            let user = format!("copyup-{id}");
            let name = rec.name.clone();
            let data = self
                .vol({
                    let (n, u) = (name.clone(), user.clone());
                    move |s| s.mount(&n, &u)
                })
                .await?
                .map_err(api_err)?;
            let (r2, d2) = (rootfs.to_path_buf(), rec.destination.clone());
            let res = tokio::task::spawn_blocking(move || copy_up(&r2, &d2, &data))
                .await
                .map_err(join_err);
            let _ = self
                .vol({
                    let (n, u) = (name.clone(), user);
                    move |s| s.unmount(&n, &u)
                })
                .await;
            res?.map_err(|e| {
                ApiError::internal(format!(
                    "failed to populate volume {name} from {}: {e}",
                    rec.destination
                ))
            })?;
        }
        Ok(())
    }

    /// Releases the container's references (removal, failed create) and, with
    /// `remove_anonymous`, removes the anonymous volumes nobody else uses (`rm -v`).
    pub(crate) async fn detach_volumes(
        &self,
        id: &str,
        mounts: &[MountRecord],
        remove_anonymous: bool,
    ) {
        let mut seen = HashSet::new();
        for m in mounts.iter().filter(|m| m.kind == "volume") {
            if !seen.insert(m.name.clone()) {
                continue;
            }
            self.volumes.release(&m.name, id);
            if remove_anonymous && m.anonymous {
                let name = m.name.clone();
                match self.vol(move |s| s.remove(&name, false)).await {
                    Ok(Ok(Some(meta))) => {
                        self.emit_volume("destroy", &m.name, &[("driver", meta.driver)])
                    }
                    Ok(Ok(None)) | Ok(Err(VolumeError::InUse(_))) => {}
                    Ok(Err(e)) => tracing::warn!(volume = %m.name, "removing volume: {e}"),
                    Err(e) => tracing::warn!(volume = %m.name, "removing volume: {}", e.message),
                }
            }
        }
    }

    /// At start: the host path to bind for a volume mount, mounting a volume with mount
    /// options first, and the `mount` event.
    pub(crate) fn volume_source(&self, c_id: &str, m: &MountRecord) -> Result<PathBuf, ApiError> {
        let path = self.volumes.mount(&m.name, c_id).map_err(api_err)?;
        self.emit_volume(
            "mount",
            &m.name,
            &[
                ("driver", m.driver.clone()),
                ("container", c_id.to_string()),
                ("destination", m.destination.clone()),
                ("read/write", m.rw.to_string()),
                ("propagation", m.propagation.clone()),
            ],
        );
        Ok(path)
    }

    /// After an exit or a failed start: volumes with mount options the container held are
    /// unmounted when nobody else needs them, with Docker's `unmount` events.
    pub(crate) fn release_volume_mounts(&self, c_id: &str, mounts: &[MountRecord]) {
        let mut seen = HashSet::new();
        for m in mounts.iter().filter(|m| m.kind == "volume") {
            if !seen.insert(m.name.clone()) {
                continue;
            }
            self.volumes.unmount(&m.name, c_id);
            self.emit_volume(
                "unmount",
                &m.name,
                &[
                    ("driver", m.driver.clone()),
                    ("container", c_id.to_string()),
                ],
            );
        }
    }

    /// Daemon start: references from every container record, mount users from the running
    /// ones; option volumes nobody needs are unmounted.
    pub(crate) fn restore_volume_refs(&self, containers: &[Arc<Container>]) {
        for c in containers {
            let (running, mounts) = c.with(|r| (r.state.status.is_running(), r.mounts.clone()));
            for m in mounts.iter().filter(|m| m.kind == "volume") {
                if self.volumes.get(&m.name, Some(&c.id)).is_err() {
                    tracing::warn!(container = %c.id, volume = %m.name, "a container's volume is missing");
                }
                if running {
                    self.volumes.adopt_mount(&m.name, &c.id);
                }
            }
        }
        self.volumes.unmount_unused();
    }
}

/// The container path `dest` exists in the rootfs and is not a directory (then its host
/// path, for Docker's message).
fn not_a_dir(rootfs: &Path, dest: &str) -> Option<String> {
    use rustix::fs::{FileType, OFlags};
    let root = rustix_open_dir(rootfs).ok()?;
    let fd = berth_image::fstree::open_in_root(root.as_fd(), dest.as_bytes(), OFlags::PATH).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    (FileType::from_raw_mode(st.st_mode) != FileType::Directory).then(|| {
        rootfs
            .join(dest.trim_start_matches('/'))
            .display()
            .to_string()
    })
}

/// Copies the image's content at `dest` (resolved inside `rootfs`: an image symlink cannot
/// lead the copy outside) into the volume at `data` when the volume is empty.
fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> Result<(), String> {
    use berth_image::fstree;
    use rustix::io::Errno;
    let root = rustix_open_dir(rootfs).map_err(|e| format!("open {}: {e}", rootfs.display()))?;
    let src = match fstree::open_in_root(root.as_fd(), dest.as_bytes(), fstree::dir_flags()) {
        Ok(fd) => fd,
        // Nothing there, or not a directory: nothing to copy (Docker's rule).
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(()),
        Err(e) => return Err(format!("open {dest} in the container: {e}")),
    };
    let dst = rustix_open_dir(data).map_err(|e| format!("open {}: {e}", data.display()))?;
    if !fstree::dir_is_empty(dst.as_fd()).map_err(|e| e.to_string())? {
        tracing::debug!(dest, "volume not empty; no copy");
        return Ok(());
    }
    let stats = fstree::copy_tree(src.as_fd(), dst.as_fd()).map_err(|e| e.to_string())?;
    tracing::debug!(
        dest,
        volume = %data.display(),
        entries = stats.entries,
        bytes = stats.bytes,
        path = %String::from_utf8_lossy(dest.as_bytes()),
        "copied image content into the volume"
    );
    Ok(())
}

/// Only `ContainerRecord` users need this module's record type.
pub(crate) fn inspect_points(r: &ContainerRecord) -> Vec<berth_api::models::MountPoint> {
    r.mounts.iter().map(|m| m.point.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bools() {
        assert_eq!(go_bool("True"), Some(true));
        assert_eq!(go_bool("0"), Some(false));
        assert_eq!(go_bool("yes"), None);
    }

    #[test]
    fn name_filter_is_a_regex() {
        let mut f = Filters::new();
        f.add("name", "^tr-");
        assert!(name_matches(&f, "tr-vol"));
        assert!(!name_matches(&f, "x-tr-vol"));
        let mut f = Filters::new();
        f.add("name", "vol");
        assert!(name_matches(&f, "tr-vol"));
        assert!(name_matches(&Filters::new(), "anything"));
    }
}
