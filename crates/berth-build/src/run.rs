//! `RUN`: a process in a container made for the step alone — a writable layer with Docker's
//! init layer below it, an OCI bundle with Docker's defaults (capabilities, seccomp, masked
//! paths, devices, cgroups; `berth_runtime::spec`), and the runtime (runc) run in the
//! foreground with the process's stdout and stderr piped back. No container record, no
//! supervisor, no log file: the step's output goes to the client and the layer's diff
//! becomes the step's layer. Everything is named `build-<hex>` so that leftovers of a daemon
//! killed mid-build are recognised and removed at the next start.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_runtime::spec::{self, BindMount, NetworkNs, SpecOptions, TmpfsMount};
use berth_runtime::OciRuntime;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::error::{BuildError, Result};

/// The prefix of every build container, writable layer and bundle.
pub const BUILD_ID_PREFIX: &str = "build-";

/// What the daemon decides once for every `RUN`.
#[derive(Debug, Clone)]
pub struct RunEnv {
    /// The OCI runtime (its `--root` is shared with the daemon's containers).
    pub runtime: OciRuntime,
    /// Where bundles go (`<exec-root>/build`).
    pub bundle_root: PathBuf,
    /// The cgroup parent of build containers.
    pub cgroup_parent: String,
    /// The host's /etc/resolv.conf as containers see it (loopback resolvers replaced).
    pub resolv_conf: String,
}

/// One process to run.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The container ID (`build-<hex>`), also the writable layer's.
    pub id: String,
    /// The mounted rootfs.
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// `USER` (resolved against the rootfs' passwd/group).
    pub user: String,
    pub network: NetworkNs,
    /// `/etc/hosts` content.
    pub hosts: String,
    pub binds: Vec<BindMount>,
    pub tmpfs: Vec<TmpfsMount>,
    pub shm_size: Option<u64>,
}

/// A piece of the process's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stderr: bool,
    pub data: Vec<u8>,
}

/// Runs the process and returns its exit status. `on_output` gets stdout and stderr as they
/// come; `cancel` kills the container (the build was cancelled).
pub async fn run(
    env: &RunEnv,
    req: RunRequest,
    on_output: &mut (dyn FnMut(Output) + Send),
    cancel: &CancellationToken,
) -> Result<i64> {
    let bundle = env.bundle_root.join(&req.id);
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(&bundle)
        .map_err(|e| BuildError::internal(format!("create {}: {e}", bundle.display())))?;
    let guard = BundleGuard(bundle.clone());
    let hostname = req.id[BUILD_ID_PREFIX.len()..]
        .chars()
        .take(12)
        .collect::<String>();
    std::fs::write(bundle.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(bundle.join("hosts"), &req.hosts)?;
    std::fs::write(bundle.join("resolv.conf"), &env.resolv_conf)?;

    let rootfs = req.rootfs.clone();
    let (user_spec, cwd) = (req.user.clone(), req.cwd.clone());
    let user = tokio::task::spawn_blocking(move || {
        let user = berth_runtime::user::resolve(&rootfs, &user_spec, &[])
            .map_err(|e| BuildError::Step(e.to_string()))?;
        berth_runtime::user::ensure_workdir(&rootfs, Path::new(&cwd))
            .map_err(|e| BuildError::Step(e.to_string()))?;
        Ok::<_, BuildError>(user)
    })
    .await
    .map_err(BuildError::internal)??;

    let opts = SpecOptions {
        rootfs: req.rootfs.clone(),
        args: req.args.clone(),
        env: req.env.clone(),
        cwd: if req.cwd.is_empty() {
            "/".into()
        } else {
            req.cwd.clone()
        },
        user,
        hostname: hostname.clone(),
        network: req.network.clone(),
        uts_host: req.network == NetworkNs::Host,
        binds: req.binds.clone(),
        tmpfs: req.tmpfs.clone(),
        hostname_path: Some(bundle.join("hostname")),
        hosts_path: Some(bundle.join("hosts")),
        resolv_conf_path: Some(bundle.join("resolv.conf")),
        cgroups_path: Some(format!(
            "{}/{}",
            env.cgroup_parent.trim_end_matches('/'),
            req.id
        )),
        shm_size: req.shm_size.or(Some(64 * 1024 * 1024)),
        swap_accounting: false,
        ..Default::default()
    };
    let spec = spec::build(&opts).map_err(|e| BuildError::Step(e.to_string()))?;
    spec::write_config(&bundle, &spec)
        .map_err(|e| BuildError::internal(format!("cannot write the OCI bundle: {e}")))?;

    std::fs::create_dir_all(&env.runtime.log_dir)?;
    let log = env.runtime.log_dir.join(format!("{}.run.json", req.id));
    let mut child = tokio::process::Command::new(&env.runtime.path)
        .args(env.runtime.global_args(&log))
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&req.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| {
            BuildError::internal(format!("cannot run {}: {e}", env.runtime.path.display()))
        })?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut obuf = vec![0u8; 16 * 1024];
    let mut ebuf = vec![0u8; 16 * 1024];
    let mut cancelled = false;
    loop {
        if stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            r = async { stdout.as_mut().unwrap().read(&mut obuf).await }, if stdout.is_some() => {
                match r {
                    Ok(0) | Err(_) => stdout = None,
                    Ok(n) => on_output(Output { stderr: false, data: obuf[..n].to_vec() }),
                }
            }
            r = async { stderr.as_mut().unwrap().read(&mut ebuf).await }, if stderr.is_some() => {
                match r {
                    Ok(0) | Err(_) => stderr = None,
                    Ok(n) => on_output(Output { stderr: true, data: ebuf[..n].to_vec() }),
                }
            }
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                let _ = env.runtime.kill(&req.id, libc::SIGKILL, true).await;
            }
        }
    }
    let status = tokio::select! {
        s = child.wait() => s,
        _ = cancel.cancelled(), if !cancelled => {
            cancelled = true;
            let _ = env.runtime.kill(&req.id, libc::SIGKILL, true).await;
            child.wait().await
        }
    }
    .map_err(|e| BuildError::internal(format!("waiting for the runtime: {e}")))?;
    // `runc run` deletes the container when the process ends; make sure of it (a killed
    // runtime may leave its state behind).
    let _ = env.runtime.delete(&req.id, true).await;
    let runtime_error = berth_runtime::runtime::last_error_from_log(&log);
    let _ = std::fs::remove_file(&log);
    drop(guard);
    if cancelled || cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c as i64,
        (None, Some(sig)) => 128 + sig as i64,
        (None, None) => 255,
    };
    if let Some(msg) = runtime_error {
        // The runtime itself failed (the process never started): Docker reports it as the
        // start failure it is.
        if code != 0 {
            return Err(BuildError::Step(format!(
                "failed to create shim task: OCI runtime create failed: {msg}: unknown"
            )));
        }
    }
    Ok(code)
}

struct BundleGuard(PathBuf);

impl Drop for BundleGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes what a daemon killed during a build left behind: build containers still known
/// to the runtime, their bundles. (Writable layers are removed by the caller.)
pub async fn cleanup_leftovers(env: &RunEnv) {
    let out = tokio::process::Command::new(&env.runtime.path)
        .arg("--root")
        .arg(&env.runtime.root)
        .args(["list", "-q"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    if let Ok(o) = out {
        for id in String::from_utf8_lossy(&o.stdout).lines() {
            if id.starts_with(BUILD_ID_PREFIX) {
                tracing::info!(id, "removing a build container left by an earlier daemon");
                let _ = env.runtime.kill(id, libc::SIGKILL, true).await;
                let _ = env.runtime.delete(id, true).await;
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(&env.bundle_root) {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
