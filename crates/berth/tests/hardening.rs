//! Defects found by trying berth as a new user would (issue 13): long exec and data roots,
//! images without PATH, resource validation, API behaviours real clients rely on.

mod common;

use common::Daemon;

/// Any exec root and data root a user passes must work: the supervisor's socket and the
/// runtime's console socket live under the exec root, and socket addresses hold only 107
/// bytes.
#[test]
fn long_exec_and_data_roots_work() {
    let mut d = Daemon::start_with_long_roots("{}", 200);
    assert_eq!(d.exec_root.as_os_str().len(), 200);
    assert_eq!(d.data_root.as_os_str().len(), 200);
    d.load_busybox();
    assert_eq!(
        d.docker(["run", "--rm", "busybox", "echo", "hi"]).ok(),
        "hi"
    );
    // A tty container: the runtime hands the pty over the console socket.
    let o = d
        .docker(["run", "--rm", "-t", "busybox", "echo", "tty"])
        .ok();
    assert_eq!(o.trim(), "tty");
    d.docker(["run", "-d", "--name", "lr", "busybox", "sleep", "600"])
        .ok();
    assert_eq!(d.docker(["exec", "lr", "echo", "in"]).ok(), "in");
    // The supervisor is reached again after a daemon restart.
    d.restart();
    assert_eq!(d.docker(["exec", "lr", "echo", "again"]).ok(), "again");
    d.docker(["stop", "-t", "1", "lr"]).ok();
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Status}}", "lr"]).ok(),
        "exited"
    );
    d.docker(["rm", "lr"]).ok();
}

/// An image without PATH (any image made by `import`): `run` and `exec` find binaries through
/// Docker's default PATH, which the process environment gets (as dockerd does) while the
/// container's `Config.Env` stays as the user and image left it.
#[test]
fn images_without_path_get_dockers_default_path() {
    let d = Daemon::start();
    let tar = common::busybox_rootfs_tar();
    d.docker(["import", tar.to_str().unwrap(), "noenv:1"]).ok();
    assert_eq!(
        d.docker(["image", "inspect", "-f", "{{json .Config.Env}}", "noenv:1"])
            .ok(),
        "null"
    );
    const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(
        d.docker(["run", "--rm", "noenv:1", "sh", "-c", "echo $PATH"])
            .ok(),
        PATH
    );
    d.docker(["run", "-d", "--name", "np", "noenv:1", "sleep", "600"])
        .ok();
    assert_eq!(
        d.docker(["inspect", "-f", "{{json .Config.Env}}", "np"])
            .ok(),
        "null"
    );
    let id = d.docker(["inspect", "-f", "{{.Id}}", "np"]).ok();
    let out = d.docker(["exec", "np", "sh", "-c", "echo $PATH $HOSTNAME $HOME"]);
    assert_eq!(out.ok(), format!("{PATH} {} /root", &id[..12]));
    let env = d.docker(["exec", "-t", "np", "env"]).ok();
    assert!(env.contains("TERM=xterm"), "{env}");
    assert!(env.contains(&format!("PATH={PATH}")), "{env}");
    // An exec's own PATH wins.
    assert_eq!(
        d.docker([
            "exec",
            "-e",
            "PATH=/bin",
            "-e",
            "A=1",
            "np",
            "/bin/sh",
            "-c",
            "echo $PATH$A"
        ])
        .ok(),
        "/bin1"
    );
    // A container's own env (with PATH) is kept for exec.
    d.docker([
        "run",
        "-d",
        "--name",
        "wp",
        "-e",
        "PATH=/sbin:/bin",
        "-e",
        "X=y",
        "noenv:1",
        "sleep",
        "600",
    ])
    .ok();
    assert_eq!(
        d.docker(["exec", "wp", "sh", "-c", "echo $PATH $X"]).ok(),
        "/sbin:/bin y"
    );
    d.docker(["rm", "-f", "np", "wp"]).ok();
}

/// Splits a stdcopy stream into (stream, payload) frames; None when it is not one.
fn frames(mut b: &[u8]) -> Option<Vec<(u8, String)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 8 || b[0] > 2 || b[1..4] != [0, 0, 0] {
            return None;
        }
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let data = b.get(8..8 + n)?;
        out.push((b[0], String::from_utf8_lossy(data).into_owned()));
        b = &b[8 + n..];
    }
    Some(out)
}

fn exec_create(d: &Daemon, container: &str, body: &str) -> String {
    let (status, resp) = d.raw(
        "POST",
        &format!("/v1.43/containers/{container}/exec"),
        Some("application/json"),
        body.as_bytes(),
    );
    assert_eq!(status, 201, "{resp}");
    let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
    v["Id"].as_str().unwrap().to_string()
}

/// Request bodies match struct fields in any case (Go's decoder, which real SDKs rely on), and
/// map keys keep theirs.
#[test]
fn request_bodies_match_field_names_in_any_case() {
    let d = Daemon::start();
    d.load_busybox();
    let body = br#"{"image":"busybox","cmd":["sleep","600"],"labels":{"MyLabel":"x"},
        "hostConfig":{"memory":10485760,"restartPolicy":{"name":"on-failure","maximumRetryCount":2}}}"#;
    let (status, resp) = d.raw(
        "POST",
        "/v1.43/containers/create?name=folded",
        Some("application/json"),
        body,
    );
    assert_eq!(status, 201, "{resp}");
    let fmt = "{{.Config.Image}} {{json .Config.Cmd}} {{json .Config.Labels}} {{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}";
    assert_eq!(
        d.docker(["inspect", "-f", fmt, "folded"]).ok(),
        r#"busybox ["sleep","600"] {"MyLabel":"x"} 10485760 on-failure:2"#
    );
    d.docker(["start", "folded"]).ok();
    let id = exec_create(
        &d,
        "folded",
        r#"{"attachStdout":true,"cmd":["true"],"detachKeys":"ctrl-x","TTY":true}"#,
    );
    let (status, resp) = d.raw("GET", &format!("/v1.43/exec/{id}/json"), None, b"");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
    assert_eq!(v["DetachKeys"], "ctrl-x", "{resp}");
    assert_eq!(v["ProcessConfig"]["tty"], true, "{resp}");
    d.docker(["rm", "-f", "folded"]).ok();
}

/// Whether `POST /exec/{id}/start` output is multiplexed follows the start request's `Tty`,
/// not the exec's (moby's rule; docker-py starts every exec with `Tty: false` unless told).
#[test]
fn exec_stream_framing_follows_the_start_request() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker(["run", "-d", "--name", "fr", "busybox", "sleep", "600"])
        .ok();
    // A tty exec started without Tty: the terminal's output as stdout frames.
    let id = exec_create(
        &d,
        "fr",
        r#"{"AttachStdout":true,"AttachStderr":true,"Tty":true,"Cmd":["echo","hi"]}"#,
    );
    let (head, body) = d.upgrade(&format!("/v1.43/exec/{id}/start"), br#"{"Tty":false}"#);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    assert_eq!(
        frames(&body),
        Some(vec![(1, "hi\r\n".to_string())]),
        "{:?}",
        String::from_utf8_lossy(&body)
    );
    // A pipe exec: frames with both streams.
    let cmd = r#"["sh","-c","echo out; sleep 0.2; echo err >&2"]"#;
    let id = exec_create(
        &d,
        "fr",
        &format!(r#"{{"AttachStdout":true,"AttachStderr":true,"Tty":false,"Cmd":{cmd}}}"#),
    );
    let (_, body) = d.upgrade(&format!("/v1.43/exec/{id}/start"), br#"{"Tty":false}"#);
    assert_eq!(
        frames(&body),
        Some(vec![(1, "out\n".to_string()), (2, "err\n".to_string())])
    );
    // A pipe exec started with Tty: raw stdout, no stderr (dockerd gives it no writer).
    let id = exec_create(
        &d,
        "fr",
        &format!(r#"{{"AttachStdout":true,"AttachStderr":true,"Tty":false,"Cmd":{cmd}}}"#),
    );
    let (head, body) = d.upgrade(&format!("/v1.43/exec/{id}/start"), br#"{"Tty":true}"#);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/vnd.docker.raw-stream"),
        "{head}"
    );
    assert_eq!(String::from_utf8_lossy(&body), "out\n");
    // A tty exec started with Tty: the raw terminal stream.
    let id = exec_create(
        &d,
        "fr",
        r#"{"AttachStdout":true,"Tty":true,"Cmd":["echo","raw"]}"#,
    );
    let (_, body) = d.upgrade(&format!("/v1.43/exec/{id}/start"), br#"{"Tty":true}"#);
    assert_eq!(String::from_utf8_lossy(&body), "raw\r\n");
    d.docker(["rm", "-f", "fr"]).ok();
}
