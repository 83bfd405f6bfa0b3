//! Kernel forwarding and NAT in an nftables table of berth's own (one per daemon), driven
//! through the `nft` binary in batches (decision 0004).
//!
//! The table's rules are static per set of networks (masquerade, isolation, the jump to the
//! published-port maps); a published port is one element of a map, so publishing or
//! unpublishing a container's ports is a single `nft` call that adds or deletes elements.
//! Nothing outside the table is touched, and removing berth's rules is deleting the table.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::{Ipv4Net, Ipv6Net};
use tokio::io::AsyncWriteExt;

use crate::ports::Proto;
use crate::{NetError, Result};

/// A bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNet {
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The IPv6 subnet of an `--ipv6` network.
    pub subnet6: Option<Ipv6Net>,
    pub internal: bool,
    pub masquerade: bool,
}

/// One published port: traffic to `host_ip:host_port` (any local address when None) goes to
/// `ctr_ip:ctr_port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwPort {
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub ctr_ip: Ipv4Addr,
    pub ctr_port: u16,
}

/// berth's nftables table.
#[derive(Debug, Clone)]
pub struct Firewall {
    pub table: String,
    nft: PathBuf,
}

/// Quotes an interface name for nft (names are validated by the engine: no quotes inside).
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('"', ""))
}

impl Firewall {
    pub fn new(table: &str) -> Firewall {
        Firewall {
            table: table.to_string(),
            nft: PathBuf::from("nft"),
        }
    }

    /// The whole table: created (or replaced) in one transaction, with every current element,
    /// so connections through published ports keep working while it is rebuilt.
    pub fn render_full(&self, nets: &[FwNet], ports: &[FwPort]) -> String {
        let t = &self.table;
        let mut s = String::new();
        // `table` then `delete table` makes the delete valid whether or not it existed.
        let _ = writeln!(s, "table ip {t}\ndelete table ip {t}\ntable ip {t} {{");
        s.push_str(
            "  map pub_ip { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }\n",
        );
        s.push_str(
            "  map pub_any { type inet_proto . inet_service : ipv4_addr . inet_service; }\n",
        );
        s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump publish\n  }\n");
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump publish\n  }\n");
        s.push_str("  chain publish {\n");
        s.push_str("    meta l4proto { tcp, udp, sctp } dnat ip addr . port to ip daddr . meta l4proto . th dport map @pub_ip\n");
        s.push_str("    meta l4proto { tcp, udp, sctp } dnat ip addr . port to meta l4proto . th dport map @pub_any\n");
        s.push_str("  }\n");
        s.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for n in nets {
            let b = q(&n.bridge);
            // Hairpin: a container reaching a published port of a container on its own bridge
            // (itself included). Masquerading makes the replies come back through the host,
            // where the DNAT is undone. (No iifname: postrouting has no input interface.)
            let _ = writeln!(
                s,
                "    ct status dnat ip saddr {0} ip daddr {0} oifname {b} masquerade",
                n.subnet
            );
            // the host reaching a published port on 127.0.0.1 (route_localnet is on for b)
            let _ = writeln!(s, "    ip saddr 127.0.0.0/8 oifname {b} masquerade");
            if n.masquerade && !n.internal {
                let _ = writeln!(s, "    ip saddr {} oifname != {b} masquerade", n.subnet);
            }
        }
        s.push_str("  }\n");
        render_forward(&mut s, nets);
        s.push_str("}\n");
        // IPv6 (`--ipv6` networks): the same isolation, and masquerading of their subnets.
        // Published ports on IPv6 host addresses go through the userland proxy, so this
        // table has no port maps.
        let _ = writeln!(s, "table ip6 {t}\ndelete table ip6 {t}");
        if nets.iter().any(|n| n.subnet6.is_some()) {
            let _ = writeln!(s, "table ip6 {t} {{");
            s.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
            for n in nets {
                if let (Some(s6), true) = (n.subnet6, n.masquerade && !n.internal) {
                    let _ = writeln!(
                        s,
                        "    ip6 saddr {s6} oifname != {} masquerade",
                        q(&n.bridge)
                    );
                }
            }
            s.push_str("  }\n");
            render_forward(&mut s, nets);
            s.push_str("}\n");
        }
        s.push_str(&self.render_elements("add", ports));
        s
    }

    /// `add element`/`delete element` lines for `ports`.
    pub fn render_elements(&self, op: &str, ports: &[FwPort]) -> String {
        let t = &self.table;
        let mut any = Vec::new();
        let mut ip = Vec::new();
        for p in ports {
            let value = if op == "delete" {
                String::new()
            } else {
                format!(" : {} . {}", p.ctr_ip, p.ctr_port)
            };
            match p.host_ip {
                None => any.push(format!("{} . {}{value}", p.proto.as_str(), p.host_port)),
                Some(h) => ip.push(format!(
                    "{h} . {} . {}{value}",
                    p.proto.as_str(),
                    p.host_port
                )),
            }
        }
        let mut s = String::new();
        if !any.is_empty() {
            let _ = writeln!(s, "{op} element ip {t} pub_any {{ {} }}", any.join(", "));
        }
        if !ip.is_empty() {
            let _ = writeln!(s, "{op} element ip {t} pub_ip {{ {} }}", ip.join(", "));
        }
        s
    }

    /// Rebuilds the table with these networks and ports.
    pub async fn sync(&self, nets: &[FwNet], ports: &[FwPort]) -> Result<()> {
        self.run(&self.render_full(nets, ports)).await
    }

    pub async fn add_ports(&self, ports: &[FwPort]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        self.run(&self.render_elements("add", ports)).await
    }

    pub async fn delete_ports(&self, ports: &[FwPort]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        self.run(&self.render_elements("delete", ports)).await
    }

    /// Removes berth's table (nothing when it is not there).
    pub async fn remove_table(&self) -> Result<()> {
        let t = &self.table;
        self.run(&format!(
            "table ip {t}\ndelete table ip {t}\ntable ip6 {t}\ndelete table ip6 {t}\n"
        ))
        .await
    }

    /// Runs one nft batch (`nft -f -`): all of it applies, or none.
    async fn run(&self, script: &str) -> Result<()> {
        let mut child = tokio::process::Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                NetError::Firewall(format!(
                    "cannot run {}: {e} (install nftables, or set \"iptables\": false in daemon.json to run without published ports and NAT)",
                    self.nft.display()
                ))
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .await
                .map_err(|e| NetError::Firewall(format!("writing to nft: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| NetError::Firewall(format!("waiting for nft: {e}")))?;
        if !out.status.success() {
            return Err(NetError::Firewall(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(())
    }
}

/// Deletes the connection-tracking entries of a released container address (as source, as
/// destination, and as the reply source of connections DNAT'd to it), so a reused address or
/// port never inherits a dead container's flows (a UDP client would otherwise keep being sent
/// to the old address). Runs `conntrack` (Debian package conntrack) three times; "nothing
/// deleted" is not an error. Meant to run off the caller's path.
pub async fn flush_conntrack(ip: Ipv4Addr) {
    let ip = ip.to_string();
    for sel in ["--orig-src", "--orig-dst", "--reply-src"] {
        match tokio::process::Command::new("conntrack")
            .args(["-D", sel, &ip])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("conntrack -D {sel} {ip}: {e}");
                return;
            }
        }
    }
}

/// The forward chain: connections to published ports pass, `--internal` networks stay on
/// their bridge, and different networks do not reach each other.
fn render_forward(s: &mut String, nets: &[FwNet]) {
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    s.push_str("    ct status dnat accept\n");
    for n in nets {
        let b = q(&n.bridge);
        if n.internal {
            let _ = writeln!(s, "    iifname {b} oifname != {b} drop");
            let _ = writeln!(s, "    oifname {b} iifname != {b} drop");
        }
        let others: Vec<String> = nets
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| q(&o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "    iifname {b} oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
    s.push_str("  }\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_table() {
        let fw = Firewall::new("berth-t");
        let nets = vec![
            FwNet {
                bridge: "br-a".into(),
                subnet: "10.1.0.0/24".parse().unwrap(),
                subnet6: Some("fd00:1::/64".parse().unwrap()),
                internal: false,
                masquerade: true,
            },
            FwNet {
                bridge: "br-b".into(),
                subnet: "10.2.0.0/24".parse().unwrap(),
                subnet6: None,
                internal: true,
                masquerade: true,
            },
        ];
        let ports = vec![
            FwPort {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 8080,
                ctr_ip: "10.1.0.2".parse().unwrap(),
                ctr_port: 80,
            },
            FwPort {
                proto: Proto::Udp,
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 53,
                ctr_ip: "10.1.0.3".parse().unwrap(),
                ctr_port: 5353,
            },
        ];
        let s = fw.render_full(&nets, &ports);
        assert!(s.starts_with("table ip berth-t\ndelete table ip berth-t\ntable ip berth-t {\n"));
        assert!(s.contains("    ip saddr 10.1.0.0/24 oifname != \"br-a\" masquerade\n"));
        assert!(!s.contains("ip saddr 10.2.0.0/24 oifname"));
        assert!(s.contains(
            "    ct status dnat ip saddr 10.1.0.0/24 ip daddr 10.1.0.0/24 oifname \"br-a\" masquerade\n"
        ));
        assert!(s.contains("    iifname \"br-b\" oifname != \"br-b\" drop\n"));
        assert!(s.contains("    iifname \"br-a\" oifname { \"br-b\" } drop\n"));
        assert!(s.contains("table ip6 berth-t {\n"));
        assert!(s.contains("    ip6 saddr fd00:1::/64 oifname != \"br-a\" masquerade\n"));
        assert_eq!(
            s.matches("    iifname \"br-a\" oifname { \"br-b\" } drop\n")
                .count(),
            2
        );
        let v4only = fw.render_full(&nets[1..], &[]);
        assert!(v4only.contains("table ip6 berth-t\ndelete table ip6 berth-t\n"));
        assert!(!v4only.contains("table ip6 berth-t {"));
        assert!(s.contains("add element ip berth-t pub_any { tcp . 8080 : 10.1.0.2 . 80 }\n"));
        assert!(s.contains(
            "add element ip berth-t pub_ip { 127.0.0.1 . udp . 53 : 10.1.0.3 . 5353 }\n"
        ));
        assert_eq!(
            fw.render_elements("delete", &ports),
            "delete element ip berth-t pub_any { tcp . 8080 }\ndelete element ip berth-t pub_ip { 127.0.0.1 . udp . 53 }\n"
        );
        assert_eq!(fw.render_elements("add", &[]), "");
    }
}
