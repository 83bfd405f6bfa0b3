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
use berth_build::dockerignore::{ignore_file_candidates, Dockerignore, MatchInfo};
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
        trace: true,
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
    } else if opts.trace {
        image_id = trace_view(
            stream,
            progress_mode == "tty" || (progress_mode == "auto" && super::term::is_tty(2)),
        )
        .await?;
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
    // .dockerignore (or <Dockerfile>.dockerignore next to it) is applied while walking:
    // excluded files are never read or sent; the ignore file and the Dockerfile always go.
    let mut ignore = Dockerignore::default();
    for cand in ignore_file_candidates(&df_name) {
        match fs::read_to_string(abs.join(&cand)) {
            Ok(text) => {
                ignore = Dockerignore::parse(&text)
                    .map_err(|e| CliError::msg(format!("failed to parse {cand}: {e}")))?;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CliError::msg(format!("failed to read {cand}: {e}"))),
        }
    }
    let ignore = ignore.keeping_build_files(&df_name, extra.is_some());
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
    let name2 = df_name.clone();
    std::thread::spawn(move || {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let res = write_context_tar(&abs, w, &ignore, extra.map(|d| (name2, d)));
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
    ignore: &Dockerignore,
    extra: Option<(String, Vec<u8>)>,
) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let mut links: BTreeMap<(u64, u64), String> = BTreeMap::new();
    walk(
        root,
        Path::new(""),
        ignore,
        &MatchInfo::default(),
        &mut |rel, md| {
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
        },
    )?;
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

/// Walks `rel` below `root` in Go's `filepath.Walk` order, skipping what `ignore` excludes
/// (an excluded directory is not even read unless an exception could match below it; then
/// only its own entry is left out).
fn walk(
    root: &Path,
    rel: &Path,
    ignore: &Dockerignore,
    parent: &MatchInfo,
    f: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<()>,
) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        let r = rel.join(&n);
        let key = r.to_string_lossy().into_owned();
        let (excluded, info) = if ignore.is_empty() {
            (false, MatchInfo::default())
        } else {
            ignore.check(&key, parent)
        };
        let md = fs::symlink_metadata(root.join(&r))?;
        if excluded {
            if md.is_dir() && !ignore.can_skip_dir(&key) {
                walk(root, &r, ignore, &info, f)?;
            }
            continue;
        }
        f(&r, &md)?;
        if md.is_dir() {
            walk(root, &r, ignore, &info, f)?;
        }
    }
    Ok(())
}

pub fn prune_spec(path: &str) -> Spec {
    super::spec(
        path,
        "[OPTIONS]",
        NArgs::Exact(0),
        vec![
            Flag::bool(
                "all",
                "Remove all unused build cache, not just dangling ones",
            )
            .short('a'),
            Flag::list(
                "filter",
                "filter",
                "Provide filter values (e.g. \"until=24h\")",
            ),
            Flag::bool("force", "Do not prompt for confirmation").short('f'),
            Flag::value(
                "keep-storage",
                "bytes",
                "Amount of disk space to keep for cache",
            ),
        ],
    )
}

/// `berth builder prune`.
pub async fn prune(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let warning = if m.flag("all") {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !m.flag("force") && !super::ops::confirm(warning)? {
        return Ok(());
    }
    let keep_storage = match m.value("keep-storage") {
        Some(s) => super::units::ram_in_bytes(s).map_err(|e| {
            CliError::msg(format!(
                "invalid argument {s:?} for \"--keep-storage\" flag: {e}"
            ))
        })?,
        None => 0,
    };
    let opts = berth_api::BuildPruneOptions {
        all: m.flag("all"),
        keep_storage,
        filters: super::container::parse_filters(&m.list("filter")),
    };
    let report = ctx.client()?.build_prune(&opts).await?;
    let mut out = String::new();
    if let Some(ids) = report.caches_deleted.filter(|v| !v.is_empty()) {
        out.push_str("Deleted build cache objects:\n");
        for id in ids {
            out.push_str(&id);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        super::units::human_size(report.space_reclaimed as f64)
    ));
    super::print_out(&out)
}

/// One step as the progress view shows it.
struct Vertex {
    /// BuildKit-style number (`#3`), in order of first appearance.
    number: usize,
    name: String,
    state: VertexState,
    lines: std::collections::VecDeque<String>,
    partial: String,
    bar: Option<indicatif::ProgressBar>,
}

use berth_build::progress::{Trace, VertexState, TRACE_ID};

/// Renders structured progress: a live view on a terminal (each step with its state, elapsed
/// time and last lines of output), else a line per event (`#3 RUN make`, `#3 output`,
/// `#3 DONE 1.2s`). Returns the image ID.
async fn trace_view(
    stream: berth_api::client::ClientStream<berth_api::models::JsonMessage>,
    tty: bool,
) -> CliResult<String> {
    use futures_util::StreamExt;
    use std::collections::HashMap;
    const TAIL: usize = 6;
    let mut stream = stream;
    let multi = tty.then(|| {
        indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr())
    });
    let style = indicatif::ProgressStyle::with_template("{spinner:.blue} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let mut vertices: HashMap<u32, Vertex> = HashMap::new();
    let mut image_id = String::new();
    let started = std::time::Instant::now();
    let err = |s: &str| {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(s.as_bytes());
    };
    let render = |v: &Vertex, elapsed: Option<u64>| -> String {
        let mut s = format!("#{} {}", v.number, v.name);
        match v.state {
            VertexState::Cached => s.push_str("  CACHED"),
            VertexState::Done => s.push_str(&format!(
                "  DONE {:.1}s",
                elapsed.unwrap_or(0) as f64 / 1000.0
            )),
            VertexState::Error => s.push_str("  ERROR"),
            _ => {}
        }
        if v.state == VertexState::Running {
            for l in &v.lines {
                s.push_str(&format!("\n    {l}"));
            }
        }
        s
    };
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        if let Some(e) = msg.error_message() {
            if let Some(m) = &multi {
                let _ = m.clear();
            }
            let code = msg.error_detail.as_ref().map_or(0, |d| d.code);
            return Err(CliError::new(
                if code > 0 { code as i32 } else { 1 },
                e.to_string(),
            ));
        }
        let Some(aux) = &msg.aux else { continue };
        if msg.id.as_deref() != Some(TRACE_ID) {
            if let Some(id) = aux.get("ID").and_then(|v| v.as_str()) {
                image_id = id.to_string();
            }
            continue;
        }
        let Ok(t) = serde_json::from_value::<Trace>(aux.clone()) else {
            continue;
        };
        let n = vertices.len() + 1;
        let v = vertices.entry(t.vertex).or_insert_with(|| Vertex {
            number: n,
            name: t.name.clone(),
            state: VertexState::Waiting,
            lines: Default::default(),
            partial: String::new(),
            bar: None,
        });
        let first = v.bar.is_none() && v.state == VertexState::Waiting;
        if first {
            match &multi {
                Some(m) => {
                    let b = m.add(indicatif::ProgressBar::new_spinner());
                    b.set_style(style.clone());
                    b.enable_steady_tick(std::time::Duration::from_millis(120));
                    v.bar = Some(b);
                }
                None => err(&format!("#{} {}\n", v.number, v.name)),
            }
        }
        if let Some(out) = &t.output {
            v.partial.push_str(out);
            while let Some(pos) = v.partial.find('\n') {
                let line: String = v.partial.drain(..=pos).collect();
                let line = line.trim_end_matches('\n').to_string();
                if multi.is_none() {
                    err(&format!("#{} {line}\n", v.number));
                }
                v.lines.push_back(line);
                if v.lines.len() > TAIL {
                    v.lines.pop_front();
                }
            }
        }
        v.state = t.state;
        let text = render(v, t.elapsed_ms);
        match (&v.bar, t.state) {
            (Some(b), VertexState::Running) => b.set_message(text),
            (Some(b), _) => b.finish_with_message(text),
            (None, VertexState::Cached) => err(&format!("#{} CACHED\n", v.number)),
            (None, VertexState::Done) => err(&format!(
                "#{} DONE {:.1}s\n",
                v.number,
                t.elapsed_ms.unwrap_or(0) as f64 / 1000.0
            )),
            (None, VertexState::Error) => err(&format!("#{} ERROR\n", v.number)),
            _ => {}
        }
    }
    if multi.is_some() {
        err(&format!(
            "[+] Building {:.1}s (done)\n",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(image_id)
}
