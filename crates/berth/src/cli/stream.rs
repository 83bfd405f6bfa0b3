//! Attach/exec sessions on a hijacked connection (Docker's `hijackedIOStreamer`): output
//! demultiplexed to stdout/stderr (raw with a TTY), stdin forwarded (raw terminal mode with
//! a TTY, detach keys detected client-side) and half-closed on EOF; plus the helpers that
//! run next to a session: TTY resize monitoring and the signal proxy.

use std::io::Write;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_api::client::Client;
use berth_api::Hijacked;
use berth_runtime::stdcopy::{Decoder, StdStream};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::term::{self, RawMode};
use super::{CliError, CliResult};

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// What a session connects.
pub struct Session {
    pub conn: Hijacked,
    /// The container/exec has a TTY: raw bytes, no frames.
    pub tty: bool,
    /// Forward our stdin.
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Client-side detach sequence (TTY sessions with stdin only).
    pub detach_keys: Vec<u8>,
    /// No signal proxy runs: a terminating signal restores the terminal before the CLI dies
    /// (otherwise the proxy forwards it and the CLI keeps running, as Docker's does).
    pub restore_on_signal: bool,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The output stream ended (the process exited or the daemon closed the stream).
    Ended,
    /// The user typed the detach sequence.
    Detached,
}

/// Detects the detach sequence in typed input (moby's `EscapeProxy`): a key that could start
/// the sequence is held back while the following single-key reads continue it, and released
/// (in front of the next input) as soon as one does not. Multi-byte reads (pastes) never match.
#[derive(Debug)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    pos: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, pos: 0 }
    }

    /// Filters one read: `Err(())` when the sequence is complete, else the bytes to forward.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<u8>, ()> {
        if self.keys.is_empty() {
            return Ok(input.to_vec());
        }
        let release = |pos: &mut usize, keys: &[u8]| {
            let mut out = keys[..*pos].to_vec();
            out.extend_from_slice(input);
            *pos = 0;
            out
        };
        if input.len() != 1 || input[0] != self.keys[self.pos] {
            return Ok(release(&mut self.pos, &self.keys));
        }
        if self.pos == self.keys.len() - 1 {
            return Err(());
        }
        self.pos += 1;
        Ok(Vec::new())
    }
}

/// Reads stdin on a blocking thread that checks `stop` between polls, so that it never
/// swallows input typed after the session ended.
fn spawn_stdin_reader(stop: Arc<AtomicBool>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        // SAFETY: fd 0 stays open for the life of the process.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let mut fds = [PollFd::new(stdin, PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match nix::unistd::read(stdin, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
                Err(_) => return,
            }
        }
    });
    rx
}

/// Runs a session until its output ends or the user detaches. The terminal is put in raw
/// mode for TTY sessions with stdin and always restored, as soon as the output ends.
pub async fn run_session(s: Session) -> CliResult<Outcome> {
    let raw = if s.tty && s.stdin && term::is_tty(0) {
        Some(Arc::new(RawMode::enable().map_err(|e| {
            CliError::msg(format!(
                "unable to setup input stream: unable to set IO streams as raw terminal: {e}"
            ))
        })?))
    } else {
        None
    };
    let _guard = match (&raw, s.restore_on_signal) {
        (Some(r), true) => Some(restore_on_terminating_signals(r.clone())),
        _ => None,
    };
    let (mut reader, mut writer) = tokio::io::split(s.conn);
    let stop = Arc::new(AtomicBool::new(false));

    let out_raw = raw.clone();
    let (tty, want_out, want_err) = (s.tty, s.stdout, s.stderr);
    let output = async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut dec = Decoder::new();
        let result: CliResult<()> = loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break Ok(()),
                Err(e) => {
                    break Err(CliError::msg(format!(
                        "error reading the output stream: {e}"
                    )))
                }
            };
            if tty {
                if want_out {
                    if let Err(e) = write_all(1, &buf[..n]) {
                        break Err(e);
                    }
                }
                continue;
            }
            dec.push(&buf[..n]);
            let mut res = Ok(());
            loop {
                match dec.next_frame() {
                    Ok(Some((stream, payload))) => {
                        let fd = match stream {
                            StdStream::Stderr => want_err.then_some(2),
                            StdStream::SystemErr => {
                                res = Err(CliError::msg(
                                    String::from_utf8_lossy(&payload).into_owned(),
                                ));
                                break;
                            }
                            _ => want_out.then_some(1),
                        };
                        if let Some(fd) = fd {
                            if let Err(e) = write_all(fd, &payload) {
                                res = Err(e);
                                break;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        res = Err(CliError::msg(format!(
                            "error demultiplexing the output stream: {e}"
                        )));
                        break;
                    }
                }
            }
            if let Err(e) = res {
                break Err(e);
            }
        };
        // Restore the terminal as soon as the stream ends, before anything else prints.
        if let Some(r) = &out_raw {
            r.restore();
        }
        result
    };

    let keys = if s.tty {
        s.detach_keys.clone()
    } else {
        Vec::new()
    };
    let want_stdin = s.stdin;
    let in_stop = stop.clone();
    let input = async move {
        if want_stdin {
            let mut rx = spawn_stdin_reader(in_stop);
            let mut proxy = EscapeProxy::new(keys);
            while let Some(chunk) = rx.recv().await {
                match proxy.feed(&chunk) {
                    Ok(bytes) => {
                        if !bytes.is_empty() && writer.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Err(()) => return Outcome::Detached,
                }
            }
        }
        // EOF (or no stdin at all): half-close so the process sees end of input.
        let _ = writer.shutdown().await;
        // Keep the write half alive until the output is done.
        std::future::pending::<()>().await;
        Outcome::Ended
    };

    tokio::pin!(output);
    tokio::pin!(input);
    let outcome = tokio::select! {
        res = &mut output => {
            res?;
            Outcome::Ended
        }
        detached = &mut input => {
            if detached == Outcome::Detached {
                Outcome::Detached
            } else {
                output.await?;
                Outcome::Ended
            }
        }
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(r) = raw {
        r.restore();
    }
    Ok(outcome)
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// While a raw-mode session runs without a signal proxy: SIGTERM, SIGHUP or SIGINT restore
/// the terminal, then end the CLI with the shell's `128 + signal` code.
fn restore_on_terminating_signals(raw: Arc<RawMode>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        let code = tokio::select! {
            _ = term.recv() => libc::SIGTERM,
            _ = hup.recv() => libc::SIGHUP,
            _ = int.recv() => libc::SIGINT,
        };
        raw.restore();
        std::process::exit(128 + code);
    }))
}

fn write_all(fd: i32, data: &[u8]) -> CliResult<()> {
    if fd == 1 {
        let mut o = std::io::stdout().lock();
        o.write_all(data)?;
        o.flush()?;
    } else {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(data);
        let _ = e.flush();
    }
    Ok(())
}

/// What a resize applies to.
#[derive(Debug, Clone)]
pub enum ResizeTarget {
    Container(String),
    Exec(String),
}

async fn resize(client: &Client, target: &ResizeTarget) -> Result<(), String> {
    let (h, w) = term::stdout_size();
    if h == 0 && w == 0 {
        return Ok(());
    }
    let r = match target {
        ResizeTarget::Container(id) => client.container_resize(id, h, w).await,
        ResizeTarget::Exec(id) => client.exec_resize(id, h, w).await,
    };
    r.map_err(|e| e.to_string())
}

/// Docker's `MonitorTtySize`: resize now (retrying up to 10 times while the process starts),
/// then on every SIGWINCH. Runs until dropped.
pub fn monitor_tty_size(client: Arc<Client>, target: ResizeTarget) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut winch = signal(SignalKind::window_change()).ok();
        if resize(&client, &target).await.is_err() {
            let mut ok = false;
            for retry in 0..10u64 {
                tokio::time::sleep(Duration::from_millis((retry + 1) * 10)).await;
                if resize(&client, &target).await.is_ok() {
                    ok = true;
                    break;
                }
            }
            if !ok {
                super::eprintln_err("failed to resize tty, using default size");
            }
        }
        let Some(w) = winch.as_mut() else { return };
        while w.recv().await.is_some() {
            let _ = resize(&client, &target).await;
        }
    })
}

/// The signals the proxy forwards (Docker forwards every signal but SIGCHLD, SIGPIPE and
/// SIGURG), by the names the API takes.
const PROXIED: &[(i32, &str)] = &[
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGWINCH, "WINCH"),
];

/// Docker's `ForwardAllSignals`: every signal the CLI receives becomes
/// `POST /containers/{id}/kill?signal=NAME`. Runs until dropped.
pub fn proxy_signals(client: Arc<Client>, id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
        for &(num, name) in PROXIED {
            let Ok(mut sig) = signal(SignalKind::from_raw(num)) else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            if let Err(e) = client.container_kill(&id, Some(name)).await {
                tracing::debug!(error = %e, signal = name, "forwarding a signal failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escape_proxy_detects_and_releases() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ab"), Ok(b"ab".to_vec()));
        assert_eq!(p.feed(&[16]), Ok(vec![]));
        assert_eq!(p.feed(b"x"), Ok(vec![16, b'x']));
        assert_eq!(p.feed(&[16]), Ok(vec![]));
        assert_eq!(p.feed(&[17]), Err(()));
        // A paste containing the sequence does not detach.
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(&[16, 17]), Ok(vec![16, 17]));
        let mut p = EscapeProxy::new(vec![]);
        assert_eq!(p.feed(&[16, 17]), Ok(vec![16, 17]));
    }

    proptest! {
        #[test]
        fn escape_proxy_is_transparent_without_the_sequence(chunks in prop::collection::vec(prop::collection::vec(0u8..16, 0..10), 0..10)) {
            let mut p = EscapeProxy::new(vec![16, 17]);
            let mut out = Vec::new();
            for c in &chunks {
                out.extend(p.feed(c).unwrap());
            }
            let all: Vec<u8> = chunks.concat();
            prop_assert_eq!(out, all);
        }
    }
}
