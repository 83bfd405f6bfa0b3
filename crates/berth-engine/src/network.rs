//! Networks: the default bridge and user-defined bridge networks, the per-container network
//! namespace with its veth pairs and addresses, published ports, and the `/networks` API.
//!
//! The mechanics (netlink, namespaces, nftables, address pools) are `berth_net`'s; this module
//! keeps the records and ties them to the containers' life cycle:
//! * a network is a record under `<data-root>/network/<id>.json` plus its bridge;
//! * a running container's attachment (namespace path, endpoints, published ports) is part of
//!   its record (`sandbox`), so the daemon rebuilds address pools, port reservations and the
//!   firewall's port maps from the container records at start, and a lease can never outlive
//!   its container (decision 0003).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use berth_api::models::{
    EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkCreateResponse, NetworkDisconnectRequest, NetworkEndpointResource, NetworkResource,
    NetworksPruneReport, Port, PortBinding, PortMap,
};
use berth_api::{ApiError, Filters};
use berth_net::firewall::{Firewall, FwNet, FwPort};
use berth_net::ipam::{self, Pool, Pool6};
use berth_net::ports::{self, Proto, Reservation};
use berth_net::{hostinfo, link, netns, NetError};
use chrono::{DateTime, Utc};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::config::EngineConfig;
use crate::container::{docker_time, Container, ContainerRecord};
use crate::{ids, Engine};

fn yes() -> bool {
    true
}

/// A network as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub created: DateTime<Utc>,
    /// The Linux bridge's name.
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
    #[serde(default)]
    pub ip_range: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    /// The daemon's default `bridge` network.
    #[serde(default)]
    pub default_bridge: bool,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default = "yes")]
    pub masquerade: bool,
    /// Host address for bindings without one (`com.docker.network.bridge.host_binding_ipv4`).
    #[serde(default)]
    pub host_binding: Option<Ipv4Addr>,
    /// `com.docker.network.bridge.enable_icc` (daemon.json `icc` for the default bridge):
    /// false makes every container port of the bridge an isolated bridge port, so containers
    /// of the network reach the host and the outside but not each other.
    #[serde(default = "yes")]
    pub icc: bool,
    /// The IPv6 subnet and gateway of an `--ipv6` network (empty: IPv4 only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet6: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway6: String,
}

/// A network in memory: its record, its address pool and its bridge's index.
pub(crate) struct Net {
    pub rec: NetworkRecord,
    pub subnet: Ipv4Net,
    pub pool: Mutex<Pool>,
    /// The IPv6 addresses of an `--ipv6` network.
    pub pool6: Option<Mutex<Pool6>>,
    pub subnet6: Option<Ipv6Net>,
    pub ifindex: std::sync::atomic::AtomicU32,
}

/// A running container's network attachment, kept in its record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sandbox {
    pub id: String,
    /// The bind-mounted namespace (`SandboxKey`).
    pub key: String,
    /// By network name.
    pub endpoints: BTreeMap<String, EndpointState>,
    pub ports: Vec<PublishedPort>,
    /// The userland proxy serving `ports` (`"iptables": false`), see `netproxy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_pid: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointState {
    pub network_id: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// Inside the container (`eth0`, `eth1`…).
    pub ifname: String,
    /// The host end of the veth pair.
    pub veth: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The IPv6 address, prefix and gateway on an `--ipv6` network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub proto: Proto,
    /// An IPv6 host address is served by the userland proxy (the kernel path is IPv4).
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub ctr_ip: Ipv4Addr,
    pub ctr_port: u16,
}

impl PublishedPort {
    /// Whether the userland proxy serves this port: every port without berth's firewall rules,
    /// IPv6 host addresses always (no IPv6 DNAT to the container's IPv4 address; `::1` could
    /// not be forwarded by the kernel anyway).
    fn proxied(&self, firewall: bool) -> bool {
        !firewall || self.host_ip.is_ipv6()
    }

    fn fw(&self) -> FwPort {
        FwPort {
            proto: self.proto,
            host_ip: match self.host_ip {
                IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
                _ => None,
            },
            host_port: self.host_port,
            ctr_ip: self.ctr_ip,
            ctr_port: self.ctr_port,
        }
    }
}

/// The daemon's networking state.
pub(crate) struct NetMgr {
    dir: PathBuf,
    pub netns_dir: PathBuf,
    host: Option<link::Host>,
    /// Why networking is unavailable, when `host` is None.
    unavailable: Option<String>,
    fw: Option<Firewall>,
    nets: RwLock<BTreeMap<String, Arc<Net>>>,
    /// Host-port reservations by container.
    reservations: Mutex<HashMap<String, Vec<Reservation>>>,
    /// Published ports by container (what the firewall's maps hold).
    published: Mutex<BTreeMap<String, Vec<FwPort>>>,
    port_cursor: Mutex<u16>,
    /// Serialises firewall changes and network creation/removal.
    pub lock: tokio::sync::Mutex<()>,
    pub mtu: Option<u32>,
    dns: (Vec<String>, Vec<String>, Vec<String>),
    /// Where user networks without a subnet get theirs (`default-address-pools`).
    pools: Vec<ipam::AddressPool>,
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

fn api(e: NetError) -> ApiError {
    match e {
        NetError::Invalid(m) => ApiError::bad_request(m),
        NetError::Conflict(m) => ApiError::conflict(m),
        NetError::Exhausted(m) => ApiError::new(http::StatusCode::SERVICE_UNAVAILABLE, m),
        other => ApiError::internal(other.to_string()),
    }
}

/// The nftables table (family ip) of the daemon with this exec root: `berth` for the default
/// one, else one per exec root, so daemons side by side (tests) never share rules.
pub fn firewall_table(exec_root: &Path) -> String {
    if exec_root == Path::new(crate::config::DEFAULT_EXEC_ROOT) {
        "berth".to_string()
    } else {
        let h = berth_image::Digest::sha256_of(exec_root.to_string_lossy().as_bytes());
        format!("berth-{}", &h.hex()[..8])
    }
}

/// Network modes that put the container on bridge networks.
pub(crate) fn is_bridged(mode: &str) -> bool {
    !matches!(mode, "none" | "host") && !mode.starts_with("container:")
}

/// The network name a mode refers to (`default` is the `bridge` network).
pub(crate) fn mode_network(mode: &str) -> &str {
    match mode {
        "" | "default" => "bridge",
        m => m,
    }
}

/// Docker's rule for network names.
fn valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl NetMgr {
    /// Loads the network records and connects to netlink. Networking problems do not stop the
    /// daemon: containers can still use `none` and `host`, and bridged ones get the reason.
    pub(crate) async fn open(cfg: &EngineConfig) -> NetMgr {
        let dir = cfg.data_root.join("network");
        let netns_dir = cfg.exec_root.join("netns");
        for d in [&dir, &netns_dir] {
            if let Err(e) = std::fs::create_dir_all(d) {
                tracing::warn!("cannot create {}: {e}", d.display());
            }
        }
        let (host, unavailable) = match link::Host::connect() {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mgr = NetMgr {
            dir,
            netns_dir,
            host,
            unavailable,
            fw: cfg
                .net
                .iptables
                .then(|| Firewall::new(&firewall_table(&cfg.exec_root))),
            pools: if cfg.net.pools.is_empty() {
                ipam::docker_default_pools()
            } else {
                cfg.net
                    .pools
                    .iter()
                    .filter_map(|p| ipam::AddressPool::new(&p.base, p.size).ok())
                    .collect()
            },
            nets: RwLock::new(BTreeMap::new()),
            reservations: Mutex::new(HashMap::new()),
            published: Mutex::new(BTreeMap::new()),
            port_cursor: Mutex::new(0),
            lock: tokio::sync::Mutex::new(()),
            mtu: cfg.net.mtu,
            dns: (
                cfg.net.dns.clone(),
                cfg.net.dns_search.clone(),
                cfg.net.dns_opts.clone(),
            ),
        };
        mgr.load(cfg).await;
        mgr
    }

    fn host(&self) -> Result<&link::Host, ApiError> {
        self.host.as_ref().ok_or_else(|| {
            ApiError::internal(format!(
                "bridge networking is unavailable on this host: {}",
                self.unavailable.as_deref().unwrap_or("unknown reason")
            ))
        })
    }

    fn save(&self, rec: &NetworkRecord) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec_pretty(rec).map_err(internal)?;
        berth_image::fsutil::write_atomic(&self.dir, &format!("{}.json", rec.id), &bytes)
            .map_err(|e| internal(format!("cannot save network {}: {e}", rec.name)))
    }

    fn insert(&self, rec: NetworkRecord) -> Result<Arc<Net>, ApiError> {
        let subnet = ipam::parse_subnet(&rec.subnet).map_err(api)?;
        let gw: Ipv4Addr = rec
            .gateway
            .parse()
            .map_err(|_| internal(format!("network {}: bad gateway {}", rec.name, rec.gateway)))?;
        let range = if rec.ip_range.is_empty() {
            None
        } else {
            Some(ipam::parse_subnet(&rec.ip_range).map_err(api)?)
        };
        let pool = Pool::new(subnet, range, Some(gw)).map_err(api)?;
        let (subnet6, pool6) = if rec.subnet6.is_empty() {
            (None, None)
        } else {
            let s6 = ipam::parse_subnet6(&rec.subnet6).map_err(api)?;
            let gw6: Option<Ipv6Addr> = rec.gateway6.parse().ok();
            let p6 = Pool6::new(s6, None, gw6).map_err(api)?;
            (Some(s6), Some(Mutex::new(p6)))
        };
        let net = Arc::new(Net {
            rec,
            subnet,
            pool: Mutex::new(pool),
            pool6,
            subnet6,
            ifindex: std::sync::atomic::AtomicU32::new(0),
        });
        self.nets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(net.rec.id.clone(), net.clone());
        Ok(net)
    }

    /// Reads the records and makes sure the default bridge network exists as configured.
    async fn load(&self, cfg: &EngineConfig) {
        let mut recs: Vec<NetworkRecord> = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("json") {
                    continue;
                }
                match std::fs::read(&p).map_err(|e| e.to_string()).and_then(|b| {
                    serde_json::from_slice::<NetworkRecord>(&b).map_err(|e| e.to_string())
                }) {
                    Ok(r) => recs.push(r),
                    Err(e) => tracing::error!("unreadable network record {}: {e}", p.display()),
                }
            }
        }
        // The default bridge: from `bip`, else the recorded subnet, else a free one.
        let old_default = recs.iter().position(|r| r.default_bridge);
        match &cfg.net.bridge {
            None => {
                if let Some(i) = old_default {
                    let r = recs.remove(i);
                    let _ = std::fs::remove_file(self.dir.join(format!("{}.json", r.id)));
                }
            }
            Some(bridge) => {
                let wanted_bip = match &cfg.net.bip {
                    Some(b) => match ipam::parse_bip(b) {
                        Ok(x) => Some(x),
                        Err(e) => {
                            tracing::error!("daemon.json bip: {e}");
                            None
                        }
                    },
                    None => None,
                };
                let keep = old_default.and_then(|i| {
                    let r = &recs[i];
                    let same_bridge = &r.bridge == bridge;
                    let same_bip = match wanted_bip {
                        Some((s, g)) => r.subnet == s.to_string() && r.gateway == g.to_string(),
                        None => true,
                    };
                    let same_v6 = match (&cfg.net.fixed_cidr_v6, cfg.net.ipv6) {
                        (_, false) => r.subnet6.is_empty(),
                        (Some(f), true) => r.subnet6 == *f,
                        (None, true) => !r.subnet6.is_empty(),
                    };
                    (same_bridge
                        && same_bip
                        && same_v6
                        && r.masquerade == cfg.net.ip_masq
                        && r.icc == cfg.net.icc)
                        .then_some(i)
                });
                if keep.is_none() {
                    let id = old_default
                        .map(|i| recs[i].id.clone())
                        .unwrap_or_else(ids::new_id);
                    if let Some(i) = old_default {
                        recs.remove(i);
                    }
                    // Routes of our own bridge (a restart with a changed config) do not count.
                    let taken: Vec<Ipv4Net> = hostinfo::host_routes()
                        .into_iter()
                        .filter(|(dev, _)| dev != bridge)
                        .map(|(_, n)| n)
                        .chain(recs.iter().filter_map(|r| r.subnet.parse().ok()))
                        .collect();
                    let chosen = match wanted_bip {
                        Some(x) => Some(x),
                        None => {
                            let pools: Vec<ipam::AddressPool> = if cfg.net.pools.is_empty() {
                                ipam::default_bridge_candidates()
                                    .into_iter()
                                    .map(|b| ipam::AddressPool { base: b, size: 16 })
                                    .collect()
                            } else {
                                cfg.net
                                    .pools
                                    .iter()
                                    .filter_map(|p| ipam::AddressPool::new(&p.base, p.size).ok())
                                    .collect()
                            };
                            ipam::choose_subnet(&pools, &taken).map(|s| (s, ipam::first_host(&s)))
                        }
                    };
                    let v6 = if cfg.net.ipv6 {
                        cfg.net
                            .fixed_cidr_v6
                            .as_deref()
                            .and_then(|f| ipam::parse_subnet6(f).ok())
                            .or_else(|| Some(ipam::ula_subnet(&hex_bytes(&id))))
                    } else {
                        None
                    };
                    match chosen {
                        Some((subnet, gw)) => {
                            let rec = NetworkRecord {
                                id,
                                name: "bridge".into(),
                                driver: "bridge".into(),
                                created: Utc::now(),
                                bridge: bridge.clone(),
                                subnet: subnet.to_string(),
                                gateway: gw.to_string(),
                                ip_range: String::new(),
                                internal: false,
                                attachable: false,
                                options: BTreeMap::new(),
                                labels: BTreeMap::new(),
                                ipam_options: BTreeMap::new(),
                                default_bridge: true,
                                mtu: cfg.net.mtu,
                                masquerade: cfg.net.ip_masq,
                                host_binding: None,
                                icc: cfg.net.icc,
                                subnet6: v6.map(|s| s.to_string()).unwrap_or_default(),
                                gateway6: v6
                                    .map(|s| ipam::first_host6(&s).to_string())
                                    .unwrap_or_default(),
                            };
                            if let Err(e) = self.save(&rec) {
                                tracing::error!("{}", e.message);
                            }
                            recs.push(rec);
                        }
                        None => tracing::error!(
                            "no free subnet for the default bridge {bridge}: set bip in daemon.json"
                        ),
                    }
                }
            }
        }
        for r in recs {
            let name = r.name.clone();
            if let Err(e) = self.insert(r) {
                tracing::error!("network {name}: {}", e.message);
            }
        }
        if cfg.net.iptables && cfg.net.ip_forward {
            if let Err(e) = link::enable_ip_forward() {
                tracing::warn!("{e}");
            }
        }
        let nets: Vec<Arc<Net>> = self.all();
        for n in nets {
            if let Err(e) = self.bring_up(&n).await {
                tracing::error!("network {}: {}", n.rec.name, e.message);
            }
        }
    }

    /// Creates the network's bridge if missing (a reboot, someone deleted it) and records its
    /// index.
    async fn bring_up(&self, n: &Net) -> Result<u32, ApiError> {
        let host = self.host()?;
        let gw: Ipv4Addr = n.rec.gateway.parse().map_err(internal)?;
        let gw6 = match (n.rec.gateway6.parse::<Ipv6Addr>(), n.subnet6) {
            (Ok(g), Some(s)) => Some((g, s.prefix_len())),
            _ => None,
        };
        let idx = host
            .ensure_bridge(&n.rec.bridge, gw, n.subnet.prefix_len(), gw6, n.rec.mtu)
            .await
            .map_err(api)?;
        // The host reaches published ports on 127.0.0.1 through the kernel path.
        if let Err(e) = link::set_iface_sysctl(&n.rec.bridge, "route_localnet", "1") {
            tracing::warn!("{e}");
        }
        n.ifindex.store(idx, std::sync::atomic::Ordering::Relaxed);
        Ok(idx)
    }

    pub(crate) fn all(&self) -> Vec<Arc<Net>> {
        self.nets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// By full ID, exact name, then unique ID prefix (Docker's order).
    pub(crate) fn find(&self, r: &str) -> Result<Arc<Net>, ApiError> {
        let nets = self.nets.read().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = nets.get(r) {
            return Ok(n.clone());
        }
        if let Some(n) = nets.values().find(|n| n.rec.name == r) {
            return Ok(n.clone());
        }
        let m: Vec<&Arc<Net>> = nets.values().filter(|n| n.rec.id.starts_with(r)).collect();
        match m.len() {
            1 if !r.is_empty() => Ok(m[0].clone()),
            0 | 1 => Err(ApiError::not_found(format!("network {r} not found"))),
            _ => Err(ApiError::bad_request(format!(
                "network {r} is ambiguous ({} matches found based on ID prefix)",
                m.len()
            ))),
        }
    }

    fn fw_nets(&self) -> Vec<FwNet> {
        self.all()
            .iter()
            .map(|n| FwNet {
                bridge: n.rec.bridge.clone(),
                subnet: n.subnet,
                subnet6: n.subnet6,
                internal: n.rec.internal,
                masquerade: n.rec.masquerade,
            })
            .collect()
    }

    /// Rebuilds berth's nftables table from the networks and every published port. The caller
    /// holds `lock`.
    async fn sync_firewall(&self) -> Result<(), ApiError> {
        let Some(fw) = &self.fw else {
            return Ok(());
        };
        let ports: Vec<FwPort> = self
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flatten()
            .cloned()
            .collect();
        fw.sync(&self.fw_nets(), &ports)
            .await
            .map_err(|e| internal(format!("cannot program the firewall: {e}")))
    }
}

/// A binding request resolved to concrete ports.
struct Wanted {
    proto: Proto,
    host_ip: IpAddr,
    /// None: an ephemeral port; Some((lo, hi)): a port of this range.
    host_range: Option<(u16, u16)>,
    ctr_port: u16,
}

/// Docker's expansion of `PortBindings` (+ `PublishAllPorts` for exposed ports).
fn wanted_ports(rec: &ContainerRecord, default_host_ip: Ipv4Addr) -> Result<Vec<Wanted>, ApiError> {
    let mut out = Vec::new();
    let bindings: PortMap = rec.host_config.port_bindings.clone().unwrap_or_default();
    let mut keys: Vec<(String, Vec<PortBinding>)> = bindings
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    if rec.host_config.publish_all_ports {
        for k in rec
            .config
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .into_keys()
        {
            match keys.iter_mut().find(|(x, _)| *x == k) {
                Some((_, v)) if v.is_empty() => v.push(PortBinding::default()),
                Some(_) => {}
                None => keys.push((k, vec![PortBinding::default()])),
            }
        }
    }
    for (key, binds) in keys {
        let (clo, chi, proto) = ports::parse_port_key(&key).map_err(api)?;
        for b in binds {
            let host_ip = if b.host_ip.is_empty() {
                IpAddr::V4(default_host_ip)
            } else {
                match b
                    .host_ip
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                {
                    Ok(ip) => ip,
                    Err(_) => {
                        return Err(ApiError::bad_request(format!(
                            "invalid host IP address {}",
                            b.host_ip
                        )))
                    }
                }
            };
            let host_range = if b.host_port.is_empty() {
                None
            } else {
                Some(ports::parse_range(&b.host_port).map_err(|_| {
                    ApiError::bad_request(format!("invalid hostPort: {}", b.host_port))
                })?)
            };
            let n = (chi - clo) as u32 + 1;
            for i in 0..n {
                let cp = clo + i as u16;
                let hr = match host_range {
                    None => None,
                    Some((hlo, hhi)) if (hhi - hlo) as u32 + 1 == n && n > 1 => {
                        Some((hlo + i as u16, hlo + i as u16))
                    }
                    Some((hlo, hhi)) if n > 1 => {
                        return Err(ApiError::bad_request(format!(
                            "invalid ranges specified for container and host Ports: {clo}-{chi} and {hlo}-{hhi}"
                        )))
                    }
                    Some(r) => Some(r),
                };
                out.push(Wanted {
                    proto,
                    host_ip,
                    host_range: hr,
                    ctr_port: cp,
                });
            }
        }
    }
    if out.len() > 65535 {
        return Err(ApiError::bad_request("too many published ports"));
    }
    Ok(out)
}

impl Engine {
    /// Puts a starting container on its networks: namespace, veth pairs, addresses, routes,
    /// published ports; records the attachment and writes /etc/hosts. A failure undoes it all.
    pub(crate) async fn net_attach(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), ApiError> {
        let rec = c.record();
        if !is_bridged(&rec.network_mode) {
            return Ok(());
        }
        let mgr = &self.net;
        mgr.host()?;
        // A sandbox left by a run whose exit was not processed: its leases were not restored
        // (they may be someone else's now), only its namespace goes.
        if let Some(old) = rec.sandbox.clone() {
            let _ = netns::remove(Path::new(&old.key));
        }
        let sandbox_id = ids::new_id();
        let key = mgr.netns_dir.join(&sandbox_id[..12]);
        let ns = netns::create(&key).await.map_err(internal)?;
        let mut sb = Sandbox {
            id: sandbox_id,
            key: key.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let r = self.attach_endpoints(c, &rec, &ns, &mut sb).await;
        drop(ns);
        let r = match r {
            Ok(()) => self.publish_ports(c, &rec, &mut sb).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            self.release_sandbox(&c.id, &sb).await;
            return Err(e);
        }
        c.update(|r| r.sandbox = Some(sb.clone()))
            .map_err(|e| internal(format!("cannot save the container state: {e}")))?;
        if let Err(e) = self.dns_start(c) {
            self.dns_stop(&c.id).await;
            self.release_sandbox(&c.id, &sb).await;
            let _ = c.update_volatile(|r| r.sandbox = None);
            return Err(e);
        }
        self.write_hosts(c);
        for (name, ep) in &sb.endpoints {
            self.network_event("connect", &ep.network_id, name, &c.id);
        }
        Ok(())
    }

    /// The networks of a container, primary (its network mode's) first.
    pub(crate) fn endpoint_order(rec: &ContainerRecord) -> Vec<(String, EndpointSettings)> {
        let primary = mode_network(&rec.network_mode).to_string();
        let mut v: Vec<(String, EndpointSettings)> = Vec::new();
        let cfgs = &rec.endpoints_config;
        v.push((
            primary.clone(),
            cfgs.get(&primary)
                .or_else(|| {
                    (rec.network_mode == "default")
                        .then(|| cfgs.get("default"))
                        .flatten()
                })
                .cloned()
                .unwrap_or_default(),
        ));
        for (k, e) in cfgs {
            if *k != primary && k != "default" {
                v.push((k.clone(), e.clone()));
            }
        }
        v
    }

    async fn attach_endpoints(
        &self,
        c: &Container,
        rec: &ContainerRecord,
        ns: &netns::NsLink,
        sb: &mut Sandbox,
    ) -> Result<(), ApiError> {
        for (i, (name, cfg)) in Self::endpoint_order(rec).into_iter().enumerate() {
            let net = self.net.find(&name)?;
            let mac = if i == 0 && !rec.config.mac_address.is_empty() {
                rec.config.mac_address.clone()
            } else {
                cfg.mac_address.clone()
            };
            self.add_endpoint(c, rec, &net, &cfg, &mac, i, ns, sb)
                .await?;
        }
        Ok(())
    }

    /// One endpoint: an address, a veth pair into the namespace, the address and (for the
    /// first) the default route inside.
    #[allow(clippy::too_many_arguments)]
    async fn add_endpoint(
        &self,
        c: &Container,
        rec: &ContainerRecord,
        net: &Arc<Net>,
        cfg: &EndpointSettings,
        mac: &str,
        index: usize,
        ns: &netns::NsLink,
        sb: &mut Sandbox,
    ) -> Result<(), ApiError> {
        let host = self.net.host()?;
        let want_ip = cfg
            .ipam_config
            .as_ref()
            .map(|i| i.ipv4_address.clone())
            .filter(|s| !s.is_empty());
        let ip = {
            let mut pool = net.pool.lock().unwrap_or_else(|p| p.into_inner());
            match &want_ip {
                Some(s) => {
                    let ip: Ipv4Addr = s
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid IPv4 address: {s}")))?;
                    pool.reserve(ip).map_err(api)?;
                    ip
                }
                None => pool.allocate().map_err(api)?,
            }
        };
        let want_ip6 = cfg
            .ipam_config
            .as_ref()
            .map(|i| i.ipv6_address.clone())
            .filter(|s| !s.is_empty());
        let ip6 = match (&net.pool6, &want_ip6) {
            (None, None) => None,
            (None, Some(_)) => {
                net.pool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .release(ip);
                return Err(ApiError::bad_request(format!(
                    "invalid endpoint settings: user specified IPv6 address {} on network {}, which does not have IPv6 enabled (create it with --ipv6)",
                    want_ip6.as_deref().unwrap_or_default(),
                    net.rec.name
                )));
            }
            (Some(p6), want) => {
                let mut p6 = p6.lock().unwrap_or_else(|p| p.into_inner());
                let r = match want {
                    Some(s) => s
                        .parse::<Ipv6Addr>()
                        .map_err(|_| ApiError::bad_request(format!("invalid IPv6 address: {s}")))
                        .and_then(|a| p6.reserve(a).map(|()| a).map_err(api)),
                    None => p6.allocate().map_err(api),
                };
                match r {
                    Ok(a) => Some(a),
                    Err(e) => {
                        net.pool
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .release(ip);
                        return Err(e);
                    }
                }
            }
        };
        let endpoint_id = ids::new_id();
        let mac_bytes = if mac.is_empty() {
            ipam::mac_for(ip)
        } else {
            ipam::parse_mac(mac).map_err(api)?
        };
        let ifname = format!("eth{index}");
        let ep = EndpointState {
            network_id: net.rec.id.clone(),
            endpoint_id: endpoint_id.clone(),
            ip,
            prefix: net.subnet.prefix_len(),
            gateway: net.rec.gateway.parse().map_err(internal)?,
            mac: ipam::format_mac(&mac_bytes),
            ifname: ifname.clone(),
            veth: format!("veth{}", &endpoint_id[..7]),
            aliases: cfg.aliases.clone().unwrap_or_default(),
            ip6,
            prefix6: net.subnet6.map(|s| s.prefix_len()).unwrap_or(0),
            gateway6: net
                .pool6
                .as_ref()
                .map(|p| p.lock().unwrap_or_else(|p| p.into_inner()).gateway),
        };
        sb.endpoints.insert(net.rec.name.clone(), ep.clone());
        let mut bridge = net.ifindex.load(std::sync::atomic::Ordering::Relaxed);
        if bridge == 0 || !hostinfo::interface_exists(&net.rec.bridge) {
            bridge = self.net.bring_up(net).await?;
        }
        let mtu = net.rec.mtu.or(self.net.mtu);
        host.add_veth(&ep.veth, bridge, mtu, netns::raw(ns), &ifname, mac_bytes)
            .await
            .map_err(|e| internal(format!("failed to set up container networking: {e}")))?;
        if !net.rec.icc {
            host.set_isolated(&ep.veth)
                .await
                .map_err(|e| internal(format!("failed to set up container networking: {e}")))?;
        }
        let gw = (index == 0 && !net.rec.internal).then_some(ep.gateway);
        // The IPv6 default route goes through the first of its networks that has IPv6.
        let has_v6_route = sb
            .endpoints
            .values()
            .any(|e| e.ifname != ifname && e.ip6.is_some());
        let v6 = ep.ip6.map(|a| link::Inside6 {
            ip: a,
            prefix: ep.prefix6,
            gw: ep.gateway6.filter(|_| !net.rec.internal && !has_v6_route),
        });
        link::configure_inside(&ns.handle, &ifname, ip, ep.prefix, gw, v6, index == 0)
            .await
            .map_err(|e| internal(format!("failed to set up container networking: {e}")))?;
        tracing::debug!(id = %c.id, network = %net.rec.name, %ip, "endpoint added");
        let _ = rec;
        Ok(())
    }

    /// Reserves the host ports and adds them to the firewall's maps.
    async fn publish_ports(
        &self,
        c: &Container,
        rec: &ContainerRecord,
        sb: &mut Sandbox,
    ) -> Result<(), ApiError> {
        let primary = mode_network(&rec.network_mode);
        let Some(ep) = sb.endpoints.get(primary).cloned() else {
            return Ok(());
        };
        let net = self.net.find(primary)?;
        let default_ip = net.rec.host_binding.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let wanted = wanted_ports(rec, default_ip)?;
        if wanted.is_empty() || net.rec.internal {
            return Ok(());
        }
        let firewall = self.net.fw.is_some();
        let proxied = !firewall;
        if wanted.iter().any(|w| w.host_ip.is_ipv6()) {
            if !self.cfg.net.userland_proxy {
                return Err(ApiError::bad_request(
                    "publishing on an IPv6 host address needs the userland proxy, which daemon.json turns off (\"userland-proxy\": false)",
                ));
            }
            if wanted
                .iter()
                .any(|w| w.host_ip.is_ipv6() && w.proto == Proto::Sctp)
            {
                return Err(ApiError::bad_request(
                    "publishing SCTP ports on an IPv6 host address is not supported by berth (the userland proxy forwards TCP and UDP only)",
                ));
            }
        }
        if proxied {
            if !self.cfg.net.userland_proxy {
                return Err(ApiError::bad_request(
                    "publishing ports needs berth's firewall rules or the userland proxy, and daemon.json turns off both (\"iptables\": false, \"userland-proxy\": false)",
                ));
            }
            if wanted.iter().any(|w| w.proto == Proto::Sctp) {
                return Err(ApiError::bad_request(
                    "publishing SCTP ports needs berth's firewall rules, which daemon.json turns off (\"iptables\": false); the userland proxy forwards TCP and UDP only",
                ));
            }
        }
        let fail = |m: String| {
            ApiError::internal(format!(
                "driver failed programming external connectivity on endpoint {} ({}): {m}",
                rec.name, ep.endpoint_id
            ))
        };
        let mut held = Vec::new();
        let mut published: Vec<PublishedPort> = Vec::new();
        let range = ports::ephemeral_range();
        for w in &wanted {
            let listen = proxied || w.host_ip.is_ipv6();
            let (port, r) = match w.host_range {
                Some((lo, hi)) if lo == hi => {
                    let r = if listen {
                        ports::reserve_listening(w.proto, w.host_ip, lo)
                    } else {
                        ports::reserve(w.proto, w.host_ip, lo)
                    }
                    .map_err(|e| fail(e.to_string()))?;
                    (lo, r)
                }
                other => {
                    let mut cursor = self
                        .net
                        .port_cursor
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let taken = |p: u16| {
                        published
                            .iter()
                            .any(|x| x.proto == w.proto && x.host_port == p)
                    };
                    ports::reserve_any(
                        w.proto,
                        w.host_ip,
                        other.unwrap_or(range),
                        &mut cursor,
                        &taken,
                    )
                    .map_err(|e| fail(e.to_string()))?
                }
            };
            held.push(r);
            published.push(PublishedPort {
                proto: w.proto,
                host_ip: w.host_ip,
                host_port: port,
                ctr_ip: ep.ip,
                ctr_port: w.ctr_port,
            });
        }
        // The userland proxy serves the reserved sockets of its ports; the kernel the rest.
        let mut socks = Vec::new();
        let mut kept = Vec::new();
        for (r, p) in held.into_iter().zip(&published) {
            if !p.proxied(firewall) {
                kept.push(r);
                continue;
            }
            let Some((fd, _)) = r.into_parts() else {
                return Err(fail("no socket for the userland proxy".to_string()));
            };
            socks.push((
                fd,
                p.proto,
                std::net::SocketAddrV4::new(p.ctr_ip, p.ctr_port),
            ));
        }
        let held = kept;
        if !socks.is_empty() {
            let pid =
                crate::netproxy::spawn(&self.cfg.shim_source, &sb.key, socks).map_err(fail)?;
            sb.proxy_pid = Some(pid);
        }
        let Some(fw) = &self.net.fw else {
            sb.ports = published;
            return Ok(());
        };
        let fwp: Vec<FwPort> = published
            .iter()
            .filter(|p| !p.proxied(true))
            .map(PublishedPort::fw)
            .collect();
        {
            let _g = self.net.lock.lock().await;
            fw.add_ports(&fwp)
                .await
                .map_err(|e| fail(format!("cannot program the firewall: {e}")))?;
            self.net
                .published
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(c.id.clone(), fwp);
        }
        self.net
            .reservations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.id.clone(), held);
        sb.ports = published;
        // A container reaching its own published port through a host address comes back
        // through its own bridge port.
        if let Some(host) = &self.net.host {
            if let Err(e) = host.set_hairpin(&ep.veth).await {
                tracing::warn!(id = %c.id, "{e}");
            }
        }
        Ok(())
    }

    /// Undoes an attachment: firewall elements, port reservations, addresses, the namespace.
    async fn release_sandbox(&self, cid: &str, sb: &Sandbox) {
        if let Some(pid) = sb.proxy_pid {
            crate::netproxy::stop(pid, &sb.key);
        }
        let had = self
            .net
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(cid);
        if had {
            if let Some(fw) = &self.net.fw {
                let _g = self.net.lock.lock().await;
                let ports = self
                    .net
                    .published
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(cid)
                    .unwrap_or_default();
                if let Err(e) = fw.delete_ports(&ports).await {
                    tracing::warn!(id = cid, "removing published ports: {e}");
                }
            }
        }
        self.net
            .reservations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(cid);
        for ep in sb.endpoints.values() {
            if let Ok(net) = self.net.find(&ep.network_id) {
                net.pool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .release(ep.ip);
                if let (Some(p6), Some(ip6)) = (&net.pool6, ep.ip6) {
                    p6.lock().unwrap_or_else(|p| p.into_inner()).release(ip6);
                }
            }
            if self.net.fw.is_some() {
                tokio::spawn(berth_net::firewall::flush_conntrack(ep.ip));
            }
        }
        if !sb.key.is_empty() {
            if let Err(e) = netns::remove(Path::new(&sb.key)) {
                tracing::warn!(id = cid, "{e}");
            }
        }
    }

    /// Takes a stopped (or crashed) container off its networks.
    pub(crate) async fn net_detach(&self, c: &Container) {
        self.dns_stop(&c.id).await;
        let Some(sb) = c.with(|r| r.sandbox.clone()) else {
            return;
        };
        self.release_sandbox(&c.id, &sb).await;
        if let Err(e) = c.update_volatile(|r| r.sandbox = None) {
            tracing::warn!(id = %c.id, "cannot save the container state: {e}");
        }
        for (name, ep) in &sb.endpoints {
            self.network_event("disconnect", &ep.network_id, name, &c.id);
        }
    }

    /// At daemon start: address leases, port reservations and the firewall from the records of
    /// running containers; namespaces nobody owns are removed.
    pub(crate) async fn net_restore(&self, containers: &[Arc<Container>]) {
        let mut keep: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
        for c in containers {
            let (running, sb) = c.with(|r| (r.state.status.is_running(), r.sandbox.clone()));
            let Some(sb) = sb else { continue };
            if !running || !Path::new(&sb.key).exists() {
                // An attachment whose exit was not processed (a crash): nothing of it is
                // restored, and the record forgets it; its namespace goes below.
                if let Some(pid) = sb.proxy_pid {
                    crate::netproxy::stop(pid, &sb.key);
                }
                if let Err(e) = c.update_volatile(|r| r.sandbox = None) {
                    tracing::warn!(id = %c.id, "{e}");
                }
                continue;
            }
            keep.insert(PathBuf::from(&sb.key));
            self.dns_restore(c);
            for ep in sb.endpoints.values() {
                if let Ok(net) = self.net.find(&ep.network_id) {
                    net.pool
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .mark_used(ep.ip);
                    if let (Some(p6), Some(ip6)) = (&net.pool6, ep.ip6) {
                        p6.lock().unwrap_or_else(|p| p.into_inner()).mark_used(ip6);
                    }
                }
            }
            let firewall = self.net.fw.is_some();
            if let Some(pid) = sb.proxy_pid {
                // The proxy holds its ports; one that died is started again.
                if !crate::netproxy::alive(pid, &sb.key) {
                    self.restart_proxy(c, &sb);
                }
            } else if sb.ports.iter().any(|p| p.proxied(firewall)) {
                self.restart_proxy(c, &sb);
            }
            if firewall && sb.ports.iter().any(|p| !p.proxied(true)) {
                let mut held = Vec::new();
                for p in sb.ports.iter().filter(|p| !p.proxied(true)) {
                    match ports::reserve(p.proto, p.host_ip, p.host_port) {
                        Ok(r) => held.push(r),
                        Err(e) => tracing::warn!(id = %c.id, "re-reserving a published port: {e}"),
                    }
                }
                self.net
                    .reservations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(c.id.clone(), held);
                self.net
                    .published
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        c.id.clone(),
                        sb.ports
                            .iter()
                            .filter(|p| !p.proxied(true))
                            .map(PublishedPort::fw)
                            .collect(),
                    );
            }
        }
        {
            let _g = self.net.lock.lock().await;
            if let Err(e) = self.net.sync_firewall().await {
                tracing::error!("{}", e.message);
            }
        }
        for p in netns::list(&self.net.netns_dir) {
            if !keep.contains(&p) {
                tracing::info!(
                    "removing the network namespace {} of no running container",
                    p.display()
                );
                if let Err(e) = netns::remove(&p) {
                    tracing::warn!("{e}");
                }
            }
        }
    }

    /// Starts a running container's userland proxy again (it died while the daemon was away).
    fn restart_proxy(&self, c: &Container, sb: &Sandbox) {
        let mut socks = Vec::new();
        let firewall = self.net.fw.is_some();
        for p in sb.ports.iter().filter(|p| p.proxied(firewall)) {
            match ports::reserve_listening(p.proto, p.host_ip, p.host_port).map(|r| r.into_parts())
            {
                Ok(Some((fd, _))) => socks.push((
                    fd,
                    p.proto,
                    std::net::SocketAddrV4::new(p.ctr_ip, p.ctr_port),
                )),
                Ok(None) => {}
                Err(e) => tracing::warn!(id = %c.id, "re-reserving a published port: {e}"),
            }
        }
        let pid = match crate::netproxy::spawn(&self.cfg.shim_source, &sb.key, socks) {
            Ok(pid) => Some(pid),
            Err(e) => {
                tracing::warn!(id = %c.id, "{e}");
                None
            }
        };
        if let Err(e) = c.update_volatile(|r| {
            if let Some(s) = r.sandbox.as_mut() {
                s.proxy_pid = pid;
            }
        }) {
            tracing::warn!(id = %c.id, "cannot save the container state: {e}");
        }
    }

    /// Rewrites /etc/hosts with the container's addresses.
    pub(crate) fn write_hosts(&self, c: &Container) {
        let rec = c.record();
        let extra = rec
            .host_config
            .extra_hosts
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| crate::netfiles::parse_extra_host(e, self.host_gateway()).ok())
            .collect::<Vec<_>>();
        let ips: Vec<std::net::IpAddr> = rec
            .sandbox
            .as_ref()
            .map(|s| {
                s.endpoints
                    .values()
                    .flat_map(|e| std::iter::once(IpAddr::V4(e.ip)).chain(e.ip6.map(IpAddr::V6)))
                    .collect()
            })
            .unwrap_or_default();
        let text =
            crate::netfiles::hosts_file(&rec.config.hostname, &rec.config.domainname, &ips, &extra);
        if let Err(e) = berth_image::fsutil::write_replace(&c.dir, "hosts", text.as_bytes(), 0o644)
        {
            tracing::warn!(id = %c.id, "cannot write /etc/hosts: {e}");
        }
    }

    /// The address `host-gateway` stands for: the default bridge's gateway.
    pub(crate) fn host_gateway(&self) -> Option<std::net::IpAddr> {
        self.net
            .find("bridge")
            .ok()
            .and_then(|n| n.rec.gateway.parse().ok())
    }

    /// The daemon-wide `dns`, `dns-search`, `dns-opts`.
    pub(crate) fn daemon_dns(&self) -> (&[String], &[String], &[String]) {
        (&self.net.dns.0, &self.net.dns.1, &self.net.dns.2)
    }

    fn network_event(&self, action: &str, net_id: &str, name: &str, cid: &str) {
        let mut attrs = BTreeMap::new();
        if !cid.is_empty() {
            attrs.insert("container".to_string(), cid.to_string());
        }
        attrs.insert("name".to_string(), name.to_string());
        attrs.insert("type".to_string(), "bridge".to_string());
        self.events.emit("network", action, net_id, attrs);
    }

    /// `NetworkSettings.Networks` for inspect and ps.
    pub(crate) fn endpoint_settings(
        &self,
        r: &ContainerRecord,
    ) -> BTreeMap<String, EndpointSettings> {
        let mut m = BTreeMap::new();
        if r.network_mode.starts_with("container:") {
            return m;
        }
        if !is_bridged(&r.network_mode) {
            m.insert(
                r.network_mode.clone(),
                EndpointSettings {
                    network_id: self.network_id(&r.network_mode),
                    ..Default::default()
                },
            );
            return m;
        }
        let running = r.state.status.is_running();
        for (name, cfg) in Self::endpoint_order(r) {
            let mut e = EndpointSettings {
                ipam_config: cfg.ipam_config.clone(),
                links: cfg.links.clone(),
                aliases: cfg.aliases.clone(),
                mac_address: cfg.mac_address.clone(),
                driver_opts: cfg.driver_opts.clone(),
                ..Default::default()
            };
            if let Ok(n) = self.net.find(&name) {
                e.network_id = n.rec.id.clone();
            }
            if running {
                if let Some(ep) = r.sandbox.as_ref().and_then(|s| s.endpoints.get(&name)) {
                    e.network_id = ep.network_id.clone();
                    e.endpoint_id = ep.endpoint_id.clone();
                    e.gateway = ep.gateway.to_string();
                    e.ip_address = ep.ip.to_string();
                    e.ip_prefix_len = ep.prefix as i64;
                    e.mac_address = ep.mac.clone();
                    if let Some(a) = ep.ip6 {
                        e.global_ipv6_address = a.to_string();
                        e.global_ipv6_prefix_len = ep.prefix6 as i64;
                        e.ipv6_gateway = ep.gateway6.map(|g| g.to_string()).unwrap_or_default();
                    }
                    if !is_default_net(&name) {
                        e.dns_names = Some(crate::dns::endpoint_dns_names(r, &ep.aliases));
                    }
                }
            }
            m.insert(name, e);
        }
        m
    }

    /// `NetworkSettings.Ports`: published ports with their host bindings, exposed ones null.
    pub(crate) fn port_map(&self, r: &ContainerRecord) -> PortMap {
        let mut m: PortMap = BTreeMap::new();
        if !is_bridged(&r.network_mode) {
            return m;
        }
        for k in r
            .config
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .into_keys()
        {
            m.insert(k, None);
        }
        if r.state.status.is_running() {
            if let Some(sb) = &r.sandbox {
                for p in &sb.ports {
                    m.entry(format!("{}/{}", p.ctr_port, p.proto.as_str()))
                        .or_insert(None)
                        .get_or_insert_with(Vec::new)
                        .push(PortBinding {
                            host_ip: p.host_ip.to_string(),
                            host_port: p.host_port.to_string(),
                        });
                }
            }
        }
        m
    }

    /// `Ports` of `GET /containers/json`.
    pub(crate) fn port_list(&self, r: &ContainerRecord) -> Vec<Port> {
        let mut out = Vec::new();
        for (k, v) in self.port_map(r) {
            let Ok((p, _, proto)) = ports::parse_port_key(&k) else {
                continue;
            };
            match v {
                Some(bs) if !bs.is_empty() => {
                    for b in bs {
                        out.push(Port {
                            ip: b.host_ip.clone(),
                            private_port: p,
                            public_port: b.host_port.parse().unwrap_or(0),
                            kind: proto.as_str().to_string(),
                        });
                    }
                }
                _ => out.push(Port {
                    ip: String::new(),
                    private_port: p,
                    public_port: 0,
                    kind: proto.as_str().to_string(),
                }),
            }
        }
        out
    }

    /// The primary endpoint, for the top-level inspect fields (only the default bridge's
    /// endpoint fills them, as in Docker).
    pub(crate) fn primary_endpoint<'a>(&self, r: &'a ContainerRecord) -> Option<&'a EndpointState> {
        if !r.state.status.is_running() {
            return None;
        }
        r.sandbox.as_ref()?.endpoints.get("bridge")
    }

    // ----- the /networks API -----

    fn network_resource(&self, n: &Net) -> NetworkResource {
        let mut containers = BTreeMap::new();
        for c in self.all_containers() {
            c.with(|r| {
                if !r.state.status.is_running() {
                    return;
                }
                if let Some(ep) = r
                    .sandbox
                    .as_ref()
                    .and_then(|s| s.endpoints.get(&n.rec.name))
                {
                    containers.insert(
                        r.id.clone(),
                        NetworkEndpointResource {
                            name: r.name.clone(),
                            endpoint_id: ep.endpoint_id.clone(),
                            mac_address: ep.mac.clone(),
                            ipv4_address: format!("{}/{}", ep.ip, ep.prefix),
                            ipv6_address: ep
                                .ip6
                                .map(|a| format!("{a}/{}", ep.prefix6))
                                .unwrap_or_default(),
                        },
                    );
                }
            })
        }
        let mut options = n.rec.options.clone();
        if n.rec.default_bridge {
            options.insert(
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            );
            options.insert(
                "com.docker.network.bridge.enable_icc".into(),
                n.rec.icc.to_string(),
            );
            options.insert(
                "com.docker.network.bridge.enable_ip_masquerade".into(),
                n.rec.masquerade.to_string(),
            );
            options.insert(
                "com.docker.network.bridge.host_binding_ipv4".into(),
                "0.0.0.0".into(),
            );
            options.insert(
                "com.docker.network.bridge.name".into(),
                n.rec.bridge.clone(),
            );
            options.insert(
                "com.docker.network.driver.mtu".into(),
                n.rec.mtu.unwrap_or(1500).to_string(),
            );
        }
        NetworkResource {
            name: n.rec.name.clone(),
            id: n.rec.id.clone(),
            created: docker_time(Some(n.rec.created)),
            scope: "local".into(),
            driver: n.rec.driver.clone(),
            enable_ipv6: n.subnet6.is_some(),
            ipam: Ipam {
                driver: "default".into(),
                options: (!n.rec.ipam_options.is_empty()).then(|| n.rec.ipam_options.clone()),
                config: Some(
                    std::iter::once(IpamConfig {
                        subnet: n.rec.subnet.clone(),
                        ip_range: n.rec.ip_range.clone(),
                        gateway: n.rec.gateway.clone(),
                        auxiliary_addresses: None,
                    })
                    .chain((!n.rec.subnet6.is_empty()).then(|| IpamConfig {
                        subnet: n.rec.subnet6.clone(),
                        ip_range: String::new(),
                        gateway: n.rec.gateway6.clone(),
                        auxiliary_addresses: None,
                    }))
                    .collect(),
                ),
            },
            internal: n.rec.internal,
            attachable: n.rec.attachable,
            ingress: false,
            config_from: Default::default(),
            config_only: false,
            containers: Some(containers),
            options: Some(options),
            labels: Some(n.rec.labels.clone()),
        }
    }

    /// Every network, predefined ones included.
    fn network_resources(&self) -> Vec<NetworkResource> {
        let mut v: Vec<NetworkResource> = self
            .net
            .all()
            .iter()
            .map(|n| self.network_resource(n))
            .collect();
        for p in ["host", "none"] {
            v.push(self.predefined_network(p));
        }
        v
    }

    pub(crate) async fn network_list(
        &self,
        filters: Filters,
    ) -> Result<Vec<NetworkResource>, ApiError> {
        filters.validate(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
        let all = self.network_resources();
        let in_use = self.networks_in_use();
        Ok(all
            .into_iter()
            .filter(|n| network_matches(n, &filters, &in_use))
            .collect())
    }

    /// Network IDs some container is configured on (running or not).
    fn networks_in_use(&self) -> std::collections::HashSet<String> {
        let mut s = std::collections::HashSet::new();
        for c in self.all_containers() {
            let rec = c.record();
            if !is_bridged(&rec.network_mode) {
                if let Some(n) = ["host", "none"].iter().find(|n| **n == rec.network_mode) {
                    s.insert(self.network_id(n));
                }
                continue;
            }
            for (name, _) in Self::endpoint_order(&rec) {
                if let Ok(n) = self.net.find(&name) {
                    s.insert(n.rec.id.clone());
                }
            }
        }
        s
    }

    pub(crate) async fn network_inspect(&self, id: &str) -> Result<NetworkResource, ApiError> {
        for p in ["host", "none"] {
            let r = self.predefined_network(p);
            if id == p || id == r.id || (id.len() >= 3 && r.id.starts_with(id)) {
                return Ok(r);
            }
        }
        let n = self.net.find(id)?;
        Ok(self.network_resource(&n))
    }

    pub(crate) async fn network_create(
        &self,
        req: NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse, ApiError> {
        let name = req.name.clone();
        if name.is_empty() {
            return Err(ApiError::bad_request("network name must not be empty"));
        }
        if !valid_network_name(&name) || name.len() > 128 {
            return Err(ApiError::bad_request(format!(
                "invalid network name {name:?}: it must start with a letter or digit and contain only [a-zA-Z0-9_.-]"
            )));
        }
        if matches!(name.as_str(), "bridge" | "host" | "none" | "default") {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                format!("{name} is a pre-defined network and cannot be created"),
            ));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if driver != "bridge" {
            return Err(ApiError::bad_request(format!(
                "network driver {driver} is not supported by berth (bridge)"
            )));
        }
        if req.enable_ipv4 == Some(false) {
            return Err(ApiError::bad_request(
                "IPv4-less networks (--ipv4=false) are not implemented by berth: its networks always have IPv4",
            ));
        }
        if req.config_only
            || req
                .config_from
                .as_ref()
                .is_some_and(|c| !c.network.is_empty())
        {
            return Err(ApiError::bad_request(
                "config-only networks are not supported by berth",
            ));
        }
        if req.ingress {
            return Err(ApiError::bad_request(
                "ingress networks need swarm mode, which berth does not provide",
            ));
        }
        if let Some(ipam) = &req.ipam {
            if !ipam.driver.is_empty() && ipam.driver != "default" {
                return Err(ApiError::bad_request(format!(
                    "IPAM driver {} is not supported by berth (default)",
                    ipam.driver
                )));
            }
        }
        let host = self.net.host()?;
        let _g = self.net.lock.lock().await;
        if self.net.all().iter().any(|n| n.rec.name == name) {
            return Err(ApiError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let opts = req.options.clone().unwrap_or_default();
        let mut mtu = self.net.mtu;
        let mut masquerade = true;
        let mut bridge = None;
        let mut host_binding = None;
        let mut icc = true;
        for (k, v) in &opts {
            match k.as_str() {
                "com.docker.network.bridge.name" => bridge = Some(v.clone()),
                "com.docker.network.driver.mtu" => {
                    let m: u32 = v
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid MTU number: {v}")))?;
                    if !(68..=65535).contains(&m) {
                        return Err(ApiError::bad_request(format!("invalid MTU number: {m}")));
                    }
                    mtu = Some(m);
                }
                "com.docker.network.bridge.enable_ip_masquerade" => {
                    masquerade = v
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v}")))?
                }
                "com.docker.network.bridge.host_binding_ipv4" => {
                    host_binding = Some(v.parse::<Ipv4Addr>().map_err(|_| {
                        ApiError::bad_request(format!("invalid value for {k}: {v}"))
                    })?)
                }
                "com.docker.network.bridge.enable_icc" => {
                    icc = v
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v}")))?
                }
                _ => {}
            }
        }
        let id = ids::new_id();
        let bridge = bridge.unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.len() > 15
            || bridge.is_empty()
            || !bridge
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ApiError::bad_request(format!(
                "invalid bridge name {bridge:?}: at most 15 letters, digits, '-', '_' or '.'"
            )));
        }
        if self.net.all().iter().any(|n| n.rec.bridge == bridge) {
            return Err(ApiError::conflict(format!(
                "bridge name {bridge} is already used by another network"
            )));
        }
        let others: Vec<Ipv4Net> = self.net.all().iter().map(|n| n.subnet).collect();
        let all_cfgs: Vec<IpamConfig> = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.clone())
            .unwrap_or_default();
        let is_v6 = |c: &IpamConfig| c.subnet.contains(':') || c.gateway.contains(':');
        let (cfgs6, cfgs): (Vec<IpamConfig>, Vec<IpamConfig>) =
            all_cfgs.into_iter().partition(is_v6);
        if cfgs.len() > 1 {
            return Err(ApiError::bad_request(
                "only one IPv4 subnet per network is supported by berth",
            ));
        }
        if cfgs6.len() > 1 {
            return Err(ApiError::bad_request(
                "only one IPv6 subnet per network is supported by berth",
            ));
        }
        if !cfgs6.is_empty() && !req.enable_ipv6 {
            return Err(ApiError::bad_request(
                "an IPv6 subnet or gateway needs IPv6 enabled on the network (--ipv6)",
            ));
        }
        let (subnet6, gateway6) = if req.enable_ipv6 {
            let others6: Vec<Ipv6Net> = self.net.all().iter().filter_map(|n| n.subnet6).collect();
            let (s6, gw6) = match cfgs6.first() {
                Some(c) if !c.subnet.is_empty() => {
                    if !c.ip_range.is_empty() {
                        return Err(ApiError::bad_request(
                            "IPv6 IP ranges (--ip-range with an IPv6 subnet) are not supported by berth: give the IPv6 subnet only",
                        ));
                    }
                    let s6 = ipam::parse_subnet6(&c.subnet).map_err(api)?;
                    let gw6 = if c.gateway.is_empty() {
                        None
                    } else {
                        Some(c.gateway.parse::<Ipv6Addr>().map_err(|_| {
                            ApiError::bad_request(format!("invalid gateway address {}", c.gateway))
                        })?)
                    };
                    (s6, gw6)
                }
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "a gateway or an IP range needs a subnet (--subnet)",
                    ))
                }
                None => (ipam::ula_subnet(&hex_bytes(&id)), None),
            };
            if let Some(o) = others6.iter().find(|o| ipam::overlaps6(o, &s6)) {
                return Err(ApiError::new(
                    http::StatusCode::FORBIDDEN,
                    format!(
                        "Pool overlaps with other one on this address space ({s6} overlaps {o})"
                    ),
                ));
            }
            let p6 = Pool6::new(s6, None, gw6).map_err(api)?;
            (s6.to_string(), p6.gateway.to_string())
        } else {
            (String::new(), String::new())
        };
        let (subnet, range, gateway) = match cfgs.first() {
            Some(c) if !c.subnet.is_empty() => {
                if c.subnet.contains(':') {
                    return Err(ApiError::bad_request(
                        "IPv6 subnets are not implemented by berth yet",
                    ));
                }
                let s = ipam::parse_subnet(&c.subnet).map_err(api)?;
                if let Some(o) = others.iter().find(|o| ipam::overlaps(o, &s)) {
                    return Err(ApiError::new(
                        http::StatusCode::FORBIDDEN,
                        format!(
                            "Pool overlaps with other one on this address space ({s} overlaps {o})"
                        ),
                    ));
                }
                let range = if c.ip_range.is_empty() {
                    None
                } else {
                    Some(ipam::parse_subnet(&c.ip_range).map_err(api)?)
                };
                let gw = if c.gateway.is_empty() {
                    None
                } else {
                    Some(c.gateway.parse::<Ipv4Addr>().map_err(|_| {
                        ApiError::bad_request(format!("invalid gateway address {}", c.gateway))
                    })?)
                };
                (s, range, gw)
            }
            Some(c) if !c.gateway.is_empty() || !c.ip_range.is_empty() => {
                return Err(ApiError::bad_request(
                    "a gateway or an IP range needs a subnet (--subnet)",
                ))
            }
            _ => {
                let mut taken: Vec<Ipv4Net> = hostinfo::host_routes()
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect();
                taken.extend(others.iter().cloned());
                let s = ipam::choose_subnet(&self.net.pools, &taken).ok_or_else(|| {
                    ApiError::internal(
                        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
                    )
                })?;
                (s, None, None)
            }
        };
        let pool = Pool::new(subnet, range, gateway).map_err(api)?;
        let rec = NetworkRecord {
            id: id.clone(),
            name: name.clone(),
            driver,
            created: Utc::now(),
            bridge,
            subnet: subnet.to_string(),
            gateway: pool.gateway.to_string(),
            ip_range: range.map(|r| r.to_string()).unwrap_or_default(),
            internal: req.internal,
            attachable: req.attachable,
            options: opts,
            labels: req.labels.clone().unwrap_or_default(),
            ipam_options: req
                .ipam
                .as_ref()
                .and_then(|i| i.options.clone())
                .unwrap_or_default(),
            default_bridge: false,
            mtu,
            masquerade,
            host_binding,
            icc,
            subnet6,
            gateway6,
        };
        let net = self.net.insert(rec.clone())?;
        let made = async {
            self.net.bring_up(&net).await?;
            self.net.sync_firewall().await?;
            self.net.save(&rec)
        }
        .await;
        if let Err(e) = made {
            self.net
                .nets
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            let _ = host.delete_link(&net.rec.bridge).await;
            let _ = self.net.sync_firewall().await;
            return Err(e);
        }
        self.network_event("create", &id, &name, "");
        Ok(NetworkCreateResponse {
            id,
            warning: String::new(),
        })
    }

    pub(crate) async fn network_remove(&self, id: &str) -> Result<(), ApiError> {
        if matches!(id, "host" | "none")
            || self.predefined_network("host").id == id
            || self.predefined_network("none").id == id
        {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                format!("{id} is a pre-defined network and cannot be removed"),
            ));
        }
        let n = self.net.find(id)?;
        if n.rec.default_bridge {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                "bridge is a pre-defined network and cannot be removed",
            ));
        }
        let _g = self.net.lock.lock().await;
        let users: Vec<String> = self
            .all_containers()
            .iter()
            .filter_map(|c| {
                c.with(|r| {
                    (r.state.status.is_running()
                        && r.sandbox
                            .as_ref()
                            .is_some_and(|s| s.endpoints.contains_key(&n.rec.name)))
                    .then(|| r.name.clone())
                })
            })
            .collect();
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.rec.name,
                n.rec.id,
                users.join(", ")
            )));
        }
        self.net
            .nets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&n.rec.id);
        if let Err(e) = std::fs::remove_file(self.net.dir.join(format!("{}.json", n.rec.id))) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(internal(format!(
                    "cannot remove network {}: {e}",
                    n.rec.name
                )));
            }
        }
        if let Err(e) = self.net.sync_firewall().await {
            tracing::warn!("{}", e.message);
        }
        if let Some(h) = &self.net.host {
            if let Err(e) = h.delete_link(&n.rec.bridge).await {
                tracing::warn!("{e}");
            }
        }
        self.network_event("destroy", &n.rec.id, &n.rec.name, "");
        Ok(())
    }

    pub(crate) async fn network_prune(
        &self,
        filters: Filters,
    ) -> Result<NetworksPruneReport, ApiError> {
        filters.validate(&["label", "label!", "until"])?;
        let in_use = self.networks_in_use();
        let mut deleted = Vec::new();
        for n in self.net.all() {
            if n.rec.default_bridge || in_use.contains(&n.rec.id) {
                continue;
            }
            if !crate::ops::labels_match(&filters, &n.rec.labels) {
                continue;
            }
            if let Some(t) = crate::ops::until(&filters)? {
                if n.rec.created.timestamp() >= t {
                    continue;
                }
            }
            if self.network_remove(&n.rec.id).await.is_ok() {
                deleted.push(n.rec.name.clone());
            }
        }
        Ok(NetworksPruneReport {
            networks_deleted: Some(deleted),
        })
    }

    pub(crate) async fn network_connect(
        self: &Arc<Self>,
        net_ref: &str,
        req: NetworkConnectRequest,
    ) -> Result<(), ApiError> {
        let c = self.lookup(&req.container)?;
        if matches!(net_ref, "host" | "none") {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                format!("container cannot be disconnected from host network or connected to {net_ref} network"),
            ));
        }
        let n = self.net.find(net_ref)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        if !is_bridged(&rec.network_mode) {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        let already = Self::endpoint_order(&rec)
            .iter()
            .any(|(k, _)| self.net.find(k).is_ok_and(|x| x.rec.id == n.rec.id));
        let mut cfg = req.endpoint_config.unwrap_or_default();
        if let Some(ip) = cfg.ipam_config.as_ref().map(|i| i.ipv4_address.clone()) {
            if !ip.is_empty() && n.rec.default_bridge {
                return Err(ApiError::bad_request(
                    "user specified IP address is supported on user defined networks only",
                ));
            }
        }
        if cfg.aliases.as_ref().is_some_and(|a| !a.is_empty()) && n.rec.default_bridge {
            return Err(ApiError::bad_request(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        cfg.network_id = String::new();
        let running = rec.state.status.is_running();
        // A stopped container already on the network: the new configuration replaces the old
        // (compose does this).
        if already && running {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                format!(
                    "endpoint with name {} already exists in network {}",
                    rec.name, n.rec.name
                ),
            ));
        }
        if running {
            let sb = rec.sandbox.clone().ok_or_else(|| {
                internal("the running container has no network namespace recorded")
            })?;
            let ns = netns::join(Path::new(&sb.key)).await.map_err(internal)?;
            let mut sb2 = sb.clone();
            let index = (0..)
                .find(|i| !sb.endpoints.values().any(|e| e.ifname == format!("eth{i}")))
                .unwrap_or(sb.endpoints.len());
            let r = self
                .add_endpoint(
                    &c,
                    &rec,
                    &n,
                    &cfg,
                    &cfg.mac_address.clone(),
                    index,
                    &ns,
                    &mut sb2,
                )
                .await;
            drop(ns);
            if let Err(e) = r {
                if let Some(ep) = sb2.endpoints.get(&n.rec.name) {
                    n.pool
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .release(ep.ip);
                    if let (Some(p6), Some(ip6)) = (&n.pool6, ep.ip6) {
                        p6.lock().unwrap_or_else(|p| p.into_inner()).release(ip6);
                    }
                    // The veth may exist already: its removal takes the host end with it.
                    if let Ok(ns) = netns::join(Path::new(&sb.key)).await {
                        let _ = link::delete_inside(&ns.handle, &ep.ifname).await;
                    }
                }
                return Err(e);
            }
            c.update(|r| {
                r.endpoints_config.insert(n.rec.name.clone(), cfg.clone());
                r.sandbox = Some(sb2.clone());
            })
            .map_err(internal)?;
            self.write_hosts(&c);
            self.dns_refresh(&c, None);
        } else {
            c.update(|r| {
                r.endpoints_config.remove("default");
                r.endpoints_config.insert(n.rec.name.clone(), cfg.clone());
            })
            .map_err(internal)?;
        }
        self.network_event("connect", &n.rec.id, &n.rec.name, &c.id);
        Ok(())
    }

    pub(crate) async fn network_disconnect(
        self: &Arc<Self>,
        net_ref: &str,
        req: NetworkDisconnectRequest,
    ) -> Result<(), ApiError> {
        let c = self.lookup(&req.container)?;
        if matches!(net_ref, "host" | "none") {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                format!("container cannot be disconnected from {net_ref} network"),
            ));
        }
        let n = self.net.find(net_ref)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        let key = Self::endpoint_order(&rec)
            .into_iter()
            .map(|(k, _)| k)
            .find(|k| self.net.find(k).is_ok_and(|x| x.rec.id == n.rec.id));
        let Some(key) = key else {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                format!(
                    "container {} is not connected to network {}",
                    rec.id, n.rec.name
                ),
            ));
        };
        let running = rec.state.status.is_running();
        if running {
            if let Some(sb) = rec.sandbox.clone() {
                if let Some(ep) = sb.endpoints.get(&n.rec.name) {
                    let ns = netns::join(Path::new(&sb.key)).await.map_err(internal)?;
                    let r = link::delete_inside(&ns.handle, &ep.ifname).await;
                    drop(ns);
                    r.map_err(internal)?;
                    n.pool
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .release(ep.ip);
                    if let (Some(p6), Some(ip6)) = (&n.pool6, ep.ip6) {
                        p6.lock().unwrap_or_else(|p| p.into_inner()).release(ip6);
                    }
                    if mode_network(&rec.network_mode) == n.rec.name && !sb.ports.is_empty() {
                        let mut sb2 = sb.clone();
                        sb2.endpoints.clear();
                        sb2.key.clear();
                        self.release_sandbox(&c.id, &sb2).await;
                    }
                }
            }
        }
        c.update(|r| {
            r.endpoints_config.remove(&key);
            if key == "bridge" {
                r.endpoints_config.remove("default");
            }
            if let Some(sb) = r.sandbox.as_mut() {
                if sb.endpoints.remove(&n.rec.name).is_some()
                    && mode_network(&r.network_mode) == n.rec.name
                {
                    sb.ports.clear();
                }
            }
            if mode_network(&r.network_mode) == n.rec.name {
                // The container keeps its other networks; the first of them becomes its mode.
                // Disconnected from its last network it keeps the mode string, as Docker does:
                // docker-compose 1.29 creates a container on the project network, disconnects
                // it and connects it again with its aliases before the start.
                if let Some(next) = r.endpoints_config.keys().find(|k| *k != "default") {
                    r.network_mode = next.clone();
                }
            }
        })
        .map_err(internal)?;
        if running {
            self.write_hosts(&c);
            self.dns_refresh(&c, Some(&n.rec.id));
        }
        self.network_event("disconnect", &n.rec.id, &n.rec.name, &c.id);
        Ok(())
    }
}

/// The bytes of a hex ID (a network's), the seed of its IPv6 ULA prefix.
fn hex_bytes(id: &str) -> Vec<u8> {
    id.as_bytes()
        .chunks(2)
        .filter_map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

fn is_default_net(name: &str) -> bool {
    matches!(name, "bridge" | "default")
}

fn network_matches(
    n: &NetworkResource,
    f: &Filters,
    in_use: &std::collections::HashSet<String>,
) -> bool {
    let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
        let v = f.get(key);
        v.is_empty() || v.iter().any(|x| pred(x))
    };
    let builtin = matches!(n.name.as_str(), "bridge" | "host" | "none");
    any("driver", &|d| n.driver == d)
        && any("id", &|x| n.id.starts_with(x))
        && any("name", &|x| n.name.contains(x))
        && any("scope", &|x| x == "local")
        && any("type", &|t| match t {
            "builtin" => builtin,
            "custom" => !builtin,
            _ => false,
        })
        && any("dangling", &|d| {
            let dangling = matches!(d, "true" | "1");
            !builtin && (dangling != in_use.contains(&n.id)) || (builtin && !dangling)
        })
        && crate::ops::labels_match(f, n.labels.as_ref().unwrap_or(&BTreeMap::new()))
}
