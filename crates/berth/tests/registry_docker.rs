//! Debian's dockerd 20.10 and the docker CLI pushing to and pulling from `berth registry serve`,
//! with `docker login`, in both auth modes. The test starts its own dockerd (own data root,
//! exec root, pidfile and unix socket in a temp dir, no iptables, no bridge) and kills it and
//! its containerd by PID at the end, even on failure.

mod registry_util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use registry_util::*;

struct Dockerd {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
    config: PathBuf,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start /usr/sbin/dockerd");
        let d = Dockerd {
            child: Some(child),
            dir: dir.to_path_buf(),
            socket,
            config: dir.join("docker-config"),
        };
        std::fs::create_dir_all(&d.config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if d.docker(&["version"]).status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        self.docker_stdin(args, None)
    }

    fn docker_stdin(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut c = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.config)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run the docker CLI");
        if let Some(s) = stdin {
            c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        c.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(!out.status.success(), "docker {args:?} should have failed");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn login(&self, addr: &str, user: &str, pw: &str) -> std::process::Output {
        self.docker_stdin(&["login", "-u", user, "--password-stdin", addr], Some(pw))
    }
}

fn pid_from(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

fn kill(pid: i32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // containerd's PID first: dockerd removes the file when it stops it.
        let containerd = pid_from(&self.dir.join("exec/containerd/containerd.pid"));
        if let Some(mut c) = self.child.take() {
            kill(c.id() as i32, "-TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(pid) = containerd {
            if alive(pid) {
                kill(pid, "-KILL");
            }
        }
        // Anything dockerd left mounted under our directory.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            let dir = self.dir.to_string_lossy().into_owned();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&dir))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").args(["-l", p]).status();
            }
        }
    }
}

#[test]
fn docker_push_and_pull_with_login() {
    let t = tempfile::Builder::new()
        .prefix("brd")
        .tempdir_in("/tmp")
        .unwrap();
    let archive = busybox_archive(t.path());
    let h = htpasswd(t.path(), &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let rules = "access:\n  - account: \"*\"\n    name: \"${account}/*\"\n    actions: [pull, push, delete]\n  - account: alice\n    name: \"library/*\"\n    actions: [push]\n  - account: \"*\"\n    name: \"library/*\"\n    actions: [pull]\n  - account: anonymous\n    name: \"library/*\"\n    actions: [pull]\n";
    let token_cfg = t.path().join("token.yml");
    std::fs::write(&token_cfg, format!("auth:\n  token: {{}}\n{rules}")).unwrap();
    let basic_cfg = t.path().join("basic.yml");
    std::fs::write(&basic_cfg, rules).unwrap();

    let dockerd = Dockerd::start(&t.path().join("docker"));
    dockerd.ok(&["load", "-i", archive.to_str().unwrap()]);

    for (mode, cfg) in [("token", &token_cfg), ("basic", &basic_cfg)] {
        let reg = Registry::start(
            &t.path().join(format!("root-{mode}")),
            &[
                "--htpasswd",
                h.to_str().unwrap(),
                "--config",
                cfg.to_str().unwrap(),
            ],
        );
        let a = reg.addr.as_str();
        let mine = format!("{a}/alice/busybox:v1");
        let theirs = format!("{a}/bob/busybox:v1");
        let library = format!("{a}/library/busybox:latest");
        for r in [&mine, &theirs, &library] {
            dockerd.ok(&["tag", "busybox:latest", r]);
        }
        // Not logged in: refused.
        let out = dockerd.fails(&["push", &mine]);
        assert!(
            out.contains("denied: requested access to the resource is denied")
                || out.contains("no basic auth credentials"),
            "{mode}: {out}"
        );
        // Wrong password.
        let out = dockerd.login(a, "alice", "wrong");
        assert!(!out.status.success(), "{mode}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .to_lowercase()
                .contains("unauthorized"),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Right password.
        let out = dockerd.login(a, "alice", "alice-pw");
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
        let pushed = dockerd.ok(&["push", &mine]);
        assert!(pushed.contains("digest: sha256:"), "{pushed}");
        dockerd.ok(&["push", &library]);
        // Someone else's namespace: Docker's familiar message, at once.
        let started = Instant::now();
        let out = dockerd.fails(&["push", &theirs]);
        assert!(
            out.contains("denied: requested access to the resource is denied"),
            "{mode}: {out}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{mode}: docker retried a refusal"
        );
        // Pull back after removing the local tag.
        dockerd.ok(&["rmi", &mine]);
        let pulled = dockerd.ok(&["pull", &mine]);
        assert!(pulled.contains("Digest: sha256:"), "{pulled}");
        let digests = dockerd.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &mine,
        ]);
        assert!(
            digests.contains(&format!("{a}/alice/busybox@sha256:")),
            "{digests}"
        );
        // Anonymous pull of library/*. With Basic auth dockerd sends nothing without
        // credentials once /v2/ challenged it ("no basic auth credentials"), as with
        // distribution; anonymous pulls by Docker need the token service.
        dockerd.ok(&["logout", a]);
        dockerd.ok(&["rmi", &library]);
        if mode == "token" {
            dockerd.ok(&["pull", &library]);
        } else {
            let out = dockerd.fails(&["pull", &library]);
            assert!(out.contains("no basic auth credentials"), "{out}");
        }
        let out = dockerd.fails(&["pull", &mine]);
        assert!(
            out.contains("denied")
                || out.contains("no basic auth credentials")
                || out.contains("unauthorized"),
            "{mode}: {out}"
        );
        check_store(&reg.root);
        for r in [&mine, &theirs, &library] {
            let _ = dockerd.docker(&["rmi", r]);
        }
    }
    drop(dockerd);
}
