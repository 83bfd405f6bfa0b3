//! Relaying a query the server does not answer itself to the container's upstream resolvers,
//! as Docker's `forwardExtDNS` does: at most three servers in order, each with a timeout; an
//! answer of SERVFAIL or REFUSED moves on to the next server. The query's original bytes go
//! out and the upstream's bytes come back unchanged (ID, flags, EDNS, records), after checking
//! that they answer this query. Over UDP first; when the client asked over TCP and the UDP
//! answer is truncated, the query is asked again over TCP.
//!
//! Servers from the host's resolv.conf are reached from the host's namespace (so a loopback
//! stub such as systemd-resolved's 127.0.0.53 works); `--dns` servers are reached from the
//! container's namespace, with the container's own routes, as in Docker.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::netns::{tcp_socket_for, udp_socket_for, Netns};
use super::resolver::{check_upstream, Transport, UpstreamReply, MAX_MESSAGE};
use super::Upstream;

/// Docker's `maxExtDNS`: servers tried per query.
const MAX_SERVERS: usize = 3;
const SERVFAIL: u8 = 2;
const REFUSED: u8 = 5;

/// Forwards `raw` (the query `query`) to `upstreams`; `None` when no server answered usefully.
/// Host-namespace servers are skipped when the container has no way out (`external` false:
/// only `--internal` networks), as Docker does.
pub(crate) async fn forward(
    raw: &[u8],
    query: &Message,
    transport: Transport,
    upstreams: &[Upstream],
    external: bool,
    netns: &Netns,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let usable = upstreams
        .iter()
        .filter(|u| external || !u.from_host)
        .take(MAX_SERVERS);
    for up in usable {
        let (mut reply, mut info) =
            match tokio::time::timeout(timeout, exchange_udp(up, raw, query, netns)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::debug!(upstream = %up.addr, error = %e, "dns: upstream failed (udp)");
                    continue;
                }
                Err(_) => {
                    tracing::debug!(upstream = %up.addr, "dns: upstream timed out (udp)");
                    continue;
                }
            };
        if info.truncated && transport == Transport::Tcp {
            match tokio::time::timeout(timeout, exchange_tcp(up, raw, query, netns)).await {
                Ok(Ok(r)) => (reply, info) = r,
                // The truncated answer is still the upstream's answer; relay it.
                Ok(Err(e)) => {
                    tracing::debug!(upstream = %up.addr, error = %e, "dns: upstream failed (tcp)")
                }
                Err(_) => tracing::debug!(upstream = %up.addr, "dns: upstream timed out (tcp)"),
            }
        }
        if info.rcode == SERVFAIL || info.rcode == REFUSED {
            continue;
        }
        return Some(reply);
    }
    None
}

fn unspecified(to: SocketAddr) -> SocketAddr {
    match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

fn ns_err(e: super::netns::NsError) -> io::Error {
    match e {
        super::netns::NsError::Enter(e) | super::netns::NsError::Op(e) => e,
    }
}

async fn exchange_udp(
    up: &Upstream,
    raw: &[u8],
    query: &Message,
    netns: &Netns,
) -> io::Result<(Vec<u8>, UpstreamReply)> {
    let to = up.addr;
    // A fresh socket (random source port) per query: only this query's answer can arrive on
    // it, from this server (the socket is connected).
    let sock = if up.from_host {
        UdpSocket::bind(unspecified(to)).await?
    } else {
        let s = netns
            .run_async(move || udp_socket_for(to))
            .await
            .map_err(ns_err)?;
        UdpSocket::from_std(s)?
    };
    sock.connect(to).await?;
    sock.send(raw).await?;
    loop {
        sock.readable().await?;
        // The buffer exists only while a datagram is read, not while waiting for one.
        let mut buf = vec![0u8; MAX_MESSAGE];
        match sock.try_recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                if let Some(info) = check_upstream(query, &buf) {
                    return Ok((buf, info));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

async fn exchange_tcp(
    up: &Upstream,
    raw: &[u8],
    query: &Message,
    netns: &Netns,
) -> io::Result<(Vec<u8>, UpstreamReply)> {
    let to = up.addr;
    let mut stream = if up.from_host {
        TcpStream::connect(to).await?
    } else {
        let s = netns
            .run_async(move || tcp_socket_for(to))
            .await
            .map_err(ns_err)?;
        TcpSocket::from_std_stream(s).connect(to).await?
    };
    let len = u16::try_from(raw.len()).map_err(|_| io::Error::other("query too long"))?;
    let mut out = Vec::with_capacity(raw.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(raw);
    stream.write_all(&out).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    let info = check_upstream(query, &buf)
        .ok_or_else(|| io::Error::other("the upstream's TCP answer does not match the query"))?;
    Ok((buf, info))
}
