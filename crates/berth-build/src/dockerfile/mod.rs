//! The Dockerfile language, as BuildKit's Dockerfile frontend defines it: a pure module (no
//! I/O) that the executor drives.
//!
//! * [`parse`] turns the text into a [`Dockerfile`]: parser directives, [`Stage`]s with their
//!   [`Instruction`]s (each with its [`Location`] and original text), heredocs, typed flags.
//!   Errors name the file and line ([`Error`]).
//! * [`GlobalScope`] evaluates the `ARG`s before the first `FROM` with the build args and the
//!   automatic platform args; it expands `FROM` lines.
//! * [`plan`] resolves the target stage, each stage's base (image, `scratch` or an earlier
//!   stage) and what it depends on (`COPY --from`, `RUN --mount from=`), and which stages the
//!   target needs.
//! * [`StageScope`] follows a stage's variables (the image's `Env`, `ENV`, `ARG`) with
//!   Docker's precedence; [`Instruction::expand`] substitutes them into exactly the values
//!   Docker substitutes, and reports which variables it used (for the cache key).
//! * [`Lexer`] is Docker's shell-word lexer for anything else.
//!
//! A typical executor loop:
//!
//! ```
//! use std::collections::BTreeMap;
//! use berth_build::dockerfile::{self, Command, GlobalScope, PlatformArgs, StageScope};
//!
//! let df = dockerfile::parse("ARG V=1\nFROM busybox:$V\nENV A=x\nRUN echo $A\nCOPY a${A} /b/\n", "Dockerfile")?;
//! let global = GlobalScope::new(&df, &BTreeMap::new(), &PlatformArgs::host(), None)?;
//! let plan = dockerfile::plan(&df, &global, None)?;
//! let stage = &df.stages[plan.target];
//! assert_eq!(plan.stages[plan.target].base, dockerfile::Base::Image("busybox:1".into()));
//! let mut scope = StageScope::new(&global, Vec::new());
//! for inst in &stage.instructions {
//!     let expanded = inst.expand(&df.lexer(), &scope).map_err(|e| e.in_file(&df.name))?;
//!     match &expanded.value.command {
//!         Command::Env(pairs) => {
//!             for kv in pairs {
//!                 scope.set_env(&kv.key, &kv.value);
//!             }
//!         }
//!         Command::Copy(c) => assert_eq!(c.sources, ["ax"]),
//!         _ => {}
//!     }
//! }
//! # Ok::<(), dockerfile::Error>(())
//! ```

mod ast;
mod error;
mod expand;
mod instructions;
mod mount;
mod parser;
mod plan;
mod scope;
pub mod shell;
mod words;

pub use ast::*;
pub use error::Error;
pub use expand::InstructionError;
pub use mount::{CacheSharing, Mount, MountSpec, MountType};
pub use plan::{plan, resolve_source, Base, BuildPlan, Dependency, Source, StagePlan};
pub use scope::{
    is_builtin_proxy_arg, unused_build_args, ArgValue, GlobalScope, Platform, PlatformArgs,
    StageScope, BUILTIN_PROXY_ARGS,
};
pub use shell::{EnvList, ExpandError, Expanded, Lexer, NoVars, Vars};

use instructions::{type_node, Typed};

/// The escape character when no `# escape=` directive says otherwise.
pub const DEFAULT_ESCAPE: char = '\\';

/// Parses a Dockerfile. `name` is what errors call the file (e.g. `Dockerfile`).
///
/// Everything the parser can check without running the build is checked here, so a broken
/// Dockerfile fails before anything is built: unknown instructions (with Docker's "did you
/// mean"), argument counts, flags, unterminated heredocs, JSON arrays and quotes.
pub fn parse(source: &str, name: &str) -> Result<Dockerfile, Error> {
    let parsed = parser::parse_nodes(source, name)?;
    let mut warnings = parsed.warnings;
    for d in &parsed.directives {
        match d.name.as_str() {
            "syntax" => warnings.push(Warning {
                line: d.line,
                message: format!(
                    "the syntax directive ({}) is ignored: berth builds with its built-in Dockerfile frontend",
                    d.value
                ),
            }),
            "check" => warnings.push(Warning {
                line: d.line,
                message: format!(
                    "the check directive ({}) is ignored: berth runs no build checks",
                    d.value
                ),
            }),
            _ => {}
        }
    }
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &parsed.nodes {
        let typed = type_node(node).map_err(|m| Error::at(name, node.location, m))?;
        match typed {
            Typed::From(from) => {
                if let Some(n) = &from.name {
                    if stages.iter().any(|s| s.name.as_ref() == Some(n)) {
                        return Err(Error::at(
                            name,
                            node.location,
                            format!("{n} stage name already used"),
                        ));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: from.name,
                    base: from.base,
                    platform: from.platform,
                    location: node.location,
                    original: node.original.trim().to_string(),
                    comments: node.comments.clone(),
                    instructions: Vec::new(),
                });
            }
            Typed::Instruction(inst) => match stages.last_mut() {
                Some(stage) => stage.instructions.push(*inst),
                None if matches!(inst.command, Command::Arg(_)) => meta_args.push(*inst),
                None => {
                    return Err(Error::at(
                        name,
                        node.location,
                        "no build stage in current context",
                    ))
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(Error::new(
            name,
            None,
            "dockerfile contains no stages to build",
        ));
    }
    let df = Dockerfile {
        name: name.to_string(),
        escape: parsed.escape,
        directives: parsed.directives,
        warnings,
        meta_args,
        stages,
    };
    expand::check_syntax(&df)?;
    Ok(df)
}

/// Parses an `ONBUILD` trigger (an entry of a base image's `OnBuild` list, or
/// [`Onbuild::trigger`]) into the instruction it runs in the child build. Errors are reported
/// at `location` of `file`: the `FROM` line of the stage that inherited the trigger.
pub fn parse_trigger(trigger: &str, file: &str, location: Location) -> Result<Instruction, Error> {
    let relocate = |e: Error| Error::at(file, location, e.message().to_string());
    let parsed = parser::parse_nodes(trigger, file).map_err(relocate)?;
    if parsed.nodes.len() != 1 {
        return Err(Error::at(
            file,
            location,
            "onbuild trigger should be a single expression",
        ));
    }
    let node = &parsed.nodes[0];
    let lower = node.keyword.to_lowercase();
    if matches!(lower.as_str(), "onbuild" | "from" | "maintainer") {
        return Err(Error::at(
            file,
            location,
            format!(
                "{} isn't allowed as an ONBUILD trigger",
                node.keyword.to_uppercase()
            ),
        ));
    }
    match type_node(node) {
        Ok(Typed::Instruction(mut inst)) => {
            inst.location = location;
            Ok(*inst)
        }
        Ok(Typed::From(_)) => Err(Error::at(
            file,
            location,
            "FROM isn't allowed as an ONBUILD trigger",
        )),
        Err(m) => Err(Error::at(file, location, m)),
    }
}

impl Dockerfile {
    /// The lexer for this file's escape character.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// The stage called `name` (case-insensitive).
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    /// The index of the stage `--target` names, or of the last stage when there is no target.
    pub fn target_index(&self, target: Option<&str>) -> Result<usize, Error> {
        let Some(t) = target.filter(|t| !t.is_empty()) else {
            return Ok(self.stages.len() - 1);
        };
        match self.stage_by_name(t) {
            Some(s) => Ok(s.index),
            None => Err(Error::new(
                &self.name,
                None,
                error::with_suggestion(
                    format!("target stage {} could not be found", shell::go_quote(t)),
                    t,
                    self.stages.iter().filter_map(|s| s.name.as_deref()),
                    true,
                ),
            )),
        }
    }

    /// Every name an `ARG` declares anywhere in the file (before or after `FROM`).
    pub fn declared_args(&self) -> std::collections::BTreeSet<String> {
        let all = self
            .meta_args
            .iter()
            .chain(self.stages.iter().flat_map(|s| s.instructions.iter()));
        let mut out = std::collections::BTreeSet::new();
        for inst in all {
            if let Command::Arg(decls) = &inst.command {
                out.extend(decls.iter().map(|d| d.key.clone()));
            }
        }
        out
    }
}

impl Instruction {
    /// The canonical upper-case keyword (`RUN`, `COPY`, ...).
    pub fn name(&self) -> &'static str {
        match &self.command {
            Command::Add(_) => "ADD",
            Command::Arg(_) => "ARG",
            Command::Cmd(_) => "CMD",
            Command::Copy(_) => "COPY",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Env(_) => "ENV",
            Command::Expose(_) => "EXPOSE",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Label(_) => "LABEL",
            Command::Maintainer(_) => "MAINTAINER",
            Command::Onbuild(_) => "ONBUILD",
            Command::Run(_) => "RUN",
            Command::Shell(_) => "SHELL",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::User(_) => "USER",
            Command::Volume(_) => "VOLUME",
            Command::Workdir(_) => "WORKDIR",
        }
    }
}

#[cfg(test)]
mod tests;
