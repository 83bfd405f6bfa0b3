//! berth-runtime: everything between the engine and the OCI runtime (runc).
//!
//! * [`spec`] — OCI runtime spec generation with Docker's defaults and flags.
//! * [`seccomp`] — Docker's default seccomp policy (authored here) and the profile parser.
//! * [`user`] — `--user` resolution and working-directory creation confined to the rootfs.
//! * [`runtime`] — the OCI runtime CLI driver (kill, delete, pause, state, ps, exec …).
//! * [`shim`] — the per-container supervisor (server side, synchronous) and its async client.
//! * [`logs`] — the json-file log format: writer (used by the shim) and reader.
//! * [`stdcopy`] — Docker's 8-byte multiplexing header for attach/logs streams.
//! * [`cgroups`] — cgroup mode detection, OOM-kill counters, usage readers.
//! * [`probe`] — `berth runtime-probe`: reports from inside a container what confines it.
//!
//! See docs/architecture.md for how the pieces fit together.

pub mod cgroups;
pub mod logs;
pub mod probe;
pub mod runtime;
pub mod seccomp;
pub mod shim;
pub mod spec;
pub mod stdcopy;
pub mod time;
pub mod user;

mod sys;

pub use runtime::{OciRuntime, RuntimeError};
pub use shim::{read_exit_file, spawn, AttachStream, ExitInfo, LogConfig, ShimClient, ShimOptions};
