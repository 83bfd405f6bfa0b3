//! stop, kill, restart, pause, unpause, wait, remove, rename, resize, top; exits and
//! restart policies; re-adoption of running containers when the daemon starts.

use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{ContainerTopResponse, ContainerWaitResponse};
use berth_api::{ApiError, WaitCondition, WaitFuture};
use berth_runtime::{ExitInfo, RuntimeError, ShimClient};
use chrono::Utc;

use crate::container::{load_record, Container, Status};
use crate::Engine;

pub(crate) const SIGKILL: i32 = 9;
/// `<data-root>/containers/` entries being removed.
const TRASH_PREFIX: &str = ".trash-";
/// `<data-root>/containers/` entries whose record could not be read.
const QUARANTINE_PREFIX: &str = ".unreadable-";
const SIGTERM: i32 = 15;

/// Docker's signal parsing: a number, or a name with or without `SIG`, any case.
pub(crate) fn parse_signal(s: &str) -> Result<i32, ApiError> {
    let invalid = || ApiError::bad_request(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        if n <= 0 || n > 64 {
            return Err(invalid());
        }
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" | "CLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        other => {
            if let Some(rest) = other.strip_prefix("RTMIN") {
                let off = match rest {
                    "" => 0,
                    r => r
                        .strip_prefix('+')
                        .and_then(|x| x.parse::<i32>().ok())
                        .ok_or_else(invalid)?,
                };
                34 + off
            } else if let Some(rest) = other.strip_prefix("RTMAX") {
                let off = match rest {
                    "" => 0,
                    r => r
                        .strip_prefix('-')
                        .and_then(|x| x.parse::<i32>().ok())
                        .ok_or_else(invalid)?,
                };
                64 - off
            } else {
                return Err(invalid());
            }
        }
    };
    if !(1..=64).contains(&n) {
        return Err(invalid());
    }
    Ok(n)
}

fn not_running(c: &Container) -> ApiError {
    ApiError::conflict(format!("Container {} is not running", c.id))
}

fn rt_err(e: RuntimeError) -> ApiError {
    ApiError::internal(e.to_string())
}

impl Engine {
    /// Sends `sig` to the container's init process.
    async fn signal(&self, c: &Container, sig: i32) -> Result<(), ApiError> {
        let rt = self.runtime(&c.with(|r| r.runtime.clone()))?;
        rt.kill(&c.id, sig, false).await.map_err(rt_err)
    }

    /// Waits until the container is no longer running or exited (it may be `restarting`
    /// after that), at most `timeout` (None: forever).
    async fn wait_stopped(&self, c: &Container, timeout: Option<Duration>) -> bool {
        let mut rx = c.subscribe();
        let exits = rx.borrow_and_update().exits;
        let fut = async {
            loop {
                let s = *rx.borrow_and_update();
                if !s.status.is_running() || s.exits > exits {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
            None => {
                fut.await;
                true
            }
        }
    }

    /// Docker's stop: the stop signal, then SIGKILL after the timeout. Ok(false) when it was
    /// not running (304).
    pub(crate) async fn stop_locked(
        &self,
        c: &Arc<Container>,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<bool, ApiError> {
        if !c.status().is_running() {
            return Ok(false);
        }
        let (stop_signal, stop_timeout) =
            c.with(|r| (r.config.stop_signal.clone(), r.config.stop_timeout));
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(&s)?,
            None if !stop_signal.is_empty() => parse_signal(&stop_signal)?,
            None => SIGTERM,
        };
        let secs = timeout.or(stop_timeout).unwrap_or(10);
        if c.status() == Status::Restarting {
            // No process: the pending restart is cancelled and the container stays exited
            // (Docker ends the same way, after the stop timeout when the signal is not the
            // stop signal).
            self.user_stop_or_kill(c, SIGKILL);
            let attrs = self.event_attrs(c);
            self.events.emit("container", "stop", &c.id, attrs);
            return Ok(true);
        }
        self.user_stop_or_kill(c, sig);
        let paused = c.status() == Status::Paused;
        if let Err(e) = self.signal(c, sig).await {
            tracing::debug!(id = %c.id, "stop signal failed (exiting already?): {e:?}");
        }
        if paused {
            let rt = self.runtime(&c.with(|r| r.runtime.clone()))?;
            let _ = rt.resume(&c.id).await;
        }
        let limit = if secs < 0 {
            None
        } else {
            Some(Duration::from_secs(secs as u64))
        };
        if !self.wait_stopped(c, limit).await {
            tracing::info!(id = %c.id, "container did not stop within {secs}s; killing it");
            self.user_stop_or_kill(c, SIGKILL);
            if let Err(e) = self.signal(c, SIGKILL).await {
                tracing::debug!(id = %c.id, "SIGKILL failed: {e:?}");
            }
            if !self.wait_stopped(c, Some(Duration::from_secs(30))).await {
                return Err(ApiError::internal(format!(
                    "cannot stop container {}: it did not exit after SIGKILL",
                    c.id
                )));
            }
        }
        let attrs = self.event_attrs(c);
        self.events.emit("container", "stop", &c.id, attrs);
        Ok(true)
    }

    pub(crate) async fn stop_container(
        &self,
        c: &Arc<Container>,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<bool, ApiError> {
        let _op = c.op.lock().await;
        self.stop_locked(c, signal, timeout).await
    }

    pub(crate) async fn kill_container(
        &self,
        c: &Arc<Container>,
        signal: Option<String>,
    ) -> Result<(), ApiError> {
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(&s)?,
            None => SIGKILL,
        };
        if !c.status().is_running() {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                c.name(),
                c.id
            )));
        }
        if c.status() == Status::Restarting {
            // moby: no process to signal; the kill only cancels the pending restart (when the
            // signal would stop the container) and emits no event.
            let _op = c.op.lock().await;
            if c.status() == Status::Restarting {
                self.user_stop_or_kill(c, sig);
                return Ok(());
            }
        }
        self.user_stop_or_kill(c, sig);
        self.signal(c, sig).await.map_err(|e| {
            ApiError::new(
                e.status,
                format!("Cannot kill container: {}: {}", c.name(), e.message),
            )
        })?;
        let mut attrs = self.event_attrs(c);
        attrs.insert("signal".into(), sig.to_string());
        self.events.emit("container", "kill", &c.id, attrs);
        if sig == SIGKILL {
            // Docker's kill with SIGKILL returns once the container is no longer running.
            self.wait_stopped(c, Some(Duration::from_secs(30))).await;
        }
        Ok(())
    }

    pub(crate) async fn restart_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        let _op = c.op.lock().await;
        self.stop_locked(c, signal, timeout).await?;
        self.start_locked(c).await?;
        let attrs = self.event_attrs(c);
        self.events.emit("container", "restart", &c.id, attrs);
        Ok(())
    }

    pub(crate) async fn pause_container(&self, c: &Arc<Container>) -> Result<(), ApiError> {
        let _op = c.op.lock().await;
        match c.status() {
            Status::Paused => {
                return Err(ApiError::conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            Status::Running => {}
            Status::Restarting => {
                return Err(ApiError::conflict(format!(
                    "Container {} is restarting, wait until the container is running",
                    c.id
                )))
            }
            _ => return Err(not_running(c)),
        }
        let rt = self.runtime(&c.with(|r| r.runtime.clone()))?;
        rt.pause(&c.id).await.map_err(rt_err)?;
        self.health_stop(c);
        c.update(|r| r.state.status = Status::Paused)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let attrs = self.event_attrs(c);
        self.events.emit("container", "pause", &c.id, attrs);
        Ok(())
    }

    pub(crate) async fn unpause_container(&self, c: &Arc<Container>) -> Result<(), ApiError> {
        let _op = c.op.lock().await;
        if c.status() != Status::Paused {
            return Err(ApiError::conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        let rt = self.runtime(&c.with(|r| r.runtime.clone()))?;
        rt.resume(&c.id).await.map_err(rt_err)?;
        c.update(|r| r.state.status = Status::Running)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.health_resume(c);
        let attrs = self.event_attrs(c);
        self.events.emit("container", "unpause", &c.id, attrs);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: resolves per `condition`.
    pub(crate) fn wait_container(
        &self,
        c: &Arc<Container>,
        condition: WaitCondition,
    ) -> WaitFuture {
        let mut rx = c.subscribe();
        let start = *rx.borrow_and_update();
        Box::pin(async move {
            loop {
                let s = *rx.borrow_and_update();
                let done = match condition {
                    // An exit ends the wait even when a restart follows (moby notifies its
                    // stop waiters when the container goes to `restarting`).
                    WaitCondition::NotRunning => !s.status.is_running() || s.exits > start.exits,
                    WaitCondition::NextExit => s.exits > start.exits,
                    WaitCondition::Removed => s.removed,
                };
                if done {
                    return ContainerWaitResponse {
                        error: None,
                        status_code: s.exit_code,
                    };
                }
                if rx.changed().await.is_err() {
                    // The container went away (removed): its last state is final.
                    let s = *rx.borrow();
                    return ContainerWaitResponse {
                        error: None,
                        status_code: s.exit_code,
                    };
                }
            }
        })
    }

    /// `DELETE /containers/{id}`.
    /// `volumes`: also remove the container's anonymous volumes (`rm -v`, `run --rm`).
    pub(crate) async fn remove_container(
        &self,
        c: &Arc<Container>,
        force: bool,
        volumes: bool,
    ) -> Result<(), ApiError> {
        let _op = c.op.lock().await;
        self.remove_locked(c, force, volumes).await
    }

    async fn remove_locked(
        &self,
        c: &Arc<Container>,
        force: bool,
        volumes: bool,
    ) -> Result<(), ApiError> {
        if self.try_lookup(&c.id)?.is_none() {
            // Already removed (e.g. by --rm while we waited for the lock).
            return Ok(());
        }
        match c.status() {
            Status::Paused if !force => {
                return Err(ApiError::conflict(format!(
                    "You cannot remove a paused container {}. Unpause and then stop the container before attempting removal or force remove",
                    c.id
                )))
            }
            s if s.is_running() && !force => {
                return Err(ApiError::conflict(format!(
                    "You cannot remove a {} container {}. Stop the container before attempting removal or force remove",
                    s.as_str(),
                    c.id
                )))
            }
            Status::Restarting => {
                self.user_stop_or_kill(c, SIGKILL);
            }
            s if s.is_running() => {
                self.user_stop_or_kill(c, SIGKILL);
                if let Err(e) = self.signal(c, SIGKILL).await {
                    tracing::debug!(id = %c.id, "kill before removal: {e:?}");
                }
                if c.status() == Status::Paused {
                    if let Ok(rt) = self.runtime(&c.with(|r| r.runtime.clone())) {
                        let _ = rt.resume(&c.id).await;
                    }
                }
                if !self.wait_stopped(c, Some(Duration::from_secs(30))).await {
                    return Err(ApiError::internal(format!(
                        "Could not kill running container {}, cannot remove",
                        c.id
                    )));
                }
            }
            _ => {}
        }
        self.health_stop(c);
        c.set_status_in_memory(Status::Removing);
        c.clear_shim();
        self.net_detach(c).await;
        // The supervisor deletes the runtime's state after an exit; if that did not happen
        // (the supervisor was killed, the delete failed), do it now so that no runtime state
        // or cgroup outlives the container.
        // A supervisor still cleaning up does it itself; checking the state directory keeps a
        // runtime invocation off the common path.
        let supervisor_busy = c
            .prev_shim_pid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(crate::start::process_alive);
        if let Ok(rt) = self.runtime(&c.with(|r| r.runtime.clone())) {
            if !supervisor_busy && rt.root.join(&c.id).exists() {
                match rt.delete(&c.id, true).await {
                    Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                    Err(e) => tracing::warn!(id = %c.id, "runtime delete at removal: {e}"),
                }
            }
        }
        self.unmount_rw_layer(&c.id).await;
        // The record goes first, in one rename: a crash afterwards leaves a rw layer without a
        // record and a trash directory, both removed at the next daemon start; never a record
        // without its filesystem.
        let trash = self
            .cfg
            .data_root
            .join("containers")
            .join(format!("{TRASH_PREFIX}{}", c.id));
        match std::fs::rename(&c.dir, &trash) {
            Ok(()) => {
                if let Err(e) = std::fs::remove_dir_all(&trash) {
                    tracing::warn!(id = %c.id, "cannot remove {}: {e}", trash.display());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(id = %c.id, "cannot remove {}: {e}", c.dir.display());
                let _ = c.update(|r| r.state.status = Status::Dead);
                return Err(ApiError::internal(format!(
                    "unable to remove filesystem for {}: {e}",
                    c.id
                )));
            }
        }
        self.remove_rw_layer(&c.id).await;
        let _ = std::fs::remove_dir_all(&c.bundle);
        self.detach_volumes(&c.id, &c.with(|r| r.mounts.clone()), volumes)
            .await;
        let name = c.name();
        {
            let mut cs = self.containers.write().unwrap_or_else(|p| p.into_inner());
            cs.by_id.remove(&c.id);
            if cs.names.get(&name) == Some(&c.id) {
                cs.names.remove(&name);
            }
        }
        for e in c
            .exec_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            self.execs.remove(&e);
        }
        c.notify_removed();
        let attrs = self.event_attrs(c);
        self.events.emit("container", "destroy", &c.id, attrs);
        Ok(())
    }

    pub(crate) async fn rename_container(
        &self,
        c: &Arc<Container>,
        new_name: &str,
    ) -> Result<(), ApiError> {
        let new_name = new_name.trim_start_matches('/').to_string();
        if new_name.is_empty() {
            return Err(ApiError::bad_request(
                "Neither old nor new names may be empty",
            ));
        }
        if !crate::ids::valid_name(&new_name) {
            return Err(ApiError::bad_request(crate::ids::invalid_name_message(
                &new_name,
            )));
        }
        let old = c.name();
        if old == new_name {
            return Err(ApiError::bad_request(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            let mut cs = self.containers.write().unwrap_or_else(|p| p.into_inner());
            if let Some(other) = cs.names.get(&new_name) {
                return Err(ApiError::conflict(format!(
                    "Error when allocating new name: Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            cs.names.remove(&old);
            cs.names.insert(new_name.clone(), c.id.clone());
        }
        c.update(|r| r.name = new_name.clone())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.dns_refresh(c, None);
        let mut attrs = self.event_attrs(c);
        attrs.insert("oldName".into(), format!("/{old}"));
        self.events.emit("container", "rename", &c.id, attrs);
        Ok(())
    }

    pub(crate) async fn resize_container(
        &self,
        c: &Arc<Container>,
        h: u16,
        w: u16,
    ) -> Result<(), ApiError> {
        if !c.status().is_running() {
            return Err(not_running(c));
        }
        let shim = c.shim().ok_or_else(|| not_running(c))?;
        if !shim.tty() {
            // Docker accepts and ignores resizes of containers without a terminal.
            return Ok(());
        }
        shim.resize(h, w).await.map_err(rt_err)
    }

    /// `GET /containers/{id}/top`: the host's `ps` filtered to the container's processes.
    pub(crate) async fn top_container(
        &self,
        c: &Arc<Container>,
        ps_args: Option<String>,
    ) -> Result<ContainerTopResponse, ApiError> {
        if !c.status().is_running() {
            return Err(not_running(c));
        }
        let rt = self.runtime(&c.with(|r| r.runtime.clone()))?;
        let pids = rt.ps(&c.id).await.map_err(rt_err)?;
        let args = ps_args
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "-ef".to_string());
        let argv: Vec<&str> = args.split_whitespace().collect();
        // `ps` is the host's (procps), never a binary from inside the container.
        let out = tokio::process::Command::new("ps")
            .args(&argv)
            .output()
            .await
            .map_err(|e| ApiError::internal(format!("error running ps: {e}")))?;
        if !out.status.success() {
            return Err(ApiError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps_output(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// Records an exit reported by the supervisor: state, events, restart policy, auto-remove.
    pub(crate) async fn on_exit(
        self: &Arc<Self>,
        c: &Arc<Container>,
        exit: Result<ExitInfo, RuntimeError>,
    ) {
        self.record_exit(c, exit, true).await;
    }

    /// Records an exit; with `apply_policy`, a container whose restart policy says so becomes
    /// `restarting` and is started again after the back-off (see `restart.rs`).
    async fn record_exit(
        self: &Arc<Self>,
        c: &Arc<Container>,
        exit: Result<ExitInfo, RuntimeError>,
        apply_policy: bool,
    ) {
        let info = match exit {
            Ok(i) => i,
            Err(e) => match berth_runtime::read_exit_file(&c.bundle) {
                Some(i) => i,
                None => ExitInfo {
                    exit_code: 255,
                    oom_killed: false,
                    finished_at: Utc::now(),
                    error: Some(format!("the container's supervisor was lost: {e}")),
                },
            },
        };
        self.health_stop(c);
        let shim_pid = c.with(|r| r.state.shim_pid);
        if shim_pid > 0 {
            *c.prev_shim_pid.lock().unwrap_or_else(|p| p.into_inner()) = Some(shim_pid as i32);
        }
        c.clear_shim();
        // Unmount before the state changes: a restart may mount again right after.
        self.unmount_rw_layer(&c.id).await;
        self.net_detach(c).await;
        self.release_volume_mounts(&c.id, &c.with(|r| r.mounts.clone()));
        let _ = std::fs::remove_dir_all(&c.bundle);
        let (auto_remove, policy, by_user, restarts, started_at) = c.with(|r| {
            (
                r.host_config.auto_remove,
                r.host_config.restart_policy.clone(),
                r.state.stopped_by_user,
                r.restart_count,
                r.state.started_at,
            )
        });
        let ran_for = started_at
            .and_then(|s| (info.finished_at - s).to_std().ok())
            .unwrap_or_default();
        // The decision and the state change happen under the restart manager's lock, so that
        // a stop or kill cancelling restarts meanwhile sees either no pending restart and
        // prevents it, or a pending one and the `restarting` state it undoes.
        let delay = {
            let mut rm = c.restart_manager();
            let delay = if apply_policy && !auto_remove {
                rm.should_restart(&policy, info.exit_code as i64, by_user, ran_for, restarts)
            } else {
                None
            };
            let restarting = delay.map(|d| (d, rm.set_pending()));
            let record_exit = |r: &mut crate::container::ContainerRecord| {
                r.state.status = if restarting.is_some() {
                    Status::Restarting
                } else {
                    Status::Exited
                };
                if restarting.is_some() {
                    r.restart_count += 1;
                }
                r.state.exit_code = info.exit_code as i64;
                r.state.finished_at = Some(info.finished_at);
                r.state.oom_killed = info.oom_killed;
                r.state.pid = 0;
                r.state.shim_pid = 0;
                r.state.error = info.error.clone().unwrap_or_default();
            };
            // A `--rm` container is removed right after: its exit need not survive a power
            // failure (a daemon restart finds it without a supervisor and removes it then).
            let _ = if auto_remove {
                c.update_volatile(record_exit)
            } else {
                c.update(record_exit)
            };
            restarting
        };
        c.notify_exit();
        let mut attrs = self.event_attrs(c);
        if info.oom_killed {
            self.events.emit("container", "oom", &c.id, attrs.clone());
        }
        attrs.insert("exitCode".into(), info.exit_code.to_string());
        // Whole seconds the process ran, as moby's monitor reports it since 25.0.
        attrs.insert("execDuration".into(), ran_for.as_secs().to_string());
        self.events.emit("container", "die", &c.id, attrs);

        if auto_remove {
            let engine = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.remove_container(&c, true, true).await {
                    tracing::warn!(id = %c.id, "auto-remove failed: {}", e.message);
                }
            });
            return;
        }
        if let Some((delay, gen)) = delay {
            tracing::info!(id = %c.id, restarts = restarts + 1, "restarting container in {delay:?}");
            self.schedule_restart(c, gen, delay);
        }
    }

    /// Loads container records and re-adopts running containers (daemon start).
    pub(crate) async fn restore(self: &Arc<Self>) {
        let dir = self.cfg.data_root.join("containers");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut loaded = Vec::new();
        let mut keep_rw: std::collections::HashSet<String> = std::collections::HashSet::new();
        for e in entries.flatten() {
            let p = e.path();
            let fname = e.file_name().to_string_lossy().into_owned();
            if !p.is_dir() || fname.starts_with(QUARANTINE_PREFIX) {
                if let Some(id) = fname.strip_prefix(QUARANTINE_PREFIX) {
                    keep_rw.insert(id.to_string());
                }
                continue;
            }
            if fname.starts_with(TRASH_PREFIX) {
                // A removal interrupted after its record was gone.
                let _ = std::fs::remove_dir_all(&p);
                continue;
            }
            if !p.join(crate::container::RECORD_FILE).exists() {
                // A create interrupted before its record was written: nothing refers to it.
                tracing::info!("removing the directory of a half-created container {fname}");
                let _ = std::fs::remove_dir_all(&p);
                continue;
            }
            match load_record(&p) {
                Ok(rec) => {
                    let c = Container::new(rec, &self.cfg.data_root, &self.cfg.exec_root);
                    loaded.push(c);
                }
                Err(msg) => {
                    // Never delete what cannot be read: set it aside (with its filesystem) for
                    // an administrator, and say so.
                    let q = p.with_file_name(format!("{QUARANTINE_PREFIX}{fname}"));
                    tracing::error!(
                        "unreadable container record ({msg}); moved to {} with its filesystem kept",
                        q.display()
                    );
                    let _ = std::fs::rename(&p, &q);
                    keep_rw.insert(fname);
                }
            }
        }
        // Read-write layers that no container owns (a create or removal interrupted by a
        // crash) are removed.
        let known: std::collections::HashSet<String> =
            loaded.iter().map(|c| c.id.clone()).collect();
        let store = self.images.clone();
        let rw_ids =
            tokio::task::spawn_blocking(move || store.layers().rw_ids().unwrap_or_default())
                .await
                .unwrap_or_default();
        for id in rw_ids {
            if !known.contains(&id) && !keep_rw.contains(&id) {
                tracing::info!(id, "removing a read-write layer without a container");
                self.unmount_rw_layer(&id).await;
                self.remove_rw_layer(&id).await;
            }
        }
        {
            let mut cs = self.containers.write().unwrap_or_else(|p| p.into_inner());
            for c in &loaded {
                cs.names.insert(c.name(), c.id.clone());
                cs.by_id.insert(c.id.clone(), c.clone());
            }
        }
        // Address leases, port reservations and the firewall from the running containers,
        // before exits found below release theirs.
        self.net_restore(&loaded).await;
        let mut boot_restarts = Vec::new();
        self.restore_volume_refs(&loaded);
        for c in loaded {
            let mut status = c.status();
            if status == Status::Restarting {
                // The previous daemon stopped during a restart's back-off (or inside the
                // restart's start, adopted below): the exit stays recorded, and the policy is
                // applied afresh below, as dockerd does at start.
                let _ = c.update(|r| r.state.status = Status::Exited);
                status = Status::Exited;
            }
            if status.is_running() {
                match ShimClient::connect(&c.bundle).await {
                    Ok(shim) => {
                        tracing::info!(id = %c.id, "re-adopted running container");
                        let shim = Arc::new(shim);
                        drop(c.set_shim(shim.clone()));
                        if status == Status::Running {
                            self.health_init(&c);
                        }
                        self.spawn_monitor(c.clone(), shim);
                    }
                    Err(e) => {
                        tracing::info!(id = %c.id, "container's supervisor is gone ({e}); recording its exit");
                        self.record_exit(&c, Err(e), false).await;
                    }
                }
            } else {
                if status == Status::Removing {
                    let _ = self.remove_container(&c, true, false).await;
                    continue;
                }
                // A daemon that died inside `start` may have left a running supervisor behind
                // whose output is still held: release it and adopt the container as running.
                if let Ok(shim) = ShimClient::connect(&c.bundle).await {
                    tracing::info!(id = %c.id, "adopting a container whose start was interrupted");
                    let _ = shim.start().await;
                    let shim = Arc::new(shim);
                    let (pid, shim_pid) = (shim.init_pid() as i64, shim.shim_pid() as i64);
                    let _ = c.update(|r| {
                        r.state.status = Status::Running;
                        r.state.pid = pid;
                        r.state.shim_pid = shim_pid;
                        r.state.started_at.get_or_insert_with(Utc::now);
                        r.has_been_started = true;
                    });
                    drop(c.set_shim(shim.clone()));
                    self.health_init(&c);
                    self.spawn_monitor(c, shim);
                    continue;
                }
                // Stale mounts or bundles of stopped containers from a crashed daemon.
                self.unmount_rw_layer(&c.id).await;
                let _ = std::fs::remove_dir_all(&c.bundle);
            }
            if Self::restarts_at_daemon_start(&c) {
                boot_restarts.push(c);
            }
        }
        self.reap_orphan_bundles().await;
        self.reap_runtime_leftovers().await;
        // Containers whose restart policy brings them back when the daemon starts (moby
        // starts them as a user would: the restart count starts again from zero).
        for c in boot_restarts {
            tracing::info!(id = %c.id, "starting container by its restart policy (daemon start)");
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.start_container(&c).await {
                    tracing::warn!(id = %c.id, "restart at daemon start failed: {}", e.message);
                }
            });
        }
    }

    /// Deletes runtime state left for containers that are not running (a supervisor killed
    /// before its cleanup, a failed delete), so their cgroups go too.
    async fn reap_runtime_leftovers(&self) {
        for rt in self.runtimes.values() {
            let Ok(entries) = std::fs::read_dir(&rt.root) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.path().is_dir() {
                    continue;
                }
                let id = e.file_name().to_string_lossy().into_owned();
                let running = self
                    .try_lookup(&id)
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.status().is_running() || c.shim().is_some());
                if !running {
                    tracing::info!(id, "deleting leftover {} state", rt.name);
                    if let Err(e) = rt.delete(&id, true).await {
                        tracing::warn!(id, "{e}");
                    }
                }
            }
        }
    }

    /// Removes bundle directories of containers that no longer exist.
    async fn reap_orphan_bundles(&self) {
        let dir = self.cfg.exec_root.join("containers");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if self.try_lookup(&id).ok().flatten().is_none() && id.len() == 64 {
                tracing::info!("removing the bundle of unknown container {id}");
                if let Ok(rt) = self.runtime(&self.cfg.default_runtime) {
                    let _ = rt.delete(&id, true).await;
                }
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Docker's parsing of `ps` output: keep the header, rows whose PID is in `pids`.
pub(crate) fn parse_ps_output(out: &str, pids: &[i32]) -> Result<ContainerTopResponse, ApiError> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_idx = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::internal("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(p) = fields.get(pid_idx).and_then(|f| f.parse::<i32>().ok()) else {
            return Err(ApiError::internal(format!(
                "Unexpected pid '{}'",
                fields.get(pid_idx).unwrap_or(&"")
            )));
        };
        if !pids.contains(&p) {
            continue;
        }
        let n = titles.len();
        let mut row: Vec<String> = fields
            .iter()
            .take(n.saturating_sub(1))
            .map(|s| s.to_string())
            .collect();
        if fields.len() >= n {
            row.push(fields[n - 1..].join(" "));
        }
        processes.push(row);
    }
    Ok(ContainerTopResponse { processes, titles })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("WINCH").unwrap(), 28);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse_signal("RTMAX").unwrap(), 64);
        assert_eq!(
            parse_signal("NOPE").unwrap_err().message,
            "Invalid signal: NOPE"
        );
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
    }

    #[test]
    fn ps_parsing() {
        let out = "UID   PID  PPID  C STIME TTY          TIME CMD\nroot    1     0  0 10:00 ?        00:00:00 /sbin/init splash\nroot   42     1  0 10:00 ?        00:00:00 sleep 100\n";
        let t = parse_ps_output(out, &[42]).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(
            t.processes,
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sleep 100"
            ]]
        );
        assert!(parse_ps_output("A B\n1 2\n", &[1]).is_err());
    }
}
