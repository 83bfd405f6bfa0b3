//! The berth CLI without a daemon: help, syntax errors, exit codes, the no-daemon message,
//! and `logout` through a credential helper.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn berth_in(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(berth_bin());
    c.args(args)
        .env("DOCKER_CONFIG", dir.join("cfg"))
        .env(
            "BERTH_HOST",
            format!("unix://{}/nothing.sock", dir.display()),
        )
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_API_VERSION")
        .env_remove("DOCKER_API_VERSION")
        .stdin(Stdio::null());
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let o: Output = c.output().expect("run berth");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn berth(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    berth_in(dir.path(), args, &[])
}

#[test]
fn help_is_docker_style() {
    let r = berth(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("Usage:  berth [OPTIONS] COMMAND\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(
        "\nCommon Commands:\n  run         Create and run a new container from an image\n"
    ));
    assert!(r
        .stdout
        .contains("\nManagement Commands:\n  builder     Manage builds\n  compose     Define and run multi-container applications\n  container   Manage containers\n"));
    assert!(r.stdout.contains("  -H, --host list "), "{}", r.stdout);

    let r = berth(&["run", "--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with(
        "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nCreate and run a new container from an image\n\nAliases:\n  berth container run, berth run\n\nOptions:\n"
    ), "{}", r.stdout);
    for line in [
        "  -d, --detach ",
        "  -e, --env list ",
        "      --restart string ",
        "  -m, --memory bytes ",
        "      --sig-proxy ",
        "  -h, --hostname string ",
    ] {
        assert!(r.stdout.contains(line), "missing {line:?} in\n{}", r.stdout);
    }
    let r = berth(&["container", "ls", "--help"]);
    assert!(r.stdout.starts_with("Usage:  berth container ls [OPTIONS]\n\nList containers\n\nAliases:\n  berth container ls, berth container list, berth container ps, berth ps\n"), "{}", r.stdout);
    // -h is help everywhere but run/create, where it is --hostname.
    assert_eq!(berth(&["ps", "-h"]).code, 0);
    let r = berth(&["container"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with(
        "Usage:  berth container COMMAND\n\nManage containers\n\nCommands:\n  attach "
    ));
}

#[test]
fn syntax_errors_exit_125_with_usage() {
    let r = berth(&["ps", "--foo"]);
    assert_eq!(r.code, 125);
    assert_eq!(
        r.stderr,
        "unknown flag: --foo\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n"
    );
    let r = berth(&["run", "-x", "busybox"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.starts_with("unknown shorthand flag: 'x' in -x\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"));
    let r = berth(&["stop", "-t", "abc", "x"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.starts_with(
        "invalid argument \"abc\" for \"-t, --timeout\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax\n"
    ));
    let r = berth(&["ps", "-n"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.starts_with("flag needs an argument: 'n' in -n\n"));
}

#[test]
fn argument_count_errors_exit_1() {
    let r = berth(&["run"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information\n"
    );
    let r = berth(&["rename", "a"]);
    assert_eq!(r.code, 1);
    assert!(r
        .stderr
        .starts_with("berth: 'berth rename' requires 2 arguments\n"));
    let r = berth(&["ps", "x"]);
    assert_eq!(r.code, 1);
    assert!(r
        .stderr
        .starts_with("berth: 'berth ps' accepts no arguments\n"));
    let r = berth(&["nosuch"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "berth: unknown command: berth nosuch\n\nRun 'berth --help' for more information\n"
    );
}

#[test]
fn client_side_validation_before_any_request() {
    // No daemon listens: these must fail before connecting.
    let r = berth(&["run", "--rm", "BusyBox:UPPER", "true"]);
    assert_eq!(r.code, 125);
    assert_eq!(
        r.stderr,
        "berth: invalid reference format: repository name (library/BusyBox) must be lowercase\n\nRun 'berth run --help' for more information\n"
    );
    let r = berth(&["create", "--restart=always", "--rm", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert_eq!(
        r.stderr,
        "berth: conflicting options: cannot specify both --restart and --rm\n\nRun 'berth create --help' for more information\n"
    );
    let r = berth(&["run", "-e", "=x", "busybox"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.starts_with(
        "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x\n"
    ));
    let r = berth(&["run", "--env-file", "/nonexistent-env", "busybox"]);
    assert_eq!(r.code, 125);
    assert!(r
        .stderr
        .starts_with("berth: open /nonexistent-env: no such file or directory\n"));
    let r = berth(&["run", "--cpus", "x", "busybox"]);
    assert_eq!(r.code, 125);
    let r = berth(&["run", "-it", "busybox"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "the input device is not a TTY\n");
}

#[test]
fn no_daemon_message() {
    let dir = tempfile::tempdir().unwrap();
    let r = berth_in(dir.path(), &["ps"], &[]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "Cannot connect to the berth daemon at unix://{}/nothing.sock. Is the berth daemon running?\n",
            dir.path().display()
        )
    );
    // -H wins over the environment.
    let r = berth_in(
        dir.path(),
        &["-H", "unix:///nonexistent/x.sock", "images"],
        &[],
    );
    assert!(
        r.stderr.contains("unix:///nonexistent/x.sock"),
        "{}",
        r.stderr
    );
    let r = berth_in(dir.path(), &["-H", "a", "-H", "b", "ps"], &[]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "Specify only one -H\n"));
}

#[test]
fn version_flag() {
    let r = berth(&["-v"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with(&format!(
        "berth version {}, build ",
        env!("CARGO_PKG_VERSION")
    )));
}

#[test]
fn login_validation() {
    let r = berth(&["login", "--password-stdin", "localhost:5000"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Must provide --username with --password-stdin\n")
    );
    let r = berth(&["login", "-u", "me", "-p", "x", "--password-stdin"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n--password and --password-stdin are mutually exclusive\n"
    );
}

#[test]
fn logout_erases_file_and_helper_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.json"),
        r#"{"auths":{"localhost:5000":{"auth":"bWU6dHJhY2VwYXNzMTIz"},"keep:1":{"auth":"eDp5"}}}"#,
    )
    .unwrap();
    let r = berth_in(dir.path(), &["logout", "localhost:5000"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Removing login credentials for localhost:5000\n");
    let text = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(
        !text.contains("localhost:5000") && text.contains("keep:1"),
        "{text}"
    );

    // With a credential helper: `erase` is called with the server on stdin.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("helper.log");
    let helper = bin.join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nprintf '%s ' \"$1\" >> {log}\ncat >> {log}\necho >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"credsStore":"test"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = berth_in(
        dir.path(),
        &["logout", "registry.example:5000"],
        &[("PATH", &path)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.lines().any(|l| l == "erase registry.example:5000"),
        "{calls}"
    );
}
