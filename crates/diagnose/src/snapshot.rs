//! The collected cluster state, and its file format.
//!
//! A snapshot file is one JSON document:
//!
//! ```json
//! {"apiVersion": "rebootguard.io/v1alpha1", "kind": "Snapshot",
//!  "metadata": {"collectedAt": "...", "source": "..."},
//!  "missing": [{"kind": "Lease", "reason": "forbidden"}],
//!  "nodes": [...], "pods": [...], "events": [...], ...}
//! ```
//!
//! Objects are grouped by kind so a reader deserialises each array straight
//! into its type in one pass. gzip is optional: [`crate::load()`] recognises it
//! by its magic bytes, [`Snapshot::to_gzip`] writes it.
//!
//! The kinds diagnose reads are one table, `kinds!` below: a row per array
//! of the file, with the kinds the live collector lists into it, and the
//! custom resources kept whole. The struct, [`KINDS`], merging,
//! deduplication and both loaders' dispatch are written from it (see
//! `crate::kinds`), so adding a kind is adding a row.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::kinds::Kind;
use crate::kinds::{crd, group_of, kind, kinds};
use crate::model::{
    ApiService, CsiDriver, CsiNode, EndpointSlice, Event, KEPT_NORMAL_REASONS, Lease, Node,
    PersistentVolume, PersistentVolumeClaim, Pod, Service, VolumeAttachment, WebhookConfiguration,
};

/// The `apiVersion` this crate writes and reads.
pub const API_VERSION: &str = "rebootguard.io/v1alpha1";
/// The `kind` of a snapshot document.
pub const KIND: &str = "Snapshot";

/// Errors writing a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serialising to JSON failed (only with a custom object JSON cannot hold).
    #[error("failed to serialise the snapshot to JSON")]
    Serialize(#[source] serde_json::Error),
    /// Compressing failed.
    #[error("failed to gzip the snapshot")]
    Compress(#[source] std::io::Error),
    /// [`Builder::add`] was given an object that is not JSON-representable
    /// or not a Kubernetes object.
    #[error("failed to add a {kind} object to the snapshot: {reason}")]
    Add {
        /// Kind, as far as known.
        kind: String,
        /// Why.
        reason: String,
    },
}

/// Where the snapshot came from and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    /// When the objects were read; the natural `now` for diagnosing it later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collected_at: Option<Timestamp>,
    /// Free text: the context name, or the files it was loaded from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// A kind that could not be collected, and why (usually RBAC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Missing {
    /// Kind, e.g. `Lease` or `events.k8s.io/v1 Event`.
    pub kind: String,
    /// The reason, e.g. the API's `forbidden` message.
    pub reason: String,
}

/// Log lines kept from a pod (from a `kubectl cluster-info dump`), only
/// those that look like errors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogExcerpt {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container, when known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// The kept lines.
    pub lines: Vec<String>,
}

// The table. A row is an array of the snapshot file: its field and JSON
// key (the file's order), its model type, the kinds the collector lists
// into it; then the hooks it needs, if any (`crate::kinds::kinds` says
// what each does). Then the custom resources, kept whole in `custom`.
kinds! {
    arrays {
        /// Nodes.
        nodes("nodes"): Node = [kind("", "v1", "Node", "nodes")],
            skip = nameless_node;
        /// Pods.
        pods("pods"): Pod = [kind("", "v1", "Pod", "pods")],
            skip = nameless_pod;
        /// Events of both APIs, normalised and deduplicated; only those
        /// [`Event::is_relevant`] keeps (Warnings and node lifecycle).
        events("events"): Event = [
            kind("", "v1", "Event", "events"),
            kind("events.k8s.io", "v1", "Event", "events"),
        ],
            skip = normal_event, parse = relevant_event, dedup = dedup_events;
        /// Services.
        services("services"): Service = [kind("", "v1", "Service", "services")];
        /// EndpointSlices.
        endpoint_slices("endpointSlices"): EndpointSlice = [
            kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
        ];
        /// PVCs.
        persistent_volume_claims("persistentVolumeClaims"): PersistentVolumeClaim = [
            kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        ];
        /// PVs.
        persistent_volumes("persistentVolumes"): PersistentVolume = [
            kind("", "v1", "PersistentVolume", "persistentvolumes"),
        ];
        /// VolumeAttachments.
        volume_attachments("volumeAttachments"): VolumeAttachment = [
            kind("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments"),
        ];
        /// CSINodes.
        csi_nodes("csiNodes"): CsiNode = [
            kind("storage.k8s.io", "v1", "CSINode", "csinodes"),
        ];
        /// CSIDrivers.
        csi_drivers("csiDrivers"): CsiDriver = [
            kind("storage.k8s.io", "v1", "CSIDriver", "csidrivers"),
        ];
        /// ValidatingWebhookConfigurations.
        validating_webhook_configurations("validatingWebhookConfigurations"): WebhookConfiguration = [
            kind(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
            ),
        ];
        /// MutatingWebhookConfigurations.
        mutating_webhook_configurations("mutatingWebhookConfigurations"): WebhookConfiguration = [
            kind(
                "admissionregistration.k8s.io",
                "v1",
                "MutatingWebhookConfiguration",
                "mutatingwebhookconfigurations",
            ),
        ];
        /// APIServices.
        api_services("apiServices"): ApiService = [
            kind("apiregistration.k8s.io", "v1", "APIService", "apiservices"),
        ];
        /// Leases: the nodes' heartbeats.
        leases("leases"): Lease = [
            kind("coordination.k8s.io", "v1", "Lease", "leases").in_namespace("kube-node-lease"),
        ];
    }
    custom = [
        crd("kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations"),
        crd("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases"),
        crd("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories"),
        crd("source.toolkit.fluxcd.io", "v1", "HelmRepository", "helmrepositories"),
        crd("source.toolkit.fluxcd.io", "v1", "HelmChart", "helmcharts"),
        crd("source.toolkit.fluxcd.io", "v1", "OCIRepository", "ocirepositories"),
        crd("source.toolkit.fluxcd.io", "v1", "Bucket", "buckets"),
        crd("longhorn.io", "v1beta2", "Volume", "volumes"),
        crd("longhorn.io", "v1beta2", "Replica", "replicas"),
        crd("argoproj.io", "v1alpha1", "Application", "applications"),
    ];
}

/// The reason a Node without a name is skipped (counted for a note).
fn nameless_node(node: &Node) -> Option<&'static str> {
    node.metadata.name.is_empty().then_some(NAMELESS_NODE)
}

/// The reason a Pod without a name is skipped (counted for a note).
fn nameless_pod(pod: &Pod) -> Option<&'static str> {
    pod.metadata.name.is_empty().then_some(NAMELESS_POD)
}

/// The reason an event is skipped: one diagnosis does not read.
fn normal_event(event: &Event) -> Option<&'static str> {
    (!event.is_relevant()).then_some("Event (Normal)")
}

/// The two fields that decide whether an event is kept, borrowed.
#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(rename = "type", borrow, default)]
    type_: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

/// Parses an event only if diagnosis keeps it: a look at `type` and
/// `reason` (no allocation) spares building the many Normal events.
fn relevant_event(bytes: &[u8]) -> serde_json::Result<Option<Event>> {
    let head: EventHead<'_> = serde_json::from_slice(bytes)?;
    let normal = head.type_.as_deref() == Some("Normal");
    let reason = head.reason.as_deref().unwrap_or("");
    if normal && !KEPT_NORMAL_REASONS.contains(&reason) {
        return Ok(None);
    }
    let e: Event = serde_json::from_slice(bytes)?;
    Ok(e.is_relevant().then_some(e))
}

/// Events deduplicated by UID (by name without one), keeping the most
/// aggregated copy.
fn dedup_events(events: &mut Vec<Event>) {
    let needs_dedup = {
        let mut seen = HashSet::with_capacity(events.len());
        !events.iter().all(|e| seen.insert(event_key(e)))
    };
    if needs_dedup {
        // Higher count first so that dedup keeps the most aggregated copy.
        events.sort_by_key(|e| std::cmp::Reverse(e.count));
        crate::kinds::dedup_by(events, event_key);
    }
}

fn event_key(e: &Event) -> String {
    if e.metadata.uid.is_empty() {
        format!("{}/{}", e.metadata.namespace, e.metadata.name)
    } else {
        e.metadata.uid.clone()
    }
}

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

/// What a Node or Pod without a name (a `null` or missing `metadata`) is
/// counted as in [`Snapshot::ignored`]: skipped, with a note in the report.
pub const NAMELESS_NODE: &str = "Node without a name (null or missing metadata)";
/// See [`NAMELESS_NODE`].
pub const NAMELESS_POD: &str = "Pod without a name (null or missing metadata)";

/// Whether a custom object is one the snapshot keeps: Flux's and
/// Longhorn's of any kind (their objects are few), and the other custom
/// kinds of [`KINDS`] (Argo CD's Applications, not the Workflows that can
/// share their group by the thousand), of any version.
pub fn is_kept_custom(api_version: &str, kind: &str) -> bool {
    let group = group_of(api_version);
    group.ends_with(".toolkit.fluxcd.io")
        || group == "longhorn.io"
        || CUSTOM_KINDS
            .iter()
            .any(|k| k.group == group && k.kind == kind)
}

impl Meta {
    /// Provenance of two inputs read as one.
    fn merge(&mut self, other: Meta) {
        if self.collected_at.is_none() {
            self.collected_at = other.collected_at;
        }
        if !other.source.is_empty() {
            if !self.source.is_empty() {
                self.source.push_str(", ");
            }
            self.source.push_str(&other.source);
        }
    }
}

impl Snapshot {
    /// Serialises to the snapshot file format (JSON).
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(&File {
            api_version: API_VERSION,
            kind: KIND,
            snapshot: self,
        })
        .map_err(Error::Serialize)
    }

    /// Serialises to the snapshot file format, gzip-compressed.
    pub fn to_gzip(&self) -> Result<Vec<u8>, Error> {
        let json = self.to_json()?;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&json).map_err(Error::Compress)?;
        enc.finish().map_err(Error::Compress)
    }

    /// Whether no object at all was loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds a snapshot object by object, for a live collector that holds
/// typed objects (k8s-openapi types serialise with `apiVersion` and `kind`).
#[derive(Debug, Default)]
pub struct Builder {
    snapshot: Snapshot,
}

impl Builder {
    /// Starts an empty snapshot with its provenance.
    pub fn new(collected_at: Timestamp, source: impl Into<String>) -> Self {
        Builder {
            snapshot: Snapshot {
                metadata: Meta {
                    collected_at: Some(collected_at),
                    source: source.into(),
                },
                ..Snapshot::default()
            },
        }
    }

    /// Adds one object that serialises as a Kubernetes object (with
    /// `apiVersion` and `kind`). Unknown kinds are counted and dropped.
    pub fn add<T: Serialize>(&mut self, object: &T) -> Result<&mut Self, Error> {
        let value = serde_json::to_value(object).map_err(|e| Error::Add {
            kind: "?".into(),
            reason: e.to_string(),
        })?;
        self.add_value(value)
    }

    /// Adds one object given as JSON.
    pub fn add_value(&mut self, value: Value) -> Result<&mut Self, Error> {
        let api_version = value["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = value["kind"].as_str().unwrap_or("").to_string();
        if kind.is_empty() {
            return Err(Error::Add {
                kind: "?".into(),
                reason: "the object has no `kind`; serialise the typed object, not its parts"
                    .into(),
            });
        }
        self.snapshot
            .add_object(&api_version, &kind, value)
            .map_err(|e| Error::Add {
                kind: kind.clone(),
                reason: e.to_string(),
            })?;
        Ok(self)
    }

    /// Records a kind that could not be listed (e.g. RBAC forbids it).
    pub fn missing(&mut self, kind: impl Into<String>, reason: impl Into<String>) -> &mut Self {
        self.snapshot.missing.push(Missing {
            kind: kind.into(),
            reason: reason.into(),
        });
        self
    }

    /// The finished snapshot, deduplicated.
    pub fn build(mut self) -> Snapshot {
        self.snapshot.dedup();
        self.snapshot
    }
}

impl Snapshot {
    /// Adds one object given as JSON text.
    pub(crate) fn add_raw(
        &mut self,
        api_version: &str,
        kind: &str,
        json: &[u8],
    ) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(json);
        self.add_object(api_version, kind, &mut de)
    }

    /// Adds one object to the array the table of kinds gives it, to
    /// `custom` when it is a kept custom resource, else counts it ignored.
    fn add_object<'de, D>(&mut self, api_version: &str, kind: &str, d: D) -> Result<(), D::Error>
    where
        D: serde::de::Deserializer<'de>,
    {
        // The typed arrays first: their kinds are most of any input.
        let Some(d) = self.add_typed(api_version, kind, d)? else {
            return Ok(());
        };
        if is_kept_custom(api_version, kind) {
            let mut v = <Value as Deserialize>::deserialize(d)?;
            if let Some(obj) = v.as_object_mut() {
                // Items of a typed List carry neither: the analysis reads both.
                obj.entry("apiVersion")
                    .or_insert_with(|| Value::String(api_version.into()));
                obj.entry("kind")
                    .or_insert_with(|| Value::String(kind.into()));
            }
            self.custom.push(v);
        } else {
            serde::de::IgnoredAny::deserialize(d)?;
            let group = crate::kinds::group_of(api_version);
            let key = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            *self.ignored.entry(key).or_default() += 1;
        }
        Ok(())
    }

    /// Keeps the lines of a container's log that suggest a failure (the
    /// last [`MAX_LOG_LINES`]) as a [`LogExcerpt`].
    pub(crate) fn push_log(&mut self, namespace: &str, pod: &str, container: &str, text: &str) {
        let lines: Vec<String> = text
            .lines()
            .filter(|l| interesting(l))
            .map(|l| l.chars().take(500).collect())
            .collect();
        if lines.is_empty() {
            return;
        }
        let skip = lines.len().saturating_sub(MAX_LOG_LINES);
        self.log_excerpts.push(LogExcerpt {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
            lines: lines.into_iter().skip(skip).collect(),
        });
    }
}

/// Lines that suggest a failure worth keeping from a log.
fn interesting(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "error",
        "fail",
        "no such host",
        "i/o timeout",
        "refused",
        "fatal",
        "panic",
    ]
    .iter()
    .any(|w| l.contains(w))
}

const MAX_LOG_LINES: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// The arrays of format `rebootguard.io/v1alpha1`, in its order.
    const V1ALPHA1: [&str; 17] = [
        "missing",
        "nodes",
        "pods",
        "events",
        "services",
        "endpointSlices",
        "persistentVolumeClaims",
        "persistentVolumes",
        "volumeAttachments",
        "csiNodes",
        "csiDrivers",
        "validatingWebhookConfigurations",
        "mutatingWebhookConfigurations",
        "apiServices",
        "leases",
        "custom",
        "logExcerpts",
    ];

    #[test]
    fn the_file_writes_every_array_in_table_order_and_keeps_the_format() {
        let snap = Snapshot {
            missing: vec![Missing {
                kind: "Lease".into(),
                reason: "forbidden".into(),
            }],
            log_excerpts: vec![LogExcerpt::default()],
            ..Snapshot::default()
        };
        let json = String::from_utf8(snap.to_json().expect("json")).expect("utf-8");
        let at = |key: &str| {
            json.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} not written: {json}"))
        };
        let written: Vec<usize> = ARRAY_KEYS.iter().map(|k| at(k)).collect();
        assert!(written.is_sorted(), "{json}");
        // A new array may come anywhere; the format's arrays stay, in order.
        let mut keys = ARRAY_KEYS.iter();
        for key in V1ALPHA1 {
            assert!(keys.any(|k| *k == key), "{key} missing or out of order");
        }
    }

    #[test]
    fn kinds_list_every_array_then_the_custom_resources() {
        assert_eq!(KINDS.len(), ALL_KINDS.len());
        let first_custom = KINDS.len() - CUSTOM_KINDS.len();
        assert_eq!(&KINDS[first_custom..], CUSTOM_KINDS);
        assert!(CUSTOM_KINDS.iter().all(|k| k.optional));
        assert_eq!(KINDS[0].kind, "Node");
    }
}
