//! The commands of `berth compose`, over the Engine API only (so they work against any
//! Docker-compatible daemon). Containers, networks and volumes are named and labelled as
//! Docker Compose v2 does, so both tools manage each other's projects.

mod build;
mod ops;
pub mod run;
mod up;

use std::collections::BTreeMap;
use std::io::Write;

use berth_api::backend::ContainerListOptions;
use berth_api::client::{Client, ClientError};
use berth_api::models::ContainerSummary;
use berth_api::Filters;

use crate::model::{Project, Service};

pub use ops::{ls, LsOptions};

/// Compose's labels.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const NUMBER_LABEL: &str = "com.docker.compose.container-number";
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
pub const HASH_LABEL: &str = "com.docker.compose.config-hash";
pub const VERSION_LABEL: &str = "com.docker.compose.version";
pub const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES_LABEL: &str = "com.docker.compose.project.config_files";
pub const DEPENDS_ON_LABEL: &str = "com.docker.compose.depends_on";
pub const IMAGE_LABEL: &str = "com.docker.compose.image";
pub const NETWORK_LABEL: &str = "com.docker.compose.network";
pub const VOLUME_LABEL: &str = "com.docker.compose.volume";
pub const REPLACE_LABEL: &str = "com.docker.compose.replace";
pub const ENV_FILE_LABEL: &str = "com.docker.compose.project.environment_file";
/// The Compose version berth announces in its labels (the Compose v2 release whose
/// behaviour it follows).
pub const COMPOSE_VERSION: &str = "2.40.3";

/// An error that ends a command: message and exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError {
    pub code: i32,
    pub message: String,
}

impl CmdError {
    pub fn msg(m: impl Into<String>) -> CmdError {
        CmdError {
            code: 1,
            message: m.into(),
        }
    }
}

impl From<ClientError> for CmdError {
    fn from(e: ClientError) -> Self {
        CmdError::msg(e.to_string())
    }
}

impl From<std::io::Error> for CmdError {
    fn from(e: std::io::Error) -> Self {
        CmdError::msg(e.to_string())
    }
}

pub type CmdResult<T = ()> = Result<T, CmdError>;

/// The command's flags, as the CLI parsed them.
pub trait Flags {
    fn value(&self, name: &str) -> Option<String>;
    fn list(&self, name: &str) -> Vec<String>;
    fn flag(&self, name: &str) -> bool;
}

/// Output settings: colours and whether stdout is a terminal.
#[derive(Debug, Clone)]
pub struct Ui {
    pub color: bool,
    pub tty: bool,
}

impl Ui {
    pub fn new(color: bool, tty: bool) -> Ui {
        Ui { color, tty }
    }

    pub fn out(&self, s: &str) -> CmdResult {
        let mut o = std::io::stdout().lock();
        o.write_all(s.as_bytes())?;
        o.flush()?;
        Ok(())
    }

    /// A progress line on stderr (`Container p-web-1  Started`).
    pub fn event(&self, resource: &str, status: &str) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, " {resource}  {status}");
        let _ = e.flush();
    }

    pub fn warn(&self, s: &str) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "WARN[0000] {s}");
    }
}

/// The image a service runs: `image`, else `<project>-<service>` for a built one.
pub fn image_name(project: &str, s: &Service) -> String {
    if !s.image.is_empty() {
        s.image.clone()
    } else {
        format!("{project}-{}", s.name)
    }
}

/// `<project>-<service>-<n>` (or `container_name`).
pub fn container_name(project: &str, s: &Service, n: i64) -> String {
    if !s.container_name.is_empty() {
        s.container_name.clone()
    } else {
        format!("{project}-{}-{n}", s.name)
    }
}

/// The project's containers (`oneoff` ones included when `oneoff`).
pub async fn project_containers(
    client: &Client,
    project: &str,
    all: bool,
    oneoff: bool,
) -> CmdResult<Vec<ContainerSummary>> {
    let mut f = Filters::new();
    f.add("label", format!("{PROJECT_LABEL}={project}"));
    if !oneoff {
        f.add("label", format!("{ONEOFF_LABEL}=False"));
    }
    let mut list = client
        .container_list(&ContainerListOptions {
            all,
            limit: None,
            size: false,
            filters: f,
        })
        .await?;
    list.sort_by(|a, b| {
        (label(a, SERVICE_LABEL), number(a)).cmp(&(label(b, SERVICE_LABEL), number(b)))
    });
    Ok(list)
}

pub fn label<'a>(c: &'a ContainerSummary, key: &str) -> &'a str {
    c.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

pub fn number(c: &ContainerSummary) -> i64 {
    label(c, NUMBER_LABEL).parse().unwrap_or(0)
}

/// The container's name without the leading slash.
pub fn cname(c: &ContainerSummary) -> String {
    c.names
        .first()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| c.id.chars().take(12).collect())
}

/// The name Compose shows in log prefixes: the container name without `<project>-`, or the
/// whole `container_name` when the service sets one.
pub fn log_name(c: &ContainerSummary) -> String {
    let name = cname(c);
    let project = label(c, PROJECT_LABEL);
    let default = format!("{project}-{}-{}", label(c, SERVICE_LABEL), number(c));
    if name == default {
        name[project.len() + 1..].to_string()
    } else {
        name
    }
}

/// Services selected on the command line (all when empty), checked.
pub fn select<'a>(project: &'a Project, names: &[String]) -> CmdResult<Vec<&'a Service>> {
    if names.is_empty() {
        return Ok(project.services.values().collect());
    }
    let mut out = Vec::new();
    for n in names {
        match project.services.get(n) {
            Some(s) => out.push(s),
            None => return Err(CmdError::msg(format!("no such service: {n}"))),
        }
    }
    Ok(out)
}

/// Runs the project command `name`.
pub async fn run(
    client: &Client,
    ui: &Ui,
    project: &mut Project,
    name: &str,
    args: &[String],
    flags: &dyn Flags,
) -> CmdResult {
    match name {
        "up" => up::up(client, ui, project, args, flags, true).await,
        "create" => up::up(client, ui, project, args, flags, false).await,
        "down" => ops::down(client, ui, project, args, flags).await,
        "ps" => ops::ps(client, ui, project, args, flags).await,
        "start" => ops::start(client, ui, project, args, flags).await,
        "stop" | "restart" | "kill" | "pause" | "unpause" => {
            ops::simple(client, ui, project, args, flags, name).await
        }
        "rm" => ops::rm(client, ui, project, args, flags).await,
        "logs" => ops::logs(client, ui, project, args, flags).await,
        "pull" => ops::pull(client, ui, project, args, flags).await,
        "images" => ops::images(client, ui, project, args, flags).await,
        "port" => ops::port(client, ui, project, args, flags).await,
        "top" => ops::top(client, ui, project, args).await,
        "build" => build::build(client, ui, project, args).await,
        other => Err(CmdError::msg(format!(
            "berth compose {other}: not implemented yet"
        ))),
    }
}

/// A second client on the same daemon, for concurrent tasks.
pub fn reconnect(client: &Client) -> CmdResult<Client> {
    // The same transport (TLS included) and negotiated version.
    Ok(client
        .duplicate()
        .with_user_agent(concat!("berth-compose/", env!("CARGO_PKG_VERSION"))))
}

/// Labels every container of `s` carries (the per-container ones are added by the caller).
pub fn service_labels(project: &Project, s: &Service) -> BTreeMap<String, String> {
    let mut l = s.labels.clone();
    l.insert(PROJECT_LABEL.into(), project.name.clone());
    l.insert(SERVICE_LABEL.into(), s.name.clone());
    l.insert(VERSION_LABEL.into(), COMPOSE_VERSION.into());
    l.insert(
        WORKING_DIR_LABEL.into(),
        project.working_dir.to_string_lossy().into_owned(),
    );
    l.insert(
        CONFIG_FILES_LABEL.into(),
        project
            .config_files
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(","),
    );
    l.insert(ONEOFF_LABEL.into(), "False".into());
    l
}
