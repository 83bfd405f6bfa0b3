//! The Docker-compatible command line: `berth <verb>` talks to the daemon's Engine API only.
//!
//! Layout:
//! * [`flags`]: pflag-compatible parsing, help and error texts;
//! * [`opts`]: `run`/`create` flags → the create body, exactly as the Docker CLI 28 builds it;
//! * [`format`]: Go templates (`--format`), Docker's `table` directive and tabwriter;
//! * [`stream`]: attach/exec sessions (demux, stdin, raw tty, resize, signal proxy);
//! * [`progress`]: JSON progress streams (pull, push, load, import);
//! * [`auth`]: `~/.docker/config.json` and credential helpers;
//! * one module per group of verbs ([`container`], [`run`], [`exec`], [`image`], [`system`]).

mod auth;
mod build;
mod compose;
mod connect;
mod container;
mod context_cmd;
mod context_store;
mod cp;
mod exec;
mod flags;
mod format;
mod image;
mod inspect;
mod network;
mod ops;
mod opts;
mod progress;
mod run;
mod stream;
mod system;
mod term;
mod units;
mod volume;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;

use berth_api::client::{Client, ClientError};

use crate::registry_cmd;
use flags::{Flag, Matches, NArgs, Spec};

/// An error that ends the command: what to print on stderr and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: i32,
    /// Printed as is (plus a newline) when not empty.
    pub message: String,
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Exit code 1 with a message (Docker's plain `error`).
    pub fn msg(message: impl Into<String>) -> Self {
        Self::new(1, message)
    }

    /// An exit code with nothing to print.
    pub fn silent(code: i32) -> Self {
        Self::new(code, String::new())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::msg(e.to_string())
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            // A closed stdout (`berth ps | head -1`): the Go CLI dies of SIGPIPE here.
            CliError::silent(141)
        } else {
            CliError::msg(e.to_string())
        }
    }
}

/// Writes to stdout (never panics on a closed pipe, unlike `print!`).
pub fn print_out(s: &str) -> CliResult<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes one line to stdout.
pub fn println_out(s: &str) -> CliResult<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Writes one line to stderr (errors there are ignored: nowhere left to report them).
pub fn eprintln_err(s: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.write_all(b"\n");
    let _ = err.flush();
}

/// What every command gets: the global options and a lazily built API client.
pub struct Ctx {
    host: Option<String>,
    config_dir: Option<PathBuf>,
    tls: Option<connect::TlsOpts>,
    /// `--context` / `-c`.
    context: Option<String>,
}

impl Ctx {
    /// The API client for `-H` / `BERTH_HOST` / `DOCKER_HOST`, with TLS when asked for.
    pub fn client(&self) -> CliResult<Client> {
        let name = self.context_name()?;
        if name != context_store::DEFAULT_CONTEXT {
            return self.context_client(&name);
        }
        let mut client = Client::from_env(self.host.as_deref())?;
        if let Some(tls) = &self.tls {
            let data = tls.data().map_err(|e| CliError::msg(e.to_string()))?;
            let config = berth_api::tls::client_config(&data, !tls.verify)
                .map_err(|e| CliError::msg(e.to_string()))?;
            client = client.with_tls(config)?;
        }
        Ok(client.with_user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION"))))
    }

    /// The context in use, with the Docker CLI's precedence: `--context`, then `default` when
    /// `-H`, `BERTH_HOST` or `DOCKER_HOST` is given, then `DOCKER_CONTEXT`, then
    /// `currentContext` of config.json.
    pub fn context_name(&self) -> CliResult<String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(c) = &self.context {
            return Ok(c.clone());
        }
        if self.host.is_some() || env("BERTH_HOST").is_some() || env("DOCKER_HOST").is_some() {
            return Ok(context_store::DEFAULT_CONTEXT.into());
        }
        if let Some(c) = env("DOCKER_CONTEXT") {
            return Ok(c);
        }
        Ok(self
            .config()?
            .current_context()
            .unwrap_or_else(|| context_store::DEFAULT_CONTEXT.into()))
    }

    /// The client of a stored context: its host, and TLS when it has TLS material or skips
    /// verification (as the Docker CLI decides).
    fn context_client(&self, name: &str) -> CliResult<Client> {
        let s = context_store::Store::new(&self.config_dir());
        let (host, skip, data) = context_cmd::endpoint_of(self, &s, name)?;
        if host.is_empty() {
            return Err(CliError::msg(format!(
                "context {name:?} has no docker endpoint host"
            )));
        }
        let mut client = Client::from_host(&host)?;
        if data.is_some() || skip {
            let config = berth_api::tls::client_config(&data.unwrap_or_default(), skip)
                .map_err(|e| CliError::msg(format!("failed to retrieve context tls info: {e}")))?;
            client = client.with_tls(config)?;
        }
        Ok(client.with_user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION"))))
    }

    /// The client configuration directory (`--config`, `DOCKER_CONFIG`, `~/.docker`).
    pub fn config_dir(&self) -> PathBuf {
        auth::config_dir(self.config_dir.as_deref())
    }

    /// The parsed client configuration file (empty when absent).
    pub fn config(&self) -> CliResult<auth::ConfigFile> {
        auth::ConfigFile::load(&self.config_dir()).map_err(|e| CliError::msg(e.to_string()))
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main(argv: Vec<OsString>) -> i32 {
    let args: Vec<String> = match argv
        .into_iter()
        .skip(1)
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
    {
        Ok(a) => a,
        Err(bad) => {
            eprintln_err(&format!(
                "berth: argument {bad:?} is not valid UTF-8; berth only accepts UTF-8 arguments"
            ));
            return 125;
        }
    };
    if args.first().map(String::as_str) == Some("registry") {
        return registry(&args);
    }
    match run_cli(args) {
        Ok(()) => 0,
        Err(e) => {
            if !e.message.is_empty() {
                eprintln_err(&e.message);
            }
            e.code
        }
    }
}

/// `berth registry …` keeps its own (clap) syntax.
fn registry(args: &[String]) -> i32 {
    use clap::Parser;
    #[derive(Parser)]
    #[command(name = "berth", about = "A Docker-compatible container engine")]
    struct RegistryCli {
        #[command(subcommand)]
        command: RegistryCommand,
    }
    #[derive(clap::Subcommand)]
    enum RegistryCommand {
        /// Run or maintain an OCI distribution registry
        Registry(registry_cmd::RegistryArgs),
    }
    let argv = std::iter::once("berth".to_string()).chain(args.iter().cloned());
    let cli = match RegistryCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    let RegistryCommand::Registry(args) = cli.command;
    match registry_cmd::run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln_err(&format!("berth: {e:#}"));
            1
        }
    }
}

fn global_spec() -> Spec {
    Spec::new(
        "berth",
        "[OPTIONS] COMMAND",
        "A Docker-compatible container engine",
    )
    .flags(vec![
        Flag::value("config", "string", "Location of client config files").default("\"~/.docker\""),
        Flag::value(
            "context",
            "string",
            "Name of the context to use to connect to the daemon (overrides DOCKER_HOST env var\nand default context set with \"berth context use\")",
        )
        .short('c'),
        Flag::bool("debug", "Enable debug mode").short('D'),
        Flag::list("host", "list", "Daemon socket to connect to").short('H'),
        Flag::value(
            "log-level",
            "string",
            "Set the logging level (\"debug\", \"info\", \"warn\", \"error\", \"fatal\")",
        )
        .short('l')
        .default("\"info\""),
        Flag::bool("tls", "Use TLS; implied by --tlsverify"),
        Flag::value("tlscacert", "string", "Trust certs signed only by this CA")
            .default("\"~/.docker/ca.pem\""),
        Flag::value("tlscert", "string", "Path to TLS certificate file")
            .default("\"~/.docker/cert.pem\""),
        Flag::value("tlskey", "string", "Path to TLS key file").default("\"~/.docker/key.pem\""),
        Flag::bool("tlsverify", "Use TLS and verify the remote"),
        Flag::bool("version", "Print version information and quit").short('v'),
    ])
    .not_interspersed()
}

fn run_cli(args: Vec<String>) -> CliResult<()> {
    let spec = global_spec();
    let m = match spec.parse_args(&args) {
        Ok(m) => m,
        Err(flags::ParseError::Help) => return print_out(&root_help()),
        Err(flags::ParseError::Flag(e)) => return Err(spec.flag_error(&e)),
    };
    if m.flag("version") {
        return println_out(&format!(
            "berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
        ));
    }
    let hosts = m.list("host");
    if hosts.len() > 1 {
        return Err(CliError::msg("Specify only one -H"));
    }
    let context = m.string("context").filter(|c| !c.is_empty());
    if context.is_some() && !hosts.is_empty() {
        return Err(CliError::msg(
            "conflicting options: cannot specify both --host and --context",
        ));
    }
    if m.flag("debug") || m.value("log-level") == Some("debug") {
        let _ = tracing_subscriber::fmt()
            .with_writer(io::stderr)
            .with_max_level(tracing::Level::DEBUG)
            .try_init();
    }
    let config_dir = m.string("config").map(PathBuf::from);
    let tls = connect::tls_opts(&m, &auth::config_dir(config_dir.as_deref()), |k| {
        std::env::var(k).ok()
    });
    let ctx = Ctx {
        host: hosts.into_iter().next(),
        config_dir,
        tls,
        context,
    };
    let mut rest = m.args;
    if rest.is_empty() {
        return print_out(&root_help());
    }
    let name = rest.remove(0);
    if name == "compose" {
        return compose::run(&ctx, rest);
    }
    let (verb, path) = match resolve(&name, &mut rest)? {
        Resolved::Verb(v, path) => (v, path),
        Resolved::Done => return Ok(()),
    };
    let spec = verb.spec(&path);
    let m = spec.parse(&rest)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::msg(format!("berth: cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(verb.run(&ctx, &spec, m));
    // A blocking stdin reader may still be parked in read(2): never wait for it.
    runtime.shutdown_background();
    result
}

enum Resolved {
    Verb(Verb, String),
    Done,
}

/// Maps `ps`, `container ls`, `image rm`… to a verb and its full command path.
fn resolve(name: &str, rest: &mut Vec<String>) -> CliResult<Resolved> {
    let group: Option<(&str, &[(&str, Verb)])> = match name {
        "container" => Some(("container", CONTAINER_VERBS)),
        "image" => Some(("image", IMAGE_VERBS)),
        "system" => Some(("system", SYSTEM_VERBS)),
        "context" => Some(("context", CONTEXT_VERBS)),
        "network" => Some(("network", NETWORK_VERBS)),
        "volume" => Some(("volume", VOLUME_VERBS)),
        "builder" => Some(("builder", BUILDER_VERBS)),
        _ => None,
    };
    if let Some((group, verbs)) = group {
        let Some(sub) = rest.first().cloned() else {
            print_out(&group_help(group))?;
            return Ok(Resolved::Done);
        };
        if sub == "--help" || sub == "-h" {
            print_out(&group_help(group))?;
            return Ok(Resolved::Done);
        }
        rest.remove(0);
        return match verbs.iter().find(|(n, _)| *n == sub) {
            Some((n, v)) => Ok(Resolved::Verb(*v, format!("berth {group} {n}"))),
            None => Err(CliError::msg(format!(
                "berth: unknown command: berth {group} {sub}\n\nUsage:  berth {group}\n\nRun 'berth {group} --help' for more information"
            ))),
        };
    }
    match TOP_VERBS.iter().find(|(n, _)| *n == name) {
        Some((n, v)) => Ok(Resolved::Verb(*v, format!("berth {n}"))),
        None if name == "help" => {
            // `berth help run` = `berth run --help`.
            if let Some(first) = rest.first().cloned() {
                let mut sub: Vec<String> = rest[1..].to_vec();
                if let Resolved::Verb(v, path) = resolve(&first, &mut sub)? {
                    print_out(&v.spec(&path).help())?;
                }
                return Ok(Resolved::Done);
            }
            print_out(&root_help())?;
            Ok(Resolved::Done)
        }
        None => Err(CliError::msg(format!(
            "berth: unknown command: berth {name}\n\nRun 'berth --help' for more information"
        ))),
    }
}

/// Every command berth implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Run,
    Create,
    Start,
    Stop,
    Kill,
    Restart,
    Rm,
    Ps,
    Inspect,
    ContainerInspect,
    ImageInspect,
    Logs,
    Exec,
    Attach,
    Wait,
    Pause,
    Unpause,
    Top,
    Rename,
    Port,
    Images,
    Rmi,
    Tag,
    History,
    Save,
    Load,
    Import,
    Pull,
    Push,
    Version,
    Info,
    Events,
    Login,
    Logout,
    ContainerPrune,
    ImagePrune,
    SystemDf,
    SystemPrune,
    SystemCheck,
    Diff,
    Export,
    Commit,
    Stats,
    NetworkCreate,
    NetworkLs,
    NetworkInspect,
    NetworkRm,
    NetworkPrune,
    NetworkConnect,
    NetworkDisconnect,
    Update,
    VolumeCreate,
    VolumeLs,
    VolumeInspect,
    VolumeRm,
    VolumePrune,
    ContextCreate,
    ContextLs,
    ContextUse,
    ContextShow,
    ContextInspect,
    ContextRm,
    ContextExport,
    ContextImport,
    DialStdio,
    Build,
    BuilderPrune,
    Cp,
}

const TOP_VERBS: &[(&str, Verb)] = &[
    ("attach", Verb::Attach),
    ("build", Verb::Build),
    ("commit", Verb::Commit),
    ("cp", Verb::Cp),
    ("create", Verb::Create),
    ("diff", Verb::Diff),
    ("events", Verb::Events),
    ("exec", Verb::Exec),
    ("export", Verb::Export),
    ("history", Verb::History),
    ("images", Verb::Images),
    ("import", Verb::Import),
    ("info", Verb::Info),
    ("inspect", Verb::Inspect),
    ("kill", Verb::Kill),
    ("load", Verb::Load),
    ("login", Verb::Login),
    ("logout", Verb::Logout),
    ("logs", Verb::Logs),
    ("pause", Verb::Pause),
    ("port", Verb::Port),
    ("ps", Verb::Ps),
    ("pull", Verb::Pull),
    ("push", Verb::Push),
    ("rename", Verb::Rename),
    ("restart", Verb::Restart),
    ("rm", Verb::Rm),
    ("rmi", Verb::Rmi),
    ("run", Verb::Run),
    ("save", Verb::Save),
    ("start", Verb::Start),
    ("stats", Verb::Stats),
    ("stop", Verb::Stop),
    ("tag", Verb::Tag),
    ("top", Verb::Top),
    ("unpause", Verb::Unpause),
    ("update", Verb::Update),
    ("version", Verb::Version),
    ("wait", Verb::Wait),
];

const CONTAINER_VERBS: &[(&str, Verb)] = &[
    ("attach", Verb::Attach),
    ("commit", Verb::Commit),
    ("cp", Verb::Cp),
    ("create", Verb::Create),
    ("diff", Verb::Diff),
    ("exec", Verb::Exec),
    ("export", Verb::Export),
    ("inspect", Verb::ContainerInspect),
    ("kill", Verb::Kill),
    ("logs", Verb::Logs),
    ("ls", Verb::Ps),
    ("list", Verb::Ps),
    ("ps", Verb::Ps),
    ("pause", Verb::Pause),
    ("port", Verb::Port),
    ("prune", Verb::ContainerPrune),
    ("rename", Verb::Rename),
    ("restart", Verb::Restart),
    ("rm", Verb::Rm),
    ("remove", Verb::Rm),
    ("run", Verb::Run),
    ("start", Verb::Start),
    ("stats", Verb::Stats),
    ("stop", Verb::Stop),
    ("top", Verb::Top),
    ("unpause", Verb::Unpause),
    ("update", Verb::Update),
    ("wait", Verb::Wait),
];

const IMAGE_VERBS: &[(&str, Verb)] = &[
    ("build", Verb::Build),
    ("history", Verb::History),
    ("import", Verb::Import),
    ("inspect", Verb::ImageInspect),
    ("load", Verb::Load),
    ("ls", Verb::Images),
    ("list", Verb::Images),
    ("prune", Verb::ImagePrune),
    ("pull", Verb::Pull),
    ("push", Verb::Push),
    ("rm", Verb::Rmi),
    ("remove", Verb::Rmi),
    ("save", Verb::Save),
    ("tag", Verb::Tag),
];

const NETWORK_VERBS: &[(&str, Verb)] = &[
    ("connect", Verb::NetworkConnect),
    ("create", Verb::NetworkCreate),
    ("disconnect", Verb::NetworkDisconnect),
    ("inspect", Verb::NetworkInspect),
    ("ls", Verb::NetworkLs),
    ("list", Verb::NetworkLs),
    ("prune", Verb::NetworkPrune),
    ("rm", Verb::NetworkRm),
    ("remove", Verb::NetworkRm),
];
const BUILDER_VERBS: &[(&str, Verb)] = &[("build", Verb::Build), ("prune", Verb::BuilderPrune)];

const VOLUME_VERBS: &[(&str, Verb)] = &[
    ("create", Verb::VolumeCreate),
    ("inspect", Verb::VolumeInspect),
    ("ls", Verb::VolumeLs),
    ("list", Verb::VolumeLs),
    ("prune", Verb::VolumePrune),
    ("rm", Verb::VolumeRm),
    ("remove", Verb::VolumeRm),
];

const CONTEXT_VERBS: &[(&str, Verb)] = &[
    ("create", Verb::ContextCreate),
    ("export", Verb::ContextExport),
    ("import", Verb::ContextImport),
    ("inspect", Verb::ContextInspect),
    ("ls", Verb::ContextLs),
    ("list", Verb::ContextLs),
    ("rm", Verb::ContextRm),
    ("remove", Verb::ContextRm),
    ("show", Verb::ContextShow),
    ("use", Verb::ContextUse),
];

const SYSTEM_VERBS: &[(&str, Verb)] = &[
    ("check", Verb::SystemCheck),
    ("df", Verb::SystemDf),
    ("dial-stdio", Verb::DialStdio),
    ("events", Verb::Events),
    ("info", Verb::Info),
    ("prune", Verb::SystemPrune),
];

impl Verb {
    /// The one-line description (also used in the command lists of the help).
    pub fn about(self) -> &'static str {
        match self {
            Verb::Run => "Create and run a new container from an image",
            Verb::Create => "Create a new container",
            Verb::Start => "Start one or more stopped containers",
            Verb::Stop => "Stop one or more running containers",
            Verb::Kill => "Kill one or more running containers",
            Verb::Restart => "Restart one or more containers",
            Verb::Rm => "Remove one or more containers",
            Verb::Ps => "List containers",
            Verb::Inspect => "Return low-level information on berth objects",
            Verb::ContainerInspect => "Display detailed information on one or more containers",
            Verb::ImageInspect => "Display detailed information on one or more images",
            Verb::Logs => "Fetch the logs of a container",
            Verb::Exec => "Execute a command in a running container",
            Verb::Attach => {
                "Attach local standard input, output, and error streams to a running container"
            }
            Verb::Wait => "Block until one or more containers stop, then print their exit codes",
            Verb::Pause => "Pause all processes within one or more containers",
            Verb::Unpause => "Unpause all processes within one or more containers",
            Verb::Top => "Display the running processes of a container",
            Verb::Rename => "Rename a container",
            Verb::Port => "List port mappings or a specific mapping for the container",
            Verb::Images => "List images",
            Verb::Rmi => "Remove one or more images",
            Verb::Tag => "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
            Verb::History => "Show the history of an image",
            Verb::Save => "Save one or more images to a tar archive (streamed to STDOUT by default)",
            Verb::Load => "Load an image from a tar archive or STDIN",
            Verb::Import => "Import the contents from a tarball to create a filesystem image",
            Verb::Pull => "Download an image from a registry",
            Verb::Push => "Upload an image to a registry",
            Verb::Version => "Show the berth version information",
            Verb::Info => "Display system-wide information",
            Verb::Events => "Get real time events from the server",
            Verb::Login => "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
            Verb::Logout => "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
            Verb::ContainerPrune => "Remove all stopped containers",
            Verb::ImagePrune => "Remove unused images",
            Verb::SystemDf => "Show berth disk usage",
            Verb::SystemPrune => "Remove unused data",
            Verb::SystemCheck => "Check the data root for what crashes leave behind (and --repair it)",
            Verb::Diff => "Inspect changes to files or directories on a container's filesystem",
            Verb::Export => "Export a container's filesystem as a tar archive",
            Verb::Commit => "Create a new image from a container's changes",
            Verb::Stats => "Display a live stream of container(s) resource usage statistics",
            Verb::NetworkCreate => "Create a network",
            Verb::NetworkLs => "List networks",
            Verb::NetworkInspect => "Display detailed information on one or more networks",
            Verb::NetworkRm => "Remove one or more networks",
            Verb::NetworkPrune => "Remove all unused networks",
            Verb::NetworkConnect => "Connect a container to a network",
            Verb::NetworkDisconnect => "Disconnect a container from a network",
            Verb::Update => "Update configuration of one or more containers",
            Verb::VolumeCreate => "Create a volume",
            Verb::VolumeLs => "List volumes",
            Verb::VolumeInspect => "Display detailed information on one or more volumes",
            Verb::VolumeRm => "Remove one or more volumes",
            Verb::VolumePrune => "Remove unused local volumes",
            Verb::ContextCreate => "Create a context",
            Verb::ContextLs => "List contexts",
            Verb::ContextUse => "Set the current berth context",
            Verb::ContextShow => "Print the name of the current context",
            Verb::ContextInspect => "Display detailed information on one or more contexts",
            Verb::ContextRm => "Remove one or more contexts",
            Verb::ContextExport => {
                "Export a context to a tar archive FILE or a tar stream on STDOUT."
            }
            Verb::ContextImport => "Import a context from a tar or zip file",
            Verb::DialStdio => "Proxy the stdio stream to the daemon connection. Should not be invoked manually.",
            Verb::Build => "Build an image from a Dockerfile",
            Verb::BuilderPrune => "Remove build cache",
            Verb::Cp => "Copy files/folders between a container and the local filesystem",
        }
    }

    /// Every invocation of this verb, as the `Aliases:` section lists them.
    fn aliases(self) -> Vec<String> {
        let mut out = Vec::new();
        for (group, verbs) in [
            ("container", CONTAINER_VERBS),
            ("image", IMAGE_VERBS),
            ("system", SYSTEM_VERBS),
            ("network", NETWORK_VERBS),
            ("volume", VOLUME_VERBS),
            ("context", CONTEXT_VERBS),
            ("builder", BUILDER_VERBS),
        ] {
            for (n, v) in verbs {
                if *v == self {
                    out.push(format!("berth {group} {n}"));
                }
            }
        }
        for (n, v) in TOP_VERBS {
            if *v == self {
                out.push(format!("berth {n}"));
            }
        }
        if out.len() < 2 {
            out.clear();
        }
        out
    }

    fn spec(self, path: &str) -> Spec {
        let spec = match self {
            Verb::Run => run::run_spec(path),
            Verb::Build => build::spec(path),
            Verb::BuilderPrune => build::prune_spec(path),
            Verb::Create => run::create_spec(path),
            Verb::Start => run::start_spec(path),
            Verb::Attach => run::attach_spec(path),
            Verb::Exec => exec::spec(path),
            Verb::Inspect | Verb::ContainerInspect | Verb::ImageInspect => {
                inspect::spec(self, path)
            }
            Verb::Images | Verb::Rmi | Verb::Tag | Verb::History | Verb::Save | Verb::Load => {
                image::spec(self, path)
            }
            Verb::Import | Verb::Pull | Verb::Push => image::spec(self, path),
            Verb::Version | Verb::Info | Verb::Events | Verb::Login | Verb::Logout => {
                system::spec(self, path)
            }
            Verb::ContainerPrune
            | Verb::ImagePrune
            | Verb::SystemDf
            | Verb::SystemPrune
            | Verb::SystemCheck
            | Verb::Diff
            | Verb::Export
            | Verb::Commit
            | Verb::Stats => ops::spec(self, path),
            Verb::NetworkCreate
            | Verb::NetworkLs
            | Verb::NetworkInspect
            | Verb::NetworkRm
            | Verb::NetworkPrune
            | Verb::NetworkConnect
            | Verb::NetworkDisconnect => network::spec(self, path),
            Verb::VolumeCreate
            | Verb::VolumeLs
            | Verb::VolumeInspect
            | Verb::VolumeRm
            | Verb::VolumePrune => volume::spec(self, path),
            Verb::ContextCreate
            | Verb::ContextLs
            | Verb::ContextUse
            | Verb::ContextShow
            | Verb::ContextInspect
            | Verb::ContextRm
            | Verb::ContextExport
            | Verb::ContextImport
            | Verb::DialStdio => context_cmd::spec(self, path),
            Verb::Cp => cp::spec(path),
            _ => container::spec(self, path),
        };
        let spec = Spec {
            about: self.about(),
            ..spec
        };
        spec.aliases(
            &self
                .aliases()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
    }

    async fn run(self, ctx: &Ctx, spec: &Spec, m: Matches) -> CliResult<()> {
        match self {
            Verb::Run => run::run(ctx, spec, m).await,
            Verb::Build => build::run(ctx, m).await,
            Verb::BuilderPrune => build::prune(ctx, m).await,
            Verb::Create => run::create(ctx, spec, m).await,
            Verb::Start => run::start(ctx, m).await,
            Verb::Attach => run::attach(ctx, m).await,
            Verb::Exec => exec::run(ctx, m).await,
            Verb::Inspect | Verb::ContainerInspect | Verb::ImageInspect => {
                inspect::run(ctx, self, m).await
            }
            Verb::Images
            | Verb::Rmi
            | Verb::Tag
            | Verb::History
            | Verb::Save
            | Verb::Load
            | Verb::Import
            | Verb::Pull
            | Verb::Push => image::run(ctx, self, m).await,
            Verb::Version | Verb::Info | Verb::Events | Verb::Login | Verb::Logout => {
                system::run(ctx, self, m).await
            }
            Verb::ContainerPrune
            | Verb::ImagePrune
            | Verb::SystemDf
            | Verb::SystemPrune
            | Verb::SystemCheck
            | Verb::Diff
            | Verb::Export
            | Verb::Commit
            | Verb::Stats => ops::run(ctx, self, m).await,
            Verb::NetworkCreate
            | Verb::NetworkLs
            | Verb::NetworkInspect
            | Verb::NetworkRm
            | Verb::NetworkPrune
            | Verb::NetworkConnect
            | Verb::NetworkDisconnect => network::run(ctx, self, m).await,
            Verb::VolumeCreate
            | Verb::VolumeLs
            | Verb::VolumeInspect
            | Verb::VolumeRm
            | Verb::VolumePrune => volume::run(ctx, self, m).await,
            Verb::ContextCreate
            | Verb::ContextLs
            | Verb::ContextUse
            | Verb::ContextShow
            | Verb::ContextInspect
            | Verb::ContextRm
            | Verb::ContextExport
            | Verb::ContextImport
            | Verb::DialStdio => context_cmd::run(ctx, self, m).await,
            Verb::Cp => cp::run(ctx, m).await,
            _ => container::run(ctx, self, m).await,
        }
    }
}

fn command_list(out: &mut String, title: &str, verbs: &[(&str, Verb)]) {
    out.push_str(title);
    out.push_str(":\n");
    for (n, v) in verbs {
        let about = v.about().lines().next().unwrap_or_default();
        out.push_str(&format!("  {n:<11} {about}\n"));
    }
}

fn root_help() -> String {
    let mut s =
        String::from("Usage:  berth [OPTIONS] COMMAND\n\nA Docker-compatible container engine\n\n");
    let common: Vec<(&str, Verb)> = [
        "run", "exec", "ps", "pull", "push", "images", "login", "logout", "version", "info",
    ]
    .iter()
    .filter_map(|n| TOP_VERBS.iter().find(|(t, _)| t == n).copied())
    .collect();
    command_list(&mut s, "Common Commands", &common);
    s.push_str("\nManagement Commands:\n");
    s.push_str("  builder     Manage builds\n");
    s.push_str("  compose     Define and run multi-container applications\n");
    s.push_str("  container   Manage containers\n");
    s.push_str("  context     Manage contexts\n");
    s.push_str("  image       Manage images\n");
    s.push_str("  network     Manage networks\n");
    s.push_str("  registry    Run or maintain an OCI distribution registry\n");
    s.push_str("  system      Manage berth\n");
    s.push_str("  volume      Manage volumes\n\n");
    let rest: Vec<(&str, Verb)> = TOP_VERBS
        .iter()
        .filter(|(n, _)| !common.iter().any(|(c, _)| c == n))
        .copied()
        .collect();
    command_list(&mut s, "Commands", &rest);
    s.push_str("\nGlobal Options:\n");
    let spec = global_spec();
    let visible: Vec<&Flag> = spec.flags.iter().filter(|f| !f.hidden).collect();
    s.push_str(&flags::flag_usages(&visible, 79));
    s.push_str("\nRun 'berth COMMAND --help' for more information on a command.\n");
    s
}

fn group_help(group: &str) -> String {
    let (about, verbs) = match group {
        "container" => ("Manage containers", CONTAINER_VERBS),
        "image" => ("Manage images", IMAGE_VERBS),
        "network" => ("Manage networks", NETWORK_VERBS),
        "volume" => ("Manage volumes", VOLUME_VERBS),
        "context" => ("Manage contexts", CONTEXT_VERBS),
        "builder" => ("Manage builds", BUILDER_VERBS),
        _ => ("Manage berth", SYSTEM_VERBS),
    };
    // One line per verb: its first (Docker's preferred) name.
    let mut listed: Vec<(&str, Verb)> = Vec::new();
    for (n, v) in verbs {
        if !listed.iter().any(|(_, w)| w == v) {
            listed.push((n, *v));
        }
    }
    let mut s = format!("Usage:  berth {group} COMMAND\n\n{about}\n\n");
    command_list(&mut s, "Commands", &listed);
    s.push_str(&format!(
        "\nRun 'berth {group} COMMAND --help' for more information on a command.\n"
    ));
    s
}

/// Shared spec constructor for commands without special syntax.
pub(crate) fn spec(path: &str, usage: &'static str, nargs: NArgs, flags: Vec<Flag>) -> Spec {
    Spec::new(path, usage, "").flags(flags).nargs(nargs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_has_a_spec_and_aliases_are_docker_like() {
        for (n, v) in TOP_VERBS {
            let s = v.spec(&format!("berth {n}"));
            assert_eq!(s.path, format!("berth {n}"));
            assert!(!s.about.is_empty());
        }
        assert_eq!(
            Verb::Ps.aliases(),
            vec![
                "berth container ls",
                "berth container list",
                "berth container ps",
                "berth ps"
            ]
        );
        assert!(Verb::Inspect.aliases().is_empty());
    }

    #[test]
    fn unknown_commands() {
        let e = resolve("nosuch", &mut vec![]).err().unwrap();
        assert_eq!(
            e.message,
            "berth: unknown command: berth nosuch\n\nRun 'berth --help' for more information"
        );
        let e = resolve("container", &mut vec!["nosuch".into()])
            .err()
            .unwrap();
        assert!(e.message.starts_with(
            "berth: unknown command: berth container nosuch\n\nUsage:  berth container\n"
        ));
        match resolve("image", &mut vec!["ls".into()]).ok().unwrap() {
            Resolved::Verb(v, p) => {
                assert_eq!(v, Verb::Images);
                assert_eq!(p, "berth image ls");
            }
            Resolved::Done => panic!("expected a verb"),
        }
    }

    #[test]
    fn help_command() {
        assert!(matches!(
            resolve("help", &mut vec!["ps".into()]),
            Ok(Resolved::Done)
        ));
        assert!(resolve("help", &mut vec!["nosuch".into()]).is_err());
    }

    #[test]
    fn group_help_lists_each_verb_once() {
        let h = group_help("container");
        assert!(h.contains("  ls          List containers\n"));
        assert!(!h.contains("  list "));
        assert!(h.contains("  rm          Remove one or more containers\n"));
        assert!(!h.contains("  remove "));
    }
}
