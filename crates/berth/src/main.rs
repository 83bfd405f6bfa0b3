//! The `berth` binary: daemon, CLI, registry server and the per-container supervisor.
//!
//! `berth shim` is dispatched before anything else: the supervisor must stay tiny, so it never
//! touches clap, tracing or tokio.

mod cli;
mod daemon;
mod registry_cmd;

use std::ffi::OsString;

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let code = match argv.get(1).and_then(|a| a.to_str()) {
        Some("shim") => berth_runtime::shim::shim_main(argv[2..].to_vec()),
        // Hidden: run inside a container, reports capabilities, seccomp mode and how refused
        // system calls behave (berth_runtime::probe).
        Some("runtime-probe") => berth_runtime::probe::probe_main(),
        Some("daemon") => {
            let (args, matches) = daemon::parse(&argv[1..]);
            match daemon::run(args, &matches) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("berth daemon: {e:#}");
                    1
                }
            }
        }
        _ => cli::main(argv),
    };
    std::process::exit(code);
}
