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

/// User and group names for tar headers (a container's `/etc/passwd` and `/etc/group`).
#[derive(Debug, Clone, Default)]
pub struct IdNames {
    pub users: HashMap<u32, String>,
    pub groups: HashMap<u32, String>,
}

impl IdNames {
    /// Parses `passwd` and `group` contents (`name:x:id:…`).
    pub fn parse(passwd: &str, group: &str) -> IdNames {
        let ids = |text: &str| {
            let mut m = HashMap::new();
            for line in text.lines() {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() >= 3 && !f[0].is_empty() && !f[0].starts_with('#') {
                    if let Ok(id) = f[2].parse::<u32>() {
                        m.entry(id).or_insert_with(|| f[0].to_string());
                    }
                }
            }
            m
        };
        IdNames {
            users: ids(passwd),
            groups: ids(group),
        }
    }
}

/// What [`tar_resource`] archives: `name` in the directory `dir`, or `dir` itself with its
/// contents when `name` is `None`; its entry is called `rebase` in the archive (moby's
/// `TarResourceRebaseOpts`), the entries below it `rebase/…`. An empty `rebase` (the container's
/// root) gives `/` and `/etc/…`, as Docker writes them.
pub struct TarResource<'a> {
    pub dir: BorrowedFd<'a>,
    pub name: Option<&'a [u8]>,
    pub rebase: &'a [u8],
}

/// Writes the resource as a tar stream the way Docker's archive API does (`docker cp`): a
/// depth-first walk in name order that never follows symlinks, type bits in the mode field,
/// owner names, hard links between files of the resource, `security.capability` kept;
/// sockets are skipped. A file that changes size while it is read keeps its header's size.
pub fn tar_resource(
    res: &TarResource<'_>,
    names: &IdNames,
    w: &mut dyn io::Write,
) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut t = Tarrer {
        names,
        links: &mut links,
    };
    match res.name {
        Some(name) => {
            let st = rfs::statat(res.dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)?;
            t.item(&mut b, res.dir, name, res.rebase, &st)?;
        }
        None => {
            let st = rfs::fstat(res.dir)?;
            t.dir_header(&mut b, res.dir, None, res.rebase, &st)?;
            t.children(&mut b, res.dir, res.rebase)?;
        }
    }
    b.into_inner()?;
    Ok(())
}

struct Tarrer<'a> {
    names: &'a IdNames,
    links: &'a mut HashMap<(u64, u64), Vec<u8>>,
}

fn join_name(prefix: &[u8], child: &[u8]) -> Vec<u8> {
    let mut n = prefix.to_vec();
    if !n.ends_with(b"/") {
        n.push(b'/');
    }
    n.extend_from_slice(child);
    n
}

impl Tarrer<'_> {
    fn header(&self, st: &rfs::Stat, ty: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        // Docker writes the file type bits too (0100644).
        h.set_mode(st.st_mode);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        if let Some(u) = self.names.users.get(&st.st_uid) {
            let _ = h.set_username(u);
        }
        if let Some(g) = self.names.groups.get(&st.st_gid) {
            let _ = h.set_groupname(g);
        }
        h
    }

    fn children<W: io::Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        dir: BorrowedFd<'_>,
        prefix: &[u8],
    ) -> io::Result<()> {
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
        names.sort();
        for name in names {
            let st = match rfs::statat(dir, OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(s) => s,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            self.item(b, dir, &name, &join_name(prefix, &name), &st)?;
        }
        Ok(())
    }

    fn dir_header<W: io::Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        parent: BorrowedFd<'_>,
        name: Option<&[u8]>,
        entry: &[u8],
        st: &rfs::Stat,
    ) -> io::Result<()> {
        let mut h = self.header(st, tar::EntryType::Directory);
        let mut n = entry.to_vec();
        if !n.ends_with(b"/") {
            n.push(b'/');
        }
        self.pax_caps(b, parent, name.unwrap_or(b"."))?;
        append_raw(b, &mut h, &n, None, io::empty())
    }

    fn pax_caps<W: io::Write>(
        &self,
        b: &mut tar::Builder<W>,
        parent: BorrowedFd<'_>,
        name: &[u8],
    ) -> io::Result<()> {
        let p = proc_path(parent, name);
        let mut v = vec![0u8; 1024];
        if let Ok(n) = rfs::lgetxattr(OsStr::from_bytes(&p), "security.capability", &mut v[..]) {
            v.truncate(n);
            b.append_pax_extensions([("SCHILY.xattr.security.capability", v.as_slice())])?;
        }
        Ok(())
    }

    fn item<W: io::Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        entry: &[u8],
        st: &rfs::Stat,
    ) -> io::Result<()> {
        let n = OsStr::from_bytes(name);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                self.dir_header(b, parent, Some(name), entry, st)?;
                match rfs::openat(
                    parent,
                    n,
                    dir_flags() | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(sub) => self.children(b, sub.as_fd(), entry),
                    // Replaced while we walked (a running container): what is there now is
                    // not followed.
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let mut h = self.header(st, tar::EntryType::Link);
                        let first = first.clone();
                        return append_raw(b, &mut h, entry, Some(&first), io::empty());
                    }
                    self.links.insert(key, entry.to_vec());
                }
                let f = match rfs::openat(
                    parent,
                    n,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                    Mode::empty(),
                ) {
                    Ok(fd) => File::from(fd),
                    // Swapped for a symlink or removed since the stat: skipped, never followed.
                    Err(Errno::LOOP) | Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let size = st.st_size.max(0) as u64;
                self.pax_caps(b, parent, name)?;
                let mut h = self.header(st, tar::EntryType::Regular);
                h.set_size(size);
                let data = io::Read::chain(io::Read::take(f, size), io::repeat(0));
                append_raw(b, &mut h, entry, None, io::Read::take(data, size))
            }
            FileType::Symlink => {
                let target = match rfs::readlinkat(parent, n, Vec::new()) {
                    Ok(t) => t,
                    Err(Errno::NOENT) | Err(Errno::INVAL) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let mut h = self.header(st, tar::EntryType::Symlink);
                append_raw(b, &mut h, entry, Some(target.as_bytes()), io::empty())
            }
            ft @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let ty = match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = self.header(st, ty);
                if ty != tar::EntryType::Fifo {
                    h.set_device_major(rfs::major(st.st_rdev))?;
                    h.set_device_minor(rfs::minor(st.st_rdev))?;
                }
                append_raw(b, &mut h, entry, None, io::empty())
            }
            _ => {
                tracing::debug!(entry = %String::from_utf8_lossy(entry), "socket not archived");
                Ok(())
            }
        }
    }
}

/// Appends an entry whose name (and link name) are written as given, byte for byte (a leading
/// `/` included), with GNU long-name records when they do not fit the header.
fn append_raw<W: io::Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl io::Read,
) -> io::Result<()> {
    fn long<W: io::Write>(
        b: &mut tar::Builder<W>,
        ty: tar::EntryType,
        value: &[u8],
    ) -> io::Result<()> {
        let mut lh = tar::Header::new_gnu();
        lh.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        lh.set_mode(0o644);
        lh.set_entry_type(ty);
        let mut v = value.to_vec();
        v.push(0);
        lh.set_size(v.len() as u64);
        lh.set_cksum();
        b.append(&lh, &v[..])
    }
    let old = h.as_old_mut();
    if name.len() > old.name.len() {
        long(b, tar::EntryType::GNULongName, name)?;
    }
    let old = h.as_old_mut();
    let n = name.len().min(old.name.len());
    old.name = [0; 100];
    old.name[..n].copy_from_slice(&name[..n]);
    if let Some(l) = link {
        if l.len() > old.linkname.len() {
            long(b, tar::EntryType::GNULongLink, l)?;
        }
        let old = h.as_old_mut();
        let n = l.len().min(old.linkname.len());
        old.linkname = [0; 100];
        old.linkname[..n].copy_from_slice(&l[..n]);
    }
    h.set_cksum();
    b.append(h, data)
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

    fn entries(data: &[u8]) -> Vec<(String, char, u32, String)> {
        let mut a = tar::Archive::new(data);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    h.entry_type().as_byte() as char,
                    h.mode().unwrap(),
                    e.link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn tar_resource_like_docker() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("dir");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), b"12345").unwrap();
        std::fs::hard_link(d.join("sub/f"), d.join("h")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("l")).unwrap();
        std::fs::set_permissions(d.join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        let names = IdNames::parse("root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
        let dir = open_dir(&d);
        let mut out = Vec::new();
        tar_resource(
            &TarResource {
                dir: dir.as_fd(),
                name: None,
                rebase: b"dir",
            },
            &names,
            &mut out,
        )
        .unwrap();
        let e = entries(&out);
        let summary: Vec<(String, char)> = e.iter().map(|x| (x.0.clone(), x.1)).collect();
        assert_eq!(
            summary,
            vec![
                ("dir/".to_string(), '5'),
                ("dir/h".into(), '0'),
                ("dir/l".into(), '2'),
                ("dir/sub/".into(), '5'),
                ("dir/sub/f".into(), '1'),
            ]
        );
        assert_eq!(
            e[1].2, 0o100640,
            "type bits are in the mode, as Docker writes them"
        );
        assert_eq!(e[2].3, "/etc/passwd");
        assert_eq!(
            e[4].3, "dir/h",
            "the second name is a hard link to the first"
        );
        let mut a = tar::Archive::new(&out[..]);
        let first = a.entries().unwrap().next().unwrap().unwrap();
        if first.header().uid().unwrap() == 0 {
            assert_eq!(first.header().username().unwrap(), Some("root"));
        }

        // One file of a directory, and the root of a container (`/`, `/sub/…`).
        let mut out = Vec::new();
        tar_resource(
            &TarResource {
                dir: dir.as_fd(),
                name: Some(b"l"),
                rebase: b"l",
            },
            &names,
            &mut out,
        )
        .unwrap();
        assert_eq!(entries(&out).len(), 1);
        let mut out = Vec::new();
        tar_resource(
            &TarResource {
                dir: dir.as_fd(),
                name: None,
                rebase: b"",
            },
            &names,
            &mut out,
        )
        .unwrap();
        let e = entries(&out);
        assert_eq!(e[0].0, "/");
        assert_eq!(e[4].0, "/sub/f");
        // Long names go in GNU long-name records.
        let long = "n".repeat(150);
        std::fs::write(d.join(&long), b"x").unwrap();
        let mut out = Vec::new();
        tar_resource(
            &TarResource {
                dir: dir.as_fd(),
                name: None,
                rebase: b".",
            },
            &names,
            &mut out,
        )
        .unwrap();
        assert!(entries(&out).iter().any(|x| x.0 == format!("./{long}")));
    }
}
