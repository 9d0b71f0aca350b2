//! Notifications to webhooks: generic JSON, Slack-compatible, ntfy.
//!
//! Whoever notifies decides *when* and says *what* in a [`Notice`]; this
//! module shapes it for each format ([`payload`], pure) and delivers it
//! ([`deliver`]: retried, each attempt bounded). URLs and tokens are read
//! from their file or environment variable at send time and never logged
//! (a Slack webhook URL is a credential).

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use serde::Deserialize;

use crate::http::{self, Client};

/// Attempts per webhook per notice.
const ATTEMPTS: u32 = 3;
/// Bound on one attempt.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The payload a webhook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The notice's own JSON object (`{"node", "state", ...}` for the agent).
    #[default]
    Json,
    /// Slack incoming webhook (`{"text": ...}`).
    Slack,
    /// ntfy: the message as the body, title/priority/tags as headers.
    Ntfy,
}

/// Where a secret comes from; read at send time, never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// Given as is (not secret).
    Plain(String),
    /// A file's first line.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Payload format.
    pub kind: Format,
    /// Its URL.
    pub url: Secret,
    /// A bearer token, if any.
    pub token: Option<Secret>,
}

/// Why a notice could not be delivered.
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
    /// The request could not be built (a header value that is not one).
    #[error("the webhook request could not be built")]
    Build(#[source] hyper::http::Error),
    /// The request failed or timed out.
    #[error("the webhook request failed")]
    Request(#[source] http::Error),
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

/// How bad the news is: the icon, priority and tags the formats show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something began.
    Info,
    /// Something is broken.
    Warning,
    /// Broken, and nobody is fixing it.
    Critical,
    /// Fine (again).
    Resolved,
}

impl Severity {
    /// Slack's emoji.
    fn icon(self) -> &'static str {
        match self {
            Severity::Info => ":information_source:",
            Severity::Warning => ":warning:",
            Severity::Critical => ":rotating_light:",
            Severity::Resolved => ":white_check_mark:",
        }
    }

    /// ntfy's priority and tags.
    fn ntfy(self) -> (&'static str, &'static str) {
        match self {
            Severity::Info => ("default", "information_source"),
            Severity::Warning => ("high", "warning"),
            Severity::Critical => ("urgent", "rotating_light"),
            Severity::Resolved => ("default", "white_check_mark"),
        }
    }
}

/// One notification, in the words each format needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// How bad.
    pub severity: Severity,
    /// A headline (ntfy's title).
    pub title: String,
    /// The whole news in one line (Slack's text, after the icon).
    pub text: String,
    /// The details (ntfy's body).
    pub body: String,
    /// The generic JSON body.
    pub json: serde_json::Value,
}

/// One webhook request: method POST, these headers, this body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
}

/// What `notice` looks like for a webhook of `format` (pure).
pub fn payload(format: Format, notice: &Notice) -> Payload {
    match format {
        Format::Json => Payload {
            headers: vec![("content-type", "application/json".into())],
            body: notice.json.to_string(),
        },
        Format::Slack => Payload {
            headers: vec![("content-type", "application/json".into())],
            body:
                serde_json::json!({"text": format!("{} {}", notice.severity.icon(), notice.text)})
                    .to_string(),
        },
        Format::Ntfy => {
            let (priority, tags) = notice.severity.ntfy();
            Payload {
                headers: vec![
                    ("title", notice.title.clone()),
                    ("priority", priority.into()),
                    ("tags", tags.into()),
                ],
                body: notice.body.clone(),
            }
        }
    }
}

/// POSTs `payload` to `target`: up to three attempts (1 s, then 2 s
/// apart... doubling), each bounded; a 4xx other than 429 is not retried.
pub async fn deliver(
    client: &Client,
    target: &Target,
    payload: &Payload,
    user_agent: &str,
) -> Result<(), Error> {
    let url = read(&target.url, "url")?;
    let uri = http::uri(&url).ok_or(Error::Url)?;
    let token = target
        .token
        .as_ref()
        .map(|t| read(t, "token"))
        .transpose()?;
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
        let mut request = hyper::Request::post(uri.clone()).header("user-agent", user_agent);
        for (name, value) in &payload.headers {
            request = request.header(*name, value);
        }
        if let Some(token) = &token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(payload.body.clone())))
            .map_err(Error::Build)?;
        match http::exchange(client, request, TIMEOUT).await {
            Err(e) => last = Some(Error::Request(e)),
            Ok((status, _)) => {
                if status.is_success() {
                    return Ok(());
                }
                last = Some(Error::Status(status.as_u16()));
                // A 4xx will not get better by retrying (except 429).
                if status.is_client_error() && status.as_u16() != 429 {
                    break;
                }
            }
        }
    }
    // ATTEMPTS > 0: the last attempt left its error.
    Err(last.unwrap_or(Error::Status(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn each_format_shapes_the_same_notice() {
        let notice = Notice {
            severity: Severity::Critical,
            title: "rollout stopped at theoden".into(),
            text: "rollout stopped at theoden: storage not healthy".into(),
            body: "storage not healthy\nwhat to do: rerun".into(),
            json: serde_json::json!({"event": "stopped", "node": "theoden"}),
        };
        let json = payload(Format::Json, &notice);
        assert_eq!(json.body, r#"{"event":"stopped","node":"theoden"}"#);
        let slack = payload(Format::Slack, &notice);
        assert_eq!(
            slack.body,
            r#"{"text":":rotating_light: rollout stopped at theoden: storage not healthy"}"#
        );
        let ntfy = payload(Format::Ntfy, &notice);
        assert_eq!(
            ntfy.headers,
            [
                ("title", "rollout stopped at theoden".to_owned()),
                ("priority", "urgent".to_owned()),
                ("tags", "rotating_light".to_owned())
            ]
        );
        assert_eq!(ntfy.body, "storage not healthy\nwhat to do: rerun");
    }
}
