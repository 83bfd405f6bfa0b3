//! `berth registry gc`: removes blobs that no manifest references (mark and sweep).
//!
//! Like distribution's garbage collector it runs offline: it takes the storage root's lock,
//! so it refuses to run while `berth registry serve` uses the same root. Manifests are kept
//! unless `delete_untagged` is set; then manifests that no tag reaches (directly, through an
//! index, or as a referrer of a kept manifest) are deleted first.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::path::Path;

use berth_image::digest::Digest;

use super::config::MAX_MANIFEST_BYTES;
use super::handlers::lock_root;
use super::manifest;
use super::storage::Storage;
use super::ServeError;

#[derive(Debug, Clone, Copy, Default)]
pub struct GcOptions {
    pub dry_run: bool,
    pub delete_untagged: bool,
}

/// What was (or, in a dry run, would be) removed.
#[derive(Debug, Default)]
pub struct GcReport {
    pub manifests_deleted: Vec<(String, Digest)>,
    pub blobs_deleted: Vec<(Digest, u64)>,
    pub blobs_kept: usize,
}

impl GcReport {
    pub fn bytes_freed(&self) -> u64 {
        self.blobs_deleted.iter().map(|(_, n)| n).sum()
    }
}

fn io_err(root: &Path) -> impl Fn(io::Error) -> ServeError + '_ {
    move |source| ServeError::Storage {
        path: root.to_path_buf(),
        source,
    }
}

/// Everything a manifest points at (config, layers, child manifests, subject excluded).
fn references(storage: &Storage, d: &Digest) -> Vec<Digest> {
    let Ok(bytes) = storage.read_blob(d, MAX_MANIFEST_BYTES) else {
        tracing::warn!("manifest blob {d} is missing");
        return Vec::new();
    };
    match manifest::parse(&bytes, None) {
        Ok(m) => m
            .config
            .iter()
            .chain(m.layers.iter())
            .chain(m.manifests.iter())
            .map(|x| x.digest.clone())
            .collect(),
        Err(e) => {
            tracing::warn!("manifest {d} cannot be parsed ({e}); keeping only the manifest itself");
            Vec::new()
        }
    }
}

fn subject_of(storage: &Storage, d: &Digest) -> Option<Digest> {
    let bytes = storage.read_blob(d, MAX_MANIFEST_BYTES).ok()?;
    manifest::parse(&bytes, None)
        .ok()?
        .subject
        .map(|s| s.digest)
}

/// Runs garbage collection on the store at `root`.
pub fn collect(root: &Path, opts: GcOptions) -> Result<GcReport, ServeError> {
    let storage = Storage::open(root).map_err(io_err(root))?;
    let _lock = lock_root(&storage)?;
    let mut report = GcReport::default();
    let mut marked: HashSet<Digest> = HashSet::new();
    for repo in storage.repositories().map_err(io_err(root))? {
        let revisions = storage.revisions(&repo).map_err(io_err(root))?;
        let mut keep: BTreeSet<Digest> = BTreeSet::new();
        if opts.delete_untagged {
            for t in storage
                .tags(&repo)
                .map_err(io_err(root))?
                .unwrap_or_default()
            {
                if let Some(d) = storage.tag_digest(&repo, &t).map_err(io_err(root))? {
                    keep.insert(d);
                }
            }
            // Children of kept indexes and referrers of kept manifests stay too.
            loop {
                let mut grew = false;
                for r in &revisions {
                    if keep.contains(r) {
                        for c in references(&storage, r) {
                            if revisions.contains(&c) && keep.insert(c) {
                                grew = true;
                            }
                        }
                    } else if subject_of(&storage, r).is_some_and(|s| keep.contains(&s)) {
                        keep.insert(r.clone());
                        grew = true;
                    }
                }
                if !grew {
                    break;
                }
            }
            for r in &revisions {
                if !keep.contains(r) {
                    if !opts.dry_run {
                        let subject = subject_of(&storage, r);
                        storage
                            .delete_manifest(&repo, r, subject.as_ref())
                            .map_err(io_err(root))?;
                    }
                    report.manifests_deleted.push((repo.clone(), r.clone()));
                }
            }
        } else {
            keep.extend(revisions.iter().cloned());
        }
        for m in keep {
            for r in references(&storage, &m) {
                marked.insert(r);
            }
            marked.insert(m);
        }
    }
    // Sweep the blob store.
    let blobs_root = root.join("blobs");
    for alg in fs::read_dir(&blobs_root).map_err(io_err(root))?.flatten() {
        let Some(alg_name) = alg.file_name().to_str().map(str::to_string) else {
            continue;
        };
        for prefix in fs::read_dir(alg.path()).map_err(io_err(root))?.flatten() {
            for blob in fs::read_dir(prefix.path()).map_err(io_err(root))?.flatten() {
                let Some(hex) = blob.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let Ok(d) = Digest::parse(&format!("{alg_name}:{hex}")) else {
                    continue;
                };
                if marked.contains(&d) {
                    report.blobs_kept += 1;
                    continue;
                }
                let size = blob.metadata().map(|m| m.len()).unwrap_or(0);
                if !opts.dry_run {
                    fs::remove_file(blob.path()).map_err(io_err(root))?;
                }
                report.blobs_deleted.push((d, size));
            }
        }
    }
    if !opts.dry_run {
        // Links to removed blobs would only answer BLOB_UNKNOWN later; drop them now.
        let gone: HashSet<&Digest> = report.blobs_deleted.iter().map(|(d, _)| d).collect();
        for repo in storage.repositories().map_err(io_err(root))? {
            for l in storage.layer_links(&repo).map_err(io_err(root))? {
                if gone.contains(&l) {
                    storage.unlink_blob(&repo, &l).map_err(io_err(root))?;
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_referenced_and_sweeps_the_rest() {
        let t = tempfile::tempdir().unwrap();
        let s = Storage::open(t.path()).unwrap();
        let layer = Digest::sha256_of(b"layer");
        let config = Digest::sha256_of(b"config");
        let orphan = Digest::sha256_of(b"orphan");
        for (d, b) in [
            (&layer, &b"layer"[..]),
            (&config, b"config"),
            (&orphan, b"orphan"),
        ] {
            s.put_blob_bytes(d, b).unwrap();
            s.link_blob("r", d).unwrap();
        }
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"c","digest":"{config}","size":6}},"layers":[{{"mediaType":"l","digest":"{layer}","size":5}}]}}"#,
            manifest::OCI_MANIFEST
        );
        let md = Digest::sha256_of(m.as_bytes());
        s.put_manifest("r", &md, m.as_bytes(), manifest::OCI_MANIFEST, None, None)
            .unwrap();
        drop(s);

        let dry = collect(
            t.path(),
            GcOptions {
                dry_run: true,
                delete_untagged: false,
            },
        )
        .unwrap();
        assert_eq!(dry.blobs_deleted.len(), 1);
        assert!(Storage::open(t.path())
            .unwrap()
            .blob_size(&orphan)
            .unwrap()
            .is_some());

        let r = collect(t.path(), GcOptions::default()).unwrap();
        assert_eq!(r.blobs_deleted, vec![(orphan.clone(), 6)]);
        assert_eq!(r.blobs_kept, 3);
        let s = Storage::open(t.path()).unwrap();
        assert!(s.blob_size(&orphan).unwrap().is_none());
        assert!(s.repo_blob("r", &layer).unwrap().is_some());
        assert!(s.layer_links("r").unwrap().iter().all(|d| *d != orphan));
        drop(s);

        // Untagged manifest: kept by default, removed with delete_untagged.
        let r = collect(
            t.path(),
            GcOptions {
                dry_run: false,
                delete_untagged: true,
            },
        )
        .unwrap();
        assert_eq!(r.manifests_deleted.len(), 1);
        assert_eq!(r.blobs_deleted.len(), 3);
    }
}
