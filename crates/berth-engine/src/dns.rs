//! The engine side of the embedded DNS server (`berth_net::dns`, decision 0008): which
//! containers it serves, what their resolv.conf says, and the name records it answers from.
//!
//! * A container with its own network namespace on a user-defined network gets
//!   `nameserver 127.0.0.11` and is served by the daemon's DNS thread from the start of its
//!   process to its exit; it resolves the names (container name, `--network-alias` aliases and
//!   compose service names, short ID, hostname: Docker's `DNSNames`) of the running containers
//!   it shares a network with, and everything else is forwarded to its `--dns` servers (asked
//!   from its namespace) or the host's (asked from the daemon's, so a loopback stub such as
//!   systemd-resolved's 127.0.0.53 works).
//! * A container only on the default bridge gets the host's servers directly, as in Docker —
//!   unless the host only has loopback resolvers, which the container cannot reach: then it
//!   gets 127.0.0.11 as a plain forwarder (no container names there, as in Docker) instead of
//!   Docker's fallback to Google's public servers.
//! * Records hold running containers only, kept current at start, stop, connect, disconnect and
//!   rename; after a daemon restart the running containers are attached again.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use berth_api::ApiError;
use berth_net::dns::{self, Attachment, DnsConfig, DnsServer, EndpointRecord, Upstream};

use crate::container::{Container, ContainerRecord};
use crate::netfiles;
use crate::network::{is_bridged, Sandbox};
use crate::Engine;

/// The daemon's DNS server, or why there is none.
pub(crate) struct Dns {
    server: Result<Arc<DnsServer>, String>,
}

impl Dns {
    pub(crate) fn start() -> Dns {
        let server = DnsServer::start(DnsConfig::default())
            .map(Arc::new)
            .map_err(|e| {
                tracing::error!("{e}");
                e.to_string()
            });
        Dns { server }
    }

    fn server(&self) -> Result<&Arc<DnsServer>, ApiError> {
        self.server.as_ref().map_err(|e| {
            ApiError::internal(format!(
                "the embedded DNS server is unavailable ({e}); containers on user-defined networks cannot start"
            ))
        })
    }
}

/// What a container's /etc/resolv.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolvPlan {
    /// The host's servers (or the container's `--dns`) written into the file.
    Direct(String),
    /// `nameserver 127.0.0.11`; the DNS server forwards to `upstreams`.
    Embedded {
        content: String,
        upstreams: Vec<Upstream>,
    },
}

impl ResolvPlan {
    pub(crate) fn content(&self) -> &str {
        match self {
            ResolvPlan::Direct(s) => s,
            ResolvPlan::Embedded { content, .. } => content,
        }
    }
}

/// Whether the network (an endpoint key of a container) is a user-defined one: every network
/// but the default bridge (`host`/`none` never are endpoints of a bridged container).
fn user_network(name: &str) -> bool {
    !matches!(name, "bridge" | "default")
}

/// The container's `--dns*` settings, else the daemon's `dns`, `dns-search`, `dns-opts`.
pub(crate) fn dns_overrides(
    rec: &ContainerRecord,
    daemon: (&[String], &[String], &[String]),
) -> netfiles::DnsOverrides {
    let hc = &rec.host_config;
    let pick = |own: &Option<Vec<String>>, daemon: &[String]| {
        own.clone()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| daemon.to_vec())
    };
    netfiles::DnsOverrides {
        servers: pick(&hc.dns, daemon.0),
        search: pick(&hc.dns_search, daemon.1),
        options: pick(&hc.dns_options, daemon.2),
    }
}

/// Docker's servers for a container with nothing else to use (moby's defaults).
fn fallback_upstreams() -> Vec<Upstream> {
    [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)]
        .into_iter()
        .map(|ip| Upstream::container(IpAddr::V4(ip)))
        .collect()
}

fn embedded(host_resolv: &str, o: &netfiles::DnsOverrides) -> ResolvPlan {
    let mut r = dns::embedded_resolv_conf(host_resolv, &o.servers, &o.search, &o.options);
    if r.upstreams.is_empty() && o.servers.is_empty() {
        r = dns::embedded_resolv_conf(
            host_resolv,
            &["8.8.8.8".to_string(), "8.8.4.4".to_string()],
            &o.search,
            &o.options,
        );
        r.upstreams = fallback_upstreams();
    }
    ResolvPlan::Embedded {
        content: r.content,
        upstreams: r.upstreams,
    }
}

/// The resolv.conf of a container, from its record (network mode and networks, `--dns*`), the
/// daemon's DNS settings and the host's resolv.conf text.
pub(crate) fn resolv_plan(
    rec: &ContainerRecord,
    networks: &[String],
    daemon: (&[String], &[String], &[String]),
    host_resolv: &str,
) -> ResolvPlan {
    let o = dns_overrides(rec, daemon);
    let host_mode = rec.network_mode == "host";
    if is_bridged(&rec.network_mode) {
        if networks.iter().any(|n| user_network(n)) {
            return embedded(host_resolv, &o);
        }
        let host_servers = dns::nameservers(host_resolv);
        if o.servers.is_empty()
            && !host_servers.is_empty()
            && host_servers.iter().all(|ip| ip.is_loopback())
        {
            return embedded(host_resolv, &o);
        }
    }
    ResolvPlan::Direct(netfiles::resolv_conf(host_resolv, !host_mode, &o))
}

/// Whether a resolv.conf sends its queries to the embedded server.
fn names_embedded(text: &str) -> bool {
    dns::nameservers(text) == [IpAddr::V4(dns::DNS_ADDRESS)]
}

/// The container's endpoints on user-defined networks, in the order it joined them, as DNS
/// records: (network id, network name, record).
fn endpoint_records(rec: &ContainerRecord, sb: &Sandbox) -> Vec<(String, String, EndpointRecord)> {
    Engine::endpoint_order(rec)
        .into_iter()
        .filter(|(name, _)| user_network(name))
        .filter_map(|(name, _)| {
            let ep = sb.endpoints.get(&name)?;
            Some((
                ep.network_id.clone(),
                name,
                EndpointRecord {
                    container_id: rec.id.clone(),
                    dns_names: endpoint_dns_names(rec, &ep.aliases),
                    ipv4: Some(ep.ip),
                    ipv6: ep.ip6,
                },
            ))
        })
        .collect()
}

/// Docker's `DNSNames` of a container's endpoint with these aliases.
pub(crate) fn endpoint_dns_names(rec: &ContainerRecord, aliases: &[String]) -> Vec<String> {
    let hostname = Some(rec.config.hostname.as_str()).filter(|h| !h.is_empty());
    dns::dns_names(&rec.name, aliases, &rec.id, hostname)
}

impl Engine {
    fn host_resolv_text(&self) -> String {
        let p = &self.cfg.net.host_resolv_conf;
        let p = if p.as_os_str().is_empty() {
            Path::new("/etc/resolv.conf")
        } else {
            p.as_path()
        };
        std::fs::read_to_string(p).unwrap_or_default()
    }

    /// The resolv.conf the container gets on its networks now.
    pub(crate) fn container_resolv_plan(&self, rec: &ContainerRecord) -> ResolvPlan {
        let networks: Vec<String> = if is_bridged(&rec.network_mode) {
            Self::endpoint_order(rec)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        } else {
            Vec::new()
        };
        resolv_plan(rec, &networks, self.daemon_dns(), &self.host_resolv_text())
    }

    /// Whether a container on these endpoints has a way out (not only `--internal` networks).
    fn external_access(&self, sb: &Sandbox) -> bool {
        sb.endpoints.is_empty()
            || sb.endpoints.values().any(|ep| {
                self.net
                    .find(&ep.network_id)
                    .map(|n| !n.rec.internal)
                    .unwrap_or(true)
            })
    }

    fn set_records(&self, rec: &ContainerRecord, sb: &Sandbox) {
        let Ok(server) = self.dns.server() else {
            return;
        };
        for (net_id, net_name, r) in endpoint_records(rec, sb) {
            server.records().set_endpoint(&net_id, &net_name, r);
        }
    }

    fn dns_attach(
        &self,
        c: &Container,
        sb: &Sandbox,
        upstreams: Vec<Upstream>,
    ) -> Result<(), ApiError> {
        let server = self.dns.server()?;
        server
            .attach(Attachment {
                container_id: c.id.clone(),
                netns: sb.key.clone().into(),
                upstreams,
                external_access: self.external_access(sb),
            })
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// At start, once the container's namespace and endpoints exist and before its process
    /// runs: writes its resolv.conf, serves it if that names 127.0.0.11, publishes its names.
    pub(crate) fn dns_start(&self, c: &Container) -> Result<(), ApiError> {
        let rec = c.record();
        let Some(sb) = rec.sandbox.clone() else {
            return Ok(());
        };
        let plan = self.container_resolv_plan(&rec);
        berth_image::fsutil::write_replace(&c.dir, "resolv.conf", plan.content().as_bytes(), 0o644)
            .map_err(|e| ApiError::internal(format!("cannot write /etc/resolv.conf: {e}")))?;
        if let ResolvPlan::Embedded { upstreams, .. } = plan {
            self.dns_attach(c, &sb, upstreams)?;
        }
        self.set_records(&rec, &sb);
        Ok(())
    }

    /// At exit (or a failed start): the container's names go, its server sockets close.
    pub(crate) async fn dns_stop(&self, cid: &str) {
        let Ok(server) = self.dns.server() else {
            return;
        };
        server.records().remove_container(cid);
        let server = server.clone();
        let id = cid.to_string();
        let _ = tokio::task::spawn_blocking(move || server.detach(&id)).await;
    }

    /// After connect/disconnect/rename of a running container: its records follow, and a
    /// container that joined its first user-defined network while running is served from now
    /// on (its resolv.conf is rewritten in place, unless the user changed it).
    pub(crate) fn dns_refresh(&self, c: &Container, left_network: Option<&str>) {
        let Ok(server) = self.dns.server() else {
            return;
        };
        let rec = c.record();
        if let Some(net_id) = left_network {
            server.records().remove_endpoint(net_id, &c.id);
        }
        let Some(sb) = rec
            .sandbox
            .clone()
            .filter(|_| rec.state.status.is_running())
        else {
            return;
        };
        self.set_records(&rec, &sb);
        let plan = self.container_resolv_plan(&rec);
        let attached = server.attached().contains(&c.id);
        let path = c.dir.join("resolv.conf");
        let upstreams = match plan {
            ResolvPlan::Embedded { content, upstreams } if !attached => {
                // Only a file that still says what berth wrote at start is replaced.
                let current = std::fs::read_to_string(&path).unwrap_or_default();
                if current != self.resolv_plan_without_user_networks(&rec).content() {
                    return;
                }
                if let Err(e) = std::fs::write(&path, content.as_bytes()) {
                    tracing::warn!(id = %c.id, "cannot rewrite /etc/resolv.conf: {e}");
                    return;
                }
                upstreams
            }
            // Attached already: new upstreams or external access (the sockets stay).
            ResolvPlan::Embedded { upstreams, .. } => upstreams,
            ResolvPlan::Direct(_) if attached => self.forward_upstreams(&rec),
            ResolvPlan::Direct(_) => return,
        };
        if let Err(e) = self.dns_attach(c, &sb, upstreams) {
            tracing::warn!(id = %c.id, "{}", e.message);
        }
    }

    /// Where the server forwards the container's other names: its `--dns` servers (or the
    /// daemon's), else the host's.
    fn forward_upstreams(&self, rec: &ContainerRecord) -> Vec<Upstream> {
        let o = dns_overrides(rec, self.daemon_dns());
        match embedded(&self.host_resolv_text(), &o) {
            ResolvPlan::Embedded { upstreams, .. } => upstreams,
            ResolvPlan::Direct(_) => Vec::new(),
        }
    }

    /// What the container's resolv.conf was before it joined a user-defined network.
    fn resolv_plan_without_user_networks(&self, rec: &ContainerRecord) -> ResolvPlan {
        let nets: Vec<String> = Self::endpoint_order(rec)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !user_network(n))
            .collect();
        resolv_plan(rec, &nets, self.daemon_dns(), &self.host_resolv_text())
    }

    /// After a daemon restart: the running containers' names, and their server sockets (the
    /// old daemon's closed with it) for those whose resolv.conf names 127.0.0.11.
    pub(crate) fn dns_restore(&self, c: &Container) {
        let rec = c.record();
        let Some(sb) = rec.sandbox.clone() else {
            return;
        };
        self.set_records(&rec, &sb);
        let text = std::fs::read_to_string(c.dir.join("resolv.conf")).unwrap_or_default();
        if !names_embedded(&text) {
            return;
        }
        let upstreams = self.forward_upstreams(&rec);
        if let Err(e) = self.dns_attach(c, &sb, upstreams) {
            tracing::error!(id = %c.id, "re-attaching to the embedded DNS server: {}", e.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: &str) -> ContainerRecord {
        let mut v: serde_json::Value = serde_json::from_str(
            r#"{"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "name":"web","created":"2026-12-02T00:00:00Z","path":"sh","args":[],
                "config":{"Hostname":"0123456789ab"},"host_config":{},
                "image_id":"sha256:00","image_name":"busybox","restart_count":0,
                "runtime":"runc","network_mode":"default","log_path":"","hostname_path":"",
                "hosts_path":"","resolv_conf_path":"","mounts":[]}"#,
        )
        .unwrap();
        v["state"] = serde_json::to_value(crate::container::StateRecord::default()).unwrap();
        let patch: serde_json::Value = serde_json::from_str(json).unwrap();
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    const NONE: (&[String], &[String], &[String]) = (&[], &[], &[]);

    #[test]
    fn user_networks_use_the_embedded_server() {
        let r = rec(r#"{"network_mode":"n1"}"#);
        let host = "nameserver 10.0.0.2\nsearch example.org\n";
        let p = resolv_plan(&r, &["n1".into()], NONE, host);
        let ResolvPlan::Embedded { content, upstreams } = p else {
            panic!("{p:?}")
        };
        assert!(content.starts_with("nameserver 127.0.0.11\nsearch example.org\noptions ndots:0\n"));
        assert_eq!(upstreams, vec![Upstream::host("10.0.0.2".parse().unwrap())]);
    }

    #[test]
    fn default_bridge_gets_the_host_servers_unless_loopback_only() {
        let r = rec("{}");
        let p = resolv_plan(&r, &["bridge".into()], NONE, "nameserver 10.0.0.2\n");
        assert_eq!(p, ResolvPlan::Direct("nameserver 10.0.0.2\n".into()));
        // Only a loopback stub: the forwarder, asking the stub from the host's namespace.
        let p = resolv_plan(&r, &["bridge".into()], NONE, "nameserver 127.0.0.53\n");
        let ResolvPlan::Embedded { upstreams, .. } = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            upstreams,
            vec![Upstream::host("127.0.0.53".parse().unwrap())]
        );
        // A loopback server next to a reachable one: Docker's rule (drop the loopback one).
        let p = resolv_plan(
            &r,
            &["bridge".into()],
            NONE,
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\n",
        );
        assert_eq!(p, ResolvPlan::Direct("nameserver 10.0.0.2\n".into()));
        // --dns on the default bridge: written as given.
        let r = rec(r#"{"host_config":{"Dns":["10.9.9.9"]}}"#);
        let p = resolv_plan(&r, &["bridge".into()], NONE, "nameserver 127.0.0.53\n");
        assert_eq!(p, ResolvPlan::Direct("nameserver 10.9.9.9\n".into()));
    }

    #[test]
    fn dns_flags_on_user_networks_become_upstreams_and_lines() {
        let r = rec(
            r#"{"network_mode":"n1","host_config":{"Dns":["10.9.9.9"],"DnsSearch":["a.test"],"DnsOptions":["timeout:2"]}}"#,
        );
        let p = resolv_plan(&r, &["n1".into()], NONE, "nameserver 127.0.0.53\n");
        let ResolvPlan::Embedded { content, upstreams } = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            content,
            "nameserver 127.0.0.11\nsearch a.test\noptions timeout:2 ndots:0\n\n# ExtServers: [10.9.9.9]\n"
        );
        assert_eq!(
            upstreams,
            vec![Upstream::container("10.9.9.9".parse().unwrap())]
        );
        // The daemon's dns applies when the container has none.
        let r = rec(r#"{"network_mode":"n1"}"#);
        let daemon = (vec!["10.8.8.8".to_string()], vec![], vec![]);
        let p = resolv_plan(
            &r,
            &["n1".into()],
            (&daemon.0, &daemon.1, &daemon.2),
            "nameserver 10.0.0.2\n",
        );
        let ResolvPlan::Embedded { upstreams, .. } = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            upstreams,
            vec![Upstream::container("10.8.8.8".parse().unwrap())]
        );
    }

    #[test]
    fn no_host_servers_fall_back_like_docker() {
        let r = rec(r#"{"network_mode":"n1"}"#);
        let p = resolv_plan(&r, &["n1".into()], NONE, "");
        let ResolvPlan::Embedded { upstreams, .. } = p else {
            panic!("{p:?}")
        };
        assert_eq!(upstreams, fallback_upstreams());
    }

    #[test]
    fn host_and_none_modes_are_not_served() {
        let r = rec(r#"{"network_mode":"host"}"#);
        let p = resolv_plan(&r, &[], NONE, "nameserver 127.0.0.53\n");
        assert_eq!(p, ResolvPlan::Direct("nameserver 127.0.0.53\n".into()));
        let r = rec(r#"{"network_mode":"none"}"#);
        let p = resolv_plan(&r, &[], NONE, "nameserver 10.0.0.2\n");
        assert_eq!(p, ResolvPlan::Direct("nameserver 10.0.0.2\n".into()));
    }

    #[test]
    fn embedded_is_recognised() {
        assert!(names_embedded("nameserver 127.0.0.11\noptions ndots:0\n"));
        assert!(!names_embedded("nameserver 10.0.0.2\n"));
        assert!(!names_embedded(
            "nameserver 127.0.0.11\nnameserver 10.0.0.2\n"
        ));
    }

    #[test]
    fn dns_names_like_docker() {
        let r = rec(r#"{"name":"db"}"#);
        assert_eq!(
            endpoint_dns_names(&r, &["database".into(), "db".into()]),
            vec!["db", "database", "0123456789ab"]
        );
        let r = rec(r#"{"name":"db","config":{"Hostname":"dbhost"}}"#);
        assert_eq!(
            endpoint_dns_names(&r, &[]),
            vec!["db", "0123456789ab", "dbhost"]
        );
    }
}
