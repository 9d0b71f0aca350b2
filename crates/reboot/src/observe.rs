//! Reading what the rollout's steps look at: a Node as the state machine
//! sees it, the gates' view of the cluster, Longhorn's volumes and
//! replicas, the pods a drain must move, the agent's refusals.
//!
//! Each read is one bounded list or get; the slim shapes are built here
//! so the pure crate never sees a Kubernetes type.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use rebootguard_cluster::condition;
use rebootguard_cluster::reboot::{Handshake, Request};
use rebootguard_rollout::gates::{self, Role};
use rebootguard_rollout::machine::{NodeSeen, PodNetwork};
use serde_json::Value;

use crate::Error;

/// Longhorn's namespace.
pub const LONGHORN: &str = "longhorn-system";
/// The agent's condition.
pub const POD_NETWORK_READY: &str = "PodNetworkReady";

/// Runs `call` within `bound`.
pub(crate) async fn bounded<T>(
    bound: Duration,
    what: &str,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(bound, call).await {
        Err(_) => Err(Error::Timeout {
            what: what.to_owned(),
            bound,
        }),
        Ok(r) => r.map_err(|source| Error::Api {
            what: what.to_owned(),
            source,
        }),
    }
}

/// A Node's role from k3s's labels.
pub fn role(node: &Node) -> Role {
    let labels = node.metadata.labels.as_ref();
    let is = |k: &str| labels.and_then(|l| l.get(k)).is_some_and(|v| v == "true");
    if is("node-role.kubernetes.io/control-plane") || is("node-role.kubernetes.io/master") {
        Role::Server
    } else {
        Role::Agent
    }
}

/// The Node as the state machine sees it (`refused` is filled separately).
pub fn node_seen(node: &Node) -> NodeSeen {
    let handshake = Handshake::of(node);
    NodeSeen {
        boot_id: node
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.boot_id.clone())
            .unwrap_or_default(),
        ready: condition::find(node, "Ready").is_some_and(|c| c.status == "True"),
        cordoned: handshake.cordoned,
        pod_network: condition::find(node, POD_NETWORK_READY).map(|c| PodNetwork {
            ready: c.status == "True",
            heartbeat: c
                .last_heartbeat_time
                .as_ref()
                .or(c.last_transition_time.as_ref())
                .map(|t| t.0),
            why: format!(
                "{}: {}",
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            ),
        }),
        requested: handshake
            .request
            .and_then(|r| Request::parse(&r).ok())
            .map(|r| r.id),
        accepted: handshake.accepted,
        refused: None,
    }
}

/// Reads one Node (`None`: it does not exist).
pub async fn node(client: &Client, name: &str, bound: Duration) -> Result<Option<Node>, Error> {
    let api: Api<Node> = Api::all(client.clone());
    bounded(bound, &format!("node {name}"), api.get_opt(name)).await
}

/// Every Node (optionally matching a label selector).
pub async fn nodes(
    client: &Client,
    selector: Option<&str>,
    bound: Duration,
) -> Result<Vec<Node>, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut params = ListParams::default();
    if let Some(s) = selector {
        params = params.labels(s);
    }
    Ok(bounded(bound, "nodes", api.list(&params)).await?.items)
}

/// The agent's latest refusal or failure to reboot `node` for request
/// `id` (its Events on the Node), if any.
pub async fn refusal(
    client: &Client,
    node: &str,
    id: &str,
    bound: Duration,
) -> Result<Option<String>, Error> {
    let api: Api<Event> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("involvedObject.name={node}"));
    let events = bounded(bound, "events", api.list(&params)).await?.items;
    Ok(events
        .iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("Node"))
        .filter(|e| matches!(e.reason.as_deref(), Some("RebootRefused" | "RebootFailed")))
        .filter(|e| e.message.as_deref().is_some_and(|m| m.contains(id)))
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("")
            )
        })
        .next_back())
}

/// A pod that must leave its node in a drain: not a DaemonSet's, not a
/// mirror (static) pod, not finished, not already being deleted.
pub fn must_leave(pod: &Pod) -> bool {
    let daemon = pod
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet"));
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    !daemon && !mirror && !finished
}

/// The pods bound to `node`.
pub async fn pods_on(client: &Client, node: &str, bound: Duration) -> Result<Vec<Pod>, Error> {
    let api: Api<Pod> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    Ok(bounded(bound, "pods", api.list(&params)).await?.items)
}

fn dynamic(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Longhorn's objects of one kind, or `None` when Longhorn is not there
/// (the kind is unknown to the API).
async fn longhorn(
    client: &Client,
    kind: &str,
    plural: &str,
    bound: Duration,
) -> Result<Option<Vec<DynamicObject>>, Error> {
    let resource = dynamic("longhorn.io", "v1beta2", kind, plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), LONGHORN, &resource);
    match bounded(bound, plural, api.list(&ListParams::default())).await {
        Ok(list) => Ok(Some(list.items)),
        Err(Error::Api {
            source: kube::Error::Api(s),
            ..
        }) if s.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

fn field<'a>(o: &'a DynamicObject, path: &str) -> Option<&'a Value> {
    o.data.pointer(path)
}

fn text<'a>(o: &'a DynamicObject, path: &str) -> &'a str {
    field(o, path).and_then(Value::as_str).unwrap_or("")
}

/// The volumes and the nodes holding a complete replica of each (a
/// replica with `healthyAt` set and no `failedAt`, as Longhorn keeps them).
pub async fn volumes(client: &Client, bound: Duration) -> Result<Vec<gates::Volume>, Error> {
    let Some(volumes) = longhorn(client, "Volume", "volumes", bound).await? else {
        return Ok(Vec::new());
    };
    let replicas = longhorn(client, "Replica", "replicas", bound)
        .await?
        .unwrap_or_default();
    let mut out = Vec::new();
    for v in &volumes {
        let name = v.metadata.name.clone().unwrap_or_default();
        let mut healthy_on: Vec<String> = replicas
            .iter()
            .filter(|r| text(r, "/spec/volumeName") == name)
            .filter(|r| {
                !text(r, "/spec/healthyAt").is_empty() && text(r, "/spec/failedAt").is_empty()
            })
            .map(|r| text(r, "/spec/nodeID").to_owned())
            .collect();
        healthy_on.sort();
        healthy_on.dedup();
        out.push(gates::Volume { name, healthy_on });
    }
    Ok(out)
}

/// Volumes not healthy, with why (`None`: no Longhorn). A detached volume
/// is judged by its robustness too: `faulted` is never fine.
pub async fn storage(client: &Client, bound: Duration) -> Result<Option<Vec<String>>, Error> {
    let Some(volumes) = longhorn(client, "Volume", "volumes", bound).await? else {
        return Ok(None);
    };
    Ok(Some(
        volumes
            .iter()
            .filter_map(|v| {
                let robustness = text(v, "/status/robustness");
                (robustness != "healthy").then(|| {
                    format!(
                        "{} is {} ({})",
                        v.metadata.name.as_deref().unwrap_or(""),
                        if robustness.is_empty() {
                            "unknown"
                        } else {
                            robustness
                        },
                        text(v, "/status/state")
                    )
                })
            })
            .collect(),
    ))
}

/// The gates' view of the cluster now.
pub async fn view(client: &Client, bound: Duration) -> Result<gates::View, Error> {
    let all = nodes(client, None, bound).await?;
    let pods: Api<Pod> = Api::all(client.clone());
    let pods = bounded(bound, "pods", pods.list(&ListParams::default()))
        .await?
        .items;
    let pdbs: Api<PodDisruptionBudget> = Api::all(client.clone());
    let pdbs = bounded(
        bound,
        "poddisruptionbudgets",
        pdbs.list(&ListParams::default()),
    )
    .await?
    .items;
    let volumes = volumes(client, bound).await?;
    let now = jiff::Timestamp::now();
    Ok(gates::View {
        nodes: all
            .iter()
            .map(|n| {
                let seen = node_seen(n);
                gates::Node {
                    name: n.metadata.name.clone().unwrap_or_default(),
                    role: role(n),
                    ready: seen.ready,
                    // Stale after three heartbeats of the agent's default 30 s.
                    pod_network: seen.pod_network.and_then(|p| {
                        let fresh = p
                            .heartbeat
                            .is_some_and(|h| now.duration_since(h).as_secs() < 90);
                        fresh.then_some(p.ready)
                    }),
                    cordoned: seen.cordoned,
                }
            })
            .collect(),
        pods: pods
            .iter()
            .filter_map(|p| {
                let node = p.spec.as_ref()?.node_name.clone()?;
                let namespace = p.metadata.namespace.clone().unwrap_or_default();
                Some(gates::Pod {
                    name: format!("{namespace}/{}", p.metadata.name.as_deref().unwrap_or("")),
                    namespace,
                    node,
                    labels: p.metadata.labels.clone().unwrap_or_default(),
                    stays: !must_leave(p),
                })
            })
            .collect(),
        pdbs: pdbs
            .iter()
            .map(|p| {
                let namespace = p.metadata.namespace.clone().unwrap_or_default();
                gates::Pdb {
                    name: format!("{namespace}/{}", p.metadata.name.as_deref().unwrap_or("")),
                    namespace,
                    selector: p
                        .spec
                        .as_ref()
                        .and_then(|s| s.selector.as_ref())
                        .and_then(|s| s.match_labels.clone())
                        .unwrap_or_else(BTreeMap::new),
                    disruptions_allowed: p.status.as_ref().map_or(0, |s| s.disruptions_allowed),
                }
            })
            .collect(),
        volumes,
        verify_failed: BTreeMap::new(),
        verify_error: None,
        firing: None,
        window: None,
    })
}
