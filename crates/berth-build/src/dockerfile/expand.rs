//! Variable substitution applied exactly where Docker applies it.
//!
//! | instruction | expanded | how |
//! |---|---|---|
//! | ENV, LABEL | keys and values | one word each |
//! | ADD, COPY | sources, destination, `--chown`, `--chmod`, `--checksum`; heredoc bodies whose delimiter is unquoted | one word each (JSON elements too) |
//! | WORKDIR, USER, STOPSIGNAL | the argument | one word |
//! | VOLUME | each path | one word each |
//! | EXPOSE | each word | split into words after expansion (`EXPOSE $PORTS`) |
//! | RUN | the values of `--mount` fields | one word each |
//! | ARG | defaults | by [`super::StageScope::declare`] |
//! | FROM | base and `--platform` | by [`super::GlobalScope::expand_from`], global args only |
//! | RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER, `COPY --from` | nothing | — |

use std::collections::BTreeSet;

use super::ast::*;
use super::error::Error;
use super::mount::MountSpec;
use super::shell::{ExpandError, Expanded, Lexer, NoVars, Vars};

/// Expanding an instruction failed; the message is Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {}: {message}", location.start)]
pub struct InstructionError {
    /// The instruction's lines.
    pub location: Location,
    /// What went wrong.
    pub message: String,
}

impl InstructionError {
    /// The same error naming the Dockerfile.
    pub fn in_file(&self, file: &str) -> Error {
        Error::at(file, self.location, self.message.clone())
    }
}

struct Ctx<'a> {
    lexer: &'a Lexer,
    vars: &'a dyn Vars,
    used: BTreeSet<String>,
    unset: BTreeSet<String>,
}

impl Ctx<'_> {
    fn take<T>(&mut self, r: Result<Expanded<T>, ExpandError>) -> Result<T, String> {
        let e = r.map_err(|e| e.to_string())?;
        self.used.extend(e.used);
        self.unset.extend(e.unset);
        Ok(e.value)
    }

    fn word(&mut self, w: &str) -> Result<String, String> {
        let r = self.lexer.expand_word(w, self.vars);
        self.take(r)
    }

    fn opt(&mut self, w: &Option<String>) -> Result<Option<String>, String> {
        match w {
            None => Ok(None),
            Some(w) => Ok(Some(self.word(w)?).filter(|s| !s.is_empty())),
        }
    }

    fn list(&mut self, ws: &[String]) -> Result<Vec<String>, String> {
        ws.iter().map(|w| self.word(w)).collect()
    }

    fn inline(&mut self, files: &[InlineFile]) -> Result<Vec<InlineFile>, String> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let mut f = f.clone();
            if f.expand {
                let r = Lexer::expand_heredoc(&f.data, self.vars);
                f.data = self.take(r)?;
            }
            out.push(f);
        }
        Ok(out)
    }

    fn mounts(&mut self, mounts: &[MountSpec]) -> Result<Vec<MountSpec>, String> {
        let mut out = Vec::with_capacity(mounts.len());
        for m in mounts {
            let mut fields = Vec::with_capacity(m.fields.len());
            for (k, v) in &m.fields {
                let v = match v {
                    Some(v) => Some(self.word(v)?),
                    None => None,
                };
                fields.push((k.clone(), v));
            }
            let spec = MountSpec { fields };
            spec.resolve()?;
            out.push(spec);
        }
        Ok(out)
    }
}

impl Instruction {
    /// The instruction with `$variables` substituted where Docker substitutes them (see the
    /// module's table), quotes and escapes processed in those values, and the variables the
    /// expansion used. Values Docker does not expand are returned as they are. ARG is returned
    /// unchanged: apply it with [`super::StageScope::declare`].
    pub fn expand(
        &self,
        lexer: &Lexer,
        vars: &dyn Vars,
    ) -> Result<Expanded<Instruction>, InstructionError> {
        let mut cx = Ctx {
            lexer,
            vars,
            used: BTreeSet::new(),
            unset: BTreeSet::new(),
        };
        let command =
            expand_command(&self.command, &mut cx).map_err(|message| InstructionError {
                location: self.location,
                message,
            })?;
        Ok(Expanded {
            value: Instruction {
                command,
                ..self.clone()
            },
            used: cx.used,
            unset: cx.unset,
        })
    }
}

fn expand_command(c: &Command, cx: &mut Ctx<'_>) -> Result<Command, String> {
    Ok(match c {
        Command::Env(kvs) => Command::Env(expand_kvs(kvs, cx)?),
        Command::Label(kvs) => Command::Label(expand_kvs(kvs, cx)?),
        Command::Add(a) => Command::Add(Add {
            chown: cx.opt(&a.chown)?,
            chmod: cx.opt(&a.chmod)?,
            checksum: cx.opt(&a.checksum)?,
            sources: cx.list(&a.sources)?,
            dest: cx.word(&a.dest)?,
            inline: cx.inline(&a.inline)?,
            ..a.clone()
        }),
        Command::Copy(cp) => Command::Copy(Copy {
            chown: cx.opt(&cp.chown)?,
            chmod: cx.opt(&cp.chmod)?,
            sources: cx.list(&cp.sources)?,
            dest: cx.word(&cp.dest)?,
            inline: cx.inline(&cp.inline)?,
            ..cp.clone()
        }),
        Command::Workdir(w) => Command::Workdir(cx.word(w)?),
        Command::User(u) => Command::User(cx.word(u)?),
        Command::StopSignal(s) => Command::StopSignal(cx.word(s)?),
        Command::Volume(v) => Command::Volume(cx.list(v)?),
        Command::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                let r = cx.lexer.expand_words(p, cx.vars);
                out.extend(cx.take(r)?);
            }
            Command::Expose(out)
        }
        Command::Run(r) => Command::Run(Run {
            mounts: cx.mounts(&r.mounts)?,
            ..r.clone()
        }),
        other => other.clone(),
    })
}

fn expand_kvs(kvs: &[KeyValue], cx: &mut Ctx<'_>) -> Result<Vec<KeyValue>, String> {
    kvs.iter()
        .map(|kv| {
            Ok(KeyValue {
                key: cx.word(&kv.key)?,
                value: cx.word(&kv.value)?,
                legacy_form: kv.legacy_form,
            })
        })
        .collect()
}

/// Checks, without any variables, that every value Docker will expand lexes: quotes are
/// closed and `${...}` is well-formed. Unset variables are fine here.
pub(crate) fn check_syntax(df: &Dockerfile) -> Result<(), Error> {
    let lexer = df.lexer().with_skip_unset(true);
    let check = |w: &str, loc: Location| -> Result<(), Error> {
        lexer
            .expand_word(w, &NoVars)
            .map(|_| ())
            .map_err(|e| Error::at(&df.name, loc, e.to_string()))
    };
    let check_inst = |inst: &Instruction| -> Result<(), Error> {
        let loc = inst.location;
        if let Command::Arg(decls) = &inst.command {
            for d in decls {
                if let Some(def) = &d.default {
                    check(def, loc)?;
                }
            }
            return Ok(());
        }
        let mut cx = Ctx {
            lexer: &lexer,
            vars: &NoVars,
            used: BTreeSet::new(),
            unset: BTreeSet::new(),
        };
        let cmd = match &inst.command {
            // Mount fields are checked fully when their values are known.
            Command::Run(r) => {
                for m in &r.mounts {
                    for v in m.fields.iter().filter_map(|(_, v)| v.as_ref()) {
                        check(v, loc)?;
                    }
                }
                return Ok(());
            }
            // Heredoc bodies: skip (any text is a valid body).
            Command::Add(a) => Command::Add(Add {
                inline: Vec::new(),
                ..a.clone()
            }),
            Command::Copy(c) => Command::Copy(Copy {
                inline: Vec::new(),
                ..c.clone()
            }),
            c => c.clone(),
        };
        expand_command(&cmd, &mut cx)
            .map(|_| ())
            .map_err(|m| Error::at(&df.name, loc, m))
    };
    for inst in &df.meta_args {
        check_inst(inst)?;
    }
    for stage in &df.stages {
        check(&stage.base, stage.location)?;
        if let Some(p) = &stage.platform {
            check(p, stage.location)?;
        }
        for inst in &stage.instructions {
            check_inst(inst)?;
        }
    }
    Ok(())
}
