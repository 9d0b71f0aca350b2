//! Rolling reboots that move on only when the rebooted node really works.
//!
//! This crate holds the judgement, pure and tested with plain values: which
//! nodes go and in what order ([`plan`]), and the gates a node must pass
//! before it goes ([`gates`]): the other nodes healthy, server quorum held,
//! no volume left without a healthy replica, pod disruption budgets, alerts
//! and the maintenance window. The adapters that read the cluster and act
//! on it sit above it.

pub mod gates;
pub mod plan;
