//! `docker build` of the seed's Dockerfile through the real Docker CLI (classic builder
//! protocol) and the berth CLI: layers, config, history, a fully cached rebuild with the same
//! image ID, a one-file change that reruns only its step, and the bad-input cases that are
//! not parser errors.

mod common;

use common::Daemon;
use std::path::{Path, PathBuf};

fn seed_context(d: &Daemon, name: &str) -> PathBuf {
    let ctx = d.dir.join(name);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN mkdir -p /crane-app\nWORKDIR /crane-app\nCOPY app.txt .\nENV MODE=seed\nEXPOSE 8080\nCMD [\"cat\", \"/crane-app/app.txt\"]\n",
    )
    .unwrap();
    std::fs::write(ctx.join("app.txt"), "hello from crane\n").unwrap();
    ctx
}

fn image_id(d: &Daemon, name: &str) -> String {
    d.docker(["image", "inspect", "--format", "{{.Id}}", name])
        .ok()
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

#[test]
fn seed_build_with_the_docker_cli_is_cached_on_rebuild() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = seed_context(&d, "seed");

    let out = d.docker(["build", "-t", "crane", p(&ctx)]);
    let text = out.ok();
    assert!(text.contains("Step 1/7 : FROM busybox"), "{text}");
    assert!(
        text.contains("Step 2/7 : RUN mkdir -p /crane-app"),
        "{text}"
    );
    assert!(text.contains(" ---> Running in "), "{text}");
    assert!(text.contains("Successfully tagged crane:latest"), "{text}");
    let id1 = image_id(&d, "crane");

    // The image runs and has the config the Dockerfile says.
    assert_eq!(d.docker(["run", "--rm", "crane"]).ok(), "hello from crane");
    let cfg = d.docker([
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}|{{.Config.WorkingDir}}|{{json .Config.ExposedPorts}}|{{len .RootFS.Layers}}",
        "crane",
    ]);
    assert_eq!(
        cfg.ok(),
        r#"["cat","/crane-app/app.txt"]|/crane-app|{"8080/tcp":{}}|3"#
    );
    let env = d
        .docker([
            "image",
            "inspect",
            "--format",
            "{{json .Config.Env}}",
            "crane",
        ])
        .ok();
    assert!(env.contains("MODE=seed"), "{env}");
    // history: a line per step, metadata steps with 0B
    let hist = d
        .docker([
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}",
            "crane",
        ])
        .ok();
    let lines: Vec<&str> = hist.lines().collect();
    assert!(
        lines[0].starts_with("/bin/sh -c #(nop)  CMD [\"cat\" \"/crane-app/app.txt\"]|0B"),
        "{hist}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("/bin/sh -c mkdir -p /crane-app|")),
        "{hist}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("#(nop) COPY file:") && l.contains(" in /crane-app/ |")),
        "{hist}"
    );

    // Fully cached: same ID, every step from the cache.
    let out = d.docker(["build", "-t", "crane", p(&ctx)]);
    let text = out.ok();
    assert_eq!(text.matches(" ---> Using cache").count(), 6, "{text}");
    assert!(!text.contains("Running in"), "{text}");
    assert_eq!(image_id(&d, "crane"), id1);

    // One copied file changes: its step and the ones after it rerun, the ones before not.
    std::fs::write(ctx.join("app.txt"), "changed\n").unwrap();
    let text = d.docker(["build", "-t", "crane", p(&ctx)]).ok();
    assert_eq!(text.matches(" ---> Using cache").count(), 2, "{text}");
    assert_ne!(image_id(&d, "crane"), id1);
    assert_eq!(d.docker(["run", "--rm", "crane"]).ok(), "changed");

    // --no-cache rebuilds everything.
    let text = d
        .docker(["build", "--no-cache", "-t", "crane:2", p(&ctx)])
        .ok();
    assert_eq!(text.matches(" ---> Using cache").count(), 0, "{text}");

    // No build container, layer or mount is left behind.
    assert_no_build_leftovers(&d);
}

fn assert_no_build_leftovers(d: &Daemon) {
    let layers: Vec<String> = std::fs::read_dir(d.data_root.join("overlay2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("build-"))
        .collect();
    assert!(layers.is_empty(), "build layers left: {layers:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!("{}/", d.data_root.display())),
        "mounts left under the data root"
    );
    let bundles = d.exec_root.join("build");
    if bundles.exists() {
        assert_eq!(std::fs::read_dir(&bundles).unwrap().count(), 0);
    }
}

#[test]
fn failing_run_reports_the_code_and_leaves_nothing() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = d.dir.join("fail");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo about-to-fail && exit 3\n",
    )
    .unwrap();
    let out = d.docker(["build", "-t", "failing", p(&ctx)]);
    assert_eq!(out.status, 3, "{out:?}");
    assert!(out.stdout.contains("about-to-fail"), "{out:?}");
    assert!(
        out.stderr.contains(
            "The command '/bin/sh -c echo about-to-fail && exit 3' returned a non-zero code: 3"
        ),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("Step 2/2 : RUN echo about-to-fail && exit 3"),
        "{out:?}"
    );
    assert_no_build_leftovers(&d);
    assert!(d.docker(["image", "inspect", "failing"]).status != 0);

    // A missing COPY source: Docker's text, exit 1.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY does-not-exist /x\n",
    )
    .unwrap();
    let out = d.docker(["build", p(&ctx)]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat does-not-exist: file does not exist"
        ),
        "{out:?}"
    );
    // A parse error: 400 before any step.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nFROBNICATE x\n").unwrap();
    let out = d.docker(["build", p(&ctx)]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("Error response from daemon: dockerfile parse error line 2: unknown instruction: FROBNICATE"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("Step 1/"), "{out:?}");
}

#[test]
fn berth_cli_builds_from_a_directory_stdin_and_a_tar() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = seed_context(&d, "seed-berth");
    let iid = d.dir.join("iid");
    let out = d.berth([
        "build",
        "-q",
        "--iidfile",
        p(&iid),
        "-t",
        "crane:berth",
        p(&ctx),
    ]);
    let id = out.ok();
    assert!(id.starts_with("sha256:"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    assert_eq!(image_id(&d, "crane:berth"), id);
    // The same through the Docker CLI is fully cached: same image.
    let text = d.docker(["build", "-t", "crane:docker", p(&ctx)]).ok();
    assert_eq!(text.matches(" ---> Using cache").count(), 6, "{text}");
    assert_eq!(image_id(&d, "crane:docker"), id);

    // -f - : the Dockerfile on stdin, the context a directory.
    let mut child = std::process::Command::new(common::berth_bin())
        .args([
            "-H",
            &d.host(),
            "build",
            "-f",
            "-",
            "-t",
            "fromstdin",
            p(&ctx),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nCOPY app.txt /x\nCMD [\"cat\", \"/x\"]\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        d.docker(["run", "--rm", "fromstdin"]).ok(),
        "hello from crane"
    );

    // A tar file as the context.
    let tar = d.dir.join("ctx.tar");
    let st = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&ctx)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let out = d.berth(["build", "-q", p(&tar)]);
    assert_eq!(out.ok(), id);

    // Upper case names: Docker's client-side error.
    let out = d.berth(["build", "-t", "Crane", p(&ctx)]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr
            .contains("repository name (library/Crane) must be lowercase"),
        "{out:?}"
    );
    let out = d.docker(["build", "-t", "Crane", p(&ctx)]);
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("must be lowercase"), "{out:?}");
}

#[test]
fn dockerignore_is_applied_while_walking_and_build_files_are_never_copied() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = d.dir.join("ign");
    std::fs::create_dir_all(ctx.join("ignored-dir")).unwrap();
    std::fs::create_dir_all(ctx.join("keep/sub")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY . /ctx/\nCMD [\"sh\", \"-c\", \"cd /ctx && find . | sort\"]\n",
    )
    .unwrap();
    std::fs::write(
        ctx.join(".dockerignore"),
        "big.bin\nignored-dir\n*.log\nDockerfile\n.dockerignore\n!keep/sub/wanted.log\n",
    )
    .unwrap();
    std::fs::write(ctx.join("app.txt"), "app").unwrap();
    std::fs::write(ctx.join("notes.log"), "log").unwrap();
    std::fs::write(ctx.join("ignored-dir/secret.txt"), "secret").unwrap();
    std::fs::write(ctx.join("keep/sub/wanted.log"), "wanted").unwrap();
    std::fs::write(ctx.join("keep/sub/other.log"), "other").unwrap();
    // A large excluded file (sparse: it costs no disk unless someone reads and sends it).
    let big = std::fs::File::create(ctx.join("big.bin")).unwrap();
    big.set_len(256 << 20).unwrap();
    drop(big);

    // `*.log` matches at the top only (Go patterns: `*` never crosses `/`).
    let want = ".\n./app.txt\n./keep\n./keep/sub\n./keep/sub/other.log\n./keep/sub/wanted.log";
    d.berth(["build", "-q", "-t", "ign:berth", p(&ctx)]).ok();
    assert_eq!(d.docker(["run", "--rm", "ign:berth"]).ok(), want);
    d.docker(["build", "-q", "-t", "ign:docker", p(&ctx)]).ok();
    assert_eq!(d.docker(["run", "--rm", "ign:docker"]).ok(), want);
}
