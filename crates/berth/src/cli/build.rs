//! `berth build`: the context (a directory, a tar file, `-` or a URL) goes to the daemon as
//! a tar stream produced while the directory is walked — never assembled in memory — with
//! Docker's CLI rules: owners 0:0, the Dockerfile from `-f` (or stdin with `-f -`) added
//! under a private name when it is not inside the context. Progress is the classic builder's
//! text.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_api::BuildOptions;
use bytes::Bytes;

use super::flags::{Flag, Matches, NArgs, Spec};
use super::progress::{self, Out};
use super::{CliError, CliResult, Ctx};

pub fn spec(path: &str) -> Spec {
    super::spec(
        path,
        "[OPTIONS] PATH | URL | -",
        NArgs::Exact(1),
        vec![
            Flag::list(
                "add-host",
                "list",
                "Add a custom host-to-IP mapping (\"host:ip\")",
            ),
            Flag::list("build-arg", "list", "Set build-time variables"),
            Flag::list(
                "cache-from",
                "strings",
                "Images to consider as cache sources",
            ),
            Flag::value(
                "file",
                "string",
                "Name of the Dockerfile (default: \"PATH/Dockerfile\")",
            )
            .short('f'),
            Flag::value("iidfile", "string", "Write the image ID to the file"),
            Flag::list("label", "list", "Set metadata for an image"),
            Flag::value(
                "network",
                "string",
                "Set the networking mode for the RUN instructions during build",
            )
            .default("\"default\""),
            Flag::bool("no-cache", "Do not use cache when building the image"),
            Flag::list(
                "no-cache-filter",
                "stringArray",
                "Do not cache specified stages",
            ),
            Flag::value(
                "platform",
                "string",
                "Set platform if server is multi-platform capable",
            ),
            Flag::value(
                "progress",
                "string",
                "Set type of progress output (\"auto\", \"plain\", \"tty\", \"quiet\")",
            )
            .default("\"auto\""),
            Flag::bool(
                "pull",
                "Always attempt to pull a newer version of the image",
            ),
            Flag::bool(
                "quiet",
                "Suppress the build output and print image ID on success",
            )
            .short('q'),
            Flag::list(
                "secret",
                "stringArray",
                "Secret to expose to the build (format: \"id=mysecret[,src=/local/secret]\")",
            ),
            Flag::value("shm-size", "bytes", "Size of \"/dev/shm\""),
            Flag::list(
                "tag",
                "list",
                "Name and optionally a tag in the \"name:tag\" format",
            )
            .short('t'),
            Flag::value("target", "string", "Set the target build stage to build"),
        ],
    )
}

/// Where the context comes from.
enum Source {
    Dir(PathBuf),
    TarFile(PathBuf),
    Stdin,
    Url(String),
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://")
        || s.starts_with("https://")
        || s.starts_with("git://")
        || s.starts_with("git@")
        || s.starts_with("github.com/")
}

pub async fn run(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let arg = m.args.first().cloned().unwrap_or_default();
    let source = if arg == "-" {
        Source::Stdin
    } else if is_url(&arg) {
        Source::Url(arg.clone())
    } else {
        let p = PathBuf::from(&arg);
        match fs::metadata(&p) {
            Ok(md) if md.is_dir() => Source::Dir(p),
            Ok(_) => Source::TarFile(p),
            Err(_) => {
                return Err(CliError::msg(format!(
                    "unable to prepare context: path {arg:?} not found"
                )))
            }
        }
    };
    for t in m.list("tag") {
        if let Err(e) = berth_image::Reference::parse_normalized(&t) {
            return Err(CliError::msg(format!(
                "invalid argument {t:?} for \"-t, --tag\" flag: {e}"
            )));
        }
    }
    let mut build_args = BTreeMap::new();
    for a in m.list("build-arg") {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), Some(v.to_string()));
            }
            // `--build-arg NAME` takes the value of the client's environment, when set.
            None => {
                build_args.insert(a.clone(), std::env::var(&a).ok());
            }
        }
    }
    let mut labels = BTreeMap::new();
    for l in m.list("label") {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    if !m.list("secret").is_empty() {
        return Err(CliError::msg(
            "berth: --secret is not implemented yet (RUN --mount=type=secret needs it)",
        ));
    }
    if !m.list("no-cache-filter").is_empty() {
        return Err(CliError::msg(
            "berth: --no-cache-filter is not implemented yet",
        ));
    }
    let progress_mode = m.string("progress").unwrap_or_else(|| "auto".into());
    if !matches!(progress_mode.as_str(), "auto" | "plain" | "tty" | "quiet") {
        return Err(CliError::msg(format!(
            "invalid argument {progress_mode:?} for \"--progress\" flag: use auto, plain, tty or quiet"
        )));
    }
    let quiet = m.flag("quiet") || progress_mode == "quiet";
    let dockerfile_flag = m.string("file").filter(|f| !f.is_empty());
    let shm_size = match m.value("shm-size") {
        Some(s) => Some(super::units::ram_in_bytes(s).map_err(|e| {
            CliError::msg(format!(
                "invalid argument {s:?} for \"--shm-size\" flag: {e}"
            ))
        })?),
        None => None,
    };

    let mut opts = BuildOptions {
        tags: m.list("tag"),
        dockerfile: "Dockerfile".into(),
        quiet,
        no_cache: m.flag("no-cache"),
        rm: true,
        pull: m.flag("pull"),
        build_args,
        labels,
        cache_from: m.list("cache-from"),
        target: m.string("target").filter(|t| !t.is_empty()),
        platform: m.string("platform").filter(|t| !t.is_empty()),
        network_mode: m.string("network").filter(|t| !t.is_empty()),
        extra_hosts: {
            let h = m.list("add-host");
            (!h.is_empty()).then(|| h.join(","))
        },
        shm_size,
        version: "1".into(),
        ..Default::default()
    };

    let (body, size) = match source {
        Source::Url(u) => {
            opts.remote = Some(u);
            (empty_body(), 0)
        }
        Source::TarFile(p) => {
            if let Some(f) = &dockerfile_flag {
                opts.dockerfile = f.clone();
            }
            let f = tokio::fs::File::open(&p)
                .await
                .map_err(|e| CliError::msg(format!("unable to open {}: {e}", p.display())))?;
            let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            (
                Box::pin(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024))
                    as berth_api::BodyStream,
                len,
            )
        }
        Source::Stdin => {
            if dockerfile_flag.as_deref() == Some("-") {
                return Err(CliError::msg(
                    "invalid argument: can't use stdin for both build context and dockerfile",
                ));
            }
            let mut data = Vec::new();
            io::stdin().read_to_end(&mut data)?;
            let (tar, name) = if looks_like_tar(&data) {
                (
                    data,
                    dockerfile_flag
                        .clone()
                        .unwrap_or_else(|| "Dockerfile".into()),
                )
            } else {
                // A Dockerfile alone: sent as the only file of a context.
                (
                    single_file_tar("Dockerfile", &data)?,
                    "Dockerfile".to_string(),
                )
            };
            opts.dockerfile = name;
            let len = tar.len() as u64;
            (
                Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from(tar))]))
                    as berth_api::BodyStream,
                len,
            )
        }
        Source::Dir(dir) => {
            let (body, name) = dir_context(&dir, dockerfile_flag.as_deref())?;
            opts.dockerfile = name;
            (body, 0)
        }
    };
    let _ = size;
    let client = ctx.client()?;
    let stream = client.build(&opts, body).await?;
    let mut image_id = String::new();
    if quiet {
        // Quiet: the daemon's only text is the image ID (Docker's CLI reads it from there).
        use futures_util::StreamExt;
        let mut stream = stream;
        while let Some(msg) = stream.next().await {
            let msg = msg?;
            if let Some(e) = msg.error_message() {
                let code = msg.error_detail.as_ref().map_or(0, |d| d.code);
                return Err(CliError::new(
                    if code > 0 { code as i32 } else { 1 },
                    e.to_string(),
                ));
            }
            if let Some(s) = &msg.stream {
                image_id.push_str(s);
            }
        }
        image_id = image_id.trim().to_string();
        if m.flag("quiet") {
            super::println_out(&image_id)?;
        }
    } else {
        let res = progress::display(stream, Out::Stdout, |aux| {
            if let Some(id) = aux
                .aux
                .as_ref()
                .and_then(|a| a.get("ID"))
                .and_then(|v| v.as_str())
            {
                image_id = id.to_string();
            }
        })
        .await?;
        if let Err(e) = res {
            let code = if e.code > 0 { e.code as i32 } else { 1 };
            return Err(CliError::new(code, e.message));
        }
    }
    if let Some(f) = m.string("iidfile").filter(|f| !f.is_empty()) {
        if image_id.is_empty() {
            return Err(CliError::msg("berth: the daemon reported no image ID"));
        }
        fs::write(&f, &image_id)
            .map_err(|e| CliError::msg(format!("failed to write image ID to file: {e}")))?;
    }
    Ok(())
}

fn empty_body() -> berth_api::BodyStream {
    Box::pin(futures_util::stream::empty())
}

fn looks_like_tar(data: &[u8]) -> bool {
    if data.len() < 512 {
        return berth_image::compress::Compression::detect(data)
            != berth_image::compress::Compression::None;
    }
    if berth_image::compress::Compression::detect(data) != berth_image::compress::Compression::None
    {
        return true;
    }
    &data[257..262] == b"ustar"
}

fn single_file_tar(name: &str, data: &[u8]) -> CliResult<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    b.append_data(&mut h, name, data)?;
    Ok(b.into_inner()?)
}

/// A writer that hands chunks to the request body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the daemon closed the build request",
            )
        })
    }
}

/// The context of a directory as a tar stream, written by a thread while the request is
/// sent. Returns the body and the Dockerfile's name in the context.
fn dir_context(dir: &Path, dockerfile: Option<&str>) -> CliResult<(berth_api::BodyStream, String)> {
    let abs = fs::canonicalize(dir)
        .map_err(|e| CliError::msg(format!("unable to prepare context: {e}")))?;
    // The Dockerfile: -f relative to the current directory, default PATH/Dockerfile.
    let (df_name, extra): (String, Option<Vec<u8>>) = match dockerfile {
        Some("-") => {
            let mut data = Vec::new();
            io::stdin().read_to_end(&mut data)?;
            (format!(".dockerfile.{}", random_suffix()), Some(data))
        }
        Some(f) => {
            let p = fs::canonicalize(f).map_err(|_| {
                CliError::msg(format!(
                    "unable to prepare context: the Dockerfile ({f}) cannot be found"
                ))
            })?;
            match p.strip_prefix(&abs) {
                Ok(rel) => (rel.to_string_lossy().into_owned(), None),
                Err(_) => {
                    let data = fs::read(&p)?;
                    (format!(".dockerfile.{}", random_suffix()), Some(data))
                }
            }
        }
        None => {
            let p = abs.join("Dockerfile");
            if !p.exists() {
                return Err(CliError::msg(format!(
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                    p.display()
                )));
            }
            ("Dockerfile".to_string(), None)
        }
    };
    if abs.join(".dockerignore").exists() {
        return Err(CliError::msg(
            "berth: .dockerignore in the context is not supported by the berth CLI yet; build with the docker CLI or remove it",
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
    let name2 = df_name.clone();
    std::thread::spawn(move || {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let res = write_context_tar(&abs, w, extra.map(|d| (name2, d)));
        if let Err(e) = res {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((Box::pin(stream), df_name))
}

fn random_suffix() -> String {
    berth_image::fsutil::random_hex(8)
}

/// Writes the tar of `root` (sorted walk, owners 0:0, symlinks as links, hard links as
/// links), plus an extra file, then the end of the archive.
fn write_context_tar(
    root: &Path,
    w: ChannelWriter,
    extra: Option<(String, Vec<u8>)>,
) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let mut links: BTreeMap<(u64, u64), String> = BTreeMap::new();
    walk(root, Path::new(""), &mut |rel, md| {
        let full = root.join(rel);
        let name = rel.to_string_lossy().into_owned();
        let mut h = tar::Header::new_gnu();
        h.set_metadata(md);
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("")?;
        h.set_groupname("")?;
        let ft = md.file_type();
        if ft.is_file() && md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &name, first)?;
                return Ok(());
            }
            links.insert(key, name.clone());
        }
        if ft.is_dir() {
            b.append_data(&mut h, format!("{name}/"), io::empty())?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&full)?;
            h.set_size(0);
            b.append_link(&mut h, &name, target)?;
        } else if ft.is_file() {
            let f = fs::File::open(&full)?;
            b.append_data(&mut h, &name, f)?;
        } else {
            // Devices, fifos and sockets: Docker sends devices and fifos as headers only.
            h.set_size(0);
            b.append_data(&mut h, &name, io::empty())?;
        }
        Ok(())
    })?;
    if let Some((name, data)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        b.append_data(&mut h, &name, &data[..])?;
    }
    let mut w = b.into_inner()?;
    w.flush()
}

fn walk(
    root: &Path,
    rel: &Path,
    f: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<()>,
) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        let r = rel.join(&n);
        let md = fs::symlink_metadata(root.join(&r))?;
        f(&r, &md)?;
        if md.is_dir() {
            walk(root, &r, f)?;
        }
    }
    Ok(())
}
