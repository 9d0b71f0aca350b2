//! Fix steps: concrete commands for each kind of root cause.

use super::{Key, workload_of};
use crate::classify::Sandbox;
use crate::config::Config;
use crate::escape::shell as sh;
use crate::model::Pod;
use crate::report::{Cause, Fix};
use crate::snapshot::Snapshot;

pub(super) fn sandbox_fix(cause: &Sandbox, nodes: &[String], snapshot: &Snapshot) -> Vec<Fix> {
    let mut fix = Vec::new();
    match cause {
        Sandbox::FlannelSubnetEnvMissing | Sandbox::FlannelSubnetEnvInvalid => {
            for n in nodes {
                let node = snapshot.nodes.iter().find(|x| x.name() == n);
                let cidr = node.map(|x| x.spec.pod_cidr.as_str()).unwrap_or("");
                let hint = gateway(cidr)
                    .map(|g| format!(" (podCIDR {cidr} → FLANNEL_SUBNET={g})"))
                    .unwrap_or_default();
                fix.push(Fix::on_node(
                    n,
                    format!("put back a validated /run/flannel/subnet.env on {n}{hint}"),
                    "rebootguard node restore",
                ));
                match node.map(k3s_service) {
                    Some(Some(service)) => fix.push(Fix::on_node(
                        n,
                        format!("restart {service} on {n} so its embedded flannel brings up flannel.1"),
                        format!("systemctl restart {service}"),
                    )),
                    _ => fix.push(Fix::cluster(
                        format!("restart the flannel pod on {n} so it brings up flannel.1"),
                        format!("kubectl delete pod -A -l app=flannel --field-selector spec.nodeName={}", sh(n)),
                    )),
                }
            }
        }
        Sandbox::HostLocalExhausted => {
            for n in nodes {
                fix.push(Fix::cluster(
                    format!("drain {n}"),
                    format!(
                        "kubectl drain {} --ignore-daemonsets --delete-emptydir-data",
                        sh(n)
                    ),
                ));
                fix.push(Fix::on_node(
                    n,
                    format!("drop the leaked host-local leases on {n} (no pods run there after the drain)"),
                    "systemctl stop k3s && rm -f /var/lib/cni/networks/cbr0/[0-9]* && systemctl start k3s",
                ));
                fix.push(Fix::cluster(
                    format!("uncordon {n}"),
                    format!("kubectl uncordon {}", sh(n)),
                ));
            }
        }
        Sandbox::PodNetworkNotReady { .. } => {
            for n in nodes {
                fix.push(Fix::on_node(
                    n,
                    format!("see which check fails on {n}, with its evidence and fix"),
                    "rebootguard node check",
                ));
                let service = snapshot
                    .nodes
                    .iter()
                    .find(|x| x.name() == n)
                    .and_then(k3s_service)
                    .unwrap_or("k3s");
                fix.push(Fix::on_node(
                    n,
                    format!("restart {service} on {n}: flannel rebuilds flannel.1 and every peer's entries at start"),
                    format!("systemctl restart {service}"),
                ));
            }
        }
        Sandbox::CniNotInitialized | Sandbox::CniPluginMissing { .. } | Sandbox::Other => {
            for n in nodes {
                fix.push(Fix::on_node(
                    n,
                    format!("check the CNI on {n} with a real CNI ADD"),
                    "rebootguard node check",
                ));
                fix.push(Fix::on_node(
                    n,
                    "read why flannel/CNI did not start",
                    "journalctl -u k3s -b | grep -iE 'flannel|cni'",
                ));
            }
        }
        Sandbox::PodCidrNotAssigned => {
            fix.push(Fix::cluster(
                "see which nodes hold podCIDRs (deleted nodes free theirs)",
                "kubectl get nodes -o custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR",
            ));
            fix.push(Fix::cluster(
                "free CIDRs by deleting Node objects of machines that are gone, or widen --cluster-cidr / shrink --node-cidr-mask-size",
                "kubectl delete node <gone-node>",
            ));
        }
    }
    fix.push(Fix::cluster(
        "clean the pods the failure left stale",
        "rebootguard clean-stale --yes",
    ));
    fix.push(Fix::cluster(
        "check that nothing else remains",
        "rebootguard diagnose",
    ));
    fix
}

/// The k3s service of a k3s node: `k3s` on servers, `k3s-agent` on agents;
/// none when the node does not run k3s.
fn k3s_service(node: &crate::model::Node) -> Option<&'static str> {
    if !node.status.node_info.kubelet_version.contains("k3s") {
        return None;
    }
    let labels = &node.metadata.labels;
    let server = [
        "node-role.kubernetes.io/control-plane",
        "node-role.kubernetes.io/master",
    ]
    .iter()
    .any(|l| labels.get(l) == Some("true"));
    Some(if server { "k3s" } else { "k3s-agent" })
}

/// `10.42.0.0/24` → `10.42.0.1/24`.
fn gateway(cidr: &str) -> Option<String> {
    let (addr, len) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = addr.parse().ok()?;
    let next = std::net::Ipv4Addr::from(u32::from(ip).checked_add(1)?);
    Some(format!("{next}/{len}"))
}

pub(super) fn own_fix(key: &Key, cause: &Cause, snapshot: &Snapshot, config: &Config) -> Vec<Fix> {
    match (key, cause) {
        (Key::NodeDown(n), _) => vec![
            Fix::cluster(
                format!("see why {n} is not Ready"),
                format!("kubectl describe node {}", sh(n)),
            ),
            Fix::on_node(
                n,
                "check the kubelet/k3s service",
                "systemctl status k3s; journalctl -u k3s -b --no-pager | tail -n 100",
            ),
        ],
        (Key::Csi { driver, node }, _) => {
            let mut fix = vec![Fix::cluster(
                format!("see which drivers registered on {node}"),
                format!("kubectl get csinode {} -o yaml", sh(node)),
            )];
            let plugins: Vec<&Pod> = snapshot
                .pods
                .iter()
                .filter(|p| {
                    p.spec.node_name == *node
                        && p.containers().any(|c| c.name.contains("driver-registrar"))
                })
                .collect();
            for p in &plugins {
                fix.push(Fix::cluster(
                    format!("restart the CSI node plugin on {node} so it registers {driver}"),
                    format!(
                        "kubectl -n {} delete pod {}",
                        sh(&p.metadata.namespace),
                        sh(&p.metadata.name)
                    ),
                ));
            }
            if plugins.is_empty() {
                fix.push(Fix::cluster(
                    format!("no CSI node plugin pod runs on {node}: check its DaemonSet's nodeSelector and tolerations"),
                    "kubectl get daemonsets -A -o wide",
                ));
            }
            fix
        }
        (Key::Component(c), _) => {
            let comp = config.components.iter().find(|x| &x.name == c);
            let ns = comp.map_or("kube-system", |x| x.namespace.as_str());
            let selector: Vec<String> = comp
                .map(|x| x.selector.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            let sel = if selector.is_empty() {
                String::new()
            } else {
                format!(" -l {}", sh(&selector.join(",")))
            };
            let mut fix = vec![Fix::cluster(
                format!("see why {c} pods are not ready"),
                format!("kubectl -n {} describe pods{sel}", sh(ns)),
            )];
            let deployment = snapshot
                .pods
                .iter()
                .filter(|p| comp.is_some_and(|x| x.matches(p)))
                .map(workload_of)
                .find(|(kind, _)| kind == "Deployment");
            if let Some((comp, svc)) = comp.and_then(|x| Some((x, x.service.as_deref()?))) {
                let exists = snapshot
                    .services
                    .iter()
                    .any(|x| x.metadata.namespace == comp.namespace && x.metadata.name == svc);
                if !exists && !snapshot.services.is_empty() {
                    fix.push(Fix::cluster(
                        format!(
                            "recreate Service {}/{svc} (on k3s, a server re-applies its packaged manifest: run this there)",
                            comp.namespace
                        ),
                        "kubectl apply -f /var/lib/rancher/k3s/server/manifests/coredns.yaml",
                    ));
                } else {
                    fix.push(Fix::cluster(
                        format!("compare Service {}/{svc}'s selector and endpoints with the pods' labels", comp.namespace),
                        format!(
                            "kubectl -n {} get service {} -o wide; kubectl -n {} get endpointslices -l kubernetes.io/service-name={}",
                            sh(&comp.namespace),
                            sh(svc),
                            sh(&comp.namespace),
                            sh(svc)
                        ),
                    ));
                }
            }
            if let Some((_, name)) = deployment {
                fix.push(Fix::cluster(
                    format!("restart {c}"),
                    format!(
                        "kubectl -n {} rollout restart deployment/{}",
                        sh(ns),
                        sh(&name)
                    ),
                ));
            }
            fix
        }
        (Key::Webhook(w), _) => {
            let mut fix = vec![Fix::cluster(
                format!("find the service behind {w} and why it has no endpoints"),
                "kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations -o wide",
            )];
            // The patch names the one configuration and index holding the
            // webhook; without them a patch would hit the wrong webhooks.
            let holder = [
                (
                    "validatingwebhookconfiguration",
                    &snapshot.validating_webhook_configurations,
                ),
                (
                    "mutatingwebhookconfiguration",
                    &snapshot.mutating_webhook_configurations,
                ),
            ]
            .into_iter()
            .flat_map(|(kind, configs)| configs.iter().map(move |c| (kind, c)))
            .find_map(|(kind, c)| {
                let at = c.webhooks.iter().position(|x| &x.name == w)?;
                Some((kind, &c.metadata.name, at))
            });
            if let Some((kind, config, at)) = holder {
                fix.push(Fix::cluster(
                    "as a last resort while the backend is fixed, let requests through",
                    format!(
                        "kubectl patch {kind} {} --type=json -p '[{{\"op\":\"replace\",\"path\":\"/webhooks/{at}/failurePolicy\",\"value\":\"Ignore\"}}]'",
                        sh(config)
                    ),
                ));
            }
            fix
        }
        (Key::ApiService(a), _) => vec![Fix::cluster(
            format!("see why {a} is unavailable"),
            format!("kubectl describe apiservice {}", sh(a)),
        )],
        (Key::Longhorn(v), _) => vec![Fix::cluster(
            format!("inspect volume {v} and its replicas"),
            format!(
                "kubectl -n longhorn-system get volumes.longhorn.io {v} -o yaml; kubectl -n longhorn-system get replicas.longhorn.io -l longhornvolume={v}",
                v = sh(v)
            ),
        )],
        (
            Key::Flux {
                kind,
                namespace,
                name,
            },
            _,
        ) => vec![
            Fix::cluster(
                format!("see the {kind}'s status"),
                format!(
                    "kubectl -n {} describe {} {}",
                    sh(namespace),
                    sh(&kind.to_ascii_lowercase()),
                    sh(name)
                ),
            ),
            Fix::cluster(
                "reconcile it once fixed",
                format!(
                    "flux reconcile {} {} -n {} --with-source",
                    flux_cli_kind(kind),
                    sh(name),
                    sh(namespace)
                ),
            ),
        ],
        (Key::Object(o), _) => vec![Fix::cluster(
            format!("retry {o} once the webhook is back"),
            format!(
                "kubectl -n {} describe {} {}",
                sh(&o.namespace),
                sh(&o.kind.to_ascii_lowercase()),
                sh(&o.name)
            ),
        )],
        (
            Key::Workload {
                namespace,
                kind,
                name,
            },
            cause,
        ) => {
            let target = format!("{}/{name}", kind.to_ascii_lowercase());
            let (namespace, target) = (sh(namespace), sh(&target));
            match cause {
                Cause::CrashLoop | Cause::DnsLookupFailures => vec![Fix::cluster(
                    "read the crashing container's last logs",
                    format!("kubectl -n {namespace} logs {target} --previous"),
                )],
                Cause::ImagePull => vec![Fix::cluster(
                    "check the image name, tag and pull secret",
                    format!("kubectl -n {namespace} describe {target}"),
                )],
                Cause::Unschedulable => vec![Fix::cluster(
                    "see why the scheduler rejects every node",
                    format!(
                        "kubectl -n {namespace} get events --field-selector reason=FailedScheduling"
                    ),
                )],
                _ => vec![Fix::cluster(
                    "inspect the pods",
                    format!("kubectl -n {namespace} describe {target}"),
                )],
            }
        }
        (Key::NodeNetwork(_), _) => Vec::new(),
    }
}

fn flux_cli_kind(kind: &str) -> &'static str {
    match kind {
        "HelmRelease" => "helmrelease",
        "Kustomization" => "kustomization",
        "GitRepository" => "source git",
        "HelmRepository" => "source helm",
        "OCIRepository" => "source oci",
        "HelmChart" => "source chart",
        _ => "kustomization",
    }
}
