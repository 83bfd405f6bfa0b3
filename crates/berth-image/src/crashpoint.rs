//! Crash injection for the tests of interrupted operations: when the environment variable
//! `BERTH_TEST_CRASH_AT` names a point, the process sends itself `SIGKILL` on reaching it,
//! exactly as a `kill -9` at that moment would end it.
//!
//! Written here rather than taken from the `fail` crate: its points exist only in builds
//! with a feature enabled, while the crash tests drive the binary as shipped; this needs no
//! more than one environment lookup per process.

use std::sync::OnceLock;

/// The environment variable naming the point to crash at.
pub const ENV: &str = "BERTH_TEST_CRASH_AT";

/// Ends the process with `SIGKILL` if `BERTH_TEST_CRASH_AT` is `name`.
pub fn here(name: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if at.as_deref() == Some(name) {
        tracing::warn!(point = name, "crash point reached: killing the process");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
