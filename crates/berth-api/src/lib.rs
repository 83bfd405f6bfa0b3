//! berth-api: the Docker Engine API layer (see docs/architecture.md).
//!
//! * [`models`]: Docker wire types (serde), one definition per type.
//! * [`Backend`]: the operations the engine implements; [`server::serve`] turns HTTP requests
//!   into `Backend` calls and results into Docker's responses.
//! * [`client::Client`]: a typed client over the same models, for our CLI and compose.
//!
//! This crate knows HTTP and the wire format, nothing about containers' internals.

#[macro_use]
pub mod models;

pub mod backend;
pub mod client;
mod error;
pub mod filters;
pub mod gotime;
mod hijack;
pub mod jsonfold;
pub mod query;
pub mod server;
pub mod tls;
pub mod units;
mod version;

pub use backend::*;
pub use error::ApiError;
pub use filters::{Filters, FiltersError};
pub use hijack::Hijacked;
pub use query::Query;
pub use version::{
    compare_versions, negotiate, ApiVersion, ParseVersionError, VersionError, MAX_API_VERSION,
    MIN_API_VERSION,
};

/// Where the daemon listens by default and where clients connect when nothing else is set.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
