//! The Node facts the node guardian needs, fetched under a time bound.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use kube::api::ListParams;
use kube::{Api, Client};

/// What the API says about one node, as far as flannel is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// `metadata.name`.
    pub name: String,
    /// `spec.podCIDRs`, or `[spec.podCIDR]` where only that is set; empty
    /// until the node IPAM controller assigns one.
    pub pod_cidrs: Vec<IpNet>,
    /// `status.nodeInfo.bootID`.
    pub boot_id: Option<String>,
    /// Its `flannel.alpha.coreos.com/` annotations (what flannel announced).
    pub flannel: BTreeMap<String, String>,
}

/// A pod as far as the node's health is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// `status.podIPs` (or `status.podIP`).
    pub ips: Vec<IpAddr>,
    /// `spec.hostNetwork`: such pods need no CNI.
    pub host_network: bool,
    /// `status.phase`.
    pub phase: String,
    /// `metadata.deletionTimestamp` is set: the pod is being deleted. A
    /// pod deleted while its node was down keeps its last phase and IPs
    /// until the kubelet confirms, long after the reboot ended its containers.
    pub deleting: bool,
}

/// An event, reduced to what a sandbox failure needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    /// The object's namespace.
    pub namespace: String,
    /// `involvedObject.kind`.
    pub kind: String,
    /// `involvedObject.name`.
    pub name: String,
    /// `reason`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `source.host` (the kubelet's node) or `reportingInstance`.
    pub host: Option<String>,
    /// When it last happened (`series.lastObservedTime`, `lastTimestamp`,
    /// `eventTime`, `firstTimestamp`, the first set).
    pub last_seen: Option<jiff::Timestamp>,
    /// How many times (`count`, or the series' count; at least 1).
    pub count: u32,
}

/// The kubelet's event reason for a pod sandbox whose network setup failed.
pub const SANDBOX_FAILED: &str = "FailedCreatePodSandBox";

/// Why the node could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such node: usually a wrong node name.
    #[error(
        "node {0:?} does not exist in the cluster; check the node name (--node-name, k3s's node-name, the hostname)"
    )]
    NotFound(String),
    /// RBAC says no (to a read or a write).
    #[error(
        "the API server refused access to {what}: {message}; grant that permission to these credentials' role"
    )]
    Forbidden {
        /// What was read or written.
        what: String,
        /// The API's message.
        message: String,
    },
    /// No answer within the bound.
    #[error(
        "no successful answer from the API server within {0:?} (unreachable, or throttling or failing: the log shows what it answered)"
    )]
    Timeout(Duration),
    /// The API answered with an error, or could not be reached.
    #[error("the API request for {what} failed")]
    Api {
        /// What was read or written.
        what: String,
        /// The cause.
        #[source]
        cause: kube::Error,
    },
    /// A podCIDR that is not a CIDR.
    #[error("node {node:?} has an invalid podCIDR {value:?}")]
    BadPodCidr {
        /// The node.
        node: String,
        /// The value.
        value: String,
    },
}

impl Error {
    /// Worth trying again later (the API may come up); a missing node, a
    /// refusal, credentials the API rejects (401) or a request it rejects
    /// (400, 422) will not change by retrying.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api {
                cause: kube::Error::Api(status),
                ..
            } => !matches!(status.code, 400 | 401 | 422),
            Error::Timeout(_) | Error::Api { .. } => true,
            Error::NotFound(_) | Error::Forbidden { .. } | Error::BadPodCidr { .. } => false,
        }
    }
}

/// Reads the Node `name` within `bound`.
pub async fn node_view(client: &Client, name: &str, bound: Duration) -> Result<NodeView, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let what = format!("node {name:?}");
    let node = bounded(bound, what, api.get_opt(name))
        .await?
        .ok_or_else(|| Error::NotFound(name.to_owned()))?;
    view(&node)
}

/// The view of an already fetched Node.
pub fn view(node: &Node) -> Result<NodeView, Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let spec = node.spec.as_ref();
    let raw: Vec<&String> = match spec.and_then(|s| s.pod_cidrs.as_ref()) {
        Some(list) if !list.is_empty() => list.iter().collect(),
        _ => spec.and_then(|s| s.pod_cidr.as_ref()).into_iter().collect(),
    };
    let pod_cidrs = raw
        .into_iter()
        .map(|value| {
            value.parse::<IpNet>().map_err(|_| Error::BadPodCidr {
                node: name.clone(),
                value: value.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    let boot_id = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.boot_id.clone())
        .filter(|b| !b.is_empty());
    let flannel = node
        .metadata
        .annotations
        .as_ref()
        .map(rebootguard_flannel::annotations::flannel_only)
        .unwrap_or_default();
    Ok(NodeView {
        name,
        pod_cidrs,
        boot_id,
        flannel,
    })
}

/// The view of a Pod.
pub fn pod_view(pod: &Pod) -> PodView {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let mut ips: Vec<IpAddr> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|l| l.iter().filter_map(|ip| ip.ip.parse().ok()).collect())
        .unwrap_or_default();
    if ips.is_empty()
        && let Some(ip) = status
            .and_then(|s| s.pod_ip.as_ref())
            .and_then(|ip| ip.parse().ok())
    {
        ips.push(ip);
    }
    PodView {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        node: spec.and_then(|s| s.node_name.clone()),
        ips,
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        deleting: pod.metadata.deletion_timestamp.is_some(),
    }
}

/// The view of a core/v1 Event.
pub fn event_view(event: &Event) -> EventView {
    let micro = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime| t.0;
    let time = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| t.0;
    let last_seen = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(micro))
        .or_else(|| event.last_timestamp.as_ref().map(time))
        .or_else(|| event.event_time.as_ref().map(micro))
        .or_else(|| event.first_timestamp.as_ref().map(time));
    let count = event
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(event.count)
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(1)
        .max(1);
    let object = &event.involved_object;
    EventView {
        namespace: object
            .namespace
            .clone()
            .or_else(|| event.metadata.namespace.clone())
            .unwrap_or_default(),
        kind: object.kind.clone().unwrap_or_default(),
        name: object.name.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        host: event
            .source
            .as_ref()
            .and_then(|s| s.host.clone())
            .or_else(|| event.reporting_instance.clone())
            .filter(|h| !h.is_empty()),
        last_seen,
        count,
    }
}

/// Every Node, as views (the peers a node's flannel programs entries for).
pub async fn nodes(client: &Client, bound: Duration) -> Result<Vec<NodeView>, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let list = bounded(bound, "nodes".into(), api.list(&ListParams::default())).await?;
    list.items.iter().map(view).collect()
}

/// The pods bound to `node`.
pub async fn pods_on(client: &Client, node: &str, bound: Duration) -> Result<Vec<PodView>, Error> {
    let api: Api<Pod> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let list = bounded(bound, format!("pods on node {node:?}"), api.list(&params)).await?;
    Ok(list.items.iter().map(pod_view).collect())
}

/// Every `FailedCreatePodSandBox` event in the cluster (callers keep those of their node).
pub async fn sandbox_failures(client: &Client, bound: Duration) -> Result<Vec<EventView>, Error> {
    let api: Api<Event> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("reason={SANDBOX_FAILED}"));
    let list = bounded(bound, "sandbox failure events".into(), api.list(&params)).await?;
    Ok(list.items.iter().map(event_view).collect())
}

/// kube-flannel keeps net-conf.json in a ConfigMap (`kube-flannel/kube-flannel-cfg`
/// by default) rather than on the host. `Ok(None)` when the ConfigMap or key is absent.
pub async fn config_map_key(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
    bound: Duration,
) -> Result<Option<String>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let what = format!("configmap {namespace}/{name}");
    let map = bounded(bound, what, api.get_opt(name)).await?;
    Ok(map.and_then(|m| m.data).and_then(|mut d| d.remove(key)))
}

/// Deletes a pod, only if it is still the object of UID `uid` (a pod of the
/// same name recreated since the plan was made is left alone). `force` sets
/// a zero grace period, as `kubectl delete --grace-period=0 --force` does.
pub async fn delete_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
    force: bool,
    bound: Duration,
) -> Result<(), Error> {
    use kube::api::{DeleteParams, Preconditions};
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        grace_period_seconds: force.then_some(0),
        preconditions: (!uid.is_empty()).then(|| Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let what = format!("pod {namespace}/{name}");
    let delete = async {
        match api.delete(name, &params).await {
            // Already gone: what we wanted.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            other => other.map(drop),
        }
    };
    bounded(bound, what, delete).await
}

/// Runs one API call within `bound`, naming `what` in its error.
pub(crate) async fn bounded<T>(
    bound: Duration,
    what: String,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(bound, call).await {
        Err(_) => Err(Error::Timeout(bound)),
        Ok(result) => result.map_err(|cause| classify(what, cause)),
    }
}

fn classify(what: String, cause: kube::Error) -> Error {
    match &cause {
        kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
            what,
            message: status.message.clone(),
        },
        _ => Error::Api { what, cause },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, NodeSystemInfo};

    #[test]
    fn only_what_may_change_is_worth_retrying() {
        let answered = |code| {
            classify(
                "node \"boromir\"".into(),
                kube::Error::Api(
                    kube::core::Status::failure("no", "Reason")
                        .with_code(code)
                        .boxed(),
                ),
            )
        };
        for code in [429, 500, 503, 409] {
            assert!(answered(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 422] {
            assert!(!answered(code).is_retryable(), "{code}");
        }
        assert!(matches!(answered(403), Error::Forbidden { .. }));
        assert!(Error::Timeout(Duration::from_secs(5)).is_retryable());
        assert!(!Error::NotFound("boromir".into()).is_retryable());
    }

    fn node(pod_cidr: Option<&str>, pod_cidrs: Option<Vec<&str>>) -> Node {
        Node {
            metadata: kube::api::ObjectMeta {
                name: Some("boromir".into()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: pod_cidr.map(Into::into),
                pod_cidrs: pod_cidrs.map(|l| l.into_iter().map(Into::into).collect()),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                node_info: Some(NodeSystemInfo {
                    boot_id: "b1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn pod_cidrs_prefer_the_list() {
        let v = view(&node(
            Some("10.42.0.0/24"),
            Some(vec!["10.42.0.0/24", "2001:cafe:42::/64"]),
        ))
        .expect("view");
        assert_eq!(v.pod_cidrs.len(), 2);
        assert_eq!(v.boot_id.as_deref(), Some("b1"));
        let old = view(&node(Some("10.42.0.0/24"), None)).expect("view");
        assert_eq!(
            old.pod_cidrs,
            vec!["10.42.0.0/24".parse::<IpNet>().expect("cidr")]
        );
        let none = view(&node(None, Some(vec![]))).expect("view");
        assert!(none.pod_cidrs.is_empty());
        assert!(matches!(
            view(&node(Some("nope"), None)),
            Err(Error::BadPodCidr { .. })
        ));
    }
}
