//! Loading a project: file discovery, `.env`, project name, interpolation, `extends`,
//! `include`, the merge of several files, normalisation, environment resolution, profiles and
//! the consistency checks — compose-go's loader, step by step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::canon::{self, CanonError};
use crate::de::{self, DeError};
use crate::dotenv::{self, DotenvError};
use crate::interp::{self, InterpError};
use crate::model::{Project, Service, TopLevel};
use crate::yaml::{self, Kind, Node, Pos, Value, YamlError};

/// The files Compose looks for, in order.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no configuration file provided: not found")]
    NoFile,
    #[error("open {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error(transparent)]
    Model(#[from] DeError),
    #[error(transparent)]
    Canon(#[from] CanonError),
    #[error(transparent)]
    Dotenv(#[from] DotenvError),
    #[error("{pos}: {path}: {source}")]
    Interp {
        pos: Pos,
        path: String,
        #[source]
        source: InterpError,
    },
    #[error("{file}: Top-level object must be a mapping")]
    NotAMapping { file: String },
    #[error("empty compose file")]
    Empty,
    #[error("invalid project name {0:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number")]
    ProjectName(String),
    #[error("project name must not be empty")]
    NoProjectName,
    #[error("{0}")]
    Invalid(String),
    #[error("no such service: {0}")]
    NoSuchService(String),
}

type Result<T> = std::result::Result<T, LoadError>;

/// What the command line and the environment say about the project.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` (empty: `COMPOSE_FILE`, then discovery).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (empty: `<project dir>/.env`).
    pub env_files: Vec<PathBuf>,
    /// `--profile`.
    pub profiles: Vec<String>,
    /// The process environment.
    pub os_env: BTreeMap<String, String>,
    /// The current directory.
    pub cwd: PathBuf,
    /// Leave `environment` entries without a value and `env_file` as written (what
    /// `docker compose config --hash` hashes); by default they are resolved and the env files
    /// merged into `environment`, as for `up`.
    pub skip_env_resolution: bool,
    /// `config --no-interpolate`: variables are left as written.
    pub no_interpolate: bool,
}

impl LoadOptions {
    /// Options from the real process (environment and current directory).
    pub fn from_process() -> LoadOptions {
        LoadOptions {
            os_env: std::env::vars().collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            ..Default::default()
        }
    }
}

/// A loaded project plus the warnings Compose would print.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<String>,
}

/// Compose's project name normalisation: lowercase, only `[a-z0-9_-]`, starting with a letter
/// or digit.
pub fn normalize_project_name(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

fn valid_project_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn abs(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    PathBuf::from(canon::clean_path(&joined.to_string_lossy()))
}

/// Finds the compose file(s) in `dir` or its parents (plus the override file beside it).
pub fn discover(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        for name in DEFAULT_FILES {
            let f = cur.join(name);
            if f.is_file() {
                let mut out = vec![f];
                for o in OVERRIDE_FILES {
                    let of = cur.join(o);
                    if of.is_file() {
                        out.push(of);
                        break;
                    }
                }
                return Some(out);
            }
        }
        d = cur.parent();
    }
    None
}

struct Env {
    vars: BTreeMap<String, String>,
    /// No interpolation (`config --no-interpolate`).
    skip: bool,
}

impl Env {
    fn get(&self, k: &str) -> Option<String> {
        self.vars.get(k).cloned()
    }
}

/// Loads the project.
pub fn load(opts: &LoadOptions) -> Result<Loaded> {
    let mut warnings = Vec::new();
    let mut env = Env {
        vars: opts.os_env.clone(),
        skip: opts.no_interpolate,
    };
    if !env.vars.contains_key("PWD") {
        env.vars
            .insert("PWD".into(), opts.cwd.to_string_lossy().into_owned());
    }
    // .env of the current directory may set COMPOSE_FILE (compose-go reads it first).
    let pre_dir = opts
        .project_directory
        .as_ref()
        .map(|p| abs(&opts.cwd, p))
        .unwrap_or_else(|| opts.cwd.clone());
    read_env_files(opts, &pre_dir, &mut env)?;

    let files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| abs(&opts.cwd, f)).collect()
    } else if let Some(cf) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ":".into());
        cf.split(sep.as_str())
            .filter(|s| !s.is_empty())
            .map(|f| abs(&opts.cwd, Path::new(f)))
            .collect()
    } else {
        discover(&pre_dir).ok_or(LoadError::NoFile)?
    };
    let working_dir = match &opts.project_directory {
        Some(p) => abs(&opts.cwd, p),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.cwd.clone()),
    };
    if working_dir != pre_dir {
        // The project directory's .env (compose-go loads it once the directory is known).
        env.vars = opts.os_env.clone();
        if !env.vars.contains_key("PWD") {
            env.vars
                .insert("PWD".into(), opts.cwd.to_string_lossy().into_owned());
        }
        read_env_files(opts, &working_dir, &mut env)?;
    }

    let mut dict = Node::map(Vec::new(), Pos::default());
    for f in &files {
        let node = load_file(f, &working_dir, &env, &mut warnings, &mut Vec::new())?;
        canon::merge(&mut dict, node);
    }
    if dict.as_map().is_some_and(Vec::is_empty) {
        return Err(LoadError::Empty);
    }
    if dict.remove("version").is_some() {
        for f in &files {
            warnings.push(format!(
                "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
                f.display()
            ));
        }
    }

    // Project name.
    let name = if let Some(p) = opts.project_name.as_ref().filter(|s| !s.is_empty()) {
        if !valid_project_name(p) {
            return Err(LoadError::ProjectName(p.clone()));
        }
        p.clone()
    } else if let Some(p) = env.get("COMPOSE_PROJECT_NAME").filter(|s| !s.is_empty()) {
        if !valid_project_name(&p) {
            return Err(LoadError::ProjectName(p));
        }
        p
    } else if let Some(n) = dict.get("name").and_then(Node::as_scalar) {
        if !valid_project_name(n) {
            return Err(LoadError::ProjectName(n.to_string()));
        }
        n.to_string()
    } else {
        let base = working_dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        normalize_project_name(&base)
    };
    if name.is_empty() {
        return Err(LoadError::NoProjectName);
    }

    // Extensions are kept aside for `config`.
    let mut extensions = Vec::new();
    if let Some(m) = dict.as_map_mut() {
        m.retain(|(k, v)| {
            if k.starts_with("x-") {
                extensions.push((k.clone(), v.clone()));
                false
            } else {
                true
            }
        });
    }

    resolve_paths(&mut dict, &working_dir);

    let top: TopLevel = de::from_node(&dict, "")?;
    let mut project = Project {
        name: name.clone(),
        working_dir: working_dir.clone(),
        config_files: files.clone(),
        environment: env.vars.clone(),
        extensions,
        ..Default::default()
    };
    for (sname, mut svc) in top.services {
        svc.name = sname.clone();
        project.services.insert(sname, svc);
    }
    let name_of = |key: &str, explicit: &str, external: bool| -> String {
        if !explicit.is_empty() {
            explicit.to_string()
        } else if external {
            key.to_string()
        } else {
            format!("{name}_{key}")
        }
    };
    for (k, n) in top.networks {
        let mut n = n.unwrap_or_default();
        n.name = name_of(&k, &n.name, n.external);
        project.networks.insert(k, n);
    }
    for (k, v) in top.volumes {
        let mut v = v.unwrap_or_default();
        v.name = name_of(&k, &v.name, v.external);
        project.volumes.insert(k, v);
    }
    for (k, s) in top.secrets {
        let mut s = s.unwrap_or_default();
        s.name = name_of(&k, &s.name, s.external);
        project.secrets.insert(k, s);
    }
    for (k, c) in top.configs {
        let mut c = c.unwrap_or_default();
        c.name = name_of(&k, &c.name, c.external);
        project.configs.insert(k, c);
    }

    normalize(&mut project, &env);

    // Profiles: COMPOSE_PROFILES when no --profile.
    let mut profiles = opts.profiles.clone();
    if profiles.is_empty() {
        if let Some(p) = env.get("COMPOSE_PROFILES") {
            profiles = p
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
    }
    apply_profiles(&mut project, &profiles);

    check_consistency(&mut project)?;
    if !opts.skip_env_resolution {
        resolve_environment(&mut project, &env)?;
    }

    Ok(Loaded { project, warnings })
}

fn read_env_files(opts: &LoadOptions, dir: &Path, env: &mut Env) -> Result<()> {
    let files: Vec<(PathBuf, bool)> = if opts.env_files.is_empty() {
        vec![(dir.join(".env"), false)]
    } else {
        opts.env_files
            .iter()
            .map(|f| (abs(&opts.cwd, f), true))
            .collect()
    };
    for (f, required) in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if f.is_dir() && !required => {
                let _ = e;
                continue;
            }
            Err(source) => return Err(LoadError::Read { path: f, source }),
        };
        let os = &opts.os_env;
        let pairs = dotenv::parse(&f.to_string_lossy(), &text, &|k| os.get(k).cloned())?;
        for (k, v) in pairs {
            // The process environment wins over .env files.
            if !opts.os_env.contains_key(&k) {
                env.vars.insert(k, v);
            }
        }
    }
    Ok(())
}

/// Reads, interpolates and canonicalises one file, applying its `extends` and `include`.
fn load_file(
    file: &Path,
    working_dir: &Path,
    env: &Env,
    warnings: &mut Vec<String>,
    stack: &mut Vec<PathBuf>,
) -> Result<Node> {
    let text = std::fs::read_to_string(file).map_err(|source| LoadError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let fname = file.to_string_lossy().into_owned();
    let docs = yaml::parse_documents(&fname, &text)?;
    let mut merged = Node::map(Vec::new(), Pos::default());
    for mut doc in docs {
        if doc.is_null() {
            continue;
        }
        if doc.as_map().is_none() {
            return Err(LoadError::NotAMapping { file: fname });
        }
        interpolate(&mut doc, env, "", warnings)?;
        canon::canonical(&mut doc)?;
        apply_extends(&mut doc, file, env, warnings, &mut Vec::new())?;
        apply_include(&mut doc, file, working_dir, env, warnings, stack)?;
        canon::merge(&mut merged, doc);
    }
    Ok(merged)
}

/// Interpolates every scalar string value (keys are left alone, as in compose-go).
fn interpolate(node: &mut Node, env: &Env, path: &str, warnings: &mut Vec<String>) -> Result<()> {
    if env.skip {
        return Ok(());
    }
    match &mut node.value {
        Value::Scalar(s, Kind::Str) => {
            if s.contains('$') {
                let mut missing = Vec::new();
                let out =
                    interp::substitute(s, &|k| env.get(k), &mut |n| missing.push(n.to_string()))
                        .map_err(|source| LoadError::Interp {
                            pos: node.pos.clone(),
                            path: path.to_string(),
                            source,
                        })?;
                for m in missing {
                    let w = format!("The {m:?} variable is not set. Defaulting to a blank string.");
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
                *s = out;
            }
        }
        Value::Scalar(..) => {}
        Value::Seq(items) => {
            for (i, it) in items.iter_mut().enumerate() {
                interpolate(it, env, &format!("{path}.{i}"), warnings)?;
            }
        }
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate(v, env, &p, warnings)?;
            }
        }
    }
    Ok(())
}

/// Resolves `extends` of every service of `doc` (a file's canonical top level).
fn apply_extends(
    doc: &mut Node,
    file: &Path,
    env: &Env,
    warnings: &mut Vec<String>,
    chain: &mut Vec<String>,
) -> Result<()> {
    let names: Vec<String> = doc
        .get("services")
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    for name in names {
        let resolved = extend_service(doc, &name, file, env, warnings, chain)?;
        if let Some(s) = doc.get_mut("services").and_then(|s| s.get_mut(&name)) {
            *s = resolved;
        }
    }
    Ok(())
}

fn extend_service(
    doc: &Node,
    name: &str,
    file: &Path,
    env: &Env,
    warnings: &mut Vec<String>,
    chain: &mut Vec<String>,
) -> Result<Node> {
    let key = format!("{}:{name}", file.display());
    let Some(svc) = doc.get("services").and_then(|s| s.get(name)) else {
        return Err(LoadError::Invalid(format!(
            "cannot extend service {name:?} in {}: service not found",
            file.display()
        )));
    };
    let Some(ext) = svc.get("extends").cloned() else {
        return Ok(svc.clone());
    };
    if chain.contains(&key) {
        chain.push(key);
        return Err(LoadError::Invalid(format!(
            "circular reference with extends: {}",
            chain.join(" -> ")
        )));
    }
    chain.push(key);
    let base_name = ext
        .get("service")
        .and_then(Node::as_scalar)
        .ok_or_else(|| {
            LoadError::Invalid(format!(
                "{}: services.{name}.extends: service is required",
                ext.pos
            ))
        })?
        .to_string();
    let mut base = match ext.get("file").and_then(Node::as_scalar) {
        Some(f) => {
            let dir = file.parent().unwrap_or(Path::new("/"));
            let other = abs(dir, Path::new(f));
            let text = std::fs::read_to_string(&other).map_err(|source| LoadError::Read {
                path: other.clone(),
                source,
            })?;
            let mut odoc = yaml::parse(&other.to_string_lossy(), &text)?;
            if odoc.as_map().is_none() {
                return Err(LoadError::NotAMapping {
                    file: other.to_string_lossy().into_owned(),
                });
            }
            interpolate(&mut odoc, env, "", warnings)?;
            canon::canonical(&mut odoc)?;
            let mut b = extend_service(&odoc, &base_name, &other, env, warnings, chain)?;
            // Relative paths of the base are relative to its own file.
            let odir = other.parent().unwrap_or(Path::new("/")).to_path_buf();
            resolve_service_paths(&mut b, &odir);
            b
        }
        None => {
            extend_service(doc, &base_name, file, env, warnings, chain).map_err(|e| match e {
                LoadError::Invalid(m) if m.contains("service not found") => {
                    LoadError::Invalid(format!(
                        "{}: services.{name}.extends: service {base_name:?} not found",
                        ext.pos
                    ))
                }
                other => other,
            })?
        }
    };
    chain.pop();
    // The extending service overrides its base with the merge rules of override files.
    let mut over = svc.clone();
    over.remove("extends");
    base.remove("extends");
    // depends_on is not inherited from the base (compose-spec).
    base.remove("depends_on");
    let mut wrapped_base = Node::map(
        vec![(
            "services".into(),
            Node::map(vec![(name.to_string(), base)], Pos::default()),
        )],
        Pos::default(),
    );
    let wrapped_over = Node::map(
        vec![(
            "services".into(),
            Node::map(vec![(name.to_string(), over)], Pos::default()),
        )],
        Pos::default(),
    );
    canon::merge(&mut wrapped_base, wrapped_over);
    Ok(wrapped_base
        .get("services")
        .and_then(|s| s.get(name))
        .cloned()
        .unwrap_or_else(|| Node::null(Pos::default())))
}

fn apply_include(
    doc: &mut Node,
    file: &Path,
    working_dir: &Path,
    env: &Env,
    warnings: &mut Vec<String>,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    let Some(inc) = doc.remove("include") else {
        return Ok(());
    };
    let Some(items) = inc.as_seq() else {
        return Err(LoadError::Invalid(format!(
            "{}: include must be a list",
            inc.pos
        )));
    };
    stack.push(file.to_path_buf());
    for item in items {
        let paths: Vec<String> = match item.get("path") {
            Some(p) if p.as_scalar().is_some() => vec![p.as_scalar().unwrap_or("").to_string()],
            Some(p) => p
                .as_seq()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.as_scalar().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            None => {
                return Err(LoadError::Invalid(format!(
                    "{}: include: path is required",
                    item.pos
                )))
            }
        };
        let base = file.parent().unwrap_or(working_dir);
        let files: Vec<PathBuf> = paths.iter().map(|p| abs(base, Path::new(p))).collect();
        let Some(first) = files.first() else { continue };
        let inc_dir = match item.get("project_directory").and_then(Node::as_scalar) {
            Some(d) => abs(base, Path::new(d)),
            None => first.parent().unwrap_or(base).to_path_buf(),
        };
        // The included project's own .env / env_file feed its interpolation.
        let mut inc_env = Env {
            vars: env.vars.clone(),
            skip: env.skip,
        };
        let env_files: Vec<PathBuf> = match item.get("env_file") {
            Some(e) if e.as_scalar().is_some() => {
                vec![abs(base, Path::new(e.as_scalar().unwrap_or("")))]
            }
            Some(e) => e
                .as_seq()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.as_scalar().map(|p| abs(base, Path::new(p))))
                        .collect()
                })
                .unwrap_or_default(),
            None => vec![inc_dir.join(".env")],
        };
        for ef in env_files {
            if let Ok(text) = std::fs::read_to_string(&ef) {
                let pairs = dotenv::parse(&ef.to_string_lossy(), &text, &|k| env.get(k))?;
                for (k, v) in pairs {
                    inc_env.vars.entry(k).or_insert(v);
                }
            }
        }
        let mut included = Node::map(Vec::new(), Pos::default());
        for f in &files {
            if stack.contains(f) {
                return Err(LoadError::Invalid(format!(
                    "include cycle detected:\n{}\n include {}",
                    stack[0].display(),
                    f.display()
                )));
            }
            let n = load_file(f, &inc_dir, &inc_env, warnings, stack)?;
            canon::merge(&mut included, n);
        }
        resolve_paths(&mut included, &inc_dir);
        // Imported resources must not clash with the including file's.
        for kind in ["services", "networks", "volumes", "secrets", "configs"] {
            let Some(imp) = included.get(kind).and_then(Node::as_map).cloned() else {
                continue;
            };
            if doc.get(kind).is_none() {
                doc.set(kind, Node::map(Vec::new(), Pos::default()));
            }
            let Some(target) = doc.get_mut(kind).and_then(Node::as_map_mut) else {
                continue;
            };
            for (k, v) in imp {
                if target.iter().any(|(e, _)| *e == k) {
                    return Err(LoadError::Invalid(format!(
                        "{kind}.{k} conflicts with imported resource"
                    )));
                }
                target.push((k, v));
            }
        }
    }
    stack.pop();
    Ok(())
}

fn is_remote_context(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

fn expand_home(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('~') {
        if rest.is_empty() || rest.starts_with('/') {
            if let Ok(h) = std::env::var("HOME") {
                return format!("{h}{rest}");
            }
        }
    }
    s.to_string()
}

/// Makes the relative paths of a service absolute against `dir`.
fn resolve_service_paths(svc: &mut Node, dir: &Path) {
    let absolutize = |n: &mut Node| {
        if let Some(s) = n.as_scalar().map(str::to_string) {
            let e = expand_home(&s);
            let p = abs(dir, Path::new(&e));
            *n = Node::str(p.to_string_lossy(), n.pos.clone());
        }
    };
    if let Some(b) = svc.get_mut("build") {
        if let Some(c) = b.get_mut("context") {
            if c.as_scalar().is_some_and(|s| !is_remote_context(s)) {
                absolutize(c);
            }
        }
        if let Some(ac) = b.get_mut("additional_contexts").and_then(Node::as_map_mut) {
            for (_, v) in ac.iter_mut() {
                if v.as_scalar()
                    .is_some_and(|s| !is_remote_context(s) && !s.contains(':'))
                {
                    absolutize(v);
                }
            }
        }
    }
    if let Some(Value::Seq(items)) = svc.get_mut("env_file").map(|n| &mut n.value) {
        for it in items.iter_mut() {
            if let Some(p) = it.get_mut("path") {
                absolutize(p);
            }
        }
    }
    if let Some(Value::Seq(items)) = svc.get_mut("label_file").map(|n| &mut n.value) {
        for it in items.iter_mut() {
            absolutize(it);
        }
    }
    if let Some(Value::Seq(items)) = svc.get_mut("volumes").map(|n| &mut n.value) {
        for it in items.iter_mut() {
            if it.get("type").and_then(Node::as_scalar) == Some("bind") {
                if let Some(s) = it.get_mut("source") {
                    absolutize(s);
                }
            }
        }
    }
}

/// Makes every relative path of a (merged) top level absolute against `dir`.
fn resolve_paths(top: &mut Node, dir: &Path) {
    if let Some(services) = top.get_mut("services").and_then(Node::as_map_mut) {
        for (_, svc) in services.iter_mut() {
            if svc.as_map().is_some() {
                resolve_service_paths(svc, dir);
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(m) = top.get_mut(kind).and_then(Node::as_map_mut) {
            for (_, v) in m.iter_mut() {
                if let Some(f) = v.get_mut("file") {
                    if let Some(s) = f.as_scalar().map(str::to_string) {
                        let p = abs(dir, Path::new(&expand_home(&s)));
                        *f = Node::str(p.to_string_lossy(), f.pos.clone());
                    }
                }
            }
        }
    }
}

/// compose-go's `Normalize`: implicit default network, dependencies implied by links,
/// `network_mode: service:x` and `volumes_from`, `pull_policy: if_not_present`.
fn normalize(project: &mut Project, env: &Env) {
    let mut uses_default = false;
    for svc in project.services.values_mut() {
        if svc.pull_policy == "if_not_present" {
            svc.pull_policy = "missing".into();
        }
        if let Some(b) = svc.build.as_mut() {
            if b.context.is_empty() {
                b.context = project.working_dir.to_string_lossy().into_owned();
            }
            if b.dockerfile.is_empty() && b.dockerfile_inline.is_empty() {
                b.dockerfile = "Dockerfile".into();
            }
            // Build args without a value come from the environment (or are dropped).
            b.args = std::mem::take(&mut b.args)
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Some(v) => Some((k, Some(v))),
                    None => env.get(&k).map(|e| (k, Some(e))),
                })
                .collect();
        }
        if svc.network_mode.is_empty() && svc.provider.is_none() {
            if svc.networks.is_empty() {
                svc.networks.insert("default".into(), None);
            }
            if svc.networks.contains_key("default") {
                uses_default = true;
            }
        }
        let implied = |svc: &mut Service, name: &str, restart: bool| {
            svc.depends_on
                .entry(name.to_string())
                .or_insert(crate::model::Dependency {
                    condition: "service_started".into(),
                    restart,
                    required: true,
                });
        };
        for l in svc.links.clone() {
            let target = l.split(':').next().unwrap_or(&l).to_string();
            implied(svc, &target, true);
        }
        for ns in [
            svc.network_mode.clone(),
            svc.ipc.clone(),
            svc.pid.clone(),
            svc.uts.clone(),
            svc.cgroup.clone(),
        ] {
            if let Some(shared) = ns.strip_prefix("service:") {
                implied(svc, shared, true);
            }
        }
        for vf in svc.volumes_from.clone() {
            if !vf.starts_with("container:") {
                let target = vf.split(':').next().unwrap_or(&vf).to_string();
                implied(svc, &target, false);
            }
        }
        for s in svc.secrets.iter_mut() {
            if s.target.is_empty() {
                s.target = format!("/run/secrets/{}", s.source);
            }
        }
        for p in svc.ports.iter_mut() {
            if p.protocol.is_empty() {
                p.protocol = "tcp".into();
            }
            if p.mode.is_empty() {
                p.mode = "ingress".into();
            }
        }
    }
    if uses_default && !project.networks.contains_key("default") {
        project.networks.insert(
            "default".into(),
            crate::model::Network {
                name: format!("{}_default", project.name),
                ..Default::default()
            },
        );
    }
}

/// Keeps the services enabled by `profiles` (and those they depend on).
fn apply_profiles(project: &mut Project, profiles: &[String]) {
    let all = profiles.iter().any(|p| p == "*");
    let enabled = |s: &Service| {
        s.profiles.is_empty() || all || s.profiles.iter().any(|p| profiles.contains(p))
    };
    let names: Vec<String> = project.services.keys().cloned().collect();
    for n in names {
        if let Some(s) = project.services.get(&n) {
            if !enabled(s) {
                if let Some(s) = project.services.remove(&n) {
                    project.disabled.insert(n, s);
                }
            }
        }
    }
}

/// Re-enables disabled services that `names` need (`compose up svc` with a profiled dependency
/// is an error in Compose, but services named explicitly are enabled).
pub fn enable_services(project: &mut Project, names: &[String]) -> Result<()> {
    let mut queue: Vec<String> = names.to_vec();
    let mut seen = BTreeSet::new();
    while let Some(n) = queue.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(s) = project.disabled.remove(&n) {
            project.services.insert(n.clone(), s);
        }
        match project.services.get(&n) {
            Some(s) => queue.extend(s.dependencies().map(str::to_string)),
            None => return Err(LoadError::NoSuchService(n)),
        }
    }
    Ok(())
}

/// compose-go's `checkConsistency` plus the dependency-cycle check.
fn check_consistency(project: &mut Project) -> Result<()> {
    let inv = |m: String| Err(LoadError::Invalid(m));
    for (name, s) in project.services.iter_mut() {
        if let (Some(scale), Some(d)) = (s.scale, s.deploy.as_mut()) {
            if d.replicas.is_some_and(|r| r != scale) {
                return inv(format!("services.{name}: can't set distinct values on 'scale' and 'deploy.replicas': invalid compose project"));
            }
            d.replicas = Some(scale);
        }
        if s.scale.is_some_and(|v| v < 0) {
            return inv(format!(
                "services.{name}.scale: must be greater than or equal to 0"
            ));
        }
        if let Some(d) = &s.deploy {
            if d.replicas.is_some_and(|v| v < 0) {
                return inv(format!(
                    "services.{name}.deploy.replicas: must be greater than or equal to 0"
                ));
            }
            if let Some(l) = &d.resources.limits {
                if s.cpus != 0.0 && l.cpus != s.cpus {
                    return inv(format!("services.{name}: can't set distinct values on 'cpus' and 'deploy.resources.limits.cpus': invalid compose project"));
                }
                if s.mem_limit.0 != 0 && l.memory != s.mem_limit {
                    return inv(format!("services.{name}: can't set distinct values on 'mem_limit' and 'deploy.resources.limits.memory': invalid compose project"));
                }
                if s.pids_limit != 0 && l.pids != s.pids_limit {
                    return inv(format!("services.{name}: can't set distinct values on 'pids_limit' and 'deploy.resources.limits.pids': invalid compose project"));
                }
            }
            if let Some(r) = &d.resources.reservations {
                if s.mem_reservation.0 != 0 && r.memory != s.mem_reservation {
                    return inv(format!("services.{name}: can't set distinct values on 'mem_reservation' and 'deploy.resources.reservations.memory': invalid compose project"));
                }
            }
        }
        if s.replicas() > 1 && !s.container_name.is_empty() {
            let attr = if s.scale.is_none() {
                "deploy.replicas"
            } else {
                "scale"
            };
            return inv(format!("services.{name}: can't set container_name and {attr} as container name must be unique: invalid compose project"));
        }
        let mut mounts: BTreeMap<String, String> = BTreeMap::new();
        for (i, t) in s.tmpfs.iter().enumerate() {
            let path = t.split(':').next().unwrap_or(t).to_string();
            let loc = format!("services.{name}.tmpfs[{i}]");
            if let Some(p) = mounts.get(&path) {
                return inv(format!("{loc}: target {path} already mounted as {p}"));
            }
            mounts.insert(path, loc);
        }
        for (i, v) in s.volumes.iter().enumerate() {
            let loc = format!("services.{name}.volumes[{i}]");
            if let Some(p) = mounts.get(&v.target) {
                return inv(format!("{loc}: target {} already mounted as {p}", v.target));
            }
            mounts.insert(v.target.clone(), loc);
        }
    }
    for (name, sec) in &project.secrets {
        if !sec.external && sec.file.is_empty() && sec.environment.is_empty() {
            return inv(format!("secret {name:?} must declare either `file` or `environment`: invalid compose project"));
        }
    }
    let project = &*project;
    for (name, s) in &project.services {
        if s.image.is_empty() && s.build.is_none() && s.provider.is_none() {
            return Err(LoadError::Invalid(format!(
                "service {name:?} has neither an image nor a build context specified: invalid compose project"
            )));
        }
        if let Some(b) = &s.build {
            if !b.dockerfile_inline.is_empty()
                && b.dockerfile != "Dockerfile"
                && !b.dockerfile.is_empty()
            {
                return Err(LoadError::Invalid(format!(
                    "service {name:?} declares mutualy exclusive dockerfile and dockerfile_inline: invalid compose project"
                )));
            }
        }
        if !s.network_mode.is_empty() && !s.networks.is_empty() {
            return Err(LoadError::Invalid(format!(
                "service {name} declares mutually exclusive `network_mode` and `networks`: invalid compose project"
            )));
        }
        for n in s.networks.keys() {
            if !project.networks.contains_key(n) {
                return Err(LoadError::Invalid(format!(
                    "service {name:?} refers to undefined network {n}: invalid compose project"
                )));
            }
        }
        if let Some(h) = &s.healthcheck {
            if let Some(first) = h.test.first() {
                if !matches!(first.as_str(), "CMD" | "CMD-SHELL" | "NONE") {
                    return Err(LoadError::Invalid(
                        "healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\""
                            .into(),
                    ));
                }
            }
        }
        for d in s.depends_on.keys() {
            if !project.services.contains_key(d) && !project.disabled.contains_key(d) {
                return Err(LoadError::Invalid(format!(
                    "service {name:?} depends on undefined service {d:?}: invalid compose project"
                )));
            }
        }
        if let Some(shared) = s.network_mode.strip_prefix("service:") {
            if !project.services.contains_key(shared) && !project.disabled.contains_key(shared) {
                return Err(LoadError::Invalid(format!(
                    "service {shared:?} not found for network_mode 'service:{shared}'"
                )));
            }
        }
        for v in &s.volumes {
            if v.kind == "volume"
                && !v.source.is_empty()
                && !project.volumes.contains_key(&v.source)
            {
                return Err(LoadError::Invalid(format!(
                    "service {name:?} refers to undefined volume {}: invalid compose project",
                    v.source
                )));
            }
        }
        for sec in &s.secrets {
            if !project.secrets.contains_key(&sec.source) {
                return Err(LoadError::Invalid(format!(
                    "service {name:?} refers to undefined secret {}: invalid compose project",
                    sec.source
                )));
            }
        }
        for c in &s.configs {
            if !project.configs.contains_key(&c.source) {
                return Err(LoadError::Invalid(format!(
                    "service {name:?} refers to undefined config {}: invalid compose project",
                    c.source
                )));
            }
        }
    }
    if let Some(cycle) = find_cycle(project) {
        return Err(LoadError::Invalid(format!(
            "dependency cycle detected: {}",
            cycle.join(" -> ")
        )));
    }
    Ok(())
}

/// A dependency cycle among services, as the list of services along it.
pub fn find_cycle(project: &Project) -> Option<Vec<String>> {
    fn visit(
        p: &Project,
        n: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        if let Some(s) = p.services.get(n) {
            for d in s.dependencies() {
                if let Some(c) = visit(p, d, stack, done) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in project.services.keys() {
        if let Some(c) = visit(project, n, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// Resolves `environment` entries without a value and merges `env_file`s (compose-go's
/// `WithServicesEnvironmentResolved`; env files are kept in the model).
fn resolve_environment(project: &mut Project, env: &Env) -> Result<()> {
    for svc in project.services.values_mut() {
        let mut resolved: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (k, v) in &svc.environment {
            match v {
                Some(v) => {
                    resolved.insert(k.clone(), Some(v.clone()));
                }
                None => {
                    resolved.insert(k.clone(), env.get(k));
                }
            }
        }
        let mut from_files: Vec<(String, String)> = Vec::new();
        for ef in &svc.env_file {
            let text = match std::fs::read_to_string(&ef.path) {
                Ok(t) => t,
                Err(e) if !ef.required && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) if !ef.required => continue,
                Err(_) => {
                    return Err(LoadError::Invalid(format!(
                        "env file {} not found: stat {}: no such file or directory",
                        ef.path, ef.path
                    )))
                }
            };
            let so_far = from_files.clone();
            let res = resolved.clone();
            let pairs = dotenv::parse(&ef.path, &text, &|k| {
                env.get(k)
                    .or_else(|| {
                        so_far
                            .iter()
                            .rev()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.clone())
                    })
                    .or_else(|| res.get(k).cloned().flatten())
            })?;
            for (k, v) in pairs {
                if let Some(slot) = from_files.iter_mut().find(|(n, _)| *n == k) {
                    slot.1 = v;
                } else {
                    from_files.push((k, v));
                }
            }
        }
        let mut out: BTreeMap<String, Option<String>> =
            from_files.into_iter().map(|(k, v)| (k, Some(v))).collect();
        for (k, v) in resolved {
            // An entry that stayed unresolved does not hide an env file's value.
            if v.is_some() || !out.contains_key(&k) {
                out.insert(k, v);
            }
        }
        svc.environment = out;
        // Compose discards the env files once they are merged (they are not in the model it
        // prints or hashes).
        svc.env_file.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("__x-Y"), "x-y");
        assert!(valid_project_name("a_b-1"));
        assert!(!valid_project_name("_a"));
        assert!(!valid_project_name("A"));
    }
}
