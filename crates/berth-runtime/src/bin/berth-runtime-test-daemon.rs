//! Test helper playing a daemon in this crate's integration tests:
//! `berth-runtime-test-daemon <shim-exe> <id> <bundle> <runc> <runc-root> <log> [open-stdin]`
//! spawns a shim for the bundle, prints `spawned <shim-pid>`, then sleeps until killed (tests
//! kill it with SIGKILL to show that the shim outlives its parent).

use berth_runtime::shim::{LogConfig, ShimOptions};
use berth_runtime::OciRuntime;
use std::io::Write;

fn main() {
    let v: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if v.len() != 6 && v.len() != 7 {
        eprintln!("usage: berth-runtime-test-daemon <shim-exe> <id> <bundle> <runc> <runc-root> <log> [open-stdin]");
        std::process::exit(2);
    }
    let opts = ShimOptions {
        shim_exe: v[0].clone().into(),
        shim_args: vec!["shim".into()],
        id: v[1].clone(),
        bundle: v[2].clone().into(),
        runtime: OciRuntime::new("runc", v[3].clone(), v[4].clone()),
        tty: false,
        open_stdin: v.get(6).is_some_and(|a| a == "open-stdin"),
        stdin_once: false,
        console_size: None,
        log: Some(LogConfig {
            path: v[5].clone().into(),
            max_size: None,
            max_file: 1,
            attrs: Default::default(),
        }),
        start_at_create: false,
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
