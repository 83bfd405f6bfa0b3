//! `GET /containers/{id}/stats`: cgroup counters (v1 or v2) in Docker's `StatsJSON` shape.
//!
//! CPU usage and the host's total CPU time are sampled together, so the Docker CLI computes
//! `CPU %` from two samples as it does against dockerd; memory comes with the full
//! `memory.stat` table (the CLI subtracts the inactive page cache). Block I/O and network
//! counters are not collected (reported empty, which the CLI shows as `0B / 0B`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_api::{ApiError, ByteStream, StatsOptions};
use berth_runtime::cgroups::{self, CgroupMode};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::container::Container;
use crate::Engine;

/// How often a streaming client gets a new document (dockerd: 1 s).
const INTERVAL: Duration = Duration::from_secs(1);

/// One reading of a container's counters.
#[derive(Debug, Clone, Default)]
struct Sample {
    read: Option<DateTime<Utc>>,
    cpu_total_ns: u64,
    system_ns: u64,
    online_cpus: u64,
    mem_usage: u64,
    mem_max_usage: Option<u64>,
    mem_limit: u64,
    mem_stats: BTreeMap<String, u64>,
    pids: u64,
    pids_limit: Option<u64>,
}

/// The host's total CPU time (all CPUs, all states) in nanoseconds, from `/proc/stat`, and
/// the number of online CPUs.
fn system_cpu() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    // SAFETY: sysconf(3) has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    let mut total = 0u64;
    let mut cpus = 0u64;
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            // user nice system idle iowait irq softirq steal (guest time is inside user).
            total = rest
                .split_whitespace()
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
                .saturating_mul(1_000_000_000 / hz);
        } else if line.starts_with("cpu") {
            cpus += 1;
        }
    }
    (total, cpus)
}

/// The host's memory in bytes (the limit of a container without one, as dockerd reports).
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn read_keyed_file(path: &std::path::Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    Some((k.to_string(), v.trim().parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read_u64(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn sample(mode: CgroupMode, path: &str) -> Sample {
    let (system_ns, online_cpus) = system_cpu();
    let mem_dir = cgroups::controller_dir(mode, "memory", path);
    let pids_dir = cgroups::controller_dir(mode, "pids", path);
    let (mem_max_usage, pids_limit) = match mode {
        CgroupMode::V2 => (None, read_u64(&pids_dir.join("pids.max"))),
        _ => (
            read_u64(&mem_dir.join("memory.max_usage_in_bytes")),
            read_u64(&pids_dir.join("pids.max")),
        ),
    };
    Sample {
        read: Some(Utc::now()),
        cpu_total_ns: cgroups::cpu_usage_ns(mode, path).unwrap_or(0),
        system_ns,
        online_cpus,
        mem_usage: cgroups::memory_usage(mode, path).unwrap_or(0),
        mem_max_usage,
        mem_limit: cgroups::memory_limit(mode, path)
            .ok()
            .flatten()
            .unwrap_or_else(host_memory),
        mem_stats: read_keyed_file(&mem_dir.join("memory.stat")),
        pids: cgroups::pids_current(mode, path).unwrap_or(0),
        pids_limit,
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => berth_runtime::time::format_rfc3339_nano(&t),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

fn cpu_json(s: &Sample) -> Value {
    let mut v = json!({
        "cpu_usage": {
            "total_usage": s.cpu_total_ns,
            "usage_in_kernelmode": 0,
            "usage_in_usermode": 0
        },
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    });
    if s.read.is_some() {
        v["system_cpu_usage"] = json!(s.system_ns);
        v["online_cpus"] = json!(s.online_cpus);
    }
    v
}

/// Docker's `StatsJSON` for `cur` with `pre` as the previous reading.
fn document(name: &str, id: &str, cur: &Sample, pre: &Sample) -> Value {
    let mut memory = json!({});
    if cur.read.is_some() {
        memory = json!({
            "usage": cur.mem_usage,
            "stats": cur.mem_stats,
            "limit": cur.mem_limit,
        });
        if let Some(m) = cur.mem_max_usage {
            memory["max_usage"] = json!(m);
        }
    }
    let mut pids = json!({"current": cur.pids});
    if let Some(l) = cur.pids_limit {
        pids["limit"] = json!(l);
    }
    json!({
        "read": time(cur.read),
        "preread": time(pre.read),
        "pids_stats": if cur.read.is_some() { pids } else { json!({}) },
        "blkio_stats": {
            "io_service_bytes_recursive": null,
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur),
        "precpu_stats": cpu_json(pre),
        "memory_stats": memory,
        "name": format!("/{name}"),
        "id": id,
    })
}

fn line(v: &Value) -> std::io::Result<Bytes> {
    let mut b = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    b.push(b'\n');
    Ok(Bytes::from(b))
}

impl Engine {
    fn stats_cgroup(&self, c: &Container) -> String {
        c.with(|r| {
            let parent = if r.host_config.cgroup_parent.is_empty() {
                self.cfg.cgroup_parent.clone()
            } else {
                r.host_config.cgroup_parent.clone()
            };
            format!("{}/{}", parent.trim_end_matches('/'), r.id)
        })
    }

    /// A reading, or zeros when the container is not running (as dockerd).
    async fn stats_sample(&self, c: &Container) -> Sample {
        if !c.status().is_running() {
            return Sample::default();
        }
        let mode = self.cgroup_mode;
        let path = self.stats_cgroup(c);
        tokio::task::spawn_blocking(move || sample(mode, &path))
            .await
            .unwrap_or_default()
    }

    pub(crate) async fn container_stats(
        self: &Arc<Self>,
        id: &str,
        opts: StatsOptions,
    ) -> Result<ByteStream, ApiError> {
        let c = self.lookup(id)?;
        let name = c.name();
        let cid = c.id.clone();
        if !opts.stream {
            // One document; with a previous reading a second earlier unless one-shot.
            let pre = if opts.one_shot || !c.status().is_running() {
                Sample::default()
            } else {
                let s = self.stats_sample(&c).await;
                tokio::time::sleep(INTERVAL).await;
                s
            };
            let cur = self.stats_sample(&c).await;
            let doc = line(&document(&name, &cid, &cur, &pre));
            return Ok(Box::pin(futures_util::stream::iter(vec![doc])));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
        let engine = self.clone();
        tokio::spawn(async move {
            let mut pre = Sample::default();
            loop {
                let cur = engine.stats_sample(&c).await;
                if tx
                    .send(line(&document(&name, &cid, &cur, &pre)))
                    .await
                    .is_err()
                {
                    return; // the client went away
                }
                if engine.try_lookup(&cid).ok().flatten().is_none() {
                    return; // removed
                }
                pre = cur;
                tokio::time::sleep(INTERVAL).await;
            }
        });
        Ok(Box::pin(crate::images::stream_from(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_have_dockers_shape() {
        let pre = Sample {
            read: Some(Utc::now()),
            cpu_total_ns: 1_000,
            system_ns: 10_000,
            online_cpus: 2,
            ..Default::default()
        };
        let mut cur = pre.clone();
        cur.cpu_total_ns = 2_000;
        cur.system_ns = 20_000;
        cur.mem_usage = 4096;
        cur.mem_limit = 1 << 20;
        cur.mem_stats.insert("total_inactive_file".into(), 1024);
        cur.pids = 3;
        cur.pids_limit = Some(100);
        let d = document("web", "abc", &cur, &pre);
        assert_eq!(d["name"], "/web");
        assert_eq!(d["cpu_stats"]["cpu_usage"]["total_usage"], 2000);
        assert_eq!(d["precpu_stats"]["system_cpu_usage"], 10000);
        assert_eq!(d["cpu_stats"]["online_cpus"], 2);
        assert_eq!(d["memory_stats"]["usage"], 4096);
        assert_eq!(d["memory_stats"]["stats"]["total_inactive_file"], 1024);
        assert_eq!(d["pids_stats"]["limit"], 100);
        // A stopped container: zeros and Go's zero time.
        let z = document("web", "abc", &Sample::default(), &Sample::default());
        assert_eq!(z["read"], "0001-01-01T00:00:00Z");
        assert_eq!(z["memory_stats"], json!({}));
    }

    #[test]
    fn host_counters_are_read() {
        let (total, cpus) = system_cpu();
        assert!(total > 0 && cpus > 0, "{total} {cpus}");
        assert!(host_memory() > 0);
    }
}
