//! Image wire types: list, inspect, history, delete, distribution inspect.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ContainerConfig, GraphDriverData};

wire! {
    /// One item of `GET /images/json`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ImageSummary {
        /// `-1` when not computed.
        pub containers: i64,
        /// Unix seconds.
        pub created: i64,
        pub id: String,
        pub labels: Option<BTreeMap<String, String>>,
        pub parent_id: String,
        pub repo_digests: Option<Vec<String>>,
        pub repo_tags: Option<Vec<String>>,
        /// `-1` when not computed.
        pub shared_size: i64,
        pub size: i64,
        pub virtual_size: i64,
    }
}

wire! {
    /// `GET /images/{name}/json`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ImageInspect {
        pub id: String,
        pub repo_tags: Option<Vec<String>>,
        pub repo_digests: Option<Vec<String>>,
        pub parent: String,
        pub comment: String,
        /// RFC 3339 with nanoseconds.
        pub created: String,
        pub container: String,
        pub container_config: Option<ContainerConfig>,
        pub docker_version: String,
        pub author: String,
        pub config: Option<ContainerConfig>,
        pub architecture: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub variant: String,
        pub os: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub os_version: String,
        pub size: i64,
        pub virtual_size: i64,
        pub graph_driver: GraphDriverData,
        #[serde(rename = "RootFS")]
        pub root_fs: RootFs,
        pub metadata: ImageMetadata,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct RootFs {
        #[serde(rename = "Type")]
        pub kind: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub layers: Option<Vec<String>>,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub base_layer: String,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ImageMetadata {
        /// RFC 3339, or `0001-01-01T00:00:00Z` when never tagged.
        pub last_tag_time: String,
    }
}

wire! {
    /// One item of `GET /images/{name}/history`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct HistoryItem {
        pub comment: String,
        /// Unix seconds.
        pub created: i64,
        pub created_by: String,
        /// `sha256:…` or `<missing>`.
        pub id: String,
        pub size: i64,
        pub tags: Option<Vec<String>>,
    }
}

wire! {
    /// One item of `DELETE /images/{name}`: `{"Untagged":"…"}` or `{"Deleted":"sha256:…"}`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ImageDeleteResponseItem {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub untagged: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub deleted: Option<String>,
    }
}

impl ImageDeleteResponseItem {
    pub fn untagged(reference: impl Into<String>) -> Self {
        Self {
            untagged: Some(reference.into()),
            deleted: None,
        }
    }

    pub fn deleted(id: impl Into<String>) -> Self {
        Self {
            untagged: None,
            deleted: Some(id.into()),
        }
    }
}

wire! {
    /// `GET /distribution/{name}/json`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct DistributionInspect {
        pub descriptor: OciDescriptor,
        pub platforms: Vec<OciPlatform>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OciDescriptor {
        pub media_type: String,
        pub digest: String,
        pub size: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub urls: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub annotations: Option<BTreeMap<String, String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub platform: Option<OciPlatform>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct OciPlatform {
        pub architecture: String,
        pub os: String,
        #[serde(rename = "os.version", skip_serializing_if = "String::is_empty")]
        pub os_version: String,
        #[serde(rename = "os.features", skip_serializing_if = "Option::is_none")]
        pub os_features: Option<Vec<String>>,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub variant: String,
    }
}
