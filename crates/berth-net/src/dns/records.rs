//! The record model the DNS server answers from: networks → endpoints. `net` keeps it up to date
//! as containers join and leave networks; every query reads an immutable snapshot of it, so
//! lookups never wait for an update and an update never sees half-answered queries.
//!
//! Resolution follows Docker's embedded DNS (moby `Sandbox.ResolveName`, `Network.ResolveName`):
//! a name is looked up on the networks the *asking* container is attached to, in the order it
//! joined them; the first network where the name exists answers with the addresses of every
//! endpoint carrying that name there. `name.network` looks the name up on that one network (if
//! the asker is on it). Names compare case-insensitively.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

/// One container's endpoint on one network, as the DNS server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// The full container ID.
    pub container_id: String,
    /// The names the endpoint answers to on this network, Docker's `DNSNames`: the container
    /// name, its aliases on this network, its short ID, its hostname (see [`dns_names`]). The
    /// first one is the name PTR queries answer with (`<name>.<network>`).
    pub dns_names: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// Docker's `DNSNames` of an endpoint (moby `buildEndpointDNSNames`): the container name
/// (without a leading `/`), the endpoint's aliases (`--network-alias`, compose service names),
/// the short ID (12 hex digits) and the hostname, without duplicates, in that order.
pub fn dns_names(
    name: &str,
    aliases: &[String],
    container_id: &str,
    hostname: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    push(name.trim_start_matches('/'));
    for a in aliases {
        push(a);
    }
    push(container_id.get(..12).unwrap_or(container_id));
    if let Some(h) = hostname {
        push(h);
    }
    out
}

/// The shared record model. Cheap to read (one `Arc` clone per query); updates rebuild the index
/// of the network they touch.
#[derive(Debug, Default)]
pub struct Records {
    snap: RwLock<Arc<Snapshot>>,
}

impl Records {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the endpoint of `ep.container_id` on network `network_id` (named `network_name`),
    /// or replaces it (new addresses or names). Creates the network's records if needed.
    pub fn set_endpoint(&self, network_id: &str, network_name: &str, ep: EndpointRecord) {
        self.update(|s| {
            let mut endpoints = s
                .networks
                .get(network_id)
                .map(|n| n.endpoints.clone())
                .unwrap_or_default();
            match endpoints
                .iter_mut()
                .find(|e| e.container_id == ep.container_id)
            {
                Some(e) => *e = ep.clone(),
                None => endpoints.push(ep.clone()),
            }
            s.networks.insert(
                network_id.to_string(),
                Arc::new(NetworkIndex::new(network_name, endpoints)),
            );
            let joined = s.joined.entry(ep.container_id.clone()).or_default();
            if !joined.iter().any(|n| n == network_id) {
                joined.push(network_id.to_string());
            }
        })
    }

    /// Removes the endpoint of `container_id` on `network_id` (disconnect, container stop).
    pub fn remove_endpoint(&self, network_id: &str, container_id: &str) {
        self.update(|s| {
            remove_endpoint_in(s, network_id, container_id);
        })
    }

    /// Removes every endpoint of `container_id` (container stopped or removed).
    pub fn remove_container(&self, container_id: &str) {
        self.update(|s| {
            for network_id in s.joined.get(container_id).cloned().unwrap_or_default() {
                remove_endpoint_in(s, &network_id, container_id);
            }
        })
    }

    /// Removes a network and all its endpoints.
    pub fn remove_network(&self, network_id: &str) {
        self.update(|s| {
            if s.networks.remove(network_id).is_some() {
                s.joined.retain(|_, nets| {
                    nets.retain(|n| n != network_id);
                    !nets.is_empty()
                });
            }
        })
    }

    /// The current records, for one query.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        match self.snap.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut guard = match self.snap.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = Snapshot::clone(&guard);
        f(&mut next);
        *guard = Arc::new(next);
    }
}

fn remove_endpoint_in(s: &mut Snapshot, network_id: &str, container_id: &str) {
    if let Some(net) = s.networks.get(network_id) {
        if net.endpoints.iter().any(|e| e.container_id == container_id) {
            let endpoints = net
                .endpoints
                .iter()
                .filter(|e| e.container_id != container_id)
                .cloned()
                .collect();
            let name = net.name.clone();
            s.networks.insert(
                network_id.to_string(),
                Arc::new(NetworkIndex::new(&name, endpoints)),
            );
        }
    }
    if let Some(nets) = s.joined.get_mut(container_id) {
        nets.retain(|n| n != network_id);
        if nets.is_empty() {
            s.joined.remove(container_id);
        }
    }
}

/// An immutable view of the records.
#[derive(Debug, Default, Clone)]
pub(crate) struct Snapshot {
    /// Network ID → its endpoints and indexes (shared between snapshots until changed).
    networks: HashMap<String, Arc<NetworkIndex>>,
    /// Container ID → the networks it is attached to, in the order it joined them.
    joined: HashMap<String, Vec<String>>,
}

#[derive(Debug)]
struct NetworkIndex {
    name: String,
    endpoints: Vec<EndpointRecord>,
    /// Lower-cased DNS name → indexes into `endpoints`.
    by_name: HashMap<String, Vec<usize>>,
    /// Address → the endpoint that has it (the first one, should two claim it).
    by_ip: HashMap<IpAddr, usize>,
}

impl NetworkIndex {
    fn new(name: &str, endpoints: Vec<EndpointRecord>) -> Self {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_ip = HashMap::new();
        for (i, ep) in endpoints.iter().enumerate() {
            for n in &ep.dns_names {
                let list = by_name.entry(n.to_ascii_lowercase()).or_default();
                if !list.contains(&i) {
                    list.push(i);
                }
            }
            if let Some(a) = ep.ipv4 {
                by_ip.entry(IpAddr::V4(a)).or_insert(i);
            }
            if let Some(a) = ep.ipv6 {
                by_ip.entry(IpAddr::V6(a)).or_insert(i);
            }
        }
        NetworkIndex {
            name: name.to_string(),
            endpoints,
            by_name,
            by_ip,
        }
    }

    fn addresses(&self, lower_name: &str) -> Option<Addresses> {
        let idx = self.by_name.get(lower_name)?;
        let mut out = Addresses::default();
        for &i in idx {
            let ep = &self.endpoints[i];
            if let Some(a) = ep.ipv4 {
                if !out.v4.contains(&a) {
                    out.v4.push(a);
                }
            }
            if let Some(a) = ep.ipv6 {
                if !out.v6.contains(&a) {
                    out.v6.push(a);
                }
            }
        }
        Some(out)
    }
}

/// The addresses a name resolves to on one network (either list may be empty: the name exists
/// but has no address of that family, which is a NODATA answer, not NXDOMAIN).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Addresses {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

impl Snapshot {
    /// Whether the container is on at least one network with DNS records (a container only on
    /// the default bridge is not: its queries are all forwarded, as Docker gives it no names).
    pub fn has_networks(&self, asker: &str) -> bool {
        self.joined.get(asker).is_some_and(|n| !n.is_empty())
    }

    fn asker_networks<'a>(&'a self, asker: &str) -> impl Iterator<Item = &'a NetworkIndex> + 'a {
        self.joined
            .get(asker)
            .into_iter()
            .flatten()
            .filter_map(|id| self.networks.get(id).map(|n| &**n))
    }

    /// Resolves `name` (no trailing dot) for the container `asker`: `None` when the name does
    /// not exist on any network the asker is on.
    pub fn resolve(&self, asker: &str, name: &str) -> Option<Addresses> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        // "a.b.c": the whole name on every network of the asker, then "a.b" on network "c",
        // then "a" on network "b.c" (Docker allows dots in container and network names).
        if let Some(a) = self.asker_networks(asker).find_map(|n| n.addresses(&name)) {
            return Some(a);
        }
        let mut cut = name.len();
        while let Some(dot) = name[..cut].rfind('.') {
            let (host, network) = (&name[..dot], &name[dot + 1..]);
            if let Some(a) = self
                .asker_networks(asker)
                .filter(|n| n.name.eq_ignore_ascii_case(network))
                .find_map(|n| n.addresses(host))
            {
                return Some(a);
            }
            cut = dot;
        }
        None
    }

    /// The PTR name for `ip` as the asker sees it: `<first DNS name>.<network name>` of the
    /// endpoint holding `ip` on the first of the asker's networks that has it.
    pub fn reverse(&self, asker: &str, ip: IpAddr) -> Option<String> {
        self.asker_networks(asker).find_map(|n| {
            let i = *n.by_ip.get(&ip)?;
            let first = n.endpoints[i].dns_names.first()?;
            Some(format!("{first}.{}", n.name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, names: &[&str], v4: Option<&str>, v6: Option<&str>) -> EndpointRecord {
        EndpointRecord {
            container_id: id.to_string(),
            dns_names: names.iter().map(|s| s.to_string()).collect(),
            ipv4: v4.map(|s| s.parse().unwrap()),
            ipv6: v6.map(|s| s.parse().unwrap()),
        }
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn docker_dns_names_order_and_dedup() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            dns_names(
                "/web",
                &["api".into(), "web".into()],
                id,
                Some("0123456789ab")
            ),
            vec!["web", "api", "0123456789ab"]
        );
        assert_eq!(
            dns_names("db", &[], "abc", Some("dbhost")),
            vec!["db", "abc", "dbhost"]
        );
    }

    #[test]
    fn names_resolve_only_on_shared_networks() {
        let r = Records::new();
        r.set_endpoint("n1", "front", ep("a", &["a"], Some("10.1.0.2"), None));
        r.set_endpoint(
            "n1",
            "front",
            ep("b", &["b", "web"], Some("10.1.0.3"), None),
        );
        r.set_endpoint("n2", "back", ep("b", &["b"], Some("10.2.0.3"), None));
        r.set_endpoint("n2", "back", ep("c", &["c"], Some("10.2.0.4"), None));
        let s = r.snapshot();
        assert_eq!(s.resolve("a", "b").unwrap().v4, vec![v4("10.1.0.3")]);
        assert_eq!(s.resolve("a", "WEB.").unwrap().v4, vec![v4("10.1.0.3")]);
        assert_eq!(s.resolve("a", "a").unwrap().v4, vec![v4("10.1.0.2")]);
        // c is only on "back", which a does not share.
        assert_eq!(s.resolve("a", "c"), None);
        // b is on both; c asks from "back" and gets b's address there.
        assert_eq!(s.resolve("c", "b").unwrap().v4, vec![v4("10.2.0.3")]);
        // b is on both networks: the first network it joined answers.
        assert_eq!(s.resolve("b", "b").unwrap().v4, vec![v4("10.1.0.3")]);
        // name.network picks the network.
        assert_eq!(s.resolve("b", "b.back").unwrap().v4, vec![v4("10.2.0.3")]);
        assert_eq!(s.resolve("b", "c.back").unwrap().v4, vec![v4("10.2.0.4")]);
        assert_eq!(s.resolve("a", "c.back"), None);
        assert_eq!(s.resolve("nobody", "a"), None);
        assert!(s.has_networks("a"));
        assert!(!s.has_networks("nobody"));
    }

    #[test]
    fn alias_collects_all_members_and_families() {
        let r = Records::new();
        r.set_endpoint(
            "n",
            "net",
            ep("x", &["x", "svc"], Some("10.0.0.2"), Some("fd00::2")),
        );
        r.set_endpoint("n", "net", ep("y", &["y", "svc"], Some("10.0.0.3"), None));
        r.set_endpoint("n", "net", ep("z", &["z"], None, Some("fd00::4")));
        let s = r.snapshot();
        let a = s.resolve("z", "svc").unwrap();
        assert_eq!(a.v4, vec![v4("10.0.0.2"), v4("10.0.0.3")]);
        assert_eq!(a.v6, vec!["fd00::2".parse::<Ipv6Addr>().unwrap()]);
        // z has only IPv6: the name exists with no IPv4 (NODATA, not NXDOMAIN).
        let z = s.resolve("x", "z").unwrap();
        assert!(z.v4.is_empty());
        assert_eq!(z.v6.len(), 1);
    }

    #[test]
    fn dotted_network_and_container_names() {
        let r = Records::new();
        r.set_endpoint("n", "my.net", ep("a", &["a.b"], Some("10.0.0.2"), None));
        let s = r.snapshot();
        assert_eq!(s.resolve("a", "a.b").unwrap().v4, vec![v4("10.0.0.2")]);
        assert_eq!(
            s.resolve("a", "a.b.my.net").unwrap().v4,
            vec![v4("10.0.0.2")]
        );
        assert_eq!(s.resolve("a", "a.b.my"), None);
    }

    #[test]
    fn updates_follow_containers() {
        let r = Records::new();
        r.set_endpoint("n", "net", ep("a", &["a"], Some("10.0.0.2"), None));
        r.set_endpoint("n", "net", ep("b", &["b"], Some("10.0.0.3"), None));
        let before = r.snapshot();
        // new address for b
        r.set_endpoint("n", "net", ep("b", &["b"], Some("10.0.0.9"), None));
        assert_eq!(
            r.snapshot().resolve("a", "b").unwrap().v4,
            vec![v4("10.0.0.9")]
        );
        // an old snapshot is unaffected
        assert_eq!(before.resolve("a", "b").unwrap().v4, vec![v4("10.0.0.3")]);
        r.remove_endpoint("n", "b");
        assert_eq!(r.snapshot().resolve("a", "b"), None);
        r.set_endpoint("n2", "other", ep("b", &["b"], Some("10.9.0.3"), None));
        r.set_endpoint("n", "net", ep("b", &["b"], Some("10.0.0.3"), None));
        assert_eq!(r.snapshot().joined["b"], vec!["n2", "n"]);
        r.remove_container("b");
        assert_eq!(r.snapshot().resolve("a", "b"), None);
        assert!(!r.snapshot().has_networks("b"));
        r.remove_network("n");
        assert!(!r.snapshot().has_networks("a"));
        assert!(r.snapshot().networks.contains_key("n2"));
    }

    #[test]
    fn reverse_lookup_uses_first_name_and_network() {
        let r = Records::new();
        r.set_endpoint(
            "n",
            "net",
            ep("a", &["web", "alias"], Some("10.0.0.2"), Some("fd00::2")),
        );
        r.set_endpoint("m", "other", ep("b", &["b"], Some("10.5.0.2"), None));
        let s = r.snapshot();
        assert_eq!(
            s.reverse("a", "10.0.0.2".parse().unwrap()).as_deref(),
            Some("web.net")
        );
        assert_eq!(
            s.reverse("a", "fd00::2".parse().unwrap()).as_deref(),
            Some("web.net")
        );
        assert_eq!(s.reverse("a", "10.5.0.2".parse().unwrap()), None);
    }
}
