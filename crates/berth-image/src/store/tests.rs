use super::*;
use crate::testutil::{tar_of, Ent};

pub(crate) fn mk_image(
    store: &ImageStore,
    layer_tars: &[Vec<u8>],
    tag: Option<&str>,
    created: &str,
    parent: Option<Digest>,
) -> Arc<Image> {
    let mut layers = Vec::new();
    let mut pins = Vec::new();
    let mut history = Vec::new();
    for t in layer_tars {
        let blob = store.content().put_bytes(t).unwrap();
        let applied = store
            .apply_layer_blob(layers.last().map(|l: &ImageLayer| &l.chain_id), &blob, None)
            .unwrap();
        layers.push(ImageLayer::from_applied(
            &applied,
            blob,
            MEDIA_TYPE_DOCKER_LAYER_TAR,
            t.len() as u64,
        ));
        pins.push(applied);
        history.push(serde_json::json!({"created": created, "created_by": format!("layer {}", layers.len())}));
    }
    history.push(
        serde_json::json!({"created": created, "created_by": "CMD [\"sh\"]", "empty_layer": true}),
    );
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        "history": history,
    });
    let bytes = serde_json::to_vec(&config).unwrap();
    let img = store
        .create_image(
            &bytes,
            &layers,
            CreateOptions {
                parent,
                ..Default::default()
            },
        )
        .unwrap();
    if let Some(t) = tag {
        store
            .tag(
                &img.id.to_string(),
                &Reference::parse_normalized(t).unwrap(),
            )
            .unwrap();
    }
    store.get(&img.id).unwrap()
}

fn base_tar() -> Vec<u8> {
    tar_of(&[Ent::dir("bin/"), Ent::file("bin/sh", "shell!")])
}

fn no_containers(_: &Digest) -> Option<(String, bool)> {
    None
}

#[test]
fn resolve_follows_docker_rules() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let img = mk_image(
        &s,
        &[base_tar()],
        Some("busybox"),
        "2023-11-14T22:13:20Z",
        None,
    );
    let id = img.id.to_string();
    for q in [
        id.as_str(),
        img.id.hex(),
        &img.id.hex()[..12],
        &id[..19],
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
    ] {
        assert_eq!(s.resolve(q).unwrap().id, img.id, "{q}");
    }
    let by_digest =
        Reference::parse_normalized(&format!("busybox@sha256:{}", "a".repeat(64))).unwrap();
    s.add_digest_ref(&img.id, &by_digest).unwrap();
    assert_eq!(
        s.resolve(&format!("busybox@sha256:{}", "a".repeat(64)))
            .unwrap()
            .id,
        img.id
    );
    assert_eq!(s.resolve("busybox").unwrap().familiar_digests().len(), 1);
    let e = s.resolve("nosuchimage-tr:1.0").unwrap_err();
    assert_eq!(e.to_string(), "No such image: nosuchimage-tr:1.0");
    assert_eq!(e.kind(), crate::ErrorKind::NotFound);
    assert_eq!(
        s.resolve("busybox:1").unwrap_err().to_string(),
        "No such image: busybox:1"
    );
    assert_eq!(
        s.resolve("nothere").unwrap_err().to_string(),
        "No such image: nothere:latest"
    );
    let missing = format!("sha256:{}", "b".repeat(64));
    assert_eq!(
        s.resolve(&missing).unwrap_err().to_string(),
        format!("No such image: {missing}")
    );
    let e = s.resolve("BusyBox").unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
}

#[test]
fn tags_move_and_persist() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let a = mk_image(
        &s,
        &[base_tar()],
        Some("app:1"),
        "2023-01-01T00:00:00Z",
        None,
    );
    let b = mk_image(
        &s,
        &[tar_of(&[Ent::file("other", "x")])],
        None,
        "2024-01-01T00:00:00Z",
        None,
    );
    s.tag("app:1", &Reference::parse_normalized("me/app").unwrap())
        .unwrap();
    assert_eq!(
        s.get(&a.id).unwrap().familiar_tags(),
        vec!["app:1", "me/app:latest"]
    );
    assert!(s.get(&a.id).unwrap().last_tag_time.is_some());
    // moving a tag leaves nothing behind on the old image
    s.tag(
        &b.id.to_string(),
        &Reference::parse_normalized("app:1").unwrap(),
    )
    .unwrap();
    assert_eq!(s.get(&a.id).unwrap().familiar_tags(), vec!["me/app:latest"]);
    assert!(s
        .tag(
            "app:1",
            &Reference::parse_normalized(&format!("x@sha256:{}", "c".repeat(64))).unwrap()
        )
        .is_err());
    assert_eq!(
        s.untag(&Reference::parse_normalized("me/app").unwrap())
            .unwrap(),
        Some(a.id.clone())
    );
    let listed: Vec<_> = s.list().iter().map(|i| i.id.clone()).collect();
    assert_eq!(listed, vec![b.id.clone(), a.id.clone()], "newest first");
    drop(s);
    let s = ImageStore::open(d.path()).unwrap();
    assert_eq!(s.resolve("app:1").unwrap().id, b.id);
    assert!(
        s.get(&a.id).unwrap().repo_tags.is_empty(),
        "dangling survives"
    );
}

#[test]
fn delete_untags_then_deletes_with_layers() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let base = base_tar();
    let a = mk_image(
        &s,
        std::slice::from_ref(&base),
        Some("busybox"),
        "2023-01-01T00:00:00Z",
        None,
    );
    let b = mk_image(
        &s,
        &[base, tar_of(&[Ent::file("committed.txt", "c")])],
        Some("tr-committed"),
        "2023-01-02T00:00:00Z",
        None,
    );
    s.tag(
        "busybox",
        &Reference::parse_normalized("busybox:other").unwrap(),
    )
    .unwrap();
    // one of two tags: untag only
    assert_eq!(
        s.delete("busybox:other", false, true, &no_containers)
            .unwrap(),
        vec![DeleteItem::Untagged("busybox:other".into())]
    );
    // the two-layer image shares its base layer: only the top layer goes
    let top = b.layers[1].chain_id.clone();
    assert_eq!(
        s.delete("tr-committed:latest", false, true, &no_containers)
            .unwrap(),
        vec![
            DeleteItem::Untagged("tr-committed:latest".into()),
            DeleteItem::Deleted(b.id.to_string()),
            DeleteItem::Deleted(top.to_string()),
        ]
    );
    assert!(s.layers().exists(&a.layers[0].chain_id));
    assert!(!s.layers().exists(&top));
    assert!(!s.content().exists(&b.id));
    assert!(!s.content().exists(&b.layers[1].blob));
    assert!(s.content().exists(&a.layers[0].blob));
    // last image: everything goes
    let items = s.delete("busybox", false, true, &no_containers).unwrap();
    assert_eq!(
        items,
        vec![
            DeleteItem::Untagged("busybox:latest".into()),
            DeleteItem::Deleted(a.id.to_string()),
            DeleteItem::Deleted(a.layers[0].chain_id.to_string()),
        ]
    );
    assert!(s.layers().list().unwrap().is_empty());
    assert!(s.content().list().unwrap().is_empty());
    assert!(s.list().is_empty());
}

#[test]
fn delete_conflicts_use_docker_texts() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let img = mk_image(
        &s,
        &[base_tar()],
        Some("busybox"),
        "2023-01-01T00:00:00Z",
        None,
    );
    let short = img.id.short().to_string();
    let cid = "395e91ccb4fa0123456789abcdef0123456789abcdef0123456789abcdef0123";
    let running = |_: &Digest| Some((cid.to_string(), true));
    let stopped = |_: &Digest| Some((cid.to_string(), false));

    let e = s.delete("busybox", false, false, &running).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        format!("conflict: unable to remove repository reference \"busybox\" (must force) - container 395e91ccb4fa is using its referenced image {short}")
    );
    let e = s.delete(img.id.hex(), false, false, &running).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("conflict: unable to delete {short} (cannot be forced) - image is being used by running container 395e91ccb4fa")
    );
    let e = s.delete(&short, true, false, &running).unwrap_err();
    assert!(e.to_string().contains("(cannot be forced)"), "{e}");
    let e = s.delete(&short, false, false, &stopped).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("conflict: unable to delete {short} (must be forced) - image is being used by stopped container 395e91ccb4fa")
    );
    // several repositories, by ID
    s.tag(
        "busybox",
        &Reference::parse_normalized("other/repo").unwrap(),
    )
    .unwrap();
    let e = s.delete(&short, false, false, &no_containers).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );
    s.untag(&Reference::parse_normalized("other/repo").unwrap())
        .unwrap();
    // forced by name while a container runs it: untag only, the image stays (dangling)
    assert_eq!(
        s.delete("busybox", true, false, &running).unwrap(),
        vec![DeleteItem::Untagged("busybox:latest".into())]
    );
    let kept = s.get(&img.id).unwrap();
    assert!(kept.repo_tags.is_empty());
    // forced by ID with only a stopped container: deleted (Docker's behaviour)
    let items = s.delete(&short, true, false, &stopped).unwrap();
    assert_eq!(items[0], DeleteItem::Deleted(img.id.to_string()));
    assert!(s.get(&img.id).is_none());
}

#[test]
fn delete_by_id_with_several_tags_in_one_repo_is_refused_but_forcible() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let img = mk_image(
        &s,
        &[base_tar()],
        Some("busybox:1"),
        "2023-01-01T00:00:00Z",
        None,
    );
    s.tag(
        "busybox:1",
        &Reference::parse_normalized("busybox:2").unwrap(),
    )
    .unwrap();
    let e = s
        .delete(img.id.hex(), false, false, &no_containers)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("referenced in multiple repositories"),
        "{e}"
    );
    let items = s.delete(img.id.hex(), true, false, &no_containers).unwrap();
    assert_eq!(
        items[..2].to_vec(),
        vec![
            DeleteItem::Untagged("busybox:1".into()),
            DeleteItem::Untagged("busybox:2".into())
        ]
    );
    assert!(s.list().is_empty());
}

#[test]
fn prune_removes_untagged_parents_and_children_block_parents() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let base = base_tar();
    let parent = mk_image(
        &s,
        std::slice::from_ref(&base),
        None,
        "2023-01-01T00:00:00Z",
        None,
    );
    let child = mk_image(
        &s,
        &[base, tar_of(&[Ent::file("x", "1")])],
        Some("child"),
        "2023-01-02T00:00:00Z",
        Some(parent.id.clone()),
    );
    let e = s
        .delete(parent.id.hex(), false, false, &no_containers)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            parent.id.short()
        )
    );
    let hist = s.history("child").unwrap();
    assert_eq!(hist[0].id, child.id.to_string());
    assert_eq!(hist[0].tags, vec!["child:latest"]);
    assert_eq!(
        hist[1].id,
        parent.id.to_string(),
        "recorded parent gets its ID"
    );
    let items = s.delete("child", false, true, &no_containers).unwrap();
    assert!(
        items.contains(&DeleteItem::Deleted(parent.id.to_string())),
        "{items:?}"
    );
    assert!(s.list().is_empty());
}

#[test]
fn history_is_newest_first_with_sizes() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let img = mk_image(
        &s,
        &[base_tar()],
        Some("busybox"),
        "2023-11-14T22:13:20Z",
        None,
    );
    let h = s.history("busybox").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].id, img.id.to_string());
    assert_eq!(h[0].created_by, "CMD [\"sh\"]");
    assert_eq!(h[0].size, 0);
    assert_eq!(h[0].tags, vec!["busybox:latest"]);
    assert_eq!(h[1].id, "<missing>");
    assert_eq!(h[1].size, 6);
    assert_eq!(h[1].created, 1_700_000_000);
    assert!(h[1].tags.is_empty());
}

#[test]
fn create_image_checks_layers() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let cfg = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
    let e = s
        .create_image(cfg, &[], CreateOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    let fake = ImageLayer {
        diff_id: Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap(),
        chain_id: Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap(),
        blob: Digest::sha256_of(b"x"),
        media_type: MEDIA_TYPE_DOCKER_LAYER_TAR.into(),
        compressed_size: 1,
        size: 1,
    };
    assert!(s
        .create_image(cfg, &[fake], CreateOptions::default())
        .is_err());
    // a zero-layer image is fine
    let img = s
        .create_image(br#"{"os":"linux"}"#, &[], CreateOptions::default())
        .unwrap();
    assert_eq!(s.layer_dirs(&img).unwrap(), vec![s.layers().empty_dir()]);
}

#[test]
fn survives_simulated_crash() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let img = mk_image(
        &s,
        &[base_tar()],
        Some("busybox"),
        "2023-01-01T00:00:00Z",
        None,
    );
    drop(s);
    let root = d.path();
    // leftovers of interrupted operations
    fs::write(root.join("content/ingest/abc"), b"partial").unwrap();
    fs::create_dir_all(root.join("tmp/docker-import-1/x")).unwrap();
    fs::create_dir_all(root.join("overlay2/.tmp-123/diff")).unwrap();
    fs::write(root.join("image/records/.x.json.tmp-1"), b"{").unwrap();
    // an orphan layer and blob (interrupted load)
    let orphan_tar = tar_of(&[Ent::file("orphan", "o")]);
    {
        let ls = LayerStore::open(root).unwrap();
        ls.apply(None, &mut &orphan_tar[..], None).unwrap();
        let cas = ContentStore::open(root).unwrap();
        cas.put_bytes(&orphan_tar).unwrap();
    }
    let s = ImageStore::open(root).unwrap();
    assert_eq!(s.resolve("busybox").unwrap().id, img.id);
    assert_eq!(
        s.layers().list().unwrap().len(),
        1,
        "orphan layer collected"
    );
    assert!(!s.content().exists(&Digest::sha256_of(&orphan_tar)));
    assert!(fs::read_dir(root.join("content/ingest"))
        .unwrap()
        .next()
        .is_none());
    assert!(fs::read_dir(root.join("tmp")).unwrap().next().is_none());
    assert!(!root.join("overlay2/.tmp-123").exists());
    drop(s);
    // a half-written (unparsable) record is reported and skipped, and GC is suspended so
    // nothing it might reference is lost
    fs::write(
        root.join(format!("image/records/{}.json", "e".repeat(64))),
        b"{\"id\": \"sha2",
    )
    .unwrap();
    {
        let ls = LayerStore::open(root).unwrap();
        ls.apply(None, &mut &orphan_tar[..], None).unwrap();
    }
    let s = ImageStore::open(root).unwrap();
    assert_eq!(s.list().len(), 1);
    assert_eq!(s.layers().list().unwrap().len(), 2);
}

#[test]
fn concurrent_readers_and_writers() {
    let d = tempfile::tempdir().unwrap();
    let s = Arc::new(ImageStore::open(d.path()).unwrap());
    mk_image(
        &s,
        &[base_tar()],
        Some("busybox"),
        "2023-01-01T00:00:00Z",
        None,
    );
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    let t = Reference::parse_normalized(&format!("t{i}:{j}")).unwrap();
                    s.tag("busybox", &t).unwrap();
                    assert!(s.resolve(&format!("t{i}:{j}")).is_ok());
                    s.untag(&t).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(s.resolve("busybox").unwrap().repo_tags.len(), 1);
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ImageStore>();
    assert_send_sync::<Arc<Image>>();
}

#[test]
fn compressed_layer_forms_live_as_long_as_their_layer() {
    use crate::distmeta::{BlobSource, LayerBlob};
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let img = mk_image(
        &s,
        &[base_tar()],
        Some("busybox"),
        "2023-11-14T22:13:20Z",
        None,
    );
    let diff = img.layers[0].diff_id.clone();
    let gz = s.content().put_bytes(b"pretend gzip").unwrap();
    s.record_layer_blobs(vec![(
        diff.clone(),
        LayerBlob {
            digest: gz.clone(),
            media_type: MEDIA_TYPE_DOCKER_LAYER_GZIP.into(),
            size: 12,
            sources: vec![BlobSource {
                registry: "localhost:5000".into(),
                repository: "me/busybox".into(),
            }],
        },
    )])
    .unwrap();
    drop(s);
    // Reopening runs GC: the form survives while the image uses its layer.
    let s = ImageStore::open(d.path()).unwrap();
    assert!(s.content().exists(&gz));
    assert_eq!(s.layer_blobs(&diff)[0].digest, gz);
    s.delete("busybox", false, true, &no_containers).unwrap();
    assert!(!s.content().exists(&gz));
    drop(s);
    let s = ImageStore::open(d.path()).unwrap();
    assert!(s.layer_blobs(&diff).is_empty());
}
