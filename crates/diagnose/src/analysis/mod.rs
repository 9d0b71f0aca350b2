//! Snapshot → symptoms → causal graph → ranked root causes.
//!
//! 1. Every pod that is not healthy gets *one* explanation, tried in order:
//!    its node is down; its sandbox fails CNI (classified); a volume fails
//!    (CSI driver not registered on its node, a faulted Longhorn volume,
//!    else its own); image pulls; crash loops (DNS failures point at the DNS
//!    component); containers the node's reboot killed (never a crash: the
//!    node's state explains them); scheduling; readiness (DNS failures
//!    again point at DNS); stuck without a word.
//! 2. Pods aggregate into workload nodes (Deployment, DaemonSet, ...); edges
//!    run cause → consequence: node network → workload → component (CoreDNS)
//!    → DNS victims → Flux objects; CSI plugin workload → CSI registration
//!    on a node → workloads mounting its volumes; webhook backends → webhook
//!    → objects it blocks.
//! 3. A root is a problem with no incoming edge, or with failures no edge
//!    explains. Roots of the same class (the same CNI failure on several
//!    nodes) merge into one; roots rank by the distinct pods and objects
//!    reachable from them.
//!
//! The rules live in one module per family (`node`, `network`, `workloads`,
//! `storage`, `dns`, `admission`, `gitops`), each a plain `fn(&mut Run)`
//! listed once in `RULES`: a new controller or failure family is one file
//! and one line there. Sandbox error texts are read by `crate::cni`.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use serde_json::Value;

use crate::classify::Sandbox;
use crate::clean;
use crate::config::Config;
use crate::model::{Event, Node, ObjectRef, Pod};
use crate::report::{Cause, Evidence, PodRef, Report};
use crate::snapshot::Snapshot;

mod admission;
mod dns;
mod fix;
mod gitops;
mod network;
mod node;
mod roots;
mod storage;
mod workloads;

use roots::build_report;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    NodeNetwork(String),
    NodeDown(String),
    NodePressure(String),
    Csi {
        driver: String,
        node: String,
    },
    Component(String),
    Webhook(String),
    ApiService(String),
    Longhorn(String),
    Workload {
        namespace: String,
        kind: String,
        name: String,
    },
    Flux {
        kind: String,
        namespace: String,
        name: String,
    },
    /// An Argo CD Application.
    Argo {
        namespace: String,
        name: String,
    },
    Object(ObjectRef),
    /// Pods that cannot reach cluster DNS although it is up: on one node
    /// (`Some`), or on several.
    DnsPath(Option<String>),
}

/// A workload failing on DNS lookups, as one of its pods shows it.
struct DnsVictim<'a> {
    workload: Key,
    pod: &'a Pod,
    /// What the pod said about its lookup.
    message: String,
    /// The DNS server its lookups could not reach (empty: not named), when
    /// they got no answer at all.
    unreachable: Option<String>,
}

impl<'a> DnsVictim<'a> {
    fn new(workload: Key, pod: &'a Pod, message: &str) -> DnsVictim<'a> {
        DnsVictim {
            workload,
            pod,
            message: crate::classify::short(message, 200),
            unreachable: crate::classify::dns_unreachable(message).map(str::to_owned),
        }
    }
}

impl Key {
    fn id(&self) -> String {
        match self {
            Key::NodeNetwork(n) => format!("node-network/{n}"),
            Key::NodeDown(n) => format!("node-down/{n}"),
            Key::NodePressure(n) => format!("node-pressure/{n}"),
            Key::Csi { driver, node } => format!("csi/{driver}/{node}"),
            Key::Component(c) => format!("component/{c}"),
            Key::Webhook(w) => format!("webhook/{w}"),
            Key::ApiService(a) => format!("apiservice/{a}"),
            Key::Longhorn(v) => format!("longhorn-volume/{v}"),
            Key::Workload {
                namespace,
                kind,
                name,
            } => format!("workload/{namespace}/{kind}/{name}"),
            Key::Flux {
                kind,
                namespace,
                name,
            } => format!("flux/{kind}/{namespace}/{name}"),
            Key::Argo { namespace, name } => format!("argocd/{namespace}/{name}"),
            Key::Object(o) => format!("object/{}/{}/{}", o.kind, o.namespace, o.name),
            Key::DnsPath(Some(node)) => format!("dns-path/{node}"),
            Key::DnsPath(None) => "dns-path".into(),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Key::NodeNetwork(_) | Key::NodeDown(_) | Key::NodePressure(_) => "node",
            Key::Csi { .. } => "csi",
            Key::Component(_) => "component",
            Key::Webhook(_) => "webhook",
            Key::ApiService(_) => "apiservice",
            Key::Longhorn(_) => "longhorn",
            Key::Workload { .. } => "workload",
            Key::Flux { .. } => "flux",
            Key::Argo { .. } => "argocd",
            Key::Object(_) => "object",
            Key::DnsPath(_) => "dns",
        }
    }
    fn subject(&self) -> String {
        match self {
            Key::NodeNetwork(n) | Key::NodeDown(n) | Key::NodePressure(n) => n.clone(),
            Key::Csi { node, .. } => node.clone(),
            Key::Component(c) | Key::Webhook(c) | Key::ApiService(c) | Key::Longhorn(c) => {
                c.clone()
            }
            Key::Workload {
                namespace,
                kind,
                name,
            } => format!("{kind} {namespace}/{name}"),
            Key::Flux {
                kind,
                namespace,
                name,
            } => format!("{kind} {namespace}/{name}"),
            Key::Argo { namespace, name } => format!("Application {namespace}/{name}"),
            Key::Object(o) => o.to_string(),
            Key::DnsPath(Some(node)) => node.clone(),
            Key::DnsPath(None) => "cluster DNS".into(),
        }
    }
}

#[derive(Debug, Default)]
struct GNode {
    title: String,
    /// The unexplained failure class, making the node a root candidate.
    own: Option<Cause>,
    own_detail: String,
    evidence: Vec<Evidence>,
    pods: BTreeMap<(String, String), PodRef>,
    /// Pods whose failure no edge explains.
    own_pods: usize,
}

#[derive(Default)]
struct Builder {
    nodes: BTreeMap<Key, GNode>,
    edges: BTreeMap<(Key, Key), String>,
}

impl Builder {
    fn node(&mut self, key: &Key, title: impl FnOnce() -> String) -> &mut GNode {
        self.nodes.entry(key.clone()).or_insert_with(|| GNode {
            title: title(),
            ..GNode::default()
        })
    }
    fn edge(&mut self, from: &Key, to: &Key, why: &str) {
        if from != to {
            self.edges
                .entry((from.clone(), to.clone()))
                .or_insert_with(|| why.to_string());
        }
    }
}

fn evidence(e: &Event) -> Evidence {
    Evidence {
        object: e.involved_object.clone(),
        reason: e.reason.clone(),
        message: e.message.clone(),
        count: e.count,
        first_seen: e.first_seen,
        last_seen: e.last_seen,
    }
}

/// Indexes built once.
struct Index<'a> {
    nodes: HashMap<&'a str, &'a Node>,
    events: HashMap<(&'a str, &'a str, &'a str), Vec<&'a Event>>,
    logs: HashMap<(&'a str, &'a str), Vec<&'a str>>,
    claims: HashMap<(&'a str, &'a str), &'a str>,
    pv_driver: HashMap<&'a str, (&'a str, &'a str)>,
    csinode: HashMap<&'a str, Vec<&'a str>>,
    ready_endpoints: HashMap<(&'a str, &'a str), usize>,
    have_slices: bool,
}

impl<'a> Index<'a> {
    fn new(s: &'a Snapshot) -> Self {
        let mut events: HashMap<(&str, &str, &str), Vec<&Event>> = HashMap::new();
        for e in &s.events {
            let o = &e.involved_object;
            events
                .entry((o.kind.as_str(), o.namespace.as_str(), o.name.as_str()))
                .or_default()
                .push(e);
        }
        for list in events.values_mut() {
            // Newest first.
            list.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
        }
        let mut logs: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
        for l in &s.log_excerpts {
            logs.entry((l.namespace.as_str(), l.pod.as_str()))
                .or_default()
                .extend(l.lines.iter().map(String::as_str));
        }
        let mut ready_endpoints: HashMap<(&str, &str), usize> = HashMap::new();
        for sl in &s.endpoint_slices {
            if let Some(svc) = sl.service_name() {
                *ready_endpoints
                    .entry((sl.metadata.namespace.as_str(), svc))
                    .or_default() += sl.ready_count();
            }
        }
        Index {
            nodes: s.nodes.iter().map(|n| (n.name(), n)).collect(),
            events,
            logs,
            claims: s
                .persistent_volume_claims
                .iter()
                .map(|c| {
                    (
                        (c.metadata.namespace.as_str(), c.metadata.name.as_str()),
                        c.spec.volume_name.as_str(),
                    )
                })
                .collect(),
            pv_driver: s
                .persistent_volumes
                .iter()
                .filter_map(|pv| {
                    pv.spec.csi.as_ref().map(|c| {
                        (
                            pv.metadata.name.as_str(),
                            (c.driver.as_str(), c.volume_handle.as_str()),
                        )
                    })
                })
                .collect(),
            csinode: s
                .csi_nodes
                .iter()
                .map(|c| {
                    (
                        c.metadata.name.as_str(),
                        c.spec.drivers.iter().map(|d| d.name.as_str()).collect(),
                    )
                })
                .collect(),
            ready_endpoints,
            have_slices: !s.endpoint_slices.is_empty(),
        }
    }

    fn pod_events(&self, pod: &'a Pod) -> &[&'a Event] {
        self.events
            .get(&(
                "Pod",
                pod.metadata.namespace.as_str(),
                pod.metadata.name.as_str(),
            ))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The condition rebootguard's node agent keeps on each Node.
pub const POD_NETWORK_READY: &str = "PodNetworkReady";
/// A `PodNetworkReady` not confirmed for this long is not trusted: the
/// agent heartbeats every 30 s by default.
pub const AGENT_STALE: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

/// Healthy: Running and Ready, or Succeeded.
fn healthy(pod: &Pod) -> bool {
    pod.status.phase == "Succeeded" || (pod.status.phase == "Running" && pod.is_ready())
}

fn workload_of(pod: &Pod) -> (String, String) {
    match pod.metadata.controller() {
        Some(o) if o.kind == "ReplicaSet" => {
            let hash = pod.metadata.labels.get("pod-template-hash");
            match hash.and_then(|h| o.name.strip_suffix(&format!("-{h}"))) {
                Some(dep) => ("Deployment".into(), dep.into()),
                None => ("ReplicaSet".into(), o.name.clone()),
            }
        }
        Some(o) => (o.kind.clone(), o.name.clone()),
        None => ("Pod".into(), pod.metadata.name.clone()),
    }
}

fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        node: pod.spec.node_name.clone(),
        status: pod.display_status(),
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> &'v str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("")
}

/// A rule: one step of the analysis. It reads the snapshot and what the
/// earlier rules found (in [`Run`]) and adds problems and edges to the graph.
type Rule = fn(&mut Run<'_>);

/// Every rule, by family (its module), in the order their findings feed each
/// other: pods are explained before nodes' networks are titled; workloads
/// exist before the components, webhooks and GitOps objects that link to them.
const RULES: [Rule; 19] = [
    storage::faulted_longhorn_volumes,
    node::nodes,
    node::pressure,
    workloads::pods,
    node::pod_network_conditions,
    network::node_networks,
    workloads::stuck_pods,
    workloads::reboot_killed_pods,
    workloads::evicted_history,
    network::cni_pods,
    storage::csi_registration,
    storage::longhorn_causes,
    dns::dns_components,
    admission::webhooks,
    admission::api_services,
    gitops::flux_objects,
    gitops::argo_applications,
    admission::blocked_objects,
    workloads::workload_titles,
];

/// Analyses a snapshot as of `now`.
pub fn analyse(snapshot: &Snapshot, now: Timestamp, config: &Config) -> Report {
    // Stale pods are noise to clean, not symptoms.
    let plan = clean::plan(snapshot, now, &clean::Options::default());
    let mut run = Run::new(snapshot, config, now, &plan);
    for rule in RULES {
        rule(&mut run);
    }
    let have_nodes = !snapshot.nodes.is_empty();
    build_report(
        run.g,
        snapshot,
        config,
        now,
        &plan,
        run.pods_affected,
        run.pods_healthy,
        have_nodes,
        run.recovering,
        run.notes,
    )
}

/// One analysis: the graph being built and what the steps tell each other.
struct Run<'a> {
    snapshot: &'a Snapshot,
    config: &'a Config,
    now: Timestamp,
    ix: Index<'a>,
    g: Builder,
    boots: HashMap<String, clean::Boot>,
    stale: HashSet<(&'a str, &'a str)>,
    longhorn_faulted: HashSet<&'a str>,
    /// Sandbox failure classes per node, weighted by event counts.
    node_sandbox: BTreeMap<&'a str, BTreeMap<Sandbox, i64>>,
    sandbox_totals: HashMap<&'a str, Evidence>,
    sandbox_pods: HashMap<&'a str, usize>,
    dns_victims: Vec<DnsVictim<'a>>,
    pods_affected: usize,
    pods_healthy: usize,
    csi_plugin_pods: Vec<(&'a Pod, Key)>,
    /// Every affected pod bound to a node, with its workload: where a CSI
    /// node plugin cannot be recognised, the storage system's failing pods
    /// on the node stand in for it.
    node_pods: Vec<(&'a Pod, Key)>,
    stuck_creating: Vec<(&'a Pod, Key)>,
    /// Pods whose containers their node's reboot killed, with why.
    reboot_killed: Vec<(&'a Pod, Key, String)>,
    /// Of those, the pods no node failure explains: not back yet.
    recovering: usize,
    pod_workload: HashMap<(&'a str, &'a str), Key>,
    node_cause: BTreeMap<String, Sandbox>,
    dns_down: Option<Key>,
    /// Pods evicted on nodes no longer under pressure, by node: history.
    evicted: BTreeMap<&'a str, Vec<String>>,
    /// Remarks for the report.
    notes: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(
        snapshot: &'a Snapshot,
        config: &'a Config,
        now: Timestamp,
        plan: &'a clean::Plan,
    ) -> Self {
        Run {
            snapshot,
            config,
            now,
            ix: Index::new(snapshot),
            g: Builder::default(),
            boots: clean::boots(snapshot),
            stale: plan
                .entries
                .iter()
                .map(|e| (e.namespace.as_str(), e.name.as_str()))
                .collect(),
            longhorn_faulted: HashSet::new(),
            node_sandbox: BTreeMap::new(),
            sandbox_totals: HashMap::new(),
            sandbox_pods: HashMap::new(),
            dns_victims: Vec::new(),
            pods_affected: 0,
            pods_healthy: 0,
            csi_plugin_pods: Vec::new(),
            node_pods: Vec::new(),
            stuck_creating: Vec::new(),
            reboot_killed: Vec::new(),
            recovering: 0,
            pod_workload: HashMap::new(),
            node_cause: BTreeMap::new(),
            dns_down: None,
            evicted: BTreeMap::new(),
            notes: Vec::new(),
        }
    }
}
