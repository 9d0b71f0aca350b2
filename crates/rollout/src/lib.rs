//! Rolling reboots that move on only when the rebooted node really works.
//!
//! This crate holds the judgement, pure and tested with plain values: which
//! nodes go and in what order ([`plan`]), the gates a node must pass
//! before it goes ([`gates`]): the other nodes healthy, server quorum held,
//! no volume left without a healthy replica, pod disruption budgets, alerts
//! and the maintenance window; one node's way through its reboot as a state
//! machine with the clock passed in ([`machine`]); and what a rollout
//! leaves on the cluster so that a rerun resumes it ([`progress`]); and the
//! controller's choice of what to do next ([`schedule`]). The adapters that
//! read the cluster and act on it sit above it.

pub mod gates;
pub mod machine;
pub mod phase;
pub mod plan;
pub mod progress;
pub mod schedule;
pub mod window;
