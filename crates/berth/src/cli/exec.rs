//! `exec`: inspect, create the exec, start it attached (or detached), exit with its exit code.

use std::sync::Arc;

use berth_api::models::{ExecConfig, ExecStartConfig};

use super::flags::{Flag, Matches, NArgs, Spec};
use super::opts;
use super::stream::{self, Outcome, ResizeTarget, Session};
use super::{term, CliError, CliResult, Ctx};

pub fn spec(path: &str) -> Spec {
    Spec::new(path, "[OPTIONS] CONTAINER COMMAND [ARG...]", "")
        .flags(vec![
            Flag::bool("detach", "Detached mode: run command in the background").short('d'),
            Flag::value(
                "detach-keys",
                "string",
                "Override the key sequence for detaching a container",
            ),
            Flag::list("env", "list", "Set environment variables")
                .short('e')
                .check(super::flags::Check::Env),
            Flag::list(
                "env-file",
                "list",
                "Read in a file of environment variables",
            ),
            Flag::bool("interactive", "Keep STDIN open even if not attached").short('i'),
            Flag::bool("privileged", "Give extended privileges to the command"),
            Flag::bool("tty", "Allocate a pseudo-TTY").short('t'),
            Flag::value(
                "user",
                "string",
                "Username or UID (format: \"<name|uid>[:<group|gid>]\")",
            )
            .short('u'),
            Flag::value(
                "workdir",
                "string",
                "Working directory inside the container",
            )
            .short('w'),
        ])
        .not_interspersed()
        .nargs(NArgs::Min(2))
}

/// The exec body, as the Docker CLI 28 builds it (`parseExec`).
pub fn exec_config(
    m: &Matches,
    detach_keys: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ExecConfig, String> {
    let mut env_vars = Vec::new();
    for f in m.list("env-file") {
        let content = std::fs::read(&f).map_err(|e| opts::go_open_error(&f, &e))?;
        env_vars.extend(opts::parse_kv_file(&f, &content, Some(env))?);
    }
    for e in m.list("env") {
        env_vars.push(opts::validate_env(&e, env)?);
    }
    let detach = m.flag("detach");
    Ok(ExecConfig {
        user: m.string("user").unwrap_or_default(),
        privileged: m.flag("privileged"),
        tty: m.flag("tty"),
        console_size: None,
        attach_stdin: m.flag("interactive"),
        attach_stderr: !detach,
        attach_stdout: !detach,
        detach,
        detach_keys: detach_keys.unwrap_or_default(),
        env: (!env_vars.is_empty()).then_some(env_vars),
        working_dir: m.string("workdir").unwrap_or_default(),
        cmd: Some(m.args[1..].to_vec()),
    })
}

pub async fn run(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let keys = m
        .string("detach-keys")
        .filter(|k| !k.is_empty())
        .or_else(|| ctx.config().ok().and_then(|c| c.detach_keys()));
    let mut config =
        exec_config(&m, keys.clone(), &|k| std::env::var(k).ok()).map_err(CliError::msg)?;
    let client = Arc::new(ctx.client()?);
    let container = &m.args[0];
    // "Not found" takes precedence, and no exec is leaked when the TTY check fails.
    client.container_inspect(container, false).await?;
    if !config.detach && config.tty && config.attach_stdin && !term::is_tty(0) {
        return Err(CliError::msg("the input device is not a TTY"));
    }
    // ConsoleSize exists since API 1.42; older daemons get the size through resize only.
    let version = client.api_version().await?;
    let console = if config.tty && version.at_least(1, 42) {
        let (h, w) = term::stdout_size();
        Some([h as u64, w as u64])
    } else {
        None
    };
    config.console_size = console;
    let exec = client.exec_create(container, &config).await?;
    if exec.id.is_empty() {
        return Err(CliError::msg("exec ID empty"));
    }
    if config.detach {
        client.exec_start_detached(&exec.id, config.tty).await?;
        return Ok(());
    }
    let conn = client
        .exec_start(
            &exec.id,
            &ExecStartConfig {
                detach: false,
                tty: config.tty,
                console_size: console,
            },
        )
        .await?;
    let _resize = (config.tty && term::is_tty(0))
        .then(|| stream::monitor_tty_size(client.clone(), ResizeTarget::Exec(exec.id.clone())));
    let outcome = stream::run_session(Session {
        conn,
        tty: config.tty,
        stdin: config.attach_stdin,
        stdout: config.attach_stdout,
        stderr: config.attach_stderr,
        detach_keys: match keys.as_deref() {
            Some(k) => {
                opts::detach_key_bytes(k).unwrap_or_else(|_| stream::DEFAULT_DETACH_KEYS.to_vec())
            }
            None => stream::DEFAULT_DETACH_KEYS.to_vec(),
        },
        restore_on_signal: true,
    })
    .await?;
    if outcome == Outcome::Detached {
        return Err(CliError::msg("read escape sequence"));
    }
    match client.exec_inspect(&exec.id).await {
        Ok(i) => match i.exit_code.unwrap_or(0) {
            0 => Ok(()),
            code => Err(CliError::silent(code as i32)),
        },
        Err(berth_api::client::ClientError::Connect { .. }) => Err(CliError::silent(-1)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_body_matches_trace_04() {
        let s = spec("berth exec");
        let args: Vec<String> = ["web", "ps", "aux"].iter().map(|s| s.to_string()).collect();
        let m = s.parse_args(&args).unwrap();
        let c = exec_config(&m, None, &|_| None).unwrap();
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["ps","aux"]}"#
        );
        let args: Vec<String> = ["-it", "-e", "A=1", "-u", "0", "-w", "/tmp", "web", "sh"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = s.parse_args(&args).unwrap();
        let c = exec_config(&m, Some("ctrl-x".into()), &|_| None).unwrap();
        assert!(c.tty && c.attach_stdin);
        assert_eq!(c.env, Some(vec!["A=1".to_string()]));
        assert_eq!(
            (
                c.user.as_str(),
                c.working_dir.as_str(),
                c.detach_keys.as_str()
            ),
            ("0", "/tmp", "ctrl-x")
        );
        let args: Vec<String> = ["-d", "web", "sleep", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = exec_config(&s.parse_args(&args).unwrap(), None, &|_| None).unwrap();
        assert!(c.detach && !c.attach_stdout && !c.attach_stderr);
    }
}
