//! The Dockerfile front end of the executor: parses the file once (every syntax error before
//! anything is built), resolves the stage graph with the global `ARG`s, and expands each
//! stage's instructions into [`Step`]s once its base image's `Env` is known — `ONBUILD`
//! triggers of the base first, `--label`s of the build as a last `LABEL` of the target, as
//! Docker's classic builder does.

use std::collections::BTreeMap;

use crate::builder::{Frontend, StageInfo};
use crate::dockerfile::{
    self, Base, Command, Dockerfile, GlobalScope, Instruction, MountType, PlatformArgs, Source,
    StageScope,
};
use crate::error::{BuildError, Result};
use crate::step::{CmdLine, CopyOp, InlineFile, Op, RunMount, RunNetwork, Step};

/// A parsed Dockerfile with the build's arguments.
pub struct DockerfileFrontend {
    df: Dockerfile,
    global: GlobalScope,
    plan: dockerfile::BuildPlan,
    build_args: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

/// Docker's classic text for a parse error, naming the file when it is not the default one.
fn parse_error(e: &dockerfile::Error) -> BuildError {
    let line = e.line().unwrap_or(0);
    let file = e.file();
    if file == "Dockerfile" || file.is_empty() {
        BuildError::InvalidInput(format!(
            "dockerfile parse error line {line}: {}",
            e.message()
        ))
    } else {
        BuildError::InvalidInput(format!(
            "dockerfile parse error line {line} of {file}: {}",
            e.message()
        ))
    }
}

impl DockerfileFrontend {
    /// Parses `source` (called `name` in errors) for a build with these build args (an arg
    /// given without a value takes the daemon's environment variable of that name, as
    /// Docker's does only for the CLI; here it is left out), target and labels.
    pub fn new(
        source: &[u8],
        name: &str,
        build_args: &BTreeMap<String, Option<String>>,
        target: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<DockerfileFrontend> {
        let text = String::from_utf8_lossy(source);
        let df = dockerfile::parse(&text, name).map_err(|e| parse_error(&e))?;
        let args: BTreeMap<String, String> = build_args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let global = GlobalScope::new(&df, &args, &PlatformArgs::host(), target)
            .map_err(|e| parse_error(&e))?;
        let plan = dockerfile::plan(&df, &global, target).map_err(|e| {
            let m = e.message();
            if m.contains("could not be found") || e.line().is_none() {
                BuildError::InvalidInput(m.to_string())
            } else {
                parse_error(&e)
            }
        })?;
        Ok(DockerfileFrontend {
            df,
            global,
            plan,
            build_args: args,
            labels: labels.clone(),
        })
    }

    fn base_ref(b: &Base) -> String {
        match b {
            Base::Scratch => "scratch".into(),
            Base::Stage(i) => i.to_string(),
            Base::Image(r) => r.clone(),
        }
    }

    fn label_step(&self) -> Option<Step> {
        if self.labels.is_empty() {
            return None;
        }
        let pairs: Vec<(String, String)> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let text = format!(
            "LABEL {}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}='{v}'", crate::builder::go_quote(k)))
                .collect::<Vec<_>>()
                .join(" ")
        );
        Some(Step {
            text,
            line: 0,
            op: Op::Label(pairs),
        })
    }

    fn step_of(
        &self,
        inst: &Instruction,
        scope: &mut StageScope,
        lexer: &dockerfile::Lexer,
    ) -> Result<Step> {
        let err = |e: dockerfile::Error| BuildError::Step(e.to_string());
        let text = inst.original.clone();
        let line = inst.location.start;
        if let Command::Arg(decls) = &inst.command {
            let vals = scope
                .declare(decls, lexer)
                .map_err(|e| BuildError::Step(e.to_string()))?;
            return Ok(Step {
                text,
                line,
                op: Op::Arg(vals.into_iter().map(|v| (v.key, v.default)).collect()),
            });
        }
        let expanded = inst
            .expand(lexer, scope)
            .map_err(|e| err(e.in_file(&self.df.name)))?;
        let op = match expanded.value.command {
            Command::Env(kvs) => {
                let mut pairs = Vec::new();
                for kv in kvs {
                    scope.set_env(&kv.key, &kv.value);
                    pairs.push((kv.key, kv.value));
                }
                Op::Env(pairs)
            }
            Command::Label(kvs) => {
                Op::Label(kvs.into_iter().map(|kv| (kv.key, kv.value)).collect())
            }
            Command::Maintainer(m) => Op::Maintainer(m),
            Command::Expose(p) => Op::Expose(p),
            Command::Volume(v) => Op::Volume(v),
            Command::Workdir(w) => Op::Workdir(w),
            Command::User(u) => Op::User(u),
            Command::Shell(s) => Op::Shell(s),
            Command::StopSignal(s) => Op::StopSignal(s),
            Command::Onbuild(o) => Op::Onbuild(o.trigger),
            Command::Cmd(c) => Op::Cmd(cmd_line(c)),
            Command::Entrypoint(c) => Op::Entrypoint(cmd_line(c)),
            Command::Healthcheck(h) => Op::Healthcheck(berth_image::config::Healthcheck {
                test: h.test,
                interval: h.interval,
                timeout: h.timeout,
                start_period: h.start_period,
                start_interval: h.start_interval,
                retries: h.retries,
            }),
            Command::Run(r) => {
                let mut mounts = Vec::new();
                for spec in &r.mounts {
                    let m = spec
                        .resolve()
                        .map_err(|e| BuildError::Step(format!("{}:{line}: {e}", self.df.name)))?;
                    mounts.push(run_mount(m)?);
                }
                Op::Run {
                    cmd: cmd_line(r.command),
                    heredocs: r
                        .heredocs
                        .iter()
                        .map(|h| (h.name.clone(), h.body()))
                        .collect(),
                    mounts,
                    network: match r.network {
                        dockerfile::NetworkMode::Default => RunNetwork::Default,
                        dockerfile::NetworkMode::None => RunNetwork::None,
                        dockerfile::NetworkMode::Host => RunNetwork::Host,
                    },
                    build_args: scope.run_env(),
                    build_args_in_key: scope.history_args(),
                }
            }
            Command::Copy(c) => Op::Copy(CopyOp {
                add: false,
                sources: c.sources,
                inline: inline(c.inline),
                dest: c.dest,
                from: c.from,
                chown: c.chown,
                chmod: c.chmod,
                link: c.link,
                parents: c.parents,
                excludes: c.excludes,
                checksum: None,
                keep_git_dir: None,
            }),
            Command::Add(a) => Op::Copy(CopyOp {
                add: true,
                sources: a.sources,
                inline: inline(a.inline),
                dest: a.dest,
                from: None,
                chown: a.chown,
                chmod: a.chmod,
                link: a.link,
                parents: false,
                excludes: a.excludes,
                checksum: a.checksum,
                keep_git_dir: a.keep_git_dir,
            }),
            Command::Arg(_) => unreachable!("handled above"),
        };
        Ok(Step { text, line, op })
    }
}

fn inline(v: Vec<dockerfile::InlineFile>) -> Vec<InlineFile> {
    v.into_iter()
        .map(|f| InlineFile {
            name: f.name,
            data: f.data,
        })
        .collect()
}

fn cmd_line(c: dockerfile::CommandLine) -> CmdLine {
    match c {
        dockerfile::CommandLine::Exec(v) => CmdLine::Exec(v),
        dockerfile::CommandLine::Shell(s) => CmdLine::Shell(s),
    }
}

fn run_mount(m: dockerfile::Mount) -> Result<RunMount> {
    let target = m.target.clone().unwrap_or_default();
    Ok(match m.kind {
        MountType::Bind => RunMount::Bind {
            target,
            source: m.source.clone().unwrap_or_else(|| "/".into()),
            from: m.from.clone(),
            readwrite: !m.read_only,
        },
        MountType::Cache => RunMount::Cache {
            id: m.cache_id().unwrap_or_default(),
            target,
            readonly: m.read_only,
            uid: m.uid.unwrap_or(0),
            gid: m.gid.unwrap_or(0),
            mode: m.mode.unwrap_or(0o755),
        },
        MountType::Tmpfs => RunMount::Tmpfs {
            target,
            size: m.size_limit.map(|s| s.max(0) as u64),
        },
        MountType::Secret => {
            let id =
                m.id.clone()
                    .or_else(|| {
                        m.target
                            .as_deref()
                            .and_then(|t| t.rsplit('/').next())
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
            RunMount::Secret {
                target: if target.is_empty() {
                    format!("/run/secrets/{id}")
                } else {
                    target
                },
                id,
                required: m.required,
                uid: m.uid.unwrap_or(0),
                gid: m.gid.unwrap_or(0),
                mode: m.mode.unwrap_or(0o400),
            }
        }
        MountType::Ssh => {
            return Err(BuildError::Step(
                "RUN --mount=type=ssh is not supported by berth (no SSH agent forwarding)".into(),
            ))
        }
    })
}

impl Frontend for DockerfileFrontend {
    fn stages(&self) -> Vec<StageInfo> {
        self.df
            .stages
            .iter()
            .zip(&self.plan.stages)
            .map(|(s, p)| StageInfo {
                name: s.name.clone(),
                base: Self::base_ref(&p.base),
                platform: p.platform.clone(),
                text: s.original.clone(),
                reads_from: p
                    .deps
                    .iter()
                    .map(|d| match &d.source {
                        Source::Stage(i) => i.to_string(),
                        Source::Image(r) => r.clone(),
                    })
                    .collect(),
                step_count: s.instructions.len()
                    + usize::from(s.index == self.plan.target && !self.labels.is_empty()),
            })
            .collect()
    }

    fn meta_args(&self) -> Vec<String> {
        self.df
            .meta_args
            .iter()
            .map(|i| i.original.clone())
            .collect()
    }

    fn expand(&self, index: usize, base_env: &[String], triggers: &[String]) -> Result<Vec<Step>> {
        let stage = &self.df.stages[index];
        let lexer = self.df.lexer();
        let mut scope = StageScope::new(&self.global, base_env.to_vec());
        let mut out = Vec::new();
        for t in triggers {
            let inst = dockerfile::parse_trigger(t, &self.df.name, stage.location)
                .map_err(|e| BuildError::Step(e.to_string()))?;
            out.push(self.step_of(&inst, &mut scope, &lexer)?);
        }
        for inst in &stage.instructions {
            out.push(self.step_of(inst, &mut scope, &lexer)?);
        }
        if index == self.plan.target {
            out.extend(self.label_step());
        }
        Ok(out)
    }

    fn unused_build_args(&self) -> Vec<String> {
        dockerfile::unused_build_args(&self.df, &self.build_args)
    }
}
