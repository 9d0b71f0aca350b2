//! Nodes: NotReady nodes (with their Ready condition, `NodeNotReady` events
//! and a lease the kubelet stopped renewing), nodes without a podCIDR, and
//! what rebootguard's agent says on each node (`PodNetworkReady`).

use jiff::Timestamp;

use super::{AGENT_STALE, Index, Key, POD_NETWORK_READY, Run, evidence};
use crate::classify::{self, Sandbox};
use crate::model::{Node, ObjectRef};
use crate::report::{Cause, Evidence};
use crate::snapshot::Snapshot;

fn node_cidr_missing(node: &Node, ix: &Index<'_>, any_cidr: bool) -> Option<Evidence> {
    let ev = ix.events.get(&("Node", "", node.name())).and_then(|v| {
        v.iter().find(|e| {
            e.reason == "CIDRNotAvailable" || classify::contains_ci(&e.message, "CIDRNotAvailable")
        })
    });
    if node.spec.pod_cidr.is_empty() && (any_cidr || ev.is_some()) {
        return Some(ev.map(|e| evidence(e)).unwrap_or_else(|| Evidence {
            object: ObjectRef::new("Node", "", node.name()),
            reason: "NoPodCIDR".into(),
            message: format!(
                "node {} has no spec.podCIDR while other nodes have one",
                node.name()
            ),
            count: 1,
            first_seen: None,
            last_seen: None,
        }));
    }
    None
}

/// The node's heartbeat Lease (`kube-node-lease/<node>`) when it has not
/// been renewed within its duration as of `now`: the kubelet is gone, not
/// merely reporting a condition.
fn stale_lease(snapshot: &Snapshot, node: &str, now: Timestamp) -> Option<Evidence> {
    let lease = snapshot
        .leases
        .iter()
        .find(|l| l.metadata.namespace == "kube-node-lease" && l.metadata.name == node)?;
    let renewed = lease.spec.renew_time?;
    let duration = lease.spec.lease_duration_seconds.unwrap_or(40);
    let silent = now.duration_since(renewed).as_secs();
    (silent > duration).then(|| Evidence {
        object: ObjectRef::new("Lease", "kube-node-lease", node),
        reason: "LeaseNotRenewed".into(),
        message: format!(
            "the kubelet last renewed its lease {silent}s before {now} (duration {duration}s)"
        ),
        count: 1,
        first_seen: Some(renewed),
        last_seen: Some(renewed),
    })
}

/// Nodes that are down, or have no podCIDR.
pub(super) fn nodes(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let now = run.now;
    let Run {
        ix,
        g,
        node_sandbox,
        ..
    } = run;
    let any_cidr = snapshot.nodes.iter().any(|n| !n.spec.pod_cidr.is_empty());
    for node in &snapshot.nodes {
        let name = node.name();
        if !node.is_ready() {
            let key = Key::NodeDown(name.into());
            let ready = node.ready();
            let status = ready.map(|c| c.status.as_str()).unwrap_or("Unknown");
            let lease = stale_lease(snapshot, name, now);
            // A kubelet that still renews its lease and says its runtime's
            // network is not ready: the CNI is the cause, not the node.
            let network = ready
                .filter(|c| lease.is_none() && classify::runtime_network_not_ready(&c.message))
                .map(|c| classify::sandbox(&c.message));
            let n = g.node(&key, || match &network {
                Some(cni) => format!(
                    "node {name} is NotReady: its container runtime's network is not ready ({})",
                    cni.describe()
                ),
                None => format!("node {name} is NotReady (Ready={status})"),
            });
            n.own = Some(match network {
                Some(cni) => Cause::Cni { cni },
                None => Cause::NodeNotReady,
            });
            if let Some(c) = ready {
                n.evidence.push(Evidence {
                    object: ObjectRef::new("Node", "", name),
                    reason: if c.reason.is_empty() {
                        "Ready".into()
                    } else {
                        c.reason.clone()
                    },
                    message: if c.message.is_empty() {
                        format!("Ready={}", c.status)
                    } else {
                        c.message.clone()
                    },
                    count: 1,
                    first_seen: c.last_transition_time,
                    last_seen: c.last_transition_time,
                });
            }
            if let Some(evs) = ix.events.get(&("Node", "", name)) {
                n.evidence.extend(
                    evs.iter()
                        .filter(|e| e.reason == "NodeNotReady")
                        .take(1)
                        .map(|e| evidence(e)),
                );
            }
            if let Some(ev) = lease {
                n.evidence.push(ev);
            }
        } else if let Some(ev) = node_cidr_missing(node, ix, any_cidr) {
            node_sandbox
                .entry(name)
                .or_default()
                .insert(Sandbox::PodCidrNotAssigned, i64::MAX / 2);
            let key = Key::NodeNetwork(name.into());
            g.node(&key, String::new).evidence.push(ev);
        }
    }
}

/// Ready nodes under disk, memory or PID pressure: the kubelet evicts pods
/// there and the scheduler keeps new ones away (its taint). The first
/// pressure condition found names the root; the kubelet's eviction events
/// on the node are the evidence.
pub(super) fn pressure(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let Run { ix, g, .. } = run;
    for node in snapshot.nodes.iter().filter(|n| n.is_ready()) {
        let name = node.name();
        let Some(c) = classify::PRESSURE_CONDITIONS
            .iter()
            .find_map(|t| node.condition(t).filter(|c| c.status == "True"))
        else {
            continue;
        };
        let key = Key::NodePressure(name.into());
        let n = g.node(&key, || format!("node {name} is under {}", c.type_));
        n.own = Some(Cause::NodePressure {
            condition: c.type_.clone(),
        });
        n.evidence.push(Evidence {
            object: ObjectRef::new("Node", "", name),
            reason: c.type_.clone(),
            message: if c.message.is_empty() {
                format!("{}={}", c.type_, c.status)
            } else {
                c.message.clone()
            },
            count: 1,
            first_seen: c.last_transition_time,
            last_seen: c.last_heartbeat_time.or(c.last_transition_time),
        });
        if let Some(evs) = ix.events.get(&("Node", "", name)) {
            n.evidence.extend(
                evs.iter()
                    .filter(|e| {
                        matches!(
                            e.reason.as_str(),
                            "EvictionThresholdMet" | "FreeDiskSpaceFailed" | "ImageGCFailed"
                        ) || e.reason.starts_with("NodeHas") && e.reason.ends_with("Pressure")
                    })
                    .take(3)
                    .map(|e| evidence(e)),
            );
        }
    }
}

/// What rebootguard's agent says on each Node (`PodNetworkReady`): a
/// fresh `False` is the node's pod network root, whatever the events
/// say (they may be old, or absent when the taint kept pods away); a
/// condition whose heartbeat is stale is not trusted (Unknown), only noted.
pub(super) fn pod_network_conditions(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let now = run.now;
    let Run {
        g,
        node_sandbox,
        notes,
        ..
    } = run;
    for kind in [crate::load::NAMELESS_NODE, crate::load::NAMELESS_POD] {
        if let Some(n) = snapshot.ignored.get(kind) {
            notes.push(format!("skipped {n} {kind}"));
        }
    }
    for node in &snapshot.nodes {
        let name = node.name();
        let Some(c) = node.condition(POD_NETWORK_READY) else {
            continue;
        };
        let beat = c.last_heartbeat_time.or(c.last_transition_time);
        let age = beat.map(|t| now.duration_since(t));
        let fresh = age.is_some_and(|a| a <= AGENT_STALE);
        if !fresh {
            notes.push(format!(
                "node {name}: {POD_NETWORK_READY}={} was last confirmed {} by rebootguard's agent: treated as Unknown (is the agent running there?)",
                c.status,
                age.map(|a| format!("{}s ago", a.as_secs()))
                    .unwrap_or_else(|| "never".into())
            ));
            continue;
        }
        if c.status != "False" || !node.is_ready() {
            continue;
        }
        node_sandbox
            .entry(name)
            .or_default()
            .insert(classify::pod_network_reason(&c.reason), i64::MAX / 4);
        g.node(&Key::NodeNetwork(name.into()), String::new)
            .evidence
            .push(Evidence {
                object: ObjectRef::new("Node", "", name),
                reason: format!("{POD_NETWORK_READY}={}", c.reason),
                message: c.message.clone(),
                count: 1,
                first_seen: c.last_transition_time,
                last_seen: beat,
            });
    }
}
