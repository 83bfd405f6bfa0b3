//! Docker's `--user` resolution inside a container rootfs, and working-directory creation.
//!
//! Every file of the rootfs is opened with `openat2(RESOLVE_IN_ROOT)` relative to an `O_PATH`
//! handle of the rootfs, so an image symlink such as `/etc/passwd -> /host/file` or
//! `/work -> ../../tmp/x` resolves inside the rootfs and never reaches host files.

use crate::sys::{open_in_root, open_root};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Largest passwd/group file read (a hostile image cannot make us read gigabytes).
const MAX_DB_FILE: u64 = 16 * 1024 * 1024;

/// The resolved identity of the container process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids (group membership, then `--group-add`), without duplicates.
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd, when the user has an entry.
    pub home: Option<String>,
    /// User name from passwd, when the user has an entry.
    pub name: Option<String>,
}

/// Errors of user resolution and workdir creation.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user name that is not in the image's /etc/passwd.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// A group name (in `--user`) that is not in /etc/group.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    /// A `--group-add` name that is not in /etc/group (runc's wording).
    #[error("Unable to find group {0}: no matching entries in group file")]
    NoAdditionalGroup(String),
    /// A numeric id outside 0..=2147483647.
    #[error("uids and gids must be in range 0-2147483647: {0}")]
    Range(String),
    /// Reading the rootfs failed.
    #[error("reading {path} in the container rootfs: {source}")]
    Io {
        /// Path inside the rootfs.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The working directory exists but is not a directory.
    #[error("cannot create working directory {0}: a path component is not a directory")]
    NotADirectory(String),
    /// Too many symlinks while creating the working directory.
    #[error("cannot create working directory {0}: too many levels of symbolic links")]
    SymlinkLoop(String),
}

/// One line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// One line of /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// gid.
    pub gid: u32,
    /// Member user names.
    pub members: Vec<String>,
}

const MAX_ID: u64 = 2_147_483_647;

fn parse_id(s: &str) -> Option<u32> {
    let v: u64 = s.parse().ok()?;
    (v <= MAX_ID).then_some(v as u32)
}

/// Parses /etc/passwd content. Blank, comment and malformed lines are skipped.
pub fn parse_passwd(content: &str) -> Vec<PasswdEntry> {
    content
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: parse_id(f[2])?,
                gid: parse_id(f[3])?,
                home: f.get(5).unwrap_or(&"").to_string(),
                shell: f.get(6).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// Parses /etc/group content. Blank, comment and malformed lines are skipped.
pub fn parse_group(content: &str) -> Vec<GroupEntry> {
    content
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: parse_id(f[2])?,
                members,
            })
        })
        .collect()
}

/// Reads a file inside the rootfs (confined); a missing file reads as empty.
fn read_in_root(root_fd: &std::os::fd::OwnedFd, path: &str) -> Result<String, UserError> {
    match open_in_root(root_fd, Path::new(path), OFlag::O_RDONLY | OFlag::O_NOCTTY) {
        Ok(fd) => {
            let f = std::fs::File::from(fd);
            let mut s = Vec::new();
            f.take(MAX_DB_FILE)
                .read_to_end(&mut s)
                .map_err(|source| UserError::Io {
                    path: path.to_string(),
                    source,
                })?;
            Ok(String::from_utf8_lossy(&s).into_owned())
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(String::new()),
        Err(source) => Err(UserError::Io {
            path: path.to_string(),
            source,
        }),
    }
}

fn io_root(rootfs: &Path, source: io::Error) -> UserError {
    UserError::Io {
        path: rootfs.display().to_string(),
        source,
    }
}

/// Resolves Docker's `--user` value (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) against
/// the rootfs' /etc/passwd and /etc/group, adding `--group-add` entries (names or numbers).
pub fn resolve(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<ResolvedUser, UserError> {
    let root_fd = open_root(rootfs).map_err(|e| io_root(rootfs, e))?;
    let passwd = parse_passwd(&read_in_root(&root_fd, "/etc/passwd")?);
    let groups = parse_group(&read_in_root(&root_fd, "/etc/group")?);
    resolve_with(&passwd, &groups, spec, group_add)
}

/// [`resolve`] on already-parsed databases (pure; used by tests and by callers that cache).
pub fn resolve_with(
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
    spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, UserError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    let numeric_user = if user_arg.is_empty() {
        Some(0)
    } else if user_arg.bytes().all(|b| b.is_ascii_digit()) {
        Some(parse_id(user_arg).ok_or_else(|| UserError::Range(user_arg.to_string()))?)
    } else {
        None
    };
    let entry = passwd.iter().find(|p| match numeric_user {
        Some(uid) => p.uid == uid,
        None => p.name == user_arg,
    });
    let mut out = match (entry, numeric_user) {
        (Some(p), _) => ResolvedUser {
            uid: p.uid,
            gid: p.gid,
            additional_gids: Vec::new(),
            home: Some(p.home.clone()),
            name: Some(p.name.clone()),
        },
        (None, Some(uid)) => ResolvedUser {
            uid,
            gid: 0,
            ..Default::default()
        },
        (None, None) => return Err(UserError::NoUser(user_arg.to_string())),
    };
    if !group_arg.is_empty() {
        let numeric = group_arg.bytes().all(|b| b.is_ascii_digit());
        let gid = if numeric {
            parse_id(group_arg).ok_or_else(|| UserError::Range(group_arg.to_string()))?
        } else {
            groups
                .iter()
                .find(|g| g.name == group_arg)
                .map(|g| g.gid)
                .ok_or_else(|| UserError::NoGroup(group_arg.to_string()))?
        };
        out.gid = gid;
    } else if let Some(name) = &out.name {
        // Supplementary groups come from membership only when no group was given.
        for g in groups {
            if g.members.iter().any(|m| m == name) && !out.additional_gids.contains(&g.gid) {
                out.additional_gids.push(g.gid);
            }
        }
    }
    for ag in group_add {
        let gid = match groups.iter().find(|g| &g.name == ag) {
            Some(g) => g.gid,
            None if !ag.is_empty() && ag.bytes().all(|b| b.is_ascii_digit()) => {
                parse_id(ag).ok_or_else(|| UserError::Range(ag.clone()))?
            }
            None => return Err(UserError::NoAdditionalGroup(ag.clone())),
        };
        if !out.additional_gids.contains(&gid) {
            out.additional_gids.push(gid);
        }
    }
    Ok(out)
}

/// Creates the working directory `workdir` (an absolute container path) inside `rootfs` if it
/// does not exist, like Docker does at start. Every step resolves inside the rootfs: existing
/// symlinks are followed *within* the rootfs (never to the host), missing components are made
/// with `mkdirat` (mode 0755, owned by the caller) relative to a directory handle that was itself
/// resolved inside the rootfs.
pub fn ensure_workdir(rootfs: &Path, workdir: &Path) -> Result<(), UserError> {
    let root_fd = open_root(rootfs).map_err(|e| io_root(rootfs, e))?;
    let shown = workdir.display().to_string();
    let io = |source: io::Error| UserError::Io {
        path: shown.clone(),
        source,
    };
    let mut target: PathBuf = workdir.to_path_buf();
    let mut hops = 0;
    'outer: loop {
        match open_in_root(&root_fd, &target, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(_) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(UserError::NotADirectory(shown))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(UserError::SymlinkLoop(shown))
            }
            Err(e) => return Err(io(e)),
        }
        // Walk the components to find the first missing one (or a dangling symlink).
        let comps: Vec<Component> = target.components().collect();
        let mut prefix = PathBuf::from("/");
        for (i, c) in comps.iter().enumerate() {
            let name: &OsStr = match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
                Component::ParentDir => OsStr::new(".."),
                Component::Normal(n) => n,
            };
            let here = prefix.join(name);
            match open_in_root(&root_fd, &here, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
                Ok(fd) => {
                    let st = nix::sys::stat::fstat(&fd).map_err(|e| io(e.into()))?;
                    let kind = st.st_mode & libc::S_IFMT;
                    if kind == libc::S_IFLNK {
                        hops += 1;
                        if hops > 40 {
                            return Err(UserError::SymlinkLoop(shown));
                        }
                        let link = nix::fcntl::readlinkat(&fd, "").map_err(|e| io(e.into()))?;
                        let link = Path::new(&link);
                        let mut next = if link.is_absolute() {
                            link.to_path_buf()
                        } else {
                            prefix.join(link)
                        };
                        for rest in &comps[i + 1..] {
                            next.push(rest.as_os_str());
                        }
                        target = next;
                        continue 'outer;
                    } else if kind != libc::S_IFDIR {
                        return Err(UserError::NotADirectory(shown));
                    }
                    prefix = here;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let parent =
                        open_in_root(&root_fd, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY)
                            .map_err(io)?;
                    match nix::sys::stat::mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                        Err(e) => return Err(io(e.into())),
                    }
                    // Re-run the loop: the next open either succeeds or finds the next gap.
                    hops += 1;
                    if hops > 4096 {
                        return Err(UserError::SymlinkLoop(shown));
                    }
                    continue 'outer;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    return Err(UserError::NotADirectory(shown))
                }
                Err(e) => return Err(io(e)),
            }
        }
        // Every component exists yet the whole path did not open: raced; try again.
        hops += 1;
        if hops > 4096 {
            return Err(UserError::SymlinkLoop(shown));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        # comment\n\
        \n\
        bad line\n\
        www-data:x:33:33:www-data:/var/www:/bin/false\n\
        nobody:x:65534:65534:nobody:/home:/bin/false\n";
    const GROUP: &str = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nwww-data:x:33:\nstaff:x:50:www-data,daemon\naudio:x:29:www-data\nnogroup:x:65534:\n";

    fn r(spec: &str, add: &[&str]) -> Result<ResolvedUser, UserError> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve_with(&parse_passwd(PASSWD), &parse_group(GROUP), spec, &add)
    }

    #[test]
    fn parses() {
        let p = parse_passwd(PASSWD);
        assert_eq!(p.len(), 4);
        assert_eq!(p[2].home, "/var/www");
        let g = parse_group(GROUP);
        assert_eq!(g[4].members, vec!["www-data", "daemon"]);
    }

    #[test]
    fn docker_user_forms() {
        let root = r("", &[]).unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(root.home.as_deref(), Some("/root"));
        let w = r("www-data", &[]).unwrap();
        assert_eq!(
            (w.uid, w.gid, w.additional_gids.clone()),
            (33, 33, vec![50, 29])
        );
        let n = r("33", &[]).unwrap();
        assert_eq!(n.name.as_deref(), Some("www-data"));
        let unknown = r("1234", &[]).unwrap();
        assert_eq!((unknown.uid, unknown.gid), (1234, 0));
        assert!(unknown.additional_gids.is_empty());
        let ng = r("www-data:staff", &[]).unwrap();
        assert_eq!((ng.uid, ng.gid), (33, 50));
        assert!(ng.additional_gids.is_empty());
        let nn = r("1000:1000", &[]).unwrap();
        assert_eq!((nn.uid, nn.gid), (1000, 1000));
        let name_gid = r("daemon:77", &[]).unwrap();
        assert_eq!((name_gid.uid, name_gid.gid), (1, 77));
        assert_eq!(
            r("foo", &[]).unwrap_err().to_string(),
            "unable to find user foo: no matching entries in passwd file"
        );
        assert_eq!(
            r("root:bar", &[]).unwrap_err().to_string(),
            "unable to find group bar: no matching entries in group file"
        );
        assert!(matches!(r("99999999999", &[]), Err(UserError::Range(_))));
    }

    #[test]
    fn group_add() {
        let u = r("", &["audio", "1234", "tty", "audio"]).unwrap();
        assert_eq!(u.additional_gids, vec![29, 1234, 5]);
        assert_eq!(
            r("", &["nosuch"]).unwrap_err().to_string(),
            "Unable to find group nosuch: no matching entries in group file"
        );
    }

    #[test]
    fn passwd_symlink_to_host_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // A host file the image tries to read through an absolute symlink.
        let host = dir.path().join("host-passwd");
        std::fs::write(&host, "evil:x:4242:4242::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(&host, root.join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve(&root, "evil", &[]),
            Err(UserError::NoUser(_))
        ));
        // Relative escape attempt too.
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../host-passwd", root.join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve(&root, "evil", &[]),
            Err(UserError::NoUser(_))
        ));
        // A real file works.
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::fs::write(root.join("etc/passwd"), "app:x:10:20::/app:/bin/sh\n").unwrap();
        let u = resolve(&root, "app", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (10, 20));
    }

    #[test]
    fn workdir_created_inside_even_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let host_dir = dir.path().join("host-dir");
        // absolute symlink escaping with ..
        std::os::unix::fs::symlink("/etc/../../host-dir", root.join("work")).unwrap();
        ensure_workdir(&root, Path::new("/work/sub")).unwrap();
        assert!(!host_dir.exists(), "created a directory on the host");
        assert!(root.join("host-dir/sub").is_dir());
        // relative symlink escaping
        std::os::unix::fs::symlink("../../../host-dir2", root.join("w2")).unwrap();
        ensure_workdir(&root, Path::new("/w2")).unwrap();
        assert!(!dir.path().join("host-dir2").exists());
        assert!(root.join("host-dir2").is_dir());
        // plain nested
        ensure_workdir(&root, Path::new("/a/b/c")).unwrap();
        assert!(root.join("a/b/c").is_dir());
        // existing
        ensure_workdir(&root, Path::new("/etc")).unwrap();
        // file in the way
        std::fs::write(root.join("file"), "x").unwrap();
        assert!(matches!(
            ensure_workdir(&root, Path::new("/file/x")),
            Err(UserError::NotADirectory(_))
        ));
        // loop
        std::os::unix::fs::symlink("/loop", root.join("loop")).unwrap();
        assert!(matches!(
            ensure_workdir(&root, Path::new("/loop/x")),
            Err(UserError::SymlinkLoop(_))
        ));
        // .. at the root stays at the root
        ensure_workdir(&root, Path::new("/../../../zz")).unwrap();
        assert!(root.join("zz").is_dir());
        assert!(!dir.path().parent().unwrap().join("zz").exists());
    }

    proptest! {
        #[test]
        fn passwd_parser_total(s in ".{0,300}") {
            let _ = parse_passwd(&s);
            let _ = parse_group(&s);
        }

        #[test]
        fn passwd_roundtrip(entries in proptest::collection::vec(("[a-z_][a-z0-9_-]{0,15}", 0u32..2_000_000, 0u32..2_000_000, "/[a-z/]{0,20}"), 0..10)) {
            let text: String = entries.iter().map(|(n, u, g, h)| format!("{n}:x:{u}:{g}:gecos:{h}:/bin/sh\n")).collect();
            let parsed = parse_passwd(&text);
            prop_assert_eq!(parsed.len(), entries.len());
            for (p, (n, u, g, h)) in parsed.iter().zip(&entries) {
                prop_assert_eq!(&p.name, n);
                prop_assert_eq!(p.uid, *u);
                prop_assert_eq!(p.gid, *g);
                prop_assert_eq!(&p.home, h);
            }
        }

        #[test]
        fn group_roundtrip(entries in proptest::collection::vec(("[a-z_][a-z0-9_-]{0,15}", 0u32..2_000_000, proptest::collection::vec("[a-z]{1,8}", 0..4)), 0..10)) {
            let text: String = entries.iter().map(|(n, g, m)| format!("{n}:x:{g}:{}\n", m.join(","))).collect();
            let parsed = parse_group(&text);
            prop_assert_eq!(parsed.len(), entries.len());
            for (p, (n, g, m)) in parsed.iter().zip(&entries) {
                prop_assert_eq!(&p.name, n);
                prop_assert_eq!(p.gid, *g);
                prop_assert_eq!(&p.members, m);
            }
        }

        #[test]
        fn resolve_never_panics(spec in ".{0,30}", add in proptest::collection::vec(".{0,10}", 0..3)) {
            let _ = resolve_with(&parse_passwd(PASSWD), &parse_group(GROUP), &spec, &add);
        }
    }
}
