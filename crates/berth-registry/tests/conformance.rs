//! Conformance tests written from the OCI distribution spec v1.1: every endpoint, its success
//! and error answers, pagination, uploads (monolithic, chunked, resumed), mounts, ranges,
//! referrers and deletes — against a registry on 127.0.0.1.

mod common;

use berth_image::digest::Digest;
use bytes::Bytes;
use common::*;
use http::{Method, StatusCode};

#[tokio::test]
async fn base_endpoint_and_headers() {
    let r = TestRegistry::start(|_| {}).await;
    let resp = r.get("/v2/").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(
        resp.header("docker-distribution-api-version").as_deref(),
        Some("registry/2.0")
    );
    assert_eq!(&resp.body[..], b"{}");
    assert_eq!(r.get("/v2").await.status, StatusCode::OK);
    assert_eq!(r.get("/v1/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.req(Method::POST, "/v2/", &[], "").await.code(),
        "UNSUPPORTED"
    );
}

#[tokio::test]
async fn blob_monolithic_get_head_and_ranges() {
    let r = TestRegistry::start(|_| {}).await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = r.push_blob("me/app", &data).await;
    let path = format!("/v2/me/app/blobs/{d}");

    let get = r.get(&path).await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(&get.body[..], &data[..]);
    assert_eq!(get.header("docker-content-digest").unwrap(), d.to_string());
    assert_eq!(
        get.header("content-type").as_deref(),
        Some("application/octet-stream")
    );

    let head = r.head(&path).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length").as_deref(), Some("100000"));
    assert!(head.body.is_empty());

    let part = r
        .req(Method::GET, &path, &[("range", "bytes=10-19")], "")
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.body[..], &data[10..20]);
    assert_eq!(
        part.header("content-range").as_deref(),
        Some("bytes 10-19/100000")
    );
    let tail = r
        .req(Method::GET, &path, &[("range", "bytes=-5")], "")
        .await;
    assert_eq!(&tail.body[..], &data[99_995..]);
    let open = r
        .req(Method::GET, &path, &[("range", "bytes=99990-")], "")
        .await;
    assert_eq!(&open.body[..], &data[99_990..]);
    let bad = r
        .req(Method::GET, &path, &[("range", "bytes=200000-")], "")
        .await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        bad.header("content-range").as_deref(),
        Some("bytes */100000")
    );

    // Unknown blob, bad digest.
    let unknown = r
        .get(&format!("/v2/me/app/blobs/{}", Digest::sha256_of(b"nope")))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "BLOB_UNKNOWN");
    let head_unknown = r
        .head(&format!("/v2/me/app/blobs/{}", Digest::sha256_of(b"nope")))
        .await;
    assert_eq!(head_unknown.status, StatusCode::NOT_FOUND);
    assert!(head_unknown.body.is_empty());
    let baddigest = r.get("/v2/me/app/blobs/sha256:1234").await;
    assert_eq!(baddigest.status, StatusCode::BAD_REQUEST);
    assert_eq!(baddigest.code(), "DIGEST_INVALID");
}

#[tokio::test]
async fn blobs_are_scoped_to_repositories_and_mountable() {
    let r = TestRegistry::start(|_| {}).await;
    let d = r.push_blob("a/one", b"shared bytes").await;
    // Pushed to a/one: not readable from b/two.
    assert_eq!(
        r.get(&format!("/v2/b/two/blobs/{d}")).await.code(),
        "BLOB_UNKNOWN"
    );
    // Mount from a/one.
    let m = r
        .req(
            Method::POST,
            &format!("/v2/b/two/blobs/uploads/?mount={d}&from=a/one"),
            &[],
            "",
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED);
    assert_eq!(
        m.header("location").unwrap(),
        format!("/v2/b/two/blobs/{d}")
    );
    assert_eq!(m.header("docker-content-digest").unwrap(), d.to_string());
    assert_eq!(
        &r.get(&format!("/v2/b/two/blobs/{d}")).await.body[..],
        b"shared bytes"
    );
    // Mount from a repository without the blob: an ordinary upload session starts.
    let m = r
        .req(
            Method::POST,
            &format!("/v2/c/three/blobs/uploads/?mount={d}&from=x/none"),
            &[],
            "",
        )
        .await;
    assert_eq!(m.status, StatusCode::ACCEPTED);
    assert!(m
        .header("location")
        .unwrap()
        .starts_with("/v2/c/three/blobs/uploads/"));
    assert_eq!(
        r.get(&format!("/v2/c/three/blobs/{d}")).await.code(),
        "BLOB_UNKNOWN"
    );
}

#[tokio::test]
async fn chunked_upload_status_and_out_of_order_chunks() {
    let r = TestRegistry::start(|_| {}).await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = Digest::sha256_of(&data);
    let start = r
        .req(Method::POST, "/v2/me/chunky/blobs/uploads/", &[], "")
        .await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    assert_eq!(start.header("range").as_deref(), Some("0-0"));
    let uuid = start.header("docker-upload-uuid").unwrap();
    let mut loc = start.header("location").unwrap();
    assert!(loc.ends_with(&uuid));

    let c1 = r
        .req(
            Method::PATCH,
            &loc,
            &[
                ("content-range", "0-99999"),
                ("content-type", "application/octet-stream"),
            ],
            Bytes::copy_from_slice(&data[..100_000]),
        )
        .await;
    assert_eq!(c1.status, StatusCode::ACCEPTED);
    assert_eq!(c1.header("range").as_deref(), Some("0-99999"));
    loc = c1.header("location").unwrap();

    // A chunk that does not continue at the current offset.
    let skip = r
        .req(
            Method::PATCH,
            &loc,
            &[("content-range", "200000-299999")],
            Bytes::copy_from_slice(&data[200_000..]),
        )
        .await;
    assert_eq!(skip.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(skip.header("range").as_deref(), Some("0-99999"));

    // Status.
    let st = r.get(&loc).await;
    assert_eq!(st.status, StatusCode::NO_CONTENT);
    assert_eq!(st.header("range").as_deref(), Some("0-99999"));
    assert_eq!(st.header("docker-upload-uuid").unwrap(), uuid);

    // Streamed chunk without Content-Range.
    let c2 = r
        .req(
            Method::PATCH,
            &loc,
            &[],
            Bytes::copy_from_slice(&data[100_000..250_000]),
        )
        .await;
    assert_eq!(c2.header("range").as_deref(), Some("0-249999"));
    // Final chunk with the PUT.
    let put = r
        .req(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[("content-range", "250000-299999")],
            Bytes::copy_from_slice(&data[250_000..]),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(
        put.header("location").unwrap(),
        format!("/v2/me/chunky/blobs/{d}")
    );
    assert_eq!(
        &r.get(&format!("/v2/me/chunky/blobs/{d}")).await.body[..],
        &data[..]
    );
    // The upload is gone.
    assert_eq!(r.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn post_then_put_monolithic_and_put_without_digest() {
    let r = TestRegistry::start(|_| {}).await;
    let start = r
        .req(Method::POST, "/v2/me/mono/blobs/uploads/", &[], "")
        .await;
    let loc = start.header("location").unwrap();
    let nodigest = r.req(Method::PUT, &loc, &[], "abc").await;
    assert_eq!(nodigest.code(), "DIGEST_INVALID");
    let d = Digest::sha256_of(b"abc");
    let put = r
        .req(Method::PUT, &format!("{loc}?digest={d}"), &[], "abc")
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(
        &r.get(&format!("/v2/me/mono/blobs/{d}")).await.body[..],
        b"abc"
    );
    // An id that does not exist / belongs to another repository.
    let other = r
        .req(Method::POST, "/v2/me/other/blobs/uploads/", &[], "")
        .await;
    let other_id = other.header("docker-upload-uuid").unwrap();
    let cross = r
        .req(
            Method::PATCH,
            &format!("/v2/me/mono/blobs/uploads/{other_id}"),
            &[],
            "x",
        )
        .await;
    assert_eq!(cross.status, StatusCode::NOT_FOUND);
    assert_eq!(cross.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        r.get("/v2/me/mono/blobs/uploads/not-a-uuid").await.code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[tokio::test]
async fn cancel_upload() {
    let r = TestRegistry::start(|_| {}).await;
    let start = r
        .req(Method::POST, "/v2/me/c/blobs/uploads/", &[], "")
        .await;
    let loc = start.header("location").unwrap();
    r.req(Method::PATCH, &loc, &[], "partial").await;
    let del = r.req(Method::DELETE, &loc, &[], "").await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(r.get(&loc).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.req(Method::DELETE, &loc, &[], "").await.code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
    assert_eq!(
        std::fs::read_dir(r.root().join("uploads")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn resumed_upload_after_restart() {
    let r = TestRegistry::start(|_| {}).await;
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
    let d = Digest::sha256_of(&data);
    let start = r
        .req(Method::POST, "/v2/me/resume/blobs/uploads/", &[], "")
        .await;
    let loc = start.header("location").unwrap();
    r.req(
        Method::PATCH,
        &loc,
        &[("content-range", "0-19999")],
        Bytes::copy_from_slice(&data[..20_000]),
    )
    .await;
    // Restart on the same root: the in-memory hash state is gone.
    let dir = r.stop().await;
    let r = TestRegistry::start_in(dir, |_| {}, false).await;
    let st = r.get(&loc).await;
    assert_eq!(st.status, StatusCode::NO_CONTENT);
    assert_eq!(st.header("range").as_deref(), Some("0-19999"));
    r.req(
        Method::PATCH,
        &loc,
        &[("content-range", "20000-49999")],
        Bytes::copy_from_slice(&data[20_000..]),
    )
    .await;
    let put = r
        .req(Method::PUT, &format!("{loc}?digest={d}"), &[], "")
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(
        &r.get(&format!("/v2/me/resume/blobs/{d}")).await.body[..],
        &data[..]
    );
}

#[tokio::test]
async fn digest_mismatch_stores_nothing() {
    let r = TestRegistry::start(|_| {}).await;
    let claimed = Digest::sha256_of(b"what I claim");
    let resp = r
        .req(
            Method::POST,
            &format!("/v2/me/bad/blobs/uploads/?digest={claimed}"),
            &[],
            "something else",
        )
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(resp.code(), "DIGEST_INVALID");
    assert_eq!(
        r.get(&format!("/v2/me/bad/blobs/{claimed}")).await.code(),
        "BLOB_UNKNOWN"
    );
    let actual = Digest::sha256_of(b"something else");
    assert!(!r
        .root()
        .join("blobs/sha256")
        .join(&actual.hex()[..2])
        .join(actual.hex())
        .exists());
    assert!(!r
        .root()
        .join("blobs/sha256")
        .join(&claimed.hex()[..2])
        .join(claimed.hex())
        .exists());
    assert_eq!(
        std::fs::read_dir(r.root().join("uploads")).unwrap().count(),
        0
    );
    // Chunked too.
    let start = r
        .req(Method::POST, "/v2/me/bad/blobs/uploads/", &[], "")
        .await;
    let loc = start.header("location").unwrap();
    r.req(Method::PATCH, &loc, &[], "chunk").await;
    let put = r
        .req(Method::PUT, &format!("{loc}?digest={claimed}"), &[], "")
        .await;
    assert_eq!(put.code(), "DIGEST_INVALID");
    assert_eq!(
        std::fs::read_dir(r.root().join("uploads")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn manifests_by_tag_and_digest_all_media_types() {
    let r = TestRegistry::start(|_| {}).await;
    let (md, m) = r.push_image("me/img", "v1", "one").await;
    for reference in ["v1".to_string(), md.to_string()] {
        let get = r
            .req(
                Method::GET,
                &format!("/v2/me/img/manifests/{reference}"),
                &[("accept", OCI_MANIFEST)],
                "",
            )
            .await;
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(&get.body[..], &m[..]);
        assert_eq!(get.header("content-type").as_deref(), Some(OCI_MANIFEST));
        assert_eq!(get.header("docker-content-digest").unwrap(), md.to_string());
        let head = r.head(&format!("/v2/me/img/manifests/{reference}")).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.header("content-length").unwrap(), m.len().to_string());
    }
    // Docker schema 2 with a Docker media type, pushed by digest.
    let cfg = r.push_blob("me/img", b"{\"os\":\"linux\"}").await;
    let layer = r.push_blob("me/img", b"docker layer").await;
    let dm = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":14,"digest":"{cfg}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":12,"digest":"{layer}"}}]}}"#
    );
    let dmd = Digest::sha256_of(dm.as_bytes());
    let put = r
        .req(
            Method::PUT,
            &format!("/v2/me/img/manifests/{dmd}"),
            &[("content-type", DOCKER_MANIFEST)],
            dm.clone(),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(
        put.header("location").unwrap(),
        format!("/v2/me/img/manifests/{dmd}")
    );
    assert_eq!(
        r.get(&format!("/v2/me/img/manifests/{dmd}"))
            .await
            .header("content-type")
            .as_deref(),
        Some(DOCKER_MANIFEST)
    );
    // Wrong digest in the URL.
    let wrong = r
        .req(
            Method::PUT,
            &format!("/v2/me/img/manifests/{}", Digest::sha256_of(b"x")),
            &[("content-type", DOCKER_MANIFEST)],
            dm.clone(),
        )
        .await;
    assert_eq!(wrong.code(), "DIGEST_INVALID");
    // OCI index and Docker manifest list over both.
    for (mt, tag) in [(OCI_INDEX, "idx"), (DOCKER_LIST, "list")] {
        let child_mt = if mt == OCI_INDEX {
            OCI_MANIFEST
        } else {
            DOCKER_MANIFEST
        };
        let child = if mt == OCI_INDEX {
            md.to_string()
        } else {
            dmd.to_string()
        };
        let size = if mt == OCI_INDEX { m.len() } else { dm.len() };
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","manifests":[{{"mediaType":"{child_mt}","digest":"{child}","size":{size},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let put = r
            .req(
                Method::PUT,
                &format!("/v2/me/img/manifests/{tag}"),
                &[("content-type", mt)],
                idx.clone(),
            )
            .await;
        assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
        let get = r.get(&format!("/v2/me/img/manifests/{tag}")).await;
        assert_eq!(get.header("content-type").as_deref(), Some(mt));
        assert_eq!(&get.body[..], idx.as_bytes());
    }
    // Unknown tag / digest / repository.
    let unknown = r.get("/v2/me/img/manifests/nosuchtag").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "MANIFEST_UNKNOWN");
    assert_eq!(unknown.json()["errors"][0]["detail"]["Tag"], "nosuchtag");
    assert_eq!(
        r.get(&format!("/v2/me/img/manifests/{}", Digest::sha256_of(b"q")))
            .await
            .code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        r.get("/v2/me/nosuchrepo/manifests/latest").await.code(),
        "MANIFEST_UNKNOWN"
    );
    // A manifest is only visible in the repository it was pushed to.
    assert_eq!(
        r.get(&format!("/v2/me/elsewhere/manifests/{md}"))
            .await
            .code(),
        "MANIFEST_UNKNOWN"
    );
    // Conditional GET.
    let etag = format!("\"{md}\"");
    let nm = r
        .req(
            Method::GET,
            "/v2/me/img/manifests/v1",
            &[("if-none-match", &etag)],
            "",
        )
        .await;
    assert_eq!(nm.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn manifest_validation_errors() {
    let r = TestRegistry::start(|_| {}).await;
    let cfg = r.push_blob("me/v", b"{}").await;
    let layer = r.push_blob("me/v", b"L").await;
    let put = |body: Vec<u8>, ct: &'static str| {
        let r = &r;
        async move {
            r.req(
                Method::PUT,
                "/v2/me/v/manifests/t",
                &[("content-type", ct)],
                body,
            )
            .await
        }
    };
    // Not JSON.
    let resp = put(b"not json".to_vec(), OCI_MANIFEST).await;
    assert_eq!(
        (resp.status, resp.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
    // mediaType disagrees with Content-Type.
    let good = image_manifest(&cfg, 2, &layer, 1, None);
    assert_eq!(
        put(good.clone(), OCI_INDEX).await.code(),
        "MANIFEST_INVALID"
    );
    // Both manifests and layers.
    let both = image_manifest(&cfg, 2, &layer, 1, Some(r#""manifests":[]"#));
    assert_eq!(put(both, OCI_MANIFEST).await.code(), "MANIFEST_INVALID");
    // References a blob the repository lacks.
    let missing = Digest::sha256_of(b"missing");
    let m = image_manifest(&cfg, 2, &missing, 7, None);
    let resp = put(m, OCI_MANIFEST).await;
    assert_eq!(resp.code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(resp.json()["errors"][0]["detail"], missing.to_string());
    // A blob that exists in another repository only is still unknown here.
    let foreign = r.push_blob("other/repo", b"foreign").await;
    assert_eq!(
        put(image_manifest(&cfg, 2, &foreign, 7, None), OCI_MANIFEST)
            .await
            .code(),
        "MANIFEST_BLOB_UNKNOWN"
    );
    // Size that disagrees with the blob.
    assert_eq!(
        put(image_manifest(&cfg, 2, &layer, 99, None), OCI_MANIFEST)
            .await
            .code(),
        "MANIFEST_INVALID"
    );
    // Index with an unknown child.
    let idx = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{missing}","size":10}}]}}"#
    );
    assert_eq!(
        put(idx.into_bytes(), OCI_INDEX).await.code(),
        "MANIFEST_BLOB_UNKNOWN"
    );
    // Over 4 MiB.
    let mut huge = image_manifest(&cfg, 2, &layer, 1, Some(r#""annotations":{"x":""#));
    huge.truncate(huge.len() - 2);
    huge.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024));
    huge.extend_from_slice(b"\"}}");
    let resp = put(huge, OCI_MANIFEST).await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Schema 1 and a bad tag.
    assert_eq!(
        put(
            br#"{"schemaVersion":1}"#.to_vec(),
            "application/vnd.docker.distribution.manifest.v1+prettyjws"
        )
        .await
        .code(),
        "MANIFEST_INVALID"
    );
    let bad_tag = r
        .req(
            Method::PUT,
            "/v2/me/v/manifests/-bad",
            &[("content-type", OCI_MANIFEST)],
            good.clone(),
        )
        .await;
    assert_eq!(bad_tag.code(), "TAG_INVALID");
    // Nothing was tagged by the failures.
    assert_eq!(
        r.get("/v2/me/v/manifests/t").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(put(good, OCI_MANIFEST).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn names_are_validated() {
    let r = TestRegistry::start(|_| {}).await;
    let long = format!("/v2/{}/tags/list", "a".repeat(256));
    for path in [
        "/v2/Upper/tags/list",
        "/v2/me/../etc/tags/list",
        "/v2/../x/blobs/uploads/",
        long.as_str(),
        "/v2/me//x/tags/list",
        "/v2/-x/manifests/latest",
    ] {
        let resp = r.get(path).await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(resp.code(), "NAME_INVALID", "{path}");
    }
    let post = r
        .req(Method::POST, "/v2/Me/x/blobs/uploads/", &[], "")
        .await;
    assert_eq!(post.code(), "NAME_INVALID");
    // 255 characters is still fine.
    let ok = format!("/v2/{}/tags/list", "a".repeat(255));
    assert_eq!(r.get(&ok).await.code(), "NAME_UNKNOWN");
}

#[tokio::test]
async fn tags_list_and_catalog_paginate() {
    let r = TestRegistry::start(|_| {}).await;
    for t in ["t1", "t2", "t3", "t4", "t5"] {
        r.push_image("me/tags", t, "same").await;
    }
    r.push_image("a/first", "x", "a").await;
    r.push_image("z/last", "x", "z").await;
    let all = r.get("/v2/me/tags/tags/list").await;
    assert_eq!(
        all.json()["tags"],
        serde_json::json!(["t1", "t2", "t3", "t4", "t5"])
    );
    assert_eq!(all.json()["name"], "me/tags");
    assert!(all.header("link").is_none());
    let p1 = r.get("/v2/me/tags/tags/list?n=2").await;
    assert_eq!(p1.json()["tags"], serde_json::json!(["t1", "t2"]));
    let link = p1.header("link").unwrap();
    assert_eq!(link, "</v2/me/tags/tags/list?last=t2&n=2>; rel=\"next\"");
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let p2 = r.get(&next).await;
    assert_eq!(p2.json()["tags"], serde_json::json!(["t3", "t4"]));
    let p3 = r.get("/v2/me/tags/tags/list?n=2&last=t4").await;
    assert_eq!(p3.json()["tags"], serde_json::json!(["t5"]));
    assert!(p3.header("link").is_none());
    let none = r.get("/v2/me/tags/tags/list?n=0").await;
    assert_eq!(none.json()["tags"], serde_json::json!([]));
    let unknown = r.get("/v2/no/such/tags/list").await;
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );

    let cat = r.get("/v2/_catalog").await;
    assert_eq!(
        cat.json()["repositories"],
        serde_json::json!(["a/first", "me/tags", "z/last"])
    );
    let c1 = r.get("/v2/_catalog?n=1").await;
    assert_eq!(c1.json()["repositories"], serde_json::json!(["a/first"]));
    assert_eq!(
        c1.header("link").unwrap(),
        "</v2/_catalog?last=a/first&n=1>; rel=\"next\""
    );
    let c2 = r.get("/v2/_catalog?n=5&last=a/first").await;
    assert_eq!(
        c2.json()["repositories"],
        serde_json::json!(["me/tags", "z/last"])
    );
}

#[tokio::test]
async fn referrers_and_subject() {
    let r = TestRegistry::start(|_| {}).await;
    let (subject, sm) = r.push_image("me/ref", "v1", "subject").await;
    let empty = r.push_blob("me/ref", b"{}").await;
    let mut referrers = Vec::new();
    for (i, at) in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    ]
    .iter()
    .enumerate()
    {
        let layer = r
            .push_blob("me/ref", format!("artifact {i}").as_bytes())
            .await;
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{at}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"application/octet-stream","digest":"{layer}","size":10}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":{}}},"annotations":{{"n":"{i}"}}}}"#,
            sm.len()
        );
        let d = Digest::sha256_of(body.as_bytes());
        let put = r
            .req(
                Method::PUT,
                &format!("/v2/me/ref/manifests/{d}"),
                &[("content-type", OCI_MANIFEST)],
                body,
            )
            .await;
        assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
        assert_eq!(put.header("oci-subject").unwrap(), subject.to_string());
        referrers.push(d);
    }
    let list = r.get(&format!("/v2/me/ref/referrers/{subject}")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.header("content-type").as_deref(), Some(OCI_INDEX));
    let j = list.json();
    assert_eq!(j["mediaType"], OCI_INDEX);
    let ms = j["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    assert!(ms
        .iter()
        .all(|m| m["mediaType"] == OCI_MANIFEST && m["size"].as_u64().unwrap() > 0));
    let filtered = r
        .get(&format!(
            "/v2/me/ref/referrers/{subject}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(
        filtered.header("oci-filters-applied").as_deref(),
        Some("artifactType")
    );
    let fm = filtered.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(fm.len(), 1);
    assert_eq!(fm[0]["artifactType"], "application/vnd.example.sig");
    assert_eq!(fm[0]["annotations"]["n"], "1");
    // A subject that does not exist yet is accepted, and its referrers list is empty otherwise.
    let nothing = r
        .get(&format!(
            "/v2/me/ref/referrers/{}",
            Digest::sha256_of(b"nothing")
        ))
        .await;
    assert_eq!(nothing.status, StatusCode::OK);
    assert_eq!(nothing.json()["manifests"], serde_json::json!([]));
    assert_eq!(
        r.get("/v2/me/ref/referrers/sha256:zz").await.code(),
        "DIGEST_INVALID"
    );
    // Deleting a referrer removes it from the list.
    let del = r
        .req(
            Method::DELETE,
            &format!("/v2/me/ref/manifests/{}", referrers[0]),
            &[],
            "",
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let list = r.get(&format!("/v2/me/ref/referrers/{subject}")).await;
    assert_eq!(list.json()["manifests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn deletes() {
    let r = TestRegistry::start(|_| {}).await;
    let (md, _) = r.push_image("me/del", "v1", "x").await;
    let (_, _) = r.push_image("me/del", "v2", "y").await;
    // Tag delete leaves the manifest.
    assert_eq!(
        r.req(Method::DELETE, "/v2/me/del/manifests/v2", &[], "")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.get("/v2/me/del/manifests/v2").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        r.req(Method::DELETE, "/v2/me/del/manifests/v2", &[], "")
            .await
            .code(),
        "MANIFEST_UNKNOWN"
    );
    // Digest delete removes tags pointing at it.
    assert_eq!(
        r.req(
            Method::DELETE,
            &format!("/v2/me/del/manifests/{md}"),
            &[],
            ""
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.get("/v2/me/del/manifests/v1").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        r.get(&format!("/v2/me/del/manifests/{md}")).await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        r.get("/v2/me/del/tags/list").await.json()["tags"],
        serde_json::json!([])
    );
    // Blob delete.
    let d = r.push_blob("me/del", b"bye").await;
    assert_eq!(
        r.req(Method::DELETE, &format!("/v2/me/del/blobs/{d}"), &[], "")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.get(&format!("/v2/me/del/blobs/{d}")).await.code(),
        "BLOB_UNKNOWN"
    );
    assert_eq!(
        r.req(Method::DELETE, &format!("/v2/me/del/blobs/{d}"), &[], "")
            .await
            .code(),
        "BLOB_UNKNOWN"
    );

    let off = TestRegistry::start(|c| c.delete_enabled = false).await;
    let (md, _) = off.push_image("me/keep", "v1", "x").await;
    let resp = off
        .req(
            Method::DELETE,
            &format!("/v2/me/keep/manifests/{md}"),
            &[],
            "",
        )
        .await;
    assert_eq!(
        (resp.status, resp.code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
}

#[tokio::test]
async fn abandoned_uploads_are_swept() {
    let r = TestRegistry::start(|c| c.upload_expiry = std::time::Duration::from_millis(500)).await;
    let start = r
        .req(Method::POST, "/v2/me/gone/blobs/uploads/", &[], "")
        .await;
    let loc = start.header("location").unwrap();
    r.req(Method::PATCH, &loc, &[], "some bytes").await;
    // A fresh upload survives a sweep.
    r.registry.as_ref().unwrap().sweep().await;
    assert_eq!(r.get(&loc).await.status, StatusCode::NO_CONTENT);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    r.registry.as_ref().unwrap().sweep().await;
    assert_eq!(r.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        std::fs::read_dir(r.root().join("uploads")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_blob_uploaded_concurrently_is_stored_once() {
    let r = std::sync::Arc::new(TestRegistry::start(|_| {}).await);
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let d = Digest::sha256_of(&data);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let r = r.clone();
        let data = data.clone();
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let repo = format!("c/r{}", i % 4);
            let start = r
                .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), &[], "")
                .await;
            let loc = start.header("location").unwrap();
            let half = data.len() / 2;
            r.req(
                Method::PATCH,
                &loc,
                &[],
                Bytes::copy_from_slice(&data[..half]),
            )
            .await;
            r.req(
                Method::PUT,
                &format!("{loc}?digest={d}"),
                &[],
                Bytes::copy_from_slice(&data[half..]),
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let dir = r.root().join("blobs/sha256").join(&d.hex()[..2]);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    assert_eq!(std::fs::read(dir.join(d.hex())).unwrap(), data);
    for i in 0..4 {
        assert_eq!(
            &r.get(&format!("/v2/c/r{i}/blobs/{d}")).await.body[..],
            &data[..]
        );
    }
    assert_eq!(
        std::fs::read_dir(r.root().join("uploads")).unwrap().count(),
        0
    );
    assert_eq!(std::fs::read_dir(r.root().join("tmp")).unwrap().count(), 0);
}

#[tokio::test]
async fn http2_prior_knowledge() {
    let dir = tempfile::tempdir().unwrap();
    let r = TestRegistry::start_in(dir, |_| {}, true).await;
    let d = r.push_blob("h2/app", b"over h2").await;
    let get = r.get(&format!("/v2/h2/app/blobs/{d}")).await;
    assert_eq!(&get.body[..], b"over h2");
}

#[tokio::test]
async fn rate_limit_answers_toomanyrequests() {
    let r = TestRegistry::start(|c| {
        c.requests_per_second = 1;
        c.burst = 3;
    })
    .await;
    let mut limited = None;
    for _ in 0..10 {
        let resp = r.get("/v2/").await;
        if resp.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(resp);
            break;
        }
    }
    let resp = limited.expect("no request was rate limited");
    assert_eq!(resp.code(), "TOOMANYREQUESTS");
    assert!(resp.header("retry-after").is_some());
}

#[tokio::test]
async fn second_registry_on_same_root_is_refused() {
    let r = TestRegistry::start(|_| {}).await;
    let config = berth_registry::server::RegistryConfig {
        root: r.root(),
        ..Default::default()
    };
    let err = berth_registry::server::Registry::open(config)
        .err()
        .unwrap();
    assert!(err.to_string().contains("stop it first"), "{err}");
}
