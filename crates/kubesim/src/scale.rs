//! The `scale` subresource of deployments, replicasets and statefulsets:
//! an `autoscaling/v1` `Scale` view of the object (`kubectl scale`). Reads
//! build the Scale from the stored object; writes change only the object's
//! `spec.replicas`, through the store's update so resourceVersion
//! preconditions, generation and watch events behave as for any write.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::patch;
use crate::registry::ResourceId;
use crate::status::Status;
use crate::store::{Object, Origin, Scope, Store};

/// The Scale of a stored object.
pub fn of(object: &Value) -> Value {
    let meta = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |key: &str| meta.get(key).cloned().unwrap_or(Value::Null);
    let mut metadata = json!({
        "name": pick("name"),
        "namespace": pick("namespace"),
        "uid": pick("uid"),
        "resourceVersion": pick("resourceVersion"),
        "creationTimestamp": pick("creationTimestamp"),
    });
    if let Some(m) = metadata.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    let spec_replicas = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        // Upstream defaults an unset replicas to 1.
        .unwrap_or(1);
    let status_replicas = object
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": spec_replicas},
        "status": {"replicas": status_replicas, "selector": selector_text(object)},
    })
}

/// `spec.selector.matchLabels` as a label selector string (`app=web`).
fn selector_text(object: &Value) -> String {
    object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The replica count a Scale asks for.
fn wanted_replicas(scale: &Value) -> Result<i64, Status> {
    match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_i64()
            .filter(|n| *n >= 0 && i32::try_from(*n).is_ok())
            .ok_or_else(|| {
                Status::invalid(
                    "Scale",
                    scale
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    format!(
                        "spec.replicas: Invalid value: {v}: must be a non-negative 32-bit integer"
                    ),
                )
            }),
    }
}

/// Writes a Scale (PUT): the object's `spec.replicas` becomes the Scale's,
/// under the Scale's resourceVersion precondition if it has one.
pub fn update(
    store: &mut Store,
    id: ResourceId,
    (namespace, name): (&str, &str),
    scale: &Value,
) -> Result<Value, Status> {
    if scale
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "Scale")
    {
        return Err(Status::bad_request(
            "the body of a scale request must be a Scale",
        ));
    }
    let replicas = wanted_replicas(scale)?;
    let mut object = store.get(id, namespace, name)?.value();
    object["spec"]["replicas"] = replicas.into();
    let precondition = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty());
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        match precondition {
            Some(rv) => m.insert("resourceVersion".into(), rv.into()),
            None => m.remove("resourceVersion"),
        };
    }
    let written: Arc<Object> =
        store.update(id, namespace, name, object, Scope::Main, Origin::Api)?;
    Ok(of(&written.value()))
}

/// Patches a Scale: the patch applies to the Scale view, then the result
/// is written as by [`update`].
pub fn patch(
    store: &mut Store,
    id: ResourceId,
    (namespace, name): (&str, &str),
    kind: patch::Kind,
    body: &Value,
) -> Result<Value, Status> {
    let mut scale = of(&store.get(id, namespace, name)?.value());
    patch::apply(kind, &mut scale, body).map_err(|e| match e {
        patch::Error::Decode(_) => Status::bad_request(e.to_string()),
        patch::Error::Apply { .. } => Status::invalid("Scale", name, e.to_string()),
    })?;
    update(store, id, (namespace, name), &scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_of_a_deployment() {
        let d = json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "tier": "fe"}}},
            "status": {"replicas": 1}});
        assert_eq!(
            of(&d),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"},
                "spec": {"replicas": 2}, "status": {"replicas": 1, "selector": "app=web,tier=fe"}})
        );
        assert_eq!(of(&json!({}))["spec"]["replicas"], 1);
    }

    #[test]
    fn replicas_must_be_a_non_negative_int32() {
        assert_eq!(wanted_replicas(&json!({"spec": {"replicas": 3}})), Ok(3));
        assert_eq!(wanted_replicas(&json!({"spec": {}})), Ok(0));
        for bad in [json!(-1), json!("3"), json!(1_u64 << 40)] {
            let err = wanted_replicas(&json!({"spec": {"replicas": bad}})).unwrap_err();
            assert_eq!(err.code, 422);
        }
    }
}
