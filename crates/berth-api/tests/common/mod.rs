//! Test support: an in-memory recording `Backend` (a small container simulator, not a stub),
//! a server on a temp unix socket, and a minimal raw HTTP/1.1 response reader.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::models::*;
use berth_api::*;
use bytes::Bytes;
use futures_util::{stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};

// ---------------------------------------------------------------------------------------------
// Fake backend
// ---------------------------------------------------------------------------------------------

/// A simulated container. Its "process" is interpreted from `Cmd`:
/// `echo ARGS…` prints and exits 0, `sh -c "exit N"` exits N, `cat` echoes stdin until EOF,
/// anything else runs until stopped (exit 143) or killed (exit 137).
pub struct Ctr {
    pub id: String,
    pub name: String,
    pub body: ContainerCreateBody,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub exited: watch::Sender<Option<i64>>,
    pub removed: watch::Sender<bool>,
    pub attached: Vec<mpsc::UnboundedSender<Bytes>>,
    pub stdin: Option<mpsc::UnboundedSender<Bytes>>,
    pub stdin_rx: Option<mpsc::UnboundedReceiver<Bytes>>,
    pub output: Vec<Bytes>,
}

pub struct Exec {
    pub container: String,
    pub config: ExecConfig,
    pub exit_code: Option<i64>,
}

#[derive(Default)]
pub struct State {
    pub containers: BTreeMap<String, Ctr>,
    pub execs: BTreeMap<String, Exec>,
}

#[derive(Default)]
pub struct Fake {
    pub state: Mutex<State>,
    /// Every call, as `operation detail`.
    pub calls: Mutex<Vec<String>>,
    pub auths: Mutex<Vec<AuthConfig>>,
    pub last_version: Mutex<Option<ApiVersion>>,
    pub wait_dropped: Arc<AtomicBool>,
    counter: AtomicU64,
}

/// An 8-byte stdcopy header + payload (stream 1 stdout, 2 stderr).
pub fn frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut v = vec![stream, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Fake {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn record(&self, ctx: RequestContext, call: String) {
        *self.last_version.lock().unwrap() = Some(ctx.api_version);
        self.calls.lock().unwrap().push(call);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        format!("{n:064x}")
    }

    /// Resolves a full id, a unique id prefix or a name (with or without `/`).
    fn resolve(state: &State, key: &str) -> Result<String, ApiError> {
        let key = key.trim_start_matches('/');
        if let Some(c) = state
            .containers
            .values()
            .find(|c| c.id == key || c.name == key)
        {
            return Ok(c.id.clone());
        }
        let matches: Vec<_> = state
            .containers
            .keys()
            .filter(|id| id.starts_with(key))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(ApiError::not_found(format!("No such container: {key}"))),
        }
    }

    /// The simulated process of a started container.
    fn run_process(self: &Arc<Self>, id: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let (cmd, stdin_rx) = {
                let mut st = this.state.lock().unwrap();
                let c = st.containers.get_mut(&id).unwrap();
                (
                    c.body.config.cmd.clone().unwrap_or_default(),
                    c.stdin_rx.take(),
                )
            };
            let emit = |bytes: Bytes| {
                let mut st = this.state.lock().unwrap();
                let c = st.containers.get_mut(&id).unwrap();
                c.output.push(bytes.clone());
                c.attached.retain(|tx| tx.send(bytes.clone()).is_ok());
            };
            let code = match cmd.first().map(String::as_str) {
                Some("echo") => {
                    emit(frame(1, format!("{}\n", cmd[1..].join(" ")).as_bytes()));
                    0
                }
                Some("sh") if cmd.get(2).is_some_and(|s| s.starts_with("exit ")) => {
                    cmd[2][5..].trim().parse().unwrap_or(1)
                }
                Some("cat") => {
                    if let Some(mut rx) = stdin_rx {
                        while let Some(chunk) = rx.recv().await {
                            emit(frame(1, &chunk));
                        }
                    }
                    0
                }
                _ => return, // runs until stop/kill
            };
            this.exit(&id, code);
        });
    }

    fn exit(&self, id: &str, code: i64) {
        let mut st = self.state.lock().unwrap();
        let auto_remove = {
            let Some(c) = st.containers.get_mut(id) else {
                return;
            };
            c.running = false;
            c.exit_code = Some(code);
            c.attached.clear(); // closes attach streams
            let _ = c.exited.send(Some(code));
            c.body.host_config.as_ref().is_some_and(|h| h.auto_remove)
        };
        if auto_remove {
            if let Some(c) = st.containers.remove(id) {
                let _ = c.removed.send(true);
            }
        }
    }

    fn summary(c: &Ctr) -> ContainerSummary {
        ContainerSummary {
            id: c.id.clone(),
            names: vec![format!("/{}", c.name)],
            image: c.body.config.image.clone(),
            image_id: "sha256:e2ddf69e46c83fbbdb927db20840392598e587bdebd069fed159fbc2e64bb4ec"
                .into(),
            command: c.body.config.cmd.clone().unwrap_or_default().join(" "),
            created: 1795799010,
            ports: vec![],
            labels: c.body.config.labels.clone(),
            state: if c.running {
                "running"
            } else if c.started {
                "exited"
            } else {
                "created"
            }
            .into(),
            status: match (c.running, c.exit_code) {
                (true, _) => "Up Less than a second".into(),
                (false, Some(code)) => format!("Exited ({code}) Less than a second ago"),
                (false, None) => "Created".into(),
            },
            host_config: SummaryHostConfig {
                network_mode: "default".into(),
            },
            network_settings: SummaryNetworkSettings {
                networks: Some(BTreeMap::new()),
            },
            mounts: vec![],
            ..Default::default()
        }
    }
}

/// The `Backend` implementation (a newtype because of the orphan rule).
#[derive(Clone)]
pub struct FakeBackend(pub Arc<Fake>);

impl std::ops::Deref for FakeBackend {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.0
    }
}

impl Backend for FakeBackend {
    async fn version(&self, ctx: RequestContext) -> Result<SystemVersion, ApiError> {
        self.record(ctx, "version".into());
        Ok(SystemVersion {
            platform: Some(PlatformName {
                name: "berth".into(),
            }),
            components: Some(vec![ComponentVersion {
                name: "Engine".into(),
                version: "0.1.0-test".into(),
                details: Some(
                    [
                        ("ApiVersion", "1.43"),
                        ("MinAPIVersion", "1.24"),
                        ("GitCommit", "abc1234"),
                        ("Os", "linux"),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ),
            }]),
            version: "0.1.0-test".into(),
            api_version: "1.43".into(),
            min_api_version: "1.24".into(),
            git_commit: "abc1234".into(),
            go_version: "rust".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            kernel_version: "6.18".into(),
            experimental: false,
            build_time: "2026-11-27T00:00:00.000000000+00:00".into(),
        })
    }

    async fn info(&self, ctx: RequestContext) -> Result<SystemInfo, ApiError> {
        self.record(ctx, "info".into());
        Ok(SystemInfo {
            id: "TEST".into(),
            name: "fake".into(),
            os_type: "linux".into(),
            ncpu: 2,
            ..Default::default()
        })
    }

    async fn auth(
        &self,
        ctx: RequestContext,
        config: AuthConfig,
    ) -> Result<AuthResponse, ApiError> {
        self.record(ctx, format!("auth {}", config.username));
        let ok = config.password == "tracepass123";
        self.auths.lock().unwrap().push(config);
        if ok {
            Ok(AuthResponse {
                identity_token: String::new(),
                status: "Login Succeeded".into(),
            })
        } else {
            Err(ApiError::internal(
                "login attempt to http://localhost:5000/v2/ failed with status: 401 Unauthorized",
            ))
        }
    }

    async fn events(
        &self,
        ctx: RequestContext,
        opts: EventsOptions,
    ) -> Result<EventStream, ApiError> {
        self.record(
            ctx,
            format!(
                "events since={:?} until={:?} filters={}",
                opts.since.map(|t| t.timestamp()),
                opts.until.map(|t| t.timestamp()),
                opts.filters.to_json()
            ),
        );
        let ev = EventMessage {
            status: "die".into(),
            id: "abc".into(),
            from: "busybox".into(),
            kind: "container".into(),
            action: "die".into(),
            actor: EventActor {
                id: "abc".into(),
                attributes: Some([("exitCode".to_string(), "137".to_string())].into()),
            },
            scope: "local".into(),
            time: 1795800223,
            time_nano: 1795800223108597547,
        };
        Ok(Box::pin(stream::iter(vec![ev.clone(), ev])))
    }

    async fn container_create(
        &self,
        ctx: RequestContext,
        name: Option<String>,
        platform: Option<String>,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, ApiError> {
        self.record(
            ctx,
            format!(
                "container_create name={name:?} platform={platform:?} image={}",
                body.config.image
            ),
        );
        if body.config.image.starts_with("nosuchimage") {
            return Err(ApiError::not_found(format!(
                "No such image: {}",
                body.config.image
            )));
        }
        let mut st = self.state.lock().unwrap();
        let id = self.next_id();
        let name = name.unwrap_or_else(|| format!("ctr{}", &id[60..]));
        if let Some(other) = st.containers.values().find(|c| c.name == name) {
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
        st.containers.insert(
            id.clone(),
            Ctr {
                id: id.clone(),
                name,
                body,
                running: false,
                started: false,
                exit_code: None,
                exited: watch::channel(None).0,
                removed: watch::channel(false).0,
                attached: vec![],
                stdin: Some(stdin_tx),
                stdin_rx: Some(stdin_rx),
                output: vec![],
            },
        );
        Ok(ContainerCreateResponse {
            id,
            warnings: vec![],
        })
    }

    async fn container_list(
        &self,
        ctx: RequestContext,
        opts: ContainerListOptions,
    ) -> Result<Vec<ContainerSummary>, ApiError> {
        self.record(
            ctx,
            format!(
                "container_list all={} limit={:?} size={} filters={}",
                opts.all,
                opts.limit,
                opts.size,
                opts.filters.to_json()
            ),
        );
        opts.filters.validate(&["name", "label", "status", "id"])?;
        let st = self.state.lock().unwrap();
        Ok(st
            .containers
            .values()
            .filter(|c| opts.all || c.running)
            .filter(|c| opts.filters.get("name").iter().all(|n| c.name.contains(n)))
            .filter(|c| {
                opts.filters
                    .match_kv_list("label", &c.body.config.labels.clone().unwrap_or_default())
            })
            .map(Fake::summary)
            .collect())
    }

    async fn container_inspect(
        &self,
        ctx: RequestContext,
        id: String,
        size: bool,
    ) -> Result<ContainerInspect, ApiError> {
        self.record(ctx, format!("container_inspect {id} size={size}"));
        let st = self.state.lock().unwrap();
        let id = Fake::resolve(&st, &id)?;
        let c = &st.containers[&id];
        Ok(ContainerInspect {
            id: c.id.clone(),
            name: format!("/{}", c.name),
            path: c
                .body
                .config
                .cmd
                .clone()
                .unwrap_or_default()
                .first()
                .cloned()
                .unwrap_or_default(),
            state: Some(ContainerState {
                status: if c.running { "running" } else { "exited" }.into(),
                running: c.running,
                exit_code: c.exit_code.unwrap_or(0),
                ..Default::default()
            }),
            config: Some(c.body.config.clone()),
            host_config: c.body.host_config.clone(),
            ..Default::default()
        })
    }

    async fn container_start(
        &self,
        ctx: RequestContext,
        id: String,
        _keys: Option<String>,
    ) -> Result<ChangeOutcome, ApiError> {
        self.record(ctx, format!("container_start {id}"));
        let id = {
            let mut st = self.state.lock().unwrap();
            let id = Fake::resolve(&st, &id)?;
            let c = st.containers.get_mut(&id).unwrap();
            if c.running {
                return Ok(ChangeOutcome::NotModified);
            }
            c.running = true;
            c.started = true;
            id
        };
        self.0.run_process(id);
        Ok(ChangeOutcome::Done)
    }

    async fn container_stop(
        &self,
        ctx: RequestContext,
        id: String,
        signal: Option<String>,
        t: Option<i64>,
    ) -> Result<StopOutcome, ApiError> {
        self.record(
            ctx,
            format!("container_stop {id} signal={signal:?} t={t:?}"),
        );
        let id = {
            let st = self.state.lock().unwrap();
            let id = Fake::resolve(&st, &id)?;
            if !st.containers[&id].running {
                return Ok(StopOutcome::NotModified);
            }
            id
        };
        self.exit(&id, 143);
        Ok(StopOutcome::Done)
    }

    async fn container_kill(
        &self,
        ctx: RequestContext,
        id: String,
        signal: Option<String>,
    ) -> Result<(), ApiError> {
        self.record(ctx, format!("container_kill {id} signal={signal:?}"));
        let id = {
            let st = self.state.lock().unwrap();
            let id = Fake::resolve(&st, &id)?;
            if !st.containers[&id].running {
                return Err(ApiError::conflict(format!(
                    "Cannot kill container: {}: Container {id} is not running",
                    st.containers[&id].name
                )));
            }
            id
        };
        self.exit(&id, 137);
        Ok(())
    }

    async fn container_wait(
        &self,
        ctx: RequestContext,
        id: String,
        condition: WaitCondition,
    ) -> Result<WaitFuture, ApiError> {
        self.record(ctx, format!("container_wait {id} {condition:?}"));
        let (mut exited, mut removed, running, last) = {
            let st = self.state.lock().unwrap();
            let id = Fake::resolve(&st, &id)?;
            let c = &st.containers[&id];
            (
                c.exited.subscribe(),
                c.removed.subscribe(),
                c.running,
                c.exit_code,
            )
        };
        let guard = SetOnDrop(self.wait_dropped.clone());
        Ok(Box::pin(async move {
            let _guard = guard;
            if condition == WaitCondition::NotRunning && !running {
                return ContainerWaitResponse {
                    error: None,
                    status_code: last.unwrap_or(0),
                };
            }
            exited.borrow_and_update();
            let code = loop {
                if exited.changed().await.is_err() {
                    break -1;
                }
                if let Some(code) = *exited.borrow() {
                    break code;
                }
            };
            if condition == WaitCondition::Removed {
                let _ = removed.wait_for(|r| *r).await;
            }
            ContainerWaitResponse {
                error: None,
                status_code: code,
            }
        }))
    }

    async fn container_remove(
        &self,
        ctx: RequestContext,
        id: String,
        opts: ContainerRemoveOptions,
    ) -> Result<(), ApiError> {
        self.record(ctx, format!("container_remove {id} {opts:?}"));
        let mut st = self.state.lock().unwrap();
        let id = Fake::resolve(&st, &id)?;
        if st.containers[&id].running && !opts.force {
            return Err(ApiError::conflict(format!(
                "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
            )));
        }
        if let Some(c) = st.containers.remove(&id) {
            let _ = c.removed.send(true);
        }
        Ok(())
    }

    async fn container_logs(
        &self,
        ctx: RequestContext,
        id: String,
        opts: LogsOptions,
    ) -> Result<ByteStream, ApiError> {
        self.record(ctx, format!("container_logs {id} {opts:?}"));
        let st = self.state.lock().unwrap();
        let id = Fake::resolve(&st, &id)?;
        let mut out = st.containers[&id].output.clone();
        if let Some(n) = opts.tail {
            let skip = out.len().saturating_sub(n as usize);
            out.drain(..skip);
        }
        Ok(Box::pin(stream::iter(out.into_iter().map(Ok))))
    }

    async fn container_attach(
        &self,
        ctx: RequestContext,
        id: String,
        opts: AttachOptions,
    ) -> Result<HijackHandler, ApiError> {
        self.record(ctx, format!("container_attach {id} {opts:?}"));
        let (out_rx, stdin_tx) = {
            let mut st = self.state.lock().unwrap();
            let id = Fake::resolve(&st, &id)?;
            let c = st.containers.get_mut(&id).unwrap();
            let (tx, rx) = mpsc::unbounded_channel();
            c.attached.push(tx);
            (rx, if opts.stdin { c.stdin.take() } else { None })
        };
        let this = self.clone();
        Ok(Box::new(move |conn: Hijacked| {
            Box::pin(async move {
                this.calls
                    .lock()
                    .unwrap()
                    .push(format!("attach_io raw_socket={}", conn.is_raw_socket()));
                let (mut rd, mut wr) = tokio::io::split(conn);
                // stdin pump: a read EOF (client half-close) only ends stdin, never output.
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match rd.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if let Some(tx) = &stdin_tx {
                                    let _ = tx.send(Bytes::copy_from_slice(&buf[..n]));
                                }
                            }
                        }
                    }
                    drop(stdin_tx);
                });
                let mut out_rx = out_rx;
                while let Some(chunk) = out_rx.recv().await {
                    if wr.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                let _ = wr.shutdown().await;
            })
        }))
    }

    async fn container_resize(
        &self,
        ctx: RequestContext,
        id: String,
        h: u16,
        w: u16,
    ) -> Result<(), ApiError> {
        self.record(ctx, format!("container_resize {id} {h}x{w}"));
        Ok(())
    }

    async fn exec_create(
        &self,
        ctx: RequestContext,
        container: String,
        config: ExecConfig,
    ) -> Result<IdResponse, ApiError> {
        self.record(ctx, format!("exec_create {container} {:?}", config.cmd));
        let mut st = self.state.lock().unwrap();
        let cid = Fake::resolve(&st, &container)?;
        if !st.containers[&cid].running {
            return Err(ApiError::conflict(format!(
                "Container {cid} is not running"
            )));
        }
        let id = self.next_id();
        st.execs.insert(
            id.clone(),
            Exec {
                container: cid,
                config,
                exit_code: None,
            },
        );
        Ok(IdResponse { id })
    }

    async fn exec_start(
        &self,
        ctx: RequestContext,
        id: String,
        config: ExecStartConfig,
    ) -> Result<ExecStartOutcome, ApiError> {
        self.record(ctx, format!("exec_start {id} {config:?}"));
        let cmd = {
            let st = self.state.lock().unwrap();
            let e = st
                .execs
                .get(&id)
                .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))?;
            e.config.cmd.clone().unwrap_or_default()
        };
        let this = self.clone();
        let run = move || {
            let code = if cmd.first().map(String::as_str) == Some("fail") {
                5
            } else {
                0
            };
            this.state
                .lock()
                .unwrap()
                .execs
                .get_mut(&id)
                .unwrap()
                .exit_code = Some(code);
            (frame(1, format!("{}\n", cmd.join(" ")).as_bytes()), code)
        };
        if config.detach {
            run();
            return Ok(ExecStartOutcome::Detached);
        }
        Ok(ExecStartOutcome::Attached(Box::new(
            move |mut conn: Hijacked| {
                Box::pin(async move {
                    let (out, _) = run();
                    let _ = conn.write_all(&out).await;
                    let _ = conn.shutdown().await;
                })
            },
        )))
    }

    async fn exec_inspect(&self, ctx: RequestContext, id: String) -> Result<ExecInspect, ApiError> {
        self.record(ctx, format!("exec_inspect {id}"));
        let st = self.state.lock().unwrap();
        let e = st
            .execs
            .get(&id)
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))?;
        Ok(ExecInspect {
            id: id.clone(),
            running: false,
            exit_code: e.exit_code,
            container_id: e.container.clone(),
            open_stdout: e.config.attach_stdout,
            open_stderr: e.config.attach_stderr,
            ..Default::default()
        })
    }

    async fn image_list(
        &self,
        ctx: RequestContext,
        opts: ImageListOptions,
    ) -> Result<Vec<ImageSummary>, ApiError> {
        self.record(
            ctx,
            format!(
                "image_list all={} filters={}",
                opts.all,
                opts.filters.to_json()
            ),
        );
        opts.filters
            .validate(&["reference", "dangling", "before", "since", "label"])?;
        opts.filters.bool_value("dangling")?;
        Ok(vec![ImageSummary {
            containers: -1,
            created: 1795798791,
            id: "sha256:e2ddf69e46c83fbbdb927db20840392598e587bdebd069fed159fbc2e64bb4ec".into(),
            repo_tags: Some(vec!["busybox:latest".into()]),
            shared_size: -1,
            size: 1984132,
            virtual_size: 1984132,
            ..Default::default()
        }])
    }

    async fn image_inspect(
        &self,
        ctx: RequestContext,
        name: String,
    ) -> Result<ImageInspect, ApiError> {
        self.record(ctx, format!("image_inspect {name}"));
        Err(ApiError::not_found(format!(
            "no such image: {name}: No such image: {name}:latest"
        )))
    }

    async fn image_tag(
        &self,
        ctx: RequestContext,
        name: String,
        repo: String,
        tag: Option<String>,
    ) -> Result<(), ApiError> {
        self.record(ctx, format!("image_tag {name} {repo} {tag:?}"));
        Ok(())
    }

    async fn image_delete(
        &self,
        ctx: RequestContext,
        name: String,
        opts: ImageDeleteOptions,
    ) -> Result<Vec<ImageDeleteResponseItem>, ApiError> {
        self.record(ctx, format!("image_delete {name} {opts:?}"));
        Ok(vec![
            ImageDeleteResponseItem::untagged(format!("{name}:latest")),
            ImageDeleteResponseItem::deleted("sha256:abc"),
        ])
    }

    async fn image_create(
        &self,
        ctx: RequestContext,
        request: ImageCreateRequest,
    ) -> Result<ProgressStream, ApiError> {
        self.record(ctx, format!("image_create {request:?}"));
        match request {
            ImageCreateRequest::Pull {
                from_image,
                tag,
                auth,
                ..
            } => {
                self.auths.lock().unwrap().push(auth);
                let tag = tag.unwrap_or_else(|| "latest".into());
                if tag == "nosuchtag" {
                    return Ok(Box::pin(stream::iter(vec![Err(ApiError::not_found(format!(
                        "manifest for {from_image}:{tag} not found: manifest unknown: manifest unknown"
                    )))])));
                }
                Ok(Box::pin(stream::iter(vec![
                    Ok(JsonMessage {
                        status: Some(format!("Pulling from {from_image}")),
                        id: Some(tag.clone()),
                        ..Default::default()
                    }),
                    Ok(JsonMessage::status_with_id("Pull complete", "83d547c87a80")),
                    Ok(JsonMessage::status(format!(
                        "Status: Downloaded newer image for {from_image}:{tag}"
                    ))),
                ])))
            }
            ImageCreateRequest::Import {
                body,
                repo,
                changes,
                ..
            } => {
                let total: usize = body
                    .map(|c| c.map(|b| b.len()).unwrap_or(0))
                    .fold(0, |a, n| async move { a + n })
                    .await;
                Ok(Box::pin(stream::iter(vec![Ok(JsonMessage::status(
                    format!(
                        "imported {total} bytes as {repo:?} with {} changes",
                        changes.len()
                    ),
                ))])))
            }
        }
    }

    async fn image_push(
        &self,
        ctx: RequestContext,
        name: String,
        tag: Option<String>,
        auth: AuthConfig,
    ) -> Result<ProgressStream, ApiError> {
        self.record(ctx, format!("image_push {name} {tag:?}"));
        let anonymous = auth.username.is_empty();
        self.auths.lock().unwrap().push(auth);
        let mut items = vec![
            Ok(JsonMessage::status(format!(
                "The push refers to repository [{name}]"
            ))),
            Ok(JsonMessage::status_with_id("Preparing", "dd8c236043f7")),
        ];
        if anonymous {
            items.push(Err(ApiError::internal("no basic auth credentials")));
            items.push(Ok(JsonMessage::status("never sent")));
        } else {
            items.push(Ok(JsonMessage::status_with_id("Pushed", "dd8c236043f7")));
            items.push(Ok(JsonMessage::aux(
                serde_json::json!({"Tag": "latest", "Digest": "sha256:5dca", "Size": 527}),
            )));
        }
        Ok(Box::pin(stream::iter(items)))
    }

    async fn images_load(
        &self,
        ctx: RequestContext,
        body: BodyStream,
        quiet: bool,
    ) -> Result<ProgressStream, ApiError> {
        self.record(ctx, format!("images_load quiet={quiet}"));
        let data: Vec<u8> = body.map(|c| c.unwrap().to_vec()).concat().await;
        Ok(Box::pin(stream::iter(vec![Ok(JsonMessage::stream(
            format!("Loaded image: {} bytes\n", data.len()),
        ))])))
    }

    async fn images_get(
        &self,
        ctx: RequestContext,
        names: Vec<String>,
    ) -> Result<ByteStream, ApiError> {
        self.record(ctx, format!("images_get {names:?}"));
        Ok(Box::pin(stream::iter(vec![Ok(Bytes::from(format!(
            "TAR:{}",
            names.join(",")
        )))])))
    }

    async fn commit(
        &self,
        ctx: RequestContext,
        opts: CommitOptions,
    ) -> Result<IdResponse, ApiError> {
        self.record(ctx, format!("commit {opts:?}"));
        Ok(IdResponse {
            id: "sha256:31c2930e2f4cb72c79911037907cd652e974b9383aa12f7493bcdcf4d4102594".into(),
        })
    }

    async fn network_inspect(
        &self,
        ctx: RequestContext,
        id: String,
        _verbose: bool,
        _scope: Option<String>,
    ) -> Result<NetworkResource, ApiError> {
        self.record(ctx, format!("network_inspect {id}"));
        Err(ApiError::not_found(format!("network {id} not found")))
    }
}

/// A backend that implements nothing: every operation is the default 501.
pub struct Nothing;
impl Backend for Nothing {}

// ---------------------------------------------------------------------------------------------
// Server on a temp socket
// ---------------------------------------------------------------------------------------------

/// A running server; shuts down (and the temp dir goes away) on drop.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl TestServer {
    pub async fn start<B: Backend>(backend: B) -> Self {
        Self::start_with_grace(backend, berth_api::server::SHUTDOWN_GRACE).await
    }

    pub async fn start_with_grace<B: Backend>(backend: B, grace: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("api.sock");
        let listener = berth_api::server::Listener::bind_unix(&sock).unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(berth_api::server::serve_with_grace(
            vec![listener],
            Arc::new(backend),
            async {
                let _ = rx.await;
            },
            grace,
        ));
        Self {
            dir,
            sock,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub async fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.sock).await.unwrap()
    }

    /// Asks the server to stop and waits for `serve` to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// The status line and headers exactly as sent, `\r\n`-separated, without the blank line.
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// For chunked bodies: the raw chunked bytes as sent.
    pub raw_body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

pub const T: Duration = Duration::from_secs(10);

async fn read_byte(s: &mut UnixStream) -> Option<u8> {
    let mut b = [0u8; 1];
    match tokio::time::timeout(T, s.read(&mut b))
        .await
        .expect("timed out reading")
    {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

/// Reads a response head (up to the blank line) byte by byte, so nothing after it is consumed.
pub async fn read_head(s: &mut UnixStream) -> (u16, String, Vec<(String, String)>) {
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        match read_byte(s).await {
            Some(b) => buf.push(b),
            None => panic!(
                "connection closed in the head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    let head = String::from_utf8(buf[..buf.len() - 4].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    (status, head, headers)
}

async fn read_line(s: &mut UnixStream, raw: &mut Vec<u8>) -> String {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.push(read_byte(s).await.expect("closed in a chunk header"));
    }
    raw.extend_from_slice(&line);
    String::from_utf8(line[..line.len() - 2].to_vec()).unwrap()
}

/// Reads one chunk of a chunked body; `None` at the last (0) chunk.
pub async fn read_chunk(s: &mut UnixStream, raw: &mut Vec<u8>) -> Option<Vec<u8>> {
    let size = usize::from_str_radix(read_line(s, raw).await.trim(), 16).unwrap();
    if size == 0 {
        let trailer = read_line(s, raw).await;
        assert_eq!(trailer, "");
        return None;
    }
    let mut data = vec![0u8; size];
    tokio::time::timeout(T, s.read_exact(&mut data))
        .await
        .unwrap()
        .unwrap();
    raw.extend_from_slice(&data);
    assert_eq!(read_line(s, raw).await, "");
    Some(data)
}

/// Reads a complete response (Content-Length, chunked, or none for 1xx/204/304/HEAD).
pub async fn read_response(s: &mut UnixStream, head_request: bool) -> RawResponse {
    let (status, head, headers) = read_head(s).await;
    let mut resp = RawResponse {
        status,
        head,
        headers,
        body: vec![],
        raw_body: vec![],
    };
    if head_request || status == 101 || status == 204 || status == 304 {
        return resp;
    }
    if let Some(len) = resp.header("content-length") {
        let mut body = vec![0u8; len.parse().unwrap()];
        tokio::time::timeout(T, s.read_exact(&mut body))
            .await
            .unwrap()
            .unwrap();
        resp.body = body;
    } else if resp.header("transfer-encoding") == Some("chunked") {
        let mut raw = Vec::new();
        while let Some(chunk) = read_chunk(s, &mut raw).await {
            resp.body.extend_from_slice(&chunk);
        }
        resp.raw_body = raw;
    } else {
        tokio::time::timeout(T, s.read_to_end(&mut resp.body))
            .await
            .unwrap()
            .unwrap();
    }
    resp
}

/// Sends `request` on a new connection and reads one response.
pub async fn roundtrip(server: &TestServer, request: &[u8]) -> RawResponse {
    let mut s = server.connect().await;
    s.write_all(request).await.unwrap();
    read_response(&mut s, request.starts_with(b"HEAD ")).await
}

/// Builds a request the way Docker CLI 28 does.
pub fn cli_request(method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n");
    match body {
        Some(b) => req.push_str(&format!(
            "Content-Length: {}\r\nContent-Type: application/json\r\n\r\n{b}",
            b.len()
        )),
        None if method == "POST" => req.push_str("Content-Length: 0\r\n\r\n"),
        None => req.push_str("\r\n"),
    }
    req.into_bytes()
}
