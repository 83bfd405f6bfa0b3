//! The supervisor binary: a read-only bind mount of the berth binary at
//! `<exec-root>/berth-shim`, made once per daemon start.
//!
//! Supervisors are exec'd from this path, never from the daemon's own path: a container that
//! somehow reached the supervisor's executable (CVE-2019-5736 style) finds a read-only mount,
//! and upgrading the berth binary on disk never changes running supervisors. A bind mount costs
//! nothing per container (a per-container copy would cost megabytes and milliseconds each).

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

pub const SHIM_NAME: &str = "berth-shim";

/// Makes `<exec_root>/berth-shim` a fresh read-only bind mount of `source` and returns its path.
pub fn prepare(source: &Path, exec_root: &Path) -> Result<PathBuf, String> {
    let source = std::fs::canonicalize(source)
        .map_err(|e| format!("cannot resolve the berth binary {}: {e}", source.display()))?;
    let target = exec_root.join(SHIM_NAME);
    // A previous daemon's mount may point at an older binary: replace it. Running supervisors
    // keep their own mapping of the old file, so detaching it is harmless.
    while is_mount_point(&target) {
        if let Err(e) = umount2(&target, MntFlags::MNT_DETACH) {
            return Err(format!("cannot unmount the old {}: {e}", target.display()));
        }
    }
    if !target.exists() {
        std::fs::write(&target, b"")
            .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    }
    mount(
        Some(&source),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind mount of {} failed: {e}", source.display()))?;
    mount(
        None::<&str>,
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID,
        None::<&str>,
    )
    .map_err(|e| format!("read-only remount of {} failed: {e}", target.display()))?;
    Ok(target)
}

/// Removes the mount (daemon shutdown, tests).
pub fn release(exec_root: &Path) {
    let target = exec_root.join(SHIM_NAME);
    while is_mount_point(&target) {
        if umount2(&target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

/// Whether `p` is a mount point, from /proc/self/mountinfo.
pub fn is_mount_point(p: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = p.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(|mp| unescape_mountinfo(mp) == want)
            .unwrap_or(false)
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo(r"/a\134b"), r"/a\b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/end\"), r"/end\");
    }
}
