//! Dockerfile features beyond the seed: multi-stage builds and `--target`, `COPY --from`,
//! `RUN --mount`, `ONBUILD`, build args and labels, `ADD` of a local tar, `--chown`.

mod common;

use common::Daemon;
use std::path::{Path, PathBuf};

fn ctx_with(d: &Daemon, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let ctx = d.dir.join(name);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for (n, c) in files {
        let p = ctx.join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    ctx
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

#[test]
fn multi_stage_target_and_copy_from() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = ctx_with(
        &d,
        "ms",
        "FROM busybox AS base\nRUN echo base > /base.txt\n\
         FROM busybox AS broken\nRUN exit 7\n\
         FROM base AS tool\nRUN echo tool > /tool.txt\n\
         FROM busybox\nCOPY --from=tool /tool.txt /base.txt /out/\nCOPY --from=0 /base.txt /again.txt\nCMD [\"cat\", \"/out/tool.txt\", \"/out/base.txt\", \"/again.txt\"]\n",
        &[],
    );
    // The broken stage is not needed by the target: never built.
    d.docker(["build", "-t", "ms", p(&ctx)]).ok();
    assert_eq!(d.docker(["run", "--rm", "ms"]).ok(), "tool\nbase\nbase");
    // --target builds that stage (and what it needs) only.
    d.berth(["build", "-q", "--target", "tool", "-t", "ms:tool", p(&ctx)])
        .ok();
    assert_eq!(
        d.docker(["run", "--rm", "ms:tool", "cat", "/tool.txt", "/base.txt"])
            .ok(),
        "tool\nbase"
    );
    let out = d.docker(["build", "--target", "broken", p(&ctx)]);
    assert_eq!(out.status, 7, "{out:?}");
    let out = d.docker(["build", "--target", "nosuch", p(&ctx)]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr
            .contains("target stage \"nosuch\" could not be found"),
        "{out:?}"
    );
}

#[test]
fn run_mounts_cache_tmpfs_and_bind() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = ctx_with(
        &d,
        "mounts",
        "FROM busybox\n\
         RUN --mount=type=cache,target=/cache sh -c 'echo x >> /cache/count; wc -l < /cache/count > /seen'\n\
         RUN --mount=type=tmpfs,target=/scratch sh -c 'echo hi > /scratch/x && cat /scratch/x > /tmpfs-seen'\n\
         RUN --mount=type=bind,source=data.txt,target=/data.txt cat /data.txt > /bound\n\
         CMD [\"sh\", \"-c\", \"cat /seen /tmpfs-seen /bound; test ! -e /cache && test ! -e /scratch && test ! -e /data.txt && echo no-stubs\"]\n",
        &[("data.txt", "bound-data\n")],
    );
    d.docker(["build", "-t", "mounts", p(&ctx)]).ok();
    assert_eq!(
        d.docker(["run", "--rm", "mounts"]).ok(),
        "1\nhi\nbound-data\nno-stubs"
    );
    // The cache directory survives into the next build.
    d.docker(["build", "--no-cache", "-t", "mounts", p(&ctx)])
        .ok();
    assert!(d.docker(["run", "--rm", "mounts"]).ok().starts_with("2\n"));
    // A changed bind source reruns the step.
    std::fs::write(ctx.join("data.txt"), "changed\n").unwrap();
    let text = d.docker(["build", "-t", "mounts", p(&ctx)]).ok();
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");
    assert!(d.docker(["run", "--rm", "mounts"]).ok().contains("changed"));
}

#[test]
fn onbuild_args_labels_add_tar_and_chown() {
    let d = Daemon::start();
    d.load_busybox();
    let base = ctx_with(
        &d,
        "base",
        "FROM busybox\nONBUILD RUN echo triggered > /triggered\n",
        &[],
    );
    d.docker(["build", "-t", "onbuild-base", p(&base)]).ok();
    // A tar to ADD (extracted) next to a file to COPY with --chown.
    let ctx = ctx_with(
        &d,
        "child",
        "FROM onbuild-base\nARG WHO=nobody\nARG UNUSED_DEFAULT=x\nENV GREETING=\"hello $WHO\"\nADD payload.tar /opt/\nCOPY --chown=65534:65534 owned.txt /owned.txt\nRUN echo $GREETING > /greeting\nCMD [\"sh\", \"-c\", \"cat /triggered /greeting /opt/payload/a.txt; stat -c %u:%g /owned.txt\"]\n",
        &[("owned.txt", "o")],
    );
    let payload = d.dir.join("payload");
    std::fs::create_dir_all(payload.join("payload")).unwrap();
    std::fs::write(payload.join("payload/a.txt"), "from-tar\n").unwrap();
    let st = std::process::Command::new("tar")
        .arg("-cf")
        .arg(ctx.join("payload.tar"))
        .arg("-C")
        .arg(&payload)
        .arg("payload")
        .status()
        .unwrap();
    assert!(st.success());
    let out = d.docker([
        "build",
        "--build-arg",
        "WHO=crane",
        "--build-arg",
        "NOTDECLARED=1",
        "--label",
        "team=berth",
        "-t",
        "child",
        p(&ctx),
    ]);
    let text = out.ok();
    assert!(text.contains("# Executing 1 build trigger"), "{text}");
    assert!(
        text.contains("[Warning] One or more build-args [NOTDECLARED] were not consumed"),
        "{text}"
    );
    assert_eq!(
        d.docker(["run", "--rm", "child"]).ok(),
        "triggered\nhello crane\nfrom-tar\n65534:65534"
    );
    assert_eq!(
        d.docker([
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"team\"}}",
            "child"
        ])
        .ok(),
        "berth"
    );
    // The triggers do not carry over into the child's config.
    assert_eq!(
        d.docker([
            "image",
            "inspect",
            "--format",
            "{{json .Config.OnBuild}}",
            "child"
        ])
        .ok(),
        "null"
    );
    // History records the build arg the RUN saw.
    let hist = d
        .docker([
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            "child",
        ])
        .ok();
    assert!(
        hist.contains("|2 UNUSED_DEFAULT=x WHO=crane /bin/sh -c echo $GREETING > /greeting"),
        "{hist}"
    );
}
