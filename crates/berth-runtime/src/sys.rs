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
