//! The commands that need no convergence: `ls`, `ps`, `down`, `start`/`stop`/…, `logs`,
//! `pull`, `images`, `port`, `top`, and the attached part of `up`.

use std::collections::BTreeMap;

use berth_api::backend::ContainerListOptions;
use berth_api::client::Client;
use berth_api::Filters;

use berth_api::backend::{ContainerRemoveOptions, LogsOptions};
use berth_api::models::{AuthConfig, ContainerSummary};
use futures_util::StreamExt;

use super::{cname, log_name, number, project_containers, select, Flags, SERVICE_LABEL};
use super::{label, CmdError, CmdResult, Ui, CONFIG_FILES_LABEL, PROJECT_LABEL};
use crate::model::Project;

/// `compose ls` options.
#[derive(Debug, Clone, Default)]
pub struct LsOptions {
    pub all: bool,
    pub quiet: bool,
    pub format: String,
    pub filters: Vec<String>,
}

/// `compose ls`: projects found from container labels, with their status counts.
pub async fn ls(client: &Client, ui: &Ui, o: &LsOptions) -> CmdResult {
    let mut f = Filters::new();
    f.add("label", PROJECT_LABEL);
    let list = client
        .container_list(&ContainerListOptions {
            all: o.all,
            limit: None,
            size: false,
            filters: f,
        })
        .await?;
    // project → (state → count, config files)
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for c in &list {
        let p = projects
            .entry(label(c, PROJECT_LABEL).to_string())
            .or_default();
        *p.0.entry(c.state.clone()).or_default() += 1;
        if p.1.is_empty() {
            p.1 = label(c, CONFIG_FILES_LABEL).to_string();
        }
    }
    let mut name_filter: Option<String> = None;
    for flt in &o.filters {
        match flt.split_once('=') {
            Some(("name", v)) => name_filter = Some(v.to_string()),
            _ => {
                return Err(CmdError::msg(format!(
                    "invalid filter {flt:?}: only name is supported"
                )))
            }
        }
    }
    let rows: Vec<(String, String, String)> = projects
        .into_iter()
        .filter(|(n, _)| name_filter.as_ref().is_none_or(|f| n.contains(f.as_str())))
        .map(|(n, (states, files))| {
            let status = states
                .iter()
                .map(|(s, c)| format!("{s}({c})"))
                .collect::<Vec<_>>()
                .join(", ");
            (n, status, files)
        })
        .collect();
    let mut out = String::new();
    if o.quiet {
        for (n, _, _) in &rows {
            out.push_str(n);
            out.push('\n');
        }
    } else if o.format == "json" {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(n, s, f)| serde_json::json!({"Name": n, "Status": s, "ConfigFiles": f}))
            .collect();
        out = serde_json::to_string(&v).unwrap_or_default();
        out.push('\n');
    } else {
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4) + 3;
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6) + 3;
        out.push_str(&format!("{:<w0$}{:<w1$}CONFIG FILES\n", "NAME", "STATUS"));
        for (n, s, f) in &rows {
            out.push_str(&format!("{n:<w0$}{s:<w1$}{f}\n"));
        }
    }
    ui.out(&out)
}

// ---------------------------------------------------------------------------------------------
// Commands over the project's containers

fn of_services<'a>(list: &'a [ContainerSummary], services: &[String]) -> Vec<&'a ContainerSummary> {
    list.iter()
        .filter(|c| services.is_empty() || services.iter().any(|s| s == label(c, SERVICE_LABEL)))
        .collect()
}

fn timeout(flags: &dyn Flags) -> CmdResult<Option<i64>> {
    match flags.value("timeout") {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| CmdError::msg(format!("invalid timeout {t:?}"))),
    }
}

/// `stop`, `restart`, `kill`, `pause`, `unpause` (in parallel over the selected containers).
pub async fn simple(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
    verb: &str,
) -> CmdResult {
    select(project, args)?;
    let list = project_containers(client, &project.name, true, false).await?;
    let t = timeout(flags)?;
    let signal = flags.value("signal");
    let (doing, done) = match verb {
        "stop" => ("Stopping", "Stopped"),
        "restart" => ("Restarting", "Started"),
        "kill" => ("Killing", "Killed"),
        "pause" => ("Pausing", "Paused"),
        _ => ("Unpausing", "Unpaused"),
    };
    let mut futs = Vec::new();
    for c in of_services(&list, args) {
        let running = c.state == "running";
        let skip = match verb {
            "stop" | "kill" | "pause" => !running && c.state != "paused" && c.state != "restarting",
            "unpause" => c.state != "paused",
            _ => false,
        };
        if skip {
            continue;
        }
        let name = cname(c);
        let id = c.id.clone();
        let signal = signal.clone();
        futs.push(async move {
            let res = format!("Container {name}");
            ui.event(&res, doing);
            let r = match verb {
                "stop" => client.container_stop(&id, None, t).await.map(|_| ()),
                "restart" => client.container_restart(&id, None, t).await.map(|_| ()),
                "kill" => client.container_kill(&id, signal.as_deref()).await,
                "pause" => client.container_pause(&id).await,
                _ => client.container_unpause(&id).await,
            };
            if r.is_ok() {
                ui.event(&res, done);
            }
            r
        });
    }
    for r in futures_util::future::join_all(futs).await {
        r?;
    }
    Ok(())
}

/// `start`: existing containers, dependencies first.
pub async fn start(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    select(project, args)?;
    let list = project_containers(client, &project.name, true, false).await?;
    if list.is_empty() {
        return Err(CmdError::msg(
            "service(s) not found: no containers to start".to_string(),
        ));
    }
    for name in start_order(project) {
        if !args.is_empty() && !args.contains(&name) {
            continue;
        }
        for c in of_services(&list, std::slice::from_ref(&name)) {
            if c.state == "running" {
                continue;
            }
            let res = format!("Container {}", cname(c));
            ui.event(&res, "Starting");
            client.container_start(&c.id).await?;
            ui.event(&res, "Started");
        }
    }
    let _ = flags;
    Ok(())
}

/// Services ordered so that dependencies come first.
pub fn start_order(project: &Project) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    fn visit(p: &Project, n: &str, out: &mut Vec<String>, seen: &mut Vec<String>) {
        if out.iter().any(|x| x == n) || seen.iter().any(|x| x == n) {
            return;
        }
        seen.push(n.to_string());
        if let Some(s) = p.services.get(n) {
            for d in s.dependencies() {
                visit(p, d, out, seen);
            }
        }
        out.push(n.to_string());
    }
    let mut seen = Vec::new();
    for n in project.services.keys() {
        visit(project, n, &mut out, &mut seen);
    }
    out
}

/// `down`: containers (dependents first), then networks, volumes (`-v`) and images (`--rmi`).
pub async fn down(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    let t = timeout(flags)?;
    let list = project_containers(client, &project.name, true, true).await?;
    let known: Vec<&String> = project
        .services
        .keys()
        .chain(project.disabled.keys())
        .collect();
    let orphans: Vec<&ContainerSummary> = list
        .iter()
        .filter(|c| !known.iter().any(|k| k.as_str() == label(c, SERVICE_LABEL)))
        .collect();
    let remove_orphans = flags.flag("remove-orphans");
    if !orphans.is_empty() && !remove_orphans {
        let names: Vec<String> = orphans.iter().map(|c| cname(c)).collect();
        ui.warn(&format!("Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", names.join(" ")));
    }
    // Dependents first: the reverse of the start order, by levels run in parallel.
    let mut order = start_order(project);
    order.reverse();
    let mut groups: Vec<Vec<&ContainerSummary>> = Vec::new();
    for s in &order {
        if !args.is_empty() && !args.contains(s) {
            continue;
        }
        groups.push(of_services(&list, std::slice::from_ref(s)));
    }
    if remove_orphans && args.is_empty() {
        groups.push(orphans.clone());
    }
    let volumes = flags.flag("volumes");
    for g in groups {
        let futs = g.into_iter().map(|c| {
            let name = cname(c);
            let id = c.id.clone();
            let running = c.state == "running" || c.state == "paused" || c.state == "restarting";
            async move {
                let res = format!("Container {name}");
                if running {
                    ui.event(&res, "Stopping");
                    client.container_stop(&id, None, t).await?;
                    ui.event(&res, "Stopped");
                }
                ui.event(&res, "Removing");
                client
                    .container_remove(
                        &id,
                        ContainerRemoveOptions {
                            force: true,
                            volumes,
                            link: false,
                        },
                    )
                    .await?;
                ui.event(&res, "Removed");
                Ok::<(), CmdError>(())
            }
        });
        for r in futures_util::future::join_all(futs).await {
            r?;
        }
    }
    if !args.is_empty() {
        return Ok(());
    }
    // The project's networks and (with -v) volumes, by name, when they carry its label.
    let ours = |labels: Option<&std::collections::BTreeMap<String, String>>| {
        labels
            .and_then(|l| l.get(PROJECT_LABEL))
            .map(String::as_str)
            == Some(project.name.as_str())
    };
    for net in project.networks.values() {
        if net.external {
            continue;
        }
        let n = match client.network_inspect(&net.name).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        if !ours(n.labels.as_ref()) {
            ui.warn(&format!(
                "network {} was found but has incorrect label {PROJECT_LABEL} set to {:?} (expected: {:?})",
                net.name,
                n.labels.as_ref().and_then(|l| l.get(PROJECT_LABEL)).cloned().unwrap_or_default(),
                project.name
            ));
            continue;
        }
        let res = format!("Network {}", net.name);
        ui.event(&res, "Removing");
        client.network_remove(&n.id).await?;
        ui.event(&res, "Removed");
    }
    if volumes {
        for vol in project.volumes.values() {
            if vol.external {
                continue;
            }
            let v = match client.volume_inspect(&vol.name).await {
                Ok(v) => v,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            if !ours(v.labels.as_ref()) {
                continue;
            }
            let res = format!("Volume {}", vol.name);
            ui.event(&res, "Removing");
            client.volume_remove(&vol.name, false).await?;
            ui.event(&res, "Removed");
        }
    }
    if let Some(rmi) = flags.value("rmi") {
        if rmi != "all" && rmi != "local" {
            return Err(CmdError::msg(format!(
                "invalid --rmi flag {rmi:?}: use \"local\" or \"all\""
            )));
        }
        let mut images: Vec<String> = Vec::new();
        for s in project.services.values() {
            if rmi == "local" && !s.image.is_empty() {
                continue;
            }
            let img = super::image_name(&project.name, s);
            if !images.contains(&img) {
                images.push(img);
            }
        }
        for img in images {
            match client
                .image_delete(&img, berth_api::backend::ImageDeleteOptions::default())
                .await
            {
                Ok(_) => ui.event(&format!("Image {img}"), "Removed"),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// `rm`: stopped containers (`-s` stops them first).
pub async fn rm(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    select(project, args)?;
    let list = project_containers(client, &project.name, true, false).await?;
    let stop = flags.flag("stop");
    let mut any = false;
    for c in of_services(&list, args) {
        let running = c.state == "running" || c.state == "paused" || c.state == "restarting";
        if running && !stop {
            continue;
        }
        any = true;
        let res = format!("Container {}", cname(c));
        if running {
            ui.event(&res, "Stopping");
            client.container_stop(&c.id, None, None).await?;
            ui.event(&res, "Stopped");
        }
        ui.event(&res, "Removing");
        client
            .container_remove(
                &c.id,
                ContainerRemoveOptions {
                    force: true,
                    volumes: flags.flag("volumes"),
                    link: false,
                },
            )
            .await?;
        ui.event(&res, "Removed");
    }
    if !any {
        ui.event("", "No stopped containers");
    }
    Ok(())
}

/// `ps`.
pub async fn ps(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    select(project, args)?;
    let all = flags.flag("all");
    let list = project_containers(client, &project.name, all, all).await?;
    let mut rows: Vec<&ContainerSummary> = of_services(&list, args);
    let statuses = flags.list("status");
    for f in flags.list("filter") {
        match f.split_once('=') {
            Some(("status", v)) => rows.retain(|c| c.state == v),
            _ => {
                return Err(CmdError::msg(format!(
                    "invalid filter {f:?}: only status is supported"
                )))
            }
        }
    }
    if !statuses.is_empty() {
        rows.retain(|c| statuses.contains(&c.state));
    }
    let mut out = String::new();
    if flags.flag("services") {
        let mut seen: Vec<&str> = Vec::new();
        for c in &rows {
            let s = label(c, SERVICE_LABEL);
            if !seen.contains(&s) {
                seen.push(s);
                out.push_str(s);
                out.push('\n');
            }
        }
        return ui.out(&out);
    }
    if flags.flag("quiet") {
        for c in &rows {
            out.push_str(&c.id);
            out.push('\n');
        }
        return ui.out(&out);
    }
    let format = flags.value("format").unwrap_or_else(|| "table".into());
    if format == "json" {
        for c in &rows {
            let v = serde_json::json!({
                "Command": format!("\"{}\"", c.command),
                "CreatedAt": c.created,
                "ID": c.id,
                "Image": c.image,
                "Labels": c.labels.clone().unwrap_or_default().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "Name": cname(c),
                "Names": cname(c),
                "Project": project.name,
                "Publishers": c.ports.iter().map(|p| serde_json::json!({"URL": p.ip, "TargetPort": p.private_port, "PublishedPort": p.public_port, "Protocol": p.kind})).collect::<Vec<_>>(),
                "Service": label(c, SERVICE_LABEL),
                "State": c.state,
                "Status": c.status,
            });
            out.push_str(&serde_json::to_string(&v).unwrap_or_default());
            out.push('\n');
        }
        return ui.out(&out);
    }
    if format != "table" {
        return Err(CmdError::msg(format!(
            "berth compose ps --format {format:?}: only table and json are implemented"
        )));
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|c| {
            let cmd = format!("\"{}\"", truncate(&c.command, 20));
            [
                cname(c),
                c.image.clone(),
                cmd,
                label(c, SERVICE_LABEL).to_string(),
                super::ops::created_ago(c.created),
                c.status.clone(),
                ports_text(c),
            ]
        })
        .collect();
    let headers = [
        "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
    ];
    let mut widths = headers.map(str::len);
    for r in &table {
        for (i, f) in r.iter().enumerate() {
            widths[i] = widths[i].max(f.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                for _ in c.chars().count()..widths[i] + 3 {
                    s.push(' ');
                }
            }
        }
        s.push('\n');
        s
    };
    out.push_str(&line(headers.to_vec()));
    for r in &table {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    ui.out(&out)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}

fn ports_text(c: &ContainerSummary) -> String {
    let mut v: Vec<String> = c
        .ports
        .iter()
        .map(|p| match p.public_port {
            pp if pp != 0 => format!(
                "{}:{pp}->{}/{}",
                if p.ip.is_empty() { "0.0.0.0" } else { &p.ip },
                p.private_port,
                p.kind
            ),
            _ => format!("{}/{}", p.private_port, p.kind),
        })
        .collect();
    v.sort();
    v.dedup();
    v.join(", ")
}

/// `2 minutes ago` as Docker prints creation times.
pub fn created_ago(created: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(created);
    let s = (now - created).max(0);
    let text = if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".to_string()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s < 3600 {
        let m = s / 60;
        if m == 1 {
            "About a minute".into()
        } else {
            format!("{m} minutes")
        }
    } else if s < 86400 {
        let h = s / 3600;
        if h == 1 {
            "About an hour".into()
        } else {
            format!("{h} hours")
        }
    } else {
        format!("{} days", s / 86400)
    };
    format!("{text} ago")
}

/// The colours Compose cycles through for log prefixes.
const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Compose's prefix: the name padded to one more than the longest name, then `| `.
fn prefix(ui: &Ui, name: &str, width: usize, idx: usize) -> String {
    let w = width + 1;
    let padded = format!("{name:<w$} | ");
    if ui.color {
        format!("\x1b[{}m{padded}\x1b[0m", COLORS[idx % COLORS.len()])
    } else {
        padded
    }
}

/// Streams one container's log with a prefix until the stream ends.
async fn stream_logs(
    client: &Client,
    ui: &Ui,
    id: &str,
    pfx: String,
    opts: &LogsOptions,
) -> CmdResult {
    let mut s = client.container_logs(id, opts).await?;
    let mut buf: Vec<u8> = Vec::new();
    let tty = client
        .container_inspect(id, false)
        .await
        .ok()
        .and_then(|i| i.config.map(|c| c.tty))
        .unwrap_or(false);
    let mut pending_line: Vec<u8> = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        buf.extend_from_slice(&chunk);
        let mut payload: Vec<u8> = Vec::new();
        if tty {
            payload.append(&mut buf);
        } else {
            // stdcopy frames: 8-byte header (stream, 0, 0, 0, big-endian length).
            while buf.len() >= 8 {
                let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
                if buf.len() < 8 + len {
                    break;
                }
                payload.extend_from_slice(&buf[8..8 + len]);
                buf.drain(..8 + len);
            }
        }
        pending_line.extend_from_slice(&payload);
        let mut out = String::new();
        while let Some(pos) = pending_line.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending_line.drain(..=pos).collect();
            out.push_str(&pfx);
            out.push_str(&String::from_utf8_lossy(&line));
        }
        if !out.is_empty() {
            ui.out(&out)?;
        }
    }
    if !pending_line.is_empty() {
        ui.out(&format!(
            "{pfx}{}\n",
            String::from_utf8_lossy(&pending_line)
        ))?;
    }
    Ok(())
}

fn parse_since(s: &str) -> CmdResult<chrono::DateTime<chrono::Utc>> {
    if let Some(d) = crate::model::Duration::parse(s) {
        return Ok(chrono::Utc::now() - chrono::Duration::nanoseconds(d.nanos()));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(secs) = s.parse::<i64>() {
        if let Some(t) = chrono::DateTime::from_timestamp(secs, 0) {
            return Ok(t);
        }
    }
    Err(CmdError::msg(format!(
        "invalid time {s:?}: use RFC 3339, a Unix time or a duration like 42m"
    )))
}

/// `logs`.
pub async fn logs(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    select(project, args)?;
    let list = project_containers(client, &project.name, true, false).await?;
    let rows = of_services(&list, args);
    let tail = match flags.value("tail").as_deref() {
        None | Some("all") | Some("-1") => None,
        Some(t) => Some(
            t.parse::<u64>()
                .map_err(|_| CmdError::msg(format!("invalid --tail {t:?}")))?,
        ),
    };
    let opts = LogsOptions {
        follow: flags.flag("follow"),
        stdout: true,
        stderr: true,
        since: flags.value("since").map(|s| parse_since(&s)).transpose()?,
        until: flags.value("until").map(|s| parse_since(&s)).transpose()?,
        timestamps: flags.flag("timestamps"),
        tail,
        details: false,
    };
    let no_prefix = flags.flag("no-log-prefix");
    let width = rows.iter().map(|c| log_name(c).len()).max().unwrap_or(0);
    let futs = rows.iter().enumerate().map(|(i, c)| {
        let pfx = if no_prefix {
            String::new()
        } else {
            prefix(ui, &log_name(c), width, i)
        };
        let id = c.id.clone();
        let opts = opts.clone();
        async move { stream_logs(client, ui, &id, pfx, &opts).await }
    });
    for r in futures_util::future::join_all(futs).await {
        r?;
    }
    Ok(())
}

/// Attached `up`: the logs of every container until they all exit; Ctrl-C stops the project.
pub async fn attach_and_wait(
    client: &Client,
    ui: &Ui,
    project: &Project,
    wanted: &std::collections::BTreeSet<String>,
    flags: &dyn Flags,
) -> CmdResult {
    let list = project_containers(client, &project.name, true, false).await?;
    let rows: Vec<ContainerSummary> = list
        .into_iter()
        .filter(|c| wanted.contains(label(c, SERVICE_LABEL)))
        .collect();
    let width = rows.iter().map(|c| log_name(c).len()).max().unwrap_or(0);
    let opts = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        since: None,
        until: None,
        timestamps: flags.flag("timestamps"),
        tail: None,
        details: false,
    };
    let abort = flags.flag("abort-on-container-exit") || flags.value("exit-code-from").is_some();
    let exit_from = flags.value("exit-code-from");
    let no_prefix = flags.flag("no-log-prefix");
    let mut set = tokio::task::JoinSet::new();
    for (i, c) in rows.iter().enumerate() {
        let pfx = if no_prefix {
            String::new()
        } else {
            prefix(ui, &log_name(c), width, i)
        };
        let client2 = super::reconnect(client)?;
        let ui2 = ui.clone();
        let id = c.id.clone();
        let svc = label(c, SERVICE_LABEL).to_string();
        let name = log_name(c);
        let opts = opts.clone();
        set.spawn(async move {
            let _ = stream_logs(&client2, &ui2, &id, pfx, &opts).await;
            let code = client2
                .container_inspect(&id, false)
                .await
                .ok()
                .and_then(|i| i.state.map(|s| s.exit_code))
                .unwrap_or(0);
            (svc, name, code)
        });
    }
    let mut exit_code = 0i64;
    let mut from_seen = false;
    let interrupted = loop {
        tokio::select! {
            r = set.join_next() => {
                match r {
                    None => break false,
                    Some(Ok((svc, name, code))) => {
                        ui.out(&format!("{name} exited with code {code}\n"))?;
                        if exit_from.as_deref() == Some(svc.as_str()) {
                            exit_code = code;
                            from_seen = true;
                        }
                        if abort {
                            if exit_from.is_none() {
                                exit_code = code;
                            }
                            ui.out("Aborting on container exit...\n")?;
                            break true;
                        }
                    }
                    Some(Err(_)) => {}
                }
            }
            _ = tokio::signal::ctrl_c() => {
                ui.out("Gracefully stopping... (press Ctrl+C again to force)\n")?;
                break true;
            }
        }
    };
    if interrupted {
        let t = timeout(flags)?;
        let stop = async {
            for s in start_order(project).iter().rev() {
                let futs = rows
                    .iter()
                    .filter(|c| label(c, SERVICE_LABEL) == s)
                    .map(|c| {
                        let name = cname(c);
                        let id = c.id.clone();
                        async move {
                            let res = format!("Container {name}");
                            ui.event(&res, "Stopping");
                            let r = client.container_stop(&id, None, t).await;
                            ui.event(&res, "Stopped");
                            r
                        }
                    });
                futures_util::future::join_all(futs).await;
            }
        };
        tokio::select! {
            _ = stop => {}
            _ = tokio::signal::ctrl_c() => {
                for c in &rows {
                    let _ = client.container_kill(&c.id, None).await;
                }
            }
        }
        set.abort_all();
        // --exit-code-from a service that was stopped by the abort: its code after the stop.
        if let Some(from) = exit_from.as_deref().filter(|_| !from_seen) {
            for c in rows.iter().filter(|c| label(c, SERVICE_LABEL) == from) {
                if let Ok(i) = client.container_inspect(&c.id, false).await {
                    exit_code = i.state.map(|s| s.exit_code).unwrap_or(0);
                }
            }
        }
    }
    if exit_code != 0 {
        return Err(CmdError {
            code: exit_code as i32,
            message: String::new(),
        });
    }
    Ok(())
}

/// Pulls `image` for `service`, reporting as Compose does.
pub async fn pull_image(client: &Client, ui: &Ui, service: &str, image: &str) -> CmdResult {
    let (repo, tag) = split_tag(image);
    ui.event(&format!("{service} Pulling"), "");
    let mut s = client
        .image_pull(&repo, tag.as_deref(), None, &AuthConfig::default())
        .await
        .map_err(|e| {
            CmdError::msg(format!(
                "Error response from daemon: {}",
                e.daemon_message().unwrap_or(&e.to_string())
            ))
        })?;
    while let Some(m) = s.next().await {
        let m = m?;
        if let Some(e) = m.error.or(m.error_detail.map(|d| d.message)) {
            return Err(CmdError::msg(e));
        }
    }
    ui.event(&format!("{service} Pulled"), "");
    Ok(())
}

fn split_tag(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
        _ => (image.to_string(), Some("latest".to_string())),
    }
}

/// `pull`.
pub async fn pull(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    let mut failed = None;
    for s in select(project, args)? {
        if s.image.is_empty() {
            continue;
        }
        if let Err(e) = pull_image(client, ui, &s.name, &s.image).await {
            if flags.flag("ignore-pull-failures") {
                ui.warn(&e.message);
            } else {
                failed = Some(e);
                break;
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// `images`.
pub async fn images(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    select(project, args)?;
    let list = project_containers(client, &project.name, true, false).await?;
    let mut out = String::new();
    let mut rows: Vec<[String; 5]> = Vec::new();
    for c in of_services(&list, args) {
        let img = client.image_inspect(&c.image_id).await;
        let (repo, tag, size) = match &img {
            Ok(i) => {
                let rt = i.repo_tags.clone().unwrap_or_default();
                let first = rt.first().cloned().unwrap_or_default();
                let (r, t) = first
                    .rsplit_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .unwrap_or((first.clone(), String::new()));
                (r, t, i.size)
            }
            Err(_) => (c.image.clone(), String::new(), 0),
        };
        if flags.flag("quiet") {
            out.push_str(&c.image_id);
            out.push('\n');
            continue;
        }
        let short = c
            .image_id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect();
        rows.push([
            cname(c),
            repo,
            tag,
            short,
            berth_api::units::human_size(size as f64),
        ]);
    }
    if flags.flag("quiet") {
        return ui.out(&out);
    }
    let headers = ["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"];
    let mut w = headers.map(str::len);
    for r in &rows {
        for (i, f) in r.iter().enumerate() {
            w[i] = w[i].max(f.len());
        }
    }
    let mut line = |cells: [&str; 5]| {
        for (i, c) in cells.iter().enumerate() {
            if i == 4 {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<width$}", width = w[i] + 3));
            }
        }
        out.push('\n');
    };
    line(headers);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    ui.out(&out)
}

/// `port SERVICE PRIVATE_PORT`.
pub async fn port(
    client: &Client,
    ui: &Ui,
    project: &Project,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    let service = &args[0];
    select(project, std::slice::from_ref(service))?;
    let private: u16 = args[1]
        .parse()
        .map_err(|_| CmdError::msg(format!("invalid port {:?}", args[1])))?;
    let proto = flags.value("protocol").unwrap_or_else(|| "tcp".into());
    let index: i64 = flags
        .value("index")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let list = project_containers(client, &project.name, false, false).await?;
    let c = of_services(&list, std::slice::from_ref(service))
        .into_iter()
        .find(|c| number(c) == index)
        .ok_or_else(|| CmdError::msg(format!("service \"{service}\" is not running")))?;
    let p = c
        .ports
        .iter()
        .find(|p| p.private_port == private && p.kind == proto && p.public_port != 0)
        .ok_or_else(|| {
            CmdError::msg(format!(
                "no port {private}/{proto} for container {}",
                cname(c)
            ))
        })?;
    let ip = if p.ip.is_empty() { "0.0.0.0" } else { &p.ip };
    ui.out(&format!("{ip}:{}\n", p.public_port))
}

/// `top`.
pub async fn top(client: &Client, ui: &Ui, project: &Project, args: &[String]) -> CmdResult {
    select(project, args)?;
    let list = project_containers(client, &project.name, false, false).await?;
    let mut out = String::new();
    for c in of_services(&list, args) {
        let t = client.container_top(&c.id, None).await?;
        out.push_str(&cname(c));
        out.push('\n');
        let titles = t.titles.clone();
        let procs = t.processes.clone();
        let mut w: Vec<usize> = titles.iter().map(String::len).collect();
        for p in &procs {
            for (i, f) in p.iter().enumerate() {
                if i < w.len() {
                    w[i] = w[i].max(f.len());
                }
            }
        }
        let fmt = |cells: &[String]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(c);
                } else {
                    s.push_str(&format!(
                        "{c:<width$}",
                        width = w.get(i).copied().unwrap_or(0) + 3
                    ));
                }
            }
            s.push('\n');
            s
        };
        out.push_str(&fmt(&titles));
        for p in &procs {
            out.push_str(&fmt(p));
        }
        out.push('\n');
    }
    ui.out(&out)
}
