//! The files Docker bind-mounts into every container: /etc/hostname, /etc/hosts and
//! /etc/resolv.conf, generated per container under its directory.

use std::net::IpAddr;

/// /etc/hostname content.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// /etc/hosts for a container with its own network namespace.
/// `own_ips` are the container's addresses (none until the bridge network exists).
pub fn hosts_file(
    hostname: &str,
    domainname: &str,
    own_ips: &[IpAddr],
    extra: &[(String, String)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (host, ip) in extra {
        s.push_str(&format!("{ip}\t{host}\n"));
    }
    let names = if domainname.is_empty() {
        hostname.to_string()
    } else {
        format!("{hostname}.{domainname} {hostname}")
    };
    for ip in own_ips {
        s.push_str(&format!("{ip}\t{names}\n"));
    }
    s
}

/// /etc/hosts for `--network host`: the host's file plus `--add-host` entries.
pub fn host_mode_hosts_file(host_hosts: &str, extra: &[(String, String)]) -> String {
    let mut s = host_hosts.to_string();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    for (host, ip) in extra {
        s.push_str(&format!("{ip}\t{host}\n"));
    }
    s
}

/// DNS settings from `--dns`, `--dns-search`, `--dns-option`.
#[derive(Debug, Default, Clone)]
pub struct DnsOverrides {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// /etc/resolv.conf derived from the host's, as Docker does: for a container with its own
/// network namespace, localhost nameservers are unreachable and dropped (falling back to
/// Google's public servers if none is left); `--dns*` flags replace the matching lines.
pub fn resolv_conf(host_resolv: &str, own_netns: bool, o: &DnsOverrides) -> String {
    let mut nameservers = Vec::new();
    let mut search: Option<String> = None;
    let mut options: Option<String> = None;
    let mut other = Vec::new();
    for line in host_resolv.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    let local = ns
                        .parse::<IpAddr>()
                        .map(|ip| ip.is_loopback())
                        .unwrap_or(false);
                    if !(own_netns && local) {
                        nameservers.push(ns.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = Some(words.collect::<Vec<_>>().join(" ")),
            Some("options") => options = Some(words.collect::<Vec<_>>().join(" ")),
            _ => {
                if !t.is_empty() && !t.starts_with('#') && !t.starts_with(';') {
                    other.push(t.to_string());
                }
            }
        }
    }
    if !o.servers.is_empty() {
        nameservers = o.servers.clone();
    } else if own_netns && nameservers.is_empty() {
        nameservers = vec!["8.8.8.8".to_string(), "8.8.4.4".to_string()];
    }
    if !o.search.is_empty() {
        // Docker: `--dns-search .` means "no search domains".
        let s: Vec<&str> = o
            .search
            .iter()
            .map(String::as_str)
            .filter(|d| *d != ".")
            .collect();
        search = if s.is_empty() {
            None
        } else {
            Some(s.join(" "))
        };
    }
    if !o.options.is_empty() {
        options = Some(o.options.join(" "));
    }
    let mut s = String::new();
    for ns in &nameservers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if let Some(d) = search.filter(|d| !d.is_empty()) {
        s.push_str(&format!("search {d}\n"));
    }
    if let Some(opt) = options.filter(|d| !d.is_empty()) {
        s.push_str(&format!("options {opt}\n"));
    }
    for l in other {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// Parses `--add-host host:ip` (also `host=ip`); Docker's message for a bad entry.
pub fn parse_extra_host(
    entry: &str,
    host_gateway: Option<IpAddr>,
) -> Result<(String, String), String> {
    let (host, ip) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(|| format!("bad format for add-host: \"{entry}\""))?;
    if host.is_empty() {
        return Err(format!("bad format for add-host: \"{entry}\""));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip == "host-gateway" {
        return match host_gateway {
            Some(gw) => Ok((host.to_string(), gw.to_string())),
            None => Err(
                "unable to derive the IP value for host-gateway: berth has no bridge network yet"
                    .to_string(),
            ),
        };
    }
    ip.parse::<IpAddr>()
        .map_err(|_| format!("invalid IP address in add-host: \"{ip}\""))?;
    Ok((host.to_string(), ip.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_like_docker() {
        let h = hosts_file("abc", "", &[], &[("db".into(), "10.0.0.2".into())]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(h.ends_with("10.0.0.2\tdb\n"));
        let h = hosts_file("abc", "example.org", &["172.17.0.2".parse().unwrap()], &[]);
        assert!(h.ends_with("172.17.0.2\tabc.example.org abc\n"));
        assert_eq!(
            host_mode_hosts_file("127.0.0.1 localhost", &[("x".into(), "1.2.3.4".into())]),
            "127.0.0.1 localhost\n1.2.3.4\tx\n"
        );
    }

    #[test]
    fn resolv_filters_localhost_for_own_netns() {
        let host = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch a.example b.example\noptions ndots:2\n";
        assert_eq!(
            resolv_conf(host, true, &DnsOverrides::default()),
            "nameserver 10.0.0.1\nsearch a.example b.example\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", true, &DnsOverrides::default()),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", false, &DnsOverrides::default()),
            "nameserver 127.0.0.1\n"
        );
        let o = DnsOverrides {
            servers: vec!["1.1.1.1".into()],
            search: vec![".".into()],
            options: vec!["rotate".into()],
        };
        assert_eq!(
            resolv_conf(host, true, &o),
            "nameserver 1.1.1.1\noptions rotate\n"
        );
    }

    #[test]
    fn extra_hosts() {
        assert_eq!(
            parse_extra_host("db:10.0.0.2", None).unwrap(),
            ("db".into(), "10.0.0.2".into())
        );
        assert_eq!(
            parse_extra_host("db=::1", None).unwrap(),
            ("db".into(), "::1".into())
        );
        assert_eq!(
            parse_extra_host("v6:[::1]", None).unwrap(),
            ("v6".into(), "::1".into())
        );
        assert!(parse_extra_host("nocolon", None).is_err());
        assert!(parse_extra_host("db:notanip", None).is_err());
        assert!(parse_extra_host("gw:host-gateway", None).is_err());
        assert_eq!(
            parse_extra_host("gw:host-gateway", Some("172.17.0.1".parse().unwrap()))
                .unwrap()
                .1,
            "172.17.0.1"
        );
    }
}
