//! Alerts to webhooks: generic JSON, Slack-compatible, ntfy.
//!
//! The machine decides *when* (once per failure, rate-limited, a resolve
//! on recovery); this module says it in a notice and delivers it through
//! `rebootguard-alert`, from its own task so a slow webhook never holds
//! the agent up. URLs and tokens are read from their file or environment
//! variable at send time and never logged (a Slack webhook URL is a
//! credential).

use std::sync::Arc;

use rebootguard_alert::webhook::{self, Notice, Payload, Severity};
use serde_json::json;
use tokio::sync::mpsc;

use crate::config::{AlertKind as Format, AlertTarget};
use crate::machine::{Alert, AlertKind, CONDITION};
use crate::metrics::Metrics;

/// What `alert` about `node` looks like for a webhook of `format` (pure).
pub fn payload(format: Format, node: &str, alert: &Alert, at: jiff::Timestamp) -> Payload {
    let (state, headline, severity) = match alert.kind {
        AlertKind::Firing => ("firing", "pod networking is broken", Severity::Warning),
        AlertKind::Escalated => (
            "escalated",
            "pod networking is broken and rebootguard stopped healing it",
            Severity::Critical,
        ),
        AlertKind::Resolved => ("resolved", "pod networking works again", Severity::Resolved),
    };
    let notice = Notice {
        severity,
        title: format!("{node}: {headline}"),
        text: format!(
            "{node}: {headline} ({CONDITION} {}): {}",
            alert.reason, alert.message
        ),
        body: format!("{}: {}", alert.reason, alert.message),
        json: json!({
            "node": node,
            "state": state,
            "condition": CONDITION,
            "reason": alert.reason,
            "message": alert.message,
            "time": at.to_string(),
            "source": "rebootguard-agent",
        }),
    };
    webhook::payload(format, &notice)
}

/// Delivers alerts from a queue until it closes.
pub fn spawn(
    node: String,
    targets: Vec<AlertTarget>,
    metrics: Arc<Metrics>,
) -> mpsc::Sender<Alert> {
    let (tx, mut rx) = mpsc::channel::<Alert>(64);
    tokio::spawn(async move {
        let client = match rebootguard_alert::http::client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("alerts disabled: cannot set up TLS: {e}");
                return;
            }
        };
        while let Some(alert) = rx.recv().await {
            for (i, target) in targets.iter().enumerate() {
                let payload = payload(target.kind, &node, &alert, jiff::Timestamp::now());
                match webhook::deliver(&client, target, &payload, crate::USER_AGENT).await {
                    Ok(()) => {
                        metrics.alert(kind_name(alert.kind));
                        tracing::info!(
                            webhook = i + 1,
                            state = kind_name(alert.kind),
                            "alert sent"
                        );
                    }
                    Err(e) => {
                        metrics.alert("failed");
                        tracing::warn!(
                            webhook = i + 1,
                            "alert not delivered: {}",
                            rebootguard_errors::chain(&e)
                        );
                    }
                }
            }
        }
    });
    tx
}

fn kind_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Firing => "firing",
        AlertKind::Escalated => "escalated",
        AlertKind::Resolved => "resolved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: AlertKind) -> Alert {
        Alert {
            kind,
            reason: "SubnetEnvMissing".into(),
            message: "subnet-env: /run/flannel/subnet.env does not exist".into(),
        }
    }

    #[test]
    fn payloads_follow_each_format() {
        let at: jiff::Timestamp = "2026-01-31T07:18:00Z".parse().expect("time");
        let json = payload(Format::Json, "boromir", &alert(AlertKind::Firing), at);
        let value: serde_json::Value = serde_json::from_str(&json.body).expect("json");
        assert_eq!(value["node"], "boromir");
        assert_eq!(value["state"], "firing");
        assert_eq!(value["reason"], "SubnetEnvMissing");
        assert_eq!(value["time"], "2026-01-31T07:18:00Z");

        let slack = payload(Format::Slack, "boromir", &alert(AlertKind::Resolved), at);
        let value: serde_json::Value = serde_json::from_str(&slack.body).expect("json");
        assert!(value["text"].as_str().is_some_and(|t| {
            t.starts_with(":white_check_mark: boromir: pod networking works again")
        }));

        let ntfy = payload(Format::Ntfy, "boromir", &alert(AlertKind::Escalated), at);
        assert!(ntfy.headers.contains(&("priority", "urgent".into())));
        assert!(ntfy.body.starts_with("SubnetEnvMissing: "));
    }
}
