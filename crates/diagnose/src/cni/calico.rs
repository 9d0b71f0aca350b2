//! Calico: the CNI plugin needs calico-node to have run on the node (it
//! writes `/var/lib/calico/nodename`) and reads its datastore (the API
//! server, with a token calico-node keeps fresh in the plugin's kubeconfig)
//! on every ADD.

use serde::Serialize;

use super::{Sandbox, has, restart_agent};
use crate::fix::Fix;
use crate::snapshot::Snapshot;

/// A Calico CNI failure.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "failure", rename_all = "camelCase")]
pub enum Failure {
    /// `stat /var/lib/calico/nodename: no such file or directory`:
    /// calico-node has not run on the node since it booted.
    NodenameMissing,
    /// The plugin's token is refused (`connection is unauthorized`): it
    /// expired while calico-node was not there to renew it.
    DatastoreUnauthorized,
    /// The plugin cannot reach the API server (`error getting
    /// ClusterInformation: ... i/o timeout`).
    DatastoreUnreachable,
}

impl Failure {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Failure::NodenameMissing => {
                "/var/lib/calico/nodename missing (calico-node not running on the node)"
            }
            Failure::DatastoreUnauthorized => {
                "the CNI plugin's token is refused by the datastore (Unauthorized)"
            }
            Failure::DatastoreUnreachable => "the CNI plugin cannot reach its datastore",
        }
    }
}

pub(super) fn classify(message: &str) -> Option<Sandbox> {
    let failure = if has(
        message,
        &["/var/lib/calico/nodename", "calico/node container"],
    ) {
        Failure::NodenameMissing
    } else if has(message, &["clusterinformation", "crd.projectcalico.org"]) {
        if has(message, &["unauthorized", "forbidden"]) {
            Failure::DatastoreUnauthorized
        } else {
            Failure::DatastoreUnreachable
        }
    } else if has(message, &["plugin type=\"calico\"", "plugin type=calico"])
        && has(message, &["connection is unauthorized"])
    {
        Failure::DatastoreUnauthorized
    } else {
        return None;
    };
    Some(Sandbox::Calico(failure))
}

/// calico-node's label in both the manifest and the operator install.
const AGENT: (&str, &str) = ("k8s-app", "calico-node");

pub(super) fn fix(cause: &Sandbox, nodes: &[String], snapshot: &Snapshot) -> Option<Vec<Fix>> {
    let Sandbox::Calico(failure) = cause else {
        return None;
    };
    let mut fix = vec![Fix::cluster(
        "see calico-node's state on every node",
        "kubectl get pods -A -l k8s-app=calico-node -o wide",
    )];
    match failure {
        Failure::NodenameMissing | Failure::DatastoreUnauthorized => {
            // calico-node writes the nodename file and renews the plugin's
            // token at start.
            fix.extend(restart_agent(snapshot, nodes, "calico-node", AGENT));
        }
        Failure::DatastoreUnreachable => {
            fix.push(Fix::cluster(
                "check that the API server's Service has endpoints the nodes can reach",
                "kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes",
            ));
            for n in nodes {
                fix.push(Fix::on_node(
                    n,
                    format!("see whether {n} peers and reaches its datastore"),
                    "calicoctl node status",
                ));
            }
        }
    }
    Some(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calicos_own_wordings() {
        let cases = [
            (
                "failed to setup network for sandbox \"a1\": plugin type=\"calico\" failed (add): stat /var/lib/calico/nodename: no such file or directory: check that the calico/node container is running and has mounted /var/lib/calico/",
                Failure::NodenameMissing,
            ),
            (
                "plugin type=\"calico\" failed (add): error getting ClusterInformation: connection is unauthorized: Unauthorized",
                Failure::DatastoreUnauthorized,
            ),
            (
                "plugin type=\"calico\" failed (add): error getting ClusterInformation: Get \"https://10.96.0.1:443/apis/crd.projectcalico.org/v1/clusterinformations/default\": dial tcp 10.96.0.1:443: i/o timeout",
                Failure::DatastoreUnreachable,
            ),
        ];
        for (m, f) in cases {
            assert_eq!(classify(m), Some(Sandbox::Calico(f)), "{m}");
        }
        assert_eq!(classify("plugin type=\"cilium-cni\" failed (add)"), None);
    }

    #[test]
    fn the_cause_serialises_with_its_cni_and_failure() {
        let json = serde_json::to_value(Sandbox::Calico(Failure::NodenameMissing)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "calico", "failure": "nodenameMissing"})
        );
    }
}
