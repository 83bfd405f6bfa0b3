//! berth-image: references, content store, image configs, overlay2 layer snapshots,
//! safe tar apply/diff, save/load/import. See docs/architecture.md.

pub mod digest;
pub mod reference;

pub use digest::Digest;
pub use reference::Reference;
