//! `run -it` and `exec -it` through a real pty: the Docker CLI runs inside tmux, keys are typed
//! with `send-keys`, the window is resized, the screen is read with `capture-pane`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{wait_for, Daemon};

struct Tmux {
    session: String,
    socket: String,
}

impl Tmux {
    fn start(d: &Daemon, cmd: &str) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("berth-{}-{n}", d.dir.file_name().unwrap().to_string_lossy());
        let socket = d
            .dir
            .join(format!("tmux-{n}.sock"))
            .to_string_lossy()
            .into_owned();
        let full = format!(
            "DOCKER_HOST={} DOCKER_CONFIG={} {cmd}; echo EXIT=$?; sleep 60",
            d.host(),
            d.dir.join("docker-config").display()
        );
        let st = Command::new("tmux")
            .args([
                "-S",
                &socket,
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "100",
                "-y",
                "30",
                &full,
            ])
            .status()
            .expect("tmux");
        assert!(st.success());
        Tmux {
            session: name,
            socket,
        }
    }

    fn keys(&self, keys: &str) {
        let st = Command::new("tmux")
            .args([
                "-S",
                &self.socket,
                "send-keys",
                "-t",
                &self.session,
                keys,
                "Enter",
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn resize(&self, w: u16, h: u16) {
        let st = Command::new("tmux")
            .args([
                "-S",
                &self.socket,
                "resize-window",
                "-t",
                &self.session,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-S",
                &self.socket,
                "capture-pane",
                "-p",
                "-t",
                &self.session,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[track_caller]
    fn expect(&self, text: &str) {
        if wait_for(Duration::from_secs(20), || {
            self.screen().contains(text).then_some(())
        })
        .is_none()
        {
            panic!("{text:?} never appeared; screen:\n{}", self.screen());
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn run_it_with_resize_and_exit_code() {
    let d = Daemon::start();
    d.load_busybox();
    let t = Tmux::start(&d, &format!("{} run -it --rm busybox sh", common::DOCKER));
    t.expect("/ #");
    t.keys("stty size; tty; echo term=$TERM");
    t.expect("30 100");
    t.expect("/dev/pts/0");
    t.expect("term=xterm");
    t.resize(90, 25);
    std::thread::sleep(Duration::from_millis(300));
    t.keys("clear; stty size");
    t.expect("25 90");
    t.keys("exit 7");
    t.expect("EXIT=7");
    // --rm removed it
    wait_for(Duration::from_secs(10), || {
        d.docker(["ps", "-aq"]).ok().is_empty().then_some(())
    })
    .expect("removed");
}

#[test]
fn exec_it_with_resize() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker(["run", "-d", "--name", "box", "busybox", "sleep", "300"])
        .ok();
    let t = Tmux::start(&d, &format!("{} exec -it box sh", common::DOCKER));
    t.expect("/ #");
    t.keys("stty size; echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' ')");
    t.expect("30 100");
    t.expect("pid1=sleep 300");
    t.resize(120, 40);
    std::thread::sleep(Duration::from_millis(300));
    t.keys("clear; stty size");
    t.expect("40 120");
    t.keys("exit 3");
    t.expect("EXIT=3");
}

#[test]
fn run_t_without_terminal_input_and_attach() {
    let d = Daemon::start();
    d.load_busybox();
    // -t without a terminal on the client side: output still arrives (tty mode, raw).
    let o = d.docker([
        "run",
        "--rm",
        "-t",
        "busybox",
        "sh",
        "-c",
        "echo tty-out; tty",
    ]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert!(o.stdout.contains("tty-out"), "{}", o.stdout);
    assert!(o.stdout.contains("/dev/pts/0"), "{}", o.stdout);
    // docker attach to a running container
    d.docker([
        "run",
        "-d",
        "--name",
        "att",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo attached-output; sleep 1",
    ])
    .ok();
    let o = d.docker(["attach", "--no-stdin", "att"]);
    assert!(
        o.stdout.contains("attached-output"),
        "{} {}",
        o.stdout,
        o.stderr
    );
    // start -a of a stopped container re-runs it attached
    let o = d.docker(["start", "-a", "att"]);
    assert!(
        o.stdout.contains("attached-output"),
        "{} {}",
        o.stdout,
        o.stderr
    );
}

#[test]
fn detach_keys_leave_the_container_running() {
    let d = Daemon::start();
    d.load_busybox();
    let t = Tmux::start(
        &d,
        &format!("{} run -it --name det busybox sh", common::DOCKER),
    );
    t.expect("/ #");
    t.keys("echo before-detach");
    t.expect("before-detach");
    // ctrl-p ctrl-q (sent without Enter)
    let st = Command::new("tmux")
        .args(["-S", &t.socket, "send-keys", "-t", &t.session, "C-p", "C-q"])
        .status()
        .unwrap();
    assert!(st.success());
    t.expect("EXIT=0");
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Running}}", "det"])
            .ok(),
        "true"
    );
    // The same shell is still there: attach again and use it.
    let t2 = Tmux::start(&d, &format!("{} attach det", common::DOCKER));
    std::thread::sleep(Duration::from_millis(500));
    t2.keys("echo still-$((6*7))");
    t2.expect("still-42");
    t2.keys("exit 5");
    t2.expect("EXIT=5");
    // custom keys on exec
    d.docker(["run", "-d", "--name", "ex", "busybox", "sleep", "300"])
        .ok();
    let t3 = Tmux::start(
        &d,
        &format!("{} exec -it --detach-keys ctrl-x ex sh", common::DOCKER),
    );
    t3.expect("/ #");
    let st = Command::new("tmux")
        .args(["-S", &t3.socket, "send-keys", "-t", &t3.session, "C-x"])
        .status()
        .unwrap();
    assert!(st.success());
    t3.expect("EXIT=");
    let o = d.docker([
        "run",
        "--rm",
        "-it",
        "--detach-keys",
        "ctrl-",
        "busybox",
        "true",
    ]);
    assert_ne!(o.status, 0);
}
