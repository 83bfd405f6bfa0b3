//! How the client reaches a registry: endpoints (mirrors for Docker Hub, HTTPS with a plain
//! HTTP fallback for insecure registries), TLS settings per registry (system roots plus
//! `certs.d/<host:port>/` CA certificates and client certificates, as Docker reads them),
//! proxies from the environment, timeouts, and the HTTP client per TLS setting.
//!
//! The HTTP client is reqwest (hyper underneath, rustls with the *ring* provider that the
//! registry server uses too). It was chosen over a hand-built hyper client because it brings,
//! well tested, exactly what a registry client needs beyond HTTP/1.1: redirects (Docker Hub
//! and cloud registries answer blob GETs with a redirect to a CDN, and the `Authorization`
//! header must not follow to the other host), `HTTP(S)_PROXY`/`NO_PROXY` with CONNECT
//! tunnels, connection pooling and per-read timeouts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ipnet::IpNet;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use url::Url;

use super::error::{ClientError, TransportKind};

/// Docker Hub's names and where its registry API lives.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
pub const DOCKER_HUB_LEGACY_DOMAIN: &str = "index.docker.io";
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// One way to reach a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://localhost:5000` (no path).
    pub base: Url,
    /// A mirror of Docker Hub (pulls only; any failure falls back to the next endpoint).
    pub mirror: bool,
    /// TLS without certificate verification (an insecure registry reached over HTTPS).
    pub skip_verify: bool,
    /// Only worth trying when the previous endpoint could not be reached at all (the plain
    /// HTTP fallback of an insecure registry).
    pub only_if_unreachable: bool,
}

impl Endpoint {
    /// `host[:port]` of the endpoint (the `certs.d` directory name).
    pub fn host_port(&self) -> String {
        host_port_of(&self.base)
    }

    /// The URL of `path` (which starts with `/v2/`) on this endpoint.
    pub fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path)
            .map_err(|e| ClientError::Invalid(format!("invalid registry URL path {path:?}: {e}")))
    }
}

pub(crate) fn host_port_of(u: &Url) -> String {
    let host = u.host_str().unwrap_or_default();
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// The insecure registries: CIDRs and names (Docker's `insecure-registries`, plus its default
/// `127.0.0.0/8`).
#[derive(Debug, Clone, Default)]
pub struct InsecureRegistries {
    cidrs: Vec<IpNet>,
    names: Vec<String>,
}

impl InsecureRegistries {
    /// Parses daemon.json entries (`"10.0.0.0/8"`, `"myreg:5000"`, `"http://myreg:5000"`);
    /// with `loopback`, `127.0.0.0/8` is included, as Docker always does.
    pub fn new(entries: &[String], loopback: bool) -> Result<InsecureRegistries, ClientError> {
        let mut r = InsecureRegistries::default();
        if loopback {
            r.cidrs.push(IpNet::V4(ipnet::Ipv4Net::new_assert(
                std::net::Ipv4Addr::new(127, 0, 0, 0),
                8,
            )));
        }
        for e in entries {
            let e = e.trim();
            let e = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .unwrap_or(e)
                .trim_end_matches('/');
            if e.is_empty() {
                continue;
            }
            if let Ok(net) = e.parse::<IpNet>() {
                r.cidrs.push(net);
            } else if e.contains('/') {
                return Err(ClientError::Invalid(format!(
                    "insecure registry {e} is not valid: invalid CIDR or registry address"
                )));
            } else {
                r.names.push(e.to_ascii_lowercase());
            }
        }
        Ok(r)
    }

    /// Whether `host[:port]` is insecure: listed by name, or an address (literal or resolved)
    /// inside one of the CIDRs.
    pub async fn contains(&self, host_port: &str) -> bool {
        let hp = host_port.to_ascii_lowercase();
        let host = split_host(&hp);
        if self.names.iter().any(|n| *n == hp || *n == host) {
            return true;
        }
        if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            return self.cidrs.iter().any(|c| c.contains(&ip));
        }
        let lookup = tokio::net::lookup_host((host.to_string(), 0));
        match tokio::time::timeout(Duration::from_secs(5), lookup).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<_> = addrs.collect();
                addrs
                    .iter()
                    .any(|a| self.cidrs.iter().any(|c| c.contains(&a.ip())))
            }
            _ => false,
        }
    }
}

/// The host part of `host[:port]` (IPv6 literals keep their brackets).
pub(crate) fn split_host(hp: &str) -> &str {
    if hp.starts_with('[') {
        return match hp.find(']') {
            Some(i) => &hp[..=i],
            None => hp,
        };
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hp,
    }
}

/// Where registry TLS material lives and how long to wait.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// `certs.d` directories, searched in order (`/etc/docker/certs.d`, `/etc/berth/certs.d`).
    pub certs_dirs: Vec<PathBuf>,
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// A download that receives nothing, or an upload whose body does not move, for this long
    /// is abandoned (a stalled registry). Not a whole-request limit: big blobs take as long
    /// as they take.
    pub stall_timeout: Duration,
    /// Whole-request limit for small requests (pings, manifests, tokens).
    pub request_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            certs_dirs: vec![
                PathBuf::from("/etc/docker/certs.d"),
                PathBuf::from("/etc/berth/certs.d"),
            ],
            user_agent: format!(
                "berth/{} os/{} arch/{}",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// The TLS material of one registry host.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
struct HostTlsFiles {
    cas: Vec<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
}

/// HTTP clients by (host, verification mode), created on first use and kept (with their
/// connection pools) for the life of the process.
pub(crate) struct Clients {
    cfg: TransportConfig,
    clients: Mutex<HashMap<(String, bool), reqwest::Client>>,
}

impl Clients {
    pub(crate) fn new(cfg: TransportConfig) -> Clients {
        Clients {
            cfg,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for an endpoint (its `certs.d` settings and verification mode).
    pub(crate) fn for_endpoint(&self, ep: &Endpoint) -> Result<reqwest::Client, ClientError> {
        let host = ep.host_port();
        let key = (host.clone(), ep.skip_verify);
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let files = host_tls_files(&self.cfg.certs_dirs, &host)?;
        let tls = rustls_config(&files, ep.skip_verify)?;
        let client = self.build(tls)?;
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, client.clone());
        Ok(client)
    }

    /// A client with the system roots only (token services, redirects to other hosts).
    pub(crate) fn plain(&self) -> Result<reqwest::Client, ClientError> {
        let key = (String::new(), false);
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let client = self.build(rustls_config(&HostTlsFiles::default(), false)?)?;
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, client.clone());
        Ok(client)
    }

    fn build(&self, tls: rustls::ClientConfig) -> Result<reqwest::Client, ClientError> {
        reqwest::Client::builder()
            .user_agent(self.cfg.user_agent.clone())
            .connect_timeout(self.cfg.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(8)
            .redirect(reqwest::redirect::Policy::limited(10))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| ClientError::Invalid(format!("cannot set up the HTTP client: {e}")))
    }
}

/// Docker's `certs.d` rules: `*.crt` are CA certificates; `*.cert` is a client certificate
/// whose key is the `*.key` of the same name (a key without its certificate, or the other
/// way round, is an error).
fn host_tls_files(dirs: &[PathBuf], host: &str) -> Result<HostTlsFiles, ClientError> {
    let mut out = HostTlsFiles::default();
    for base in dirs {
        let dir = base.join(host);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(_) => continue,
        };
        let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in &names {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if let Some(stem) = name.strip_suffix(".crt") {
                let _ = stem;
                out.cas.push(p.clone());
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key = dir.join(format!("{stem}.key"));
                if !key.is_file() {
                    return Err(ClientError::Invalid(format!(
                        "missing key {} for client certificate {}. CA certificates must use the extension .crt",
                        key.display(),
                        p.display()
                    )));
                }
                out.client = Some((p.clone(), key));
            } else if let Some(stem) = name.strip_suffix(".key") {
                let cert = dir.join(format!("{stem}.cert"));
                if !cert.is_file() {
                    return Err(ClientError::Invalid(format!(
                        "missing client certificate {} for key {}",
                        cert.display(),
                        p.display()
                    )));
                }
            }
        }
    }
    Ok(out)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trusted roots, read once.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "cannot read some system CA certificates");
        }
        let (added, ignored) = store.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system CA certificates loaded");
        store
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ClientError::Invalid(format!("cannot read {}: {e}", path.display())))?
        .collect();
    let certs =
        certs.map_err(|e| ClientError::Invalid(format!("cannot parse {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ClientError::Invalid(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn rustls_config(
    files: &HostTlsFiles,
    skip_verify: bool,
) -> Result<rustls::ClientConfig, ClientError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Invalid(format!("TLS setup: {e}")))?;
    let builder = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let mut roots = system_roots().clone();
        for ca in &files.cas {
            for c in read_certs(ca)? {
                roots.add(c).map_err(|e| {
                    ClientError::Invalid(format!("cannot use CA certificate {}: {e}", ca.display()))
                })?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut cfg = match &files.client {
        Some((cert, key)) => {
            let certs = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                ClientError::Invalid(format!("cannot read client key {}: {e}", key.display()))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ClientError::Invalid(format!("client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The verifier of an insecure registry reached over HTTPS (Docker: `InsecureSkipVerify`):
/// any certificate is accepted, handshake signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A reqwest failure as Docker would word it: `Get "https://…/v2/": dial tcp …: connection
/// refused`, classified for retries and fallbacks.
pub(crate) fn transport_error(e: &reqwest::Error, method: &str, url: &str) -> ClientError {
    let url = e
        .url()
        .map(|u| u.to_string())
        .unwrap_or_else(|| url.to_string());
    let mut tls: Option<rustls::Error> = None;
    let mut io_kind = None;
    let mut innermost = e.to_string();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if tls.is_none() {
            tls = find_rustls(s).cloned();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        innermost = s.to_string();
        src = s.source();
    }
    let host = url::Url::parse(&url)
        .ok()
        .map(|u| host_port_of(&u))
        .unwrap_or_default();
    let timed_out = e.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut);
    let (kind, message) = if timed_out && e.is_connect() {
        (
            TransportKind::ConnectTimeout,
            format!("dial tcp {host}: i/o timeout"),
        )
    } else if timed_out {
        (
            TransportKind::Timeout,
            "the registry stopped sending data (timed out); try again later or check the registry"
                .to_string(),
        )
    } else if let Some(t) = &tls {
        (TransportKind::Tls, tls_message(t, &host))
    } else if e.is_connect() {
        let what = match io_kind {
            Some(std::io::ErrorKind::ConnectionRefused) => {
                "connect: connection refused".to_string()
            }
            _ => strip_os_error(&innermost),
        };
        (TransportKind::Connect, format!("dial tcp {host}: {what}"))
    } else {
        (
            TransportKind::Broken,
            format!(
                "connection to the registry broke: {}",
                strip_os_error(&innermost)
            ),
        )
    };
    ClientError::Transport {
        method: method.to_string(),
        url,
        message,
        kind,
    }
}

/// The rustls error somewhere inside `e` (hyper and tokio-rustls wrap it in io errors,
/// whose `source()` skips the wrapped error, so those are opened with `get_ref`).
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        return Some(r);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if let Some(inner) = io.get_ref() {
            return find_rustls(inner);
        }
    }
    None
}

/// TLS failures in the words Go (and so Docker) uses for the common cases.
fn tls_message(e: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "http: server gave HTTP response to HTTPS client".to_string()
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
                .to_string()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
            "tls: failed to verify certificate: x509: certificate is not valid for {}",
            split_host(host)
        ),
        rustls::Error::InvalidCertificate(C::Expired)
        | rustls::Error::InvalidCertificate(C::ExpiredContext { .. })
        | rustls::Error::InvalidCertificate(C::NotValidYet)
        | rustls::Error::InvalidCertificate(C::NotValidYetContext { .. }) => {
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
                .to_string()
        }
        other => format!("tls: {other}"),
    }
}

fn strip_os_error(s: &str) -> String {
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s.to_string(),
    }
}

/// Reads a response body, refusing more than `limit` bytes (checked against Content-Length
/// first, then while reading).
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, ClientError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ClientError::TooLarge {
            what: what.to_string(),
            limit: limit as u64,
        });
    }
    let url = resp.url().to_string();
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > limit {
                    return Err(ClientError::TooLarge {
                        what: what.to_string(),
                        limit: limit as u64,
                    });
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(transport_error(&e, "Get", &url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn insecure_registries_match_like_docker() {
        let ins =
            InsecureRegistries::new(&["10.1.0.0/16".into(), "myreg:5000".into()], true).unwrap();
        assert!(ins.contains("127.0.0.1:5000").await);
        assert!(ins.contains("localhost:5000").await);
        assert!(ins.contains("10.1.2.3").await);
        assert!(ins.contains("myreg:5000").await);
        assert!(!ins.contains("10.2.0.1:443").await);
        assert!(!ins.contains("[::1]:5000").await);
        assert!(InsecureRegistries::new(&["10.0.0.0/99".into()], true).is_err());
        let strict = InsecureRegistries::new(&[], false).unwrap();
        assert!(!strict.contains("127.0.0.1:5000").await);
        assert_eq!(split_host("[::1]:5000"), "[::1]");
        assert_eq!(split_host("reg.example:443"), "reg.example");
        assert_eq!(split_host("reg.example"), "reg.example");
    }

    #[test]
    fn certs_d_pairs_keys_with_certificates() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("reg.example:5000");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("ca.crt"), "x").unwrap();
        std::fs::write(host.join("client.cert"), "x").unwrap();
        let err = host_tls_files(&[d.path().to_path_buf()], "reg.example:5000").unwrap_err();
        assert!(err.to_string().contains("missing key"), "{err}");
        std::fs::write(host.join("client.key"), "x").unwrap();
        let f = host_tls_files(&[d.path().to_path_buf()], "reg.example:5000").unwrap();
        assert_eq!(f.cas, vec![host.join("ca.crt")]);
        assert_eq!(
            f.client,
            Some((host.join("client.cert"), host.join("client.key")))
        );
        std::fs::remove_file(host.join("client.cert")).unwrap();
        assert!(host_tls_files(&[d.path().to_path_buf()], "reg.example:5000").is_err());
        assert_eq!(
            host_tls_files(&[d.path().to_path_buf()], "other:1").unwrap(),
            HostTlsFiles::default()
        );
        // a CA file that is not PEM is a clear error when the client is built
        let f = HostTlsFiles {
            cas: vec![host.join("ca.crt")],
            client: None,
        };
        assert!(rustls_config(&f, false).is_err());
        assert!(rustls_config(&HostTlsFiles::default(), true).is_ok());
    }
}
