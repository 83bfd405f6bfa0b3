//! The userland proxy: Docker's `docker-proxy`, for published ports the kernel path cannot
//! forward (the daemon runs with `"iptables": false`, so berth has no DNAT rules).
//!
//! The daemon reserves each host port (a bound socket, `ports::reserve`) and hands the sockets
//! to a `berth userland-proxy` process of the container as inherited file descriptors, so the
//! proxy never races anything for the port and a port it serves stays "already allocated".
//! The process runs in its own process group: it outlives a daemon restart or `kill -9` like
//! the container does, and the daemon stops it when the container's network goes away.
//! TCP connections are spliced with tokio's `copy_bidirectional`; UDP keeps one upstream socket
//! per client address, dropped after 90 s without traffic (Docker's proxy timeout).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::ports::Proto;
use crate::{NetError, Result};

/// How long a UDP client's flow lives without traffic.
pub const UDP_IDLE: Duration = Duration::from_secs(90);
/// At most this many UDP flows per port; a new client beyond it is dropped.
pub const UDP_MAX_FLOWS: usize = 1024;

/// One forwarded port: the inherited socket `fd` (bound to the host address and port) and
/// where its traffic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxySpec {
    pub proto: Proto,
    pub fd: RawFd,
    pub target: SocketAddrV4,
}

impl ProxySpec {
    /// `tcp:3:10.0.0.2:80` (protocol, inherited descriptor, container address and port).
    pub fn to_arg(&self) -> String {
        format!("{}:{}:{}", self.proto.as_str(), self.fd, self.target)
    }

    pub fn parse(s: &str) -> Result<ProxySpec> {
        let bad = || {
            NetError::Invalid(format!(
                "invalid proxy port spec {s:?} (want PROTO:FD:IP:PORT)"
            ))
        };
        let mut it = s.splitn(3, ':');
        let proto = Proto::parse(it.next().ok_or_else(bad)?).map_err(|_| bad())?;
        if proto == Proto::Sctp {
            return Err(NetError::Invalid(
                "the userland proxy forwards TCP and UDP only".to_string(),
            ));
        }
        let fd: RawFd = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if fd < 3 {
            return Err(bad());
        }
        let target: SocketAddrV4 = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        Ok(ProxySpec { proto, fd, target })
    }
}

/// Makes a reserved socket ready for the proxy before it is handed over: a TCP socket starts
/// listening here, so clients connecting before the proxy process runs wait in the backlog
/// instead of being refused. (A UDP socket queues datagrams once bound.)
pub fn prepare(proto: Proto, fd: &OwnedFd) -> Result<()> {
    if proto == Proto::Tcp {
        nix::sys::socket::listen(fd, nix::sys::socket::Backlog::MAXCONN)
            .map_err(|e| NetError::Invalid(format!("userland proxy: listen: {e}")))?;
    }
    Ok(())
}

/// Runs the proxy for `specs` until the process is killed. Each fd must be an inherited,
/// bound socket of the spec's protocol; the caller owns nothing of them afterwards.
pub fn run(specs: &[ProxySpec]) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| NetError::Invalid(format!("cannot start the proxy's runtime: {e}")))?;
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for s in specs {
            // SAFETY: the daemon passes each descriptor once, open and owned by this process
            // (ProxySpec::parse refuses 0-2); nothing else in the process uses it.
            let fd = unsafe { OwnedFd::from_raw_fd(s.fd) };
            match s.proto {
                Proto::Tcp => {
                    let l = tcp_listener(fd)?;
                    tasks.spawn(serve_tcp(l, s.target));
                }
                Proto::Udp => {
                    let sock = std::net::UdpSocket::from(fd);
                    sock.set_nonblocking(true).map_err(io)?;
                    let sock = tokio::net::UdpSocket::from_std(sock).map_err(io)?;
                    tasks.spawn(serve_udp(Arc::new(sock), s.target));
                }
                Proto::Sctp => {
                    return Err(NetError::Invalid(
                        "the userland proxy forwards TCP and UDP only".to_string(),
                    ))
                }
            }
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                return Err(e);
            }
        }
        Ok(())
    })
}

fn io(e: std::io::Error) -> NetError {
    NetError::Invalid(format!("userland proxy: {e}"))
}

/// Starts listening on a bound (reserved) TCP socket.
fn tcp_listener(fd: OwnedFd) -> Result<tokio::net::TcpListener> {
    nix::sys::socket::listen(&fd, nix::sys::socket::Backlog::MAXCONN)
        .map_err(|e| NetError::Invalid(format!("userland proxy: listen: {e}")))?;
    let l = std::net::TcpListener::from(fd);
    l.set_nonblocking(true).map_err(io)?;
    tokio::net::TcpListener::from_std(l).map_err(io)
}

async fn serve_tcp(l: tokio::net::TcpListener, target: SocketAddrV4) -> Result<()> {
    loop {
        let (mut client, _) = match l.accept().await {
            Ok(c) => c,
            // Out of descriptors or a connection reset before accept: keep serving.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let Ok(mut up) = tokio::net::TcpStream::connect(target).await else {
                // The container does not answer: the client sees the connection closed, as
                // with Docker's proxy.
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
        });
    }
}

async fn serve_udp(sock: Arc<tokio::net::UdpSocket>, target: SocketAddrV4) -> Result<()> {
    let flows: Arc<std::sync::Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>> =
        Arc::default();
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => continue,
        };
        let existing = flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&from)
            .cloned();
        let up = match existing {
            Some(u) => u,
            None => {
                if flows.lock().unwrap_or_else(|p| p.into_inner()).len() >= UDP_MAX_FLOWS {
                    continue;
                }
                let Ok(u) = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else {
                    continue;
                };
                if u.connect(target).await.is_err() {
                    continue;
                }
                let u = Arc::new(u);
                flows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(from, u.clone());
                tokio::spawn(udp_replies(sock.clone(), u.clone(), from, flows.clone()));
                u
            }
        };
        let _ = up.send(&buf[..n]).await;
    }
}

/// Sends the container's replies of one flow back to its client until the flow is idle.
async fn udp_replies(
    sock: Arc<tokio::net::UdpSocket>,
    up: Arc<tokio::net::UdpSocket>,
    client: SocketAddr,
    flows: Arc<std::sync::Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>>,
) {
    let mut buf = vec![0u8; 65535];
    // The flow ends when idle, or when the container refused a datagram (ICMP).
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, up.recv(&mut buf)).await {
        let _ = sock.send_to(&buf[..n], client).await;
    }
    flows
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&client);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trip_and_errors() {
        let s = ProxySpec::parse("tcp:3:10.1.2.3:80").unwrap();
        assert_eq!(s.proto, Proto::Tcp);
        assert_eq!(s.fd, 3);
        assert_eq!(s.target, "10.1.2.3:80".parse().unwrap());
        assert_eq!(ProxySpec::parse(&s.to_arg()).unwrap(), s);
        assert_eq!(
            ProxySpec::parse("udp:7:1.2.3.4:53").unwrap().proto,
            Proto::Udp
        );
        for bad in [
            "",
            "tcp",
            "tcp:3",
            "tcp:x:1.2.3.4:80",
            "tcp:1:1.2.3.4:80",
            "tcp:3:1.2.3.4",
            "icmp:3:1.2.3.4:80",
            "sctp:3:1.2.3.4:80",
            "tcp:3:[::1]:80",
        ] {
            assert!(ProxySpec::parse(bad).is_err(), "{bad}");
        }
    }

    /// The proxy forwards TCP and UDP between loopback sockets (no root needed): the
    /// "container" is a local echo server.
    #[test]
    fn forwards_tcp_and_udp() {
        use std::io::{Read, Write};
        use std::os::fd::IntoRawFd;
        // Echo servers standing in for the container.
        let tl = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taddr = match tl.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        std::thread::spawn(move || {
            for c in tl.incoming() {
                let mut c = c.unwrap();
                std::thread::spawn(move || {
                    let mut b = [0u8; 1024];
                    while let Ok(n) = c.read(&mut b) {
                        if n == 0 || c.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let us = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let uaddr = match us.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        std::thread::spawn(move || {
            let mut b = [0u8; 1024];
            while let Ok((n, from)) = us.recv_from(&mut b) {
                let _ = us.send_to(&b[..n], from);
            }
        });
        // Reserved host ports, as the daemon hands them over.
        let r_tcp = crate::ports::reserve(Proto::Tcp, Ipv4Addr::LOCALHOST.into(), 0).unwrap();
        let r_udp = crate::ports::reserve(Proto::Udp, Ipv4Addr::LOCALHOST.into(), 0).unwrap();
        let (tfd, tport) = r_tcp.into_parts().unwrap();
        let (ufd, uport) = r_udp.into_parts().unwrap();
        prepare(Proto::Tcp, &tfd).unwrap();
        prepare(Proto::Udp, &ufd).unwrap();
        let specs = vec![
            ProxySpec {
                proto: Proto::Tcp,
                fd: tfd.into_raw_fd(),
                target: taddr,
            },
            ProxySpec {
                proto: Proto::Udp,
                fd: ufd.into_raw_fd(),
                target: uaddr,
            },
        ];
        std::thread::spawn(move || run(&specs));
        let mut c = std::net::TcpStream::connect(("127.0.0.1", tport)).unwrap();
        c.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        u.send_to(b"ping", ("127.0.0.1", uport)).unwrap();
        let mut b = [0u8; 16];
        let (n, from) = u.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"ping");
        assert_eq!(from.port(), uport, "replies come from the published port");
        // The port the proxy listens on stays allocated, SO_REUSEADDR or not.
        assert!(
            crate::ports::reserve_listening(Proto::Tcp, Ipv4Addr::LOCALHOST.into(), tport).is_err()
        );
        assert!(crate::ports::reserve(Proto::Tcp, Ipv4Addr::LOCALHOST.into(), tport).is_err());
    }
}
