//! Restart policies: moby's restart manager (which exits restart, and after what back-off) and
//! the engine's glue (the `restarting` state, the pending restart, its cancellation by a user's
//! stop/kill/rm, and the decision at daemon start).
//!
//! Docker's rules, as moby's `restartmanager` and `daemon/kill.go` apply them:
//! * `always` restarts after every exit, `unless-stopped` unless the user stopped the container,
//!   `on-failure[:N]` after a non-zero exit while fewer than N restarts happened (0: no limit).
//! * The back-off starts at 100 ms and doubles with every restart, capped at one minute; a run
//!   that lasted 10 s or more resets it.
//! * A stop, a kill with SIGKILL or with the container's stop signal (any signal when none is
//!   configured), and `rm -f` cancel restarts until the user starts the container again; any
//!   kill marks the container "stopped by the user" (persisted: `unless-stopped` then stays
//!   stopped even across daemon restarts).
//! * While a restart is pending the container is `restarting` (Running and Restarting in
//!   inspect, Pid 0): `rm` refuses without force, `stop`/`kill`/`rm -f` cancel the restart and
//!   leave it `exited`, `start` answers 304, `pause`/`exec` refuse.
//! * A start by the user resets the restart count and the back-off.
//! * At daemon start, a stopped container that ran before is started again when its policy
//!   says so: `always` even when the user stopped it, `unless-stopped` unless the user stopped
//!   it, `on-failure` after a non-zero exit within its retry count (moby's `ShouldRestart`).

use std::sync::Arc;
use std::time::Duration;

use berth_api::models::RestartPolicy;
use berth_api::ApiError;

use crate::container::{Container, Status};
use crate::Engine;

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

/// Whether `policy` restarts a container after an exit with `exit_code` (moby's policy switch,
/// without the back-off).
pub(crate) fn policy_restarts(
    policy: &RestartPolicy,
    exit_code: i64,
    stopped_by_user: bool,
    restart_count: i64,
) -> bool {
    match policy.name.as_str() {
        "always" => true,
        "unless-stopped" => !stopped_by_user,
        "on-failure" => {
            let max = policy.maximum_retry_count;
            (max == 0 || restart_count < max) && exit_code != 0
        }
        _ => false,
    }
}

/// The per-container restart manager (in memory; a fresh one after a daemon restart, as in
/// moby).
#[derive(Debug, Default)]
pub(crate) struct RestartManager {
    /// The current back-off; zero before the first restart.
    backoff: Duration,
    /// Restarts are cancelled until the next start by the user.
    canceled: bool,
    /// The pending restart, if any: its generation and the task sleeping out the back-off.
    pending: Option<(u64, Option<tokio::task::AbortHandle>)>,
    next_gen: u64,
}

impl RestartManager {
    /// moby's `ShouldRestart`: after an exit, whether to restart and after which delay. Grows
    /// the back-off (reset first when the run lasted 10 s or more), whatever the answer.
    pub fn should_restart(
        &mut self,
        policy: &RestartPolicy,
        exit_code: i64,
        stopped_by_user: bool,
        ran_for: Duration,
        restart_count: i64,
    ) -> Option<Duration> {
        if matches!(policy.name.as_str(), "" | "no") || self.canceled || self.pending.is_some() {
            return None;
        }
        if ran_for >= BACKOFF_RESET_AFTER {
            self.backoff = Duration::ZERO;
        }
        self.backoff = if self.backoff.is_zero() {
            BACKOFF_START
        } else {
            (self.backoff * 2).min(BACKOFF_MAX)
        };
        policy_restarts(policy, exit_code, stopped_by_user, restart_count).then_some(self.backoff)
    }

    /// Registers a pending restart; returns its generation.
    pub fn set_pending(&mut self) -> u64 {
        self.next_gen += 1;
        self.pending = Some((self.next_gen, None));
        self.next_gen
    }

    /// Attaches the task that sleeps out the back-off to the pending restart `gen`.
    pub fn set_task(&mut self, gen: u64, task: tokio::task::AbortHandle) {
        match &mut self.pending {
            Some((g, slot)) if *g == gen => *slot = Some(task),
            // Cancelled before the task was registered.
            _ => task.abort(),
        }
    }

    /// The restart task of generation `gen` takes its turn; false when it was cancelled.
    pub fn take_pending(&mut self, gen: u64) -> bool {
        if matches!(self.pending, Some((g, _)) if g == gen) {
            self.pending = None;
            true
        } else {
            false
        }
    }

    /// moby's `Cancel` (a stop or kill by the user): no restarts until the user starts the
    /// container again. Returns whether a restart was pending (it is dropped).
    pub fn cancel(&mut self) -> bool {
        self.canceled = true;
        match self.pending.take() {
            Some((_, task)) => {
                if let Some(t) = task {
                    t.abort();
                }
                true
            }
            None => false,
        }
    }

    /// A start by the user: a fresh manager (moby's `ResetRestartManager`).
    pub fn reset(&mut self) {
        self.cancel();
        self.canceled = false;
        self.backoff = Duration::ZERO;
    }

    #[cfg(test)]
    pub fn backoff(&self) -> Duration {
        self.backoff
    }
}

impl Engine {
    /// Records a user's stop or kill with `sig` (moby's `killWithSignal`): the container counts
    /// as stopped by the user, and restarts are cancelled when `sig` is SIGKILL, the container's
    /// stop signal, or any signal if it has none. A pending restart is dropped and the
    /// container left `exited`; returns true in that case. The caller holds the op lock when
    /// the container may be `restarting`.
    pub(crate) fn user_stop_or_kill(&self, c: &Arc<Container>, sig: i32) -> bool {
        let stop_signal = c.with(|r| r.config.stop_signal.clone());
        let cancels = sig == crate::lifecycle::SIGKILL
            || stop_signal.is_empty()
            || crate::lifecycle::parse_signal(&stop_signal).is_ok_and(|s| s == sig);
        // Under the manager's lock, like the exit that decides on a restart (see on_exit).
        let mut rm = c.restart_manager();
        let dropped = cancels && rm.cancel();
        let _ = c.update(|r| {
            r.state.stopped_by_user = true;
            if dropped && r.state.status == Status::Restarting {
                r.state.status = Status::Exited;
            }
        });
        drop(rm);
        if dropped {
            tracing::info!(id = %c.id, "pending restart cancelled");
        }
        dropped
    }

    /// After an exit was recorded as `restarting` with the pending restart `gen`: starts the
    /// container again after `delay`, unless the restart is cancelled meanwhile.
    pub(crate) fn schedule_restart(
        self: &Arc<Self>,
        c: &Arc<Container>,
        gen: u64,
        delay: Duration,
    ) {
        let engine = self.clone();
        let c2 = c.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = c2.op.lock().await;
            if !c2.restart_manager().take_pending(gen) {
                return;
            }
            if engine.try_lookup(&c2.id).ok().flatten().is_none() {
                return;
            }
            if let Err(e) = engine.start_by_policy(&c2).await {
                tracing::warn!(id = %c2.id, "restart by policy failed: {}", e.message);
            }
        });
        c.restart_manager().set_task(gen, task.abort_handle());
    }

    /// A start by the policy: keeps the restart count and the back-off.
    async fn start_by_policy(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), ApiError> {
        if c.status() != Status::Restarting {
            return Ok(());
        }
        match self.start_locked_from(c, true).await {
            Ok(_) => Ok(()),
            Err(e) => {
                // The container stays down: moby's SetStopped after a failed restart.
                let _ = c.update(|r| {
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                    }
                });
                c.notify_exit();
                Err(e)
            }
        }
    }

    /// At daemon start: whether a stopped container is started again (moby's `ShouldRestart`
    /// on restore, with a fresh restart manager).
    pub(crate) fn restarts_at_daemon_start(c: &Container) -> bool {
        c.with(|r| {
            r.has_been_started
                && !r.state.status.is_running()
                && !matches!(r.state.status, Status::Removing | Status::Dead)
                && policy_restarts(
                    &r.host_config.restart_policy,
                    r.state.exit_code,
                    r.state.stopped_by_user,
                    r.restart_count,
                )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn policies_like_moby() {
        assert!(!policy_restarts(&pol("no", 0), 1, false, 0));
        assert!(!policy_restarts(&pol("", 0), 1, false, 0));
        assert!(policy_restarts(&pol("always", 0), 0, false, 0));
        assert!(policy_restarts(&pol("always", 0), 0, true, 0));
        assert!(policy_restarts(&pol("unless-stopped", 0), 0, false, 5));
        assert!(!policy_restarts(&pol("unless-stopped", 0), 0, true, 5));
        assert!(!policy_restarts(&pol("on-failure", 0), 0, false, 0));
        assert!(policy_restarts(&pol("on-failure", 0), 1, false, 1000));
        assert!(policy_restarts(&pol("on-failure", 2), 1, false, 1));
        assert!(!policy_restarts(&pol("on-failure", 2), 1, false, 2));
        // on-failure ignores a stop by the user (moby): a killed container exits non-zero.
        assert!(policy_restarts(&pol("on-failure", 0), 137, true, 0));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut m = RestartManager::default();
        let p = pol("always", 0);
        let short = Duration::from_millis(5);
        let mut seen = Vec::new();
        for _ in 0..12 {
            let d = m.should_restart(&p, 0, false, short, 0).unwrap();
            seen.push(d.as_millis());
            // The restart happens: the pending slot is taken.
            let g = m.set_pending();
            assert!(m.take_pending(g));
        }
        assert_eq!(
            seen,
            vec![100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]
        );
        // A run of 10 s resets it.
        let d = m.should_restart(&p, 0, false, Duration::from_secs(10), 0);
        assert_eq!(d, Some(Duration::from_millis(100)));
        // The back-off grows even when the policy says no (moby computes it first).
        let mut m = RestartManager::default();
        assert_eq!(
            m.should_restart(&pol("on-failure", 0), 0, false, short, 0),
            None
        );
        assert_eq!(m.backoff(), Duration::from_millis(100));
        // ... but not for "no".
        let mut m = RestartManager::default();
        assert_eq!(m.should_restart(&pol("no", 0), 1, false, short, 0), None);
        assert_eq!(m.backoff(), Duration::ZERO);
    }

    #[test]
    fn cancel_and_reset() {
        let mut m = RestartManager::default();
        let p = pol("always", 0);
        let short = Duration::from_millis(5);
        assert!(m.should_restart(&p, 0, false, short, 0).is_some());
        let g = m.set_pending();
        // No second decision while one is pending.
        assert_eq!(m.should_restart(&p, 0, false, short, 0), None);
        assert!(m.cancel());
        assert!(!m.take_pending(g), "a cancelled restart does not run");
        assert_eq!(m.should_restart(&p, 0, false, short, 0), None);
        assert!(!m.cancel(), "nothing pending any more");
        m.reset();
        assert_eq!(
            m.should_restart(&p, 0, false, short, 0),
            Some(Duration::from_millis(100))
        );
    }
}
