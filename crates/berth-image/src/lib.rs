//! berth-image: local image storage for the berth daemon — references, the content store,
//! image configs, overlay2 layer snapshots, container read-write layers, safe tar apply and
//! diff, and `docker save`/`load`/`import`.
//!
//! The API is synchronous and thread-safe: every method takes `&self`, locking is internal,
//! and the engine shares one [`ImageStore`] through an `Arc`, calling it from blocking
//! threads.
//!
//! # Storage model (containerd-like)
//!
//! ```text
//! <data-root>/
//!   content/blobs/sha256/<hex>        every blob as received (layer blobs compressed or not,
//!                                     configs); written to content/ingest/<random>, hashed
//!                                     while streamed, fsynced, verified, renamed into place
//!   content/ingest/                   writes in progress; emptied at open
//!   overlay2/<chain-id-hex>/diff/     one snapshot per layer, shared by every image using it
//!   overlay2/<chain-id-hex>/meta.json {chain_id, diff_id, parent, size, tar_size}
//!   overlay2/<container-id>/          a container's diff/, work/, merged/ and rw.json
//!   overlay2/l/, overlay2/empty/      short links for the mount(2) fallback; lower dir of
//!                                     zero-layer images
//!   overlay2/.tmp-*, .trash-*         applies/deletions in progress; removed at open
//!   image/records/<image-id-hex>.json one record per image: layers (diff ID, chain ID, blob,
//!                                     media type, sizes), parent, last tag time
//!   image/repositories.json           the tag/digest index {"refs": {reference: image id}}
//!   tmp/                              spool space for load/import; emptied at open
//! ```
//!
//! The seams for later work: blobs go in through [`cas::ContentStore`], layers are applied
//! with [`ImageStore::apply_layer_blob`] / [`layer::LayerStore::apply`] (which return pinned
//! [`layer::AppliedLayer`]s), and images are recorded with [`ImageStore::create_image`].
//! Layer and blob reference counts are derived from the records (plus container layers and
//! pins of operations in progress), so they cannot drift after a crash.
//!
//! Errors are `thiserror` enums; [`ImageError::kind`] says whether an error is a 404, 409,
//! 400 or 500.

pub mod archive;
pub mod cas;
pub mod changes;
pub mod commit;
pub mod compress;
pub mod config;
pub mod crashpoint;
pub mod digest;
pub mod distmeta;
pub mod error;
pub mod fstree;
pub mod fsutil;
pub mod ingest;
pub mod layer;
pub mod pending;
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
