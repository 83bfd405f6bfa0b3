//! The registry client against berth's own registry server (in process, on 127.0.0.1):
//! uploads of every kind, mounts, manifests, tags, Basic and token authentication, login.

mod common;

use berth_image::digest::Digest;
use berth_registry::client::{
    Access, ClientConfig, ClientError, Credentials, MountOutcome, RegistryClient, Repository,
};
use berth_registry::server::config::{AccessRule, Action, TokenSettings};
use bytes::Bytes;
use common::*;
use futures_util::StreamExt;

fn htpasswd(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("htpasswd");
    let mut text = String::new();
    for (u, pw) in [("alice", "alicepw"), ("bob", "bobpw")] {
        text.push_str(&format!("{u}:{}\n", bcrypt::hash(pw, 4).unwrap()));
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn rules() -> Vec<AccessRule> {
    vec![
        AccessRule {
            account: "*".into(),
            name: "${account}/*".into(),
            actions: vec![Action::Pull, Action::Push, Action::Delete],
        },
        AccessRule {
            account: "anonymous".into(),
            name: "library/*".into(),
            actions: vec![Action::Pull],
        },
        AccessRule {
            account: "alice".into(),
            name: "library/*".into(),
            actions: vec![Action::Pull, Action::Push],
        },
    ]
}

fn domain(r: &TestRegistry) -> String {
    r.base.trim_start_matches("http://").to_string()
}

fn client(cfg: ClientConfig) -> RegistryClient {
    RegistryClient::new(cfg).unwrap()
}

async fn open(
    c: &RegistryClient,
    r: &TestRegistry,
    name: &str,
    creds: Credentials,
) -> Result<Repository, ClientError> {
    c.open_registry(&domain(r), name, creds, Access::PullPush)
        .await
}

fn stream_of(
    data: Vec<u8>,
    piece: usize,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let pieces: Vec<std::io::Result<Bytes>> = data
        .chunks(piece)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(pieces)
}

async fn read_blob(repo: &Repository, d: &Digest) -> Vec<u8> {
    let mut s = repo.blob_stream(d).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Config + layer + manifest through every upload path; read back every way.
#[tokio::test]
async fn uploads_manifests_blobs_and_tags() {
    let r = TestRegistry::start(|_| {}).await;
    let c = client(ClientConfig::default());
    let repo = open(&c, &r, "me/app", Credentials::default())
        .await
        .unwrap();
    // The insecure loopback registry answers in plain HTTP: the endpoint fell back to it.
    assert_eq!(repo.endpoint().base.scheme(), "http");

    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let cd = Digest::sha256_of(&config);
    assert_eq!(repo.head_blob(&cd).await.unwrap(), None);
    let at = repo.start_upload().await.unwrap();
    repo.upload_bytes(at, &cd, Bytes::from(config.clone()))
        .await
        .unwrap();
    assert_eq!(
        repo.head_blob(&cd).await.unwrap(),
        Some(config.len() as u64)
    );

    // A streamed upload of unknown length (one PATCH), finished with the digest.
    let layer: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let ld = Digest::sha256_of(&layer);
    let at = repo.start_upload().await.unwrap();
    let next = repo
        .upload_stream(at, stream_of(layer.clone(), 4096))
        .await
        .unwrap();
    repo.finish_upload(next, &ld).await.unwrap();
    assert_eq!(read_blob(&repo, &ld).await, layer);

    // A monolithic upload from a stream of known length.
    let other = b"monolithic bytes".to_vec();
    let od = Digest::sha256_of(&other);
    let at = repo.start_upload().await.unwrap();
    repo.upload_whole(at, &od, other.len() as u64, stream_of(other.clone(), 5))
        .await
        .unwrap();
    assert_eq!(
        repo.get_blob_bytes(&od, 1024).await.unwrap().as_ref(),
        &other[..]
    );
    // A digest that does not match the bytes is refused by the registry.
    let at = repo.start_upload().await.unwrap();
    let err = repo
        .upload_bytes(at, &Digest::sha256_of(b"nope"), Bytes::from_static(b"yes"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest invalid"), "{err}");
    // get_blob_bytes enforces its limit.
    assert!(matches!(
        repo.get_blob_bytes(&ld, 1000).await,
        Err(ClientError::TooLarge { .. })
    ));

    let m = image_manifest(&cd, config.len(), &ld, layer.len(), None);
    let digest = repo
        .put_manifest("v1", OCI_MANIFEST, Bytes::from(m.clone()))
        .await
        .unwrap();
    assert_eq!(digest, Digest::sha256_of(&m));
    let got = repo.get_manifest("v1").await.unwrap();
    assert_eq!(got.digest, digest);
    assert_eq!(got.bytes.as_ref(), &m[..]);
    assert_eq!(got.media_type, OCI_MANIFEST);
    let by_digest = repo.get_manifest(&digest.to_string()).await.unwrap();
    assert_eq!(by_digest.bytes, got.bytes);
    let head = repo.head_manifest("v1").await.unwrap().unwrap();
    assert_eq!(head.digest, Some(digest.clone()));
    assert_eq!(repo.head_manifest("nosuch").await.unwrap(), None);
    let err = repo.get_manifest("nosuch").await.unwrap_err();
    assert_eq!(err.to_string(), "manifest unknown: manifest unknown");
    assert!(err.is_not_found());
    repo.put_manifest("v2", OCI_MANIFEST, Bytes::from(m))
        .await
        .unwrap();
    let mut tags = repo.tags().await.unwrap();
    tags.sort();
    assert_eq!(tags, vec!["v1", "v2"]);
}

#[tokio::test]
async fn chunked_uploads_use_content_ranges() {
    let r = TestRegistry::start(|_| {}).await;
    let c = client(ClientConfig {
        upload_chunk_size: Some(3000),
        ..Default::default()
    });
    let repo = open(&c, &r, "me/chunks", Credentials::default())
        .await
        .unwrap();
    for len in [0usize, 1, 2999, 3000, 3001, 10_000] {
        let data: Vec<u8> = (0..len).map(|i| (i % 13) as u8).collect();
        let d = Digest::sha256_of(&data);
        let at = repo.start_upload().await.unwrap();
        let next = repo
            .upload_stream(at, stream_of(data.clone(), 700))
            .await
            .unwrap();
        repo.finish_upload(next, &d).await.unwrap();
        assert_eq!(read_blob(&repo, &d).await, data, "length {len}");
    }
}

#[tokio::test]
async fn mounts_from_other_repositories() {
    let r = TestRegistry::start(|_| {}).await;
    let c = client(ClientConfig::default());
    let d = r.push_blob("me/source", b"shared layer").await;
    let repo = open(&c, &r, "me/target", Credentials::default())
        .await
        .unwrap();
    assert_eq!(repo.head_blob(&d).await.unwrap(), None);
    assert_eq!(
        repo.mount_blob(&d, "me/source").await.unwrap(),
        MountOutcome::Mounted
    );
    assert_eq!(repo.head_blob(&d).await.unwrap(), Some(12));
    // Unknown blob: the registry opens an upload session instead.
    match repo
        .mount_blob(&Digest::sha256_of(b"unknown"), "me/source")
        .await
        .unwrap()
    {
        MountOutcome::Upload(at) => repo.cancel_upload(at).await,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn basic_auth_login_and_docker_wording() {
    let dir = tempfile::tempdir().unwrap();
    let h = htpasswd(dir.path());
    let r = TestRegistry::start_in(
        dir,
        |c| {
            c.htpasswd = Some(h);
            c.access = Some(rules());
        },
        false,
    )
    .await;
    let c = client(ClientConfig::default());
    let dom = domain(&r);
    let err = c
        .login(&dom, &Credentials::basic("alice", "wrong"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("login attempt to http://{dom}/v2/ failed with status: 401 Unauthorized")
    );
    assert_eq!(
        c.login(&dom, &Credentials::basic("alice", "alicepw"))
            .await
            .unwrap(),
        ""
    );
    // Without credentials, Basic registries fail before sending anything.
    let anon = open(&c, &r, "alice/app", Credentials::default())
        .await
        .unwrap();
    let err = anon.head_manifest("v1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Head \"http://{dom}/v2/alice/app/manifests/v1\": no basic auth credentials")
    );
    assert_eq!(err.without_request(), "no basic auth credentials");
    // With them: push to the own namespace, refused elsewhere.
    let alice = open(&c, &r, "alice/app", Credentials::basic("alice", "alicepw"))
        .await
        .unwrap();
    let at = alice.start_upload().await.unwrap();
    alice
        .upload_bytes(at, &Digest::sha256_of(b"x"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let theirs = open(&c, &r, "bob/app", Credentials::basic("alice", "alicepw"))
        .await
        .unwrap();
    let err = theirs.start_upload().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "denied: requested access to the resource is denied"
    );
    assert!(err.is_auth());
    // The `auth` field form of X-Registry-Auth works too.
    let creds = Credentials::from_docker("", "", "YWxpY2U6YWxpY2Vwdw==", "", "");
    let viaauth = open(&c, &r, "alice/app", creds).await.unwrap();
    assert!(viaauth
        .head_blob(&Digest::sha256_of(b"x"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn token_auth_identity_tokens_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let h = htpasswd(dir.path());
    let r = TestRegistry::start_in(
        dir,
        |c| {
            c.htpasswd = Some(h);
            c.token = Some(TokenSettings::default());
            c.access = Some(rules());
        },
        false,
    )
    .await;
    let c = client(ClientConfig::default());
    let dom = domain(&r);
    let err = c
        .login(&dom, &Credentials::basic("alice", "wrong"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Get \"http://{dom}/v2/\": unauthorized: incorrect username or password")
    );
    let identity = c
        .login(&dom, &Credentials::basic("alice", "alicepw"))
        .await
        .unwrap();
    assert!(
        !identity.is_empty(),
        "the token service issues a refresh token"
    );

    // Pushing with the identity token alone (what `docker login` stores for such registries).
    let creds = Credentials {
        identity_token: identity,
        ..Default::default()
    };
    let repo = open(&c, &r, "alice/app", creds.clone()).await.unwrap();
    let d = Digest::sha256_of(b"layer");
    let at = repo.start_upload().await.unwrap();
    repo.upload_bytes(at, &d, Bytes::from_static(b"layer"))
        .await
        .unwrap();
    assert!(repo.head_blob(&d).await.unwrap().is_some());
    // A mount from another repository widens the token's scope on demand.
    let other = open(&c, &r, "alice/other", creds).await.unwrap();
    other.add_scope(berth_registry::client::repository_scope(
        "alice/app",
        "pull",
    ));
    assert_eq!(
        other.mount_blob(&d, "alice/app").await.unwrap(),
        MountOutcome::Mounted
    );
    // Someone else's namespace: Docker's denial text.
    let bob = open(&c, &r, "bob/app", Credentials::basic("alice", "alicepw"))
        .await
        .unwrap();
    let err = bob.start_upload().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "denied: requested access to the resource is denied"
    );
    // Anonymous pulls get anonymous tokens.
    let lib = open(
        &c,
        &r,
        "library/busybox",
        Credentials::basic("alice", "alicepw"),
    )
    .await
    .unwrap();
    let cfg = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = Digest::sha256_of(cfg);
    let at = lib.start_upload().await.unwrap();
    lib.upload_bytes(at, &cd, Bytes::from_static(cfg))
        .await
        .unwrap();
    let at = lib.start_upload().await.unwrap();
    lib.upload_bytes(at, &d, Bytes::from_static(b"layer"))
        .await
        .unwrap();
    let m = image_manifest(&cd, cfg.len(), &d, 5, None);
    lib.put_manifest("latest", OCI_MANIFEST, Bytes::from(m))
        .await
        .unwrap();
    let anon = c
        .open_registry(
            &dom,
            "library/busybox",
            Credentials::default(),
            Access::Pull,
        )
        .await
        .unwrap();
    assert!(anon.get_manifest("latest").await.is_ok());
    let anon = c
        .open_registry(&dom, "alice/app", Credentials::default(), Access::Pull)
        .await
        .unwrap();
    let err = anon.get_manifest("latest").await.unwrap_err();
    assert!(err.is_auth(), "{err}");
}
