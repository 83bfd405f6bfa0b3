//! What the executor runs: stages and their steps with every value already expanded (the
//! Dockerfile front end does the expansion once a stage's base image — and so its `ENV` — is
//! known, see [`crate::frontend`]). Keeping this model free of the Dockerfile syntax lets the
//! executor be tested on its own and run `ONBUILD` triggers like any other step.

use berth_image::config::Healthcheck;

/// The command of `RUN`, `CMD` and `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdLine {
    /// JSON form: the arguments as they are.
    Exec(Vec<String>),
    /// Shell form: the text, run with the stage's shell.
    Shell(String),
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunNetwork {
    /// The build's network (`docker build --network`).
    #[default]
    Default,
    None,
    Host,
}

/// A `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// `type=bind`: `source` from the context (or `from`: a stage or image) at `target`.
    Bind {
        target: String,
        source: String,
        from: Option<String>,
        readwrite: bool,
    },
    /// `type=cache`: a directory that persists across builds, shared by `id`.
    Cache {
        target: String,
        id: String,
        readonly: bool,
        /// uid, gid and mode of the directory when it is created.
        uid: u32,
        gid: u32,
        mode: u32,
    },
    /// `type=tmpfs`.
    Tmpfs { target: String, size: Option<u64> },
    /// `type=secret`: the secret `id` as a file at `target`.
    Secret {
        id: String,
        target: String,
        required: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
}

/// A file given inline (`COPY <<EOF /dst`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyOp {
    /// `ADD` (local tars are extracted; URLs downloaded).
    pub add: bool,
    pub sources: Vec<String>,
    pub inline: Vec<InlineFile>,
    pub dest: String,
    /// `--from`: a stage name or index, or an image.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
}

/// One step, expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Run {
        cmd: CmdLine,
        /// Here-documents: (name, body).
        heredocs: Vec<(String, String)>,
        mounts: Vec<RunMount>,
        network: RunNetwork,
        /// `KEY=value` of the build args this step sees (declared by `ARG`, not shadowed by
        /// `ENV`), in declaration order.
        build_args: Vec<String>,
        /// Those of `build_args` that are not predefined proxy args or were referenced
        /// (Docker leaves unreferenced predefined args out of the cache key and history).
        build_args_in_key: Vec<String>,
    },
    Cmd(CmdLine),
    Entrypoint(CmdLine),
    Copy(CopyOp),
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Workdir(String),
    User(String),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Onbuild(String),
    Maintainer(String),
}

/// A step and how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The instruction as written (`COPY app.txt /opt/app/app.txt`), for `Step N/M : …`.
    pub text: String,
    /// Its first line in the Dockerfile (0 for triggers and added labels).
    pub line: usize,
    pub op: Op,
}
