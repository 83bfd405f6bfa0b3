//! `context create|ls|use|inspect|rm|export|import|show` over the Docker CLI's context store,
//! and `system dial-stdio` (the remote end of `-H ssh://…`).

use std::io::{IsTerminal, Read, Write};

use berth_api::tls::TlsData;
use gotmpl::Value;

use super::context_store::{
    self as store, natural_cmp, Context, ContextError, Store, TlsFiles, DEFAULT_CONTEXT,
};
use super::flags::{Flag, Matches, NArgs, Spec};
use super::format::{self, Listing, Row};
use super::{eprintln_err, print_out, CliError, CliResult, Ctx, Verb};

const CONTEXT_TABLE: &str =
    "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}";
const CONTEXT_HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("DockerEndpoint", "DOCKER ENDPOINT"),
    ("Error", "ERROR"),
];
/// The default context's description (Docker CLI 28).
const DEFAULT_DESCRIPTION: &str = "Current DOCKER_HOST based configuration";

impl From<ContextError> for CliError {
    fn from(e: ContextError) -> Self {
        CliError::msg(e.to_string())
    }
}

pub fn spec(verb: Verb, path: &str) -> Spec {
    match verb {
        Verb::ContextCreate => super::spec(
            path,
            "[OPTIONS] CONTEXT",
            NArgs::Exact(1),
            vec![
                Flag::value("description", "string", "Description of the context"),
                Flag::list("docker", "stringToString", "set the docker endpoint")
                    .default("[]"),
                Flag::value("from", "string", "create context from a named context"),
            ],
        ),
        Verb::ContextLs => super::spec(
            path,
            "[OPTIONS]",
            NArgs::None,
            vec![
                Flag::value("format", "string", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"),
                Flag::bool("quiet", "Only show context names").short('q'),
            ],
        ),
        Verb::ContextUse => super::spec(path, "CONTEXT", NArgs::Exact(1), vec![]),
        Verb::ContextShow => super::spec(path, "", NArgs::None, vec![]),
        Verb::ContextInspect => super::spec(
            path,
            "[OPTIONS] [CONTEXT] [CONTEXT...]",
            NArgs::Any,
            vec![Flag::value("format", "string", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates").short('f')],
        ),
        Verb::ContextRm => super::spec(
            path,
            "CONTEXT [CONTEXT...]",
            NArgs::Min(1),
            vec![Flag::bool("force", "Force the removal of a context in use").short('f')],
        ),
        Verb::ContextExport => {
            super::spec(path, "[OPTIONS] CONTEXT [FILE|-]", NArgs::Range(1, 2), vec![])
        }
        Verb::ContextImport => super::spec(path, "CONTEXT FILE|-", NArgs::Exact(2), vec![]),
        _ => super::spec(path, "", NArgs::None, vec![]),
    }
}

pub async fn run(ctx: &Ctx, verb: Verb, m: Matches) -> CliResult<()> {
    let s = Store::new(&ctx.config_dir());
    match verb {
        Verb::ContextCreate => create(ctx, &s, m),
        Verb::ContextLs => ls(ctx, &s, m),
        Verb::ContextUse => use_context(ctx, &s, &m.args[0]),
        Verb::ContextShow => print_out(&format!("{}\n", ctx.context_name()?)),
        Verb::ContextInspect => inspect(ctx, &s, m),
        Verb::ContextRm => rm(ctx, &s, m),
        Verb::ContextExport => export(ctx, &s, m),
        Verb::ContextImport => import(&s, &m.args[0], &m.args[1]),
        Verb::DialStdio => dial_stdio(ctx).await,
        _ => Err(CliError::msg("berth: unknown context command")),
    }
}

/// `--docker host=…,ca=…,cert=…,key=…,skip-tls-verify=…` (pflag's stringToString: the
/// values of repeated flags are merged).
fn docker_opts(m: &Matches) -> CliResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for v in m.list("docker") {
        for part in v.split(',') {
            if part.is_empty() {
                continue;
            }
            let Some((k, val)) = part.split_once('=') else {
                return Err(CliError::msg(format!(
                    "invalid argument \"{v}\" for \"--docker\" flag: {part} must be formatted as key=value"
                )));
            };
            out.retain(|(x, _)| x != k);
            out.push((k.to_string(), val.to_string()));
        }
    }
    Ok(out)
}

fn check_new_name(s: &Store, name: &str) -> CliResult<()> {
    store::validate_name(name)?;
    if s.exists(name) {
        return Err(ContextError::Exists(name.to_string()).into());
    }
    Ok(())
}

fn create(ctx: &Ctx, s: &Store, m: Matches) -> CliResult<()> {
    let name = &m.args[0];
    check_new_name(s, name)?;
    let description = m.string("description").unwrap_or_default();
    let docker = docker_opts(&m)?;
    let from = m.string("from");
    if from.is_some() && !docker.is_empty() {
        return Err(CliError::msg("cannot use --docker flag when --from is set"));
    }
    if m.changed("docker") {
        let get = |k: &str| docker.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
        let unknown: Vec<String> = docker
            .iter()
            .filter(|(k, _)| {
                !["from", "host", "ca", "cert", "key", "skip-tls-verify"].contains(&k.as_str())
            })
            .map(|(k, _)| format!("unrecognized config key: {k}"))
            .collect();
        if !unknown.is_empty() {
            return Err(CliError::msg(format!(
                "unable to create docker endpoint config: {}",
                unknown.join("\n")
            )));
        }
        let fail =
            |e: String| CliError::msg(format!("unable to create docker endpoint config: {e}"));
        let (host, skip, tls) = if let Some(from) = get("from") {
            let (host, skip, _) = endpoint_of(ctx, s, &from).map_err(|e| fail(e.message))?;
            (host, skip, TlsFiles::new())
        } else {
            let skip = match get("skip-tls-verify") {
                None => false,
                Some(v) => super::flags::parse_bool(&v).ok_or_else(|| {
                    fail(format!("skip-tls-verify: parsing {v:?}: invalid syntax"))
                })?,
            };
            let expand = |p: String| match p.strip_prefix("~/") {
                Some(rest) => std::env::var("HOME")
                    .map(|h| format!("{h}/{rest}"))
                    .unwrap_or(p),
                None => p,
            };
            let data = TlsData::from_files(
                get("ca").map(expand).as_deref().map(std::path::Path::new),
                get("cert").map(expand).as_deref().map(std::path::Path::new),
                get("key").map(expand).as_deref().map(std::path::Path::new),
            )
            .map_err(|e| fail(e.to_string()))?;
            let host = get("host").unwrap_or_default();
            if !host.is_empty() {
                berth_api::client::Client::from_host(&host)
                    .map_err(|e| fail(format!("unable to apply docker endpoint options: {e}")))?;
            }
            let mut tls = TlsFiles::new();
            let files = tls.entry("docker".into()).or_default();
            for (n, d) in [
                ("ca.pem", data.ca),
                ("cert.pem", data.cert),
                ("key.pem", data.key),
            ] {
                if let Some(d) = d {
                    files.insert(n.into(), d);
                }
            }
            tls.retain(|_, f| !f.is_empty());
            (host, skip, tls)
        };
        s.write(&Context::new(name, &description, &host, skip), &tls)?;
    } else {
        // From another context (the current one when neither --docker nor --from is given).
        let from = match from {
            Some(f) => f,
            None => ctx.context_name()?,
        };
        let (mut c, tls) = if from == DEFAULT_CONTEXT {
            let (host, skip, data) =
                endpoint_of(ctx, s, &from).map_err(|e| CliError::msg(e.message))?;
            let mut c = Context::new(name, "", &host, skip);
            c.raw.insert("Metadata".into(), serde_json::json!({}));
            let mut tls = TlsFiles::new();
            if let Some(data) = data {
                let files = tls.entry("docker".into()).or_default();
                for (n, d) in [
                    ("ca.pem", data.ca),
                    ("cert.pem", data.cert),
                    ("key.pem", data.key),
                ] {
                    if let Some(d) = d {
                        files.insert(n.into(), d);
                    }
                }
            }
            (c, tls)
        } else {
            let mut c = s.get(&from)?;
            c.name = name.clone();
            (c, s.tls_files(&from)?)
        };
        if !description.is_empty() {
            c.set_description(&description);
        }
        s.write(&c, &tls)?;
    }
    print_out(&format!("{name}\n"))?;
    eprintln_err(&format!("Successfully created context {name:?}"));
    Ok(())
}

/// (host, skip-tls-verify, TLS material) of a context; `default` is the flags and environment.
pub fn endpoint_of(
    ctx: &Ctx,
    s: &Store,
    name: &str,
) -> Result<(String, bool, Option<TlsData>), CliError> {
    if name == DEFAULT_CONTEXT {
        let host = berth_api::client::resolve_host(ctx.host.as_deref());
        let (skip, data) = match &ctx.tls {
            Some(t) => (
                !t.verify,
                Some(t.data().map_err(|e| CliError::msg(e.to_string()))?),
            ),
            None => (false, None),
        };
        return Ok((host, skip, data));
    }
    let c = s.get(name)?;
    Ok((
        c.host().unwrap_or_default(),
        c.skip_tls_verify(),
        s.docker_tls(name)?,
    ))
}

fn ls(ctx: &Ctx, s: &Store, m: Matches) -> CliResult<()> {
    let current = ctx.context_name()?;
    let mut rows: Vec<(String, Value)> = Vec::new();
    let row = |name: &str, current: bool, desc: &str, ep: &str, err: &str| {
        let mut err = err.to_string();
        if err.chars().count() > 45 {
            err = err.chars().take(44).collect::<String>() + "…";
        }
        format::template::string_map(vec![
            ("Name", Value::from(name.to_string())),
            ("Current", Value::Bool(current)),
            ("Description", Value::from(desc.to_string())),
            ("DockerEndpoint", Value::from(ep.to_string())),
            ("Error", Value::from(err)),
        ])
    };
    let default_host = berth_api::client::resolve_host(ctx.host.as_deref());
    rows.push((
        DEFAULT_CONTEXT.into(),
        row(
            DEFAULT_CONTEXT,
            current == DEFAULT_CONTEXT,
            DEFAULT_DESCRIPTION,
            &default_host,
            "",
        ),
    ));
    let mut found = current == DEFAULT_CONTEXT;
    for (name, entry) in s.list() {
        match entry {
            Ok(c) => {
                let is_current = c.name == current;
                found |= is_current;
                rows.push((
                    c.name.clone(),
                    row(
                        &c.name,
                        is_current,
                        &c.description(),
                        &c.host().unwrap_or_default(),
                        "",
                    ),
                ));
            }
            Err(e) => rows.push((name.clone(), row(&name, false, "", "", &e.to_string()))),
        }
    }
    if !found {
        let err = s
            .get(&current)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        rows.push((current.clone(), row(&current, true, "", "", &err)));
    }
    rows.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    let rows: Vec<Row> = rows.into_iter().map(|(_, v)| Row::new(v)).collect();
    let fmt = if m.flag("quiet") {
        "{{.Name}}".to_string()
    } else {
        m.string("format").unwrap_or_default()
    };
    let out = format::render(
        &fmt,
        &Listing {
            default_table: CONTEXT_TABLE,
            headers: CONTEXT_HEADERS,
        },
        &rows,
    )?;
    print_out(&out)?;
    if host_env_set() {
        eprintln_err("Warning: DOCKER_HOST environment variable overrides the active context. To use a context, either set the global --context flag, or unset DOCKER_HOST environment variable.");
    }
    Ok(())
}

fn host_env_set() -> bool {
    ["DOCKER_HOST", "BERTH_HOST"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
}

fn use_context(ctx: &Ctx, s: &Store, name: &str) -> CliResult<()> {
    let value = if name == DEFAULT_CONTEXT {
        None
    } else {
        store::validate_name(name)?;
        s.get(name)?;
        Some(name)
    };
    let mut cfg = ctx.config()?;
    if cfg.current_context().as_deref() != value {
        cfg.set_current_context(value);
        cfg.save().map_err(|e| CliError::msg(e.to_string()))?;
    }
    print_out(&format!("{name}\n"))?;
    eprintln_err(&format!("Current context is now {name:?}"));
    if name != DEFAULT_CONTEXT && host_env_set() {
        eprintln_err(&format!("Warning: DOCKER_HOST environment variable overrides the active context. To use {name:?}, either set the global --context flag, or unset DOCKER_HOST environment variable."));
    }
    Ok(())
}

fn inspect_doc(ctx: &Ctx, s: &Store, name: &str) -> CliResult<InspectDoc> {
    use serde_json::json;
    if name == DEFAULT_CONTEXT {
        let (host, skip, data) = endpoint_of(ctx, s, name)?;
        let mut tls = serde_json::Map::new();
        if let Some(d) = data {
            let files: Vec<&str> = [
                ("ca.pem", &d.ca),
                ("cert.pem", &d.cert),
                ("key.pem", &d.key),
            ]
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
            tls.insert("docker".into(), json!(files));
        }
        let doc = InspectDoc {
            name: DEFAULT_CONTEXT.into(),
            metadata: json!({}),
            endpoints: json!({"docker": {"Host": host, "SkipTLSVerify": skip}}),
            tls_material: tls
                .into_iter()
                .map(|(k, v)| {
                    let files = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    (k, files)
                })
                .collect(),
            storage: Storage {
                metadata_path: "<IN MEMORY>".into(),
                tls_path: "<IN MEMORY>".into(),
            },
        };
        return Ok(doc);
    }
    let c = s.get(name)?;
    let files = s.tls_files(name)?;
    let doc = InspectDoc {
        name: c.name.clone(),
        metadata: c.raw.get("Metadata").cloned().unwrap_or(json!({})),
        endpoints: c.raw.get("Endpoints").cloned().unwrap_or(json!({})),
        tls_material: files
            .iter()
            .map(|(ep, f)| (ep.clone(), f.keys().cloned().collect()))
            .collect(),
        storage: Storage {
            metadata_path: s.meta_dir(name).display().to_string(),
            tls_path: s.tls_dir(name).display().to_string(),
        },
    };
    Ok(doc)
}

/// `context inspect`'s document, in the Docker CLI's field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct InspectDoc {
    name: String,
    metadata: serde_json::Value,
    endpoints: serde_json::Value,
    #[serde(rename = "TLSMaterial")]
    tls_material: std::collections::BTreeMap<String, Vec<String>>,
    storage: Storage,
}

#[derive(serde::Serialize)]
struct Storage {
    #[serde(rename = "MetadataPath")]
    metadata_path: String,
    #[serde(rename = "TLSPath")]
    tls_path: String,
}

fn inspect(ctx: &Ctx, s: &Store, m: Matches) -> CliResult<()> {
    let names = if m.args.is_empty() {
        vec![ctx.context_name()?]
    } else {
        m.args.clone()
    };
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for n in &names {
        match inspect_doc(ctx, s, n) {
            Ok(d) => docs.push(d),
            Err(e) => errors.push(e.message),
        }
    }
    match m.string("format").filter(|f| !f.is_empty()) {
        None => {
            let rendered: Vec<String> = docs.iter().map(format::pretty).collect();
            print_out(&(format::pretty_array(&rendered) + "\n"))?;
        }
        Some(f) => {
            let t = format::document_template(&f)?;
            for d in &docs {
                let text = serde_json::to_string(d).map_err(|e| CliError::msg(e.to_string()))?;
                print_out(&(format::execute_document(&t, &text)? + "\n"))?;
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errors.join("\n")))
    }
}

fn rm(ctx: &Ctx, s: &Store, m: Matches) -> CliResult<()> {
    let current = ctx.context_name()?;
    let force = m.flag("force");
    let mut errors = Vec::new();
    for name in &m.args {
        if name == DEFAULT_CONTEXT {
            errors.push("context \"default\" cannot be removed".to_string());
            continue;
        }
        if *name == current {
            if !force {
                errors.push(format!(
                    "context {name:?} is in use, set -f flag to force remove"
                ));
                continue;
            }
            let mut cfg = ctx.config()?;
            cfg.set_current_context(None);
            cfg.save().map_err(|e| CliError::msg(e.to_string()))?;
        }
        if !force && !s.exists(name) {
            errors.push(format!("context {name:?} does not exist"));
            continue;
        }
        match s.remove(name) {
            Ok(()) => print_out(&format!("{name}\n"))?,
            Err(e) => errors.push(format!("failed to remove context {name}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errors.join("\n")))
    }
}

fn export(ctx: &Ctx, s: &Store, m: Matches) -> CliResult<()> {
    let name = &m.args[0];
    if name != DEFAULT_CONTEXT {
        store::validate_name(name)?;
    }
    let dest = m
        .args
        .get(1)
        .cloned()
        .unwrap_or_else(|| format!("{name}.dockercontext"));
    let tar = if name == DEFAULT_CONTEXT {
        let (host, skip, data) = endpoint_of(ctx, s, name)?;
        let mut c = Context::new(name, "", &host, skip);
        c.raw.insert("Metadata".into(), serde_json::json!({}));
        let mut tls = TlsFiles::new();
        if let Some(d) = data {
            let files = tls.entry("docker".into()).or_default();
            for (n, v) in [("ca.pem", d.ca), ("cert.pem", d.cert), ("key.pem", d.key)] {
                if let Some(v) = v {
                    files.insert(n.into(), v);
                }
            }
        }
        s.export(&c, &tls)?
    } else {
        s.export(&s.get(name)?, &s.tls_files(name)?)?
    };
    if dest == "-" {
        if std::io::stdout().is_terminal() {
            return Err(CliError::msg(
                "cowardly refusing to export to a terminal, specify a file path",
            ));
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&tar)?;
        out.flush()?;
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(&dest)
        .map_err(|e| CliError::msg(format!("open {dest}: {e}")))?;
    f.write_all(&tar)?;
    eprintln_err(&format!("Written file {dest:?}"));
    Ok(())
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

fn import(s: &Store, name: &str, source: &str) -> CliResult<()> {
    check_new_name(s, name)?;
    if source == "-" {
        let mut data = Vec::new();
        std::io::stdin().lock().read_to_end(&mut data)?;
        s.import(name, &data[..])?;
    } else {
        let f = std::fs::File::open(source)
            .map_err(|e| CliError::msg(format!("open {source}: {e}")))?;
        s.import(name, f)?;
    }
    print_out(&format!("{name}\n"))?;
    eprintln_err(&format!("Successfully imported context {name:?}"));
    Ok(())
}

/// `system dial-stdio`: relays stdin/stdout to a raw daemon connection; stdin's EOF
/// half-closes the connection, the daemon's EOF ends the command.
async fn dial_stdio(ctx: &Ctx) -> CliResult<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let client = ctx.client()?;
    let conn = client.connect_raw().await?;
    let (mut rd, mut wr) = tokio::io::split(conn);
    let upstream = async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = stdin.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            wr.write_all(&buf[..n]).await?;
            wr.flush().await?;
        }
        wr.shutdown().await?;
        Ok::<(), std::io::Error>(())
    };
    let downstream = async move {
        let mut stdout = tokio::io::stdout();
        tokio::io::copy(&mut rd, &mut stdout).await?;
        stdout.flush().await?;
        Ok::<(), std::io::Error>(())
    };
    tokio::pin!(upstream);
    tokio::pin!(downstream);
    // The command ends when the daemon closes its side; a stdin error alone does not end it.
    tokio::select! {
        r = &mut downstream => r?,
        r = &mut upstream => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "dial-stdio: stdin side ended with an error");
            }
            downstream.await?;
        }
    }
    Ok(())
}
