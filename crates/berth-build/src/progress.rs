//! What a build reports while it runs.
//!
//! Two views of the same build: the classic builder's text (`Step 1/9 : FROM busybox`,
//! ` ---> Using cache`, the output of `RUN`), which the engine sends as `{"stream":…}` lines
//! in Dockerfile order (the output of stages that ran in parallel is held back until the
//! stages before them are printed), and structured [`Trace`] events (a vertex per step with
//! its state and output, as they happen) for clients that draw a live view.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Classic-builder text.
    Stream(String),
    /// The image a stage produced (`{"aux":{"ID":…}}`).
    Aux(String),
    /// A pull's progress while resolving `FROM` (already in Docker's JSON-message form).
    Pull(serde_json::Value),
    /// Structured progress.
    Trace(Trace),
}

/// The state of a vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VertexState {
    Waiting,
    Running,
    Cached,
    Done,
    Error,
}

/// A structured progress event about one vertex (a step of a stage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// Unique in the build; steps of a stage are numbered in order.
    pub vertex: u32,
    /// `[stage 2/5] RUN make`.
    pub name: String,
    pub state: VertexState,
    /// Output lines of a running step (raw bytes as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Milliseconds since the vertex started (set on `done`, `cached` and `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
}

/// The `id` of structured progress messages on the wire.
pub const TRACE_ID: &str = "berth.build.trace";

/// Where events go. Sending never blocks; a closed receiver (the client went away) is the
/// build's cue to stop, seen through its cancellation token.
pub type Sink = mpsc::UnboundedSender<Event>;

/// Sends classic text.
pub fn stream(sink: &Sink, s: impl Into<String>) {
    let _ = sink.send(Event::Stream(s.into()));
}
