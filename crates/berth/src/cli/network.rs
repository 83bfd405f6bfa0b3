//! `network create|ls|inspect|rm|prune|connect|disconnect`, as Docker's CLI does them.

use std::collections::BTreeMap;

use berth_api::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, NetworkResource,
};
use berth_api::Filters;
use gotmpl::Value;

use super::container::{format_flag, parse_filters};
use super::flags::{Flag, Matches, NArgs, Spec};
use super::format::{self, Listing, Row};
use super::{CliError, CliResult, Ctx, Verb};

const NETWORKS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
const NETWORK_HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("IPv4", "IPV4"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

pub fn spec(verb: Verb, path: &str) -> Spec {
    match verb {
        Verb::NetworkCreate => super::spec(
            path,
            "[OPTIONS] NETWORK",
            NArgs::Exact(1),
            vec![
                Flag::bool("attachable", "Enable manual container attachment"),
                Flag::list(
                    "aux-address",
                    "map",
                    "Auxiliary IPv4 or IPv6 addresses used by Network driver",
                ),
                Flag::value(
                    "config-from",
                    "string",
                    "The network from which to copy the configuration",
                ),
                Flag::bool("config-only", "Create a configuration only network"),
                Flag::value("driver", "string", "Driver to manage the Network")
                    .short('d')
                    .default("\"bridge\""),
                Flag::list(
                    "gateway",
                    "strings",
                    "IPv4 or IPv6 Gateway for the master subnet",
                ),
                Flag::bool("ingress", "Create swarm routing-mesh network"),
                Flag::bool("internal", "Restrict external access to the network"),
                Flag::list(
                    "ip-range",
                    "strings",
                    "Allocate container ip from a sub-range",
                ),
                Flag::value("ipam-driver", "string", "IP Address Management Driver")
                    .default("\"default\""),
                Flag::list("ipam-opt", "map", "Set IPAM driver specific options"),
                Flag::bool("ipv4", "Enable or disable IPv4 address assignment").default("true"),
                Flag::bool("ipv6", "Enable or disable IPv6 address assignment"),
                Flag::list("label", "list", "Set metadata on a network"),
                Flag::list("opt", "map", "Set driver specific options").short('o'),
                Flag::value("scope", "string", "Control the network's scope"),
                Flag::list(
                    "subnet",
                    "strings",
                    "Subnet in CIDR format that represents a network segment",
                ),
            ],
        ),
        Verb::NetworkLs => super::spec(
            path,
            "[OPTIONS]",
            NArgs::Exact(0),
            vec![
                Flag::list(
                    "filter",
                    "filter",
                    "Provide filter values (e.g. \"driver=bridge\")",
                )
                .short('f'),
                format_flag(),
                Flag::bool("no-trunc", "Do not truncate the output"),
                Flag::bool("quiet", "Only display network IDs").short('q'),
            ],
        ),
        Verb::NetworkInspect => super::spec(
            path,
            "[OPTIONS] NETWORK [NETWORK...]",
            NArgs::Min(1),
            vec![
                format_flag().short('f'),
                Flag::bool("verbose", "Verbose output for diagnostics").short('v'),
            ],
        ),
        Verb::NetworkRm => super::spec(
            path,
            "NETWORK [NETWORK...]",
            NArgs::Min(1),
            vec![Flag::bool("force", "Do not error if the network does not exist").short('f')],
        ),
        Verb::NetworkPrune => super::spec(
            path,
            "[OPTIONS]",
            NArgs::Exact(0),
            vec![
                Flag::list(
                    "filter",
                    "filter",
                    "Provide filter values (e.g. \"until=<timestamp>\")",
                ),
                Flag::bool("force", "Do not prompt for confirmation").short('f'),
            ],
        ),
        Verb::NetworkConnect => super::spec(
            path,
            "[OPTIONS] NETWORK CONTAINER",
            NArgs::Exact(2),
            vec![
                Flag::list(
                    "alias",
                    "strings",
                    "Add network-scoped alias for the container",
                ),
                Flag::list("driver-opt", "strings", "driver options for the network"),
                Flag::value("ip", "string", "IPv4 address (e.g., \"172.30.100.104\")"),
                Flag::value("ip6", "string", "IPv6 address (e.g., \"2001:db8::33\")"),
                Flag::list("link", "list", "Add link to another container"),
                Flag::list(
                    "link-local-ip",
                    "strings",
                    "Add a link-local address for the container",
                ),
            ],
        ),
        _ => super::spec(
            path,
            "[OPTIONS] NETWORK CONTAINER",
            NArgs::Exact(2),
            vec![
                Flag::bool("force", "Force the container to disconnect from a network").short('f'),
            ],
        ),
    }
}

pub async fn run(ctx: &Ctx, verb: Verb, m: Matches) -> CliResult<()> {
    match verb {
        Verb::NetworkCreate => create(ctx, m).await,
        Verb::NetworkLs => ls(ctx, m).await,
        Verb::NetworkInspect => super::inspect::run(ctx, verb, m).await,
        Verb::NetworkRm => rm(ctx, m).await,
        Verb::NetworkPrune => prune(ctx, m).await,
        Verb::NetworkConnect => connect(ctx, m).await,
        _ => disconnect(ctx, m).await,
    }
}

/// `key=value` options (`-o`, `--ipam-opt`, `--aux-address`).
fn map_opt(values: &[String], flag: &str) -> CliResult<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((k, val)) => {
                m.insert(k.to_string(), val.to_string());
            }
            None => {
                return Err(CliError::msg(format!(
                    "invalid argument {v:?} for \"--{flag}\" flag: bad format for {flag}: {v} (expected key=value)"
                )))
            }
        }
    }
    Ok(m)
}

/// Docker CLI's `consolidateIpam`: each gateway and range must belong to one subnet.
fn ipam_configs(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &BTreeMap<String, String>,
) -> CliResult<Vec<IpamConfig>> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err(CliError::msg(
            "every ip-range or gateway must have a corresponding subnet",
        ));
    }
    let parse = |s: &str| -> Option<ipnet::IpNet> { s.parse().ok() };
    let mut out: Vec<IpamConfig> = Vec::new();
    for s in subnets {
        if parse(s).is_none() {
            return Err(CliError::msg(format!("invalid CIDR address: {s}")));
        }
        out.push(IpamConfig {
            subnet: s.clone(),
            ..Default::default()
        });
    }
    for r in ranges {
        let rn = parse(r).ok_or_else(|| CliError::msg(format!("invalid CIDR address: {r}")))?;
        let Some(c) = out.iter_mut().find(|c| {
            parse(&c.subnet)
                .is_some_and(|s| s.contains(&rn.network()) && s.prefix_len() <= rn.prefix_len())
        }) else {
            return Err(CliError::msg(format!("no matching subnet for range {r}")));
        };
        if !c.ip_range.is_empty() {
            return Err(CliError::msg(format!(
                "cannot configure multiple ranges ({r}, {}) on the same subnet ({})",
                c.ip_range, c.subnet
            )));
        }
        c.ip_range = r.clone();
    }
    for g in gateways {
        let ip: std::net::IpAddr = g
            .parse()
            .map_err(|_| CliError::msg(format!("invalid IP address: {g}")))?;
        let Some(c) = out
            .iter_mut()
            .find(|c| parse(&c.subnet).is_some_and(|s| s.contains(&ip)))
        else {
            return Err(CliError::msg(format!("no matching subnet for gateway {g}")));
        };
        if !c.gateway.is_empty() {
            return Err(CliError::msg(format!(
                "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                c.gateway, c.subnet
            )));
        }
        c.gateway = g.clone();
    }
    for (k, a) in aux {
        let ip: std::net::IpAddr = a
            .parse()
            .map_err(|_| CliError::msg(format!("invalid IP address: {a}")))?;
        let Some(c) = out
            .iter_mut()
            .find(|c| parse(&c.subnet).is_some_and(|s| s.contains(&ip)))
        else {
            return Err(CliError::msg(format!(
                "no matching subnet for aux-address {a}"
            )));
        };
        c.auxiliary_addresses
            .get_or_insert_with(BTreeMap::new)
            .insert(k.clone(), a.clone());
    }
    Ok(out)
}

async fn create(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let name = m.args[0].clone();
    let aux = map_opt(&m.list("aux-address"), "aux-address")?;
    let config = ipam_configs(
        &m.list("subnet"),
        &m.list("ip-range"),
        &m.list("gateway"),
        &aux,
    )?;
    let mut labels = BTreeMap::new();
    for l in m.list("label") {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let body = NetworkCreateRequest {
        name,
        check_duplicate: true,
        driver: m.string("driver").unwrap_or_else(|| "bridge".into()),
        scope: m.string("scope").unwrap_or_default(),
        enable_ipv6: m.flag("ipv6"),
        enable_ipv4: None,
        ipam: Some(Ipam {
            driver: m.string("ipam-driver").unwrap_or_else(|| "default".into()),
            options: Some(map_opt(&m.list("ipam-opt"), "ipam-opt")?),
            config: Some(config),
        }),
        internal: m.flag("internal"),
        attachable: m.flag("attachable"),
        ingress: m.flag("ingress"),
        config_only: m.flag("config-only"),
        config_from: m
            .string("config-from")
            .filter(|s| !s.is_empty())
            .map(|network| berth_api::models::ConfigReference { network }),
        options: Some(map_opt(&m.list("opt"), "opt")?),
        labels: Some(labels),
    };
    if !m.flag_or("ipv4", true) {
        return Err(CliError::msg(
            "berth: --ipv4=false is not implemented (berth's networks always have IPv4)",
        ));
    }
    let r = ctx.client()?.network_create(&body).await?;
    super::print_out(&format!("{}\n", r.id))
}

/// Natural order (`sortorder.NaturalLess`): digit runs compare as numbers.
fn natural_less(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let mut n1 = String::new();
                while let Some(c) = x.peek().copied().filter(char::is_ascii_digit) {
                    n1.push(c);
                    x.next();
                }
                let mut n2 = String::new();
                while let Some(c) = y.peek().copied().filter(char::is_ascii_digit) {
                    n2.push(c);
                    y.next();
                }
                let t1 = n1.trim_start_matches('0');
                let t2 = n2.trim_start_matches('0');
                let o = t1.len().cmp(&t2.len()).then(t1.cmp(t2));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(&d);
                }
                x.next();
                y.next();
            }
        }
    }
}

/// Go's `time.Time.String()` of an RFC 3339 timestamp, in UTC.
fn go_time(rfc: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc) {
        Ok(t) => {
            let t = t.with_timezone(&chrono::Utc);
            let nanos = t.timestamp_subsec_nanos();
            let frac = if nanos == 0 {
                String::new()
            } else {
                format!(".{:09}", nanos).trim_end_matches('0').to_string()
            };
            format!("{}{frac} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S"))
        }
        Err(_) => rfc.to_string(),
    }
}

fn network_row(n: &NetworkResource, trunc: bool) -> Row {
    let id = if trunc && n.id.len() > 12 {
        n.id[..12].to_string()
    } else {
        n.id.clone()
    };
    let labels = n.labels.clone().unwrap_or_default();
    let fields: Vec<(&str, Value)> = vec![
        ("ID", id.into()),
        ("Name", n.name.clone().into()),
        ("Driver", n.driver.clone().into()),
        ("Scope", n.scope.clone().into()),
        ("IPv6", n.enable_ipv6.to_string().into()),
        // The Docker CLI reads `EnableIPv4` (API 1.47); berth's API has no such field, so the
        // Docker CLI shows "false" here and so does berth's.
        ("IPv4", "false".to_string().into()),
        ("Internal", n.internal.to_string().into()),
        (
            "Labels",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
                .into(),
        ),
        ("CreatedAt", go_time(&n.created).into()),
    ];
    let mut row = Row::new(format::template::string_map(fields));
    row.labels = labels;
    row
}

async fn ls(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let filters = parse_filters(&m.list("filter"));
    let mut nets = ctx.client()?.network_list(&filters).await?;
    nets.sort_by(|a, b| natural_less(&a.name, &b.name));
    let trunc = !m.flag("no-trunc");
    let rows: Vec<Row> = nets.iter().map(|n| network_row(n, trunc)).collect();
    let mut fmt = m.string("format").unwrap_or_default();
    if m.flag("quiet") {
        fmt = "{{.ID}}".to_string();
    }
    let out = format::render(
        &fmt,
        &Listing {
            default_table: NETWORKS_TABLE,
            headers: NETWORK_HEADERS,
        },
        &rows,
    )?;
    super::print_out(&out)
}

async fn rm(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let mut failed = false;
    for name in &m.args {
        match client.network_remove(name).await {
            Ok(()) => super::print_out(&format!("{name}\n"))?,
            Err(e) if m.flag("force") && e.is_not_found() => {}
            Err(e) => {
                super::eprintln_err(&e.to_string());
                failed = true;
            }
        }
    }
    if failed {
        // The Docker CLI ends a partly failed `network rm` with this line.
        return Err(CliError::new(1, "exit status 1".to_string()));
    }
    Ok(())
}

async fn prune(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if !m.flag("force")
        && !super::ops::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(());
    }
    let (_, output) = run_prune(ctx, parse_filters(&m.list("filter"))).await?;
    if output.is_empty() {
        return Ok(());
    }
    super::print_out(&format!("{output}\n"))
}

/// docker-cli's network pruner: its `Deleted Networks:` block (networks free no space).
pub(crate) async fn run_prune(ctx: &Ctx, filters: Filters) -> CliResult<(u64, String)> {
    let report = ctx.client()?.network_prune(&filters).await?;
    let mut out = String::new();
    if let Some(names) = report.networks_deleted.filter(|v| !v.is_empty()) {
        out.push_str("Deleted Networks:\n");
        for n in names {
            out.push_str(&n);
            out.push('\n');
        }
    }
    Ok((0, out))
}

async fn connect(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let (net, container) = (m.args[0].clone(), m.args[1].clone());
    if !m.list("link").is_empty() {
        return Err(CliError::msg(
            "berth: --link (legacy container links) is not supported; containers on a user-defined network resolve each other by name",
        ));
    }
    let ip = m.string("ip").unwrap_or_default();
    let ip6 = m.string("ip6").unwrap_or_default();
    let link_local = m.list("link-local-ip");
    let ipam =
        (!ip.is_empty() || !ip6.is_empty() || !link_local.is_empty()).then(|| EndpointIpamConfig {
            ipv4_address: ip,
            ipv6_address: ip6,
            link_local_ips: (!link_local.is_empty()).then_some(link_local),
        });
    let driver_opts = map_opt(&m.list("driver-opt"), "driver-opt")?;
    let aliases = m.list("alias");
    let body = NetworkConnectRequest {
        container,
        endpoint_config: Some(EndpointSettings {
            ipam_config: ipam,
            aliases: (!aliases.is_empty()).then_some(aliases),
            driver_opts: (!driver_opts.is_empty()).then_some(driver_opts),
            ..Default::default()
        }),
    };
    ctx.client()?.network_connect(&net, &body).await?;
    Ok(())
}

async fn disconnect(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let body = NetworkDisconnectRequest {
        container: m.args[1].clone(),
        force: m.flag("force"),
    };
    ctx.client()?.network_disconnect(&m.args[0], &body).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_like_docker_cli() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = ipam_configs(
            &v(&["10.1.0.0/16"]),
            &v(&["10.1.2.0/24"]),
            &v(&["10.1.0.1"]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c[0].ip_range, "10.1.2.0/24");
        assert_eq!(c[0].gateway, "10.1.0.1");
        assert_eq!(
            ipam_configs(
                &v(&["10.1.0.0/16"]),
                &[],
                &v(&["10.2.0.1"]),
                &BTreeMap::new()
            )
            .unwrap_err()
            .message,
            "no matching subnet for gateway 10.2.0.1"
        );
        assert!(ipam_configs(&[], &[], &v(&["10.2.0.1"]), &BTreeMap::new()).is_err());
        assert!(ipam_configs(&v(&["bad"]), &[], &[], &BTreeMap::new()).is_err());
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["n10", "n2", "bridge", "n1", "host"];
        v.sort_by(|a, b| natural_less(a, b));
        assert_eq!(v, vec!["bridge", "host", "n1", "n2", "n10"]);
        assert_eq!(
            go_time("2026-12-02T09:12:24.123400000Z"),
            "2026-12-02 09:12:24.1234 +0000 UTC"
        );
    }
}
