//! Fix steps: concrete commands for each kind of root cause.

use super::{Key, workload_of};
use crate::config::Config;
use crate::escape::shell as sh;
use crate::model::Pod;
use crate::report::{Cause, Fix};
use crate::snapshot::Snapshot;

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
        (Key::NodePressure(n), cause) => {
            let condition = match cause {
                Cause::NodePressure { condition } => condition.as_str(),
                _ => "",
            };
            let mut fix = vec![Fix::cluster(
                format!("see {n}'s conditions, taints and the pods it evicted"),
                format!(
                    "kubectl describe node {}; kubectl get pods -A --field-selector spec.nodeName={},status.phase=Failed",
                    sh(n),
                    sh(n)
                ),
            )];
            fix.push(match condition {
                "DiskPressure" => Fix::on_node(
                    n,
                    format!("free disk on {n}: unused images, then what fills the kubelet's and the runtime's file systems"),
                    "crictl rmi --prune; df -h /var/lib/kubelet /var/lib/rancher /var/lib/containerd 2>/dev/null; du -xsh /var/log/pods",
                ),
                "MemoryPressure" => Fix::cluster(
                    format!("find the pods using the most memory on {n}, and set their limits"),
                    "kubectl top pods -A --sort-by=memory | head -n 20",
                ),
                _ => Fix::on_node(
                    n,
                    format!("find what holds the most processes on {n}"),
                    "ps -eo pid,nlwp,comm --sort=-nlwp | head",
                ),
            });
            fix
        }
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
        (Key::Argo { namespace, name }, _) => {
            let (namespace, name) = (sh(namespace), sh(name));
            vec![
                Fix::cluster(
                    "see the Application's conditions, sync result and unhealthy resources",
                    format!("kubectl -n {namespace} describe applications.argoproj.io {name}"),
                ),
                Fix::cluster(
                    "read Argo CD's repo-server log (manifest generation and repository access)",
                    format!(
                        "kubectl -n {} logs deploy/argocd-repo-server --tail=50",
                        sh(&config.argocd_namespace)
                    ),
                ),
                Fix::cluster(
                    "refresh and sync it once fixed",
                    format!(
                        "argocd app get {name} --app-namespace {namespace} --hard-refresh && argocd app sync {name} --app-namespace {namespace}"
                    ),
                ),
            ]
        }
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
        (Key::DnsPath(scope), _) => dns_path_fix(scope.as_deref(), snapshot, config),
        (Key::NodeNetwork(_), _) => Vec::new(),
    }
}

/// Lookups get no answer while DNS is up: ask from a pod where it fails,
/// then look at what carries the packets there.
fn dns_path_fix(node: Option<&str>, snapshot: &Snapshot, config: &Config) -> Vec<Fix> {
    let dns = config
        .components
        .iter()
        .find(|c| c.role == crate::config::Role::Dns);
    let (namespace, service) = dns.map_or(("kube-system", "kube-dns"), |c| {
        (
            c.namespace.as_str(),
            c.service.as_deref().unwrap_or("kube-dns"),
        )
    });
    let pinned = node
        .map(|n| {
            let overrides = format!(r#"{{"spec":{{"nodeName":"{n}"}}}}"#);
            format!(" --overrides={}", sh(&overrides))
        })
        .unwrap_or_default();
    let mut fix = vec![Fix::cluster(
        format!(
            "ask cluster DNS from a throwaway pod{}",
            node.map(|n| format!(" on {n}")).unwrap_or_default()
        ),
        format!(
            "kubectl run dnscheck --rm -it --restart=Never --image=busybox:1.36{pinned} -- nslookup kubernetes.default"
        ),
    )];
    match node {
        Some(n) => fix.push(Fix::on_node(
            n,
            format!(
                "check {n}'s pod network: its overlay to the node running DNS (flannel.1, its peers' FDB and neighbour entries; UDP 8472 between nodes; a kernel dropping VXLAN checksums needs `ethtool -K flannel.1 tx-checksum-ip-generic off`)"
            ),
            "rebootguard node check",
        )),
        None => {
            fix.push(Fix::cluster(
                "check what stands between the pods and DNS: the Service's endpoints, NetworkPolicies that block port 53, the Service routing (kube-proxy; on k3s inside k3s itself)",
                format!(
                    "kubectl -n {} get endpointslices -l kubernetes.io/service-name={}; kubectl get networkpolicies -A",
                    sh(namespace),
                    sh(service)
                ),
            ));
            // Pods elsewhere reach DNS over the overlay into its nodes.
            let dns_nodes: std::collections::BTreeSet<&str> = snapshot
                .pods
                .iter()
                .filter(|p| dns.is_some_and(|c| c.matches(p)) && p.is_ready())
                .map(|p| p.spec.node_name.as_str())
                .filter(|n| !n.is_empty())
                .collect();
            let name = dns.map_or("DNS", |c| c.name.as_str());
            for n in dns_nodes.into_iter().take(3) {
                fix.push(Fix::on_node(
                    n,
                    format!("check {n}'s pod network: {name} runs there, and the other nodes reach it over its overlay"),
                    "rebootguard node check",
                ));
            }
        }
    }
    fix
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
