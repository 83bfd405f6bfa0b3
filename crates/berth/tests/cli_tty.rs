//! `run -it`, `exec -it` and `start -ai` through a real pseudo-terminal: raw mode, initial
//! size, SIGWINCH → resize, exit codes, detach keys, terminal restored afterwards.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{berth_bin, busybox_tar, wait_for, Daemon};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, LocalFlags};

fn daemon() -> Daemon {
    let d = Daemon::start();
    let out = d.berth(["load", "-i", busybox_tar().to_str().unwrap()]);
    assert_eq!(out.ok(), "Loaded image: busybox:latest");
    d
}

/// The berth CLI running on the slave side of a pty, as in an interactive shell.
struct PtyCli {
    child: Child,
    master: std::fs::File,
    slave: OwnedFd,
    output: Arc<Mutex<Vec<u8>>>,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl PtyCli {
    fn spawn(d: &Daemon, args: &[&str], rows: u16, cols: u16) -> PtyCli {
        let pty = openpty(Some(&winsize(rows, cols)), None).expect("openpty");
        let slave_in = pty.slave.try_clone().unwrap();
        let slave_out = pty.slave.try_clone().unwrap();
        let slave_err = pty.slave.try_clone().unwrap();
        let mut cmd = Command::new(berth_bin());
        cmd.arg("-H")
            .arg(d.host())
            .args(args)
            .env("DOCKER_CONFIG", d.dir.join("docker-config"))
            .stdin(Stdio::from(slave_in))
            .stdout(Stdio::from(slave_out))
            .stderr(Stdio::from(slave_err));
        // SAFETY: only async-signal-safe calls between fork and exec: a new session with the
        // pty (our stdin) as its controlling terminal, like a login shell gets.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn berth in a pty");
        let master = std::fs::File::from(pty.master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let out = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtyCli {
            child,
            master,
            slave: pty.slave,
            output,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    #[track_caller]
    fn expect(&self, needle: &str) {
        let found = wait_for(Duration::from_secs(15), || {
            self.text().contains(needle).then_some(())
        });
        assert!(
            found.is_some(),
            "{needle:?} not seen; output so far:\n{}",
            self.text()
        );
    }

    /// Waits until `needle` occurs `n` times.
    #[track_caller]
    fn expect_n(&self, needle: &str, n: usize) {
        let found = wait_for(Duration::from_secs(15), || {
            (self.text().matches(needle).count() >= n).then_some(())
        });
        assert!(
            found.is_some(),
            "{needle:?} not seen {n} times; output:\n{}",
            self.text()
        );
    }

    fn send(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
        self.master.flush().unwrap();
    }

    /// Resizes the terminal: the kernel sends SIGWINCH to the CLI.
    fn resize(&self, rows: u16, cols: u16) {
        let ws = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer on an fd we own.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0);
    }

    fn wait(mut self) -> (i32, String, OwnedFd) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (st.code().unwrap_or(-1), self.text(), self.slave);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("berth did not exit; output:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Canonical mode and echo are back after the CLI exits (the raw mode was undone).
fn assert_terminal_restored(slave: &OwnedFd) {
    let t = tcgetattr(slave).unwrap();
    assert!(
        t.local_flags.contains(LocalFlags::ECHO),
        "echo not restored"
    );
    assert!(
        t.local_flags.contains(LocalFlags::ICANON),
        "canonical mode not restored"
    );
}

#[test]
fn run_it_resizes_and_exits_with_the_shell_code() {
    let d = daemon();
    let mut cli = PtyCli::spawn(&d, &["run", "-it", "--rm", "busybox", "sh"], 30, 100);
    cli.expect("/ # ");
    cli.send(b"stty size\r");
    cli.expect("30 100");
    cli.resize(25, 90);
    // The resize reaches the container asynchronously; ask until it shows.
    let seen = wait_for(Duration::from_secs(10), || {
        cli.send(b"stty size\r");
        std::thread::sleep(Duration::from_millis(200));
        cli.text().contains("25 90").then_some(())
    });
    assert!(seen.is_some(), "resize not seen:\n{}", cli.text());
    cli.send(b"echo hi-from-tty\r");
    cli.expect_n("hi-from-tty", 2);
    cli.send(b"exit 7\r");
    let (code, _, slave) = cli.wait();
    assert_eq!(code, 7);
    assert_terminal_restored(&slave);
    // --rm: the container is gone.
    assert_eq!(d.berth(["ps", "-aq"]).ok(), "");
}

#[test]
fn exec_it_and_start_ai() {
    let d = daemon();
    let _ = d
        .berth(["run", "-d", "-it", "--name", "sh1", "busybox", "sh"])
        .ok();
    let mut cli = PtyCli::spawn(&d, &["exec", "-it", "sh1", "sh"], 40, 120);
    cli.expect("/ # ");
    cli.send(b"stty size\r");
    cli.expect("40 120");
    cli.send(b"exit 4\r");
    let (code, _, slave) = cli.wait();
    assert_eq!(code, 4);
    assert_terminal_restored(&slave);

    let _ = d
        .berth(["create", "-it", "--name", "c2", "busybox", "sh"])
        .ok();
    let mut cli = PtyCli::spawn(&d, &["start", "-ai", "c2"], 24, 80);
    cli.expect("/ # ");
    cli.send(b"echo started-$((1+2))\r");
    cli.expect("started-3");
    cli.send(b"exit 3\r");
    let (code, _, _) = cli.wait();
    assert_eq!(code, 3);
}

#[test]
fn sigterm_restores_the_terminal() {
    let d = daemon();
    let _ = d
        .berth(["run", "-d", "-it", "--name", "sh1", "busybox", "sh"])
        .ok();
    // exec has no signal proxy: a SIGTERM ends the CLI, with the terminal restored first.
    let cli = PtyCli::spawn(&d, &["exec", "-it", "sh1", "sh"], 24, 80);
    cli.expect("/ # ");
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(cli.child.id() as i32, libc::SIGTERM) };
    let (code, _, slave) = cli.wait();
    assert_eq!(code, 128 + libc::SIGTERM);
    assert_terminal_restored(&slave);
    // run -it proxies it to the container instead: sh ignores TERM and keeps the session.
    let mut cli = PtyCli::spawn(&d, &["run", "-it", "--rm", "busybox", "sh"], 24, 80);
    cli.expect("/ # ");
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(cli.child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(500));
    cli.send(b"echo still-here\r");
    cli.expect_n("still-here", 2);
    cli.send(b"exit 0\r");
    let (code, _, _) = cli.wait();
    assert_eq!(code, 0);
}

#[test]
fn detach_keys_leave_the_session() {
    let d = daemon();
    let _ = d
        .berth(["run", "-d", "-it", "--name", "sh1", "busybox", "sh"])
        .ok();
    // attach: ctrl-p ctrl-q detaches; Docker prints "read escape sequence" and exits 1.
    let mut cli = PtyCli::spawn(&d, &["attach", "sh1"], 24, 80);
    std::thread::sleep(Duration::from_millis(500));
    cli.send(b"echo in-attach\r");
    cli.expect("in-attach\r\n");
    cli.send(&[16]);
    std::thread::sleep(Duration::from_millis(100));
    cli.send(&[17]);
    let (code, out, slave) = cli.wait();
    assert_eq!(code, 1);
    assert!(out.contains("read escape sequence"), "{out}");
    assert_terminal_restored(&slave);
    // Custom keys.
    let mut cli = PtyCli::spawn(
        &d,
        &["exec", "-it", "--detach-keys", "ctrl-x", "sh1", "sh"],
        24,
        80,
    );
    cli.expect("/ # ");
    cli.send(&[24]);
    let (code, _, _) = cli.wait();
    assert_eq!(code, 1);
}

/// The engine keeps a TTY container's stdin open when its StdinOnce client leaves (dockerd
/// closes it only without a TTY), so a detached `run -it` keeps its shell.
#[test]
fn run_it_detach_keeps_the_container_running() {
    let d = daemon();
    let mut cli = PtyCli::spawn(
        &d,
        &["run", "-it", "--name", "det", "busybox", "sh"],
        24,
        80,
    );
    cli.expect("/ # ");
    cli.send(&[16]);
    std::thread::sleep(Duration::from_millis(100));
    cli.send(&[17]);
    let (code, _, _) = cli.wait();
    assert_eq!(code, 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.berth(["inspect", "-f", "{{.State.Running}}", "det"]).ok(),
        "true"
    );
}
