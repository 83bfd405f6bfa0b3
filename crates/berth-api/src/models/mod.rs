//! Docker Engine API wire types: one definition per type, shared by the server, the engine and
//! the client.
//!
//! Conventions (they mirror Docker's Go structs so that responses have the same field set as the
//! traces in `shared/docker-api-traces`):
//! * keys are PascalCase unless Docker spells them otherwise (then `rename`);
//! * Go slices and maps become `Option<Vec<_>>` / `Option<BTreeMap<_, _>>` so that `null` and
//!   `[]`/`{}` round-trip exactly (Docker emits both, depending on the field);
//! * maps are `BTreeMap` so keys come out sorted, as Go's encoder does;
//! * Go `omitempty` fields carry a `skip_serializing_if`;
//! * requests may contain unknown fields (serde ignores them) and JSON `null` for any field
//!   (docker-py sends `"Timeout": null`): every field of a struct declared through [`wire!`]
//!   treats `null` like "absent" and falls back to the field's default, like Go's decoder.
//! * durations (health checks) are nanoseconds, as on the wire.

/// Declares a wire struct whose every field accepts JSON `null` (and absence) as its default.
///
/// serde has no container-level switch for "null means default", and Docker clients send
/// `null` for all kinds of fields, so this macro adds
/// `#[serde(default, deserialize_with = "null_default")]` to each field. Hand-written because it
/// is ten lines and keeps the structs plain (no proc-macro dependency for one attribute).
macro_rules! wire {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(default, deserialize_with = "crate::models::null_default")]
                pub $field: $ty,
            )*
        }
    };
}

pub mod container;
pub mod image;
pub mod network;
pub mod progress;
pub mod system;
pub mod volume;

pub use container::*;
pub use image::*;
pub use network::*;
pub use progress::*;
pub use system::*;
pub use volume::*;

use serde::{Deserialize, Deserializer};

/// Deserializes `null` (or an absent field, through `#[serde(default)]`) as `T::default()`.
pub fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

pub(crate) fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

pub(crate) fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}

wire! {
    /// `{"Id": "..."}`: exec create, commit.
    #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct IdResponse {
        pub id: String,
    }
}

wire! {
    /// Docker's error body: `{"message":"..."}`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct ErrorResponse {
        pub message: String,
    }
}
