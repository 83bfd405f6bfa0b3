//! The `berth` binary: daemon, CLI, registry server and the per-container supervisor.

mod registry_cmd;

use clap::{Parser, Subcommand};

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

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Registry(args) => registry_cmd::run(args),
    };
    if let Err(e) = result {
        eprintln!("berth: {e:#}");
        std::process::exit(1);
    }
}
