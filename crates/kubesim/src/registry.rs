//! The resource types kubesim serves, as data: group, version, plural,
//! kind, scope, subresources and selectable fields. Adding a kind is adding
//! a row, not code; custom resources are rows registered at start.

use serde_json::{Value, json};

/// Index of a resource in the [`Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId(pub usize);

/// A field selector label and where its value lives in the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The label clients write, e.g. `source`.
    pub label: String,
    /// Dotted JSON path, e.g. `source.component`.
    pub path: String,
    /// The value seen when the path is absent.
    pub default: String,
}

/// One served resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group, empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name used in URLs, e.g. `pods`.
    pub plural: String,
    /// Singular name, e.g. `pod`.
    pub singular: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names, e.g. `po`.
    pub short_names: Vec<String>,
    /// Whether a `status` subresource exists (then writes to the main
    /// resource keep the stored status, and writes to `status` keep the rest).
    pub status: bool,
    /// Whether `metadata.generation` tracks spec changes.
    pub generation: bool,
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`.
    pub fields: Vec<Field>,
    /// Subresources other than `status`, e.g. `pods/eviction`.
    pub subresources: Vec<Subresource>,
    /// A custom resource: served as unstructured JSON, no strategic merge.
    pub custom: bool,
    /// Another version of a stored resource, sharing its objects.
    pub view: Option<crate::convert::View>,
    /// A review (`selfsubjectreviews`, `selfsubjectaccessreviews`):
    /// create-only, answered from the request, never stored.
    pub review: bool,
}

/// A subresource other than `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    /// Name after the object's name in the URL, e.g. `eviction`.
    pub name: String,
    /// Group of the kind posted to it.
    pub group: String,
    /// Version of the kind posted to it.
    pub version: String,
    /// The kind posted to it, e.g. `Eviction`.
    pub kind: String,
    /// The verbs it takes, e.g. `create` or `get`, `patch`, `update`.
    pub verbs: Vec<String>,
}

/// The self-review resources (`crate::review`): `(group, plural, kind)`, all `v1`, cluster-scoped.
pub const REVIEWS: &[(&str, &str, &str)] = &[
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
    ),
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
    ),
];

/// The name of the scale subresource (`crate::scale`).
pub const SCALE: &str = "scale";

impl Resource {
    /// Whether it has a scale subresource, as upstream.
    pub fn has_scale(&self) -> bool {
        self.group == "apps"
            && matches!(
                self.plural.as_str(),
                "deployments" | "replicasets" | "statefulsets"
            )
    }

    /// `apiVersion` as written in objects: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`, as in RBAC and kubectl.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The field a selector label reads, including the two every resource has.
    pub fn field(&self, label: &str) -> Option<(&str, &str)> {
        match label {
            "metadata.name" => Some(("metadata.name", "")),
            "metadata.namespace" => Some(("metadata.namespace", "")),
            _ => self
                .fields
                .iter()
                .find(|f| f.label == label)
                .map(|f| (f.path.as_str(), f.default.as_str())),
        }
    }

    /// The APIResource entries of this resource for discovery.
    fn discovery(&self) -> Vec<Value> {
        let verbs = if self.review {
            vec!["create"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        };
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
        })];
        if self.short_names.is_empty()
            && let Some(o) = out[0].as_object_mut()
        {
            o.remove("shortNames");
        }
        // `kubectl get all` expands the "all" category from discovery.
        const ALL: &[(&str, &str)] = &[
            ("", "pods"),
            ("", "services"),
            ("apps", "deployments"),
            ("apps", "daemonsets"),
            ("apps", "replicasets"),
            ("apps", "statefulsets"),
        ];
        if ALL.contains(&(self.group.as_str(), self.plural.as_str())) {
            out[0]["categories"] = json!(["all"]);
        }
        if self.status {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        for sub in &self.subresources {
            out.push(json!({
                "name": format!("{}/{}", self.plural, sub.name),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": sub.group,
                "version": sub.version,
                "kind": sub.kind,
                "verbs": sub.verbs,
            }));
        }
        out
    }
}

/// A custom resource to serve as unstructured JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomResource {
    /// API group, e.g. `helm.toolkit.fluxcd.io`.
    pub group: String,
    /// Version, e.g. `v2`.
    pub version: String,
    /// Plural, e.g. `helmreleases`.
    pub plural: String,
    /// Kind, e.g. `HelmRelease`.
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
}

impl CustomResource {
    /// A namespaced custom resource with a status subresource.
    pub fn namespaced(group: &str, version: &str, plural: &str, kind: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            kind: kind.to_owned(),
            namespaced: true,
            short_names: Vec::new(),
        }
    }

    /// The custom resources rebootguard reads: Flux HelmRelease and
    /// Kustomization, Longhorn volumes, replicas, engines and nodes.
    pub fn defaults() -> Vec<Self> {
        let mut hr = Self::namespaced(
            "helm.toolkit.fluxcd.io",
            "v2",
            "helmreleases",
            "HelmRelease",
        );
        hr.short_names = vec!["hr".into()];
        let mut ks = Self::namespaced(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "kustomizations",
            "Kustomization",
        );
        ks.short_names = vec!["ks".into()];
        let mut lhv = Self::namespaced("longhorn.io", "v1beta2", "volumes", "Volume");
        lhv.short_names = vec!["lhv".into()];
        let mut lhr = Self::namespaced("longhorn.io", "v1beta2", "replicas", "Replica");
        lhr.short_names = vec!["lhr".into()];
        let mut lhe = Self::namespaced("longhorn.io", "v1beta2", "engines", "Engine");
        lhe.short_names = vec!["lhe".into()];
        let mut lhn = Self::namespaced("longhorn.io", "v1beta2", "nodes", "Node");
        lhn.short_names = vec!["lhn".into()];
        vec![hr, ks, lhv, lhr, lhe, lhn]
    }
}

/// All served resources, fixed at start.
#[derive(Debug, Clone)]
pub struct Registry {
    resources: Vec<Resource>,
}

struct Row<'a> {
    group: &'a str,
    version: &'a str,
    plural: &'a str,
    kind: &'a str,
    namespaced: bool,
    short: &'a [&'a str],
    status: bool,
    generation: bool,
}

#[rustfmt::skip]
const BUILTIN: &[Row<'static>] = &[
    Row { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false, short: &["ns"], status: true, generation: false },
    Row { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false, short: &["no"], status: true, generation: false },
    Row { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true, short: &["po"], status: true, generation: false },
    Row { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true, short: &["ev"], status: false, generation: false },
    Row { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true, short: &["svc"], status: true, generation: false },
    Row { group: "", version: "v1", plural: "endpoints", kind: "Endpoints", namespaced: true, short: &["ep"], status: false, generation: false },
    Row { group: "", version: "v1", plural: "replicationcontrollers", kind: "ReplicationController", namespaced: true, short: &["rc"], status: true, generation: true },
    Row { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true, short: &["cm"], status: false, generation: false },
    Row { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true, short: &[], status: false, generation: false },
    Row { group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true, short: &["sa"], status: false, generation: false },
    Row { group: "", version: "v1", plural: "persistentvolumeclaims", kind: "PersistentVolumeClaim", namespaced: true, short: &["pvc"], status: true, generation: false },
    Row { group: "", version: "v1", plural: "persistentvolumes", kind: "PersistentVolume", namespaced: false, short: &["pv"], status: true, generation: false },
    Row { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true, short: &["deploy"], status: true, generation: true },
    Row { group: "apps", version: "v1", plural: "daemonsets", kind: "DaemonSet", namespaced: true, short: &["ds"], status: true, generation: true },
    Row { group: "apps", version: "v1", plural: "replicasets", kind: "ReplicaSet", namespaced: true, short: &["rs"], status: true, generation: true },
    Row { group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet", namespaced: true, short: &["sts"], status: true, generation: true },
    Row { group: "policy", version: "v1", plural: "poddisruptionbudgets", kind: "PodDisruptionBudget", namespaced: true, short: &["pdb"], status: true, generation: true },
    Row { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true, short: &[], status: false, generation: false },
    Row { group: "storage.k8s.io", version: "v1", plural: "volumeattachments", kind: "VolumeAttachment", namespaced: false, short: &[], status: true, generation: false },
    Row { group: "storage.k8s.io", version: "v1", plural: "csidrivers", kind: "CSIDriver", namespaced: false, short: &[], status: false, generation: false },
    Row { group: "storage.k8s.io", version: "v1", plural: "csinodes", kind: "CSINode", namespaced: false, short: &[], status: false, generation: false },
    Row { group: "storage.k8s.io", version: "v1", plural: "storageclasses", kind: "StorageClass", namespaced: false, short: &["sc"], status: false, generation: false },
    Row { group: "discovery.k8s.io", version: "v1", plural: "endpointslices", kind: "EndpointSlice", namespaced: true, short: &[], status: false, generation: false },
    Row { group: "admissionregistration.k8s.io", version: "v1", plural: "validatingwebhookconfigurations", kind: "ValidatingWebhookConfiguration", namespaced: false, short: &[], status: false, generation: true },
    Row { group: "admissionregistration.k8s.io", version: "v1", plural: "mutatingwebhookconfigurations", kind: "MutatingWebhookConfiguration", namespaced: false, short: &[], status: false, generation: true },
    Row { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", kind: "ClusterRole", namespaced: false, short: &[], status: false, generation: false },
    Row { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", kind: "ClusterRoleBinding", namespaced: false, short: &[], status: false, generation: false },
    Row { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true, short: &[], status: false, generation: false },
    Row { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", namespaced: true, short: &[], status: false, generation: false },
    Row { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", kind: "CustomResourceDefinition", namespaced: false, short: &["crd", "crds"], status: true, generation: true },
];

/// Field selector labels per resource beyond name and namespace, as the
/// apiserver defines them: `(group, plural, label, path, default)`.
#[rustfmt::skip]
const FIELDS: &[(&str, &str, &str, &str, &str)] = &[
    ("", "pods", "spec.nodeName", "spec.nodeName", ""),
    ("", "pods", "spec.restartPolicy", "spec.restartPolicy", ""),
    ("", "pods", "spec.schedulerName", "spec.schedulerName", ""),
    ("", "pods", "spec.serviceAccountName", "spec.serviceAccountName", ""),
    ("", "pods", "spec.hostNetwork", "spec.hostNetwork", "false"),
    ("", "pods", "status.phase", "status.phase", ""),
    ("", "pods", "status.podIP", "status.podIP", ""),
    ("", "pods", "status.nominatedNodeName", "status.nominatedNodeName", ""),
    ("", "events", "involvedObject.kind", "involvedObject.kind", ""),
    ("", "events", "involvedObject.namespace", "involvedObject.namespace", ""),
    ("", "events", "involvedObject.name", "involvedObject.name", ""),
    ("", "events", "involvedObject.uid", "involvedObject.uid", ""),
    ("", "events", "involvedObject.apiVersion", "involvedObject.apiVersion", ""),
    ("", "events", "involvedObject.resourceVersion", "involvedObject.resourceVersion", ""),
    ("", "events", "involvedObject.fieldPath", "involvedObject.fieldPath", ""),
    ("", "events", "reason", "reason", ""),
    ("", "events", "reportingComponent", "reportingComponent", ""),
    ("", "events", "source", "source.component", ""),
    ("", "events", "type", "type", ""),
    ("", "nodes", "spec.unschedulable", "spec.unschedulable", "false"),
    ("", "namespaces", "status.phase", "status.phase", ""),
    ("", "secrets", "type", "type", ""),
    ("apps", "replicasets", "status.replicas", "status.replicas", "0"),
];

impl Registry {
    /// The built-in resources plus `custom`.
    pub fn new(custom: &[CustomResource]) -> Self {
        let mut resources: Vec<Resource> = BUILTIN
            .iter()
            .map(|r| Resource {
                group: r.group.to_owned(),
                version: r.version.to_owned(),
                plural: r.plural.to_owned(),
                singular: r.kind.to_ascii_lowercase(),
                kind: r.kind.to_owned(),
                namespaced: r.namespaced,
                short_names: r.short.iter().map(|s| (*s).to_owned()).collect(),
                status: r.status,
                generation: r.generation,
                fields: FIELDS
                    .iter()
                    .filter(|(g, p, ..)| *g == r.group && *p == r.plural)
                    .map(|(_, _, label, path, default)| Field {
                        label: (*label).to_owned(),
                        path: (*path).to_owned(),
                        default: (*default).to_owned(),
                    })
                    .collect(),
                subresources: Vec::new(),
                custom: false,
                view: None,
                review: false,
            })
            .collect();
        // events.k8s.io/v1 shares core/v1 events; its field selector labels
        // read the same stored fields under their new names.
        if let Some(core) = resources
            .iter()
            .find(|r| r.group.is_empty() && r.plural == "events")
        {
            let relabel = |label: &str| match label {
                l if l.starts_with("involvedObject.") => {
                    l.replacen("involvedObject.", "regarding.", 1)
                }
                "reportingComponent" => "reportingController".to_owned(),
                "source" => "deprecatedSource".to_owned(),
                l => l.to_owned(),
            };
            let mut view = core.clone();
            view.group = "events.k8s.io".into();
            view.short_names = Vec::new();
            view.fields = core
                .fields
                .iter()
                .map(|f| Field {
                    label: relabel(&f.label),
                    ..f.clone()
                })
                .collect();
            view.view = Some(crate::convert::View::EventsV1);
            resources.push(view);
        }
        if let Some(pods) = resources
            .iter_mut()
            .find(|r| r.group.is_empty() && r.plural == "pods")
        {
            pods.subresources = vec![
                Subresource {
                    name: "eviction".into(),
                    group: "policy".into(),
                    version: "v1".into(),
                    kind: "Eviction".into(),
                    verbs: vec!["create".into()],
                },
                Subresource {
                    name: "binding".into(),
                    group: String::new(),
                    version: "v1".into(),
                    kind: "Binding".into(),
                    verbs: vec!["create".into()],
                },
            ];
        }
        resources.extend(REVIEWS.iter().map(|(group, plural, kind)| Resource {
            group: (*group).to_owned(),
            version: "v1".into(),
            plural: (*plural).to_owned(),
            singular: kind.to_ascii_lowercase(),
            kind: (*kind).to_owned(),
            namespaced: false,
            short_names: Vec::new(),
            status: false,
            generation: false,
            fields: Vec::new(),
            subresources: Vec::new(),
            custom: false,
            view: None,
            review: true,
        }));
        for r in resources.iter_mut().filter(|r| r.has_scale()) {
            r.subresources.push(Subresource {
                name: SCALE.into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                verbs: ["get", "patch", "update"].map(String::from).to_vec(),
            });
        }
        for c in custom {
            resources.push(Resource {
                group: c.group.clone(),
                version: c.version.clone(),
                plural: c.plural.clone(),
                singular: c.kind.to_ascii_lowercase(),
                kind: c.kind.clone(),
                namespaced: c.namespaced,
                short_names: c.short_names.clone(),
                status: true,
                generation: true,
                fields: Vec::new(),
                subresources: Vec::new(),
                custom: true,
                view: None,
                review: false,
            });
        }
        Self { resources }
    }

    /// Every resource, indexable by [`ResourceId`].
    pub fn all(&self) -> &[Resource] {
        &self.resources
    }

    /// The resource whose objects `id` serves: itself, or the stored
    /// resource of a view.
    pub fn backing(&self, id: ResourceId) -> ResourceId {
        let r = self.get(id);
        match r.view {
            Some(crate::convert::View::EventsV1) => self.find("", "v1", "events").unwrap_or(id),
            None => id,
        }
    }

    /// The resource at `id`.
    pub fn get(&self, id: ResourceId) -> &Resource {
        &self.resources[id.0]
    }

    /// Looks a resource up by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceId> {
        self.resources
            .iter()
            .position(|r| r.group == group && r.version == version && r.plural == plural)
            .map(ResourceId)
    }

    /// Looks a resource up by `apiVersion` and kind, as found in objects.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<ResourceId> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.resources
            .iter()
            .position(|r| r.group == group && r.version == version && r.kind == kind)
            .map(ResourceId)
    }

    /// Groups other than core, in registration order, each with its versions.
    fn groups(&self) -> Vec<(&str, Vec<&str>)> {
        let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
        for r in self.resources.iter().filter(|r| !r.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version.as_str()) {
                        versions.push(&r.version);
                    }
                }
                None => out.push((&r.group, vec![&r.version])),
            }
        }
        out
    }

    /// Whether a group (or core, for `""`) serves `version`.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.resources
            .iter()
            .any(|r| r.group == group && r.version == version)
    }

    /// `/api`: the core group's versions.
    pub fn core_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
    }

    fn group_json(group: &str, versions: &[&str]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({
            "name": group,
            "versions": vs,
            "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// `/apis`: every non-core group.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(g, vs)| Self::group_json(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/<group>`, or `None` for an unknown group.
    pub fn group(&self, group: &str) -> Option<Value> {
        self.groups()
            .iter()
            .find(|(g, _)| *g == group)
            .map(|(g, vs)| {
                let mut v = Self::group_json(g, vs);
                if let Some(o) = v.as_object_mut() {
                    o.insert("kind".into(), "APIGroup".into());
                    o.insert("apiVersion".into(), "v1".into());
                }
                v
            })
    }

    /// `/api/v1` or `/apis/<group>/<version>`, or `None` when not served.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        if !self.has_group_version(group, version) {
            return None;
        }
        let resources: Vec<Value> = self
            .resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .flat_map(Resource::discovery)
            .collect();
        let gv = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_fields() {
        let r = Registry::new(&CustomResource::defaults());
        let pods = r.find("", "v1", "pods").unwrap();
        assert_eq!(r.get(pods).kind, "Pod");
        assert_eq!(
            r.get(pods).field("spec.nodeName"),
            Some(("spec.nodeName", ""))
        );
        assert_eq!(r.get(pods).field("spec.bogus"), None);
        let ev = r.find("", "v1", "events").unwrap();
        assert_eq!(r.get(ev).field("source"), Some(("source.component", "")));
        assert!(r.find_kind("coordination.k8s.io/v1", "Lease").is_some());
        assert!(
            r.find_kind("helm.toolkit.fluxcd.io/v2", "HelmRelease")
                .is_some()
        );
        // Longhorn's Node must not shadow the core Node.
        assert_eq!(r.get(r.find_kind("v1", "Node").unwrap()).group, "");
    }

    #[test]
    fn discovery_lists_eviction_under_policy() {
        let r = Registry::new(&[]);
        let list = r.resource_list("", "v1").unwrap();
        let ev = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "pods/eviction")
            .unwrap();
        assert_eq!(ev["group"], "policy");
        assert_eq!(ev["kind"], "Eviction");
        assert!(r.resource_list("apps", "v2").is_none());
        let groups = r.group_list();
        assert!(
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "coordination.k8s.io")
        );
    }
}
