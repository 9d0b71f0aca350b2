//! The node guardian's operations on flannel's node-local state.
//!
//! `restore` (before k3s on every boot), `backup`, `regenerate` and `status`
//! all follow one shape: gather what the host, the store and (within a time
//! bound) the API say into plain values, let a pure function decide, then
//! carry the decision out with atomic writes. The decisions are where the
//! judgement lives (which source to trust, when to refuse) and they are
//! tested with plain data; the gathering and writing stay at the edges.
//!
//! The rule every operation honours: a valid file is never overwritten
//! without being asked, another node's backup is never used, and nothing on
//! the boot path waits longer than its bound.

pub mod backup;
pub mod check;
pub mod host;
pub mod leases;
pub mod live;
pub mod observe;
pub mod paths;
pub mod probe;
pub mod regenerate;
pub mod restore;
pub mod settings;
pub mod status;

pub use settings::{Profile, Settings};
