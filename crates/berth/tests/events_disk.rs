//! Issue 12 through the real Docker CLI and the berth CLI: `events` (time windows, formats,
//! the attributes of every kind of event, a reader that stops reading), `system prune` with
//! its filters, `logs --details` and `system check`.

mod common;

use std::io::Write;
use std::time::Duration;

use common::Daemon;
use serde_json::Value;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Every event of the window as JSON, through the Docker CLI's `--format '{{json .}}'`.
fn events_json(d: &Daemon, since: i64, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "events".to_string(),
        "--since".into(),
        since.to_string(),
        "--until".into(),
        (now_secs() + 1).to_string(),
        "--format".into(),
        "{{json .}}".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    d.docker(&args)
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn attr<'a>(e: &'a Value, k: &str) -> &'a str {
    e["Actor"]["Attributes"][k].as_str().unwrap_or("")
}

fn find<'a>(evs: &'a [Value], kind: &str, action: &str) -> &'a Value {
    evs.iter()
        .find(|e| e["Type"] == kind && e["Action"] == action)
        .unwrap_or_else(|| panic!("no {kind} {action} event in {evs:#?}"))
}

#[test]
fn events_carry_dockers_attributes_for_every_kind() {
    let d = Daemon::start();
    d.load_busybox();
    // The window starts after the events of that first load.
    std::thread::sleep(Duration::from_millis(1100));
    let t0 = now_secs();
    let o = d.docker([
        "run",
        "--name",
        "ev1",
        "--label",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(o.status, 3, "{o:?}");
    d.docker(["run", "-d", "--name", "ev2", "busybox", "sleep", "60"])
        .ok();
    d.docker(["exec", "ev2", "sh", "-c", "exit 4"]);
    d.docker(["rename", "ev2", "ev3"]).ok();
    d.docker(["kill", "-s", "KILL", "ev3"]).ok();
    d.docker(["tag", "busybox", "me/app:1"]).ok();
    d.docker(["rmi", "me/app:1"]).ok();
    let tar = d.dir.join("bb.tar");
    d.docker(["save", "-o", tar.to_str().unwrap(), "busybox"])
        .ok();
    d.docker(["load", "-i", tar.to_str().unwrap()]).ok();
    d.docker(["volume", "create", "--label", "v=1", "evvol"])
        .ok();
    d.docker(["volume", "rm", "evvol"]).ok();
    d.docker(["network", "create", "evnet"]).ok();
    d.docker(["network", "rm", "evnet"]).ok();
    d.docker(["rm", "ev1", "ev3"]).ok();

    let evs = events_json(&d, t0, &[]);
    let busybox_id = d
        .docker(["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .ok();

    let die = evs
        .iter()
        .find(|e| e["Action"] == "die" && attr(e, "name") == "ev1")
        .expect("die of ev1");
    assert_eq!(attr(die, "exitCode"), "3");
    assert_eq!(attr(die, "tier"), "front");
    assert_eq!(attr(die, "image"), "busybox");
    assert!(attr(die, "execDuration").parse::<u64>().is_ok(), "{die}");
    // The legacy fields are filled for containers.
    assert_eq!(die["status"], "die");
    assert_eq!(die["from"], "busybox");
    assert_eq!(die["scope"], "local");
    assert!(die["timeNano"].as_i64().unwrap() / 1_000_000_000 == die["time"].as_i64().unwrap());

    let exec_die = find(&evs, "container", "exec_die");
    assert_eq!(attr(exec_die, "exitCode"), "4");
    assert!(!attr(exec_die, "execID").is_empty());
    assert!(evs
        .iter()
        .any(|e| e["Action"] == "exec_create: sh -c exit 4"));
    assert!(evs
        .iter()
        .any(|e| e["Action"] == "exec_start: sh -c exit 4"));
    let rename = find(&evs, "container", "rename");
    assert_eq!(
        (attr(rename, "oldName"), attr(rename, "name")),
        ("/ev2", "ev3")
    );
    let kill = find(&evs, "container", "kill");
    assert_eq!(attr(kill, "signal"), "9");
    find(&evs, "container", "attach");
    find(&evs, "container", "destroy");

    let tag = find(&evs, "image", "tag");
    assert_eq!(tag["Actor"]["ID"], busybox_id.as_str());
    assert_eq!(attr(tag, "name"), "me/app:1");
    let untag = find(&evs, "image", "untag");
    assert_eq!(untag["Actor"]["ID"], busybox_id.as_str());
    for action in ["save", "load"] {
        let e = find(&evs, "image", action);
        assert_eq!(e["Actor"]["ID"], busybox_id.as_str(), "{e}");
        assert_eq!(attr(e, "name"), busybox_id, "{e}");
    }
    let vc = find(&evs, "volume", "create");
    assert_eq!(vc["Actor"]["ID"], "evvol");
    assert_eq!(attr(vc, "driver"), "local");
    find(&evs, "volume", "destroy");
    let nc = find(&evs, "network", "create");
    assert_eq!(attr(nc, "name"), "evnet");
    assert_eq!(attr(nc, "type"), "bridge");
    find(&evs, "network", "destroy");

    // Filters combine: type and event, a container by name, an image by name.
    let only = events_json(&d, t0, &["--filter", "type=image", "--filter", "event=tag"]);
    assert_eq!(only.len(), 1, "{only:#?}");
    let by_name = events_json(&d, t0, &["--filter", "container=ev1"]);
    assert!(by_name.iter().all(|e| attr(e, "name") == "ev1"));
    assert!(by_name.iter().any(|e| e["Action"] == "destroy"));
    let by_label = events_json(&d, t0, &["--filter", "label=tier=front"]);
    assert!(!by_label.is_empty() && by_label.iter().all(|e| attr(e, "name") == "ev1"));

    // The berth CLI prints the same events (its default line format, then a template).
    let line = d
        .berth([
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &(now_secs() + 1).to_string(),
            "--filter",
            "event=rename",
        ])
        .ok();
    assert!(
        line.contains("container rename ") && line.contains("oldName=/ev2"),
        "{line}"
    );
    let json = d
        .berth([
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &(now_secs() + 1).to_string(),
            "--filter",
            "type=volume",
            "--format",
            "json",
        ])
        .ok();
    let actions: Vec<String> = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["Action"].to_string())
        .collect();
    assert_eq!(actions, ["\"create\"", "\"destroy\""]);
}

#[test]
fn events_since_and_until_take_durations_dates_and_refuse_garbage() {
    let d = Daemon::start();
    d.docker(["volume", "create", "early"]).ok();
    // Relative `--since`, absolute RFC 3339 `--until` (in the future: the stream ends then).
    let until = chrono::Utc::now() + chrono::Duration::seconds(2);
    let until_s = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for cli in ["docker", "berth"] {
        let args = [
            "events",
            "--since",
            "10m",
            "--until",
            &until_s,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.ID}}",
        ];
        let o = if cli == "docker" {
            d.docker(args)
        } else {
            d.berth(args)
        };
        assert_eq!(o.ok(), "volume create early", "{cli}");
    }
    // A window that ended before the event: nothing, and the command returns at once.
    let o = d.docker(["events", "--since", "1h", "--until", "30m"]);
    assert_eq!(o.ok(), "");
    // An `until` in the past with nothing before it.
    for (arg, msg) in [
        ("foo", "failed to parse value as time or duration: \"foo\""),
        ("10x", "failed to parse value as time or duration: \"10x\""),
    ] {
        for cli in ["docker", "berth"] {
            let args = ["events", "--since", arg];
            let o = if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            };
            assert_ne!(o.status, 0, "{cli} {arg}");
            assert!(o.stderr.contains(msg), "{cli} {arg}: {}", o.stderr);
        }
    }
    // Straight to the API: a clear 400.
    let (status, body) = d.raw("GET", "/events?since=yesterday", None, b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("since"), "{body}");
}

#[test]
fn a_client_that_stops_reading_events_never_blocks_the_daemon() {
    use std::os::unix::net::UnixStream;
    let d = Daemon::start();
    // A subscriber that never reads: its socket buffer fills up.
    let mut stuck = UnixStream::connect(&d.sock).unwrap();
    stuck
        .write_all(b"GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Events far larger than any socket buffer: 64 volumes with a 64 KiB label each.
    let big = "x".repeat(64 * 1024);
    for i in 0..64 {
        let body = format!(r#"{{"Name":"v{i}","Labels":{{"big":"{big}"}}}}"#);
        let (status, resp) = d.raw(
            "POST",
            "/volumes/create",
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(status, 201, "{resp}");
    }
    // The daemon still answers, and other subscribers still get every event.
    let t0 = now_secs() - 1;
    d.docker(["volume", "create", "after"]).ok();
    let seen = d
        .docker([
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &(now_secs() + 1).to_string(),
            "--filter",
            "volume=after",
            "--format",
            "{{.Action}}",
        ])
        .ok();
    assert_eq!(seen, "create");
    assert_eq!(d.docker(["volume", "ls", "-q"]).ok().lines().count(), 65);
    drop(stuck);
}

fn names(d: &Daemon, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = d.docker(args).ok().lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn system_prune_removes_what_is_unused_and_reports_it() {
    let d = Daemon::start();
    d.load_busybox();
    let busybox_id = d
        .docker(["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .ok();
    d.docker(["create", "--name", "stopped-a", "--label", "k=a", "busybox"])
        .ok();
    d.docker(["create", "--name", "stopped-b", "--label", "k=b", "busybox"])
        .ok();
    d.docker([
        "run", "-d", "--name", "running", "-v", "/data", "busybox", "sleep", "60",
    ])
    .ok();
    d.docker(["network", "create", "unused-net"]).ok();
    d.docker(["volume", "create", "named"]).ok();
    // An anonymous volume of a removed container, and an image without tags (dangling).
    d.docker(["create", "--name", "anon", "-v", "/anon", "busybox"])
        .ok();
    let anon = d
        .docker(["inspect", "-f", "{{(index .Mounts 0).Name}}", "anon"])
        .ok();
    d.docker(["rm", "anon"]).ok();
    d.docker(["tag", "busybox", "other:1"]).ok();
    let rootfs = d.busybox_rootfs_dir("dangling-rootfs");
    std::fs::write(rootfs.join("marker"), b"dangling").unwrap();
    d.import_dir(&rootfs, "dangle:1", &[]);
    let dangling_id = d
        .docker(["image", "inspect", "-f", "{{.Id}}", "dangle:1"])
        .ok();
    d.docker(["tag", "busybox", "dangle:1"]).ok();

    // The confirmation lists what will go; "n" keeps everything.
    let mut child = std::process::Command::new(common::berth_bin())
        .args(["-H", &d.host(), "system", "prune", "--volumes"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = common::Out::of(child.wait_with_output().unwrap());
    assert_eq!(
        out.stdout,
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(names(&d, &["ps", "-aq"]).len(), 3);

    // Label filters reach every pruner.
    let o = d
        .berth(["system", "prune", "-f", "--filter", "label=k=a"])
        .ok();
    assert!(o.starts_with("Deleted Containers:\n"), "{o}");
    assert!(
        !o.contains("Deleted Networks") && !o.contains("Deleted Images"),
        "{o}"
    );
    assert!(o.contains("\n\nTotal reclaimed space: "), "{o}");
    assert_eq!(
        names(&d, &["ps", "-a", "--format", "{{.Names}}"]),
        ["running", "stopped-b"]
    );
    // `until` leaves what is newer; with --volumes it is refused like Docker's CLI does.
    let o = d
        .berth(["system", "prune", "-f", "--filter", "until=1h"])
        .ok();
    assert_eq!(o, "Total reclaimed space: 0B");
    let o = d.berth(["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr
            .contains("ERROR: The \"until\" filter is not supported with \"--volumes\""),
        "{}",
        o.stderr
    );

    let o = d.berth(["system", "prune", "-f", "--volumes"]).ok();
    let stopped_b = d.docker(["inspect", "-f", "{{.Id}}", "stopped-b"]);
    assert_ne!(stopped_b.status, 0, "stopped-b survived: {o}");
    assert!(o.contains("Deleted Containers:\n"), "{o}");
    assert!(o.contains("Deleted Networks:\nunused-net\n"), "{o}");
    assert!(o.contains(&format!("Deleted Volumes:\n{anon}\n")), "{o}");
    assert!(
        o.contains("Deleted Images:\n") && o.contains(&format!("deleted: {dangling_id}")),
        "{o}"
    );
    assert!(!o.contains("Total reclaimed space: 0B"), "{o}");
    // Used and named things stay; the dangling image and the anonymous volume are gone.
    assert_eq!(names(&d, &["ps", "-aq"]).len(), 1);
    assert_eq!(names(&d, &["volume", "ls", "-q"]).len(), 2);
    assert!(!names(&d, &["volume", "ls", "-q"]).contains(&anon));
    assert_eq!(
        names(&d, &["network", "ls", "--format", "{{.Name}}"]),
        ["bridge", "host", "none"]
    );
    assert_ne!(
        d.docker(["image", "inspect", &dangling_id]).status,
        0,
        "the dangling image survived"
    );
    // -a: images without containers go too, the running container's stays.
    d.docker(["rm", "-f", "running"]).ok();
    d.docker(["run", "-d", "--name", "keeper", "other:1", "sleep", "60"])
        .ok();
    let rootfs = d.busybox_rootfs_dir("third-rootfs");
    std::fs::write(rootfs.join("marker"), b"third").unwrap();
    d.import_dir(&rootfs, "third:1", &[]);
    let o = d.berth(["system", "prune", "-a", "-f"]).ok();
    assert!(o.contains("untagged: third:1"), "{o}");
    assert!(!o.contains("other:1"), "{o}");
    assert_eq!(
        d.docker(["image", "inspect", "-f", "{{.Id}}", "other:1"])
            .ok(),
        busybox_id
    );
    // The Docker CLI's system prune (it prunes the build cache too).
    d.docker(["create", "--name", "stopped-c", "busybox"]).ok();
    let o = d.docker(["system", "prune", "-f"]).ok();
    assert!(o.starts_with("Deleted Containers:\n"), "{o}");
    assert!(o.contains("Total reclaimed space: "), "{o}");
    assert_ne!(d.docker(["inspect", "stopped-c"]).status, 0);
}

#[test]
fn logs_details_and_daemon_log_opts() {
    let d = Daemon::start_with(r#"{"log-opts":{"max-size":"1k","max-file":"2","labels":"team"}}"#);
    d.load_busybox();
    let id = d
        .docker([
            "run",
            "-d",
            "--name",
            "l1",
            "--label",
            "team=core",
            "--label",
            "other=x",
            "-e",
            "STAGE=prod",
            "--log-opt",
            "env=STAGE",
            "--log-opt",
            "tag={{.Name}}/{{.ImageName}}",
            "busybox",
            "echo",
            "hello",
        ])
        .ok();
    d.docker(["wait", "l1"]).ok();
    // The daemon's options fill what the container left out.
    let cfg: Value = serde_json::from_str(
        &d.docker(["inspect", "-f", "{{json .HostConfig.LogConfig}}", "l1"])
            .ok(),
    )
    .unwrap();
    assert_eq!(
        cfg,
        serde_json::json!({"Type": "json-file", "Config": {
            "env": "STAGE", "labels": "team", "max-file": "2", "max-size": "1k",
            "tag": "{{.Name}}/{{.ImageName}}"}})
    );
    let want = "STAGE=prod,tag=l1%2Fbusybox,team=core hello\n";
    assert_eq!(d.docker(["logs", "--details", "l1"]).stdout, want);
    assert_eq!(d.berth(["logs", "--details", "l1"]).stdout, want);
    assert_eq!(d.docker(["logs", "l1"]).stdout, "hello\n");
    let ts = d.docker(["logs", "--details", "--timestamps", "l1"]).ok();
    assert!(
        ts.ends_with(" STAGE=prod,tag=l1%2Fbusybox,team=core hello"),
        "{ts}"
    );
    // The attributes are in the json-file entries, as Docker's driver writes them.
    let file = d
        .data_root
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    let raw = std::fs::read_to_string(&file).unwrap();
    assert!(
        raw.starts_with(
            r#"{"log":"hello\n","stream":"stdout","attrs":{"STAGE":"prod","tag":"l1/busybox","team":"core"},"time":""#
        ),
        "{raw}"
    );
    // No attributes: the details prefix is empty (a leading space, as Docker prints it).
    d.docker(["run", "--name", "l2", "busybox", "echo", "hi"])
        .ok();
    assert_eq!(d.docker(["logs", "--details", "l2"]).stdout, " hi\n");
    // Another driver does not take the daemon's json-file options.
    d.docker(["create", "--name", "l3", "--log-driver", "none", "busybox"])
        .ok();
    assert_eq!(
        d.docker([
            "inspect",
            "-f",
            "{{json .HostConfig.LogConfig.Config}}",
            "l3"
        ])
        .ok(),
        "{}"
    );
    // The daemon's rotation applies: 1k per file, two files at most.
    d.docker([
        "run",
        "--name",
        "l4",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ])
    .ok();
    let l4 = d.docker(["inspect", "-f", "{{.Id}}", "l4"]).ok();
    let dir = d.data_root.join("containers").join(&l4);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-json.log"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [format!("{l4}-json.log"), format!("{l4}-json.log.1")]
    );
    for f in &files {
        assert!(std::fs::metadata(dir.join(f)).unwrap().len() < 1200, "{f}");
    }
    let tail = d.docker(["logs", "l4"]).ok();
    assert!(tail.ends_with("line-299"), "{tail}");
    // Bad options: refused at create, or when the driver starts (a bad tag template).
    let o = d.docker(["create", "--log-opt", "compress=true", "busybox"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("compress"), "{}", o.stderr);
    let o = d.docker(["create", "--log-opt", "bogus=1", "busybox"]);
    assert!(
        o.stderr
            .contains("unknown log opt 'bogus' for json-file log driver"),
        "{}",
        o.stderr
    );
    let o = d.docker(["run", "--log-opt", "tag={{.Nope", "busybox", "true"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr.contains("failed to initialize logging driver"),
        "{}",
        o.stderr
    );
}

/// `berth system check` on the test daemon's roots (no daemon.json of the machine).
fn check(d: &Daemon, extra: &[&str]) -> common::Out {
    let mut c = std::process::Command::new(common::berth_bin());
    c.args(["system", "check", "--config-file"])
        .arg(d.dir.join("no-such-daemon.json"))
        .arg("--data-root")
        .arg(&d.data_root)
        .arg("--exec-root")
        .arg(&d.exec_root)
        .args(extra);
    common::Out::of(c.output().unwrap())
}

fn id_of(d: &Daemon, name: &str) -> String {
    d.docker(["inspect", "-f", "{{.Id}}", name]).ok()
}

#[test]
fn system_check_reports_and_repairs_what_crashes_leave() {
    let mut d = Daemon::start();
    d.load_busybox();
    d.docker(["tag", "busybox", "mine:1"]).ok();
    d.docker(["create", "--name", "keep", "busybox"]).ok();
    d.docker(["volume", "create", "keepvol"]).ok();
    d.docker(["run", "-d", "--name", "runner", "busybox", "sleep", "300"])
        .ok();
    d.docker(["run", "-d", "--name", "ghost", "busybox", "sleep", "300"])
        .ok();
    d.docker(["create", "--name", "victim", "busybox"]).ok();
    let (runner, ghost, victim) = (id_of(&d, "runner"), id_of(&d, "ghost"), id_of(&d, "victim"));

    // Not while a daemon uses the data root.
    let o = check(&d, &[]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("is using"), "{}", o.stderr);

    d.kill9();
    let o = check(&d, &[]);
    assert_eq!(o.status, 0, "{o:?}");
    assert!(o.stdout.contains("no problems found"), "{}", o.stdout);

    // What crashes leave, planted by hand.
    let dr = &d.data_root;
    std::fs::create_dir_all(dr.join("tmp/load-0123")).unwrap();
    std::fs::write(dr.join("tmp/load-0123/layer.tar"), b"half").unwrap();
    std::fs::create_dir_all(dr.join("overlay2/.tmp-abcdef")).unwrap();
    let fake_layer = "ab".repeat(32);
    std::fs::create_dir_all(dr.join("overlay2").join(&fake_layer).join("diff")).unwrap();
    std::fs::write(
        dr.join("overlay2").join(&fake_layer).join("meta.json"),
        format!(r#"{{"chain_id":"sha256:{fake_layer}","diff_id":"sha256:{fake_layer}","parent":null,"size":0,"tar_size":0}}"#),
    )
    .unwrap();
    let blob = b"an orphaned blob";
    let blob_hex = {
        let o = std::process::Command::new("sha256sum")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(blob)?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&o.stdout)[..64].to_string()
    };
    std::fs::write(dr.join("content/blobs/sha256").join(&blob_hex), blob).unwrap();
    let broken = "cd".repeat(32);
    std::fs::write(
        dr.join("image/records").join(format!("{broken}.json")),
        format!(r#"{{"id":"sha256:{broken}","layers":[{{"diff_id":"sha256:{broken}","chain_id":"sha256:{broken}","blob":"sha256:{broken}","media_type":"x","compressed_size":0,"size":0}}]}}"#),
    )
    .unwrap();
    std::fs::create_dir_all(dr.join("containers/.trash-0011")).unwrap();
    std::fs::create_dir_all(dr.join("containers").join("ef".repeat(32))).unwrap();
    std::fs::create_dir_all(d.exec_root.join("containers").join("12".repeat(32))).unwrap();
    // A container whose record is gone (its layer stays), another one that still runs, and
    // a running container whose supervisor died.
    std::fs::remove_dir_all(dr.join("containers").join(&victim)).unwrap();
    std::fs::remove_dir_all(dr.join("containers").join(&ghost)).unwrap();
    let shim_pid: i32 = std::fs::read_to_string(
        d.exec_root
            .join("containers")
            .join(&runner)
            .join("shim.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    // SAFETY: kill(2) of the supervisor this test's daemon started.
    unsafe { libc::kill(shim_pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));

    let o = check(&d, &[]);
    assert_eq!(o.status, 1, "{o:?}");
    for want in [
        "tmp/load-0123",
        "overlay2/.tmp-abcdef",
        &format!(
            "orphaned layer\t{}",
            dr.join("overlay2").join(&fake_layer).display()
        ),
        &format!(
            "orphaned blob\t{}",
            dr.join("content/blobs/sha256").join(&blob_hex).display()
        ),
        &format!(
            "missing layer\t{}",
            dr.join("image/records")
                .join(format!("{broken}.json"))
                .display()
        ),
        "containers/.trash-0011",
        &format!("containers/{}", "ef".repeat(32)),
        &format!(
            "bundle without record\t{}",
            d.exec_root
                .join("containers")
                .join("12".repeat(32))
                .display()
        ),
        &format!(
            "orphaned container layer\t{}",
            dr.join("overlay2").join(&victim).display()
        ),
        &format!(
            "orphaned container layer\t{}",
            dr.join("overlay2").join(&ghost).display()
        ),
        &format!(
            "shim without record\t{}",
            d.exec_root.join("containers").join(&ghost).display()
        ),
        &format!(
            "supervisor gone\t{}",
            d.exec_root.join("containers").join(&runner).display()
        ),
        "dangling mount",
    ] {
        assert!(
            o.stdout.contains(want),
            "{want} not reported:\n{}",
            o.stdout
        );
    }
    assert!(o.stdout.contains("--repair"), "{}", o.stdout);

    let o = check(&d, &["--repair"]);
    assert_eq!(o.status, 0, "{o:?}");
    assert!(o.stdout.contains("no problems found"), "{}", o.stdout);
    assert_eq!(check(&d, &[]).status, 0);
    assert!(!dr.join("overlay2").join(&ghost).exists());

    // Everything the user made is still there and works.
    d.start_again();
    assert_eq!(
        names(&d, &["ps", "-a", "--format", "{{.Names}}"]),
        ["keep", "runner"]
    );
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Status}}", "runner"])
            .ok(),
        "exited"
    );
    assert!(names(&d, &["volume", "ls", "-q"]).contains(&"keepvol".to_string()));
    assert_eq!(
        d.docker(["image", "inspect", "-f", "{{.Id}}", "mine:1"])
            .ok(),
        d.docker(["image", "inspect", "-f", "{{.Id}}", "busybox"])
            .ok()
    );
    d.docker(["start", "keep"]).ok();
    assert_eq!(
        d.docker(["run", "--rm", "busybox", "echo", "fine"]).ok(),
        "fine"
    );
}

fn used_bytes(p: &std::path::Path) -> u64 {
    let s = nix::sys::statfs::statfs(p).unwrap();
    (s.blocks() - s.blocks_free()) * s.block_size() as u64
}

#[test]
fn pruning_everything_gives_the_disk_back() {
    let mut d = Daemon::start();
    d.stop();
    // The data root on its own file system, so that nothing else moves the numbers.
    std::fs::remove_dir_all(&d.data_root).unwrap();
    std::fs::create_dir_all(&d.data_root).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1g", "berth-statfs-test"])
        .arg(&d.data_root)
        .status()
        .unwrap();
    assert!(st.success());
    d.start_again();
    let empty = used_bytes(&d.data_root);

    d.load_busybox();
    let rootfs = d.busybox_rootfs_dir("second-rootfs");
    std::fs::write(rootfs.join("marker"), b"second").unwrap();
    d.import_dir(&rootfs, "second:1", &[]);
    d.docker([
        "run",
        "--name",
        "w1",
        "-v",
        "named:/data",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/big bs=1M count=8 && dd if=/dev/urandom of=/data/v bs=1M count=4 && i=0; while [ $i -lt 3000 ]; do echo log-line-$i; i=$((i+1)); done",
    ])
    .ok();
    d.docker([
        "run",
        "-d",
        "--name",
        "w2",
        "-v",
        "/anon",
        "second:1",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/anon/z bs=1M count=2 && sleep 300",
    ])
    .ok();
    d.docker(["commit", "w1", "committed:1"]).ok();
    let ctx = d.dir.join("build-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN dd if=/dev/urandom of=/built bs=1M count=4\n",
    )
    .unwrap();
    d.berth(["build", "-q", "-t", "built:1", ctx.to_str().unwrap()])
        .ok();
    wait_for_file_size(&d, "w2");
    let full = used_bytes(&d.data_root);
    assert!(
        full > empty + 20 * 1024 * 1024,
        "the store did not fill: {empty} -> {full}"
    );

    d.docker(["rm", "-f", "w2"]).ok();
    d.berth(["system", "prune", "-a", "-f", "--volumes"]).ok();
    d.berth(["volume", "prune", "-a", "-f"]).ok();
    assert_eq!(d.docker(["images", "-aq"]).ok(), "");
    assert_eq!(d.docker(["volume", "ls", "-q"]).ok(), "");
    let after = used_bytes(&d.data_root);
    assert!(
        after <= empty + 1024 * 1024,
        "the data root kept {} bytes more than when it was empty ({empty} -> {full} -> {after})",
        after.saturating_sub(empty)
    );
    d.stop();
}

/// Waits until container `name`'s anonymous volume holds its file.
fn wait_for_file_size(d: &Daemon, name: &str) {
    common::wait_for(Duration::from_secs(30), || {
        let o = d.docker(["exec", name, "ls", "-l", "/anon/z"]);
        (o.status == 0 && o.stdout.contains("2097152")).then_some(())
    })
    .expect("the container did not write its volume");
}

/// A small deterministic generator (xorshift) for the kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_at_random_points_leaves_nothing_that_repair_cannot_mend() {
    let mut d = Daemon::start_with(r#"{"insecure-registries":["localhost"]}"#);
    let reg = common::DockerRegistry::start(&[]);
    d.load_busybox();
    let remote = format!("{}/app:1", reg.addr());
    d.docker(["tag", "busybox", &remote]).ok();
    d.docker(["push", &remote]).ok();
    d.docker(["rmi", &remote]).ok();
    // What the user made before the crashes; it must all survive.
    d.docker(["tag", "busybox", "mine:1"]).ok();
    d.docker(["volume", "create", "myvol"]).ok();
    d.docker([
        "run",
        "-d",
        "--name",
        "mycontainer",
        "-v",
        "myvol:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/f && echo layer > /l && sleep 100000",
    ])
    .ok();
    common::wait_for(Duration::from_secs(30), || {
        d.docker(["diff", "mycontainer"])
            .ok()
            .contains("A /l")
            .then_some(())
    })
    .expect("mycontainer wrote its files");
    let seed = std::env::var("BERTH_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    eprintln!("fault-injection seed {seed} (BERTH_FAULT_SEED)");
    let mut rng = Rng(seed);
    for round in 0..20 {
        let op = round % 4;
        // Set up what the operation works on while the daemon is up.
        let name = format!("c{round}");
        if op == 1 || op == 2 {
            d.docker([
                "run",
                "--name",
                &name,
                "busybox",
                "sh",
                "-c",
                "dd if=/dev/urandom of=/data bs=1M count=16",
            ])
            .ok();
        }
        if op == 3 {
            d.docker(["create", "--name", &name, "busybox"]).ok();
            d.docker(["rmi", "-f", &remote]);
        }
        let mut cmd = d.docker_command();
        match op {
            0 => cmd.args(["pull", &remote]),
            1 => cmd.args(["commit", &name, &format!("committed:{round}")]),
            2 => cmd.args(["rm", "-f", &name]),
            _ => cmd.args(["container", "prune", "-f"]),
        };
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        d.kill9();
        let _ = child.kill();
        let _ = child.wait();

        let o = check(&d, &["--repair"]);
        assert_eq!(o.status, 0, "round {round} (op {op}): {o:?}");
        assert_eq!(
            check(&d, &[]).status,
            0,
            "round {round}: problems after --repair"
        );
        d.start_again();
        assert_eq!(
            d.docker(["image", "inspect", "-f", "{{.Id}}", "mine:1"])
                .ok(),
            d.docker(["image", "inspect", "-f", "{{.Id}}", "busybox"])
                .ok(),
            "round {round}"
        );
        assert_eq!(
            d.docker(["run", "--rm", "-v", "myvol:/v", "busybox", "cat", "/v/f"])
                .ok(),
            "kept",
            "round {round}"
        );
        let diff = d.docker(["diff", "mycontainer"]).ok();
        assert!(diff.contains("A /l"), "round {round}: {diff}");
        let o = d.docker([
            "run",
            "--rm",
            "--volumes-from",
            "mycontainer",
            "busybox",
            "true",
        ]);
        assert_eq!(o.status, 0, "round {round}: {o:?}");
        // The operation either happened or can be done again.
        match op {
            0 => {
                d.docker(["pull", &remote]).ok();
            }
            1 => {
                let _ = d.docker(["commit", &name, &format!("committed:{round}")]);
            }
            _ => {
                let _ = d.docker(["rm", "-f", &name]);
            }
        }
    }
}
