//! Volumes through the real Docker CLI, the berth CLI and docker-py: the `local` driver, the
//! `/volumes` API, `-v`/`--mount`/`--volumes-from`, anonymous volumes, copy-up, persistence
//! across daemon restarts and kill -9, and mount targets that an image symlink cannot lead
//! onto the host.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Daemon;

fn volume_names(d: &Daemon, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["volume", "ls", "-q"];
    args.extend_from_slice(extra);
    let mut v: Vec<String> = d.docker(&args).ok().lines().map(str::to_string).collect();
    v.sort();
    v
}

fn inspect_json(d: &Daemon, args: &[&str]) -> serde_json::Value {
    let out = d.docker(args).ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

fn data_dir(d: &Daemon, name: &str) -> PathBuf {
    d.data_root.join("volumes").join(name).join("_data")
}

/// A temp dir on the host that a test checks is never touched (removed on drop).
struct HostDir(PathBuf);

impl HostDir {
    fn new(tag: &str) -> HostDir {
        let p = std::env::temp_dir().join(format!(
            "berth-escape-{tag}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&p).unwrap();
        HostDir(p)
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[test]
fn volume_commands_and_api_like_docker() {
    let d = Daemon::start();
    d.load_busybox();
    assert_eq!(d.docker(["volume", "create", "tr-vol"]).ok(), "tr-vol");
    // Creating an existing volume returns it (201), labels of the new request are ignored.
    assert_eq!(
        d.docker(["volume", "create", "--label", "x=1", "tr-vol"])
            .ok(),
        "tr-vol"
    );
    let v = &inspect_json(&d, &["volume", "inspect", "tr-vol"])[0];
    assert_eq!(v["Name"], "tr-vol");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"], serde_json::Value::Null);
    assert_eq!(v["Options"], serde_json::Value::Null);
    assert_eq!(
        v["Mountpoint"].as_str().unwrap(),
        data_dir(&d, "tr-vol").to_str().unwrap()
    );
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'));
    assert!(data_dir(&d, "tr-vol").is_dir());

    d.docker([
        "volume", "create", "--label", "env=ci", "--label", "tier", "-d", "local", "labelled",
    ])
    .ok();
    let v = &inspect_json(&d, &["volume", "inspect", "labelled"])[0];
    assert_eq!(v["Labels"], serde_json::json!({"env": "ci", "tier": ""}));

    // ls: table, quiet, format and every filter.
    let table = d.docker(["volume", "ls"]).ok();
    assert!(table.starts_with("DRIVER    VOLUME NAME\n"), "{table}");
    assert!(table.contains("local     tr-vol"), "{table}");
    assert_eq!(volume_names(&d, &[]), vec!["labelled", "tr-vol"]);
    assert_eq!(volume_names(&d, &["-f", "label=env=ci"]), vec!["labelled"]);
    assert_eq!(volume_names(&d, &["-f", "label=tier"]), vec!["labelled"]);
    assert_eq!(volume_names(&d, &["-f", "name=^tr"]), vec!["tr-vol"]);
    assert_eq!(volume_names(&d, &["-f", "driver=local"]).len(), 2);
    assert!(volume_names(&d, &["-f", "driver=other"]).is_empty());
    assert_eq!(
        d.docker([
            "volume",
            "ls",
            "--format",
            "{{.Name}}:{{.Driver}}:{{.Label \"env\"}}",
            "-f",
            "name=labelled"
        ])
        .ok(),
        "labelled:local:ci"
    );
    let bad = d.docker(["volume", "ls", "-f", "bogus=1"]);
    assert_ne!(bad.status, 0);
    assert!(
        bad.stderr.contains("Invalid filter 'bogus'"),
        "{}",
        bad.stderr
    );

    // A volume in use: dangling filter, 409 naming the container, prune keeps it.
    let cid = d
        .docker([
            "create",
            "--name",
            "user",
            "-v",
            "tr-vol:/data",
            "busybox",
            "true",
        ])
        .ok();
    assert_eq!(volume_names(&d, &["-f", "dangling=true"]), vec!["labelled"]);
    assert_eq!(volume_names(&d, &["-f", "dangling=false"]), vec!["tr-vol"]);
    let rm = d.docker(["volume", "rm", "tr-vol"]);
    assert_eq!(rm.status, 1);
    assert_eq!(
        rm.stderr.trim(),
        format!("Error response from daemon: remove tr-vol: volume is in use - [{cid}]")
    );
    let (status, body) = d.raw("DELETE", "/v1.43/volumes/tr-vol?force=1", None, b"");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(&cid), "{body}");

    // Bad names: 400 with Docker's message.
    for bad in ["a/b", "..", "has space", "x"] {
        let body = serde_json::json!({"Name": bad}).to_string();
        let (status, resp) = d.raw(
            "POST",
            "/v1.43/volumes/create",
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(status, 400, "{bad}: {resp}");
        assert!(resp.contains(&format!("create {bad}: ")), "{resp}");
    }
    let out = d.docker(["volume", "create", "-o", "bogus=1", "optvol"]);
    assert!(
        out.stderr.contains("invalid option: \\\"bogus\\\"")
            || out.stderr.contains("invalid option: \"bogus\""),
        "{}",
        out.stderr
    );
    let out = d.docker(["volume", "create", "-d", "nfsplugin", "plugvol"]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("plugin \"nfsplugin\" not found"),
        "{}",
        out.stderr
    );
    // Missing volumes.
    let out = d.docker(["volume", "inspect", "nope"]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("get nope: no such volume"),
        "{}",
        out.stderr
    );
    let (status, _) = d.raw("DELETE", "/v1.43/volumes/nope", None, b"");
    assert_eq!(status, 404);
    assert_eq!(d.docker(["volume", "rm", "-f", "nope"]).ok(), "nope");

    // Prune: anonymous volumes only, unless --all; label filters.
    d.docker(["create", "-v", "/anon", "busybox", "true"]).ok();
    let anon_ctr = d.docker(["ps", "-aq", "-l"]).ok();
    d.docker(["rm", &anon_ctr]).ok();
    let anon: Vec<String> = volume_names(&d, &["-f", "dangling=true"])
        .into_iter()
        .filter(|n| n.len() == 64)
        .collect();
    assert_eq!(
        anon.len(),
        1,
        "the anonymous volume outlives `rm` without -v"
    );
    let out = d.docker(["volume", "prune", "-f"]).ok();
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert!(out.contains(&anon[0]), "{out}");
    assert_eq!(volume_names(&d, &[]), vec!["labelled", "tr-vol"]);
    let out = d
        .docker(["volume", "prune", "-a", "-f", "--filter", "label!=env=ci"])
        .ok();
    assert_eq!(out, "Total reclaimed space: 0B");
    std::fs::write(data_dir(&d, "labelled").join("f"), b"12345").unwrap();
    let out = d.docker(["volume", "prune", "-a", "-f"]).ok();
    assert_eq!(
        out,
        "Deleted Volumes:\nlabelled\n\nTotal reclaimed space: 5B"
    );
    assert_eq!(volume_names(&d, &[]), vec!["tr-vol"]);
    d.docker(["rm", "user"]).ok();
    assert_eq!(d.docker(["volume", "rm", "tr-vol"]).ok(), "tr-vol");
    assert!(!d.data_root.join("volumes/tr-vol").exists());

    // Events.
    let ev = d
        .docker([
            "events",
            "--since",
            "0",
            "--until",
            &format!("{}", chrono_now() + 1),
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        ])
        .ok();
    assert!(ev.contains("create tr-vol"), "{ev}");
    assert!(ev.contains("destroy tr-vol"), "{ev}");
    assert!(ev.contains("prune"), "{ev}");
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn berth_cli_volume_commands_and_system_df() {
    let d = Daemon::start();
    d.load_busybox();
    assert_eq!(
        d.berth([
            "volume",
            "create",
            "--label",
            "a=b",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=1m",
            "tmp1"
        ])
        .ok(),
        "tmp1"
    );
    assert_eq!(
        d.berth(["volume", "create", "--name", "plain"]).ok(),
        "plain"
    );
    let out = d.berth(["volume", "create", "--name", "x1", "x2"]);
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("conflicting options"), "{}", out.stderr);
    assert_eq!(
        d.berth(["volume", "ls"]).ok(),
        "DRIVER    VOLUME NAME\nlocal     plain\nlocal     tmp1"
    );
    assert_eq!(
        d.berth(["volume", "ls", "-q", "-f", "label=a"]).ok(),
        "tmp1"
    );
    let v: serde_json::Value =
        serde_json::from_str(&d.berth(["volume", "inspect", "tmp1"]).ok()).unwrap();
    assert_eq!(
        v[0]["Options"],
        serde_json::json!({"device": "tmpfs", "o": "size=1m", "type": "tmpfs"})
    );
    assert_eq!(
        d.berth(["volume", "inspect", "-f", "{{.Labels.a}}", "tmp1"])
            .ok(),
        "b"
    );
    // The option volume is a tmpfs of 1 MiB while a container uses it, and only then.
    let out = d
        .berth([
            "run",
            "--rm",
            "-v",
            "tmp1:/t",
            "busybox",
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts",
        ])
        .ok();
    assert!(out.contains("tmpfs") && out.contains("size=1024k"), "{out}");
    assert!(!common_mounted(&data_dir(&d, "tmp1")));

    // system df: sizes and links of local volumes (option volumes are not local data).
    std::fs::write(data_dir(&d, "plain").join("f"), vec![0u8; 4000]).unwrap();
    d.berth([
        "create", "--name", "cc1", "-v", "plain:/p", "busybox", "true",
    ])
    .ok();
    let df = d.berth(["system", "df"]).ok();
    assert!(
        df.contains("Local Volumes   1         1         4kB       0B (0%)"),
        "{df}"
    );
    let dfv = d.berth(["system", "df", "-v"]).ok();
    assert!(dfv.contains("Local Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\nplain         1         4kB\n"), "{dfv}");
    assert!(
        dfv.starts_with("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID"),
        "{dfv}"
    );
    assert!(
        dfv.contains(
            "\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE"
        ),
        "{dfv}"
    );
    assert!(
        dfv.contains("\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE"),
        "{dfv}"
    );
    // The Docker CLI reads the same data.
    let docker_dfv = d.docker(["system", "df", "-v"]).ok();
    assert!(
        docker_dfv.contains("plain         1         4kB"),
        "{docker_dfv}"
    );

    let out = d.berth(["volume", "rm", "plain", "tmp1"]);
    assert_eq!(out.status, 1);
    assert_eq!(out.stdout.trim(), "tmp1");
    assert!(
        out.stderr.contains("remove plain: volume is in use - ["),
        "{}",
        out.stderr
    );
    d.berth(["rm", "-v", "cc1"]).ok();
    let out = d.berth(["volume", "prune", "-f"]).ok();
    assert_eq!(
        out, "Total reclaimed space: 0B",
        "named volumes stay without --all"
    );
    let out = d.berth(["volume", "prune", "--all", "--force"]).ok();
    assert_eq!(out, "Deleted Volumes:\nplain\n\nTotal reclaimed space: 4kB");
    assert!(d.berth(["volume", "ls", "-q"]).ok().is_empty());
}

fn common_mounted(p: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = p.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(want))
}

/// An image whose `/data` holds files with distinct owners and modes, and declares
/// `VOLUME /data /empty`.
fn owners_image(d: &Daemon) {
    let root = d.busybox_rootfs_dir("owners-root");
    let data = root.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("file"), b"image content\n").unwrap();
    std::fs::write(data.join("sub/secret"), b"s").unwrap();
    std::os::unix::fs::symlink("file", data.join("link")).unwrap();
    std::os::unix::fs::chown(data.join("file"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(data.join("file"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(data.join("sub"), Some(33), Some(33)).unwrap();
    std::fs::set_permissions(data.join("sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&data, Some(1000), Some(1001)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    d.import_dir(
        &root,
        "owners:1",
        &["VOLUME [\"/data\", \"/empty\"]", "CMD [\"sh\"]"],
    );
}

#[test]
fn copy_up_keeps_owners_and_modes_and_data_survives_rm_and_restarts() {
    let mut d = Daemon::start();
    d.load_busybox();
    owners_image(&d);
    // A new named volume gets the image's content at its mount point.
    d.docker([
        "run",
        "--name",
        "writer",
        "-v",
        "named:/data",
        "owners:1",
        "sh",
        "-c",
        "echo more >> /data/file",
    ])
    .ok();
    let v = data_dir(&d, "named");
    let root = std::fs::metadata(&v).unwrap();
    assert_eq!(
        (root.uid(), root.gid(), root.mode() & 0o7777),
        (1000, 1001, 0o750)
    );
    let f = std::fs::metadata(v.join("file")).unwrap();
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1234, 5678, 0o640));
    let s = std::fs::metadata(v.join("sub")).unwrap();
    assert_eq!((s.uid(), s.gid(), s.mode() & 0o7777), (33, 33, 0o700));
    assert_eq!(
        std::fs::read_link(v.join("link")).unwrap(),
        Path::new("file")
    );
    assert_eq!(
        std::fs::read_to_string(v.join("file")).unwrap(),
        "image content\nmore\n"
    );
    // The image's other VOLUME became an anonymous volume.
    let mounts = &inspect_json(&d, &["inspect", "writer"])[0]["Mounts"];
    let mounts = mounts.as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    let named = mounts.iter().find(|m| m["Destination"] == "/data").unwrap();
    assert_eq!(named["Type"], "volume");
    assert_eq!(named["Name"], "named");
    assert_eq!(named["Driver"], "local");
    assert_eq!(named["Mode"], "z");
    assert_eq!(named["RW"], true);
    assert_eq!(named["Source"], v.to_str().unwrap());
    let anon = mounts
        .iter()
        .find(|m| m["Destination"] == "/empty")
        .unwrap();
    assert_eq!(anon["Mode"], "");
    let anon_name = anon["Name"].as_str().unwrap().to_string();
    assert_eq!(anon_name.len(), 64);
    let av = &inspect_json(&d, &["volume", "inspect", &anon_name])[0];
    assert_eq!(
        av["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );

    // A volume that is not empty is not copied into again; nocopy skips the copy.
    std::fs::write(v.join("file"), b"changed\n").unwrap();
    d.docker(["run", "--rm", "-v", "named:/data", "owners:1", "true"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(v.join("file")).unwrap(),
        "changed\n"
    );
    d.docker([
        "run",
        "--rm",
        "-v",
        "empty1:/data:nocopy",
        "owners:1",
        "true",
    ])
    .ok();
    assert!(std::fs::read_dir(data_dir(&d, "empty1"))
        .unwrap()
        .next()
        .is_none());
    d.docker([
        "run",
        "--rm",
        "--mount",
        "type=volume,src=empty2,dst=/data,volume-nocopy",
        "owners:1",
        "true",
    ])
    .ok();
    assert!(std::fs::read_dir(data_dir(&d, "empty2"))
        .unwrap()
        .next()
        .is_none());

    // rm (without -v) keeps every volume; the data survives the container.
    d.docker(["rm", "writer"]).ok();
    assert!(volume_names(&d, &[]).contains(&anon_name));
    let out = d
        .docker([
            "run",
            "--rm",
            "-v",
            "named:/data",
            "busybox",
            "cat",
            "/data/file",
        ])
        .ok();
    assert_eq!(out, "changed");

    // A graceful restart and a kill -9 keep volumes and their references.
    d.docker([
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "named:/data",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    d.restart();
    assert!(volume_names(&d, &[]).contains(&"named".to_string()));
    assert_eq!(
        d.docker(["volume", "rm", "named"]).status,
        1,
        "still in use after a restart"
    );
    d.kill9();
    d.start_again();
    assert_eq!(
        d.docker(["volume", "rm", "named"]).status,
        1,
        "still in use after kill -9"
    );
    let out = d.docker(["exec", "holder", "cat", "/data/file"]).ok();
    assert_eq!(out, "changed");
    d.docker(["rm", "-f", "holder"]).ok();
    assert_eq!(d.docker(["volume", "rm", "named"]).ok(), "named");
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_run_rm() {
    let d = Daemon::start();
    d.load_busybox();
    owners_image(&d);
    d.docker(["volume", "create", "keepme"]).ok();
    // run --rm removes the container's anonymous volumes, not named ones.
    d.docker([
        "run",
        "--rm",
        "-v",
        "/scratch",
        "-v",
        "keepme:/k",
        "--mount",
        "type=volume,dst=/m",
        "owners:1",
        "true",
    ])
    .ok();
    assert_eq!(volume_names(&d, &[]), vec!["keepme"]);
    // rm -v removes them too.
    d.docker([
        "create",
        "--name",
        "cc1",
        "-v",
        "/scratch",
        "-v",
        "keepme:/k",
        "owners:1",
    ])
    .ok();
    let names = volume_names(&d, &[]);
    assert_eq!(
        names.len(),
        4,
        "two image volumes, -v /scratch, keepme: {names:?}"
    );
    // The anonymous volume of the image's /data got the image's content.
    let data = inspect_json(&d, &["inspect", "-f", "{{json .Mounts}}", "cc1"]);
    let anon_data = data
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/data")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(data_dir(&d, &anon_data).join("file")).unwrap(),
        "image content\n"
    );
    d.docker(["rm", "-v", "cc1"]).ok();
    assert_eq!(volume_names(&d, &[]), vec!["keepme"]);
    // An image VOLUME over an existing file is refused.
    let root = d.busybox_rootfs_dir("file-root");
    std::fs::write(root.join("afile"), b"x").unwrap();
    d.import_dir(&root, "filevol:1", &["VOLUME /afile", "CMD [\"sh\"]"]);
    let out = d.docker(["create", "filevol:1"]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr
            .contains("cannot mount volume over existing file, file exists"),
        "{}",
        out.stderr
    );
    assert_eq!(volume_names(&d, &[]), vec!["keepme"], "nothing left behind");
}

#[test]
fn volumes_from_with_ro_and_rw() {
    let d = Daemon::start();
    d.load_busybox();
    let host = HostDir::new("vfrom");
    std::fs::write(host.0.join("h"), b"host\n").unwrap();
    let bind = format!("{}:/b", host.0.display());
    d.docker([
        "create",
        "--name",
        "src",
        "-v",
        "shared:/s",
        "-v",
        "/anon",
        "-v",
        &bind,
        "busybox",
    ])
    .ok();
    let out = d
        .docker([
            "run",
            "--rm",
            "--volumes-from",
            "src",
            "busybox",
            "sh",
            "-c",
            "echo from-rw > /s/f && echo a > /anon/f && cat /b/h",
        ])
        .ok();
    assert_eq!(out, "host");
    let out = d.docker([
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "cat /s/f; touch /s/g",
    ]);
    assert_ne!(out.status, 0);
    assert!(out.stdout.contains("from-rw"), "{}", out.stdout);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    let ro = d
        .docker(["create", "--volumes-from", "src:ro", "busybox"])
        .ok();
    let mounts = inspect_json(&d, &["inspect", "-f", "{{json .Mounts}}", &ro]);
    let mounts = mounts.as_array().unwrap();
    assert_eq!(mounts.len(), 3);
    assert!(mounts.iter().all(|m| m["RW"] == false), "{mounts:?}");
    // The volume is referenced by both containers.
    let anon = mounts.iter().find(|m| m["Destination"] == "/anon").unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    d.docker(["rm", "-v", "src"]).ok();
    assert!(
        volume_names(&d, &[]).contains(&anon),
        "an anonymous volume another container uses stays"
    );
    d.docker(["rm", "-v", &ro]).ok();
    assert_eq!(volume_names(&d, &[]), vec!["shared"]);
    let out = d.docker(["create", "--volumes-from", "nosuch", "busybox"]);
    assert!(
        out.stderr.contains("No such container: nosuch"),
        "{}",
        out.stderr
    );
    let out = d.docker(["create", "--volumes-from", "src:rshared", "busybox"]);
    assert_ne!(out.status, 0);
    assert_eq!(std::fs::read_to_string(host.0.join("h")).unwrap(), "host\n");
}

#[test]
fn mount_flags_and_bad_input() {
    let d = Daemon::start();
    d.load_busybox();
    let host = HostDir::new("mounts");
    std::fs::create_dir_all(host.0.join("sub")).unwrap();
    std::fs::write(host.0.join("f"), b"hostfile\n").unwrap();
    let hp = host.0.display().to_string();

    // --mount type=volume with driver options and labels (a tmpfs volume made on the fly).
    let out = d
        .docker([
            "run", "--rm", "--mount",
            "type=volume,src=optvol,dst=/o,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m,volume-label=made=bymount",
            "busybox", "sh", "-c", "grep ' /o ' /proc/mounts",
        ])
        .ok();
    assert!(out.contains("size=2048k"), "{out}");
    let v = &inspect_json(&d, &["volume", "inspect", "optvol"])[0];
    assert_eq!(v["Labels"]["made"], "bymount");
    // Read-only volume and bind mounts.
    let out = d.docker(["run", "--rm", "-v", "rov:/r:ro", "busybox", "touch", "/r/x"]);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    let out = d.docker([
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={hp},dst=/h,readonly"),
        "busybox",
        "sh",
        "-c",
        "cat /h/f; touch /h/new",
    ]);
    assert!(out.stdout.contains("hostfile"));
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert!(!host.0.join("new").exists());
    // SELinux labels are accepted (no-ops without SELinux), as is a propagation mode.
    d.docker([
        "run",
        "--rm",
        "-v",
        "zv:/z:z",
        "-v",
        &format!("{hp}:/h:Z,rslave"),
        "busybox",
        "true",
    ])
    .ok();
    let id = d
        .docker([
            "create",
            "--mount",
            &format!("type=bind,src={hp},dst=/h,bind-propagation=rshared"),
            "busybox",
        ])
        .ok();
    let m = &inspect_json(&d, &["inspect", "-f", "{{json .Mounts}}", &id])[0];
    assert_eq!(m["Propagation"], "rshared");
    assert_eq!(m["Mode"], "");
    // bind-nonrecursive: a mount below the source is not carried along.
    let sub = host.0.join("sub");
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&sub)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(sub.join("in-tmpfs"), b"x").unwrap();
    let rec = d
        .docker([
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,src={hp},dst=/h"),
            "busybox",
            "ls",
            "/h/sub",
        ])
        .ok();
    let nonrec = d
        .docker([
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,src={hp},dst=/h,bind-nonrecursive"),
            "busybox",
            "ls",
            "/h/sub",
        ])
        .ok();
    let _ = Command::new("umount").arg(&sub).status();
    assert_eq!(rec, "in-tmpfs");
    assert_eq!(nonrec, "");
    // --mount type=tmpfs with size and mode.
    let out = d
        .docker([
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,dst=/tt,tmpfs-size=3m,tmpfs-mode=1770",
            "busybox",
            "sh",
            "-c",
            "stat -c %a /tt; grep ' /tt ' /proc/mounts",
        ])
        .ok();
    assert!(out.starts_with("1770\n"), "{out}");
    assert!(out.contains("size=3072k"), "{out}");
    let id = d
        .docker([
            "create",
            "--mount",
            "type=tmpfs,dst=/tt",
            "--tmpfs",
            "/other",
            "busybox",
        ])
        .ok();
    let mounts = inspect_json(&d, &["inspect", "-f", "{{json .Mounts}}", &id]);
    assert_eq!(
        mounts,
        serde_json::json!([{"Type":"tmpfs","Source":"","Destination":"/tt","Mode":"","RW":true,"Propagation":""}]),
        "--tmpfs is not listed in Mounts, --mount type=tmpfs is (as Docker)"
    );

    // --mount refuses a missing bind source; -v creates it.
    let missing = host.0.join("missing");
    let out = d.docker([
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/m", missing.display()),
        "busybox",
        "true",
    ]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )),
        "{}",
        out.stderr
    );
    assert!(!missing.exists());
    d.docker([
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "true",
    ])
    .ok();
    assert!(missing.is_dir());

    // A relative host path is a volume name, refused with Docker's message (API and CLI).
    let body = br#"{"Image":"busybox","HostConfig":{"Binds":["rel/dir:/x"]}}"#;
    let (status, resp) = d.raw(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        body,
    );
    assert_eq!(status, 400, "{resp}");
    assert!(resp.contains("create rel/dir: \\\"rel/dir\\\" includes invalid characters for a local volume name, only \\\"[a-zA-Z0-9][a-zA-Z0-9_.-]\\\" are allowed. If you intended to pass a host directory, use absolute path"), "{resp}");
    let out = d.docker(["run", "--rm", "-v", "rel/dir:/x", "busybox", "true"]);
    assert!(
        out.stderr
            .contains("If you intended to pass a host directory, use absolute path"),
        "{}",
        out.stderr
    );
    for (spec, msg) in [
        (
            "/a:rel",
            "invalid mount path: 'rel' mount path must be absolute",
        ),
        ("/a:/", "destination can't be '/'"),
        ("/a:/b:bogus", "invalid mode: bogus"),
        ("vol1:/x:rshared", "field BindOptions must not be specified"),
    ] {
        let body =
            serde_json::json!({"Image": "busybox", "HostConfig": {"Binds": [spec]}}).to_string();
        let (status, resp) = d.raw(
            "POST",
            "/v1.43/containers/create",
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(status, 400, "{spec}: {resp}");
        assert!(resp.contains(msg), "{spec}: {resp}");
    }
    let out = d.docker([
        "run", "--rm", "-v", "dup:/a", "-v", "/tmp:/a", "busybox", "true",
    ]);
    assert!(
        out.stderr.contains("Duplicate mount point: /a"),
        "{}",
        out.stderr
    );
    // Nothing failed halfway left volumes behind.
    assert!(!volume_names(&d, &[]).contains(&"dup".to_string()));
    assert!(!volume_names(&d, &[]).contains(&"vol1".to_string()));
}

#[test]
fn image_symlinks_never_redirect_a_mount_or_a_copy_onto_the_host() {
    let d = Daemon::start();
    d.load_busybox();
    let host_abs = HostDir::new("abs");
    let host_rel = HostDir::new("rel");
    std::fs::write(host_abs.0.join("host-secret"), b"secret\n").unwrap();
    std::fs::write(host_rel.0.join("host-secret"), b"secret\n").unwrap();
    let root = d.busybox_rootfs_dir("evil-root");
    // /data points at the host directory by absolute path; /rel climbs out by `..`.
    std::os::unix::fs::symlink(&host_abs.0, root.join("data")).unwrap();
    let climb = format!("../../../../../../../..{}", host_rel.0.display());
    std::os::unix::fs::symlink(&climb, root.join("rel")).unwrap();
    d.import_dir(&root, "evil:1", &["VOLUME /data", "CMD [\"sh\"]"]);
    for (target, host) in [("/data", &host_abs), ("/rel", &host_rel)] {
        let vol = format!("v{}", &target[1..]);
        let out = d
            .docker([
                "run",
                "--rm",
                "-v",
                &format!("{vol}:{target}"),
                "evil:1",
                "sh",
                "-c",
                &format!("ls {target}/; echo written > {target}/from-container"),
            ])
            .ok();
        // Nothing of the host directory was copied into the volume or seen inside.
        assert!(!out.contains("host-secret"), "{target}: {out}");
        let names: Vec<String> = std::fs::read_dir(data_dir(&d, &vol))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["from-container"], "{target}");
        // The host directory is untouched.
        let names: Vec<String> = std::fs::read_dir(&host.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["host-secret"], "{target}");
    }
    // The same for a bind mount and for the image's anonymous volume.
    let bind_src = HostDir::new("src");
    d.docker([
        "run",
        "--rm",
        "-v",
        &format!("{}:/data", bind_src.0.display()),
        "evil:1",
        "sh",
        "-c",
        "echo via-bind > /data/f",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(bind_src.0.join("f")).unwrap(),
        "via-bind\n"
    );
    d.docker(["run", "--rm", "evil:1", "sh", "-c", "echo anon > /data/f2"])
        .ok();
    assert_eq!(
        std::fs::read_dir(&host_abs.0).unwrap().count(),
        1,
        "only host-secret"
    );
}

const SDK_SCRIPT: &str = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
v = c.volumes.create(name="sdkvol", driver="local", labels={"sdk": "yes"})
assert v.name == "sdkvol", v.attrs
assert c.volumes.get("sdkvol").attrs["Labels"] == {"sdk": "yes"}
assert [x.name for x in c.volumes.list(filters={"label": "sdk=yes"})] == ["sdkvol"]
out = c.containers.run("busybox", ["sh", "-c", "echo sdk > /v/f; cat /v/f"], remove=True,
                       volumes={"sdkvol": {"bind": "/v", "mode": "rw"}})
assert out == b"sdk\n", out
ctr = c.containers.create("busybox", "true", volumes=["sdkvol:/v:ro"])
assert ctr.attrs["Mounts"][0]["Name"] == "sdkvol" and ctr.attrs["Mounts"][0]["RW"] is False, ctr.attrs["Mounts"]
try:
    v.remove()
    raise SystemExit("removed a volume in use")
except docker.errors.APIError as e:
    assert e.status_code == 409, e
    assert "volume is in use" in str(e), e
ctr.remove(v=True)
v.remove()
try:
    c.volumes.get("sdkvol")
    raise SystemExit("still there")
except docker.errors.NotFound:
    pass
c.volumes.create(name="sdkprune")
rep = c.volumes.prune(filters={"all": "true"})
assert rep["VolumesDeleted"] == ["sdkprune"], rep
try:
    c.volumes.create(name="bad/name")
    raise SystemExit("bad name accepted")
except docker.errors.APIError as e:
    assert e.status_code == 400, e
print("sdk-volumes-ok")
"#;

#[test]
fn docker_py_volumes() {
    let d = Daemon::start();
    d.load_busybox();
    let script = d.dir.join("sdk_volumes.py");
    std::fs::write(&script, SDK_SCRIPT).unwrap();
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(d.host())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sdk-volumes-ok"),
        "docker-py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Docker's volume events around a container's life: `create` for a new named volume,
/// `mount` at start (container, destination, driver, propagation, read/write) and `unmount`
/// when it exits (container, driver), `destroy` at removal.
#[test]
fn volume_mount_and_unmount_events_with_dockers_attributes() {
    let d = Daemon::start();
    d.load_busybox();
    let since = chrono_now();
    let id = d
        .docker([
            "run",
            "-d",
            "-v",
            "evvol:/data:ro",
            "busybox",
            "sleep",
            "600",
        ])
        .ok();
    d.docker(["rm", "-f", &id]).ok();
    d.docker(["volume", "rm", "evvol"]).ok();
    let ev = d
        .docker([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &format!("{}", chrono_now() + 1),
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
        ])
        .ok();
    let lines: Vec<&str> = ev.lines().collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        vec!["create", "mount", "unmount", "destroy"],
        "{ev}"
    );
    let attrs = |i: usize| -> serde_json::Value {
        let l = lines[i];
        let json = &l[l.find('{').unwrap_or(l.len())..];
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {l}"))
    };
    assert!(lines.iter().all(|l| l.contains(" evvol ")), "{ev}");
    let mount = attrs(1);
    assert_eq!(mount["container"], id.as_str(), "{mount}");
    assert_eq!(mount["destination"], "/data", "{mount}");
    assert_eq!(mount["driver"], "local", "{mount}");
    assert_eq!(mount["read/write"], "false", "{mount}");
    assert!(mount.get("propagation").is_some(), "{mount}");
    let unmount = attrs(2);
    assert_eq!(unmount["container"], id.as_str(), "{unmount}");
    assert_eq!(unmount["driver"], "local", "{unmount}");
    assert_eq!(attrs(0)["driver"], "local");
    assert_eq!(attrs(3)["driver"], "local");
}
