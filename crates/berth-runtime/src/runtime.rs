//! The OCI runtime CLI driver (runc; crun/youki by path).
//!
//! Every invocation runs `<path> --root <root> --log <file> --log-format json [extra args] <cmd>`
//! so the runtime's own error message can be read back from its JSON log and surfaced in
//! Docker's shape (`OCI runtime exec failed: <message>: unknown`). Log files are per call,
//! under [`OciRuntime::log_dir`], and removed afterwards.
//!
//! `exec` runs the runtime in the foreground (not detached): it waits for the process and
//! exits with its status (128+n for a signal). With a tty the runtime only relays through a
//! console *it* owns in foreground mode (`--console-socket` is honoured by runc only when
//! detached, and a detached exec loses the exit status), so berth gives the runtime the slave
//! side of a pty pair as its controlling terminal and keeps the master: reads/writes go through
//! the master, and a resize on the master reaches the runtime as SIGWINCH, which it forwards to
//! the container's console.

use serde::Deserialize;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use crate::shim::ExitInfo;

/// Errors of the runtime driver and of the shim client.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime ran and failed; `message` is its own error text.
    #[error("OCI runtime {op} failed: {message}: unknown")]
    Runtime {
        /// create, start, exec, kill, delete …
        op: String,
        /// The runtime's message (e.g. `runc create failed: unable to start container process: …`).
        message: String,
    },
    /// The runtime binary could not be executed.
    #[error("cannot run OCI runtime {path:?}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The container does not exist in the runtime.
    #[error("container {0} does not exist in the OCI runtime")]
    NotFound(String),
    /// The runtime printed something we could not parse.
    #[error("unexpected output from the OCI runtime ({op}): {detail}")]
    BadOutput {
        /// The operation.
        op: String,
        /// What was wrong.
        detail: String,
    },
    /// The shim is not running (the container exited, or the shim was killed).
    #[error("the container's supervisor (shim) at {bundle} is not running")]
    ShimGone {
        /// Bundle directory.
        bundle: PathBuf,
        /// The recorded exit, when exit.json exists.
        exit: Option<ExitInfo>,
    },
    /// The shim answered with an error.
    #[error("{0}")]
    Shim(String),
    /// The shim's protocol was violated (a bug or a version mismatch).
    #[error("shim protocol error: {0}")]
    Protocol(String),
    /// Some other I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
}

impl RuntimeError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> RuntimeError {
        let context = context.into();
        move |source| RuntimeError::Io { context, source }
    }

    /// The exit code Docker derives from a start/exec failure message: 127 for a missing
    /// command, 126 for a permission problem, else 128 (Docker's daemon uses the same rule).
    pub fn exit_code_hint(&self) -> i32 {
        exit_code_for_message(&self.to_string())
    }
}

/// 127 for "no such file or directory"/"executable file not found", 126 for
/// "permission denied", 128 otherwise.
pub fn exit_code_for_message(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        128
    }
}

/// The runtime's `state` output.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RuntimeState {
    /// Container id.
    pub id: String,
    /// Init pid (0 when stopped).
    #[serde(default)]
    pub pid: i32,
    /// created, running, paused, stopped.
    pub status: String,
    /// Bundle path.
    #[serde(default)]
    pub bundle: String,
}

/// An OCI runtime binary and its state root.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    /// Name shown in messages (runc, crun, youki).
    pub name: String,
    /// The binary.
    pub path: PathBuf,
    /// `--root` (e.g. `<exec-root>/runc`).
    pub root: PathBuf,
    /// Extra global arguments placed before the command (e.g. `--systemd-cgroup`).
    pub extra_args: Vec<String>,
    /// Directory for per-call `--log` files (default: `<root>.log`, a sibling of `root`).
    pub log_dir: PathBuf,
}

static CALLS: AtomicU64 = AtomicU64::new(0);

/// Reads the runtime's JSON log and returns the last error message, if any.
pub fn last_error_from_log(path: &Path) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    let mut last = None;
    for line in data.split(|&b| b == b'\n') {
        #[derive(Deserialize)]
        struct Entry {
            level: Option<String>,
            msg: Option<String>,
        }
        if let Ok(e) = serde_json::from_slice::<Entry>(line) {
            if matches!(e.level.as_deref(), Some("error") | Some("fatal")) {
                if let Some(m) = e.msg {
                    last = Some(m);
                }
            }
        }
    }
    last
}

fn not_found(msg: &str) -> bool {
    msg.contains("does not exist") || msg.contains("not found") || msg.contains("no such container")
}

impl OciRuntime {
    /// A runtime with the default log directory.
    pub fn new(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
    ) -> Self {
        let root: PathBuf = root.into();
        let mut log_dir = root.as_os_str().to_owned();
        log_dir.push(".log");
        OciRuntime {
            name: name.into(),
            path: path.into(),
            root,
            extra_args: Vec::new(),
            log_dir: PathBuf::from(log_dir),
        }
    }

    /// Global arguments for one invocation with `log` as the log file.
    pub fn global_args(&self, log: &Path) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--root".into(),
            self.root.clone().into(),
            "--log".into(),
            log.into(),
            "--log-format".into(),
            "json".into(),
        ];
        a.extend(self.extra_args.iter().map(OsString::from));
        a
    }

    fn new_log(&self, id: &str, op: &str) -> Result<PathBuf, RuntimeError> {
        std::fs::create_dir_all(&self.log_dir).map_err(RuntimeError::io(format!(
            "creating {}",
            self.log_dir.display()
        )))?;
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .log_dir
            .join(format!("{id}.{op}.{}.{n}.json", std::process::id())))
    }

    fn failure(
        &self,
        op: &str,
        log: &Path,
        stderr: &[u8],
        status: ExitStatus,
        id: &str,
    ) -> RuntimeError {
        let msg = last_error_from_log(log)
            .or_else(|| {
                let s = String::from_utf8_lossy(stderr).trim().to_string();
                (!s.is_empty()).then_some(s)
            })
            .unwrap_or_else(|| format!("{} {op} exited with {status}", self.name));
        if not_found(&msg) && op != "create" && op != "exec" {
            return RuntimeError::NotFound(id.to_string());
        }
        RuntimeError::Runtime {
            op: op.to_string(),
            message: msg,
        }
    }

    /// Runs a short command and returns stdout.
    async fn run(&self, id: &str, op: &str, args: &[OsString]) -> Result<Vec<u8>, RuntimeError> {
        let log = self.new_log(id, op)?;
        let out = tokio::process::Command::new(&self.path)
            .args(self.global_args(&log))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|source| RuntimeError::Spawn {
                path: self.path.clone(),
                source,
            });
        let result = match out {
            Ok(o) if o.status.success() => Ok(o.stdout),
            Ok(o) => Err(self.failure(op, &log, &o.stderr, o.status, id)),
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&log);
        result
    }

    /// `kill [--all] <id> <signal>`.
    pub async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        let mut a: Vec<OsString> = vec!["kill".into()];
        if all {
            a.push("--all".into());
        }
        a.push(id.into());
        a.push(signal.to_string().into());
        self.run(id, "kill", &a).await.map(|_| ())
    }

    /// `delete [--force] <id>`.
    pub async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut a: Vec<OsString> = vec!["delete".into()];
        if force {
            a.push("--force".into());
        }
        a.push(id.into());
        self.run(id, "delete", &a).await.map(|_| ())
    }

    /// `update --resources <file> <id>`: applies OCI `LinuxResources` (only the fields given)
    /// to a running container's cgroups.
    pub async fn update(
        &self,
        id: &str,
        resources: &serde_json::Value,
    ) -> Result<(), RuntimeError> {
        let file = self.new_log(id, "update-resources")?;
        let bytes = serde_json::to_vec(resources).map_err(|e| RuntimeError::BadOutput {
            op: "update".into(),
            detail: e.to_string(),
        })?;
        std::fs::write(&file, bytes)
            .map_err(RuntimeError::io(format!("writing {}", file.display())))?;
        let r = self
            .run(
                id,
                "update",
                &[
                    "update".into(),
                    "--resources".into(),
                    file.clone().into(),
                    id.into(),
                ],
            )
            .await;
        let _ = std::fs::remove_file(&file);
        r.map(|_| ())
    }

    /// `pause <id>`.
    pub async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, "pause", &["pause".into(), id.into()])
            .await
            .map(|_| ())
    }

    /// `resume <id>`.
    pub async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, "resume", &["resume".into(), id.into()])
            .await
            .map(|_| ())
    }

    /// `state <id>`.
    pub async fn state(&self, id: &str) -> Result<RuntimeState, RuntimeError> {
        let out = self.run(id, "state", &["state".into(), id.into()]).await?;
        serde_json::from_slice(&out).map_err(|e| RuntimeError::BadOutput {
            op: "state".into(),
            detail: e.to_string(),
        })
    }

    /// `ps --format json <id>`: host pids of the container's processes.
    pub async fn ps(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let out = self
            .run(
                id,
                "ps",
                &["ps".into(), "--format".into(), "json".into(), id.into()],
            )
            .await?;
        let s = String::from_utf8_lossy(&out);
        let s = s.trim();
        if s.is_empty() || s == "null" {
            return Ok(Vec::new());
        }
        serde_json::from_str(s).map_err(|e| RuntimeError::BadOutput {
            op: "ps".into(),
            detail: e.to_string(),
        })
    }

    /// Synchronous `delete [--force] <id>` for the shim (not async).
    pub fn delete_sync(&self, id: &str, force: bool, log: &Path) -> Result<(), RuntimeError> {
        let _ = std::fs::remove_file(log);
        let mut cmd = std::process::Command::new(&self.path);
        cmd.args(self.global_args(log)).arg("delete");
        if force {
            cmd.arg("--force");
        }
        let out = cmd
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| RuntimeError::Spawn {
                path: self.path.clone(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failure("delete", log, &out.stderr, out.status, id))
        }
    }

    /// Runs `exec` of `process` (an OCI process, e.g. built with [`exec_process`]) in container
    /// `id`, in the foreground. Returns once the runtime was started; use
    /// [`ExecProcess::wait`] for the exit code.
    pub async fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        opts: &ExecOptions,
    ) -> Result<ExecProcess, RuntimeError> {
        let log = self.new_log(id, "exec")?;
        let mut process_file = log.clone();
        process_file.set_extension("process.json");
        let mut pid_file = log.clone();
        pid_file.set_extension("pid");
        let mut p = process.clone();
        p.set_terminal(Some(opts.tty));
        // The runtime sizes the new console from consoleSize before the process runs (a resize
        // after start would race with the process reading its size).
        p.set_console_size(match (opts.tty, opts.console_size) {
            (true, Some((h, w))) => oci_spec::runtime::BoxBuilder::default()
                .height(h as u64)
                .width(w as u64)
                .build()
                .ok(),
            _ => None,
        });
        let json = serde_json::to_vec(&p).map_err(|e| RuntimeError::BadOutput {
            op: "exec".into(),
            detail: e.to_string(),
        })?;
        write_private(&process_file, &json).map_err(RuntimeError::io(format!(
            "writing {}",
            process_file.display()
        )))?;
        let mut cmd = tokio::process::Command::new(&self.path);
        cmd.args(self.global_args(&log))
            .arg("exec")
            .arg("--process")
            .arg(&process_file)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id);
        let cleanup = Cleanup(vec![log.clone(), process_file.clone(), pid_file.clone()]);
        if opts.tty {
            let (master, slave) =
                open_pty().map_err(RuntimeError::io("allocating a pseudo-terminal for exec"))?;
            if let Some((h, w)) = opts.console_size {
                crate::sys::set_winsize(&master, h, w)
                    .map_err(RuntimeError::io("setting the exec console size"))?;
            }
            let s0 = slave.try_clone().map_err(RuntimeError::io("dup pty"))?;
            let s1 = slave.try_clone().map_err(RuntimeError::io("dup pty"))?;
            cmd.stdin(Stdio::from(s0))
                .stdout(Stdio::from(s1))
                .stderr(Stdio::from(slave));
            // SAFETY: the closure runs in the forked child before exec and only calls
            // async-signal-safe syscalls (setsid, ioctl).
            unsafe {
                cmd.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
                path: self.path.clone(),
                source,
            })?;
            crate::sys::set_nonblocking(&master, true)
                .map_err(RuntimeError::io("pty master non-blocking"))?;
            // SAFETY: `master` is an OwnedFd: it is open, and its as_raw_fd always returns the
            // same descriptor until the AsyncFd (which owns it) is dropped.
            let registered = unsafe { AsyncFd::register(master) }
                .map_err(|e| RuntimeError::io("registering the pty master")(e.into()))?;
            let master = Arc::new(registered);
            Ok(ExecProcess {
                runtime: self.clone(),
                id: id.to_string(),
                child,
                stdin: None,
                stdout: None,
                stderr: None,
                pty: Some(Pty { fd: master }),
                log,
                pid_file,
                _cleanup: cleanup,
            })
        } else {
            cmd.stdin(if opts.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
                path: self.path.clone(),
                source,
            })?;
            Ok(ExecProcess {
                runtime: self.clone(),
                id: id.to_string(),
                stdin: child.stdin.take(),
                stdout: child.stdout.take(),
                stderr: child.stderr.take(),
                child,
                pty: None,
                log,
                pid_file,
                _cleanup: cleanup,
            })
        }
    }
}

fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

/// Builds an OCI process for `exec` (Docker's exec: args, env, cwd, user, caps of the container).
pub fn exec_process(
    base: &oci_spec::runtime::Process,
    args: Vec<String>,
    env: Option<Vec<String>>,
    cwd: Option<String>,
    user: Option<&crate::user::ResolvedUser>,
) -> oci_spec::runtime::Process {
    let mut p = base.clone();
    p.set_args(Some(args));
    if let Some(env) = env {
        p.set_env(Some(env));
    }
    if let Some(cwd) = cwd {
        p.set_cwd(cwd.into());
    }
    if let Some(u) = user {
        let mut ou = oci_spec::runtime::User::default();
        ou.set_uid(u.uid);
        ou.set_gid(u.gid);
        if !u.additional_gids.is_empty() {
            ou.set_additional_gids(Some(u.additional_gids.clone()));
        }
        p.set_user(ou);
    }
    p.set_console_size(None);
    p
}

struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// How to run an exec.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Allocate a tty.
    pub tty: bool,
    /// Keep stdin open (non-tty: a pipe; tty: always writable through the master).
    pub stdin: bool,
    /// Initial console size (height, width).
    pub console_size: Option<(u16, u16)>,
}

/// A running exec.
pub struct ExecProcess {
    runtime: OciRuntime,
    id: String,
    child: Child,
    /// stdin pipe (non-tty with `stdin`).
    pub stdin: Option<ChildStdin>,
    /// stdout pipe (non-tty).
    pub stdout: Option<ChildStdout>,
    /// stderr pipe (non-tty).
    pub stderr: Option<ChildStderr>,
    pty: Option<Pty>,
    log: PathBuf,
    pid_file: PathBuf,
    _cleanup: Cleanup,
}

impl std::fmt::Debug for ExecProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecProcess")
            .field("id", &self.id)
            .field("tty", &self.pty.is_some())
            .finish()
    }
}

impl ExecProcess {
    /// The pty master (tty mode): read output, write input. Cloning shares the fd.
    pub fn pty(&self) -> Option<Pty> {
        self.pty.clone()
    }

    /// Resizes the exec's terminal (tty mode).
    pub fn resize(&self, height: u16, width: u16) -> Result<(), RuntimeError> {
        match &self.pty {
            Some(p) => p.resize(height, width),
            None => Err(RuntimeError::Shim(
                "cannot resize an exec without a tty".into(),
            )),
        }
    }

    /// The exec'd process's host pid once the runtime started it.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Waits for the process; returns its exit code (128+n when killed by signal n).
    /// A failure of the runtime itself (e.g. the command does not exist) is an error carrying
    /// the runtime's message (see [`RuntimeError::exit_code_hint`]).
    pub async fn wait(&mut self) -> Result<i32, RuntimeError> {
        let status = self
            .child
            .wait()
            .await
            .map_err(RuntimeError::io("waiting for the OCI runtime exec"))?;
        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            _ => 255,
        };
        if code != 0 {
            // The process itself exiting non-zero leaves no error in the runtime's log; a
            // failure to start it does.
            if let Some(msg) = last_error_from_log(&self.log) {
                return Err(RuntimeError::Runtime {
                    op: "exec".into(),
                    message: msg,
                });
            }
        }
        Ok(code)
    }

    /// Sends a signal to the exec'd process (not to the runtime).
    pub fn signal(&self, sig: i32) -> Result<(), RuntimeError> {
        let pid = self
            .pid()
            .ok_or_else(|| RuntimeError::Shim("the exec process has not started yet".into()))?;
        let sig = nix::sys::signal::Signal::try_from(sig)
            .map_err(|e| RuntimeError::Shim(format!("invalid signal {sig}: {e}")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
            .map_err(|e| RuntimeError::io("signalling the exec process")(e.into()))
    }

    /// Kills the runtime process itself (an exec that never started, e.g. a runtime stuck on
    /// a frozen container); [`ExecProcess::wait`] then returns.
    pub fn kill_runtime(&mut self) {
        let _ = self.child.start_kill();
    }

    /// The runtime this exec runs under.
    pub fn runtime(&self) -> &OciRuntime {
        &self.runtime
    }
}

fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: into_raw_fd transfers ownership of a valid fd to the OwnedFd.
    let master: OwnedFd = unsafe {
        use std::os::fd::{FromRawFd, IntoRawFd};
        OwnedFd::from_raw_fd(master.into_raw_fd())
    };
    Ok((master, slave))
}

/// An async pty master (read = terminal output, write = terminal input).
#[derive(Clone, Debug)]
pub struct Pty {
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl Pty {
    /// TIOCSWINSZ.
    pub fn resize(&self, height: u16, width: u16) -> Result<(), RuntimeError> {
        crate::sys::set_winsize(self.fd.get_ref(), height, width)
            .map_err(RuntimeError::io("resizing the terminal"))
    }
}

impl AsyncRead for Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(r) => r?,
                Poll::Pending => return Poll::Pending,
            };
            let unfilled = buf.initialize_unfilled();
            let res = guard.try_io(|fd| {
                match nix::unistd::read(fd.get_ref().as_fd(), unfilled) {
                    Ok(n) => Ok(n),
                    // EIO: every slave closed — the terminal's EOF.
                    Err(nix::errno::Errno::EIO) => Ok(0),
                    Err(e) => Err(io::Error::from(e)),
                }
            });
            match res {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = match self.fd.poll_write_ready(cx) {
                Poll::Ready(r) => r?,
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The raw fd of a pty (for callers that need to poll it themselves).
impl AsRawFd for Pty {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.json");
        std::fs::write(
            &p,
            "{\"level\":\"warning\",\"msg\":\"w\",\"time\":\"x\"}\n{\"level\":\"error\",\"msg\":\"runc create failed: unable to start container process: exec: \\\"/nonexistent-binary\\\": stat /nonexistent-binary: no such file or directory\",\"time\":\"2026-11-27T18:13:36Z\"}",
        )
        .unwrap();
        let m = last_error_from_log(&p).unwrap();
        let e = RuntimeError::Runtime {
            op: "create".into(),
            message: m,
        };
        assert_eq!(
            e.to_string(),
            "OCI runtime create failed: runc create failed: unable to start container process: exec: \"/nonexistent-binary\": stat /nonexistent-binary: no such file or directory: unknown"
        );
        assert_eq!(e.exit_code_hint(), 127);
        assert_eq!(exit_code_for_message("exec: permission denied"), 126);
        assert_eq!(exit_code_for_message("boom"), 128);
        assert!(last_error_from_log(&dir.path().join("missing")).is_none());
    }

    #[test]
    fn log_dir_default_is_sibling() {
        let r = OciRuntime::new("runc", "/usr/sbin/runc", "/run/berth/runc");
        assert_eq!(r.log_dir, Path::new("/run/berth/runc.log"));
        let a = r.global_args(Path::new("/l"));
        assert_eq!(a[0], "--root");
        assert_eq!(a[4], "--log-format");
    }
}
