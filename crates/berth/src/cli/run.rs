//! `run`, `create`, `start` and `attach`: creating containers (with the pull fallback) and
//! attached sessions, following the Docker CLI 28's request order (attach before wait before
//! start, each on its own connection).

use std::io::Write;
use std::sync::Arc;

use berth_api::client::{Client, ClientError, PendingWait};
use berth_api::models::*;
use berth_api::{AttachOptions, WaitCondition};
use berth_image::reference::Reference;

use super::flags::{Flag, Matches, NArgs, Spec};
use super::opts::{self, ContainerOptions, PullPolicy};
use super::progress::{self, Out};
use super::stream::{self, Outcome, ResizeTarget, Session};
use super::{auth, term, CliError, CliResult, Ctx};

pub fn run_spec(path: &str) -> Spec {
    Spec::new(path, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "")
        .flags(opts::container_flags(false))
        .flags(vec![
            Flag::bool(
                "detach",
                "Run container in background and print container ID",
            )
            .short('d'),
            Flag::value(
                "detach-keys",
                "string",
                "Override the key sequence for detaching a container",
            ),
            Flag::bool("sig-proxy", "Proxy received signals to the process").default("true"),
        ])
        .not_interspersed()
        .nargs(NArgs::Min(1))
}

pub fn create_spec(path: &str) -> Spec {
    Spec::new(path, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "")
        .flags(opts::container_flags(true))
        .not_interspersed()
        .nargs(NArgs::Min(1))
}

pub fn start_spec(path: &str) -> Spec {
    super::spec(
        path,
        "[OPTIONS] CONTAINER [CONTAINER...]",
        NArgs::Min(1),
        vec![
            Flag::bool("attach", "Attach STDOUT/STDERR and forward signals").short('a'),
            Flag::value("checkpoint", "string", "Restore from this checkpoint").hidden(),
            Flag::value(
                "checkpoint-dir",
                "string",
                "Use a custom checkpoint storage directory",
            )
            .hidden(),
            Flag::value(
                "detach-keys",
                "string",
                "Override the key sequence for detaching a container",
            ),
            Flag::bool("interactive", "Attach container's STDIN").short('i'),
        ],
    )
}

pub fn attach_spec(path: &str) -> Spec {
    super::spec(
        path,
        "[OPTIONS] CONTAINER",
        NArgs::Exact(1),
        vec![
            Flag::value(
                "detach-keys",
                "string",
                "Override the key sequence for detaching a container",
            ),
            Flag::bool("no-stdin", "Do not attach STDIN"),
            Flag::bool("sig-proxy", "Proxy all received signals to the process").default("true"),
        ],
    )
}

/// Docker's `withHelp`: `berth: <err>\n\nRun 'berth run --help' for more information`.
fn with_help(path: &str, code: i32, msg: &str) -> CliError {
    CliError::new(
        code,
        format!("berth: {msg}\n\nRun '{path} --help' for more information"),
    )
}

/// Docker's `toStatusError` for `run`: 127 for a missing command, 126 for one that cannot be
/// executed, 125 for everything else.
pub fn to_status_error(path: &str, msg: &str) -> CliError {
    let code = if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    };
    with_help(path, code, msg)
}

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The detach keys: the flag, else `detachKeys` from the config file.
fn detach_keys(ctx: &Ctx, m: &Matches) -> Option<String> {
    m.string("detach-keys")
        .filter(|k| !k.is_empty())
        .or_else(|| ctx.config().ok().and_then(|c| c.detach_keys()))
}

/// The keys the client watches for; invalid keys fall back to the default, as in Docker.
fn client_detach_keys(keys: Option<&str>) -> Vec<u8> {
    match keys {
        None => stream::DEFAULT_DETACH_KEYS.to_vec(),
        Some(k) => opts::detach_key_bytes(k).unwrap_or_else(|e| {
            super::eprintln_err(&format!(
                "WARNING: invalid detach escape keys, using default: {e}"
            ));
            stream::DEFAULT_DETACH_KEYS.to_vec()
        }),
    }
}

/// Whether an image string names an image (and may be pulled), rather than an image ID.
fn image_name(image: &str) -> Result<Option<Reference>, String> {
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if hex(image) || image.strip_prefix("sha256:").is_some_and(hex) {
        return Ok(None);
    }
    Reference::parse_normalized(image)
        .map(|r| Some(r.with_default_tag()))
        .map_err(|e| e.to_string())
}

/// Pulls `image` (`POST /images/create`), rendering progress on `out`.
pub async fn pull_image(
    ctx: &Ctx,
    client: &Client,
    image: &Reference,
    platform: Option<&str>,
    out: Out,
) -> Result<(), String> {
    let cfg = ctx.config().map_err(|e| e.message)?;
    let auth = cfg
        .get_auth(&auth::auth_key_for_domain(image.domain()))
        .map_err(|e| e.to_string())?;
    let tag = match (image.digest(), image.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let stream = client
        .image_pull(&image.name(), Some(&tag), platform, &auth)
        .await
        .map_err(|e| e.to_string())?;
    match progress::display(stream, out, |_| {}).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.message),
        Err(e) => Err(e.message),
    }
}

fn remove_file_quietly(path: &str) {
    let _ = std::fs::remove_file(path);
}

/// Docker's `createContainer`: cidfile, optional pull, create, pull on "No such image" and
/// create again, warnings, write the cidfile. Errors are the plain messages.
async fn create_container(
    ctx: &Ctx,
    client: &Client,
    o: &ContainerOptions,
) -> Result<String, String> {
    let mut cidfile = match &o.cidfile {
        Some(p) => Some((p.clone(), opts::create_cidfile(p)?)),
        None => None,
    };
    let result = create_inner(ctx, client, o).await;
    match (&result, cidfile.as_mut()) {
        (Ok(id), Some((path, file))) => {
            if let Err(e) = file.write_all(id.as_bytes()) {
                remove_file_quietly(path);
                return Err(format!(
                    "failed to write the container ID ({id}) to file: {e}"
                ));
            }
        }
        (Err(_), Some((path, _))) => remove_file_quietly(path),
        _ => {}
    }
    result
}

async fn create_inner(ctx: &Ctx, client: &Client, o: &ContainerOptions) -> Result<String, String> {
    let named = image_name(&o.body.config.image)?;
    let progress_out = if o.quiet { Out::Discard } else { Out::Stderr };
    if o.pull == PullPolicy::Always {
        if let Some(r) = &named {
            pull_image(ctx, client, r, o.platform.as_deref(), progress_out).await?;
        }
    }
    let create = || client.container_create(o.name.as_deref(), o.platform.as_deref(), &o.body);
    let resp = match create().await {
        Ok(r) => r,
        Err(e) if is_missing_image(&e) && o.pull == PullPolicy::Missing && named.is_some() => {
            let r = named.as_ref().map(Reference::familiar).unwrap_or_default();
            if !o.quiet {
                super::eprintln_err(&format!("Unable to find image '{r}' locally"));
            }
            if let Some(r) = &named {
                pull_image(ctx, client, r, o.platform.as_deref(), progress_out).await?;
            }
            create().await.map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    for w in &resp.warnings {
        super::eprintln_err(&format!("WARNING: {w}"));
    }
    Ok(resp.id)
}

fn is_missing_image(e: &ClientError) -> bool {
    e.is_not_found()
        && e.daemon_message()
            .is_some_and(|m| m.contains("No such image"))
}

pub async fn create(ctx: &Ctx, spec: &Spec, m: Matches) -> CliResult<()> {
    let o = opts::parse(&m, &env_lookup, term::stdout_size())
        .map_err(|e| with_help(&spec.path, 125, &e))?;
    let client = ctx.client()?;
    let id = create_container(ctx, &client, &o)
        .await
        .map_err(CliError::msg)?;
    super::println_out(&id)
}

/// Waits for the wait response; Docker's `waitExitOrRemoved` reports failures as 125.
async fn wait_status(wait: Result<PendingWait, ClientError>) -> i32 {
    match wait {
        Ok(w) => match w.result().await {
            Ok(r) => match r.error {
                Some(e) if !e.message.is_empty() => {
                    super::eprintln_err(&format!("Error waiting for container: {}", e.message));
                    125
                }
                _ => r.status_code as i32,
            },
            Err(e) => {
                super::eprintln_err(&format!("error waiting for container: {e}"));
                125
            }
        },
        Err(e) => {
            super::eprintln_err(&format!("error waiting for container: {e}"));
            125
        }
    }
}

pub async fn run(ctx: &Ctx, spec: &Spec, m: Matches) -> CliResult<()> {
    let path = spec.path.clone();
    let detach = m.flag("detach");
    let mut o =
        opts::parse(&m, &env_lookup, term::stdout_size()).map_err(|e| with_help(&path, 125, &e))?;
    // The reference is checked before anything is sent, like the Docker CLI.
    image_name(&o.body.config.image).map_err(|e| to_status_error(&path, &e))?;
    let cfg = &o.body.config;
    if !detach {
        if cfg.tty && cfg.attach_stdin && !term::is_tty(0) {
            return Err(CliError::msg("the input device is not a TTY"));
        }
    } else {
        if m.changed("attach") {
            return Err(CliError::msg(
                "conflicting options: cannot specify both --attach and --detach",
            ));
        }
        opts::detach(&mut o.body);
    }
    let cfg = o.body.config.clone();
    let auto_remove = o.body.host_config.as_ref().is_some_and(|h| h.auto_remove);
    let client = Arc::new(ctx.client()?);
    let id = create_container(ctx, &client, &o)
        .await
        .map_err(|e| to_status_error(&path, &e))?;

    let sig_proxy = m.flag_or("sig-proxy", true);
    let _signals = sig_proxy.then(|| stream::proxy_signals(client.clone(), id.clone()));

    let attach = cfg.attach_stdin || cfg.attach_stdout || cfg.attach_stderr;
    let keys = detach_keys(ctx, &m);
    let session = if attach {
        let conn = client
            .container_attach(
                &id,
                &AttachOptions {
                    stream: true,
                    logs: false,
                    stdin: cfg.attach_stdin,
                    stdout: cfg.attach_stdout,
                    stderr: cfg.attach_stderr,
                    detach_keys: keys.clone(),
                },
            )
            .await?;
        Some(tokio::spawn(stream::run_session(Session {
            conn,
            tty: cfg.tty,
            stdin: cfg.attach_stdin,
            stdout: cfg.attach_stdout,
            stderr: cfg.attach_stderr,
            detach_keys: client_detach_keys(keys.as_deref()),
            restore_on_signal: !sig_proxy,
        })))
    } else {
        None
    };

    let condition = if auto_remove {
        WaitCondition::Removed
    } else {
        WaitCondition::NextExit
    };
    let wait = client.container_wait(&id, Some(condition)).await;

    if let Err(e) = client.container_start(&id).await {
        if let Some(s) = session {
            s.abort();
            let _ = s.await;
        }
        if auto_remove {
            let _ = wait_status(wait).await;
        }
        return Err(to_status_error(&path, &e.to_string()));
    }

    let Some(session) = session else {
        // Detached: print the ID; the pending wait is dropped, as the Docker CLI does.
        drop(wait);
        return super::println_out(&id);
    };

    let _resize = (cfg.tty && term::is_tty(1))
        .then(|| stream::monitor_tty_size(client.clone(), ResizeTarget::Container(id.clone())));

    let outcome = session
        .await
        .map_err(|e| CliError::msg(format!("the attach session failed: {e}")))??;
    if outcome == Outcome::Detached {
        return Ok(());
    }
    match wait_status(wait).await {
        0 => Ok(()),
        code => Err(CliError::silent(code)),
    }
}

pub async fn start(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = Arc::new(ctx.client()?);
    if m.changed("checkpoint") || m.changed("checkpoint-dir") {
        return Err(CliError::msg("checkpoints are not implemented by berth"));
    }
    if !(m.flag("attach") || m.flag("interactive")) {
        let mut failed = Vec::new();
        for c in &m.args {
            match client.container_start(c).await {
                Ok(_) => super::println_out(c)?,
                Err(e) => {
                    super::eprintln_err(&e.to_string());
                    failed.push(c.clone());
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        return Err(CliError::msg(format!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        )));
    }
    if m.args.len() > 1 {
        return Err(CliError::msg(
            "you cannot start and attach multiple containers at once",
        ));
    }
    let name = &m.args[0];
    let c = client.container_inspect(name, false).await?;
    let cfg = c.config.clone().unwrap_or_default();
    let auto_remove = c.host_config.as_ref().is_some_and(|h| h.auto_remove);
    let _signals = (!cfg.tty).then(|| stream::proxy_signals(client.clone(), c.id.clone()));
    let keys = detach_keys(ctx, &m);
    let stdin = m.flag("interactive") && cfg.open_stdin;
    let conn = client
        .container_attach(
            name,
            &AttachOptions {
                stream: true,
                logs: false,
                stdin,
                stdout: true,
                stderr: true,
                detach_keys: keys.clone(),
            },
        )
        .await?;
    let session = tokio::spawn(stream::run_session(Session {
        conn,
        tty: cfg.tty,
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: client_detach_keys(keys.as_deref()),
        restore_on_signal: cfg.tty,
    }));
    let condition = if auto_remove {
        WaitCondition::Removed
    } else {
        WaitCondition::NextExit
    };
    let wait = client.container_wait(&c.id, Some(condition)).await;
    if let Err(e) = client.container_start(name).await {
        session.abort();
        let _ = session.await;
        if auto_remove {
            let _ = wait_status(wait).await;
        }
        return Err(e.into());
    }
    let _resize = (cfg.tty && term::is_tty(1))
        .then(|| stream::monitor_tty_size(client.clone(), ResizeTarget::Container(c.id.clone())));
    let outcome = session
        .await
        .map_err(|e| CliError::msg(format!("the attach session failed: {e}")))??;
    if outcome == Outcome::Detached {
        return Ok(());
    }
    match wait_status(wait).await {
        0 => Ok(()),
        code => Err(CliError::silent(code)),
    }
}

/// Docker's `inspectContainerAndCheckState`.
async fn inspect_running(client: &Client, name: &str) -> CliResult<ContainerInspect> {
    let c = client.container_inspect(name, false).await?;
    let state = c.state.clone().unwrap_or_default();
    if !state.running {
        return Err(CliError::msg(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if state.paused {
        return Err(CliError::msg(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    if state.restarting {
        return Err(CliError::msg(
            "You cannot attach to a restarting container, wait until it is running",
        ));
    }
    Ok(c)
}

pub async fn attach(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = Arc::new(ctx.client()?);
    let name = m.args[0].clone();
    let wait = client.container_wait(&name, None).await;
    let c = inspect_running(&client, &name).await?;
    let cfg = c.config.clone().unwrap_or_default();
    let no_stdin = m.flag("no-stdin");
    if cfg.tty && !no_stdin && !term::is_tty(0) {
        return Err(CliError::msg("the input device is not a TTY"));
    }
    let keys = detach_keys(ctx, &m);
    let stdin = !no_stdin && cfg.open_stdin;
    let sig_proxy = m.flag_or("sig-proxy", true) && !cfg.tty;
    let _signals = sig_proxy.then(|| stream::proxy_signals(client.clone(), name.clone()));
    let conn = client
        .container_attach(
            &name,
            &AttachOptions {
                stream: true,
                logs: false,
                stdin,
                stdout: true,
                stderr: true,
                detach_keys: keys.clone(),
            },
        )
        .await?;
    inspect_running(&client, &name).await?;
    let _resize = if cfg.tty && term::is_tty(1) {
        // Docker nudges the size (+1) so that the prompt redraws on re-attach, then resets it.
        let (h, w) = term::stdout_size();
        let _ = client.container_resize(&name, h + 1, w + 1).await;
        Some(stream::monitor_tty_size(
            client.clone(),
            ResizeTarget::Container(name.clone()),
        ))
    } else {
        None
    };
    let outcome = stream::run_session(Session {
        conn,
        tty: cfg.tty,
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: client_detach_keys(keys.as_deref()),
        restore_on_signal: !sig_proxy,
    })
    .await?;
    if outcome == Outcome::Detached {
        return Err(CliError::msg("read escape sequence"));
    }
    match wait {
        Ok(w) => {
            let r = w.result().await?;
            if let Some(e) = r.error.filter(|e| !e.message.is_empty()) {
                return Err(CliError::msg(e.message));
            }
            match r.status_code {
                0 => Ok(()),
                code => Err(CliError::silent(code as i32)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors() {
        let e = to_status_error(
            "berth run",
            "Error response from daemon: failed to create shim task: exec: \"/nonexistent-binary\": stat /nonexistent-binary: no such file or directory: unknown",
        );
        assert_eq!(e.code, 127);
        assert!(e
            .message
            .starts_with("berth: Error response from daemon: failed to create shim task"));
        assert!(e
            .message
            .ends_with("\n\nRun 'berth run --help' for more information"));
        assert_eq!(
            to_status_error("berth run", "exec: \"/etc\": permission denied").code,
            126
        );
        assert_eq!(
            to_status_error("berth run", "Conflict. The container name").code,
            125
        );
        assert_eq!(
            to_status_error("berth run", "invalid reference format: repository name (library/BusyBox) must be lowercase").message,
            "berth: invalid reference format: repository name (library/BusyBox) must be lowercase\n\nRun 'berth run --help' for more information"
        );
    }

    #[test]
    fn image_names() {
        assert_eq!(
            image_name("busybox").unwrap().unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            image_name("nosuchimage-tr:1.0")
                .unwrap()
                .unwrap()
                .to_string(),
            "docker.io/library/nosuchimage-tr:1.0"
        );
        assert!(image_name(&"a".repeat(64)).unwrap().is_none());
        assert_eq!(
            image_name("BusyBox:UPPER").unwrap_err(),
            "invalid reference format: repository name (library/BusyBox) must be lowercase"
        );
    }
}
