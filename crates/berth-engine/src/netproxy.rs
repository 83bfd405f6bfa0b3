//! Starting and stopping a container's userland proxy (`berth userland-proxy`, see
//! `berth_net::proxy`): the published ports of a daemon without firewall rules
//! (`"iptables": false` with `userland-proxy` on, Docker's default).
//!
//! The process gets the reserved host-port sockets as descriptors 3, 4, … and runs in its own
//! process group, so it lives as long as the container's network, across daemon restarts. It is
//! identified by its command line (`userland-proxy --sandbox <netns path>`), never by pid alone.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_net::proxy::ProxySpec;

/// The hidden subcommand of the berth binary.
pub const SUBCOMMAND: &str = "userland-proxy";

/// Starts the proxy for `ports` (bound sockets and their container targets) of the container
/// whose namespace is `sandbox`; returns its pid.
pub(crate) fn spawn(
    exe: &Path,
    sandbox: &str,
    ports: Vec<(OwnedFd, berth_net::ports::Proto, std::net::SocketAddrV4)>,
) -> Result<i32, String> {
    let mut cmd = Command::new(exe);
    cmd.arg(SUBCOMMAND).arg("--sandbox").arg(sandbox);
    let mut fds = Vec::new();
    for (i, (fd, proto, target)) in ports.into_iter().enumerate() {
        berth_net::proxy::prepare(proto, &fd).map_err(|e| e.to_string())?;
        let spec = ProxySpec {
            proto,
            fd: 3 + i as i32,
            target,
        };
        cmd.arg(spec.to_arg());
        fds.push(fd);
    }
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec, on descriptors
    // this process owns. Each socket is first copied above any target number, so moving them
    // to 3, 4, … never overwrites one not yet moved; dup2's copies have no FD_CLOEXEC.
    unsafe {
        cmd.pre_exec(move || {
            let mut high = Vec::with_capacity(raw.len());
            for fd in &raw {
                let h = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 1024);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(h);
            }
            for (i, h) in high.iter().enumerate() {
                if libc::dup2(*h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the userland proxy {}: {e}", exe.display()))?;
    // The child owns the sockets now; ours close with `fds`. It is reaped by `stop` (or by
    // init once this daemon exits): a thread waits for it so no zombie stays behind.
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    drop(fds);
    Ok(pid)
}

/// Whether `pid` is the proxy of `sandbox`.
pub(crate) fn alive(pid: i32, sandbox: &str) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
    args.get(1) == Some(&SUBCOMMAND.as_bytes())
        && args.get(2) == Some(&b"--sandbox".as_slice())
        && args.get(3) == Some(&sandbox.as_bytes())
}

/// Stops the proxy (its ports close at once).
pub(crate) fn stop(pid: i32, sandbox: &str) {
    if alive(pid, sandbox) {
        // SAFETY: plain kill(2) of a process whose command line was just checked.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // Wait (bounded) until its sockets are gone, so the port can be published again.
        for _ in 0..200 {
            if !alive(pid, sandbox) || is_zombie(pid) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
