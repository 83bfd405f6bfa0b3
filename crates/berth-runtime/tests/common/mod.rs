//! Shared fixtures for the root integration tests: a busybox rootfs, a per-test bundle,
//! runc root and log dir in a temp dir, and Drop guards that remove everything.

#![allow(dead_code)]

use berth_runtime::shim::{LogConfig, ShimClient, ShimOptions};
use berth_runtime::spec::{self, SpecOptions};
use berth_runtime::OciRuntime;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub const RUNC: &str = "runc";

fn runc_path() -> PathBuf {
    for p in [
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/usr/local/sbin/runc",
        "/usr/local/bin/runc",
    ] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    RUNC.into()
}

/// The busybox rootfs tar, built once per test binary.
pub fn rootfs_tar() -> &'static Path {
    static TAR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &TAR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mk-busybox-image");
        let tar = dir.path().join("rootfs.tar");
        let st = Command::new(script)
            .arg(dir.path().join("image.tar"))
            .arg("--rootfs-tar")
            .arg(&tar)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "mk-busybox-image failed");
        (dir, tar)
    })
    .1
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One test container: temp dir with rootfs, bundle, runc root; cleans up on drop.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub runtime: OciRuntime,
    pub log: PathBuf,
}

impl Fixture {
    pub fn new(tag: &str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("brt")
            .tempdir_in("/tmp")
            .unwrap();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("brt-{tag}-{}-{n}", std::process::id());
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(rootfs_tar())
            .arg("-C")
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(st.success());
        let bundle = dir.path().join("containers").join(&id);
        std::fs::create_dir_all(&bundle).unwrap();
        let runtime = OciRuntime::new("runc", runc_path(), dir.path().join("runc"));
        let log = dir.path().join(format!("{id}-json.log"));
        Fixture {
            dir,
            id,
            rootfs,
            bundle,
            runtime,
            log,
        }
    }

    /// Spec options with the defaults a test wants.
    pub fn spec_opts(&self, args: &[&str]) -> SpecOptions {
        SpecOptions {
            rootfs: self.rootfs.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            hostname: "testhost".into(),
            // A top-level group per container: `runtime delete` removes it entirely.
            cgroups_path: Some(format!("/{}", self.id)),
            swap_accounting: berth_runtime::cgroups::detect_mode()
                .map(berth_runtime::cgroups::swap_accounting)
                .unwrap_or(false),
            ..Default::default()
        }
    }

    pub fn write_spec(&self, opts: &SpecOptions) {
        let s = spec::build(opts).unwrap();
        spec::write_config(&self.bundle, &s).unwrap();
    }

    pub fn shim_options(&self) -> ShimOptions {
        ShimOptions {
            shim_exe: env!("CARGO_BIN_EXE_berth-runtime-test-shim").into(),
            shim_args: vec!["shim".into()],
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            runtime: self.runtime.clone(),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            console_size: None,
            log: Some(LogConfig {
                path: self.log.clone(),
                max_size: None,
                max_file: 1,
                attrs: Default::default(),
            }),
            start_at_create: false,
        }
    }

    pub async fn spawn(&self, opts: &ShimOptions) -> ShimClient {
        berth_runtime::shim::spawn(opts).await.unwrap()
    }

    pub fn shim_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.bundle.join("shim.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid() {
            // SAFETY (test): SIGKILL to the shim we started, identified by its pid file.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = Command::new(&self.runtime.path)
            .arg("--root")
            .arg(&self.runtime.root)
            .args(["delete", "-f", &self.id])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Reads an attach stream to EOF (with a timeout) and demultiplexes it.
pub async fn read_demux<R: tokio::io::AsyncRead + Unpin>(mut r: R) -> (Vec<u8>, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut all))
        .await
        .expect("attach stream did not end")
        .unwrap_or_else(|e| panic!("reading the attach stream: {e:?}"));
    let (mut o, mut e) = (Vec::new(), Vec::new());
    berth_runtime::stdcopy::demux(&all[..], &mut o, &mut e).unwrap();
    (o, e)
}

/// Waits with a timeout.
pub async fn wait_exit(c: &ShimClient) -> berth_runtime::ExitInfo {
    tokio::time::timeout(Duration::from_secs(60), c.wait())
        .await
        .expect("container did not exit")
        .unwrap_or_else(|e| panic!("wait failed: {e:?}"))
}
