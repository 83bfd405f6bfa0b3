//! Isolation and Docker's security defaults, checked from inside real containers.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Daemon;

fn status_field(d: &Daemon, args: &[&str], field: &str) -> String {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "grep", field, "/proc/self/status"]);
    let line = d.docker(&a).ok();
    line.split_whitespace().nth(1).unwrap_or("").to_string()
}

fn caps_of(d: &Daemon, args: &[&str]) -> u64 {
    u64::from_str_radix(&status_field(d, args, "CapEff"), 16).unwrap()
}

/// Docker's 14 default capabilities.
const DOCKER_DEFAULT_CAPS: u64 = 0xa80425fb;

#[test]
fn default_capabilities_seccomp_and_flags() {
    let d = Daemon::start();
    d.load_busybox();
    assert_eq!(caps_of(&d, &[]), DOCKER_DEFAULT_CAPS);
    assert_eq!(status_field(&d, &[], "Seccomp:"), "2");
    assert_eq!(status_field(&d, &[], "NoNewPrivs"), "0");
    assert_eq!(
        status_field(&d, &["--security-opt", "no-new-privileges"], "NoNewPrivs"),
        "1"
    );
    assert_eq!(
        status_field(&d, &["--security-opt", "seccomp=unconfined"], "Seccomp:"),
        "0"
    );
    // The default profile blocks namespace creation.
    let o = d.docker(["run", "--rm", "busybox", "unshare", "-n", "true"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.stderr);
    // --cap-drop / --cap-add
    assert_eq!(caps_of(&d, &["--cap-drop", "ALL"]), 0);
    let c = caps_of(&d, &["--cap-add", "NET_ADMIN"]);
    assert_eq!(c, DOCKER_DEFAULT_CAPS | (1 << 12));
    let c = caps_of(&d, &["--cap-drop", "chown"]);
    assert_eq!(c, DOCKER_DEFAULT_CAPS & !1);
    let o = d.docker(["run", "--rm", "--cap-add", "BOGUS", "busybox", "true"]);
    assert_ne!(o.status, 0);
    // --privileged: every capability the host allows, no seccomp, writable /sys
    let host_bnd = u64::from_str_radix(
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .unwrap()
            .trim(),
        16,
    )
    .unwrap();
    assert_eq!(caps_of(&d, &["--privileged"]), host_bnd);
    assert_eq!(status_field(&d, &["--privileged"], "Seccomp:"), "0");
    let mounts = d
        .docker([
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "grep",
            " /sys ",
            "/proc/mounts",
        ])
        .ok();
    assert!(mounts.contains(" rw,"), "{mounts}");
}

/// `-v` options that make the host's berth binary runnable inside a busybox container: the
/// binary at /berth-probe and each directory of the shared libraries it loads (as `ldd`
/// names them), read-only.
fn berth_in_container_mounts() -> Vec<String> {
    let bin = common::berth_bin();
    let out = std::process::Command::new("ldd")
        .arg(&bin)
        .output()
        .unwrap();
    let mut dirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .filter_map(|p| {
            Path::new(p)
                .parent()
                .map(|d| d.to_string_lossy().into_owned())
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut v = vec![format!("{}:/berth-probe:ro", bin.display())];
    for d in dirs {
        let real = std::fs::canonicalize(&d).unwrap();
        v.push(format!("{}:{d}:ro", real.display()));
    }
    v
}

/// Runs `berth runtime-probe` in a busybox container started with `args` and returns its
/// report.
fn probe(d: &Daemon, args: &[&str]) -> std::collections::BTreeMap<String, String> {
    let mut a = vec!["run".to_string(), "--rm".to_string()];
    for m in berth_in_container_mounts() {
        a.push("-v".into());
        a.push(m);
    }
    a.extend(args.iter().map(|s| s.to_string()));
    a.extend([
        "busybox".into(),
        "/berth-probe".into(),
        "runtime-probe".into(),
    ]);
    berth_runtime::probe::parse_report(&d.docker(&a).ok())
}

/// Docker's default profile (moby/profiles seccomp/default.json), probed from inside: without
/// CAP_SYS_ADMIN no namespace can be made (user namespaces included, through unshare or
/// clone), clone3 answers ENOSYS, mount/bpf/perf_event_open are refused; keyctl and add_key
/// are refused even with CAP_SYS_ADMIN; only the harmless personas are allowed; AF_ALG and
/// AF_VSOCK sockets are refused. With --cap-add SYS_ADMIN the gated calls reach the kernel,
/// which answers them (ok, or the error the probe's arguments provoke). The outcomes were
/// checked against Debian's dockerd 20.10 for every probe that profile shares.
#[test]
fn seccomp_probes_behave_as_under_dockers_profile() {
    let d = Daemon::start();
    d.load_busybox();
    let expect = |report: &std::collections::BTreeMap<String, String>, want: &[(&str, &str)]| {
        for (k, v) in want {
            assert_eq!(
                report.get(*k).map(String::as_str),
                Some(*v),
                "probe {k}; report: {report:?}"
            );
        }
    };
    let default = probe(&d, &[]);
    expect(
        &default,
        &[
            ("seccomp", "2"),
            ("cap_eff", "00000000a80425fb"),
            ("unshare_user", "EPERM"),
            ("unshare_mnt", "EPERM"),
            ("unshare_net", "EPERM"),
            ("clone_newuser", "EPERM"),
            ("clone3", "ENOSYS"),
            ("mount", "EPERM"),
            ("keyctl", "EPERM"),
            ("add_key", "EPERM"),
            ("bpf", "EPERM"),
            ("perf_event_open", "EPERM"),
            ("personality_query", "ok"),
            ("personality_no_randomize", "EPERM"),
            ("socket_alg", "EPERM"),
            ("socket_vsock", "EPERM"),
        ],
    );
    let admin = probe(&d, &["--cap-add", "SYS_ADMIN"]);
    expect(
        &admin,
        &[
            ("seccomp", "2"),
            ("cap_eff", "00000000a82425fb"),
            ("unshare_user", "ok"),
            ("unshare_mnt", "ok"),
            ("unshare_net", "ok"),
            ("clone_newuser", "ok"),
            ("clone3", "ok"),
            ("mount", "ENOENT"),
            ("keyctl", "EPERM"),
            ("add_key", "EPERM"),
            ("bpf", "EINVAL"),
            ("perf_event_open", "EFAULT"),
            ("personality_query", "ok"),
            ("personality_no_randomize", "EPERM"),
            ("socket_alg", "EPERM"),
            ("socket_vsock", "EPERM"),
        ],
    );
    // busybox's own unshare, as a user would try it.
    let o = d.docker(["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert_ne!(o.status, 0, "unshare -U must fail: {o:?}");
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.stderr);
    d.docker([
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "unshare",
        "-Ur",
        "true",
    ])
    .ok();
}

#[test]
fn masked_and_readonly_paths_and_mounts() {
    let d = Daemon::start();
    d.load_busybox();
    let mounts = d
        .docker(["run", "--rm", "busybox", "cat", "/proc/mounts"])
        .ok();
    let line = |mp: &str| {
        mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(mp))
            .unwrap_or_else(|| panic!("{mp} not mounted:\n{mounts}"))
            .to_string()
    };
    assert!(line("/sys").contains(" ro,"), "{}", line("/sys"));
    assert!(line("/proc/sys").contains(" ro,"));
    assert!(line("/dev").starts_with("tmpfs /dev tmpfs"));
    assert!(
        line("/dev/shm").contains("size=65536k"),
        "{}",
        line("/dev/shm")
    );
    assert!(line("/dev/pts").starts_with("devpts"));
    line("/dev/mqueue");
    // Masked /proc files (those this kernel has) read as /dev/null.
    for f in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/latency_stats",
        "/proc/interrupts",
    ] {
        if !Path::new(f).exists() {
            continue;
        }
        let o = d
            .docker([
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                &format!("wc -c < {f}; ls -l {f}"),
            ])
            .ok();
        assert!(o.starts_with('0'), "{f}: {o}");
        assert!(
            o.contains("1,   3") || o.contains("1, 3"),
            "{f} is not /dev/null: {o}"
        );
    }
    // writes to read-only /proc/sys and /sys fail
    let o = d.docker([
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/ns_last_pid",
    ]);
    assert_ne!(o.status, 0);
    let o = d.docker(["run", "--rm", "busybox", "touch", "/sys/x"]);
    assert_ne!(o.status, 0);
    // minimal /dev
    let devs = d.docker(["run", "--rm", "busybox", "ls", "/dev"]).ok();
    for dev in [
        "null", "zero", "random", "urandom", "tty", "full", "pts", "shm",
    ] {
        assert!(
            devs.split_whitespace().any(|x| x == dev),
            "/dev/{dev} missing: {devs}"
        );
    }
    assert!(
        !devs
            .split_whitespace()
            .any(|x| x == "sda" || x == "vda" || x == "mem"),
        "{devs}"
    );
}

#[test]
fn read_only_tmpfs_ulimits_user_workdir_env() {
    let d = Daemon::start();
    d.load_busybox();
    let o = d.docker(["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("Read-only file system"), "{}", o.stderr);
    let o = d
        .docker([
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/run:size=1m",
            "busybox",
            "sh",
            "-c",
            "touch /run/x && grep ' /run ' /proc/mounts",
        ])
        .ok();
    assert!(o.starts_with("tmpfs /run tmpfs"), "{o}");
    assert!(o.contains("size=1024k"), "{o}");
    let o = d
        .docker([
            "run",
            "--rm",
            "--ulimit",
            "nofile=100:200",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn",
        ])
        .ok();
    assert_eq!(o, "100\n200");
    // Raising a hard limit above the host's is refused with a clear error.
    let o = d.docker([
        "run",
        "--rm",
        "--ulimit",
        "nofile=100000000:100000000",
        "busybox",
        "true",
    ]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("nofile"), "{}", o.stderr);
    // No ulimit set when none was asked for: the container inherits the host's.
    let host_n = std::fs::read_to_string("/proc/self/limits").unwrap();
    let host_soft = host_n
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    assert_eq!(
        d.docker(["run", "--rm", "busybox", "sh", "-c", "ulimit -n"])
            .ok(),
        host_soft
    );
    // The files berth bind-mounts into /etc are readable by any user, as in Docker.
    assert_eq!(
        d.docker([
            "run",
            "--rm",
            "-u",
            "nobody",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf /etc/hostname > /dev/null && echo readable"
        ])
        .ok(),
        "readable"
    );
    assert!(d
        .docker(["run", "--rm", "-u", "nobody", "busybox", "id"])
        .ok()
        .starts_with("uid=65534(nobody) gid=65534(nogroup)"));
    assert_eq!(
        d.docker(["run", "--rm", "-u", "www-data", "busybox", "id", "-G"])
            .ok(),
        "33 50"
    );
    assert_eq!(
        d.docker(["run", "--rm", "-u", "1234:5678", "busybox", "id", "-u"])
            .ok(),
        "1234"
    );
    let o = d.docker(["run", "--rm", "-u", "nosuchuser", "busybox", "true"]);
    assert!(
        o.stderr
            .contains("unable to find user nosuchuser: no matching entries in passwd file"),
        "{}",
        o.stderr
    );
    assert_eq!(
        d.docker(["run", "--rm", "-w", "/new/dir", "busybox", "pwd"])
            .ok(),
        "/new/dir"
    );
    let envfile = d.dir.join("env.list");
    std::fs::write(&envfile, "FROMFILE=yes\n# comment\n").unwrap();
    assert_eq!(
        d.docker([
            "run",
            "--rm",
            "-e",
            "X=1",
            "--env-file",
            envfile.to_str().unwrap(),
            "busybox",
            "sh",
            "-c",
            "echo $X$FROMFILE"
        ])
        .ok(),
        "1yes"
    );
    assert_eq!(
        d.docker(["run", "--rm", "--entrypoint", "echo", "busybox", "ep"])
            .ok(),
        "ep"
    );
    assert_eq!(
        d.docker(["run", "--rm", "--hostname", "myhost", "busybox", "hostname"])
            .ok(),
        "myhost"
    );
    // --init: PID 1 is Docker's init (tini), the command runs under it.
    let o = d
        .docker(["run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"])
        .ok();
    assert!(o.starts_with("/sbin/docker-init"), "{o}");
}

#[test]
fn bind_mounts_and_symlink_escapes() {
    let d = Daemon::start();
    d.load_busybox();
    let host = d.dir.join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f.txt"), "from host").unwrap();
    let h = host.to_str().unwrap();
    assert_eq!(
        d.docker([
            "run",
            "--rm",
            "-v",
            &format!("{h}:/data"),
            "busybox",
            "cat",
            "/data/f.txt"
        ])
        .ok(),
        "from host"
    );
    d.docker([
        "run",
        "--rm",
        "-v",
        &format!("{h}:/data"),
        "busybox",
        "sh",
        "-c",
        "echo back > /data/g.txt",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("g.txt")).unwrap(),
        "back\n"
    );
    let o = d.docker([
        "run",
        "--rm",
        "-v",
        &format!("{h}:/data:ro"),
        "busybox",
        "touch",
        "/data/x",
    ]);
    assert_ne!(o.status, 0);
    assert_eq!(
        d.docker([
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,source={h},target=/m,readonly"),
            "busybox",
            "cat",
            "/m/f.txt"
        ])
        .ok(),
        "from host"
    );
    let o = d.docker([
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/nonexistent-src,target=/m",
        "busybox",
        "true",
    ]);
    assert!(
        o.stderr.contains("bind source path does not exist"),
        "{}",
        o.stderr
    );
    let v: serde_json::Value = serde_json::from_str(
        &d.docker(["create", "-v", &format!("{h}:/data:ro"), "busybox"])
            .ok()
            .pipe(|id| d.docker(["inspect", &id]).ok()),
    )
    .unwrap();
    assert_eq!(v[0]["Mounts"][0]["Type"], "bind");
    assert_eq!(v[0]["Mounts"][0]["Destination"], "/data");
    assert_eq!(v[0]["Mounts"][0]["RW"], false);

    // An image with a symlink pointing at a host path: neither the working directory nor a
    // mount target may follow it out of the rootfs.
    let outside = d.dir.join("outside-target");
    std::fs::create_dir_all(&outside).unwrap();
    let rootfs = d.busybox_rootfs_dir("evil-rootfs");
    std::os::unix::fs::symlink(&outside, rootfs.join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../..", rootfs.join("up")).unwrap();
    d.import_dir(&rootfs, "evil:1", &["CMD [\"sh\"]"]);
    d.docker(["run", "--rm", "-w", "/link/wd", "evil:1", "pwd"])
        .ok();
    d.docker(["run", "--rm", "-w", "/up/tmp/wd2", "evil:1", "pwd"])
        .ok();
    d.docker([
        "run",
        "--rm",
        "-v",
        &format!("{h}:/link/mnt"),
        "evil:1",
        "true",
    ]);
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "something was created outside the rootfs"
    );
    assert!(!Path::new("/tmp/wd2").exists());
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for String {}

fn cgroup_file(d: &Daemon, controller: &str, id: &str, file: &str) -> Option<String> {
    let rel = d.cgroup_parent.trim_start_matches('/');
    for base in [
        format!("/sys/fs/cgroup/{controller}/{rel}/{id}"),
        format!("/sys/fs/cgroup/{rel}/{id}"),
    ] {
        if let Ok(s) = std::fs::read_to_string(Path::new(&base).join(file)) {
            return Some(s.trim().to_string());
        }
    }
    None
}

#[test]
fn cgroup_limits() {
    let d = Daemon::start();
    d.load_busybox();
    let id = d
        .docker([
            "run",
            "-d",
            "-m",
            "32m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "20",
            "busybox",
            "sleep",
            "60",
        ])
        .ok();
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    if v1 {
        assert_eq!(
            cgroup_file(&d, "memory", &id, "memory.limit_in_bytes").as_deref(),
            Some("33554432")
        );
        assert_eq!(
            cgroup_file(&d, "cpu", &id, "cpu.cfs_quota_us").as_deref(),
            Some("50000")
        );
        assert_eq!(
            cgroup_file(&d, "cpu", &id, "cpu.shares").as_deref(),
            Some("512")
        );
        assert_eq!(
            cgroup_file(&d, "pids", &id, "pids.max").as_deref(),
            Some("20")
        );
        // The container sees its own limit.
        assert_eq!(
            d.docker([
                "exec",
                &id,
                "cat",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes"
            ])
            .ok(),
            "33554432"
        );
    } else {
        assert_eq!(
            cgroup_file(&d, "", &id, "memory.max").as_deref(),
            Some("33554432")
        );
        assert_eq!(cgroup_file(&d, "", &id, "pids.max").as_deref(), Some("20"));
    }
    let v: serde_json::Value = serde_json::from_str(&d.docker(["inspect", &id]).ok()).unwrap();
    assert_eq!(v[0]["HostConfig"]["Memory"], 33554432);
    assert_eq!(v[0]["HostConfig"]["NanoCpus"], 500000000);
    assert_eq!(v[0]["HostConfig"]["PidsLimit"], 20);
    d.docker(["rm", "-f", &id]).ok();
}

#[test]
fn oom_kill_and_fork_bomb_leave_the_daemon_responsive() {
    let d = Daemon::start();
    d.load_busybox();
    // A memory hog under -m: killed by the OOM killer, exit 137, OOMKilled.
    let o = d.docker([
        "run",
        "--name",
        "hog",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    assert_eq!(o.status, 137, "{}", o.stderr);
    assert_eq!(
        d.docker([
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            "hog"
        ])
        .ok(),
        "true 137"
    );
    // A fork bomb under --pids-limit: contained; the daemon keeps answering.
    d.docker([
        "run",
        "-d",
        "--name",
        "bomb",
        "--pids-limit",
        "30",
        "busybox",
        "sh",
        "-c",
        "f() { f | f & }; f; sleep 100",
    ])
    .ok();
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    assert!(d.docker(["ps", "-a"]).ok().contains("bomb"));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "daemon slow: {:?}",
        t.elapsed()
    );
    let pids = cgroup_file(
        &d,
        "pids",
        &d.docker(["inspect", "-f", "{{.Id}}", "bomb"]).ok(),
        "pids.current",
    )
    .and_then(|p| p.parse::<u32>().ok())
    .unwrap_or(0);
    assert!(pids <= 30, "pids.current {pids}");
    d.docker(["rm", "-f", "bomb"]).ok();
    assert_eq!(
        d.docker(["run", "--rm", "busybox", "echo", "alive"]).ok(),
        "alive"
    );
}

#[test]
fn network_modes() {
    let d = Daemon::start();
    d.load_busybox();
    // `none`: only a loopback interface.
    let links = d
        .docker([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .ok();
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:"), "{links}");
    // Default: the bridge network (loopback and eth0).
    let links = d
        .docker(["run", "--rm", "busybox", "ip", "-o", "link"])
        .ok();
    assert_eq!(links.lines().count(), 2, "{links}");
    assert!(links.contains("eth0@"), "{links}");
    let id = d.docker(["create", "busybox"]).ok();
    assert_eq!(
        d.docker(["inspect", "-f", "{{.HostConfig.NetworkMode}}", &id])
            .ok(),
        "default"
    );
    // host: the host's interfaces and hostname
    let links = d
        .docker([
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .ok();
    assert!(links.lines().count() > 1, "{links}");
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        d.docker(["run", "--rm", "--network", "host", "busybox", "hostname"])
            .ok(),
        host_name.trim()
    );
    // Ports and `--network none` conflict, as in Docker.
    let o = d.docker([
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080:8080",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status, 125);
    assert!(o.stderr.contains("conflicting options"), "{}", o.stderr);
    // (Through the raw API: the Docker CLI answers any 404 from create with a pull.)
    let (st, body) = d.raw(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"nosuchnet"}}"#,
    );
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("network nosuchnet not found"), "{body}");
}
