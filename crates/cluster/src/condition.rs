//! One condition of a Node's status, written as one entry of a list keyed
//! by `type`: a strategic merge patch on `nodes/status` changes that entry
//! and leaves the kubelet's (and anybody else's) alone.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::node::{Error, bounded};

/// A condition as its writer means it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `type`.
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// For humans.
    pub message: String,
}

/// The node's current condition of `kind`, if any.
pub fn find<'a>(node: &'a Node, kind: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// Writes `condition` on node `name` with `heartbeat` as its heartbeat time.
/// `lastTransitionTime` moves only when the status differs from `previous`
/// (the status the API showed last), else keeps `previous`'s time.
pub async fn set(
    client: &Client,
    name: &str,
    condition: &Condition,
    previous: Option<&NodeCondition>,
    heartbeat: jiff::Timestamp,
    bound: Duration,
) -> Result<(), Error> {
    let transition = match previous {
        Some(p) if p.status == condition.status => {
            p.last_transition_time.as_ref().map_or(heartbeat, |t| t.0)
        }
        _ => heartbeat,
    };
    let entry = NodeCondition {
        type_: condition.kind.clone(),
        status: condition.status.clone(),
        reason: Some(condition.reason.clone()),
        message: Some(condition.message.clone()),
        last_heartbeat_time: Some(Time(heartbeat)),
        last_transition_time: Some(Time(transition)),
    };
    let patch = serde_json::json!({"status": {"conditions": [entry]}});
    let api: Api<Node> = Api::all(client.clone());
    let (params, patch) = (PatchParams::default(), Patch::Strategic(&patch));
    let write = api.patch_status(name, &params, &patch);
    bounded(bound, format!("status of node {name:?}"), write)
        .await
        .map(drop)
}
