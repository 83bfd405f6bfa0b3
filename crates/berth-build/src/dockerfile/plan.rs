//! The stage graph: what each stage is built on and reads from, and which stages a target
//! needs (the rest are never built).

use std::collections::BTreeSet;

use super::ast::{Command, Dockerfile};
use super::error::Error;
use super::scope::GlobalScope;
use super::shell::{go_quote, NoVars};

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: an empty filesystem and config.
    Scratch,
    /// `FROM <earlier stage>`: that stage's result.
    Stage(usize),
    /// An image reference (after `ARG` expansion), to be looked up or pulled.
    Image(String),
}

/// Where a `COPY --from` or `RUN --mount from=` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An earlier stage's result.
    Stage(usize),
    /// An image reference.
    Image(String),
}

/// A read of another stage or an image by one instruction of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The instruction's index in [`super::Stage::instructions`].
    pub instruction: usize,
    /// What it reads.
    pub source: Source,
}

/// One stage of a [`BuildPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// The stage's index.
    pub index: usize,
    /// The base after expansion.
    pub base: Base,
    /// `--platform` after expansion.
    pub platform: Option<String>,
    /// Global args the `FROM` line used (its cache key depends on them).
    pub used_args: BTreeSet<String>,
    /// Reads of other stages and images, in instruction order.
    pub deps: Vec<Dependency>,
    /// Whether the target needs this stage (otherwise it is not built).
    pub needed: bool,
}

impl StagePlan {
    /// The stages this stage needs finished before it can run: its base and what it reads.
    pub fn stage_deps(&self) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        if let Base::Stage(i) = self.base {
            out.insert(i);
        }
        for d in &self.deps {
            if let Source::Stage(i) = d.source {
                out.insert(i);
            }
        }
        out
    }
}

/// The resolved stage graph of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The index of the stage whose result is the build's image.
    pub target: usize,
    /// One entry per stage of the Dockerfile, same order.
    pub stages: Vec<StagePlan>,
}

impl BuildPlan {
    /// The stages to build, in an order where every stage comes after those it needs (stages
    /// only read earlier stages, so this is file order).
    pub fn build_order(&self) -> Vec<usize> {
        self.stages
            .iter()
            .filter(|s| s.needed)
            .map(|s| s.index)
            .collect()
    }
}

/// Resolves `--target` (the last stage without one), every stage's base and dependencies, and
/// which stages the target needs.
pub fn plan(
    df: &Dockerfile,
    global: &GlobalScope,
    target: Option<&str>,
) -> Result<BuildPlan, Error> {
    let target = df.target_index(target)?;
    let mut stages = Vec::with_capacity(df.stages.len());
    for stage in &df.stages {
        let (base, platform) = global.expand_from(df, stage)?;
        let mut used_args = base.used.clone();
        if let Some(p) = &platform {
            used_args.extend(p.used.iter().cloned());
        }
        let lower = base.value.to_lowercase();
        let base_kind = match df.stages[..stage.index]
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            Some(s) => Base::Stage(s.index),
            None if base.value == "scratch" => Base::Scratch,
            None => Base::Image(base.value.clone()),
        };
        let mut deps = Vec::new();
        for (i, inst) in stage.instructions.iter().enumerate() {
            let at = |m: String| Error::at(&df.name, inst.location, m);
            match &inst.command {
                Command::Copy(c) => {
                    if let Some(from) = &c.from {
                        let source = resolve_source(df, stage.index, from).map_err(at)?;
                        deps.push(Dependency {
                            instruction: i,
                            source,
                        });
                    }
                }
                Command::Run(r) => {
                    for m in &r.mounts {
                        if let Some(from) = m.from() {
                            let source = resolve_mount_source(df, stage.index, from).map_err(at)?;
                            deps.push(Dependency {
                                instruction: i,
                                source,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        stages.push(StagePlan {
            index: stage.index,
            base: base_kind,
            platform: platform.map(|p| p.value),
            used_args,
            deps,
            needed: false,
        });
    }
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut stages[i].needed, true) {
            continue;
        }
        todo.extend(stages[i].stage_deps());
    }
    Ok(BuildPlan { target, stages })
}

/// Resolves a `COPY --from=` value seen in stage `current`: an earlier stage by name
/// (case-insensitive) or index, else an image. Also for `COPY --from` in `ONBUILD` triggers.
pub fn resolve_source(df: &Dockerfile, current: usize, from: &str) -> Result<Source, String> {
    let lexed = df.lexer().expand_word(from, &NoVars).map(|e| e.value);
    if lexed.as_deref() != Ok(from) {
        return Err("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".into());
    }
    let here = df
        .stages
        .get(current)
        .map_or_else(|| format!("stage-{current}"), |s| s.display_name());
    let too_late = |name: &str| {
        format!(
            "cannot copy from stage {}, it needs to be defined before current stage {}",
            go_quote(name),
            go_quote(&here)
        )
    };
    if let Some(s) = df.stage_by_name(from) {
        if s.index < current {
            return Ok(Source::Stage(s.index));
        }
        return Err(too_late(from));
    }
    if let Some(index) = go_atoi(from) {
        if index < 0 || index as usize >= df.stages.len() {
            return Err(format!("invalid stage index {index}"));
        }
        if (index as usize) < current {
            return Ok(Source::Stage(index as usize));
        }
        return Err(too_late(from));
    }
    Ok(Source::Image(from.to_string()))
}

/// `RUN --mount from=`: an earlier stage by name, else an image (no indexes).
fn resolve_mount_source(df: &Dockerfile, current: usize, from: &str) -> Result<Source, String> {
    match df.stage_by_name(from) {
        Some(s) if s.index < current => Ok(Source::Stage(s.index)),
        Some(_) => Err(format!(
            "cannot mount from stage {}, stage needs to be defined before current command",
            go_quote(from)
        )),
        None => Ok(Source::Image(from.to_string())),
    }
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
