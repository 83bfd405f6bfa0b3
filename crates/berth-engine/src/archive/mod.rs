//! The archive API (`docker cp`): `HEAD`/`GET`/`PUT /containers/{id}/archive`, with moby's
//! path rules (`PreserveTrailingDotOrSeparator`, the last component not followed by a stat,
//! `LinkTarget` fully resolved in the container, extraction into a directory that must exist,
//! read-only checks) and its messages.
//!
//! Every operation runs in a private view of the container's filesystem (see [`view`]) on a
//! thread of its own, with the container's operation lock held (no start, stop or removal in
//! between, as Docker locks the container), and resolves every path below a descriptor of the
//! container's root with `openat2(RESOLVE_IN_ROOT)`: nothing in the container, not even a
//! directory swapped for a symlink to `/` while the copy runs, can make the daemon read or
//! write the host. The daemon runs no helper program for it, from the container or elsewhere.

mod view;

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;

use berth_api::models::ContainerPathStat;
use berth_api::{ApiError, ArchivePutOptions, BodyStream, ByteStream};
use berth_image::fstree;
use chrono::{DateTime, Utc};
use rustix::fs::{self as rfs, AtFlags, FileType, OFlags};
use rustix::io::Errno;

use crate::container::{Container, ContainerRecord};
use crate::Engine;
use view::{ViewMount, ViewSpec};

// ----- moby's path helpers (go-archive `copy.go`, Go's `filepath`) -----

/// Go's `filepath.Clean`.
fn clean(p: &str) -> String {
    crate::volumes::mounts::clean_path(p)
}

fn has_trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}

fn specifies_current_dir(p: &str) -> bool {
    go_base(p) == "."
}

/// Go's `filepath.Base`.
fn go_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Go's `filepath.Dir`.
fn go_dir(p: &str) -> String {
    let cut = p.rfind('/').map_or(0, |i| i + 1);
    clean(&p[..cut])
}

/// moby's `PreserveTrailingDotOrSeparator`.
pub(crate) fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut c = cleaned.to_string();
    if !specifies_current_dir(&c) && specifies_current_dir(original) {
        if !has_trailing_sep(&c) {
            c.push('/');
        }
        c.push('.');
    }
    if !has_trailing_sep(&c) && has_trailing_sep(original) {
        c.push('/');
    }
    c
}

/// The absolute container path Docker works with for a request path.
pub(crate) fn abs_path(path: &str) -> String {
    preserve_trailing(&clean(&format!("/{path}")), path)
}

/// Whether the path asserts a directory (`…/` or `…/.`): then its last component is followed.
fn asserts_dir(p: &str) -> bool {
    has_trailing_sep(p) || specifies_current_dir(p)
}

/// Go's `os.FileMode` bits of a `st_mode`, as `X-Docker-Container-Path-Stat` carries them.
pub(crate) fn go_file_mode(st_mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode) {
        FileType::BlockDevice => DEVICE,
        FileType::CharacterDevice => DEVICE | CHAR_DEVICE,
        FileType::Directory => DIR,
        FileType::Fifo => NAMED_PIPE,
        FileType::Symlink => SYMLINK,
        FileType::Socket => SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= STICKY;
    }
    m
}

/// Go's `time.Time` JSON form (RFC 3339 with nanoseconds, trailing zeros dropped).
fn go_time(sec: i64, nsec: i64) -> String {
    let t =
        DateTime::<Utc>::from_timestamp(sec, nsec.clamp(0, 999_999_999) as u32).unwrap_or_default();
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nsec <= 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nsec:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

// ----- resolution inside the view -----

fn comps(p: &str) -> Vec<&str> {
    p.split('/').filter(|c| !c.is_empty()).collect()
}

/// moby's `FollowSymlinkInScope` / `EvalSymlinks` inside the root: every symlink of `path`
/// evaluated as if the root were `/`; the result is lexical and has no symlink. With
/// `must_exist` a missing component is ENOENT (EvalSymlinks); otherwise the rest is appended
/// as it is (FollowSymlinkInScope of a broken link).
fn follow_in_scope(root: BorrowedFd<'_>, path: &str, must_exist: bool) -> Result<String, Errno> {
    let mut resolved: Vec<String> = Vec::new();
    let mut queue: VecDeque<String> = comps(path).into_iter().map(str::to_string).collect();
    let mut links = 0;
    let mut missing = false;
    while let Some(c) = queue.pop_front() {
        match c.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        if missing {
            resolved.push(c);
            continue;
        }
        let parent = match fstree::open_in_root(
            root,
            resolved.join("/").as_bytes(),
            OFlags::PATH | OFlags::DIRECTORY,
        ) {
            Ok(p) => p,
            Err(e @ (Errno::NOENT | Errno::NOTDIR)) => {
                if must_exist {
                    return Err(e);
                }
                missing = true;
                resolved.push(c);
                continue;
            }
            Err(e) => return Err(e),
        };
        match rfs::readlinkat(&parent, c.as_str(), Vec::new()) {
            Ok(target) => {
                links += 1;
                if links > 255 {
                    return Err(Errno::LOOP);
                }
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    resolved.clear();
                }
                for (i, tc) in comps(&t).into_iter().enumerate() {
                    queue.insert(i, tc.to_string());
                }
            }
            Err(Errno::INVAL) => resolved.push(c),
            Err(e @ (Errno::NOENT | Errno::NOTDIR)) => {
                if must_exist {
                    return Err(e);
                }
                missing = true;
                resolved.push(c);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(format!("/{}", resolved.join("/")))
}

/// `lstat` of `abs` (its last component not followed unless the path asserts a directory).
fn lstat_in(root: BorrowedFd<'_>, abs: &str) -> Result<rfs::Stat, Errno> {
    if abs == "/" || asserts_dir(abs) {
        let fd = fstree::open_in_root(root, abs.as_bytes(), OFlags::PATH)?;
        return rfs::fstat(&fd);
    }
    let parent = fstree::open_in_root(
        root,
        go_dir(abs).as_bytes(),
        OFlags::PATH | OFlags::DIRECTORY,
    )?;
    rfs::statat(&parent, go_base(abs).as_str(), AtFlags::SYMLINK_NOFOLLOW)
}

/// moby's `containerFSView.Stat`.
fn stat_in(root: BorrowedFd<'_>, abs: &str) -> Result<ContainerPathStat, Errno> {
    let st = lstat_in(root, abs)?;
    let link_target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        follow_in_scope(root, abs, false)?
    } else {
        String::new()
    };
    Ok(ContainerPathStat {
        name: go_base(abs),
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: go_time(st.st_mtime, st.st_mtime_nsec as i64),
        link_target,
    })
}

/// User and group names from the container's own files (for tar headers).
fn id_names(root: BorrowedFd<'_>) -> fstree::IdNames {
    let read = |p: &str| -> String {
        fstree::open_in_root(root, p.as_bytes(), OFlags::RDONLY)
            .ok()
            .and_then(|fd| {
                use std::io::Read;
                let mut s = String::new();
                // Bounded: a huge or endless file in the container must not stall the copy.
                std::fs::File::from(fd)
                    .take(1 << 20)
                    .read_to_string(&mut s)
                    .ok()
                    .map(|_| s)
            })
            .unwrap_or_default()
    };
    fstree::IdNames::parse(&read("/etc/passwd"), &read("/etc/group"))
}

// ----- errors -----

enum CpError {
    NotFound,
    Api(ApiError),
}

impl CpError {
    fn into_api(self, path: &str, container: &str) -> ApiError {
        match self {
            CpError::NotFound => ApiError::not_found(format!(
                "Could not find the file {path} in container {container}"
            )),
            CpError::Api(e) => e,
        }
    }
}

fn errno(op: &str, path: &str, e: Errno) -> CpError {
    match e {
        Errno::NOENT => CpError::NotFound,
        e => CpError::Api(ApiError::internal(format!("{op} {path}: {e}"))),
    }
}

fn internal(e: impl std::fmt::Display) -> CpError {
    CpError::Api(ApiError::internal(e.to_string()))
}

/// moby's `checkWritablePath`: the deepest mount holding `abs` decides, else the rootfs.
fn check_writable(rec: &ContainerRecord, abs: &str) -> Result<(), CpError> {
    let holder = rec
        .mounts
        .iter()
        .filter(|m| m.kind != "tmpfs")
        .filter(|m| std::path::Path::new(abs).starts_with(&m.destination))
        .max_by_key(|m| m.destination.len());
    match holder {
        Some(m) if !m.rw => Err(CpError::Api(ApiError::bad_request(
            "mounted volume is marked read-only",
        ))),
        Some(_) => Ok(()),
        None if rec.host_config.readonly_rootfs => Err(CpError::Api(ApiError::bad_request(
            "container rootfs is marked read-only",
        ))),
        None => Ok(()),
    }
}

/// The uid and gid of the container's user for `copyUIDGID` (moby's `getUIDGID`).
fn container_user_ids(root: BorrowedFd<'_>, user: &str) -> Result<Option<(u32, u32)>, CpError> {
    if user.is_empty() {
        return Ok(None);
    }
    let names = id_names(root);
    let find = |map: &std::collections::HashMap<u32, String>, n: &str| {
        map.iter().find(|(_, v)| *v == n).map(|(k, _)| *k)
    };
    let passwd_gid = |uid: u32| -> Option<u32> {
        let fd = fstree::open_in_root(root, b"/etc/passwd", OFlags::RDONLY).ok()?;
        let mut s = String::new();
        use std::io::Read;
        std::fs::File::from(fd)
            .take(1 << 20)
            .read_to_string(&mut s)
            .ok()?;
        s.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[2].parse::<u32>().ok() == Some(uid))
                .then(|| f[3].parse().ok())
                .flatten()
        })
    };
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let (mut uid, mut gid) = (0u32, 0u32);
    if !u.is_empty() {
        match u.parse::<u32>() {
            Ok(n) => {
                uid = n;
                gid = passwd_gid(n).unwrap_or(0);
            }
            Err(_) => {
                uid = find(&names.users, u).ok_or_else(|| {
                    CpError::Api(ApiError::bad_request(format!(
                        "failed to look up user {u:?} in container: no matching entries in passwd file"
                    )))
                })?;
                gid = passwd_gid(uid).unwrap_or(0);
            }
        }
    }
    if !g.is_empty() {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => find(&names.groups, g).ok_or_else(|| {
                CpError::Api(ApiError::bad_request(format!(
                    "failed to look up group {g:?} in container: no matching entries in group file"
                )))
            })?,
        };
    }
    Ok(Some((uid, gid)))
}

/// How much of an unread request body is read after an error (Go's server reads 256 KiB).
const DRAIN_LIMIT: u64 = 256 * 1024;

async fn drain_async(mut body: BodyStream) {
    use futures_util::StreamExt;
    let mut n = 0u64;
    while let Some(Ok(chunk)) = body.next().await {
        n += chunk.len() as u64;
        if n >= DRAIN_LIMIT {
            break;
        }
    }
}

/// The extraction of `PUT /archive` inside the view (moby's `containerExtractToDir`).
fn extract(
    root: BorrowedFd<'_>,
    rec: &ContainerRecord,
    opts: &ArchivePutOptions,
    reader: &mut dyn std::io::Read,
) -> Result<(), CpError> {
    let joined = format!("/{}", opts.path);
    let resolved = follow_in_scope(root, &joined, true).map_err(|e| errno("lstat", &joined, e))?;
    let abs = preserve_trailing(&resolved, &opts.path);
    let st = lstat_in(root, &abs).map_err(|e| errno("lstat", &abs, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(CpError::Api(ApiError::bad_request(
            "extraction point is not a directory",
        )));
    }
    check_writable(rec, &resolved)?;
    let chown = if opts.copy_uid_gid {
        container_user_ids(root, &rec.config.user)?
    } else {
        None
    };
    let (_, mut tar) = berth_image::compress::decompress(reader)
        .map_err(|e| CpError::Api(ApiError::bad_request(e.to_string())))?;
    berth_image::tarapply::apply_copy(
        root,
        &mut tar,
        berth_image::tarapply::CopyOptions {
            dest: comps(&resolved)
                .iter()
                .map(|c| c.as_bytes().to_vec())
                .collect(),
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            chown,
            ..Default::default()
        },
    )
    .map_err(|e| match e {
        berth_image::tarapply::ApplyError::Unsafe { reason, .. } => internal(reason),
        e => internal(e),
    })?;
    Ok(())
}

// ----- the engine's operations -----

/// What a view needs, gathered under the container's operation lock.
struct Prepared {
    spec: ViewSpec,
    rec: ContainerRecord,
    /// Option volumes mounted for the copy (released after).
    volume_user: String,
    /// The rootfs was mounted for the copy (unmounted after unless the container runs).
    mounted_here: bool,
}

impl Engine {
    /// Mounts what the view needs: the rootfs (a stopped container's too) and volumes with
    /// mount options.
    async fn prepare_view(&self, c: &Arc<Container>) -> Result<Prepared, ApiError> {
        let rec = c.record();
        let store = self.images.clone();
        let id = c.id.clone();
        let was_mounted =
            tokio::task::spawn_blocking(move || store.layers().is_mounted(&id).unwrap_or(false))
                .await
                .unwrap_or(false);
        let rootfs = self.mount_rw_layer(&c.id).await?;
        let volume_user = format!("cp-{}", crate::ids::new_id());
        let mut mounts = Vec::new();
        let mut mounted_volumes = Vec::new();
        let mut fail = None;
        for m in &rec.mounts {
            let source = match m.kind.as_str() {
                "volume" => match self.volumes.mount(&m.name, &volume_user) {
                    Ok(p) => {
                        mounted_volumes.push(m.name.clone());
                        p
                    }
                    Err(e) => {
                        fail = Some(crate::volumes::api_err(e));
                        break;
                    }
                },
                "bind" => PathBuf::from(&m.source),
                _ => continue,
            };
            if std::fs::symlink_metadata(&source).is_err() {
                tracing::debug!(source = %source.display(), "missing mount source left out of the copy view");
                continue;
            }
            mounts.push(ViewMount {
                source,
                destination: m.destination.clone(),
                readonly: !m.rw,
                recursive: !m.non_recursive,
            });
        }
        if let Some(e) = fail {
            for n in &mounted_volumes {
                self.volumes.unmount(n, &volume_user);
            }
            if !was_mounted {
                self.unmount_rw_layer(&c.id).await;
            }
            return Err(e);
        }
        // The network files, as the container sees them (unless a mount replaces them).
        for (dest, src) in [
            ("/etc/resolv.conf", &rec.resolv_conf_path),
            ("/etc/hostname", &rec.hostname_path),
            ("/etc/hosts", &rec.hosts_path),
        ] {
            if !src.is_empty()
                && !rec.mounts.iter().any(|m| m.destination == dest)
                && std::path::Path::new(src).is_file()
            {
                mounts.push(ViewMount {
                    source: PathBuf::from(src),
                    destination: dest.to_string(),
                    readonly: rec.host_config.readonly_rootfs,
                    recursive: false,
                });
            }
        }
        mounts.sort_by_key(|m| m.destination.matches('/').count());
        Ok(Prepared {
            spec: ViewSpec {
                rootfs,
                readonly_rootfs: rec.host_config.readonly_rootfs,
                mounts,
            },
            rec,
            volume_user,
            mounted_here: !was_mounted,
        })
    }

    async fn release_view(&self, c: &Arc<Container>, p: &Prepared) {
        for m in p.rec.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes.unmount(&m.name, &p.volume_user);
        }
        if p.mounted_here && !c.status().is_running() {
            self.unmount_rw_layer(&c.id).await;
        }
    }

    /// Runs `f` in the container's view with the operation lock held, and cleans up.
    async fn in_view<T, F>(self: &Arc<Self>, c: &Arc<Container>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(BorrowedFd<'_>, &ContainerRecord) -> T + Send + 'static,
    {
        let _op = c.op.lock().await;
        let prepared = self.prepare_view(c).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let rec = prepared.rec.clone();
        let started = view::run(prepared.spec.clone(), move |root| {
            let r = match root {
                Ok(root) => Ok(f(root, &rec)),
                Err(e) => Err(e),
            };
            let _ = tx.send(r);
        });
        let res = match started {
            Ok(_handle) => rx
                .await
                .map_err(|_| ApiError::internal("the copy thread ended without a result"))
                .and_then(|r| {
                    r.map_err(|e| {
                        ApiError::internal(format!(
                            "cannot prepare the container's filesystem: {e}"
                        ))
                    })
                }),
            Err(e) => Err(ApiError::internal(format!(
                "cannot start the copy thread: {e}"
            ))),
        };
        self.release_view(c, &prepared).await;
        res
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub(crate) async fn archive_stat(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<ContainerPathStat, ApiError> {
        let c = self.lookup(name)?;
        let abs = abs_path(path);
        let res = self
            .in_view(&c, move |root, _| {
                stat_in(root, &abs).map_err(|e| errno("lstat", &abs, e))
            })
            .await?;
        res.map_err(|e| e.into_api(path, name))
    }

    /// `GET /containers/{id}/archive?path=`: the stat and a tar of the resource. The tar is
    /// written from the view while the client reads it.
    pub(crate) async fn archive_get(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<(ContainerPathStat, ByteStream), ApiError> {
        let c = self.lookup(name)?;
        let abs = abs_path(path);
        let (stat_tx, stat_rx) =
            tokio::sync::oneshot::channel::<Result<ContainerPathStat, CpError>>();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let engine = self.clone();
        let c2 = c.clone();
        tokio::spawn(async move {
            let tx2 = tx.clone();
            let res = engine
                .in_view(&c2, move |root, _| {
                    let stat = match stat_in(root, &abs).map_err(|e| errno("lstat", &abs, e)) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = stat_tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    let is_dir = stat.mode & (1 << 31) != 0;
                    let names = id_names(root);
                    let source = if is_dir {
                        fstree::open_in_root(
                            root,
                            abs.as_bytes(),
                            OFlags::RDONLY | OFlags::DIRECTORY,
                        )
                    } else {
                        fstree::open_in_root(
                            root,
                            go_dir(&abs).as_bytes(),
                            OFlags::RDONLY | OFlags::DIRECTORY,
                        )
                    };
                    let source = match source {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = stat_tx.send(Err(errno("open", &abs, e)));
                            return Ok(());
                        }
                    };
                    let _ = stat_tx.send(Ok(stat));
                    let base = go_base(&abs);
                    let rebase = if base == "/" {
                        String::new()
                    } else {
                        base.clone()
                    };
                    let mut w = crate::images::ChannelWriter {
                        tx: tx2,
                        buf: Vec::with_capacity(256 * 1024),
                    };
                    let res = fstree::tar_resource(
                        &fstree::TarResource {
                            dir: source.as_fd(),
                            name: (!is_dir).then_some(base.as_bytes()),
                            rebase: rebase.as_bytes(),
                        },
                        &names,
                        &mut w,
                    )
                    .and_then(|()| std::io::Write::flush(&mut w));
                    res.map_err(|e| e.to_string())
                })
                .await;
            let err = match res {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(e) => Some(e.message),
            };
            if let Some(e) = err {
                tracing::warn!(container = %c2.id, "archive: {e}");
                let _ = tx.send(Err(std::io::Error::other(e))).await;
            }
        });
        let stat = match stat_rx.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e.into_api(path, name)),
            Err(_) => {
                return Err(ApiError::internal(
                    "cannot prepare the container's filesystem for the copy",
                ))
            }
        };
        let attrs = self.event_attrs(&c);
        self.events.emit("container", "archive-path", &c.id, attrs);
        Ok((stat, Box::pin(crate::images::stream_from(rx))))
    }

    /// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: extracts the
    /// (possibly compressed) tar body into the directory `path`.
    pub(crate) async fn archive_put(
        self: &Arc<Self>,
        name: &str,
        opts: ArchivePutOptions,
        body: BodyStream,
    ) -> Result<(), ApiError> {
        let c = match self.lookup(name) {
            Ok(c) => c,
            Err(e) => {
                drain_async(body).await;
                return Err(e);
            }
        };
        let path = opts.path.clone();
        let mut reader = crate::images::body_reader(body);
        let res = self
            .in_view(&c, move |root, rec| -> Result<(), CpError> {
                let res = extract(root, rec, &opts, &mut reader);
                if res.is_err() {
                    // Like Go's server, read what the client is still sending (up to a
                    // limit) so that it gets the answer instead of a broken pipe.
                    let _ = std::io::copy(
                        &mut std::io::Read::take(&mut reader, DRAIN_LIMIT),
                        &mut std::io::sink(),
                    );
                }
                res
            })
            .await?;
        res.map_err(|e| e.into_api(&path, name))?;
        let attrs = self.event_attrs(&c);
        self.events
            .emit("container", "extract-to-dir", &c.id, attrs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_like_moby() {
        assert_eq!(abs_path("/data/cp-in.txt"), "/data/cp-in.txt");
        assert_eq!(abs_path("data/"), "/data/");
        assert_eq!(abs_path("/data/."), "/data/.");
        assert_eq!(abs_path("/a/../b/./"), "/b/./");
        assert_eq!(abs_path("/"), "/");
        assert_eq!(abs_path("../../etc/passwd"), "/etc/passwd");
        assert_eq!(abs_path("/x/.."), "/");
        assert_eq!(go_base("/data/"), "data");
        assert_eq!(go_base("/data/."), ".");
        assert_eq!(go_base("/"), "/");
        assert_eq!(go_dir("/data/f"), "/data");
        assert_eq!(go_dir("/f"), "/");
        assert!(asserts_dir("/a/") && asserts_dir("/a/.") && !asserts_dir("/a"));
    }

    #[test]
    fn modes_and_times_like_go() {
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o020666), (1 << 26) | (1 << 21) | 0o666);
        assert_eq!(go_file_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_file_mode(0o041777), (1 << 31) | (1 << 20) | 0o777);
        assert_eq!(go_time(1795799621, 0), "2026-11-27T17:13:41Z");
        assert_eq!(
            go_time(1795799617, 543968625),
            "2026-11-27T17:13:37.543968625Z"
        );
        assert_eq!(go_time(1795799617, 500000000), "2026-11-27T17:13:37.5Z");
    }

    #[test]
    fn scope_resolution_stays_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("etc/deep")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("e")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("etc/up")).unwrap();
        std::os::unix::fs::symlink("deep/../missing", r.join("etc/broken")).unwrap();
        std::os::unix::fs::symlink("loop2", r.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", r.join("loop2")).unwrap();
        let root = rfs::open(r, OFlags::RDONLY | OFlags::DIRECTORY, rfs::Mode::empty()).unwrap();
        let f = |p: &str, e: bool| follow_in_scope(root.as_fd(), p, e);
        assert_eq!(f("/e/deep", true).unwrap(), "/etc/deep");
        assert_eq!(f("/etc/up/e", true).unwrap(), "/etc");
        assert_eq!(f("/e/broken", false).unwrap(), "/etc/missing");
        assert_eq!(f("/e/broken", true).unwrap_err(), Errno::NOENT);
        assert_eq!(f("/loop1", true).unwrap_err(), Errno::LOOP);
        let st = stat_in(root.as_fd(), "/e").unwrap();
        assert_eq!(st.name, "e");
        assert_eq!(st.link_target, "/etc");
        assert_eq!(st.mode & (1 << 27), 1 << 27);
        let st = stat_in(root.as_fd(), "/e/").unwrap();
        assert_eq!(
            st.mode & (1 << 31),
            1 << 31,
            "a trailing slash follows the link"
        );
        assert_eq!(stat_in(root.as_fd(), "/nope").unwrap_err(), Errno::NOENT);
    }
}
