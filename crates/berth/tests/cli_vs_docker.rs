//! Differential tests: the berth CLI and the real Docker CLI 28.2.2 against the same
//! `berth daemon` print the same thing (tables, templates, JSON, errors).

mod common;

use std::time::Duration;

use common::{busybox_tar, wait_for, Daemon};

/// Runs both CLIs with `args` and asserts equal stdout, stderr (with `docker` → `berth`) and
/// exit code. Retried a few times because relative times ("2 seconds ago") may tick between
/// the two runs.
#[track_caller]
fn same(d: &Daemon, args: &[&str]) {
    let mut last = String::new();
    for _ in 0..5 {
        let docker = d.docker(args);
        let berth = d.berth(args);
        let docker_err = docker
            .stderr
            .replace("docker", "berth")
            .replace("Docker", "berth");
        if docker.stdout == berth.stdout
            && docker_err == berth.stderr
            && docker.status == berth.status
        {
            return;
        }
        last = format!(
            "args {args:?}\n--- docker ({}):\n{}{}\n--- berth ({}):\n{}{}",
            docker.status, docker.stdout, docker.stderr, berth.status, berth.stdout, berth.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("outputs differ:\n{last}");
}

#[test]
fn listings_templates_and_errors_match_the_docker_cli() {
    let d = Daemon::start();
    d.berth(["load", "-i", busybox_tar().to_str().unwrap()])
        .ok();
    d.berth(["tag", "busybox", "localhost:5000/me/busybox:v1"])
        .ok();
    d.berth([
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "tier=front",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
    ])
    .ok();
    d.berth([
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo line-one; echo line-two >&2; exit 3",
    ]);
    d.berth(["create", "--name", "fresh", "busybox", "true"])
        .ok();
    wait_for(Duration::from_secs(10), || {
        (d.berth(["inspect", "-f", "{{.State.Status}}", "done"]).ok() == "exited").then_some(())
    })
    .expect("the container exits");

    for args in [
        &["ps"][..],
        &["ps", "-a"],
        &["ps", "-a", "--no-trunc"],
        &["ps", "-aq"],
        &["ps", "-a", "-n", "2"],
        &["ps", "-l"],
        &["ps", "-a", "--filter", "status=exited"],
        &["ps", "-a", "--filter", "label=tier=front", "--format", "{{.Names}}\t{{.Label \"tier\"}}"],
        &["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}\\t{{.Command}}\\t{{.Labels}}"],
        &["ps", "-a", "--format", "{{json .}}"],
        &["ps", "-a", "--format", "json"],
        &["ps", "-a", "--format", "{{upper .Names}} {{lower .State}} {{truncate (title .Status) 2}} {{pad .Names 1 1}}|"],
        &["images"],
        &["images", "-a"],
        &["images", "-q"],
        &["images", "--digests"],
        &["images", "--no-trunc"],
        &["images", "--format", "{{json .}}"],
        &["images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}\\t{{.VirtualSize}}"],
        &["images", "busybox"],
        &["images", "--filter", "reference=localhost:5000/*/*"],
        &["history", "busybox"],
        &["history", "--no-trunc", "busybox"],
        &["history", "-H=false", "busybox"],
        &["history", "--format", "{{json .}}", "busybox"],
        &["history", "-q", "busybox"],
        &["inspect", "-f", "{{.State.Status}} {{.Config.Image}} {{index .Config.Labels \"tier\"}} {{.HostConfig.NetworkMode}}", "web"],
        &["inspect", "-f", "{{range .Config.Cmd}}[{{.}}]{{end}}", "web"],
        &["inspect", "-f", "{{.State.ExitCode}}", "done", "fresh"],
        &["image", "inspect", "-f", "{{.Id}} {{.RepoTags}} {{.Os}}", "busybox"],
        &["inspect", "nosuch"],
        &["inspect", "--type", "image", "nosuch"],
        &["container", "inspect", "nosuch"],
        &["logs", "done"],
        &["logs", "--tail", "1", "done"],
        &["top", "web"],
        &["port", "web"],
        &["exec", "web", "sh", "-c", "echo out; echo err >&2; exit 5"],
        &["wait", "done"],
        &["rm", "nosuch"],
        &["rm", "-f", "nosuch"],
        &["stop", "nosuch"],
        &["rmi", "nosuch-image"],
        &["version", "--format", "{{.Server.Version}} {{.Server.Os}}"],
        &["info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.Images}} {{.Driver}}"],
        &["ps", "--foo"],
        &["run", "-x", "busybox"],
        &["stop", "-t", "abc", "web"],
        &["rename", "web"],
        &["ps", "extra-arg"],
        &["run", "--rm", "BusyBox:UPPER", "true"],
        &["create", "--restart=always", "--rm", "busybox", "true"],
        &["run", "-e", "=x", "busybox"],
        &["run", "--ulimit", "nofile=10:5", "busybox"],
        &["run", "--memory-swappiness", "101", "busybox"],
        &["run", "-p", "99999:80", "busybox"],
        &["run", "-p", "abc", "busybox"],
        &["run", "--restart=on-failure:x", "busybox"],
        &["run", "--env-file", "/nonexistent-env", "busybox"],
        &["run", "--mount", "type=foo", "busybox"],
        &["run", "--device", "/dev/null:/dev/x:xyz", "busybox"],
        &["run", "-a", "foo", "busybox"],
        &["run", "--pull", "bogus", "busybox"],
        &["run", "--security-opt", "seccomp=/nonexistent.json", "busybox"],
        &["run", "--health-retries", "-1", "busybox"],
        &["run", "--no-healthcheck", "--health-cmd", "x", "busybox"],
        &["run", "--add-host", "bad", "busybox"],
        &["run", "--sysctl", "x", "busybox"],
        &["run", "-l", "=x", "busybox"],
        &["run", "--expose", "x", "busybox"],
        &["run", "--pid", "bogus", "busybox"],
        &["run", "--uts", "bogus", "busybox"],
        &["run", "--userns", "bogus", "busybox"],
        &["run", "--cgroupns", "bogus", "busybox"],
        &["run", "--network-alias", "x", "busybox"],
        &["run", "-v", "", "busybox"],
        &["run", "--mac-address", "zz", "busybox"],
        &["run", "--storage-opt", "bad", "busybox"],
        &["run", "-m", "1x", "busybox"],
        &["run", "--cpus", "x", "busybox"],
        &["run", "--health-interval", "x", "busybox"],
        &["run", "--blkio-weight", "x", "busybox"],
        &["run", "-d", "-a", "stdout", "busybox"],
        &["run"],
        &["create"],
        &["port"],
        // Not `images a b`: Docker 28 prints "SRun 'docker images --help'…" (a typo in its
        // RequiresMaxArgs), which berth does not copy.
        &["nosuchcommand"],
        &["container", "nosuch"],
        &["image", "ls", "-q"],
        &["container", "ls", "-a", "--format", "{{.Names}}"],
    ] {
        same(&d, args);
    }
    // Attached runs: streams, exit codes, start errors.
    for args in [
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ][..],
        &["run", "--rm", "-t", "busybox", "echo", "hi"],
        &[
            "run",
            "--rm",
            "-a",
            "stderr",
            "busybox",
            "sh",
            "-c",
            "echo o; echo e >&2",
        ],
        &[
            "run",
            "--rm",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "1:2",
            "busybox",
            "sh",
            "-c",
            "echo $X $PWD $(id -u):$(id -g)",
        ],
        &[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            "busybox",
            "from",
            "entrypoint",
        ],
        &["run", "--rm", "busybox", "/nonexistent-binary"],
        &["run", "--rm", "busybox", "/etc/passwd"],
        &["run", "--rm", "-m", "1k", "busybox", "true"],
        &["run", "--rm", "--name", "web", "busybox", "true"],
        &["create", "-m", "1k", "busybox", "true"],
    ] {
        same(&d, args);
    }
    // Events in a closed time range.
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    same(
        &d,
        &[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            "container=done",
        ],
    );
    same(
        &d,
        &[
            "events",
            "--since",
            "10m",
            "--until",
            &until,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    same(
        &d,
        &[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--format",
            "{{json .}}",
            "--filter",
            "event=create",
        ],
    );
    // json of documents keeps their field order, as Docker's typed structs print.
    same(&d, &["inspect", "-f", "{{json .Config}}", "web"]);
    same(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .State}} {{json .HostConfig.RestartPolicy}}",
            "web",
        ],
    );
    // (Not `{{json .}}` of a whole container: the Docker CLI re-marshals its own Go struct,
    // whose field set follows API 1.50 (no KernelMemory, GwPriority/DNSNames, another order).)
    // Full inspect documents: same JSON (field order included).
    same(&d, &["inspect", "web"]);
    same(&d, &["image", "inspect", "busybox"]);
}
