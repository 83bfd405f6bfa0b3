//! berth-registry: OCI distribution for berth — the registry server behind
//! `berth registry serve` ([`server`]) and the registry client the daemon pulls, pushes and
//! logs in with ([`client`]). See docs/architecture.md.

pub mod client;
pub mod server;
