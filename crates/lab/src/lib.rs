//! rebootguard's reboot lab: a k3s-shaped cluster whose control plane is
//! kubesim and whose data plane is the real Linux kernel, built to fail the
//! way real clusters fail after a reboot.
//!
//! Key design decision: emulate the control-plane processes (k3s agent,
//! embedded flannel, kubelet, node lifecycle) in this process, but never the
//! data plane. Nodes are network namespaces on a switch namespace's bridge;
//! `flannel.1` is a real VXLAN device with real FDB, neighbour and route
//! entries; pod sandboxes are real namespaces networked by executing the
//! node's real conflist and CNI plugins with the node's root mounted on
//! `/run` and `/var`. So pings, plugin errors and `rebootguard node restore`
//! meet the same kernel and files they would on a host.

pub mod agent;
pub mod api;
pub mod container;
pub mod control;
pub mod dns;
pub mod kubelet;
pub mod lab;
pub mod longhorn;
pub mod node;
pub mod power;
pub mod replay;
pub mod runtime;
pub mod sandbox;
pub mod scenario;
pub mod tasks;
pub mod workload;

pub use lab::{Lab, Options};
pub use runtime::RuntimeFault;
pub use scenario::{Fault, Scenario};
