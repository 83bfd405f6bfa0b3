//! The registry client: what `berth daemon` uses to pull, push and log in, against Docker
//! Hub, distribution, berth's own registry and any OCI distribution registry.
//!
//! ```text
//! RegistryClient (shared; per-host HTTP clients, token cache, insecure/mirror settings)
//!   ├── endpoints(domain)           mirrors for docker.io; https then http for insecure hosts
//!   ├── open(endpoint, repo, …)     ping /v2/, learn the auth challenge → Repository
//!   └── login(server, credentials)  Docker's POST /auth check
//! Repository (cheap to clone; one repository on one endpoint with one set of credentials)
//!   manifests: get / head / put;  blobs: head / get (streamed, resumed) / mount / upload
//! ```
//!
//! Authentication follows the challenge the registry presents: Basic, or Docker's bearer
//! token flow (anonymous tokens, identity tokens, scopes widened on `insufficient_scope`).
//! Idempotent requests are retried a bounded number of times on connection failures, stalls
//! and 5xx answers; blob downloads resume with `Range` after a broken connection. Errors use
//! Docker's wording (see [`error`]).

pub mod auth;
pub mod error;
pub mod manifest;
mod repository;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub use auth::Credentials;
pub use error::ClientError;
pub use manifest::{Descriptor, ImageManifest, Index, Manifest, Platform};
pub use repository::{BlobStream, FetchedManifest, ManifestHead, MountOutcome, Repository};
pub use transport::{Endpoint, InsecureRegistries, TransportConfig};

use auth::TokenCache;
use transport::{Clients, DOCKER_HUB_DOMAIN, DOCKER_HUB_LEGACY_DOMAIN, DOCKER_HUB_REGISTRY};

/// What the client may do in a repository (the token scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    PullPush,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::PullPush => "pull,push",
        }
    }
}

/// The token scope for `actions` on repository `name`.
pub fn repository_scope(name: &str, actions: &str) -> String {
    format!("repository:{name}:{actions}")
}

/// Client settings (daemon.json's `registry-mirrors` and `insecure-registries`, certs.d,
/// timeouts, retries).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Mirrors of Docker Hub, tried in order before it (`http://127.0.0.1:5000`).
    pub mirrors: Vec<String>,
    /// Insecure registries: CIDRs and `host[:port]` names.
    pub insecure_registries: Vec<String>,
    /// Add Docker's default insecure range, 127.0.0.0/8 (Docker always does; tests of TLS
    /// verification against a loopback registry turn it off).
    pub insecure_loopback: bool,
    pub transport: TransportConfig,
    /// Extra attempts for idempotent requests after a transient failure.
    pub retries: u32,
    /// The first retry waits this long; each further one twice as long.
    pub retry_delay: Duration,
    /// Upload blobs in `PATCH` chunks of this size (`None`: one streamed `PATCH`, as Docker).
    pub upload_chunk_size: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            mirrors: Vec::new(),
            insecure_registries: Vec::new(),
            insecure_loopback: true,
            transport: TransportConfig::default(),
            retries: 3,
            retry_delay: Duration::from_millis(250),
            upload_chunk_size: None,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) cfg: ClientConfig,
    pub(crate) insecure: InsecureRegistries,
    pub(crate) mirrors: Vec<Url>,
    pub(crate) clients: Clients,
    pub(crate) tokens: TokenCache,
}

/// The registry client. Cheap to clone; share one per process so connections and tokens are
/// reused.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("mirrors", &self.inner.cfg.mirrors)
            .field("insecure_registries", &self.inner.cfg.insecure_registries)
            .finish()
    }
}

/// The registry host a reference domain is served from (`docker.io` → `registry-1.docker.io`).
pub fn registry_host(domain: &str) -> &str {
    if domain == DOCKER_HUB_DOMAIN || domain == DOCKER_HUB_LEGACY_DOMAIN {
        DOCKER_HUB_REGISTRY
    } else {
        domain
    }
}

/// Normalises a login server address (`https://index.docker.io/v1/`, `localhost:5000`,
/// `http://reg:5000/`) to the reference domain it stands for.
pub fn login_domain(server_address: &str) -> String {
    let s = server_address.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "" | DOCKER_HUB_DOMAIN | DOCKER_HUB_LEGACY_DOMAIN | DOCKER_HUB_REGISTRY => {
            DOCKER_HUB_DOMAIN.to_string()
        }
        _ => host,
    }
}

impl RegistryClient {
    pub fn new(cfg: ClientConfig) -> Result<RegistryClient, ClientError> {
        let insecure = InsecureRegistries::new(&cfg.insecure_registries, cfg.insecure_loopback)?;
        let mut mirrors = Vec::new();
        for m in &cfg.mirrors {
            let mut u = Url::parse(m.trim())
                .map_err(|e| ClientError::Invalid(format!("invalid mirror {m:?}: {e}")))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(ClientError::Invalid(format!(
                    "invalid mirror {m:?}: it must be an http:// or https:// URL"
                )));
            }
            u.set_path("/");
            u.set_query(None);
            mirrors.push(u);
        }
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                clients: Clients::new(cfg.transport.clone()),
                insecure,
                mirrors,
                cfg,
                tokens: TokenCache::default(),
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// Whether `host[:port]` is an insecure registry.
    pub async fn is_insecure(&self, host_port: &str) -> bool {
        self.inner.insecure.contains(host_port).await
    }

    /// The endpoints to try for a reference domain, in order: the mirrors (pulls from Docker
    /// Hub only), then the registry itself over HTTPS, then — for an insecure registry —
    /// plain HTTP when HTTPS cannot be reached.
    pub async fn endpoints(&self, domain: &str, pull: bool) -> Result<Vec<Endpoint>, ClientError> {
        let mut out = Vec::new();
        let hub = domain == DOCKER_HUB_DOMAIN || domain == DOCKER_HUB_LEGACY_DOMAIN;
        if hub && pull {
            for m in &self.inner.mirrors {
                let insecure = self.is_insecure(&transport::host_port_of(m)).await;
                out.push(Endpoint {
                    base: m.clone(),
                    mirror: true,
                    skip_verify: insecure && m.scheme() == "https",
                    only_if_unreachable: false,
                });
            }
        }
        let host = registry_host(domain);
        let https = Url::parse(&format!("https://{host}/"))
            .map_err(|e| ClientError::Invalid(format!("invalid registry address {host:?}: {e}")))?;
        let insecure = !hub && self.is_insecure(host).await;
        out.push(Endpoint {
            base: https,
            mirror: false,
            skip_verify: insecure,
            only_if_unreachable: false,
        });
        if insecure {
            let http = Url::parse(&format!("http://{host}/")).map_err(|e| {
                ClientError::Invalid(format!("invalid registry address {host:?}: {e}"))
            })?;
            out.push(Endpoint {
                base: http,
                mirror: false,
                skip_verify: false,
                only_if_unreachable: true,
            });
        }
        Ok(out)
    }

    /// Opens repository `name` on `endpoint`: pings `/v2/` to learn how to authenticate.
    pub async fn open(
        &self,
        endpoint: &Endpoint,
        name: &str,
        creds: Credentials,
        access: Access,
    ) -> Result<Repository, ClientError> {
        Repository::open(
            self.inner.clone(),
            endpoint.clone(),
            name,
            creds,
            vec![repository_scope(name, access.actions())],
        )
        .await
    }

    /// Opens repository `name` of `domain` on the first endpoint that answers (not mirrors:
    /// for pushes, tag lists and inspection; pulls walk [`RegistryClient::endpoints`]
    /// themselves to fall back from mirrors).
    pub async fn open_registry(
        &self,
        domain: &str,
        name: &str,
        creds: Credentials,
        access: Access,
    ) -> Result<Repository, ClientError> {
        let eps = self.endpoints(domain, false).await?;
        let mut last = None;
        for ep in eps {
            if ep.only_if_unreachable && !last.as_ref().is_some_and(ClientError::is_unreachable) {
                break;
            }
            match self.open(&ep, name, creds.clone(), access).await {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Invalid(format!("no endpoint for {domain}"))))
    }

    /// Docker's login check (`POST /auth`): the credentials must get a 200 from `/v2/`
    /// (directly with Basic, or with a token from the registry's token service). Returns the
    /// identity (refresh) token when the token service issued one.
    pub async fn login(
        &self,
        server_address: &str,
        creds: &Credentials,
    ) -> Result<String, ClientError> {
        let domain = login_domain(server_address);
        let eps = self.endpoints(&domain, false).await?;
        let mut last: Option<ClientError> = None;
        for ep in eps {
            if ep.only_if_unreachable && !last.as_ref().is_some_and(ClientError::is_unreachable) {
                break;
            }
            match repository::login(self.inner.clone(), &ep, creds).await {
                Ok(t) => return Ok(t),
                Err(e) => {
                    tracing::debug!(endpoint = %ep.base, error = %e, "login attempt failed");
                    last = Some(e)
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Invalid(format!("no endpoint for {domain}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_follow_docker() {
        let c = RegistryClient::new(ClientConfig {
            mirrors: vec!["http://127.0.0.1:5999".into()],
            ..Default::default()
        })
        .unwrap();
        let eps = c.endpoints("docker.io", true).await.unwrap();
        assert_eq!(eps.len(), 2);
        assert!(eps[0].mirror);
        assert_eq!(eps[0].base.as_str(), "http://127.0.0.1:5999/");
        assert_eq!(eps[1].base.as_str(), "https://registry-1.docker.io/");
        // pushes never go to mirrors
        assert_eq!(c.endpoints("docker.io", false).await.unwrap().len(), 1);
        // loopback registries are insecure: https without verification, then http
        let eps = c.endpoints("localhost:5000", true).await.unwrap();
        assert_eq!(eps.len(), 2);
        assert!(eps[0].skip_verify);
        assert_eq!(eps[1].base.as_str(), "http://localhost:5000/");
        assert!(eps[1].only_if_unreachable);
        let eps = c.endpoints("10.9.8.7:443", true).await.unwrap();
        assert_eq!(eps.len(), 1);
        assert!(!eps[0].skip_verify);
        assert!(RegistryClient::new(ClientConfig {
            mirrors: vec!["ftp://x".into()],
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn login_domains() {
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain(""), "docker.io");
        assert_eq!(login_domain("localhost:5000"), "localhost:5000");
        assert_eq!(login_domain("http://Reg.Example:5000/"), "reg.example:5000");
        assert_eq!(registry_host("docker.io"), "registry-1.docker.io");
        assert_eq!(registry_host("quay.io"), "quay.io");
    }
}
