//! The slice of each Kubernetes object that diagnosis reads.
//!
//! Every type deserialises straight from the object as the API server (or
//! `kubectl -o json`) prints it and ignores every field it does not name, so a
//! 150,000-pod list costs a fraction of its text in memory. Serialising gives
//! back the same shape (a subset of the real object), which is what a snapshot
//! file stores: nothing diagnosis does not read, and so no environment values,
//! no annotations on pods, no secrets.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Accepts `null` where Kubernetes sometimes prints it and the type's default
/// is the natural meaning (`"labels": null`, `"count": null`).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Labels or annotations: a sorted vector, far smaller than a map for the
/// handful of entries objects carry (150,000 pods make it count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<(Box<str>, Box<str>)>);

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Labels(Vec::new())
    }
    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }
    /// Sets a key.
    pub fn insert(&mut self, key: &str, value: &str) {
        match self.0.binary_search_by(|(k, _)| (**k).cmp(key)) {
            Ok(i) => self.0[i].1 = value.into(),
            Err(i) => self.0.insert(i, (key.into(), value.into())),
        }
    }
    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Whether every entry of `selector` is present here.
    pub fn matches(&self, selector: &Labels) -> bool {
        selector.iter().all(|(k, v)| self.get(k) == Some(v))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut l = Labels::new();
        for (k, v) in iter {
            l.insert(k.as_ref(), v.as_ref());
        }
        l
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Labels, A::Error> {
                let mut v: Vec<(Box<str>, Box<str>)> =
                    Vec::with_capacity(m.size_hint().unwrap_or(4));
                while let Some((k, val)) =
                    m.next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                {
                    v.push((k.into(), val.into()));
                }
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v.dedup_by(|a, b| a.0 == b.0);
                Ok(Labels(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Object metadata: the fields diagnosis reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    /// `metadata.name`.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// `metadata.namespace`; empty for cluster-scoped objects.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// `metadata.uid`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub uid: String,
    /// `metadata.labels`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "Labels::is_empty"
    )]
    pub labels: Labels,
    /// `metadata.creationTimestamp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    /// `metadata.deletionTimestamp`: set once deletion was requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<Timestamp>,
    /// `metadata.ownerReferences`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerRef>,
}

impl Meta {
    /// The owner marked `controller: true`, if any.
    pub fn controller(&self) -> Option<&OwnerRef> {
        self.owner_references.iter().find(|o| o.controller)
    }
}

/// `metadata.ownerReferences[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnerRef {
    /// Owner kind, e.g. `ReplicaSet`.
    #[serde(deserialize_with = "nullable")]
    pub kind: String,
    /// Owner name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Whether this owner is the managing controller.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub controller: bool,
}

/// A condition as nodes, pods and most custom resources carry them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    /// Machine-readable reason.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub reason: String,
    /// Human message.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
    /// When the status last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
    /// When its writer last confirmed it (node conditions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Timestamp>,
}

/// A condition read without copying its strings, so the ones dropped cost
/// no allocation.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConditionRef<'a> {
    #[serde(rename = "type", borrow, default)]
    type_: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    last_transition_time: Option<Timestamp>,
}

fn pod_conditions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Condition>, D::Error> {
    let all: Option<Vec<ConditionRef<'de>>> = Deserialize::deserialize(d)?;
    let owned =
        |c: Option<std::borrow::Cow<'de, str>>| c.map(|c| c.into_owned()).unwrap_or_default();
    Ok(all
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            let (t, s) = (c.type_.as_deref(), c.status.as_deref());
            t == Some("Ready") || (t == Some("PodScheduled") && s != Some("True"))
        })
        .map(|c| Condition {
            type_: owned(c.type_),
            status: owned(c.status),
            reason: owned(c.reason),
            message: owned(c.message),
            last_transition_time: c.last_transition_time,
            last_heartbeat_time: None,
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeRef<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    persistent_volume_claim: Option<ClaimRef<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimRef<'a> {
    #[serde(borrow, default)]
    claim_name: Option<std::borrow::Cow<'a, str>>,
}

/// Keeps only the volumes backed by a PVC, without copying the others.
fn pvc_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Volume>, D::Error> {
    let all: Option<Vec<VolumeRef<'de>>> = Deserialize::deserialize(d)?;
    Ok(all
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| {
            let claim = v.persistent_volume_claim?;
            Some(Volume {
                name: v.name.map(|n| n.into_owned()).unwrap_or_default(),
                persistent_volume_claim: Some(ClaimSource {
                    claim_name: claim.claim_name.map(|c| c.into_owned()).unwrap_or_default(),
                }),
            })
        })
        .collect())
}

fn find<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// A Node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    /// Metadata, with annotations (flannel keeps its lease there).
    #[serde(deserialize_with = "nullable")]
    pub metadata: NodeMeta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: NodeSpec,
    /// `status`.
    #[serde(deserialize_with = "nullable")]
    pub status: NodeStatus,
}

/// Node metadata: like [`Meta`] plus annotations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeMeta {
    /// `metadata.name`.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// `metadata.uid`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub uid: String,
    /// `metadata.labels`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "Labels::is_empty"
    )]
    pub labels: Labels,
    /// `metadata.annotations`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "Labels::is_empty"
    )]
    pub annotations: Labels,
    /// `metadata.creationTimestamp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
}

/// Node `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSpec {
    /// `spec.podCIDR`.
    #[serde(
        rename = "podCIDR",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub pod_cidr: String,
    /// `spec.unschedulable` (cordoned).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub unschedulable: bool,
    /// `spec.taints`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
}

/// A node taint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Taint {
    /// Taint key.
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(deserialize_with = "nullable")]
    pub effect: String,
}

/// Node `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStatus {
    /// `status.conditions`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `status.nodeInfo`.
    #[serde(deserialize_with = "nullable")]
    pub node_info: NodeInfo,
}

/// `status.nodeInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeInfo {
    /// `bootID`: changes on every boot.
    #[serde(
        rename = "bootID",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub boot_id: String,
    /// Kubelet version (k3s prints `v1.33.4+k3s1`).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub kubelet_version: String,
}

impl Node {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
    /// The `Ready` condition, if reported.
    pub fn ready(&self) -> Option<&Condition> {
        find(&self.status.conditions, "Ready")
    }
    /// A condition by type (`PodNetworkReady`, written by rebootguard's agent).
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        find(&self.status.conditions, type_)
    }
    /// Whether the node reports `Ready=True`.
    pub fn is_ready(&self) -> bool {
        self.ready().is_some_and(|c| c.status == "True")
    }
}

/// A Pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pod {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: PodSpec,
    /// `status`.
    #[serde(deserialize_with = "nullable")]
    pub status: PodStatus,
}

/// Pod `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    /// `spec.nodeName`; empty while unscheduled.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub node_name: String,
    /// `spec.hostNetwork`: such pods need no CNI.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub host_network: bool,
    /// `spec.volumes`: only PVC references are kept.
    #[serde(
        deserialize_with = "pvc_volumes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volumes: Vec<Volume>,
}

/// A pod volume; only the PVC source is kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Volume {
    /// Volume name inside the pod.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// `persistentVolumeClaim`, when the volume is a PVC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<ClaimSource>,
}

/// `persistentVolumeClaim` volume source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClaimSource {
    /// The PVC's name, in the pod's namespace.
    #[serde(deserialize_with = "nullable")]
    pub claim_name: String,
}

/// Pod `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub phase: String,
    /// e.g. `NodeLost`, `Shutdown`, `Terminated`, `Evicted`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub reason: String,
    /// Human message.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
    /// When the kubelet accepted the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// `status.conditions`: only `Ready`, and `PodScheduled` while not True.
    #[serde(
        deserialize_with = "pod_conditions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
    /// `status.initContainerStatuses`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    /// `status.containerStatuses`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
}

/// One container's status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStatus {
    /// Container name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Image reference.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub image: String,
    /// Readiness.
    #[serde(deserialize_with = "nullable")]
    pub ready: bool,
    /// Restarts so far.
    #[serde(deserialize_with = "nullable")]
    pub restart_count: i64,
    /// Current state.
    #[serde(deserialize_with = "nullable")]
    pub state: ContainerState,
    /// Previous state (the last termination).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub last_state: ContainerState,
}

/// A container state: at most one of the three is set. Boxed because most
/// containers run: an empty state costs two pointers, not two structs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerState {
    /// Waiting (e.g. `ContainerCreating`, `CrashLoopBackOff`, `ImagePullBackOff`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Box<Waiting>>,
    /// Running since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<Running>,
    /// Terminated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Box<Terminated>>,
}

/// `state.waiting`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Waiting {
    /// Reason.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub reason: String,
    /// Message.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
}

/// `state.running`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Running {
    /// When the container started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
}

/// `state.terminated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Terminated {
    /// Reason (`Error`, `Completed`, `OOMKilled`, `Unknown`...).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub reason: String,
    /// Termination message (the log tail with `FallbackToLogsOnError`).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
    /// Exit code.
    #[serde(deserialize_with = "nullable")]
    pub exit_code: i64,
    /// When it finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl Pod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }
    /// A pod condition by type.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        find(&self.status.conditions, type_)
    }
    /// Whether the pod reports `Ready=True`.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }
    /// Whether the pod finished for good (`Succeeded` / `Failed`).
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.phase.as_str(), "Succeeded" | "Failed")
    }
    /// All container statuses, init containers first.
    pub fn containers(&self) -> impl Iterator<Item = &ContainerStatus> {
        self.status
            .init_container_statuses
            .iter()
            .chain(&self.status.container_statuses)
    }
    /// Names of the PVCs the pod mounts.
    pub fn claims(&self) -> impl Iterator<Item = &str> {
        self.spec
            .volumes
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.as_str())
    }
    /// What `kubectl get pods` prints in its STATUS column, close enough to
    /// talk about a pod the way an operator sees it.
    pub fn display_status(&self) -> String {
        if self.metadata.deletion_timestamp.is_some() {
            return if self.status.reason == "NodeLost" {
                "Unknown".into()
            } else {
                "Terminating".into()
            };
        }
        if !self.status.reason.is_empty() && self.is_terminal() {
            return self.status.reason.clone();
        }
        for c in self.containers() {
            if let Some(w) = &c.state.waiting
                && !w.reason.is_empty()
                && w.reason != "PodInitializing"
            {
                return w.reason.clone();
            }
        }
        if self.status.phase.is_empty() {
            "Unknown".into()
        } else {
            self.status.phase.clone()
        }
    }
}

/// Reference to the object an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectRef {
    /// Kind.
    #[serde(deserialize_with = "nullable")]
    pub kind: String,
    /// Namespace (empty for cluster-scoped objects).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// Name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
}

impl ObjectRef {
    /// Builds a reference.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// An event, whichever API it came from (core/v1 or events.k8s.io/v1),
/// normalised to one shape. Serialises as a core/v1 Event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "RawEvent")]
pub struct Event {
    /// Event metadata (name, namespace, uid).
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// The object the event is about.
    pub involved_object: ObjectRef,
    /// Reason, e.g. `FailedCreatePodSandBox`.
    pub reason: String,
    /// Message, with the `(combined from similar events): ` prefix removed.
    pub message: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// How many times it happened (at least 1).
    pub count: i64,
    /// First occurrence.
    #[serde(rename = "firstTimestamp")]
    pub first_seen: Option<Timestamp>,
    /// Last occurrence.
    #[serde(rename = "lastTimestamp")]
    pub last_seen: Option<Timestamp>,
    /// Reporting component and host.
    pub source: EventSource,
}

/// Who reported an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventSource {
    /// e.g. `kubelet`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub component: String,
    /// The node for kubelet events.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub host: String,
}

/// The union of both event shapes, turned into [`Event`] by `From`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawEvent {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    // core/v1
    involved_object: Option<ObjectRef>,
    #[serde(deserialize_with = "nullable")]
    reason: String,
    message: Option<String>,
    #[serde(rename = "type", deserialize_with = "nullable")]
    type_: String,
    count: Option<i64>,
    first_timestamp: Option<Timestamp>,
    last_timestamp: Option<Timestamp>,
    event_time: Option<Timestamp>,
    source: Option<EventSource>,
    series: Option<Series>,
    #[serde(deserialize_with = "nullable")]
    reporting_component: String,
    #[serde(deserialize_with = "nullable")]
    reporting_instance: String,
    // events.k8s.io/v1
    regarding: Option<ObjectRef>,
    note: Option<String>,
    deprecated_count: Option<i64>,
    deprecated_first_timestamp: Option<Timestamp>,
    deprecated_last_timestamp: Option<Timestamp>,
    deprecated_source: Option<EventSource>,
    #[serde(deserialize_with = "nullable")]
    reporting_controller: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Series {
    count: Option<i64>,
    last_observed_time: Option<Timestamp>,
}

/// Normal events diagnosis reads; every other Normal event is dropped at
/// load (they are most of a cluster's events and say nothing is wrong).
pub const KEPT_NORMAL_REASONS: [&str; 5] = [
    "NodeNotReady",
    "NodeReady",
    "Rebooted",
    "CIDRNotAvailable",
    "RegisteredNode",
];

impl Event {
    /// Whether diagnosis reads this event (Warnings, node lifecycle).
    pub fn is_relevant(&self) -> bool {
        self.type_ != "Normal" || KEPT_NORMAL_REASONS.contains(&self.reason.as_str())
    }
}

/// The prefix the event recorder puts on aggregated events.
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

impl From<RawEvent> for Event {
    fn from(r: RawEvent) -> Self {
        let message = r.message.or(r.note).unwrap_or_default();
        let message = match message.strip_prefix(COMBINED_PREFIX) {
            Some(rest) => rest.to_string(),
            None => message,
        };
        let series = r.series.unwrap_or_default();
        let count = [r.count, series.count, r.deprecated_count]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(1)
            .max(1);
        let first_seen = r
            .first_timestamp
            .or(r.deprecated_first_timestamp)
            .or(r.event_time)
            .or(r.metadata.creation_timestamp);
        let last_seen = [
            r.last_timestamp,
            r.deprecated_last_timestamp,
            series.last_observed_time,
            r.event_time,
        ]
        .into_iter()
        .flatten()
        .max()
        .or(first_seen);
        let mut source = r.source.or(r.deprecated_source).unwrap_or_default();
        if source.component.is_empty() {
            source.component = if r.reporting_controller.is_empty() {
                r.reporting_component
            } else {
                r.reporting_controller
            };
        }
        if source.host.is_empty() {
            source.host = r.reporting_instance;
        }
        Event {
            metadata: Meta {
                owner_references: Vec::new(),
                labels: Labels::new(),
                ..r.metadata
            },
            involved_object: r.involved_object.or(r.regarding).unwrap_or_default(),
            reason: r.reason,
            message,
            type_: r.type_,
            count,
            first_seen,
            last_seen,
            source,
        }
    }
}

/// A Service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: ServiceSpec,
}

/// Service `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSpec {
    /// Pod selector.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "Labels::is_empty"
    )]
    pub selector: Labels,
    /// Cluster IP.
    #[serde(
        rename = "clusterIP",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_ip: String,
}

/// A discovery.k8s.io/v1 EndpointSlice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointSlice {
    /// `metadata`; label `kubernetes.io/service-name` names the Service.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `endpoints`.
    #[serde(deserialize_with = "nullable")]
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint of a slice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoint {
    /// Addresses.
    #[serde(deserialize_with = "nullable")]
    pub addresses: Vec<String>,
    /// Readiness.
    #[serde(deserialize_with = "nullable")]
    pub conditions: EndpointConditions,
    /// Node hosting it.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub node_name: String,
}

/// Endpoint conditions; an absent `ready` means ready (API semantics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointConditions {
    /// `ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

impl EndpointSlice {
    /// The Service the slice belongs to.
    pub fn service_name(&self) -> Option<&str> {
        self.metadata.labels.get("kubernetes.io/service-name")
    }
    /// Endpoints that are ready.
    pub fn ready_count(&self) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.conditions.ready != Some(false))
            .count()
    }
}

/// A PersistentVolumeClaim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistentVolumeClaim {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: ClaimSpec,
    /// `status`.
    #[serde(deserialize_with = "nullable")]
    pub status: PhaseStatus,
}

/// PVC `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClaimSpec {
    /// The bound PV.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub volume_name: String,
    /// Storage class.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub storage_class_name: String,
}

/// A `status` with only a phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhaseStatus {
    /// Phase.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub phase: String,
}

/// A PersistentVolume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistentVolume {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: VolumeSpec,
    /// `status`.
    #[serde(deserialize_with = "nullable")]
    pub status: PhaseStatus,
}

/// PV `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeSpec {
    /// CSI source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csi: Option<CsiSource>,
    /// The claim bound to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_ref: Option<ObjectRef>,
}

/// PV `spec.csi`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CsiSource {
    /// Driver name, e.g. `driver.longhorn.io`.
    #[serde(deserialize_with = "nullable")]
    pub driver: String,
    /// Driver's volume id.
    #[serde(deserialize_with = "nullable")]
    pub volume_handle: String,
}

/// A storage.k8s.io/v1 VolumeAttachment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeAttachment {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: AttachmentSpec,
    /// `status`.
    #[serde(deserialize_with = "nullable")]
    pub status: AttachmentStatus,
}

/// VolumeAttachment `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachmentSpec {
    /// The CSI driver.
    #[serde(deserialize_with = "nullable")]
    pub attacher: String,
    /// Target node.
    #[serde(deserialize_with = "nullable")]
    pub node_name: String,
    /// What is attached.
    #[serde(deserialize_with = "nullable")]
    pub source: AttachmentSource,
}

/// VolumeAttachment `spec.source`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachmentSource {
    /// The PV.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub persistent_volume_name: String,
}

/// VolumeAttachment `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachmentStatus {
    /// Attached.
    #[serde(deserialize_with = "nullable")]
    pub attached: bool,
    /// Last attach error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_error: Option<AttachError>,
}

/// `attachError`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachError {
    /// Message.
    #[serde(deserialize_with = "nullable")]
    pub message: String,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
}

/// A storage.k8s.io/v1 CSINode: which drivers registered on the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsiNode {
    /// `metadata` (name = node name).
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: CsiNodeSpec,
}

/// CSINode `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsiNodeSpec {
    /// Registered drivers.
    #[serde(deserialize_with = "nullable")]
    pub drivers: Vec<CsiNodeDriver>,
}

/// A driver registered on a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsiNodeDriver {
    /// Driver name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
}

/// A storage.k8s.io/v1 CSIDriver (only the name matters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsiDriver {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
}

/// A Validating- or MutatingWebhookConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfiguration {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `webhooks`.
    #[serde(deserialize_with = "nullable")]
    pub webhooks: Vec<Webhook>,
}

/// One webhook of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Webhook {
    /// Webhook name, e.g. `validate.nginx.ingress.kubernetes.io`.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Where it is served.
    #[serde(deserialize_with = "nullable")]
    pub client_config: ClientConfig,
    /// `Fail` (default) or `Ignore`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub failure_policy: String,
}

/// Webhook `clientConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    /// In-cluster service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
}

/// A service reference (webhooks, APIServices).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceRef {
    /// Namespace.
    #[serde(deserialize_with = "nullable")]
    pub namespace: String,
    /// Name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
}

/// An apiregistration.k8s.io/v1 APIService.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiService {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: ApiServiceSpec,
    /// `status`.
    #[serde(deserialize_with = "nullable")]
    pub status: ConditionsStatus,
}

/// APIService `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiServiceSpec {
    /// Backing service; none for built-in groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
}

/// A `status` with only conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConditionsStatus {
    /// Conditions.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl ApiService {
    /// The `Available` condition.
    pub fn available(&self) -> Option<&Condition> {
        find(&self.status.conditions, "Available")
    }
}

/// A coordination.k8s.io/v1 Lease.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lease {
    /// `metadata`.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// `spec`.
    #[serde(deserialize_with = "nullable")]
    pub spec: LeaseSpec,
}

/// Lease `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeaseSpec {
    /// Holder.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub holder_identity: String,
    /// Last renewal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_time: Option<jiff::Timestamp>,
    /// Duration in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_duration_seconds: Option<i64>,
}
