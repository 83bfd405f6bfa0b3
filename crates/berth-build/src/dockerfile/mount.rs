//! `RUN --mount=...` (BuildKit's `commands_runmount.go`): the comma-separated fields are split
//! when the Dockerfile is parsed, their values expanded when the instruction runs, and then
//! interpreted into a [`Mount`].

use super::error::with_suggestion;
use super::shell::go_quote;

/// The kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountType {
    /// A read-only (by default) bind of the context, a stage or an image.
    Bind,
    /// A persistent cache directory shared across builds by id.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A build secret file (`--secret id=…`).
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    /// The name as written in the Dockerfile.
    pub fn as_str(&self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CacheSharing {
    /// Concurrent writers share the directory (the default).
    #[default]
    Shared,
    /// A concurrent writer gets a new, empty directory.
    Private,
    /// Concurrent writers wait for each other.
    Locked,
}

/// One `--mount` flag as written: its comma-separated fields, values still unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// `key[=value]` fields in order; keys are lower-cased.
    pub fields: Vec<(String, Option<String>)>,
}

impl MountSpec {
    /// Splits a `--mount` value (CSV: fields may be double-quoted).
    pub(crate) fn parse(value: &str) -> Result<MountSpec, String> {
        let fields = csv_fields(value)
            .map_err(|e| format!("failed to parse csv mounts: {e}"))?
            .into_iter()
            .map(|f| match f.split_once('=') {
                Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
                None => (f.to_lowercase(), None),
            })
            .collect::<Vec<_>>();
        for (k, v) in &fields {
            if k == "from" {
                if let Some(v) = v {
                    if let Some(i) = v.find('$') {
                        if i != v.len() - 1 {
                            return Err("'from' doesn't support variable expansion, define alias stage instead".into());
                        }
                    }
                }
            }
        }
        Ok(MountSpec { fields })
    }

    /// The `from=` field (a stage name or an image), which is never expanded.
    pub fn from(&self) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == "from")
            .and_then(|(_, v)| v.as_deref())
    }

    /// Interprets the fields (after expansion) with Docker's defaults and checks.
    pub fn resolve(&self) -> Result<Mount, String> {
        let mut m = Mount {
            kind: MountType::Bind,
            from: None,
            source: None,
            target: None,
            read_only: true,
            size_limit: None,
            id: None,
            sharing: None,
            required: false,
            env: None,
            mode: None,
            uid: None,
            gid: None,
        };
        let mut ro_auto = true;
        let parse_bool = |key: &str, v: &str| {
            go_parse_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"))
        };
        for (key, value) in &self.fields {
            let Some(value) = value else {
                match key.as_str() {
                    "readonly" | "ro" => {
                        m.read_only = true;
                        ro_auto = false;
                    }
                    "readwrite" | "rw" => {
                        m.read_only = false;
                        ro_auto = false;
                    }
                    "required" => {
                        if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                            m.required = true;
                        } else {
                            return Err(format!(
                                "unexpected key '{key}' for mount type '{}'",
                                m.kind.as_str()
                            ));
                        }
                    }
                    _ => return Err(format!("invalid field '{key}' must be a key=value pair")),
                }
                continue;
            };
            match key.as_str() {
                "type" => {
                    m.kind = match value.to_lowercase().as_str() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => MountType::Ssh,
                        _ => {
                            return Err(with_suggestion(
                                format!("unsupported mount type {}", go_quote(value)),
                                value,
                                ["bind", "cache", "tmpfs", "secret", "ssh"],
                                true,
                            ))
                        }
                    }
                }
                "from" => m.from = Some(value.clone()),
                "source" | "src" => m.source = Some(value.clone()),
                "target" | "dst" | "destination" => m.target = Some(value.clone()),
                "readonly" | "ro" => {
                    m.read_only = parse_bool(key, value)?;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = !parse_bool(key, value)?;
                    ro_auto = false;
                }
                "required" => {
                    if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                        m.required = parse_bool(key, value)?;
                    } else {
                        return Err(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind.as_str()
                        ));
                    }
                }
                "size" => {
                    if m.kind == MountType::Tmpfs {
                        m.size_limit = Some(
                            ram_in_bytes(value)
                                .ok_or_else(|| format!("invalid value for {key}: {value}"))?,
                        );
                    } else {
                        return Err(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind.as_str()
                        ));
                    }
                }
                "id" => m.id = Some(value.clone()),
                "sharing" => {
                    m.sharing = Some(match value.to_lowercase().as_str() {
                        "shared" => CacheSharing::Shared,
                        "private" => CacheSharing::Private,
                        "locked" => CacheSharing::Locked,
                        _ => {
                            return Err(with_suggestion(
                                format!("unsupported sharing value {}", go_quote(value)),
                                value,
                                ["shared", "private", "locked"],
                                true,
                            ))
                        }
                    })
                }
                "mode" => {
                    m.mode = Some(
                        u32::from_str_radix(value, 8)
                            .map_err(|_| format!("invalid value {value} for mode"))?,
                    )
                }
                "uid" => {
                    m.uid = Some(
                        value
                            .parse::<u32>()
                            .map_err(|_| format!("invalid value {value} for uid"))?,
                    )
                }
                "gid" => {
                    m.gid = Some(
                        value
                            .parse::<u32>()
                            .map_err(|_| format!("invalid value {value} for gid"))?,
                    )
                }
                "env" => m.env = Some(value.clone()),
                _ => {
                    return Err(with_suggestion(
                        format!("unexpected key '{key}' in '{key}={value}'"),
                        key,
                        [
                            "type",
                            "from",
                            "source",
                            "target",
                            "readonly",
                            "id",
                            "sharing",
                            "required",
                            "size",
                            "mode",
                            "uid",
                            "gid",
                            "src",
                            "dst",
                            "destination",
                            "ro",
                            "rw",
                            "readwrite",
                            "env",
                        ],
                        true,
                    ))
                }
            }
        }
        let file_info_allowed = matches!(
            m.kind,
            MountType::Secret | MountType::Ssh | MountType::Cache
        );
        if !file_info_allowed {
            for (name, set) in [
                ("mode", m.mode.is_some()),
                ("uid", m.uid.is_some()),
                ("gid", m.gid.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "{name} not allowed for {} type mounts",
                        go_quote(m.kind.as_str())
                    ));
                }
            }
        }
        if ro_auto {
            m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        if m.kind == MountType::Secret {
            if m.from.is_some() {
                return Err("secret mount should not have a from".into());
            }
            if m.sharing.is_some() {
                return Err("secret mount should not define sharing".into());
            }
            if m.source.is_none() && m.target.is_none() && m.id.is_none() {
                return Err("invalid secret mount. one of source, target required".into());
            }
            if m.source.is_some() && m.id.is_some() {
                return Err("both source and id can't be set".into());
            }
        }
        if m.sharing.is_some() && m.kind != MountType::Cache {
            return Err(format!(
                "invalid cache sharing set for {} mount",
                m.kind.as_str()
            ));
        }
        Ok(m)
    }
}

/// A `RUN --mount` after expansion, with Docker's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=` (default `bind`).
    pub kind: MountType,
    /// `from=`: a stage name or an image; `None` is the build context (bind) or an empty
    /// directory (cache).
    pub from: Option<String>,
    /// `source=`/`src=`: a path in `from` (bind, cache) or the secret's id (secret).
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`: where it is mounted.
    pub target: Option<String>,
    /// Read-only: the default for bind, secret and ssh mounts.
    pub read_only: bool,
    /// `size=` of a tmpfs in bytes.
    pub size_limit: Option<i64>,
    /// `id=`: the cache's or the secret's id.
    pub id: Option<String>,
    /// `sharing=` of a cache mount (`None`: not given, which means shared).
    pub sharing: Option<CacheSharing>,
    /// `required` for secret and ssh mounts.
    pub required: bool,
    /// `env=`: the variable a secret is exposed as.
    pub env: Option<String>,
    /// `mode=` (octal) of cache, secret and ssh mounts.
    pub mode: Option<u32>,
    /// `uid=` of cache, secret and ssh mounts.
    pub uid: Option<u32>,
    /// `gid=` of cache, secret and ssh mounts.
    pub gid: Option<u32>,
}

impl Mount {
    /// The id of a cache mount: `id=` or else the cleaned target path (BuildKit's rule).
    pub fn cache_id(&self) -> Option<String> {
        if self.kind != MountType::Cache {
            return None;
        }
        self.id
            .clone()
            .or_else(|| self.target.as_deref().map(crate::paths::clean))
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn go_parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// go-units' `RAMInBytes`: `64m`, `1.5g`, `512k`, `100` (bytes); binary multiples.
fn ram_in_bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    let num_end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(s.len(), |(i, _)| i);
    let (num, unit) = s.split_at(num_end);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().to_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v > i64::MAX as f64 {
        return None;
    }
    Some(v as i64)
}

/// Go's `encoding/csv` for one record (what `csvvalue.Fields` reads): fields separated by
/// commas, a field may be double-quoted with `""` for a quote inside. Hand-written because it
/// is a dozen lines and the `csv` crate reads whole files of records.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    if s.is_empty() {
        return Ok(fields);
    }
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') => {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            field.push('"');
                        } else {
                            break;
                        }
                    }
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(s: &str) -> Result<Mount, String> {
        MountSpec::parse(s)?.resolve()
    }

    #[test]
    fn defaults_per_type() {
        let m = mount("target=/x").unwrap();
        assert_eq!((m.kind, m.read_only), (MountType::Bind, true));
        let m = mount("type=cache,target=/root/.cache").unwrap();
        assert_eq!((m.kind, m.read_only), (MountType::Cache, false));
        assert_eq!(m.cache_id().as_deref(), Some("/root/.cache"));
        let m = mount("type=cache,target=/a/../b/,id=x").unwrap();
        assert_eq!(m.cache_id().as_deref(), Some("x"));
        let m = mount("type=cache,target=/a/../b/").unwrap();
        assert_eq!(m.cache_id().as_deref(), Some("/b"));
        let m = mount("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size_limit, Some(64 << 20));
        let m = mount("type=bind,source=/src,target=/x,rw").unwrap();
        assert!(!m.read_only);
        let m = mount("type=secret,id=tok,required").unwrap();
        assert!(m.required && m.read_only);
        let m = mount("type=cache,target=/c,sharing=locked,mode=0700,uid=1,gid=2").unwrap();
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert_eq!((m.mode, m.uid, m.gid), (Some(0o700), Some(1), Some(2)));
        let m = mount("\"type=bind\",\"target=/a,b\"").unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            mount("type=cahce").unwrap_err(),
            "unsupported mount type \"cahce\" (did you mean cache?)"
        );
        assert!(mount("type=bind,mode=0700")
            .unwrap_err()
            .contains("mode not allowed"));
        assert!(mount("type=secret")
            .unwrap_err()
            .contains("one of source, target"));
        assert!(mount("type=secret,id=a,src=b")
            .unwrap_err()
            .contains("both source"));
        assert!(mount("type=bind,sharing=shared")
            .unwrap_err()
            .contains("invalid cache sharing"));
        assert!(mount("type=bind,required")
            .unwrap_err()
            .contains("unexpected key"));
        assert!(mount("type=bind,targt=/x")
            .unwrap_err()
            .contains("(did you mean target?)"));
        assert!(mount("foo")
            .unwrap_err()
            .contains("must be a key=value pair"));
        assert!(MountSpec::parse("from=$X")
            .unwrap_err()
            .contains("variable expansion"));
        assert!(MountSpec::parse("from=x$").is_ok());
        assert!(mount("type=bind,ro=maybe")
            .unwrap_err()
            .contains("invalid value for ro"));
        assert!(MountSpec::parse("a\"b").unwrap_err().contains("bare \""));
    }
}
