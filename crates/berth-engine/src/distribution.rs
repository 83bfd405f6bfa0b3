//! Images travel: pull, push, login and registry inspection for the API, on top of the
//! registry client (`berth_registry::client`) and the image store.
//!
//! Pull (`POST /images/create?fromImage=`):
//!
//! 1. the manifest is resolved first (HEAD, then GET by digest, as dockerd does), so a
//!    missing tag, a refused login or an unreachable registry is a plain HTTP error (404/500)
//!    and not a half-written progress stream;
//! 2. an index picks the manifest of the platform; config and layers are validated;
//! 3. each missing layer is a *transfer*: the blob is streamed through sha256 and
//!    decompression straight into a staged overlay snapshot while it is stored in the
//!    content store (`ImageStore::ingest_layer`); up to `max-concurrent-downloads` run at
//!    once; layers are committed in order; transfers are shared, so two pulls of the same
//!    image download each blob once;
//! 4. only then is the image recorded, tagged and given its `RepoDigests`: an interrupted
//!    pull leaves no image (committed layers are reused by the next pull or collected).
//!
//! Push (`POST /images/{name}/push`): per layer, a blob the registry has is skipped
//! ("Layer already exists"), a blob known in another repository of the registry is mounted
//! ("Mounted from …"), anything else is uploaded — a layer stored uncompressed is gzipped
//! once, and the compressed form kept for later pushes. Then the config and the manifest.
//!
//! Progress messages are Docker's, byte for byte where the traces show them.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use berth_api::models::{
    AuthConfig, AuthResponse, DistributionInspect, JsonMessage, OciDescriptor, OciPlatform,
    ProgressDetail,
};
use berth_api::{ApiError, ProgressStream};
use berth_image::config::ImageConfig;
use berth_image::distmeta::{BlobSource, LayerBlob};
use berth_image::error::ImageError;
use berth_image::ingest::IngestExpect;
use berth_image::layer::{chain_ids, ChainId, DiffId, LayerMeta};
use berth_image::store::{
    CreateOptions, Image, ImageLayer, ImageStore, MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_DOCKER_LAYER_TAR, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER_TAR,
    MEDIA_TYPE_OCI_LAYER_ZSTD,
};
use berth_image::{Digest, Reference};
use berth_registry::client::manifest::{
    check_child, Descriptor, ImageManifest, Manifest, Platform, DOCKER_CONFIG, DOCKER_MANIFEST,
    MAX_CONFIG_BYTES, OCI_CONFIG, OCI_MANIFEST,
};
use berth_registry::client::{
    Access, ClientConfig, ClientError, Credentials, ManifestHead, MountOutcome, RegistryClient,
    Repository,
};
use berth_registry::server::error::ErrorCode;
use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::EngineConfig;
use crate::events::EventBus;
use crate::Engine;

type Tx = mpsc::Sender<Result<JsonMessage, ApiError>>;

/// Minimum time between two progress messages of one layer.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// gzip level for layers compressed by a push (fast; see docs/benchmarks.md).
const PUSH_GZIP_LEVEL: u32 = 1;

/// Shared state of the registry operations (one per engine).
pub(crate) struct Distribution {
    client: RegistryClient,
    downloads: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
    transfers: Mutex<HashMap<ChainId, Weak<Transfer>>>,
}

impl Distribution {
    /// Builds the client from daemon.json's `registry-mirrors`, `insecure-registries` and
    /// concurrency limits.
    pub(crate) fn new(cfg: &EngineConfig) -> Result<Arc<Distribution>, String> {
        let client = RegistryClient::new(ClientConfig {
            mirrors: cfg.registry_mirrors.clone(),
            insecure_registries: cfg.insecure_registries.clone(),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        Ok(Arc::new(Distribution {
            client,
            downloads: Arc::new(Semaphore::new(cfg.max_concurrent_downloads.max(1) as usize)),
            uploads: Arc::new(Semaphore::new(cfg.max_concurrent_uploads.max(1) as usize)),
            transfers: Mutex::new(HashMap::new()),
        }))
    }
}

// ---------------------------------------------------------------------------- helpers

/// The credentials of an `X-Registry-Auth` header or `POST /auth` body.
fn credentials(a: &AuthConfig) -> Credentials {
    Credentials::from_docker(
        &a.username,
        &a.password,
        &a.auth,
        &a.identity_token,
        &a.registry_token,
    )
}

/// A client error before anything was streamed, with Docker's status and wording
/// (distribution's `translatePullError`).
fn pull_error(e: &ClientError, r: &Reference) -> ApiError {
    match e.code() {
        Some(ErrorCode::Denied) => ApiError::not_found(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
            r.familiar_name()
        )),
        Some(ErrorCode::ManifestUnknown) => {
            ApiError::not_found(format!("manifest for {} not found: {e}", r.familiar()))
        }
        Some(ErrorCode::NameUnknown) => {
            ApiError::not_found(format!("repository {} not found: {e}", r.familiar_name()))
        }
        _ => ApiError::internal(e.to_string()),
    }
}

fn image_error(e: ImageError) -> ApiError {
    use berth_image::cas::CasError;
    if let ImageError::Cas(CasError::DigestMismatch { expected, .. }) = &e {
        return ApiError::internal(format!(
            "filesystem layer verification failed for digest {expected}"
        ));
    }
    crate::images::api_err(e)
}

fn join_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("internal error: {e}"))
}

/// Docker's `JSONProgress.String()` as the daemon renders it (a 51-character bar; the total
/// is left out when the current value exceeds it).
pub(crate) fn progress_text(current: u64, total: u64) -> String {
    use berth_api::units::human_size;
    if total == 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let pct = (((current as f64 / total as f64) * 100.0) as usize / 2).min(50);
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    if current > total {
        format!("{bar}{:>8}", human_size(current as f64))
    } else {
        format!(
            "{bar}{:>8}/{}",
            human_size(current as f64),
            human_size(total as f64)
        )
    }
}

fn msg(status: &str) -> JsonMessage {
    JsonMessage::status(status)
}

fn msg_id(status: &str, id: &str) -> JsonMessage {
    JsonMessage::status_with_id(status, id)
}

fn msg_progress(status: &str, id: &str, current: u64, total: u64) -> JsonMessage {
    JsonMessage {
        status: Some(status.to_string()),
        progress_detail: Some(ProgressDetail {
            current: current as i64,
            total: total as i64,
            ..Default::default()
        }),
        progress: Some(progress_text(current, total)),
        id: Some(id.to_string()),
        ..Default::default()
    }
}

/// Sends a message; false when the client went away.
async fn send(tx: &Tx, m: JsonMessage) -> bool {
    tx.send(Ok(m)).await.is_ok()
}

fn stream_from(rx: mpsc::Receiver<Result<JsonMessage, ApiError>>) -> ProgressStream {
    let mut rx = rx;
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Runs `job` in the background, streaming its messages; a job whose client goes away is
/// cancelled (its shared transfers continue while other pulls watch them).
fn spawn_job<F>(tx: Tx, rx: mpsc::Receiver<Result<JsonMessage, ApiError>>, job: F) -> ProgressStream
where
    F: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    tokio::spawn(async move {
        let closed = tx.clone();
        tokio::select! {
            r = job => {
                if let Err(e) = r {
                    let _ = tx.send(Err(e)).await;
                }
            }
            _ = closed.closed() => {
                tracing::info!("client went away; registry operation cancelled");
            }
        }
    });
    stream_from(rx)
}

fn is_compressed_media_type(mt: &str) -> bool {
    mt.ends_with("gzip") || mt.ends_with("zstd")
}

// ---------------------------------------------------------------------------- pull

/// Everything a pull needs, owned (it runs in its own task).
#[derive(Clone)]
struct Puller {
    store: Arc<ImageStore>,
    events: Arc<EventBus>,
    dist: Arc<Distribution>,
}

/// A resolved image manifest, ready to be pulled.
struct Resolved {
    /// The digest the reference resolved to (the index's, for a multi-platform image).
    digest: Digest,
    manifest_bytes: Bytes,
    /// The index bytes, when the reference named an index.
    index: Option<(Digest, Bytes)>,
    manifest: ImageManifest,
}

impl Engine {
    /// `POST /images/create?fromImage=…&tag=…&platform=…`.
    pub(crate) async fn pull_image(
        &self,
        from_image: String,
        tag: Option<String>,
        platform: Option<String>,
        auth: AuthConfig,
    ) -> Result<ProgressStream, ApiError> {
        let mut r = Reference::parse_normalized(&from_image)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if let Some(t) = tag.filter(|t| !t.is_empty()) {
            // The "tag" may be a digest (docker pull name@sha256:…).
            r = match Digest::parse(&t) {
                Ok(d) => r.with_digest(d),
                Err(_) => r
                    .with_tag(&t)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            };
        }
        let explicit_platform = match platform.filter(|p| !p.is_empty()) {
            Some(p) => Some(Platform::parse(&p).map_err(|e| ApiError::bad_request(e.to_string()))?),
            None => None,
        };
        let puller = Puller {
            store: self.images.clone(),
            events: self.events.clone(),
            dist: self.dist.clone(),
        };
        let creds = credentials(&auth);
        let (tx, rx) = mpsc::channel(64);
        let tx2 = tx.clone();
        Ok(spawn_job(tx, rx, async move {
            if r.tag().is_none() && r.digest().is_none() {
                puller
                    .pull_all_tags(&r, explicit_platform, creds, &tx2)
                    .await
            } else {
                let updated = puller
                    .pull_one(&r, explicit_platform.as_ref(), &creds, &tx2)
                    .await?;
                let status = if updated {
                    "Downloaded newer image for"
                } else {
                    "Image is up to date for"
                };
                send(&tx2, msg(&format!("Status: {status} {}", r.familiar()))).await;
                Ok(())
            }
        }))
    }
}

impl Puller {
    /// `docker pull -a`: every tag of the repository, then one status line.
    async fn pull_all_tags(
        &self,
        r: &Reference,
        platform: Option<Platform>,
        creds: Credentials,
        tx: &Tx,
    ) -> Result<(), ApiError> {
        let repo = self
            .open_any(r, &creds)
            .await
            .map_err(|e| pull_error(&e, r))?;
        let mut tags = repo.tags().await.map_err(|e| pull_error(&e, r))?;
        tags.sort();
        let mut updated = false;
        for t in tags {
            let tr = r.with_tag(&t).map_err(|e| {
                ApiError::internal(format!("registry listed an invalid tag {t:?}: {e}"))
            })?;
            updated |= self.pull_one(&tr, platform.as_ref(), &creds, tx).await?;
        }
        let status = if updated {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        send(tx, msg(&format!("Status: {status} {}", r.familiar_name()))).await;
        Ok(())
    }

    /// The first endpoint that answers (mirrors, then the registry).
    async fn open_any(
        &self,
        r: &Reference,
        creds: &Credentials,
    ) -> Result<Repository, ClientError> {
        let eps = self.dist.client.endpoints(r.domain(), true).await?;
        let mut last: Option<ClientError> = None;
        for ep in &eps {
            if ep.only_if_unreachable && !last.as_ref().is_some_and(ClientError::is_unreachable) {
                continue;
            }
            match self
                .dist
                .client
                .open(ep, r.path(), creds.clone(), Access::Pull)
                .await
            {
                Ok(repo) => return Ok(repo),
                Err(e) => {
                    tracing::info!(endpoint = %ep.base, error = %e, "registry endpoint failed; trying the next");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Invalid(format!("no endpoint for {}", r.domain()))))
    }

    /// Resolves the reference on the endpoints in order (a mirror that fails or lacks the
    /// image falls back to the next endpoint, as dockerd does); returns the repository the
    /// manifest came from.
    async fn resolve(
        &self,
        r: &Reference,
        platform: Option<&Platform>,
        creds: &Credentials,
    ) -> Result<(Repository, Resolved), ApiError> {
        let eps = self
            .dist
            .client
            .endpoints(r.domain(), true)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut last: Option<ClientError> = None;
        for ep in &eps {
            if ep.only_if_unreachable && !last.as_ref().is_some_and(ClientError::is_unreachable) {
                continue;
            }
            let attempt = async {
                let repo = self
                    .dist
                    .client
                    .open(ep, r.path(), creds.clone(), Access::Pull)
                    .await?;
                let resolved = resolve_manifest(&repo, r, platform).await?;
                Ok::<_, ClientError>((repo, resolved))
            };
            match attempt.await {
                Ok(x) => return Ok(x),
                Err(e) => {
                    let next_mirror = ep.mirror;
                    if e.is_unreachable() {
                        tracing::debug!(endpoint = %ep.base, error = %e, "registry endpoint unreachable");
                    } else {
                        tracing::info!(endpoint = %ep.base, error = %e, "pull from endpoint failed");
                    }
                    let platform_miss = matches!(&e, ClientError::Manifest(m) if m.starts_with("no matching manifest"));
                    if platform_miss {
                        return Err(ApiError::not_found(e.to_string()));
                    }
                    last = Some(e);
                    if !next_mirror && !last.as_ref().is_some_and(ClientError::is_unreachable) {
                        break;
                    }
                }
            }
        }
        let e =
            last.unwrap_or_else(|| ClientError::Invalid(format!("no endpoint for {}", r.domain())));
        Err(pull_error(&e, r))
    }

    /// Pulls one tag or digest; returns whether the reference now points at another image
    /// ("Downloaded newer image") or not ("Image is up to date").
    async fn pull_one(
        &self,
        r: &Reference,
        explicit_platform: Option<&Platform>,
        creds: &Credentials,
        tx: &Tx,
    ) -> Result<bool, ApiError> {
        let host_platform = Platform::host();
        let want = explicit_platform.unwrap_or(&host_platform);
        let (repo, res) = self.resolve(r, Some(want), creds).await?;
        let tag_or_digest = r
            .tag()
            .map(str::to_string)
            .unwrap_or_else(|| res.digest.to_string());
        if !send(
            tx,
            JsonMessage {
                status: Some(format!("Pulling from {}", r.path())),
                id: Some(tag_or_digest),
                ..Default::default()
            },
        )
        .await
        {
            return Ok(false);
        }
        berth_image::crashpoint::here("pull-manifest");
        let config_digest = res.manifest.config.digest.clone();
        // References: the tag (or digest), and the digest reference (RepoDigests). A new
        // image is recorded together with them, so an interrupted pull leaves nothing.
        let mut refs = vec![r.repository().with_digest(res.digest.clone())];
        if r.digest().is_none() {
            refs.insert(0, r.clone());
        }
        let before = self.store.resolve_id(&r.to_string()).ok();
        let id = if self.store.get(&config_digest).is_some() {
            // The image is here already: nothing to download (as dockerd).
            config_digest.clone()
        } else {
            // Layers are committed without waiting for the disk; flush them once the pull
            // is over, however it ends (see berth_image::pending).
            let _flush = FlushPulledOnDrop(self.store.clone());
            self.pull_layers(&repo, r, &res, explicit_platform, &refs, tx)
                .await?
        };
        let store = self.store.clone();
        let rr = r.clone();
        let id2 = id.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ImageError> {
            // Idempotent for a new image; tags an image that was here already.
            if rr.digest().is_none() {
                store.tag_id(&id2, &rr)?;
            }
            store.add_digest_ref(&id2, &refs[refs.len() - 1])
        })
        .await
        .map_err(join_err)?
        .map_err(image_error)?;
        let updated = before.as_ref() != Some(&id);
        self.events
            .image(&self.store, "pull", &r.familiar(), &r.familiar_name());
        send(tx, msg(&format!("Digest: {}", res.digest))).await;
        Ok(updated)
    }

    /// Fetches the config and the missing layers, records the image; returns its ID.
    async fn pull_layers(
        &self,
        repo: &Repository,
        r: &Reference,
        res: &Resolved,
        explicit_platform: Option<&Platform>,
        refs: &[Reference],
        tx: &Tx,
    ) -> Result<Digest, ApiError> {
        let m = &res.manifest;
        let config_bytes = repo
            .get_blob_bytes(&m.config.digest, MAX_CONFIG_BYTES)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let config = ImageConfig::parse(&config_bytes).map_err(|e| {
            ApiError::internal(format!(
                "invalid image configuration {}: {e}",
                m.config.digest
            ))
        })?;
        if config.rootfs.kind != "layers" && !config.rootfs.kind.is_empty() {
            return Err(ApiError::internal("invalid rootfs in image configuration"));
        }
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != m.layers.len() {
            return Err(ApiError::internal(
                "layers from manifest don't match image configuration",
            ));
        }
        if let Some(p) = explicit_platform {
            let actual = Platform {
                os: config.os.clone(),
                architecture: config.architecture.clone(),
                variant: config.variant.clone(),
                ..Default::default()
            };
            if !p.matches(&actual) {
                send(
                    tx,
                    msg(&format!(
                        "WARNING: image with reference {} was found but does not match the specified platform: wanted {p}, actual: {actual}",
                        r.familiar()
                    )),
                )
                .await;
            }
        }
        let chains = chain_ids(&diff_ids);
        // Pins: nothing this pull found or made may be collected before the image exists.
        let mut pins = Vec::new();
        for (c, l) in chains.iter().zip(&m.layers) {
            pins.push(self.store.layers().pin(c));
            pins.push(self.store.pin_blob(&l.digest));
        }
        // Which layers are here already; start (or join) transfers for the others.
        let existing = self.existing_layers(&chains);
        let mut slots: Vec<LayerSlot> = Vec::new();
        let mut parent_transfer: Option<Arc<Transfer>> = None;
        for (i, l) in m.layers.iter().enumerate() {
            let short = l.digest.short().to_string();
            if let Some(found) = existing.get(&chains[i]) {
                send(tx, msg_id("Already exists", &short)).await;
                slots.push(LayerSlot::Present(found.clone()));
                parent_transfer = None;
                continue;
            }
            if self.store.layers().exists(&chains[i]) && self.store.content().exists(&l.digest) {
                let meta = self
                    .store
                    .layers()
                    .meta(&chains[i])
                    .map_err(|e| image_error(e.into()))?;
                send(tx, msg_id("Already exists", &short)).await;
                slots.push(LayerSlot::Present(image_layer(&meta, l)));
                parent_transfer = None;
                continue;
            }
            send(tx, msg_id("Pulling fs layer", &short)).await;
            let parent = if i == 0 {
                None
            } else {
                Some(chains[i - 1].clone())
            };
            let t = self.transfer(LayerJob {
                repo: repo.clone(),
                desc: l.clone(),
                diff_id: diff_ids[i].clone(),
                chain: chains[i].clone(),
                parent,
                parent_transfer: parent_transfer.clone(),
            });
            parent_transfer = Some(t.clone());
            slots.push(LayerSlot::Transfer(t, short, l.len()));
        }

        // Follow every transfer, turning its phases into Docker's messages.
        let followers = slots.iter().filter_map(|s| match s {
            LayerSlot::Transfer(t, short, total) => {
                Some(follow(t.clone(), short.clone(), *total, tx.clone()))
            }
            LayerSlot::Present(_) => None,
        });
        let results = futures_util::future::join_all(followers).await;
        let mut done = results.into_iter();
        let mut layers = Vec::new();
        for (s, l) in slots.iter().zip(&m.layers) {
            match s {
                LayerSlot::Present(il) => layers.push(il.clone()),
                LayerSlot::Transfer(..) => {
                    let meta = done
                        .next()
                        .ok_or_else(|| ApiError::internal("transfer result missing"))??;
                    layers.push(image_layer(&meta, l));
                }
            }
        }
        drop(slots);

        // The manifest (and index) are stored only now, so a failed pull stores nothing.
        let mut extra = Vec::new();
        for bytes in std::iter::once(&res.manifest_bytes).chain(res.index.as_ref().map(|(_, b)| b))
        {
            pins.push(self.store.pin_blob(&Digest::sha256_of(bytes)));
            let d = self
                .store
                .content()
                .put_bytes(bytes)
                .map_err(|e| image_error(e.into()))?;
            extra.push(d);
        }

        berth_image::crashpoint::here("pull-layers-done");
        let store = self.store.clone();
        let cfg = config_bytes.clone();
        let layers2 = layers.clone();
        let refs = refs.to_vec();
        let img = tokio::task::spawn_blocking(move || {
            store.create_image_with_refs(
                &cfg,
                &layers2,
                CreateOptions {
                    parent: None,
                    extra_blobs: extra,
                },
                &refs,
            )
        })
        .await
        .map_err(join_err)?
        .map_err(image_error)?;
        drop(pins);
        // Where these blobs live, for mounts and "Layer already exists" on later pushes.
        record_blob_source(
            &self.store,
            r,
            layers.iter().map(|l| {
                (
                    l.diff_id.clone(),
                    l.blob.clone(),
                    l.media_type.clone(),
                    l.compressed_size,
                )
            }),
        );
        Ok(img.id.clone())
    }

    /// Layers present with a usable blob: chain ID → the layer as an image records it.
    fn existing_layers(&self, chains: &[ChainId]) -> HashMap<ChainId, ImageLayer> {
        let mut out = HashMap::new();
        for img in self.store.list() {
            for l in &img.layers {
                if chains.contains(&l.chain_id) && !out.contains_key(&l.chain_id) {
                    out.insert(l.chain_id.clone(), l.clone());
                }
            }
        }
        out
    }

    /// Starts a transfer for a layer, or joins the one already running for it.
    fn transfer(&self, job: LayerJob) -> Arc<Transfer> {
        let mut map = self
            .dist
            .transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(t) = map.get(&job.chain).and_then(Weak::upgrade) {
            return t;
        }
        let (state_tx, state_rx) = watch::channel(Phase::Queued);
        let cancel = CancellationToken::new();
        let t = Arc::new(Transfer {
            state: state_rx,
            cancel: cancel.clone(),
        });
        map.insert(job.chain.clone(), Arc::downgrade(&t));
        drop(map);
        let this = self.clone();
        tokio::spawn(async move {
            let chain = job.chain.clone();
            let result = tokio::select! {
                r = this.run_transfer(job, &state_tx) => r,
                _ = cancel.cancelled() => Err("pull cancelled".to_string()),
            };
            if let Err(e) = &result {
                tracing::info!(layer = %chain, error = %e, "layer transfer failed");
            }
            let _ = state_tx.send(Phase::Done(result));
        });
        t
    }

    /// Downloads, verifies and extracts one layer, then commits it after its parent.
    async fn run_transfer(
        &self,
        job: LayerJob,
        state: &watch::Sender<Phase>,
    ) -> Result<LayerMeta, String> {
        let permit = match self.dist.downloads.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let _ = state.send(Phase::Waiting);
                self.dist
                    .downloads
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        let total = job.desc.len();
        let store = self.store.clone();
        let digest = job.desc.digest.clone();
        let diff_id = job.diff_id.clone();
        let staged = if store.content().exists(&digest) {
            let _ = state.send(Phase::Extracting { current: 0, total });
            let st = state.clone();
            tokio::task::spawn_blocking(move || {
                let mut p = Throttle::new(move |n| {
                    let _ = st.send(Phase::Extracting { current: n, total });
                });
                store.stage_stored_blob(&digest, Some(&diff_id), &mut |n| p.tick(n, n == total))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| image_error(e).message)?
        } else {
            let _ = state.send(Phase::Downloading { current: 0, total });
            let stream = job
                .repo
                .blob_stream(&digest)
                .await
                .map_err(|e| e.to_string())?;
            let (btx, brx) = mpsc::channel::<Chunk>(64);
            // Aborted when this transfer is dropped (cancelled): the extractor then sees the
            // download end early and removes what it wrote.
            let feeder = AbortOnDrop(tokio::spawn(feed(stream, btx)));
            let st = state.clone();
            let expect_size = total;
            let ingest = tokio::task::spawn_blocking(move || {
                let mut reader = ChanReader {
                    rx: brx,
                    cur: Bytes::new(),
                    done: false,
                    failed: None,
                };
                let mut p = Throttle::new(move |n| {
                    let _ = st.send(Phase::Downloading { current: n, total });
                });
                store.ingest_layer(
                    &mut reader,
                    IngestExpect {
                        digest: &digest,
                        size: Some(expect_size),
                        diff_id: Some(&diff_id),
                    },
                    &mut |n| {
                        if n >= expect_size / 2 && n < expect_size {
                            berth_image::crashpoint::here("pull-mid-layer");
                        }
                        p.tick(n, n == expect_size)
                    },
                )
            })
            .await;
            drop(feeder);
            ingest
                .map_err(|e| e.to_string())?
                .map_err(|e| image_error(e).message)?
        };
        drop(permit);
        let _ = state.send(Phase::Downloaded);
        // Commit in order: the parent first.
        if let Some(p) = &job.parent_transfer {
            let mut rx = p.state.clone();
            loop {
                if let Phase::Done(r) = &*rx.borrow() {
                    if let Err(e) = r {
                        return Err(format!("a lower layer failed: {e}"));
                    }
                    break;
                }
                if rx.changed().await.is_err() {
                    return Err("a lower layer's transfer ended unexpectedly".into());
                }
            }
        }
        let store = self.store.clone();
        let parent = job.parent.clone();
        let diff_id = job.diff_id.clone();
        let applied = tokio::task::spawn_blocking(move || {
            store.commit_pulled_layer(staged.staged, parent.as_ref(), Some(&diff_id))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| image_error(e.into()).message)?;
        Ok(applied.meta.clone())
    }
}

/// Records that `r`'s repository holds these layer blobs (diff ID, blob digest, media type,
/// size), for cross-repository mounts and "Layer already exists" on later pushes.
fn record_blob_source(
    store: &ImageStore,
    r: &Reference,
    blobs: impl Iterator<Item = (DiffId, Digest, String, u64)>,
) {
    let source = BlobSource {
        registry: r.domain().to_string(),
        repository: r.path().to_string(),
    };
    let entries = blobs
        .map(|(diff_id, digest, media_type, size)| {
            (
                diff_id,
                LayerBlob {
                    digest,
                    media_type,
                    size,
                    sources: vec![source.clone()],
                },
            )
        })
        .collect();
    if let Err(e) = store.record_layer_blobs(entries) {
        tracing::warn!(error = %e, "cannot record distribution metadata");
    }
}

/// Flushes the store's pulled-but-unflushed data in the background when dropped.
struct FlushPulledOnDrop(Arc<ImageStore>);

impl Drop for FlushPulledOnDrop {
    fn drop(&mut self) {
        let store = self.0.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(move || store.flush_pending());
            }
            Err(_) => store.flush_pending(),
        }
    }
}

/// What a pull knows about one layer.
enum LayerSlot {
    Present(ImageLayer),
    Transfer(Arc<Transfer>, String, u64),
}

fn image_layer(meta: &LayerMeta, d: &Descriptor) -> ImageLayer {
    ImageLayer {
        diff_id: meta.diff_id.clone(),
        chain_id: meta.chain_id.clone(),
        blob: d.digest.clone(),
        media_type: if d.media_type.is_empty() {
            MEDIA_TYPE_OCI_LAYER_GZIP.to_string()
        } else {
            d.media_type.clone()
        },
        compressed_size: d.len(),
        size: meta.size,
    }
}

/// Resolves a reference to an image manifest for `platform`, as dockerd: HEAD by tag, then
/// GET by digest (a HEAD without a digest, or a 404, falls back to GET by tag — the GET's
/// error body explains a 404).
async fn resolve_manifest(
    repo: &Repository,
    r: &Reference,
    platform: Option<&Platform>,
) -> Result<Resolved, ClientError> {
    let fetched = match (r.digest(), r.tag()) {
        (Some(d), _) => repo.get_manifest(&d.to_string()).await?,
        (None, Some(tag)) => match repo.head_manifest(tag).await? {
            Some(ManifestHead {
                digest: Some(d), ..
            }) => repo.get_manifest(&d.to_string()).await?,
            _ => repo.get_manifest(tag).await?,
        },
        (None, None) => {
            return Err(ClientError::Invalid("a tag or digest is needed".into()));
        }
    };
    let name = r.to_string();
    let doc = Manifest::parse(&fetched.bytes, &fetched.media_type, &name)?;
    match doc {
        Manifest::Image(m) => Ok(Resolved {
            digest: fetched.digest.clone(),
            manifest_bytes: fetched.bytes,
            index: None,
            manifest: *m,
        }),
        Manifest::Index(idx) => {
            let host = Platform::host();
            let want = platform.unwrap_or(&host);
            let entry = idx.select(want).cloned().ok_or_else(|| {
                ClientError::Manifest(format!(
                    "no matching manifest for {want} in the manifest list entries"
                ))
            })?;
            let child = repo.get_manifest(&entry.digest.to_string()).await?;
            let cm = Manifest::parse(&child.bytes, &child.media_type, &name)?;
            check_child(&entry, &cm, &name)?;
            let Manifest::Image(m) = cm else {
                return Err(ClientError::Manifest(format!(
                    "refusing the manifest {} of {name}: not an image manifest",
                    entry.digest
                )));
            };
            Ok(Resolved {
                digest: fetched.digest.clone(),
                manifest_bytes: child.bytes,
                index: Some((fetched.digest, fetched.bytes)),
                manifest: *m,
            })
        }
    }
}

// ---------------------------------------------------------------------------- transfers

/// One layer to download.
struct LayerJob {
    repo: Repository,
    desc: Descriptor,
    diff_id: Digest,
    chain: ChainId,
    parent: Option<ChainId>,
    /// The transfer creating the parent layer, when it is being pulled too.
    parent_transfer: Option<Arc<Transfer>>,
}

/// Where a transfer is.
#[derive(Debug, Clone)]
enum Phase {
    Queued,
    Waiting,
    Downloading {
        current: u64,
        total: u64,
    },
    Extracting {
        current: u64,
        total: u64,
    },
    /// Downloaded, verified and extracted; waiting for the lower layers to commit.
    Downloaded,
    Done(Result<LayerMeta, String>),
}

/// A running layer transfer, shared by every pull that needs the layer. When the last
/// handle is dropped (every interested client went away), the transfer is cancelled.
struct Transfer {
    state: watch::Receiver<Phase>,
    cancel: CancellationToken,
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Turns a transfer's phases into Docker's per-layer messages (every milestone once, in
/// order, even when phases were skipped), and returns its result.
async fn follow(t: Arc<Transfer>, id: String, total: u64, tx: Tx) -> Result<LayerMeta, ApiError> {
    let mut rx = t.state.clone();
    let mut waiting_sent = false;
    let mut downloaded_sent = false;
    let mut last_progress: Option<(u64, u64)> = None;
    loop {
        let phase = rx.borrow_and_update().clone();
        match phase {
            Phase::Queued => {}
            Phase::Waiting => {
                if !waiting_sent {
                    waiting_sent = true;
                    send(&tx, msg_id("Waiting", &id)).await;
                }
            }
            Phase::Downloading { current, total } => {
                if last_progress != Some((current, total)) && current > 0 {
                    last_progress = Some((current, total));
                    send(&tx, msg_progress("Downloading", &id, current, total)).await;
                }
            }
            Phase::Extracting { current, total } => {
                if last_progress != Some((current, total)) {
                    last_progress = Some((current, total));
                    send(&tx, msg_progress("Extracting", &id, current, total)).await;
                }
            }
            Phase::Downloaded => {
                if !downloaded_sent {
                    downloaded_sent = true;
                    finish_download_messages(&tx, &id, &mut last_progress, total).await;
                }
            }
            Phase::Done(r) => {
                return match r {
                    Ok(meta) => {
                        if !downloaded_sent {
                            finish_download_messages(&tx, &id, &mut last_progress, total).await;
                        }
                        send(&tx, msg_id("Pull complete", &id)).await;
                        Ok(meta)
                    }
                    Err(e) => Err(ApiError::internal(e)),
                };
            }
        }
        if rx.changed().await.is_err() {
            // The transfer task ended without a final state (it panicked).
            let last = rx.borrow().clone();
            if let Phase::Done(Ok(meta)) = last {
                return Ok(meta);
            }
            return Err(ApiError::internal("layer transfer ended unexpectedly"));
        }
    }
}

async fn finish_download_messages(tx: &Tx, id: &str, last: &mut Option<(u64, u64)>, total: u64) {
    // Always at least one complete "Downloading" line, as dockerd sends.
    if *last != Some((total, total)) {
        send(tx, msg_progress("Downloading", id, total, total)).await;
    }
    send(tx, msg_id("Verifying Checksum", id)).await;
    send(tx, msg_id("Download complete", id)).await;
    send(tx, msg_progress("Extracting", id, total, total)).await;
}

/// Calls `f` at most every [`PROGRESS_EVERY`] (and always for the last update).
struct Throttle<F: FnMut(u64)> {
    f: F,
    last: Option<Instant>,
}

impl<F: FnMut(u64)> Throttle<F> {
    fn new(f: F) -> Self {
        Throttle { f, last: None }
    }

    fn tick(&mut self, n: u64, last: bool) {
        let now = Instant::now();
        if last
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= PROGRESS_EVERY)
        {
            self.last = Some(now);
            (self.f)(n);
        }
    }
}

/// A piece of a download on its way to the extracting thread.
enum Chunk {
    Data(Bytes),
    Failed(io::Error),
    End,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Moves the downloaded bytes from the async world to the blocking extractor.
async fn feed(mut stream: berth_registry::client::BlobStream, tx: mpsc::Sender<Chunk>) {
    loop {
        let chunk = match stream.next().await {
            Some(Ok(b)) => Chunk::Data(b),
            Some(Err(e)) => Chunk::Failed(e),
            None => Chunk::End,
        };
        let last = !matches!(chunk, Chunk::Data(_));
        if tx.send(chunk).await.is_err() || last {
            return;
        }
    }
}

/// The extractor's view of a download: a reader that fails if the download did not end
/// cleanly (a cancelled or broken transfer never looks like a short blob).
struct ChanReader {
    rx: mpsc::Receiver<Chunk>,
    cur: Bytes,
    done: bool,
    /// Set once the download failed or was cancelled; every later read fails too.
    failed: Option<String>,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            if let Some(msg) = &self.failed {
                // Not `Interrupted`: readers retry that kind forever.
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    msg.clone(),
                ));
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(b)) => self.cur = b,
                Some(Chunk::End) => self.done = true,
                Some(Chunk::Failed(e)) => {
                    self.failed = Some(e.to_string());
                    return Err(e);
                }
                None => self.failed = Some("the download was cancelled".to_string()),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

// ---------------------------------------------------------------------------- push

/// A layer as it went to the registry.
#[derive(Clone)]
struct PushedLayer {
    digest: Digest,
    media_type: String,
    size: u64,
}

#[derive(Clone)]
struct Pusher {
    store: Arc<ImageStore>,
    events: Arc<EventBus>,
    dist: Arc<Distribution>,
}

impl Engine {
    /// `POST /images/{name}/push?tag=…` (all tags of the repository when `tag` is empty).
    pub(crate) async fn push_image(
        &self,
        name: String,
        tag: Option<String>,
        auth: AuthConfig,
    ) -> Result<ProgressStream, ApiError> {
        let r =
            Reference::parse_normalized(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if r.digest().is_some() {
            return Err(ApiError::bad_request("cannot push a digest reference"));
        }
        let r = match tag.filter(|t| !t.is_empty()) {
            Some(t) => r
                .with_tag(&t)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => r,
        };
        let pusher = Pusher {
            store: self.images.clone(),
            events: self.events.clone(),
            dist: self.dist.clone(),
        };
        let creds = credentials(&auth);
        let (tx, rx) = mpsc::channel(64);
        let tx2 = tx.clone();
        Ok(spawn_job(tx, rx, async move {
            pusher.push(&r, creds, &tx2).await
        }))
    }
}

impl Pusher {
    async fn push(&self, r: &Reference, creds: Credentials, tx: &Tx) -> Result<(), ApiError> {
        send(
            tx,
            msg(&format!("The push refers to repository [{}]", r.name())),
        )
        .await;
        let repo_name = r.repository();
        let mut tagged: Vec<(String, Arc<Image>)> = Vec::new();
        for img in self.store.list() {
            for t in &img.repo_tags {
                if t.repository() == repo_name {
                    if let Some(tag) = t.tag() {
                        tagged.push((tag.to_string(), img.clone()));
                    }
                }
            }
        }
        if tagged.is_empty() {
            return Err(ApiError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_name()
            )));
        }
        if let Some(t) = r.tag() {
            tagged.retain(|(x, _)| x == t);
            if tagged.is_empty() {
                return Err(ApiError::not_found(format!(
                    "tag does not exist: {}",
                    r.familiar()
                )));
            }
        }
        tagged.sort_by(|a, b| a.0.cmp(&b.0));
        let repo = self
            .dist
            .client
            .open_registry(r.domain(), r.path(), creds, Access::PullPush)
            .await
            .map_err(|e| push_error(&e))?;
        for (tag, img) in tagged {
            self.push_tag(&repo, r, &tag, &img, tx).await?;
        }
        Ok(())
    }

    async fn push_tag(
        &self,
        repo: &Repository,
        r: &Reference,
        tag: &str,
        img: &Image,
        tx: &Tx,
    ) -> Result<(), ApiError> {
        for l in img.layers.iter().rev() {
            send(tx, msg_id("Preparing", l.diff_id.short())).await;
        }
        let jobs = img.layers.iter().map(|l| {
            let this = self.clone();
            let repo = repo.clone();
            let r = r.clone();
            let l = l.clone();
            let tx = tx.clone();
            async move {
                let _permit = this
                    .dist
                    .uploads
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                this.push_layer(&repo, &r, &l, &tx).await
            }
        });
        let results = futures_util::future::join_all(jobs).await;
        let mut pushed = Vec::new();
        for res in results {
            pushed.push(res?);
        }
        // The config.
        let config = self.store.config_bytes(&img.id).map_err(image_error)?;
        if repo
            .head_blob(&img.id)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .is_none()
        {
            let at = repo
                .start_upload()
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            repo.upload_bytes(at, &img.id, Bytes::from(config.clone()))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        // The manifest: Docker schema 2 unless a layer needs OCI's media types.
        let oci = pushed.iter().any(|p| p.media_type.ends_with("zstd"));
        let manifest = build_manifest(oci, &img.id, config.len() as u64, &pushed);
        let media_type = if oci { OCI_MANIFEST } else { DOCKER_MANIFEST };
        let size = manifest.len();
        let digest = repo
            .put_manifest(tag, media_type, Bytes::from(manifest))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        send(tx, msg(&format!("{tag}: digest: {digest} size: {size}"))).await;
        send(
            tx,
            JsonMessage::aux(
                serde_json::json!({"Tag": tag, "Digest": digest.to_string(), "Size": size}),
            ),
        )
        .await;
        let store = self.store.clone();
        let id = img.id.clone();
        let digest_ref = r.repository().with_digest(digest);
        let _ = tokio::task::spawn_blocking(move || store.add_digest_ref(&id, &digest_ref)).await;
        record_blob_source(
            &self.store,
            r,
            img.layers.iter().zip(&pushed).map(|(l, p)| {
                (
                    l.diff_id.clone(),
                    p.digest.clone(),
                    p.media_type.clone(),
                    p.size,
                )
            }),
        );
        let shown = r
            .repository()
            .with_tag(tag)
            .map(|x| x.familiar())
            .unwrap_or_default();
        self.events
            .image(&self.store, "push", &shown, &r.familiar_name());
        Ok(())
    }

    /// Pushes one layer: skipped when the registry has a form of it, mounted when another
    /// repository of the registry has one, else uploaded (compressed once if needed).
    async fn push_layer(
        &self,
        repo: &Repository,
        r: &Reference,
        l: &ImageLayer,
        tx: &Tx,
    ) -> Result<PushedLayer, ApiError> {
        let id = l.diff_id.short().to_string();
        let err = |e: ClientError| push_error(&e);
        // The forms of this layer berth knows: its own blob when compressed, plus forms
        // compressed or pulled earlier.
        let mut forms: Vec<LayerBlob> = Vec::new();
        if is_compressed_media_type(&l.media_type) {
            forms.push(LayerBlob {
                digest: l.blob.clone(),
                media_type: l.media_type.clone(),
                size: l.compressed_size,
                sources: Vec::new(),
            });
        }
        for f in self.store.layer_blobs(&l.diff_id) {
            match forms.iter_mut().find(|x| x.digest == f.digest) {
                Some(x) => x.sources = f.sources,
                None if is_compressed_media_type(&f.media_type) => forms.push(f),
                None => {}
            }
        }
        // 1. Already there?
        for f in forms.iter().take(4) {
            if repo.head_blob(&f.digest).await.map_err(err)?.is_some() {
                send(tx, msg_id("Layer already exists", &id)).await;
                return Ok(pushed_form(f));
            }
        }
        // 2. Mountable from another repository of this registry?
        let mut tried = 0;
        for f in &forms {
            for s in &f.sources {
                if s.registry != r.domain() || s.repository == r.path() || tried >= 3 {
                    continue;
                }
                tried += 1;
                repo.add_scope(berth_registry::client::repository_scope(
                    &s.repository,
                    "pull",
                ));
                match repo.mount_blob(&f.digest, &s.repository).await {
                    Ok(MountOutcome::Mounted) => {
                        send(tx, msg_id(&format!("Mounted from {}", s.repository), &id)).await;
                        return Ok(pushed_form(f));
                    }
                    Ok(MountOutcome::Upload(at)) => repo.cancel_upload(at).await,
                    Err(e) if e.is_auth() => {
                        tracing::debug!(error = %e, "mount refused; uploading instead");
                    }
                    Err(e) => return Err(err(e)),
                }
            }
        }
        // 3. Upload: a stored compressed form as it is, else gzip the layer once.
        let stored = forms
            .iter()
            .find(|f| self.store.content().exists(&f.digest))
            .cloned();
        let mut attempt = 0;
        loop {
            let res = match &stored {
                Some(f) => self.upload_stored(repo, f, &id, tx).await,
                None => self.upload_compressed(repo, l, &id, tx).await,
            };
            match res {
                Ok(p) => {
                    send(tx, msg_id("Pushed", &id)).await;
                    return Ok(p);
                }
                Err(UploadError::Client(e))
                    if e.is_transient() && attempt < self.dist.client.config().retries =>
                {
                    attempt += 1;
                    tracing::info!(layer = %l.diff_id, error = %e, attempt, "layer upload failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500) * attempt).await;
                }
                Err(UploadError::Client(e)) => return Err(push_error(&e)),
                Err(UploadError::Local(e)) => return Err(e),
            }
        }
    }

    /// Uploads a blob that is in the content store (digest and size known): one PUT.
    async fn upload_stored(
        &self,
        repo: &Repository,
        f: &LayerBlob,
        id: &str,
        tx: &Tx,
    ) -> Result<PushedLayer, UploadError> {
        let file = self
            .store
            .content()
            .open_blob(&f.digest)
            .map_err(|e| UploadError::Local(image_error(e.into())))?;
        let size = file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| UploadError::Local(ApiError::internal(e.to_string())))?;
        let at = repo.start_upload().await?;
        let tx2 = tx.clone();
        let id2 = id.to_string();
        let mut sent = 0u64;
        let mut last = Instant::now() - PROGRESS_EVERY;
        let stream = tokio_util::io::ReaderStream::with_capacity(
            tokio::fs::File::from_std(file),
            256 * 1024,
        )
        .map(move |chunk| {
            if let Ok(c) = &chunk {
                sent += c.len() as u64;
                if last.elapsed() >= PROGRESS_EVERY || sent == size {
                    last = Instant::now();
                    let _ = tx2.try_send(Ok(msg_progress("Pushing", &id2, sent, size)));
                }
            }
            chunk
        });
        repo.upload_whole(at, &f.digest, size, stream).await?;
        Ok(pushed_form(f))
    }

    /// gzips an uncompressed layer while uploading it (one streamed PATCH) and storing the
    /// compressed form, which later pushes reuse.
    async fn upload_compressed(
        &self,
        repo: &Repository,
        l: &ImageLayer,
        id: &str,
        tx: &Tx,
    ) -> Result<PushedLayer, UploadError> {
        let at = repo.start_upload().await?;
        let (btx, brx) = mpsc::channel::<io::Result<Bytes>>(8);
        let store = self.store.clone();
        let blob = l.blob.clone();
        let total = l.size;
        let tx2 = tx.clone();
        let id2 = id.to_string();
        let compress = tokio::task::spawn_blocking(move || {
            compress_layer(&store, &blob, btx, &mut |n| {
                let _ = tx2.try_send(Ok(msg_progress("Pushing", &id2, n, total)));
            })
        });
        let body = ChannelStream { rx: brx };
        let upload = repo.upload_stream(at, body).await;
        let compressed = compress
            .await
            .map_err(|e| UploadError::Local(join_err(e)))?
            .map_err(UploadError::Local)?;
        // Keep the compressed form whatever happened to the upload: a retry sends it as is.
        let form = LayerBlob {
            digest: compressed.digest.clone(),
            media_type: MEDIA_TYPE_DOCKER_LAYER_GZIP.to_string(),
            size: compressed.size,
            sources: Vec::new(),
        };
        if let Err(e) = self
            .store
            .record_layer_blobs(vec![(l.diff_id.clone(), form.clone())])
        {
            tracing::warn!(error = %e, "cannot record the compressed layer");
        }
        let next = upload?;
        repo.finish_upload(next, &compressed.digest).await?;
        Ok(pushed_form(&form))
    }
}

enum UploadError {
    Client(ClientError),
    Local(ApiError),
}

impl From<ClientError> for UploadError {
    fn from(e: ClientError) -> Self {
        UploadError::Client(e)
    }
}

/// A push failure as dockerd reports it: transport errors without the request they came
/// from (`no basic auth credentials`, not `Head "…": no basic auth credentials`).
fn push_error(e: &ClientError) -> ApiError {
    ApiError::internal(e.without_request())
}

fn pushed_form(f: &LayerBlob) -> PushedLayer {
    PushedLayer {
        digest: f.digest.clone(),
        media_type: f.media_type.clone(),
        size: f.size,
    }
}

/// An mpsc receiver as an upload body.
struct ChannelStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl futures_util::Stream for ChannelStream {
    type Item = io::Result<Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The compressed form of a layer made by [`compress_layer`].
struct Compressed {
    digest: Digest,
    size: u64,
}

/// gzips the uncompressed layer blob `blob`: the output is hashed, stored in the content
/// store and sent down `out` (for the upload) in one pass. If the upload side goes away the
/// compression still completes, so the compressed form is stored either way.
fn compress_layer(
    store: &ImageStore,
    blob: &Digest,
    out: mpsc::Sender<io::Result<Bytes>>,
    progress: &mut dyn FnMut(u64),
) -> Result<Compressed, ApiError> {
    let mut input = store
        .content()
        .open_blob(blob)
        .map_err(|e| image_error(e.into()))?;
    let ingest = store
        .content()
        .ingest(berth_image::digest::Algorithm::Sha256)
        .map_err(|e| image_error(e.into()))?;
    let sink = Sink {
        ingest,
        out: Some(out),
        buf: Vec::with_capacity(SINK_CHUNK),
    };
    let mut enc = flate2::write::GzEncoder::new(sink, flate2::Compression::new(PUSH_GZIP_LEVEL));
    let mut buf = vec![0u8; 256 * 1024];
    let mut read = 0u64;
    let mut last = Instant::now() - PROGRESS_EVERY;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ApiError::internal(format!("reading layer {blob}: {e}"))),
        };
        enc.write_all(&buf[..n])
            .map_err(|e| ApiError::internal(format!("compressing layer {blob}: {e}")))?;
        read += n as u64;
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            progress(read);
        }
    }
    progress(read);
    let mut sink = enc
        .finish()
        .map_err(|e| ApiError::internal(format!("compressing layer {blob}: {e}")))?;
    sink.flush_out();
    let Sink { ingest, out, .. } = sink;
    drop(out);
    let info = ingest
        .commit(store.content(), None, None)
        .map_err(|e| image_error(e.into()))?;
    Ok(Compressed {
        digest: info.digest,
        size: info.size,
    })
}

const SINK_CHUNK: usize = 256 * 1024;

/// Where compressed bytes go: the content store, and the upload in 256 KiB pieces.
struct Sink {
    ingest: berth_image::cas::Ingest,
    out: Option<mpsc::Sender<io::Result<Bytes>>>,
    buf: Vec<u8>,
}

impl Sink {
    fn flush_out(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(SINK_CHUNK),
        ));
        if let Some(tx) = &self.out {
            if tx.blocking_send(Ok(chunk)).is_err() {
                // The upload failed or was cancelled; keep storing.
                self.out = None;
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.ingest.write(data).map_err(io::Error::other)?;
        if self.out.is_some() {
            self.buf.extend_from_slice(data);
            if self.buf.len() >= SINK_CHUNK {
                self.flush_out();
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A Docker schema 2 (or OCI) manifest, formatted as dockerd formats it (three-space
/// indentation), so equal content gives equal digests.
fn build_manifest(oci: bool, config: &Digest, config_size: u64, layers: &[PushedLayer]) -> Vec<u8> {
    let layer_type = |mt: &str| -> String {
        if !oci {
            return match mt {
                MEDIA_TYPE_OCI_LAYER_GZIP => MEDIA_TYPE_DOCKER_LAYER_GZIP.to_string(),
                MEDIA_TYPE_OCI_LAYER_TAR => MEDIA_TYPE_DOCKER_LAYER_TAR.to_string(),
                other => other.to_string(),
            };
        }
        match mt {
            MEDIA_TYPE_DOCKER_LAYER_GZIP => MEDIA_TYPE_OCI_LAYER_GZIP.to_string(),
            MEDIA_TYPE_DOCKER_LAYER_TAR => MEDIA_TYPE_OCI_LAYER_TAR.to_string(),
            "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
                MEDIA_TYPE_OCI_LAYER_ZSTD.to_string()
            }
            other => other.to_string(),
        }
    };
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Desc {
        media_type: String,
        size: u64,
        digest: String,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc {
        schema_version: u32,
        media_type: &'static str,
        config: Desc,
        layers: Vec<Desc>,
    }
    let doc = Doc {
        schema_version: 2,
        media_type: if oci { OCI_MANIFEST } else { DOCKER_MANIFEST },
        config: Desc {
            media_type: if oci { OCI_CONFIG } else { DOCKER_CONFIG }.to_string(),
            size: config_size,
            digest: config.to_string(),
        },
        layers: layers
            .iter()
            .map(|l| Desc {
                media_type: layer_type(&l.media_type),
                size: l.size,
                digest: l.digest.to_string(),
            })
            .collect(),
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serialising plain strings and numbers into a Vec cannot fail.
    let _ = serde::Serialize::serialize(&doc, &mut ser);
    out
}

// ---------------------------------------------------------------------------- login, inspect

impl Engine {
    /// `POST /auth`: checks the credentials against the registry (Docker's `loginV2`).
    pub(crate) async fn registry_login(&self, auth: AuthConfig) -> Result<AuthResponse, ApiError> {
        let creds = credentials(&auth);
        match self.dist.client.login(&auth.server_address, &creds).await {
            Ok(identity_token) => Ok(AuthResponse {
                identity_token,
                status: "Login Succeeded".into(),
            }),
            Err(e) => {
                tracing::info!(server = %auth.server_address, user = %auth.username, error = %e, "login failed");
                let status = if matches!(&e, ClientError::Token { .. })
                    && e.code() == Some(ErrorCode::Unauthorized)
                {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                Err(ApiError::new(status, e.to_string()))
            }
        }
    }

    /// `GET /distribution/{name}/json`: the descriptor the reference resolves to and the
    /// platforms it offers.
    pub(crate) async fn distribution_inspect(
        &self,
        name: String,
        auth: AuthConfig,
    ) -> Result<DistributionInspect, ApiError> {
        let r =
            Reference::parse_docker_ref(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let creds = credentials(&auth);
        let puller = Puller {
            store: self.images.clone(),
            events: self.events.clone(),
            dist: self.dist.clone(),
        };
        let repo = puller
            .open_any(&r, &creds)
            .await
            .map_err(|e| pull_error(&e, &r))?;
        let reference = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let fetched = repo
            .get_manifest(&reference)
            .await
            .map_err(|e| pull_error(&e, &r))?;
        let doc = Manifest::parse(&fetched.bytes, &fetched.media_type, &r.to_string())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let to_api = |p: &Platform| OciPlatform {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            os_version: p.os_version.clone(),
            os_features: if p.os_features.is_empty() {
                None
            } else {
                Some(p.os_features.clone())
            },
            variant: p.variant.clone(),
        };
        let platforms = match &doc {
            Manifest::Index(i) => i.platforms().iter().map(to_api).collect(),
            Manifest::Image(m) => {
                let cfg = repo
                    .get_blob_bytes(&m.config.digest, MAX_CONFIG_BYTES)
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                let c = ImageConfig::parse(&cfg).map_err(|e| ApiError::internal(e.to_string()))?;
                vec![to_api(&Platform {
                    architecture: c.architecture.clone(),
                    os: c.os.clone(),
                    variant: c.variant.clone(),
                    ..Default::default()
                })]
            }
        };
        Ok(DistributionInspect {
            descriptor: OciDescriptor {
                media_type: doc.media_type().to_string(),
                digest: fetched.digest.to_string(),
                size: fetched.bytes.len() as i64,
                ..Default::default()
            },
            platforms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_text_matches_the_traces() {
        assert_eq!(
            progress_text(19968, 1984132),
            format!("[>{}]  19.97kB/1.984MB", " ".repeat(50))
        );
        assert_eq!(
            progress_text(2129920, 1984132),
            format!("[{}>]   2.13MB", "=".repeat(50))
        );
        assert_eq!(
            progress_text(121, 121),
            format!("[{}>]     121B/121B", "=".repeat(50))
        );
        assert_eq!(
            progress_text(3645, 300293),
            format!("[>{}]  3.645kB/300.3kB", " ".repeat(50))
        );
        assert_eq!(
            progress_text(32768, 300293),
            format!("[=====>{}]  32.77kB/300.3kB", " ".repeat(45))
        );
    }

    #[test]
    fn manifests_are_formatted_like_dockerd() {
        // The manifest dockerd pushed in trace 06 (digest sha256:5dca…, 527 bytes).
        let cfg = Digest::parse(
            "sha256:e2ddf69e46c83fbbdb927db20840392598e587bdebd069fed159fbc2e64bb4ec",
        )
        .unwrap();
        let layer = PushedLayer {
            digest: Digest::parse(
                "sha256:7a9115a185e1db1ff2cab9b2e8dc78e53f33ccce17663f8ef7036e06a1bff497",
            )
            .unwrap(),
            media_type: MEDIA_TYPE_DOCKER_LAYER_GZIP.into(),
            size: 1068886,
        };
        let m = build_manifest(false, &cfg, 897, &[layer]);
        assert_eq!(m.len(), 527);
        assert_eq!(
            Digest::sha256_of(&m).to_string(),
            "sha256:5dca5e695bdb115681f4c8c9e2e44ee3876a1062251e6aaf805366e1c2600b2b"
        );
    }

    #[test]
    fn credentials_come_from_either_field() {
        let a = AuthConfig {
            auth: "bWU6dHJhY2VwYXNzMTIz".into(),
            ..Default::default()
        };
        let c = credentials(&a);
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("me", "tracepass123")
        );
    }

    #[test]
    fn pull_errors_have_dockers_status_and_text() {
        use berth_registry::client::error::RegistryErrorItem;
        let r = Reference::parse_docker_ref("localhost:5000/me/extra:nosuchtag").unwrap();
        let e = ClientError::Registry {
            status: 404,
            errors: vec![RegistryErrorItem::new(ErrorCode::ManifestUnknown)],
        };
        let a = pull_error(&e, &r);
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(
            a.message,
            "manifest for localhost:5000/me/extra:nosuchtag not found: manifest unknown: manifest unknown"
        );
        let e = ClientError::Registry {
            status: 401,
            errors: vec![RegistryErrorItem::new(ErrorCode::Denied)],
        };
        let r = Reference::parse_docker_ref("nosuch").unwrap();
        assert_eq!(
            pull_error(&e, &r).message,
            "pull access denied for nosuch, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        );
    }
}
