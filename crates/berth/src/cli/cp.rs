//! `berth cp`: docker-cli's `cp.go` (v28) over the archive API — the client-side rules for
//! `/.` and trailing slashes, existing and missing destinations, `-L`, `-a`, `-q` and `-`
//! (a tar on stdin or stdout). Host files are archived and extracted with berth-image's
//! descriptor-based tar code, so a symlink in the container's archive cannot write outside
//! the destination on the host either.

use std::os::fd::{AsFd, OwnedFd};

use berth_api::models::ContainerPathStat;
use berth_api::ArchivePutOptions;
use berth_image::{fstree, tarapply};
use futures_util::StreamExt;

use super::flags::{Flag, Matches, NArgs, Spec};
use super::{CliError, CliResult, Ctx};

pub fn spec(path: &str) -> Spec {
    super::spec(
        path,
        "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        NArgs::Exact(2),
        vec![
            Flag::bool("archive", "Archive mode (copy all uid/gid information)").short('a'),
            Flag::bool("follow-link", "Always follow symbol link in SRC_PATH").short('L'),
            Flag::bool(
                "quiet",
                "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached",
            )
            .short('q'),
        ],
    )
}

/// Go's `os.FileMode` bits the CLI looks at.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_IRREGULAR: u32 = 1 << 19;

fn is_dir(st: &ContainerPathStat) -> bool {
    st.mode & MODE_DIR != 0
}

/// `splitCpArg`: `CONTAINER:PATH`, unless the argument is an explicit local path.
fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

// ----- go-archive's path helpers -----

fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let j = out.join("/");
    match (abs, j.is_empty()) {
        (true, _) => format!("/{j}"),
        (false, true) => ".".into(),
        (false, false) => j,
    }
}

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

fn go_dir(p: &str) -> String {
    let cut = p.rfind('/').map_or(0, |i| i + 1);
    clean(&p[..cut])
}

fn specifies_current_dir(p: &str) -> bool {
    go_base(p) == "."
}

fn asserts_dir(p: &str) -> bool {
    p.ends_with('/') || specifies_current_dir(p)
}

/// `PreserveTrailingDotOrSeparator`.
fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut c = cleaned.to_string();
    if !specifies_current_dir(&c) && specifies_current_dir(original) {
        if !c.ends_with('/') {
            c.push('/');
        }
        c.push('.');
    }
    if !c.ends_with('/') && original.ends_with('/') {
        c.push('/');
    }
    c
}

/// `SplitPathDirEntry`.
fn split_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) {
        cleaned.push_str("/.");
    }
    (go_dir(&cleaned), go_base(&cleaned))
}

/// `filepath.Join`.
fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        return clean(b);
    }
    clean(&format!("{a}/{b}"))
}

/// `resolveLocalPath`: absolute, trailing `/` or `/.` kept.
fn resolve_local(p: &str) -> CliResult<String> {
    let abs = std::path::absolute(p)
        .map_err(|e| CliError::msg(e.to_string()))?
        .to_string_lossy()
        .into_owned();
    Ok(preserve_trailing(&clean(&abs), p))
}

/// `GetRebaseName`.
fn rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut r = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&r) {
        r.push_str("/.");
    }
    if path.ends_with('/') && !r.ends_with('/') {
        r.push('/');
    }
    let name = (go_base(path) != go_base(&r)).then(|| go_base(path));
    (r, name)
}

/// A copy source or destination (`archive.CopyInfo`).
#[derive(Debug, Clone, Default)]
struct CopyInfo {
    path: String,
    exists: bool,
    is_dir: bool,
    rebase_name: Option<String>,
}

#[derive(Debug)]
enum Prepared {
    /// Extract into this directory, renaming the resource from `.1` to `.2` (None: as is).
    Into(String, Option<(String, String)>),
}

/// `PrepareArchiveCopy`: where to extract and how the archive's entries are renamed.
fn prepare(src: &CopyInfo, dst: &CopyInfo) -> CliResult<Prepared> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, mut src_base) = split_dir_entry(&src.path);
    if let Some(r) = &src.rebase_name {
        src_base = r.clone();
    }
    Ok(match () {
        _ if dst.exists && dst.is_dir => Prepared::Into(dst.path.clone(), None),
        _ if dst.exists && src.is_dir => return Err(CliError::msg("cannot copy directory")),
        _ if dst.exists => Prepared::Into(dst_dir, Some((src_base, dst_base))),
        _ if src.is_dir => Prepared::Into(dst_dir, Some((src_base, dst_base))),
        _ if asserts_dir(&dst.path) => return Err(CliError::msg("no such directory")),
        _ => Prepared::Into(dst_dir, Some((src_base, dst_base))),
    })
}

fn io_msg(op: &str, path: &str, e: std::io::Error) -> CliError {
    let text = match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    };
    CliError::msg(format!("{op} {path}: {text}"))
}

/// `CopyInfoDestinationPath` on the host: symlinks of the last component followed (at most
/// 10), a missing destination needs an existing parent directory.
fn host_destination(path: &str) -> CliResult<CopyInfo> {
    let mut p = path.to_string();
    let mut n = 0;
    loop {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                if n > 10 {
                    return Err(CliError::msg(format!("too many symlinks in {path}")));
                }
                n += 1;
                let target = std::fs::read_link(&p).map_err(|e| io_msg("readlink", &p, e))?;
                let t = target.to_string_lossy().into_owned();
                p = if t.starts_with('/') {
                    t
                } else {
                    join(&split_dir_entry(&p).0, &t)
                };
            }
            Ok(m) => {
                return Ok(CopyInfo {
                    path: p,
                    exists: true,
                    is_dir: m.is_dir(),
                    rebase_name: None,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = split_dir_entry(&p).0;
                let m = std::fs::metadata(&parent).map_err(|e| io_msg("stat", &parent, e))?;
                if !m.is_dir() {
                    return Err(CliError::msg("not a directory"));
                }
                return Ok(CopyInfo {
                    path: p,
                    ..CopyInfo::default()
                });
            }
            Err(e) => return Err(io_msg("lstat", &p, e)),
        }
    }
}

/// `CopyInfoSourcePath` on the host: symlinks of the parent directories resolved (all of
/// them with `-L`); the source must exist.
fn host_source(path: &str, follow: bool) -> CliResult<CopyInfo> {
    let (resolved, rebase) = if follow {
        let r = std::fs::canonicalize(path)
            .map_err(|e| io_msg("lstat", path, e))?
            .to_string_lossy()
            .into_owned();
        rebase_name(path, &r)
    } else {
        let cut = path.rfind('/').map_or(0, |i| i + 1);
        let (dir, base) = (&path[..cut], &path[cut..]);
        let rdir = std::fs::canonicalize(if dir.is_empty() { "." } else { dir })
            .map_err(|e| io_msg("lstat", dir, e))?
            .to_string_lossy()
            .into_owned();
        let resolved = if rdir == "/" {
            format!("/{base}")
        } else {
            format!("{rdir}/{base}")
        };
        let rb =
            (path.ends_with('/') && go_base(path) != go_base(&resolved)).then(|| go_base(path));
        (resolved, rb)
    };
    let m = std::fs::symlink_metadata(&resolved).map_err(|e| io_msg("lstat", &resolved, e))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: m.is_dir(),
        rebase_name: rebase,
    })
}

fn open_dir(p: &str) -> CliResult<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| io_msg("open", p, e))?;
    Ok(OwnedFd::from(f))
}

/// Go's `units.HumanSizeWithPrecision(n, 3)` as the CLI prints the copied size.
fn progress_size(n: u64) -> String {
    super::units::human_size_precision(n as f64, 3)
}

pub async fn run(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let (src, dst) = (m.args[0].as_str(), m.args[1].as_str());
    if src.is_empty() {
        return Err(CliError::msg("source can not be empty"));
    }
    if dst.is_empty() {
        return Err(CliError::msg("destination can not be empty"));
    }
    let quiet = if m.changed("quiet") {
        m.flag("quiet")
    } else {
        !super::term::is_tty(1)
    };
    let follow = m.flag("follow-link");
    let copy_uid_gid = m.flag("archive");
    match (split_arg(src), split_arg(dst)) {
        ((Some(c), sp), (None, dp)) => from_container(ctx, c, sp, dp, follow, quiet).await,
        ((None, sp), (Some(c), dp)) => {
            to_container(ctx, c, sp, dp, follow, copy_uid_gid, quiet).await
        }
        ((Some(_), _), (Some(_), _)) => {
            Err(CliError::msg("copying between containers is not supported"))
        }
        _ => Err(CliError::msg("must specify at least one container source")),
    }
}

async fn from_container(
    ctx: &Ctx,
    container: &str,
    src: &str,
    dst: &str,
    follow: bool,
    quiet: bool,
) -> CliResult<()> {
    let dst_path = if dst == "-" {
        dst.to_string()
    } else {
        let d = resolve_local(dst)?;
        super::image::validate_output_path(&d).map_err(CliError::msg)?;
        d
    };
    let client = ctx.client()?;
    let mut src_path = src.to_string();
    let mut rebase = None;
    if follow {
        if let Ok(st) = client.container_archive_stat(container, src).await {
            if st.mode & MODE_SYMLINK != 0 {
                let mut target = st.link_target.clone();
                if !target.starts_with('/') {
                    target = join(&split_dir_entry(src).0, &target);
                }
                let (t, r) = rebase_name(src, &target);
                src_path = t;
                rebase = r;
            }
        }
    }
    let (stat, mut body) = client.container_archive_get(container, &src_path).await?;
    if dst_path == "-" {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?)?;
        }
        out.flush()?;
        return Ok(());
    }
    let src_info = CopyInfo {
        path: src_path.clone(),
        exists: true,
        is_dir: is_dir(&stat),
        rebase_name: rebase.clone(),
    };
    let dst_info = host_destination(&dst_path)?;
    let Prepared::Into(dir, rename) = prepare(&src_info, &dst_info)?;
    let mut renames = Vec::new();
    if let Some(r) = &rebase {
        renames.push((split_dir_entry(&src_path).1, r.clone()));
    }
    if let Some((a, b)) = rename {
        renames.push((a, b));
    }
    let (size, res) = extract_on_host(body, &dir, renames).await;
    if !quiet {
        super::eprintln_err(&format!(
            "Successfully copied {} to {dst_path}",
            progress_size(size)
        ));
    }
    res
}

/// Extracts the archive into the host directory `dir` (moby's `Untar` with `NoLchown` and
/// `NoOverwriteDirNonDir`). Returns the bytes received and the result.
async fn extract_on_host(
    mut body: berth_api::client::ClientStream<bytes::Bytes>,
    dir: &str,
    rename: Vec<(String, String)>,
) -> (u64, CliResult<()>) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<bytes::Bytes>>(8);
    let dir = dir.to_string();
    let worker = std::thread::spawn(move || -> CliResult<()> {
        let root = open_dir("/")?;
        let dest: Vec<Vec<u8>> = dir
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| c.as_bytes().to_vec())
            .collect();
        let mut reader = ChannelReader {
            rx,
            cur: bytes::Bytes::new(),
        };
        tarapply::apply_copy(
            root.as_fd(),
            &mut reader,
            tarapply::CopyOptions {
                dest,
                no_overwrite_dir_non_dir: true,
                chown: None,
                no_lchown: true,
                rename: rename
                    .into_iter()
                    .map(|(a, b)| (a.into_bytes(), b.into_bytes()))
                    .collect(),
            },
        )
        .map(|_| ())
        .map_err(|e| match e {
            tarapply::ApplyError::Unsafe { reason, .. } => CliError::msg(reason),
            e => CliError::msg(e.to_string()),
        })
    });
    let mut size = 0u64;
    let mut err = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => {
                size += b.len() as u64;
                if tx.send(Ok(b)).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string())));
                err = Some(CliError::from(e));
                break;
            }
        }
    }
    drop(tx);
    let res = tokio::task::spawn_blocking(move || worker.join())
        .await
        .map_err(|e| CliError::msg(e.to_string()))
        .and_then(|r| r.map_err(|_| CliError::msg("berth: the extraction thread panicked")))
        .and_then(|r| r);
    (size, err.map_or(res, Err))
}

/// A blocking reader over chunks sent by the async side.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

async fn to_container(
    ctx: &Ctx,
    container: &str,
    src: &str,
    dst: &str,
    follow: bool,
    copy_uid_gid: bool,
    quiet: bool,
) -> CliResult<()> {
    let src_path = if src == "-" {
        src.to_string()
    } else {
        resolve_local(src)?
    };
    let client = ctx.client()?;
    let mut dst_info = CopyInfo {
        path: dst.to_string(),
        ..CopyInfo::default()
    };
    let mut stat = client.container_archive_stat(container, dst).await;
    if let Ok(st) = &stat {
        if st.mode & MODE_SYMLINK != 0 {
            let mut target = st.link_target.clone();
            if !target.starts_with('/') {
                target = join(&split_dir_entry(dst).0, &target);
            }
            dst_info.path = target.clone();
            stat = client.container_archive_stat(container, &target).await;
        }
    }
    if let Ok(st) = &stat {
        if st.mode & MODE_DEVICE != 0 || st.mode & MODE_IRREGULAR != 0 {
            let what = if st.mode & MODE_DEVICE != 0 {
                "got a device"
            } else {
                "got an irregular file"
            };
            return Err(CliError::msg(format!(
                "destination \"{container}:{dst}\" must be a directory or a regular file: {what}"
            )));
        }
        dst_info.exists = true;
        dst_info.is_dir = is_dir(st);
    }
    let (resolved_dst, body, counter): (String, berth_api::BodyStream, _) = if src_path == "-" {
        if !dst_info.is_dir {
            return Err(CliError::msg(format!(
                "destination \"{container}:{dst}\" must be a directory"
            )));
        }
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c2 = counter.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(tokio::io::stdin(), 256 * 1024)
            .inspect(move |r| {
                if let Ok(b) = r {
                    c2.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        (dst_info.path.clone(), Box::pin(stream), counter)
    } else {
        let src_info = host_source(&src_path, follow)?;
        let Prepared::Into(dir, rename) = prepare(&src_info, &dst_info)?;
        let (src_dir, src_base) = split_dir_entry(&src_info.path);
        // The resource's name in the archive after TarResourceRebase and the rename of
        // PrepareArchiveCopy.
        let mut name = src_info.rebase_name.clone().unwrap_or(src_base.clone());
        if let Some((from, to)) = rename {
            name = String::from_utf8_lossy(&replace_first(
                name.as_bytes(),
                from.as_bytes(),
                to.as_bytes(),
            ))
            .into_owned();
        }
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stream = host_tar(&src_dir, &src_base, &name, counter.clone())?;
        (dir, stream, counter)
    };
    let opts = ArchivePutOptions {
        path: resolved_dst,
        no_overwrite_dir_non_dir: true,
        copy_uid_gid,
    };
    let res = client.container_archive_put(container, &opts, body).await;
    if !quiet {
        super::eprintln_err(&format!(
            "Successfully copied {} to {container}:{}",
            progress_size(counter.load(std::sync::atomic::Ordering::Relaxed)),
            dst_info.path
        ));
    }
    res.map_err(CliError::from)
}

fn replace_first(s: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    if old.is_empty() {
        let mut v = new.to_vec();
        v.extend_from_slice(s);
        return v;
    }
    match s.windows(old.len()).position(|w| w == old) {
        Some(i) => {
            let mut v = s[..i].to_vec();
            v.extend_from_slice(new);
            v.extend_from_slice(&s[i + old.len()..]);
            v
        }
        None => s.to_vec(),
    }
}

/// A tar of `dir/base` (its contents named `name/…`; `base` `.` archives `dir` itself) as a
/// request body, written by a thread while the request streams.
fn host_tar(
    dir: &str,
    base: &str,
    name: &str,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> CliResult<berth_api::BodyStream> {
    let dir_fd = if base == "." {
        open_dir(&if dir == "/" || dir.is_empty() {
            "/".to_string()
        } else {
            join(dir, ".")
        })?
    } else {
        open_dir(dir)?
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    let (base, name) = (base.to_string(), name.to_string());
    std::thread::spawn(move || {
        struct W {
            tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
            buf: Vec<u8>,
            counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
        }
        impl std::io::Write for W {
            fn write(&mut self, d: &[u8]) -> std::io::Result<usize> {
                self.buf.extend_from_slice(d);
                if self.buf.len() >= 256 * 1024 {
                    self.flush()?;
                }
                Ok(d.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                if self.buf.is_empty() {
                    return Ok(());
                }
                let b = bytes::Bytes::from(std::mem::take(&mut self.buf));
                self.counter
                    .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                self.tx
                    .blocking_send(Ok(b))
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            }
        }
        let mut w = W {
            tx: tx.clone(),
            buf: Vec::new(),
            counter,
        };
        let res = fstree::tar_resource(
            &fstree::TarResource {
                dir: dir_fd.as_fd(),
                name: (base != ".").then_some(base.as_bytes()),
                rebase: name.as_bytes(),
            },
            &fstree::IdNames::default(),
            &mut w,
        )
        .and_then(|()| std::io::Write::flush(&mut w));
        if let Err(e) = res {
            let _ = tx.blocking_send(Err(e));
        }
    });
    Ok(Box::pin(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_like_docker() {
        assert_eq!(split_arg("c:/a"), (Some("c"), "/a"));
        assert_eq!(split_arg("/abs:x"), (None, "/abs:x"));
        assert_eq!(split_arg("./file:name"), (None, "./file:name"));
        assert_eq!(split_arg("file"), (None, "file"));
        assert_eq!(split_arg("-"), (None, "-"));
    }

    #[test]
    fn copy_paths_like_go_archive() {
        assert_eq!(preserve_trailing("/a/b", "b/."), "/a/b/.");
        assert_eq!(preserve_trailing("/a/b", "b/"), "/a/b/");
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/"), ("/".into(), "/".into()));
        assert_eq!(
            rebase_name("/x/link/", "/x/target"),
            ("/x/target/".into(), Some("link".into()))
        );
        assert_eq!(rebase_name("/x/same", "/y/same"), ("/y/same".into(), None));
        let file = CopyInfo {
            path: "/c/f".into(),
            exists: true,
            ..CopyInfo::default()
        };
        let dir = CopyInfo {
            path: "/c/d".into(),
            exists: true,
            is_dir: true,
            ..CopyInfo::default()
        };
        let missing = |p: &str| CopyInfo {
            path: p.into(),
            ..CopyInfo::default()
        };
        let into = |r: CliResult<Prepared>| match r.unwrap() {
            Prepared::Into(d, n) => (d, n),
        };
        assert_eq!(into(prepare(&file, &dir)), ("/c/d".into(), None));
        assert_eq!(
            into(prepare(&file, &missing("/h/new"))),
            ("/h".into(), Some(("f".into(), "new".into())))
        );
        assert_eq!(
            into(prepare(&dir, &missing("/h/newdir"))),
            ("/h".into(), Some(("d".into(), "newdir".into())))
        );
        assert_eq!(
            prepare(&dir, &file).unwrap_err().message,
            "cannot copy directory"
        );
        assert_eq!(
            prepare(&file, &missing("/h/nodir/")).unwrap_err().message,
            "no such directory"
        );
        assert_eq!(replace_first(b"d/x", b"d", b"new"), b"new/x");
        assert_eq!(replace_first(b"/etc", b"", b"out"), b"out/etc");
    }
}
