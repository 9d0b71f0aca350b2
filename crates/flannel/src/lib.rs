//! flannel's node-local state as pure data: `subnet.env` and `net-conf.json`.
//!
//! This crate knows the file formats and nothing about where they live or how
//! they are fetched. It answers four questions with plain values in and plain
//! values out, so the rest of rebootguard can be tested without a node:
//!
//! - what would the flannel CNI plugin make of these bytes? ([`subnet_env::parse`],
//!   which follows the plugin's reader line for line, including its quirks);
//! - is this a file flannel itself could have written? ([`SubnetEnv::validate`],
//!   stricter than the plugin);
//! - what exact bytes would flanneld or k3s write? ([`SubnetEnv::render`]);
//! - what should the file be for this node? ([`derive::derive`], from the
//!   Node's podCIDRs, `net-conf.json` and the backend's MTU rule).
//!
//! The key design decision: parsing never fails on content. It returns what
//! the plugin would have read together with every [`Problem`] found, each
//! carrying the plugin's own wording where the plugin has one, so callers can
//! both decide (valid or not) and explain (why, and how to fix it).

pub mod annotations;
pub mod delegate;
pub mod derive;
pub mod net_conf;
pub mod subnet_env;

pub use annotations::{Announcement, Mac};
pub use derive::{Mtu, derive};
pub use net_conf::{Backend, NetConf};
pub use subnet_env::{Problem, Severity, SubnetEnv};
