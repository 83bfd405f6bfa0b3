//! File operations confined to a root directory (a build context, an image rootfs): every
//! path is resolved with `openat2(RESOLVE_IN_ROOT)` relative to an open handle of the root, so
//! `..`, absolute symlinks and symlinks that climb out all stay inside it, and the last
//! component of what is created or copied is never followed.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Opens `dir` as an `O_PATH` directory handle to resolve paths in.
pub fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    rfs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// `path` relative to the root ("." for the root itself).
fn rel(path: &Path) -> &Path {
    let r = path.strip_prefix("/").unwrap_or(path);
    if r.as_os_str().is_empty() {
        Path::new(".")
    } else {
        r
    }
}

/// openat2 with RESOLVE_IN_ROOT, retrying the EAGAIN such lookups may return on a race.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let p = rel(path);
    loop {
        match rfs::openat2(root, p, flags | OFlags::CLOEXEC, Mode::empty(), IN_ROOT) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// Splits an absolute (or root-relative) path into its parent and last component. `None`
/// for the root itself.
pub fn split_last(path: &Path) -> Option<(PathBuf, &OsStr)> {
    let mut parent = PathBuf::from("/");
    let mut last = None;
    for c in path.components() {
        if let Some(l) = last.take() {
            parent.push(l);
        }
        match c {
            Component::Normal(n) => last = Some(n),
            Component::ParentDir => {
                parent.pop();
            }
            _ => {}
        }
    }
    last.map(|l| (parent, l))
}

/// The metadata of `path` inside the root, following symlinks inside the root (as the
/// container would see it). `None` when it does not exist.
pub fn stat_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<Option<rfs::Stat>, Errno> {
    match open_in_root(root, path, OFlags::PATH) {
        Ok(fd) => rfs::fstat(&fd).map(Some),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The metadata of `path` itself (a symlink is not followed), its parents resolved in the
/// root.
pub fn lstat_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<Option<rfs::Stat>, Errno> {
    let Some((parent, name)) = split_last(path) else {
        return stat_in_root(root, Path::new("/"));
    };
    let dir = match open_in_root(root, &parent, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(d) => d,
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(e),
    };
    match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates `path` and its missing parents inside the root (mode 0755, owned by `owner` when
/// given, like Docker's `MkdirAllAndChown` with only-new), following existing symlinks inside
/// the root. Returns a directory handle.
pub fn mkdir_all_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    owner: Option<(u32, u32)>,
) -> Result<OwnedFd, Errno> {
    match open_in_root(root, path, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e),
    }
    let mut cur = PathBuf::from("/");
    let mut dir = open_in_root(root, &cur, OFlags::RDONLY | OFlags::DIRECTORY)?;
    for c in path.components() {
        let name = match c {
            Component::Normal(n) => n,
            Component::ParentDir => {
                cur.pop();
                dir = open_in_root(root, &cur, OFlags::RDONLY | OFlags::DIRECTORY)?;
                continue;
            }
            _ => continue,
        };
        cur.push(name);
        dir = match open_in_root(root, &cur, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => match rfs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    let fd = rfs::openat(
                        &dir,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    rfs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                    if let Some((u, g)) = owner {
                        rfs::fchown(
                            &fd,
                            Some(rfs::Uid::from_raw(u)),
                            Some(rfs::Gid::from_raw(g)),
                        )?;
                    }
                    fd
                }
                Err(Errno::EXIST) => open_in_root(root, &cur, OFlags::RDONLY | OFlags::DIRECTORY)?,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// Removes whatever is at `dir/name` (a directory recursively), never following it.
pub fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
        Ok(st) if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory => {
            remove_tree_at(dir, name)
        }
        Ok(_) => rfs::unlinkat(dir, name, AtFlags::empty()),
    }
}

fn remove_tree_at(parent: BorrowedFd<'_>, base: &OsStr) -> Result<(), Errno> {
    let fd = rfs::openat(
        parent,
        base,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for (name, is_dir) in list_dir(fd.as_fd())? {
        let n = OsStr::from_bytes(&name);
        if is_dir {
            remove_tree_at(fd.as_fd(), n)?;
        } else {
            match rfs::unlinkat(&fd, n, AtFlags::empty()) {
                Err(Errno::ISDIR) => remove_tree_at(fd.as_fd(), n)?,
                r => r?,
            }
        }
    }
    rfs::unlinkat(parent, base, AtFlags::REMOVEDIR)
}

/// The entries of an open directory (without `.` and `..`), sorted by name, with whether
/// each is a directory (as `d_type` says; `lstat` when unknown).
pub fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<(Vec<u8>, bool)>, Errno> {
    let mut out = Vec::new();
    let fd = rfs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = rfs::Dir::read_from(&fd)?;
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        let is_dir = match ent.file_type() {
            rfs::FileType::Directory => true,
            rfs::FileType::Unknown => {
                let st = rfs::statat(dir, OsStr::from_bytes(n), AtFlags::SYMLINK_NOFOLLOW)?;
                rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory
            }
            _ => false,
        };
        out.push((n.to_vec(), is_dir));
    }
    out.sort();
    Ok(out)
}

/// Reads a whole regular file inside the root, at most `limit` bytes.
pub fn read_in_root(root: BorrowedFd<'_>, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let fd = open_in_root(root, path, OFlags::RDONLY)?;
    let f = File::from(fd);
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut out = Vec::new();
    f.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// An open directory handle usable where a `BorrowedFd` is needed.
pub fn fd(f: &OwnedFd) -> BorrowedFd<'_> {
    f.as_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_last_handles_dots() {
        let (p, n) = split_last(Path::new("/a/b/c")).unwrap();
        assert_eq!(p, PathBuf::from("/a/b"));
        assert_eq!(n, "c");
        let (p, n) = split_last(Path::new("/a/../b")).unwrap();
        assert_eq!(p, PathBuf::from("/"));
        assert_eq!(n, "b");
        assert!(split_last(Path::new("/")).is_none());
    }

    #[test]
    fn resolution_stays_in_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(d.path().join("outside"), "secret").unwrap();
        std::os::unix::fs::symlink("/../../outside", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("rel")).unwrap();
        let r = open_root(&root).unwrap();
        assert!(read_in_root(r.as_fd(), Path::new("a/up"), 100).is_err());
        assert!(read_in_root(r.as_fd(), Path::new("rel"), 100).is_err());
        assert!(read_in_root(r.as_fd(), Path::new("../outside"), 100).is_err());
        // mkdir through a symlink that points outside lands inside.
        std::os::unix::fs::symlink("/", root.join("slash")).unwrap();
        mkdir_all_in_root(r.as_fd(), Path::new("/slash/made/here"), None).unwrap();
        assert!(root.join("made/here").is_dir());
        assert!(!Path::new("/made").exists());
    }
}
