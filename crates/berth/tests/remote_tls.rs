//! The API over TCP with mutual TLS: the berth CLI and the real Docker CLI drive a daemon
//! through certificates this test makes (openssl), streams included; clients without a
//! certificate from the daemon's CA (none, another CA's, an expired one) are refused in the
//! handshake, before any handler runs, and the refusal is logged; plain HTTP on the TLS port
//! is answered with Go's 400 and closed; plain TCP on a public address is refused.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{berth_bin, free_port, Daemon, Out};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>-ca.pem`, `<name>-ca-key.pem`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}-ca-key.pem"),
            "-out",
            &format!("{name}-ca.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A certificate `<out>-cert.pem` / `<out>-key.pem` signed by CA `ca`; `days` -1 makes one
/// that has already expired.
fn make_cert(dir: &Path, ca: &str, out: &str, server: bool, days: &str) {
    let key = format!("{out}-key.pem");
    let csr = format!("{out}.csr");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={out}"),
        ],
    );
    let ext = format!("{out}.ext");
    let usage = if server {
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    } else {
        "extendedKeyUsage=clientAuth\n"
    };
    std::fs::write(
        dir.join(&ext),
        format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{usage}"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca-key.pem"),
            "-CAcreateserial",
            "-days",
            days,
            "-extfile",
            &ext,
            "-out",
            &format!("{out}-cert.pem"),
        ],
    );
}

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(parent: &Path) -> Pki {
        let dir = parent.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        make_ca(&dir, "good");
        make_ca(&dir, "other");
        make_cert(&dir, "good", "server", true, "2");
        make_cert(&dir, "good", "client", false, "2");
        make_cert(&dir, "other", "foreign", false, "2");
        make_cert(&dir, "good", "expired", false, "-1");
        // A Docker-style cert directory for the Docker CLI (DOCKER_CERT_PATH).
        let docker = dir.join("docker");
        std::fs::create_dir_all(&docker).unwrap();
        for (from, to) in [
            ("good-ca.pem", "ca.pem"),
            ("client-cert.pem", "cert.pem"),
            ("client-key.pem", "key.pem"),
        ] {
            std::fs::copy(dir.join(from), docker.join(to)).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

/// The daemon: unix socket (the harness's) plus TLS on a loopback port, configured in
/// daemon.json with Docker's keys.
fn tls_daemon(pki: &Pki, port: u16) -> Daemon {
    let config = serde_json::json!({
        "tlsverify": true,
        "tlscacert": pki.path("good-ca.pem"),
        "tlscert": pki.path("server-cert.pem"),
        "tlskey": pki.path("server-key.pem"),
    });
    let host = format!("tcp://127.0.0.1:{port}");
    Daemon::start_with_args(&config.to_string(), &["-H", &host])
}

/// The berth CLI over TCP with the given TLS arguments (no other host in the environment).
fn berth_tls(d: &Daemon, port: u16, tls: &[String], args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "120"])
        .arg(berth_bin())
        .arg("-H")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .args(tls)
        .args(args)
        .env("DOCKER_CONFIG", d.dir.join("cli-config"))
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run berth");
    let mut input = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        input.write_all(data).unwrap();
    }
    drop(input);
    Out::of(child.wait_with_output().unwrap())
}

/// The Docker CLI over TCP with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`.
fn docker_tls(d: &Daemon, port: u16, cert_path: &Path, args: &[&str], stdin: &[u8]) -> Out {
    let mut child = d
        .docker_command()
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", cert_path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    Out::of(child.wait_with_output().unwrap())
}

fn client_args(pki: &Pki, cert: &str) -> Vec<String> {
    vec![
        "--tlsverify".into(),
        "--tlscacert".into(),
        pki.path("good-ca.pem"),
        "--tlscert".into(),
        pki.path(&format!("{cert}-cert.pem")),
        "--tlskey".into(),
        pki.path(&format!("{cert}-key.pem")),
    ]
}

#[test]
fn berth_and_docker_clis_over_mutual_tls() {
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let d = tls_daemon(&pki, port);
    d.load_busybox();
    let good = client_args(&pki, "client");

    // berth CLI: plain requests, an attached run with stdin (a hijacked stream, half-closed
    // over TLS), exec, save/load (large bodies both ways).
    let out = berth_tls(
        &d,
        port,
        &good,
        &["version", "--format", "{{.Server.Os}}"],
        None,
    );
    assert_eq!(out.ok(), "linux", "{}", out.stderr);
    let out = berth_tls(
        &d,
        port,
        &good,
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        Some(b"through tls\n"),
    );
    assert_eq!(out.ok(), "through tls\ndone", "{}", out.stderr);
    let out = berth_tls(
        &d,
        port,
        &good,
        &["run", "-d", "--name", "tlsbox", "busybox", "sleep", "300"],
        None,
    );
    out.ok();
    let out = berth_tls(
        &d,
        port,
        &good,
        &["exec", "-i", "tlsbox", "sh", "-c", "tr a-z A-Z"],
        Some(b"exec over tls\n"),
    );
    assert_eq!(out.ok(), "EXEC OVER TLS", "{}", out.stderr);
    let tar = tmp.path().join("saved.tar");
    let out = berth_tls(
        &d,
        port,
        &good,
        &["save", "-o", tar.to_str().unwrap(), "busybox"],
        None,
    );
    out.ok();
    let out = berth_tls(
        &d,
        port,
        &good,
        &["load", "-i", tar.to_str().unwrap()],
        None,
    );
    assert!(out.ok().contains("busybox:latest"), "{}", out.stdout);

    // The Docker CLI 28 with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH.
    let certs = pki.dir.join("docker");
    let out = docker_tls(
        &d,
        port,
        &certs,
        &["version", "--format", "{{.Server.Os}}"],
        b"",
    );
    assert_eq!(out.ok(), "linux", "{}", out.stderr);
    let out = docker_tls(
        &d,
        port,
        &certs,
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo end"],
        b"docker via tls\n",
    );
    assert_eq!(out.ok(), "docker via tls\nend", "{}", out.stderr);
    let out = docker_tls(
        &d,
        port,
        &certs,
        &["exec", "-i", "tlsbox", "sh", "-c", "wc -c"],
        b"12345",
    );
    assert_eq!(out.ok(), "5", "{}", out.stderr);
    let out = docker_tls(&d, port, &certs, &["save", "busybox"], b"");
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = docker_tls(&d, port, &certs, &["rm", "-f", "tlsbox"], b"");
    assert_eq!(out.ok(), "tlsbox", "{}", out.stderr);
}

#[test]
fn clients_without_a_good_certificate_are_refused_in_the_handshake() {
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let d = tls_daemon(&pki, port);

    let create = ["create", "--name", "must-not-exist", "busybox"];
    // No client certificate at all.
    let none = vec![
        "--tlsverify".to_string(),
        "--tlscacert".into(),
        pki.path("good-ca.pem"),
    ];
    for (what, args) in [
        ("no certificate", none),
        ("another CA", client_args(&pki, "foreign")),
        ("expired", client_args(&pki, "expired")),
    ] {
        let out = berth_tls(&d, port, &args, &create, None);
        assert_ne!(out.status, 0, "{what}: {}", out.stdout);
        assert!(
            out.stderr.contains("error during connect") && out.stderr.contains("tls"),
            "{what}: {}",
            out.stderr
        );
    }
    // The Docker CLI with another CA's certificate.
    let foreign = tmp.path().join("foreign-docker");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::copy(pki.dir.join("good-ca.pem"), foreign.join("ca.pem")).unwrap();
    std::fs::copy(pki.dir.join("foreign-cert.pem"), foreign.join("cert.pem")).unwrap();
    std::fs::copy(pki.dir.join("foreign-key.pem"), foreign.join("key.pem")).unwrap();
    let out = docker_tls(&d, port, &foreign, &create, b"");
    assert_ne!(out.status, 0, "{}", out.stdout);
    assert!(out.stderr.contains("tls"), "{}", out.stderr);

    // Nothing reached a handler: the container does not exist (asked over the unix socket).
    let out = d.berth(["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!out.ok().contains("must-not-exist"), "{}", out.stdout);
    // Each refusal is logged with the peer and the reason.
    let log = d.log_text();
    let refusals = log.matches("TLS handshake error from 127.0.0.1:").count();
    assert!(refusals >= 4, "{refusals} refusals logged:\n{log}");
    assert!(
        log.contains("certificate signed by unknown authority")
            || log.contains("unknown certificate authority")
            || log.contains("UnknownIssuer"),
        "{log}"
    );
    assert!(log.contains("expired"), "{log}");

    // The berth CLI refuses a daemon whose certificate is not from the CA it trusts.
    let wrong_ca = vec![
        "--tlsverify".to_string(),
        "--tlscacert".into(),
        pki.path("other-ca.pem"),
        "--tlscert".into(),
        pki.path("client-cert.pem"),
        "--tlskey".into(),
        pki.path("client-key.pem"),
    ];
    let out = berth_tls(&d, port, &wrong_ca, &["version"], None);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr
            .contains("certificate signed by unknown authority"),
        "{}",
        out.stderr
    );
    // --tls without --tlsverify does not check the daemon (but still needs a client cert).
    let tls_only = vec![
        "--tls".to_string(),
        "--tlscert".into(),
        pki.path("client-cert.pem"),
        "--tlskey".into(),
        pki.path("client-key.pem"),
    ];
    let out = berth_tls(
        &d,
        port,
        &tls_only,
        &["version", "--format", "{{.Server.Os}}"],
        None,
    );
    assert_eq!(out.ok(), "linux", "{}", out.stderr);
    // A missing CA file is named.
    let missing = vec![
        "--tlsverify".to_string(),
        "--tlscacert".into(),
        "/nonexistent/ca.pem".into(),
    ];
    let out = berth_tls(&d, port, &missing, &["version"], None);
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("/nonexistent/ca.pem"), "{}", out.stderr);
}

#[test]
fn plain_http_on_the_tls_port_is_refused_cleanly() {
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let d = tls_daemon(&pki, port);

    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{answer:?}"
    );
    assert!(
        answer.contains("Client sent an HTTP request to an HTTPS server."),
        "{answer:?}"
    );
    // Garbage that is not TLS: the connection is closed without an answer.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&[0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07])
        .unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/"),
        "{rest:?}"
    );
    // The berth CLI without TLS on the TLS port: a clear error, no hang.
    let out = berth_tls(&d, port, &[], &["version"], None);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr
            .contains("Client sent an HTTP request to an HTTPS server"),
        "{}",
        out.stderr
    );
    // The daemon still serves good clients.
    let out = berth_tls(
        &d,
        port,
        &client_args(&pki, "client"),
        &["version", "--format", "{{.Server.Os}}"],
        None,
    );
    assert_eq!(out.ok(), "linux", "{}", out.stderr);
}

#[test]
fn plain_tcp_on_a_public_address_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(tmp.path().join("none.json"), "{}").unwrap();
    let out = Command::new(berth_bin())
        .arg("daemon")
        .arg("--data-root")
        .arg(tmp.path().join("d"))
        .arg("--exec-root")
        .arg(tmp.path().join("x"))
        .arg("--config-file")
        .arg(tmp.path().join("none.json"))
        .arg("-H")
        .arg(format!("tcp://0.0.0.0:{port}"))
        .env_remove("DOCKER_TLS_VERIFY")
        .output()
        .unwrap();
    let out = Out::of(out);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("refusing to listen on tcp://0.0.0.0")
            && out.stderr.contains("--tls=false"),
        "{}",
        out.stderr
    );
    // Nothing was created: the check runs before the engine opens its roots.
    assert!(!tmp.path().join("d").exists());
    // --tlsverify with certificate files that do not exist: named in the error.
    let out = Out::of(
        Command::new(berth_bin())
            .arg("daemon")
            .arg("--data-root")
            .arg(tmp.path().join("d"))
            .arg("--exec-root")
            .arg(tmp.path().join("x"))
            .arg("--config-file")
            .arg(tmp.path().join("none.json"))
            .arg("-H")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--tlsverify")
            .arg("--tlscacert")
            .arg(tmp.path().join("nope-ca.pem"))
            .output()
            .unwrap(),
    );
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("could not read") && out.stderr.contains(".pem"),
        "{}",
        out.stderr
    );
}
