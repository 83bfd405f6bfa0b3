//! `container prune`, `image prune`, `system df`, `diff`, `export`, `commit`, `stats` and the
//! `until` filter, through the Docker CLI and the berth CLI.

mod common;

use common::Daemon;

fn names(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .docker(["ps", "-a", "--format", "{{.Names}}"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn container_prune_removes_stopped_containers_only() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "--name",
        "wrote",
        "busybox",
        "sh",
        "-c",
        "echo hello > /f",
    ])
    .ok();
    d.docker([
        "create", "--name", "labelled", "--label", "env=ci", "busybox",
    ])
    .ok();
    d.docker(["run", "-d", "--name", "running", "busybox", "sleep", "300"])
        .ok();

    // Declining the prompt keeps everything.
    let o = d.docker_stdin(["container", "prune"], b"n\n");
    assert_eq!(o.status, 0, "{o:?}");
    assert!(
        o.stdout
            .contains("WARNING! This will remove all stopped containers."),
        "{o:?}"
    );
    assert_eq!(names(&d), ["labelled", "running", "wrote"]);

    // Label filters.
    let o = d
        .docker(["container", "prune", "-f", "--filter", "label!=env=ci"])
        .ok();
    assert!(o.starts_with("Deleted Containers:\n"), "{o}");
    assert!(o.ends_with("Total reclaimed space: 6B"), "{o}");
    assert_eq!(names(&d), ["labelled", "running"]);

    // `until`: nothing created before an hour ago.
    let o = d
        .docker(["container", "prune", "-f", "--filter", "until=1h"])
        .ok();
    assert_eq!(o, "Total reclaimed space: 0B");

    // The berth CLI: everything that is not running.
    let o = d.berth(["container", "prune", "-f"]).ok();
    assert!(o.starts_with("Deleted Containers:\n"), "{o}");
    assert_eq!(names(&d), ["running"]);

    // Bad filters are refused with Docker's wording.
    let o = d.docker(["container", "prune", "-f", "--filter", "bogus=1"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("Invalid filter 'bogus'"), "{o:?}");
    let o = d.docker(["container", "prune", "-f", "--filter", "until=soon"]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr
            .contains("failed to parse value as time or duration: \"soon\""),
        "{o:?}"
    );
    d.docker(["rm", "-f", "running"]).ok();
}

#[test]
fn image_prune_and_system_df() {
    let d = Daemon::start();
    d.load_busybox();
    let rootfs = common::busybox_rootfs_tar();
    let rootfs = rootfs.to_str().unwrap();
    // A dangling image (imported without a name) and an unused tagged one.
    let dangling = d.docker(["import", rootfs]).ok();
    d.docker(["import", "-c", "ENV WHO=unused", rootfs, "unused:1"])
        .ok();
    d.docker(["run", "-d", "--name", "user", "busybox", "sleep", "300"])
        .ok();

    // `until` on `images`: the fresh imports are newer than an hour.
    let o = d
        .docker([
            "images",
            "--filter",
            "until=1h",
            "--format",
            "{{.Repository}}",
        ])
        .ok();
    assert_eq!(o, "busybox");

    // system df: the same output from both CLIs.
    let docker_df = d.docker(["system", "df"]).ok();
    assert_eq!(d.berth(["system", "df"]).ok(), docker_df);
    assert!(
        docker_df.contains("Images          3         1         "),
        "{docker_df}"
    );
    assert!(
        docker_df.contains("Containers      1         1         0B        0B"),
        "{docker_df}"
    );
    let o = d
        .berth(["system", "df", "--format", "{{.Type}}={{.TotalCount}}"])
        .ok();
    assert_eq!(o, "Images=3\nContainers=1\nLocal Volumes=0\nBuild Cache=0");

    // Dangling only by default.
    let o = d.docker(["image", "prune", "-f"]).ok();
    assert!(
        o.contains(&format!("deleted: {dangling}")),
        "{o} / {dangling}"
    );
    let repos = d.docker(["images", "--format", "{{.Repository}}"]).ok();
    assert!(repos.contains("unused"), "{repos}");

    // -a: everything no container uses; busybox stays.
    let o = d.berth(["image", "prune", "-a", "-f"]).ok();
    assert!(o.contains("untagged: unused:1"), "{o}");
    let repos = d.docker(["images", "--format", "{{.Repository}}"]).ok();
    assert_eq!(repos, "busybox");
    d.docker(["rm", "-f", "user"]).ok();
}

#[test]
fn diff_lists_the_writable_layers_changes() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "echo hi > /new; echo x >> /etc/passwd; rm /etc/group; mkdir -p /tmp/a/b; \
         touch /tmp/a/b/c; rm -rf /home",
    ])
    .ok();
    let want = "C /etc\nD /etc/group\nC /etc/passwd\nD /home\nA /new\nC /tmp\nA /tmp/a\n\
                A /tmp/a/b\nA /tmp/a/b/c";
    assert_eq!(d.docker(["diff", "changer"]).ok(), want);
    assert_eq!(d.berth(["container", "diff", "changer"]).ok(), want);

    // The mount points every container gets (/etc/hosts & co) are not changes.
    d.docker(["run", "--name", "quiet", "busybox", "true"]).ok();
    assert_eq!(d.docker(["diff", "quiet"]).ok(), "");

    // A running container.
    d.docker(["run", "-d", "--name", "live", "busybox", "sleep", "300"])
        .ok();
    d.docker(["exec", "live", "touch", "/made-live"]).ok();
    assert_eq!(d.docker(["diff", "live"]).ok(), "A /made-live");
    d.docker(["rm", "-f", "live"]).ok();

    let o = d.docker(["diff", "nosuch"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
}

/// The entry names of a tar file, and the content of one of them.
fn tar_entries(path: &std::path::Path, want: &str) -> (Vec<String>, Option<String>) {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut names = Vec::new();
    let mut content = None;
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == want {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            content = Some(s);
        }
        names.push(name);
    }
    names.sort();
    (names, content)
}

#[test]
fn export_writes_the_containers_filesystem() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "--name",
        "exported",
        "busybox",
        "sh",
        "-c",
        "echo hi > /new; rm -f /etc/group",
    ])
    .ok();
    let a = d.dir.join("a.tar");
    d.docker(["export", "-o", a.to_str().unwrap(), "exported"])
        .ok();
    let (names, content) = tar_entries(&a, "new");
    assert_eq!(content.as_deref(), Some("hi\n"));
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "etc/group"),
        "deleted files stay deleted: {names:?}"
    );
    assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");

    // The berth CLI to stdout gives the same entries.
    let b = d.dir.join("b.tar");
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} -H {} container export exported > {}",
            common::berth_bin().display(),
            d.host(),
            b.display()
        ))
        .status()
        .unwrap();
    assert!(o.success());
    assert_eq!(tar_entries(&b, "new").0, names);

    // The stopped container's layer was mounted only for the export; it starts again.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let id = d.docker(["inspect", "-f", "{{.Id}}", "exported"]).ok();
    assert!(
        !mounts.contains(&format!("{id}/merged")),
        "left mounted: {mounts}"
    );
    d.docker(["start", "-a", "exported"]).ok();

    // A running container.
    d.docker([
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo up > /state; sleep 300",
    ])
    .ok();
    let c = d.dir.join("c.tar");
    let ok = common::wait_for(std::time::Duration::from_secs(10), || {
        d.docker(["export", "-o", c.to_str().unwrap(), "live"]).ok();
        tar_entries(&c, "state").1.filter(|s| s == "up\n")
    });
    assert!(ok.is_some(), "export of a running container");
    d.docker(["rm", "-f", "live"]).ok();

    let o = d.docker(["export", "-o", c.to_str().unwrap(), "nosuch"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
}

#[test]
fn commit_makes_an_image_of_the_containers_changes() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "--name",
        "src",
        "-e",
        "FOO=bar",
        "busybox",
        "sh",
        "-c",
        "echo committed > /data.txt; rm -f /etc/group",
    ])
    .ok();
    let id = d
        .docker([
            "commit",
            "-m",
            "my message",
            "-a",
            "me <me@example.com>",
            "-c",
            "CMD [\"cat\", \"/data.txt\"]",
            "src",
            "mine:v1",
        ])
        .ok();
    assert!(id.starts_with("sha256:"), "{id}");
    // The new CMD, the container's env, its files and deletions.
    assert_eq!(d.docker(["run", "--rm", "mine:v1"]).ok(), "committed");
    let o = d
        .docker([
            "run",
            "--rm",
            "mine:v1",
            "sh",
            "-c",
            "echo $FOO; test -e /etc/group || echo gone",
        ])
        .ok();
    assert_eq!(o, "bar\ngone");
    let o = d
        .docker([
            "image",
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}|{{.Parent}}",
            "mine:v1",
        ])
        .ok();
    let base = d
        .docker(["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .ok();
    assert_eq!(o, format!("me <me@example.com>|my message|2|{base}"));
    let hist = d
        .docker(["history", "--format", "{{.Comment}}", "mine:v1"])
        .ok();
    assert!(hist.starts_with("my message"), "{hist}");

    // A running container, through the berth CLI: paused for the commit, running after.
    d.docker([
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo up > /state; sleep 300",
    ])
    .ok();
    let ok = common::wait_for(std::time::Duration::from_secs(10), || {
        d.berth(["container", "commit", "live", "mine:v2"]).ok();
        let o = d.docker(["run", "--rm", "mine:v2", "cat", "/state"]);
        (o.status == 0 && o.stdout.trim() == "up").then_some(())
    });
    assert!(ok.is_some());
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Status}}", "live"])
            .ok(),
        "running"
    );
    d.docker(["rm", "-f", "live"]).ok();

    // Bad input: a bad change names it; an unknown container is 404.
    let o = d.docker(["commit", "-c", "BOGUS x", "src"]);
    assert_ne!(o.status, 0);
    assert!(o.stderr.to_lowercase().contains("bogus"), "{o:?}");
    let o = d.docker(["commit", "nosuch"]);
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
}

#[test]
fn stats_reports_cgroup_counters() {
    let d = Daemon::start();
    d.load_busybox();
    d.docker([
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while true; do :; done",
    ])
    .ok();
    d.docker(["run", "-d", "--name", "idle", "busybox", "sleep", "300"])
        .ok();
    d.docker(["create", "--name", "stopped", "busybox"]).ok();

    let fmt = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}";
    let o = d
        .docker(["stats", "--no-stream", "--format", fmt, "busy", "stopped"])
        .ok();
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines.len(), 2, "{o}");
    let busy: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(busy[0], "busy");
    let cpu: f64 = busy[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 5.0, "a busy loop uses CPU: {o}");
    assert!(busy[2].ends_with(" / 64MiB"), "{o}");
    assert_eq!(busy[3], "1");
    assert_eq!(lines[1], "stopped|0.00%|0B / 0B|0");

    // The berth CLI: running containers by default, all with -a.
    let o = d
        .berth(["stats", "--no-stream", "--format", "{{.Name}}"])
        .ok();
    let mut names: Vec<&str> = o.lines().collect();
    names.sort();
    assert_eq!(names, ["busy", "idle"]);
    let o = d
        .berth([
            "stats",
            "--no-stream",
            "-a",
            "--format",
            "{{.Name}} {{.PIDs}}",
        ])
        .ok();
    assert!(o.lines().any(|l| l == "stopped 0"), "{o}");

    // Streaming: a document a second.
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "2.5", "--unix-socket"])
        .arg(&d.sock)
        .arg("http://localhost/containers/idle/stats")
        .output()
        .unwrap();
    let docs = String::from_utf8_lossy(&out.stdout);
    assert!(docs.lines().count() >= 2, "{docs}");
    let first: serde_json::Value = serde_json::from_str(docs.lines().next().unwrap()).unwrap();
    assert_eq!(first["name"], "/idle");
    assert!(
        first["memory_stats"]["usage"].as_u64().unwrap() > 0,
        "{first}"
    );

    let o = d.docker(["stats", "--no-stream", "nosuch"]);
    assert_ne!(o.status, 0);
    d.docker(["rm", "-f", "busy", "idle"]).ok();
}
