//! Load generator for `scripts/bench-registry`: pushes a test image, then measures
//! concurrent pulls (manifest HEADs, manifest GETs, whole-blob GETs) and concurrent pushes
//! against one registry, and prints one JSON line of results.
//!
//! ```text
//! registry-load --url http://127.0.0.1:5000 [--clients 64] [--rounds 2] [--heads 10]
//!               [--image-mb 100] [--layers 5] [--pushers 20] [--push-mb 6]
//! ```
//! Only loopback URLs are accepted: this is a benchmark tool, not a load-testing weapon.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::digest::Digest;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

type C = Client<HttpConnector, Full<Bytes>>;

struct Args {
    url: String,
    clients: usize,
    rounds: usize,
    heads: usize,
    image_mb: usize,
    layers: usize,
    pushers: usize,
    push_mb: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        clients: 64,
        rounds: 2,
        heads: 10,
        image_mb: 100,
        layers: 5,
        pushers: 20,
        push_mb: 6,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        let n = val.parse().unwrap_or(0);
        match v[i].as_str() {
            "--url" => a.url = val,
            "--clients" => a.clients = n,
            "--rounds" => a.rounds = n,
            "--heads" => a.heads = n,
            "--image-mb" => a.image_mb = n,
            "--layers" => a.layers = n.max(1),
            "--pushers" => a.pushers = n,
            "--push-mb" => a.push_mb = n,
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let host = a.url.trim_start_matches("http://");
    if !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")) {
        eprintln!("--url must be a loopback http:// URL");
        std::process::exit(2);
    }
    a
}

/// Deterministic pseudo-random bytes (incompressible enough, cheap to make).
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn send(
    c: &C,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (StatusCode, http::HeaderMap, usize) {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c
        .request(b.body(Full::new(body)).expect("request"))
        .await
        .expect("request failed");
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut n = 0;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.expect("body").into_data() {
            n += d.len();
        }
    }
    (status, headers, n)
}

/// Docker-style push: POST, PATCH (whole blob), PUT ?digest; then the manifest.
async fn push_image(
    c: &C,
    base: &str,
    repo: &str,
    blobs: &[(Digest, Bytes)],
    config: &(Digest, Bytes),
    lat: &mut Vec<u32>,
) {
    for (d, b) in blobs.iter().chain(std::iter::once(config)) {
        let t = Instant::now();
        let (s, h, _) = send(
            c,
            Method::POST,
            &format!("{base}/v2/{repo}/blobs/uploads/"),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "POST upload");
        let loc = h
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("location")
            .to_string();
        let loc = if loc.starts_with('/') {
            format!("{base}{loc}")
        } else {
            loc
        };
        let (s, h, _) = send(
            c,
            Method::PATCH,
            &loc,
            &[("content-type", "application/octet-stream")],
            b.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "PATCH");
        let loc = h
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("location")
            .to_string();
        let loc = if loc.starts_with('/') {
            format!("{base}{loc}")
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let (s, _, _) = send(
            c,
            Method::PUT,
            &format!("{loc}{sep}digest={d}"),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "PUT");
        lat.push(t.elapsed().as_micros() as u32);
    }
    let m = manifest(config, blobs);
    let t = Instant::now();
    let (s, _, _) = send(
        c,
        Method::PUT,
        &format!("{base}/v2/{repo}/manifests/latest"),
        &[(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        Bytes::from(m),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "PUT manifest");
    lat.push(t.elapsed().as_micros() as u32);
}

fn manifest(config: &(Digest, Bytes), blobs: &[(Digest, Bytes)]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = blobs
        .iter()
        .map(|(d, b)| serde_json::json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": b.len(), "digest": d.to_string()}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.1.len(), "digest": config.0.to_string()},
        "layers": layers,
    }))
    .expect("json")
}

fn image(seed: u64, total_mb: usize, layers: usize) -> (Vec<(Digest, Bytes)>, (Digest, Bytes)) {
    let per = total_mb * 1024 * 1024 / layers;
    let blobs: Vec<(Digest, Bytes)> = (0..layers)
        .map(|i| {
            let b = data(seed * 1000 + i as u64, per);
            (Digest::sha256_of(&b), Bytes::from(b))
        })
        .collect();
    let cfg =
        format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":{seed}}}").into_bytes();
    let config = (Digest::sha256_of(&cfg), Bytes::from(cfg));
    (blobs, config)
}

fn pct(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let base = a.url.trim_end_matches('/').to_string();
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_max_idle_per_host(a.clients.max(a.pushers));
    let client: C = b.build_http();

    // Setup: the image everybody pulls.
    let (blobs, config) = image(1, a.image_mb, a.layers);
    let mut setup = Vec::new();
    push_image(&client, &base, "bench/pull", &blobs, &config, &mut setup).await;
    let digests: Arc<Vec<String>> = Arc::new(
        blobs
            .iter()
            .map(|(d, _)| d.to_string())
            .chain([config.0.to_string()])
            .collect(),
    );

    // Pull phase.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.clients {
        let c = client.clone();
        let base = base.clone();
        let digests = digests.clone();
        let (rounds, heads) = (a.rounds, a.heads);
        tasks.push(tokio::spawn(async move {
            let mut head_lat = Vec::new();
            let mut blob_lat = Vec::new();
            let mut bytes = 0usize;
            let mut reqs = 0usize;
            for _ in 0..rounds {
                for _ in 0..heads {
                    let t = Instant::now();
                    let (s, _, _) = send(
                        &c,
                        Method::HEAD,
                        &format!("{base}/v2/bench/pull/manifests/latest"),
                        &[(
                            "accept",
                            "application/vnd.docker.distribution.manifest.v2+json",
                        )],
                        Bytes::new(),
                    )
                    .await;
                    assert_eq!(s, StatusCode::OK);
                    head_lat.push(t.elapsed().as_micros() as u32);
                    reqs += 1;
                }
                let (s, _, n) = send(
                    &c,
                    Method::GET,
                    &format!("{base}/v2/bench/pull/manifests/latest"),
                    &[(
                        "accept",
                        "application/vnd.docker.distribution.manifest.v2+json",
                    )],
                    Bytes::new(),
                )
                .await;
                assert_eq!(s, StatusCode::OK);
                bytes += n;
                reqs += 1;
                for d in digests.iter() {
                    let t = Instant::now();
                    let (s, _, n) = send(
                        &c,
                        Method::GET,
                        &format!("{base}/v2/bench/pull/blobs/{d}"),
                        &[],
                        Bytes::new(),
                    )
                    .await;
                    assert_eq!(s, StatusCode::OK);
                    blob_lat.push(t.elapsed().as_micros() as u32);
                    bytes += n;
                    reqs += 1;
                }
            }
            (head_lat, blob_lat, bytes, reqs)
        }));
    }
    let mut head_lat = Vec::new();
    let mut blob_lat = Vec::new();
    let (mut bytes, mut reqs) = (0usize, 0usize);
    for t in tasks {
        let (h, b, n, r) = t.await.expect("pull task");
        head_lat.extend(h);
        blob_lat.extend(b);
        bytes += n;
        reqs += r;
    }
    let pull_secs = start.elapsed().as_secs_f64();

    // Push phase: distinct images, concurrently.
    let images: Vec<_> = (0..a.pushers)
        .map(|i| image(100 + i as u64, a.push_mb, 3))
        .collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, (blobs, config)) in images.into_iter().enumerate() {
        let c = client.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let t = Instant::now();
            push_image(
                &c,
                &base,
                &format!("bench/push{i}"),
                &blobs,
                &config,
                &mut lat,
            )
            .await;
            (lat, t.elapsed())
        }));
    }
    let mut push_lat = Vec::new();
    let mut image_secs: Vec<u32> = Vec::new();
    for t in tasks {
        let (l, d) = t.await.expect("push task");
        push_lat.extend(l);
        image_secs.push(d.as_micros() as u32);
    }
    let push_secs = start.elapsed().as_secs_f64();
    let pushed_mb = (a.pushers * a.push_mb) as f64;
    let _ = Duration::ZERO;
    println!(
        "{}",
        serde_json::json!({
            "pull_seconds": pull_secs,
            "pull_mb_per_s": bytes as f64 / 1048576.0 / pull_secs,
            "pull_requests_per_s": reqs as f64 / pull_secs,
            "head_p50_ms": pct(&mut head_lat, 0.50),
            "head_p99_ms": pct(&mut head_lat, 0.99),
            "blob_p50_ms": pct(&mut blob_lat, 0.50),
            "blob_p99_ms": pct(&mut blob_lat, 0.99),
            "push_seconds": push_secs,
            "push_images_per_s": a.pushers as f64 / push_secs,
            "push_mb_per_s": pushed_mb / push_secs,
            "push_blob_p50_ms": pct(&mut push_lat, 0.50),
            "push_blob_p99_ms": pct(&mut push_lat, 0.99),
            "push_image_p99_ms": pct(&mut image_secs, 0.99),
        })
    );
}
