//! berth-runtime: see docs/architecture.md.
