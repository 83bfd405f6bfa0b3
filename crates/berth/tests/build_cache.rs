//! The build cache as users manage it (`system df`, `builder prune`), and builds that end
//! badly: a client that goes away, a daemon killed mid-build.

mod common;

use common::{wait_for, Daemon};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn ctx_with(d: &Daemon, name: &str, dockerfile: &str) -> PathBuf {
    let ctx = d.dir.join(name);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(ctx.join("data.txt"), "some data\n").unwrap();
    ctx
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn build_leftovers(d: &Daemon) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(d.data_root.join("overlay2"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("build-"))
                .collect()
        })
        .unwrap_or_default();
    let runc = Command::new("runc")
        .arg("--root")
        .arg(d.exec_root.join("runc"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    out.extend(
        String::from_utf8_lossy(&runc.stdout)
            .lines()
            .filter(|l| l.starts_with("build-"))
            .map(|l| format!("runc:{l}")),
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    out.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&format!("{}/overlay2/build-", d.data_root.display())))
            .map(|l| format!("mount:{l}")),
    );
    out
}

#[test]
fn df_counts_the_cache_and_prune_empties_it() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = ctx_with(
        &d,
        "c",
        "FROM busybox\nRUN echo cached > /cached.txt\nCOPY data.txt /data.txt\n",
    );
    d.berth(["build", "-q", "-t", "cachetest", p(&ctx)]).ok();
    let df = d
        .docker(["system", "df", "--format", "{{.Type}} {{.TotalCount}}"])
        .ok();
    let line = df
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap()
        .to_string();
    assert_ne!(line, "Build Cache 0", "{df}");

    // While the tagged image needs them, a plain prune keeps the steps it is made of.
    let out = d.berth(["builder", "prune", "-f"]).ok();
    assert!(out.contains("Total reclaimed space"), "{out}");
    let text = d.docker(["build", "-t", "cachetest", p(&ctx)]).ok();
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");

    // Once the image is gone, -a removes everything and the next build starts over.
    d.docker(["rmi", "cachetest"]).ok();
    let out = d.berth(["builder", "prune", "-a", "-f"]).ok();
    assert!(out.contains("Deleted build cache objects:"), "{out}");
    let df = d
        .docker(["system", "df", "--format", "{{.Type}} {{.TotalCount}}"])
        .ok();
    assert!(df.contains("Build Cache 0"), "{df}");
    let text = d.docker(["build", "-t", "cachetest", p(&ctx)]).ok();
    assert_eq!(text.matches("Using cache").count(), 0, "{text}");
}

/// Starts a Docker CLI build of `ctx` and returns the child once a step is running.
fn start_slow_build(d: &Daemon, ctx: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut child = d
        .docker_command()
        .args(["build", "-t", "slow", p(ctx)])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("build output ended early").unwrap();
        if line.trim() == "started-sleeping" {
            break;
        }
    }
    // Keep draining so the CLI never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

#[test]
fn a_client_that_goes_away_cancels_the_build() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = ctx_with(
        &d,
        "slow",
        "FROM busybox\nRUN echo started-sleeping && sleep 60\n",
    );
    let mut child = start_slow_build(&d, &ctx);
    assert!(
        !build_leftovers(&d).is_empty(),
        "the step should be running"
    );
    // The whole client goes away (the CLI and the `timeout` wrapper around it).
    // SAFETY: kill(2) of the process group this test created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    let gone = wait_for(Duration::from_secs(20), || {
        build_leftovers(&d).is_empty().then_some(())
    });
    assert!(gone.is_some(), "left behind: {:?}", build_leftovers(&d));
    assert_ne!(d.docker(["image", "inspect", "slow"]).status, 0);
}

#[test]
fn a_daemon_killed_mid_build_leaves_no_half_image_and_cleans_up_at_start() {
    let mut d = Daemon::start();
    d.load_busybox();
    let ctx = ctx_with(
        &d,
        "slow",
        "FROM busybox\nCOPY data.txt /d\nRUN echo started-sleeping && sleep 60\n",
    );
    let mut child = start_slow_build(&d, &ctx);
    d.kill9();
    // SAFETY: kill(2) of the process group this test created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    d.start_again();
    // The store loaded, the build left nothing, and there is no image of the unfinished step.
    assert_eq!(d.docker(["images", "-q", "busybox"]).status, 0);
    let gone = wait_for(Duration::from_secs(20), || {
        build_leftovers(&d).is_empty().then_some(())
    });
    assert!(gone.is_some(), "left behind: {:?}", build_leftovers(&d));
    assert_ne!(d.docker(["image", "inspect", "slow"]).status, 0);
    // The finished COPY step stays cached.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY data.txt /d\nRUN true\n",
    )
    .unwrap();
    let text = d.docker(["build", "-t", "after", p(&ctx)]).ok();
    assert_eq!(text.matches("Using cache").count(), 1, "{text}");
}
