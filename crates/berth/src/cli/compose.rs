//! `berth compose …`: Docker Compose v2's command line over `berth_compose` (the loader and
//! the commands, which talk to the daemon through the Engine API only).

use std::path::PathBuf;

use berth_compose::cmd::{self, Ui};
use berth_compose::{LoadOptions, Loaded};

use super::flags::{Flag, Matches, NArgs, Spec};
use super::{print_out, CliError, CliResult, Ctx};

const SUBCOMMANDS: &[(&str, &str)] = &[
    ("build", "Build or rebuild services"),
    (
        "config",
        "Parse, resolve and render compose file in canonical format",
    ),
    ("create", "Creates containers for a service"),
    ("down", "Stop and remove containers, networks"),
    ("exec", "Execute a command in a running container"),
    ("images", "List images used by the created containers"),
    ("kill", "Force stop service containers"),
    ("logs", "View output from containers"),
    ("ls", "List running compose projects"),
    ("pause", "Pause services"),
    ("port", "Print the public port for a port binding"),
    ("ps", "List containers"),
    ("pull", "Pull service images"),
    ("push", "Push service images"),
    ("restart", "Restart service containers"),
    ("rm", "Removes stopped service containers"),
    ("run", "Run a one-off command on a service"),
    ("start", "Start services"),
    ("stop", "Stop services"),
    ("top", "Display the running processes"),
    ("unpause", "Unpause services"),
    ("up", "Create and start containers"),
    ("version", "Show the Docker Compose version information"),
];

fn global_spec() -> Spec {
    Spec::new(
        "berth compose",
        "[OPTIONS] COMMAND",
        "Define and run multi-container applications with Docker",
    )
    .flags(vec![
        Flag::value("ansi", "string", "Control when to print ANSI control characters (\"never\"|\"always\"|\"auto\")").default("\"auto\""),
        Flag::bool("compatibility", "Run compose in backward compatibility mode"),
        Flag::bool("dry-run", "Execute command in dry run mode"),
        Flag::list("env-file", "stringArray", "Specify an alternate environment file"),
        Flag::list("file", "stringArray", "Compose configuration files").short('f'),
        Flag::value("parallel", "int", "Control max parallelism, -1 for unlimited").default("-1"),
        Flag::list("profile", "stringArray", "Specify a profile to enable"),
        Flag::value("progress", "string", "Set type of progress output (auto, tty, plain, json, quiet)"),
        Flag::value("project-directory", "string", "Specify an alternate working directory\n(default: the path of the, first specified, Compose file)"),
        Flag::value("project-name", "string", "Project name").short('p'),
        Flag::bool("all-resources", "Include all resources, even those not used by services"),
    ])
    .not_interspersed()
}

fn help() -> String {
    let spec = global_spec();
    let mut s = String::from(
        "Usage:  berth compose [OPTIONS] COMMAND\n\nDefine and run multi-container applications with Docker\n\nOptions:\n",
    );
    let visible: Vec<&Flag> = spec.flags.iter().filter(|f| !f.hidden).collect();
    s.push_str(&super::flags::flag_usages(&visible, 79));
    s.push_str("\nCommands:\n");
    for (n, a) in SUBCOMMANDS {
        s.push_str(&format!("  {n:<11} {a}\n"));
    }
    s.push_str("\nRun 'berth compose COMMAND --help' for more information on a command.\n");
    s
}

fn sub_spec(name: &str) -> Option<Spec> {
    let about = SUBCOMMANDS.iter().find(|(n, _)| *n == name)?.1;
    let path = format!("berth compose {name}");
    let s = |usage: &'static str, nargs: NArgs, flags: Vec<Flag>| {
        Spec::new(path.clone(), usage, about)
            .flags(flags)
            .nargs(nargs)
    };
    let timeout =
        || Flag::value("timeout", "int", "Specify a shutdown timeout in seconds").short('t');
    Some(match name {
        "config" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::value("format", "string", "Format the output. Values: [yaml | json]").default("\"yaml\""),
                Flag::value("hash", "string", "Print the service config hash, one per line."),
                Flag::bool("images", "Print the image names, one per line."),
                Flag::bool("networks", "Print the network names, one per line."),
                Flag::bool("no-interpolate", "Don't interpolate environment variables (not supported)").hidden(),
                Flag::value("output", "string", "Save to file (default to stdout)").short('o'),
                Flag::bool("profiles", "Print the profile names, one per line."),
                Flag::bool("quiet", "Only validate the configuration, don't print anything").short('q'),
                Flag::bool("services", "Print the service names, one per line."),
                Flag::bool("volumes", "Print the volume names, one per line."),
            ],
        ),
        "version" => s(
            "[OPTIONS]",
            NArgs::None,
            vec![
                Flag::value("format", "string", "Format the output. Values: [pretty | json]").short('f').default("\"pretty\""),
                Flag::bool("short", "Shows only Compose's version number"),
            ],
        ),
        "up" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::bool("abort-on-container-exit", "Stops all containers if any container was stopped. Incompatible with -d"),
                Flag::bool("build", "Build images before starting containers"),
                Flag::bool("detach", "Detached mode: Run containers in the background").short('d'),
                Flag::value("exit-code-from", "string", "Return the exit code of the selected service container. Implies --abort-on-container-exit"),
                Flag::bool("force-recreate", "Recreate containers even if their configuration and image haven't changed"),
                Flag::bool("no-build", "Don't build an image, even if it's policy"),
                Flag::bool("no-color", "Produce monochrome output"),
                Flag::bool("no-deps", "Don't start linked services"),
                Flag::bool("no-log-prefix", "Don't print prefix in logs"),
                Flag::bool("no-recreate", "If containers already exist, don't recreate them. Incompatible with --force-recreate"),
                Flag::bool("no-start", "Don't start the services after creating them"),
                Flag::value("pull", "string", "Pull image before running (\"always\"|\"missing\"|\"never\")").default("\"policy\""),
                Flag::bool("quiet-pull", "Pull without printing progress information"),
                Flag::bool("remove-orphans", "Remove containers for services not defined in the Compose file"),
                Flag::list("scale", "scale", "Scale SERVICE to NUM instances. Overrides the scale setting in the Compose file if present."),
                timeout(),
                Flag::bool("timestamps", "Show timestamps"),
                Flag::bool("wait", "Wait for services to be running|healthy. Implies detached mode."),
                Flag::value("wait-timeout", "int", "Maximum duration in seconds to wait for the project to be running|healthy"),
                Flag::bool("yes", "Assume \"yes\" as answer to all prompts and run non-interactively").short('y'),
            ],
        ),
        "create" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::bool("build", "Build images before starting containers"),
                Flag::bool("force-recreate", "Recreate containers even if their configuration and image haven't changed"),
                Flag::bool("no-build", "Don't build an image, even if it's policy"),
                Flag::bool("no-recreate", "If containers already exist, don't recreate them. Incompatible with --force-recreate"),
                Flag::value("pull", "string", "Pull image before running (\"always\"|\"missing\"|\"never\"|\"build\")").default("\"policy\""),
                Flag::bool("quiet-pull", "Pull without printing progress information"),
                Flag::bool("remove-orphans", "Remove containers for services not defined in the Compose file"),
                Flag::list("scale", "scale", "Scale SERVICE to NUM instances. Overrides the scale setting in the Compose file if present."),
                Flag::bool("yes", "Assume \"yes\" as answer to all prompts and run non-interactively").short('y'),
            ],
        ),
        "down" => s(
            "[OPTIONS] [SERVICES]",
            NArgs::Any,
            vec![
                Flag::bool("remove-orphans", "Remove containers for services not defined in the Compose file"),
                Flag::value("rmi", "string", "Remove images used by services. \"local\" remove only images that don't have a custom tag (\"local\"|\"all\")"),
                timeout(),
                Flag::bool("volumes", "Remove named volumes declared in the \"volumes\" section of the Compose file and anonymous volumes attached to containers").short('v'),
            ],
        ),
        "ps" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::bool("all", "Show all stopped containers (including those created by the run command)").short('a'),
                Flag::list("filter", "string", "Filter services by a property (supported filters: status)"),
                Flag::value("format", "string", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template").default("\"table\""),
                Flag::bool("no-trunc", "Don't truncate output"),
                Flag::bool("orphans", "Include orphaned services (not declared by project)"),
                Flag::bool("quiet", "Only display IDs").short('q'),
                Flag::bool("services", "Display services"),
                Flag::list("status", "stringArray", "Filter services by status. Values: [paused | restarting | removing | running | dead | created | exited]"),
            ],
        ),
        "logs" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::bool("follow", "Follow log output").short('f'),
                Flag::value("index", "int", "index of the container if service has multiple replicas"),
                Flag::bool("no-color", "Produce monochrome output"),
                Flag::bool("no-log-prefix", "Don't print prefix in logs"),
                Flag::value("since", "string", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)"),
                Flag::value("tail", "string", "Number of lines to show from the end of the logs for each container").short('n').default("\"all\""),
                Flag::bool("timestamps", "Show timestamps").short('t'),
                Flag::value("until", "string", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)"),
            ],
        ),
        "start" => s("[SERVICE...]", NArgs::Any, vec![
            Flag::bool("wait", "Wait for services to be running|healthy. Implies detached mode."),
            Flag::value("wait-timeout", "int", "Maximum duration in seconds to wait for the project to be running|healthy"),
        ]),
        "stop" | "restart" => s("[OPTIONS] [SERVICE...]", NArgs::Any, vec![timeout()]),
        "kill" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::bool("remove-orphans", "Remove containers for services not defined in the Compose file"),
                Flag::value("signal", "string", "SIGNAL to send to the container").short('s').default("\"SIGKILL\""),
            ],
        ),
        "rm" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::bool("force", "Don't ask to confirm removal").short('f'),
                Flag::bool("stop", "Stop the containers, if required, before removing").short('s'),
                Flag::bool("volumes", "Remove any anonymous volumes attached to containers").short('v'),
            ],
        ),
        "pause" | "unpause" | "top" | "images" => s(
            "[SERVICE...]",
            NArgs::Any,
            if name == "images" {
                vec![
                    Flag::value("format", "string", "Format the output. Values: [table | json]").default("\"table\""),
                    Flag::bool("quiet", "Only display IDs").short('q'),
                ]
            } else {
                vec![]
            },
        ),
        "pull" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::bool("ignore-pull-failures", "Pull what it can and ignores images with pull failures"),
                Flag::bool("include-deps", "Also pull services declared as dependencies"),
                Flag::bool("quiet", "Pull without printing progress information").short('q'),
            ],
        ),
        "push" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::bool("ignore-push-failures", "Push what it can and ignores images with push failures"),
                Flag::bool("include-deps", "Also push images of services declared as dependencies"),
                Flag::bool("quiet", "Push without printing progress information").short('q'),
            ],
        ),
        "ls" => s(
            "[OPTIONS]",
            NArgs::None,
            vec![
                Flag::bool("all", "Show all stopped Compose projects").short('a'),
                Flag::list("filter", "filter", "Filter output based on conditions provided"),
                Flag::value("format", "string", "Format the output. Values: [table | json]").default("\"table\""),
                Flag::bool("quiet", "Only display project names").short('q'),
            ],
        ),
        "port" => s(
            "[OPTIONS] SERVICE PRIVATE_PORT",
            NArgs::Exact(2),
            vec![
                Flag::value("index", "int", "Index of the container if service has multiple replicas"),
                Flag::value("protocol", "string", "tcp or udp").default("\"tcp\""),
            ],
        ),
        "exec" => s(
            "[OPTIONS] SERVICE COMMAND [ARGS...]",
            NArgs::Min(2),
            vec![
                Flag::bool("detach", "Detached mode: Run command in the background").short('d'),
                Flag::list("env", "stringArray", "Set environment variables").short('e'),
                Flag::value("index", "int", "Index of the container if service has multiple replicas"),
                Flag::bool("no-TTY", "Disable pseudo-TTY allocation. By default 'docker compose exec' allocates a TTY.").short('T'),
                Flag::bool("privileged", "Give extended privileges to the process"),
                Flag::value("user", "string", "Run the command as this user").short('u'),
                Flag::value("workdir", "string", "Path to workdir directory for this command").short('w'),
            ],
        )
        .not_interspersed(),
        "run" => s(
            "[OPTIONS] SERVICE [COMMAND] [ARGS...]",
            NArgs::Min(1),
            vec![
                Flag::bool("build", "Build image before starting container"),
                Flag::bool("detach", "Run container in background and print container ID").short('d'),
                Flag::value("entrypoint", "string", "Override the entrypoint of the image"),
                Flag::list("env", "stringArray", "Set environment variables").short('e'),
                Flag::bool("interactive", "Keep STDIN open even if not attached").short('i'),
                Flag::list("label", "stringArray", "Add or override a label").short('l'),
                Flag::value("name", "string", "Assign a name to the container"),
                Flag::bool("no-TTY", "Disable pseudo-TTY allocation (default: auto-detected)").short('T'),
                Flag::bool("no-deps", "Don't start linked services"),
                Flag::list("publish", "stringArray", "Publish a container's port(s) to the host").short('p'),
                Flag::bool("quiet-pull", "Pull without printing progress information"),
                Flag::bool("remove-orphans", "Remove containers for services not defined in the Compose file"),
                Flag::bool("rm", "Automatically remove the container when it exits"),
                Flag::bool("service-ports", "Run command with all service's ports enabled and mapped to the host").short('P'),
                Flag::bool("tty", "Allocate a pseudo-TTY").short('t').hidden(),
                Flag::bool("use-aliases", "Use the service's network useAliases in the network(s) the container connects to"),
                Flag::bool("no-build", "Don't build an image, even if it's policy"),
                Flag::value("user", "string", "Run as specified username or uid").short('u'),
                Flag::list("volume", "stringArray", "Bind mount a volume").short('v'),
                Flag::value("workdir", "string", "Working directory inside the container").short('w'),
            ],
        )
        .not_interspersed(),
        "build" => s(
            "[OPTIONS] [SERVICE...]",
            NArgs::Any,
            vec![
                Flag::list("build-arg", "stringArray", "Set build-time variables for services"),
                Flag::bool("no-cache", "Do not use cache when building the image"),
                Flag::bool("pull", "Always attempt to pull a newer version of the image"),
                Flag::bool("quiet", "Don't print anything to STDOUT").short('q'),
                Flag::bool("with-dependencies", "Also build dependencies (transitively)"),
            ],
        ),
        _ => return None,
    })
}

/// Runs `berth compose ARGS…`.
pub fn run(ctx: &Ctx, args: Vec<String>) -> CliResult<()> {
    let gspec = global_spec();
    let g = match gspec.parse_args(&args) {
        Ok(m) => m,
        Err(super::flags::ParseError::Help) => return print_out(&help()),
        Err(super::flags::ParseError::Flag(e)) => return Err(gspec.flag_error(&e)),
    };
    let mut rest = g.args.clone();
    if rest.is_empty() {
        return print_out(&help());
    }
    let name = rest.remove(0);
    let Some(spec) = sub_spec(&name) else {
        if SUBCOMMANDS.iter().any(|(n, _)| *n == name) {
            return Err(CliError::msg(format!(
                "berth compose {name}: not implemented yet"
            )));
        }
        return Err(CliError::msg(format!(
            "unknown docker command: \"compose {name}\"\n\nRun 'berth compose --help' for more information"
        )));
    };
    let m = spec.parse(&rest)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::msg(format!("berth: cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(dispatch(ctx, &name, &g, m));
    runtime.shutdown_background();
    result
}

fn load_options(g: &Matches) -> LoadOptions {
    let mut o = LoadOptions::from_process();
    o.files = g.list("file").into_iter().map(PathBuf::from).collect();
    o.project_name = g.string("project-name");
    o.project_directory = g.string("project-directory").map(PathBuf::from);
    o.env_files = g.list("env-file").into_iter().map(PathBuf::from).collect();
    o.profiles = g
        .list("profile")
        .iter()
        .flat_map(|p| p.split(',').map(str::to_string))
        .filter(|p| !p.is_empty())
        .collect();
    o
}

fn load(g: &Matches) -> CliResult<Loaded> {
    let loaded = berth_compose::load(&load_options(g)).map_err(|e| CliError::msg(e.to_string()))?;
    for w in &loaded.warnings {
        super::eprintln_err(&format!("WARN[0000] {w}"));
    }
    Ok(loaded)
}

fn ui(g: &Matches, m: &Matches) -> Ui {
    let ansi = g.value("ansi").unwrap_or("auto");
    let tty = super::term::is_tty(1);
    let color = match ansi {
        "never" => false,
        "always" => true,
        _ => tty && std::env::var_os("NO_COLOR").is_none(),
    } && !m.flag("no-color");
    Ui::new(
        color,
        tty && g
            .value("progress")
            .is_none_or(|p| p == "tty" || p == "auto"),
    )
}

fn to_cli(e: cmd::CmdError) -> CliError {
    CliError::new(e.code, e.message)
}

async fn dispatch(ctx: &Ctx, name: &str, g: &Matches, m: Matches) -> CliResult<()> {
    if name == "version" {
        let v = env!("CARGO_PKG_VERSION");
        if m.flag("short") {
            return super::println_out(v);
        }
        if m.value("format") == Some("json") {
            return super::println_out(&format!("{{\"version\":\"v{v}\"}}"));
        }
        return super::println_out(&format!("berth compose version v{v}"));
    }
    if name == "config" {
        return config(g, m);
    }
    let client = ctx.client()?;
    let ui = ui(g, &m);
    if name == "exec" {
        return exec(ctx, g, &client, m).await;
    }
    if name == "run" {
        return run_cmd(ctx, g, &client, &ui, m).await;
    }
    if name == "push" {
        return push_cmd(ctx, g, &client, m).await;
    }
    match name {
        "ls" => cmd::ls(
            &client,
            &ui,
            &cmd::LsOptions {
                all: m.flag("all"),
                quiet: m.flag("quiet"),
                format: m.string("format").unwrap_or_else(|| "table".into()),
                filters: m.list("filter"),
            },
        )
        .await
        .map_err(to_cli),
        _ => {
            let loaded = load(g)?;
            let mut project = loaded.project;
            cmd::run(
                &client,
                &ui,
                &mut project,
                name,
                &m.args.clone(),
                &FlagsOf(&m),
            )
            .await
            .map_err(to_cli)
        }
    }
}

/// `compose exec SERVICE CMD…`: berth's own `exec` on the service's container, with Compose's
/// defaults (stdin attached; a TTY unless `-T` or stdout is not a terminal).
async fn exec(
    ctx: &Ctx,
    g: &Matches,
    client: &berth_api::client::Client,
    m: Matches,
) -> CliResult<()> {
    let loaded = load(g)?;
    let project = loaded.project;
    let service = &m.args[0];
    if !project.services.contains_key(service) {
        return Err(CliError::msg(format!("no such service: {service}")));
    }
    let index: i64 = m.value("index").and_then(|v| v.parse().ok()).unwrap_or(1);
    let list = cmd::project_containers(client, &project.name, false, false)
        .await
        .map_err(to_cli)?;
    let c = list
        .iter()
        .find(|c| cmd::label(c, cmd::SERVICE_LABEL) == service && cmd::number(c) == index)
        .ok_or_else(|| CliError::msg(format!("service \"{service}\" is not running")))?;
    let mut args: Vec<String> = Vec::new();
    if m.flag("detach") {
        args.push("-d".into());
    } else {
        args.push("-i".into());
        if !m.flag("no-TTY") && super::term::is_tty(0) && super::term::is_tty(1) {
            args.push("-t".into());
        }
    }
    for e in m.list("env") {
        args.push("-e".into());
        args.push(e);
    }
    if m.flag("privileged") {
        args.push("--privileged".into());
    }
    for (flag, opt) in [("user", "-u"), ("workdir", "-w")] {
        if let Some(v) = m.value(flag) {
            args.push(opt.into());
            args.push(v.to_string());
        }
    }
    args.push(c.id.clone());
    args.extend(m.args[1..].iter().cloned());
    let spec = super::exec::spec("berth exec");
    let em = spec.parse(&args)?;
    super::exec::run(ctx, em).await
}

/// `compose run`: the one-off container is created by `berth_compose`, then started like
/// `berth start [-a [-i]]` (stdin, TTY, signals and the exit status as Compose's RunStart).
async fn run_cmd(
    ctx: &Ctx,
    g: &Matches,
    client: &berth_api::client::Client,
    ui: &Ui,
    m: Matches,
) -> CliResult<()> {
    if m.flag("build") && m.flag("no-build") {
        return Err(CliError::msg("--build and --no-build are incompatible"));
    }
    let mut project = load(g)?.project;
    // Compose allocates a TTY and keeps stdin open by default, unless stdin is no terminal
    // and neither -t, -T nor -i was given.
    let tty = if m.changed("tty") {
        m.flag("tty")
    } else if m.changed("no-TTY") {
        !m.flag("no-TTY")
    } else {
        m.changed("interactive") || super::term::is_tty(0)
    };
    let interactive = !m.changed("interactive") || m.flag("interactive");
    let p = cmd::run::prepare(
        client,
        ui,
        &mut project,
        &m.args,
        &FlagsOf(&m),
        tty,
        interactive,
    )
    .await
    .map_err(to_cli)?;
    let mut args: Vec<String> = Vec::new();
    if !p.detach {
        args.push("-a".into());
        if p.interactive {
            args.push("-i".into());
        }
    }
    args.push(p.id);
    let spec = super::run::start_spec("berth start");
    let sm = spec.parse(&args)?;
    super::run::start(ctx, sm).await
}

/// `compose push`: the images of services that have both `build` and `image` (and their
/// `build.tags`), with the credentials `berth login` stored, as Compose v2 pushes them.
async fn push_cmd(
    ctx: &Ctx,
    g: &Matches,
    client: &berth_api::client::Client,
    m: Matches,
) -> CliResult<()> {
    let project = load(g)?.project;
    let services = cmd::select(&project, &m.args).map_err(to_cli)?;
    let cfg = ctx.config()?;
    let quiet = m.flag("quiet");
    let ignore = m.flag("ignore-push-failures");
    let mut first_err: Option<CliError> = None;
    for s in services {
        let Some(b) = s.build.as_ref().filter(|_| !s.image.is_empty()) else {
            if !quiet {
                super::eprintln_err(&format!(" {} Skipped", s.name));
            }
            continue;
        };
        let mut tags = vec![s.image.clone()];
        tags.extend(b.tags.iter().cloned());
        for tag in tags {
            if !quiet {
                super::eprintln_err(&format!(" {tag} Pushing"));
            }
            let r = berth_image::reference::Reference::parse_normalized(&tag)
                .map_err(|e| CliError::msg(e.to_string()))?;
            let r = if r.tag().is_none() && r.digest().is_none() {
                r.with_default_tag()
            } else {
                r
            };
            let auth = cfg
                .get_auth(&super::auth::auth_key_for_domain(r.domain()))
                .map_err(|e| CliError::msg(e.to_string()))?;
            let result = match client.image_push(&r.familiar_name(), r.tag(), &auth).await {
                Ok(stream) => {
                    super::progress::display(stream, super::progress::Out::Discard, |_| {})
                        .await
                        .and_then(|r| r.map_err(CliError::from))
                }
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => {
                    if !quiet {
                        super::eprintln_err(&format!(" {tag} Pushed"));
                    }
                }
                Err(e) if ignore => {
                    super::eprintln_err(&format!(" {tag} {e}"));
                }
                Err(e) => {
                    super::eprintln_err(&format!(" {tag} Error {e}"));
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The parsed flags, as `berth_compose::cmd` reads them.
struct FlagsOf<'a>(&'a Matches);

impl cmd::Flags for FlagsOf<'_> {
    fn value(&self, name: &str) -> Option<String> {
        self.0.string(name)
    }
    fn list(&self, name: &str) -> Vec<String> {
        self.0.list(name)
    }
    fn flag(&self, name: &str) -> bool {
        self.0.flag(name)
    }
}

fn config(g: &Matches, m: Matches) -> CliResult<()> {
    let mut lo = load_options(g);
    lo.no_interpolate = m.flag("no-interpolate");
    lo.skip_env_resolution = m.changed("hash");
    let loaded = berth_compose::load(&lo).map_err(|e| CliError::msg(e.to_string()))?;
    for w in &loaded.warnings {
        super::eprintln_err(&format!("WARN[0000] {w}"));
    }
    let mut project = loaded.project;
    if !m.args.is_empty() {
        berth_compose::loader::enable_services(&mut project, &m.args)
            .map_err(|e| CliError::msg(e.to_string()))?;
        let keep: std::collections::BTreeSet<String> = {
            let mut k = std::collections::BTreeSet::new();
            let mut q: Vec<String> = m.args.clone();
            while let Some(n) = q.pop() {
                if k.insert(n.clone()) {
                    if let Some(s) = project.services.get(&n) {
                        q.extend(s.dependencies().map(str::to_string));
                    }
                }
            }
            k
        };
        project.services.retain(|n, _| keep.contains(n));
    }
    if m.flag("quiet") {
        return Ok(());
    }
    let out = if m.flag("services") {
        lines(project.services.keys())
    } else if m.flag("volumes") {
        lines(project.volumes.keys())
    } else if m.flag("networks") {
        lines(project.networks.keys())
    } else if m.flag("profiles") {
        let mut p: std::collections::BTreeSet<&String> = std::collections::BTreeSet::new();
        for s in project.services.values().chain(project.disabled.values()) {
            p.extend(s.profiles.iter());
        }
        lines(p.into_iter())
    } else if m.flag("images") {
        lines(
            project
                .services
                .values()
                .map(|s| cmd::image_name(&project.name, s)),
        )
    } else if let Some(h) = m.value("hash") {
        let mut out = String::new();
        for (n, s) in &project.services {
            if h == "*" || h.split(',').any(|x| x == n) {
                out.push_str(&format!("{n} {}\n", berth_compose::service_hash(s)));
            }
        }
        out
    } else if m.value("format") == Some("json") {
        let mut v = serde_json::to_value(&project).map_err(|e| CliError::msg(e.to_string()))?;
        if let Some(services) = v.get_mut("services").and_then(|s| s.as_object_mut()) {
            for s in services.values_mut() {
                if let Some(o) = s.as_object_mut() {
                    o.retain(|k, v| !((k == "command" || k == "entrypoint") && v.is_null()));
                }
            }
        }
        let mut s = serde_json::to_string_pretty(&v).map_err(|e| CliError::msg(e.to_string()))?;
        s.push('\n');
        s
    } else {
        berth_compose::config_yaml(&project)
    };
    match m.value("output") {
        Some(path) => std::fs::write(path, out)
            .map_err(|e| CliError::msg(format!("cannot write {path}: {e}"))),
        None => print_out(&out),
    }
}

fn lines<I: Iterator<Item = S>, S: AsRef<str>>(it: I) -> String {
    let mut s = String::new();
    for l in it {
        s.push_str(l.as_ref());
        s.push('\n');
    }
    s
}
