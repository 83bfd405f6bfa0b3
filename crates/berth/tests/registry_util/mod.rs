//! Helpers for the registry tests that run the real `berth` binary and real clients
//! (skopeo, curl, dockerd). Everything listens on 127.0.0.1 and lives in temp dirs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// `berth registry serve` on 127.0.0.1:<random port>; killed (SIGKILL) when dropped.
pub struct Registry {
    child: Option<Child>,
    pub addr: String,
    pub root: PathBuf,
    args: Vec<String>,
    log: PathBuf,
}

pub fn berth() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

impl Registry {
    /// Starts a registry with its storage at `root`, plus extra `serve` arguments.
    pub fn start(root: &Path, args: &[&str]) -> Registry {
        let mut r = Registry {
            child: None,
            addr: String::new(),
            root: root.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            log: root.with_extension("log"),
        };
        r.spawn("127.0.0.1:0");
        r
    }

    fn spawn(&mut self, addr: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(berth())
            .args(["registry", "serve", "--addr", addr, "--root"])
            .arg(&self.root)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("cannot start berth registry serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("registry did not start; log:\n{}", self.log_text());
            }
        };
        let Some(url) = line.trim().strip_prefix("berth registry listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line {line:?}; log:\n{}", self.log_text());
        };
        self.addr = url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        self.child = Some(child);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("registry not running");
        ok(Command::new("kill").args(["-TERM", &c.id().to_string()]));
        c.wait().unwrap()
    }

    /// Starts again on the same root and address.
    pub fn restart(&mut self) {
        self.kill9();
        let addr = self.addr.clone();
        self.spawn(&addr);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs a command, returning its output (never panics on a non-zero exit).
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The deterministic busybox `docker save` archive of scripts/mk-busybox-image.
pub fn busybox_archive(dir: &Path) -> PathBuf {
    let out = dir.join("busybox.tar");
    ok(Command::new(workspace_root().join("scripts/mk-busybox-image")).arg(&out));
    out
}

/// An htpasswd file (bcrypt, via Apache's htpasswd tool) with the given users.
pub fn htpasswd(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let p = dir.join("htpasswd");
    let mut text = String::new();
    for (u, pw) in users {
        text.push_str(&ok(
            Command::new("htpasswd").args(["-nbB", "-C", "5", u, pw])
        ));
        text = text.trim_end().to_string();
        text.push('\n');
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// A self-signed certificate for 127.0.0.1 and localhost (via openssl).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    ok(Command::new("openssl")
        .args([
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
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

/// curl: returns (status code, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = ok(Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args));
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Every blob file's content hashes to its name; every tag and revision points at a blob
/// that exists. This is what a crash must never break.
pub fn check_store(root: &Path) {
    use std::io::Read;
    let blobs = root.join("blobs/sha256");
    if let Ok(rd) = std::fs::read_dir(&blobs) {
        for prefix in rd.flatten() {
            for f in std::fs::read_dir(prefix.path()).unwrap().flatten() {
                let mut data = Vec::new();
                std::fs::File::open(f.path())
                    .unwrap()
                    .read_to_end(&mut data)
                    .unwrap();
                let name = f.file_name().to_string_lossy().into_owned();
                let d = berth_image::digest::Digest::sha256_of(&data);
                assert_eq!(
                    d.hex(),
                    name,
                    "blob {name} holds other bytes ({} bytes)",
                    data.len()
                );
            }
        }
    }
    let repos = root.join("repositories");
    let mut stack = vec![repos];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "_manifests" {
                if let Ok(tags) = std::fs::read_dir(e.path().join("tags")) {
                    for t in tags.flatten() {
                        let d = std::fs::read_to_string(t.path()).unwrap();
                        let d = berth_image::digest::Digest::parse(d.trim())
                            .expect("tag file holds a digest");
                        assert!(
                            blobs.join(&d.hex()[..2]).join(d.hex()).exists(),
                            "tag {:?} points at a missing manifest",
                            t.path()
                        );
                        assert!(
                            e.path().join("revisions/sha256").join(d.hex()).exists(),
                            "tag {:?} points at a missing revision",
                            t.path()
                        );
                    }
                }
                if let Ok(revs) = std::fs::read_dir(e.path().join("revisions/sha256")) {
                    for r in revs.flatten() {
                        let hex = r.file_name().to_string_lossy().into_owned();
                        assert!(
                            blobs.join(&hex[..2]).join(&hex).exists(),
                            "revision {hex} has no blob"
                        );
                    }
                }
            } else if name == "_layers" {
                for l in std::fs::read_dir(e.path().join("sha256"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let hex = l.file_name().to_string_lossy().into_owned();
                    assert!(
                        blobs.join(&hex[..2]).join(&hex).exists(),
                        "link {hex} has no blob"
                    );
                }
            } else if !name.starts_with('_') && e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}
