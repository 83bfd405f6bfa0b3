//! The sandbox probe: a process started inside a container (`berth runtime-probe`) that
//! reports what confines it — its capabilities, seccomp mode, no_new_privs — and how a set of
//! system calls that Docker's default seccomp profile refuses (or allows only with
//! `CAP_SYS_ADMIN`) behave: each is made in a forked child with arguments chosen so that a
//! call the filter lets through fails in the kernel with a different, recognisable error (or
//! succeeds without changing anything outside the child), so the answer tells the filter's
//! verdict apart from the kernel's.
//!
//! Output: one `name value` line per item, values being `ok`, an errno name (`EPERM`,
//! `ENOSYS`, …) or `signal N`. [`parse_report`] reads it back.

use std::collections::BTreeMap;
use std::ffi::CStr;

/// Namespace flags and other constants of the probed calls.
const CLONE_NEWNS: libc::c_int = 0x0002_0000;
const CLONE_NEWUSER: libc::c_int = 0x1000_0000;
const CLONE_NEWNET: libc::c_int = 0x4000_0000;
const AF_ALG: libc::c_int = 38;
const AF_VSOCK: libc::c_int = 40;
/// `personality(0xffffffff)` queries the persona without changing it.
const PER_QUERY: libc::c_ulong = 0xffff_ffff;
/// A persona flag the default profile does not allow (ADDR_NO_RANDOMIZE).
const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0004_0000;
/// A mount point that does not exist: a mount the filter lets through fails with ENOENT.
const MISSING_DIR: &CStr = c"/.berth-probe-missing";

/// The probes, in report order.
pub const PROBES: &[&str] = &[
    "unshare_user",
    "unshare_mnt",
    "unshare_net",
    "clone_newuser",
    "clone3",
    "mount",
    "keyctl",
    "add_key",
    "bpf",
    "perf_event_open",
    "personality_query",
    "personality_no_randomize",
    "socket_alg",
    "socket_vsock",
];

/// The entry point of `berth runtime-probe`: prints the report on stdout, returns the exit code.
pub fn probe_main() -> i32 {
    let mut out = String::new();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for (key, name) in [
        ("CapEff:", "cap_eff"),
        ("CapBnd:", "cap_bnd"),
        ("Seccomp:", "seccomp"),
        ("NoNewPrivs:", "no_new_privs"),
    ] {
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or("?");
        out.push_str(&format!("{name} {v}\n"));
    }
    for name in PROBES {
        out.push_str(&format!("{name} {}\n", in_child(name)));
    }
    print!("{out}");
    0
}

/// Parses a report into name → value.
pub fn parse_report(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Result of a raw call: 0 for success, else errno.
fn check(r: libc::c_long) -> i32 {
    if r < 0 {
        errno()
    } else {
        0
    }
}

/// Runs probe `name` in a forked child so that whatever it changes (namespaces, persona)
/// stays there; the child exits with 0 or the errno.
fn in_child(name: &str) -> String {
    // SAFETY: the probe process is single-threaded; the child only makes system calls and
    // exits with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = run_probe(name);
        // SAFETY: leaving the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    if pid < 0 {
        return errno_name(errno());
    }
    let mut status = 0;
    // SAFETY: waiting for the child just forked.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r != pid {
        return errno_name(errno());
    }
    if libc::WIFSIGNALED(status) {
        return format!("signal {}", libc::WTERMSIG(status));
    }
    match libc::WEXITSTATUS(status) {
        0 => "ok".into(),
        e => errno_name(e),
    }
}

fn errno_name(e: i32) -> String {
    format!("{:?}", nix::errno::Errno::from_raw(e))
}

/// Forks through `clone`-like `call`: in the new child (return 0) exits at once; in the caller
/// waits for it. 0 when the call succeeded, else its errno.
fn spawn_and_reap(r: libc::c_long) -> i32 {
    if r == 0 {
        // SAFETY: the new child leaves at once.
        unsafe { libc::_exit(0) };
    }
    if r < 0 {
        return errno();
    }
    let mut status = 0;
    // SAFETY: waiting for the child created by the call.
    unsafe { libc::waitpid(r as libc::pid_t, &mut status, 0) };
    0
}

fn run_probe(name: &str) -> i32 {
    // SAFETY (all blocks below): raw system calls with constant or null arguments, made in a
    // forked single-threaded child; pointers passed are valid for the call's duration.
    match name {
        "unshare_user" => check(unsafe { libc::unshare(CLONE_NEWUSER) }.into()),
        "unshare_mnt" => check(unsafe { libc::unshare(CLONE_NEWNS) }.into()),
        "unshare_net" => check(unsafe { libc::unshare(CLONE_NEWNET) }.into()),
        "clone_newuser" => {
            // A raw clone with a null stack behaves like fork (the child runs on a copy of
            // this stack).
            let flags = (CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
            spawn_and_reap(unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) })
        }
        "clone3" => {
            // struct clone_args, first version (64 bytes): flags 0, exit_signal SIGCHLD.
            let mut args = [0u64; 8];
            args[4] = libc::SIGCHLD as u64;
            spawn_and_reap(unsafe {
                libc::syscall(
                    libc::SYS_clone3,
                    args.as_mut_ptr(),
                    std::mem::size_of_val(&args),
                )
            })
        }
        "mount" => check(
            unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    MISSING_DIR.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            }
            .into(),
        ),
        // An unknown operation: EOPNOTSUPP when the filter lets it through.
        "keyctl" => check(unsafe { libc::syscall(libc::SYS_keyctl, -1i64, 0, 0, 0, 0) }),
        // Null type and description: EFAULT when the filter lets it through.
        "add_key" => {
            check(unsafe { libc::syscall(libc::SYS_add_key, 0usize, 0usize, 0usize, 0usize, 0) })
        }
        // An unknown command: EINVAL when the filter lets it through (and the caller may use
        // bpf at all).
        "bpf" => check(unsafe { libc::syscall(libc::SYS_bpf, 0x7fff_ffffi64, 0usize, 0) }),
        // A null attribute pointer: EFAULT when the filter lets it through.
        "perf_event_open" => {
            check(unsafe { libc::syscall(libc::SYS_perf_event_open, 0usize, 0, -1, -1, 0) })
        }
        "personality_query" => check(unsafe { libc::syscall(libc::SYS_personality, PER_QUERY) }),
        "personality_no_randomize" => {
            check(unsafe { libc::syscall(libc::SYS_personality, ADDR_NO_RANDOMIZE) })
        }
        "socket_alg" => socket(AF_ALG, libc::SOCK_SEQPACKET),
        "socket_vsock" => socket(AF_VSOCK, libc::SOCK_STREAM),
        _ => libc::EINVAL,
    }
}

fn socket(family: libc::c_int, kind: libc::c_int) -> i32 {
    // SAFETY: plain socket(2); the descriptor is closed at once.
    let fd = unsafe { libc::socket(family, kind, 0) };
    if fd < 0 {
        return errno();
    }
    // SAFETY: closing the descriptor just created.
    unsafe { libc::close(fd) };
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_roundtrip() {
        let r = parse_report("cap_eff 00000000a80425fb\nseccomp 2\nunshare_user EPERM\n");
        assert_eq!(r["cap_eff"], "00000000a80425fb");
        assert_eq!(r["seccomp"], "2");
        assert_eq!(r["unshare_user"], "EPERM");
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::EPERM), "EPERM");
        assert_eq!(errno_name(libc::ENOSYS), "ENOSYS");
    }

    #[test]
    fn harmless_probes_run_here() {
        // On the host (root, no filter) the query persona and an unknown keyctl behave as the
        // kernel answers them.
        assert_eq!(in_child("personality_query"), "ok");
        assert_eq!(in_child("keyctl"), "EOPNOTSUPP");
        assert_eq!(in_child("add_key"), "EFAULT");
        assert_eq!(in_child("mount"), "ENOENT");
        assert_eq!(in_child("nonsense"), "EINVAL");
    }
}
