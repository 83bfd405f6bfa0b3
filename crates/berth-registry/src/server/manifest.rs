//! Manifest validation: which documents the registry accepts, and what they reference.
//!
//! Accepted: OCI image manifests and indexes, Docker schema 2 manifests and manifest lists.
//! Refused (CVE-2021-41190): a document whose `mediaType` disagrees with the Content-Type it
//! was sent with, and a document with both `manifests` and `layers`.

use std::collections::BTreeMap;

use berth_image::digest::Digest;
use serde::{Deserialize, Serialize};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("unsupported manifest schemaVersion {0}: only 2 is supported")]
    SchemaVersion(i64),
    #[error("Docker schema 1 manifests are not supported; push with a current client")]
    Schema1,
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("manifest mediaType {body:?} does not match the Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("manifest has both \"manifests\" and \"layers\"; refusing an ambiguous document")]
    Ambiguous,
    #[error("an image manifest needs a \"config\" descriptor")]
    MissingConfig,
    #[error("an index needs a \"manifests\" array")]
    MissingManifests,
    #[error("descriptor has a negative size")]
    NegativeSize,
}

/// A content descriptor as it appears in manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Image manifest or index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Index,
}

/// A validated manifest: its media type and everything it points at.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub kind: Kind,
    /// Config and layers (image manifests).
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes).
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// Blobs that must exist in the repository: config and layers that are not foreign
    /// (a layer with `urls` is fetched from elsewhere).
    pub fn required_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().filter(|d| d.urls.is_none()))
    }

    /// What the referrers API lists for this manifest: `artifactType`, else the config's media type.
    pub fn effective_artifact_type(&self) -> Option<String> {
        self.artifact_type.clone().or_else(|| {
            self.config
                .as_ref()
                .map(|c| c.media_type.clone())
                .filter(|m| !m.is_empty())
        })
    }
}

/// The media type part of a Content-Type header (parameters and case dropped).
pub fn base_media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Validates `bytes` sent with `content_type` (if any).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let header = content_type
        .map(base_media_type)
        .filter(|m| !m.is_empty() && m != "application/json" && m != "application/octet-stream");
    if let Some(h) = &header {
        if h == DOCKER_SCHEMA1 || h == DOCKER_SCHEMA1_SIGNED {
            return Err(ManifestError::Schema1);
        }
    }
    match raw.schema_version {
        Some(2) => {}
        Some(1) => return Err(ManifestError::Schema1),
        Some(v) => return Err(ManifestError::SchemaVersion(v)),
        None => return Err(ManifestError::SchemaVersion(0)),
    }
    if raw.manifests.is_some() && (raw.layers.is_some() || raw.config.is_some()) {
        return Err(ManifestError::Ambiguous);
    }
    if let (Some(body), Some(h)) = (&raw.media_type, &header) {
        if body != h {
            return Err(ManifestError::MediaTypeMismatch {
                body: body.clone(),
                header: h.clone(),
            });
        }
    }
    let media_type = match (raw.media_type.clone(), header) {
        (Some(m), _) => m,
        (None, Some(h)) => h,
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    let kind = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Image,
        OCI_INDEX | DOCKER_LIST => Kind::Index,
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => return Err(ManifestError::Schema1),
        other => return Err(ManifestError::UnsupportedMediaType(other.to_string())),
    };
    let (config, layers, manifests) = match kind {
        Kind::Image => {
            if raw.manifests.is_some() {
                return Err(ManifestError::Ambiguous);
            }
            let config = raw.config.ok_or(ManifestError::MissingConfig)?;
            (Some(config), raw.layers.unwrap_or_default(), Vec::new())
        }
        Kind::Index => {
            if raw.layers.is_some() || raw.config.is_some() {
                return Err(ManifestError::Ambiguous);
            }
            let m = raw.manifests.ok_or(ManifestError::MissingManifests)?;
            (None, Vec::new(), m)
        }
    };
    let all = config
        .iter()
        .chain(layers.iter())
        .chain(manifests.iter())
        .chain(raw.subject.iter());
    for d in all {
        if d.size < 0 {
            return Err(ManifestError::NegativeSize);
        }
    }
    Ok(Manifest {
        media_type,
        kind,
        config,
        layers,
        manifests,
        subject: raw.subject,
        artifact_type: raw.artifact_type,
        annotations: raw.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(n: u8) -> String {
        Digest::sha256_of(&[n]).to_string()
    }

    fn image(mt: Option<&str>) -> String {
        let mt = mt
            .map(|m| format!("\"mediaType\":\"{m}\","))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":3}},{{"mediaType":"x","digest":"{}","size":3,"urls":["http://x"]}}]}}"#,
            d(1),
            d(2),
            d(3)
        )
    }

    #[test]
    fn accepts_image_and_lists_required_blobs() {
        let m = parse(image(Some(OCI_MANIFEST)).as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, Kind::Image);
        assert_eq!(m.required_blobs().count(), 2);
        let m = parse(image(None).as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        let m = parse(image(None).as_bytes(), None).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(
            m.effective_artifact_type().as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn refuses_mismatch_and_ambiguity() {
        assert!(matches!(
            parse(image(Some(OCI_MANIFEST)).as_bytes(), Some(OCI_INDEX)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        let both = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[],"layers":[]}}"#
        );
        assert_eq!(
            parse(both.as_bytes(), Some(OCI_INDEX)).unwrap_err(),
            ManifestError::Ambiguous
        );
        assert!(parse(b"{", None).is_err());
        assert!(parse(b"[]", None).is_err());
        assert_eq!(
            parse(br#"{"schemaVersion":1}"#, None).unwrap_err(),
            ManifestError::Schema1
        );
        assert!(matches!(
            parse(
                br#"{"schemaVersion":2,"mediaType":"text/plain","config":{"digest":"sha256:0","size":1}}"#,
                None
            ),
            Err(ManifestError::Json(_))
        ));
        // Duplicate keys are refused rather than silently resolved.
        let dup = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","mediaType":"{OCI_MANIFEST}","manifests":[]}}"#
        );
        assert!(parse(dup.as_bytes(), None).is_err());
    }

    #[test]
    fn index_with_subject() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","artifactType":"a/b","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":9}}}}"#,
            d(1),
            d(2)
        );
        let m = parse(doc.as_bytes(), Some(&format!("{OCI_INDEX}; charset=utf-8"))).unwrap();
        assert_eq!(m.kind, Kind::Index);
        assert_eq!(m.manifests.len(), 1);
        assert_eq!(m.subject.as_ref().unwrap().digest.to_string(), d(2));
        assert_eq!(m.effective_artifact_type().as_deref(), Some("a/b"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), ct in ".{0,40}") {
            let _ = parse(&bytes, Some(&ct));
        }

        #[test]
        fn parser_never_panics_on_jsonish(s in r#"\{("[a-zA-Z]{1,12}":(2|"[a-z./+]{0,20}"|\[\]|\{\}|null),?){0,6}\}"#) {
            let _ = parse(s.as_bytes(), None);
        }
    }
}
