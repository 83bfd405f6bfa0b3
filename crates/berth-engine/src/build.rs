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
        // The classic builder reads .dockerignore only to drop the build files it excludes
        // (read, never copied); the client filtered everything else.
        if let Ok(text) = ctx.read_dockerfile(".dockerignore") {
            if let Ok(ignore) =
                berth_build::dockerignore::Dockerignore::parse(&String::from_utf8_lossy(&text))
            {
                for f in ignore.build_files_to_remove(".dockerignore", &dockerfile_name) {
                    ctx.remove(&f).map_err(build_err)?;
                }
            }
        }
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
        let trace = opts.trace;
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
                    Event::Trace(t) if trace => Some(JsonMessage {
                        id: Some(berth_build::progress::TRACE_ID.into()),
                        aux: serde_json::to_value(&t).ok(),
                        ..Default::default()
                    }),
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

/// One cache entry with what it costs.
struct CacheUsage {
    listed: berth_build::cache::Listed,
    /// Size of the layer the step added (0 for metadata steps and stale entries).
    size: u64,
    /// The step's image still exists.
    live: bool,
    /// Its layer is also part of an image that is not a build step's (a tagged image).
    shared: bool,
}

impl Engine {
    fn build_cache(&self) -> Result<berth_build::cache::Cache, ApiError> {
        berth_build::cache::Cache::open(&self.cfg.data_root)
            .map_err(|e| ApiError::internal(format!("opening the build cache: {e}")))
    }

    /// The cache entries, least recently used first, with their sizes (blocking).
    fn cache_usage(&self) -> Result<Vec<CacheUsage>, ApiError> {
        let cache = self.build_cache()?;
        let listed = cache
            .list()
            .map_err(|e| ApiError::internal(format!("reading the build cache: {e}")))?;
        let store = &self.images;
        let step_images: std::collections::HashSet<String> =
            listed.iter().map(|l| l.entry.image.to_string()).collect();
        // Layers of images that are not build steps (tagged results, pulls, loads).
        let mut outside = std::collections::HashSet::new();
        for img in store.list() {
            if !step_images.contains(&img.id.to_string()) || !img.repo_tags.is_empty() {
                outside.extend(img.layers.iter().map(|l| l.chain_id.clone()));
            }
        }
        let mut out = Vec::new();
        for l in listed {
            let Some(img) = store.get(&l.entry.image) else {
                out.push(CacheUsage {
                    listed: l,
                    size: 0,
                    live: false,
                    shared: false,
                });
                continue;
            };
            let parent_layers = img
                .parent
                .as_ref()
                .and_then(|p| store.get(p))
                .map(|p| p.layers.len())
                .unwrap_or(0);
            let own = (img.layers.len() > parent_layers)
                .then(|| img.layers.last())
                .flatten();
            out.push(CacheUsage {
                size: own.map(|l| l.size).unwrap_or(0),
                shared: own.is_some_and(|l| outside.contains(&l.chain_id)),
                live: true,
                listed: l,
            });
        }
        Ok(out)
    }

    /// `GET /system/df`'s `BuildCache` and `BuilderSize`.
    /// Reads a few small files per entry; the store's records are in memory.
    pub(crate) fn build_cache_df(&self) -> Result<(Vec<serde_json::Value>, i64), ApiError> {
        let usage = self.cache_usage()?;
        let mut total = 0i64;
        let mut items = Vec::new();
        for u in usage.iter().filter(|u| u.live) {
            if !u.shared {
                total += u.size as i64;
            }
            let last: chrono::DateTime<chrono::Utc> = u.listed.last_used.into();
            items.push(serde_json::json!({
                "ID": &u.listed.key[..25],
                "Parents": null,
                "Type": "regular",
                "Description": u.listed.entry.step,
                "InUse": false,
                "Shared": u.shared,
                "Size": u.size,
                "CreatedAt": u.listed.entry.created,
                "LastUsedAt": last.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "UsageCount": 1,
            }));
        }
        Ok((items, total))
    }

    /// `POST /build/prune` (and `builder.gc`): removes cache entries, least recently used
    /// first, and the step images they held that nothing else needs (untagged, no container,
    /// no child image). Without `all`, entries whose step is part of a tagged image stay.
    pub(crate) async fn build_prune(
        self: &Arc<Self>,
        opts: berth_api::BuildPruneOptions,
    ) -> Result<berth_api::models::BuildCachePruneReport, ApiError> {
        let mut until: Option<std::time::SystemTime> = None;
        // Cache entries carry no labels: `label=…` (as `system prune --filter label=…` passes
        // it) matches none of them, `label!=…` all of them.
        let mut label_matches_none = false;
        for (k, values) in opts.filters.iter() {
            match k {
                "label" => label_matches_none = !values.is_empty(),
                "label!" => {}
                "until" => {
                    for v in values {
                        let t = berth_api::gotime::parse_timestamp(v, chrono::Utc::now()).map_err(
                            |e| ApiError::bad_request(format!("invalid filter 'until={v}': {e}")),
                        )?;
                        until = Some(t.into());
                    }
                }
                other => return Err(ApiError::bad_request(format!("Invalid filter '{other}'"))),
            }
        }
        if label_matches_none {
            return Ok(berth_api::models::BuildCachePruneReport::default());
        }
        let users: std::collections::HashMap<String, (String, bool)> = self
            .all_containers()
            .iter()
            .map(|c| {
                c.with(|r| {
                    (
                        r.image_id.clone(),
                        (c.id.clone(), r.state.status.is_running()),
                    )
                })
            })
            .collect();
        let e = self.clone();
        let report = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
            let cache = e.build_cache()?;
            let usage = e.cache_usage()?;
            let mut kept: u64 = usage
                .iter()
                .filter(|u| u.live && !u.shared)
                .map(|u| u.size)
                .sum();
            let keep = opts.keep_storage.max(0) as u64;
            let mut removed = Vec::new();
            for u in usage {
                if opts.keep_storage > 0 && kept <= keep && u.live {
                    break;
                }
                if let Some(t) = until {
                    if u.listed.last_used > t {
                        continue;
                    }
                }
                if u.live && u.shared && !opts.all {
                    continue;
                }
                cache
                    .remove(&u.listed.key)
                    .map_err(|e| ApiError::internal(format!("pruning the build cache: {e}")))?;
                if u.live && !u.shared {
                    kept = kept.saturating_sub(u.size);
                }
                removed.push(u);
            }
            // Delete the step images nothing needs, newest first (children before parents).
            let mut reclaimed = 0u64;
            let mut ids: Vec<&CacheUsage> = removed.iter().filter(|u| u.live).collect();
            ids.sort_by(|a, b| b.listed.entry.created.cmp(&a.listed.entry.created));
            for u in ids {
                let id = u.listed.entry.image.clone();
                let Some(img) = e.images.get(&id) else {
                    continue;
                };
                if !img.repo_tags.is_empty() || !img.repo_digests.is_empty() {
                    continue;
                }
                let layers: std::collections::HashMap<_, _> = img
                    .layers
                    .iter()
                    .map(|l| (l.chain_id.to_string(), l.size))
                    .collect();
                if let Ok(items) = e.images.delete(&id.to_string(), false, false, &|d| {
                    users.get(&d.to_string()).cloned()
                }) {
                    for it in items {
                        if let berth_image::DeleteItem::Deleted(c) = it {
                            reclaimed += layers.get(&c).copied().unwrap_or(0);
                        }
                    }
                }
            }
            Ok(berth_api::models::BuildCachePruneReport {
                caches_deleted: Some(
                    removed
                        .iter()
                        .map(|u| u.listed.key[..25].to_string())
                        .collect(),
                ),
                space_reclaimed: reclaimed,
            })
        })
        .await
        .map_err(join_err)??;
        Ok(report)
    }
}
