//! `POST /containers/{id}/attach`: connect a hijacked client connection to the container's
//! stdio through its supervisor. A client that attaches before `start` (as `docker run` does)
//! is queued and handed its stream after the runtime's `create` and before `start`, so it sees
//! all output.

use std::sync::Arc;

use berth_api::{ApiError, AttachOptions, HijackHandler, Hijacked};
use tokio::io::AsyncWriteExt;

use crate::container::{AttachSource, AttachWants, Container, Status};
use crate::{detach, Engine};

impl Engine {
    pub(crate) fn attach_container(
        self: &Arc<Self>,
        c: Arc<Container>,
        opts: AttachOptions,
    ) -> Result<HijackHandler, ApiError> {
        match c.status() {
            Status::Paused => {
                return Err(ApiError::conflict(
                    "You cannot attach to a paused container, unpause it first",
                ))
            }
            Status::Restarting => {
                return Err(ApiError::conflict(
                    "You cannot attach to a restarting container, wait until it is running",
                ))
            }
            _ => {}
        }
        // Detach keys end an attached terminal session without touching the container.
        let tty = c.with(|r| r.config.tty);
        let keys = if opts.stdin && tty {
            let spec = opts
                .detach_keys
                .as_deref()
                .filter(|k| !k.is_empty())
                .unwrap_or(detach::DEFAULT_DETACH_KEYS);
            Some(detach::parse(spec)?)
        } else {
            None
        };
        // Decide the stream's source now, before the 101 goes out: the client sends `start` as
        // soon as it has its 101, and a queued client must already be in the queue by then.
        let source = if opts.stream {
            Some(c.attach_or_queue(AttachWants {
                stdin: opts.stdin,
                stdout: opts.stdout,
                stderr: opts.stderr,
            }))
        } else {
            None
        };
        let engine = self.clone();
        let attrs = self.event_attrs(&c);
        self.events.emit("container", "attach", &c.id, attrs);
        Ok(Box::new(move |conn| {
            Box::pin(async move { engine.attach_session(c, opts, source, keys, conn).await })
        }))
    }

    async fn attach_session(
        self: Arc<Self>,
        c: Arc<Container>,
        opts: AttachOptions,
        source: Option<AttachSource>,
        keys: Option<Vec<u8>>,
        conn: Hijacked,
    ) {
        let (mut cr, mut cw) = tokio::io::split(conn);
        if opts.logs {
            match self.log_backlog(&c, opts.stdout, opts.stderr).await {
                Ok(bytes) => {
                    if cw.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!(id = %c.id, "attach logs: {}", e.message),
            }
        }
        let stream = match source {
            None => None,
            Some(AttachSource::Shim(shim)) => {
                shim.attach(opts.stdin, opts.stdout, opts.stderr).await.ok()
            }
            Some(AttachSource::Queued(rx)) => rx.await.ok(),
        };
        let Some(stream) = stream else {
            let _ = cw.shutdown().await;
            return;
        };
        let (mut sr, mut sw) = tokio::io::split(stream);
        let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
        let input = if opts.stdin {
            Some(tokio::spawn(async move {
                match detach::copy_input(&mut cr, &mut sw, keys).await {
                    // The client closed its input: pass the half-close on (stdin_once closes
                    // the container's stdin).
                    detach::InputEnd::Eof => {
                        let _ = sw.shutdown().await;
                    }
                    // The client leaves; the container keeps its input open.
                    detach::InputEnd::Detached => {
                        let _ = detached_tx.send(());
                    }
                    detach::InputEnd::Failed => {}
                }
            }))
        } else {
            None
        };
        tokio::select! {
            _ = tokio::io::copy(&mut sr, &mut cw) => {}
            Ok(()) = detached_rx => {
                tracing::debug!(id = %c.id, "attach session detached by the client's detach keys");
            }
        }
        let _ = cw.flush().await;
        let _ = cw.shutdown().await;
        if let Some(t) = input {
            t.abort();
        }
    }
}
