//! YAML with positions: a small document tree built from `saphyr-parser` events, so every
//! value keeps the file, line and column it came from (errors name them). Anchors, aliases
//! and merge keys (`<<`) are resolved here; scalar typing follows go-yaml v3 (the YAML 1.2
//! core schema), which is what Compose uses. The emitter writes block YAML the way go-yaml v3
//! does with an indent of 2 (`docker compose config`).
//!
//! Written on the event parser instead of a serde YAML crate because those drop positions
//! after parsing, and every error of the loader must point at its line.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Where a value came from. `line` and `col` are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// The type of a scalar as YAML resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(String, Kind),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// Errors of the YAML layer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("failed to parse {file}: line {line}, column {col}: {message}")]
pub struct YamlError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Upper bound of nodes a document may expand to through aliases ("billion laughs").
const MAX_NODES: usize = 1_000_000;
/// Upper bound of nesting.
const MAX_DEPTH: usize = 256;

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node { value, pos }
    }

    pub fn null(pos: Pos) -> Node {
        Node::new(Value::Scalar(String::new(), Kind::Null), pos)
    }

    pub fn str(s: impl Into<String>, pos: Pos) -> Node {
        Node::new(Value::Scalar(s.into(), Kind::Str), pos)
    }

    pub fn map(entries: Vec<(String, Node)>, pos: Pos) -> Node {
        Node::new(Value::Map(entries), pos)
    }

    pub fn seq(items: Vec<Node>, pos: Pos) -> Node {
        Node::new(Value::Seq(items), pos)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Scalar(_, Kind::Null))
    }

    pub fn as_map(&self) -> Option<&Vec<(String, Node)>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Vec<(String, Node)>> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar that is not null.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s, k) if *k != Kind::Null => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Sets `key` (replacing in place, or appending).
    pub fn set(&mut self, key: &str, value: Node) {
        if let Some(m) = self.as_map_mut() {
            if let Some(slot) = m.iter_mut().find(|(k, _)| k == key) {
                slot.1 = value;
            } else {
                m.push((key.to_string(), value));
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let m = self.as_map_mut()?;
        let i = m.iter().position(|(k, _)| k == key)?;
        Some(m.remove(i).1)
    }

    /// A short description of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar(_, Kind::Null) => "null",
            Value::Scalar(_, Kind::Bool) => "boolean",
            Value::Scalar(_, Kind::Int) => "integer",
            Value::Scalar(_, Kind::Float) => "number",
            Value::Scalar(_, Kind::Str) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) => "object",
        }
    }
}

/// go-yaml v3's resolution of a plain scalar.
pub fn resolve_plain(s: &str) -> Kind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return Kind::Bool,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return Kind::Float,
        _ => {}
    }
    if parse_int(s).is_some() {
        return Kind::Int;
    }
    let b = s.as_bytes();
    let numeric = b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'));
    if numeric && b.iter().any(u8::is_ascii_digit) && s.replace('_', "").parse::<f64>().is_ok() {
        return Kind::Float;
    }
    Kind::Str
}

/// An integer as YAML 1.2 (and go-yaml v3) writes it: decimal, `0x`, `0o`, `0b`, with `_`.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.replace('_', "");
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_string()),
    };
    if t.is_empty() {
        return None;
    }
    let v = if let Some(h) = t.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = t.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = t.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if t.len() > 1 && t.starts_with('0') && t.bytes().all(|c| c.is_ascii_digit()) {
        // A leading 0 is octal (go-yaml v3 reads plain integers with strconv's base 0).
        i64::from_str_radix(&t[1..], 8).ok()?
    } else if t.bytes().all(|c| c.is_ascii_digit()) {
        t.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

struct Builder<'a> {
    file: Arc<str>,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    count: usize,
}

impl<'a> Builder<'a> {
    fn err(&self, span: &Span, message: impl Into<String>) -> YamlError {
        YamlError {
            file: self.file.to_string(),
            line: span.start.line(),
            col: span.start.col() + 1,
            message: message.into(),
        }
    }

    fn pos(&self, span: &Span) -> Pos {
        Pos {
            file: self.file.clone(),
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(YamlError {
                file: self.file.to_string(),
                line: e.marker().line(),
                col: e.marker().col() + 1,
                message: e.info().to_string(),
            }),
            None => Err(YamlError {
                file: self.file.to_string(),
                line: 0,
                col: 0,
                message: "unexpected end of the document".into(),
            }),
        }
    }

    fn grow(&mut self, span: &Span, n: usize) -> Result<(), YamlError> {
        self.count += n;
        if self.count > MAX_NODES {
            return Err(self.err(
                span,
                "the document expands to too many values (aliases nested too deeply?)",
            ));
        }
        Ok(())
    }

    /// Builds the node that starts with `ev`.
    fn node(&mut self, ev: Event<'a>, span: Span, depth: usize) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(self.err(&span, "the document is nested too deeply"));
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                self.grow(&span, 1)?;
                let kind = match (&tag, style) {
                    (Some(t), _) if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" => {
                        match t.suffix.as_str() {
                            "str" => Kind::Str,
                            "int" => Kind::Int,
                            "float" => Kind::Float,
                            "bool" => Kind::Bool,
                            "null" => Kind::Null,
                            _ => Kind::Str,
                        }
                    }
                    (_, ScalarStyle::Plain) => resolve_plain(&text),
                    _ => Kind::Str,
                };
                let node = Node::new(Value::Scalar(text.into_owned(), kind), self.pos(&span));
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    let n = n.clone();
                    let size = count_nodes(&n);
                    self.grow(&span, size)?;
                    Ok(n)
                }
                None => Err(self.err(&span, "unknown anchor")),
            },
            Event::SequenceStart(anchor, _) => {
                self.grow(&span, 1)?;
                let pos = self.pos(&span);
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, sp, depth + 1)?);
                }
                let node = Node::seq(items, pos);
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                self.grow(&span, 1)?;
                let pos = self.pos(&span);
                let mut entries: Vec<(String, Node)> = Vec::new();
                let mut merges: Vec<(Node, Span)> = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let is_merge =
                        matches!(&ev, Event::Scalar(t, ScalarStyle::Plain, _, _) if t == "<<");
                    let key_node = self.node(ev, sp, depth + 1)?;
                    let (vev, vsp) = self.next()?;
                    let mut value = self.node(vev, vsp, depth + 1)?;
                    // A nested collection is reported at its key's line.
                    if matches!(value.value, Value::Map(_) | Value::Seq(_)) {
                        value.pos = key_node.pos.clone();
                    }
                    if is_merge {
                        merges.push((value, sp));
                        continue;
                    }
                    let key = match &key_node.value {
                        Value::Scalar(s, Kind::Null) if s.is_empty() => "null".to_string(),
                        Value::Scalar(s, _) => s.clone(),
                        _ => {
                            return Err(self.err(&sp, "mapping keys must be scalars"));
                        }
                    };
                    if let Some((_, prev)) = entries.iter().find(|(k, _)| *k == key) {
                        return Err(self.err(
                            &sp,
                            format!(
                                "mapping key {key:?} already defined at line {}",
                                prev.pos.line
                            ),
                        ));
                    }
                    entries.push((key, value));
                }
                // Merge keys: explicit keys win, then the merged maps in order.
                for (merged, sp) in merges {
                    let maps: Vec<Node> = match merged.value {
                        Value::Map(_) => vec![merged],
                        Value::Seq(items) => items,
                        _ => {
                            return Err(self.err(
                                &sp,
                                "map merge requires map or sequence of maps as the value",
                            ))
                        }
                    };
                    for m in maps {
                        let Value::Map(kv) = m.value else {
                            return Err(self.err(
                                &sp,
                                "map merge requires map or sequence of maps as the value",
                            ));
                        };
                        for (k, v) in kv {
                            if !entries.iter().any(|(e, _)| *e == k) {
                                entries.push((k, v));
                            }
                        }
                    }
                }
                let node = Node::map(entries, pos);
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            _ => Err(self.err(&span, "unexpected YAML event")),
        }
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.value {
        Value::Scalar(..) => 1,
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(m) => 1 + m.iter().map(|(_, v)| count_nodes(v)).sum::<usize>(),
    }
}

/// Parses every document of `text` (an empty document is a null node).
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder {
        file: Arc::from(file),
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        count: 0,
    };
    let mut docs = Vec::new();
    loop {
        let (ev, sp) = match b.parser.next_event() {
            None => break,
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                return Err(YamlError {
                    file: file.to_string(),
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                    message: e.info().to_string(),
                })
            }
        };
        match ev {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                let (ev, sp) = b.next()?;
                if matches!(ev, Event::DocumentEnd) {
                    docs.push(Node::null(b.pos(&sp)));
                    continue;
                }
                let node = b.node(ev, sp, 0)?;
                docs.push(node);
            }
            other => {
                let node = b.node(other, sp, 0)?;
                docs.push(node);
            }
        }
    }
    Ok(docs)
}

/// Parses a single document (the first; an empty text is a null node).
pub fn parse(file: &str, text: &str) -> Result<Node, YamlError> {
    let mut docs = parse_documents(file, text)?;
    if docs.is_empty() {
        return Ok(Node::null(Pos {
            file: Arc::from(file),
            line: 1,
            col: 1,
        }));
    }
    Ok(docs.swap_remove(0))
}

// ---------------------------------------------------------------------------------------------
// Emitter (go-yaml v3 block style, indent 2)

/// Writes `node` as block YAML.
pub fn emit(node: &Node) -> String {
    let mut out = String::new();
    match &node.value {
        Value::Map(m) if !m.is_empty() => emit_map(&mut out, m, 0),
        Value::Seq(s) if !s.is_empty() => emit_seq(&mut out, s, 0),
        _ => {
            out.push_str(&scalar_text(node, 0));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn emit_map(out: &mut String, m: &[(String, Node)], ind: usize) {
    for (k, v) in m {
        indent(out, ind);
        out.push_str(&quote_key(k));
        out.push(':');
        emit_value(out, v, ind);
    }
}

fn emit_seq(out: &mut String, s: &[Node], ind: usize) {
    for v in s {
        indent(out, ind);
        out.push('-');
        match &v.value {
            Value::Map(m) if !m.is_empty() => {
                // The first entry goes on the dash's line.
                out.push(' ');
                let mut first = String::new();
                emit_map(&mut first, m, ind + 2);
                out.push_str(&first[ind + 2..]);
            }
            Value::Seq(s2) if !s2.is_empty() => {
                out.push(' ');
                let mut first = String::new();
                emit_seq(&mut first, s2, ind + 2);
                out.push_str(&first[ind + 2..]);
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar_text(v, ind + 2));
                out.push('\n');
            }
        }
    }
}

fn emit_value(out: &mut String, v: &Node, ind: usize) {
    match &v.value {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(out, m, ind + 2);
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            emit_seq(out, s, ind + 2);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar_text(v, ind + 2));
            out.push('\n');
        }
    }
}

fn quote_key(k: &str) -> String {
    if needs_quotes(k) {
        double_quote(k)
    } else {
        k.to_string()
    }
}

fn scalar_text(v: &Node, ind: usize) -> String {
    match &v.value {
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
        Value::Scalar(_, Kind::Null) => "null".into(),
        Value::Scalar(s, Kind::Str) => {
            if s.contains('\n') && !s.contains('\r') && !s.starts_with(' ') {
                literal(s, ind)
            } else if needs_quotes(s) {
                double_quote(s)
            } else {
                s.clone()
            }
        }
        Value::Scalar(s, _) => s.clone(),
    }
}

fn literal(s: &str, ind: usize) -> String {
    let (body, chomp) = match s.strip_suffix('\n') {
        Some(b) if !b.ends_with('\n') => (b, ""),
        Some(_) => (s.trim_end_matches('\n'), "+"),
        None => (s, "-"),
    };
    let mut out = format!("|{chomp}\n");
    let lines: Vec<&str> = body.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.is_empty() {
            indent(&mut out, ind);
            out.push_str(line);
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
    if chomp == "+" {
        for _ in 0..(s.len() - s.trim_end_matches('\n').len() - 1) {
            out.push('\n');
        }
    }
    out
}

/// Whether a string must be quoted to read back as the same string.
fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || resolve_plain(s) != Kind::Str {
        return true;
    }
    // YAML 1.1 booleans that go-yaml v3 still quotes for old readers.
    if matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    ) {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if matches!(
        first,
        '-' | '?'
            | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
            | ' '
            | '\t'
    ) && !(first == '-' && s.len() > 1 && !s[1..].starts_with(' ') && first_dash_ok(s))
    {
        return true;
    }
    if s.ends_with(' ') || s.ends_with('\t') || s.ends_with(':') {
        return true;
    }
    if s.contains(": ") || s.contains(" #") || s.contains('\n') || s.contains('\t') {
        return true;
    }
    s.chars().any(|c| c.is_control())
}

/// `-c`, `-x` are plain in go-yaml; a lone `-` or `- x` is not.
fn first_dash_ok(s: &str) -> bool {
    let rest = &s[1..];
    !rest.is_empty() && !rest.starts_with(' ')
}

fn double_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Converts JSON (with object keys in the order given) into a node tree. `serde_json` keeps
/// struct fields in declaration order when writing, so a typed model written with
/// `serde_json::to_string` and read back here keeps compose-go's field order.
pub fn from_json_text(text: &str) -> Result<Node, YamlError> {
    parse("<json>", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Node {
        parse("t.yaml", s).unwrap()
    }

    #[test]
    fn scalars_are_typed_like_go_yaml() {
        assert_eq!(resolve_plain("8080"), Kind::Int);
        assert_eq!(resolve_plain("0x1F"), Kind::Int);
        assert_eq!(resolve_plain("1.5"), Kind::Float);
        assert_eq!(resolve_plain("true"), Kind::Bool);
        assert_eq!(resolve_plain("yes"), Kind::Str);
        assert_eq!(resolve_plain("~"), Kind::Null);
        assert_eq!(resolve_plain("8080:80"), Kind::Str);
        assert_eq!(resolve_plain("1e3"), Kind::Float);
        assert_eq!(resolve_plain("e3"), Kind::Str);
        let n = p("a: '8080'\nb: 8080\nc:\n");
        assert_eq!(
            n.get("a").unwrap().value,
            Value::Scalar("8080".into(), Kind::Str)
        );
        assert_eq!(
            n.get("b").unwrap().value,
            Value::Scalar("8080".into(), Kind::Int)
        );
        assert!(n.get("c").unwrap().is_null());
    }

    #[test]
    fn positions_are_one_based() {
        let n = p("services:\n  web:\n    image: x\n");
        let img = n
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("image")
            .unwrap();
        assert_eq!((img.pos.line, img.pos.col), (3, 12));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = p("x: &base\n  a: 1\n  b: 2\ny:\n  <<: *base\n  b: 3\nz: *base\n");
        let y = n.get("y").unwrap();
        assert_eq!(y.get("a").unwrap().as_scalar(), Some("1"));
        assert_eq!(y.get("b").unwrap().as_scalar(), Some("3"));
        assert_eq!(n.get("z").unwrap().get("b").unwrap().as_scalar(), Some("2"));
        let n = p("a: &a {p: 1}\nb: &b {p: 2, q: 2}\nc:\n  <<: [*a, *b]\n");
        let c = n.get("c").unwrap();
        assert_eq!(c.get("p").unwrap().as_scalar(), Some("1"));
        assert_eq!(c.get("q").unwrap().as_scalar(), Some("2"));
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("f.yaml", "services:\n  web:\n    image: [a\n").unwrap_err();
        assert_eq!(e.file, "f.yaml");
        assert!(e.line >= 3, "{e}");
        let e = parse("f.yaml", "a: 1\na: 2\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 1));
        assert!(e.message.contains("already defined at line 1"), "{e}");
        let e = parse("f.yaml", "a: *nope\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            s.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                std::iter::repeat_n(prev.as_str(), 10)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let e = parse("bomb.yaml", &s).unwrap_err();
        assert!(e.message.contains("too many values"), "{e}");
    }

    #[test]
    fn emitter_round_trips() {
        let src = "name: p\nservices:\n  web:\n    command:\n      - sh\n      - -c\n      - echo hi\n    environment:\n      A: \"1\"\n      B: \"\"\n      C: null\n    ports:\n      - mode: ingress\n        target: 80\n        published: \"8080\"\n    labels:\n      x: \"yes\"\n";
        let n = p(src);
        let out = emit(&n);
        assert_eq!(out, src);
        assert_eq!(p(&out), n.clone_without_pos_check());
    }

    impl Node {
        fn clone_without_pos_check(&self) -> Node {
            p(&emit(self))
        }
    }

    #[test]
    fn emitter_literal_blocks() {
        let n = Node::map(
            vec![("a".into(), Node::str("x\ny\n", Pos::default()))],
            Pos::default(),
        );
        let out = emit(&n);
        assert_eq!(out, "a: |\n  x\n  y\n");
        let back = p(&out);
        assert_eq!(back.get("a").unwrap().as_scalar(), Some("x\ny\n"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_documents("p.yaml", &s);
        }

        #[test]
        fn strings_survive_emit(s in "\\PC{0,40}") {
            let n = Node::map(vec![("k".into(), Node::str(s.clone(), Pos::default()))], Pos::default());
            let back = parse("e.yaml", &emit(&n)).unwrap();
            let got = back.get("k").unwrap();
            proptest::prop_assert_eq!(got.as_scalar().unwrap_or(""), s.as_str());
        }
    }
}
