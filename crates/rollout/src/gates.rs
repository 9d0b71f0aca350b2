//! The gates a node must pass before it is rebooted, each a pure function
//! of a [`View`] of the cluster: every other node healthy, server quorum
//! held without this node, no storage volume left without a healthy
//! replica, every pod on it evictable within its PodDisruptionBudget, no
//! firing alert, inside the maintenance window.
//!
//! A gate says *why* it is closed, in words an operator can act on, and
//! never decides anything else: the orchestrator asks every gate before each
//! node and stops at the first closed one.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rebootguard_errors::{Failure, chain};
use serde::Serialize;

use crate::window::{self, Window};

/// A node's role in a k3s cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the API server (and an etcd member, when etcd is embedded).
    Server,
    /// Runs workloads only.
    Agent,
}

/// A node as the gates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Server or agent.
    pub role: Role,
    /// `Ready=True`.
    pub ready: bool,
    /// `PodNetworkReady`: `Some(true)` True and fresh, `Some(false)` False,
    /// `None` absent or stale (no agent there, or it stopped reporting).
    pub pod_network: Option<bool>,
    /// `spec.unschedulable` (cordoned).
    pub cordoned: bool,
}

/// A pod that would have to leave the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// `namespace/name`.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The node it runs on.
    pub node: String,
    /// Its labels (for PDB selectors).
    pub labels: BTreeMap<String, String>,
    /// Owned by a DaemonSet, or a static (mirror) pod: stays on the node.
    pub stays: bool,
}

/// A PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdb {
    /// `namespace/name`.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `spec.selector.matchLabels` (an empty selector selects nothing, as upstream).
    pub selector: BTreeMap<String, String>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
}

/// A replicated storage volume (Longhorn's `volumes.longhorn.io`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// Nodes holding a healthy replica.
    pub healthy_on: Vec<String>,
}

/// What the gates look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Every node.
    pub nodes: Vec<Node>,
    /// Every pod bound to a node.
    pub pods: Vec<Pod>,
    /// Every PodDisruptionBudget.
    pub pdbs: Vec<Pdb>,
    /// Every replicated volume (empty without Longhorn).
    pub volumes: Vec<Volume>,
    /// Nodes whose last `verify` failed, with why.
    pub verify_failed: BTreeMap<String, String>,
    /// Why verify could not run at all, when it was asked to.
    pub verify_error: Option<Failure>,
    /// Alerts firing now, when a Prometheus was asked (`None`: not asked;
    /// `Err`: why its answer is unknown).
    pub firing: Option<Result<Vec<String>, Failure>>,
    /// The maintenance windows at the time of the view (`None`: none configured).
    pub window: Option<Windows>,
}

/// The maintenance windows as seen at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    /// Each window as written (normalised), for the gate's detail.
    pub spec: Vec<String>,
    /// When they were looked at.
    pub at: Timestamp,
    /// When one is open next: `at` itself while one is open.
    pub next_open: Timestamp,
}

impl Windows {
    /// `windows` seen at `at`; `None` when there are none.
    pub fn new(windows: &[Window], at: Timestamp) -> Option<Windows> {
        Some(Windows {
            spec: windows.iter().map(ToString::to_string).collect(),
            at,
            next_open: window::next_open(windows, at)?,
        })
    }

    /// One of them is open.
    pub fn open(&self) -> bool {
        self.next_open <= self.at
    }
}

/// One gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    /// The gate.
    pub name: &'static str,
    /// Open: the node may go.
    pub open: bool,
    /// Why (evidence when closed, what was checked when open).
    pub detail: String,
    /// When a closed gate opens by itself (the next maintenance window);
    /// `None` when nobody knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<Timestamp>,
}

impl Gate {
    fn open(name: &'static str, detail: impl Into<String>) -> Gate {
        Gate {
            name,
            open: true,
            detail: detail.into(),
            opens_at: None,
        }
    }

    fn closed(name: &'static str, detail: impl Into<String>) -> Gate {
        Gate {
            name,
            open: false,
            detail: detail.into(),
            opens_at: None,
        }
    }
}

/// Every gate for rebooting `node`, in the order they are asked.
pub fn all(view: &View, node: &str) -> Vec<Gate> {
    vec![
        others_healthy(view, node),
        quorum(view, node),
        storage(view, node),
        disruption_budgets(view, node),
        alerts(view),
        window(view),
    ]
}

/// Every other node is Ready, its pod network works (where an agent
/// reports it), and its last verify passed: never take a node down while
/// another is already broken.
pub fn others_healthy(view: &View, node: &str) -> Gate {
    let name = "others-healthy";
    let mut broken = Vec::new();
    for n in view.nodes.iter().filter(|n| n.name != node) {
        if !n.ready {
            broken.push(format!("{} is not Ready", n.name));
        } else if n.pod_network == Some(false) {
            broken.push(format!("{} has PodNetworkReady=False", n.name));
        } else if let Some(why) = view.verify_failed.get(&n.name) {
            broken.push(format!("{} failed verify: {why}", n.name));
        } else if n.cordoned {
            broken.push(format!("{} is cordoned (another maintenance?)", n.name));
        }
    }
    if let Some(e) = &view.verify_error {
        broken.push(format!(
            "the other nodes could not be verified: {}",
            chain(e)
        ));
    }
    if broken.is_empty() {
        Gate::open(
            name,
            format!(
                "{} other node(s) healthy",
                view.nodes.len().saturating_sub(1)
            ),
        )
    } else {
        Gate::closed(name, broken.join("; "))
    }
}

/// The servers that stay up still make a majority of all servers (etcd's
/// quorum; a single server takes the API away with it).
pub fn quorum(view: &View, node: &str) -> Gate {
    let name = "quorum";
    let servers: Vec<&Node> = view
        .nodes
        .iter()
        .filter(|n| n.role == Role::Server)
        .collect();
    let Some(me) = view.nodes.iter().find(|n| n.name == node) else {
        return Gate::closed(name, format!("no node {node:?} in the cluster"));
    };
    if me.role == Role::Agent {
        return Gate::open(name, format!("{node} is an agent: no quorum at stake"));
    }
    let total = servers.len();
    let needed = total / 2 + 1;
    let left = servers.iter().filter(|n| n.name != node && n.ready).count();
    if total == 1 {
        return Gate::closed(
            name,
            format!(
                "{node} is the only server: the API goes away with it (add servers, or reboot it by hand)"
            ),
        );
    }
    if left >= needed {
        Gate::open(
            name,
            format!("{left} of {total} servers stay Ready (quorum {needed})"),
        )
    } else {
        Gate::closed(
            name,
            format!("only {left} of {total} servers would stay Ready, quorum needs {needed}"),
        )
    }
}

/// No volume loses its last healthy replica.
pub fn storage(view: &View, node: &str) -> Gate {
    let name = "storage";
    if view.volumes.is_empty() {
        return Gate::open(name, "no replicated volumes");
    }
    let last: Vec<&str> = view
        .volumes
        .iter()
        .filter(|v| v.healthy_on.iter().all(|n| n == node))
        .map(|v| v.name.as_str())
        .collect();
    if last.is_empty() {
        Gate::open(
            name,
            format!(
                "every one of {} volume(s) keeps a healthy replica elsewhere",
                view.volumes.len()
            ),
        )
    } else {
        Gate::closed(
            name,
            format!(
                "{} volume(s) would lose their last healthy replica: {}",
                last.len(),
                last.join(", ")
            ),
        )
    }
}

/// Every pod that must leave the node can, within its budgets. A budget
/// that allows fewer disruptions than its pods here is reported, not forced.
pub fn disruption_budgets(view: &View, node: &str) -> Gate {
    let name = "disruption-budgets";
    let leaving: Vec<&Pod> = view
        .pods
        .iter()
        .filter(|p| p.node == node && !p.stays)
        .collect();
    let mut blocked = Vec::new();
    for pdb in &view.pdbs {
        if pdb.selector.is_empty() {
            continue;
        }
        let here = leaving
            .iter()
            .filter(|p| {
                p.namespace == pdb.namespace
                    && pdb.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
            })
            .count();
        if here > 0 && i64::try_from(here).unwrap_or(i64::MAX) > i64::from(pdb.disruptions_allowed)
        {
            blocked.push(format!(
                "{} allows {} disruption(s), {here} of its pods are on {node}",
                pdb.name, pdb.disruptions_allowed
            ));
        }
    }
    if blocked.is_empty() {
        Gate::open(
            name,
            format!("{} pod(s) to evict, every budget allows it", leaving.len()),
        )
    } else {
        Gate::closed(name, blocked.join("; "))
    }
}

/// No alert fires (when a Prometheus was asked). A Prometheus that does
/// not answer closes the gate: an unknown is never taken for a yes.
pub fn alerts(view: &View) -> Gate {
    let name = "alerts";
    match &view.firing {
        None => Gate::open(name, "not asked (no --prometheus)"),
        Some(Ok(firing)) if firing.is_empty() => Gate::open(name, "no alert firing"),
        Some(Ok(firing)) => Gate::closed(name, format!("firing: {}", firing.join(", "))),
        Some(Err(e)) => Gate::closed(name, format!("alerts unknown: {}", chain(e))),
    }
}

/// Inside a maintenance window (when any is configured). Closed, it says
/// when the next one opens, so the rollout can wait for it or stop at once.
pub fn window(view: &View) -> Gate {
    let name = "window";
    let Some(w) = &view.window else {
        return Gate::open(name, "no maintenance window configured");
    };
    let spec = w.spec.join(" or ");
    if w.open() {
        return Gate::open(name, format!("inside the maintenance window ({spec})"));
    }
    let mut gate = Gate::closed(
        name,
        format!(
            "outside the maintenance window ({spec}): the next one opens at {}",
            w.next_open
        ),
    );
    gate.opens_at = Some(w.next_open);
    gate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, role: Role) -> Node {
        Node {
            name: name.into(),
            role,
            ready: true,
            pod_network: Some(true),
            cordoned: false,
        }
    }

    fn three_servers() -> View {
        View {
            nodes: vec![
                node("boromir", Role::Server),
                node("theoden", Role::Server),
                node("samwise", Role::Server),
            ],
            ..View::default()
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn a_healthy_cluster_opens_every_gate() {
        let view = three_servers();
        for gate in all(&view, "boromir") {
            assert!(gate.open, "{gate:?}");
        }
    }

    #[test]
    fn another_broken_node_closes_the_first_gate() {
        let mut view = three_servers();
        view.nodes[1].pod_network = Some(false);
        let gate = others_healthy(&view, "boromir");
        assert!(!gate.open);
        assert_eq!(gate.detail, "theoden has PodNetworkReady=False");
        // The node itself being broken is no reason to wait.
        assert!(others_healthy(&view, "theoden").open);
        view.nodes[1].pod_network = None;
        assert!(
            others_healthy(&view, "boromir").open,
            "no agent there: not judged"
        );
        view.verify_failed
            .insert("samwise".into(), "DNS: no such host".into());
        assert!(
            others_healthy(&view, "boromir")
                .detail
                .contains("samwise failed verify")
        );
        // Its own failure does not hold it back; could not verify does.
        assert!(others_healthy(&view, "samwise").open);
        view.verify_error = Some(Failure::said(
            "namespace \"rebootguard\" does not exist",
            false,
        ));
        let gate = others_healthy(&view, "samwise");
        assert!(!gate.open);
        assert_eq!(
            gate.detail,
            "the other nodes could not be verified: namespace \"rebootguard\" does not exist"
        );
    }

    #[test]
    fn quorum_counts_servers_left_ready() {
        let mut view = three_servers();
        assert!(quorum(&view, "boromir").open);
        view.nodes[1].ready = false;
        let gate = quorum(&view, "boromir");
        assert!(!gate.open);
        assert_eq!(
            gate.detail,
            "only 1 of 3 servers would stay Ready, quorum needs 2"
        );
        view.nodes.push(node("worker", Role::Agent));
        assert!(quorum(&view, "worker").open);
        let single = View {
            nodes: vec![node("solo", Role::Server)],
            ..View::default()
        };
        assert!(quorum(&single, "solo").detail.contains("only server"));
    }

    #[test]
    fn storage_keeps_a_healthy_replica_somewhere() {
        let mut view = three_servers();
        view.volumes = vec![
            Volume {
                name: "pvc-a".into(),
                healthy_on: vec!["boromir".into(), "samwise".into()],
            },
            Volume {
                name: "pvc-b".into(),
                healthy_on: vec!["boromir".into()],
            },
        ];
        let gate = storage(&view, "boromir");
        assert!(!gate.open);
        assert_eq!(
            gate.detail,
            "1 volume(s) would lose their last healthy replica: pvc-b"
        );
        assert!(storage(&view, "theoden").open);
    }

    #[test]
    fn budgets_are_reported_not_forced() {
        let mut view = three_servers();
        view.pods = vec![
            Pod {
                name: "apps/web-1".into(),
                namespace: "apps".into(),
                node: "boromir".into(),
                labels: labels(&[("app", "web")]),
                stays: false,
            },
            Pod {
                name: "kube-system/flannel-x".into(),
                namespace: "kube-system".into(),
                node: "boromir".into(),
                labels: labels(&[("app", "flannel")]),
                stays: true,
            },
        ];
        view.pdbs = vec![Pdb {
            name: "apps/web".into(),
            namespace: "apps".into(),
            selector: labels(&[("app", "web")]),
            disruptions_allowed: 0,
        }];
        let gate = disruption_budgets(&view, "boromir");
        assert!(!gate.open);
        assert_eq!(
            gate.detail,
            "apps/web allows 0 disruption(s), 1 of its pods are on boromir"
        );
        view.pdbs[0].disruptions_allowed = 1;
        let gate = disruption_budgets(&view, "boromir");
        assert!(gate.open);
        assert_eq!(gate.detail, "1 pod(s) to evict, every budget allows it");
    }

    #[test]
    fn alerts_and_windows_only_when_configured() {
        let mut view = three_servers();
        assert!(alerts(&view).open && window(&view).open);
        assert_eq!(window(&view).detail, "no maintenance window configured");
        assert_eq!(alerts(&view).detail, "not asked (no --prometheus)");
        view.firing = Some(Ok(vec![]));
        assert!(alerts(&view).open);
        view.firing = Some(Ok(vec!["KubeNodeNotReady".into()]));
        assert_eq!(alerts(&view).detail, "firing: KubeNodeNotReady");
        assert!(!alerts(&view).open);
        view.firing = Some(Err(Failure::said(
            "cannot reach Prometheus at http://p/api/v1/alerts",
            true,
        )));
        let gate = alerts(&view);
        assert!(!gate.open, "unknown is closed");
        assert_eq!(
            gate.detail,
            "alerts unknown: cannot reach Prometheus at http://p/api/v1/alerts"
        );
        assert_eq!(
            Windows::new(&[], "2026-12-02T12:00:00Z".parse().expect("t")),
            None
        );
    }

    #[test]
    fn a_closed_window_says_when_the_next_opens() {
        let windows: Vec<Window> = ["sat 02:00-05:00", "wed 10:00-11:00 +01:00"]
            .iter()
            .map(|w| w.parse().expect("window"))
            .collect();
        let mut view = three_servers();
        // Wednesday 2026-12-02, 12:00 UTC: both closed.
        view.window = Windows::new(&windows, "2026-12-02T12:00:00Z".parse().expect("t"));
        let gate = window(&view);
        assert!(!gate.open);
        assert_eq!(
            gate.detail,
            "outside the maintenance window (sat 02:00-05:00 UTC or wed 10:00-11:00 +01:00): the next one opens at 2026-12-05T02:00:00Z"
        );
        assert_eq!(
            gate.opens_at,
            Some("2026-12-05T02:00:00Z".parse().expect("t"))
        );
        // 09:30 UTC is 10:30 at +01:00: open, no opening time.
        view.window = Windows::new(&windows, "2026-12-02T09:30:00Z".parse().expect("t"));
        let gate = window(&view);
        assert!(gate.open && gate.opens_at.is_none(), "{gate:?}");
        assert!(
            gate.detail
                .starts_with("inside the maintenance window (sat")
        );
    }
}
