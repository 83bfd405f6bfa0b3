//! Image verbs of the berth CLI against a real `berth daemon` (compare docker-api-traces
//! scenarios 1, 6, 7 and 8).

mod common;

use std::process::{Command, Stdio};

use common::{berth_bin, busybox_rootfs_tar, busybox_tar, Daemon};

fn daemon() -> Daemon {
    let d = Daemon::start();
    let out = d.berth(["load", "-i", busybox_tar().to_str().unwrap()]);
    assert_eq!(out.ok(), "Loaded image: busybox:latest");
    d
}

#[test]
fn images_tag_history_inspect_rmi() {
    let d = daemon();
    let id = d
        .berth(["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .ok();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let short = &id[7..19];

    let table = d.berth(["images"]).ok();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&format!("busybox      latest    {short}   ")),
        "{table}"
    );

    assert_eq!(
        d.berth(["tag", "busybox", "localhost:5000/me/busybox"])
            .ok(),
        ""
    );
    let table = d.berth(["image", "ls"]).ok();
    assert!(
        table.contains("\nlocalhost:5000/me/busybox   latest    "),
        "{table}"
    );
    assert_eq!(d.berth(["images", "-q"]).ok(), format!("{short}\n{short}"));
    assert_eq!(
        d.berth([
            "images",
            "--filter",
            "reference=busybox",
            "--format",
            "{{.Repository}}:{{.Tag}}"
        ])
        .ok(),
        "busybox:latest"
    );
    assert_eq!(
        d.berth(["images", "localhost:5000/me/busybox", "-q"]).ok(),
        short
    );
    assert_eq!(
        d.berth(["images", "nosuchimage"]).ok(),
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE"
    );
    let wide = d.berth(["images", "--no-trunc", "--digests"]).ok();
    assert!(
        wide.starts_with("REPOSITORY                  TAG       DIGEST    IMAGE ID "),
        "{wide}"
    );
    assert!(wide.contains(&id), "{wide}");
    let json: serde_json::Value = serde_json::from_str(
        d.berth(["images", "--format", "{{json .}}"])
            .ok()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for key in [
        "Containers",
        "CreatedAt",
        "CreatedSince",
        "Digest",
        "ID",
        "Repository",
        "SharedSize",
        "Size",
        "Tag",
        "UniqueSize",
        "VirtualSize",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }

    let hist = d.berth(["history", "busybox"]).ok();
    assert!(hist.starts_with("IMAGE          CREATED "), "{hist}");
    assert!(hist.lines().nth(1).unwrap().starts_with(short), "{hist}");
    assert_eq!(
        d.berth(["history", "-q", "busybox"]).ok().lines().next(),
        Some(short)
    );
    let raw = d
        .berth(["history", "-H=false", "--format", "{{.Size}}", "busybox"])
        .ok();
    assert!(raw.lines().all(|l| l.parse::<u64>().is_ok()), "{raw}");

    let inspect: serde_json::Value =
        serde_json::from_str(&d.berth(["image", "inspect", "busybox"]).ok()).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["RepoTags"][0], "busybox:latest");
    // Without --type, inspect falls back to images.
    assert_eq!(d.berth(["inspect", "-f", "{{.Id}}", "busybox"]).ok(), id);
    let o = d.berth(["image", "inspect", "nosuchimage"]);
    assert_eq!(o.status, 1);
    assert_eq!(o.stdout, "[]\n");

    let o = d.berth(["rmi", "localhost:5000/me/busybox"]);
    assert_eq!(o.ok(), "Untagged: localhost:5000/me/busybox:latest");
    let o = d.berth(["rmi", "nosuch-image-tr"]);
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (
            1,
            "Error response from daemon: No such image: nosuch-image-tr:latest\n"
        )
    );
    let o = d.berth(["rmi", "-f", "nosuch-image-tr"]);
    assert_eq!(o.status, 0, "rmi -f of a missing image only warns");
    // In use by a container: 409 without -f.
    let _ = d
        .berth(["create", "--name", "holder", "busybox", "true"])
        .ok();
    let o = d.berth(["rmi", "busybox"]);
    assert_eq!(o.status, 1);
    assert!(
        o.stderr
            .contains("conflict: unable to remove repository reference \"busybox\""),
        "{}",
        o.stderr
    );
}

#[test]
fn save_load_import() {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.tar");
    assert_eq!(
        d.berth(["save", "busybox", "-o", out.to_str().unwrap()])
            .ok(),
        ""
    );
    let names = Command::new("tar").arg("-tf").arg(&out).output().unwrap();
    let names = String::from_utf8_lossy(&names.stdout).into_owned();
    assert!(names.lines().any(|l| l == "manifest.json"), "{names}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let o = d.berth(["save", "-o", "/nonexistent-dir/x.tar", "busybox"]);
    assert_eq!(o.status, 1);
    assert_eq!(o.stderr, "failed to save image: invalid output path: directory \"/nonexistent-dir\" does not exist\n");

    // save to stdout (a pipe) gives the same archive.
    let piped = Command::new(berth_bin())
        .args(["-H", &d.host(), "save", "busybox"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert_eq!(
        piped.stdout.len() as u64,
        std::fs::metadata(&out).unwrap().len()
    );

    assert_eq!(
        d.berth(["rmi", "busybox"]).ok().lines().next(),
        Some("Untagged: busybox:latest")
    );
    assert_eq!(
        d.berth(["load", "-i", out.to_str().unwrap()]).ok(),
        "Loaded image: busybox:latest"
    );
    assert_eq!(
        d.berth(["load", "-q", "-i", out.to_str().unwrap()]).ok(),
        "Loaded image: busybox:latest"
    );
    // A tar that is not an image: the stream's error, exit 1.
    let bad = dir.path().join("notimage.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&bad)
        .arg("-C")
        .arg(dir.path())
        .arg("x.tar")
        .status()
        .unwrap();
    assert!(st.success());
    let o = d.berth(["load", "-i", bad.to_str().unwrap()]);
    assert_eq!(o.status, 1, "{}{}", o.stdout, o.stderr);
    assert!(!o.stderr.is_empty());

    // import a rootfs with a change and a message.
    let id = d
        .berth([
            "import",
            "-c",
            "CMD [\"sh\"]",
            "-m",
            "imported for trace",
            busybox_rootfs_tar().to_str().unwrap(),
            "tr-imported:1",
        ])
        .ok();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        d.berth([
            "image",
            "inspect",
            "-f",
            "{{json .Config.Cmd}} {{.Comment}}",
            "tr-imported:1"
        ])
        .ok(),
        "[\"sh\"] imported for trace"
    );
    assert_eq!(
        d.berth(["run", "--rm", "tr-imported:1", "echo", "from-import"])
            .ok(),
        "from-import"
    );
    let o = d.berth(["import", "/nonexistent.tar"]);
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (1, "open /nonexistent.tar: no such file or directory\n")
    );
}
