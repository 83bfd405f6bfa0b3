//! Benchmark of the embedded DNS server for `scripts/bench-dns` (run as root).
//!
//! Makes network namespaces standing for containers (`ip netns add`, removed at the end),
//! attaches them to a `DnsServer` whose records hold `--containers` containers on one network,
//! and measures from inside one namespace, with a UDP client sending one query at a time to
//! 127.0.0.11:53:
//!   1. lookup latency of a container name (A), sequential, `--queries` times;
//!   2. the same while another container floods the server with queries from two threads;
//!   3. a forwarded name, relayed to a stub resolver on the host's loopback;
//!   4. attach + detach of a container (what a container start and stop pay).
//!
//! Prints one Markdown table. Nothing leaves the machine.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_net::dns::{dns_names, Attachment, DnsConfig, DnsServer, EndpointRecord, Upstream};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("bdnsbench-{}-{tag}", std::process::id());
        sh(&["netns", "add", &name]);
        let ns = Ns(name);
        sh(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }
    fn path(&self) -> std::path::PathBuf {
        format!("/run/netns/{}", self.0).into()
    }
    fn client(&self) -> UdpSocket {
        let f = std::fs::File::open(self.path()).expect("open netns");
        std::thread::spawn(move || {
            nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.connect("127.0.0.11:53").expect("connect");
            s
        })
        .join()
        .expect("netns thread")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "ip {args:?} failed (run as root)");
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    m.to_vec().expect("encode")
}

/// Round-trip times of `n` sequential queries for `name`, in microseconds (sorted).
fn lookups(sock: &UdpSocket, name: &str, n: usize) -> Vec<f64> {
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(n);
    let mut lost = 0;
    for i in 0..n {
        let id = i as u16;
        let q = query(id, name);
        let t = Instant::now();
        sock.send(&q).expect("send");
        loop {
            match sock.recv(&mut buf) {
                Ok(len) if len >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id => {
                    out.push(t.elapsed().as_secs_f64() * 1e6);
                    break;
                }
                Ok(_) => continue,
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    if lost > 0 {
        eprintln!("dns-bench: {lost} of {n} queries for {name} got no answer within 2 s");
    }
    out.sort_by(f64::total_cmp);
    out
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn row(what: &str, v: &[f64]) {
    println!(
        "| {what} | {} | {:.0} | {:.0} | {:.0} |",
        v.len(),
        pct(v, 0.5),
        pct(v, 0.9),
        pct(v, 0.99)
    );
}

/// A stub upstream on the host's loopback that answers every query with NXDOMAIN.
fn stub() -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("stub bind");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let addr = s.local_addr().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !st.load(Ordering::Relaxed) {
            if let Ok((n, peer)) = s.recv_from(&mut buf) {
                if n >= 12 {
                    buf[2] |= 0x80; // QR
                    buf[3] = 0x83; // RA, NXDOMAIN
                    let _ = s.send_to(&buf[..n], peer);
                }
            }
        }
    });
    (addr, stop, t)
}

fn main() {
    let mut queries = 20000usize;
    let mut containers = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse().ok());
        match (a.as_str(), v) {
            ("--queries", Some(v)) => queries = v,
            ("--containers", Some(v)) => containers = v,
            _ => {
                eprintln!("usage: dns-bench [--queries N] [--containers N]");
                std::process::exit(2);
            }
        }
    }
    let server = DnsServer::start(DnsConfig::default()).expect("start");
    let r = server.records();
    for i in 0..containers.max(2) {
        let id = format!("{i:064x}");
        r.set_endpoint(
            "bench",
            "benchnet",
            EndpointRecord {
                container_id: id.clone(),
                dns_names: dns_names(&format!("web-{i}"), &["app".to_string()], &id, None),
                ipv4: Some(std::net::Ipv4Addr::new(
                    10,
                    200,
                    (i / 250) as u8,
                    (i % 250) as u8 + 2,
                )),
                ipv6: None,
            },
        );
    }
    let (stub_addr, stub_stop, stub_thread) = stub();
    let asker = Ns::new("asker");
    let flooder = Ns::new("flood");
    let attach = |id: String, ns: &Ns| {
        server
            .attach(Attachment {
                container_id: id,
                netns: ns.path(),
                upstreams: vec![Upstream {
                    addr: stub_addr,
                    from_host: true,
                }],
                external_access: true,
            })
            .expect("attach");
    };
    attach(format!("{:064x}", 0), &asker);
    attach(format!("{:064x}", 1), &flooder);
    let sock = asker.client();
    lookups(&sock, "web-7", 500); // warm up

    println!("| lookup from a container | queries | p50 µs | p90 µs | p99 µs |");
    println!("|---|---:|---:|---:|---:|");
    let name = lookups(&sock, "web-7", queries);
    row("container name (A)", &name);
    let alias = lookups(&sock, "app", queries / 4);
    row(&format!("alias of {containers} containers (A)"), &alias);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let floods: Vec<_> = (0..2)
        .map(|i| {
            let s = flooder.client();
            s.set_nonblocking(true).expect("nonblocking");
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let q = query(i, "web-3");
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    if s.send(&q).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    while s.recv(&mut buf).is_ok() {}
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let flooded = lookups(&sock, "web-7", queries / 4);
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        let _ = f.join();
    }
    row(
        &format!(
            "container name while another container floods ({:.0} queries/s sent)",
            sent.load(Ordering::Relaxed) as f64 / (secs + 0.2)
        ),
        &flooded,
    );
    let fwd = lookups(&sock, "example.invalid", queries / 4);
    row("forwarded to a stub on the host's loopback", &fwd);

    let mut att = Vec::new();
    let extra = Ns::new("extra");
    for _ in 0..200 {
        let t = Instant::now();
        attach(format!("{:064x}", 2), &extra);
        server.detach(&format!("{:064x}", 2));
        att.push(t.elapsed().as_secs_f64() * 1e6);
    }
    att.sort_by(f64::total_cmp);
    row("attach + detach of a container", &att);

    stub_stop.store(true, Ordering::Relaxed);
    let _ = stub_thread.join();
}
