//! A serde `Deserializer` over [`Node`]: the typed model (crate::model) is read straight from
//! the YAML tree, so every error knows the file, line, column and key path of the value that
//! caused it, and an unknown key is answered with the nearest valid one.
//!
//! Scalars are weakly typed as compose-go reads them after interpolation: `"8080"` is a fine
//! integer, `8080` a fine string, `"true"` a boolean. Keys starting with `x-` are extensions
//! and are skipped inside objects.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::yaml::{Kind, Node, Pos, Value};

/// A model error with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub message: String,
    /// Dotted key path (`services.web.ports.0.target`).
    pub path: String,
    pub pos: Option<Pos>,
    /// For unknown keys: the valid key nearest to the one written.
    pub suggestion: Option<String>,
    located: bool,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.pos {
            write!(f, "{p}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean {s:?}?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            path: String::new(),
            pos: None,
            suggestion: None,
            located: false,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let suggestion = nearest(field, expected);
        DeError {
            message: format!("additional property {field:?} is not allowed"),
            path: String::new(),
            pos: None,
            suggestion,
            located: false,
        }
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("invalid type: {unexp}, expected {exp}"))
    }
}

/// The candidate closest to `word` (Jaro-Winkler above 0.7, or a shared prefix).
pub fn nearest(word: &str, candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

type Result<T> = std::result::Result<T, DeError>;

/// Deserializes `T` from `node`; `path` is the node's key path.
pub fn from_node<'de, T: serde::Deserialize<'de>>(node: &'de Node, path: &str) -> Result<T> {
    T::deserialize(NodeDe {
        node,
        path: path.to_string(),
    })
}

pub struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDe<'a> {
    fn locate(&self, mut e: DeError) -> DeError {
        if !e.located {
            e.located = true;
            e.pos = Some(self.node.pos.clone());
            e.path = self.path.clone();
        }
        e
    }

    fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn text(&self) -> Option<&'a str> {
        match &self.node.value {
            Value::Scalar(s, k) if *k != Kind::Null => Some(s.as_str()),
            _ => None,
        }
    }

    fn type_err(&self, expected: &str) -> DeError {
        self.locate(<DeError as de::Error>::custom(format!(
            "must be {} {expected}, not {} {}",
            article(expected),
            article(self.node.type_name()),
            self.node.type_name()
        )))
    }
}

fn article(t: &str) -> &'static str {
    if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

macro_rules! de_int {
    ($name:ident, $visit:ident, $t:ty) => {
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
            let parsed = self.text().and_then(|s| {
                crate::yaml::parse_int(s.trim())
                    .and_then(|i| <$t>::try_from(i).ok())
                    .or_else(|| {
                        // A float with no fraction (`1.0`) is an integer too.
                        s.trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                            .and_then(|f| <$t>::try_from(f as i64).ok())
                    })
            });
            match parsed {
                Some(i) => v.$visit(i).map_err(|e| self.locate(e)),
                None => Err(self.type_err("integer")),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        let r = match &self.node.value {
            Value::Scalar(_, Kind::Null) => v.visit_unit(),
            Value::Scalar(s, Kind::Bool) => v.visit_bool(parse_bool(s).unwrap_or(false)),
            Value::Scalar(s, Kind::Int) => match crate::yaml::parse_int(s) {
                Some(i) => v.visit_i64(i),
                None => v.visit_str(s),
            },
            Value::Scalar(s, Kind::Float) => match s.parse::<f64>() {
                Ok(f) => v.visit_f64(f),
                Err(_) => v.visit_str(s),
            },
            Value::Scalar(s, Kind::Str) => v.visit_str(s),
            Value::Seq(_) => return self.deserialize_seq(v),
            Value::Map(_) => return self.deserialize_map(v),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        match self.text().and_then(parse_bool) {
            Some(b) => v.visit_bool(b).map_err(|e| self.locate(e)),
            None => Err(self.type_err("boolean")),
        }
    }

    de_int!(deserialize_i8, visit_i8, i8);
    de_int!(deserialize_i16, visit_i16, i16);
    de_int!(deserialize_i32, visit_i32, i32);
    de_int!(deserialize_i64, visit_i64, i64);
    de_int!(deserialize_u8, visit_u8, u8);
    de_int!(deserialize_u16, visit_u16, u16);
    de_int!(deserialize_u32, visit_u32, u32);
    de_int!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        match self.text().and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(f) => v.visit_f64(f).map_err(|e| self.locate(e)),
            None => Err(self.type_err("number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        match &self.node.value {
            Value::Scalar(s, Kind::Null) if s.is_empty() => {
                v.visit_borrowed_str("").map_err(|e| self.locate(e))
            }
            Value::Scalar(s, _) => v.visit_borrowed_str(s).map_err(|e| self.locate(e)),
            _ => Err(self.type_err("string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        if self.node.is_null() {
            v.visit_none().map_err(|e| self.locate(e))
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_unit().map_err(|e| self.locate(e))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        match &self.node.value {
            Value::Seq(items) => {
                let access = Seq {
                    items: items.iter(),
                    path: self.path.clone(),
                    index: 0,
                };
                v.visit_seq(access).map_err(|e| self.locate(e))
            }
            Value::Scalar(_, Kind::Null) => v
                .visit_seq(Seq {
                    items: [].iter(),
                    path: self.path.clone(),
                    index: 0,
                })
                .map_err(|e| self.locate(e)),
            _ => Err(self.type_err("list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.map(v, false)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        self.map(v, true)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        match self.text() {
            Some(s) => v
                .visit_enum(s.into_deserializer())
                .map_err(|e: DeError| self.locate(e)),
            None => Err(self.type_err("string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_unit()
    }
}

impl<'de> NodeDe<'de> {
    fn map<V: Visitor<'de>>(self, v: V, skip_extensions: bool) -> Result<V::Value> {
        match &self.node.value {
            Value::Map(entries) => {
                let access = Map {
                    entries: entries.iter(),
                    value: None,
                    path: self.path.clone(),
                    skip_extensions,
                    parent: self.node,
                };
                v.visit_map(access).map_err(|e| self.locate(e))
            }
            Value::Scalar(_, Kind::Null) => v
                .visit_map(Map {
                    entries: [].iter(),
                    value: None,
                    path: self.path.clone(),
                    skip_extensions,
                    parent: self.node,
                })
                .map_err(|e| self.locate(e)),
            _ => Err(self.type_err("mapping")),
        }
    }
}

/// go's `strconv.ParseBool` plus YAML 1.1's yes/no/on/off (go-yaml v3 accepts them for bools).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" | "yes" | "Yes" | "YES" | "on" | "On" | "ON"
        | "y" | "Y" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "no" | "No" | "NO" | "off" | "Off"
        | "OFF" | "n" | "N" => Some(false),
        _ => None,
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Node>,
    path: String,
    index: usize,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.items.next() {
            None => Ok(None),
            Some(node) => {
                let path = if self.path.is_empty() {
                    self.index.to_string()
                } else {
                    format!("{}.{}", self.path, self.index)
                };
                self.index += 1;
                seed.deserialize(NodeDe { node, path }).map(Some)
            }
        }
    }
}

struct Map<'a> {
    entries: std::slice::Iter<'a, (String, Node)>,
    value: Option<(&'a str, &'a Node)>,
    path: String,
    skip_extensions: bool,
    parent: &'a Node,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        loop {
            let Some((k, v)) = self.entries.next() else {
                return Ok(None);
            };
            if self.skip_extensions && k.starts_with("x-") {
                continue;
            }
            self.value = Some((k.as_str(), v));
            let key_de: de::value::BorrowedStrDeserializer<'de, DeError> =
                de::value::BorrowedStrDeserializer::new(k.as_str());
            return seed.deserialize(key_de).map(Some).map_err(|mut e| {
                if !e.located {
                    e.located = true;
                    e.pos = Some(v.pos.clone());
                    e.path = if self.path.is_empty() {
                        k.clone()
                    } else {
                        format!("{}.{k}", self.path)
                    };
                    let _ = self.parent;
                }
                e
            });
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let Some((k, node)) = self.value.take() else {
            return Err(<DeError as de::Error>::custom(
                "value requested before its key",
            ));
        };
        let parent = NodeDe {
            node: self.parent,
            path: self.path.clone(),
        };
        seed.deserialize(NodeDe {
            node,
            path: parent.child(k),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct S {
        #[serde(default)]
        image: String,
        #[serde(default)]
        port: u16,
        #[serde(default)]
        on: bool,
        #[serde(default)]
        list: Vec<String>,
        #[serde(default)]
        opt: Option<i64>,
    }

    fn de(s: &str) -> Result<S> {
        let n = crate::yaml::parse("f.yaml", s).unwrap();
        from_node(&n, "services.web")
    }

    #[test]
    fn weak_typing() {
        let s = de("image: 1.5\nport: \"80\"\non: \"true\"\nlist: [1, true, x]\nx-ext: 1\nopt:\n")
            .unwrap();
        assert_eq!(
            s,
            S {
                image: "1.5".into(),
                port: 80,
                on: true,
                list: vec!["1".into(), "true".into(), "x".into()],
                opt: None
            }
        );
    }

    #[test]
    fn errors_are_located() {
        let e = de("image: x\nimgae: y\n").unwrap_err();
        assert_eq!(e.path, "services.web.imgae");
        assert_eq!(e.suggestion.as_deref(), Some("image"));
        assert_eq!(e.pos.as_ref().map(|p| p.line), Some(2));
        assert_eq!(
            e.to_string(),
            "f.yaml:2:8: services.web.imgae: additional property \"imgae\" is not allowed (did you mean \"image\"?)"
        );
        let e = de("port: http\n").unwrap_err();
        assert_eq!(e.path, "services.web.port");
        assert_eq!(e.message, "must be an integer, not a string");
        let e = de("list:\n  - [a]\n").unwrap_err();
        assert_eq!(e.path, "services.web.list.0");
    }
}
