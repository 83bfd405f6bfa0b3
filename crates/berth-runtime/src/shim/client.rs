//! The async (tokio) side used by the engine: spawn a shim, reconnect to it, talk to it.

use super::{files, ExitInfo, Request, Response, ShimConfig, ShimOptions};
use crate::runtime::RuntimeError;
use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::UnixStream;

/// What `info` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimInfo {
    /// Init pid (host namespace).
    pub init_pid: i32,
    /// The shim's pid.
    pub shim_pid: i32,
    /// Whether the container has a tty.
    pub tty: bool,
    /// created, running or exited.
    pub state: String,
}

/// A handle on a running shim. Cheap to clone; every call opens its own connection.
#[derive(Debug, Clone)]
pub struct ShimClient {
    bundle: PathBuf,
    init_pid: i32,
    shim_pid: i32,
    tty: bool,
}

/// Reads `<bundle>/exit.json`, if the container's exit was recorded.
pub fn read_exit_file(bundle_dir: &Path) -> Option<ExitInfo> {
    let data = std::fs::read(bundle_dir.join(files::EXIT_JSON)).ok()?;
    serde_json::from_slice(&data).ok()
}

fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    crate::sys::write_atomic(path, data)
}

/// Starts a shim for `opts.id` and waits until `runtime create` succeeded (the container is
/// "created" and its init pid known) or failed (the runtime's message is returned and no shim
/// is left behind). The engine then attaches and calls [`ShimClient::start`].
pub async fn spawn(opts: &ShimOptions) -> Result<ShimClient, RuntimeError> {
    let bundle = &opts.bundle;
    let cfg = ShimConfig {
        id: opts.id.clone(),
        runtime_name: opts.runtime.name.clone(),
        runtime_path: opts.runtime.path.clone(),
        runtime_root: opts.runtime.root.clone(),
        runtime_args: opts.runtime.extra_args.clone(),
        tty: opts.tty,
        open_stdin: opts.open_stdin,
        stdin_once: opts.stdin_once,
        console_size: opts.console_size,
        log: opts.log.clone(),
        start_at_create: opts.start_at_create,
    };
    let json = serde_json::to_vec(&cfg).map_err(|e| RuntimeError::Protocol(e.to_string()))?;
    write_private(&bundle.join(files::SHIM_JSON), &json).map_err(RuntimeError::io(format!(
        "writing {}/shim.json",
        bundle.display()
    )))?;
    let _ = std::fs::remove_file(bundle.join(files::EXIT_JSON));

    let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::io("creating the shim status pipe")(e.into()))?;
    let mut cmd = tokio::process::Command::new(&opts.shim_exe);
    cmd.args(&opts.shim_args)
        .arg("--bundle")
        .arg(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false);
    let wfd = status_w.as_raw_fd();
    // SAFETY: runs in the forked child before exec; setsid, dup2 and fcntl are
    // async-signal-safe and only touch the child's own descriptor table.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if wfd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(wfd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
        path: opts.shim_exe.clone(),
        source,
    })?;
    drop(cmd);
    drop(status_w);
    let shim_pid = child.id().map(|p| p as i32).unwrap_or(0);
    let status = read_status(status_r).await;
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = child.wait().await;
            return Err(e);
        }
    };
    let line = status.trim_end();
    if let Some(pid) = line.strip_prefix("ok ") {
        let init_pid: i32 = pid
            .trim()
            .parse()
            .map_err(|_| RuntimeError::Protocol(format!("bad shim status {line:?}")))?;
        // Reap the shim whenever it exits (it is our child while this daemon lives).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        return Ok(ShimClient {
            bundle: bundle.clone(),
            init_pid,
            shim_pid,
            tty: opts.tty,
        });
    }
    let _ = child.wait().await;
    if let Some(msg) = line.strip_prefix("error ") {
        return Err(RuntimeError::Runtime {
            op: "create".into(),
            message: msg.to_string(),
        });
    }
    let diag = std::fs::read_to_string(bundle.join(files::SHIM_LOG)).unwrap_or_default();
    let last = diag.lines().last().unwrap_or("").to_string();
    Err(RuntimeError::Protocol(format!(
        "the shim exited without reporting the create result ({last})"
    )))
}

async fn read_status(fd: OwnedFd) -> Result<String, RuntimeError> {
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
        .map_err(RuntimeError::io("reading the shim status pipe"))?;
    let mut buf = Vec::new();
    rx.read_to_end(&mut buf)
        .await
        .map_err(RuntimeError::io("reading the shim status pipe"))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn gone(bundle: &Path) -> RuntimeError {
    RuntimeError::ShimGone {
        bundle: bundle.to_path_buf(),
        exit: read_exit_file(bundle),
    }
}

impl ShimClient {
    /// Reconnects to the shim of an existing bundle (after a daemon restart).
    pub async fn connect(bundle_dir: &Path) -> Result<ShimClient, RuntimeError> {
        let info = info_at(bundle_dir).await?;
        Ok(ShimClient {
            bundle: bundle_dir.to_path_buf(),
            init_pid: info.init_pid,
            shim_pid: info.shim_pid,
            tty: info.tty,
        })
    }

    /// The bundle directory.
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// The container's init pid.
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// The shim's pid.
    pub fn shim_pid(&self) -> i32 {
        self.shim_pid
    }

    /// Whether the container has a tty.
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// Current state from the shim.
    pub async fn info(&self) -> Result<ShimInfo, RuntimeError> {
        info_at(&self.bundle).await
    }

    /// Runs `runtime start`; returns the runtime's error in Docker's shape on failure.
    pub async fn start(&self) -> Result<(), RuntimeError> {
        let (_, r) = request(&self.bundle, &Request::Start).await?;
        match r.ok {
            true => Ok(()),
            false => Err(RuntimeError::Shim(r.error.unwrap_or_default())),
        }
    }

    /// Resizes the container's tty.
    pub async fn resize(&self, height: u16, width: u16) -> Result<(), RuntimeError> {
        let (_, r) = request(&self.bundle, &Request::Resize { height, width }).await?;
        match r.ok {
            true => Ok(()),
            false => Err(RuntimeError::Shim(r.error.unwrap_or_default())),
        }
    }

    /// Attaches to the container's streams. Non-tty output is stdcopy-framed, tty output raw.
    pub async fn attach(
        &self,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<AttachStream, RuntimeError> {
        let (stream, r) = request(
            &self.bundle,
            &Request::Attach {
                stdin,
                stdout,
                stderr,
            },
        )
        .await?;
        if !r.ok {
            return Err(RuntimeError::Shim(r.error.unwrap_or_default()));
        }
        Ok(AttachStream {
            inner: stream,
            tty: r.tty.unwrap_or(self.tty),
        })
    }

    /// Waits until the container exited and exit.json is written. Works after the shim is gone.
    pub async fn wait(&self) -> Result<ExitInfo, RuntimeError> {
        match request(&self.bundle, &Request::Wait).await {
            Ok((_, r)) => match r.exit {
                Some(e) if r.ok => Ok(e),
                _ => read_exit_file(&self.bundle).ok_or_else(|| {
                    RuntimeError::Shim(r.error.unwrap_or_else(|| "wait failed".into()))
                }),
            },
            Err(RuntimeError::ShimGone { exit: Some(e), .. }) => Ok(e),
            Err(e) => Err(e),
        }
    }
}

async fn info_at(bundle: &Path) -> Result<ShimInfo, RuntimeError> {
    let (_, r) = request(bundle, &Request::Info).await?;
    if !r.ok {
        return Err(RuntimeError::Shim(r.error.unwrap_or_default()));
    }
    Ok(ShimInfo {
        init_pid: r.init_pid.unwrap_or(0),
        shim_pid: r.shim_pid.unwrap_or(0),
        tty: r.tty.unwrap_or(false),
        state: r.state.unwrap_or_default(),
    })
}

/// Sends one request and reads the answer line without reading past it.
async fn request(bundle: &Path, req: &Request) -> Result<(UnixStream, Response), RuntimeError> {
    let sock = bundle.join(files::SHIM_SOCK);
    let mut attempts = 0;
    let mut stream = loop {
        // A bundle path longer than a socket address holds is reached through its
        // directory's descriptor; the descriptor lives until the connect is done.
        let addr = sys::socket_addr_path(&sock).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                gone(bundle)
            } else {
                RuntimeError::io(format!("connecting to {}", sock.display()))(e)
            }
        })?;
        match UnixStream::connect(addr.path()).await {
            Ok(s) => break s,
            // No socket, nobody listening, or the listener closed while we were queued:
            // the shim is gone (or going) and exit.json, if any, has the result.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) =>
            {
                return Err(gone(bundle))
            }
            // A full accept backlog makes a unix connect fail with EAGAIN: retry briefly.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => {
                return Err(RuntimeError::io(format!(
                    "connecting to {}",
                    sock.display()
                ))(e))
            }
        }
    };
    let mut line = serde_json::to_vec(req).map_err(|e| RuntimeError::Protocol(e.to_string()))?;
    line.push(b'\n');
    if let Err(e) = stream.write_all(&line).await {
        return match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => Err(gone(bundle)),
            _ => Err(RuntimeError::io("writing to the shim")(e)),
        };
    }
    let mut answer = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte).await {
            Ok(0) => return Err(gone(bundle)),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => {
                answer.push(byte[0]);
                if answer.len() > 1 << 20 {
                    return Err(RuntimeError::Protocol("answer line too long".into()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Err(gone(bundle)),
            Err(e) => return Err(RuntimeError::io("reading from the shim")(e)),
        }
    }
    let r: Response = serde_json::from_slice(&answer)
        .map_err(|e| RuntimeError::Protocol(format!("bad answer from the shim: {e}")))?;
    Ok((stream, r))
}

/// An attach connection: read = container output (stdcopy-framed unless tty), write = stdin,
/// shutdown = half-close (with `stdin_once` the container's stdin is closed).
#[derive(Debug)]
pub struct AttachStream {
    inner: UnixStream,
    tty: bool,
}

impl AttachStream {
    /// Whether the output is raw tty bytes (true) or stdcopy frames (false).
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// The underlying socket (e.g. for `into_split`).
    pub fn into_inner(self) -> UnixStream {
        self.inner
    }
}

impl AsyncRead for AttachStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            // The shim closes a connection that still has unread input from us (stdin sent
            // after the container exited): the kernel reports that as a reset once all output
            // was read. For the reader it is the end of the stream.
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for AttachStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
