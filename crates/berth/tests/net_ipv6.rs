//! IPv6 through the Docker CLI: `--ipv6` networks (addresses, gateway, inspect, /etc/hosts,
//! AAAA answers of the embedded DNS, `--ip6`), IPv6 on the default bridge from daemon.json,
//! and ports published on IPv6 host addresses (`-p [::1]:PORT:80`). Every test uses unique
//! local prefixes of its own (`fd42:<block>:…`), traffic stays on the host.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{free_port, wait_for, Daemon};

/// The test's own /64 number `i`.
fn prefix6(d: &Daemon, i: u8) -> String {
    format!("fd42:{:02x}{:02x}:{i}::", d.block.a, d.block.b)
}

fn http_get(addr: &str) -> Option<String> {
    let a: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn inspect(d: &Daemon, c: &str, fmt: &str) -> String {
    d.docker(["inspect", "-f", fmt, c]).ok()
}

#[test]
fn ipv6_networks_end_to_end() {
    let d = Daemon::start();
    d.load_busybox();
    let p = prefix6(&d, 1);
    let sub6 = format!("{p}/64");
    let gw6 = format!("{p}1");
    d.docker([
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &d.block.subnet(1),
        "--subnet",
        &sub6,
        "n6",
    ])
    .ok();
    assert_eq!(
        d.docker(["network", "inspect", "-f", "{{.EnableIPv6}}", "n6"])
            .ok(),
        "true"
    );
    let cfg = d
        .docker([
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}},{{end}}",
            "n6",
        ])
        .ok();
    assert!(cfg.contains(&format!("{sub6} {gw6},")), "{cfg}");
    for (name, extra) in [("c1", None), ("c2", Some(format!("{p}99")))] {
        let mut args: Vec<String> = ["run", "-d", "--name", name, "--network", "n6"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(ip6) = extra {
            args.push("--ip6".into());
            args.push(ip6);
        }
        args.extend(["busybox", "sleep", "300"].iter().map(|s| s.to_string()));
        d.docker(&args).ok();
    }
    let a1 = inspect(
        &d,
        "c1",
        "{{.NetworkSettings.Networks.n6.GlobalIPv6Address}}",
    );
    assert!(a1.starts_with(&p), "{a1}");
    assert_eq!(
        inspect(
            &d,
            "c1",
            "{{.NetworkSettings.Networks.n6.GlobalIPv6PrefixLen}} {{.NetworkSettings.Networks.n6.IPv6Gateway}}"
        ),
        format!("64 {gw6}")
    );
    let a2 = inspect(
        &d,
        "c2",
        "{{.NetworkSettings.Networks.n6.GlobalIPv6Address}}",
    );
    assert_eq!(a2, format!("{p}99"));
    // Inside: the address, the IPv6 default route, /etc/hosts.
    let addrs = d
        .docker(["exec", "c1", "ip", "-6", "addr", "show", "eth0"])
        .ok();
    assert!(addrs.contains(&format!("{a1}/64")), "{addrs}");
    let routes = d.docker(["exec", "c1", "ip", "-6", "route"]).ok();
    assert!(routes.contains(&format!("default via {gw6}")), "{routes}");
    let hosts = d.docker(["exec", "c1", "cat", "/etc/hosts"]).ok();
    assert!(hosts.contains(&a1), "{hosts}");
    // Containers and the host (the gateway) reach each other over IPv6.
    let ping = d
        .docker(["exec", "c2", "ping", "-c", "1", "-W", "3", &a1])
        .ok();
    assert!(ping.contains("1 packets received"), "{ping}");
    let ping = d
        .docker(["exec", "c1", "ping", "-c", "1", "-W", "3", &gw6])
        .ok();
    assert!(ping.contains("1 packets received"), "{ping}");
    // The embedded DNS answers AAAA with the container's IPv6 address.
    let ns = d
        .docker(["exec", "c2", "nslookup", "-type=AAAA", "c1"])
        .ok();
    assert!(ns.contains(&a1), "{ns}");
    // network inspect lists the IPv6 addresses.
    let cs = d
        .docker([
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}}={{.IPv6Address}} {{end}}",
            "n6",
        ])
        .ok();
    assert!(cs.contains(&format!("c1={a1}/64")), "{cs}");
    assert!(cs.contains(&format!("c2={a2}/64")), "{cs}");

    // --ip6 errors: taken, outside the subnet, on a network without IPv6.
    let o = d.docker([
        "run",
        "--rm",
        "--network",
        "n6",
        "--ip6",
        &a2,
        "busybox",
        "true",
    ]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("Address already in use"), "{}", o.stderr);
    let o = d.docker([
        "run",
        "--rm",
        "--network",
        "n6",
        "--ip6",
        "fd99::5",
        "busybox",
        "true",
    ]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr.contains("does not belong to the network's subnet"),
        "{}",
        o.stderr
    );
    d.docker(["network", "create", "--subnet", &d.block.subnet(2), "n4"])
        .ok();
    let o = d.docker([
        "run",
        "--rm",
        "--network",
        "n4",
        "--ip6",
        &format!("{p}5"),
        "busybox",
        "true",
    ]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("IPv6"), "{}", o.stderr);
    // An address in use is free again after its container stops (and nothing else took it).
    d.docker(["rm", "-f", "c2"]).ok();
    d.docker([
        "run",
        "-d",
        "--name",
        "c3",
        "--network",
        "n6",
        "--ip6",
        &a2,
        "busybox",
        "sleep",
        "300",
    ])
    .ok();

    // Bad IPv6 network requests.
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "network",
                "create",
                "--ipv6",
                "--subnet",
                &format!("{p}/80"),
                "x1",
            ],
            "overlaps",
        ),
        (
            &[
                "network",
                "create",
                "--subnet",
                &format!("{}/64", prefix6(&d, 2)),
                "x2",
            ],
            "IPv6",
        ),
        (
            &[
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd42::/127",
                "x3",
            ],
            "invalid",
        ),
        (
            &[
                "network",
                "create",
                "--ipv6",
                "--subnet",
                &format!("{}/64", prefix6(&d, 3)),
                "--gateway",
                "fd99::1",
                "x4",
            ],
            "gateway",
        ),
    ];
    for (args, want) in cases {
        let o = d.docker(*args);
        assert_ne!(o.status, 0, "{args:?}");
        assert!(
            o.stderr.to_lowercase().contains(&want.to_lowercase()),
            "{args:?}: {}",
            o.stderr
        );
    }
    // --ipv6 without a subnet: a unique local /64 of its own.
    d.docker(["network", "create", "--ipv6", "auto6"]).ok();
    let s = d
        .docker([
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
            "auto6",
        ])
        .ok();
    assert!(s.contains("fd") && s.contains("::/64"), "{s}");

    // The records survive a daemon restart: the lease of c3 is kept.
    let mut d = d;
    d.restart();
    let o = d.docker([
        "run",
        "--rm",
        "--network",
        "n6",
        "--ip6",
        &a2,
        "busybox",
        "true",
    ]);
    assert!(o.stderr.contains("Address already in use"), "{}", o.stderr);
    d.docker(["rm", "-f", "c1", "c3"]).ok();
    d.docker(["network", "rm", "n6", "n4", "auto6"]).ok();
}

#[test]
fn default_bridge_ipv6_from_daemon_json() {
    // Only this test uses fd43::/16: the process ID keeps test binaries running side by side
    // apart.
    let p = format!("fd43:{:x}::", std::process::id() & 0xffff);
    let d = Daemon::start_with(&format!(
        r#"{{"ipv6": true, "fixed-cidr-v6": "{p}/64", "ip6tables": true}}"#
    ));
    d.load_busybox();
    assert_eq!(
        d.docker(["network", "inspect", "-f", "{{.EnableIPv6}}", "bridge"])
            .ok(),
        "true"
    );
    d.docker(["run", "-d", "--name", "b1", "busybox", "sleep", "300"])
        .ok();
    let a = inspect(&d, "b1", "{{.NetworkSettings.GlobalIPv6Address}}");
    assert!(a.starts_with(&p), "{a}");
    assert_eq!(
        inspect(&d, "b1", "{{.NetworkSettings.IPv6Gateway}}"),
        format!("{p}1")
    );
    let ping = d
        .docker(["exec", "b1", "ping", "-c", "1", "-W", "3", &format!("{p}1")])
        .ok();
    assert!(ping.contains("1 packets received"), "{ping}");
    d.docker(["rm", "-f", "b1"]).ok();
}

#[test]
fn ports_published_on_ipv6_host_addresses() {
    let mut d = Daemon::start();
    d.load_busybox();
    let www = d.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello-v6\n").unwrap();
    let (p6, p4) = (free_port(), free_port());
    d.docker([
        "run",
        "-d",
        "--name",
        "web6",
        "-p",
        &format!("[::1]:{p6}:8080"),
        "-p",
        &format!("127.0.0.1:{p4}:8080"),
        "-v",
        &format!("{}:/www", www.display()),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/www",
    ])
    .ok();
    let answered = wait_for(Duration::from_secs(10), || {
        http_get(&format!("[::1]:{p6}")).filter(|b| b == "hello-v6\n")
    });
    assert!(answered.is_some(), "[::1]:{p6} does not answer");
    assert_eq!(
        http_get(&format!("127.0.0.1:{p4}")).as_deref(),
        Some("hello-v6\n")
    );
    let ports = d.docker(["port", "web6"]).ok();
    assert!(
        ports.contains(&format!("8080/tcp -> [::1]:{p6}")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("8080/tcp -> 127.0.0.1:{p4}")),
        "{ports}"
    );
    // The port is taken: Docker's error, and the second container is not left running.
    let o = d.docker([
        "run",
        "-d",
        "--name",
        "dup",
        "-p",
        &format!("[::1]:{p6}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr.contains("port is already allocated"),
        "{}",
        o.stderr
    );
    assert_eq!(inspect(&d, "dup", "{{.State.Running}}"), "false");
    // kill -9 of the daemon: both keep answering while it is away and after its restart.
    d.kill9();
    assert_eq!(
        http_get(&format!("[::1]:{p6}")).as_deref(),
        Some("hello-v6\n")
    );
    d.start_again();
    assert_eq!(
        http_get(&format!("[::1]:{p6}")).as_deref(),
        Some("hello-v6\n")
    );
    assert_eq!(
        http_get(&format!("127.0.0.1:{p4}")).as_deref(),
        Some("hello-v6\n")
    );
    // Removal releases the port.
    d.docker(["rm", "-f", "web6", "dup"]).ok();
    let freed = wait_for(Duration::from_secs(10), || {
        std::net::TcpListener::bind(format!("[::1]:{p6}")).ok()
    });
    assert!(freed.is_some(), "[::1]:{p6} still held");
}
