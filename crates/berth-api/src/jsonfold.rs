//! Request bodies decoded as Go's `encoding/json` decodes them into dockerd's structs: an
//! object key names a struct field when it equals the field's name or, failing that, equals it
//! ignoring case. Clients rely on it (`detachKeys`, `hostConfig`, docker-py's and the Go SDK's
//! own spellings), and serde matches names exactly, so every JSON body the server reads goes
//! through [`from_slice`].
//!
//! Only struct field names are folded, never the keys of maps (labels, env maps, storage
//! options, endpoint names keep their case), because the rewrite happens where serde asks for
//! a *struct* and hands over the list of its field names. Written here because no maintained
//! crate folds case recursively through nested structs while leaving maps alone.

use serde::de::value::StringDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::{Map, Value};

/// Decodes `bytes` into `T`, matching struct field names case-insensitively (an exact match
/// wins over a folded one).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let v: Value = serde_json::from_slice(bytes)?;
    from_value(v)
}

/// [`from_slice`] for an already parsed value.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    T::deserialize(Fold(v))
}

/// A JSON value deserialized with case-folded struct field names.
pub struct Fold(pub Value);

/// Renames the keys of `m` that equal one of `fields` only up to ASCII case to that field's
/// name. A key that matches exactly keeps its value when a folded one names the same field.
fn fold_keys(m: Map<String, Value>, fields: &'static [&'static str]) -> Map<String, Value> {
    let mut exact = Map::new();
    let mut folded = Vec::new();
    for (k, v) in m {
        if fields.contains(&k.as_str()) {
            exact.insert(k, v);
        } else if let Some(f) = fields.iter().find(|f| f.eq_ignore_ascii_case(&k)) {
            folded.push((f.to_string(), v));
        } else {
            exact.insert(k, v);
        }
    }
    for (k, v) in folded {
        exact.entry(k).or_insert(v);
    }
    exact
}

struct FoldMap {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for FoldMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                let key: StringDeserializer<serde_json::Error> = k.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("value is missing"))?;
        seed.deserialize(Fold(v))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct FoldSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for FoldSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(Fold(v)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    m: Map<String, Value>,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let len = m.len();
    let mut access = FoldMap {
        iter: m.into_iter(),
        value: None,
    };
    let out = visitor.visit_map(&mut access)?;
    if access.iter.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in map"))
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    a: Vec<Value>,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let len = a.len();
    let mut access = FoldSeq(a.into_iter());
    let out = visitor.visit_seq(&mut access)?;
    if access.0.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in array"))
    }
}

/// Scalars are handed to serde_json's own `Value` deserializer (its conversions and error
/// messages); containers are walked here so that nested structs fold too.
macro_rules! scalar {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Fold {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(m) => visit_object(m, visitor),
            Value::Array(a) => visit_array(a, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    scalar! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Fold(other)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(a) => visit_array(a, visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(m) => visit_object(m, visitor),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(m) => visit_object(fold_keys(m, fields), visitor),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    struct Inner {
        memory: i64,
        #[serde(rename = "ContainerIDFile")]
        id_file: String,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    struct Outer {
        detach_keys: String,
        host_config: Option<Inner>,
        labels: Option<BTreeMap<String, String>>,
        list: Vec<Inner>,
        tuple: Option<(u16, u16)>,
    }

    #[test]
    fn folds_struct_fields_not_map_keys() {
        let o: Outer = from_slice(
            br#"{"detachKeys":"ctrl-a","hostconfig":{"memory":7,"containerIdFile":"f"},
                 "Labels":{"MyKey":"v","lower":"w"},"LIST":[{"MEMORY":1}],"tuple":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(o.detach_keys, "ctrl-a");
        assert_eq!(
            o.host_config,
            Some(Inner {
                memory: 7,
                id_file: "f".into()
            })
        );
        let labels = o.labels.unwrap();
        assert_eq!(labels["MyKey"], "v");
        assert_eq!(labels["lower"], "w");
        assert_eq!(o.list[0].memory, 1);
        assert_eq!(o.tuple, Some((1, 2)));
    }

    #[test]
    fn exact_match_wins_and_errors_stay_typed() {
        let o: Outer = from_slice(br#"{"DetachKeys":"a","detachkeys":"b"}"#).unwrap();
        assert_eq!(o.detach_keys, "a");
        let e = from_slice::<Outer>(br#"{"hostConfig":{"Memory":"x"}}"#).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = from_slice::<Inner>(br#"{"Memory":-1}"#).map(|i| i.memory);
        assert_eq!(e.unwrap(), -1);
        assert!(from_slice::<Outer>(b"[1]").is_err());
        assert!(from_slice::<Outer>(b"{").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = from_slice::<Outer>(&data);
        }

        #[test]
        fn any_case_of_a_field_name(mask in proptest::prelude::any::<u64>(), v in proptest::prelude::any::<i64>()) {
            let name: String = "DetachKeys"
                .chars()
                .enumerate()
                .map(|(i, c)| if mask >> i & 1 == 1 { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() })
                .collect();
            let json = format!(r#"{{"{name}":"{v}"}}"#);
            let o: Outer = from_slice(json.as_bytes()).unwrap();
            proptest::prop_assert_eq!(o.detach_keys, v.to_string());
        }
    }
}
