//! Root test: a bridge, a namespace and a veth pair set up through netlink, and a TCP
//! connection from the host to a listener inside the namespace. Own names and subnet; cleaned
//! up on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use berth_net::{ipam, link, netns};

struct Guard {
    bridge: String,
    ns: std::path::PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = netns::remove(&self.ns);
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_veth_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let tag = format!("{:05x}", std::process::id() & 0xfffff);
    let bridge = format!("btn{tag}");
    let octet = (std::process::id() % 200) as u8 + 20;
    let g = Guard {
        bridge: bridge.clone(),
        ns: tmp.path().join("ns1"),
    };
    let subnet: ipnet::Ipv4Net = format!("10.251.{octet}.0/24").parse().unwrap();
    let gw = ipam::first_host(&subnet);
    let host = link::Host::connect().unwrap();
    let t0 = Instant::now();
    let br = host
        .ensure_bridge(&bridge, gw, 24, None, None)
        .await
        .unwrap();
    // Idempotent.
    assert_eq!(
        host.ensure_bridge(&bridge, gw, 24, None, None)
            .await
            .unwrap(),
        br
    );
    let t_bridge = t0.elapsed();

    let t0 = Instant::now();
    let ns = netns::create(&g.ns).await.unwrap();
    let t_ns = t0.elapsed();
    let ip = Ipv4Addr::new(10, 251, octet, 2);
    let veth = format!("vbt{tag}");
    host.add_veth(&veth, br, None, netns::raw(&ns), "eth0", ipam::mac_for(ip))
        .await
        .unwrap();
    link::configure_inside(&ns.handle, "eth0", ip, 24, Some(gw), None, true)
        .await
        .unwrap();
    host.set_hairpin(&veth).await.unwrap();
    let t_all = t0.elapsed();
    eprintln!("bridge {t_bridge:?}, netns {t_ns:?}, netns+veth+config {t_all:?}");

    // A listener inside the namespace, the host connects to it through the bridge.
    let nsfile = std::fs::File::open(&g.ns).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let th = std::thread::spawn(move || {
        nix::sched::setns(nsfile.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind((ip, 7000)).unwrap();
        tx.send(()).unwrap();
        let (mut s, peer) = l.accept().unwrap();
        s.write_all(format!("hello {}", peer.ip()).as_bytes())
            .unwrap();
    });
    rx.recv().unwrap();
    let mut s = TcpStream::connect_timeout(&(ip, 7000).into(), Duration::from_secs(5)).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, format!("hello {gw}"));
    th.join().unwrap();

    // The netlink socket inside holds the namespace: drop it first, as the engine does.
    drop(ns);
    netns::remove(&g.ns).unwrap();
    assert!(!g.ns.exists());
    // The host end goes with the namespace (asynchronously in the kernel).
    let gone = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        !std::path::Path::new("/sys/class/net").join(&veth).exists()
    });
    assert!(gone, "{veth} outlived its namespace");
    host.delete_link(&bridge).await.unwrap();
    assert!(host.link_index(&bridge).await.unwrap().is_none());
}
