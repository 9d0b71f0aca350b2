//! The three PATCH flavours the apiserver accepts, applied to JSON values:
//! JSON merge patch (RFC 7386), JSON patch (RFC 6902, `test` included) and
//! strategic merge patch for the built-in lists that merge by key.
//!
//! Pure. Strategic merge knows list strategies from a table of paths (the
//! `patchMergeKey`/`patchStrategy` tags of the built-in types); lists not in
//! the table are atomic, as for the apiserver.

use serde_json::{Map, Value};

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The patch body is not the JSON shape its content type requires.
    #[error("failed to read the patch: {0}")]
    Decode(String),
    /// A JSON patch operation pointed at a missing location or failed `test`.
    #[error("failed to apply JSON patch operation {index} ({op} {path}): {reason}")]
    Apply {
        /// Index of the operation in the patch.
        index: usize,
        /// The operation name.
        op: String,
        /// Its `path`.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// The PATCH content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply, approximated as a
    /// merge patch that may create the object).
    Apply,
}

impl Kind {
    /// Reads the `Content-Type` of a PATCH request.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let base = content_type.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies a patch of `kind` to `target` in place.
pub fn apply(kind: Kind, target: &mut Value, patch: &Value) -> Result<(), Error> {
    match kind {
        Kind::Merge | Kind::Apply => {
            if !patch.is_object() {
                return Err(Error::Decode("a merge patch must be a JSON object".into()));
            }
            merge(target, patch);
            Ok(())
        }
        Kind::Json => json_patch(target, patch),
        Kind::Strategic => {
            if !patch.is_object() {
                return Err(Error::Decode(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic(target, patch, "");
            Ok(())
        }
    }
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// List strategy for a strategic merge path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// Elements are objects merged by this key.
    MergeByKey(&'static str),
    /// Elements are scalars; the patch adds to the set.
    Set,
}

/// Paths (object keys joined by `.`, arrays transparent) whose lists merge.
const STRATEGIES: &[(&str, ListStrategy)] = &[
    ("metadata.finalizers", ListStrategy::Set),
    ("metadata.ownerReferences", ListStrategy::MergeByKey("uid")),
    ("spec.podCIDRs", ListStrategy::Set),
    ("status.conditions", ListStrategy::MergeByKey("type")),
    ("status.addresses", ListStrategy::MergeByKey("type")),
    ("status.podIPs", ListStrategy::MergeByKey("ip")),
    ("status.hostIPs", ListStrategy::MergeByKey("ip")),
    ("spec.containers", ListStrategy::MergeByKey("name")),
    ("spec.initContainers", ListStrategy::MergeByKey("name")),
    ("spec.ephemeralContainers", ListStrategy::MergeByKey("name")),
    ("spec.volumes", ListStrategy::MergeByKey("name")),
    ("spec.imagePullSecrets", ListStrategy::MergeByKey("name")),
    ("spec.hostAliases", ListStrategy::MergeByKey("ip")),
    ("spec.schedulingGates", ListStrategy::MergeByKey("name")),
    ("spec.containers.env", ListStrategy::MergeByKey("name")),
    (
        "spec.containers.ports",
        ListStrategy::MergeByKey("containerPort"),
    ),
    (
        "spec.containers.volumeMounts",
        ListStrategy::MergeByKey("mountPath"),
    ),
    ("spec.initContainers.env", ListStrategy::MergeByKey("name")),
    (
        "spec.template.spec.containers",
        ListStrategy::MergeByKey("name"),
    ),
    (
        "spec.template.spec.initContainers",
        ListStrategy::MergeByKey("name"),
    ),
    (
        "spec.template.spec.volumes",
        ListStrategy::MergeByKey("name"),
    ),
    (
        "spec.template.spec.containers.env",
        ListStrategy::MergeByKey("name"),
    ),
    (
        "spec.template.spec.containers.ports",
        ListStrategy::MergeByKey("containerPort"),
    ),
    (
        "spec.template.spec.containers.volumeMounts",
        ListStrategy::MergeByKey("mountPath"),
    ),
];

fn strategy(path: &str) -> Option<ListStrategy> {
    STRATEGIES.iter().find(|(p, _)| *p == path).map(|(_, s)| *s)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Strategic merge patch at `path`: like [`merge`] for objects, but lists in
/// [`STRATEGIES`] merge, and the `$patch`, `$deleteFromPrimitiveList`,
/// `$setElementOrder` and `$retainKeys` directives are honoured.
fn strategic(target: &mut Value, patch: &Value, path: &str) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replacement = p.clone();
            replacement.remove("$patch");
            *target = Value::Object(replacement);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()) || p.contains_key(k));
    }
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (t.get_mut(field), v) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        let child_path = join(path, k);
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (strategy(&child_path), v) {
            (Some(ListStrategy::MergeByKey(key)), Value::Array(items)) => {
                let existing = t
                    .entry(k.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !existing.is_array() {
                    *existing = Value::Array(Vec::new());
                }
                if let Value::Array(list) = existing {
                    merge_list_by_key(list, items, key, &child_path);
                }
            }
            (Some(ListStrategy::Set), Value::Array(items)) => {
                let existing = t
                    .entry(k.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !existing.is_array() {
                    *existing = Value::Array(Vec::new());
                }
                if let Value::Array(list) = existing {
                    for item in items {
                        if !list.contains(item) {
                            list.push(item.clone());
                        }
                    }
                }
            }
            (_, Value::Object(_)) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                strategic(slot, v, &child_path);
                if slot.is_null() {
                    t.remove(k);
                }
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merge_list_by_key(list: &mut Vec<Value>, items: &[Value], key: &str, path: &str) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *list = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return;
    }
    for item in items {
        let Some(id) = item.get(key) else {
            // Without the merge key there is nothing to merge with.
            list.push(item.clone());
            continue;
        };
        let pos = list.iter().position(|x| x.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic(&mut list[i], item, path),
            (None, false) => {
                let mut fresh = Value::Object(Map::new());
                strategic(&mut fresh, item, path);
                list.push(fresh);
            }
        }
    }
}

/// RFC 6902 JSON patch, applied atomically: on error `target` is unchanged.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), Error> {
    let Value::Array(ops) = patch else {
        return Err(Error::Decode(
            "a JSON patch must be an array of operations".into(),
        ));
    };
    let mut work = target.clone();
    for (index, op) in ops.iter().enumerate() {
        let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let fail = |reason: String| Error::Apply {
            index,
            op: name.to_owned(),
            path: path.to_owned(),
            reason,
        };
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| fail("the operation has no \"value\"".into()))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("the operation has no \"from\"".into()))
        };
        match name {
            "add" => add(&mut work, path, value()?).map_err(fail)?,
            "remove" => {
                remove(&mut work, path).map_err(fail)?;
            }
            "replace" => {
                let v = value()?;
                let slot = work
                    .pointer_mut(path)
                    .ok_or_else(|| fail("no value at this path".into()))?;
                *slot = v;
            }
            "move" => {
                let moved = remove(&mut work, from()?).map_err(fail)?;
                add(&mut work, path, moved).map_err(fail)?;
            }
            "copy" => {
                let copied = work
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| fail("no value at \"from\"".into()))?;
                add(&mut work, path, copied).map_err(fail)?;
            }
            "test" => {
                let expected = value()?;
                let actual = work.pointer(path);
                if actual != Some(&expected) {
                    return Err(fail(format!(
                        "test failed: expected {expected}, found {}",
                        actual.map_or_else(|| "nothing".to_owned(), Value::to_string)
                    )));
                }
            }
            other => return Err(fail(format!("unknown operation {other:?}"))),
        }
    }
    *target = work;
    Ok(())
}

fn split_pointer(path: &str) -> Result<(&str, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| "the path must start with '/'".to_owned())?;
    Ok((parent, last.replace("~1", "/").replace("~0", "~")))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(list)) => {
            if last == "-" {
                list.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("{last:?} is not an array index"))?;
            if i > list.len() {
                return Err(format!("index {i} is past the end of the array"));
            }
            list.insert(i, value);
            Ok(())
        }
        Some(_) => Err("the parent is neither an object nor an array".into()),
        None => Err("the parent does not exist".into()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => map
            .remove(&last)
            .ok_or_else(|| "no value at this path".into()),
        Some(Value::Array(list)) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("{last:?} is not an array index"))?;
            if i >= list.len() {
                return Err(format!("index {i} is past the end of the array"));
            }
            Ok(list.remove(i))
        }
        _ => Err("the parent does not exist".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_conditions_merge_by_type() {
        let mut node = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "MemoryPressure", "status": "False"}
        ]}});
        let p = json!({"status": {
            "$setElementOrder/conditions": [{"type": "Ready"}, {"type": "MemoryPressure"}, {"type": "CNIReady"}],
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady"},
                {"type": "CNIReady", "status": "False"}
            ]
        }});
        apply(Kind::Strategic, &mut node, &p).unwrap();
        assert_eq!(
            node,
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady"},
                {"type": "MemoryPressure", "status": "False"},
                {"type": "CNIReady", "status": "False"}
            ]}})
        );
        apply(
            Kind::Strategic,
            &mut node,
            &json!({"status": {"conditions": [{"type": "CNIReady", "$patch": "delete"}]}}),
        )
        .unwrap();
        assert_eq!(node["status"]["conditions"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn strategic_taints_are_atomic_and_sets_union() {
        let mut node = json!({"metadata": {"finalizers": ["a"]}, "spec": {
            "taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}],
            "podCIDRs": ["10.42.0.0/24"]
        }});
        let p = json!({"metadata": {"finalizers": ["b"]}, "spec": {
            "taints": [{"key": "b", "effect": "NoSchedule"}],
            "podCIDRs": ["fd00::/64"]
        }});
        apply(Kind::Strategic, &mut node, &p).unwrap();
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "b", "effect": "NoSchedule"}])
        );
        assert_eq!(
            node["spec"]["podCIDRs"],
            json!(["10.42.0.0/24", "fd00::/64"])
        );
        assert_eq!(node["metadata"]["finalizers"], json!(["a", "b"]));
        apply(
            Kind::Strategic,
            &mut node,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}, "spec": {"taints": null}}),
        )
        .unwrap();
        assert_eq!(node["metadata"]["finalizers"], json!(["b"]));
        assert!(node["spec"].get("taints").is_none());
    }

    #[test]
    fn strategic_replace_directive() {
        let mut o = json!({"spec": {"x": {"a": 1, "b": 2}}});
        apply(
            Kind::Strategic,
            &mut o,
            &json!({"spec": {"x": {"$patch": "replace", "c": 3}}}),
        )
        .unwrap();
        assert_eq!(o, json!({"spec": {"x": {"c": 3}}}));
    }

    #[test]
    fn json_patch_ops_and_test() {
        let mut o = json!({"metadata": {"labels": {"a": "1"}}, "l": [1, 2]});
        let p = json!([
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "add", "path": "/metadata/labels/k8s.io~1role", "value": "x"},
            {"op": "replace", "path": "/l/0", "value": 9},
            {"op": "add", "path": "/l/-", "value": 3},
            {"op": "remove", "path": "/l/1"},
            {"op": "copy", "from": "/l", "path": "/m"},
            {"op": "move", "from": "/m", "path": "/n"}
        ]);
        json_patch(&mut o, &p).unwrap();
        assert_eq!(
            o,
            json!({"metadata": {"labels": {"a": "1", "k8s.io/role": "x"}}, "l": [9, 3], "n": [9, 3]})
        );
        let before = o.clone();
        let err = json_patch(
            &mut o,
            &json!([{"op": "remove", "path": "/l/0"}, {"op": "test", "path": "/l/0", "value": 9}]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("test failed"), "{err}");
        assert_eq!(o, before, "a failed patch must leave the object alone");
        assert!(json_patch(&mut o, &json!({"op": "add"})).is_err());
        assert!(
            json_patch(
                &mut o,
                &json!([{"op": "replace", "path": "/nope", "value": 1}])
            )
            .is_err()
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Kind::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(Kind::Strategic)
        );
        assert_eq!(Kind::from_content_type("text/plain"), None);
    }
}
