//! API errors as the apiserver sends them: `Status` objects with a reason,
//! an HTTP code and a message clients print.

use serde_json::{Value, json};

/// A failed request, rendered as a `meta/v1` `Status` object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct Status {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason, e.g. `NotFound`, `Conflict`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// `details` (name, kind, causes), if any.
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header and `details.retryAfterSeconds`.
    pub retry_after: Option<u32>,
}

impl Status {
    fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 for a named object: `pods "x" not found`.
    pub fn not_found(qualified: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found")).with_details(
            json!({"name": name, "kind": qualified.split('.').next().unwrap_or(qualified)}),
        )
    }

    /// 404 for a path that names nothing.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409 on create of an existing name.
    pub fn already_exists(qualified: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{qualified} \"{name}\" already exists"),
        )
        .with_details(
            json!({"name": name, "kind": qualified.split('.').next().unwrap_or(qualified)}),
        )
    }

    /// 409 on a write with a stale resourceVersion or failed precondition.
    pub fn conflict(qualified: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified} \"{name}\": {why}"),
        )
        .with_details(
            json!({"name": name, "kind": qualified.split('.').next().unwrap_or(qualified)}),
        )
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422 for an object that fails validation. `message` is
    /// `field: what`, as the apiserver words a field error; the field goes
    /// into `details.causes`, which kubectl prints.
    pub fn invalid(kind: &str, name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut details = json!({"name": name, "kind": kind});
        if let Some((field, what)) = message.split_once(": ")
            && !field.contains(' ')
        {
            let reason = match what.split(':').next().unwrap_or_default() {
                "Unsupported value" => "FieldValueNotSupported",
                "Required value" => "FieldValueRequired",
                "Forbidden" => "FieldValueForbidden",
                _ => "FieldValueInvalid",
            };
            details["causes"] = json!([{"reason": reason, "message": what, "field": field}]);
        }
        Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {message}"),
        )
        .with_details(details)
    }

    /// 405 for a verb the route does not take.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow method {method} on {path}"),
        )
    }

    /// 415 for a PATCH content type the resource does not take.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    }

    /// 415 for a request body kubesim cannot decode (a protobuf kind or
    /// field it has no schema for).
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 410 for a watch or continue token older than the kept history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 429, with `Retry-After`.
    pub fn too_many_requests(
        message: impl Into<String>,
        retry_after: Option<u32>,
        details: Option<Value>,
    ) -> Self {
        let mut s = Self::new(429, "TooManyRequests", message);
        s.retry_after = retry_after;
        s.details = details;
        s
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 401 for a request without valid credentials (the apiserver says no more).
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 for an operation kubesim refuses on principle.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// The `Status` object.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = self.details.clone();
        if let Some(secs) = self.retry_after {
            let d = details.get_or_insert_with(|| json!({}));
            d["retryAfterSeconds"] = json!(secs);
        }
        if let Some(d) = details {
            v["details"] = d;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_object_shape() {
        let s = Status::not_found("pods", "web-1").to_json();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "pods \"web-1\" not found");
        assert_eq!(s["details"]["name"], "web-1");
        let i =
            Status::invalid("Pod", "p", "spec.restartPolicy: Unsupported value: \"x\"").to_json();
        assert_eq!(
            i["details"]["causes"],
            json!([{"reason": "FieldValueNotSupported", "message": "Unsupported value: \"x\"", "field": "spec.restartPolicy"}])
        );
        let t = Status::too_many_requests("slow down", Some(2), None).to_json();
        assert_eq!(t["details"]["retryAfterSeconds"], 2);
    }
}
