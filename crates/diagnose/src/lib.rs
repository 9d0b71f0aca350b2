//! rebootguard-diagnose: finds the first domino of a cascading cluster
//! failure, and plans the cleaning of the stale pods a reboot leaves.
//!
//! Pure: bytes in ([`load`]), a [`Snapshot`] in memory, a [`Report`] out
//! ([`analyse`]), strings out ([`render`]). No clock (the caller passes
//! `now`), no network, no filesystem: the live collector and the CLI sit on
//! top of this crate.
//!
//! Key design decision: symptoms are aggregated per *workload* and per
//! *node* before the causal graph is built, and every rule joins through
//! indexes (pods by node, events by object, claims by name), so the analysis
//! is linear in the snapshot and its graph stays small enough to draw, even
//! for 150,000 pods.

pub mod load;
pub mod model;
pub mod snapshot;

pub use load::{load, load_reader};
pub use snapshot::Snapshot;
pub mod analysis;
pub mod classify;
pub mod clean;
pub mod config;
pub mod render;
pub mod report;
mod stream;

pub use analysis::analyse;
pub use config::Config;
pub use report::Report;
