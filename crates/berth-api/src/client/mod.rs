//! A typed client for the Engine API, used by the berth CLI and compose.
//!
//! Every method maps to one endpoint and returns the same model types the server uses.
//! Each request uses its own connection (unix sockets are cheap to connect and the CLI makes
//! few requests; it also keeps hijacked and streaming requests independent). The API version
//! is negotiated once, with `HEAD /_ping`, like the Docker CLI.

mod host;
mod ssh;

use std::io;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST, UPGRADE, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyDataStream, BodyExt};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::OnceCell;
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::io::StreamReader;

pub use host::{resolve_host, resolve_host_with};
pub use ssh::SshSpec;

use crate::backend::*;
use crate::models::*;
use crate::server::response::{empty_body, full_body, stream_body, Body};
use crate::{ApiVersion, Filters, Hijacked, MAX_API_VERSION, MIN_API_VERSION};

/// A raw, bidirectional connection to the daemon.
pub type RawConn = Box<dyn RawStream>;

/// What a raw connection is: any async byte stream.
pub trait RawStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> RawStream for T {}

/// A stream of decoded items or client errors.
pub type ClientStream<T> = Pin<Box<dyn Stream<Item = Result<T, ClientError>> + Send>>;

/// Errors of the client. `Display` is what the Docker CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")]
    Connect {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("Error response from daemon: {message}")]
    Api { status: StatusCode, message: String },
    #[error("invalid host {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },
    #[error("request to the daemon failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("{0} (from BERTH_API_VERSION / DOCKER_API_VERSION)")]
    InvalidVersion(String),
    #[error("cannot build the request: {0}")]
    Request(String),
    #[error("cannot decode the daemon's response: {0}")]
    Decode(String),
    #[error("the daemon did not upgrade the connection (status {0})")]
    NotUpgraded(StatusCode),
    #[error("I/O error talking to the daemon: {0}")]
    Io(#[from] io::Error),
    /// A TLS failure (handshake refused, certificate not trusted…), in Go's words.
    #[error("error during connect: {host}: {message}")]
    Tls { host: String, message: String },
    #[error("{0}")]
    TlsConfig(#[from] crate::tls::TlsError),
}

impl ClientError {
    /// The HTTP status of a daemon error response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The daemon's message (without the `Error response from daemon:` prefix).
    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            Self::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Clone)]
enum Transport {
    Unix(PathBuf),
    /// `host:port`
    Tcp(String),
    /// `host:port` with TLS; the server's certificate must be valid for `name`.
    Tls {
        addr: String,
        name: rustls::pki_types::ServerName<'static>,
        connector: crate::tls::TlsConnector,
    },
    /// Through the system's ssh client and `berth system dial-stdio` on the remote host.
    Ssh(ssh::SshSpec),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => f.debug_tuple("Unix").field(p).finish(),
            Self::Tcp(a) => f.debug_tuple("Tcp").field(a).finish(),
            Self::Tls { addr, name, .. } => f
                .debug_struct("Tls")
                .field("addr", addr)
                .field("name", name)
                .finish(),
            Self::Ssh(spec) => f.debug_tuple("Ssh").field(spec).finish(),
        }
    }
}

/// What `_ping` told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingInfo {
    /// `Api-Version` (the daemon's newest version); `None` if the header is missing.
    pub api_version: Option<ApiVersion>,
    pub os_type: Option<String>,
    pub experimental: bool,
    pub server: Option<String>,
}

/// A pending `POST /containers/{id}/wait`: the daemon has accepted it (headers received);
/// [`PendingWait::result`] waits for the body.
#[derive(Debug)]
pub struct PendingWait {
    response: Response<Incoming>,
}

impl PendingWait {
    pub async fn result(self) -> Result<ContainerWaitResponse> {
        let bytes = self.response.into_body().collect().await?.to_bytes();
        decode(&bytes)
    }
}

/// The Engine API client.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    host: String,
    pinned: Option<ApiVersion>,
    negotiated: OnceCell<ApiVersion>,
    user_agent: String,
}

/// Options for [`Client::image_import`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub message: Option<String>,
    pub changes: Vec<String>,
    pub platform: Option<String>,
}

impl Client {
    /// A client for `unix:///path/to.sock` or `tcp://host:port` (port defaults to 2375).
    pub fn from_host(host: &str) -> Result<Self> {
        let invalid = |reason: &str| ClientError::InvalidHost {
            host: host.to_string(),
            reason: reason.to_string(),
        };
        let transport = if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid("the socket path is empty"));
            }
            Transport::Unix(PathBuf::from(path))
        } else if let Some(rest) = host.strip_prefix("tcp://") {
            let hostport = rest.trim_end_matches('/');
            if hostport.is_empty() {
                return Err(invalid("the address is empty"));
            }
            if hostport.contains('/') {
                return Err(invalid("paths are not supported after tcp://host:port"));
            }
            let has_port = match hostport.rsplit_once(':') {
                Some((h, p)) => {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':')
                }
                None => false,
            };
            Transport::Tcp(if has_port {
                hostport.to_string()
            } else {
                format!("{hostport}:2375")
            })
        } else if host.starts_with("ssh://") {
            Transport::Ssh(ssh::SshSpec::parse(host).map_err(|e| invalid(&e))?)
        } else {
            return Err(invalid(
                "expected unix:///path/to.sock, tcp://host:port or ssh://[user@]host[:port]",
            ));
        };
        Ok(Self {
            transport,
            host: host.to_string(),
            pinned: None,
            negotiated: OnceCell::new(),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
        })
    }

    /// Like [`Client::from_host`] with the `-H` / `BERTH_HOST` / `DOCKER_HOST` rules; a
    /// `BERTH_API_VERSION` or `DOCKER_API_VERSION` in the environment pins the API version.
    pub fn from_env(flag: Option<&str>) -> Result<Self> {
        let client = Self::from_host(&resolve_host(flag))?;
        let pinned = ["BERTH_API_VERSION", "DOCKER_API_VERSION"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
        match pinned {
            None => Ok(client),
            Some(v) => {
                let version = v.parse().map_err(|e: crate::ParseVersionError| {
                    ClientError::InvalidVersion(e.to_string())
                })?;
                Ok(client.with_version(version))
            }
        }
    }

    /// Speaks TLS with `config` to a `tcp://` host (a unix socket stays plain, as with the
    /// Docker CLI).
    pub fn with_tls(mut self, config: rustls::ClientConfig) -> Result<Self> {
        if let Transport::Tcp(addr) = &self.transport {
            let host = match addr.rsplit_once(':') {
                Some((h, _)) => h,
                None => addr.as_str(),
            };
            let name = crate::tls::server_name(host)?;
            self.transport = Transport::Tls {
                addr: addr.clone(),
                name,
                connector: crate::tls::TlsConnector::from(std::sync::Arc::new(config)),
            };
        }
        Ok(self)
    }

    /// True when requests go over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls { .. })
    }

    /// A second client to the same daemon with the same settings (for concurrent work);
    /// the negotiated API version is carried over.
    pub fn duplicate(&self) -> Self {
        let negotiated = OnceCell::new();
        if let Some(v) = self.negotiated.get() {
            let _ = negotiated.set(*v);
        }
        Self {
            transport: self.transport.clone(),
            host: self.host.clone(),
            pinned: self.pinned,
            negotiated,
            user_agent: self.user_agent.clone(),
        }
    }

    /// Uses this API version without negotiating (like `DOCKER_API_VERSION`).
    pub fn with_version(mut self, version: ApiVersion) -> Self {
        self.pinned = Some(version);
        self
    }

    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The host this client talks to, as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    // ----- plumbing -----

    async fn connect(&self) -> Result<hyper::client::conn::http1::SendRequest<Body>> {
        let connect_err = |source| ClientError::Connect {
            host: self.host.clone(),
            source,
        };
        let builder = hyper::client::conn::http1::Builder::new();
        macro_rules! handshake {
            ($stream:expr) => {{
                let (sender, conn) = builder.handshake(TokioIo::new($stream)).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.with_upgrades().await {
                        tracing::debug!(error = %e, "API client connection ended with an error");
                    }
                });
                sender
            }};
        }
        Ok(match &self.transport {
            Transport::Unix(path) => {
                handshake!(UnixStream::connect(path).await.map_err(connect_err)?)
            }
            Transport::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await.map_err(connect_err)?;
                let _ = stream.set_nodelay(true);
                handshake!(stream)
            }
            Transport::Tls {
                addr,
                name,
                connector,
            } => {
                let stream = TcpStream::connect(addr).await.map_err(connect_err)?;
                let _ = stream.set_nodelay(true);
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| self.tls_error(&e))?;
                handshake!(tls)
            }
            Transport::Ssh(spec) => handshake!(spec.connect().map_err(connect_err)?),
        })
    }

    /// A raw connection to the daemon (what `system dial-stdio` relays).
    pub async fn connect_raw(&self) -> Result<RawConn> {
        let connect_err = |source| ClientError::Connect {
            host: self.host.clone(),
            source,
        };
        Ok(match &self.transport {
            Transport::Unix(path) => {
                Box::new(UnixStream::connect(path).await.map_err(connect_err)?)
            }
            Transport::Tcp(addr) => Box::new(TcpStream::connect(addr).await.map_err(connect_err)?),
            Transport::Tls {
                addr,
                name,
                connector,
            } => {
                let stream = TcpStream::connect(addr).await.map_err(connect_err)?;
                Box::new(
                    connector
                        .connect(name.clone(), stream)
                        .await
                        .map_err(|e| self.tls_error(&e))?,
                )
            }
            Transport::Ssh(spec) => Box::new(spec.connect().map_err(connect_err)?),
        })
    }

    /// A TLS failure surfaced as an I/O error (tokio-rustls wraps rustls' errors).
    fn tls_error(&self, e: &io::Error) -> ClientError {
        ClientError::Tls {
            host: self.host.clone(),
            message: crate::tls::describe_io(e),
        }
    }

    /// A hyper error caused by TLS (the server refusing our certificate shows up at the first
    /// read after a TLS 1.3 handshake) becomes [`ClientError::Tls`].
    fn classify(&self, e: hyper::Error) -> ClientError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(r) = err.downcast_ref::<rustls::Error>() {
                return ClientError::Tls {
                    host: self.host.clone(),
                    message: crate::tls::describe(r),
                };
            }
            if let Some(io) = err.downcast_ref::<io::Error>() {
                if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return ClientError::Tls {
                        host: self.host.clone(),
                        message: crate::tls::describe(r),
                    };
                }
            }
            source = err.source();
        }
        ClientError::Http(e)
    }

    fn host_header(&self) -> HeaderValue {
        match &self.transport {
            Transport::Unix(_) | Transport::Ssh(_) => HeaderValue::from_static("localhost"),
            Transport::Tcp(addr) | Transport::Tls { addr, .. } => {
                HeaderValue::from_str(addr).unwrap_or(HeaderValue::from_static("localhost"))
            }
        }
    }

    async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>> {
        let mut sender = self.connect().await?;
        sender.send_request(req).await.map_err(|e| self.classify(e))
    }

    fn request(
        &self,
        method: Method,
        uri: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Body,
    ) -> Result<Request<Body>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, self.host_header())
            .header(USER_AGENT, self.user_agent.as_str());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        builder
            .body(body)
            .map_err(|e| ClientError::Request(e.to_string()))
    }

    /// `HEAD /_ping`.
    pub async fn ping(&self) -> Result<PingInfo> {
        let req = self.request(Method::HEAD, "/_ping", &[], empty_body())?;
        let mut resp = self.send(req).await?;
        if !resp.status().is_success() {
            // As the Docker CLI: a failed HEAD is asked again with GET, whose body carries
            // the reason (a HEAD answer has none).
            let req = self.request(Method::GET, "/_ping", &[], empty_body())?;
            resp = self.send(req).await?;
        }
        let resp = check(resp).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(PingInfo {
            api_version: header("api-version").and_then(|v| v.parse().ok()),
            os_type: header("ostype"),
            experimental: header("docker-experimental").is_some_and(|v| v == "true"),
            server: header("server"),
        })
    }

    /// The API version used in paths: pinned, or negotiated with `HEAD /_ping` (the lower of
    /// the daemon's and ours; 1.24 when the daemon does not say, as the Docker CLI does).
    pub async fn api_version(&self) -> Result<ApiVersion> {
        if let Some(v) = self.pinned {
            return Ok(v);
        }
        self.negotiated
            .get_or_try_init(|| async {
                let ping = self.ping().await?;
                Ok(ping
                    .api_version
                    .unwrap_or(MIN_API_VERSION)
                    .min(MAX_API_VERSION))
            })
            .await
            .copied()
    }

    async fn uri(&self, path: &str, query: &[(&str, String)]) -> Result<String> {
        let version = self.api_version().await?;
        let mut uri = format!("/v{version}{path}");
        if !query.is_empty() {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                ser.append_pair(k, v);
            }
            uri.push('?');
            uri.push_str(&ser.finish());
        }
        Ok(uri)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(HeaderName, HeaderValue)],
        body: Body,
    ) -> Result<Response<Incoming>> {
        let uri = self.uri(path, query).await?;
        let req = self.request(method, &uri, headers, body)?;
        check(self.send(req).await?).await
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let resp = self.call(method, path, query, &[], empty_body()).await?;
        read_json(resp).await
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &B,
    ) -> Result<T> {
        let resp = self
            .call(Method::POST, path, query, &json_headers(), json_body(body)?)
            .await?;
        read_json(resp).await
    }

    async fn call_empty(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<StatusCode> {
        let resp = self.call(method, path, query, &[], empty_body()).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        Ok(status)
    }

    async fn hijack(
        &self,
        path: &str,
        query: &[(&str, String)],
        content_type: &'static str,
        body: Body,
    ) -> Result<Hijacked> {
        let headers = [
            (CONNECTION, HeaderValue::from_static("Upgrade")),
            (UPGRADE, HeaderValue::from_static("tcp")),
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        ];
        let resp = self.call(Method::POST, path, query, &headers, body).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::NotUpgraded(resp.status()));
        }
        let upgraded = hyper::upgrade::on(resp).await?;
        Ok(Hijacked::from_upgraded(upgraded))
    }

    // ----- system -----

    pub async fn version(&self) -> Result<SystemVersion> {
        self.call_json(Method::GET, "/version", &[]).await
    }

    pub async fn info(&self) -> Result<SystemInfo> {
        self.call_json(Method::GET, "/info", &[]).await
    }

    pub async fn system_df(&self) -> Result<SystemDf> {
        self.call_json(Method::GET, "/system/df", &[]).await
    }

    /// `GET /events`: a stream of events until `until` (or forever).
    pub async fn events(&self, opts: &EventsOptions) -> Result<ClientStream<EventMessage>> {
        let mut q = Vec::new();
        push_time(&mut q, "since", opts.since);
        push_time(&mut q, "until", opts.until);
        push_filters(&mut q, &opts.filters);
        let resp = self
            .call(Method::GET, "/events", &q, &[], empty_body())
            .await?;
        Ok(json_lines(resp))
    }

    /// `POST /auth`.
    pub async fn auth(&self, config: &AuthConfig) -> Result<AuthResponse> {
        self.post_json("/auth", &[], config).await
    }

    // ----- containers -----

    pub async fn container_create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        body: &ContainerCreateBody,
    ) -> Result<ContainerCreateResponse> {
        let mut q = Vec::new();
        push_opt(&mut q, "name", name);
        push_opt(&mut q, "platform", platform);
        self.post_json("/containers/create", &q, body).await
    }

    pub async fn container_list(
        &self,
        opts: &ContainerListOptions,
    ) -> Result<Vec<ContainerSummary>> {
        let mut q = Vec::new();
        push_bool(&mut q, "all", opts.all);
        if let Some(limit) = opts.limit {
            q.push(("limit", limit.to_string()));
        }
        push_bool(&mut q, "size", opts.size);
        push_filters(&mut q, &opts.filters);
        self.call_json(Method::GET, "/containers/json", &q).await
    }

    pub async fn container_inspect(&self, id: &str, size: bool) -> Result<ContainerInspect> {
        let mut q = Vec::new();
        push_bool(&mut q, "size", size);
        self.call_json(Method::GET, &format!("/containers/{}/json", seg(id)), &q)
            .await
    }

    /// `POST /containers/{id}/start`: `NotModified` when it was already running.
    pub async fn container_start(&self, id: &str) -> Result<ChangeOutcome> {
        let status = self
            .call_empty(Method::POST, &format!("/containers/{}/start", seg(id)), &[])
            .await?;
        Ok(outcome(status))
    }

    /// `POST /containers/{id}/stop`: `NotModified` when it was not running.
    pub async fn container_stop(
        &self,
        id: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<ChangeOutcome> {
        let mut q = Vec::new();
        push_opt(&mut q, "signal", signal);
        if let Some(t) = timeout {
            q.push(("t", t.to_string()));
        }
        let status = self
            .call_empty(Method::POST, &format!("/containers/{}/stop", seg(id)), &q)
            .await?;
        Ok(outcome(status))
    }

    pub async fn container_restart(
        &self,
        id: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let mut q = Vec::new();
        push_opt(&mut q, "signal", signal);
        if let Some(t) = timeout {
            q.push(("t", t.to_string()));
        }
        self.call_empty(
            Method::POST,
            &format!("/containers/{}/restart", seg(id)),
            &q,
        )
        .await?;
        Ok(())
    }

    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        let mut q = Vec::new();
        push_opt(&mut q, "signal", signal);
        self.call_empty(Method::POST, &format!("/containers/{}/kill", seg(id)), &q)
            .await?;
        Ok(())
    }

    /// `POST /containers/{id}/wait`: returns once the daemon has registered the wait (the
    /// headers arrived), so it can be issued before `start` as the Docker CLI does.
    pub async fn container_wait(
        &self,
        id: &str,
        condition: Option<WaitCondition>,
    ) -> Result<PendingWait> {
        let mut q = Vec::new();
        if let Some(c) = condition {
            let c = match c {
                WaitCondition::NotRunning => "not-running",
                WaitCondition::NextExit => "next-exit",
                WaitCondition::Removed => "removed",
            };
            q.push(("condition", c.to_string()));
        }
        let response = self
            .call(
                Method::POST,
                &format!("/containers/{}/wait", seg(id)),
                &q,
                &[],
                empty_body(),
            )
            .await?;
        Ok(PendingWait { response })
    }

    pub async fn container_remove(&self, id: &str, opts: ContainerRemoveOptions) -> Result<()> {
        let mut q = Vec::new();
        push_bool(&mut q, "force", opts.force);
        push_bool(&mut q, "v", opts.volumes);
        push_bool(&mut q, "link", opts.link);
        self.call_empty(Method::DELETE, &format!("/containers/{}", seg(id)), &q)
            .await?;
        Ok(())
    }

    pub async fn container_pause(&self, id: &str) -> Result<()> {
        self.call_empty(Method::POST, &format!("/containers/{}/pause", seg(id)), &[])
            .await?;
        Ok(())
    }

    pub async fn container_unpause(&self, id: &str) -> Result<()> {
        self.call_empty(
            Method::POST,
            &format!("/containers/{}/unpause", seg(id)),
            &[],
        )
        .await?;
        Ok(())
    }

    pub async fn container_update(
        &self,
        id: &str,
        config: &UpdateConfig,
    ) -> Result<ContainerUpdateResponse> {
        self.post_json(&format!("/containers/{}/update", seg(id)), &[], config)
            .await
    }

    pub async fn container_rename(&self, id: &str, new_name: &str) -> Result<()> {
        let q = [("name", new_name.to_string())];
        self.call_empty(Method::POST, &format!("/containers/{}/rename", seg(id)), &q)
            .await?;
        Ok(())
    }

    pub async fn container_top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse> {
        let mut q = Vec::new();
        push_opt(&mut q, "ps_args", ps_args);
        self.call_json(Method::GET, &format!("/containers/{}/top", seg(id)), &q)
            .await
    }

    /// `GET /containers/{id}/logs`: raw bytes (stdcopy frames unless the container has a TTY).
    pub async fn container_logs(
        &self,
        id: &str,
        opts: &LogsOptions,
    ) -> Result<ClientStream<Bytes>> {
        let mut q = Vec::new();
        push_bool(&mut q, "follow", opts.follow);
        push_bool(&mut q, "stdout", opts.stdout);
        push_bool(&mut q, "stderr", opts.stderr);
        push_time(&mut q, "since", opts.since);
        push_time(&mut q, "until", opts.until);
        push_bool(&mut q, "timestamps", opts.timestamps);
        push_bool(&mut q, "details", opts.details);
        q.push((
            "tail",
            opts.tail
                .map(|n| n.to_string())
                .unwrap_or_else(|| "all".to_string()),
        ));
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{}/logs", seg(id)),
                &q,
                &[],
                empty_body(),
            )
            .await?;
        Ok(byte_stream(resp))
    }

    /// `POST /containers/{id}/attach`: the raw connection (write stdin, read output).
    pub async fn container_attach(&self, id: &str, opts: &AttachOptions) -> Result<Hijacked> {
        let mut q = Vec::new();
        push_bool(&mut q, "logs", opts.logs);
        push_bool(&mut q, "stderr", opts.stderr);
        push_bool(&mut q, "stdin", opts.stdin);
        push_bool(&mut q, "stdout", opts.stdout);
        push_bool(&mut q, "stream", opts.stream);
        if let Some(keys) = &opts.detach_keys {
            q.push(("detachKeys", keys.clone()));
        }
        self.hijack(
            &format!("/containers/{}/attach", seg(id)),
            &q,
            "text/plain",
            empty_body(),
        )
        .await
    }

    pub async fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let q = [("h", height.to_string()), ("w", width.to_string())];
        self.call_empty(Method::POST, &format!("/containers/{}/resize", seg(id)), &q)
            .await?;
        Ok(())
    }

    pub async fn container_changes(&self, id: &str) -> Result<Vec<FilesystemChange>> {
        self.call_json(
            Method::GET,
            &format!("/containers/{}/changes", seg(id)),
            &[],
        )
        .await
    }

    /// `GET /containers/{id}/stats`: newline-separated JSON documents, as bytes.
    pub async fn container_stats(
        &self,
        id: &str,
        opts: StatsOptions,
    ) -> Result<ClientStream<Bytes>> {
        let q = [
            ("stream", if opts.stream { "1" } else { "0" }.to_string()),
            (
                "one-shot",
                if opts.one_shot { "1" } else { "0" }.to_string(),
            ),
        ];
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{}/stats", seg(id)),
                &q,
                &[],
                empty_body(),
            )
            .await?;
        Ok(byte_stream(resp))
    }

    /// `GET /containers/{id}/archive?path=`: the path's stat and a tar stream.
    pub async fn container_archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(ContainerPathStat, ClientStream<Bytes>)> {
        let q = [("path", path.to_string())];
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{}/archive", seg(id)),
                &q,
                &[],
                empty_body(),
            )
            .await?;
        let stat = path_stat(&resp)?;
        Ok((stat, byte_stream(resp)))
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub async fn container_archive_stat(&self, id: &str, path: &str) -> Result<ContainerPathStat> {
        let q = [("path", path.to_string())];
        let resp = self
            .call(
                Method::HEAD,
                &format!("/containers/{}/archive", seg(id)),
                &q,
                &[],
                empty_body(),
            )
            .await?;
        path_stat(&resp)
    }

    /// `PUT /containers/{id}/archive`: extract `tar` at `opts.path`.
    pub async fn container_archive_put(
        &self,
        id: &str,
        opts: &ArchivePutOptions,
        tar: BodyStream,
    ) -> Result<()> {
        let mut q = vec![("path", opts.path.clone())];
        push_bool(
            &mut q,
            "noOverwriteDirNonDir",
            opts.no_overwrite_dir_non_dir,
        );
        push_bool(&mut q, "copyUIDGID", opts.copy_uid_gid);
        let headers = [(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"))];
        let resp = self
            .call(
                Method::PUT,
                &format!("/containers/{}/archive", seg(id)),
                &q,
                &headers,
                stream_body(tar),
            )
            .await?;
        resp.into_body().collect().await?;
        Ok(())
    }

    /// `GET /containers/{id}/export`: the filesystem as a tar.
    pub async fn container_export(&self, id: &str) -> Result<ClientStream<Bytes>> {
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{}/export", seg(id)),
                &[],
                &[],
                empty_body(),
            )
            .await?;
        Ok(byte_stream(resp))
    }

    pub async fn container_prune(&self, filters: &Filters) -> Result<ContainersPruneReport> {
        let mut q = Vec::new();
        push_filters(&mut q, filters);
        self.call_json(Method::POST, "/containers/prune", &q).await
    }

    pub async fn image_prune(&self, filters: &Filters) -> Result<ImagesPruneReport> {
        let mut q = Vec::new();
        push_filters(&mut q, filters);
        self.call_json(Method::POST, "/images/prune", &q).await
    }

    /// `POST /build/prune`.
    pub async fn build_prune(&self, opts: &BuildPruneOptions) -> Result<BuildCachePruneReport> {
        let mut q = Vec::new();
        push_bool(&mut q, "all", opts.all);
        if opts.keep_storage > 0 {
            q.push(("keep-storage", opts.keep_storage.to_string()));
        }
        push_filters(&mut q, &opts.filters);
        self.call_json(Method::POST, "/build/prune", &q).await
    }

    pub async fn volume_prune(&self, filters: &Filters) -> Result<VolumesPruneReport> {
        let mut q = Vec::new();
        push_filters(&mut q, filters);
        self.call_json(Method::POST, "/volumes/prune", &q).await
    }

    pub async fn network_prune(&self, filters: &Filters) -> Result<NetworksPruneReport> {
        let mut q = Vec::new();
        push_filters(&mut q, filters);
        self.call_json(Method::POST, "/networks/prune", &q).await
    }

    // ----- exec -----

    pub async fn exec_create(&self, container: &str, config: &ExecConfig) -> Result<IdResponse> {
        self.post_json(&format!("/containers/{}/exec", seg(container)), &[], config)
            .await
    }

    /// `POST /exec/{id}/start` attached: the raw connection.
    pub async fn exec_start(&self, id: &str, config: &ExecStartConfig) -> Result<Hijacked> {
        let body = json_body(config)?;
        self.hijack(
            &format!("/exec/{}/start", seg(id)),
            &[],
            "application/json",
            body,
        )
        .await
    }

    /// `POST /exec/{id}/start` with `Detach: true`.
    pub async fn exec_start_detached(&self, id: &str, tty: bool) -> Result<()> {
        let config = ExecStartConfig {
            detach: true,
            tty,
            console_size: None,
        };
        let resp = self
            .call(
                Method::POST,
                &format!("/exec/{}/start", seg(id)),
                &[],
                &json_headers(),
                json_body(&config)?,
            )
            .await?;
        resp.into_body().collect().await?;
        Ok(())
    }

    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let q = [("h", height.to_string()), ("w", width.to_string())];
        self.call_empty(Method::POST, &format!("/exec/{}/resize", seg(id)), &q)
            .await?;
        Ok(())
    }

    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspect> {
        self.call_json(Method::GET, &format!("/exec/{}/json", seg(id)), &[])
            .await
    }

    // ----- images -----

    pub async fn image_list(&self, opts: &ImageListOptions) -> Result<Vec<ImageSummary>> {
        let mut q = Vec::new();
        push_bool(&mut q, "all", opts.all);
        push_filters(&mut q, &opts.filters);
        push_bool(&mut q, "digests", opts.digests);
        push_bool(&mut q, "shared-size", opts.shared_size);
        self.call_json(Method::GET, "/images/json", &q).await
    }

    pub async fn image_inspect(&self, name: &str) -> Result<ImageInspect> {
        self.call_json(
            Method::GET,
            &format!("/images/{}/json", image_path(name)),
            &[],
        )
        .await
    }

    pub async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        self.call_json(
            Method::GET,
            &format!("/images/{}/history", image_path(name)),
            &[],
        )
        .await
    }

    pub async fn image_tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let mut q = vec![("repo", repo.to_string())];
        push_opt(&mut q, "tag", tag);
        self.call_empty(
            Method::POST,
            &format!("/images/{}/tag", image_path(name)),
            &q,
        )
        .await?;
        Ok(())
    }

    pub async fn image_delete(
        &self,
        name: &str,
        opts: ImageDeleteOptions,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        let mut q = Vec::new();
        push_bool(&mut q, "force", opts.force);
        push_bool(&mut q, "noprune", opts.noprune);
        self.call_json(Method::DELETE, &format!("/images/{}", image_path(name)), &q)
            .await
    }

    /// `POST /images/create?fromImage=` (pull): progress messages.
    pub async fn image_pull(
        &self,
        from_image: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: &AuthConfig,
    ) -> Result<ClientStream<JsonMessage>> {
        let mut q = vec![("fromImage", from_image.to_string())];
        push_opt(&mut q, "tag", tag);
        push_opt(&mut q, "platform", platform);
        let resp = self
            .call(
                Method::POST,
                "/images/create",
                &q,
                &auth_header(auth),
                empty_body(),
            )
            .await?;
        Ok(json_lines(resp))
    }

    /// `POST /images/create?fromSrc=-` (import of a rootfs tar): progress messages.
    pub async fn image_import(
        &self,
        opts: &ImportOptions,
        tar: BodyStream,
    ) -> Result<ClientStream<JsonMessage>> {
        let mut q = vec![("fromSrc", "-".to_string())];
        push_opt(&mut q, "repo", opts.repo.as_deref());
        push_opt(&mut q, "tag", opts.tag.as_deref());
        push_opt(&mut q, "message", opts.message.as_deref());
        push_opt(&mut q, "platform", opts.platform.as_deref());
        for change in &opts.changes {
            q.push(("changes", change.clone()));
        }
        let headers = [(CONTENT_TYPE, HeaderValue::from_static("text/plain"))];
        let resp = self
            .call(
                Method::POST,
                "/images/create",
                &q,
                &headers,
                stream_body(tar),
            )
            .await?;
        Ok(json_lines(resp))
    }

    /// `POST /images/{name}/push?tag=`: progress messages.
    pub async fn image_push(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: &AuthConfig,
    ) -> Result<ClientStream<JsonMessage>> {
        let mut q = Vec::new();
        push_opt(&mut q, "tag", tag);
        let resp = self
            .call(
                Method::POST,
                &format!("/images/{}/push", image_path(name)),
                &q,
                &auth_header(auth),
                empty_body(),
            )
            .await?;
        Ok(json_lines(resp))
    }

    /// `POST /images/load`: progress messages.
    pub async fn images_load(
        &self,
        tar: BodyStream,
        quiet: bool,
    ) -> Result<ClientStream<JsonMessage>> {
        let q = [("quiet", if quiet { "1" } else { "0" }.to_string())];
        let headers = [(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"))];
        let resp = self
            .call(Method::POST, "/images/load", &q, &headers, stream_body(tar))
            .await?;
        Ok(json_lines(resp))
    }

    /// `GET /images/get?names=…`: a `docker save` tar.
    pub async fn images_get(&self, names: &[String]) -> Result<ClientStream<Bytes>> {
        let q: Vec<(&str, String)> = names.iter().map(|n| ("names", n.clone())).collect();
        let resp = self
            .call(Method::GET, "/images/get", &q, &[], empty_body())
            .await?;
        Ok(byte_stream(resp))
    }

    /// `POST /commit`.
    pub async fn commit(&self, opts: &CommitOptions) -> Result<IdResponse> {
        let mut q = vec![
            ("author", opts.author.clone()),
            ("comment", opts.comment.clone()),
            ("container", opts.container.clone()),
        ];
        for change in &opts.changes {
            q.push(("changes", change.clone()));
        }
        if !opts.pause {
            q.push(("pause", "0".to_string()));
        }
        push_opt(&mut q, "repo", opts.repo.as_deref());
        push_opt(&mut q, "tag", opts.tag.as_deref());
        let (headers, body) = match &opts.config {
            Some(config) => (json_headers().to_vec(), json_body(config)?),
            None => (Vec::new(), empty_body()),
        };
        let resp = self
            .call(Method::POST, "/commit", &q, &headers, body)
            .await?;
        read_json(resp).await
    }

    /// `POST /build` with a context tar: progress messages (`stream`, `aux`, `errorDetail`).
    pub async fn build(
        &self,
        opts: &BuildOptions,
        context: BodyStream,
    ) -> Result<ClientStream<JsonMessage>> {
        let mut q: Vec<(&str, String)> = Vec::new();
        for t in &opts.tags {
            q.push(("t", t.clone()));
        }
        q.push(("dockerfile", opts.dockerfile.clone()));
        push_bool(&mut q, "q", opts.quiet);
        push_bool(&mut q, "nocache", opts.no_cache);
        if !opts.rm {
            q.push(("rm", "0".to_string()));
        }
        push_bool(&mut q, "forcerm", opts.force_rm);
        push_bool(&mut q, "pull", opts.pull);
        if !opts.build_args.is_empty() {
            q.push(("buildargs", to_json(&opts.build_args)?));
        }
        if !opts.labels.is_empty() {
            q.push(("labels", to_json(&opts.labels)?));
        }
        if !opts.cache_from.is_empty() {
            q.push(("cachefrom", to_json(&opts.cache_from)?));
        }
        push_opt(&mut q, "target", opts.target.as_deref());
        push_opt(&mut q, "platform", opts.platform.as_deref());
        push_opt(&mut q, "networkmode", opts.network_mode.as_deref());
        push_opt(&mut q, "extrahosts", opts.extra_hosts.as_deref());
        for (key, value) in [
            ("shmsize", opts.shm_size),
            ("memory", opts.memory),
            ("memswap", opts.memswap),
            ("cpushares", opts.cpu_shares),
            ("cpuperiod", opts.cpu_period),
            ("cpuquota", opts.cpu_quota),
        ] {
            if let Some(v) = value {
                q.push((key, v.to_string()));
            }
        }
        push_opt(&mut q, "cpusetcpus", opts.cpuset_cpus.as_deref());
        push_opt(&mut q, "cpusetmems", opts.cpuset_mems.as_deref());
        push_bool(&mut q, "squash", opts.squash);
        push_opt(&mut q, "remote", opts.remote.as_deref());
        push_bool(&mut q, "berthtrace", opts.trace);
        q.push((
            "version",
            if opts.version.is_empty() {
                "1".to_string()
            } else {
                opts.version.clone()
            },
        ));
        let registry_config = {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE.encode(to_json(&opts.registry_config)?)
        };
        let headers = [
            (CONTENT_TYPE, HeaderValue::from_static("application/x-tar")),
            (
                HeaderName::from_static("x-registry-config"),
                HeaderValue::from_str(&registry_config)
                    .map_err(|e| ClientError::Request(e.to_string()))?,
            ),
        ];
        let resp = self
            .call(Method::POST, "/build", &q, &headers, stream_body(context))
            .await?;
        Ok(json_lines(resp))
    }

    pub async fn distribution_inspect(
        &self,
        name: &str,
        auth: &AuthConfig,
    ) -> Result<DistributionInspect> {
        let resp = self
            .call(
                Method::GET,
                &format!("/distribution/{}/json", image_path(name)),
                &[],
                &auth_header(auth),
                empty_body(),
            )
            .await?;
        read_json(resp).await
    }

    // ----- volumes -----

    pub async fn volume_list(&self, filters: &Filters) -> Result<VolumeListResponse> {
        let mut q = Vec::new();
        push_filters(&mut q, filters);
        self.call_json(Method::GET, "/volumes", &q).await
    }

    pub async fn volume_create(&self, body: &VolumeCreateBody) -> Result<Volume> {
        self.post_json("/volumes/create", &[], body).await
    }

    pub async fn volume_inspect(&self, name: &str) -> Result<Volume> {
        self.call_json(Method::GET, &format!("/volumes/{}", seg(name)), &[])
            .await
    }

    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let mut q = Vec::new();
        push_bool(&mut q, "force", force);
        self.call_empty(Method::DELETE, &format!("/volumes/{}", seg(name)), &q)
            .await?;
        Ok(())
    }

    // ----- networks -----

    pub async fn network_list(&self, filters: &Filters) -> Result<Vec<NetworkResource>> {
        let mut q = Vec::new();
        push_filters(&mut q, filters);
        self.call_json(Method::GET, "/networks", &q).await
    }

    pub async fn network_inspect(&self, id: &str) -> Result<NetworkResource> {
        self.call_json(Method::GET, &format!("/networks/{}", seg(id)), &[])
            .await
    }

    pub async fn network_create(
        &self,
        body: &NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse> {
        self.post_json("/networks/create", &[], body).await
    }

    pub async fn network_remove(&self, id: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &format!("/networks/{}", seg(id)), &[])
            .await?;
        Ok(())
    }

    pub async fn network_connect(&self, id: &str, body: &NetworkConnectRequest) -> Result<()> {
        let resp = self
            .call(
                Method::POST,
                &format!("/networks/{}/connect", seg(id)),
                &[],
                &json_headers(),
                json_body(body)?,
            )
            .await?;
        resp.into_body().collect().await?;
        Ok(())
    }

    pub async fn network_disconnect(
        &self,
        id: &str,
        body: &NetworkDisconnectRequest,
    ) -> Result<()> {
        let resp = self
            .call(
                Method::POST,
                &format!("/networks/{}/disconnect", seg(id)),
                &[],
                &json_headers(),
                json_body(body)?,
            )
            .await?;
        resp.into_body().collect().await?;
        Ok(())
    }
}

/// Turns error statuses into [`ClientError::Api`] with the daemon's message.
async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(resp);
    }
    let bytes = resp.into_body().collect().await?.to_bytes();
    let message = match serde_json::from_slice::<ErrorResponse>(&bytes) {
        Ok(body) if !body.message.is_empty() => body.message,
        _ => {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("unknown error")
                    .to_string()
            } else {
                text
            }
        }
    };
    Err(ClientError::Api { status, message })
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Decode(e.to_string()))
}

async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let bytes = resp.into_body().collect().await?.to_bytes();
    decode(&bytes)
}

fn outcome(status: StatusCode) -> ChangeOutcome {
    if status == StatusCode::NOT_MODIFIED {
        ChangeOutcome::NotModified
    } else {
        ChangeOutcome::Done
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| ClientError::Request(e.to_string()))
}

/// `json\n`, as the Docker CLI sends bodies.
fn json_body<T: Serialize + ?Sized>(value: &T) -> Result<Body> {
    let mut bytes = serde_json::to_vec(value).map_err(|e| ClientError::Request(e.to_string()))?;
    bytes.push(b'\n');
    Ok(full_body(bytes))
}

fn json_headers() -> [(HeaderName, HeaderValue); 1] {
    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))]
}

fn auth_header(auth: &AuthConfig) -> Vec<(HeaderName, HeaderValue)> {
    match HeaderValue::from_str(&auth.to_registry_auth_header()) {
        Ok(v) => vec![(HeaderName::from_static("x-registry-auth"), v)],
        Err(_) => Vec::new(),
    }
}

fn path_stat(resp: &Response<Incoming>) -> Result<ContainerPathStat> {
    use base64::Engine as _;
    let Some(value) = resp.headers().get("x-docker-container-path-stat") else {
        return Err(ClientError::Decode(
            "missing X-Docker-Container-Path-Stat header".into(),
        ));
    };
    let json = base64::engine::general_purpose::STANDARD
        .decode(value.as_bytes())
        .map_err(|e| ClientError::Decode(format!("X-Docker-Container-Path-Stat: {e}")))?;
    decode(&json)
}

fn push_bool(q: &mut Vec<(&'static str, String)>, key: &'static str, value: bool) {
    if value {
        q.push((key, "1".to_string()));
    }
}

fn push_opt(q: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<&str>) {
    if let Some(v) = value {
        q.push((key, v.to_string()));
    }
}

fn push_filters(q: &mut Vec<(&'static str, String)>, filters: &Filters) {
    if !filters.is_empty() {
        q.push(("filters", filters.to_json()));
    }
}

fn push_time(
    q: &mut Vec<(&'static str, String)>,
    key: &'static str,
    value: Option<chrono::DateTime<chrono::Utc>>,
) {
    if let Some(t) = value {
        q.push((
            key,
            format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos()),
        ));
    }
}

/// Percent-encodes one path segment (ids, names).
fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Image references go into the path unescaped apart from unsafe characters, slashes kept,
/// as the Docker CLI sends them (`/images/localhost:5000/me/busybox/push`).
fn image_path(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, IMAGE).to_string()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

const IMAGE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

fn byte_stream(resp: Response<Incoming>) -> ClientStream<Bytes> {
    Box::pin(BodyDataStream::new(resp.into_body()).map_err(ClientError::from))
}

/// Decodes a body of JSON documents, one per line (`\n` or `\r\n`).
fn json_lines<T: DeserializeOwned + Send + 'static>(resp: Response<Incoming>) -> ClientStream<T> {
    let reader = StreamReader::new(BodyDataStream::new(resp.into_body()).map_err(io::Error::other));
    let lines = FramedRead::new(reader, LinesCodec::new());
    Box::pin(lines.filter_map(|line| async move {
        match line {
            Err(e) => Some(Err(ClientError::Decode(e.to_string()))),
            Ok(line) => {
                let line = line.trim();
                if line.is_empty() {
                    None
                } else {
                    Some(decode(line.as_bytes()))
                }
            }
        }
    }))
}
