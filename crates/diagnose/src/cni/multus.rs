//! Multus: a meta-plugin that calls the default network's plugin and each
//! attached network's, prefixing their errors with `Multus: [ns/pod/uid]:`.
//! A delegate's failure another rule knows is that rule's (tried first);
//! these are Multus's own: its default network not ready (it waits for a
//! readiness indicator file), a NetworkAttachmentDefinition that does not
//! exist, the pod it cannot read from the API, a delegate failing for a
//! reason no rule knows.

use serde::Serialize;

use super::{Sandbox, has};
use crate::escape::shell as sh;
use crate::fix::Fix;
use crate::snapshot::Snapshot;

/// A Multus failure.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "failure", rename_all = "camelCase")]
pub enum Failure {
    /// It is still waiting for the default network's readiness indicator.
    DefaultNetworkNotReady {
        /// The indicator file, when named.
        indicator: String,
    },
    /// A pod asks for a network whose NetworkAttachmentDefinition is missing.
    AttachmentMissing {
        /// The definition's name.
        network: String,
    },
    /// It cannot read the pod from the API server.
    PodLookup,
    /// A delegate plugin failed for a reason no rule knows.
    Delegate {
        /// The network being attached.
        network: String,
    },
}

impl Failure {
    pub(super) fn describe(&self) -> String {
        match self {
            Failure::DefaultNetworkNotReady { indicator } if !indicator.is_empty() => {
                format!("default network not ready (no {indicator})")
            }
            Failure::DefaultNetworkNotReady { .. } => "default network not ready".into(),
            Failure::AttachmentMissing { network } => {
                format!("NetworkAttachmentDefinition {network:?} not found")
            }
            Failure::PodLookup => "cannot read the pod from the API server".into(),
            Failure::Delegate { network } => format!("attaching network {network:?} fails"),
        }
    }
}

pub(super) fn classify(message: &str) -> Option<Sandbox> {
    if !has(message, &["multus"]) {
        return None;
    }
    let failure = if has(message, &["readinessindicatorfile"]) {
        Failure::DefaultNetworkNotReady {
            indicator: after(message, "readinessindicatorfile @ ")
                .map(|s| s.trim_end_matches('.').to_string())
                .unwrap_or_default(),
        }
    } else if has(message, &["cannot find a network-attachment-definition"]) {
        Failure::AttachmentMissing {
            network: between(message, "network-attachment-definition (", ")").unwrap_or_default(),
        }
    } else if has(message, &["error getting pod", "error waiting for pod"]) {
        Failure::PodLookup
    } else if let Some(network) = between(message, "error adding container to network \"", "\"") {
        Failure::Delegate { network }
    } else {
        return None;
    };
    Some(Sandbox::Multus(failure))
}

/// The word after `marker` (case-insensitive), up to whitespace.
fn after<'m>(message: &'m str, marker: &str) -> Option<&'m str> {
    let at = message.to_ascii_lowercase().find(marker)? + marker.len();
    message[at..].split_whitespace().next()
}

/// The text between `open` and the next `close`.
fn between(message: &str, open: &str, close: &str) -> Option<String> {
    let at = message.to_ascii_lowercase().find(open)? + open.len();
    let rest = &message[at..];
    Some(rest[..rest.find(close)?].to_string())
}

pub(super) fn fix(cause: &Sandbox, nodes: &[String], _snapshot: &Snapshot) -> Option<Vec<Fix>> {
    let Sandbox::Multus(failure) = cause else {
        return None;
    };
    let mut fix = vec![Fix::cluster(
        "read Multus's own log on the node",
        "kubectl get pods -A -l app=multus -o wide; kubectl -n kube-system logs ds/kube-multus-ds --tail=50",
    )];
    match failure {
        Failure::DefaultNetworkNotReady { indicator } => {
            for n in nodes {
                fix.push(Fix::on_node(
                    n,
                    format!("see whether the default network wrote its indicator on {n}; its CNI's own pod there is the place to look"),
                    if indicator.is_empty() {
                        "ls -l /etc/cni/net.d".to_string()
                    } else {
                        format!("ls -l {}", sh(indicator))
                    },
                ));
            }
        }
        Failure::AttachmentMissing { network } => fix.push(Fix::cluster(
            format!("create NetworkAttachmentDefinition {network:?} in the pod's namespace, or fix the pod's k8s.v1.cni.cncf.io/networks annotation"),
            "kubectl get network-attachment-definitions -A",
        )),
        Failure::PodLookup => fix.push(Fix::cluster(
            "check that Multus's ServiceAccount may read pods (its kubeconfig's token may have expired)",
            "kubectl auth can-i get pods -A --as=system:serviceaccount:kube-system:multus",
        )),
        Failure::Delegate { network } => fix.push(Fix::cluster(
            format!("see the NetworkAttachmentDefinition {network:?} and its plugin's configuration"),
            format!(
                "kubectl get network-attachment-definitions -A --field-selector metadata.name={} -o yaml",
                sh(network)
            ),
        )),
    }
    Some(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multus_own_failures() {
        assert_eq!(
            classify(
                "Multus: [default/web-1/0f3c]: have you checked that your default network is ready? still waiting for readinessindicatorfile @ /etc/cni/net.d/10-calico.conflist. pollimmediate error: timed out waiting for the condition"
            ),
            Some(Sandbox::Multus(Failure::DefaultNetworkNotReady {
                indicator: "/etc/cni/net.d/10-calico.conflist".into()
            }))
        );
        assert_eq!(
            classify(
                "Multus: [apps/db-0/8c1f]: error loading k8s delegates k8s args: TryLoadPodDelegates: error in getting k8s network for pod: GetNetworkDelegates: failed getting the delegate: getKubernetesDelegate: cannot find a network-attachment-definition (macvlan-conf) in namespace (apps): network-attachment-definitions.k8s.cni.cncf.io \"macvlan-conf\" not found"
            ),
            Some(Sandbox::Multus(Failure::AttachmentMissing {
                network: "macvlan-conf".into()
            }))
        );
        assert_eq!(
            classify("Multus: [apps/db-0/8c1f]: error getting pod: Unauthorized"),
            Some(Sandbox::Multus(Failure::PodLookup))
        );
        assert_eq!(
            classify(
                "Multus: [apps/db-0/8c1f]: error adding container to network \"sriov-net\": SRIOV-CNI failed to load netconf: LoadConf(): VF pci addr is required"
            ),
            Some(Sandbox::Multus(Failure::Delegate {
                network: "sriov-net".into()
            }))
        );
        assert_eq!(classify("plugin type=\"calico\" failed (add)"), None);
    }

    #[test]
    fn a_delegates_known_failure_is_the_delegates() {
        let m = "Multus: [shop/web-7/0a1b]: error adding container to network \"k8s-pod-network\": delegateAdd: error invoking conflistAdd - \"k8s-pod-network\": conflistAdd: error in getting result from AddNetworkList: error adding container to network \"k8s-pod-network\": stat /var/lib/calico/nodename: no such file or directory: check that the calico/node container is running and has mounted /var/lib/calico/";
        assert_eq!(
            super::super::sandbox(m),
            Sandbox::Calico(super::super::calico::Failure::NodenameMissing)
        );
    }
}
