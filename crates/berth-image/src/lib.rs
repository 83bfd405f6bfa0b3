//! berth-image: references, content store, image configs, overlay2 layer snapshots,
//! safe tar apply/diff, save/load/import. See docs/architecture.md.

pub mod archive;
pub mod cas;
pub mod changes;
pub mod compress;
pub mod config;
pub mod digest;
pub mod error;
pub mod fsutil;
pub mod layer;
pub mod reference;
pub mod rwlayer;
pub mod store;
pub mod tarapply;

#[cfg(test)]
pub(crate) mod testutil;

pub use digest::Digest;
pub use error::{ErrorKind, ImageError};
pub use reference::Reference;
pub use store::{DeleteItem, HistoryItem, Image, ImageLayer, ImageStore};
