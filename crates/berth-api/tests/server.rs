//! The server against the exact requests of the traces (raw bytes over a unix socket), with a
//! recording in-memory backend.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_api::ApiVersion;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CREATE_ECHO: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["echo","hello"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}
"#;

fn create_body(cmd: &str, auto_remove: bool, stdin: bool) -> String {
    CREATE_ECHO
        .replace(r#""Cmd":["echo","hello"]"#, &format!(r#""Cmd":{cmd}"#))
        .replace(
            r#""AutoRemove":true"#,
            &format!(r#""AutoRemove":{auto_remove}"#),
        )
        .replace(
            r#""AttachStdin":false"#,
            &format!(r#""AttachStdin":{stdin}"#),
        )
        .replace(r#""OpenStdin":false"#, &format!(r#""OpenStdin":{stdin}"#))
}

async fn create(server: &TestServer, name: Option<&str>, body: &str) -> String {
    let path = match name {
        Some(n) => format!("/v1.41/containers/create?name={n}"),
        None => "/v1.41/containers/create".to_string(),
    };
    let resp = roundtrip(server, &cli_request("POST", &path, Some(body))).await;
    assert_eq!(resp.status, 201, "{}", resp.body_str());
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    v["Id"].as_str().unwrap().to_string()
}

fn attach_request(id: &str, stdin: bool) -> Vec<u8> {
    let q = if stdin {
        "stderr=1&stdin=1&stdout=1&stream=1"
    } else {
        "stderr=1&stdout=1&stream=1"
    };
    format!(
        "POST /v1.41/containers/{id}/attach?{q} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\nContent-Length: 0\r\nConnection: Upgrade\r\nContent-Type: text/plain\r\nUpgrade: tcp\r\n\r\n"
    )
    .into_bytes()
}

fn names(resp: &RawResponse) -> Vec<&str> {
    resp.header_names()
}

async fn started_fake() -> (std::sync::Arc<Fake>, TestServer) {
    let fake = Fake::new();
    let server = TestServer::start(FakeBackend(fake.clone())).await;
    (fake, server)
}

/// Decodes stdcopy frames into (stream, payload) pairs.
fn frames(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        out.push((data[0], data[8..8 + len].to_vec()));
        data = &data[8 + len..];
    }
    assert!(data.is_empty(), "trailing partial frame");
    out
}

#[tokio::test]
async fn head_ping_has_dockers_headers_in_order() {
    let (_fake, server) = started_fake().await;
    let req = b"HEAD /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n\r\n";
    let resp = roundtrip(&server, req).await;
    assert!(
        resp.head.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        resp.head
    );
    assert_eq!(
        names(&resp),
        [
            "Api-Version",
            "Cache-Control",
            "Content-Length",
            "Content-Type",
            "Docker-Experimental",
            "Ostype",
            "Pragma",
            "Server",
            "Date"
        ]
    );
    assert_eq!(resp.header("Api-Version"), Some("1.43"));
    assert_eq!(
        resp.header("Cache-Control"),
        Some("no-cache, no-store, must-revalidate")
    );
    assert_eq!(resp.header("Content-Length"), Some("0"));
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("Docker-Experimental"), Some("false"));
    assert_eq!(resp.header("Ostype"), Some("linux"));
    assert_eq!(resp.header("Pragma"), Some("no-cache"));
    assert!(resp.header("Server").unwrap().starts_with("berth/"));
    assert!(resp.header("Date").unwrap().ends_with(" GMT"));
}

#[tokio::test]
async fn get_ping_says_ok_and_versioned_ping_works() {
    let (_fake, server) = started_fake().await;
    let resp = roundtrip(
        &server,
        b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"OK");
    assert_eq!(resp.header("Content-Length"), Some("2"));
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("Pragma"), Some("no-cache"));
    let resp = roundtrip(&server, &cli_request("GET", "/v1.41/_ping", None)).await;
    assert_eq!(resp.body, b"OK");
}

#[tokio::test]
async fn ping_then_request_on_one_keepalive_connection() {
    let (fake, server) = started_fake().await;
    let mut s = server.connect().await;
    s.write_all(&cli_request("HEAD", "/_ping", None))
        .await
        .unwrap();
    let ping = read_response(&mut s, true).await;
    assert_eq!(ping.status, 200);
    s.write_all(&cli_request("GET", "/v1.41/version", None))
        .await
        .unwrap();
    let resp = read_response(&mut s, false).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        names(&resp),
        [
            "Api-Version",
            "Content-Type",
            "Docker-Experimental",
            "Ostype",
            "Server",
            "Date",
            "Content-Length"
        ]
    );
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(v["ApiVersion"], "1.43");
    assert!(resp.body.ends_with(b"}\n"));
    assert_eq!(
        *fake.last_version.lock().unwrap(),
        Some(ApiVersion::new(1, 41))
    );
}

#[tokio::test]
async fn unversioned_paths_get_the_newest_version() {
    let (fake, server) = started_fake().await;
    let req = b"GET /version HTTP/1.1\r\nHost: localhost\r\nUser-Agent: docker-compose/1.29.2 docker-py/5.0.3 Linux\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n";
    let resp = roundtrip(&server, req).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        *fake.last_version.lock().unwrap(),
        Some(berth_api::MAX_API_VERSION)
    );
}

#[tokio::test]
async fn unknown_path_or_method_is_page_not_found_without_api_version() {
    let (_fake, server) = started_fake().await;
    for req in [
        &b"GET /v1.41/nosuchendpoint HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"[..],
        &b"DELETE /v1.41/info HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"[..],
    ] {
        let resp = roundtrip(&server, req).await;
        assert!(resp.head.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert_eq!(names(&resp), ["Content-Type", "Date", "Content-Length"]);
        assert_eq!(resp.header("Content-Type"), Some("application/json"));
        assert_eq!(resp.body_str(), "{\"message\":\"page not found\"}\n");
    }
}

#[tokio::test]
async fn version_too_new_or_too_old_is_400_with_dockers_message() {
    let (fake, server) = started_fake().await;
    let resp = roundtrip(&server, &cli_request("GET", "/v1.99/version", None)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"client version 1.99 is too new. Maximum supported API version is 1.43\"}\n"
    );
    assert_eq!(resp.header("Api-Version"), Some("1.43"));
    assert_eq!(resp.header("Docker-Experimental"), None);
    let resp = roundtrip(&server, &cli_request("GET", "/v1.11/containers/json", None)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"client version 1.11 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version\"}\n"
    );
    assert!(
        fake.calls().is_empty(),
        "the backend must not be called: {:?}",
        fake.calls()
    );
}

#[tokio::test]
async fn create_with_the_cli28_body() {
    let (fake, server) = started_fake().await;
    let resp = roundtrip(
        &server,
        &cli_request(
            "POST",
            "/v1.41/containers/create?name=web",
            Some(CREATE_ECHO),
        ),
    )
    .await;
    assert!(resp.head.starts_with("HTTP/1.1 201 Created\r\n"));
    assert_eq!(
        names(&resp),
        [
            "Api-Version",
            "Content-Type",
            "Docker-Experimental",
            "Ostype",
            "Server",
            "Date",
            "Content-Length"
        ]
    );
    let body = resp.body_str();
    assert!(
        body.starts_with("{\"Id\":\"") && body.ends_with("\",\"Warnings\":[]}\n"),
        "{body}"
    );
    assert_eq!(
        fake.calls(),
        ["container_create name=Some(\"web\") platform=None image=busybox"]
    );
    let st = fake.state.lock().unwrap();
    let c = st.containers.values().next().unwrap();
    assert!(c.body.host_config.as_ref().unwrap().auto_remove);
    assert!(c
        .body
        .networking_config
        .as_ref()
        .unwrap()
        .endpoints_config
        .as_ref()
        .unwrap()
        .contains_key("default"));
}

#[tokio::test]
async fn create_errors() {
    let (fake, server) = started_fake().await;
    let form = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Length: 2\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n{}";
    let resp = roundtrip(&server, form).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body_str(), "{\"message\":\"Content-Type specified (application/x-www-form-urlencoded) must be 'application/json'\"}\n");

    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/create", Some("{}")),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"Config cannot be empty in order to create a container\"}\n"
    );

    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/create", Some("{not json")),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert!(
        resp.body_str().starts_with("{\"message\":\"invalid JSON: "),
        "{}",
        resp.body_str()
    );

    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/create", None),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"invalid JSON: got EOF while reading request body\"}\n"
    );

    let missing = CREATE_ECHO.replace(r#""Image":"busybox""#, r#""Image":"nosuchimage-tr:1.0""#);
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/create", Some(&missing)),
    )
    .await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"No such image: nosuchimage-tr:1.0\"}\n"
    );

    create(&server, Some("web"), CREATE_ECHO).await;
    let resp = roundtrip(
        &server,
        &cli_request(
            "POST",
            "/v1.41/containers/create?name=web",
            Some(CREATE_ECHO),
        ),
    )
    .await;
    assert_eq!(resp.status, 409);
    assert!(resp
        .body_str()
        .contains("The container name \\\"/web\\\" is already in use"));
    // Only the two valid creates and the two backend-detected errors reached the backend.
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn docker_py_create_body_with_nulls() {
    let (fake, server) = started_fake().await;
    let body = r#"{"Tty": false, "OpenStdin": false, "StdinOnce": false, "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "Cmd": ["sh", "-c", "echo db-starting; sleep 3600"], "Image": "busybox", "Volumes": {}, "NetworkDisabled": false, "HostConfig": {"NetworkMode": "trcompose_default", "VolumesFrom": [], "Binds": [], "PortBindings": {}, "Links": [], "LogConfig": {"Type": "", "Config": {}}}, "NetworkingConfig": {"EndpointsConfig": {"trcompose_default": {"Aliases": ["db"], "IPAMConfig": {}}}}, "Labels": {"com.docker.compose.project": "trcompose"}, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Timeout": null, "Retries": null, "StartPeriod": null}}"#;
    let req = format!(
        "POST /v1.41/containers/create?name=trcompose_db_1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: docker-compose/1.29.2 docker-py/5.0.3 Linux\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = roundtrip(&server, req.as_bytes()).await;
    assert_eq!(resp.status, 201, "{}", resp.body_str());
    let st = fake.state.lock().unwrap();
    let hc = st
        .containers
        .values()
        .next()
        .unwrap()
        .body
        .config
        .healthcheck
        .clone()
        .unwrap();
    assert_eq!((hc.interval, hc.timeout, hc.retries), (1_000_000_000, 0, 0));
}

#[tokio::test]
async fn list_filters_in_both_shapes_and_validation() {
    let (fake, server) = started_fake().await;
    let resp = roundtrip(
        &server,
        &cli_request(
            "GET",
            "/v1.41/containers/json?filters=%7B%22bogus%22%3A%7B%221%22%3Atrue%7D%7D",
            None,
        ),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"Invalid filter 'bogus'\"}\n"
    );

    let resp = roundtrip(
        &server,
        &cli_request("GET", "/v1.41/containers/json?limit=-1&all=1&size=0&trunc_cmd=0&filters=%7B%22label%22%3A+%5B%22com.docker.compose.project%3Dtrcompose%22%2C+%22com.docker.compose.oneoff%3DFalse%22%5D%7D", None),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "[]\n");
    assert_eq!(
        fake.calls().last().unwrap(),
        r#"container_list all=true limit=Some(-1) size=false filters={"label":{"com.docker.compose.oneoff=False":true,"com.docker.compose.project=trcompose":true}}"#
    );

    let resp = roundtrip(
        &server,
        &cli_request("GET", "/v1.41/containers/json?filters=notjson", None),
    )
    .await;
    assert_eq!(resp.status, 400);

    create(
        &server,
        Some("web"),
        &create_body(r#"["httpd"]"#, false, false),
    )
    .await;
    let resp = roundtrip(
        &server,
        &cli_request(
            "GET",
            "/v1.41/containers/json?all=1&filters=%7B%22name%22%3A%7B%22we%22%3Atrue%7D%7D",
            None,
        ),
    )
    .await;
    let list: Vec<berth_api::models::ContainerSummary> =
        serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].names, ["/web"]);
}

/// `docker run --rm busybox echo hello` (trace 02): create, attach (101, half-close), wait
/// (headers before start), start, output, EOF, wait body.
#[tokio::test]
async fn run_rm_echo_sequence() {
    let (fake, server) = started_fake().await;
    let id = create(&server, None, CREATE_ECHO).await;

    let mut attach = server.connect().await;
    attach.write_all(&attach_request(&id, false)).await.unwrap();
    let (status, head, headers) = read_head(&mut attach).await;
    assert_eq!(status, 101);
    assert_eq!(
        head,
        "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp"
    );
    assert_eq!(headers.len(), 3);
    // The CLI half-closes at once when there is no stdin; output must still arrive.
    attach.shutdown().await.unwrap();

    let mut wait = server.connect().await;
    wait.write_all(&cli_request(
        "POST",
        &format!("/v1.41/containers/{id}/wait?condition=removed"),
        None,
    ))
    .await
    .unwrap();
    let (status, _head, headers) = read_head(&mut wait).await;
    assert_eq!(status, 200);
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(header("Content-Type"), Some("application/json"));
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("container_start")),
        "wait headers must come before start"
    );

    let start = roundtrip(
        &server,
        &cli_request("POST", &format!("/v1.41/containers/{id}/start"), None),
    )
    .await;
    assert!(start.head.starts_with("HTTP/1.1 204 No Content\r\n"));
    assert_eq!(
        names(&start),
        [
            "Api-Version",
            "Docker-Experimental",
            "Ostype",
            "Server",
            "Date"
        ]
    );

    let mut out = Vec::new();
    tokio::time::timeout(T, attach.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n");

    let mut raw = Vec::new();
    while read_chunk(&mut wait, &mut raw).await.is_some() {}
    // hyper writes chunk sizes in upper case (`1E`), Go in lower case; both are valid HTTP.
    assert_eq!(
        raw.to_ascii_lowercase(),
        b"1e\r\n{\"error\":null,\"statuscode\":0}\n\r\n0\r\n\r\n"
    );
    assert!(
        fake.state.lock().unwrap().containers.is_empty(),
        "--rm removed it"
    );
    assert!(
        fake.calls()
            .contains(&"attach_io raw_socket=true".to_string()),
        "the server unwraps the upgraded unix socket"
    );
}

/// `printf "line1\nline2\n" | docker run --rm -i busybox cat`: stdin, then half-close.
#[tokio::test]
async fn attach_with_stdin_and_half_close() {
    let (_fake, server) = started_fake().await;
    let id = create(&server, None, &create_body(r#"["cat"]"#, true, true)).await;
    let mut attach = server.connect().await;
    attach.write_all(&attach_request(&id, true)).await.unwrap();
    assert_eq!(read_head(&mut attach).await.0, 101);
    let mut wait = server.connect().await;
    wait.write_all(&cli_request(
        "POST",
        &format!("/v1.41/containers/{id}/wait?condition=removed"),
        None,
    ))
    .await
    .unwrap();
    assert_eq!(read_head(&mut wait).await.0, 200);
    assert_eq!(
        roundtrip(
            &server,
            &cli_request("POST", &format!("/v1.41/containers/{id}/start"), None)
        )
        .await
        .status,
        204
    );
    attach.write_all(b"line1\nline2\n").await.unwrap();
    attach.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(T, attach.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let payload: Vec<u8> = frames(&out)
        .into_iter()
        .flat_map(|(s, p)| {
            assert_eq!(s, 1);
            p
        })
        .collect();
    assert_eq!(payload, b"line1\nline2\n");
    let mut raw = Vec::new();
    let body = read_chunk(&mut wait, &mut raw).await.unwrap();
    assert_eq!(body, b"{\"Error\":null,\"StatusCode\":0}\n");
}

#[tokio::test]
async fn wait_reports_exit_code_and_default_condition() {
    let (_fake, server) = started_fake().await;
    let id = create(
        &server,
        Some("tr-err"),
        &create_body(r#"["sh","-c","exit 3"]"#, false, false),
    )
    .await;
    let mut wait = server.connect().await;
    wait.write_all(&cli_request(
        "POST",
        &format!("/v1.41/containers/{id}/wait?condition=next-exit"),
        None,
    ))
    .await
    .unwrap();
    assert_eq!(read_head(&mut wait).await.0, 200);
    roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/tr-err/start", None),
    )
    .await;
    let mut raw = Vec::new();
    assert_eq!(
        read_chunk(&mut wait, &mut raw).await.unwrap(),
        b"{\"Error\":null,\"StatusCode\":3}\n"
    );
    // Not running any more: the default condition answers at once.
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/tr-err/wait", None),
    )
    .await;
    assert_eq!(resp.body_str(), "{\"Error\":null,\"StatusCode\":3}\n");
    let resp = roundtrip(
        &server,
        &cli_request(
            "POST",
            "/v1.41/containers/tr-err/wait?condition=bogus",
            None,
        ),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"invalid condition: \\\"bogus\\\"\"}\n"
    );
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/nosuchcontainer/wait", None),
    )
    .await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"No such container: nosuchcontainer\"}\n"
    );
}

#[tokio::test]
async fn wait_future_is_dropped_when_the_client_goes_away() {
    let (fake, server) = started_fake().await;
    let id = create(
        &server,
        Some("web"),
        &create_body(r#"["httpd"]"#, false, false),
    )
    .await;
    let mut wait = server.connect().await;
    wait.write_all(&cli_request(
        "POST",
        &format!("/v1.41/containers/{id}/wait?condition=next-exit"),
        None,
    ))
    .await
    .unwrap();
    assert_eq!(read_head(&mut wait).await.0, 200);
    assert!(!fake.wait_dropped.load(Ordering::SeqCst));
    drop(wait);
    let deadline = tokio::time::Instant::now() + T;
    while !fake.wait_dropped.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wait future was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn start_and_stop_not_modified_and_kill_conflict() {
    let (_fake, server) = started_fake().await;
    create(
        &server,
        Some("tr-err"),
        &create_body(r#"["sleep","300"]"#, false, false),
    )
    .await;
    create(
        &server,
        Some("tr-err2"),
        &create_body(r#"["true"]"#, false, false),
    )
    .await;
    assert_eq!(
        roundtrip(
            &server,
            &cli_request("POST", "/v1.41/containers/tr-err/start", None)
        )
        .await
        .status,
        204
    );
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/tr-err/start", None),
    )
    .await;
    assert!(
        resp.head.starts_with("HTTP/1.1 304 Not Modified\r\n"),
        "{}",
        resp.head
    );
    assert_eq!(
        names(&resp),
        [
            "Api-Version",
            "Docker-Experimental",
            "Ostype",
            "Server",
            "Date"
        ]
    );
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/tr-err2/stop", None),
    )
    .await;
    assert_eq!(resp.status, 304);
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/tr-err2/kill", None),
    )
    .await;
    assert_eq!(resp.status, 409);
    assert!(resp
        .body_str()
        .starts_with("{\"message\":\"Cannot kill container: tr-err2: Container "));
    let resp = roundtrip(
        &server,
        &cli_request("DELETE", "/v1.41/containers/tr-err", None),
    )
    .await;
    assert_eq!(resp.status, 409);
    let resp = roundtrip(&server, b"DELETE /v1.41/containers/tr-err?v=False&link=False&force=True HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(resp.status, 204);
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/tr-err/stop?t=10", None),
    )
    .await;
    assert_eq!(resp.status, 404);
}

#[tokio::test]
async fn exec_create_start_inspect() {
    let (_fake, server) = started_fake().await;
    create(
        &server,
        Some("web"),
        &create_body(r#"["httpd"]"#, false, false),
    )
    .await;
    roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/web/start", None),
    )
    .await;
    let exec_body = "{\"User\":\"\",\"Privileged\":false,\"Tty\":false,\"AttachStdin\":false,\"AttachStderr\":true,\"AttachStdout\":true,\"Detach\":false,\"DetachKeys\":\"\",\"Env\":null,\"WorkingDir\":\"\",\"Cmd\":[\"fail\",\"aux\"]}\n";
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/web/exec", Some(exec_body)),
    )
    .await;
    assert_eq!(resp.status, 201);
    let exec_id = serde_json::from_slice::<serde_json::Value>(&resp.body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();

    let start_body = "{\"Detach\":false,\"Tty\":false}\n";
    let req = format!(
        "POST /v1.41/exec/{exec_id}/start HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\nContent-Length: {}\r\nConnection: Upgrade\r\nContent-Type: application/json\r\nUpgrade: tcp\r\n\r\n{start_body}",
        start_body.len()
    );
    let mut s = server.connect().await;
    s.write_all(req.as_bytes()).await.unwrap();
    let (status, head, headers) = read_head(&mut s).await;
    assert_eq!(status, 101);
    assert!(head.starts_with("HTTP/1.1 101 UPGRADED\r\n"));
    let hn: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        hn,
        [
            "Content-Type",
            "Connection",
            "Upgrade",
            "Api-Version",
            "Docker-Experimental",
            "Ostype",
            "Server"
        ]
    );
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frames(&out), [(1, b"fail aux\n".to_vec())]);

    let resp = roundtrip(
        &server,
        &cli_request("GET", &format!("/v1.41/exec/{exec_id}/json"), None),
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(v["ExitCode"], 5);
    assert_eq!(v["ProcessConfig"], serde_json::Value::Null);

    // Detached start: 200 with an empty body.
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/web/exec", Some(exec_body)),
    )
    .await;
    let exec_id = serde_json::from_slice::<serde_json::Value>(&resp.body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = roundtrip(
        &server,
        &cli_request(
            "POST",
            &format!("/v1.41/exec/{exec_id}/start"),
            Some("{\"Detach\":true,\"Tty\":false}"),
        ),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());

    let resp = roundtrip(
        &server,
        &cli_request(
            "POST",
            &format!("/v1.41/exec/{exec_id}/resize?h=40&w=120"),
            None,
        ),
    )
    .await;
    assert_eq!(
        resp.status,
        501,
        "exec resize is not implemented by the fake: {}",
        resp.body_str()
    );
}

#[tokio::test]
async fn attach_without_upgrade_streams_a_plain_200() {
    let (fake, server) = started_fake().await;
    let id = create(
        &server,
        None,
        &create_body(r#"["echo","plain"]"#, false, false),
    )
    .await;
    let mut s = server.connect().await;
    s.write_all(&cli_request(
        "POST",
        &format!("/v1.41/containers/{id}/attach?stdout=1&stderr=1&stream=1"),
        None,
    ))
    .await
    .unwrap();
    let (status, _head, headers) = read_head(&mut s).await;
    assert_eq!(status, 200);
    assert!(headers.contains(&(
        "Content-Type".to_string(),
        "application/vnd.docker.raw-stream".to_string()
    )));
    roundtrip(
        &server,
        &cli_request("POST", &format!("/v1.41/containers/{id}/start"), None),
    )
    .await;
    let mut raw = Vec::new();
    let mut body = Vec::new();
    while let Some(chunk) = read_chunk(&mut s, &mut raw).await {
        body.extend(chunk);
    }
    assert_eq!(frames(&body), [(1, b"plain\n".to_vec())]);
    assert!(fake
        .calls()
        .contains(&"attach_io raw_socket=false".to_string()));
}

#[tokio::test]
async fn resize_and_logs() {
    let (fake, server) = started_fake().await;
    let id = create(
        &server,
        Some("tr-logger"),
        &create_body(r#"["echo","line-one"]"#, false, false),
    )
    .await;
    let mut wait = server.connect().await;
    wait.write_all(&cli_request(
        "POST",
        &format!("/v1.41/containers/{id}/wait?condition=next-exit"),
        None,
    ))
    .await
    .unwrap();
    read_head(&mut wait).await;
    roundtrip(
        &server,
        &cli_request("POST", &format!("/v1.41/containers/{id}/start"), None),
    )
    .await;
    let mut raw = Vec::new();
    read_chunk(&mut wait, &mut raw).await.unwrap();

    let resp = roundtrip(
        &server,
        &cli_request(
            "POST",
            &format!("/v1.41/containers/{id}/resize?h=30&w=100"),
            None,
        ),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    assert!(fake
        .calls()
        .contains(&format!("container_resize {id} 30x100")));

    let resp = roundtrip(
        &server,
        &cli_request(
            "GET",
            &format!("/v1.41/containers/{id}/logs?stderr=1&stdout=1&tail=all"),
            None,
        ),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("Content-Type"),
        None,
        "logs carry no Content-Type, like 20.10"
    );
    assert_eq!(resp.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(resp.body, b"\x01\x00\x00\x00\x00\x00\x00\x09line-one\n");

    let resp = roundtrip(
        &server,
        &cli_request("GET", "/v1.41/containers/tr-logger/logs?tail=2", None),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"Bad parameters: you must choose at least one stream\"}\n"
    );
    let resp = roundtrip(
        &server,
        &cli_request(
            "GET",
            "/v1.41/containers/tr-logger/logs?stdout=1&timestamps=1&tail=2&since=1795799615.5",
            None,
        ),
    )
    .await;
    assert_eq!(resp.status, 200);
    let last = fake.calls().last().unwrap().clone();
    assert!(
        last.contains("timestamps: true")
            && last.contains("tail: Some(2)")
            && last.contains("since: Some(2026-11-27T"),
        "{last}"
    );
}

#[tokio::test]
async fn push_progress_with_error_after_streaming_started() {
    let (fake, server) = started_fake().await;
    let req = b"POST /v1.41/images/localhost:5000/me/busybox/push?tag=latest HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\nContent-Length: 0\r\nX-Registry-Auth: e30=\r\n\r\n";
    let resp = roundtrip(&server, req).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    assert_eq!(resp.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(
        resp.body_str(),
        "{\"status\":\"The push refers to repository [localhost:5000/me/busybox]\"}\r\n\
         {\"status\":\"Preparing\",\"progressDetail\":{},\"id\":\"dd8c236043f7\"}\r\n\
         {\"errorDetail\":{\"message\":\"no basic auth credentials\"},\"error\":\"no basic auth credentials\"}\r\n"
    );
    assert!(fake
        .calls()
        .contains(&"image_push localhost:5000/me/busybox Some(\"latest\")".to_string()));

    // eyJ1c2VybmFtZSI6Im1lIiwicGFzc3dvcmQiOiJ0cmFjZXBhc3MxMjMiLCJzZXJ2ZXJhZGRyZXNzIjoibG9jYWxob3N0OjUwMDAifQ== is the trace's header
    let req = b"POST /v1.41/images/localhost:5000/me/busybox/push?tag=latest HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Length: 0\r\nX-Registry-Auth: eyJ1c2VybmFtZSI6Im1lIiwicGFzc3dvcmQiOiJ0cmFjZXBhc3MxMjMiLCJzZXJ2ZXJhZGRyZXNzIjoibG9jYWxob3N0OjUwMDAifQ==\r\n\r\n";
    let resp = roundtrip(&server, req).await;
    assert!(resp.body_str().ends_with("{\"progressDetail\":{},\"aux\":{\"Digest\":\"sha256:5dca\",\"Size\":527,\"Tag\":\"latest\"}}\r\n"), "{}", resp.body_str());
    let auths = fake.auths.lock().unwrap();
    assert_eq!(auths[0], berth_api::models::AuthConfig::default());
    assert_eq!(auths[1].username, "me");
    assert_eq!(auths[1].password, "tracepass123");
    assert_eq!(auths[1].server_address, "localhost:5000");
}

#[tokio::test]
async fn pull_error_before_streaming_is_a_plain_status() {
    let (_fake, server) = started_fake().await;
    let req = b"POST /v1.41/images/create?fromImage=localhost%3A5000%2Fme%2Fextra&tag=nosuchtag HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Length: 0\r\nX-Registry-Auth: e30=\r\n\r\n";
    let resp = roundtrip(&server, req).await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.body_str(), "{\"message\":\"manifest for localhost:5000/me/extra:nosuchtag not found: manifest unknown: manifest unknown\"}\n");
    let req = b"POST /v1.41/images/create?fromImage=localhost%3A5000%2Fme%2Fextra&tag=v1 HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Length: 0\r\n\r\n";
    let resp = roundtrip(&server, req).await;
    assert_eq!(resp.status, 200);
    let lines: Vec<&str> = resp.body_str().split("\r\n").collect();
    assert_eq!(
        lines[0],
        "{\"status\":\"Pulling from localhost:5000/me/extra\",\"id\":\"v1\"}"
    );
    assert_eq!(lines.len(), 4);
}

#[tokio::test]
async fn import_load_save_commit_tag_rmi() {
    let (fake, server) = started_fake().await;
    let tar = vec![7u8; 5000];
    // Chunked upload, as the CLI sends `docker load` and `docker import`.
    let mut req = b"POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: api.moby.localhost\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-tar\r\n\r\n".to_vec();
    for part in tar.chunks(1500) {
        req.extend(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend(part);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    let resp = roundtrip(&server, &req).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.body_str(),
        "{\"stream\":\"Loaded image: 5000 bytes\\n\"}\r\n"
    );
    assert!(fake.calls().contains(&"images_load quiet=true".to_string()));

    let req = "POST /v1.41/images/create?changes=CMD+%5B%22sh%22%5D&fromSrc=-&message=imported+for+trace&repo=tr-imported%3A1 HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc";
    let resp = roundtrip(&server, req.as_bytes()).await;
    assert_eq!(
        resp.body_str(),
        "{\"status\":\"imported 3 bytes as Some(\\\"tr-imported:1\\\") with 1 changes\"}\r\n"
    );

    let resp = roundtrip(
        &server,
        &cli_request(
            "GET",
            "/v1.41/images/get?names=busybox&names=tr-committed%3Alatest",
            None,
        ),
    )
    .await;
    assert_eq!(resp.header("Content-Type"), Some("application/x-tar"));
    assert_eq!(resp.body, b"TAR:busybox,tr-committed:latest");

    let resp = roundtrip(&server, &cli_request("POST", "/v1.41/commit?author=Trace+Author&changes=ENV+COMMITTED%3D1&changes=CMD+%5B%22cat%22%2C%22%2Fcommitted.txt%22%5D&comment=commit+msg&container=tr-commit&repo=docker.io%2Flibrary%2Ftr-committed&tag=latest", None)).await;
    assert_eq!(resp.status, 201);
    assert_eq!(
        resp.body_str(),
        "{\"Id\":\"sha256:31c2930e2f4cb72c79911037907cd652e974b9383aa12f7493bcdcf4d4102594\"}\n"
    );
    let commit = fake.calls().last().unwrap().clone();
    assert!(
        commit.contains(r#"changes: ["ENV COMMITTED=1", "CMD [\"cat\",\"/committed.txt\"]"]"#),
        "{commit}"
    );
    assert!(
        commit.contains(r#"repo: Some("docker.io/library/tr-committed")"#)
            && commit.contains("pause: true")
            && commit.contains(r#"author: "Trace Author""#)
    );

    let resp = roundtrip(
        &server,
        &cli_request(
            "POST",
            "/v1.41/images/busybox/tag?repo=localhost%3A5000%2Fme%2Fbusybox&tag=latest",
            None,
        ),
    )
    .await;
    assert_eq!(resp.status, 201);
    assert!(resp.body.is_empty());
    let resp = roundtrip(
        &server,
        &cli_request("DELETE", "/v1.41/images/localhost:5000/me/busybox", None),
    )
    .await;
    assert_eq!(
        resp.body_str(),
        "[{\"Untagged\":\"localhost:5000/me/busybox:latest\"},{\"Deleted\":\"sha256:abc\"}]\n"
    );
    let resp = roundtrip(
        &server,
        &cli_request("GET", "/v1.41/images/doesnotexist/json", None),
    )
    .await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"no such image: doesnotexist: No such image: doesnotexist:latest\"}\n"
    );
    let resp = roundtrip(
        &server,
        &cli_request(
            "GET",
            "/v1.41/images/json?filters=%7B%22dangling%22%3A%7B%22maybe%22%3Atrue%7D%7D",
            None,
        ),
    )
    .await;
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"Invalid filter 'dangling=maybe'\"}\n"
    );
}

#[tokio::test]
async fn auth_and_events() {
    let (fake, server) = started_fake().await;
    let resp = roundtrip(&server, &cli_request("POST", "/v1.41/auth", Some("{\"username\":\"me\",\"password\":\"tracepass123\",\"serveraddress\":\"localhost:5000\"}\n"))).await;
    assert_eq!(
        resp.body_str(),
        "{\"IdentityToken\":\"\",\"Status\":\"Login Succeeded\"}\n"
    );
    let resp = roundtrip(&server, &cli_request("POST", "/v1.41/auth", Some("{\"username\":\"me\",\"password\":\"wrongpass\",\"serveraddress\":\"localhost:5000\"}\n"))).await;
    assert_eq!(resp.status, 500);

    let resp = roundtrip(&server, &cli_request("GET", "/v1.41/events?filters=%7B%22container%22%3A%7B%22tr-misc%22%3Atrue%7D%7D&since=1795799615&until=1795800224", None)).await;
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let lines: Vec<&str> = resp.body_str().split_inclusive('\n').collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("{\"status\":\"die\",\"id\":\"abc\",\"from\":\"busybox\",\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{"));
    assert!(lines[0]
        .ends_with("\"scope\":\"local\",\"time\":1795800223,\"timeNano\":1795800223108597547}\n"));
    assert!(fake.calls().contains(&r#"events since=Some(1795799615) until=Some(1795800224) filters={"container":{"tr-misc":true}}"#.to_string()));
}

#[tokio::test]
async fn unimplemented_operations_are_501_with_a_clear_message() {
    let server = TestServer::start(Nothing).await;
    let resp = roundtrip(&server, &cli_request("GET", "/v1.41/info", None)).await;
    assert_eq!(resp.status, 501);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"GET /info is not implemented by the berth daemon yet\"}\n"
    );
    let resp = roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/x/pause", None),
    )
    .await;
    assert_eq!(resp.body_str(), "{\"message\":\"POST /containers/{id}/pause is not implemented by the berth daemon yet\"}\n");
    for (method, path, body, what) in [
        (
            "POST",
            "/v1.41/containers/prune",
            None,
            "POST /containers/prune",
        ),
        (
            "POST",
            "/v1.41/containers/x/update",
            Some("{}"),
            "POST /containers/{id}/update",
        ),
    ] {
        let resp = roundtrip(&server, &cli_request(method, path, body)).await;
        assert_eq!(resp.status, 501);
        assert_eq!(
            resp.body_str(),
            format!("{{\"message\":\"{what} is not implemented by the berth daemon yet\"}}\n")
        );
    }
    // The server's own answers work without any backend support: no swarm, as dockerd
    // outside swarm mode answers.
    let resp = roundtrip(&server, &cli_request("GET", "/v1.41/swarm", None)).await;
    assert_eq!(resp.status, 503);
    assert!(
        resp.body_str()
            .contains("This node is not a swarm manager."),
        "{}",
        resp.body_str()
    );
    // The server's own answers work without any backend support.
    assert_eq!(
        roundtrip(&server, &cli_request("HEAD", "/_ping", None))
            .await
            .status,
        200
    );
    let resp = roundtrip(
        &server,
        &cli_request("GET", "/v1.41/plugins/doesnotexist/json", None),
    )
    .await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.body_str(),
        "{\"message\":\"plugin \\\"doesnotexist\\\" not found\"}\n"
    );
}

#[tokio::test]
async fn socket_mode_and_graceful_shutdown() {
    let (_fake, server) = started_fake().await;
    let mode = std::fs::metadata(&server.sock)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    // An idle keep-alive connection does not hold the shutdown up.
    let mut idle = server.connect().await;
    idle.write_all(&cli_request("HEAD", "/_ping", None))
        .await
        .unwrap();
    read_response(&mut idle, true).await;
    let sock = server.sock.clone();
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("shutdown hung");
    assert!(!sock.exists(), "socket file removed on shutdown");
    let mut rest = Vec::new();
    let n = tokio::time::timeout(T, idle.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "the idle connection was closed");
}

#[tokio::test]
async fn second_daemon_on_a_live_socket_is_refused() {
    let (_fake, server) = started_fake().await;
    let err = berth_api::server::Listener::bind_unix(&server.sock).unwrap_err();
    assert!(
        err.to_string()
            .contains("another daemon is already listening"),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_closes_streams_and_sessions_after_the_grace_period() {
    let fake = Fake::new();
    let server =
        TestServer::start_with_grace(FakeBackend(fake.clone()), Duration::from_millis(200)).await;
    let id = create(
        &server,
        Some("web"),
        &create_body(r#"["httpd"]"#, false, false),
    )
    .await;
    let mut wait = server.connect().await;
    wait.write_all(&cli_request(
        "POST",
        &format!("/v1.41/containers/{id}/wait?condition=next-exit"),
        None,
    ))
    .await
    .unwrap();
    assert_eq!(read_head(&mut wait).await.0, 200);
    let mut attach = server.connect().await;
    attach.write_all(&attach_request(&id, false)).await.unwrap();
    assert_eq!(read_head(&mut attach).await.0, 101);
    // As the CLI does without stdin (the fake's stdin pump then lets go of its read half).
    attach.shutdown().await.unwrap();
    roundtrip(
        &server,
        &cli_request("POST", "/v1.41/containers/web/start", None),
    )
    .await;

    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("shutdown hung");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited for the grace period"
    );
    assert!(
        fake.wait_dropped.load(Ordering::SeqCst),
        "the pending wait future was dropped"
    );
    let mut rest = Vec::new();
    tokio::time::timeout(T, attach.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty(), "the hijacked session was closed");
}

/// Stdin bytes sent in the same packet as the attach request are read by hyper along with the
/// head; they must reach the session first (the `Hijacked` prefix).
#[tokio::test]
async fn bytes_sent_with_the_attach_request_are_not_lost() {
    let (_fake, server) = started_fake().await;
    let id = create(&server, None, &create_body(r#"["cat"]"#, false, true)).await;
    let mut attach = server.connect().await;
    let mut req = attach_request(&id, true);
    req.extend_from_slice(b"early bytes\n");
    attach.write_all(&req).await.unwrap();
    assert_eq!(read_head(&mut attach).await.0, 101);
    roundtrip(
        &server,
        &cli_request("POST", &format!("/v1.41/containers/{id}/start"), None),
    )
    .await;
    attach.write_all(b"late bytes\n").await.unwrap();
    attach.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(T, attach.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let payload: Vec<u8> = frames(&out).into_iter().flat_map(|(_, p)| p).collect();
    assert_eq!(payload, b"early bytes\nlate bytes\n");
}
