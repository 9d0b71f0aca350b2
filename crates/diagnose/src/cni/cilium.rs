//! Cilium: its CNI plugin asks the agent on the node, over
//! `/var/run/cilium/cilium.sock`, for an address and an endpoint; with the
//! agent down or overloaded every sandbox on the node fails.

use serde::Serialize;

use super::{Sandbox, has, restart_agent};
use crate::fix::Fix;
use crate::snapshot::Snapshot;

/// A Cilium CNI failure.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "failure", rename_all = "camelCase")]
pub enum Failure {
    /// `unable to connect to Cilium daemon ... cilium.sock`: the agent is
    /// not running (or not yet) on the node.
    AgentUnreachable,
    /// The agent answers but cannot allocate an address (`range is full`).
    IpamExhausted,
    /// The agent fails to create the endpoint (`Unable to create endpoint`).
    EndpointCreation,
}

impl Failure {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Failure::AgentUnreachable => "the agent does not answer on the node (cilium.sock)",
            Failure::IpamExhausted => "the agent has no free pod address on the node",
            Failure::EndpointCreation => "the agent fails to create pod endpoints",
        }
    }
}

pub(super) fn classify(message: &str) -> Option<Sandbox> {
    let failure = if has(
        message,
        &[
            "unable to connect to cilium daemon",
            "cilium.sock",
            "cilium agent client",
        ],
    ) {
        Failure::AgentUnreachable
    } else if has(message, &["unable to allocate ip via local cilium agent"]) {
        Failure::IpamExhausted
    } else if has(message, &["unable to create endpoint"])
        || (has(message, &["cilium"]) && has(message, &["endpoint"]))
    {
        Failure::EndpointCreation
    } else {
        return None;
    };
    Some(Sandbox::Cilium(failure))
}

/// The agent's label in Cilium's Helm chart.
const AGENT: (&str, &str) = ("k8s-app", "cilium");

pub(super) fn fix(cause: &Sandbox, nodes: &[String], snapshot: &Snapshot) -> Option<Vec<Fix>> {
    let Sandbox::Cilium(failure) = cause else {
        return None;
    };
    let mut fix = vec![Fix::cluster(
        "see the Cilium agents' state",
        "kubectl -n kube-system exec ds/cilium -- cilium-dbg status --brief; kubectl get pods -A -l k8s-app=cilium -o wide",
    )];
    match failure {
        Failure::AgentUnreachable | Failure::EndpointCreation => {
            fix.extend(restart_agent(snapshot, nodes, "the Cilium agent", AGENT));
        }
        Failure::IpamExhausted => {
            fix.push(Fix::cluster(
                "see each node's pod CIDRs and how many addresses are used",
                "kubectl get ciliumnodes -o custom-columns=NAME:.metadata.name,CIDRS:.spec.ipam.podCIDRs,USED:.status.ipam.used",
            ));
        }
    }
    Some(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciliums_own_wordings() {
        let cases = [
            (
                "plugin type=\"cilium-cni\" failed (add): unable to connect to Cilium daemon: failed to create cilium agent client after 30.000000 seconds timeout: Get \"http:///var/run/cilium/cilium.sock/v1/config\": dial unix /var/run/cilium/cilium.sock: connect: no such file or directory\nIs the agent running?",
                Failure::AgentUnreachable,
            ),
            (
                "plugin type=\"cilium-cni\" failed (add): unable to allocate IP via local cilium agent: [POST /ipam][502] postIpamFailure  range is full",
                Failure::IpamExhausted,
            ),
            (
                "plugin type=\"cilium-cni\" failed (add): Unable to create endpoint: Cilium API client timeout exceeded",
                Failure::EndpointCreation,
            ),
        ];
        for (m, f) in cases {
            assert_eq!(classify(m), Some(Sandbox::Cilium(f)), "{m}");
        }
        assert_eq!(classify("plugin type=\"calico\" failed (add)"), None);
    }
}
