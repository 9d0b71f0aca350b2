//! Planning `clean-stale`: which pods a reboot left behind, and how safely
//! each can go.
//!
//! Reboot detection (no pod records the boot it ran in, so this is inferred):
//! 1. Strong: a `Rebooted` event on the Node whose boot ID equals the node's
//!    current `status.nodeInfo.bootID` (or, if the event names no ID, the
//!    latest `Rebooted` event). Its last time is the boot time.
//! 2. Weak: without such an event, the last transition of the node's
//!    `Ready` condition to `True`. A kubelet restart or a network blip moves
//!    it too, so weak evidence never justifies force deletion.
//!
//! A pod is stale when it is bound to a node that no longer exists, or when
//! it is being deleted (kubectl shows `Terminating` or `Unknown`), started
//! before the node's current boot and no container of it has started since
//! (so nothing of it can be running); `Failed` pods with the
//! graceful-shutdown reasons (`Shutdown`, `Terminated`, `NodeShutdown`) count
//! too. Pods on a node that is not `Ready` are never stale here: the node
//! cannot vouch for anything, they belong to the "node down" finding.
//!
//! Force deletion (grace period 0) is planned only when the node proves the
//! containers are gone: it is `Ready` again after a strong reboot, or the
//! Node object is gone (its kubelet cannot be running them as a Node).
//! Otherwise a graceful delete, which the kubelet confirms.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::classify;
use crate::escape::shell;
use crate::model::{Node, Pod};
use crate::snapshot::Snapshot;

/// Controllers that recreate a deleted pod.
pub const RECREATING_OWNERS: [&str; 4] = ["ReplicaSet", "StatefulSet", "DaemonSet", "Job"];

/// How the current boot of a node was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BootEvidence {
    /// A `Rebooted` event for the current boot ID.
    RebootedEvent,
    /// Only the `Ready` transition time.
    ReadyTransition,
}

/// What is known about a node's current boot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Boot {
    /// Node name.
    pub node: String,
    /// Current boot ID.
    pub boot_id: String,
    /// When the current boot began being visible to the API.
    pub since: Timestamp,
    /// How `since` was established.
    pub evidence: BootEvidence,
}

/// Whether planning a cleanup reads `kind`: Nodes, pods and core Events
/// (the kubelet's `Rebooted`), nothing else.
pub fn reads(kind: &crate::snapshot::Kind) -> bool {
    kind.group.is_empty() && matches!(kind.kind, "Node" | "Pod" | "Event")
}

/// The current boot of every node for which it can be told.
pub fn boots(snapshot: &Snapshot) -> HashMap<String, Boot> {
    let mut rebooted: HashMap<&str, Vec<(Option<&str>, Timestamp)>> = HashMap::new();
    for e in &snapshot.events {
        if e.reason == "Rebooted"
            && e.involved_object.kind == "Node"
            && let Some(t) = e.last_seen.or(e.first_seen)
        {
            rebooted
                .entry(e.involved_object.name.as_str())
                .or_default()
                .push((classify::rebooted_boot_id(&e.message), t));
        }
    }
    let mut out = HashMap::new();
    for node in &snapshot.nodes {
        let boot_id = node.status.node_info.boot_id.clone();
        let strong = rebooted.get(node.name()).and_then(|evs| {
            let exact = evs
                .iter()
                .filter(|(id, _)| *id == Some(boot_id.as_str()) && !boot_id.is_empty())
                .map(|(_, t)| *t)
                .max();
            exact.or_else(|| {
                evs.iter()
                    .filter(|(id, _)| id.is_none())
                    .map(|(_, t)| *t)
                    .max()
            })
        });
        let boot = match strong {
            Some(since) => Some(Boot {
                node: node.name().into(),
                boot_id,
                since,
                evidence: BootEvidence::RebootedEvent,
            }),
            None => node
                .ready()
                .filter(|c| c.status == "True")
                .and_then(|c| c.last_transition_time)
                .map(|since| Boot {
                    node: node.name().into(),
                    boot_id,
                    since,
                    evidence: BootEvidence::ReadyTransition,
                }),
        };
        if let Some(b) = boot {
            out.insert(node.name().to_string(), b);
        }
    }
    out
}

/// What to do with a stale pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// `--grace-period=0 --force`: the node proved the containers are gone.
    ForceDelete,
    /// A normal delete; the kubelet confirms it.
    Delete,
    /// Listed, left alone (see the reason).
    Keep,
}

/// One stale pod and the plan for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID, for a precondition on the delete.
    pub uid: String,
    /// Node it is bound to.
    pub node: String,
    /// What kubectl shows.
    pub status: String,
    /// `Kind/name` of the controlling owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Planned action.
    pub action: Action,
    /// Why it is stale, and why this action.
    pub reason: String,
    /// The kubectl equivalent of the action (none for `Keep`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// Options of the plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also act on pods no recreating controller owns.
    pub include_unowned: bool,
}

/// The clean-stale plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Stale pods, by namespace and name.
    pub entries: Vec<Entry>,
}

impl Plan {
    /// Entries with an action to take.
    pub fn actionable(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.action != Action::Keep)
    }
    /// Whether there is nothing stale.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Why a pod is stale, if it is.
pub(crate) fn staleness(
    pod: &Pod,
    node: Option<&Node>,
    boot: Option<&Boot>,
    have_nodes: bool,
) -> Option<(String, bool)> {
    if pod.spec.node_name.is_empty() || pod.status.phase == "Succeeded" {
        return None;
    }
    let Some(node) = node else {
        // Without any node listed we cannot tell "gone" from "not collected".
        return have_nodes.then(|| {
            (
                format!("node {} no longer exists", pod.spec.node_name),
                true,
            )
        });
    };
    if !node.is_ready() {
        return None;
    }
    if pod.status.phase == "Failed"
        && matches!(
            pod.status.reason.as_str(),
            "Shutdown" | "Terminated" | "NodeShutdown"
        )
    {
        let strong = boot.is_some_and(|b| b.evidence == BootEvidence::RebootedEvent);
        return Some((
            format!("terminated by the node's shutdown ({})", pod.status.reason),
            strong,
        ));
    }
    if pod.is_terminal() {
        return None;
    }
    // A pod not being deleted is one the kubelet syncs again after the boot
    // (it recreates the sandbox): a victim to explain, not noise to clean.
    pod.metadata.deletion_timestamp?;
    let boot = boot?;
    let started = pod.status.start_time.or(pod.metadata.creation_timestamp)?;
    if started >= boot.since {
        return None;
    }
    let restarted_since = pod.containers().any(|c| {
        c.state
            .running
            .as_ref()
            .and_then(|r| r.started_at)
            .is_some_and(|t| t >= boot.since)
    });
    if restarted_since {
        return None;
    }
    let strong = boot.evidence == BootEvidence::RebootedEvent;
    let how = match boot.evidence {
        BootEvidence::RebootedEvent => format!(
            "node rebooted at {} (boot id {})",
            boot.since,
            short_id(&boot.boot_id)
        ),
        BootEvidence::ReadyTransition => format!("node became Ready at {}", boot.since),
    };
    Some((
        format!("started {started}, before the {how}; no container started since"),
        strong,
    ))
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Plans the cleaning as of `now` (a pod whose deletion grace period has
/// not run out by then is left to the kubelet).
pub fn plan(snapshot: &Snapshot, now: Timestamp, options: &Options) -> Plan {
    let nodes: HashMap<&str, &Node> = snapshot.nodes.iter().map(|n| (n.name(), n)).collect();
    let boots = boots(snapshot);
    let have_nodes = !snapshot.nodes.is_empty();
    let mut entries = Vec::new();
    for pod in &snapshot.pods {
        let node = nodes.get(pod.spec.node_name.as_str()).copied();
        let Some((why, strong)) = staleness(pod, node, boots.get(&pod.spec.node_name), have_nodes)
        else {
            continue;
        };
        let owner = pod.metadata.controller();
        let recreated = owner.is_some_and(|o| RECREATING_OWNERS.contains(&o.kind.as_str()));
        let ns = &pod.metadata.namespace;
        let name = &pod.metadata.name;
        let grace_ends = pod.metadata.deletion_timestamp.filter(|t| *t > now);
        let (action, reason) = if let Some(t) = grace_ends {
            (
                Action::Keep,
                format!("{why}; kept: its deletion grace period runs until {t}"),
            )
        } else if !recreated && !options.include_unowned {
            (
                Action::Keep,
                format!(
                    "{why}; kept: no ReplicaSet/StatefulSet/DaemonSet/Job will recreate it (use --include-unowned)"
                ),
            )
        } else if strong {
            (
                Action::ForceDelete,
                format!("{why}; the node proves its containers are gone"),
            )
        } else {
            (
                Action::Delete,
                format!("{why}; graceful delete, the kubelet confirms"),
            )
        };
        let (q_ns, q_name) = (shell(ns), shell(name));
        let command = match action {
            Action::ForceDelete => Some(format!(
                "kubectl delete pod -n {q_ns} {q_name} --grace-period=0 --force"
            )),
            Action::Delete => Some(format!("kubectl delete pod -n {q_ns} {q_name}")),
            Action::Keep => None,
        };
        entries.push(Entry {
            namespace: ns.clone(),
            name: name.clone(),
            uid: pod.metadata.uid.clone(),
            node: pod.spec.node_name.clone(),
            status: pod.display_status(),
            owner: owner.map(|o| format!("{}/{}", o.kind, o.name)),
            action,
            reason,
            command,
        });
    }
    entries.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Plan { entries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cleanup_reads_nodes_pods_and_core_events_only() {
        let read: Vec<(&str, &str)> = crate::snapshot::KINDS
            .iter()
            .filter(|k| reads(k))
            .map(|k| (k.group, k.kind))
            .collect();
        assert_eq!(read, [("", "Node"), ("", "Pod"), ("", "Event")]);
    }

    fn snapshot(events: serde_json::Value, pod_running_since: &str) -> Snapshot {
        let doc = json!({
            "apiVersion": "rebootguard.io/v1alpha1", "kind": "Snapshot",
            "nodes": [{"metadata": {"name": "n1"}, "status": {
                "nodeInfo": {"bootID": "boot-2"},
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T10:05:00Z"}]}}],
            "pods": [{"metadata": {"name": "p", "namespace": "a", "deletionTimestamp": "2026-01-01T09:50:00Z",
                                   "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": true}]},
                      "spec": {"nodeName": "n1"},
                      "status": {"phase": "Running", "startTime": "2026-01-01T08:00:00Z",
                                 "containerStatuses": [{"name": "c", "state": {"running": {"startedAt": pod_running_since}}}]}}],
            "events": events,
        });
        crate::load(&serde_json::to_vec(&doc).expect("json")).expect("loads")
    }

    fn rebooted(id: &str, at: &str) -> serde_json::Value {
        json!({"metadata": {"name": format!("n1.{id}"), "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "n1"},
               "reason": "Rebooted", "type": "Warning", "message": format!("Node n1 has been rebooted, boot id: {id}"),
               "count": 1, "firstTimestamp": at, "lastTimestamp": at})
    }

    fn now() -> Timestamp {
        "2026-01-01T11:00:00Z".parse().expect("time")
    }

    #[test]
    fn rebooted_event_for_the_current_boot_is_strong() {
        let s = snapshot(
            json!([
                rebooted("boot-1", "2026-01-01T07:00:00Z"),
                rebooted("boot-2", "2026-01-01T10:00:00Z")
            ]),
            "2026-01-01T08:00:00Z",
        );
        let b = &boots(&s)["n1"];
        assert_eq!(b.evidence, BootEvidence::RebootedEvent);
        assert_eq!(b.since.to_string(), "2026-01-01T10:00:00Z");
        let plan = plan(&s, now(), &Options::default());
        assert_eq!(plan.entries[0].action, Action::ForceDelete);
    }

    #[test]
    fn rebooted_event_for_an_older_boot_only_gives_weak_evidence() {
        let s = snapshot(
            json!([rebooted("boot-1", "2026-01-01T07:00:00Z")]),
            "2026-01-01T08:00:00Z",
        );
        let b = &boots(&s)["n1"];
        assert_eq!(b.evidence, BootEvidence::ReadyTransition);
        assert_eq!(b.since.to_string(), "2026-01-01T10:05:00Z");
        assert_eq!(
            plan(&s, now(), &Options::default()).entries[0].action,
            Action::Delete
        );
    }

    #[test]
    fn a_pod_within_its_grace_period_is_left_to_the_kubelet() {
        let s = snapshot(
            json!([rebooted("boot-2", "2026-01-01T10:00:00Z")]),
            "2026-01-01T08:00:00Z",
        );
        let before_grace_ends = "2026-01-01T09:49:50Z".parse().expect("time");
        let p = plan(&s, before_grace_ends, &Options::default());
        assert_eq!(p.entries[0].action, Action::Keep);
        assert!(p.entries[0].reason.contains("grace period"));
    }

    #[test]
    fn a_container_started_after_the_boot_means_not_stale() {
        let s = snapshot(
            json!([rebooted("boot-2", "2026-01-01T10:00:00Z")]),
            "2026-01-01T10:10:00Z",
        );
        assert!(plan(&s, now(), &Options::default()).is_empty());
    }
}
