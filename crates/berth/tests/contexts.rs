//! Contexts: the berth CLI and the Docker CLI share `~/.docker/contexts` (a context made by
//! one works in the other, exports import across), `context use`/`--context`/
//! `DOCKER_CONTEXT` pick the daemon, and bad names and corrupted entries give clear errors
//! without hiding the other contexts.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{berth_bin, Daemon, Out, DOCKER};

/// A CLI run with only `DOCKER_CONFIG` (no host in the environment).
fn cli(program: &Path, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    cli_stdin(program, config, args, env, b"")
}

fn cli_stdin(
    program: &Path,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    input: &[u8],
) -> Out {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "60"])
        .arg(program)
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let mut i = child.stdin.take().unwrap();
    i.write_all(input).unwrap();
    drop(i);
    Out::of(child.wait_with_output().unwrap())
}

#[test]
fn contexts_are_shared_with_the_docker_cli() {
    let d = Daemon::start();
    let cfg = d.dir.join("ctx-config");
    let berth = berth_bin();
    let docker = Path::new(DOCKER);
    let host = d.host();
    let ep = format!("host={host}");

    // Made by the Docker CLI, used by berth.
    cli(
        docker,
        &cfg,
        &[
            "context",
            "create",
            "dctx",
            "--docker",
            &ep,
            "--description",
            "made by docker",
        ],
        &[],
    )
    .ok();
    let out = cli(&berth, &cfg, &["context", "ls"], &[]);
    let text = out.ok();
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("default *"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("dctx "))
        .unwrap_or_default();
    assert!(
        line.contains("made by docker") && line.contains(&host),
        "{text}"
    );
    let out = cli(
        &berth,
        &cfg,
        &["--context", "dctx", "version", "--format", "{{.Server.Os}}"],
        &[],
    );
    assert_eq!(out.ok(), "linux");
    let out = cli(
        &berth,
        &cfg,
        &["version", "--format", "{{.Server.Os}}"],
        &[("DOCKER_CONTEXT", "dctx")],
    );
    assert_eq!(out.ok(), "linux");
    // `context use` writes config.json's currentContext, which the Docker CLI then follows.
    let out = cli(&berth, &cfg, &["context", "use", "dctx"], &[]);
    assert_eq!(out.ok(), "dctx");
    assert!(
        out.stderr.contains("Current context is now \"dctx\""),
        "{}",
        out.stderr
    );
    let out = cli(docker, &cfg, &["context", "show"], &[]);
    assert_eq!(out.ok(), "dctx");
    let out = cli(&berth, &cfg, &["ps", "--format", "{{.ID}}"], &[]);
    out.ok();
    let out = cli(&berth, &cfg, &["context", "show"], &[]);
    assert_eq!(out.ok(), "dctx");
    // -H still wins over the current context; --context together with -H is refused.
    let out = cli(
        &berth,
        &cfg,
        &["-H", "unix:///nonexistent.sock", "version"],
        &[],
    );
    assert_ne!(out.status, 0);
    let out = cli(
        &berth,
        &cfg,
        &["-H", &host, "--context", "dctx", "version"],
        &[],
    );
    assert_ne!(out.status, 0);
    assert!(
        out.stderr
            .contains("conflicting options: cannot specify both --host and --context"),
        "{}",
        out.stderr
    );
    // The current context cannot be removed without -f.
    let out = cli(&berth, &cfg, &["context", "rm", "dctx"], &[]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr
            .contains("context \"dctx\" is in use, set -f flag to force remove"),
        "{}",
        out.stderr
    );
    cli(&berth, &cfg, &["context", "use", "default"], &[]).ok();

    // Made by berth, used by the Docker CLI.
    cli(
        &berth,
        &cfg,
        &["context", "create", "bctx", "--docker", &ep],
        &[],
    )
    .ok();
    let out = cli(
        docker,
        &cfg,
        &["--context", "bctx", "version", "--format", "{{.Server.Os}}"],
        &[],
    );
    assert_eq!(out.ok(), "linux", "{}", out.stderr);
    let out = cli(
        docker,
        &cfg,
        &[
            "context",
            "inspect",
            "bctx",
            "--format",
            "{{.Endpoints.docker.Host}}",
        ],
        &[],
    );
    assert_eq!(out.ok(), host);
    let ours = cli(&berth, &cfg, &["context", "inspect", "dctx"], &[]).ok();
    let theirs = cli(docker, &cfg, &["context", "inspect", "dctx"], &[]).ok();
    assert_eq!(ours, theirs);
    // The same listing, but for the default context's socket (berth's own default).
    let stored = |text: String| -> Vec<String> {
        text.lines()
            .filter(|l| !l.contains("\"Name\":\"default\""))
            .map(String::from)
            .collect()
    };
    let ours = cli(&berth, &cfg, &["context", "ls", "--format", "json"], &[]).ok();
    let theirs = cli(docker, &cfg, &["context", "ls", "--format", "json"], &[]).ok();
    assert_eq!(stored(ours), stored(theirs));

    // Export from one CLI, import into the other, both ways.
    let file = d.dir.join("bctx.dockercontext");
    let out = cli(
        &berth,
        &cfg,
        &["context", "export", "bctx", file.to_str().unwrap()],
        &[],
    );
    out.ok();
    cli(
        docker,
        &cfg,
        &["context", "import", "imp1", file.to_str().unwrap()],
        &[],
    )
    .ok();
    let out = cli(
        docker,
        &cfg,
        &["--context", "imp1", "version", "--format", "{{.Server.Os}}"],
        &[],
    );
    assert_eq!(out.ok(), "linux");
    let tar = Command::new(DOCKER)
        .args(["context", "export", "dctx", "-"])
        .env("DOCKER_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(tar.status.success());
    let out = cli_stdin(
        &berth,
        &cfg,
        &["context", "import", "imp2", "-"],
        &[],
        &tar.stdout,
    );
    assert_eq!(out.ok(), "imp2");
    let out = cli(
        &berth,
        &cfg,
        &[
            "--context",
            "imp2",
            "context",
            "inspect",
            "--format",
            "{{.Metadata.Description}}",
        ],
        &[],
    );
    assert_eq!(out.ok(), "made by docker");

    // rm, then the context is gone for both.
    let out = cli(&berth, &cfg, &["context", "rm", "imp1", "imp2"], &[]);
    assert_eq!(out.ok(), "imp1\nimp2");
    let out = cli(docker, &cfg, &["context", "ls", "-q"], &[]);
    assert_eq!(out.ok(), "bctx\ndctx\ndefault");
}

#[test]
fn bad_context_input() {
    let d = Daemon::start();
    let cfg = d.dir.join("ctx-config");
    let berth = berth_bin();
    let ep = format!("host={}", d.host());

    // A name with '/' (or any other character Docker refuses).
    for bad in ["a/b", "../x", "x"] {
        let out = cli(
            &berth,
            &cfg,
            &["context", "create", bad, "--docker", &ep],
            &[],
        );
        assert_ne!(out.status, 0);
        assert!(
            out.stderr
                .contains(&format!("context name \"{bad}\" is invalid")),
            "{}",
            out.stderr
        );
    }
    assert!(
        !cfg.join("contexts").join("meta").exists()
            || std::fs::read_dir(cfg.join("contexts/meta"))
                .unwrap()
                .count()
                == 0
    );
    let out = cli(
        &berth,
        &cfg,
        &["context", "create", "default", "--docker", &ep],
        &[],
    );
    assert!(
        out.stderr
            .contains("\"default\" is a reserved context name"),
        "{}",
        out.stderr
    );
    let out = cli(
        &berth,
        &cfg,
        &[
            "context",
            "create",
            "k1",
            "--docker",
            "host=tcp://x:1,colour=blue",
        ],
        &[],
    );
    assert!(
        out.stderr.contains("unrecognized config key: colour"),
        "{}",
        out.stderr
    );
    let out = cli(&berth, &cfg, &["--context", "nope", "ps"], &[]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("context \"nope\": context not found"),
        "{}",
        out.stderr
    );

    // A corrupted context: the error names it and its file; the others keep working.
    cli(
        &berth,
        &cfg,
        &["context", "create", "good", "--docker", &ep],
        &[],
    )
    .ok();
    cli(
        &berth,
        &cfg,
        &["context", "create", "broken", "--docker", &ep],
        &[],
    )
    .ok();
    let meta = cli(
        &berth,
        &cfg,
        &[
            "context",
            "inspect",
            "broken",
            "--format",
            "{{.Storage.MetadataPath}}",
        ],
        &[],
    )
    .ok();
    std::fs::write(
        Path::new(&meta).join("meta.json"),
        b"{\"Name\": \"broken\", \"Endp",
    )
    .unwrap();
    let out = cli(&berth, &cfg, &["context", "ls"], &[]);
    let text = out.ok();
    assert!(text.lines().any(|l| l.starts_with("good ")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("context \"") && l.contains("parsing")),
        "{text}"
    );
    let out = cli(
        &berth,
        &cfg,
        &["--context", "good", "version", "--format", "{{.Server.Os}}"],
        &[],
    );
    assert_eq!(out.ok(), "linux");
    let out = cli(&berth, &cfg, &["--context", "broken", "ps"], &[]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("context \"broken\": parsing") && out.stderr.contains("meta.json"),
        "{}",
        out.stderr
    );
    // A hostile import is refused without writing anything.
    let out = cli_stdin(
        &berth,
        &cfg,
        &["context", "import", "junk", "-"],
        &[],
        b"not a tar at all",
    );
    assert_ne!(out.status, 0);
    let out = cli(&berth, &cfg, &["context", "ls", "-q"], &[]);
    assert!(!out.ok().contains("junk"));
}
