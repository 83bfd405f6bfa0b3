//! The default bridge network and published ports, end to end through the Docker CLI: every
//! daemon has its own bridge and subnet (see the harness), traffic stays between the host and
//! the test's containers and namespaces.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::{free_port, wait_for, Daemon};

/// An HTTP/1.0 GET of `/index.html` at `addr`; the body, or None when nothing answers.
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// A busybox httpd container serving `body` on 8080 with `publish` flags.
fn web(d: &Daemon, name: &str, body: &str, publish: &[&str]) -> String {
    let www = d.dir.join(format!("www-{name}"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), body).unwrap();
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        name.into(),
        "-v".into(),
        format!("{}:/www", www.display()),
    ];
    args.extend(publish.iter().map(|s| s.to_string()));
    args.extend(
        ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
            .iter()
            .map(|s| s.to_string()),
    );
    d.docker(&args).ok()
}

fn veths_of(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn nft_map(d: &Daemon, map: &str) -> String {
    let o = std::process::Command::new("nft")
        .args(["list", "map", "ip", &d.firewall_table(), map])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn container_on_the_default_bridge() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d
        .docker([
            "run",
            "--rm",
            "--name",
            "c1",
            "--add-host",
            "gw:host-gateway",
            "busybox",
            "sh",
            "-c",
            "ip -o -4 addr show eth0; ip route; cat /etc/hosts; hostname",
        ])
        .ok();
    let prefix = format!("10.{}.{}.", d.block.a, d.block.b);
    assert!(out.contains(&format!("inet {prefix}")), "{out}");
    assert!(
        out.contains(&format!("default via {}", d.block.gateway())),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}\tgw\n", d.block.gateway())),
        "{out}"
    );
    let hostname = out.lines().last().unwrap();
    assert!(
        out.lines()
            .any(|l| l.starts_with(&prefix) && l.ends_with(&format!("\t{hostname}"))),
        "{out}"
    );

    // inspect fills NetworkSettings as Docker does; network ls/inspect show the bridge.
    d.docker(["run", "-d", "--name", "idle", "busybox", "sleep", "300"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&d.docker(["inspect", "idle"]).ok()).unwrap();
    let ns = &v[0]["NetworkSettings"];
    let ip = ns["IPAddress"].as_str().unwrap().to_string();
    assert!(ip.starts_with(&prefix), "{ns}");
    assert_eq!(ns["Gateway"], d.block.gateway().as_str());
    assert_eq!(ns["IPPrefixLen"], 24);
    let o: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    assert_eq!(
        ns["MacAddress"],
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]).as_str()
    );
    let br = &ns["Networks"]["bridge"];
    assert_eq!(br["IPAddress"], ip.as_str());
    assert_eq!(br["EndpointID"], ns["EndpointID"]);
    assert_eq!(br["EndpointID"].as_str().unwrap().len(), 64);
    assert!(ns["SandboxKey"]
        .as_str()
        .unwrap()
        .starts_with(d.exec_root.join("netns").to_str().unwrap()));
    assert_eq!(v[0]["HostConfig"]["NetworkMode"], "default");
    let net_id = d
        .docker(["network", "inspect", "-f", "{{.Id}}", "bridge"])
        .ok();
    assert_eq!(br["NetworkID"], net_id.as_str());
    let ls = d
        .docker(["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .ok();
    assert!(ls.contains("bridge bridge"), "{ls}");
    assert!(ls.contains("host host") && ls.contains("none null"), "{ls}");
    let cs = d
        .docker([
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}} {{(index .IPAM.Config 0).Subnet}} {{index .Options \"com.docker.network.bridge.name\"}}",
            "bridge",
        ])
        .ok();
    assert_eq!(
        cs,
        format!("idle {ip}/24 {} {}", d.block.subnet(0), d.bridge)
    );
    // The host reaches the container's address directly; other containers do too.
    let ping = d
        .docker(["run", "--rm", "busybox", "ping", "-c", "1", "-W", "2", &ip])
        .ok();
    assert!(ping.contains("1 packets received"), "{ping}");

    // Stopping releases the veth and the namespace; inspect shows no address.
    assert_eq!(veths_of(&d.bridge).len(), 1);
    d.docker(["stop", "-t", "0", "idle"]).ok();
    assert_eq!(
        d.docker([
            "inspect",
            "-f",
            "{{.NetworkSettings.IPAddress}}|{{.NetworkSettings.Networks.bridge.IPAddress}}",
            "idle"
        ])
        .ok(),
        "|"
    );
    assert!(
        wait_for(Duration::from_secs(10), || veths_of(&d.bridge)
            .is_empty()
            .then_some(()))
        .is_some(),
        "veths left: {:?}",
        veths_of(&d.bridge)
    );
    assert_eq!(
        std::fs::read_dir(d.exec_root.join("netns"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn published_ports_tcp_udp_loopback_host_address_hairpin() {
    let d = Daemon::start();
    d.load_busybox();
    let (p1, p2) = (free_port(), free_port());
    web(
        &d,
        "web",
        "hello-web\n",
        &[
            "-p",
            &format!("{p1}:8080"),
            "-p",
            &format!("127.0.0.1:{p2}:8080"),
        ],
    );
    let gw = d.block.gateway();
    let ok = wait_for(Duration::from_secs(10), || {
        http_get(&format!("127.0.0.1:{p1}")).filter(|b| b == "hello-web\n")
    });
    assert!(ok.is_some(), "127.0.0.1:{p1} does not answer");
    // A host address (the bridge's gateway is one of the host's addresses).
    assert_eq!(
        http_get(&format!("{gw}:{p1}")).as_deref(),
        Some("hello-web\n")
    );
    assert_eq!(
        http_get(&format!("127.0.0.1:{p2}")).as_deref(),
        Some("hello-web\n")
    );
    // Bound to 127.0.0.1 only: not on the other address.
    assert_eq!(http_get(&format!("{gw}:{p2}")), None);
    // Hairpin: another container and the container itself through the host's address.
    let req =
        format!("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gw} {p1} | tail -n 1");
    assert_eq!(
        d.docker(["run", "--rm", "busybox", "sh", "-c", &req]).ok(),
        "hello-web"
    );
    assert_eq!(
        d.docker(["exec", "web", "sh", "-c", &req]).ok(),
        "hello-web"
    );

    // port, ps, inspect.
    assert_eq!(
        d.docker(["port", "web"]).ok(),
        format!("8080/tcp -> 0.0.0.0:{p1}\n8080/tcp -> 127.0.0.1:{p2}")
    );
    assert_eq!(
        d.docker(["port", "web", "8080/tcp"]).ok(),
        format!("0.0.0.0:{p1}\n127.0.0.1:{p2}")
    );
    let ps = d.docker(["ps", "--format", "{{.Ports}}"]).ok();
    assert_eq!(
        ps,
        format!("0.0.0.0:{p1}->8080/tcp, 127.0.0.1:{p2}->8080/tcp")
    );

    // UDP: an echo server (the host's python3, mounted read-only: busybox's nc has no UDP).
    let pu = free_port();
    d.docker([
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &format!("{pu}:9999/udp"),
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        "busybox",
        "/usr/bin/python3",
        "-c",
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9999))\nwhile True:\n    d,a=s.recvfrom(2048)\n    s.sendto(b'echo:'+d,a)\n",
    ])
    .ok();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let got = wait_for(Duration::from_secs(10), || {
        sock.send_to(b"datagram", ("127.0.0.1", pu)).ok()?;
        let mut buf = [0u8; 64];
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    assert_eq!(got.as_deref(), Some("echo:datagram"));
    let sock = UdpSocket::bind(format!("{gw}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(b"x", (gw.as_str(), pu)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("UDP through a host address");
    assert_eq!(&buf[..n], b"echo:x");

    // -P publishes EXPOSE'd ports on ephemeral host ports.
    let www = d.dir.join("www-web");
    d.docker([
        "run",
        "-d",
        "--name",
        "pub",
        "-P",
        "--expose",
        "8080",
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
    let mapped = d.docker(["port", "pub", "8080"]).ok();
    let port: u16 = mapped
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no mapping: {mapped}"));
    let (lo, hi) = berth_net::ports::ephemeral_range();
    assert!((lo..=hi).contains(&port), "{port}");
    assert!(wait_for(Duration::from_secs(10), || http_get(&format!(
        "127.0.0.1:{port}"
    )))
    .is_some());

    // A port in use: Docker's error, the container not started, nothing left behind.
    let o = d.docker([
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{p1}:80"),
        "busybox",
        "sleep",
        "30",
    ]);
    assert_eq!(o.status, 125, "{o:?}");
    assert!(
        o.stderr
            .contains("driver failed programming external connectivity on endpoint clash (")
            && o.stderr.contains(&format!(
                "Bind for 0.0.0.0:{p1} failed: port is already allocated"
            )),
        "{}",
        o.stderr
    );
    assert_eq!(
        d.docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.NetworkSettings.IPAddress}}",
            "clash"
        ])
        .ok(),
        "created"
    );
    assert_eq!(veths_of(&d.bridge).len(), 3);
    // The port still belongs to web.
    assert_eq!(
        http_get(&format!("127.0.0.1:{p1}")).as_deref(),
        Some("hello-web\n")
    );

    // Removal unpublishes: the maps are empty, the ports free, no veth left.
    d.docker(["rm", "-f", "web", "udp", "pub", "clash"]).ok();
    assert_eq!(http_get(&format!("127.0.0.1:{p1}")), None);
    let any = nft_map(&d, "pub_any");
    assert!(!any.contains("elements"), "{any}");
    assert!(!nft_map(&d, "pub_ip").contains("elements"));
    std::net::TcpListener::bind(("127.0.0.1", p2)).expect("port free again");
    assert!(wait_for(Duration::from_secs(10), || veths_of(&d.bridge)
        .is_empty()
        .then_some(()))
    .is_some());
}

#[test]
fn published_ports_survive_daemon_kill9_and_restart() {
    let mut d = Daemon::start();
    d.load_busybox();
    let p = free_port();
    web(&d, "web", "still-here\n", &["-p", &format!("{p}:8080")]);
    assert!(wait_for(Duration::from_secs(10), || http_get(&format!(
        "127.0.0.1:{p}"
    )))
    .is_some());
    d.kill9();
    // The kernel keeps forwarding while the daemon is away.
    assert_eq!(
        http_get(&format!("127.0.0.1:{p}")).as_deref(),
        Some("still-here\n")
    );
    d.start_again();
    assert_eq!(
        http_get(&format!("127.0.0.1:{p}")).as_deref(),
        Some("still-here\n")
    );
    // The restarted daemon still holds the port and the address.
    let o = d.docker([
        "run",
        "-d",
        "-p",
        &format!("{p}:80"),
        "busybox",
        "sleep",
        "30",
    ]);
    assert!(o.stderr.contains("port is already allocated"), "{o:?}");
    let ip = d
        .docker(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"])
        .ok();
    let other = d
        .docker([
            "run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
        ])
        .ok();
    assert!(!other.contains(&format!("inet {ip}/")), "{other}");
    // A graceful restart too; then the container's exit while the daemon is down is seen
    // at the next start and its port released.
    d.restart();
    assert_eq!(
        http_get(&format!("127.0.0.1:{p}")).as_deref(),
        Some("still-here\n")
    );
    d.kill9();
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(d.exec_root.join("runc"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    for id in String::from_utf8_lossy(&out.stdout).lines() {
        std::process::Command::new("runc")
            .arg("--root")
            .arg(d.exec_root.join("runc"))
            .args(["kill", id, "KILL"])
            .output()
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    d.start_again();
    assert!(wait_for(Duration::from_secs(10), || {
        (d.docker(["inspect", "-f", "{{.State.Status}}", "web"]).ok() == "exited").then_some(())
    })
    .is_some());
    assert!(!nft_map(&d, "pub_any").contains("elements"));
    std::net::TcpListener::bind(("0.0.0.0", p)).expect("the port is free again");
    assert!(wait_for(Duration::from_secs(10), || veths_of(&d.bridge)
        .is_empty()
        .then_some(()))
    .is_some());
    assert_eq!(
        std::fs::read_dir(d.exec_root.join("netns"))
            .unwrap()
            .count(),
        0
    );
}

/// Pids of this daemon's userland proxies.
fn proxies(d: &Daemon) -> Vec<i32> {
    let needle = d.dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("\0userland-proxy\0") && cmd.contains(&needle) {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn userland_proxy_publishes_without_firewall_rules() {
    let mut d = Daemon::start_with(r#"{"iptables": false}"#);
    d.load_busybox();
    let p1 = free_port();
    let p2 = free_port();
    web(
        &d,
        "web",
        "proxied\n",
        &[
            "-p",
            &format!("127.0.0.1:{p1}:8080"),
            "-p",
            &format!("{p2}:8080"),
        ],
    );
    let get = |addr: String| wait_for(Duration::from_secs(10), || http_get(&addr));
    assert_eq!(get(format!("127.0.0.1:{p1}")).as_deref(), Some("proxied\n"));
    let gw = d.block.gateway();
    assert_eq!(get(format!("{gw}:{p2}")).as_deref(), Some("proxied\n"));
    // No firewall table of this daemon: the proxy forwards.
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(&d.firewall_table()));
    assert_eq!(proxies(&d).len(), 1, "one proxy per container");
    let mut ports: Vec<String> = d
        .docker(["port", "web", "8080/tcp"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    ports.sort();
    assert_eq!(ports, [format!("0.0.0.0:{p2}"), format!("127.0.0.1:{p1}")]);
    let o = d.docker(["run", "-d", "-p", &format!("{p2}:80"), "busybox", "true"]);
    assert!(o.stderr.contains("port is already allocated"), "{o:?}");
    // The proxy outlives the daemon; a proxy that died meanwhile is started again.
    d.kill9();
    assert_eq!(
        http_get(&format!("127.0.0.1:{p1}")).as_deref(),
        Some("proxied\n")
    );
    for pid in proxies(&d) {
        // SAFETY: plain kill(2) of the test daemon's proxy.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(wait_for(Duration::from_secs(5), || proxies(&d)
        .is_empty()
        .then_some(()))
    .is_some());
    d.start_again();
    assert_eq!(get(format!("127.0.0.1:{p1}")).as_deref(), Some("proxied\n"));
    let o = d.docker(["run", "-d", "-p", &format!("{p1}:80"), "busybox", "true"]);
    assert!(o.stderr.contains("port is already allocated"), "{o:?}");
    // Removing the container stops its proxy and frees the ports.
    d.docker(["rm", "-f", "web"]).ok();
    assert!(proxies(&d).is_empty());
    std::net::TcpListener::bind(("0.0.0.0", p2)).expect("the port is free again");
    std::net::TcpListener::bind(("127.0.0.1", p1)).expect("the port is free again");
    // SCTP has no userland path.
    let o = d.docker(["run", "-d", "-p", "9/sctp", "busybox", "true"]);
    assert!(o.stderr.contains("forwards TCP and UDP only"), "{o:?}");
    drop(d);

    // Neither firewall rules nor the proxy: publishing is refused, running is not.
    let d = Daemon::start_with(r#"{"iptables": false, "userland-proxy": false}"#);
    d.load_busybox();
    let o = d.docker(["run", "--rm", "-p", "80", "busybox", "true"]);
    assert!(o.stderr.contains("\"userland-proxy\": false"), "{o:?}");
    assert_eq!(
        d.docker(["run", "--rm", "busybox", "echo", "ok"]).ok(),
        "ok"
    );
}

#[test]
fn bad_port_requests() {
    let d = Daemon::start();
    d.load_busybox();
    // The CLI validates -p itself, with Docker's words.
    let o = d.docker(["run", "-p", "99999:80", "busybox"]);
    assert_eq!(o.status, 125);
    assert!(o.stderr.contains("invalid"), "{}", o.stderr);
    // Through the API: a bad key or host port is a 400.
    for body in [
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"PortBindings":{"80/icmp":[{"HostPort":"1"}]}}}"#,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"x"}]}}}"#,
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"nope","HostPort":"1"}]}}}"#,
    ] {
        let (st, b) = d.raw(
            "POST",
            "/v1.41/containers/create",
            Some("application/json"),
            body.as_bytes(),
        );
        let id = if st == 201 {
            serde_json::from_str::<serde_json::Value>(&b).unwrap()["Id"]
                .as_str()
                .unwrap()
                .to_string()
        } else {
            assert_eq!(st, 400, "{body}: {b}");
            continue;
        };
        let (st, b) = d.raw("POST", &format!("/v1.41/containers/{id}/start"), None, b"");
        assert_eq!(st, 400, "{body}: {b}");
    }
    // 1,000 ports at once: handled (a range), and removed again without a stall.
    let base = 40000 + (std::process::id() % 500) as u16 * 20;
    let o = d.docker([
        "run",
        "-d",
        "--name",
        "many",
        "-p",
        &format!("127.0.0.1:{}-{}:{}-{}", base, base + 999, 1000, 1999),
        "busybox",
        "sleep",
        "60",
    ]);
    if o.status == 0 {
        let n = d.docker(["port", "many"]).ok().lines().count();
        assert_eq!(n, 1000);
        d.docker(["rm", "-f", "many"]).ok();
    } else {
        // Some port of the range was taken on this host: Docker's error, nothing half-done.
        assert!(
            o.stderr.contains("port is already allocated"),
            "{}",
            o.stderr
        );
        d.docker(["rm", "-f", "many"]).ok();
    }
    assert!(!nft_map(&d, "pub_ip").contains("elements"));
}

/// The issue's end-to-end check, literally: the Docker CLI runs an httpd container with
/// `-p 18080:8080` and curl on the host gets its page from 127.0.0.1:18080.
#[test]
fn docker_cli_run_publish_18080_and_curl() {
    let d = Daemon::start();
    d.load_busybox();
    web(&d, "httpd18080", "hello-18080\n", &["-p", "18080:8080"]);
    let got = wait_for(Duration::from_secs(10), || {
        let o = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "3",
                "http://127.0.0.1:18080/index.html",
            ])
            .output()
            .ok()?;
        let body = String::from_utf8_lossy(&o.stdout).into_owned();
        (o.status.success() && body == "hello-18080\n").then_some(body)
    });
    assert!(got.is_some(), "curl 127.0.0.1:18080 got no page");
    assert_eq!(
        d.docker(["port", "httpd18080", "8080"]).ok(),
        "0.0.0.0:18080"
    );
    d.docker(["rm", "-f", "httpd18080"]).ok();
}
