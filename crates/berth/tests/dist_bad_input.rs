//! Pulls from a hostile or broken registry (a small fake registry on 127.0.0.1 in this test)
//! through the real Docker CLI: every refusal has a clear message, and the image store is
//! left exactly as it was — no image, no layer, no blob, no leftovers.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_image::Digest;
use common::*;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const TAR_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

// ------------------------------------------------------------------ a tiny tar writer

enum Ent<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

/// A ustar archive written by hand: the `tar` crate refuses to write hostile names.
fn tar(entries: &[Ent]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (name, kind, data, link): (&str, u8, &[u8], &str) = match e {
            Ent::File(n, d) => (n, b'0', d, ""),
            Ent::Dir(n) => (n, b'5', &[], ""),
            Ent::Symlink(n, t) => (n, b'2', &[], t),
        };
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let mode = if kind == b'5' {
            "0000755\0"
        } else {
            "0000644\0"
        };
        h[100..108].copy_from_slice(mode.as_bytes());
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"14540000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

// ------------------------------------------------------------------ the fake registry

#[derive(Clone)]
enum Resp {
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Announce the whole body, send part of it, close.
    Cut(Vec<u8>, usize),
    /// Send the body slowly: `chunk` bytes every `pause`.
    Slow(Vec<u8>, usize, Duration),
}

type Route = Arc<dyn Fn(&str, &str) -> Resp + Send + Sync>;

struct Fake {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    fn start(route: Route) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h2, s2) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if s2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (route, hits) = (route.clone(), h2.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, route, hits);
                });
            }
        });
        Fake { port, hits, stop }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn count(&self, part: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.contains(part))
            .count()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(mut s: TcpStream, route: Route, hits: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if buf[0] == 0x16 {
            // TLS hello to a plain-HTTP registry: answered as Go does.
            return s.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut it = line.split(' ');
    let method = it.next().unwrap_or_default().to_string();
    let path = it.next().unwrap_or_default().to_string();
    hits.lock().unwrap().push(format!("{method} {path}"));
    let head_only = method == "HEAD";
    let resp = if path == "/v2/" {
        Resp::Full(200, vec![], b"{}".to_vec())
    } else {
        route(&method, &path)
    };
    let status_line = |code: u16| format!("HTTP/1.1 {code} X\r\nConnection: close\r\n");
    match resp {
        Resp::Full(code, headers, body) => {
            let mut h = status_line(code);
            h.push_str(&format!("Content-Length: {}\r\n", body.len()));
            for (k, v) in headers {
                h.push_str(&format!("{k}: {v}\r\n"));
            }
            h.push_str("\r\n");
            s.write_all(h.as_bytes())?;
            if !head_only {
                s.write_all(&body)?;
            }
        }
        Resp::Cut(body, upto) => {
            let h = format!("{}Content-Length: {}\r\n\r\n", status_line(200), body.len());
            s.write_all(h.as_bytes())?;
            s.write_all(&body[..upto])?;
        }
        Resp::Slow(body, chunk, pause) => {
            let h = format!("{}Content-Length: {}\r\n\r\n", status_line(200), body.len());
            s.write_all(h.as_bytes())?;
            for c in body.chunks(chunk) {
                s.write_all(c)?;
                std::thread::sleep(pause);
            }
        }
    }
    Ok(())
}

/// What the fake registry serves for one repository.
#[derive(Clone)]
struct Served {
    manifest: Vec<u8>,
    content_type: String,
    blobs: HashMap<String, Resp>,
}

fn json_resp(ct: &str, body: Vec<u8>) -> Resp {
    let d = Digest::sha256_of(&body);
    Resp::Full(
        200,
        vec![
            ("Content-Type".into(), ct.into()),
            ("Docker-Content-Digest".into(), d.to_string()),
        ],
        body,
    )
}

/// Routes `/v2/<repo>/…` to what `repos` holds; 404 with MANIFEST_UNKNOWN otherwise.
fn router(repos: HashMap<String, Served>) -> Route {
    Arc::new(move |_m: &str, path: &str| {
        let rest = path.trim_start_matches("/v2/");
        for (name, s) in &repos {
            let Some(tail) = rest.strip_prefix(&format!("{name}/")) else {
                continue;
            };
            if let Some(r) = tail.strip_prefix("manifests/") {
                let digest = Digest::sha256_of(&s.manifest).to_string();
                if r == "latest" || r == digest {
                    return json_resp(&s.content_type, s.manifest.clone());
                }
            }
            if let Some(b) = tail.strip_prefix("blobs/") {
                if let Some(resp) = s.blobs.get(b) {
                    return resp.clone();
                }
            }
        }
        Resp::Full(
            404,
            vec![("Content-Type".into(), "application/json".into())],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
        )
    })
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

fn manifest_for(config: &[u8], layers: &[(Digest, usize)]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": config.len(), "digest": Digest::sha256_of(config).to_string()},
        "layers": layers.iter().map(|(d, n)| serde_json::json!({"mediaType": TAR_LAYER, "size": n, "digest": d.to_string()})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// An image of one uncompressed layer whose blob is served with `blob` (default: the tar).
fn image_with(layer: &[u8], blob: Option<Resp>) -> Served {
    let d = Digest::sha256_of(layer);
    let config = config_for(std::slice::from_ref(&d));
    let manifest = manifest_for(&config, &[(d.clone(), layer.len())]);
    let mut blobs = HashMap::new();
    blobs.insert(
        Digest::sha256_of(&config).to_string(),
        Resp::Full(200, vec![], config.clone()),
    );
    blobs.insert(
        d.to_string(),
        blob.unwrap_or_else(|| Resp::Full(200, vec![], layer.to_vec())),
    );
    Served {
        manifest,
        content_type: DOCKER_MANIFEST.into(),
        blobs,
    }
}

fn good_layer() -> Vec<u8> {
    tar(&[Ent::Dir("bin/"), Ent::File("bin/hello", b"hello world\n")])
}

// ------------------------------------------------------------------ assertions

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// No image, no layer snapshot, no blob, no partial write.
#[track_caller]
fn assert_store_clean(d: &Daemon) {
    let clean = wait_for(Duration::from_secs(10), || {
        let blobs = entries(&d.data_root.join("content/blobs/sha256"));
        let ingest = entries(&d.data_root.join("content/ingest"));
        let layers = entries(&d.data_root.join("overlay2"));
        (blobs.is_empty() && ingest.is_empty() && layers == ["empty", "l"]).then_some(())
    });
    assert!(
        clean.is_some(),
        "store not clean: blobs {:?} ingest {:?} overlay2 {:?}",
        entries(&d.data_root.join("content/blobs/sha256")),
        entries(&d.data_root.join("content/ingest")),
        entries(&d.data_root.join("overlay2"))
    );
    assert_eq!(d.docker(["images", "-q"]).ok(), "");
}

#[track_caller]
fn pull_fails(d: &Daemon, image: &str, text: &str) -> String {
    let o = d.docker(["pull", image]);
    let all = format!("{}{}", o.stdout, o.stderr);
    assert_ne!(o.status, 0, "pull of {image} should fail:\n{all}");
    assert!(all.contains(text), "expected {text:?} for {image}:\n{all}");
    all
}

// ------------------------------------------------------------------ the tests

#[test]
fn corrupt_and_confusing_content_is_refused_and_nothing_is_stored() {
    let layer = good_layer();
    let mut repos = HashMap::new();

    // Blobs whose bytes do not match their digest (same length, one byte changed): in a
    // file's data (the tar stays valid) and in a header (the tar breaks first).
    for (name, at) in [("bad/digest", 1024), ("bad/header", 600)] {
        let mut evil = layer.clone();
        evil[at] ^= 0x20;
        repos.insert(
            name.to_string(),
            image_with(&layer, Some(Resp::Full(200, vec![], evil))),
        );
    }
    // mediaType vs Content-Type (CVE-2021-41190).
    let mut s = image_with(&layer, None);
    s.content_type = "application/vnd.oci.image.index.v1+json".into();
    repos.insert("bad/mediatype".to_string(), s);
    // A document that is both an index and a manifest.
    let mut s = image_with(&layer, None);
    let mut doc: serde_json::Value = serde_json::from_slice(&s.manifest).unwrap();
    doc["manifests"] = serde_json::json!([]);
    s.manifest = serde_json::to_vec(&doc).unwrap();
    s.content_type = "application/json".into();
    repos.insert("bad/confused".to_string(), s);
    // Oversized manifest and config.
    let mut s = image_with(&layer, None);
    s.manifest.extend(std::iter::repeat_n(b' ', 4 << 20));
    repos.insert("bad/bigmanifest".to_string(), s);
    let mut s = image_with(&layer, None);
    let mut doc: serde_json::Value = serde_json::from_slice(&s.manifest).unwrap();
    doc["config"]["size"] = (9u64 << 20).into();
    s.manifest = serde_json::to_vec(&doc).unwrap();
    repos.insert("bad/bigconfig".to_string(), s);
    let mut s = image_with(&layer, None);
    let doc: serde_json::Value = serde_json::from_slice(&s.manifest).unwrap();
    let cfg_digest = doc["config"]["digest"].as_str().unwrap().to_string();
    s.blobs
        .insert(cfg_digest, Resp::Full(200, vec![], vec![b' '; 9 << 20]));
    repos.insert("bad/liarconfig".to_string(), s);
    // Schema 1.
    repos.insert(
        "bad/schema1".to_string(),
        Served {
            manifest: br#"{"schemaVersion":1,"name":"bad/schema1","tag":"latest","fsLayers":[],"history":[]}"#.to_vec(),
            content_type: "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            blobs: HashMap::new(),
        },
    );
    let fake = Fake::start(router(repos));
    let a = fake.addr();
    let d = Daemon::start();

    let layer_digest = Digest::sha256_of(&layer);
    pull_fails(
        &d,
        &format!("{a}/bad/digest"),
        &format!("filesystem layer verification failed for digest {layer_digest}"),
    );
    pull_fails(
        &d,
        &format!("{a}/bad/header"),
        &format!("filesystem layer verification failed for digest {layer_digest}"),
    );
    assert_store_clean(&d);
    let out = pull_fails(
        &d,
        &format!("{a}/bad/mediatype"),
        "does not match the Content-Type",
    );
    assert!(
        !out.contains("Pulling from"),
        "refused before any progress:\n{out}"
    );
    pull_fails(&d, &format!("{a}/bad/confused"), "both \"manifests\" and");
    pull_fails(
        &d,
        &format!("{a}/bad/bigmanifest"),
        "larger than the 4194304 bytes allowed",
    );
    pull_fails(
        &d,
        &format!("{a}/bad/bigconfig"),
        "larger than the 8388608 bytes allowed",
    );
    pull_fails(
        &d,
        &format!("{a}/bad/liarconfig"),
        "larger than the 8388608 bytes allowed",
    );
    pull_fails(
        &d,
        &format!("{a}/bad/schema1"),
        "Docker Image manifest version 2, schema 1 support has been removed",
    );
    assert_store_clean(&d);
}

#[test]
fn layers_that_escape_their_snapshot_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "evil/dotdot",
            tar(&[
                Ent::File("ok", b"1"),
                Ent::File("../../../escape", b"pwned"),
            ]),
            "..",
        ),
        (
            "evil/absolute",
            tar(&[Ent::File(&format!("{target}/abs"), b"pwned")]),
            "refusing layer entry",
        ),
        (
            "evil/symlink",
            tar(&[
                Ent::Symlink("link", &target),
                Ent::File("link/through", b"pwned"),
            ]),
            "refusing layer entry",
        ),
    ];
    let mut repos = HashMap::new();
    for (name, t, _) in &cases {
        repos.insert(name.to_string(), image_with(t, None));
    }
    let fake = Fake::start(router(repos));
    let d = Daemon::start();
    for (name, _, text) in &cases {
        pull_fails(&d, &format!("{}/{name}", fake.addr()), text);
        assert_store_clean(&d);
        assert!(
            entries(outside.path()).is_empty(),
            "{name} wrote outside the snapshot: {:?}",
            entries(outside.path())
        );
    }
    // Nothing escaped relative to the daemon's directories either.
    assert!(!d.data_root.join("escape").exists());
    assert!(!d.dir.join("escape").exists());
}

#[test]
fn broken_registries_give_clean_errors_after_bounded_retries() {
    let layer: Vec<u8> = tar(&[Ent::File("big", &vec![7u8; 400_000])]);
    let mut repos = HashMap::new();
    repos.insert(
        "broken/reset".to_string(),
        image_with(&layer, Some(Resp::Cut(layer.clone(), 100_000))),
    );
    let fake = Fake::start(router(repos));
    let a = fake.addr();
    let failing = Fake::start(Arc::new(|_: &str, _: &str| {
        Resp::Full(500, vec![], b"internal trouble".to_vec())
    }));
    let d = Daemon::start();

    let o = d.docker(["pull", &format!("{}/broken/fivehundred", failing.addr())]);
    assert_eq!(o.status, 1);
    assert_eq!(
        o.stderr.trim(),
        "Error response from daemon: received unexpected HTTP status: 500 Internal Server Error"
    );
    assert_eq!(
        failing.count("HEAD /v2/broken/fivehundred/manifests/latest"),
        4,
        "one request and three retries"
    );
    pull_fails(
        &d,
        &format!("{a}/broken/reset"),
        "connection to the registry broke",
    );
    let layer_digest = Digest::sha256_of(&layer);
    assert_eq!(
        fake.count(&format!("GET /v2/broken/reset/blobs/{layer_digest}")),
        4,
        "one download and three resumes"
    );
    assert_store_clean(&d);
}

#[test]
fn interrupted_pulls_leave_no_half_image() {
    let layer: Vec<u8> = tar(&[Ent::File("big", &vec![3u8; 3 << 20])]);
    let mut repos = HashMap::new();
    repos.insert(
        "slow/image".to_string(),
        image_with(
            &layer,
            Some(Resp::Slow(
                layer.clone(),
                64 * 1024,
                Duration::from_millis(40),
            )),
        ),
    );
    let fake = Fake::start(router(repos));
    let img = format!("{}/slow/image", fake.addr());
    let mut d = Daemon::start();
    let started_download = |d: &Daemon| {
        wait_for(Duration::from_secs(20), || {
            (!entries(&d.data_root.join("content/ingest")).is_empty()).then_some(())
        })
        .is_some()
    };

    // The client goes away in the middle: the daemon cancels and cleans up.
    let mut client = d
        .docker_command()
        .args(["pull", &img])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(started_download(&d), "the download did not start");
    // SIGTERM to the `timeout` wrapper, which passes it on to the CLI.
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(client.id() as i32, libc::SIGTERM) };
    let _ = client.wait();
    assert_store_clean(&d);

    // The daemon dies in the middle: the next start removes what the pull left.
    let mut client = d
        .docker_command()
        .args(["pull", &img])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(started_download(&d), "the download did not start");
    d.kill9();
    let _ = client.wait();
    d.start_again();
    assert_store_clean(&d);

    // And the pull works when it is allowed to finish.
    d.docker(["pull", &img]).ok();
    assert_eq!(
        d.docker(["image", "inspect", "--format", "{{.Size}}", &img])
            .ok(),
        (3u64 << 20).to_string()
    );
}
