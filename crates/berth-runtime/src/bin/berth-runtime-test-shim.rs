//! Test helper standing in for the berth binary in this crate's integration tests:
//! `berth-runtime-test-shim shim --bundle <dir>` runs the shim entry point (`berth shim`).

fn main() {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(a) if a == "shim" => {
            std::process::exit(berth_runtime::shim::shim_main(args.collect()))
        }
        _ => {
            eprintln!("usage: berth-runtime-test-shim shim --bundle <dir>");
            std::process::exit(2);
        }
    }
}
