//! Test harness: a real `berth daemon` per test, in its own temp dir (data root, exec root,
//! socket, cgroup parent), driven by the real Docker CLI or the berth CLI, cleaned up on drop
//! even when the test fails.
//!
//! Paths are short (`/tmp/bt-XXXXXX/…`) only for readable logs: berth works with exec and data
//! roots of any length (`Daemon::start_with_long_roots`).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const DOCKER: &str = "/usr/local/bin/docker";

pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The busybox image archive, built once per test process from Debian's busybox-static.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("berth-test-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tar = dir.join("busybox.tar");
        let out = Command::new(repo_root().join("scripts/mk-busybox-image"))
            .arg(&tar)
            .arg("--rootfs-tar")
            .arg(dir.join("busybox-rootfs.tar"))
            .output()
            .expect("run scripts/mk-busybox-image");
        assert!(
            out.status.success(),
            "mk-busybox-image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tar
    })
}

/// The plain rootfs tar of the busybox image (for `import`).
pub fn busybox_rootfs_tar() -> PathBuf {
    busybox_tar().with_file_name("busybox-rootfs.tar")
}

/// Output of a command, with helpers for assertions.
#[derive(Debug)]
pub struct Out {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The output of a finished command.
    pub fn of(o: Output) -> Out {
        Out::from(o)
    }

    /// Asserts success and returns trimmed stdout.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert_eq!(
            self.status, 0,
            "command failed ({}):\nstdout: {}\nstderr: {}",
            self.status, self.stdout, self.stderr
        );
        self.stdout.trim().to_string()
    }
}

pub struct Daemon {
    pub dir: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub sock: PathBuf,
    pub cgroup_parent: String,
    /// This daemon's default bridge (`bt-XXXXXX`), unless the test's config names one.
    pub bridge: String,
    /// This daemon's address block: the default bridge is `block.0/24`, user networks the
    /// test creates get `spare_subnet(1..=3)` (also the daemon's `default-address-pools`).
    pub block: TestBlock,
    config: String,
    /// More `berth daemon` arguments (e.g. another `-H`).
    extra_args: Vec<String>,
    /// Extra environment of the daemon process (set before a start).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
}

/// A /22 of 10.224.0.0/12 reserved for one test daemon (a lock file under /tmp, so daemons
/// of parallel test processes never share subnets), free of the host's routes.
pub struct TestBlock {
    pub a: u8,
    pub b: u8,
    lock: PathBuf,
}

impl TestBlock {
    fn take() -> TestBlock {
        let dir = PathBuf::from("/tmp/berth-test-subnets");
        std::fs::create_dir_all(&dir).unwrap();
        let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let mut seed = [0u8; 2];
        getrandom_bytes(&mut seed);
        for i in 0..1024u32 {
            let slot = (u16::from_le_bytes(seed) as u32 + i) % 1024;
            let (a, b) = (224 + (slot / 64) as u8, ((slot % 64) * 4) as u8);
            // /proc/net/route holds little-endian hex: 10.a.b.0 → 0x00ba0a..
            let taken = (0..4u8).any(|k| {
                let hex = format!("{:02X}{:02X}0A", b + k, a);
                routes.lines().any(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .is_some_and(|d| d.ends_with(&hex))
                })
            });
            if taken {
                continue;
            }
            let lock = dir.join(format!("10.{a}.{b}"));
            if std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
                .is_ok()
            {
                return TestBlock { a, b, lock };
            }
        }
        panic!("no free test subnet block under 10.224.0.0/12");
    }

    /// `10.a.(b+i).0/24`; i = 0 is the default bridge.
    pub fn subnet(&self, i: u8) -> String {
        format!("10.{}.{}.0/24", self.a, self.b + i)
    }

    /// The default bridge's gateway.
    pub fn gateway(&self) -> String {
        format!("10.{}.{}.1", self.a, self.b)
    }
}

impl Drop for TestBlock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

fn getrandom_bytes(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("read /dev/urandom");
}

impl Daemon {
    /// A daemon with an empty configuration.
    pub fn start() -> Daemon {
        Daemon::start_with("{}")
    }

    /// A daemon with `config` as daemon.json (berth adds its own cgroup parent).
    pub fn start_with(config: &str) -> Daemon {
        Daemon::start_with_root_lengths(config, None)
    }

    /// A daemon whose data root and exec root paths are `len` characters long (deep
    /// directories below the test's temp dir), as a user may choose them.
    pub fn start_with_long_roots(config: &str, len: usize) -> Daemon {
        Daemon::start_with_root_lengths(config, Some(len))
    }

    /// A daemon with `config` as daemon.json and more command-line arguments.
    pub fn start_with_args(config: &str, args: &[&str]) -> Daemon {
        Daemon::start_full(config, None, args)
    }

    fn start_with_root_lengths(config: &str, len: Option<usize>) -> Daemon {
        Daemon::start_full(config, len, &[])
    }

    fn start_full(config: &str, len: Option<usize>, args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("bt-")
            .rand_bytes(6)
            .tempdir_in("/tmp")
            .expect("temp dir")
            .keep();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut d = Daemon {
            bridge: name.clone(),
            block: TestBlock::take(),
            data_root: dir.join("d"),
            exec_root: dir.join("x"),
            sock: dir.join("s.sock"),
            cgroup_parent: format!("/berth-test/{name}"),
            log: dir.join("daemon.log"),
            dir,
            config: config.to_string(),
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            child: None,
        };
        if let Some(len) = len {
            let long = |base: PathBuf| {
                let mut p = base;
                while p.as_os_str().len() < len {
                    p.push("long-root-component");
                }
                let s = p.to_string_lossy().into_owned();
                PathBuf::from(&s[..len])
            };
            d.data_root = long(d.dir.join("d"));
            d.exec_root = long(d.dir.join("x"));
        }
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let mut cfg: serde_json::Value = serde_json::from_str(&self.config).expect("config JSON");
        cfg["cgroup-parent"] = serde_json::Value::String(self.cgroup_parent.clone());
        // Every daemon gets its own bridge and subnets, so tests run side by side.
        if cfg.get("bridge").is_none() {
            cfg["bridge"] = serde_json::Value::String(self.bridge.clone());
        } else if let Some(b) = cfg["bridge"].as_str() {
            self.bridge = b.to_string();
        }
        if cfg.get("bip").is_none() {
            cfg["bip"] = serde_json::Value::String(format!("{}/24", self.block.gateway()));
        }
        if cfg.get("default-address-pools").is_none() {
            cfg["default-address-pools"] = serde_json::json!([
                {"base": format!("10.{}.{}.0/22", self.block.a, self.block.b), "size": 24}
            ]);
        }
        self.install_guard();
        let cfg_path = self.dir.join("daemon.json");
        std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(berth_bin())
            .arg("daemon")
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--config-file")
            .arg(&cfg_path)
            .args(&self.extra_args)
            .env("BERTH_LOG", "info,berth=debug,berth_engine=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn berth daemon");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.sock).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("berth daemon exited ({st}):\n{}", self.log_text());
                }
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// kill -9 of the daemon (containers must survive).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the daemon to end by itself; returns how it ended.
    pub fn wait_exited(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return Some(st);
                }
            } else {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Graceful stop (SIGTERM).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same roots.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "daemon still running");
        self.spawn();
    }

    fn docker_cmd(&self) -> Command {
        // A hung command must fail the test, not hang the suite.
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "120", DOCKER]);
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_BUILDKIT")
            .env_remove("DOCKER_CONTEXT");
        c
    }

    /// Runs the real Docker CLI against this daemon.
    pub fn docker<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Out::from(self.docker_cmd().args(args).output().expect("run docker"))
    }

    /// Runs the Docker CLI with `input` on stdin.
    pub fn docker_stdin<I, S>(&self, args: I, input: &[u8]) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = self
            .docker_cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker");
        child.stdin.take().unwrap().write_all(input).unwrap();
        Out::from(child.wait_with_output().unwrap())
    }

    pub fn docker_command(&self) -> Command {
        self.docker_cmd()
    }

    /// Runs the berth CLI against this daemon.
    pub fn berth<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Out::from(
            Command::new("timeout")
                .args(["-k", "5", "120"])
                .arg(berth_bin())
                .arg("-H")
                .arg(self.host())
                .args(args)
                .env("DOCKER_CONFIG", self.dir.join("docker-config"))
                .output()
                .expect("run berth"),
        )
    }

    /// Loads the busybox image (as `busybox:latest`).
    pub fn load_busybox(&self) {
        let tar = busybox_tar();
        let out = self.docker(["load", "-i", tar.to_str().unwrap()]);
        assert_eq!(out.status, 0, "load failed: {}{}", out.stdout, out.stderr);
    }

    /// A raw HTTP/1.1 request over the daemon's socket; returns (status, body).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        use std::io::Read;
        let mut s = std::os::unix::net::UnixStream::connect(&self.sock).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        if let Some(ct) = content_type {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// A request asking for a connection upgrade (as `docker exec`/`attach` do): returns the
    /// response head and every byte the server sent after it until it closed the stream.
    pub fn upgrade(&self, path: &str, body: &[u8]) -> (String, Vec<u8>) {
        use std::io::Read;
        let mut s = std::os::unix::net::UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .unwrap_or(resp.len());
        let head = String::from_utf8_lossy(&resp[..split]).into_owned();
        (head, resp[split..].to_vec())
    }

    /// Pids of every process whose command line mentions this daemon's temp dir.
    fn our_processes(&self) -> Vec<i32> {
        let needle = self.dir.to_string_lossy().into_owned();
        let me = std::process::id() as i32;
        let mut pids = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if pid == me {
                    continue;
                }
                if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                    if String::from_utf8_lossy(&cmd).contains(&needle) {
                        pids.push(pid);
                    }
                }
            }
        }
        pids
    }

    /// The nftables table berth programs for this daemon.
    pub fn firewall_table(&self) -> String {
        berth_engine::firewall_table(&self.exec_root)
    }

    fn guard_table(&self) -> String {
        format!("bt-guard-{}", self.bridge.trim_start_matches("bt-"))
    }

    /// A table of the test's own that drops whatever this daemon's bridges would forward to
    /// any interface but berth's bridges and the test's own "outside" veths (`bto-*`): no test
    /// container can reach the host's uplink, whatever the routes say.
    fn install_guard(&self) {
        let t = self.guard_table();
        let script = format!(
            "table inet {t}\ndelete table inet {t}\ntable inet {t} {{\n  chain guard {{\n    type filter hook forward priority -400; policy accept;\n    iifname {{ \"{b}\", \"br-*\" }} oifname != {{ \"{b}\", \"br-*\", \"bto-*\" }} drop\n  }}\n}}\n",
            b = self.bridge
        );
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run nft (Debian package nftables)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "installing the test guard failed"
        );
    }

    /// Bridges of this daemon's networks (the default one and those in its network records).
    fn bridges(&self) -> Vec<String> {
        let mut v = vec![self.bridge.clone()];
        if let Ok(rd) = std::fs::read_dir(self.data_root.join("network")) {
            for e in rd.flatten() {
                if let Ok(text) = std::fs::read_to_string(e.path()) {
                    if let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) {
                        if let Some(b) = j["bridge"].as_str() {
                            v.push(b.to_string());
                        }
                    }
                }
            }
        }
        v
    }

    fn cleanup(&mut self) {
        self.kill9();
        // Containers: kill and delete through runc with this daemon's runc root.
        let runc_root = self.exec_root.join("runc");
        if let Ok(out) = Command::new("runc")
            .arg("--root")
            .arg(&runc_root)
            .args(["list", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["kill", id, "KILL"])
                    .output();
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", "-f", id])
                    .output();
            }
        }
        for pid in self.our_processes() {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        unmount_under(&self.dir);
        remove_cgroups(&self.cgroup_parent);
        for b in self.bridges() {
            let _ = Command::new("ip").args(["link", "del", &b]).output();
        }
        for t in [
            format!("ip {}", self.firewall_table()),
            format!("inet {}", self.guard_table()),
        ] {
            let _ = Command::new("nft")
                .args(["delete", "table"])
                .args(t.split(' '))
                .output();
        }
        let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        if std::fs::remove_dir_all(&self.dir).is_err() {
            std::thread::sleep(Duration::from_millis(200));
            unmount_under(&self.dir);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- berth daemon log ({}) ----\n{}",
                self.dir.display(),
                self.log_text()
            );
        }
        self.cleanup();
    }
}

/// Unmounts every mount at or below `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    for _ in 0..5 {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mps: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|m| m.replace("\\040", " "))
            .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
            .collect();
        if mps.is_empty() {
            return;
        }
        mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mps {
            let c = std::ffi::CString::new(m).unwrap();
            // SAFETY: umount2 with a valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Removes the cgroup directories of a test daemon in every v1 controller and in v2.
pub fn remove_cgroups(parent: &str) {
    let rel = parent.trim_start_matches('/');
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup/unified")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            roots.push(e.path());
        }
    }
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    for root in roots {
        let dir = root.join(rel);
        if dir.is_dir() {
            remove_cgroup_tree(&dir);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on 127.0.0.1 (bound once and released; the caller binds it again).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_port(port: u16, timeout: Duration) -> bool {
    wait_for(timeout, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    })
    .is_some()
}

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1:<free port>, filesystem storage
/// in a temp dir, htpasswd (bcrypt, via `htpasswd -Bbn`) when users are given, access log in
/// `registry.log`. Killed (by PID) and removed on drop.
pub struct DockerRegistry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl DockerRegistry {
    pub fn start(users: &[(&str, &str)]) -> DockerRegistry {
        let dir = tempfile::Builder::new()
            .prefix("bdr-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let port = free_port();
        let mut auth = String::new();
        if !users.is_empty() {
            let mut text = String::new();
            for (u, p) in users {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .expect("htpasswd");
                assert!(out.status.success(), "htpasswd failed");
                text.push_str(String::from_utf8_lossy(&out.stdout).trim_end());
                text.push('\n');
            }
            std::fs::write(dir.path().join("htpasswd"), text).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                dir.path().join("htpasswd").display()
            );
        }
        let cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/docker-registry");
        let r = DockerRegistry {
            port,
            dir,
            child: Some(child),
        };
        assert!(
            wait_port(port, Duration::from_secs(20)),
            "docker-registry did not start:\n{}",
            r.log_text()
        );
        r
    }

    /// `localhost:<port>`, the form Docker users type (insecure: 127.0.0.0/8).
    pub fn addr(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Requests in the access log whose request line contains `method` and `path_part`.
    pub fn requests(&self, method: &str, path_part: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(&format!("\"{method} ")) && l.contains(path_part))
            .count()
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs skopeo with the arguments (TLS verification off for the loopback registries).
pub fn skopeo<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Out::from(
        Command::new("timeout")
            .args(["-k", "5", "120", "skopeo"])
            .args(args)
            .output()
            .expect("run skopeo"),
    )
}

impl Daemon {
    /// Extracts the busybox root filesystem into `<tmp>/<name>` and returns the directory, for
    /// tests that build custom images from it.
    pub fn busybox_rootfs_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(busybox_rootfs_tar())
            .arg("-C")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "extracting the busybox rootfs failed");
        dir
    }

    /// `docker import` of the directory `rootfs` as `tag`, with `changes` (`-c`).
    pub fn import_dir(&self, rootfs: &Path, tag: &str, changes: &[&str]) {
        let tar = self
            .dir
            .join(format!("{}.tar", tag.replace([':', '/'], "_")));
        let st = Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(rootfs)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success(), "tar of {} failed", rootfs.display());
        let mut args = vec!["import".to_string()];
        for c in changes {
            args.push("-c".into());
            args.push(c.to_string());
        }
        args.push(tar.to_string_lossy().into_owned());
        args.push(tag.to_string());
        self.docker(&args).ok();
    }
}
