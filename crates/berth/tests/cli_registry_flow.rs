//! The seed flow with the berth CLI against `berth daemon` and Debian's distribution
//! registry (htpasswd Basic auth): tag → push refused → login → push → rmi → `run` pulls it
//! back → logout; credentials in `$DOCKER_CONFIG/config.json`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

const PASSWORD: &str = "tracepass123";

fn berth_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(berth_bin())
        .arg("-H")
        .arg(d.host())
        .args(args)
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn tag_login_push_rmi_run_pulls_back() {
    let reg = DockerRegistry::start(&[("me", PASSWORD)]);
    let a = reg.addr();
    let d = Daemon::start();
    d.berth(["load", "-i", busybox_tar().to_str().unwrap()])
        .ok();
    let mine = format!("{a}/me/busybox");
    d.berth(["tag", "busybox", &mine]).ok();

    // Not logged in: Docker's Basic-auth refusal after "Preparing", exit 1.
    let o = d.berth(["push", &mine]);
    assert_eq!(o.status, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.starts_with(&format!(
            "Using default tag: latest\nThe push refers to repository [{mine}]\n"
        )),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains(": Preparing\n"), "{}", o.stdout);
    assert_eq!(o.stderr, "no basic auth credentials\n");

    // Wrong, then right password.
    let (code, _, err) = berth_stdin(
        &d,
        &["login", "-u", "me", "--password-stdin", &a],
        b"wrong\n",
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("Error response from daemon: login attempt to http://{a}/v2/ failed with status: 401 Unauthorized\n")
    );
    let (code, out, err) = berth_stdin(
        &d,
        &["login", "-u", "me", "--password-stdin", &a],
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Login Succeeded\n");
    assert!(
        err.contains("WARNING! Your credentials are stored unencrypted in '"),
        "{err}"
    );
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.dir.join("docker-config/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["auths"][&a]["auth"], "bWU6dHJhY2VwYXNzMTIz");

    // Push, then again (the layer exists).
    let out = d.berth(["push", &mine]).ok();
    assert!(out.contains(": Pushed\n"), "{out}");
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("latest: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("digest line")
        .to_string();
    let again = d.berth(["push", &mine]).ok();
    assert!(again.contains(": Layer already exists\n"), "{again}");
    assert!(
        again.contains(&format!("latest: digest: {digest} ")),
        "{again}"
    );
    assert_eq!(
        d.berth(["push", "-q", &mine]).ok(),
        format!("{mine}:latest")
    );

    // rmi everything; `run` pulls it back (progress on stderr).
    d.berth(["rmi", &mine, "busybox"]).ok();
    assert_eq!(d.berth(["images", "-q"]).ok(), "");
    let o = d.berth(["run", "--rm", &mine, "echo", "hello from the registry"]);
    assert_eq!(o.stdout, "hello from the registry\n", "{}", o.stderr);
    for want in [
        format!("Unable to find image '{mine}:latest' locally\n"),
        "latest: Pulling from me/busybox\n".to_string(),
        ": Pull complete\n".to_string(),
        format!("Digest: {digest}\n"),
        format!("Status: Downloaded newer image for {mine}:latest\n"),
    ] {
        assert!(
            o.stderr.contains(&want),
            "{want:?} missing in:\n{}",
            o.stderr
        );
    }
    let o = d.berth(["pull", &mine]).ok();
    assert!(o.starts_with("Using default tag: latest\n"), "{o}");
    assert!(
        o.contains(&format!("Status: Image is up to date for {mine}:latest")),
        "{o}"
    );
    assert!(o.ends_with(&format!("\n{mine}:latest")), "{o}");
    assert_eq!(
        d.berth([
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Digest}}"
        ])
        .ok(),
        format!("{mine} {digest}")
    );

    // A missing tag: 404 before any progress, exit 1.
    let o = d.berth(["pull", &format!("{mine}:nosuch")]);
    assert_eq!(o.status, 1);
    assert_eq!(
        o.stderr,
        format!("Error response from daemon: manifest for {mine}:nosuch not found: manifest unknown: manifest unknown\n")
    );

    // Logged out: the anonymous pull is refused.
    assert_eq!(
        d.berth(["logout", &a]).ok(),
        format!("Removing login credentials for {a}")
    );
    d.berth(["rmi", &mine]).ok();
    let o = d.berth(["pull", "-q", &mine]);
    assert_eq!(o.status, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("no basic auth credentials"),
        "{}",
        o.stderr
    );
}
