//! Pod sandbox network failures, one module per CNI.
//!
//! Each module knows one CNI's own words for its failures (from its source
//! and issue threads) and the fix that names its own commands. A rule sees
//! the whole sandbox error: the runtime's and kubelet's wrappers around the
//! plugin's text change between versions, the plugin's text does not. The
//! CNIs that wrap others (Multus) come after the ones they delegate to, so a
//! delegate's failure is named as its own; what no rule knows is
//! [`Sandbox::Other`], keyed by its text so that each distinct error makes
//! one root per node, never one per pod.

use serde::Serialize;

use crate::fix::Fix;
use crate::model::{Node, Pod};
use crate::snapshot::Snapshot;

pub mod calico;
pub mod cilium;
mod flannel;
mod host_local;
pub mod multus;
mod runtime;
pub mod whereabouts;

/// Why a pod sandbox could not get its network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Sandbox {
    /// flannel's `subnet.env` does not exist (tmpfs wiped by a reboot and
    /// not rewritten).
    FlannelSubnetEnvMissing,
    /// `subnet.env` exists but cannot be used (missing keys, bad values).
    FlannelSubnetEnvInvalid,
    /// host-local has no free address: leases leaked by an unclean reboot.
    HostLocalExhausted,
    /// The runtime has no CNI configuration yet.
    CniNotInitialized,
    /// A CNI binary is not where the runtime looks.
    CniPluginMissing {
        /// The plugin's name, when the message names it.
        plugin: String,
    },
    /// The node has no `spec.podCIDR`, so flannel has no subnet to hand out.
    PodCidrNotAssigned,
    /// The node's agent reports its pod network broken (`PodNetworkReady`
    /// False) for a reason no sandbox error names (flannel's device or a
    /// peer's entries missing, a failing probe).
    PodNetworkNotReady {
        /// The condition's reason.
        reason: String,
    },
    /// Calico's CNI plugin fails.
    Calico(calico::Failure),
    /// Cilium's CNI plugin fails.
    Cilium(cilium::Failure),
    /// The whereabouts IPAM plugin fails.
    Whereabouts(whereabouts::Failure),
    /// Multus fails for a reason of its own (not a delegate's known failure).
    Multus(multus::Failure),
    /// A sandbox error no rule knows.
    Other {
        /// The error's text without sandbox and container IDs, so the same
        /// error on many pods is one failure.
        message: String,
    },
}

impl Sandbox {
    /// Short human description.
    pub fn describe(&self) -> String {
        match self {
            Sandbox::FlannelSubnetEnvMissing => "flannel subnet.env missing".into(),
            Sandbox::FlannelSubnetEnvInvalid => "flannel subnet.env invalid".into(),
            Sandbox::HostLocalExhausted => "host-local IP range exhausted (leaked leases)".into(),
            Sandbox::CniNotInitialized => "CNI not initialized".into(),
            Sandbox::CniPluginMissing { plugin } if !plugin.is_empty() => {
                format!("CNI plugin {plugin:?} missing")
            }
            Sandbox::CniPluginMissing { .. } => "CNI plugin missing".into(),
            Sandbox::PodCidrNotAssigned => "no podCIDR assigned".into(),
            Sandbox::PodNetworkNotReady { reason } => {
                format!("pod network not ready ({reason})")
            }
            Sandbox::Calico(f) => format!("Calico: {}", f.describe()),
            Sandbox::Cilium(f) => format!("Cilium: {}", f.describe()),
            Sandbox::Whereabouts(f) => format!("whereabouts IPAM: {}", f.describe()),
            Sandbox::Multus(f) => format!("Multus: {}", f.describe()),
            Sandbox::Other { message } if !message.is_empty() => {
                format!("pod sandbox creation failing ({message})")
            }
            Sandbox::Other { .. } => "pod sandbox creation failing".into(),
        }
    }
}

/// One CNI's knowledge.
struct Rule {
    /// Recognises one of its failures in a sandbox error.
    classify: fn(&str) -> Option<Sandbox>,
    /// Its fix for one of its failures on `nodes`; `None` when the failure
    /// is another rule's.
    fix: fn(&Sandbox, &[String], &Snapshot) -> Option<Vec<Fix>>,
}

/// In the order tried: the CNIs others delegate to before Multus, the
/// runtime's own errors (which wrap every plugin's) last.
const RULES: [Rule; 7] = [
    Rule {
        classify: flannel::classify,
        fix: flannel::fix,
    },
    Rule {
        classify: calico::classify,
        fix: calico::fix,
    },
    Rule {
        classify: cilium::classify,
        fix: cilium::fix,
    },
    Rule {
        classify: whereabouts::classify,
        fix: whereabouts::fix,
    },
    Rule {
        classify: host_local::classify,
        fix: host_local::fix,
    },
    Rule {
        classify: multus::classify,
        fix: multus::fix,
    },
    Rule {
        classify: runtime::classify,
        fix: runtime::fix,
    },
];

/// Classifies a sandbox failure message.
pub fn sandbox(message: &str) -> Sandbox {
    RULES
        .iter()
        .find_map(|r| (r.classify)(message))
        .unwrap_or_else(|| Sandbox::Other {
            message: runtime::essence(message),
        })
}

/// Whether an event is a sandbox (network setup) failure.
pub fn is_sandbox_failure(reason: &str, message: &str) -> bool {
    reason == "FailedCreatePodSandBox"
        || has(
            message,
            &[
                "failed to setup network for sandbox",
                "failed to create pod sandbox",
                "networkplugin cni failed to set up pod",
                "network is not ready",
                "cni plugin not initialized",
            ],
        )
}

/// The fix for a sandbox failure on `nodes`, ending with the steps every
/// such failure needs afterwards.
pub fn fix(cause: &Sandbox, nodes: &[String], snapshot: &Snapshot) -> Vec<Fix> {
    let mut fix = RULES
        .iter()
        .find_map(|r| (r.fix)(cause, nodes, snapshot))
        .unwrap_or_default();
    fix.push(Fix::cluster(
        "clean the pods the failure left stale",
        "rebootguard clean-stale --yes",
    ));
    fix.push(Fix::cluster(
        "check that nothing else remains",
        "rebootguard diagnose",
    ));
    fix
}

/// The sandbox failure class a `PodNetworkReady=False` reason (rebootguard's
/// node agent) stands for: the same class the kubelet's error text would
/// give, so the condition and the events agree on one root.
pub fn pod_network_reason(reason: &str) -> Sandbox {
    match reason {
        "SubnetEnvMissing" => Sandbox::FlannelSubnetEnvMissing,
        "SubnetEnvInvalid" | "SubnetEnvUnusable" | "SubnetEnvMismatch" => {
            Sandbox::FlannelSubnetEnvInvalid
        }
        "IpamExhausted" => Sandbox::HostLocalExhausted,
        "CniConfigMissing" | "CniConfigInvalid" => Sandbox::CniNotInitialized,
        "CniPluginMissing" => Sandbox::CniPluginMissing {
            plugin: String::new(),
        },
        other => Sandbox::PodNetworkNotReady {
            reason: other.to_owned(),
        },
    }
}

fn has(hay: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| crate::classify::contains_ci(hay, n))
}

/// The k3s service of a k3s node: `k3s` on servers, `k3s-agent` on agents;
/// none when the node does not run k3s.
fn k3s_service(node: &Node) -> Option<&'static str> {
    if !node.status.node_info.kubelet_version.contains("k3s") {
        return None;
    }
    let labels = &node.metadata.labels;
    let server = [
        "node-role.kubernetes.io/control-plane",
        "node-role.kubernetes.io/master",
    ]
    .iter()
    .any(|l| labels.get(l) == Some("true"));
    Some(if server { "k3s" } else { "k3s-agent" })
}

/// The service that runs the kubelet on `node` (k3s's when it is a k3s node).
fn kubelet_service(snapshot: &Snapshot, node: &str) -> &'static str {
    snapshot
        .nodes
        .iter()
        .find(|x| x.name() == node)
        .and_then(k3s_service)
        .unwrap_or("kubelet")
}

/// A CNI's own agent pod on `node` (its DaemonSet's pod), found by label.
fn agent_pod<'a>(snapshot: &'a Snapshot, node: &str, label: (&str, &str)) -> Option<&'a Pod> {
    snapshot
        .pods
        .iter()
        .find(|p| p.spec.node_name == node && p.metadata.labels.get(label.0) == Some(label.1))
}

/// Steps that restart a CNI's agent on each node: deleting its pod when the
/// snapshot shows it, else a label-selected delete the user can run as is.
fn restart_agent(
    snapshot: &Snapshot,
    nodes: &[String],
    what: &str,
    label: (&str, &str),
) -> Vec<Fix> {
    use crate::escape::shell as sh;
    nodes
        .iter()
        .map(|n| match agent_pod(snapshot, n, label) {
            Some(p) => Fix::cluster(
                format!("restart {what} on {n}"),
                format!(
                    "kubectl -n {} delete pod {}",
                    sh(&p.metadata.namespace),
                    sh(&p.metadata.name)
                ),
            ),
            None => Fix::cluster(
                format!("find and restart {what} on {n}"),
                format!(
                    "kubectl delete pod -A -l {} --field-selector spec.nodeName={}",
                    sh(&format!("{}={}", label.0, label.1)),
                    sh(n)
                ),
            ),
        })
        .collect()
}
