//! Local images through the Docker CLI: load, save, import, images, inspect, history, tag,
//! rmi; hostile and broken archives.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::Daemon;

/// The image ID `scripts/mk-busybox-image` prints (deterministic).
fn busybox_id() -> String {
    let out = Command::new(common::repo_root().join("scripts/mk-busybox-image"))
        .arg(std::env::temp_dir().join(format!("bb-id-{}.tar", std::process::id())))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn load_images_inspect_history_tag_rmi() {
    let d = Daemon::start();
    let o = d
        .docker(["load", "-i", common::busybox_tar().to_str().unwrap()])
        .ok();
    assert_eq!(o, "Loaded image: busybox:latest");
    let id = busybox_id();
    assert_eq!(d.docker(["images", "-q"]).ok(), &id[7..19]);
    let table = d.docker(["images"]).ok();
    assert!(
        table.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{table}"
    );
    assert!(table.contains("busybox      latest"), "{table}");
    let v: serde_json::Value =
        serde_json::from_str(&d.docker(["image", "inspect", "busybox"]).ok()).unwrap();
    let i = &v[0];
    assert_eq!(i["Id"], id.as_str());
    assert_eq!(i["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(i["RootFS"]["Type"], "layers");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(i["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert!(i["Size"].as_i64().unwrap() > 1_000_000);
    assert_eq!(i["Os"], "linux");
    let hist = d
        .docker(["history", "--format", "{{.ID}} {{.CreatedBy}}", "busybox"])
        .ok();
    assert_eq!(hist.lines().count(), 2, "{hist}");
    assert!(
        hist.lines().next().unwrap().starts_with(&id[7..19]),
        "{hist}"
    );
    assert!(hist.contains("<missing>"), "{hist}");

    // tag: same ID under two names; rmi of one only untags
    d.docker(["tag", "busybox", "localhost:5000/me/busybox:v1"])
        .ok();
    let names = d
        .docker(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .ok();
    assert!(
        names.contains(&format!("localhost:5000/me/busybox:v1 {}", &id[7..19])),
        "{names}"
    );
    assert_eq!(
        d.docker(["rmi", "localhost:5000/me/busybox:v1"]).ok(),
        "Untagged: localhost:5000/me/busybox:v1"
    );
    let o = d.docker(["tag", "busybox", "Bad/Name"]);
    assert_ne!(o.status, 0);

    // rmi while a container uses the image: 409 with Docker's text
    d.docker(["create", "--name", "user1", "busybox"]).ok();
    let o = d.docker(["rmi", "busybox"]);
    assert_eq!(o.status, 1);
    assert!(
        o.stderr.contains(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container"
        ),
        "{}",
        o.stderr
    );
    d.docker(["rm", "user1"]).ok();
    let o = d.docker(["rmi", "busybox"]).ok();
    assert!(o.contains("Untagged: busybox:latest"), "{o}");
    assert!(o.contains(&format!("Deleted: {id}")), "{o}");
    assert_eq!(d.docker(["images", "-q"]).ok(), "");
    let o = d.docker(["rmi", "nosuchimage-tr"]);
    assert!(
        o.stderr.contains("No such image: nosuchimage-tr:latest"),
        "{}",
        o.stderr
    );
    let o = d.docker(["image", "inspect", "doesnotexist"]);
    assert!(
        o.stderr.contains("No such image: doesnotexist"),
        "{}",
        o.stderr
    );
}

#[test]
fn save_load_round_trip_and_docker_compatible_layout() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.dir.join("saved.tar");
    d.docker(["save", "-o", out.to_str().unwrap(), "busybox"])
        .ok();
    let list = Command::new("tar").arg("-tf").arg(&out).output().unwrap();
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(names.lines().any(|l| l == "manifest.json"), "{names}");
    assert!(names.lines().any(|l| l == "repositories"), "{names}");
    assert!(names.lines().any(|l| l.ends_with("/layer.tar")), "{names}");
    // load into a fresh daemon: same ID
    let d2 = Daemon::start();
    assert_eq!(
        d2.docker(["load", "-i", out.to_str().unwrap()]).ok(),
        "Loaded image: busybox:latest"
    );
    assert_eq!(d2.docker(["images", "-q", "--no-trunc"]).ok(), busybox_id());
    // gzip-compressed archives load too; `load` from stdin
    let gz = d.dir.join("saved.tar.gz");
    assert!(Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", out.display(), gz.display()))
        .status()
        .unwrap()
        .success());
    let d3 = Daemon::start();
    let bytes = std::fs::read(&gz).unwrap();
    assert_eq!(
        d3.docker_stdin(["load"], &bytes).ok(),
        "Loaded image: busybox:latest"
    );
    assert_eq!(
        d3.docker(["run", "--rm", "busybox", "echo", "works"]).ok(),
        "works"
    );
}

#[test]
fn import_with_changes() {
    let d = Daemon::start();
    let rootfs = common::busybox_rootfs_tar();
    let id = d
        .docker([
            "import",
            "-c",
            "CMD [\"sh\", \"-c\", \"echo $GREETING\"]",
            "-c",
            "ENV GREETING=imported",
            "-m",
            "msg",
            rootfs.to_str().unwrap(),
            "imp:1",
        ])
        .ok();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(d.docker(["run", "--rm", "imp:1"]).ok(), "imported");
    let hist = d
        .docker(["history", "--format", "{{.Comment}}", "imp:1"])
        .ok();
    assert_eq!(hist, "msg");
    let o = d.docker([
        "import",
        "-c",
        "FROBNICATE x",
        rootfs.to_str().unwrap(),
        "imp:2",
    ]);
    assert_ne!(o.status, 0);
}

fn tar_with(entries: &[(&str, &[u8], u8, &str)]) -> Vec<u8> {
    // (name, data, typeflag, linkname) — a tiny ustar writer for hostile test archives.
    let mut out = Vec::new();
    for (name, data, kind, link) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = *kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A `docker save` archive with one layer made of `layer`.
fn archive_with_layer(layer: &[u8], diff_id_override: Option<&str>) -> Vec<u8> {
    use sha2_lite::sha256_hex;
    let diff = diff_id_override
        .map(str::to_string)
        .unwrap_or_else(|| format!("sha256:{}", sha256_hex(layer)));
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    );
    let cfg_hex = sha256_hex(config.as_bytes());
    let manifest = format!(
        r#"[{{"Config":"{cfg_hex}.json","RepoTags":["hostile:1"],"Layers":["l1/layer.tar"]}}]"#
    );
    tar_with(&[
        ("l1/layer.tar", layer, b'0', ""),
        (&format!("{cfg_hex}.json"), config.as_bytes(), b'0', ""),
        ("manifest.json", manifest.as_bytes(), b'0', ""),
    ])
}

/// sha256 through the system's sha256sum (no extra test dependency).
mod sha2_lite {
    pub fn sha256_hex(data: &[u8]) -> String {
        use std::io::Write;
        let mut c = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(data).unwrap();
        let out = c.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }
}

fn assert_store_clean(d: &Daemon) {
    assert_eq!(
        d.docker(["images", "-q"]).ok(),
        "",
        "no image may be left by a failed load"
    );
}

#[test]
fn hostile_and_broken_archives_are_rejected() {
    let d = Daemon::start();
    let sentinel_dir = d.dir.join("sentinel");
    std::fs::create_dir_all(&sentinel_dir).unwrap();
    let sentinel = sentinel_dir.join("victim");
    std::fs::write(&sentinel, "untouched").unwrap();
    let s = sentinel.to_str().unwrap().trim_start_matches('/');

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            archive_with_layer(
                &tar_with(&[(&format!("../../../../../../../../{s}"), b"pwned", b'0', "")]),
                None,
            ),
        ),
        (
            "absolute",
            archive_with_layer(&tar_with(&[(&format!("/{s}"), b"pwned", b'0', "")]), None),
        ),
        (
            "hardlink-out",
            archive_with_layer(&tar_with(&[("h", b"", b'1', "/etc/passwd")]), None),
        ),
        (
            "symlink-then-write",
            archive_with_layer(
                &tar_with(&[
                    ("ln", b"", b'2', sentinel_dir.to_str().unwrap()),
                    ("ln/victim", b"pwned", b'0', ""),
                ]),
                None,
            ),
        ),
        (
            "wrong-diff-id",
            archive_with_layer(
                &tar_with(&[("ok.txt", b"fine", b'0', "")]),
                Some(&format!("sha256:{}", "0".repeat(64))),
            ),
        ),
    ];
    for (name, archive) in cases {
        let o = d.docker_stdin(["load"], &archive);
        assert_ne!(
            o.status, 0,
            "{name}: a hostile archive was accepted: {}",
            o.stdout
        );
        assert_eq!(
            std::fs::read_to_string(&sentinel).unwrap(),
            "untouched",
            "{name}"
        );
        assert_store_clean(&d);
    }
    assert!(!Path::new("/h").exists());
    // truncated archive
    let good = std::fs::read(common::busybox_tar()).unwrap();
    let o = d.docker_stdin(["load"], &good[..good.len() / 2]);
    assert_ne!(o.status, 0);
    assert_store_clean(&d);
    // not an image archive at all
    let o = d.docker_stdin(["load"], &tar_with(&[("hello.txt", b"hi", b'0', "")]));
    assert_ne!(o.status, 0);
    assert!(
        o.stderr.contains("manifest.json")
            || o.stderr.contains("repositories")
            || o.stderr.contains("index.json"),
        "{}",
        o.stderr
    );
    assert_store_clean(&d);
    // and the store still works afterwards
    d.load_busybox();
    assert_eq!(
        d.docker(["run", "--rm", "busybox", "echo", "fine"]).ok(),
        "fine"
    );
    // garbage bytes
    let mut f = std::fs::File::create(d.dir.join("junk")).unwrap();
    f.write_all(&[0x42; 5000]).unwrap();
    let o = d.docker(["load", "-i", d.dir.join("junk").to_str().unwrap()]);
    assert_ne!(o.status, 0);
}

#[test]
fn store_survives_daemon_kill9_during_load() {
    let mut d = Daemon::start();
    // Start a load and kill the daemon in the middle of it.
    let mut c = d.docker_command();
    c.args(["load", "-i", common::busybox_tar().to_str().unwrap()]);
    let child = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(40));
    d.kill9();
    let _ = child.wait_with_output();
    d.start_again();
    // Whatever happened, the store loads, and a fresh load works.
    let imgs = d.docker(["images", "-q"]).ok();
    assert!(imgs.is_empty() || imgs.len() == 12, "{imgs}");
    d.load_busybox();
    assert_eq!(
        d.docker(["run", "--rm", "busybox", "echo", "ok"]).ok(),
        "ok"
    );
}
