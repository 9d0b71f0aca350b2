//! The node's network as seen and driven from Rust: network namespaces,
//! links, routes, neighbours and FDB entries over rtnetlink, notifications
//! when they change ([`monitor`]), ICMP echo ([`ping`]), the node's files at
//! their real paths ([`mounts`]), and CNI plugins run by the exec protocol.
//!
//! Key design decision: nothing here ever moves a thread it does not own
//! into another namespace, and nothing runs in the host's namespace unless
//! the caller says so. Namespace work happens on dedicated threads behind a
//! guard that returns them on every exit path ([`netns`]); netlink sockets
//! are opened inside the target namespace and then used from anywhere
//! ([`link`] reads, [`configure`] writes); CNI plugins are started directly
//! inside a chosen "host" namespace ([`cni`]), so a test, a lab or a
//! [`probe`] can run real plugins without touching the real node. Mount
//! namespaces follow the same rule: [`mounts`] changes only a thread it is
//! given or makes.

pub mod cni;
pub mod configure;
pub mod link;
pub mod monitor;
pub mod mounts;
pub mod netns;
pub mod ping;
pub mod probe;

pub use link::{Link, Netlink};
pub use netns::Netns;
