//! Image verbs: images, rmi, tag, history, save, load, import, pull, push.

use std::io::Write;
use std::pin::Pin;

use berth_api::client::ImportOptions;
use berth_api::models::{HistoryItem, ImageSummary};
use berth_api::{BodyStream, ImageDeleteOptions, ImageListOptions};
use berth_image::reference::Reference;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use gotmpl::Value;

use super::container::{format_flag, parse_filters};
use super::flags::{Flag, Matches, NArgs, Spec};
use super::format::{self, template::string_map, Listing, Row};
use super::progress::{self, Out};
use super::units::{self, ellipsis, truncate_id};
use super::{auth, term, CliError, CliResult, Ctx, Verb};

pub fn spec(verb: Verb, path: &str) -> Spec {
    let platform = |what: &'static str| Flag::value("platform", "string", what);
    match verb {
        Verb::Images => super::spec(
            path,
            "[OPTIONS] [REPOSITORY[:TAG]]",
            NArgs::Max(1),
            vec![
                Flag::bool("all", "Show all images (default hides intermediate images)").short('a'),
                Flag::bool("digests", "Show digests"),
                Flag::list("filter", "filter", "Filter output based on conditions provided").short('f'),
                format_flag(),
                Flag::bool("no-trunc", "Don't truncate output"),
                Flag::bool("quiet", "Only show image IDs").short('q'),
                Flag::bool("tree", "List multi-platform images as a tree (EXPERIMENTAL)").hidden(),
            ],
        ),
        Verb::Rmi => super::spec(
            path,
            "[OPTIONS] IMAGE [IMAGE...]",
            NArgs::Min(1),
            vec![
                Flag::bool("force", "Force removal of the image").short('f'),
                Flag::bool("no-prune", "Do not delete untagged parents"),
                Flag::list("platform", "strings", "Remove only the given platform variant. Formatted as \"os[/arch[/variant]]\" (e.g., \"linux/amd64\")").hidden(),
            ],
        ),
        Verb::Tag => super::spec(path, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", NArgs::Exact(2), vec![]),
        Verb::History => super::spec(
            path,
            "[OPTIONS] IMAGE",
            NArgs::Exact(1),
            vec![
                format_flag(),
                Flag::bool("human", "Print sizes and dates in human readable format").short('H').default("true"),
                Flag::bool("no-trunc", "Don't truncate output"),
                platform("Show history for the given platform. Formatted as \"os[/arch[/variant]]\" (e.g., \"linux/amd64\")").hidden(),
                Flag::bool("quiet", "Only show image IDs").short('q'),
            ],
        ),
        Verb::Save => super::spec(
            path,
            "[OPTIONS] IMAGE [IMAGE...]",
            NArgs::Min(1),
            vec![
                Flag::value("output", "string", "Write to a file, instead of STDOUT").short('o'),
                platform("Save only the given platform variant. Formatted as \"os[/arch[/variant]]\" (e.g., \"linux/amd64\")").hidden(),
            ],
        ),
        Verb::Load => super::spec(
            path,
            "[OPTIONS]",
            NArgs::None,
            vec![
                Flag::value("input", "string", "Read from tar archive file, instead of STDIN").short('i'),
                platform("Load only the given platform variant. Formatted as \"os[/arch[/variant]]\" (e.g., \"linux/amd64\")").hidden(),
                Flag::bool("quiet", "Suppress the load output").short('q'),
            ],
        ),
        Verb::Import => super::spec(
            path,
            "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
            NArgs::Range(1, 2),
            vec![
                Flag::list("change", "list", "Apply Dockerfile instruction to the created image").short('c'),
                Flag::value("message", "string", "Set commit message for imported image").short('m'),
                platform("Set platform if server is multi-platform capable"),
            ],
        ),
        Verb::Pull => super::spec(
            path,
            "[OPTIONS] NAME[:TAG|@DIGEST]",
            NArgs::Exact(1),
            vec![
                Flag::bool("all-tags", "Download all tagged images in the repository").short('a'),
                Flag::bool("disable-content-trust", "Skip image verification (default true)").hidden(),
                platform("Set platform if server is multi-platform capable"),
                Flag::bool("quiet", "Suppress verbose output").short('q'),
            ],
        ),
        Verb::Push => super::spec(
            path,
            "[OPTIONS] NAME[:TAG]",
            NArgs::Exact(1),
            vec![
                Flag::bool("all-tags", "Push all tags of an image to the repository").short('a'),
                Flag::bool("disable-content-trust", "Skip image signing (default true)").hidden(),
                platform("Push a platform-specific manifest as a single-platform image to the registry.").hidden(),
                Flag::bool("quiet", "Suppress verbose output").short('q'),
            ],
        ),
        _ => super::spec(path, "", NArgs::Any, vec![]),
    }
}

pub async fn run(ctx: &Ctx, verb: Verb, m: Matches) -> CliResult<()> {
    match verb {
        Verb::Images => images(ctx, m).await,
        Verb::Rmi => rmi(ctx, m).await,
        Verb::Tag => tag(ctx, m).await,
        Verb::History => history(ctx, m).await,
        Verb::Save => save(ctx, m).await,
        Verb::Load => load(ctx, m).await,
        Verb::Import => import(ctx, m).await,
        Verb::Pull => pull(ctx, m).await,
        Verb::Push => push(ctx, m).await,
        other => Err(CliError::msg(format!(
            "berth: {other:?} is not an image verb"
        ))),
    }
}

pub(crate) const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// Docker's `NewImageFormat`.
pub fn images_format(source: &str, quiet: bool, digests: bool) -> String {
    match source {
        "table" => {
            if quiet {
                "{{.ID}}".to_string()
            } else if digests {
                IMAGES_TABLE_DIGESTS.to_string()
            } else {
                IMAGES_TABLE.to_string()
            }
        }
        "raw" => {
            if quiet {
                "image_id: {{.ID}}".to_string()
            } else if digests {
                "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n".to_string()
            } else {
                "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n".to_string()
            }
        }
        f => {
            if f.starts_with("table") && digests && !f.contains("{{.Digest}}") {
                f.replacen("{{.Tag}}", "{{.Tag}}\t{{.Digest}}", 1)
            } else {
                f.to_string()
            }
        }
    }
}

pub(crate) fn image_row(
    img: &ImageSummary,
    repo: &str,
    tag: &str,
    digest: &str,
    trunc: bool,
) -> Row {
    let id = if trunc {
        truncate_id(&img.id)
    } else {
        img.id.clone()
    };
    let na_or = |v: i64, f: &dyn Fn(i64) -> String| if v == -1 { "N/A".to_string() } else { f(v) };
    let fields: Vec<(&str, Value)> = vec![
        ("ID", id.into()),
        ("Repository", repo.into()),
        ("Tag", tag.into()),
        ("Digest", digest.into()),
        (
            "CreatedSince",
            if img.created == 0 {
                "N/A".to_string()
            } else {
                units::since(img.created)
            }
            .into(),
        ),
        ("CreatedAt", units::go_time_string(img.created).into()),
        (
            "Size",
            units::human_size_precision(img.size as f64, 3).into(),
        ),
        (
            "Containers",
            na_or(img.containers, &|v| v.to_string()).into(),
        ),
        (
            "VirtualSize",
            units::human_size(img.virtual_size as f64).into(),
        ),
        (
            "SharedSize",
            na_or(img.shared_size, &|v| units::human_size(v as f64)).into(),
        ),
        (
            "UniqueSize",
            na_or(img.shared_size, &|v| {
                units::human_size((img.size - v) as f64)
            })
            .into(),
        ),
    ];
    Row {
        ctx: string_map(fields),
        labels: img.labels.clone().unwrap_or_default(),
    }
}

/// Docker's `imageFormat`: one row per repository:tag (and per digest with `--digests`),
/// `<none>` rows for dangling images and digest-only references.
pub fn image_rows(images: &[ImageSummary], digests: bool, trunc: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    for img in images {
        let tags = img.repo_tags.clone().unwrap_or_default();
        let dgsts = img.repo_digests.clone().unwrap_or_default();
        let dangling = (tags.is_empty() && dgsts.is_empty())
            || (tags == ["<none>:<none>"] && dgsts == ["<none>@<none>"]);
        if dangling {
            rows.push(image_row(img, "<none>", "<none>", "<none>", trunc));
            continue;
        }
        let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
        for t in &tags {
            let Ok(r) = Reference::parse_normalized(t) else {
                continue;
            };
            let Some(tag) = r.tag() else { continue };
            let name = r.familiar_name();
            match repo_tags.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(tag.to_string()),
                None => repo_tags.push((name, vec![tag.to_string()])),
            }
        }
        let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
        for d in &dgsts {
            let Ok(r) = Reference::parse_normalized(d) else {
                continue;
            };
            let Some(dg) = r.digest() else { continue };
            let name = r.familiar_name();
            match repo_digests.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(dg.to_string()),
                None => repo_digests.push((name, vec![dg.to_string()])),
            }
        }
        for (repo, tags) in &repo_tags {
            let ds = match repo_digests.iter().position(|(n, _)| n == repo) {
                Some(i) => repo_digests.remove(i).1,
                None => Vec::new(),
            };
            let ds = if digests { ds } else { Vec::new() };
            for tag in tags {
                if ds.is_empty() {
                    rows.push(image_row(img, repo, tag, "<none>", trunc));
                }
                for d in &ds {
                    rows.push(image_row(img, repo, tag, d, trunc));
                }
            }
        }
        for (repo, ds) in &repo_digests {
            if digests {
                for d in ds {
                    rows.push(image_row(img, repo, "<none>", d, trunc));
                }
            } else {
                rows.push(image_row(img, repo, "<none>", "", trunc));
            }
        }
    }
    rows
}

async fn images(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if m.flag("tree") {
        return Err(CliError::msg("berth: --tree is not implemented"));
    }
    let quiet = m.flag("quiet");
    let digests = m.flag("digests");
    let mut filters = parse_filters(&m.list("filter"));
    if let Some(r) = m.args.first() {
        filters.add("reference", r.clone());
    }
    let mut source = m.string("format").unwrap_or_default();
    if source.is_empty() {
        source = match ctx.config().ok().and_then(|c| c.images_format()) {
            Some(f) if !quiet => f,
            _ => "table".to_string(),
        };
    }
    let client = ctx.client()?;
    let list = client
        .image_list(&ImageListOptions {
            all: m.flag("all"),
            filters,
            digests: false,
            shared_size: false,
        })
        .await?;
    let rows = image_rows(&list, digests, !m.flag("no-trunc"));
    let out = format::render(
        &images_format(&source, quiet, digests),
        &Listing {
            default_table: IMAGES_TABLE,
            headers: IMAGE_HEADERS,
        },
        &rows,
    )?;
    super::print_out(&out)
}

async fn rmi(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if !m.list("platform").is_empty() {
        return Err(CliError::msg(
            "berth: --platform is not implemented for rmi",
        ));
    }
    let client = ctx.client()?;
    let force = m.flag("force");
    let opts = ImageDeleteOptions {
        force,
        noprune: m.flag("no-prune"),
    };
    let mut errs = Vec::new();
    let mut fatal = false;
    for img in &m.args {
        match client.image_delete(img, opts).await {
            Ok(items) => {
                let mut out = String::new();
                for i in items {
                    match (i.deleted, i.untagged) {
                        (Some(d), _) if !d.is_empty() => out.push_str(&format!("Deleted: {d}\n")),
                        (_, Some(u)) => out.push_str(&format!("Untagged: {u}\n")),
                        _ => {}
                    }
                }
                super::print_out(&out)?;
            }
            Err(e) => {
                if !e.is_not_found() {
                    fatal = true;
                }
                errs.push(e.to_string());
            }
        }
    }
    if errs.is_empty() {
        return Ok(());
    }
    let msg = errs.join("\n");
    if !force || fatal {
        return Err(CliError::msg(msg));
    }
    super::eprintln_err(&msg);
    Ok(())
}

async fn tag(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let (source, target) = (&m.args[0], &m.args[1]);
    let bad = |r: &str, e: String| {
        CliError::msg(format!(
            "Error parsing reference: {} is not a valid repository/tag: {e}",
            super::flags::go_quote(r)
        ))
    };
    let r = Reference::parse_normalized(target).map_err(|e| bad(target, e.to_string()))?;
    if r.digest().is_some() {
        return Err(CliError::msg(
            "refusing to create a tag with a digest reference",
        ));
    }
    let r = r.with_default_tag();
    let client = ctx.client()?;
    client
        .image_tag(source, &r.familiar_name(), r.tag())
        .await?;
    Ok(())
}

const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const HISTORY_TABLE_NON_HUMAN: &str =
    "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

pub fn history_row(h: &HistoryItem, human: bool, trunc: bool) -> Row {
    let id = if trunc {
        truncate_id(&h.id)
    } else {
        h.id.clone()
    };
    let created_at = units::rfc3339_local(h.created);
    let created_by = h.created_by.replace('\t', " ");
    let fields: Vec<(&str, Value)> = vec![
        ("ID", id.into()),
        (
            "CreatedSince",
            if human {
                units::since(h.created)
            } else {
                created_at.clone()
            }
            .into(),
        ),
        ("CreatedAt", created_at.into()),
        (
            "CreatedBy",
            if trunc {
                ellipsis(&created_by, 45)
            } else {
                created_by
            }
            .into(),
        ),
        (
            "Size",
            if human {
                units::human_size_precision(h.size as f64, 3)
            } else {
                h.size.to_string()
            }
            .into(),
        ),
        ("Comment", h.comment.clone().into()),
    ];
    Row::new(string_map(fields))
}

async fn history(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if m.changed("platform") {
        return Err(CliError::msg(
            "berth: --platform is not implemented for history",
        ));
    }
    let human = m.flag_or("human", true);
    let quiet = m.flag("quiet");
    let client = ctx.client()?;
    let items = client.image_history(&m.args[0]).await?;
    let trunc = !m.flag("no-trunc");
    let rows: Vec<Row> = items.iter().map(|h| history_row(h, human, trunc)).collect();
    let source = m.string("format").unwrap_or_default();
    let default = if human {
        HISTORY_TABLE
    } else {
        HISTORY_TABLE_NON_HUMAN
    };
    let fmt = match source.as_str() {
        "" | "table" if quiet => "{{.ID}}".to_string(),
        "" | "table" => default.to_string(),
        f => f.to_string(),
    };
    let out = format::render(
        &fmt,
        &Listing {
            default_table: default,
            headers: HISTORY_HEADERS,
        },
        &rows,
    )?;
    super::print_out(&out)
}

/// Docker's `ValidateOutputPath`.
pub(crate) fn validate_output_path(path: &str) -> Result<(), String> {
    let p = std::path::Path::new(path);
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            return Err(format!(
                "invalid output path: directory {} does not exist",
                super::flags::go_quote(&dir.to_string_lossy())
            ));
        }
    }
    if let Ok(meta) = std::fs::metadata(p) {
        if !(meta.is_dir() || meta.is_file()) {
            return Err(format!(
                "invalid output path: {} must be a directory or a regular file",
                super::flags::go_quote(path)
            ));
        }
    }
    Ok(())
}

async fn save(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if m.changed("platform") {
        return Err(CliError::msg(
            "berth: --platform is not implemented for save",
        ));
    }
    let output = m.string("output").filter(|o| !o.is_empty());
    if output.is_none() && term::is_tty(1) {
        return Err(CliError::msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    if let Some(o) = &output {
        validate_output_path(o).map_err(|e| CliError::msg(format!("failed to save image: {e}")))?;
    }
    let client = ctx.client()?;
    let body = client.images_get(&m.args).await?;
    write_output(body, output, "failed to save image").await
}

/// Writes a downloaded tar to stdout or, like Docker's `CopyToFile`, to a temporary file next
/// to `output` that is then renamed over it. Errors about the file start with `what`.
pub(crate) async fn write_output<S, E>(
    mut body: S,
    output: Option<String>,
    what: &str,
) -> CliResult<()>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    CliError: From<E>,
{
    match output {
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = body.next().await {
                out.write_all(&chunk?)?;
            }
            out.flush()?;
        }
        Some(path) => {
            let target = std::path::PathBuf::from(&path);
            let dir = target
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(|d| d.to_path_buf())
                .unwrap_or_else(|| std::path::PathBuf::from("."));
            let mut tmp = tempfile::Builder::new()
                .prefix("berth-temp-")
                .tempfile_in(&dir)
                .map_err(|e| CliError::msg(format!("{what}: {e}")))?;
            while let Some(chunk) = body.next().await {
                tmp.write_all(&chunk?)?;
            }
            tmp.as_file().sync_all()?;
            tmp.persist(&target)
                .map_err(|e| CliError::msg(format!("{what}: {}", e.error)))?;
        }
    }
    Ok(())
}

/// A request body from a file or stdin.
async fn body_from(source: Option<&str>) -> CliResult<BodyStream> {
    let stream: Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>> = match source {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| CliError::msg(super::opts::go_open_error(path, &e)))?;
            Box::pin(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024))
        }
        None => Box::pin(tokio_util::io::ReaderStream::with_capacity(
            tokio::io::stdin(),
            256 * 1024,
        )),
    };
    Ok(stream)
}

async fn load(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if m.changed("platform") {
        return Err(CliError::msg(
            "berth: --platform is not implemented for load",
        ));
    }
    let input = m.string("input").filter(|i| !i.is_empty());
    if input.is_none() && term::is_tty(0) {
        return Err(CliError::msg(
            "requested load from stdin, but stdin is empty",
        ));
    }
    let body = body_from(input.as_deref()).await?;
    let quiet = m.flag("quiet") || !term::is_tty(1);
    let client = ctx.client()?;
    let stream = client.images_load(body, quiet).await?;
    progress::display(stream, Out::Stdout, |_| {}).await??;
    Ok(())
}

async fn import(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let source = m.args[0].as_str();
    if source.starts_with("http://") || source.starts_with("https://") {
        return Err(CliError::msg(
            "berth: importing from a URL is not implemented; download the file and import it, or pipe it to `berth import -`",
        ));
    }
    let repo = m.args.get(1).cloned();
    if let Some(r) = &repo {
        Reference::parse_normalized(r).map_err(|e| CliError::msg(e.to_string()))?;
    }
    let body = body_from((source != "-").then_some(source)).await?;
    let client = ctx.client()?;
    let stream = client
        .image_import(
            &ImportOptions {
                repo,
                tag: None,
                message: m.string("message").filter(|s| !s.is_empty()),
                changes: m.list("change"),
                platform: m.string("platform").filter(|s| !s.is_empty()),
            },
            body,
        )
        .await?;
    progress::display(stream, Out::Stdout, |_| {}).await??;
    Ok(())
}

/// Parses NAME[:TAG|@DIGEST] for pull/push: with `--all-tags` no tag may be given; without,
/// `:latest` is added (and announced unless quiet).
fn remote_ref(name: &str, all: bool, quiet: bool) -> CliResult<Reference> {
    let r = Reference::parse_normalized(name).map_err(|e| CliError::msg(e.to_string()))?;
    let name_only = r.tag().is_none() && r.digest().is_none();
    if all && !name_only {
        return Err(CliError::msg("tag can't be used with --all-tags/-a"));
    }
    if !all && name_only {
        let r = r.with_default_tag();
        if !quiet {
            super::println_out("Using default tag: latest")?;
        }
        return Ok(r);
    }
    Ok(r)
}

async fn pull(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let (all, quiet) = (m.flag("all-tags"), m.flag("quiet"));
    let r = remote_ref(&m.args[0], all, quiet)?;
    let cfg = ctx.config()?;
    let auth = cfg
        .get_auth(&auth::auth_key_for_domain(r.domain()))
        .map_err(|e| CliError::msg(e.to_string()))?;
    let tag = if all {
        None
    } else {
        r.digest()
            .map(|d| d.to_string())
            .or_else(|| r.tag().map(str::to_string))
    };
    let platform = m
        .string("platform")
        .filter(|p| !p.is_empty())
        .map(|p| p.to_lowercase());
    let client = ctx.client()?;
    let stream = client
        .image_pull(&r.name(), tag.as_deref(), platform.as_deref(), &auth)
        .await?;
    let out = if quiet { Out::Discard } else { Out::Stdout };
    progress::display(stream, out, |_| {}).await??;
    super::println_out(&r.to_string())
}

async fn push(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if m.changed("platform") {
        return Err(CliError::msg(
            "berth: --platform is not implemented for push",
        ));
    }
    let (all, quiet) = (m.flag("all-tags"), m.flag("quiet"));
    let r = remote_ref(&m.args[0], all, quiet)?;
    if r.digest().is_some() {
        return Err(CliError::msg("cannot push a digest reference"));
    }
    let cfg = ctx.config()?;
    let auth = cfg
        .get_auth(&auth::auth_key_for_domain(r.domain()))
        .map_err(|e| CliError::msg(e.to_string()))?;
    let client = ctx.client()?;
    let stream = client
        .image_push(&r.familiar_name(), if all { None } else { r.tag() }, &auth)
        .await?;
    let out = if quiet { Out::Discard } else { Out::Stdout };
    progress::display(stream, out, |_| {}).await??;
    if quiet {
        super::println_out(&r.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(json: serde_json::Value) -> ImageSummary {
        serde_json::from_value(json).unwrap()
    }

    fn render(fmt: &str, rows: &[Row]) -> String {
        format::render(
            fmt,
            &Listing {
                default_table: IMAGES_TABLE,
                headers: IMAGE_HEADERS,
            },
            rows,
        )
        .unwrap()
    }

    #[test]
    fn image_rows_like_docker() {
        let now = chrono::Utc::now().timestamp();
        let images = vec![
            summary(
                serde_json::json!({"Containers":-1,"Created":now - 300,"Id":"sha256:e2ddf69e46c83fbbdb927db20840392598e587bdebd069fed159fbc2e64bb4ec","Labels":null,"ParentId":"","RepoDigests":["localhost:5000/me/busybox@sha256:5dca5e695bdb115681f4c8c9e2e44ee3876a1062251e6aaf805366e1c2600b2b"],"RepoTags":["busybox:latest","localhost:5000/me/busybox:latest","busybox:1.35"],"SharedSize":-1,"Size":2140160,"VirtualSize":2140160}),
            ),
            summary(
                serde_json::json!({"Containers":2,"Created":now - 90000,"Id":"sha256:31c2930e2f4cb72c79911037907cd652e974b9383aa12f7493bcdcf4d4102594","Labels":null,"ParentId":"","RepoDigests":[],"RepoTags":[],"SharedSize":100,"Size":2140170,"VirtualSize":2140170}),
            ),
            summary(
                serde_json::json!({"Containers":-1,"Created":now - 90000,"Id":"sha256:aaaa930e2f4cb72c79911037907cd652e974b9383aa12f7493bcdcf4d4102594","Labels":null,"ParentId":"","RepoDigests":["me/x@sha256:5dca5e695bdb115681f4c8c9e2e44ee3876a1062251e6aaf805366e1c2600b2b"],"RepoTags":null,"SharedSize":-1,"Size":5,"VirtualSize":5}),
            ),
        ];
        // The Docker CLI 28.2.2 printed these rows for the same response (its map order varies).
        assert_eq!(
            render(
                &images_format("table", false, false),
                &image_rows(&images, false, true)
            ),
            "REPOSITORY                  TAG       IMAGE ID       CREATED         SIZE\n\
             busybox                     latest    e2ddf69e46c8   5 minutes ago   2.14MB\n\
             busybox                     1.35      e2ddf69e46c8   5 minutes ago   2.14MB\n\
             localhost:5000/me/busybox   latest    e2ddf69e46c8   5 minutes ago   2.14MB\n\
             <none>                      <none>    31c2930e2f4c   25 hours ago    2.14MB\n\
             me/x                        <none>    aaaa930e2f4c   25 hours ago    5B\n"
        );
        let digests = render(
            &images_format("table", false, true),
            &image_rows(&images, true, true),
        );
        assert!(digests.contains("localhost:5000/me/busybox   latest    sha256:5dca5e695bdb115681f4c8c9e2e44ee3876a1062251e6aaf805366e1c2600b2b   e2ddf69e46c8"));
        assert!(digests.contains("me/x                        <none>    sha256:5dca"));
        let json = render("{{json .}}", &image_rows(&images[1..], false, true));
        let mut lines = json.lines();
        let first: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(first["Containers"], "2");
        assert_eq!(first["SharedSize"], "100B");
        assert_eq!(first["UniqueSize"], "2.14MB");
        assert_eq!(first["Repository"], "<none>");
        let second: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(second["Digest"], "");
        assert_eq!(second["SharedSize"], "N/A");
        assert_eq!(
            render(
                &images_format("table", true, false),
                &image_rows(&images, false, true)
            ),
            "e2ddf69e46c8\ne2ddf69e46c8\ne2ddf69e46c8\n31c2930e2f4c\naaaa930e2f4c\n"
        );
    }

    #[test]
    fn empty_listing_prints_the_header() {
        assert_eq!(
            render(&images_format("table", false, false), &[]),
            "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
        );
    }

    #[test]
    fn history_like_docker() {
        let now = chrono::Utc::now().timestamp();
        let items: Vec<HistoryItem> = serde_json::from_value(serde_json::json!([
            {"Comment":"","Created":now - 7,"CreatedBy":"/bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"cat /opt/app/app.txt; ls /opt/app/payload; echo $GREETING\"]","Id":"sha256:2545e79bcc34fc2ec30cf5acdca2844b0378e171b389974721dd7968777c3d58","Size":0,"Tags":["tr-app:1"]},
            {"Comment":"","Created":now - 8,"CreatedBy":"/bin/sh -c\tmkdir -p /opt/app","Id":"<missing>","Size":19,"Tags":null},
            {"Comment":"Imported from -","Created":now - 360,"CreatedBy":"","Id":"sha256:e2ddf69e46c83fbbdb927db20840392598e587bdebd069fed159fbc2e64bb4ec","Size":2140160,"Tags":null}
        ]))
        .unwrap();
        let rows: Vec<Row> = items.iter().map(|h| history_row(h, true, true)).collect();
        let out = format::render(
            HISTORY_TABLE,
            &Listing {
                default_table: HISTORY_TABLE,
                headers: HISTORY_HEADERS,
            },
            &rows,
        )
        .unwrap();
        assert_eq!(
            out,
            "IMAGE          CREATED         CREATED BY                                      SIZE      COMMENT\n\
             2545e79bcc34   7 seconds ago   /bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"cat /opt/…   0B        \n\
             <missing>      8 seconds ago   /bin/sh -c mkdir -p /opt/app                    19B       \n\
             e2ddf69e46c8   6 minutes ago                                                   2.14MB    Imported from -\n"
        );
        let raw = history_row(&items[2], false, true);
        assert_eq!(raw.ctx.field("Size").unwrap().to_string(), "2140160");
    }

    #[test]
    fn remote_refs() {
        assert_eq!(
            remote_ref("localhost:5000/me/x:v1", false, true)
                .unwrap()
                .to_string(),
            "localhost:5000/me/x:v1"
        );
        assert_eq!(
            remote_ref("busybox", false, true).unwrap().to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            remote_ref("busybox", true, true).unwrap().to_string(),
            "docker.io/library/busybox"
        );
        assert_eq!(
            remote_ref("busybox:1", true, true).unwrap_err().message,
            "tag can't be used with --all-tags/-a"
        );
    }
}
