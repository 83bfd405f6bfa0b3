//! `login`, `pull` and `push` against recorded daemon responses (docker-api-traces scenario 6):
//! a small Engine API endpoint on a unix socket answers with the bytes dockerd 20.10 sent, and
//! the test checks what the berth CLI sends (`POST /auth` body, `X-Registry-Auth`, query) and
//! prints. The daemon side of registries is another component; this checks the client.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// One recorded request.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

type Responder = dyn Fn(&Request) -> (u16, String) + Send + Sync;

/// Serves HTTP/1.1 requests (one per connection) on `sock`, recording them.
fn serve(sock: &Path, respond: Arc<Responder>) -> Arc<Mutex<Vec<Request>>> {
    let listener = UnixListener::bind(sock).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let log = log2.clone();
            let respond = respond.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                let req = Request {
                    method,
                    target,
                    headers,
                    body,
                };
                let (status, body) = if req.target == "/_ping" {
                    (200, String::new())
                } else {
                    respond(&req)
                };
                log.lock().unwrap().push(req);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes());
            });
        }
    });
    log
}

struct Env {
    dir: tempfile::TempDir,
    sock: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("bc-")
            .tempdir_in("/tmp")
            .unwrap();
        let sock = dir.path().join("api.sock");
        Env { dir, sock }
    }

    fn cfg(&self) -> PathBuf {
        self.dir.path().join("cfg")
    }

    fn berth(&self, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env("DOCKER_CONFIG", self.cfg())
            .env_remove("DOCKER_API_VERSION")
            .env_remove("BERTH_API_VERSION")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let o = child.wait_with_output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

fn decode_auth(h: &str) -> serde_json::Value {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[test]
fn login_stores_credentials_and_pull_push_send_them() {
    let env = Env::new();
    let pull_stream = [
        r#"{"status":"Pulling from me/extra","id":"v1"}"#,
        r#"{"status":"Already exists","progressDetail":{},"id":"7a9115a185e1"}"#,
        r#"{"status":"Pulling fs layer","progressDetail":{},"id":"83d547c87a80"}"#,
        r#"{"status":"Downloading","progressDetail":{"current":121,"total":121},"progress":"[==================================================\u003e]     121B/121B","id":"83d547c87a80"}"#,
        r#"{"status":"Verifying Checksum","progressDetail":{},"id":"83d547c87a80"}"#,
        r#"{"status":"Download complete","progressDetail":{},"id":"83d547c87a80"}"#,
        r#"{"status":"Extracting","progressDetail":{"current":121,"total":121},"progress":"[==================================================\u003e]     121B/121B","id":"83d547c87a80"}"#,
        r#"{"status":"Pull complete","progressDetail":{},"id":"83d547c87a80"}"#,
        r#"{"status":"Digest: sha256:e2a88f7df1793aeb3852fa1739d745ff7fdfbf72597d594cadf0e24659bfca0d"}"#,
        r#"{"status":"Status: Downloaded newer image for localhost:5000/me/extra:v1"}"#,
    ]
    .join("\r\n")
        + "\r\n";
    let push_stream = [
        r#"{"status":"The push refers to repository [localhost:5000/me/busybox]"}"#,
        r#"{"status":"Preparing","progressDetail":{},"id":"dd8c236043f7"}"#,
        r#"{"status":"Pushing","progressDetail":{"current":19968,"total":1984132},"progress":"[\u003e    ]  19.97kB/1.984MB","id":"dd8c236043f7"}"#,
        r#"{"status":"Pushed","progressDetail":{},"id":"dd8c236043f7"}"#,
        r#"{"status":"latest: digest: sha256:5dca5e695bdb115681f4c8c9e2e44ee3876a1062251e6aaf805366e1c2600b2b size: 527"}"#,
        r#"{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:5dca5e695bdb115681f4c8c9e2e44ee3876a1062251e6aaf805366e1c2600b2b","Size":527}}"#,
    ]
    .join("\r\n")
        + "\r\n";
    let respond: Arc<Responder> = Arc::new(move |r: &Request| {
        let path = r.target.split('?').next().unwrap_or("");
        match (r.method.as_str(), path) {
            ("POST", "/v1.41/auth") => {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                if body["password"] == "tracepass123" {
                    (
                        200,
                        r#"{"IdentityToken":"","Status":"Login Succeeded"}"#.to_string(),
                    )
                } else {
                    (
                        500,
                        r#"{"message":"login attempt to http://localhost:5000/v2/ failed with status: 401 Unauthorized"}"#.to_string(),
                    )
                }
            }
            ("POST", "/v1.41/images/create") => (200, pull_stream.clone()),
            ("POST", "/v1.41/images/localhost:5000/me/busybox/push") => {
                if decode_auth(&r.headers["x-registry-auth"]) == serde_json::json!({}) {
                    (
                        200,
                        "{\"status\":\"The push refers to repository [localhost:5000/me/busybox]\"}\r\n{\"status\":\"Preparing\",\"progressDetail\":{},\"id\":\"dd8c236043f7\"}\r\n{\"errorDetail\":{\"message\":\"no basic auth credentials\"},\"error\":\"no basic auth credentials\"}\r\n".to_string(),
                    )
                } else {
                    (200, push_stream.clone())
                }
            }
            _ => (404, r#"{"message":"page not found"}"#.to_string()),
        }
    });
    let log = serve(&env.sock, respond);

    // Push without credentials: X-Registry-Auth is `{}`, the stream's error ends with exit 1.
    let (code, out, err) = env.berth(&["push", "localhost:5000/me/busybox"], b"");
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out,
        "Using default tag: latest\nThe push refers to repository [localhost:5000/me/busybox]\ndd8c236043f7: Preparing\n"
    );
    assert_eq!(err, "no basic auth credentials\n");
    let push = log.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        push.target,
        "/v1.41/images/localhost:5000/me/busybox/push?tag=latest"
    );
    assert_eq!(push.headers["x-registry-auth"], "e30=");

    // Wrong password: the daemon's message, exit 1, nothing stored.
    let (code, _, err) = env.berth(
        &["login", "-u", "me", "--password-stdin", "localhost:5000"],
        b"wrongpass\n",
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error response from daemon: login attempt to http://localhost:5000/v2/ failed with status: 401 Unauthorized\n"
    );
    assert!(!env.cfg().join("config.json").exists());

    // Right password: POST /auth body as the Docker CLI sends it; credentials stored.
    let (code, out, err) = env.berth(
        &["login", "-u", "me", "--password-stdin", "localhost:5000"],
        b"tracepass123\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Login Succeeded\n");
    let cfg_path = env.cfg().join("config.json");
    assert_eq!(
        err,
        format!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n",
            cfg_path.display()
        )
    );
    let auth = log
        .lock()
        .unwrap()
        .iter()
        .rfind(|r| r.target == "/v1.41/auth")
        .cloned()
        .unwrap();
    assert_eq!(
        String::from_utf8(auth.body).unwrap(),
        "{\"username\":\"me\",\"password\":\"tracepass123\",\"serveraddress\":\"localhost:5000\"}\n"
    );
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"auths": {"localhost:5000": {"auth": "bWU6dHJhY2VwYXNzMTIz"}}})
    );

    // Logging in again without a user: the stored credentials are tried first.
    let (code, out, err) = env.berth(&["login", "localhost:5000"], b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Login Succeeded\n");
    assert_eq!(
        err,
        "Authenticating with existing credentials... [Username: me]\n"
    );

    // Pull: plain progress lines (byte progress skipped), the reference printed at the end.
    let (code, out, err) = env.berth(&["pull", "localhost:5000/me/extra:v1"], b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "v1: Pulling from me/extra\n7a9115a185e1: Already exists\n83d547c87a80: Pulling fs layer\n83d547c87a80: Verifying Checksum\n83d547c87a80: Download complete\n83d547c87a80: Pull complete\nDigest: sha256:e2a88f7df1793aeb3852fa1739d745ff7fdfbf72597d594cadf0e24659bfca0d\nStatus: Downloaded newer image for localhost:5000/me/extra:v1\nlocalhost:5000/me/extra:v1\n"
    );
    let pull = log.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        pull.target,
        "/v1.41/images/create?fromImage=localhost%3A5000%2Fme%2Fextra&tag=v1"
    );
    assert_eq!(
        decode_auth(&pull.headers["x-registry-auth"]),
        serde_json::json!({"username": "me", "password": "tracepass123", "serveraddress": "localhost:5000"})
    );

    // Push with credentials.
    let (code, out, err) = env.berth(&["push", "localhost:5000/me/busybox"], b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Using default tag: latest\nThe push refers to repository [localhost:5000/me/busybox]\ndd8c236043f7: Preparing\ndd8c236043f7: Pushed\nlatest: digest: sha256:5dca5e695bdb115681f4c8c9e2e44ee3876a1062251e6aaf805366e1c2600b2b size: 527\n"
    );
    // Quiet pull: only the reference.
    let (code, out, _) = env.berth(&["pull", "-q", "localhost:5000/me/extra:v1"], b"");
    assert_eq!((code, out.as_str()), (0, "localhost:5000/me/extra:v1\n"));

    // Logout removes the entry.
    let (code, out, _) = env.berth(&["logout", "localhost:5000"], b"");
    assert_eq!(
        (code, out.as_str()),
        (0, "Removing login credentials for localhost:5000\n")
    );
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    assert_eq!(stored, serde_json::json!({"auths": {}}));
}

#[test]
fn run_pulls_a_missing_image_then_creates_again() {
    let env = Env::new();
    let creates = Arc::new(Mutex::new(0));
    let creates2 = creates.clone();
    let respond: Arc<Responder> = Arc::new(move |r: &Request| {
        let path = r.target.split('?').next().unwrap_or("");
        match (r.method.as_str(), path) {
            ("POST", "/v1.41/containers/create") => {
                let mut n = creates2.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    (404, r#"{"message":"No such image: nosuchimage-tr:1.0"}"#.to_string())
                } else {
                    (201, r#"{"Id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","Warnings":["careful"]}"#.to_string())
                }
            }
            ("POST", "/v1.41/images/create") => (
                500,
                r#"{"message":"Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host"}"#.to_string(),
            ),
            _ => (404, r#"{"message":"page not found"}"#.to_string()),
        }
    });
    let log = serve(&env.sock, respond);
    // The pull fails (as in trace 05): exit 125 with the daemon's message.
    let (code, out, err) = env.berth(&["run", "--rm", "nosuchimage-tr:1.0", "true"], b"");
    assert_eq!(code, 125, "{out}{err}");
    assert_eq!(
        err,
        "Unable to find image 'nosuchimage-tr:1.0' locally\nberth: Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host\n\nRun 'berth run --help' for more information\n"
    );
    let targets: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        targets,
        vec![
            "/_ping",
            "/v1.41/containers/create",
            "/v1.41/images/create?fromImage=docker.io%2Flibrary%2Fnosuchimage-tr&tag=1.0",
        ]
    );
    // `create` prints warnings and the ID; --pull never skips the pull.
    let (code, out, err) = env.berth(&["create", "--pull", "never", "busybox"], b"");
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
        )
    );
    assert_eq!(err, "WARNING: careful\n");
}
