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

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{
    ApiService, CsiDriver, CsiNode, EndpointSlice, Event, Lease, Node, PersistentVolume,
    PersistentVolumeClaim, Pod, Service, VolumeAttachment, WebhookConfiguration,
};

/// The `apiVersion` this crate writes and reads.
pub const API_VERSION: &str = "rebootguard.io/v1alpha1";
/// The `kind` of a snapshot document.
pub const KIND: &str = "Snapshot";

/// A kind the live collector lists (with the dynamic API where it is a CRD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Version to list.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Resource (plural) name.
    pub plural: &'static str,
    /// Only this namespace is needed (node heartbeats), when set.
    pub namespace: Option<&'static str>,
    /// A CRD that may be absent: its absence is not "missing".
    pub optional: bool,
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        namespace: None,
        optional: false,
    }
}

const fn crd(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        namespace: None,
        optional: true,
    }
}

/// Everything diagnosis reads, in the order worth listing it.
pub const KINDS: [Kind; 22] = [
    kind("", "v1", "Node", "nodes"),
    kind("", "v1", "Pod", "pods"),
    kind("", "v1", "Event", "events"),
    kind("events.k8s.io", "v1", "Event", "events"),
    kind("", "v1", "Service", "services"),
    kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    kind("", "v1", "PersistentVolume", "persistentvolumes"),
    kind(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
    ),
    kind("storage.k8s.io", "v1", "CSINode", "csinodes"),
    kind("storage.k8s.io", "v1", "CSIDriver", "csidrivers"),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
    ),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
    ),
    kind("apiregistration.k8s.io", "v1", "APIService", "apiservices"),
    Kind {
        namespace: Some("kube-node-lease"),
        ..kind("coordination.k8s.io", "v1", "Lease", "leases")
    },
    crd(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
    ),
    crd(
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    ),
    crd(
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
    ),
    crd(
        "source.toolkit.fluxcd.io",
        "v1",
        "HelmRepository",
        "helmrepositories",
    ),
    crd("source.toolkit.fluxcd.io", "v1", "HelmChart", "helmcharts"),
    crd("longhorn.io", "v1beta2", "Volume", "volumes"),
    crd("longhorn.io", "v1beta2", "Replica", "replicas"),
];

impl Kind {
    /// `apiVersion` as objects of this kind carry it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

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

/// Everything diagnosis reads about a cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Snapshot {
    /// Provenance.
    pub metadata: Meta,
    /// Kinds that could not be collected: the report is degraded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<Missing>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Events of both APIs, normalised and deduplicated; only those
    /// [`Event::is_relevant`] keeps (Warnings and node lifecycle).
    pub events: Vec<Event>,
    /// Services.
    pub services: Vec<Service>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// PVCs.
    pub persistent_volume_claims: Vec<PersistentVolumeClaim>,
    /// PVs.
    pub persistent_volumes: Vec<PersistentVolume>,
    /// VolumeAttachments.
    pub volume_attachments: Vec<VolumeAttachment>,
    /// CSINodes.
    pub csi_nodes: Vec<CsiNode>,
    /// CSIDrivers.
    pub csi_drivers: Vec<CsiDriver>,
    /// ValidatingWebhookConfigurations.
    pub validating_webhook_configurations: Vec<WebhookConfiguration>,
    /// MutatingWebhookConfigurations.
    pub mutating_webhook_configurations: Vec<WebhookConfiguration>,
    /// APIServices.
    pub api_services: Vec<ApiService>,
    /// Leases.
    pub leases: Vec<Lease>,
    /// Flux and Longhorn objects, kept whole (they are few).
    pub custom: Vec<Value>,
    /// Error-looking log lines, when the input carried logs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_excerpts: Vec<LogExcerpt>,
    /// Kinds the loader saw but diagnosis does not read, with counts.
    #[serde(skip)]
    pub ignored: BTreeMap<String, usize>,
}

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

/// Whether a custom object is one the snapshot keeps (Flux, Argo CD, Longhorn).
pub fn is_kept_custom(api_version: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or("");
    group.ends_with(".toolkit.fluxcd.io") || group == "argoproj.io" || group == "longhorn.io"
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

    /// Adds everything from `other` (used when loading several files).
    pub fn merge(&mut self, other: Snapshot) {
        if self.metadata.collected_at.is_none() {
            self.metadata.collected_at = other.metadata.collected_at;
        }
        if !other.metadata.source.is_empty() {
            if !self.metadata.source.is_empty() {
                self.metadata.source.push_str(", ");
            }
            self.metadata.source.push_str(&other.metadata.source);
        }
        self.missing.extend(other.missing);
        self.nodes.extend(other.nodes);
        self.pods.extend(other.pods);
        self.events.extend(other.events);
        self.services.extend(other.services);
        self.endpoint_slices.extend(other.endpoint_slices);
        self.persistent_volume_claims
            .extend(other.persistent_volume_claims);
        self.persistent_volumes.extend(other.persistent_volumes);
        self.volume_attachments.extend(other.volume_attachments);
        self.csi_nodes.extend(other.csi_nodes);
        self.csi_drivers.extend(other.csi_drivers);
        self.validating_webhook_configurations
            .extend(other.validating_webhook_configurations);
        self.mutating_webhook_configurations
            .extend(other.mutating_webhook_configurations);
        self.api_services.extend(other.api_services);
        self.leases.extend(other.leases);
        self.custom.extend(other.custom);
        self.log_excerpts.extend(other.log_excerpts);
        for (k, n) in other.ignored {
            *self.ignored.entry(k).or_default() += n;
        }
    }

    /// Removes duplicates that appear when the same objects come from two
    /// sources: events listed through both event APIs, objects in two files.
    /// Keeps the first copy (for events, the one with the higher count).
    pub fn dedup(&mut self) {
        fn by_key<T>(v: &mut Vec<T>, key: impl Fn(&T) -> String) {
            let mut seen = HashSet::with_capacity(v.len());
            v.retain(|x| seen.insert(key(x)));
        }
        // Higher count first so that dedup keeps the most aggregated copy.
        let mut events = std::mem::take(&mut self.events);
        let needs_dedup = {
            let mut seen = HashSet::with_capacity(events.len());
            !events.iter().all(|e| seen.insert(event_key(e)))
        };
        if needs_dedup {
            events.sort_by_key(|e| std::cmp::Reverse(e.count));
            by_key(&mut events, event_key);
        }
        self.events = events;
        let meta_key = |m: &crate::model::Meta| format!("{}/{}/{}", m.namespace, m.name, m.uid);
        by_key(&mut self.nodes, |n| n.metadata.name.clone());
        by_key(&mut self.pods, |p| meta_key(&p.metadata));
        by_key(&mut self.services, |s| meta_key(&s.metadata));
        by_key(&mut self.endpoint_slices, |s| meta_key(&s.metadata));
        by_key(&mut self.persistent_volume_claims, |s| {
            meta_key(&s.metadata)
        });
        by_key(&mut self.persistent_volumes, |s| meta_key(&s.metadata));
        by_key(&mut self.volume_attachments, |s| meta_key(&s.metadata));
        by_key(&mut self.csi_nodes, |s| meta_key(&s.metadata));
        by_key(&mut self.csi_drivers, |s| meta_key(&s.metadata));
        by_key(&mut self.validating_webhook_configurations, |s| {
            meta_key(&s.metadata)
        });
        by_key(&mut self.mutating_webhook_configurations, |s| {
            meta_key(&s.metadata)
        });
        by_key(&mut self.api_services, |s| meta_key(&s.metadata));
        by_key(&mut self.leases, |s| meta_key(&s.metadata));
        by_key(&mut self.custom, |v| {
            format!(
                "{}/{}/{}/{}",
                v["kind"].as_str().unwrap_or(""),
                v["metadata"]["namespace"].as_str().unwrap_or(""),
                v["metadata"]["name"].as_str().unwrap_or(""),
                v["metadata"]["uid"].as_str().unwrap_or("")
            )
        });
        self.missing.sort();
        self.missing.dedup();
    }

    /// Total number of objects held.
    pub fn len(&self) -> usize {
        self.nodes.len()
            + self.pods.len()
            + self.events.len()
            + self.services.len()
            + self.endpoint_slices.len()
            + self.persistent_volume_claims.len()
            + self.persistent_volumes.len()
            + self.volume_attachments.len()
            + self.csi_nodes.len()
            + self.csi_drivers.len()
            + self.validating_webhook_configurations.len()
            + self.mutating_webhook_configurations.len()
            + self.api_services.len()
            + self.leases.len()
            + self.custom.len()
    }

    /// Whether no object at all was loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn event_key(e: &Event) -> String {
    if e.metadata.uid.is_empty() {
        format!("{}/{}", e.metadata.namespace, e.metadata.name)
    } else {
        e.metadata.uid.clone()
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
        crate::load::add_value(&mut self.snapshot, &api_version, &kind, value).map_err(|e| {
            Error::Add {
                kind: kind.clone(),
                reason: e.to_string(),
            }
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
