//! `container prune`, `image prune`, `system df`, `diff`, `export`, `commit` and `stats`.

use std::io::{BufRead, Write};

use berth_api::models::{ContainerSummary, ImageSummary, SystemDf};
use berth_api::Filters;

use super::container::{format_flag, parse_filters};
use super::flags::{Flag, Matches, NArgs, Spec};
use super::format::{self, template::string_map, Listing, Row};
use super::units::human_size;
use super::{CliError, CliResult, Ctx, Verb};

pub fn spec(verb: Verb, path: &str) -> Spec {
    let filter = || {
        Flag::list(
            "filter",
            "filter",
            "Provide filter values (e.g. \"until=<timestamp>\")",
        )
    };
    let force = || Flag::bool("force", "Do not prompt for confirmation").short('f');
    match verb {
        Verb::ContainerPrune => {
            super::spec(path, "[OPTIONS]", NArgs::Exact(0), vec![filter(), force()])
        }
        Verb::Diff => super::spec(path, "CONTAINER", NArgs::Exact(1), vec![]),
        Verb::Stats => super::spec(
            path,
            "[OPTIONS] [CONTAINER...]",
            NArgs::Any,
            vec![
                Flag::bool("all", "Show all containers (default shows just running)").short('a'),
                format_flag(),
                Flag::bool(
                    "no-stream",
                    "Disable streaming stats and only pull the first result",
                ),
                Flag::bool("no-trunc", "Do not truncate output"),
            ],
        ),
        Verb::Commit => super::spec(
            path,
            "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
            NArgs::Range(1, 2),
            vec![
                Flag::value(
                    "author",
                    "string",
                    "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")",
                )
                .short('a'),
                Flag::list(
                    "change",
                    "list",
                    "Apply Dockerfile instruction to the created image",
                )
                .short('c'),
                Flag::value("message", "string", "Commit message").short('m'),
                Flag::bool("pause", "Pause container during commit")
                    .short('p')
                    .default("true"),
            ],
        ),
        Verb::Export => super::spec(
            path,
            "[OPTIONS] CONTAINER",
            NArgs::Exact(1),
            vec![Flag::value("output", "string", "Write to a file, instead of STDOUT").short('o')],
        ),
        Verb::SystemCheck => super::spec(
            path,
            "[OPTIONS]",
            NArgs::Exact(0),
            vec![
                Flag::bool("repair", "Mend what the check finds"),
                Flag::value(
                    "config-file",
                    "string",
                    "The daemon's configuration file (for its data-root and exec-root)",
                )
                .default(DEFAULT_DAEMON_CONFIG),
                Flag::value("data-root", "string", "The data root to check"),
                Flag::value("exec-root", "string", "The daemon's exec root"),
            ],
        ),
        Verb::SystemPrune => super::spec(
            path,
            "[OPTIONS]",
            NArgs::Exact(0),
            vec![
                Flag::bool("all", "Remove all unused images not just dangling ones").short('a'),
                Flag::list(
                    "filter",
                    "filter",
                    "Provide filter values (e.g. \"label=<key>=<value>\")",
                ),
                force(),
                Flag::bool("volumes", "Prune anonymous volumes"),
            ],
        ),
        Verb::ImagePrune => super::spec(
            path,
            "[OPTIONS]",
            NArgs::Exact(0),
            vec![
                Flag::bool("all", "Remove all unused images, not just dangling ones").short('a'),
                filter(),
                force(),
            ],
        ),
        _ => super::spec(
            path,
            "[OPTIONS]",
            NArgs::Exact(0),
            vec![
                format_flag(),
                Flag::bool("verbose", "Show detailed information on space usage").short('v'),
            ],
        ),
    }
}

pub async fn run(ctx: &Ctx, verb: Verb, m: Matches) -> CliResult<()> {
    match verb {
        Verb::ContainerPrune => container_prune(ctx, m).await,
        Verb::ImagePrune => image_prune(ctx, m).await,
        Verb::SystemPrune => system_prune(ctx, m).await,
        Verb::SystemCheck => system_check(m).await,
        Verb::Diff => diff(ctx, m).await,
        Verb::Export => export(ctx, m).await,
        Verb::Commit => commit(ctx, m).await,
        Verb::Stats => stats(ctx, m).await,
        _ => system_df(ctx, m).await,
    }
}

async fn diff(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let Some(id) = m.args.first() else {
        return Err(CliError::msg("berth: diff needs a container"));
    };
    let changes = ctx.client()?.container_changes(id).await?;
    let mut out = String::new();
    for c in changes {
        let kind = match c.kind {
            0 => "C",
            1 => "A",
            2 => "D",
            _ => "?",
        };
        out.push_str(&format!("{kind} {}\n", c.path));
    }
    super::print_out(&out)
}

async fn export(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let output = m.string("output").filter(|o| !o.is_empty());
    if output.is_none() && super::term::is_tty(1) {
        return Err(CliError::msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    if let Some(o) = &output {
        super::image::validate_output_path(o)
            .map_err(|e| CliError::msg(format!("failed to export container: {e}")))?;
    }
    let Some(id) = m.args.first() else {
        return Err(CliError::msg("berth: export needs a container"));
    };
    let body = ctx.client()?.container_export(id).await?;
    super::image::write_output(body, output, "failed to export container").await
}

async fn commit(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let Some(container) = m.args.first().cloned() else {
        return Err(CliError::msg("berth: commit needs a container"));
    };
    // As Docker's CLI: the reference is validated and sent as repo + tag.
    let (repo, tag) = match m.args.get(1) {
        None => (None, None),
        Some(r) => {
            let parsed = berth_image::Reference::parse_normalized(r)
                .map_err(|e| CliError::msg(e.to_string()))?;
            if parsed.digest().is_some() {
                return Err(CliError::msg(
                    "refusing to create a tag with a digest reference",
                ));
            }
            (
                Some(parsed.repository().to_string()),
                parsed.tag().map(str::to_string),
            )
        }
    };
    let opts = berth_api::CommitOptions {
        container,
        repo,
        tag,
        comment: m.string("message").unwrap_or_default(),
        author: m.string("author").unwrap_or_default(),
        pause: m.flag_or("pause", true),
        changes: m.list("change"),
        config: None,
    };
    let id = ctx.client()?.commit(&opts).await?;
    super::print_out(&format!("{}\n", id.id))
}

const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const STATS_HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// One row of `stats` from a `StatsJSON` document, computed as Docker's CLI does.
fn stats_row(container: &str, doc: &serde_json::Value, trunc: bool) -> Row {
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or(0) as f64;
    let cpu = &doc["cpu_stats"];
    let pre = &doc["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let online = u(&cpu["online_cpus"]);
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &doc["memory_stats"];
    let usage = u(&mem["usage"]);
    let stat = |k: &str| mem["stats"].get(k).map(u);
    let used = match (stat("total_inactive_file"), stat("inactive_file")) {
        (Some(v), _) if v < usage => usage - v,
        (None, Some(v)) if v < usage => usage - v,
        _ => usage,
    };
    let limit = u(&mem["limit"]);
    let mem_pct = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = doc["networks"].as_object() {
        for n in nets.values() {
            rx += u(&n["rx_bytes"]);
            tx += u(&n["tx_bytes"]);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in doc["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += u(&e["value"]),
            Some("write") => wr += u(&e["value"]),
            _ => {}
        }
    }
    let id = doc["id"].as_str().unwrap_or_default();
    let id = if trunc && id.len() > 12 {
        &id[..12]
    } else {
        id
    };
    let name = doc["name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    let io = |a: f64, b: f64| {
        format!(
            "{} / {}",
            super::units::human_size_precision(a, 3),
            super::units::human_size_precision(b, 3)
        )
    };
    Row::new(string_map([
        ("Container", container.to_string()),
        ("ID", id.to_string()),
        ("Name", name.to_string()),
        ("CPUPerc", format!("{cpu_pct:.2}%")),
        (
            "MemUsage",
            format!(
                "{} / {}",
                berth_api::units::bytes_size(used),
                berth_api::units::bytes_size(limit)
            ),
        ),
        ("MemPerc", format!("{mem_pct:.2}%")),
        ("NetIO", io(rx, tx)),
        ("BlockIO", io(rd, wr)),
        ("PIDs", u(&doc["pids_stats"]["current"]).to_string()),
    ]))
}

async fn stats(ctx: &Ctx, m: Matches) -> CliResult<()> {
    use futures_util::StreamExt;
    let client = ctx.client()?;
    let trunc = !m.flag("no-trunc");
    let source = m.string("format").unwrap_or_default();
    let listing = Listing {
        default_table: STATS_TABLE,
        headers: STATS_HEADERS,
    };
    loop {
        let names: Vec<String> = if m.args.is_empty() {
            client
                .container_list(&berth_api::ContainerListOptions {
                    all: m.flag("all"),
                    ..Default::default()
                })
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect()
        } else {
            m.args.clone()
        };
        let docs = futures_util::future::join_all(names.iter().map(|n| {
            let client = &client;
            async move {
                let opts = berth_api::StatsOptions {
                    stream: false,
                    one_shot: false,
                };
                let mut body = client.container_stats(n, opts).await?;
                let mut buf = Vec::new();
                while let Some(chunk) = body.next().await {
                    buf.extend_from_slice(&chunk?);
                }
                let doc: serde_json::Value = serde_json::from_slice(&buf)
                    .map_err(|e| CliError::msg(format!("berth: bad stats from the daemon: {e}")))?;
                CliResult::Ok(doc)
            }
        }))
        .await;
        let mut rows = Vec::new();
        for (n, d) in names.iter().zip(docs) {
            rows.push(stats_row(n, &d?, trunc));
        }
        let out = format::render(&source, &listing, &rows)?;
        if m.flag("no-stream") {
            return super::print_out(&out);
        }
        // As Docker's CLI: redraw in place.
        super::print_out(&format!("\x1b[H\x1b[J{out}"))?;
    }
}

/// Docker's `PromptForConfirmation`: the warning and `[y/N]` on stdout, one line from stdin.
pub(crate) fn confirm(warning: &str) -> CliResult<bool> {
    let mut out = std::io::stdout();
    let _ = write!(out, "{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::msg(format!("berth: reading the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

async fn container_prune(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if !m.flag("force") && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let (reclaimed, output) = run_container_prune(ctx, parse_filters(&m.list("filter"))).await?;
    print_prune(reclaimed, &output)
}

/// `Deleted …:` block (when not empty) plus the total, as Docker's prune commands print them.
pub(crate) fn print_prune(reclaimed: u64, output: &str) -> CliResult<()> {
    let mut out = String::new();
    if !output.is_empty() {
        out.push_str(output);
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(reclaimed as f64)
    ));
    super::print_out(&out)
}

/// docker-cli's container pruner: the space reclaimed and its `Deleted Containers:` block.
pub(crate) async fn run_container_prune(ctx: &Ctx, filters: Filters) -> CliResult<(u64, String)> {
    let report = ctx.client()?.container_prune(&filters).await?;
    let mut out = String::new();
    let mut reclaimed = 0;
    if let Some(ids) = report.containers_deleted.filter(|v| !v.is_empty()) {
        out.push_str("Deleted Containers:\n");
        for id in ids {
            out.push_str(&id);
            out.push('\n');
        }
        reclaimed = report.space_reclaimed;
    }
    Ok((reclaimed, out))
}

async fn image_prune(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let all = m.flag("all");
    let warning = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !m.flag("force") && !confirm(warning)? {
        return Ok(());
    }
    let (reclaimed, output) = run_image_prune(ctx, all, parse_filters(&m.list("filter"))).await?;
    print_prune(reclaimed, &output)
}

/// docker-cli's image pruner: dangling images, or all unused ones with `all`.
pub(crate) async fn run_image_prune(
    ctx: &Ctx,
    all: bool,
    mut filters: Filters,
) -> CliResult<(u64, String)> {
    // As Docker's CLI: dangling=true unless --all (an explicit dangling filter wins).
    if !filters.contains("dangling") {
        filters.add("dangling", if all { "false" } else { "true" });
    }
    let report = ctx.client()?.image_prune(&filters).await?;
    let mut out = String::new();
    let mut reclaimed = 0;
    if let Some(items) = report.images_deleted.filter(|v| !v.is_empty()) {
        out.push_str("Deleted Images:\n");
        for i in items {
            match (i.untagged, i.deleted) {
                (Some(u), _) if !u.is_empty() => out.push_str(&format!("untagged: {u}\n")),
                (_, Some(d)) if !d.is_empty() => out.push_str(&format!("deleted: {d}\n")),
                _ => {}
            }
        }
        reclaimed = report.space_reclaimed;
    }
    Ok((reclaimed, out))
}

/// `system prune`, as docker-cli's: containers, networks, (with `--volumes`) anonymous
/// volumes, then images, with the filters passed to each; one total at the end.
async fn system_prune(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let filters = parse_filters(&m.list("filter"));
    let (all, volumes) = (m.flag("all"), m.flag("volumes"));
    if volumes && filters.contains("until") {
        return Err(CliError::msg(
            "ERROR: The \"until\" filter is not supported with \"--volumes\"",
        ));
    }
    if !m.flag("force") && !confirm(&system_prune_warning(all, volumes, &filters))? {
        return Ok(());
    }
    let mut total = 0u64;
    let mut out = String::new();
    let mut add = |(n, o): (u64, String)| {
        total += n;
        if !o.is_empty() {
            out.push_str(&o);
            out.push('\n');
        }
    };
    add(run_container_prune(ctx, filters.clone()).await?);
    add(super::network::run_prune(ctx, filters.clone()).await?);
    if volumes {
        add(super::volume::run_prune(ctx, filters.clone()).await?);
    }
    add(run_image_prune(ctx, all, filters.clone()).await?);
    add(run_build_cache_prune(ctx, all, filters).await?);
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(total as f64)
    ));
    super::print_out(&out)
}

use berth_engine::config::DEFAULT_CONFIG_FILE as DEFAULT_DAEMON_CONFIG;

/// `berth system check [--repair]`: the data root of a stopped daemon, walked in this
/// process (berth_engine::check). Exit status 1 when errors are left.
async fn system_check(m: Matches) -> CliResult<()> {
    use berth_engine::config::{FileConfig, DEFAULT_DATA_ROOT, DEFAULT_EXEC_ROOT};
    let config_file = m.string("config-file").unwrap_or_default();
    let fc = FileConfig::load(std::path::Path::new(&config_file), false)
        .map_err(|e| CliError::msg(format!("berth: {e}")))?;
    let pick = |flag: &str, file: &Option<std::path::PathBuf>, default: &str| {
        m.string(flag)
            .filter(|s| !s.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| file.clone())
            .unwrap_or_else(|| std::path::PathBuf::from(default))
    };
    let data_root = pick("data-root", &fc.data_root, DEFAULT_DATA_ROOT);
    let exec_root = pick("exec-root", &fc.exec_root, DEFAULT_EXEC_ROOT);
    let pidfile = fc
        .pidfile
        .clone()
        .unwrap_or_else(|| exec_root.join("berth.pid"));
    if let Some(pid) = live_daemon(&pidfile) {
        return Err(CliError::msg(format!(
            "berth: a berth daemon (pid {pid}) is using {}: stop it first (it runs the cheap part of the check itself at every start)",
            data_root.display()
        )));
    }
    if !data_root.is_dir() {
        return Err(CliError::msg(format!(
            "berth: {} is not a directory: nothing to check",
            data_root.display()
        )));
    }
    let findings = if m.flag("repair") {
        berth_engine::check::repair(&data_root, &exec_root).await
    } else {
        berth_engine::check::scan(&data_root, &exec_root).await
    }
    .map_err(|e| CliError::msg(format!("berth: {e}")))?;
    let mut out = String::new();
    let errors = findings.iter().filter(|f| !f.notice).count();
    for f in &findings {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            if f.notice { "notice" } else { "error" },
            f.problem,
            f.path.display(),
            f.detail
        ));
    }
    if errors == 0 {
        out.push_str(&format!("{}: no problems found\n", data_root.display()));
    } else if m.flag("repair") {
        out.push_str(&format!(
            "{errors} problem(s) left that --repair cannot mend\n"
        ));
    } else {
        out.push_str(&format!(
            "{errors} problem(s) found; run `berth system check --repair` with the daemon stopped to mend them\n"
        ));
    }
    super::print_out(&out)?;
    if errors > 0 {
        return Err(CliError::new(1, String::new()));
    }
    Ok(())
}

/// The pid in `pidfile` when that process lives.
fn live_daemon(pidfile: &std::path::Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    (!matches!(state, Some("Z") | Some("X"))).then_some(pid)
}

/// docker-cli's build-cache pruner: unused cache, or all of it with `all`.
async fn run_build_cache_prune(ctx: &Ctx, all: bool, filters: Filters) -> CliResult<(u64, String)> {
    let opts = berth_api::BuildPruneOptions {
        all,
        keep_storage: 0,
        filters,
    };
    let report = ctx.client()?.build_prune(&opts).await?;
    let mut out = String::new();
    if let Some(ids) = report.caches_deleted.filter(|v| !v.is_empty()) {
        out.push_str("Deleted build cache objects:\n");
        for id in ids {
            out.push_str(&id);
            out.push('\n');
        }
    }
    Ok((report.space_reclaimed, out))
}

/// docker-cli's confirmation for `system prune` (without the final question, which
/// [`confirm`] adds).
fn system_prune_warning(all: bool, volumes: bool, filters: &Filters) -> String {
    let mut s = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container",
    );
    if volumes {
        s.push_str("\n  - all anonymous volumes not used by at least one container");
    }
    s.push_str(if all {
        "\n  - all images without at least one container associated to them\n  - all build cache"
    } else {
        "\n  - all dangling images\n  - unused build cache"
    });
    let mut shown: Vec<String> = Vec::new();
    for name in ["label", "label!", "until"] {
        for v in filters.get(name) {
            shown.push(format!("{name}={v}"));
        }
    }
    shown.sort();
    s.push('\n');
    if !shown.is_empty() {
        s.push_str("\n  Items to be pruned will be filtered with:");
        for f in shown {
            s.push_str(&format!("\n  - {f}"));
        }
        s.push('\n');
    }
    s
}

const DF_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const DF_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

/// `size (pct%)` when there is a total, as Docker's disk-usage contexts print it.
fn reclaimable(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human_size(reclaimable as f64)
    }
}

fn df_row(kind: &str, total: usize, active: usize, size: i64, reclaim: String) -> Row {
    Row::new(string_map([
        ("Type", kind.to_string()),
        ("TotalCount", total.to_string()),
        ("Active", active.to_string()),
        ("Size", human_size(size as f64)),
        ("Reclaimable", reclaim),
    ]))
}

fn images_row(layers_size: i64, images: &[ImageSummary]) -> Row {
    let active = images.iter().filter(|i| i.containers > 0).count();
    let used: i64 = images
        .iter()
        .filter(|i| i.containers != 0 && i.size != -1 && i.shared_size != -1)
        .map(|i| i.size - i.shared_size)
        .sum();
    df_row(
        "Images",
        images.len(),
        active,
        layers_size,
        reclaimable(layers_size - used, layers_size),
    )
}

fn containers_row(containers: &[ContainerSummary]) -> Row {
    let active = |c: &ContainerSummary| {
        ["running", "paused", "restarting"]
            .iter()
            .any(|s| c.state.contains(s))
    };
    let size: i64 = containers.iter().filter_map(|c| c.size_rw).sum();
    let reclaim: i64 = containers
        .iter()
        .filter(|c| !active(c))
        .filter_map(|c| c.size_rw)
        .sum();
    df_row(
        "Containers",
        containers.len(),
        containers.iter().filter(|c| active(c)).count(),
        size,
        reclaimable(reclaim, size),
    )
}

fn volumes_row(volumes: &[berth_api::models::Volume]) -> Row {
    let usage = |v: &berth_api::models::Volume| {
        v.usage_data
            .as_ref()
            .map_or((0, -1), |u| (u.ref_count, u.size))
    };
    let active = volumes.iter().filter(|v| usage(v).0 > 0).count();
    let (mut size, mut reclaim) = (0, 0);
    for v in volumes {
        let (refs, s) = usage(v);
        if s != -1 {
            size += s;
            if refs == 0 {
                reclaim += s;
            }
        }
    }
    df_row(
        "Local Volumes",
        volumes.len(),
        active,
        size,
        reclaimable(reclaim, size),
    )
}

/// The summary rows of `system df` (Docker's `diskUsage*Context`).
fn df_rows(df: &SystemDf) -> Vec<Row> {
    let images = df.images.clone().unwrap_or_default();
    let containers = df.containers.clone().unwrap_or_default();
    let volumes = df.volumes.clone().unwrap_or_default();
    vec![
        images_row(df.layers_size, &images),
        containers_row(&containers),
        volumes_row(&volumes),
        df_row(
            "Build Cache",
            df.build_cache.as_ref().map_or(0, Vec::len),
            0,
            df.builder_size,
            reclaimable(0, df.builder_size),
        ),
    ]
}

const DF_IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const DF_CONTAINERS_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const DF_VOLUMES_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const DF_CACHE_TABLE: &str = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";
const DF_CACHE_HEADERS: &[(&str, &str)] = &[
    ("ID", "CACHE ID"),
    ("CacheType", "CACHE TYPE"),
    ("Size", "SIZE"),
    ("CreatedSince", "CREATED"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
    ("Shared", "SHARED"),
];

/// `system df -v` as a table (docker-cli's `verboseWriteTable`): images (first tag only),
/// containers (no virtual size), volumes with their links and size, then the build cache.
fn df_verbose_table(df: &SystemDf) -> CliResult<String> {
    let section = |table: &str, headers: &[(&str, &str)], rows: &[Row]| {
        format::render(
            "",
            &Listing {
                default_table: table,
                headers,
            },
            rows,
        )
    };
    let mut images = Vec::new();
    for img in df.images.iter().flatten() {
        let (mut repo, mut tag) = ("<none>".to_string(), "<none>".to_string());
        let tags = img.repo_tags.clone().unwrap_or_default();
        if let Some(first) = tags.first().filter(|t| *t != "<none>:<none>") {
            let Ok(r) = berth_image::Reference::parse_normalized(first) else {
                continue;
            };
            if let Some(t) = r.tag() {
                repo = r.familiar_name();
                tag = t.to_string();
            }
        }
        images.push(super::image::image_row(img, &repo, &tag, "", true));
    }
    let containers: Vec<Row> = df
        .containers
        .iter()
        .flatten()
        .map(|c| {
            let mut c = c.clone();
            c.size_root_fs = Some(0);
            super::container::ps_row(&c, true)
        })
        .collect();
    let volumes: Vec<Row> = df
        .volumes
        .iter()
        .flatten()
        .map(super::volume::volume_row)
        .collect();
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&section(
        DF_IMAGES_TABLE,
        super::image::IMAGE_HEADERS,
        &images,
    )?);
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&section(
        DF_CONTAINERS_TABLE,
        super::container::PS_HEADERS,
        &containers,
    )?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    out.push_str(&section(
        DF_VOLUMES_TABLE,
        super::volume::VOLUME_HEADERS,
        &volumes,
    )?);
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(df.builder_size as f64)
    ));
    if df.build_cache.as_ref().is_some_and(|b| !b.is_empty()) {
        return Err(CliError::msg(
            "berth: listing build cache records in system df -v is not implemented",
        ));
    }
    out.push_str(&section(DF_CACHE_TABLE, DF_CACHE_HEADERS, &[])?);
    Ok(out)
}

async fn system_df(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let df = ctx.client()?.system_df().await?;
    if m.flag("verbose") {
        let format = m.string("format").unwrap_or_default();
        if !format.is_empty() && format != "table" {
            return Err(CliError::msg(
                "berth: system df --verbose with --format is not implemented; use the table output",
            ));
        }
        return super::print_out(&df_verbose_table(&df)?);
    }
    let out = format::render(
        &m.string("format").unwrap_or_default(),
        &Listing {
            default_table: DF_TABLE,
            headers: DF_HEADERS,
        },
        &df_rows(&df),
    )?;
    super::print_out(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_json(v: serde_json::Value) -> SystemDf {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn df_table_like_docker() {
        let df = summary_json(serde_json::json!({
            "LayersSize": 1986000,
            "Images": [
                {"Containers": 0, "Created": 0, "Id": "sha256:aa", "Labels": null, "ParentId": "",
                 "RepoDigests": null, "RepoTags": ["imp:1"], "SharedSize": 1986000, "Size": 1986000,
                 "VirtualSize": 1986000},
                {"Containers": 3, "Created": 0, "Id": "sha256:bb", "Labels": null, "ParentId": "",
                 "RepoDigests": null, "RepoTags": ["busybox:latest"], "SharedSize": 1986000,
                 "Size": 1986000, "VirtualSize": 1986000}
            ],
            "Containers": [
                {"Id": "a", "Names": ["/a"], "Image": "busybox", "ImageID": "sha256:bb",
                 "Command": "sh", "Created": 0, "State": "exited", "Status": "Exited (0)",
                 "SizeRw": 3, "SizeRootFs": 1986003, "Labels": {}, "Mounts": [], "Ports": []},
                {"Id": "b", "Names": ["/b"], "Image": "busybox", "ImageID": "sha256:bb",
                 "Command": "sh", "Created": 0, "State": "running", "Status": "Up",
                 "SizeRw": 0, "SizeRootFs": 1986000, "Labels": {}, "Mounts": [], "Ports": []}
            ],
            "Volumes": [], "BuildCache": [], "BuilderSize": 0
        }));
        let out = format::render(
            "",
            &Listing {
                default_table: DF_TABLE,
                headers: DF_HEADERS,
            },
            &df_rows(&df),
        )
        .unwrap();
        assert_eq!(
            out,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          2         1         1.986MB   1.986MB (100%)\n\
             Containers      2         1         3B        3B (100%)\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
    }

    #[test]
    fn reclaimable_percentages() {
        assert_eq!(reclaimable(0, 0), "0B");
        assert_eq!(reclaimable(500, 1000), "500B (50%)");
        assert_eq!(reclaimable(0, 1986000), "0B (0%)");
    }
}
