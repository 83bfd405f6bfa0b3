//! berth-net: Docker's networking model for berth. Bridges, veth pairs and network namespaces
//! are set up through netlink, addresses come from an IPAM whose leases live in the container
//! records, published ports are forwarded by the kernel (nftables, a table of berth's own),
//! and user-defined networks get an embedded DNS server (`dns`). The engine calls this crate;
//! it knows no HTTP.

pub mod dns;
pub mod firewall;
pub mod hostinfo;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod ports;
pub mod proxy;

/// Errors of the networking layer. Messages say what failed and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("network namespace {path}: {message}")]
    Netns { path: String, message: String },
    #[error("nftables: {0}")]
    Firewall(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Exhausted(String),
}

impl From<rtnetlink::Error> for NetError {
    fn from(e: rtnetlink::Error) -> Self {
        NetError::Netlink(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, NetError>;
