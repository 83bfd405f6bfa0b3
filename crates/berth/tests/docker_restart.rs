//! Restart policies of `berth daemon` through the real Docker CLI 28, the berth CLI and
//! docker-py: the `restarting` state and what rm/stop/kill/start/pause/exec/wait do to it,
//! the growing back-off, RestartCount, Docker's kill rules, and which containers come back when
//! the daemon starts again.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{wait_for, Daemon};

const LONG: Duration = Duration::from_secs(60);

fn inspect(d: &Daemon, fmt: &str, name: &str) -> String {
    d.docker(["inspect", "-f", fmt, name]).ok()
}

fn status(d: &Daemon, name: &str) -> String {
    inspect(d, "{{.State.Status}}", name)
}

fn count(d: &Daemon, name: &str) -> i64 {
    inspect(d, "{{.RestartCount}}", name).parse().unwrap()
}

/// Waits until `name` restarted at least `n` times and is `restarting` (waiting out a
/// back-off) right now.
fn wait_restarting(d: &Daemon, name: &str, n: i64) {
    wait_for(LONG, || (count(d, name) >= n).then_some(()))
        .unwrap_or_else(|| panic!("{name} did not restart {n} times"));
    wait_for(LONG, || (status(d, name) == "restarting").then_some(()))
        .unwrap_or_else(|| panic!("{name} never seen restarting"));
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// (action, timeNano) of the events of `name` since `since`.
fn events(d: &Daemon, since: u64, name: &str) -> Vec<(String, i64)> {
    d.docker([
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(now_secs() + 1).to_string(),
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}} {{.TimeNano}}",
    ])
    .ok()
    .lines()
    .map(|l| {
        let (a, t) = l.rsplit_once(' ').unwrap();
        (a.to_string(), t.parse().unwrap())
    })
    .collect()
}

#[test]
fn restarting_state_backoff_and_user_operations() {
    let d = Daemon::start();
    d.load_busybox();
    let t0 = now_secs().saturating_sub(1);
    d.docker([
        "run",
        "-d",
        "--name",
        "rr",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    wait_restarting(&d, "rr", 4);
    let st = inspect(
        &d,
        "{{.State.Running}} {{.State.Restarting}} {{.State.Pid}} {{.State.ExitCode}}",
        "rr",
    );
    assert_eq!(st, "true true 0 3");
    let ps = d.docker(["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
    assert!(ps.starts_with("rr Restarting (3) "), "{ps}");
    // rm refuses without force; pause and exec refuse; start is a no-op (304).
    let o = d.docker(["rm", "rr"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr
            .contains("You cannot remove a restarting container")
            && o.stderr
                .contains("Stop the container before attempting removal or force remove"),
        "{}",
        o.stderr
    );
    for args in [["pause", "rr"], ["exec", "rr"]] {
        let mut a: Vec<&str> = args.to_vec();
        if args[0] == "exec" {
            a.push("true");
        }
        let o = d.docker(&a);
        assert_ne!(o.status, 0, "{a:?}");
        assert!(
            o.stderr
                .contains("is restarting, wait until the container is running"),
            "{a:?}: {}",
            o.stderr
        );
    }
    assert_eq!(d.docker(["start", "rr"]).ok(), "rr");
    // The back-off doubles from 100 ms: each restart waits at least as long as the policy says.
    // Five exits mean four restarts (die -> start gaps) are in the event log.
    wait_restarting(&d, "rr", 5);
    let ev = events(&d, t0, "rr");
    let mut gaps = Vec::new();
    for w in ev.windows(2) {
        if w[0].0 == "die" && w[1].0 == "start" {
            gaps.push(w[1].1 - w[0].1);
        }
    }
    assert!(gaps.len() >= 4, "{ev:?}");
    for (i, g) in gaps.iter().take(5).enumerate() {
        let min = 100_000_000i64 << i;
        assert!(
            *g >= min * 9 / 10,
            "restart {i} after {g} ns, back-off is {min} ns"
        );
    }
    // stop cancels the pending restart: exited, and it stays so.
    wait_restarting(&d, "rr", 5);
    let t1 = now_secs().saturating_sub(1);
    d.docker(["stop", "rr"]).ok();
    assert_eq!(
        inspect(&d, "{{.State.Status}} {{.State.ExitCode}}", "rr"),
        "exited 3"
    );
    let n = count(&d, "rr");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        (status(&d, "rr"), count(&d, "rr")),
        ("exited".to_string(), n)
    );
    let acts: Vec<String> = events(&d, t1, "rr").into_iter().map(|e| e.0).collect();
    assert!(acts.contains(&"stop".to_string()), "{acts:?}");
    // A start by the user resets the count.
    d.docker(["start", "rr"]).ok();
    assert!(count(&d, "rr") < n, "RestartCount not reset by start");
    // rm -f of a restarting container.
    wait_restarting(&d, "rr", 4);
    d.docker(["rm", "-f", "rr"]).ok();
    assert_ne!(d.docker(["inspect", "rr"]).status, 0);
}

#[test]
fn kill_and_wait_on_restarting_and_kill_rules() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "-d",
        "--name",
        "kk",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    wait_restarting(&d, "kk", 4);
    let t = now_secs().saturating_sub(1);
    d.docker(["kill", "kk"]).ok();
    assert_eq!(status(&d, "kk"), "exited");
    let n = count(&d, "kk");
    // wait on a running always-container returns at its exit, though it restarts.
    d.docker([
        "run",
        "-d",
        "--name",
        "ww",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; exit 5",
    ])
    .ok();
    assert_eq!(d.docker(["wait", "ww"]).ok(), "5");
    wait_for(LONG, || (count(&d, "ww") >= 1).then_some(())).expect("w restarts");

    // moby's kill rules: with no stop signal configured any signal stops restarts; with one,
    // only that signal (or SIGKILL); any kill counts as a stop by the user for unless-stopped.
    // (The process ignores SIGHUP and exits on its own, with 3.)
    for (name, policy, stop_signal) in [
        ("nosig", "always", None),
        ("withsig", "always", Some("USR1")),
        ("unless", "unless-stopped", Some("USR1")),
    ] {
        let mut args = vec!["run", "-d", "--name", name, "--restart", policy];
        if let Some(s) = stop_signal {
            args.extend(["--stop-signal", s]);
        }
        args.extend(["busybox", "sh", "-c", "trap '' HUP; sleep 1; exit 3"]);
        d.docker(&args).ok();
        d.docker(["kill", "-s", "HUP", name]).ok();
    }
    wait_for(LONG, || (count(&d, "withsig") >= 1).then_some(()))
        .expect("a signal other than the stop signal does not cancel restarts");
    for name in ["nosig", "unless"] {
        wait_for(LONG, || (status(&d, name) == "exited").then_some(()))
            .unwrap_or_else(|| panic!("{name} should not restart"));
        assert_eq!(count(&d, name), 0, "{name}");
    }
    // The killed restarting container stayed down; its kill emitted no kill event (moby).
    assert_eq!(
        (status(&d, "kk"), count(&d, "kk")),
        ("exited".to_string(), n)
    );
    let acts: Vec<String> = events(&d, t, "kk").into_iter().map(|e| e.0).collect();
    assert!(!acts.contains(&"kill".to_string()), "{acts:?}");
}

#[test]
fn policies_when_the_daemon_starts_again() {
    let mut d = Daemon::start();
    d.load_busybox();
    for (name, policy) in [
        ("a1", "always"),
        ("u1", "unless-stopped"),
        ("o1", "on-failure"),
        ("a2", "always"),
        ("u2", "unless-stopped"),
        ("n1", "no"),
    ] {
        d.docker([
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "1000",
        ])
        .ok();
    }
    d.docker(["run", "-d", "--name", "n2", "busybox", "sh", "-c", "exit 1"])
        .ok();
    d.docker([
        "run",
        "-d",
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ])
    .ok();
    d.docker([
        "run",
        "-d",
        "--name",
        "rs",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    d.docker(["stop", "-t", "0", "a1", "u1", "o1"]).ok();
    wait_for(LONG, || (status(&d, "n2") == "exited").then_some(())).unwrap();
    wait_restarting(&d, "rs", 3);
    let a2_pid = inspect(&d, "{{.State.Pid}}", "a2");
    let u2_pid: i32 = inspect(&d, "{{.State.Pid}}", "u2").parse().unwrap();
    let u2_sock = d
        .exec_root
        .join("containers")
        .join(inspect(&d, "{{.Id}}", "u2"))
        .join("shim.sock");
    // The daemon dies; meanwhile u2's process exits (its supervisor records the exit).
    d.kill9();
    // SAFETY: plain kill(2) of the container's process (ours, started by the test daemon).
    unsafe { libc::kill(u2_pid, libc::SIGKILL) };
    wait_for(LONG, || (!u2_sock.exists()).then_some(())).expect("u2's supervisor saw the exit");
    d.start_again();
    for name in ["a1", "o1", "u2", "a2", "n1"] {
        wait_for(LONG, || (status(&d, name) == "running").then_some(()))
            .unwrap_or_else(|| panic!("{name} should be running: {}", status(&d, name)));
    }
    for name in ["u1", "n2", "ok"] {
        assert_eq!(status(&d, name), "exited", "{name}");
    }
    // Containers the policy started again begin with a fresh count; a2 never stopped.
    for name in ["a1", "o1", "u2"] {
        assert_eq!(count(&d, name), 0, "{name}");
    }
    assert_eq!(inspect(&d, "{{.State.Pid}}", "a2"), a2_pid);
    // The one that was waiting out a back-off keeps restarting.
    wait_for(LONG, || (count(&d, "rs") >= 1).then_some(())).expect("rs restarts");
    assert_ne!(status(&d, "rs"), "exited");
    // A graceful restart: the user-stopped unless-stopped container still stays down.
    d.docker(["stop", "-t", "0", "u2"]).ok();
    d.restart();
    assert_eq!(status(&d, "u2"), "exited");
    assert_eq!(status(&d, "u1"), "exited");
    wait_for(LONG, || (status(&d, "a1") == "running").then_some(())).unwrap();
}

#[test]
fn berth_cli_shows_and_refuses_restarting() {
    let d = Daemon::start();
    d.load_busybox();
    d.berth([
        "run",
        "-d",
        "--name",
        "bb",
        "--restart",
        "on-failure:50",
        "busybox",
        "sh",
        "-c",
        "exit 2",
    ])
    .ok();
    wait_restarting(&d, "bb", 4);
    let ps = d.berth(["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
    assert!(ps.starts_with("bb Restarting (2) "), "{ps}");
    let o = d.berth(["rm", "bb"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr
            .contains("You cannot remove a restarting container"),
        "{}",
        o.stderr
    );
    assert_eq!(d.berth(["stop", "bb"]).ok(), "bb");
    assert_eq!(status(&d, "bb"), "exited");
    d.berth(["rm", "bb"]).ok();
}

const PY: &str = r#"
import sys, time, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
def wait(ctr, pred):
    for _ in range(1200):
        ctr.reload()
        if pred(ctr.attrs):
            return
        time.sleep(0.05)
    raise SystemExit("timeout: %r" % (ctr.attrs["State"], ))
f = c.containers.run("busybox", ["sh", "-c", "exit 3"], detach=True, name="pyfail",
                     restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
wait(f, lambda a: a["RestartCount"] == 2 and a["State"]["Status"] == "exited")
assert f.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
ok = c.containers.run("busybox", ["true"], detach=True, name="pyok",
                      restart_policy={"Name": "on-failure"})
wait(ok, lambda a: a["State"]["Status"] == "exited")
time.sleep(0.5)
ok.reload()
assert ok.attrs["RestartCount"] == 0, ok.attrs["RestartCount"]
a = c.containers.run("busybox", ["sh", "-c", "exit 1"], detach=True, name="pyalways",
                     restart_policy={"Name": "always"})
wait(a, lambda x: x["RestartCount"] >= 3 and x["State"]["Restarting"])
try:
    a.remove()
    raise SystemExit("removed a restarting container")
except docker.errors.APIError as e:
    assert e.status_code == 409, e
a.stop()
a.reload()
assert a.attrs["State"]["Status"] == "exited", a.attrs["State"]
a.remove()
print("py-restart-ok")
"#;

#[test]
fn docker_py_restart_policies() {
    let d = Daemon::start();
    d.load_busybox();
    let script = d.dir.join("restart.py");
    std::fs::write(&script, PY).unwrap();
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(d.host())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("py-restart-ok"),
        "docker-py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
