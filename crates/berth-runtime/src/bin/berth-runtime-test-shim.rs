//! Test helper: the shim entry point as its own tiny binary (`<exe> shim --bundle <dir>`),
//! standing in for `berth shim` in this crate's integration tests.

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
