//! Alerts to webhooks: generic JSON, Slack-compatible, ntfy.
//!
//! The machine decides *when* (once per failure, rate-limited, a resolve
//! on recovery); this module only delivers, from its own task so a slow
//! webhook never holds the agent up. URLs and tokens are read from their
//! file or environment variable at send time and never logged (a Slack
//! webhook URL is a credential).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::mpsc;

use crate::config::{AlertKind as Format, AlertTarget, Secret};
use crate::machine::{Alert, AlertKind, CONDITION};
use crate::metrics::Metrics;

/// Attempts per webhook per alert.
const ATTEMPTS: u32 = 3;
/// Bound on one attempt.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an alert could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL or token could not be read.
    #[error("cannot read the webhook's {what}: {why}")]
    Secret {
        /// `url` or `token`.
        what: &'static str,
        /// Why (the source, never the value).
        why: String,
    },
    /// The URL does not parse.
    #[error("the webhook URL is not a valid http(s) URL")]
    Url,
    /// The request failed or timed out.
    #[error("the webhook request failed: {0}")]
    Request(String),
    /// The webhook answered with an error status.
    #[error("the webhook answered {0}")]
    Status(u16),
}

/// Reads a secret: a file's first line, or an environment variable.
pub fn read(secret: &Secret, what: &'static str) -> Result<String, Error> {
    let value = match secret {
        Secret::Plain(v) => v.clone(),
        Secret::File(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::Secret {
                what,
                why: format!("{}: {e}", path.display()),
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        Secret::Env(name) => std::env::var(name).map_err(|_| Error::Secret {
            what,
            why: format!("environment variable {name} is not set"),
        })?,
    };
    if value.is_empty() {
        return Err(Error::Secret {
            what,
            why: "it is empty".into(),
        });
    }
    Ok(value)
}

/// One webhook request: method POST, these headers, this body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
}

/// What `alert` about `node` looks like for a webhook of `format` (pure).
pub fn payload(format: Format, node: &str, alert: &Alert, at: jiff::Timestamp) -> Payload {
    let (state, headline) = match alert.kind {
        AlertKind::Firing => ("firing", "pod networking is broken"),
        AlertKind::Escalated => (
            "escalated",
            "pod networking is broken and rebootguard stopped healing it",
        ),
        AlertKind::Resolved => ("resolved", "pod networking works again"),
    };
    let text = format!(
        "{node}: {headline} ({CONDITION} {}): {}",
        alert.reason, alert.message
    );
    match format {
        Format::Json => Payload {
            headers: vec![("content-type", "application/json".into())],
            body: json!({
                "node": node,
                "state": state,
                "condition": CONDITION,
                "reason": alert.reason,
                "message": alert.message,
                "time": at.to_string(),
                "source": "rebootguard-agent",
            })
            .to_string(),
        },
        Format::Slack => {
            let icon = match alert.kind {
                AlertKind::Firing => ":warning:",
                AlertKind::Escalated => ":rotating_light:",
                AlertKind::Resolved => ":white_check_mark:",
            };
            Payload {
                headers: vec![("content-type", "application/json".into())],
                body: json!({"text": format!("{icon} {text}")}).to_string(),
            }
        }
        Format::Ntfy => {
            let (priority, tags) = match alert.kind {
                AlertKind::Firing => ("high", "warning"),
                AlertKind::Escalated => ("urgent", "rotating_light"),
                AlertKind::Resolved => ("default", "white_check_mark"),
            };
            Payload {
                headers: vec![
                    ("title", format!("{node}: {headline}")),
                    ("priority", priority.into()),
                    ("tags", tags.into()),
                ],
                body: format!("{}: {}", alert.reason, alert.message),
            }
        }
    }
}

/// Delivers alerts from a queue until it closes.
pub fn spawn(
    node: String,
    targets: Vec<AlertTarget>,
    metrics: Arc<Metrics>,
) -> mpsc::Sender<Alert> {
    let (tx, mut rx) = mpsc::channel::<Alert>(64);
    tokio::spawn(async move {
        let client = match https() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("alerts disabled: cannot set up TLS: {e}");
                return;
            }
        };
        while let Some(alert) = rx.recv().await {
            for (i, target) in targets.iter().enumerate() {
                let payload = payload(target.kind, &node, &alert, jiff::Timestamp::now());
                match deliver(&client, target, &payload).await {
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
                        tracing::warn!(webhook = i + 1, "alert not delivered: {e}");
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

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn https() -> std::io::Result<Https> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

async fn deliver(client: &Https, target: &AlertTarget, payload: &Payload) -> Result<(), Error> {
    let url = read(&target.url, "url")?;
    let uri: hyper::Uri = url.parse().map_err(|_| Error::Url)?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(Error::Url);
    }
    let token = target
        .token
        .as_ref()
        .map(|t| read(t, "token"))
        .transpose()?;
    let mut last = Error::Request("not attempted".into());
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
        let mut request = hyper::Request::post(uri.clone()).header("user-agent", crate::USER_AGENT);
        for (name, value) in &payload.headers {
            request = request.header(*name, value);
        }
        if let Some(token) = &token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(payload.body.clone())))
            .map_err(|e| Error::Request(e.to_string()))?;
        match tokio::time::timeout(TIMEOUT, client.request(request)).await {
            Err(_) => last = Error::Request(format!("no answer within {TIMEOUT:?}")),
            Ok(Err(e)) => last = Error::Request(e.to_string()),
            Ok(Ok(response)) => {
                let status = response.status();
                // Drain the body so the connection can be reused.
                let _ = response.into_body().collect().await;
                if status.is_success() {
                    return Ok(());
                }
                last = Error::Status(status.as_u16());
                // A 4xx will not get better by retrying (except 429).
                if status.is_client_error() && status.as_u16() != 429 {
                    break;
                }
            }
        }
    }
    Err(last)
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

    #[test]
    fn secrets_come_from_files_or_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("url");
        std::fs::write(&path, "https://hooks.example/T0/B0/xyz\n").expect("write");
        assert_eq!(
            read(&Secret::File(path.clone()), "url").expect("reads"),
            "https://hooks.example/T0/B0/xyz"
        );
        let err = read(
            &Secret::Env("REBOOTGUARD_TEST_UNSET_VARIABLE".into()),
            "token",
        )
        .expect_err("unset");
        assert!(err.to_string().contains("REBOOTGUARD_TEST_UNSET_VARIABLE"));
        std::fs::write(&path, "\n").expect("write");
        assert!(
            read(&Secret::File(path), "url").is_err(),
            "empty is refused"
        );
    }
}
