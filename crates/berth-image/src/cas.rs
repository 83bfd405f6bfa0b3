//! Content-addressed blob store (`<data-root>/content/`).
//!
//! ```text
//! content/blobs/<alg>/<hex>   verified blobs, read-only (0444)
//! content/ingest/<random>     writes in progress; emptied by ContentStore::open
//! ```
//!
//! A blob reaches its final path only by `rename(2)` after its bytes were streamed through the
//! hash, fsynced and verified against the expected digest and size. A crash therefore leaves
//! at most a stray ingest file, never a partial or unverified blob under `blobs/`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, DigestWriter};
use crate::fsutil::{self, fsync_dir, random_hex};
use crate::pending::{Pending, Unflushed};

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    #[error("content digest mismatch: expected {expected}, got {actual}; the data is corrupt or was changed in transit")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} not found in the content store")]
    NotFound(Digest),
    #[error("content store: {0}")]
    Io(#[from] fsutil::PathError),
    #[error("content store: reading the input failed: {0}")]
    Read(#[source] io::Error),
}

impl CasError {
    /// True when the input was at fault (bad digest/size, unreadable stream).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            CasError::DigestMismatch { .. } | CasError::SizeMismatch { .. } | CasError::Read(_)
        )
    }
}

/// The result of writing a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// The content store. Cheap to share: all methods take `&self` and are safe to call from many
/// threads (writes go to private ingest files; the final rename is atomic).
#[derive(Debug)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// The store under `data_root` as it is, creating and cleaning nothing (for checks).
    pub(crate) fn at(data_root: &Path) -> ContentStore {
        let root = data_root.join("content");
        ContentStore {
            blobs: root.join("blobs"),
            ingest: root.join("ingest"),
        }
    }

    /// Opens (creating if needed) `<data_root>/content` and removes interrupted ingests.
    pub fn open(data_root: &Path) -> Result<ContentStore, CasError> {
        let root = data_root.join("content");
        let blobs = root.join("blobs");
        let ingest = root.join("ingest");
        for d in [&blobs.join("sha256"), &blobs.join("sha512"), &ingest] {
            fs::create_dir_all(d).map_err(fsutil::ctx("create", d))?;
        }
        fsutil::empty_dir(&ingest).map_err(fsutil::ctx("clean", &ingest))?;
        Ok(ContentStore { blobs, ingest })
    }

    /// The final path of a blob (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, CasError> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(CasError::NotFound(digest.clone()))
            }
            Err(e) => Err(fsutil::PathError::new("stat", self.path(digest), e).into()),
        }
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, CasError> {
        let p = self.path(digest);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(CasError::NotFound(digest.clone()))
            }
            Err(e) => Err(fsutil::PathError::new("open", p, e).into()),
        }
    }

    /// Reads a whole (small) blob such as a config or manifest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, CasError> {
        let mut f = self.open_blob(digest)?;
        let mut v = Vec::new();
        f.read_to_end(&mut v)
            .map_err(fsutil::ctx("read", &self.path(digest)))?;
        Ok(v)
    }

    /// Streams `r` into the store. With `expected`, the content must hash to it (using its
    /// algorithm); with `expected_size`, it must have exactly that many bytes. On any mismatch
    /// nothing is stored and the error names both values.
    pub fn put(
        &self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<BlobInfo, CasError> {
        let algorithm = expected.map(|d| d.algorithm()).unwrap_or(Algorithm::Sha256);
        let ingest_path = self.ingest.join(random_hex(16));
        let guard = RemoveOnDrop(Some(ingest_path.clone()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&ingest_path)
            .map_err(fsutil::ctx("create", &ingest_path))?;
        let mut w = DigestWriter::new(file, algorithm);
        copy_distinguishing_errors(r, &mut w, &ingest_path)?;
        let (digest, size, file) = w.finish();
        check_written(&digest, size, expected, expected_size)?;
        file.sync_all()
            .map_err(fsutil::ctx("fsync", &ingest_path))?;
        drop(file);
        self.commit(&ingest_path, &digest)?;
        guard.disarm();
        tracing::debug!(%digest, size, "blob stored");
        Ok(BlobInfo { digest, size })
    }

    /// Stores a small in-memory blob (configs, manifests) and returns its sha256 digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, CasError> {
        let d = Digest::sha256_of(bytes);
        if self.exists(&d) {
            return Ok(d);
        }
        self.put(&mut &bytes[..], Some(&d), Some(bytes.len() as u64))?;
        Ok(d)
    }

    /// Moves an existing file (which must be on the same filesystem, e.g. a spool file under
    /// `<data-root>/tmp`) into the store after hashing and verifying it: no copy is made.
    /// The file is consumed (moved or, when the blob already exists, removed).
    pub fn put_file(&self, path: &Path, expected: Option<&Digest>) -> Result<BlobInfo, CasError> {
        let algorithm = expected.map(|d| d.algorithm()).unwrap_or(Algorithm::Sha256);
        let mut f = File::open(path).map_err(fsutil::ctx("open", path))?;
        let mut w = DigestWriter::new(io::sink(), algorithm);
        io::copy(&mut f, &mut w).map_err(fsutil::ctx("read", path))?;
        let (digest, size, _) = w.finish();
        if let Some(want) = expected {
            if *want != digest {
                return Err(CasError::DigestMismatch {
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        f.sync_all().map_err(fsutil::ctx("fsync", path))?;
        drop(f);
        // Make it read-only like every other blob before it becomes visible.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o444))
            .map_err(fsutil::ctx("chmod", path))?;
        match fs::rename(path, self.path(&digest)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                // Different filesystem: fall back to a verified copy.
                let mut f = File::open(path).map_err(fsutil::ctx("open", path))?;
                let info = self.put(&mut f, Some(&digest), Some(size))?;
                let _ = fs::remove_file(path);
                return Ok(info);
            }
            Err(e) => return Err(fsutil::PathError::new("rename", path, e).into()),
        }
        let dir = self.blobs.join(digest.algorithm().as_str());
        fsync_dir(&dir).map_err(fsutil::ctx("fsync", &dir))?;
        Ok(BlobInfo { digest, size })
    }

    /// Deletes a blob. Returns whether it existed.
    pub fn delete(&self, digest: &Digest) -> Result<bool, CasError> {
        let p = self.path(digest);
        match fs::remove_file(&p) {
            Ok(()) => {
                tracing::debug!(%digest, "blob deleted");
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(fsutil::PathError::new("remove", p, e).into()),
        }
    }

    /// Every stored blob (for garbage collection).
    pub fn list(&self) -> Result<Vec<Digest>, CasError> {
        let mut out = Vec::new();
        for alg in ["sha256", "sha512"] {
            let dir = self.blobs.join(alg);
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(fsutil::PathError::new("list", dir, e).into()),
            };
            for ent in rd {
                let ent = ent.map_err(fsutil::ctx("list", &dir))?;
                let name = ent.file_name();
                match Digest::parse(&format!("{alg}:{}", name.to_string_lossy())) {
                    Ok(d) => out.push(d),
                    Err(_) => {
                        tracing::warn!(path = %ent.path().display(), "ignoring stray file in the content store")
                    }
                }
            }
        }
        Ok(out)
    }

    fn commit(&self, ingest_path: &Path, digest: &Digest) -> Result<(), CasError> {
        let dst = self.path(digest);
        fs::rename(ingest_path, &dst).map_err(fsutil::ctx("rename", ingest_path))?;
        let dir = self.blobs.join(digest.algorithm().as_str());
        fsync_dir(&dir).map_err(fsutil::ctx("fsync", &dir))?;
        Ok(())
    }
}

/// Refuses written content whose size or digest is not the expected one (either may be
/// unknown); the error names both values.
fn check_written(
    digest: &Digest,
    size: u64,
    expected: Option<&Digest>,
    expected_size: Option<u64>,
) -> Result<(), CasError> {
    if let Some(want) = expected_size {
        if want != size {
            return Err(CasError::SizeMismatch {
                digest: expected.unwrap_or(digest).to_string(),
                expected: want,
                actual: size,
            });
        }
    }
    if let Some(want) = expected {
        if want != digest {
            return Err(CasError::DigestMismatch {
                expected: want.clone(),
                actual: digest.clone(),
            });
        }
    }
    Ok(())
}

/// A blob being written piece by piece (for producers that push bytes, such as a registry
/// download that is extracted at the same time). The bytes go to a private ingest file and
/// are hashed on the way; [`Ingest::commit`] verifies digest and size, fsyncs and renames the
/// file into place. Dropping an uncommitted ingest removes the file: nothing partial is kept.
pub struct Ingest {
    path: PathBuf,
    w: DigestWriter<File>,
    guard: RemoveOnDrop,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("path", &self.path)
            .field("size", &self.w.count())
            .finish()
    }
}

impl Ingest {
    /// Appends `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<(), CasError> {
        self.w
            .write_all(data)
            .map_err(fsutil::ctx("write", &self.path))
            .map_err(CasError::from)
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.w.count()
    }

    /// Verifies the content against `expected` (digest and size, when given) and moves it
    /// into the store. On a mismatch nothing is stored and the error names both values.
    pub fn commit(
        self,
        store: &ContentStore,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<BlobInfo, CasError> {
        self.commit_inner(store, expected, expected_size, None)
    }

    /// Like [`Ingest::commit`], but the blob becomes visible before its data is flushed:
    /// `pending` records it first and flushes later (see [`crate::pending`]).
    pub fn commit_deferred(
        self,
        store: &ContentStore,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        pending: &Pending,
    ) -> Result<BlobInfo, CasError> {
        self.commit_inner(store, expected, expected_size, Some(pending))
    }

    fn commit_inner(
        self,
        store: &ContentStore,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        pending: Option<&Pending>,
    ) -> Result<BlobInfo, CasError> {
        let Ingest { path, w, guard } = self;
        let (digest, size, file) = w.finish();
        check_written(&digest, size, expected, expected_size)?;
        let deferred = match pending {
            Some(p) if p.enabled() => match p.mark(&Unflushed::Blob(digest.clone())) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(%digest, error = %e, "cannot defer the blob's flush");
                    false
                }
            },
            _ => false,
        };
        if !deferred {
            file.sync_all().map_err(fsutil::ctx("fsync", &path))?;
        }
        drop(file);
        store.commit(&path, &digest)?;
        guard.disarm();
        tracing::debug!(%digest, size, "blob stored");
        Ok(BlobInfo { digest, size })
    }
}

impl Ingest {
    /// The digest and size of what was written, discarding it (nothing is stored).
    pub fn discard(self) -> (Digest, u64) {
        let Ingest { w, guard, .. } = self;
        let (digest, size, file) = w.finish();
        drop(file);
        drop(guard);
        (digest, size)
    }
}

impl Write for Ingest {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.w.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl ContentStore {
    /// Starts writing a blob whose bytes will be pushed with [`Ingest::write`], hashed with
    /// `algorithm`.
    pub fn ingest(&self, algorithm: Algorithm) -> Result<Ingest, CasError> {
        let path = self.ingest.join(random_hex(16));
        let guard = RemoveOnDrop(Some(path.clone()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&path)
            .map_err(fsutil::ctx("create", &path))?;
        Ok(Ingest {
            w: DigestWriter::new(file, algorithm),
            path,
            guard,
        })
    }
}

/// Copies, telling read errors (the caller's stream: bad input) from write errors (our disk).
fn copy_distinguishing_errors(
    r: &mut dyn Read,
    w: &mut dyn Write,
    path: &Path,
) -> Result<u64, CasError> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CasError::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(fsutil::ctx("write", path))?;
        total += n as u64;
    }
    Ok(total)
}

struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest_is_empty(dir: &Path) -> bool {
        fs::read_dir(dir.join("content/ingest"))
            .unwrap()
            .next()
            .is_none()
    }

    #[test]
    fn put_verifies_and_stores() {
        let d = tempfile::tempdir().unwrap();
        let cas = ContentStore::open(d.path()).unwrap();
        let want = Digest::sha256_of(b"hello");
        let info = cas.put(&mut &b"hello"[..], Some(&want), Some(5)).unwrap();
        assert_eq!(info.digest, want);
        assert!(cas.exists(&want));
        assert_eq!(cas.size(&want).unwrap(), 5);
        assert_eq!(cas.read(&want).unwrap(), b"hello");
        assert_eq!(cas.list().unwrap(), vec![want.clone()]);
        assert!(cas.delete(&want).unwrap());
        assert!(!cas.delete(&want).unwrap());
        assert!(matches!(cas.open_blob(&want), Err(CasError::NotFound(_))));
        assert!(ingest_is_empty(d.path()));
    }

    #[test]
    fn mismatch_names_both_digests_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let cas = ContentStore::open(d.path()).unwrap();
        let want = Digest::sha256_of(b"other");
        let err = cas.put(&mut &b"hello"[..], Some(&want), None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&want.to_string()), "{msg}");
        assert!(
            msg.contains(&Digest::sha256_of(b"hello").to_string()),
            "{msg}"
        );
        assert!(!cas.exists(&want));
        assert!(!cas.exists(&Digest::sha256_of(b"hello")));
        assert!(ingest_is_empty(d.path()));
        let err = cas.put(&mut &b"hello"[..], None, Some(4)).unwrap_err();
        assert!(matches!(
            err,
            CasError::SizeMismatch {
                expected: 4,
                actual: 5,
                ..
            }
        ));
        assert!(cas.list().unwrap().is_empty());
    }

    #[test]
    fn failing_reader_leaves_nothing() {
        struct Bad(u8);
        impl Read for Bad {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection reset"));
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let d = tempfile::tempdir().unwrap();
        let cas = ContentStore::open(d.path()).unwrap();
        let err = cas.put(&mut Bad(3), None, None).unwrap_err();
        assert!(err.is_input_error());
        assert!(ingest_is_empty(d.path()));
        assert!(cas.list().unwrap().is_empty());
    }

    #[test]
    fn open_cleans_ingest_and_put_file_moves() {
        let d = tempfile::tempdir().unwrap();
        let cas = ContentStore::open(d.path()).unwrap();
        fs::write(d.path().join("content/ingest/leftover"), b"partial").unwrap();
        drop(cas);
        let cas = ContentStore::open(d.path()).unwrap();
        assert!(ingest_is_empty(d.path()));
        let src = d.path().join("spool");
        fs::write(&src, b"layer bytes").unwrap();
        let bad = Digest::sha256_of(b"nope");
        assert!(matches!(
            cas.put_file(&src, Some(&bad)),
            Err(CasError::DigestMismatch { .. })
        ));
        assert!(src.exists());
        let info = cas.put_file(&src, None).unwrap();
        assert!(!src.exists());
        assert_eq!(info.digest, Digest::sha256_of(b"layer bytes"));
        assert_eq!(cas.put_bytes(b"layer bytes").unwrap(), info.digest);
    }

    #[test]
    fn ingest_commits_verified_blobs_and_drops_bad_ones() {
        let d = tempfile::tempdir().unwrap();
        let cas = ContentStore::open(d.path()).unwrap();
        let mut ing = cas.ingest(Algorithm::Sha256).unwrap();
        ing.write(b"hel").unwrap();
        ing.write(b"lo").unwrap();
        assert_eq!(ing.size(), 5);
        let want = Digest::sha256_of(b"hello");
        let info = ing.commit(&cas, Some(&want), Some(5)).unwrap();
        assert_eq!(info.digest, want);
        assert_eq!(cas.read(&want).unwrap(), b"hello");
        // wrong digest: nothing stored, ingest cleaned
        let mut ing = cas.ingest(Algorithm::Sha256).unwrap();
        ing.write(b"other").unwrap();
        let err = ing.commit(&cas, Some(&want), None).unwrap_err();
        assert!(matches!(err, CasError::DigestMismatch { .. }), "{err}");
        let mut ing = cas.ingest(Algorithm::Sha256).unwrap();
        ing.write(b"other").unwrap();
        assert!(matches!(
            ing.commit(&cas, None, Some(4)),
            Err(CasError::SizeMismatch { .. })
        ));
        // dropped without commit
        let mut ing = cas.ingest(Algorithm::Sha256).unwrap();
        ing.write(b"partial").unwrap();
        drop(ing);
        assert!(ingest_is_empty(d.path()));
        assert_eq!(cas.list().unwrap(), vec![want]);
    }

    #[test]
    fn concurrent_puts_of_the_same_blob() {
        let d = tempfile::tempdir().unwrap();
        let cas = std::sync::Arc::new(ContentStore::open(d.path()).unwrap());
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8).collect();
        let want = Digest::sha256_of(&data);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let cas = cas.clone();
                let data = data.clone();
                let want = want.clone();
                std::thread::spawn(move || cas.put(&mut &data[..], Some(&want), None).unwrap())
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(cas.read(&want).unwrap(), data);
        assert!(ingest_is_empty(d.path()));
    }
}
