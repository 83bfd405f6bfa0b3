//! The resolv.conf of a container served by the embedded DNS server, made from the host's the
//! way Docker makes it (moby `resolvconf.TransformForIntNS`): the only nameserver is
//! 127.0.0.11, the others become the server's upstreams — the host's reached from the host's
//! namespace, `--dns` ones from the container's — search domains and options are kept (or
//! replaced by `--dns-search`/`--dns-option`), and `ndots:0` is added unless an ndots option
//! is set.

use std::net::IpAddr;

use super::{Upstream, DNS_ADDRESS};

/// The `nameserver` addresses of a resolv.conf, in order (entries that are not IP addresses,
/// and IPv6 addresses with a zone, which name an interface of the host, are skipped).
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// A container's resolv.conf for the embedded server, and where the server forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedResolvConf {
    pub content: String,
    pub upstreams: Vec<Upstream>,
}

/// Makes the resolv.conf of a container served by the embedded DNS server from the host's file
/// and the container's `--dns`, `--dns-search` and `--dns-option` values.
pub fn embedded_resolv_conf(
    host: &str,
    dns: &[String],
    dns_search: &[String],
    dns_options: &[String],
) -> EmbeddedResolvConf {
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    for line in host.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        match words.next() {
            Some("nameserver") => {}
            // The last search/domain line wins, as in glibc.
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {
                if !t.is_empty() && !t.starts_with('#') && !t.starts_with(';') {
                    other.push(t.to_string());
                }
            }
        }
    }
    let upstreams: Vec<Upstream> = if dns.is_empty() {
        nameservers(host).into_iter().map(Upstream::host).collect()
    } else {
        dns.iter()
            .filter_map(|s| s.parse().ok())
            .map(Upstream::container)
            .collect()
    };
    if !dns_search.is_empty() {
        // Docker: `--dns-search .` means no search domains.
        search = dns_search
            .iter()
            .filter(|d| d.as_str() != ".")
            .cloned()
            .collect();
    }
    if !dns_options.is_empty() {
        options = dns_options.to_vec();
    }
    // An ndots option with a value that is not a number is dropped, then ndots:0 is added if
    // none is left (moby `removeInvalidNDots`).
    options.retain(|o| match o.strip_prefix("ndots:") {
        Some(v) => v.parse::<u32>().is_ok(),
        None => o != "ndots",
    });
    if !options.iter().any(|o| o.starts_with("ndots:")) {
        options.push("ndots:0".into());
    }
    let mut content = format!("nameserver {DNS_ADDRESS}\n");
    if !search.is_empty() {
        content.push_str(&format!("search {}\n", search.join(" ")));
    }
    content.push_str(&format!("options {}\n", options.join(" ")));
    for o in &other {
        content.push_str(o);
        content.push('\n');
    }
    // Docker notes where the embedded server forwards to.
    let ext: Vec<String> = upstreams
        .iter()
        .map(|u| {
            if u.from_host {
                format!("host({})", u.addr.ip())
            } else {
                u.addr.ip().to_string()
            }
        })
        .collect();
    content.push_str(&format!("\n# ExtServers: [{}]\n", ext.join(" ")));
    EmbeddedResolvConf { content, upstreams }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_servers_become_host_upstreams() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver ::1\nsearch corp.example\noptions edns0 trust-ad\n";
        let r = embedded_resolv_conf(host, &[], &[], &[]);
        assert_eq!(
            r.content,
            "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 trust-ad ndots:0\n\n# ExtServers: [host(127.0.0.53) host(::1)]\n"
        );
        assert_eq!(
            r.upstreams,
            vec![
                Upstream::host("127.0.0.53".parse().unwrap()),
                Upstream::host("::1".parse().unwrap())
            ]
        );
    }

    #[test]
    fn overrides_replace_and_dns_servers_are_asked_from_the_container() {
        let host = "nameserver 10.0.0.1\nsearch a.example\noptions ndots:3\nsortlist 10.0.0.0/8\n";
        let r = embedded_resolv_conf(
            host,
            &["192.0.2.53".into(), "bogus".into()],
            &[".".into()],
            &["ndots:x".into(), "rotate".into()],
        );
        assert_eq!(
            r.content,
            "nameserver 127.0.0.11\noptions rotate ndots:0\nsortlist 10.0.0.0/8\n\n# ExtServers: [192.0.2.53]\n"
        );
        assert_eq!(
            r.upstreams,
            vec![Upstream::container("192.0.2.53".parse().unwrap())]
        );
        // A valid ndots of the host is kept.
        let r = embedded_resolv_conf(host, &[], &["b.example".into()], &[]);
        assert!(r
            .content
            .starts_with("nameserver 127.0.0.11\nsearch b.example\noptions ndots:3\n"));
    }

    proptest! {
        #[test]
        fn any_text_gives_one_nameserver_and_ndots(host in "\\PC{0,300}") {
            let r = embedded_resolv_conf(&host, &[], &[], &[]);
            prop_assert!(r.content.starts_with("nameserver 127.0.0.11\n"));
            let ns = r.content.lines().filter(|l| l.split_whitespace().next() == Some("nameserver"));
            prop_assert_eq!(ns.count(), 1);
            prop_assert!(r.content.contains("ndots:"));
            prop_assert!(r.upstreams.len() <= host.matches("nameserver").count());
        }
    }
}
