//! `exec`: create, start (attached over a hijacked connection or detached), resize, inspect.
//!
//! The daemon runs `runc exec` itself (not through the supervisor): the runtime waits for the
//! process and exits with its status, which becomes the exec's ExitCode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api::models::{ExecConfig, ExecInspect, ExecProcessConfig, ExecStartConfig};
use berth_api::{ApiError, ExecStartOutcome, Hijacked};
use berth_runtime::runtime::{exec_process, ExecOptions, ExecProcess, Pty};
use berth_runtime::stdcopy::{self, StdStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::container::{Container, Status};
use crate::{ids, Engine};

pub(crate) struct ExecEntry {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
    pty: Option<Pty>,
    /// A resize that arrived before the terminal existed.
    pending_size: Option<(u16, u16)>,
}

#[derive(Default)]
pub(crate) struct ExecTable {
    map: Mutex<HashMap<String, Arc<ExecEntry>>>,
}

impl ExecTable {
    fn get(&self, id: &str) -> Result<Arc<ExecEntry>, ApiError> {
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    fn insert(&self, e: Arc<ExecEntry>) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(e.id.clone(), e);
    }

    pub fn remove(&self, id: &str) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(id);
    }
}

fn lock(e: &ExecEntry) -> std::sync::MutexGuard<'_, ExecState> {
    e.state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    pub(crate) fn exec_create(
        &self,
        c: &Arc<Container>,
        config: ExecConfig,
    ) -> Result<String, ApiError> {
        match c.status() {
            Status::Running => {}
            Status::Paused => {
                return Err(ApiError::conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    c.id
                )))
            }
            Status::Restarting => {
                return Err(ApiError::conflict(format!(
                    "Container {} is restarting, wait until the container is running",
                    c.id
                )))
            }
            _ => {
                return Err(ApiError::conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ApiError::bad_request("No exec command specified"));
        }
        let id = ids::new_id();
        let entry = Arc::new(ExecEntry {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            state: Mutex::new(ExecState::default()),
        });
        let cmd = entry.config.cmd.clone().unwrap_or_default().join(" ");
        self.execs.insert(entry);
        c.exec_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id.clone());
        let mut attrs = self.event_attrs(c);
        attrs.insert("execID".into(), id.clone());
        self.events
            .emit("container", &format!("exec_create: {cmd}"), &c.id, attrs);
        Ok(id)
    }

    pub(crate) fn exec_inspect(&self, id: &str) -> Result<ExecInspect, ApiError> {
        let e = self.execs.get(id)?;
        let st = lock(&e);
        let cmd = e.config.cmd.clone().unwrap_or_default();
        Ok(ExecInspect {
            id: e.id.clone(),
            running: st.running,
            exit_code: st.exit_code,
            process_config: Some(ExecProcessConfig {
                tty: e.config.tty,
                entrypoint: cmd.first().cloned().unwrap_or_default(),
                arguments: cmd.iter().skip(1).cloned().collect(),
                privileged: Some(e.config.privileged),
                user: if e.config.user.is_empty() {
                    None
                } else {
                    Some(e.config.user.clone())
                },
            }),
            open_stdin: e.config.attach_stdin,
            open_stderr: e.config.attach_stderr,
            open_stdout: e.config.attach_stdout,
            can_remove: false,
            container_id: e.container_id.clone(),
            detach_keys: e.config.detach_keys.clone(),
            pid: st.pid,
        })
    }

    pub(crate) fn exec_resize(&self, id: &str, h: u16, w: u16) -> Result<(), ApiError> {
        let e = self.execs.get(id)?;
        let mut st = lock(&e);
        match &st.pty {
            Some(p) => p
                .resize(h, w)
                .map_err(|e| ApiError::internal(e.to_string())),
            None if e.config.tty && !st.started || st.running => {
                // The terminal does not exist yet (the CLI resizes right after the 101).
                st.pending_size = Some((h, w));
                Ok(())
            }
            None => Err(ApiError::conflict(format!("Exec {id} is not running"))),
        }
    }

    pub(crate) async fn exec_start(
        self: &Arc<Self>,
        id: &str,
        start: ExecStartConfig,
    ) -> Result<ExecStartOutcome, ApiError> {
        let e = self.execs.get(id)?;
        {
            let mut st = lock(&e);
            if st.started {
                return Err(ApiError::conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            st.started = true;
            if let Some([h, w]) = start.console_size.or(e.config.console_size) {
                if h > 0 && w > 0 {
                    st.pending_size = Some((h as u16, w as u16));
                }
            }
        }
        let c = self.lookup(&e.container_id)?;
        if c.status() != Status::Running {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let tty = e.config.tty;
        // Docker's rule: the stream is multiplexed (stdcopy frames) unless the *start request*
        // says Tty, whatever the exec's own setting; the process itself gets a terminal by
        // the exec's setting.
        let framed = !start.tty;
        let detach = start.detach;
        let keys = if tty && e.config.attach_stdin && !detach {
            let spec = Some(e.config.detach_keys.as_str())
                .filter(|k| !k.is_empty())
                .unwrap_or(crate::detach::DEFAULT_DETACH_KEYS);
            Some(crate::detach::parse(spec)?)
        } else {
            None
        };
        let proc_ = self.spawn_exec(&c, &e, detach).await?;
        let mut attrs = self.event_attrs(&c);
        attrs.insert("execID".into(), e.id.clone());
        let cmd = e.config.cmd.clone().unwrap_or_default().join(" ");
        self.events
            .emit("container", &format!("exec_start: {cmd}"), &c.id, attrs);
        let engine = self.clone();
        if detach {
            tokio::spawn(async move {
                let mut p = proc_;
                engine.finish_exec(&c, &e, &mut p).await;
            });
            return Ok(ExecStartOutcome::Detached);
        }
        Ok(ExecStartOutcome::Attached(Box::new(move |conn| {
            Box::pin(async move {
                engine.exec_session(c, e, proc_, framed, keys, conn).await;
            })
        })))
    }

    async fn spawn_exec(
        &self,
        c: &Arc<Container>,
        e: &ExecEntry,
        detach: bool,
    ) -> Result<ExecProcess, ApiError> {
        let rt = self.runtime(&c.with(|r| r.runtime.clone()))?.clone();
        let bundle = c.bundle.clone();
        let cfg = e.config.clone();
        let (container_env, container_user, group_add, hostname) = c.with(|r| {
            (
                r.config.env.clone().unwrap_or_default(),
                r.config.user.clone(),
                r.host_config.group_add.clone().unwrap_or_default(),
                r.config.hostname.clone(),
            )
        });
        let rootfs = self.rw_mount_path(&c.id);
        let c2 = c.clone();
        let process =
            tokio::task::spawn_blocking(move || -> Result<oci_spec::runtime::Process, ApiError> {
                let base = spec_process(&c2, &bundle.join("config.json"))?;
                let user_spec = if cfg.user.is_empty() {
                    container_user
                } else {
                    cfg.user.clone()
                };
                let user = berth_runtime::user::resolve(&rootfs, &user_spec, &group_add)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                // moby's exec environment: the daemon's (default PATH, HOSTNAME, TERM with a
                // tty), the container's, the exec's own, then HOME of the exec's user.
                let mut env = container_env;
                env.extend(cfg.env.clone().unwrap_or_default());
                let env = berth_runtime::spec::process_env(
                    &hostname,
                    cfg.tty,
                    &env,
                    user.home.as_deref(),
                );
                let cwd = if cfg.working_dir.is_empty() {
                    None
                } else {
                    Some(cfg.working_dir.clone())
                };
                let mut p = exec_process(
                    &base,
                    cfg.cmd.clone().unwrap_or_default(),
                    Some(env),
                    cwd,
                    Some(&user),
                );
                if cfg.privileged {
                    let all = berth_runtime::spec::effective_capabilities(true, &[], &[])
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    let caps: std::collections::HashSet<oci_spec::runtime::Capability> =
                        all.iter().filter_map(|c| c.parse().ok()).collect();
                    let mut pc = p.capabilities().clone().unwrap_or_default();
                    pc.set_bounding(Some(caps.clone()));
                    pc.set_effective(Some(caps.clone()));
                    pc.set_permitted(Some(caps));
                    p.set_capabilities(Some(pc));
                }
                Ok(p)
            })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
        let size = lock(e).pending_size;
        let opts = ExecOptions {
            tty: e.config.tty,
            stdin: e.config.attach_stdin && !detach,
            console_size: size,
        };
        let p = rt
            .exec(&c.id, &process, &opts)
            .await
            .map_err(|err| ApiError::internal(err.to_string()))?;
        {
            let mut st = lock(e);
            st.running = true;
            st.pty = p.pty();
            let pending = st.pending_size.take();
            if let (Some(pty), Some((h, w))) = (&st.pty, pending) {
                let _ = pty.resize(h, w);
            }
        }
        Ok(p)
    }

    /// Waits for the exec and records its exit code.
    async fn finish_exec(&self, c: &Arc<Container>, e: &ExecEntry, p: &mut ExecProcess) {
        let pid = p.pid().unwrap_or(0) as i64;
        let code = match p.wait().await {
            Ok(code) => code as i64,
            Err(err) => {
                tracing::debug!(exec = %e.id, "exec failed: {err}");
                err.exit_code_hint() as i64
            }
        };
        self.record_exec_exit(c, e, pid, code);
    }

    /// Records an exec's exit code and emits `exec_die`.
    fn record_exec_exit(&self, c: &Arc<Container>, e: &ExecEntry, pid: i64, code: i64) {
        {
            let mut st = lock(e);
            st.running = false;
            st.exit_code = Some(code);
            st.pid = pid;
            st.pty = None;
        }
        let mut attrs = self.event_attrs(c);
        attrs.insert("execID".into(), e.id.clone());
        attrs.insert("exitCode".into(), code.to_string());
        self.events.emit("container", "exec_die", &c.id, attrs);
    }

    /// Runs the exec `id` for a health probe: no stdin, stdout and stderr into `out` (which
    /// keeps what it keeps; everything is read, so the process never blocks on a full pipe).
    /// The process is killed `timeout` after it started (the runtime's own start-up does not
    /// count, as in Docker) or when `cancel` fires. Err: the exec could not run (its message).
    pub(crate) async fn exec_probe(
        &self,
        c: &Arc<Container>,
        id: &str,
        timeout: std::time::Duration,
        cancel: &tokio_util::sync::CancellationToken,
        out: &mut crate::health::LimitedOutput,
    ) -> Result<crate::health::ProbeEnd, String> {
        use crate::health::ProbeEnd;
        use std::time::Duration;
        /// Docker's limit for an exec to start before the probe counts as failed.
        const START_LIMIT: Duration = Duration::from_secs(30);
        let e = self.execs.get(id).map_err(|e| e.message)?;
        lock(&e).started = true;
        let mut p = self.spawn_exec(c, &e, true).await.map_err(|e| e.message)?;
        let mut attrs = self.event_attrs(c);
        attrs.insert("execID".into(), e.id.clone());
        let cmd = e.config.cmd.clone().unwrap_or_default().join(" ");
        self.events
            .emit("container", &format!("exec_start: {cmd}"), &c.id, attrs);
        let stdout = p.stdout.take();
        let stderr = p.stderr.take();
        let reader = drain_limited(stdout, stderr, out);
        tokio::pin!(reader);
        let mut reader_done = false;
        let spawned = tokio::time::Instant::now();
        let mut started: Option<tokio::time::Instant> = None;
        let mut pid = 0i64;
        // The pid file is polled with a back-off (5 ms doubling to 40 ms): most probes start
        // within a few polls, and a slow start on a loaded host does not cost the daemon a
        // wake-up and a file read every 10 ms. The timeout starts at most one poll late.
        let mut poll = Duration::from_millis(5);
        enum Next {
            Exit(Result<i32, berth_runtime::RuntimeError>),
            Kill(ProbeEnd),
        }
        let next = loop {
            let deadline = match started {
                Some(t) => t + timeout,
                None => spawned + START_LIMIT,
            };
            tokio::select! {
                _ = &mut reader, if !reader_done => reader_done = true,
                r = p.wait() => break Next::Exit(r),
                _ = cancel.cancelled() => break Next::Kill(ProbeEnd::Canceled),
                // The runtime writes the pid file once the process runs: the timeout counts
                // from then.
                _ = tokio::time::sleep(poll), if started.is_none() => {
                    if let Some(n) = p.pid() {
                        pid = n as i64;
                        started = Some(tokio::time::Instant::now());
                    }
                    poll = (poll * 2).min(Duration::from_millis(40));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if started.is_none() {
                        p.kill_runtime();
                        let _ = p.wait().await;
                        self.record_exec_exit(c, &e, 0, 126);
                        return Err(format!("timed out starting health check for container {}", c.id));
                    }
                    break Next::Kill(ProbeEnd::TimedOut);
                }
            }
        };
        let (end, code) = match next {
            Next::Exit(Ok(code)) => (Ok(ProbeEnd::Exited(code as i64)), code as i64),
            Next::Exit(Err(err)) => {
                let code = err.exit_code_hint() as i64;
                (Err(err.to_string()), code)
            }
            Next::Kill(why) => {
                if pid == 0 {
                    pid = p.pid().unwrap_or(0) as i64;
                }
                if p.signal(libc::SIGKILL).is_err() {
                    p.kill_runtime();
                }
                let code = match p.wait().await {
                    Ok(code) => code as i64,
                    Err(err) => err.exit_code_hint() as i64,
                };
                (Ok(why), code)
            }
        };
        // Output still in the pipes; a background process of the probe holding them open does
        // not hold the probe up for long.
        if !reader_done {
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut reader).await;
        }
        self.record_exec_exit(c, &e, pid, code);
        end
    }

    /// Drops a finished exec from the daemon's table and from the container's list (health
    /// probes: they would otherwise pile up, one per interval).
    pub(crate) fn exec_forget(&self, c: &Container, id: &str) {
        self.execs.remove(id);
        c.exec_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|x| x != id);
    }

    async fn exec_session(
        self: Arc<Self>,
        c: Arc<Container>,
        e: Arc<ExecEntry>,
        mut p: ExecProcess,
        framed: bool,
        keys: Option<Vec<u8>>,
        conn: Hijacked,
    ) {
        let tty = e.config.tty;
        let (mut cr, mut cw) = tokio::io::split(conn);
        {
            let mut st = lock(&e);
            st.pid = p.pid().unwrap_or(0) as i64;
        }
        if tty {
            let Some(pty) = p.pty() else {
                self.finish_exec(&c, &e, &mut p).await;
                return;
            };
            let mut pty_w = pty.clone();
            let (detached_tx, mut detached_rx) = tokio::sync::oneshot::channel::<()>();
            let input = tokio::spawn(async move {
                if crate::detach::copy_input(&mut cr, &mut pty_w, keys).await
                    == crate::detach::InputEnd::Detached
                {
                    let _ = detached_tx.send(());
                }
            });
            let mut pty_r = pty;
            let mut buf = vec![0u8; 32 * 1024];
            let mut frame = Vec::new();
            let mut detached = false;
            // The input side may end without a detach (`exec -t` without `-i` closes stdin at
            // once): then only the output is awaited. A finished receiver must not be polled
            // again.
            let mut input_open = true;
            loop {
                tokio::select! {
                    r = pty_r.read(&mut buf) => match r {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let data = if framed {
                                // A terminal's output is one stream: stdout frames.
                                frame.clear();
                                stdcopy::encode_into(&mut frame, StdStream::Stdout, &buf[..n]);
                                &frame[..]
                            } else {
                                &buf[..n]
                            };
                            if cw.write_all(data).await.is_err() {
                                detached = true;
                                break;
                            }
                        }
                    },
                    r = &mut detached_rx, if input_open => match r {
                        Ok(()) => {
                            detached = true;
                            break;
                        }
                        Err(_) => input_open = false,
                    },
                }
            }
            input.abort();
            if detached {
                // The client left (detach keys, or gone): the process keeps running; its exit
                // is still recorded. Keep draining the terminal so it never blocks.
                let _ = cw.flush().await;
                let _ = cw.shutdown().await;
                let engine = self.clone();
                tokio::spawn(async move {
                    let mut sink = tokio::io::sink();
                    let _ = tokio::io::copy(&mut pty_r, &mut sink).await;
                    engine.finish_exec(&c, &e, &mut p).await;
                });
                return;
            }
            self.finish_exec(&c, &e, &mut p).await;
        } else {
            let stdin = p.stdin.take();
            let input = stdin.map(|mut w| {
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut w).await;
                    let _ = w.shutdown().await;
                })
            });
            let out = p.stdout.take();
            let err = p.stderr.take();
            let (want_out, want_err) = (e.config.attach_stdout, e.config.attach_stderr);
            pump(out, err, want_out, want_err, framed, &mut cw).await;
            // The exit code must be known before the client sees EOF: it asks for it next.
            self.finish_exec(&c, &e, &mut p).await;
            if let Some(t) = input {
                t.abort();
            }
        }
        let _ = cw.flush().await;
        let _ = cw.shutdown().await;
    }
}

/// Copies stdout/stderr pipes to `w` until both end: as stdcopy frames when `framed`, else
/// stdout raw and stderr dropped (dockerd gives a raw exec stream no stderr writer). Output
/// keeps being drained after the client goes away, so the process never blocks on a full
/// pipe.
async fn pump<W: tokio::io::AsyncWrite + Unpin>(
    out: Option<impl AsyncRead + Unpin>,
    err: Option<impl AsyncRead + Unpin>,
    want_out: bool,
    want_err: bool,
    framed: bool,
    w: &mut W,
) {
    let want_err = want_err && framed;
    let mut out = out;
    let mut err = err;
    let mut ob = vec![0u8; 32 * 1024];
    let mut eb = vec![0u8; 32 * 1024];
    let mut client_ok = true;
    let mut frame = Vec::with_capacity(32 * 1024 + 8);
    loop {
        let (n, stream) = tokio::select! {
            r = read_opt(&mut out, &mut ob), if out.is_some() => {
                match r { Ok(0) | Err(_) => { out = None; continue } Ok(n) => (n, StdStream::Stdout) }
            }
            r = read_opt(&mut err, &mut eb), if err.is_some() => {
                match r { Ok(0) | Err(_) => { err = None; continue } Ok(n) => (n, StdStream::Stderr) }
            }
            else => break,
        };
        let (data, wanted) = match stream {
            StdStream::Stdout => (&ob[..n], want_out),
            _ => (&eb[..n], want_err),
        };
        if client_ok && wanted {
            let bytes = if framed {
                frame.clear();
                stdcopy::encode_into(&mut frame, stream, data);
                &frame[..]
            } else {
                data
            };
            if w.write_all(bytes).await.is_err() {
                client_ok = false;
            }
        }
    }
}

/// Reads stdout and stderr to their ends into `out`.
async fn drain_limited(
    out: Option<impl AsyncRead + Unpin>,
    err: Option<impl AsyncRead + Unpin>,
    sink: &mut crate::health::LimitedOutput,
) {
    let mut out = out;
    let mut err = err;
    let mut ob = vec![0u8; 8 * 1024];
    let mut eb = vec![0u8; 8 * 1024];
    loop {
        tokio::select! {
            r = read_opt(&mut out, &mut ob), if out.is_some() => match r {
                Ok(0) | Err(_) => out = None,
                Ok(n) => sink.push(&ob[..n]),
            },
            r = read_opt(&mut err, &mut eb), if err.is_some() => match r {
                Ok(0) | Err(_) => err = None,
                Ok(n) => sink.push(&eb[..n]),
            },
            else => break,
        }
    }
}

async fn read_opt<R: AsyncRead + Unpin>(
    r: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// The process of the container's OCI spec at `path`, from the container's cache while the file
/// is unchanged (same mtime and size; a new start writes a new spec).
fn spec_process(
    c: &Container,
    path: &std::path::Path,
) -> Result<oci_spec::runtime::Process, ApiError> {
    let meta = std::fs::metadata(path).map_err(|err| {
        ApiError::internal(format!("cannot read the container's OCI spec: {err}"))
    })?;
    let key = (meta.modified().ok(), meta.len());
    let mut cache = c.spec_process.lock().unwrap_or_else(|p| p.into_inner());
    if let (Some(mtime), Some((m, len, process))) = (key.0, cache.as_ref()) {
        if *m == mtime && *len == key.1 {
            return Ok(process.clone());
        }
    }
    let spec = oci_spec::runtime::Spec::load(path).map_err(|err| {
        ApiError::internal(format!("cannot read the container's OCI spec: {err}"))
    })?;
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| ApiError::internal("the container's OCI spec has no process"))?;
    *cache = key.0.map(|m| (m, key.1, process.clone()));
    Ok(process)
}
