//! The Docker CLI's context store, `<config dir>/contexts`, read and written in its own
//! format so that a context made by one CLI works in the other:
//!
//! * `meta/<sha256(name)>/meta.json`: `{"Name", "Metadata": {"Description"…},
//!   "Endpoints": {"docker": {"Host", "SkipTLSVerify"}}}` (fields berth does not know are
//!   kept as they are);
//! * `tls/<sha256(name)>/<endpoint>/{ca,cert,key}.pem`;
//! * the current context is `currentContext` in `config.json`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_api::tls::TlsData;
use berth_image::digest::Digest;
use serde_json::{Map, Value};

/// The name of the context that stands for `-H`/`DOCKER_HOST`/the default socket.
pub const DEFAULT_CONTEXT: &str = "default";

/// Imports larger than this are refused (Docker's limit).
const MAX_IMPORT: u64 = 10 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// Go's wording: `context "x": context not found: open <path>: no such file or directory`.
    #[error("context {name:?}: context not found: open {}: no such file or directory", path.display())]
    NotFound { name: String, path: PathBuf },
    #[error("context {name:?}: parsing {}: {message}", path.display())]
    Corrupt {
        name: String,
        path: PathBuf,
        message: String,
    },
    #[error("context name {0:?} is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\"")]
    InvalidName(String),
    #[error("context name cannot be empty")]
    EmptyName,
    #[error("\"default\" is a reserved context name")]
    Reserved,
    #[error("context {0:?} already exists")]
    Exists(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

type Result<T, E = ContextError> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Docker's `ValidateContextName` (which also refuses `default`).
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(ContextError::EmptyName);
    }
    if name == DEFAULT_CONTEXT {
        return Err(ContextError::Reserved);
    }
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ContextError::InvalidName(name.to_string()))
    }
}

/// One stored context.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub name: String,
    /// meta.json as stored (unknown fields survive).
    pub raw: Map<String, Value>,
}

impl Context {
    /// A new context with a docker endpoint.
    pub fn new(name: &str, description: &str, host: &str, skip_tls_verify: bool) -> Context {
        let mut raw = Map::new();
        raw.insert("Name".into(), Value::String(name.into()));
        let mut meta = Map::new();
        if !description.is_empty() {
            meta.insert("Description".into(), Value::String(description.into()));
        }
        raw.insert("Metadata".into(), Value::Object(meta));
        raw.insert(
            "Endpoints".into(),
            serde_json::json!({"docker": {"Host": host, "SkipTLSVerify": skip_tls_verify}}),
        );
        Context {
            name: name.to_string(),
            raw,
        }
    }

    pub fn description(&self) -> String {
        self.raw
            .get("Metadata")
            .and_then(|m| m.get("Description"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    fn docker(&self) -> Option<&Map<String, Value>> {
        self.raw
            .get("Endpoints")
            .and_then(|e| e.get("docker"))
            .and_then(Value::as_object)
    }

    /// The docker endpoint's host (`unix://…`, `tcp://…`, `ssh://…`).
    pub fn host(&self) -> Option<String> {
        self.docker()
            .and_then(|d| d.get("Host"))
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    pub fn skip_tls_verify(&self) -> bool {
        self.docker()
            .and_then(|d| d.get("SkipTLSVerify"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn set_description(&mut self, description: &str) {
        let meta = self
            .raw
            .entry("Metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = meta {
            m.insert("Description".into(), Value::String(description.into()));
        }
    }
}

/// TLS files of a context, per endpoint.
pub type TlsFiles = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// The store under `<config dir>/contexts`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(config_dir: &Path) -> Store {
        Store {
            root: config_dir.join("contexts"),
        }
    }

    fn id(name: &str) -> String {
        Digest::sha256_of(name.as_bytes()).hex().to_string()
    }

    pub fn meta_dir(&self, name: &str) -> PathBuf {
        self.root.join("meta").join(Self::id(name))
    }

    pub fn tls_dir(&self, name: &str) -> PathBuf {
        self.root.join("tls").join(Self::id(name))
    }

    /// Reads one context; a missing or unreadable one is an error naming the file.
    pub fn get(&self, name: &str) -> Result<Context> {
        let path = self.meta_dir(name).join("meta.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContextError::NotFound {
                    name: name.to_string(),
                    path,
                })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        parse_meta(&bytes)
            .map(|raw| Context {
                name: name.to_string(),
                raw,
            })
            .map_err(|message| ContextError::Corrupt {
                name: name.to_string(),
                path,
                message,
            })
    }

    /// Every context, in natural order; one that cannot be read is listed as its error (so
    /// a corrupted context never hides the others).
    pub fn list(&self) -> Vec<(String, Result<Context>)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.root.join("meta")) else {
            return out;
        };
        for e in entries.flatten() {
            let path = e.path().join("meta.json");
            if !path.is_file() {
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => match parse_meta(&bytes) {
                    Ok(raw) => {
                        let name = raw
                            .get("Name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        out.push((name.clone(), Ok(Context { name, raw })));
                    }
                    Err(message) => {
                        // The name is inside the unreadable file: show the directory's
                        // short id.
                        let id = e.file_name().to_string_lossy().into_owned();
                        let name = id.chars().take(12).collect::<String>();
                        out.push((
                            name.clone(),
                            Err(ContextError::Corrupt {
                                name,
                                path,
                                message,
                            }),
                        ));
                    }
                },
                Err(source) => {
                    let name = e.file_name().to_string_lossy().into_owned();
                    out.push((name, Err(ContextError::Io { path, source })));
                }
            }
        }
        out.sort_by(|a, b| natural_cmp(&a.0, &b.0));
        out
    }

    /// The TLS files of `name` (endpoint → file name → bytes).
    pub fn tls_files(&self, name: &str) -> Result<TlsFiles> {
        let dir = self.tls_dir(name);
        let mut out = TlsFiles::new();
        let Ok(endpoints) = std::fs::read_dir(&dir) else {
            return Ok(out);
        };
        for ep in endpoints.flatten() {
            if !ep.path().is_dir() {
                continue;
            }
            let mut files = BTreeMap::new();
            for f in std::fs::read_dir(ep.path())
                .map_err(io_err(&ep.path()))?
                .flatten()
            {
                if f.path().is_file() {
                    let data = std::fs::read(f.path()).map_err(io_err(&f.path()))?;
                    files.insert(f.file_name().to_string_lossy().into_owned(), data);
                }
            }
            out.insert(ep.file_name().to_string_lossy().into_owned(), files);
        }
        Ok(out)
    }

    /// The docker endpoint's TLS material, if any.
    pub fn docker_tls(&self, name: &str) -> Result<Option<TlsData>> {
        let files = self.tls_files(name)?;
        let Some(docker) = files.get("docker") else {
            return Ok(None);
        };
        let data = TlsData {
            ca: docker.get("ca.pem").cloned(),
            cert: docker.get("cert.pem").cloned(),
            key: docker.get("key.pem").cloned(),
        };
        Ok((data != TlsData::default()).then_some(data))
    }

    /// Writes meta.json and replaces the TLS material (each file atomically).
    pub fn write(&self, ctx: &Context, tls: &TlsFiles) -> Result<()> {
        let dir = self.meta_dir(&ctx.name);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut raw = ctx.raw.clone();
        raw.insert("Name".into(), Value::String(ctx.name.clone()));
        let bytes = serde_json::to_vec(&raw).map_err(|e| ContextError::Invalid(e.to_string()))?;
        write_atomic(&dir.join("meta.json"), &bytes, 0o644)?;
        let tls_dir = self.tls_dir(&ctx.name);
        remove_all(&tls_dir)?;
        for (ep, files) in tls {
            let ep_dir = tls_dir.join(ep);
            for (name, data) in files {
                std::fs::create_dir_all(&ep_dir).map_err(io_err(&ep_dir))?;
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ =
                        std::fs::set_permissions(&ep_dir, std::fs::Permissions::from_mode(0o700));
                }
                write_atomic(&ep_dir.join(name), data, 0o600)?;
            }
        }
        Ok(())
    }

    pub fn exists(&self, name: &str) -> bool {
        self.meta_dir(name).exists()
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        remove_all(&self.meta_dir(name))?;
        remove_all(&self.tls_dir(name))
    }

    /// `context export`: a tar of `meta.json` and `tls/<endpoint>/<file>`.
    pub fn export(&self, ctx: &Context, tls: &TlsFiles) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        let mut raw = ctx.raw.clone();
        raw.insert("Name".into(), Value::String(ctx.name.clone()));
        let meta = serde_json::to_vec(&raw).map_err(|e| ContextError::Invalid(e.to_string()))?;
        let add = |b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8], dir: bool| {
            let mut h = tar::Header::new_ustar();
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            h.set_entry_type(if dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_path(path)?;
            h.set_cksum();
            b.append(&h, data)
        };
        let w = |e: std::io::Error| ContextError::Invalid(format!("cannot write the archive: {e}"));
        add(&mut b, "meta.json", 0o644, &meta, false).map_err(w)?;
        add(&mut b, "tls", 0o700, &[], true).map_err(w)?;
        for (ep, files) in tls {
            add(&mut b, &format!("tls/{ep}"), 0o700, &[], true).map_err(w)?;
            for (name, data) in files {
                add(&mut b, &format!("tls/{ep}/{name}"), 0o600, data, false).map_err(w)?;
            }
        }
        b.into_inner().map_err(w)
    }

    /// `context import`: reads a tar written by `export` (either CLI's) into context `name`.
    pub fn import(&self, name: &str, reader: impl Read) -> Result<()> {
        let mut limited = reader.take(MAX_IMPORT + 1);
        let mut data = Vec::new();
        limited
            .read_to_end(&mut data)
            .map_err(|e| ContextError::Invalid(format!("cannot read the archive: {e}")))?;
        if data.len() as u64 > MAX_IMPORT {
            return Err(ContextError::Invalid(
                "the archive is larger than 10 MiB".into(),
            ));
        }
        if data.starts_with(b"PK\x03\x04") {
            return Err(ContextError::Invalid(
                "importing a context from a zip file is not implemented by berth; use a tar archive (context export writes one)".into(),
            ));
        }
        let mut archive = tar::Archive::new(&data[..]);
        let mut meta = None;
        let mut tls = TlsFiles::new();
        let bad = |e: std::io::Error| ContextError::Invalid(e.to_string());
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
            let valid = (path == "meta.json" || path.starts_with("tls/"))
                && !path.contains('\\')
                && !path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..");
            if !valid {
                return Err(ContextError::Invalid(format!(
                    "{path}: unexpected context file"
                )));
            }
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(bad)?;
            if path == "meta.json" {
                meta = Some(parse_meta(&content).map_err(ContextError::Invalid)?);
            } else {
                let rest = &path["tls/".len()..];
                let Some((ep, file)) = rest.split_once('/') else {
                    return Err(ContextError::Invalid("archive format is invalid".into()));
                };
                if file.contains('/') {
                    return Err(ContextError::Invalid("archive format is invalid".into()));
                }
                tls.entry(ep.to_string())
                    .or_default()
                    .insert(file.to_string(), content);
            }
        }
        let Some(raw) = meta else {
            return Err(ContextError::Invalid(
                "invalid context: no metadata found".into(),
            ));
        };
        self.write(
            &Context {
                name: name.to_string(),
                raw,
            },
            &tls,
        )
    }
}

fn parse_meta(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("meta.json is not a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn remove_all(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err(path))?;
    tmp.write_all(data).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

/// `sortorder.NaturalLess`: digit runs compare by value.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                let ta = na.iter().skip_while(|c| **c == b'0').count();
                let tb = nb.iter().skip_while(|c| **c == b'0').count();
                let ord = ta
                    .cmp(&tb)
                    .then_with(|| na[da - ta..].cmp(&nb[db - tb..]))
                    .then_with(|| da.cmp(&db));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("my-ctx").is_ok());
        assert!(validate_name("a.b_c+d").is_ok());
        for bad in ["a/b", "x", "-ab", "a b", "../etc", "ä1"] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.to_string().contains("is invalid"), "{bad}: {e}");
        }
        assert_eq!(
            validate_name("default").unwrap_err().to_string(),
            "\"default\" is a reserved context name"
        );
        assert!(validate_name("").is_err());
    }

    #[test]
    fn same_layout_as_docker() {
        // The id Docker uses for "my-ctx" (seen in a store the Docker CLI wrote).
        assert_eq!(
            Store::id("my-ctx"),
            "2e949dbc66d8e770bad3c1d483a32c09f47684977c5793624a441c886e9d1abb"
        );
    }

    #[test]
    fn write_read_export_import() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        let mut ctx = Context::new("remote1", "far away", "tcp://10.0.0.1:2376", false);
        ctx.raw.insert("Extra".into(), Value::from(7));
        let mut tls = TlsFiles::new();
        tls.entry("docker".into())
            .or_default()
            .insert("ca.pem".into(), b"CA".to_vec());
        s.write(&ctx, &tls).unwrap();
        let got = s.get("remote1").unwrap();
        assert_eq!(got.host().as_deref(), Some("tcp://10.0.0.1:2376"));
        assert_eq!(got.description(), "far away");
        assert_eq!(got.raw.get("Extra"), Some(&Value::from(7)));
        assert_eq!(s.docker_tls("remote1").unwrap().unwrap().ca.unwrap(), b"CA");
        let tar = s.export(&got, &s.tls_files("remote1").unwrap()).unwrap();
        s.import("copy2", &tar[..]).unwrap();
        let copy = s.get("copy2").unwrap();
        assert_eq!(copy.host(), got.host());
        assert_eq!(s.tls_files("copy2").unwrap(), tls);
        let names: Vec<String> = s.list().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["copy2", "remote1"]);
        s.remove("copy2").unwrap();
        assert!(matches!(s.get("copy2"), Err(ContextError::NotFound { .. })));
    }

    #[test]
    fn a_corrupted_context_does_not_hide_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        s.write(
            &Context::new("good1", "", "unix:///x.sock", false),
            &TlsFiles::new(),
        )
        .unwrap();
        let bad = s.meta_dir("bad1");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("meta.json"), b"{not json").unwrap();
        let list = s.list();
        assert_eq!(list.len(), 2);
        assert!(list.iter().any(|(n, r)| n == "good1" && r.is_ok()));
        assert!(list.iter().any(|(_, r)| r.is_err()));
        let e = s.get("bad1").unwrap_err().to_string();
        assert!(e.contains("parsing") && e.contains("meta.json"), "{e}");
    }

    #[test]
    fn hostile_imports_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // `set_path` refuses "..": write the name bytes directly.
        h.as_gnu_mut().unwrap().name[..17].copy_from_slice(b"tls/../../evil.pm");
        h.set_cksum();
        b.append(&h, &b"xx"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let e = s.import("evil1", &tar[..]).unwrap_err().to_string();
        assert!(e.contains("unexpected context file"), "{e}");
        let e = s.import("none1", &[0u8; 1024][..]).unwrap_err().to_string();
        assert!(e.contains("no metadata"), "{e}");
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["c10", "c9", "b", "a1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a1", "b", "c9", "c10"]);
    }
}
