//! whereabouts: cluster-wide IPAM for secondary networks (usually behind
//! Multus), allocating from `IPPool` objects through the API server. A
//! pool whose range is full, or reservations leaked by pods that vanished
//! with a rebooted node, fail every sandbox attaching that network.

use serde::Serialize;

use super::{Sandbox, has};
use crate::fix::Fix;
use crate::snapshot::Snapshot;

/// A whereabouts failure.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "failure", rename_all = "camelCase")]
pub enum Failure {
    /// `Could not allocate IP in range`: the pool is full (or full of
    /// leaked reservations).
    RangeExhausted,
    /// `error at storage engine`: it cannot read or update its pools.
    Storage,
}

impl Failure {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Failure::RangeExhausted => "no free address in the IP pool's range",
            Failure::Storage => "cannot read or update its IP pools",
        }
    }
}

pub(super) fn classify(message: &str) -> Option<Sandbox> {
    let failure = if has(message, &["could not allocate ip in range"]) {
        Failure::RangeExhausted
    } else if has(message, &["error at storage engine"]) {
        Failure::Storage
    } else {
        return None;
    };
    Some(Sandbox::Whereabouts(failure))
}

pub(super) fn fix(cause: &Sandbox, _nodes: &[String], _snapshot: &Snapshot) -> Option<Vec<Fix>> {
    let Sandbox::Whereabouts(failure) = cause else {
        return None;
    };
    let mut fix = vec![Fix::cluster(
        "see the pools and which pods hold their addresses",
        "kubectl get ippools.whereabouts.cni.cncf.io -A -o yaml",
    )];
    match failure {
        Failure::RangeExhausted => fix.push(Fix::cluster(
            "free reservations of pods that no longer exist (the whereabouts ip-reconciler does this on its schedule), or widen the range in the NetworkAttachmentDefinition",
            "kubectl get overlappingrangeipreservations.whereabouts.cni.cncf.io -A",
        )),
        Failure::Storage => fix.push(Fix::cluster(
            "check that whereabouts' ServiceAccount may read and update its pools",
            "kubectl auth can-i update ippools.whereabouts.cni.cncf.io -A --as=system:serviceaccount:kube-system:whereabouts",
        )),
    }
    Some(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whereabouts_wordings() {
        assert_eq!(
            classify(
                "Multus: [apps/db-0/8c1f]: error adding container to network \"storage-net\": error at storage engine: Could not allocate IP in range: ip: 192.168.50.10 / - 192.168.50.20 / range: net.IPNet{IP:net.IP{0xc0, 0xa8, 0x32, 0x0}, Mask:net.IPMask{0xff, 0xff, 0xff, 0x0}}"
            ),
            Some(Sandbox::Whereabouts(Failure::RangeExhausted))
        );
        assert_eq!(
            classify("error at storage engine: k8s get error: context deadline exceeded"),
            Some(Sandbox::Whereabouts(Failure::Storage))
        );
        assert_eq!(classify("no IP addresses available in range set"), None);
    }
}
