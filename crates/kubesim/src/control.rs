//! The HTTP control API under `/kubesim/`: the same fault injection and
//! request counters as the Rust handle, for the lab binary and shell tests.
//!
//! | path | effect |
//! |---|---|
//! | `requests[?userAgent=UA]` | request counts per user agent, verb and resource |
//! | `requests/reset` | forget the counts |
//! | `latency?ms=N[&verb=V][&resource=R]` | add latency to matching requests |
//! | `fail?count=N&code=429\|500\|503[&retryAfter=S][&verb=V][&resource=R]` | fail the next N matching requests |
//! | `faults/clear` | remove every latency and failure rule |
//! | `watches/cut` | end every open watch |
//! | `watches/expire?count=N` | answer the next N watches with 410 |
//! | `down?seconds=N` | stop serving, then serve again on the same port after N seconds |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::faults::{Failure, Route};
use crate::shared::{ResponseBody, Shared};
use crate::status::Status;

fn ok(v: &Value) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::Full(Full::new(
        serde_json::to_vec(v).unwrap_or_default().into(),
    )));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn number<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    key: &str,
    default: Option<T>,
) -> Result<T, Status> {
    match q.get(key) {
        Some(v) => v.parse().map_err(|_| {
            Status::bad_request(format!(
                "kubesim control: {key} must be a number, got {v:?}"
            ))
        }),
        None => {
            default.ok_or_else(|| Status::bad_request(format!("kubesim control: missing ?{key}=")))
        }
    }
}

/// Serves one control request.
pub(crate) fn handle(
    shared: &Arc<Shared>,
    _method: Method,
    path: &str,
    q: &HashMap<String, String>,
    _body: &[u8],
) -> Result<Response<ResponseBody>, Status> {
    match path.trim_end_matches('/') {
        "requests" => {
            let counts = shared.faults().counts_by_agent().clone();
            let wanted = q.get("userAgent");
            let rows: Vec<Value> = counts
                .iter()
                .filter(|((agent, _, _), _)| wanted.is_none_or(|w| w == agent))
                .map(|((agent, verb, resource), n)| {
                    json!({"userAgent": agent, "verb": verb, "resource": resource, "count": n})
                })
                .collect();
            Ok(ok(&json!({"requests": rows})))
        }
        "requests/reset" => {
            shared.faults().reset_counts();
            Ok(ok(&json!({"reset": true})))
        }
        "latency" => {
            let ms: u64 = number(q, "ms", None)?;
            shared
                .faults()
                .add_latency(route_from(q), Duration::from_millis(ms));
            Ok(ok(&json!({"latencyMs": ms})))
        }
        "fail" => {
            let count: u32 = number(q, "count", Some(1))?;
            let code: u16 = number(q, "code", None)?;
            let retry: u32 = number(q, "retryAfter", Some(1))?;
            let failure = failure_from(code, retry).ok_or_else(|| {
                Status::bad_request(format!(
                    "kubesim control: code must be 429, 500 or 503, got {code}"
                ))
            })?;
            shared.faults().fail_next(route_from(q), count, failure);
            Ok(ok(&json!({"failNext": count, "code": code})))
        }
        "faults/clear" => {
            shared.faults().clear();
            Ok(ok(&json!({"cleared": true})))
        }
        "watches/cut" => {
            shared.cut.send_modify(|g| *g += 1);
            Ok(ok(&json!({"cut": true})))
        }
        "watches/expire" => {
            let count: u32 = number(q, "count", Some(1))?;
            shared.faults().expire_next_watches(count);
            Ok(ok(&json!({"expireNext": count})))
        }
        "down" => {
            let seconds: f64 = number(q, "seconds", None)?;
            if !(0.0..=3600.0).contains(&seconds) {
                return Err(Status::bad_request(
                    "kubesim control: seconds must be between 0 and 3600",
                ));
            }
            let shared = shared.clone();
            tokio::spawn(async move {
                // Let this response leave before the connection is dropped.
                tokio::time::sleep(Duration::from_millis(50)).await;
                crate::stop(&shared).await;
                tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                if let Err(e) = crate::serve(&shared) {
                    tracing::error!(error = %e, "kubesim could not serve again after going down");
                }
            });
            Ok(ok(&json!({"downForSeconds": seconds})))
        }
        other => Err(Status::no_route(&format!("/kubesim/{other}"))),
    }
}

/// A failure rule from the control API's JSON.
fn failure_from(code: u16, retry_after: u32) -> Option<Failure> {
    match code {
        429 => Some(Failure::TooManyRequests { retry_after }),
        500 => Some(Failure::Internal),
        503 => Some(Failure::Unavailable),
        _ => None,
    }
}

/// A latency/failure route from the control API's query.
fn route_from(q: &HashMap<String, String>) -> Route {
    Route {
        verb: q.get("verb").cloned(),
        resource: q.get("resource").cloned(),
    }
}
