//! The hook through which `rebootguard verify` checks a rebooted node
//! before the rollout moves on. Until a verifier is plugged in, the
//! network step rests on `Ready` and the agent's `PodNetworkReady` of the
//! new boot (the state machine checks both either way).

use std::future::Future;
use std::pin::Pin;

/// Checks that pods on a node really work (a probe pod: an IP in the
/// node's podCIDR, DNS, the other nodes reachable).
pub trait Verifier: Send + Sync {
    /// `Ok` when `node` passes; `Err` names the failing check and its
    /// evidence. Called repeatedly while the rollout waits for the node's
    /// network, so it must be bounded in time and clean up after itself.
    fn verify<'a>(
        &'a self,
        node: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}
