//! GitOps: Flux objects that are not Ready, linked to what explains them:
//! their controller not running, DNS, the object they get their artifact
//! from (HelmRelease → HelmChart → HelmRepository / GitRepository /
//! OCIRepository / Bucket; Kustomization → its source) when that is failing
//! and they fail on it, a `dependsOn` dependency, a webhook, or their
//! release's pods; else they are their own root.

use std::collections::{BTreeSet, HashMap, HashSet};

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

/// A Flux object another one needs.
struct Upstream {
    kind: String,
    namespace: String,
    name: String,
}

/// Whether a Flux object's failure is about what it gets from another one
/// (its artifact, source, chart or a dependency), not about applying it:
/// `ArtifactFailed`, `DependencyNotReady`, "HelmChart 'ns/x' is not ready",
/// "source 'GitRepository/ns/x' not found", "failed to download artifact".
fn fails_on_upstream(reason: &str, message: &str) -> bool {
    ["Artifact", "Source", "Dependency", "Chart"]
        .iter()
        .any(|r| reason.contains(r))
        || [
            "artifact",
            "source '",
            "dependency '",
            "helmchart '",
            "is not ready",
            "not found",
        ]
        .iter()
        .any(|t| classify::contains_ci(message, t))
}

/// What a Flux object gets its artifact from, and what it depends on: its
/// `spec.sourceRef` (Kustomization, HelmChart), its chart (a HelmRelease's
/// `status.helmChart`, else the `<namespace>-<name>` chart Flux makes from
/// `spec.chart`; or `spec.chartRef`), its `spec.dependsOn`, and a
/// dependency its message names.
fn upstream(
    kind: &str,
    namespace: &str,
    v: &Value,
    message: &str,
) -> Vec<(Upstream, &'static str)> {
    let at = |kind: &str, ns: &str, name: &str| Upstream {
        kind: kind.into(),
        namespace: if ns.is_empty() { namespace } else { ns }.into(),
        name: name.into(),
    };
    let reference = |r: &Value| {
        at(
            str_at(r, &["kind"]),
            str_at(r, &["namespace"]),
            str_at(r, &["name"]),
        )
    };
    let mut out = Vec::new();
    match kind {
        "Kustomization" | "HelmChart" => {
            out.push((
                reference(&v["spec"]["sourceRef"]),
                "its source has no artifact",
            ));
        }
        "HelmRelease" => {
            let chart = str_at(v, &["status", "helmChart"]);
            if let Some((ns, name)) = chart.split_once('/') {
                out.push((at("HelmChart", ns, name), "its chart has no artifact"));
            } else if v["spec"]["chart"].is_object() {
                let source_ns = str_at(v, &["spec", "chart", "spec", "sourceRef", "namespace"]);
                out.push((
                    at(
                        "HelmChart",
                        source_ns,
                        &format!("{namespace}-{}", str_at(v, &["metadata", "name"])),
                    ),
                    "its chart has no artifact",
                ));
            }
            if v["spec"]["chartRef"].is_object() {
                out.push((
                    reference(&v["spec"]["chartRef"]),
                    "its chart has no artifact",
                ));
            }
        }
        _ => {}
    }
    for d in v["spec"]["dependsOn"].as_array().into_iter().flatten() {
        out.push((
            at(kind, str_at(d, &["namespace"]), str_at(d, &["name"])),
            "depends on it",
        ));
    }
    if let Some((ns, name)) = classify::flux_dependency(message) {
        out.push((at(kind, &ns, &name), "depends on it"));
    }
    out.retain(|(u, _)| !u.kind.is_empty() && !u.name.is_empty());
    out
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
    let failing: HashSet<&Key> = flux_failing.iter().map(|(k, ..)| k).collect();
    let failing_key = |kind: &str, namespace: &str, name: &str| {
        let key = Key::Flux {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        failing.contains(&key).then_some(key)
    };
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
        if fails_on_upstream(reason, message) {
            for (up, why) in upstream(kind, namespace, v, message) {
                if let Some(up) = failing_key(&up.kind, &up.namespace, &up.name) {
                    g.edge(&up, key, why);
                    linked = true;
                }
            }
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

/// Why an Argo CD Application fails, when it does: an error condition
/// (`ComparisonError`, `InvalidSpecError`, `SyncError`, ...), a failed
/// sync operation, or its health `Degraded` / `Missing`; with when.
fn argo_failure(v: &Value) -> Option<(String, String, Option<Timestamp>)> {
    let status = &v["status"];
    let time = |t: &Value| t.as_str().and_then(|t| t.parse().ok());
    if let Some(c) = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| str_at(c, &["type"]).ends_with("Error"))
    {
        return Some((
            str_at(c, &["type"]).into(),
            str_at(c, &["message"]).into(),
            time(&c["lastTransitionTime"]),
        ));
    }
    let op = &status["operationState"];
    if matches!(str_at(op, &["phase"]), "Failed" | "Error") {
        return Some((
            format!("Sync{}", str_at(op, &["phase"])),
            str_at(op, &["message"]).into(),
            time(&op["finishedAt"]),
        ));
    }
    let health = str_at(status, &["health", "status"]);
    if matches!(health, "Degraded" | "Missing") {
        let message = match str_at(status, &["health", "message"]) {
            "" => format!("health {health}"),
            m => format!("health {health}: {m}"),
        };
        return Some((health.into(), message, None));
    }
    None
}

/// Argo CD Applications that fail to sync or are degraded, linked to what
/// explains them: Argo CD's own repo-server or application-controller not
/// running, DNS (a repository it cannot resolve), a webhook refusing its
/// objects, the failing workloads or child Applications among its
/// resources; else they are their own root.
pub(super) fn argo_applications(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let argo_ns = run.config.argocd_namespace.as_str();
    let Run { g, dns_down, .. } = run;
    let apps: Vec<(Key, &Value, String, String)> = snapshot
        .custom
        .iter()
        .filter(|v| {
            v["kind"] == "Application" && str_at(v, &["apiVersion"]).starts_with("argoproj.io/")
        })
        .filter_map(|v| {
            let (reason, message, at) = argo_failure(v)?;
            let namespace = str_at(v, &["metadata", "namespace"]).to_string();
            let name = str_at(v, &["metadata", "name"]).to_string();
            let key = Key::Argo {
                namespace: namespace.clone(),
                name: name.clone(),
            };
            let n = g.node(&key, || {
                format!(
                    "Application {namespace}/{name}: {reason}: {}",
                    classify::short(&message, 120)
                )
            });
            n.evidence.push(Evidence {
                object: ObjectRef::new("Application", &namespace, &name),
                reason: reason.clone(),
                message: message.clone(),
                count: 1,
                first_seen: at,
                last_seen: at,
            });
            Some((key, v, reason, message))
        })
        .collect();
    let controllers = [
        ("Deployment", "argocd-repo-server"),
        ("StatefulSet", "argocd-application-controller"),
        ("Deployment", "argocd-application-controller"),
    ];
    for (key, v, reason, message) in &apps {
        let mut linked = false;
        for (kind, name) in controllers {
            let ckey = Key::Workload {
                namespace: argo_ns.into(),
                kind: kind.into(),
                name: name.into(),
            };
            if g.nodes.contains_key(&ckey) {
                g.edge(&ckey, key, "Argo CD's own controller is not running");
                linked = true;
            }
        }
        if classify::is_dns_error(message)
            && let Some(dns) = &dns_down
        {
            g.edge(dns, key, "it cannot resolve its repository");
            linked = true;
        }
        if let Some(webhook) = classify::failed_webhook(message) {
            let wkey = super::admission::webhook_from_text(g, &webhook);
            g.edge(&wkey, key, "rejected because the webhook cannot be called");
            linked = true;
        }
        for r in v["status"]["resources"].as_array().into_iter().flatten() {
            if !matches!(str_at(r, &["health", "status"]), "Degraded" | "Missing") {
                continue;
            }
            let (kind, ns, name) = (
                str_at(r, &["kind"]),
                str_at(r, &["namespace"]),
                str_at(r, &["name"]),
            );
            let rkey = if kind == "Application" {
                Key::Argo {
                    namespace: ns.into(),
                    name: name.into(),
                }
            } else {
                Key::Workload {
                    namespace: ns.into(),
                    kind: kind.into(),
                    name: name.into(),
                }
            };
            if g.nodes.contains_key(&rkey) {
                g.edge(&rkey, key, "one of its resources is not healthy");
                linked = true;
            }
        }
        if !linked {
            let n = g.node(key, String::new);
            n.own = Some(Cause::ArgoApplicationNotHealthy);
            n.own_detail = format!(
                "{reason}: {}",
                classify::short(classify::innermost(message), 200)
            );
        }
    }
}
