//! Test helper standing in for the berth binary in this crate's integration tests.
//!
//! * `berth-runtime-test-shim shim --bundle <dir>` — the shim entry point (`berth shim`).
//! * `berth-runtime-test-shim spawn <id> <bundle> <runc> <runc-root> <log> [open-stdin]` — plays a daemon:
//!   spawns a shim for the bundle, prints `spawned <shim-pid>`, then sleeps until killed (tests
//!   kill it with SIGKILL to show the shim outlives its parent).

use berth_runtime::shim::{LogConfig, ShimOptions};
use berth_runtime::OciRuntime;
use std::io::Write;

fn main() {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(a) if a == "shim" => {
            std::process::exit(berth_runtime::shim::shim_main(args.collect()))
        }
        Some(a) if a == "spawn" => {
            let v: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
            if v.len() != 5 && v.len() != 6 {
                eprintln!("usage: spawn <id> <bundle> <runc> <runc-root> <log> [open-stdin]");
                std::process::exit(2);
            }
            let opts = ShimOptions {
                shim_exe: std::env::current_exe().unwrap_or_default(),
                shim_args: vec!["shim".into()],
                id: v[0].clone(),
                bundle: v[1].clone().into(),
                runtime: OciRuntime::new("runc", v[2].clone(), v[3].clone()),
                tty: false,
                open_stdin: v.get(5).is_some_and(|a| a == "open-stdin"),
                stdin_once: false,
                console_size: None,
                log: Some(LogConfig {
                    path: v[4].clone().into(),
                    max_size: None,
                    max_file: 1,
                }),
            };
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("tokio: {e}");
                    std::process::exit(1);
                }
            };
            rt.block_on(async {
                match berth_runtime::shim::spawn(&opts).await {
                    Ok(c) => {
                        println!("spawned {}", c.shim_pid());
                        let _ = std::io::stdout().flush();
                        loop {
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                        }
                    }
                    Err(e) => {
                        println!("error {e}");
                        std::process::exit(1);
                    }
                }
            })
        }
        _ => {
            eprintln!("usage: berth-runtime-test-shim shim --bundle <dir>");
            std::process::exit(2);
        }
    }
}
