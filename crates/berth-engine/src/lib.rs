//! berth-engine: see docs/architecture.md.
