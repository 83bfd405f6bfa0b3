//! Short syntaxes to long forms, and the merge of several files, on the YAML tree (positions
//! kept), following compose-go's `transform` and `override` packages.

use crate::yaml::{Kind, Node, Pos, Value};

/// A canonicalisation or merge error, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {path}: {message}")]
pub struct CanonError {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

fn err(node: &Node, path: &str, message: impl Into<String>) -> CanonError {
    CanonError {
        pos: node.pos.clone(),
        path: path.to_string(),
        message: message.into(),
    }
}

type Result<T> = std::result::Result<T, CanonError>;

/// Canonicalises one file's top level in place.
pub fn canonical(top: &mut Node) -> Result<()> {
    if let Some(services) = top.get_mut("services") {
        if let Some(entries) = services.as_map_mut() {
            for (name, svc) in entries.iter_mut() {
                if svc.as_map().is_some() {
                    service(svc, &format!("services.{name}"))?;
                }
            }
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(m) = top.get_mut(kind).and_then(Node::as_map_mut) {
            for (name, res) in m.iter_mut() {
                let path = format!("{kind}.{name}");
                if res.as_map().is_some() {
                    external(res, &path)?;
                    if let Some(l) = res.get_mut("labels") {
                        key_value(l, &format!("{path}.labels"), false)?;
                    }
                }
            }
        }
    }
    if let Some(inc) = top.get_mut("include").and_then(|n| match &mut n.value {
        Value::Seq(s) => Some(s),
        _ => None,
    }) {
        for item in inc.iter_mut() {
            if let Some(s) = item.as_scalar().map(str::to_string) {
                let pos = item.pos.clone();
                *item = Node::map(vec![("path".into(), Node::str(s, pos.clone()))], pos);
            }
        }
    }
    Ok(())
}

/// `external: {name: x}` (deprecated) → `external: true` and `name: x`.
fn external(res: &mut Node, path: &str) -> Result<()> {
    let Some(ext) = res.get("external").cloned() else {
        return Ok(());
    };
    if let Some(m) = ext.as_map() {
        let pos = ext.pos.clone();
        res.set(
            "external",
            Node::new(Value::Scalar("true".into(), Kind::Bool), pos),
        );
        if let Some((_, n)) = m.iter().find(|(k, _)| k == "name") {
            if let Some(existing) = res.get("name") {
                if existing.as_scalar() != n.as_scalar() {
                    return Err(err(
                        &ext,
                        path,
                        "name and external.name conflict; only use name",
                    ));
                }
            } else {
                res.set("name", n.clone());
            }
        }
    }
    Ok(())
}

fn str_node(s: &str, pos: &Pos) -> Node {
    Node::str(s, pos.clone())
}

fn bool_node(b: bool, pos: &Pos) -> Node {
    Node::new(
        Value::Scalar(if b { "true" } else { "false" }.into(), Kind::Bool),
        pos.clone(),
    )
}

/// `KEY=VALUE` lists to a mapping; mapping values become strings. With `nullable`, a bare
/// `KEY` (list) or `KEY:` (mapping) is kept as null (environment, build args).
fn key_value(node: &mut Node, path: &str, nullable: bool) -> Result<()> {
    let pos = node.pos.clone();
    match &mut node.value {
        Value::Seq(items) => {
            let mut out: Vec<(String, Node)> = Vec::new();
            for item in items.iter() {
                let Some(s) = item.as_scalar() else {
                    return Err(err(item, path, "must be a list of KEY=VALUE strings"));
                };
                let (k, v) = match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), str_node(v, &item.pos)),
                    None if nullable => (s.to_string(), Node::null(item.pos.clone())),
                    None => (s.to_string(), str_node("", &item.pos)),
                };
                if let Some(slot) = out.iter_mut().find(|(e, _)| *e == k) {
                    slot.1 = v;
                } else {
                    out.push((k, v));
                }
            }
            *node = Node::map(out, pos);
        }
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                match &v.value {
                    Value::Scalar(_, Kind::Null) => {
                        if !nullable {
                            *v = str_node("", &v.pos);
                        }
                    }
                    Value::Scalar(s, _) => *v = str_node(&s.clone(), &v.pos),
                    _ => {
                        return Err(err(
                            v,
                            &format!("{path}.{k}"),
                            "must be a string, number, boolean or null",
                        ))
                    }
                }
            }
        }
        Value::Scalar(_, Kind::Null) => {}
        _ => return Err(err(node, path, "must be a mapping or a list of KEY=VALUE")),
    }
    Ok(())
}

fn service(svc: &mut Node, path: &str) -> Result<()> {
    let keys: Vec<String> = svc
        .as_map()
        .map(|m| m.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    for key in keys {
        let p = format!("{path}.{key}");
        let Some(v) = svc.get_mut(&key) else { continue };
        match key.as_str() {
            "build" => {
                if let Some(s) = v.as_scalar().map(str::to_string) {
                    let pos = v.pos.clone();
                    *v = Node::map(vec![("context".into(), str_node(&s, &pos))], pos);
                }
                if v.as_map().is_some() {
                    for (k, nullable) in [
                        ("args", true),
                        ("labels", false),
                        ("additional_contexts", false),
                    ] {
                        if let Some(x) = v.get_mut(k) {
                            key_value(x, &format!("{p}.{k}"), nullable)?;
                        }
                    }
                    if let Some(s) = v.get_mut("secrets") {
                        file_mounts(s, &format!("{p}.secrets"))?;
                    }
                }
            }
            "environment" => key_value(v, &p, true)?,
            "labels" | "annotations" | "sysctls" => key_value(v, &p, false)?,
            "deploy" => {
                if let Some(l) = v.get_mut("labels") {
                    key_value(l, &format!("{p}.labels"), false)?;
                }
            }
            "depends_on" => depends_on(v, &p)?,
            "env_file" => env_file(v, &p)?,
            "extends" => {
                if let Some(s) = v.as_scalar().map(str::to_string) {
                    let pos = v.pos.clone();
                    *v = Node::map(vec![("service".into(), str_node(&s, &pos))], pos);
                }
            }
            "networks" => {
                let pos = v.pos.clone();
                if let Value::Seq(items) = &v.value {
                    let mut m = Vec::new();
                    for it in items {
                        let Some(s) = it.as_scalar() else {
                            return Err(err(it, &p, "must be a list of network names"));
                        };
                        m.push((s.to_string(), Node::null(it.pos.clone())));
                    }
                    *v = Node::map(m, pos);
                }
            }
            "ports" => ports(v, &p)?,
            "volumes" => volumes(v, &p)?,
            "secrets" | "configs" => file_mounts(v, &p)?,
            "expose" => {
                if let Value::Seq(items) = &mut v.value {
                    for it in items.iter_mut() {
                        if let Value::Scalar(s, Kind::Int) = &it.value {
                            *it = str_node(&s.clone(), &it.pos);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn depends_on(v: &mut Node, path: &str) -> Result<()> {
    let pos = v.pos.clone();
    match &mut v.value {
        Value::Seq(items) => {
            let mut m = Vec::new();
            for it in items.iter() {
                let Some(s) = it.as_scalar() else {
                    return Err(err(it, path, "must be a list of service names"));
                };
                m.push((
                    s.to_string(),
                    Node::map(
                        vec![
                            ("condition".into(), str_node("service_started", &it.pos)),
                            ("required".into(), bool_node(true, &it.pos)),
                        ],
                        it.pos.clone(),
                    ),
                ));
            }
            *v = Node::map(m, pos);
        }
        Value::Map(m) => {
            for (k, d) in m.iter_mut() {
                if d.is_null() {
                    *d = Node::map(Vec::new(), d.pos.clone());
                }
                if d.as_map().is_none() {
                    return Err(err(d, &format!("{path}.{k}"), "must be a mapping"));
                }
                if d.get("condition").is_none() {
                    let p = d.pos.clone();
                    d.set("condition", str_node("service_started", &p));
                }
                if d.get("required").is_none() {
                    let p = d.pos.clone();
                    d.set("required", bool_node(true, &p));
                }
            }
        }
        _ => return Err(err(v, path, "must be a list or a mapping")),
    }
    Ok(())
}

fn env_file(v: &mut Node, path: &str) -> Result<()> {
    let pos = v.pos.clone();
    let items: Vec<Node> = match &v.value {
        Value::Scalar(_, Kind::Null) => Vec::new(),
        Value::Scalar(..) => vec![v.clone()],
        Value::Seq(s) => s.clone(),
        _ => return Err(err(v, path, "must be a string or a list")),
    };
    let mut out = Vec::new();
    for it in items {
        if let Some(s) = it.as_scalar() {
            out.push(Node::map(
                vec![
                    ("path".into(), str_node(s, &it.pos)),
                    ("required".into(), bool_node(true, &it.pos)),
                ],
                it.pos.clone(),
            ));
        } else if it.as_map().is_some() {
            let mut it = it;
            if it.get("required").is_none() {
                let p = it.pos.clone();
                it.set("required", bool_node(true, &p));
            }
            out.push(it);
        } else {
            return Err(err(&it, path, "entries must be a path or {path, required}"));
        }
    }
    *v = Node::seq(out, pos);
    Ok(())
}

fn file_mounts(v: &mut Node, path: &str) -> Result<()> {
    if let Value::Seq(items) = &mut v.value {
        for it in items.iter_mut() {
            if let Some(s) = it.as_scalar().map(str::to_string) {
                let pos = it.pos.clone();
                *it = Node::map(vec![("source".into(), str_node(&s, &pos))], pos);
            } else if it.as_map().is_none() {
                return Err(err(it, path, "entries must be a name or a mapping"));
            }
        }
    }
    Ok(())
}

/// One short port spec (`[ip:][published:]target[/proto]`, ranges allowed) as long forms,
/// in the order compose-go gives them (sorted by `port/proto`).
pub fn parse_port(spec: &str) -> std::result::Result<Vec<PortSpec>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // Split an optional IP (possibly [v6]) from the rest.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| format!("invalid port spec {spec:?}"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| format!("invalid port spec {spec:?}"))?;
        (ip.to_string(), after.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), rest.to_string()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => return Err(format!("invalid port spec {spec:?}")),
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (p.to_string(), t.to_string()),
        None => (String::new(), rest.clone()),
    };
    let range = |s: &str| -> std::result::Result<(u32, u32), String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u32 = a
            .parse()
            .map_err(|_| format!("invalid containerPort: {s}"))?;
        let b: u32 = b
            .parse()
            .map_err(|_| format!("invalid containerPort: {s}"))?;
        if a > 65535 || b > 65535 || b < a {
            return Err(format!("invalid port range: {s}"));
        }
        Ok((a, b))
    };
    let (t0, t1) = range(&target)?;
    let pub_range = if published.is_empty() {
        None
    } else {
        Some(range(&published).map_err(|_| format!("invalid hostPort: {published}"))?)
    };
    let count = t1 - t0 + 1;
    if let Some((p0, p1)) = pub_range {
        let pc = p1 - p0 + 1;
        if pc != count && !(count == 1 && pc > 1) {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {target} and {published}"
            ));
        }
    }
    let mut out = Vec::new();
    for i in 0..count {
        let published = match pub_range {
            None => String::new(),
            Some((p0, p1)) if count == 1 && p1 > p0 => format!("{p0}-{p1}"),
            Some((p0, _)) => (p0 + i).to_string(),
        };
        out.push(PortSpec {
            host_ip: ip.clone(),
            target: t0 + i,
            published,
            protocol: proto.clone(),
        });
    }
    out.sort_by_key(|p| format!("{}/{}", p.target, p.protocol));
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: String,
    pub target: u32,
    pub published: String,
    pub protocol: String,
}

fn ports(v: &mut Node, path: &str) -> Result<()> {
    let pos = v.pos.clone();
    let Value::Seq(items) = &v.value else {
        if v.is_null() {
            return Ok(());
        }
        return Err(err(v, path, "must be a list"));
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        match &it.value {
            Value::Scalar(s, k) if *k != Kind::Null => {
                let specs = parse_port(s).map_err(|m| err(it, &format!("{path}.{i}"), m))?;
                for p in specs {
                    let mut m = vec![("mode".into(), str_node("ingress", &it.pos))];
                    if !p.host_ip.is_empty() {
                        m.push(("host_ip".into(), str_node(&p.host_ip, &it.pos)));
                    }
                    m.push((
                        "target".into(),
                        Node::new(
                            Value::Scalar(p.target.to_string(), Kind::Int),
                            it.pos.clone(),
                        ),
                    ));
                    if !p.published.is_empty() {
                        m.push(("published".into(), str_node(&p.published, &it.pos)));
                    }
                    m.push(("protocol".into(), str_node(&p.protocol, &it.pos)));
                    out.push(Node::map(m, it.pos.clone()));
                }
            }
            Value::Map(_) => {
                let mut m = it.clone();
                if let Some(p) = m.get_mut("published") {
                    if let Value::Scalar(s, Kind::Int) = &p.value {
                        *p = str_node(&s.clone(), &p.pos);
                    }
                }
                out.push(m);
            }
            _ => return Err(err(it, &format!("{path}.{i}"), "invalid port")),
        }
    }
    *v = Node::seq(out, pos);
    Ok(())
}

/// Parses a short volume spec (`[source:]target[:options]`) as compose-go's `ParseVolume`.
pub fn parse_volume(spec: &str) -> std::result::Result<Vec<(String, Node)>, String> {
    let pos = Pos::default();
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    let mut parts: Vec<String> = Vec::new();
    let mut buf = String::new();
    let mut depth = 0usize;
    let chars: Vec<char> = spec.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '$' && chars.get(i + 1) == Some(&'{') {
            depth += 1;
        } else if c == '}' && depth > 0 {
            depth -= 1;
        }
        if c == ':' && depth == 0 {
            if buf.is_empty() {
                return Err(format!(
                    "invalid spec: {spec}: empty section between colons"
                ));
            }
            parts.push(std::mem::take(&mut buf));
        } else {
            buf.push(c);
        }
    }
    if buf.is_empty() {
        return Err(format!(
            "invalid spec: {spec}: empty section between colons"
        ));
    }
    parts.push(buf);
    if parts.len() > 3 {
        return Err(format!("invalid spec: {spec}: too many colons"));
    }
    let (source, target, opts) = match parts.len() {
        1 => (String::new(), parts[0].clone(), String::new()),
        2 => (parts[0].clone(), parts[1].clone(), String::new()),
        _ => (parts[0].clone(), parts[1].clone(), parts[2].clone()),
    };
    let is_bind = source.starts_with(['.', '/', '~']);
    let mut read_only = false;
    let mut nocopy = false;
    let mut propagation = String::new();
    let mut selinux = String::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => nocopy = true,
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                propagation = o.to_string()
            }
            "z" | "Z" => selinux = o.to_string(),
            _ => {}
        }
    }
    let mut m: Vec<(String, Node)> = vec![(
        "type".into(),
        str_node(if is_bind { "bind" } else { "volume" }, &pos),
    )];
    if !source.is_empty() {
        m.push(("source".into(), str_node(&source, &pos)));
    }
    m.push(("target".into(), str_node(&clean_path(&target), &pos)));
    if read_only {
        m.push(("read_only".into(), bool_node(true, &pos)));
    }
    if is_bind {
        let mut b = Vec::new();
        if !selinux.is_empty() {
            b.push(("selinux".into(), str_node(&selinux, &pos)));
        }
        if !propagation.is_empty() {
            b.push(("propagation".into(), str_node(&propagation, &pos)));
        }
        b.push(("create_host_path".into(), bool_node(true, &pos)));
        m.push(("bind".into(), Node::map(b, pos.clone())));
    } else {
        let mut vv = Vec::new();
        if nocopy {
            vv.push(("nocopy".into(), bool_node(true, &pos)));
        }
        m.push(("volume".into(), Node::map(vv, pos.clone())));
    }
    Ok(m)
}

/// Go's `path.Clean`.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let joined = out.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn with_pos(mut n: Node, pos: &Pos) -> Node {
    n.pos = pos.clone();
    if let Value::Map(m) = &mut n.value {
        for (_, v) in m.iter_mut() {
            *v = with_pos(v.clone(), pos);
        }
    }
    n
}

fn volumes(v: &mut Node, path: &str) -> Result<()> {
    let Value::Seq(items) = &mut v.value else {
        if v.is_null() {
            return Ok(());
        }
        return Err(err(v, path, "must be a list"));
    };
    for (i, it) in items.iter_mut().enumerate() {
        if let Some(s) = it.as_scalar().map(str::to_string) {
            let m = parse_volume(&s).map_err(|m| err(it, &format!("{path}.{i}"), m))?;
            let pos = it.pos.clone();
            *it = with_pos(Node::map(m, pos.clone()), &pos);
        } else if let Some(t) = it
            .get("target")
            .and_then(Node::as_scalar)
            .map(str::to_string)
        {
            let pos = it.pos.clone();
            it.set("target", str_node(&clean_path(&t), &pos));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Merge (override files)

/// Merges `over` into `base` (both canonical top levels) with the specification's rules.
pub fn merge(base: &mut Node, over: Node) {
    merge_at(base, over, &mut Vec::new());
}

fn path_matches(path: &[String], pattern: &[&str]) -> bool {
    path.len() == pattern.len() && path.iter().zip(pattern).all(|(p, q)| *q == "*" || p == q)
}

/// The key identifying a sequence entry for unique-merged sequences.
fn seq_key(path: &[String], item: &Node) -> Option<String> {
    let p = |pat: &[&str]| path_matches(path, pat);
    if p(&["services", "*", "volumes"]) || p(&["services", "*", "devices"]) {
        return item
            .get("target")
            .and_then(Node::as_scalar)
            .map(str::to_string);
    }
    if p(&["services", "*", "secrets"]) || p(&["services", "*", "configs"]) {
        let src = item.get("source").and_then(Node::as_scalar).unwrap_or("");
        return Some(
            item.get("target")
                .and_then(Node::as_scalar)
                .map(str::to_string)
                .unwrap_or_else(|| src.to_string()),
        );
    }
    if p(&["services", "*", "ports"]) {
        let g = |k: &str| {
            item.get(k)
                .and_then(Node::as_scalar)
                .unwrap_or("")
                .to_string()
        };
        let host = item
            .get("host_ip")
            .and_then(Node::as_scalar)
            .unwrap_or("0.0.0.0");
        let proto = item
            .get("protocol")
            .and_then(Node::as_scalar)
            .unwrap_or("tcp");
        return Some(format!("{host}:{}:{}/{proto}", g("published"), g("target")));
    }
    if p(&["services", "*", "env_file"]) {
        return item
            .get("path")
            .and_then(Node::as_scalar)
            .map(str::to_string);
    }
    let unique_scalars = [
        &["services", "*", "cap_add"][..],
        &["services", "*", "cap_drop"],
        &["services", "*", "dns"],
        &["services", "*", "dns_opt"],
        &["services", "*", "dns_search"],
        &["services", "*", "expose"],
        &["services", "*", "links"],
        &["services", "*", "profiles"],
        &["services", "*", "tmpfs"],
        &["services", "*", "extra_hosts"],
        &["services", "*", "networks", "*", "aliases"],
        &["services", "*", "build", "tags"],
    ];
    if unique_scalars.iter().any(|pat| p(pat)) {
        return item.as_scalar().map(|s| {
            s.split_once('=')
                .map(|(k, _)| k.to_string())
                .unwrap_or_else(|| s.to_string())
        });
    }
    None
}

fn merge_at(base: &mut Node, over: Node, path: &mut Vec<String>) {
    let p = |pat: &[&str]| path_matches(path, pat);
    // Replaced wholesale.
    if p(&["services", "*", "command"])
        || p(&["services", "*", "entrypoint"])
        || p(&["services", "*", "healthcheck", "test"])
        || p(&["services", "*", "ulimits", "*"])
    {
        *base = over;
        return;
    }
    if over.is_null() {
        return;
    }
    if p(&["services", "*", "logging"]) {
        let d1 = base
            .get("driver")
            .and_then(Node::as_scalar)
            .map(str::to_string);
        let d2 = over
            .get("driver")
            .and_then(Node::as_scalar)
            .map(str::to_string);
        if d1.is_some() && d2.is_some() && d1 != d2 {
            *base = over;
            return;
        }
    }
    if base.is_null() {
        *base = over;
        return;
    }
    match (&mut base.value, over.value) {
        (Value::Map(bm), Value::Map(om)) => {
            for (k, v) in om {
                if let Some(slot) = bm.iter_mut().find(|(e, _)| *e == k) {
                    path.push(k);
                    merge_at(&mut slot.1, v, path);
                    path.pop();
                } else {
                    bm.push((k, v));
                }
            }
        }
        (Value::Seq(bs), Value::Seq(os)) => {
            for item in os {
                let key = seq_key(path, &item);
                match key {
                    Some(k) => {
                        if let Some(slot) =
                            bs.iter_mut().find(|e| seq_key(path, e) == Some(k.clone()))
                        {
                            *slot = item;
                        } else {
                            bs.push(item);
                        }
                    }
                    None => bs.push(item),
                }
            }
        }
        (_, ov) => {
            base.value = ov;
            base.pos = over.pos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn canon(s: &str) -> Node {
        let mut n = parse("t.yaml", s).unwrap();
        canonical(&mut n).unwrap();
        n
    }

    #[test]
    fn ports_short_syntax() {
        let p = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            p,
            vec![PortSpec {
                host_ip: "127.0.0.1".into(),
                target: 80,
                published: "8080".into(),
                protocol: "udp".into()
            }]
        );
        let p = parse_port("8000-8001:9000-9001").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].target, p[1].published.as_str()), (9001, "8001"));
        let p = parse_port("3000").unwrap();
        assert_eq!((p[0].target, p[0].published.as_str()), (3000, ""));
        let p = parse_port("[::1]:80:80").unwrap();
        assert_eq!(p[0].host_ip, "::1");
        assert!(parse_port("a:b").is_err());
        assert!(parse_port("80/xyz").is_err());
        assert!(parse_port("70000").is_err());
    }

    #[test]
    fn volumes_short_syntax() {
        let n = canon("services:\n  a:\n    volumes:\n      - ./data:/data/:ro\n      - db:/var/lib/db\n      - /anon\n");
        let v = n
            .get("services")
            .unwrap()
            .get("a")
            .unwrap()
            .get("volumes")
            .unwrap();
        let v = v.as_seq().unwrap();
        assert_eq!(v[0].get("type").unwrap().as_scalar(), Some("bind"));
        assert_eq!(v[0].get("target").unwrap().as_scalar(), Some("/data"));
        assert_eq!(v[0].get("read_only").unwrap().as_scalar(), Some("true"));
        assert_eq!(v[1].get("type").unwrap().as_scalar(), Some("volume"));
        assert_eq!(v[1].get("source").unwrap().as_scalar(), Some("db"));
        assert!(v[2].get("source").is_none());
        assert_eq!(v[2].get("target").unwrap().line_of(), 6);
        assert!(parse_volume("a::b").is_err());
        assert!(parse_volume("a:b:c:d").is_err());
    }

    impl Node {
        fn line_of(&self) -> usize {
            self.pos.line
        }
    }

    #[test]
    fn environment_and_depends_on() {
        let n = canon("services:\n  a:\n    environment: [A=1, B, C=]\n    depends_on: [b]\n    labels:\n      x: 1\n");
        let a = n.get("services").unwrap().get("a").unwrap();
        let env = a.get("environment").unwrap();
        assert_eq!(env.get("A").unwrap().as_scalar(), Some("1"));
        assert!(env.get("B").unwrap().is_null());
        assert_eq!(env.get("C").unwrap().as_scalar(), Some(""));
        let d = a.get("depends_on").unwrap().get("b").unwrap();
        assert_eq!(
            d.get("condition").unwrap().as_scalar(),
            Some("service_started")
        );
        assert_eq!(
            a.get("labels").unwrap().get("x").unwrap().value,
            Value::Scalar("1".into(), Kind::Str)
        );
    }

    #[test]
    fn merge_rules() {
        let mut base = canon("services:\n  a:\n    image: x\n    command: [a, b]\n    ports: ['8080:80']\n    volumes: ['v:/data']\n    environment: {A: '1', B: '2'}\n");
        let over = canon("services:\n  a:\n    command: [c]\n    ports: ['8080:80', '9090:90']\n    volumes: ['w:/data']\n    environment: {B: '3'}\n  b:\n    image: y\n");
        merge(&mut base, over);
        let a = base.get("services").unwrap().get("a").unwrap();
        assert_eq!(a.get("command").unwrap().as_seq().unwrap().len(), 1);
        assert_eq!(a.get("ports").unwrap().as_seq().unwrap().len(), 2);
        let vols = a.get("volumes").unwrap().as_seq().unwrap();
        assert_eq!(vols.len(), 1);
        assert_eq!(vols[0].get("source").unwrap().as_scalar(), Some("w"));
        let env = a.get("environment").unwrap();
        assert_eq!(env.get("A").unwrap().as_scalar(), Some("1"));
        assert_eq!(env.get("B").unwrap().as_scalar(), Some("3"));
        assert!(base.get("services").unwrap().get("b").is_some());
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("/data/"), "/data");
        assert_eq!(clean_path("/a/../b/./c"), "/b/c");
        assert_eq!(clean_path("a/.."), ".");
    }

    proptest::proptest! {
        #[test]
        fn port_parser_never_panics(s in "[0-9:\\-/a-z\\[\\].]{0,30}") {
            let _ = parse_port(&s);
        }

        #[test]
        fn volume_parser_never_panics(s in "[a-z0-9:./${},]{0,30}") {
            let _ = parse_volume(&s);
        }
    }
}
