//! Daemon configuration and operations: daemon.json, runtimes, restart policies, log rotation,
//! events, and the rule that the daemon never executes anything from inside a container.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{wait_for, Daemon};

#[test]
fn daemon_json_log_options_rotate_logs() {
    let d = Daemon::start_with(r#"{"log-opts":{"max-size":"1k","max-file":"3"}}"#);
    d.load_busybox();
    let id = d
        .docker([
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
        ])
        .ok();
    assert_eq!(d.docker(["wait", &id]).ok(), "0");
    let log_path = d.docker(["inspect", "-f", "{{.LogPath}}", &id]).ok();
    let size = std::fs::metadata(&log_path).unwrap().len();
    assert!(size <= 1024 + 200, "live log is {size} bytes");
    assert!(std::path::Path::new(&format!("{log_path}.1")).exists());
    assert!(std::path::Path::new(&format!("{log_path}.2")).exists());
    assert!(!std::path::Path::new(&format!("{log_path}.3")).exists());
    // `logs` reads across the rotated files; the last line is there, the first ones are gone.
    let logs = d.docker(["logs", &id]).ok();
    assert!(
        logs.ends_with("line-199-xxxxxxxxxxxxxxxxxxxx"),
        "{}",
        &logs[logs.len().saturating_sub(200)..]
    );
    assert!(
        !logs.contains("line-0-"),
        "oldest lines should have rotated away"
    );
    assert_eq!(
        d.docker(["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", &id])
            .ok(),
        "json-file"
    );
    // per-container --log-opt overrides, --log-driver none refuses reading
    let id2 = d
        .docker(["run", "-d", "--log-driver", "none", "busybox", "echo", "x"])
        .ok();
    d.docker(["wait", &id2]).ok();
    let o = d.docker(["logs", &id2]);
    assert!(
        o.stderr
            .contains("configured logging driver does not support reading"),
        "{}",
        o.stderr
    );
}

#[test]
fn bad_daemon_json_is_refused() {
    let dir = tempfile::Builder::new()
        .prefix("bt-")
        .tempdir_in("/tmp")
        .unwrap();
    let cfg = dir.path().join("daemon.json");
    std::fs::write(&cfg, r#"{"data-rot": "/x"}"#).unwrap();
    let out = std::process::Command::new(common::berth_bin())
        .args(["daemon", "--config-file"])
        .arg(&cfg)
        .arg("--data-root")
        .arg(dir.path().join("d"))
        .arg("--exec-root")
        .arg(dir.path().join("x"))
        .arg("-H")
        .arg(format!("unix://{}/s.sock", dir.path().display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the following directives don't match any configuration option: data-rot"),
        "{err}"
    );
    // a flag and the file setting the same thing: refused, like Docker
    std::fs::write(
        &cfg,
        format!(r#"{{"data-root": "{}/d2"}}"#, dir.path().display()),
    )
    .unwrap();
    let out = std::process::Command::new(common::berth_bin())
        .args(["daemon", "--config-file"])
        .arg(&cfg)
        .arg("--data-root")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("specified both as a flag and in the configuration file"),
        "{err}"
    );
}

#[test]
fn runtimes_from_daemon_json_and_runtime_flag() {
    let dir = tempfile::Builder::new()
        .prefix("bt-rt-")
        .tempdir_in("/tmp")
        .unwrap();
    let marker = dir.path().join("invocations");
    let wrapper = dir.path().join("runc-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec runc \"$@\"\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = Daemon::start_with(&format!(
        r#"{{"runtimes":{{"wrapped":{{"path":"{}"}}}}}}"#,
        wrapper.display()
    ));
    d.load_busybox();
    assert_eq!(
        d.docker([
            "run",
            "--rm",
            "--runtime",
            "wrapped",
            "busybox",
            "echo",
            "via-wrapper"
        ])
        .ok(),
        "via-wrapper"
    );
    let calls = std::fs::read_to_string(&marker).unwrap();
    assert!(
        calls.contains(" run ") || calls.contains(" create "),
        "{calls}"
    );
    let id = d.docker(["create", "--runtime", "wrapped", "busybox"]).ok();
    assert_eq!(
        d.docker(["inspect", "-f", "{{.HostConfig.Runtime}}", &id])
            .ok(),
        "wrapped"
    );
    let o = d.docker(["run", "--rm", "--runtime", "nosuch", "busybox", "true"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr.contains("unknown or invalid runtime name: nosuch"),
        "{}",
        o.stderr
    );
    let info = d.docker(["info", "--format", "{{json .Runtimes}}"]).ok();
    assert!(info.contains("wrapped") && info.contains("runc"), "{info}");
    // default-runtime
    let d2 = Daemon::start_with(&format!(
        r#"{{"runtimes":{{"wrapped":{{"path":"{}"}}}},"default-runtime":"wrapped"}}"#,
        wrapper.display()
    ));
    d2.load_busybox();
    let before = std::fs::read_to_string(&marker).unwrap().lines().count();
    d2.docker(["run", "--rm", "busybox", "true"]).ok();
    assert!(std::fs::read_to_string(&marker).unwrap().lines().count() > before);
}

#[test]
fn restart_policies() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    wait_for(Duration::from_secs(20), || {
        let s = d
            .docker([
                "inspect",
                "-f",
                "{{.RestartCount}} {{.State.Status}}",
                "flaky",
            ])
            .ok();
        (s == "2 exited").then_some(())
    })
    .expect("restarted twice, then gave up");
    d.docker([
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 0",
    ])
    .ok();
    wait_for(Duration::from_secs(20), || {
        let n: i64 = d
            .docker(["inspect", "-f", "{{.RestartCount}}", "always"])
            .ok()
            .parse()
            .unwrap();
        (n >= 2).then_some(())
    })
    .expect("always restarts");
    // an explicit stop ends it
    d.docker(["stop", "-t", "1", "always"]).ok();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Running}}", "always"])
            .ok(),
        "false"
    );
    let o = d.docker(["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_ne!(o.status, 0);
}

#[test]
fn events_stream_container_life_cycle() {
    let d = Daemon::start();
    d.load_busybox();
    let since = chrono_now_secs();
    d.docker(["run", "--rm", "--name", "evt", "busybox", "true"])
        .ok();
    let until = chrono_now_secs() + 1;
    let ev = d
        .docker([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "container=evt",
            "--format",
            "{{.Action}}",
        ])
        .ok();
    let actions: Vec<&str> = ev.lines().collect();
    for want in ["create", "attach", "start", "die", "destroy"] {
        assert!(actions.contains(&want), "{want} missing in {actions:?}");
    }
}

fn chrono_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_daemon_never_runs_binaries_from_inside_a_container() {
    let d = Daemon::start();
    d.load_busybox();
    // An image whose `ps` (and every other likely helper) writes a marker to a host directory
    // when run. `top`, `logs`, `inspect` and `stop` must not run any of them.
    let marker_dir = d.dir.join("markers");
    std::fs::create_dir_all(&marker_dir).unwrap();
    let rootfs = d.busybox_rootfs_dir("trap-rootfs");
    for name in ["bin/ps", "bin/sh.trap", "usr/bin/id", "bin/hostname"] {
        let p = rootfs.join(name);
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, "#!/bin/busybox sh\ntouch /markers/ran-$(basename $0)\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    d.import_dir(&rootfs, "trap:1", &["CMD [\"sleep\", \"60\"]"]);
    let id = d
        .docker([
            "run",
            "-d",
            "-v",
            &format!("{}:/markers", marker_dir.display()),
            "trap:1",
        ])
        .ok();
    let top = d.docker(["top", &id]).ok();
    assert!(top.contains("sleep 60"), "{top}");
    d.docker(["logs", &id]).ok();
    d.docker(["inspect", &id]).ok();
    d.docker(["stop", "-t", "1", &id]).ok();
    let ran: Vec<_> = std::fs::read_dir(&marker_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(ran.is_empty(), "the daemon ran container binaries: {ran:?}");
}

#[test]
fn restart_reconciles_half_done_and_unreadable_state() {
    let mut d = Daemon::start();
    d.load_busybox();
    let good = d.docker(["create", "--name", "good", "busybox"]).ok();
    let bad = d.docker(["create", "--name", "bad", "busybox"]).ok();
    let half = d.docker(["create", "--name", "half", "busybox"]).ok();
    d.stop();
    let containers = d.data_root.join("containers");
    // A record that cannot be read (corruption) and a create interrupted before its record.
    std::fs::write(
        containers.join(&bad).join("config.v2.json"),
        b"{\"Id\": trunc",
    )
    .unwrap();
    std::fs::remove_file(containers.join(&half).join("config.v2.json")).unwrap();
    // A removal interrupted after its record went.
    std::fs::create_dir_all(containers.join(".trash-0123")).unwrap();
    d.start_again();
    let names = d.docker(["ps", "-a", "--format", "{{.Names}}"]).ok();
    assert_eq!(names, "good");
    // The unreadable one is set aside with its filesystem, never deleted.
    assert!(containers.join(format!(".unreadable-{bad}")).is_dir());
    assert!(d.data_root.join("overlay2").join(&bad).is_dir());
    // The half-created one and the trash are gone, with the orphan read-write layer.
    assert!(!containers.join(&half).exists());
    assert!(!d.data_root.join("overlay2").join(&half).exists());
    assert!(!containers.join(".trash-0123").exists());
    assert!(d.log_text().contains("unreadable container record"));
    assert_eq!(d.docker(["start", "-a", &good]).status, 0);
}
