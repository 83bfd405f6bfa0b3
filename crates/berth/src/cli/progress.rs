//! Rendering of Docker's JSON progress streams (pull, push, load, import).
//!
//! Not a terminal: the plain lines of Docker's `jsonmessage.DisplayJSONMessagesStream`
//! (`83d547c87a80: Pull complete`; messages carrying byte progress are skipped).
//! A terminal: one live line per layer (indicatif bars), other messages printed above them.

use std::collections::HashMap;
use std::io::Write;

use berth_api::client::ClientStream;
use berth_api::models::JsonMessage;
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::{CliError, CliResult};

/// Where the messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
    /// `-q`: consume (errors still count) but print nothing.
    Discard,
}

impl Out {
    fn is_tty(self) -> bool {
        match self {
            Out::Stdout => super::term::is_tty(1),
            Out::Stderr => super::term::is_tty(2),
            Out::Discard => false,
        }
    }

    fn write(self, s: &str) -> CliResult<()> {
        match self {
            Out::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(s.as_bytes())?;
                o.flush()?;
            }
            Out::Stderr => {
                let mut o = std::io::stderr().lock();
                let _ = o.write_all(s.as_bytes());
                let _ = o.flush();
            }
            Out::Discard => {}
        }
        Ok(())
    }
}

/// An `errorDetail` that ended the stream: the message and Docker's `code` (0 when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub code: i64,
    pub message: String,
}

impl From<StreamError> for CliError {
    fn from(e: StreamError) -> Self {
        CliError::msg(e.message)
    }
}

/// Whether a message carries byte progress (`progressDetail` with a current or total).
fn has_progress(m: &JsonMessage) -> bool {
    m.progress_detail
        .as_ref()
        .is_some_and(|d| d.current > 0 || d.total > 0)
}

/// Whether Docker tracks this message on its own line (it has an id and a progress part).
fn is_progress_line(m: &JsonMessage) -> bool {
    m.id.is_some()
        && (m.progress_detail.is_some() || m.progress.as_deref().is_some_and(|p| !p.is_empty()))
}

/// The text Docker's `JSONMessage.Display` prints for one message outside a terminal, or
/// `None` when it prints nothing (byte progress).
pub fn plain_line(m: &JsonMessage) -> Option<String> {
    if has_progress(m) {
        return None;
    }
    let mut s = String::new();
    if m.time_nano != 0 {
        s.push_str(&super::units::rfc3339_nano_fixed(m.time_nano));
        s.push(' ');
    } else if m.time != 0 {
        s.push_str(&super::units::rfc3339_nano_fixed(m.time * 1_000_000_000));
        s.push(' ');
    }
    if let Some(id) = &m.id {
        s.push_str(id);
        s.push_str(": ");
    }
    if let Some(from) = &m.from {
        s.push_str(&format!("(from {from}) "));
    }
    let status = m.status.as_deref().unwrap_or("");
    match (&m.progress_detail, m.progress.as_deref(), &m.stream) {
        (None, Some(p), _) if !p.is_empty() => s.push_str(&format!("{status} {p}")),
        (_, _, Some(stream)) if !stream.is_empty() => s.push_str(stream),
        _ => {
            s.push_str(status);
            s.push('\n');
        }
    }
    Some(s)
}

/// Displays a progress stream; `aux` receives `aux` messages (push digests, load ids).
/// Ends with the stream's `errorDetail`, if any.
pub async fn display(
    mut stream: ClientStream<JsonMessage>,
    out: Out,
    mut aux: impl FnMut(&JsonMessage),
) -> CliResult<Result<(), StreamError>> {
    let mut live = if out.is_tty() {
        Some(Live::new(out))
    } else {
        None
    };
    while let Some(item) = stream.next().await {
        let m = item?;
        if m.aux.is_some() {
            aux(&m);
            continue;
        }
        if let Some(message) = m.error_message() {
            let code = m.error_detail.as_ref().map_or(0, |d| d.code);
            if let Some(l) = live.as_mut() {
                l.finish();
            }
            return Ok(Err(StreamError {
                code,
                message: message.to_string(),
            }));
        }
        match live.as_mut() {
            Some(l) => l.show(&m),
            None => {
                if let Some(line) = plain_line(&m) {
                    out.write(&line)?;
                }
            }
        }
    }
    if let Some(l) = live.as_mut() {
        l.finish();
    }
    Ok(Ok(()))
}

/// The terminal renderer: a line per id while it makes progress.
struct Live {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    /// The plain text of each line's last state, printed when the group ends.
    last: HashMap<String, String>,
    order: Vec<String>,
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:50}] {current_human}/{total_human}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key(
            "current_human",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:>8}", super::units::human_size(s.pos() as f64));
            },
        )
        .with_key(
            "total_human",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(
                    w,
                    "{}",
                    super::units::human_size(s.len().unwrap_or(0) as f64)
                );
            },
        )
}

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Live {
    fn new(out: Out) -> Self {
        let target = match out {
            Out::Stdout => ProgressDrawTarget::stdout(),
            _ => ProgressDrawTarget::stderr(),
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            last: HashMap::new(),
            order: Vec::new(),
        }
    }

    fn show(&mut self, m: &JsonMessage) {
        if !is_progress_line(m) {
            // Like Docker: a line that is not per-layer progress starts a new group.
            self.finish();
            if let Some(line) =
                plain_line(m).or_else(|| m.status.as_ref().map(|s| format!("{s}\n")))
            {
                let _ = self.multi.println(line.trim_end_matches('\n'));
            }
            return;
        }
        let id = m.id.clone().unwrap_or_default();
        let bar = match self.bars.get(&id) {
            Some(b) => b.clone(),
            None => {
                let b = self.multi.add(ProgressBar::new(0));
                b.set_style(text_style());
                self.bars.insert(id.clone(), b.clone());
                self.order.push(id.clone());
                b
            }
        };
        let status = m.status.as_deref().unwrap_or("");
        bar.set_message(format!("{id}: {status}"));
        let text = match m.progress.as_deref().filter(|p| !p.is_empty()) {
            Some(p) if m.progress_detail.as_ref().is_some_and(|d| d.total > 0) => {
                format!("{id}: {status} {p}")
            }
            _ => format!("{id}: {status}"),
        };
        self.last.insert(id.clone(), text);
        match &m.progress_detail {
            Some(d) if d.total > 0 => {
                bar.set_style(bar_style());
                bar.set_length(d.total as u64);
                bar.set_position(d.current.max(0) as u64);
            }
            _ => bar.set_style(text_style()),
        }
    }

    /// Replaces the live lines by their last state as plain text (what stays in the
    /// terminal's scrollback, as with Docker) and forgets them.
    fn finish(&mut self) {
        for id in self.order.drain(..) {
            if let Some(b) = self.bars.remove(&id) {
                b.finish_and_clear();
                self.multi.remove(&b);
            }
            if let Some(text) = self.last.remove(&id) {
                let _ = self.multi.println(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::ProgressDetail;

    fn msg(json: &str) -> JsonMessage {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plain_lines_like_docker() {
        let lines: Vec<Option<String>> = [
            r#"{"status":"Pulling from me/extra","id":"v1"}"#,
            r#"{"status":"Already exists","progressDetail":{},"id":"7a9115a185e1"}"#,
            r#"{"status":"Downloading","progressDetail":{"current":121,"total":121},"progress":"[==>]  121B/121B","id":"83d547c87a80"}"#,
            r#"{"status":"Pull complete","progressDetail":{},"id":"83d547c87a80"}"#,
            r#"{"status":"Digest: sha256:e2a8"}"#,
            r#"{"stream":"Loaded image: busybox:latest\n"}"#,
        ]
        .iter()
        .map(|j| plain_line(&msg(j)))
        .collect();
        assert_eq!(
            lines,
            vec![
                Some("v1: Pulling from me/extra\n".to_string()),
                Some("7a9115a185e1: Already exists\n".to_string()),
                None,
                Some("83d547c87a80: Pull complete\n".to_string()),
                Some("Digest: sha256:e2a8\n".to_string()),
                Some("Loaded image: busybox:latest\n".to_string()),
            ]
        );
    }

    #[test]
    fn progress_lines_are_tracked_per_id() {
        assert!(is_progress_line(&msg(
            r#"{"status":"Preparing","progressDetail":{},"id":"dd8c236043f7"}"#
        )));
        assert!(!is_progress_line(&msg(
            r#"{"status":"Pulling from me/extra","id":"v1"}"#
        )));
        let m = JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            ..JsonMessage::status("x")
        };
        assert!(!has_progress(&m));
    }
}
