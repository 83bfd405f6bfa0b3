//! Manifests as a puller sees them: Docker schema 2 manifests and manifest lists, OCI image
//! manifests and indexes — validated before anything they point at is fetched.
//!
//! Refused: schema 1 (with Docker's deprecation text), documents whose `mediaType` disagrees
//! with the Content-Type they were served with or with the descriptor they were reached
//! through (CVE-2021-41190), documents with both `manifests` and `layers`, manifests over
//! 4 MiB (the limit is enforced while reading), descriptors with negative sizes or
//! unsupported digests, image manifests without a config.

use std::collections::BTreeMap;
use std::fmt;

use berth_image::digest::Digest;
use serde::{Deserialize, Serialize};

use super::error::ClientError;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Largest manifest or index accepted.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG_BYTES: usize = 8 << 20;

/// The `Accept` header values of a manifest request (Docker's set).
pub const ACCEPT: [&str; 6] = [
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    DOCKER_LIST,
    OCI_INDEX,
    DOCKER_SCHEMA1_SIGNED,
    "application/json",
];

/// Layer media types berth can pull (tar, gzip, zstd; Docker's and OCI's, including the
/// non-distributable variants).
pub const LAYER_MEDIA_TYPES: [&str; 10] = [
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

/// A content descriptor.
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
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// The size, which validation has checked is not negative.
    pub fn len(&self) -> u64 {
        self.size.max(0) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.size <= 0
    }
}

/// A platform (`linux/amd64`, `linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl Platform {
    /// This machine's platform, in OCI's names.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = if arch == "arm64" { "v8" } else { "" };
        Platform {
            architecture: arch.to_string(),
            os: std::env::consts::OS.to_string(),
            variant: variant.to_string(),
            ..Default::default()
        }
    }

    /// Parses `os[/arch[/variant]]` as `--platform` gives it; the architecture defaults to
    /// this machine's; OS and architecture are normalised as containerd does.
    pub fn parse(s: &str) -> Result<Platform, ClientError> {
        let bad = || {
            ClientError::Invalid(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let valid = |p: &str| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !parts.iter().all(|p| valid(p)) {
            return Err(bad());
        }
        let host = Platform::host();
        let os = parts[0].to_ascii_lowercase();
        let (mut arch, mut variant) = match parts.len() {
            1 => (host.architecture.clone(), host.variant.clone()),
            _ => (
                parts[1].to_ascii_lowercase(),
                parts
                    .get(2)
                    .map(|v| v.to_ascii_lowercase())
                    .unwrap_or_default(),
            ),
        };
        match arch.as_str() {
            "x86_64" | "x86-64" => {
                arch = "amd64".into();
                if variant == "v1" {
                    variant.clear();
                }
            }
            "aarch64" | "arm64" => {
                arch = "arm64".into();
                if variant.is_empty() || variant == "8" {
                    variant = "v8".into();
                }
            }
            "armhf" => {
                arch = "arm".into();
                variant = "v7".into();
            }
            "armel" => {
                arch = "arm".into();
                variant = "v6".into();
            }
            "arm" => {
                if variant.is_empty() {
                    variant = "v7".into();
                } else if matches!(variant.as_str(), "5" | "6" | "7" | "8") {
                    variant = format!("v{variant}");
                }
            }
            "i386" => arch = "386".into(),
            _ => {}
        }
        Ok(Platform {
            architecture: arch,
            os,
            variant,
            ..Default::default()
        })
    }

    /// Whether an image for `other` runs here when `self` was asked for (containerd's
    /// matcher: same OS and architecture; variants must match where `self` names one, and an
    /// arm64 entry without variant is v8).
    pub fn matches(&self, other: &Platform) -> bool {
        let other_os = other.os.to_ascii_lowercase();
        if self.os != other_os {
            return false;
        }
        let mut arch = other.architecture.to_ascii_lowercase();
        let mut variant = other.variant.to_ascii_lowercase();
        if arch == "x86_64" {
            arch = "amd64".into();
        }
        if arch == "aarch64" {
            arch = "arm64".into();
        }
        if arch == "arm64" && variant.is_empty() {
            variant = "v8".into();
        }
        if arch == "arm" && variant.is_empty() {
            variant = "v7".into();
        }
        if self.architecture != arch {
            return false;
        }
        self.variant.is_empty() || self.variant == variant
    }
}

/// An image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// A validated manifest document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Index),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    #[serde(rename = "fsLayers")]
    fs_layers: Option<serde_json::Value>,
}

/// Docker's refusal of schema 1 images.
pub fn schema1_error(reference: &str) -> ClientError {
    ClientError::Manifest(format!(
        "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of {reference} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/"
    ))
}

/// The media type part of a Content-Type (parameters dropped, lower case).
pub fn base_media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_manifest_type(t: &str) -> bool {
    matches!(t, DOCKER_MANIFEST | OCI_MANIFEST)
}

fn is_index_type(t: &str) -> bool {
    matches!(t, DOCKER_LIST | OCI_INDEX)
}

impl Manifest {
    /// Parses and validates a manifest served with `content_type` for `reference` (used in
    /// the schema 1 message).
    pub fn parse(
        bytes: &[u8],
        content_type: &str,
        reference: &str,
    ) -> Result<Manifest, ClientError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ClientError::TooLarge {
                what: format!("manifest for {reference}"),
                limit: MAX_MANIFEST_BYTES as u64,
            });
        }
        let ct = base_media_type(content_type);
        if ct == DOCKER_SCHEMA1 || ct == DOCKER_SCHEMA1_SIGNED {
            return Err(schema1_error(reference));
        }
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| ClientError::Manifest(format!("invalid manifest for {reference}: {e}")))?;
        let schema = raw
            .schema_version
            .as_ref()
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        if schema == 1 || raw.fs_layers.is_some() {
            return Err(schema1_error(reference));
        }
        if schema != 2 {
            return Err(ClientError::Manifest(format!(
                "unsupported manifest for {reference}: schemaVersion {} (only 2 is supported)",
                raw.schema_version
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "missing".into())
            )));
        }
        if raw.manifests.is_some() && (raw.layers.is_some() || raw.config.is_some()) {
            return Err(ClientError::Manifest(format!(
                "refusing the manifest for {reference}: it has both \"manifests\" and \"layers\"/\"config\", so it could be read as an index or as an image"
            )));
        }
        let body_type = raw.media_type.clone().unwrap_or_default();
        // The document's own mediaType, when present, must agree with the Content-Type
        // (when the registry sent a specific manifest type).
        let known_ct = is_manifest_type(&ct) || is_index_type(&ct);
        if !body_type.is_empty() && known_ct && body_type != ct {
            return Err(ClientError::Manifest(format!(
                "refusing the manifest for {reference}: its mediaType {body_type:?} does not match the Content-Type {ct:?} it was served with"
            )));
        }
        let media_type = if !body_type.is_empty() {
            body_type
        } else if known_ct {
            ct.clone()
        } else if raw.manifests.is_some() {
            OCI_INDEX.to_string()
        } else {
            OCI_MANIFEST.to_string()
        };
        if is_index_type(&media_type) {
            if raw.layers.is_some() || raw.config.is_some() {
                return Err(ClientError::Manifest(format!(
                    "refusing the manifest for {reference}: an index with layers"
                )));
            }
            let manifests = raw.manifests.ok_or_else(|| {
                ClientError::Manifest(format!(
                    "invalid manifest list for {reference}: no \"manifests\""
                ))
            })?;
            for d in &manifests {
                check_descriptor(d, reference)?;
            }
            return Ok(Manifest::Index(Index {
                media_type,
                manifests,
            }));
        }
        if !is_manifest_type(&media_type) {
            return Err(ClientError::Manifest(format!(
                "unsupported manifest media type {media_type:?} for {reference}"
            )));
        }
        if raw.manifests.is_some() {
            return Err(ClientError::Manifest(format!(
                "refusing the manifest for {reference}: an image manifest with \"manifests\""
            )));
        }
        let config = raw.config.ok_or_else(|| {
            ClientError::Manifest(format!("invalid manifest for {reference}: no config"))
        })?;
        check_descriptor(&config, reference)?;
        if config.len() > MAX_CONFIG_BYTES as u64 {
            return Err(ClientError::TooLarge {
                what: format!("image config {} of {reference}", config.digest),
                limit: MAX_CONFIG_BYTES as u64,
            });
        }
        let layers = raw.layers.unwrap_or_default();
        for l in &layers {
            check_descriptor(l, reference)?;
            if l.urls.is_some() {
                return Err(ClientError::Manifest(format!(
                    "layer {} of {reference} is a foreign layer (fetched from other URLs), which berth does not pull",
                    l.digest
                )));
            }
            if !l.media_type.is_empty() && !LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()) {
                return Err(ClientError::Manifest(format!(
                    "layer {} of {reference} has the unsupported media type {:?}",
                    l.digest, l.media_type
                )));
            }
        }
        Ok(Manifest::Image(Box::new(ImageManifest {
            media_type,
            config,
            layers,
        })))
    }

    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image(m) => &m.media_type,
            Manifest::Index(i) => &i.media_type,
        }
    }
}

fn check_descriptor(d: &Descriptor, reference: &str) -> Result<(), ClientError> {
    if d.size < 0 {
        return Err(ClientError::Manifest(format!(
            "invalid manifest for {reference}: descriptor {} has a negative size",
            d.digest
        )));
    }
    Ok(())
}

impl Index {
    /// The entry for `want` (the first match, in the index's order, as containerd and Docker
    /// pick), skipping attestation manifests (`unknown/unknown`).
    pub fn select(&self, want: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            is_manifest_type(&d.media_type) && d.platform.as_ref().is_some_and(|p| want.matches(p))
        })
    }

    /// The platforms listed (for `docker buildx imagetools`-like inspection).
    pub fn platforms(&self) -> Vec<Platform> {
        self.manifests
            .iter()
            .filter_map(|d| d.platform.clone())
            .filter(|p| p.os != "unknown")
            .collect()
    }
}

/// Checks that a manifest fetched through an index entry is what the entry said it is.
pub fn check_child(
    parent: &Descriptor,
    child: &Manifest,
    reference: &str,
) -> Result<(), ClientError> {
    match child {
        Manifest::Index(_) => Err(ClientError::Manifest(format!(
            "refusing the manifest {} of {reference}: an index points at another index",
            parent.digest
        ))),
        Manifest::Image(m) => {
            if !parent.media_type.is_empty() && parent.media_type != m.media_type {
                return Err(ClientError::Manifest(format!(
                    "refusing the manifest {} of {reference}: the index says {:?} but the document is {:?}",
                    parent.digest, parent.media_type, m.media_type
                )));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D1: &str = "sha256:7a9115a185e1db1ff2cab9b2e8dc78e53f33ccce17663f8ef7036e06a1bff497";
    const D2: &str = "sha256:e2ddf69e46c83fbbdb927db20840392598e587bdebd069fed159fbc2e64bb4ec";

    fn docker_manifest() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":897,"digest":"{D2}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1068886,"digest":"{D1}"}}]}}"#
        )
    }

    #[test]
    fn parses_docker_and_oci_manifests() {
        let m = Manifest::parse(docker_manifest().as_bytes(), DOCKER_MANIFEST, "x").unwrap();
        let Manifest::Image(m) = m else { panic!() };
        assert_eq!(m.config.digest.to_string(), D2);
        assert_eq!(m.layers.len(), 1);
        // OCI without mediaType in the body, identified by Content-Type
        let oci = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","size":2,"digest":"{D2}"}},"layers":[]}}"#
        );
        let m = Manifest::parse(oci.as_bytes(), OCI_MANIFEST, "x").unwrap();
        assert_eq!(m.media_type(), OCI_MANIFEST);
        // and with a generic Content-Type
        let m = Manifest::parse(oci.as_bytes(), "application/json", "x").unwrap();
        assert_eq!(m.media_type(), OCI_MANIFEST);
    }

    #[test]
    fn refuses_confusion_schema1_and_bad_documents() {
        // mediaType vs Content-Type
        let err = Manifest::parse(docker_manifest().as_bytes(), OCI_INDEX, "x").unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        // manifests and layers together
        let both = format!(
            r#"{{"schemaVersion":2,"manifests":[],"layers":[],"config":{{"mediaType":"{OCI_CONFIG}","size":2,"digest":"{D2}"}}}}"#
        );
        let err = Manifest::parse(both.as_bytes(), "application/json", "x").unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
        // schema 1
        let err = Manifest::parse(
            br#"{"schemaVersion":1,"fsLayers":[]}"#,
            DOCKER_SCHEMA1_SIGNED,
            "docker.io/library/old:1",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("schema 1 support has been removed"),
            "{err}"
        );
        assert!(err.to_string().contains("docker.io/library/old:1"), "{err}");
        let err = Manifest::parse(
            br#"{"schemaVersion":1,"fsLayers":[]}"#,
            "application/json",
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
        // too large
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(
            Manifest::parse(&big, DOCKER_MANIFEST, "x"),
            Err(ClientError::TooLarge { .. })
        ));
        // config over 8 MiB announced
        let huge_cfg = docker_manifest().replace(
            "\"size\":897",
            &format!("\"size\":{}", MAX_CONFIG_BYTES + 1),
        );
        assert!(matches!(
            Manifest::parse(huge_cfg.as_bytes(), DOCKER_MANIFEST, "x"),
            Err(ClientError::TooLarge { .. })
        ));
        // negative size, bad digest, unknown layer type, foreign layer, not JSON
        let neg = docker_manifest().replace("\"size\":1068886", "\"size\":-1");
        assert!(Manifest::parse(neg.as_bytes(), DOCKER_MANIFEST, "x").is_err());
        let bad = docker_manifest().replace(D1, "sha256:abc");
        assert!(Manifest::parse(bad.as_bytes(), DOCKER_MANIFEST, "x").is_err());
        let odd = docker_manifest().replace("diff.tar.gzip", "diff.tar.bz2");
        assert!(Manifest::parse(odd.as_bytes(), DOCKER_MANIFEST, "x").is_err());
        let foreign =
            docker_manifest().replace("\"size\":1068886", "\"size\":1,\"urls\":[\"http://x\"]");
        assert!(Manifest::parse(foreign.as_bytes(), DOCKER_MANIFEST, "x").is_err());
        assert!(Manifest::parse(b"not json", DOCKER_MANIFEST, "x").is_err());
        assert!(Manifest::parse(br#"{"schemaVersion":3}"#, DOCKER_MANIFEST, "x").is_err());
    }

    #[test]
    fn index_selects_the_platform_and_children_are_checked() {
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","size":10,"digest":"{D1}","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","size":10,"digest":"{D2}","platform":{{"architecture":"amd64","os":"linux"}}}},
              {{"mediaType":"{OCI_MANIFEST}","size":10,"digest":"{D1}","platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#
        );
        let Manifest::Index(i) = Manifest::parse(idx.as_bytes(), OCI_INDEX, "x").unwrap() else {
            panic!()
        };
        let amd = i.select(&Platform::parse("linux/amd64").unwrap()).unwrap();
        assert_eq!(amd.digest.to_string(), D2);
        let arm = i.select(&Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(arm.digest.to_string(), D1);
        assert!(i.select(&Platform::parse("linux/s390x").unwrap()).is_none());
        assert_eq!(i.platforms().len(), 2);
        // a child that is an index, or of another type than announced
        let child = Manifest::parse(idx.as_bytes(), OCI_INDEX, "x").unwrap();
        assert!(check_child(amd, &child, "x").is_err());
        let docker = Manifest::parse(docker_manifest().as_bytes(), DOCKER_MANIFEST, "x").unwrap();
        assert!(check_child(amd, &docker, "x").is_err());
    }

    #[test]
    fn platforms_parse_like_docker() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(Platform::parse("linux").unwrap().os, "linux");
        for bad in ["", "linux/", "a/b/c/d", "linux/am d64", "/amd64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        let host = Platform::host();
        assert!(host.matches(&host));
    }

    proptest! {
        #[test]
        fn manifest_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), ct in "[a-z/.+0-9-]{0,60}") {
            let _ = Manifest::parse(&bytes, &ct, "x");
        }

        #[test]
        fn manifest_parser_survives_json_shapes(
            schema in prop_oneof![Just("1"), Just("2"), Just("\"2\""), Just("null")],
            mt in prop_oneof![Just(DOCKER_MANIFEST), Just(OCI_INDEX), Just(DOCKER_LIST), Just(OCI_MANIFEST), Just("x")],
            has_layers in any::<bool>(),
            has_manifests in any::<bool>(),
            size in -3i64..3,
        ) {
            let mut s = format!(r#"{{"schemaVersion":{schema},"mediaType":"{mt}""#);
            if has_layers {
                s.push_str(&format!(r#","config":{{"mediaType":"{OCI_CONFIG}","size":{size},"digest":"{D2}"}},"layers":[]"#));
            }
            if has_manifests {
                s.push_str(&format!(r#","manifests":[{{"mediaType":"{OCI_MANIFEST}","size":{size},"digest":"{D1}"}}]"#));
            }
            s.push('}');
            let r = Manifest::parse(s.as_bytes(), mt, "x");
            if has_layers && has_manifests {
                prop_assert!(r.is_err());
            }
            if size < 0 {
                prop_assert!(r.is_err());
            }
        }

        #[test]
        fn platform_parser_never_panics(s in ".{0,40}") {
            let _ = Platform::parse(&s);
        }
    }
}
