//! The Node facts the node guardian needs, fetched under a time bound.

use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
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
}

/// Why the node could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such node: usually a wrong node name.
    #[error(
        "node {0:?} does not exist in the cluster; check the node name (--node-name, k3s's node-name, the hostname)"
    )]
    NotFound(String),
    /// RBAC says no.
    #[error("not allowed to read {what}: {message}; grant get on it to these credentials")]
    Forbidden {
        /// What was read.
        what: String,
        /// The API's message.
        message: String,
    },
    /// No answer within the bound.
    #[error("the API server did not answer within {0:?}")]
    Timeout(Duration),
    /// The API answered with an error, or could not be reached.
    #[error("failed to read {what} from the API server")]
    Api {
        /// What was read.
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
    /// Worth trying again later (the API may come up); a missing node or a
    /// refusal will not change by retrying.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::Api { .. })
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
    Ok(NodeView {
        name,
        pod_cidrs,
        boot_id,
    })
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
async fn bounded<T>(
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
