//! `POST /containers/{id}/update` (`docker update`): new resource limits and restart policy.
//!
//! As moby's `ContainerUpdate`: the request is checked like a create (`resources::verify` with
//! `update`), merged into the record (fields left at zero keep their value; Nano CPUs and CPU
//! period/quota exclude each other across the update), persisted, and — when the container is
//! running or paused — applied to its cgroups at once through the runtime's `update`. A failure
//! to apply restores the previous record. The restart policy is stored in the record's host
//! config, where the restart manager reads it.

use std::sync::Arc;

use berth_api::models::{ContainerUpdateResponse, HostConfig, UpdateConfig};
use berth_api::ApiError;
use serde_json::{json, Map, Value};

use crate::container::{Container, Status};
use crate::resources::{self, HostSupport};
use crate::Engine;

/// The request as a HostConfig, for the checks shared with create.
fn as_host_config(u: &UpdateConfig) -> HostConfig {
    HostConfig {
        cpu_shares: u.cpu_shares,
        memory: u.memory,
        nano_cpus: u.nano_cpus,
        cgroup_parent: u.cgroup_parent.clone(),
        blkio_weight: u.blkio_weight,
        blkio_weight_device: u.blkio_weight_device.clone(),
        blkio_device_read_bps: u.blkio_device_read_bps.clone(),
        blkio_device_write_bps: u.blkio_device_write_bps.clone(),
        blkio_device_read_iops: u.blkio_device_read_iops.clone(),
        blkio_device_write_iops: u.blkio_device_write_iops.clone(),
        cpu_period: u.cpu_period,
        cpu_quota: u.cpu_quota,
        cpu_realtime_period: u.cpu_realtime_period,
        cpu_realtime_runtime: u.cpu_realtime_runtime,
        cpuset_cpus: u.cpuset_cpus.clone(),
        cpuset_mems: u.cpuset_mems.clone(),
        kernel_memory: u.kernel_memory,
        kernel_memory_tcp: u.kernel_memory_tcp,
        memory_reservation: u.memory_reservation,
        memory_swap: u.memory_swap,
        memory_swappiness: u.memory_swappiness,
        oom_kill_disable: u.oom_kill_disable,
        pids_limit: u.pids_limit,
        cpu_count: u.cpu_count,
        cpu_percent: u.cpu_percent,
        io_maximum_iops: u.io_maximum_iops,
        io_maximum_bandwidth: u.io_maximum_bandwidth,
        restart_policy: u.restart_policy.clone(),
        ..Default::default()
    }
}

fn conflict(msg: &str) -> String {
    msg.to_string()
}

/// moby's `Container.UpdateContainer`: merges the update `u` (already checked) into the
/// container's host config. Errors are conflicts (409).
fn merge(cur: &mut HostConfig, u: &HostConfig) -> Result<(), String> {
    if u.nano_cpus > 0 && cur.cpu_period > 0 {
        return Err(conflict(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
        ));
    }
    if u.nano_cpus > 0 && cur.cpu_quota > 0 {
        return Err(conflict(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
        ));
    }
    if u.cpu_period > 0 && cur.nano_cpus > 0 {
        return Err(conflict(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
        ));
    }
    if u.cpu_quota > 0 && cur.nano_cpus > 0 {
        return Err(conflict(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
        ));
    }
    if u.blkio_weight != 0 {
        cur.blkio_weight = u.blkio_weight;
    }
    for (dst, src) in [
        (&mut cur.blkio_device_read_bps, &u.blkio_device_read_bps),
        (&mut cur.blkio_device_write_bps, &u.blkio_device_write_bps),
        (&mut cur.blkio_device_read_iops, &u.blkio_device_read_iops),
        (&mut cur.blkio_device_write_iops, &u.blkio_device_write_iops),
    ] {
        if src.is_some() {
            *dst = src.clone();
        }
    }
    if u.blkio_weight_device.is_some() {
        cur.blkio_weight_device = u.blkio_weight_device.clone();
    }
    if u.cpu_shares != 0 {
        cur.cpu_shares = u.cpu_shares;
    }
    if u.nano_cpus != 0 {
        cur.nano_cpus = u.nano_cpus;
    }
    if u.cpu_period != 0 {
        cur.cpu_period = u.cpu_period;
    }
    if u.cpu_quota != 0 {
        cur.cpu_quota = u.cpu_quota;
    }
    if !u.cpuset_cpus.is_empty() {
        cur.cpuset_cpus = u.cpuset_cpus.clone();
    }
    if !u.cpuset_mems.is_empty() {
        cur.cpuset_mems = u.cpuset_mems.clone();
    }
    if u.memory != 0 {
        // A memory limit above the swap limit already set, without a new swap limit, would
        // be refused by the kernel (memory+swap must stay >= memory).
        if u.memory > cur.memory_swap && u.memory_swap == 0 {
            return Err(conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"));
        }
        cur.memory = u.memory;
    }
    if u.memory_swap != 0 {
        cur.memory_swap = u.memory_swap;
    }
    if u.memory_reservation != 0 {
        cur.memory_reservation = u.memory_reservation;
    }
    if u.cpu_realtime_period != 0 {
        cur.cpu_realtime_period = u.cpu_realtime_period;
    }
    if u.cpu_realtime_runtime != 0 {
        cur.cpu_realtime_runtime = u.cpu_realtime_runtime;
    }
    if u.pids_limit.is_some() {
        cur.pids_limit = u.pids_limit;
    }
    if !u.restart_policy.name.is_empty() {
        let none = u.restart_policy.name == "no";
        if cur.auto_remove && !none {
            return Err(conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        cur.restart_policy = u.restart_policy.clone();
    }
    Ok(())
}

/// moby's `toContainerdResources`: the OCI `LinuxResources` of the update alone (the runtime
/// leaves everything else as it is).
fn update_resources(u: &HostConfig) -> Result<Value, ApiError> {
    let mut r = Map::new();
    let devices =
        |list: &Option<Vec<berth_api::models::ThrottleDevice>>| -> Result<Option<Value>, ApiError> {
            let Some(list) = list else { return Ok(None) };
            let mut v = Vec::new();
            for d in list {
                let (major, minor) = berth_runtime::spec::block_device_numbers(&d.path)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                v.push(json!({"major": major, "minor": minor, "rate": d.rate}));
            }
            Ok(Some(Value::Array(v)))
        };
    let mut bio = Map::new();
    if let Some(list) = &u.blkio_weight_device {
        let mut v = Vec::new();
        for d in list {
            let (major, minor) = berth_runtime::spec::block_device_numbers(&d.path)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            v.push(json!({"major": major, "minor": minor, "weight": d.weight}));
        }
        bio.insert("weightDevice".into(), Value::Array(v));
    }
    for (key, list) in [
        ("throttleReadBpsDevice", &u.blkio_device_read_bps),
        ("throttleWriteBpsDevice", &u.blkio_device_write_bps),
        ("throttleReadIOPSDevice", &u.blkio_device_read_iops),
        ("throttleWriteIOPSDevice", &u.blkio_device_write_iops),
    ] {
        if let Some(v) = devices(list)? {
            bio.insert(key.into(), v);
        }
    }
    if u.blkio_weight != 0 {
        bio.insert("weight".into(), json!(u.blkio_weight));
    }
    if !bio.is_empty() {
        r.insert("blockIO".into(), Value::Object(bio));
    }
    let mut cpu = Map::new();
    if !u.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(u.cpuset_cpus));
    }
    if !u.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(u.cpuset_mems));
    }
    if u.cpu_shares != 0 {
        cpu.insert("shares".into(), json!(u.cpu_shares));
    }
    let (mut period, mut quota) = (0i64, 0i64);
    if u.nano_cpus != 0 {
        period = 100_000;
        quota = u.nano_cpus * period / 1_000_000_000;
    }
    if quota == 0 && u.cpu_quota != 0 {
        quota = u.cpu_quota;
    }
    if period == 0 && u.cpu_period != 0 {
        period = u.cpu_period;
    }
    if period != 0 {
        cpu.insert("period".into(), json!(period));
    }
    if quota != 0 {
        cpu.insert("quota".into(), json!(quota));
    }
    if u.cpu_realtime_period != 0 {
        cpu.insert("realtimePeriod".into(), json!(u.cpu_realtime_period));
    }
    if u.cpu_realtime_runtime != 0 {
        cpu.insert("realtimeRuntime".into(), json!(u.cpu_realtime_runtime));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    let mut mem = Map::new();
    if u.memory != 0 {
        mem.insert("limit".into(), json!(u.memory));
    }
    if u.memory_reservation != 0 {
        mem.insert("reservation".into(), json!(u.memory_reservation));
    }
    if u.memory_swap > 0 {
        mem.insert("swap".into(), json!(u.memory_swap));
    }
    if !mem.is_empty() {
        r.insert("memory".into(), Value::Object(mem));
    }
    if let Some(p) = u.pids_limit {
        // 0 or less is "unlimited", which the runtime spells -1.
        r.insert("pids".into(), json!({"limit": if p <= 0 { -1 } else { p }}));
    }
    Ok(Value::Object(r))
}

impl Engine {
    pub(crate) async fn update_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
        u: UpdateConfig,
    ) -> Result<ContainerUpdateResponse, ApiError> {
        let mut upd = as_host_config(&u);
        let warnings = resources::verify(&mut upd, HostSupport::get(self.cgroup_mode), true)?;
        crate::create::validate_restart_policy(&upd, false)?;
        let cannot = |msg: String| format!("Cannot update container {}: {msg}", c.id);

        let _op = c.op.lock().await;
        let (status, old) = c.with(|r| (r.state.status, r.host_config.clone()));
        if matches!(status, Status::Removing | Status::Dead) {
            return Err(ApiError::conflict(cannot(
                "container is marked for removal and cannot be \"update\"".into(),
            )));
        }
        let mut merged = old.clone();
        merge(&mut merged, &upd).map_err(|m| ApiError::conflict(cannot(m)))?;
        c.update(|r| r.host_config = merged.clone())
            .map_err(|e| ApiError::internal(cannot(format!("saving the container: {e}"))))?;

        // A running (or paused) container gets the new limits now; a stopped one at its next
        // start (the spec is built from the record); a restarting one too.
        if matches!(status, Status::Running | Status::Paused) {
            let applied = match update_resources(&upd) {
                Ok(res) => {
                    let rt = self.runtime(&c.with(|r| r.runtime.clone()))?.clone();
                    rt.update(&c.id, &res)
                        .await
                        .map_err(|e| ApiError::internal(cannot(e.to_string())))
                }
                Err(e) => Err(ApiError::new(e.status, cannot(e.message))),
            };
            if let Err(e) = applied {
                let _ = c.update(|r| r.host_config = old);
                return Err(e);
            }
        }
        let attrs = self.event_attrs(c);
        self.events.emit("container", "update", &c.id, attrs);
        Ok(ContainerUpdateResponse {
            warnings: (!warnings.is_empty()).then_some(warnings),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::RestartPolicy;

    #[test]
    fn merge_keeps_unset_fields_and_checks_conflicts() {
        let mut cur = HostConfig {
            memory: 10 << 20,
            memory_swap: 20 << 20,
            cpu_shares: 512,
            ..Default::default()
        };
        merge(
            &mut cur,
            &HostConfig {
                memory: 15 << 20,
                pids_limit: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (cur.memory, cur.memory_swap, cur.cpu_shares, cur.pids_limit),
            (15 << 20, 20 << 20, 512, Some(0))
        );
        let e = merge(
            &mut cur,
            &HostConfig {
                memory: 30 << 20,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.starts_with("Memory limit should be smaller"), "{e}");
        let mut nano = HostConfig {
            nano_cpus: 1_000_000_000,
            ..Default::default()
        };
        let e = merge(
            &mut nano,
            &HostConfig {
                cpu_quota: 50_000,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e,
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        );
        let mut rm = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        let always = HostConfig {
            restart_policy: RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            },
            ..Default::default()
        };
        assert!(merge(&mut rm, &always).is_err());
        let mut plain = HostConfig::default();
        merge(&mut plain, &always).unwrap();
        assert_eq!(plain.restart_policy.name, "always");
    }

    #[test]
    fn runtime_resources_of_an_update() {
        let r = update_resources(&HostConfig {
            nano_cpus: 500_000_000,
            memory: 20 << 20,
            memory_swap: -1,
            pids_limit: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r["cpu"], json!({"period": 100000, "quota": 50000}));
        assert_eq!(r["memory"], json!({"limit": 20971520}));
        assert_eq!(r["pids"], json!({"limit": -1}));
        assert!(r.get("blockIO").is_none());
        assert!(update_resources(&HostConfig {
            blkio_device_read_bps: Some(vec![berth_api::models::ThrottleDevice {
                path: "/nonexistent-device".into(),
                rate: 1,
            }]),
            ..Default::default()
        })
        .is_err());
    }
}
