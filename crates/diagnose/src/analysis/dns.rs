//! Cluster DNS: a DNS component (CoreDNS) without ready endpoints, whatever
//! broke it (crash loop, Pending, its node's network, no endpoints, its
//! Service missing), is one root; every pod and object failing lookups is
//! its consequence. Without such a component, lookup failures are their
//! workloads' own.

use super::{Key, Run};
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
