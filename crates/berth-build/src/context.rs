//! The build context on the daemon's side: the tar the client sent (plain, gzip, bzip2, xz or
//! zstd), extracted while it streams in into a private directory of the store's spool, never
//! buffered whole. Every later read (the Dockerfile, `COPY` sources) resolves inside it, so a
//! context symlink pointing outside and `COPY ../x` only ever reach the context.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_image::fsutil::TempDir;
use berth_image::tarapply::{self, ApplyOptions};

use crate::error::{BuildError, Result};
use crate::fsops;

/// Largest Dockerfile read (Docker has none; this guards the daemon's memory).
pub const MAX_DOCKERFILE: u64 = 16 * 1024 * 1024;

/// An extracted build context. Removed when dropped.
pub struct BuildContext {
    dir: TempDir,
    root: OwnedFd,
    /// Content digests of sources already hashed in this build (`COPY` cache keys).
    hashes: Mutex<HashMap<PathBuf, String>>,
}

impl std::fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildContext")
            .field("path", &self.dir.path())
            .finish()
    }
}

impl BuildContext {
    /// Extracts the context tar `r` into `dir` (a fresh spool directory, owned from now on).
    /// A truncated or corrupt tar, or a body that is not a tar, is refused with a message.
    pub fn extract(dir: TempDir, r: &mut dyn Read) -> Result<BuildContext> {
        let target = dir.path().join("context");
        std::fs::create_dir(&target)?;
        let (_, mut plain) = berth_image::compress::decompress(r)
            .map_err(|e| BuildError::InvalidInput(format!("invalid build context: {e}")))?;
        tarapply::apply_tar_with(
            &target,
            &mut plain,
            ApplyOptions {
                plain: true,
                strip_absolute: true,
            },
        )
        .map_err(|e| {
            if e.is_input_error() {
                BuildError::InvalidInput(format!("invalid build context: {e}"))
            } else {
                BuildError::Internal(format!("extracting the build context: {e}"))
            }
        })?;
        Self::open(dir)
    }

    /// A context with nothing in it (a build whose Dockerfile came alone).
    pub fn empty(dir: TempDir) -> Result<BuildContext> {
        std::fs::create_dir(dir.path().join("context"))?;
        Self::open(dir)
    }

    fn open(dir: TempDir) -> Result<BuildContext> {
        let root = fsops::open_root(&dir.path().join("context"))?;
        Ok(BuildContext {
            dir,
            root,
            hashes: Mutex::new(HashMap::new()),
        })
    }

    /// The context directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("context")
    }

    /// A handle of the context root to resolve paths in.
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Reads the Dockerfile named `name` (a path in the context), with Docker's error when it
    /// is missing.
    pub fn read_dockerfile(&self, name: &str) -> Result<Vec<u8>> {
        match fsops::read_in_root(self.root(), Path::new(name), MAX_DOCKERFILE) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BuildError::InvalidInput(
                format!("Cannot locate specified Dockerfile: {name}"),
            )),
            Err(e) => Err(BuildError::InvalidInput(format!(
                "Cannot read the specified Dockerfile {name}: {e}"
            ))),
        }
    }

    /// Removes `name` from the context (the Dockerfile and `.dockerignore` when
    /// `.dockerignore` excludes them: read, but never copied).
    pub fn remove(&self, name: &str) -> Result<()> {
        let Some((parent, base)) = fsops::split_last(Path::new(name)) else {
            return Ok(());
        };
        let dir = match fsops::open_in_root(
            self.root(),
            &parent,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        ) {
            Ok(d) => d,
            Err(_) => return Ok(()),
        };
        fsops::remove_at(dir.as_fd(), base).map_err(BuildError::internal)
    }

    /// The remembered digest of a source, if hashed before in this build.
    pub(crate) fn cached_hash(&self, p: &Path) -> Option<String> {
        self.hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(p)
            .cloned()
    }

    pub(crate) fn remember_hash(&self, p: &Path, h: &str) {
        self.hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.to_path_buf(), h.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn extracts_reads_and_refuses_bad_input() {
        let spool = tempfile::tempdir().unwrap();
        let data = tar_of(&[("Dockerfile", b"FROM scratch\n"), (".wh.x", b"plain")]);
        let ctx =
            BuildContext::extract(TempDir::new_in(spool.path(), "c-").unwrap(), &mut &data[..])
                .unwrap();
        assert_eq!(
            ctx.read_dockerfile("Dockerfile").unwrap(),
            b"FROM scratch\n"
        );
        // `.wh.` names are ordinary files in a context.
        assert_eq!(std::fs::read(ctx.path().join(".wh.x")).unwrap(), b"plain");
        let e = ctx.read_dockerfile("nope").unwrap_err();
        assert_eq!(e.to_string(), "Cannot locate specified Dockerfile: nope");
        ctx.remove("Dockerfile").unwrap();
        assert!(!ctx.path().join("Dockerfile").exists());

        // truncated: cut inside the file data
        let truncated = &data[..600];
        let e = BuildContext::extract(
            TempDir::new_in(spool.path(), "c-").unwrap(),
            &mut &truncated[..],
        )
        .unwrap_err();
        assert!(e.is_input_error(), "{e}");
        // not a tar at all
        let e = BuildContext::extract(
            TempDir::new_in(spool.path(), "c-").unwrap(),
            &mut &b"FROM busybox\nRUN true\n"[..],
        )
        .unwrap_err();
        assert!(e.is_input_error(), "{e}");
    }
}
