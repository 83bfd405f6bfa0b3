//! The `local` volume driver: one directory per volume under `<data-root>/volumes`, Docker's
//! layout, with berth's own crash-safe metadata file.
//!
//! ```text
//! <data-root>/volumes/<name>/_data         the volume's content (what containers mount)
//! <data-root>/volumes/<name>/volume.json   name, driver, labels, options, creation time
//! <data-root>/volumes/.trash-<random>      a removal in progress (deleted at start)
//! ```
//!
//! `volume.json` is written last at create (temp + fsync + rename), so it is the commit point:
//! a directory without it is a create interrupted by a crash and is removed at start when its
//! `_data` is empty (a non-empty one is adopted as a volume with default metadata: data is
//! never deleted on a guess). A removal renames the directory to `.trash-*` first (atomic),
//! then deletes it, so a crash leaves either the whole volume or garbage nobody refers to.
//!
//! References (which containers use a volume) are kept in memory and rebuilt from the
//! container records at daemon start, as Docker does; a referenced volume cannot be removed.
//! Volumes with mount options (`type=tmpfs`, `o=bind`, nfs…) are mounted on `_data` while a
//! user needs them (a running container, a copy), and unmounted when the last one is done.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Docker's name of the default driver.
pub const LOCAL_DRIVER: &str = "local";
/// The label Docker puts on volumes created without a name (API 1.42+ prune semantics).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
const DATA_DIR: &str = "_data";
const META_FILE: &str = "volume.json";
const TRASH_PREFIX: &str = ".trash-";
/// Docker's `RestrictedNameChars`, quoted in its error message.
const NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Why a volume operation failed. Messages are Docker's (`create x: …`, `get x: no such
/// volume`, `remove x: volume is in use - [ids]`).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A bad name or option (400).
    #[error("{0}")]
    Invalid(String),
    /// No such volume (404).
    #[error("{0}")]
    NotFound(String),
    /// In use (409).
    #[error("{0}")]
    InUse(String),
    /// The local filesystem failed (500).
    #[error("{0}")]
    Io(String),
}

/// What is stored about a volume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeMeta {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options as given (`type`, `device`, `o`); empty: a plain directory.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

impl VolumeMeta {
    /// RFC 3339 in seconds, as Docker formats `CreatedAt`.
    pub fn created_at_text(&self) -> String {
        self.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Whether the volume is a mount (device, tmpfs, bind) rather than a plain directory.
    pub fn needs_mount(&self) -> bool {
        self.options.contains_key("type") || self.options.contains_key("device")
    }
}

/// One volume as the store hands it out.
#[derive(Debug, Clone)]
pub struct VolumeInfo {
    pub meta: VolumeMeta,
    /// `<root>/<name>/_data`
    pub mountpoint: PathBuf,
}

#[derive(Default)]
struct Inner {
    volumes: BTreeMap<String, VolumeMeta>,
    /// volume name → ids of the containers that use it.
    refs: HashMap<String, BTreeSet<String>>,
    /// volume name → who needs its mount right now (container ids, copy tokens).
    mount_users: HashMap<String, BTreeSet<String>>,
}

pub struct VolumeStore {
    root: PathBuf,
    inner: Mutex<Inner>,
}

impl VolumeStore {
    /// Opens (creating) `<data_root>/volumes` and loads every volume.
    pub fn open(data_root: &Path) -> Result<VolumeStore, VolumeError> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root)
            .map_err(|e| VolumeError::Io(format!("cannot create {}: {e}", root.display())))?;
        set_mode(&root, 0o701);
        let mut inner = Inner::default();
        let entries = std::fs::read_dir(&root)
            .map_err(|e| VolumeError::Io(format!("cannot read {}: {e}", root.display())))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.starts_with(TRASH_PREFIX) {
                tracing::info!(path = %path.display(), "removing an interrupted volume removal");
                let _ = berth_image::fsutil::remove_any(&path);
                continue;
            }
            if !path.is_dir() {
                continue;
            }
            let _ = berth_image::fsutil::clean_atomic_leftovers(&path);
            match load_meta(&path) {
                Ok(Some(meta)) if meta.name == name => {
                    inner.volumes.insert(name, meta);
                }
                Ok(Some(meta)) => tracing::warn!(
                    dir = %path.display(),
                    recorded = %meta.name,
                    "volume directory does not match its metadata; skipped"
                ),
                Ok(None) => {
                    if let Some(meta) = adopt_or_drop(&path, &name) {
                        inner.volumes.insert(name, meta);
                    }
                }
                Err(msg) => tracing::error!("{msg}; the volume is skipped and kept on disk"),
            }
        }
        let store = VolumeStore {
            root,
            inner: Mutex::new(inner),
        };
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn info(&self, meta: &VolumeMeta) -> VolumeInfo {
        VolumeInfo {
            meta: meta.clone(),
            mountpoint: self.root.join(&meta.name).join(DATA_DIR),
        }
    }

    /// Docker's `Create`: an existing volume of that name is returned as it is (labels and
    /// options of the request are then ignored). `reference` (a container id) is recorded
    /// atomically with the lookup, so the volume cannot be removed in between.
    /// Returns the volume and whether it was created now.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        reference: Option<&str>,
    ) -> Result<(VolumeInfo, bool), VolumeError> {
        let (name, mut labels) = match name.filter(|n| !n.is_empty()) {
            Some(n) => (n.to_string(), labels),
            None => {
                let mut l = labels;
                l.insert(ANONYMOUS_LABEL.to_string(), String::new());
                (crate::ids::new_id(), l)
            }
        };
        let op = |e: String| format!("create {name}: {e}");
        let driver = if driver.is_empty() {
            LOCAL_DRIVER
        } else {
            driver
        };
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::NotFound(op(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            ))));
        }
        validate_name(&name).map_err(|e| VolumeError::Invalid(op(e)))?;
        let mut inner = self.lock();
        if let Some(meta) = inner.volumes.get(&name) {
            let info = self.info(meta);
            if let Some(r) = reference {
                inner
                    .refs
                    .entry(name.clone())
                    .or_default()
                    .insert(r.to_string());
            }
            return Ok((info, false));
        }
        validate_options(&options).map_err(|e| VolumeError::Invalid(op(e)))?;
        labels.retain(|k, _| !k.is_empty());
        let meta = VolumeMeta {
            name: name.clone(),
            driver: LOCAL_DRIVER.to_string(),
            labels,
            options,
            created_at: Utc::now(),
        };
        let dir = self.root.join(&name);
        let data = dir.join(DATA_DIR);
        let made = (|| -> std::io::Result<()> {
            std::fs::create_dir(&dir)?;
            set_mode(&dir, 0o701);
            std::fs::create_dir(&data)?;
            set_mode(&data, 0o755);
            let bytes = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
            berth_image::fsutil::write_atomic(&dir, META_FILE, &bytes)?;
            berth_image::fsutil::fsync_dir(&self.root)
        })();
        if let Err(e) = made {
            let _ = berth_image::fsutil::remove_any(&dir);
            return Err(VolumeError::Io(op(format!(
                "error while creating volume path '{}': {e}",
                dir.display()
            ))));
        }
        let info = self.info(&meta);
        inner.volumes.insert(name.clone(), meta);
        if let Some(r) = reference {
            inner.refs.entry(name).or_default().insert(r.to_string());
        }
        Ok((info, true))
    }

    /// Docker's `Get`, optionally recording a reference.
    pub fn get(&self, name: &str, reference: Option<&str>) -> Result<VolumeInfo, VolumeError> {
        let mut inner = self.lock();
        let Some(meta) = inner.volumes.get(name) else {
            return Err(VolumeError::NotFound(format!("get {name}: no such volume")));
        };
        let info = self.info(meta);
        if let Some(r) = reference {
            inner
                .refs
                .entry(name.to_string())
                .or_default()
                .insert(r.to_string());
        }
        Ok(info)
    }

    pub fn list(&self) -> Vec<VolumeInfo> {
        let inner = self.lock();
        inner.volumes.values().map(|m| self.info(m)).collect()
    }

    /// The ids of the containers using `name`.
    #[cfg(test)]
    pub fn refs(&self, name: &str) -> Vec<String> {
        self.lock()
            .refs
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn ref_count(&self, name: &str) -> usize {
        self.lock().refs.get(name).map_or(0, BTreeSet::len)
    }

    /// Forgets that `container` uses `name`.
    pub fn release(&self, name: &str, container: &str) {
        let mut inner = self.lock();
        if let Some(s) = inner.refs.get_mut(name) {
            s.remove(container);
            if s.is_empty() {
                inner.refs.remove(name);
            }
        }
    }

    /// Docker's `Remove`: refused (409) while a container uses the volume; a missing volume
    /// is a 404 unless `purge_missing` (`rm -f`). The data is moved aside under the lock and
    /// deleted after it. Returns the removed volume (None: it was missing and purged).
    pub fn remove(
        &self,
        name: &str,
        purge_missing: bool,
    ) -> Result<Option<VolumeMeta>, VolumeError> {
        let trash = {
            let mut inner = self.lock();
            let Some(meta) = inner.volumes.get(name).cloned() else {
                if purge_missing {
                    return Ok(None);
                }
                return Err(VolumeError::NotFound(format!("get {name}: no such volume")));
            };
            if let Some(refs) = inner.refs.get(name).filter(|r| !r.is_empty()) {
                let list: Vec<&str> = refs.iter().map(String::as_str).collect();
                return Err(VolumeError::InUse(format!(
                    "remove {name}: volume is in use - [{}]",
                    list.join(", ")
                )));
            }
            let dir = self.root.join(name);
            let data = dir.join(DATA_DIR);
            if meta.needs_mount() {
                if let Err(e) = unmount_if_mounted(&data) {
                    return Err(VolumeError::Io(format!("remove {name}: {e}")));
                }
            }
            let trash = self.root.join(format!(
                "{TRASH_PREFIX}{}",
                berth_image::fsutil::random_hex(8)
            ));
            match std::fs::rename(&dir, &trash) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(VolumeError::Io(format!(
                        "remove {name}: error removing volume path '{}': {e}",
                        dir.display()
                    )))
                }
            }
            let _ = berth_image::fsutil::fsync_dir(&self.root);
            inner.volumes.remove(name);
            inner.mount_users.remove(name);
            (trash, meta)
        };
        if let Err(e) = berth_image::fsutil::remove_any(&trash.0) {
            tracing::warn!(path = %trash.0.display(), "cannot delete a removed volume's data: {e}");
        }
        Ok(Some(trash.1))
    }

    /// Mounts a volume with mount options for `user` (nothing to do for plain volumes).
    pub fn mount(&self, name: &str, user: &str) -> Result<PathBuf, VolumeError> {
        let mut inner = self.lock();
        let Some(meta) = inner.volumes.get(name).cloned() else {
            return Err(VolumeError::NotFound(format!("get {name}: no such volume")));
        };
        let data = self.root.join(name).join(DATA_DIR);
        if !meta.needs_mount() {
            return Ok(data);
        }
        let users = inner.mount_users.entry(name.to_string()).or_default();
        if users.is_empty() && !is_mounted(&data) {
            mount_volume(&meta, &data).map_err(|e| {
                VolumeError::Io(format!(
                    "error while mounting volume '{}': failed to mount local volume: {e}",
                    data.display()
                ))
            })?;
        }
        users.insert(user.to_string());
        Ok(data)
    }

    /// Records that `user` needs a volume that is already mounted (daemon start: a running
    /// container's volume).
    pub fn adopt_mount(&self, name: &str, user: &str) {
        let mut inner = self.lock();
        if inner.volumes.get(name).is_some_and(VolumeMeta::needs_mount) {
            inner
                .mount_users
                .entry(name.to_string())
                .or_default()
                .insert(user.to_string());
        }
    }

    /// `user` is done with the volume: the last one unmounts it.
    pub fn unmount(&self, name: &str, user: &str) {
        let mut inner = self.lock();
        let Some(meta) = inner.volumes.get(name).cloned() else {
            return;
        };
        if !meta.needs_mount() {
            return;
        }
        let last = match inner.mount_users.get_mut(name) {
            Some(users) => {
                users.remove(user);
                users.is_empty()
            }
            None => true,
        };
        if last {
            inner.mount_users.remove(name);
            let data = self.root.join(name).join(DATA_DIR);
            if let Err(e) = unmount_if_mounted(&data) {
                tracing::warn!(volume = name, "unmounting the volume: {e}");
            }
        }
    }

    /// Unmounts option volumes nobody needs (daemon start, after running containers were
    /// adopted).
    pub fn unmount_unused(&self) {
        let inner = self.lock();
        for (name, meta) in &inner.volumes {
            if meta.needs_mount() && inner.mount_users.get(name).is_none_or(BTreeSet::is_empty) {
                let data = self.root.join(name).join(DATA_DIR);
                if let Err(e) = unmount_if_mounted(&data) {
                    tracing::warn!(volume = %name, "unmounting an unused volume: {e}");
                }
            }
        }
    }
}

/// Docker's name rules for local volumes.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.len() == 1 {
        return Err(
            "volume name is too short, names should be at least two alphanumeric characters"
                .to_string(),
        );
    }
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !ok {
        return Err(format!(
            "{name:?} includes invalid characters for a local volume name, only {NAME_CHARS:?} are allowed. If you intended to pass a host directory, use absolute path"
        ));
    }
    Ok(())
}

/// Docker's local driver options (`validateOpts`).
pub fn validate_options(opts: &BTreeMap<String, String>) -> Result<(), String> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "o" | "device" | "size") {
            return Err(format!("invalid option: {k:?}"));
        }
    }
    if let Some(size) = opts.get("size") {
        let n = berth_api::units::ram_in_bytes(size).map_err(|e| e.to_string())?;
        if n > 0 {
            return Err("quota size requested but no quota support".to_string());
        }
    }
    for (opt, required) in [
        ("device", &["type"][..]),
        ("type", &["device"][..]),
        ("o", &["device", "type"][..]),
    ] {
        if opts.contains_key(opt) {
            for r in required {
                if !opts.contains_key(*r) {
                    return Err(format!("missing required option: {r:?}"));
                }
            }
        }
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!("cannot set permissions of {}: {e}", p.display());
    }
}

fn load_meta(dir: &Path) -> Result<Option<VolumeMeta>, String> {
    let p = dir.join(META_FILE);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("unreadable volume metadata {}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", p.display())),
    }
}

/// A volume directory without metadata: an interrupted create (nothing in `_data`) is
/// removed; one with data is kept as a volume, so nothing is ever deleted on a guess.
fn adopt_or_drop(dir: &Path, name: &str) -> Option<VolumeMeta> {
    let data = dir.join(DATA_DIR);
    let empty = std::fs::read_dir(&data).map_or(true, |mut d| d.next().is_none());
    if empty || validate_name(name).is_err() {
        if validate_name(name).is_err() && !empty {
            tracing::warn!(dir = %dir.display(), "directory in the volume root is not a volume; left alone");
            return None;
        }
        tracing::info!(dir = %dir.display(), "removing an interrupted volume create");
        let _ = berth_image::fsutil::remove_any(dir);
        return None;
    }
    let created_at = std::fs::metadata(&data)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now());
    let meta = VolumeMeta {
        name: name.to_string(),
        driver: LOCAL_DRIVER.to_string(),
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        created_at,
    };
    tracing::warn!(dir = %dir.display(), "volume without metadata adopted");
    if let Ok(bytes) = serde_json::to_vec_pretty(&meta) {
        let _ = berth_image::fsutil::write_atomic(dir, META_FILE, &bytes);
    }
    Some(meta)
}

fn is_mounted(p: &Path) -> bool {
    berth_image::rwlayer::is_mountpoint(p).unwrap_or(false)
}

fn unmount_if_mounted(p: &Path) -> Result<(), String> {
    if !is_mounted(p) {
        return Ok(());
    }
    nix::mount::umount2(p, nix::mount::MntFlags::empty())
        .or_else(|e| {
            if e == nix::errno::Errno::EBUSY {
                nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH)
            } else {
                Err(e)
            }
        })
        .map_err(|e| format!("unmount {}: {e}", p.display()))
}

/// The mount(8)-style option words Docker's `mount.Mount` turns into flags; everything else
/// is passed to the file system as data.
fn parse_mount_options(o: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags as F;
    let mut set = F::empty();
    let mut clear = F::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (on, flag) = match opt {
            "defaults" => (true, F::empty()),
            "ro" => (true, F::MS_RDONLY),
            "rw" => (false, F::MS_RDONLY),
            "suid" => (false, F::MS_NOSUID),
            "nosuid" => (true, F::MS_NOSUID),
            "dev" => (false, F::MS_NODEV),
            "nodev" => (true, F::MS_NODEV),
            "exec" => (false, F::MS_NOEXEC),
            "noexec" => (true, F::MS_NOEXEC),
            "sync" => (true, F::MS_SYNCHRONOUS),
            "async" => (false, F::MS_SYNCHRONOUS),
            "dirsync" => (true, F::MS_DIRSYNC),
            "mand" => (true, F::MS_MANDLOCK),
            "nomand" => (false, F::MS_MANDLOCK),
            "atime" => (false, F::MS_NOATIME),
            "noatime" => (true, F::MS_NOATIME),
            "diratime" => (false, F::MS_NODIRATIME),
            "nodiratime" => (true, F::MS_NODIRATIME),
            "bind" => (true, F::MS_BIND),
            "rbind" => (true, F::MS_BIND | F::MS_REC),
            "relatime" => (true, F::MS_RELATIME),
            "norelatime" => (false, F::MS_RELATIME),
            "strictatime" => (true, F::MS_STRICTATIME),
            "nostrictatime" => (false, F::MS_STRICTATIME),
            other => {
                data.push(other);
                continue;
            }
        };
        if on {
            set |= flag;
        } else {
            clear |= flag;
        }
    }
    (set & !clear, data.join(","))
}

/// Mounts `device` on `_data` as Docker's local driver does (`mount -t type -o o device`);
/// a read-only bind is remounted read-only, as the kernel ignores `ro` on the first call.
fn mount_volume(meta: &VolumeMeta, data: &Path) -> Result<(), String> {
    use nix::mount::MsFlags as F;
    let Some(device) = meta.options.get("device") else {
        return Err("missing device in volume options".to_string());
    };
    let kind = meta.options.get("type").cloned().unwrap_or_default();
    let (flags, opts) = parse_mount_options(meta.options.get("o").map_or("", String::as_str));
    let fstype = (!kind.is_empty() && kind != "none").then_some(kind.as_str());
    let data_opt = (!opts.is_empty()).then_some(opts.as_str());
    nix::mount::mount(Some(device.as_str()), data, fstype, flags, data_opt)
        .map_err(|e| format!("mount {device} on {}: {e}", data.display()))?;
    if flags.contains(F::MS_BIND) && flags.contains(F::MS_RDONLY) {
        nix::mount::mount(
            None::<&str>,
            data,
            None::<&str>,
            flags | F::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| format!("remount {} read-only: {e}", data.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        assert!(validate_name("tr-vol").is_ok());
        assert!(validate_name("a.b_c-1").is_ok());
        assert!(validate_name("a..").is_ok());
        assert_eq!(
            validate_name("a").unwrap_err(),
            "volume name is too short, names should be at least two alphanumeric characters"
        );
        for bad in [
            "foo/bar", "..", "../x", "a b", ".hidden", "-x", "", "é1", "a/",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            validate_name("foo/bar").unwrap_err(),
            "\"foo/bar\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_follow_docker() {
        assert!(validate_options(&opts(&[])).is_ok());
        assert!(validate_options(&opts(&[("type", "tmpfs"), ("device", "tmpfs")])).is_ok());
        assert!(
            validate_options(&opts(&[("type", "none"), ("o", "bind"), ("device", "/x")])).is_ok()
        );
        assert_eq!(
            validate_options(&opts(&[("foo", "1")])).unwrap_err(),
            "invalid option: \"foo\""
        );
        assert_eq!(
            validate_options(&opts(&[("type", "tmpfs")])).unwrap_err(),
            "missing required option: \"device\""
        );
        assert_eq!(
            validate_options(&opts(&[("o", "size=1m"), ("device", "tmpfs")])).unwrap_err(),
            "missing required option: \"type\""
        );
        assert_eq!(
            validate_options(&opts(&[("size", "10m")])).unwrap_err(),
            "quota size requested but no quota support"
        );
        assert!(validate_options(&opts(&[("size", "bogus")])).is_err());
    }

    #[test]
    fn mount_options_split_into_flags_and_data() {
        use nix::mount::MsFlags as F;
        let (f, d) = parse_mount_options("bind,ro,size=10m,uid=1000,nosuid");
        assert_eq!(f, F::MS_BIND | F::MS_RDONLY | F::MS_NOSUID);
        assert_eq!(d, "size=10m,uid=1000");
        let (f, d) = parse_mount_options("ro,rw");
        assert_eq!(f, F::empty());
        assert_eq!(d, "");
        assert_eq!(parse_mount_options("").1, "");
    }

    #[test]
    fn create_get_remove_and_refs() {
        let tmp = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(tmp.path()).unwrap();
        let (v, created) = s
            .create(Some("data"), "", opts(&[("k", "v")]), BTreeMap::new(), None)
            .unwrap();
        assert!(created);
        assert_eq!(v.mountpoint, tmp.path().join("volumes/data/_data"));
        assert!(v.mountpoint.is_dir());
        // A second create returns the existing volume unchanged.
        let (v2, created) = s
            .create(
                Some("data"),
                "local",
                BTreeMap::new(),
                BTreeMap::new(),
                Some("c1"),
            )
            .unwrap();
        assert!(!created);
        assert_eq!(v2.meta.labels.get("k").map(String::as_str), Some("v"));
        let e = s.remove("data", false).unwrap_err();
        assert!(matches!(e, VolumeError::InUse(_)));
        assert_eq!(e.to_string(), "remove data: volume is in use - [c1]");
        s.release("data", "c1");
        assert!(s.remove("data", false).unwrap().is_some());
        assert!(!tmp.path().join("volumes/data").exists());
        assert!(matches!(
            s.remove("data", false).unwrap_err(),
            VolumeError::NotFound(_)
        ));
        assert!(s.remove("data", true).unwrap().is_none());
        assert_eq!(
            s.get("nope", None).unwrap_err().to_string(),
            "get nope: no such volume"
        );
        let e = s
            .create(Some("x/y"), "", BTreeMap::new(), BTreeMap::new(), None)
            .unwrap_err();
        assert!(matches!(e, VolumeError::Invalid(_)));
        assert!(e
            .to_string()
            .starts_with("create x/y: \"x/y\" includes invalid"));
        let e = s
            .create(
                Some("v1"),
                "nfsplug",
                BTreeMap::new(),
                BTreeMap::new(),
                None,
            )
            .unwrap_err();
        assert!(matches!(e, VolumeError::NotFound(_)), "{e}");
    }

    #[test]
    fn anonymous_volumes_get_an_id_and_the_label() {
        let tmp = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(tmp.path()).unwrap();
        let (v, _) = s
            .create(None, "", BTreeMap::new(), BTreeMap::new(), Some("c"))
            .unwrap();
        assert_eq!(v.meta.name.len(), 64);
        assert!(v.meta.is_anonymous());
        assert_eq!(s.refs(&v.meta.name), vec!["c".to_string()]);
    }

    #[test]
    fn reopen_keeps_volumes_and_cleans_crash_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let s = VolumeStore::open(tmp.path()).unwrap();
            s.create(Some("keep"), "", BTreeMap::new(), BTreeMap::new(), None)
                .unwrap();
            std::fs::write(tmp.path().join("volumes/keep/_data/f"), b"x").unwrap();
        }
        let root = tmp.path().join("volumes");
        // A create interrupted before its metadata: empty _data → removed.
        std::fs::create_dir_all(root.join("half/_data")).unwrap();
        // Data without metadata → adopted, never deleted.
        std::fs::create_dir_all(root.join("orphan/_data")).unwrap();
        std::fs::write(root.join("orphan/_data/f"), b"y").unwrap();
        // An interrupted removal.
        std::fs::create_dir_all(root.join(".trash-0001/_data")).unwrap();
        let s = VolumeStore::open(tmp.path()).unwrap();
        let names: Vec<String> = s.list().into_iter().map(|v| v.meta.name).collect();
        assert_eq!(names, vec!["keep".to_string(), "orphan".to_string()]);
        assert!(!root.join("half").exists());
        assert!(!root.join(".trash-0001").exists());
        assert_eq!(std::fs::read(root.join("keep/_data/f")).unwrap(), b"x");
        assert!(root.join("orphan/volume.json").exists());
    }
}
