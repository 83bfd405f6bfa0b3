//! The per-container supervisor ("shim") and its client.
//!
//! One shim per container: the berth binary re-executed as `berth shim --bundle <dir>` (the
//! daemon runs it from `<exec-root>/berth-shim`). It is a synchronous, single-threaded poll(2)
//! loop ([`shim_main`]); the engine talks to it with the async [`ShimClient`].
//!
//! # Life cycle
//!
//! 1. [`spawn`] writes `<bundle>/shim.json` (the [`ShimOptions`] the shim needs), starts the shim
//!    in a new session with a status pipe as fd 3, and waits for the status line.
//! 2. The shim becomes a child subreaper, writes `shim.pid`, listens on `shim.sock` (a filesystem
//!    socket, mode 0600), creates the container's stdio (pipes, or a pty whose master it receives
//!    from the runtime over `console.sock`), runs `runtime create`, and reports
//!    `ok <init-pid>` or `error <runtime message>` on fd 3, then closes it. On error it exits.
//! 3. It reads the container's output all the time (writing the json-file log), serves
//!    requests on `shim.sock`, and runs `runtime start` when asked.
//!    With [`ShimOptions::start_at_create`] step 2 runs `runtime run --detach` instead of
//!    `create` (one runtime process less per start): the process runs at once, but the shim
//!    reads none of its output and processes no exit until `start` arrives, so attach clients
//!    connected in between still see everything.
//! 4. When init exits it drains the output, reads the OOM-kill counter of the memory cgroup,
//!    writes `exit.json` atomically, removes `shim.sock`, answers waiters, flushes attach
//!    clients (then EOF), runs `runtime delete --force` and exits 0. The runtime's cleanup
//!    comes last so that it is not on the path of a waiting client; a new start of the same
//!    container must wait until this shim is gone.
//!
//! The shim survives the daemon: a new daemon reconnects with [`ShimClient::connect`]. If the
//! shim is gone, `exit.json` ([`read_exit_file`]) has the container's exit.
//!
//! # Protocol on `shim.sock`
//!
//! One request per connection: a single JSON line, answered by a single JSON line
//! ([`Response`]: `{"ok":true,…}` or `{"ok":false,"error":"…"}`).
//!
//! | request | answer |
//! |---|---|
//! | `{"op":"info"}` | `{"ok":true,"init_pid":N,"shim_pid":N,"tty":b,"state":"created"\|"running"\|"exited"}` |
//! | `{"op":"start"}` | `{"ok":true}` after `runtime start` succeeded, or the runtime's error |
//! | `{"op":"resize","height":H,"width":W}` | `{"ok":true}` (tty only) |
//! | `{"op":"wait"}` | sent when the container exited: `{"ok":true,"exit":{…exit.json…}}` |
//! | `{"op":"attach","stdin":b,"stdout":b,"stderr":b}` | `{"ok":true,"tty":b}`, then the connection is the stream |
//!
//! After an attach answer the shim sends live output of the requested streams: without a tty
//! every chunk is framed with Docker's 8-byte stdcopy header (stream 1 stdout, 2 stderr); with a
//! tty the bytes are raw. If `stdin` was requested, bytes the client sends go to the container's
//! stdin. When the client half-closes (shutdown of its write side): with `stdin_once` and no
//! tty the container's stdin pipe is closed, so the process reads EOF; a terminal's input is
//! never closed (Docker's rule: a detached `run -it` keeps its shell); otherwise only that
//! client's input ends. A client
//! whose unsent output exceeds [`MAX_CLIENT_BUFFER`] is disconnected — a slow client never blocks
//! the container or the other clients. When the container exits, every attach connection gets
//! the remaining output and is then closed.

mod client;
mod server;

pub use client::{read_exit_file, spawn, AttachStream, ShimClient, ShimInfo};
pub use server::shim_main;

use crate::runtime::OciRuntime;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest amount of unsent output kept for one attach client before it is dropped.
pub const MAX_CLIENT_BUFFER: usize = 1024 * 1024;

/// File names inside the bundle directory.
pub mod files {
    /// Options for the shim, written by [`super::spawn`].
    pub const SHIM_JSON: &str = "shim.json";
    /// The shim's socket.
    pub const SHIM_SOCK: &str = "shim.sock";
    /// The shim's pid.
    pub const SHIM_PID: &str = "shim.pid";
    /// The container's exit.
    pub const EXIT_JSON: &str = "exit.json";
    /// The init pid written by the runtime.
    pub const INIT_PID: &str = "init.pid";
    /// The runtime's console socket (tty only, removed after use).
    pub const CONSOLE_SOCK: &str = "console.sock";
    /// The runtime's JSON log (create/start/delete).
    pub const RUNTIME_LOG: &str = "runtime.log";
    /// The shim's own diagnostics.
    pub const SHIM_LOG: &str = "shim.log";
}

/// json-file log settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// The live log file (`<data-root>/containers/<id>/<id>-json.log`).
    pub path: PathBuf,
    /// `max-size` in bytes (None: no rotation).
    pub max_size: Option<u64>,
    /// `max-file` (number of files kept, including the live one; 1 = truncate in place).
    pub max_file: u32,
    /// Attributes written with every entry (`--log-opt labels/env/tag`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

/// How to start a shim.
#[derive(Debug, Clone)]
pub struct ShimOptions {
    /// The binary to run (`<exec-root>/berth-shim`, a read-only copy of berth).
    pub shim_exe: PathBuf,
    /// Arguments before `--bundle` (berth: `["shim"]`).
    pub shim_args: Vec<String>,
    /// Container id.
    pub id: String,
    /// Bundle directory (`<exec-root>/containers/<id>`), containing config.json.
    pub bundle: PathBuf,
    /// The OCI runtime.
    pub runtime: OciRuntime,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// Close stdin after the first attached client detaches.
    pub stdin_once: bool,
    /// Initial console size (height, width).
    pub console_size: Option<(u16, u16)>,
    /// json-file log (None: output is only relayed to attach clients).
    pub log: Option<LogConfig>,
    /// Run the container right away (`runtime run --detach`) and hold its output until
    /// [`ShimClient::start`]; saves one runtime invocation on every start.
    pub start_at_create: bool,
}

/// What the shim reads from `shim.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShimConfig {
    pub id: String,
    pub runtime_name: String,
    pub runtime_path: PathBuf,
    pub runtime_root: PathBuf,
    pub runtime_args: Vec<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub console_size: Option<(u16, u16)>,
    pub log: Option<LogConfig>,
    #[serde(default)]
    pub start_at_create: bool,
}

impl ShimConfig {
    pub(crate) fn runtime(&self, bundle: &Path) -> OciRuntime {
        let mut r = OciRuntime::new(
            self.runtime_name.clone(),
            self.runtime_path.clone(),
            self.runtime_root.clone(),
        );
        r.extra_args = self.runtime_args.clone();
        r.log_dir = bundle.to_path_buf();
        r
    }
}

/// The container's exit, as in `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code; 128+n when killed by signal n.
    pub exit_code: i32,
    /// The memory cgroup recorded an OOM kill.
    pub oom_killed: bool,
    /// When the shim saw init exit.
    #[serde(with = "crate::time::serde_rfc3339_nano")]
    pub finished_at: DateTime<Utc>,
    /// Set when the container never ran (e.g. `runtime start` failed).
    pub error: Option<String>,
}

/// A request on shim.sock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// State of the shim and container.
    Info,
    /// `runtime start`.
    Start,
    /// Resize the tty.
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Wait for the exit.
    Wait,
    /// Attach to streams.
    Attach {
        /// Forward input to the container's stdin.
        #[serde(default)]
        stdin: bool,
        /// Receive stdout.
        #[serde(default)]
        stdout: bool,
        /// Receive stderr.
        #[serde(default)]
        stderr: bool,
    },
}

/// The answer line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    /// Success.
    pub ok: bool,
    /// Error text when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Init pid (info).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_pid: Option<i32>,
    /// Shim pid (info).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_pid: Option<i32>,
    /// Whether the container has a tty (info, attach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    /// created, running, exited (info).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The exit (wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
}

impl Response {
    pub(crate) fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }

    pub(crate) fn err(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        assert_eq!(
            serde_json::to_string(&Request::Attach {
                stdin: true,
                stdout: true,
                stderr: false
            })
            .unwrap(),
            r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"resize","height":10,"width":20}"#).unwrap(),
            Request::Resize {
                height: 10,
                width: 20
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"nope"}"#).is_err());
    }

    #[test]
    fn exit_json_shape() {
        let e = ExitInfo {
            exit_code: 137,
            oom_killed: true,
            finished_at: crate::time::parse_rfc3339("2026-11-27T17:03:35.248975914Z").unwrap(),
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"exit_code":137,"oom_killed":true,"finished_at":"2026-11-27T17:03:35.248975914Z","error":null}"#
        );
    }
}
