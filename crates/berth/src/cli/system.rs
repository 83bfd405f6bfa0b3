//! version, info, events, login, logout.

use std::io::Read;

use berth_api::models::{AuthConfig, EventMessage, SystemInfo, SystemVersion};
use berth_api::{EventsOptions, MAX_API_VERSION};
use futures_util::StreamExt;

use super::auth::{self, Store};
use super::container::parse_filters;
use super::flags::{Flag, Matches, NArgs, Spec};
use super::format::{self, tabwriter::TabWriter};
use super::{term, units, CliError, CliResult, Ctx, Verb};

const FORMAT_HELP: &str = "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

pub fn spec(verb: Verb, path: &str) -> Spec {
    match verb {
        Verb::Version | Verb::Info => super::spec(
            path,
            "[OPTIONS]",
            NArgs::None,
            vec![Flag::value("format", "string", FORMAT_HELP).short('f')],
        ),
        Verb::Events => super::spec(
            path,
            "[OPTIONS]",
            NArgs::None,
            vec![
                Flag::list(
                    "filter",
                    "filter",
                    "Filter output based on conditions provided",
                )
                .short('f'),
                Flag::value("format", "string", FORMAT_HELP),
                Flag::value("since", "string", "Show all events created since timestamp"),
                Flag::value("until", "string", "Stream events until this timestamp"),
            ],
        ),
        Verb::Login => super::spec(
            path,
            "[OPTIONS] [SERVER]",
            NArgs::Max(1),
            vec![
                Flag::value(
                    "password",
                    "string",
                    "Password or Personal Access Token (PAT)",
                )
                .short('p'),
                Flag::bool(
                    "password-stdin",
                    "Take the Password or Personal Access Token (PAT) from stdin",
                ),
                Flag::value("username", "string", "Username").short('u'),
            ],
        ),
        Verb::Logout => super::spec(path, "[SERVER]", NArgs::Max(1), vec![]),
        _ => super::spec(path, "", NArgs::Any, vec![]),
    }
}

pub async fn run(ctx: &Ctx, verb: Verb, m: Matches) -> CliResult<()> {
    match verb {
        Verb::Version => version(ctx, m).await,
        Verb::Info => info(ctx, m).await,
        Verb::Events => events(ctx, m).await,
        Verb::Login => login(ctx, m).await,
        Verb::Logout => logout(ctx, m).await,
        other => Err(CliError::msg(format!(
            "berth: {other:?} is not a system verb"
        ))),
    }
}

fn os_arch() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    (std::env::consts::OS, arch)
}

/// The client half of `version` (Docker's `clientVersion`, by Go field names).
fn client_version(api: &str) -> serde_json::Value {
    serde_json::to_value(ClientVersion::new(api)).unwrap_or_default()
}

/// Docker's `clientVersion` in field order; `APIVersion` is the Go field name templates use.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ClientVersion {
    platform: berth_api::models::PlatformName,
    version: String,
    #[serde(rename = "APIVersion")]
    api_version: String,
    #[serde(rename = "DefaultAPIVersion")]
    default_api_version: String,
    git_commit: String,
    go_version: String,
    os: String,
    arch: String,
    build_time: String,
    context: String,
}

impl ClientVersion {
    fn new(api: &str) -> Self {
        let (os, arch) = os_arch();
        Self {
            platform: berth_api::models::PlatformName {
                name: "berth".into(),
            },
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: api.into(),
            default_api_version: MAX_API_VERSION.to_string(),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into(),
            go_version: String::new(),
            os: os.into(),
            arch: arch.into(),
            build_time: String::new(),
            context: "default".into(),
        }
    }
}

/// `SystemVersion` in its field order with Docker's Go field names (`APIVersion`).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServerVersion<'a> {
    platform: &'a Option<berth_api::models::PlatformName>,
    components: &'a Option<Vec<berth_api::models::ComponentVersion>>,
    version: &'a str,
    #[serde(rename = "APIVersion")]
    api_version: &'a str,
    #[serde(rename = "MinAPIVersion")]
    min_api_version: &'a str,
    git_commit: &'a str,
    go_version: &'a str,
    os: &'a str,
    arch: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    kernel_version: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    experimental: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    build_time: &'a str,
}

impl<'a> From<&'a SystemVersion> for ServerVersion<'a> {
    fn from(v: &'a SystemVersion) -> Self {
        Self {
            platform: &v.platform,
            components: &v.components,
            version: &v.version,
            api_version: &v.api_version,
            min_api_version: &v.min_api_version,
            git_commit: &v.git_commit,
            go_version: &v.go_version,
            os: &v.os,
            arch: &v.arch,
            kernel_version: &v.kernel_version,
            experimental: v.experimental,
            build_time: &v.build_time,
        }
    }
}

/// The `version` text (Docker's default template, laid out with a tabwriter).
pub fn version_text(client: &serde_json::Value, server: Option<&SystemVersion>) -> String {
    let s = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
    };
    let mut t = String::new();
    t.push_str("Client:\n");
    t.push_str(&format!(" Version:\t{}\n", s(client, "Version")));
    let (api, def) = (s(client, "APIVersion"), s(client, "DefaultAPIVersion"));
    if api != def {
        t.push_str(&format!(" API version:\t{api} (downgraded from {def})\n"));
    } else {
        t.push_str(&format!(" API version:\t{api}\n"));
    }
    t.push_str(&format!(" Git commit:\t{}\n", s(client, "GitCommit")));
    t.push_str(&format!(
        " OS/Arch:\t{}/{}\n",
        s(client, "Os"),
        s(client, "Arch")
    ));
    t.push_str(&format!(" Context:\t{}\n", s(client, "Context")));
    if let Some(v) = server {
        t.push_str("\nServer:");
        if let Some(p) = v.platform.as_ref().filter(|p| !p.name.is_empty()) {
            t.push(' ');
            t.push_str(&p.name);
        }
        t.push('\n');
        for c in v.components.clone().unwrap_or_default() {
            let details = c.details.clone().unwrap_or_default();
            let d = |k: &str| details.get(k).cloned().unwrap_or_default();
            t.push_str(&format!(" {}:\n", c.name));
            if c.name == "Engine" {
                t.push_str(&format!("  Version:\t{}\n", c.version));
                t.push_str(&format!(
                    "  API version:\t{} (minimum version {})\n",
                    d("ApiVersion"),
                    d("MinAPIVersion")
                ));
                t.push_str(&format!("  Go version:\t{}\n", d("GoVersion")));
                t.push_str(&format!("  Git commit:\t{}\n", d("GitCommit")));
                t.push_str(&format!("  Built:\t{}\n", d("BuildTime")));
                t.push_str(&format!("  OS/Arch:\t{}/{}\n", d("Os"), d("Arch")));
                t.push_str(&format!("  Experimental:\t{}\n", d("Experimental")));
            } else {
                t.push_str(&format!("  Version:\t{}\n", c.version));
                for (k, v) in &details {
                    t.push_str(&format!("  {k}:\t{v}\n"));
                }
            }
        }
    }
    let mut w = TabWriter::new(20, 1);
    w.write(&t);
    w.finish()
}

async fn version(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let fmt = m.string("format").unwrap_or_default();
    let tmpl = if fmt.is_empty() || fmt == "json" {
        None
    } else {
        Some(format::document_template(&fmt)?)
    };
    let client = ctx.client()?;
    let api = match client.api_version().await {
        Ok(v) => v.to_string(),
        Err(_) => MAX_API_VERSION.to_string(),
    };
    let cv = client_version(&api);
    let server = client.version().await;
    let server_ok = server.as_ref().ok();
    let out = match (&tmpl, fmt.as_str()) {
        (Some(t), _) => {
            #[derive(serde::Serialize)]
            struct Doc<'a> {
                #[serde(rename = "Client")]
                client: ClientVersion,
                #[serde(rename = "Server")]
                server: Option<ServerVersion<'a>>,
            }
            let doc = serde_json::to_string(&Doc {
                client: ClientVersion::new(&api),
                server: server_ok.map(ServerVersion::from),
            })
            .map_err(|e| CliError::msg(e.to_string()))?;
            format!("{}\n", format::execute_document(t, &doc)?)
        }
        (None, "json") => {
            let mut client_json = cv.clone();
            if let Some(o) = client_json.as_object_mut() {
                if let Some(api) = o.remove("APIVersion") {
                    o.insert("ApiVersion".into(), api);
                }
            }
            let doc = serde_json::json!({"Client": client_json, "Server": server_ok});
            format!("{}\n", serde_json::to_string(&doc).unwrap_or_default())
        }
        _ => version_text(&cv, server_ok),
    };
    super::print_out(&out)?;
    server.map(|_| ()).map_err(Into::into)
}

/// A `SystemInfo` as Docker's `info` prints it (the parts berth reports).
pub fn info_text(i: &SystemInfo) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line(format!(" Containers: {}", i.containers));
    line(format!("  Running: {}", i.containers_running));
    line(format!("  Paused: {}", i.containers_paused));
    line(format!("  Stopped: {}", i.containers_stopped));
    line(format!(" Images: {}", i.images));
    line(format!(" Server Version: {}", i.server_version));
    line(format!(" Storage Driver: {}", i.driver));
    for [k, v] in i.driver_status.clone().unwrap_or_default() {
        line(format!("  {k}: {v}"));
    }
    line(format!(" Logging Driver: {}", i.logging_driver));
    line(format!(" Cgroup Driver: {}", i.cgroup_driver));
    line(format!(" Cgroup Version: {}", i.cgroup_version));
    line(" Plugins:".to_string());
    let join = |v: &Option<Vec<String>>| v.clone().unwrap_or_default().join(" ");
    line(format!("  Volume: {}", join(&i.plugins.volume)));
    line(format!("  Network: {}", join(&i.plugins.network)));
    line(format!("  Log: {}", join(&i.plugins.log)));
    line(format!(
        " Swarm: {}",
        if i.swarm.local_node_state.is_empty() {
            "inactive"
        } else {
            &i.swarm.local_node_state
        }
    ));
    if let Some(r) = &i.runtimes {
        line(format!(
            " Runtimes: {}",
            r.keys().cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    line(format!(" Default Runtime: {}", i.default_runtime));
    line(format!(" Init Binary: {}", i.init_binary));
    line(format!(" containerd version: {}", i.containerd_commit.id));
    line(format!(" runc version: {}", i.runc_commit.id));
    line(format!(" init version: {}", i.init_commit.id));
    let sec = i.security_options.clone().unwrap_or_default();
    if !sec.is_empty() {
        line(" Security Options:".to_string());
        for s in sec {
            let mut name = String::new();
            let mut extra = Vec::new();
            for kv in s.split(',') {
                match kv.split_once('=') {
                    Some(("name", v)) => name = v.to_string(),
                    Some((k, v)) => {
                        let mut key = k.to_string();
                        if let Some(f) = key.get_mut(0..1) {
                            f.make_ascii_uppercase();
                        }
                        extra.push(format!("   {key}: {v}"));
                    }
                    None => name = kv.to_string(),
                }
            }
            line(format!("  {name}"));
            for e in extra {
                line(e);
            }
        }
    }
    line(format!(" Kernel Version: {}", i.kernel_version));
    line(format!(" Operating System: {}", i.operating_system));
    line(format!(" OSType: {}", i.os_type));
    line(format!(" Architecture: {}", i.architecture));
    line(format!(" CPUs: {}", i.ncpu));
    line(format!(
        " Total Memory: {}",
        berth_api::units::bytes_size(i.mem_total as f64)
    ));
    line(format!(" Name: {}", i.name));
    line(format!(" ID: {}", i.id));
    line(format!(" Docker Root Dir: {}", i.docker_root_dir));
    line(format!(" Debug Mode: {}", i.debug));
    if !i.http_proxy.is_empty() {
        line(format!(" HTTP Proxy: {}", i.http_proxy));
    }
    if !i.https_proxy.is_empty() {
        line(format!(" HTTPS Proxy: {}", i.https_proxy));
    }
    if !i.no_proxy.is_empty() {
        line(format!(" No Proxy: {}", i.no_proxy));
    }
    if !i.labels.is_empty() {
        line(" Labels:".to_string());
        for l in &i.labels {
            line(format!("  {l}"));
        }
    }
    line(format!(" Experimental: {}", i.experimental_build));
    let insecure = i
        .registry_config
        .as_ref()
        .and_then(|r| r.insecure_registry_cidrs.clone())
        .unwrap_or_default();
    if !insecure.is_empty() {
        line(" Insecure Registries:".to_string());
        for r in insecure {
            line(format!("  {r}"));
        }
    }
    let mirrors = i
        .registry_config
        .as_ref()
        .and_then(|r| r.mirrors.clone())
        .unwrap_or_default();
    if !mirrors.is_empty() {
        line(" Registry Mirrors:".to_string());
        for r in mirrors {
            line(format!("  {r}"));
        }
    }
    line(format!(" Live Restore Enabled: {}", i.live_restore_enabled));
    o
}

fn client_info_text(debug: bool) -> String {
    format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: {debug}\n",
        env!("CARGO_PKG_VERSION")
    )
}

async fn info(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let fmt = m.string("format").unwrap_or_default();
    let client = ctx.client()?;
    let info = client.info().await;
    if !fmt.is_empty() {
        /// Docker's `info` document: the daemon's fields, then the client's.
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            #[serde(flatten)]
            info: Option<&'a SystemInfo>,
            #[serde(rename = "ClientInfo")]
            client_info: serde_json::Value,
            #[serde(rename = "ServerErrors")]
            server_errors: Option<Vec<String>>,
        }
        let doc = serde_json::to_string(&Doc {
            info: info.as_ref().ok(),
            client_info: serde_json::json!({"Debug": false, "Version": env!("CARGO_PKG_VERSION"), "Context": "default", "Plugins": [], "Warnings": null}),
            server_errors: info.as_ref().err().map(|e| vec![e.to_string()]),
        })
        .map_err(|e| CliError::msg(e.to_string()))?;
        let out = if fmt == "json" {
            doc
        } else {
            format::execute_document(&format::document_template(&fmt)?, &doc)?
        };
        super::println_out(&out)?;
        return info.map(|_| ()).map_err(Into::into);
    }
    let mut out = client_info_text(false);
    out.push('\n');
    out.push_str("Server:\n");
    match info {
        Ok(i) => {
            out.push_str(&info_text(&i));
            super::print_out(&out)?;
            for w in i.warnings.unwrap_or_default() {
                super::eprintln_err(&w);
            }
            Ok(())
        }
        Err(e) => {
            super::print_out(&out)?;
            Err(e.into())
        }
    }
}

/// Docker's default event line.
pub fn event_line(e: &EventMessage) -> String {
    let mut s = String::new();
    if e.time_nano != 0 {
        s.push_str(&units::rfc3339_nano_fixed(e.time_nano));
        s.push(' ');
    } else if e.time != 0 {
        s.push_str(&units::rfc3339_nano_fixed(e.time * 1_000_000_000));
        s.push(' ');
    }
    s.push_str(&format!("{} {} {}", e.kind, e.action, e.actor.id));
    let attrs = e.actor.attributes.clone().unwrap_or_default();
    if !attrs.is_empty() {
        let parts: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    s
}

async fn events(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let now = chrono::Utc::now();
    let time = |name: &str| -> CliResult<Option<chrono::DateTime<chrono::Utc>>> {
        match m.value(name).filter(|v| !v.is_empty()) {
            Some(v) => units::parse_timestamp(v, now)
                .map(Some)
                .map_err(CliError::msg),
            None => Ok(None),
        }
    };
    let opts = EventsOptions {
        since: time("since")?,
        until: time("until")?,
        filters: parse_filters(&m.list("filter")),
    };
    let fmt = m.string("format").unwrap_or_default();
    let tmpl = if fmt.is_empty() {
        None
    } else {
        Some(format::document_template(&fmt)?)
    };
    let client = ctx.client()?;
    let mut stream = client.events(&opts).await?;
    while let Some(ev) = stream.next().await {
        let ev = ev?;
        let line = match &tmpl {
            None => event_line(&ev),
            Some(t) => {
                let doc = serde_json::to_string(&ev).map_err(|e| CliError::msg(e.to_string()))?;
                format::execute_document(t, &doc)?
            }
        };
        super::println_out(&line)?;
    }
    Ok(())
}

/// The server `login`/`logout` act on: Docker Hub for none or `docker.io`, else its host name.
fn server_address(arg: Option<&str>) -> (String, bool) {
    match arg {
        Some(s) if !s.is_empty() && s != "docker.io" => {
            let s = s.to_string();
            (auth::convert_to_hostname(&s), false)
        }
        _ => (auth::INDEX_SERVER.to_string(), true),
    }
}

async fn login(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let user = m.string("username").unwrap_or_default().trim().to_string();
    let mut password = m.string("password").unwrap_or_default();
    if !password.is_empty() {
        super::eprintln_err(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
        );
        if m.flag("password-stdin") {
            return Err(CliError::msg(
                "--password and --password-stdin are mutually exclusive",
            ));
        }
    }
    if m.flag("password-stdin") {
        if user.is_empty() {
            return Err(CliError::msg(
                "Must provide --username with --password-stdin",
            ));
        }
        let mut content = String::new();
        std::io::stdin()
            .read_to_string(&mut content)
            .map_err(|e| CliError::msg(format!("reading the password from stdin: {e}")))?;
        let p = content.strip_suffix('\n').unwrap_or(&content);
        password = p.strip_suffix('\r').unwrap_or(p).to_string();
    }
    let (server, _default) = server_address(m.args.first().map(String::as_str));
    let mut cfg = ctx.config()?;
    let client = ctx.client()?;

    // With no credentials given, try the stored ones first.
    if user.is_empty() && password.is_empty() {
        if let Ok(stored) = cfg.get_auth(&server) {
            if !stored.username.is_empty() && !stored.password.is_empty() {
                super::eprintln_err(&format!(
                    "Authenticating with existing credentials... [Username: {}]",
                    stored.username
                ));
                let req = AuthConfig {
                    server_address: server.clone(),
                    ..stored.clone()
                };
                match client.auth(&req).await {
                    Ok(resp) => {
                        if !resp.status.is_empty() {
                            super::println_out(&resp.status)?;
                        }
                        return Ok(());
                    }
                    Err(e) if e.status().map(|s| s.as_u16()) == Some(401) => {
                        super::eprintln_err("Stored credentials invalid or expired");
                    }
                    Err(e) => {
                        super::eprintln_err(&format!("Login did not succeed, error: {e}"));
                    }
                }
            }
        }
    }

    let (user, password) = prompt_credentials(&user, &password, &cfg, &server)?;
    let mut ac = AuthConfig {
        username: user,
        password,
        server_address: server.clone(),
        ..Default::default()
    };
    let resp = client.auth(&ac).await?;
    if !resp.identity_token.is_empty() {
        ac.password.clear();
        ac.identity_token = resp.identity_token.clone();
    }
    let store = cfg
        .store_auth(&server, &ac)
        .map_err(|e| CliError::msg(format!("Error saving credentials: {e}")))?;
    if store == Store::File {
        super::eprintln_err(&format!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            cfg.path().display()
        ));
    }
    if !resp.status.is_empty() {
        super::println_out(&resp.status)?;
    }
    Ok(())
}

/// Asks for what is missing (a terminal is required, as in Docker).
fn prompt_credentials(
    user: &str,
    password: &str,
    cfg: &auth::ConfigFile,
    server: &str,
) -> CliResult<(String, String)> {
    let mut user = user.to_string();
    let mut password = password.to_string();
    if !user.is_empty() && !password.is_empty() {
        return Ok((user, password));
    }
    if !term::is_tty(0) {
        return Err(CliError::msg(
            "Error: Cannot perform an interactive login from a non TTY device",
        ));
    }
    if user.is_empty() {
        let default = cfg.get_auth(server).map(|a| a.username).unwrap_or_default();
        let prompt = if default.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({default}): ")
        };
        let _ = std::io::Write::write_all(&mut std::io::stderr(), prompt.as_bytes());
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| CliError::msg(e.to_string()))?;
        user = line.trim().to_string();
        if user.is_empty() {
            user = default;
        }
        if user.is_empty() {
            return Err(CliError::msg("Error: Non-null Username Required"));
        }
    }
    if password.is_empty() {
        password = term::read_password("Password: ").map_err(|e| CliError::msg(e.to_string()))?;
        if password.is_empty() {
            return Err(CliError::msg("Error: Password Required"));
        }
    }
    Ok((user, password))
}

async fn logout(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let (server, default) = server_address(m.args.first().map(String::as_str));
    let mut targets = vec![server.clone()];
    if !default {
        let host = server.clone();
        let original = m.args.first().cloned().unwrap_or_default();
        for t in [
            original,
            format!("http://{host}"),
            format!("https://{host}"),
        ] {
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    let mut cfg = ctx.config()?;
    super::println_out(&format!("Removing login credentials for {server}"))?;
    let mut errs = Vec::new();
    for t in &targets {
        // Only touch stores that may hold something for this key.
        let present = cfg.has_file_entry(t) || matches!(cfg.store_for(t), Store::Helper(_));
        if !present {
            errs.push((t.clone(), "not logged in".to_string()));
            continue;
        }
        if let Err(e) = cfg.erase_auth(t) {
            errs.push((t.clone(), e.to_string()));
        }
    }
    if errs.len() == targets.len() {
        let real: Vec<&(String, String)> =
            errs.iter().filter(|(_, e)| e != "not logged in").collect();
        if !real.is_empty() {
            super::eprintln_err("WARNING: could not erase credentials:");
            for (k, e) in real {
                super::eprintln_err(&format!("{k}: {e}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::ComponentVersion;

    #[test]
    fn version_layout_like_docker() {
        let cv = serde_json::json!({
            "Version": "0.1.0", "APIVersion": "1.41", "DefaultAPIVersion": "1.43",
            "GitCommit": "abc", "Os": "linux", "Arch": "amd64", "Context": "default"
        });
        let sv = SystemVersion {
            components: Some(vec![ComponentVersion {
                name: "Engine".into(),
                version: "20.10.24+dfsg1".into(),
                details: Some(
                    [
                        ("ApiVersion", "1.41"),
                        ("MinAPIVersion", "1.12"),
                        ("GoVersion", "go1.19.8"),
                        ("GitCommit", "5d6db84"),
                        ("BuildTime", "Thu May  7 21:09:36 2026"),
                        ("Os", "linux"),
                        ("Arch", "amd64"),
                        ("Experimental", "false"),
                    ]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ),
            }]),
            ..Default::default()
        };
        let text = version_text(&cv, Some(&sv));
        assert!(text.starts_with("Client:\n Version:           0.1.0\n API version:       1.41 (downgraded from 1.43)\n"), "{text}");
        assert!(text.contains("\nServer:\n Engine:\n  Version:          20.10.24+dfsg1\n  API version:      1.41 (minimum version 1.12)\n  Go version:       go1.19.8\n"), "{text}");
        assert!(text.ends_with("  Experimental:     false\n"));
    }

    #[test]
    fn events_like_docker() {
        let e: EventMessage = serde_json::from_value(serde_json::json!({
            "status":"die","id":"81d2","from":"busybox","Type":"container","Action":"die",
            "Actor":{"ID":"81d2","Attributes":{"name":"tr-misc","exitCode":"137","image":"busybox"}},
            "scope":"local","time":1795800223,"timeNano":1795800223108597547i64
        }))
        .unwrap();
        let line = event_line(&e);
        assert!(
            line.ends_with(" container die 81d2 (exitCode=137, image=busybox, name=tr-misc)"),
            "{line}"
        );
        assert!(line.contains(".108597547"));
    }

    #[test]
    fn login_servers() {
        assert_eq!(server_address(None), (auth::INDEX_SERVER.to_string(), true));
        assert!(server_address(Some("docker.io")).1);
        assert_eq!(
            server_address(Some("https://localhost:5000/v2/")),
            ("localhost:5000".to_string(), false)
        );
    }

    #[test]
    fn info_layout() {
        let i = SystemInfo {
            containers: 3,
            containers_running: 1,
            images: 1,
            server_version: "0.1.0".into(),
            driver: "overlay2".into(),
            security_options: Some(vec!["name=seccomp,profile=default".into()]),
            mem_total: 25_275_838_464,
            ..Default::default()
        };
        let t = info_text(&i);
        assert!(
            t.starts_with(" Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 0\n Images: 1\n")
        );
        assert!(t.contains(" Security Options:\n  seccomp\n   Profile: default\n"));
        assert!(t.contains(" Total Memory: 23.54GiB\n"));
    }
}
