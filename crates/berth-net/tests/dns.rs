//! Root integration tests of the embedded DNS server: each test makes its own network
//! namespaces (`ip netns add`, removed on drop) standing for containers, attaches them, and asks
//! 127.0.0.11 from inside with Debian's `dig` (or a raw socket for hostile input). Upstreams are
//! stub resolvers the test runs on loopback addresses; nothing leaves the machine.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_net::dns::{
    dns_names, Attachment, DnsConfig, DnsServer, EndpointRecord, Records, Upstream,
};
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace standing for a container, with its loopback up.
struct Ns {
    name: String,
}

impl Ns {
    fn new() -> Ns {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the DNS integration tests need root (network namespaces)"
        );
        let name = format!(
            "bdns-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Ns { name };
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    fn path(&self) -> std::path::PathBuf {
        format!("/run/netns/{}", self.name).into()
    }

    /// Runs `f` on a thread inside the namespace (for sockets that must live there).
    fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let file = std::fs::File::open(self.path()).unwrap();
        std::thread::spawn(move || {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    fn dig(&self, args: &[&str]) -> Dig {
        let mut full = vec![
            "netns",
            "exec",
            &self.name,
            "dig",
            "@127.0.0.11",
            "+time=2",
            "+tries=1",
        ];
        full.extend_from_slice(args);
        let out = Command::new("ip").args(&full).output().unwrap();
        Dig::parse(&String::from_utf8_lossy(&out.stdout))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap();
    assert!(st.success(), "{cmd} {args:?} failed");
}

/// What dig printed.
#[derive(Debug, Default)]
struct Dig {
    raw: String,
    status: String,
    flags: Vec<String>,
    /// Answer records as (type, data).
    answers: Vec<(String, String)>,
    udp_size: Option<u16>,
}

impl Dig {
    fn parse(out: &str) -> Dig {
        let mut d = Dig {
            raw: out.to_string(),
            ..Dig::default()
        };
        let mut in_answer = false;
        for line in out.lines() {
            if let Some(rest) = line.split_once("status: ") {
                d.status = rest.1.split(',').next().unwrap_or("").to_string();
            }
            if let Some(rest) = line.strip_prefix(";; flags: ") {
                let flags = rest.split(';').next().unwrap_or("");
                d.flags = flags.split_whitespace().map(str::to_string).collect();
                if let Some(u) = rest.split("udp: ").nth(1) {
                    d.udp_size = u.trim().parse().ok();
                }
            }
            if let Some(u) = line.strip_prefix("; EDNS: version: 0, flags:; udp: ") {
                d.udp_size = u.trim().parse().ok();
            }
            if line.starts_with(";; ANSWER SECTION:") {
                in_answer = true;
                continue;
            }
            if in_answer {
                if line.trim().is_empty() || line.starts_with(';') {
                    in_answer = false;
                    continue;
                }
                let w: Vec<&str> = line.split_whitespace().collect();
                if w.len() >= 5 {
                    d.answers.push((w[3].to_string(), w[4..].join(" ")));
                }
            }
        }
        d
    }

    fn data(&self, t: &str) -> Vec<String> {
        self.answers
            .iter()
            .filter(|(ty, _)| ty == t)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn ep(id: &str, names: Vec<String>, v4: &str, v6: Option<&str>) -> EndpointRecord {
    EndpointRecord {
        container_id: id.to_string(),
        dns_names: names,
        ipv4: Some(v4.parse().unwrap()),
        ipv6: v6.map(|s| s.parse().unwrap()),
    }
}

fn config() -> DnsConfig {
    DnsConfig {
        upstream_timeout: Duration::from_millis(700),
        ..DnsConfig::default()
    }
}

fn attach(server: &DnsServer, id: &str, ns: &Ns, upstreams: Vec<Upstream>) {
    server
        .attach(Attachment {
            container_id: id.to_string(),
            netns: ns.path(),
            upstreams,
            external_access: true,
        })
        .unwrap();
}

const ID_B: &str = "b0b0b0b0b0b0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Containers: `a` (asks), `b` and `c` (both under the alias `svc`) on network `front`;
/// `d` on network `back` only.
fn populate(r: &Records) {
    r.set_endpoint(
        "n-front",
        "front",
        ep("a", dns_names("a", &[], "a", None), "10.123.0.2", None),
    );
    r.set_endpoint(
        "n-front",
        "front",
        ep(
            ID_B,
            dns_names("/bee", &["svc".into()], ID_B, Some("beehost")),
            "10.123.0.3",
            Some("fd12:3::3"),
        ),
    );
    r.set_endpoint(
        "n-front",
        "front",
        ep(
            "c",
            dns_names("cee", &["svc".into()], "c", None),
            "10.123.0.4",
            None,
        ),
    );
    r.set_endpoint(
        "n-back",
        "back",
        ep("d", dns_names("dee", &[], "d", None), "10.124.0.2", None),
    );
}

#[test]
fn names_aliases_round_robin_aaaa_ptr_and_nxdomain() {
    let server = DnsServer::start(config()).unwrap();
    populate(server.records());
    let a = Ns::new();
    attach(&server, "a", &a, vec![]);

    let d = a.dig(&["bee"]);
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    assert_eq!(d.data("A"), vec!["10.123.0.3"]);
    assert!(d.flags.contains(&"ra".to_string()) && !d.flags.contains(&"aa".to_string()));
    // The short ID, the hostname, any case, the name.network form.
    assert_eq!(a.dig(&["b0b0b0b0b0b0"]).data("A"), vec!["10.123.0.3"]);
    assert_eq!(a.dig(&["BeeHost"]).data("A"), vec!["10.123.0.3"]);
    assert_eq!(a.dig(&["bee.front"]).data("A"), vec!["10.123.0.3"]);
    assert_eq!(a.dig(&["AAAA", "bee"]).data("AAAA"), vec!["fd12:3::3"]);
    // Round robin: both members of the alias, in turning order.
    let first = a.dig(&["svc"]).data("A");
    let second = a.dig(&["svc"]).data("A");
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["10.123.0.3", "10.123.0.4"]);
    assert_ne!(first, second, "the order turns between answers");
    // PTR of a container address.
    assert_eq!(a.dig(&["-x", "10.123.0.4"]).data("PTR"), vec!["cee.front."]);
    assert_eq!(a.dig(&["-x", "fd12:3::3"]).data("PTR"), vec!["bee.front."]);
    // A name that exists with no record of the type: NOERROR, empty (NODATA), no SOA.
    let d = a.dig(&["AAAA", "cee"]);
    assert_eq!(d.status, "NOERROR");
    assert!(d.answers.is_empty());
    assert!(d.raw.contains("AUTHORITY: 0"), "{}", d.raw);
    let d = a.dig(&["MX", "bee"]);
    assert_eq!(d.status, "NOERROR");
    assert!(d.answers.is_empty());
    // Not on a shared network, unknown single label: NXDOMAIN, no SOA.
    for name in ["dee", "nosuchname"] {
        let d = a.dig(&[name]);
        assert_eq!(d.status, "NXDOMAIN", "{name}: {}", d.raw);
        assert!(d.raw.contains("AUTHORITY: 0"), "{}", d.raw);
    }
    // Over TCP too.
    let d = a.dig(&["+tcp", "bee"]);
    assert_eq!(d.data("A"), vec!["10.123.0.3"], "{}", d.raw);
    assert_eq!(a.dig(&["+tcp", "nosuchname"]).status, "NXDOMAIN");
}

#[test]
fn answers_follow_containers_and_detach_stops_serving() {
    let server = DnsServer::start(config()).unwrap();
    populate(server.records());
    let a = Ns::new();
    let d_ns = Ns::new();
    attach(&server, "a", &a, vec![]);
    attach(&server, "d", &d_ns, vec![]);
    assert_eq!(a.dig(&["dee"]).status, "NXDOMAIN");
    // d joins front: a sees it; d sees a.
    server.records().set_endpoint(
        "n-front",
        "front",
        ep("d", dns_names("dee", &[], "d", None), "10.123.0.9", None),
    );
    assert_eq!(a.dig(&["dee"]).data("A"), vec!["10.123.0.9"]);
    assert_eq!(d_ns.dig(&["-q", "a"]).data("A"), vec!["10.123.0.2"]);
    // From back, d still reaches d's back address first (it joined back first).
    assert_eq!(d_ns.dig(&["dee"]).data("A"), vec!["10.124.0.2"]);
    // c stops: the alias has one member left.
    server.records().remove_container("c");
    assert_eq!(a.dig(&["svc"]).data("A"), vec!["10.123.0.3"]);
    assert_eq!(a.dig(&["cee"]).status, "NXDOMAIN");

    assert_eq!(
        {
            let mut v = server.attached();
            v.sort();
            v
        },
        vec!["a", "d"]
    );
    server.detach("d");
    assert_eq!(server.attached(), vec!["a"]);
    let gone = d_ns.dig(&["-q", "a"]);
    assert!(gone.status.is_empty(), "{}", gone.raw);
    // Once detach returns, the address is free: attaching again binds it again, every time.
    for _ in 0..50 {
        attach(&server, "d", &d_ns, vec![]);
        server.detach("d");
    }
    attach(&server, "d", &d_ns, vec![]);
    assert_eq!(d_ns.dig(&["-q", "a"]).data("A"), vec!["10.123.0.2"]);
}

#[test]
fn a_restarted_server_serves_attached_containers_again() {
    let a = Ns::new();
    {
        let server = DnsServer::start(config()).unwrap();
        populate(server.records());
        attach(&server, "a", &a, vec![]);
        assert_eq!(a.dig(&["bee"]).data("A"), vec!["10.123.0.3"]);
    }
    // The old server is gone with its sockets; a new one attaches the running container.
    assert!(a.dig(&["bee"]).status.is_empty());
    let server = DnsServer::start(config()).unwrap();
    populate(server.records());
    attach(&server, "a", &a, vec![]);
    assert_eq!(a.dig(&["bee"]).data("A"), vec!["10.123.0.3"]);
}

#[test]
fn truncated_local_answers_fall_back_to_tcp() {
    let server = DnsServer::start(config()).unwrap();
    let r = server.records();
    for i in 0..120u8 {
        r.set_endpoint(
            "n",
            "many",
            ep(
                &format!("m{i}"),
                vec![format!("m{i}"), "crowd".into()],
                &format!("10.77.0.{i}"),
                None,
            ),
        );
    }
    let a = Ns::new();
    attach(&server, "m0", &a, vec![]);
    let d = a.dig(&["+noedns", "+ignore", "crowd"]);
    assert!(d.flags.contains(&"tc".to_string()), "{}", d.raw);
    assert!(!d.answers.is_empty() && d.answers.len() < 120);
    // dig retries over TCP on TC, as resolvers do, and gets all of them.
    let d = a.dig(&["+noedns", "crowd"]);
    assert_eq!(d.data("A").len(), 120, "{}", d.raw);
    assert!(!d.flags.contains(&"tc".to_string()));
    // With a large EDNS buffer they fit in UDP.
    let d = a.dig(&["+bufsize=4096", "+ignore", "crowd"]);
    assert_eq!(d.data("A").len(), 120);
    assert_eq!(d.udp_size, Some(4096), "{}", d.raw);
}

/// A stub upstream resolver on sockets the test provides.
struct Stub {
    addr: SocketAddr,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What the stub answers: `example.test` A 192.0.2.7 (with AA set and EDNS payload 1234, to
/// show flags and EDNS are relayed as sent); `big.test` truncated over UDP and 60 records over
/// TCP; `fail.test` SERVFAIL; `silent.test` nothing; anything else NXDOMAIN.
fn stub_answer(raw: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(raw).ok()?;
    let query = q.queries.first()?.clone();
    let name = query.name().to_ascii().to_ascii_lowercase();
    let mut m = Message::response(q.metadata.id, q.metadata.op_code);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_query(query.clone());
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1234);
        m.set_edns(e);
    }
    let rec = |ip: Ipv4Addr| Record::from_rdata(query.name().clone(), 42, RData::A(A(ip)));
    match name.as_str() {
        "example.test." => {
            m.metadata.authoritative = true;
            m.add_answer(rec(Ipv4Addr::new(192, 0, 2, 7)));
        }
        "big.test." if !tcp => m.metadata.truncation = true,
        "big.test." => {
            for i in 0..60 {
                m.add_answer(rec(Ipv4Addr::new(192, 0, 2, i)));
            }
        }
        "fail.test." => m.metadata.response_code = ResponseCode::ServFail,
        "silent.test." => return None,
        _ => m.metadata.response_code = ResponseCode::NXDomain,
    }
    m.to_vec().ok()
}

impl Stub {
    fn on_host() -> Stub {
        loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr) {
                return Stub::serve(udp, tcp);
            }
        }
    }

    /// A stub inside `ns` on 127.0.0.1 (for `--dns` servers, asked from the container).
    fn in_ns(ns: &Ns) -> Stub {
        let (udp, tcp) = ns.within(|| {
            let udp = UdpSocket::bind("127.0.0.1:5300").unwrap();
            let tcp = TcpListener::bind("127.0.0.1:5300").unwrap();
            (udp, tcp)
        });
        Stub::serve(udp, tcp)
    }

    fn serve(udp: UdpSocket, tcp: TcpListener) -> Stub {
        let addr = udp.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (s1, c1, seen1) = (stop.clone(), udp_queries.clone(), seen.clone());
        let t1 = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s1.load(Ordering::SeqCst) {
                if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                    c1.fetch_add(1, Ordering::SeqCst);
                    if let Ok(m) = Message::from_vec(&buf[..n]) {
                        if let Some(q) = m.queries.first() {
                            seen1.lock().unwrap().push(q.name().to_ascii());
                        }
                    }
                    if let Some(b) = stub_answer(&buf[..n], false) {
                        let _ = udp.send_to(&b, peer);
                    }
                }
            }
        });
        let (s2, c2) = (stop.clone(), tcp_queries.clone());
        let t2 = std::thread::spawn(move || {
            use std::io::{Read, Write};
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
                if let Some(b) = stub_answer(&q, true) {
                    let mut out = (b.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&b);
                    let _ = st.write_all(&out);
                }
            }
        });
        Stub {
            addr,
            udp_queries,
            tcp_queries,
            seen,
            stop,
            threads: vec![t1, t2],
        }
    }

    fn host_upstream(&self) -> Upstream {
        Upstream {
            addr: self.addr,
            from_host: true,
        }
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

#[test]
fn forwards_to_a_loopback_stub_on_the_host_faithfully() {
    let server = DnsServer::start(config()).unwrap();
    populate(server.records());
    let stub = Stub::on_host();
    let a = Ns::new();
    attach(&server, "a", &a, vec![stub.host_upstream()]);

    let d = a.dig(&["example.test"]);
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    assert_eq!(d.data("A"), vec!["192.0.2.7"]);
    // The upstream's flags (aa), TTL and EDNS payload come through unchanged.
    assert!(d.flags.contains(&"aa".to_string()), "{}", d.raw);
    assert!(d.raw.contains("\t42\tIN\tA\t192.0.2.7"), "{}", d.raw);
    assert_eq!(d.udp_size, Some(1234), "{}", d.raw);
    let d = a.dig(&["+noedns", "example.test"]);
    assert_eq!(d.udp_size, None, "{}", d.raw);
    // Upstream NXDOMAIN is relayed; container names never go upstream.
    assert_eq!(a.dig(&["nothing.test"]).status, "NXDOMAIN");
    a.dig(&["bee"]);
    a.dig(&["nosuchname"]);
    let seen = stub.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|n| n.ends_with(".test.")),
        "only forwarded names reach upstream: {seen:?}"
    );
    // A truncated UDP answer goes back as it is to a UDP client, which retries over TCP;
    // the server then asks upstream over UDP, sees TC and asks over TCP.
    let d = a.dig(&["+ignore", "big.test"]);
    assert!(d.flags.contains(&"tc".to_string()), "{}", d.raw);
    let tcp_before = stub.tcp_queries.load(Ordering::SeqCst);
    let d = a.dig(&["big.test"]);
    assert_eq!(d.data("A").len(), 60, "{}", d.raw);
    assert_eq!(stub.tcp_queries.load(Ordering::SeqCst), tcp_before + 1);
    // A SERVFAIL from the only upstream: SERVFAIL.
    assert_eq!(a.dig(&["fail.test"]).status, "SERVFAIL");
    // No answer within the timeout: SERVFAIL.
    assert_eq!(a.dig(&["silent.test"]).status, "SERVFAIL");
}

#[test]
fn next_upstream_after_a_dead_or_failing_one() {
    let server = DnsServer::start(config()).unwrap();
    let stub = Stub::on_host();
    // A port nothing listens on (refused at once), then a server that never answers, then the
    // stub.
    let dead = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let black_hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = Ns::new();
    let ups = vec![
        Upstream {
            addr: dead,
            from_host: true,
        },
        Upstream {
            addr: black_hole.local_addr().unwrap(),
            from_host: true,
        },
        stub.host_upstream(),
    ];
    attach(&server, "a", &a, ups);
    let d = a.dig(&["example.test"]);
    assert_eq!(d.data("A"), vec!["192.0.2.7"], "{}", d.raw);

    // A container with no way out does not use the host's servers.
    server
        .attach(Attachment {
            container_id: "a".into(),
            netns: a.path(),
            upstreams: vec![stub.host_upstream()],
            external_access: false,
        })
        .unwrap();
    let before = stub.udp_queries.load(Ordering::SeqCst);
    assert_eq!(a.dig(&["example.test"]).status, "SERVFAIL");
    assert_eq!(stub.udp_queries.load(Ordering::SeqCst), before);
}

#[test]
fn dns_servers_are_asked_from_the_container_namespace() {
    let server = DnsServer::start(config()).unwrap();
    let a = Ns::new();
    // The stub listens on 127.0.0.1:5300 *inside* the container's namespace: only a query
    // sent from there can reach it.
    let stub = Stub::in_ns(&a);
    attach(
        &server,
        "a",
        &a,
        vec![Upstream {
            addr: "127.0.0.1:5300".parse().unwrap(),
            from_host: false,
        }],
    );
    let d = a.dig(&["example.test"]);
    assert_eq!(d.data("A"), vec!["192.0.2.7"], "{}", d.raw);
    let d = a.dig(&["+tcp", "big.test"]);
    assert_eq!(d.data("A").len(), 60, "{}", d.raw);
    assert!(stub.tcp_queries.load(Ordering::SeqCst) >= 1);
}

#[test]
fn default_bridge_container_gets_a_plain_forwarder() {
    let server = DnsServer::start(config()).unwrap();
    populate(server.records());
    let stub = Stub::on_host();
    let plain = Ns::new();
    // No records for "plain": every name goes upstream, single labels too, container names
    // of others are not visible.
    attach(&server, "plain", &plain, vec![stub.host_upstream()]);
    assert_eq!(plain.dig(&["example.test"]).data("A"), vec!["192.0.2.7"]);
    assert_eq!(plain.dig(&["bee"]).status, "NXDOMAIN");
    assert!(stub.seen.lock().unwrap().contains(&"bee.".to_string()));
}

fn query_bytes(id: u16, name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

/// Sends one query from inside `ns` over UDP and waits for the answer with that ID.
fn ask_udp(sock: &UdpSocket, id: u16, name: &str) -> Option<Message> {
    sock.send(&query_bytes(id, name, RecordType::A)).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            if let Ok(m) = Message::from_vec(&buf[..n]) {
                if m.metadata.id == id {
                    return Some(m);
                }
            }
        }
    }
    None
}

fn udp_client(ns: &Ns) -> UdpSocket {
    let s = ns.within(|| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect("127.0.0.11:53").unwrap();
        s
    });
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

#[test]
fn hostile_packets_get_formerr_or_nothing_and_serving_goes_on() {
    let server = DnsServer::start(config()).unwrap();
    populate(server.records());
    let a = Ns::new();
    attach(&server, "a", &a, vec![]);
    let sock = udp_client(&a);
    let mut buf = [0u8; 4096];

    // Garbage after a valid header: FORMERR with the same ID.
    sock.send(&[0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0])
        .unwrap();
    let n = sock.recv(&mut buf).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 0x4242);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Runts and responses: no answer at all.
    sock.send(&[1, 2, 3]).unwrap();
    let mut resp = query_bytes(7, "bee.", RecordType::A);
    resp[2] |= 0x80;
    sock.send(&resp).unwrap();
    assert!(
        sock.recv(&mut buf).is_err(),
        "no answer to a runt or a response"
    );
    // Pseudo-random junk of every length, then a real query still answers.
    let mut x: u32 = 0x1234_5678;
    for len in 0..600 {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        sock.send(&junk).unwrap();
    }
    // An oversized datagram is dropped.
    sock.send(&vec![0u8; 9000]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    while sock.recv(&mut buf).is_ok() {}
    let m = ask_udp(&sock, 0x7777, "bee.").expect("still answering");
    assert_eq!(m.answers.len(), 1);

    // TCP: a stalled connection and garbage framing do not block other connections.
    let stalled = a.within(|| TcpStream::connect("127.0.0.11:53").unwrap());
    use std::io::{Read, Write};
    let mut garbage = a.within(|| TcpStream::connect("127.0.0.11:53").unwrap());
    garbage.write_all(&[0, 5, 1, 2, 3, 4, 5]).unwrap();
    let d = a.dig(&["+tcp", "bee"]);
    assert_eq!(d.data("A"), vec!["10.123.0.3"], "{}", d.raw);
    // The garbage query was 5 bytes: too short for a header, no answer; the connection stays
    // usable for a real query.
    let q = query_bytes(9, "cee.", RecordType::A);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    garbage.write_all(&framed).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut len = [0u8; 2];
    garbage.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    garbage.read_exact(&mut body).unwrap();
    assert_eq!(Message::from_vec(&body).unwrap().metadata.id, 9);
    drop(stalled);
}

#[test]
fn too_many_queries_in_flight_are_refused() {
    let cfg = DnsConfig {
        max_forwards_per_container: 4,
        upstream_timeout: Duration::from_secs(3),
        ..DnsConfig::default()
    };
    let server = DnsServer::start(cfg).unwrap();
    let black_hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = Ns::new();
    attach(
        &server,
        "a",
        &a,
        vec![Upstream {
            addr: black_hole.local_addr().unwrap(),
            from_host: true,
        }],
    );
    let sock = udp_client(&a);
    for id in 0..4u16 {
        sock.send(&query_bytes(id, "slow.test.", RecordType::A))
            .unwrap();
    }
    // The fifth waits for no one: REFUSED at once.
    let m = ask_udp(&sock, 99, "slow.test.").expect("an immediate answer");
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn a_flooding_container_does_not_starve_others() {
    let server = DnsServer::start(config()).unwrap();
    populate(server.records());
    server.records().set_endpoint(
        "n-front",
        "front",
        ep(
            "flood",
            dns_names("flood", &[], "flood", None),
            "10.123.0.66",
            None,
        ),
    );
    let a = Ns::new();
    let flood_ns = Ns::new();
    attach(&server, "a", &a, vec![]);
    attach(&server, "flood", &flood_ns, vec![]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let floods: Vec<_> = (0..2)
        .map(|i| {
            let sock = udp_client(&flood_ns);
            sock.set_nonblocking(true).unwrap();
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let q = query_bytes(i, "bee.", RecordType::A);
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::SeqCst) {
                    if sock.send(&q).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    while sock.recv(&mut buf).is_ok() {}
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Others' lookups are answered, and a new container is attached, while the flood goes on.
    for _ in 0..10 {
        let d = a.dig(&["bee"]);
        assert_eq!(d.data("A"), vec!["10.123.0.3"], "{}", d.raw);
    }
    let late = Ns::new();
    attach(&server, "c", &late, vec![]);
    assert_eq!(late.dig(&["bee"]).data("A"), vec!["10.123.0.3"]);
    stop.store(true, Ordering::SeqCst);
    for f in floods {
        f.join().unwrap();
    }
    assert!(sent.load(Ordering::Relaxed) > 1000, "the flood did flood");
}
