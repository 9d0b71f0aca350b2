//! What the agent counts, in OpenMetrics text on `/metrics`, and whether
//! its loop is alive on `/healthz`. Served on loopback by default: the
//! node's monitoring scrapes it, nobody else needs it.
//!
//! One family per fact, units in the names, labels bounded (the check, the
//! action, the result; never a pod name).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rebootguard_node::check::{Id, Report, Status};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabel {
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

/// Every metric the agent exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    ready: Gauge,
    failing: Family<CheckLabel, Gauge>,
    checks: Counter,
    check_seconds: Histogram,
    probes: Family<ResultLabel, Counter>,
    probe_seconds: Histogram,
    remediations: Family<ActionLabels, Counter>,
    alerts: Family<KindLabel, Counter>,
    api_errors: Family<OperationLabel, Counter>,
    exhausted: Gauge,
    /// Unix seconds of the main loop's last turn (`/healthz`).
    alive: AtomicU64,
}

impl Metrics {
    /// A registry with every family registered, for node `node`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rebootguard");
        let ready = Gauge::default();
        registry.register(
            "pod_network_ready",
            "1 when the PodNetworkReady condition is True (checks and a probe passed), else 0",
            ready.clone(),
        );
        let failing = Family::<CheckLabel, Gauge>::default();
        registry.register(
            "check_failing",
            "1 when the check fails now",
            failing.clone(),
        );
        let checks = Counter::default();
        registry.register("checks", "Check runs", checks.clone());
        let check_seconds = Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]);
        registry.register(
            "check_duration_seconds",
            "Time to gather and evaluate the checks",
            check_seconds.clone(),
        );
        let probes = Family::<ResultLabel, Counter>::default();
        registry.register("probes", "CNI ADD/DEL probes by result", probes.clone());
        let probe_seconds = Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        registry.register(
            "probe_duration_seconds",
            "Time one probe took",
            probe_seconds.clone(),
        );
        let remediations = Family::<ActionLabels, Counter>::default();
        registry.register(
            "remediations",
            "Remediation steps (restore, restart-k3s, lease) by result",
            remediations.clone(),
        );
        let alerts = Family::<KindLabel, Counter>::default();
        registry.register(
            "alerts",
            "Alerts sent (firing, escalated, resolved, failed)",
            alerts.clone(),
        );
        let api_errors = Family::<OperationLabel, Counter>::default();
        registry.register(
            "api_errors",
            "Failed API writes by operation (retried)",
            api_errors.clone(),
        );
        let exhausted = Gauge::default();
        registry.register(
            "remediation_exhausted",
            "1 while the agent has given up healing the current failure",
            exhausted.clone(),
        );
        Metrics {
            registry,
            ready,
            failing,
            checks,
            check_seconds,
            probes,
            probe_seconds,
            remediations,
            alerts,
            api_errors,
            exhausted,
            alive: AtomicU64::new(0),
        }
    }

    /// A check run and its verdicts.
    pub fn checked(&self, report: &Report, took: Duration) {
        self.checks.inc();
        self.check_seconds.observe(took.as_secs_f64());
        for id in Id::LOCAL {
            let failing = report.get(id).is_some_and(|c| c.status == Status::Fail);
            self.failing
                .get_or_create(&CheckLabel {
                    check: id.name().into(),
                })
                .set(i64::from(failing));
        }
    }

    /// A probe's result.
    pub fn probed(&self, ok: bool, took: Duration) {
        self.probe_seconds.observe(took.as_secs_f64());
        self.probes
            .get_or_create(&ResultLabel {
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }

    /// A remediation step's result.
    pub fn remediation(&self, action: &str, result: &str) {
        self.remediations
            .get_or_create(&ActionLabels {
                action: action.into(),
                result: result.into(),
            })
            .inc();
    }

    /// An alert sent (or that failed).
    pub fn alert(&self, kind: &str) {
        self.alerts
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// A failed API write.
    pub fn api_error(&self, operation: &str) {
        self.api_errors
            .get_or_create(&OperationLabel {
                operation: operation.into(),
            })
            .inc();
    }

    /// The condition as written.
    pub fn condition(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Whether the ladder gave up.
    pub fn exhausted(&self, exhausted: bool) {
        self.exhausted.set(i64::from(exhausted));
    }

    /// The main loop turned.
    pub fn alive(&self) {
        self.alive.store(unix_now(), Ordering::Relaxed);
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Whether the main loop turned within `stale`.
    pub fn healthy(&self, stale: Duration) -> bool {
        unix_now().saturating_sub(self.alive.load(Ordering::Relaxed)) <= stale.as_secs()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves `/metrics` and `/healthz` on `addr` until the task is dropped.
/// `stale`: how long the main loop may stay quiet before `/healthz` fails.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stale: Duration,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    serve_with(addr, move |path| answer(&metrics, path, stale)).await
}

/// A page: its HTTP status, content type and body.
pub type Page = (u16, &'static str, String);

/// Serves GET answers from `answer` (the path in, the page out) on
/// `addr` until the task is dropped: the small HTTP endpoint the agent and
/// the controller share for `/metrics` and `/healthz`.
pub async fn serve_with(
    addr: SocketAddr,
    answer: impl Fn(&str) -> Page + Send + Sync + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let answer = Arc::new(answer);
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let response = respond(answer(req.uri().path()));
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }))
}

fn respond((status, content_type, body): Page) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The OpenMetrics content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn answer(metrics: &Metrics, path: &str, stale: Duration) -> Page {
    match path {
        "/metrics" => (200, OPENMETRICS, metrics.encode()),
        "/healthz" if metrics.healthy(stale) => (200, "text/plain", "ok\n".into()),
        "/healthz" => (503, "text/plain", "the agent's loop has stalled\n".into()),
        _ => (
            404,
            "text/plain",
            "not found: try /metrics or /healthz\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_encode_with_units_and_bounded_labels() {
        let m = Metrics::new();
        m.condition(true);
        m.remediation("restore", "ok");
        m.alert("firing");
        m.probed(true, Duration::from_millis(120));
        let text = m.encode();
        for line in [
            "rebootguard_pod_network_ready 1",
            "rebootguard_remediations_total{action=\"restore\",result=\"ok\"} 1",
            "rebootguard_alerts_total{kind=\"firing\"} 1",
            "rebootguard_probes_total{result=\"ok\"} 1",
            "# TYPE rebootguard_probe_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn healthz_follows_the_loop() {
        let m = Metrics::new();
        assert_eq!(answer(&m, "/healthz", Duration::from_secs(60)).0, 503);
        m.alive();
        assert_eq!(answer(&m, "/healthz", Duration::from_secs(60)).0, 200);
        assert_eq!(answer(&m, "/nope", Duration::from_secs(60)).0, 404);
    }
}
