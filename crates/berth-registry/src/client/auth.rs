//! Registry authentication: `WWW-Authenticate` challenges, credentials, and Docker's bearer
//! token flow (realm/service/scope, anonymous tokens, identity (refresh) tokens, caching
//! until expiry).
//!
//! Credentials are never logged: [`Credentials`] prints redacted, tokens are not traced.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;

use super::error::{status_line, ClientError, RegistryErrorItem};

/// The OAuth client id Docker sends to token services.
pub const CLIENT_ID: &str = "docker";
/// Docker treats shorter token lifetimes as this many seconds.
const MIN_TOKEN_LIFETIME: u64 = 60;
/// Refresh a cached token this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// Token responses larger than this are refused.
pub const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// Registry credentials as the Docker API carries them (`X-Registry-Auth`, `POST /auth`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token from an earlier login (`IdentityToken`).
    pub identity_token: String,
    /// A bearer token to send as it is (`registrytoken`).
    pub registry_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("identity_token", &redact(&self.identity_token))
            .field("registry_token", &redact(&self.registry_token))
            .finish()
    }
}

impl Credentials {
    /// Username and password.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
            ..Default::default()
        }
    }

    /// Builds credentials from the fields of Docker's `AuthConfig`; `auth` is base64 of
    /// `user:password` and is used when username/password are empty.
    pub fn from_docker(
        username: &str,
        password: &str,
        auth: &str,
        identity_token: &str,
        registry_token: &str,
    ) -> Credentials {
        let mut c = Credentials {
            username: username.to_string(),
            password: password.to_string(),
            identity_token: identity_token.to_string(),
            registry_token: registry_token.to_string(),
        };
        if c.username.is_empty() && c.password.is_empty() && !auth.is_empty() {
            if let Some((u, p)) = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                })
            {
                c.username = u;
                c.password = p;
            }
        }
        c
    }

    /// True when there is nothing to authenticate with.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// True when Basic authentication is possible.
    pub fn has_basic(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }

    /// `Basic <base64(user:password)>`.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// A fingerprint to key caches by (never the secrets themselves).
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = sha2::Sha256::new();
        for part in [
            &self.username,
            &self.password,
            &self.identity_token,
            &self.registry_token,
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// One authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower case: `basic`, `bearer`.
    pub scheme: String,
    /// Parameter names in lower case.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }

    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }
}

/// Parses `WWW-Authenticate` header values (RFC 7235: `scheme param=value, param="quoted"`).
/// Several challenges in one value are split where a new scheme starts. Unparsable parts are
/// skipped; the parser never fails.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for v in values {
        parse_one_header(v, &mut out);
    }
    out
}

fn parse_one_header(v: &str, out: &mut Vec<Challenge>) {
    let b = v.as_bytes();
    let mut i = 0;
    let mut cur: Option<Challenge> = None;
    loop {
        // skip separators
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_token_char(b[i]) {
            i += 1;
        }
        if i == start {
            // not a token: skip this character
            i += 1;
            continue;
        }
        let tok = &v[start..i];
        // `token=` starts a parameter; a token followed by space/end/comma is a scheme.
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' {
            j += 1;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                j += 1;
            }
            let (value, next) = if j < b.len() && b[j] == b'"' {
                parse_quoted(v, j + 1)
            } else {
                let s = j;
                let mut k = j;
                while k < b.len() && b[k] != b',' && b[k] != b' ' && b[k] != b'\t' {
                    k += 1;
                }
                (v[s..k].to_string(), k)
            };
            i = next;
            if let Some(c) = cur.as_mut() {
                c.params.insert(tok.to_ascii_lowercase(), value);
            }
        } else {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            cur = Some(Challenge {
                scheme: tok.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Reads a quoted string starting after the opening quote; returns the value and the index
/// after the closing quote (or the end).
fn parse_quoted(v: &str, mut i: usize) -> (String, usize) {
    let mut out = String::new();
    let mut chars = v[i..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return (out, i + off + 1),
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
    }
    i = v.len();
    (out, i)
}

/// A token service's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: u64,
    #[serde(default)]
    pub refresh_token: String,
}

impl TokenResponse {
    /// Parses and normalises (`access_token` when `token` is missing).
    pub fn parse(body: &[u8]) -> Result<TokenResponse, ClientError> {
        let mut t: TokenResponse = serde_json::from_slice(body)
            .map_err(|e| ClientError::Invalid(format!("unable to decode token response: {e}")))?;
        if t.token.is_empty() {
            t.token = t.access_token.clone();
        }
        if t.token.is_empty() {
            return Err(ClientError::Invalid(
                "authorization server did not include a token in the response".into(),
            ));
        }
        if t.expires_in < MIN_TOKEN_LIFETIME {
            t.expires_in = MIN_TOKEN_LIFETIME;
        }
        Ok(t)
    }
}

/// What a token is for: the realm, service, scopes and whose credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    realm: String,
    service: String,
    scopes: Vec<String>,
    who: String,
}

/// Bearer tokens by (realm, service, scopes, credentials), kept until shortly before expiry.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

impl TokenCache {
    fn key(ch: &Challenge, scopes: &[String], creds: &Credentials) -> TokenKey {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        TokenKey {
            realm: ch.param("realm").unwrap_or_default().to_string(),
            service: ch.param("service").unwrap_or_default().to_string(),
            scopes,
            who: creds.fingerprint(),
        }
    }

    pub fn get(&self, ch: &Challenge, scopes: &[String], creds: &Credentials) -> Option<String> {
        let key = Self::key(ch, scopes, creds);
        let mut m = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(&key) {
            Some((t, exp)) if Instant::now() + EXPIRY_MARGIN < *exp => Some(t.clone()),
            Some(_) => {
                m.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn put(
        &self,
        ch: &Challenge,
        scopes: &[String],
        creds: &Credentials,
        token: String,
        lifetime: Duration,
    ) {
        let key = Self::key(ch, scopes, creds);
        let mut m = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, (_, exp)| *exp > now);
        m.insert(key, (token, now + lifetime));
    }

    /// Forgets a token the registry refused (`invalid_token`).
    pub fn invalidate(&self, ch: &Challenge, scopes: &[String], creds: &Credentials) {
        let key = Self::key(ch, scopes, creds);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }
}

/// Options of one token request.
pub(crate) struct TokenRequest<'a> {
    pub challenge: &'a Challenge,
    pub scopes: &'a [String],
    pub creds: &'a Credentials,
    /// Ask for a refresh token (login).
    pub offline: bool,
}

/// Fetches a token from the challenge's realm: OAuth2 POST with the identity token when
/// there is one, else GET with Basic credentials (anonymous without), as Docker does.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    req: TokenRequest<'_>,
    timeout: Duration,
) -> Result<TokenResponse, ClientError> {
    let realm = req
        .challenge
        .param("realm")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ClientError::Invalid("bearer challenge without a realm".into()))?;
    let mut url = url::Url::parse(realm)
        .map_err(|e| ClientError::Invalid(format!("invalid token realm {realm:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::Invalid(format!(
            "invalid token realm {realm:?}: not an http(s) URL"
        )));
    }
    let service = req.challenge.param("service").unwrap_or_default();
    let rb = if !req.creds.identity_token.is_empty() {
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", req.creds.identity_token.clone()),
            ("service", service.to_string()),
            ("client_id", CLIENT_ID.to_string()),
        ];
        if !req.scopes.is_empty() {
            form.push(("scope", req.scopes.join(" ")));
        }
        if req.offline {
            form.push(("access_type", "offline".to_string()));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        http.post(url.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
    } else {
        {
            let mut q = url.query_pairs_mut();
            if !service.is_empty() {
                q.append_pair("service", service);
            }
            for s in req.scopes {
                q.append_pair("scope", s);
            }
            if req.offline {
                q.append_pair("offline_token", "true");
                q.append_pair("client_id", CLIENT_ID);
            }
        }
        let mut rb = http.get(url.clone());
        if req.creds.has_basic() {
            rb = rb.header(http::header::AUTHORIZATION, req.creds.basic_header());
        }
        rb
    };
    let resp = rb
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| super::transport::transport_error(&e, "Get", url.as_str()))?;
    let status = resp.status();
    let body = super::transport::read_limited(resp, MAX_TOKEN_RESPONSE, "token response")
        .await
        .map_err(|e| match e {
            ClientError::Transport { .. } => e,
            other => other,
        })?;
    if !status.is_success() {
        return Err(error_from_body(status.as_u16(), &body));
    }
    TokenResponse::parse(&body)
}

/// A token service or registry error body → the client error (`unauthorized: incorrect
/// username or password`). Token services also answer `{"details": "…"}`.
pub(crate) fn error_from_body(code: u16, body: &[u8]) -> ClientError {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<RegistryErrorItem>,
    }
    #[derive(Deserialize)]
    struct Details {
        details: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        if !e.errors.is_empty() {
            return ClientError::Registry {
                status: code,
                errors: e.errors.into_iter().map(default_message).collect(),
            };
        }
    }
    if let Ok(d) = serde_json::from_slice::<Details>(body) {
        return ClientError::Registry {
            status: code,
            errors: vec![RegistryErrorItem {
                code: "UNKNOWN".into(),
                message: d.details,
                detail: serde_json::Value::Null,
            }],
        };
    }
    if code == 401 {
        return ClientError::Registry {
            status: code,
            errors: vec![RegistryErrorItem::new(
                crate::server::error::ErrorCode::Unauthorized,
            )],
        };
    }
    if (400..500).contains(&code) && !body.is_empty() {
        let parse_error = serde_json::from_slice::<serde_json::Value>(body)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "no error details found in HTTP response body".into());
        return ClientError::UnparsableBody {
            code,
            parse_error,
            body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        };
    }
    ClientError::Status {
        code,
        status: status_line(code),
    }
}

/// Fills in the code's default message when the registry sent none.
pub(crate) fn default_message(mut e: RegistryErrorItem) -> RegistryErrorItem {
    if e.message.is_empty() {
        if let Some(c) = e.known_code() {
            e.message = c.default_message().to_string();
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_docker_hub_and_distribution_challenges() {
        let c = parse_challenges([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        ]);
        assert_eq!(c.len(), 1);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            c[0].param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );
        let c = parse_challenges([r#"Basic realm="traces-realm""#]);
        assert!(c[0].is_basic());
        assert_eq!(c[0].param("realm"), Some("traces-realm"));
        let c = parse_challenges([r#"Bearer error="insufficient_scope""#]);
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
        // two challenges in one header, unquoted and escaped values
        let c = parse_challenges([r#"Basic realm=x, Bearer realm="a\"b", service=svc"#]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("x"));
        assert_eq!(c[1].param("realm"), Some("a\"b"));
        assert_eq!(c[1].param("service"), Some("svc"));
        assert!(parse_challenges(["", "   ", ",,="]).is_empty());
    }

    #[test]
    fn credentials_from_docker_auth_field_and_redaction() {
        let c = Credentials::from_docker("", "", "bWU6dHJhY2VwYXNzMTIz", "", "");
        assert_eq!(c.username, "me");
        assert_eq!(c.password, "tracepass123");
        assert_eq!(c.basic_header(), "Basic bWU6dHJhY2VwYXNzMTIz");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("tracepass123"), "{dbg}");
        assert!(Credentials::default().is_empty());
        assert_ne!(
            Credentials::basic("a", "b").fingerprint(),
            Credentials::basic("a", "c").fingerprint()
        );
    }

    #[test]
    fn token_responses_and_cache() {
        let t = TokenResponse::parse(br#"{"access_token":"abc","expires_in":5}"#).unwrap();
        assert_eq!(t.token, "abc");
        assert_eq!(t.expires_in, MIN_TOKEN_LIFETIME);
        assert!(TokenResponse::parse(br#"{"expires_in":5}"#).is_err());
        assert!(TokenResponse::parse(b"nope").is_err());
        let cache = TokenCache::default();
        let ch = parse_challenges([r#"Bearer realm="r",service="s""#]).remove(0);
        let creds = Credentials::basic("u", "p");
        let scopes = vec!["repository:a:pull".to_string()];
        assert!(cache.get(&ch, &scopes, &creds).is_none());
        cache.put(&ch, &scopes, &creds, "tok".into(), Duration::from_secs(60));
        assert_eq!(cache.get(&ch, &scopes, &creds).as_deref(), Some("tok"));
        assert!(cache.get(&ch, &scopes, &Credentials::default()).is_none());
        cache.invalidate(&ch, &scopes, &creds);
        assert!(cache.get(&ch, &scopes, &creds).is_none());
        // about to expire: not used
        cache.put(&ch, &scopes, &creds, "old".into(), Duration::from_secs(1));
        assert!(cache.get(&ch, &scopes, &creds).is_none());
    }

    #[test]
    fn error_bodies() {
        let e = error_from_body(
            401,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}"#,
        );
        assert_eq!(
            e.to_string(),
            "unauthorized: incorrect username or password"
        );
        let e = error_from_body(401, b"");
        assert_eq!(e.to_string(), "unauthorized: authentication required");
        let e = error_from_body(403, br#"{"details":"no way"}"#);
        assert_eq!(e.to_string(), "unknown: no way");
        let e = error_from_body(502, b"<html>");
        assert_eq!(
            e.to_string(),
            "received unexpected HTTP status: 502 Bad Gateway"
        );
        let e = error_from_body(400, b"<html>");
        assert!(e
            .to_string()
            .starts_with("error parsing HTTP 400 response body"));
        let e = error_from_body(404, br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#);
        assert_eq!(e.to_string(), "manifest unknown: manifest unknown");
    }

    proptest! {
        #[test]
        fn challenge_parser_never_panics(s in ".{0,200}") {
            let _ = parse_challenges([s.as_str()]);
        }

        #[test]
        fn challenge_params_round_trip(
            scheme in "[A-Za-z][A-Za-z0-9]{0,10}",
            params in proptest::collection::btree_map("[a-z][a-z0-9_]{0,8}", "[ -~]{0,30}", 0..5),
        ) {
            let mut header = scheme.clone();
            let mut first = true;
            for (k, v) in &params {
                header.push_str(if first { " " } else { ", " });
                first = false;
                let q = v.replace('\\', "\\\\").replace('"', "\\\"");
                header.push_str(&format!("{k}=\"{q}\""));
            }
            let got = parse_challenges([header.as_str()]);
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0].scheme, &scheme.to_ascii_lowercase());
            prop_assert_eq!(&got[0].params, &params);
        }
    }
}
