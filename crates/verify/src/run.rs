//! The thin adapter between the pure parts and the API (kube-rs): pick the
//! nodes, sweep what killed runs left, create the Service and the pods,
//! follow them until they settle or the time is up, judge, and delete
//! everything this run made, whatever happened (cancellation included).
//!
//! Pods are followed by listing them (and their sandbox events) every
//! half second: a run lasts seconds, one list per poll is bounded and rides
//! out an API hiccup without watch bookkeeping.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::judge::{self, End, Observed, Terminated, Verdict};
use crate::spec::{Run, Target};
use crate::{EXPIRES_ANNOTATION, NAME, NAME_LABEL};

/// How often pods and events are read while waiting.
const POLL: Duration = Duration::from_millis(500);
/// Margin past the run's timeout after which its objects are leftovers.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Pods created at once.
const CREATE_CONCURRENCY: usize = 16;

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Namespace for the pods and the Service.
    pub namespace: String,
    /// Probe image.
    pub image: String,
    /// Only these nodes (all when empty).
    pub nodes: Vec<String>,
    /// Only nodes matching this label selector.
    pub selector: Option<String>,
    /// Bound on the whole run (cleanup excluded).
    pub timeout: Duration,
    /// The probes' port.
    pub port: u16,
}

/// Why verify could not run; every variant means "could not verify".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing Nodes failed.
    #[error("failed to list nodes")]
    ListNodes(#[source] kube::Error),
    /// `--node` named nodes that do not exist (or do not match `-l`).
    #[error("no such node: {} (nodes: {})", .0.join(", "), .1.join(", "))]
    NoSuchNode(Vec<String>, Vec<String>),
    /// The selection is empty.
    #[error("no node to verify{}", .0.as_deref().map(|s| format!(" matches {s:?}")).unwrap_or_default())]
    NoNodes(Option<String>),
    /// The namespace does not exist.
    #[error(
        "namespace {0:?} does not exist: create it (kubectl create namespace {0}) or pass --namespace"
    )]
    NoNamespace(String),
    /// Creating the headless Service failed.
    #[error("failed to create the Service {0}")]
    CreateService(String, #[source] kube::Error),
}

impl Error {
    /// Whether a later run may succeed as it is: an API call the server was
    /// too busy for or that never reached it. A missing node, selection or
    /// namespace, and a refusal, need a fix first.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::ListNodes(e) | Error::CreateService(_, e) => transient(e),
            Error::NoSuchNode(..) | Error::NoNodes(_) | Error::NoNamespace(_) => false,
        }
    }
}

/// The server busy or away, rather than saying no.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// A finished run.
#[derive(Debug)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Objects that could not be deleted (a later run removes them).
    pub cleanup_errors: Vec<String>,
    /// The last API error while following the pods, if reads failed.
    pub read_error: Option<String>,
}

/// The nodes to verify, in name order.
pub async fn targets(client: &Client, options: &Options) -> Result<Vec<Target>, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut params = ListParams::default();
    if let Some(s) = &options.selector {
        params = params.labels(s);
    }
    let list = api.list(&params).await.map_err(Error::ListNodes)?;
    let mut all: Vec<Target> = list.items.iter().map(target).collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    if options.nodes.is_empty() {
        if all.is_empty() {
            return Err(Error::NoNodes(options.selector.clone()));
        }
        return Ok(all);
    }
    let missing: Vec<String> = options
        .nodes
        .iter()
        .filter(|n| !all.iter().any(|t| &t.name == *n))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(Error::NoSuchNode(
            missing,
            all.into_iter().map(|t| t.name).collect(),
        ));
    }
    all.retain(|t| options.nodes.contains(&t.name));
    Ok(all)
}

fn target(node: &Node) -> Target {
    let spec = node.spec.as_ref();
    let mut pod_cidrs = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
    if pod_cidrs.is_empty()
        && let Some(c) = spec.and_then(|s| s.pod_cidr.clone())
    {
        pod_cidrs.push(c);
    }
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    Target {
        name: node.metadata.name.clone().unwrap_or_default(),
        pod_cidrs,
        ready,
    }
}

/// A new run over `targets`, its id random.
pub fn new_run(options: &Options, targets: Vec<Target>, now: jiff::Timestamp) -> Run {
    let expires = now
        .checked_add(options.timeout + EXPIRY_MARGIN)
        .unwrap_or(now)
        .to_string();
    Run {
        id: run_id(),
        namespace: options.namespace.clone(),
        image: options.image.clone(),
        port: options.port,
        wait: Run::wait_for(options.timeout),
        expires,
        targets,
    }
}

/// Eight random lower-case hex digits.
fn run_id() -> String {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
    let mut id: String = uuid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    if id.len() < 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        id = format!("{:08x}", (t ^ u128::from(std::process::id())) & 0xffff_ffff);
    }
    id
}

/// Deletes the pods and Services of earlier runs that are past their
/// expiry (killed runs); returns their names. Runs still going are left alone.
pub async fn sweep(client: &Client, namespace: &str, now: jiff::Timestamp) -> Vec<String> {
    let selector = ListParams::default().labels(&format!("{NAME_LABEL}={NAME}"));
    let expired = |meta: &kube::api::ObjectMeta| {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(EXPIRES_ANNOTATION))
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_none_or(|t| t < now)
    };
    let mut gone = Vec::new();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = pods.list(&selector).await {
        for p in list.items.iter().filter(|p| expired(&p.metadata)) {
            let name = p.metadata.name.clone().unwrap_or_default();
            if pods.delete(&name, &now_params()).await.is_ok() {
                gone.push(format!("pod/{name}"));
            }
        }
    }
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = services.list(&selector).await {
        for s in list.items.iter().filter(|s| expired(&s.metadata)) {
            let name = s.metadata.name.clone().unwrap_or_default();
            if services
                .delete(&name, &DeleteParams::default())
                .await
                .is_ok()
            {
                gone.push(format!("service/{name}"));
            }
        }
    }
    gone
}

/// Probe pods have nothing to shut down, and a pod on a broken or dead
/// node must not stay Terminating (the stale pods of the incident): delete
/// at once.
fn now_params() -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    }
}

/// Runs `run`: creates, follows until settled, `timeout` or `cancel`, judges
/// and always cleans up.
pub async fn execute(
    client: &Client,
    run: &Run,
    timeout: Duration,
    cancel: impl Future<Output = ()>,
) -> Result<Outcome, Error> {
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut state = State::new(run);
    let work = async {
        create(client, run, &mut state).await?;
        follow(client, run, &mut state, started, deadline).await;
        Ok::<End, Error>(if state.settled(run, started.elapsed()) {
            End::Settled
        } else {
            End::TimedOut
        })
    };
    let end = tokio::select! {
        r = work => r,
        () = cancel => Ok(End::Interrupted),
    };
    // Whatever happened above, nothing of this run stays.
    let cleanup_errors = cleanup(client, run).await;
    let end = end?;
    if end == End::Interrupted {
        // One last look, so an interrupted run still reports what it saw.
        let _ = tokio::time::timeout(Duration::from_secs(2), state.read(client, run)).await;
    }
    let observed = state.observed(run);
    Ok(Outcome {
        verdict: judge::judge(&observed, end),
        cleanup_errors,
        read_error: state.read_error.clone(),
    })
}

/// What is known so far, per target index.
struct State {
    create_errors: BTreeMap<usize, String>,
    pods: BTreeMap<String, Pod>,
    events: BTreeMap<String, Vec<(String, String)>>,
    read_error: Option<String>,
    seen: bool,
}

impl State {
    fn new(_run: &Run) -> State {
        State {
            create_errors: BTreeMap::new(),
            pods: BTreeMap::new(),
            events: BTreeMap::new(),
            read_error: None,
            seen: false,
        }
    }

    async fn read(&mut self, client: &Client, run: &Run) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &run.namespace);
        match pods
            .list(&ListParams::default().labels(&run.selector()))
            .await
        {
            Ok(list) => {
                self.seen = true;
                self.pods = list
                    .items
                    .into_iter()
                    .filter_map(|p| Some((p.metadata.name.clone()?, p)))
                    .collect();
            }
            Err(e) => self.read_error = Some(e.to_string()),
        }
        let events: Api<Event> = Api::namespaced(client.clone(), &run.namespace);
        let params =
            ListParams::default().fields("involvedObject.kind=Pod,reason=FailedCreatePodSandBox");
        match events.list(&params).await {
            Ok(list) => {
                let prefix = format!("rgv-{}-", run.id);
                let mut by_pod: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
                for e in list.items {
                    let Some(pod) = e.involved_object.name.clone() else {
                        continue;
                    };
                    if !pod.starts_with(&prefix) {
                        continue;
                    }
                    let when = e
                        .last_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                        .unwrap_or_default();
                    by_pod
                        .entry(pod)
                        .or_default()
                        .push((when, e.message.clone().unwrap_or_default()));
                }
                for list in by_pod.values_mut() {
                    list.sort();
                }
                self.events = by_pod;
            }
            Err(e) => self.read_error = Some(e.to_string()),
        }
    }

    fn pod(&self, run: &Run, index: usize) -> Option<&Pod> {
        self.pods.get(&run.pod_name(index))
    }

    /// Every probe settled: terminated, or (once the probes' wait is over)
    /// without networking and with a reason (a sandbox event, a node not
    /// Ready) that waiting longer will not change.
    fn settled(&self, run: &Run, elapsed: Duration) -> bool {
        if !self.seen {
            return false;
        }
        let waited = elapsed >= run.wait + Duration::from_secs(2);
        (0..run.targets.len()).all(|i| {
            if self.create_errors.contains_key(&i) {
                return true;
            }
            let Some(pod) = self.pod(run, i) else {
                return waited;
            };
            let view = view(pod);
            if view.terminated.is_some() {
                return true;
            }
            let stuck = view.ip.is_none()
                && (self.events.contains_key(&run.pod_name(i)) || !run.targets[i].ready);
            waited && stuck
        })
    }

    fn observed(&self, run: &Run) -> Vec<Observed> {
        run.targets
            .iter()
            .enumerate()
            .map(|(i, t)| Observed {
                node: t.name.clone(),
                node_ready: t.ready,
                create_error: self.create_errors.get(&i).cloned(),
                pod: self.pod(run, i).map(view),
                sandbox_events: self
                    .events
                    .get(&run.pod_name(i))
                    .map(|l| l.iter().map(|(_, m)| m.clone()).collect())
                    .unwrap_or_default(),
            })
            .collect()
    }
}

/// The judge's view of a pod.
pub fn view(pod: &Pod) -> judge::Pod {
    let status = pod.status.as_ref();
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first());
    let state = container.and_then(|c| c.state.as_ref());
    judge::Pod {
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        ip: status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok()),
        terminated: state
            .and_then(|s| s.terminated.as_ref())
            .map(|t| Terminated {
                exit_code: t.exit_code,
                reason: t.reason.clone().unwrap_or_default(),
                message: t.message.clone().unwrap_or_default(),
            }),
        waiting: state.and_then(|s| s.waiting.as_ref()).map(|w| {
            (
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default(),
            )
        }),
    }
}

async fn create(client: &Client, run: &Run, state: &mut State) -> Result<(), Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), &run.namespace);
    let service: Service = serde_json::from_value(run.service())
        .map_err(|e| Error::CreateService(run.service_name(), kube::Error::SerdeError(e)))?;
    if let Err(e) = services.create(&PostParams::default(), &service).await {
        if let kube::Error::Api(s) = &e
            && s.code == 404
        {
            return Err(Error::NoNamespace(run.namespace.clone()));
        }
        return Err(Error::CreateService(run.service_name(), e));
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &run.namespace);
    let results: Vec<(usize, Result<(), String>)> = futures::stream::iter(0..run.targets.len())
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod: Result<Pod, String> =
                    serde_json::from_value(run.pod(i)).map_err(|e| e.to_string());
                let r = match pod {
                    Ok(pod) => pods
                        .create(&PostParams::default(), &pod)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                (i, r)
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    for (i, r) in results {
        if let Err(e) = r {
            state.create_errors.insert(i, e);
        }
    }
    Ok(())
}

async fn follow(
    client: &Client,
    run: &Run,
    state: &mut State,
    started: tokio::time::Instant,
    deadline: tokio::time::Instant,
) {
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if tokio::time::timeout(left, state.read(client, run))
            .await
            .is_err()
        {
            return;
        }
        if state.settled(run, started.elapsed()) || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until((tokio::time::Instant::now() + POLL).min(deadline)).await;
    }
}

/// Deletes this run's pods (at once) and Service; what could not be
/// deleted, in words. A create that was in flight when the run was
/// cancelled may land after the first pass, hence the second look.
pub async fn cleanup(client: &Client, run: &Run) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &run.namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), &run.namespace);
    let selector = ListParams::default().labels(&run.selector());
    let mut errors = Vec::new();
    for pass in 0..2 {
        if pass > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        errors.clear();
        match pods.list(&selector).await {
            Ok(list) => {
                for p in list.items {
                    let name = p.metadata.name.unwrap_or_default();
                    if let Err(e) = pods.delete(&name, &now_params()).await
                        && !not_found(&e)
                    {
                        errors.push(format!("pod {}/{name}: {e}", run.namespace));
                    }
                }
            }
            Err(e) => errors.push(format!("pods of run {} in {}: {e}", run.id, run.namespace)),
        }
        if let Err(e) = services
            .delete(&run.service_name(), &DeleteParams::default())
            .await
            && !not_found(&e)
        {
            errors.push(format!(
                "service {}/{}: {e}",
                run.namespace,
                run.service_name()
            ));
        }
    }
    errors
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_or_unreachable_api_is_worth_another_run() {
        let away = kube::Error::Service("connection refused".into());
        assert!(Error::ListNodes(away).is_retryable());
        let garbled = serde_json::from_str::<u8>("x").expect_err("not JSON");
        let garbled = kube::Error::SerdeError(garbled);
        assert!(!Error::CreateService("svc".into(), garbled).is_retryable());
        assert!(!Error::NoNodes(None).is_retryable());
        assert!(!Error::NoNamespace("rebootguard".into()).is_retryable());
    }
}
