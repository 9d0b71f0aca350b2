//! The rollout's writes: cordon and uncordon, one eviction pass, the
//! reboot request or command, the progress annotation, stale-pod cleaning
//! and Events on the Node. Each is idempotent except the command, which
//! the state machine asks for once.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use kube::api::{DeleteParams, EvictParams, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Api, Client};
use rebootguard_cluster::reboot::{REQUEST, Request, annotate};
use rebootguard_diagnose::clean::{self, Action as Clean};
use rebootguard_rollout::machine::{Drain, Note};
use rebootguard_rollout::progress::{ANNOTATION, Progress};

use crate::Error;
use crate::observe::{bounded, must_leave, pods_on};

/// Sets `spec.unschedulable` (a merge patch: nobody else's field changes).
pub async fn cordon(client: &Client, node: &str, on: bool, bound: Duration) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({"spec": {"unschedulable": if on { Some(true) } else { None }}});
    bounded(
        bound,
        &format!("cordon of node {node}"),
        api.patch(node, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await
    .map(drop)
}

/// One pass over the node's pods: evicts (or with `force` deletes) each
/// one that must leave, and says which are still there and why.
pub async fn evict(
    client: &Client,
    node: &str,
    force: bool,
    grace: Option<u32>,
    bound: Duration,
) -> Result<Drain, Error> {
    let pods = pods_on(client, node, bound).await?;
    let mut drain = Drain::default();
    for pod in pods.iter().filter(|p| must_leave(p)) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        drain.left.push(format!("{namespace}/{name}"));
        // Being deleted already: wait for it to go.
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let delete = DeleteParams {
            grace_period_seconds: grace,
            ..DeleteParams::default()
        };
        let result = if force {
            bounded(bound, "pod delete", api.delete(&name, &delete))
                .await
                .map(drop)
        } else {
            let params = EvictParams {
                delete_options: Some(delete),
                ..EvictParams::default()
            };
            bounded(bound, "eviction", api.evict(&name, &params))
                .await
                .map(drop)
        };
        match result {
            Ok(()) => {}
            Err(Error::Api {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 404 => {}
            Err(Error::Api {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 429 => drain
                .blocked
                .push(format!("{namespace}/{name}: {}", s.message)),
            // Refused on principle (RBAC): no later pass can do better.
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) => drain.blocked.push(format!("{namespace}/{name}: {e}")),
        }
    }
    Ok(drain)
}

/// Writes the node's progress.
pub async fn progress(
    client: &Client,
    node: &str,
    p: &Progress,
    bound: Duration,
) -> Result<(), Error> {
    let value = p.to_annotation();
    annotate(client, node, &[(ANNOTATION, Some(&value))], bound)
        .await
        .map_err(|e| Error::Cluster {
            what: format!("progress of node {node}"),
            source: e,
        })
}

/// Asks the agent (the handshake's request), or withdraws it (`None`).
pub async fn request(
    client: &Client,
    node: &str,
    r: Option<&Request>,
    bound: Duration,
) -> Result<(), Error> {
    let value = r.map(Request::to_annotation);
    annotate(client, node, &[(REQUEST, value.as_deref())], bound)
        .await
        .map_err(|e| Error::Cluster {
            what: format!("reboot request on node {node}"),
            source: e,
        })
}

/// Runs the reboot command for `node` (`{node}` in an argument is its
/// name). The command may return at once or only after the node went
/// down; it is bounded by `bound` either way.
pub async fn command(argv: &[String], node: &str, bound: Duration) -> Result<(), Error> {
    let argv: Vec<String> = argv.iter().map(|a| a.replace("{node}", node)).collect();
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::Command("no reboot command configured".into()));
    };
    let run = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(bound, run)
        .await
        .map_err(|_| {
            Error::Command(format!(
                "`{}` did not finish within {bound:?}",
                argv.join(" ")
            ))
        })?
        .map_err(|e| Error::Command(format!("cannot run {program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Deletes the pods on `node` that its reboot left stale (diagnose's
/// clean-stale plan, restricted to the node); returns how many.
pub async fn clean_stale(client: &Client, node: &str, bound: Duration) -> Result<usize, Error> {
    let kinds: Vec<_> = rebootguard_diagnose::snapshot::KINDS
        .into_iter()
        .filter(clean::reads)
        .collect();
    let snapshot =
        rebootguard_cluster::collect::collect_kinds(client, "rollout", bound, &kinds).await;
    let plan = clean::plan(
        &snapshot,
        jiff::Timestamp::now(),
        &clean::Options::default(),
    );
    let mut deleted = 0;
    let mut errors = Vec::new();
    for entry in plan.actionable().filter(|e| e.node == node) {
        let force = entry.action == Clean::ForceDelete;
        match rebootguard_cluster::node::delete_pod(
            client,
            &entry.namespace,
            &entry.name,
            &entry.uid,
            force,
            bound,
        )
        .await
        {
            Ok(()) => deleted += 1,
            Err(e) => errors.push(format!("{}/{}: {e}", entry.namespace, entry.name)),
        }
    }
    if errors.is_empty() {
        Ok(deleted)
    } else {
        Err(Error::Command(errors.join("; ")))
    }
}

/// Records Events on Nodes as `rebootguard-reboot`.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// A recorder for the rollout `holder`.
    pub fn new(client: Client, holder: &str) -> Events {
        Events {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: "rebootguard-reboot".into(),
                    instance: Some(holder.to_owned()),
                },
            ),
        }
    }

    /// Publishes `note` on node `node` (best effort: a failure is logged).
    pub async fn publish(&self, node: &str, note: &Note) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..ObjectReference::default()
        };
        let event = KubeEvent {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.into(),
            note: Some(note.message.clone()),
            action: "Reboot".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::warn!("failed to record an event on node {node}: {e}");
        }
    }
}
