//! The shim process: synchronous, single-threaded, one poll(2) loop. See the module docs of
//! [`crate::shim`] for the life cycle and the protocol.

use super::{files, ExitInfo, Request, Response, ShimConfig, MAX_CLIENT_BUFFER};
use crate::cgroups::{self, CgroupMode};
use crate::logs::{LineSplitter, LogWriter};
use crate::runtime::{exit_code_for_message, last_error_from_log, OciRuntime};
use crate::stdcopy::{self, StdStream};
use crate::sys;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Largest request line.
const MAX_REQUEST: usize = 4096;
/// Pending container-stdin bytes before the shim stops reading from attach clients.
const MAX_STDIN_BUFFER: usize = 256 * 1024;
/// How long output is drained after init exited (processes outside a private pid namespace may
/// keep the pipes open forever).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the final output is flushed to attach clients before they are closed.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// With `start_at_create`, output is held until the engine's `start` (its attach clients are
/// connected by then); a daemon that never comes back must not leave the container blocked.
const HOLD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the supervisor must be idle before it drops the pages its last work faulted in.
const IDLE_RELEASE_MS: i32 = 1000;
/// The status pipe inherited from the spawner.
const STATUS_FD: RawFd = 3;

macro_rules! diag {
    ($($arg:tt)*) => {{
        // The shim's stderr is <bundle>/shim.log.
        let _ = writeln!(io::stderr(), "{} shim: {}", crate::time::format_rfc3339_nano(&chrono::Utc::now()), format_args!($($arg)*));
    }};
}

/// Entry point of `berth shim --bundle <dir>`; `args` are the arguments after `shim`.
/// Returns the process exit code.
pub fn shim_main(args: Vec<OsString>) -> i32 {
    let mut bundle: Option<PathBuf> = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--bundle" {
            bundle = it.next().map(PathBuf::from);
        }
    }
    // Everything but stdio and the status pipe was inherited by accident: close it.
    sys::close_fds_from(STATUS_FD as u32 + 1);
    // SAFETY: fd 3 is the status pipe set up by spawn(); F_GETFD only checks it is open.
    let status = if unsafe { libc::fcntl(STATUS_FD, libc::F_GETFD) } >= 0 {
        // SAFETY: the fd is open and nothing else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(STATUS_FD) };
        // SAFETY: setting FD_CLOEXEC on an fd we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Some(std::fs::File::from(fd))
    } else {
        None
    };
    let Some(bundle) = bundle else {
        report(status, "error shim: missing --bundle");
        return 2;
    };
    redirect_stderr(&bundle.join(files::SHIM_LOG));
    match Shim::setup(&bundle) {
        Ok(mut shim) => {
            report(status, &format!("ok {}", shim.init_pid));
            sys::release_startup_pages();
            shim.run();
            0
        }
        Err(SetupError { message, cleanup }) => {
            diag!("create failed: {message}");
            if cleanup {
                let _ = std::fs::remove_file(bundle.join(files::SHIM_SOCK));
                let _ = std::fs::remove_file(bundle.join(files::SHIM_PID));
            }
            report(status, &format!("error {message}"));
            1
        }
    }
}

fn report(status: Option<std::fs::File>, line: &str) {
    if let Some(mut f) = status {
        let mut s = line.replace('\n', " ");
        s.push('\n');
        let _ = f.write_all(s.as_bytes());
    }
}

fn redirect_stderr(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
    {
        // SAFETY: dup2 onto fd 2; `f` stays valid for the call and is closed afterwards.
        unsafe { libc::dup2(f.as_raw_fd(), 2) };
    }
}

struct SetupError {
    message: String,
    cleanup: bool,
}

impl SetupError {
    fn new(message: impl Into<String>) -> Self {
        SetupError {
            message: message.into(),
            cleanup: true,
        }
    }
}

fn ctx<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> SetupError + '_ {
    move |e| SetupError::new(format!("shim: {what}: {e}"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Created,
    Running,
    Exited,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Exited => "exited",
        }
    }
}

enum ClientKind {
    /// Reading the request line.
    Request(Vec<u8>),
    /// Streaming.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
        input_done: bool,
    },
    /// Waiting for the exit.
    Wait,
    /// Answer queued; close after flushing.
    Closing,
}

struct Client {
    sock: UnixStream,
    kind: ClientKind,
    out: Vec<u8>,
    out_pos: usize,
    dead: bool,
}

impl Client {
    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn queue(&mut self, data: &[u8]) {
        if self.pending() + data.len() > MAX_CLIENT_BUFFER {
            diag!(
                "dropping a slow attach client ({} bytes unsent)",
                self.pending()
            );
            self.dead = true;
            return;
        }
        if self.out_pos > 0 && self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        self.out.extend_from_slice(data);
    }

    fn queue_response(&mut self, r: &Response) {
        let mut line = serde_json::to_vec(r).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        line.push(b'\n');
        self.queue(&line);
    }

    /// Writes as much as the socket takes.
    fn flush(&mut self) {
        while self.pending() > 0 {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.pending() == 0 {
            self.out.clear();
            self.out_pos = 0;
            if self.out.capacity() > 64 * 1024 {
                self.out = Vec::new();
            }
            if matches!(self.kind, ClientKind::Closing) {
                self.dead = true;
            }
        }
    }

    /// Reads and discards unread input before the connection is closed, so the peer sees the
    /// end of the stream rather than a reset (a unix socket closed with unread data resets).
    fn discard_input(&mut self) {
        let mut scratch = [0u8; 4096];
        for _ in 0..64 {
            match self.sock.read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn wants(&self, s: StdStream) -> bool {
        match self.kind {
            ClientKind::Attach { stdout, stderr, .. } => match s {
                StdStream::Stdout => stdout,
                StdStream::Stderr => stderr,
                _ => false,
            },
            _ => false,
        }
    }
}

struct Shim {
    bundle: PathBuf,
    cfg: ShimConfig,
    runtime: OciRuntime,
    init_pid: i32,
    listener: Option<UnixListener>,
    sigfd: SignalFd,
    /// stdout pipe, or the pty master.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// stdin pipe write end, or a dup of the pty master.
    stdin: Option<OwnedFd>,
    /// A pty master kept for resize (tty).
    master: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    stdin_close_pending: bool,
    splitters: [LineSplitter; 2],
    log: Option<LogWriter>,
    clients: Vec<Client>,
    state: State,
    exit_status: Option<i32>,
    start_error: Option<String>,
    cgroup: Option<(CgroupMode, String)>,
    /// Output is not read (and the exit not processed) until the engine's `start`.
    held: bool,
    held_since: Instant,
}

fn wait_status_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SetupError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("pipe"))
}

impl Shim {
    fn setup(bundle: &Path) -> Result<Shim, SetupError> {
        let cfg: ShimConfig = {
            let data =
                std::fs::read(bundle.join(files::SHIM_JSON)).map_err(ctx("reading shim.json"))?;
            serde_json::from_slice(&data).map_err(ctx("parsing shim.json"))?
        };
        let runtime = cfg.runtime(bundle);
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer argument only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(SetupError::new(format!(
                "shim: becoming a child subreaper: {}",
                io::Error::last_os_error()
            )));
        }
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ] {
            mask.add(s);
        }
        mask.thread_block().map_err(ctx("blocking signals"))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(ctx("signalfd"))?;

        sys::write_atomic(
            &bundle.join(files::SHIM_PID),
            std::process::id().to_string().as_bytes(),
        )
        .map_err(ctx("writing shim.pid"))?;
        let _ = std::fs::remove_file(bundle.join(files::EXIT_JSON));

        let sock_path = bundle.join(files::SHIM_SOCK);
        let listener = bind_private(&sock_path).map_err(ctx("listening on shim.sock"))?;
        listener.set_nonblocking(true).map_err(ctx("shim.sock"))?;

        let cgroup =
            read_cgroups_path(bundle).and_then(|p| cgroups::detect_mode().ok().map(|m| (m, p)));

        let log = match &cfg.log {
            Some(l) => Some(
                LogWriter::open(&l.path, l.max_size, l.max_file)
                    .map_err(ctx("opening the container log"))?
                    .with_attrs(&l.attrs),
            ),
            None => None,
        };

        let runtime_log = bundle.join(files::RUNTIME_LOG);
        let _ = std::fs::remove_file(&runtime_log);
        let pid_file = bundle.join(files::INIT_PID);
        let _ = std::fs::remove_file(&pid_file);
        let mut cmd = Command::new(&runtime.path);
        cmd.args(runtime.global_args(&runtime_log));
        if cfg.start_at_create {
            // One runtime process instead of `create` + `start`: the process runs at once,
            // and its output waits in the pipe (or pty) until the engine says `start`.
            cmd.arg("run").arg("--detach");
        } else {
            cmd.arg("create");
        }
        cmd.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);

        let (out, err, stdin, master);
        let mut stderr_read: Option<OwnedFd> = None;
        let status = if cfg.tty {
            let console_path = bundle.join(files::CONSOLE_SOCK);
            let console = bind_private(&console_path).map_err(ctx("console socket"))?;
            console
                .set_nonblocking(true)
                .map_err(ctx("console socket"))?;
            // The runtime connects by path, and a socket address holds only 107 bytes: it
            // runs in the bundle directory (runc also changes into it) and gets the name
            // relative to it, so any exec root works.
            cmd.current_dir(bundle)
                .arg("--console-socket")
                .arg(files::CONSOLE_SOCK)
                .arg(&cfg.id);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = cmd.spawn().map_err(|e| {
                SetupError::new(format!("cannot run OCI runtime {:?}: {e}", runtime.path))
            })?;
            drop(cmd);
            let mut got: Option<OwnedFd> = None;
            let mut status = None;
            // Accept the runtime's connection, unless it exits first.
            loop {
                match console.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).map_err(ctx("console socket"))?;
                        got = Some(sys::recv_fd(&conn).map_err(ctx("receiving the pty master"))?);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(ctx("console socket")(e)),
                }
                if let Some(st) = child.try_wait().map_err(ctx("waiting for the runtime"))? {
                    status = Some(st);
                    break;
                }
                poll_one(console.as_raw_fd(), libc::POLLIN, 20);
            }
            let _ = std::fs::remove_file(&console_path);
            let status = match status {
                Some(s) => s,
                None => child.wait().map_err(ctx("waiting for the runtime"))?,
            };
            if let Some(m) = got {
                sys::set_nonblocking(&m, true).map_err(ctx("pty master"))?;
                if let Some((h, w)) = cfg.console_size {
                    let _ = sys::set_winsize(&m, h, w);
                }
                let dup1 = m.try_clone().map_err(ctx("dup"))?;
                let dup2 = m.try_clone().map_err(ctx("dup"))?;
                out = Some(m);
                stdin = Some(dup1);
                master = Some(dup2);
            } else {
                out = None;
                stdin = None;
                master = None;
            }
            err = None;
            status
        } else {
            cmd.arg(&cfg.id);
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let stdin_w = if cfg.open_stdin {
                let (r, w) = pipe()?;
                cmd.stdin(Stdio::from(r));
                Some(w)
            } else {
                cmd.stdin(Stdio::null());
                None
            };
            cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
            let mut child = cmd.spawn().map_err(|e| {
                SetupError::new(format!("cannot run OCI runtime {:?}: {e}", runtime.path))
            })?;
            // Drop our copies of the child's ends right away.
            drop(cmd);
            let status = child.wait().map_err(ctx("waiting for the runtime"))?;
            for fd in [&out_r, &err_r] {
                sys::set_nonblocking(fd, true).map_err(ctx("pipe"))?;
            }
            if let Some(w) = &stdin_w {
                sys::set_nonblocking(w, true).map_err(ctx("pipe"))?;
            }
            stderr_read = Some(err_r.try_clone().map_err(ctx("dup"))?);
            out = Some(out_r);
            err = Some(err_r);
            stdin = stdin_w;
            master = None;
            status
        };
        if !status.success() {
            let mut msg = last_error_from_log(&runtime_log);
            if msg.is_none() {
                if let Some(fd) = stderr_read {
                    let mut buf = vec![0u8; 8192];
                    let mut f = std::fs::File::from(fd);
                    if let Ok(n) = f.read(&mut buf) {
                        let s = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                        if !s.is_empty() {
                            msg = Some(s);
                        }
                    }
                }
            }
            let msg =
                msg.unwrap_or_else(|| format!("{} create exited with {status}", runtime.name));
            // Make sure nothing is left behind in the runtime.
            let _ = runtime.delete_sync(&cfg.id, true, &runtime_log);
            return Err(SetupError::new(msg));
        }
        let init_pid: i32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| SetupError::new("shim: the runtime wrote no init pid file"))?;
        if cfg.tty && out.is_none() {
            let _ = runtime.delete_sync(&cfg.id, true, &runtime_log);
            return Err(SetupError::new(
                "shim: the runtime did not send the console of a tty container",
            ));
        }
        Ok(Shim {
            bundle: bundle.to_path_buf(),
            runtime,
            init_pid,
            listener: Some(listener),
            sigfd,
            out,
            err,
            stdin,
            master,
            stdin_buf: Vec::new(),
            stdin_close_pending: false,
            splitters: [LineSplitter::default(), LineSplitter::default()],
            log,
            clients: Vec::new(),
            state: if cfg.start_at_create {
                State::Running
            } else {
                State::Created
            },
            held: cfg.start_at_create,
            held_since: Instant::now(),
            cfg,
            exit_status: None,
            start_error: None,
            cgroup,
        })
    }

    fn run(&mut self) {
        #[derive(Clone, Copy)]
        enum Tag {
            Sig,
            Listener,
            Out,
            Err,
            Stdin,
            Client(usize),
        }
        let mut buf = vec![0u8; 32 * 1024];
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(16);
        let mut tags: Vec<Tag> = Vec::with_capacity(16);
        let mut drain_deadline: Option<Instant> = None;
        // After a quiet second the pages that the last burst of work faulted in are given
        // back (see sys::release_startup_pages); any event re-arms this.
        let mut pages_released = true;
        loop {
            if self.held && self.held_since.elapsed() >= HOLD_TIMEOUT {
                diag!(
                    "no start from the engine {}s after the runtime started the container; releasing its output",
                    HOLD_TIMEOUT.as_secs()
                );
                self.held = false;
            }
            if self.state == State::Exited && !self.held {
                let deadline =
                    *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN_TIMEOUT);
                if self.out.is_none() && self.err.is_none() {
                    break;
                }
                if Instant::now() >= deadline {
                    diag!(
                        "output still open {}s after init exited (processes outside the container's pid namespace?); closing it",
                        DRAIN_TIMEOUT.as_secs()
                    );
                    break;
                }
            }
            fds.clear();
            tags.clear();
            let mut push = |fd: RawFd, events: i16, tag: Tag| {
                fds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
                tags.push(tag);
            };
            push(self.sigfd.as_fd().as_raw_fd(), libc::POLLIN, Tag::Sig);
            if let Some(l) = &self.listener {
                push(l.as_raw_fd(), libc::POLLIN, Tag::Listener);
            }
            if !self.held {
                if let Some(fd) = &self.out {
                    push(fd.as_raw_fd(), libc::POLLIN, Tag::Out);
                }
                if let Some(fd) = &self.err {
                    push(fd.as_raw_fd(), libc::POLLIN, Tag::Err);
                }
            }
            if let Some(fd) = &self.stdin {
                if !self.stdin_buf.is_empty() {
                    push(fd.as_raw_fd(), libc::POLLOUT, Tag::Stdin);
                }
            }
            let stdin_room = self.stdin.is_some() && self.stdin_buf.len() < MAX_STDIN_BUFFER;
            for (i, c) in self.clients.iter().enumerate() {
                let mut ev: i16 = 0;
                match &c.kind {
                    ClientKind::Request(_) => ev |= libc::POLLIN,
                    ClientKind::Attach {
                        stdin, input_done, ..
                    } => {
                        if !*input_done && (!*stdin || stdin_room) {
                            ev |= libc::POLLIN;
                        }
                    }
                    ClientKind::Wait | ClientKind::Closing => {}
                }
                if c.pending() > 0 {
                    ev |= libc::POLLOUT;
                }
                push(c.sock.as_raw_fd(), ev, Tag::Client(i));
            }
            let timeout = match drain_deadline {
                Some(d) => {
                    d.saturating_duration_since(Instant::now())
                        .as_millis()
                        .min(60_000) as i32
                        + 1
                }
                None if self.held => {
                    (HOLD_TIMEOUT.saturating_sub(self.held_since.elapsed())).as_millis() as i32 + 1
                }
                None if !pages_released => IDLE_RELEASE_MS,
                None => -1,
            };
            // SAFETY: `fds` is a valid array of pollfd of the given length for the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                diag!("poll failed: {e}");
                break;
            }
            if n == 0 && !pages_released && drain_deadline.is_none() {
                sys::release_startup_pages();
                pages_released = true;
                continue;
            }
            pages_released = false;
            for k in 0..fds.len() {
                let re = fds[k].revents;
                if re == 0 {
                    continue;
                }
                match tags[k] {
                    Tag::Sig => self.on_signal(),
                    Tag::Listener => self.on_accept(),
                    Tag::Out => self.on_output(StdStream::Stdout, &mut buf),
                    Tag::Err => self.on_output(StdStream::Stderr, &mut buf),
                    Tag::Stdin => self.flush_stdin(),
                    Tag::Client(i) => self.on_client(i, re, &mut buf),
                }
            }
            self.drop_dead_clients();
        }
        self.finish();
    }

    fn drop_dead_clients(&mut self) {
        for c in self.clients.iter_mut().filter(|c| c.dead) {
            let _ = c.sock.shutdown(std::net::Shutdown::Write);
            c.discard_input();
        }
        self.clients.retain(|c| !c.dead);
    }

    fn on_signal(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        self.reap();
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    if ws.pid() == Some(Pid::from_raw(self.init_pid)) {
                        if let Some(code) = wait_status_code(ws) {
                            self.exit_status = Some(code);
                            self.state = State::Exited;
                            // No one can attach or start anymore; no more stdin.
                            self.stdin = None;
                            self.stdin_buf.clear();
                        }
                    }
                }
            }
        }
    }

    fn on_accept(&mut self) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.clients.push(Client {
                        sock,
                        kind: ClientKind::Request(Vec::new()),
                        out: Vec::new(),
                        out_pos: 0,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    fn on_output(&mut self, stream: StdStream, buf: &mut [u8]) {
        // Take the fd out while emitting (emit needs `&mut self`); put it back unless at EOF.
        let slot = match stream {
            StdStream::Stdout => self.out.take(),
            _ => self.err.take(),
        };
        let Some(fd) = slot else { return };
        let mut keep = true;
        // Read a bounded amount per wakeup so one busy stream cannot starve the others.
        for _ in 0..16 {
            match nix::unistd::read(fd.as_fd(), buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => {
                    keep = false;
                    break;
                }
                Ok(n) => self.emit(stream, &buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    diag!("reading container {}: {e}", stream.as_str());
                    keep = false;
                    break;
                }
            }
        }
        if keep {
            match stream {
                StdStream::Stdout => self.out = Some(fd),
                _ => self.err = Some(fd),
            }
        }
    }

    fn emit(&mut self, stream: StdStream, data: &[u8]) {
        if let Some(log) = self.log.as_mut() {
            let now = chrono::Utc::now();
            let idx = if stream == StdStream::Stderr { 1 } else { 0 };
            let r = self.splitters[idx].feed(data, |line| log.write_entry(stream, line, &now));
            if let Err(e) = r {
                diag!("writing the container log: {e}");
            }
        }
        let tty = self.cfg.tty;
        let header = stdcopy::header(stream, data.len() as u32);
        for c in self.clients.iter_mut() {
            if c.dead || !c.wants(stream) {
                continue;
            }
            let need = if tty { 0 } else { stdcopy::HEADER_LEN } + data.len();
            if c.pending() + need > MAX_CLIENT_BUFFER {
                diag!(
                    "dropping a slow attach client ({} bytes unsent)",
                    c.pending()
                );
                c.dead = true;
                continue;
            }
            if !tty {
                c.queue(&header);
            }
            c.queue(data);
            c.flush();
        }
    }

    fn flush_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        let mut written = 0;
        while written < self.stdin_buf.len() {
            match nix::unistd::write(fd, &self.stdin_buf[written..]) {
                Ok(n) => written += n,
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    // The reader went away (EPIPE): stdin is over.
                    self.stdin = None;
                    self.stdin_buf.clear();
                    return;
                }
            }
        }
        self.stdin_buf.drain(..written);
        if self.stdin_buf.is_empty() && self.stdin_close_pending {
            self.close_stdin();
        }
    }

    fn close_stdin(&mut self) {
        self.stdin_close_pending = false;
        self.stdin = None;
    }

    fn on_client(&mut self, i: usize, revents: i16, buf: &mut [u8]) {
        if revents & libc::POLLOUT != 0 {
            self.clients[i].flush();
        }
        let reading = match &self.clients[i].kind {
            ClientKind::Request(_) => true,
            ClientKind::Attach { input_done, .. } => !*input_done,
            ClientKind::Wait | ClientKind::Closing => false,
        };
        if reading && revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            self.client_readable(i, buf);
        }
        // POLLHUP on a unix stream socket means the peer closed both directions (a half-close
        // only shows as POLLIN + EOF): nothing more can be delivered.
        if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            self.clients[i].dead = true;
        }
    }

    fn client_readable(&mut self, i: usize, buf: &mut [u8]) {
        for _ in 0..16 {
            let res = self.clients[i].sock.read(buf);
            match res {
                Ok(0) => {
                    self.client_eof(i);
                    return;
                }
                Ok(n) => {
                    if !self.client_data(i, &buf[..n]) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.clients[i].dead = true;
                    return;
                }
            }
        }
    }

    fn client_eof(&mut self, i: usize) {
        let stdin_once = self.cfg.stdin_once;
        let c = &mut self.clients[i];
        match &mut c.kind {
            ClientKind::Request(_) => c.dead = true,
            ClientKind::Attach {
                stdin,
                stdout,
                stderr,
                input_done,
            } => {
                *input_done = true;
                let had_stdin = *stdin;
                if !*stdout && !*stderr {
                    c.dead = true;
                }
                // Docker closes a container's stdin when its StdinOnce client leaves, but never
                // a terminal's: a detached `run -it` session keeps its shell.
                if had_stdin && stdin_once && !self.cfg.tty {
                    self.stdin_close_pending = true;
                    if self.stdin_buf.is_empty() {
                        self.close_stdin();
                    }
                }
            }
            ClientKind::Wait | ClientKind::Closing => {}
        }
    }

    /// Handles bytes from a client; returns false when the client should not be read further now.
    fn client_data(&mut self, i: usize, data: &[u8]) -> bool {
        match &mut self.clients[i].kind {
            ClientKind::Request(acc) => {
                acc.extend_from_slice(data);
                let Some(nl) = acc.iter().position(|&b| b == b'\n') else {
                    if acc.len() > MAX_REQUEST {
                        self.clients[i].dead = true;
                        return false;
                    }
                    return true;
                };
                let line = acc[..nl].to_vec();
                let rest = acc[nl + 1..].to_vec();
                self.clients[i].kind = ClientKind::Closing;
                match serde_json::from_slice::<Request>(&line) {
                    Ok(req) => self.handle_request(i, req),
                    Err(e) => {
                        let r = Response::err(format!("invalid shim request: {e}"));
                        self.clients[i].queue_response(&r);
                    }
                }
                if !rest.is_empty() {
                    // Input that arrived together with the attach request.
                    return self.client_data(i, &rest);
                }
                self.clients[i].flush();
                false
            }
            ClientKind::Attach { stdin: true, .. } => {
                if self.stdin.is_some() && !self.stdin_close_pending {
                    self.stdin_buf.extend_from_slice(data);
                    self.flush_stdin();
                }
                self.stdin_buf.len() < MAX_STDIN_BUFFER
            }
            // Input on a connection that did not ask for stdin is ignored.
            _ => true,
        }
    }

    fn handle_request(&mut self, i: usize, req: Request) {
        match req {
            Request::Info => {
                let r = Response {
                    ok: true,
                    init_pid: Some(self.init_pid),
                    shim_pid: Some(std::process::id() as i32),
                    tty: Some(self.cfg.tty),
                    state: Some(self.state.as_str().into()),
                    ..Default::default()
                };
                self.clients[i].queue_response(&r);
            }
            Request::Start => {
                let r = self.start();
                self.clients[i].queue_response(&r);
            }
            Request::Resize { height, width } => {
                let r = match &self.master {
                    Some(m) => match sys::set_winsize(m, height, width) {
                        Ok(()) => Response::ok(),
                        Err(e) => Response::err(format!("cannot resize the terminal: {e}")),
                    },
                    None => Response::err("cannot resize a container without a tty"),
                };
                self.clients[i].queue_response(&r);
            }
            Request::Wait => {
                self.clients[i].kind = ClientKind::Wait;
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let c = &mut self.clients[i];
                let stdin = stdin && self.stdin.is_some();
                c.kind = ClientKind::Attach {
                    stdin,
                    stdout,
                    stderr,
                    input_done: false,
                };
                let r = Response {
                    ok: true,
                    tty: Some(self.cfg.tty),
                    ..Default::default()
                };
                c.queue_response(&r);
            }
        }
    }

    fn start(&mut self) -> Response {
        if self.cfg.start_at_create {
            // The runtime already started the process; let its output flow.
            self.held = false;
            return Response::ok();
        }
        match self.state {
            State::Created => {}
            State::Running => return Response::err("container is already running"),
            State::Exited => return Response::err("container has already exited"),
        }
        let log = self.bundle.join(files::RUNTIME_LOG);
        let _ = std::fs::remove_file(&log);
        let out = Command::new(&self.runtime.path)
            .args(self.runtime.global_args(&log))
            .arg("start")
            .arg(&self.cfg.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match out {
            Ok(o) if o.status.success() => {
                self.state = State::Running;
                Response::ok()
            }
            other => {
                let msg = match other {
                    Ok(o) => last_error_from_log(&log).unwrap_or_else(|| {
                        let s = String::from_utf8_lossy(&o.stderr).trim().to_string();
                        if s.is_empty() {
                            format!("{} start exited with {}", self.runtime.name, o.status)
                        } else {
                            s
                        }
                    }),
                    Err(e) => format!("cannot run OCI runtime {:?}: {e}", self.runtime.path),
                };
                let full = format!("OCI runtime start failed: {msg}: unknown");
                self.start_error = Some(full.clone());
                // Kill the half-made container; its init exit ends the shim normally.
                if let Err(e) = self.runtime.delete_sync(&self.cfg.id, true, &log) {
                    diag!("delete after failed start: {e}");
                }
                self.reap();
                Response::err(full)
            }
        }
    }

    fn finish(&mut self) {
        // Flush partial lines to the log.
        if let Some(log) = self.log.as_mut() {
            let now = chrono::Utc::now();
            for (idx, stream) in [(0, StdStream::Stdout), (1, StdStream::Stderr)] {
                let _ = self.splitters[idx].flush(|line| log.write_entry(stream, line, &now));
            }
        }
        let finished_at = chrono::Utc::now();
        let oom_killed = self
            .cgroup
            .as_ref()
            .and_then(|(mode, path)| cgroups::oom_kill_count(*mode, path).ok())
            .is_some_and(|n| n > 0);
        let exit = ExitInfo {
            exit_code: match (&self.start_error, self.exit_status) {
                (Some(e), _) => exit_code_for_message(e),
                (None, Some(c)) => c,
                (None, None) => 255,
            },
            oom_killed,
            finished_at,
            error: self.start_error.clone(),
        };
        match serde_json::to_vec(&exit) {
            Ok(data) => {
                if let Err(e) = sys::write_atomic(&self.bundle.join(files::EXIT_JSON), &data) {
                    diag!("writing exit.json: {e}");
                }
            }
            Err(e) => diag!("encoding exit.json: {e}"),
        }
        // New clients now find no socket and read exit.json.
        let _ = std::fs::remove_file(self.bundle.join(files::SHIM_SOCK));
        self.listener = None;
        let resp = Response {
            ok: true,
            exit: Some(exit),
            ..Default::default()
        };
        for c in self.clients.iter_mut() {
            match c.kind {
                ClientKind::Wait => {
                    c.queue_response(&resp);
                    c.kind = ClientKind::Closing;
                }
                ClientKind::Request(_) => {
                    c.queue_response(&Response::err("container has exited"));
                    c.kind = ClientKind::Closing;
                }
                ClientKind::Attach { .. } => {
                    if c.pending() == 0 {
                        c.dead = true;
                    }
                    c.kind = ClientKind::Closing;
                }
                ClientKind::Closing => {}
            }
            c.flush();
        }
        self.drop_dead_clients();
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        while !self.clients.is_empty() && Instant::now() < deadline {
            let mut fds: Vec<libc::pollfd> = self
                .clients
                .iter()
                .map(|c| libc::pollfd {
                    fd: c.sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                })
                .collect();
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as i32
                + 1;
            // SAFETY: valid pollfd array for the call.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, left) };
            for (c, f) in self.clients.iter_mut().zip(&fds) {
                if f.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    c.dead = true;
                } else if f.revents != 0 {
                    c.flush();
                }
            }
            self.drop_dead_clients();
        }
        if !self.clients.is_empty() {
            diag!(
                "{} attach client(s) did not take the last output in time",
                self.clients.len()
            );
        }
        for c in self.clients.iter_mut() {
            c.dead = true;
        }
        self.drop_dead_clients();
        // The runtime's cleanup comes after the waiters were answered: it is not on the path
        // of `docker run --rm`. The engine waits for this shim to be gone before it starts the
        // same container again. The bundle may already be removed, so the runtime logs next
        // to its own state directory.
        let log = self
            .runtime
            .root
            .join(format!("{}.delete.log", self.cfg.id));
        if let Err(e) = self.runtime.delete_sync(&self.cfg.id, true, &log) {
            diag!("runtime delete: {e}");
        }
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(self.bundle.join(files::SHIM_PID));
        // Reap anything left (processes re-parented to us).
        self.reap();
    }
}

/// Waits up to `ms` for `events` on `fd`.
fn poll_one(fd: RawFd, events: i16, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Binds a filesystem unix socket with mode 0600 (umask set around bind so it is never
/// reachable with wider permissions).
/// A path longer than a socket address holds (a long exec root) is bound through its
/// directory's descriptor (`sys::socket_addr_path`).
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let addr = sys::socket_addr_path(path)?;
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let r = UnixListener::bind(addr.path());
    nix::sys::stat::umask(old);
    r
}

fn read_cgroups_path(bundle: &Path) -> Option<String> {
    let data = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    v.get("linux")?
        .get("cgroupsPath")?
        .as_str()
        .map(String::from)
}
