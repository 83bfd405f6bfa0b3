//! Starting a container: mount its rootfs, write the OCI bundle, spawn its supervisor, hand
//! waiting attach clients their streams, then let the process run; and the monitor that
//! records the exit.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api::ApiError;
use berth_runtime::spec::{
    self, BindMount, NetworkNs, Resources, SeccompMode, SpecOptions, TmpfsMount, Ulimit,
};
use berth_runtime::{LogConfig, ShimClient, ShimOptions};
use chrono::Utc;

use crate::container::{Container, ContainerRecord, Status};
use crate::Engine;

impl Engine {
    /// `POST /containers/{id}/start`. The caller holds no lock; this takes the op lock.
    pub(crate) async fn start_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
    ) -> Result<bool, ApiError> {
        let _op = c.op.lock().await;
        self.start_locked(c).await
    }

    /// Starts `c` for the user while its op lock is held. Ok(false) when it was already
    /// running or restarting (304).
    pub(crate) async fn start_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
    ) -> Result<bool, ApiError> {
        self.start_locked_from(c, false).await
    }

    /// Starts `c` while its op lock is held, for the user or (`by_policy`) for its restart
    /// policy. A start by the user resets the restart count and back-off (moby's
    /// `ResetRestartManager`); a policy restart keeps them.
    pub(crate) async fn start_locked_from(
        self: &Arc<Self>,
        c: &Arc<Container>,
        by_policy: bool,
    ) -> Result<bool, ApiError> {
        match c.status() {
            Status::Restarting if by_policy => {}
            Status::Running | Status::Restarting => return Ok(false),
            Status::Paused => {
                return Err(ApiError::conflict(
                    "cannot start a paused container, try unpause instead",
                ))
            }
            Status::Removing => {
                return Err(ApiError::conflict(
                    "container is marked for removal and cannot be started",
                ))
            }
            Status::Dead => {
                return Err(ApiError::conflict(
                    "cannot start a dead container, remove it instead",
                ))
            }
            Status::Created | Status::Exited => {}
        }
        if !by_policy {
            c.restart_manager().reset();
            c.modify_quiet(|r| r.restart_count = 0);
        }
        // The previous run's supervisor deletes the runtime's state after reporting the exit;
        // a new runtime container with the same id must not start before that is done.
        let prev = c
            .prev_shim_pid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(pid) = prev {
            wait_process_gone(pid, std::time::Duration::from_secs(10)).await;
        }
        // The network first: runc joins the namespace the attachment made.
        if let Err(e) = self.net_attach(c).await {
            self.start_failed(c, &e.message, 128).await;
            return Err(e);
        }
        let rec = c.record();
        match self.launch(c, &rec).await {
            Ok(shim) => {
                let shim = Arc::new(shim);
                // Attach clients that connected before start get their streams now, before
                // the process runs, so no output is lost.
                for (wants, tx) in c.set_shim(shim.clone()) {
                    match shim.attach(wants.stdin, wants.stdout, wants.stderr).await {
                        Ok(stream) => {
                            let _ = tx.send(stream);
                        }
                        Err(e) => tracing::warn!(id = %c.id, "attach before start failed: {e}"),
                    }
                }
                if let Err(e) = shim.start().await {
                    let msg = format!("failed to start container: {e}");
                    self.start_failed(c, &msg, e.exit_code_hint()).await;
                    return Err(ApiError::bad_request(msg));
                }
                let now = Utc::now();
                let pid = shim.init_pid() as i64;
                let shim_pid = shim.shim_pid() as i64;
                c.update(|r| {
                    r.state.status = Status::Running;
                    r.state.pid = pid;
                    r.state.shim_pid = shim_pid;
                    r.state.started_at = Some(now);
                    r.state.exit_code = 0;
                    r.state.error.clear();
                    r.state.oom_killed = false;
                    if !by_policy {
                        r.state.stopped_by_user = false;
                    }
                    r.has_been_started = true;
                })
                .map_err(|e| ApiError::internal(format!("cannot save the container state: {e}")))?;
                self.health_init(c);
                self.spawn_monitor(c.clone(), shim);
                let attrs = self.event_attrs(c);
                self.events.emit("container", "start", &c.id, attrs);
                Ok(true)
            }
            Err((msg, code)) => {
                self.start_failed(c, &msg, code).await;
                Err(ApiError::bad_request(msg))
            }
        }
    }

    /// A failed start leaves the container created/exited with Docker's exit code for the
    /// failure (127 no such file, 126 not executable, 128 otherwise) and the message.
    async fn start_failed(self: &Arc<Self>, c: &Arc<Container>, msg: &str, code: i32) {
        // Drop attach clients that were waiting: they see EOF.
        c.clear_shim();
        self.net_detach(c).await;
        self.unmount_rw_layer(&c.id).await;
        self.release_volume_mounts(&c.id, &c.with(|r| r.mounts.clone()));
        let _ = std::fs::remove_dir_all(&c.bundle);
        let _ = c.update(|r| {
            r.state.exit_code = code as i64;
            r.state.error = msg.to_string();
            r.state.pid = 0;
        });
        // Docker removes an auto-remove container whose start failed (`run --rm` waits for
        // the removal). The caller holds the op lock, so remove from a task.
        if c.with(|r| r.host_config.auto_remove) {
            let engine = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.remove_container(&c, true, true).await {
                    tracing::warn!(id = %c.id, "auto-remove after a failed start: {}", e.message);
                }
            });
        }
    }

    /// Mounts the rootfs, writes config.json and spawns the shim (runtime `create` done).
    async fn launch(
        self: &Arc<Self>,
        c: &Arc<Container>,
        rec: &ContainerRecord,
    ) -> Result<ShimClient, (String, i32)> {
        let internal = |m: String| (m, 128);
        let t0 = std::time::Instant::now();
        let runtime = self
            .runtime(&rec.runtime)
            .map_err(|e| internal(e.message))?
            .clone();
        // The json-file driver's attributes, computed when it starts as in dockerd.
        let log_attrs = if rec.log_enabled {
            crate::logs::log_attrs(rec)
                .map_err(|e| internal(format!("failed to initialize logging driver: {e}")))?
        } else {
            Default::default()
        };
        // hostname, hosts and resolv.conf are written without fsyncs at create; after a power
        // failure they may be gone, so recreate them from the record.
        let dir = c.dir.clone();
        if ["hostname", "hosts", "resolv.conf"].iter().any(|f| {
            std::fs::metadata(dir.join(f))
                .map(|m| m.len() == 0)
                .unwrap_or(true)
        }) {
            let extra = rec
                .host_config
                .extra_hosts
                .clone()
                .unwrap_or_default()
                .iter()
                .filter_map(|e| crate::netfiles::parse_extra_host(e, self.host_gateway()).ok())
                .collect::<Vec<_>>();
            crate::create::write_net_files(
                &dir,
                rec,
                &rec.config.hostname,
                &extra,
                self.daemon_dns(),
                &self.cfg.net.host_resolv_conf,
            )
            .map_err(|e| internal(format!("cannot write the container's files: {e}")))?;
        }
        let rootfs = self
            .mount_rw_layer(&c.id)
            .await
            .map_err(|e| internal(e.message))?;
        let t_mount = t0.elapsed();
        let opts = self.spec_options(rec, rootfs.clone()).await;
        let opts = match opts {
            Ok(o) => o,
            Err(e) => {
                self.unmount_rw_layer(&c.id).await;
                return Err(internal(e.message));
            }
        };
        let bundle = c.bundle.clone();
        let spec_result = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let spec = spec::build(&opts).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(&bundle);
            std::fs::create_dir_all(&bundle)
                .map_err(|e| format!("cannot create {}: {e}", bundle.display()))?;
            spec::write_config(&bundle, &spec)
                .map_err(|e| format!("cannot write the OCI bundle: {e}"))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        if let Err(m) = spec_result {
            self.unmount_rw_layer(&c.id).await;
            return Err(internal(m));
        }
        let console = rec.host_config.console_size;
        let shim_opts = ShimOptions {
            shim_exe: self.shim_exe.clone(),
            shim_args: vec!["shim".to_string()],
            id: c.id.clone(),
            bundle: c.bundle.clone(),
            runtime,
            tty: rec.config.tty,
            open_stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            console_size: if console[0] > 0 && console[1] > 0 {
                Some((console[0] as u16, console[1] as u16))
            } else {
                None
            },
            start_at_create: true,
            log: if rec.log_enabled {
                Some(LogConfig {
                    path: PathBuf::from(&rec.log_path),
                    max_size: rec.log_max_size,
                    max_file: rec.log_max_file,
                    attrs: log_attrs,
                })
            } else {
                None
            },
        };
        let t_bundle = t0.elapsed();
        match berth_runtime::spawn(&shim_opts).await {
            Ok(s) => {
                tracing::debug!(
                    id = %c.id,
                    mount_ms = t_mount.as_secs_f64() * 1e3,
                    bundle_ms = t_bundle.as_secs_f64() * 1e3,
                    runtime_started_ms = t0.elapsed().as_secs_f64() * 1e3,
                    "container launched"
                );
                Ok(s)
            }
            Err(e) => {
                let code = e.exit_code_hint();
                self.unmount_rw_layer(&c.id).await;
                Err((e.to_string(), code))
            }
        }
    }

    /// Translates the record into the runtime's spec options (Docker's defaults and flags).
    async fn spec_options(
        &self,
        rec: &ContainerRecord,
        rootfs: PathBuf,
    ) -> Result<SpecOptions, ApiError> {
        let hc = &rec.host_config;
        let cfg = &rec.config;
        let user_spec = cfg.user.clone();
        let group_add = hc.group_add.clone().unwrap_or_default();
        let workdir = if cfg.working_dir.is_empty() {
            "/".to_string()
        } else {
            cfg.working_dir.clone()
        };
        if !workdir.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "the working directory '{workdir}' is invalid, it needs to be an absolute path"
            )));
        }
        let rootfs2 = rootfs.clone();
        let wd = workdir.clone();
        let user = tokio::task::spawn_blocking(move || {
            let user = berth_runtime::user::resolve(&rootfs2, &user_spec, &group_add)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            berth_runtime::user::ensure_workdir(&rootfs2, std::path::Path::new(&wd))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            Ok::<_, ApiError>(user)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;

        let mut binds = Vec::new();
        let mut tmpfs = Vec::new();
        for m in &rec.mounts {
            match m.kind.as_str() {
                "bind" => {
                    let src = PathBuf::from(&m.source);
                    if !m.skip_source_creation && std::fs::symlink_metadata(&src).is_err() {
                        // `-v` creates a missing host directory, as Docker does.
                        std::fs::create_dir_all(&src).map_err(|e| {
                            ApiError::bad_request(format!(
                                "error while creating mount source path '{}': {e}",
                                m.source
                            ))
                        })?;
                    }
                    binds.push(BindMount {
                        source: src,
                        destination: m.destination.clone(),
                        readonly: !m.rw,
                        propagation: if m.propagation.is_empty() {
                            None
                        } else {
                            Some(m.propagation.clone())
                        },
                        non_recursive: m.non_recursive,
                    })
                }
                "volume" => binds.push(BindMount {
                    source: self.volume_source(&rec.id, m)?,
                    destination: m.destination.clone(),
                    readonly: !m.rw,
                    propagation: None,
                    non_recursive: false,
                }),
                "tmpfs" => tmpfs.push(TmpfsMount {
                    destination: m.destination.clone(),
                    // Records written before tmpfs options had their own field kept them
                    // in the mode.
                    options: if m.tmpfs_options.is_empty() {
                        m.mode.clone()
                    } else {
                        m.tmpfs_options.clone()
                    },
                }),
                _ => {}
            }
        }
        for (dest, opts) in hc.tmpfs.iter().flatten() {
            if !rec.mounts.iter().any(|m| &m.destination == dest) {
                tmpfs.push(TmpfsMount {
                    destination: dest.clone(),
                    options: opts.clone(),
                });
            }
        }

        let sec = parse_security_opts(hc.security_opt.as_deref().unwrap_or(&[]))?;
        let network = match rec.network_mode.as_str() {
            "host" => NetworkNs::Host,
            "none" => NetworkNs::New,
            other => match other.strip_prefix("container:") {
                Some(id) => {
                    let target = self.lookup(id)?;
                    let (running, pid) =
                        target.with(|r| (r.state.status.is_running(), r.state.pid));
                    if !running || pid <= 0 {
                        return Err(ApiError::conflict(format!(
                            "cannot join network of a non running container: {id}"
                        )));
                    }
                    NetworkNs::Path(PathBuf::from(format!("/proc/{pid}/ns/net")))
                }
                None => match &rec.sandbox {
                    Some(sb) => NetworkNs::Path(PathBuf::from(&sb.key)),
                    None => NetworkNs::New,
                },
            },
        };
        let mut ulimits: Vec<Ulimit> = self
            .cfg
            .default_ulimits
            .iter()
            .map(|u| Ulimit {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            })
            .collect();
        for u in hc.ulimits.clone().unwrap_or_default() {
            ulimits.retain(|x| x.name != u.name);
            ulimits.push(Ulimit {
                name: u.name,
                soft: u.soft,
                hard: u.hard,
            });
        }
        let init = hc.init.unwrap_or(self.cfg.init_default);
        let init_path = if init {
            if !self.cfg.init_path.exists() {
                return Err(ApiError::internal(format!(
                    "--init needs {} (Debian package tini); configure init-path in daemon.json",
                    self.cfg.init_path.display()
                )));
            }
            Some(self.cfg.init_path.clone())
        } else {
            None
        };
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let cgroup_parent = if hc.cgroup_parent.is_empty() {
            self.cfg.cgroup_parent.clone()
        } else {
            hc.cgroup_parent.clone()
        };
        if (hc.cpu_realtime_period != 0 || hc.cpu_realtime_runtime != 0)
            && (self.cfg.cpu_rt_period != 0 || self.cfg.cpu_rt_runtime != 0)
            && self.cgroup_mode != berth_runtime::cgroups::CgroupMode::V2
        {
            // A real-time budget needs one in every parent group (moby's
            // initCPURtController); without the daemon's cpu-rt-* the kernel refuses the
            // container's, and the runtime reports it.
            berth_runtime::cgroups::init_cpu_rt(
                &cgroup_parent,
                self.cfg.cpu_rt_period,
                self.cfg.cpu_rt_runtime,
            )
            .map_err(|e| ApiError::internal(format!("unable to init CPU RT controller: {e}")))?;
        }
        Ok(SpecOptions {
            rootfs,
            readonly_rootfs: hc.readonly_rootfs,
            args,
            env: cfg.env.clone().unwrap_or_default(),
            cwd: workdir,
            user,
            hostname: cfg.hostname.clone(),
            domainname: cfg.domainname.clone(),
            tty: cfg.tty,
            console_size: None,
            privileged: hc.privileged,
            cap_add: hc.cap_add.clone().unwrap_or_default(),
            cap_drop: hc.cap_drop.clone().unwrap_or_default(),
            no_new_privileges: sec.no_new_privileges || self.cfg.no_new_privileges,
            seccomp: match (&sec.seccomp, &self.cfg.seccomp_profile) {
                (Some(s), _) => s.clone(),
                (None, Some(p)) if p == "unconfined" => SeccompMode::Unconfined,
                (None, Some(p)) => {
                    SeccompMode::Custom(std::fs::read_to_string(p).map_err(|e| {
                        ApiError::internal(format!(
                            "cannot read the daemon's seccomp profile {p}: {e}"
                        ))
                    })?)
                }
                (None, None) => SeccompMode::Default,
            },
            network,
            pid_host: hc.pid_mode == "host",
            ipc_host: hc.ipc_mode == "host",
            uts_host: hc.uts_mode == "host" || rec.network_mode == "host",
            binds,
            tmpfs,
            hostname_path: Some(PathBuf::from(&rec.hostname_path)),
            hosts_path: Some(PathBuf::from(&rec.hosts_path)),
            resolv_conf_path: Some(PathBuf::from(&rec.resolv_conf_path)),
            resources: Resources {
                memory: hc.memory,
                memory_swap: hc.memory_swap,
                memory_reservation: hc.memory_reservation,
                nano_cpus: hc.nano_cpus,
                cpu_shares: hc.cpu_shares,
                cpu_quota: hc.cpu_quota,
                cpu_period: hc.cpu_period,
                cpuset_cpus: hc.cpuset_cpus.clone(),
                cpuset_mems: hc.cpuset_mems.clone(),
                pids_limit: hc.pids_limit,
                oom_kill_disable: hc.oom_kill_disable.unwrap_or(false),
                blkio_weight: hc.blkio_weight,
                memory_swappiness: hc.memory_swappiness,
                cpu_realtime_period: hc.cpu_realtime_period,
                cpu_realtime_runtime: hc.cpu_realtime_runtime,
                blkio_weight_device: hc
                    .blkio_weight_device
                    .iter()
                    .flatten()
                    .map(|d| (d.path.clone(), d.weight))
                    .collect(),
                blkio_read_bps: throttle(&hc.blkio_device_read_bps),
                blkio_write_bps: throttle(&hc.blkio_device_write_bps),
                blkio_read_iops: throttle(&hc.blkio_device_read_iops),
                blkio_write_iops: throttle(&hc.blkio_device_write_iops),
            },
            swap_accounting: berth_runtime::cgroups::swap_accounting(self.cgroup_mode),
            cgroups_path: Some(format!(
                "{}/{}",
                cgroup_parent.trim_end_matches('/'),
                rec.id
            )),
            ulimits,
            oom_score_adj: if hc.oom_score_adj != 0 {
                Some(hc.oom_score_adj as i32)
            } else {
                None
            },
            sysctls: hc.sysctls.clone().unwrap_or_default(),
            shm_size: if hc.shm_size > 0 {
                Some(hc.shm_size as u64)
            } else {
                Some(self.cfg.default_shm_size as u64)
            },
            devices: hc
                .devices
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|d| spec::DeviceMapping {
                    path_on_host: PathBuf::from(d.path_on_host),
                    path_in_container: d.path_in_container,
                    cgroup_permissions: d.cgroup_permissions,
                })
                .collect(),
            init: init_path,
            masked_paths: hc.masked_paths.clone(),
            readonly_paths: hc.readonly_paths.clone(),
        })
    }

    /// Waits for the container's exit in the background and records it.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>, shim: Arc<ShimClient>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let exit = shim.wait().await;
            engine.on_exit(&c, exit).await;
        });
    }
}

/// Waits until `pid` has exited (a zombie counts as gone), at most `limit`.
/// Whether `pid` exists and is not a zombie (PID 1 here reaps orphans slowly).
pub(crate) fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next()),
            Some("Z") | Some("X")
        ),
        Err(_) => false,
    }
}

async fn wait_process_gone(pid: i32, limit: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while process_alive(pid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Parsed `--security-opt` values.
#[derive(Debug, Default)]
pub(crate) struct SecurityOpts {
    pub no_new_privileges: bool,
    pub seccomp: Option<SeccompMode>,
}

pub(crate) fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, ApiError> {
    let mut out = SecurityOpts::default();
    for o in opts {
        let (k, v) = match o.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        match k {
            "no-new-privileges" => out.no_new_privileges = match v {
                None | Some("true") => true,
                Some("false") => false,
                Some(_) => return Err(ApiError::bad_request(
                    "invalid --security-opt 2: \"no-new-privileges\" value must be true or false",
                )),
            },
            "seccomp" => {
                out.seccomp = Some(match v {
                    Some("unconfined") => SeccompMode::Unconfined,
                    Some("builtin") | Some("default") => SeccompMode::Default,
                    // The Docker CLI reads a profile file and sends its JSON content.
                    Some(json) if json.trim_start().starts_with('{') => {
                        SeccompMode::Custom(json.to_string())
                    }
                    Some(path) => {
                        SeccompMode::Custom(std::fs::read_to_string(path).map_err(|e| {
                            ApiError::bad_request(format!(
                                "opening seccomp profile ({path}) failed: {e}"
                            ))
                        })?)
                    }
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "invalid --security-opt: {o:?}"
                        )))
                    }
                })
            }
            "apparmor" => {
                if v != Some("unconfined") {
                    return Err(ApiError::bad_request(
                        "AppArmor profiles are not supported by berth (apparmor=unconfined is accepted)",
                    ));
                }
            }
            "label" => {
                if v != Some("disable") {
                    return Err(ApiError::bad_request(
                        "SELinux labels are not supported by berth (label=disable is accepted)",
                    ));
                }
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid --security-opt 1: {o:?}"
                )))
            }
        }
    }
    Ok(out)
}

/// A HostConfig throttle list as (device path, rate) pairs.
fn throttle(list: &Option<Vec<berth_api::models::ThrottleDevice>>) -> Vec<(String, u64)> {
    list.iter()
        .flatten()
        .map(|d| (d.path.clone(), d.rate))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_opts() {
        let s =
            |v: &[&str]| parse_security_opts(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert!(s(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(s(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(!s(&["no-new-privileges=false"]).unwrap().no_new_privileges);
        assert!(matches!(
            s(&["seccomp=unconfined"]).unwrap().seccomp,
            Some(SeccompMode::Unconfined)
        ));
        assert!(matches!(
            s(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"])
                .unwrap()
                .seccomp,
            Some(SeccompMode::Custom(_))
        ));
        assert!(s(&["bogus"]).is_err());
        assert!(s(&["apparmor=myprofile"]).is_err());
        assert!(s(&["seccomp=/nonexistent.json"]).is_err());
    }
}
