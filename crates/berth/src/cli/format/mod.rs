//! `--format`: Docker's formatter (`table`, `json`, custom Go templates) over format contexts.

pub mod tabwriter;
pub mod template;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gotmpl::Value;

use super::{CliError, CliResult};
use template::{LabelCell, Mode};

/// One row of a listing: its context (a map of the fields Docker's context exposes) and the
/// labels `.Label "key"` reads.
#[derive(Debug, Clone)]
pub struct Row {
    pub ctx: Value,
    pub labels: BTreeMap<String, String>,
}

impl Row {
    pub fn new(ctx: Value) -> Self {
        Self {
            ctx,
            labels: BTreeMap::new(),
        }
    }
}

/// The defaults of one listing command.
pub struct Listing<'a> {
    /// Used for an empty `--format` and for `table`.
    pub default_table: &'a str,
    /// Field name → column header (Docker's `SubHeaderContext`).
    pub headers: &'a [(&'a str, &'a str)],
}

/// Docker's `Format`: `table` / `table TEMPLATE` / `json` / `TEMPLATE`, after substituting
/// the default. Returns `(is_table, template source)`.
pub fn resolve_format(format: &str, default_table: &str) -> (bool, String) {
    let f = match format {
        "" | "table" => default_table,
        "json" => "{{json .}}",
        f => f,
    };
    let (table, body) = match f.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, f),
    };
    let body = body
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    (table, body)
}

fn parse_error(e: impl std::fmt::Display) -> CliError {
    CliError::msg(format!("template parsing error: {e}"))
}

/// Renders rows with a format (Docker's `formatter.Context.Write`).
pub fn render(format: &str, listing: &Listing<'_>, rows: &[Row]) -> CliResult<String> {
    let (table, body) = resolve_format(format, listing.default_table);
    let labels: LabelCell = Arc::new(Mutex::new(BTreeMap::new()));
    let tmpl = template::parse(&body, Mode::Rows, labels.clone()).map_err(parse_error)?;
    let mut buf = String::new();
    for row in rows {
        match labels.lock() {
            Ok(mut l) => *l = row.labels.clone(),
            Err(p) => *p.into_inner() = row.labels.clone(),
        }
        let out = tmpl
            .execute_to_string(&row.ctx)
            .map_err(|e| CliError::msg(format!("template: {e}")))?;
        buf.push_str(&out);
        buf.push('\n');
    }
    if !table {
        return Ok(buf);
    }
    let header_tmpl = template::parse(&body, Mode::Header, Arc::default()).map_err(parse_error)?;
    let header_ctx = template::string_map(listing.headers.iter().map(|(k, v)| (*k, *v)));
    let mut header = String::new();
    // Docker ignores header errors and keeps what was written before them.
    let _ = header_tmpl.execute_fmt(&mut header, &header_ctx);
    let mut w = tabwriter::TabWriter::docker();
    w.write(&header);
    w.write("\n");
    w.write(&buf);
    Ok(w.finish())
}

/// A template over JSON documents (`inspect -f`, `events --format`…); `json` means the whole
/// document as JSON.
pub struct DocumentTemplate {
    tmpl: gotmpl::Template,
    orders: template::KeyOrders,
}

pub fn document_template(format: &str) -> CliResult<DocumentTemplate> {
    let src = if format == "json" {
        "{{json .}}"
    } else {
        format
    };
    let orders = template::KeyOrders::default();
    let tmpl = template::parse_with_orders(src, Mode::Documents, Arc::default(), orders.clone())
        .map_err(parse_error)?;
    Ok(DocumentTemplate { tmpl, orders })
}

/// Renders one document given as JSON text (its field order is kept for `json`).
pub fn execute_document(t: &DocumentTemplate, json_text: &str) -> CliResult<String> {
    let doc: serde_json::Value =
        serde_json::from_str(json_text).map_err(|e| CliError::msg(e.to_string()))?;
    template::record_key_orders(json_text, &t.orders);
    t.tmpl
        .execute_to_string(&template::from_json(&doc))
        .map_err(|e| CliError::msg(format!("template: {e}")))
}

/// JSON with 4-space indentation, in the value's own field order (serde_json's `Value` would
/// sort the keys; the Docker CLI keeps the daemon's order).
pub fn pretty<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        return "null".to_string();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// `[` elements `]` as the Docker CLI prints inspect results (`[]` when empty), from
/// elements already rendered by [`pretty`].
pub fn pretty_array(elements: &[String]) -> String {
    if elements.is_empty() {
        return "[]".to_string();
    }
    let mut out = String::from("[\n");
    for (i, e) in elements.iter().enumerate() {
        for (j, line) in e.lines().enumerate() {
            if j > 0 {
                out.push('\n');
            }
            out.push_str("    ");
            out.push_str(line);
        }
        if i + 1 < elements.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &[(&str, &str)] =
        &[("ID", "CONTAINER ID"), ("Names", "NAMES"), ("Size", "SIZE")];

    fn rows() -> Vec<Row> {
        vec![
            Row {
                ctx: template::string_map([
                    ("ID", "eca29ddca97a"),
                    ("Names", "web"),
                    ("Size", "0B"),
                ]),
                labels: [("a".to_string(), "1".to_string())].into(),
            },
            Row::new(template::string_map([
                ("ID", "2732adfc1bd2"),
                ("Names", "tr-logger"),
                ("Size", "0B"),
            ])),
        ]
    }

    #[test]
    fn formats() {
        let listing = Listing {
            default_table: "table {{.ID}}\\t{{.Names}}",
            headers: HEADERS,
        };
        assert_eq!(
            render("", &listing, &rows()).unwrap(),
            "CONTAINER ID   NAMES\neca29ddca97a   web\n2732adfc1bd2   tr-logger\n"
        );
        assert_eq!(
            render("{{.ID}} {{.Names}}", &listing, &rows()).unwrap(),
            "eca29ddca97a web\n2732adfc1bd2 tr-logger\n"
        );
        assert_eq!(
            render("json", &listing, &rows()).unwrap(),
            "{\"ID\":\"eca29ddca97a\",\"Names\":\"web\",\"Size\":\"0B\"}\n{\"ID\":\"2732adfc1bd2\",\"Names\":\"tr-logger\",\"Size\":\"0B\"}\n"
        );
        assert_eq!(
            render("table {{.Names}}\\t{{.Label \"a\"}}", &listing, &rows()).unwrap(),
            "NAMES       a\nweb         1\ntr-logger   \n"
        );
        assert_eq!(
            render("table", &listing, &[]).unwrap(),
            "CONTAINER ID   NAMES\n"
        );
    }

    #[test]
    fn errors() {
        let listing = Listing {
            default_table: "table {{.ID}}",
            headers: HEADERS,
        };
        let e = render("{{.ID", &listing, &rows()).unwrap_err();
        assert!(
            e.message.starts_with("template parsing error: "),
            "{}",
            e.message
        );
        let e = render("{{.Nope}}", &listing, &rows()).unwrap_err();
        assert!(e.message.starts_with("template: "), "{}", e.message);
    }

    #[test]
    fn indent_like_go() {
        #[derive(serde::Serialize)]
        #[allow(non_snake_case)]
        struct E {
            Z: Vec<u8>,
            B: std::collections::BTreeMap<String, String>,
            C: Vec<u8>,
            D: Option<u8>,
        }
        let e = pretty(&E {
            Z: vec![],
            B: Default::default(),
            C: vec![1, 2],
            D: None,
        });
        assert_eq!(
            pretty_array(&[e]),
            "[\n    {\n        \"Z\": [],\n        \"B\": {},\n        \"C\": [\n            1,\n            2\n        ],\n        \"D\": null\n    }\n]"
        );
        assert_eq!(pretty_array(&[]), "[]");
        assert_eq!(
            pretty_array(&["1".into(), "2".into()]),
            "[\n    1,\n    2\n]"
        );
    }
}
