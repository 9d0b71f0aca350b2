//! Cluster DNS: a DNS component (CoreDNS) without ready endpoints, whatever
//! broke it (crash loop, Pending, its node's network, no endpoints, its
//! Service missing), is one root; every pod and object failing lookups is
//! its consequence. With DNS up, lookups that get no answer at all in two
//! workloads or more are one root too, the path to DNS (scoped to a node
//! when their pods all run there); other lookup failures are their
//! workloads' own.

use std::collections::{BTreeSet, HashSet};

use super::{Builder, DnsVictim, Key, Run};
use crate::config::Role;
use crate::model::{ObjectRef, Pod};
use crate::report::{Cause, Evidence};

/// DNS components (CoreDNS) without ready endpoints, and their victims.
pub(super) fn dns_components(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let config = run.config;
    let Run {
        ix,
        g,
        dns_victims,
        pod_workload,
        dns_down,
        ..
    } = run;
    // Whether a Service absent from the snapshot is absent from the
    // cluster: only when Services were listed at all.
    let services_known = !snapshot.services.is_empty()
        && !snapshot
            .missing
            .iter()
            .any(|m| m.kind == "Service" || m.kind.ends_with(" Service"));
    // The DNS component seen up, for the path's title.
    let mut dns_up: Option<String> = None;
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
            dns_up.get_or_insert_with(|| comp.name.clone());
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
    if dns_down.is_none()
        && let Some(path) = dns_path(dns_victims, snapshot.nodes.len(), dns_up.as_deref())
    {
        let n = g.node(&path.key, || path.title.clone());
        n.own = Some(Cause::DnsUnreachable {
            server: path.server.clone(),
        });
        for v in dns_victims
            .iter()
            .filter(|v| v.unreachable.is_some())
            .take(3)
        {
            n.evidence.push(Evidence {
                object: ObjectRef::new("Pod", &v.pod.metadata.namespace, &v.pod.metadata.name),
                reason: "DnsNoAnswer".into(),
                message: v.message.clone(),
                count: 1,
                first_seen: None,
                last_seen: None,
            });
        }
        // Flux and Argo CD objects failing on DNS fold under it too.
        *dns_down = Some(path.key);
    }
    for v in dns_victims.iter() {
        match &dns_down {
            // An answered lookup (NXDOMAIN) is the workload's own.
            Some(Key::DnsPath(_)) if v.unreachable.is_none() => own_lookup_failure(g, &v.workload),
            Some(dns) => g.edge(dns, &v.workload, "crashes on failed DNS lookups"),
            None => own_lookup_failure(g, &v.workload),
        }
    }
}

fn own_lookup_failure(g: &mut Builder, workload: &Key) {
    let n = g.node(workload, String::new);
    n.own_pods += 1;
    n.own.get_or_insert(Cause::DnsLookupFailures);
}

/// The broken path to DNS, when lookups get no answer in two workloads
/// or more.
struct DnsPath {
    key: Key,
    title: String,
    server: Option<String>,
}

fn dns_path(
    victims: &[DnsVictim<'_>],
    cluster_nodes: usize,
    dns_up: Option<&str>,
) -> Option<DnsPath> {
    let unanswered: Vec<&DnsVictim<'_>> =
        victims.iter().filter(|v| v.unreachable.is_some()).collect();
    let workloads: HashSet<&Key> = unanswered.iter().map(|v| &v.workload).collect();
    if workloads.len() < 2 {
        return None;
    }
    let nodes: BTreeSet<&str> = unanswered
        .iter()
        .map(|v| v.pod.spec.node_name.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    let server = unanswered
        .iter()
        .filter_map(|v| v.unreachable.as_deref())
        .find(|s| !s.is_empty())
        .map(str::to_owned);
    // One node of several: that node's path (its overlay, its rules).
    let scope = match nodes.first() {
        Some(node) if nodes.len() == 1 && cluster_nodes > 1 => Some((*node).to_owned()),
        _ => None,
    };
    let pods_on = match &scope {
        Some(node) => format!("pods on {node}"),
        None if nodes.is_empty() => "pods".to_owned(),
        None => format!(
            "pods on {}",
            nodes.iter().copied().collect::<Vec<_>>().join(", ")
        ),
    };
    let at = server
        .as_deref()
        .map(|s| format!(" at {s}"))
        .unwrap_or_default();
    let while_up = dns_up
        .map(|c| format!(" while {c} is up"))
        .unwrap_or_default();
    Some(DnsPath {
        key: Key::DnsPath(scope),
        title: format!(
            "{pods_on} get no answer from cluster DNS{at}{while_up}: {} workloads fail their lookups",
            workloads.len()
        ),
        server,
    })
}
