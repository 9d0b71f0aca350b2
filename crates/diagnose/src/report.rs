//! The diagnosis result: the contract the renderers and `--output json`
//! expose. Its JSON form is versioned ([`API_VERSION`], [`KIND`]) and
//! documented in `docs/diagnose.md`; fields are only ever added within a
//! version.

use jiff::Timestamp;
use serde::Serialize;

use crate::classify::Sandbox;
use crate::clean;
use crate::escape;
pub use crate::fix::Fix;
use crate::model::ObjectRef;
use crate::snapshot::Missing;

/// `apiVersion` of the JSON report.
pub const API_VERSION: &str = "rebootguard.io/v1alpha1";
/// `kind` of the JSON report.
pub const KIND: &str = "DiagnoseReport";

/// Exit code: nothing wrong found.
pub const EXIT_HEALTHY: i32 = 0;
/// Exit code: problems found.
pub const EXIT_PROBLEMS: i32 = 1;
/// Exit code: could not diagnose (unreadable input, no cluster access).
pub const EXIT_ERROR: i32 = 2;

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// No root cause and no stale pod to clean.
    Healthy,
    /// At least one root cause or stale pod.
    ProblemsFound,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Always [`API_VERSION`].
    pub api_version: &'static str,
    /// Always [`KIND`].
    pub kind: &'static str,
    /// The time the analysis was made for.
    pub now: Timestamp,
    /// Where the snapshot came from.
    pub source: String,
    /// Healthy or not.
    pub verdict: Verdict,
    /// Counts.
    pub summary: Summary,
    /// Kinds that could not be collected: conclusions may be incomplete.
    pub degraded: Vec<Missing>,
    /// Remarks on the input (e.g. no events to classify with).
    pub notes: Vec<String>,
    /// Root causes, highest blast radius first.
    pub roots: Vec<Root>,
    /// Stale pods a reboot left: noise to clean, not a cause.
    pub stale: Stale,
    /// The causal graph (every problem, every cause → consequence edge).
    pub graph: Graph,
}

impl Report {
    /// This report with every text that came from the cluster made inert
    /// on a terminal ([`escape::terminal`]): what the text renderers show.
    /// The JSON form keeps the text as it was.
    pub fn for_terminal(&self) -> Report {
        fn fix(s: &mut String) {
            if let std::borrow::Cow::Owned(safe) = escape::terminal(s) {
                *s = safe;
            }
        }
        fn object(o: &mut ObjectRef) {
            fix(&mut o.kind);
            fix(&mut o.namespace);
            fix(&mut o.name);
        }
        fn impact(i: &mut Impact) {
            fix(&mut i.id);
            fix(&mut i.kind);
            fix(&mut i.title);
            for p in &mut i.pods {
                fix(&mut p.namespace);
                fix(&mut p.name);
                fix(&mut p.node);
                fix(&mut p.status);
            }
            i.children.iter_mut().for_each(impact);
        }
        fn fixes(f: &mut Fix) {
            fix(&mut f.description);
            f.command.iter_mut().for_each(fix);
            f.run_on.iter_mut().for_each(fix);
        }
        let mut r = self.clone();
        fix(&mut r.source);
        for m in &mut r.degraded {
            fix(&mut m.kind);
            fix(&mut m.reason);
        }
        r.notes.iter_mut().for_each(fix);
        for root in &mut r.roots {
            fix(&mut root.id);
            fix(&mut root.title);
            root.subjects.iter_mut().for_each(fix);
            for e in &mut root.evidence {
                object(&mut e.object);
                fix(&mut e.reason);
                fix(&mut e.message);
            }
            root.impact.iter_mut().for_each(impact);
            root.fix.iter_mut().for_each(fixes);
        }
        for e in &mut r.stale.pods {
            for s in [&mut e.namespace, &mut e.name, &mut e.uid, &mut e.node] {
                fix(s);
            }
            fix(&mut e.status);
            fix(&mut e.reason);
            e.owner.iter_mut().for_each(fix);
            e.command.iter_mut().for_each(fix);
        }
        r.stale.fix.iter_mut().for_each(fixes);
        for n in &mut r.graph.nodes {
            fix(&mut n.id);
            fix(&mut n.kind);
            fix(&mut n.title);
        }
        for e in &mut r.graph.edges {
            fix(&mut e.from);
            fix(&mut e.to);
            fix(&mut e.reason);
        }
        r
    }

    /// The process exit code for this report: 0 healthy, 1 problems found.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Healthy => EXIT_HEALTHY,
            Verdict::ProblemsFound => EXIT_PROBLEMS,
        }
    }
}

/// Counts over the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Nodes.
    pub nodes: usize,
    /// Nodes reporting Ready.
    pub nodes_ready: usize,
    /// Pods.
    pub pods: usize,
    /// Pods Running and Ready, or Succeeded.
    pub pods_healthy: usize,
    /// Pods with a problem placed in the graph.
    pub pods_affected: usize,
    /// Root causes.
    pub roots: usize,
    /// Stale pods listed.
    pub stale_pods: usize,
}

/// A root cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Root {
    /// 1 = the first domino.
    pub rank: usize,
    /// Stable identifier (also the graph node id of its first subject).
    pub id: String,
    /// One line saying what is wrong.
    pub title: String,
    /// The failure class.
    pub cause: Cause,
    /// The nodes or objects it is about (e.g. the two rebooted nodes).
    pub subjects: Vec<String>,
    /// How much it breaks.
    pub blast_radius: BlastRadius,
    /// Earliest evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    /// Latest evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// Evidence, most telling first.
    pub evidence: Vec<Evidence>,
    /// What it breaks, as a tree of consequences.
    pub impact: Vec<Impact>,
    /// How to fix it, in order.
    pub fix: Vec<Fix>,
}

/// How much a root cause breaks (distinct objects reachable from it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlastRadius {
    /// Pods.
    pub pods: usize,
    /// Workloads (Deployments, DaemonSets, ...).
    pub workloads: usize,
    /// Other objects (Flux objects, volumes, objects a webhook blocks).
    pub objects: usize,
    /// Nodes.
    pub nodes: usize,
}

/// The failure class of a root cause.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Cause {
    /// Pod sandboxes fail CNI ADD on the subject nodes.
    Cni {
        /// Why.
        cni: Sandbox,
    },
    /// Nodes not Ready.
    NodeNotReady,
    /// Nodes under resource pressure: the kubelet evicts pods and the
    /// scheduler keeps new ones away.
    NodePressure {
        /// `DiskPressure`, `MemoryPressure` or `PIDPressure`.
        condition: String,
    },
    /// A CSI driver is not registered on the subject nodes.
    CsiDriverNotRegistered {
        /// Driver.
        driver: String,
    },
    /// A component (e.g. CoreDNS) has no ready endpoints.
    ComponentDown {
        /// Component name.
        component: String,
    },
    /// An admission webhook has no ready endpoints.
    WebhookUnavailable {
        /// Webhook name.
        webhook: String,
    },
    /// An aggregated API is unavailable.
    ApiServiceUnavailable,
    /// Containers crash repeatedly.
    CrashLoop,
    /// Name lookups fail although cluster DNS has ready endpoints.
    DnsLookupFailures,
    /// Pods of several workloads get no answer at all from cluster DNS
    /// while it is up: the path to it is broken (the overlay between
    /// nodes, Service routing, a NetworkPolicy), not the names.
    DnsUnreachable {
        /// The DNS server address they could not reach, when named.
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
    },
    /// Images cannot be pulled.
    ImagePull,
    /// Pods cannot be scheduled.
    Unschedulable,
    /// Volumes fail to attach or mount.
    VolumeFailure,
    /// A Flux object is not Ready for its own reasons.
    FluxNotReady,
    /// An Argo CD Application fails to sync or is degraded for its own
    /// reasons.
    ArgoApplicationNotHealthy,
    /// A Longhorn volume is faulted.
    LonghornVolumeFaulted,
    /// Pods run but are not Ready.
    PodNotReady,
    /// Pods are stuck Pending/ContainerCreating without an explaining event.
    PodStuck,
}

/// One piece of evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The object it is about.
    pub object: ObjectRef,
    /// Event reason or condition type.
    pub reason: String,
    /// The text, as printed by Kubernetes (aggregation prefix removed).
    pub message: String,
    /// Occurrences (events aggregate).
    pub count: i64,
    /// First seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    /// Last seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
}

/// A node of the impact tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Impact {
    /// Graph node id.
    pub id: String,
    /// Graph node kind (`node`, `workload`, `component`, `flux`, ...).
    pub kind: String,
    /// What is wrong with it.
    pub title: String,
    /// Affected pods (for workloads).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodRef>,
    /// Consequences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Impact>,
}

/// A pod in the impact tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Node.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// kubectl STATUS.
    pub status: String,
}

/// The stale pods section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stale {
    /// The clean-stale plan's entries.
    pub pods: Vec<clean::Entry>,
    /// How to clean them.
    pub fix: Vec<Fix>,
}

/// The causal graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Graph {
    /// Problems.
    pub nodes: Vec<GraphNode>,
    /// Cause → consequence.
    pub edges: Vec<GraphEdge>,
}

/// A problem in the graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphNode {
    /// Identifier, stable across runs on the same input.
    pub id: String,
    /// Kind (`node`, `workload`, `component`, `csi`, `webhook`, `apiservice`, `flux`, `longhorn`, `object`).
    pub kind: String,
    /// Label.
    pub title: String,
    /// Whether it is (part of) a root cause.
    pub root: bool,
    /// Affected pods inside it.
    pub pods: usize,
}

/// A cause → consequence edge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphEdge {
    /// Cause id.
    pub from: String,
    /// Consequence id.
    pub to: String,
    /// Why the rule linked them.
    pub reason: String,
}
