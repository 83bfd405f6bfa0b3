//! 200 containers started and removed in a loop leave no veth, namespace, address, firewall
//! element or conntrack entry behind.

mod common;

use std::time::Duration;

use common::{wait_for, Daemon};

/// Conntrack entries from container addresses under `prefix` (the gateway's own, `.1`, such as
/// the bridge's IGMP reports, are the host's).
fn conntrack_entries(prefix: &str) -> Vec<String> {
    let gw = format!("{prefix}1 ");
    let o = std::process::Command::new("conntrack")
        .args(["-L"])
        .output()
        .expect("conntrack (Debian package conntrack)");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(prefix) && !l.contains(&gw))
        .map(str::to_string)
        .collect()
}

#[test]
fn two_hundred_containers_leave_nothing_behind() {
    let d = Daemon::start();
    d.load_busybox();
    // A /29 has 5 addresses for containers: a single leaked lease would show in 100 runs.
    let small = d.block.subnet(1).replace(".0/24", ".0/29");
    d.docker(["network", "create", "--subnet", &small, "tiny"])
        .ok();
    let gw = d.block.gateway();
    let tiny_gw = small.replace(".0/29", ".1");
    std::thread::scope(|s| {
        for t in 0..4 {
            let d = &d;
            let (gw, tiny_gw) = (gw.clone(), tiny_gw.clone());
            s.spawn(move || {
                for i in 0..50 {
                    // Every container makes a connection-tracked flow; some publish a port.
                    let (net, target) = if i % 2 == 0 {
                        ("bridge", gw.as_str())
                    } else {
                        ("tiny", tiny_gw.as_str())
                    };
                    let mut args = vec!["run", "--rm", "--network", net];
                    if i % 5 == t % 5 {
                        args.extend(["-p", "127.0.0.1::80", "-p", "9999/udp"]);
                    }
                    let ping = format!("ping -c 1 -W 1 {target} >/dev/null; true");
                    args.extend(["busybox", "sh", "-c", &ping]);
                    let o = d.docker(&args);
                    assert_eq!(o.status, 0, "run {t}/{i}: {o:?}");
                }
            });
        }
    });
    let a = format!("10.{}.{}.", d.block.a, d.block.b);
    let b = format!("10.{}.{}.", d.block.a, d.block.b + 1);
    let clean = wait_for(Duration::from_secs(20), || {
        let veths = std::fs::read_dir(format!("/sys/class/net/{}/brif", d.bridge))
            .map(|r| r.count())
            .unwrap_or(0);
        let ns = std::fs::read_dir(d.exec_root.join("netns"))
            .map(|r| r.count())
            .unwrap_or(0);
        let ct = conntrack_entries(&format!("src={a}"));
        let ct2 = conntrack_entries(&format!("src={b}"));
        (veths == 0 && ns == 0 && ct.is_empty() && ct2.is_empty()).then_some(())
    });
    assert!(
        clean.is_some(),
        "left behind: veths {:?}, namespaces {:?}, conntrack {:?} {:?}",
        std::fs::read_dir(format!("/sys/class/net/{}/brif", d.bridge))
            .map(|r| r.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
        std::fs::read_dir(d.exec_root.join("netns")).map(|r| r.count()),
        conntrack_entries(&format!("src={a}")),
        conntrack_entries(&format!("src={b}")),
    );
    // No firewall element, and every address of the small network can still be taken.
    for map in ["pub_any", "pub_ip"] {
        let o = std::process::Command::new("nft")
            .args(["list", "map", "ip", &d.firewall_table(), map])
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("elements"),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    for i in 0..5 {
        d.docker([
            "run",
            "-d",
            "--name",
            &format!("hold{i}"),
            "--network",
            "tiny",
            "busybox",
            "sleep",
            "60",
        ])
        .ok();
    }
    let o = d.docker(["run", "--rm", "--network", "tiny", "busybox", "true"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr.contains("no available IPv4 addresses"),
        "{}",
        o.stderr
    );
    assert_eq!(
        d.docker(["network", "inspect", "-f", "{{len .Containers}}", "bridge"])
            .ok(),
        "0"
    );
}
