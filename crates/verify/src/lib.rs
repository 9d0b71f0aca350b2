//! `rebootguard verify`: proves that a pod on each node really works, the
//! post-mortem's "verify that a pod can be created on each node before
//! declaring the cluster healthy".
//!
//! A probe pod is pinned to every selected node; inside its own network
//! namespace it checks its address against the node's podCIDR, resolves
//! names through cluster DNS, and reaches the probes on the other nodes
//! (found through a headless Service). It reports through the Kubernetes
//! API only (its termination message), and verify never reaches a pod IP
//! itself: what it learns is what a workload on that node would live.
//!
//! Key design decision: the judgement is pure and sits below the I/O.
//! [`spec`] builds the manifests from the node list and run id, [`judge`]
//! turns pod statuses, termination messages and sandbox events into a node
//! × check verdict, [`render`] prints it; [`probe`] is the in-pod side
//! (std networking, the system resolver); [`run`] is the thin kube-rs
//! adapter that creates, watches and always deletes.

pub mod judge;
pub mod message;
pub mod probe;
pub mod render;
pub mod run;
pub mod spec;

/// Label on everything a run creates: the run's id.
pub const RUN_LABEL: &str = "rebootguard.io/verify-run";
/// Label on everything any run creates (finds leftovers of killed runs).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The value of [`NAME_LABEL`].
pub const NAME: &str = "rebootguard-verify";
/// Annotation: when the run that created the object is over for sure
/// (RFC 3339); a later run deletes objects past it.
pub const EXPIRES_ANNOTATION: &str = "rebootguard.io/verify-expires";
/// The namespace probes run in, as in deploy/kubernetes.
pub const DEFAULT_NAMESPACE: &str = "rebootguard";
/// The probe's image: rebootguard's own (no image is published yet; build
/// one from the release binary, or pass `--image`).
pub const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/rebootguard/rebootguard:",
    env!("CARGO_PKG_VERSION")
);
/// The TCP port probes listen on for each other.
pub const DEFAULT_PORT: u16 = 9479;
/// Where the kubelet reads the termination message, by default.
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// The kubelet keeps at most this many bytes of a termination message.
pub const MESSAGE_LIMIT: usize = 4096;
