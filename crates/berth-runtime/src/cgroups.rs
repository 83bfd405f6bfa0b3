//! cgroup mode detection (v1 / v2 / hybrid), OOM-kill counters and small usage readers for a
//! container's cgroup, addressed by the spec's `cgroupsPath` (e.g. `/berth/<id>`).

use std::io;
use std::path::{Path, PathBuf};

/// Where cgroups are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only cgroup v1 controllers.
    V1,
    /// cgroup v1 controllers plus an (empty-ish) cgroup2 hierarchy at `/sys/fs/cgroup/unified`.
    Hybrid,
    /// Unified cgroup v2.
    V2,
}

fn fs_magic(p: &Path) -> io::Result<i64> {
    let st = nix::sys::statfs::statfs(p).map_err(io::Error::from)?;
    Ok(st.filesystem_type().0 as i64)
}

/// Detects the layout under `root` (normally [`CGROUP_ROOT`]).
pub fn detect_mode_at(root: &Path) -> io::Result<CgroupMode> {
    let magic = fs_magic(root)?;
    if magic == CGROUP2_SUPER_MAGIC {
        return Ok(CgroupMode::V2);
    }
    if magic != TMPFS_MAGIC {
        return Err(io::Error::other(format!(
            "{} is neither a cgroup2 mount nor a tmpfs of cgroup v1 controllers",
            root.display()
        )));
    }
    match fs_magic(&root.join("unified")) {
        Ok(m) if m == CGROUP2_SUPER_MAGIC => Ok(CgroupMode::Hybrid),
        _ => Ok(CgroupMode::V1),
    }
}

/// Detects the host's layout.
pub fn detect_mode() -> io::Result<CgroupMode> {
    detect_mode_at(Path::new(CGROUP_ROOT))
}

fn rel(cgroups_path: &str) -> &str {
    cgroups_path.trim_start_matches('/')
}

/// The directory of `controller` (v1) or of the unified group (v2) for `cgroups_path`.
pub fn controller_dir(mode: CgroupMode, controller: &str, cgroups_path: &str) -> PathBuf {
    match mode {
        CgroupMode::V2 => Path::new(CGROUP_ROOT).join(rel(cgroups_path)),
        CgroupMode::V1 | CgroupMode::Hybrid => Path::new(CGROUP_ROOT)
            .join(controller)
            .join(rel(cgroups_path)),
    }
}

/// Finds `key <value>` in a flat-keyed cgroup file (memory.events, memory.oom_control, memory.stat …).
pub fn parse_keyed(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

fn read_trim(p: &Path) -> io::Result<String> {
    Ok(std::fs::read_to_string(p)?.trim().to_string())
}

/// Number of OOM kills in the container's memory cgroup (v1 `memory.oom_control` `oom_kill`,
/// v2 `memory.events` `oom_kill`). Must be read before the runtime deletes the cgroup.
pub fn oom_kill_count(mode: CgroupMode, cgroups_path: &str) -> io::Result<u64> {
    let dir = controller_dir(mode, "memory", cgroups_path);
    let (file, key) = match mode {
        CgroupMode::V2 => ("memory.events", "oom_kill"),
        _ => ("memory.oom_control", "oom_kill"),
    };
    let content = std::fs::read_to_string(dir.join(file))?;
    parse_keyed(&content, key).ok_or_else(|| {
        io::Error::other(format!(
            "{file} has no {key} counter (kernel older than 4.13?)"
        ))
    })
}

/// Current memory usage in bytes.
pub fn memory_usage(mode: CgroupMode, cgroups_path: &str) -> io::Result<u64> {
    let dir = controller_dir(mode, "memory", cgroups_path);
    let f = match mode {
        CgroupMode::V2 => "memory.current",
        _ => "memory.usage_in_bytes",
    };
    parse_u64(&read_trim(&dir.join(f))?)
}

/// Memory limit in bytes (None = unlimited).
pub fn memory_limit(mode: CgroupMode, cgroups_path: &str) -> io::Result<Option<u64>> {
    let dir = controller_dir(mode, "memory", cgroups_path);
    let f = match mode {
        CgroupMode::V2 => "memory.max",
        _ => "memory.limit_in_bytes",
    };
    let s = read_trim(&dir.join(f))?;
    if s == "max" {
        return Ok(None);
    }
    let v = parse_u64(&s)?;
    // v1 reports "unlimited" as a huge page-aligned number.
    Ok((v < (1u64 << 62)).then_some(v))
}

/// Total CPU time consumed, in nanoseconds.
pub fn cpu_usage_ns(mode: CgroupMode, cgroups_path: &str) -> io::Result<u64> {
    match mode {
        CgroupMode::V2 => {
            let s =
                std::fs::read_to_string(controller_dir(mode, "", cgroups_path).join("cpu.stat"))?;
            parse_keyed(&s, "usage_usec")
                .map(|us| us * 1000)
                .ok_or_else(|| io::Error::other("cpu.stat has no usage_usec"))
        }
        _ => parse_u64(&read_trim(
            &controller_dir(mode, "cpuacct", cgroups_path).join("cpuacct.usage"),
        )?),
    }
}

/// Number of tasks in the cgroup.
pub fn pids_current(mode: CgroupMode, cgroups_path: &str) -> io::Result<u64> {
    parse_u64(&read_trim(
        &controller_dir(mode, "pids", cgroups_path).join("pids.current"),
    )?)
}

fn parse_u64(s: &str) -> io::Result<u64> {
    s.parse()
        .map_err(|_| io::Error::other(format!("unexpected cgroup value {s:?}")))
}

/// True when the memory controller accounts swap (v1 `memory.memsw.*` exists; v2
/// `memory.swap.max` exists at the root's children, assumed on when v2).
pub fn swap_accounting(mode: CgroupMode) -> bool {
    match mode {
        CgroupMode::V2 => true,
        _ => Path::new(CGROUP_ROOT)
            .join("memory/memory.memsw.limit_in_bytes")
            .exists(),
    }
}

/// moby's `initCPURtController` (cgroup v1): gives `parent` and each of its ancestors in the
/// cpu hierarchy the daemon's real-time period and runtime, top down (a child can only get a
/// real-time budget its parent has), creating the groups as needed. Values of 0 are left
/// alone.
pub fn init_cpu_rt(parent: &str, period: i64, runtime: i64) -> io::Result<()> {
    init_cpu_rt_at(&Path::new(CGROUP_ROOT).join("cpu"), parent, period, runtime)
}

fn init_cpu_rt_at(cpu_root: &Path, parent: &str, period: i64, runtime: i64) -> io::Result<()> {
    // Lexically cleaned, as moby's filepath.Clean("/" + parent): never above the root.
    let mut comps: Vec<&str> = Vec::new();
    for c in rel(parent).split('/') {
        match c {
            "" | "." => {}
            ".." => {
                comps.pop();
            }
            c => comps.push(c),
        }
    }
    let mut dir = cpu_root.to_path_buf();
    for comp in comps {
        dir.push(comp);
        std::fs::create_dir_all(&dir)?;
        for (value, file) in [(period, "cpu.rt_period_us"), (runtime, "cpu.rt_runtime_us")] {
            if value != 0 {
                std::fs::write(dir.join(file), value.to_string()).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("writing {}: {e}", dir.join(file).display()),
                    )
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_rt_budget_is_written_top_down() {
        let t = tempfile::tempdir().unwrap();
        super::init_cpu_rt_at(t.path(), "/a/../b/c", 1000, 500).unwrap();
        assert!(!t.path().join("a").exists());
        super::init_cpu_rt_at(t.path(), "../../x", 0, 7).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("x/cpu.rt_runtime_us")).unwrap(),
            "7"
        );
        assert!(!t.path().join("x/cpu.rt_period_us").exists());
        for d in ["b", "b/c"] {
            let p = t.path().join(d);
            assert_eq!(
                std::fs::read_to_string(p.join("cpu.rt_period_us")).unwrap(),
                "1000"
            );
            assert_eq!(
                std::fs::read_to_string(p.join("cpu.rt_runtime_us")).unwrap(),
                "500"
            );
        }
        assert!(!t.path().join("cpu.rt_runtime_us").exists());
    }

    use super::*;

    #[test]
    fn keyed_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_keyed(v1, "oom_kill"), Some(3));
        assert_eq!(parse_keyed(v1, "oom_kill_disable"), Some(0));
        let v2 = "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_keyed(v2, "oom_kill"), Some(1));
        assert_eq!(parse_keyed(v2, "nope"), None);
    }

    #[test]
    fn paths() {
        assert_eq!(
            controller_dir(CgroupMode::V1, "memory", "/berth/abc"),
            Path::new("/sys/fs/cgroup/memory/berth/abc")
        );
        assert_eq!(
            controller_dir(CgroupMode::V2, "memory", "/berth/abc"),
            Path::new("/sys/fs/cgroup/berth/abc")
        );
    }

    #[test]
    fn detects_this_host() {
        // Whatever the host is, detection must succeed on a Linux machine with cgroups.
        let m = detect_mode().unwrap();
        if Path::new("/sys/fs/cgroup/memory").exists() {
            assert_ne!(m, CgroupMode::V2);
        }
    }
}
