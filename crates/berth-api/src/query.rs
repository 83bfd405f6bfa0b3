//! Query-string access with Docker's parsing rules.

use crate::{ApiError, Filters};

/// A parsed query string (`a=1&names=x&names=y`), keeping repeated keys in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `application/x-www-form-urlencoded` text (`+` is a space, `%XX` escapes).
    pub fn parse(query: &str) -> Self {
        Self {
            pairs: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, `None` when absent or empty.
    pub fn get_nonempty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of a repeated key (`names=a&names=b`).
    pub fn get_all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// Docker's `BoolValue`: false for absent, `""`, `0`, `no`, `false`, `none` (any case,
    /// trimmed); true for anything else (`1`, `true`, `True`, …).
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(parse_bool)
    }

    /// Docker's `BoolValueOrDefault`: `default` when the key is absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => parse_bool(v),
        }
    }

    /// An integer parameter; absent or empty → `None`; malformed → 400.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get_nonempty(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "strconv.ParseInt: parsing {v:?}: invalid syntax (query parameter '{key}')"
                ))
            }),
        }
    }

    /// An unsigned integer parameter; absent or empty → `None`; malformed → 400.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get_nonempty(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "strconv.ParseUint: parsing {v:?}: invalid syntax (query parameter '{key}')"
                ))
            }),
        }
    }

    /// The `filters` parameter (either JSON shape); malformed JSON → 400.
    pub fn filters(&self) -> Result<Filters, ApiError> {
        match self.get("filters") {
            None => Ok(Filters::default()),
            Some(json) => Ok(Filters::from_json(json)?),
        }
    }

    /// A JSON-valued parameter such as `buildargs` or `labels`; absent or empty → default.
    pub fn json<T: serde::de::DeserializeOwned + Default>(&self, key: &str) -> Result<T, ApiError> {
        match self.get_nonempty(key) {
            None => Ok(T::default()),
            Some(v) => serde_json::from_str(v)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON in '{key}': {e}"))),
        }
    }
}

/// Docker's boolean query rule (see [`Query::bool`]).
pub fn parse_bool(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn booleans_from_cli_and_docker_py() {
        let q = Query::parse("all=1&v=False&link=True&force=0&size=false&x=&y=no");
        assert!(q.bool("all"));
        assert!(!q.bool("v"));
        assert!(q.bool("link"));
        assert!(!q.bool("force"));
        assert!(!q.bool("size"));
        assert!(!q.bool("x"));
        assert!(!q.bool("y"));
        assert!(!q.bool("absent"));
        assert!(q.bool_or("absent", true));
        assert!(!q.bool_or("v", true));
    }

    #[test]
    fn repeated_keys_and_plus_spaces() {
        let q = Query::parse(
            "author=Trace+Author&changes=ENV+COMMITTED%3D1&changes=CMD+%5B%22cat%22%5D&names=busybox&names=tr-committed%3Alatest",
        );
        assert_eq!(q.get("author"), Some("Trace Author"));
        assert_eq!(
            q.get_all("changes"),
            vec!["ENV COMMITTED=1", "CMD [\"cat\"]"]
        );
        assert_eq!(q.get_all("names"), vec!["busybox", "tr-committed:latest"]);
    }

    #[test]
    fn integers() {
        let q = Query::parse("limit=-1&t=10&bad=x&empty=");
        assert_eq!(q.i64("limit").unwrap(), Some(-1));
        assert_eq!(q.i64("t").unwrap(), Some(10));
        assert_eq!(q.i64("empty").unwrap(), None);
        assert_eq!(q.i64("absent").unwrap(), None);
        assert_eq!(
            q.i64("bad").unwrap_err().status,
            http::StatusCode::BAD_REQUEST
        );
        assert!(q.u64("limit").is_err());
    }

    #[test]
    fn filters_both_shapes() {
        let q = Query::parse(
            "filters=%7B%22label%22%3A+%5B%22com.docker.compose.project%3Dtrcompose%22%5D%7D",
        );
        assert_eq!(
            q.filters().unwrap().get("label"),
            vec!["com.docker.compose.project=trcompose"]
        );
        let q = Query::parse("filters=%7B%22name%22%3A%7B%22tr-%22%3Atrue%7D%7D");
        assert_eq!(q.filters().unwrap().get("name"), vec!["tr-"]);
        assert!(Query::parse("filters=notjson").filters().is_err());
    }

    proptest! {
        #[test]
        fn bool_parsing_matches_docker(s in ".{0,8}") {
            let expected = !["", "0", "no", "false", "none"]
                .contains(&s.trim().to_ascii_lowercase().as_str());
            prop_assert_eq!(parse_bool(&s), expected);
        }

        #[test]
        fn known_spellings(v in prop::sample::select(vec!["1", "true", "True", "TRUE", " yes "])) {
            prop_assert!(parse_bool(v));
        }

        #[test]
        fn known_false_spellings(v in prop::sample::select(vec!["0", "false", "False", "", "no", "None"])) {
            prop_assert!(!parse_bool(v));
        }

        #[test]
        fn query_parse_never_panics(s in ".{0,64}") {
            let q = Query::parse(&s);
            let _ = q.filters();
            let _ = q.i64("a");
        }
    }
}
