//! Health checks run by `berth daemon`, driven by the real Docker CLI 28, the berth CLI and
//! docker-py: transitions, start period, timeouts, missing commands, huge output, the image's
//! HEALTHCHECK and its overrides, ps/inspect/filters/events, and the schedule across daemon
//! restarts. Intervals are sub-second so the suite stays fast; nothing asserts how fast.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{wait_for, Daemon};

const LONG: Duration = Duration::from_secs(60);

/// `docker inspect -f '{{json .State.Health}}'` parsed (Null when the container has none).
fn health(d: &Daemon, name: &str) -> serde_json::Value {
    let out = d
        .docker(["inspect", "-f", "{{json .State.Health}}", name])
        .ok();
    serde_json::from_str(&out).unwrap()
}

fn status_of(h: &serde_json::Value) -> &str {
    h["Status"].as_str().unwrap_or("")
}

fn wait_status(d: &Daemon, name: &str, want: &str) -> serde_json::Value {
    wait_for(LONG, || {
        let h = health(d, name);
        (status_of(&h) == want).then_some(h)
    })
    .unwrap_or_else(|| panic!("{name} never became {want}: {}", health(d, name)))
}

fn ps_status(d: &Daemon, name: &str) -> String {
    d.docker([
        "ps",
        "-a",
        "--filter",
        &format!("name=^/{name}$"),
        "--format",
        "{{.Status}}",
    ])
    .ok()
}

fn ps_names(d: &Daemon, filter: &str) -> Vec<String> {
    let mut v: Vec<String> = d
        .docker(["ps", "-a", "--filter", filter, "--format", "{{.Names}}"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn events(d: &Daemon, since: u64, filters: &[&str]) -> Vec<String> {
    let mut args = vec![
        "events".to_string(),
        "--since".into(),
        since.to_string(),
        "--until".into(),
        (now_secs() + 1).to_string(),
        "--format".into(),
        "{{.Action}}".into(),
    ];
    for f in filters {
        args.push("--filter".into());
        args.push(f.to_string());
    }
    d.docker(&args).ok().lines().map(str::to_string).collect()
}

#[test]
fn transitions_ps_filters_and_events() {
    let d = Daemon::start();
    d.load_busybox();
    let t0 = now_secs().saturating_sub(1);
    // Failures inside the start period do not count while the container is starting.
    d.docker([
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "exit $(cat /tmp/rc)",
        "--health-interval",
        "150ms",
        "--health-retries",
        "2",
        "--health-start-period",
        "60s",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /tmp/rc; exec sleep 1000",
    ])
    .ok();
    d.docker(["run", "-d", "--name", "plain", "busybox", "sleep", "1000"])
        .ok();
    let h = wait_for(LONG, || {
        let h = health(&d, "web");
        (h["Log"].as_array().map_or(0, |l| l.len()) >= 3).then_some(h)
    })
    .expect("probes run");
    assert_eq!(status_of(&h), "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    assert!(ps_status(&d, "web").ends_with("(health: starting)"));
    assert_eq!(ps_names(&d, "health=starting"), ["web"]);
    assert_eq!(ps_names(&d, "health=none"), ["plain"]);

    // starting → healthy
    d.docker(["exec", "web", "sh", "-c", "echo 0 > /tmp/rc"])
        .ok();
    let h = wait_status(&d, "web", "healthy");
    assert_eq!(h["FailingStreak"], 0);
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "", "{h}");
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());
    assert!(
        ps_status(&d, "web").ends_with("(healthy)"),
        "{}",
        ps_status(&d, "web")
    );
    assert_eq!(ps_names(&d, "health=healthy"), ["web"]);

    // healthy → unhealthy after `retries` failures (the start period no longer shields them)
    d.docker(["exec", "web", "sh", "-c", "echo 1 > /tmp/rc"])
        .ok();
    let h = wait_status(&d, "web", "unhealthy");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    assert!(h["Log"].as_array().unwrap().len() <= 5, "{h}");
    assert!(ps_status(&d, "web").ends_with("(unhealthy)"));
    assert_eq!(ps_names(&d, "health=unhealthy"), ["web"]);

    // events: the status changes and the probes' exec events, as dockerd emits them
    let acts = events(&d, t0, &["container=web", "event=health_status"]);
    assert_eq!(
        acts,
        ["health_status: healthy", "health_status: unhealthy"],
        "{acts:?}"
    );
    let acts = events(&d, t0, &["container=web"]);
    for want in [
        "exec_create: /bin/sh -c exit $(cat /tmp/rc)",
        "exec_start: /bin/sh -c exit $(cat /tmp/rc)",
        "exec_die",
    ] {
        assert!(acts.iter().any(|a| a == want), "{want} missing: {acts:?}");
    }
    // Finished probes do not pile up in ExecIDs (at most the two `docker exec`s above and
    // the probe in flight).
    let execs: usize = d
        .docker(["inspect", "-f", "{{len .ExecIDs}}", "web"])
        .ok()
        .parse()
        .unwrap();
    assert!(execs <= 3, "{execs}");

    // A stopped container keeps its log; its status is unhealthy (moby), ps shows no health.
    d.docker(["stop", "-t", "0", "web"]).ok();
    let h = health(&d, "web");
    assert_eq!(status_of(&h), "unhealthy", "{h}");
    assert!(!h["Log"].as_array().unwrap().is_empty());
    assert!(ps_status(&d, "web").starts_with("Exited (137)"));
    // A new start begins at `starting` again.
    d.docker(["start", "web"]).ok();
    assert_eq!(status_of(&health(&d, "web")), "starting");

    let o = d.docker(["ps", "--filter", "health=bogus"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr
            .contains("Unrecognised filter value for health: bogus"),
        "{}",
        o.stderr
    );
    // A container that never ran has no health state.
    d.docker([
        "create",
        "--name",
        "fresh",
        "--health-cmd",
        "true",
        "busybox",
    ])
    .ok();
    assert!(health(&d, "fresh").is_null());
}

#[test]
fn hanging_missing_and_noisy_probes() {
    let d = Daemon::start();
    d.load_busybox();
    // A probe that hangs is killed at its timeout and counts as a failure.
    d.docker([
        "run",
        "-d",
        "--name",
        "hang",
        "--health-cmd",
        "sleep 77",
        "--health-timeout",
        "300ms",
        "--health-interval",
        "100ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    // A CMD probe whose command does not exist (only the API has the CMD form).
    let body = br#"{"Image":"busybox","Cmd":["sleep","1000"],"Healthcheck":{"Test":["CMD","nonexistent-cmd","a"],"Interval":100000000,"Retries":1}}"#;
    let (code, resp) = d.raw(
        "POST",
        "/v1.41/containers/create?name=missing",
        Some("application/json"),
        body,
    );
    assert_eq!(code, 201, "{resp}");
    d.docker(["start", "missing"]).ok();
    // The same through a shell: sh's own 127.
    d.docker([
        "run",
        "-d",
        "--name",
        "shmissing",
        "--health-cmd",
        "nonexistent-cmd",
        "--health-interval",
        "100ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    // 10 MB of output: kept to 4096 bytes plus "...".
    d.docker([
        "run",
        "-d",
        "--name",
        "noisy",
        "--health-cmd",
        "yes x | head -c 10000000",
        "--health-interval",
        "100ms",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();

    let h = wait_status(&d, "hang", "unhealthy");
    let r = &h["Log"][0];
    assert_eq!(r["ExitCode"], -1, "{h}");
    assert_eq!(r["Output"], "Health check exceeded timeout (300ms)", "{h}");
    // Killed probes do not pile up: at most the probe in flight is left.
    wait_for(LONG, || {
        (health(&d, "hang")["Log"].as_array().unwrap().len() >= 4).then_some(())
    })
    .expect("more probes");
    let top = d.docker(["top", "hang"]).ok();
    assert!(
        top.lines().filter(|l| l.contains("sleep 77")).count() <= 1,
        "{top}"
    );

    let h = wait_status(&d, "missing", "unhealthy");
    let r = &h["Log"][0];
    assert_eq!(r["ExitCode"], -1, "{h}");
    let out = r["Output"].as_str().unwrap();
    assert!(
        out.starts_with("OCI runtime exec failed")
            && out.contains("\"nonexistent-cmd\": executable file not found in $PATH"),
        "{out}"
    );
    let h = wait_status(&d, "shmissing", "unhealthy");
    assert_eq!(h["Log"][0]["ExitCode"], 127, "{h}");
    assert!(
        h["Log"][0]["Output"]
            .as_str()
            .unwrap()
            .contains("nonexistent-cmd: not found"),
        "{h}"
    );

    let h = wait_status(&d, "noisy", "healthy");
    let out = h["Log"][0]["Output"].as_str().unwrap();
    assert_eq!(out.len(), 4096 + 3);
    assert!(
        out.starts_with("x\nx\n") && out.ends_with("x\n..."),
        "{out}"
    );
    // The daemon reads and drops the rest: its memory stays flat over many such probes.
    let rss = || -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = rss();
    let seen = h["Log"].as_array().unwrap().last().unwrap()["Start"].clone();
    let mut probes = 0;
    let mut last = seen;
    wait_for(LONG, || {
        let h = health(&d, "noisy");
        let s = h["Log"].as_array().unwrap().last().unwrap()["Start"].clone();
        if s != last {
            probes += 1;
            last = s;
        }
        (probes >= 6).then_some(())
    })
    .expect("noisy probes keep running");
    let after = rss();
    assert!(
        after < before + 10 * 1024,
        "daemon RSS grew from {before} kB to {after} kB over six 10 MB probes"
    );
    // The daemon is fine: ordinary requests and execs still work.
    assert_eq!(d.docker(["exec", "missing", "echo", "ok"]).ok(), "ok");
}

#[test]
fn image_healthcheck_overrides_and_validation_berth_cli() {
    let d = Daemon::start();
    d.load_busybox();
    let root = d.busybox_rootfs_dir("hcroot");
    d.import_dir(
        &root,
        "hcimg:1",
        &[
            "HEALTHCHECK --interval=100ms --retries=1 CMD true",
            "CMD [\"/bin/sleep\", \"1000\"]",
        ],
    );
    d.berth(["run", "-d", "--name", "img", "hcimg:1"]).ok();
    d.berth(["run", "-d", "--name", "off", "--no-healthcheck", "hcimg:1"])
        .ok();
    // Only the command overridden: the image's interval and retries stay.
    d.berth([
        "run",
        "-d",
        "--name",
        "ovr",
        "--health-cmd",
        "exit 1",
        "hcimg:1",
    ])
    .ok();
    wait_status(&d, "img", "healthy");
    wait_status(&d, "ovr", "unhealthy");
    assert!(health(&d, "off").is_null());
    let cfg = d
        .berth(["inspect", "-f", "{{json .Config.Healthcheck}}", "ovr"])
        .ok();
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["Test"], serde_json::json!(["CMD-SHELL", "exit 1"]));
    assert_eq!(cfg["Interval"], 100_000_000);
    assert_eq!(cfg["Retries"], 1);
    let ps = d.berth(["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
    assert!(
        ps.lines()
            .any(|l| l.starts_with("img Up") && l.ends_with("(healthy)")),
        "{ps}"
    );
    assert!(
        ps.lines()
            .any(|l| l.starts_with("ovr Up") && l.ends_with("(unhealthy)")),
        "{ps}"
    );
    assert!(
        ps.lines()
            .any(|l| l.starts_with("off Up") && !l.contains('(')),
        "{ps}"
    );
    let none = d
        .berth(["ps", "--filter", "health=none", "--format", "{{.Names}}"])
        .ok();
    assert_eq!(none, "off");
    // Docker's validation of the durations.
    let o = d.docker([
        "run",
        "--rm",
        "--health-interval",
        "10us",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status, 125);
    assert!(
        o.stderr
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{}",
        o.stderr
    );
    let o = d.berth(["create", "--health-timeout", "1ns", "busybox", "true"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr
            .contains("Timeout in Healthcheck cannot be less than 1ms"),
        "{}",
        o.stderr
    );
}

#[test]
fn schedule_continues_across_daemon_restarts() {
    let mut d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "true",
        "--health-interval",
        "150ms",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.docker([
        "run",
        "-d",
        "--name",
        "gone",
        "--health-cmd",
        "true",
        "--health-interval",
        "150ms",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    wait_status(&d, "hc", "healthy");
    wait_status(&d, "gone", "healthy");
    d.docker(["stop", "-t", "0", "gone"]).ok();
    let last_start = |d: &Daemon| -> String {
        health(d, "hc")["Log"].as_array().unwrap().last().unwrap()["Start"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for kill in [false, true] {
        let before = last_start(&d);
        if kill {
            d.kill9();
            d.start_again();
        } else {
            d.restart();
        }
        // Probing resumes (from `starting`, as dockerd does) and the container gets healthy.
        wait_for(LONG, || (last_start(&d) > before).then_some(()))
            .expect("probes after the daemon restart");
        wait_status(&d, "hc", "healthy");
        // The stopped container's health state survived.
        let g = health(&d, "gone");
        assert_eq!(status_of(&g), "unhealthy", "{g}");
        assert!(!g["Log"].as_array().unwrap().is_empty(), "{g}");
    }
}

const PY: &str = r#"
import sys, time, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
# docker-py sends null for the unset durations, as docker-compose 1.29 does.
ctr = c.containers.run("busybox", ["sleep", "1000"], detach=True, name="pyhealth",
                       healthcheck={"test": ["CMD", "true"], "interval": 100000000})
for _ in range(600):
    ctr.reload()
    st = ctr.attrs["State"].get("Health", {}).get("Status")
    if st == "healthy":
        break
    time.sleep(0.05)
assert st == "healthy", ctr.attrs["State"]
assert ctr.attrs["State"]["Health"]["Log"][-1]["ExitCode"] == 0
names = [x.name for x in c.containers.list(filters={"health": "healthy"})]
assert names == ["pyhealth"], names
ctr.remove(force=True)
# Right after start, before the first probe: what compose's service_healthy wait reads.
ctr = c.containers.create("busybox", ["sleep", "1000"], name="pystart",
                          healthcheck={"test": ["CMD", "true"], "interval": 30000000000})
ctr.start()
ctr.reload()
assert ctr.attrs["State"]["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}, \
    ctr.attrs["State"]
ctr.remove(force=True)
print("py-health-ok")
"#;

#[test]
fn docker_py_health() {
    let d = Daemon::start();
    d.load_busybox();
    let script = d.dir.join("health.py");
    std::fs::write(&script, PY).unwrap();
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(d.host())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("py-health-ok"),
        "docker-py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
