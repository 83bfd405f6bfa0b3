//! Container verbs without sessions: stop, kill, restart, rm, pause, unpause, wait, ps, logs,
//! top, rename, port.

use std::collections::BTreeMap;
use std::io::Write;

use berth_api::models::{ContainerSummary, Port};
use berth_api::{ContainerListOptions, ContainerRemoveOptions, Filters, LogsOptions};
use futures_util::future::join_all;
use futures_util::StreamExt;
use gotmpl::Value;

use super::flags::{Flag, Matches, NArgs, Spec};
use super::format::{self, template::string_map, Listing, Row};
use super::units::{self, ellipsis, truncate_id};
use super::{CliError, CliResult, Ctx, Verb};

const FORMAT_HELP: &str = "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

pub fn format_flag() -> Flag {
    Flag::value("format", "string", FORMAT_HELP)
}

pub fn spec(verb: Verb, path: &str) -> Spec {
    let containers = "CONTAINER [CONTAINER...]";
    match verb {
        Verb::Stop | Verb::Restart => super::spec(
            path,
            "[OPTIONS] CONTAINER [CONTAINER...]",
            NArgs::Min(1),
            vec![
                Flag::value("signal", "string", "Signal to send to the container").short('s'),
                Flag::value("timeout", "int", "Seconds to wait before killing the container").short('t'),
                Flag::value("time", "int", "Seconds to wait before killing the container (deprecated: use --timeout)").hidden(),
            ],
        ),
        Verb::Kill => super::spec(
            path,
            "[OPTIONS] CONTAINER [CONTAINER...]",
            NArgs::Min(1),
            vec![Flag::value("signal", "string", "Signal to send to the container").short('s')],
        ),
        Verb::Rm => super::spec(
            path,
            "[OPTIONS] CONTAINER [CONTAINER...]",
            NArgs::Min(1),
            vec![
                Flag::bool("force", "Force the removal of a running container (uses SIGKILL)").short('f'),
                Flag::bool("link", "Remove the specified link").short('l'),
                Flag::bool("volumes", "Remove anonymous volumes associated with the container").short('v'),
            ],
        ),
        Verb::Pause | Verb::Unpause | Verb::Wait => super::spec(path, containers, NArgs::Min(1), vec![]),
        Verb::Ps => super::spec(
            path,
            "[OPTIONS]",
            NArgs::None,
            vec![
                Flag::bool("all", "Show all containers (default shows just running)").short('a'),
                Flag::list("filter", "filter", "Filter output based on conditions provided").short('f'),
                format_flag(),
                Flag::value("last", "int", "Show n last created containers (includes all states)")
                    .short('n')
                    .default("-1"),
                Flag::bool("latest", "Show the latest created container (includes all states)").short('l'),
                Flag::bool("no-trunc", "Don't truncate output"),
                Flag::bool("quiet", "Only display container IDs").short('q'),
                Flag::bool("size", "Display total file sizes").short('s'),
            ],
        ),
        Verb::Logs => super::spec(
            path,
            "[OPTIONS] CONTAINER",
            NArgs::Exact(1),
            vec![
                Flag::bool("details", "Show extra details provided to logs"),
                Flag::bool("follow", "Follow log output").short('f'),
                Flag::value("since", "string", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
                Flag::value("tail", "string", "Number of lines to show from the end of the logs").short('n').default("\"all\""),
                Flag::bool("timestamps", "Show timestamps").short('t'),
                Flag::value("until", "string", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
            ],
        ),
        Verb::Top => super::spec(path, "CONTAINER [ps OPTIONS]", NArgs::Min(1), vec![]).not_interspersed(),
        Verb::Rename => super::spec(path, "CONTAINER NEW_NAME", NArgs::Exact(2), vec![]),
        Verb::Port => super::spec(path, "CONTAINER [PRIVATE_PORT[/PROTO]]", NArgs::Range(1, 2), vec![]),
        Verb::Update => super::spec(
            path,
            "[OPTIONS] CONTAINER [CONTAINER...]",
            NArgs::Min(1),
            vec![
                Flag::value("blkio-weight", "uint16", "Block IO (relative weight), between 10 and 1000, or 0 to disable").default("0"),
                Flag::value("cpu-period", "int", "Limit CPU CFS (Completely Fair Scheduler) period"),
                Flag::value("cpu-quota", "int", "Limit CPU CFS (Completely Fair Scheduler) quota"),
                Flag::value("cpu-rt-period", "int", "Limit the CPU real-time period in microseconds"),
                Flag::value("cpu-rt-runtime", "int", "Limit the CPU real-time runtime in microseconds"),
                Flag::value("cpu-shares", "int", "CPU shares (relative weight)").short('c'),
                Flag::value("cpus", "decimal", "Number of CPUs"),
                Flag::value("cpuset-cpus", "string", "CPUs in which to allow execution (0-3, 0,1)"),
                Flag::value("cpuset-mems", "string", "MEMs in which to allow execution (0-3, 0,1)"),
                Flag::value("kernel-memory", "bytes", "Kernel memory limit (deprecated)").hidden(),
                Flag::value("memory", "bytes", "Memory limit").short('m'),
                Flag::value("memory-reservation", "bytes", "Memory soft limit"),
                Flag::value("memory-swap", "bytes", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
                    .check(super::flags::Check::SwapBytes),
                Flag::value("pids-limit", "int", "Tune container pids limit (set -1 for unlimited)"),
                Flag::value("restart", "string", "Restart policy to apply when a container exits"),
            ],
        ),
        _ => super::spec(path, "", NArgs::Any, vec![]),
    }
}

pub async fn run(ctx: &Ctx, verb: Verb, m: Matches) -> CliResult<()> {
    match verb {
        Verb::Stop => stop(ctx, m).await,
        Verb::Kill => kill(ctx, m).await,
        Verb::Restart => restart(ctx, m).await,
        Verb::Rm => rm(ctx, m).await,
        Verb::Pause => pause(ctx, m, true).await,
        Verb::Unpause => pause(ctx, m, false).await,
        Verb::Wait => wait(ctx, m).await,
        Verb::Ps => ps(ctx, m).await,
        Verb::Logs => logs(ctx, m).await,
        Verb::Top => top(ctx, m).await,
        Verb::Rename => rename(ctx, m).await,
        Verb::Port => port(ctx, m).await,
        Verb::Update => update(ctx, m).await,
        other => Err(CliError::msg(format!(
            "berth: {other:?} is not a container verb"
        ))),
    }
}

/// Prints each success, collects each error; errors end the command with exit 1 (Docker's
/// `errors.Join`).
fn report(names: &[String], results: Vec<Result<(), String>>) -> CliResult<()> {
    let mut errs = Vec::new();
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(()) => super::println_out(name)?,
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errs.join("\n")))
    }
}

fn timeout(m: &Matches) -> Option<i64> {
    if m.changed("timeout") {
        m.int("timeout")
    } else {
        m.int("time")
    }
}

async fn stop(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if m.changed("timeout") && m.changed("time") {
        return Err(CliError::msg(
            "conflicting options: cannot specify both --timeout and --time",
        ));
    }
    let client = ctx.client()?;
    let (signal, t) = (m.string("signal"), timeout(&m));
    let results = join_all(m.args.iter().map(|c| {
        let client = &client;
        let signal = signal.clone();
        async move {
            client
                .container_stop(c, signal.as_deref(), t)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }))
    .await;
    report(&m.args, results)
}

async fn kill(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let signal = m.string("signal").filter(|s| !s.is_empty());
    let results = join_all(m.args.iter().map(|c| {
        let client = &client;
        let signal = signal.clone();
        async move {
            client
                .container_kill(c, signal.as_deref())
                .await
                .map_err(|e| e.to_string())
        }
    }))
    .await;
    report(&m.args, results)
}

async fn restart(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let (signal, t) = (m.string("signal"), timeout(&m));
    let mut results = Vec::new();
    for c in &m.args {
        results.push(
            client
                .container_restart(c, signal.as_deref(), t)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    report(&m.args, results)
}

async fn rm(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let opts = ContainerRemoveOptions {
        force: m.flag("force"),
        volumes: m.flag("volumes"),
        link: m.flag("link"),
    };
    let results = join_all(m.args.iter().map(|c| {
        let client = &client;
        async move {
            let id = c.trim_matches('/');
            if id.is_empty() {
                return Err((false, "Container name cannot be empty".to_string()));
            }
            client
                .container_remove(id, opts)
                .await
                .map_err(|e| (e.is_not_found(), e.to_string()))
        }
    }))
    .await;
    let mut errs = Vec::new();
    for (name, r) in m.args.iter().zip(results) {
        match r {
            Ok(()) => super::println_out(name)?,
            // `rm -f` of a missing container reports it but does not fail.
            Err((true, e)) if opts.force => super::eprintln_err(&e),
            Err((_, e)) => errs.push(e),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errs.join("\n")))
    }
}

async fn pause(ctx: &Ctx, m: Matches, pause: bool) -> CliResult<()> {
    let client = ctx.client()?;
    let results = join_all(m.args.iter().map(|c| {
        let client = &client;
        async move {
            let r = if pause {
                client.container_pause(c).await
            } else {
                client.container_unpause(c).await
            };
            r.map_err(|e| e.to_string())
        }
    }))
    .await;
    report(&m.args, results)
}

async fn wait(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let mut errs = Vec::new();
    for c in &m.args {
        let r = match client.container_wait(c, None).await {
            Ok(p) => p.result().await,
            Err(e) => Err(e),
        };
        match r {
            Ok(r) => super::println_out(&r.status_code.to_string())?,
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errs.join("\n")))
    }
}

/// Filters from `--filter key=value` (the key lower-cased and trimmed, like Docker's).
pub fn parse_filters(values: &[String]) -> Filters {
    let mut f = Filters::new();
    for v in values {
        if let Some((k, val)) = v.split_once('=') {
            f.add(k.trim().to_lowercase(), val.trim());
        }
    }
    f
}

/// Docker's `DisplayablePorts`: `0.0.0.0:8080->8080/tcp, 53-54/udp`.
pub fn displayable_ports(ports: &[Port]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        a.private_port
            .cmp(&b.private_port)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public_port.cmp(&b.public_port))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    let mut groups: BTreeMap<String, (u16, u16)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let current = p.private_port;
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public_port != current {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    units::join_host_port(&p.ip, &p.public_port.to_string()),
                    p.private_port,
                    p.kind
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (current, current));
                order.push(key);
            }
            Some(g) if current == g.1.wrapping_add(1) => g.1 = current,
            Some(g) => {
                result.push(form_group(&key, g.0, g.1));
                *g = (current, current);
            }
        }
    }
    for key in order {
        if let Some((first, last)) = groups.get(&key) {
            result.push(form_group(&key, *first, *last));
        }
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, start: u16, last: u16) -> String {
    let (ip, kind) = match key.rsplit_once('/') {
        Some((ip, kind)) => (ip, kind),
        None => ("", key),
    };
    let mut group = start.to_string();
    if start != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", units::join_host_port(ip, &group));
    }
    format!("{group}/{kind}")
}

pub(crate) const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
];

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Docker's `ContainerContext.Image`.
fn ps_image(c: &ContainerSummary, trunc: bool) -> String {
    if c.image.is_empty() {
        return "<no image>".to_string();
    }
    if trunc {
        let t = truncate_id(&c.image_id);
        if t == truncate_id(&c.image) {
            return t;
        }
        if let Ok(r) = berth_image::reference::Reference::parse_normalized(&c.image) {
            return match (r.tag(), r.digest()) {
                (Some(t), _) => format!("{}:{t}", r.familiar_name()),
                _ => r.familiar_name(),
            };
        }
    }
    c.image.clone()
}

/// A `ps` row: the fields of Docker's `ContainerContext`.
pub fn ps_row(c: &ContainerSummary, trunc: bool) -> Row {
    let id = if trunc {
        truncate_id(&c.id)
    } else {
        c.id.clone()
    };
    let mut names: Vec<String> = c
        .names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .collect();
    if trunc {
        if let Some(n) = names.iter().find(|n| !n.contains('/')).cloned() {
            names = vec![n];
        }
    }
    let command = if trunc {
        ellipsis(&c.command, 20)
    } else {
        c.command.clone()
    };
    let labels = c.labels.clone().unwrap_or_default();
    let size_rw = units::human_size_precision(c.size_rw.unwrap_or(0) as f64, 3);
    let size = match c.size_root_fs {
        Some(v) if v > 0 => format!(
            "{size_rw} (virtual {})",
            units::human_size_precision(v as f64, 3)
        ),
        _ => size_rw,
    };
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let name = if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.clone()
            }
        })
        .collect();
    let local_volumes = c.mounts.iter().filter(|m| m.driver == "local").count();
    let networks: Vec<String> = c
        .network_settings
        .networks
        .as_ref()
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    let fields: Vec<(&str, Value)> = vec![
        ("ID", id.into()),
        ("Names", names.join(",").into()),
        ("Image", ps_image(c, trunc).into()),
        ("Command", super::flags::go_quote(&command).into()),
        ("CreatedAt", units::go_time_string(c.created).into()),
        ("RunningFor", units::since(c.created).into()),
        ("Ports", displayable_ports(&c.ports).into()),
        ("State", c.state.clone().into()),
        ("Status", c.status.clone().into()),
        ("Size", size.into()),
        (
            "Labels",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
                .into(),
        ),
        ("Mounts", mounts.join(",").into()),
        ("LocalVolumes", local_volumes.to_string().into()),
        ("Networks", networks.join(",").into()),
        ("Platform", Value::Nil),
    ];
    Row {
        ctx: string_map(fields),
        labels,
    }
}

/// The `ps` format after Docker's `NewContainerFormat` rules.
pub fn ps_format(format: &str, quiet: bool, size: bool) -> String {
    match format {
        "table" | "" => {
            if quiet {
                "{{.ID}}".to_string()
            } else if size {
                format!("{PS_TABLE}\t{{{{.Size}}}}")
            } else {
                PS_TABLE.to_string()
            }
        }
        "raw" => {
            if quiet {
                "container_id: {{.ID}}".to_string()
            } else {
                let mut f = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n".to_string();
                if size {
                    f.push_str("size: {{.Size}}\n");
                }
                f
            }
        }
        f => {
            if quiet {
                "{{.ID}}".to_string()
            } else {
                f.to_string()
            }
        }
    }
}

/// Whether a `ps` format shows `.Size` (Docker then asks the daemon for sizes): the template
/// is rendered once on a probe row whose Size is a marker, like Docker's `FieldsUsed` probe.
pub fn template_uses_size(format: &str) -> bool {
    // Docker probes the format string as a template: `json` is then the literal text "json".
    if format.is_empty() || format == "table" || format == "raw" || format == "json" {
        return false;
    }
    if format.contains(".Size") {
        return true;
    }
    const MARK: &str = "\u{1}berth-size-probe\u{1}";
    let probe = Row::new(string_map(
        PS_HEADERS
            .iter()
            .map(|(k, _)| (*k, if *k == "Size" { MARK } else { "" })),
    ));
    format::render(
        format,
        &Listing {
            default_table: PS_TABLE,
            headers: PS_HEADERS,
        },
        &[probe],
    )
    .is_ok_and(|out| out.contains("berth-size-probe"))
}

async fn ps(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let quiet = m.flag("quiet");
    let mut format = m.string("format").unwrap_or_default();
    if format.is_empty() {
        format = ctx
            .config()
            .ok()
            .and_then(|c| c.ps_format())
            .unwrap_or_default();
    } else if quiet {
        super::eprintln_err(
            "WARNING: Ignoring custom format, because both --format and --quiet are set.",
        );
    }
    let last = m.int("last").unwrap_or(-1);
    let limit = if m.flag("latest") && last == -1 {
        1
    } else {
        last
    };
    let size = if m.changed("size") {
        m.flag("size")
    } else {
        !quiet && template_uses_size(&format)
    };
    let client = ctx.client()?;
    let containers = client
        .container_list(&ContainerListOptions {
            all: m.flag("all"),
            limit: (limit > 0).then_some(limit),
            size,
            filters: parse_filters(&m.list("filter")),
        })
        .await?;
    let trunc = !m.flag("no-trunc");
    let rows: Vec<Row> = containers.iter().map(|c| ps_row(c, trunc)).collect();
    let fmt = ps_format(&format, quiet, size);
    let out = format::render(
        &fmt,
        &Listing {
            default_table: PS_TABLE,
            headers: PS_HEADERS,
        },
        &rows,
    )?;
    super::print_out(&out)
}

async fn logs(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let c = client.container_inspect(&m.args[0], false).await?;
    let now = chrono::Utc::now();
    let time = |name: &str| -> CliResult<Option<chrono::DateTime<chrono::Utc>>> {
        match m.value(name).filter(|v| !v.is_empty()) {
            Some(v) => units::parse_timestamp(v, now)
                .map(Some)
                .map_err(CliError::msg),
            None => Ok(None),
        }
    };
    let tail = match m.value("tail") {
        None | Some("all") | Some("") => None,
        Some(t) => t.parse::<i64>().ok().filter(|n| *n >= 0).map(|n| n as u64),
    };
    let opts = LogsOptions {
        follow: m.flag("follow"),
        stdout: true,
        stderr: true,
        since: time("since")?,
        until: time("until")?,
        timestamps: m.flag("timestamps"),
        tail,
        details: m.flag("details"),
    };
    let mut body = client.container_logs(&c.id, &opts).await?;
    let tty = c.config.as_ref().is_some_and(|c| c.tty);
    let mut dec = berth_runtime::stdcopy::Decoder::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if tty {
            let mut o = std::io::stdout().lock();
            o.write_all(&chunk)?;
            o.flush()?;
            continue;
        }
        dec.push(&chunk);
        while let Some((stream, payload)) = dec
            .next_frame()
            .map_err(|e| CliError::msg(format!("error reading the log stream: {e}")))?
        {
            match stream {
                berth_runtime::stdcopy::StdStream::Stderr => {
                    let mut e = std::io::stderr().lock();
                    let _ = e.write_all(&payload);
                    let _ = e.flush();
                }
                berth_runtime::stdcopy::StdStream::SystemErr => {
                    return Err(CliError::msg(
                        String::from_utf8_lossy(&payload).into_owned(),
                    ))
                }
                _ => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&payload)?;
                    o.flush()?;
                }
            }
        }
    }
    if !tty && !dec.is_empty() {
        return Err(CliError::msg("unexpected EOF"));
    }
    Ok(())
}

async fn top(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let args = m.args[1..].join(" ");
    let top = client
        .container_top(&m.args[0], (!args.is_empty()).then_some(args.as_str()))
        .await?;
    let mut w = format::tabwriter::TabWriter::new(20, 3);
    w.write(&top.titles.join("\t"));
    w.write("\n");
    for p in &top.processes {
        w.write(&p.join("\t"));
        w.write("\n");
    }
    super::print_out(&w.finish())
}

async fn rename(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let (old, new) = (m.args[0].trim(), m.args[1].trim());
    if old.is_empty() || new.is_empty() {
        return Err(CliError::msg(
            "Error: Neither old nor new names may be empty",
        ));
    }
    let client = ctx.client()?;
    if let Err(e) = client.container_rename(old, new).await {
        super::eprintln_err(&e.to_string());
        return Err(CliError::msg(format!(
            "Error: failed to rename container named {old}"
        )));
    }
    Ok(())
}

/// `berth update` (the Docker CLI's `runUpdate`): one request per container with the flags'
/// values (zero for flags not given, which the daemon leaves unchanged); warnings are printed
/// after all of them.
async fn update(ctx: &Ctx, m: Matches) -> CliResult<()> {
    if !m.any_flag() {
        return Err(CliError::msg(
            "you must provide one or more flags when using this command",
        ));
    }
    let restart_policy = match m.value("restart").filter(|r| !r.is_empty()) {
        Some(r) => super::opts::parse_restart_policy(r).map_err(CliError::msg)?,
        None => Default::default(),
    };
    let bytes = |name: &str| -> i64 {
        m.value(name)
            .and_then(|v| units::ram_in_bytes(v).ok())
            .unwrap_or(0)
    };
    let config = berth_api::models::UpdateConfig {
        blkio_weight: m
            .value("blkio-weight")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        cpuset_cpus: m.string("cpuset-cpus").unwrap_or_default(),
        cpuset_mems: m.string("cpuset-mems").unwrap_or_default(),
        cpu_shares: m.int("cpu-shares").unwrap_or(0),
        memory: bytes("memory"),
        memory_reservation: bytes("memory-reservation"),
        memory_swap: match m.value("memory-swap") {
            Some("-1") => -1,
            _ => bytes("memory-swap"),
        },
        cpu_period: m.int("cpu-period").unwrap_or(0),
        cpu_quota: m.int("cpu-quota").unwrap_or(0),
        cpu_realtime_period: m.int("cpu-rt-period").unwrap_or(0),
        cpu_realtime_runtime: m.int("cpu-rt-runtime").unwrap_or(0),
        nano_cpus: m
            .value("cpus")
            .and_then(|v| units::parse_nano_cpus(v).ok())
            .unwrap_or(0),
        pids_limit: m.int("pids-limit").filter(|p| *p != 0),
        restart_policy,
        ..Default::default()
    };
    let client = ctx.client()?;
    let mut warnings = Vec::new();
    let mut errs = Vec::new();
    for c in &m.args {
        match client.container_update(c, &config).await {
            Ok(r) => {
                super::println_out(c)?;
                warnings.extend(r.warnings.unwrap_or_default());
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    if !warnings.is_empty() {
        super::println_out(&warnings.join("\n"))?;
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errs.join("\n")))
    }
}

async fn port(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let c = client.container_inspect(&m.args[0], false).await?;
    let ports = c.network_settings.and_then(|n| n.ports).unwrap_or_default();
    let out = port_lines(&ports, m.args.get(1).map(String::as_str), &m.args[0])?;
    if !out.is_empty() {
        super::println_out(&out.join("\n"))?;
    }
    Ok(())
}

/// Docker's `port` output for a container's `NetworkSettings.Ports`.
pub fn port_lines(
    ports: &berth_api::models::PortMap,
    wanted: Option<&str>,
    container: &str,
) -> CliResult<Vec<String>> {
    let mut out = Vec::new();
    if let Some(spec) = wanted {
        let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let proto = if proto.is_empty() { "tcp" } else { proto };
        if port.parse::<u16>().is_err() {
            return Err(CliError::msg(format!(
                "Error: invalid port ({port}): strconv.ParseUint: parsing {}: invalid syntax",
                super::flags::go_quote(port)
            )));
        }
        let frontends = ports
            .get(&format!("{port}/{proto}"))
            .and_then(|f| f.clone())
            .unwrap_or_default();
        if frontends.is_empty() {
            return Err(CliError::msg(format!(
                "Error: No public port '{spec}' published for {container}"
            )));
        }
        for f in frontends {
            out.push(units::join_host_port(&f.host_ip, &f.host_port));
        }
    } else {
        for (from, frontends) in ports {
            for f in frontends.iter().flatten() {
                out.push(format!(
                    "{from} -> {}",
                    units::join_host_port(&f.host_ip, &f.host_port)
                ));
            }
        }
    }
    out.sort_by(|a, b| {
        if units::natural_less(a, b) {
            std::cmp::Ordering::Less
        } else if units::natural_less(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::*;

    fn port(ip: &str, private: u16, public: u16, kind: &str) -> Port {
        Port {
            ip: ip.into(),
            private_port: private,
            public_port: public,
            kind: kind.into(),
        }
    }

    #[test]
    fn ports_like_docker_ps() {
        // Recorded from the Docker CLI 28.2.2 for the same API response.
        let ports = [
            port("0.0.0.0", 8080, 8080, "tcp"),
            port("::", 8080, 8080, "tcp"),
            port("", 53, 0, "udp"),
            port("", 54, 0, "udp"),
            port("127.0.0.1", 90, 9090, "tcp"),
        ];
        assert_eq!(
            displayable_ports(&ports),
            "53-54/udp, 0.0.0.0:8080->8080/tcp, [::]:8080->8080/tcp, 127.0.0.1:9090->90/tcp"
        );
        assert_eq!(displayable_ports(&[]), "");
    }

    fn summary() -> ContainerSummary {
        serde_json::from_value(serde_json::json!({
            "Id":"eca29ddca97a7c929216ab5873a76594bd258496cf2a8f2988f732cc8fcaa74d","Names":["/web"],
            "Image":"busybox","ImageID":"sha256:e2ddf69e46c83fbbdb927db20840392598e587bdebd069fed159fbc2e64bb4ec",
            "Command":"httpd -f -p 8080 and a very long tail here","Created":1_795_000_000,
            "Ports":[{"IP":"0.0.0.0","PrivatePort":8080,"PublicPort":8080,"Type":"tcp"}],
            "Labels":{"a":"1","b":"x,y"},"State":"running","Status":"Up 2 hours","SizeRw":12345,"SizeRootFs":2000000,
            "HostConfig":{"NetworkMode":"default"},"NetworkSettings":{"Networks":{"bridge":{}}},
            "Mounts":[{"Type":"volume","Name":"0123456789abcdef0123","Source":"/var/lib/x","Destination":"/data","Driver":"local","Mode":"","RW":true,"Propagation":""}]
        }))
        .unwrap()
    }

    #[test]
    fn ps_fields_like_docker() {
        let r = ps_row(&summary(), true);
        let get = |k: &str| gotmpl::Value::to_string(r.ctx.field(k).unwrap());
        assert_eq!(get("ID"), "eca29ddca97a");
        assert_eq!(get("Command"), "\"httpd -f -p 8080 an…\"");
        assert_eq!(get("Size"), "12.3kB (virtual 2MB)");
        assert_eq!(get("Mounts"), "0123456789abcd…");
        assert_eq!(get("LocalVolumes"), "1");
        assert_eq!(get("Labels"), "a=1,b=x,y");
        assert_eq!(get("Names"), "web");
        let out = format::render(
            &ps_format(
                "table {{.ID}}\\t{{.Label \"b\"}}\\t{{.Networks}}",
                false,
                false,
            ),
            &Listing {
                default_table: PS_TABLE,
                headers: PS_HEADERS,
            },
            &[r],
        )
        .unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   b         NETWORKS\neca29ddca97a   x,y       bridge\n"
        );
        let full = ps_row(&summary(), false);
        assert_eq!(
            gotmpl::Value::to_string(full.ctx.field("Command").unwrap()),
            "\"httpd -f -p 8080 and a very long tail here\""
        );
    }

    #[test]
    fn size_is_requested_when_the_template_shows_it() {
        assert!(template_uses_size("{{json .}}"));
        assert!(!template_uses_size("json"));
        assert!(template_uses_size("table {{.ID}}\\t{{.Size}}"));
        assert!(!template_uses_size("{{.ID}} {{.Names}}"));
        assert!(!template_uses_size(""));
        assert!(!template_uses_size("{{.Nope"));
    }

    #[test]
    fn ps_formats() {
        assert_eq!(ps_format("", true, false), "{{.ID}}");
        assert!(ps_format("", false, true).ends_with("\t{{.Size}}"));
        assert_eq!(ps_format("{{.Names}}", true, false), "{{.ID}}");
        assert_eq!(ps_format("{{.Names}}", false, false), "{{.Names}}");
    }

    #[test]
    fn filters_like_the_cli_sends_them() {
        let f = parse_filters(&[
            "Name=tr-".into(),
            "status=exited".into(),
            "label=a=b".into(),
        ]);
        assert_eq!(
            f.to_json(),
            r#"{"label":{"a=b":true},"name":{"tr-":true},"status":{"exited":true}}"#
        );
    }

    #[test]
    fn port_output() {
        let ports: PortMap = serde_json::from_str(
            r#"{"8080/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}],"9000/udp":null}"#,
        )
        .unwrap();
        assert_eq!(
            port_lines(&ports, None, "web").unwrap(),
            vec!["8080/tcp -> 0.0.0.0:8080", "8080/tcp -> [::]:8080"]
        );
        assert_eq!(
            port_lines(&ports, Some("8080/tcp"), "web").unwrap(),
            vec!["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines(&ports, Some("9000/udp"), "web")
                .unwrap_err()
                .message,
            "Error: No public port '9000/udp' published for web"
        );
    }
}
