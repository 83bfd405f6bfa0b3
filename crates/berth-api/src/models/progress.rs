//! Docker's JSON progress messages (pull, push, load, import, build), one per line.

use serde::{Deserialize, Serialize};

use super::is_zero_i64;

wire! {
    /// One line of a JSON message stream (Docker's `jsonmessage.JSONMessage`).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct JsonMessage {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub stream: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub status: Option<String>,
        #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
        pub progress_detail: Option<ProgressDetail>,
        #[serde(rename = "progress", skip_serializing_if = "Option::is_none")]
        pub progress: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub time: i64,
        #[serde(rename = "timeNano", skip_serializing_if = "is_zero_i64")]
        pub time_nano: i64,
        #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
        pub error_detail: Option<JsonError>,
        #[serde(rename = "error", skip_serializing_if = "Option::is_none")]
        pub error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub aux: Option<serde_json::Value>,
    }
}

wire! {
    /// `progressDetail`: `{}` or `{"current":19968,"total":1984132}`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ProgressDetail {
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub current: i64,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub total: i64,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub start: i64,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub units: String,
    }
}

wire! {
    /// `errorDetail`: `{"code":42,"message":"…"}`; `code` is omitted when 0.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct JsonError {
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub code: i64,
        pub message: String,
    }
}

impl JsonMessage {
    /// `{"status":"…"}`.
    pub fn status(status: impl Into<String>) -> Self {
        Self {
            status: Some(status.into()),
            ..Self::default()
        }
    }

    /// `{"status":"…","progressDetail":{},"id":"…"}`.
    pub fn status_with_id(status: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail::default()),
            id: Some(id.into()),
            ..Self::default()
        }
    }

    /// `{"stream":"…"}` (build output, `Loaded image: …`).
    pub fn stream(text: impl Into<String>) -> Self {
        Self {
            stream: Some(text.into()),
            ..Self::default()
        }
    }

    /// `{"progressDetail":{},"aux":…}`.
    pub fn aux(value: serde_json::Value) -> Self {
        Self {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(value),
            ..Self::default()
        }
    }

    /// `{"errorDetail":{"message":"…"},"error":"…"}` (with `code` when non-zero).
    pub fn error(code: i64, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error_detail: Some(JsonError {
                code,
                message: message.clone(),
            }),
            error: Some(message),
            ..Self::default()
        }
    }

    /// The error this message carries, if any (`errorDetail.message`, else `error`).
    pub fn error_message(&self) -> Option<&str> {
        match (&self.error_detail, &self.error) {
            (Some(detail), _) => Some(detail.message.as_str()),
            (None, Some(message)) => Some(message.as_str()),
            (None, None) => None,
        }
    }
}
