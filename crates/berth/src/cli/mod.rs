//! The docker-compatible command line.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::registry_cmd;

#[derive(Parser)]
#[command(name = "berth", version, about = "A Docker-compatible container engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run or maintain an OCI distribution registry
    Registry(registry_cmd::RegistryArgs),
}

/// Runs the CLI and returns the process exit code.
pub fn main(argv: Vec<OsString>) -> i32 {
    let cli = Cli::parse_from(argv);
    let result = match cli.command {
        Command::Registry(args) => registry_cmd::run(args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth: {e:#}");
            1
        }
    }
}
