//! Small syscall helpers shared by the modules.

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Opens `path` (absolute or relative, interpreted inside the root) below `root_fd` with
/// `RESOLVE_IN_ROOT`: symlinks and `..` can never leave the root.
pub(crate) fn open_in_root<Fd: AsFd>(
    root_fd: Fd,
    path: &Path,
    flags: OFlag,
) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match openat2(root_fd.as_fd(), rel, how) {
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Opens a directory as an `O_PATH` handle to serve as a resolution root.
pub(crate) fn open_root(root: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Closes every fd >= `from` (close_range(2)).
pub(crate) fn close_fds_from(from: u32) {
    // SAFETY: close_range only closes descriptors; the caller guarantees no live Rust object
    // owns an fd >= `from` (it is called at process start before any such fd exists).
    let r = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
    if r != 0 {
        // Old kernels: fall back to walking /proc/self/fd.
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = rd
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .filter(|&fd: &i32| fd >= from as i32)
                .collect();
            for fd in fds {
                // SAFETY: see above; closing an already-closed fd (the read_dir one) is harmless.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Sets or clears O_NONBLOCK.
pub(crate) fn set_nonblocking<Fd: AsFd>(fd: Fd, on: bool) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    let new = if on {
        flags | OFlag::O_NONBLOCK
    } else {
        flags & !OFlag::O_NONBLOCK
    };
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(new))?;
    Ok(())
}

/// TIOCSWINSZ on a pty master.
pub(crate) fn set_winsize<Fd: AsFd>(fd: Fd, height: u16, width: u16) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the pointer, which is valid for the call.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one fd sent with SCM_RIGHTS over a unix stream socket (runc's console socket).
pub(crate) fn recv_fd<Fd: AsFd>(sock: Fd) -> io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut got: Option<OwnedFd> = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed these fds in our table for us; we own them.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    got.ok_or_else(|| io::Error::other("console socket message carried no file descriptor"))
}

/// Drops this process's page-table entries for clean, read-only file mappings (program and
/// library code and constants), so that an idle supervisor keeps resident only what its poll
/// loop touches again. The start-up code (runtime invocation, config parsing) is never run
/// again, yet the kernel's fault-around had mapped it in 64 KiB chunks.
///
/// Only mappings that are file-backed, not writable and have no private dirty pages are
/// touched: for those, MADV_DONTNEED only unmaps page-cache pages, which fault back in unchanged
/// when used. Relocated read-only data (RELRO) has private dirty pages and is skipped.
pub(crate) fn release_startup_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    struct Region {
        start: usize,
        end: usize,
        eligible: bool,
        dirty: bool,
    }
    let mut regions: Vec<Region> = Vec::new();
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = parts.next().unwrap_or("");
                let _offset = parts.next();
                let _dev = parts.next();
                let inode = parts.next().unwrap_or("0");
                let path = parts.next().unwrap_or("");
                let eligible = perms.len() == 4
                    && !perms.contains('w')
                    && perms.ends_with('p')
                    && inode != "0"
                    && path.starts_with('/');
                regions.push(Region {
                    start,
                    end,
                    eligible,
                    dirty: false,
                });
                continue;
            }
        }
        if let Some(r) = regions.last_mut() {
            let kb = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if (line.starts_with("Private_Dirty:") || line.starts_with("Anonymous:"))
                && kb(line) > 0
            {
                r.dirty = true;
            }
        }
    }
    for r in regions.iter().filter(|r| r.eligible && !r.dirty) {
        // SAFETY: the range is a whole, existing, read-only, clean, file-backed private mapping
        // of this process (from /proc/self/smaps); MADV_DONTNEED on it discards only page-table
        // entries of unmodified page-cache pages, which are faulted back in with the same
        // content on the next access. Nothing in the range is written or freed.
        unsafe {
            libc::madvise(
                r.start as *mut libc::c_void,
                r.end - r.start,
                libc::MADV_DONTNEED,
            );
        }
    }
}

/// temp + fsync + rename + fsync(dir).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The longest path a unix socket address holds (`sun_path` is 108 bytes with its NUL).
const SUN_PATH_MAX: usize = 107;

/// A path under which the unix socket at some filesystem path can be bound or reached, held
/// for the duration of one `bind` or `connect`.
pub(crate) struct SocketAddrPath {
    path: std::path::PathBuf,
    _dir: Option<OwnedFd>,
}

impl SocketAddrPath {
    /// The path to hand to `bind`/`connect`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Socket addresses hold at most 107 bytes, but an exec root may be far longer. A path that
/// fits is used as it is; a longer one is reached through `/proc/self/fd/<dir>/<name>`, where
/// `<dir>` is an `O_PATH` handle of its directory kept open as long as the returned value
/// lives (the kernel resolves the magic link to the directory, so the socket is the same
/// filesystem object either way).
pub(crate) fn socket_addr_path(path: &Path) -> io::Result<SocketAddrPath> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() <= SUN_PATH_MAX {
        return Ok(SocketAddrPath {
            path: path.to_path_buf(),
            _dir: None,
        });
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a socket path", path.display()),
        ));
    };
    let dir_fd = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let short = Path::new("/proc/self/fd")
        .join(dir_fd.as_raw_fd().to_string())
        .join(name);
    if short.as_os_str().as_bytes().len() > SUN_PATH_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket name {:?} is too long for a unix socket address",
                name
            ),
        ));
    }
    Ok(SocketAddrPath {
        path: short,
        _dir: Some(dir_fd),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn sockets_under_long_paths() {
        let t = tempfile::tempdir().unwrap();
        let mut dir = t.path().to_path_buf();
        while dir.as_os_str().len() < 200 {
            dir.push("a-long-exec-root-component");
        }
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("shim.sock");
        assert!(UnixListener::bind(&sock).is_err(), "std refuses long paths");
        let addr = socket_addr_path(&sock).unwrap();
        assert!(addr.path().starts_with("/proc/self/fd"));
        let l = UnixListener::bind(addr.path()).unwrap();
        drop(addr);
        assert!(sock.exists(), "the socket lives at the long path");
        let addr = socket_addr_path(&sock).unwrap();
        let mut c = UnixStream::connect(addr.path()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        // A short path is used as it is.
        let short = t.path().join("s.sock");
        assert_eq!(socket_addr_path(&short).unwrap().path(), short);
        // A missing directory is NotFound, as a missing socket would be.
        let missing = dir.join("gone/shim.sock");
        assert_eq!(
            socket_addr_path(&missing).err().unwrap().kind(),
            io::ErrorKind::NotFound
        );
    }
}
