//! Root integration tests: real containers under runc, driven through the shim.

mod common;

use berth_runtime::shim::{read_exit_file, LogConfig, ShimClient};
use berth_runtime::spec::{Resources, SeccompMode, Ulimit};
use berth_runtime::RuntimeError;
use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_hello_log_and_framed_attach() {
    let f = Fixture::new("echo");
    f.write_spec(&f.spec_opts(&["sh", "-c", "echo hello; echo oops >&2"]));
    let c = f.spawn(&f.shim_options()).await;
    assert!(c.init_pid() > 0);
    assert_eq!(c.info().await.unwrap().state, "created");
    {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let m = std::fs::metadata(f.bundle.join("shim.sock")).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let pid: i32 = std::fs::read_to_string(f.bundle.join("shim.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pid, c.shim_pid());
    }
    // Attach before start: nothing may be lost.
    let a = c.attach(false, true, true).await.unwrap();
    assert!(!a.tty());
    c.start().await.unwrap();
    let (out, err) = read_demux(a).await;
    assert_eq!(out, b"hello\n");
    assert_eq!(err, b"oops\n");
    let exit = wait_exit(&c).await;
    assert_eq!(exit.exit_code, 0);
    assert!(!exit.oom_killed);
    assert!(exit.error.is_none());
    let log = f.log_text();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    let entries: Vec<_> = lines
        .iter()
        .map(|l| berth_runtime::logs::parse_line(l.as_bytes()).unwrap())
        .collect();
    assert!(entries
        .iter()
        .any(|e| e.line == b"hello\n" && e.stream == berth_runtime::stdcopy::StdStream::Stdout));
    assert!(entries
        .iter()
        .any(|e| e.line == b"oops\n" && e.stream == berth_runtime::stdcopy::StdStream::Stderr));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"")));
    // The shim cleaned up after itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.bundle.join("shim.pid").exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!f.bundle.join("shim.sock").exists());
    assert_eq!(read_exit_file(&f.bundle).unwrap().exit_code, 0);
    // runc no longer knows the container.
    assert!(matches!(
        f.runtime.state(&f.id).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes() {
    let f = Fixture::new("exit3");
    f.write_spec(&f.spec_opts(&["sh", "-c", "exit 3"]));
    let c = f.spawn(&f.shim_options()).await;
    c.start().await.unwrap();
    assert_eq!(wait_exit(&c).await.exit_code, 3);

    // kill -9 from outside (what `docker kill` does): 128 + 9.
    let g = Fixture::new("kill9");
    g.write_spec(&g.spec_opts(&["sleep", "30"]));
    let c = g.spawn(&g.shim_options()).await;
    c.start().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, "running");
    let st = g.runtime.state(&g.id).await.unwrap();
    assert_eq!(st.status, "running");
    assert_eq!(st.pid, c.init_pid());
    assert_eq!(g.runtime.ps(&g.id).await.unwrap(), vec![c.init_pid()]);
    g.runtime.kill(&g.id, 9, false).await.unwrap();
    assert_eq!(wait_exit(&c).await.exit_code, 137);
    // SIGTERM to a shell that traps nothing but is pid 1 is ignored; a killed child is not:
    let h = Fixture::new("sigchild");
    h.write_spec(&h.spec_opts(&["sh", "-c", "sleep 30 & kill -15 $!; wait $!; exit $?"]));
    let c = h.spawn(&h.shim_options()).await;
    c.start().await.unwrap();
    assert_eq!(wait_exit(&c).await.exit_code, 143);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_failure_reports_runtime_message_and_leaves_no_shim() {
    let f = Fixture::new("nobin");
    f.write_spec(&f.spec_opts(&["/nonexistent-binary"]));
    let err = berth_runtime::shim::spawn(&f.shim_options())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "OCI runtime create failed: runc create failed: unable to start container process: exec: \"/nonexistent-binary\": stat /nonexistent-binary: no such file or directory: unknown"
    );
    assert_eq!(err.exit_code_hint(), 127);
    assert!(!f.bundle.join("shim.sock").exists());
    assert!(!f.bundle.join("shim.pid").exists());
    assert!(f.runtime.state(&f.id).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_once_pipes_and_closes_stdin() {
    let f = Fixture::new("stdin");
    f.write_spec(&f.spec_opts(&["sh", "-c", "cat; echo done"]));
    let mut o = f.shim_options();
    o.open_stdin = true;
    o.stdin_once = true;
    let c = f.spawn(&o).await;
    let mut a = c.attach(true, true, true).await.unwrap();
    c.start().await.unwrap();
    a.write_all(b"line one\nline two\n").await.unwrap();
    a.shutdown().await.unwrap();
    let (out, _) = read_demux(a).await;
    assert_eq!(out, b"line one\nline two\ndone\n");
    assert_eq!(wait_exit(&c).await.exit_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_stdin_once_a_client_eof_keeps_stdin_open() {
    let f = Fixture::new("stdin2");
    f.write_spec(&f.spec_opts(&["sh", "-c", "read a; read b; echo \"$a-$b\""]));
    let mut o = f.shim_options();
    o.open_stdin = true;
    let c = f.spawn(&o).await;
    let out = c.attach(false, true, false).await.unwrap();
    c.start().await.unwrap();
    let mut first = c.attach(true, false, false).await.unwrap();
    first.write_all(b"x\n").await.unwrap();
    first.shutdown().await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = c.attach(true, false, false).await.unwrap();
    second.write_all(b"y\n").await.unwrap();
    let (o, _) = read_demux(out).await;
    assert_eq!(o, b"x-y\n");
    assert_eq!(wait_exit(&c).await.exit_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_raw_output_and_resize() {
    let f = Fixture::new("tty");
    let mut so = f.spec_opts(&["sh", "-c", "stty size; read x; stty size"]);
    so.tty = true;
    so.console_size = Some((24, 80));
    f.write_spec(&so);
    let mut o = f.shim_options();
    o.tty = true;
    o.open_stdin = true;
    o.console_size = Some((24, 80));
    let c = f.spawn(&o).await;
    let mut a = c.attach(true, true, true).await.unwrap();
    assert!(a.tty());
    c.start().await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("24 80") {
        let n = tokio::time::timeout(Duration::from_secs(20), a.read(&mut buf))
            .await
            .expect("no tty output")
            .unwrap();
        assert!(
            n > 0,
            "eof before size: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    c.resize(30, 100).await.unwrap();
    a.write_all(b"go\r").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), a.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    got.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("30 100"), "{text:?}");
    // Raw tty bytes: no stdcopy header, CRLF line endings.
    assert!(text.starts_with("24 80\r\n"), "{text:?}");
    assert_eq!(wait_exit(&c).await.exit_code, 0);
    // tty output is logged as stdout.
    assert!(
        f.log_text()
            .contains("\"log\":\"24 80\\r\\n\",\"stream\":\"stdout\""),
        "{}",
        f.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readoption_after_client_is_dropped() {
    let f = Fixture::new("adopt");
    f.write_spec(&f.spec_opts(&["sh", "-c", "sleep 1; echo adopted; exit 4"]));
    let c = f.spawn(&f.shim_options()).await;
    c.start().await.unwrap();
    let shim_pid = c.shim_pid();
    drop(c);
    let again = ShimClient::connect(&f.bundle).await.unwrap();
    assert_eq!(again.shim_pid(), shim_pid);
    assert_eq!(again.info().await.unwrap().state, "running");
    let a = again.attach(false, true, true).await.unwrap();
    let (out, _) = read_demux(a).await;
    assert_eq!(out, b"adopted\n");
    assert_eq!(wait_exit(&again).await.exit_code, 4);
    // After the shim is gone: connect fails with the recorded exit, wait still answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.bundle.join("shim.pid").exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match ShimClient::connect(&f.bundle).await {
        Err(RuntimeError::ShimGone { exit: Some(e), .. }) => assert_eq!(e.exit_code, 4),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(again.wait().await.unwrap().exit_code, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_while_nobody_is_connected_leaves_exit_json() {
    let f = Fixture::new("alone");
    f.write_spec(&f.spec_opts(&["sh", "-c", "echo bye; exit 7"]));
    let c = f.spawn(&f.shim_options()).await;
    c.start().await.unwrap();
    let keep = c.clone();
    drop(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(e) = read_exit_file(&f.bundle) {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no exit.json");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.exit_code, 7);
    assert!(!exit.oom_killed);
    assert!(f.log_text().contains("\"log\":\"bye\\n\""));
    assert_eq!(wait_exit(&keep).await, exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kill_is_detected() {
    let f = Fixture::new("oom");
    let mut so = f.spec_opts(&[
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    so.resources = Resources {
        memory: 8 * 1024 * 1024,
        memory_swap: 8 * 1024 * 1024,
        ..Default::default()
    };
    f.write_spec(&so);
    let c = f.spawn(&f.shim_options()).await;
    c.start().await.unwrap();
    let exit = wait_exit(&c).await;
    assert_eq!(exit.exit_code, 137, "{:?} log: {}", exit, f.log_text());
    assert!(exit.oom_killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pids_limit_stops_a_fork_bomb() {
    let f = Fixture::new("pids");
    let mut so = f.spec_opts(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo finished",
    ]);
    so.resources = Resources {
        pids_limit: Some(8),
        ..Default::default()
    };
    f.write_spec(&so);
    let c = f.spawn(&f.shim_options()).await;
    let a = c.attach(false, true, true).await.unwrap();
    c.start().await.unwrap();
    let (out, err) = read_demux(a).await;
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("can't fork"),
        "stderr: {err:?} stdout: {:?}",
        String::from_utf8_lossy(&out)
    );
    wait_exit(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ulimits_apply_and_host_hard_limit_is_enforced() {
    let f = Fixture::new("ulimit");
    let mut so = f.spec_opts(&["sh", "-c", "ulimit -n; ulimit -Hn"]);
    so.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 100,
        hard: 200,
    }];
    f.write_spec(&so);
    let c = f.spawn(&f.shim_options()).await;
    let a = c.attach(false, true, true).await.unwrap();
    c.start().await.unwrap();
    let (out, _) = read_demux(a).await;
    assert_eq!(out, b"100\n200\n");
    wait_exit(&c).await;
    // Raising above the daemon's hard limit is refused at spec time.
    let mut host = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY (test): getrlimit into a local struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut host) };
    so.ulimits[0].hard = host.rlim_max as i64 + 1;
    so.ulimits[0].soft = 10;
    let err = berth_runtime::spec::build(&so).unwrap_err();
    assert!(err.to_string().contains("hard limit"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_seccomp_blocks_namespace_creation() {
    let f = Fixture::new("seccomp");
    let so = f.spec_opts(&[
        "sh",
        "-c",
        "unshare -n true; echo rc=$?; ls / >/dev/null && echo ls-ok",
    ]);
    assert_eq!(so.seccomp, SeccompMode::Default);
    f.write_spec(&so);
    let c = f.spawn(&f.shim_options()).await;
    let a = c.attach(false, true, true).await.unwrap();
    c.start().await.unwrap();
    let (out, err) = read_demux(a).await;
    let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    assert!(err.contains("Operation not permitted"), "{err:?}");
    assert!(out.contains("rc=1"), "{out:?}");
    assert!(out.contains("ls-ok"), "{out:?}");
    wait_exit(&c).await;

    // With CAP_SYS_ADMIN the same call is allowed.
    let g = Fixture::new("seccomp-admin");
    let mut so = g.spec_opts(&["sh", "-c", "unshare -n true; echo rc=$?"]);
    so.cap_add = vec!["SYS_ADMIN".into()];
    g.write_spec(&so);
    let c = g.spawn(&g.shim_options()).await;
    let a = c.attach(false, true, true).await.unwrap();
    c.start().await.unwrap();
    let (out, _) = read_demux(a).await;
    assert_eq!(String::from_utf8_lossy(&out), "rc=0\n");
    wait_exit(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_attach_client_never_blocks_the_container() {
    let f = Fixture::new("slow");
    f.write_spec(&f.spec_opts(&[
        "sh",
        "-c",
        "head -c 6000000 /dev/zero | tr '\\0' x; echo; echo end",
    ]));
    let c = f.spawn(&f.shim_options()).await;
    // Attached but never read.
    let _stuck = c.attach(false, true, true).await.unwrap();
    c.start().await.unwrap();
    let exit = wait_exit(&c).await;
    assert_eq!(exit.exit_code, 0);
    let log = f.log_text();
    assert!(log.contains("\"log\":\"end\\n\""), "log tail missing");
    // 6 MB in 16 KiB partial entries plus the newline entry and "end".
    let entries = berth_runtime::logs::read(&f.log, &Default::default()).unwrap();
    let total: usize = entries.iter().map(|e| e.line.len()).sum();
    assert_eq!(total, 6_000_000 + 1 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rotation_through_the_shim() {
    let f = Fixture::new("rotate");
    f.write_spec(&f.spec_opts(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); done",
    ]));
    let mut o = f.shim_options();
    o.log = Some(LogConfig {
        path: f.log.clone(),
        max_size: Some(500),
        max_file: 3,
        attrs: Default::default(),
    });
    let c = f.spawn(&o).await;
    c.start().await.unwrap();
    wait_exit(&c).await;
    assert!(berth_runtime::logs::rotated_name(&f.log, 1).exists());
    assert!(berth_runtime::logs::rotated_name(&f.log, 2).exists());
    assert!(!berth_runtime::logs::rotated_name(&f.log, 3).exists());
    let entries = berth_runtime::logs::read(&f.log, &Default::default()).unwrap();
    assert_eq!(entries.last().unwrap().line, b"line-59\n");
    assert!(entries.len() < 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_runs_tini_as_pid1() {
    let tini = std::path::Path::new("/usr/bin/tini-static");
    if !tini.exists() {
        panic!("tini-static is required (apt-get install tini)");
    }
    let f = Fixture::new("init");
    let mut so = f.spec_opts(&["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 5"]);
    so.init = Some(tini.into());
    f.write_spec(&so);
    let c = f.spawn(&f.shim_options()).await;
    let a = c.attach(false, true, true).await.unwrap();
    c.start().await.unwrap();
    let (out, _) = read_demux(a).await;
    assert!(
        String::from_utf8_lossy(&out).starts_with("/sbin/docker-init -- sh"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(wait_exit(&c).await.exit_code, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_rss_is_small() {
    let f = Fixture::new("rss");
    f.write_spec(&f.spec_opts(&["sleep", "30"]));
    let c = f.spawn(&f.shim_options()).await;
    c.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.shim_pid())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let rollup =
        std::fs::read_to_string(format!("/proc/{}/smaps_rollup", c.shim_pid())).unwrap_or_default();
    let field = |name: &str| -> u64 {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    println!(
        "idle shim RSS: {rss_kb} KiB, PSS: {} KiB, private: {} KiB (dirty {} KiB)",
        field("Pss:"),
        field("Private_Clean:") + field("Private_Dirty:"),
        field("Private_Dirty:")
    ); // Where the resident pages are (shared library text counts fully in RSS).
    let smaps =
        std::fs::read_to_string(format!("/proc/{}/smaps", c.shim_pid())).unwrap_or_default();
    let mut by_map: std::collections::BTreeMap<String, u64> = Default::default();
    let mut current = String::new();
    for line in smaps.lines() {
        if let Some(kb) = line.strip_prefix("Rss:") {
            let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            *by_map.entry(current.clone()).or_default() += kb;
        } else if line.split_whitespace().next().is_some_and(|w| {
            w.contains('-') && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        }) {
            current = line
                .split_whitespace()
                .nth(5)
                .unwrap_or("[anon]")
                .to_string();
        }
    }
    for (name, kb) in by_map.iter().filter(|(_, kb)| **kb > 0) {
        println!("  {kb:>6} KiB  {name}");
    }
    assert!(rss_kb < 4096, "shim RSS {rss_kb} KiB");
    f.runtime.kill(&f.id, 9, false).await.unwrap();
    assert_eq!(wait_exit(&c).await.exit_code, 137);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_survives_kill_9_of_its_daemon() {
    let f = Fixture::new("orphan");
    f.write_spec(&f.spec_opts(&["sh", "-c", "read x; echo after-daemon-death; exit 9"]));
    // A stand-in daemon process spawns the shim, then dies by SIGKILL.
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_berth-runtime-test-daemon"))
        .arg(env!("CARGO_BIN_EXE_berth-runtime-test-shim"))
        .arg(&f.id)
        .arg(&f.bundle)
        .arg(&f.runtime.path)
        .arg(&f.runtime.root)
        .arg(&f.log)
        .arg("open-stdin")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(daemon.stdout.take().unwrap());
        r.read_line(&mut line).unwrap();
    }
    assert!(line.starts_with("spawned "), "{line}");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    // A "new daemon" re-adopts the shim and drives the container to the end.
    let c = ShimClient::connect(&f.bundle).await.unwrap();
    assert_eq!(c.info().await.unwrap().state, "created");
    let mut a = c.attach(true, true, false).await.unwrap();
    c.start().await.unwrap();
    a.write_all(b"go\n").await.unwrap();
    let (out, _) = read_demux(a).await;
    assert_eq!(out, b"after-daemon-death\n");
    assert_eq!(wait_exit(&c).await.exit_code, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fds_leak_into_the_container() {
    let f = Fixture::new("fds");
    f.write_spec(&f.spec_opts(&["ls", "/proc/self/fd"]));
    let c = f.spawn(&f.shim_options()).await;
    let a = c.attach(false, true, true).await.unwrap();
    c.start().await.unwrap();
    let (out, err) = read_demux(a).await;
    // 0-2 are stdio, 3 is ls's own directory handle.
    assert_eq!(
        String::from_utf8_lossy(&out),
        "0\n1\n2\n3\n",
        "{}",
        String::from_utf8_lossy(&err)
    );
    wait_exit(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_stdin_stays_open_when_the_stdin_once_client_leaves() {
    // Docker closes stdin on the StdinOnce client's EOF only without a terminal: a detached
    // `run -it` session must keep its shell.
    let f = Fixture::new("ttyeof");
    let mut so = f.spec_opts(&["sh"]);
    so.tty = true;
    f.write_spec(&so);
    let mut o = f.shim_options();
    o.tty = true;
    o.open_stdin = true;
    o.stdin_once = true;
    let c = f.spawn(&o).await;
    let mut a = c.attach(true, true, false).await.unwrap();
    c.start().await.unwrap();
    a.write_all(b"echo first\r").await.unwrap();
    a.shutdown().await.unwrap();
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.info().await.unwrap().state, "running");
    // A new client can still type into the same shell.
    let mut b = c.attach(true, true, false).await.unwrap();
    b.write_all(b"echo second-$((40+2)); exit 3\r")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), b.read_to_end(&mut out))
        .await
        .expect("tty stream did not end")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("second-42"), "{text:?}");
    assert_eq!(wait_exit(&c).await.exit_code, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_create_holds_output_until_start() {
    let f = Fixture::new("held");
    // The process runs (and even exits) before anyone attached; nothing may be lost.
    f.write_spec(&f.spec_opts(&["sh", "-c", "echo early; echo err-early >&2; exit 6"]));
    let mut opts = f.shim_options();
    opts.start_at_create = true;
    let c = f.spawn(&opts).await;
    // The runtime already started it (it may even have exited by now).
    assert_ne!(c.info().await.unwrap().state, "created");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Not released yet: no exit reported, the log is still empty.
    assert!(read_exit_file(&f.bundle).is_none());
    assert_eq!(f.log_text(), "");
    let a = c.attach(false, true, true).await.unwrap();
    c.start().await.unwrap();
    let (out, err) = read_demux(a).await;
    assert_eq!(out, b"early\n");
    assert_eq!(err, b"err-early\n");
    let exit = wait_exit(&c).await;
    assert_eq!(exit.exit_code, 6);
    // The runtime's cleanup follows the exit report.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.bundle.join("shim.pid").exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        f.runtime.state(&f.id).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_create_reports_exec_failures() {
    let f = Fixture::new("heldfail");
    f.write_spec(&f.spec_opts(&["/nonexistent-binary"]));
    let mut opts = f.shim_options();
    opts.start_at_create = true;
    let e = berth_runtime::shim::spawn(&opts).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("no such file or directory"), "{msg}");
    assert_eq!(e.exit_code_hint(), 127);
}
