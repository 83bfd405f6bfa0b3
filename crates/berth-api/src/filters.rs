//! The `filters` query parameter: `{"label":{"a=b":true}}` (Docker CLI) or
//! `{"label":["a=b"]}` (docker-py, the legacy shape) → one [`Filters`] value.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::ApiError;

/// Parsed filters: key → set of values (sorted, deduplicated), e.g. `label → {"a=b", "c"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filters {input:?}: {reason}")]
pub struct FiltersError {
    pub input: String,
    pub reason: String,
}

impl From<FiltersError> for ApiError {
    fn from(e: FiltersError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Values {
    /// `{"busybox": true}`; the bool is ignored, as Docker does.
    Map(BTreeMap<String, bool>),
    /// `["busybox"]`.
    List(Vec<String>),
}

impl Filters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the JSON of the `filters` query parameter. An empty string means no filters.
    pub fn from_json(input: &str) -> Result<Self, FiltersError> {
        if input.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: Option<BTreeMap<String, Option<Values>>> =
            serde_json::from_str(input).map_err(|e| FiltersError {
                input: input.to_string(),
                reason: e.to_string(),
            })?;
        let mut filters = Self::default();
        for (key, values) in raw.unwrap_or_default() {
            let set = filters.fields.entry(key).or_default();
            match values {
                Some(Values::Map(map)) => set.extend(map.into_keys()),
                Some(Values::List(list)) => set.extend(list),
                None => {}
            }
        }
        Ok(filters)
    }

    /// Serializes in the CLI's shape (`{"key":{"value":true}}`). Empty filters give `""`-able
    /// output `{}`; callers usually skip the parameter when [`Filters::is_empty`].
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .fields
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(|v| (v.as_str(), true)).collect()))
            .collect();
        // A map of strings to maps of bools always serializes.
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_string())
    }

    /// Adds one `key=value` pair.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.fields
            .entry(key.into())
            .or_default()
            .insert(value.into());
        self
    }

    /// Builder form of [`Filters::add`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.add(key, value);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// The values of `key` (empty when absent).
    pub fn get(&self, key: &str) -> Vec<&str> {
        self.fields
            .get(key)
            .map(|vs| vs.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Docker's `Validate`: every key must be in `accepted`, else 400 `Invalid filter 'key'`.
    pub fn validate(&self, accepted: &[&str]) -> Result<(), ApiError> {
        match self.fields.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(bad) => Err(ApiError::bad_request(format!("Invalid filter '{bad}'"))),
            None => Ok(()),
        }
    }

    /// True when `key` has no values or one of its values equals `candidate` (Docker's `ExactMatch`).
    pub fn exact_match(&self, key: &str, candidate: &str) -> bool {
        match self.fields.get(key) {
            None => true,
            Some(values) => values.is_empty() || values.contains(candidate),
        }
    }

    /// Docker's `MatchKVList` for `label` filters: every value `k` or `k=v` must be matched
    /// by `labels`. True when `key` is absent.
    pub fn match_kv_list(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        let Some(values) = self.fields.get(key) else {
            return true;
        };
        values.iter().all(|value| match value.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|actual| actual == v),
            None => labels.contains_key(value.as_str()),
        })
    }

    /// Docker's `GetBoolOrDefault` (e.g. `dangling`): `true`/`1` or `false`/`0`; any other
    /// value is a 400 `Invalid filter 'key=value'`; more than one value is a 400 too.
    pub fn bool_value(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let Some(values) = self.fields.get(key) else {
            return Ok(None);
        };
        let mut iter = values.iter();
        let (Some(first), None) = (iter.next(), iter.next()) else {
            return Err(ApiError::bad_request(format!(
                "filter '{key}' accepts exactly one value"
            )));
        };
        match first.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(ApiError::bad_request(format!(
                "Invalid filter '{key}={first}'"
            ))),
        }
    }

    /// Iterates over `(key, values)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.fields
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(String::as_str).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_cli_map_of_maps() {
        let f = Filters::from_json(r#"{"dangling":{"false":true},"reference":{"busybox":true}}"#)
            .unwrap();
        assert_eq!(f.get("dangling"), vec!["false"]);
        assert_eq!(f.get("reference"), vec!["busybox"]);
        assert_eq!(f.bool_value("dangling").unwrap(), Some(false));
    }

    #[test]
    fn parses_docker_py_lists_with_spaces() {
        let f = Filters::from_json(
            r#"{"label": ["com.docker.compose.project=trcompose", "com.docker.compose.oneoff=False"], "status": ["created", "exited"]}"#,
        )
        .unwrap();
        assert_eq!(
            f.get("label"),
            vec![
                "com.docker.compose.oneoff=False",
                "com.docker.compose.project=trcompose"
            ]
        );
        assert_eq!(f.get("status"), vec!["created", "exited"]);
    }

    #[test]
    fn empty_and_null() {
        assert!(Filters::from_json("").unwrap().is_empty());
        assert!(Filters::from_json("{}").unwrap().is_empty());
        assert!(Filters::from_json("null").unwrap().is_empty());
        assert!(Filters::from_json(r#"{"a":null}"#).unwrap().contains("a"));
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(Filters::from_json("notjson").is_err());
        assert!(Filters::from_json(r#"{"a":"b"}"#).is_err());
        assert!(Filters::from_json(r#"["a"]"#).is_err());
        let api: ApiError = Filters::from_json("notjson").unwrap_err().into();
        assert_eq!(api.status, http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn validate_uses_dockers_message() {
        let f = Filters::from_json(r#"{"bogus":{"1":true}}"#).unwrap();
        let err = f.validate(&["name", "label"]).unwrap_err();
        assert_eq!(err.message, "Invalid filter 'bogus'");
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
        assert!(Filters::new().with("name", "x").validate(&["name"]).is_ok());
    }

    #[test]
    fn kv_list_matching() {
        let labels: BTreeMap<String, String> = [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "".to_string()),
        ]
        .into();
        let f = Filters::new().with("label", "a=1").with("label", "b");
        assert!(f.match_kv_list("label", &labels));
        assert!(!Filters::new()
            .with("label", "a=2")
            .match_kv_list("label", &labels));
        assert!(!Filters::new()
            .with("label", "c")
            .match_kv_list("label", &labels));
        assert!(Filters::new().match_kv_list("label", &labels));
    }

    #[test]
    fn bool_values() {
        assert_eq!(
            Filters::new()
                .with("dangling", "true")
                .bool_value("dangling")
                .unwrap(),
            Some(true)
        );
        assert_eq!(
            Filters::new()
                .with("dangling", "1")
                .bool_value("dangling")
                .unwrap(),
            Some(true)
        );
        assert_eq!(Filters::new().bool_value("dangling").unwrap(), None);
        assert_eq!(
            Filters::new()
                .with("dangling", "maybe")
                .bool_value("dangling")
                .unwrap_err()
                .message,
            "Invalid filter 'dangling=maybe'"
        );
    }

    fn arb_filters() -> impl Strategy<Value = BTreeMap<String, BTreeSet<String>>> {
        prop::collection::btree_map(
            "[a-z.]{1,8}",
            prop::collection::btree_set("[ -~]{0,12}", 0..4),
            0..5,
        )
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(input in ".{0,64}") {
            let _ = Filters::from_json(&input);
        }

        #[test]
        fn map_of_maps_round_trips(fields in arb_filters()) {
            let mut f = Filters::new();
            for (k, vs) in &fields {
                f.fields.entry(k.clone()).or_default();
                for v in vs { f.add(k.clone(), v.clone()); }
            }
            let back = Filters::from_json(&f.to_json()).unwrap();
            prop_assert_eq!(back, f);
        }

        #[test]
        fn list_shape_equals_map_shape(fields in arb_filters()) {
            let as_lists: BTreeMap<&String, Vec<&String>> =
                fields.iter().map(|(k, vs)| (k, vs.iter().collect())).collect();
            let as_maps: BTreeMap<&String, BTreeMap<&String, bool>> =
                fields.iter().map(|(k, vs)| (k, vs.iter().map(|v| (v, true)).collect())).collect();
            let a = Filters::from_json(&serde_json::to_string(&as_lists).unwrap()).unwrap();
            let b = Filters::from_json(&serde_json::to_string(&as_maps).unwrap()).unwrap();
            prop_assert_eq!(a, b);
        }
    }
}
