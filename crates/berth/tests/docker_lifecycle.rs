//! The container life cycle through the real Docker CLI 28 against `berth daemon`.

mod common;

use std::time::Duration;

use common::{wait_for, Daemon};

#[test]
fn run_attached_exit_codes_and_streams() {
    let d = Daemon::start();
    d.load_busybox();
    let o = d.docker(["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(o.ok(), "hello");
    let o = d.docker([
        "run",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status, 3);
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err\n"), "{}", o.stderr);
    // stdin with -i
    let o = d.docker_stdin(
        ["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        b"piped\n",
    );
    assert_eq!(o.ok(), "piped\ndone");
    // --rm removed the container; the non --rm one stays
    let ps = d.docker(["ps", "-a", "--format", "{{.Status}}"]).ok();
    assert_eq!(ps.lines().count(), 1, "{ps}");
    assert!(ps.starts_with("Exited (3)"), "{ps}");
}

#[test]
fn run_exit_codes_for_start_failures() {
    let d = Daemon::start();
    d.load_busybox();
    let o = d.docker(["run", "--rm", "busybox", "/nonexistent-binary"]);
    assert_eq!(o.status, 127, "{}", o.stderr);
    assert!(
        o.stderr.contains("no such file or directory"),
        "{}",
        o.stderr
    );
    let o = d.docker(["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(o.status, 126, "{}", o.stderr);
    assert!(o.stderr.contains("permission denied"), "{}", o.stderr);
    // A daemon-side validation error: 125.
    let o = d.docker(["run", "--rm", "-m", "1k", "busybox", "true"]);
    assert_eq!(o.status, 125, "{}", o.stderr);
    assert!(
        o.stderr.contains("Minimum memory limit allowed is 6MB"),
        "{}",
        o.stderr
    );
    // A failed start leaves the container "created" with the failure's exit code.
    let id = d.docker(["create", "busybox", "/nope"]).ok();
    let o = d.docker(["start", &id]);
    assert_ne!(o.status, 0);
    let st = d
        .docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &id,
        ])
        .ok();
    assert_eq!(st, "created 127");
}

#[test]
fn detached_ps_logs_exec_stop_rm() {
    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .docker([
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.2; done",
        ])
        .ok();
    assert_eq!(id.len(), 64);
    let ps = d
        .docker([
            "ps",
            "--format",
            "{{.ID}} {{.Names}} {{.Image}} {{.Status}}",
        ])
        .ok();
    assert!(
        ps.starts_with(&format!("{} web busybox Up", &id[..12])),
        "{ps}"
    );
    wait_for(Duration::from_secs(10), || {
        let l = d.docker(["logs", "web"]).stdout;
        l.contains("line3").then_some(())
    })
    .expect("logs");
    let tail = d.docker(["logs", "--tail", "2", "-t", "web"]).ok();
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert!(
        tail.lines()
            .all(|l| l.len() > 31 && &l[4..5] == "-" && l.contains("Z line")),
        "{tail}"
    );
    // exec: output, exit code, stdin, env, workdir, user
    assert!(d.docker(["exec", "web", "ps"]).ok().contains("sleep"));
    assert_eq!(d.docker(["exec", "web", "sh", "-c", "exit 5"]).status, 5);
    assert_eq!(
        d.docker_stdin(["exec", "-i", "web", "cat"], b"via stdin")
            .ok(),
        "via stdin"
    );
    assert_eq!(
        d.docker(["exec", "-e", "FOO=bar", "web", "sh", "-c", "echo $FOO"])
            .ok(),
        "bar"
    );
    assert_eq!(d.docker(["exec", "-w", "/tmp", "web", "pwd"]).ok(), "/tmp");
    assert_eq!(
        d.docker(["exec", "-u", "nobody", "web", "id", "-u"]).ok(),
        "65534"
    );
    assert_eq!(d.docker(["exec", "web", "/nonexistent"]).status, 127);
    // rm of a running container: 409 with Docker's text
    let o = d.docker(["rm", "web"]);
    assert_eq!(o.status, 1);
    assert!(
        o.stderr.contains(&format!("You cannot remove a running container {id}. Stop the container before attempting removal or force remove")),
        "{}",
        o.stderr
    );
    // stop: sh ignores SIGTERM as PID 1, so the timeout ends in SIGKILL (137)
    assert_eq!(d.docker(["stop", "-t", "1", "web"]).ok(), "web");
    let st = d
        .docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}",
            "web",
        ])
        .ok();
    assert_eq!(st, "exited 137 false");
    let ps = d.docker(["ps", "-a", "--format", "{{.Status}}"]).ok();
    assert!(ps.starts_with("Exited (137)"), "{ps}");
    // stop of a stopped container is a no-op success (304)
    assert_eq!(d.docker(["stop", "web"]).ok(), "web");
    assert_eq!(d.docker(["rm", "web"]).ok(), "web");
    assert_eq!(d.docker(["ps", "-aq"]).ok(), "");
}

#[test]
fn logs_follow_ends_when_the_container_stops() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "-d",
        "--name",
        "ff",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo n$i; sleep 0.3; done",
    ])
    .ok();
    let o = d.docker(["logs", "-f", "ff"]);
    assert_eq!(o.ok(), "n1\nn2\nn3");
}

#[test]
fn kill_restart_wait_pause_top_rename_port() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "-d",
        "--name",
        "kk",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 9' USR1; while true; do sleep 0.1; done",
    ])
    .ok();
    assert_eq!(d.docker(["kill", "-s", "USR1", "kk"]).ok(), "kk");
    assert_eq!(d.docker(["wait", "kk"]).ok(), "9");
    let o = d.docker(["kill", "kk"]);
    assert_eq!(o.status, 1);
    assert!(o.stderr.contains("is not running"), "{}", o.stderr);
    assert_eq!(d.docker(["restart", "-t", "1", "kk"]).ok(), "kk");
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Running}}", "kk"]).ok(),
        "true"
    );
    assert_eq!(d.docker(["pause", "kk"]).ok(), "kk");
    let st = d.docker(["ps", "--format", "{{.Status}}"]).ok();
    assert!(st.ends_with("(Paused)"), "{st}");
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "kk"])
            .ok(),
        "paused true"
    );
    assert_eq!(d.docker(["unpause", "kk"]).ok(), "kk");
    let top = d.docker(["top", "kk"]).ok();
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 0.1") || top.contains("sh -c"), "{top}");
    assert_eq!(d.docker(["rename", "kk", "k2"]).ok(), "");
    assert_eq!(d.docker(["inspect", "-f", "{{.Name}}", "k2"]).ok(), "/k2");
    assert_eq!(d.docker(["port", "k2"]).ok(), "");
    assert_eq!(d.docker(["kill", "k2"]).ok(), "k2");
    assert_eq!(d.docker(["wait", "k2"]).ok(), "137");
}

#[test]
fn inspect_fields_and_files() {
    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .docker([
            "run",
            "-d",
            "--name",
            "insp",
            "-e",
            "A=1",
            "-l",
            "x=y",
            "--add-host",
            "db:10.1.2.3",
            "busybox",
            "sleep",
            "60",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&d.docker(["inspect", "insp"]).ok()).unwrap();
    let c = &v[0];
    assert_eq!(c["Id"], id.as_str());
    assert_eq!(c["Name"], "/insp");
    assert_eq!(c["Path"], "sleep");
    assert_eq!(c["Args"], serde_json::json!(["60"]));
    assert_eq!(c["State"]["Status"], "running");
    assert!(c["State"]["Pid"].as_i64().unwrap() > 0);
    assert_eq!(c["Driver"], "overlay2");
    assert_eq!(c["Platform"], "linux");
    assert_eq!(c["HostConfig"]["NetworkMode"], "default");
    assert_eq!(c["Config"]["Hostname"], &id[..12]);
    assert_eq!(c["Config"]["Labels"]["x"], "y");
    assert!(c["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "A=1"));
    assert!(c["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().starts_with("PATH=")));
    assert_eq!(c["HostConfig"]["LogConfig"]["Type"], "json-file");
    for k in ["ResolvConfPath", "HostnamePath", "HostsPath", "LogPath"] {
        let p = c[k].as_str().unwrap();
        assert!(std::path::Path::new(p).exists(), "{k} {p}");
    }
    assert_eq!(d.docker(["exec", "insp", "hostname"]).ok(), &id[..12]);
    assert_eq!(
        d.docker(["exec", "insp", "cat", "/etc/hostname"]).ok(),
        &id[..12]
    );
    let hosts = d.docker(["exec", "insp", "cat", "/etc/hosts"]).ok();
    assert!(hosts.contains("10.1.2.3\tdb"), "{hosts}");
    assert!(d
        .docker(["exec", "insp", "cat", "/etc/resolv.conf"])
        .ok()
        .contains("nameserver"));
    let mounts = d.docker(["exec", "insp", "cat", "/proc/mounts"]).ok();
    for f in ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"] {
        assert!(
            mounts.contains(&format!(" {f} ")),
            "{f} not mounted: {mounts}"
        );
    }
    // index / range / json in templates
    assert_eq!(
        d.docker(["inspect", "-f", "{{index .Config.Labels \"x\"}}", "insp"])
            .ok(),
        "y"
    );
    assert_eq!(
        d.docker(["inspect", "-f", "{{json .Args}}", "insp"]).ok(),
        "[\"60\"]"
    );
    d.docker(["rm", "-f", "insp"]).ok();
}

#[test]
fn errors_have_dockers_wording() {
    let d = Daemon::start();
    d.load_busybox();
    let o = d.docker(["inspect", "doesnotexist"]);
    assert_eq!(o.status, 1);
    assert!(
        o.stderr.contains("No such object: doesnotexist"),
        "{}",
        o.stderr
    );
    let o = d.docker(["stop", "doesnotexist"]);
    assert!(
        o.stderr.contains("No such container: doesnotexist"),
        "{}",
        o.stderr
    );
    d.docker(["run", "-d", "--name", "dup", "busybox", "sleep", "30"])
        .ok();
    let o = d.docker(["run", "-d", "--name", "dup", "busybox", "true"]);
    assert_eq!(o.status, 125);
    assert!(
        o.stderr
            .contains("Conflict. The container name \"/dup\" is already in use by container"),
        "{}",
        o.stderr
    );
    let o = d.docker(["create", "--name", "bad name!", "busybox"]);
    assert!(
        o.stderr.contains(
            "Invalid container name (bad name!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ),
        "{}",
        o.stderr
    );
    let o = d.docker(["create", "nosuchimage-tr:1.0"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr
            .contains("Unable to find image 'nosuchimage-tr:1.0' locally"),
        "{}",
        o.stderr
    );
    let o = d.docker(["exec", "dup", "true"]);
    assert_eq!(o.status, 0);
    d.docker(["kill", "dup"]).ok();
    let o = d.docker(["exec", "dup", "true"]);
    assert!(o.stderr.contains("is not running"), "{}", o.stderr);
    let o = d.docker(["rm", "-f", "doesnotexist"]);
    assert_eq!(o.status, 0, "docker rm -f of a missing container exits 0");
    // Malformed JSON and bad filters through the raw API.
    let (st, body) = d.raw(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        b"{not json",
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("message"), "{body}");
    let (st, body) = d.raw(
        "GET",
        "/v1.43/containers/json?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
        None,
        b"",
    );
    assert_eq!(st, 400);
    assert!(body.contains("Invalid filter 'bogus'"), "{body}");
    let (st, body) = d.raw("GET", "/v1.43/containers/nope/json", None, b"");
    assert_eq!(
        (st, body.trim()),
        (404, "{\"message\":\"No such container: nope\"}")
    );
}

#[test]
fn ps_filters_and_formats() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run", "-d", "--name", "a1", "-l", "role=web", "busybox", "sleep", "30",
    ])
    .ok();
    d.docker([
        "run", "--name", "b1", "-l", "role=job", "busybox", "sh", "-c", "exit 2",
    ]);
    d.docker(["create", "--name", "c1", "busybox"]).ok();
    let names = |args: &[&str]| {
        let mut v: Vec<String> = d
            .docker([&["ps", "--format", "{{.Names}}"], args].concat())
            .ok()
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v.join(",")
    };
    assert_eq!(names(&[]), "a1");
    assert_eq!(names(&["-a"]), "a1,b1,c1");
    assert_eq!(names(&["-a", "--filter", "label=role=job"]), "b1");
    assert_eq!(names(&["-a", "--filter", "status=exited"]), "b1");
    assert_eq!(names(&["--filter", "status=created"]), "c1");
    assert_eq!(names(&["-a", "--filter", "exited=2"]), "b1");
    assert_eq!(names(&["-a", "--filter", "name=^/a"]), "a1");
    assert_eq!(names(&["-a", "--filter", "ancestor=busybox"]), "a1,b1,c1");
    assert_eq!(names(&["-n", "1"]), "c1");
    assert_eq!(names(&["-l"]), "c1");
    let q = d.docker(["ps", "-aq"]).ok();
    assert_eq!(q.lines().count(), 3);
    assert!(q.lines().all(|l| l.len() == 12));
    let table = d
        .docker(["ps", "--format", "table {{.ID}}\t{{.Names}}"])
        .ok();
    assert!(table.starts_with("CONTAINER ID   NAMES"), "{table}");
    let o = d.docker(["ps", "--filter", "status=bogus"]);
    assert_ne!(o.status, 0);
}

#[test]
fn daemon_restart_and_kill9_keep_containers() {
    let mut d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; i=0; while true; do i=$((i+1)); echo t$i; sleep 0.2; done",
    ])
    .ok();
    d.docker([
        "run",
        "-d",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 42",
    ])
    .ok();
    let pid_before = d.docker(["inspect", "-f", "{{.State.Pid}}", "live"]).ok();
    d.kill9();
    // "short" exits while no daemon is running.
    std::thread::sleep(Duration::from_millis(1800));
    d.start_again();
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "live"])
            .ok(),
        format!("running {pid_before}")
    );
    assert_eq!(
        d.docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "short"
        ])
        .ok(),
        "exited 42"
    );
    assert!(d
        .docker(["ps", "--format", "{{.Names}}"])
        .ok()
        .contains("live"));
    assert_eq!(
        d.docker(["exec", "live", "echo", "adopted"]).ok(),
        "adopted"
    );
    let n_before = d.docker(["logs", "live"]).ok().lines().count();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        d.docker(["logs", "live"]).ok().lines().count() > n_before,
        "logs keep growing"
    );
    // A graceful restart, then stop and wait work on the re-adopted container.
    d.restart();
    let waiter = {
        let mut c = d.docker_command();
        c.args(["wait", "live"])
            .stdout(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    assert_eq!(d.docker(["stop", "live"]).ok(), "live");
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
    // logs -f of the restarted container ends
    d.docker(["start", "live"]).ok();
    d.kill9();
    d.start_again();
    let mut f = d.docker_command();
    f.args(["logs", "-f", "--tail", "1", "live"])
        .stdout(std::process::Stdio::piped());
    let child = f.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.docker(["stop", "live"]).ok();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}

#[test]
fn remove_force_and_auto_remove() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker(["run", "-d", "--name", "xx", "busybox", "sleep", "60"])
        .ok();
    assert_eq!(d.docker(["rm", "-f", "xx"]).ok(), "xx");
    assert_eq!(d.docker(["ps", "-aq"]).ok(), "");
    // --rm with -d: removed once it exits
    d.docker([
        "run",
        "-d",
        "--rm",
        "--name",
        "yy",
        "busybox",
        "sh",
        "-c",
        "sleep 0.3",
    ])
    .ok();
    wait_for(Duration::from_secs(10), || {
        d.docker(["ps", "-aq"]).ok().is_empty().then_some(())
    })
    .expect("auto-removed");
    // No runtime state and no cgroup outlives the containers.
    wait_for(Duration::from_secs(10), || {
        let left: Vec<_> = std::fs::read_dir(d.exec_root.join("runc"))
            .map(|r| r.flatten().filter(|e| e.path().is_dir()).collect())
            .unwrap_or_default();
        left.is_empty().then_some(())
    })
    .expect("runc state left behind");
    let rel = d.cgroup_parent.trim_start_matches('/');
    for ctrl in ["memory", "pids", "cpu", "freezer"] {
        let dir = std::path::Path::new("/sys/fs/cgroup").join(ctrl).join(rel);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let subdirs: Vec<_> = rd
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name())
                .collect();
            assert!(
                subdirs.is_empty(),
                "cgroups left in {}: {subdirs:?}",
                dir.display()
            );
        }
    }
    // Nothing is left mounted under the data root.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!("{}/overlay2", d.data_root.display())),
        "stale mounts"
    );
}

#[test]
fn fifty_concurrent_runs() {
    let d = Daemon::start();
    d.load_busybox();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let mut c = d.docker_command();
            c.args(["run", "--rm", "busybox", "echo", &format!("n{i}")]);
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.join().unwrap();
        assert!(
            out.status.success(),
            "run {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("n{i}"));
    }
    wait_for(Duration::from_secs(20), || {
        d.docker(["ps", "-aq"]).ok().is_empty().then_some(())
    })
    .expect("all removed");
}
