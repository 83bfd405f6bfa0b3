//! `-H ssh://user@host[:port]/socket`: the berth CLI and the Docker CLI reach a daemon through
//! the system's ssh client and `system dial-stdio` on the remote end (berth runs `berth
//! system dial-stdio`, the Docker CLI `docker system dial-stdio`). The remote end is an sshd
//! this test starts on a loopback port with keys of its own.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{berth_bin, free_port, wait_port, Daemon, Out, DOCKER};

struct Sshd {
    child: Child,
    port: u16,
    /// Holds an `ssh` wrapper that uses this test's keys and config.
    bin: PathBuf,
    dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_sshd(dir: &Path) -> Sshd {
    let dir = dir.join("ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    sh(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        &p("host_key"),
    ]);
    sh(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        &p("client_key"),
    ]);
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = free_port();
    // The remote end finds `berth` (and the Docker CLI in /usr/local/bin) on its PATH.
    let berth_dir = berth_bin().parent().unwrap().to_path_buf();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\nLogLevel VERBOSE\n",
            p("host_key"),
            p("authorized_keys"),
            p("sshd.pid"),
            berth_dir.display()
        ),
    )
    .unwrap();
    // sshd's privilege separation directory (made by the service's start script normally).
    std::fs::create_dir_all("/run/sshd").unwrap();
    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f", &p("sshd_config")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start sshd (install openssh-server)");
    assert!(
        wait_port(port, Duration::from_secs(20)),
        "sshd did not start: {}",
        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
    );
    // The client side: `ssh` on PATH, with this test's identity and no known_hosts checks.
    std::fs::write(
        dir.join("ssh_config"),
        format!(
            "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  \
             UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n",
            p("client_key")
        ),
    )
    .unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("ssh"),
        format!(
            "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
            p("ssh_config")
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    Sshd {
        child,
        port,
        bin,
        dir,
    }
}

fn run(program: &Path, sshd: &Sshd, cfg: &Path, args: &[&str], input: &[u8]) -> Out {
    let path = format!(
        "{}:{}",
        sshd.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("timeout")
        .args(["-k", "5", "120"])
        .arg(program)
        .args(args)
        .env("PATH", path)
        .env("DOCKER_CONFIG", cfg)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = child.stdin.take().unwrap();
    i.write_all(input).unwrap();
    drop(i);
    Out::of(child.wait_with_output().unwrap())
}

#[test]
fn berth_and_docker_clis_over_ssh() {
    let d = Daemon::start();
    d.load_busybox();
    let sshd = start_sshd(&d.dir);
    let cfg = d.dir.join("ssh-cli-config");
    let url = format!("ssh://root@127.0.0.1:{}{}", sshd.port, d.sock.display());
    let berth = berth_bin();
    let docker = Path::new(DOCKER);

    let out = run(
        &berth,
        &sshd,
        &cfg,
        &["-H", &url, "version", "--format", "{{.Server.Os}}"],
        b"",
    );
    assert_eq!(
        out.ok(),
        "linux",
        "{}\nsshd log:\n{}",
        out.stderr,
        std::fs::read_to_string(sshd.dir.join("sshd.log")).unwrap_or_default()
    );
    // An attached run with stdin: the hijacked stream through ssh, half-closed at stdin's end.
    let out = run(
        &berth,
        &sshd,
        &cfg,
        &[
            "-H",
            &url,
            "run",
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "cat; echo bye",
        ],
        b"over ssh\n",
    );
    assert_eq!(out.ok(), "over ssh\nbye", "{}", out.stderr);

    // The Docker CLI runs `docker --host=unix://… system dial-stdio` remotely.
    let out = run(
        docker,
        &sshd,
        &cfg,
        &[
            "-H",
            &url,
            "run",
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "cat; echo end",
        ],
        b"docker ssh\n",
    );
    assert_eq!(out.ok(), "docker ssh\nend", "{}", out.stderr);

    // A context with an ssh endpoint, made by berth, used by both.
    run(
        &berth,
        &sshd,
        &cfg,
        &[
            "context",
            "create",
            "viassh",
            "--docker",
            &format!("host={url}"),
        ],
        b"",
    )
    .ok();
    let out = run(
        &berth,
        &sshd,
        &cfg,
        &["--context", "viassh", "ps", "-a", "--format", "{{.Image}}"],
        b"",
    );
    out.ok();
    let out = run(
        docker,
        &sshd,
        &cfg,
        &[
            "--context",
            "viassh",
            "version",
            "--format",
            "{{.Server.Os}}",
        ],
        b"",
    );
    assert_eq!(out.ok(), "linux", "{}", out.stderr);

    // An unreachable ssh host: a clear error, no hang.
    let bad = format!("ssh://root@127.0.0.1:{}", free_port());
    let out = run(&berth, &sshd, &cfg, &["-H", &bad, "version"], b"");
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("Cannot connect") || out.stderr.contains("ssh"),
        "{}",
        out.stderr
    );
    // A bad ssh URL.
    let out = run(
        &berth,
        &sshd,
        &cfg,
        &["-H", "ssh://u:pw@host", "version"],
        b"",
    );
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("plain-text password is not supported"),
        "{}",
        out.stderr
    );
}
