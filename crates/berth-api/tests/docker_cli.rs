//! The real Docker CLI 28 (`/usr/local/bin/docker`) against the server with the fake backend.
//! Skipped (with a notice) only when that binary is not installed.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

const DOCKER: &str = "/usr/local/bin/docker";

async fn docker(server: &TestServer, args: &[&str]) -> Output {
    let config = server.dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    tokio::time::timeout(
        T,
        tokio::process::Command::new(DOCKER)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", server.dir.path())
            .env("DOCKER_HOST", server.host())
            .env("DOCKER_CONFIG", &config)
            .env("DOCKER_BUILDKIT", "0")
            .output(),
    )
    .await
    .expect("docker CLI timed out")
    .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli_version_ps_run() {
    if !Path::new(DOCKER).exists() {
        eprintln!("NOTICE: {DOCKER} not installed; the Docker CLI compatibility test did not run");
        return;
    }
    let fake = Fake::new();
    let server = TestServer::start(FakeBackend(fake.clone())).await;

    let out = docker(&server, &["version"]).await;
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(
        s.contains("API version:       1.43 (downgraded from "),
        "{s}"
    );
    assert!(s.contains("Version:          0.1.0-test"), "{s}");
    assert!(
        s.contains("API version:      1.43 (minimum version 1.24)"),
        "{s}"
    );

    let out = docker(&server, &["run", "--rm", "busybox", "echo", "hello"]).await;
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");

    let out = docker(
        &server,
        &["run", "--name", "tr-three", "busybox", "sh", "-c", "exit 3"],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    let out = docker(
        &server,
        &["run", "-d", "--name", "web", "busybox", "httpd", "-f"],
    )
    .await;
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "{s}");

    let out = docker(&server, &["ps"]).await;
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{s}"
    );
    assert_eq!(lines.len(), 2, "only the running container: {s}");
    assert!(
        lines[1].starts_with(&id[..12])
            && lines[1].contains("\"httpd -f\"")
            && lines[1].ends_with("web"),
        "{s}"
    );

    let out = docker(&server, &["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).await;
    let s = text(&out);
    assert!(s.contains("tr-three Exited (3)"), "{s}");

    let out = docker(&server, &["stop", "web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = docker(&server, &["stop", "web"]).await;
    assert!(
        out.status.success(),
        "304 is success for the CLI: {}",
        text(&out)
    );

    let out = docker(&server, &["inspect", "--type", "container", "doesnotexist"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("No such container: doesnotexist"),
        "{}",
        text(&out)
    );

    let out = docker(&server, &["ps", "--filter", "bogus=1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("Error response from daemon: Invalid filter 'bogus'"),
        "{}",
        text(&out)
    );

    let out = docker(&server, &["info", "--format", "{{.ID}} {{.NCPU}}"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "TEST 2\n");

    let calls = fake.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("container_wait ") && c.ends_with(" Removed")),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c.starts_with("container_attach ")),
        "{calls:?}"
    );
}
