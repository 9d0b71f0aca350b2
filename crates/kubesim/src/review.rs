//! Self reviews: `kubectl auth whoami` (`SelfSubjectReview`) and `kubectl
//! auth can-i` (`SelfSubjectAccessReview`). kubesim authenticates no one
//! and enforces no RBAC, so every client is the same administrator and
//! every access is allowed. Reviews are answered from the request and
//! never stored, as upstream.

use serde_json::{Value, json};

use crate::registry::Resource;
use crate::status::Status;

/// The user every client is.
pub const USERNAME: &str = "kubesim-admin";

/// The groups of [`USERNAME`]: a cluster administrator's.
pub const GROUPS: &[&str] = &["system:masters", "system:authenticated"];

/// The review with its status filled in.
pub fn answer(r: &Resource, mut request: Value) -> Result<Value, Status> {
    let Some(object) = request.as_object_mut() else {
        return Err(Status::bad_request(format!(
            "the body must be a {} object",
            r.kind
        )));
    };
    match object.get("kind").and_then(Value::as_str) {
        Some(k) if k != r.kind => {
            return Err(Status::bad_request(format!(
                "the kind of the object ({k}) does not match the resource ({}, kind {})",
                r.qualified(),
                r.kind
            )));
        }
        _ => {}
    }
    object.insert("kind".into(), r.kind.clone().into());
    object.insert("apiVersion".into(), r.api_version().into());
    object.entry("metadata").or_insert_with(|| json!({}));
    let status = match r.kind.as_str() {
        "SelfSubjectReview" => json!({"userInfo": {"username": USERNAME, "groups": GROUPS}}),
        "SelfSubjectAccessReview" => access(object.get("spec"))?,
        other => return Err(Status::internal(format!("no review answers kind {other}"))),
    };
    object.insert("status".into(), status);
    Ok(request)
}

/// Allowed, for a well-formed question: kubesim does not enforce RBAC.
fn access(spec: Option<&Value>) -> Result<Value, Status> {
    let asks = |key: &str| spec.and_then(|s| s.get(key)).is_some_and(Value::is_object);
    match (asks("resourceAttributes"), asks("nonResourceAttributes")) {
        (true, false) | (false, true) => Ok(json!({
            "allowed": true,
            "reason": "kubesim does not enforce RBAC: every client may do everything",
        })),
        _ => Err(Status::invalid(
            "SelfSubjectAccessReview",
            "",
            "spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{CustomResource, Registry};

    fn resource(kind: &str) -> Resource {
        let registry = Registry::new(&CustomResource::defaults());
        let id = registry.all().iter().position(|r| r.kind == kind).unwrap();
        registry.all()[id].clone()
    }

    #[test]
    fn whoami_is_the_administrator() {
        let v = answer(&resource("SelfSubjectReview"), json!({})).unwrap();
        assert_eq!(v["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(v["status"]["userInfo"]["username"], USERNAME);
        assert_eq!(v["status"]["userInfo"]["groups"][0], "system:masters");
    }

    #[test]
    fn every_access_is_allowed_but_the_question_must_be_one() {
        let r = resource("SelfSubjectAccessReview");
        let ask = json!({"spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}});
        assert_eq!(answer(&r, ask).unwrap()["status"]["allowed"], true);
        let ask = json!({"spec": {"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}});
        assert_eq!(answer(&r, ask).unwrap()["status"]["allowed"], true);
        assert_eq!(answer(&r, json!({"spec": {}})).unwrap_err().code, 422);
        let wrong = json!({"kind": "SelfSubjectReview"});
        assert_eq!(answer(&r, wrong).unwrap_err().code, 400);
    }
}
