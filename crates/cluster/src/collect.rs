//! Live collection of a diagnosis [`Snapshot`]: every kind diagnosis reads
//! (`diagnose::snapshot::KINDS`), listed concurrently and page by page, with what could not be read (RBAC,
//! an API not served) recorded so the report says it is degraded.
//!
//! Lists go out as plain HTTP GETs of raw JSON pages (`limit` + `continue`),
//! and each item goes straight into the snapshot's builder: no typed
//! round-trip through k8s-openapi for 150,000 pods.

use std::time::Duration;

use futures::future::join_all;
use rebootguard_diagnose::Snapshot;
use rebootguard_diagnose::snapshot::{Builder, KINDS, Kind};
use serde::Deserialize;
use serde_json::Value;

/// Items per page, as kubectl uses.
const PAGE: u32 = 500;

fn label(kind: &Kind) -> String {
    if kind.group.is_empty() {
        format!("v1 {}", kind.kind)
    } else {
        format!("{} {}", kind.group, kind.kind)
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Vec<Value>,
}

#[derive(Default, Deserialize)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(rename = "preferredVersion")]
    preferred: Option<GroupVersion>,
    #[serde(default)]
    versions: Vec<GroupVersion>,
}

#[derive(Deserialize)]
struct GroupVersion {
    version: String,
}

/// Why one kind could not be listed.
enum Failure {
    /// Not installed (404): only a loss for built-in kinds.
    NotServed,
    /// Anything else: RBAC, timeouts, server errors.
    Other(String),
}

/// Lists every kind (each request bounded by `bound`) into a snapshot.
/// `source` names the cluster (e.g. the kubeconfig context).
pub async fn collect(client: &kube::Client, source: &str, bound: Duration) -> Snapshot {
    collect_kinds(client, source, bound, &KINDS).await
}

/// Lists only `kinds` (a use that reads less, so that a role granting
/// only those can run it without warnings).
pub async fn collect_kinds(
    client: &kube::Client,
    source: &str,
    bound: Duration,
    kinds: &[Kind],
) -> Snapshot {
    let results = join_all(kinds.iter().map(|kind| list_kind(client, kind, bound))).await;
    let mut builder = Builder::new(jiff::Timestamp::now(), source);
    for (kind, result) in kinds.iter().zip(results) {
        match result {
            Ok(items) => {
                for item in items {
                    if let Err(e) = builder.add_value(item) {
                        tracing::debug!("skipped a {}: {e}", kind.kind);
                    }
                }
            }
            Err(Failure::NotServed) if kind.optional => {}
            Err(Failure::NotServed) => {
                builder.missing(label(kind), "not served by this API server");
            }
            Err(Failure::Other(reason)) => {
                tracing::warn!("cannot list {}: {reason}", label(kind));
                builder.missing(label(kind), reason);
            }
        }
    }
    builder.build()
}

async fn list_kind(
    client: &kube::Client,
    kind: &Kind,
    bound: Duration,
) -> Result<Vec<Value>, Failure> {
    if !kind.optional {
        return list_version(client, kind, kind.version, bound).await;
    }
    // A kind may be served only in an older version than its group
    // prefers (Flux's OCIRepository is v1beta2 until Flux 2.6, while its
    // group prefers v1): the next served version is tried on a 404.
    for version in served_versions(client, kind.group, bound).await? {
        match list_version(client, kind, &version, bound).await {
            Err(Failure::NotServed) => continue,
            listed => return listed,
        }
    }
    Err(Failure::NotServed)
}

/// The versions `group` serves, the preferred one first: CRDs serve
/// different versions across releases.
async fn served_versions(
    client: &kube::Client,
    group: &str,
    bound: Duration,
) -> Result<Vec<String>, Failure> {
    let group: Group = get(client, &format!("/apis/{group}"), bound).await?;
    let preferred = group.preferred.ok_or(Failure::NotServed)?.version;
    let mut versions: Vec<String> = group
        .versions
        .into_iter()
        .map(|v| v.version)
        .filter(|v| *v != preferred)
        .collect();
    versions.insert(0, preferred);
    Ok(versions)
}

/// Lists `kind` at `version`, page by page.
async fn list_version(
    client: &kube::Client,
    kind: &Kind,
    version: &str,
    bound: Duration,
) -> Result<Vec<Value>, Failure> {
    let (mut prefix, api_version) = if kind.group.is_empty() {
        (format!("/api/{version}"), version.to_owned())
    } else {
        (
            format!("/apis/{}/{version}", kind.group),
            format!("{}/{version}", kind.group),
        )
    };
    if let Some(namespace) = kind.namespace {
        prefix.push_str(&format!("/namespaces/{namespace}"));
    }
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut path = format!("{prefix}/{}?limit={PAGE}", kind.plural);
        if let Some(token) = &next {
            path.push_str("&continue=");
            path.push_str(&encode(token));
        }
        let page: Page = get(client, &path, bound).await?;
        // List items carry neither apiVersion nor kind: put them back.
        items.extend(page.items.into_iter().map(|mut item| {
            if let Value::Object(map) = &mut item {
                map.insert("apiVersion".into(), Value::String(api_version.clone()));
                map.insert("kind".into(), Value::String(kind.kind.to_owned()));
            }
            item
        }));
        match page.metadata.next.filter(|t| !t.is_empty()) {
            Some(token) => next = Some(token),
            None => return Ok(items),
        }
    }
}

async fn get<T: serde::de::DeserializeOwned>(
    client: &kube::Client,
    path: &str,
    bound: Duration,
) -> Result<T, Failure> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| Failure::Other(e.to_string()))?;
    match tokio::time::timeout(bound, client.request::<T>(request)).await {
        Err(_) => Err(Failure::Other(format!(
            "no successful answer within {bound:?} (unreachable, or throttling or failing: the log shows what it answered)"
        ))),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => Err(Failure::NotServed),
        Ok(Err(kube::Error::Api(status))) if status.code == 403 => {
            Err(Failure::Other(format!("forbidden: {}", status.message)))
        }
        // The whole chain: kube's top line alone ("client error
        // (SendRequest)") does not say that the connection was closed.
        Ok(Err(e)) => Err(Failure::Other(rebootguard_errors::chain(&e))),
    }
}

/// Percent-encodes a continue token for a query string.
fn encode(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for byte in token.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_are_encoded() {
        assert_eq!(encode("eyJ2Ijo+MX0="), "eyJ2Ijo%2BMX0%3D");
        assert_eq!(encode("plain-token_1.2~"), "plain-token_1.2~");
    }
}
