//! Health checks run by the daemon (Docker's `HEALTHCHECK`, `--health-*`, `Config.Healthcheck`).
//!
//! One scheduler task for the whole daemon keeps a heap of due probes; no task or thread
//! exists per container between probes. When a probe is due, a task runs it as an exec in the
//! container through the engine's exec path (`exec_create` + [`Engine::exec_probe`], so the
//! `exec_create`/`exec_start`/`exec_die` events appear as Docker emits them), applies the
//! result (moby's `handleProbeResult`) and asks the scheduler for the next one.
//!
//! Semantics follow moby's `daemon/health.go`:
//! * `CMD` execs the arguments, `CMD-SHELL` runs them with the image's `SHELL` (default
//!   `/bin/sh -c`), `NONE` (or no test) disables the check.
//! * Exit 0 is healthy; anything else, a probe killed at its timeout (exit -1, "Health check
//!   exceeded timeout (…)") or a probe that could not run (exit -1, the error as output) is a
//!   failure. `retries` consecutive failures (default 3) make the container unhealthy; failures
//!   during the start period do not count while it is still `starting`.
//! * The first probe runs one interval after the start; the interval is measured from the end
//!   of one probe to the start of the next; during the start period a `starting` container is
//!   probed every start interval (default 5 s). Defaults: interval 30 s, timeout 30 s.
//! * Output (stdout and stderr, in arrival order) keeps its first 4096 bytes, `...` marking a
//!   cut; the rest is read and dropped, so a probe printing megabytes costs no memory.
//! * The log keeps the last 5 results. Status changes emit `health_status: <status>`.
//! * When the container stops or is paused the monitor stops and the status becomes
//!   `unhealthy` (no event; Docker does the same); a start resets it to `starting` (the log is
//!   kept); an unpause resumes probing without a reset. After a daemon restart running
//!   containers are probed again from `starting`, as dockerd does when it restores them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use berth_api::models::{ExecConfig, Health, HealthConfig, HealthcheckResult};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::container::{docker_time, Container, Status};
use crate::Engine;

/// Longest probe output kept (moby's `maxOutputLen`).
pub(crate) const MAX_OUTPUT: usize = 4096;
const MAX_LOG_ENTRIES: usize = 5;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;

pub(crate) const STARTING: &str = "starting";
pub(crate) const HEALTHY: &str = "healthy";
pub(crate) const UNHEALTHY: &str = "unhealthy";

/// The health monitor of one container (in memory).
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    /// Bumped whenever monitoring starts or stops: a probe or a due entry of an older
    /// generation is stale and dropped.
    gen: u64,
    active: bool,
    /// Cancels the probe in flight.
    probe: Option<CancellationToken>,
}

/// A probe due at `at` for container `id`, monitor generation `gen`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    at: Instant,
    id: String,
    gen: u64,
}

/// Where probes are scheduled (the sending half of the scheduler's queue).
pub(crate) type SchedulerTx = mpsc::UnboundedSender<Due>;

pub(crate) fn channel() -> (SchedulerTx, mpsc::UnboundedReceiver<Due>) {
    mpsc::unbounded_channel()
}

/// The scheduler: one task for the daemon, holding the engine weakly (it ends with it).
pub(crate) fn spawn_scheduler(engine: &Arc<Engine>, mut rx: mpsc::UnboundedReceiver<Due>) {
    let weak: Weak<Engine> = Arc::downgrade(engine);
    tokio::spawn(async move {
        let mut heap: BinaryHeap<Reverse<Due>> = BinaryHeap::new();
        loop {
            let next = heap.peek().map(|Reverse(d)| d.at);
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(d) => heap.push(Reverse(d)),
                    None => return,
                },
                _ = sleep_until_opt(next) => {
                    let now = Instant::now();
                    let Some(engine) = weak.upgrade() else { return };
                    while heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
                        if let Some(Reverse(d)) = heap.pop() {
                            engine.dispatch_probe(&d.id, d.gen);
                        }
                    }
                }
            }
        }
    });
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The command a health config runs, if it runs one (`None` for no check, `NONE`, an empty
/// test or an unknown type).
pub(crate) fn probe_command(
    hc: Option<&HealthConfig>,
    shell: Option<&[String]>,
) -> Option<Vec<String>> {
    let test = hc?.test.as_ref()?;
    let (kind, args) = test.split_first()?;
    match kind.as_str() {
        "CMD" => Some(args.to_vec()),
        "CMD-SHELL" => {
            let mut cmd: Vec<String> = match shell.filter(|s| !s.is_empty()) {
                Some(s) => s.to_vec(),
                None => vec!["/bin/sh".into(), "-c".into()],
            };
            cmd.extend(args.iter().cloned());
            Some(cmd)
        }
        _ => None,
    }
}

/// Docker's validation of `Config.Healthcheck` at create (moby's `validateHealthCheck`).
pub(crate) fn validate(hc: Option<&HealthConfig>) -> Result<(), berth_api::ApiError> {
    const MIN: i64 = 1_000_000; // containertypes.MinimumDuration: 1ms
    let Some(hc) = hc else { return Ok(()) };
    let bad = |what: &str| {
        Err(berth_api::ApiError::bad_request(format!(
            "{what} in Healthcheck cannot be less than 1ms"
        )))
    };
    if hc.interval != 0 && hc.interval < MIN {
        return bad("Interval");
    }
    if hc.timeout != 0 && hc.timeout < MIN {
        return bad("Timeout");
    }
    if hc.retries < 0 {
        return Err(berth_api::ApiError::bad_request(
            "Retries in Healthcheck cannot be negative",
        ));
    }
    if hc.start_period != 0 && hc.start_period < MIN {
        return bad("StartPeriod");
    }
    if hc.start_interval != 0 && hc.start_interval < MIN {
        return bad("StartInterval");
    }
    Ok(())
}

/// Docker's merge of the image's health check into the container's (moby's `merge`): no
/// check of its own takes the image's; otherwise each unset field (empty test, zero
/// duration or retries) comes from the image.
pub(crate) fn merge_config(mine: &mut Option<HealthConfig>, image: Option<&HealthConfig>) {
    let Some(img) = image else { return };
    match mine {
        None => *mine = Some(img.clone()),
        Some(m) => {
            if m.test.as_ref().is_none_or(|t| t.is_empty()) {
                m.test = img.test.clone();
            }
            for (mine, theirs) in [
                (&mut m.interval, img.interval),
                (&mut m.timeout, img.timeout),
                (&mut m.start_period, img.start_period),
                (&mut m.start_interval, img.start_interval),
                (&mut m.retries, img.retries),
            ] {
                if *mine == 0 {
                    *mine = theirs;
                }
            }
        }
    }
}

/// A health config's timings with Docker's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timings {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

fn or_default(nanos: i64, default: Duration) -> Duration {
    if nanos <= 0 {
        default
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

pub(crate) fn timings(hc: Option<&HealthConfig>) -> Timings {
    let d = HealthConfig::default();
    let hc = hc.unwrap_or(&d);
    Timings {
        interval: or_default(hc.interval, DEFAULT_INTERVAL),
        timeout: or_default(hc.timeout, DEFAULT_TIMEOUT),
        start_period: or_default(hc.start_period, Duration::ZERO),
        start_interval: or_default(hc.start_interval, DEFAULT_START_INTERVAL),
        retries: if hc.retries <= 0 {
            DEFAULT_RETRIES
        } else {
            hc.retries
        },
    }
}

/// moby's `getInterval`: the wait before the next probe.
pub(crate) fn next_interval(t: &Timings, since_start: Duration, status: &str) -> Duration {
    if since_start >= t.start_period {
        t.interval
    } else if status == STARTING {
        t.start_interval
    } else {
        t.interval
    }
}

/// moby's `handleProbeResult` on the health state: appends `r` to the log (the last five
/// kept) and updates the failing streak and status. `in_start_period`: the probe started
/// within the start period. Returns whether the status changed.
pub(crate) fn apply_result(
    h: &mut Health,
    r: HealthcheckResult,
    t: &Timings,
    in_start_period: bool,
) -> bool {
    let old = h.status.clone();
    let ok = r.exit_code == 0;
    h.log.push(r);
    if h.log.len() > MAX_LOG_ENTRIES {
        let extra = h.log.len() - MAX_LOG_ENTRIES;
        h.log.drain(..extra);
    }
    if ok {
        h.failing_streak = 0;
        h.status = HEALTHY.into();
    } else if !(old == STARTING && in_start_period) {
        h.failing_streak += 1;
        if h.failing_streak >= t.retries {
            h.status = UNHEALTHY.into();
        }
    }
    old != h.status
}

/// Probe output as moby's `limitedBuffer` keeps it: the first [`MAX_OUTPUT`] bytes, `...`
/// appended when more came.
#[derive(Debug, Default)]
pub(crate) struct LimitedOutput {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    pub fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    pub fn text(&self) -> String {
        // Invalid UTF-8 becomes U+FFFD, as Go's JSON encoder renders it.
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// How a probe's exec ended (see [`Engine::exec_probe`]).
#[derive(Debug)]
pub(crate) enum ProbeEnd {
    Exited(i64),
    TimedOut,
    Canceled,
}

impl Engine {
    fn arm(&self, id: &str, gen: u64, after: Duration) {
        let _ = self.health_tx.send(Due {
            at: Instant::now() + after,
            id: id.to_string(),
            gen,
        });
    }

    /// Starts health monitoring after a start: status `starting`, streak 0, log kept
    /// (moby's `initHealthMonitor`). Nothing when the container has no check.
    pub(crate) fn health_init(&self, c: &Arc<Container>) {
        let has_probe = c.with(|r| {
            probe_command(r.config.healthcheck.as_ref(), r.config.shell.as_deref()).is_some()
        });
        if !has_probe {
            return;
        }
        let mut m = c.health_monitor();
        if let Some(t) = m.probe.take() {
            t.cancel();
        }
        m.gen += 1;
        m.active = true;
        let t = c.with(|r| timings(r.config.healthcheck.as_ref()));
        c.modify_quiet(|r| {
            let h = r.state.health.get_or_insert_with(Health::default);
            h.status = STARTING.into();
            h.failing_streak = 0;
        });
        self.arm(&c.id, m.gen, next_interval(&t, Duration::ZERO, STARTING));
    }

    /// Resumes monitoring after an unpause, without resetting the status (moby's
    /// `updateHealthMonitor`).
    pub(crate) fn health_resume(&self, c: &Arc<Container>) {
        let (has_probe, t, started, status) = c.with(|r| {
            (
                probe_command(r.config.healthcheck.as_ref(), r.config.shell.as_deref()).is_some(),
                timings(r.config.healthcheck.as_ref()),
                r.state.started_at,
                r.state.health.as_ref().map(|h| h.status.clone()),
            )
        });
        let mut m = c.health_monitor();
        if !has_probe || m.active {
            return;
        }
        m.gen += 1;
        m.active = true;
        let since = since(started, Utc::now());
        let status = status.unwrap_or_else(|| UNHEALTHY.to_string());
        self.arm(&c.id, m.gen, next_interval(&t, since, &status));
    }

    /// Stops monitoring (exit, stop, pause, removal): a probe in flight is killed and its
    /// result dropped; the status becomes `unhealthy` (moby's `CloseMonitorChannel`).
    pub(crate) fn health_stop(&self, c: &Container) {
        let mut m = c.health_monitor();
        if !m.active {
            return;
        }
        m.active = false;
        m.gen += 1;
        if let Some(t) = m.probe.take() {
            t.cancel();
        }
        c.modify_quiet(|r| {
            if let Some(h) = r.state.health.as_mut() {
                h.status = UNHEALTHY.into();
            }
        });
    }

    /// A probe is due (called by the scheduler).
    fn dispatch_probe(self: &Arc<Self>, id: &str, gen: u64) {
        let Some(c) = self.try_lookup(id).ok().flatten() else {
            return;
        };
        let token = {
            let mut m = c.health_monitor();
            if !m.active || m.gen != gen || c.status() != Status::Running {
                return;
            }
            let t = CancellationToken::new();
            m.probe = Some(t.clone());
            t
        };
        let engine = self.clone();
        tokio::spawn(async move {
            let result = engine.run_probe(&c, &token).await;
            engine.probe_done(&c, gen, result);
        });
    }

    /// Applies a probe's result (unless monitoring stopped or restarted meanwhile) and arms
    /// the next probe.
    fn probe_done(&self, c: &Arc<Container>, gen: u64, result: Option<HealthcheckResult>) {
        let mut m = c.health_monitor();
        if !m.active || m.gen != gen {
            return;
        }
        m.probe = None;
        let Some(result) = result else {
            return;
        };
        let (t, started) = c.with(|r| (timings(r.config.healthcheck.as_ref()), r.state.started_at));
        let probe_start = DateTime::parse_from_rfc3339(&result.start)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        let in_start_period = since(started, probe_start) < t.start_period;
        let (changed, status) = c.modify_quiet(|r| {
            let h = r.state.health.get_or_insert_with(Health::default);
            let changed = apply_result(h, result, &t, in_start_period);
            (changed, h.status.clone())
        });
        if changed {
            // Persisted only on a status change (Docker persists health best-effort too); under
            // the monitor lock, so an exit's record update cannot be overtaken by this write.
            if let Err(e) = c.save_volatile() {
                tracing::warn!(id = %c.id, "cannot save the health status: {e}");
            }
            let attrs = self.event_attrs(c);
            self.events.emit(
                "container",
                &format!("health_status: {status}"),
                &c.id,
                attrs,
            );
        }
        let since_start = since(started, Utc::now());
        self.arm(&c.id, m.gen, next_interval(&t, since_start, &status));
    }

    /// Runs one probe; `None` when it was cancelled (the container stopped or paused).
    async fn run_probe(
        self: &Arc<Self>,
        c: &Arc<Container>,
        cancel: &CancellationToken,
    ) -> Option<HealthcheckResult> {
        let start = Utc::now();
        let (cmd, t) = c.with(|r| {
            (
                probe_command(r.config.healthcheck.as_ref(), r.config.shell.as_deref()),
                timings(r.config.healthcheck.as_ref()),
            )
        });
        let failed = |msg: String| HealthcheckResult {
            start: docker_time(Some(start)),
            end: docker_time(Some(Utc::now())),
            exit_code: -1,
            output: msg,
        };
        let cmd = cmd.unwrap_or_default();
        if cmd.is_empty() {
            return Some(failed(format!(
                "healthcheck for container {} has no command",
                c.id
            )));
        }
        let config = ExecConfig {
            attach_stdout: true,
            attach_stderr: true,
            cmd: Some(cmd),
            ..ExecConfig::default()
        };
        let exec_id = match self.exec_create(c, config) {
            Ok(id) => id,
            Err(e) => return Some(failed(e.message)),
        };
        let mut out = LimitedOutput::default();
        let end = self
            .exec_probe(c, &exec_id, t.timeout, cancel, &mut out)
            .await;
        self.exec_forget(c, &exec_id);
        let output = out.text();
        match end {
            Ok(ProbeEnd::Exited(code)) => Some(HealthcheckResult {
                start: docker_time(Some(start)),
                end: docker_time(Some(Utc::now())),
                exit_code: code,
                output,
            }),
            Ok(ProbeEnd::TimedOut) => {
                let limit = berth_api::gotime::format_go_duration(t.timeout.as_nanos() as i64);
                Some(failed(if output.is_empty() {
                    format!("Health check exceeded timeout ({limit})")
                } else {
                    format!("Health check exceeded timeout ({limit}): {output}")
                }))
            }
            Ok(ProbeEnd::Canceled) => None,
            Err(msg) => {
                tracing::debug!(id = %c.id, "health check error: {msg}");
                Some(failed(msg))
            }
        }
    }
}

/// Time from `started` (the container's start) to `t`; zero when unknown or in the future.
fn since(started: Option<DateTime<Utc>>, t: DateTime<Utc>) -> Duration {
    started
        .and_then(|s| (t - s).to_std().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: Some(test.iter().map(|s| s.to_string()).collect()),
            ..HealthConfig::default()
        }
    }

    fn res(code: i64) -> HealthcheckResult {
        HealthcheckResult {
            exit_code: code,
            ..HealthcheckResult::default()
        }
    }

    #[test]
    fn probe_commands() {
        assert_eq!(probe_command(None, None), None);
        assert_eq!(probe_command(Some(&hc(&[])), None), None);
        assert_eq!(probe_command(Some(&hc(&["NONE"])), None), None);
        assert_eq!(probe_command(Some(&hc(&["BOGUS", "x"])), None), None);
        assert_eq!(
            probe_command(Some(&hc(&["CMD", "true", "x"])), None),
            Some(vec!["true".into(), "x".into()])
        );
        assert_eq!(
            probe_command(Some(&hc(&["CMD-SHELL", "exit 1"])), None),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 1".into()])
        );
        let shell = vec!["/bin/ash".to_string(), "-ec".to_string()];
        assert_eq!(
            probe_command(Some(&hc(&["CMD-SHELL", "true"])), Some(&shell)),
            Some(vec!["/bin/ash".into(), "-ec".into(), "true".into()])
        );
        // An empty command is still a probe (it fails with Docker's message when run).
        assert_eq!(probe_command(Some(&hc(&["CMD"])), None), Some(vec![]));
    }

    #[test]
    fn validation_and_merge() {
        assert!(validate(None).is_ok());
        assert!(validate(Some(&hc(&["CMD", "x"]))).is_ok());
        let with = |f: fn(&mut HealthConfig)| {
            let mut h = hc(&["CMD", "x"]);
            f(&mut h);
            validate(Some(&h)).map_err(|e| e.message)
        };
        assert_eq!(
            with(|h| h.interval = 999_999).unwrap_err(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            with(|h| h.timeout = -1).unwrap_err(),
            "Timeout in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            with(|h| h.retries = -1).unwrap_err(),
            "Retries in Healthcheck cannot be negative"
        );
        assert_eq!(
            with(|h| h.start_period = 5).unwrap_err(),
            "StartPeriod in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            with(|h| h.start_interval = 5).unwrap_err(),
            "StartInterval in Healthcheck cannot be less than 1ms"
        );
        assert!(with(|h| h.interval = 1_000_000).is_ok());

        let img = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "img".into()]),
            interval: 7,
            timeout: 8,
            start_period: 9,
            start_interval: 10,
            retries: 11,
        };
        let mut none = None;
        merge_config(&mut none, Some(&img));
        assert_eq!(none.as_ref(), Some(&img));
        let mut mine = Some(HealthConfig {
            interval: 1,
            ..HealthConfig::default()
        });
        merge_config(&mut mine, Some(&img));
        assert_eq!(
            mine,
            Some(HealthConfig {
                interval: 1,
                ..img.clone()
            })
        );
        // --no-healthcheck keeps NONE; an image without a check changes nothing.
        let mut off = Some(hc(&["NONE"]));
        merge_config(&mut off, Some(&img));
        assert_eq!(off.unwrap().test.unwrap(), vec!["NONE".to_string()]);
        let mut own = Some(hc(&["CMD", "x"]));
        merge_config(&mut own, None);
        assert_eq!(own, Some(hc(&["CMD", "x"])));
    }

    #[test]
    fn defaults_and_intervals() {
        let t = timings(None);
        assert_eq!(t.interval, Duration::from_secs(30));
        assert_eq!(t.timeout, Duration::from_secs(30));
        assert_eq!(t.start_period, Duration::ZERO);
        assert_eq!(t.start_interval, Duration::from_secs(5));
        assert_eq!(t.retries, 3);
        let t = timings(Some(&HealthConfig {
            interval: 1_000_000_000,
            start_period: 10_000_000_000,
            start_interval: 200_000_000,
            retries: 1,
            ..HealthConfig::default()
        }));
        let ms = Duration::from_millis;
        assert_eq!(next_interval(&t, ms(0), STARTING), ms(200));
        assert_eq!(next_interval(&t, ms(9_000), STARTING), ms(200));
        assert_eq!(next_interval(&t, ms(9_000), HEALTHY), ms(1000));
        assert_eq!(next_interval(&t, ms(10_000), STARTING), ms(1000));
    }

    #[test]
    fn results_like_moby() {
        let t = timings(Some(&HealthConfig {
            retries: 2,
            ..HealthConfig::default()
        }));
        let mut h = Health {
            status: STARTING.into(),
            ..Health::default()
        };
        // Failures within the start period do not count while starting.
        assert!(!apply_result(&mut h, res(1), &t, true));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        assert!(!apply_result(&mut h, res(1), &t, false));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        assert!(apply_result(&mut h, res(0), &t, false));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        // Once healthy, the start period no longer shields failures.
        assert!(!apply_result(&mut h, res(2), &t, true));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
        assert!(apply_result(&mut h, res(-1), &t, true));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        assert!(!apply_result(&mut h, res(1), &t, false));
        assert_eq!(h.failing_streak, 3);
        assert_eq!(h.log.len(), 5, "the log keeps the last five");
        assert_eq!(
            h.log.iter().map(|r| r.exit_code).collect::<Vec<_>>(),
            vec![1, 0, 2, -1, 1]
        );
    }

    #[test]
    fn output_is_limited() {
        let mut o = LimitedOutput::default();
        o.push(b"hello\n");
        assert_eq!(o.text(), "hello\n");
        let mut o = LimitedOutput::default();
        for _ in 0..1000 {
            o.push(&[b'x'; 1000]);
        }
        let t = o.text();
        assert_eq!(t.len(), MAX_OUTPUT + 3);
        assert!(t.ends_with("x..."));
        let mut o = LimitedOutput::default();
        o.push(&[b'y'; MAX_OUTPUT]);
        assert!(!o.text().ends_with("..."), "exactly the limit is not a cut");
        o.push(b"");
        assert!(!o.text().ends_with("..."));
        o.push(b"z");
        assert!(o.text().ends_with("y..."));
    }

    proptest::proptest! {
        #[test]
        fn output_never_exceeds_the_limit(chunks in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..3000), 0..20)) {
            let mut o = LimitedOutput::default();
            let mut all = Vec::new();
            for c in &chunks {
                o.push(c);
                all.extend_from_slice(c);
            }
            proptest::prop_assert!(o.buf.len() <= MAX_OUTPUT);
            proptest::prop_assert_eq!(&o.buf[..], &all[..all.len().min(MAX_OUTPUT)]);
            proptest::prop_assert_eq!(o.truncated, all.len() > MAX_OUTPUT);
        }
    }
}
