//! `docker load`, `docker save` and `docker import`.
//!
//! * [`load`] reads a (possibly gzip/zstd-compressed) image archive in Docker's legacy layout
//!   (`manifest.json`, `<id>/layer.tar`, `<config>.json`, `repositories`), the OCI image
//!   layout (`oci-layout`, `index.json`, `blobs/sha256/…`), or the combined form Docker 25+
//!   writes. The stream is spooled into `<data-root>/tmp/load-<random>/` (entry names
//!   validated; links are resolved inside the archive namespace and never created on disk),
//!   then every layer blob is moved (renamed, not copied) into the content store, applied,
//!   and checked against the config's diff IDs; the config is checked against its digest.
//! * [`save`] streams the legacy layout (what Docker 20.10 writes and loads); layers are
//!   decompressed on the fly and their bytes verified against the diff IDs.
//! * [`import`] turns a root filesystem tar into a one-layer image with `--change`s applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::changes;
use crate::compress::{self, Compression};
use crate::config::{self, ContainerConfig, History, ImageConfig, RootFs};
use crate::digest::{Algorithm, Digest, DigestReader};
use crate::error::ImageError;
use crate::fsutil;
use crate::layer::{AppliedLayer, LayerError, LayerPin};
use crate::reference::Reference;
use crate::store::{
    CreateOptions, ImageLayer, ImageStore, MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_DOCKER_LAYER_TAR, MEDIA_TYPE_OCI_LAYER_ZSTD,
};
use crate::tarapply::clean_components;

/// Progress events of [`load`], in the order Docker emits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadProgress {
    /// `{"status":"Loading layer","progressDetail":{"current","total"},"id":"<12 hex>"}`.
    LoadingLayer {
        id: String,
        current: u64,
        total: u64,
    },
    /// A tag moved from another image to the loaded one (Docker: "The image X already
    /// exists, renaming the old one with ID Y to empty string").
    TagMoved { reference: String, old_id: Digest },
    /// `Loaded image: busybox:latest`.
    Loaded { reference: String },
    /// `Loaded image ID: sha256:…` (untagged images).
    LoadedId { id: Digest },
}

impl LoadProgress {
    /// The line Docker prints for this event (for `stream` messages).
    pub fn message(&self) -> String {
        match self {
            LoadProgress::LoadingLayer { id, current, total } => {
                format!("{id}: Loading layer {current}/{total}")
            }
            LoadProgress::TagMoved { reference, old_id } => format!(
                "The image {reference} already exists, renaming the old one with ID {old_id} to empty string"
            ),
            LoadProgress::Loaded { reference } => format!("Loaded image: {reference}"),
            LoadProgress::LoadedId { id } => format!("Loaded image ID: {id}"),
        }
    }
}

/// An image produced by [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    pub tags: Vec<Reference>,
}

fn invalid(msg: impl Into<String>) -> ImageError {
    ImageError::InvalidInput(msg.into())
}

/// The spooled outer archive.
struct Spool {
    root: PathBuf,
    files: BTreeSet<String>,
    /// Symlinks and hard links: archive path → archive path of the target.
    links: BTreeMap<String, String>,
}

impl Spool {
    /// The on-disk path of an archive member, following in-archive links.
    fn path(&self, name: &str) -> Option<PathBuf> {
        let mut cur = normalize(name)?;
        for _ in 0..16 {
            if self.files.contains(&cur) {
                return Some(self.root.join(&cur));
            }
            cur = self.links.get(&cur)?.clone();
        }
        None
    }

    fn read_small(&self, name: &str, what: &str) -> Result<Vec<u8>, ImageError> {
        let p = self
            .path(name)
            .ok_or_else(|| invalid(format!("invalid image archive: {what} {name:?} is missing")))?;
        let len = fs::metadata(&p).map_err(fsutil::ctx("stat", &p))?.len();
        if len > 64 * 1024 * 1024 {
            return Err(invalid(format!(
                "invalid image archive: {what} {name:?} is too large"
            )));
        }
        Ok(fs::read(&p).map_err(fsutil::ctx("read", &p))?)
    }
}

/// Normalises an archive path (no `..`, not absolute) to `a/b/c`.
fn normalize(name: &str) -> Option<String> {
    let comps = clean_components(name.as_bytes()).ok()?;
    let parts: Option<Vec<&str>> = comps.iter().map(|c| std::str::from_utf8(c).ok()).collect();
    Some(parts?.join("/"))
}

/// Resolves a symlink target relative to the link's directory, inside the archive.
fn resolve_link(link_name: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = link_name.split('/').collect();
        p.pop();
        p
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn spool_archive(r: &mut dyn Read, root: &Path) -> Result<Spool, ImageError> {
    let mut spool = Spool {
        root: root.to_path_buf(),
        files: BTreeSet::new(),
        links: BTreeMap::new(),
    };
    let mut archive = tar::Archive::new(r);
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("invalid image archive: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| invalid(format!("invalid or truncated image archive: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let name = normalize(std::str::from_utf8(&raw).unwrap_or("\u{0}")).ok_or_else(|| {
            invalid(format!(
                "invalid image archive: refusing entry {shown:?} (absolute, '..' or not UTF-8)"
            ))
        })?;
        if name.is_empty() {
            continue;
        }
        tracing::debug!(entry = %name, "spool");
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                let p = root.join(&name);
                fs::create_dir_all(&p).map_err(fsutil::ctx("create", &p))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let p = root.join(&name);
                if let Some(parent) = p.parent() {
                    fs::create_dir_all(parent).map_err(fsutil::ctx("create", parent))?;
                }
                if spool.files.contains(&name) || spool.links.contains_key(&name) {
                    let _ = fs::remove_file(&p);
                    spool.links.remove(&name);
                }
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
                    .map_err(fsutil::ctx("create", &p))?;
                let want = entry.size();
                let n = copy_in(&mut entry, &mut f, &p)?;
                if n != want {
                    return Err(invalid(format!(
                        "invalid or truncated image archive: entry {name:?} has {n} of {want} bytes"
                    )));
                }
                spool.files.insert(name);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                    resolve_link(&name, &target)
                } else {
                    normalize(&target)
                };
                let resolved = resolved.ok_or_else(|| {
                    invalid(format!(
                        "invalid image archive: link {name:?} points outside the archive"
                    ))
                })?;
                spool.links.insert(name, resolved);
            }
            tar::EntryType::XGlobalHeader => {}
            other => {
                tracing::debug!(entry = %name, kind = ?other, "ignoring archive entry");
            }
        }
    }
    Ok(spool)
}

fn copy_in(r: &mut dyn Read, f: &mut File, p: &Path) -> Result<u64, ImageError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(invalid(format!("invalid or truncated image archive: {e}"))),
        };
        f.write_all(&buf[..k]).map_err(fsutil::ctx("write", p))?;
        n += k as u64;
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: Digest,
    #[serde(default)]
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<Value>,
}

const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What one image to import looks like, before anything is written.
struct Plan {
    config_bytes: Vec<u8>,
    id: Digest,
    config: ImageConfig,
    /// (archive path, expected blob digest if known, media type if known)
    layers: Vec<(String, Option<Digest>, Option<String>)>,
    tags: Vec<Reference>,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

fn plan_docker(spool: &Spool) -> Result<Vec<Plan>, ImageError> {
    let bytes = spool.read_small("manifest.json", "manifest")?;
    let items: Vec<ManifestItem> = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("invalid image archive: manifest.json: {e}")))?;
    let mut plans = Vec::new();
    for item in items {
        let config_bytes = spool.read_small(&item.config, "config")?;
        let id = Digest::sha256_of(&config_bytes);
        // `<hex>.json` (legacy) or `blobs/sha256/<hex>` (Docker 25+) names its digest.
        let named = Path::new(&item.config)
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".json").to_string())
            .unwrap_or_default();
        if crate::reference::is_full_hex_id(&named) && named != id.hex() {
            return Err(invalid(format!(
                "invalid image archive: config {} has digest {id}, not sha256:{named}",
                item.config
            )));
        }
        let config = ImageConfig::parse(&config_bytes)?;
        let mut tags = Vec::new();
        for t in item.repo_tags.unwrap_or_default() {
            let r = Reference::parse_normalized(&t)
                .map_err(|e| invalid(format!("invalid tag {t:?} in manifest.json: {e}")))?;
            tags.push(r.with_default_tag());
        }
        let layers = item
            .layers
            .iter()
            .map(|l| {
                let d = l
                    .strip_prefix("blobs/sha256/")
                    .and_then(|h| Digest::from_sha256_hex(h).ok());
                (l.clone(), d, None)
            })
            .collect();
        plans.push(Plan {
            config_bytes,
            id,
            config,
            layers,
            tags,
        });
    }
    Ok(plans)
}

fn read_blob_checked(spool: &Spool, d: &Descriptor) -> Result<Vec<u8>, ImageError> {
    let bytes = spool.read_small(&blob_path(&d.digest), "blob")?;
    let actual = Digest::sha256_of(&bytes);
    if d.digest.algorithm() == Algorithm::Sha256 && actual != d.digest {
        return Err(invalid(format!(
            "invalid image archive: blob {} has digest {actual}",
            d.digest
        )));
    }
    Ok(bytes)
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Collects the image manifests of an OCI index (recursing into nested indexes, choosing
/// the host platform), with the reference annotations of the outermost descriptor.
fn collect_manifests(
    spool: &Spool,
    index: &[Descriptor],
    out: &mut Vec<(Descriptor, Option<BTreeMap<String, String>>)>,
    inherited: Option<&BTreeMap<String, String>>,
    depth: usize,
) -> Result<(), ImageError> {
    if depth > 4 {
        return Err(invalid("invalid image archive: indexes nested too deeply"));
    }
    for d in index {
        let ann = d.annotations.as_ref().or(inherited);
        if d.media_type == MT_OCI_INDEX || d.media_type == MT_DOCKER_LIST {
            let bytes = read_blob_checked(spool, d)?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| invalid(format!("invalid image index {}: {e}", d.digest)))?;
            let list: Vec<Descriptor> =
                serde_json::from_value(v.get("manifests").cloned().unwrap_or(Value::Array(vec![])))
                    .map_err(|e| invalid(format!("invalid image index {}: {e}", d.digest)))?;
            let pick: Vec<Descriptor> = {
                let matching: Vec<Descriptor> = list
                    .iter()
                    .filter(|m| match &m.platform {
                        Some(p) => {
                            p.get("os").and_then(Value::as_str) == Some("linux")
                                && p.get("architecture").and_then(Value::as_str)
                                    == Some(host_arch())
                        }
                        None => true,
                    })
                    .cloned()
                    .collect();
                if matching.is_empty() {
                    list.into_iter().take(1).collect()
                } else {
                    matching.into_iter().take(1).collect()
                }
            };
            collect_manifests(spool, &pick, out, ann, depth + 1)?;
        } else {
            out.push((d.clone(), ann.cloned()));
        }
    }
    Ok(())
}

fn plan_oci(spool: &Spool) -> Result<Vec<Plan>, ImageError> {
    let bytes = spool.read_small("index.json", "index")?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("invalid image archive: index.json: {e}")))?;
    let index: Vec<Descriptor> =
        serde_json::from_value(v.get("manifests").cloned().unwrap_or(Value::Array(vec![])))
            .map_err(|e| invalid(format!("invalid image archive: index.json: {e}")))?;
    let mut manifests = Vec::new();
    collect_manifests(spool, &index, &mut manifests, None, 0)?;
    let mut plans = Vec::new();
    for (desc, ann) in manifests {
        let bytes = read_blob_checked(spool, &desc)?;
        let m: Value = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("invalid image manifest {}: {e}", desc.digest)))?;
        // CVE-2021-41190: the content must be what the descriptor claims.
        if m.get("manifests").is_some() || m.get("config").is_none() {
            return Err(invalid(format!(
                "invalid image archive: blob {} is not an image manifest",
                desc.digest
            )));
        }
        let config: Descriptor = serde_json::from_value(m["config"].clone())
            .map_err(|e| invalid(format!("invalid image manifest {}: {e}", desc.digest)))?;
        let layer_descs: Vec<Descriptor> =
            serde_json::from_value(m.get("layers").cloned().unwrap_or(Value::Array(vec![])))
                .map_err(|e| invalid(format!("invalid image manifest {}: {e}", desc.digest)))?;
        let config_bytes = read_blob_checked(spool, &config)?;
        let id = Digest::sha256_of(&config_bytes);
        let parsed = ImageConfig::parse(&config_bytes)?;
        let mut tags = Vec::new();
        if let Some(ann) = ann {
            let name = ann
                .get("io.containerd.image.name")
                .cloned()
                .or_else(|| ann.get("org.opencontainers.image.ref.name").cloned());
            if let Some(n) = name {
                match Reference::parse_normalized(&n) {
                    // A bare tag ("latest") is not a name: nothing to tag with.
                    Ok(r) if n.contains('/') || n.contains(':') || r.tag().is_some() => {
                        if r.digest().is_none() {
                            tags.push(r.with_default_tag())
                        }
                    }
                    _ => {
                        tracing::debug!(annotation = %n, "OCI ref name is not a full reference; loading untagged")
                    }
                }
            }
        }
        let layers = layer_descs
            .into_iter()
            .map(|l| (blob_path(&l.digest), Some(l.digest), Some(l.media_type)))
            .collect();
        plans.push(Plan {
            config_bytes,
            id,
            config: parsed,
            layers,
            tags,
        });
    }
    Ok(plans)
}

/// A reader that reports progress through a callback every 512 KiB and at the end.
struct ProgressReader<'a, R> {
    inner: R,
    id: String,
    current: u64,
    total: u64,
    last: u64,
    progress: &'a mut dyn FnMut(LoadProgress),
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        if n == 0 || self.current - self.last >= 512 * 1024 {
            self.last = self.current;
            (self.progress)(LoadProgress::LoadingLayer {
                id: self.id.clone(),
                current: if self.total > 0 {
                    self.current.min(self.total)
                } else {
                    self.current
                },
                total: self.total,
            });
        }
        Ok(n)
    }
}

/// `docker load`. See the module docs. On error the spool directory is removed and no image
/// record is added for the failing image; layers and blobs it had stored are collected.
pub fn load(
    store: &ImageStore,
    reader: &mut dyn Read,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Vec<LoadedImage>, ImageError> {
    let result = load_inner(store, reader, progress);
    if result.is_err() {
        // Drop what the failed load left unreferenced (its pins are gone by now).
        if let Err(e) = store.gc() {
            tracing::warn!(error = %e, "cleanup after a failed load");
        }
    }
    result
}

fn load_inner(
    store: &ImageStore,
    reader: &mut dyn Read,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Vec<LoadedImage>, ImageError> {
    let spool_dir = store.tmp_dir("load-")?;
    let (_, mut r) =
        compress::decompress(reader).map_err(|e| invalid(format!("invalid image archive: {e}")))?;
    let spool = spool_archive(&mut r, spool_dir.path())?;
    // drain what follows the end-of-archive marker
    let _ = io::copy(&mut r, &mut io::sink());
    let plans = if spool.path("manifest.json").is_some() {
        plan_docker(&spool)?
    } else if spool.path("index.json").is_some() {
        plan_oci(&spool)?
    } else {
        return Err(invalid(format!(
            "open {}: no such file or directory (the archive has neither manifest.json nor index.json: not an image archive)",
            spool_dir.path().join("repositories").display()
        )));
    };
    // Validate every plan before importing anything.
    for p in &plans {
        if p.config.rootfs.diff_ids.len() != p.layers.len() {
            return Err(invalid(format!(
                "invalid image archive: image {} lists {} diff IDs but {} layers",
                p.id,
                p.config.rootfs.diff_ids.len(),
                p.layers.len()
            )));
        }
        for (path, _, _) in &p.layers {
            if spool.path(path).is_none() {
                return Err(invalid(format!(
                    "invalid image archive: layer {path:?} is missing"
                )));
            }
        }
    }
    let mut loaded = Vec::new();
    // blobs already moved out of the spool, by archive path
    let mut moved: HashMap<PathBuf, (Digest, u64, LayerPin)> = HashMap::new();
    for p in plans {
        let mut layers: Vec<ImageLayer> = Vec::new();
        let mut pins: Vec<AppliedLayer> = Vec::new();
        for (i, (path, expected, media_type)) in p.layers.iter().enumerate() {
            let diff_id = &p.config.rootfs.diff_ids[i];
            let parent = layers.last().map(|l| l.chain_id.clone());
            let file = spool
                .path(path)
                .ok_or_else(|| invalid(format!("layer {path:?} is missing")))?;
            // 1. the blob, into the content store (a rename from the spool)
            let (blob, size) = match moved.get(&file) {
                Some((d, s, _)) => (d.clone(), *s),
                None => {
                    let pin_expected = expected.as_ref().map(|d| store.pin_blob(d));
                    let info = store.content().put_file(&file, expected.as_ref()).map_err(|e| {
                        match e {
                            crate::cas::CasError::DigestMismatch { expected, actual } => invalid(format!(
                                "invalid image archive: layer {path}: content digest mismatch: expected {expected}, got {actual}"
                            )),
                            e => e.into(),
                        }
                    })?;
                    let pin = store.pin_blob(&info.digest);
                    drop(pin_expected);
                    moved.insert(file.clone(), (info.digest.clone(), info.size, pin));
                    (info.digest, info.size)
                }
            };
            // 2. the layer snapshot, verified against the diff ID
            let head = {
                let mut f = store.content().open_blob(&blob)?;
                let mut h = [0u8; 6];
                let n = f.read(&mut h).unwrap_or(0);
                Compression::detect(&h[..n])
            };
            let media_type = media_type.clone().unwrap_or_else(|| {
                match head {
                    Compression::Gzip => MEDIA_TYPE_DOCKER_LAYER_GZIP,
                    Compression::Zstd => MEDIA_TYPE_OCI_LAYER_ZSTD,
                    _ => MEDIA_TYPE_DOCKER_LAYER_TAR,
                }
                .to_string()
            });
            let chain = crate::layer::chain_id(parent.as_ref(), diff_id);
            let applied = if store.layers().exists(&chain) {
                store.apply_layer_blob(parent.as_ref(), &blob, Some(diff_id))?
            } else {
                let f = store.content().open_blob(&blob)?;
                let (_, dec) =
                    compress::decompress(f).map_err(|e| invalid(format!("layer {path}: {e}")))?;
                let total = if head == Compression::None { size } else { 0 };
                let mut pr = ProgressReader {
                    inner: dec,
                    id: diff_id.short().to_string(),
                    current: 0,
                    total,
                    last: 0,
                    progress: &mut *progress,
                };
                match store.layers().apply(parent.as_ref(), &mut pr, Some(diff_id)) {
                    Ok(a) => a,
                    Err(LayerError::DiffIdMismatch { expected, actual }) => {
                        return Err(invalid(format!(
                            "invalid image archive: layer {path} does not match the image config: diff ID {actual}, expected {expected}"
                        )))
                    }
                    Err(e) if e.is_input_error() => {
                        return Err(invalid(format!("invalid image archive: layer {path}: {e}")))
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            layers.push(ImageLayer::from_applied(&applied, blob, &media_type, size));
            pins.push(applied);
        }
        let img = store.create_image(&p.config_bytes, &layers, CreateOptions::default())?;
        drop(pins);
        for t in &p.tags {
            if let Ok(old) = store.resolve_id(&t.to_string()) {
                if old != img.id {
                    progress(LoadProgress::TagMoved {
                        reference: t.familiar(),
                        old_id: old,
                    });
                }
            }
            store.tag_id(&img.id, t)?;
            progress(LoadProgress::Loaded {
                reference: t.familiar(),
            });
        }
        if p.tags.is_empty() {
            progress(LoadProgress::LoadedId { id: img.id.clone() });
        }
        loaded.push(LoadedImage {
            id: img.id.clone(),
            tags: p.tags,
        });
    }
    Ok(loaded)
}

// ---------------------------------------------------------------------------------------
// save

/// Writes tar entries with fixed metadata.
fn tar_file<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    mtime: u64,
    data: &mut dyn Read,
) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(mtime);
    b.append_data(&mut h, name, data)
}

fn tar_dir<W: Write>(b: &mut tar::Builder<W>, name: &str, mtime: u64) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(mtime);
    b.append_data(&mut h, name, io::empty())
}

/// A reader that verifies, at its end, that exactly `size` bytes hashing to `want` passed.
struct VerifyingReader<R> {
    inner: Option<DigestReader<R>>,
    want: Digest,
    size: u64,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(r) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = r.read(buf)?;
        if n == 0 {
            if let Some(r) = self.inner.take() {
                let count = r.count();
                let (d, _, _) = r.finish();
                if d != self.want || count != self.size {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "stored layer is corrupt: {count} bytes hashing to {d}, expected {} bytes hashing to {}",
                            self.size, self.want
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// `docker save`: writes the images `names` resolve to as one tar in Docker's legacy layout.
/// A name without tag saves every tag of that repository, as Docker does.
pub fn save(store: &ImageStore, names: &[String], w: &mut dyn Write) -> Result<(), ImageError> {
    // image id → tags to record
    let mut images: Vec<(Digest, Vec<Reference>)> = Vec::new();
    let mut add = |id: Digest, tag: Option<Reference>| {
        if let Some(e) = images.iter_mut().find(|(i, _)| *i == id) {
            if let Some(t) = tag {
                if !e.1.contains(&t) {
                    e.1.push(t);
                }
            }
        } else {
            images.push((id, tag.into_iter().collect()));
        }
    };
    for name in names {
        let img = store.resolve(name)?;
        let looks_like_id = img.id.hex().starts_with(name.trim_start_matches("sha256:"));
        match Reference::parse_normalized(name) {
            Ok(r) if !looks_like_id && r.tag().is_none() && r.digest().is_none() => {
                // name only: every tag of the repository
                let repo = r.name();
                let mut any = false;
                for i in store.list() {
                    for t in &i.repo_tags {
                        if t.name() == repo {
                            add(i.id.clone(), Some(t.clone()));
                            any = true;
                        }
                    }
                }
                if !any {
                    add(img.id.clone(), None);
                }
            }
            Ok(r) if !looks_like_id && r.tag().is_some() => add(img.id.clone(), Some(r)),
            _ => add(img.id.clone(), None),
        }
    }
    let mut b = tar::Builder::new(w);
    let mut written_layers: BTreeSet<String> = BTreeSet::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let io_err = |e: io::Error| ImageError::Internal(format!("writing the image archive: {e}"));
    for (id, tags) in &images {
        let img = store
            .get(id)
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        let config_bytes = store.config_bytes(id)?;
        let mtime = img.created_unix().max(0) as u64;
        let mut parent_v1: Option<String> = None;
        let mut layer_paths = Vec::new();
        for (i, l) in img.layers.iter().enumerate() {
            let v1 = Digest::sha256_of(
                format!("{}\n{}", parent_v1.as_deref().unwrap_or(""), l.chain_id).as_bytes(),
            )
            .hex()
            .to_string();
            let path = format!("{v1}/layer.tar");
            if written_layers.insert(v1.clone()) {
                let meta = store.layers().meta(&l.chain_id)?;
                tar_dir(&mut b, &format!("{v1}/"), mtime).map_err(io_err)?;
                tar_file(&mut b, &format!("{v1}/VERSION"), 3, mtime, &mut &b"1.0"[..])
                    .map_err(io_err)?;
                let v1_json = v1_json(
                    &v1,
                    parent_v1.as_deref(),
                    &img.config,
                    i + 1 == img.layers.len(),
                );
                tar_file(
                    &mut b,
                    &format!("{v1}/json"),
                    v1_json.len() as u64,
                    mtime,
                    &mut &v1_json[..],
                )
                .map_err(io_err)?;
                let blob = store.content().open_blob(&l.blob)?;
                let (_, dec) = compress::decompress(blob)
                    .map_err(|e| ImageError::Internal(format!("layer {}: {e}", l.blob)))?;
                let mut verified = VerifyingReader {
                    inner: Some(DigestReader::new(dec, Algorithm::Sha256)),
                    want: l.diff_id.clone(),
                    size: meta.tar_size,
                };
                tar_file(
                    &mut b,
                    &path,
                    meta.tar_size,
                    mtime,
                    &mut (&mut verified).take(meta.tar_size),
                )
                .map_err(io_err)?;
                // make sure the end-of-stream check ran even if tar stopped at `size`
                let mut probe = [0u8; 1];
                if verified.read(&mut probe).map_err(io_err)? != 0 {
                    return Err(ImageError::Internal(format!(
                        "stored layer {} is longer than recorded",
                        l.diff_id
                    )));
                }
                tracing::debug!(layer = %l.diff_id, "layer saved");
            }
            layer_paths.push(path);
            parent_v1 = Some(v1);
        }
        let config_name = format!("{}.json", id.hex());
        tar_file(
            &mut b,
            &config_name,
            config_bytes.len() as u64,
            mtime,
            &mut &config_bytes[..],
        )
        .map_err(io_err)?;
        let repo_tags: Vec<String> = tags.iter().map(|t| t.familiar()).collect();
        for t in tags {
            if let (Some(tag), Some(top)) = (t.tag(), parent_v1.as_ref()) {
                repositories
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), top.clone());
            }
        }
        manifest.push(serde_json::json!({
            "Config": config_name,
            "RepoTags": if repo_tags.is_empty() { Value::Null } else { serde_json::json!(repo_tags) },
            "Layers": layer_paths,
        }));
    }
    let manifest = serde_json::to_vec(&manifest)
        .map_err(|e| ImageError::Internal(format!("serialising manifest.json: {e}")))?;
    tar_file(
        &mut b,
        "manifest.json",
        manifest.len() as u64,
        0,
        &mut &manifest[..],
    )
    .map_err(io_err)?;
    if !repositories.is_empty() {
        let repos = serde_json::to_vec(&repositories)
            .map_err(|e| ImageError::Internal(format!("serialising repositories: {e}")))?;
        tar_file(
            &mut b,
            "repositories",
            repos.len() as u64,
            0,
            &mut &repos[..],
        )
        .map_err(io_err)?;
    }
    b.into_inner().map_err(io_err)?.flush().map_err(io_err)?;
    Ok(())
}

/// The legacy per-layer `json` (only `id`, `parent`, `created` matter to loaders; the top
/// layer carries the image's container config as Docker writes it).
fn v1_json(id: &str, parent: Option<&str>, cfg: &ImageConfig, top: bool) -> Vec<u8> {
    let mut v = serde_json::json!({
        "id": id,
        "created": cfg.created.clone().unwrap_or_else(|| "1970-01-01T00:00:00Z".into()),
        "container_config": ContainerConfig::default(),
        "os": if cfg.os.is_empty() { "linux" } else { cfg.os.as_str() },
    });
    if let Some(p) = parent {
        v["parent"] = Value::String(p.to_string());
    }
    if top {
        if let Some(c) = &cfg.config {
            v["config"] = serde_json::to_value(c).unwrap_or(Value::Null);
        }
        if !cfg.architecture.is_empty() {
            v["architecture"] = Value::String(cfg.architecture.clone());
        }
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// import

/// Copies everything read into a file (to keep the layer blob while it is applied).
struct TeeReader<'a, R> {
    inner: R,
    out: &'a mut File,
    err: Option<io::Error>,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            self.err = Some(io::Error::new(e.kind(), e.to_string()));
            return Err(e);
        }
        Ok(n)
    }
}

/// `docker import`: a root filesystem tar (maybe compressed) becomes a one-layer image with
/// `changes` applied to its config; `message` is the history comment (default `Imported from
/// -`). Returns the new image ID.
pub fn import(
    store: &ImageStore,
    reader: &mut dyn Read,
    changes: &[String],
    message: Option<&str>,
    tag: Option<&Reference>,
) -> Result<Digest, ImageError> {
    // Refuse bad changes before reading the (possibly huge) stream.
    let parsed = changes::parse(changes)?;
    let mut cfg = ContainerConfig::default();
    changes::apply(&mut cfg, &parsed)?;
    let spool = store.tmp_dir("import-")?;
    let blob_path = spool.path().join("layer.tar");
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&blob_path)
        .map_err(fsutil::ctx("create", &blob_path))?;
    let (_, dec) = compress::decompress(reader)
        .map_err(|e| invalid(format!("invalid import archive: {e}")))?;
    let mut tee = TeeReader {
        inner: dec,
        out: &mut out,
        err: None,
    };
    let applied = match store.layers().apply(None, &mut tee, None) {
        Ok(a) => a,
        Err(e) => {
            if let Some(we) = tee.err.take() {
                return Err(fsutil::PathError::new("write", &blob_path, we).into());
            }
            return Err(match e {
                e if e.is_input_error() => invalid(format!("invalid import archive: {e}")),
                e => e.into(),
            });
        }
    };
    out.sync_all().map_err(fsutil::ctx("fsync", &blob_path))?;
    drop(out);
    let diff_id = applied.meta.diff_id.clone();
    let _blob_pin = store.pin_blob(&diff_id);
    let info = store.content().put_file(&blob_path, Some(&diff_id))?;
    let created = config::now_rfc3339();
    let comment = message
        .filter(|m| !m.is_empty())
        .unwrap_or("Imported from -")
        .to_string();
    let image_config = ImageConfig {
        architecture: host_arch().to_string(),
        os: "linux".into(),
        created: Some(created.clone()),
        comment: comment.clone(),
        config: Some(cfg),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(created),
            comment,
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = image_config.to_bytes()?;
    let layer = ImageLayer::from_applied(
        &applied,
        info.digest,
        MEDIA_TYPE_DOCKER_LAYER_TAR,
        info.size,
    );
    let img = store.create_image(&bytes, &[layer], CreateOptions::default())?;
    drop(applied);
    if let Some(t) = tag {
        store.tag_id(&img.id, t)?;
    }
    Ok(img.id.clone())
}

#[cfg(test)]
mod tests;
