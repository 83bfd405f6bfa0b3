//! Docker's checks and adjustments of a container's resources, shared by create and update
//! (moby's `verifyPlatformContainerResources`, `validateResources` and the resource parts of
//! `verifyPlatformContainerSettings`, in their order and with their messages), the host
//! capabilities they depend on, and the storage options.
//!
//! A limit the host cannot enforce is discarded with Docker's warning (returned to the client),
//! never silently.

use berth_api::models::HostConfig;
use berth_api::ApiError;
use berth_runtime::cgroups::CgroupMode;
use std::path::Path;

/// The smallest memory limit or reservation Docker accepts (6 MiB), to leave room for start-up.
pub(crate) const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// What the host's cgroups can enforce (moby's `sysinfo.SysInfo`, the parts berth uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostSupport {
    pub memory: bool,
    pub swap: bool,
    pub memory_reservation: bool,
    pub swappiness: bool,
    pub oom_kill_disable: bool,
    pub pids: bool,
    pub cpu_shares: bool,
    pub cpu_cfs: bool,
    pub cpu_realtime: bool,
    pub cpuset: bool,
    /// `cpuset.cpus` / `cpuset.mems` of the root: what a container may ask for.
    pub cpus: String,
    pub mems: String,
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub blkio_read_bps: bool,
    pub blkio_write_bps: bool,
    pub blkio_read_iops: bool,
    pub blkio_write_iops: bool,
    /// Online CPUs, for the range of `--cpus`.
    pub ncpu: i64,
}

fn exists(p: impl AsRef<Path>) -> bool {
    p.as_ref().exists()
}

fn read_trim(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl HostSupport {
    /// Probes the cgroup files under `root` (normally `/sys/fs/cgroup`) as moby does.
    pub(crate) fn detect_at(root: &Path, mode: CgroupMode) -> HostSupport {
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        match mode {
            CgroupMode::V2 => {
                let controllers = read_trim(root.join("cgroup.controllers"));
                let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
                let (memory, cpu, io, cpuset) =
                    (has("memory"), has("cpu"), has("io"), has("cpuset"));
                HostSupport {
                    memory,
                    // memory.swap.max exists in every non-root group when swap accounting is
                    // compiled in; the root has none, so look one level down.
                    swap: memory && v2_child_has(root, "memory.swap.max"),
                    memory_reservation: memory,
                    swappiness: false,
                    oom_kill_disable: false,
                    pids: has("pids"),
                    cpu_shares: cpu,
                    cpu_cfs: cpu,
                    cpu_realtime: false,
                    cpuset,
                    cpus: read_trim(root.join("cpuset.cpus.effective")),
                    mems: read_trim(root.join("cpuset.mems.effective")),
                    blkio_weight: io,
                    blkio_weight_device: io,
                    blkio_read_bps: io,
                    blkio_write_bps: io,
                    blkio_read_iops: io,
                    blkio_write_iops: io,
                    ncpu,
                }
            }
            CgroupMode::V1 | CgroupMode::Hybrid => {
                let m = root.join("memory");
                let c = root.join("cpu");
                let b = root.join("blkio");
                let s = root.join("cpuset");
                HostSupport {
                    memory: exists(m.join("memory.limit_in_bytes")),
                    swap: exists(m.join("memory.memsw.limit_in_bytes")),
                    memory_reservation: exists(m.join("memory.soft_limit_in_bytes")),
                    swappiness: exists(m.join("memory.swappiness")),
                    oom_kill_disable: exists(m.join("memory.oom_control")),
                    pids: exists(root.join("pids").join("cgroup.procs")),
                    cpu_shares: exists(c.join("cpu.shares")),
                    cpu_cfs: exists(c.join("cpu.cfs_quota_us")),
                    cpu_realtime: exists(c.join("cpu.rt_runtime_us")),
                    cpuset: exists(s.join("cpuset.cpus")),
                    cpus: read_trim(s.join("cpuset.cpus")),
                    mems: read_trim(s.join("cpuset.mems")),
                    blkio_weight: exists(b.join("blkio.weight")),
                    blkio_weight_device: exists(b.join("blkio.weight_device")),
                    blkio_read_bps: exists(b.join("blkio.throttle.read_bps_device")),
                    blkio_write_bps: exists(b.join("blkio.throttle.write_bps_device")),
                    blkio_read_iops: exists(b.join("blkio.throttle.read_iops_device")),
                    blkio_write_iops: exists(b.join("blkio.throttle.write_iops_device")),
                    ncpu,
                }
            }
        }
    }

    /// The host's support, probed once per daemon.
    pub(crate) fn get(mode: CgroupMode) -> &'static HostSupport {
        static HOST: std::sync::OnceLock<HostSupport> = std::sync::OnceLock::new();
        HOST.get_or_init(|| {
            HostSupport::detect_at(Path::new(berth_runtime::cgroups::CGROUP_ROOT), mode)
        })
    }
}

fn v2_child_has(root: &Path, file: &str) -> bool {
    std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.path().is_dir() && e.path().join(file).exists())
        })
        .unwrap_or(false)
}

fn bad(msg: impl Into<String>) -> Result<Vec<String>, ApiError> {
    Err(ApiError::bad_request(msg.into()))
}

/// Docker's resource checks for create (`update == false`) and update. Adjusts `hc` as moby
/// does (discarding what the host cannot enforce, with a warning) and returns the warnings.
pub(crate) fn verify(
    hc: &mut HostConfig,
    host: &HostSupport,
    update: bool,
) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    let mut warn = |w: &str| warnings.push(w.to_string());

    // fixMemorySwappiness: -1 means "the default".
    if hc.memory_swappiness == Some(-1) {
        hc.memory_swappiness = None;
    }

    // Memory.
    if hc.memory != 0 && hc.memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB");
    }
    if hc.memory > 0 && !host.memory {
        warn("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.");
        hc.memory = 0;
        hc.memory_swap = -1;
    }
    if hc.memory > 0 && hc.memory_swap != -1 && !host.swap {
        warn("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.");
        hc.memory_swap = -1;
    }
    if hc.memory > 0 && hc.memory_swap > 0 && hc.memory_swap < hc.memory {
        return bad("Minimum memoryswap limit should be larger than memory limit, see usage");
    }
    if hc.memory == 0 && hc.memory_swap > 0 && !update {
        return bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        );
    }
    if hc.memory_swappiness.is_some() && !host.swappiness {
        warn("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.");
        hc.memory_swappiness = None;
    }
    if let Some(s) = hc.memory_swappiness {
        if !(0..=100).contains(&s) {
            return bad(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            ));
        }
    }
    if hc.memory_reservation > 0 && !host.memory_reservation {
        warn("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.");
        hc.memory_reservation = 0;
    }
    if hc.memory_reservation > 0 && hc.memory_reservation < MIN_MEMORY {
        return bad("Minimum memory reservation allowed is 6MB");
    }
    if hc.memory > 0 && hc.memory_reservation > 0 && hc.memory < hc.memory_reservation {
        return bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        );
    }
    // Kernel memory (API < 1.42 only; newer requests have it zeroed): Docker 20.10's minimum,
    // then discarded because no kernel berth supports enforces it any more (runc 1.1 ignores
    // it, cgroup v1 `memory.kmem.limit_in_bytes` refuses writes since Linux 6.1).
    if hc.kernel_memory > 0 && hc.kernel_memory < MIN_MEMORY {
        return bad("Minimum kernel memory limit allowed is 6MB");
    }
    if hc.kernel_memory > 0 {
        warn("Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.");
        hc.kernel_memory = 0;
    }
    if hc.kernel_memory_tcp > 0 {
        warn("Your kernel does not support kernel memory TCP limit capabilities or the cgroup is not mounted. Limitation discarded.");
        hc.kernel_memory_tcp = 0;
    }
    if hc.oom_kill_disable.is_some() && !host.oom_kill_disable {
        if hc.oom_kill_disable == Some(true) {
            warn("Your kernel does not support OomKillDisable. OomKillDisable discarded.");
        }
        hc.oom_kill_disable = None;
    }
    if hc.oom_kill_disable == Some(true) && hc.memory == 0 {
        warn("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.");
    }
    if hc.pids_limit.is_some() && !host.pids {
        if hc.pids_limit.unwrap_or(0) > 0 {
            warn("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.");
        }
        hc.pids_limit = None;
    }

    // CPU.
    if hc.nano_cpus > 0 && hc.cpu_period > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set");
    }
    if hc.nano_cpus > 0 && hc.cpu_quota > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
    }
    if hc.nano_cpus > 0 && !host.cpu_cfs {
        return bad("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted");
    }
    if hc.nano_cpus != 0 && (hc.nano_cpus < 0 || hc.nano_cpus > host.ncpu * 1_000_000_000) {
        let nc = host.ncpu;
        return bad(format!(
            "range of CPUs is from 0.01 to {nc}.00, as there are only {nc} CPUs available"
        ));
    }
    if hc.cpu_shares > 0 && !host.cpu_shares {
        warn("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.");
        hc.cpu_shares = 0;
    }
    if (hc.cpu_period != 0 || hc.cpu_quota != 0) && !host.cpu_cfs {
        warn("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.");
        hc.cpu_period = 0;
        hc.cpu_quota = 0;
    }
    if hc.cpu_period != 0 && !(1000..=1_000_000).contains(&hc.cpu_period) {
        return bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        );
    }
    if hc.cpu_quota > 0 && hc.cpu_quota < 1000 {
        return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    }
    if hc.cpu_percent > 0 {
        warn("linux does not support CPU percent. Percent discarded.");
        hc.cpu_percent = 0;
    }
    if hc.cpu_count > 0 {
        warn("linux does not support CPU count. Count discarded.");
        hc.cpu_count = 0;
    }

    // cpuset.
    if (!hc.cpuset_cpus.is_empty() || !hc.cpuset_mems.is_empty()) && !host.cpuset {
        warn("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.");
        hc.cpuset_cpus.clear();
        hc.cpuset_mems.clear();
    }
    match cpuset_available(&hc.cpuset_cpus, &host.cpus) {
        Err(e) => {
            return bad(format!(
                "Invalid value {} for cpuset cpus: {e}",
                hc.cpuset_cpus
            ))
        }
        Ok(false) => {
            return bad(format!(
                "Requested CPUs are not available - requested {}, available: {}",
                hc.cpuset_cpus, host.cpus
            ))
        }
        Ok(true) => {}
    }
    match cpuset_available(&hc.cpuset_mems, &host.mems) {
        Err(e) => {
            return bad(format!(
                "Invalid value {} for cpuset mems: {e}",
                hc.cpuset_mems
            ))
        }
        Ok(false) => {
            return bad(format!(
                "Requested memory nodes are not available - requested {}, available: {}",
                hc.cpuset_mems, host.mems
            ))
        }
        Ok(true) => {}
    }

    // Block I/O.
    if hc.blkio_weight > 0 && !host.blkio_weight {
        warn("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.");
        hc.blkio_weight = 0;
    }
    if hc.blkio_weight > 0 && !(10..=1000).contains(&hc.blkio_weight) {
        return bad("Range of blkio weight is from 10 to 1000");
    }
    if hc.io_maximum_bandwidth != 0 || hc.io_maximum_iops != 0 {
        return bad(
            "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps",
        );
    }
    let discard =
        |list: &mut Option<Vec<_>>, supported: bool, w: &str, warn: &mut dyn FnMut(&str)| {
            if list.as_ref().is_some_and(|l: &Vec<_>| !l.is_empty()) && !supported {
                warn(w);
                *list = Some(Vec::new());
            }
        };
    if hc
        .blkio_weight_device
        .as_ref()
        .is_some_and(|l| !l.is_empty())
        && !host.blkio_weight_device
    {
        warn("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.");
        hc.blkio_weight_device = Some(Vec::new());
    }
    discard(
        &mut hc.blkio_device_read_bps,
        host.blkio_read_bps,
        "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.",
        &mut warn,
    );
    discard(
        &mut hc.blkio_device_write_bps,
        host.blkio_write_bps,
        "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.",
        &mut warn,
    );
    discard(
        &mut hc.blkio_device_read_iops,
        host.blkio_read_iops,
        "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.",
        &mut warn,
    );
    discard(
        &mut hc.blkio_device_write_iops,
        host.blkio_write_iops,
        "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.",
        &mut warn,
    );

    // Settings checked next to the resources (verifyPlatformContainerSettings, runconfig).
    if hc.shm_size < 0 {
        return bad("SHM size can not be less than 0");
    }
    if hc.oom_score_adj < -1000 || hc.oom_score_adj > 1000 {
        return bad(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        ));
    }
    if (hc.cpu_realtime_period != 0 || hc.cpu_realtime_runtime != 0) && !host.cpu_realtime {
        return bad("kernel does not support CPU real-time scheduler");
    }
    if hc.cpu_realtime_period != 0
        && hc.cpu_realtime_runtime != 0
        && hc.cpu_realtime_runtime > hc.cpu_realtime_period
    {
        return bad("cpu real-time runtime cannot be higher than cpu real-time period");
    }
    if host.cpu_shares && hc.cpu_shares < 0 {
        return bad(format!(
            "invalid CPU shares ({}): value must be a positive integer",
            hc.cpu_shares
        ));
    }
    Ok(warnings)
}

/// moby's `isCpusetListAvailable`: every CPU (or memory node) of `requested` is in
/// `available`. Lists are bounded (CVE-2018-20699: a huge range must not exhaust memory).
fn cpuset_available(requested: &str, available: &str) -> Result<bool, String> {
    if requested.is_empty() {
        return Ok(true);
    }
    let avail = parse_uint_list(available, 0).unwrap_or_default();
    let max = avail.iter().copied().max().unwrap_or(0).max(8192);
    let want = parse_uint_list(requested, max)?;
    Ok(want.iter().all(|c| avail.contains(c)))
}

/// A cgroup CPU/node list (`0-2,4`). `max` bounds the values when non-zero.
fn parse_uint_list(val: &str, max: u64) -> Result<std::collections::BTreeSet<u64>, String> {
    let mut out = std::collections::BTreeSet::new();
    if val.is_empty() {
        return Ok(out);
    }
    let invalid = || format!("invalid format: {val}");
    let num = |s: &str| s.parse::<u64>().map_err(|_| invalid());
    let bounded = |v: u64| {
        if max != 0 && v > max {
            Err(format!("value of out range, maximum is {max}"))
        } else {
            Ok(v)
        }
    };
    for part in val.split(',') {
        match part.split_once('-') {
            None => {
                out.insert(bounded(num(part)?)?);
            }
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return Err(invalid());
                }
                bounded(b)?;
                out.extend(a..=b);
            }
        }
    }
    Ok(out)
}

/// `--storage-opt`: berth's overlay2 store has no per-container quota (it needs project quotas
/// on xfs, which berth does not set up), so a `size` is refused with dockerd's overlay2
/// message, and unknown keys with its parser's.
pub(crate) fn verify_storage_opt(hc: &HostConfig) -> Result<(), ApiError> {
    let Some(opts) = hc.storage_opt.as_ref().filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    if opts.keys().any(|k| k.eq_ignore_ascii_case("size")) {
        return Err(ApiError::internal(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        ));
    }
    let key = opts.keys().next().map(|k| k.to_ascii_lowercase());
    Err(ApiError::internal(format!(
        "Unknown option {}",
        key.unwrap_or_default()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> HostSupport {
        HostSupport {
            memory: true,
            swap: true,
            memory_reservation: true,
            swappiness: true,
            oom_kill_disable: true,
            pids: true,
            cpu_shares: true,
            cpu_cfs: true,
            cpu_realtime: true,
            cpuset: true,
            cpus: "0-1".into(),
            mems: "0".into(),
            blkio_weight: true,
            blkio_weight_device: true,
            blkio_read_bps: true,
            blkio_write_bps: true,
            blkio_read_iops: true,
            blkio_write_iops: true,
            ncpu: 2,
        }
    }

    /// Docker's answers, field by field (checked against dockerd 20.10 and moby's current
    /// source; where they differ, the current engine's).
    #[test]
    fn docker_resource_rules() {
        type Set = fn(&mut HostConfig);
        let table: &[(&str, Set, Option<&str>)] = &[
            ("memory -1", |h| h.memory = -1, Some("Minimum memory limit allowed is 6MB")),
            ("memory 1000", |h| h.memory = 1000, Some("Minimum memory limit allowed is 6MB")),
            ("memory 6MB", |h| h.memory = MIN_MEMORY, None),
            ("swap < memory", |h| { h.memory = 10 << 20; h.memory_swap = 8 << 20 },
                Some("Minimum memoryswap limit should be larger than memory limit, see usage")),
            ("swap alone", |h| h.memory_swap = 10 << 20,
                Some("You should always set the Memory limit when using Memoryswap limit, see usage")),
            ("swap -1", |h| { h.memory = 10 << 20; h.memory_swap = -1 }, None),
            ("swap -5 (unlimited)", |h| h.memory_swap = -5, None),
            ("reservation 100", |h| h.memory_reservation = 100,
                Some("Minimum memory reservation allowed is 6MB")),
            ("reservation -5 (unset)", |h| h.memory_reservation = -5, None),
            ("reservation > memory", |h| { h.memory = 8 << 20; h.memory_reservation = 10 << 20 },
                Some("Minimum memory limit can not be less than memory reservation limit, see usage")),
            ("kernel memory 100", |h| h.kernel_memory = 100,
                Some("Minimum kernel memory limit allowed is 6MB")),
            ("kernel memory -5", |h| h.kernel_memory = -5, None),
            ("swappiness 101", |h| h.memory_swappiness = Some(101),
                Some("Invalid value: 101, valid memory swappiness range is 0-100")),
            ("swappiness -2", |h| h.memory_swappiness = Some(-2),
                Some("Invalid value: -2, valid memory swappiness range is 0-100")),
            ("swappiness -1 (default)", |h| h.memory_swappiness = Some(-1), None),
            ("nano cpus -1", |h| h.nano_cpus = -1,
                Some("range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available")),
            ("nano cpus 100", |h| h.nano_cpus = 100_000_000_000,
                Some("range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available")),
            ("nano cpus and period", |h| { h.nano_cpus = 1_000_000_000; h.cpu_period = 100_000 },
                Some("Conflicting options: Nano CPUs and CPU Period cannot both be set")),
            ("nano cpus and quota", |h| { h.nano_cpus = 1_000_000_000; h.cpu_quota = 50_000 },
                Some("Conflicting options: Nano CPUs and CPU Quota cannot both be set")),
            ("cpu shares -5", |h| h.cpu_shares = -5,
                Some("invalid CPU shares (-5): value must be a positive integer")),
            ("cpu shares 1024", |h| h.cpu_shares = 1024, None),
            ("cpu quota 500", |h| h.cpu_quota = 500,
                Some("CPU cfs quota can not be less than 1ms (i.e. 1000)")),
            ("cpu quota -5 (unlimited)", |h| h.cpu_quota = -5, None),
            ("cpu period -5", |h| h.cpu_period = -5,
                Some("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")),
            ("cpu period 2s", |h| h.cpu_period = 2_000_000,
                Some("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")),
            ("blkio weight 5", |h| h.blkio_weight = 5, Some("Range of blkio weight is from 10 to 1000")),
            ("blkio weight 2000", |h| h.blkio_weight = 2000, Some("Range of blkio weight is from 10 to 1000")),
            ("blkio weight 500", |h| h.blkio_weight = 500, None),
            ("pids -5 (unlimited)", |h| h.pids_limit = Some(-5), None),
            ("shm -1", |h| h.shm_size = -1, Some("SHM size can not be less than 0")),
            ("oom score 1001", |h| h.oom_score_adj = 1001,
                Some("Invalid value 1001, range for oom score adj is [-1000, 1000]")),
            ("oom score -1001", |h| h.oom_score_adj = -1001,
                Some("Invalid value -1001, range for oom score adj is [-1000, 1000]")),
            ("rt runtime > period", |h| { h.cpu_realtime_period = 1000; h.cpu_realtime_runtime = 2000 },
                Some("cpu real-time runtime cannot be higher than cpu real-time period")),
            ("cpuset 5", |h| h.cpuset_cpus = "5".into(),
                Some("Requested CPUs are not available - requested 5, available: 0-1")),
            ("cpuset x", |h| h.cpuset_cpus = "x".into(),
                Some("Invalid value x for cpuset cpus: invalid format: x")),
            ("cpuset huge", |h| h.cpuset_cpus = "1-9223372036854775807".into(),
                Some("Invalid value 1-9223372036854775807 for cpuset cpus: value of out range, maximum is 8192")),
            ("cpuset mems 1", |h| h.cpuset_mems = "1".into(),
                Some("Requested memory nodes are not available - requested 1, available: 0")),
            ("cpuset 0-1", |h| h.cpuset_cpus = "0-1".into(), None),
            ("io max", |h| h.io_maximum_iops = 5,
                Some("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")),
        ];
        for (name, set, want) in table {
            let mut hc = HostConfig::default();
            set(&mut hc);
            let got = verify(&mut hc, &full(), false);
            match (want, got) {
                (None, Ok(_)) => {}
                (Some(m), Err(e)) => {
                    assert_eq!(e.status.as_u16(), 400, "{name}");
                    assert_eq!(&e.message, m, "{name}");
                }
                (want, got) => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn update_and_unsupported_hosts() {
        // Update may set the swap limit alone.
        let mut hc = HostConfig {
            memory_swap: 20 << 20,
            ..Default::default()
        };
        assert!(verify(&mut hc, &full(), true).is_ok());
        // What the host cannot enforce is discarded with Docker's warning.
        let host = HostSupport {
            swap: false,
            blkio_weight: false,
            swappiness: false,
            ..full()
        };
        let mut hc = HostConfig {
            memory: 10 << 20,
            blkio_weight: 5,
            memory_swappiness: Some(10),
            ..Default::default()
        };
        let w = verify(&mut hc, &host, false).unwrap();
        assert_eq!(hc.memory_swap, -1);
        assert_eq!(hc.blkio_weight, 0);
        assert_eq!(hc.memory_swappiness, None);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("Memory limited without swap"));
        // Kernel memory is never enforced: discarded with a warning.
        let mut hc = HostConfig {
            kernel_memory: 10 << 20,
            ..Default::default()
        };
        let w = verify(&mut hc, &full(), false).unwrap();
        assert_eq!(hc.kernel_memory, 0);
        assert!(w[0].contains("kernel memory limit"), "{w:?}");
        // No real-time scheduler support.
        let host = HostSupport {
            cpu_realtime: false,
            ..full()
        };
        let mut hc = HostConfig {
            cpu_realtime_runtime: 1000,
            ..Default::default()
        };
        assert_eq!(
            verify(&mut hc, &host, false).unwrap_err().message,
            "kernel does not support CPU real-time scheduler"
        );
    }

    #[test]
    fn storage_options() {
        let with = |k: &str| HostConfig {
            storage_opt: Some([(k.to_string(), "120G".to_string())].into()),
            ..Default::default()
        };
        let e = verify_storage_opt(&with("size")).unwrap_err();
        assert_eq!(e.status.as_u16(), 500);
        assert_eq!(
            e.message,
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
        );
        assert_eq!(
            verify_storage_opt(&with("Foo")).unwrap_err().message,
            "Unknown option foo"
        );
        assert!(verify_storage_opt(&HostConfig::default()).is_ok());
    }

    #[test]
    fn this_host_is_probed() {
        if let Ok(mode) = berth_runtime::cgroups::detect_mode() {
            let h = HostSupport::detect_at(Path::new("/sys/fs/cgroup"), mode);
            assert!(h.memory && h.pids && h.cpu_shares && h.cpu_cfs, "{h:?}");
            assert!(h.ncpu >= 1);
        }
    }

    proptest::proptest! {
        #[test]
        fn cpu_lists_never_panic(s in "[0-9,\\-]{0,24}") {
            let _ = cpuset_available(&s, "0-3");
        }
    }
}
