//! `POST /build` (the classic builder's protocol): the engine's side of `berth-build`.
//!
//! The context streams into the store's spool as it arrives; the Dockerfile is parsed before
//! any output (a syntax error is a `400`); then the build runs as a task whose progress is the
//! response: `{"stream":…}` lines in the classic builder's words, `{"aux":{"ID":…}}` per
//! stage, and a final `errorDetail` (with the exit code of a failed `RUN`) on failure. When the
//! client goes away the response stream is dropped, which cancels the build: running steps
//! are killed and their layers removed. `FROM` images missing locally are pulled with the
//! credentials of `X-Registry-Config`.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::models::{AuthConfig, JsonError, JsonMessage};
use berth_api::{ApiError, BodyStream, BuildOptions, ProgressStream};
use berth_build::builder::{Builder, Host};
use berth_build::frontend::DockerfileFrontend;
use berth_build::progress::Event;
use berth_build::run::{RunEnv, BUILD_ID_PREFIX};
use berth_build::{BuildContext, BuildError};
use berth_image::store::Image;
use berth_image::Reference;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::images::{api_err, join_err};
use crate::Engine;

/// Pulls for `FROM` through the engine's distribution code.
struct EngineHost {
    engine: std::sync::Weak<Engine>,
    auths: BTreeMap<String, AuthConfig>,
}

fn auth_for(auths: &BTreeMap<String, AuthConfig>, reference: &str) -> AuthConfig {
    let domain = Reference::parse_normalized(reference)
        .map(|r| r.domain().to_string())
        .unwrap_or_default();
    let mut keys = vec![
        domain.clone(),
        format!("https://{domain}"),
        format!("http://{domain}"),
    ];
    if domain == "docker.io" {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
    }
    for k in keys {
        if let Some(a) = auths.get(&k) {
            return a.clone();
        }
    }
    AuthConfig::default()
}

impl Host for EngineHost {
    fn pull(
        &self,
        reference: String,
        platform: Option<String>,
        sink: berth_build::progress::Sink,
    ) -> BoxFuture<'static, Result<Arc<Image>, BuildError>> {
        let engine = self.engine.clone();
        let auth = auth_for(&self.auths, &reference);
        Box::pin(async move {
            let engine = engine
                .upgrade()
                .ok_or_else(|| BuildError::Internal("the daemon is shutting down".into()))?;
            let mut stream = engine
                .pull_image(reference.clone(), None, platform, auth)
                .await
                .map_err(|e| BuildError::Step(e.message))?;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(m) => {
                        if let Some(e) = &m.error_detail {
                            return Err(BuildError::Step(e.message.clone()));
                        }
                        if let Ok(v) = serde_json::to_value(&m) {
                            let _ = sink.send(Event::Pull(v));
                        }
                    }
                    Err(e) => return Err(BuildError::Step(e.message)),
                }
            }
            let store = engine.images.clone();
            tokio::task::spawn_blocking(move || store.resolve(&reference))
                .await
                .map_err(|e| BuildError::Internal(e.to_string()))?
                .map_err(BuildError::Image)
        })
    }
}

/// Cancels the build when the response stream is dropped (the client went away).
struct CancelOnDrop(CancellationToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn stream_msg(s: impl Into<String>) -> JsonMessage {
    JsonMessage {
        stream: Some(s.into()),
        ..Default::default()
    }
}

fn error_msg(code: i64, message: String) -> JsonMessage {
    JsonMessage {
        error_detail: Some(JsonError {
            code,
            message: message.clone(),
        }),
        error: Some(message),
        ..Default::default()
    }
}

fn build_err(e: BuildError) -> ApiError {
    if e.is_input_error() {
        ApiError::bad_request(e.to_string())
    } else {
        ApiError::internal(e.to_string())
    }
}

impl Engine {
    /// The run environment of build steps.
    pub(crate) fn build_run_env(&self) -> Result<RunEnv, ApiError> {
        let runtime = self.runtime(&self.cfg.default_runtime)?.clone();
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Ok(RunEnv {
            runtime,
            bundle_root: self.cfg.exec_root.join("build"),
            cgroup_parent: self.cfg.cgroup_parent.clone(),
            resolv_conf: crate::netfiles::resolv_conf(
                &host_resolv,
                true,
                &crate::netfiles::DnsOverrides::default(),
            ),
        })
    }

    /// Removes what a daemon killed during a build left behind (build containers, their
    /// bundles and writable layers). Run at start, before any build.
    pub(crate) async fn cleanup_builds(&self) {
        if let Ok(env) = self.build_run_env() {
            berth_build::run::cleanup_leftovers(&env).await;
        }
        let store = self.images.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(ids) = store.layers().rw_ids() {
                for id in ids.into_iter().filter(|i| i.starts_with(BUILD_ID_PREFIX)) {
                    tracing::info!(id, "removing a build layer left by an earlier daemon");
                    if let Err(e) = store.layers().remove_rw(&id) {
                        tracing::warn!(id, error = %e, "cannot remove a leftover build layer");
                    }
                }
            }
        })
        .await;
    }

    /// `POST /build`.
    pub(crate) async fn build(
        self: &Arc<Self>,
        opts: BuildOptions,
        body: BodyStream,
    ) -> Result<ProgressStream, ApiError> {
        if opts.version == "2" {
            return Err(ApiError::bad_request(
                "BuildKit (version=2) is not supported by berth; use the classic builder (version=1)",
            ));
        }
        // Tags are checked before anything is read.
        let mut tags = Vec::new();
        for t in &opts.tags {
            let r =
                Reference::parse_normalized(t).map_err(|e| ApiError::bad_request(e.to_string()))?;
            if r.digest().is_some() {
                return Err(ApiError::bad_request(format!(
                    "invalid reference format: {t} (a build is tagged, not digested)"
                )));
            }
            tags.push((t.clone(), r.with_default_tag()));
        }
        if let Some(remote) = &opts.remote {
            return Err(ApiError::bad_request(format!(
                "unable to prepare context: remote build contexts are not supported by berth (remote={remote}); send the context as the request body"
            )));
        }
        let store = self.images.clone();
        let spool = store.tmp_dir("build-").map_err(api_err)?;
        let ctx = tokio::task::spawn_blocking(move || {
            let mut reader =
                tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
            BuildContext::extract(spool, &mut reader)
        })
        .await
        .map_err(join_err)?
        .map_err(build_err)?;
        let ctx = Arc::new(ctx);
        let dockerfile_name = opts.dockerfile.clone();
        let source = ctx.read_dockerfile(&dockerfile_name).map_err(build_err)?;
        let frontend = DockerfileFrontend::new(
            &source,
            &dockerfile_name,
            &opts.build_args,
            opts.target.as_deref(),
            &opts.labels,
        )
        .map_err(build_err)?;

        let builder = Arc::new(Builder {
            store: self.images.clone(),
            cache: berth_build::cache::Cache::open(&self.cfg.data_root)
                .map_err(|e| ApiError::internal(format!("opening the build cache: {e}")))?,
            run_env: self.build_run_env()?,
            host: Arc::new(EngineHost {
                engine: Arc::downgrade(self),
                auths: opts.registry_config.clone(),
            }),
        });
        let network = opts
            .network_mode
            .clone()
            .unwrap_or_else(|| "default".into());
        if !matches!(
            network.as_str(),
            "default" | "bridge" | "none" | "host" | ""
        ) {
            return Err(ApiError::bad_request(format!(
                "network mode {network:?} is not supported for builds by berth (default, none or host)"
            )));
        }
        let mut extra_hosts = Vec::new();
        for h in opts
            .extra_hosts
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
        {
            let (name, addr) = crate::netfiles::parse_extra_host(h, None)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            extra_hosts.push((name, addr));
        }
        let bopts = berth_build::Options {
            no_cache: opts.no_cache,
            no_cache_filter: Vec::new(),
            pull: opts.pull,
            target: opts.target.clone(),
            network,
            extra_hosts,
            shm_size: opts.shm_size.filter(|s| *s > 0).map(|s| s as u64),
            platform: opts.platform.clone(),
            secrets: Default::default(),
        };

        let cancel = CancellationToken::new();
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
        let (out_tx, out_rx) = mpsc::channel::<Result<JsonMessage, ApiError>>(256);
        let quiet = opts.quiet;
        let engine = self.clone();
        let cancel2 = cancel.clone();
        // Forwards progress to the client; a failed send means the client is gone.
        let fwd_tx = out_tx.clone();
        let fwd_cancel = cancel.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(ev) = ev_rx.recv().await {
                let msg = match ev {
                    Event::Stream(s) if !quiet => Some(stream_msg(s)),
                    Event::Aux(id) if !quiet => Some(JsonMessage {
                        aux: Some(serde_json::json!({ "ID": id })),
                        ..Default::default()
                    }),
                    Event::Pull(v) if !quiet => serde_json::from_value::<JsonMessage>(v).ok(),
                    _ => None,
                };
                if let Some(m) = msg {
                    if fwd_tx.send(Ok(m)).await.is_err() {
                        fwd_cancel.cancel();
                        return;
                    }
                }
            }
        });
        tokio::spawn(async move {
            let ctx2 = ctx.clone();
            let res = builder
                .build(Arc::new(frontend), ctx2, bopts, ev_tx, cancel2.clone())
                .await;
            let _ = forwarder.await;
            drop(ctx);
            match res {
                Ok(img) => {
                    let short = img.id.hex()[..12].to_string();
                    if quiet {
                        let _ = out_tx.send(Ok(stream_msg(format!("{}\n", img.id)))).await;
                    } else {
                        let _ = out_tx
                            .send(Ok(stream_msg(format!("Successfully built {short}\n"))))
                            .await;
                    }
                    for (given, r) in &tags {
                        let store = engine.images.clone();
                        let (id, r2) = (img.id.clone(), r.clone());
                        let res = tokio::task::spawn_blocking(move || store.tag_id(&id, &r2))
                            .await
                            .map_err(join_err)
                            .and_then(|r| r.map_err(api_err));
                        match res {
                            Ok(()) => {
                                engine.events.emit(
                                    "image",
                                    "tag",
                                    &img.id.to_string(),
                                    BTreeMap::from([("name".to_string(), r.familiar())]),
                                );
                                if !quiet {
                                    let _ = out_tx
                                        .send(Ok(stream_msg(format!(
                                            "Successfully tagged {}\n",
                                            tag_text(given, r)
                                        ))))
                                        .await;
                                }
                            }
                            Err(e) => {
                                let _ = out_tx.send(Ok(error_msg(0, e.message))).await;
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    let code = e.code();
                    let _ = out_tx.send(Ok(error_msg(code, e.to_string()))).await;
                }
            }
        });
        let guard = CancelOnDrop(cancel);
        let stream = crate::images::stream_from(out_rx).map(move |m| {
            let _keep = &guard;
            m
        });
        Ok(Box::pin(stream))
    }
}

/// `Successfully tagged tr-app:1`: the name as Docker shows it (familiar, with its tag).
fn tag_text(_given: &str, r: &Reference) -> String {
    r.familiar()
}
