//! The HTTP server: listeners, connections, graceful shutdown.

mod handlers;
pub mod response;
pub mod router;

use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Backend;
use handlers::Shared;

/// How long [`serve`] waits, after shutdown was requested, for open connections (streams,
/// waits, hijacked sessions) before closing them forcibly.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A socket the API is served on.
#[derive(Debug)]
pub enum Listener {
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
    Tcp(TcpListener),
    /// TCP with TLS: the handshake (and, with client verification, the client's certificate
    /// check) happens before hyper sees the connection.
    Tls {
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    },
}

/// How long a TLS client may take to complete its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "another daemon is already listening on {0}; stop it or choose another socket with -H"
    )]
    InUse(PathBuf),
    #[error("cannot listen on {addr}: {source}")]
    Io { addr: String, source: io::Error },
    #[error("unsupported listen address {0:?}: use unix:///path/to.sock or tcp://host:port")]
    BadAddress(String),
}

impl Listener {
    /// Binds a unix socket with mode 0660 (root and the socket's group may connect). A stale
    /// socket file (nobody accepting) is replaced; a live one is an error.
    pub fn bind_unix(path: impl AsRef<Path>) -> Result<Self, ListenError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| ListenError::Io {
            addr: format!("unix://{}", path.display()),
            source,
        };
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(ListenError::InUse(path));
            }
            std::fs::remove_file(&path).map_err(io_err)?;
        }
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(io_err)?;
            }
        }
        let listener = UnixListener::bind(&path).map_err(io_err)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
        Ok(Self::Unix { listener, path })
    }

    /// Binds a TCP address such as `127.0.0.1:2375`.
    pub async fn bind_tcp(addr: &str) -> Result<Self, ListenError> {
        TcpListener::bind(addr)
            .await
            .map(Self::Tcp)
            .map_err(|source| ListenError::Io {
                addr: format!("tcp://{addr}"),
                source,
            })
    }

    /// Binds a TCP address (`127.0.0.1:2376` or `tcp://127.0.0.1:2376`) and serves TLS on it
    /// with `config`.
    pub async fn bind_tls(addr: &str, config: rustls::ServerConfig) -> Result<Self, ListenError> {
        let addr = addr.strip_prefix("tcp://").unwrap_or(addr);
        match Self::bind_tcp(addr).await? {
            Self::Tcp(listener) => Ok(Self::Tls {
                listener,
                config: Arc::new(config),
            }),
            other => Ok(other),
        }
    }

    /// Binds `unix:///path` or `tcp://host:port` (the daemon's `-H`).
    pub async fn bind(addr: &str) -> Result<Self, ListenError> {
        if let Some(path) = addr.strip_prefix("unix://") {
            Self::bind_unix(path)
        } else if let Some(hostport) = addr.strip_prefix("tcp://") {
            Self::bind_tcp(hostport).await
        } else {
            Err(ListenError::BadAddress(addr.to_string()))
        }
    }

    /// The bound address of a TCP listener (useful after binding port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Self::Tcp(l) | Self::Tls { listener: l, .. } => l.local_addr().ok(),
            Self::Unix { .. } => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Unix { path, .. } => format!("unix://{}", path.display()),
            Self::Tcp(l) => l
                .local_addr()
                .map(|a| format!("tcp://{a}"))
                .unwrap_or_else(|_| "tcp://?".into()),
            Self::Tls { listener, .. } => listener
                .local_addr()
                .map(|a| format!("tcp://{a} (TLS)"))
                .unwrap_or_else(|_| "tcp://? (TLS)".into()),
        }
    }
}

/// Serves the API on `listeners` until `shutdown` resolves, then stops accepting, asks open
/// connections to finish their current request, waits up to [`SHUTDOWN_GRACE`] and returns.
pub async fn serve<B, F>(listeners: Vec<Listener>, backend: Arc<B>, shutdown: F) -> io::Result<()>
where
    B: Backend,
    F: Future<Output = ()> + Send,
{
    serve_with_grace(listeners, backend, shutdown, SHUTDOWN_GRACE).await
}

/// [`serve`] with a chosen grace period: after it, open connections and hijacked sessions
/// are closed (their response futures dropped) and the function returns.
pub async fn serve_with_grace<B, F>(
    listeners: Vec<Listener>,
    backend: Arc<B>,
    shutdown: F,
    grace: Duration,
) -> io::Result<()>
where
    B: Backend,
    F: Future<Output = ()> + Send,
{
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let force = CancellationToken::new();
    let shared = Arc::new(Shared {
        backend,
        tracker: tracker.clone(),
        force: force.clone(),
    });

    for listener in listeners {
        tracing::info!(address = %listener.describe(), "API listening");
        let shared = shared.clone();
        let cancel = cancel.clone();
        let conn_tracker = tracker.clone();
        tracker.spawn(accept_loop(listener, shared, cancel, conn_tracker));
    }

    shutdown.await;
    tracing::info!("API server shutting down");
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("open API connections did not finish within {grace:?}; closing them");
        force.cancel();
        tracker.wait().await;
    }
    Ok(())
}

async fn accept_loop<B: Backend>(
    listener: Listener,
    shared: Arc<Shared<B>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(Accepted::Unix(stream)) => {
                tracker.spawn(serve_connection(stream, shared.clone(), cancel.clone()));
            }
            Ok(Accepted::Tcp(stream)) => {
                let _ = stream.set_nodelay(true);
                tracker.spawn(serve_connection(stream, shared.clone(), cancel.clone()));
            }
            Ok(Accepted::Tls(stream, peer, acceptor)) => {
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let cancel = cancel.clone();
                tracker.spawn(async move {
                    if let Some(tls) = tls_handshake(stream, peer, acceptor).await {
                        serve_connection(tls, shared, cancel).await;
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accepting an API connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    if let Listener::Unix { path, .. } = &listener {
        let _ = std::fs::remove_file(path);
    }
}

enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
    Tls(
        tokio::net::TcpStream,
        std::net::SocketAddr,
        crate::tls::TlsAcceptor,
    ),
}

async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Unix { listener, .. } => listener.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(listener) => listener.accept().await.map(|(s, _)| Accepted::Tcp(s)),
        Listener::Tls { listener, config } => listener
            .accept()
            .await
            .map(|(s, peer)| Accepted::Tls(s, peer, crate::tls::TlsAcceptor::from(config.clone()))),
    }
}

/// Peeks until `buf` is full, the peer stops sending or closes (a TLS record header is 5
/// bytes, so the first segment normally holds them all).
async fn peek_full(stream: &tokio::net::TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    for _ in 0..10 {
        let n = stream.peek(buf).await?;
        if n == 0 || n == buf.len() {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stream.peek(buf).await
}

/// What Go's TLS server answers to a plain HTTP request (Docker's behaviour on its TLS port).
const HTTP_ON_TLS_PORT: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Completes the TLS handshake of an accepted connection; a failure (no or a foreign client
/// certificate, an expired one, plain HTTP, a timeout) is logged and the connection closed
/// before any request is read.
async fn tls_handshake(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: crate::tls::TlsAcceptor,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    use tokio::io::AsyncWriteExt;
    // A TLS connection starts with a handshake record (0x16); these are the request-line
    // starts Go's TLS server recognises as plain HTTP.
    let mut first = [0u8; 5];
    let peeked = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, peek_full(&stream, &mut first)).await;
    if let Ok(Ok(5)) = peeked {
        if [b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO"].contains(&&first) {
            tracing::warn!(%peer, "http: TLS handshake error from {peer}: client sent an HTTP request to an HTTPS server");
            let mut stream = stream;
            let _ = stream.write_all(HTTP_ON_TLS_PORT).await;
            let _ = stream.shutdown().await;
            return None;
        }
    }
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::warn!(%peer, "http: TLS handshake error from {peer}: {}", crate::tls::describe_io(&e));
            None
        }
        Err(_) => {
            tracing::warn!(%peer, "http: TLS handshake error from {peer}: timed out");
            None
        }
    }
}

/// The hyper settings every connection uses.
fn http_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        // Docker writes canonical header names (`Api-Version`, `Ostype`).
        .title_case_headers(true)
        // We add `Date` ourselves: Docker's 101 responses carry none.
        .auto_date_header(false)
        // An EOF from a client while its request is in progress means it went away (e.g. the
        // CLI closing a `wait` in detached mode): drop the response future. Clients that
        // half-close (attach/exec without stdin) only do so after the 101, on the upgraded
        // connection, where hyper is no longer involved.
        .half_close(false);
    builder
}

async fn serve_connection<S, B>(stream: S, shared: Arc<Shared<B>>, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: Backend,
{
    let force = shared.force.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(handlers::handle(shared, req).await) }
    });
    let conn = http_builder()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => result,
                // Dropping the connection drops its in-flight response (and the backend future).
                _ = force.cancelled() => return,
            }
        }
    };
    if let Err(e) = result {
        if !e.is_incomplete_message() {
            tracing::debug!(error = %e, "API connection ended with an error");
        }
    }
}
