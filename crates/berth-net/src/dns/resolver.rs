//! What to do with one packet a container sent to 127.0.0.11: answer it from the records,
//! forward it upstream, or drop it. Pure logic over bytes, no I/O, so the hostile-input
//! properties (any bytes in → no panic, a well-formed reply or nothing) are tested directly.
//!
//! Answers follow Docker's embedded DNS (moby `libnetwork/resolver.go`): A and AAAA records of
//! container names, aliases, short IDs and hostnames on the networks the asker shares with the
//! target (TTL 600, RA set, AA clear), PTR records `<name>.<network>` for their addresses. A name
//! that exists but has no record of the asked type answers NOERROR with no records (NODATA); an
//! unknown single-label name asked for A/AAAA answers NXDOMAIN without a trip upstream. Neither
//! carries an SOA: berth is not authoritative for a zone, it only knows names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::records::Snapshot;

/// TTL of the records the server answers itself (Docker's `respTTL`).
pub(crate) const TTL: u32 = 600;
/// The UDP payload size the server accepts and advertises in its own EDNS answers.
pub(crate) const UDP_PAYLOAD: usize = 4096;
/// Largest DNS message (TCP framing has a 16-bit length).
pub(crate) const MAX_MESSAGE: usize = 65535;
/// Classic DNS-over-UDP limit when the client advertises no EDNS payload size.
const MIN_UDP: usize = 512;

/// How the query arrived; decides the size limit of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

#[derive(Debug)]
pub(crate) enum Verdict {
    /// Send these bytes back to the client.
    Reply(Vec<u8>),
    /// Not a name the server answers: relay the query's original bytes upstream.
    Forward(Box<Message>),
    /// Not a query (too short to carry an ID, or a response): no answer at all.
    Drop,
}

/// Decides what to do with `raw`, a packet the container `asker` sent over `transport`.
/// `rotate` turns the order of several addresses (round robin between calls).
pub(crate) fn handle(
    raw: &[u8],
    transport: Transport,
    asker: &str,
    snap: &Snapshot,
    rotate: usize,
) -> Verdict {
    if raw.len() < 12 || raw[2] & 0x80 != 0 {
        // Shorter than a header (no ID to answer to), or a response: never answered, so
        // two resolvers can not be made to ping-pong.
        return Verdict::Drop;
    }
    if !counts_plausible(raw) {
        return Verdict::Reply(formerr_header(raw));
    }
    let msg = match Message::from_vec(raw) {
        Ok(m) => m,
        Err(_) => return Verdict::Reply(formerr_header(raw)),
    };
    if msg.metadata.op_code != OpCode::Query {
        return reply_code(&msg, ResponseCode::NotImp, transport);
    }
    if msg.queries.len() != 1 {
        return reply_code(&msg, ResponseCode::FormErr, transport);
    }
    if msg.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return reply_code(&msg, ResponseCode::BADVERS, transport);
    }
    let q = &msg.queries[0];
    if q.query_class() != DNSClass::IN || !snap.has_networks(asker) {
        // A container with no user-defined network (the default bridge) gets no names, as in
        // Docker: the server is only its forwarder.
        return Verdict::Forward(Box::new(msg));
    }
    let qtype = q.query_type();
    if qtype == RecordType::PTR {
        if let Some(host) = arpa_to_ip(q.name()).and_then(|ip| snap.reverse(asker, ip)) {
            if let Ok(target) = Name::from_ascii(format!("{host}.")) {
                let mut m = reply_to(&msg);
                m.add_answer(Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                ));
                return encode_reply(m, &msg, transport);
            }
        }
    }
    let Some(name) = plain_name(q.name()) else {
        return Verdict::Forward(Box::new(msg));
    };
    if let Some(addrs) = snap.resolve(asker, &name) {
        let mut m = reply_to(&msg);
        let owner = q.name().clone();
        if matches!(qtype, RecordType::A | RecordType::ANY) {
            for ip in rotated(&addrs.v4, rotate) {
                m.add_answer(Record::from_rdata(owner.clone(), TTL, RData::A(A(ip))));
            }
        }
        if matches!(qtype, RecordType::AAAA | RecordType::ANY) {
            for ip in rotated(&addrs.v6, rotate) {
                m.add_answer(Record::from_rdata(
                    owner.clone(),
                    TTL,
                    RData::AAAA(AAAA(ip)),
                ));
            }
        }
        // Any other type of a name that exists: NOERROR, no records (NODATA).
        return encode_reply(m, &msg, transport);
    }
    if q.name().num_labels() == 1
        && matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY)
    {
        // A single-label name is a container name or nothing: with `ndots:0` the client tries
        // its search domains next, so nothing is lost by not asking upstream.
        return reply_code(&msg, ResponseCode::NXDomain, transport);
    }
    Verdict::Forward(Box::new(msg))
}

/// The SERVFAIL answer to a query no upstream answered (or REFUSED when the container has too
/// many queries in flight).
pub(crate) fn failure(
    query: &Message,
    code: ResponseCode,
    transport: Transport,
) -> Option<Vec<u8>> {
    match reply_code(query, code, transport) {
        Verdict::Reply(b) => Some(b),
        _ => None,
    }
}

/// What matters of an upstream's answer, once it is known to answer our query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpstreamReply {
    pub truncated: bool,
    pub rcode: u8,
}

/// Checks that `raw` is a response to `query` (same ID, opcode and question) before it is
/// relayed; anything else (a stray or spoofed datagram) is ignored.
pub(crate) fn check_upstream(query: &Message, raw: &[u8]) -> Option<UpstreamReply> {
    let mut d = BinDecoder::new(raw);
    let h = Header::read(&mut d).ok()?;
    if h.metadata.id != query.metadata.id
        || h.metadata.message_type != MessageType::Response
        || h.metadata.op_code != query.metadata.op_code
    {
        return None;
    }
    let rcode = raw[3] & 0x0f;
    match h.counts.queries {
        // Some servers drop the question from error answers.
        0 if rcode != 0 => {}
        1 => {
            let q = Query::read(&mut d).ok()?;
            let ours = query.queries.first()?;
            // Name equality is case-insensitive (clients may randomise case, RFC draft 0x20).
            if q.name() != ours.name()
                || q.query_type() != ours.query_type()
                || q.query_class() != ours.query_class()
            {
                return None;
            }
        }
        _ => return None,
    }
    Some(UpstreamReply {
        truncated: h.metadata.truncation,
        rcode,
    })
}

/// Whether the section counts of the header can fit in the packet (a question takes at least
/// 5 bytes, a record 11): rejects, before decoding, packets whose counts would only make the
/// decoder reserve memory for records that are not there.
fn counts_plausible(raw: &[u8]) -> bool {
    let count = |i: usize| usize::from(u16::from_be_bytes([raw[i], raw[i + 1]]));
    let need = count(4) * 5 + (count(6) + count(8) + count(10)) * 11;
    need <= raw.len() - 12
}

/// A header-only FORMERR answer for a packet that does not decode: same ID, opcode and RD.
fn formerr_header(raw: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 12];
    h[0] = raw[0];
    h[1] = raw[1];
    h[2] = 0x80 | (raw[2] & 0x79); // QR, opcode, RD
    h[3] = 0x80 | 1; // RA, FORMERR
    h
}

fn reply_to(query: &Message) -> Message {
    let mut m = Message::response(query.metadata.id, query.metadata.op_code);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.checking_disabled = query.metadata.checking_disabled;
    m.metadata.recursion_available = true;
    m.queries = query.queries.clone();
    if query.edns.is_some() {
        // RFC 6891 6.1.1: a query with OPT gets an answer with OPT.
        let mut e = Edns::new();
        e.set_max_payload(UDP_PAYLOAD as u16);
        m.edns = Some(e);
    }
    m
}

fn reply_code(query: &Message, code: ResponseCode, transport: Transport) -> Verdict {
    let mut m = reply_to(query);
    if query.queries.len() > 1 {
        m.queries.truncate(1);
    }
    m.metadata.response_code = code;
    if code.high() > 0 && m.edns.is_none() {
        // An extended code needs an OPT record to carry its high bits.
        m.edns = Some(Edns::new());
    }
    encode_reply(m, query, transport)
}

/// The largest answer the client accepts.
fn size_limit(query: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => MAX_MESSAGE,
        Transport::Udp => query
            .edns
            .as_ref()
            .map_or(MIN_UDP, |e| usize::from(e.max_payload()).max(MIN_UDP)),
    }
}

/// Encodes an answer within the client's size limit: if the records do not all fit, as many
/// as fit are kept and TC is set, so the client asks again over TCP.
fn encode_reply(mut m: Message, query: &Message, transport: Transport) -> Verdict {
    let limit = size_limit(query, transport);
    let Ok(full) = m.to_vec() else {
        return Verdict::Drop;
    };
    if full.len() <= limit {
        return Verdict::Reply(full);
    }
    let all = std::mem::take(&mut m.answers);
    m.metadata.truncation = true;
    // The largest prefix of the answers that fits (binary search; 0 always fits: a header
    // and one question are at most 12 + 255 + 4 bytes).
    let (mut lo, mut hi) = (0usize, all.len() - 1);
    let mut best = None;
    while lo <= hi {
        let mid = (lo + hi) / 2;
        m.answers = all[..mid].to_vec();
        match m.to_vec() {
            Ok(b) if b.len() <= limit => {
                best = Some(b);
                lo = mid + 1;
            }
            _ => {
                if mid == 0 {
                    break;
                }
                hi = mid - 1;
            }
        }
    }
    best.map_or(Verdict::Drop, Verdict::Reply)
}

fn rotated<T: Copy>(v: &[T], by: usize) -> impl Iterator<Item = T> + '_ {
    let n = v.len().max(1);
    v.iter().cycle().skip(by % n).take(v.len()).copied()
}

/// The name as lower-case text without the trailing dot, when it can be a container name:
/// labels of printable ASCII without dots (a label holding an escaped dot is not a name the
/// records can have).
fn plain_name(name: &Name) -> Option<String> {
    let mut out = String::new();
    for label in name.iter() {
        if label.is_empty() || label.iter().any(|&b| b == b'.' || !b.is_ascii_graphic()) {
            return None;
        }
        if !out.is_empty() {
            out.push('.');
        }
        for &b in label {
            out.push(char::from(b.to_ascii_lowercase()));
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// The address of a full reverse name: `d.c.b.a.in-addr.arpa` (canonical decimal octets) or
/// the 32 nibbles of `...ip6.arpa`. Partial reverse names (networks) are not addresses.
pub(crate) fn arpa_to_ip(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let n = labels.len();
    if n < 2 || !labels[n - 1].eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    if labels[n - 2].eq_ignore_ascii_case(b"in-addr") && n == 6 {
        let mut octets = [0u8; 4];
        for (i, label) in labels[..4].iter().enumerate() {
            let s = std::str::from_utf8(label).ok()?;
            let canonical = !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            if !canonical {
                return None;
            }
            octets[3 - i] = s.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if labels[n - 2].eq_ignore_ascii_case(b"ip6") && n == 34 {
        let mut v: u128 = 0;
        for label in labels[..32].iter().rev() {
            if label.len() != 1 {
                return None;
            }
            let nibble = char::from(label[0]).to_digit(16)?;
            v = (v << 4) | u128::from(nibble);
        }
        return Some(IpAddr::V6(Ipv6Addr::from(v)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::records::{EndpointRecord, Records};
    use proptest::prelude::*;

    fn records() -> Records {
        let r = Records::new();
        let ep = |id: &str, names: &[&str], v4: Option<&str>, v6: Option<&str>| EndpointRecord {
            container_id: id.into(),
            dns_names: names.iter().map(|s| s.to_string()).collect(),
            ipv4: v4.map(|s| s.parse().unwrap()),
            ipv6: v6.map(|s| s.parse().unwrap()),
        };
        r.set_endpoint("n1", "app", ep("asker", &["asker"], Some("10.9.0.2"), None));
        r.set_endpoint(
            "n1",
            "app",
            ep("w1", &["web1", "web"], Some("10.9.0.3"), Some("fd09::3")),
        );
        r.set_endpoint(
            "n1",
            "app",
            ep("w2", &["web2", "web"], Some("10.9.0.4"), None),
        );
        r.set_endpoint("n1", "app", ep("v6", &["only6"], None, Some("fd09::5")));
        r.set_endpoint(
            "n2",
            "other",
            ep("hidden", &["hidden"], Some("10.8.0.2"), None),
        );
        r
    }

    fn query(name: &str, t: RecordType, edns: Option<u16>) -> (Message, Vec<u8>) {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.edns = Some(e);
        }
        let raw = m.to_vec().unwrap();
        (m, raw)
    }

    fn answer(name: &str, t: RecordType, transport: Transport, rotate: usize) -> Message {
        let (_, raw) = query(name, t, None);
        let snap = records().snapshot();
        match handle(&raw, transport, "asker", &snap, rotate) {
            Verdict::Reply(b) => Message::from_vec(&b).unwrap(),
            v => panic!("expected a reply for {name}, got {v:?}"),
        }
    }

    fn forwarded(name: &str, t: RecordType) -> bool {
        let (_, raw) = query(name, t, None);
        let snap = records().snapshot();
        matches!(
            handle(&raw, Transport::Udp, "asker", &snap, 0),
            Verdict::Forward(_)
        )
    }

    fn ips(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn a_and_aaaa_of_names_and_aliases() {
        let m = answer("web1.", RecordType::A, Transport::Udp, 0);
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_available && m.metadata.recursion_desired);
        assert!(!m.metadata.authoritative);
        assert_eq!(ips(&m), vec!["10.9.0.3"]);
        assert_eq!(m.answers[0].ttl, TTL);
        assert_eq!(
            ips(&answer("WEB1.", RecordType::AAAA, Transport::Udp, 0)),
            vec!["fd09::3"]
        );
        // The answer's owner name keeps the client's spelling.
        assert_eq!(
            answer("WeB1.", RecordType::A, Transport::Udp, 0).answers[0]
                .name
                .to_ascii(),
            "WeB1."
        );
        let mut all = ips(&answer("web.", RecordType::A, Transport::Udp, 0));
        all.sort();
        assert_eq!(all, vec!["10.9.0.3", "10.9.0.4"]);
        assert_eq!(
            ips(&answer("web.", RecordType::ANY, Transport::Udp, 0)).len(),
            3
        );
        assert_eq!(
            ips(&answer("web1.app.", RecordType::A, Transport::Udp, 0)),
            vec!["10.9.0.3"]
        );
    }

    #[test]
    fn round_robin_rotates() {
        let a = ips(&answer("web.", RecordType::A, Transport::Udp, 0));
        let b = ips(&answer("web.", RecordType::A, Transport::Udp, 1));
        assert_eq!(a.len(), 2);
        assert_ne!(a[0], b[0]);
        assert_eq!(a[0], b[1]);
    }

    #[test]
    fn nodata_vs_nxdomain() {
        // Exists, no IPv4: NOERROR with no records and no SOA.
        let m = answer("only6.", RecordType::A, Transport::Udp, 0);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty() && m.authorities.is_empty());
        let m = answer("web1.", RecordType::MX, Transport::Udp, 0);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        // Not on a shared network, unknown single labels: NXDOMAIN, no SOA.
        for n in ["hidden.", "nosuch."] {
            let m = answer(n, RecordType::A, Transport::Udp, 0);
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{n}");
            assert!(m.answers.is_empty() && m.authorities.is_empty());
            assert_eq!(m.queries.len(), 1);
        }
        let m = answer("nosuch.", RecordType::AAAA, Transport::Udp, 0);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        // Other names go upstream, also other types of unknown single labels (`NS com`).
        assert!(forwarded("example.com.", RecordType::A));
        assert!(forwarded("com.", RecordType::NS));
        assert!(forwarded("hidden.other.", RecordType::A));
        assert!(forwarded(".", RecordType::NS));
    }

    #[test]
    fn ptr_for_container_addresses() {
        let m = answer("3.0.9.10.in-addr.arpa.", RecordType::PTR, Transport::Udp, 0);
        assert_eq!(ips(&m), vec!["web1.app."]);
        let v6 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.0.d.f.ip6.arpa.";
        assert_eq!(
            ips(&answer(v6, RecordType::PTR, Transport::Udp, 0)),
            vec!["web1.app."]
        );
        // Addresses of containers on other networks and of anything else go upstream.
        assert!(forwarded("2.0.8.10.in-addr.arpa.", RecordType::PTR));
        assert!(forwarded("1.1.1.1.in-addr.arpa.", RecordType::PTR));
    }

    #[test]
    fn arpa_names() {
        let p = |s: &str| {
            let labels = s.split('.').filter(|l| !l.is_empty()).map(str::as_bytes);
            arpa_to_ip(&Name::from_labels(labels).unwrap())
        };
        assert_eq!(p("4.3.2.1.in-addr.arpa."), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(p("4.3.2.1.IN-ADDR.ARPA."), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(p("04.3.2.1.in-addr.arpa."), None);
        assert_eq!(p("256.3.2.1.in-addr.arpa."), None);
        assert_eq!(p("+4.3.2.1.in-addr.arpa."), None);
        assert_eq!(p("3.2.1.in-addr.arpa."), None);
        assert_eq!(p("5.4.3.2.1.in-addr.arpa."), None);
        assert_eq!(p("4.3.2.1.in-addr.example."), None);
        assert_eq!(p("1.0.ip6.arpa."), None);
    }

    #[test]
    fn forward_only_without_networks() {
        let (_, raw) = query("web1.", RecordType::A, None);
        let snap = records().snapshot();
        assert!(matches!(
            handle(&raw, Transport::Udp, "default-bridge-only", &snap, 0),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn edns_echoed_and_size_limits() {
        let r = Records::new();
        for i in 0..100u8 {
            r.set_endpoint(
                "n",
                "big",
                EndpointRecord {
                    container_id: format!("c{i}"),
                    dns_names: vec![format!("c{i}"), "many".into()],
                    ipv4: Some(Ipv4Addr::new(10, 7, 0, i)),
                    ipv6: None,
                },
            );
        }
        let snap = r.snapshot();
        let reply = |edns: Option<u16>, t: Transport| {
            let (_, raw) = query("many.", RecordType::A, edns);
            match handle(&raw, t, "c0", &snap, 0) {
                Verdict::Reply(b) => b,
                v => panic!("{v:?}"),
            }
        };
        let plain = reply(None, Transport::Udp);
        assert!(plain.len() <= 512);
        let m = Message::from_vec(&plain).unwrap();
        assert!(m.metadata.truncation);
        assert!(!m.answers.is_empty() && m.answers.len() < 100);
        assert!(m.edns.is_none());
        let big = reply(Some(4096), Transport::Udp);
        let m = Message::from_vec(&big).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 100);
        assert_eq!(m.edns.as_ref().unwrap().max_payload(), 4096);
        let tcp = Message::from_vec(&reply(None, Transport::Tcp)).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 100);
    }

    #[test]
    fn bad_queries_get_error_codes() {
        let snap = records().snapshot();
        // Unknown EDNS version: BADVERS (extended code, carried in OPT).
        let (mut m, _) = query("web1.", RecordType::A, Some(1232));
        m.edns.as_mut().unwrap().set_version(1);
        let raw = m.to_vec().unwrap();
        let Verdict::Reply(b) = handle(&raw, Transport::Udp, "asker", &snap, 0) else {
            panic!()
        };
        let r = Message::from_vec(&b).unwrap();
        // 16 is BADVERS in an answer to a query (hickory names it BADSIG, the TSIG meaning).
        assert_eq!(u16::from(r.metadata.response_code), 16);
        assert!(r.edns.is_some());
        // Two questions: FORMERR.
        let (mut m, _) = query("web1.", RecordType::A, None);
        m.add_query(Query::query(
            Name::from_ascii("web2.").unwrap(),
            RecordType::A,
        ));
        let raw = m.to_vec().unwrap();
        let Verdict::Reply(b) = handle(&raw, Transport::Udp, "asker", &snap, 0) else {
            panic!()
        };
        assert_eq!(
            Message::from_vec(&b).unwrap().metadata.response_code,
            ResponseCode::FormErr
        );
        // Not a QUERY: NOTIMP.
        let (mut m, _) = query("web1.", RecordType::A, None);
        m.metadata.op_code = OpCode::Status;
        let raw = m.to_vec().unwrap();
        let Verdict::Reply(b) = handle(&raw, Transport::Udp, "asker", &snap, 0) else {
            panic!()
        };
        assert_eq!(
            Message::from_vec(&b).unwrap().metadata.response_code,
            ResponseCode::NotImp
        );
        // Garbage after a header: FORMERR with the ID; a response or a runt: nothing.
        let mut junk = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let Verdict::Reply(b) = handle(&junk, Transport::Udp, "asker", &snap, 0) else {
            panic!()
        };
        assert_eq!(&b[..4], &[0xab, 0xcd, 0x81, 0x81]);
        junk[2] |= 0x80;
        assert!(matches!(
            handle(&junk, Transport::Udp, "asker", &snap, 0),
            Verdict::Drop
        ));
        assert!(matches!(
            handle(&[1, 2, 3], Transport::Udp, "asker", &snap, 0),
            Verdict::Drop
        ));
        // Counts that cannot fit: FORMERR before decoding.
        let huge = [
            0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 1, 0, 1,
        ];
        assert!(!counts_plausible(&huge));
        assert!(matches!(
            handle(&huge, Transport::Udp, "asker", &snap, 0),
            Verdict::Reply(_)
        ));
    }

    #[test]
    fn upstream_answers_are_matched_to_the_query() {
        let (q, _) = query("Example.com.", RecordType::A, None);
        let mut r = reply_to(&q);
        r.queries = vec![Query::query(
            Name::from_ascii("example.COM.").unwrap(),
            RecordType::A,
        )];
        r.metadata.truncation = true;
        let raw = r.to_vec().unwrap();
        assert_eq!(
            check_upstream(&q, &raw),
            Some(UpstreamReply {
                truncated: true,
                rcode: 0
            })
        );
        let mut other = r.clone();
        other.metadata.id ^= 1;
        assert_eq!(check_upstream(&q, &other.to_vec().unwrap()), None);
        let mut other = r.clone();
        other.queries = vec![Query::query(
            Name::from_ascii("example.org.").unwrap(),
            RecordType::A,
        )];
        assert_eq!(check_upstream(&q, &other.to_vec().unwrap()), None);
        assert_eq!(check_upstream(&q, &q.to_vec().unwrap()), None);
        let mut fail = reply_to(&q);
        fail.queries.clear();
        fail.metadata.response_code = ResponseCode::ServFail;
        assert_eq!(
            check_upstream(&q, &fail.to_vec().unwrap()).map(|u| u.rcode),
            Some(2)
        );
        assert_eq!(check_upstream(&q, &[0x12]), None);
    }

    /// Checks the contract for any input: no panic, and either nothing or a reply that decodes
    /// as a response to the same ID.
    fn check_any(raw: &[u8], snap: &Snapshot) {
        for t in [Transport::Udp, Transport::Tcp] {
            match handle(raw, t, "asker", snap, 7) {
                Verdict::Reply(b) => {
                    assert!(b.len() >= 12);
                    assert_eq!(&b[..2], &raw[..2]);
                    assert!(b[2] & 0x80 != 0, "a reply is a response");
                    assert!(b.len() <= MAX_MESSAGE);
                    Message::from_vec(&b).expect("a reply decodes");
                }
                Verdict::Forward(m) => {
                    assert_eq!(m.queries.len(), 1);
                }
                Verdict::Drop => {}
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn any_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
            let snap = records().snapshot();
            check_any(&raw, &snap);
        }

        /// Valid queries with one byte flipped or cut short: the decoder's edge cases.
        #[test]
        fn mutated_queries_never_panic(
            name in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}\\.",
            t in prop::sample::select(vec![RecordType::A, RecordType::AAAA, RecordType::PTR,
                RecordType::MX, RecordType::ANY, RecordType::TXT]),
            edns in proptest::option::of(0u16..9000),
            pos in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let snap = records().snapshot();
            let (_, mut raw) = query(&name, t, edns);
            check_any(&raw, &snap);
            let i = pos.index(raw.len());
            raw[i] = byte;
            check_any(&raw, &snap);
            raw.truncate(cut.index(raw.len() + 1));
            check_any(&raw, &snap);
        }
    }
}
