//! `cp` and the archive API (`HEAD`/`GET`/`PUT /containers/{id}/archive`) through the real
//! Docker CLI, the berth CLI and docker-py: both directions, Docker's rules for `/.`, trailing
//! slashes and missing destinations, `-L`, `-a`, `-`, running and stopped containers, volumes
//! and bind mounts, read-only refusals, hostile archives, and a container that swaps a
//! directory for a symlink to `/` while copies run.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Daemon;

fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

/// A host directory removed on drop.
struct HostDir(PathBuf);

impl HostDir {
    fn new(d: &Daemon, name: &str) -> HostDir {
        let p = d.dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        HostDir(p)
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn s(&self, rel: &str) -> String {
        self.p(rel).to_string_lossy().into_owned()
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The container side of a test: a file, a directory with a symlink and a hard link.
fn prepare_container(d: &Daemon, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "busybox",
        "sh",
        "-c",
        "mkdir -p /src/sub && echo one > /src/one && echo two > /src/sub/two && \
         ln -s one /src/link && ln /src/one /src/hard && ln -s /etc /src/abslink && \
         touch /ready && exec sleep 600",
    ]);
    d.docker(&args).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.docker(["exec", name, "test", "-e", "/ready"]).status != 0 {
        assert!(Instant::now() < deadline, "container not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn docker_cli_copies_both_ways_with_dockers_rules() {
    let d = Daemon::start();
    d.load_busybox();
    prepare_container(&d, "box", &[]);
    let h = HostDir::new(&d, "host");

    // Container → host: a file to a new name, into an existing directory, to stdout.
    d.docker(["cp", "box:/src/one", &h.s("one-copy")]).ok();
    assert_eq!(read(&h.p("one-copy")), "one\n");
    std::fs::create_dir(h.p("into")).unwrap();
    d.docker(["cp", "box:/src/one", &h.s("into")]).ok();
    assert_eq!(read(&h.p("into/one")), "one\n");
    let out = d
        .docker_command()
        .args(["cp", "box:/src/one", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(tar_names(&out.stdout), vec!["one"]);
    // The header Docker's CLI reads: name, size, mode, mtime.
    let (status, _) = d.raw(
        "HEAD",
        "/v1.43/containers/box/archive?path=/src/one",
        None,
        b"",
    );
    assert_eq!(status, 200);

    // A directory: to a missing name (renamed), into an existing one, its contents (`/.`).
    d.docker(["cp", "box:/src", &h.s("newdir")]).ok();
    assert_eq!(read(&h.p("newdir/sub/two")), "two\n");
    assert_eq!(
        std::fs::read_link(h.p("newdir/link")).unwrap(),
        PathBuf::from("one")
    );
    assert_eq!(
        std::fs::metadata(h.p("newdir/one")).unwrap().ino(),
        std::fs::metadata(h.p("newdir/hard")).unwrap().ino(),
        "hard links stay hard links"
    );
    std::fs::create_dir(h.p("existing")).unwrap();
    d.docker(["cp", "box:/src", &h.s("existing")]).ok();
    assert!(h.p("existing/src/sub/two").is_file());
    std::fs::create_dir(h.p("contents")).unwrap();
    d.docker(["cp", "box:/src/.", &h.s("contents")]).ok();
    assert!(h.p("contents/sub/two").is_file());
    let out = d.docker(["cp", "box:/src", &h.s("one-copy")]);
    assert_ne!(out.status, 0);
    assert!(
        out.stderr.contains("cannot copy directory"),
        "{}",
        out.stderr
    );

    // Symlinks: copied as links, followed with -L; an absolute link target stays a link.
    d.docker(["cp", "box:/src/link", &h.s("as-link")]).ok();
    assert_eq!(
        std::fs::read_link(h.p("as-link")).unwrap(),
        PathBuf::from("one")
    );
    d.docker(["cp", "-L", "box:/src/link", &h.s("followed")])
        .ok();
    assert_eq!(read(&h.p("followed")), "one\n");
    d.docker(["cp", "box:/src/abslink", &h.s("abs")]).ok();
    assert_eq!(
        std::fs::read_link(h.p("abs")).unwrap(),
        PathBuf::from("/etc")
    );
    // A `../` path stays in the container: busybox's passwd, not the host's.
    let out = d
        .docker_command()
        .args(["cp", "box:/../../../etc/passwd", "-"])
        .output()
        .unwrap();
    let mut a = tar::Archive::new(&out.stdout[..]);
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut e, &mut text).unwrap();
    assert_eq!(text, busybox_passwd(&d));

    // Host → container: a file to a new name, into a directory, a directory (renamed, into,
    // contents), a tar on stdin.
    std::fs::write(h.p("in.txt"), b"from-host\n").unwrap();
    std::os::unix::fs::chown(h.p("in.txt"), Some(4321), Some(4322)).unwrap();
    d.docker(["cp", &h.s("in.txt"), "box:/dst-file"]).ok();
    d.docker(["cp", &h.s("in.txt"), "box:/src/sub"]).ok();
    d.docker(["cp", &h.s("newdir"), "box:/copied"]).ok();
    d.docker(["cp", &h.s("newdir"), "box:/src"]).ok();
    d.docker(["cp", &format!("{}/.", h.s("newdir")), "box:/tmp"])
        .ok();
    let out = d
        .docker([
            "exec", "box", "sh", "-c",
            "cat /dst-file /src/sub/in.txt /copied/sub/two /src/newdir/one /tmp/sub/two; stat -c %u:%g /dst-file",
        ])
        .ok();
    assert_eq!(out, "from-host\nfrom-host\ntwo\none\ntwo\n4321:4322");
    let mut b = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_size(6);
    hd.set_mode(0o600);
    hd.set_cksum();
    b.append_data(&mut hd, "piped", &b"piped\n"[..]).unwrap();
    let data = b.into_inner().unwrap();
    d.docker_stdin(["cp", "-", "box:/tmp"], &data).ok();
    assert_eq!(d.docker(["exec", "box", "cat", "/tmp/piped"]).ok(), "piped");
    let out = d.docker_stdin(["cp", "-", "box:/dst-file"], &data);
    assert!(out.stderr.contains("must be a directory"), "{}", out.stderr);
    let out = d.docker(["cp", &h.s("in.txt"), "box:/nodir/"]);
    assert_ne!(out.status, 0);
    // Errors: a missing source, a missing container.
    let out = d.docker(["cp", "box:/nonexistent", &h.s("x")]);
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr.trim(),
        "Error response from daemon: Could not find the file /nonexistent in container box"
    );
    let out = d.docker(["cp", "nosuch:/a", &h.s("x")]);
    assert!(
        out.stderr.contains("No such container: nosuch"),
        "{}",
        out.stderr
    );
    // -a: the container user's uid and gid.
    d.docker([
        "run",
        "-d",
        "--name",
        "usr",
        "--user",
        "1234:5678",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    d.docker(["cp", "-a", &h.s("in.txt"), "usr:/tmp/"]).ok();
    assert_eq!(
        d.docker(["exec", "usr", "stat", "-c", "%u:%g", "/tmp/in.txt"])
            .ok(),
        "1234:5678"
    );
    let ev = d
        .docker([
            "events",
            "--since",
            "0",
            "--until",
            &format!("{}", now() + 1),
            "--filter",
            "container=box",
            "--format",
            "{{.Action}}",
        ])
        .ok();
    assert!(
        ev.contains("archive-path") && ev.contains("extract-to-dir"),
        "{ev}"
    );
}

fn busybox_passwd(d: &Daemon) -> String {
    d.docker(["run", "--rm", "busybox", "cat", "/etc/passwd"])
        .stdout
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn stopped_containers_volumes_binds_and_read_only() {
    let d = Daemon::start();
    d.load_busybox();
    let h = HostDir::new(&d, "host");
    let bind = HostDir::new(&d, "bind");
    std::fs::write(h.p("f"), b"payload\n").unwrap();
    d.docker([
        "create",
        "--name",
        "stopped",
        "-v",
        "vol:/data",
        "-v",
        "rov:/ro:ro",
        "-v",
        &format!("{}:/b", bind.0.display()),
        "busybox",
        "true",
    ])
    .ok();
    // Into and out of a stopped container, its volume and its bind mount.
    d.docker(["cp", &h.s("f"), "stopped:/data/"]).ok();
    d.docker(["cp", &h.s("f"), "stopped:/b/from-cp"]).ok();
    d.docker(["cp", &h.s("f"), "stopped:/rootfile"]).ok();
    assert_eq!(read(&d.data_root.join("volumes/vol/_data/f")), "payload\n");
    assert_eq!(read(&bind.p("from-cp")), "payload\n");
    d.docker(["cp", "stopped:/rootfile", &h.s("back")]).ok();
    assert_eq!(read(&h.p("back")), "payload\n");
    let out = d
        .docker_command()
        .args(["cp", "stopped:/data", "-"])
        .output()
        .unwrap();
    assert_eq!(tar_names(&out.stdout), vec!["data/", "data/f"]);
    // A stopped container's filesystem is not left mounted.
    let merged = d.data_root.join("overlay2");
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info.contains(merged.to_str().unwrap()),
        "a stopped container's rootfs stayed mounted"
    );
    // Read-only volume and rootfs: Docker's 400s, nothing written.
    let out = d.docker(["cp", &h.s("f"), "stopped:/ro/"]);
    assert!(
        out.stderr.contains("mounted volume is marked read-only"),
        "{}",
        out.stderr
    );
    assert!(std::fs::read_dir(d.data_root.join("volumes/rov/_data"))
        .unwrap()
        .next()
        .is_none());
    d.docker([
        "run",
        "-d",
        "--name",
        "rofs",
        "--read-only",
        "-v",
        "rwv:/rw",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let out = d.docker(["cp", &h.s("f"), "rofs:/tmp/"]);
    assert!(
        out.stderr.contains("container rootfs is marked read-only"),
        "{}",
        out.stderr
    );
    // The writable volume of a read-only container still takes files; running containers see
    // files copied into their volumes.
    d.docker(["cp", &h.s("f"), "rofs:/rw/"]).ok();
    assert_eq!(d.docker(["exec", "rofs", "cat", "/rw/f"]).ok(), "payload");
    // Extraction into a file is refused; a missing destination directory is a 404.
    let (status, body) = d.raw(
        "PUT",
        "/v1.43/containers/stopped/archive?path=/rootfile",
        Some("application/x-tar"),
        &tiny_tar("x"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("extraction point is not a directory"),
        "{body}"
    );
    let (status, body) = d.raw(
        "PUT",
        "/v1.43/containers/stopped/archive?path=/no/such/dir",
        Some("application/x-tar"),
        &tiny_tar("x"),
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("Could not find the file /no/such/dir in container stopped"),
        "{body}"
    );
}

fn tiny_tar(name: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, &b"abc"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn berth_cli_cp() {
    let d = Daemon::start();
    d.load_busybox();
    prepare_container(&d, "box", &[]);
    let h = HostDir::new(&d, "host");
    d.berth(["cp", "box:/src", &h.s("out")]).ok();
    assert_eq!(read(&h.p("out/sub/two")), "two\n");
    assert_eq!(
        std::fs::read_link(h.p("out/link")).unwrap(),
        PathBuf::from("one")
    );
    d.berth(["cp", "-L", "box:/src/link", &h.s("followed")])
        .ok();
    assert_eq!(read(&h.p("followed")), "one\n");
    std::fs::create_dir(h.p("contents")).unwrap();
    d.berth(["cp", "box:/src/.", &h.s("contents")]).ok();
    assert!(h.p("contents/one").is_file());
    let out = Command::new("timeout")
        .args(["-k", "5", "60"])
        .arg(common::berth_bin())
        .args(["-H", &d.host(), "cp", "box:/src/sub", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(tar_names(&out.stdout), vec!["sub/", "sub/two"]);
    // Not a terminal: quiet by default; -q=false prints Docker's summary.
    let out = d.berth(["cp", "-q=false", "box:/src/one", &h.s("noisy")]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("Successfully copied ") && out.stderr.contains(&h.s("noisy")),
        "{}",
        out.stderr
    );
    // Host → container.
    std::fs::create_dir_all(h.p("up/deep")).unwrap();
    std::fs::write(h.p("up/deep/f"), b"up\n").unwrap();
    d.berth(["cp", &h.s("up"), "box:/newup"]).ok();
    d.berth(["cp", &format!("{}/", h.s("up")), "box:/tmp"]).ok();
    d.berth(["cp", &format!("{}/.", h.s("up")), "box:/src"])
        .ok();
    d.berth(["cp", &h.s("up/deep/f"), "box:/renamed"]).ok();
    let out = d
        .docker([
            "exec",
            "box",
            "cat",
            "/newup/deep/f",
            "/tmp/up/deep/f",
            "/src/deep/f",
            "/renamed",
        ])
        .ok();
    assert_eq!(out, "up\nup\nup\nup");
    let data = tiny_tar("from-stdin");
    let mut child = Command::new(common::berth_bin())
        .args(["-H", &d.host(), "cp", "-", "box:/tmp"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &data).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        d.docker(["exec", "box", "cat", "/tmp/from-stdin"]).ok(),
        "abc"
    );
    // Errors as Docker prints them.
    let out = d.berth(["cp", "box:/nope", &h.s("x")]);
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr.trim(),
        "Error response from daemon: Could not find the file /nope in container box"
    );
    let out = d.berth(["cp", "a:/x", "b:/y"]);
    assert_eq!(
        out.stderr.trim(),
        "copying between containers is not supported"
    );
    let out = d.berth(["cp", "x", "y"]);
    assert_eq!(
        out.stderr.trim(),
        "must specify at least one container source"
    );
    let out = d.berth(["cp", &h.s("up/deep/f"), "box:/missing-dir/"]);
    assert_eq!(out.stderr.trim(), "no such directory");
}

/// A tar of raw entries (names and link names written byte for byte).
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, ty, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*ty);
        h.set_size(data.len() as u64);
        h.set_mode(0o666);
        if *ty == tar::EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn hostile_archives_stay_in_the_container() {
    let d = Daemon::start();
    d.load_busybox();
    let host = HostDir::new(&d, "host-target");
    std::fs::write(host.p("sentinel"), b"untouched").unwrap();
    let hd = host.0.to_string_lossy().into_owned();
    // The container has a directory at the host directory's path, so links to it resolve.
    d.docker([
        "run",
        "-d",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        &format!("mkdir -p {hd} && exec sleep 600"),
    ])
    .ok();
    let put = |tar: Vec<u8>| {
        d.raw(
            "PUT",
            "/v1.43/containers/box/archive?path=/tmp",
            Some("application/x-tar"),
            &tar,
        )
    };
    use tar::EntryType as T;
    // Placed inside the container: an absolute name lands under the destination, a device
    // node is made there, a symlink to the host's path and a write through it stay inside.
    let abs_name = format!("{hd}/abs-name");
    let (status, body) = put(raw_tar(&[
        (abs_name.as_str(), T::Regular, "", b"abs"),
        ("devnull", T::Char, "", b""),
        ("out-link", T::Symlink, hd.as_str(), b""),
        ("out-link/through-symlink", T::Regular, "", b"through"),
    ]));
    assert_eq!(status, 200, "{body}");
    let inside = d
        .docker([
            "exec", "box", "sh", "-c",
            &format!("cat /tmp{hd}/abs-name; echo; ls -l /tmp/devnull | cut -c1; readlink /tmp/out-link; cat {hd}/through-symlink"),
        ])
        .ok();
    assert_eq!(inside, format!("abs\nc\n{hd}\nthrough"));
    // Refused with Docker's messages: names and links that climb out of the destination.
    for (entries, msg) in [
        (
            vec![("../../../../../../../../x", T::Regular, "", &b"x"[..])],
            "is outside of",
        ),
        (
            vec![("rel-out", T::Symlink, "../../../../../etc", &b""[..])],
            "invalid symlink",
        ),
        (
            vec![("hard-out", T::Link, "../../etc/passwd", &b""[..])],
            "invalid hardlink",
        ),
    ] {
        let (status, body) = put(raw_tar(&entries));
        assert_eq!(status, 500, "{body}");
        assert!(body.contains(msg), "{body}");
    }
    let names: Vec<String> = std::fs::read_dir(&host.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["sentinel"], "nothing was written on the host");
    assert_eq!(read(&host.p("sentinel")), "untouched");
    // A gzip-compressed archive is accepted, as Docker does.
    let (status, body) = put(gzip(&tiny_tar("zipped")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(d.docker(["exec", "box", "cat", "/tmp/zipped"]).ok(), "abc");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let out = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            std::io::Write::write_all(&mut c.stdin.take().unwrap(), data)?;
            c.wait_with_output()
        })
        .unwrap();
    out.stdout
}

/// A container swaps `/race/d` between a directory and a symlink to `/` as fast as it can
/// while the daemon copies from and into `/race/d/...`. The host file the symlink would
/// reach is never read and the host directory never written.
#[test]
fn symlink_swap_race_never_reaches_the_host() {
    let d = Daemon::start();
    d.load_busybox();
    let secret_dir = HostDir::new(&d, "race-secret");
    std::fs::write(secret_dir.p("secret"), b"HOST-SECRET\n").unwrap();
    // The same path exists inside the container's real directory.
    let rel = secret_dir
        .0
        .to_string_lossy()
        .trim_start_matches('/')
        .to_string();
    let script = format!(
        "mkdir -p /race/d/{rel} && echo CONTAINER > /race/d/{rel}/secret && cd /race && touch /ready && \
         while true; do mv d d.real; ln -s / d; rm d; mv d.real d; done"
    );
    d.docker([
        "run", "-d", "--name", "racer", "busybox", "sh", "-c", &script,
    ])
    .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.docker(["exec", "racer", "test", "-e", "/ready"]).status != 0 {
        assert!(Instant::now() < deadline, "container not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let file_path = format!("/v1.43/containers/racer/archive?path=/race/d/{rel}/secret");
    let dir_path = format!("/v1.43/containers/racer/archive?path=/race/d/{rel}");
    let put_path = format!("/v1.43/containers/racer/archive?path=/race/d/{rel}");
    let (mut got_file, mut got_dir, mut put_ok) = (0, 0, 0);
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(6) {
        i += 1;
        let (status, body) = d.raw("GET", &file_path, None, b"");
        assert!(!body.contains("HOST-SECRET"), "GET read the host's file");
        if status == 200 && body.contains("CONTAINER") {
            got_file += 1;
        }
        let (status, body) = d.raw("GET", &dir_path, None, b"");
        assert!(
            !body.contains("HOST-SECRET"),
            "GET of the directory read the host"
        );
        if status == 200 {
            got_dir += 1;
        }
        let (status, _) = d.raw(
            "PUT",
            &put_path,
            Some("application/x-tar"),
            &tiny_tar(&format!("written-{i}")),
        );
        if status == 200 {
            put_ok += 1;
        }
        let names: Vec<String> = std::fs::read_dir(&secret_dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["secret"], "PUT wrote into the host directory");
        assert_eq!(read(&secret_dir.p("secret")), "HOST-SECRET\n");
    }
    // The race was real: copies succeeded in both directions while the loop ran.
    eprintln!(
        "race: {i} rounds, {got_file} file GETs, {got_dir} directory GETs, {put_ok} PUTs succeeded"
    );
    assert!(i > 10, "only {i} rounds");
    assert!(
        got_file > 0 && got_dir > 0 && put_ok > 0,
        "{got_file} {got_dir} {put_ok} of {i}"
    );
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Running}}", "racer"])
            .ok(),
        "true",
        "the swapping loop kept running"
    );
}

const SDK_SCRIPT: &str = r#"
import io, sys, tarfile, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
ctr = c.containers.run("busybox", ["sleep", "600"], detach=True, name="sdkcp")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"via docker-py\n"
    info = tarfile.TarInfo("sdk.txt")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
assert ctr.put_archive("/tmp", buf.getvalue()) is True
bits, stat = ctr.get_archive("/tmp/sdk.txt")
assert stat["name"] == "sdk.txt" and stat["size"] == 14, stat
raw = b"".join(bits)
with tarfile.open(fileobj=io.BytesIO(raw)) as t:
    assert t.extractfile("sdk.txt").read() == b"via docker-py\n"
try:
    ctr.get_archive("/nonexistent")
    raise SystemExit("missing path accepted")
except docker.errors.NotFound as e:
    assert "Could not find the file /nonexistent in container" in str(e), e
bits, stat = ctr.get_archive("/etc")
assert stat["mode"] & (1 << 31), stat
ctr.remove(force=True)
print("sdk-cp-ok")
"#;

#[test]
fn docker_py_archive() {
    let d = Daemon::start();
    d.load_busybox();
    let script = d.dir.join("sdk_cp.py");
    std::fs::write(&script, SDK_SCRIPT).unwrap();
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(d.host())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sdk-cp-ok"),
        "docker-py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
