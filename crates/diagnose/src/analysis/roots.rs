//! From the causal graph to ranked roots, impact trees and the report.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;

use super::fix::own_fix;
use super::{Builder, GNode, Key};
use crate::clean;
use crate::cni::Sandbox;
use crate::config::Config;
use crate::report::{
    BlastRadius, Cause, Evidence, Fix, Graph, GraphEdge, GraphNode, Impact, Report, Root, Stale,
    Summary, Verdict,
};
use crate::snapshot::Snapshot;

#[allow(clippy::too_many_arguments)]
pub(super) fn build_report(
    g: Builder,
    snapshot: &Snapshot,
    config: &Config,
    now: Timestamp,
    plan: &clean::Plan,
    pods_affected: usize,
    pods_healthy: usize,
    have_nodes: bool,
    recovering: usize,
    remarks: Vec<String>,
) -> Report {
    let mut incoming: HashMap<&Key, usize> = HashMap::new();
    let mut out: HashMap<&Key, Vec<&Key>> = HashMap::new();
    for (from, to) in g.edges.keys() {
        *incoming.entry(to).or_default() += 1;
        out.entry(from).or_default().push(to);
    }
    // Root candidates: unexplained problems.
    let is_root = |k: &Key, n: &GNode| -> bool {
        let no_cause = incoming.get(k).copied().unwrap_or(0) == 0;
        match k {
            Key::Workload { .. } => n.own_pods > 0 || (no_cause && n.own.is_some()),
            _ => no_cause,
        }
    };
    // Group roots of the same class.
    let mut groups: BTreeMap<(u8, Cause, String), Vec<&Key>> = BTreeMap::new();
    for (k, n) in &g.nodes {
        if !is_root(k, n) {
            continue;
        }
        let cause = n.own.clone().unwrap_or(match k {
            Key::Component(c) => Cause::ComponentDown {
                component: c.clone(),
            },
            Key::Webhook(w) => Cause::WebhookUnavailable { webhook: w.clone() },
            _ => Cause::PodStuck,
        });
        let group = match (k, &cause) {
            (
                Key::NodeNetwork(_) | Key::NodeDown(_) | Key::NodePressure(_) | Key::Csi { .. },
                _,
            ) => (0, cause, String::new()),
            _ => (1, cause, k.id()),
        };
        groups.entry(group).or_default().push(k);
    }
    let mut roots: Vec<Root> = Vec::new();
    for ((_, cause, _), keys) in groups {
        // Reachability for blast radius and the impact tree.
        let mut seen: HashSet<&Key> = HashSet::new();
        let mut stack: Vec<&Key> = keys.clone();
        while let Some(k) = stack.pop() {
            if seen.insert(k)
                && let Some(next) = out.get(k)
            {
                stack.extend(next.iter().copied());
            }
        }
        let mut pods: HashSet<&(String, String)> = HashSet::new();
        let mut br = BlastRadius::default();
        for k in &seen {
            let n = &g.nodes[*k];
            pods.extend(n.pods.keys());
            match k {
                Key::Workload { .. } => br.workloads += 1,
                Key::NodeNetwork(_) | Key::NodeDown(_) | Key::NodePressure(_) => br.nodes += 1,
                Key::Flux { .. } | Key::Argo { .. } | Key::Object(_) | Key::Longhorn(_) => {
                    br.objects += 1
                }
                _ => {}
            }
        }
        br.pods = pods.len();
        let subjects: Vec<String> = keys.iter().map(|k| k.subject()).collect();
        let first = &g.nodes[keys[0]];
        let title = match (&cause, keys[0]) {
            (Cause::Cni { cni }, _) => format!(
                "{} on {}: pod sandboxes fail CNI ADD",
                cni.describe(),
                subjects.join(", ")
            ),
            (Cause::NodeNotReady, _) => format!("node(s) NotReady: {}", subjects.join(", ")),
            (Cause::NodePressure { condition }, _) => format!(
                "{condition} on {}: the kubelet evicts pods and new ones are kept away",
                subjects.join(", ")
            ),
            (Cause::CsiDriverNotRegistered { driver }, _) => {
                format!(
                    "CSI driver {driver} not registered on {}",
                    subjects.join(", ")
                )
            }
            (_, Key::Workload { .. }) if !first.own_detail.is_empty() => {
                let Key::Workload {
                    namespace,
                    kind,
                    name,
                } = keys[0]
                else {
                    unreachable!()
                };
                format!("{kind} {namespace}/{name}: {}", first.own_detail)
            }
            (
                Cause::FluxNotReady,
                Key::Flux {
                    kind,
                    namespace,
                    name,
                },
            ) => {
                format!("{kind} {namespace}/{name} not Ready: {}", first.own_detail)
            }
            (Cause::ArgoApplicationNotHealthy, Key::Argo { namespace, name }) => {
                format!("Application {namespace}/{name}: {}", first.own_detail)
            }
            _ => first.title.clone(),
        };
        let mut evidence: Vec<Evidence> = keys
            .iter()
            .flat_map(|k| g.nodes[*k].evidence.iter().cloned())
            .collect();
        evidence.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_seen.cmp(&b.first_seen)));
        // Keep the most telling few per subject, but all reboot markers.
        let mut kept: Vec<Evidence> = Vec::new();
        let mut per_object: HashMap<String, usize> = HashMap::new();
        for e in evidence {
            let node_of = e.object.name.clone();
            let c = per_object
                .entry(format!(
                    "{}{}",
                    e.reason,
                    if e.object.kind == "Node" {
                        node_of
                    } else {
                        String::new()
                    }
                ))
                .or_default();
            *c += 1;
            if *c <= 2 && kept.len() < 8 {
                kept.push(e);
            }
        }
        let first_seen = kept.iter().filter_map(|e| e.first_seen).min();
        let last_seen = kept.iter().filter_map(|e| e.last_seen).max();
        let fix = match &cause {
            Cause::Cni { cni } => crate::cni::fix(cni, &subjects, snapshot),
            _ => keys
                .iter()
                .flat_map(|k| own_fix(k, &cause, snapshot, config))
                .collect(),
        };
        let mut visited: HashSet<&Key> = HashSet::new();
        let impact = keys
            .iter()
            .map(|k| impact_tree(k, &g, &out, &mut visited))
            .collect();
        roots.push(Root {
            rank: 0,
            id: slug(&cause, keys[0]),
            title,
            cause,
            subjects,
            blast_radius: br,
            first_seen,
            last_seen,
            evidence: kept,
            impact,
            fix,
        });
    }
    roots.sort_by(|a, b| {
        (
            b.blast_radius.pods + b.blast_radius.objects,
            b.blast_radius.workloads,
        )
            .cmp(&(
                a.blast_radius.pods + a.blast_radius.objects,
                a.blast_radius.workloads,
            ))
            .then(a.first_seen.cmp(&b.first_seen))
            .then(a.id.cmp(&b.id))
    });
    for (i, r) in roots.iter_mut().enumerate() {
        r.rank = i + 1;
    }

    let root_keys: HashSet<&Key> = g
        .nodes
        .iter()
        .filter(|(k, n)| is_root(k, n))
        .map(|(k, _)| k)
        .collect();
    let graph = Graph {
        nodes: g
            .nodes
            .iter()
            .map(|(k, n)| GraphNode {
                id: k.id(),
                kind: k.kind().into(),
                title: n.title.clone(),
                root: root_keys.contains(k),
                pods: n.pods.len(),
            })
            .collect(),
        edges: g
            .edges
            .iter()
            .map(|((f, t), why)| GraphEdge {
                from: f.id(),
                to: t.id(),
                reason: why.clone(),
            })
            .collect(),
    };

    let stale_fix = if plan.actionable().next().is_some() {
        vec![
            Fix::cluster(
                "list the stale pods and the planned action for each",
                "rebootguard clean-stale",
            ),
            Fix::cluster(
                "delete them (forced only where the node proves the containers gone)",
                "rebootguard clean-stale --yes",
            ),
        ]
    } else if !plan.is_empty() {
        vec![Fix::cluster(
            "review the stale pods no controller would recreate (or still in their grace period)",
            "rebootguard clean-stale --include-unowned",
        )]
    } else {
        Vec::new()
    };
    let mut notes = remarks;
    if snapshot.events.is_empty() {
        notes.push(
            "no events in the input: failures are classified from pod status only".to_string(),
        );
    }
    if !have_nodes {
        notes.push(
            "no nodes in the input: node health, reboots and stale pods cannot be judged"
                .to_string(),
        );
    }
    // Stale pods are noise, but noise the user should clear; pods a reboot
    // killed are not back yet: neither is healthy.
    let verdict = if roots.is_empty() && plan.is_empty() && recovering == 0 {
        Verdict::Healthy
    } else {
        Verdict::ProblemsFound
    };
    Report {
        api_version: crate::report::API_VERSION,
        kind: crate::report::KIND,
        now,
        source: snapshot.metadata.source.clone(),
        verdict,
        summary: Summary {
            nodes: snapshot.nodes.len(),
            nodes_ready: snapshot.nodes.iter().filter(|n| n.is_ready()).count(),
            pods: snapshot.pods.len(),
            pods_healthy,
            pods_affected,
            roots: roots.len(),
            stale_pods: plan.entries.len(),
        },
        degraded: snapshot.missing.clone(),
        notes,
        roots,
        stale: Stale {
            pods: plan.entries.clone(),
            fix: stale_fix,
        },
        graph,
    }
}

fn slug(cause: &Cause, key: &Key) -> String {
    let class = serde_json::to_value(cause)
        .ok()
        .and_then(|v| {
            let t = v["type"].as_str()?.to_string();
            // `cni/calico/nodenameMissing`: the CNI, then its own failure.
            let sub: String = [&v["cni"]["type"], &v["cni"]["failure"], &v["condition"]]
                .into_iter()
                .filter_map(|s| s.as_str())
                .map(|s| format!("/{s}"))
                .collect();
            Some(format!("{t}{sub}"))
        })
        .unwrap_or_default();
    match cause {
        // Unknown errors group by text: the node tells their roots apart.
        Cause::Cni {
            cni: Sandbox::Other { .. },
        } => format!("{class}:{}", key.id()),
        Cause::Cni { .. }
        | Cause::NodeNotReady
        | Cause::NodePressure { .. }
        | Cause::CsiDriverNotRegistered { .. } => class,
        _ => format!("{class}:{}", key.id()),
    }
}

fn impact_tree<'k>(
    key: &'k Key,
    g: &'k Builder,
    out: &HashMap<&'k Key, Vec<&'k Key>>,
    visited: &mut HashSet<&'k Key>,
) -> Impact {
    visited.insert(key);
    let n = &g.nodes[key];
    let mut next: Vec<&Key> = out.get(key).cloned().unwrap_or_default();
    // Biggest consequences first; a cheap size keeps this linear.
    let size = |k: &Key| g.nodes[k].pods.len() + out.get(k).map_or(0, Vec::len);
    next.sort_by(|a, b| size(b).cmp(&size(a)).then(a.cmp(b)));
    let mut children = Vec::new();
    for c in next {
        if !visited.contains(c) {
            children.push(impact_tree(c, g, out, visited));
        }
    }
    Impact {
        id: key.id(),
        kind: key.kind().into(),
        title: n.title.clone(),
        pods: n.pods.values().cloned().collect(),
        children,
    }
}
