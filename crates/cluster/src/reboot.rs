//! The reboot handshake on the Node object, between whoever orchestrates
//! reboots (`rebootguard reboot`, the controller) and the node's agent.
//!
//! - The orchestrator asks: [`REQUEST`] holds a [`Request`] (an id and an
//!   expiry) on a node it has cordoned and drained.
//! - The agent answers: it copies the id into [`ACCEPTED`] *before* it
//!   reboots, so the agent that starts after the reboot sees the request
//!   already answered and never reboots twice; the orchestrator then waits
//!   for a new boot ID.
//! - The agent reports a pending reboot (the sentinel file, e.g.
//!   `/var/run/reboot-required`) in [`REQUIRED`], so a controller can pick
//!   the nodes that need one.
//!
//! Annotations are a map: a merge patch changes our keys and nobody else's.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

use crate::node::{Error, bounded};

/// A reboot asked of the node's agent (JSON [`Request`]).
pub const REQUEST: &str = "rebootguard.io/reboot-request";
/// The id of the last request the agent acted on.
pub const ACCEPTED: &str = "rebootguard.io/reboot-accepted";
/// Since when the node wants a reboot (RFC 3339); absent when it does not.
pub const REQUIRED: &str = "rebootguard.io/reboot-required";

/// One reboot request. The expiry keeps a request that nobody withdrew
/// from rebooting the node much later, when someone cordons it for
/// another reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Unique per request (the rollout and the attempt).
    pub id: String,
    /// After this the request is void.
    pub expires: Timestamp,
}

impl Request {
    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The request an annotation value holds, or why it holds none.
    pub fn parse(value: &str) -> Result<Request, ParseError> {
        let request: Request =
            serde_json::from_str(value).map_err(|source| ParseError::Malformed {
                value: value.to_owned(),
                source,
            })?;
        if request.id.trim().is_empty() {
            return Err(ParseError::EmptyId(value.to_owned()));
        }
        Ok(request)
    }
}

/// Why a [`REQUEST`] value holds no request. Never retryable: the same
/// value fails the same way until the orchestrator writes a new one.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not the JSON of a [`Request`].
    #[error("{REQUEST} {value:?} is not {{\"id\": ..., \"expires\": RFC 3339}}")]
    Malformed {
        /// The annotation's value.
        value: String,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The id is empty or blank.
    #[error("{REQUEST} has an empty id (got {0:?})")]
    EmptyId(String),
}

/// What a Node's annotations say about reboots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    /// [`REQUEST`]'s raw value.
    pub request: Option<String>,
    /// [`ACCEPTED`].
    pub accepted: Option<String>,
    /// [`REQUIRED`].
    pub required: Option<String>,
    /// `spec.unschedulable`.
    pub cordoned: bool,
}

impl Handshake {
    /// The handshake as `node` shows it.
    pub fn of(node: &Node) -> Handshake {
        let annotations = node.metadata.annotations.as_ref();
        let get = |key: &str| annotations.and_then(|a| a.get(key)).cloned();
        Handshake {
            request: get(REQUEST),
            accepted: get(ACCEPTED),
            required: get(REQUIRED),
            cordoned: node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
        }
    }
}

/// Sets (or with `None` removes) annotations on node `name` with one merge
/// patch; other annotations are left alone.
pub async fn annotate(
    client: &Client,
    name: &str,
    values: &[(&str, Option<&str>)],
    bound: Duration,
) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let annotations: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                v.map_or(serde_json::Value::Null, Into::into),
            )
        })
        .collect();
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
    let write = api.patch(name, &params, &patch);
    bounded(bound, format!("annotations of node {name:?}"), write)
        .await
        .map(drop)
        .map_err(|e| match e {
            Error::Api {
                cause: kube::Error::Api(s),
                ..
            } if s.code == 404 => Error::NotFound(name.to_owned()),
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_bad_ones_say_what_is_wrong() {
        let r = Request {
            id: "rollout-7f3a/boromir/1".into(),
            expires: "2026-12-02T14:00:00Z".parse().expect("time"),
        };
        assert_eq!(Request::parse(&r.to_annotation()).expect("request"), r);
        let bad = Request::parse("yes please").expect_err("not JSON");
        let said = bad.to_string();
        assert!(
            said.contains(REQUEST) && said.contains("yes please"),
            "{said}"
        );
        assert!(matches!(bad, ParseError::Malformed { .. }), "{bad:?}");
        let empty = Request::parse(r#"{"id":" ","expires":"2026-12-02T14:00:00Z"}"#);
        let empty = empty.expect_err("empty");
        assert!(matches!(empty, ParseError::EmptyId(_)), "{empty:?}");
        assert!(empty.to_string().contains("empty id"));
    }

    #[test]
    fn the_handshake_reads_annotations_and_the_cordon() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "boromir", "annotations": {
                REQUEST: "r", ACCEPTED: "a", "other": "x"}},
            "spec": {"unschedulable": true}
        }))
        .expect("node");
        let h = Handshake::of(&node);
        assert_eq!(h.request.as_deref(), Some("r"));
        assert_eq!(h.accepted.as_deref(), Some("a"));
        assert_eq!(h.required, None);
        assert!(h.cordoned);
        assert_eq!(Handshake::of(&Node::default()), Handshake::default());
    }
}
