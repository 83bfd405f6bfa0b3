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
