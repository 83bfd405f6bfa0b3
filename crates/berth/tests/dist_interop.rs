//! berth's daemon and other registry clients on the same registries: skopeo reads what berth
//! pushes and berth pulls what skopeo pushes (gzip, zstd, OCI); manifest lists pick the
//! platform; concurrent pulls share downloads; `registry-mirrors` make Docker Hub names
//! resolve from a local registry.

mod common;
mod registry_util;

use std::process::Command;
use std::time::Duration;

use berth_registry::client::{Access, ClientConfig, Credentials, RegistryClient};
use bytes::Bytes;
use common::*;

fn all(o: &Out) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

#[test]
fn skopeo_and_berth_exchange_images() {
    let reg = DockerRegistry::start(&[]);
    let a = reg.addr();
    let d = Daemon::start();
    let archive = busybox_tar().to_str().unwrap().to_string();

    // skopeo pushes: Docker schema 2 with gzip, OCI with zstd.
    for (tag, extra) in [
        ("gzip", vec![]),
        (
            "zstd",
            vec!["--format", "oci", "--dest-compress-format", "zstd"],
        ),
        ("oci", vec!["--format", "oci"]),
    ] {
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        args.extend(extra);
        let src = format!("docker-archive:{archive}");
        let dst = format!("docker://{a}/sk/busybox:{tag}");
        args.push(&src);
        args.push(&dst);
        skopeo(&args).ok();
        let img = format!("{a}/sk/busybox:{tag}");
        let o = d.docker(["run", "--rm", &img, "echo", &format!("from skopeo {tag}")]);
        assert_eq!(o.stdout.trim(), format!("from skopeo {tag}"), "{}", all(&o));
    }
    // The three pulls share one layer snapshot (same diff ID, other blobs).
    let ids: Vec<String> = ["gzip", "zstd", "oci"]
        .iter()
        .map(|t| {
            d.docker([
                "image",
                "inspect",
                "--format",
                "{{index .RootFS.Layers 0}}",
                &format!("{a}/sk/busybox:{t}"),
            ])
            .ok()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");

    // berth pushes; skopeo copies it out (verifying every digest on the way).
    d.load_busybox();
    let mine = format!("{a}/be/busybox:1");
    d.docker(["tag", "busybox", &mine]).ok();
    let pushed = d.docker(["push", &mine]).ok();
    let out = tempfile::tempdir().unwrap();
    skopeo([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{mine}"),
        &format!("oci:{}:copy", out.path().join("oci").display()),
    ])
    .ok();
    let raw = skopeo([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{mine}"),
    ])
    .ok();
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let id = d
        .docker(["image", "inspect", "--format", "{{.Id}}", "busybox"])
        .ok();
    assert_eq!(m["config"]["digest"], id.as_str(), "{pushed}");
}

/// Builds a manifest list from the busybox image and a copy of it that claims arm64.
fn make_multi_platform(a: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = RegistryClient::new(ClientConfig::default()).unwrap();
        let repo = c
            .open_registry(a, "me/multi", Credentials::default(), Access::PullPush)
            .await
            .unwrap();
        let m1 = repo.get_manifest("amd64").await.unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&m1.bytes).unwrap();
        let cfg_digest =
            berth_image::Digest::parse(doc["config"]["digest"].as_str().unwrap()).unwrap();
        let cfg = repo.get_blob_bytes(&cfg_digest, 1 << 20).await.unwrap();
        let mut cfg: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
        cfg["architecture"] = "arm64".into();
        cfg["variant"] = "v8".into();
        let cfg = serde_json::to_vec(&cfg).unwrap();
        let cd = berth_image::Digest::sha256_of(&cfg);
        let at = repo.start_upload().await.unwrap();
        repo.upload_bytes(at, &cd, Bytes::from(cfg.clone()))
            .await
            .unwrap();
        doc["config"]["digest"] = cd.to_string().into();
        doc["config"]["size"] = cfg.len().into();
        let m2 = serde_json::to_vec(&doc).unwrap();
        let d2 = berth_image::Digest::sha256_of(&m2);
        let mt = "application/vnd.docker.distribution.manifest.v2+json";
        repo.put_manifest(&d2.to_string(), mt, Bytes::from(m2.clone()))
            .await
            .unwrap();
        let list = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
                {"mediaType": mt, "digest": d2.to_string(), "size": m2.len(),
                 "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                {"mediaType": mt, "digest": m1.digest.to_string(), "size": m1.bytes.len(),
                 "platform": {"architecture": "amd64", "os": "linux"}},
            ]
        });
        let list = serde_json::to_vec(&list).unwrap();
        repo.put_manifest(
            "multi",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            Bytes::from(list),
        )
        .await
        .unwrap()
        .to_string()
    })
}

#[test]
fn manifest_lists_pick_the_platform() {
    let reg = DockerRegistry::start(&[]);
    let a = reg.addr();
    let d = Daemon::start();
    d.load_busybox();
    d.docker(["tag", "busybox", &format!("{a}/me/multi:amd64")])
        .ok();
    d.docker(["push", &format!("{a}/me/multi:amd64")]).ok();
    let list_digest = make_multi_platform(&a);
    d.docker(["rmi", &format!("{a}/me/multi:amd64"), "busybox"])
        .ok();

    let img = format!("{a}/me/multi:multi");
    let o = d.docker(["pull", &img]).ok();
    assert!(o.contains(&format!("Digest: {list_digest}")), "{o}");
    let arch = |d: &Daemon| {
        d.docker(["image", "inspect", "--format", "{{.Architecture}}", &img])
            .ok()
    };
    assert_eq!(arch(&d), "amd64");
    let digests = d
        .docker([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &img,
        ])
        .ok();
    assert!(digests.contains(&list_digest), "{digests}");
    assert_eq!(
        d.docker(["run", "--rm", &img, "echo", "amd64 it is"]).ok(),
        "amd64 it is"
    );
    d.docker(["pull", "--platform", "linux/arm64", &img]).ok();
    assert_eq!(arch(&d), "arm64");
    let o = d.docker(["pull", "--platform", "linux/s390x", &img]);
    assert_eq!(o.status, 1);
    assert!(
        o.stderr
            .contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{}",
        all(&o)
    );
}

#[test]
fn concurrent_pulls_download_each_blob_once() {
    let reg = DockerRegistry::start(&[]);
    let a = reg.addr();
    let d = Daemon::start();
    let t = tempfile::tempdir().unwrap();
    let content = t.path().join("content");
    std::fs::create_dir(&content).unwrap();
    let mut data = vec![0u8; 24 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in data.iter_mut() {
        // xorshift: incompressible, reproducible
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(content.join("big.bin"), &data).unwrap();
    let tar = t.path().join("big.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&content)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let img = format!("{a}/me/big:1");
    d.docker(["import", tar.to_str().unwrap(), &img]).ok();
    d.docker(["push", &img]).ok();
    d.docker(["rmi", &img]).ok();
    let raw = skopeo([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{img}"),
    ])
    .ok();
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();

    let spawn = || {
        d.docker_command()
            .args(["pull", &img])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let p1 = spawn();
    let p2 = spawn();
    let o1 = p1.wait_with_output().unwrap();
    let o2 = p2.wait_with_output().unwrap();
    assert!(
        o1.status.success(),
        "{}",
        String::from_utf8_lossy(&o1.stderr)
    );
    assert!(
        o2.status.success(),
        "{}",
        String::from_utf8_lossy(&o2.stderr)
    );
    assert_eq!(
        reg.requests("GET", &format!("/blobs/{layer}")),
        1,
        "the layer blob was downloaded more than once:\n{}",
        reg.log_text()
    );
    // Whether the two pulls overlapped (both waited for the one download) or not, each
    // recorded the image.
    let shared = [&o1, &o2]
        .iter()
        .all(|o| String::from_utf8_lossy(&o.stdout).contains("Pulling fs layer"));
    eprintln!("both pulls followed the download: {shared}");
    assert_eq!(
        d.docker(["image", "inspect", "--format", "{{.Size}}", &img])
            .ok(),
        (24 << 20).to_string()
    );
}

/// A gzipped one-file layer: (blob, diff ID).
fn small_layer(dir: &std::path::Path, name: &str, content: &str) -> (Vec<u8>, berth_image::Digest) {
    let root = dir.join(format!("layer-{name}"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join(name), content).unwrap();
    let tar = dir.join(format!("{name}.tar"));
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(name)
        .status()
        .unwrap()
        .success());
    let plain = std::fs::read(&tar).unwrap();
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(gz.status.success());
    (gz.stdout, berth_image::Digest::sha256_of(&plain))
}

/// Pushes `me/app:v1` (busybox + /x) and `me/app:v2` (busybox + /x + /y) built from the
/// busybox image at `me/app:base`; returns the two manifest digests.
fn make_layered(a: &str, dir: &std::path::Path) -> (String, String) {
    let l2 = small_layer(dir, "x", "x\n");
    let l3 = small_layer(dir, "y", "y\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = RegistryClient::new(ClientConfig::default()).unwrap();
        let repo = c
            .open_registry(a, "me/app", Credentials::default(), Access::PullPush)
            .await
            .unwrap();
        let base = repo.get_manifest("base").await.unwrap();
        let base: serde_json::Value = serde_json::from_slice(&base.bytes).unwrap();
        let cd = berth_image::Digest::parse(base["config"]["digest"].as_str().unwrap()).unwrap();
        let cfg: serde_json::Value =
            serde_json::from_slice(&repo.get_blob_bytes(&cd, 1 << 20).await.unwrap()).unwrap();
        let mut out = Vec::new();
        for (tag, extra) in [("v1", vec![&l2]), ("v2", vec![&l2, &l3])] {
            let mut cfg = cfg.clone();
            let mut m = base.clone();
            for (blob, diff) in extra {
                let d = berth_image::Digest::sha256_of(blob);
                if repo.head_blob(&d).await.unwrap().is_none() {
                    let at = repo.start_upload().await.unwrap();
                    repo.upload_bytes(at, &d, Bytes::from(blob.clone()))
                        .await
                        .unwrap();
                }
                cfg["rootfs"]["diff_ids"]
                    .as_array_mut()
                    .unwrap()
                    .push(diff.to_string().into());
                cfg["history"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"created_by": "test layer"}));
                m["layers"].as_array_mut().unwrap().push(serde_json::json!({
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": blob.len(), "digest": d.to_string()}));
            }
            let cfg = serde_json::to_vec(&cfg).unwrap();
            let cfgd = berth_image::Digest::sha256_of(&cfg);
            let at = repo.start_upload().await.unwrap();
            repo.upload_bytes(at, &cfgd, Bytes::from(cfg.clone()))
                .await
                .unwrap();
            m["config"]["digest"] = cfgd.to_string().into();
            m["config"]["size"] = cfg.len().into();
            let d = repo
                .put_manifest(
                    tag,
                    "application/vnd.docker.distribution.manifest.v2+json",
                    Bytes::from(serde_json::to_vec(&m).unwrap()),
                )
                .await
                .unwrap();
            out.push(d.to_string());
        }
        (out[0].clone(), out[1].clone())
    })
}

#[test]
fn layers_digests_all_tags_and_distribution_inspect() {
    let reg = DockerRegistry::start(&[]);
    let a = reg.addr();
    let t = tempfile::tempdir().unwrap();
    let d = Daemon::start();
    d.load_busybox();
    d.docker(["tag", "busybox", &format!("{a}/me/app:base")])
        .ok();
    d.docker(["push", &format!("{a}/me/app:base")]).ok();
    let (v1, v2) = make_layered(&a, t.path());

    // The busybox layer is here already; the two others are downloaded.
    let img = format!("{a}/me/app:v2");
    let o = d.docker(["pull", &img]).ok();
    assert_eq!(o.matches("Already exists").count(), 1, "{o}");
    assert_eq!(o.matches("Pull complete").count(), 2, "{o}");
    assert_eq!(
        d.docker(["run", "--rm", &img, "cat", "/x", "/y"]).ok(),
        "x\ny"
    );
    // By digest.
    let by_digest = format!("{a}/me/app@{v1}");
    let o = d.docker(["pull", &by_digest]).ok();
    assert!(o.contains(&format!("Digest: {v1}")), "{o}");
    assert_eq!(d.docker(["run", "--rm", &by_digest, "cat", "/x"]).ok(), "x");
    // push --all-tags: every tag of the repository; the layers are mounted from me/app.
    d.docker(["tag", &img, &format!("{a}/me/copy:a")]).ok();
    d.docker(["tag", &img, &format!("{a}/me/copy:b")]).ok();
    let o = d
        .docker(["push", "--all-tags", &format!("{a}/me/copy")])
        .ok();
    assert!(
        o.contains("a: digest: sha256:") && o.contains("b: digest: sha256:"),
        "{o}"
    );
    assert!(o.contains("Mounted from me/app"), "{o}");
    // GET /distribution/{name}/json
    let (status, body) = d.raw("GET", &format!("/v1.41/distribution/{img}/json"), None, b"");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Descriptor"]["digest"], v2.as_str());
    assert_eq!(
        v["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(v["Platforms"][0]["architecture"], "amd64");
    assert_eq!(v["Platforms"][0]["os"], "linux");

    // One download at a time: the other layers wait.
    let e = Daemon::start_with(r#"{"max-concurrent-downloads": 1}"#);
    let o = e.docker(["pull", &img]).ok();
    assert!(o.contains(": Waiting"), "{o}");
    assert_eq!(o.matches("Pull complete").count(), 3, "{o}");
}

/// The markers of pulled data not yet flushed (`<data-root>/pending-sync`).
fn pending_markers(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.data_root.join("pending-sync"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn pulled_layers_are_flushed_after_the_pull_and_dropped_only_after_a_machine_crash() {
    let reg = DockerRegistry::start(&[]);
    let a = reg.addr();
    let archive = busybox_tar().to_str().unwrap().to_string();
    let img = format!("{a}/durable/busybox:1");
    skopeo([
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{archive}"),
        &format!("docker://{img}"),
    ])
    .ok();
    let mut d = Daemon::start();
    d.docker(["pull", &img]).ok();
    // The pull returned before its layer was flushed; the flush follows in the background.
    let flushed = wait_for(Duration::from_secs(20), || {
        pending_markers(&d).is_empty().then_some(())
    });
    assert!(flushed.is_some(), "markers left: {:?}", pending_markers(&d));
    let layer = d
        .docker([
            "image",
            "inspect",
            "--format",
            "{{index .RootFS.Layers 0}}",
            &img,
        ])
        .ok();
    let layer_hex = layer.trim().strip_prefix("sha256:").unwrap().to_string();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let mark = |d: &Daemon, boot: &str| {
        std::fs::write(
            d.data_root
                .join("pending-sync")
                .join(format!("layer-sha256-{layer_hex}")),
            boot,
        )
        .unwrap();
    };

    // The daemon dies with the layer unflushed, the machine keeps running: the page cache
    // still holds everything, so the image stays and the marker is settled.
    d.kill9();
    mark(&d, boot.trim());
    d.start_again();
    assert!(pending_markers(&d).is_empty(), "{:?}", pending_markers(&d));
    let o = d.docker(["run", "--rm", &img, "echo", "still here"]);
    assert_eq!(o.stdout.trim(), "still here", "{}", all(&o));

    // The machine went down before the flush (the marker is from another boot): the layer
    // may be incomplete, so it and the image using it are removed, and the store loads.
    d.kill9();
    mark(&d, "00000000-0000-0000-0000-000000000000");
    d.start_again();
    assert!(pending_markers(&d).is_empty(), "{:?}", pending_markers(&d));
    assert!(
        !d.data_root.join("overlay2").join(&layer_hex).exists(),
        "the unflushed layer is gone"
    );
    let o = d.docker(["image", "inspect", &img]);
    assert_ne!(o.status, 0, "the image is gone: {}", all(&o));
    assert!(
        d.log_text().contains("did not reach the disk"),
        "the log says why: {}",
        d.log_text()
    );
    // ... and comes back with the next pull.
    let o = d.docker(["run", "--rm", &img, "echo", "pulled again"]);
    assert_eq!(o.stdout.trim(), "pulled again", "{}", all(&o));
    assert!(o.stderr.contains("Unable to find image"), "{}", all(&o));
}
