//! The alerts a Prometheus fires now: `GET <url>/api/v1/alerts`, the
//! ones in state `firing` (pending ones have not fired yet), minus those
//! fired on purpose ([`DEFAULT_IGNORED`]: kube-prometheus's `Watchdog`,
//! a dead man's switch, and `InfoInhibitor` always fire).
//!
//! An answer that is not Prometheus's alerts API (an error status, a
//! proxy's login page, `"status": "error"`) is an error, never "no alert":
//! whoever asks must treat it as unknown.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use serde::Deserialize;

use crate::http::{self, Client};

/// Alerts that fire all the time by design.
pub const DEFAULT_IGNORED: [&str; 2] = ["Watchdog", "InfoInhibitor"];

/// Labels named after the alert, in this order, when present: enough to
/// tell two firings of one alert apart.
const SHOWN_LABELS: [&str; 6] = ["severity", "namespace", "node", "instance", "pod", "job"];

/// Why the firing alerts are unknown.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not one.
    #[error("{0:?} is not an http(s) URL (e.g. http://prometheus.monitoring:9090)")]
    Url(String),
    /// No answer (connection refused, DNS, TLS, timeout).
    #[error("cannot reach Prometheus at {url}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why.
        #[source]
        why: http::Error,
    },
    /// An answer other than 200.
    #[error("Prometheus at {url} answered {status}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A 200 that is not the alerts API's answer.
    #[error("the answer of {url} is not Prometheus's alerts API: {why}")]
    Answer {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        why: String,
    },
}

#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    alerts: Vec<Alert>,
}

#[derive(Deserialize)]
struct Alert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    state: String,
}

/// The firing alerts in an answer of `/api/v1/alerts`, each as
/// `Name{label="value", ...}`, sorted, without the `ignored` names.
fn firing(body: &[u8], ignored: &[String]) -> Result<Vec<String>, String> {
    let response: Response = serde_json::from_slice(body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        format!("{e} (it starts with {start:?})")
    })?;
    if response.status != "success" {
        return Err(format!(
            "status {:?}: {}",
            response.status,
            response.error.unwrap_or_default()
        ));
    }
    let data = response
        .data
        .ok_or_else(|| "no \"data\" in a success".to_owned())?;
    let mut out: Vec<String> = data
        .alerts
        .iter()
        .filter(|a| a.state == "firing")
        .filter_map(|a| {
            let name = a.labels.get("alertname")?;
            if ignored.iter().any(|i| i == name) {
                return None;
            }
            let labels: Vec<String> = SHOWN_LABELS
                .iter()
                .filter_map(|k| Some(format!("{k}={:?}", a.labels.get(*k)?)))
                .collect();
            Some(if labels.is_empty() {
                name.clone()
            } else {
                format!("{name}{{{}}}", labels.join(", "))
            })
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The alerts firing now at the Prometheus at `base` (its URL, without
/// `/api/v1/alerts`), bounded by `timeout`.
pub async fn alerts(
    client: &Client,
    base: &str,
    ignored: &[String],
    user_agent: &str,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let url = format!("{}/api/v1/alerts", base.trim_end_matches('/'));
    let uri = http::uri(&url).ok_or_else(|| Error::Url(base.to_owned()))?;
    let request = hyper::Request::get(uri)
        .header("accept", "application/json")
        .header("user-agent", user_agent)
        .body(Full::new(Bytes::new()))
        .map_err(|e| Error::Url(format!("{base}: {e}")))?;
    let (status, body) = http::exchange(client, request, timeout)
        .await
        .map_err(|why| Error::Unreachable {
            url: url.clone(),
            why,
        })?;
    if status != hyper::StatusCode::OK {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_owned();
        return Err(Error::Status {
            url,
            status: status.as_u16(),
            body: text,
        });
    }
    firing(&body, ignored).map_err(|why| Error::Answer { url, why })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored() -> Vec<String> {
        DEFAULT_IGNORED.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_firing_alerts_not_ignored_ones_count() {
        let body = br#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"Watchdog","severity":"none"},"state":"firing"},
            {"labels":{"alertname":"InfoInhibitor"},"state":"firing"},
            {"labels":{"alertname":"KubeNodeNotReady","node":"theoden","severity":"warning","prometheus":"monitoring/k8s"},"state":"firing"},
            {"labels":{"alertname":"KubeNodeNotReady","node":"theoden","severity":"warning"},"state":"firing"},
            {"labels":{"alertname":"TargetDown"},"state":"firing"},
            {"labels":{"alertname":"KubePodCrashLooping","pod":"web-1"},"state":"pending"},
            {"labels":{"severity":"critical"},"state":"firing"}
        ]}}"#;
        assert_eq!(
            firing(body, &ignored()).expect("parses"),
            [
                r#"KubeNodeNotReady{severity="warning", node="theoden"}"#,
                "TargetDown"
            ]
        );
        // Nothing ignored: the dead man's switch fires too.
        assert_eq!(firing(body, &[]).expect("parses").len(), 4);
        let none = br#"{"status":"success","data":{"alerts":[]}}"#;
        assert_eq!(firing(none, &ignored()), Ok(vec![]));
    }

    #[test]
    fn anything_but_the_alerts_api_is_an_error() {
        let error =
            br#"{"status":"error","errorType":"unavailable","error":"rule manager not ready"}"#;
        let e = firing(error, &[]).expect_err("error status");
        assert!(e.contains("rule manager not ready"), "{e}");
        let e = firing(b"<html>Sign in</html>", &[]).expect_err("not json");
        assert!(e.contains("<html>Sign in"), "{e}");
        assert!(firing(br#"{"status":"success"}"#, &[]).is_err());
        assert!(firing(br#"{"status":"success","data":{}}"#, &[]).is_err());
    }

    #[tokio::test]
    async fn a_bad_url_or_no_server_is_an_error() {
        let client = http::client().expect("client");
        let e = alerts(
            &client,
            "prometheus:9090",
            &[],
            "test",
            Duration::from_secs(1),
        )
        .await
        .expect_err("no scheme");
        assert!(matches!(e, Error::Url(_)), "{e}");
        // A port nobody listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let e = alerts(
            &client,
            &format!("http://127.0.0.1:{port}/"),
            &[],
            "test",
            Duration::from_secs(2),
        )
        .await
        .expect_err("refused");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot reach Prometheus at http://127.0.0.1:{port}/api/v1/alerts"
            )),
            "{text}"
        );
        // The cause is kept as the error's source, for the chain to print.
        let chain = rebootguard_errors::chain(&e);
        assert!(chain.contains("Connection refused"), "{chain}");
    }
}
