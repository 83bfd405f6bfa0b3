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
