//! GitOps: Flux objects that are not Ready, linked to what explains them:
//! their controller not running, DNS, a dependency, a webhook, or their
//! release's pods; else they are their own root.

use std::collections::{BTreeSet, HashMap};

use jiff::Timestamp;
use serde_json::Value;

use super::{Key, Run, str_at};
use crate::classify::{self};
use crate::model::ObjectRef;
use crate::report::{Cause, Evidence};

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

/// Flux objects not Ready: through their controller, DNS, a dependency,
/// a webhook or their release's pods, else their own root.
pub(super) fn flux_objects(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let config = run.config;
    let Run {
        ix,
        g,
        pod_workload,
        dns_down,
        ..
    } = run;
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
            let wkey = super::admission::webhook_from_text(g, &webhook);
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
