use super::*;
use crate::testutil::{gzip, tar_of, Ent};

fn layer_tar(name: &str, content: &str) -> Vec<u8> {
    tar_of(&[Ent::dir("etc/"), Ent::file(format!("etc/{name}"), content)])
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "history": diff_ids.iter().map(|_| serde_json::json!({"created_by": "x"})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// A legacy docker-save archive with the given layers and tags.
fn docker_archive(layers: &[Vec<u8>], tags: &[&str]) -> (Vec<u8>, Digest) {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::sha256_of(l)).collect();
    let config = config_for(&diff_ids);
    let id = Digest::sha256_of(&config);
    let mut ents = Vec::new();
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let dir = format!("{:064x}", i + 1);
        ents.push(Ent::dir(format!("{dir}/")));
        ents.push(Ent::file(format!("{dir}/VERSION"), "1.0"));
        ents.push(Ent::file(format!("{dir}/layer.tar"), l));
        paths.push(format!("{dir}/layer.tar"));
    }
    ents.push(Ent::file(format!("{}.json", id.hex()), &config));
    let manifest = serde_json::json!([{"Config": format!("{}.json", id.hex()), "RepoTags": tags, "Layers": paths}]);
    ents.push(Ent::file(
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    ));
    (tar_of(&ents), id)
}

fn store() -> (tempfile::TempDir, ImageStore) {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    (d, s)
}

fn is_empty_store(d: &Path, s: &ImageStore) -> bool {
    s.list().is_empty()
        && s.layers().list().unwrap().is_empty()
        && s.content().list().unwrap().is_empty()
        && fs::read_dir(d.join("tmp")).unwrap().next().is_none()
}

fn load_all(
    s: &ImageStore,
    data: &[u8],
) -> (Result<Vec<LoadedImage>, ImageError>, Vec<LoadProgress>) {
    let mut events = Vec::new();
    let r = load(s, &mut &data[..], &mut |e| events.push(e));
    (r, events)
}

#[test]
fn loads_docker_archive_plain_and_gzip() {
    let (arch, id) = docker_archive(
        &[layer_tar("a", "1"), layer_tar("b", "2")],
        &["busybox:latest"],
    );
    for data in [arch.clone(), gzip(&arch)] {
        let (d, s) = store();
        let (r, events) = load_all(&s, &data);
        let loaded = r.unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].id, id);
        let img = s.resolve("busybox").unwrap();
        assert_eq!(img.id, id);
        assert_eq!(img.layers.len(), 2);
        assert_eq!(
            img.layers[0].blob, img.layers[0].diff_id,
            "uncompressed blob"
        );
        assert!(events.contains(&LoadProgress::Loaded {
            reference: "busybox:latest".into()
        }));
        assert!(events.iter().any(|e| matches!(e, LoadProgress::LoadingLayer { id, current, total } if id == img.layers[1].diff_id.short() && current == total)));
        assert!(fs::read_dir(d.path().join("tmp")).unwrap().next().is_none());
        // loading again: layers are not re-applied, no layer progress
        let (r, events) = load_all(&s, &data);
        r.unwrap();
        assert!(!events
            .iter()
            .any(|e| matches!(e, LoadProgress::LoadingLayer { .. })));
        assert_eq!(s.layers().list().unwrap().len(), 2);
    }
}

#[test]
fn untagged_archive_reports_the_id_and_moved_tags_are_reported() {
    let (arch, id) = docker_archive(&[layer_tar("a", "1")], &[]);
    let (_d, s) = store();
    let (r, events) = load_all(&s, &arch);
    r.unwrap();
    assert_eq!(
        events.last(),
        Some(&LoadProgress::LoadedId { id: id.clone() })
    );
    s.tag(
        &id.to_string(),
        &Reference::parse_normalized("app").unwrap(),
    )
    .unwrap();
    let (arch2, id2) = docker_archive(&[layer_tar("b", "2")], &["app:latest"]);
    let (r, events) = load_all(&s, &arch2);
    r.unwrap();
    assert!(events.contains(&LoadProgress::TagMoved {
        reference: "app:latest".into(),
        old_id: id.clone()
    }));
    assert_eq!(s.resolve("app").unwrap().id, id2);
    assert!(
        s.get(&id).unwrap().repo_tags.is_empty(),
        "old image left dangling"
    );
}

#[test]
fn not_an_image_archive_names_the_missing_file() {
    let (d, s) = store();
    let data = tar_of(&[Ent::file("app.txt", "hello from app.txt\n")]);
    let (r, _) = load_all(&s, &data);
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.contains("/repositories: no such file or directory"),
        "{msg}"
    );
    assert!(msg.contains("manifest.json"), "{msg}");
    assert!(is_empty_store(d.path(), &s));
}

#[test]
fn truncated_archive_leaves_store_unchanged() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let layer = tar_of(&[Ent::file("big", &big)]);
    let (arch, _) = docker_archive(&[layer], &["busybox:latest"]);
    for cut in [arch.len() / 2, arch.len() - 2000, 700] {
        let (d, s) = store();
        let (r, _) = load_all(&s, &arch[..cut]);
        let e = r.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{e}");
        assert!(is_empty_store(d.path(), &s), "cut at {cut}");
    }
}

#[test]
fn wrong_diff_id_is_rejected_and_cleaned_up() {
    let (d, s) = store();
    let good = layer_tar("a", "1");
    let other = layer_tar("b", "2");
    // config claims `good`, archive carries `other`
    let config = config_for(&[Digest::sha256_of(&good)]);
    let id = Digest::sha256_of(&config);
    let manifest = serde_json::json!([{"Config": format!("{}.json", id.hex()), "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]);
    let arch = tar_of(&[
        Ent::file("l/layer.tar", &other),
        Ent::file(format!("{}.json", id.hex()), &config),
        Ent::file("manifest.json", serde_json::to_vec(&manifest).unwrap()),
    ]);
    let (r, _) = load_all(&s, &arch);
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("diff ID"), "{msg}");
    assert!(is_empty_store(d.path(), &s));
    // a config whose file name is not its digest
    let arch = tar_of(&[
        Ent::file("l/layer.tar", &good),
        Ent::file(format!("{}.json", "a".repeat(64)), &config),
        Ent::file(
            "manifest.json",
            serde_json::to_vec(&serde_json::json!([{"Config": format!("{}.json", "a".repeat(64)), "Layers": ["l/layer.tar"]}])).unwrap(),
        ),
    ]);
    let (r, _) = load_all(&s, &arch);
    assert!(r.unwrap_err().to_string().contains("has digest"));
    assert!(is_empty_store(d.path(), &s));
}

#[test]
fn hostile_entry_names_are_refused() {
    let (d, s) = store();
    let outside = d.path().join("escaped");
    for name in ["../escaped", "/tmp/escaped-berth-test", "a/../../escaped"] {
        let arch = tar_of(&[Ent::file(name, "x"), Ent::file("manifest.json", "[]")]);
        let (r, _) = load_all(&s, &arch);
        assert!(r.is_err(), "{name}");
        assert!(!outside.exists());
    }
    assert!(!Path::new("/tmp/escaped-berth-test").exists());
    // a link pointing outside the archive
    let arch = tar_of(&[Ent::symlink("manifest.json", "../../etc/passwd")]);
    let (r, _) = load_all(&s, &arch);
    assert!(r.is_err());
    assert!(is_empty_store(d.path(), &s));
}

#[test]
fn symlinked_layers_as_docker_writes_for_several_images() {
    let (_d, s) = store();
    let l = layer_tar("a", "1");
    let diff = Digest::sha256_of(&l);
    let c1 = config_for(std::slice::from_ref(&diff));
    let mut c2v: Value = serde_json::from_slice(&c1).unwrap();
    c2v["config"]["Cmd"] = serde_json::json!(["other"]);
    let c2 = serde_json::to_vec(&c2v).unwrap();
    let (i1, i2) = (Digest::sha256_of(&c1), Digest::sha256_of(&c2));
    let manifest = serde_json::json!([
        {"Config": format!("{}.json", i1.hex()), "RepoTags": ["one:1"], "Layers": ["aaa/layer.tar"]},
        {"Config": format!("{}.json", i2.hex()), "RepoTags": ["two:2"], "Layers": ["bbb/layer.tar"]},
    ]);
    let arch = tar_of(&[
        Ent::file("aaa/layer.tar", &l),
        Ent::symlink("bbb/layer.tar", "../aaa/layer.tar"),
        Ent::file(format!("{}.json", i1.hex()), &c1),
        Ent::file(format!("{}.json", i2.hex()), &c2),
        Ent::file("manifest.json", serde_json::to_vec(&manifest).unwrap()),
    ]);
    let (r, _) = load_all(&s, &arch);
    assert_eq!(r.unwrap().len(), 2);
    assert_eq!(s.resolve("one:1").unwrap().id, i1);
    assert_eq!(s.resolve("two:2").unwrap().id, i2);
    assert_eq!(
        s.layers().list().unwrap().len(),
        1,
        "shared layer stored once"
    );
}

/// An OCI image layout with a gzip layer; `combined` adds Docker 25's manifest.json.
fn oci_archive(
    layer: &[u8],
    name_annotation: Option<(&str, &str)>,
    combined: bool,
) -> (Vec<u8>, Digest) {
    let gz = gzip(layer);
    let diff = Digest::sha256_of(layer);
    let config = config_for(&[diff]);
    let cd = Digest::sha256_of(&config);
    let ld = Digest::sha256_of(&gz);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld.to_string(), "size": gz.len()}],
    }))
    .unwrap();
    let md = Digest::sha256_of(&manifest);
    let mut desc = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": manifest.len()});
    if let Some((k, v)) = name_annotation {
        desc["annotations"] = serde_json::json!({ k: v });
    }
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [desc]})).unwrap();
    let mut ents = vec![
        Ent::file("oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}"),
        Ent::file("index.json", &index),
        Ent::dir("blobs/"),
        Ent::dir("blobs/sha256/"),
        Ent::file(format!("blobs/sha256/{}", cd.hex()), &config),
        Ent::file(format!("blobs/sha256/{}", ld.hex()), &gz),
        Ent::file(format!("blobs/sha256/{}", md.hex()), &manifest),
    ];
    if combined {
        let m = serde_json::json!([{"Config": format!("blobs/sha256/{}", cd.hex()), "RepoTags": ["combined:1"], "Layers": [format!("blobs/sha256/{}", ld.hex())]}]);
        ents.push(Ent::file("manifest.json", serde_json::to_vec(&m).unwrap()));
    }
    (tar_of(&ents), cd)
}

#[test]
fn loads_oci_layouts() {
    let layer = layer_tar("oci", "o");
    for (ann, want_tag) in [
        (
            Some(("io.containerd.image.name", "docker.io/library/ocitest:2")),
            Some("ocitest:2"),
        ),
        (
            Some(("org.opencontainers.image.ref.name", "localhost:5000/me/x:3")),
            Some("localhost:5000/me/x:3"),
        ),
        (Some(("org.opencontainers.image.ref.name", "latest")), None),
        (None, None),
    ] {
        let (arch, id) = oci_archive(&layer, ann, false);
        let (_d, s) = store();
        let (r, events) = load_all(&s, &arch);
        let loaded = r.unwrap();
        assert_eq!(loaded[0].id, id);
        let img = s.get(&id).unwrap();
        assert_eq!(
            img.layers[0].media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_ne!(
            img.layers[0].blob, img.layers[0].diff_id,
            "compressed blob kept as is"
        );
        match want_tag {
            Some(t) => assert_eq!(s.resolve(t).unwrap().id, id),
            None => assert_eq!(
                events.last(),
                Some(&LoadProgress::LoadedId { id: id.clone() })
            ),
        }
    }
    let (arch, id) = oci_archive(&layer, None, true);
    let (_d, s) = store();
    load_all(&s, &arch).0.unwrap();
    assert_eq!(s.resolve("combined:1").unwrap().id, id);
}

#[test]
fn oci_blob_digest_mismatch_is_rejected() {
    let layer = layer_tar("oci", "o");
    let (arch, _) = oci_archive(&layer, None, false);
    // corrupt the gzip layer blob in place (same length)
    let mut a = tar::Archive::new(&arch[..]);
    let mut ents = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if e.header().entry_type().is_dir() {
            ents.push(Ent::dir(name));
            continue;
        }
        if data.starts_with(&[0x1f, 0x8b]) {
            let n = data.len();
            data[n - 9] ^= 0xff;
        }
        ents.push(Ent::file(name, data));
    }
    let (d, s) = store();
    let (r, _) = load_all(&s, &tar_of(&ents));
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("digest mismatch"), "{msg}");
    assert!(is_empty_store(d.path(), &s));
}

fn entries_of(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(data);
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut v = Vec::new();
        e.read_to_end(&mut v).unwrap();
        out.insert(name, v);
    }
    out
}

#[test]
fn save_then_load_round_trips() {
    let (arch, id) = docker_archive(
        &[layer_tar("a", "1"), layer_tar("b", "2")],
        &["busybox:latest"],
    );
    let (_d, s) = store();
    load_all(&s, &arch).0.unwrap();
    s.tag(
        "busybox",
        &Reference::parse_normalized("busybox:v2").unwrap(),
    )
    .unwrap();
    let (arch2, id2) = docker_archive(&[layer_tar("a", "1")], &["base:1"]);
    load_all(&s, &arch2).0.unwrap();
    let mut out = Vec::new();
    save(&s, &["busybox".to_string(), "base:1".to_string()], &mut out).unwrap();
    let ents = entries_of(&out);
    let manifest: Value = serde_json::from_slice(&ents["manifest.json"]).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 2);
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["busybox:latest", "busybox:v2"]),
        "a bare name saves every tag of the repository"
    );
    assert_eq!(manifest[0]["Config"], format!("{}.json", id.hex()));
    let repos: Value = serde_json::from_slice(&ents["repositories"]).unwrap();
    assert!(repos["busybox"]["latest"].is_string());
    // each layer.tar is the uncompressed layer
    for l in manifest[0]["Layers"].as_array().unwrap() {
        let data = &ents[l.as_str().unwrap()];
        let d = Digest::sha256_of(data);
        assert!(s.get(&id).unwrap().layers.iter().any(|x| x.diff_id == d));
    }
    // shared base layer written once
    let layer_tars = ents.keys().filter(|k| k.ends_with("/layer.tar")).count();
    assert_eq!(layer_tars, 2);
    let (_d2, s2) = store();
    let loaded = load_all(&s2, &out).0.unwrap();
    assert_eq!(
        loaded.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
        vec![id.clone(), id2.clone()]
    );
    assert_eq!(s2.resolve("busybox:v2").unwrap().id, id);
    assert_eq!(s2.resolve("base:1").unwrap().id, id2);
    // by ID: untagged in the manifest
    let mut out = Vec::new();
    save(&s, &[id.hex()[..12].to_string()], &mut out).unwrap();
    let manifest: Value = serde_json::from_slice(&entries_of(&out)["manifest.json"]).unwrap();
    assert!(manifest[0]["RepoTags"].is_null());
    assert!(save(&s, &["nothere".to_string()], &mut Vec::new()).is_err());
}

#[test]
fn save_decompresses_and_verifies_compressed_layers() {
    let layer = layer_tar("oci", "o");
    let (arch, id) = oci_archive(&layer, Some(("io.containerd.image.name", "oci:1")), false);
    let (_d, s) = store();
    load_all(&s, &arch).0.unwrap();
    let mut out = Vec::new();
    save(&s, &["oci:1".to_string()], &mut out).unwrap();
    let ents = entries_of(&out);
    let m: Value = serde_json::from_slice(&ents["manifest.json"]).unwrap();
    assert_eq!(ents[m[0]["Layers"][0].as_str().unwrap()], layer);
    // corrupt the stored blob: save must fail rather than write bad data
    let img = s.get(&id).unwrap();
    let p = s.content().path(&img.layers[0].blob);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&p, gzip(&layer_tar("oci", "X"))).unwrap();
    assert!(save(&s, &["oci:1".to_string()], &mut Vec::new()).is_err());
}

#[test]
fn import_with_changes() {
    let (_d, s) = store();
    let rootfs = tar_of(&[
        Ent::dir("./"),
        Ent::dir("./bin/"),
        Ent::file("./bin/sh", "sh"),
    ]);
    let id = import(
        &s,
        &mut &gzip(&rootfs)[..],
        &[
            "CMD [\"sh\"]".to_string(),
            "ENV A=1 B=two".to_string(),
            "EXPOSE 80".to_string(),
            "WORKDIR /srv".to_string(),
        ],
        Some("imported for trace"),
        Some(&Reference::parse_normalized("tr-imported:1").unwrap()),
    )
    .unwrap();
    let img = s.resolve("tr-imported:1").unwrap();
    assert_eq!(img.id, id);
    let cfg = img.config.config.clone().unwrap();
    assert_eq!(cfg.cmd.unwrap(), vec!["sh"]);
    assert_eq!(cfg.env.unwrap(), vec!["A=1", "B=two"]);
    assert!(cfg.exposed_ports.unwrap().contains_key("80/tcp"));
    assert_eq!(cfg.working_dir, "/srv");
    assert_eq!(img.config.comment, "imported for trace");
    assert_eq!(img.config.history[0].comment, "imported for trace");
    assert_eq!(img.layers[0].diff_id, Digest::sha256_of(&rootfs));
    assert_eq!(img.layers[0].blob, img.layers[0].diff_id);
    assert_eq!(Digest::sha256_of(&s.config_bytes(&id).unwrap()), id);
    // default message
    let id2 = import(&s, &mut &rootfs[..], &[], None, None).unwrap();
    assert_eq!(s.get(&id2).unwrap().config.comment, "Imported from -");
    // bad change: refused before anything is read or stored
    let before = s.list().len();
    let e = import(
        &s,
        &mut &rootfs[..],
        &["FROBNICATE x".to_string()],
        None,
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "dockerfile parse error line 1: unknown instruction: FROBNICATE"
    );
    assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    assert_eq!(s.list().len(), before);
    // a hostile rootfs is refused
    let bad = tar_of(&[Ent::file("../x", "1")]);
    assert!(import(&s, &mut &bad[..], &[], None, None).is_err());
}

#[test]
fn link_resolution_rules() {
    assert_eq!(
        resolve_link("a/b/layer.tar", "../c/layer.tar").as_deref(),
        Some("a/c/layer.tar")
    );
    assert_eq!(resolve_link("b/layer.tar", "../../x"), None);
    assert_eq!(resolve_link("x", "/abs/y").as_deref(), Some("abs/y"));
    assert_eq!(normalize("./a//b/"), Some("a/b".into()));
    assert_eq!(normalize("../a"), None);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
        /// Random bytes and random (possibly hostile) archives never panic and never leave
        /// anything behind.
        #[test]
        fn load_of_garbage_is_an_error_and_leaves_nothing(
            names in proptest::collection::vec("[a-z./]{1,12}", 0..6),
            junk in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let (d, s) = store();
            let mut ents: Vec<Ent> = names.iter().map(|n| Ent::file(n, "x")).collect();
            ents.push(Ent::file("manifest.json", &junk));
            let (r, _) = load_all(&s, &tar_of(&ents));
            prop_assert!(r.is_err());
            let (r, _) = load_all(&s, &junk);
            prop_assert!(r.is_err());
            prop_assert!(is_empty_store(d.path(), &s));
        }
    }
}
