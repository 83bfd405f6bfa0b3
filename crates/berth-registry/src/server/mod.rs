//! `berth registry serve`: an OCI distribution (v1.1) registry server.
//!
//! * [`storage`]: the content-addressed store and per-repository links on disk.
//! * [`manifest`]: which manifests are accepted.
//! * [`auth`] and [`config`]: accounts, tokens and access rules.
//! * [`handlers`]: the HTTP API; [`gc`]: garbage collection.

pub mod auth;
pub mod config;
pub mod error;
pub mod gc;
mod handlers;
pub mod manifest;
pub mod storage;
mod zerocopy;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub use config::RegistryConfig;
pub use handlers::Registry;

/// Why the registry could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("cannot use storage root {path}: {source}")]
    Storage {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("another registry process (or `berth registry gc`) is using {0}; stop it first")]
    Locked(std::path::PathBuf),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
}

/// Loads the certificate chain and key for TLS (PEM files) and offers h2 and http/1.1.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ServeError::Tls(format!("cannot read certificate {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("bad certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{} has no PEM certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("cannot read private key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(format!("certificate and key do not fit: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// A plain connection's I/O. Blob bodies go to remote peers with sendfile(2), which spares
/// the registry a copy per byte. Loopback peers get ordinary writes: measured here, a receiver
/// on the same host spends ~3x more CPU copying sendfile'd (page-cache, cache-cold) data than
/// data just written into the socket (cache-hot), so copying is cheaper for the machine.
fn conn_io(stream: tokio::net::TcpStream, peer: SocketAddr) -> zerocopy::SendfileStream {
    zerocopy::SendfileStream::new(stream, !peer.ip().to_canonical().is_loopback())
}

/// Serves `registry` on `listener` until `shutdown` resolves, then stops accepting and waits
/// (up to 30 s) for requests in flight.
pub async fn serve(
    registry: Arc<Registry>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024);
    let background = registry.clone().spawn_background();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            res = listener.accept() => match res {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let reg = registry.clone();
        let secure = tls.is_some();
        let svc = service_fn(move |req| {
            let reg = reg.clone();
            async move { Ok::<_, Infallible>(reg.handle(req, peer, secure).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        match tls.clone() {
            None => {
                tokio::spawn(async move {
                    let conn = builder.serve_connection(TokioIo::new(conn_io(stream, peer)), svc);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let tls_stream = match tokio::time::timeout(
                        Duration::from_secs(30),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls_stream), svc);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                });
            }
        }
    }
    drop(listener);
    background.abort();
    tracing::info!("shutting down: waiting for requests in flight");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("requests still running after 30s; stopping anyway");
        }
    }
    Ok(())
}

/// Opens the registry described by `config`, binds its address and serves until `shutdown`.
/// `ready` is called with the bound address once the registry accepts connections.
pub async fn run(
    config: RegistryConfig,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    config.validate()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
        _ => None,
    };
    let addr = config.addr.clone();
    let registry = Arc::new(Registry::open(config)?);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: addr.clone(),
        source,
    })?;
    tracing::info!(
        "berth registry listening on {}://{local}, storage {}",
        if tls.is_some() { "https" } else { "http" },
        registry.storage().root().display()
    );
    ready(local);
    serve(registry, listener, tls, shutdown)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}
