//! Sockets inside a container's network namespace. A socket belongs to the namespace it was
//! created in for its whole life, so the daemon (in the host namespace) creates it from a
//! short-lived thread that enters the container's namespace with setns(2), and then serves it
//! from its own threads. The thread ends right after, so no thread of the daemon is ever left in
//! a foreign namespace, whatever happens.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrStorage,
};

/// An open handle on a network namespace (a bind-mounted namespace file or `/proc/PID/ns/net`).
#[derive(Debug)]
pub(crate) struct Netns {
    file: File,
    path: PathBuf,
    /// (device, inode): the namespace's identity.
    ident: (u64, u64),
}

/// Why running something in a namespace failed.
#[derive(Debug)]
pub(crate) enum NsError {
    /// setns(2) failed (not root, or not a network namespace).
    Enter(io::Error),
    /// The work inside the namespace failed.
    Op(io::Error),
}

impl Netns {
    pub fn open(path: &Path) -> io::Result<Netns> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        Ok(Netns {
            file,
            path: path.to_path_buf(),
            ident: (meta.dev(), meta.ino()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn same_as(&self, other: &Netns) -> bool {
        self.ident == other.ident
    }

    /// Runs `f` on a new thread inside the namespace and waits for it (tens of microseconds).
    pub fn run<T, F>(&self, f: F) -> Result<T, NsError>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let ns = self.file.try_clone().map_err(NsError::Enter)?;
        let handle = std::thread::Builder::new()
            .name("berth-dns-netns".into())
            .spawn(move || in_namespace(&ns, f))
            .map_err(NsError::Op)?;
        handle
            .join()
            .unwrap_or_else(|_| Err(NsError::Op(io::Error::other("netns thread panicked"))))
    }

    /// Like [`Netns::run`], without blocking the calling task.
    pub async fn run_async<T, F>(&self, f: F) -> Result<T, NsError>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let ns = self.file.try_clone().map_err(NsError::Enter)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("berth-dns-netns".into())
            .spawn(move || {
                let _ = tx.send(in_namespace(&ns, f));
            })
            .map_err(NsError::Op)?;
        rx.await
            .unwrap_or_else(|_| Err(NsError::Op(io::Error::other("netns thread panicked"))))
    }
}

fn in_namespace<T>(ns: &File, f: impl FnOnce() -> io::Result<T>) -> Result<T, NsError> {
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| NsError::Enter(e.into()))?;
    f().map_err(NsError::Op)
}

fn new_socket(family: AddressFamily, ty: SockType) -> io::Result<OwnedFd> {
    Ok(socket(
        family,
        ty,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?)
}

/// The server's UDP socket and TCP listener on `addr`, in the current namespace. IP_FREEBIND
/// lets the bind succeed before the namespace's loopback is up: queries arrive once it is.
pub(crate) fn listen_sockets(
    addr: SocketAddrV4,
) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let sa = SockaddrIn::from(addr);
    let udp = new_socket(AddressFamily::Inet, SockType::Datagram)?;
    setsockopt(&udp, sockopt::IpFreebind, &true)?;
    bind(udp.as_raw_fd(), &sa)?;
    let tcp = new_socket(AddressFamily::Inet, SockType::Stream)?;
    setsockopt(&tcp, sockopt::ReuseAddr, &true)?;
    setsockopt(&tcp, sockopt::IpFreebind, &true)?;
    bind(tcp.as_raw_fd(), &sa)?;
    listen(&tcp, Backlog::new(64).map_err(io::Error::from)?)?;
    Ok((udp.into(), tcp.into()))
}

fn family_of(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// A UDP socket for talking to `to`, in the current namespace, bound to an ephemeral port.
pub(crate) fn udp_socket_for(to: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let fd = new_socket(family_of(&to), SockType::Datagram)?;
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    bind(fd.as_raw_fd(), &SockaddrStorage::from(any))?;
    Ok(fd.into())
}

/// An unconnected TCP socket for talking to `to`, in the current namespace.
pub(crate) fn tcp_socket_for(to: SocketAddr) -> io::Result<std::net::TcpStream> {
    Ok(new_socket(family_of(&to), SockType::Stream)?.into())
}
