//! What berth reads about the host's networking: its IPv4 routes (so a new subnet collides
//! with nothing) and whether a kernel feature is there.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The host's IPv4 routes (`/proc/net/route`) as (interface, destination), the default route
/// left out.
pub fn host_routes() -> Vec<(String, Ipv4Net)> {
    parse_proc_route(&std::fs::read_to_string("/proc/net/route").unwrap_or_default())
}

/// Parses `/proc/net/route`: hex little-endian destination and mask per line.
pub fn parse_proc_route(text: &str) -> Vec<(String, Ipv4Net)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        let dst = Ipv4Addr::from(u32::from_be(dst));
        let mask = u32::from_be(mask);
        if mask == 0 {
            continue;
        }
        let prefix = mask.count_ones() as u8;
        if let Ok(n) = Ipv4Net::new(dst, prefix) {
            out.push((f[0].to_string(), n.trunc()));
        }
    }
    out
}

/// Interface names of the host (`/sys/class/net`).
pub fn interface_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_route() {
        let t =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
br\t0000D20A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
garbage\n";
        assert_eq!(
            parse_proc_route(t),
            vec![
                (
                    "eth0".to_string(),
                    "192.0.2.0/24".parse::<Ipv4Net>().unwrap()
                ),
                ("br".to_string(), "10.210.0.0/16".parse().unwrap())
            ]
        );
    }
}
