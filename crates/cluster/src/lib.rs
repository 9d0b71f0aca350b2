//! rebootguard's access to the Kubernetes API.
//!
//! Thin on purpose: find credentials the way an operator expects
//! ([`client`]: kubectl's order, then k3s's own kubeconfigs, so a node can
//! reach its API before anyone configured rebootguard), and read the few
//! facts the node guardian needs ([`node`]: a Node's podCIDRs and boot ID,
//! kube-flannel's net-conf), and collect what diagnosis reads ([`collect`]);
//! and write the few things the node agent owns without touching anybody
//! else's ([`condition`], [`taint`], [`lease`]), and the reboot handshake
//! between an orchestrator and a node's agent ([`reboot`]).
//! Every call takes a time bound: callers on the boot path must never wait
//! on an API that may not be there.

pub mod client;
pub mod collect;
pub mod condition;
pub mod lease;
pub mod node;
pub mod reboot;
pub mod taint;

pub use client::{Discovery, Source, connect};
pub use node::{NodeView, node_view};
