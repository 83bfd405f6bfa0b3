//! berth-build: `berth build`. The Dockerfile language is a pure module with no I/O
//! (`dockerfile`), `.dockerignore` matching likewise (`dockerignore`); the build graph, the
//! cache and the executor use the image store (`berth-image`) and the runtime
//! (`berth-runtime`). The engine calls this crate; it knows no HTTP.

pub mod dockerfile;
pub mod dockerignore;
mod paths;
