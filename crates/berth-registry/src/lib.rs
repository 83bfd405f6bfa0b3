//! berth-registry: the OCI distribution registry server behind `berth registry serve`
//! (see docs/architecture.md). The registry *client* will live beside [`server`] later.

pub mod server;
