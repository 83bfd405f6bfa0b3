//! One repository on one endpoint: authenticated requests with bounded retries, and the
//! distribution API operations (manifests, blobs, uploads, mounts, tags).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use berth_image::digest::{Algorithm, Digest, Hasher};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use url::Url;

use super::auth::{self, Challenge, Credentials, TokenRequest};
use super::error::{go_method, status_line, ClientError, RegistryErrorItem, TransportKind};
use super::manifest::{ACCEPT, MAX_MANIFEST_BYTES};
use super::transport::{read_limited, transport_error, Endpoint};
use super::Inner;
use crate::server::error::ErrorCode;

/// Error bodies larger than this are cut (they are only read for their message).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A manifest as fetched: its bytes, served media type and digest (verified).
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// What a manifest HEAD tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Option<Digest>,
    pub media_type: String,
    pub size: Option<u64>,
}

/// The result of a cross-repository mount attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    /// The registry linked the blob into the repository.
    Mounted,
    /// It did not; an upload session was opened instead (use it for the upload).
    Upload(Url),
}

/// A repository on an endpoint, with credentials and the auth state learned so far.
#[derive(Clone)]
pub struct Repository {
    inner: Arc<RepoInner>,
}

struct RepoInner {
    client: Arc<Inner>,
    http: reqwest::Client,
    endpoint: Endpoint,
    name: String,
    creds: Credentials,
    scopes: Mutex<Vec<String>>,
    challenge: Mutex<Option<Challenge>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("endpoint", &self.inner.endpoint.base.as_str())
            .field("name", &self.inner.name)
            .finish()
    }
}

/// How to send a request.
#[derive(Clone)]
struct SendOpts {
    /// Safe to repeat after a transient failure.
    idempotent: bool,
    limit: Limit,
}

/// Which time limit a request has. Bodies of any size get no whole-request limit: uploads are
/// watched for progress instead, downloads for gaps between chunks (see [`BlobStream`]).
#[derive(Clone)]
enum Limit {
    /// The whole exchange within `request_timeout` (pings, manifests, tokens, small blobs).
    Whole,
    /// The response headers within `stall_timeout` (blob downloads).
    Headers,
    /// An upload: fails when its body has not moved for `stall_timeout` (a registry that
    /// stopped reading), and when no answer follows the body within that time.
    Progress(Progress),
}

const SMALL: SendOpts = SendOpts {
    idempotent: true,
    limit: Limit::Whole,
};

fn opts(idempotent: bool, limit: Limit) -> SendOpts {
    SendOpts { idempotent, limit }
}

/// The last time an upload body handed out data.
#[derive(Clone)]
struct Progress {
    start: Instant,
    /// Milliseconds after `start`.
    last: Arc<AtomicU64>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves once nothing happened for `stall`.
    async fn stalled(&self, stall: Duration) {
        loop {
            let idle = self
                .start
                .elapsed()
                .saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)));
            if idle >= stall {
                return;
            }
            tokio::time::sleep((stall - idle).min(Duration::from_millis(500))).await;
        }
    }

    /// `body`, reporting progress here.
    fn watch<S>(&self, body: S) -> reqwest::Body
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        self.touch();
        let p = self.clone();
        reqwest::Body::wrap_stream(body.map(move |c| {
            p.touch();
            c
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Repository {
    pub(crate) async fn open(
        client: Arc<Inner>,
        endpoint: Endpoint,
        name: &str,
        creds: Credentials,
        scopes: Vec<String>,
    ) -> Result<Repository, ClientError> {
        let http = client.clients.for_endpoint(&endpoint)?;
        let challenge = ping(&client, &http, &endpoint).await?;
        Ok(Repository {
            inner: Arc::new(RepoInner {
                client,
                http,
                endpoint,
                name: name.to_string(),
                creds,
                scopes: Mutex::new(scopes),
                challenge: Mutex::new(challenge),
            }),
        })
    }

    /// The endpoint this repository is reached through.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The repository path (`me/app`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Adds a token scope (e.g. pull on the source of a cross-repository mount).
    pub fn add_scope(&self, scope: String) {
        let mut s = lock(&self.inner.scopes);
        if !s.contains(&scope) {
            s.push(scope);
        }
    }

    fn url(&self, rest: &str) -> Result<Url, ClientError> {
        self.inner
            .endpoint
            .url(&format!("/v2/{}/{rest}", self.inner.name))
    }

    // ------------------------------------------------------------------ auth

    async fn authorize(
        &self,
        rb: reqwest::RequestBuilder,
        method: &Method,
        url: &Url,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let challenge = lock(&self.inner.challenge).clone();
        let Some(ch) = challenge else {
            return Ok(rb);
        };
        let creds = &self.inner.creds;
        if ch.is_basic() {
            if !creds.has_basic() {
                return Err(ClientError::NoBasicAuth {
                    method: go_method(method),
                    url: url.to_string(),
                });
            }
            return Ok(rb.header(header::AUTHORIZATION, creds.basic_header()));
        }
        if !creds.registry_token.is_empty() {
            return Ok(rb.bearer_auth(&creds.registry_token));
        }
        let scopes = lock(&self.inner.scopes).clone();
        let tokens = &self.inner.client.tokens;
        let token = match tokens.get(&ch, &scopes, creds) {
            Some(t) => t,
            None => {
                let http = self.token_client(&ch)?;
                let resp = auth::fetch_token(
                    &http,
                    TokenRequest {
                        challenge: &ch,
                        scopes: &scopes,
                        creds,
                        offline: false,
                    },
                    self.inner.client.cfg.transport.request_timeout,
                )
                .await
                .map_err(|e| ClientError::Token {
                    method: go_method(method),
                    url: url.to_string(),
                    source: Box::new(e),
                })?;
                tokens.put(
                    &ch,
                    &scopes,
                    creds,
                    resp.token.clone(),
                    Duration::from_secs(resp.expires_in),
                );
                resp.token
            }
        };
        Ok(rb.bearer_auth(token))
    }

    /// The HTTP client for a token realm: the endpoint's own (its TLS settings) when the
    /// realm is on the same host, else one with the system roots.
    fn token_client(&self, ch: &Challenge) -> Result<reqwest::Client, ClientError> {
        token_client(
            &self.inner.client,
            &self.inner.http,
            &self.inner.endpoint,
            ch,
        )
    }

    /// After a 401: decides whether another attempt with other credentials can succeed
    /// (a challenge not tried yet, a token without the scope the registry asks for, an
    /// expired token).
    fn adopt_challenge(&self, headers: &HeaderMap) -> bool {
        let challenges = challenges_of(headers);
        let Some(new) = challenges
            .into_iter()
            .find(|c| c.is_bearer() || c.is_basic())
        else {
            return false;
        };
        let mut cur = lock(&self.inner.challenge);
        let scopes_before = lock(&self.inner.scopes).clone();
        match cur.as_ref() {
            None => {
                *cur = Some(new);
                true
            }
            Some(old) if old.scheme != new.scheme => {
                *cur = Some(new);
                true
            }
            Some(old) if new.is_bearer() => {
                let mut retry = false;
                if let Some(scope) = new.param("scope") {
                    let mut scopes = lock(&self.inner.scopes);
                    for s in scope.split(' ').filter(|s| !s.is_empty()) {
                        if !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_string());
                            retry = true;
                        }
                    }
                }
                if new.param("error") == Some("invalid_token") {
                    self.inner
                        .client
                        .tokens
                        .invalidate(old, &scopes_before, &self.inner.creds);
                    retry = true;
                }
                let realm_changed =
                    new.param("realm").is_some() && new.param("realm") != old.param("realm");
                if realm_changed {
                    retry = true;
                }
                if new.param("realm").is_some() {
                    *cur = Some(new);
                }
                retry
            }
            Some(_) => false,
        }
    }

    // ------------------------------------------------------------------ sending

    /// Sends a request built by `build`, authenticating as the registry asks; retries
    /// idempotent requests after transient failures (connection, stall, 5xx, 429).
    async fn send(
        &self,
        method: Method,
        url: &Url,
        build: &mut (dyn FnMut(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Send),
        opts: SendOpts,
    ) -> Result<reqwest::Response, ClientError> {
        let cfg = &self.inner.client.cfg;
        let mut attempt = 0u32;
        let mut auth_retried = false;
        loop {
            let rb = self.inner.http.request(method.clone(), url.clone());
            let mut rb = self.authorize(build(rb), &method, url).await?;
            let stall = cfg.transport.stall_timeout;
            let stalled = |what: &str| {
                ClientError::Transport {
                method: go_method(&method),
                url: url.to_string(),
                message: format!(
                    "the registry stopped {what} (timed out after {}s); try again later or check the registry",
                    stall.as_secs()
                ),
                kind: TransportKind::Timeout,
            }
            };
            let result = match &opts.limit {
                Limit::Whole => {
                    rb = rb.timeout(cfg.transport.request_timeout);
                    rb.send().await
                }
                Limit::Headers => match tokio::time::timeout(stall, rb.send()).await {
                    Ok(r) => r,
                    Err(_) => {
                        let err = stalled("answering");
                        if opts.idempotent && attempt < cfg.retries {
                            self.backoff(attempt).await;
                            attempt += 1;
                            continue;
                        }
                        return Err(err);
                    }
                },
                Limit::Progress(p) => {
                    tokio::select! {
                        r = rb.send() => r,
                        _ = p.stalled(stall) => return Err(stalled("accepting data")),
                    }
                }
            };
            let retry_allowed = opts.idempotent && attempt < cfg.retries;
            match result {
                Err(e) => {
                    let err = transport_error(&e, &go_method(&method), url.as_str());
                    if retry_allowed && err.is_transient() {
                        tracing::debug!(%url, error = %err, attempt, "retrying registry request");
                        self.backoff(attempt).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(err);
                }
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED
                        && !auth_retried
                        && self.adopt_challenge(resp.headers())
                    {
                        auth_retried = true;
                        continue;
                    }
                    if retry_allowed && matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504) {
                        tracing::debug!(%url, %status, attempt, "retrying registry request");
                        self.backoff(attempt).await;
                        attempt += 1;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    async fn backoff(&self, attempt: u32) {
        let base = self.inner.client.cfg.retry_delay;
        tokio::time::sleep(base * 2u32.saturating_pow(attempt.min(6))).await;
    }

    // ------------------------------------------------------------------ manifests

    /// `GET /v2/<name>/manifests/<reference>`: the document, its served media type and its
    /// digest — checked against the reference when that is a digest, and against the
    /// registry's `Docker-Content-Digest`.
    pub async fn get_manifest(&self, reference: &str) -> Result<FetchedManifest, ClientError> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let resp = self
            .send(Method::GET, &url, &mut accept_manifests, SMALL)
            .await?;
        if !resp.status().is_success() {
            return Err(response_error(resp).await);
        }
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let announced = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v.trim()).ok());
        let bytes = read_limited(resp, MAX_MANIFEST_BYTES, &format!("manifest {reference}"))
            .await
            .map_err(|e| match e {
                ClientError::TooLarge { limit, .. } => ClientError::TooLarge {
                    what: format!("manifest for {}:{reference}", self.name()),
                    limit,
                },
                other => other,
            })?;
        let want = Digest::parse(reference).ok();
        let algorithm = want
            .as_ref()
            .or(announced.as_ref())
            .map(|d| d.algorithm())
            .unwrap_or(Algorithm::Sha256);
        let mut h = Hasher::new(algorithm);
        h.update(&bytes);
        let digest = h.finish();
        for expected in [want.as_ref(), announced.as_ref()].into_iter().flatten() {
            if expected.algorithm() == digest.algorithm() && *expected != digest {
                return Err(ClientError::DigestMismatch {
                    what: format!("manifest {}@{reference}", self.name()),
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        Ok(FetchedManifest {
            bytes: Bytes::from(bytes),
            media_type,
            digest,
        })
    }

    /// `HEAD /v2/<name>/manifests/<reference>`: `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        reference: &str,
    ) -> Result<Option<ManifestHead>, ClientError> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let resp = self
            .send(Method::HEAD, &url, &mut accept_manifests, SMALL)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(response_error(resp).await);
        }
        let h = resp.headers();
        Ok(Some(ManifestHead {
            digest: h
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v.trim()).ok()),
            media_type: h
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            size: Some(header_length(resp.headers())),
        }))
    }

    /// `PUT /v2/<name>/manifests/<reference>`; returns the digest the registry assigned
    /// (which must be the digest of `bytes`).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, ClientError> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let mt = media_type.to_string();
        let body = bytes.clone();
        let resp = self
            .send(
                Method::PUT,
                &url,
                &mut |rb| {
                    rb.header(header::CONTENT_TYPE, mt.clone())
                        .body(body.clone())
                },
                SMALL,
            )
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(response_error(resp).await);
        }
        let ours = Digest::sha256_of(&bytes);
        if let Some(theirs) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v.trim()).ok())
        {
            if theirs.algorithm() == ours.algorithm() && theirs != ours {
                return Err(ClientError::DigestMismatch {
                    what: format!("manifest pushed to {}:{reference}", self.name()),
                    expected: ours.to_string(),
                    actual: theirs.to_string(),
                });
            }
        }
        Ok(ours)
    }

    /// Every tag of the repository (following `Link` pagination).
    pub async fn tags(&self) -> Result<Vec<String>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        let mut url = self.url("tags/list")?;
        for _ in 0..1000 {
            let resp = self.send(Method::GET, &url, &mut |rb| rb, SMALL).await?;
            if !resp.status().is_success() {
                return Err(response_error(resp).await);
            }
            let next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| {
                    l.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                });
            let body = read_limited(resp, 8 << 20, "tag list").await?;
            let t: Tags = serde_json::from_slice(&body)
                .map_err(|e| ClientError::Invalid(format!("invalid tag list: {e}")))?;
            out.extend(t.tags.unwrap_or_default());
            match next {
                Some(n) if !n.is_empty() => {
                    url = url
                        .join(&n)
                        .map_err(|e| ClientError::Invalid(format!("invalid Link {n:?}: {e}")))?;
                }
                _ => return Ok(out),
            }
        }
        Err(ClientError::Invalid("the tag list does not end".into()))
    }

    // ------------------------------------------------------------------ blobs

    /// `HEAD /v2/<name>/blobs/<digest>`: the size when the registry has the blob.
    pub async fn head_blob(&self, digest: &Digest) -> Result<Option<u64>, ClientError> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let resp = self.send(Method::HEAD, &url, &mut |rb| rb, SMALL).await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(header_length(resp.headers()))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(response_error(resp).await),
        }
    }

    /// A small blob (an image config), read whole and verified; `limit` bounds its size.
    pub async fn get_blob_bytes(
        &self,
        digest: &Digest,
        limit: usize,
    ) -> Result<Bytes, ClientError> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let resp = self.send(Method::GET, &url, &mut |rb| rb, SMALL).await?;
        if !resp.status().is_success() {
            return Err(response_error(resp).await);
        }
        let bytes = read_limited(resp, limit, &format!("blob {digest}")).await?;
        let mut h = Hasher::new(digest.algorithm());
        h.update(&bytes);
        let got = h.finish();
        if got != *digest {
            return Err(ClientError::DigestMismatch {
                what: format!("blob {digest}"),
                expected: digest.to_string(),
                actual: got.to_string(),
            });
        }
        Ok(Bytes::from(bytes))
    }

    /// Streams a blob. A connection that breaks or stalls is resumed with a `Range`
    /// request (or re-read from the start when the registry ignores ranges), a bounded
    /// number of times. The bytes are not verified here: the consumer hashes them.
    pub async fn blob_stream(&self, digest: &Digest) -> Result<BlobStream, ClientError> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let resp = self.open_blob(&url, 0).await?;
        let stall = self.inner.client.cfg.transport.stall_timeout;
        Ok(BlobStream {
            repo: self.clone(),
            url,
            offset: 0,
            skip: 0,
            resumes_left: self.inner.client.cfg.retries,
            state: StreamState::Body(Box::pin(resp.bytes_stream())),
            stall,
            deadline: Box::pin(tokio::time::sleep(stall)),
        })
    }

    async fn open_blob(&self, url: &Url, offset: u64) -> Result<reqwest::Response, ClientError> {
        let resp = self
            .send(
                Method::GET,
                url,
                &mut |rb| {
                    if offset > 0 {
                        rb.header(header::RANGE, format!("bytes={offset}-"))
                    } else {
                        rb
                    }
                },
                opts(true, Limit::Headers),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(response_error(resp).await);
        }
        Ok(resp)
    }

    /// Tries a cross-repository mount of `digest` from repository `from` (same registry).
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<MountOutcome, ClientError> {
        let mut url = self.url("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let resp = self
            .send(
                Method::POST,
                &url,
                &mut |rb| rb.header(header::CONTENT_LENGTH, "0"),
                opts(false, Limit::Whole),
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(location(&url, resp.headers())?)),
            _ => Err(response_error(resp).await),
        }
    }

    /// `POST /v2/<name>/blobs/uploads/`: a new upload session's URL.
    pub async fn start_upload(&self) -> Result<Url, ClientError> {
        let url = self.url("blobs/uploads/")?;
        let resp = self
            .send(
                Method::POST,
                &url,
                &mut |rb| rb.header(header::CONTENT_LENGTH, "0"),
                opts(false, Limit::Whole),
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(response_error(resp).await);
        }
        location(&url, resp.headers())
    }

    /// Monolithic upload of a blob whose digest and size are known: one `PUT` with the whole
    /// body to the session at `at`.
    pub async fn upload_whole<S>(
        &self,
        at: Url,
        digest: &Digest,
        size: u64,
        body: S,
    ) -> Result<(), ClientError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let p = Progress::new();
        let body = p.watch(body);
        self.put_blob(at, digest, size, body, p).await
    }

    /// Monolithic upload of a small blob held in memory (an image config).
    pub async fn upload_bytes(
        &self,
        at: Url,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<(), ClientError> {
        let size = bytes.len() as u64;
        let p = Progress::new();
        let body = p.watch(futures_util::stream::iter([Ok(bytes)]));
        self.put_blob(at, digest, size, body, p).await
    }

    async fn put_blob(
        &self,
        at: Url,
        digest: &Digest,
        size: u64,
        body: reqwest::Body,
        progress: Progress,
    ) -> Result<(), ClientError> {
        let mut url = at;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut body = Some(body);
        let resp = self
            .send(
                Method::PUT,
                &url,
                &mut |rb| {
                    let rb = rb
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_LENGTH, size.to_string());
                    match body.take() {
                        Some(b) => rb.body(b),
                        None => rb,
                    }
                },
                opts(false, Limit::Progress(progress)),
            )
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(response_error(resp).await);
        }
        Ok(())
    }

    /// Sends a blob of unknown length to the session at `at` — as one streamed `PATCH`
    /// (Docker's way), or in `PATCH` chunks with `Content-Range` when the client is
    /// configured with a chunk size. Returns the session URL to finish with
    /// [`Repository::finish_upload`].
    pub async fn upload_stream<S>(&self, at: Url, stream: S) -> Result<Url, ClientError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        match self.inner.client.cfg.upload_chunk_size {
            None => {
                let p = Progress::new();
                let mut body = Some(p.watch(stream));
                let resp = self
                    .send(
                        Method::PATCH,
                        &at,
                        &mut |rb| {
                            let rb = rb.header(header::CONTENT_TYPE, "application/octet-stream");
                            match body.take() {
                                Some(b) => rb.body(b),
                                None => rb,
                            }
                        },
                        opts(false, Limit::Progress(p.clone())),
                    )
                    .await?;
                if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
                    return Err(response_error(resp).await);
                }
                location(&at, resp.headers())
            }
            Some(chunk) => self.upload_chunks(at, stream, chunk.max(1)).await,
        }
    }

    async fn upload_chunks<S>(&self, mut at: Url, stream: S, chunk: u64) -> Result<Url, ClientError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let mut stream = Box::pin(stream);
        let mut offset = 0u64;
        let mut pending: Vec<u8> = Vec::new();
        let mut done = false;
        while !done {
            while (pending.len() as u64) < chunk {
                match stream.next().await {
                    Some(Ok(b)) => pending.extend_from_slice(&b),
                    Some(Err(e)) => {
                        return Err(ClientError::Invalid(format!(
                            "reading the blob to upload failed: {e}"
                        )))
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            let take = (pending.len() as u64).min(chunk) as usize;
            if take == 0 {
                break;
            }
            let rest = pending.split_off(take);
            let part = Bytes::from(std::mem::replace(&mut pending, rest));
            let end = offset + part.len() as u64 - 1;
            let p = Progress::new();
            let resp = self
                .send(
                    Method::PATCH,
                    &at,
                    &mut |rb| {
                        rb.header(header::CONTENT_TYPE, "application/octet-stream")
                            .header(header::CONTENT_RANGE, format!("{offset}-{end}"))
                            .header(header::CONTENT_LENGTH, part.len().to_string())
                            .body(p.watch(futures_util::stream::iter([Ok(part.clone())])))
                    },
                    opts(false, Limit::Progress(p.clone())),
                )
                .await?;
            if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
                return Err(response_error(resp).await);
            }
            at = location(&at, resp.headers())?;
            offset = end + 1;
            if !pending.is_empty() {
                done = false;
            }
        }
        Ok(at)
    }

    /// `PUT <session>?digest=…` without a body: completes an upload.
    pub async fn finish_upload(&self, at: Url, digest: &Digest) -> Result<(), ClientError> {
        let mut url = at;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = self
            .send(
                Method::PUT,
                &url,
                &mut |rb| rb.header(header::CONTENT_LENGTH, "0"),
                opts(false, Limit::Whole),
            )
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(response_error(resp).await);
        }
        Ok(())
    }

    /// Abandons an upload session (best effort).
    pub async fn cancel_upload(&self, at: Url) {
        if let Ok(resp) = self
            .send(Method::DELETE, &at, &mut |rb| rb, opts(false, Limit::Whole))
            .await
        {
            tracing::debug!(status = %resp.status(), "upload session cancelled");
        }
    }
}

/// `Content-Length` as sent (reqwest reports 0 for the empty body of a HEAD answer).
fn header_length(h: &HeaderMap) -> u64 {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn accept_manifests(rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let mut rb = rb;
    for a in ACCEPT {
        rb = rb.header(header::ACCEPT, a);
    }
    rb
}

/// The `Location` of an upload answer, resolved against the request URL.
fn location(base: &Url, headers: &HeaderMap) -> Result<Url, ClientError> {
    let loc = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ClientError::Invalid(
                "the registry did not say where to upload (no Location header)".into(),
            )
        })?;
    base.join(loc)
        .map_err(|e| ClientError::Invalid(format!("invalid upload Location {loc:?}: {e}")))
}

fn challenges_of(headers: &HeaderMap) -> Vec<Challenge> {
    auth::parse_challenges(
        headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Turns a failed response into the client error, as distribution's `HandleErrorResponse`
/// does: a bearer challenge's `error="insufficient_scope"` is DENIED, `invalid_token` is
/// UNAUTHORIZED (merged with the body's errors); then the body; then the status.
pub(crate) async fn response_error(resp: reqwest::Response) -> ClientError {
    let code = resp.status().as_u16();
    let challenges = challenges_of(resp.headers());
    let body = read_limited(resp, MAX_ERROR_BODY, "error body")
        .await
        .unwrap_or_default();
    if (400..500).contains(&code) {
        for c in challenges.iter().filter(|c| c.is_bearer()) {
            let ec = match c.param("error") {
                Some("invalid_token") => ErrorCode::Unauthorized,
                Some("insufficient_scope") => ErrorCode::Denied,
                _ => continue,
            };
            let mut first = RegistryErrorItem::new(ec);
            if let Some(d) = c.param("error_description").filter(|d| !d.is_empty()) {
                first.message = d.to_string();
            }
            let mut errors = vec![first];
            if let ClientError::Registry { errors: more, .. } = auth::error_from_body(code, &body) {
                // The body usually repeats the challenge's code; keep other codes only.
                let first_code = errors[0].code.clone();
                errors.extend(more.into_iter().filter(|m| m.code != first_code));
            }
            return ClientError::Registry {
                status: code,
                errors,
            };
        }
    }
    auth::error_from_body(code, &body)
}

fn token_client(
    client: &Inner,
    endpoint_http: &reqwest::Client,
    endpoint: &Endpoint,
    ch: &Challenge,
) -> Result<reqwest::Client, ClientError> {
    let same_host = ch
        .param("realm")
        .and_then(|r| Url::parse(r).ok())
        .is_some_and(|u| u.host_str() == endpoint.base.host_str());
    if same_host {
        Ok(endpoint_http.clone())
    } else {
        client.clients.plain()
    }
}

/// `GET /v2/`: `None` when no authentication is needed, else the challenge to answer.
async fn ping(
    client: &Inner,
    http: &reqwest::Client,
    endpoint: &Endpoint,
) -> Result<Option<Challenge>, ClientError> {
    let url = endpoint.url("/v2/")?;
    let cfg = &client.cfg;
    let mut attempt = 0;
    loop {
        let r = http
            .get(url.clone())
            .timeout(cfg.transport.request_timeout)
            .send()
            .await;
        let resp = match r {
            Ok(resp) => resp,
            // No retry when the registry cannot be reached: the next endpoint (plain HTTP
            // for an insecure registry, the next mirror) is tried at once, as dockerd does.
            Err(e) => return Err(transport_error(&e, "Get", url.as_str())),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(None);
        }
        if status == StatusCode::UNAUTHORIZED {
            let ch = challenges_of(resp.headers())
                .into_iter()
                .find(|c| c.is_bearer() || c.is_basic());
            return match ch {
                Some(c) => Ok(Some(c)),
                None => Err(ClientError::Invalid(format!(
                    "{url} answered 401 without an authentication challenge Docker understands"
                ))),
            };
        }
        if matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504) && attempt < cfg.retries {
            tokio::time::sleep(cfg.retry_delay * 2u32.pow(attempt)).await;
            attempt += 1;
            continue;
        }
        return Err(ClientError::Status {
            code: status.as_u16(),
            status: status_line(status.as_u16()),
        });
    }
}

/// The login check of one endpoint.
pub(crate) async fn login(
    client: Arc<Inner>,
    endpoint: &Endpoint,
    creds: &Credentials,
) -> Result<String, ClientError> {
    let http = client.clients.for_endpoint(endpoint)?;
    let url = endpoint.url("/v2/")?;
    let challenge = ping(&client, &http, endpoint).await?;
    let mut identity = String::new();
    let rb = http
        .get(url.clone())
        .timeout(client.cfg.transport.request_timeout);
    let rb = match &challenge {
        None => rb,
        Some(c) if c.is_basic() => {
            if !creds.has_basic() {
                return Err(ClientError::NoBasicAuth {
                    method: "Get".into(),
                    url: url.to_string(),
                });
            }
            rb.header(header::AUTHORIZATION, creds.basic_header())
        }
        Some(c) => {
            let th = token_client(&client, &http, endpoint, c)?;
            let t = auth::fetch_token(
                &th,
                TokenRequest {
                    challenge: c,
                    scopes: &[],
                    creds,
                    offline: true,
                },
                client.cfg.transport.request_timeout,
            )
            .await
            .map_err(|e| ClientError::Token {
                method: "Get".into(),
                url: url.to_string(),
                source: Box::new(e),
            })?;
            identity = t.refresh_token.clone();
            rb.bearer_auth(t.token)
        }
    };
    let resp = rb
        .send()
        .await
        .map_err(|e| transport_error(&e, "Get", url.as_str()))?;
    if resp.status() != StatusCode::OK {
        return Err(ClientError::LoginFailed {
            url: url.to_string(),
            status: status_line(resp.status().as_u16()),
        });
    }
    Ok(identity)
}

enum StreamState {
    Body(Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>),
    Reopening(
        Pin<Box<dyn std::future::Future<Output = Result<reqwest::Response, ClientError>> + Send>>,
    ),
    Done,
}

/// A blob download that resumes after a broken or stalled connection.
pub struct BlobStream {
    repo: Repository,
    url: Url,
    offset: u64,
    /// Bytes still to drop after a restart from the beginning.
    skip: u64,
    resumes_left: u32,
    state: StreamState,
    /// The longest gap between two chunks before the download counts as stalled.
    stall: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("url", &self.url.as_str())
            .field("offset", &self.offset)
            .finish()
    }
}

impl BlobStream {
    /// Starts a new request for the rest of the blob (after a short pause).
    fn reopen(&mut self) {
        let repo = self.repo.clone();
        let url = self.url.clone();
        let offset = self.offset;
        let delay = repo.inner.client.cfg.retry_delay;
        self.state = StreamState::Reopening(Box::pin(async move {
            tokio::time::sleep(delay).await;
            repo.open_blob(&url, offset).await
        }));
    }
}

impl Stream for BlobStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let this = &mut *self;
            match &mut this.state {
                StreamState::Done => return Poll::Ready(None),
                StreamState::Body(body) => match body.as_mut().poll_next(cx) {
                    Poll::Pending => {
                        if this.deadline.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        // Nothing for a whole stall period: resume (or give up) as for a
                        // broken connection.
                        let err = ClientError::Transport {
                            method: "Get".into(),
                            url: this.url.to_string(),
                            message: format!(
                                "the registry stopped sending data (timed out after {}s); try again later or check the registry",
                                this.stall.as_secs()
                            ),
                            kind: TransportKind::Timeout,
                        };
                        if this.resumes_left == 0 {
                            this.state = StreamState::Done;
                            return Poll::Ready(Some(Err(std::io::Error::other(err))));
                        }
                        this.resumes_left -= 1;
                        tracing::info!(url = %this.url, offset = this.offset, error = %err, "blob download stalled; resuming");
                        this.reopen();
                    }
                    Poll::Ready(None) => {
                        this.state = StreamState::Done;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(Ok(mut b))) => {
                        if this.skip > 0 {
                            let n = (this.skip as usize).min(b.len());
                            this.skip -= n as u64;
                            b = b.slice(n..);
                            if b.is_empty() {
                                continue;
                            }
                        }
                        this.offset += b.len() as u64;
                        let next = tokio::time::Instant::now() + this.stall;
                        this.deadline.as_mut().reset(next);
                        return Poll::Ready(Some(Ok(b)));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        let err = transport_error(&e, "Get", this.url.as_str());
                        if this.resumes_left == 0 || !err.is_transient() {
                            this.state = StreamState::Done;
                            return Poll::Ready(Some(Err(std::io::Error::other(err))));
                        }
                        this.resumes_left -= 1;
                        tracing::info!(url = %this.url, offset = this.offset, error = %err, "blob download broke; resuming");
                        this.reopen();
                    }
                },
                StreamState::Reopening(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => {
                        this.state = StreamState::Done;
                        return Poll::Ready(Some(Err(std::io::Error::other(e))));
                    }
                    Poll::Ready(Ok(resp)) => {
                        // 206: continues where we are; 200: the registry ignored the range
                        // and starts over, so what we already have is skipped.
                        this.skip = if resp.status() == StatusCode::PARTIAL_CONTENT {
                            0
                        } else {
                            this.offset
                        };
                        this.state = StreamState::Body(Box::pin(resp.bytes_stream()));
                        let next = tokio::time::Instant::now() + this.stall;
                        this.deadline.as_mut().reset(next);
                    }
                },
            }
        }
    }
}
