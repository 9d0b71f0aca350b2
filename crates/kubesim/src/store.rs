//! The object store: every object as compact JSON keyed by resource,
//! namespace and name, a cluster-wide resourceVersion counter, a bounded
//! event history for watches, and list snapshots for `limit`/`continue`.
//!
//! Objects are kept serialized ([`Bytes`]) with their labels and selectable
//! fields indexed beside them: lists and watches copy bytes instead of
//! re-serializing, and 150,000 pods fit in a few hundred megabytes. Writes
//! parse, change and re-serialize one object. No I/O and no clock but the
//! wall-clock timestamps written into objects.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::convert;
use crate::defaults;
use crate::patch;
use crate::registry::{Registry, Resource, ResourceId};
use crate::selector::{self, Fields, Labels};
use crate::status::Status;
use crate::time;

/// A stored object with its index entries.
#[derive(Debug)]
pub struct Object {
    /// The resourceVersion written in `json`.
    pub rv: u64,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: Box<str>,
    /// Name.
    pub name: Box<str>,
    /// The object, serialized, `metadata.resourceVersion` included.
    pub json: Bytes,
    labels: Vec<(Box<str>, Box<str>)>,
    fields: Box<[Box<str>]>,
}

impl Object {
    /// The object parsed back into a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventKind {
    /// The watch event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, kept in the history and sent to watchers.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Which resource changed.
    pub resource: ResourceId,
    /// What happened.
    pub kind: EventKind,
    /// The object after the change (for `Deleted`, its last state).
    pub object: Arc<Object>,
    /// The object before the change, for `Modified`.
    pub previous: Option<Arc<Object>>,
}

/// Who is writing: the API applies the apiserver's rules on create and
/// update (status reset, server-set timestamps); seeding from a test keeps
/// what the test wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A request through the HTTP API.
    Api,
    /// A test or the lab writing directly through the handle.
    Seed,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource: the status is kept as stored.
    Main,
    /// The `status` subresource: only the status changes.
    Status,
}

/// Label and field selectors of a list or watch, checked against a resource.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The namespace, `None` for all namespaces (or cluster scope).
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: Labels,
    /// `fieldSelector`.
    pub fields: Fields,
}

impl Filter {
    /// Parses selectors and rejects field labels the resource does not have.
    pub fn new(
        resource: &Resource,
        namespace: Option<String>,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Self, Status> {
        let labels = Labels::parse(labels.unwrap_or_default())
            .map_err(|e| Status::bad_request(format!("unable to parse labelSelector: {e}")))?;
        let fields = Fields::parse(fields.unwrap_or_default())
            .map_err(|e| Status::bad_request(format!("unable to parse fieldSelector: {e}")))?;
        for t in &fields.terms {
            if resource.field(&t.label).is_none() {
                return Err(Status::bad_request(format!(
                    "field label not supported: {} (for {}: metadata.name, metadata.namespace{})",
                    t.label,
                    resource.qualified(),
                    resource
                        .fields
                        .iter()
                        .map(|f| format!(", {}", f.label))
                        .collect::<String>()
                )));
            }
        }
        Ok(Self {
            namespace,
            labels,
            fields,
        })
    }

    /// The same filter in the field labels of the stored resource behind a
    /// view (e.g. `regarding.name` becomes `involvedObject.name`).
    pub fn to_backing(&self, registry: &Registry, resource: ResourceId) -> Self {
        let view = registry.get(resource);
        let stored = registry.get(registry.backing(resource));
        let mut out = self.clone();
        for t in &mut out.fields.terms {
            if let Some(f) = view.fields.iter().find(|f| f.label == t.label)
                && let Some(g) = stored.fields.iter().find(|g| g.path == f.path)
            {
                t.label = g.label.clone();
            }
        }
        out
    }

    fn matches(&self, resource: &Resource, o: &Object) -> bool {
        if let Some(ns) = &self.namespace
            && *o.namespace != **ns
        {
            return false;
        }
        self.labels.matches_pairs(&o.labels)
            && self.fields.matches(|label| match label {
                "metadata.name" => Some(&*o.name),
                "metadata.namespace" => Some(&*o.namespace),
                _ => resource
                    .fields
                    .iter()
                    .position(|f| f.label == label)
                    .and_then(|i| o.fields.get(i))
                    .map(|v| &**v),
            })
    }

    /// The watch event a filtered watcher sees for `event`, if any: objects
    /// entering the selection are `Added`, leaving it `Deleted`.
    pub fn view(&self, resource: &Resource, event: &Event) -> Option<(EventKind, Arc<Object>)> {
        let now = self.matches(resource, &event.object);
        match event.kind {
            EventKind::Added | EventKind::Deleted => {
                now.then(|| (event.kind, event.object.clone()))
            }
            EventKind::Modified => {
                let before = event
                    .previous
                    .as_ref()
                    .is_some_and(|p| self.matches(resource, p));
                match (before, now) {
                    (true, true) => Some((EventKind::Modified, event.object.clone())),
                    (false, true) => Some((EventKind::Added, event.object.clone())),
                    (true, false) => Some((EventKind::Deleted, event.object.clone())),
                    (false, false) => None,
                }
            }
        }
    }
}

/// A stored object as `resource` serves it: itself, or converted for a
/// view (events.k8s.io/v1 over core/v1 events).
pub fn present(registry: &Registry, resource: ResourceId, o: &Arc<Object>) -> Arc<Object> {
    let Some(view) = registry.get(resource).view else {
        return o.clone();
    };
    let json = serde_json::to_vec(&convert::to_view(view, &o.value())).unwrap_or_default();
    Arc::new(Object {
        rv: o.rv,
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        json: Bytes::from(json),
        labels: o.labels.clone(),
        fields: o.fields.clone(),
    })
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The list's resourceVersion.
    pub rv: u64,
    /// The objects, in namespace/name order.
    pub items: Vec<Arc<Object>>,
    /// Token for the next page.
    pub continue_token: Option<String>,
    /// Objects left after this page.
    pub remaining: Option<u64>,
}

/// A started watch.
#[derive(Debug)]
pub struct Watch {
    /// Events to send first.
    pub backlog: Vec<(EventKind, Arc<Object>)>,
    /// Events committed after `rv`.
    pub receiver: broadcast::Receiver<Arc<Event>>,
    /// The resourceVersion the backlog reaches.
    pub rv: u64,
}

/// Parsed `DeleteOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (JSON, possibly empty) and query overrides.
    pub fn parse(body: &[u8], query_grace: Option<&str>) -> Result<Self, Status> {
        let mut out = Self::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| Status::bad_request(format!("failed to decode DeleteOptions: {e}")))?;
            out.grace_period = v.get("gracePeriodSeconds").and_then(Value::as_i64);
            out.uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned);
            out.resource_version = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if let Some(g) = query_grace {
            out.grace_period = Some(g.parse().map_err(|_| {
                Status::bad_request(format!("gracePeriodSeconds must be an integer, got {g:?}"))
            })?);
        }
        Ok(out)
    }
}

/// The outcome of a delete.
#[derive(Debug)]
pub enum Deletion {
    /// The object is gone; this is its last state.
    Gone(Arc<Object>),
    /// The object is terminating (grace period or finalizers).
    Pending {
        /// The object with `deletionTimestamp` set.
        object: Arc<Object>,
        /// Seconds until a kubelet would finish the deletion, for pods.
        grace: Option<u64>,
    },
}

struct Snapshot {
    items: Arc<[Arc<Object>]>,
    rv: u64,
    created: Instant,
}

/// How long a list snapshot serves `continue` tokens.
const SNAPSHOT_TTL: Duration = Duration::from_secs(300);
/// How many list snapshots are kept at once.
const SNAPSHOT_LIMIT: usize = 64;

type Key = (Box<str>, Box<str>);

/// The state of the simulated cluster.
pub struct Store {
    registry: Arc<Registry>,
    objects: Vec<BTreeMap<Key, Arc<Object>>>,
    rv: u64,
    current: Arc<AtomicU64>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    compacted: u64,
    events: broadcast::Sender<Arc<Event>>,
    snapshots: HashMap<u64, Snapshot>,
    ids: u64,
    seed: u64,
    pods: Option<ResourceId>,
    budgets: Option<ResourceId>,
    refreshing: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("rv", &self.rv)
            .field(
                "objects",
                &self.objects.iter().map(BTreeMap::len).sum::<usize>(),
            )
            .finish_non_exhaustive()
    }
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn meta(v: &Value, field: &str) -> Option<String> {
    v.get("metadata")?.get(field)?.as_str().map(str::to_owned)
}

fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.get("metadata").is_some_and(Value::is_object)
        && let Some(o) = v.as_object_mut()
    {
        o.insert("metadata".into(), json!({}));
    }
    match v.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn finalizers(v: &Value) -> Vec<String> {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Everything but metadata and status: what `generation` tracks.
fn spec_part(v: &Value) -> Map<String, Value> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "kind" | "apiVersion")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// k3s's default Service CIDR, where Services get their cluster IPs.
const SERVICE_CIDR: &str = "10.43.0.0/16";
const SERVICE_NETWORK: u32 = u32::from_be_bytes([10, 43, 0, 0]);
const SERVICE_MASK: u32 = 0xffff_0000;

/// Whether `ip` is a host address of [`SERVICE_CIDR`].
fn in_service_cidr(ip: std::net::Ipv4Addr) -> bool {
    let n = u32::from(ip);
    n & SERVICE_MASK == SERVICE_NETWORK
        && n != SERVICE_NETWORK
        && n != SERVICE_NETWORK | !SERVICE_MASK
}

/// The apiserver's name rule for `resource`: RBAC objects only need to be
/// a path segment (`system:discovery`), the others a DNS subdomain.
fn valid_name(resource: &Resource, name: &str) -> Result<(), &'static str> {
    if resource.group == "rbac.authorization.k8s.io" {
        return valid_path_segment(name);
    }
    if name.is_empty() || name.len() > 253 {
        return Err("a name must be 1 to 253 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err("a name must consist of lower case alphanumeric characters, '-' or '.'");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err("a name must start and end with an alphanumeric character");
    }
    Ok(())
}

fn valid_path_segment(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("a name must not be empty");
    }
    if name == "." || name == ".." {
        return Err("a name may not be '.' or '..'");
    }
    if name.contains(['/', '%']) {
        return Err("a name may not contain '/' or '%'");
    }
    Ok(())
}

impl Store {
    /// An empty store serving `registry`, keeping `history_limit` events
    /// for watches that resume from a resourceVersion.
    pub fn new(registry: Arc<Registry>, history_limit: usize) -> Self {
        let (events, _) = broadcast::channel(65_536);
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            objects: vec![BTreeMap::new(); registry.all().len()],
            pods: registry.find("", "v1", "pods"),
            budgets: registry.find("policy", "v1", "poddisruptionbudgets"),
            registry,
            rv: 1,
            current: Arc::new(AtomicU64::new(1)),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 1,
            events,
            snapshots: HashMap::new(),
            ids: 0,
            seed,
            refreshing: false,
        }
    }

    fn view_of(&self, resource: ResourceId) -> Option<(ResourceId, convert::View)> {
        let view = self.registry.get(resource).view?;
        Some((self.registry.backing(resource), view))
    }

    /// The registry this store serves.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// A shared counter that follows the current resourceVersion, readable
    /// without the store's lock.
    pub fn rv_counter(&self) -> Arc<AtomicU64> {
        self.current.clone()
    }

    /// Number of objects of `resource`.
    pub fn count(&self, resource: ResourceId) -> usize {
        self.objects[resource.0].len()
    }

    fn uid(&mut self) -> String {
        let mut s = self.seed ^ self.ids;
        self.ids += 1;
        let (a, b) = (splitmix(&mut s), splitmix(&mut s));
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    fn suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut s = self.seed ^ self.ids.rotate_left(17);
        self.ids += 1;
        let mut x = splitmix(&mut s);
        (0..5)
            .map(|_| {
                let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
                x /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    fn index(&self, resource: ResourceId, v: &Value, rv: u64) -> Result<Object, Status> {
        let r = self.registry.get(resource);
        let json = serde_json::to_vec(v)
            .map_err(|e| Status::internal(format!("failed to encode object: {e}")))?;
        Ok(Object {
            rv,
            namespace: meta(v, "namespace").unwrap_or_default().into(),
            name: meta(v, "name").unwrap_or_default().into(),
            json: Bytes::from(json),
            labels: selector::label_pairs(v),
            fields: r
                .fields
                .iter()
                .map(|f| selector::field_value(v, &f.path, &f.default).into_boxed_str())
                .collect(),
        })
    }

    /// Writes `value` (or removes the object when `None`) as the next
    /// resourceVersion, records the event and tells watchers.
    fn commit(
        &mut self,
        resource: ResourceId,
        key: Key,
        value: Option<Value>,
        previous: Option<Arc<Object>>,
    ) -> Result<Arc<Object>, Status> {
        let rv = self.rv + 1;
        let (kind, object) = match value {
            Some(mut v) => {
                meta_mut(&mut v).insert("resourceVersion".into(), rv.to_string().into());
                let o = Arc::new(self.index(resource, &v, rv)?);
                self.objects[resource.0].insert(key, o.clone());
                let kind = if previous.is_some() {
                    EventKind::Modified
                } else {
                    EventKind::Added
                };
                (kind, o)
            }
            None => {
                let Some(prev) = previous.as_ref() else {
                    return Err(Status::internal("delete of an object that does not exist"));
                };
                let mut v = prev.value();
                meta_mut(&mut v).insert("resourceVersion".into(), rv.to_string().into());
                let o = Arc::new(self.index(resource, &v, rv)?);
                self.objects[resource.0].remove(&key);
                (EventKind::Deleted, o)
            }
        };
        self.rv = rv;
        let event = Arc::new(Event {
            rv,
            resource,
            kind,
            object: object.clone(),
            previous: if kind == EventKind::Modified {
                previous
            } else {
                None
            },
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
        self.current.store(rv, Ordering::Release);
        // Stand in for the disruption controller: budgets follow their pods.
        if !self.refreshing && (Some(resource) == self.pods || Some(resource) == self.budgets) {
            self.refreshing = true;
            let refreshed = self.refresh_budgets(&object.namespace);
            self.refreshing = false;
            refreshed?;
        }
        Ok(object)
    }

    /// Recomputes the status of every PodDisruptionBudget in `namespace`
    /// from its pods, as the disruption controller does.
    fn refresh_budgets(&mut self, namespace: &str) -> Result<(), Status> {
        let (Some(pods), Some(budgets)) = (self.pods, self.budgets) else {
            return Ok(());
        };
        let current: Vec<Arc<Object>> = self.range(budgets, Some(namespace)).cloned().collect();
        for old in current {
            let mut pdb = old.value();
            let Some(sel) = pdb
                .pointer("/spec/selector")
                .and_then(|s| Labels::from_label_selector(s).ok())
            else {
                continue;
            };
            let (mut expected, mut healthy) = (0i64, 0i64);
            for o in self.range(pods, Some(namespace)) {
                if !sel.is_empty() && sel.matches_pairs(&o.labels) {
                    expected += 1;
                    if pod_healthy(&o.value()) {
                        healthy += 1;
                    }
                }
            }
            let desired = desired_healthy(&pdb, expected);
            let allowed = (healthy - desired).max(0);
            let generation = pdb
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let previous = pdb.get("status").cloned().unwrap_or_else(|| json!({}));
            let (cond_status, reason) = if allowed > 0 {
                ("True", "SufficientPods")
            } else {
                ("False", "InsufficientPods")
            };
            let since = previous
                .pointer("/conditions/0")
                .filter(|c| c["status"] == cond_status)
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| time::now().into());
            let mut status = previous.clone();
            status["currentHealthy"] = healthy.into();
            status["desiredHealthy"] = desired.into();
            status["expectedPods"] = expected.into();
            status["disruptionsAllowed"] = allowed.into();
            status["observedGeneration"] = generation.into();
            status["conditions"] = json!([{
                "type": "DisruptionAllowed", "status": cond_status, "reason": reason, "message": "",
                "observedGeneration": generation, "lastTransitionTime": since,
            }]);
            if status != previous {
                pdb["status"] = status;
                let key: Key = (old.namespace.clone(), old.name.clone());
                self.commit(budgets, key, Some(pdb), Some(old))?;
            }
        }
        Ok(())
    }

    fn key(&self, resource: ResourceId, namespace: &str, name: &str) -> Key {
        let ns = if self.registry.get(resource).namespaced {
            namespace
        } else {
            ""
        };
        (ns.into(), name.into())
    }

    /// One object.
    pub fn get(
        &self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Object>, Status> {
        if let Some((stored, _)) = self.view_of(resource) {
            return self
                .get(stored, namespace, name)
                .map(|o| present(&self.registry, resource, &o));
        }
        let key = self.key(resource, namespace, name);
        self.objects[resource.0]
            .get(&key)
            .cloned()
            .ok_or_else(|| Status::not_found(&self.registry.get(resource).qualified(), name))
    }

    fn range(
        &self,
        resource: ResourceId,
        namespace: Option<&str>,
    ) -> impl Iterator<Item = &Arc<Object>> {
        let map = &self.objects[resource.0];
        let bounds: (Bound<Key>, Bound<Key>) = match namespace {
            Some(ns) if self.registry.get(resource).namespaced => (
                Bound::Included((ns.into(), "".into())),
                Bound::Excluded((format!("{ns}\0").into(), "".into())),
            ),
            _ => (Bound::Unbounded, Bound::Unbounded),
        };
        map.range(bounds).map(|(_, o)| o)
    }

    /// A list page. With `limit`, the first page takes a snapshot that later
    /// pages read through the `continue` token, so pages are consistent.
    pub fn list(
        &mut self,
        resource: ResourceId,
        filter: &Filter,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Page, Status> {
        if let Some((stored, _)) = self.view_of(resource) {
            let f = filter.to_backing(&self.registry, resource);
            let mut page = self.list(stored, &f, limit, continue_token)?;
            page.items = page
                .items
                .iter()
                .map(|o| present(&self.registry, resource, o))
                .collect();
            return Ok(page);
        }
        let now = Instant::now();
        self.snapshots
            .retain(|_, s| now.duration_since(s.created) < SNAPSHOT_TTL);
        let r = self.registry.get(resource);
        let (snapshot_id, offset, items, rv) = match continue_token {
            Some(token) => {
                let (id, offset) = parse_token(token).ok_or_else(|| {
                    Status::bad_request(format!(
                        "invalid continue token {token:?}: pass back the token a list returned"
                    ))
                })?;
                let snap = self.snapshots.get(&id).ok_or_else(|| {
                    Status::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
                })?;
                (id, offset, snap.items.clone(), snap.rv)
            }
            None => {
                if let Some(name) = filter.fields.required("metadata.name") {
                    // Narrow to one key instead of scanning the resource.
                    let items: Vec<Arc<Object>> = if r.namespaced && filter.namespace.is_none() {
                        self.range(resource, None)
                            .filter(|o| &*o.name == name && filter.matches(r, o))
                            .cloned()
                            .collect()
                    } else {
                        let ns = if r.namespaced {
                            filter.namespace.as_deref().unwrap_or_default()
                        } else {
                            ""
                        };
                        self.objects[resource.0]
                            .get(&(ns.into(), name.into()))
                            .filter(|o| filter.matches(r, o))
                            .cloned()
                            .into_iter()
                            .collect()
                    };
                    (0, 0, items.into(), self.rv)
                } else {
                    let items: Arc<[Arc<Object>]> = self
                        .range(resource, filter.namespace.as_deref())
                        .filter(|o| filter.matches(r, o))
                        .cloned()
                        .collect();
                    (0, 0, items, self.rv)
                }
            }
        };
        let total = items.len();
        let end = limit
            .filter(|l| *l > 0)
            .map_or(total, |l| (offset + l).min(total));
        let page: Vec<Arc<Object>> = items.get(offset..end).unwrap_or_default().to_vec();
        let (continue_token, remaining) = if end < total {
            let id = if snapshot_id != 0 {
                snapshot_id
            } else {
                let id = splitmix(&mut (self.seed ^ self.ids)) | 1;
                self.ids += 1;
                if self.snapshots.len() >= SNAPSHOT_LIMIT
                    && let Some(oldest) = self
                        .snapshots
                        .iter()
                        .min_by_key(|(_, s)| s.created)
                        .map(|(k, _)| *k)
                {
                    self.snapshots.remove(&oldest);
                }
                self.snapshots.insert(
                    id,
                    Snapshot {
                        items,
                        rv,
                        created: now,
                    },
                );
                id
            };
            (Some(format!("{id:x}.{end:x}")), Some((total - end) as u64))
        } else {
            // The snapshot stays until it expires: a pager may retry a page.
            (None, None)
        };
        Ok(Page {
            rv,
            items: page,
            continue_token,
            remaining,
        })
    }

    fn check_namespace(&self, namespace: &str) -> Result<(), Status> {
        let Some(ns_res) = self.registry.find("", "v1", "namespaces") else {
            return Ok(());
        };
        match self.objects[ns_res.0].get(&("".into(), namespace.into())) {
            None => Err(Status::not_found("namespaces", namespace)),
            Some(ns) if ns.value().pointer("/metadata/deletionTimestamp").is_some() => {
                Err(Status::forbidden(format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Creates an object. `namespace` is the namespace of the request path
    /// (ignored for cluster-scoped resources).
    pub fn create(
        &mut self,
        resource: ResourceId,
        namespace: Option<&str>,
        mut value: Value,
        origin: Origin,
    ) -> Result<Arc<Object>, Status> {
        if let Some((stored, view)) = self.view_of(resource) {
            check_type(self.registry.get(resource), &mut value)?;
            let o = self.create(stored, namespace, convert::from_view(view, &value), origin)?;
            return Ok(present(&self.registry, resource, &o));
        }
        let r = self.registry.get(resource).clone();
        if !value.is_object() {
            return Err(Status::bad_request(format!(
                "the body must be a {} object",
                r.kind
            )));
        }
        check_type(&r, &mut value)?;
        if origin == Origin::Api {
            defaults::decode(&r, &value)?;
        }
        let m = meta_mut(&mut value);
        let name = match m
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(n) => n.to_owned(),
            None => match m
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                Some(prefix) => {
                    let prefix = prefix.to_owned();
                    let name = format!("{prefix}{}", self.suffix());
                    meta_mut(&mut value).insert("name".into(), name.clone().into());
                    name
                }
                None => {
                    return Err(Status::invalid(
                        &r.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        valid_name(&r, &name).map_err(|why| {
            Status::invalid(
                &r.kind,
                &name,
                format!("metadata.name: Invalid value: {name:?}: {why}"),
            )
        })?;
        let ns = if r.namespaced {
            let body_ns = meta(&value, "namespace").filter(|n| !n.is_empty());
            let ns = match (namespace, body_ns) {
                (Some(p), Some(b)) if p != b => {
                    return Err(Status::bad_request(format!(
                        "the namespace of the provided object ({b}) does not match the namespace sent on the request ({p})"
                    )));
                }
                (Some(p), _) => p.to_owned(),
                (None, Some(b)) => b,
                (None, None) => "default".to_owned(),
            };
            self.check_namespace(&ns)?;
            meta_mut(&mut value).insert("namespace".into(), ns.clone().into());
            ns
        } else {
            meta_mut(&mut value).remove("namespace");
            String::new()
        };
        let key: Key = (ns.as_str().into(), name.as_str().into());
        if self.objects[resource.0].contains_key(&key) {
            return Err(Status::already_exists(&r.qualified(), &name));
        }
        if origin == Origin::Api {
            self.admit(resource, &r, &mut value, None)?;
        }
        let uid = self.uid();
        let m = meta_mut(&mut value);
        // Fixtures may be seeded terminating (a stale pod on a dead node).
        if origin == Origin::Api {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        m.remove("resourceVersion");
        if origin == Origin::Api || !m.get("uid").is_some_and(Value::is_string) {
            m.insert("uid".into(), uid.into());
        }
        if origin == Origin::Api || !m.get("creationTimestamp").is_some_and(Value::is_string) {
            m.insert("creationTimestamp".into(), time::now().into());
        }
        if r.generation {
            m.insert("generation".into(), 1.into());
        }
        if origin == Origin::Api
            && r.status
            && !(r.group.is_empty() && r.kind == "Node")
            && let Some(o) = value.as_object_mut()
        {
            o.remove("status");
        }
        if r.group.is_empty() && r.plural == "pods" && value.pointer("/status/phase").is_none() {
            value["status"] = json!({"phase": "Pending"});
        }
        if r.group.is_empty() && r.plural == "namespaces" {
            if value.pointer("/spec/finalizers").is_none() {
                value["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            if value.pointer("/status/phase").is_none() {
                value["status"] = json!({"phase": "Active"});
            }
        }
        self.commit(resource, key, Some(value), None)
    }

    /// Defaults and validates an object written through the API (see
    /// [`defaults`]), allocating a new Service's cluster IP; an update
    /// keeps the old one.
    fn admit(
        &self,
        resource: ResourceId,
        r: &Resource,
        value: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), Status> {
        let defaults::Allocate::ClusterIp { requested } = defaults::defaults(r, value)? else {
            return Ok(());
        };
        let name = meta(value, "name").unwrap_or_default();
        let invalid = |why: String| Status::invalid(&r.kind, &name, why);
        let kept = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str);
        let ip = match (kept, requested) {
            (Some(kept), Some(asked)) if kept != asked => {
                return Err(invalid(format!(
                    "spec.clusterIPs[0]: Invalid value: []string{{\"{asked}\"}}: may not change once set"
                )));
            }
            (Some(kept), _) => kept.to_owned(),
            (None, Some(asked)) => {
                let parsed: std::net::Ipv4Addr = asked.parse().map_err(|_| {
                    invalid(format!(
                        "spec.clusterIPs[0]: Invalid value: \"{asked}\": must be a valid IP address"
                    ))
                })?;
                if !in_service_cidr(parsed) {
                    return Err(invalid(format!(
                        "spec.clusterIPs: Invalid value: []string{{\"{asked}\"}}: failed to allocate IP {asked}: provided IP is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
                    )));
                }
                if self.cluster_ips(resource).contains(&asked) {
                    return Err(invalid(format!(
                        "spec.clusterIPs: Invalid value: []string{{\"{asked}\"}}: failed to allocate IP {asked}: provided IP is already allocated"
                    )));
                }
                asked
            }
            (None, None) => {
                let used = self.cluster_ips(resource);
                // The upper half: the lower one is for addresses asked
                // for by name (kube-dns's 10.43.0.10), as upstream prefers.
                let upper = SERVICE_NETWORK | ((!SERVICE_MASK >> 1) + 1);
                (upper..SERVICE_NETWORK | !SERVICE_MASK)
                    .map(|n| std::net::Ipv4Addr::from(n).to_string())
                    .find(|ip| !used.contains(ip))
                    .ok_or_else(|| {
                        Status::internal(format!(
                            "failed to allocate a cluster IP: the range {SERVICE_CIDR} is full"
                        ))
                    })?
            }
        };
        if let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("clusterIP".into(), ip.clone().into());
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        Ok(())
    }

    /// Every Service's cluster IP.
    fn cluster_ips(&self, services: ResourceId) -> HashSet<String> {
        self.objects[services.0]
            .values()
            .filter_map(|o| {
                let v: Value = serde_json::from_slice(&o.json).ok()?;
                Some(v.pointer("/spec/clusterIP")?.as_str()?.to_owned())
            })
            .collect()
    }

    /// Replaces an object (PUT), honouring a resourceVersion precondition.
    pub fn update(
        &mut self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
        mut value: Value,
        scope: Scope,
        origin: Origin,
    ) -> Result<Arc<Object>, Status> {
        if let Some((stored, view)) = self.view_of(resource) {
            check_type(self.registry.get(resource), &mut value)?;
            let o = self.update(
                stored,
                namespace,
                name,
                convert::from_view(view, &value),
                scope,
                origin,
            )?;
            return Ok(present(&self.registry, resource, &o));
        }
        let r = self.registry.get(resource).clone();
        let old = self.get(resource, namespace, name)?;
        check_type(&r, &mut value)?;
        if let Some(body_name) = meta(&value, "name").filter(|n| n != name) {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = meta(&value, "resourceVersion").filter(|v| !v.is_empty())
            && rv != old.rv.to_string()
        {
            return Err(Status::conflict(
                &r.qualified(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        self.write(resource, old, value, scope, origin)
    }

    /// Applies a patch to an object.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
        kind: patch::Kind,
        body: &Value,
        scope: Scope,
        origin: Origin,
    ) -> Result<Arc<Object>, Status> {
        let r = self.registry.get(resource).clone();
        if r.view.is_some() {
            // Patch the view's form, then store it through update (which
            // checks the resourceVersion the patched object carries).
            let value = match self.get(resource, namespace, name) {
                Ok(o) => {
                    let mut v = o.value();
                    patch::apply(kind, &mut v, body).map_err(|e| match e {
                        patch::Error::Decode(_) => Status::bad_request(e.to_string()),
                        patch::Error::Apply { .. } => Status::invalid(&r.kind, name, e.to_string()),
                    })?;
                    v
                }
                Err(e) if kind == patch::Kind::Apply && e.code == 404 => {
                    let mut v = body.clone();
                    meta_mut(&mut v).insert("name".into(), name.into());
                    return self.create(resource, Some(namespace), v, origin);
                }
                Err(e) => return Err(e),
            };
            return self.update(resource, namespace, name, value, scope, origin);
        }
        if kind == patch::Kind::Strategic && r.custom {
            return Err(Status::unsupported_media_type(
                "application/strategic-merge-patch+json",
            ));
        }
        let old = match self.get(resource, namespace, name) {
            Ok(o) => o,
            Err(e) if kind == patch::Kind::Apply && e.code == 404 => {
                let mut v = body.clone();
                meta_mut(&mut v).insert("name".into(), name.into());
                return self.create(resource, Some(namespace), v, origin);
            }
            Err(e) => return Err(e),
        };
        let mut value = old.value();
        patch::apply(kind, &mut value, body).map_err(|e| match e {
            patch::Error::Decode(_) => Status::bad_request(e.to_string()),
            patch::Error::Apply { .. } => Status::invalid(&r.kind, name, e.to_string()),
        })?;
        if let Some(rv) = meta(&value, "resourceVersion")
            && rv != old.rv.to_string()
        {
            return Err(Status::conflict(
                &r.qualified(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        if meta(&value, "name").as_deref() != Some(name) {
            return Err(Status::bad_request("a patch may not change metadata.name"));
        }
        self.write(resource, old, value, scope, origin)
    }

    /// Shared tail of update and patch: keep what the scope protects, bump
    /// generation, refuse new finalizers on a terminating object, skip
    /// no-op writes, and remove the object once its finalizers are gone.
    fn write(
        &mut self,
        resource: ResourceId,
        old: Arc<Object>,
        mut value: Value,
        scope: Scope,
        origin: Origin,
    ) -> Result<Arc<Object>, Status> {
        let r = self.registry.get(resource).clone();
        let old_value = old.value();
        if origin == Origin::Api && scope == Scope::Main {
            defaults::decode(&r, &value)?;
            self.admit(resource, &r, &mut value, Some(&old_value))?;
        }
        if origin == Origin::Api && r.status {
            match scope {
                Scope::Main => match old_value.get("status") {
                    Some(s) => value["status"] = s.clone(),
                    None => {
                        if let Some(o) = value.as_object_mut() {
                            o.remove("status");
                        }
                    }
                },
                Scope::Status => {
                    let status = value.get("status").cloned();
                    let mut v = old_value.clone();
                    if let Some(o) = v.as_object_mut() {
                        match status {
                            Some(s) => o.insert("status".into(), s),
                            None => o.remove("status"),
                        };
                    }
                    value = v;
                }
            }
        }
        // Server-owned metadata survives every write.
        let old_meta = old_value
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| json!({}));
        {
            let m = meta_mut(&mut value);
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(field) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
            m.insert("name".into(), (*old.name).into());
            if r.namespaced {
                m.insert("namespace".into(), (*old.namespace).into());
            } else {
                m.remove("namespace");
            }
            m.insert("resourceVersion".into(), old.rv.to_string().into());
        }
        if r.generation && spec_part(&value) != spec_part(&old_value) {
            let g = old_value
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut value).insert("generation".into(), g.into());
        }
        let terminating = old_value.pointer("/metadata/deletionTimestamp").is_some();
        let before = finalizers(&old_value);
        let after = finalizers(&value);
        if terminating && after.iter().any(|f| !before.contains(f)) {
            return Err(Status::forbidden(format!(
                "{} \"{}\" is being deleted: no new finalizers can be added",
                r.qualified(),
                old.name
            )));
        }
        if value == old_value {
            return Ok(old);
        }
        let key: Key = (old.namespace.clone(), old.name.clone());
        let done_grace = value
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_none_or(|g| g == 0);
        let written = self.commit(resource, key.clone(), Some(value), Some(old))?;
        if terminating && after.is_empty() && done_grace {
            return self.commit(resource, key, None, Some(written));
        }
        Ok(written)
    }

    /// Deletes an object: pods bound to a node terminate gracefully, objects
    /// with finalizers wait for them, everything else goes at once.
    pub fn delete(
        &mut self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deletion, Status> {
        if let Some((stored, _)) = self.view_of(resource) {
            return Ok(match self.delete(stored, namespace, name, options)? {
                Deletion::Gone(o) => Deletion::Gone(present(&self.registry, resource, &o)),
                Deletion::Pending { object, grace } => Deletion::Pending {
                    object: present(&self.registry, resource, &object),
                    grace,
                },
            });
        }
        let r = self.registry.get(resource).clone();
        let old = self.get(resource, namespace, name)?;
        let mut value = old.value();
        if let Some(uid) = &options.uid
            && meta(&value, "uid").as_deref() != Some(uid.as_str())
        {
            return Err(Status::conflict(
                &r.qualified(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta(&value, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &options.resource_version
            && *rv != old.rv.to_string()
        {
            return Err(Status::conflict(
                &r.qualified(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    old.rv
                ),
            ));
        }
        if r.group.is_empty() && r.plural == "namespaces" {
            self.delete_namespace_contents(name)?;
        }
        let is_pod = r.group.is_empty() && r.plural == "pods";
        let grace = if is_pod {
            let bound = value
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let finished = matches!(
                value.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            );
            let spec_grace = value
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            if !bound || finished {
                0
            } else {
                options.grace_period.unwrap_or(spec_grace).max(0)
            }
        } else {
            0
        };
        let now = time::now_unix();
        let existing_deadline = value
            .pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
            .and_then(time::parse);
        let has_finalizers = !finalizers(&value).is_empty();
        if grace == 0 && !has_finalizers {
            let gone = self.commit(
                resource,
                (old.namespace.clone(), old.name.clone()),
                None,
                Some(old),
            )?;
            return Ok(Deletion::Gone(gone));
        }
        // Terminating: set or shorten the deadline; never lengthen it.
        let deadline = now + grace;
        let m = meta_mut(&mut value);
        if existing_deadline.is_none_or(|d| deadline < d) {
            m.insert("deletionTimestamp".into(), time::format(deadline).into());
            m.insert("deletionGracePeriodSeconds".into(), grace.into());
        } else if grace == 0 {
            m.insert("deletionGracePeriodSeconds".into(), 0.into());
        }
        let key: Key = (old.namespace.clone(), old.name.clone());
        let unchanged = value == old.value();
        let object = if unchanged {
            old
        } else {
            self.commit(resource, key, Some(value), Some(old))?
        };
        Ok(Deletion::Pending {
            object,
            grace: (is_pod && grace > 0).then_some(grace as u64),
        })
    }

    /// Finishes a pod's graceful deletion as its kubelet would, if the pod
    /// with `uid` is still terminating.
    pub fn finish_termination(
        &mut self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
        uid: &str,
    ) {
        let Ok(o) = self.get(resource, namespace, name) else {
            return;
        };
        let v = o.value();
        if meta(&v, "uid").as_deref() != Some(uid)
            || v.pointer("/metadata/deletionTimestamp").is_none()
        {
            return;
        }
        let options = DeleteOptions {
            grace_period: Some(0),
            ..DeleteOptions::default()
        };
        // The pod may have gained finalizers; then it stays terminating.
        let _ = self.delete(resource, namespace, name, &options);
    }

    fn delete_namespace_contents(&mut self, namespace: &str) -> Result<(), Status> {
        let ids: Vec<ResourceId> = (0..self.registry.all().len())
            .map(ResourceId)
            .filter(|id| self.registry.get(*id).namespaced)
            .collect();
        for id in ids {
            let keys: Vec<Key> = self
                .range(id, Some(namespace))
                .map(|o| (o.namespace.clone(), o.name.clone()))
                .collect();
            for key in keys {
                if let Some(old) = self.objects[id.0].get(&key).cloned() {
                    self.commit(id, key, None, Some(old))?;
                }
            }
        }
        Ok(())
    }

    /// Starts a watch: the events to send first (all current objects when
    /// `since` is `None`, else history after `since`) and a receiver for
    /// what follows. 410 when `since` is older than the kept history.
    pub fn watch(
        &self,
        resource: ResourceId,
        filter: &Filter,
        since: Option<u64>,
    ) -> Result<Watch, Status> {
        if let Some((stored, _)) = self.view_of(resource) {
            let f = filter.to_backing(&self.registry, resource);
            let mut w = self.watch(stored, &f, since)?;
            for (_, o) in &mut w.backlog {
                *o = present(&self.registry, resource, o);
            }
            return Ok(w);
        }
        let r = self.registry.get(resource);
        let rx = self.events.subscribe();
        let backlog = match since {
            None => self
                .range(resource, filter.namespace.as_deref())
                .filter(|o| filter.matches(r, o))
                .map(|o| (EventKind::Added, o.clone()))
                .collect(),
            Some(rv) => {
                if rv < self.compacted {
                    return Err(Status::expired(format!(
                        "too old resource version: {rv} ({})",
                        self.compacted
                    )));
                }
                self.history
                    .iter()
                    .filter(|e| e.rv > rv && e.resource == resource)
                    .filter_map(|e| filter.view(r, e))
                    .collect()
            }
        };
        Ok(Watch {
            backlog,
            receiver: rx,
            rv: self.rv,
        })
    }

    /// Evicts a pod through its PodDisruptionBudget: 429 when the budget
    /// allows no disruption, else a delete with the eviction's options.
    pub fn evict(
        &mut self,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deletion, Status> {
        let pods = self
            .registry
            .find("", "v1", "pods")
            .ok_or_else(|| Status::internal("no pods resource"))?;
        let pod = self.get(pods, namespace, name)?.value();
        let terminating = pod.pointer("/metadata/deletionTimestamp").is_some();
        let finished = matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if !terminating
            && !finished
            && let Some(pdbs) = self.registry.find("policy", "v1", "poddisruptionbudgets")
        {
            let labels = selector::label_pairs(&pod);
            let mut matching = Vec::new();
            for o in self.range(pdbs, Some(namespace)) {
                let v = o.value();
                let Some(sel) = v.pointer("/spec/selector") else {
                    continue;
                };
                let Ok(sel) = Labels::from_label_selector(sel) else {
                    continue;
                };
                if !sel.is_empty() && sel.matches_pairs(&labels) {
                    matching.push((v, sel));
                }
            }
            if matching.len() > 1 {
                return Err(Status::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some((pdb, sel)) = matching.pop() {
                let selected: Vec<Value> = self
                    .range(pods, Some(namespace))
                    .filter(|o| sel.matches_pairs(&o.labels))
                    .map(|o| o.value())
                    .collect();
                let expected = selected.len() as i64;
                let healthy = selected.iter().filter(|p| pod_healthy(p)).count() as i64;
                let desired = desired_healthy(&pdb, expected);
                let allowed = healthy - desired;
                let pod_is_healthy = pod_healthy(&pod);
                let always = pdb
                    .pointer("/spec/unhealthyPodEvictionPolicy")
                    .and_then(Value::as_str)
                    == Some("AlwaysAllow");
                let blocked = if pod_is_healthy {
                    allowed <= 0
                } else {
                    !always && healthy < desired
                };
                if blocked {
                    let pdb_name = meta(&pdb, "name").unwrap_or_default();
                    return Err(Status::too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        None,
                        Some(json!({"causes": [{
                            "reason": "DisruptionBudget",
                            "message": format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"),
                        }]})),
                    ));
                }
            }
        }
        self.delete(pods, namespace, name, options)
    }

    /// Binds a pod to a node (`pods/binding`).
    pub fn bind(
        &mut self,
        namespace: &str,
        name: &str,
        binding: &Value,
    ) -> Result<Arc<Object>, Status> {
        let pods = self
            .registry
            .find("", "v1", "pods")
            .ok_or_else(|| Status::internal("no pods resource"))?;
        let old = self.get(pods, namespace, name)?;
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Status::invalid("Binding", name, "target.name: Required value"))?;
        let mut v = old.value();
        if let Some(current) = v
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(Status::conflict(
                "pods/binding",
                name,
                &format!("pod {name} is already assigned to node \"{current}\""),
            ));
        }
        v["spec"]["nodeName"] = node.into();
        let cond =
            json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": time::now()});
        patch::apply(
            patch::Kind::Strategic,
            &mut v,
            &json!({"status": {"conditions": [cond]}}),
        )
        .map_err(|e| Status::internal(e.to_string()))?;
        self.write(pods, old, v, Scope::Main, Origin::Seed)
    }
}

fn parse_token(token: &str) -> Option<(u64, usize)> {
    let (id, offset) = token.split_once('.')?;
    Some((
        u64::from_str_radix(id, 16).ok()?,
        usize::from_str_radix(offset, 16).ok()?,
    ))
}

/// Fills `apiVersion`/`kind` when absent and rejects a mismatch.
fn check_type(r: &Resource, value: &mut Value) -> Result<(), Status> {
    let api_version = r.api_version();
    let o = value
        .as_object_mut()
        .ok_or_else(|| Status::bad_request(format!("the body must be a {} object", r.kind)))?;
    match o.get("kind").and_then(Value::as_str) {
        Some(k) if k != r.kind => {
            return Err(Status::bad_request(format!(
                "the kind of the object ({k}) does not match the resource ({}, kind {})",
                r.qualified(),
                r.kind
            )));
        }
        _ => {
            o.insert("kind".into(), r.kind.clone().into());
        }
    }
    match o.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version => Err(Status::bad_request(format!(
            "the apiVersion of the object ({v}) does not match the resource ({api_version})"
        ))),
        _ => {
            o.insert("apiVersion".into(), api_version.into());
            Ok(())
        }
    }
}

fn pod_healthy(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
}

/// Healthy pods a PDB requires out of `expected` matching pods.
fn desired_healthy(pdb: &Value, expected: i64) -> i64 {
    let scaled = |v: &Value, round_up: bool| -> i64 {
        match v {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::String(s) => {
                let pct = s.trim_end_matches('%').parse::<i64>().unwrap_or(0);
                let x = expected * pct;
                if round_up { (x + 99) / 100 } else { x / 100 }
            }
            _ => 0,
        }
    };
    if let Some(min) = pdb.pointer("/spec/minAvailable") {
        scaled(min, true)
    } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - scaled(max, true)).max(0)
    } else {
        expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::CustomResource;

    fn store() -> (Store, ResourceId, ResourceId) {
        let reg = Arc::new(Registry::new(&CustomResource::defaults()));
        let mut s = Store::new(reg.clone(), 100);
        let ns = reg.find("", "v1", "namespaces").unwrap();
        s.create(
            ns,
            None,
            json!({"metadata": {"name": "default"}}),
            Origin::Seed,
        )
        .unwrap();
        (
            s,
            reg.find("", "v1", "pods").unwrap(),
            reg.find("", "v1", "nodes").unwrap(),
        )
    }

    fn pod(name: &str, node: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5},
               "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn rv_is_monotonic_and_conflicts_are_409() {
        let (mut s, pods, nodes) = store();
        let a = s
            .create(
                nodes,
                None,
                json!({"metadata": {"name": "n1"}}),
                Origin::Api,
            )
            .unwrap();
        let b = s
            .create(pods, Some("default"), pod("p", "n1", true), Origin::Seed)
            .unwrap();
        assert!(b.rv > a.rv);
        let mut stale = a.value();
        stale["spec"] = json!({"unschedulable": true});
        s.update(nodes, "", "n1", stale.clone(), Scope::Main, Origin::Api)
            .unwrap();
        let err = s
            .update(nodes, "", "n1", stale, Scope::Main, Origin::Api)
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(err.reason, "Conflict");
        let err = s
            .create(
                nodes,
                None,
                json!({"metadata": {"name": "n1"}}),
                Origin::Api,
            )
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(err.reason, "AlreadyExists");
    }

    #[test]
    fn create_needs_an_existing_namespace_and_a_valid_name() {
        let (mut s, pods, _) = store();
        assert_eq!(
            s.create(pods, Some("nope"), pod("p", "n", true), Origin::Api)
                .unwrap_err()
                .code,
            404
        );
        assert_eq!(
            s.create(
                pods,
                Some("default"),
                pod("Bad_Name", "n", true),
                Origin::Api
            )
            .unwrap_err()
            .code,
            422
        );
        let gen_name = json!({"metadata": {"generateName": "web-"}});
        let o = s
            .create(pods, Some("default"), gen_name, Origin::Api)
            .unwrap();
        assert!(
            o.name.starts_with("web-") && o.name.len() == 9,
            "{}",
            o.name
        );
        assert_eq!(o.value()["status"]["phase"], "Pending");
    }

    #[test]
    fn rbac_names_are_path_segments() {
        let (mut s, _, _) = store();
        let roles = s
            .registry
            .find("rbac.authorization.k8s.io", "v1", "clusterroles")
            .unwrap();
        let named = |n: &str| json!({"metadata": {"name": n}});
        s.create(roles, None, named("system:discovery"), Origin::Api)
            .expect("colons are fine in RBAC names");
        for bad in ["a/b", "..", "50%"] {
            let err = s.create(roles, None, named(bad), Origin::Api).unwrap_err();
            assert_eq!(err.code, 422, "{bad}");
        }
    }

    #[test]
    fn no_op_writes_keep_the_resource_version() {
        let (mut s, _, nodes) = store();
        let a = s
            .create(
                nodes,
                None,
                json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}}),
                Origin::Api,
            )
            .unwrap();
        let p = json!({"spec": {"unschedulable": true}});
        let b = s
            .patch(
                nodes,
                "",
                "n1",
                patch::Kind::Strategic,
                &p,
                Scope::Main,
                Origin::Api,
            )
            .unwrap();
        assert_eq!(a.rv, b.rv);
    }

    #[test]
    fn main_and_status_scopes_protect_each_other() {
        let (mut s, _, nodes) = store();
        s.create(
            nodes,
            None,
            json!({"metadata": {"name": "n1"}, "status": {"phase": "Running"}}),
            Origin::Seed,
        )
        .unwrap();
        let p = json!({"spec": {"podCIDR": "10.42.0.0/24"}, "status": {"phase": "Gone"}});
        let o = s
            .patch(
                nodes,
                "",
                "n1",
                patch::Kind::Merge,
                &p,
                Scope::Main,
                Origin::Api,
            )
            .unwrap()
            .value();
        assert_eq!(o["status"]["phase"], "Running");
        assert_eq!(o["spec"]["podCIDR"], "10.42.0.0/24");
        let p = json!({"spec": {"podCIDR": "x"}, "status": {"phase": "Gone"}});
        let o = s
            .patch(
                nodes,
                "",
                "n1",
                patch::Kind::Merge,
                &p,
                Scope::Status,
                Origin::Api,
            )
            .unwrap()
            .value();
        assert_eq!(o["status"]["phase"], "Gone");
        assert_eq!(o["spec"]["podCIDR"], "10.42.0.0/24");
    }

    #[test]
    fn generation_follows_spec() {
        let reg = Arc::new(Registry::new(&[]));
        let mut s = Store::new(reg.clone(), 10);
        let ns = reg.find("", "v1", "namespaces").unwrap();
        s.create(
            ns,
            None,
            json!({"metadata": {"name": "default"}}),
            Origin::Seed,
        )
        .unwrap();
        let ds = reg.find("apps", "v1", "daemonsets").unwrap();
        s.create(
            ds,
            Some("default"),
            json!({"metadata": {"name": "d"}, "spec": {"x": 1}}),
            Origin::Api,
        )
        .unwrap();
        let o = s
            .patch(
                ds,
                "default",
                "d",
                patch::Kind::Merge,
                &json!({"metadata": {"labels": {"a": "b"}}}),
                Scope::Main,
                Origin::Api,
            )
            .unwrap();
        assert_eq!(o.value()["metadata"]["generation"], 1);
        let o = s
            .patch(
                ds,
                "default",
                "d",
                patch::Kind::Merge,
                &json!({"spec": {"x": 2}}),
                Scope::Main,
                Origin::Api,
            )
            .unwrap();
        assert_eq!(o.value()["metadata"]["generation"], 2);
    }

    #[test]
    fn graceful_delete_and_finalizers() {
        let (mut s, pods, nodes) = store();
        s.create(pods, Some("default"), pod("p", "n1", true), Origin::Seed)
            .unwrap();
        let Deletion::Pending { object, grace } = s
            .delete(pods, "default", "p", &DeleteOptions::default())
            .unwrap()
        else {
            panic!("a bound pod terminates gracefully");
        };
        assert_eq!(grace, Some(5));
        assert!(
            object
                .value()
                .pointer("/metadata/deletionTimestamp")
                .is_some()
        );
        let uid = meta(&object.value(), "uid").unwrap();
        s.finish_termination(pods, "default", "p", &uid);
        assert_eq!(s.get(pods, "default", "p").unwrap_err().code, 404);

        s.create(
            nodes,
            None,
            json!({"metadata": {"name": "n1", "finalizers": ["x/y"]}}),
            Origin::Api,
        )
        .unwrap();
        assert!(matches!(
            s.delete(nodes, "", "n1", &DeleteOptions::default())
                .unwrap(),
            Deletion::Pending { grace: None, .. }
        ));
        let p = json!({"metadata": {"finalizers": ["x/y", "new"]}});
        assert_eq!(
            s.patch(
                nodes,
                "",
                "n1",
                patch::Kind::Merge,
                &p,
                Scope::Main,
                Origin::Api
            )
            .unwrap_err()
            .code,
            403
        );
        let p = json!({"metadata": {"finalizers": null}});
        s.patch(
            nodes,
            "",
            "n1",
            patch::Kind::Merge,
            &p,
            Scope::Main,
            Origin::Api,
        )
        .unwrap();
        assert_eq!(s.get(nodes, "", "n1").unwrap_err().code, 404);
    }

    #[test]
    fn pagination_is_a_consistent_snapshot() {
        let (mut s, pods, _) = store();
        for i in 0..10 {
            s.create(
                pods,
                Some("default"),
                pod(&format!("p{i}"), "n", true),
                Origin::Seed,
            )
            .unwrap();
        }
        let f = Filter::default();
        let first = s.list(pods, &f, Some(4), None).unwrap();
        assert_eq!(first.items.len(), 4);
        assert_eq!(first.remaining, Some(6));
        s.delete(
            pods,
            "default",
            "p9",
            &DeleteOptions {
                grace_period: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        let second = s
            .list(pods, &f, Some(4), first.continue_token.as_deref())
            .unwrap();
        let third = s
            .list(pods, &f, Some(4), second.continue_token.as_deref())
            .unwrap();
        assert_eq!(
            third.items.len(),
            2,
            "the deleted pod is still in the snapshot"
        );
        assert_eq!(third.continue_token, None);
        assert_eq!(third.rv, first.rv);
        assert_eq!(
            s.list(pods, &f, Some(4), Some("abc.1")).unwrap_err().code,
            410
        );
        assert_eq!(
            s.list(pods, &f, Some(4), Some("not a token"))
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn watch_resumes_from_history_and_expires() {
        let (mut s, pods, _) = store();
        let start = s.rv();
        for i in 0..5 {
            s.create(
                pods,
                Some("default"),
                pod(&format!("p{i}"), "n", true),
                Origin::Seed,
            )
            .unwrap();
        }
        let backlog = s
            .watch(pods, &Filter::default(), Some(start))
            .unwrap()
            .backlog;
        assert_eq!(backlog.len(), 5);
        let f = Filter::new(s.registry().get(pods), None, None, Some("metadata.name=p3")).unwrap();
        let backlog = s.watch(pods, &f, Some(start)).unwrap().backlog;
        assert_eq!(backlog.len(), 1);
        let mut small = Store::new(s.registry().clone(), 2);
        let ns = s.registry().find("", "v1", "namespaces").unwrap();
        for i in 0..5 {
            small
                .create(
                    ns,
                    None,
                    json!({"metadata": {"name": format!("n{i}")}}),
                    Origin::Seed,
                )
                .unwrap();
        }
        assert_eq!(
            small
                .watch(ns, &Filter::default(), Some(2))
                .unwrap_err()
                .code,
            410
        );
    }

    #[test]
    fn eviction_honours_the_budget() {
        let reg = Arc::new(Registry::new(&[]));
        let (mut s, pods, _) = store();
        s.create(pods, Some("default"), pod("a", "n1", true), Origin::Seed)
            .unwrap();
        s.create(pods, Some("default"), pod("b", "n1", true), Origin::Seed)
            .unwrap();
        s.create(pods, Some("default"), pod("c", "n1", false), Origin::Seed)
            .unwrap();
        let pdb = reg.find("policy", "v1", "poddisruptionbudgets").unwrap();
        s.create(pdb, Some("default"), json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}), Origin::Api).unwrap();
        let err = s
            .evict("default", "a", &DeleteOptions::default())
            .unwrap_err();
        assert_eq!(err.code, 429);
        assert!(
            err.details
                .unwrap()
                .to_string()
                .contains("needs 2 healthy pods and has 2")
        );
        let status = s.get(pdb, "default", "web").unwrap().value()["status"].clone();
        assert_eq!(status["currentHealthy"], 2);
        assert_eq!(status["desiredHealthy"], 2);
        assert_eq!(status["expectedPods"], 3);
        assert_eq!(status["disruptionsAllowed"], 0);
        assert_eq!(status["conditions"][0]["reason"], "InsufficientPods");
        // The unready pod does not count against a budget that is met.
        assert!(s.evict("default", "c", &DeleteOptions::default()).is_ok());
        s.create(pods, Some("default"), pod("d", "n1", true), Origin::Seed)
            .unwrap();
        let status = s.get(pdb, "default", "web").unwrap().value()["status"].clone();
        assert_eq!(
            status["disruptionsAllowed"], 1,
            "a new healthy pod makes room: {status}"
        );
    }

    #[test]
    fn field_selectors_are_checked() {
        let (s, pods, _) = store();
        let r = s.registry().get(pods);
        assert!(Filter::new(r, None, None, Some("spec.nodeName=n1,status.phase!=Failed")).is_ok());
        let err = Filter::new(r, None, None, Some("spec.bogus=1")).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("spec.bogus"));
    }
}
