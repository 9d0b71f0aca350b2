//! Admission and aggregation: webhooks whose Service has no ready
//! endpoints (linked to their failing backends), webhooks named only by an
//! error text, the objects they block, and unavailable APIServices.

use super::{Builder, Key, Run, evidence};
use crate::classify::{self};
use crate::model::{ObjectRef, Pod};
use crate::report::{Cause, Evidence};

/// The webhook named by an error text. Known from its configuration, it
/// is already in the graph with its own cause or backend; named only by the
/// text, nothing else can explain it, so it is its own cause.
pub(super) fn webhook_from_text(g: &mut Builder, name: &str) -> Key {
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

/// Admission webhooks whose service has no ready endpoints, linked to
/// their failing backends.
pub(super) fn webhooks(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let Run {
        ix,
        g,
        pod_workload,
        ..
    } = run;
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
pub(super) fn api_services(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let Run {
        g, pod_workload, ..
    } = run;
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

/// Objects a webhook blocks (events name the webhook).
pub(super) fn blocked_objects(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let Run { g, .. } = run;
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
