//! The typed Dockerfile: stages and their instructions.
//!
//! Values that Docker expands (paths of COPY/ADD, ENV and LABEL pairs, WORKDIR, USER, ...)
//! are kept **as written**, quotes and `$variables` included; [`Instruction::expand`] gives the
//! values the build uses. Values Docker never expands (the text of RUN/CMD/ENTRYPOINT, SHELL,
//! HEALTHCHECK, ONBUILD) are final as parsed.

use super::mount::MountSpec;

/// Lines of the Dockerfile (1-based, inclusive) an instruction or error covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    /// The first line.
    pub start: usize,
    /// The last line (continuations and heredoc bodies included).
    pub end: usize,
}

impl Location {
    /// A range of lines.
    pub fn new(start: usize, end: usize) -> Self {
        Location {
            start,
            end: end.max(start),
        }
    }
}

/// A parser directive from the top of the file (`# syntax=…`, `# escape=…`, `# check=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// Its line.
    pub line: usize,
}

/// Something Docker accepts but warns about (printed by the builder as `[WARNING]: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The line it is about.
    pub line: usize,
    /// The text.
    pub message: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The name given to [`super::parse`] (used in every error).
    pub name: String,
    /// The escape character (`\` unless `# escape=` says `` ` ``).
    pub escape: char,
    /// Parser directives in order.
    pub directives: Vec<Directive>,
    /// Warnings: empty continuation lines, a `# syntax=` directive that is ignored.
    pub warnings: Vec<Warning>,
    /// `ARG` instructions before the first `FROM` (each [`Command::Arg`]): usable only in
    /// `FROM` lines, and in a stage that declares them again.
    pub meta_args: Vec<Instruction>,
    /// The stages in order.
    pub stages: Vec<Stage>,
}

/// A stage: a `FROM` line and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position in [`Dockerfile::stages`]; `COPY --from=N` counts from 0.
    pub index: usize,
    /// The `AS` name, lower-cased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The base as written: an image reference, `scratch` or an earlier stage's name, possibly
    /// with `$ARG`s of the global scope ([`super::GlobalScope::expand_from`]).
    pub base: String,
    /// `--platform=` as written.
    pub platform: Option<String>,
    /// The `FROM` line's location.
    pub location: Location,
    /// The `FROM` line as written (continuations joined).
    pub original: String,
    /// Comment lines directly above the `FROM`.
    pub comments: Vec<String>,
    /// The stage's instructions (not the `FROM`).
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The name Docker shows for the stage: its `AS` name or `stage-N`.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("stage-{}", self.index),
        }
    }
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The keyword as written (`run`, `Copy`, ...); [`Instruction::name`] is the canonical one.
    pub keyword: String,
    /// Its lines, heredoc bodies included.
    pub location: Location,
    /// The instruction as Docker prints it in progress output: the logical line with
    /// continuations joined, trimmed (heredoc bodies not included).
    pub original: String,
    /// Builder flags as written (`--from=build`), quotes removed.
    pub flags: Vec<String>,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
    /// What the instruction says.
    pub command: Command,
}

/// The instructions of the Dockerfile language (`FROM` starts a [`Stage`] instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ADD`.
    Add(Add),
    /// `ARG name[=default] ...` (defaults as written).
    Arg(Vec<ArgDecl>),
    /// `CMD`.
    Cmd(CommandLine),
    /// `COPY`.
    Copy(Copy),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `ENV` pairs as written.
    Env(Vec<KeyValue>),
    /// `EXPOSE` words as written (expansion may split a word into several ports).
    Expose(Vec<String>),
    /// `HEALTHCHECK`.
    Healthcheck(HealthConfig),
    /// `LABEL` pairs as written.
    Label(Vec<KeyValue>),
    /// `MAINTAINER` (the rest of the line).
    Maintainer(String),
    /// `ONBUILD`.
    Onbuild(Onbuild),
    /// `RUN`.
    Run(Run),
    /// `SHELL` (always the JSON form).
    Shell(Vec<String>),
    /// `STOPSIGNAL` as written.
    StopSignal(String),
    /// `USER` as written.
    User(String),
    /// `VOLUME` paths as written.
    Volume(Vec<String>),
    /// `WORKDIR` as written.
    Workdir(String),
}

/// The command of RUN, CMD and ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// The JSON form: run these arguments directly.
    Exec(Vec<String>),
    /// The shell form: run this text with the stage's shell (`SHELL`, default
    /// `["/bin/sh", "-c"]`). An empty string means the instruction had no arguments.
    Shell(String),
}

/// A here-document opened on an instruction's line (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The body exactly as written: every line with its newline, the delimiter line excluded.
    /// With `<<-` the leading tabs are still there; [`Heredoc::body`] removes them.
    pub content: String,
    /// The delimiter was not quoted: variables in the body are expanded (COPY/ADD).
    pub expand: bool,
    /// `<<-`: leading tabs are removed from each line.
    pub chomp: bool,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
}

impl Heredoc {
    /// The body with `<<-`'s leading tabs removed from every line.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// What to run. With heredocs this is the shell form whose text names them (`<<EOF`).
    pub command: CommandLine,
    /// Here-documents opened on the line, in order.
    pub heredocs: Vec<Heredoc>,
    /// `--mount=` flags as written; [`MountSpec::resolve`] after [`Instruction::expand`]
    /// gives the mounts.
    pub mounts: Vec<MountSpec>,
    /// `--network=` (default `default`).
    pub network: NetworkMode,
    /// `--security=` (default `sandbox`).
    pub security: Security,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// The build's network (`--network` of `docker build`).
    #[default]
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// The normal container sandbox.
    #[default]
    Sandbox,
    /// Privileged (needs the `security.insecure` entitlement).
    Insecure,
}

/// A file given inline to COPY or ADD by a heredoc (`COPY <<EOF /dst`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The heredoc's delimiter: the file's name.
    pub name: String,
    /// The content (`<<-` tabs already removed; expanded by [`Instruction::expand`] when
    /// `expand` is set).
    pub data: String,
    /// The delimiter was not quoted, so `$variables` in `data` are expanded.
    pub expand: bool,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Source paths (globs allowed) as written, in order.
    pub sources: Vec<String>,
    /// Heredoc sources, in order.
    pub inline: Vec<InlineFile>,
    /// The destination as written.
    pub dest: String,
    /// `--from=`: a stage name, a stage index or an image (never expanded).
    pub from: Option<String>,
    /// `--chown=` as written.
    pub chown: Option<String>,
    /// `--chmod=` as written.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude=` patterns.
    pub excludes: Vec<String>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// Sources (paths, globs or URLs) as written, in order.
    pub sources: Vec<String>,
    /// Heredoc sources, in order.
    pub inline: Vec<InlineFile>,
    /// The destination as written.
    pub dest: String,
    /// `--chown=` as written.
    pub chown: Option<String>,
    /// `--chmod=` as written.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--keep-git-dir[=bool]` when given.
    pub keep_git_dir: Option<bool>,
    /// `--checksum=` as written.
    pub checksum: Option<String>,
    /// `--unpack[=bool]` when given.
    pub unpack: Option<bool>,
    /// `--exclude=` patterns.
    pub excludes: Vec<String>,
}

/// A `KEY=value` of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Written in the legacy `KEY value` form (no `=`).
    pub legacy_form: bool,
}

/// One name of an `ARG` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub key: String,
    /// The default as written (`None`: no `=`).
    pub default: Option<String>,
}

/// `HEALTHCHECK`, in the image config's terms (durations in nanoseconds, 0 = not set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: i64,
    /// `--timeout`.
    pub timeout: i64,
    /// `--start-period`.
    pub start_period: i64,
    /// `--start-interval`.
    pub start_interval: i64,
    /// `--retries`.
    pub retries: i64,
}

/// `ONBUILD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as it goes into the image config's `OnBuild` list: the instruction text
    /// after `ONBUILD`, heredoc bodies appended. [`super::parse_trigger`] parses it.
    pub trigger: String,
    /// The trigger's keyword, upper-cased.
    pub keyword: String,
}
