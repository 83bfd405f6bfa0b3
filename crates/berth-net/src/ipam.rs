//! Address management for bridge networks: subnet validation, the choice of a subnet that
//! collides with nothing on the host, and the per-network pool containers take addresses from.
//!
//! The pool itself is in memory; the leases are the addresses recorded in the records of the
//! running containers, from which the engine rebuilds every pool at daemon start. A lease
//! therefore cannot outlive its container (decision 0003).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::{NetError, Result};

/// Parses `a.b.c.d/n` (Docker also accepts a host address inside the subnet and truncates it).
pub fn parse_subnet(s: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = s
        .trim()
        .parse()
        .map_err(|_| NetError::Invalid(format!("invalid subnet {s}: expected a.b.c.d/n")))?;
    if net.prefix_len() > 30 {
        return Err(NetError::Invalid(format!(
            "invalid subnet {s}: the prefix must be at most /30 to leave room for a gateway and a container"
        )));
    }
    if net.prefix_len() < 8 {
        return Err(NetError::Invalid(format!(
            "invalid subnet {s}: the prefix must be at least /8"
        )));
    }
    Ok(net.trunc())
}

/// Docker's `bip` form: the bridge's own address with the prefix (`10.20.0.1/24`).
pub fn parse_bip(s: &str) -> Result<(Ipv4Net, Ipv4Addr)> {
    let net: Ipv4Net = s
        .trim()
        .parse()
        .map_err(|_| NetError::Invalid(format!("invalid bip {s}: expected a.b.c.d/n")))?;
    let subnet = parse_subnet(s)?;
    let gw = net.addr();
    if gw == subnet.network() || gw == subnet.broadcast() {
        return Err(NetError::Invalid(format!(
            "invalid bip {s}: the bridge address must be a host address of the subnet (e.g. {}/{})",
            first_host(&subnet),
            subnet.prefix_len()
        )));
    }
    Ok((subnet, gw))
}

/// The first host address of a subnet (the default gateway).
pub fn first_host(net: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).saturating_add(1))
}

/// Whether two subnets share any address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// An address pool of `default-address-pools`: `base` split into subnets of `size` bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Ipv4Net,
    pub size: u8,
}

impl AddressPool {
    pub fn new(base: &str, size: u8) -> Result<AddressPool> {
        let base: Ipv4Net = base
            .parse()
            .map_err(|_| NetError::Invalid(format!("invalid address pool base {base}")))?;
        if size < base.prefix_len() || size > 30 {
            return Err(NetError::Invalid(format!(
                "invalid address pool size {size} for base {base}: it must be between {} and 30",
                base.prefix_len()
            )));
        }
        Ok(AddressPool {
            base: base.trunc(),
            size,
        })
    }
}

/// The address pools user networks take subnets from when none is given, in Docker's order
/// of its default pools (172.17–31/16, then 192.168/20s), the default bridge excluded.
pub fn docker_default_pools() -> Vec<AddressPool> {
    let mut v: Vec<AddressPool> = (17..=31)
        .map(|b| AddressPool {
            base: Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).unwrap_or_default(),
            size: 16,
        })
        .collect();
    v.push(AddressPool {
        base: Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).unwrap_or_default(),
        size: 20,
    });
    v
}

/// Candidates for berth's default bridge when daemon.json sets neither `bip` nor pools: not
/// docker0's 172.17.0.0/16 and not Podman's 10.88.0.0/16, so berth runs beside both.
pub fn default_bridge_candidates() -> Vec<Ipv4Net> {
    (0..16u8)
        .filter_map(|i| Ipv4Net::new(Ipv4Addr::new(10, 210 + i, 0, 0), 16).ok())
        .collect()
}

/// The first subnet of `pools` that overlaps none of `taken` (host routes, other networks).
pub fn choose_subnet(pools: &[AddressPool], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    for p in pools {
        let Ok(subnets) = p.base.subnets(p.size) else {
            continue;
        };
        for s in subnets {
            if !taken.iter().any(|t| overlaps(t, &s)) {
                return Some(s);
            }
        }
    }
    None
}

/// One network's addresses: the subnet, the range containers are given addresses from, the
/// gateway, and the addresses in use.
#[derive(Debug, Clone)]
pub struct Pool {
    pub subnet: Ipv4Net,
    pub range: Ipv4Net,
    pub gateway: Ipv4Addr,
    used: BTreeSet<Ipv4Addr>,
    /// Where the next search starts: addresses are handed out in turn, as Docker does, so a
    /// just-released address (and its stale ARP and conntrack entries) is not reused at once.
    cursor: u32,
}

impl Pool {
    /// Validates Docker's rules: the range inside the subnet, the gateway a host address of
    /// the subnet.
    pub fn new(subnet: Ipv4Net, range: Option<Ipv4Net>, gateway: Option<Ipv4Addr>) -> Result<Pool> {
        let subnet = subnet.trunc();
        let range = match range {
            Some(r) => {
                let r = r.trunc();
                if !subnet.contains(&r.network()) || r.prefix_len() < subnet.prefix_len() {
                    return Err(NetError::Invalid(format!(
                        "Invalid ip range {r}: it is not contained in subnet {subnet}"
                    )));
                }
                r
            }
            None => subnet,
        };
        let gateway = gateway.unwrap_or_else(|| first_host(&subnet));
        if !subnet.contains(&gateway) {
            return Err(NetError::Invalid(format!(
                "Invalid gateway {gateway}: it is not in subnet {subnet}"
            )));
        }
        if gateway == subnet.network() || gateway == subnet.broadcast() {
            return Err(NetError::Invalid(format!(
                "Invalid gateway {gateway}: it must be a host address of subnet {subnet}"
            )));
        }
        Ok(Pool {
            subnet,
            range,
            gateway,
            used: BTreeSet::new(),
            cursor: 0,
        })
    }

    fn assignable(&self, ip: Ipv4Addr) -> bool {
        ip != self.subnet.network() && ip != self.subnet.broadcast() && ip != self.gateway
    }

    /// Takes a specific address (`--ip`).
    pub fn reserve(&mut self, ip: Ipv4Addr) -> Result<()> {
        if !self.subnet.contains(&ip) {
            return Err(NetError::Invalid(format!(
                "invalid address {ip}: it does not belong to the network's subnet {}",
                self.subnet
            )));
        }
        if !self.assignable(ip) {
            return Err(NetError::Invalid(format!(
                "invalid address {ip}: it is the network address, the broadcast address or the gateway of {}",
                self.subnet
            )));
        }
        if !self.used.insert(ip) {
            return Err(NetError::Conflict(format!("Address already in use: {ip}")));
        }
        Ok(())
    }

    /// Marks an address as in use without checks (leases found at daemon start).
    pub fn mark_used(&mut self, ip: Ipv4Addr) {
        self.used.insert(ip);
    }

    /// The next free address of the range.
    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        let start = u32::from(self.range.network());
        let size: u64 = 1u64 << (32 - self.range.prefix_len());
        for i in 0..size {
            let off = ((self.cursor as u64 + i) % size) as u32;
            let ip = Ipv4Addr::from(start.wrapping_add(off));
            if self.assignable(ip) && !self.used.contains(&ip) {
                self.used.insert(ip);
                self.cursor = ((off as u64 + 1) % size) as u32;
                return Ok(ip);
            }
        }
        Err(NetError::Exhausted(format!(
            "no available IPv4 addresses on this network's address pools: {}",
            self.range
        )))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }

    pub fn in_use(&self, ip: Ipv4Addr) -> bool {
        self.used.contains(&ip)
    }

    pub fn used_count(&self) -> usize {
        self.used.len()
    }
}

/// Parses an IPv6 subnet `fd00:1::/64` (a host address inside it is truncated, as Docker does).
pub fn parse_subnet6(s: &str) -> Result<Ipv6Net> {
    let net: Ipv6Net = s.trim().parse().map_err(|_| {
        NetError::Invalid(format!(
            "invalid IPv6 subnet {s}: expected an address/prefix such as fd00:1::/64"
        ))
    })?;
    if net.prefix_len() > 126 {
        return Err(NetError::Invalid(format!(
            "invalid IPv6 subnet {s}: the prefix must be at most /126 to leave room for a gateway and a container"
        )));
    }
    let a = net.addr();
    if a.is_loopback() || a.is_multicast() || a.is_unspecified() {
        return Err(NetError::Invalid(format!(
            "invalid IPv6 subnet {s}: a loopback, multicast or unspecified prefix cannot be a network's subnet"
        )));
    }
    Ok(net.trunc())
}

/// Whether two IPv6 subnets share any address.
pub fn overlaps6(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A unique local /64 (RFC 4193: `fd` and a 40-bit global ID, here taken from `seed`, a
/// network's random ID) for an `--ipv6` network created without an IPv6 subnet.
pub fn ula_subnet(seed: &[u8]) -> Ipv6Net {
    let mut b = [0u8; 16];
    b[0] = 0xfd;
    for (i, x) in seed.iter().take(5).enumerate() {
        b[1 + i] = *x;
    }
    Ipv6Net::new(Ipv6Addr::from(b), 64).unwrap_or_default()
}

/// The first address after the subnet-router anycast address (the default IPv6 gateway).
pub fn first_host6(net: &Ipv6Net) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(net.network()).saturating_add(1))
}

/// One network's IPv6 addresses. A /64 is too large to scan, so only the addresses in use are
/// kept and allocation walks forward from a cursor (addresses handed out in turn, as `Pool`).
#[derive(Debug, Clone)]
pub struct Pool6 {
    pub subnet: Ipv6Net,
    pub range: Ipv6Net,
    pub gateway: Ipv6Addr,
    used: BTreeSet<Ipv6Addr>,
    cursor: u128,
}

impl Pool6 {
    /// Docker's rules: the range inside the subnet, the gateway an address of the subnet other
    /// than its subnet-router anycast address.
    pub fn new(
        subnet: Ipv6Net,
        range: Option<Ipv6Net>,
        gateway: Option<Ipv6Addr>,
    ) -> Result<Pool6> {
        let subnet = subnet.trunc();
        let range = match range {
            Some(r) => {
                let r = r.trunc();
                if !subnet.contains(&r.network()) || r.prefix_len() < subnet.prefix_len() {
                    return Err(NetError::Invalid(format!(
                        "Invalid ip range {r}: it is not contained in subnet {subnet}"
                    )));
                }
                r
            }
            None => subnet,
        };
        let gateway = gateway.unwrap_or_else(|| first_host6(&subnet));
        if !subnet.contains(&gateway) {
            return Err(NetError::Invalid(format!(
                "Invalid gateway {gateway}: it is not in subnet {subnet}"
            )));
        }
        if gateway == subnet.network() {
            return Err(NetError::Invalid(format!(
                "Invalid gateway {gateway}: it is the subnet-router anycast address of {subnet}"
            )));
        }
        Ok(Pool6 {
            subnet,
            range,
            gateway,
            used: BTreeSet::new(),
            cursor: 0,
        })
    }

    fn assignable(&self, ip: Ipv6Addr) -> bool {
        ip != self.subnet.network() && ip != self.gateway
    }

    /// Takes a specific address (`--ip6`).
    pub fn reserve(&mut self, ip: Ipv6Addr) -> Result<()> {
        if !self.subnet.contains(&ip) {
            return Err(NetError::Invalid(format!(
                "invalid address {ip}: it does not belong to the network's subnet {}",
                self.subnet
            )));
        }
        if !self.assignable(ip) {
            return Err(NetError::Invalid(format!(
                "invalid address {ip}: it is the subnet-router anycast address or the gateway of {}",
                self.subnet
            )));
        }
        if !self.used.insert(ip) {
            return Err(NetError::Conflict(format!("Address already in use: {ip}")));
        }
        Ok(())
    }

    /// Marks an address as in use without checks (leases found at daemon start).
    pub fn mark_used(&mut self, ip: Ipv6Addr) {
        self.used.insert(ip);
    }

    /// The next free address of the range.
    pub fn allocate(&mut self) -> Result<Ipv6Addr> {
        let start = u128::from(self.range.network());
        let bits = 128 - u32::from(self.range.prefix_len());
        let size: u128 = if bits >= 128 {
            u128::MAX
        } else {
            1u128 << bits
        };
        // At most `used + 2` addresses are not assignable, so this many steps find a free one
        // when the range has one.
        let steps = (self.used.len() as u128 + 3).min(size);
        for i in 0..steps {
            let off = self.cursor.wrapping_add(i) % size;
            let ip = Ipv6Addr::from(start.wrapping_add(off));
            if self.assignable(ip) && !self.used.contains(&ip) {
                self.used.insert(ip);
                self.cursor = off.wrapping_add(1) % size;
                return Ok(ip);
            }
        }
        Err(NetError::Exhausted(format!(
            "no available IPv6 addresses on this network's address pools: {}",
            self.range
        )))
    }

    pub fn release(&mut self, ip: Ipv6Addr) {
        self.used.remove(&ip);
    }
}

/// Docker's MAC for an address: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with dashes); a multicast address is refused.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || NetError::Invalid(format!("{s} is not a valid mac address"));
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(NetError::Invalid(format!(
            "{s} is a multicast address and cannot be a container's MAC address"
        )));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_and_bip() {
        assert_eq!(parse_subnet("10.1.2.3/24").unwrap(), net("10.1.2.0/24"));
        assert!(parse_subnet("10.1.2.0/31").is_err());
        assert!(parse_subnet("nonsense").is_err());
        assert!(parse_subnet("10.1.2.0/33").is_err());
        let (s, gw) = parse_bip("10.20.0.1/24").unwrap();
        assert_eq!((s, gw), (net("10.20.0.0/24"), "10.20.0.1".parse().unwrap()));
        assert!(parse_bip("10.20.0.0/24").is_err());
        assert!(parse_bip("10.20.0.255/24").is_err());
    }

    #[test]
    fn pool_rules() {
        assert!(Pool::new(net("10.0.0.0/24"), Some(net("10.0.1.0/25")), None).is_err());
        assert!(Pool::new(net("10.0.0.0/24"), None, Some("10.0.1.1".parse().unwrap())).is_err());
        assert!(Pool::new(net("10.0.0.0/24"), None, Some("10.0.0.0".parse().unwrap())).is_err());
        let mut p = Pool::new(net("10.0.0.0/29"), None, None).unwrap();
        assert_eq!(p.gateway, "10.0.0.1".parse::<Ipv4Addr>().unwrap());
        let got: Vec<Ipv4Addr> = (0..5).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(got[0], "10.0.0.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(got[4], "10.0.0.6".parse::<Ipv4Addr>().unwrap());
        assert!(matches!(p.allocate(), Err(NetError::Exhausted(_))));
        p.release(got[1]);
        assert_eq!(p.allocate().unwrap(), got[1]);
        let mut p = Pool::new(net("10.0.0.0/24"), Some(net("10.0.0.128/25")), None).unwrap();
        assert_eq!(
            p.allocate().unwrap(),
            "10.0.0.128".parse::<Ipv4Addr>().unwrap()
        );
        assert!(p.reserve("10.0.0.5".parse().unwrap()).is_ok());
        assert!(matches!(
            p.reserve("10.0.0.5".parse().unwrap()),
            Err(NetError::Conflict(_))
        ));
        assert!(p.reserve("10.0.1.5".parse().unwrap()).is_err());
        assert!(p.reserve("10.0.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn in_turn_not_reused_at_once() {
        let mut p = Pool::new(net("10.0.0.0/24"), None, None).unwrap();
        let a = p.allocate().unwrap();
        p.release(a);
        assert_ne!(p.allocate().unwrap(), a);
    }

    #[test]
    fn subnet_choice_avoids_routes() {
        let pools = vec![AddressPool::new("10.210.0.0/15", 16).unwrap()];
        assert_eq!(choose_subnet(&pools, &[]), Some(net("10.210.0.0/16")));
        assert_eq!(
            choose_subnet(&pools, &[net("10.210.5.0/24")]),
            Some(net("10.211.0.0/16"))
        );
        assert_eq!(choose_subnet(&pools, &[net("10.0.0.0/8")]), None);
        for c in default_bridge_candidates() {
            assert!(!overlaps(&c, &net("172.17.0.0/16")));
            assert!(!overlaps(&c, &net("10.88.0.0/16")));
        }
        assert!(AddressPool::new("10.0.0.0/16", 8).is_err());
    }

    #[test]
    fn ipv6_pools() {
        let s = parse_subnet6("fd00:1:2:3::5/64").unwrap();
        assert_eq!(s.to_string(), "fd00:1:2:3::/64");
        assert!(parse_subnet6("fd00::/127").is_err());
        assert!(parse_subnet6("::1/64").is_err());
        assert!(parse_subnet6("10.0.0.0/8").is_err());
        let mut p = Pool6::new(s, None, None).unwrap();
        assert_eq!(p.gateway, "fd00:1:2:3::1".parse::<Ipv6Addr>().unwrap());
        let a = p.allocate().unwrap();
        assert_eq!(a, "fd00:1:2:3::2".parse::<Ipv6Addr>().unwrap());
        assert!(matches!(p.reserve(a), Err(NetError::Conflict(_))));
        assert!(p.reserve("fd00:9::2".parse().unwrap()).is_err());
        assert!(p.reserve(p.gateway).is_err());
        p.release(a);
        assert_ne!(p.allocate().unwrap(), a);
        assert!(Pool6::new(s, None, Some("fd00:9::1".parse().unwrap())).is_err());
        assert!(Pool6::new(s, Some("fd00:9::/80".parse().unwrap()), None).is_err());
        let mut tiny = Pool6::new("fd00::/126".parse().unwrap(), None, None).unwrap();
        assert!(tiny.allocate().is_ok() && tiny.allocate().is_ok());
        assert!(matches!(tiny.allocate(), Err(NetError::Exhausted(_))));
        let u = ula_subnet(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(u.to_string(), "fd01:203:405::/64");
        assert!(overlaps6(&u, &"fd01:203:405::/48".parse().unwrap()));
        assert!(!overlaps6(&u, &"fd01:203:406::/64".parse().unwrap()));
    }

    #[test]
    fn macs() {
        assert_eq!(
            format_mac(&mac_for("172.17.0.2".parse().unwrap())),
            "02:42:ac:11:00:02"
        );
        assert_eq!(parse_mac("92:d0:c6:0a:29:33").unwrap()[0], 0x92);
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("92:d0:c6:0a:29").is_err());
        assert!(parse_mac("zz:d0:c6:0a:29:33").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_subnet(&s);
            let _ = parse_bip(&s);
            let _ = parse_mac(&s);
            let _ = parse_subnet6(&s);
        }

        #[test]
        fn allocations_stay_in_range_and_unique(prefix in 24u8..=30, n in 0usize..70) {
            let mut p = Pool::new(Ipv4Net::new(Ipv4Addr::new(10, 9, 8, 0), prefix).unwrap(), None, None).unwrap();
            let mut seen = BTreeSet::new();
            for _ in 0..n {
                match p.allocate() {
                    Ok(ip) => {
                        prop_assert!(p.subnet.contains(&ip));
                        prop_assert!(ip != p.gateway && ip != p.subnet.network() && ip != p.subnet.broadcast());
                        prop_assert!(seen.insert(ip));
                    }
                    Err(_) => prop_assert_eq!(seen.len() as u64, (1u64 << (32 - prefix)) - 3),
                }
            }
        }
    }
}
