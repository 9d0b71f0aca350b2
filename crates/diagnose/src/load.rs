//! Loading a [`Snapshot`] from bytes, whatever the user has at hand.
//!
//! Accepted, detected from the content (never the file name):
//! - a snapshot file (`kind: Snapshot`), plain or gzip;
//! - `kubectl get ... -A -o json`: a `List`, several Lists or objects
//!   concatenated, or a single object;
//! - `kubectl get ... -o yaml`, multi-document YAML included;
//! - the files of a `kubectl cluster-info dump --output-directory` tree
//!   ([`dump`]), or its single-stream form on stdout.
//!
//! JSON is read in one pass: the top-level document is walked key by key,
//! snapshot arrays go straight into their types and List items are kept as
//! borrowed raw slices until their kind is known.

use std::fmt;
use std::io::Read;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::snapshot::{self, LogExcerpt, Missing, Snapshot};

/// Errors loading input. None is retryable: the input itself is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is empty or whitespace.
    #[error(
        "failed to load: the input is empty; pass a snapshot file, `kubectl get -A -o json` output or a cluster-info dump"
    )]
    Empty,
    /// The gzip stream is corrupt or truncated.
    #[error("failed to decompress gzip input (truncated or corrupt file?)")]
    Decompress(#[source] std::io::Error),
    /// A JSON document did not parse.
    #[error("failed to parse JSON document {document} (truncated file or not JSON?)")]
    ParseJson {
        /// 1-based document number in the stream.
        document: usize,
        /// serde_json's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A YAML document did not parse.
    #[error("failed to parse YAML document {document} (not Kubernetes YAML?)")]
    ParseYaml {
        /// 1-based document number.
        document: usize,
        /// serde_yaml's error, with its location.
        #[source]
        source: serde_yaml::Error,
    },
    /// A document is valid JSON/YAML but not a Kubernetes object or List.
    #[error(
        "failed to read document {document}: it is {what}, not a Kubernetes object, List or rebootguard Snapshot"
    )]
    NotKubernetes {
        /// 1-based document number.
        document: usize,
        /// What it is instead.
        what: String,
    },
    /// A snapshot written by a newer or unknown format version.
    #[error(
        "failed to read snapshot: apiVersion {found:?} is not supported (this build reads {supported}); re-create it with this rebootguard version or upgrade rebootguard"
    )]
    UnsupportedVersion {
        /// The version found.
        found: String,
        /// The one supported.
        supported: &'static str,
    },
    /// One object did not have the expected shape.
    #[error(
        "failed to read {kind} {name:?} (document {document}): a field has an unexpected type; is it from a compatible Kubernetes version?"
    )]
    Object {
        /// 1-based document number.
        document: usize,
        /// Its kind.
        kind: String,
        /// Its name, as far as known.
        name: String,
        /// The field-level error.
        #[source]
        source: serde_json::Error,
    },
    /// A file of a cluster-info dump failed to load.
    #[error("failed to load {path}")]
    File {
        /// The path, as given.
        path: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Loads a snapshot from any supported input (see the module docs).
/// The result is deduplicated.
pub fn load(bytes: &[u8]) -> Result<Snapshot, Error> {
    let mut snap = load_inner(bytes)?;
    snap.dedup();
    Ok(snap)
}

fn load_inner(bytes: &[u8]) -> Result<Snapshot, Error> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::with_capacity(bytes.len().saturating_mul(8));
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(Error::Decompress)?;
        return load_inner(&out);
    }
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(Error::Empty)?;
    let body = &bytes[start..];
    if body.starts_with(b"{") || body.starts_with(b"[") {
        if let Some(split) = split_dump_stream(body) {
            return split;
        }
        load_json_stream(body)
    } else {
        load_yaml(body)
    }
}

/// Loads the files of a `kubectl cluster-info dump --output-directory DIR`
/// tree, given as (relative path, content) pairs: every `*.json` is loaded,
/// `<ns>/<pod>/logs.txt` files give [`LogExcerpt`]s, anything else is skipped.
pub fn dump<'a, P: AsRef<str>>(
    files: impl IntoIterator<Item = (P, &'a [u8])>,
) -> Result<Snapshot, Error> {
    let mut snap = Snapshot::default();
    let mut sources = Vec::new();
    for (path, bytes) in files {
        let path = path.as_ref();
        if path.ends_with(".json") {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let part = load_inner(bytes).map_err(|e| Error::File {
                path: path.to_string(),
                source: Box::new(e),
            })?;
            snap.merge(part);
            sources.push(path.to_string());
        } else if path.ends_with("logs.txt") {
            let parts: Vec<&str> = path.trim_start_matches("./").split('/').collect();
            if parts.len() >= 3 {
                let n = parts.len();
                push_log(
                    &mut snap,
                    parts[n - 3],
                    parts[n - 2],
                    "",
                    &String::from_utf8_lossy(bytes),
                );
            }
        }
    }
    snap.metadata.source = format!("cluster-info dump ({} files)", sources.len());
    snap.dedup();
    Ok(snap)
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

fn push_log(snap: &mut Snapshot, namespace: &str, pod: &str, container: &str, text: &str) {
    let lines: Vec<String> = text
        .lines()
        .filter(|l| interesting(l))
        .map(|l| l.chars().take(500).collect())
        .collect();
    if lines.is_empty() {
        return;
    }
    let skip = lines.len().saturating_sub(MAX_LOG_LINES);
    snap.log_excerpts.push(LogExcerpt {
        namespace: namespace.into(),
        pod: pod.into(),
        container: container.into(),
        lines: lines.into_iter().skip(skip).collect(),
    });
}

/// `kubectl cluster-info dump` without `--output-directory` interleaves JSON
/// Lists with `==== START logs for container C of pod NS/P ====` sections.
fn split_dump_stream(body: &[u8]) -> Option<Result<Snapshot, Error>> {
    const START: &[u8] = b"==== START logs for container ";
    memfind(body, START)?;
    let text = String::from_utf8_lossy(body);
    let mut json = String::with_capacity(text.len());
    let mut logs: Vec<(String, String, String)> = Vec::new();
    let mut current: Option<(String, String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("==== START logs for container ") {
            // "C of pod NS/P ===="
            let rest = rest.trim_end_matches('=').trim();
            let (container, pod) = rest.split_once(" of pod ").unwrap_or((rest, ""));
            let (ns, name) = pod.split_once('/').unwrap_or(("", pod));
            current = Some((format!("{ns}/{name}"), container.to_string(), String::new()));
        } else if line.starts_with("==== END logs for container ") {
            if let Some(c) = current.take() {
                logs.push(c);
            }
        } else if let Some((_, _, buf)) = current.as_mut() {
            buf.push_str(line);
            buf.push('\n');
        } else {
            json.push_str(line);
            json.push('\n');
        }
    }
    let mut snap = match load_json_stream(json.as_bytes()) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    for (pod, container, text) in logs {
        let (ns, name) = pod.split_once('/').unwrap_or(("", &pod));
        push_log(&mut snap, ns, name, &container, &text);
    }
    Some(Ok(snap))
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn load_yaml(body: &[u8]) -> Result<Snapshot, Error> {
    let mut snap = Snapshot::default();
    for (i, doc) in serde_yaml::Deserializer::from_slice(body).enumerate() {
        let document = i + 1;
        let value =
            Value::deserialize(doc).map_err(|source| Error::ParseYaml { document, source })?;
        if value.is_null() {
            continue; // empty document between `---` separators
        }
        let json =
            serde_json::to_vec(&value).map_err(|source| Error::ParseJson { document, source })?;
        let part = load_json_stream(&json).map_err(|e| renumber(e, document))?;
        snap.merge(part);
    }
    if snap.is_empty() && snap.missing.is_empty() && snap.ignored.is_empty() {
        return Err(Error::Empty);
    }
    Ok(snap)
}

fn renumber(e: Error, document: usize) -> Error {
    match e {
        Error::NotKubernetes { what, .. } => Error::NotKubernetes { document, what },
        Error::Object {
            kind, name, source, ..
        } => Error::Object {
            document,
            kind,
            name,
            source,
        },
        other => other,
    }
}

fn load_json_stream(body: &[u8]) -> Result<Snapshot, Error> {
    let mut snap = Snapshot::default();
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<Doc<'_>>();
    let mut any = false;
    for (i, doc) in stream.enumerate() {
        let document = i + 1;
        let doc = doc.map_err(|source| Error::ParseJson { document, source })?;
        any = true;
        doc.into_snapshot(&mut snap, document)?;
    }
    if !any {
        return Err(Error::Empty);
    }
    Ok(snap)
}

/// One top-level JSON document, walked in a single pass.
#[derive(Default)]
struct Doc<'a> {
    not_object: Option<&'static str>,
    api_version: Option<String>,
    kind: Option<String>,
    items: Option<Vec<&'a RawValue>>,
    metadata: Option<&'a RawValue>,
    other: Vec<(String, &'a RawValue)>,
    snap: Snapshot,
    has_snapshot_fields: bool,
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

macro_rules! typed_field {
    ($map:ident, $doc:ident, $field:ident) => {{
        $doc.has_snapshot_fields = true;
        $doc.snap.$field = $map.next_value()?;
    }};
}

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object, List or rebootguard Snapshot")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
        let mut doc = Doc::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let is_snapshot = doc.kind.as_deref().is_none_or(|k| k == snapshot::KIND);
            match key.as_ref() {
                "apiVersion" => doc.api_version = Some(map.next_value()?),
                "kind" => doc.kind = Some(map.next_value()?),
                "items" => doc.items = Some(map.next_value()?),
                "metadata" => doc.metadata = Some(map.next_value()?),
                "nodes" if is_snapshot => typed_field!(map, doc, nodes),
                "pods" if is_snapshot => typed_field!(map, doc, pods),
                "events" if is_snapshot => typed_field!(map, doc, events),
                "services" if is_snapshot => typed_field!(map, doc, services),
                "endpointSlices" if is_snapshot => typed_field!(map, doc, endpoint_slices),
                "persistentVolumeClaims" if is_snapshot => {
                    typed_field!(map, doc, persistent_volume_claims)
                }
                "persistentVolumes" if is_snapshot => typed_field!(map, doc, persistent_volumes),
                "volumeAttachments" if is_snapshot => typed_field!(map, doc, volume_attachments),
                "csiNodes" if is_snapshot => typed_field!(map, doc, csi_nodes),
                "csiDrivers" if is_snapshot => typed_field!(map, doc, csi_drivers),
                "validatingWebhookConfigurations" if is_snapshot => {
                    typed_field!(map, doc, validating_webhook_configurations)
                }
                "mutatingWebhookConfigurations" if is_snapshot => {
                    typed_field!(map, doc, mutating_webhook_configurations)
                }
                "apiServices" if is_snapshot => typed_field!(map, doc, api_services),
                "leases" if is_snapshot => typed_field!(map, doc, leases),
                "custom" if is_snapshot => typed_field!(map, doc, custom),
                "missing" if is_snapshot => typed_field!(map, doc, missing),
                "logExcerpts" if is_snapshot => typed_field!(map, doc, log_excerpts),
                _ => {
                    let raw: &'de RawValue = map.next_value()?;
                    doc.other.push((key.into_owned(), raw));
                }
            }
        }
        Ok(doc)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Doc<'de>, A::Error> {
        // A bare JSON array of objects: treat like a List's items.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            items.push(item);
        }
        Ok(Doc {
            items: Some(items),
            kind: Some("List".into()),
            ..Doc::default()
        })
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Doc<'de>, E> {
        Ok(Doc {
            not_object: Some("a string"),
            ..Doc::default()
        })
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Doc<'de>, E> {
        Ok(Doc {
            not_object: Some("a boolean"),
            ..Doc::default()
        })
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Doc<'de>, E> {
        Ok(Doc {
            not_object: Some("a number"),
            ..Doc::default()
        })
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Doc<'de>, E> {
        Ok(Doc {
            not_object: Some("a number"),
            ..Doc::default()
        })
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Doc<'de>, E> {
        Ok(Doc {
            not_object: Some("a number"),
            ..Doc::default()
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Doc<'de>, E> {
        Ok(Doc {
            not_object: Some("null"),
            ..Doc::default()
        })
    }
}

/// `apiVersion`, `kind` and name of an object, read before its body.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Head {
    api_version: String,
    kind: String,
    metadata: HeadMeta,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HeadMeta {
    name: Option<String>,
    #[serde(rename = "generateName")]
    _generate: Option<IgnoredAny>,
}

impl Doc<'_> {
    fn into_snapshot(self, snap: &mut Snapshot, document: usize) -> Result<(), Error> {
        if let Some(what) = self.not_object {
            return Err(Error::NotKubernetes {
                document,
                what: what.into(),
            });
        }
        let kind = self.kind.clone().unwrap_or_default();
        let api_version = self.api_version.clone().unwrap_or_default();
        if kind == snapshot::KIND || (kind.is_empty() && self.has_snapshot_fields) {
            if api_version != snapshot::API_VERSION {
                return Err(Error::UnsupportedVersion {
                    found: api_version,
                    supported: snapshot::API_VERSION,
                });
            }
            let mut part = self.snap;
            if let Some(meta) = self.metadata {
                part.metadata =
                    serde_json::from_str(meta.get()).map_err(|source| Error::Object {
                        document,
                        kind: "Snapshot".into(),
                        name: "metadata".into(),
                        source,
                    })?;
            }
            snap.merge(part);
            return Ok(());
        }
        if let Some(items) = self.items {
            for raw in items {
                let head: Head =
                    serde_json::from_str(raw.get()).map_err(|source| Error::Object {
                        document,
                        kind: "List item".into(),
                        name: String::new(),
                        source,
                    })?;
                let item_kind = if head.kind.is_empty() {
                    // Typed lists (PodList from the API) omit the item kind.
                    kind.strip_suffix("List").unwrap_or("").to_string()
                } else {
                    head.kind
                };
                if item_kind.is_empty() {
                    return Err(Error::NotKubernetes {
                        document,
                        what: "a List item without `kind`".into(),
                    });
                }
                let item_api = if head.api_version.is_empty() {
                    api_version.clone()
                } else {
                    head.api_version
                };
                add_raw(snap, &item_api, &item_kind, raw.get()).map_err(|source| {
                    Error::Object {
                        document,
                        kind: item_kind.clone(),
                        name: head.metadata.name.clone().unwrap_or_default(),
                        source,
                    }
                })?;
            }
            return Ok(());
        }
        if kind.is_empty() {
            let keys: Vec<&str> = self.other.iter().map(|(k, _)| k.as_str()).take(5).collect();
            return Err(Error::NotKubernetes {
                document,
                what: if keys.is_empty() {
                    "an empty object".into()
                } else {
                    format!("an object without `kind` (keys: {})", keys.join(", "))
                },
            });
        }
        // A single object: put its top-level fields back together.
        let mut text = String::from("{");
        let mut first = true;
        let mut push = |k: &str, v: &str| {
            if !first {
                text.push(',');
            }
            first = false;
            text.push_str(&serde_json::Value::String(k.to_string()).to_string());
            text.push(':');
            text.push_str(v);
        };
        if let Some(m) = self.metadata {
            push("metadata", m.get());
        }
        for (k, v) in &self.other {
            push(k, v.get());
        }
        text.push('}');
        add_raw(snap, &api_version, &kind, &text).map_err(|source| Error::Object {
            document,
            kind: kind.clone(),
            name: String::new(),
            source,
        })
    }
}

fn add_raw(
    snap: &mut Snapshot,
    api_version: &str,
    kind: &str,
    json: &str,
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    add_with(snap, api_version, kind, &mut de)
}

/// Adds one object given as a [`Value`] (used by [`snapshot::Builder`]).
pub(crate) fn add_value(
    snap: &mut Snapshot,
    api_version: &str,
    kind: &str,
    value: Value,
) -> Result<(), serde_json::Error> {
    add_with(snap, api_version, kind, value)
}

fn add_with<'de, D>(
    snap: &mut Snapshot,
    api_version: &str,
    kind: &str,
    d: D,
) -> Result<(), D::Error>
where
    D: de::Deserializer<'de>,
{
    let group = api_version.split('/').next().unwrap_or("");
    match kind {
        "Node" => snap.nodes.push(Deserialize::deserialize(d)?),
        "Pod" => snap.pods.push(Deserialize::deserialize(d)?),
        "Event" => snap.events.push(Deserialize::deserialize(d)?),
        "Service" => snap.services.push(Deserialize::deserialize(d)?),
        "EndpointSlice" => snap.endpoint_slices.push(Deserialize::deserialize(d)?),
        "PersistentVolumeClaim" => snap
            .persistent_volume_claims
            .push(Deserialize::deserialize(d)?),
        "PersistentVolume" => snap.persistent_volumes.push(Deserialize::deserialize(d)?),
        "VolumeAttachment" => snap.volume_attachments.push(Deserialize::deserialize(d)?),
        "CSINode" => snap.csi_nodes.push(Deserialize::deserialize(d)?),
        "CSIDriver" => snap.csi_drivers.push(Deserialize::deserialize(d)?),
        "ValidatingWebhookConfiguration" => snap
            .validating_webhook_configurations
            .push(Deserialize::deserialize(d)?),
        "MutatingWebhookConfiguration" => snap
            .mutating_webhook_configurations
            .push(Deserialize::deserialize(d)?),
        "APIService" => snap.api_services.push(Deserialize::deserialize(d)?),
        "Lease" => snap.leases.push(Deserialize::deserialize(d)?),
        _ if snapshot::is_kept_custom(api_version) => {
            let mut v = Value::deserialize(d)?;
            if let Some(obj) = v.as_object_mut() {
                obj.entry("apiVersion")
                    .or_insert_with(|| Value::String(api_version.into()));
                obj.entry("kind")
                    .or_insert_with(|| Value::String(kind.into()));
            }
            snap.custom.push(v);
        }
        _ => {
            IgnoredAny::deserialize(d)?;
            let key = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            *snap.ignored.entry(key).or_default() += 1;
        }
    }
    Ok(())
}

/// Records kinds as missing (for a collector that got `403 Forbidden`).
pub fn missing(kind: &str, reason: &str) -> Missing {
    Missing {
        kind: kind.into(),
        reason: reason.into(),
    }
}
