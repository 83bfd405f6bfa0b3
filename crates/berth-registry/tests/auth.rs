//! Accounts: htpasswd Basic auth, the token service, access rules, slow-down of wrong passwords.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use berth_registry::server::config::{AccessRule, Action, TokenSettings};
use common::*;
use http::{Method, StatusCode};

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

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
            account: "*".into(),
            name: "library/*".into(),
            actions: vec![Action::Pull],
        },
        AccessRule {
            account: "anonymous".into(),
            name: "library/*".into(),
            actions: vec![Action::Pull],
        },
        AccessRule {
            account: "alice".into(),
            name: "library/*".into(),
            actions: vec![Action::Push],
        },
    ]
}

#[tokio::test]
async fn basic_auth_challenges_denies_and_allows() {
    let dir = tempfile::tempdir().unwrap();
    let h = htpasswd(dir.path());
    let r = TestRegistry::start_in(
        dir,
        |c| {
            c.htpasswd = Some(h);
            c.realm = "test-realm".into();
            c.access = Some(rules());
        },
        false,
    )
    .await;
    // No credentials: 401 with a Basic challenge, as distribution answers docker.
    let resp = r.get("/v2/").await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.code(), "UNAUTHORIZED");
    assert_eq!(
        resp.header("www-authenticate").as_deref(),
        Some("Basic realm=\"test-realm\"")
    );
    // Wrong password.
    let wrong = r
        .req(
            Method::GET,
            "/v2/",
            &[("authorization", &basic("alice", "nope"))],
            "",
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // Right password.
    let a = basic("alice", "alicepw");
    let ok = r
        .req(Method::GET, "/v2/", &[("authorization", &a)], "")
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    // alice pushes into her namespace and into library/.
    let d = berth_image::digest::Digest::sha256_of(b"lib");
    let push = r
        .req(
            Method::POST,
            &format!("/v2/alice/app/blobs/uploads/?digest={d}"),
            &[("authorization", &a)],
            "lib",
        )
        .await;
    assert_eq!(push.status, StatusCode::CREATED);
    let lib = r
        .req(
            Method::POST,
            &format!("/v2/library/busybox/blobs/uploads/?digest={d}"),
            &[("authorization", &a)],
            "lib",
        )
        .await;
    assert_eq!(lib.status, StatusCode::CREATED);
    // bob may not push into alice's namespace: 403 DENIED with Docker's wording.
    let b = basic("bob", "bobpw");
    let denied = r
        .req(
            Method::POST,
            "/v2/alice/app/blobs/uploads/",
            &[("authorization", &b)],
            "",
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "DENIED");
    assert_eq!(
        denied.json()["errors"][0]["message"],
        "requested access to the resource is denied"
    );
    assert_eq!(denied.json()["errors"][0]["detail"][0]["Action"], "push");
    let head = r
        .req(
            Method::HEAD,
            "/v2/alice/app/manifests/latest",
            &[("authorization", &b)],
            "",
        )
        .await;
    assert_eq!(head.status, StatusCode::FORBIDDEN);
    assert!(head
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    // Anonymous push: 401 challenge; anonymous pull of library/*: allowed.
    let anon_push = r
        .req(Method::POST, "/v2/bob/app/blobs/uploads/", &[], "")
        .await;
    assert_eq!(anon_push.status, StatusCode::UNAUTHORIZED);
    assert!(anon_push.header("www-authenticate").is_some());
    assert_eq!(
        r.get(&format!("/v2/library/busybox/blobs/{d}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        r.get(&format!("/v2/alice/app/blobs/{d}")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // bob can pull library/* but not push there.
    assert_eq!(
        r.req(
            Method::GET,
            &format!("/v2/library/busybox/blobs/{d}"),
            &[("authorization", &b)],
            ""
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        r.req(
            Method::POST,
            "/v2/library/busybox/blobs/uploads/",
            &[("authorization", &b)],
            ""
        )
        .await
        .code(),
        "DENIED"
    );
    // Catalog needs a login and shows only what the user may pull.
    assert_eq!(r.get("/v2/_catalog").await.status, StatusCode::UNAUTHORIZED);
    let cat = r
        .req(Method::GET, "/v2/_catalog", &[("authorization", &b)], "")
        .await;
    assert_eq!(
        cat.json()["repositories"],
        serde_json::json!(["library/busybox"])
    );
    let cat = r
        .req(Method::GET, "/v2/_catalog", &[("authorization", &a)], "")
        .await;
    assert_eq!(
        cat.json()["repositories"],
        serde_json::json!(["alice/app", "library/busybox"])
    );
}

#[tokio::test]
async fn wrong_passwords_are_slowed_down() {
    let dir = tempfile::tempdir().unwrap();
    let h = htpasswd(dir.path());
    let r = TestRegistry::start_in(dir, |c| c.htpasswd = Some(h), false).await;
    let bad = basic("alice", "guess");
    let first = Instant::now();
    r.req(Method::GET, "/v2/", &[("authorization", &bad)], "")
        .await;
    let first = first.elapsed();
    for _ in 0..3 {
        r.req(Method::GET, "/v2/", &[("authorization", &bad)], "")
            .await;
    }
    // After four failures the next attempt waits at least 100 ms · 2³ = 800 ms.
    let t = Instant::now();
    let resp = r
        .req(Method::GET, "/v2/", &[("authorization", &bad)], "")
        .await;
    let waited = t.elapsed();
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert!(
        waited >= Duration::from_millis(800),
        "waited only {waited:?}"
    );
    assert!(waited > first, "first {first:?}, later {waited:?}");
    // Another user from another client is not held up by alice's failures... but this client
    // is: the slow-down is per user and per client address.
    let t = Instant::now();
    let other = r
        .req(
            Method::GET,
            "/v2/",
            &[("authorization", &basic("bob", "bobpw"))],
            "",
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(800));
}

async fn token(r: &TestRegistry, query: &str, auth: Option<&str>) -> Resp {
    let mut h = Vec::new();
    if let Some(a) = auth {
        h.push(("authorization", a));
    }
    r.req(Method::GET, &format!("/token?{query}"), &h, "").await
}

#[tokio::test]
async fn token_service_issues_scoped_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let h = htpasswd(dir.path());
    let r = TestRegistry::start_in(
        dir,
        |c| {
            c.htpasswd = Some(h);
            c.access = Some(rules());
            c.token = Some(TokenSettings {
                service: Some("test-service".into()),
                ..Default::default()
            });
        },
        false,
    )
    .await;
    // The challenge points at /token with service and scope.
    let resp = r
        .req(Method::POST, "/v2/alice/app/blobs/uploads/", &[], "")
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    let host = r.base.trim_start_matches("http://");
    assert_eq!(
        resp.header("www-authenticate").unwrap(),
        format!("Bearer realm=\"http://{host}/token\",service=\"test-service\",scope=\"repository:alice/app:pull,push\"")
    );
    // The key was generated under the root.
    assert!(r.root().join("token-key.pem").exists());

    // Wrong password at the token service.
    let bad = token(
        &r,
        "service=test-service&scope=repository:alice/app:pull,push",
        Some(&basic("alice", "x")),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);

    // alice gets pull,push on her repository.
    let t = token(&r, "service=test-service&scope=repository:alice/app:pull,push&offline_token=true&client_id=docker", Some(&basic("alice", "alicepw"))).await;
    assert_eq!(t.status, StatusCode::OK);
    let j = t.json();
    assert!(j["expires_in"].as_u64().unwrap() > 0);
    assert!(j["issued_at"].as_str().is_some());
    assert!(j["refresh_token"].as_str().is_some());
    let at = format!("Bearer {}", j["token"].as_str().unwrap());
    assert_eq!(j["access_token"], j["token"]);
    assert_eq!(
        r.req(Method::GET, "/v2/", &[("authorization", &at)], "")
            .await
            .status,
        StatusCode::OK
    );
    let up = r
        .req(
            Method::POST,
            "/v2/alice/app/blobs/uploads/",
            &[("authorization", &at)],
            "",
        )
        .await;
    assert_eq!(up.status, StatusCode::ACCEPTED);
    // The same token does not cover another repository alice may push to: insufficient scope.
    let other = r
        .req(
            Method::POST,
            "/v2/alice/other/blobs/uploads/",
            &[("authorization", &at)],
            "",
        )
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    assert!(other
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));

    // bob asks for push on alice's repository: the token grants nothing, the registry says DENIED.
    let bt = token(
        &r,
        "service=test-service&scope=repository:alice/app:pull,push",
        Some(&basic("bob", "bobpw")),
    )
    .await;
    let bj = bt.json();
    let bt = format!("Bearer {}", bj["token"].as_str().unwrap());
    let denied = r
        .req(
            Method::POST,
            "/v2/alice/app/blobs/uploads/",
            &[("authorization", &bt)],
            "",
        )
        .await;
    // As distribution's token auth: 401 with error="insufficient_scope" (Docker then prints
    // "denied: requested access to the resource is denied" without retrying).
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.code(), "DENIED");
    assert_eq!(
        denied.json()["errors"][0]["message"],
        "requested access to the resource is denied"
    );
    assert_eq!(denied.json()["errors"][0]["detail"][0]["Name"], "alice/app");
    assert!(denied
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));

    // Anonymous token: pull of library/* only.
    let anon = token(
        &r,
        "service=test-service&scope=repository:library/busybox:pull,push",
        None,
    )
    .await;
    assert_eq!(anon.status, StatusCode::OK);
    assert!(anon.json().get("refresh_token").is_none());
    let an = format!("Bearer {}", anon.json()["token"].as_str().unwrap());
    let tags = r
        .req(
            Method::GET,
            "/v2/library/busybox/tags/list",
            &[("authorization", &an)],
            "",
        )
        .await;
    assert_eq!(tags.code(), "NAME_UNKNOWN"); // authorized; the repository just does not exist
    let push = r
        .req(
            Method::POST,
            "/v2/library/busybox/blobs/uploads/",
            &[("authorization", &an)],
            "",
        )
        .await;
    assert_eq!(push.status, StatusCode::UNAUTHORIZED);

    // Garbage and refresh tokens are not access tokens.
    let garbage = r
        .req(
            Method::GET,
            "/v2/",
            &[("authorization", "Bearer a.b.c")],
            "",
        )
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert!(garbage
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    let rt = j["refresh_token"].as_str().unwrap().to_string();
    let as_access = r
        .req(
            Method::GET,
            "/v2/",
            &[("authorization", &format!("Bearer {rt}"))],
            "",
        )
        .await;
    assert_eq!(as_access.status, StatusCode::UNAUTHORIZED);

    // OAuth2 POST: refresh_token and password grants.
    let form = format!("grant_type=refresh_token&service=test-service&client_id=docker&scope=repository%3Aalice%2Fapp%3Apull&refresh_token={rt}");
    let refreshed = r
        .req(
            Method::POST,
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            form,
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    let rt2 = format!(
        "Bearer {}",
        refreshed.json()["access_token"].as_str().unwrap()
    );
    assert_eq!(
        r.req(
            Method::GET,
            "/v2/alice/app/tags/list",
            &[("authorization", &rt2)],
            ""
        )
        .await
        .code(),
        "NAME_UNKNOWN"
    );
    let pw = r
        .req(
            Method::POST,
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            "grant_type=password&username=bob&password=bobpw&service=test-service&access_type=offline&scope=repository:bob/x:push",
        )
        .await;
    assert_eq!(pw.status, StatusCode::OK);
    assert!(pw.json()["refresh_token"].as_str().is_some());
    let badpw = r
        .req(
            Method::POST,
            "/token",
            &[],
            "grant_type=password&username=bob&password=no&service=test-service",
        )
        .await;
    assert_eq!(badpw.status, StatusCode::UNAUTHORIZED);
    let badgrant = r.req(Method::POST, "/token", &[], "grant_type=magic").await;
    assert_eq!(badgrant.status, StatusCode::BAD_REQUEST);
    // Catalog scope.
    let ct = token(
        &r,
        "service=test-service&scope=registry:catalog:*",
        Some(&basic("alice", "alicepw")),
    )
    .await;
    let ct = format!("Bearer {}", ct.json()["token"].as_str().unwrap());
    let cat = r
        .req(Method::GET, "/v2/_catalog", &[("authorization", &ct)], "")
        .await;
    assert_eq!(cat.status, StatusCode::OK);
}

#[tokio::test]
async fn token_endpoint_absent_without_token_mode() {
    let r = TestRegistry::start(|_| {}).await;
    assert_eq!(r.get("/token").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn token_mount_asks_for_the_source_scope() {
    let dir = tempfile::tempdir().unwrap();
    let h = htpasswd(dir.path());
    let r = TestRegistry::start_in(
        dir,
        |c| {
            c.htpasswd = Some(h);
            c.token = Some(TokenSettings::default());
        },
        false,
    )
    .await;
    let a = basic("alice", "alicepw");
    let get = |scope: &'static str| {
        let r = &r;
        let a = a.clone();
        async move {
            let t = token(r, &format!("service=berth-registry&{scope}"), Some(&a)).await;
            format!("Bearer {}", t.json()["token"].as_str().unwrap())
        }
    };
    let t1 = get("scope=repository:alice/a:pull,push").await;
    let d = berth_image::digest::Digest::sha256_of(b"mount me");
    let up = r
        .req(
            Method::POST,
            &format!("/v2/alice/a/blobs/uploads/?digest={d}"),
            &[("authorization", &t1)],
            "mount me",
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED);
    let mount = format!("/v2/alice/b/blobs/uploads/?mount={d}&from=alice/a");
    // A token for the target only: the challenge asks for the source as well.
    let t2 = get("scope=repository:alice/b:pull,push").await;
    let resp = r
        .req(Method::POST, &mount, &[("authorization", &t2)], "")
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert!(resp
        .header("www-authenticate")
        .unwrap()
        .contains("scope=\"repository:alice/b:pull,push repository:alice/a:pull\""));
    let t3 = get("scope=repository:alice/b:pull,push&scope=repository:alice/a:pull").await;
    let resp = r
        .req(Method::POST, &mount, &[("authorization", &t3)], "")
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
}
