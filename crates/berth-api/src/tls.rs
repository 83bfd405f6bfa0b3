//! TLS for the Engine API over TCP: the daemon's mutual-TLS server configuration and the
//! client's, both with rustls (ring), from PEM data as Docker takes it (`ca.pem`, `cert.pem`,
//! `key.pem`; PKCS#1, PKCS#8 and SEC1 keys).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A TLS setup that cannot be used; the message names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read {what} {path:?}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// PEM material of one side of a connection (as files or as a context store holds them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsData {
    pub ca: Option<Vec<u8>>,
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
}

impl TlsData {
    /// Reads the files that are given (a `None` stays `None`).
    pub fn from_files(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<TlsData, TlsError> {
        Ok(TlsData {
            ca: ca.map(|p| read("CA certificate", p)).transpose()?,
            cert: cert.map(|p| read("certificate", p)).transpose()?,
            key: key.map(|p| read("key", p)).transpose()?,
        })
    }
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid(format!("failed to parse {what}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Invalid(format!(
            "failed to parse {what}: no PEM certificate found"
        )));
    }
    Ok(certs)
}

fn key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    if std::str::from_utf8(pem).is_ok_and(|s| s.contains("ENCRYPTED")) {
        return Err(TlsError::Invalid(
            "private key is encrypted - support for encrypted private keys has been removed, see https://docs.docker.com/go/deprecated/".into(),
        ));
    }
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| TlsError::Invalid(format!("no valid private key found: {e}")))
}

fn roots(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs(pem, "CA certificate")? {
        roots
            .add(c)
            .map_err(|e| TlsError::Invalid(format!("cannot use the CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The daemon's TLS configuration. With `verify_clients`, every client must present a
/// certificate signed by the CA (and only that CA: Docker's `ExclusiveRootPools`), checked
/// during the handshake, before any request is read.
pub fn server_config(
    ca: Option<&Path>,
    cert: &Path,
    key_file: &Path,
    verify_clients: bool,
) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certs(&read("certificate", cert)?, "certificate")?;
    let key = key(&read("key", key_file)?)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    let builder = if verify_clients {
        let Some(ca) = ca else {
            return Err(TlsError::Invalid(
                "--tlsverify needs a CA to check client certificates: give --tlscacert".into(),
            ));
        };
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(&read("CA certificate", ca)?)?),
            provider(),
        )
        .build()
        .map_err(|e| TlsError::Invalid(format!("cannot verify clients with this CA: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid(format!("the certificate and key do not match: {e}")))?;
    // The API server speaks HTTP/1.1 only.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The client's TLS configuration: the server is checked against `data.ca` (the system's
/// roots are not used: Docker trusts only the given CA) unless `skip_verify`; a client
/// certificate is presented when both cert and key are given.
pub fn client_config(data: &TlsData, skip_verify: bool) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    let builder = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let roots = match &data.ca {
            Some(pem) => roots(pem)?,
            None => {
                let mut roots = RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
                roots
            }
        };
        builder.with_root_certificates(roots)
    };
    let mut cfg = match (&data.cert, &data.key) {
        (Some(cert), Some(k)) => builder
            .with_client_auth_cert(certs(cert, "certificate")?, key(k)?)
            .map_err(|e| {
                TlsError::Invalid(format!("failed to retrieve the client certificate: {e}"))
            })?,
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The name the server's certificate must be valid for: an IP address or a DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(h.to_string())
        .map_err(|e| TlsError::Invalid(format!("invalid server name {host:?}: {e}")))
}

/// `InsecureSkipVerify`: any server certificate is accepted (handshake signatures are still
/// checked).
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

/// A rustls failure in the words Go's crypto/tls uses (what Docker users see and search).
pub fn describe(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
                .into()
        }
        rustls::Error::InvalidCertificate(C::Expired)
        | rustls::Error::InvalidCertificate(C::ExpiredContext { .. })
        | rustls::Error::InvalidCertificate(C::NotValidYet)
        | rustls::Error::InvalidCertificate(C::NotValidYetContext { .. }) => {
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
                .into()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            "tls: failed to verify certificate: x509: certificate is not valid for the server's name"
                .into()
        }
        rustls::Error::NoCertificatesPresented => {
            "tls: client didn't provide a certificate".into()
        }
        rustls::Error::AlertReceived(A::BadCertificate) => "remote error: tls: bad certificate".into(),
        rustls::Error::AlertReceived(A::UnknownCA) => "remote error: tls: unknown certificate authority".into(),
        rustls::Error::AlertReceived(A::CertificateExpired) => "remote error: tls: expired certificate".into(),
        rustls::Error::AlertReceived(A::CertificateRequired) => "remote error: tls: certificate required".into(),
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "tls: first record does not look like a TLS handshake".into()
        }
        other => format!("tls: {other}"),
    }
}

/// The rustls error somewhere inside an I/O error (tokio-rustls wraps it), described as Go
/// would, else the I/O error's own text.
pub fn describe_io(e: &std::io::Error) -> String {
    if let Some(inner) = e.get_ref() {
        if let Some(r) = inner.downcast_ref::<rustls::Error>() {
            return describe(r);
        }
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("docker.example").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(server_name("bad name").is_err());
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        let e = client_config(
            &TlsData {
                ca: Some(b"not a pem".to_vec()),
                ..Default::default()
            },
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("CA certificate"), "{e}");
        let e = key(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
    }

    #[test]
    fn missing_file_names_it() {
        let e =
            TlsData::from_files(Some(Path::new("/nonexistent/ca.pem")), None, None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
