//! Safe application of a layer tar stream onto a directory — the most security-sensitive code
//! in berth-image: the archive is untrusted input (a registry, `docker load`, `docker import`).
//!
//! The `tar` crate is used only to *parse* the stream. Every filesystem change is made by the
//! writer below, relative to an open file descriptor of the target directory:
//!
//! * parent directories are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
//!   RESOLVE_NO_XDEV)`, so neither `..`, nor an absolute symlink, nor a relative symlink that
//!   climbs out, nor a `/proc` magic link can lead outside the target; symlinks that stay
//!   inside are followed like Docker does;
//! * the last path component is never followed: files are created with
//!   `openat(O_CREAT|O_EXCL|O_NOFOLLOW)` after removing whatever was there, and links, nodes
//!   and directories with `symlinkat`/`linkat`/`mknodat`/`mkdirat`; metadata is set through
//!   the opened fd or with `AT_SYMLINK_NOFOLLOW`;
//! * entry names with `..` components and absolute names are refused (the error says which
//!   entry and why), as are hard links whose target is absolute, climbs out or does not exist.
//!
//! The stream is hashed while it is parsed (and drained to its end afterwards), so the result
//! carries the layer's diff ID: the sha256 of the uncompressed tar.
//!
//! Whiteouts are converted to the overlay format: `.wh.<name>` becomes a 0:0 character device
//! `<name>`, `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory; other
//! `.wh..wh.*` entries (aufs bookkeeping) are skipped.
//!
//! Extended attributes: `user.*` and `security.capability` are applied; `trusted.overlay.*`
//! from an archive is refused silently with a warning (it would forge whiteouts or
//! redirects); other namespaces are skipped with a debug message.
//!
//! [`apply_copy`] is the same writer with the rules of the archive API (`docker cp`,
//! `PUT /containers/{id}/archive`, moby's `Untar`): every path is resolved *inside* a
//! container's root (`RESOLVE_IN_ROOT`, like the `chroot` Docker uses, without one), names are
//! cleaned like Go's `filepath.Clean` (an absolute name lands under the destination; a name or
//! hard link that climbs out of it, and a symlink whose relative target climbs out, are refused
//! with Docker's messages), there are no whiteouts, the destination's own entry is skipped, and
//! replacing a directory by a non-directory (or the reverse) can be refused.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::Timespec;
use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use crate::digest::{Algorithm, Digest, DigestReader};

/// The overlay whiteout prefix used in layer tars.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The marker entry of an opaque directory.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// Prefix of aufs metadata entries, skipped on apply.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The xattr overlayfs uses to mark opaque directories.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Why applying a layer failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("refusing layer entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: String },
    #[error("layer entry {entry:?}: {op} failed: {source}")]
    Entry {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry:?}: unsupported tar entry type {kind}")]
    Unsupported { entry: String, kind: String },
    #[error("invalid or truncated layer tar stream: {0}")]
    Tar(#[source] io::Error),
    #[error("cannot open layer target directory {path}: {source}")]
    Target {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl ApplyError {
    /// True when the archive is at fault (as opposed to the local filesystem).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, ApplyError::Target { .. })
    }
}

/// What an apply produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// sha256 of the whole uncompressed tar stream (the layer's diff ID).
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub tar_size: u64,
    /// Sum of the sizes of the files and symlinks written (hard links counted once), which is
    /// what Docker reports as a layer's size.
    pub content_size: u64,
    /// Number of tar entries processed.
    pub entries: u64,
}

/// How [`apply_tar_with`] reads an archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// A plain archive, not a layer (a build context, the tar of an `ADD`): `.wh.` names are
    /// ordinary files, not whiteouts.
    pub plain: bool,
    /// Leading `/` of entry names and hard link targets are dropped (Docker's `Untar`: an
    /// absolute name lands below the target) instead of refused.
    pub strip_absolute: bool,
}

/// The archive API's extraction rules (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// The destination directory below the root, resolved (no symlinks), as components.
    pub dest: Vec<Vec<u8>>,
    /// Docker's `NoOverwriteDirNonDir`.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner for every entry instead of the archive's (`copyUIDGID`).
    pub chown: Option<(u32, u32)>,
    /// Leave owners alone (moby's `NoLchown`, used when the client extracts on its host).
    pub no_lchown: bool,
    /// moby's `RebaseArchiveEntries`, applied in order to every name and hard link target:
    /// the first occurrence of `.0` is replaced by `.1` (an empty `.0` prepends `.1`).
    pub rename: Vec<(Vec<u8>, Vec<u8>)>,
}

/// `strings.Replace(s, old, new, 1)`.
fn replace_first(s: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    if old.is_empty() {
        let mut v = new.to_vec();
        v.extend_from_slice(s);
        return v;
    }
    match s.windows(old.len()).position(|w| w == old) {
        Some(i) => {
            let mut v = s[..i].to_vec();
            v.extend_from_slice(new);
            v.extend_from_slice(&s[i + old.len()..]);
            v
        }
        None => s.to_vec(),
    }
}

/// Extracts the (uncompressed) tar stream `r` into the directory `opts.dest` below `root` (a
/// container's root), with the archive API's rules.
pub fn apply_copy(
    root: BorrowedFd<'_>,
    r: &mut dyn Read,
    opts: CopyOptions,
) -> Result<ApplyStats, ApplyError> {
    let root = root.try_clone_to_owned().map_err(|e| ApplyError::Target {
        path: "/".into(),
        source: e,
    })?;
    run(root, r, ApplyOptions::default(), Some(opts))
}

/// Applies the (uncompressed) tar stream `r` onto the existing directory `target`.
/// On error the target is left partially written: callers apply into a fresh temporary
/// directory and delete it on failure (see `layer`).
pub fn apply_tar(target: &Path, r: &mut dyn Read) -> Result<ApplyStats, ApplyError> {
    apply_tar_with(target, r, ApplyOptions::default())
}

/// [`apply_tar`] with options (plain archives for builds). Every safety rule holds: nothing
/// is written outside `target`.
pub fn apply_tar_with(
    target: &Path,
    r: &mut dyn Read,
    opts: ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    let root = rfs::open(
        target,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::Target {
        path: target.display().to_string(),
        source: e.into(),
    })?;
    apply_tar_at(root, r, opts)
}

/// [`apply_tar_with`] onto a directory given as an open handle (one resolved safely by the
/// caller, e.g. inside a container rootfs).
pub fn apply_tar_at(
    root: OwnedFd,
    r: &mut dyn Read,
    opts: ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    run(root, r, opts, None)
}

fn run(
    root: OwnedFd,
    r: &mut dyn Read,
    opts: ApplyOptions,
    copy: Option<CopyOptions>,
) -> Result<ApplyStats, ApplyError> {
    let mut hashed = DigestReader::new(r, Algorithm::Sha256);
    let (prefix, resolve) = match &copy {
        Some(c) => (c.dest.clone(), IN_ROOT),
        None => (Vec::new(), BENEATH),
    };
    let mut applier = Applier {
        root,
        dir_times: Vec::new(),
        content_size: 0,
        entries: 0,
        cached_parent: None,
        copy_buf: vec![0u8; 64 * 1024],
        opts,
        prefix,
        resolve,
        copy,
    };
    {
        let mut archive = tar::Archive::new(&mut hashed);
        let entries = archive.entries().map_err(ApplyError::Tar)?;
        for entry in entries {
            let mut entry = entry.map_err(ApplyError::Tar)?;
            applier.entry(&mut entry)?;
            applier.entries += 1;
        }
    }
    // The diff ID covers the whole stream, including the end-of-archive blocks and any
    // padding after them.
    io::copy(&mut hashed, &mut io::sink()).map_err(ApplyError::Tar)?;
    applier.finish_dir_times();
    let (diff_id, tar_size, _) = hashed.finish();
    Ok(ApplyStats {
        diff_id,
        tar_size,
        content_size: applier.content_size,
        entries: applier.entries,
    })
}

/// The metadata of one entry, with PAX overrides applied.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    atime: Timespec,
    xattrs: BTreeMap<String, Vec<u8>>,
}

struct Applier {
    root: OwnedFd,
    dir_times: Vec<(Vec<Vec<u8>>, Timestamps)>,
    content_size: u64,
    entries: u64,
    /// The parent directory of the previous entry (tars are mostly sorted, so this saves an
    /// openat2 per entry). Dropped whenever anything is removed or a symlink is created.
    cached_parent: Option<(Vec<Vec<u8>>, OwnedFd)>,
    /// The buffer file contents are copied through (one for the whole archive).
    copy_buf: Vec<u8>,
    opts: ApplyOptions,
    /// Entries are placed below these components of the root (the archive API's destination).
    prefix: Vec<Vec<u8>>,
    /// How paths below the root are resolved.
    resolve: ResolveFlags,
    /// The archive API's rules instead of a layer's.
    copy: Option<CopyOptions>,
}

/// Splits an entry name into components, refusing absolute names, `..` and NUL bytes.
/// `.` components and empty components are dropped; an empty result names the root.
pub fn clean_components(raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if raw.contains(&0) {
        return Err("name contains a NUL byte".into());
    }
    if raw.first() == Some(&b'/') {
        return Err("absolute paths are not allowed in layer archives".into());
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("'..' path components are not allowed in layer archives".into()),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// Go's `filepath.Clean` of a relative entry name, as components: `Ok(None)` when the name
/// climbs above its base (`../x`, `a/../../x`); a leading `/` is dropped (moby joins names
/// under the destination).
pub fn go_clean_components(raw: &[u8]) -> Result<Option<Vec<Vec<u8>>>, String> {
    if raw.contains(&0) {
        return Err("name contains a NUL byte".into());
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Ok(None);
                }
            }
            c => out.push(c.to_vec()),
        }
    }
    Ok(Some(out))
}

fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// Inside a container's root: `..` and absolute symlinks stop at the root.
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// openat2 beneath `root`, retrying the EAGAIN that RESOLVE_* lookups may return when a
/// rename raced with them.
fn open_beneath(
    root: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlags,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    let mut tries = 0;
    loop {
        match rfs::openat2(root, os(path), flags, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

impl Applier {
    /// [`clean_components`], dropping leading `/` first when the options say so.
    fn components(&self, raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        if self.opts.strip_absolute {
            let start = raw.iter().position(|&b| b != b'/').unwrap_or(raw.len());
            return clean_components(&raw[start..]);
        }
        clean_components(raw)
    }

    /// The entry name after the archive API's renames.
    fn renamed(&self, raw: Vec<u8>) -> Vec<u8> {
        match &self.copy {
            Some(c) => c
                .rename
                .iter()
                .fold(raw, |n, (old, new)| replace_first(&n, old, new)),
            None => raw,
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), ApplyError> {
        let raw = self.renamed(e.path_bytes().into_owned());
        let name = show(&raw);
        let kind = e.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        let unsafe_err = |reason: String| ApplyError::Unsafe {
            entry: name.clone(),
            reason,
        };
        let comps = match &self.copy {
            None => self.components(&raw).map_err(unsafe_err)?,
            Some(_) => match go_clean_components(&raw).map_err(unsafe_err)? {
                Some(c) => c,
                None => {
                    return Err(ApplyError::Unsafe {
                        entry: name.clone(),
                        reason: format!("{name:?} is outside of {:?}", self.dest_display()),
                    })
                }
            },
        };
        let meta = self.meta(e, &name)?;
        tracing::debug!(entry = %name, kind = ?kind, "apply");

        if self.copy.is_some() {
            if comps.is_empty() {
                // The destination directory itself (`./`): moby leaves it as it is.
                return Ok(());
            }
            return self.entry_body(e, kind, &name, &comps, meta);
        }

        let Some((base, parent_comps)) = comps.split_last() else {
            // The archive root ("./"): only a directory may describe it.
            if kind.is_dir() {
                let root = self.root.try_clone().map_err(|e| ApplyError::Entry {
                    entry: name.clone(),
                    op: "dup",
                    source: e,
                })?;
                self.set_fd_meta(&root, &meta, &name)?;
                self.dir_times.push((Vec::new(), times(&meta)));
                return Ok(());
            }
            return Err(ApplyError::Unsafe {
                entry: name,
                reason: "only a directory may replace the layer root".into(),
            });
        };

        // Whiteouts.
        if let Some(rest) = base
            .strip_prefix(WHITEOUT_PREFIX.as_bytes())
            .filter(|_| !self.opts.plain)
        {
            let parent = self.open_parent(parent_comps, &name)?;
            if base == WHITEOUT_OPAQUE.as_bytes() {
                rfs::fsetxattr(&parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(|e| io_err(&name, "set opaque xattr", e))?;
                return Ok(());
            }
            if base.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
                tracing::debug!(entry = %name, "skipping aufs metadata entry");
                return Ok(());
            }
            if rest.is_empty() || rest == b"." || rest == b".." {
                return Err(ApplyError::Unsafe {
                    entry: name,
                    reason: "whiteout of an invalid name".into(),
                });
            }
            self.remove_existing(&parent, rest, &name)?;
            rfs::mknodat(
                &parent,
                os(rest),
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(|e| io_err(&name, "create whiteout", e))?;
            rfs::chownat(
                &parent,
                os(rest),
                Some(uid(meta.uid)),
                Some(gid(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io_err(&name, "chown whiteout", e))?;
            return Ok(());
        }
        self.entry_body(e, kind, &name, &comps, meta)
    }

    /// The container path of `comps` below the destination, for Docker's messages.
    fn container_path(&self, comps: &[Vec<u8>]) -> String {
        let mut all: Vec<&[u8]> = self.prefix.iter().map(Vec::as_slice).collect();
        all.extend(comps.iter().map(Vec::as_slice));
        format!("/{}", show(&all.join(&b'/')))
    }

    fn dest_display(&self) -> String {
        self.container_path(&[])
    }

    /// moby's `NoOverwriteDirNonDir`: refuses replacing a directory by a non-directory and the
    /// reverse (archive API only).
    fn check_overwrite(
        &self,
        parent: &OwnedFd,
        base: &[u8],
        comps: &[Vec<u8>],
        entry_is_dir: bool,
        name: &str,
    ) -> Result<(), ApplyError> {
        let Some(c) = &self.copy else {
            return Ok(());
        };
        if !c.no_overwrite_dir_non_dir {
            return Ok(());
        }
        let existing_is_dir = match rfs::statat(parent, os(base), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => FileType::from_raw_mode(st.st_mode) == FileType::Directory,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_err(name, "stat", e)),
        };
        let (path, dest) = (self.container_path(comps), self.dest_display());
        match (existing_is_dir, entry_is_dir) {
            (true, false) => Err(ApplyError::Unsafe {
                entry: name.to_string(),
                reason: format!("cannot overwrite directory {path:?} with non-directory {dest:?}"),
            }),
            (false, true) => Err(ApplyError::Unsafe {
                entry: name.to_string(),
                reason: format!("cannot overwrite non-directory {path:?} with directory {dest:?}"),
            }),
            _ => Ok(()),
        }
    }

    /// Creates one entry (not the root, not a whiteout) at `comps`.
    fn entry_body<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        name: &str,
        comps: &[Vec<u8>],
        meta: Meta,
    ) -> Result<(), ApplyError> {
        let name = name.to_string();
        let Some((base, parent_comps)) = comps.split_last() else {
            return Ok(());
        };
        let parent = self.open_parent(parent_comps, &name)?;
        self.check_overwrite(&parent, base, comps, kind.is_dir(), &name)?;
        let base_os = os(base);
        match kind {
            tar::EntryType::Directory => {
                match rfs::statat(&parent, base_os, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        self.remove_existing(&parent, base, &name)?;
                        mkdir(&parent, base_os, &name)?;
                    }
                    Err(Errno::NOENT) => mkdir(&parent, base_os, &name)?,
                    Err(e) => return Err(io_err(&name, "stat", e)),
                }
                let fd = rfs::openat(
                    &parent,
                    base_os,
                    dir_flags() | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(|e| io_err(&name, "open directory", e))?;
                self.set_fd_meta(&fd, &meta, &name)?;
                self.dir_times.push((comps.to_vec(), times(&meta)));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let create = || {
                    rfs::openat(
                        &parent,
                        base_os,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                };
                // O_EXCL|O_NOFOLLOW never opens what is there: in the common case (nothing
                // is) this saves a stat; otherwise remove it and create again.
                let fd = match create() {
                    Err(Errno::EXIST) => {
                        self.remove_existing(&parent, base, &name)?;
                        create()
                    }
                    other => other,
                }
                .map_err(|e| io_err(&name, "create file", e))?;
                let mut file = File::from(fd);
                let want = e.size();
                let copied = copy_entry(e, &mut file, &name, &mut self.copy_buf)?;
                if copied != want {
                    return Err(ApplyError::Tar(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("entry {name:?} is truncated: {copied} of {want} bytes"),
                    )));
                }
                self.content_size += copied;
                self.set_fd_meta(&file, &meta, &name)?;
                rfs::futimens(&file, &times(&meta)).map_err(|e| io_err(&name, "set times", e))?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                if target.is_empty() || target.contains(&0) {
                    return Err(ApplyError::Unsafe {
                        entry: name,
                        reason: "symlink with an empty or invalid target".into(),
                    });
                }
                if self.copy.is_some() && target.first() != Some(&b'/') {
                    // moby refuses a symlink whose relative target climbs out of the
                    // destination (an absolute one stays inside the root anyway).
                    let mut rel = parent_comps.join(&b'/');
                    rel.push(b'/');
                    rel.extend_from_slice(&target);
                    if !matches!(go_clean_components(&rel), Ok(Some(_))) {
                        return Err(ApplyError::Unsafe {
                            entry: name.clone(),
                            reason: format!(
                                "invalid symlink {:?} -> {:?}",
                                self.container_path(comps),
                                show(&target)
                            ),
                        });
                    }
                }
                self.remove_existing(&parent, base, &name)?;
                self.cached_parent = None;
                rfs::symlinkat(os(&target), &parent, base_os)
                    .map_err(|e| io_err(&name, "create symlink", e))?;
                // Docker's layer size counts every non-directory by its st_size, symlinks
                // included (the length of the target).
                self.content_size += target.len() as u64;
                self.set_at_meta(&parent, base, &meta, &name, false)?;
            }
            tar::EntryType::Link => {
                let target = self.renamed(
                    e.link_name_bytes()
                        .map(|c| c.into_owned())
                        .unwrap_or_default(),
                );
                let tcomps = match &self.copy {
                    None => self.components(&target).map_err(|r| ApplyError::Unsafe {
                        entry: name.clone(),
                        reason: format!("hard link target {:?}: {r}", show(&target)),
                    })?,
                    Some(_) => match go_clean_components(&target) {
                        Ok(Some(c)) => c,
                        _ => {
                            return Err(ApplyError::Unsafe {
                                entry: name.clone(),
                                reason: format!(
                                    "invalid hardlink {:?} -> {:?}",
                                    self.dest_display(),
                                    show(&target)
                                ),
                            })
                        }
                    },
                };
                let Some((tbase, tparent_comps)) = tcomps.split_last() else {
                    return Err(ApplyError::Unsafe {
                        entry: name,
                        reason: "hard link to the layer root".into(),
                    });
                };
                if tcomps == comps {
                    return Ok(());
                }
                let missing = || ApplyError::Unsafe {
                    entry: name.clone(),
                    reason: format!(
                        "hard link target {:?} does not exist in this layer",
                        show(&target)
                    ),
                };
                let tparent = match open_beneath(
                    self.root.as_fd(),
                    &self.full(tparent_comps),
                    dir_flags(),
                    self.resolve,
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Err(missing()),
                    Err(Errno::XDEV) | Err(Errno::LOOP) => {
                        return Err(ApplyError::Unsafe {
                            entry: name,
                            reason: format!(
                                "hard link target {:?} leads outside the layer",
                                show(&target)
                            ),
                        })
                    }
                    Err(e) => return Err(io_err(&name, "open hard link target", e)),
                };
                match rfs::statat(&tparent, os(tbase), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                        return Err(ApplyError::Unsafe {
                            entry: name,
                            reason: "hard link to a directory".into(),
                        })
                    }
                    Ok(_) => {}
                    Err(Errno::NOENT) => return Err(missing()),
                    Err(e) => return Err(io_err(&name, "stat hard link target", e)),
                }
                self.remove_existing(&parent, base, &name)?;
                rfs::linkat(&tparent, os(tbase), &parent, base_os, AtFlags::empty())
                    .map_err(|e| io_err(&name, "create hard link", e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (ft, dev) = match kind {
                    tar::EntryType::Char => (FileType::CharacterDevice, device(e)?),
                    tar::EntryType::Block => (FileType::BlockDevice, device(e)?),
                    _ => (FileType::Fifo, 0),
                };
                self.remove_existing(&parent, base, &name)?;
                rfs::mknodat(&parent, base_os, ft, Mode::empty(), dev)
                    .map_err(|e| io_err(&name, "create node", e))?;
                self.set_at_meta(&parent, base, &meta, &name, true)?;
            }
            other => {
                return Err(ApplyError::Unsupported {
                    entry: name,
                    kind: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }

    /// Collects uid/gid/mode/times/xattrs, with PAX records overriding the header.
    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta, ApplyError> {
        let h = e.header();
        let bad = |what: &str| ApplyError::Unsafe {
            entry: name.to_string(),
            reason: format!("invalid {what} in tar header"),
        };
        // Like Go's archive/tar, an empty (all NUL or space) numeric field reads as 0.
        let old = h.as_old();
        let mut uid = lenient(h.uid(), &old.uid).ok_or_else(|| bad("uid"))?;
        let mut gid = lenient(h.gid(), &old.gid).ok_or_else(|| bad("gid"))?;
        let mode =
            lenient(h.mode().map(u64::from), &old.mode).ok_or_else(|| bad("mode"))? as u32 & 0o7777;
        let mut mtime = Timespec {
            tv_sec: lenient(h.mtime(), &old.mtime).ok_or_else(|| bad("mtime"))? as i64,
            tv_nsec: 0,
        };
        let mut atime = None;
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = e.pax_extensions().map_err(ApplyError::Tar)? {
            for ext in pax {
                let ext = ext.map_err(ApplyError::Tar)?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                match key {
                    "uid" => uid = parse_u64(value).ok_or_else(|| bad("PAX uid"))?,
                    "gid" => gid = parse_u64(value).ok_or_else(|| bad("PAX gid"))?,
                    "mtime" => mtime = parse_pax_time(value).ok_or_else(|| bad("PAX mtime"))?,
                    "atime" => atime = parse_pax_time(value),
                    k => {
                        if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                            xattrs.insert(x.to_string(), value.to_vec());
                        }
                    }
                }
            }
        }
        if uid >= u64::from(u32::MAX) || gid >= u64::from(u32::MAX) {
            return Err(bad("owner"));
        }
        if let Some((u, g)) = self.copy.as_ref().and_then(|c| c.chown) {
            (uid, gid) = (u64::from(u), u64::from(g));
        }
        Ok(Meta {
            uid: uid as u32,
            gid: gid as u32,
            mode,
            mtime,
            atime: atime.unwrap_or(mtime),
            xattrs,
        })
    }

    /// Opens (creating missing directories, mode 0755, like Docker) the parent directory of
    /// an entry, beneath the root.
    fn open_parent(&mut self, comps: &[Vec<u8>], name: &str) -> Result<OwnedFd, ApplyError> {
        if let Some((c, fd)) = &self.cached_parent {
            if c.as_slice() == comps {
                return fd.try_clone().map_err(|e| ApplyError::Entry {
                    entry: name.to_string(),
                    op: "dup",
                    source: e,
                });
            }
        }
        let fd = match open_beneath(
            self.root.as_fd(),
            &self.full(comps),
            dir_flags(),
            self.resolve,
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => self.create_parents(comps, name)?,
            Err(e) => return Err(self.parent_error(name, e)),
        };
        if let Ok(dup) = fd.try_clone() {
            self.cached_parent = Some((comps.to_vec(), dup));
        }
        Ok(fd)
    }

    /// `prefix/comps` as one path below the root.
    fn full(&self, comps: &[Vec<u8>]) -> Vec<u8> {
        if self.prefix.is_empty() {
            return join(comps);
        }
        let mut all = self.prefix.clone();
        all.extend_from_slice(comps);
        join(&all)
    }

    fn create_parents(&self, comps: &[Vec<u8>], name: &str) -> Result<OwnedFd, ApplyError> {
        let mut cur = open_beneath(
            self.root.as_fd(),
            &self.full(&[]),
            dir_flags(),
            self.resolve,
        )
        .map_err(|e| self.parent_error(name, e))?;
        for i in 0..comps.len() {
            let prefix = self.full(&comps[..=i]);
            cur = match open_beneath(self.root.as_fd(), &prefix, dir_flags(), self.resolve) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(&cur, os(&comps[i]), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err(name, "create parent directory", e)),
                    }
                    // The mode argument is subject to the umask; make it what Docker makes.
                    if let Ok(fd) = open_beneath(
                        cur.as_fd(),
                        &comps[i],
                        dir_flags() | OFlags::NOFOLLOW,
                        BENEATH | ResolveFlags::NO_SYMLINKS,
                    ) {
                        let _ = rfs::fchmod(&fd, Mode::from_raw_mode(0o755));
                    }
                    open_beneath(self.root.as_fd(), &prefix, dir_flags(), self.resolve)
                        .map_err(|e| self.parent_error(name, e))?
                }
                Err(e) => return Err(self.parent_error(name, e)),
            };
        }
        Ok(cur)
    }

    fn parent_error(&self, name: &str, e: Errno) -> ApplyError {
        match e {
            Errno::XDEV | Errno::LOOP => ApplyError::Unsafe {
                entry: name.to_string(),
                reason: "its parent directory leads outside the layer through a symlink".into(),
            },
            Errno::NOTDIR => ApplyError::Unsafe {
                entry: name.to_string(),
                reason: "a parent path component is not a directory".into(),
            },
            e => io_err(name, "open parent directory", e),
        }
    }

    /// Removes whatever is at `parent/base` (a directory recursively), without following it.
    fn remove_existing(
        &mut self,
        parent: &OwnedFd,
        base: &[u8],
        name: &str,
    ) -> Result<(), ApplyError> {
        match rfs::statat(parent, os(base), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err(name, "stat", e)),
            Ok(st) => {
                self.cached_parent = None;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    remove_tree_at(parent.as_fd(), base).map_err(|e| io_err(name, "remove", e))
                } else {
                    rfs::unlinkat(parent, os(base), AtFlags::empty())
                        .map_err(|e| io_err(name, "remove", e))
                }
            }
        }
    }

    fn no_lchown(&self) -> bool {
        self.copy.as_ref().is_some_and(|c| c.no_lchown)
    }

    /// Owner, mode and xattrs through an open fd (files and directories).
    fn set_fd_meta(&self, fd: &impl AsFd, m: &Meta, name: &str) -> Result<(), ApplyError> {
        // chown first: it clears setuid/setgid bits that chmod then sets.
        if !self.no_lchown() {
            rfs::fchown(fd, Some(uid(m.uid)), Some(gid(m.gid)))
                .map_err(|e| io_err(name, "chown", e))?;
        }
        rfs::fchmod(fd, Mode::from_raw_mode(m.mode)).map_err(|e| io_err(name, "chmod", e))?;
        for (k, v) in &m.xattrs {
            if xattr_allowed(k, name) {
                rfs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty())
                    .map_err(|e| io_err(name, "set xattr", e))?;
            }
        }
        Ok(())
    }

    /// Owner, mode (nodes only), xattrs and times for objects that must not be opened
    /// (symlinks, device nodes, fifos).
    fn set_at_meta(
        &self,
        parent: &OwnedFd,
        base: &[u8],
        m: &Meta,
        name: &str,
        chmod: bool,
    ) -> Result<(), ApplyError> {
        if !self.no_lchown() {
            rfs::chownat(
                parent,
                os(base),
                Some(uid(m.uid)),
                Some(gid(m.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io_err(name, "chown", e))?;
        }
        if chmod {
            // The node was created by us an instant ago in a directory only this process
            // writes to, so following it cannot lead anywhere else (Linux has no lchmod).
            rfs::chmodat(
                parent,
                os(base),
                Mode::from_raw_mode(m.mode),
                AtFlags::empty(),
            )
            .map_err(|e| io_err(name, "chmod", e))?;
        }
        if !m.xattrs.is_empty() {
            // /proc/self/fd/<parent> resolves to the directory we hold open; the last
            // component is not followed by lsetxattr.
            let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            p.extend_from_slice(base);
            for (k, v) in &m.xattrs {
                if xattr_allowed(k, name) {
                    if let Err(e) = rfs::lsetxattr(os(&p), k.as_str(), v, XattrFlags::empty()) {
                        // user.* is not permitted on symlinks and device nodes.
                        tracing::debug!(entry = %name, xattr = %k, error = %e, "xattr not applied");
                    }
                }
            }
        }
        rfs::utimensat(parent, os(base), &times(m), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(name, "set times", e))?;
        Ok(())
    }

    /// Directory times are set last: creating entries inside changes them.
    fn finish_dir_times(&mut self) {
        let dir_times = std::mem::take(&mut self.dir_times);
        for (comps, ts) in dir_times.into_iter().rev() {
            let fd = if comps.is_empty() && self.prefix.is_empty() {
                self.root.try_clone().ok()
            } else {
                open_beneath(
                    self.root.as_fd(),
                    &self.full(&comps),
                    dir_flags() | OFlags::NOFOLLOW,
                    self.resolve | ResolveFlags::NO_SYMLINKS,
                )
                .ok()
            };
            match fd {
                Some(fd) => {
                    if let Err(e) = rfs::futimens(&fd, &ts) {
                        tracing::debug!(dir = %show(&join(&comps)), error = %e, "could not set directory times");
                    }
                }
                None => {
                    tracing::debug!(dir = %show(&join(&comps)), "directory was replaced later in the layer")
                }
            }
        }
    }
}

fn xattr_allowed(key: &str, entry: &str) -> bool {
    if key.starts_with("user.") || key == "security.capability" {
        return true;
    }
    if key.starts_with("trusted.overlay.") {
        tracing::warn!(%entry, xattr = %key, "ignoring overlayfs xattr from a layer archive");
    } else {
        tracing::debug!(%entry, xattr = %key, "skipping xattr outside user.* and security.capability");
    }
    false
}

fn mkdir(parent: &OwnedFd, base: &OsStr, name: &str) -> Result<(), ApplyError> {
    rfs::mkdirat(parent, base, Mode::from_raw_mode(0o700))
        .map_err(|e| io_err(name, "create directory", e))
}

/// Recursively removes `parent/base` (a directory) without following symlinks.
pub(crate) fn remove_tree_at(parent: BorrowedFd<'_>, base: &[u8]) -> Result<(), Errno> {
    let fd = rfs::openat(
        parent,
        os(base),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    {
        let mut dir = rfs::Dir::read_from(&fd)?;
        while let Some(ent) = dir.read() {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            names.push((n.to_vec(), ent.file_type() == FileType::Directory));
        }
    }
    for (n, is_dir) in names {
        if is_dir {
            remove_tree_at(fd.as_fd(), &n)?;
        } else {
            match rfs::unlinkat(&fd, os(&n), AtFlags::empty()) {
                Err(Errno::ISDIR) => remove_tree_at(fd.as_fd(), &n)?,
                r => r?,
            }
        }
    }
    rfs::unlinkat(parent, os(base), AtFlags::REMOVEDIR)
}

fn copy_entry<R: Read>(
    e: &mut tar::Entry<'_, R>,
    f: &mut File,
    name: &str,
    buf: &mut [u8],
) -> Result<u64, ApplyError> {
    let mut total = 0u64;
    loop {
        let n = match e.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(ApplyError::Tar(err)),
        };
        f.write_all(&buf[..n]).map_err(|err| ApplyError::Entry {
            entry: name.to_string(),
            op: "write",
            source: err,
        })?;
        total += n as u64;
    }
}

fn device<R: Read>(e: &tar::Entry<'_, R>) -> Result<rfs::Dev, ApplyError> {
    let h = e.header();
    let bad = || ApplyError::Unsafe {
        entry: show(&e.path_bytes()),
        reason: "invalid device numbers".into(),
    };
    let major = h.device_major().map_err(|_| bad())?.unwrap_or(0);
    let minor = h.device_minor().map_err(|_| bad())?.unwrap_or(0);
    Ok(rfs::makedev(major, minor))
}

fn io_err(entry: &str, op: &'static str, e: Errno) -> ApplyError {
    ApplyError::Entry {
        entry: entry.to_string(),
        op,
        source: e.into(),
    }
}

fn uid(u: u32) -> Uid {
    Uid::from_raw(u)
}

fn gid(g: u32) -> Gid {
    Gid::from_raw(g)
}

fn times(m: &Meta) -> Timestamps {
    Timestamps {
        last_access: m.atime,
        last_modification: m.mtime,
    }
}

fn lenient(parsed: io::Result<u64>, raw: &[u8]) -> Option<u64> {
    match parsed {
        Ok(v) => Some(v),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Some(0),
        Err(_) => None,
    }
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// PAX times are decimal seconds with an optional fraction: `1700000000.123456789`.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let tv_sec: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    let tv_nsec = if tv_sec < 0 && nanos > 0 {
        -nanos
    } else {
        nanos
    };
    let (tv_sec, tv_nsec) = if tv_nsec < 0 {
        (tv_sec - 1, tv_nsec + 1_000_000_000)
    } else {
        (tv_sec, tv_nsec)
    };
    Some(Timespec {
        tv_sec,
        tv_nsec: tv_nsec as _,
    })
}

#[cfg(test)]
pub(crate) mod tests;
