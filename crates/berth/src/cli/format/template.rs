//! Go templates for `--format`, with the Docker CLI's template functions.
//!
//! The engine is the `gotmpl` crate (Go's `text/template`). Two Docker specifics need care:
//! * Docker's format contexts are Go structs with methods; here they are maps of values. The
//!   one method that takes an argument, `.Label "key"`, is rewritten to a function call
//!   ([`rewrite_label_calls`]) before parsing.
//! * Table headers are rendered with the same template but Docker's "header functions"
//!   (`json`, `lower`… return their argument unchanged), so two templates are parsed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use gotmpl::{MissingKey, Template, TemplateError, Value};

/// The function `.Label "x"` / `$.Label "x"` is rewritten to.
const LABEL_FN: &str = "__berth_label";

/// Labels of the row being rendered, shared with the `.Label` function.
pub type LabelCell = Arc<Mutex<BTreeMap<String, String>>>;

/// The key order of every JSON object of the documents being rendered, by sorted key set.
///
/// Template values are sorted maps, but Docker's `json` of a typed document (inspect,
/// events, version) prints its struct's field order. The order is taken from the document's
/// own JSON, whose field order is the daemon model's (the same as Docker's structs).
pub type KeyOrders = Arc<Mutex<HashMap<Vec<String>, Vec<String>>>>;

/// How a template renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rows: Docker's basic functions, missing fields are errors (Go structs have no
    /// missing fields).
    Rows,
    /// Raw JSON documents (`inspect -f`): missing keys print `<no value>`.
    Documents,
    /// Table headers: header functions.
    Header,
}

/// Parses a template with the functions of `mode`.
pub fn parse(src: &str, mode: Mode, labels: LabelCell) -> Result<Template, TemplateError> {
    parse_with_orders(src, mode, labels, KeyOrders::default())
}

/// [`parse`] with the key orders `json` uses for documents.
pub fn parse_with_orders(
    src: &str,
    mode: Mode,
    labels: LabelCell,
    orders: KeyOrders,
) -> Result<Template, TemplateError> {
    let src = rewrite_label_calls(src);
    let mut t = Template::new("").missing_key(if mode == Mode::Rows {
        MissingKey::Error
    } else {
        MissingKey::Invalid
    });
    if mode == Mode::Header {
        for name in ["json", "title", "lower", "upper"] {
            t = t.func(name, |args| Ok(args.first().cloned().unwrap_or(Value::Nil)));
        }
        for name in ["split", "join", "truncate"] {
            t = t.func(name, move |args| {
                want_args(name, args, 2)?;
                Ok(args[0].clone())
            });
        }
        t = t.func("pad", pad).func(LABEL_FN, |args| {
            want_args("Label", args, 1)?;
            Ok(Value::String(header_label(&as_string(&args[0])).into()))
        });
    } else {
        t = t
            .func("json", move |args| json(args, mode == Mode::Rows, &orders))
            .func("split", split)
            .func("join", join)
            .func("title", title)
            .func("lower", |args| {
                want_args("lower", args, 1)?;
                Ok(Value::String(as_string(&args[0]).to_lowercase().into()))
            })
            .func("upper", |args| {
                want_args("upper", args, 1)?;
                Ok(Value::String(as_string(&args[0]).to_uppercase().into()))
            })
            .func("pad", pad)
            .func("truncate", truncate)
            .func(LABEL_FN, move |args| {
                want_args("Label", args, 1)?;
                let key = as_string(&args[0]);
                let value = match labels.lock() {
                    Ok(map) => map.get(&key).cloned().unwrap_or_default(),
                    Err(p) => p.into_inner().get(&key).cloned().unwrap_or_default(),
                };
                Ok(Value::String(value.into()))
            });
    }
    t.parse(&src)
}

fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(TemplateError::Exec(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )))
    }
}

/// Docker's `SubHeaderContext.Label`: the last dotted component, `-`/`_` → space.
pub fn header_label(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .replace(['-', '_'], " ")
}

/// How Go prints a value with `{{.}}` / `%v` (strings as is).
pub fn as_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Docker's `json`: `encoding/json` without HTML escaping, trailing newline trimmed. A row
/// context (a map in `Rows` mode) marshals itself with `json.Marshal`, which escapes `<`, `>`
/// and `&`, so those keep Go's `\u003c` forms; U+2028/U+2029 are always escaped by Go. Maps
/// of documents are written in their recorded key order ([`KeyOrders`]).
fn json(args: &[Value], rows: bool, orders: &KeyOrders) -> Result<Value, TemplateError> {
    want_args("json", args, 1)?;
    let s = if rows {
        serde_json::to_string(&to_json(&args[0])).map_err(|e| TemplateError::Exec(e.to_string()))?
    } else {
        let orders = match orders.lock() {
            Ok(o) => o.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut out = String::new();
        write_ordered(&args[0], &orders, &mut out)?;
        out
    };
    let html = rows && matches!(args[0], Value::Map(_));
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' if html => out.push_str("\\u003c"),
            '>' if html => out.push_str("\\u003e"),
            '&' if html => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(Value::String(out.into()))
}

/// Writes a value as compact JSON, maps in their recorded key order (else sorted).
fn write_ordered(
    v: &Value,
    orders: &HashMap<Vec<String>, Vec<String>>,
    out: &mut String,
) -> Result<(), TemplateError> {
    let enc = |e: serde_json::Error| TemplateError::Exec(e.to_string());
    match v {
        Value::Map(m) => {
            let sorted: Vec<String> = m.keys().map(|k| k.to_string()).collect();
            let keys = orders.get(&sorted).unwrap_or(&sorted);
            out.push('{');
            let mut first = true;
            for k in keys {
                let Some(item) = m.get(k.as_str()) else {
                    continue;
                };
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&serde_json::to_string(k).map_err(enc)?);
                out.push(':');
                write_ordered(item, orders, out)?;
            }
            out.push('}');
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_ordered(item, orders, out)?;
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(&to_json(other)).map_err(enc)?),
    }
    Ok(())
}

/// Records the key order of every object in a JSON text (see [`KeyOrders`]).
pub fn record_key_orders(json_text: &str, orders: &KeyOrders) {
    let mut found = HashMap::new();
    let mut de = serde_json::Deserializer::from_str(json_text);
    if serde::de::DeserializeSeed::deserialize(Collect(&mut found), &mut de).is_err() {
        return;
    }
    let mut o = match orders.lock() {
        Ok(o) => o,
        Err(p) => p.into_inner(),
    };
    for (k, v) in found {
        o.entry(k).or_insert(v);
    }
}

/// A serde visitor that walks a JSON document and records each object's key order.
struct Collect<'a>(&'a mut HashMap<Vec<String>, Vec<String>>);

impl<'de> serde::de::DeserializeSeed<'de> for Collect<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Collect<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Collect(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value_seed(Collect(&mut *self.0))?;
            keys.push(k);
        }
        let mut sorted = keys.clone();
        sorted.sort();
        self.0.entry(sorted).or_insert(keys);
        Ok(())
    }
}

/// A template value back to JSON (`nil` → `null`).
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(n) => J::from(*n),
        Value::Uint(n) => J::from(*n),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.to_string()),
        Value::List(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        Value::Function(_) => J::Null,
    }
}

/// JSON (from the daemon) to a template value; integers stay integers.
pub fn from_json(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::Uint(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        J::String(s) => Value::String(s.as_str().into()),
        J::Array(a) => Value::List(a.iter().map(from_json).collect::<Vec<_>>().into()),
        J::Object(o) => Value::Map(Arc::new(
            o.iter()
                .map(|(k, v)| (Arc::<str>::from(k.as_str()), from_json(v)))
                .collect(),
        )),
    }
}

/// A map of strings (Docker's format contexts) as a template value.
pub fn string_map<I, K, V>(entries: I) -> Value
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<Value>,
{
    Value::Map(Arc::new(
        entries
            .into_iter()
            .map(|(k, v)| (Arc::<str>::from(k.as_ref()), v.into()))
            .collect(),
    ))
}

fn split(args: &[Value]) -> Result<Value, TemplateError> {
    want_args("split", args, 2)?;
    let (s, sep) = (as_string(&args[0]), as_string(&args[1]));
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars()
            .map(|c| Value::String(c.to_string().into()))
            .collect()
    } else {
        s.split(sep.as_str())
            .map(|p| Value::String(p.into()))
            .collect()
    };
    Ok(Value::List(parts.into()))
}

fn join(args: &[Value]) -> Result<Value, TemplateError> {
    want_args("join", args, 2)?;
    let sep = as_string(&args[1]);
    match &args[0] {
        Value::List(items) => Ok(Value::String(
            items
                .iter()
                .map(as_string)
                .collect::<Vec<_>>()
                .join(&sep)
                .into(),
        )),
        Value::Nil => Ok(Value::String("".into())),
        other => Err(TemplateError::Exec(format!(
            "wrong type for value; expected []string; got {}",
            other.type_name()
        ))),
    }
}

/// Go's deprecated `strings.Title`: upper-case the first letter of every word.
fn title(args: &[Value]) -> Result<Value, TemplateError> {
    want_args("title", args, 1)?;
    let s = as_string(&args[0]);
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        let letter = c.is_alphanumeric() || c == '_' || c == '\'';
        if letter && !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = letter;
    }
    Ok(Value::String(out.into()))
}

fn int_arg(v: &Value, name: &str) -> Result<i64, TemplateError> {
    match v {
        Value::Int(n) => Ok(*n),
        Value::Uint(n) => {
            i64::try_from(*n).map_err(|_| TemplateError::Exec(format!("{name}: integer too large")))
        }
        other => Err(TemplateError::Exec(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        ))),
    }
}

/// Docker's `pad`: spaces around a non-empty string.
fn pad(args: &[Value]) -> Result<Value, TemplateError> {
    want_args("pad", args, 3)?;
    let s = as_string(&args[0]);
    if s.is_empty() {
        return Ok(Value::String("".into()));
    }
    let before = int_arg(&args[1], "pad")?.max(0) as usize;
    let after = int_arg(&args[2], "pad")?.max(0) as usize;
    Ok(Value::String(
        format!("{}{s}{}", " ".repeat(before), " ".repeat(after)).into(),
    ))
}

/// Docker's `truncate`: the first `n` bytes (a whole string when shorter).
fn truncate(args: &[Value]) -> Result<Value, TemplateError> {
    want_args("truncate", args, 2)?;
    let s = as_string(&args[0]);
    let n = int_arg(&args[1], "truncate")?.max(0) as usize;
    if s.len() < n {
        return Ok(Value::String(s.into()));
    }
    let mut end = n;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(Value::String(s[..end].into()))
}

/// Rewrites Docker's method call `.Label "key"` (and `$.Label "key"`) to `__berth_label "key"`
/// inside template actions; text outside `{{ }}`, string/char literals and comments are left
/// alone, and longer names (`.Labels`, `.LabelX`) are not touched.
pub fn rewrite_label_calls(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let action_start = open + 2;
        // Find the end of this action, skipping quoted text and comments.
        let body = &rest[action_start..];
        let (end, rewritten) = rewrite_action(body);
        out.push_str("{{");
        out.push_str(&rewritten);
        match end {
            Some(e) => {
                out.push_str("}}");
                rest = &body[e + 2..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Rewrites one action body; returns the byte offset of its closing `}}` (if any) and the
/// rewritten body.
fn rewrite_action(body: &str) -> (Option<usize>, String) {
    let b = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'}' && b.get(i + 1) == Some(&b'}') {
            return (Some(i), out);
        }
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                let start = i;
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push_str(&body[start..i]);
            }
            b'`' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push_str(&body[start..i]);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = i;
                let close = body[i + 2..].find("*/").map(|p| i + 2 + p + 2);
                i = close.unwrap_or(b.len());
                out.push_str(&body[start..i]);
            }
            _ => {
                let word_ok = |pos: usize| pos >= b.len() || !is_ident(b[pos]);
                let prev_ok = |pos: usize| {
                    pos == 0 || !(is_ident(b[pos - 1]) || b[pos - 1] == b'.' || b[pos - 1] == b')')
                };
                if body[i..].starts_with("$.Label") && prev_ok(i) && word_ok(i + 7) {
                    out.push_str(LABEL_FN);
                    i += 7;
                } else if body[i..].starts_with(".Label")
                    && prev_ok(i)
                    && (i == 0 || b[i - 1] != b'$')
                    && word_ok(i + 6)
                {
                    out.push_str(LABEL_FN);
                    i += 6;
                } else {
                    let ch_len = body[i..].chars().next().map_or(1, char::len_utf8);
                    out.push_str(&body[i..i + ch_len]);
                    i += ch_len;
                }
            }
        }
    }
    (None, out)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn render(src: &str, data: &Value, mode: Mode) -> String {
        let labels: LabelCell = Arc::new(Mutex::new(
            [("com.example.x".to_string(), "v1".to_string())].into(),
        ));
        parse(src, mode, labels)
            .unwrap()
            .execute_to_string(data)
            .unwrap()
    }

    #[test]
    fn label_rewrite() {
        assert_eq!(
            rewrite_label_calls(r#"{{.ID}} {{.Label "a"}} {{$.Label "b"}}"#),
            r#"{{.ID}} {{__berth_label "a"}} {{__berth_label "b"}}"#
        );
        assert_eq!(
            rewrite_label_calls(r#"{{.Labels}} {{.LabelX}} {{printf ".Label" }} .Label "x""#),
            r#"{{.Labels}} {{.LabelX}} {{printf ".Label" }} .Label "x""#
        );
        assert_eq!(
            rewrite_label_calls(r#"{{/* .Label */}}{{(.Label "a") | upper}}{{.Foo.Label}}"#),
            r#"{{/* .Label */}}{{(__berth_label "a") | upper}}{{.Foo.Label}}"#
        );
        assert_eq!(rewrite_label_calls("{{.Label"), "{{__berth_label");
    }

    #[test]
    fn docker_functions() {
        let data = string_map([("Name", "hello world"), ("Csv", "a,b,c")]);
        assert_eq!(render("{{upper .Name}}", &data, Mode::Rows), "HELLO WORLD");
        assert_eq!(render("{{title .Name}}", &data, Mode::Rows), "Hello World");
        assert_eq!(
            render(r#"{{join (split .Csv ",") "|"}}"#, &data, Mode::Rows),
            "a|b|c"
        );
        assert_eq!(
            render("{{pad .Name 1 2}}|", &data, Mode::Rows),
            " hello world  |"
        );
        assert_eq!(render("{{truncate .Name 5}}", &data, Mode::Rows), "hello");
        assert_eq!(
            render("{{json .}}", &data, Mode::Rows),
            r#"{"Csv":"a,b,c","Name":"hello world"}"#
        );
        assert_eq!(
            render(
                r#"{{.Label "com.example.x"}}|{{.Label "nope"}}"#,
                &data,
                Mode::Rows
            ),
            "v1|"
        );
        assert_eq!(
            render("{{println .Name}}", &data, Mode::Rows),
            "hello world\n"
        );
    }

    #[test]
    fn header_functions_keep_the_header() {
        let header = string_map([("Name", "NAME")]);
        assert_eq!(
            render(
                r#"{{lower .Name}} {{json .Name}} {{.Label "com.example.foo-bar_baz"}}"#,
                &header,
                Mode::Header
            ),
            "NAME NAME foo bar baz"
        );
    }

    #[test]
    fn json_documents() {
        let doc: serde_json::Value = serde_json::json!({
            "State": {"Running": true, "Pid": 42},
            "Config": {"Labels": {"x": "1"}, "Env": ["A=1", "B=2"]},
            "Mounts": [{"Source": "/a"}, {"Source": "/b"}]
        });
        let v = from_json(&doc);
        assert_eq!(
            render("{{.State.Running}} {{.State.Pid}}", &v, Mode::Documents),
            "true 42"
        );
        assert_eq!(
            render(r#"{{index .Config.Labels "x"}}"#, &v, Mode::Documents),
            "1"
        );
        assert_eq!(
            render("{{range .Mounts}}{{.Source}} {{end}}", &v, Mode::Documents),
            "/a /b "
        );
        assert_eq!(
            render("{{json .Config}}", &v, Mode::Documents),
            r#"{"Env":["A=1","B=2"],"Labels":{"x":"1"}}"#
        );
        assert_eq!(render("{{.Nope}}", &v, Mode::Documents), "<no value>");
    }

    #[test]
    fn documents_keep_their_key_order() {
        let text = r#"{"Id":"x","Config":{"Hostname":"h","Env":["A=1"],"Labels":{"b":"2","a":"1"}},"Args":[]}"#;
        let orders = KeyOrders::default();
        record_key_orders(text, &orders);
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let t = parse_with_orders(
            "{{json .Config}}|{{json .}}",
            Mode::Documents,
            Arc::default(),
            orders,
        )
        .unwrap();
        assert_eq!(
            t.execute_to_string(&from_json(&doc)).unwrap(),
            r#"{"Hostname":"h","Env":["A=1"],"Labels":{"b":"2","a":"1"}}|{"Id":"x","Config":{"Hostname":"h","Env":["A=1"],"Labels":{"b":"2","a":"1"}},"Args":[]}"#
        );
    }

    #[test]
    fn rows_reject_unknown_fields() {
        let labels: LabelCell = Arc::default();
        let t = parse("{{.Nope}}", Mode::Rows, labels).unwrap();
        assert!(t.execute_to_string(&string_map([("ID", "x")])).is_err());
    }

    proptest! {
        #[test]
        fn rewrite_is_identity_without_label(s in "[a-zA-Z0-9{}. \"$|()]{0,40}") {
            prop_assume!(!s.contains("Label"));
            prop_assert_eq!(rewrite_label_calls(&s), s);
        }

        #[test]
        fn rewrite_never_panics(s in ".{0,60}") {
            let _ = rewrite_label_calls(&s);
        }

        #[test]
        fn label_calls_always_rewritten(key in "[a-z.]{1,10}", pre in "[a-z ]{0,5}") {
            let src = format!("{pre}{{{{.Label \"{key}\"}}}}");
            let out = rewrite_label_calls(&src);
            prop_assert_eq!(out, format!("{pre}{{{{__berth_label \"{key}\"}}}}"));
        }
    }
}
