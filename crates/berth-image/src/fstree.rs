//! File-tree operations relative to open directory descriptors, for content a container (or
//! an image) controls: resolving a path *inside* a root the way a `chroot` would, without a
//! chroot and without any symlink leading out, and copying a tree without following links.
//!
//! Used for Docker's volume copy-up (the image's content at a mount point is copied into a
//! new, empty volume) and by the archive API (`docker cp`).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

/// Resolution inside a root: `..` stops at the root, absolute symlinks start over at the
/// root, `/proc` magic links are refused.
pub const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// `openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, retrying the EAGAIN
/// such lookups return when a rename raced with them. `path` is taken as relative to the
/// root even when it starts with `/`; an empty path opens the root itself.
pub fn open_in_root(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    open_resolve(root, path, flags, IN_ROOT)
}

/// `openat2` with explicit resolve flags (see [`open_in_root`]).
pub fn open_resolve(
    root: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlags,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let trimmed: &[u8] = {
        let mut p = path;
        while let [b'/', rest @ ..] = p {
            p = rest;
        }
        if p.is_empty() {
            b"."
        } else {
            p
        }
    };
    let mut tries = 0;
    loop {
        match rfs::openat2(
            root,
            OsStr::from_bytes(trimmed),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve,
        ) {
            Err(Errno::AGAIN) if tries < 64 => tries += 1,
            r => return r,
        }
    }
}

/// `O_PATH | O_DIRECTORY`-free handle flags for [`open_in_root`].
pub fn path_flags() -> OFlags {
    OFlags::PATH
}

/// Flags for reading a directory.
pub fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY
}

/// `/proc/self/fd/<fd>/<name>`: a path that reaches `name` in the directory held by `fd`
/// (for the `l*xattr` calls, which have no `*at` form). The last component is not followed
/// by the `l*` calls.
pub fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> Vec<u8> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    p
}

/// The extended attributes of `dir/name` (not followed), except overlayfs' own.
pub fn read_xattrs(dir: BorrowedFd<'_>, name: &[u8]) -> Vec<(String, Vec<u8>)> {
    let p = proc_path(dir, name);
    let path = OsStr::from_bytes(&p);
    let mut list = vec![0u8; 4096];
    let n = match rfs::llistxattr(path, &mut list[..]) {
        Ok(n) => n,
        Err(Errno::RANGE) => {
            list = vec![0u8; 65536];
            match rfs::llistxattr(path, &mut list[..]) {
                Ok(n) => n,
                Err(_) => return Vec::new(),
            }
        }
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for key in list[..n].split(|&b| b == 0) {
        let Ok(k) = std::str::from_utf8(key) else {
            continue;
        };
        if k.is_empty() || k.starts_with("trusted.overlay.") {
            continue;
        }
        let mut val = vec![0u8; 65536];
        if let Ok(vn) = rfs::lgetxattr(path, k, &mut val[..]) {
            val.truncate(vn);
            out.push((k.to_string(), val));
        }
    }
    out
}

/// What [`copy_tree`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub entries: u64,
    pub bytes: u64,
}

/// Copies the contents of directory `src` into directory `dst`, then gives `dst` the owner,
/// mode, extended attributes and times of `src` (containerd's `fs.CopyDir`, which Docker
/// uses for the copy-up into new volumes). Nothing is followed: symlinks are copied as
/// symlinks, device nodes and fifos are recreated, hard links inside the tree stay hard
/// links, and every object is opened relative to its parent's descriptor, so neither side
/// can redirect the copy elsewhere. Sockets are skipped. Extended attributes the target file
/// system does not support are skipped, as Docker does.
pub fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<CopyStats> {
    let mut c = Copier {
        dst_root: dst,
        links: HashMap::new(),
        stats: CopyStats::default(),
    };
    c.copy_dir(src, dst, &mut Vec::new())?;
    let st = rfs::fstat(src)?;
    copy_meta_fd(src, None, dst, &st)?;
    Ok(c.stats)
}

struct Copier<'a> {
    dst_root: BorrowedFd<'a>,
    /// (dev, ino) of a multiply linked source file → its path in the destination.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: CopyStats,
}

impl Copier<'_> {
    fn copy_dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        rel: &mut Vec<u8>,
    ) -> io::Result<()> {
        let mut names = Vec::new();
        {
            let mut d = rfs::Dir::read_from(src)?;
            while let Some(ent) = d.read() {
                let ent = ent?;
                let n = ent.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(n.to_vec());
                }
            }
        }
        names.sort();
        for name in names {
            let n = OsStr::from_bytes(&name);
            let st = match rfs::statat(src, n, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(s) => s,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let plen = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
            self.stats.entries += 1;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    match rfs::mkdirat(dst, n, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let s = rfs::openat(
                        src,
                        n,
                        dir_flags() | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    let d = rfs::openat(
                        dst,
                        n,
                        dir_flags() | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    self.copy_dir(s.as_fd(), d.as_fd(), rel)?;
                    copy_meta_fd(src, Some(&name), d.as_fd(), &st)?;
                }
                FileType::RegularFile => {
                    let key = (st.st_dev, st.st_ino);
                    if st.st_nlink > 1 {
                        if let Some(first) = self.links.get(&key) {
                            self.link(first, dst, &name)?;
                            rel.truncate(plen);
                            continue;
                        }
                        self.links.insert(key, rel.clone());
                    }
                    let from = File::from(rfs::openat(
                        src,
                        n,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                        Mode::empty(),
                    )?);
                    let mut to = File::from(rfs::openat(
                        dst,
                        n,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )?);
                    // std's copy uses copy_file_range/sendfile between files.
                    self.stats.bytes += io::copy(&mut &from, &mut to)?;
                    copy_meta_fd(src, Some(&name), to.as_fd(), &st)?;
                }
                FileType::Symlink => {
                    let target = rfs::readlinkat(src, n, Vec::new())?;
                    rfs::symlinkat(target.as_c_str(), dst, n)?;
                    copy_meta_at(src, dst, &name, &st, false)?;
                }
                FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                    let ft = FileType::from_raw_mode(st.st_mode);
                    rfs::mknodat(dst, n, ft, Mode::empty(), st.st_rdev)?;
                    copy_meta_at(src, dst, &name, &st, true)?;
                }
                _ => {
                    tracing::debug!(path = %String::from_utf8_lossy(rel), "socket not copied");
                }
            }
            rel.truncate(plen);
        }
        Ok(())
    }

    /// A hard link to the copy made earlier at `first` (relative to the destination root).
    fn link(&self, first: &[u8], dst: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
        let (parent, base) = match first.iter().rposition(|&b| b == b'/') {
            Some(i) => (&first[..i], &first[i + 1..]),
            None => (&b""[..], first),
        };
        let pfd = open_resolve(
            self.dst_root,
            parent,
            dir_flags(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )?;
        rfs::linkat(
            &pfd,
            OsStr::from_bytes(base),
            dst,
            OsStr::from_bytes(name),
            AtFlags::empty(),
        )?;
        Ok(())
    }
}

fn ids(st: &rfs::Stat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

fn stat_times(st: &rfs::Stat) -> Timestamps {
    Timestamps {
        last_access: rfs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rfs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

fn set_xattr_fd(fd: BorrowedFd<'_>, k: &str, v: &[u8]) {
    if let Err(e) = rfs::fsetxattr(fd, k, v, XattrFlags::empty()) {
        tracing::debug!(xattr = k, error = %e, "extended attribute not copied");
    }
}

/// Owner, mode, xattrs and times of a copied file or directory, through its open fd.
/// `src_parent`/`name` locate the source (None: `src` is the directory itself).
fn copy_meta_fd(
    src: BorrowedFd<'_>,
    name: Option<&[u8]>,
    dst: BorrowedFd<'_>,
    st: &rfs::Stat,
) -> io::Result<()> {
    let (u, g) = ids(st);
    // chown first: it clears setuid/setgid bits that chmod then sets.
    rfs::fchown(dst, u, g)?;
    rfs::fchmod(dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    let xattrs = match name {
        Some(n) => read_xattrs(src, n),
        None => read_xattrs(src, b"."),
    };
    for (k, v) in &xattrs {
        set_xattr_fd(dst, k, v);
    }
    rfs::futimens(dst, &stat_times(st))?;
    Ok(())
}

/// The same for objects that are not opened (symlinks, nodes, fifos).
fn copy_meta_at(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &[u8],
    st: &rfs::Stat,
    chmod: bool,
) -> io::Result<()> {
    let n = OsStr::from_bytes(name);
    let (u, g) = ids(st);
    rfs::chownat(dst, n, u, g, AtFlags::SYMLINK_NOFOLLOW)?;
    if chmod {
        // A node this function created an instant ago (Linux has no lchmod); a fifo or
        // device node is not followed by chmod.
        rfs::chmodat(
            dst,
            n,
            Mode::from_raw_mode(st.st_mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    let xattrs = read_xattrs(src, name);
    if !xattrs.is_empty() {
        let p = proc_path(dst, name);
        for (k, v) in &xattrs {
            if let Err(e) =
                rfs::lsetxattr(OsStr::from_bytes(&p), k.as_str(), v, XattrFlags::empty())
            {
                tracing::debug!(xattr = %k, error = %e, "extended attribute not copied");
            }
        }
    }
    rfs::utimensat(dst, n, &stat_times(st), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Whether the directory `dir` has no entries besides `.` and `..`.
pub fn dir_is_empty(dir: BorrowedFd<'_>) -> io::Result<bool> {
    let mut d = rfs::Dir::read_from(dir)?;
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Bytes used by the tree below `dir` (Docker's `directory.Size`): the sizes of every
/// non-directory, each inode counted once, walked without following symlinks.
pub fn tree_size(dir: BorrowedFd<'_>) -> io::Result<u64> {
    fn walk(
        dir: BorrowedFd<'_>,
        seen: &mut std::collections::HashSet<(u64, u64)>,
    ) -> io::Result<u64> {
        let mut names = Vec::new();
        {
            let mut d = rfs::Dir::read_from(dir)?;
            while let Some(ent) = d.read() {
                let ent = ent?;
                let n = ent.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(n.to_vec());
                }
            }
        }
        let mut total = 0u64;
        for name in names {
            let n = OsStr::from_bytes(&name);
            let st = match rfs::statat(dir, n, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(s) => s,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                match rfs::openat(
                    dir,
                    n,
                    dir_flags() | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(sub) => total += walk(sub.as_fd(), seen)?,
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => {}
                    Err(e) => return Err(e.into()),
                }
            } else if seen.insert((st.st_dev, st.st_ino)) {
                total += st.st_size.max(0) as u64;
            }
        }
        Ok(total)
    }
    walk(dir, &mut std::collections::HashSet::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    fn open_dir(p: &Path) -> OwnedFd {
        rfs::open(p, dir_flags() | OFlags::CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn in_root_resolution_never_leaves_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), b"inside").unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("rel")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("abs")).unwrap();
        let fd = open_dir(&root);
        for p in [
            &b"/etc/passwd"[..],
            b"up/etc/passwd",
            b"rel/etc/passwd",
            b"abs",
            b"../../etc/passwd",
            b"/../etc/./passwd",
        ] {
            let f = open_in_root(fd.as_fd(), p, OFlags::RDONLY).unwrap();
            let s = std::io::read_to_string(File::from(f)).unwrap();
            assert_eq!(s, "inside", "{}", String::from_utf8_lossy(p));
        }
        assert!(open_in_root(fd.as_fd(), b"/proc/self/root/etc/passwd", OFlags::RDONLY).is_err());
        let r = open_in_root(fd.as_fd(), b"", dir_flags()).unwrap();
        assert_eq!(
            rfs::fstat(&r).unwrap().st_ino,
            std::fs::metadata(&root).unwrap().ino()
        );
    }

    #[test]
    fn copy_keeps_owners_modes_links_and_xattrs() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let dst = tmp.path().join("dst");
        std::fs::create_dir_all(src.join("sub/deep")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("sub/f"), b"hello").unwrap();
        std::fs::hard_link(src.join("sub/f"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("link")).unwrap();
        std::os::unix::fs::chown(src.join("sub/f"), Some(1234), Some(5678)).unwrap();
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o4750))
            .unwrap();
        std::os::unix::fs::lchown(src.join("link"), Some(42), Some(43)).unwrap();
        std::os::unix::fs::chown(&src, Some(1000), Some(1001)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o711)).unwrap();
        nix::unistd::mkfifo(
            &src.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o640),
        )
        .unwrap();
        let xattr_ok =
            rfs::setxattr(src.join("sub/f"), "user.berth", b"v", XattrFlags::empty()).is_ok();

        let s = open_dir(&src);
        let d = open_dir(&dst);
        let stats = copy_tree(s.as_fd(), d.as_fd()).unwrap();
        assert_eq!(stats.bytes, 5);

        assert_eq!(std::fs::read(dst.join("sub/f")).unwrap(), b"hello");
        let m = std::fs::metadata(dst.join("sub/f")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o4750));
        assert_eq!(
            m.ino(),
            std::fs::metadata(dst.join("hard")).unwrap().ino(),
            "hard links stay hard links"
        );
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/shadow")
        );
        let l = std::fs::symlink_metadata(dst.join("link")).unwrap();
        assert_eq!((l.uid(), l.gid()), (42, 43));
        {
            use std::os::unix::fs::FileTypeExt;
            let ft = std::fs::symlink_metadata(dst.join("fifo"))
                .unwrap()
                .file_type();
            assert!(ft.is_fifo());
        }
        assert_eq!(
            std::fs::symlink_metadata(dst.join("fifo")).unwrap().mode() & 0o7777,
            0o640
        );
        let root = std::fs::metadata(&dst).unwrap();
        assert_eq!(
            (root.uid(), root.gid(), root.mode() & 0o7777),
            (1000, 1001, 0o711)
        );
        assert!(dst.join("sub/deep").is_dir());
        assert_eq!(
            std::fs::metadata(dst.join("sub")).unwrap().mtime(),
            std::fs::metadata(src.join("sub")).unwrap().mtime()
        );
        if xattr_ok {
            let mut v = [0u8; 8];
            let n = rfs::getxattr(dst.join("sub/f"), "user.berth", &mut v[..]).unwrap();
            assert_eq!(&v[..n], b"v");
        }
        assert!(!dir_is_empty(d.as_fd()).unwrap());
        let e = tmp.path().join("empty");
        std::fs::create_dir(&e).unwrap();
        assert!(dir_is_empty(open_dir(&e).as_fd()).unwrap());
        // 5 bytes of sub/f (its hard link counted once) + the symlink's target length.
        assert_eq!(
            tree_size(d.as_fd()).unwrap(),
            5 + "/etc/shadow".len() as u64
        );
    }
}
