//! Published ports: Docker's `80/tcp` keys and host-port ranges, and the host-port
//! reservations. A reservation is a socket bound (not listening) to the host address and port
//! for as long as the port is published: it makes a second publish of the port fail as Docker's
//! does ("port is already allocated"), keeps other programs off the port, and picks free
//! ephemeral ports. The traffic itself never reaches it: nftables rewrites it first (without
//! firewall rules the userland proxy listens on the reserved socket itself, `proxy`).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};
use serde::{Deserialize, Serialize};

use crate::{NetError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    pub fn parse(s: &str) -> Result<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(NetError::Invalid(format!("invalid proto: {s}"))),
        }
    }
}

/// `80`, `8000-8010` → the inclusive range (Docker's `nat.ParsePortRange`).
pub fn parse_range(s: &str) -> Result<(u16, u16)> {
    let bad = || NetError::Invalid(format!("invalid port range: {s}"));
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// A `PortBindings`/`ExposedPorts` key: `80/tcp`, `53/udp`, `8000-8001/tcp`, `80` (tcp).
pub fn parse_port_key(key: &str) -> Result<(u16, u16, Proto)> {
    let (port, proto) = match key.split_once('/') {
        Some((p, pr)) => (p, pr),
        None => (key, "tcp"),
    };
    let proto = Proto::parse(proto)?;
    let (a, b) = parse_range(port)
        .map_err(|_| NetError::Invalid(format!("invalid containerPort: {port}")))?;
    if a == 0 {
        return Err(NetError::Invalid(format!("invalid containerPort: {port}")));
    }
    Ok((a, b, proto))
}

/// A held host port (see the module documentation).
#[derive(Debug)]
pub struct Reservation {
    _sock: Option<OwnedFd>,
}

impl Reservation {
    /// The bound socket and its port, for a process that serves the port itself (the userland
    /// proxy). None for SCTP, which holds no socket.
    pub fn into_parts(self) -> Option<(OwnedFd, u16)> {
        let fd = self._sock?;
        let a =
            nix::sys::socket::getsockname::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(&fd))
                .ok()?;
        let port = match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
            (Some(v4), _) => v4.port(),
            (_, Some(v6)) => v6.port(),
            _ => return None,
        };
        Some((fd, port))
    }
}

/// `ip:port` as Docker writes it (`[::1]:80` for IPv6).
fn host_port(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

/// Binds `ip:port` for `proto` without listening. EADDRINUSE becomes Docker's message. An
/// IPv6 socket is IPv6-only, so `[::]` and `0.0.0.0` are separate reservations, as in Docker.
pub fn reserve(proto: Proto, ip: IpAddr, port: u16) -> Result<Reservation> {
    reserve_with(proto, ip, port, false)
}

/// `reserve` for a TCP port the userland proxy will listen on: with SO_REUSEADDR, as every
/// server sets it, so connections of an earlier holder of the port still in TIME_WAIT do not
/// block it. A listening socket still makes the bind fail ("already allocated").
pub fn reserve_listening(proto: Proto, ip: IpAddr, port: u16) -> Result<Reservation> {
    reserve_with(proto, ip, port, proto == Proto::Tcp)
}

fn reserve_with(proto: Proto, ip: IpAddr, port: u16, reuse_addr: bool) -> Result<Reservation> {
    let hp = host_port(ip, port);
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
        // SCTP sockets need the sctp module; the firewall map still refuses a second
        // publish of the same port.
        Proto::Sctp => return Ok(Reservation { _sock: None }),
    };
    let family = if ip.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| NetError::Invalid(format!("cannot open a socket to reserve {hp}: {e}")))?;
    if ip.is_ipv6() {
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv6V6Only, &true).map_err(
            |e| NetError::Invalid(format!("cannot set IPV6_V6ONLY to reserve {hp}: {e}")),
        )?;
    }
    if reuse_addr {
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReuseAddr, &true).map_err(
            |e| NetError::Invalid(format!("cannot set SO_REUSEADDR to reserve {hp}: {e}")),
        )?;
    }
    match bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(SocketAddr::new(ip, port)),
    ) {
        Ok(()) => Ok(Reservation { _sock: Some(fd) }),
        Err(nix::errno::Errno::EADDRINUSE) => Err(NetError::Conflict(format!(
            "Bind for {hp} failed: port is already allocated"
        ))),
        Err(nix::errno::Errno::EADDRNOTAVAIL) => Err(NetError::Invalid(format!(
            "Bind for {hp} failed: cannot assign requested address (no interface of the host has {ip})"
        ))),
        Err(e) => Err(NetError::Invalid(format!("Bind for {hp} failed: {e}"))),
    }
}

/// The host's ephemeral port range (`net.ipv4.ip_local_port_range`), Docker's default
/// 49153–65535 when unreadable.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>());
            match (it.next(), it.next()) {
                (Some(Ok(a)), Some(Ok(b))) if a <= b => Some((a, b)),
                _ => None,
            }
        })
        .unwrap_or((49153, 65535))
}

/// Reserves a free port of `range` for `proto` on `ip`, starting after `*cursor` (ports are
/// handed out in turn, as Docker's allocator does).
pub fn reserve_any(
    proto: Proto,
    ip: IpAddr,
    range: (u16, u16),
    cursor: &mut u16,
    taken: &dyn Fn(u16) -> bool,
) -> Result<(u16, Reservation)> {
    let (lo, hi) = range;
    let n = (hi - lo) as u32 + 1;
    let start = if *cursor >= lo && *cursor < hi {
        (*cursor - lo) as u32 + 1
    } else {
        0
    };
    for i in 0..n {
        let port = lo + ((start + i) % n) as u16;
        if port == 0 || taken(port) {
            continue;
        }
        if let Ok(r) = reserve(proto, ip, port) {
            *cursor = port;
            return Ok((port, r));
        }
    }
    Err(NetError::Exhausted(format!(
        "no free host port in {lo}-{hi} for {}",
        proto.as_str()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, 80, Proto::Tcp));
        assert_eq!(parse_port_key("53/UDP").unwrap(), (53, 53, Proto::Udp));
        assert_eq!(
            parse_port_key("7000-7002/sctp").unwrap(),
            (7000, 7002, Proto::Sctp)
        );
        assert_eq!(parse_port_key("8080").unwrap(), (8080, 8080, Proto::Tcp));
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("80/icmp").is_err());
        assert!(parse_port_key("90-80/tcp").is_err());
        assert!(parse_port_key("x/tcp").is_err());
        assert!(parse_port_key("70000/tcp").is_err());
    }

    #[test]
    fn reservations_conflict_like_docker() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mut cursor = 0;
        let (port, r) =
            reserve_any(Proto::Tcp, lo, ephemeral_range(), &mut cursor, &|_| false).unwrap();
        let e = reserve(Proto::Tcp, lo, port).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        // UDP is another space.
        let _u = reserve(Proto::Udp, lo, port).unwrap();
        drop(r);
        let _again = reserve(Proto::Tcp, lo, port).unwrap();
        assert!(reserve(Proto::Tcp, "192.0.2.254".parse().unwrap(), port).is_err());
        // IPv6 is its own space too, and its message brackets the address.
        let lo6: IpAddr = "::1".parse().unwrap();
        if let Ok(r6) = reserve(Proto::Tcp, lo6, port) {
            let e = reserve(Proto::Tcp, lo6, port).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("Bind for [::1]:{port} failed: port is already allocated")
            );
            assert_eq!(r6.into_parts().map(|(_, p)| p), Some(port));
        }
    }

    proptest! {
        #[test]
        fn key_parser_never_panics(s in "\\PC{0,20}") {
            let _ = parse_port_key(&s);
            let _ = parse_range(&s);
        }
    }
}
