//! Docker's `ARG` scoping.
//!
//! * The **global scope** holds the automatic platform args (`BUILDPLATFORM`, `TARGETARCH`,
//!   ...) and the `ARG`s before the first `FROM`, with `--build-arg` overrides. It is what
//!   `FROM` lines expand with, and nothing else sees it directly.
//! * A **stage scope** starts with the base image's `Env` and no args. `ARG NAME` brings a
//!   global value into the stage; `ARG NAME=default` declares one (a `--build-arg` wins over
//!   the default). `ENV` values win over `ARG` values of the same name (Docker's documented
//!   rule). ARG values are visible to later instructions and to `RUN` processes, but are not
//!   committed to the image's `Env`.
//! * The predefined proxy args (`HTTP_PROXY`, `no_proxy`, ...) given as build args reach `RUN`
//!   without an `ARG`, and stay out of the image history unless declared.

use std::collections::{BTreeMap, BTreeSet};

use super::ast::{ArgDecl, Command, Dockerfile, Stage};
use super::error::Error;
use super::shell::{env_lookup, ExpandError, Expanded, Lexer, Vars};

/// The proxy variables usable as build args without an `ARG` instruction.
pub const BUILTIN_PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether `key` is one of [`BUILTIN_PROXY_ARGS`].
pub fn is_builtin_proxy_arg(key: &str) -> bool {
    BUILTIN_PROXY_ARGS.contains(&key)
}

/// A platform in OCI's terms (`linux`, `amd64`, `v7`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v7`, `v8`, or empty.
    pub variant: String,
}

impl Platform {
    /// This machine (Linux, the architecture berth was compiled for, in Go's names).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: String::new(),
        }
    }

    /// `os/arch[/variant]`.
    pub fn format(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.os, self.architecture)
        } else {
            format!("{}/{}/{}", self.os, self.architecture, self.variant)
        }
    }
}

/// The platforms behind the automatic `BUILD*` and `TARGET*` args.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlatformArgs {
    /// Where the build runs.
    pub build: Platform,
    /// What the build produces (`--platform`).
    pub target: Platform,
}

impl PlatformArgs {
    /// Building on and for this machine.
    pub fn host() -> Self {
        PlatformArgs {
            build: Platform::host(),
            target: Platform::host(),
        }
    }
}

/// The global scope: automatic platform args and the `ARG`s before the first `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalScope {
    lexer: Lexer,
    build_args: BTreeMap<String, String>,
    vars: BTreeMap<String, String>,
}

impl Vars for GlobalScope {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

impl GlobalScope {
    /// Evaluates the global scope of `df` for a build with these `--build-arg`s (a build arg
    /// given without a value must be left out by the caller, as Docker does), platforms and
    /// `--target` (which `TARGETSTAGE` reports).
    pub fn new(
        df: &Dockerfile,
        build_args: &BTreeMap<String, String>,
        platforms: &PlatformArgs,
        target: Option<&str>,
    ) -> Result<GlobalScope, Error> {
        let lexer = df.lexer();
        let target_name = match target.filter(|t| !t.is_empty()) {
            Some(t) => t.to_string(),
            None => df
                .stages
                .last()
                .and_then(|s| s.name.clone())
                .unwrap_or_else(|| "default".into()),
        };
        let b = &platforms.build;
        let t = &platforms.target;
        let mut vars = BTreeMap::new();
        for (k, v) in [
            ("BUILDPLATFORM", b.format()),
            ("BUILDOS", b.os.clone()),
            ("BUILDOSVERSION", String::new()),
            ("BUILDARCH", b.architecture.clone()),
            ("BUILDVARIANT", b.variant.clone()),
            ("TARGETPLATFORM", t.format()),
            ("TARGETOS", t.os.clone()),
            ("TARGETOSVERSION", String::new()),
            ("TARGETARCH", t.architecture.clone()),
            ("TARGETVARIANT", t.variant.clone()),
            ("TARGETSTAGE", target_name),
        ] {
            let v = build_args.get(k).cloned().unwrap_or(v);
            vars.insert(k.to_string(), v);
        }
        let mut scope = GlobalScope {
            lexer,
            build_args: build_args.clone(),
            vars,
        };
        for inst in &df.meta_args {
            let Command::Arg(decls) = &inst.command else {
                continue;
            };
            for d in decls {
                let value = match (build_args.get(&d.key), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(def)) => Some(
                        scope
                            .lexer
                            .expand_word(def, &scope)
                            .map_err(|e| Error::at(&df.name, inst.location, e.to_string()))?
                            .value,
                    ),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    scope.vars.insert(d.key.clone(), v);
                }
            }
        }
        Ok(scope)
    }

    /// The build args the scope was made with.
    pub fn build_args(&self) -> &BTreeMap<String, String> {
        &self.build_args
    }

    /// Expands a stage's `FROM` line: the base and the `--platform` value.
    #[allow(clippy::type_complexity)]
    pub fn expand_from(
        &self,
        df: &Dockerfile,
        stage: &Stage,
    ) -> Result<(Expanded<String>, Option<Expanded<String>>), Error> {
        let err = |m: String| Error::at(&df.name, stage.location, m);
        let base = self
            .lexer
            .expand_word(&stage.base, self)
            .map_err(|e| err(e.to_string()))?;
        if base.value.is_empty() {
            return Err(err(format!(
                "base name ({}) should not be blank",
                stage.base
            )));
        }
        let platform = match &stage.platform {
            None => None,
            Some(p) => {
                let e = self.lexer.expand_word(p, self).map_err(|e| {
                    err(format!("failed to process arguments for platform {p}: {e}"))
                })?;
                if e.value.is_empty() {
                    return Err(err(format!("empty platform value from expression {p}")));
                }
                Some(e)
            }
        };
        Ok((base, platform))
    }
}

/// How an `ARG` of a stage resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgValue {
    /// The name.
    pub key: String,
    /// The default after expansion (`None`: no default, or a build arg overrode it and it was
    /// not evaluated).
    pub default: Option<String>,
    /// The value the stage sees: the build arg, else the default, else the global value;
    /// `None` when the arg is declared without any value.
    pub value: Option<String>,
    /// Variables the default's expansion used.
    pub used: BTreeSet<String>,
}

/// The variables of one stage while its instructions run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageScope {
    build_args: BTreeMap<String, String>,
    global: BTreeMap<String, String>,
    env: Vec<String>,
    args: Vec<(String, Option<String>)>,
}

impl Vars for StageScope {
    fn get(&self, name: &str) -> Option<&str> {
        env_lookup(&self.env, name).or_else(|| self.arg(name))
    }
}

impl StageScope {
    /// A stage starting from an image whose config has this `Env` (`KEY=value` entries; add
    /// the default `PATH` first if the image has none, as Docker does). For `FROM <stage>`
    /// pass that stage's resulting `Env`: args do not carry over into another stage (an `ARG`
    /// goes out of scope at the end of its stage, as Docker documents).
    pub fn new(global: &GlobalScope, image_env: Vec<String>) -> Self {
        StageScope {
            build_args: global.build_args.clone(),
            global: global.vars.clone(),
            env: image_env,
            args: Vec::new(),
        }
    }

    /// The image config's `Env` as the stage has made it so far.
    pub fn env(&self) -> &[String] {
        &self.env
    }

    /// `ENV key=value`: replaces the first entry for `key` or appends one.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        let pos = self
            .env
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
        match pos {
            Some(i) => self.env[i] = entry,
            None => self.env.push(entry),
        }
    }

    /// The value of an `ARG` declared in this stage (ignoring `ENV`).
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether the stage declared `name` with `ARG`.
    pub fn is_declared(&self, name: &str) -> bool {
        self.args.iter().any(|(k, _)| k == name)
    }

    /// Applies an `ARG` instruction: each name gets the build arg, else its default expanded
    /// with the stage's variables so far, else the global value of that name.
    pub fn declare(
        &mut self,
        decls: &[ArgDecl],
        lexer: &Lexer,
    ) -> Result<Vec<ArgValue>, ExpandError> {
        let mut out = Vec::with_capacity(decls.len());
        for d in decls {
            let mut used = BTreeSet::new();
            let mut default = None;
            let value = if let Some(v) = self.build_args.get(&d.key) {
                Some(v.clone())
            } else if let Some(def) = &d.default {
                let e = lexer.expand_word(def, self)?;
                used = e.used;
                default = Some(e.value.clone());
                Some(e.value)
            } else {
                self.global.get(&d.key).cloned()
            };
            self.args.retain(|(k, _)| k != &d.key);
            self.args.push((d.key.clone(), value.clone()));
            out.push(ArgValue {
                key: d.key.clone(),
                default,
                value,
                used,
            });
        }
        Ok(out)
    }

    /// `KEY=value` entries a `RUN` process gets in addition to [`StageScope::env`]: the stage's
    /// args with a value that `ENV` does not shadow, then proxy build args not declared.
    pub fn run_env(&self) -> Vec<String> {
        let shadowed = |k: &str| env_lookup(&self.env, k).is_some();
        let mut out = Vec::new();
        for (k, v) in &self.args {
            if let Some(v) = v {
                if !shadowed(k) {
                    out.push(format!("{k}={v}"));
                }
            }
        }
        for (k, v) in &self.build_args {
            if is_builtin_proxy_arg(k) && !self.is_declared(k) && !shadowed(k) {
                out.push(format!("{k}={v}"));
            }
        }
        out
    }

    /// The args a `RUN` records in its history and cache key (Docker's `|N KEY=value ...`
    /// prefix): [`StageScope::run_env`] without undeclared proxy args, sorted.
    pub fn history_args(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .run_env()
            .into_iter()
            .filter(|e| {
                let k = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
                !is_builtin_proxy_arg(k) || self.is_declared(k)
            })
            .collect();
        out.sort();
        out
    }
}

/// Build args no `ARG` of the Dockerfile declares (proxy args excepted), sorted: Docker warns
/// `[Warning] One or more build-args [..] were not consumed`.
pub fn unused_build_args(df: &Dockerfile, build_args: &BTreeMap<String, String>) -> Vec<String> {
    let declared = df.declared_args();
    build_args
        .keys()
        .filter(|k| !declared.contains(*k) && !is_builtin_proxy_arg(k))
        .cloned()
        .collect()
}
