//! `COPY` and `ADD` of local sources: source resolution (wildcards, Docker's directory and
//! trailing-slash rules), the content digest of exactly the files read (the cache key), and
//! the copy itself into a mounted rootfs. Sources resolve inside their root (the context or
//! a stage's rootfs); destinations inside the image rootfs; symlinks inside a copied tree
//! are copied as symlinks, never followed.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timestamps};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};
use crate::fsops;

/// One resolved source of a `COPY`/`ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The path inside the source root, as matched (no leading `/`).
    pub path: PathBuf,
    /// `file:<hex>` or `dir:<hex>`: the digest of names, types, modes, owners and contents.
    pub hash: String,
}

fn errno(what: &str, p: &Path, e: Errno) -> BuildError {
    BuildError::Step(format!("{what} {}: {}", p.display(), io::Error::from(e)))
}

/// Whether a source names a pattern (Go's `filepath.Match` meta characters).
pub fn has_wildcards(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Go's `filepath.Match` (a `*` never matches `/`) as the glob crate implements it.
fn glob_match(pattern: &str, name: &str) -> bool {
    let Ok(p) = glob::Pattern::new(&pattern.replace("[^", "[!")) else {
        return false;
    };
    p.matches_with(
        name,
        glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        },
    )
}

/// Cleans a source as Docker does (`./a` → `a`, leading `/` dropped).
pub fn clean_source(orig: &str) -> String {
    let mut s = orig.trim_start_matches('/');
    while let Some(r) = s.strip_prefix("./") {
        s = r.trim_start_matches('/');
    }
    s.to_string()
}

/// Resolves the sources of one instruction in `root` (wildcards expanded against every path
/// of the root, as Docker's legacy builder does) and hashes each. `missing` builds the error
/// for a source that does not exist (its text depends on where the source came from).
pub fn resolve_sources(
    root: BorrowedFd<'_>,
    sources: &[String],
    cache: &dyn Fn(&Path) -> Option<String>,
    remember: &dyn Fn(&Path, &str),
    missing: &dyn Fn(&str) -> BuildError,
) -> Result<Vec<SourceInfo>> {
    let mut out = Vec::new();
    for orig in sources {
        let src = clean_source(orig);
        if has_wildcards(&src) {
            let mut matched = Vec::new();
            walk_paths(root, Path::new(""), &mut |rel| {
                if glob_match(&src, &rel.to_string_lossy()) {
                    matched.push(rel.to_path_buf());
                }
            })?;
            for m in matched {
                let hash = source_hash(root, &m, cache, remember)?;
                out.push(SourceInfo { path: m, hash });
            }
            continue;
        }
        let p = PathBuf::from(if src.is_empty() { "." } else { &src });
        match fsops::stat_in_root(root, &p) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(missing(&src)),
            Err(Errno::NOTDIR) => return Err(missing(&src)),
            Err(e) => return Err(errno("stat", &p, e)),
        }
        let hash = source_hash(root, &p, cache, remember)?;
        out.push(SourceInfo { path: p, hash });
    }
    if out.is_empty() {
        return Err(BuildError::Step("no source files were specified".into()));
    }
    Ok(out)
}

/// Calls `f` with every path below `dir` (relative to the root), parents first, not
/// following symlinks.
fn walk_paths(root: BorrowedFd<'_>, dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    let fd = fsops::open_in_root(root, dir, OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(|e| errno("open", dir, e))?;
    for (name, is_dir) in fsops::list_dir(fd.as_fd()).map_err(|e| errno("list", dir, e))? {
        let rel = dir.join(OsStr::from_bytes(&name));
        f(&rel);
        if is_dir {
            walk_paths(root, &rel, f)?;
        }
    }
    Ok(())
}

/// The digest of a source (following a symlink at the top, inside the root): for a file
/// `file:<sha256 of mode, owner and content>`, for a directory `dir:<sha256 over every
/// entry's name, type, mode, owner, size and content or link target>`. Never mtimes.
pub fn source_hash(
    root: BorrowedFd<'_>,
    p: &Path,
    cache: &dyn Fn(&Path) -> Option<String>,
    remember: &dyn Fn(&Path, &str),
) -> Result<String> {
    if let Some(h) = cache(p) {
        return Ok(h);
    }
    let fd = fsops::open_in_root(root, p, OFlags::PATH).map_err(|e| errno("stat", p, e))?;
    let st = rfs::fstat(&fd).map_err(|e| errno("stat", p, e))?;
    let h = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let dir = fsops::open_in_root(root, p, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| errno("open", p, e))?;
        let mut hasher = Sha256::new();
        hash_meta(&mut hasher, b".", &st);
        hash_tree(&mut hasher, dir.as_fd(), &mut Vec::new())?;
        format!("dir:{}", hex::encode(hasher.finalize()))
    } else {
        let mut hasher = Sha256::new();
        hash_meta(&mut hasher, b"", &st);
        if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
            let f =
                fsops::open_in_root(root, p, OFlags::RDONLY).map_err(|e| errno("open", p, e))?;
            hash_content(&mut hasher, File::from(f)).map_err(BuildError::internal)?;
        }
        format!("file:{}", hex::encode(hasher.finalize()))
    };
    remember(p, &h);
    Ok(h)
}

fn hash_meta(h: &mut Sha256, name: &[u8], st: &rfs::Stat) {
    h.update((name.len() as u64).to_le_bytes());
    h.update(name);
    h.update(st.st_mode.to_le_bytes());
    h.update(st.st_uid.to_le_bytes());
    h.update(st.st_gid.to_le_bytes());
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft == FileType::RegularFile || ft == FileType::Symlink {
        h.update((st.st_size as u64).to_le_bytes());
    }
    if ft == FileType::CharacterDevice || ft == FileType::BlockDevice {
        h.update(st.st_rdev.to_le_bytes());
    }
}

fn hash_content(h: &mut Sha256, mut f: File) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

fn hash_tree(h: &mut Sha256, dir: BorrowedFd<'_>, prefix: &mut Vec<u8>) -> Result<()> {
    let show = |p: &[u8]| PathBuf::from(OsStr::from_bytes(p));
    for (name, _) in fsops::list_dir(dir).map_err(|e| errno("list", &show(prefix), e))? {
        let n = OsStr::from_bytes(&name);
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(&name);
        let st = rfs::statat(dir, n, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| errno("stat", &show(prefix), e))?;
        hash_meta(h, prefix, &st);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let sub = rfs::openat(
                    dir,
                    n,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno("open", &show(prefix), e))?;
                hash_tree(h, sub.as_fd(), prefix)?;
            }
            FileType::RegularFile => {
                let f = rfs::openat(
                    dir,
                    n,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno("open", &show(prefix), e))?;
                hash_content(h, File::from(f)).map_err(BuildError::internal)?;
            }
            FileType::Symlink => {
                let t = rfs::readlinkat(dir, n, Vec::new())
                    .map_err(|e| errno("readlink", &show(prefix), e))?;
                h.update(t.as_bytes());
            }
            _ => {}
        }
        prefix.truncate(len);
    }
    Ok(())
}

/// How copied files are owned and moded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOwner {
    /// `Some((uid, gid))`: every copied entry gets it (Docker: 0:0 by default, `--chown`);
    /// `None`: kept from the source (`COPY --from` without `--chown`).
    pub owner: Option<(u32, u32)>,
    /// `--chmod`: the permission bits of every copied entry.
    pub chmod: Option<u32>,
}

/// Copies one source (`src` in `src_root`) to `dest` (an absolute path in the rootfs
/// `dst_root`), following Docker's rules: a directory's contents go into `dest`; a file goes
/// to `dest/<name>` when `dest` ends with `/` or is an existing directory, else to `dest`.
/// With `extract`, a local tar archive (plain or compressed) is unpacked into `dest` instead.
pub fn copy_source(
    src_root: BorrowedFd<'_>,
    src: &Path,
    dst_root: BorrowedFd<'_>,
    dest: &str,
    own: CopyOwner,
    extract: bool,
) -> Result<()> {
    let st = fsops::stat_in_root(src_root, src)
        .map_err(|e| errno("stat", src, e))?
        .ok_or_else(|| BuildError::Step(format!("stat {}: file does not exist", src.display())))?;
    let new_owner = own.owner;
    let dest_path = Path::new(dest);
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let existed = matches!(fsops::stat_in_root(dst_root, dest_path), Ok(Some(_)));
        let dst = fsops::mkdir_all_in_root(dst_root, dest_path, new_owner.or(Some((0, 0))))
            .map_err(|e| errno("mkdir", dest_path, e))?;
        let sdir = fsops::open_in_root(src_root, src, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| errno("open", src, e))?;
        copy_tree(sdir.as_fd(), dst.as_fd(), own)?;
        // The directory's own metadata comes from the source (Docker's tar copy of `.`); its
        // owner changes only when it was created by this copy.
        let mode = own.chmod.unwrap_or(st.st_mode & 0o7777);
        if !existed {
            if let Some((u, g)) = new_owner {
                chown(dst.as_fd(), u, g).map_err(|e| errno("chown", dest_path, e))?;
            } else {
                chown(dst.as_fd(), st.st_uid, st.st_gid)
                    .map_err(|e| errno("chown", dest_path, e))?;
            }
        }
        rfs::fchmod(&dst, Mode::from_raw_mode(mode)).map_err(|e| errno("chmod", dest_path, e))?;
        set_times(dst.as_fd(), &st).map_err(|e| errno("set times", dest_path, e))?;
        return Ok(());
    }
    if extract && FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
        if let Some(()) = try_extract(src_root, src, dst_root, dest_path, new_owner)? {
            return Ok(());
        }
    }
    let dest_is_dir = dest.ends_with('/')
        || matches!(fsops::stat_in_root(dst_root, dest_path),
            Ok(Some(d)) if FileType::from_raw_mode(d.st_mode) == FileType::Directory);
    let target: PathBuf = if dest_is_dir {
        let base = src
            .file_name()
            .map(|b| b.to_os_string())
            .unwrap_or_else(|| ".".into());
        dest_path.join(base)
    } else {
        dest_path.to_path_buf()
    };
    let (parent, name) = fsops::split_last(&target)
        .ok_or_else(|| BuildError::Step(format!("cannot copy a file onto {dest}")))?;
    let pdir = fsops::mkdir_all_in_root(dst_root, &parent, new_owner.or(Some((0, 0))))
        .map_err(|e| errno("mkdir", &parent, e))?;
    let f =
        fsops::open_in_root(src_root, src, OFlags::RDONLY).map_err(|e| errno("open", src, e))?;
    copy_entry_from_fd(f, &st, pdir.as_fd(), name, own, &target)
}

/// Unpacks `src` into `dest` when it is a tar archive (plain or compressed); `None` when it
/// is not an archive (then it is copied as a file, as Docker does).
fn try_extract(
    src_root: BorrowedFd<'_>,
    src: &Path,
    dst_root: BorrowedFd<'_>,
    dest: &Path,
    owner: Option<(u32, u32)>,
) -> Result<Option<()>> {
    let f = File::from(
        fsops::open_in_root(src_root, src, OFlags::RDONLY).map_err(|e| errno("open", src, e))?,
    );
    if !is_archive(&f)? {
        return Ok(None);
    }
    let dst = fsops::mkdir_all_in_root(dst_root, dest, owner.or(Some((0, 0))))
        .map_err(|e| errno("mkdir", dest, e))?;
    let f = File::from(
        fsops::open_in_root(src_root, src, OFlags::RDONLY).map_err(|e| errno("open", src, e))?,
    );
    let (_, mut r) = berth_image::compress::decompress(f)
        .map_err(|e| BuildError::Step(format!("failed to copy files: {e}")))?;
    // Applied beneath the destination directory's handle (resolved inside the rootfs):
    // nothing lands outside it.
    berth_image::tarapply::apply_tar_at(
        dst,
        &mut r,
        berth_image::tarapply::ApplyOptions {
            plain: true,
            strip_absolute: true,
        },
    )
    .map_err(|e| BuildError::Step(format!("failed to copy files: {e}")))?;
    Ok(Some(()))
}

/// Whether `f` starts like a tar archive, compressed or not (Docker's `isArchivePath`).
fn is_archive(f: &File) -> Result<bool> {
    let clone = f.try_clone()?;
    let Ok((_, mut r)) = berth_image::compress::decompress(clone) else {
        return Ok(false);
    };
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return Ok(false),
        }
    }
    if n < 512 {
        return Ok(false);
    }
    // A tar header: checksum field valid.
    let sum: u32 = head
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    let field = String::from_utf8_lossy(&head[148..156]);
    let stored = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8);
    Ok(stored == Ok(sum))
}

fn chown(fd: BorrowedFd<'_>, u: u32, g: u32) -> std::result::Result<(), Errno> {
    rfs::fchown(fd, Some(rfs::Uid::from_raw(u)), Some(rfs::Gid::from_raw(g)))
}

fn set_times(fd: BorrowedFd<'_>, st: &rfs::Stat) -> std::result::Result<(), Errno> {
    rfs::futimens(fd, &times_of(st))
}

fn times_of(st: &rfs::Stat) -> Timestamps {
    Timestamps {
        last_access: rfs::Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rfs::Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Copies the contents of directory `src` into directory `dst` (merging with what is there).
fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, own: CopyOwner) -> Result<()> {
    for (name, _) in fsops::list_dir(src).map_err(|e| errno("list", Path::new("."), e))? {
        let n = OsStr::from_bytes(&name);
        let shown = PathBuf::from(n);
        let st =
            rfs::statat(src, n, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| errno("stat", &shown, e))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                match rfs::statat(dst, n, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(d) if FileType::from_raw_mode(d.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        fsops::remove_at(dst, n).map_err(|e| errno("remove", &shown, e))?;
                        rfs::mkdirat(dst, n, Mode::from_raw_mode(0o700))
                            .map_err(|e| errno("mkdir", &shown, e))?;
                    }
                    Err(Errno::NOENT) => rfs::mkdirat(dst, n, Mode::from_raw_mode(0o700))
                        .map_err(|e| errno("mkdir", &shown, e))?,
                    Err(e) => return Err(errno("stat", &shown, e)),
                }
                let sd = rfs::openat(
                    src,
                    n,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno("open", &shown, e))?;
                let dd = rfs::openat(
                    dst,
                    n,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno("open", &shown, e))?;
                copy_tree(sd.as_fd(), dd.as_fd(), own)?;
                let (u, g) = own.owner.unwrap_or((st.st_uid, st.st_gid));
                chown(dd.as_fd(), u, g).map_err(|e| errno("chown", &shown, e))?;
                let mode = own.chmod.unwrap_or(st.st_mode & 0o7777);
                rfs::fchmod(&dd, Mode::from_raw_mode(mode))
                    .map_err(|e| errno("chmod", &shown, e))?;
                set_times(dd.as_fd(), &st).map_err(|e| errno("set times", &shown, e))?;
            }
            FileType::RegularFile => {
                let f = rfs::openat(
                    src,
                    n,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno("open", &shown, e))?;
                copy_entry_from_fd(f, &st, dst, n, own, &shown)?;
            }
            FileType::Symlink => {
                let t = rfs::readlinkat(src, n, Vec::new())
                    .map_err(|e| errno("readlink", &shown, e))?;
                fsops::remove_at(dst, n).map_err(|e| errno("remove", &shown, e))?;
                rfs::symlinkat(t.as_c_str(), dst, n).map_err(|e| errno("symlink", &shown, e))?;
                let (u, g) = own.owner.unwrap_or((st.st_uid, st.st_gid));
                rfs::chownat(
                    dst,
                    n,
                    Some(rfs::Uid::from_raw(u)),
                    Some(rfs::Gid::from_raw(g)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| errno("chown", &shown, e))?;
                rfs::utimensat(dst, n, &times_of(&st), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| errno("set times", &shown, e))?;
            }
            ft @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
                fsops::remove_at(dst, n).map_err(|e| errno("remove", &shown, e))?;
                rfs::mknodat(dst, n, ft, Mode::from_raw_mode(0o600), st.st_rdev as _)
                    .map_err(|e| errno("mknod", &shown, e))?;
                let (u, g) = own.owner.unwrap_or((st.st_uid, st.st_gid));
                rfs::chownat(
                    dst,
                    n,
                    Some(rfs::Uid::from_raw(u)),
                    Some(rfs::Gid::from_raw(g)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| errno("chown", &shown, e))?;
                let mode = own.chmod.unwrap_or(st.st_mode & 0o7777);
                rfs::chmodat(dst, n, Mode::from_raw_mode(mode), AtFlags::empty())
                    .map_err(|e| errno("chmod", &shown, e))?;
            }
            _ => {
                tracing::debug!(entry = %shown.display(), "skipping a socket in a copy");
            }
        }
    }
    Ok(())
}

/// Writes the regular file open as `src` (metadata `st`) to `dir/name`, replacing what is
/// there without following it.
fn copy_entry_from_fd(
    src: OwnedFd,
    st: &rfs::Stat,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    own: CopyOwner,
    shown: &Path,
) -> Result<()> {
    let create = || {
        rfs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    };
    let out = match create() {
        Err(Errno::EXIST) => {
            fsops::remove_at(dir, name).map_err(|e| errno("remove", shown, e))?;
            create()
        }
        r => r,
    }
    .map_err(|e| errno("create", shown, e))?;
    let mut out = File::from(out);
    let mut input = File::from(src);
    io::copy(&mut input, &mut out)
        .map_err(|e| BuildError::Step(format!("copy {}: {e}", shown.display())))?;
    out.flush()?;
    let (u, g) = own.owner.unwrap_or((st.st_uid, st.st_gid));
    chown(out.as_fd(), u, g).map_err(|e| errno("chown", shown, e))?;
    let mode = own.chmod.unwrap_or(st.st_mode & 0o7777);
    rfs::fchmod(&out, Mode::from_raw_mode(mode)).map_err(|e| errno("chmod", shown, e))?;
    set_times(out.as_fd(), st).map_err(|e| errno("set times", shown, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn no_cache(_: &Path) -> Option<String> {
        None
    }
    fn no_remember(_: &Path, _: &str) {}
    fn missing(s: &str) -> BuildError {
        BuildError::Step(format!("missing {s}"))
    }

    #[test]
    fn glob_is_go_like() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "d/a.txt"));
        assert!(glob_match("d/*", "d/a.txt"));
        assert!(glob_match("[^b]*", "a"));
        assert_eq!(clean_source("./a/b"), "a/b");
        assert_eq!(clean_source("/a"), "a");
    }

    #[test]
    fn hashes_ignore_mtime_and_see_content_and_modes() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path();
        std::fs::create_dir(c.join("dir")).unwrap();
        std::fs::write(c.join("dir/a"), "1").unwrap();
        std::os::unix::fs::symlink("a", c.join("dir/l")).unwrap();
        let root = fsops::open_root(c).unwrap();
        let h1 = source_hash(root.as_fd(), Path::new("dir"), &no_cache, &no_remember).unwrap();
        assert!(h1.starts_with("dir:"));
        // touching changes nothing
        let f = File::options().write(true).open(c.join("dir/a")).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let h2 = source_hash(root.as_fd(), Path::new("dir"), &no_cache, &no_remember).unwrap();
        assert_eq!(h1, h2);
        std::fs::set_permissions(c.join("dir/a"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let h3 = source_hash(root.as_fd(), Path::new("dir"), &no_cache, &no_remember).unwrap();
        assert_ne!(h2, h3);
        std::fs::write(c.join("dir/a"), "2").unwrap();
        let h4 = source_hash(root.as_fd(), Path::new("dir"), &no_cache, &no_remember).unwrap();
        assert_ne!(h3, h4);
        let fh = source_hash(root.as_fd(), Path::new("dir/a"), &no_cache, &no_remember).unwrap();
        assert!(fh.starts_with("file:"));
    }

    #[test]
    fn copies_with_docker_rules_and_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        let rootfs = d.path().join("rootfs");
        std::fs::create_dir_all(ctx.join("dir/sub")).unwrap();
        std::fs::create_dir_all(rootfs.join("existing")).unwrap();
        std::fs::write(ctx.join("f.txt"), "hello").unwrap();
        std::fs::write(ctx.join("dir/sub/x"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("dir/abs")).unwrap();
        std::os::unix::fs::symlink("../../outside", ctx.join("escape")).unwrap();
        std::fs::write(d.path().join("outside"), "secret").unwrap();
        std::os::unix::fs::symlink("/", rootfs.join("up")).unwrap();
        let c = fsops::open_root(&ctx).unwrap();
        let r = fsops::open_root(&rootfs).unwrap();
        let own = CopyOwner {
            owner: Some((0, 0)),
            chmod: None,
        };
        copy_source(
            c.as_fd(),
            Path::new("f.txt"),
            r.as_fd(),
            "/new/file",
            own,
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read(rootfs.join("new/file")).unwrap(), b"hello");
        copy_source(
            c.as_fd(),
            Path::new("f.txt"),
            r.as_fd(),
            "/existing",
            own,
            false,
        )
        .unwrap();
        assert!(rootfs.join("existing/f.txt").is_file());
        copy_source(
            c.as_fd(),
            Path::new("f.txt"),
            r.as_fd(),
            "/slash/",
            own,
            false,
        )
        .unwrap();
        assert!(rootfs.join("slash/f.txt").is_file());
        copy_source(c.as_fd(), Path::new("dir"), r.as_fd(), "/d", own, false).unwrap();
        assert!(rootfs.join("d/sub/x").is_file());
        assert_eq!(
            std::fs::read_link(rootfs.join("d/abs")).unwrap(),
            PathBuf::from("/etc/passwd")
        );
        // A destination through a rootfs symlink to / stays in the rootfs.
        copy_source(
            c.as_fd(),
            Path::new("f.txt"),
            r.as_fd(),
            "/up/tmp/",
            own,
            false,
        )
        .unwrap();
        assert!(rootfs.join("tmp/f.txt").is_file());
        // A context symlink leading outside resolves inside the context: not found.
        let e = resolve_sources(
            c.as_fd(),
            &["escape".to_string()],
            &no_cache,
            &no_remember,
            &missing,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "missing escape");
        let e = resolve_sources(
            c.as_fd(),
            &["../outside".to_string()],
            &no_cache,
            &no_remember,
            &missing,
        );
        assert!(e.is_err());
        let found = resolve_sources(
            c.as_fd(),
            &["*.txt".to_string()],
            &no_cache,
            &no_remember,
            &missing,
        )
        .unwrap();
        assert_eq!(found.len(), 1);
    }
}
