//! `berth registry serve` with real clients: skopeo (plain, Basic auth, token auth over TLS),
//! curl over HTTP/2, crash safety under kill -9, graceful shutdown and `berth registry gc`.

mod registry_util;

use std::process::Command;
use std::time::Duration;

use registry_util::*;

const BUSYBOX_CONFIG: &str = "skopeo-inspect-config";

fn config_digest(image: &str, extra: &[&str]) -> String {
    let out = ok(Command::new("skopeo")
        .args(["inspect", "--raw", "--config"])
        .args(extra)
        .arg(image));
    let _ = BUSYBOX_CONFIG;
    berth_image::digest::Digest::sha256_of(out.as_bytes()).to_string()
}

#[test]
fn skopeo_round_trip_without_auth() {
    let t = tempfile::tempdir().unwrap();
    let archive = busybox_archive(t.path());
    let reg = Registry::start(&t.path().join("root"), &[]);
    let dest = format!("docker://{}/library/busybox:latest", reg.addr);
    ok(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(&dest));
    // Back into a dir: and a docker-archive:.
    let dir = t.path().join("out-dir");
    ok(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(&dest)
        .arg(format!("dir:{}", dir.display())));
    assert!(dir.join("manifest.json").exists());
    let back = t.path().join("back.tar");
    ok(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(&dest)
        .arg(format!("docker-archive:{}:busybox:latest", back.display())));
    let original = config_digest(&format!("docker-archive:{}", archive.display()), &[]);
    assert_eq!(
        config_digest(&format!("docker-archive:{}", back.display()), &[]),
        original
    );
    assert_eq!(config_digest(&dest, &["--tls-verify=false"]), original);
    // OCI format copy inside the registry (cross-repository) and tag listing.
    ok(Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--format",
            "oci",
        ])
        .arg(&dest)
        .arg(format!("docker://{}/me/oci:v1", reg.addr)));
    let tags = ok(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/me/oci", reg.addr)));
    assert!(tags.contains("\"v1\""), "{tags}");
    check_store(&reg.root);
}

#[test]
fn skopeo_with_basic_auth() {
    let t = tempfile::tempdir().unwrap();
    let archive = busybox_archive(t.path());
    let h = htpasswd(t.path(), &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let cfg = t.path().join("registry.yml");
    std::fs::write(
        &cfg,
        "access:\n  - account: \"*\"\n    name: \"${account}/*\"\n    actions: [pull, push, delete]\n",
    )
    .unwrap();
    let reg = Registry::start(
        &t.path().join("root"),
        &[
            "--htpasswd",
            h.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let src = format!("docker-archive:{}", archive.display());
    let dest = format!("docker://{}/alice/busybox:1", reg.addr);
    // Without credentials.
    let out = run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(&src)
        .arg(&dest));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    // Wrong password.
    let out = run(Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:nope",
        ])
        .arg(&src)
        .arg(&dest));
    assert!(!out.status.success());
    // Right password.
    ok(Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:alice-pw",
        ])
        .arg(&src)
        .arg(&dest));
    // bob may not push into alice/.
    let out = run(Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "bob:bob-pw",
        ])
        .arg(&src)
        .arg(format!("docker://{}/alice/other:1", reg.addr)));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // skopeo checks for the blob first (HEAD): the refusal has no body there.
    assert!(
        err.contains("denied") || err.contains("403 (Forbidden)"),
        "{err}"
    );
    // Pull back with --src-creds.
    ok(Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            "alice:alice-pw",
        ])
        .arg(&dest)
        .arg(format!("dir:{}", t.path().join("pulled").display())));
    let out = run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(&dest)
        .arg(format!("dir:{}", t.path().join("anon").display())));
    assert!(!out.status.success());
}

#[test]
fn skopeo_with_tokens_over_tls_and_http2() {
    let t = tempfile::tempdir().unwrap();
    let archive = busybox_archive(t.path());
    let h = htpasswd(t.path(), &[("alice", "alice-pw")]);
    let (cert, key) = self_signed(t.path());
    let cfg = t.path().join("registry.yml");
    std::fs::write(
        &cfg,
        "auth:\n  token:\n    service: test-registry\naccess:\n  - account: \"*\"\n    name: \"${account}/*\"\n    actions: [pull, push]\n  - account: anonymous\n    name: \"alice/public\"\n    actions: [pull]\n",
    )
    .unwrap();
    let reg = Registry::start(
        &t.path().join("root"),
        &[
            "--htpasswd",
            h.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // HTTP/2 over TLS (ALPN) and the Bearer challenge.
    let out = ok(Command::new("curl")
        .args([
            "-sk",
            "--http2",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "%{http_version}",
        ])
        .arg(format!("https://{}/v2/", reg.addr)));
    assert!(out.ends_with('2'), "{out}");
    assert!(
        out.contains(&format!(
            "www-authenticate: Bearer realm=\"https://{}/token\",service=\"test-registry\"",
            reg.addr
        )),
        "{out}"
    );
    let src = format!("docker-archive:{}", archive.display());
    for repo in ["alice/busybox:1", "alice/public:1"] {
        ok(Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "alice:alice-pw",
            ])
            .arg(&src)
            .arg(format!("docker://{}/{repo}", reg.addr)));
    }
    ok(Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            "alice:alice-pw",
        ])
        .arg(format!("docker://{}/alice/busybox:1", reg.addr))
        .arg(format!(
            "docker-archive:{}",
            t.path().join("back.tar").display()
        )));
    // Anonymous pull of the public repository works, of the private one not.
    ok(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/alice/public:1", reg.addr))
        .arg(format!("dir:{}", t.path().join("public").display())));
    let out = run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/alice/busybox:1", reg.addr))
        .arg(format!("dir:{}", t.path().join("private").display())));
    assert!(!out.status.success());
    assert!(t.path().join("root/token-key.pem").exists());
}

#[test]
fn kill9_during_uploads_never_exposes_partial_content() {
    let t = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(&t.path().join("root"), &[]);
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let big_path = t.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
    let d = berth_image::digest::Digest::sha256_of(&big);
    for (round, delay_ms) in [150u64, 400, 900].into_iter().enumerate() {
        // A chunked upload with a first chunk done.
        let (code, _) = curl(&[
            "-X",
            "POST",
            "-D",
            t.path().join("h").to_str().unwrap(),
            &reg.url("/v2/crash/me/blobs/uploads/"),
        ]);
        assert_eq!(code, 202);
        let headers = std::fs::read_to_string(t.path().join("h")).unwrap();
        let loc = headers
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .unwrap()
            .trim()
            .to_string();
        let first = t.path().join("first.bin");
        std::fs::write(&first, &big[..1_000_000]).unwrap();
        let (code, _) = curl(&[
            "-X",
            "PATCH",
            "--data-binary",
            &format!("@{}", first.display()),
            &reg.url(&loc),
        ]);
        assert_eq!(code, 202);
        // In flight when the registry dies: a slow chunk and a slow monolithic upload.
        let rest = t.path().join("rest.bin");
        std::fs::write(&rest, &big[1_000_000..]).unwrap();
        let mut slow_chunk = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "--limit-rate",
                "1M",
                "-X",
                "PATCH",
                "--data-binary",
            ])
            .arg(format!("@{}", rest.display()))
            .arg(reg.url(&loc))
            .spawn()
            .unwrap();
        let mono_digest = format!("sha256:{}", "ab".repeat(32));
        let mut slow_mono = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "--limit-rate",
                "1M",
                "-X",
                "POST",
                "--data-binary",
            ])
            .arg(format!("@{}", big_path.display()))
            .arg(reg.url(&format!("/v2/crash/mono{round}/blobs/uploads/?digest={d}")))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        reg.kill9();
        let _ = slow_chunk.wait();
        let _ = slow_mono.wait();
        let _ = mono_digest;
        check_store(&reg.root);
        reg.restart();
        check_store(&reg.root);
        // The interrupted monolithic upload exposed nothing.
        let (code, _) = curl(&[
            "-o",
            "/dev/null",
            &reg.url(&format!("/v2/crash/mono{round}/blobs/{d}")),
        ]);
        assert_eq!(code, 404);
        // The chunked upload resumes from what reached the disk.
        let (code, _) = curl(&[
            "-o",
            "/dev/null",
            "-D",
            t.path().join("h").to_str().unwrap(),
            &reg.url(&loc),
        ]);
        assert_eq!(code, 204);
        let headers = std::fs::read_to_string(t.path().join("h")).unwrap();
        let range = headers
            .lines()
            .find_map(|l| l.strip_prefix("range: "))
            .unwrap()
            .trim()
            .to_string();
        let offset: usize = range.split('-').nth(1).unwrap().parse::<usize>().unwrap() + 1;
        assert!(
            offset >= 1_000_000 && offset <= big.len(),
            "offset {offset}"
        );
        let tail = t.path().join("tail.bin");
        std::fs::write(&tail, &big[offset..]).unwrap();
        let (code, body) = curl(&[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Range: {}-{}", offset, big.len() - 1),
            "--data-binary",
            &format!("@{}", tail.display()),
            &reg.url(&format!("{loc}?digest={d}")),
        ]);
        assert_eq!(code, 201, "{body}");
        let got = t.path().join("got.bin");
        let (code, _) = curl(&[
            "-o",
            got.to_str().unwrap(),
            &reg.url(&format!("/v2/crash/me/blobs/{d}")),
        ]);
        assert_eq!(code, 200);
        assert_eq!(std::fs::read(&got).unwrap(), big);
        // Start the next round with the blob gone from the store.
        std::fs::remove_file(
            reg.root
                .join("blobs/sha256")
                .join(&d.hex()[..2])
                .join(d.hex()),
        )
        .unwrap();
        std::fs::remove_file(
            reg.root
                .join("repositories/crash/me/_layers/sha256")
                .join(d.hex()),
        )
        .unwrap();
    }
    assert_eq!(std::fs::read_dir(reg.root.join("tmp")).unwrap().count(), 0);
}

#[test]
fn graceful_shutdown_and_gc() {
    let t = tempfile::tempdir().unwrap();
    let archive = busybox_archive(t.path());
    let root = t.path().join("root");
    let mut reg = Registry::start(&root, &[]);
    let dest = format!("docker://{}/library/busybox:latest", reg.addr);
    ok(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(&dest));
    // An orphan blob (pushed, never referenced).
    let orphan = t.path().join("orphan");
    std::fs::write(&orphan, b"orphan bytes").unwrap();
    let od = berth_image::digest::Digest::sha256_of(b"orphan bytes");
    let (code, _) = curl(&[
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", orphan.display()),
        &reg.url(&format!("/v2/library/busybox/blobs/uploads/?digest={od}")),
    ]);
    assert_eq!(code, 201);
    // gc refuses to run next to a live registry.
    let out = run(Command::new(berth())
        .args(["registry", "gc", "--root"])
        .arg(&root));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it first"));
    // SIGTERM: clean exit.
    assert!(reg.terminate().success(), "{}", reg.log_text());
    let dry = ok(Command::new(berth())
        .args(["registry", "gc", "--dry-run", "--root"])
        .arg(&root));
    assert!(dry.contains(&format!("would delete blob {od}")), "{dry}");
    assert!(dry.contains("0 manifests and 1 blobs"), "{dry}");
    let blob = root
        .join("blobs/sha256")
        .join(&od.hex()[..2])
        .join(od.hex());
    assert!(blob.exists());
    let real = ok(Command::new(berth())
        .args(["registry", "gc", "--root"])
        .arg(&root));
    assert!(real.contains(&format!("deleted blob {od}")), "{real}");
    assert!(!blob.exists());
    // Everything referenced is still served.
    reg.restart();
    ok(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/library/busybox:latest", reg.addr))
        .arg(format!("dir:{}", t.path().join("after-gc").display())));
    check_store(&root);
}
