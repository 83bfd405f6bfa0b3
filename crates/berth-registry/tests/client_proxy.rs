//! The registry client honours the proxy environment (HTTP_PROXY/NO_PROXY), as dockerd does.
//! (Its own test binary: the environment is process-wide.)

mod common;

use std::sync::{Arc, Mutex};

use berth_registry::client::{Access, ClientConfig, Credentials, RegistryClient};
use common::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A forward proxy for plain HTTP that relays to `target` and records the request lines it
/// saw (absolute-form URIs, as clients send them to proxies).
async fn proxy(target: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            let target = target.clone();
            let seen = s2.clone();
            tokio::spawn(async move {
                let mut first = vec![0u8; 4096];
                let n = c.peek(&mut first).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&first[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                seen.lock().unwrap().push(line);
                let Ok(mut up) = TcpStream::connect(&target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
                let _ = c.read(&mut [0u8; 1]).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy() {
    let r = TestRegistry::start(|_| {}).await;
    let target = r.base.trim_start_matches("http://").to_string();
    r.push_image("me/app", "v1", "proxied").await;
    let (paddr, seen) = proxy(target.clone()).await;
    // This test binary has a single test: nothing else reads the environment meanwhile.
    std::env::set_var("HTTP_PROXY", format!("http://{paddr}"));
    std::env::set_var("HTTPS_PROXY", format!("http://{paddr}"));
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let c = RegistryClient::new(ClientConfig::default()).unwrap();
    let repo = c
        .open_registry(&target, "me/app", Credentials::default(), Access::Pull)
        .await
        .unwrap();
    assert_eq!(repo.endpoint().base.scheme(), "http");
    let m = repo.get_manifest("v1").await.unwrap();
    assert!(!m.bytes.is_empty());
    let lines = seen.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("GET http://{target}/v2/"))),
        "{lines:?}"
    );
}
