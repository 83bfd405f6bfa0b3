//! Container read-write layers: `<data-root>/overlay2/<container-id>/{diff,work,merged}` plus
//! `rw.json` (`{"parent": <image top chain id or null>}`), mounted with overlayfs.
//!
//! Mounting prefers the new mount API (`fsopen("overlay")` + one `fsconfig("lowerdir+")` per
//! layer, kernel ≥ 6.8): no mount-data size limit, no path escaping issues. On older kernels
//! it falls back to `mount(2)` with short symlinks in `overlay2/l/` (like Docker's), which
//! fits about 150 layers into the one-page option string; beyond that it says so.
//! Mounts are made with `index=off,redirect_dir=off,metacopy=off` so that the upper dir is a
//! complete, self-describing diff (what [`LayerStore::diff_rw`] turns into a layer tar).
//!
//! Mounts are idempotent: a container whose rootfs stayed mounted across a daemon restart is
//! recognised through `/proc/self/mountinfo` and reused.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest, DigestWriter};
use crate::fsutil::{self, random_hex, TempDir};
use crate::layer::{short_link_name, ChainId, LayerError, LayerStore};
use crate::reference::is_full_hex_id;
use crate::tarapply::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RwMeta {
    parent: Option<ChainId>,
    /// Whether the layer has Docker's init layer (`init/`, mount points for the files the
    /// runtime bind-mounts) between the image and the writable layer, so that those mount
    /// points never show up in the layer's diff (build steps).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    init: bool,
}

/// Docker's init layer (moby `initlayer.Setup`): mount points created below the writable
/// layer of build containers. `None` is a directory, `Some(t)` a symlink to `t`, files are
/// empty.
const INIT_ENTRIES: &[(&str, Option<Option<&str>>)] = &[
    ("dev", None),
    ("dev/pts", None),
    ("dev/shm", None),
    ("proc", None),
    ("sys", None),
    ("etc", None),
    (".dockerenv", Some(None)),
    ("etc/resolv.conf", Some(None)),
    ("etc/hosts", Some(None)),
    ("etc/hostname", Some(None)),
    ("dev/console", Some(None)),
    ("etc/mtab", Some(Some("/proc/mounts"))),
];

fn write_init_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for (rel, kind) in INIT_ENTRIES {
        let p = dir.join(rel);
        match kind {
            None => {
                fs::create_dir(&p)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
            }
            Some(None) => {
                File::create(&p)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
            }
            Some(Some(target)) => std::os::unix::fs::symlink(target, &p)?,
        }
    }
    Ok(())
}

/// How to mount overlayfs (exposed for tests of the fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountMethod {
    /// New mount API with `lowerdir+`, falling back to `Legacy` when the kernel lacks it.
    Auto,
    /// `mount(2)` with `overlay2/l/` short links.
    Legacy,
}

/// The result of [`LayerStore::diff_rw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffStats {
    /// sha256 of the tar written (the new layer's diff ID).
    pub diff_id: Digest,
    /// Bytes written.
    pub tar_size: u64,
}

fn valid_rw_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id != "l"
        && id != "empty"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl LayerStore {
    fn rw_dir(&self, id: &str) -> Result<PathBuf, LayerError> {
        if !valid_rw_id(id) {
            return Err(LayerError::InvalidId(id.to_string()));
        }
        Ok(self.root.join(id))
    }

    fn rw_meta(&self, id: &str) -> Result<RwMeta, LayerError> {
        let p = self.rw_dir(id)?.join("rw.json");
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LayerError::RwNotFound(id.to_string()))
            }
            Err(e) => return Err(fsutil::PathError::new("read", p, e).into()),
        };
        serde_json::from_slice(&bytes).map_err(|e| LayerError::Corrupt {
            chain_id: id.to_string(),
            reason: e.to_string(),
        })
    }

    /// The image layer a container layer sits on (None for zero-layer images).
    pub fn rw_parent(&self, id: &str) -> Result<Option<ChainId>, LayerError> {
        Ok(self.rw_meta(id)?.parent)
    }

    /// The top layers of every container layer (to keep them from garbage collection).
    pub fn rw_parents(&self) -> Result<Vec<ChainId>, LayerError> {
        let mut out = Vec::new();
        for id in self.rw_ids()? {
            if let Ok(RwMeta {
                parent: Some(p), ..
            }) = self.rw_meta(&id)
            {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Every container layer present.
    pub fn rw_ids(&self) -> Result<Vec<String>, LayerError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.root).map_err(fsutil::ctx("list", &self.root))?;
        for ent in rd {
            let ent = ent.map_err(fsutil::ctx("list", &self.root))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if valid_rw_id(&name) && ent.path().join("rw.json").is_file() {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Creates the read-write layer of container `id` on top of `image_top` (None for an
    /// image without layers). Atomic: built in a temp dir and renamed into place.
    pub fn create_rw(&self, id: &str, image_top: Option<&ChainId>) -> Result<(), LayerError> {
        self.create_rw_with(id, image_top, false)
    }

    /// [`LayerStore::create_rw`], with Docker's init layer below the writable layer when
    /// `init` is set (build steps: the runtime's mount points stay out of the diff).
    pub fn create_rw_with(
        &self,
        id: &str,
        image_top: Option<&ChainId>,
        init: bool,
    ) -> Result<(), LayerError> {
        let dst = self.rw_dir(id)?;
        if is_full_hex_id(id) && dst.join("meta.json").exists() {
            return Err(LayerError::InvalidId(id.to_string()));
        }
        let _pin = image_top.map(|c| self.pin(c));
        if let Some(c) = image_top {
            if !self.exists(c) {
                return Err(LayerError::NotFound(c.clone()));
            }
        }
        let tmp =
            TempDir::new_in(&self.root, ".tmp-").map_err(fsutil::ctx("create", &self.root))?;
        for sub in ["diff", "work", "merged"] {
            let p = tmp.path().join(sub);
            fs::create_dir(&p).map_err(fsutil::ctx("create", &p))?;
        }
        use std::os::unix::fs::PermissionsExt;
        let diff = tmp.path().join("diff");
        fs::set_permissions(&diff, fs::Permissions::from_mode(0o755))
            .map_err(fsutil::ctx("chmod", &diff))?;
        if init {
            let p = tmp.path().join("init");
            write_init_dir(&p).map_err(fsutil::ctx("create", &p))?;
        }
        let meta = serde_json::to_vec(&RwMeta {
            parent: image_top.cloned(),
            init,
        })
        .map_err(|e| LayerError::Corrupt {
            chain_id: id.to_string(),
            reason: e.to_string(),
        })?;
        fsutil::write_atomic(tmp.path(), "rw.json", &meta)
            .map_err(fsutil::ctx("write", &tmp.path().join("rw.json")))?;
        match rfs::renameat_with(
            rfs::CWD,
            tmp.path(),
            rfs::CWD,
            &dst,
            rfs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {
                tmp.keep();
                fsutil::fsync_dir(&self.root).map_err(fsutil::ctx("fsync", &self.root))?;
                tracing::debug!(container = id, "read-write layer created");
                Ok(())
            }
            Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Err(LayerError::RwExists(id.to_string())),
            Err(e) => Err(fsutil::PathError::new("rename", tmp.path(), e.into()).into()),
        }
    }

    /// The `merged` path of a container layer (whether or not it is mounted).
    pub fn rw_merged(&self, id: &str) -> Result<PathBuf, LayerError> {
        Ok(self.rw_dir(id)?.join("merged"))
    }

    /// The `diff` (upper) dir of a container layer.
    pub fn rw_diff_dir(&self, id: &str) -> Result<PathBuf, LayerError> {
        Ok(self.rw_dir(id)?.join("diff"))
    }

    /// Whether the container's rootfs is mounted.
    pub fn is_mounted(&self, id: &str) -> Result<bool, LayerError> {
        let merged = self.rw_merged(id)?;
        is_mountpoint(&merged)
    }

    /// Mounts the container's rootfs and returns the `merged` path. Idempotent.
    pub fn mount_rw(&self, id: &str) -> Result<PathBuf, LayerError> {
        self.mount_rw_with(id, MountMethod::Auto)
    }

    /// [`LayerStore::mount_rw`] with an explicit method.
    pub fn mount_rw_with(&self, id: &str, method: MountMethod) -> Result<PathBuf, LayerError> {
        let dir = self.rw_dir(id)?;
        let meta = self.rw_meta(id)?;
        let merged = dir.join("merged");
        if is_mountpoint(&merged)? {
            return Ok(merged);
        }
        let mut lowers = match &meta.parent {
            Some(top) => self.chain_dirs(top)?,
            None => vec![self.empty_dir()],
        };
        if meta.init {
            lowers.insert(0, dir.join("init"));
        }
        let upper = dir.join("diff");
        let work = dir.join("work");
        let res = match method {
            MountMethod::Auto => match mount_new_api(&lowers, &upper, &work, &merged) {
                Err(NewApiError::Unsupported(why)) => {
                    tracing::debug!(reason = %why, "new mount API unavailable; using mount(2)");
                    self.mount_legacy(&meta, &dir, &lowers, &upper, &work, &merged)
                }
                Err(NewApiError::Failed(e)) => Err(e),
                Ok(()) => Ok(()),
            },
            MountMethod::Legacy => self.mount_legacy(&meta, &dir, &lowers, &upper, &work, &merged),
        };
        res.map_err(LayerError::Mount)?;
        tracing::debug!(container = id, layers = lowers.len(), "rootfs mounted");
        Ok(merged)
    }

    fn mount_legacy(
        &self,
        meta: &RwMeta,
        dir: &Path,
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        merged: &Path,
    ) -> Result<(), String> {
        let mut lower_opt = Vec::new();
        if meta.init {
            lower_opt.push(dir.join("init"));
        }
        match meta.parent.as_ref() {
            None => lower_opt.push(self.empty_dir()),
            Some(top) => {
                let chain = self.chain(top).map_err(|e| e.to_string())?;
                let ldir = self.root.join("l");
                for m in chain {
                    let name = short_link_name(&m.chain_id);
                    let link = ldir.join(&name);
                    let target = PathBuf::from("..").join(m.chain_id.hex()).join("diff");
                    match fs::read_link(&link) {
                        Ok(t) if t == target => {}
                        _ => {
                            let _ = fs::remove_file(&link);
                            std::os::unix::fs::symlink(&target, &link)
                                .map_err(|e| format!("create {}: {e}", link.display()))?;
                        }
                    }
                    lower_opt.push(link);
                }
            }
        }
        let mut data = String::from("lowerdir=");
        for (i, l) in lower_opt.iter().enumerate() {
            if i > 0 {
                data.push(':');
            }
            data.push_str(&escape_overlay_path(l)?);
        }
        data.push_str(&format!(
            ",upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
            escape_overlay_path(upper)?,
            escape_overlay_path(work)?
        ));
        let page = rustix::param::page_size();
        if data.len() >= page {
            return Err(format!(
                "the image has too many layers ({}) for a mount(2) overlay option string of one page; \
                 a kernel with the new mount API (6.8 or later) has no such limit",
                lowers.len()
            ));
        }
        let data = std::ffi::CString::new(data).map_err(|e| e.to_string())?;
        rustix::mount::mount(
            "overlay",
            merged,
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
        .map_err(|e| format!("mount overlay on {}: {e}", merged.display()))
    }

    /// Unmounts the container's rootfs. Idempotent; a busy mount is detached lazily.
    pub fn unmount_rw(&self, id: &str) -> Result<(), LayerError> {
        let merged = self.rw_merged(id)?;
        if !is_mountpoint(&merged)? {
            return Ok(());
        }
        match rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()) {
            Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => {}
            Err(Errno::BUSY) => {
                tracing::debug!(container = id, "rootfs busy; detaching");
                rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH)
                    .map_err(|e| LayerError::Mount(format!("unmount {}: {e}", merged.display())))?;
            }
            Err(e) => {
                return Err(LayerError::Mount(format!(
                    "unmount {}: {e}",
                    merged.display()
                )))
            }
        }
        tracing::debug!(container = id, "rootfs unmounted");
        Ok(())
    }

    /// Unmounts and deletes a container layer. A missing layer is not an error.
    pub fn remove_rw(&self, id: &str) -> Result<(), LayerError> {
        let dir = self.rw_dir(id)?;
        if !dir.join("rw.json").exists() {
            if dir.exists() && !dir.join("meta.json").exists() {
                // half-created; just remove it
                fsutil::remove_any(&dir).map_err(fsutil::ctx("remove", &dir))?;
            }
            return Ok(());
        }
        self.unmount_rw(id)?;
        let trash = self.root.join(format!(".trash-{}", random_hex(8)));
        fs::rename(&dir, &trash).map_err(fsutil::ctx("rename", &dir))?;
        fsutil::remove_any(&trash).map_err(fsutil::ctx("remove", &trash))?;
        tracing::debug!(container = id, "read-write layer removed");
        Ok(())
    }

    /// Size of the container's changes (Docker's `SizeRw`): every non-directory in the upper
    /// dir by its `st_size` (symlinks count their target length, whiteouts 0), each inode
    /// counted once.
    pub fn rw_size(&self, id: &str) -> Result<u64, LayerError> {
        let diff = self.rw_diff_dir(id)?;
        if !self.rw_dir(id)?.join("rw.json").exists() {
            return Err(LayerError::RwNotFound(id.to_string()));
        }
        let root = open_dir_nofollow(rfs::CWD, diff.as_os_str().as_bytes())
            .map_err(|e| LayerError::Diff(format!("open {}: {e}", diff.display())))?;
        let mut seen = std::collections::HashSet::new();
        let mut total = 0u64;
        walk(root.as_fd(), &mut Vec::new(), &mut |item| {
            if FileType::from_raw_mode(item.stat.st_mode) != FileType::Directory
                && seen.insert((item.stat.st_dev, item.stat.st_ino))
            {
                total += item.stat.st_size as u64;
            }
            Ok(())
        })
        .map_err(|e| LayerError::Diff(e.to_string()))?;
        Ok(total)
    }

    /// Writes the container's changes as a layer tar (overlay whiteouts become `.wh.<name>`,
    /// opaque directories get a `.wh..wh..opq` entry) and returns its diff ID. The upper dir
    /// is walked relative to directory fds without following symlinks, so a running
    /// container that swaps paths cannot make this read host files.
    pub fn diff_rw(&self, id: &str, w: &mut dyn Write) -> Result<DiffStats, LayerError> {
        if !self.rw_dir(id)?.join("rw.json").exists() {
            return Err(LayerError::RwNotFound(id.to_string()));
        }
        let diff = self.rw_diff_dir(id)?;
        let root = open_dir_nofollow(rfs::CWD, diff.as_os_str().as_bytes())
            .map_err(|e| LayerError::Diff(format!("open {}: {e}", diff.display())))?;
        let hashed = DigestWriter::new(w, Algorithm::Sha256);
        let mut b = tar::Builder::new(hashed);
        let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        walk(root.as_fd(), &mut Vec::new(), &mut |item| {
            write_item(&mut b, &item, &mut links)
        })
        .map_err(|e| LayerError::Diff(e.to_string()))?;
        let hashed = b
            .into_inner()
            .map_err(|e| LayerError::Diff(format!("writing the tar: {e}")))?;
        let (diff_id, tar_size, _) = hashed.finish();
        Ok(DiffStats { diff_id, tar_size })
    }
}

impl LayerStore {
    /// Writes the container's whole filesystem, as its mounted `merged` view shows it, as a
    /// tar (`docker export`). The caller mounts the layer first. Walked relative to directory
    /// fds without following symlinks, like [`LayerStore::diff_rw`].
    pub fn export_rw(&self, id: &str, w: &mut dyn Write) -> Result<(), LayerError> {
        let merged = self.rw_merged(id)?;
        if !is_mountpoint(&merged)? {
            return Err(LayerError::Diff(format!(
                "{} is not mounted",
                merged.display()
            )));
        }
        let root = open_dir_nofollow(rfs::CWD, merged.as_os_str().as_bytes())
            .map_err(|e| LayerError::Diff(format!("open {}: {e}", merged.display())))?;
        let mut b = tar::Builder::new(w);
        let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        walk(root.as_fd(), &mut Vec::new(), &mut |item| {
            write_item(&mut b, &item, &mut links)
        })
        .map_err(|e| LayerError::Diff(e.to_string()))?;
        b.into_inner()
            .map_err(|e| LayerError::Diff(format!("writing the tar: {e}")))?;
        Ok(())
    }
}

/// What happened to a path in a container's writable layer (`docker diff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

impl ChangeKind {
    /// The API's number (0 modified, 1 added, 2 deleted).
    pub fn code(self) -> u8 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
}

/// Metadata of `rel` in a lower layer directory, looked up component by component without
/// following any symlink (a layer's symlinks point into the container, not the host).
fn lower_stat(lower: BorrowedFd<'_>, rel: &[u8]) -> Option<rfs::Stat> {
    let mut parts = rel
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .peekable();
    let mut held: Option<OwnedFd> = None;
    while let Some(part) = parts.next() {
        let dir = held.as_ref().map_or(lower, |f| f.as_fd());
        if parts.peek().is_none() {
            return rfs::statat(dir, OsStr::from_bytes(part), AtFlags::SYMLINK_NOFOLLOW).ok();
        }
        held = Some(open_dir_nofollow(dir, part).ok()?);
    }
    None
}

impl LayerStore {
    /// The changes of a container's writable layer against `lowers` (its image's layer
    /// directories), as moby's overlay differ reports them: a whiteout or an opaque directory
    /// over a lower one is a deletion, a path found in a lower layer a modification (a
    /// directory only when its size, mode or mtime differ), anything else an addition; the
    /// parent of an addition or deletion is reported as modified once. In walk order.
    ///
    /// `init_paths` (relative, e.g. `etc/hosts`) are the mount points the engine creates for
    /// every container (dockerd keeps them in a separate init layer below the writable one):
    /// they, and the directories holding them, are not changes by themselves.
    pub fn rw_changes(
        &self,
        id: &str,
        lowers: &[PathBuf],
        init_paths: &[&str],
    ) -> Result<Vec<(ChangeKind, String)>, LayerError> {
        if !self.rw_dir(id)?.join("rw.json").exists() {
            return Err(LayerError::RwNotFound(id.to_string()));
        }
        let diff = self.rw_diff_dir(id)?;
        let root = open_dir_nofollow(rfs::CWD, diff.as_os_str().as_bytes())
            .map_err(|e| LayerError::Diff(format!("open {}: {e}", diff.display())))?;
        let lower_fds: Vec<OwnedFd> = lowers
            .iter()
            .filter_map(|l| open_dir_nofollow(rfs::CWD, l.as_os_str().as_bytes()).ok())
            .collect();
        let in_lower = |rel: &[u8]| lower_fds.iter().find_map(|l| lower_stat(l.as_fd(), rel));
        let mut out: Vec<(ChangeKind, String)> = Vec::new();
        let mut changed_dirs: std::collections::HashSet<Vec<u8>> = Default::default();
        let is_init = |rel: &[u8]| init_paths.iter().any(|p| p.as_bytes() == rel);
        let holds_init = |rel: &[u8]| {
            init_paths.iter().any(|p| {
                p.len() > rel.len()
                    && p.as_bytes().starts_with(rel)
                    && p.as_bytes()[rel.len()] == b'/'
            })
        };
        walk(root.as_fd(), &mut Vec::new(), &mut |item| {
            let st = &item.stat;
            let ft = FileType::from_raw_mode(st.st_mode);
            let is_dir = ft == FileType::Directory;
            // A directory holding init mount points changed for their sake; it is reported
            // only as the parent of a real change below it.
            if is_init(item.rel) || (is_dir && holds_init(item.rel)) {
                return Ok(());
            }
            let deleted = (ft == FileType::CharacterDevice && st.st_rdev == 0)
                || (is_dir && is_opaque(item.parent, item.name) && in_lower(item.rel).is_some());
            let kind = if deleted {
                ChangeKind::Deleted
            } else {
                match in_lower(item.rel) {
                    None => ChangeKind::Added,
                    Some(l) => {
                        let unchanged_dir = is_dir
                            && FileType::from_raw_mode(l.st_mode) == FileType::Directory
                            && l.st_size == st.st_size
                            && l.st_mode == st.st_mode
                            && l.st_mtime == st.st_mtime
                            && l.st_mtime_nsec == st.st_mtime_nsec;
                        if unchanged_dir {
                            return Ok(());
                        }
                        ChangeKind::Modified
                    }
                }
            };
            if is_dir {
                changed_dirs.insert(item.rel.to_vec());
            }
            if kind != ChangeKind::Modified {
                if let Some(slash) = item.rel.iter().rposition(|&b| b == b'/') {
                    let parent = item.rel[..slash].to_vec();
                    if changed_dirs.insert(parent.clone()) {
                        out.push((ChangeKind::Modified, api_path(&parent)));
                    }
                }
            }
            out.push((kind, api_path(item.rel)));
            Ok(())
        })
        .map_err(|e| LayerError::Diff(e.to_string()))?;
        Ok(out)
    }
}

/// `/`-rooted path of a walk-relative one, as the API shows it.
fn api_path(rel: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(rel))
}

/// One object found by [`walk`].
struct Item<'a> {
    parent: BorrowedFd<'a>,
    name: &'a [u8],
    /// Path relative to the walk root, without a leading `./`.
    rel: &'a [u8],
    stat: rfs::Stat,
}

fn open_dir_nofollow(parent: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    rfs::openat(
        parent,
        OsStr::from_bytes(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Depth-first walk in name order, directories before their contents, never following
/// symlinks.
fn walk(
    dir: BorrowedFd<'_>,
    prefix: &mut Vec<u8>,
    f: &mut dyn FnMut(Item<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut names = Vec::new();
    {
        let mut d = rfs::Dir::read_from(dir)?;
        while let Some(ent) = d.read() {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
    }
    names.sort();
    for name in names {
        let stat = match rfs::statat(dir, OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(Errno::NOENT) => continue, // removed while we walked (running container)
            Err(e) => return Err(e.into()),
        };
        let plen = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(&name);
        f(Item {
            parent: dir,
            name: &name,
            rel: prefix,
            stat,
        })?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            match open_dir_nofollow(dir, &name) {
                Ok(sub) => walk(sub.as_fd(), prefix, f)?,
                Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => {}
                Err(e) => return Err(e.into()),
            }
        }
        prefix.truncate(plen);
    }
    Ok(())
}

fn proc_path(parent: BorrowedFd<'_>, name: &[u8]) -> Vec<u8> {
    let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    p
}

/// The xattrs worth carrying in a layer (the ones apply accepts).
fn layer_xattrs(parent: BorrowedFd<'_>, name: &[u8]) -> Vec<(String, Vec<u8>)> {
    let p = proc_path(parent, name);
    let mut list = vec![0u8; 4096];
    let n = match rfs::llistxattr(OsStr::from_bytes(&p), &mut list[..]) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for key in list[..n].split(|&b| b == 0) {
        let Ok(k) = std::str::from_utf8(key) else {
            continue;
        };
        if !(k.starts_with("user.") || k == "security.capability") {
            continue;
        }
        let mut val = vec![0u8; 65536];
        if let Ok(vn) = rfs::lgetxattr(OsStr::from_bytes(&p), k, &mut val[..]) {
            val.truncate(vn);
            out.push((k.to_string(), val));
        }
    }
    out
}

fn is_opaque(parent: BorrowedFd<'_>, name: &[u8]) -> bool {
    let p = proc_path(parent, name);
    let mut v = [0u8; 4];
    matches!(rfs::lgetxattr(OsStr::from_bytes(&p), OVERLAY_OPAQUE_XATTR, &mut v[..]), Ok(1) if v[0] == b'y')
}

fn base_header(st: &rfs::Stat, ty: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(ty);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn path_of(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn write_item<W: Write>(
    b: &mut tar::Builder<W>,
    item: &Item<'_>,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
) -> io::Result<()> {
    let st = &item.stat;
    let ft = FileType::from_raw_mode(st.st_mode);
    let rel = path_of(item.rel);
    tracing::debug!(path = %rel.display(), "diff");
    let xattrs = match ft {
        FileType::Socket => Vec::new(),
        _ => layer_xattrs(item.parent, item.name),
    };
    let pax = |b: &mut tar::Builder<W>, x: &[(String, Vec<u8>)]| -> io::Result<()> {
        if x.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, &[u8])> = x
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
    };
    match ft {
        FileType::CharacterDevice if st.st_rdev == 0 => {
            // overlay whiteout → .wh.<name>
            let mut wh = item.rel[..item.rel.len() - item.name.len()].to_vec();
            wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
            wh.extend_from_slice(item.name);
            let mut h = base_header(st, tar::EntryType::Regular);
            h.set_mode(st.st_mode & 0o777);
            b.append_data(&mut h, path_of(&wh), io::empty())
        }
        FileType::Directory => {
            pax(b, &xattrs)?;
            let mut h = base_header(st, tar::EntryType::Directory);
            b.append_data(&mut h, rel, io::empty())?;
            if is_opaque(item.parent, item.name) {
                let mut opq = item.rel.to_vec();
                opq.push(b'/');
                opq.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
                let mut h = base_header(st, tar::EntryType::Regular);
                h.set_mode(st.st_mode & 0o777);
                b.append_data(&mut h, path_of(&opq), io::empty())?;
            }
            Ok(())
        }
        FileType::RegularFile => {
            if st.st_nlink > 1 {
                let key = (st.st_dev, st.st_ino);
                if let Some(first) = links.get(&key) {
                    let mut h = base_header(st, tar::EntryType::Link);
                    return b.append_link(&mut h, rel, path_of(first));
                }
                links.insert(key, item.rel.to_vec());
            }
            let fd = rfs::openat(
                item.parent,
                OsStr::from_bytes(item.name),
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )?;
            let f = File::from(fd);
            let size = st.st_size.max(0) as u64;
            pax(b, &xattrs)?;
            let mut h = base_header(st, tar::EntryType::Regular);
            h.set_size(size);
            // A file that shrinks while we read it (running container) is padded, one that
            // grows is cut: the header's size must stay true.
            let data = f.take(size).chain(io::repeat(0)).take(size);
            b.append_data(&mut h, rel, data)
        }
        FileType::Symlink => {
            let target = rfs::readlinkat(item.parent, OsStr::from_bytes(item.name), Vec::new())?;
            pax(b, &xattrs)?;
            let mut h = base_header(st, tar::EntryType::Symlink);
            b.append_link(&mut h, rel, path_of(target.as_bytes()))
        }
        FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
            let ty = match ft {
                FileType::CharacterDevice => tar::EntryType::Char,
                FileType::BlockDevice => tar::EntryType::Block,
                _ => tar::EntryType::Fifo,
            };
            let mut h = base_header(st, ty);
            if ty != tar::EntryType::Fifo {
                h.set_device_major(rfs::major(st.st_rdev))?;
                h.set_device_minor(rfs::minor(st.st_rdev))?;
            }
            pax(b, &xattrs)?;
            b.append_data(&mut h, rel, io::empty())
        }
        _ => {
            tracing::debug!(path = %rel.display(), "skipping socket in diff");
            Ok(())
        }
    }
}

/// Whether `path` is a mount point, from `/proc/self/mountinfo`.
pub fn is_mountpoint(path: &Path) -> Result<bool, LayerError> {
    let canon = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(fsutil::PathError::new("resolve", path, e).into()),
    };
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(fsutil::ctx("read", Path::new("/proc/self/mountinfo")))?;
    let want = canon.as_os_str().as_bytes();
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == want))
}

fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
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
    out
}

/// Overlay option strings use `:` and `,` as separators; berth's own paths never contain
/// them, so refuse rather than escape.
fn escape_overlay_path(p: &Path) -> Result<String, String> {
    let s = p
        .to_str()
        .ok_or_else(|| format!("path {} is not UTF-8", p.display()))?;
    if s.contains([':', ',', '\\']) {
        return Err(format!(
            "path {s} contains ':', ',' or '\\', which overlay mount options cannot express"
        ));
    }
    Ok(s.to_string())
}

enum NewApiError {
    /// The kernel lacks the API or `lowerdir+`: use the fallback.
    Unsupported(String),
    Failed(String),
}

/// Reads the messages the kernel queued on an fs context fd (after a failed fsconfig).
fn fs_log(fd: &OwnedFd) -> String {
    let mut msgs = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..16 {
        match rustix::io::read(fd, &mut buf[..]) {
            Ok(n) if n > 0 => msgs.push(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
            _ => break,
        }
    }
    msgs.join("; ")
}

fn mount_new_api(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> Result<(), NewApiError> {
    use rustix::mount as m;
    let fs_fd = match m::fsopen("overlay", m::FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(Errno::NOSYS) => return Err(NewApiError::Unsupported("fsopen: ENOSYS".into())),
        Err(e) => return Err(NewApiError::Failed(format!("fsopen overlay: {e}"))),
    };
    let fail = |what: &str, e: Errno, fd: &OwnedFd| {
        let log = fs_log(fd);
        if log.is_empty() {
            format!("{what}: {e}")
        } else {
            format!("{what}: {e} ({log})")
        }
    };
    for (i, l) in lowers.iter().enumerate() {
        if let Err(e) = m::fsconfig_set_string(&fs_fd, "lowerdir+", l.as_os_str()) {
            if i == 0 && e == Errno::INVAL {
                let log = fs_log(&fs_fd);
                if log.contains("lowerdir+") || log.contains("Unknown parameter") || log.is_empty()
                {
                    return Err(NewApiError::Unsupported(format!("lowerdir+: {e} {log}")));
                }
                return Err(NewApiError::Failed(format!(
                    "overlay lowerdir {}: {e} ({log})",
                    l.display()
                )));
            }
            return Err(NewApiError::Failed(fail(
                &format!("overlay lowerdir {}", l.display()),
                e,
                &fs_fd,
            )));
        }
    }
    for (k, v) in [
        ("upperdir", upper.as_os_str()),
        ("workdir", work.as_os_str()),
        ("index", OsStr::new("off")),
        ("redirect_dir", OsStr::new("off")),
        ("metacopy", OsStr::new("off")),
    ] {
        m::fsconfig_set_string(&fs_fd, k, v)
            .map_err(|e| NewApiError::Failed(fail(&format!("overlay {k}"), e, &fs_fd)))?;
    }
    m::fsconfig_create(&fs_fd)
        .map_err(|e| NewApiError::Failed(fail("creating the overlay filesystem", e, &fs_fd)))?;
    let mnt = m::fsmount(
        &fs_fd,
        m::FsMountFlags::FSMOUNT_CLOEXEC,
        m::MountAttrFlags::empty(),
    )
    .map_err(|e| NewApiError::Failed(fail("fsmount", e, &fs_fd)))?;
    m::move_mount(
        &mnt,
        "",
        rfs::CWD,
        merged,
        m::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| NewApiError::Failed(format!("move_mount to {}: {e}", merged.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rw_ids_are_validated() {
        assert!(valid_rw_id("abc123"));
        assert!(valid_rw_id(&"a".repeat(64)));
        for bad in ["", ".x", "a/b", "l", "empty", "..", "a b"] {
            assert!(!valid_rw_id(bad), "{bad}");
        }
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b"), b"/a b");
        assert_eq!(unescape_mountinfo("/plain"), b"/plain");
        assert_eq!(unescape_mountinfo("/x\\"), b"/x\\");
    }

    /// Unmounts on drop so a failing test leaves no mount behind.
    struct Unmount<'a>(&'a LayerStore, &'a str);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = self.0.unmount_rw(self.1);
        }
    }

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    fn mount_cycle(method: MountMethod) {
        use crate::testutil::{tar_of, Ent};
        let d = tempfile::tempdir().unwrap();
        let ls = LayerStore::open(d.path()).unwrap();
        let l1 = ls
            .apply(
                None,
                &mut &tar_of(&[
                    Ent::dir("etc/"),
                    Ent::file("etc/passwd", "root"),
                    Ent::dir("data/"),
                    Ent::file("data/old", "x"),
                ])[..],
                None,
            )
            .unwrap();
        let l2 = ls
            .apply(
                Some(&l1.meta.chain_id),
                &mut &tar_of(&[Ent::file("top", "t")])[..],
                None,
            )
            .unwrap();
        ls.create_rw("c1", Some(&l2.meta.chain_id)).unwrap();
        assert!(matches!(
            ls.create_rw("c1", None),
            Err(LayerError::RwExists(_))
        ));
        let _guard = Unmount(&ls, "c1");
        let merged = ls.mount_rw_with("c1", method).unwrap();
        assert!(ls.is_mounted("c1").unwrap());
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = info
            .lines()
            .find(|l| l.contains(merged.to_str().unwrap()))
            .unwrap()
            .to_string();
        match method {
            MountMethod::Auto => assert!(line.contains("lowerdir+="), "{line}"),
            MountMethod::Legacy => assert!(line.contains("/overlay2/l/"), "{line}"),
        }
        // idempotent
        assert_eq!(ls.mount_rw_with("c1", method).unwrap(), merged);
        assert_eq!(fs::read(merged.join("etc/passwd")).unwrap(), b"root");
        assert_eq!(fs::read(merged.join("top")).unwrap(), b"t");
        fs::write(merged.join("new"), b"hello").unwrap();
        fs::remove_file(merged.join("etc/passwd")).unwrap();
        fs::remove_dir_all(merged.join("data")).unwrap();
        fs::create_dir(merged.join("data")).unwrap();
        fs::write(merged.join("data/fresh"), b"f").unwrap();
        let mut out = Vec::new();
        let stats = ls.diff_rw("c1", &mut out).unwrap();
        assert_eq!(stats.diff_id, Digest::sha256_of(&out));
        let names = entries(&out);
        let has = |n: &str| names.iter().any(|(p, _)| p == n);
        assert!(has("new"), "{names:?}");
        assert!(has("etc/.wh.passwd"), "{names:?}");
        assert!(has("data/.wh..wh..opq"), "{names:?}");
        assert!(has("data/fresh"), "{names:?}");
        assert_eq!(ls.rw_size("c1").unwrap(), 6);
        ls.unmount_rw("c1").unwrap();
        assert!(!ls.is_mounted("c1").unwrap());
        ls.unmount_rw("c1").unwrap();
        // the diff applies as a layer again, whiteouts included
        let l3 = ls
            .apply(Some(&l2.meta.chain_id), &mut &out[..], Some(&stats.diff_id))
            .unwrap();
        let wh = fs::symlink_metadata(ls.diff_dir(&l3.meta.chain_id).join("etc/passwd")).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(wh.file_type().is_char_device());
        assert_eq!(ls.rw_parents().unwrap(), vec![l2.meta.chain_id.clone()]);
        ls.remove_rw("c1").unwrap();
        assert!(!d.path().join("overlay2/c1").exists());
        ls.remove_rw("c1").unwrap();
    }

    #[test]
    fn mount_write_diff_new_api() {
        if !crate::testutil::is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        mount_cycle(MountMethod::Auto);
    }

    #[test]
    fn mount_write_diff_legacy() {
        if !crate::testutil::is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        mount_cycle(MountMethod::Legacy);
    }

    #[test]
    fn zero_layer_image_mounts() {
        if !crate::testutil::is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let ls = LayerStore::open(d.path()).unwrap();
        ls.create_rw("c0", None).unwrap();
        let _guard = Unmount(&ls, "c0");
        let merged = ls.mount_rw("c0").unwrap();
        fs::write(merged.join("x"), b"1").unwrap();
        ls.remove_rw("c0").unwrap();
        assert!(fs::read_dir(ls.empty_dir()).unwrap().next().is_none());
    }
}
