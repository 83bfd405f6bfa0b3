//! Volume wire types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

wire! {
    /// `GET /volumes/{name}`, an item of `GET /volumes`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Volume {
        #[serde(skip_serializing_if = "String::is_empty")]
        pub created_at: String,
        pub driver: String,
        pub labels: Option<BTreeMap<String, String>>,
        pub mountpoint: String,
        pub name: String,
        pub options: Option<BTreeMap<String, String>>,
        pub scope: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub status: Option<BTreeMap<String, serde_json::Value>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub usage_data: Option<VolumeUsageData>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct VolumeUsageData {
        pub ref_count: i64,
        pub size: i64,
    }
}

wire! {
    /// `GET /volumes`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct VolumeListResponse {
        pub volumes: Option<Vec<Volume>>,
        pub warnings: Option<Vec<String>>,
    }
}

wire! {
    /// Body of `POST /volumes/create`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct VolumeCreateBody {
        pub name: String,
        pub driver: String,
        pub driver_opts: Option<BTreeMap<String, String>>,
        pub labels: Option<BTreeMap<String, String>>,
    }
}
