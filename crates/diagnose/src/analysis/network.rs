//! The pod network of each node: its dominant sandbox failure class (see
//! `crate::cni`) becomes the node network's cause and title, and a CNI
//! that runs as pods (flannel's, Calico's or Cilium's DaemonSet) failing on
//! the node is why.

use super::{Key, Run};
use crate::clean;
use crate::config::Role;
use crate::model::ObjectRef;
use crate::report::{Cause, Evidence};

/// Node network nodes: title from their dominant cause.
pub(super) fn node_networks(run: &mut Run<'_>) {
    let Run {
        g,
        boots,
        node_sandbox,
        sandbox_totals,
        sandbox_pods,
        node_cause,
        ..
    } = run;
    for (node, causes) in node_sandbox.iter() {
        let Some((cause, _)) = causes
            .iter()
            .max_by_key(|(c, n)| (**n, std::cmp::Reverse((*c).clone())))
        else {
            continue;
        };
        node_cause.insert(node.to_string(), cause.clone());
        let key = Key::NodeNetwork(node.to_string());
        let n = g.node(&key, String::new);
        let pods = sandbox_pods.get(node).copied().unwrap_or(0);
        if let Some(total) = sandbox_totals.remove(node) {
            n.evidence.push(total);
        }
        n.title = format!(
            "node {node}: {}, {pods} pod sandbox(es) cannot get networking",
            cause.describe()
        );
        n.own = Some(Cause::Cni { cni: cause.clone() });
        if let Some(b) = boots
            .get(*node)
            .filter(|b| b.evidence == clean::BootEvidence::RebootedEvent)
        {
            n.evidence.push(Evidence {
                object: ObjectRef::new("Node", "", node),
                reason: "Rebooted".into(),
                message: format!("node {node} rebooted, boot id {}", b.boot_id),
                count: 1,
                first_seen: Some(b.since),
                last_seen: Some(b.since),
            });
        }
    }
}

/// A CNI that runs as pods (flannel's DaemonSet outside k3s): its failing
/// pod on a node is why that node's sandboxes fail.
pub(super) fn cni_pods(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let config = run.config;
    let Run {
        g,
        pod_workload,
        node_cause,
        ..
    } = run;
    for comp in config.components.iter().filter(|c| c.role == Role::Cni) {
        for pod in snapshot.pods.iter().filter(|p| comp.matches(p)) {
            let node = pod.spec.node_name.as_str();
            if !node_cause.contains_key(node) {
                continue;
            }
            if let Some(w) =
                pod_workload.get(&(pod.metadata.namespace.as_str(), pod.metadata.name.as_str()))
            {
                g.edge(
                    w,
                    &Key::NodeNetwork(node.into()),
                    "the CNI's own pod on this node is not running",
                );
            }
        }
    }
}
