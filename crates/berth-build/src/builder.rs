//! The executor and the solver.
//!
//! Stages form a graph: a stage depends on the stage its `FROM` names and on those its
//! `COPY --from` and `RUN --mount=from=` read. Only the stages the target needs are built;
//! each runs as its own task as soon as the stages it depends on are done, so independent
//! stages build in parallel, and a stage used by several others is built once (its result is
//! shared). Within a stage, steps run in order: every step's result is an image in the store
//! (the classic builder's intermediate images), found again through [`crate::cache`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use berth_image::commit::EMPTY_TAR_DIFF_ID;
use berth_image::config::{ContainerConfig, History, ImageConfig};
use berth_image::fsutil::random_hex;
use berth_image::store::{CreateOptions, Image, ImageLayer, ImageStore};
use berth_image::Digest;
use berth_runtime::spec::NetworkNs;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::cache::{self, Cache};
use crate::context::BuildContext;
use crate::copy::{self, CopyOwner};
use crate::error::{BuildError, Result};
use crate::fsops;
use crate::progress::{self, Event, Sink, Trace, VertexState};
use crate::run::{self, RunEnv, RunRequest, BUILD_ID_PREFIX};
use crate::step::{CmdLine, CopyOp, Op, RunNetwork, Step};

/// Docker's default `PATH` (moby `oci.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage as the solver sees it (before its steps are expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageInfo {
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    /// The base, expanded: an image reference, `scratch`, or an earlier stage's name/index.
    pub base: String,
    pub platform: Option<String>,
    /// The `FROM` line as written.
    pub text: String,
    /// Stages or images the steps read from (`COPY --from`, `RUN --mount from=`), as written.
    pub reads_from: Vec<String>,
    /// How many instructions the stage has (for `Step N/M`).
    pub step_count: usize,
}

/// The Dockerfile side of a build (see [`crate::frontend`]).
pub trait Frontend: Send + Sync + 'static {
    /// The stages in Dockerfile order.
    fn stages(&self) -> Vec<StageInfo>;
    /// The texts of the `ARG`s before the first `FROM` (each printed as a step).
    fn meta_args(&self) -> Vec<String>;
    /// Expands stage `index` once its base image's environment is known; `triggers` are the
    /// base image's `ONBUILD` instructions, run first.
    fn expand(
        &self,
        index: usize,
        base_env: &[String],
        triggers: &[String],
    ) -> Result<Vec<Step>, BuildError>;
    /// Build args given but never declared (for Docker's warning).
    fn unused_build_args(&self) -> Vec<String>;
}

/// What the builder needs from the daemon.
pub trait Host: Send + Sync + 'static {
    /// Pulls `reference` (Docker's progress goes to `sink` as [`Event::Pull`]).
    fn pull(
        &self,
        reference: String,
        platform: Option<String>,
        sink: Sink,
    ) -> BoxFuture<'static, Result<Arc<Image>, BuildError>>;
}

/// Options of one build.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub no_cache: bool,
    /// Stages (names) built without the cache.
    pub no_cache_filter: Vec<String>,
    /// Always pull `FROM` images.
    pub pull: bool,
    pub target: Option<String>,
    /// `--network` of the build (`default`, `none`, `host`).
    pub network: String,
    /// `--add-host` (name, address).
    pub extra_hosts: Vec<(String, String)>,
    pub shm_size: Option<u64>,
    pub platform: Option<String>,
    /// `--secret id=…,src=…`: id → file on the daemon's host.
    pub secrets: HashMap<String, PathBuf>,
}

/// The builder of a daemon: shared by every build.
pub struct Builder {
    pub store: Arc<ImageStore>,
    pub cache: Cache,
    pub run_env: RunEnv,
    pub host: Arc<dyn Host>,
}

/// The result of a stage.
type StageResult = std::result::Result<Option<Arc<Image>>, String>;

struct Shared {
    builder: Arc<Builder>,
    frontend: Arc<dyn Frontend>,
    ctx: Arc<BuildContext>,
    opts: Options,
    cancel: CancellationToken,
    stages: Vec<StageInfo>,
    /// Result of each built stage (None until done).
    results: Vec<watch::Receiver<Option<StageResult>>>,
    /// Step numbering: first number of each stage.
    first_step: Vec<usize>,
    total_steps: usize,
}

impl Builder {
    /// Builds `frontend`'s target with `ctx` and returns the final image. Progress goes to
    /// `sink`; `cancel` stops the build (running steps are killed, nothing is left behind).
    pub async fn build(
        self: &Arc<Self>,
        frontend: Arc<dyn Frontend>,
        ctx: Arc<BuildContext>,
        opts: Options,
        sink: Sink,
        cancel: CancellationToken,
    ) -> Result<Arc<Image>> {
        let stages = frontend.stages();
        if stages.is_empty() {
            return Err(BuildError::InvalidInput(
                "the Dockerfile has no FROM instruction; nothing to build".into(),
            ));
        }
        let target = match &opts.target {
            None => stages.len() - 1,
            Some(t) => {
                let t = t.to_ascii_lowercase();
                stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(t.as_str()))
                    .ok_or_else(|| {
                        BuildError::InvalidInput(format!("target stage {t:?} could not be found"))
                    })?
            }
        };
        let needed = needed_stages(&stages, target);
        let meta = frontend.meta_args();
        let mut first_step = vec![0; stages.len()];
        let mut n = meta.len() + 1;
        for &i in &needed {
            first_step[i] = n;
            n += 1 + stages[i].step_count;
        }
        let total_steps = n - 1;
        for (i, m) in meta.iter().enumerate() {
            progress::stream(&sink, format!("Step {}/{total_steps} : {m}", i + 1));
            progress::stream(&sink, "\n");
        }

        // One channel per stage; a printer forwards them in Dockerfile order.
        let mut senders = HashMap::new();
        let mut receivers = Vec::new();
        for &i in &needed {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.insert(i, tx);
            receivers.push(rx);
        }
        let printer_sink = sink.clone();
        let printer = tokio::spawn(async move {
            for mut rx in receivers {
                while let Some(ev) = rx.recv().await {
                    if printer_sink.send(ev).is_err() {
                        return;
                    }
                }
            }
        });

        let mut txs = Vec::new();
        let mut results = Vec::new();
        for _ in 0..stages.len() {
            let (tx, rx) = watch::channel(None);
            txs.push(tx);
            results.push(rx);
        }
        let shared = Arc::new(Shared {
            builder: self.clone(),
            frontend,
            ctx,
            opts,
            cancel: cancel.clone(),
            stages,
            results,
            first_step,
            total_steps,
        });
        let mut tasks = Vec::new();
        for &i in &needed {
            let shared = shared.clone();
            let tx = txs[i].clone();
            let Some(stage_sink) = senders.remove(&i) else {
                continue;
            };
            let trace_sink = sink.clone();
            tasks.push(tokio::spawn(async move {
                let res = shared
                    .clone()
                    .build_stage(i, stage_sink.clone(), trace_sink)
                    .await;
                let out = match res {
                    Ok(img) => Ok(img),
                    Err(e) => {
                        // The first failure stops the others.
                        if !matches!(e, BuildError::Cancelled) {
                            shared.cancel.cancel();
                        }
                        Err(e)
                    }
                };
                let _ = tx.send(Some(
                    out.as_ref().map(|i| i.clone()).map_err(|e| e.to_string()),
                ));
                out
            }));
        }
        drop(txs);
        let mut first_error: Option<BuildError> = None;
        let mut final_image = None;
        for (k, t) in tasks.into_iter().enumerate() {
            let r = t.await.map_err(BuildError::internal)?;
            match r {
                Ok(img) => {
                    if needed[k] == target {
                        final_image = img;
                    }
                }
                Err(e) => {
                    let better = match &first_error {
                        None => true,
                        Some(BuildError::Cancelled) => !matches!(e, BuildError::Cancelled),
                        Some(_) => false,
                    };
                    if better {
                        first_error = Some(e);
                    }
                }
            }
        }
        let _ = printer.await;
        if let Some(e) = first_error {
            return Err(e);
        }
        let unused = shared.frontend.unused_build_args();
        if !unused.is_empty() {
            progress::stream(
                &sink,
                format!(
                    "[Warning] One or more build-args [{}] were not consumed\n",
                    unused.join(" ")
                ),
            );
        }
        final_image.ok_or_else(|| {
            BuildError::Step("No image was generated. Is your Dockerfile empty?".into())
        })
    }
}

/// The stages the target needs, in Dockerfile order.
fn needed_stages(stages: &[StageInfo], target: usize) -> Vec<usize> {
    let mut need = vec![false; stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if need[i] {
            continue;
        }
        need[i] = true;
        let mut refs = vec![stages[i].base.clone()];
        refs.extend(stages[i].reads_from.iter().cloned());
        for r in refs {
            if let Some(j) = stage_ref(stages, &r, i) {
                todo.push(j);
            }
        }
    }
    (0..stages.len()).filter(|&i| need[i]).collect()
}

/// The earlier stage `r` names (by name, case-insensitively, or by index), if any.
fn stage_ref(stages: &[StageInfo], r: &str, before: usize) -> Option<usize> {
    let lower = r.to_ascii_lowercase();
    if let Some(j) = stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(j);
    }
    match r.parse::<usize>() {
        Ok(j) if j < before => Some(j),
        _ => None,
    }
}

fn short(id: &Digest) -> String {
    id.hex()[..12].to_string()
}

/// The mutable state of a stage while its steps run (moby's `dispatchState`).
struct StageState {
    image: Option<Arc<Image>>,
    config: ContainerConfig,
    maintainer: String,
    cmd_set: bool,
    arch: String,
    os: String,
}

impl StageState {
    fn parent_id(&self) -> String {
        self.image
            .as_ref()
            .map(|i| i.id.to_string())
            .unwrap_or_else(|| "scratch".into())
    }

    fn shell(&self) -> Vec<String> {
        match &self.config.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    /// The config with `Cmd` replaced by a `#(nop)` comment (the classic builder's cache probe
    /// and `ContainerConfig` of metadata steps). `single` is the one-word form of WORKDIR,
    /// COPY and ADD.
    fn with_comment(&self, comment: &str, single: bool) -> ContainerConfig {
        let mut c = self.config.clone();
        let mut cmd = self.shell();
        if single {
            cmd.push(format!("#(nop) {comment}"));
        } else {
            cmd.push("#(nop) ".into());
            cmd.push(comment.into());
        }
        c.cmd = Some(cmd);
        c
    }

    fn cmd_line(&self, l: &CmdLine) -> Vec<String> {
        match l {
            CmdLine::Exec(v) => v.clone(),
            CmdLine::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }
}

struct StepCtx<'a> {
    sink: &'a Sink,
    trace: &'a Sink,
    vertex: u32,
    name: String,
    started: Instant,
    use_cache: bool,
}

impl StepCtx<'_> {
    fn trace(&self, state: VertexState, output: Option<String>) {
        let elapsed_ms = match state {
            VertexState::Done | VertexState::Cached | VertexState::Error => {
                Some(self.started.elapsed().as_millis() as u64)
            }
            _ => None,
        };
        let _ = self.trace.send(Event::Trace(Trace {
            vertex: self.vertex,
            name: self.name.clone(),
            state,
            output,
            elapsed_ms,
        }));
    }

    fn say(&self, s: impl Into<String>) {
        progress::stream(self.sink, s);
    }
}

impl Shared {
    async fn wait_stage(&self, j: usize) -> Result<Option<Arc<Image>>> {
        let mut rx = self.results[j].clone();
        loop {
            if let Some(r) = rx.borrow().clone() {
                return r.map_err(|_| BuildError::Cancelled);
            }
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        return Err(BuildError::Cancelled);
                    }
                }
                _ = self.cancel.cancelled() => return Err(BuildError::Cancelled),
            }
        }
    }

    /// The image a `FROM` or `COPY --from` names: an earlier stage's result, or an image
    /// from the store (pulled when missing or when `--pull` says so).
    async fn image_for(
        &self,
        r: &str,
        before: usize,
        platform: Option<String>,
        sink: &Sink,
    ) -> Result<Option<Arc<Image>>> {
        if let Some(j) = stage_ref(&self.stages, r, before) {
            return self.wait_stage(j).await;
        }
        if r == "scratch" {
            return Ok(None);
        }
        let store = &self.builder.store;
        if !self.opts.pull {
            if let Ok(img) = store.resolve(r) {
                return Ok(Some(img));
            }
        }
        let img = self
            .builder
            .host
            .pull(r.to_string(), platform, sink.clone())
            .await?;
        Ok(Some(img))
    }

    async fn build_stage(
        self: Arc<Self>,
        index: usize,
        sink: Sink,
        trace: Sink,
    ) -> Result<Option<Arc<Image>>> {
        let info = self.stages[index].clone();
        let mut step_no = self.first_step[index];
        let total = self.total_steps;
        let stage_name = info
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{index}"));
        let vertex_base = (index as u32) * 10_000;
        progress::stream(&sink, format!("Step {step_no}/{total} : {}", info.text));
        progress::stream(&sink, "\n");
        let from_ctx = StepCtx {
            sink: &sink,
            trace: &trace,
            vertex: vertex_base,
            name: format!("[{stage_name}] {}", info.text),
            started: Instant::now(),
            use_cache: true,
        };
        from_ctx.trace(VertexState::Running, None);
        let base = match self
            .image_for(
                &info.base,
                index,
                info.platform.clone().or(self.opts.platform.clone()),
                &sink,
            )
            .await
        {
            Ok(b) => b,
            Err(e) => {
                from_ctx.trace(VertexState::Error, None);
                return Err(e);
            }
        };
        from_ctx.trace(VertexState::Done, None);
        let mut state = match &base {
            Some(img) => StageState {
                config: img.config.config.clone().unwrap_or_default(),
                maintainer: String::new(),
                cmd_set: false,
                arch: img.config.architecture.clone(),
                os: img.config.os.clone(),
                image: Some(img.clone()),
            },
            None => StageState {
                image: None,
                config: ContainerConfig::default(),
                maintainer: String::new(),
                cmd_set: false,
                arch: host_arch().into(),
                os: "linux".into(),
            },
        };
        // moby's beginStage: a default PATH when the image has none.
        let env = state.config.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        from_ctx.say(format!(
            " ---> {}\n",
            state
                .image
                .as_ref()
                .map(|i| short(&i.id))
                .unwrap_or_default()
        ));
        let triggers = state.config.on_build.take().unwrap_or_default();
        let env_now = state.config.env.clone().unwrap_or_default();
        let steps = self.frontend.expand(index, &env_now, &triggers)?;
        if !triggers.is_empty() {
            from_ctx.say(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() > 1 { "s" } else { "" }
            ));
        }
        let use_cache = !self.opts.no_cache
            && !self
                .opts
                .no_cache_filter
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&stage_name));
        let n_triggers = triggers.len();
        for (k, step) in steps.iter().enumerate() {
            if self.cancel.is_cancelled() {
                progress::stream(&sink, "Build cancelled\n");
                return Err(BuildError::Cancelled);
            }
            let is_trigger = k < n_triggers;
            if !is_trigger {
                step_no += 1;
                progress::stream(&sink, format!("Step {step_no}/{total} : {}", step.text));
                progress::stream(&sink, "\n");
            }
            let ctx = StepCtx {
                sink: &sink,
                trace: &trace,
                vertex: vertex_base + 1 + k as u32,
                name: format!("[{stage_name}] {}", step.text),
                started: Instant::now(),
                use_cache,
            };
            ctx.trace(VertexState::Running, None);
            match self.dispatch(index, &mut state, step, &ctx).await {
                Ok(cached) => ctx.trace(
                    if cached {
                        VertexState::Cached
                    } else {
                        VertexState::Done
                    },
                    None,
                ),
                Err(e) => {
                    ctx.trace(VertexState::Error, None);
                    return Err(e);
                }
            }
            if let Some(img) = &state.image {
                ctx.say(format!(" ---> {}\n", short(&img.id)));
            }
        }
        // A stage without steps still yields an image (its base).
        if let Some(img) = &state.image {
            let _ = sink.send(Event::Aux(img.id.to_string()));
        }
        Ok(state.image)
    }

    /// Runs one step. Returns whether the cache was used.
    async fn dispatch(
        &self,
        stage: usize,
        st: &mut StageState,
        step: &Step,
        ctx: &StepCtx<'_>,
    ) -> Result<bool> {
        match &step.op {
            Op::Env(pairs) => {
                let env = st.config.env.get_or_insert_with(Vec::new);
                let mut msg = String::from("ENV");
                for (k, v) in pairs {
                    let entry = format!("{k}={v}");
                    msg.push(' ');
                    msg.push_str(&entry);
                    match env
                        .iter_mut()
                        .find(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) == k)
                    {
                        Some(slot) => *slot = entry,
                        None => env.push(entry),
                    }
                }
                self.commit_meta(st, &msg, false, ctx).await
            }
            Op::Label(pairs) => {
                let labels = st.config.labels.get_or_insert_with(BTreeMap::new);
                let mut msg = String::from("LABEL");
                for (k, v) in pairs {
                    labels.insert(k.clone(), v.clone());
                    msg.push_str(&format!(" {k}={v}"));
                }
                self.commit_meta(st, &msg, false, ctx).await
            }
            Op::Maintainer(m) => {
                st.maintainer = m.clone();
                self.commit_meta(st, &format!("MAINTAINER {m}"), false, ctx)
                    .await
            }
            Op::Arg(args) => {
                let mut msg = String::from("ARG ");
                for (i, (k, v)) in args.iter().enumerate() {
                    if i > 0 {
                        msg.push(' ');
                    }
                    msg.push_str(k);
                    if let Some(v) = v {
                        msg.push('=');
                        msg.push_str(v);
                    }
                }
                self.commit_meta(st, &msg, false, ctx).await
            }
            Op::Expose(ports) => {
                let set = st.config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in ports {
                    for port in expand_port_spec(p)? {
                        set.insert(port, serde_json::json!({}));
                    }
                }
                self.commit_meta(st, &format!("EXPOSE {}", ports.join(" ")), false, ctx)
                    .await
            }
            Op::Volume(vols) => {
                let set = st.config.volumes.get_or_insert_with(BTreeMap::new);
                for v in vols {
                    if v.is_empty() {
                        return Err(BuildError::Step(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    set.insert(v.clone(), serde_json::json!({}));
                }
                self.commit_meta(st, &format!("VOLUME [{}]", vols.join(" ")), false, ctx)
                    .await
            }
            Op::User(u) => {
                st.config.user = u.clone();
                self.commit_meta(st, &format!("USER {u}"), false, ctx).await
            }
            Op::Shell(s) => {
                st.config.shell = Some(s.clone());
                self.commit_meta(st, &format!("SHELL [{}]", s.join(" ")), false, ctx)
                    .await
            }
            Op::StopSignal(s) => {
                validate_signal(s)?;
                st.config.stop_signal = s.clone();
                self.commit_meta(st, &format!("STOPSIGNAL {s}"), false, ctx)
                    .await
            }
            Op::Onbuild(t) => {
                st.config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(t.clone());
                self.commit_meta(st, &format!("ONBUILD {t}"), false, ctx)
                    .await
            }
            Op::Healthcheck(h) => {
                if let Some(old) = &st.config.healthcheck {
                    if old.test.first().map(String::as_str) != Some("NONE") && !old.test.is_empty()
                    {
                        ctx.say(format!(
                            "Note: overriding previous HEALTHCHECK: [{}]\n",
                            old.test.join(" ")
                        ));
                    }
                }
                st.config.healthcheck = Some(h.clone());
                let msg = format!("HEALTHCHECK {}", healthcheck_text(h));
                self.commit_meta(st, &msg, false, ctx).await
            }
            Op::Cmd(l) => {
                let cmd = st.cmd_line(l);
                st.config.args_escaped = false;
                st.config.cmd = Some(cmd.clone());
                let hit = self
                    .commit_meta(st, &format!("CMD {}", go_quote_list(&cmd)), false, ctx)
                    .await?;
                if !matches!(l, CmdLine::Shell(s) if s.is_empty()) {
                    st.cmd_set = true;
                }
                Ok(hit)
            }
            Op::Entrypoint(l) => {
                let ep = st.cmd_line(l);
                st.config.entrypoint = Some(ep.clone());
                if !st.cmd_set {
                    st.config.cmd = None;
                }
                self.commit_meta(
                    st,
                    &format!("ENTRYPOINT {}", go_quote_list(&ep)),
                    false,
                    ctx,
                )
                .await
            }
            Op::Workdir(w) => self.workdir(st, w, ctx).await,
            Op::Run { .. } => self.run_step(stage, st, step, ctx).await,
            Op::Copy(c) => self.copy_step(stage, st, c, ctx).await,
        }
    }

    fn probe(
        &self,
        st: &StageState,
        probe: &ContainerConfig,
        extra: &[&[u8]],
        ctx: &StepCtx<'_>,
    ) -> Option<(String, Arc<Image>)> {
        let cfg_json = serde_json::to_vec(probe).unwrap_or_default();
        let parent = st.parent_id();
        let platform = format!("{}/{}", st.os, st.arch);
        let mut parts: Vec<&[u8]> = vec![
            parent.as_bytes(),
            platform.as_bytes(),
            &cfg_json,
            st.maintainer.as_bytes(),
        ];
        parts.extend_from_slice(extra);
        let key = cache::key(&parts);
        if !ctx.use_cache {
            return None;
        }
        let entry = self.builder.cache.get(&key)?;
        let img = self.builder.store.get(&entry.image)?;
        // The cached image must sit on this parent.
        if img.parent.as_ref().map(|p| p.to_string()) != st.image.as_ref().map(|i| i.id.to_string())
        {
            return None;
        }
        Some((key, img))
    }

    fn key_of(&self, st: &StageState, probe: &ContainerConfig, extra: &[&[u8]]) -> String {
        let cfg_json = serde_json::to_vec(probe).unwrap_or_default();
        let parent = st.parent_id();
        let platform = format!("{}/{}", st.os, st.arch);
        let mut parts: Vec<&[u8]> = vec![
            parent.as_bytes(),
            platform.as_bytes(),
            &cfg_json,
            st.maintainer.as_bytes(),
        ];
        parts.extend_from_slice(extra);
        cache::key(&parts)
    }

    /// A metadata step: a new image with the changed config and no layer.
    async fn commit_meta(
        &self,
        st: &mut StageState,
        comment: &str,
        single: bool,
        ctx: &StepCtx<'_>,
    ) -> Result<bool> {
        let probe = st.with_comment(comment, single);
        if let Some((_, img)) = self.probe(st, &probe, &[], ctx) {
            ctx.say(" ---> Using cache\n");
            st.config = img.config.config.clone().unwrap_or_default();
            st.image = Some(img);
            return Ok(true);
        }
        let key = self.key_of(st, &probe, &[]);
        let created_by = probe.cmd.clone().unwrap_or_default().join(" ");
        let img = self
            .commit_image(st, &probe, None, &created_by, &key, comment)
            .await?;
        st.image = Some(img);
        Ok(false)
    }

    /// Records the step's image (and its cache entry).
    async fn commit_image(
        &self,
        st: &StageState,
        container_config: &ContainerConfig,
        layer: Option<ImageLayer>,
        created_by: &str,
        key: &str,
        step: &str,
    ) -> Result<Arc<Image>> {
        let store = self.builder.store.clone();
        let parent = st.image.clone();
        let cfg = st.config.clone();
        let cc = container_config.clone();
        let created_by = created_by.to_string();
        let author = st.maintainer.clone();
        let (arch, os) = (st.arch.clone(), st.os.clone());
        let img = tokio::task::spawn_blocking(move || {
            child_image(
                &store,
                parent.as_deref(),
                &cfg,
                &cc,
                layer,
                &created_by,
                &author,
                &arch,
                &os,
            )
        })
        .await
        .map_err(BuildError::internal)??;
        self.builder
            .cache
            .put(
                key,
                &cache::Entry {
                    image: img.id.clone(),
                    created: berth_image::config::now_rfc3339(),
                    step: step.to_string(),
                },
            )
            .map_err(|e| BuildError::internal(format!("writing the build cache: {e}")))?;
        Ok(img)
    }

    async fn workdir(&self, st: &mut StageState, w: &str, ctx: &StepCtx<'_>) -> Result<bool> {
        let new = normalize_workdir(&st.config.working_dir, w);
        st.config.working_dir = new.clone();
        let comment = format!("WORKDIR {new}");
        let probe = st.with_comment(&comment, true);
        if let Some((_, img)) = self.probe(st, &probe, &[], ctx) {
            ctx.say(" ---> Using cache\n");
            st.config = img.config.config.clone().unwrap_or_default();
            st.image = Some(img);
            return Ok(true);
        }
        let key = self.key_of(st, &probe, &[]);
        let wd = new.clone();
        let layer = self
            .with_rw(st, false, move |rootfs| {
                berth_runtime::user::ensure_workdir(rootfs, Path::new(&wd))
                    .map_err(|e| BuildError::Step(e.to_string()))
            })
            .await?;
        let created_by = probe.cmd.clone().unwrap_or_default().join(" ");
        let img = self
            .commit_image(st, &probe, layer, &created_by, &key, &comment)
            .await?;
        st.image = Some(img);
        Ok(false)
    }

    /// Makes a writable layer on the stage's image, mounts it, runs `f` on the rootfs (in a
    /// blocking thread), and turns the changes into a layer (`None` when nothing changed).
    /// The writable layer is removed in every case.
    async fn with_rw<F>(&self, st: &StageState, init: bool, f: F) -> Result<Option<ImageLayer>>
    where
        F: FnOnce(&Path) -> Result<()> + Send + 'static,
    {
        let store = self.builder.store.clone();
        let top = st.image.as_ref().and_then(|i| i.top_chain_id().cloned());
        tokio::task::spawn_blocking(move || {
            let id = format!("{BUILD_ID_PREFIX}{}", random_hex(32));
            let ls = store.layers();
            ls.create_rw_with(&id, top.as_ref(), init)?;
            let guard = RwGuard {
                store: store.clone(),
                id: id.clone(),
            };
            let rootfs = ls.mount_rw(&id)?;
            f(&rootfs)?;
            ls.unmount_rw(&id)?;
            let layer = layer_of(&store, &id, top.as_ref())?;
            drop(guard);
            Ok(layer)
        })
        .await
        .map_err(BuildError::internal)?
    }

    async fn run_step(
        &self,
        stage: usize,
        st: &mut StageState,
        step: &Step,
        ctx: &StepCtx<'_>,
    ) -> Result<bool> {
        let Op::Run {
            cmd,
            heredocs,
            mounts,
            network,
            build_args,
            build_args_in_key,
        } = &step.op
        else {
            return Err(BuildError::internal("not a RUN step"));
        };
        if !heredocs.is_empty() {
            return Err(BuildError::Step(
                "RUN with here-documents is not implemented in berth yet".into(),
            ));
        }
        let cmd_from_args = st.cmd_line(cmd);
        let mut save_cmd = cmd_from_args.clone();
        if !build_args_in_key.is_empty() {
            let mut sorted = build_args_in_key.clone();
            sorted.sort();
            let mut v = vec![format!("|{}", sorted.len())];
            v.extend(sorted);
            v.extend(cmd_from_args.iter().cloned());
            save_cmd = v;
        }
        let mut probe = st.config.clone();
        probe.cmd = Some(save_cmd.clone());
        probe.args_escaped = false;
        if !save_cmd.is_empty() {
            probe.entrypoint = None;
        }
        let net_extra = format!("{network:?}/{}", self.opts.network);
        // Mounts: what they are is part of the key; for binds, so is what they show.
        let prepared = self.prepare_mounts(stage, mounts, ctx).await?;
        let mounts_extra = prepared.key.clone();
        let extra: Vec<&[u8]> = vec![net_extra.as_bytes(), mounts_extra.as_bytes()];
        if let Some((_, img)) = self.probe(st, &probe, &extra, ctx) {
            ctx.say(" ---> Using cache\n");
            st.image = Some(img);
            return Ok(true);
        }
        let key = self.key_of(st, &probe, &extra);

        let store = self.builder.store.clone();
        let top = st.image.as_ref().and_then(|i| i.top_chain_id().cloned());
        let id = format!("{BUILD_ID_PREFIX}{}", random_hex(32));
        ctx.say(format!(
            " ---> Running in {}\n",
            &id[BUILD_ID_PREFIX.len()..][..12]
        ));
        let (store2, id2, top2) = (store.clone(), id.clone(), top.clone());
        let rootfs = tokio::task::spawn_blocking(move || -> Result<PathBuf> {
            store2.layers().create_rw_with(&id2, top2.as_ref(), true)?;
            Ok(store2.layers().mount_rw(&id2)?)
        })
        .await
        .map_err(BuildError::internal)?;
        let guard = RwGuard {
            store: store.clone(),
            id: id.clone(),
        };
        let rootfs = rootfs?;
        let stubs: Vec<String> = {
            let root = fsops::open_root(&rootfs)?;
            prepared
                .targets
                .iter()
                .filter(|t| {
                    !matches!(
                        fsops::lstat_in_root(fsops::fd(&root), Path::new(t)),
                        Ok(Some(_))
                    )
                })
                .cloned()
                .collect()
        };
        let mut env = st.config.env.clone().unwrap_or_default();
        env.extend(build_args.iter().cloned());
        let net = match network {
            RunNetwork::None => NetworkNs::New,
            RunNetwork::Host => NetworkNs::Host,
            RunNetwork::Default => match self.opts.network.as_str() {
                "host" => NetworkNs::Host,
                _ => NetworkNs::New,
            },
        };
        let hosts = hosts_file(&net, &self.opts.extra_hosts);
        let req = RunRequest {
            id: id.clone(),
            rootfs,
            args: cmd_from_args.clone(),
            env,
            cwd: st.config.working_dir.clone(),
            user: st.config.user.clone(),
            network: net,
            hosts,
            binds: prepared.binds.clone(),
            tmpfs: prepared.tmpfs.clone(),
            shm_size: self.opts.shm_size,
        };
        let sink = ctx.sink.clone();
        let trace = ctx.trace.clone();
        let (vertex, name) = (ctx.vertex, ctx.name.clone());
        let mut on_output = move |o: run::Output| {
            let text = String::from_utf8_lossy(&o.data).into_owned();
            let _ = trace.send(Event::Trace(Trace {
                vertex,
                name: name.clone(),
                state: VertexState::Running,
                output: Some(text.clone()),
                elapsed_ms: None,
            }));
            progress::stream(&sink, text);
        };
        let code = run::run(&self.builder.run_env, req, &mut on_output, &self.cancel).await?;
        if code != 0 {
            drop(guard);
            return Err(BuildError::RunFailed {
                cmd: cmd_from_args.join(" "),
                code,
            });
        }
        let (store2, id2) = (store.clone(), id.clone());
        let layer = tokio::task::spawn_blocking(move || -> Result<Option<ImageLayer>> {
            remove_mount_stubs(&store2, &id2, &stubs);
            store2.layers().unmount_rw(&id2)?;
            layer_of(&store2, &id2, top.as_ref())
        })
        .await
        .map_err(BuildError::internal)??;
        drop(guard);
        ctx.say(format!(
            "Removing intermediate container {}\n",
            &id[BUILD_ID_PREFIX.len()..][..12]
        ));
        let created_by = save_cmd.join(" ");
        let img = self
            .commit_image(st, &probe, layer, &created_by, &key, &step.text)
            .await?;
        st.image = Some(img);
        Ok(false)
    }

    async fn copy_step(
        &self,
        stage: usize,
        st: &mut StageState,
        c: &CopyOp,
        ctx: &StepCtx<'_>,
    ) -> Result<bool> {
        let name = if c.add { "ADD" } else { "COPY" };
        if c.sources.iter().any(|s| is_url(s)) {
            return Err(BuildError::Step(format!(
                "{name} of a remote URL is not implemented in berth yet"
            )));
        }
        if !c.inline.is_empty() || c.parents || !c.excludes.is_empty() || c.checksum.is_some() {
            return Err(BuildError::Step(format!(
                "{name} with here-documents, --parents, --exclude or --checksum is not implemented in berth yet"
            )));
        }
        let chmod = match &c.chmod {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| BuildError::Step(format!("invalid chmod parameter: {m}")))?,
            ),
        };
        // The source root: the context, or another stage's / an image's filesystem.
        let from_image = match &c.from {
            None => None,
            Some(f) => Some(
                self.image_for(f, stage, self.opts.platform.clone(), ctx.sink)
                    .await
                    .map_err(|e| BuildError::Step(format!("invalid from flag value {f}: {e}")))?,
            ),
        };
        let store = self.builder.store.clone();
        let src_mount = match &from_image {
            Some(img) => {
                let top = img.as_ref().and_then(|i| i.top_chain_id().cloned());
                let store2 = store.clone();
                let m = tokio::task::spawn_blocking(move || -> Result<(RwGuard, PathBuf)> {
                    let id = format!("{BUILD_ID_PREFIX}{}", random_hex(32));
                    store2.layers().create_rw_with(&id, top.as_ref(), false)?;
                    let g = RwGuard {
                        store: store2.clone(),
                        id: id.clone(),
                    };
                    let p = store2.layers().mount_rw(&id)?;
                    Ok((g, p))
                })
                .await
                .map_err(BuildError::internal)??;
                Some(m)
            }
            None => None,
        };
        let src_root_owned = match &src_mount {
            Some((_, p)) => Some(fsops::open_root(p)?),
            None => None,
        };
        let src_root = match &src_root_owned {
            Some(fd) => fsops::fd(fd),
            None => self.ctx.root(),
        };
        let ctxref = self.ctx.clone();
        let in_context = src_mount.is_none();
        let infos = copy::resolve_sources(
            src_root,
            &c.sources,
            &|p| {
                if in_context {
                    ctxref.cached_hash(p)
                } else {
                    None
                }
            },
            &|p, h| {
                if in_context {
                    ctxref.remember_hash(p, h)
                }
            },
            &|s| {
                if in_context {
                    BuildError::Step(format!(
                        "{name} failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"
                    ))
                } else {
                    BuildError::Step(format!("{name} failed: stat {s}: file does not exist"))
                }
            },
        )?;
        if infos.len() > 1 && !c.dest.ends_with('/') {
            return Err(BuildError::Step(format!(
                "When using {name} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let src_hash = if infos.len() == 1 {
            infos[0].hash.clone()
        } else {
            let all: Vec<String> = infos.iter().map(|i| i.hash.clone()).collect();
            use sha2::Digest as _;
            format!(
                "multi:{}",
                hex::encode(sha2::Sha256::digest(all.join(",").as_bytes()))
            )
        };
        let dest = normalize_dest(&st.config.working_dir, &c.dest);
        let chown_comment = c
            .chown
            .as_ref()
            .map(|o| format!("--chown={o} "))
            .unwrap_or_default();
        let comment = format!("{name} {chown_comment}{src_hash} in {dest} ");
        let probe = st.with_comment(&comment, true);
        let chmod_extra = format!("{:?}/{:?}", c.chmod, c.from);
        let extra: Vec<&[u8]> = vec![chmod_extra.as_bytes()];
        if let Some((_, img)) = self.probe(st, &probe, &extra, ctx) {
            ctx.say(" ---> Using cache\n");
            st.image = Some(img);
            return Ok(true);
        }
        let key = self.key_of(st, &probe, &extra);

        // Do the copy into a writable layer on the stage's image.
        let src_path: Option<PathBuf> = src_mount.as_ref().map(|(_, p)| p.clone());
        let ctx_path = self.ctx.path();
        let chown = c.chown.clone();
        let preserve = c.from.is_some() && c.chown.is_none();
        let add = c.add;
        let sources: Vec<PathBuf> = infos.iter().map(|i| i.path.clone()).collect();
        let layer = self
            .with_rw(st, false, move |rootfs| {
                let dst_root = fsops::open_root(rootfs)?;
                let owner = if preserve {
                    None
                } else {
                    Some(match &chown {
                        None => (0, 0),
                        Some(spec) => resolve_chown(fsops::fd(&dst_root), spec)?,
                    })
                };
                let src_root = fsops::open_root(src_path.as_deref().unwrap_or(&ctx_path))?;
                for s in &sources {
                    copy::copy_source(
                        fsops::fd(&src_root),
                        s,
                        fsops::fd(&dst_root),
                        &dest,
                        CopyOwner { owner, chmod },
                        add && !preserve,
                    )
                    .map_err(|e| match e {
                        BuildError::Step(m) => {
                            BuildError::Step(format!("failed to copy files: {m}"))
                        }
                        e => e,
                    })?;
                }
                Ok(())
            })
            .await?;
        drop(src_mount);
        let created_by = probe.cmd.clone().unwrap_or_default().join(" ");
        let img = self
            .commit_image(st, &probe, layer, &created_by, &key, &comment)
            .await?;
        st.image = Some(img);
        Ok(false)
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

/// Removes a build's writable layer (unmounting it) when dropped.
struct RwGuard {
    store: Arc<ImageStore>,
    id: String,
}

impl Drop for RwGuard {
    fn drop(&mut self) {
        if let Err(e) = self.store.layers().remove_rw(&self.id) {
            tracing::warn!(id = %self.id, error = %e, "removing a build layer failed");
        }
    }
}

/// The writable layer's changes as a layer on `top`, or `None` when nothing changed.
fn layer_of(
    store: &ImageStore,
    id: &str,
    top: Option<&berth_image::layer::ChainId>,
) -> Result<Option<ImageLayer>> {
    let upper = store.layers().rw_diff_dir(id)?;
    let empty = std::fs::read_dir(&upper)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if empty {
        return Ok(None);
    }
    let (layer, applied) = store.layer_from_rw(id, top)?;
    if layer.diff_id.to_string() == EMPTY_TAR_DIFF_ID {
        return Ok(None);
    }
    // The layer stays pinned until the image naming it is recorded (the caller does that
    // right away; the pin is released here, and garbage collection runs only at start and
    // on image deletion, which cannot pick a layer that an image is being created with
    // because `create_image` checks its presence under the store lock).
    drop(applied);
    Ok(Some(layer))
}

/// moby's `image.NewChildImage`: the parent's config with this step's changes, one more
/// history entry, and the layer (if any).
#[allow(clippy::too_many_arguments)]
fn child_image(
    store: &ImageStore,
    parent: Option<&Image>,
    config: &ContainerConfig,
    container_config: &ContainerConfig,
    layer: Option<ImageLayer>,
    created_by: &str,
    author: &str,
    arch: &str,
    os: &str,
) -> Result<Arc<Image>> {
    let created = berth_image::config::now_rfc3339();
    let mut history = parent.map(|p| p.config.history.clone()).unwrap_or_default();
    history.push(History {
        created: Some(created.clone()),
        created_by: created_by.to_string(),
        author: author.to_string(),
        comment: String::new(),
        empty_layer: layer.is_none(),
    });
    let mut rootfs = parent.map(|p| p.config.rootfs.clone()).unwrap_or_default();
    rootfs.kind = "layers".into();
    let mut layers = parent.map(|p| p.layers.clone()).unwrap_or_default();
    if let Some(l) = &layer {
        rootfs.diff_ids.push(l.diff_id.clone());
        layers.push(l.clone());
    }
    let cfg = ImageConfig {
        architecture: arch.to_string(),
        os: os.to_string(),
        variant: parent.map(|p| p.config.variant.clone()).unwrap_or_default(),
        created: Some(created),
        author: author.to_string(),
        config: Some(config.clone()),
        container_config: Some(container_config.clone()),
        rootfs,
        history,
        ..Default::default()
    };
    let bytes = cfg
        .to_bytes()
        .map_err(|e| BuildError::internal(format!("encoding the image config: {e}")))?;
    Ok(store.create_image(
        &bytes,
        &layers,
        CreateOptions {
            parent: parent.map(|p| p.id.clone()),
            extra_blobs: Vec::new(),
        },
    )?)
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

/// moby's `normalizeWorkdir`: relative to the previous one, cleaned.
pub fn normalize_workdir(current: &str, requested: &str) -> String {
    let joined = if requested.starts_with('/') {
        requested.to_string()
    } else {
        format!("/{current}/{requested}")
    };
    clean_path(&joined)
}

/// Go's `filepath.Clean` for absolute paths.
pub fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// moby's `normalizeDest`: a relative destination is below WORKDIR; a trailing `/` stays.
pub fn normalize_dest(workdir: &str, dest: &str) -> String {
    if dest.starts_with('/') {
        return dest.to_string();
    }
    let ends_in_slash = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let mut d = clean_path(&format!("/{workdir}/{dest}"));
    if ends_in_slash && d != "/" {
        d.push('/');
    }
    d
}

/// `EXPOSE 80 443/udp 8000-8002` → `80/tcp`, `443/udp`, `8000/tcp`, …
fn expand_port_spec(p: &str) -> Result<Vec<String>> {
    let bad = || BuildError::Step(format!("invalid containerPort: {p}"));
    let (port, proto) = match p.split_once('/') {
        Some((a, b)) => (a, b.to_ascii_lowercase()),
        None => (p, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(BuildError::Step(format!("invalid proto: {proto}")));
    }
    // `ip:host:container` forms keep only the container port.
    let port = port.rsplit(':').next().unwrap_or(port);
    if port.is_empty() {
        return Err(BuildError::Step(format!("no port specified: {p}<empty>")));
    }
    let (a, b) = match port.split_once('-') {
        Some((a, b)) => (a, b),
        None => (port, port),
    };
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok((a..=b).map(|n| format!("{n}/{proto}")).collect())
}

fn validate_signal(s: &str) -> Result<()> {
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Ok(n) = s.parse::<i32>() {
        if n > 0 && n < 65 {
            return Ok(());
        }
        return Err(BuildError::Step(format!("Invalid signal: {s}")));
    }
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if NAMES.contains(&name) || name.starts_with("RTMIN") || name.starts_with("RTMAX") {
        Ok(())
    } else {
        Err(BuildError::Step(format!("Invalid signal: {s}")))
    }
}

/// Go's `%q` of a `[]string`: `["sh" "-c" "x"]`.
pub fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String()`.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let s = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", trim_frac(u as f64 / 1e3))
    } else if u < 1_000_000_000 {
        format!("{}ms", trim_frac(u as f64 / 1e6))
    } else {
        let total_s = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let h = total_s / 3600;
        let m = (total_s % 3600) / 60;
        let sec = total_s % 60;
        let mut secs = format!("{sec}");
        if frac > 0 {
            let f = format!("{frac:09}");
            secs.push('.');
            secs.push_str(f.trim_end_matches('0'));
        }
        if h > 0 {
            format!("{h}h{m}m{secs}s")
        } else if m > 0 {
            format!("{m}m{secs}s")
        } else {
            format!("{secs}s")
        }
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

fn trim_frac(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// The classic builder's `HEALTHCHECK %q` of the config (moby 20.10):
/// `&{["CMD-SHELL" "x"] "5s" "2s" "0s" '\x03'}`.
pub fn healthcheck_text(h: &berth_image::config::Healthcheck) -> String {
    let rune = match char::from_u32(h.retries as u32) {
        Some(c) if !c.is_control() && h.retries >= 0 => format!("'{c}'"),
        _ => format!("'\\x{:02x}'", h.retries.clamp(0, 255)),
    };
    format!(
        "&{{{} {} {} {} {}}}",
        go_quote_list(&h.test),
        go_quote(&go_duration(h.interval)),
        go_quote(&go_duration(h.timeout)),
        go_quote(&go_duration(h.start_period)),
        rune
    )
}

/// `/etc/hosts` of a build container.
fn hosts_file(net: &NetworkNs, extra: &[(String, String)]) -> String {
    let mut s = if *net == NetworkNs::Host {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
    };
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    for (name, addr) in extra {
        s.push_str(&format!("{addr}\t{name}\n"));
    }
    s
}

/// The classic builder's `--chown`: `user[:group]`, a missing group meaning the same string
/// as the user; names looked up in the image's /etc/passwd and /etc/group.
fn resolve_chown(root: std::os::fd::BorrowedFd<'_>, spec: &str) -> Result<(u32, u32)> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() > 2 {
        return Err(BuildError::Step(format!(
            "invalid chown string format: {spec}"
        )));
    }
    let (u, g) = (parts[0], *parts.get(1).unwrap_or(&parts[0]));
    let read = |p: &str| {
        fsops::read_in_root(root, Path::new(p), 16 * 1024 * 1024)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => berth_runtime::user::parse_passwd(&read("/etc/passwd"))
            .iter()
            .find(|e| e.name == u)
            .map(|e| e.uid)
            .ok_or_else(|| {
                BuildError::Step(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find uid for user {u}: no such user: {u}"
                ))
            })?,
    };
    let gid = match g.parse::<u32>() {
        Ok(n) => n,
        Err(_) => berth_runtime::user::parse_group(&read("/etc/group"))
            .iter()
            .find(|e| e.name == g)
            .map(|e| e.gid)
            .ok_or_else(|| {
                BuildError::Step(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                ))
            })?,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_like_moby() {
        assert_eq!(normalize_workdir("", "/opt/app"), "/opt/app");
        assert_eq!(normalize_workdir("/opt", "app"), "/opt/app");
        assert_eq!(normalize_workdir("/opt", "../x/./y/"), "/x/y");
        assert_eq!(normalize_dest("/app", "."), "/app/");
        assert_eq!(normalize_dest("/app", "sub/"), "/app/sub/");
        assert_eq!(normalize_dest("/app", "f"), "/app/f");
        assert_eq!(normalize_dest("", "/abs/"), "/abs/");
    }

    #[test]
    fn texts_like_go() {
        assert_eq!(
            go_quote_list(&["sh".into(), "-c".into(), "echo \"hi\"".into()]),
            r#"["sh" "-c" "echo \"hi\""]"#
        );
        assert_eq!(go_duration(5_000_000_000), "5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        let h = berth_image::config::Healthcheck {
            test: vec![
                "CMD-SHELL".into(),
                "test -f /opt/app/app.txt || exit 1".into(),
            ],
            interval: 5_000_000_000,
            timeout: 2_000_000_000,
            retries: 3,
            ..Default::default()
        };
        assert_eq!(
            healthcheck_text(&h),
            r#"&{["CMD-SHELL" "test -f /opt/app/app.txt || exit 1"] "5s" "2s" "0s" '\x03'}"#
        );
    }

    #[test]
    fn ports_and_signals() {
        assert_eq!(expand_port_spec("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(
            expand_port_spec("8000-8001/UDP").unwrap(),
            vec!["8000/udp", "8001/udp"]
        );
        assert!(expand_port_spec("x").is_err());
        assert!(expand_port_spec("80/icmp").is_err());
        assert!(validate_signal("SIGTERM").is_ok());
        assert!(validate_signal("9").is_ok());
        assert!(validate_signal("SIGNOPE").is_err());
    }

    fn stage(name: Option<&str>, base: &str, reads: &[&str]) -> StageInfo {
        StageInfo {
            name: name.map(str::to_string),
            base: base.into(),
            platform: None,
            text: format!("FROM {base}"),
            reads_from: reads.iter().map(|s| s.to_string()).collect(),
            step_count: 0,
        }
    }

    #[test]
    fn only_needed_stages() {
        let s = vec![
            stage(Some("a"), "busybox", &[]),
            stage(Some("b"), "busybox", &[]),
            stage(Some("c"), "a", &["1"]),
            stage(None, "busybox", &["c"]),
        ];
        assert_eq!(needed_stages(&s, 3), vec![0, 1, 2, 3]);
        assert_eq!(needed_stages(&s, 2), vec![0, 1, 2]);
        assert_eq!(needed_stages(&s, 1), vec![1]);
        let s2 = vec![
            stage(Some("unused"), "busybox", &[]),
            stage(Some("x"), "busybox", &[]),
            stage(None, "x", &[]),
        ];
        assert_eq!(needed_stages(&s2, 2), vec![1, 2]);
    }
}

/// What a step's `RUN --mount`s become.
#[derive(Default)]
struct PreparedMounts {
    binds: Vec<berth_runtime::spec::BindMount>,
    tmpfs: Vec<berth_runtime::spec::TmpfsMount>,
    /// Mount targets (absolute), to remove from the layer when the run created them.
    targets: Vec<String>,
    /// Cache-key material: the mounts and, for binds, the digest of what they show.
    key: String,
    /// Stage or image filesystems mounted for `from=`, kept until the step ends.
    _sources: Vec<RwGuard>,
}

/// Removes the mount points the runtime created for `stubs` (targets that did not exist
/// before the run): they are not part of the step's result, as in BuildKit. Only empty
/// directories and empty files are removed.
fn remove_mount_stubs(store: &ImageStore, id: &str, stubs: &[String]) {
    let Ok(merged) = store.layers().rw_merged(id) else {
        return;
    };
    let Ok(root) = fsops::open_root(&merged) else {
        return;
    };
    for t in stubs {
        let Some((parent, name)) = fsops::split_last(Path::new(t)) else {
            continue;
        };
        let Ok(dir) = fsops::open_in_root(
            fsops::fd(&root),
            &parent,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        ) else {
            continue;
        };
        match rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st)
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory =>
            {
                let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::REMOVEDIR);
            }
            Ok(st) if st.st_size == 0 => {
                let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty());
            }
            _ => {}
        }
    }
}

impl Shared {
    async fn prepare_mounts(
        &self,
        stage: usize,
        mounts: &[crate::step::RunMount],
        ctx: &StepCtx<'_>,
    ) -> Result<PreparedMounts> {
        use crate::step::RunMount;
        use berth_runtime::spec::{BindMount, TmpfsMount};
        let mut out = PreparedMounts::default();
        for m in mounts {
            match m {
                RunMount::Tmpfs { target, size } => {
                    out.key.push_str(&format!("tmpfs:{target}:{size:?};"));
                    out.targets.push(target.clone());
                    out.tmpfs.push(TmpfsMount {
                        destination: target.clone(),
                        options: size.map(|s| format!("size={s}")).unwrap_or_default(),
                    });
                }
                RunMount::Cache {
                    target,
                    id,
                    readonly,
                    uid,
                    gid,
                    mode,
                } => {
                    use sha2::Digest as _;
                    out.key
                        .push_str(&format!("cache:{target}:{id}:{readonly};"));
                    let dir = self
                        .builder
                        .store
                        .data_root()
                        .join("builder")
                        .join("mounts")
                        .join(hex::encode(sha2::Sha256::digest(id.as_bytes())));
                    if !dir.exists() {
                        std::fs::create_dir_all(&dir)?;
                        use std::os::unix::fs::PermissionsExt;
                        std::os::unix::fs::chown(&dir, Some(*uid), Some(*gid))?;
                        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(*mode))?;
                    }
                    out.targets.push(target.clone());
                    out.binds.push(BindMount {
                        source: dir,
                        destination: target.clone(),
                        readonly: *readonly,
                        propagation: None,
                        non_recursive: false,
                    });
                }
                RunMount::Bind {
                    target,
                    source,
                    from,
                    readwrite,
                } => {
                    if *readwrite {
                        return Err(BuildError::Step(
                            "RUN --mount=type=bind,rw is not implemented in berth yet (read-only binds are)".into(),
                        ));
                    }
                    let (root_path, guard) = match from {
                        None => (self.ctx.path(), None),
                        Some(f) => {
                            let img = self
                                .image_for(f, stage, self.opts.platform.clone(), ctx.sink)
                                .await?;
                            let (g, p) = self.mount_image(img.as_deref()).await?;
                            (p, Some(g))
                        }
                    };
                    let root = fsops::open_root(&root_path)?;
                    let src = copy::clean_source(source);
                    let src_path = PathBuf::from(if src.is_empty() { "." } else { &src });
                    let fd =
                        fsops::open_in_root(fsops::fd(&root), &src_path, rustix::fs::OFlags::PATH)
                            .map_err(|e| {
                                BuildError::Step(format!(
                                    "failed to compute cache key: {source} not found: {}",
                                    std::io::Error::from(e)
                                ))
                            })?;
                    // The resolved path (inside the root, no symlinks left in it).
                    let real = std::fs::read_link(format!(
                        "/proc/self/fd/{}",
                        std::os::fd::AsRawFd::as_raw_fd(&fd)
                    ))?;
                    if !real.starts_with(&root_path) {
                        return Err(BuildError::Step(format!(
                            "RUN --mount source {source} resolves outside its root"
                        )));
                    }
                    let digest =
                        copy::source_hash(fsops::fd(&root), &src_path, &|_| None, &|_, _| {})?;
                    out.key
                        .push_str(&format!("bind:{target}:{from:?}:{digest};"));
                    out.targets.push(target.clone());
                    out.binds.push(BindMount {
                        source: real,
                        destination: target.clone(),
                        readonly: true,
                        propagation: None,
                        non_recursive: false,
                    });
                    if let Some(g) = guard {
                        out._sources.push(g);
                    }
                }
                RunMount::Secret {
                    id,
                    target,
                    required,
                    ..
                } => {
                    out.key.push_str(&format!("secret:{id}:{target};"));
                    match self.opts.secrets.get(id) {
                        Some(path) => {
                            out.targets.push(target.clone());
                            out.binds.push(BindMount {
                                source: path.clone(),
                                destination: target.clone(),
                                readonly: true,
                                propagation: None,
                                non_recursive: false,
                            });
                        }
                        None if *required => {
                            return Err(BuildError::Step(format!("secret {id}: not found")))
                        }
                        None => {}
                    }
                }
            }
        }
        Ok(out)
    }

    /// Mounts (read-write layer, discarded) an image's filesystem to read from.
    async fn mount_image(&self, img: Option<&Image>) -> Result<(RwGuard, PathBuf)> {
        let top = img.and_then(|i| i.top_chain_id().cloned());
        let store = self.builder.store.clone();
        tokio::task::spawn_blocking(move || -> Result<(RwGuard, PathBuf)> {
            let id = format!("{BUILD_ID_PREFIX}{}", random_hex(32));
            store.layers().create_rw_with(&id, top.as_ref(), false)?;
            let g = RwGuard {
                store: store.clone(),
                id: id.clone(),
            };
            let p = store.layers().mount_rw(&id)?;
            Ok((g, p))
        })
        .await
        .map_err(BuildError::internal)?
    }
}
