//! Bridges, veth pairs, addresses and routes through rtnetlink (no `ip` processes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::{NetError, Result};

const EEXIST: i32 = libc::EEXIST;
const ENODEV: i32 = libc::ENODEV;

/// The errno of a netlink error, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn ctx(what: impl std::fmt::Display, e: rtnetlink::Error) -> NetError {
    NetError::Netlink(format!("{what}: {e}"))
}

/// A netlink connection in the daemon's own (host) network namespace.
#[derive(Clone)]
pub struct Host {
    handle: Handle,
}

impl Host {
    /// Opens the connection; must be called inside the tokio runtime.
    pub fn connect() -> Result<Host> {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| NetError::Netlink(format!("cannot open a netlink socket: {e}")))?;
        tokio::spawn(conn);
        Ok(Host { handle })
    }

    /// The index of interface `name`, None when there is none.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        index_of(&self.handle, name).await
    }

    /// Creates bridge `name` unless it exists, gives it `gw/prefix` (and `gw6`, the IPv6
    /// gateway of an `--ipv6` network) and `mtu`, brings it up, and returns its index.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        gw: Ipv4Addr,
        prefix: u8,
        gw6: Option<(Ipv6Addr, u8)>,
        mtu: Option<u32>,
    ) -> Result<u32> {
        let idx = match self.link_index(name).await? {
            Some(i) => i,
            None => {
                let mut b = LinkBridge::new(name);
                if let Some(m) = mtu {
                    b = b.mtu(m);
                }
                match self.handle.link().add(b.build()).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(EEXIST) => {}
                    Err(e) => return Err(ctx(format!("cannot create bridge {name}"), e)),
                }
                self.link_index(name).await?.ok_or_else(|| {
                    NetError::Netlink(format!("bridge {name} vanished right after its creation"))
                })?
            }
        };
        match self
            .handle
            .address()
            .add(idx, IpAddr::V4(gw), prefix)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => {
                return Err(ctx(
                    format!("cannot give {name} the address {gw}/{prefix}"),
                    e,
                ))
            }
        }
        if let Some((gw6, prefix6)) = gw6 {
            set_iface_sysctl6(name, "disable_ipv6", "0")?;
            add_address6(&self.handle, idx, gw6, prefix6, name).await?;
        }
        let mut up = LinkUnspec::new_with_index(idx).up();
        if let Some(m) = mtu {
            up = up.mtu(m);
        }
        self.handle
            .link()
            .set(up.build())
            .execute()
            .await
            .map_err(|e| ctx(format!("cannot bring {name} up"), e))?;
        Ok(idx)
    }

    /// Deletes interface `name`; nothing when it does not exist.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let Some(idx) = self.link_index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
            Err(e) => Err(ctx(format!("cannot delete {name}"), e)),
        }
    }

    /// Creates a veth pair: `host_name` enslaved to the bridge with index `bridge` and up, its
    /// peer `peer_name` (with `mac`) directly in the namespace `ns_fd`. One netlink request.
    pub async fn add_veth(
        &self,
        host_name: &str,
        bridge: u32,
        mtu: Option<u32>,
        ns_fd: i32,
        peer_name: &str,
        mac: [u8; 6],
    ) -> Result<()> {
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer_name.to_string())
            .setns_by_fd(ns_fd)
            .address(mac.to_vec());
        if let Some(m) = mtu {
            peer = peer.mtu(m);
        }
        let mut host = LinkVeth::new(host_name, peer_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .controller(bridge)
            .up();
        if let Some(m) = mtu {
            host = host.mtu(m);
        }
        let _ = InfoKind::Veth;
        self.handle
            .link()
            .add(host.build())
            .execute()
            .await
            .map_err(|e| ctx(format!("cannot create the veth pair {host_name}"), e))
    }

    /// Turns on hairpin mode on a bridge port, so a container reaches its own published ports
    /// through the host's addresses.
    pub async fn set_hairpin(&self, port_name: &str) -> Result<()> {
        let idx = self
            .link_index(port_name)
            .await?
            .ok_or_else(|| NetError::Netlink(format!("no interface {port_name}")))?;
        self.handle
            .link()
            .set_port(LinkBridgePort::new(idx).hairpin(true).build())
            .execute()
            .await
            .map_err(|e| ctx(format!("cannot set hairpin mode on {port_name}"), e))
    }

    /// Makes a bridge port isolated: isolated ports exchange no frames with each other, only
    /// with the bridge itself and non-isolated ports (`enable_icc=false`).
    pub async fn set_isolated(&self, port_name: &str) -> Result<()> {
        let idx = self
            .link_index(port_name)
            .await?
            .ok_or_else(|| NetError::Netlink(format!("no interface {port_name}")))?;
        self.handle
            .link()
            .set_port(LinkBridgePort::new(idx).isolated(true).build())
            .execute()
            .await
            .map_err(|e| ctx(format!("cannot isolate the bridge port {port_name}"), e))
    }

    /// The MTU of interface `name`.
    pub async fn mtu(&self, name: &str) -> Result<Option<u32>> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(m.attributes.iter().find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            })),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(ctx(format!("cannot read {name}"), e)),
        }
    }
}

async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let mut s = handle.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(ctx(format!("cannot look up interface {name}"), e)),
    }
}

/// Adds an IPv6 address without duplicate address detection (berth's IPAM hands out each
/// address once, and a tentative address could not be used for the first second); an
/// existing one is kept.
async fn add_address6(
    handle: &Handle,
    idx: u32,
    ip: Ipv6Addr,
    prefix: u8,
    ifname: &str,
) -> Result<()> {
    let mut req = handle.address().add(idx, IpAddr::V6(ip), prefix);
    req.message_mut()
        .attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
        Err(e) => Err(ctx(
            format!("cannot give {ifname} the IPv6 address {ip}/{prefix} (is IPv6 disabled on this host?)"),
            e,
        )),
    }
}

/// The IPv6 side of an endpoint: address, prefix and, for the default route, the gateway.
#[derive(Debug, Clone, Copy)]
pub struct Inside6 {
    pub ip: Ipv6Addr,
    pub prefix: u8,
    pub gw: Option<Ipv6Addr>,
}

/// Inside a container's namespace: loopback up, `ifname` up with `ip/prefix` (and the IPv6
/// address of `v6`), and default routes through `gw` (and `v6.gw`).
#[allow(clippy::too_many_arguments)]
pub async fn configure_inside(
    ns: &Handle,
    ifname: &str,
    ip: Ipv4Addr,
    prefix: u8,
    gw: Option<Ipv4Addr>,
    v6: Option<Inside6>,
    bring_lo_up: bool,
) -> Result<()> {
    if bring_lo_up {
        ns.link()
            .set(LinkUnspec::new_with_index(1).up().build())
            .execute()
            .await
            .map_err(|e| ctx("cannot bring lo up", e))?;
    }
    let idx = index_of(ns, ifname)
        .await?
        .ok_or_else(|| NetError::Netlink(format!("no {ifname} in the container's namespace")))?;
    ns.address()
        .add(idx, IpAddr::V4(ip), prefix)
        .execute()
        .await
        .map_err(|e| ctx(format!("cannot give {ifname} the address {ip}/{prefix}"), e))?;
    ns.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(|e| ctx(format!("cannot bring {ifname} up"), e))?;
    if let Some(gw) = gw {
        ns.route()
            .add(
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(gw)
                    .output_interface(idx)
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| ctx(format!("cannot add the default route via {gw}"), e))?;
    }
    if let Some(v6) = v6 {
        add_address6(ns, idx, v6.ip, v6.prefix, ifname).await?;
        if let Some(gw6) = v6.gw {
            ns.route()
                .add(
                    RouteMessageBuilder::<Ipv6Addr>::new()
                        .gateway(gw6)
                        .output_interface(idx)
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| ctx(format!("cannot add the IPv6 default route via {gw6}"), e))?;
        }
    }
    Ok(())
}

/// Deletes interface `ifname` inside a namespace (a network disconnected from a running
/// container); its host end goes with it.
pub async fn delete_inside(ns: &Handle, ifname: &str) -> Result<()> {
    let Some(idx) = index_of(ns, ifname).await? else {
        return Ok(());
    };
    match ns.link().del(idx).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
        Err(e) => Err(ctx(format!("cannot delete {ifname}"), e)),
    }
}

/// Sets `net.ipv4.conf.<ifname>.<key>` (berth's own interfaces only).
pub fn set_iface_sysctl(ifname: &str, key: &str, value: &str) -> Result<()> {
    let p = format!("/proc/sys/net/ipv4/conf/{ifname}/{key}");
    std::fs::write(&p, value).map_err(|e| NetError::Netlink(format!("cannot set {p}: {e}")))
}

/// Sets `net.ipv6.conf.<ifname>.<key>` (berth's own interfaces only).
pub fn set_iface_sysctl6(ifname: &str, key: &str, value: &str) -> Result<()> {
    let p = format!("/proc/sys/net/ipv6/conf/{ifname}/{key}");
    std::fs::write(&p, value).map_err(|e| {
        NetError::Netlink(format!(
            "cannot set {p}: {e} (IPv6 networks need a kernel with IPv6 enabled)"
        ))
    })
}

/// Turns on IPv4 forwarding, which bridged containers need to reach beyond the host (Docker
/// does the same). Only written when off.
pub fn enable_ip_forward() -> Result<()> {
    let p = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(p)
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
    {
        return Ok(());
    }
    std::fs::write(p, "1").map_err(|e| NetError::Netlink(format!("cannot enable {p}: {e}")))
}
