//! `berth compose`: the Compose specification built in.
//!
//! * [`yaml`]: YAML with positions (anchors, merge keys) and the block emitter;
//! * [`interp`]: `${VAR}` interpolation; [`dotenv`]: `.env` files;
//! * [`canon`]: short syntaxes to long forms and the merge of override files;
//! * [`de`]: the typed model read from the YAML tree, errors with file, line and key path;
//! * [`model`]: the typed model (compose-go's field names and order);
//! * [`loader`]: discovery, project name, `extends`, `include`, profiles, normalisation;
//! * [`config_yaml`] / [`service_hash`]: `compose config` and Compose's config hash.

pub mod canon;
pub mod cmd;
pub mod de;
pub mod dotenv;
pub mod interp;
pub mod loader;
pub mod model;
pub mod yaml;

use sha2::{Digest, Sha256};

pub use loader::{load, LoadError, LoadOptions, Loaded};
pub use model::{Project, Service};

/// JSON as Go's `encoding/json` writes it (serde_json plus Go's HTML-safe escapes).
pub fn go_json<T: serde::Serialize>(v: &T) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `com.docker.compose.config-hash` as Docker Compose v2 computes it (`ServiceHash`): the
/// SHA-256 of the service's JSON without build, pull policy, scale, replicas, dependencies
/// and profiles.
pub fn service_hash(s: &Service) -> String {
    let mut o = s.clone();
    o.build = None;
    o.pull_policy.clear();
    o.scale = None;
    if let Some(d) = o.deploy.as_mut() {
        d.replicas = None;
    }
    o.depends_on.clear();
    o.profiles.clear();
    hex::encode(Sha256::digest(go_json(&o).as_bytes()))
}

/// The project as `docker compose config` prints it.
pub fn config_yaml(project: &Project) -> String {
    let json = serde_json::to_string(project).unwrap_or_default();
    let mut node = match yaml::from_json_text(&json) {
        Ok(n) => n,
        Err(e) => return format!("# cannot render the model: {e}\n"),
    };
    if let Some(services) = node.get_mut("services").and_then(yaml::Node::as_map_mut) {
        for (_, svc) in services.iter_mut() {
            for k in ["command", "entrypoint"] {
                if svc.get(k).is_some_and(yaml::Node::is_null) {
                    svc.remove(k);
                }
            }
            if let Some(d) = svc.get_mut("deploy") {
                for k in ["resources", "placement"] {
                    if d.get(k)
                        .and_then(yaml::Node::as_map)
                        .is_some_and(Vec::is_empty)
                    {
                        d.remove(k);
                    }
                }
            }
        }
    }
    // go-yaml omits empty structs (`ipam: {}`) that encoding/json keeps.
    if let Some(nets) = node.get_mut("networks").and_then(yaml::Node::as_map_mut) {
        for (_, n) in nets.iter_mut() {
            if n.get("ipam")
                .and_then(yaml::Node::as_map)
                .is_some_and(Vec::is_empty)
            {
                n.remove("ipam");
            }
        }
    }
    if let Some(m) = node.as_map_mut() {
        // Extensions are a Go map: written with sorted keys.
        for (k, v) in &project.extensions {
            m.push((k.clone(), sorted(v.clone())));
        }
    }
    yaml::emit(&node)
}

fn sorted(mut n: yaml::Node) -> yaml::Node {
    match &mut n.value {
        yaml::Value::Map(m) => {
            m.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, v) in m.iter_mut() {
                *v = sorted(v.clone());
            }
        }
        yaml::Value::Seq(s) => {
            for v in s.iter_mut() {
                *v = sorted(v.clone());
            }
        }
        yaml::Value::Scalar(..) => {}
    }
    n
}
