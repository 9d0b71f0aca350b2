//! Which pods are well-known system components, and what others need from
//! them. Defaults cover CoreDNS, flannel, Longhorn, Flux, metrics-server and
//! common ingress controllers; a cluster with other names extends or replaces
//! the list (the type deserialises from the CLI's config file).

use serde::{Deserialize, Serialize};

use crate::model::{Labels, Pod};

/// What the rest of the cluster needs a component for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Role {
    /// Cluster DNS: when it is down, pods that fail name lookups are its victims.
    Dns,
    /// The CNI's own pods (flannel as a DaemonSet).
    Cni,
    /// A CSI driver: its node plugin must register on each node.
    Storage {
        /// Driver name, e.g. `driver.longhorn.io`.
        driver: String,
    },
    /// GitOps controllers (Flux, Argo CD).
    GitOps,
    /// Anything else worth naming (metrics, ingress, cert-manager).
    Other,
}

/// A well-known component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Display name, e.g. `CoreDNS`.
    pub name: String,
    /// Namespace its pods run in.
    pub namespace: String,
    /// Labels that select its pods (all must match); empty selects every
    /// pod of the namespace.
    #[serde(default)]
    pub selector: Labels,
    /// Its Service, whose ready endpoints say whether it is up.
    #[serde(default)]
    pub service: Option<String>,
    /// What it is for.
    pub role: Role,
}

impl Component {
    /// Whether a pod belongs to the component.
    pub fn matches(&self, pod: &Pod) -> bool {
        pod.metadata.namespace == self.namespace
            && self
                .selector
                .iter()
                .all(|(k, v)| pod.metadata.labels.get(k) == Some(v))
    }
}

/// Analysis settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Known components.
    pub components: Vec<Component>,
    /// Namespace of the Flux controllers.
    pub flux_namespace: String,
    /// Namespace of the Argo CD controllers.
    #[serde(default = "default_argocd_namespace")]
    pub argocd_namespace: String,
}

fn default_argocd_namespace() -> String {
    "argocd".into()
}

fn component(
    name: &str,
    ns: &str,
    selector: &[(&str, &str)],
    service: Option<&str>,
    role: Role,
) -> Component {
    Component {
        name: name.into(),
        namespace: ns.into(),
        selector: selector
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        service: service.map(Into::into),
        role,
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            components: vec![
                component(
                    "CoreDNS",
                    "kube-system",
                    &[("k8s-app", "kube-dns")],
                    Some("kube-dns"),
                    Role::Dns,
                ),
                component(
                    "flannel",
                    "kube-flannel",
                    &[("app", "flannel")],
                    None,
                    Role::Cni,
                ),
                component(
                    "flannel",
                    "kube-system",
                    &[("app", "flannel")],
                    None,
                    Role::Cni,
                ),
                component(
                    "Calico",
                    "calico-system",
                    &[("k8s-app", "calico-node")],
                    None,
                    Role::Cni,
                ),
                component(
                    "Calico",
                    "kube-system",
                    &[("k8s-app", "calico-node")],
                    None,
                    Role::Cni,
                ),
                component(
                    "Cilium",
                    "kube-system",
                    &[("k8s-app", "cilium")],
                    None,
                    Role::Cni,
                ),
                component(
                    "Multus",
                    "kube-system",
                    &[("app", "multus")],
                    None,
                    Role::Cni,
                ),
                component(
                    "whereabouts",
                    "kube-system",
                    &[("app", "whereabouts")],
                    None,
                    Role::Cni,
                ),
                component(
                    "Longhorn",
                    "longhorn-system",
                    &[],
                    None,
                    Role::Storage {
                        driver: "driver.longhorn.io".into(),
                    },
                ),
                component("Flux", "flux-system", &[], None, Role::GitOps),
                component("Argo CD", "argocd", &[], None, Role::GitOps),
                component(
                    "metrics-server",
                    "kube-system",
                    &[("k8s-app", "metrics-server")],
                    Some("metrics-server"),
                    Role::Other,
                ),
                component(
                    "Traefik",
                    "kube-system",
                    &[("app.kubernetes.io/name", "traefik")],
                    Some("traefik"),
                    Role::Other,
                ),
                component(
                    "ingress-nginx",
                    "ingress-nginx",
                    &[("app.kubernetes.io/name", "ingress-nginx")],
                    None,
                    Role::Other,
                ),
                component("cert-manager", "cert-manager", &[], None, Role::Other),
            ],
            flux_namespace: "flux-system".into(),
            argocd_namespace: default_argocd_namespace(),
        }
    }
}

impl Config {
    /// The first component a pod belongs to.
    pub fn component_of(&self, pod: &Pod) -> Option<&Component> {
        self.components.iter().find(|c| c.matches(pod))
    }
}
