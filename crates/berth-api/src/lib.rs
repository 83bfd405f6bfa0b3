//! berth-api: see docs/architecture.md.
