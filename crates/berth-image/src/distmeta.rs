//! Distribution metadata: what berth knows about the compressed forms of its layers and
//! where they exist remotely.
//!
//! ```text
//! <data-root>/image/distribution.json
//!   {"layers": {"<diff id>": [{"digest": "<blob>", "media_type": "…", "size": N,
//!                              "sources": [{"registry": "localhost:5000", "repository": "me/app"}]}]}}
//! ```
//!
//! * A push of a layer that is stored uncompressed compresses it once: the compressed blob is
//!   kept in the content store and listed here, so the next push (to any registry) sends the
//!   same bytes, and a registry that has them answers "Layer already exists".
//! * Sources (filled by pulls and pushes) let a push to another repository of the same
//!   registry mount the blob instead of uploading it ("Mounted from me/busybox").
//!
//! The file is small (one entry per layer and form) and replaced atomically. Compressed
//! blobs listed here stay in the content store while an image uses their layer; entries of
//! layers no image uses are dropped by garbage collection.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::ImageError;
use crate::fsutil;
use crate::layer::DiffId;

/// At most this many sources are remembered per blob (the most recent first).
const MAX_SOURCES: usize = 16;

/// A repository of a registry where a blob is known to exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobSource {
    /// `host[:port]` as used for the registry (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path in that registry (`library/busybox`).
    pub repository: String,
}

/// One distributable (usually compressed) form of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(default)]
    pub sources: Vec<BlobSource>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct DistFile {
    #[serde(default)]
    layers: BTreeMap<String, Vec<LayerBlob>>,
}

/// The in-memory index and where it is stored.
#[derive(Debug)]
pub(crate) struct DistIndex {
    dir: PathBuf,
    file: DistFile,
}

const FILE_NAME: &str = "distribution.json";

impl DistIndex {
    /// Loads `<image dir>/distribution.json`; a missing or unreadable file is an empty index
    /// (the metadata is an optimisation: losing it costs uploads, not correctness).
    pub(crate) fn load(image_dir: &Path) -> DistIndex {
        let path = image_dir.join(FILE_NAME);
        let file = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable distribution metadata");
                DistFile::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => DistFile::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable distribution metadata");
                DistFile::default()
            }
        };
        DistIndex {
            dir: image_dir.to_path_buf(),
            file,
        }
    }

    fn save(&self) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec(&self.file)
            .map_err(|e| ImageError::Internal(format!("serialising distribution metadata: {e}")))?;
        fsutil::write_atomic(&self.dir, FILE_NAME, &bytes)
            .map_err(fsutil::ctx("write", &self.dir.join(FILE_NAME)))?;
        Ok(())
    }

    pub(crate) fn blobs(&self, diff_id: &DiffId) -> Vec<LayerBlob> {
        self.file
            .layers
            .get(&diff_id.to_string())
            .cloned()
            .unwrap_or_default()
    }

    /// Merges `entries` (sources are added in front, duplicates removed) and saves.
    pub(crate) fn record(&mut self, entries: Vec<(DiffId, LayerBlob)>) -> Result<(), ImageError> {
        let mut changed = false;
        for (diff_id, blob) in entries {
            let list = self.file.layers.entry(diff_id.to_string()).or_default();
            match list.iter_mut().find(|b| b.digest == blob.digest) {
                Some(existing) => {
                    if existing.media_type.is_empty() && !blob.media_type.is_empty() {
                        existing.media_type = blob.media_type.clone();
                        changed = true;
                    }
                    for s in blob.sources.into_iter().rev() {
                        if existing.sources.first() == Some(&s) {
                            continue;
                        }
                        existing.sources.retain(|x| *x != s);
                        existing.sources.insert(0, s);
                        existing.sources.truncate(MAX_SOURCES);
                        changed = true;
                    }
                }
                None => {
                    let mut b = blob;
                    b.sources.truncate(MAX_SOURCES);
                    list.push(b);
                    changed = true;
                }
            }
        }
        if changed {
            self.save()?;
        }
        Ok(())
    }

    /// The blobs listed for any of `diff_ids`.
    pub(crate) fn blobs_of<'a>(
        &'a self,
        diff_ids: impl IntoIterator<Item = &'a DiffId>,
    ) -> Vec<Digest> {
        let mut out = Vec::new();
        for d in diff_ids {
            if let Some(list) = self.file.layers.get(&d.to_string()) {
                out.extend(list.iter().map(|b| b.digest.clone()));
            }
        }
        out
    }

    /// Drops the entries of layers not in `live`; saves when something changed.
    pub(crate) fn retain_live(&mut self, live: &HashSet<DiffId>) -> Result<(), ImageError> {
        let live: HashSet<String> = live.iter().map(|d| d.to_string()).collect();
        let before = self.file.layers.len();
        self.file.layers.retain(|k, _| live.contains(k));
        if self.file.layers.len() != before {
            self.save()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(r: &str, p: &str) -> BlobSource {
        BlobSource {
            registry: r.into(),
            repository: p.into(),
        }
    }

    #[test]
    fn records_merges_and_persists() {
        let d = tempfile::tempdir().unwrap();
        let diff = Digest::sha256_of(b"tar");
        let blob = Digest::sha256_of(b"gz");
        let mut idx = DistIndex::load(d.path());
        assert!(idx.blobs(&diff).is_empty());
        idx.record(vec![(
            diff.clone(),
            LayerBlob {
                digest: blob.clone(),
                media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
                size: 2,
                sources: vec![src("localhost:5000", "me/a")],
            },
        )])
        .unwrap();
        idx.record(vec![(
            diff.clone(),
            LayerBlob {
                digest: blob.clone(),
                media_type: String::new(),
                size: 2,
                sources: vec![src("localhost:5000", "me/b"), src("localhost:5000", "me/a")],
            },
        )])
        .unwrap();
        let idx = DistIndex::load(d.path());
        let got = idx.blobs(&diff);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].sources,
            vec![src("localhost:5000", "me/b"), src("localhost:5000", "me/a")]
        );
        assert_eq!(idx.blobs_of([&diff]), vec![blob]);
        let mut idx = idx;
        idx.retain_live(&HashSet::new()).unwrap();
        assert!(DistIndex::load(d.path()).blobs(&diff).is_empty());
    }

    #[test]
    fn sources_are_bounded() {
        let d = tempfile::tempdir().unwrap();
        let diff = Digest::sha256_of(b"tar");
        let mut idx = DistIndex::load(d.path());
        for i in 0..40 {
            idx.record(vec![(
                diff.clone(),
                LayerBlob {
                    digest: Digest::sha256_of(b"gz"),
                    media_type: String::new(),
                    size: 2,
                    sources: vec![src("r", &format!("repo{i}"))],
                },
            )])
            .unwrap();
        }
        let got = idx.blobs(&diff);
        assert_eq!(got[0].sources.len(), MAX_SOURCES);
        assert_eq!(got[0].sources[0], src("r", "repo39"));
    }

    #[test]
    fn unreadable_file_is_empty() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(FILE_NAME), b"{not json").unwrap();
        let idx = DistIndex::load(d.path());
        assert!(idx.blobs(&Digest::sha256_of(b"x")).is_empty());
    }
}
