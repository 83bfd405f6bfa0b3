//! `GET /containers/{id}/logs` and the log backlog of `attach?logs=1`, read from the json-file
//! log the supervisor writes.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api::{ApiError, ByteStream, LogsOptions};
use berth_runtime::logs::{self, LogEntry, ReadOptions};
use berth_runtime::stdcopy::{self, StdStream};
use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;

use crate::container::Container;
use crate::Engine;

/// Renders one entry as the client expects it: raw for a tty, else an stdcopy frame; with
/// `timestamps`, the RFC 3339 time (nanoseconds, fixed width) and a space first.
fn render(e: &LogEntry, tty: bool, timestamps: bool, out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(e.line.len() + 32);
    if timestamps {
        payload.extend_from_slice(
            e.time
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                .as_bytes(),
        );
        payload.push(b' ');
    }
    payload.extend_from_slice(&e.line);
    if tty {
        out.extend_from_slice(&payload);
    } else {
        let stream = match e.stream {
            StdStream::Stderr => StdStream::Stderr,
            _ => StdStream::Stdout,
        };
        stdcopy::encode_into(out, stream, &payload);
    }
}

fn no_reading() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "configured logging driver does not support reading",
    )
}

impl Engine {
    /// All logged output so far, rendered for an attach client.
    pub(crate) async fn log_backlog(
        &self,
        c: &Container,
        stdout: bool,
        stderr: bool,
    ) -> Result<Vec<u8>, ApiError> {
        let (enabled, path, tty) =
            c.with(|r| (r.log_enabled, PathBuf::from(&r.log_path), r.config.tty));
        if !enabled {
            return Err(no_reading());
        }
        let opts = ReadOptions {
            stdout,
            stderr,
            ..ReadOptions::default()
        };
        let entries = tokio::task::spawn_blocking(move || logs::read(&path, &opts))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut out = Vec::new();
        for e in &entries {
            render(e, tty, false, &mut out);
        }
        Ok(out)
    }

    pub(crate) async fn logs_stream(
        &self,
        c: &Arc<Container>,
        o: LogsOptions,
    ) -> Result<ByteStream, ApiError> {
        let (enabled, path, tty) =
            c.with(|r| (r.log_enabled, PathBuf::from(&r.log_path), r.config.tty));
        if !enabled {
            return Err(no_reading());
        }
        let opts = ReadOptions {
            stdout: o.stdout,
            stderr: o.stderr,
            since: o.since,
            until: o.until,
            tail: o.tail.map(|t| t as usize),
        };
        let ts = o.timestamps;
        if !o.follow {
            let entries = tokio::task::spawn_blocking(move || logs::read(&path, &opts))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(|e| ApiError::internal(e.to_string()))?;
            // Send in chunks of a few hundred entries so a large log streams.
            let chunks: Vec<Bytes> = entries
                .chunks(256)
                .map(|chunk| {
                    let mut out = Vec::new();
                    for e in chunk {
                        render(e, tty, ts, &mut out);
                    }
                    Bytes::from(out)
                })
                .collect();
            return Ok(Box::pin(futures_util::stream::iter(
                chunks.into_iter().map(Ok),
            )));
        }
        // Follow until the container stops (and what it wrote is drained).
        let (tx, rx) = tokio::sync::mpsc::channel::<LogEntry>(256);
        let mut state = c.subscribe();
        let stop = async move {
            loop {
                if !state.borrow_and_update().status.is_running() {
                    return;
                }
                if state.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::spawn(async move {
            if let Err(e) = logs::follow(path, opts, tx, stop).await {
                tracing::debug!("log follow ended: {e}");
            }
        });
        let stream = tokio_stream_from(rx).map(move |e| {
            let mut out = Vec::new();
            render(&e, tty, ts, &mut out);
            Ok(Bytes::from(out))
        });
        Ok(Box::pin(stream))
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
