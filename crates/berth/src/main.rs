//! The `berth` binary: daemon, CLI, registry server and the per-container supervisor.

fn main() {
    eprintln!("berth: not implemented yet");
    std::process::exit(1);
}
