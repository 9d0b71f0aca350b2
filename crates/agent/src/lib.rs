//! The node agent (`rebootguard agent`): it keeps a Node condition,
//! `PodNetworkReady`, and optionally a readiness taint true to whether a pod
//! can get networking on this node, heals what it can, and alerts.
//!
//! Key design decision: the judgement is a pure state machine
//! ([`machine`]) fed with check and probe results and the clock; everything
//! else is a thin adapter that turns the node's and the API's changes into
//! inputs and carries the machine's actions out.

pub mod alert;
pub mod api;
pub mod background;
pub mod config;
pub mod files;
pub mod machine;
pub mod metrics;
pub mod netlink;
pub mod notify;
pub mod reboot;
pub mod remedy;
pub mod run;
pub mod systemd;

pub use run::run;

/// The `User-Agent` of the agent's requests.
pub const USER_AGENT: &str = concat!("rebootguard-agent/", env!("CARGO_PKG_VERSION"));
