//! The typed client against the server (with the recording fake backend).

mod common;

use berth_api::client::{Client, ClientError};
use berth_api::models::*;
use berth_api::*;
use bytes::Bytes;
use common::*;
use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn body(cmd: &[&str], auto_remove: bool, stdin: bool) -> ContainerCreateBody {
    ContainerCreateBody {
        config: ContainerConfig {
            image: "busybox".into(),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            attach_stdin: stdin,
            open_stdin: stdin,
            attach_stdout: true,
            attach_stderr: true,
            labels: Some([("com.example.k".to_string(), "v".to_string())].into()),
            ..Default::default()
        },
        host_config: Some(HostConfig {
            auto_remove,
            network_mode: "default".into(),
            ..Default::default()
        }),
        networking_config: None,
    }
}

#[tokio::test]
async fn connect_error_names_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/nobody.sock", dir.path().display());
    let client = Client::from_host(&host).unwrap();
    let err = client.version().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }));
    assert_eq!(
        err.to_string(),
        format!("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")
    );
    let client = Client::from_host(berth_api::DEFAULT_HOST).unwrap();
    assert_eq!(client.host(), "unix:///run/berth/berth.sock");
}

#[tokio::test]
async fn invalid_hosts() {
    for bad in [
        "",
        "unix://",
        "http://x",
        "tcp://",
        "/run/x.sock",
        "tcp://h:1/path",
    ] {
        assert!(
            matches!(Client::from_host(bad), Err(ClientError::InvalidHost { .. })),
            "{bad}"
        );
    }
    assert!(Client::from_host("tcp://127.0.0.1").is_ok());
    assert!(Client::from_host("tcp://127.0.0.1:2375").is_ok());
}

#[tokio::test]
async fn negotiates_with_head_ping_and_can_pin_a_version() {
    let fake = Fake::new();
    let server = TestServer::start(FakeBackend(fake.clone())).await;
    let client = Client::from_host(&server.host()).unwrap();
    let ping = client.ping().await.unwrap();
    assert_eq!(ping.api_version, Some(MAX_API_VERSION));
    assert_eq!(ping.os_type.as_deref(), Some("linux"));
    assert_eq!(client.api_version().await.unwrap(), MAX_API_VERSION);
    let v = client.version().await.unwrap();
    assert_eq!(v.api_version, "1.43");
    assert_eq!(*fake.last_version.lock().unwrap(), Some(MAX_API_VERSION));

    let pinned = Client::from_host(&server.host())
        .unwrap()
        .with_version(ApiVersion::new(1, 41));
    pinned.info().await.unwrap();
    assert_eq!(
        *fake.last_version.lock().unwrap(),
        Some(ApiVersion::new(1, 41))
    );
    let too_new = Client::from_host(&server.host())
        .unwrap()
        .with_version(ApiVersion::new(1, 99));
    let err = too_new.info().await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::BAD_REQUEST));
    assert_eq!(err.to_string(), "Error response from daemon: client version 1.99 is too new. Maximum supported API version is 1.43");
}

#[tokio::test]
async fn run_like_the_cli_create_wait_attach_start() {
    let fake = Fake::new();
    let server = TestServer::start(FakeBackend(fake.clone())).await;
    let client = Client::from_host(&server.host()).unwrap();

    let created = client
        .container_create(Some("c1"), None, &body(&["cat"], false, true))
        .await
        .unwrap();
    assert_eq!(created.warnings, Vec::<String>::new());
    let attach_opts = AttachOptions {
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut conn = client
        .container_attach(&created.id, &attach_opts)
        .await
        .unwrap();
    assert!(
        conn.is_raw_socket(),
        "the client unwraps the upgraded unix socket"
    );
    let wait = client
        .container_wait(&created.id, Some(WaitCondition::NextExit))
        .await
        .unwrap();
    assert_eq!(
        client.container_start("c1").await.unwrap(),
        ChangeOutcome::Done
    );
    assert_eq!(
        client.container_start("c1").await.unwrap(),
        ChangeOutcome::NotModified
    );

    conn.write_all(b"hello from stdin\n").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.unwrap();
    assert_eq!(&out[..8], b"\x01\x00\x00\x00\x00\x00\x00\x11");
    assert_eq!(&out[8..], b"hello from stdin\n");
    assert_eq!(
        wait.result().await.unwrap(),
        ContainerWaitResponse {
            error: None,
            status_code: 0
        }
    );

    let logs: Vec<Bytes> = client
        .container_logs(
            "c1",
            &LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(logs.concat(), out);

    let list = client
        .container_list(&ContainerListOptions {
            all: true,
            filters: Filters::new().with("label", "com.example.k=v"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, "exited");
    let none = client
        .container_list(&ContainerListOptions {
            all: true,
            filters: Filters::new().with("label", "com.example.k=other"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    let inspect = client.container_inspect("c1", false).await.unwrap();
    assert_eq!(inspect.name, "/c1");
    assert_eq!(inspect.state.unwrap().exit_code, 0);
    assert_eq!(
        client.container_stop("c1", None, Some(1)).await.unwrap(),
        ChangeOutcome::NotModified
    );
    client
        .container_remove("c1", ContainerRemoveOptions::default())
        .await
        .unwrap();

    let err = client.container_inspect("c1", false).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.daemon_message(), Some("No such container: c1"));
    assert_eq!(
        err.to_string(),
        "Error response from daemon: No such container: c1"
    );
    assert!(fake
        .calls()
        .iter()
        .any(|c| c.starts_with("container_remove")));
}

#[tokio::test]
async fn exec_and_streams() {
    let fake = Fake::new();
    let server = TestServer::start(FakeBackend(fake.clone())).await;
    let client = Client::from_host(&server.host()).unwrap();
    client
        .container_create(Some("web"), None, &body(&["httpd"], false, false))
        .await
        .unwrap();
    client.container_start("web").await.unwrap();

    let exec = client
        .exec_create(
            "web",
            &ExecConfig {
                cmd: Some(vec!["fail".into()]),
                attach_stdout: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut conn = client
        .exec_start(&exec.id, &ExecStartConfig::default())
        .await
        .unwrap();
    conn.shutdown().await.unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.unwrap();
    assert_eq!(&out[8..], b"fail\n");
    assert_eq!(
        client.exec_inspect(&exec.id).await.unwrap().exit_code,
        Some(5)
    );
    let exec2 = client
        .exec_create(
            "web",
            &ExecConfig {
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client.exec_start_detached(&exec2.id, false).await.unwrap();
    assert_eq!(
        client.exec_inspect(&exec2.id).await.unwrap().exit_code,
        Some(0)
    );

    // Push: the error line arrives as a message; the stream ends after it.
    let messages: Vec<JsonMessage> = client
        .image_push(
            "localhost:5000/me/busybox",
            Some("latest"),
            &AuthConfig::default(),
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[2].error_message(),
        Some("no basic auth credentials")
    );
    let auth = AuthConfig {
        username: "me".into(),
        password: "tracepass123".into(),
        server_address: "localhost:5000".into(),
        ..Default::default()
    };
    let messages: Vec<JsonMessage> = client
        .image_push("localhost:5000/me/busybox", None, &auth)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(messages.last().unwrap().aux.is_some());
    assert_eq!(fake.auths.lock().unwrap().last().unwrap(), &auth);
    assert_eq!(client.auth(&auth).await.unwrap().status, "Login Succeeded");

    // Pull errors before streaming are plain errors.
    let err = match client
        .image_pull("localhost:5000/me/extra", Some("nosuchtag"), None, &auth)
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    };
    assert!(err.is_not_found());
    let pulled: Vec<JsonMessage> = client
        .image_pull("localhost:5000/me/extra", Some("v1"), None, &auth)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pulled.len(), 3);

    let tar: BodyStream = Box::pin(stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Ok(Bytes::from_static(b"defg")),
    ]));
    let loaded: Vec<JsonMessage> = client
        .images_load(tar, true)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(loaded[0].stream.as_deref(), Some("Loaded image: 7 bytes\n"));
    let saved: Vec<Bytes> = client
        .images_get(&["busybox".into(), "a/b:c".into()])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(saved.concat(), b"TAR:busybox,a/b:c");

    let events: Vec<EventMessage> = client
        .events(&EventsOptions::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].actor.attributes.as_ref().unwrap()["exitCode"],
        "137"
    );

    client
        .image_tag("busybox", "localhost:5000/me/busybox", Some("latest"))
        .await
        .unwrap();
    assert!(fake
        .calls()
        .contains(&"image_tag busybox localhost:5000/me/busybox Some(\"latest\")".to_string()));
    let deleted = client
        .image_delete("localhost:5000/me/busybox", ImageDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        deleted[0],
        ImageDeleteResponseItem::untagged("localhost:5000/me/busybox:latest")
    );
    let commit = client
        .commit(&CommitOptions {
            container: "web".into(),
            changes: vec!["ENV A=1".into()],
            pause: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(commit.id.starts_with("sha256:"));
    let images = client
        .image_list(&ImageListOptions::default())
        .await
        .unwrap();
    assert_eq!(
        images[0].repo_tags.as_deref(),
        Some(&["busybox:latest".to_string()][..])
    );

    let err = client.network_inspect("nosuchnet").await.unwrap_err();
    assert_eq!(err.daemon_message(), Some("network nosuchnet not found"));
    let err = client.volume_inspect("x").await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::NOT_IMPLEMENTED));
    let _ = StreamExt::boxed(stream::empty::<()>());
}

#[tokio::test]
async fn works_over_tcp_too() {
    let fake = Fake::new();
    let listener = berth_api::server::Listener::bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(berth_api::server::serve(
        vec![listener],
        std::sync::Arc::new(FakeBackend(fake.clone())),
        async {
            let _ = rx.await;
        },
    ));
    let client = Client::from_host(&format!("tcp://{addr}")).unwrap();
    assert_eq!(client.version().await.unwrap().api_version, "1.43");
    client
        .container_create(
            Some("t"),
            None,
            &body(&["echo", "over", "tcp"], false, false),
        )
        .await
        .unwrap();
    let mut conn = client
        .container_attach(
            "t",
            &AttachOptions {
                stream: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(conn.is_raw_socket());
    client.container_start("t").await.unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.unwrap();
    assert_eq!(&out[8..], b"over tcp\n");
    assert!(
        fake.calls()
            .contains(&"attach_io raw_socket=true".to_string()),
        "server side unwrapped the TcpStream"
    );
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
