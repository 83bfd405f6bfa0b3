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
        // Hidden: a container's userland proxy, started by the daemon (berth_net::proxy).
        Some("userland-proxy") => userland_proxy(&argv[2..]),
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

/// `berth userland-proxy --sandbox <netns path> PROTO:FD:IP:PORT…` (the sandbox only names the
/// process for the daemon).
fn userland_proxy(args: &[OsString]) -> i32 {
    use std::io::Write;
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let specs = match args.split_first() {
        Some((flag, rest)) if flag == "--sandbox" && !rest.is_empty() => rest[1..]
            .iter()
            .map(|a| berth_net::proxy::ProxySpec::parse(a))
            .collect::<Result<Vec<_>, _>>(),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "usage: berth userland-proxy --sandbox PATH PROTO:FD:IP:PORT..."
            );
            return 2;
        }
    };
    match specs.and_then(|s| berth_net::proxy::run(&s)) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "berth userland-proxy: {e}");
            1
        }
    }
}
