//! The HTTP API: routing, authentication and authorization, and one handler per endpoint.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_image::digest::{Algorithm, Digest, Hasher};
use berth_image::reference::{is_tag, validate_repository_path};
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::io::AsyncWriteExt;

use super::auth::{self, Claims, FailureTracker, Htpasswd, TokenKey};
use super::config::{AccessPolicy, Action, RegistryConfig};
use super::error::{ApiError, ErrorCode};
use super::manifest::{self, Descriptor, Kind};
use super::storage::Storage;
use super::ServeError;

pub type Body = BoxBody<Bytes, io::Error>;
type Reply = Result<Response<Body>, ApiError>;

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_FILTERS: HeaderName = HeaderName::from_static("oci-filters-applied");
const RANGE_H: HeaderName = HeaderName::from_static("range");
const JSON: &str = "application/json; charset=utf-8";
const TOKEN_FORM_LIMIT: usize = 64 * 1024;
/// Writes to an upload file are gathered into buffers of this size.
const WRITE_BUF: usize = 512 * 1024;
/// How long a request body may stall before the request is given up.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Blobs are streamed in frames of this size (slices of the mapping: no copies).
const READ_CHUNK: usize = 2 * 1024 * 1024;
/// How long an unused blob map stays cached (see `zerocopy`).
const MAP_CACHE_IDLE: Duration = Duration::from_secs(2);

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// How requests authenticate.
enum AuthMode {
    /// No accounts: the access rules apply to everyone as anonymous.
    Open,
    /// htpasswd accounts, Basic credentials on every request.
    Basic(Arc<Htpasswd>),
    /// htpasswd accounts behind the built-in token service; requests carry Bearer JWTs.
    Token {
        users: Arc<Htpasswd>,
        key: Arc<TokenKey>,
        service: String,
        issuer: String,
        realm: Option<String>,
        expiration: u64,
        refresh_expiration: u64,
    },
}

/// Who is asking.
#[derive(Debug, Clone, Default)]
struct Identity {
    account: Option<String>,
    claims: Option<Claims>,
}

/// An upload's running hash, kept between PATCH requests.
struct UploadSession {
    hasher: Hasher,
    hashed: u64,
}

type KeyedLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

/// One registry: storage, settings, accounts and per-client state.
pub struct Registry {
    storage: Storage,
    config: RegistryConfig,
    policy: AccessPolicy,
    mode: AuthMode,
    failures: FailureTracker,
    limiter: Option<KeyedLimiter>,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<UploadSession>>>>>,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes the exclusive lock on the storage root (server and gc exclude each other).
pub(crate) fn lock_root(storage: &Storage) -> Result<nix::fcntl::Flock<std::fs::File>, ServeError> {
    let f = storage.lock_file().map_err(|source| ServeError::Storage {
        path: storage.root().to_path_buf(),
        source,
    })?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| ServeError::Locked(storage.root().to_path_buf()))
}

impl Registry {
    /// Opens storage and accounts. Fails if another process holds the storage root.
    pub fn open(config: RegistryConfig) -> Result<Registry, ServeError> {
        config.validate()?;
        let storage = Storage::open(&config.root).map_err(|source| ServeError::Storage {
            path: config.root.clone(),
            source,
        })?;
        let lock = lock_root(&storage)?;
        let mode = match (&config.htpasswd, &config.token) {
            (None, _) => AuthMode::Open,
            (Some(h), None) => AuthMode::Basic(Arc::new(Htpasswd::load(h)?)),
            (Some(h), Some(t)) => {
                let key = match &t.key {
                    Some(k) => TokenKey::load(k)?,
                    None => TokenKey::load_or_generate(&config.root.join("token-key.pem"))?,
                };
                AuthMode::Token {
                    users: Arc::new(Htpasswd::load(h)?),
                    key: Arc::new(key),
                    service: t.service.clone().unwrap_or_else(|| "berth-registry".into()),
                    issuer: t.issuer.clone().unwrap_or_else(|| "berth-registry".into()),
                    realm: t.realm.clone(),
                    expiration: t.expiration.unwrap_or(300).max(1),
                    refresh_expiration: t.refresh_expiration.unwrap_or(30 * 24 * 3600),
                }
            }
        };
        let limiter = NonZeroU32::new(config.requests_per_second).map(|rps| {
            let burst = NonZeroU32::new(config.burst).unwrap_or(rps);
            governor::RateLimiter::keyed(governor::Quota::per_second(rps).allow_burst(burst))
        });
        Ok(Registry {
            policy: AccessPolicy::new(config.effective_rules()),
            storage,
            config,
            mode,
            failures: FailureTracker::new(Duration::from_millis(100), Duration::from_secs(5)),
            limiter,
            sessions: Mutex::new(HashMap::new()),
            _lock: lock,
        })
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Periodic upkeep: expired uploads, forgotten rate-limit entries.
    pub(crate) fn spawn_background(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.upload_sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut maps = tokio::time::interval(MAP_CACHE_IDLE / 2);
            maps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => self.sweep().await,
                    _ = maps.tick() => super::zerocopy::expire_maps(MAP_CACHE_IDLE),
                }
            }
        })
    }

    /// Removes abandoned uploads now.
    pub async fn sweep(&self) {
        let storage = self.storage.clone();
        let expiry = self.config.upload_expiry;
        match tokio::task::spawn_blocking(move || storage.sweep_uploads(expiry)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!("removed {n} abandoned upload(s)"),
            Ok(Err(e)) => tracing::warn!("upload sweep failed: {e}"),
            _ => {}
        }
        if let Ok(mut s) = self.sessions.lock() {
            let storage = &self.storage;
            s.retain(|id, _| storage.upload_data_path(id).exists());
        }
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Handles one request: rate limit, route, auth, handler, common headers, access log.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        secure: bool,
    ) -> Response<Body> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let is_head = method == Method::HEAD;
        let mut account = None;
        let result = if let Some(l) = &self.limiter {
            match l.check_key(&peer.ip()) {
                Ok(()) => self.dispatch(req, peer, secure, &mut account).await,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ));
                    Err(ApiError::new(ErrorCode::TooManyRequests)
                        .header(header::RETRY_AFTER, hv(&(wait.as_secs() + 1).to_string())))
                }
            }
        } else {
            self.dispatch(req, peer, secure, &mut account).await
        };
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => error_response(&e, is_head),
        };
        let h = resp.headers_mut();
        h.insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        tracing::info!(
            target: "berth_registry::access",
            remote = %peer.ip(),
            user = account.as_deref().unwrap_or("-"),
            method = %method,
            path = %path,
            status = resp.status().as_u16(),
            duration_ms = start.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        resp
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        secure: bool,
        account: &mut Option<String>,
    ) -> Reply {
        let path = req.uri().path().to_string();
        if path == "/token" {
            return self.token_endpoint(req, peer).await;
        }
        let route = parse_route(&path);
        let method = req.method().clone();
        let need = match (&route, &method) {
            (Route::NotFound, _) => {
                return Err(ApiError::new(ErrorCode::Unsupported)
                    .status(StatusCode::NOT_FOUND)
                    .message("no such endpoint"))
            }
            (Route::Base, &Method::GET | &Method::HEAD) => Need::Base,
            (Route::Catalog, &Method::GET) => Need::Catalog,
            (Route::Base | Route::Catalog, _) => return Err(ApiError::new(ErrorCode::Unsupported)),
            (r, m) => {
                let name = r.name().unwrap_or_default();
                if validate_repository_path(name).is_err() {
                    return Err(ApiError::new(ErrorCode::NameInvalid)
                        .detail(serde_json::json!({ "Name": name })));
                }
                let action = match m {
                    &Method::GET | &Method::HEAD => Action::Pull,
                    &Method::DELETE if matches!(r, Route::Manifest(..) | Route::Blob(..)) => {
                        Action::Delete
                    }
                    &Method::PUT | &Method::POST | &Method::PATCH | &Method::DELETE => Action::Push,
                    _ => return Err(ApiError::new(ErrorCode::Unsupported)),
                };
                // A mount also reads the source repository: ask for that scope too.
                let mount_from = match r {
                    Route::UploadStart(_) => query_pairs(req.uri().query())
                        .into_iter()
                        .find(|(k, _)| k == "from")
                        .map(|(_, v)| v)
                        .filter(|f| validate_repository_path(f).is_ok()),
                    _ => None,
                };
                Need::Repo(name.to_string(), action, mount_from)
            }
        };
        let ident = self.authenticate(&req, peer, secure, &need).await?;
        account.clone_from(&ident.account);
        self.authorize(&req, secure, &ident, &need)?;
        match route {
            Route::Base => Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, JSON)
                .header(header::CONTENT_LENGTH, 2)
                .body(if method == Method::HEAD {
                    empty()
                } else {
                    full("{}")
                })
                .map_err(ApiError::internal)?),
            Route::Catalog => self.catalog(&req, &ident).await,
            Route::Tags(name) => self.tags(&req, name).await,
            Route::Manifest(name, reference) => match method {
                Method::GET | Method::HEAD => self.get_manifest(&req, name, reference).await,
                Method::PUT => self.put_manifest(req, name, reference).await,
                Method::DELETE => self.delete_manifest(name, reference).await,
                _ => Err(ApiError::new(ErrorCode::Unsupported)),
            },
            Route::Blob(name, digest) => match method {
                Method::GET | Method::HEAD => self.get_blob(&req, name, digest).await,
                Method::DELETE => self.delete_blob(name, digest).await,
                _ => Err(ApiError::new(ErrorCode::Unsupported)),
            },
            Route::UploadStart(name) => match method {
                Method::POST => self.start_upload(req, name, &ident).await,
                _ => Err(ApiError::new(ErrorCode::Unsupported)),
            },
            Route::Upload(name, id) => match method {
                Method::GET => self.upload_status(name, id).await,
                Method::PATCH => self.patch_upload(req, name, id).await,
                Method::PUT => self.finish_upload(req, name, id).await,
                Method::DELETE => self.cancel_upload(name, id).await,
                _ => Err(ApiError::new(ErrorCode::Unsupported)),
            },
            Route::Referrers(name, digest) => match method {
                Method::GET => self.referrers(&req, name, digest).await,
                _ => Err(ApiError::new(ErrorCode::Unsupported)),
            },
            Route::NotFound => Err(ApiError::new(ErrorCode::Unsupported)),
        }
    }

    // ------------------------------------------------------------ auth

    fn basic_challenge(&self) -> HeaderValue {
        hv(&format!("Basic realm=\"{}\"", self.config.realm))
    }

    fn bearer_challenge(
        &self,
        req: &Request<Incoming>,
        secure: bool,
        need: &Need,
        error: Option<&str>,
    ) -> HeaderValue {
        let AuthMode::Token { service, realm, .. } = &self.mode else {
            return self.basic_challenge();
        };
        let realm = realm.clone().unwrap_or_else(|| {
            format!(
                "{}://{}/token",
                if secure { "https" } else { "http" },
                request_host(req)
            )
        });
        let mut v = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
        match need {
            Need::Base => {}
            Need::Catalog => v.push_str(",scope=\"registry:catalog:*\""),
            Need::Repo(name, a, from) => {
                let actions = match a {
                    Action::Push => "pull,push",
                    other => other.as_str(),
                };
                let extra = from
                    .as_ref()
                    .map(|f| format!(" repository:{f}:pull"))
                    .unwrap_or_default();
                v.push_str(&format!(",scope=\"repository:{name}:{actions}{extra}\""));
            }
        }
        if let Some(e) = error {
            v.push_str(&format!(",error=\"{e}\""));
        }
        hv(&v)
    }

    fn unauthorized(
        &self,
        req: &Request<Incoming>,
        secure: bool,
        need: &Need,
        error: Option<&str>,
    ) -> ApiError {
        let challenge = match self.mode {
            AuthMode::Token { .. } => self.bearer_challenge(req, secure, need, error),
            _ => self.basic_challenge(),
        };
        ApiError::new(ErrorCode::Unauthorized).header(header::WWW_AUTHENTICATE, challenge)
    }

    /// Checks a password with the failed-password slow-down (per user and per client).
    async fn check_password(
        &self,
        users: &Arc<Htpasswd>,
        user: &str,
        password: &str,
        peer: IpAddr,
    ) -> bool {
        let keys = vec![format!("user:{user}"), format!("ip:{peer}")];
        let wait = self.failures.reserve(&keys, Instant::now());
        if !wait.is_zero() {
            tracing::debug!("delaying password check for {user:?} from {peer} by {wait:?}");
            tokio::time::sleep(wait).await;
        }
        let users = users.clone();
        let (u, p) = (user.to_string(), password.to_string());
        let ok = tokio::task::spawn_blocking(move || users.verify(&u, &p))
            .await
            .unwrap_or(false);
        if ok {
            self.failures.succeeded(&keys);
        } else {
            tracing::warn!("failed login for user {user:?} from {peer}");
            self.failures.failed(&keys, Instant::now());
        }
        ok
    }

    async fn authenticate(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
        secure: bool,
        need: &Need,
    ) -> Result<Identity, ApiError> {
        let authz = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match &self.mode {
            AuthMode::Open => Ok(Identity::default()),
            AuthMode::Basic(users) => match authz.and_then(auth::parse_basic) {
                Some((u, p)) => {
                    if self.check_password(users, &u, &p, peer.ip()).await {
                        Ok(Identity {
                            account: Some(u),
                            claims: None,
                        })
                    } else {
                        Err(self.unauthorized(req, secure, need, None))
                    }
                }
                None => Ok(Identity::default()),
            },
            AuthMode::Token {
                key,
                service,
                issuer,
                ..
            } => match authz.and_then(auth::parse_bearer) {
                Some(t) => match key.verify(t, issuer, service) {
                    Ok(c) if c.typ.is_none() => Ok(Identity {
                        account: c.account().map(str::to_string),
                        claims: Some(c),
                    }),
                    Ok(_) => Err(self.unauthorized(req, secure, need, Some("invalid_token"))),
                    Err(e) => {
                        tracing::debug!("bearer token refused: {e}");
                        Err(self.unauthorized(req, secure, need, Some("invalid_token")))
                    }
                },
                None => Ok(Identity::default()),
            },
        }
    }

    fn authorize(
        &self,
        req: &Request<Incoming>,
        secure: bool,
        ident: &Identity,
        need: &Need,
    ) -> Result<(), ApiError> {
        // DENIED. With tokens it is answered as distribution's token auth does — 401 with
        // RFC 6750's `error="insufficient_scope"` challenge — because dockerd 20.10 retries a
        // 403 on blob uploads for a minute and then prints a bare "denied"; with the challenge
        // it stops at once and prints "denied: requested access to the resource is denied".
        // Basic mode answers 403, plus the same challenge parameter for bodiless HEAD answers.
        // The detail matters too: dockerd turns a DENIED without detail into a bare error
        // code, which it neither explains nor stops retrying.
        let detail = match need {
            Need::Repo(name, a, _) => serde_json::json!([{
                "Type": "repository", "Name": name, "Action": a.as_str()
            }]),
            _ => serde_json::json!([{ "Type": "registry", "Name": "catalog", "Action": "*" }]),
        };
        let denied = || match self.mode {
            AuthMode::Token { .. } => ApiError::new(ErrorCode::Denied)
                .detail(detail.clone())
                .status(StatusCode::UNAUTHORIZED)
                .header(
                    header::WWW_AUTHENTICATE,
                    self.bearer_challenge(req, secure, need, Some("insufficient_scope")),
                ),
            _ => ApiError::new(ErrorCode::Denied)
                .detail(detail.clone())
                .header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
                ),
        };
        match &self.mode {
            AuthMode::Open => match need {
                Need::Base | Need::Catalog => Ok(()),
                Need::Repo(name, a, _) => {
                    if self.policy.allowed(None, name).contains(*a) {
                        Ok(())
                    } else {
                        Err(denied())
                    }
                }
            },
            AuthMode::Basic(_) => {
                let acct = ident.account.as_deref();
                match need {
                    Need::Base | Need::Catalog if acct.is_none() => {
                        Err(self.unauthorized(req, secure, need, None))
                    }
                    Need::Base | Need::Catalog => Ok(()),
                    Need::Repo(name, a, _) => {
                        if self.policy.allowed(acct, name).contains(*a) {
                            Ok(())
                        } else if acct.is_none() {
                            Err(self.unauthorized(req, secure, need, None))
                        } else {
                            Err(denied())
                        }
                    }
                }
            }
            AuthMode::Token { .. } => {
                let Some(claims) = &ident.claims else {
                    return Err(self.unauthorized(req, secure, need, None));
                };
                match need {
                    Need::Base => Ok(()),
                    Need::Catalog if claims.grants_catalog() => Ok(()),
                    Need::Catalog => {
                        Err(self.unauthorized(req, secure, need, Some("insufficient_scope")))
                    }
                    Need::Repo(name, a, from) => {
                        let from_missing = from.as_ref().is_some_and(|f| {
                            !claims.granted(f).contains(Action::Pull)
                                && self
                                    .policy
                                    .allowed(claims.account(), f)
                                    .contains(Action::Pull)
                        });
                        if claims.granted(name).contains(*a) && from_missing {
                            // Allowed, but the token lacks the mount source: get a better one.
                            Err(self.unauthorized(req, secure, need, Some("insufficient_scope")))
                        } else if claims.granted(name).contains(*a) {
                            Ok(())
                        } else if self.policy.allowed(claims.account(), name).contains(*a) {
                            Err(self.unauthorized(req, secure, need, Some("insufficient_scope")))
                        } else if claims.account().is_some() {
                            Err(denied())
                        } else {
                            Err(self.unauthorized(req, secure, need, Some("insufficient_scope")))
                        }
                    }
                }
            }
        }
    }

    /// Whether the identity may do `a` on `name` (for mounts and catalog filtering).
    fn may(&self, ident: &Identity, name: &str, a: Action) -> bool {
        match &ident.claims {
            Some(c) => c.granted(name).contains(a),
            None => self
                .policy
                .allowed(ident.account.as_deref(), name)
                .contains(a),
        }
    }

    // ------------------------------------------------------------ token service

    async fn token_endpoint(&self, req: Request<Incoming>, peer: SocketAddr) -> Reply {
        let AuthMode::Token {
            users,
            key,
            service,
            issuer,
            expiration,
            refresh_expiration,
            ..
        } = &self.mode
        else {
            return Err(ApiError::new(ErrorCode::Unsupported)
                .status(StatusCode::NOT_FOUND)
                .message("this registry has no token service (configure auth.token)"));
        };
        let bad_creds = || {
            ApiError::new(ErrorCode::Unauthorized)
                .message("incorrect username or password")
                .header(header::WWW_AUTHENTICATE, self.basic_challenge())
        };
        let (account, scopes, offline, refresh_in) = match *req.method() {
            Method::GET => {
                let q = query_pairs(req.uri().query());
                let scopes = auth::parse_scopes(
                    q.iter()
                        .filter(|(k, _)| k == "scope")
                        .map(|(_, v)| v.as_str()),
                );
                let offline = q.iter().any(|(k, v)| k == "offline_token" && v == "true");
                let authz = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let account = match authz.and_then(auth::parse_basic) {
                    Some((u, p)) => {
                        if !self.check_password(users, &u, &p, peer.ip()).await {
                            return Err(bad_creds());
                        }
                        Some(u)
                    }
                    None => None,
                };
                (account, scopes, offline, None)
            }
            Method::POST => {
                let body = read_limited(req.into_body(), TOKEN_FORM_LIMIT as u64).await?;
                let form = query_pairs(Some(&String::from_utf8_lossy(&body)));
                let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let scopes = auth::parse_scopes(
                    form.iter()
                        .filter(|(k, _)| k == "scope")
                        .map(|(_, v)| v.as_str()),
                );
                let offline = get("access_type").as_deref() == Some("offline");
                match get("grant_type").as_deref() {
                    Some("password") => {
                        let (Some(u), Some(p)) = (get("username"), get("password")) else {
                            return Err(token_request_error("username and password are required"));
                        };
                        if !self.check_password(users, &u, &p, peer.ip()).await {
                            return Err(bad_creds());
                        }
                        (Some(u), scopes, offline, None)
                    }
                    Some("refresh_token") => {
                        let Some(rt) = get("refresh_token") else {
                            return Err(token_request_error("refresh_token is required"));
                        };
                        let claims = match key.verify(&rt, issuer, service) {
                            Ok(c)
                                if c.typ.as_deref() == Some("refresh")
                                    && users.has_user(&c.sub) =>
                            {
                                c
                            }
                            _ => {
                                return Err(ApiError::new(ErrorCode::Unauthorized)
                                    .message("invalid or expired refresh token"))
                            }
                        };
                        (Some(claims.sub), scopes, false, Some(rt))
                    }
                    _ => {
                        return Err(token_request_error(
                            "grant_type must be password or refresh_token",
                        ))
                    }
                }
            }
            _ => return Err(ApiError::new(ErrorCode::Unsupported)),
        };
        let now = auth::unix_now();
        let mut access = Vec::new();
        for s in &scopes {
            match s.kind.as_str() {
                "repository" if validate_repository_path(&s.name).is_ok() => {
                    let allowed = self.policy.allowed(account.as_deref(), &s.name);
                    let granted: Vec<String> = s
                        .actions
                        .iter()
                        .filter(|a| {
                            if a.as_str() == "*" {
                                false
                            } else {
                                Action::parse(a).is_some_and(|x| allowed.contains(x))
                            }
                        })
                        .cloned()
                        .collect();
                    access.push(auth::AccessEntry {
                        kind: "repository".into(),
                        name: s.name.clone(),
                        actions: granted,
                    });
                }
                "registry" if s.name == "catalog" => access.push(auth::AccessEntry {
                    kind: "registry".into(),
                    name: "catalog".into(),
                    actions: vec!["*".into()],
                }),
                _ => {}
            }
        }
        let claims = Claims {
            iss: issuer.clone(),
            sub: account.clone().unwrap_or_default(),
            aud: service.clone(),
            exp: now + *expiration as i64,
            nbf: now - 1,
            iat: now,
            jti: super::storage::new_upload_id(),
            access,
            typ: None,
        };
        let token = key.sign(&claims).map_err(ApiError::internal)?;
        let mut body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": expiration,
            "issued_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        let refresh = match (refresh_in, offline, &account) {
            (Some(rt), _, _) => Some(rt),
            (None, true, Some(user)) => {
                let rc = Claims {
                    iss: issuer.clone(),
                    sub: user.clone(),
                    aud: service.clone(),
                    exp: now + *refresh_expiration as i64,
                    nbf: now - 1,
                    iat: now,
                    jti: super::storage::new_upload_id(),
                    access: Vec::new(),
                    typ: Some("refresh".into()),
                };
                Some(key.sign(&rc).map_err(ApiError::internal)?)
            }
            _ => None,
        };
        if let (Some(r), Some(obj)) = (refresh, body.as_object_mut()) {
            obj.insert("refresh_token".into(), serde_json::Value::String(r));
        }
        json_response(StatusCode::OK, &body)
    }

    // ------------------------------------------------------------ catalog and tags

    async fn catalog(&self, req: &Request<Incoming>, ident: &Identity) -> Reply {
        let storage = self.storage.clone();
        let all = blocking(move || storage.repositories()).await?;
        let visible: Vec<String> = all
            .into_iter()
            .filter(|r| self.may(ident, r, Action::Pull))
            .collect();
        let (page, next) = paginate(visible, req.uri().query())?;
        let mut resp = json_response(StatusCode::OK, &serde_json::json!({ "repositories": page }))?;
        if let Some((last, n)) = next {
            resp.headers_mut().insert(
                header::LINK,
                hv(&format!("</v2/_catalog?last={last}&n={n}>; rel=\"next\"")),
            );
        }
        Ok(resp)
    }

    async fn tags(&self, req: &Request<Incoming>, name: &str) -> Reply {
        let storage = self.storage.clone();
        let n = name.to_string();
        let Some(tags) = blocking(move || storage.tags(&n)).await? else {
            return Err(
                ApiError::new(ErrorCode::NameUnknown).detail(serde_json::json!({ "name": name }))
            );
        };
        let (page, next) = paginate(tags, req.uri().query())?;
        let mut resp = json_response(
            StatusCode::OK,
            &serde_json::json!({ "name": name, "tags": page }),
        )?;
        if let Some((last, n)) = next {
            resp.headers_mut().insert(
                header::LINK,
                hv(&format!(
                    "</v2/{name}/tags/list?last={last}&n={n}>; rel=\"next\""
                )),
            );
        }
        Ok(resp)
    }

    // ------------------------------------------------------------ manifests

    async fn resolve(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<super::storage::StoredManifest, ApiError> {
        let storage = self.storage.clone();
        let (n, r) = (name.to_string(), reference.to_string());
        let unknown = |detail| ApiError::new(ErrorCode::ManifestUnknown).detail(detail);
        if reference.contains(':') {
            let d = parse_digest(reference)?;
            let found = blocking(move || storage.manifest_by_digest(&n, &d)).await?;
            found.ok_or_else(|| unknown(serde_json::json!({ "Revision": reference })))
        } else {
            if !is_tag(reference) {
                return Err(ApiError::new(ErrorCode::TagInvalid)
                    .detail(serde_json::json!({ "Tag": reference })));
            }
            let found = blocking(move || match storage.tag_digest(&n, &r)? {
                Some(d) => storage.manifest_by_digest(&n, &d),
                None => Ok(None),
            })
            .await?;
            found.ok_or_else(|| unknown(serde_json::json!({ "Tag": reference })))
        }
    }

    async fn get_manifest(&self, req: &Request<Incoming>, name: &str, reference: &str) -> Reply {
        let m = self.resolve(name, reference).await?;
        let etag = format!("\"{}\"", m.digest);
        let builder = Response::builder()
            .header(header::CONTENT_TYPE, hv(&m.media_type))
            .header(CONTENT_DIGEST, hv(&m.digest.to_string()))
            .header(header::ETAG, hv(&etag));
        let not_modified = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        if not_modified {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(empty())
                .map_err(ApiError::internal);
        }
        let builder = builder
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, m.size);
        if req.method() == Method::HEAD {
            return builder.body(empty()).map_err(ApiError::internal);
        }
        let storage = self.storage.clone();
        let d = m.digest.clone();
        let max = m.size;
        let bytes = blocking(move || storage.read_blob(&d, max)).await?;
        builder.body(full(bytes)).map_err(ApiError::internal)
    }

    async fn put_manifest(&self, req: Request<Incoming>, name: &str, reference: &str) -> Reply {
        let by_digest = if reference.contains(':') {
            Some(parse_digest(reference)?)
        } else if is_tag(reference) {
            None
        } else {
            return Err(ApiError::new(ErrorCode::TagInvalid)
                .detail(serde_json::json!({ "Tag": reference })));
        };
        let limit = self.config.max_manifest_bytes;
        let too_big = || {
            ApiError::new(ErrorCode::SizeInvalid)
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .message(format!("manifest exceeds the limit of {limit} bytes"))
        };
        if content_length(&req).is_some_and(|n| n > limit) {
            return Err(too_big());
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(req.into_body(), limit).await.map_err(|e| {
            if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                too_big()
            } else {
                e
            }
        })?;
        let parsed = manifest::parse(&bytes, content_type.as_deref()).map_err(|e| {
            ApiError::new(ErrorCode::ManifestInvalid).message(format!("manifest invalid: {e}"))
        })?;
        let alg = by_digest
            .as_ref()
            .map(|d| d.algorithm())
            .unwrap_or(Algorithm::Sha256);
        let mut h = Hasher::new(alg);
        h.update(&bytes);
        let digest = h.finish();
        if let Some(want) = &by_digest {
            if *want != digest {
                return Err(ApiError::new(ErrorCode::DigestInvalid).message(format!(
                    "manifest digest {digest} does not match {want} in the URL"
                )));
            }
        }
        let storage = self.storage.clone();
        let n = name.to_string();
        let tag = by_digest.is_none().then(|| reference.to_string());
        let d2 = digest.clone();
        let subject = parsed.subject.clone();
        blocking(move || -> io::Result<Result<(), ApiError>> {
            // Everything the manifest references must already be in this repository.
            for b in parsed.required_blobs() {
                match storage.repo_blob(&n, &b.digest)? {
                    None => {
                        return Ok(Err(ApiError::new(ErrorCode::ManifestBlobUnknown)
                            .detail(serde_json::json!(b.digest.to_string()))))
                    }
                    Some(size) if size as i64 != b.size => {
                        return Ok(Err(ApiError::new(ErrorCode::ManifestInvalid).message(
                            format!(
                                "manifest invalid: blob {} has {size} bytes, the manifest says {}",
                                b.digest, b.size
                            ),
                        )))
                    }
                    Some(_) => {}
                }
            }
            if parsed.kind == Kind::Index {
                for m in &parsed.manifests {
                    if storage.manifest_by_digest(&n, &m.digest)?.is_none() {
                        return Ok(Err(ApiError::new(ErrorCode::ManifestBlobUnknown)
                            .detail(serde_json::json!(m.digest.to_string()))));
                    }
                }
            }
            let referrer = parsed.subject.as_ref().map(|s| {
                (
                    s.digest.clone(),
                    Descriptor {
                        media_type: parsed.media_type.clone(),
                        digest: d2.clone(),
                        size: bytes.len() as i64,
                        urls: None,
                        annotations: parsed.annotations.clone(),
                        artifact_type: parsed.effective_artifact_type(),
                        platform: None,
                    },
                )
            });
            storage.put_manifest(
                &n,
                &d2,
                &bytes,
                &parsed.media_type,
                tag.as_deref(),
                referrer.as_ref().map(|(s, d)| (s, d)),
            )?;
            Ok(Ok(()))
        })
        .await??;
        let mut b = Response::builder()
            .status(StatusCode::CREATED)
            .header(
                header::LOCATION,
                hv(&format!("/v2/{name}/manifests/{digest}")),
            )
            .header(CONTENT_DIGEST, hv(&digest.to_string()))
            .header(header::CONTENT_LENGTH, 0);
        if let Some(s) = subject {
            b = b.header(OCI_SUBJECT, hv(&s.digest.to_string()));
        }
        b.body(empty()).map_err(ApiError::internal)
    }

    async fn delete_manifest(&self, name: &str, reference: &str) -> Reply {
        if !self.config.delete_enabled {
            return Err(ApiError::new(ErrorCode::Unsupported)
                .message("deletes are disabled on this registry"));
        }
        let storage = self.storage.clone();
        let n = name.to_string();
        if reference.contains(':') {
            let d = parse_digest(reference)?;
            let max = self.config.max_manifest_bytes;
            let deleted = blocking(move || {
                // The subject, if any, names the referrers entry to drop as well.
                let subject = storage
                    .read_blob(&d, max)
                    .ok()
                    .and_then(|b| manifest::parse(&b, None).ok())
                    .and_then(|m| m.subject.map(|s| s.digest));
                storage.delete_manifest(&n, &d, subject.as_ref())
            })
            .await?;
            if !deleted {
                return Err(ApiError::new(ErrorCode::ManifestUnknown)
                    .detail(serde_json::json!({ "Revision": reference })));
            }
        } else {
            if !is_tag(reference) {
                return Err(ApiError::new(ErrorCode::TagInvalid));
            }
            let r = reference.to_string();
            if !blocking(move || storage.delete_tag(&n, &r)).await? {
                return Err(ApiError::new(ErrorCode::ManifestUnknown)
                    .detail(serde_json::json!({ "Tag": reference })));
            }
        }
        accepted()
    }

    async fn referrers(&self, req: &Request<Incoming>, name: &str, digest: &str) -> Reply {
        let d = parse_digest(digest)?;
        let filter = query_pairs(req.uri().query())
            .into_iter()
            .find(|(k, _)| k == "artifactType")
            .map(|(_, v)| v);
        let storage = self.storage.clone();
        let n = name.to_string();
        let mut list = blocking(move || storage.referrers(&n, &d)).await?;
        if let Some(f) = &filter {
            list.retain(|x| x.artifact_type.as_deref() == Some(f.as_str()));
        }
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_INDEX,
            "manifests": list,
        });
        let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
        let mut b = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, manifest::OCI_INDEX)
            .header(header::CONTENT_LENGTH, bytes.len());
        if filter.is_some() {
            b = b.header(OCI_FILTERS, "artifactType");
        }
        b.body(full(bytes)).map_err(ApiError::internal)
    }

    // ------------------------------------------------------------ blobs

    async fn get_blob(&self, req: &Request<Incoming>, name: &str, digest: &str) -> Reply {
        let d = parse_digest(digest)?;
        let storage = self.storage.clone();
        let (n, d2) = (name.to_string(), d.clone());
        let Some(size) = blocking(move || storage.repo_blob(&n, &d2)).await? else {
            return Err(ApiError::new(ErrorCode::BlobUnknown).detail(serde_json::json!(digest)));
        };
        let range = match req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
        {
            None => None,
            Some(r) => match parse_byte_range(r, size) {
                Some(x) => Some(x),
                None => {
                    return Err(ApiError::new(ErrorCode::RangeInvalid)
                        .message("requested range not satisfiable")
                        .header(header::CONTENT_RANGE, hv(&format!("bytes */{size}"))))
                }
            },
        };
        let (start, len) = match range {
            Some((s, e)) => (s, e - s + 1),
            None => (0, size),
        };
        let mut b = Response::builder()
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, len)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CACHE_CONTROL, "max-age=31536000")
            .header(CONTENT_DIGEST, hv(&d.to_string()))
            .header(header::ETAG, hv(&format!("\"{d}\"")));
        b = match range {
            Some((s, e)) => b
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, hv(&format!("bytes {s}-{e}/{size}"))),
            None => b.status(StatusCode::OK),
        };
        if req.method() == Method::HEAD || len == 0 {
            return b.body(empty()).map_err(ApiError::internal);
        }
        let path = self.storage.blob_path(&d);
        let data = blocking(move || map_blob(&path, size)).await?;
        let end = start + len;
        let chunks = (start..end).step_by(READ_CHUNK).map(move |o| {
            let upto = (o + READ_CHUNK as u64).min(end);
            Ok::<_, io::Error>(Frame::data(data.slice(o as usize..upto as usize)))
        });
        let body = StreamBody::new(futures_util::stream::iter(chunks)).boxed();
        b.body(body).map_err(ApiError::internal)
    }

    async fn delete_blob(&self, name: &str, digest: &str) -> Reply {
        if !self.config.delete_enabled {
            return Err(ApiError::new(ErrorCode::Unsupported)
                .message("deletes are disabled on this registry"));
        }
        let d = parse_digest(digest)?;
        let storage = self.storage.clone();
        let n = name.to_string();
        if !blocking(move || storage.unlink_blob(&n, &d)).await? {
            return Err(ApiError::new(ErrorCode::BlobUnknown).detail(serde_json::json!(digest)));
        }
        accepted()
    }

    // ------------------------------------------------------------ uploads

    fn session(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<UploadSession>>> {
        match self.sessions.lock() {
            Ok(mut m) => m.entry(id.to_string()).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    fn drop_session(&self, id: &str) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(id);
        }
    }

    async fn start_upload(&self, req: Request<Incoming>, name: &str, ident: &Identity) -> Reply {
        let q = query_pairs(req.uri().query());
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let (Some(mount), Some(from)) = (get("mount"), get("from")) {
            let d = parse_digest(&mount)?;
            if validate_repository_path(&from).is_ok() && self.may(ident, &from, Action::Pull) {
                let storage = self.storage.clone();
                let (n, f, d2) = (name.to_string(), from.clone(), d.clone());
                let mounted = blocking(move || -> io::Result<bool> {
                    if storage.repo_blob(&f, &d2)?.is_some() {
                        storage.link_blob(&n, &d2)?;
                        Ok(true)
                    } else {
                        Ok(false)
                    }
                })
                .await?;
                if mounted {
                    return blob_created(name, &d);
                }
            }
            // Not mountable: fall back to an ordinary upload, as the spec asks.
        }
        let storage = self.storage.clone();
        let n = name.to_string();
        let id = blocking(move || storage.create_upload(&n)).await?;
        if let Some(digest) = get("digest") {
            // Monolithic upload: the body is the whole blob.
            let want = match parse_digest(&digest) {
                Ok(d) => d,
                Err(e) => {
                    let _ = self.storage.remove_upload(&id);
                    return Err(e);
                }
            };
            return self
                .append_and_finish(req, name, &id, Some(want), true)
                .await;
        }
        upload_accepted(name, &id, 0, StatusCode::ACCEPTED)
    }

    async fn upload_status(&self, name: &str, id: &str) -> Reply {
        let size = self.upload_size(name, id).await?;
        let mut r = upload_accepted(name, id, size, StatusCode::NO_CONTENT)?;
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        Ok(r)
    }

    async fn upload_size(&self, name: &str, id: &str) -> Result<u64, ApiError> {
        let storage = self.storage.clone();
        let (n, i) = (name.to_string(), id.to_string());
        match blocking(move || storage.upload(&n, &i)).await? {
            Some((_, size)) => Ok(size),
            None => Err(ApiError::new(ErrorCode::BlobUploadUnknown).detail(serde_json::json!(id))),
        }
    }

    async fn patch_upload(&self, req: Request<Incoming>, name: &str, id: &str) -> Reply {
        let session = self.session(id);
        let mut guard = session.lock().await;
        let size = self.upload_size(name, id).await?;
        if let Some((start, end)) = content_range(&req)? {
            if start != size {
                return Err(range_error(name, id, size));
            }
            if let Some(len) = content_length(&req) {
                if end < start || end - start + 1 != len {
                    return Err(range_error(name, id, size));
                }
            }
        }
        let new_size = self.append(req.into_body(), id, size, &mut guard).await?;
        upload_accepted(name, id, new_size, StatusCode::ACCEPTED)
    }

    async fn finish_upload(&self, req: Request<Incoming>, name: &str, id: &str) -> Reply {
        let q = query_pairs(req.uri().query());
        let digest = q
            .iter()
            .find(|(k, _)| k == "digest")
            .map(|(_, v)| v.clone());
        // Check the upload exists before complaining about the digest.
        let size = self.upload_size(name, id).await?;
        let Some(digest) = digest else {
            return Err(
                ApiError::new(ErrorCode::DigestInvalid).message("the digest parameter is required")
            );
        };
        let want = parse_digest(&digest)?;
        if let Some((start, _)) = content_range(&req)? {
            if start != size {
                return Err(range_error(name, id, size));
            }
        }
        self.append_and_finish(req, name, id, Some(want), false)
            .await
    }

    /// Appends the request body, then verifies the digest and moves the blob into place.
    async fn append_and_finish(
        &self,
        req: Request<Incoming>,
        name: &str,
        id: &str,
        want: Option<Digest>,
        fresh: bool,
    ) -> Reply {
        let session = self.session(id);
        let mut guard = session.lock().await;
        let size = if fresh {
            0
        } else {
            self.upload_size(name, id).await?
        };
        let result = self.append(req.into_body(), id, size, &mut guard).await;
        let total = match result {
            Ok(t) => t,
            Err(e) => {
                if fresh {
                    drop(guard);
                    self.drop_session(id);
                    let _ = self.storage.remove_upload(id);
                }
                return Err(e);
            }
        };
        let Some(want) = want else {
            return upload_accepted(name, id, total, StatusCode::ACCEPTED);
        };
        let storage = self.storage.clone();
        let sess = guard.take();
        let (n, i, w) = (name.to_string(), id.to_string(), want.clone());
        let outcome = blocking(move || -> io::Result<Result<(), Digest>> {
            let got = match sess {
                Some(s) if s.hashed == total && w.algorithm() == Algorithm::Sha256 => {
                    s.hasher.finish()
                }
                _ => storage.hash_upload(&i, w.algorithm())?.0,
            };
            if got != w {
                storage.remove_upload(&i)?;
                return Ok(Err(got));
            }
            storage.commit_blob_file(&storage.upload_data_path(&i), &w)?;
            storage.link_blob(&n, &w)?;
            storage.remove_upload(&i)?;
            Ok(Ok(()))
        })
        .await?;
        drop(guard);
        self.drop_session(id);
        match outcome {
            Ok(()) => blob_created(name, &want),
            Err(got) => Err(ApiError::new(ErrorCode::DigestInvalid)
                .message(format!(
                    "provided digest did not match uploaded content: got {got}, expected {want}"
                ))
                .detail(serde_json::json!(want.to_string()))),
        }
    }

    /// Appends a request body to the upload's data, keeping the running sha256 hash.
    async fn append(
        &self,
        mut body: Incoming,
        id: &str,
        size: u64,
        sess: &mut Option<UploadSession>,
    ) -> Result<u64, ApiError> {
        if sess.as_ref().is_some_and(|s| s.hashed != size) {
            *sess = None;
        }
        if sess.is_none() {
            // A new upload, or one resumed after a restart: hash what is on disk.
            let hasher = if size == 0 {
                Hasher::new(Algorithm::Sha256)
            } else {
                let storage = self.storage.clone();
                let i = id.to_string();
                let (d, n) = blocking(move || {
                    let f = std::fs::File::open(storage.upload_data_path(&i))?;
                    let mut h = Hasher::new(Algorithm::Sha256);
                    let mut r = io::BufReader::with_capacity(1 << 20, f);
                    let mut n = 0u64;
                    loop {
                        let buf = io::BufRead::fill_buf(&mut r)?;
                        if buf.is_empty() {
                            break;
                        }
                        h.update(buf);
                        let l = buf.len();
                        n += l as u64;
                        io::BufRead::consume(&mut r, l);
                    }
                    Ok::<_, io::Error>((h, n))
                })
                .await?;
                if n != size {
                    return Err(ApiError::internal("upload changed while being hashed"));
                }
                d
            };
            *sess = Some(UploadSession {
                hasher,
                hashed: size,
            });
        }
        let Some(s) = sess.as_mut() else {
            return Err(ApiError::internal("upload session missing"));
        };
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(self.storage.upload_data_path(id))
            .await?;
        let max = self.config.max_blob_bytes;
        let mut buf: Vec<u8> = Vec::new();
        let mut total = size;
        let mut failed = None;
        loop {
            // A client that stops sending mid-body must not hold the upload forever.
            let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    failed = Some(ApiError::new(ErrorCode::BlobUploadInvalid).message(format!(
                        "no request body data for {}s; resume the upload",
                        BODY_IDLE_TIMEOUT.as_secs()
                    )));
                    break;
                }
            };
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    failed = Some(
                        ApiError::new(ErrorCode::BlobUploadInvalid)
                            .message(format!("reading the request body failed: {e}")),
                    );
                    break;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total += data.len() as u64;
            if max > 0 && total > max {
                failed = Some(
                    ApiError::new(ErrorCode::SizeInvalid)
                        .status(StatusCode::PAYLOAD_TOO_LARGE)
                        .message(format!("blob exceeds the limit of {max} bytes")),
                );
                break;
            }
            s.hasher.update(&data);
            s.hashed += data.len() as u64;
            if buf.is_empty() && data.len() >= WRITE_BUF {
                file.write_all(&data).await?;
            } else {
                buf.extend_from_slice(&data);
                if buf.len() >= WRITE_BUF {
                    file.write_all(&buf).await?;
                    buf.clear();
                }
            }
        }
        if !buf.is_empty() {
            file.write_all(&buf).await?;
        }
        file.flush().await?;
        if let Some(e) = failed {
            // What arrived stays: the client may resume from the reported offset. The hash
            // no longer matches what a too-large upload would be, so drop the session.
            *sess = None;
            if e.code == ErrorCode::SizeInvalid {
                let _ = self.storage.remove_upload(id);
            }
            return Err(e);
        }
        Ok(s.hashed)
    }

    async fn cancel_upload(&self, name: &str, id: &str) -> Reply {
        self.upload_size(name, id).await?;
        let session = self.session(id);
        let _g = session.lock().await;
        let storage = self.storage.clone();
        let i = id.to_string();
        blocking(move || storage.remove_upload(&i)).await?;
        drop(_g);
        self.drop_session(id);
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(empty())
            .map_err(ApiError::internal)
    }
}

// ---------------------------------------------------------------- helpers

enum Need {
    Base,
    Catalog,
    /// Repository, action, and the source repository of a mount.
    Repo(String, Action, Option<String>),
}

/// The API endpoints. Repository names contain slashes, so routes are recognised from the
/// end of the path (as distribution's patterns do); hand-written rather than a router crate
/// because no general router expresses "greedy name, then fixed suffix" without regexes.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    UploadStart(&'a str),
    Upload(&'a str, &'a str),
    Referrers(&'a str, &'a str),
    NotFound,
}

impl<'a> Route<'a> {
    fn name(&self) -> Option<&'a str> {
        match self {
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
            _ => None,
        }
    }
}

fn parse_route(path: &str) -> Route<'_> {
    if path == "/v2/" || path == "/v2" {
        return Route::Base;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Route::NotFound;
    };
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::Tags(name);
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Route::UploadStart(name);
    }
    let Some((head, last)) = rest.rsplit_once('/') else {
        return Route::NotFound;
    };
    if last.is_empty() {
        return Route::NotFound;
    }
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Route::Upload(name, last);
    }
    let Some((name, kind)) = head.rsplit_once('/') else {
        return Route::NotFound;
    };
    match kind {
        "manifests" => Route::Manifest(name, last),
        "blobs" => Route::Blob(name, last),
        "referrers" => Route::Referrers(name, last),
        _ => Route::NotFound,
    }
}

fn request_host(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string())
}

fn error_response(e: &ApiError, head: bool) -> Response<Body> {
    let body = e.body();
    let mut r = Response::new(if head { empty() } else { full(body.clone()) });
    *r.status_mut() = e.status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    for (k, v) in &e.headers {
        h.append(k.clone(), v.clone());
    }
    r
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Reply {
    let bytes = serde_json::to_vec(v).map_err(ApiError::internal)?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, JSON)
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(full(bytes))
        .map_err(ApiError::internal)
}

fn accepted() -> Reply {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, 0)
        .body(empty())
        .map_err(ApiError::internal)
}

fn blob_created(name: &str, d: &Digest) -> Reply {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, hv(&format!("/v2/{name}/blobs/{d}")))
        .header(CONTENT_DIGEST, hv(&d.to_string()))
        .header(header::CONTENT_LENGTH, 0)
        .body(empty())
        .map_err(ApiError::internal)
}

/// `Range: 0-<last byte>` as distribution reports upload progress ("0-0" when empty).
fn progress(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn upload_accepted(name: &str, id: &str, size: u64, status: StatusCode) -> Reply {
    Response::builder()
        .status(status)
        .header(
            header::LOCATION,
            hv(&format!("/v2/{name}/blobs/uploads/{id}")),
        )
        .header(RANGE_H, hv(&progress(size)))
        .header(UPLOAD_UUID, hv(id))
        .header(header::CONTENT_LENGTH, 0)
        .body(empty())
        .map_err(ApiError::internal)
}

fn range_error(name: &str, id: &str, size: u64) -> ApiError {
    ApiError::new(ErrorCode::BlobUploadInvalid)
        .status(StatusCode::RANGE_NOT_SATISFIABLE)
        .message(format!(
            "chunk does not continue the upload at offset {size}"
        ))
        .header(
            header::LOCATION,
            hv(&format!("/v2/{name}/blobs/uploads/{id}")),
        )
        .header(RANGE_H, hv(&progress(size)))
        .header(UPLOAD_UUID, hv(id))
}

fn token_request_error(msg: &str) -> ApiError {
    ApiError::new(ErrorCode::Unsupported)
        .status(StatusCode::BAD_REQUEST)
        .message(msg.to_string())
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| {
        ApiError::new(ErrorCode::DigestInvalid)
            .message(format!("invalid digest {s:?}: {e}"))
            .detail(serde_json::json!(s))
    })
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// `Content-Range: <start>-<end>` of an upload chunk (a `bytes ` prefix is tolerated).
fn content_range(req: &Request<Incoming>) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = req.headers().get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    parse_content_range(s).map(Some).ok_or_else(|| {
        ApiError::new(ErrorCode::BlobUploadInvalid)
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .message(format!("invalid Content-Range {s:?}"))
    })
}

pub(crate) fn parse_content_range(s: &str) -> Option<(u64, u64)> {
    let s = s.trim();
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// A single `bytes=` range against a blob of `size` bytes → inclusive (start, end).
pub(crate) fn parse_byte_range(s: &str, size: u64) -> Option<(u64, u64)> {
    let spec = s.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        return Some((size.saturating_sub(n), size - 1));
    }
    let start: u64 = a.parse().ok()?;
    if start >= size {
        return None;
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        b.parse::<u64>().ok()?.min(size - 1)
    };
    (start <= end).then_some((start, end))
}

/// Decoded `application/x-www-form-urlencoded` pairs (query strings and token forms).
pub(crate) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

/// `n`/`last` pagination over a sorted list. Returns the page and, when more follow,
/// the (last, n) of the next page's link.
#[allow(clippy::type_complexity)]
fn paginate(
    items: Vec<String>,
    query: Option<&str>,
) -> Result<(Vec<String>, Option<(String, usize)>), ApiError> {
    let q = query_pairs(query);
    let last = q.iter().find(|(k, _)| k == "last").map(|(_, v)| v.clone());
    let n = match q.iter().find(|(k, _)| k == "n") {
        Some((_, v)) => Some(v.parse::<usize>().map_err(|_| {
            ApiError::new(ErrorCode::Unsupported)
                .status(StatusCode::BAD_REQUEST)
                .message(format!("invalid n parameter {v:?}"))
        })?),
        None => None,
    };
    let rest: Vec<String> = match &last {
        Some(l) => items.into_iter().filter(|x| x > l).collect(),
        None => items,
    };
    match n {
        Some(n) if n < rest.len() => {
            let page: Vec<String> = rest.into_iter().take(n).collect();
            let next = page.last().map(|l| (l.clone(), n));
            Ok((page, next))
        }
        _ => Ok((rest, None)),
    }
}

async fn read_limited(body: Incoming, limit: u64) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, limit as usize);
    let collected = tokio::time::timeout(BODY_IDLE_TIMEOUT, limited.collect())
        .await
        .map_err(|_| {
            ApiError::new(ErrorCode::Unknown)
                .status(StatusCode::REQUEST_TIMEOUT)
                .message("the request body did not arrive in time")
        })?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::new(ErrorCode::SizeInvalid)
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .message(format!("request body exceeds {limit} bytes")))
        }
        Err(e) => Err(ApiError::new(ErrorCode::Unknown)
            .status(StatusCode::BAD_REQUEST)
            .message(format!("reading the request body failed: {e}"))),
    }
}

/// The bytes of a blob, memory-mapped: on plain TCP they go out with sendfile(2) straight from
/// the page cache (see `zerocopy`), otherwise with one copy from the map; no read buffers
/// either way, which keeps both throughput up and RSS down. Small blobs are simply read.
fn map_blob(path: &std::path::Path, size: u64) -> io::Result<Bytes> {
    if size <= 64 * 1024 {
        let file = std::fs::File::open(path)?;
        let actual = file.metadata()?.len();
        if actual != size {
            return Err(io::Error::other(format!(
                "blob {} changed size ({size} -> {actual})",
                path.display()
            )));
        }
        let mut v = Vec::with_capacity(size as usize);
        io::Read::read_to_end(&mut io::Read::take(file, size), &mut v)?;
        return Ok(Bytes::from(v));
    }
    super::zerocopy::cached_map(path, size)
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn routes() {
        assert_eq!(parse_route("/v2/"), Route::Base);
        assert_eq!(parse_route("/v2/_catalog"), Route::Catalog);
        assert_eq!(parse_route("/v2/a/b/tags/list"), Route::Tags("a/b"));
        assert_eq!(
            parse_route("/v2/a/manifests/latest"),
            Route::Manifest("a", "latest")
        );
        assert_eq!(
            parse_route("/v2/a/blobs/sha256:x"),
            Route::Blob("a", "sha256:x")
        );
        assert_eq!(
            parse_route("/v2/a/b/blobs/uploads/"),
            Route::UploadStart("a/b")
        );
        assert_eq!(
            parse_route("/v2/a/blobs/uploads/abc"),
            Route::Upload("a", "abc")
        );
        assert_eq!(
            parse_route("/v2/a/referrers/sha256:x"),
            Route::Referrers("a", "sha256:x")
        );
        // Names may contain route words.
        assert_eq!(
            parse_route("/v2/blobs/manifests/manifests/v1"),
            Route::Manifest("blobs/manifests", "v1")
        );
        assert_eq!(parse_route("/v2/a/other/x"), Route::NotFound);
        assert_eq!(parse_route("/v1/a"), Route::NotFound);
        assert_eq!(parse_route("/v2/a/manifests/"), Route::NotFound);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_byte_range("bytes=95-200", 100), Some((95, 99)));
        assert_eq!(parse_byte_range("bytes=100-", 100), None);
        assert_eq!(parse_byte_range("bytes=5-1", 100), None);
        assert_eq!(parse_byte_range("bytes=0-1,3-4", 100), None);
        assert_eq!(parse_byte_range("items=0-1", 100), None);
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10, 19)));
        assert_eq!(parse_content_range("9-1"), None);
    }

    #[test]
    fn pagination() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let (p, next) = paginate(items.clone(), Some("n=2")).unwrap();
        assert_eq!(p, vec!["a", "b"]);
        assert_eq!(next, Some(("b".to_string(), 2)));
        let (p, next) = paginate(items.clone(), Some("n=2&last=b")).unwrap();
        assert_eq!(p, vec!["c", "d"]);
        assert_eq!(next, None);
        let (p, _) = paginate(items.clone(), None).unwrap();
        assert_eq!(p.len(), 4);
        assert!(paginate(items, Some("n=x")).is_err());
    }

    #[test]
    fn queries() {
        let q = query_pairs(Some("from=me%2Fbusybox&mount=sha256%3Aab&x&scope=a+b"));
        assert_eq!(q[0], ("from".into(), "me/busybox".into()));
        assert_eq!(q[1], ("mount".into(), "sha256:ab".into()));
        assert_eq!(q[2], ("x".into(), "".into()));
        assert_eq!(q[3], ("scope".into(), "a b".into()));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,120}", size in 0u64..1000) {
            let _ = parse_route(&s);
            let _ = parse_byte_range(&s, size);
            let _ = parse_content_range(&s);
            let _ = query_pairs(Some(&s));
        }

        #[test]
        fn byte_ranges_stay_inside(a in 0u64..2000, b in 0u64..2000, size in 1u64..1000) {
            if let Some((s, e)) = parse_byte_range(&format!("bytes={a}-{b}"), size) {
                prop_assert!(s <= e && e < size);
            }
        }
    }
}
