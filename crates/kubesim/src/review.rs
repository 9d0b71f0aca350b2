//! Self reviews: `kubectl auth whoami` (`SelfSubjectReview`) and `kubectl
//! auth can-i` (`SelfSubjectAccessReview`), answered for the user the
//! request authenticated as, by the same decision that guards every
//! request (without [`crate::Options::rbac`]: the administrator, allowed
//! everything). Reviews are answered from the request and never stored,
//! as upstream.

use serde_json::{Value, json};

use crate::rbac::{self, User};
use crate::registry::Resource;
use crate::status::Status;

/// The administrator's user name (the kubeconfig's user).
pub const USERNAME: &str = "kubesim-admin";

/// The groups of [`USERNAME`]: a cluster administrator's.
pub const GROUPS: &[&str] = &["system:masters", "system:authenticated"];

/// The review with its status filled in; `authorize` says why `user` may
/// do what is asked, or `None`.
pub fn answer(
    r: &Resource,
    mut request: Value,
    user: &User,
    authorize: impl Fn(&rbac::Request) -> Option<String>,
) -> Result<Value, Status> {
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
        "SelfSubjectReview" => json!({"userInfo": user.to_json()}),
        "SelfSubjectAccessReview" => {
            let asked = asked(object.get("spec"))?;
            match authorize(&asked) {
                Some(reason) => json!({"allowed": true, "reason": reason}),
                None => json!({"allowed": false}),
            }
        }
        other => return Err(Status::internal(format!("no review answers kind {other}"))),
    };
    object.insert("status".into(), status);
    Ok(request)
}

/// The request an access review asks about.
fn asked(spec: Option<&Value>) -> Result<rbac::Request, Status> {
    let attributes = |key: &str| spec.and_then(|s| s.get(key)).filter(|v| v.is_object());
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match (
        attributes("resourceAttributes"),
        attributes("nonResourceAttributes"),
    ) {
        (Some(a), None) => Ok(rbac::Request::Resource {
            verb: text(a, "verb"),
            group: text(a, "group"),
            version: text(a, "version"),
            resource: text(a, "resource"),
            subresource: text(a, "subresource"),
            namespace: text(a, "namespace"),
            name: text(a, "name"),
        }),
        (None, Some(a)) => Ok(rbac::Request::NonResource {
            verb: text(a, "verb"),
            path: text(a, "path"),
        }),
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

    fn admin() -> User {
        User::new(USERNAME, GROUPS)
    }

    #[test]
    fn whoami_is_the_authenticated_user() {
        let v = answer(&resource("SelfSubjectReview"), json!({}), &admin(), |_| {
            None
        })
        .unwrap();
        assert_eq!(v["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(v["status"]["userInfo"]["username"], USERNAME);
        assert_eq!(v["status"]["userInfo"]["groups"][0], "system:masters");
        let agent = User::service_account("rebootguard", "agent");
        let v = answer(&resource("SelfSubjectReview"), json!({}), &agent, |_| None).unwrap();
        assert_eq!(
            v["status"]["userInfo"]["username"],
            "system:serviceaccount:rebootguard:agent"
        );
    }

    #[test]
    fn access_is_what_the_decision_says_and_the_question_must_be_one() {
        let r = resource("SelfSubjectAccessReview");
        let only_pods = |asked: &rbac::Request| match asked {
            rbac::Request::Resource {
                verb,
                resource,
                namespace,
                ..
            } => (verb == "list" && resource == "pods" && namespace == "web")
                .then(|| "granted".to_owned()),
            rbac::Request::NonResource { path, .. } => {
                (path == "/healthz").then(|| "health".to_owned())
            }
        };
        let ask = |spec: Value| answer(&r, json!({"spec": spec}), &admin(), only_pods);
        let yes = ask(
            json!({"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "web"}}),
        )
        .unwrap();
        assert_eq!(yes["status"], json!({"allowed": true, "reason": "granted"}));
        let no = ask(json!({"resourceAttributes": {"verb": "list", "resource": "pods"}})).unwrap();
        assert_eq!(no["status"], json!({"allowed": false}));
        let health =
            ask(json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}})).unwrap();
        assert_eq!(health["status"]["allowed"], true);
        assert_eq!(ask(json!({})).unwrap_err().code, 422);
        let wrong = json!({"kind": "SelfSubjectReview"});
        assert_eq!(
            answer(&r, wrong, &admin(), only_pods).unwrap_err().code,
            400
        );
    }
}
