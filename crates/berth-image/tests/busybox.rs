//! Root integration tests with the real busybox image made by `scripts/mk-busybox-image`.
//! Everything lives in temp dirs; mounts are undone by guards even when a test fails.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use berth_image::archive::{self, LoadProgress};
use berth_image::rwlayer::is_mountpoint;
use berth_image::store::CreateOptions;
use berth_image::{DeleteItem, Digest, ImageLayer, ImageStore, Reference};

struct Fixture {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    rootfs: PathBuf,
    id: Digest,
}

fn ready() -> bool {
    let root = rustix::process::geteuid().is_root();
    let tools =
        Path::new("/bin/busybox").exists() && Command::new("python3").arg("-V").output().is_ok();
    if !root || !tools {
        eprintln!("skipping: needs root, python3 and /bin/busybox");
    }
    root && tools
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    let rootfs = dir.path().join("rootfs.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mk-busybox-image");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&archive)
        .arg("--rootfs-tar")
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = Digest::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    Fixture {
        _dir: dir,
        archive,
        rootfs,
        id,
    }
}

fn load_file(store: &ImageStore, data: &[u8]) -> Vec<LoadProgress> {
    let mut events = Vec::new();
    archive::load(store, &mut &data[..], &mut |e| events.push(e)).unwrap();
    events
}

/// Unmounts and removes a container layer when dropped.
struct RwGuard {
    store: Arc<ImageStore>,
    id: String,
}

impl Drop for RwGuard {
    fn drop(&mut self) {
        let _ = self.store.layers().unmount_rw(&self.id);
        let _ = self.store.layers().remove_rw(&self.id);
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn load_busybox_plain_gzip_and_oci() {
    if !ready() {
        return;
    }
    let fx = fixture();
    let data = fs::read(&fx.archive).unwrap();
    for input in [data.clone(), gzip(&data)] {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::open(d.path()).unwrap();
        let events = load_file(&store, &input);
        assert_eq!(
            events.last(),
            Some(&LoadProgress::Loaded {
                reference: "busybox:latest".into()
            })
        );
        let img = store.resolve("busybox").unwrap();
        assert_eq!(img.id, fx.id, "deterministic image ID");
        assert_eq!(img.layers.len(), 1);
        assert_eq!(
            img.config.rootfs.diff_ids[0],
            Digest::sha256_of(&fs::read(&fx.rootfs).unwrap())
        );
        assert_eq!(img.familiar_tags(), vec!["busybox:latest"]);
        assert_eq!(
            img.config.config.as_ref().unwrap().cmd.as_deref(),
            Some(&["sh".to_string()][..])
        );
        assert!(img.size() > 500_000);
        let h = store.history("busybox").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].size as u64, img.size());
    }

    // the same image as an OCI layout with a zstd layer, built here
    let rootfs = fs::read(&fx.rootfs).unwrap();
    let mut a = tar::Archive::new(&data[..]);
    let mut config = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == format!("{}.json", fx.id.hex()) {
            e.read_to_end(&mut config).unwrap();
        }
    }
    let z = zstd::encode_all(&rootfs[..], 3).unwrap();
    let zd = Digest::sha256_of(&z);
    let cd = Digest::sha256_of(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": zd.to_string(), "size": z.len()}],
    }))
    .unwrap();
    let md = Digest::sha256_of(&manifest);
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": manifest.len(),
         "annotations": {"io.containerd.image.name": "docker.io/library/busybox:oci", "org.opencontainers.image.ref.name": "oci"}}
    ]}))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".to_string(), index),
        (format!("blobs/sha256/{}", md.hex()), manifest),
        (format!("blobs/sha256/{}", cd.hex()), config),
        (format!("blobs/sha256/{}", zd.hex()), z),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    let oci = b.into_inner().unwrap();
    let d = tempfile::tempdir().unwrap();
    let store = ImageStore::open(d.path()).unwrap();
    load_file(&store, &oci);
    assert_eq!(store.resolve("busybox:oci").unwrap().id, fx.id);
}

#[test]
fn save_and_load_into_another_store() {
    if !ready() {
        return;
    }
    let fx = fixture();
    let d1 = tempfile::tempdir().unwrap();
    let s1 = ImageStore::open(d1.path()).unwrap();
    load_file(&s1, &fs::read(&fx.archive).unwrap());
    let mut out = Vec::new();
    archive::save(&s1, &["busybox".to_string()], &mut out).unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let s2 = ImageStore::open(d2.path()).unwrap();
    load_file(&s2, &out);
    let img = s2.resolve("busybox:latest").unwrap();
    assert_eq!(img.id, fx.id);
    assert_eq!(
        img.layers[0].diff_id,
        s1.resolve("busybox").unwrap().layers[0].diff_id
    );
}

#[test]
fn mount_rw_sees_busybox_and_diff_captures_changes() {
    if !ready() {
        return;
    }
    let fx = fixture();
    let d = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(d.path()).unwrap());
    load_file(&store, &fs::read(&fx.archive).unwrap());
    let img = store.resolve("busybox").unwrap();
    let cid = "c0ffee".repeat(10) + "abcd";
    store.layers().create_rw(&cid, img.top_chain_id()).unwrap();
    let _g = RwGuard {
        store: store.clone(),
        id: cid.clone(),
    };
    let merged = store.layers().mount_rw(&cid).unwrap();
    assert!(is_mountpoint(&merged).unwrap());
    let bb = fs::symlink_metadata(merged.join("bin/busybox")).unwrap();
    assert!(bb.is_file() && bb.len() > 500_000);
    assert_eq!(
        fs::read_link(merged.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    assert_eq!(store.layer_dirs(&img).unwrap().len(), 1);
    // a remount (daemon restart with the rootfs still mounted) is idempotent
    assert_eq!(store.layers().mount_rw(&cid).unwrap(), merged);
    fs::write(merged.join("tmp/hello.txt"), b"hello world").unwrap();
    fs::remove_file(merged.join("etc/group")).unwrap();
    assert_eq!(store.layers().rw_size(&cid).unwrap(), 11);
    let mut diff = Vec::new();
    let stats = store.layers().diff_rw(&cid, &mut diff).unwrap();
    assert_eq!(stats.diff_id, Digest::sha256_of(&diff));
    let mut names = Vec::new();
    for e in tar::Archive::new(&diff[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert!(names.contains(&"tmp/hello.txt".to_string()), "{names:?}");
    assert!(names.contains(&"etc/.wh.group".to_string()), "{names:?}");
    // the image's layer itself is untouched
    let lower = store.layers().diff_dir(img.top_chain_id().unwrap());
    assert!(lower.join("etc/group").exists());
    assert!(!lower.join("tmp/hello.txt").exists());
    // the container keeps the layer alive even if the image goes (forced, stopped container)
    let stopped = |_: &Digest| Some((cid.clone(), false));
    store.delete(img.id.hex(), true, false, &stopped).unwrap();
    assert!(store.layers().exists(img.top_chain_id().unwrap()));
    store.layers().unmount_rw(&cid).unwrap();
    assert!(!is_mountpoint(&merged).unwrap());
    store.layers().unmount_rw(&cid).unwrap();
    store.layers().remove_rw(&cid).unwrap();
    store.gc().unwrap();
    assert!(!store.layers().exists(img.top_chain_id().unwrap()));
}

#[test]
fn shared_layers_stored_once_and_delete_semantics() {
    if !ready() {
        return;
    }
    let fx = fixture();
    let d = tempfile::tempdir().unwrap();
    let store = ImageStore::open(d.path()).unwrap();
    load_file(&store, &fs::read(&fx.archive).unwrap());
    let base = store.resolve("busybox").unwrap();
    // a second image on top of busybox's layer, as a commit would make it
    let mut extra = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(10);
    h.set_mode(0o644);
    extra
        .append_data(&mut h, "committed.txt", &b"committed\n"[..])
        .unwrap();
    let extra = extra.into_inner().unwrap();
    let blob = store.content().put_bytes(&extra).unwrap();
    let applied = store
        .apply_layer_blob(base.top_chain_id(), &blob, None)
        .unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&store.config_bytes(&base.id).unwrap()).unwrap();
    cfg["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::Value::String(applied.meta.diff_id.to_string()));
    cfg["history"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"created_by": "commit"}));
    let mut layers = base.layers.clone();
    layers.push(ImageLayer::from_applied(
        &applied,
        blob,
        "application/vnd.docker.image.rootfs.diff.tar",
        extra.len() as u64,
    ));
    let child = store
        .create_image(
            &serde_json::to_vec(&cfg).unwrap(),
            &layers,
            CreateOptions::default(),
        )
        .unwrap();
    drop(applied);
    store
        .tag_id(
            &child.id,
            &Reference::parse_normalized("tr-committed").unwrap(),
        )
        .unwrap();
    assert_eq!(
        store.layers().list().unwrap().len(),
        2,
        "busybox layer stored once"
    );
    let items = store
        .delete("tr-committed:latest", false, false, &|_| None)
        .unwrap();
    assert_eq!(
        items,
        vec![
            DeleteItem::Untagged("tr-committed:latest".into()),
            DeleteItem::Deleted(child.id.to_string()),
            DeleteItem::Deleted(child.layers[1].chain_id.to_string()),
        ]
    );
    assert!(store.layers().exists(base.top_chain_id().unwrap()));
    let running = |_: &Digest| Some(("395e91ccb4fa".repeat(5) + "abcd", true));
    let e = store.delete("busybox", false, false, &running).unwrap_err();
    assert_eq!(e.kind().http_status(), 409);
    assert!(e.to_string().starts_with("conflict: unable to remove repository reference \"busybox\" (must force) - container 395e91ccb4fa is using its referenced image"));
}

#[test]
fn store_survives_crash_and_rejects_bad_archives() {
    if !ready() {
        return;
    }
    let fx = fixture();
    let data = fs::read(&fx.archive).unwrap();
    let d = tempfile::tempdir().unwrap();
    {
        let store = ImageStore::open(d.path()).unwrap();
        // a truncated archive and one whose layer does not match the config
        let mut events = Vec::new();
        assert!(
            archive::load(&store, &mut &data[..data.len() / 2], &mut |e| events
                .push(e))
            .is_err()
        );
        let mut bad = data.clone();
        // flip a byte inside the busybox binary (inside layer.tar)
        let pos = bad.windows(4).position(|w| w == b"\x7fELF").unwrap() + 100;
        bad[pos] ^= 0xff;
        let e = archive::load(&store, &mut &bad[..], &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("diff ID"), "{e}");
        assert!(store.list().is_empty());
        assert!(store.layers().list().unwrap().is_empty());
        assert!(store.content().list().unwrap().is_empty());
        load_file(&store, &data);
    }
    // leftovers of a crash in the middle of another load
    fs::write(d.path().join("content/ingest/deadbeef"), b"partial blob").unwrap();
    fs::create_dir_all(d.path().join("tmp/load-123/abc")).unwrap();
    fs::create_dir_all(d.path().join("overlay2/.tmp-456/diff/bin")).unwrap();
    fs::write(
        d.path().join("image/.repositories.json.tmp-9"),
        b"{\"refs\":",
    )
    .unwrap();
    let store = ImageStore::open(d.path()).unwrap();
    assert_eq!(store.resolve("busybox").unwrap().id, fx.id);
    assert!(fs::read_dir(d.path().join("content/ingest"))
        .unwrap()
        .next()
        .is_none());
    assert!(fs::read_dir(d.path().join("tmp")).unwrap().next().is_none());
    assert!(!d.path().join("overlay2/.tmp-456").exists());
}

#[test]
fn import_rootfs_with_changes() {
    if !ready() {
        return;
    }
    let fx = fixture();
    let d = tempfile::tempdir().unwrap();
    let store = ImageStore::open(d.path()).unwrap();
    let rootfs = fs::read(&fx.rootfs).unwrap();
    let id = archive::import(
        &store,
        &mut &gzip(&rootfs)[..],
        &[
            r#"CMD ["sh"]"#.to_string(),
            "ENV PATH=/bin:/usr/bin".to_string(),
        ],
        Some("imported for trace"),
        Some(&Reference::parse_normalized("tr-imported:1").unwrap()),
    )
    .unwrap();
    let img = store.resolve("tr-imported:1").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.layers[0].diff_id, Digest::sha256_of(&rootfs));
    let c = img.config.config.as_ref().unwrap();
    assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(
        c.env.as_deref(),
        Some(&["PATH=/bin:/usr/bin".to_string()][..])
    );
    // same layer as the loaded busybox image: stored once
    load_file(&store, &fs::read(&fx.archive).unwrap());
    assert_eq!(store.layers().list().unwrap().len(), 1);
}
