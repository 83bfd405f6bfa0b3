//! The seed's last step with the real Docker CLI against `berth daemon`: tag → login → push
//! → rmi → `run` pulls it back — against Debian's distribution (htpasswd Basic auth) and
//! against `berth registry serve` (bearer tokens), with Docker's messages and exit codes.

mod common;
mod registry_util;

use common::*;

const PASSWORD: &str = "tracepass123";

/// What the CLI printed on both streams.
fn all(o: &Out) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

#[track_caller]
fn fails_with(o: &Out, text: &str) {
    assert_ne!(o.status, 0, "should fail:\n{}", all(o));
    assert!(all(o).contains(text), "expected {text:?} in:\n{}", all(o));
}

#[test]
fn seed_flow_against_distribution_with_basic_auth() {
    let reg = DockerRegistry::start(&[("me", PASSWORD)]);
    let a = reg.addr();
    let d = Daemon::start();
    d.load_busybox();
    let mine = format!("{a}/me/busybox");
    d.docker(["tag", "busybox", &mine]).ok();

    // Not logged in: Docker's Basic-auth refusal, after "Preparing".
    let o = d.docker(["push", &mine]);
    fails_with(&o, "no basic auth credentials");
    assert!(o.stdout.contains("Preparing"), "{}", all(&o));
    // Wrong password: Docker's exact message.
    let o = d.docker_stdin(["login", "-u", "me", "--password-stdin", &a], b"wrong\n");
    assert_eq!(o.status, 1, "{}", all(&o));
    assert_eq!(
        o.stderr.trim(),
        format!("Error response from daemon: login attempt to http://{a}/v2/ failed with status: 401 Unauthorized")
    );
    let o = d.docker_stdin(
        ["login", "-u", "me", "--password-stdin", &a],
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert!(o.ok().contains("Login Succeeded"));

    // Push, push again, push to another repository (a cross-repository mount).
    let o = d.docker(["push", &mine]);
    let out = o.ok();
    assert!(
        out.contains("The push refers to repository [") && out.contains("/me/busybox]"),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("latest: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("digest line")
        .to_string();
    assert!(digest.starts_with("sha256:"), "{out}");
    let again = d.docker(["push", &mine]).ok();
    assert!(again.contains("Layer already exists"), "{again}");
    assert!(
        again.contains(&format!("latest: digest: {digest}")),
        "{again}"
    );
    let other = format!("{a}/me/other:v1");
    d.docker(["tag", "busybox", &other]).ok();
    let o = d.docker(["push", &other]).ok();
    assert!(o.contains("Mounted from me/busybox"), "{o}");
    assert_eq!(reg.requests("POST", "mount=sha256"), 1);

    // skopeo reads what berth pushed.
    let inspect = skopeo([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("me:{PASSWORD}"),
        &format!("docker://{mine}"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&inspect.ok()).unwrap();
    assert_eq!(v["Digest"], digest.as_str());

    // rmi everything, then `run` pulls the image back.
    d.docker(["rmi", &mine, &other, "busybox"]).ok();
    assert_eq!(d.docker(["images", "-q"]).ok(), "");
    let o = d.docker(["run", "--rm", &mine, "echo", "hello from the registry"]);
    assert_eq!(o.stdout.trim(), "hello from the registry", "{}", all(&o));
    for want in [
        "Unable to find image",
        "latest: Pulling from me/busybox",
        "Pull complete",
        &format!("Digest: {digest}"),
        &format!("Status: Downloaded newer image for {mine}:latest"),
    ] {
        assert!(
            o.stderr.contains(want),
            "{want:?} missing in:\n{}",
            o.stderr
        );
    }
    let digests = d
        .docker([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &mine,
        ])
        .ok();
    assert_eq!(digests, format!("[\"{mine}@{digest}\"]"));
    let o = d.docker(["pull", &mine]).ok();
    assert!(
        o.contains(&format!("Status: Image is up to date for {mine}:latest")),
        "{o}"
    );

    // Missing tag and missing repository: 404 with Docker's text, before any progress.
    let o = d.docker(["pull", &format!("{a}/me/busybox:nosuch")]);
    assert_eq!(o.status, 1);
    assert_eq!(
        o.stderr.trim(),
        format!("Error response from daemon: manifest for {a}/me/busybox:nosuch not found: manifest unknown: manifest unknown")
    );
    let o = d.docker(["pull", &format!("{a}/me/nosuchrepo")]);
    fails_with(
        &o,
        &format!(
            "manifest for {a}/me/nosuchrepo:latest not found: manifest unknown: manifest unknown"
        ),
    );

    // Logged out: Docker's anonymous-pull error for a Basic registry.
    d.docker(["logout", &a]).ok();
    d.docker(["rmi", &mine]).ok();
    let o = d.docker(["pull", &mine]);
    assert_eq!(o.status, 1, "{}", all(&o));
    assert_eq!(
        o.stderr.trim(),
        format!("Error response from daemon: Head \"http://{a}/v2/me/busybox/manifests/latest\": no basic auth credentials")
    );

    // Credentials never reach the daemon's log.
    let log = d.log_text();
    assert!(!log.contains(PASSWORD), "password in the daemon log");
    assert!(
        !log.contains("bWU6dHJhY2VwYXNzMTIz"),
        "basic credentials in the daemon log"
    );
}

#[test]
fn seed_flow_against_berth_registry_with_tokens() {
    let t = tempfile::Builder::new()
        .prefix("bdt")
        .tempdir_in("/tmp")
        .unwrap();
    let h = registry_util::htpasswd(t.path(), &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let cfg = t.path().join("token.yml");
    std::fs::write(
        &cfg,
        "auth:\n  token: {}\naccess:\n  - account: \"*\"\n    name: \"${account}/*\"\n    actions: [pull, push, delete]\n",
    )
    .unwrap();
    let reg = registry_util::Registry::start(
        &t.path().join("root"),
        &[
            "--htpasswd",
            h.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let a = reg.addr.clone();
    let d = Daemon::start();
    d.load_busybox();
    let mine = format!("{a}/alice/busybox:v1");
    let theirs = format!("{a}/bob/busybox:v1");
    d.docker(["tag", "busybox", &mine]).ok();
    d.docker(["tag", "busybox", &theirs]).ok();

    let o = d.docker(["push", &mine]);
    fails_with(&o, "denied: requested access to the resource is denied");
    let o = d.docker_stdin(["login", "-u", "alice", "--password-stdin", &a], b"nope\n");
    assert_eq!(o.status, 1);
    assert_eq!(
        o.stderr.trim(),
        format!("Error response from daemon: Get \"http://{a}/v2/\": unauthorized: incorrect username or password")
    );
    let o = d.docker_stdin(
        ["login", "-u", "alice", "--password-stdin", &a],
        b"alice-pw\n",
    );
    assert!(o.ok().contains("Login Succeeded"));
    // The token service issued a refresh token: the CLI stores it as the identity token.
    let stored = std::fs::read_to_string(d.dir.join("docker-config/config.json")).unwrap();
    assert!(stored.contains("identitytoken"), "{stored}");

    let out = d.docker(["push", &mine]).ok();
    assert!(
        out.contains(": Pushed") && out.contains("v1: digest: sha256:"),
        "{out}"
    );
    let o = d.docker(["push", &theirs]);
    fails_with(&o, "denied: requested access to the resource is denied");

    d.docker(["rmi", &mine, &theirs, "busybox"]).ok();
    let o = d.docker(["run", "--rm", &mine, "echo", "pulled with a token"]);
    assert_eq!(o.stdout.trim(), "pulled with a token", "{}", all(&o));
    assert!(o.stderr.contains("Pull complete"), "{}", o.stderr);
    let log = d.log_text();
    assert!(!log.contains("alice-pw"), "password in the daemon log");
}

#[test]
fn seed_flow_with_the_berth_cli() {
    let reg = DockerRegistry::start(&[("me", PASSWORD)]);
    let a = reg.addr();
    let d = Daemon::start();
    d.load_busybox();
    let mine = format!("{a}/me/busybox:v1");
    d.berth(["tag", "busybox", &mine]).ok();
    let o = d.berth(["push", &mine]);
    fails_with(&o, "no basic auth credentials");
    let o = d.berth(["login", "-u", "me", "-p", "wrong", &a]);
    fails_with(&o, "401 Unauthorized");
    let o = d.berth(["login", "-u", "me", "-p", PASSWORD, &a]);
    assert!(o.ok().contains("Login Succeeded"));
    let out = d.berth(["push", &mine]).ok();
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    d.berth(["rmi", &mine, "busybox"]).ok();
    let o = d.berth(["run", "--rm", &mine, "echo", "pulled by berth"]);
    assert_eq!(o.stdout.trim(), "pulled by berth", "{}", all(&o));
    assert!(o.stderr.contains("Pull complete"), "{}", o.stderr);
    let o = d.berth(["pull", &mine]).ok();
    assert!(o.contains("Image is up to date"), "{o}");
    d.berth(["logout", &a]).ok();
    let log = d.log_text();
    assert!(!log.contains(PASSWORD), "password in the daemon log");
}
