//! rebootguard-diagnose: finds the first domino of a cascading cluster
//! failure, and plans the cleaning of the stale pods a reboot leaves.
//!
//! Pure: bytes or a reader in ([`load()`], [`load_reader`]), a [`Snapshot`] in
//! memory, a [`Report`] out ([`analyse`]), strings out ([`render`]), a
//! [`clean::Plan`] for `clean-stale`. No clock (the caller passes `now`), no
//! network, no filesystem: the live collector and the CLI sit on top.
//!
//! Key design decision: symptoms are aggregated per *workload* and per
//! *node* before the causal graph is built, and every rule joins through
//! indexes built once (events by object, pods by workload, claims, CSINodes,
//! endpoints), so the analysis is linear in the snapshot and its graph stays
//! small enough to draw, even for 150,000 pods. Loading streams: objects go
//! straight from JSON into a slim model, never through a whole-file buffer
//! or a `Value` tree.

pub mod analysis;
pub mod classify;
pub mod clean;
pub mod cni;
pub mod config;
mod error;
pub mod escape;
pub mod fix;
mod kinds;
pub mod load;
pub mod model;
pub mod render;
pub mod report;
pub mod snapshot;
mod stream;
mod yaml;

pub use analysis::analyse;
pub use config::Config;
pub use load::{load, load_reader};
pub use report::Report;
pub use snapshot::Snapshot;
