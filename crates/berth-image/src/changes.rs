//! Dockerfile-like `--change` instructions for `docker import` and `docker commit`
//! (Docker's `BuildFromConfig`): CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
//! STOPSIGNAL, USER, VOLUME, WORKDIR — JSON and shell forms, `ENV a=b c=d` and `ENV a b`,
//! quotes, backslash escapes and `$VAR` / `${VAR}` / `${VAR:-default}` / `${VAR:+alt}`
//! substitution from the config's environment.
//!
//! Each change is one line (a trailing `\` joins it with the next one, as in a Dockerfile).
//! Errors name the line and the instruction: `dockerfile parse error line 1: unknown
//! instruction: FROBNICATE`; Dockerfile instructions that commit/import do not allow give
//! Docker's `run is not a valid change command`.

use std::collections::BTreeMap;

use crate::config::{ContainerConfig, Healthcheck};

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangesError {
    #[error("dockerfile parse error line {line}: unknown instruction: {instruction}")]
    UnknownInstruction { line: usize, instruction: String },
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    #[error("dockerfile parse error line {line}: {message}")]
    Syntax { line: usize, message: String },
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdForm {
    Exec(Vec<String>),
    Shell(String),
}

/// One parsed instruction (values still unexpanded; expansion happens in [`apply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Cmd(CmdForm),
    Entrypoint(CmdForm),
    /// Raw (key, value) words, quotes still in place.
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    /// `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<Healthcheck>),
    OnBuild(String),
    StopSignal(String),
    User(String),
    Volume(Vec<String>),
    Workdir(String),
}

/// A parsed instruction with its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub line: usize,
    pub instruction: Instruction,
}

const DOCKERFILE_INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Parses `--change` values.
pub fn parse(changes: &[String]) -> Result<Vec<Change>, ChangesError> {
    let text = changes.join("\n");
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start_line = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches('\r');
        if pending.is_empty() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            start_line = line_no;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        out.push(Change {
            line: start_line,
            instruction: parse_line(full.trim(), start_line)?,
        });
    }
    if !pending.trim().is_empty() {
        out.push(Change {
            line: start_line,
            instruction: parse_line(pending.trim(), start_line)?,
        });
    }
    Ok(out)
}

fn syntax(line: usize, message: impl Into<String>) -> ChangesError {
    ChangesError::Syntax {
        line,
        message: message.into(),
    }
}

fn split_instruction(s: &str) -> (&str, &str) {
    match s.find(|c: char| c.is_whitespace()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

fn parse_line(s: &str, line: usize) -> Result<Instruction, ChangesError> {
    let (word, rest) = split_instruction(s);
    let lower = word.to_ascii_lowercase();
    let one = |what: &str| -> Result<String, ChangesError> {
        let words = split_words(rest).map_err(|m| syntax(line, m))?;
        if words.len() != 1 {
            return Err(syntax(
                line,
                format!("{what} requires exactly one argument"),
            ));
        }
        Ok(words[0].clone())
    };
    Ok(match lower.as_str() {
        "cmd" => Instruction::Cmd(cmd_form(rest)),
        "entrypoint" => Instruction::Entrypoint(cmd_form(rest)),
        "env" => Instruction::Env(name_vals("ENV", rest, line)?),
        "label" => Instruction::Label(name_vals("LABEL", rest, line)?),
        "expose" => {
            let words = split_words(rest).map_err(|m| syntax(line, m))?;
            if words.is_empty() {
                return Err(syntax(line, "EXPOSE requires at least one argument"));
            }
            Instruction::Expose(words)
        }
        "user" => Instruction::User(one("USER")?),
        "workdir" => Instruction::Workdir(one("WORKDIR")?),
        "stopsignal" => Instruction::StopSignal(one("STOPSIGNAL")?),
        "volume" => {
            let vols = match json_array(rest) {
                Some(v) => v,
                None => split_words(rest).map_err(|m| syntax(line, m))?,
            };
            if vols.is_empty() || vols.iter().any(|v| v.trim().is_empty()) {
                return Err(syntax(line, "VOLUME specified can not be an empty string"));
            }
            Instruction::Volume(vols)
        }
        "onbuild" => {
            if rest.is_empty() {
                return Err(syntax(line, "ONBUILD requires at least one argument"));
            }
            let (trigger, _) = split_instruction(rest);
            match trigger.to_ascii_lowercase().as_str() {
                "onbuild" => {
                    return Err(syntax(
                        line,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ))
                }
                "from" | "maintainer" => {
                    return Err(syntax(
                        line,
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            trigger.to_ascii_uppercase()
                        ),
                    ))
                }
                t if !DOCKERFILE_INSTRUCTIONS.contains(&t) => {
                    return Err(ChangesError::UnknownInstruction {
                        line,
                        instruction: trigger.to_ascii_uppercase(),
                    })
                }
                _ => {}
            }
            Instruction::OnBuild(rest.to_string())
        }
        "healthcheck" => Instruction::Healthcheck(healthcheck(rest, line)?),
        other if DOCKERFILE_INSTRUCTIONS.contains(&other) => {
            return Err(ChangesError::NotAllowed(other.to_string()))
        }
        _ => {
            return Err(ChangesError::UnknownInstruction {
                line,
                instruction: word.to_ascii_uppercase(),
            })
        }
    })
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

fn cmd_form(rest: &str) -> CmdForm {
    match json_array(rest) {
        Some(v) => CmdForm::Exec(v),
        None => CmdForm::Shell(rest.to_string()),
    }
}

/// Splits `ENV`/`LABEL` arguments into (key, value) pairs, quotes kept for later expansion.
fn name_vals(cmd: &str, rest: &str, line: usize) -> Result<Vec<(String, String)>, ChangesError> {
    if rest.is_empty() {
        return Err(syntax(
            line,
            format!("{cmd} requires at least one argument"),
        ));
    }
    let words = split_raw_words(rest).map_err(|m| syntax(line, m))?;
    if !words[0].contains('=') {
        // legacy form: KEY VALUE...
        let (key, value) = split_instruction(rest);
        if value.is_empty() {
            return Err(syntax(line, format!("{cmd} must have two arguments")));
        }
        return Ok(vec![(key.to_string(), value.to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(syntax(
                line,
                format!("Syntax error - can't find = in \"{w}\". Must be of the form: name=value"),
            ));
        };
        if k.is_empty() {
            return Err(syntax(line, format!("{cmd} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words.
fn split_raw_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (q, '\\') if q != Some('\'') => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err("unexpected end of statement while looking for matching quote".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Splits into words and removes quotes/escapes (no variable expansion).
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let env = BTreeMap::new();
    split_raw_words(s)?
        .iter()
        .map(|w| expand_word(w, &env))
        .collect()
}

/// Expands one word the way Docker's shell lexer does: quotes removed, backslash escapes,
/// `$VAR` substitution (not inside single quotes).
pub fn expand_word(w: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let chars: Vec<char> = w.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, '\'') | (None, '"') => {
                quote = Some(c);
                i += 1;
            }
            (Some(q), c) if c == q => {
                quote = None;
                i += 1;
            }
            (Some('\''), c) => {
                out.push(c);
                i += 1;
            }
            (q, '\\') => {
                if i + 1 < chars.len() {
                    let n = chars[i + 1];
                    if q == Some('"') && !matches!(n, '"' | '\\' | '$') {
                        out.push('\\');
                    }
                    out.push(n);
                    i += 2;
                } else {
                    out.push('\\');
                    i += 1;
                }
            }
            (_, '$') => {
                let (val, used) = expand_var(&chars[i + 1..], env)?;
                out.push_str(&val);
                i += 1 + used;
            }
            (_, c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    if quote.is_some() {
        return Err("unexpected end of statement while looking for matching quote".into());
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands the variable after a `$`; returns the value and how many chars were used.
fn expand_var(rest: &[char], env: &BTreeMap<String, String>) -> Result<(String, usize), String> {
    let get = |n: &str| env.get(n).cloned().unwrap_or_default();
    match rest.first() {
        Some('{') => {
            let Some(end) = rest.iter().position(|&c| c == '}') else {
                return Err("missing '}' in variable substitution".into());
            };
            let inner: String = rest[1..end].iter().collect();
            let name_len = inner.chars().take_while(|&c| is_name_char(c)).count();
            let name = &inner[..name_len];
            if name.is_empty() {
                return Err(format!("bad substitution: ${{{inner}}}"));
            }
            let modifier = &inner[name_len..];
            let val = if modifier.is_empty() {
                get(name)
            } else if let Some(def) = modifier.strip_prefix(":-") {
                match env.get(name) {
                    Some(v) if !v.is_empty() => v.clone(),
                    _ => expand_word(def, env)?,
                }
            } else if let Some(alt) = modifier.strip_prefix(":+") {
                match env.get(name) {
                    Some(v) if !v.is_empty() => expand_word(alt, env)?,
                    _ => String::new(),
                }
            } else {
                return Err(format!("unsupported modifier ({modifier}) in substitution"));
            };
            Ok((val, end + 1))
        }
        Some(c) if is_name_char(*c) => {
            let n = rest.iter().take_while(|&&c| is_name_char(c)).count();
            let name: String = rest[..n].iter().collect();
            Ok((get(&name), n))
        }
        _ => Ok(("$".into(), 0)),
    }
}

fn env_map(cfg: &ContainerConfig) -> BTreeMap<String, String> {
    cfg.env
        .iter()
        .flatten()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Go's `time.ParseDuration` for the units Docker accepts.
fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(total as i64)
}

fn healthcheck(rest: &str, line: usize) -> Result<Option<Healthcheck>, ChangesError> {
    let mut hc = Healthcheck::default();
    let mut s = rest;
    loop {
        let (w, r) = split_instruction(s);
        let Some(flag) = w.strip_prefix("--") else {
            break;
        };
        let (name, value) = flag
            .split_once('=')
            .ok_or_else(|| syntax(line, format!("flag --{flag} requires a value")))?;
        let dur = |v: &str| -> Result<i64, ChangesError> {
            let d = parse_duration(v)
                .ok_or_else(|| syntax(line, format!("time: invalid duration \"{v}\"")))?;
            if d != 0 && d < 1_000_000 {
                return Err(syntax(
                    line,
                    format!("Interval \"--{name}\" cannot be less than 1ms"),
                ));
            }
            Ok(d)
        };
        match name {
            "interval" => hc.interval = dur(value)?,
            "timeout" => hc.timeout = dur(value)?,
            "start-period" => hc.start_period = dur(value)?,
            "start-interval" => hc.start_interval = dur(value)?,
            "retries" => {
                hc.retries = value
                    .parse::<i64>()
                    .map_err(|_| syntax(line, format!("invalid retries value {value:?}")))?;
                if hc.retries < 0 {
                    return Err(syntax(line, "--retries cannot be negative"));
                }
            }
            other => return Err(syntax(line, format!("Unknown flag: {other}"))),
        }
        s = r;
    }
    let (kind, args) = split_instruction(s);
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !args.is_empty() {
                return Err(syntax(line, "HEALTHCHECK NONE takes no arguments"));
            }
            Ok(None)
        }
        "CMD" => {
            if args.is_empty() {
                return Err(syntax(line, "Missing command after HEALTHCHECK CMD"));
            }
            hc.test = match json_array(args) {
                Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
                None => vec!["CMD-SHELL".into(), args.to_string()],
            };
            Ok(Some(hc))
        }
        other => Err(syntax(
            line,
            format!("Unknown type \"{other}\" in HEALTHCHECK (try CMD)"),
        )),
    }
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if SIGNALS.contains(&name) {
        return true;
    }
    // RTMIN+n / RTMAX-n
    for (base, sep) in [("RTMIN", '+'), ("RTMAX", '-')] {
        if name == base {
            return true;
        }
        if let Some(n) = name
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix(sep))
            .and_then(|n| n.parse::<u32>().ok())
        {
            return n <= 30;
        }
    }
    false
}

/// `nat.ParsePortSpecs` for EXPOSE: `80`, `80/udp`, `8000-8010/tcp` → `80/tcp`, ….
fn expose_ports(spec: &str, line: usize) -> Result<Vec<String>, ChangesError> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(syntax(line, format!("invalid proto: {proto}")));
    }
    let parse = |p: &str| -> Result<u16, ChangesError> {
        p.parse::<u16>()
            .map_err(|_| syntax(line, format!("invalid containerPort: {spec}")))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(syntax(
            line,
            format!("invalid range specified for containerPort: {spec}"),
        ));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// Applies parsed changes to `cfg`, in order.
pub fn apply(cfg: &mut ContainerConfig, changes: &[Change]) -> Result<(), ChangesError> {
    let mut cmd_set = false;
    for ch in changes {
        let line = ch.line;
        let env = env_map(cfg);
        let ex = |w: &str| expand_word(w, &env).map_err(|m| syntax(line, m));
        let shell = |cfg: &ContainerConfig| {
            cfg.shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
        };
        match &ch.instruction {
            Instruction::Cmd(form) => {
                cfg.cmd = Some(match form {
                    CmdForm::Exec(v) => v.clone(),
                    CmdForm::Shell(s) => shell(cfg).into_iter().chain([s.clone()]).collect(),
                });
                cmd_set = true;
            }
            Instruction::Entrypoint(form) => {
                cfg.entrypoint = match form {
                    CmdForm::Exec(v) => Some(v.clone()),
                    CmdForm::Shell(s) if s.is_empty() => None,
                    CmdForm::Shell(s) => Some(shell(cfg).into_iter().chain([s.clone()]).collect()),
                };
                // Docker: ENTRYPOINT resets a CMD that was not set by these changes.
                if !cmd_set {
                    cfg.cmd = None;
                }
            }
            Instruction::Env(pairs) => {
                let mut vars = cfg.env.take().unwrap_or_default();
                for (k, v) in pairs {
                    let k = ex(k)?;
                    let v = ex(v)?;
                    let entry = format!("{k}={v}");
                    match vars
                        .iter_mut()
                        .find(|e| e.split_once('=').map(|(n, _)| n) == Some(k.as_str()) || *e == &k)
                    {
                        Some(e) => *e = entry,
                        None => vars.push(entry),
                    }
                }
                cfg.env = Some(vars);
            }
            Instruction::Label(pairs) => {
                let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs {
                    labels.insert(ex(k)?, ex(v)?);
                }
            }
            Instruction::Expose(words) => {
                let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                for w in words {
                    for p in expose_ports(&ex(w)?, line)? {
                        ports.insert(p, serde_json::json!({}));
                    }
                }
            }
            Instruction::Healthcheck(hc) => {
                cfg.healthcheck = Some(hc.clone().unwrap_or_else(|| Healthcheck {
                    test: vec!["NONE".into()],
                    ..Default::default()
                }));
            }
            Instruction::OnBuild(t) => cfg.on_build.get_or_insert_with(Vec::new).push(t.clone()),
            Instruction::StopSignal(s) => {
                let s = ex(s)?;
                if !valid_signal(&s) {
                    return Err(syntax(line, format!("Invalid signal: {s}")));
                }
                cfg.stop_signal = s;
            }
            Instruction::User(u) => cfg.user = ex(u)?,
            Instruction::Volume(vols) => {
                let v = cfg.volumes.get_or_insert_with(BTreeMap::new);
                for vol in vols {
                    let vol = ex(vol)?;
                    if vol.trim().is_empty() {
                        return Err(syntax(line, "VOLUME specified can not be an empty string"));
                    }
                    v.insert(vol, serde_json::json!({}));
                }
            }
            Instruction::Workdir(w) => {
                let w = ex(w)?;
                let joined = if w.starts_with('/') {
                    w
                } else {
                    let base = if cfg.working_dir.is_empty() {
                        "/".to_string()
                    } else {
                        cfg.working_dir.clone()
                    };
                    format!("{base}/{w}")
                };
                cfg.working_dir = clean_path(&joined);
            }
        }
    }
    Ok(())
}

/// Parses and applies in one step.
pub fn apply_changes(cfg: &mut ContainerConfig, changes: &[String]) -> Result<(), ChangesError> {
    let parsed = parse(changes)?;
    apply(cfg, &parsed)
}

/// Lexical path cleaning (Go's `path.Clean` for absolute paths).
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(changes: &[&str]) -> Result<ContainerConfig, ChangesError> {
        let mut cfg = ContainerConfig {
            env: Some(vec!["PATH=/usr/bin:/bin".into()]),
            ..Default::default()
        };
        let owned: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut cfg, &owned)?;
        Ok(cfg)
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let c = run(&[r#"CMD ["sh", "-c", "echo hi"]"#]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        let c = run(&["CMD echo $HOME"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo $HOME"]);
        let c = run(&["CMD [\"a\"]", "ENTRYPOINT [\"/init\"]"]).unwrap();
        assert_eq!(c.entrypoint.unwrap(), vec!["/init"]);
        assert_eq!(
            c.cmd.unwrap(),
            vec!["a"],
            "CMD from the same changes survives"
        );
        let mut cfg = ContainerConfig {
            cmd: Some(vec!["old".into()]),
            ..Default::default()
        };
        apply_changes(&mut cfg, &["ENTRYPOINT top -b".to_string()]).unwrap();
        assert_eq!(cfg.cmd, None, "ENTRYPOINT resets an inherited CMD");
        assert_eq!(cfg.entrypoint.unwrap(), vec!["/bin/sh", "-c", "top -b"]);
        // a broken JSON array is the shell form, as in Docker
        let c = run(&["CMD [\"a\""]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "[\"a\""]);
    }

    #[test]
    fn env_forms_quotes_and_substitution() {
        let c = run(&[
            "ENV a=b c=\"d e\" f='$x' g=\\$y",
            "ENV legacy  value with   spaces",
            "ENV PATH=$PATH:/opt/bin HOME=${HOME:-/root}",
            "ENV a=replaced",
        ])
        .unwrap();
        let env = c.env.unwrap();
        assert_eq!(
            env,
            vec![
                "PATH=/usr/bin:/bin:/opt/bin",
                "a=replaced",
                "c=d e",
                "f=$x",
                "g=$y",
                "legacy=value with   spaces",
                "HOME=/root",
            ]
        );
        assert_eq!(
            run(&["ENV onlykey"]).unwrap_err().to_string(),
            "dockerfile parse error line 1: ENV must have two arguments"
        );
        assert_eq!(
            run(&["ENV =x"]).unwrap_err().to_string(),
            "dockerfile parse error line 1: ENV names can not be blank"
        );
        assert!(run(&["ENV a=\"unterminated"]).is_err());
    }

    #[test]
    fn labels_expose_volume_user_workdir_stopsignal_onbuild() {
        let c = run(&[
            "LABEL maintainer=\"me <me@x>\" version=1",
            "EXPOSE 80 53/udp 8000-8002",
            "VOLUME [\"/data\", \"/logs\"]",
            "VOLUME /cache",
            "USER nobody",
            "WORKDIR /app",
            "WORKDIR sub/../src",
            "STOPSIGNAL SIGQUIT",
            "ONBUILD RUN echo built",
        ])
        .unwrap();
        let labels = c.labels.unwrap();
        assert_eq!(labels["maintainer"], "me <me@x>");
        assert_eq!(labels["version"], "1");
        let ports: Vec<_> = c.exposed_ports.unwrap().keys().cloned().collect();
        assert_eq!(
            ports,
            vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        let vols: Vec<_> = c.volumes.unwrap().keys().cloned().collect();
        assert_eq!(vols, vec!["/cache", "/data", "/logs"]);
        assert_eq!(c.user, "nobody");
        assert_eq!(c.working_dir, "/app/src");
        assert_eq!(c.stop_signal, "SIGQUIT");
        assert_eq!(c.on_build.unwrap(), vec!["RUN echo built"]);
    }

    #[test]
    fn healthcheck_forms() {
        let c =
            run(&["HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://x/"])
                .unwrap();
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://x/"]);
        assert_eq!(h.interval, 30_000_000_000);
        assert_eq!(h.timeout, 90_000_000_000);
        assert_eq!(h.retries, 3);
        let c = run(&["HEALTHCHECK CMD [\"true\"]"]).unwrap();
        assert_eq!(c.healthcheck.unwrap().test, vec!["CMD", "true"]);
        let c = run(&["HEALTHCHECK NONE"]).unwrap();
        assert_eq!(c.healthcheck.unwrap().test, vec!["NONE"]);
        assert!(run(&["HEALTHCHECK --interval=1us CMD x"]).is_err());
        assert!(run(&["HEALTHCHECK WAT x"])
            .unwrap_err()
            .to_string()
            .contains("Unknown type \"WAT\""));
    }

    #[test]
    fn errors_name_the_instruction() {
        assert_eq!(
            run(&["FROBNICATE x"]).unwrap_err().to_string(),
            "dockerfile parse error line 1: unknown instruction: FROBNICATE"
        );
        assert_eq!(
            run(&["ENV a=b", "frob"]).unwrap_err().to_string(),
            "dockerfile parse error line 2: unknown instruction: FROB"
        );
        assert_eq!(
            run(&["RUN echo hi"]).unwrap_err().to_string(),
            "run is not a valid change command"
        );
        assert_eq!(
            run(&["STOPSIGNAL SIGNOPE"]).unwrap_err().to_string(),
            "dockerfile parse error line 1: Invalid signal: SIGNOPE"
        );
        assert!(run(&["EXPOSE 99999"]).is_err());
        assert!(run(&["EXPOSE 80/xyz"]).is_err());
        assert!(run(&["USER a b"])
            .unwrap_err()
            .to_string()
            .contains("USER requires exactly one argument"));
        assert!(run(&["ONBUILD ONBUILD RUN x"]).is_err());
        assert!(run(&["ONBUILD FROM x"]).is_err());
        assert!(run(&["VOLUME"]).is_err());
    }

    #[test]
    fn comments_blank_lines_and_continuations() {
        let c = run(&["# comment", "", "ENV a=1 \\", "  b=2"]).unwrap();
        let env = c.env.unwrap();
        assert!(env.contains(&"a=1".to_string()) && env.contains(&"b=2".to_string()));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h2m3s"), Some(3_723_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration(""), None);
    }

    proptest! {
        #[test]
        fn parse_and_apply_never_panic(lines in proptest::collection::vec(".{0,60}", 0..5)) {
            let mut cfg = ContainerConfig::default();
            let _ = apply_changes(&mut cfg, &lines);
        }

        #[test]
        fn arbitrary_instruction_words_never_panic(
            word in prop_oneof![Just("ENV"), Just("LABEL"), Just("CMD"), Just("EXPOSE"), Just("HEALTHCHECK"), Just("WORKDIR"), Just("VOLUME"), Just("STOPSIGNAL"), Just("ONBUILD")],
            rest in "[ -~]{0,40}",
        ) {
            let mut cfg = ContainerConfig::default();
            let _ = apply_changes(&mut cfg, &[format!("{word} {rest}")]);
        }

        #[test]
        fn env_pairs_round_trip(k in "[A-Za-z_][A-Za-z0-9_]{0,10}", v in "[A-Za-z0-9/:._-]{0,20}") {
            let mut cfg = ContainerConfig::default();
            apply_changes(&mut cfg, &[format!("ENV {k}=\"{v}\"")]).unwrap();
            prop_assert_eq!(cfg.env.unwrap(), vec![format!("{k}={v}")]);
        }

        #[test]
        fn json_cmd_round_trips(args in proptest::collection::vec(".{0,12}", 1..5)) {
            let mut cfg = ContainerConfig::default();
            let json = serde_json::to_string(&args).unwrap();
            apply_changes(&mut cfg, &[format!("CMD {json}")]).unwrap();
            prop_assert_eq!(cfg.cmd.unwrap(), args);
        }
    }
}
