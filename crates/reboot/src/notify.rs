//! Webhook notifications of a rollout: started, each node done (with its
//! timeline), stopped (what failed, the first domino, what to do), done.
//!
//! A thin consumer of the rollout's [`Update`] stream: [`notice`] picks
//! the four moments and words them (pure); [`Notifier`] delivers them
//! through `rebootguard-alert` from its own task, so a slow webhook never
//! holds a reboot up, and [`Notifier::finish`] waits (bounded) for what is
//! still queued before the command exits.

use std::time::Duration;

use rebootguard_alert::webhook::{self, Notice, Severity, Target};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{USER_AGENT, Update};

/// How long [`Notifier::finish`] waits for queued notices.
const FLUSH: Duration = Duration::from_secs(30);

/// The notice for `update`, if it is one of the moments webhooks hear of.
pub fn notice(update: &Update) -> Option<Notice> {
    let node = update.node.as_deref().unwrap_or("");
    let (event, severity, title, text, body) = match update.event {
        "plan" => (
            "started",
            Severity::Info,
            "rollout started".to_owned(),
            format!("reboot {}", update.message),
            update.message.clone(),
        ),
        "timeline" => {
            let marks = timeline_text(&update.data);
            (
                "node-done",
                Severity::Resolved,
                format!("{node} rebooted and verified"),
                format!("{node} rebooted and verified: {marks}"),
                marks,
            )
        }
        "stopped" => {
            let stop = &update.data["stop"];
            let what = stop["what"].as_str().unwrap_or(&update.message);
            let hint = stop["hint"].as_str().unwrap_or("");
            let phase = update.phase.unwrap_or("");
            let mut body = format!("what failed: {what}\n");
            match update.data["firstDomino"]["title"].as_str() {
                Some(d) => body.push_str(&format!("first domino: {d}\n")),
                None => body.push_str("first domino: diagnose found none\n"),
            }
            body.push_str(&format!(
                "what to do: {hint}; rerun the same command to resume at {node}"
            ));
            (
                "stopped",
                Severity::Critical,
                format!("rollout stopped at {node} ({phase}), {}", left(phase)),
                format!("rollout stopped at {node} ({phase}): {what}"),
                body,
            )
        }
        "done" => (
            "done",
            Severity::Resolved,
            "rollout done".to_owned(),
            update.message.clone(),
            update.message.clone(),
        ),
        _ => return None,
    };
    let mut object = json!({
        "source": "rebootguard-reboot",
        "event": event,
        "message": text,
        "time": update.at.to_string(),
    });
    if !node.is_empty() {
        object["node"] = json!(node);
    }
    if !update.data.is_null() {
        object["data"] = update.data.clone();
    }
    Some(Notice {
        severity,
        title,
        text,
        body,
        json: object,
    })
}

/// What a stop in `phase` left on its node: before the cordon, nothing.
pub fn left(phase: &str) -> &'static str {
    match phase {
        "gates" | "lease" => "the node untouched",
        _ => "left cordoned",
    }
}

/// `started +0s, drained +3s, ...` from a timeline's JSON.
fn timeline_text(data: &Value) -> String {
    data.as_array()
        .map(|marks| {
            marks
                .iter()
                .map(|m| {
                    format!(
                        "{} +{:.0}s",
                        m["mark"].as_str().unwrap_or("?"),
                        m["seconds"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Delivers the rollout's notices to webhooks, in order, from a task.
pub struct Notifier {
    queue: Option<mpsc::UnboundedSender<Notice>>,
    task: tokio::task::JoinHandle<()>,
}

impl Notifier {
    /// Starts delivering to `targets`; a failed delivery is logged as a
    /// warning (the rollout goes on: its own output says everything).
    pub fn spawn(targets: Vec<Target>) -> std::io::Result<Notifier> {
        let client = rebootguard_alert::http::client()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Notice>();
        let task = tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                for target in &targets {
                    let payload = webhook::payload(target.kind, &notice);
                    if let Err(e) = webhook::deliver(&client, target, &payload, USER_AGENT).await {
                        tracing::warn!(
                            "webhook notification not delivered: {}",
                            rebootguard_errors::chain(&e)
                        );
                    }
                }
            }
        });
        Ok(Notifier {
            queue: Some(tx),
            task,
        })
    }

    /// Queues the notice for `update`, if it is one.
    pub fn send(&self, update: &Update) {
        if let (Some(queue), Some(n)) = (&self.queue, notice(update)) {
            let _ = queue.send(n);
        }
    }

    /// Delivers what is queued (at most 30 s more), then stops.
    pub async fn finish(mut self) {
        self.queue = None;
        if tokio::time::timeout(FLUSH, &mut self.task).await.is_err() {
            tracing::warn!("webhook notifications still pending after {FLUSH:?}: dropped");
            self.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(event: &'static str, node: Option<&str>, message: &str, data: Value) -> Update {
        let mut u = Update::new(event, node, message);
        u.data = data;
        u
    }

    #[test]
    fn four_moments_are_notified_the_rest_is_not() {
        let started = notice(&update(
            "plan",
            None,
            "rollout rollout-1: samwise → theoden",
            json!({"rollout": "rollout-1"}),
        ))
        .expect("started");
        assert_eq!(started.severity, Severity::Info);
        assert_eq!(started.text, "reboot rollout rollout-1: samwise → theoden");
        assert_eq!(started.json["event"], "started");
        assert_eq!(started.json["data"]["rollout"], "rollout-1");

        let done = notice(&update(
            "timeline",
            Some("samwise"),
            "samwise done",
            json!([{"mark": "started", "seconds": 0.0}, {"mark": "drained", "seconds": 3.2}]),
        ))
        .expect("node done");
        assert_eq!(
            done.text,
            "samwise rebooted and verified: started +0s, drained +3s"
        );
        assert_eq!(done.json["node"], "samwise");
        assert_eq!(done.json["event"], "node-done");

        for quiet in ["note", "lease", "phase"] {
            assert_eq!(notice(&update(quiet, Some("x"), "m", Value::Null)), None);
        }
        let end = notice(&update(
            "done",
            None,
            "rollout r done: 2 node(s)",
            Value::Null,
        ))
        .expect("done");
        assert_eq!(end.severity, Severity::Resolved);
        assert!(end.json.get("data").is_none());
    }

    #[test]
    fn a_stop_says_what_failed_the_first_domino_and_what_to_do() {
        let mut u = update(
            "stopped",
            Some("theoden"),
            "...",
            json!({
                "stop": {"node": "theoden", "phase": "network", "what": "PodNetworkReady=False: SubnetEnvMissing", "hint": "follow the first domino below"},
                "firstDomino": {"title": "flannel subnet.env missing on theoden"},
            }),
        );
        u.phase = Some("network");
        let n = notice(&u).expect("stopped");
        assert_eq!(n.severity, Severity::Critical);
        assert_eq!(
            n.title,
            "rollout stopped at theoden (network), left cordoned"
        );
        assert_eq!(
            n.body,
            "what failed: PodNetworkReady=False: SubnetEnvMissing\nfirst domino: flannel subnet.env missing on theoden\nwhat to do: follow the first domino below; rerun the same command to resume at theoden"
        );
        u.phase = Some("gates");
        assert_eq!(
            notice(&u).expect("stopped").title,
            "rollout stopped at theoden (gates), the node untouched"
        );
        u.data["firstDomino"] = Value::Null;
        assert!(
            notice(&u)
                .expect("stopped")
                .body
                .contains("first domino: diagnose found none")
        );
    }
}
