//! The client configuration (`config.json`) and registry credentials, compatible with the
//! Docker CLI: `auths` entries with base64 `user:password`, credential helpers
//! (`docker-credential-<name>`, `credsStore` and per-registry `credHelpers`) speaking the
//! helper protocol (`store` / `get` / `erase`), `DOCKER_CONFIG` and `--config`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use berth_api::models::AuthConfig;
use serde_json::{Map, Value};

/// Docker Hub's key in `auths` (and the default `login` server).
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// What a credential helper prints when it has nothing for a server.
const NOT_FOUND: &str = "credentials not found in native keychain";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("loading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing config file {path}: {source}; fix or remove the file")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("saving config file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid auth configuration for {server} in {path}: {reason}")]
    BadEntry {
        server: String,
        path: PathBuf,
        reason: String,
    },
    #[error("error getting credentials - err: {reason}, out: `{out}`")]
    HelperGet { reason: String, out: String },
    #[error("error storing credentials - err: {reason}, out: `{out}`")]
    HelperStore { reason: String, out: String },
    #[error("error erasing credentials - err: {reason}, out: `{out}`")]
    HelperErase { reason: String, out: String },
}

/// `--config`, then `DOCKER_CONFIG`, then `~/.docker`.
pub fn config_dir(flag: Option<&Path>) -> PathBuf {
    config_dir_with(flag, |k| std::env::var_os(k).map(PathBuf::from))
}

fn config_dir_with(flag: Option<&Path>, env: impl Fn(&str) -> Option<PathBuf>) -> PathBuf {
    if let Some(f) = flag {
        return f.to_path_buf();
    }
    if let Some(d) = env("DOCKER_CONFIG").filter(|d| !d.as_os_str().is_empty()) {
        return d;
    }
    env("HOME")
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".docker")
}

/// Docker's `ConvertToHostname`: `https://host:5000/v2/` → `host:5000`.
pub fn convert_to_hostname(url: &str) -> String {
    let stripped = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    stripped.split('/').next().unwrap_or(stripped).to_string()
}

/// The `auths` key for a registry domain (`docker.io` → the index server URL).
pub fn auth_key_for_domain(domain: &str) -> String {
    if domain == "docker.io" || domain == "index.docker.io" {
        INDEX_SERVER.to_string()
    } else {
        domain.to_string()
    }
}

/// Where credentials for a server go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Base64 in `config.json`.
    File,
    /// `docker-credential-<name>`.
    Helper(String),
}

/// `config.json`, kept as JSON so that keys berth does not know survive a rewrite.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    raw: Map<String, Value>,
    /// Where to find `docker-credential-*` (tests); `None`: search `PATH`.
    helper_dir: Option<PathBuf>,
}

impl ConfigFile {
    /// Loads `<dir>/config.json`; a missing file is an empty configuration.
    pub fn load(dir: &Path) -> Result<Self, AuthError> {
        let path = dir.join("config.json");
        let raw = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| AuthError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(source) => return Err(AuthError::Read { path, source }),
        };
        Ok(Self {
            path,
            raw,
            helper_dir: None,
        })
    }

    /// Looks for credential helpers in `dir` instead of `PATH`.
    #[cfg(test)]
    pub fn with_helper_dir(mut self, dir: &Path) -> Self {
        self.helper_dir = Some(dir.to_path_buf());
        self
    }

    fn helper(&self, name: &str) -> Helper {
        Helper {
            program: match &self.helper_dir {
                Some(d) => d.join(format!("docker-credential-{name}")),
                None => PathBuf::from(format!("docker-credential-{name}")),
            },
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn string(&self, key: &str) -> Option<String> {
        self.raw
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// `currentContext` (`context use`).
    pub fn current_context(&self) -> Option<String> {
        self.string("currentContext")
    }

    /// Sets `currentContext`; `None` removes it (the default context).
    pub fn set_current_context(&mut self, name: Option<&str>) {
        match name {
            Some(n) => {
                self.raw
                    .insert("currentContext".into(), Value::String(n.to_string()));
            }
            None => {
                self.raw.remove("currentContext");
            }
        }
    }

    pub fn detach_keys(&self) -> Option<String> {
        self.string("detachKeys")
    }

    pub fn ps_format(&self) -> Option<String> {
        self.string("psFormat")
    }

    pub fn images_format(&self) -> Option<String> {
        self.string("imagesFormat")
    }

    pub fn creds_store(&self) -> Option<String> {
        self.string("credsStore")
    }

    /// The store for a server: its `credHelpers` entry, else `credsStore`, else the file.
    pub fn store_for(&self, server: &str) -> Store {
        let host = convert_to_hostname(server);
        let helper = self
            .raw
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|m| m.get(server).or_else(|| m.get(&host)))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        match helper.or_else(|| self.creds_store()) {
            Some(h) => Store::Helper(h),
            None => Store::File,
        }
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.raw.get("auths").and_then(Value::as_object)
    }

    /// The stored entry for `server` in `auths` (exact key, else a key with the same host).
    fn file_get(&self, server: &str) -> Result<AuthConfig, AuthError> {
        let Some(auths) = self.auths() else {
            return Ok(AuthConfig::default());
        };
        let found = auths
            .get(server)
            .map(|v| (server.to_string(), v))
            .or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| convert_to_hostname(k) == server)
                    .map(|(k, v)| (k.clone(), v))
            });
        let Some((key, entry)) = found else {
            return Ok(AuthConfig::default());
        };
        let mut ac: AuthConfig =
            serde_json::from_value(entry.clone()).map_err(|e| AuthError::BadEntry {
                server: key.clone(),
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        if !ac.auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(ac.auth.trim())
                .map_err(|e| AuthError::BadEntry {
                    server: key.clone(),
                    path: self.path.clone(),
                    reason: format!("auth is not base64: {e}"),
                })?;
            let text = String::from_utf8_lossy(&decoded);
            let (user, pass) = text.split_once(':').ok_or_else(|| AuthError::BadEntry {
                server: key.clone(),
                path: self.path.clone(),
                reason: "auth is not user:password".to_string(),
            })?;
            ac.username = user.to_string();
            ac.password = pass.trim_end_matches('\0').to_string();
            ac.auth.clear();
        }
        ac.server_address = key;
        Ok(ac)
    }

    fn file_store(&mut self, server: &str, ac: &AuthConfig) {
        let mut entry = Map::new();
        if !ac.username.is_empty() || !ac.password.is_empty() {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", ac.username, ac.password));
            entry.insert("auth".into(), Value::String(auth));
        }
        if !ac.email.is_empty() {
            entry.insert("email".into(), Value::String(ac.email.clone()));
        }
        if !ac.identity_token.is_empty() {
            entry.insert(
                "identitytoken".into(),
                Value::String(ac.identity_token.clone()),
            );
        }
        if !ac.registry_token.is_empty() {
            entry.insert(
                "registrytoken".into(),
                Value::String(ac.registry_token.clone()),
            );
        }
        let auths = self
            .raw
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(m) = auths {
            m.insert(server.to_string(), Value::Object(entry));
        }
    }

    fn file_erase(&mut self, server: &str) {
        if let Some(Value::Object(m)) = self.raw.get_mut("auths") {
            m.remove(server);
        }
    }

    /// Credentials for `server` from its store (empty when there are none).
    pub fn get_auth(&self, server: &str) -> Result<AuthConfig, AuthError> {
        match self.store_for(server) {
            Store::File => self.file_get(server),
            Store::Helper(name) => {
                let mut ac = self.file_get(server)?;
                match self.helper(&name).get(server)? {
                    Some(creds) => {
                        if creds.username == "<token>" {
                            ac.identity_token = creds.secret;
                        } else {
                            ac.username = creds.username;
                            ac.password = creds.secret;
                        }
                        ac.server_address = server.to_string();
                    }
                    None => {
                        ac.username.clear();
                        ac.password.clear();
                    }
                }
                Ok(ac)
            }
        }
    }

    /// Stores credentials in the server's store and saves the file. Returns the store used.
    pub fn store_auth(&mut self, server: &str, ac: &AuthConfig) -> Result<Store, AuthError> {
        let store = self.store_for(server);
        match &store {
            Store::File => self.file_store(server, ac),
            Store::Helper(name) => {
                let (user, secret) = if ac.identity_token.is_empty() {
                    (ac.username.as_str(), ac.password.as_str())
                } else {
                    ("<token>", ac.identity_token.as_str())
                };
                self.helper(name).store(server, user, secret)?;
                // Like Docker: keep only the non-secret parts (the email) in the file.
                let rest = AuthConfig {
                    email: ac.email.clone(),
                    ..AuthConfig::default()
                };
                self.file_store(server, &rest);
            }
        }
        self.save()?;
        Ok(store)
    }

    /// Erases credentials for `server` from its store and the file.
    pub fn erase_auth(&mut self, server: &str) -> Result<(), AuthError> {
        let result = match self.store_for(server) {
            Store::File => Ok(()),
            Store::Helper(name) => self.helper(&name).erase(server),
        };
        let present = self.auths().is_some_and(|m| m.contains_key(server));
        if present {
            self.file_erase(server);
            self.save()?;
        }
        result
    }

    /// Whether `auths` has an entry for `server`.
    pub fn has_file_entry(&self, server: &str) -> bool {
        self.auths().is_some_and(|m| m.contains_key(server))
    }

    /// Writes the file atomically (temp file + rename), mode 0600, tab-indented like Docker.
    pub fn save(&self) -> Result<(), AuthError> {
        let err = |source| AuthError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(&self.raw, &mut ser)
            .map_err(|e| err(std::io::Error::other(e)))?;
        let mut tmp = tempfile::Builder::new()
            .prefix("config.json")
            .tempfile_in(dir)
            .map_err(err)?;
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o600);
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(err)?;
        }
        tmp.write_all(&buf).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        tmp.persist(&target).map_err(|e| err(e.error))?;
        Ok(())
    }
}

/// A credential helper's answer to `get`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct HelperCreds {
    #[serde(rename = "Username", default)]
    pub username: String,
    #[serde(rename = "Secret", default)]
    pub secret: String,
}

/// One `docker-credential-<name>` program.
struct Helper {
    program: PathBuf,
}

impl Helper {
    fn run(&self, action: &str, input: &[u8]) -> Result<(bool, String), String> {
        let program = &self.program;
        let mut child = Command::new(program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("exec: {:?}: {e}", program.display().to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input)
                .map_err(|e| format!("writing to {}: {e}", program.display()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for {}: {e}", program.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok((out.status.success(), text))
    }

    /// `get`: `Ok(None)` when the helper has no credentials for the server.
    fn get(&self, server: &str) -> Result<Option<HelperCreds>, AuthError> {
        let (ok, out) =
            self.run("get", server.as_bytes())
                .map_err(|reason| AuthError::HelperGet {
                    reason,
                    out: String::new(),
                })?;
        if !ok {
            if out.contains(NOT_FOUND) {
                return Ok(None);
            }
            return Err(AuthError::HelperGet {
                reason: "exit status 1".into(),
                out,
            });
        }
        serde_json::from_str(&out)
            .map(Some)
            .map_err(|e| AuthError::HelperGet {
                reason: e.to_string(),
                out,
            })
    }

    fn store(&self, server: &str, user: &str, secret: &str) -> Result<(), AuthError> {
        #[derive(serde::Serialize)]
        struct Creds<'a> {
            #[serde(rename = "ServerURL")]
            server_url: &'a str,
            #[serde(rename = "Username")]
            username: &'a str,
            #[serde(rename = "Secret")]
            secret: &'a str,
        }
        let input = serde_json::to_vec(&Creds {
            server_url: server,
            username: user,
            secret,
        })
        .map_err(|e| AuthError::HelperStore {
            reason: e.to_string(),
            out: String::new(),
        })?;
        let (ok, out) = self
            .run("store", &input)
            .map_err(|reason| AuthError::HelperStore {
                reason,
                out: String::new(),
            })?;
        if ok {
            Ok(())
        } else {
            Err(AuthError::HelperStore {
                reason: "exit status 1".into(),
                out,
            })
        }
    }

    fn erase(&self, server: &str) -> Result<(), AuthError> {
        let (ok, out) =
            self.run("erase", server.as_bytes())
                .map_err(|reason| AuthError::HelperErase {
                    reason,
                    out: String::new(),
                })?;
        if ok {
            Ok(())
        } else {
            Err(AuthError::HelperErase {
                reason: "exit status 1".into(),
                out,
            })
        }
    }
}

/// All entries of `auths` (for tests and diagnostics): server → decoded credentials.
#[cfg(test)]
pub fn file_entries(cfg: &ConfigFile) -> std::collections::BTreeMap<String, AuthConfig> {
    cfg.auths()
        .map(|m| {
            m.keys()
                .filter_map(|k| cfg.file_get(k).ok().map(|a| (k.clone(), a)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn config_dir_precedence() {
        let env = |k: &str| match k {
            "DOCKER_CONFIG" => Some(PathBuf::from("/dc")),
            "HOME" => Some(PathBuf::from("/home/u")),
            _ => None,
        };
        assert_eq!(
            config_dir_with(Some(Path::new("/f")), env),
            PathBuf::from("/f")
        );
        assert_eq!(config_dir_with(None, env), PathBuf::from("/dc"));
        let home = |k: &str| (k == "HOME").then(|| PathBuf::from("/home/u"));
        assert_eq!(
            config_dir_with(None, home),
            PathBuf::from("/home/u/.docker")
        );
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            convert_to_hostname("https://localhost:5000/v2/"),
            "localhost:5000"
        );
        assert_eq!(convert_to_hostname("localhost:5000"), "localhost:5000");
        assert_eq!(auth_key_for_domain("docker.io"), INDEX_SERVER);
        assert_eq!(auth_key_for_domain("quay.io"), "quay.io");
    }

    #[test]
    fn file_store_round_trip_is_docker_compatible() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"psFormat":"table {{.ID}}","auths":{}}"#,
        )
        .unwrap();
        let mut cfg = ConfigFile::load(dir.path()).unwrap();
        let ac = AuthConfig {
            username: "me".into(),
            password: "tracepass123".into(),
            server_address: "localhost:5000".into(),
            ..Default::default()
        };
        assert_eq!(cfg.store_auth("localhost:5000", &ac).unwrap(), Store::File);
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert_eq!(
            text,
            "{\n\t\"auths\": {\n\t\t\"localhost:5000\": {\n\t\t\t\"auth\": \"bWU6dHJhY2VwYXNzMTIz\"\n\t\t}\n\t},\n\t\"psFormat\": \"table {{.ID}}\"\n}"
        );
        let mode = std::fs::metadata(dir.path().join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "an existing file keeps its mode");
        let cfg = ConfigFile::load(dir.path()).unwrap();
        let back = cfg.get_auth("localhost:5000").unwrap();
        assert_eq!(back.username, "me");
        assert_eq!(back.password, "tracepass123");
        assert_eq!(back.server_address, "localhost:5000");
        assert_eq!(
            back.to_registry_auth_header(),
            base64::engine::general_purpose::URL_SAFE.encode(
                r#"{"username":"me","password":"tracepass123","serveraddress":"localhost:5000"}"#
            )
        );
        // Legacy keys with a scheme are found by host name.
        let mut cfg = cfg;
        cfg.file_store("https://legacy:5000", &ac);
        assert_eq!(cfg.get_auth("legacy:5000").unwrap().username, "me");
        cfg.erase_auth("localhost:5000").unwrap();
        let cfg = ConfigFile::load(dir.path()).unwrap();
        assert_eq!(
            cfg.get_auth("localhost:5000").unwrap(),
            AuthConfig::default()
        );
        assert_eq!(cfg.ps_format().as_deref(), Some("table {{.ID}}"));
    }

    #[test]
    fn new_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("cfg");
        let mut cfg = ConfigFile::load(&sub).unwrap();
        cfg.store_auth(
            "r:1",
            &AuthConfig {
                username: "u".into(),
                password: "p".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let mode = std::fs::metadata(sub.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let cfg = ConfigFile::load(&sub).unwrap();
        assert_eq!(file_entries(&cfg)["r:1"].username, "u");
    }

    #[test]
    fn broken_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let e = ConfigFile::load(dir.path()).unwrap_err();
        assert!(e.to_string().starts_with("parsing config file"), "{e}");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"x":{"auth":"!!!"}}}"#,
        )
        .unwrap();
        let cfg = ConfigFile::load(dir.path()).unwrap();
        assert!(cfg.get_auth("x").is_err());
    }

    #[test]
    fn helper_selection() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore":"desktop","credHelpers":{"quay.io":"quay"}}"#,
        )
        .unwrap();
        let cfg = ConfigFile::load(dir.path()).unwrap();
        assert_eq!(cfg.store_for("quay.io"), Store::Helper("quay".into()));
        assert_eq!(
            cfg.store_for("https://quay.io"),
            Store::Helper("quay".into())
        );
        assert_eq!(cfg.store_for("other:5000"), Store::Helper("desktop".into()));
    }

    /// A fake `docker-credential-test` that keeps its secrets in files next to itself.
    fn fake_helper(dir: &Path) {
        let script = r#"#!/bin/sh
set -e
store="$(dirname "$0")/store"
mkdir -p "$store"
case "$1" in
store)
    input=$(cat)
    server=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
    key=$(printf '%s' "$server" | tr '/:' '__')
    printf '%s' "$input" > "$store/$key"
    ;;
get)
    server=$(cat)
    key=$(printf '%s' "$server" | tr '/:' '__')
    if [ -f "$store/$key" ]; then cat "$store/$key"; else echo "credentials not found in native keychain"; exit 1; fi
    ;;
erase)
    server=$(cat)
    key=$(printf '%s' "$server" | tr '/:' '__')
    if [ -f "$store/$key" ]; then rm "$store/$key"; else echo "credentials not found in native keychain"; exit 1; fi
    ;;
*) echo "unknown action $1"; exit 1 ;;
esac
"#;
        let path = dir.join("docker-credential-test");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn credential_helper_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let helpers = dir.path().join("bin");
        std::fs::create_dir(&helpers).unwrap();
        fake_helper(&helpers);
        std::fs::write(dir.path().join("config.json"), r#"{"credsStore":"test"}"#).unwrap();
        let mut cfg = ConfigFile::load(dir.path())
            .unwrap()
            .with_helper_dir(&helpers);
        assert_eq!(cfg.get_auth("localhost:5000").unwrap().username, "");
        let ac = AuthConfig {
            username: "me".into(),
            password: "s3cret".into(),
            server_address: "localhost:5000".into(),
            ..Default::default()
        };
        assert_eq!(
            cfg.store_auth("localhost:5000", &ac).unwrap(),
            Store::Helper("test".into())
        );
        // The secret went to the helper; the file only has an empty entry, as Docker writes.
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("auth\":"),
            "{text}"
        );
        assert!(cfg.has_file_entry("localhost:5000"));
        let cfg2 = ConfigFile::load(dir.path())
            .unwrap()
            .with_helper_dir(&helpers);
        let back = cfg2.get_auth("localhost:5000").unwrap();
        assert_eq!(
            (back.username.as_str(), back.password.as_str()),
            ("me", "s3cret")
        );
        assert_eq!(back.server_address, "localhost:5000");
        // Identity tokens travel as the <token> user.
        let tok = AuthConfig {
            username: "me".into(),
            identity_token: "tok-123".into(),
            ..Default::default()
        };
        cfg.store_auth("other:1", &tok).unwrap();
        let back = cfg.get_auth("other:1").unwrap();
        assert_eq!(back.identity_token, "tok-123");
        assert_eq!(back.password, "");
        cfg.erase_auth("localhost:5000").unwrap();
        assert_eq!(cfg.get_auth("localhost:5000").unwrap().password, "");
        assert!(!cfg.has_file_entry("localhost:5000"));
        assert!(
            cfg.erase_auth("localhost:5000").is_err(),
            "nothing left to erase"
        );
        // A helper that is not installed is a clear error.
        std::fs::write(dir.path().join("config.json"), r#"{"credsStore":"nope"}"#).unwrap();
        let cfg = ConfigFile::load(dir.path())
            .unwrap()
            .with_helper_dir(&helpers);
        let e = cfg.get_auth("x").unwrap_err().to_string();
        assert!(e.contains("docker-credential-nope"), "{e}");
    }
}
