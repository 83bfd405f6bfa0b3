//! `berth system check` for the image side of a data root: a read-only walk that reports
//! what a crash or a foreign hand left behind, and the repair, which is what
//! [`ImageStore::open`] does at daemon start plus the removal of records that cannot be used.
//!
//! The walk never creates or removes anything; it works on a store that is not open (the
//! daemon stopped), because an open store's operations in progress hold layers and blobs
//! that no record names yet.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{incomplete_dir, records_dir, RecordFile, RepositoriesFile};
use crate::cas::ContentStore;
use crate::digest::Digest;
use crate::distmeta::DistIndex;
use crate::error::ImageError;
use crate::fsutil;
use crate::layer::{ChainId, LayerStore};
use crate::reference::is_full_hex_id;
use crate::ImageStore;

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// A file or directory an interrupted write or operation left (spool files, temp files of
    /// atomic writes, layers half applied or half deleted, pulls not tagged yet).
    HalfWritten,
    /// A layer no image and no container uses.
    OrphanLayer,
    /// A blob no image uses.
    OrphanBlob,
    /// An image record naming a layer or config blob that is not there.
    MissingLayer,
    /// An image record that cannot be read.
    UnreadableRecord,
    /// The tag index cannot be read.
    UnreadableIndex,
}

impl Problem {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::HalfWritten => "half-written",
            Problem::OrphanLayer => "orphaned layer",
            Problem::OrphanBlob => "orphaned blob",
            Problem::MissingLayer => "missing layer",
            Problem::UnreadableRecord => "unreadable image record",
            Problem::UnreadableIndex => "unreadable tag index",
        }
    }
}

/// One finding: the problem, where, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub problem: Problem,
    pub path: PathBuf,
    pub detail: String,
}

fn finding(problem: Problem, path: PathBuf, detail: impl Into<String>) -> Finding {
    Finding {
        problem,
        path,
        detail: detail.into(),
    }
}

fn list(dir: &Path) -> Result<Vec<fs::DirEntry>, ImageError> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd
            .collect::<Result<Vec<_>, _>>()
            .map_err(fsutil::ctx("list", dir))?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(fsutil::PathError::new("list", dir.to_path_buf(), e).into()),
    }
}

fn is_atomic_leftover(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Walks the image side of `data_root` without changing it.
pub fn scan(data_root: &Path) -> Result<Vec<Finding>, ImageError> {
    let mut out = Vec::new();
    let cas = ContentStore::at(data_root);
    let layers = LayerStore::at(data_root);

    // Spool space, interrupted ingests, interrupted atomic writes.
    for dir in [
        data_root.join("tmp"),
        data_root.join("content").join("ingest"),
    ] {
        for ent in list(&dir)? {
            out.push(finding(
                Problem::HalfWritten,
                ent.path(),
                "left by an interrupted load, import, pull or build",
            ));
        }
    }
    for dir in [data_root.join("image"), records_dir(data_root)] {
        for ent in list(&dir)? {
            if is_atomic_leftover(&ent.file_name().to_string_lossy()) {
                out.push(finding(
                    Problem::HalfWritten,
                    ent.path(),
                    "an interrupted write of image metadata",
                ));
            }
        }
    }
    for ent in list(&incomplete_dir(data_root))? {
        out.push(finding(
            Problem::HalfWritten,
            ent.path(),
            "a pull or load interrupted before its image was tagged",
        ));
    }

    // The records: what they need and what they keep.
    let mut live_layers: HashSet<ChainId> = HashSet::new();
    let mut live_blobs: HashSet<Digest> = HashSet::new();
    let mut live_diffs = HashSet::new();
    let mut damaged = false;
    for ent in list(&records_dir(data_root))? {
        let name = ent.file_name().to_string_lossy().into_owned();
        if is_atomic_leftover(&name) {
            continue;
        }
        let path = ent.path();
        let file: RecordFile = match fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(f) => f,
            Err(e) => {
                damaged = true;
                out.push(finding(Problem::UnreadableRecord, path, e));
                continue;
            }
        };
        let mut missing = Vec::new();
        if !cas.exists(&file.id) {
            missing.push(format!("config blob {}", file.id));
        }
        for l in &file.layers {
            if !layers.exists(&l.chain_id) {
                missing.push(format!("layer {}", l.chain_id));
            }
        }
        if !missing.is_empty() {
            out.push(finding(
                Problem::MissingLayer,
                path,
                format!("image {} needs {}", file.id, missing.join(", ")),
            ));
        }
        live_blobs.insert(file.id.clone());
        for l in &file.layers {
            live_layers.insert(l.chain_id.clone());
            live_blobs.insert(l.blob.clone());
            live_diffs.insert(l.diff_id.clone());
        }
        live_blobs.extend(file.extra_blobs.iter().cloned());
    }
    let repos = data_root.join("image").join("repositories.json");
    if let Ok(bytes) = fs::read(&repos) {
        if let Err(e) = serde_json::from_slice::<RepositoriesFile>(&bytes) {
            damaged = true;
            out.push(finding(Problem::UnreadableIndex, repos, e.to_string()));
        }
    }
    // Layers the container layers sit on (and everything below them).
    for top in layers.rw_parents().map_err(ImageError::from)? {
        match layers.chain(&top) {
            Ok(chain) => live_layers.extend(chain.into_iter().map(|m| m.chain_id)),
            Err(_) => {
                live_layers.insert(top);
            }
        }
    }
    live_blobs.extend(DistIndex::load(&data_root.join("image")).blobs_of(&live_diffs));

    // The layer directory: interrupted operations, directories that are no layer, orphans.
    let overlay = data_root.join("overlay2");
    for ent in list(&overlay)? {
        let name = ent.file_name().to_string_lossy().into_owned();
        let path = ent.path();
        if name.starts_with(".tmp-") || name.starts_with(".trash-") {
            out.push(finding(
                Problem::HalfWritten,
                path,
                "a layer apply or deletion that was interrupted",
            ));
        } else if is_full_hex_id(&name)
            && !path.join("meta.json").exists()
            && !path.join("rw.json").exists()
        {
            out.push(finding(
                Problem::HalfWritten,
                path,
                "a directory that is neither a layer nor a container layer",
            ));
        }
    }
    if !damaged {
        for c in layers.list().map_err(ImageError::from)? {
            if !live_layers.contains(&c) {
                out.push(finding(
                    Problem::OrphanLayer,
                    overlay.join(c.hex()),
                    format!("layer {c} is used by no image and no container"),
                ));
            }
        }
        for d in cas.list()? {
            if !live_blobs.contains(&d) {
                out.push(finding(
                    Problem::OrphanBlob,
                    cas.path(&d),
                    format!("blob {d} is used by no image"),
                ));
            }
        }
    }
    Ok(out)
}

/// The top layer of image `id` (`sha256:…`) according to its record, if it can be read.
pub fn image_top_layer(data_root: &Path, id: &str) -> Option<ChainId> {
    let d = Digest::parse(id).ok()?;
    let path = records_dir(data_root).join(format!("{}.json", d.hex()));
    let file: RecordFile = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    file.layers.last().map(|l| l.chain_id.clone())
}

/// Mends what [`scan`] found: records that cannot be used are removed (their images were
/// lost already; pull or build them again), then the store is opened, which removes
/// half-written files, untagged pulls and orphaned layers and blobs. Returns the findings
/// left afterwards (none when the repair worked).
pub fn repair(data_root: &Path) -> Result<Vec<Finding>, ImageError> {
    for f in scan(data_root)? {
        match f.problem {
            Problem::MissingLayer | Problem::UnreadableRecord => {
                tracing::warn!(record = %f.path.display(), detail = %f.detail, "removing an image record that cannot be used");
                fs::remove_file(&f.path).map_err(fsutil::ctx("remove", &f.path))?;
            }
            Problem::UnreadableIndex => {
                // Tags cannot be recovered from an unreadable index; keep it for an
                // administrator and start from an empty one (the images stay, untagged).
                let aside = f.path.with_extension("json.unreadable");
                tracing::warn!(index = %f.path.display(), "setting an unreadable tag index aside");
                fs::rename(&f.path, &aside).map_err(fsutil::ctx("rename", &f.path))?;
            }
            _ => {}
        }
    }
    drop(ImageStore::open(data_root)?);
    // What ContentStore/LayerStore::open create is part of a healthy store; scan again.
    scan(data_root)
}
