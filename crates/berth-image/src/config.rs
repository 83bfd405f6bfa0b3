//! The image config (Docker's `image.Image` / OCI image config), as stored in the config blob
//! whose sha256 is the image ID.
//!
//! Parsing is lenient the way Docker's is: unknown fields are kept (in `extra`, so a commit or
//! re-serialisation does not lose them), JSON `null` is accepted wherever Docker's Go structs
//! accept it, and `Cmd`/`Entrypoint`/`Shell` may be a string as well as an array (Docker's
//! `strslice`). The image ID is always computed from the original bytes, never from a
//! re-serialisation.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::digest::Digest;

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's `strslice.StrSlice`: an array of strings, or a single string, or null.
fn strslice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

/// The full image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub os: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
    /// RFC 3339 creation time, as written (Docker writes nanoseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub container: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_version: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    #[serde(default, deserialize_with = "nullable")]
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
    /// Fields berth does not model (`os.version`, `os.features`, `parent`, `id`, …), kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `rootfs`: the ordered diff IDs of the layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub created_by: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub author: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub empty_layer: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The container defaults an image carries (`config` and `container_config`), with Docker's
/// Go field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub hostname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub domainname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "strslice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub args_escaped: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "strslice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub network_disabled: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(
        default,
        deserialize_with = "strslice",
        skip_serializing_if = "Option::is_none"
    )]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `Healthcheck`; durations are nanoseconds, as in Docker's JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_interval: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Why a config blob was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid image config: {0}")]
pub struct ConfigError(#[from] serde_json::Error);

impl ImageConfig {
    /// Parses config bytes leniently (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, ConfigError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Serialises with sorted keys (as Docker does for the configs it writes). The image ID of
    /// a new image is the sha256 of exactly these bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ConfigError> {
        let v = serde_json::to_value(self)?;
        Ok(serde_json::to_vec(&v)?)
    }

    /// `created` as unix seconds (0 when absent or unparsable).
    pub fn created_unix(&self) -> i64 {
        parse_time(self.created.as_deref())
    }
}

/// RFC 3339 → unix seconds; 0 for absent or invalid.
pub fn parse_time(s: Option<&str>) -> i64 {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// Now, in Docker's format (RFC 3339 with nanoseconds, UTC).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The config Docker 20.10 wrote for an imported busybox (trace 08).
    const DOCKER_IMPORTED: &str = r#"{"architecture":"amd64","comment":"Imported from -","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["sh"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"created":"2026-11-27T16:59:51.656297229Z","docker_version":"20.10.24+dfsg1","history":[{"created":"2026-11-27T16:59:51.656297229Z","comment":"Imported from -"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:dd8c236043f718d2fec1c9803955e4d22c84b8c95fddc63a1aef2131b06b55fc"]}}"#;

    #[test]
    fn parses_docker_config() {
        let c = ImageConfig::parse(DOCKER_IMPORTED.as_bytes()).unwrap();
        assert_eq!(c.architecture, "amd64");
        assert_eq!(c.comment, "Imported from -");
        let cfg = c.config.as_ref().unwrap();
        assert_eq!(cfg.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(cfg.env, None);
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert_eq!(c.history.len(), 1);
        assert_eq!(c.created_unix(), 1_795_798_791);
        // re-serialisation keeps what matters
        let again = ImageConfig::parse(&c.to_bytes().unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn lenient_with_nulls_unknown_fields_and_strings() {
        let c = ImageConfig::parse(
            br#"{"architecture":null,"os":"linux","rootfs":null,"history":null,
                 "os.features":["x"],"future":{"a":1},
                 "config":{"Cmd":"echo hi","Entrypoint":null,"Env":["A=1"],"Healthcheck":{"Test":["CMD","true"],"Interval":null,"Retries":3},"Labels":{"a":"b"},"NewField":true}}"#,
        )
        .unwrap();
        assert_eq!(c.architecture, "");
        assert!(c.rootfs.diff_ids.is_empty());
        assert_eq!(c.extra.get("future"), Some(&serde_json::json!({"a":1})));
        let cfg = c.config.as_ref().unwrap();
        assert_eq!(cfg.cmd, Some(vec!["echo hi".to_string()]));
        assert_eq!(cfg.healthcheck.as_ref().unwrap().retries, 3);
        assert_eq!(cfg.extra.get("NewField"), Some(&Value::Bool(true)));
        let bytes = c.to_bytes().unwrap();
        let s = String::from_utf8(bytes).unwrap();
        assert!(s.contains("\"os.features\":[\"x\"]"), "{s}");
        assert!(s.contains("\"NewField\":true"), "{s}");
    }

    #[test]
    fn rejects_non_objects() {
        assert!(ImageConfig::parse(b"[]").is_err());
        assert!(ImageConfig::parse(b"{\"rootfs\":{\"diff_ids\":[\"nope\"]}}").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = ImageConfig::parse(s.as_bytes());
        }
    }
}
