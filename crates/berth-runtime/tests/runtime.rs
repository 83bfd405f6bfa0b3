//! Root integration tests of the OCI runtime driver: exec (pipes, stdin, tty, resize, errors),
//! pause/resume, state.

mod common;

use berth_runtime::runtime::{exec_process, ExecOptions};
use berth_runtime::shim::ShimClient;
use berth_runtime::RuntimeError;
use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn running(f: &Fixture) -> (ShimClient, oci_spec::runtime::Process) {
    let so = f.spec_opts(&["sleep", "60"]);
    let spec = berth_runtime::spec::build(&so).unwrap();
    berth_runtime::spec::write_config(&f.bundle, &spec).unwrap();
    let c = f.spawn(&f.shim_options()).await;
    c.start().await.unwrap();
    (c, spec.process().clone().unwrap())
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

async fn finish(f: &Fixture, c: &ShimClient) {
    f.runtime.kill(&f.id, 9, false).await.unwrap();
    assert_eq!(wait_exit(c).await.exit_code, 137);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipes_and_exit_codes() {
    let f = Fixture::new("exec");
    let (c, base) = running(&f).await;

    let p = exec_process(
        &base,
        args(&["sh", "-c", "echo out; echo err >&2; exit 5"]),
        None,
        None,
        None,
    );
    let mut e = f
        .runtime
        .exec(&f.id, &p, &ExecOptions::default())
        .await
        .unwrap();
    let (mut so, mut se) = (e.stdout.take().unwrap(), e.stderr.take().unwrap());
    let (mut o, mut er) = (Vec::new(), Vec::new());
    so.read_to_end(&mut o).await.unwrap();
    se.read_to_end(&mut er).await.unwrap();
    assert_eq!(e.wait().await.unwrap(), 5);
    assert_eq!(o, b"out\n");
    assert_eq!(er, b"err\n");

    // stdin
    let p = exec_process(&base, args(&["cat"]), None, None, None);
    let mut e = f
        .runtime
        .exec(
            &f.id,
            &p,
            &ExecOptions {
                stdin: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut si = e.stdin.take().unwrap();
    si.write_all(b"piped\n").await.unwrap();
    drop(si);
    let mut o = Vec::new();
    e.stdout.take().unwrap().read_to_end(&mut o).await.unwrap();
    assert_eq!(o, b"piped\n");
    assert_eq!(e.wait().await.unwrap(), 0);

    // killed by a signal: 128+n
    let p = exec_process(&base, args(&["sh", "-c", "kill -9 $$"]), None, None, None);
    let mut e = f
        .runtime
        .exec(&f.id, &p, &ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(e.wait().await.unwrap(), 137);

    // no descriptor of ours leaks into an exec (3 is ls's own directory handle)
    let p = exec_process(&base, args(&["ls", "/proc/self/fd"]), None, None, None);
    let mut e = f
        .runtime
        .exec(&f.id, &p, &ExecOptions::default())
        .await
        .unwrap();
    let mut o = Vec::new();
    e.stdout.take().unwrap().read_to_end(&mut o).await.unwrap();
    assert_eq!(e.wait().await.unwrap(), 0);
    assert_eq!(String::from_utf8_lossy(&o), "0\n1\n2\n3\n");

    // env, cwd, user
    let user = berth_runtime::user::resolve(&f.rootfs, "www-data", &[]).unwrap();
    let p = exec_process(
        &base,
        args(&["sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g)"]),
        Some(args(&["FOO=bar", "PATH=/bin:/usr/bin"])),
        Some("/etc".into()),
        Some(&user),
    );
    let mut e = f
        .runtime
        .exec(&f.id, &p, &ExecOptions::default())
        .await
        .unwrap();
    let mut o = Vec::new();
    e.stdout.take().unwrap().read_to_end(&mut o).await.unwrap();
    assert_eq!(e.wait().await.unwrap(), 0);
    assert_eq!(String::from_utf8_lossy(&o), "bar /etc 33:33\n");

    // a missing command: the runtime's message, Docker's shape, exit 127 hint
    let p = exec_process(&base, args(&["nonexistent-cmd"]), None, None, None);
    let mut e = f
        .runtime
        .exec(&f.id, &p, &ExecOptions::default())
        .await
        .unwrap();
    let err = e.wait().await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("OCI runtime exec failed: "), "{msg}");
    assert!(msg.contains("executable file not found"), "{msg}");
    assert!(msg.ends_with(": unknown"), "{msg}");
    assert_eq!(err.exit_code_hint(), 127);

    finish(&f, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_tty_and_resize() {
    let f = Fixture::new("exectty");
    let (c, base) = running(&f).await;
    let p = exec_process(
        &base,
        args(&["sh", "-c", "stty size; while read x; do stty size; done"]),
        None,
        None,
        None,
    );
    let mut e = f
        .runtime
        .exec(
            &f.id,
            &p,
            &ExecOptions {
                tty: true,
                stdin: true,
                console_size: Some((10, 40)),
            },
        )
        .await
        .unwrap();
    let mut pty = e.pty().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&got).contains("10 40") {
        let n = match tokio::time::timeout(Duration::from_secs(20), pty.read(&mut buf)).await {
            Ok(r) => r.unwrap(),
            Err(_) => panic!(
                "no size in exec tty output: {:?}",
                String::from_utf8_lossy(&got)
            ),
        };
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    e.resize(33, 77).unwrap();
    // The runtime forwards the size asynchronously (SIGWINCH): ask again until it shows.
    let mut more = Vec::new();
    for _ in 0..100 {
        pty.write_all(b"x\r").await.unwrap();
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), pty.read(&mut buf)).await
        {
            more.extend_from_slice(&buf[..n]);
        }
        if String::from_utf8_lossy(&more).contains("33 77") {
            break;
        }
    }
    assert!(
        String::from_utf8_lossy(&more).contains("33 77"),
        "{:?}",
        String::from_utf8_lossy(&more)
    );
    // ^D ends the loop; read until the terminal closes.
    pty.write_all(b"\x04").await.unwrap();
    let drain = async {
        while let Ok(n) = pty.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), drain).await;
    assert_eq!(e.wait().await.unwrap(), 0);
    finish(&f, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_state_and_errors() {
    let f = Fixture::new("pause");
    let (c, _) = running(&f).await;
    // cgroup readers on the live container.
    let mode = berth_runtime::cgroups::detect_mode().unwrap();
    let cg = format!("/{}", f.id);
    assert!(berth_runtime::cgroups::pids_current(mode, &cg).unwrap() >= 1);
    assert!(berth_runtime::cgroups::memory_usage(mode, &cg).unwrap() > 0);
    assert!(berth_runtime::cgroups::cpu_usage_ns(mode, &cg).unwrap() > 0);
    assert_eq!(
        berth_runtime::cgroups::memory_limit(mode, &cg).unwrap(),
        None
    );
    assert_eq!(
        berth_runtime::cgroups::oom_kill_count(mode, &cg).unwrap(),
        0
    );
    f.runtime.pause(&f.id).await.unwrap();
    assert_eq!(f.runtime.state(&f.id).await.unwrap().status, "paused");
    f.runtime.resume(&f.id).await.unwrap();
    assert_eq!(f.runtime.state(&f.id).await.unwrap().status, "running");
    assert!(matches!(
        f.runtime.state("no-such-container").await,
        Err(RuntimeError::NotFound(_))
    ));
    assert!(matches!(
        f.runtime.kill("no-such-container", 9, false).await,
        Err(RuntimeError::NotFound(_))
    ));
    // A second start is refused by the shim.
    let err = c.start().await.unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
    finish(&f, &c).await;
}
