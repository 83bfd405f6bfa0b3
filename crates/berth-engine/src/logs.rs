//! `GET /containers/{id}/logs` and the log backlog of `attach?logs=1`, read from the json-file
//! log the supervisor writes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_api::{ApiError, ByteStream, LogsOptions};
use berth_runtime::logs::{self, LogEntry, ReadOptions};
use berth_runtime::stdcopy::{self, StdStream};
use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;

use crate::container::{Container, ContainerRecord};
use crate::Engine;

/// Renders one entry as the client expects it: raw for a tty, else an stdcopy frame; with
/// `timestamps`, the RFC 3339 time (nanoseconds, fixed width) and a space first; with
/// `details`, then the entry's attributes as moby writes them (`k=v,k2=v2`, query-escaped)
/// and a space.
fn render(e: &LogEntry, tty: bool, timestamps: bool, details: bool, out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(e.line.len() + 32);
    if timestamps {
        payload.extend_from_slice(
            e.time
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                .as_bytes(),
        );
        payload.push(b' ');
    }
    if details {
        for (i, (k, v)) in e.attrs.iter().enumerate() {
            if i > 0 {
                payload.push(b',');
            }
            query_escape(k, &mut payload);
            payload.push(b'=');
            query_escape(v, &mut payload);
        }
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

/// Go's `url.QueryEscape`: unreserved bytes as they are, space as `+`, the rest `%XX`.
fn query_escape(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
}

/// The json-file driver's extra attributes (moby's `logger.Info.ExtraAttributes` and
/// `ParseLogTag`): the container labels named by `labels` or matching `labels-regex`, the
/// environment variables named by `env` or matching `env-regex`, and `tag` rendered as a Go
/// template over the container (`{{.ID}}`, `{{.FullID}}`, `{{.Name}}`, `{{.ImageID}}`,
/// `{{.ImageFullID}}`, `{{.ImageName}}`, `{{.DaemonName}}`, `{{.Hostname}}`, `{{.Command}}`).
pub(crate) fn log_attrs(rec: &ContainerRecord) -> Result<BTreeMap<String, String>, String> {
    let opts = rec
        .host_config
        .log_config
        .config
        .clone()
        .unwrap_or_default();
    let labels = rec.config.labels.clone().unwrap_or_default();
    let env: BTreeMap<&str, &str> = rec
        .config
        .env
        .iter()
        .flatten()
        .filter_map(|e| e.split_once('='))
        .collect();
    let mut out = BTreeMap::new();
    let regex = |key: &str| -> Result<Option<regex::Regex>, String> {
        match opts.get(key).filter(|v| !v.is_empty()) {
            Some(re) => regex::Regex::new(re)
                .map(Some)
                .map_err(|e| format!("{key}: {e}")),
            None => Ok(None),
        }
    };
    let listed = |key: &str| -> Vec<String> {
        opts.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    };
    for l in listed("labels") {
        if let Some(v) = labels.get(&l) {
            out.insert(l, v.clone());
        }
    }
    if let Some(re) = regex("labels-regex")? {
        for (k, v) in &labels {
            if re.is_match(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for e in listed("env") {
        if let Some(v) = env.get(e.as_str()) {
            out.insert(e, v.to_string());
        }
    }
    if let Some(re) = regex("env-regex")? {
        for (k, v) in &env {
            if re.is_match(k) {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    if let Some(tag) = opts.get("tag").filter(|t| !t.is_empty()) {
        let image_full = rec.image_id.trim_start_matches("sha256:").to_string();
        let mut command = vec![rec.path.clone()];
        command.extend(rec.args.iter().cloned());
        let info: BTreeMap<Arc<str>, gotmpl::Value> = [
            ("ID", rec.id.chars().take(12).collect::<String>()),
            ("FullID", rec.id.clone()),
            ("Name", rec.name.trim_start_matches('/').to_string()),
            ("ImageID", image_full.chars().take(12).collect()),
            ("ImageFullID", image_full),
            ("ImageName", rec.config.image.clone()),
            ("DaemonName", "docker".to_string()),
            ("Hostname", rec.config.hostname.clone()),
            ("Command", command.join(" ")),
        ]
        .into_iter()
        .map(|(k, v)| (Arc::from(k), gotmpl::Value::String(v.into())))
        .collect();
        let rendered = gotmpl::Template::new("log-tag")
            .parse(tag)
            .and_then(|t| t.execute_to_string(&gotmpl::Value::Map(Arc::new(info))))
            .map_err(|e| format!("template: {e}"))?;
        out.insert("tag".to_string(), rendered);
    }
    Ok(out)
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
            render(e, tty, false, false, &mut out);
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
        let (ts, details) = (o.timestamps, o.details);
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
                        render(e, tty, ts, details, &mut out);
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
            render(&e, tty, ts, details, &mut out);
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
