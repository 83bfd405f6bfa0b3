//! The registry client against misbehaving registries — small fake servers on 127.0.0.1
//! that answer 500, reset connections, stall, send oversized or mismatched documents,
//! redirect — and against TLS registries verified with `certs.d`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_image::digest::Digest;
use berth_registry::client::{
    Access, ClientConfig, ClientError, Credentials, RegistryClient, TransportConfig,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to do with a request.
enum Reply {
    /// A complete response.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Headers announcing `len` bytes, then only `body`, then the connection is closed.
    Cut(u16, Vec<(String, String)>, u64, Vec<u8>),
    /// Headers and `body`, then nothing for a long time.
    Stall(Vec<(String, String)>, u64, Vec<u8>),
    /// The whole body, `chunk` bytes every `pause`.
    Trickle(Vec<u8>, usize, Duration),
    /// Reads nothing more (a request body stays unread) and answers nothing.
    Hang,
}

type Handler = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    async fn start(handler: Handler) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let h = handler.clone();
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let _ = serve_one(sock, h, seen).await;
                });
            }
        });
        Fake { addr, seen, task }
    }

    fn domain(&self) -> String {
        self.addr.to_string()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, path_part: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.contains(path_part))
            .count()
    }
}

async fn serve_one(
    mut sock: TcpStream,
    h: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if buf[0] == 0x16 {
            // A TLS hello to a plain HTTP server: answer like Go's net/http does.
            sock.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .await?;
            return Ok(());
        }
        if buf.len() > 65536 {
            return Ok(());
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for l in lines.take_while(|l| !l.is_empty()) {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let req = Seen {
        method,
        path,
        headers,
    };
    let n = {
        let mut s = seen.lock().unwrap();
        s.push(req.clone());
        s.iter().filter(|x| x.path == req.path).count()
    };
    let head_only = req.method == "HEAD";
    let write_head = |status: u16, headers: &[(String, String)], len: u64| {
        let mut out =
            format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n");
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out
    };
    match h(&req, n) {
        Reply::Full(status, headers, body) => {
            sock.write_all(write_head(status, &headers, body.len() as u64).as_bytes())
                .await?;
            if !head_only {
                sock.write_all(&body).await?;
            }
        }
        Reply::Cut(status, headers, len, body) => {
            sock.write_all(write_head(status, &headers, len).as_bytes())
                .await?;
            sock.write_all(&body).await?;
            sock.flush().await?;
        }
        Reply::Trickle(body, chunk, pause) => {
            sock.write_all(write_head(200, &[], body.len() as u64).as_bytes())
                .await?;
            for c in body.chunks(chunk) {
                sock.write_all(c).await?;
                sock.flush().await?;
                tokio::time::sleep(pause).await;
            }
        }
        Reply::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Stall(headers, len, body) => {
            sock.write_all(write_head(200, &headers, len).as_bytes())
                .await?;
            sock.write_all(&body).await?;
            sock.flush().await?;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
    Ok(())
}

fn ok(body: &[u8]) -> Reply {
    Reply::Full(200, vec![], body.to_vec())
}

fn fast_client(cfg: impl FnOnce(&mut ClientConfig)) -> RegistryClient {
    let mut c = ClientConfig {
        retries: 2,
        retry_delay: Duration::from_millis(10),
        ..Default::default()
    };
    c.transport.connect_timeout = Duration::from_secs(5);
    cfg(&mut c);
    RegistryClient::new(c).unwrap()
}

async fn repo(c: &RegistryClient, f: &Fake) -> berth_registry::client::Repository {
    c.open_registry(&f.domain(), "me/app", Credentials::default(), Access::Pull)
        .await
        .unwrap()
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let f = Fake::start(Arc::new(|r: &Seen, _| {
        if r.path == "/v2/" {
            ok(b"{}")
        } else {
            Reply::Full(500, vec![], b"oops".to_vec())
        }
    }))
    .await;
    let c = fast_client(|_| {});
    let repo = repo(&c, &f).await;
    let err = repo.get_manifest("v1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "received unexpected HTTP status: 500 Internal Server Error"
    );
    assert_eq!(f.count("/manifests/v1"), 3, "1 attempt + 2 retries");
    // Errors of the client's own making are not retried.
    let err = repo
        .get_blob_bytes(&Digest::sha256_of(b"x"), 10)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
}

#[tokio::test]
async fn broken_downloads_resume_with_range_requests() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let d = Digest::sha256_of(&data);
    let data2 = data.clone();
    let f = Fake::start(Arc::new(move |r: &Seen, n| {
        if r.path == "/v2/" {
            return ok(b"{}");
        }
        match (n, r.header("range")) {
            (1, _) => Reply::Cut(200, vec![], data2.len() as u64, data2[..100_000].to_vec()),
            (_, Some(range)) => {
                let from: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                Reply::Full(
                    206,
                    vec![(
                        "Content-Range".into(),
                        format!("bytes {from}-{}/{}", data2.len() - 1, data2.len()),
                    )],
                    data2[from..].to_vec(),
                )
            }
            _ => ok(&data2),
        }
    }))
    .await;
    let c = fast_client(|_| {});
    let repo = repo(&c, &f).await;
    let mut s = repo.blob_stream(&d).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = s.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(Digest::sha256_of(&got), d);
    let blob_reqs: Vec<Seen> = f
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/blobs/"))
        .collect();
    assert_eq!(blob_reqs.len(), 2);
    assert!(blob_reqs[1].header("range").unwrap().starts_with("bytes="));
}

#[tokio::test]
async fn restarts_when_the_registry_ignores_ranges_and_gives_up_eventually() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 199) as u8).collect();
    let d = Digest::sha256_of(&data);
    let data2 = data.clone();
    let f = Fake::start(Arc::new(move |r: &Seen, n| {
        if r.path == "/v2/" {
            ok(b"{}")
        } else if r.path.contains("flaky") || n == 1 {
            Reply::Cut(200, vec![], data2.len() as u64, data2[..50_000].to_vec())
        } else {
            ok(&data2)
        }
    }))
    .await;
    let c = fast_client(|_| {});
    let r = repo(&c, &f).await;
    let mut s = r.blob_stream(&d).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = s.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, data);

    // Always broken: an error after the bounded number of resumes.
    let flaky = c
        .open_registry(
            &f.domain(),
            "me/flaky",
            Credentials::default(),
            Access::Pull,
        )
        .await
        .unwrap();
    let mut s = flaky.blob_stream(&d).await.unwrap();
    let mut failed = None;
    while let Some(chunk) = s.next().await {
        if let Err(e) = chunk {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the stream must fail");
    assert!(e.to_string().contains("broke"), "{e}");
    assert_eq!(f.count("me/flaky/blobs"), 3, "1 request + 2 resumes");
}

#[tokio::test]
async fn stalled_registries_time_out_with_a_clear_error() {
    let f = Fake::start(Arc::new(|r: &Seen, _| {
        if r.path == "/v2/" {
            ok(b"{}")
        } else {
            Reply::Stall(vec![], 1_000_000, vec![7u8; 1000])
        }
    }))
    .await;
    let c = fast_client(|c| {
        c.retries = 0;
        c.transport = TransportConfig {
            stall_timeout: Duration::from_millis(800),
            request_timeout: Duration::from_secs(2),
            ..TransportConfig::default()
        };
    });
    let repo = repo(&c, &f).await;
    let started = Instant::now();
    let mut s = repo.blob_stream(&Digest::sha256_of(b"x")).await.unwrap();
    let mut err = None;
    while let Some(chunk) = s.next().await {
        if let Err(e) = chunk {
            err = Some(e);
            break;
        }
    }
    let e = err.expect("a stalled download must fail");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // Small requests have a whole-request limit.
    let err = repo.get_manifest("v1").await.unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn oversized_and_mismatched_manifests_are_refused() {
    let good = br#"{"schemaVersion":2}"#.to_vec();
    let good_digest = Digest::sha256_of(&good);
    let good2 = good.clone();
    let f = Fake::start(Arc::new(move |r: &Seen, _| {
        let p = r.path.as_str();
        if p == "/v2/" {
            ok(b"{}")
        } else if p.ends_with("/manifests/huge") {
            ok(&vec![b' '; (4 << 20) + 1])
        } else if p.ends_with("/manifests/lying") {
            Reply::Full(
                200,
                vec![(
                    "Docker-Content-Digest".into(),
                    Digest::sha256_of(b"other").to_string(),
                )],
                good2.clone(),
            )
        } else {
            // By digest: other bytes than asked for.
            ok(b"{\"schemaVersion\":2,\"x\":1}")
        }
    }))
    .await;
    let c = fast_client(|_| {});
    let repo = repo(&c, &f).await;
    assert!(matches!(
        repo.get_manifest("huge").await,
        Err(ClientError::TooLarge { .. })
    ));
    assert!(matches!(
        repo.get_manifest("lying").await,
        Err(ClientError::DigestMismatch { .. })
    ));
    let err = repo
        .get_manifest(&good_digest.to_string())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

#[tokio::test]
async fn redirected_blob_downloads_do_not_leak_credentials() {
    let cdn = Fake::start(Arc::new(|_: &Seen, _| ok(b"cdn bytes"))).await;
    let cdn_url = format!("http://localhost:{}/blob", cdn.addr.port());
    let f = Fake::start(Arc::new(move |r: &Seen, _| {
        if r.header("authorization").is_none() {
            return Reply::Full(
                401,
                vec![("WWW-Authenticate".into(), "Basic realm=\"x\"".into())],
                vec![],
            );
        }
        if r.path == "/v2/" {
            ok(b"{}")
        } else {
            Reply::Full(307, vec![("Location".into(), cdn_url.clone())], vec![])
        }
    }))
    .await;
    let c = fast_client(|_| {});
    let repo = c
        .open_registry(
            &f.domain(),
            "me/app",
            Credentials::basic("me", "secret"),
            Access::Pull,
        )
        .await
        .unwrap();
    let d = Digest::sha256_of(b"cdn bytes");
    let got = repo.get_blob_bytes(&d, 100).await.unwrap();
    assert_eq!(got.as_ref(), b"cdn bytes");
    let at_cdn = cdn.seen();
    assert_eq!(at_cdn.len(), 1);
    assert!(at_cdn[0].header("authorization").is_none(), "{at_cdn:?}");
    assert!(f
        .seen()
        .iter()
        .any(|s| s.path.contains("/blobs/") && s.header("authorization").is_some()));
}

/// openssl: a CA and a server certificate for 127.0.0.1 signed by it.
fn make_ca_and_cert(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[tokio::test]
async fn tls_registries_verified_with_certs_d() {
    use berth_registry::server::{self, Registry, RegistryConfig};
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_ca_and_cert(dir.path());
    let registry = Arc::new(
        Registry::open(RegistryConfig {
            root: dir.path().join("root"),
            addr: "127.0.0.1:0".into(),
            ..Default::default()
        })
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = server::tls_acceptor(&cert, &key).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(registry, listener, Some(acceptor), async {
        let _ = stop_rx.await;
    }));
    let domain = addr.to_string();
    let certs_d = dir.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&domain)).unwrap();
    std::fs::copy(&ca, certs_d.join(&domain).join("ca.crt")).unwrap();

    // Not insecure: the CA from certs.d makes the certificate trusted.
    let strict = |dirs: Vec<std::path::PathBuf>| {
        fast_client(move |c| {
            c.insecure_loopback = false;
            c.transport.certs_dirs = dirs;
        })
    };
    let trusted = strict(vec![certs_d.clone()]);
    let repo = trusted
        .open_registry(&domain, "me/app", Credentials::default(), Access::PullPush)
        .await
        .unwrap();
    assert_eq!(repo.endpoint().base.scheme(), "https");
    let at = repo.start_upload().await.unwrap();
    repo.upload_bytes(
        at,
        &Digest::sha256_of(b"tls"),
        bytes::Bytes::from_static(b"tls"),
    )
    .await
    .unwrap();
    // Without it: a certificate error, and no plain-HTTP fallback for a secure registry.
    let err = strict(vec![dir.path().join("nothing")])
        .open_registry(&domain, "me/app", Credentials::default(), Access::Pull)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("x509: certificate signed by unknown authority"),
        "{err}"
    );
    // Insecure (Docker's default for 127.0.0.0/8): HTTPS without verification.
    let insecure = fast_client(|_| {});
    let repo = insecure
        .open_registry(&domain, "me/app", Credentials::default(), Access::Pull)
        .await
        .unwrap();
    assert_eq!(repo.endpoint().base.scheme(), "https");
    assert!(repo
        .head_blob(&Digest::sha256_of(b"tls"))
        .await
        .unwrap()
        .is_some());
    // A client certificate next to the CA is loaded and offered.
    std::fs::copy(&cert, certs_d.join(&domain).join("client.cert")).unwrap();
    std::fs::copy(&key, certs_d.join(&domain).join("client.key")).unwrap();
    let with_cert = strict(vec![certs_d.clone()]);
    assert!(with_cert
        .open_registry(&domain, "me/app", Credentials::default(), Access::Pull)
        .await
        .is_ok());
    // A key without its certificate is a configuration error that says what is missing.
    std::fs::remove_file(certs_d.join(&domain).join("client.cert")).unwrap();
    let err = strict(vec![certs_d.clone()])
        .open_registry(&domain, "me/app", Credentials::default(), Access::Pull)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("missing client certificate"),
        "{err}"
    );
    let _ = stop_tx.send(());
    let _ = task.await;
}

#[tokio::test]
async fn slow_but_steady_transfers_are_not_stalls() {
    let data: Vec<u8> = (0..40_000u32).map(|i| (i % 7) as u8).collect();
    let d = Digest::sha256_of(&data);
    let data2 = data.clone();
    let f = Fake::start(Arc::new(move |r: &Seen, _| {
        if r.path == "/v2/" {
            ok(b"{}")
        } else {
            // 10 pieces, 300 ms apart: 3 s in all, never a 800 ms gap.
            Reply::Trickle(data2.clone(), 4_000, Duration::from_millis(300))
        }
    }))
    .await;
    let c = fast_client(|c| {
        c.retries = 0;
        c.transport.stall_timeout = Duration::from_millis(800);
    });
    let repo = repo(&c, &f).await;
    let mut s = repo.blob_stream(&d).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = s.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, data);
}

#[tokio::test]
async fn uploads_to_a_registry_that_stops_reading_time_out() {
    let f = Fake::start(Arc::new(|r: &Seen, _| {
        if r.path == "/v2/" {
            ok(b"{}")
        } else if r.method == "POST" {
            Reply::Full(
                202,
                vec![("Location".into(), "/v2/me/app/blobs/uploads/x".into())],
                vec![],
            )
        } else {
            Reply::Hang
        }
    }))
    .await;
    let c = fast_client(|c| {
        c.retries = 0;
        c.transport.stall_timeout = Duration::from_millis(800);
    });
    let repo = c
        .open_registry(
            &f.domain(),
            "me/app",
            Credentials::default(),
            Access::PullPush,
        )
        .await
        .unwrap();
    let at = repo.start_upload().await.unwrap();
    let piece = bytes::Bytes::from(vec![1u8; 1 << 16]);
    let body = futures_util::stream::iter((0..1024).map(move |_| Ok(piece.clone())));
    let started = Instant::now();
    let err = repo.upload_stream(at, body).await.unwrap_err();
    assert!(err.to_string().contains("stopped accepting data"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}
