//! The machinery behind the table of kinds in [`crate::snapshot`].
//!
//! Every kind diagnose reads is one row of the `kinds!` table in the
//! snapshot module: the array that holds it (field, JSON key, model type),
//! the kinds the live collector lists into it, and, only where a kind needs
//! them, hooks for what the loader skips, how the streaming parser reads an
//! element and how copies are told apart. Custom resources kept whole are a
//! list of kinds at the end of the table. From that one table the macro
//! writes [`Snapshot`](crate::snapshot::Snapshot), its `merge`, `dedup` and
//! `len`, [`KINDS`](crate::snapshot::KINDS), the loader's dispatch by
//! `apiVersion` and `kind` and the streaming parser's dispatch by array key,
//! so that adding a kind touches nothing else.
//!
//! The macro only wires: each line it writes calls one of the generic
//! functions below, where the logic is.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{Meta, NodeMeta};

/// A kind the live collector lists (with the dynamic API where it is a CRD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Version to list. For an optional CRD, the newest this build knows:
    /// the collector lists the version the cluster prefers, and files may
    /// hold any version.
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

/// A built-in kind, listed in every namespace.
pub(crate) const fn kind(
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

/// A custom resource, whose CRD may be absent.
pub(crate) const fn crd(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> Kind {
    Kind {
        optional: true,
        ..self::kind(group, version, kind, plural)
    }
}

impl Kind {
    /// The same kind, listed in `namespace` only.
    pub(crate) const fn in_namespace(self, namespace: &'static str) -> Kind {
        Kind {
            namespace: Some(namespace),
            ..self
        }
    }

    /// `apiVersion` as objects of this kind carry it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// An array element that did not parse.
pub(crate) struct BadElement<'a> {
    /// Its kind, for the message.
    pub(crate) kind: &'static str,
    /// Its text.
    pub(crate) bytes: &'a [u8],
    /// serde's error, with the field.
    pub(crate) source: serde_json::Error,
}

/// The group of an `apiVersion`: `""` for core's `v1`.
pub(crate) fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Whether a row of `kinds` holds objects of `kind` in `api_version`: same
/// kind and group, whatever the version (a file may hold objects of an
/// older one). An object without `apiVersion` is known by its kind alone.
pub(crate) fn holds(kinds: &[Kind], api_version: &str, kind: &str) -> bool {
    let group = group_of(api_version);
    kinds
        .iter()
        .any(|k| k.kind == kind && (api_version.is_empty() || k.group == group))
}

/// The default `skip` hook: every object is kept.
pub(crate) fn keep_all<T>(_: &T) -> Option<&'static str> {
    None
}

/// Keeps `object`, unless `skip` gives a reason, which is counted instead.
pub(crate) fn keep<T>(
    items: &mut Vec<T>,
    ignored: &mut BTreeMap<String, usize>,
    object: T,
    skip: impl Fn(&T) -> Option<&'static str>,
) {
    match skip(&object) {
        // Without allocating once the reason is known: Normal events are
        // most of a cluster's.
        Some(reason) => match ignored.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                ignored.insert(reason.to_string(), 1);
            }
        },
        None => items.push(object),
    }
}

/// The default `parse` hook: the whole element.
pub(crate) fn whole<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<Option<T>> {
    serde_json::from_slice(bytes).map(Some)
}

/// Parses a snapshot array's elements into `items`, in order; `parse`
/// may drop some.
pub(crate) fn parse_into<'a, T>(
    items: &mut Vec<T>,
    elements: impl Iterator<Item = &'a [u8]>,
    kind: &'static str,
    parse: impl Fn(&[u8]) -> serde_json::Result<Option<T>>,
) -> Result<(), BadElement<'a>> {
    for bytes in elements {
        let parsed = parse(bytes).map_err(|source| BadElement {
            kind,
            bytes,
            source,
        })?;
        items.extend(parsed);
    }
    Ok(())
}

/// Removes the later copies of each object (same `key`), keeping the first.
pub(crate) fn dedup_by<T, K: Hash + Eq>(items: &mut Vec<T>, key: impl Fn(&T) -> K) {
    let mut seen = HashSet::with_capacity(items.len());
    items.retain(|x| seen.insert(key(x)));
}

/// What two copies of one object share, and two objects do not: the
/// default `dedup` of a row reads it from the objects' `metadata`.
pub(crate) trait Identity {
    /// The key.
    fn identity(&self) -> String;
}

impl Identity for Meta {
    fn identity(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.name, self.uid)
    }
}

impl Identity for NodeMeta {
    /// A Node is its name: the same node in two files is one node.
    fn identity(&self) -> String {
        self.name.clone()
    }
}

/// What tells custom objects apart, read from their JSON.
pub(crate) fn custom_identity(v: &Value) -> String {
    let meta = |field: &str| v["metadata"][field].as_str().unwrap_or("");
    format!(
        "{}/{}/{}/{}",
        v["kind"].as_str().unwrap_or(""),
        meta("namespace"),
        meta("name"),
        meta("uid")
    )
}

/// Writes the snapshot's arrays and everything that goes through each of
/// them from the table in [`crate::snapshot`]; see the module docs.
///
/// A row: doc comments, `field("jsonKey"): Model = [kinds...]`, then, in
/// this order and only if needed:
/// - `, skip = f`, `fn(&Model) -> Option<&'static str>`: the reason the
///   loader skips an object of a kubectl or live input, counted in
///   `Snapshot::ignored` (default: none);
/// - `, parse = f`, `fn(&[u8]) -> serde_json::Result<Option<Model>>`: how
///   an element of a snapshot file's array is read (default: whole). A
///   snapshot file holds what the loader kept, so it is not skipped again;
///   `parse` is where to drop the rest of an old or hand-made file cheaply;
/// - `, dedup = f`, `fn(&mut Vec<Model>)` (default: by `metadata`, see
///   [`Identity`]).
///
/// The rows are followed by `custom = [kinds...]`.
macro_rules! kinds {
    (
        arrays {
            $(
                $(#[$doc:meta])*
                $field:ident($key:literal): $model:ty = [$($kind:expr),+ $(,)?]
                    $(, skip = $skip:path)?
                    $(, parse = $parse:path)?
                    $(, dedup = $dedup:path)?;
            )+
        }
        custom = [$($custom:expr),* $(,)?];
    ) => {
        /// Everything diagnosis reads about a cluster.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", default)]
        pub struct Snapshot {
            /// Provenance.
            pub metadata: Meta,
            /// Kinds that could not be collected: the report is degraded.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub missing: Vec<Missing>,
            $(
                $(#[$doc])*
                #[serde(rename = $key)]
                pub $field: Vec<$model>,
            )+
            /// Custom resources kept whole as JSON (they are few): see
            /// [`is_kept_custom`].
            pub custom: Vec<Value>,
            /// Error-looking log lines, when the input carried logs.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub log_excerpts: Vec<LogExcerpt>,
            /// Kinds the loader saw but diagnosis does not read, with counts.
            #[serde(skip)]
            pub ignored: BTreeMap<String, usize>,
        }

        const ALL_KINDS: &[Kind] = &[$($($kind,)+)+ $($custom,)*];

        /// Everything diagnosis reads, in the order worth listing it: the
        /// kinds of each array of [`Snapshot`], then the custom resources.
        pub const KINDS: [Kind; ALL_KINDS.len()] = match ALL_KINDS.first_chunk() {
            Some(kinds) => *kinds,
            None => unreachable!(),
        };

        /// The custom resources of [`KINDS`], kept in [`Snapshot::custom`].
        const CUSTOM_KINDS: &[Kind] = &[$($custom,)*];

        /// Keys of a snapshot document that hold arrays, in file order.
        pub(crate) const ARRAY_KEYS: &[&str] =
            &["missing", $($key,)+ "custom", "logExcerpts"];

        impl Snapshot {
            /// Adds everything from `other` (used when loading several files).
            pub fn merge(&mut self, other: Snapshot) {
                self.metadata.merge(other.metadata);
                self.missing.extend(other.missing);
                $(self.$field.extend(other.$field);)+
                self.custom.extend(other.custom);
                self.log_excerpts.extend(other.log_excerpts);
                for (k, n) in other.ignored {
                    *self.ignored.entry(k).or_default() += n;
                }
            }

            /// Removes duplicates that appear when the same objects come
            /// from two sources: events listed through both event APIs,
            /// objects in two files. Keeps the first copy (for events, the
            /// one with the higher count).
            pub fn dedup(&mut self) {
                $($crate::kinds::kinds!(@dedup [$($dedup)?] &mut self.$field);)+
                $crate::kinds::dedup_by(&mut self.custom, $crate::kinds::custom_identity);
                self.missing.sort();
                self.missing.dedup();
            }

            /// Total number of objects held.
            pub fn len(&self) -> usize {
                $(self.$field.len() +)+ self.custom.len()
            }

            /// Adds one object to the array that holds its kind, or gives
            /// `d` back when none does.
            pub(crate) fn add_typed<'de, D: serde::Deserializer<'de>>(
                &mut self,
                api_version: &str,
                kind: &str,
                d: D,
            ) -> Result<Option<D>, D::Error> {
                $({
                    const ROW: &[Kind] = &[$($kind),+];
                    if $crate::kinds::holds(ROW, api_version, kind) {
                        let object: $model = serde::Deserialize::deserialize(d)?;
                        let skip = $crate::kinds::kinds!(@or [$($skip)?] $crate::kinds::keep_all);
                        $crate::kinds::keep(&mut self.$field, &mut self.ignored, object, skip);
                        return Ok(None);
                    }
                })+
                Ok(Some(d))
            }

            /// Parses elements of the snapshot array `key` (one of
            /// [`ARRAY_KEYS`]) into it.
            pub(crate) fn parse_array<'a>(
                &mut self,
                key: &str,
                elements: impl Iterator<Item = &'a [u8]>,
            ) -> Result<(), $crate::kinds::BadElement<'a>> {
                use $crate::kinds::{parse_into, whole};
                match key {
                    "missing" => parse_into(&mut self.missing, elements, "missing kind", whole),
                    $($key => {
                        const ROW: &[Kind] = &[$($kind),+];
                        let parse = $crate::kinds::kinds!(@or [$($parse)?] whole);
                        parse_into(&mut self.$field, elements, ROW[0].kind, parse)
                    })+
                    "custom" => parse_into(&mut self.custom, elements, "custom object", whole),
                    "logExcerpts" => parse_into(&mut self.log_excerpts, elements, "log excerpt", whole),
                    _ => Ok(()),
                }
            }
        }
    };

    // A hook the row gives, or the default.
    (@or [] $default:path) => { $default };
    (@or [$given:path] $default:path) => { $given };
    (@dedup [] $items:expr) => {
        $crate::kinds::dedup_by($items, |o| $crate::kinds::Identity::identity(&o.metadata))
    };
    (@dedup [$dedup:path] $items:expr) => { $dedup($items) };
}

pub(crate) use kinds;
