//! The registry's configuration: command-line settings merged with an optional YAML or JSON file.
//!
//! ```yaml
//! auth:
//!   htpasswd: /etc/berth/htpasswd   # bcrypt entries, as `htpasswd -B` writes them
//!   realm: berth-registry           # Basic realm (Basic mode only)
//!   anonymous_pull: true            # anyone may pull every repository
//!   token:                          # present: Docker-style bearer tokens from the built-in /token
//!     service: berth-registry
//!     issuer: berth-registry
//!     expiration: 300               # seconds an access token lives
//!     refresh_expiration: 2592000   # seconds a refresh (identity) token lives
//!     key: /etc/berth/token-key.pem # PKCS#8 P-256 key; generated under the root when absent
//!     realm: https://reg.example/token  # default: derived from each request's Host
//! access:                           # who may do what; rules add up
//!   - account: alice                # a user, "*" (any logged-in user) or "anonymous"
//!     name: "alice/*"               # glob over repository names; ${account} is the user's name
//!     actions: [pull, push, delete]
//!   - account: "*"
//!     name: "library/*"
//!     actions: [pull]
//! limits:
//!   requests_per_second: 0          # per client address; 0 = unlimited
//!   burst: 200
//!   max_manifest_bytes: 4194304
//!   max_blob_bytes: 0               # 0 = unlimited
//! uploads:
//!   expiry: 3600                    # seconds an idle upload is kept
//!   sweep_interval: 300
//! storage:
//!   delete: true                    # allow DELETE of blobs and manifests
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// A repository action of the token spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// One access rule: `account` may do `actions` on repositories matching `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    pub account: String,
    pub name: String,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub service: Option<String>,
    pub issuer: Option<String>,
    pub expiration: Option<u64>,
    pub refresh_expiration: Option<u64>,
    pub key: Option<PathBuf>,
    pub realm: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    htpasswd: Option<PathBuf>,
    realm: Option<String>,
    anonymous_pull: Option<bool>,
    token: Option<TokenSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    requests_per_second: Option<u32>,
    burst: Option<u32>,
    max_manifest_bytes: Option<u64>,
    max_blob_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadsFile {
    expiry: Option<u64>,
    sweep_interval: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageFile {
    delete: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    addr: Option<String>,
    root: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    auth: Option<AuthFile>,
    access: Option<Vec<AccessRule>>,
    limits: Option<LimitsFile>,
    uploads: Option<UploadsFile>,
    storage: Option<StorageFile>,
}

/// The effective settings of one registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub addr: String,
    pub root: PathBuf,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub htpasswd: Option<PathBuf>,
    pub realm: String,
    pub anonymous_pull: bool,
    /// `Some`: bearer-token mode with the built-in token service.
    pub token: Option<TokenSettings>,
    /// `None`: the default rules (see [`RegistryConfig::effective_rules`]).
    pub access: Option<Vec<AccessRule>>,
    pub requests_per_second: u32,
    pub burst: u32,
    pub max_manifest_bytes: u64,
    pub max_blob_bytes: u64,
    pub upload_expiry: std::time::Duration,
    pub upload_sweep_interval: std::time::Duration,
    pub delete_enabled: bool,
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";
pub const DEFAULT_ROOT: &str = "/var/lib/berth-registry";
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            addr: DEFAULT_ADDR.to_string(),
            root: PathBuf::from(DEFAULT_ROOT),
            tls_cert: None,
            tls_key: None,
            htpasswd: None,
            realm: "berth-registry".to_string(),
            anonymous_pull: false,
            token: None,
            access: None,
            requests_per_second: 0,
            burst: 200,
            max_manifest_bytes: MAX_MANIFEST_BYTES,
            max_blob_bytes: 0,
            upload_expiry: std::time::Duration::from_secs(3600),
            upload_sweep_interval: std::time::Duration::from_secs(300),
            delete_enabled: true,
        }
    }
}

impl RegistryConfig {
    /// Reads a YAML (or, for `*.json`, JSON) file and applies it over the defaults.
    pub fn from_file(path: &Path) -> Result<RegistryConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let is_json = path.extension().is_some_and(|e| e == "json");
        Self::from_str_with(&text, is_json).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses configuration text (YAML, or JSON when `json`).
    pub fn from_str_with(text: &str, json: bool) -> Result<RegistryConfig, String> {
        let file: ConfigFile = if json {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        } else if text.trim().is_empty() {
            ConfigFile::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
        };
        let mut c = RegistryConfig::default();
        if let Some(a) = file.addr {
            c.addr = a;
        }
        if let Some(r) = file.root {
            c.root = r;
        }
        c.tls_cert = file.tls_cert;
        c.tls_key = file.tls_key;
        if let Some(auth) = file.auth {
            c.htpasswd = auth.htpasswd;
            if let Some(r) = auth.realm {
                c.realm = r;
            }
            if let Some(a) = auth.anonymous_pull {
                c.anonymous_pull = a;
            }
            c.token = auth.token;
        }
        c.access = file.access;
        if let Some(l) = file.limits {
            if let Some(v) = l.requests_per_second {
                c.requests_per_second = v;
            }
            if let Some(v) = l.burst {
                c.burst = v;
            }
            if let Some(v) = l.max_manifest_bytes {
                c.max_manifest_bytes = v;
            }
            if let Some(v) = l.max_blob_bytes {
                c.max_blob_bytes = v;
            }
        }
        if let Some(u) = file.uploads {
            if let Some(v) = u.expiry {
                c.upload_expiry = std::time::Duration::from_secs(v);
            }
            if let Some(v) = u.sweep_interval {
                c.upload_sweep_interval = std::time::Duration::from_secs(v.max(1));
            }
        }
        if let Some(s) = file.storage {
            if let Some(d) = s.delete {
                c.delete_enabled = d;
            }
        }
        Ok(c)
    }

    /// Checks combinations that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "--tls-cert and --tls-key must be given together".into(),
            ));
        }
        if self.token.is_some() && self.htpasswd.is_none() {
            return Err(ConfigError::Invalid(
                "the token service needs accounts: give --htpasswd (or auth.htpasswd)".into(),
            ));
        }
        if self.burst == 0 && self.requests_per_second > 0 {
            return Err(ConfigError::Invalid(
                "limits.burst must be at least 1".into(),
            ));
        }
        if self.max_manifest_bytes == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_manifest_bytes must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Whether requests must authenticate at all.
    pub fn auth_enabled(&self) -> bool {
        self.htpasswd.is_some()
    }

    /// The rules in force: the configured ones, or the defaults — with accounts configured,
    /// logged-in users may do everything; without, everyone may. `anonymous_pull` adds
    /// anonymous pull of every repository in both cases.
    pub fn effective_rules(&self) -> Vec<AccessRule> {
        let all = vec![Action::Pull, Action::Push, Action::Delete];
        let mut rules = match &self.access {
            Some(r) => r.clone(),
            None if self.auth_enabled() => vec![AccessRule {
                account: "*".into(),
                name: "*".into(),
                actions: all.clone(),
            }],
            None => vec![
                AccessRule {
                    account: "*".into(),
                    name: "*".into(),
                    actions: all.clone(),
                },
                AccessRule {
                    account: "anonymous".into(),
                    name: "*".into(),
                    actions: all,
                },
            ],
        };
        if self.anonymous_pull {
            rules.push(AccessRule {
                account: "anonymous".into(),
                name: "*".into(),
                actions: vec![Action::Pull],
            });
        }
        rules
    }
}

/// A set of actions (bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actions(u8);

impl Actions {
    pub const NONE: Actions = Actions(0);

    fn bit(a: Action) -> u8 {
        match a {
            Action::Pull => 1,
            Action::Push => 2,
            Action::Delete => 4,
        }
    }

    pub fn with(self, a: Action) -> Actions {
        Actions(self.0 | Self::bit(a))
    }

    pub fn contains(self, a: Action) -> bool {
        self.0 & Self::bit(a) != 0
    }

    pub fn union(self, o: Actions) -> Actions {
        Actions(self.0 | o.0)
    }

    pub fn intersect(self, o: Actions) -> Actions {
        Actions(self.0 & o.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Action> {
        [Action::Pull, Action::Push, Action::Delete]
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

/// The access rules, ready to evaluate.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    rules: Vec<AccessRule>,
}

impl AccessPolicy {
    pub fn new(rules: Vec<AccessRule>) -> AccessPolicy {
        AccessPolicy { rules }
    }

    /// What `account` (`None` = anonymous) may do on repository `name`.
    pub fn allowed(&self, account: Option<&str>, name: &str) -> Actions {
        let mut out = Actions::NONE;
        for r in &self.rules {
            let applies = match (r.account.as_str(), account) {
                ("anonymous", None) => true,
                ("*", Some(_)) => true,
                (want, Some(user)) => want == user,
                _ => false,
            };
            if !applies {
                continue;
            }
            let pattern = match account {
                Some(user) => r.name.replace("${account}", user),
                None if r.name.contains("${account}") => continue,
                None => r.name.clone(),
            };
            if glob_match(&pattern, name) {
                for a in &r.actions {
                    out = out.with(*a);
                }
            }
        }
        out
    }
}

/// `*` matches any run of characters (including `/`); everything else matches itself.
/// Hand-written: the only wildcard rules need is `*`, and a regex engine would be overkill.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "a/b"));
        assert!(glob_match("alice/*", "alice/app"));
        assert!(glob_match("alice/*", "alice/x/y"));
        assert!(!glob_match("alice/*", "alicex/app"));
        assert!(!glob_match("alice/*", "bob/alice/app"));
        assert!(glob_match("library/busybox", "library/busybox"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcd"));
    }

    #[test]
    fn parses_yaml_and_evaluates_rules() {
        let c = RegistryConfig::from_str_with(
            r#"
auth:
  htpasswd: /x/htpasswd
  token: {}
access:
  - account: alice
    name: "alice/*"
    actions: [pull, push]
  - account: "*"
    name: "${account}/*"
    actions: [pull, push, delete]
  - account: "*"
    name: "library/*"
    actions: [pull]
  - account: anonymous
    name: "library/*"
    actions: [pull]
limits:
  requests_per_second: 5
  burst: 10
uploads:
  expiry: 2
"#,
            false,
        )
        .unwrap();
        c.validate().unwrap();
        assert!(c.token.is_some());
        assert_eq!(c.requests_per_second, 5);
        assert_eq!(c.upload_expiry.as_secs(), 2);
        let p = AccessPolicy::new(c.effective_rules());
        let a = p.allowed(Some("alice"), "alice/app");
        assert!(a.contains(Action::Push) && a.contains(Action::Delete));
        assert_eq!(p.allowed(Some("bob"), "alice/app"), Actions::NONE);
        assert!(p.allowed(Some("bob"), "bob/x").contains(Action::Push));
        assert!(p.allowed(None, "library/busybox").contains(Action::Pull));
        assert!(!p.allowed(None, "library/busybox").contains(Action::Push));
        assert_eq!(p.allowed(None, "alice/app"), Actions::NONE);
    }

    #[test]
    fn json_and_defaults() {
        let c = RegistryConfig::from_str_with(r#"{"auth":{"anonymous_pull":true}}"#, true).unwrap();
        let p = AccessPolicy::new(c.effective_rules());
        // No accounts: everyone may do everything.
        assert!(p.allowed(None, "x").contains(Action::Push));
        let mut c = RegistryConfig {
            htpasswd: Some("/h".into()),
            anonymous_pull: true,
            ..Default::default()
        };
        let p = AccessPolicy::new(c.effective_rules());
        assert!(p.allowed(None, "x").contains(Action::Pull));
        assert!(!p.allowed(None, "x").contains(Action::Push));
        assert!(p.allowed(Some("u"), "x").contains(Action::Delete));
        c.anonymous_pull = false;
        let p = AccessPolicy::new(c.effective_rules());
        assert_eq!(p.allowed(None, "x"), Actions::NONE);
        assert!(RegistryConfig::from_str_with("bogus: 1", false).is_err());
    }

    proptest! {
        #[test]
        fn config_parser_never_panics(s in ".{0,200}") {
            let _ = RegistryConfig::from_str_with(&s, false);
            let _ = RegistryConfig::from_str_with(&s, true);
        }

        #[test]
        fn star_matches_everything(s in "[a-z/]{0,30}") {
            prop_assert!(glob_match("*", &s));
            prop_assert!(glob_match(&s, &s));
        }
    }
}
