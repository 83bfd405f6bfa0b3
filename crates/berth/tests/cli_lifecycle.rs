//! The berth CLI against a real `berth daemon`: the container life cycle with Docker's output
//! formats and exit codes (compare docker-api-traces scenarios 2, 3, 4, 5, 10, 11).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{berth_bin, busybox_tar, wait_for, Daemon};

/// Runs the berth CLI with `input` on stdin.
fn berth_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(berth_bin())
        .arg("-H")
        .arg(d.host())
        .args(args)
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A daemon with the busybox image loaded by `berth load`.
fn daemon() -> Daemon {
    let d = Daemon::start();
    let out = d.berth(["load", "-i", busybox_tar().to_str().unwrap()]);
    assert_eq!(out.ok(), "Loaded image: busybox:latest");
    d
}

#[test]
fn run_attached_streams_and_exit_codes() {
    let d = daemon();
    assert_eq!(
        d.berth(["run", "--rm", "busybox", "echo", "hello"]).ok(),
        "hello"
    );
    let o = d.berth([
        "run",
        "--name",
        "three",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (o.status, o.stdout.as_str(), o.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    // -i: stdin is forwarded, then half-closed.
    let (code, out, err) = berth_stdin(
        &d,
        &["run", "--rm", "-i", "busybox", "cat"],
        b"line1\nline2\n",
    );
    assert_eq!((code, out.as_str()), (0, "line1\nline2\n"), "{err}");
    // -t without a terminal: raw TTY output, no frames.
    let o = d.berth(["run", "--rm", "-t", "busybox", "echo", "hi"]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "hi\r\n");
    // -a stdout only: stderr is not attached.
    let o = d.berth([
        "run",
        "--rm",
        "-a",
        "stdout",
        "busybox",
        "sh",
        "-c",
        "echo o; echo e >&2",
    ]);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("o\n", ""));
    // Only the container without --rm is left.
    let names = d
        .berth(["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
        .ok();
    assert_eq!(names.lines().count(), 1, "{names}");
    assert!(names.starts_with("three Exited (3) "), "{names}");
    // Start errors: 127 for a missing command, 126 for one that cannot be executed.
    let o = d.berth(["run", "busybox", "/nonexistent-binary"]);
    assert_eq!(o.status, 127, "{}", o.stderr);
    assert!(
        o.stderr.starts_with("berth: Error response from daemon: "),
        "{}",
        o.stderr
    );
    assert!(o
        .stderr
        .ends_with("\n\nRun 'berth run --help' for more information\n"));
    let o = d.berth(["run", "busybox", "/etc/passwd"]);
    assert_eq!(o.status, 126, "{}", o.stderr);
    // Daemon-side validation: 125, with Docker's prefix.
    let o = d.berth(["run", "-m", "1k", "busybox", "true"]);
    assert_eq!(o.status, 125);
    assert!(
        o.stderr.contains("Minimum memory limit allowed is 6MB"),
        "{}",
        o.stderr
    );
    // `create` reports daemon errors plainly (exit 1), like the Docker CLI.
    let o = d.berth(["create", "-m", "1k", "busybox", "true"]);
    assert_eq!(o.status, 1);
    assert_eq!(
        o.stderr,
        "Error response from daemon: Minimum memory limit allowed is 6MB\n"
    );
}

#[test]
fn detached_container_management() {
    let d = daemon();
    let id = d
        .berth([
            "run",
            "-d",
            "--name",
            "web",
            "-l",
            "tier=front",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "8080",
        ])
        .ok();
    assert_eq!(id.len(), 64, "{id}");
    let short = &id[..12];

    let ps = d.berth(["ps"]).ok();
    let mut lines = ps.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("CONTAINER ID   IMAGE     COMMAND              CREATED"),
        "{ps}"
    );
    assert!(header.ends_with("   PORTS     NAMES"), "{ps}");
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&format!("{short}   busybox   \"httpd -f -p 8080\"   ")),
        "{ps}"
    );
    assert!(row.ends_with(" web"), "{ps}");
    assert_eq!(d.berth(["ps", "-q"]).ok(), short);
    assert_eq!(d.berth(["ps", "-q", "--no-trunc"]).ok(), id);
    assert_eq!(
        d.berth(["container", "ls", "--filter", "label=tier=front", "-q"])
            .ok(),
        short
    );
    assert_eq!(d.berth(["ps", "--filter", "name=nomatch", "-q"]).ok(), "");
    let json: serde_json::Value =
        serde_json::from_str(&d.berth(["ps", "--format", "json"]).ok()).unwrap();
    assert_eq!(json["Names"], "web");
    assert_eq!(json["State"], "running");
    assert_eq!(json["Labels"], "tier=front");
    assert_eq!(
        d.berth(["ps", "--format", "table {{.Names}}\\t{{.Label \"tier\"}}"])
            .ok(),
        "NAMES     tier\nweb       front"
    );

    assert_eq!(
        d.berth([
            "inspect",
            "-f",
            "{{.State.Running}} {{.Name}} {{json .Config.Cmd}} {{index .Config.Labels \"tier\"}}",
            "web"
        ])
        .ok(),
        "true /web [\"httpd\",\"-f\",\"-p\",\"8080\"] front"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&d.berth(["container", "inspect", "web"]).ok()).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert!(d
        .berth(["inspect", "web"])
        .stdout
        .starts_with("[\n    {\n        \"Id\": "));

    // exec: output, exit code from /exec/{id}/json, stdin.
    let ps_aux = d.berth(["exec", "web", "ps", "aux"]).ok();
    assert!(ps_aux.contains("httpd -f -p 8080"), "{ps_aux}");
    let o = d.berth(["exec", "web", "sh", "-c", "echo to-stderr >&2; exit 5"]);
    assert_eq!((o.status, o.stderr.as_str()), (5, "to-stderr\n"));
    let (code, out, _) = berth_stdin(&d, &["exec", "-i", "web", "cat"], b"piped-in\n");
    assert_eq!((code, out.as_str()), (0, "piped-in\n"));
    assert_eq!(
        d.berth([
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "echo $X $PWD"
        ])
        .ok(),
        "1 /tmp"
    );
    assert_eq!(d.berth(["exec", "-d", "web", "sleep", "1"]).ok(), "");

    let top = d.berth(["top", "web"]).ok();
    assert!(
        top.starts_with("UID                 PID                 PPID"),
        "{top}"
    );
    assert!(top.contains("httpd -f -p 8080"), "{top}");

    assert_eq!(d.berth(["pause", "web"]).ok(), "web");
    assert!(d
        .berth(["ps", "--format", "{{.Status}}"])
        .ok()
        .ends_with("(Paused)"));
    assert_eq!(d.berth(["unpause", "web"]).ok(), "web");
    assert_eq!(d.berth(["rename", "web", "web2"]).ok(), "");
    assert_eq!(d.berth(["restart", "-t", "1", "web2"]).ok(), "web2");
    assert_eq!(d.berth(["kill", "-s", "KILL", "web2"]).ok(), "web2");
    assert_eq!(d.berth(["wait", "web2"]).ok(), "137");
    assert_eq!(d.berth(["port", "web2"]).ok(), "");
    assert_eq!(d.berth(["rm", "web2"]).ok(), "web2");
}

#[test]
fn error_cases_like_docker() {
    let d = daemon();
    let id = d
        .berth(["run", "-d", "--name", "web", "busybox", "sleep", "300"])
        .ok();
    // rm of a running container: the daemon's 409 message, exit 1.
    let o = d.berth(["rm", "web"]);
    assert_eq!(o.status, 1);
    assert_eq!(
        o.stderr,
        format!("Error response from daemon: You cannot remove a running container {id}. Stop the container before attempting removal or force remove\n")
    );
    // Name in use: 125 from run.
    let o = d.berth(["run", "--name", "web", "busybox", "true"]);
    assert_eq!(o.status, 125);
    assert!(o.stderr.starts_with("berth: Error response from daemon: Conflict. The container name \"/web\" is already in use"), "{}", o.stderr);
    // Missing objects.
    let o = d.berth(["inspect", "doesnotexist"]);
    assert_eq!(
        (o.status, o.stdout.as_str(), o.stderr.as_str()),
        (1, "[]\n", "Error: No such object: doesnotexist\n")
    );
    let o = d.berth(["inspect", "--type", "container", "doesnotexist"]);
    assert_eq!(o.status, 1);
    assert_eq!(
        o.stderr,
        "Error response from daemon: No such container: doesnotexist\n"
    );
    for verb in ["stop", "rm", "logs", "kill", "wait"] {
        let o = d.berth([verb, "doesnotexist"]);
        assert_eq!(o.status, 1, "{verb}");
        assert!(
            o.stderr.contains("No such container: doesnotexist"),
            "{verb}: {}",
            o.stderr
        );
    }
    // rm -f of a missing container reports the error but succeeds.
    let o = d.berth(["rm", "-f", "doesnotexist"]);
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (
            0,
            "Error response from daemon: No such container: doesnotexist\n"
        )
    );
    // Several containers: successes printed, errors joined, exit 1.
    let o = d.berth(["stop", "-t", "1", "web", "doesnotexist"]);
    assert_eq!((o.status, o.stdout.as_str()), (1, "web\n"));
    // 304: stopping a stopped container and starting a running one succeed.
    assert_eq!(d.berth(["stop", "web"]).ok(), "web");
    let o = d.berth(["exec", "web", "true"]);
    assert_eq!(o.status, 1);
    assert!(o.stderr.contains("is not running"), "{}", o.stderr);
    let o = d.berth(["kill", "web"]);
    assert_eq!(o.status, 1);
    let o = d.berth(["rename", "web", ""]);
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (1, "Error: Neither old nor new names may be empty\n")
    );
    assert_eq!(d.berth(["rm", "-f", "web"]).ok(), "web");
}

#[test]
fn create_start_attach_logs_events() {
    let d = daemon();
    let since = chrono::Utc::now().timestamp().to_string();
    let id = d
        .berth([
            "create",
            "--name",
            "tr-stopped",
            "busybox",
            "sh",
            "-c",
            "echo started; exit 4",
        ])
        .ok();
    assert_eq!(id.len(), 64);
    let o = d.berth(["start", "-a", "tr-stopped"]);
    assert_eq!((o.status, o.stdout.as_str()), (4, "started\n"));
    assert_eq!(d.berth(["start", "tr-stopped"]).ok(), "tr-stopped");
    wait_for(Duration::from_secs(10), || {
        let s = d
            .berth(["inspect", "-f", "{{.State.Status}}", "tr-stopped"])
            .ok();
        (s == "exited").then_some(())
    })
    .expect("the container exits");
    let o = d.berth(["start", "tr-stopped", "doesnotexist"]);
    assert_eq!(o.status, 1);
    assert_eq!(o.stdout, "tr-stopped\n");
    assert!(
        o.stderr
            .ends_with("Error: failed to start containers: doesnotexist\n"),
        "{}",
        o.stderr
    );

    let _ = d
        .berth([
            "run",
            "-d",
            "--name",
            "tr-logger",
            "busybox",
            "sh",
            "-c",
            "echo line-one; echo line-two >&2; echo line-three",
        ])
        .ok();
    assert_eq!(
        wait_for(Duration::from_secs(10), || {
            let s = d.berth(["wait", "tr-logger"]).ok();
            Some(s)
        }),
        Some("0".to_string())
    );
    let o = d.berth(["logs", "tr-logger"]);
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("line-one\nline-three\n", "line-two\n")
    );
    let o = d.berth(["logs", "--timestamps", "--tail", "1", "tr-logger"]);
    let all = format!("{}{}", o.stdout, o.stderr);
    assert_eq!(all.lines().count(), 1, "{all}");
    assert!(all.contains("Z line-"), "{all}");
    // --details: the entry's attributes (none without --log-opt labels/env/tag) and a space
    // before each line, as moby writes them.
    let o = d.berth(["logs", "--details", "tr-logger"]);
    assert_eq!(
        (o.status, o.stdout.as_str(), o.stderr.as_str()),
        (0, " line-one\n line-three\n", " line-two\n")
    );

    // Attach to a running container, then stop it from outside: attach ends with its code.
    let _ = d
        .berth([
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' TERM; while true; do echo tick; sleep 0.2; done",
        ])
        .ok();
    let attach = Command::new(berth_bin())
        .args(["-H", &d.host(), "attach", "--no-stdin", "ticker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(d.berth(["stop", "-t", "5", "ticker"]).ok(), "ticker");
    let out = attach.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("tick\n"));

    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let ev = d
        .berth([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=tr-stopped",
            "--format",
            "{{.Action}}",
        ])
        .ok();
    let actions: Vec<&str> = ev.lines().collect();
    assert!(actions.starts_with(&["create"]), "{ev}");
    assert!(
        actions.contains(&"start") && actions.contains(&"die"),
        "{ev}"
    );
    let ev = d
        .berth([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=tr-stopped",
        ])
        .ok();
    assert!(
        ev.lines()
            .any(|l| l.contains(" container die ") && l.contains("exitCode=4")),
        "{ev}"
    );
}

#[test]
fn version_and_info() {
    let d = daemon();
    let v = d.berth(["version"]).ok();
    assert!(v.starts_with("Client:\n Version:           "), "{v}");
    assert!(v.contains("\nServer:"), "{v}");
    assert!(v.contains(" Engine:\n  Version:          "), "{v}");
    assert_eq!(
        d.berth(["version", "--format", "{{.Client.APIVersion}}"])
            .ok(),
        "1.43"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.berth(["version", "--format", "json"]).ok()).unwrap();
    assert_eq!(json["Client"]["ApiVersion"], "1.43");
    assert!(json["Server"]["Version"].is_string());
    let info = d.berth(["info"]).ok();
    assert!(info.starts_with("Client:\n Version:    "), "{info}");
    assert!(
        info.contains("\nServer:\n Containers: 0\n  Running: 0\n"),
        "{info}"
    );
    assert!(info.contains(" Images: 1\n"), "{info}");
    assert_eq!(d.berth(["info", "--format", "{{.Images}}"]).ok(), "1");
    assert_eq!(
        d.berth(["system", "info", "--format", "{{.Containers}}"])
            .ok(),
        "0"
    );
}
