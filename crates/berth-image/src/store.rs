//! The image store: image records, the tag/digest index, and the operations on them
//! (resolve, list, tag, untag, history, delete, create).
//!
//! ```text
//! <data-root>/image/records/<image-id-hex>.json   one record per image (layers, parent, times)
//! <data-root>/image/repositories.json             {"refs": {"docker.io/library/busybox:latest": "sha256:…"}}
//! <data-root>/tmp/                                spool space (load/import); emptied at open
//! ```
//!
//! Records and the index are replaced atomically (temp file + fsync + rename + dir fsync).
//! Creating an image writes blobs, then layers, then the record, then the index; deleting
//! goes the other way. A crash between steps leaves at worst unreferenced layers and blobs,
//! which [`ImageStore::open`] removes, or, for an image created without references, an
//! untagged (dangling) image; one created with its references (a pull) is announced in
//! `image/incomplete/` until they are written, and removed at open if they were not. A record that fails to
//! parse is reported and skipped (and garbage collection is then skipped for that start, so
//! nothing it might reference is lost).
//!
//! Thread safety: the in-memory state sits behind one `RwLock`; reads share it, mutations
//! hold it exclusively while they update the files. Long work (extracting layers, streaming
//! archives) happens outside the lock, protected by layer/blob pins.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};

use crate::cas::ContentStore;
use crate::compress;
use crate::config::{self, ImageConfig};
use crate::digest::Digest;
use crate::distmeta::{DistIndex, LayerBlob};
use crate::error::ImageError;
use crate::fsutil::{self, TempDir};
use crate::layer::{
    chain_ids, AppliedLayer, ChainId, DiffId, LayerError, LayerPin, LayerStore, StagedLayer,
};
use crate::pending::Pending;
use crate::reference::{is_full_hex_id, Reference};

/// Docker's media type of an uncompressed layer in the legacy layout.
pub const MEDIA_TYPE_DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_TYPE_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    pub diff_id: DiffId,
    pub chain_id: ChainId,
    /// The blob as received (compressed or not), in the content store.
    pub blob: Digest,
    pub media_type: String,
    /// Size of the blob.
    pub compressed_size: u64,
    /// Sum of the layer's file and symlink sizes (Docker's layer size).
    pub size: u64,
}

impl ImageLayer {
    /// Describes an applied layer whose blob is `blob` (`media_type`, `compressed_size`).
    pub fn from_applied(
        applied: &AppliedLayer,
        blob: Digest,
        media_type: &str,
        compressed_size: u64,
    ) -> ImageLayer {
        ImageLayer {
            diff_id: applied.meta.diff_id.clone(),
            chain_id: applied.meta.chain_id.clone(),
            blob,
            media_type: media_type.to_string(),
            compressed_size,
            size: applied.meta.size,
        }
    }
}

/// The record file of an image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordFile {
    id: Digest,
    layers: Vec<ImageLayer>,
    #[serde(default)]
    parent: Option<Digest>,
    #[serde(default)]
    last_tag_time: Option<String>,
    /// Other blobs owned by this image (manifests of pulled images), kept from GC.
    #[serde(default)]
    extra_blobs: Vec<Digest>,
}

#[derive(Debug)]
struct Record {
    file: RecordFile,
    config: Arc<ImageConfig>,
}

/// An image as seen by callers: a snapshot (tags as of the call).
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:` of the config bytes.
    pub id: Digest,
    pub config: Arc<ImageConfig>,
    /// Bottom first, like `rootfs.diff_ids`.
    pub layers: Vec<ImageLayer>,
    /// Tagged references (fully qualified; use `familiar()` for display), sorted.
    pub repo_tags: Vec<Reference>,
    /// Digested references, sorted.
    pub repo_digests: Vec<Reference>,
    /// The image this one was built from (builds and commits), if recorded.
    pub parent: Option<Digest>,
    /// RFC 3339 time of the last tag change, if any.
    pub last_tag_time: Option<String>,
}

impl Image {
    /// `created` from the config, as unix seconds (0 when absent).
    pub fn created_unix(&self) -> i64 {
        self.config.created_unix()
    }

    /// Sum of the layer sizes (Docker's image `Size`).
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// The chain ID of the top layer (None for an image without layers).
    pub fn top_chain_id(&self) -> Option<&ChainId> {
        self.layers.last().map(|l| &l.chain_id)
    }

    /// `busybox:latest`-style tags.
    pub fn familiar_tags(&self) -> Vec<String> {
        self.repo_tags.iter().map(|r| r.familiar()).collect()
    }

    /// `busybox@sha256:…`-style digests.
    pub fn familiar_digests(&self) -> Vec<String> {
        self.repo_digests.iter().map(|r| r.familiar()).collect()
    }
}

/// One line of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// The image ID for the top entry (and for recorded parents), `<missing>` otherwise.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    /// Familiar tags of that image (empty for `<missing>` entries).
    pub tags: Vec<String>,
    /// Size of the layer this entry created (0 for empty layers).
    pub size: i64,
    pub comment: String,
}

/// One line of a `docker rmi` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// Options of [`ImageStore::create_image`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Parent image (set by builds and commits; enables `prune` and the child conflict).
    pub parent: Option<Digest>,
    /// Extra blobs owned by the image (e.g. the manifest of a pulled image).
    pub extra_blobs: Vec<Digest>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RepositoriesFile {
    refs: BTreeMap<String, Digest>,
}

#[derive(Debug, Default)]
struct State {
    images: HashMap<Digest, Arc<Record>>,
    refs: BTreeMap<Reference, Digest>,
}

impl State {
    fn references_to(&self, id: &Digest) -> Vec<Reference> {
        self.refs
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn image(&self, id: &Digest) -> Option<Arc<Image>> {
        let rec = self.images.get(id)?;
        let refs = self.references_to(id);
        let (digests, tags): (Vec<_>, Vec<_>) =
            refs.into_iter().partition(|r| r.digest().is_some());
        Some(Arc::new(Image {
            id: id.clone(),
            config: rec.config.clone(),
            layers: rec.file.layers.clone(),
            repo_tags: tags,
            repo_digests: digests,
            parent: rec.file.parent.clone(),
            last_tag_time: rec.file.last_tag_time.clone(),
        }))
    }

    /// Every layer chain still used by an image.
    fn live_layers(&self, extra_tops: &[ChainId], ls: &LayerStore) -> HashSet<ChainId> {
        let mut live = HashSet::new();
        for rec in self.images.values() {
            for l in &rec.file.layers {
                live.insert(l.chain_id.clone());
            }
        }
        for top in extra_tops {
            if let Ok(chain) = ls.chain(top) {
                live.extend(chain.into_iter().map(|m| m.chain_id));
            } else {
                live.insert(top.clone());
            }
        }
        live
    }

    /// Diff IDs of every layer of every image.
    fn live_diff_ids(&self) -> HashSet<DiffId> {
        self.images
            .values()
            .flat_map(|r| r.file.layers.iter().map(|l| l.diff_id.clone()))
            .collect()
    }

    fn live_blobs(&self) -> HashSet<Digest> {
        let mut live = HashSet::new();
        for (id, rec) in &self.images {
            live.insert(id.clone());
            live.extend(rec.file.layers.iter().map(|l| l.blob.clone()));
            live.extend(rec.file.extra_blobs.iter().cloned());
        }
        live
    }
}

/// The image store. Open once per data root and share via `Arc`.
#[derive(Debug)]
pub struct ImageStore {
    data_root: PathBuf,
    cas: ContentStore,
    layers: LayerStore,
    state: RwLock<State>,
    /// Compressed forms of layers and where they exist remotely (see `distmeta`). Lock
    /// order: `state` before `dist`.
    dist: std::sync::Mutex<DistIndex>,
    /// Pulled layers and blobs not flushed yet (see `pending`).
    pending: Pending,
}

fn records_dir(root: &Path) -> PathBuf {
    root.join("image").join("records")
}

/// Markers of records being created together with their references (see
/// [`ImageStore::create_image_with_refs`]).
fn incomplete_dir(root: &Path) -> PathBuf {
    root.join("image").join("incomplete")
}

/// Drops records announced as incomplete that no reference points at (their creation was
/// interrupted before the references were written), and the markers.
fn drop_incomplete(root: &Path, state: &mut State) -> Result<(), ImageError> {
    let dir = incomplete_dir(root);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fsutil::PathError::new("list", dir, e).into()),
    };
    for ent in entries {
        let ent = ent.map_err(fsutil::ctx("list", &dir))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Ok(id) = Digest::parse(&format!("sha256:{name}")) {
            let referenced = state.refs.values().any(|v| *v == id);
            if state.images.contains_key(&id) && !referenced {
                tracing::warn!(image = %id, "removing an image whose pull or load was interrupted before it was tagged");
                let rec = records_dir(root).join(format!("{name}.json"));
                fs::remove_file(&rec).map_err(fsutil::ctx("remove", &rec))?;
                state.images.remove(&id);
            }
        }
        let path = ent.path();
        fs::remove_file(&path).map_err(fsutil::ctx("remove", &path))?;
    }
    fsutil::fsync_dir(&records_dir(root)).map_err(fsutil::ctx("sync", &records_dir(root)))?;
    Ok(())
}

impl ImageStore {
    /// Opens (creating) the store under `data_root` and loads every record. Leftovers of
    /// interrupted operations are removed; unparsable records are reported and skipped.
    pub fn open(data_root: &Path) -> Result<ImageStore, ImageError> {
        let cas = ContentStore::open(data_root)?;
        let layers = LayerStore::open(data_root)?;
        let pending = Pending::open(data_root)
            .map_err(fsutil::ctx("open", &data_root.join("pending-sync")))?;
        let recovery = pending
            .recover(&cas, &layers)
            .map_err(fsutil::ctx("recover", &data_root.join("pending-sync")))?;
        let tmp = data_root.join("tmp");
        fs::create_dir_all(&tmp).map_err(fsutil::ctx("create", &tmp))?;
        fsutil::empty_dir(&tmp).map_err(fsutil::ctx("clean", &tmp))?;
        let rdir = records_dir(data_root);
        fs::create_dir_all(&rdir).map_err(fsutil::ctx("create", &rdir))?;
        let idir = data_root.join("image");
        fsutil::clean_atomic_leftovers(&idir).map_err(fsutil::ctx("clean", &idir))?;
        fsutil::clean_atomic_leftovers(&rdir).map_err(fsutil::ctx("clean", &rdir))?;

        let mut state = State::default();
        let mut damaged = false;
        for ent in fs::read_dir(&rdir).map_err(fsutil::ctx("list", &rdir))? {
            let ent = ent.map_err(fsutil::ctx("list", &rdir))?;
            let path = ent.path();
            match load_record(&path, &cas, &layers) {
                Ok(rec) => {
                    state.images.insert(rec.file.id.clone(), Arc::new(rec));
                }
                Err(_) if uses_lost_layer(&path, &recovery.lost_layers) => {
                    tracing::warn!(
                        record = %path.display(),
                        "removing an image whose layer did not reach the disk before the machine went down; pull it again"
                    );
                    fs::remove_file(&path).map_err(fsutil::ctx("remove", &path))?;
                }
                Err(why) => {
                    damaged = true;
                    tracing::error!(record = %path.display(), error = %why, "skipping unreadable image record");
                }
            }
        }
        let repos_path = idir.join("repositories.json");
        match fs::read(&repos_path) {
            Ok(bytes) => match serde_json::from_slice::<RepositoriesFile>(&bytes) {
                Ok(f) => {
                    for (k, id) in f.refs {
                        match Reference::parse(&k) {
                            Ok(r) if state.images.contains_key(&id) => {
                                state.refs.insert(r, id);
                            }
                            Ok(_) => {
                                tracing::warn!(reference = %k, image = %id, "dropping tag of a missing image")
                            }
                            Err(e) => {
                                tracing::warn!(reference = %k, error = %e, "dropping invalid reference")
                            }
                        }
                    }
                }
                Err(e) => {
                    damaged = true;
                    tracing::error!(path = %repos_path.display(), error = %e, "tag index is unreadable; starting without tags");
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fsutil::PathError::new("read", repos_path, e).into()),
        }

        drop_incomplete(data_root, &mut state)?;

        let store = ImageStore {
            data_root: data_root.to_path_buf(),
            cas,
            layers,
            state: RwLock::new(state),
            dist: std::sync::Mutex::new(DistIndex::load(&idir)),
            pending,
        };
        if damaged {
            tracing::warn!("skipping garbage collection because some records could not be read");
        } else {
            store.gc()?;
        }
        Ok(store)
    }

    /// Makes a pulled, staged layer part of the store on top of `parent`; its data is
    /// flushed later by [`ImageStore::flush_pending`] (see [`crate::pending`]).
    pub fn commit_pulled_layer(
        &self,
        staged: StagedLayer,
        parent: Option<&ChainId>,
        expected_diff_id: Option<&DiffId>,
    ) -> Result<AppliedLayer, LayerError> {
        self.layers
            .commit_staged_deferred(staged, parent, expected_diff_id, &self.pending)
    }

    /// Flushes pulled layers and blobs committed without a flush. Run after a pull, off the
    /// request's path.
    pub fn flush_pending(&self) {
        match self.pending.flush() {
            Ok(0) => {}
            Ok(n) => tracing::debug!(items = n, "pulled data flushed"),
            Err(e) => {
                tracing::warn!(error = %e, "flushing pulled layers failed; retried after the next pull or restart")
            }
        }
    }

    pub(crate) fn pending(&self) -> &Pending {
        &self.pending
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.cas
    }

    /// The layer store (container read-write layers live there too).
    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// The data root this store lives in.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// A fresh spool directory under `<data-root>/tmp`, removed when dropped.
    pub fn tmp_dir(&self, prefix: &str) -> Result<TempDir, ImageError> {
        let tmp = self.data_root.join("tmp");
        Ok(TempDir::new_in(&tmp, prefix).map_err(fsutil::ctx("create", &tmp))?)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes layers and blobs no image, container layer or running operation uses.
    pub fn gc(&self) -> Result<(Vec<ChainId>, Vec<Digest>), ImageError> {
        let st = self.write();
        let rw = self.layers.rw_parents()?;
        let live = st.live_layers(&rw, &self.layers);
        let removed_layers = self.layers.gc(&live)?;
        let mut live_blobs = st.live_blobs();
        {
            let live_diffs = st.live_diff_ids();
            let mut dist = self.dist();
            if let Err(e) = dist.retain_live(&live_diffs) {
                tracing::warn!(error = %e, "cannot prune distribution metadata");
            }
            live_blobs.extend(dist.blobs_of(&live_diffs));
        }
        let mut removed_blobs = Vec::new();
        for d in self.cas.list()? {
            if !live_blobs.contains(&d) && self.delete_blob_unpinned(&d)? {
                removed_blobs.push(d);
            }
        }
        if !removed_layers.is_empty() || !removed_blobs.is_empty() {
            tracing::info!(
                layers = removed_layers.len(),
                blobs = removed_blobs.len(),
                "removed unreferenced layers and blobs"
            );
        }
        Ok((removed_layers, removed_blobs))
    }

    fn delete_blob_unpinned(&self, d: &Digest) -> Result<bool, ImageError> {
        let mut res = Ok(false);
        self.layers.with_unpinned(d, || res = self.cas.delete(d));
        Ok(res?)
    }

    fn dist(&self) -> std::sync::MutexGuard<'_, DistIndex> {
        self.dist.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The distributable forms known for a layer (compressed blobs berth made or pulled, and
    /// the registries and repositories they are known in). See `distmeta`.
    pub fn layer_blobs(&self, diff_id: &DiffId) -> Vec<LayerBlob> {
        self.dist().blobs(diff_id)
    }

    /// Records distributable forms of layers and where they exist (after a pull or push).
    /// A listed blob that is in the content store is kept while an image uses its layer.
    pub fn record_layer_blobs(&self, entries: Vec<(DiffId, LayerBlob)>) -> Result<(), ImageError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.dist().record(entries)
    }

    /// Pins a blob against garbage collection while an operation that stored it has not yet
    /// recorded an image (blobs and layers share the pin table).
    pub fn pin_blob(&self, d: &Digest) -> LayerPin {
        self.layers.pin(d)
    }

    /// Applies a layer blob already in the content store on top of `parent` (decompressing
    /// gzip/zstd as detected). With `expected_diff_id`, an existing layer is reused.
    pub fn apply_layer_blob(
        &self,
        parent: Option<&ChainId>,
        blob: &Digest,
        expected_diff_id: Option<&DiffId>,
    ) -> Result<AppliedLayer, ImageError> {
        if let Some(d) = expected_diff_id {
            let c = crate::layer::chain_id(parent, d);
            let pin = self.layers.pin(&c);
            if self.layers.exists(&c) {
                return Ok(AppliedLayer {
                    meta: self.layers.meta(&c)?,
                    existed: true,
                    pin,
                });
            }
        }
        let f = self.cas.open_blob(blob)?;
        let (_, mut r) = compress::decompress(f)
            .map_err(|e| ImageError::InvalidInput(format!("layer {blob}: {e}")))?;
        Ok(self.layers.apply(parent, &mut r, expected_diff_id)?)
    }

    /// Records an image (the seam for load, import, pull, commit and build). Writes the
    /// config blob, checks that `layers` match `rootfs.diff_ids` and are all present (layer
    /// snapshots and blobs), then writes the record. Creating an image that exists already
    /// returns it unchanged.
    pub fn create_image(
        &self,
        config_bytes: &[u8],
        layers: &[ImageLayer],
        opts: CreateOptions,
    ) -> Result<Arc<Image>, ImageError> {
        self.create_image_with_refs(config_bytes, layers, opts, &[])
    }

    /// [`ImageStore::create_image`], and points `refs` (tags, which get the default tag, and
    /// digest references) at the image in the same step: a crash in between leaves no
    /// untagged image behind. A new record is announced by a marker in `image/incomplete/`
    /// until its references are written; [`ImageStore::open`] removes a record it finds so
    /// announced that nothing references (it was never visible: both writes happen under the
    /// store's lock).
    pub fn create_image_with_refs(
        &self,
        config_bytes: &[u8],
        layers: &[ImageLayer],
        opts: CreateOptions,
        refs: &[Reference],
    ) -> Result<Arc<Image>, ImageError> {
        let config = ImageConfig::parse(config_bytes)?;
        let diff_ids: Vec<DiffId> = layers.iter().map(|l| l.diff_id.clone()).collect();
        if config.rootfs.diff_ids != diff_ids {
            return Err(ImageError::InvalidInput(format!(
                "image config lists {} layer diff IDs that do not match the {} layers supplied",
                config.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        for (l, c) in layers.iter().zip(chain_ids(&diff_ids)) {
            if l.chain_id != c {
                return Err(ImageError::InvalidInput(format!(
                    "layer {} has chain ID {}, expected {c}",
                    l.diff_id, l.chain_id
                )));
            }
            if !self.layers.exists(&c) {
                return Err(LayerError::NotFound(c).into());
            }
            if !self.cas.exists(&l.blob) {
                return Err(crate::cas::CasError::NotFound(l.blob.clone()).into());
            }
        }
        let id = Digest::sha256_of(config_bytes);
        let _pin = self.pin_blob(&id);
        self.cas.put_bytes(config_bytes)?;
        let mut refs: Vec<Reference> = refs
            .iter()
            .map(|r| {
                if r.digest().is_some() {
                    r.clone()
                } else {
                    r.clone().with_default_tag()
                }
            })
            .collect();
        refs.dedup();
        let mut st = self.write();
        if st.images.contains_key(&id) {
            for r in &refs {
                if r.digest().is_some() {
                    st.refs.insert(r.clone(), id.clone());
                    self.write_refs(&st)?;
                } else {
                    self.set_tag_locked(&mut st, &id, r)?;
                }
            }
            return st
                .image(&id)
                .ok_or_else(|| ImageError::Internal("image vanished".into()));
        }
        let tagged = refs.iter().any(|r| r.digest().is_none());
        let file = RecordFile {
            id: id.clone(),
            layers: layers.to_vec(),
            parent: opts.parent,
            last_tag_time: tagged.then(config::now_rfc3339),
            extra_blobs: opts.extra_blobs,
        };
        let incomplete = incomplete_dir(&self.data_root);
        let marker = id.hex().to_string();
        if !refs.is_empty() {
            fs::create_dir_all(&incomplete).map_err(fsutil::ctx("create", &incomplete))?;
            fsutil::write_atomic(&incomplete, &marker, b"")
                .map_err(fsutil::ctx("write", &incomplete.join(&marker)))?;
        }
        self.write_record(&file)?;
        crate::crashpoint::here("image-recorded");
        st.images.insert(
            id.clone(),
            Arc::new(Record {
                file,
                config: Arc::new(config),
            }),
        );
        if !refs.is_empty() {
            for r in &refs {
                if let Some(prev) = st.refs.insert(r.clone(), id.clone()).filter(|p| *p != id) {
                    tracing::debug!(tag = %r, from = %prev, to = %id, "tag moved");
                }
            }
            self.write_refs(&st)?;
            // Losing this removal in a power failure is harmless: at open, an announced
            // record with references stays.
            let _ = fs::remove_file(incomplete.join(&marker));
        }
        tracing::debug!(image = %id, layers = layers.len(), "image recorded");
        st.image(&id)
            .ok_or_else(|| ImageError::Internal("image vanished".into()))
    }

    fn write_record(&self, file: &RecordFile) -> Result<(), ImageError> {
        let dir = records_dir(&self.data_root);
        let bytes = serde_json::to_vec_pretty(file)
            .map_err(|e| ImageError::Internal(format!("serialising image record: {e}")))?;
        let name = format!("{}.json", file.id.hex());
        fsutil::write_atomic(&dir, &name, &bytes)
            .map_err(fsutil::ctx("write", &dir.join(&name)))?;
        Ok(())
    }

    fn write_refs(&self, st: &State) -> Result<(), ImageError> {
        let f = RepositoriesFile {
            refs: st
                .refs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&f)
            .map_err(|e| ImageError::Internal(format!("serialising the tag index: {e}")))?;
        let dir = self.data_root.join("image");
        fsutil::write_atomic(&dir, "repositories.json", &bytes)
            .map_err(fsutil::ctx("write", &dir.join("repositories.json")))?;
        Ok(())
    }

    /// Finds an image with Docker's lookup rules: full ID (with or without `sha256:`),
    /// `name[:tag]`, `name@digest`, then a unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<Arc<Image>, ImageError> {
        let st = self.read();
        resolve_in(&st, name_or_id).map(|id| st.image(&id).expect("resolved id exists"))
    }

    /// Like [`ImageStore::resolve`], returning only the ID.
    pub fn resolve_id(&self, name_or_id: &str) -> Result<Digest, ImageError> {
        resolve_in(&self.read(), name_or_id)
    }

    /// An image by exact ID.
    pub fn get(&self, id: &Digest) -> Option<Arc<Image>> {
        self.read().image(id)
    }

    /// Every image, newest first.
    pub fn list(&self) -> Vec<Arc<Image>> {
        let st = self.read();
        let mut v: Vec<Arc<Image>> = st.images.keys().filter_map(|id| st.image(id)).collect();
        v.sort_by(|a, b| {
            b.created_unix()
                .cmp(&a.created_unix())
                .then_with(|| a.id.cmp(&b.id))
        });
        v
    }

    /// The raw config bytes of an image (from the content store).
    pub fn config_bytes(&self, id: &Digest) -> Result<Vec<u8>, ImageError> {
        Ok(self.cas.read(id)?)
    }

    /// `docker tag SOURCE TARGET`: points `target` (default tag `latest`) at the image
    /// `source` resolves to. A tag that moves away from another image leaves that image
    /// dangling.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<Arc<Image>, ImageError> {
        let mut st = self.write();
        let id = resolve_in(&st, source)?;
        self.set_tag_locked(&mut st, &id, target)?;
        st.image(&id)
            .ok_or_else(|| ImageError::Internal("image vanished".into()))
    }

    /// Points `target` at image `id` (used by load/import/pull/commit).
    pub fn tag_id(&self, id: &Digest, target: &Reference) -> Result<(), ImageError> {
        let mut st = self.write();
        if !st.images.contains_key(id) {
            return Err(ImageError::NotFound(id.to_string()));
        }
        self.set_tag_locked(&mut st, id, target)
    }

    /// Records a `name@digest` reference for an image (pull by digest / push results).
    pub fn add_digest_ref(&self, id: &Digest, reference: &Reference) -> Result<(), ImageError> {
        if reference.digest().is_none() {
            return Err(ImageError::InvalidInput(format!(
                "{} is not a digest reference",
                reference.familiar()
            )));
        }
        let mut st = self.write();
        if !st.images.contains_key(id) {
            return Err(ImageError::NotFound(id.to_string()));
        }
        st.refs.insert(reference.clone(), id.clone());
        self.write_refs(&st)
    }

    fn set_tag_locked(
        &self,
        st: &mut State,
        id: &Digest,
        target: &Reference,
    ) -> Result<(), ImageError> {
        if target.digest().is_some() {
            return Err(ImageError::InvalidInput(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let target = target.clone().with_default_tag();
        let previous = st.refs.insert(target.clone(), id.clone());
        self.write_refs(st)?;
        if let Some(prev) = previous.filter(|p| p != id) {
            tracing::debug!(tag = %target, from = %prev, to = %id, "tag moved");
        }
        if let Some(rec) = st.images.get(id) {
            let mut file = rec.file.clone();
            file.last_tag_time = Some(config::now_rfc3339());
            self.write_record(&file)?;
            let config = rec.config.clone();
            st.images
                .insert(id.clone(), Arc::new(Record { file, config }));
        }
        Ok(())
    }

    /// Removes a tag or digest reference. Returns the image it pointed at, if any.
    pub fn untag(&self, reference: &Reference) -> Result<Option<Digest>, ImageError> {
        let mut st = self.write();
        let r = if reference.digest().is_some() {
            reference.clone()
        } else {
            reference.clone().with_default_tag()
        };
        let prev = st.refs.remove(&r);
        if prev.is_some() {
            self.write_refs(&st)?;
        }
        Ok(prev)
    }

    /// The chain of layer `diff/` dirs for a container's lower layers, top first (the empty
    /// dir for an image without layers).
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>, ImageError> {
        match image.top_chain_id() {
            Some(top) => Ok(self.layers.chain_dirs(top)?),
            None => Ok(vec![self.layers.empty_dir()]),
        }
    }

    /// `docker history`: newest first.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryItem>, ImageError> {
        let st = self.read();
        let id = resolve_in(&st, name_or_id)?;
        let img = st.image(&id).expect("resolved id exists");
        let mut out = Vec::new();
        let mut layer_idx = 0usize;
        for h in &img.config.history {
            let mut size = 0i64;
            if !h.empty_layer {
                let Some(l) = img.layers.get(layer_idx) else {
                    return Err(ImageError::Internal(
                        "too many non-empty layers in History section".into(),
                    ));
                };
                size = l.size as i64;
                layer_idx += 1;
            }
            out.push(HistoryItem {
                id: "<missing>".into(),
                created: config::parse_time(h.created.as_deref()),
                created_by: h.created_by.clone(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone(),
            });
        }
        out.reverse();
        // Fill in IDs and tags along the recorded parent chain.
        let mut cur = Some(id);
        for item in out.iter_mut() {
            let Some(cid) = cur.take() else { break };
            let Some(ci) = st.image(&cid) else { break };
            item.id = cid.to_string();
            item.tags = ci.familiar_tags();
            cur = ci.parent.clone();
        }
        Ok(out)
    }

    /// `docker rmi` with Docker's rules and texts. `in_use(id)` tells whether a container uses
    /// the image: `Some((container_id, running))`; return a running one if there is any.
    /// It is called with the store's lock held and must not call back into the store.
    ///
    /// Rules (moby's `ImageDelete`): a name removes that reference only, unless it was the
    /// last one; a name whose image a container uses is refused without `force` (with
    /// `force`, the tag goes and the image stays while a container runs it); by ID, a
    /// running container is a hard conflict, a stopped one or references in several
    /// repositories need `force`; `prune` also deletes untagged, unused parents.
    pub fn delete(
        &self,
        name_or_id: &str,
        force: bool,
        prune: bool,
        in_use: &dyn Fn(&Digest) -> Option<(String, bool)>,
    ) -> Result<Vec<DeleteItem>, ImageError> {
        let mut st = self.write();
        let id = resolve_in(&st, name_or_id)?;
        let mut records = Vec::new();
        let mut repo_refs = st.references_to(&id);
        let mut removed_repository_ref = false;

        if !is_image_id_prefix(&id, name_or_id) {
            // A repository reference was given: remove it first.
            if !force && is_single_reference(&repo_refs) {
                if let Some((cid, _)) = in_use(&id) {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{name_or_id}\" (must force) - container {} is using its referenced image {}",
                        short(&cid),
                        id.short()
                    )));
                }
            }
            let parsed = Reference::parse_normalized(name_or_id)?;
            let parsed = if parsed.digest().is_some() {
                parsed
            } else {
                parsed.with_default_tag()
            };
            st.refs.remove(&parsed);
            records.push(DeleteItem::Untagged(parsed.familiar()));
            repo_refs = st.references_to(&id);
            // A tag was removed and only digest references of that repository remain:
            // remove those too.
            if parsed.digest().is_none() {
                let same_repo_tag = repo_refs
                    .iter()
                    .any(|r| r.digest().is_none() && r.name() == parsed.name());
                if !same_repo_tag {
                    let mut remaining = Vec::new();
                    for r in repo_refs {
                        if r.digest().is_some() && r.name() == parsed.name() {
                            st.refs.remove(&r);
                            records.push(DeleteItem::Untagged(r.familiar()));
                        } else {
                            remaining.push(r);
                        }
                    }
                    repo_refs = remaining;
                }
            }
            self.write_refs(&st)?;
            if !repo_refs.is_empty() {
                return Ok(records);
            }
            removed_repository_ref = true;
        } else if is_single_reference(&repo_refs) {
            // By ID, with references all in one repository (at most one tag): remove them
            // unless a container is in the way.
            let mask = if force {
                Conflicts::HARD
            } else {
                Conflicts::HARD | Conflicts::STOPPED
            };
            if let Some(c) = self.check_conflict(&st, &id, mask, in_use) {
                return Err(c.into_error());
            }
            for r in repo_refs {
                st.refs.remove(&r);
                records.push(DeleteItem::Untagged(r.familiar()));
            }
            self.write_refs(&st)?;
        }
        self.delete_helper(
            &mut st,
            &id,
            &mut records,
            force,
            prune,
            removed_repository_ref,
            in_use,
        )?;
        Ok(records)
    }

    #[allow(clippy::too_many_arguments)]
    fn delete_helper(
        &self,
        st: &mut State,
        id: &Digest,
        records: &mut Vec<DeleteItem>,
        force: bool,
        prune: bool,
        quiet: bool,
        in_use: &dyn Fn(&Digest) -> Option<(String, bool)>,
    ) -> Result<(), ImageError> {
        let mask = if force {
            Conflicts::HARD
        } else {
            Conflicts::HARD | Conflicts::SOFT
        };
        if let Some(c) = self.check_conflict(st, id, mask, in_use) {
            let dangling = st.references_to(id).is_empty();
            if quiet && (!dangling || c.used) {
                return Ok(());
            }
            return Err(c.into_error());
        }
        let parent = st.images.get(id).and_then(|r| r.file.parent.clone());
        let refs = st.references_to(id);
        if !refs.is_empty() {
            for r in refs {
                st.refs.remove(&r);
                records.push(DeleteItem::Untagged(r.familiar()));
            }
            self.write_refs(st)?;
        }
        let removed = self.remove_image_locked(st, id)?;
        records.push(DeleteItem::Deleted(id.to_string()));
        records.extend(
            removed
                .into_iter()
                .map(|c| DeleteItem::Deleted(c.to_string())),
        );
        if let (true, Some(p)) = (prune, parent) {
            if st.images.contains_key(&p) {
                return self.delete_helper(st, &p, records, false, true, true, in_use);
            }
        }
        Ok(())
    }

    /// Drops an image record and releases its layers and blobs. Returns removed layers.
    fn remove_image_locked(&self, st: &mut State, id: &Digest) -> Result<Vec<ChainId>, ImageError> {
        let Some(rec) = st.images.remove(id) else {
            return Ok(Vec::new());
        };
        let path = records_dir(&self.data_root).join(format!("{}.json", id.hex()));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                st.images.insert(id.clone(), rec);
                return Err(fsutil::PathError::new("remove", path, e).into());
            }
        }
        let _ = fsutil::fsync_dir(&records_dir(&self.data_root));
        let mut removed = Vec::new();
        if let Some(top) = rec.file.layers.last() {
            let rw = self.layers.rw_parents()?;
            let live = st.live_layers(&rw, &self.layers);
            removed = self.layers.release_chain(&top.chain_id, &live)?;
        }
        let mut live_blobs = st.live_blobs();
        let alternates = {
            let dist = self.dist();
            live_blobs.extend(dist.blobs_of(&st.live_diff_ids()));
            dist.blobs_of(rec.file.layers.iter().map(|l| &l.diff_id))
        };
        let mut blobs: Vec<&Digest> = vec![id];
        blobs.extend(rec.file.layers.iter().map(|l| &l.blob));
        blobs.extend(rec.file.extra_blobs.iter());
        blobs.extend(alternates.iter());
        for b in blobs {
            if !live_blobs.contains(b) {
                self.delete_blob_unpinned(b)?;
            }
        }
        tracing::debug!(image = %id, layers = removed.len(), "image deleted");
        Ok(removed)
    }

    fn check_conflict(
        &self,
        st: &State,
        id: &Digest,
        mask: Conflicts,
        in_use: &dyn Fn(&Digest) -> Option<(String, bool)>,
    ) -> Option<Conflict> {
        if mask.contains(Conflicts::CHILD)
            && st
                .images
                .values()
                .any(|r| r.file.parent.as_ref() == Some(id))
        {
            return Some(Conflict {
                hard: true,
                used: false,
                id: id.clone(),
                message: "image has dependent child images".into(),
            });
        }
        let user = in_use(id);
        if mask.contains(Conflicts::RUNNING) {
            if let Some((cid, true)) = &user {
                return Some(Conflict {
                    hard: true,
                    used: true,
                    id: id.clone(),
                    message: format!("image is being used by running container {}", short(cid)),
                });
            }
        }
        if mask.contains(Conflicts::REFERENCE) && !st.references_to(id).is_empty() {
            return Some(Conflict {
                hard: false,
                used: false,
                id: id.clone(),
                message: "image is referenced in multiple repositories".into(),
            });
        }
        if mask.contains(Conflicts::STOPPED) {
            if let Some((cid, false)) = &user {
                return Some(Conflict {
                    hard: false,
                    used: true,
                    id: id.clone(),
                    message: format!("image is being used by stopped container {}", short(cid)),
                });
            }
        }
        None
    }
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Conflicts(u8);

impl Conflicts {
    const CHILD: Conflicts = Conflicts(1);
    const RUNNING: Conflicts = Conflicts(2);
    const REFERENCE: Conflicts = Conflicts(4);
    const STOPPED: Conflicts = Conflicts(8);
    const HARD: Conflicts = Conflicts(1 | 2);
    const SOFT: Conflicts = Conflicts(4 | 8);
    fn contains(self, o: Conflicts) -> bool {
        self.0 & o.0 == o.0
    }
}

impl std::ops::BitOr for Conflicts {
    type Output = Conflicts;
    fn bitor(self, o: Conflicts) -> Conflicts {
        Conflicts(self.0 | o.0)
    }
}

struct Conflict {
    hard: bool,
    used: bool,
    id: Digest,
    message: String,
}

impl Conflict {
    fn into_error(self) -> ImageError {
        ImageError::Conflict(format!(
            "conflict: unable to delete {} ({}) - {}",
            self.id.short(),
            if self.hard {
                "cannot be forced"
            } else {
                "must be forced"
            },
            self.message
        ))
    }
}

/// Docker's `isImageIDPrefix`.
fn is_image_id_prefix(id: &Digest, s: &str) -> bool {
    let full = id.to_string();
    full.starts_with(s) || id.hex().starts_with(s)
}

/// Docker's `isSingleReference`: all references in one repository with at most one tag.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut names = HashSet::new();
    for r in refs {
        if r.digest().is_some() {
            names.insert(r.name());
        } else if single.is_none() {
            names.insert(r.name());
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    names.len() == 1 && names.contains(&single.name())
}

fn resolve_in(st: &State, s: &str) -> Result<Digest, ImageError> {
    // A full ID, with or without the algorithm.
    let full = if is_full_hex_id(s) {
        Digest::from_sha256_hex(s).ok()
    } else if s.contains(':') && !s.contains('/') {
        Digest::parse(s).ok()
    } else {
        None
    };
    if let Some(d) = full {
        if st.images.contains_key(&d) {
            return Ok(d);
        }
        return Err(ImageError::NotFound(d.to_string()));
    }
    let r = Reference::parse_normalized(s)?;
    let r = if r.digest().is_some() {
        r
    } else {
        r.with_default_tag()
    };
    if let Some(id) = st.refs.get(&r) {
        if st.images.contains_key(id) {
            return Ok(id.clone());
        }
    }
    // A (short) ID prefix, with or without `sha256:`.
    let prefix = s.strip_prefix("sha256:").unwrap_or(s);
    if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut found = st.images.keys().filter(|d| d.hex().starts_with(prefix));
        if let (Some(d), None) = (found.next(), found.next()) {
            return Ok(d.clone());
        }
    }
    Err(ImageError::NotFound(r.familiar()))
}

/// Whether the record at `path` names one of `lost` (layers removed by `Pending::recover`).
fn uses_lost_layer(path: &Path, lost: &HashSet<ChainId>) -> bool {
    if lost.is_empty() {
        return false;
    }
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    let Ok(file) = serde_json::from_slice::<RecordFile>(&bytes) else {
        return false;
    };
    file.layers.iter().any(|l| lost.contains(&l.chain_id))
}

fn load_record(path: &Path, cas: &ContentStore, layers: &LayerStore) -> Result<Record, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hex = name
        .strip_suffix(".json")
        .ok_or_else(|| "not a record file".to_string())?;
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    let file: RecordFile = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if file.id.hex() != hex {
        return Err(format!("record names image {}", file.id));
    }
    let cfg_bytes = cas
        .read(&file.id)
        .map_err(|e| format!("config blob: {e}"))?;
    if Digest::sha256_of(&cfg_bytes) != file.id {
        return Err("config blob does not match the image ID".into());
    }
    let config = ImageConfig::parse(&cfg_bytes).map_err(|e| e.to_string())?;
    for l in &file.layers {
        if !layers.exists(&l.chain_id) {
            return Err(format!("layer {} is missing", l.chain_id));
        }
    }
    Ok(Record {
        file,
        config: Arc::new(config),
    })
}

pub mod check;

#[cfg(test)]
mod tests;
