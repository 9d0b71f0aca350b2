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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::Timestamp;
use serde_json::Value;

use crate::classify::{self, Sandbox};
use crate::clean;
use crate::config::{Config, Role};
use crate::model::{ContainerStatus, Event, Node, ObjectRef, Pod, Terminated};
use crate::report::{Cause, Evidence, PodRef, Report};
use crate::snapshot::Snapshot;

mod fix;
mod roots;

use roots::build_report;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    NodeNetwork(String),
    NodeDown(String),
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
    Object(ObjectRef),
}

impl Key {
    fn id(&self) -> String {
        match self {
            Key::NodeNetwork(n) => format!("node-network/{n}"),
            Key::NodeDown(n) => format!("node-down/{n}"),
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
            Key::Object(o) => format!("object/{}/{}/{}", o.kind, o.namespace, o.name),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Key::NodeNetwork(_) | Key::NodeDown(_) => "node",
            Key::Csi { .. } => "csi",
            Key::Component(_) => "component",
            Key::Webhook(_) => "webhook",
            Key::ApiService(_) => "apiservice",
            Key::Longhorn(_) => "longhorn",
            Key::Workload { .. } => "workload",
            Key::Flux { .. } => "flux",
            Key::Object(_) => "object",
        }
    }
    fn subject(&self) -> String {
        match self {
            Key::NodeNetwork(n) | Key::NodeDown(n) => n.clone(),
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
            Key::Object(o) => o.to_string(),
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

/// What explains one unhealthy pod.
enum PodCause<'a> {
    NodeDown,
    Sandbox(Sandbox, Option<&'a Event>),
    Csi(String, Option<&'a Event>),
    Longhorn(String, Option<&'a Event>),
    Volume(&'a Event),
    ImagePull(String, String),
    CrashLoop {
        dns: bool,
        detail: String,
    },
    /// Its containers died with the node's reboot: the node's state
    /// explains it, never a root of its own.
    RebootKilled(String),
    Unschedulable {
        node_down: bool,
        event: Option<&'a Event>,
        detail: String,
    },
    NotReady {
        dns: bool,
        msg: String,
    },
    Stuck(String),
}

/// Whether a container's termination is the reboot of its node killing
/// it: the runtime lost it (`Unknown`, exit code 255) and it ended at or
/// before the node's current boot. Without a finish time (the kubelet's
/// `ContainerStatusUnknown` carries none), the pod's own start stands in.
fn killed_by_reboot(t: &Terminated, pod: &Pod, boot: &clean::Boot) -> bool {
    if !classify::lost_container(&t.reason, t.exit_code) {
        return false;
    }
    // A zero time (`0001-01-01T00:00:00Z`) is as good as none.
    let finished = t.finished_at.filter(|f| f.as_second() > 0);
    finished
        .or(pod.status.start_time)
        .or(pod.metadata.creation_timestamp)
        .is_some_and(|f| f <= boot.since)
}

/// The container's last termination when it says nothing about the
/// application: the reboot killed it, so its exit and the restarts counted
/// before it predate the boot.
fn last_killed_by_reboot(c: &ContainerStatus, pod: &Pod, boot: Option<&clean::Boot>) -> bool {
    let Some(boot) = boot else {
        return false;
    };
    let last = match &c.state.terminated {
        Some(t) => Some(t),
        None => c.last_state.terminated.as_ref(),
    };
    last.is_some_and(|t| killed_by_reboot(t, pod, boot))
}

fn crash_detail(pod: &Pod, boot: Option<&clean::Boot>) -> Option<(String, String)> {
    for c in pod.containers() {
        if last_killed_by_reboot(c, pod, boot) {
            continue;
        }
        let waiting = c
            .state
            .waiting
            .as_ref()
            .map(|w| w.reason.as_str())
            .unwrap_or("");
        let crashing = waiting == "CrashLoopBackOff"
            || (c.restart_count > 0 && !c.ready && c.last_state.terminated.is_some())
            || c.state
                .terminated
                .as_ref()
                .is_some_and(|t| t.exit_code != 0);
        if crashing {
            let t = c
                .last_state
                .terminated
                .as_ref()
                .or(c.state.terminated.as_ref());
            let (code, reason, msg) = t
                .map(|t| (t.exit_code, t.reason.as_str(), t.message.as_str()))
                .unwrap_or((0, "", ""));
            // `OOMKilled` says more than its exit code; `Error` says nothing.
            let reason = match reason {
                "" | "Error" => String::new(),
                r => format!(" ({r})"),
            };
            let detail = format!(
                "container {} restarted {} times, last exit code {code}{reason}",
                c.name, c.restart_count
            );
            return Some((detail, msg.to_string()));
        }
    }
    None
}

/// Why a pod that is not crashing is down because its node rebooted: a
/// container the reboot killed (and not back yet), or one whose status
/// still says it runs since before a proven reboot (the kubelet has not
/// rewritten it). `None` when the node's boot is unknown.
fn reboot_killed(pod: &Pod, boot: Option<&clean::Boot>) -> Option<String> {
    let b = boot?;
    let proven = b.evidence == clean::BootEvidence::RebootedEvent;
    let killed: Vec<&str> = pod
        .containers()
        .filter(|c| {
            let stale_running = proven
                && c.state
                    .running
                    .as_ref()
                    .and_then(|r| r.started_at)
                    .is_some_and(|t| t < b.since);
            let back = c.state.running.is_some() && !stale_running;
            stale_running || (!back && last_killed_by_reboot(c, pod, boot))
        })
        .map(|c| c.name.as_str())
        .collect();
    if killed.is_empty() {
        return None;
    }
    Some(format!(
        "container(s) {} killed by the reboot of {} at {}, not crashed",
        killed.join(", "),
        pod.spec.node_name,
        b.since
    ))
}

fn classify_pod<'a>(
    pod: &'a Pod,
    ix: &Index<'a>,
    longhorn_faulted: &HashSet<&str>,
    boot: Option<&clean::Boot>,
) -> PodCause<'a> {
    let node = ix.nodes.get(pod.spec.node_name.as_str());
    if let Some(n) = node
        && !n.is_ready()
    {
        return PodCause::NodeDown;
    }
    let events = ix.pod_events(pod);
    let warnings = || events.iter().copied().filter(|e| e.type_ != "Normal");
    // A pod that got as far as running, crashing or pulling images has its
    // sandbox and volumes: older sandbox/volume events no longer explain it.
    let past_setup = pod.containers().any(|c| {
        c.state.running.is_some()
            || c.state.waiting.as_ref().is_some_and(|w| {
                w.reason == "CrashLoopBackOff"
                    || classify::is_image_pull_failure(&w.reason, &w.message)
            })
    });
    if !pod.spec.host_network
        && !past_setup
        && let Some(e) = warnings().find(|e| classify::is_sandbox_failure(&e.reason, &e.message))
    {
        return PodCause::Sandbox(classify::sandbox(&e.message), Some(e));
    }
    if !past_setup
        && let Some(e) = warnings().find(|e| classify::is_volume_failure(&e.reason, &e.message))
    {
        if let Some(driver) = classify::unregistered_csi_driver(&e.message) {
            return PodCause::Csi(driver, Some(e));
        }
        for claim in pod.claims() {
            if let Some(pv) = ix.claims.get(&(pod.metadata.namespace.as_str(), claim))
                && let Some((_, handle)) = ix.pv_driver.get(pv)
                && longhorn_faulted.contains(handle)
            {
                return PodCause::Longhorn(handle.to_string(), Some(e));
            }
        }
        return PodCause::Volume(e);
    }
    for c in pod.containers() {
        if let Some(w) = &c.state.waiting
            && classify::is_image_pull_failure(&w.reason, &w.message)
        {
            let msg = warnings()
                .find(|e| {
                    classify::is_image_pull_failure(&e.reason, &e.message) && e.reason != "BackOff"
                })
                .map(|e| e.message.clone())
                .unwrap_or_else(|| w.message.clone());
            return PodCause::ImagePull(c.image.clone(), msg);
        }
    }
    // The first text saying a lookup failed: its termination message, an
    // event about it, a line of its log.
    let dns_text = |msg: &str| -> Option<String> {
        if classify::is_dns_error(msg) {
            return Some(msg.to_string());
        }
        if let Some(e) = warnings().find(|e| classify::is_dns_error(&e.message)) {
            return Some(e.message.clone());
        }
        ix.logs
            .get(&(pod.metadata.namespace.as_str(), pod.metadata.name.as_str()))
            .and_then(|l| l.iter().find(|l| classify::is_dns_error(l)))
            .map(|l| l.to_string())
    };
    if let Some((detail, msg)) = crash_detail(pod, boot) {
        let dns = dns_text(&msg);
        // Show the part of a long text that says what failed.
        let shown = match &dns {
            Some(t) => classify::dns_snippet(t).unwrap_or(t),
            None => &msg,
        };
        let detail = if shown.is_empty() {
            detail
        } else {
            format!("{detail}: {}", classify::short(shown, 160))
        };
        return PodCause::CrashLoop {
            dns: dns.is_some(),
            detail,
        };
    }
    if let Some(detail) = reboot_killed(pod, boot) {
        return PodCause::RebootKilled(detail);
    }
    if pod.spec.node_name.is_empty() {
        let ev = warnings().find(|e| e.reason == "FailedScheduling");
        let msg = ev
            .map(|e| e.message.clone())
            .or_else(|| pod.condition("PodScheduled").map(|c| c.message.clone()))
            .unwrap_or_default();
        return PodCause::Unschedulable {
            node_down: classify::unschedulable_due_to_node_down(&msg),
            event: ev,
            detail: msg,
        };
    }
    if pod.status.phase == "Running" {
        let msg = warnings()
            .find(|e| e.reason == "Unhealthy")
            .map(|e| e.message.clone())
            .unwrap_or_else(|| "Running but not Ready".into());
        return match dns_text(&msg) {
            Some(t) => PodCause::NotReady {
                dns: true,
                msg: format!("not Ready: {}", classify::dns_snippet(&t).unwrap_or(&t)),
            },
            None => PodCause::NotReady { dns: false, msg },
        };
    }
    PodCause::Stuck(format!("{} with no explaining event", pod.display_status()))
}

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

/// Flux controller that reconciles a kind.
fn flux_controller(kind: &str) -> &'static [&'static str] {
    match kind {
        "Kustomization" => &["kustomize-controller", "source-controller"],
        "HelmRelease" => &["helm-controller", "source-controller"],
        "GitRepository" | "HelmRepository" | "OCIRepository" | "HelmChart" | "Bucket" => {
            &["source-controller"]
        }
        "Alert" | "Provider" | "Receiver" => &["notification-controller"],
        "ImageRepository" | "ImagePolicy" => &["image-reflector-controller"],
        "ImageUpdateAutomation" => &["image-automation-controller"],
        _ => &[],
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> &'v str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("")
}

fn flux_failure(v: &Value) -> Option<(String, String, Option<Timestamp>)> {
    let conds = v["status"]["conditions"].as_array()?;
    let failing = |t: &str, s: &str| conds.iter().find(|c| c["type"] == t && c["status"] == s);
    let c = failing("Ready", "False").or_else(|| failing("Stalled", "True"))?;
    let at = c["lastTransitionTime"]
        .as_str()
        .and_then(|t| t.parse().ok());
    Some((
        str_at(c, &["reason"]).to_string(),
        str_at(c, &["message"]).to_string(),
        at,
    ))
}

/// Analyses a snapshot as of `now`.
pub fn analyse(snapshot: &Snapshot, now: Timestamp, config: &Config) -> Report {
    // Stale pods are noise to clean, not symptoms.
    let plan = clean::plan(snapshot, now, &clean::Options::default());
    let mut run = Run::new(snapshot, config, now, &plan);
    run.faulted_longhorn_volumes();
    run.nodes();
    run.pods();
    run.pod_network_conditions();
    run.node_networks();
    run.stuck_pods();
    run.reboot_killed_pods();
    run.cni_pods();
    run.csi_registration();
    run.longhorn_causes();
    run.dns_components();
    run.webhooks();
    run.api_services();
    run.flux_objects();
    run.blocked_objects();
    run.workload_titles();
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
    dns_victims: Vec<Key>,
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
            notes: Vec::new(),
        }
    }

    /// Longhorn volumes that are faulted.
    fn faulted_longhorn_volumes(&mut self) {
        let snapshot = self.snapshot;
        let Run {
            g,
            longhorn_faulted,
            ..
        } = self;
        for v in &snapshot.custom {
            if v["kind"] == "Volume" && str_at(v, &["apiVersion"]).starts_with("longhorn.io/") {
                let robustness = str_at(v, &["status", "robustness"]);
                if robustness == "faulted" {
                    let name = str_at(v, &["metadata", "name"]);
                    longhorn_faulted.insert(name);
                    let key = Key::Longhorn(name.to_string());
                    let n = g.node(&key, || format!("Longhorn volume {name} is faulted"));
                    n.own = Some(Cause::LonghornVolumeFaulted);
                    n.evidence.push(Evidence {
                        object: ObjectRef::new(
                            "Volume",
                            str_at(v, &["metadata", "namespace"]),
                            name,
                        ),
                        reason: "robustness".into(),
                        message: format!(
                            "state {}, robustness faulted",
                            str_at(v, &["status", "state"])
                        ),
                        count: 1,
                        first_seen: None,
                        last_seen: None,
                    });
                }
            }
        }
    }

    /// Nodes that are down, or have no podCIDR.
    fn nodes(&mut self) {
        let snapshot = self.snapshot;
        let now = self.now;
        let Run {
            ix,
            g,
            node_sandbox,
            ..
        } = self;
        let any_cidr = snapshot.nodes.iter().any(|n| !n.spec.pod_cidr.is_empty());
        for node in &snapshot.nodes {
            let name = node.name();
            if !node.is_ready() {
                let key = Key::NodeDown(name.into());
                let ready = node.ready();
                let status = ready.map(|c| c.status.as_str()).unwrap_or("Unknown");
                let n = g.node(&key, || format!("node {name} is NotReady (Ready={status})"));
                n.own = Some(Cause::NodeNotReady);
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
                if let Some(ev) = stale_lease(snapshot, name, now) {
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

    /// What rebootguard's agent says on each Node (`PodNetworkReady`): a
    /// fresh `False` is the node's pod network root, whatever the events
    /// say (they may be old, or absent when the taint kept pods away); a
    /// condition whose heartbeat is stale is not trusted (Unknown), only noted.
    fn pod_network_conditions(&mut self) {
        let snapshot = self.snapshot;
        let now = self.now;
        let Run {
            g,
            node_sandbox,
            notes,
            ..
        } = self;
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

    /// Every unhealthy pod gets one explanation (see the module docs) and
    /// joins its workload's node in the graph.
    fn pods(&mut self) {
        let snapshot = self.snapshot;
        let config = self.config;
        let Run {
            ix,
            g,
            stale,
            longhorn_faulted,
            node_sandbox,
            sandbox_totals,
            sandbox_pods,
            dns_victims,
            pods_affected,
            pods_healthy,
            csi_plugin_pods,
            node_pods,
            stuck_creating,
            pod_workload,
            boots,
            reboot_killed,
            ..
        } = self;
        let down_nodes: Vec<Key> = g
            .nodes
            .keys()
            .filter(|k| matches!(k, Key::NodeDown(_)))
            .cloned()
            .collect();
        for pod in &snapshot.pods {
            if healthy(pod) {
                *pods_healthy += 1;
                continue;
            }
            let ns = pod.metadata.namespace.as_str();
            if stale.contains(&(ns, pod.metadata.name.as_str()))
                || (pod.is_terminal() && pod.status.phase == "Succeeded")
            {
                continue;
            }
            if pod.status.phase == "Failed"
                && pod.metadata.controller().is_some_and(|o| o.kind == "Job")
            {
                // A failed Job attempt; the Job's own status tells whether it matters.
                continue;
            }
            let (wkind, wname) = workload_of(pod);
            let wkey = Key::Workload {
                namespace: ns.into(),
                kind: wkind.clone(),
                name: wname.clone(),
            };
            *pods_affected += 1;
            let node = pod.spec.node_name.as_str();
            let cause = classify_pod(pod, ix, longhorn_faulted, boots.get(node));
            if let PodCause::RebootKilled(detail) = cause {
                // In the graph only once the node's state explains it.
                reboot_killed.push((pod, wkey, detail));
                continue;
            }
            pod_workload.insert((ns, pod.metadata.name.as_str()), wkey.clone());
            let w = g.node(&wkey, || format!("{wkind} {ns}/{wname}"));
            let mut r = pod_ref(pod);
            if matches!(cause, PodCause::NodeDown) {
                // Its status is what the node said before it went silent.
                r.status = format!("{}, node NotReady", r.status);
            }
            w.pods.insert((ns.into(), pod.metadata.name.clone()), r);
            if pod
                .containers()
                .any(|c| c.name.contains("driver-registrar"))
                && !node.is_empty()
            {
                csi_plugin_pods.push((pod, wkey.clone()));
            }
            if !node.is_empty() {
                node_pods.push((pod, wkey.clone()));
            }
            let dns_component = config
                .components
                .iter()
                .any(|c| c.role == Role::Dns && c.matches(pod));
            let own = |g: &mut Builder, cause: Cause, detail: String, ev: Option<Evidence>| {
                let w = g.node(&wkey, String::new);
                w.own_pods += 1;
                if w.own.is_none() {
                    w.own = Some(cause);
                    w.own_detail = detail;
                }
                if let Some(ev) = ev
                    && w.evidence.len() < 5
                {
                    w.evidence.push(ev);
                }
            };
            match cause {
                PodCause::NodeDown => g.edge(
                    &Key::NodeDown(node.into()),
                    &wkey,
                    "pods on a NotReady node",
                ),
                PodCause::Sandbox(kind, ev) => {
                    *node_sandbox
                        .entry(node)
                        .or_default()
                        .entry(kind)
                        .or_default() += ev.map_or(1, |e| e.count);
                    let nkey = Key::NodeNetwork(node.into());
                    let n = g.node(&nkey, String::new);
                    if let Some(e) = ev {
                        n.evidence.push(evidence(e));
                        // The node-wide total: every failing sandbox on it.
                        let total = sandbox_totals.entry(node).or_insert_with(|| Evidence {
                            object: ObjectRef::new("Node", "", node),
                            reason: e.reason.clone(),
                            message: e.message.clone(),
                            count: 0,
                            first_seen: e.first_seen,
                            last_seen: e.last_seen,
                        });
                        total.count += e.count;
                        total.first_seen = total.first_seen.min(e.first_seen).or(e.first_seen);
                        total.last_seen = total.last_seen.max(e.last_seen);
                    }
                    *sandbox_pods.entry(node).or_default() += 1;
                    g.edge(&nkey, &wkey, "pod sandboxes fail CNI ADD on this node");
                }
                PodCause::Csi(driver, ev) => {
                    let key = Key::Csi {
                        driver: driver.clone(),
                        node: node.into(),
                    };
                    let n = g.node(&key, || {
                        format!("CSI driver {driver} not registered on node {node}")
                    });
                    if let Some(e) = ev {
                        n.evidence.push(evidence(e));
                    }
                    g.edge(
                        &key,
                        &wkey,
                        "volumes of this driver cannot attach/mount on the node",
                    );
                }
                PodCause::Longhorn(vol, ev) => {
                    let key = Key::Longhorn(vol);
                    if let Some(e) = ev {
                        g.node(&key, String::new).evidence.push(evidence(e));
                    }
                    g.edge(&key, &wkey, "mounts the faulted volume");
                }
                PodCause::Volume(e) => own(
                    &mut *g,
                    Cause::VolumeFailure,
                    classify::short(&e.message, 200),
                    Some(evidence(e)),
                ),
                PodCause::ImagePull(image, msg) => {
                    own(
                        &mut *g,
                        Cause::ImagePull,
                        format!("image {image}: {}", classify::short(&msg, 260)),
                        None,
                    );
                    let w = g.node(&wkey, String::new);
                    if w.evidence.len() < 5 {
                        w.evidence.push(Evidence {
                            object: ObjectRef::new("Pod", ns, &pod.metadata.name),
                            reason: "ErrImagePull".into(),
                            message: msg,
                            count: 1,
                            first_seen: None,
                            last_seen: None,
                        });
                    }
                }
                PodCause::CrashLoop { dns, detail } => {
                    let ev = Evidence {
                        object: ObjectRef::new("Pod", ns, &pod.metadata.name),
                        reason: "CrashLoopBackOff".into(),
                        message: detail.clone(),
                        count: pod.containers().map(|c| c.restart_count).max().unwrap_or(0),
                        first_seen: pod.status.start_time,
                        last_seen: None,
                    };
                    // The DNS server's own upstream errors are not it
                    // being a victim of DNS.
                    if dns && !dns_component {
                        dns_victims.push(wkey.clone());
                        let w = g.node(&wkey, String::new);
                        w.evidence.push(ev);
                        w.own_detail = detail;
                    } else {
                        own(&mut *g, Cause::CrashLoop, detail, Some(ev));
                    }
                }
                PodCause::Unschedulable {
                    node_down,
                    event,
                    detail,
                } => {
                    if node_down && !down_nodes.is_empty() {
                        for k in &down_nodes {
                            g.edge(k, &wkey, "cannot schedule while nodes are NotReady");
                        }
                    } else {
                        own(
                            &mut *g,
                            Cause::Unschedulable,
                            classify::short(&detail, 200),
                            event.map(evidence),
                        );
                    }
                }
                // Taken out of the loop above, before it joins the graph.
                PodCause::RebootKilled(_) => {}
                PodCause::NotReady { dns: true, msg } if !dns_component => {
                    dns_victims.push(wkey.clone());
                    let w = g.node(&wkey, String::new);
                    if w.own_detail.is_empty() {
                        w.own_detail = classify::short(&msg, 200);
                    }
                }
                PodCause::NotReady { msg, .. } => own(
                    &mut *g,
                    Cause::PodNotReady,
                    classify::short(&msg, 200),
                    None,
                ),
                PodCause::Stuck(msg) => {
                    if !pod.spec.host_network && !node.is_empty() && pod.status.phase == "Pending" {
                        stuck_creating.push((pod, wkey.clone()));
                    } else {
                        own(&mut *g, Cause::PodStuck, msg, None);
                    }
                }
            }
        }
    }

    /// Node network nodes: title from their dominant cause.
    fn node_networks(&mut self) {
        let Run {
            g,
            boots,
            node_sandbox,
            sandbox_totals,
            sandbox_pods,
            node_cause,
            ..
        } = self;
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

    /// Pods stuck Pending on a node whose CNI fails (their events may have expired).
    fn stuck_pods(&mut self) {
        let Run {
            g,
            stuck_creating,
            node_cause,
            ..
        } = self;
        for (pod, wkey) in stuck_creating {
            let node = pod.spec.node_name.as_str();
            if node_cause.contains_key(node) {
                g.edge(
                    &Key::NodeNetwork(node.into()),
                    wkey,
                    "pod sandboxes fail CNI ADD on this node",
                );
            } else {
                let w = g.node(wkey, String::new);
                w.own_pods += 1;
                w.own.get_or_insert(Cause::PodStuck);
                if w.own_detail.is_empty() {
                    w.own_detail = format!("{} with no explaining event", pod.display_status());
                }
            }
        }
    }

    /// Pods the reboot of their node killed: consequences of the node's
    /// network when its CNI fails (they cannot come back), otherwise not
    /// back yet, which is the kubelet's work in progress and no root; noted.
    fn reboot_killed_pods(&mut self) {
        let Run {
            g,
            reboot_killed,
            node_cause,
            pod_workload,
            node_pods,
            csi_plugin_pods,
            notes,
            recovering,
            ..
        } = self;
        let mut waiting: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (pod, wkey, detail) in reboot_killed.drain(..) {
            let node = pod.spec.node_name.as_str();
            let ns = pod.metadata.namespace.as_str();
            if pod.spec.host_network || !node_cause.contains_key(node) {
                *recovering += 1;
                waiting.entry(node).or_default().push(pod.key());
                continue;
            }
            let Key::Workload { kind, name, .. } = &wkey else {
                continue;
            };
            let title = format!("{kind} {ns}/{name}");
            let w = g.node(&wkey, || title);
            w.pods
                .insert((ns.into(), pod.metadata.name.clone()), pod_ref(pod));
            if w.evidence.len() < 5 {
                w.evidence.push(Evidence {
                    object: ObjectRef::new("Pod", ns, &pod.metadata.name),
                    reason: "KilledByReboot".into(),
                    message: detail,
                    count: 1,
                    first_seen: None,
                    last_seen: None,
                });
            }
            g.edge(
                &Key::NodeNetwork(node.into()),
                &wkey,
                "the reboot killed its containers and pod sandboxes fail CNI ADD on this node",
            );
            pod_workload.insert((ns, pod.metadata.name.as_str()), wkey.clone());
            node_pods.push((pod, wkey.clone()));
            if pod
                .containers()
                .any(|c| c.name.contains("driver-registrar"))
            {
                csi_plugin_pods.push((pod, wkey));
            }
        }
        for (node, pods) in waiting {
            let shown: Vec<&str> = pods.iter().take(5).map(String::as_str).collect();
            let more = pods.len().saturating_sub(shown.len());
            notes.push(format!(
                "node {node} rebooted: {} pod(s) whose containers the reboot killed are not back yet (not crashes; the kubelet restarts them): {}{}",
                pods.len(),
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ));
        }
    }

    /// A CNI that runs as pods (flannel's DaemonSet outside k3s): its failing
    /// pod on a node is why that node's sandboxes fail.
    fn cni_pods(&mut self) {
        let snapshot = self.snapshot;
        let config = self.config;
        let Run {
            g,
            pod_workload,
            node_cause,
            ..
        } = self;
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

    /// CSI registration per node: caused by the failing node plugin there.
    fn csi_registration(&mut self) {
        let config = self.config;
        let Run {
            ix,
            g,
            csi_plugin_pods,
            node_pods,
            ..
        } = self;
        let csi_keys: Vec<Key> = g
            .nodes
            .keys()
            .filter(|k| matches!(k, Key::Csi { .. }))
            .cloned()
            .collect();
        for key in &csi_keys {
            let Key::Csi { driver, node } = key else {
                continue;
            };
            let registered = ix
                .csinode
                .get(node.as_str())
                .is_some_and(|d| d.contains(&driver.as_str()));
            if !registered && ix.csinode.contains_key(node.as_str()) {
                g.node(key, String::new).evidence.push(Evidence {
                    object: ObjectRef::new("CSINode", "", node),
                    reason: "DriverNotRegistered".into(),
                    message: format!("CSINode {node} lists no {driver}"),
                    count: 1,
                    first_seen: None,
                    last_seen: None,
                });
            }
            let storage_ns: Vec<&str> = config
                .components
                .iter()
                .filter(|c| matches!(&c.role, Role::Storage { driver: d } if d == driver))
                .map(|c| c.namespace.as_str())
                .collect();
            let mut linked = false;
            for (pod, wkey) in csi_plugin_pods.iter() {
                let ns_ok =
                    storage_ns.is_empty() || storage_ns.contains(&pod.metadata.namespace.as_str());
                if pod.spec.node_name == *node && ns_ok {
                    g.edge(wkey, key, "the CSI node plugin on this node is not running");
                    linked = true;
                }
            }
            // No recognisable node plugin (no driver-registrar status, as
            // while its sandbox cannot even be created): the storage
            // system's own failing pods on the node are why it is not registered.
            if !linked && !storage_ns.is_empty() {
                for (pod, wkey) in node_pods.iter() {
                    if pod.spec.node_name == *node
                        && storage_ns.contains(&pod.metadata.namespace.as_str())
                        && wkey != key
                    {
                        g.edge(
                            wkey,
                            key,
                            "the storage system's pods on this node are not running",
                        );
                        linked = true;
                    }
                }
            }
            if !linked {
                let n = g.node(key, String::new);
                n.own = Some(Cause::CsiDriverNotRegistered {
                    driver: driver.clone(),
                });
            }
        }
    }

    /// Faulted Longhorn volumes: caused by failing workloads of the storage system.
    fn longhorn_causes(&mut self) {
        let config = self.config;
        let Run { g, .. } = self;
        let lh_keys: Vec<Key> = g
            .nodes
            .keys()
            .filter(|k| matches!(k, Key::Longhorn(_)))
            .cloned()
            .collect();
        if !lh_keys.is_empty() {
            let storage_ns: HashSet<&str> = config
                .components
                .iter()
                .filter(
                    |c| matches!(&c.role, Role::Storage { driver } if driver == "driver.longhorn.io"),
                )
                .map(|c| c.namespace.as_str())
                .collect();
            let storage_workloads: Vec<Key> = g
                .nodes
                .keys()
                .filter(|k| matches!(k, Key::Workload { namespace, .. } if storage_ns.contains(namespace.as_str())))
                .cloned()
                .collect();
            for lh in &lh_keys {
                for w in &storage_workloads {
                    g.edge(w, lh, "Longhorn's own pods are not running");
                }
            }
        }
    }

    /// DNS components (CoreDNS) without ready endpoints, and their victims.
    fn dns_components(&mut self) {
        let snapshot = self.snapshot;
        let config = self.config;
        let Run {
            ix,
            g,
            dns_victims,
            pod_workload,
            dns_down,
            ..
        } = self;
        // Whether a Service absent from the snapshot is absent from the
        // cluster: only when Services were listed at all.
        let services_known = !snapshot.services.is_empty()
            && !snapshot
                .missing
                .iter()
                .any(|m| m.kind == "Service" || m.kind.ends_with(" Service"));
        for comp in config.components.iter().filter(|c| c.role == Role::Dns) {
            let pods: Vec<&Pod> = snapshot.pods.iter().filter(|p| comp.matches(p)).collect();
            let svc = comp.service.as_deref();
            let svc_exists = svc.is_some_and(|s| {
                snapshot
                    .services
                    .iter()
                    .any(|x| x.metadata.namespace == comp.namespace && x.metadata.name == s)
            });
            let svc_missing = svc.is_some() && services_known && !svc_exists;
            // Without pods or Service the cluster may use another DNS: only
            // failing lookups make a missing Service worth naming.
            let named = !pods.is_empty() || svc_exists || (svc_missing && !dns_victims.is_empty());
            if !named {
                continue;
            }
            let ready_pods = pods.iter().filter(|p| p.is_ready()).count();
            let (ready, how) = match svc {
                Some(s) if svc_missing => (
                    0,
                    format!(
                        "Service {}/{s} does not exist: nothing answers on the cluster DNS address",
                        comp.namespace
                    ),
                ),
                Some(s) if ix.have_slices => (
                    ix.ready_endpoints
                        .get(&(comp.namespace.as_str(), s))
                        .copied()
                        .unwrap_or(0),
                    if ready_pods > 0 {
                        format!(
                            "service {}/{s} has no ready endpoints while {ready_pods} of its pod(s) are Ready (does its selector match them?)",
                            comp.namespace
                        )
                    } else {
                        format!("service {}/{s} has no ready endpoints", comp.namespace)
                    },
                ),
                _ => (ready_pods, format!("0/{} pods ready", pods.len())),
            };
            if ready > 0 {
                continue;
            }
            let key = Key::Component(comp.name.clone());
            let name = comp.name.clone();
            let n = g.node(&key, || format!("{name} is down: {how}"));
            n.evidence.push(Evidence {
                object: ObjectRef::new("Service", &comp.namespace, svc.unwrap_or(&comp.name)),
                reason: "NoReadyEndpoints".into(),
                message: how.clone(),
                count: 1,
                first_seen: None,
                last_seen: None,
            });
            let mut linked = false;
            for p in &pods {
                if let Some(w) =
                    pod_workload.get(&(p.metadata.namespace.as_str(), p.metadata.name.as_str()))
                {
                    g.edge(w, &key, "its pods are not running");
                    linked = true;
                }
            }
            if !linked {
                g.node(&key, String::new).own = Some(Cause::ComponentDown {
                    component: comp.name.clone(),
                });
            }
            dns_down.get_or_insert(key);
        }
        for w in dns_victims.iter() {
            match &dns_down {
                Some(dns) => g.edge(dns, w, "crashes on failed DNS lookups"),
                None => {
                    let n = g.node(w, String::new);
                    n.own_pods += 1;
                    n.own.get_or_insert(Cause::DnsLookupFailures);
                }
            }
        }
    }

    /// Admission webhooks whose service has no ready endpoints, linked to
    /// their failing backends.
    fn webhooks(&mut self) {
        let snapshot = self.snapshot;
        let Run {
            ix,
            g,
            pod_workload,
            ..
        } = self;
        let webhooks = snapshot
            .validating_webhook_configurations
            .iter()
            .chain(&snapshot.mutating_webhook_configurations)
            .flat_map(|c| c.webhooks.iter());
        for wh in webhooks {
            let Some(svc) = &wh.client_config.service else {
                continue;
            };
            let service = snapshot
                .services
                .iter()
                .find(|s| s.metadata.namespace == svc.namespace && s.metadata.name == svc.name);
            let backends: Vec<&Pod> = match service {
                Some(s) if !s.spec.selector.is_empty() => snapshot
                    .pods
                    .iter()
                    .filter(|p| {
                        p.metadata.namespace == svc.namespace
                            && s.spec
                                .selector
                                .iter()
                                .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let ready = if ix.have_slices {
                ix.ready_endpoints
                    .get(&(svc.namespace.as_str(), svc.name.as_str()))
                    .copied()
                    .unwrap_or(0)
            } else {
                backends.iter().filter(|p| p.is_ready()).count()
            };
            if ready > 0 || (!ix.have_slices && service.is_none()) {
                continue;
            }
            let key = Key::Webhook(wh.name.clone());
            let policy = if wh.failure_policy.is_empty() {
                "Fail"
            } else {
                wh.failure_policy.as_str()
            };
            let n = g.node(&key, || {
                format!(
                    "admission webhook {} has no ready endpoints (service {}/{}, failurePolicy {policy})",
                    wh.name, svc.namespace, svc.name
                )
            });
            n.evidence.push(Evidence {
                object: ObjectRef::new("Service", &svc.namespace, &svc.name),
                reason: "NoReadyEndpoints".into(),
                message: format!("0 ready endpoints behind webhook {}", wh.name),
                count: 1,
                first_seen: None,
                last_seen: None,
            });
            let mut linked = false;
            for p in backends {
                if let Some(w) =
                    pod_workload.get(&(p.metadata.namespace.as_str(), p.metadata.name.as_str()))
                {
                    g.edge(w, &key, "the webhook's backend pods are not running");
                    linked = true;
                }
            }
            if !linked {
                g.node(&key, String::new).own = Some(Cause::WebhookUnavailable {
                    webhook: wh.name.clone(),
                });
            }
        }
    }

    /// Unavailable aggregated APIs, linked to their failing backends.
    fn api_services(&mut self) {
        let snapshot = self.snapshot;
        let Run {
            g, pod_workload, ..
        } = self;
        for a in &snapshot.api_services {
            let (Some(svc), Some(cond)) = (&a.spec.service, a.available()) else {
                continue;
            };
            if cond.status == "True" {
                continue;
            }
            let key = Key::ApiService(a.metadata.name.clone());
            let n = g.node(&key, || {
                format!("APIService {} is unavailable", a.metadata.name)
            });
            n.evidence.push(Evidence {
                object: ObjectRef::new("APIService", "", &a.metadata.name),
                reason: cond.reason.clone(),
                message: cond.message.clone(),
                count: 1,
                first_seen: cond.last_transition_time,
                last_seen: cond.last_transition_time,
            });
            let service = snapshot
                .services
                .iter()
                .find(|s| s.metadata.namespace == svc.namespace && s.metadata.name == svc.name);
            let mut linked = false;
            if let Some(s) = service.filter(|s| !s.spec.selector.is_empty()) {
                for p in snapshot.pods.iter().filter(|p| {
                    p.metadata.namespace == svc.namespace
                        && s.spec
                            .selector
                            .iter()
                            .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
                }) {
                    if let Some(w) =
                        pod_workload.get(&(p.metadata.namespace.as_str(), p.metadata.name.as_str()))
                    {
                        g.edge(w, &key, "its backend pods are not running");
                        linked = true;
                    }
                }
            }
            if !linked {
                g.node(&key, String::new).own = Some(Cause::ApiServiceUnavailable);
            }
        }
    }

    /// Flux objects not Ready: through their controller, DNS, a dependency,
    /// a webhook or their release's pods, else their own root.
    fn flux_objects(&mut self) {
        let snapshot = self.snapshot;
        let config = self.config;
        let Run {
            ix,
            g,
            pod_workload,
            dns_down,
            ..
        } = self;
        let flux_ns = config.flux_namespace.as_str();
        let mut flux_failing: Vec<(Key, &Value, String, String)> = Vec::new();
        for v in &snapshot.custom {
            let api = str_at(v, &["apiVersion"]);
            if !api
                .split('/')
                .next()
                .unwrap_or("")
                .ends_with(".toolkit.fluxcd.io")
            {
                continue;
            }
            let Some((reason, message, at)) = flux_failure(v) else {
                continue;
            };
            let kind = str_at(v, &["kind"]).to_string();
            let ns = str_at(v, &["metadata", "namespace"]).to_string();
            let name = str_at(v, &["metadata", "name"]).to_string();
            let key = Key::Flux {
                kind: kind.clone(),
                namespace: ns.clone(),
                name: name.clone(),
            };
            let n = g.node(&key, || {
                format!(
                    "{kind} {ns}/{name} not Ready: {}",
                    classify::short(&message, 120)
                )
            });
            n.evidence.push(Evidence {
                object: ObjectRef::new(&kind, &ns, &name),
                reason: if reason.is_empty() {
                    "NotReady".into()
                } else {
                    reason.clone()
                },
                message: message.clone(),
                count: 1,
                first_seen: at,
                last_seen: at,
            });
            flux_failing.push((key, v, reason, message));
        }
        let flux_keys: HashMap<(String, String), Key> = flux_failing
            .iter()
            .filter_map(|(k, ..)| match k {
                Key::Flux {
                    namespace, name, ..
                } => Some(((namespace.clone(), name.clone()), k.clone())),
                _ => None,
            })
            .collect();
        // Failing workloads by Helm instance label, for HelmRelease → workload links.
        let mut by_instance: HashMap<(&str, &str), BTreeSet<Key>> = HashMap::new();
        for pod in &snapshot.pods {
            let ns = pod.metadata.namespace.as_str();
            if let Some(w) = pod_workload.get(&(ns, pod.metadata.name.as_str())) {
                for label in [
                    "app.kubernetes.io/instance",
                    "helm.toolkit.fluxcd.io/name",
                    "release",
                ] {
                    if let Some(v) = pod.metadata.labels.get(label) {
                        by_instance.entry((ns, v)).or_default().insert(w.clone());
                    }
                }
            }
        }
        for (key, v, reason, message) in &flux_failing {
            let Key::Flux {
                kind,
                namespace,
                name,
            } = key
            else {
                continue;
            };
            let mut linked = false;
            for ctl in flux_controller(kind) {
                let ckey = Key::Workload {
                    namespace: flux_ns.into(),
                    kind: "Deployment".into(),
                    name: (*ctl).into(),
                };
                if g.nodes.contains_key(&ckey) {
                    g.edge(&ckey, key, "its Flux controller is not running");
                    linked = true;
                }
            }
            // Its Ready message, or an event about it (a source's fetch
            // error while the condition still names the last attempt).
            let dns_failing = classify::is_dns_error(message)
                || ix
                    .events
                    .get(&(kind.as_str(), namespace.as_str(), name.as_str()))
                    .is_some_and(|evs| {
                        evs.iter()
                            .any(|e| e.type_ != "Normal" && classify::is_dns_error(&e.message))
                    });
            if dns_failing && let Some(dns) = &dns_down {
                g.edge(dns, key, "reconciliation fails on DNS lookups");
                linked = true;
            }
            if let Some((dns_, dname)) = classify::flux_dependency(message)
                && let Some(dep) = flux_keys.get(&(dns_, dname))
            {
                g.edge(dep, key, "depends on it");
                linked = true;
            }
            if let Some(webhook) = classify::failed_webhook(message) {
                let wkey = webhook_from_text(g, &webhook);
                g.edge(&wkey, key, "rejected because the webhook cannot be called");
                linked = true;
            }
            if kind == "HelmRelease" {
                let target = str_at(v, &["spec", "targetNamespace"]);
                let target = if target.is_empty() {
                    namespace.as_str()
                } else {
                    target
                };
                let release = str_at(v, &["spec", "releaseName"]);
                let candidates = [
                    release.to_string(),
                    name.clone(),
                    format!("{target}-{name}"),
                ];
                for c in candidates.iter().filter(|c| !c.is_empty()) {
                    if let Some(ws) = by_instance.get(&(target, c.as_str())) {
                        for w in ws {
                            g.edge(w, key, "the release's pods are not ready");
                            linked = true;
                        }
                    }
                }
            }
            if !linked {
                let n = g.node(key, String::new);
                n.own = Some(Cause::FluxNotReady);
                n.own_detail = format!("{reason}: {}", classify::short(message, 200));
            }
        }
    }

    /// Objects a webhook blocks (events name the webhook).
    fn blocked_objects(&mut self) {
        let snapshot = self.snapshot;
        let Run { g, .. } = self;
        for e in &snapshot.events {
            if e.type_ == "Normal" {
                continue;
            }
            let Some(name) = classify::failed_webhook(&e.message) else {
                continue;
            };
            let key = webhook_from_text(g, &name);
            let o = &e.involved_object;
            let flux_key = Key::Flux {
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
            };
            let okey = if g.nodes.contains_key(&flux_key) {
                flux_key
            } else {
                Key::Object(o.clone())
            };
            let o = g.node(&okey, || {
                format!("{} cannot be created or updated", e.involved_object)
            });
            if o.evidence.len() < 3 {
                o.evidence.push(evidence(e));
            }
            g.node(&key, String::new).evidence.push(evidence(e));
            g.edge(&key, &okey, "rejected because the webhook cannot be called");
        }
    }

    /// Workload titles now that causes are known.
    fn workload_titles(&mut self) {
        let Run { g, .. } = self;
        for (key, n) in g.nodes.iter_mut() {
            if let Key::Workload {
                namespace,
                kind,
                name,
            } = key
            {
                let total = n.pods.len();
                let detail = if n.own_detail.is_empty() {
                    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
                    for p in n.pods.values() {
                        *statuses.entry(p.status.as_str()).or_default() += 1;
                    }
                    statuses
                        .iter()
                        .map(|(s, c)| format!("{c} {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    n.own_detail.clone()
                };
                n.title = format!("{kind} {namespace}/{name}: {total} pod(s) failing: {detail}");
            }
        }
    }
}

/// The webhook named by an error text. Known from its configuration, it
/// is already in the graph with its own cause or backend; named only by the
/// text, nothing else can explain it, so it is its own cause.
fn webhook_from_text(g: &mut Builder, name: &str) -> Key {
    let key = Key::Webhook(name.to_string());
    if !g.nodes.contains_key(&key) {
        let n = g.node(&key, || {
            format!("admission webhook {name} cannot be called")
        });
        n.own = Some(Cause::WebhookUnavailable {
            webhook: name.to_string(),
        });
    }
    key
}
