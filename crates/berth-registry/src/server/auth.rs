//! Accounts and credentials: htpasswd (bcrypt) users, the failed-password slow-down, and the
//! ES256-signed JWTs of the built-in token service.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::config::{Action, Actions};

/// Why accounts or keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read htpasswd file {path}: {source}")]
    HtpasswdRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("htpasswd file {path} has no bcrypt entries; create users with `htpasswd -B`")]
    HtpasswdEmpty { path: PathBuf },
    #[error("token signing key {path}: {message}")]
    Key { path: PathBuf, message: String },
}

// ------------------------------------------------------------------ htpasswd

/// Users from an htpasswd file. Only bcrypt hashes are accepted (as in distribution); the file
/// is re-read when its modification time changes, so users can be added without a restart.
pub struct Htpasswd {
    path: PathBuf,
    inner: RwLock<HtpasswdInner>,
    /// sha256(user NUL password) of recently verified credentials: bcrypt costs milliseconds
    /// and Docker sends Basic credentials with every request.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

struct HtpasswdInner {
    mtime: Option<SystemTime>,
    users: HashMap<String, String>,
}

const VERIFIED_TTL: Duration = Duration::from_secs(300);
const VERIFIED_MAX: usize = 10_000;

/// Parses htpasswd text: `user:hash` lines; non-bcrypt entries are skipped with a warning.
pub fn parse_htpasswd(text: &str) -> HashMap<String, String> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            tracing::warn!("htpasswd line {}: no ':' separator, skipped", i + 1);
            continue;
        };
        if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
            tracing::warn!(
                "htpasswd line {}: user {user:?} has a non-bcrypt hash, skipped (use htpasswd -B)",
                i + 1
            );
            continue;
        }
        users.insert(user.to_string(), hash.to_string());
    }
    users
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd, AuthError> {
        let h = Htpasswd {
            path: path.to_path_buf(),
            inner: RwLock::new(HtpasswdInner {
                mtime: None,
                users: HashMap::new(),
            }),
            verified: Mutex::new(HashMap::new()),
        };
        h.reload_if_changed()?;
        if h.inner.read().map(|i| i.users.is_empty()).unwrap_or(true) {
            return Err(AuthError::HtpasswdEmpty {
                path: path.to_path_buf(),
            });
        }
        Ok(h)
    }

    fn reload_if_changed(&self) -> Result<(), AuthError> {
        let read_err = |source| AuthError::HtpasswdRead {
            path: self.path.clone(),
            source,
        };
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(read_err)?;
        if self.inner.read().ok().and_then(|i| i.mtime) == Some(mtime) {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).map_err(read_err)?;
        let users = parse_htpasswd(&text);
        if let Ok(mut i) = self.inner.write() {
            i.users = users;
            i.mtime = Some(mtime);
        }
        if let Ok(mut v) = self.verified.lock() {
            v.clear();
        }
        Ok(())
    }

    /// Whether the account exists.
    pub fn has_user(&self, user: &str) -> bool {
        if let Err(e) = self.reload_if_changed() {
            tracing::warn!("{e}");
        }
        self.inner
            .read()
            .map(|i| i.users.contains_key(user))
            .unwrap_or(false)
    }

    /// Checks a password (blocking: bcrypt). Call from a blocking thread.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        if let Err(e) = self.reload_if_changed() {
            tracing::warn!("{e}");
        }
        let key: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(user.as_bytes());
            h.update([0u8]);
            h.update(password.as_bytes());
            h.finalize().into()
        };
        if let Ok(v) = self.verified.lock() {
            if v.get(&key).is_some_and(|t| t.elapsed() < VERIFIED_TTL) {
                return true;
            }
        }
        let hash = match self.inner.read() {
            Ok(i) => i.users.get(user).cloned(),
            Err(_) => None,
        };
        let ok = match hash {
            Some(h) => bcrypt::verify(password, &h).unwrap_or(false),
            None => {
                // Spend the same time for unknown users, so timing does not reveal accounts.
                if let Some(dummy) = dummy_hash() {
                    let _ = bcrypt::verify(password, dummy);
                }
                false
            }
        };
        if ok {
            if let Ok(mut v) = self.verified.lock() {
                if v.len() >= VERIFIED_MAX {
                    v.retain(|_, t| t.elapsed() < VERIFIED_TTL);
                    if v.len() >= VERIFIED_MAX {
                        v.clear();
                    }
                }
                v.insert(key, Instant::now());
            }
        }
        ok
    }
}

/// A bcrypt hash at `htpasswd -B`'s default cost, checked against for unknown users.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| bcrypt::hash("berth-registry-dummy", 5).ok())
        .as_deref()
}

/// Decodes an `Authorization: Basic …` value into user and password.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The token of an `Authorization: Bearer …` value.
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

// ------------------------------------------------------------------ slow-down

/// Exponential, bounded delay of password checks after failures, per user and per client.
/// Attempts for one key are spaced: each reserves the next slot, so parallel guessing is
/// serialised too.
pub struct FailureTracker {
    base: Duration,
    max: Duration,
    entries: Mutex<HashMap<String, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    not_before: Instant,
    last: Instant,
}

const FORGET_AFTER: Duration = Duration::from_secs(900);
const MAX_TRACKED: usize = 100_000;

impl FailureTracker {
    pub fn new(base: Duration, max: Duration) -> FailureTracker {
        FailureTracker {
            base,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The delay after `count` failures: base·2^(count-1), at most `max`.
    pub fn delay_for(&self, count: u32) -> Duration {
        if count == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (count - 1).min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// How long this attempt must wait before the password is checked.
    pub fn reserve(&self, keys: &[String], now: Instant) -> Duration {
        let Ok(mut map) = self.entries.lock() else {
            return Duration::ZERO;
        };
        let mut wait = Duration::ZERO;
        for k in keys {
            if let Some(f) = map.get_mut(k) {
                if now.duration_since(f.last) > FORGET_AFTER {
                    continue;
                }
                if f.count > 0 {
                    let slot = f.not_before.max(now);
                    f.not_before = slot + self.delay_for(f.count);
                    wait = wait.max(slot - now);
                }
            }
        }
        wait
    }

    pub fn failed(&self, keys: &[String], now: Instant) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        if map.len() >= MAX_TRACKED {
            map.retain(|_, f| now.duration_since(f.last) <= FORGET_AFTER);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        for k in keys {
            let f = map.entry(k.clone()).or_insert(Failures {
                count: 0,
                not_before: now,
                last: now,
            });
            if now.duration_since(f.last) > FORGET_AFTER {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            f.not_before = f.not_before.max(now) + self.delay_for(f.count);
        }
    }

    pub fn succeeded(&self, keys: &[String]) {
        if let Ok(mut map) = self.entries.lock() {
            for k in keys {
                map.remove(k);
            }
        }
    }
}

// ------------------------------------------------------------------ tokens

/// One entry of a token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<AccessEntry>,
    /// "refresh" for refresh tokens (Docker keeps them as identity tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

impl Claims {
    /// The repository actions this token grants on `name`.
    pub fn granted(&self, name: &str) -> Actions {
        let mut out = Actions::NONE;
        for a in &self.access {
            if a.kind == "repository" && a.name == name {
                for act in &a.actions {
                    if act == "*" {
                        out = out
                            .with(Action::Pull)
                            .with(Action::Push)
                            .with(Action::Delete);
                    } else if let Some(x) = Action::parse(act) {
                        out = out.with(x);
                    }
                }
            }
        }
        out
    }

    pub fn grants_catalog(&self) -> bool {
        self.access
            .iter()
            .any(|a| a.kind == "registry" && a.name == "catalog")
    }

    pub fn account(&self) -> Option<&str> {
        (!self.sub.is_empty()).then_some(self.sub.as_str())
    }
}

/// A requested scope: `repository:<name>:<actions>` or `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Parses the `scope` parameters (each may hold several scopes separated by spaces).
pub fn parse_scopes<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Scope> {
    let mut out = Vec::new();
    for v in values {
        for s in v.split(' ').filter(|s| !s.is_empty()) {
            let Some((kind, rest)) = s.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            // "repository(plugin):name" is an old Docker variant of the type.
            let kind = kind.split('(').next().unwrap_or(kind).to_string();
            out.push(Scope {
                kind,
                name: name.to_string(),
                actions: actions
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
            });
        }
    }
    out
}

/// The ES256 key that signs and checks tokens.
/// JWTs are made here with `ring` directly rather than with a JWT crate: one fixed algorithm
/// needs ~50 lines, and it avoids a second crypto stack beside the `ring` rustls already uses.
pub struct TokenKey {
    pair: EcdsaKeyPair,
    public: Vec<u8>,
    kid: String,
    rng: SystemRandom,
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl TokenKey {
    fn from_pkcs8(der: &[u8]) -> Result<TokenKey, String> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| format!("not a PKCS#8 P-256 (ES256) private key: {e}"))?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = hex::encode(&Sha256::digest(&public)[..12]);
        Ok(TokenKey {
            pair,
            public,
            kid,
            rng,
        })
    }

    /// Loads a PEM PKCS#8 P-256 key.
    pub fn load(path: &Path) -> Result<TokenKey, AuthError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::PrivatePkcs8KeyDer;
        let err = |message: String| AuthError::Key {
            path: path.to_path_buf(),
            message,
        };
        let der = PrivatePkcs8KeyDer::from_pem_file(path).map_err(|e| err(e.to_string()))?;
        TokenKey::from_pkcs8(der.secret_pkcs8_der()).map_err(err)
    }

    /// Loads the key at `path`, or generates one there (mode 0600) if the file is missing.
    pub fn load_or_generate(path: &Path) -> Result<TokenKey, AuthError> {
        if path.exists() {
            return TokenKey::load(path);
        }
        let err = |message: String| AuthError::Key {
            path: path.to_path_buf(),
            message,
        };
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| err(format!("cannot generate a key: {e}")))?;
        let pem = pem_encode("PRIVATE KEY", pkcs8.as_ref());
        let tmp = path.with_extension("tmp");
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| err(e.to_string()))?;
            f.write_all(pem.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| err(e.to_string()))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))?;
        tracing::info!("generated token signing key {}", path.display());
        TokenKey::from_pkcs8(pkcs8.as_ref()).map_err(err)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs claims into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": self.kid});
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|e| e.to_string())?);
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|e| e.to_string())?);
        let input = format!("{h}.{p}");
        let sig = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    /// Checks signature, algorithm, issuer, audience and validity period.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Result<Claims, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed token".into());
        };
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(h)
                .map_err(|_| "malformed token header")?,
        )
        .map_err(|_| "malformed token header")?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("ES256") {
            return Err("unsupported token algorithm".into());
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "malformed token signature")?;
        let signed_len = h.len() + 1 + p.len();
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(&token.as_bytes()[..signed_len], &sig)
            .map_err(|_| "invalid token signature")?;
        let claims: Claims = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(p)
                .map_err(|_| "malformed token claims")?,
        )
        .map_err(|_| "malformed token claims")?;
        let now = unix_now();
        const LEEWAY: i64 = 60;
        if claims.iss != issuer || claims.aud != audience {
            return Err("token was issued for another registry".into());
        }
        if claims.exp + LEEWAY < now {
            return Err("token has expired".into());
        }
        if claims.nbf - LEEWAY > now {
            return Err("token is not valid yet".into());
        }
        Ok(claims)
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Shared handle type.
pub type SharedKey = Arc<TokenKey>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn htpasswd_bcrypt_only() {
        let h = bcrypt::hash("pw", 4).unwrap();
        let text = format!("alice:{h}\nbob:{{SHA}}abc\n# c\nbroken\ncarol:$apr1$x$y\n");
        let users = parse_htpasswd(&text);
        assert_eq!(users.len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h");
        std::fs::write(&p, text).unwrap();
        let hp = Htpasswd::load(&p).unwrap();
        assert!(hp.verify("alice", "pw"));
        assert!(hp.verify("alice", "pw")); // cached
        assert!(!hp.verify("alice", "nope"));
        assert!(!hp.verify("bob", "abc"));
        assert!(hp.has_user("alice"));
        std::fs::write(&p, "x:{SHA}y\n").unwrap();
        assert!(Htpasswd::load(&p).is_err());
    }

    #[test]
    fn basic_and_bearer_headers() {
        assert_eq!(
            parse_basic("Basic bWU6dHJhY2VwYXNzMTIz"),
            Some(("me".into(), "tracepass123".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_bearer("Bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("Basic abc"), None);
    }

    #[test]
    fn slowdown_is_exponential_and_bounded() {
        let t = FailureTracker::new(Duration::from_millis(100), Duration::from_secs(2));
        assert_eq!(t.delay_for(1), Duration::from_millis(100));
        assert_eq!(t.delay_for(3), Duration::from_millis(400));
        assert_eq!(t.delay_for(30), Duration::from_secs(2));
        let keys = vec!["user:a".to_string(), "ip:1".to_string()];
        let now = Instant::now();
        assert_eq!(t.reserve(&keys, now), Duration::ZERO);
        t.failed(&keys, now);
        t.failed(&keys, now);
        // Two failures: the next attempt waits 100 ms + 200 ms from now.
        let w = t.reserve(&keys, now);
        assert_eq!(w, Duration::from_millis(300));
        // A parallel attempt is queued behind it.
        assert!(t.reserve(&keys, now) > w);
        t.succeeded(&keys);
        assert_eq!(t.reserve(&keys, now), Duration::ZERO);
    }

    #[test]
    fn tokens_sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        let k = TokenKey::load_or_generate(&p).unwrap();
        let k2 = TokenKey::load_or_generate(&p).unwrap();
        assert_eq!(k.kid(), k2.kid());
        let now = unix_now();
        let c = Claims {
            iss: "i".into(),
            sub: "alice".into(),
            aud: "s".into(),
            exp: now + 60,
            nbf: now,
            iat: now,
            jti: "j".into(),
            access: vec![AccessEntry {
                kind: "repository".into(),
                name: "alice/app".into(),
                actions: vec!["pull".into(), "push".into()],
            }],
            typ: None,
        };
        let t = k.sign(&c).unwrap();
        let back = k2.verify(&t, "i", "s").unwrap();
        assert!(back.granted("alice/app").contains(Action::Push));
        assert!(!back.granted("alice/app").contains(Action::Delete));
        assert_eq!(back.granted("bob/app"), Actions::NONE);
        assert!(k.verify(&t, "i", "other").is_err());
        let mut bad = t.clone();
        bad.pop();
        bad.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(k.verify(&bad, "i", "s").is_err());
        let expired = Claims {
            exp: now - 3600,
            ..c
        };
        assert!(k.verify(&k.sign(&expired).unwrap(), "i", "s").is_err());
        // A token from another key is refused.
        let other = TokenKey::load_or_generate(&dir.path().join("k2.pem")).unwrap();
        assert!(other.verify(&t, "i", "s").is_err());
    }

    #[test]
    fn scopes() {
        let s = parse_scopes([
            "repository:alice/app:pull,push",
            "registry:catalog:* repository(plugin):x:pull",
            "junk",
        ]);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "alice/app");
        assert_eq!(s[0].actions, vec!["pull", "push"]);
        assert_eq!(s[1].kind, "registry");
        assert_eq!(s[2].kind, "repository");
    }

    proptest! {
        #[test]
        fn header_parsers_never_panic(s in ".{0,100}") {
            let _ = parse_basic(&s);
            let _ = parse_bearer(&s);
            let _ = parse_scopes([s.as_str()]);
            let _ = parse_htpasswd(&s);
        }

        #[test]
        fn verify_never_panics(s in "[A-Za-z0-9._-]{0,200}") {
            static KEY: std::sync::OnceLock<TokenKey> = std::sync::OnceLock::new();
            let k = KEY.get_or_init(|| {
                let rng = SystemRandom::new();
                let p = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
                TokenKey::from_pkcs8(p.as_ref()).unwrap()
            });
            prop_assert!(k.verify(&s, "i", "s").is_err());
        }
    }
}
