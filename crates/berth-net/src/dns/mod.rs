//! The embedded DNS server: Docker's 127.0.0.11 for containers on user-defined networks.
//!
//! The daemon runs one [`DnsServer`]. For each container it serves, the server opens a UDP
//! socket and a TCP listener on 127.0.0.11:53 *inside the container's network namespace* (see
//! `netns.rs`) and serves them from its own thread, so the socket a query arrives on says which
//! container asks — no iptables redirection, no source-address guessing. The container's
//! resolv.conf names `nameserver 127.0.0.11` with `options ndots:0` ([`embedded_resolv_conf`]).
//!
//! * Names come from the shared [`Records`] (networks → endpoints), which `net` updates as
//!   containers come and go; a container only sees names on networks it is attached to.
//! * Everything else is forwarded ([`forward`]) to the container's `--dns` servers or the
//!   host's, and relayed unchanged.
//! * A container on no network with records (the default bridge) gets a plain forwarder.
//!
//! Robustness: every packet is handled in bounded time and memory (`resolver.rs` is pure and
//! fuzzed); each container has its own sockets, a bounded number of queries in flight
//! upstream and of TCP connections, and its UDP loop yields after every few packets, so one
//! container flooding its socket only takes its share of the server's thread. The server's
//! thread runs its own single-threaded tokio runtime, apart from the daemon's API runtime, so
//! DNS load never delays container starts or API calls.

mod forward;
mod netns;
mod records;
mod resolvconf;
mod resolver;
mod server;

pub use records::{dns_names, EndpointRecord, Records};
pub use resolvconf::{embedded_resolv_conf, nameservers, EmbeddedResolvConf};
pub use server::DnsServer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

/// Docker's embedded DNS address.
pub const DNS_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// An upstream resolver a container's queries are forwarded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// Reached from the host's network namespace (servers of the host's resolv.conf, which
    /// may be a loopback stub) rather than the container's (`--dns` servers).
    pub from_host: bool,
}

impl Upstream {
    /// A server of the host's resolv.conf, port 53, asked from the host's namespace.
    pub fn host(ip: IpAddr) -> Upstream {
        Upstream {
            addr: SocketAddr::new(ip, 53),
            from_host: true,
        }
    }

    /// A `--dns` server, port 53, asked from the container's namespace.
    pub fn container(ip: IpAddr) -> Upstream {
        Upstream {
            addr: SocketAddr::new(ip, 53),
            from_host: false,
        }
    }
}

/// A container to serve.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The full container ID: the key into [`Records`] for the names this container sees.
    pub container_id: String,
    /// Its network namespace: a bind-mounted namespace file or `/proc/<pid>/ns/net`. Opened
    /// once; the server keeps its own handle.
    pub netns: PathBuf,
    /// Where to forward names the server does not know, in order (at most 3 are used).
    pub upstreams: Vec<Upstream>,
    /// Whether the container has a way out (false when it is only on `--internal` networks):
    /// host-namespace upstreams are then not used, as in Docker.
    pub external_access: bool,
}

/// Tunables; the defaults are Docker's where Docker has one.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where the server listens inside each container's namespace.
    pub listen: SocketAddrV4,
    /// How long one upstream may take to answer (Docker: 4 s).
    pub upstream_timeout: Duration,
    /// Queries of one container waiting on upstreams at once; more are answered REFUSED.
    pub max_forwards_per_container: usize,
    /// TCP connections of one container at once; more are closed on accept.
    pub max_tcp_per_container: usize,
    /// A TCP connection with no complete query for this long is closed.
    pub tcp_idle_timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: SocketAddrV4::new(DNS_ADDRESS, 53),
            upstream_timeout: Duration::from_secs(4),
            max_forwards_per_container: 64,
            max_tcp_per_container: 16,
            tcp_idle_timeout: Duration::from_secs(5),
        }
    }
}

/// Errors of the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot start the embedded DNS server's thread: {0}")]
    Start(#[source] std::io::Error),
    #[error("cannot open the network namespace {path} of container {container}: {source} (is the container running?)")]
    OpenNetns {
        container: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter the network namespace {path} of container {container} to serve DNS: {source} (the daemon must run as root)")]
    EnterNetns {
        container: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} (UDP and TCP) in the network namespace of container {container}: {source}")]
    Listen {
        container: String,
        addr: SocketAddrV4,
        #[source]
        source: std::io::Error,
    },
}
