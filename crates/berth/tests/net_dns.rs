//! The embedded DNS server end to end, through the Docker CLI and berth's own: containers on a
//! user-defined network find each other by name, alias, short ID (round robin for a shared
//! alias), answers follow start/stop/connect/disconnect/rename, `DNSNames` in inspect, the
//! resolv.conf containers get, forwarding of other names to a stub resolver the test runs on a
//! loopback address (as systemd-resolved's 127.0.0.53), SERVFAIL on `--internal` networks, and
//! DNS across a daemon restart and a kill -9 of the daemon.
//!
//! Every daemon here reads a host resolv.conf the test writes (`host-resolv-conf`) naming the
//! test's own stub, so no query ever leaves this machine.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Daemon;

/// A DNS server on `127.x.y.z:53` (a loopback address of its own, so tests side by side never
/// collide): `outside.test` has A 192.0.2.7, every other name is NXDOMAIN. Hand-made packets:
/// the test only needs to answer one question.
struct Stub {
    ip: Ipv4Addr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The question's name (lowercase, dotted) and the question section's end.
fn question(q: &[u8]) -> Option<(String, usize)> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let n = *q.get(i)? as usize;
        i += 1;
        if n == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + n)?).to_ascii_lowercase());
        i += n;
    }
    q.get(i..i + 4)?;
    Some((labels.join("."), i + 4))
}

fn stub_answer(q: &[u8]) -> Option<Vec<u8>> {
    let (name, end) = question(q)?;
    let qtype = u16::from_be_bytes([q[end - 4], q[end - 3]]);
    let mut r = q[..end].to_vec();
    // QR, opcode 0, RD copied, RA; no additional records (EDNS dropped).
    r[2] = 0x80 | (q[2] & 0x01);
    r[3] = 0x80;
    r[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
    if name == "outside.test" {
        if qtype == 1 {
            r[7] = 1;
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
        }
    } else {
        r[3] |= 3; // NXDOMAIN
    }
    Some(r)
}

impl Stub {
    fn start() -> Stub {
        let mut seed = [0u8; 3];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .unwrap();
        let (udp, tcp, ip) = (0..50)
            .find_map(|i| {
                let ip = Ipv4Addr::new(127, 100 + seed[0] % 100, seed[1], seed[2].wrapping_add(i));
                let sa = SocketAddr::from((ip, 53));
                let udp = UdpSocket::bind(sa).ok()?;
                let tcp = TcpListener::bind(sa).ok()?;
                Some((udp, tcp, ip))
            })
            .expect("a free loopback address for the stub resolver");
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (s1, c1) = (stop.clone(), queries.clone());
        let t1 = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s1.load(Ordering::SeqCst) {
                if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                    c1.fetch_add(1, Ordering::SeqCst);
                    if let Some(b) = stub_answer(&buf[..n]) {
                        let _ = udp.send_to(&b, peer);
                    }
                }
            }
        });
        let (s2, c2) = (stop.clone(), queries.clone());
        let t2 = std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                let Ok((mut st, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                st.set_nonblocking(false).unwrap();
                st.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut len = [0u8; 2];
                if st.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if st.read_exact(&mut q).is_err() {
                    continue;
                }
                c2.fetch_add(1, Ordering::SeqCst);
                if let Some(b) = stub_answer(&q) {
                    let mut out = (b.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&b);
                    let _ = st.write_all(&out);
                }
            }
        });
        Stub {
            ip,
            queries,
            stop,
            threads: vec![t1, t2],
        }
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A daemon whose host resolv.conf names only the stub (a loopback-only host, as with
/// systemd-resolved). The file lives as long as the returned directory.
fn daemon(stub: &Stub) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("bt-resolv-")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("resolv.conf");
    std::fs::write(
        &path,
        format!(
            "# the test's stub\nnameserver {}\noptions attempts:2\n",
            stub.ip
        ),
    )
    .unwrap();
    let cfg = serde_json::json!({ "host-resolv-conf": path });
    (Daemon::start_with(&cfg.to_string()), dir)
}

/// What `nslookup -type=a NAME` says inside `from`: the addresses, or the error (`NXDOMAIN`,
/// `SERVFAIL`, …). busybox's nslookup also asks for NAME.<search domain>, and reports each
/// answer: any address found is the answer.
fn lookup_with(
    run: impl Fn(&[&str]) -> common::Out,
    from: &str,
    name: &str,
) -> Result<Vec<String>, String> {
    let o = run(&["exec", from, "nslookup", "-type=a", name]);
    let text = format!("{}{}", o.stdout, o.stderr);
    // The server's own "Address:\t127.0.0.11:53" comes before the answers.
    let mut addrs: Vec<String> = text
        .split("Name:")
        .skip(1)
        .flat_map(|part| {
            part.lines()
                .filter_map(|l| l.strip_prefix("Address:"))
                .map(|a| a.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    if !addrs.is_empty() {
        addrs.sort();
        return Ok(addrs);
    }
    match text.lines().find(|l| l.contains("can't find")) {
        Some(l) => Err(l.rsplit(':').next().unwrap_or("").trim().to_string()),
        None => Err(format!("nslookup failed ({}): {text}", o.status)),
    }
}

fn lookup(d: &Daemon, from: &str, name: &str) -> Result<Vec<String>, String> {
    lookup_with(|a| d.docker(a), from, name)
}

fn ip_on(d: &Daemon, c: &str, net: &str) -> String {
    d.docker([
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        c,
    ])
    .ok()
}

fn resolv_conf(d: &Daemon, c: &str) -> String {
    d.docker(["exec", c, "cat", "/etc/resolv.conf"]).ok()
}

fn run(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sleep", "600"]);
    d.docker(&a).ok()
}

#[test]
fn containers_resolve_each_other_by_name_alias_and_short_id() {
    let stub = Stub::start();
    let (d, _resolv) = daemon(&stub);
    d.load_busybox();
    d.docker(["network", "create", "--subnet", &d.block.subnet(1), "n1"])
        .ok();
    d.docker(["network", "create", "--subnet", &d.block.subnet(2), "n2"])
        .ok();
    let web = run(
        &d,
        &[
            "--name",
            "web",
            "--network",
            "n1",
            "--network-alias",
            "site",
        ],
    );
    run(
        &d,
        &[
            "--name",
            "web2",
            "--network",
            "n1",
            "--network-alias",
            "site",
        ],
    );
    run(
        &d,
        &[
            "--name",
            "client",
            "--network",
            "n1",
            "--dns-option",
            "timeout:2",
        ],
    );
    // busybox's nslookup asks only NAME.<search domain> for a single-label NAME when there
    // are search domains (glibc and musl ask NAME first with ndots:0), so this one is only
    // looked at.
    run(
        &d,
        &[
            "--name",
            "searcher",
            "--network",
            "n1",
            "--dns-search",
            "example.test",
        ],
    );
    run(&d, &["--name", "other", "--network", "n2"]);
    let (ip_web, ip_web2) = (ip_on(&d, "web", "n1"), ip_on(&d, "web2", "n1"));

    // resolv.conf: the embedded server, the user's search and options, ndots:0.
    let rc = resolv_conf(&d, "client");
    assert!(
        rc.starts_with("nameserver 127.0.0.11\noptions timeout:2 ndots:0\n"),
        "{rc}"
    );
    assert!(
        rc.contains(&format!("# ExtServers: [host({})]", stub.ip)),
        "{rc}"
    );
    let rc = resolv_conf(&d, "searcher");
    assert!(
        rc.starts_with("nameserver 127.0.0.11\nsearch example.test\noptions attempts:2 ndots:0\n"),
        "{rc}"
    );
    assert_eq!(lookup(&d, "searcher", "web.n1"), Ok(vec![ip_web.clone()]));

    assert_eq!(lookup(&d, "client", "web"), Ok(vec![ip_web.clone()]));
    assert_eq!(lookup(&d, "client", &web[..12]), Ok(vec![ip_web.clone()]));
    assert_eq!(lookup(&d, "client", "WEB2"), Ok(vec![ip_web2.clone()]));
    let mut both = vec![ip_web.clone(), ip_web2.clone()];
    both.sort();
    assert_eq!(lookup(&d, "client", "site"), Ok(both));
    assert_eq!(lookup(&d, "client", "web.n1"), Ok(vec![ip_web.clone()]));
    // Not on a shared network: NXDOMAIN.
    assert_eq!(lookup(&d, "other", "web"), Err("NXDOMAIN".to_string()));
    assert_eq!(lookup(&d, "client", "nosuch"), Err("NXDOMAIN".to_string()));

    let names = d
        .docker([
            "inspect",
            "-f",
            "{{json (index .NetworkSettings.Networks \"n1\").DNSNames}}",
            "web",
        ])
        .ok();
    assert_eq!(names, format!("[\"web\",\"site\",\"{}\"]", &web[..12]));

    // Connect while running: the names of the new network resolve.
    d.docker(["network", "connect", "--alias", "late", "n1", "other"])
        .ok();
    assert_eq!(lookup(&d, "other", "web"), Ok(vec![ip_web.clone()]));
    let ip_other = ip_on(&d, "other", "n1");
    assert_eq!(lookup(&d, "client", "late"), Ok(vec![ip_other]));

    // Rename: the new name resolves, the old one is gone.
    d.docker(["rename", "web", "www"]).ok();
    assert_eq!(lookup(&d, "client", "www"), Ok(vec![ip_web.clone()]));
    assert_eq!(lookup(&d, "client", "web"), Err("NXDOMAIN".to_string()));

    // Stop: its names go; the shared alias keeps the other container.
    d.docker(["stop", "-t", "0", "web2"]).ok();
    assert_eq!(lookup(&d, "client", "web2"), Err("NXDOMAIN".to_string()));
    assert_eq!(lookup(&d, "client", "site"), Ok(vec![ip_web.clone()]));
    // ...and come back at start.
    d.docker(["start", "web2"]).ok();
    let ip_web2 = ip_on(&d, "web2", "n1");
    assert_eq!(lookup(&d, "client", "web2"), Ok(vec![ip_web2]));

    // Disconnect: the network's names are gone for it.
    d.docker(["network", "disconnect", "n1", "other"]).ok();
    assert_eq!(lookup(&d, "other", "www"), Err("NXDOMAIN".to_string()));

    // Through berth's own CLI: run and exec.
    d.berth([
        "run",
        "-d",
        "--name",
        "b1",
        "--network",
        "n1",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    assert_eq!(
        lookup_with(|a| d.berth(a), "b1", "www"),
        Ok(vec![ip_web.clone()])
    );
    d.docker([
        "rm", "-f", "www", "web2", "client", "searcher", "other", "b1",
    ]);
}

#[test]
fn forwarding_internal_networks_and_daemon_restarts() {
    let stub = Stub::start();
    let (mut d, _resolv) = daemon(&stub);
    d.load_busybox();
    d.docker(["network", "create", "--subnet", &d.block.subnet(1), "n1"])
        .ok();
    d.docker([
        "network",
        "create",
        "--internal",
        "--subnet",
        &d.block.subnet(2),
        "n3",
    ])
    .ok();
    run(&d, &["--name", "alpha", "--network", "n1"]);
    run(&d, &["--name", "peer", "--network", "n1"]);
    run(&d, &["--name", "bb"]);
    run(&d, &["--name", "int1", "--network", "n3"]);
    run(&d, &["--name", "int2", "--network", "n3"]);
    let ip_peer = ip_on(&d, "peer", "n1");
    let ip_i2 = ip_on(&d, "int2", "n3");

    // Other names go to the host's resolver, a loopback stub the container could not reach.
    let before = stub.queries();
    assert_eq!(
        lookup(&d, "alpha", "outside.test"),
        Ok(vec!["192.0.2.7".to_string()])
    );
    assert!(stub.queries() > before);
    assert_eq!(
        lookup(&d, "alpha", "nowhere.test"),
        Err("NXDOMAIN".to_string())
    );
    // The default bridge on a loopback-only host: the forwarder, no container names.
    let rc = resolv_conf(&d, "bb");
    assert!(rc.starts_with("nameserver 127.0.0.11\n"), "{rc}");
    assert_eq!(
        lookup(&d, "bb", "outside.test"),
        Ok(vec!["192.0.2.7".to_string()])
    );
    assert_eq!(lookup(&d, "bb", "alpha"), Err("NXDOMAIN".to_string()));
    // --internal: names on the network resolve, the outside does not.
    assert_eq!(lookup(&d, "int1", "int2"), Ok(vec![ip_i2.clone()]));
    assert_eq!(
        lookup(&d, "int1", "outside.test"),
        Err("SERVFAIL".to_string())
    );

    let check = |d: &Daemon, when: &str| {
        assert_eq!(
            lookup(d, "alpha", "peer"),
            Ok(vec![ip_peer.clone()]),
            "{when}"
        );
        assert_eq!(
            lookup(d, "alpha", "outside.test"),
            Ok(vec!["192.0.2.7".to_string()]),
            "{when}"
        );
        assert_eq!(
            lookup(d, "bb", "outside.test"),
            Ok(vec!["192.0.2.7".to_string()]),
            "{when}"
        );
        assert_eq!(lookup(d, "int1", "int2"), Ok(vec![ip_i2.clone()]), "{when}");
        assert_eq!(
            lookup(d, "int1", "outside.test"),
            Err("SERVFAIL".to_string()),
            "{when}"
        );
    };
    d.restart();
    check(&d, "after a daemon restart");
    d.kill9();
    d.start_again();
    check(&d, "after kill -9 of the daemon");
    // A container started by the new daemon sees the adopted ones.
    run(&d, &["--name", "late", "--network", "n1"]);
    assert_eq!(
        lookup(&d, "late", "alpha"),
        Ok(vec![ip_on(&d, "alpha", "n1")])
    );
    d.docker(["rm", "-f", "alpha", "peer", "bb", "int1", "int2", "late"]);
}
