//! The client's errors, worded as Docker words them (Docker's texts are the spec: the Docker
//! CLI prints them as they are).
//!
//! * registry error bodies become `<code in lower case>: <message>` (`manifest unknown:
//!   manifest unknown`, `denied: requested access to the resource is denied`), as the
//!   distribution client's `errcode` package prints them;
//! * a 4xx with a bearer challenge carrying `error="insufficient_scope"` is DENIED, and
//!   `error="invalid_token"` is UNAUTHORIZED (RFC 6750, as distribution does);
//! * other statuses are `received unexpected HTTP status: 500 Internal Server Error`;
//! * transport failures name the request like Go's `url.Error`:
//!   `Head "http://localhost:5000/v2/me/app/manifests/v1": no basic auth credentials`.

use serde::Deserialize;

use crate::server::error::ErrorCode;

/// One entry of a registry's `{"errors":[…]}` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegistryErrorItem {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl RegistryErrorItem {
    /// An item with the code's default message.
    pub fn new(code: ErrorCode) -> RegistryErrorItem {
        RegistryErrorItem {
            code: code.as_str().to_string(),
            message: code.default_message().to_string(),
            detail: serde_json::Value::Null,
        }
    }

    /// The known code, or `None` for a code this client does not know.
    pub fn known_code(&self) -> Option<ErrorCode> {
        parse_code(&self.code)
    }
}

impl std::fmt::Display for RegistryErrorItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // errcode.ErrorCode.Error(): the code's value, lower case, `_` → ` `; codes the
        // client does not know print as "unknown".
        let code = match self.known_code() {
            Some(c) => c.as_str().to_lowercase().replace('_', " "),
            None => "unknown".to_string(),
        };
        write!(f, "{code}: {}", self.message)
    }
}

const ALL_CODES: [ErrorCode; 17] = [
    ErrorCode::BlobUnknown,
    ErrorCode::BlobUploadInvalid,
    ErrorCode::BlobUploadUnknown,
    ErrorCode::DigestInvalid,
    ErrorCode::ManifestBlobUnknown,
    ErrorCode::ManifestInvalid,
    ErrorCode::ManifestUnknown,
    ErrorCode::NameInvalid,
    ErrorCode::NameUnknown,
    ErrorCode::SizeInvalid,
    ErrorCode::TagInvalid,
    ErrorCode::Unauthorized,
    ErrorCode::Denied,
    ErrorCode::Unsupported,
    ErrorCode::TooManyRequests,
    ErrorCode::RangeInvalid,
    ErrorCode::Unknown,
];

/// A distribution error code from its wire value (`MANIFEST_UNKNOWN`).
pub fn parse_code(s: &str) -> Option<ErrorCode> {
    ALL_CODES.iter().copied().find(|c| c.as_str() == s)
}

/// What kind of transport failure happened (for retries and fallbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Could not connect (refused, unreachable, DNS).
    Connect,
    /// Connecting (TCP or the TLS handshake) took longer than the connect timeout.
    ConnectTimeout,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// No bytes arrived within the stall timeout.
    Timeout,
    /// The connection broke in the middle of a request or response.
    Broken,
}

/// Errors of the registry client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry refused the request with distribution error codes.
    #[error("{}", fmt_items(.errors))]
    Registry {
        status: u16,
        errors: Vec<RegistryErrorItem>,
    },
    /// A status without a usable error body (`500 Internal Server Error`).
    #[error("received unexpected HTTP status: {status}")]
    Status { code: u16, status: String },
    /// A 4xx whose body is not a distribution error document.
    #[error("error parsing HTTP {code} response body: {parse_error}: {body:?}")]
    UnparsableBody {
        code: u16,
        parse_error: String,
        body: String,
    },
    /// The registry asks for Basic credentials and none were given.
    #[error("{method} \"{url}\": no basic auth credentials")]
    NoBasicAuth { method: String, url: String },
    /// The token service refused or failed; wrapped like the request that needed the token.
    #[error("{method} \"{url}\": {source}")]
    Token {
        method: String,
        url: String,
        #[source]
        source: Box<ClientError>,
    },
    /// Connecting, TLS, a stall or a broken connection.
    #[error("{method} \"{url}\": {message}")]
    Transport {
        method: String,
        url: String,
        message: String,
        kind: TransportKind,
    },
    /// `POST /auth` got something other than 200 from `/v2/`.
    #[error("login attempt to {url} failed with status: {status}")]
    LoginFailed { url: String, status: String },
    /// A document (manifest, index, config, token) that is too large.
    #[error("{what} is larger than the {limit} bytes allowed; refusing it")]
    TooLarge { what: String, limit: u64 },
    /// Content that does not match the digest it was asked for or announced with.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A manifest berth refuses (schema 1, mediaType confusion, bad JSON, no platform).
    #[error("{0}")]
    Manifest(String),
    /// Anything else that is wrong with the request or the registry's answer.
    #[error("{0}")]
    Invalid(String),
}

fn fmt_items(items: &[RegistryErrorItem]) -> String {
    match items {
        [] => "<nil>".to_string(),
        [one] => one.to_string(),
        many => {
            let mut s = String::from("errors:\n");
            for e in many {
                s.push_str(&e.to_string());
                s.push('\n');
            }
            s
        }
    }
}

impl ClientError {
    /// The first distribution error code, if the registry sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Registry { errors, .. } => errors.first().and_then(|e| e.known_code()),
            ClientError::Token { source, .. } => source.code(),
            _ => None,
        }
    }

    /// The message without the `Method "url": ` prefix of request-level failures (dockerd's
    /// push reports those bare).
    pub fn without_request(&self) -> String {
        match self {
            ClientError::NoBasicAuth { .. } => "no basic auth credentials".to_string(),
            ClientError::Token { source, .. } => source.to_string(),
            ClientError::Transport { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// True for failures worth retrying: transport trouble and 5xx/429 answers.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { kind, .. } => {
                matches!(
                    kind,
                    TransportKind::Connect | TransportKind::Timeout | TransportKind::Broken
                )
            }
            ClientError::Status { code, .. } => matches!(code, 429 | 500 | 502 | 503 | 504),
            ClientError::Registry { status, errors } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
                    || errors.first().and_then(|e| e.known_code())
                        == Some(ErrorCode::TooManyRequests)
            }
            _ => false,
        }
    }

    /// True when the request never got an HTTP answer (connect/TLS): another endpoint (plain
    /// HTTP for an insecure registry, the next mirror) may work.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Transport {
                kind: TransportKind::Connect | TransportKind::ConnectTimeout | TransportKind::Tls,
                ..
            }
        )
    }

    /// True when the registry said the thing does not exist (404-class).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::ManifestUnknown | ErrorCode::NameUnknown | ErrorCode::BlobUnknown)
        ) || matches!(self, ClientError::Status { code: 404, .. })
    }

    /// True for authentication/authorisation refusals.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::Unauthorized | ErrorCode::Denied)
        ) || matches!(
            self,
            ClientError::NoBasicAuth { .. } | ClientError::Token { .. }
        ) || matches!(
            self,
            ClientError::Status {
                code: 401 | 403,
                ..
            }
        )
    }
}

/// Go's `http.StatusText` casing for a status line: `500 Internal Server Error`.
pub fn status_line(code: u16) -> String {
    let reason = http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}

/// Go's `url.Error` spells the method with an initial capital: `Get`, `Head`, `Post`.
pub fn go_method(m: &http::Method) -> String {
    let s = m.as_str().to_ascii_lowercase();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_dockers() {
        let e = ClientError::Registry {
            status: 404,
            errors: vec![RegistryErrorItem::new(ErrorCode::ManifestUnknown)],
        };
        assert_eq!(e.to_string(), "manifest unknown: manifest unknown");
        assert!(e.is_not_found());
        let e = ClientError::Registry {
            status: 401,
            errors: vec![RegistryErrorItem::new(ErrorCode::Denied)],
        };
        assert_eq!(
            e.to_string(),
            "denied: requested access to the resource is denied"
        );
        assert!(e.is_auth());
        let e = ClientError::Status {
            code: 500,
            status: status_line(500),
        };
        assert_eq!(
            e.to_string(),
            "received unexpected HTTP status: 500 Internal Server Error"
        );
        assert!(e.is_transient());
        let e = ClientError::NoBasicAuth {
            method: go_method(&http::Method::HEAD),
            url: "http://localhost:5000/v2/me/extra/manifests/v1".into(),
        };
        assert_eq!(
            e.to_string(),
            "Head \"http://localhost:5000/v2/me/extra/manifests/v1\": no basic auth credentials"
        );
        let unknown = RegistryErrorItem {
            code: "WHATEVER".into(),
            message: "odd".into(),
            detail: serde_json::Value::Null,
        };
        assert_eq!(unknown.to_string(), "unknown: odd");
        let two = ClientError::Registry {
            status: 400,
            errors: vec![
                RegistryErrorItem::new(ErrorCode::NameInvalid),
                RegistryErrorItem::new(ErrorCode::TagInvalid),
            ],
        };
        assert_eq!(
            two.to_string(),
            "errors:\nname invalid: invalid repository name\ntag invalid: manifest tag did not match URI\n"
        );
    }
}
