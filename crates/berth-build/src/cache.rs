//! The build cache: which image a step produced, by the step's key.
//!
//! ```text
//! <data-root>/builder/cache/<key-hex>.json   {"image": "sha256:…", "created": "…", "step": "…"}
//! ```
//!
//! A key is the sha256 of everything the step's result depends on: the parent image, the
//! step after substitution (the config the step runs with, Docker's cache probe), the build
//! args it can see, and for `COPY`/`ADD` the digests of exactly the files it reads (never
//! their mtimes). Each step's result is an image in the store (Docker's intermediate images:
//! `---> <id>` is real and can be run), so the cache shares the store's crash safety:
//! an entry is written (temp + fsync + rename) only after its image is recorded, and an entry
//! whose image is gone is a miss. Entries are files, so builds running at the same time share
//! them without a lock. A file's mtime is its last use (least recently used entries go first
//! when `builder prune` keeps some storage or `builder.gc` trims the cache).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_image::fsutil;
use berth_image::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// One cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub image: Digest,
    /// RFC 3339.
    pub created: String,
    /// The step (`RUN mkdir -p /app`), for `builder prune` and `system df`.
    #[serde(default)]
    pub step: String,
}

/// An entry with its key and last use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub entry: Entry,
    pub last_used: SystemTime,
}

/// The cache directory of a data root.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Computes a key from its parts (each length-prefixed, so no two part lists collide).
pub fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(b"berth-build-cache-v1");
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn valid_key(k: &str) -> bool {
    k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Cache {
    /// Opens (creating) `<data_root>/builder/cache`, removing interrupted writes.
    pub fn open(data_root: &Path) -> io::Result<Cache> {
        let dir = data_root.join("builder").join("cache");
        fs::create_dir_all(&dir)?;
        fsutil::clean_atomic_leftovers(&dir)?;
        Ok(Cache { dir })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The image recorded for `key` (whether it still exists is the caller's check).
    /// A hit counts as a use.
    pub fn get(&self, key: &str) -> Option<Entry> {
        if !valid_key(key) {
            return None;
        }
        let p = self.path(key);
        let bytes = fs::read(&p).ok()?;
        let e: Entry = serde_json::from_slice(&bytes).ok()?;
        if let Ok(f) = fs::File::options().write(true).open(&p) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(e)
    }

    /// Records the image a step produced.
    pub fn put(&self, key: &str, entry: &Entry) -> io::Result<()> {
        if !valid_key(key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid cache key",
            ));
        }
        let bytes = serde_json::to_vec(entry).map_err(io::Error::other)?;
        fsutil::write_atomic(&self.dir, &format!("{key}.json"), &bytes)
    }

    /// Removes an entry (missing is fine).
    pub fn remove(&self, key: &str) -> io::Result<()> {
        if !valid_key(key) {
            return Ok(());
        }
        match fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every entry, least recently used first. Unreadable entries are removed.
    pub fn list(&self) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.dir)? {
            let ent = ent?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".json") else {
                continue;
            };
            if !valid_key(key) {
                continue;
            }
            let p = ent.path();
            let parsed = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
            let Some(entry) = parsed else {
                let _ = fs::remove_file(&p);
                continue;
            };
            let last_used = ent
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            out.push(Listed {
                key: key.to_string(),
                entry,
                last_used,
            });
        }
        out.sort_by(|a, b| a.last_used.cmp(&b.last_used).then(a.key.cmp(&b.key)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"x"]), key(&[b"x"]));
        assert_eq!(key(&[b"x"]).len(), 64);
    }

    #[test]
    fn put_get_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        let k = key(&[b"step"]);
        assert!(c.get(&k).is_none());
        let e = Entry {
            image: Digest::sha256_of(b"img"),
            created: "2026-12-02T00:00:00Z".into(),
            step: "RUN true".into(),
        };
        c.put(&k, &e).unwrap();
        assert_eq!(c.get(&k).unwrap(), e);
        // survives a reopen
        let c = Cache::open(d.path()).unwrap();
        let l = c.list().unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].key, k);
        c.remove(&k).unwrap();
        assert!(c.get(&k).is_none());
        assert!(c.get("../../etc/passwd").is_none());
    }
}
