//! Small filesystem helpers shared by the stores: random names, durable atomic replacement of
//! files, directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `n` random bytes as lowercase hex (2n characters), for temp names and container-like ids.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if getrandom::fill(&mut buf).is_err() {
        // getrandom only fails when the kernel has no entropy source at all; fall back to
        // something unique enough for temp names (they are also created with O_EXCL).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = t ^ (u128::from(std::process::id()) << 64);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8);
        }
    }
    hex::encode(buf)
}

/// fsync a directory so that renames and creations inside it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `dir/name` atomically and durably: a temp file in the same directory is
/// written, fsynced and renamed over the target, then the directory is fsynced. Readers see
/// either the old or the new content, never a mix, even after a crash.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", random_hex(6)));
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        fsync_dir(dir)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Like [`write_atomic`] (readers see the old or the new content, never a mix) but without
/// the fsyncs: for files that can be recreated, or whose loss in a power failure is harmless.
/// A crash of the process alone never loses the write (it is in the page cache).
pub fn write_replace(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", random_hex(6)));
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, dir.join(name))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Removes leftovers named `.<anything>.tmp-<hex>` (interrupted [`write_atomic`] calls).
pub fn clean_atomic_leftovers(dir: &Path) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for ent in rd {
        let ent = ent?;
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") {
            tracing::debug!(path = %ent.path().display(), "removing interrupted write");
            let _ = fs::remove_file(ent.path());
        }
    }
    Ok(())
}

/// Removes everything inside `dir` (not `dir` itself). Missing `dir` is fine.
pub fn empty_dir(dir: &Path) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for ent in rd {
        let ent = ent?;
        remove_any(&ent.path())?;
    }
    Ok(())
}

/// Removes a file, symlink or directory tree; a missing path is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// An error with the path and the operation that failed, so messages say what to look at.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct PathError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl PathError {
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PathError {
            op,
            path: path.into(),
            source,
        }
    }
}

/// `.map_err(ctx("open", &path))` shorthand.
pub fn ctx<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PathError + 'a {
    move |e| PathError::new(op, path, e)
}

/// A directory removed (recursively) when dropped unless [`TempDir::keep`] is called.
pub struct TempDir {
    path: Option<PathBuf>,
}

impl TempDir {
    /// Creates `parent/<prefix><random>` (mode 0700).
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<TempDir> {
        fs::create_dir_all(parent)?;
        loop {
            let p = parent.join(format!("{prefix}{}", random_hex(8)));
            match fs::DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .map(|_| p.clone())
            {
                Ok(_) => return Ok(TempDir { path: Some(p) }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Disarms the guard: the directory is kept (it was renamed or is now owned elsewhere).
    pub fn keep(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            if let Err(e) = remove_any(&p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove temporary directory");
            }
        }
    }
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_cleans() {
        let d = tempfile::tempdir().unwrap();
        write_atomic(d.path(), "a.json", b"one").unwrap();
        write_atomic(d.path(), "a.json", b"two").unwrap();
        assert_eq!(fs::read(d.path().join("a.json")).unwrap(), b"two");
        fs::write(d.path().join(".a.json.tmp-abcd"), b"half").unwrap();
        clean_atomic_leftovers(d.path()).unwrap();
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn tempdir_guard_removes_unless_kept() {
        let d = tempfile::tempdir().unwrap();
        let t = TempDir::new_in(d.path(), "x-").unwrap();
        let p = t.path().to_path_buf();
        fs::write(p.join("f"), b"1").unwrap();
        drop(t);
        assert!(!p.exists());
        let t = TempDir::new_in(d.path(), "x-").unwrap();
        let p = t.keep();
        assert!(p.is_dir());
    }

    #[test]
    fn random_hex_is_hex_and_varies() {
        let a = random_hex(8);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(8));
    }
}
