//! A private view of a container's filesystem for the archive API, built the way moby's
//! `openContainerFS` builds it: a thread of its own unshares its mount namespace (nothing it
//! mounts is visible to the host or the container), binds the container's volumes, bind mounts
//! and network files into the container's rootfs at targets resolved *inside* the rootfs, and
//! runs the operation against a descriptor of that rootfs. Every later path is resolved with
//! `openat2(RESOLVE_IN_ROOT)` below that descriptor, so neither a symlink in the container nor
//! one swapped in while the copy runs can lead outside the container. The same view serves
//! running and stopped containers (tmpfs mounts of a running container are not part of it, as
//! in Docker).
//!
//! The mounts use the fd-based mount API (`open_tree`, `mount_setattr`, `move_mount`): the
//! target is the descriptor resolved in the root, so no path is looked up twice.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use berth_image::fstree;
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MoveMountFlags, OpenTreeFlags};

/// One bind mount of the view.
#[derive(Debug, Clone)]
pub(crate) struct ViewMount {
    pub source: PathBuf,
    /// Container path (absolute, cleaned).
    pub destination: String,
    pub readonly: bool,
    pub recursive: bool,
}

/// What the view is made of.
#[derive(Debug, Clone)]
pub(crate) struct ViewSpec {
    /// The container's mounted rootfs on the host.
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    /// Mounted in order (parents before children).
    pub mounts: Vec<ViewMount>,
}

/// Runs `f` with a descriptor of the view's root, on a thread of its own with a private
/// mount namespace; the view (and the thread) go away when `f` returns.
pub(crate) fn run<T, F>(spec: ViewSpec, f: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce(Result<BorrowedFd<'_>, String>) -> T + Send + 'static,
{
    std::thread::Builder::new()
        .name("berth-cp-view".into())
        .spawn(move || match build(&spec) {
            Ok(root) => f(Ok(root.as_fd())),
            Err(e) => f(Err(e)),
        })
}

fn build(spec: &ViewSpec) -> Result<OwnedFd, String> {
    use nix::mount::MsFlags;
    use nix::sched::CloneFlags;
    // This thread's own filesystem context and mount namespace: the other threads of the
    // daemon keep the host's.
    nix::sched::unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare the mount namespace: {e}"))?;
    // Nothing mounted here propagates back to the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| format!("make the view's mounts private: {e}"))?;
    let root = rfs::open(
        &spec.rootfs,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open {}: {e}", spec.rootfs.display()))?;
    for m in &spec.mounts {
        mount_into(root.as_fd(), m)
            .map_err(|e| format!("mount {} on {}: {e}", m.source.display(), m.destination))?;
    }
    if spec.readonly_rootfs {
        set_readonly(root.as_fd(), false)
            .map_err(|e| format!("make the rootfs read-only in the view: {e}"))?;
    }
    Ok(root)
}

fn mount_into(root: BorrowedFd<'_>, m: &ViewMount) -> Result<(), String> {
    let is_dir = std::fs::metadata(&m.source)
        .map_err(|e| e.to_string())?
        .is_dir();
    let target = ensure_target(root, &m.destination, is_dir).map_err(|e| e.to_string())?;
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if m.recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = rustix::mount::open_tree(rfs::CWD, &m.source, flags)
        .map_err(|e| format!("open_tree: {e}"))?;
    if m.readonly {
        set_readonly(tree.as_fd(), m.recursive).map_err(|e| format!("mount_setattr: {e}"))?;
    }
    rustix::mount::move_mount(
        &tree,
        "",
        &target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| format!("move_mount: {e}"))
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Makes the mount `fd` refers to read-only (with its submounts when `recursive`).
fn set_readonly(fd: BorrowedFd<'_>, recursive: bool) -> std::io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: mount_setattr(2) with a valid descriptor, an empty NUL-terminated path, and a
    // pointer to a correctly laid out `struct mount_attr` that lives across the call, with
    // its size; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// An `O_PATH` descriptor of the mount target `dest` inside the root, creating it when
/// missing (a directory, or an empty file for a file source) as Docker and runc do. Every
/// component is resolved inside the root.
pub(crate) fn ensure_target(root: BorrowedFd<'_>, dest: &str, dir: bool) -> Result<OwnedFd, Errno> {
    match fstree::open_in_root(root, dest.as_bytes(), OFlags::PATH) {
        Err(Errno::NOENT) => {}
        r => return r,
    }
    let comps: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
    for i in 0..comps.len() {
        let prefix = comps[..=i].join("/");
        match fstree::open_in_root(root, prefix.as_bytes(), OFlags::PATH) {
            Ok(_) => continue,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = fstree::open_in_root(
            root,
            comps[..i].join("/").as_bytes(),
            OFlags::RDONLY | OFlags::DIRECTORY,
        )?;
        let last = i + 1 == comps.len();
        let r = if last && !dir {
            rfs::openat(
                &parent,
                comps[i],
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o755),
            )
            .map(drop)
        } else {
            rfs::mkdirat(&parent, comps[i], Mode::from_raw_mode(0o755))
        };
        match r {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
    }
    fstree::open_in_root(root, dest.as_bytes(), OFlags::PATH)
}
