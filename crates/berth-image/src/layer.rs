//! overlay2 layer snapshots (`<data-root>/overlay2/`).
//!
//! ```text
//! overlay2/<chain-id-hex>/diff/        the layer's own changes (overlay whiteouts inside)
//! overlay2/<chain-id-hex>/meta.json    {"chain_id","diff_id","parent","size","tar_size"}
//! overlay2/<container-id>/             a container's read-write layer (see `rwlayer`)
//! overlay2/l/                          short symlinks for the classic mount(2) fallback
//! overlay2/empty/                      the lower dir of containers of zero-layer images
//! overlay2/.tmp-<random>/              layers being applied (removed at open)
//! overlay2/.trash-<random>/            layers being deleted (removed at open)
//! ```
//!
//! A layer is applied into a fresh `.tmp-*` directory while its diff ID is computed, verified
//! against the expected one, completed with `meta.json`, flushed with `syncfs`, and renamed
//! into place with `RENAME_NOREPLACE`. If another apply of the same chain won the race, the
//! loser's copy is discarded: however many images share a layer, and however many threads
//! apply it at once, one copy exists. A directory without `meta.json` is never a layer.
//!
//! Reference counting is derived, not stored: a layer is in use while an image record names
//! it (directly or as an ancestor of its top layer), a container read-write layer sits on it,
//! or an operation in progress holds a [`LayerPin`] on it. Derived counts cannot drift after
//! a crash; garbage collection asks the image store for the live set.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::fsutil::{self, fsync_dir, random_hex, TempDir};
use crate::pending::{Pending, Unflushed};
use crate::reference::is_full_hex_id;
use crate::tarapply::{self, ApplyError};

/// The chain ID of a layer: its identity given everything below it.
pub type ChainId = Digest;
/// The diff ID of a layer: the sha256 of its uncompressed tar.
pub type DiffId = Digest;

/// `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
pub fn chain_id(parent: Option<&ChainId>, diff_id: &DiffId) -> ChainId {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// The chain IDs of every prefix of `diff_ids`.
pub fn chain_ids(diff_ids: &[DiffId]) -> Vec<ChainId> {
    let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = chain_id(out.last(), d);
        out.push(c);
    }
    out
}

/// What `meta.json` records about a layer snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub chain_id: ChainId,
    pub diff_id: DiffId,
    pub parent: Option<ChainId>,
    /// Sum of file and symlink sizes (Docker's layer size).
    pub size: u64,
    /// Length of the uncompressed tar.
    pub tar_size: u64,
}

/// Errors of the layer store.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(
        "layer diff ID mismatch: expected {expected}, got {actual}; the layer data is corrupt"
    )]
    DiffIdMismatch { expected: DiffId, actual: DiffId },
    #[error("layer {0} is not present in the layer store")]
    NotFound(ChainId),
    #[error("parent layer {0} is not present in the layer store")]
    ParentMissing(ChainId),
    #[error("layer store: {0}")]
    Io(#[from] fsutil::PathError),
    #[error("layer store: corrupt metadata for layer {chain_id}: {reason}")]
    Corrupt { chain_id: String, reason: String },
    #[error("container layer {0:?} does not exist")]
    RwNotFound(String),
    #[error("container layer {0:?} already exists")]
    RwExists(String),
    #[error("invalid container layer id {0:?}")]
    InvalidId(String),
    #[error("mounting the container filesystem failed: {0}")]
    Mount(String),
    #[error("reading the container's changes failed: {0}")]
    Diff(String),
}

impl LayerError {
    /// True when the input (an archive, an expected digest) was at fault.
    pub fn is_input_error(&self) -> bool {
        match self {
            LayerError::Apply(e) => e.is_input_error(),
            LayerError::DiffIdMismatch { .. } => true,
            _ => false,
        }
    }
}

type Pins = Arc<Mutex<HashMap<ChainId, usize>>>;

/// Keeps a layer from being garbage-collected while an operation (load, pull, commit) that
/// has applied or found it has not yet recorded an image using it.
#[derive(Debug)]
pub struct LayerPin {
    pins: Pins,
    chain_id: ChainId,
}

impl Clone for LayerPin {
    fn clone(&self) -> Self {
        pin(&self.pins, &self.chain_id)
    }
}

impl Drop for LayerPin {
    fn drop(&mut self) {
        let mut m = lock(&self.pins);
        if let Some(n) = m.get_mut(&self.chain_id) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.chain_id);
            }
        }
    }
}

fn lock(p: &Pins) -> std::sync::MutexGuard<'_, HashMap<ChainId, usize>> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn pin(pins: &Pins, c: &ChainId) -> LayerPin {
    *lock(pins).entry(c.clone()).or_insert(0) += 1;
    LayerPin {
        pins: pins.clone(),
        chain_id: c.clone(),
    }
}

/// A layer that is present in the store, pinned until this value is dropped.
#[derive(Debug, Clone)]
pub struct AppliedLayer {
    pub meta: LayerMeta,
    /// True when the layer was already present and nothing was extracted.
    pub existed: bool,
    pub pin: LayerPin,
}

/// A layer extracted into a staging directory by [`LayerStore::stage`], not yet visible in
/// the store. Dropping it removes the directory.
pub struct StagedLayer {
    tmp: TempDir,
    /// Diff ID, tar size and content size of what was extracted.
    pub stats: tarapply::ApplyStats,
}

impl std::fmt::Debug for StagedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedLayer")
            .field("path", &self.tmp.path())
            .field("stats", &self.stats)
            .finish()
    }
}

impl StagedLayer {
    /// The staging directory (its `diff/` holds the extracted files).
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
}

/// The overlay2 snapshot store. All methods take `&self`; it is shared between threads.
#[derive(Debug)]
pub struct LayerStore {
    pub(crate) root: PathBuf,
    pins: Pins,
}

impl LayerStore {
    /// The store under `data_root` as it is, creating and cleaning nothing (for checks).
    pub fn at(data_root: &Path) -> LayerStore {
        LayerStore {
            root: data_root.join("overlay2"),
            pins: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Opens `<data_root>/overlay2`, removing interrupted applies and deletions.
    pub fn open(data_root: &Path) -> Result<LayerStore, LayerError> {
        let root = data_root.join("overlay2");
        for d in [root.clone(), root.join("l"), root.join("empty")] {
            fs::create_dir_all(&d).map_err(fsutil::ctx("create", &d))?;
        }
        let rd = fs::read_dir(&root).map_err(fsutil::ctx("list", &root))?;
        for ent in rd {
            let ent = ent.map_err(fsutil::ctx("list", &root))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") || name.starts_with(".trash-") {
                tracing::info!(path = %ent.path().display(), "removing interrupted layer operation");
                fsutil::remove_any(&ent.path()).map_err(fsutil::ctx("remove", &ent.path()))?;
            }
        }
        Ok(LayerStore {
            root,
            pins: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn dir(&self, c: &ChainId) -> PathBuf {
        self.root.join(c.hex())
    }

    /// The `diff/` directory of a layer (whether or not it exists).
    pub fn diff_dir(&self, c: &ChainId) -> PathBuf {
        self.dir(c).join("diff")
    }

    /// The empty directory used as the lower layer of zero-layer images.
    pub fn empty_dir(&self) -> PathBuf {
        self.root.join("empty")
    }

    pub fn exists(&self, c: &ChainId) -> bool {
        self.dir(c).join("meta.json").is_file()
    }

    /// Pins a layer (present or not yet applied) against garbage collection.
    pub fn pin(&self, c: &ChainId) -> LayerPin {
        pin(&self.pins, c)
    }

    /// Pins `parent` (when there is one) for the length of an apply; it must be present.
    fn pin_parent(&self, parent: Option<&ChainId>) -> Result<Option<LayerPin>, LayerError> {
        let Some(p) = parent else {
            return Ok(None);
        };
        let pin = self.pin(p);
        if !self.exists(p) {
            return Err(LayerError::ParentMissing(p.clone()));
        }
        Ok(Some(pin))
    }

    /// Reads a layer's metadata.
    pub fn meta(&self, c: &ChainId) -> Result<LayerMeta, LayerError> {
        let p = self.dir(c).join("meta.json");
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LayerError::NotFound(c.clone()))
            }
            Err(e) => return Err(fsutil::PathError::new("read", p, e).into()),
        };
        let m: LayerMeta = serde_json::from_slice(&bytes).map_err(|e| LayerError::Corrupt {
            chain_id: c.to_string(),
            reason: e.to_string(),
        })?;
        if &m.chain_id != c {
            return Err(LayerError::Corrupt {
                chain_id: c.to_string(),
                reason: format!("meta.json names {}", m.chain_id),
            });
        }
        Ok(m)
    }

    /// Applies an uncompressed layer tar on top of `parent`. With `expected_diff_id`, an
    /// existing layer is reused without reading `r` at all, and a stream that hashes to
    /// anything else is refused (nothing is kept).
    pub fn apply(
        &self,
        parent: Option<&ChainId>,
        r: &mut dyn Read,
        expected_diff_id: Option<&DiffId>,
    ) -> Result<AppliedLayer, LayerError> {
        let _parent_pin = self.pin_parent(parent)?;
        if let Some(d) = expected_diff_id {
            let c = chain_id(parent, d);
            let pin = self.pin(&c);
            if self.exists(&c) {
                tracing::debug!(chain_id = %c, "layer already present");
                return Ok(AppliedLayer {
                    meta: self.meta(&c)?,
                    existed: true,
                    pin,
                });
            }
        }
        let staged = self.stage(r)?;
        self.commit_checked(staged, parent, expected_diff_id, None)
    }

    /// Extracts an uncompressed layer tar into a private staging directory (`.tmp-*`, removed
    /// at open and when the result is dropped), computing its diff ID. No parent is needed:
    /// a layer's diff is self-contained (whiteouts are stored as overlay whiteouts), so the
    /// layers of one image can be staged in parallel and committed in order with
    /// [`LayerStore::commit_staged`].
    pub fn stage(&self, r: &mut dyn Read) -> Result<StagedLayer, LayerError> {
        let tmp =
            TempDir::new_in(&self.root, ".tmp-").map_err(fsutil::ctx("create", &self.root))?;
        let diff = tmp.path().join("diff");
        fs::create_dir(&diff).map_err(fsutil::ctx("create", &diff))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&diff, fs::Permissions::from_mode(0o755))
            .map_err(fsutil::ctx("chmod", &diff))?;
        let stats = tarapply::apply_tar(&diff, r)?;
        Ok(StagedLayer { tmp, stats })
    }

    /// Makes a staged layer part of the store on top of `parent` (which must be present).
    /// With `expected_diff_id`, a staged layer with any other diff ID is refused and removed.
    /// When the same layer is present already (applied concurrently), the staged copy is
    /// discarded and the present one returned with `existed: true`.
    pub fn commit_staged(
        &self,
        staged: StagedLayer,
        parent: Option<&ChainId>,
        expected_diff_id: Option<&DiffId>,
    ) -> Result<AppliedLayer, LayerError> {
        let _parent_pin = self.pin_parent(parent)?;
        self.commit_checked(staged, parent, expected_diff_id, None)
    }

    /// Like [`LayerStore::commit_staged`], but the layer becomes visible before its data is
    /// flushed: `pending` records it first and flushes later (see [`crate::pending`]).
    pub fn commit_staged_deferred(
        &self,
        staged: StagedLayer,
        parent: Option<&ChainId>,
        expected_diff_id: Option<&DiffId>,
        pending: &Pending,
    ) -> Result<AppliedLayer, LayerError> {
        let _parent_pin = self.pin_parent(parent)?;
        self.commit_checked(staged, parent, expected_diff_id, Some(pending))
    }

    /// The second half of an apply: verify, write `meta.json`, flush (or record the deferred
    /// flush in `pending`), rename into place. The caller holds a pin on `parent` (if any)
    /// and has checked that it exists.
    fn commit_checked(
        &self,
        staged: StagedLayer,
        parent: Option<&ChainId>,
        expected_diff_id: Option<&DiffId>,
        pending: Option<&Pending>,
    ) -> Result<AppliedLayer, LayerError> {
        let StagedLayer { tmp, stats } = staged;
        if let Some(want) = expected_diff_id {
            if *want != stats.diff_id {
                return Err(LayerError::DiffIdMismatch {
                    expected: want.clone(),
                    actual: stats.diff_id,
                });
            }
        }
        let c = chain_id(parent, &stats.diff_id);
        let pin = self.pin(&c);
        let meta = LayerMeta {
            chain_id: c.clone(),
            diff_id: stats.diff_id.clone(),
            parent: parent.cloned(),
            size: stats.content_size,
            tar_size: stats.tar_size,
        };
        let bytes = serde_json::to_vec(&meta).map_err(|e| LayerError::Corrupt {
            chain_id: c.to_string(),
            reason: e.to_string(),
        })?;
        fsutil::write_atomic(tmp.path(), "meta.json", &bytes)
            .map_err(fsutil::ctx("write", &tmp.path().join("meta.json")))?;
        // The layer must be complete on disk before the rename makes it visible — or be
        // recorded as not yet flushed, so that a machine crash before the flush removes it.
        let deferred = match pending {
            Some(p) if p.enabled() => match p.mark(&Unflushed::Layer(c.clone())) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(chain_id = %c, error = %e, "cannot defer the layer's flush");
                    false
                }
            },
            _ => false,
        };
        if !deferred {
            // One syncfs instead of an fsync per extracted file.
            if let Ok(f) = fs::File::open(tmp.path()) {
                let _ = rustix::fs::syncfs(&f);
            }
        }
        let dst = self.dir(&c);
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            tmp.path(),
            rustix::fs::CWD,
            &dst,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {
                tmp.keep();
                fsync_dir(&self.root).map_err(fsutil::ctx("fsync", &self.root))?;
                tracing::debug!(chain_id = %c, size = meta.size, "layer applied");
                Ok(AppliedLayer {
                    meta,
                    existed: false,
                    pin,
                })
            }
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
                tracing::debug!(chain_id = %c, "layer applied concurrently; keeping the other copy");
                drop(tmp);
                Ok(AppliedLayer {
                    meta: self.meta(&c)?,
                    existed: true,
                    pin,
                })
            }
            Err(e) => Err(fsutil::PathError::new("rename", tmp.path(), e.into()).into()),
        }
    }

    /// The chain from `top` down to the base layer, top first.
    pub fn chain(&self, top: &ChainId) -> Result<Vec<LayerMeta>, LayerError> {
        let mut out = Vec::new();
        let mut cur = Some(top.clone());
        while let Some(c) = cur {
            if out.len() > 10_000 {
                return Err(LayerError::Corrupt {
                    chain_id: top.to_string(),
                    reason: "layer chain does not end".into(),
                });
            }
            let m = self.meta(&c)?;
            cur = m.parent.clone();
            out.push(m);
        }
        Ok(out)
    }

    /// The `diff/` directories of the chain ending at `top`, top first (overlay lowerdir
    /// order).
    pub fn chain_dirs(&self, top: &ChainId) -> Result<Vec<PathBuf>, LayerError> {
        Ok(self
            .chain(top)?
            .iter()
            .map(|m| self.diff_dir(&m.chain_id))
            .collect())
    }

    /// All layer snapshots present.
    pub fn list(&self) -> Result<Vec<ChainId>, LayerError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.root).map_err(fsutil::ctx("list", &self.root))?;
        for ent in rd {
            let ent = ent.map_err(fsutil::ctx("list", &self.root))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if is_full_hex_id(&name) && ent.path().join("meta.json").is_file() {
                if let Ok(d) = Digest::from_sha256_hex(&name) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Removes the layers of the chain ending at `top` that are not in `live` (the closure of
    /// every layer still used) and not pinned, top first, stopping at the first one still in
    /// use (everything below it is in use too). Returns the removed chain IDs.
    pub fn release_chain(
        &self,
        top: &ChainId,
        live: &HashSet<ChainId>,
    ) -> Result<Vec<ChainId>, LayerError> {
        let mut removed = Vec::new();
        let mut cur = Some(top.clone());
        while let Some(c) = cur {
            if live.contains(&c) {
                break;
            }
            let parent = match self.meta(&c) {
                Ok(m) => m.parent,
                Err(LayerError::NotFound(_)) => break,
                Err(e) => return Err(e),
            };
            if !self.remove_unpinned(&c)? {
                break;
            }
            removed.push(c);
            cur = parent;
        }
        Ok(removed)
    }

    /// Removes every layer not in `live` and not pinned (crash leftovers). Returns them.
    pub fn gc(&self, live: &HashSet<ChainId>) -> Result<Vec<ChainId>, LayerError> {
        let mut removed = Vec::new();
        for c in self.list()? {
            if !live.contains(&c) && self.remove_unpinned(&c)? {
                removed.push(c);
            }
        }
        Ok(removed)
    }

    /// Runs `f` (a deletion) under the pin lock unless `d` is pinned. Blobs share the pin
    /// table with layers. Returns whether `f` ran.
    pub(crate) fn with_unpinned(&self, d: &Digest, f: impl FnOnce()) -> bool {
        let pins = lock(&self.pins);
        if pins.contains_key(d) {
            return false;
        }
        f();
        drop(pins);
        true
    }

    /// Removes a layer whose data may not have reached the disk (see `pending`), unless it is
    /// pinned. Returns whether it was there.
    pub fn remove_unflushed(&self, c: &ChainId) -> Result<bool, LayerError> {
        self.remove_unpinned(c)
    }

    /// Deletes a layer unless pinned: renamed to `.trash-*` under the pin lock (so no apply
    /// can find it half-deleted), then removed.
    fn remove_unpinned(&self, c: &ChainId) -> Result<bool, LayerError> {
        let trash = self.root.join(format!(".trash-{}", random_hex(8)));
        {
            let pins = lock(&self.pins);
            if pins.contains_key(c) {
                return Ok(false);
            }
            match fs::rename(self.dir(c), &trash) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(fsutil::PathError::new("rename", self.dir(c), e).into()),
            }
        }
        let _ = fs::remove_file(self.root.join("l").join(short_link_name(c)));
        fsutil::remove_any(&trash).map_err(fsutil::ctx("remove", &trash))?;
        tracing::debug!(chain_id = %c, "layer removed");
        Ok(true)
    }

    #[cfg(test)]
    pub(crate) fn pinned(&self, c: &ChainId) -> bool {
        lock(&self.pins).contains_key(c)
    }
}

/// The name of a layer's short symlink in `overlay2/l/` (classic mount fallback).
pub(crate) fn short_link_name(c: &ChainId) -> String {
    c.hex()[..20].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{tar_of, Ent};

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn apply_dedups_verifies_and_releases() {
        let d = tempfile::tempdir().unwrap();
        let ls = LayerStore::open(d.path()).unwrap();
        let base = tar_of(&[Ent::file("a", "1")]);
        let top = tar_of(&[Ent::file("b", "2")]);
        let l1 = ls.apply(None, &mut &base[..], None).unwrap();
        assert!(!l1.existed);
        assert_eq!(l1.meta.diff_id, Digest::sha256_of(&base));
        assert_eq!(l1.meta.size, 1);
        let again = ls.apply(None, &mut &base[..], None).unwrap();
        assert!(again.existed);
        // with the expected diff id, the reader is not even touched
        let mut empty: &[u8] = &[];
        let known = ls.apply(None, &mut empty, Some(&l1.meta.diff_id)).unwrap();
        assert!(known.existed);
        // wrong expected diff id: refused, nothing kept
        let wrong = Digest::sha256_of(b"nope");
        let err = ls.apply(None, &mut &top[..], Some(&wrong)).unwrap_err();
        assert!(matches!(err, LayerError::DiffIdMismatch { .. }), "{err}");
        assert_eq!(ls.list().unwrap().len(), 1);
        let l2 = ls
            .apply(Some(&l1.meta.chain_id), &mut &top[..], None)
            .unwrap();
        assert_eq!(
            ls.chain_dirs(&l2.meta.chain_id).unwrap(),
            vec![
                ls.diff_dir(&l2.meta.chain_id),
                ls.diff_dir(&l1.meta.chain_id)
            ]
        );
        // pinned layers survive release
        let top_c = l2.meta.chain_id.clone();
        let live = HashSet::new();
        assert!(ls.release_chain(&top_c, &live).unwrap().is_empty());
        drop((l1, l2, again, known));
        let removed = ls.release_chain(&top_c, &live).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(removed[0], top_c);
        assert!(ls.list().unwrap().is_empty());
        // no temp dirs left behind
        let names: Vec<_> = fs::read_dir(&ls.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    #[test]
    fn failed_apply_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let ls = LayerStore::open(d.path()).unwrap();
        let bad = tar_of(&[Ent::file("ok", "1"), Ent::file("../x", "2")]);
        assert!(ls.apply(None, &mut &bad[..], None).is_err());
        let names: Vec<_> = fs::read_dir(&ls.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n == "l" || n == "empty"), "{names:?}");
        let parent = Digest::sha256_of(b"missing");
        let ok = tar_of(&[Ent::file("ok", "1")]);
        assert!(matches!(
            ls.apply(Some(&parent), &mut &ok[..], None),
            Err(LayerError::ParentMissing(_))
        ));
    }

    #[test]
    fn concurrent_applies_end_with_one_copy() {
        let d = tempfile::tempdir().unwrap();
        let ls = Arc::new(LayerStore::open(d.path()).unwrap());
        let entries: Vec<Ent> = (0..200)
            .map(|i| Ent::file(format!("f{i}"), vec![b'x'; 1000]))
            .collect();
        let data = Arc::new(tar_of(&entries));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let ls = ls.clone();
                let data = data.clone();
                std::thread::spawn(move || ls.apply(None, &mut &data[..], None).unwrap())
            })
            .collect();
        let results: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| !r.existed).count(), 1);
        assert_eq!(ls.list().unwrap().len(), 1);
        let c = results[0].meta.chain_id.clone();
        assert_eq!(fs::read_dir(ls.diff_dir(&c)).unwrap().count(), 200);
        assert!(ls.pinned(&c));
        drop(results);
        assert!(!ls.pinned(&c));
    }

    #[test]
    fn open_removes_leftovers() {
        let d = tempfile::tempdir().unwrap();
        let ls = LayerStore::open(d.path()).unwrap();
        fs::create_dir_all(ls.root.join(".tmp-abc/diff")).unwrap();
        fs::create_dir_all(ls.root.join(".trash-abc/diff")).unwrap();
        drop(ls);
        let ls = LayerStore::open(d.path()).unwrap();
        assert!(!ls.root.join(".tmp-abc").exists());
        assert!(!ls.root.join(".trash-abc").exists());
    }
}
