//! Typing the nodes (BuildKit's `frontend/dockerfile/instructions`): each instruction's flags,
//! argument counts and forms, with Docker's error messages.

use std::collections::BTreeMap;

use berth_api::gotime::parse_go_duration;

use super::ast::*;
use super::error::with_suggestion;
use super::mount::MountSpec;
use super::parser::{parse_heredoc, Node};
use super::shell::go_quote;

/// Every instruction keyword, upper-case (for "did you mean").
pub(crate) const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    Str,
    Strs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FlagValue {
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
}

/// Parsed builder flags (BuildKit's `BFlags`).
struct Flags {
    used: BTreeMap<&'static str, FlagValue>,
}

impl Flags {
    fn parse(raw: &[String], spec: &[(&'static str, FlagKind)]) -> Result<Flags, String> {
        let mut used: BTreeMap<&'static str, FlagValue> = BTreeMap::new();
        for a in raw {
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {a}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let flag_name = format!("--{name}");
            let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(with_suggestion(
                    format!("unknown flag: {flag_name}"),
                    name,
                    spec.iter().map(|(n, _)| *n),
                    true,
                ));
            };
            if used.contains_key(key) && kind != FlagKind::Strs {
                return Err(format!("duplicate flag specified: {flag_name}"));
            }
            let missing = || format!("missing a value on flag: {flag_name}");
            match kind {
                FlagKind::Bool => {
                    let b = match value {
                        Some("") => return Err(missing()),
                        None => true,
                        Some(v) => match v.to_lowercase().as_str() {
                            "true" => true,
                            "false" => false,
                            _ => {
                                return Err(format!(
                                    "expecting boolean value for flag {flag_name}, not: {v}"
                                ))
                            }
                        },
                    };
                    used.insert(key, FlagValue::Bool(b));
                }
                FlagKind::Str => {
                    let v = value.ok_or_else(missing)?;
                    used.insert(key, FlagValue::Str(v.to_string()));
                }
                FlagKind::Strs => {
                    let v = value.ok_or_else(missing)?;
                    match used.get_mut(key) {
                        Some(FlagValue::Strs(list)) => list.push(v.to_string()),
                        _ => {
                            used.insert(key, FlagValue::Strs(vec![v.to_string()]));
                        }
                    }
                }
            }
        }
        Ok(Flags { used })
    }

    fn bool(&self, name: &str) -> Option<bool> {
        match self.used.get(name) {
            Some(FlagValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.used.get(name) {
            Some(FlagValue::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A string flag; empty counts as not given (Docker treats `--chown=` like no flag).
    fn nonempty(&self, name: &str) -> Option<String> {
        self.string(name).filter(|s| !s.is_empty())
    }

    fn strings(&self, name: &str) -> Vec<String> {
        match self.used.get(name) {
            Some(FlagValue::Strs(v)) => v.clone(),
            _ => Vec::new(),
        }
    }
}

use FlagKind::{Bool, Str, Strs};

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

/// The result of typing a node: a stage start or an instruction.
pub(crate) enum Typed {
    From(FromLine),
    Instruction(Box<Instruction>),
}

pub(crate) struct FromLine {
    pub name: Option<String>,
    pub base: String,
    pub platform: Option<String>,
}

/// Docker's stage-name rule `^[a-z][a-z0-9-_.]*$` (after lower-casing).
fn valid_stage_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

pub(crate) fn type_node(node: &Node) -> Result<Typed, String> {
    let args = node_args(node);
    let json = node.json;
    let flags = &node.flags;
    let lower = node.keyword.to_lowercase();
    let command = match lower.as_str() {
        "from" => {
            let name = match args.len() {
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let name = args[2].to_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            go_quote(&args[2])
                        ));
                    }
                    Some(name)
                }
                1 => None,
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            let f = Flags::parse(flags, &[("platform", Str)])?;
            return Ok(Typed::From(FromLine {
                name,
                base: args[0].clone(),
                platform: f.nonempty("platform"),
            }));
        }
        "env" => {
            Flags::parse(flags, &[])?;
            Command::Env(key_values(&args, "ENV")?)
        }
        "label" => {
            Flags::parse(flags, &[])?;
            Command::Label(key_values(&args, "LABEL")?)
        }
        "maintainer" => {
            if args.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            Flags::parse(flags, &[])?;
            Command::Maintainer(args[0].clone())
        }
        "add" => {
            if args.len() < 2 {
                return Err(no_destination("ADD"));
            }
            let f = Flags::parse(
                flags,
                &[
                    ("chown", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("keep-git-dir", Bool),
                    ("checksum", Str),
                    ("unpack", Bool),
                    ("exclude", Strs),
                ],
            )?;
            let (sources, inline, dest) = sources_and_dest(&args, &node.heredocs, "ADD")?;
            Command::Add(Add {
                sources,
                inline,
                dest,
                chown: f.nonempty("chown"),
                chmod: f.nonempty("chmod"),
                link: f.bool("link").unwrap_or(false),
                keep_git_dir: f.bool("keep-git-dir"),
                checksum: f.nonempty("checksum"),
                unpack: f.bool("unpack"),
                excludes: f.strings("exclude"),
            })
        }
        "copy" => {
            if args.len() < 2 {
                return Err(no_destination("COPY"));
            }
            let f = Flags::parse(
                flags,
                &[
                    ("chown", Str),
                    ("from", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("exclude", Strs),
                    ("parents", Bool),
                ],
            )?;
            let (sources, inline, dest) = sources_and_dest(&args, &node.heredocs, "COPY")?;
            Command::Copy(Copy {
                sources,
                inline,
                dest,
                from: f.nonempty("from"),
                chown: f.nonempty("chown"),
                chmod: f.nonempty("chmod"),
                link: f.bool("link").unwrap_or(false),
                parents: f.bool("parents").unwrap_or(false),
                excludes: f.strings("exclude"),
            })
        }
        "onbuild" => {
            let Some(child) = node.child.as_deref() else {
                return Err(at_least_one("ONBUILD"));
            };
            Flags::parse(flags, &[])?;
            let keyword = child.keyword.trim().to_uppercase();
            match keyword.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{keyword} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            let mut trigger = strip_onbuild(&node.original).to_string();
            for doc in &node.heredocs {
                trigger.push('\n');
                trigger.push_str(&doc.content);
                trigger.push_str(&doc.name);
            }
            Command::Onbuild(Onbuild { trigger, keyword })
        }
        "workdir" => {
            if args.len() != 1 {
                return Err(exactly_one("WORKDIR"));
            }
            Flags::parse(flags, &[])?;
            Command::Workdir(args[0].clone())
        }
        "run" => {
            let f = Flags::parse(
                flags,
                &[("mount", Strs), ("network", Str), ("security", Str)],
            )?;
            let mounts = f
                .strings("mount")
                .iter()
                .map(|m| MountSpec::parse(m))
                .collect::<Result<Vec<_>, _>>()?;
            let network = match f.string("network").as_deref() {
                None | Some("default") => NetworkMode::Default,
                Some("none") => NetworkMode::None,
                Some("host") => NetworkMode::Host,
                Some(v) => return Err(format!("invalid network mode {}", go_quote(v))),
            };
            let security = match f.string("security").as_deref() {
                None | Some("sandbox") => Security::Sandbox,
                Some("insecure") => Security::Insecure,
                Some(v) => return Err(format!("security {} is not valid", go_quote(v))),
            };
            Command::Run(Run {
                command: command_line(&args, json),
                heredocs: node.heredocs.clone(),
                mounts,
                network,
                security,
            })
        }
        "cmd" => {
            Flags::parse(flags, &[])?;
            Command::Cmd(command_line(&args, json))
        }
        "entrypoint" => {
            Flags::parse(flags, &[])?;
            Command::Entrypoint(command_line(&args, json))
        }
        "healthcheck" => Command::Healthcheck(healthcheck(&args, json, flags)?),
        "expose" => {
            if args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            Flags::parse(flags, &[])?;
            Command::Expose(args)
        }
        "user" => {
            if args.len() != 1 {
                return Err(exactly_one("USER"));
            }
            Flags::parse(flags, &[])?;
            Command::User(args[0].clone())
        }
        "volume" => {
            if args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            Flags::parse(flags, &[])?;
            let mut vols = Vec::with_capacity(args.len());
            for v in &args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            Command::Volume(vols)
        }
        // Docker reads no flags for STOPSIGNAL and ARG (they are accepted and ignored).
        "stopsignal" => {
            if args.len() != 1 {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Command::StopSignal(args[0].clone())
        }
        "arg" => {
            if args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut decls = Vec::with_capacity(args.len());
            for a in &args {
                let decl = match a.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => ArgDecl {
                        key: k.to_string(),
                        default: Some(v.to_string()),
                    },
                    None => ArgDecl {
                        key: a.clone(),
                        default: None,
                    },
                };
                decls.push(decl);
            }
            Command::Arg(decls)
        }
        "shell" => {
            Flags::parse(flags, &[])?;
            if args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Command::Shell(args)
        }
        _ => {
            return Err(with_suggestion(
                format!("unknown instruction: {}", node.keyword),
                &node.keyword,
                INSTRUCTIONS,
                false,
            ))
        }
    };
    Ok(Typed::Instruction(Box::new(Instruction {
        keyword: node.keyword.clone(),
        location: node.location,
        original: node.original.trim().to_string(),
        flags: node.flags.clone(),
        comments: node.comments.clone(),
        command,
    })))
}

/// The arguments of a node; ONBUILD's are its instruction's keyword and arguments.
fn node_args(node: &Node) -> Vec<String> {
    match &node.child {
        Some(child) => {
            let mut v = vec![child.keyword.clone()];
            v.extend(child.args.iter().cloned());
            v
        }
        None => node.args.clone(),
    }
}

/// The original text without its leading `ONBUILD` keyword (case-insensitive).
fn strip_onbuild(original: &str) -> &str {
    let t = original.trim_start();
    match t.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => t[7..].trim_start(),
        _ => t,
    }
}

fn no_destination(cmd: &str) -> String {
    format!(
        "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
    )
}

type SourcesAndDest = (Vec<String>, Vec<InlineFile>, String);

fn sources_and_dest(
    args: &[String],
    heredocs: &[Heredoc],
    cmd: &str,
) -> Result<SourcesAndDest, String> {
    let (dest, srcs) = match args.split_last() {
        Some((d, s)) => (d.clone(), s),
        None => return Err(no_destination(cmd)),
    };
    if matches!(parse_heredoc(&dest), Ok(Some(_))) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(h)) => {
                let data = heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(Heredoc::body)
                    .unwrap_or_default();
                inline.push(InlineFile {
                    name: h.name,
                    data,
                    expand: h.expand,
                });
            }
            _ => sources.push(src.clone()),
        }
    }
    Ok((sources, inline, dest))
}

fn command_line(args: &[String], json: bool) -> CommandLine {
    if json {
        CommandLine::Exec(args.to_vec())
    } else {
        CommandLine::Shell(args.join(" "))
    }
}

fn key_values(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, String> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if !args.len().is_multiple_of(3) {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    let mut out = Vec::new();
    for t in args.chunks(3) {
        if t[0].is_empty() {
            return Err(format!("{cmd} names can not be blank"));
        }
        out.push(KeyValue {
            key: t[0].clone(),
            value: t[1].clone(),
            legacy_form: t[2].is_empty(),
        });
    }
    Ok(out)
}

fn healthcheck(args: &[String], json: bool, flags: &[String]) -> Result<HealthConfig, String> {
    let Some(first) = args.first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let typ = first.to_uppercase();
    let rest = &args[1..];
    let mut hc = HealthConfig {
        test: Vec::new(),
        interval: 0,
        timeout: 0,
        start_period: 0,
        start_interval: 0,
        retries: 0,
    };
    if typ == "NONE" {
        // Docker does not look at flags of HEALTHCHECK NONE.
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        hc.test = vec![typ];
        return Ok(hc);
    }
    let f = Flags::parse(
        flags,
        &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            go_quote(&typ)
        ));
    }
    let cmd: Vec<String> = if json {
        rest.to_vec()
    } else if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.join(" ")]
    };
    if cmd.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    hc.test = std::iter::once(if json { "CMD" } else { "CMD-SHELL" }.to_string())
        .chain(cmd)
        .collect();
    let interval = |name: &str| -> Result<i64, String> {
        let Some(v) = f.string(name).filter(|v| !v.is_empty()) else {
            return Ok(0);
        };
        let d = parse_go_duration(&v)?;
        if d == 0 {
            return Ok(0);
        }
        if d < 1_000_000 {
            return Err(format!(
                "Interval {} cannot be less than 1ms",
                go_quote(name)
            ));
        }
        Ok(d)
    };
    hc.interval = interval("interval")?;
    hc.timeout = interval("timeout")?;
    hc.start_period = interval("start-period")?;
    hc.start_interval = interval("start-interval")?;
    if let Some(r) = f.string("retries").filter(|v| !v.is_empty()) {
        let n: i64 = r
            .parse::<i32>()
            .map_err(|_| format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(&r)))?
            .into();
        if n < 0 {
            return Err(format!("--retries cannot be negative ({n})"));
        }
        hc.retries = n;
    }
    Ok(hc)
}
