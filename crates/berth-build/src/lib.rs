//! berth-build: `berth build`. The Dockerfile language is a pure module with no I/O
//! (`dockerfile`), `.dockerignore` matching likewise (`dockerignore`); the build graph, the
//! cache and the executor use the image store (`berth-image`) and the runtime
//! (`berth-runtime`). The engine calls this crate; it knows no HTTP.
//!
//! * [`context`]: the build context as received (extracted while it streams in, confined);
//! * [`builder`]: the solver (stages as a graph, parallel, only what the target needs) and
//!   the executor of each step ([`step`] is what it runs);
//! * [`copy`]: `COPY`/`ADD` sources, their content digests and the copy itself;
//! * [`run`]: `RUN` in a container of its own through the OCI runtime;
//! * [`cache`]: step results by key, persistent in the store;
//! * [`progress`]: classic-builder text and structured trace events.

pub mod dockerfile;
pub mod dockerignore;
mod paths;

pub mod builder;
pub mod cache;
pub mod context;
pub mod copy;
pub mod error;
pub mod frontend;
pub mod fsops;
pub mod progress;
pub mod run;
pub mod step;

pub use builder::{Builder, Frontend, Host, Options, StageInfo};
pub use context::BuildContext;
pub use error::BuildError;
