//! Network namespaces the daemon creates for containers. Each one is bind-mounted on a file
//! under the exec root, so it outlives the thread that made it and the daemon itself, and runc
//! joins it through the OCI spec's namespace path (decision 0003).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::{NetError, Result};

fn err(path: &Path, message: impl std::fmt::Display) -> NetError {
    NetError::Netns {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// A netlink connection whose socket lives inside a namespace, plus the namespace's fd.
pub struct NsLink {
    pub handle: rtnetlink::Handle,
    pub ns_fd: OwnedFd,
}

/// Creates a network namespace bound at `path` and a netlink connection inside it.
///
/// The work happens on a short-lived thread of its own: `unshare(CLONE_NEWNET)` changes the
/// calling thread's namespace, which must never happen to a runtime worker.
pub async fn create(path: &Path) -> Result<NsLink> {
    let rt = tokio::runtime::Handle::current();
    let p = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let _ = tx.send(create_on_this_thread(&p, &rt));
        })
        .map_err(|e| err(path, format!("cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| err(path, "the namespace thread died"))?
}

fn create_on_this_thread(path: &Path, rt: &tokio::runtime::Handle) -> Result<NsLink> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| err(path, format!("cannot create the mount point: {e}")))?;
    let made = (|| {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| err(path, format!("unshare: {e}")))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err(path, format!("bind mount: {e}")))?;
        let ns_fd: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")
            .map_err(|e| err(path, format!("open: {e}")))?
            .into();
        let handle = connect_here(rt).map_err(|e| err(path, e))?;
        Ok(NsLink { handle, ns_fd })
    })();
    if made.is_err() {
        let _ = umount2(path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(path);
    }
    made
}

/// A netlink connection inside the namespace bound at `path` (for containers joining a
/// network while they run).
pub async fn join(path: &Path) -> Result<NsLink> {
    let rt = tokio::runtime::Handle::current();
    let p = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let r = (|| {
                let f = std::fs::File::open(&p).map_err(|e| err(&p, format!("open: {e}")))?;
                setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| err(&p, format!("setns: {e}")))?;
                let handle = connect_here(&rt).map_err(|e| err(&p, e))?;
                Ok(NsLink {
                    handle,
                    ns_fd: f.into(),
                })
            })();
            let _ = tx.send(r);
        })
        .map_err(|e| err(path, format!("cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| err(path, "the namespace thread died"))?
}

/// Opens a netlink socket in the calling thread's network namespace and runs its connection
/// on the runtime.
fn connect_here(rt: &tokio::runtime::Handle) -> std::io::Result<rtnetlink::Handle> {
    let _guard = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection()?;
    rt.spawn(conn);
    Ok(handle)
}

/// Unmounts and removes a namespace file. The kernel frees the namespace (and the container
/// ends of its veth pairs, and so their host ends) once nothing uses it any more.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(err(path, format!("umount: {e}"))),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err(path, format!("remove: {e}"))),
    }
}

/// The namespace files under `dir`.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The raw fd of a namespace, for netlink's `IFLA_NET_NS_FD`.
pub fn raw(ns: &NsLink) -> i32 {
    ns.ns_fd.as_raw_fd()
}
