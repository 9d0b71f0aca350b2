//! `rebootguard reboot` against a live cluster: reboots nodes one at a
//! time and moves on only when the rebooted node really works.
//!
//! The judgement is in `rebootguard-rollout` (the plan, the gates, one
//! node's state machine, resume rules); this crate reads the cluster into
//! its shapes ([`observe`]), carries its actions out ([`act`]) and runs the
//! loop ([`run`]). The rollout's state lives in the cluster, not here: a
//! `coordination.k8s.io` Lease (holder, TTL, renewed while running, the
//! plan in an annotation) and a progress annotation on each Node, so a
//! rerun after a crash continues at the same node and phase, a second
//! rollout is refused with the holder's name, and a vanished holder blocks
//! only until its Lease expires.

pub mod act;
pub mod controller;
pub mod notify;
pub mod observe;
pub mod verify;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease as LeaseObject;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use rebootguard_cluster::lease::{Lock, Outcome as LockOutcome};
use rebootguard_cluster::reboot::Request;
use rebootguard_errors::Failure;
use rebootguard_rollout::gates::{self, Gate};
use rebootguard_rollout::machine::{
    self, Action, Config, How, Lease, Mark, Node, Phase, Seen, Stop,
};
use rebootguard_rollout::plan::{self, Order};
use rebootguard_rollout::progress::{self, ANNOTATION, Holder, Plan, Progress};
use rebootguard_rollout::window::Window;
use serde::Serialize;

pub use verify::{Probes, Verifier};

/// Why a rollout could not run (exit 2), as opposed to stopping at a node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed (retryable when the API comes back).
    #[error("failed to {what}")]
    Api {
        /// What was attempted.
        what: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// An API call got no answer in time (retryable).
    #[error(
        "no successful answer from the API server within {bound:?} ({what}; unreachable, or throttling or failing: the log shows what it answered)"
    )]
    Timeout {
        /// What was attempted.
        what: String,
        /// The bound.
        bound: Duration,
    },
    /// A cluster helper failed.
    #[error("failed to write the {what}")]
    Cluster {
        /// What was written.
        what: String,
        /// The cause.
        #[source]
        source: rebootguard_cluster::node::Error,
    },
    /// The reboot command or a cleanup failed.
    #[error("{0}")]
    Command(String),
    /// Another rollout holds the Lease and renews it.
    #[error("another rollout is running: the Lease {lease} is held by {holder}")]
    Busy {
        /// The Lease.
        lease: String,
        /// Its holder.
        holder: String,
    },
    /// Nodes asked for that the cluster does not have.
    #[error("no such node(s): {}", .0.join(", "))]
    Unknown(Vec<String>),
    /// Nothing to reboot.
    #[error("no node matches the selection")]
    Empty,
    /// No HTTP client for Prometheus.
    #[error("cannot set up the HTTP client for --prometheus")]
    Http(#[source] std::io::Error),
}

impl Error {
    /// Whether trying again can succeed: not when the API refused the
    /// credentials or the request on principle (401, 403, 400, 422), nor
    /// for a selection or setup that is wrong.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api {
                source: kube::Error::Api(status),
                ..
            } => !matches!(status.code, 400 | 401 | 403 | 422),
            Self::Cluster { source, .. } => !matches!(
                source,
                rebootguard_cluster::node::Error::Forbidden { .. }
                    | rebootguard_cluster::node::Error::NotFound(_)
            ),
            Self::Api { .. } | Self::Timeout { .. } | Self::Command(_) | Self::Busy { .. } => true,
            Self::Unknown(_) | Self::Empty | Self::Http(_) => false,
        }
    }
}

/// What the rollout does and how long it waits.
#[derive(Debug, Clone)]
pub struct Options {
    /// Nodes by name, in the operator's order (empty: `selector`, else all).
    pub nodes: Vec<String>,
    /// A label selector for the nodes.
    pub selector: Option<String>,
    /// Agents first, or as given.
    pub order: Order,
    /// How each reboot is asked for.
    pub how: How,
    /// The reboot command's argv (`{node}` replaced), for [`How::Command`].
    pub command: Vec<String>,
    /// Delete pods PDBs keep once the drain timed out.
    pub force: bool,
    /// The waits.
    pub timeouts: machine::Timeouts,
    /// Grace period for evicted pods (`None`: each pod's own).
    pub grace: Option<u32>,
    /// The Lease's namespace and name.
    pub lease: (String, String),
    /// The Lease's TTL (renewed every third).
    pub lease_ttl: Duration,
    /// Who we are in the Lease.
    pub holder: String,
    /// How often the cluster is looked at.
    pub poll: Duration,
    /// Bound on each API call.
    pub bound: Duration,
    /// Print the plan and every gate's answer; change nothing.
    pub dry_run: bool,
    /// A Prometheus (its base URL): a node starts only while no alert
    /// fires there.
    pub prometheus: Option<String>,
    /// Alert names that do not count (they fire on purpose).
    pub ignore_alerts: Vec<String>,
    /// Maintenance windows: a node starts only while one is open (none:
    /// any time). A node already past its gates finishes even if the
    /// window closes meanwhile.
    pub windows: Vec<Window>,
}

impl Options {
    /// Defaults for the given nodes.
    pub fn new(nodes: Vec<String>) -> Options {
        Options {
            nodes,
            selector: None,
            order: Order::AgentsFirst,
            how: How::Agent,
            command: Vec::new(),
            force: false,
            timeouts: machine::Timeouts::default(),
            grace: None,
            lease: ("kube-system".into(), "rebootguard-reboot".into()),
            lease_ttl: Duration::from_secs(60),
            holder: default_holder(),
            poll: Duration::from_millis(500),
            bound: Duration::from_secs(15),
            dry_run: false,
            windows: Vec::new(),
            prometheus: None,
            ignore_alerts: rebootguard_alert::prometheus::DEFAULT_IGNORED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// `reboot/<user>@<host>/<pid>`: who holds the Lease, for the operator
/// who finds it held.
pub fn default_holder() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("reboot/{user}@{host}/{}", std::process::id())
}

/// One line of the rollout's event stream (`--json` prints each as a line).
#[derive(Debug, Clone, Serialize)]
pub struct Update {
    /// When.
    pub at: Timestamp,
    /// `plan`, `lease`, `phase` (a node entered a phase), `note`,
    /// `timeline`, `stopped`, `done`.
    pub event: &'static str,
    /// The node, when about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The node's phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    /// Event reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// For people.
    pub message: String,
    /// A warning.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    /// Structured details (the plan, a gate, a timeline, a stop).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

impl Update {
    /// An update now, without phase, reason or data.
    pub fn new(event: &'static str, node: Option<&str>, message: impl Into<String>) -> Update {
        Update {
            at: Timestamp::now(),
            event,
            node: node.map(str::to_owned),
            phase: None,
            reason: None,
            message: message.into(),
            warning: false,
            data: serde_json::Value::Null,
        }
    }
}

fn update(event: &'static str, node: Option<&str>, message: String) -> Update {
    Update::new(event, node, message)
}

/// `node` entered `phase`.
fn entered(node: &str, phase: Phase) -> Update {
    let mut u = update("phase", Some(node), format!("{node}: {}", phase.name()));
    u.phase = Some(phase.name());
    u
}

/// One node's timeline entry.
#[derive(Debug, Clone, Serialize)]
pub struct Milestone {
    /// The milestone.
    pub mark: Mark,
    /// When.
    pub at: Timestamp,
    /// Seconds since the previous one.
    pub seconds: f64,
}

/// A node's timeline.
pub fn timeline(node: &Node) -> Vec<Milestone> {
    node.durations()
        .into_iter()
        .zip(&node.timeline)
        .map(|((mark, d), (_, at))| Milestone {
            mark,
            at: *at,
            seconds: d.as_secs_f64(),
        })
        .collect()
}

/// The first domino on a node, from diagnose.
#[derive(Debug, Clone, Serialize)]
pub struct Domino {
    /// What is wrong.
    pub title: String,
    /// The most telling evidence.
    pub evidence: Vec<String>,
    /// How to fix it.
    pub fix: Vec<String>,
}

/// How a rollout ended (it ran).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Outcome {
    /// Every node rebooted and verified.
    Done {
        /// The rollout.
        rollout: String,
        /// Per node, its timeline.
        nodes: Vec<(String, Vec<Milestone>)>,
    },
    /// Stopped at a node, left cordoned.
    Stopped {
        /// The rollout.
        rollout: String,
        /// The nodes done before, with their timelines.
        nodes: Vec<(String, Vec<Milestone>)>,
        /// What failed and what to do.
        stop: Stop,
        /// diagnose's first domino on that node, if it found one.
        first_domino: Option<Domino>,
    },
    /// `--dry-run`: the plan and every gate's answer now.
    DryRun {
        /// The nodes in order, each with its gates.
        plan: Vec<(String, Vec<Gate>)>,
    },
}

/// Runs a rollout; `emit` gets every update as it happens.
pub async fn run(
    client: &Client,
    options: &Options,
    verifier: Option<&dyn Verifier>,
    emit: &mut (dyn FnMut(Update) + Send),
) -> Result<Outcome, Error> {
    let bound = options.bound;
    let all = observe::nodes(client, None, bound).await?;
    let roles: Vec<(String, gates::Role)> = all
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone().unwrap_or_default(),
                observe::role(n),
            )
        })
        .collect();
    let selected: Vec<String> = if !options.nodes.is_empty() {
        options.nodes.clone()
    } else {
        observe::nodes(client, options.selector.as_deref(), bound)
            .await?
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect()
    };
    let order = plan::order(&roles, &selected, options.order).map_err(Error::Unknown)?;
    if order.is_empty() {
        return Err(Error::Empty);
    }
    let http = match &options.prometheus {
        Some(_) => Some(rebootguard_alert::http::client().map_err(Error::Http)?),
        None => None,
    };
    let http = http.as_ref();
    if options.dry_run {
        let view = gate_view(client, options, http).await?;
        let plan: Vec<(String, Vec<Gate>)> = order
            .iter()
            .map(|n| (n.clone(), gates::all(&view, n)))
            .collect();
        return Ok(Outcome::DryRun { plan });
    }

    let (namespace, name) = &options.lease;
    let lock = Lock::new(
        client.clone(),
        namespace,
        name,
        &options.holder,
        options.lease_ttl,
        bound,
    );
    let leases: Api<LeaseObject> = Api::namespaced(client.clone(), namespace);
    let previous = take_lease(&lock, &leases, options, emit).await?;
    let plan = match previous {
        Some(plan) => {
            if !options.nodes.is_empty() && options.nodes != plan.nodes {
                let mut u = update(
                    "lease",
                    None,
                    format!(
                        "the given nodes differ from the unfinished rollout's; resuming it first ({})",
                        plan.nodes.join(", ")
                    ),
                );
                u.warning = true;
                emit(u);
            }
            emit(update(
                "lease",
                None,
                format!("resuming rollout {} ({})", plan.id, plan.nodes.join(" → ")),
            ));
            plan
        }
        None => {
            let plan = Plan {
                id: format!("rollout-{}", Timestamp::now().as_second()),
                nodes: order,
            };
            write_plan(&leases, name, Some(&plan), bound).await?;
            plan
        }
    };
    let mut u = update(
        "plan",
        None,
        format!("rollout {}: {}", plan.id, plan.nodes.join(" → ")),
    );
    u.data = serde_json::json!({"rollout": plan.id, "nodes": plan.nodes, "holder": options.holder});
    emit(u);

    let config = Config {
        rollout: plan.id.clone(),
        how: options.how,
        force: options.force,
        timeouts: options.timeouts,
        renew_every: SignedDuration::try_from(options.lease_ttl / 3)
            .unwrap_or(SignedDuration::from_secs(20)),
        request_ttl: options.timeouts.down,
        verify: verifier.is_some(),
    };
    let events = act::Events::new(client.clone(), &options.holder);
    let mut done = Vec::new();
    for name in &plan.nodes {
        let now = Timestamp::now();
        let raw = observe::node(client, name, bound).await?;
        let progress = raw
            .as_ref()
            .and_then(|n| n.metadata.annotations.as_ref()?.get(ANNOTATION).cloned())
            .and_then(|v| Progress::parse(&v).ok())
            .filter(|p| p.rollout == plan.id);
        let mut node = match progress {
            Some(p) if p.phase == Phase::Done => {
                emit(update(
                    "note",
                    Some(name),
                    format!("{name} already done in this rollout"),
                ));
                continue;
            }
            Some(p) => {
                let node = Node::resume(name, &p, now);
                emit(update(
                    "note",
                    Some(name),
                    format!(
                        "resuming {name} at {} (stopped in {})",
                        node.phase.name(),
                        p.phase.name()
                    ),
                ));
                node
            }
            None => Node::new(name, now),
        };
        drive(
            client, options, http, verifier, &config, &lock, &events, &mut node, emit,
        )
        .await;
        if let Some(stop) = node.stopped.clone() {
            let first_domino = domino(client, name, bound).await;
            let mut u = update(
                "stopped",
                Some(name),
                format!("{}; {}", stop.what, stop.hint),
            );
            u.phase = Some(stop.phase.name());
            u.warning = true;
            u.data = serde_json::json!({"stop": stop, "firstDomino": first_domino, "timeline": timeline(&node)});
            emit(u);
            // The plan stays on the Lease for the rerun; the lock goes, so
            // the operator need not wait for its TTL.
            if let Err(e) = lock.release().await {
                tracing::warn!("failed to release the rollout Lease: {e}");
            }
            return Ok(Outcome::Stopped {
                rollout: plan.id,
                nodes: done,
                stop,
                first_domino,
            });
        }
        let mut u = update("timeline", Some(name), format!("{name} done"));
        u.data = serde_json::json!(timeline(&node));
        emit(u);
        done.push((name.clone(), timeline(&node)));
    }
    write_plan(&leases, name, None, bound).await?;
    if let Err(e) = lock.release().await {
        tracing::warn!("failed to release the rollout Lease: {e}");
    }
    emit(update(
        "done",
        None,
        format!("rollout {} done: {} node(s)", plan.id, done.len()),
    ));
    Ok(Outcome::Done {
        rollout: plan.id,
        nodes: done,
    })
}

/// Takes the Lease: refuses a live holder, waits out a vanished one.
/// Returns the unfinished plan it holds, if any.
async fn take_lease(
    lock: &Lock,
    leases: &Api<LeaseObject>,
    options: &Options,
    emit: &mut (dyn FnMut(Update) + Send),
) -> Result<Option<Plan>, Error> {
    let (_, name) = &options.lease;
    let mut waited = false;
    loop {
        let current = observe::bounded(
            options.bound,
            "read the rollout Lease",
            leases.get_opt(name),
        )
        .await?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let holder = spec
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty() && *h != options.holder);
        if let Some(holder) = holder {
            let renewed = spec
                .and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()))
                .map(|t| t.0);
            let ttl = SignedDuration::from_secs(
                spec.and_then(|s| s.lease_duration_seconds)
                    .map_or(0, i64::from),
            );
            match progress::holder(renewed, ttl, Timestamp::now()) {
                Holder::Alive if !waited => {
                    return Err(Error::Busy {
                        lease: format!("{}/{name}", options.lease.0),
                        holder,
                    });
                }
                Holder::Alive => {}
                Holder::Vanished { until } => {
                    if !waited {
                        emit(update(
                            "lease",
                            None,
                            format!(
                                "the Lease is held by {holder}, who stopped renewing it: waiting until it expires at {until}"
                            ),
                        ));
                    }
                    waited = true;
                }
            }
        }
        match lock.acquire().await.map_err(|e| Error::Cluster {
            what: "rollout Lease".into(),
            source: e,
        })? {
            LockOutcome::Held { took_from } => {
                if let Some(from) = took_from {
                    emit(update(
                        "lease",
                        None,
                        format!("took the rollout Lease over from {from} (expired)"),
                    ));
                }
                let plan = current
                    .as_ref()
                    .and_then(|l| l.metadata.annotations.as_ref()?.get(ANNOTATION).cloned())
                    .and_then(|v| Plan::parse(&v).ok());
                return Ok(plan);
            }
            LockOutcome::Busy { holder, .. } if !waited => {
                return Err(Error::Busy {
                    lease: format!("{}/{name}", options.lease.0),
                    holder,
                });
            }
            LockOutcome::Busy { .. } => tokio::time::sleep(options.poll).await,
        }
    }
}

/// The gates' view of the cluster now, with what the options add: the
/// maintenance windows at this instant.
pub(crate) async fn gate_view(
    client: &Client,
    options: &Options,
    http: Option<&rebootguard_alert::http::Client>,
) -> Result<gates::View, Error> {
    let mut view = observe::view(client, options.bound).await?;
    view.window = gates::Windows::new(&options.windows, Timestamp::now());
    if let (Some(url), Some(http)) = (&options.prometheus, http) {
        let alerts = rebootguard_alert::prometheus::alerts(
            http,
            url,
            &options.ignore_alerts,
            USER_AGENT,
            options.bound,
        )
        .await;
        view.firing = Some(alerts.map_err(|e| Failure::new(e, true)));
    }
    Ok(view)
}

/// Awaits `work` (a verify run, which may outlast a renewal interval)
/// while renewing the rollout Lease every `every`.
async fn renewing<T>(
    lock: &Lock,
    every: Duration,
    work: impl std::future::Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            r = &mut work => return r,
            () = tokio::time::sleep(every) => {
                if let Err(e) = lock.acquire().await {
                    tracing::warn!("failed to renew the rollout Lease during verify: {e}");
                }
            }
        }
    }
}

/// A failed verify is asked again after this long (each run creates a
/// probe pod on every node).
const VERIFY_AGAIN: Duration = Duration::from_secs(10);

/// The `User-Agent` of the rollout's own HTTP requests (Prometheus, webhooks).
pub const USER_AGENT: &str = concat!("rebootguard-reboot/", env!("CARGO_PKG_VERSION"));

/// Writes (or removes) the plan on the Lease.
pub(crate) async fn write_plan(
    leases: &Api<LeaseObject>,
    name: &str,
    plan: Option<&Plan>,
    bound: Duration,
) -> Result<(), Error> {
    let value = plan.map(Plan::to_annotation);
    let patch = serde_json::json!({"metadata": {"annotations": {ANNOTATION: value}}});
    observe::bounded(
        bound,
        "write the plan on the rollout Lease",
        leases.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await
    .map(drop)
}

/// Steps one node until it is done or stopped.
#[allow(clippy::too_many_arguments)]
async fn drive(
    client: &Client,
    options: &Options,
    http: Option<&rebootguard_alert::http::Client>,
    verifier: Option<&dyn Verifier>,
    config: &Config,
    lock: &Lock,
    events: &act::Events,
    node: &mut Node,
    emit: &mut (dyn FnMut(Update) + Send),
) {
    let bound = options.bound;
    let name = node.name.clone();
    let mut seen = Seen::default();
    let mut tick: u64 = 0;
    let mut api_down: Option<String> = None;
    // The last failing verify answers (at the gates, after the reboot)
    // and when they were asked: asked again only after VERIFY_AGAIN,
    // never on every poll.
    let mut gates_verified: Option<(std::time::Instant, verify::Failing)> = None;
    let mut network_verified: Option<(std::time::Instant, verify::Answer)> = None;
    // Where the node starts (its gates, or where a rerun resumes it).
    emit(entered(&name, node.phase));
    while !node.finished() {
        tick += 1;
        let raw = match observe::node(client, &name, bound).await {
            Ok(raw) => raw,
            Err(e) => {
                // The API may be away while a server reboots: keep the
                // clock running (the phase's timeout still applies) and
                // say so once.
                let text = e.to_string();
                if api_down.as_deref() != Some(text.as_str()) {
                    let mut u = update("note", Some(&name), format!("API unavailable: {text}"));
                    u.warning = true;
                    emit(u);
                    api_down = Some(text);
                }
                tokio::time::sleep(options.poll).await;
                continue;
            }
        };
        api_down = None;
        seen.node = raw.as_ref().map(observe::node_seen);
        if node.phase == Phase::Down
            && tick.is_multiple_of(4)
            && let (Some(id), Some(n)) = (&node.request, seen.node.as_mut())
        {
            n.refused = observe::refusal(client, &name, id, bound)
                .await
                .ok()
                .flatten();
        }
        match node.phase {
            Phase::Gates => match gate_view(client, options, http).await {
                Ok(mut view) => {
                    seen.gates = gates::all(&view, &name);
                    // The costly gate last: the others verified (probe
                    // pods on every node) only once every cheaper gate is
                    // open, and then once per look, not per poll.
                    if let Some(v) = verifier
                        && seen.gates.iter().all(|g| g.open)
                    {
                        let failing = match gates_verified.take() {
                            Some((at, last)) if at.elapsed() < VERIFY_AGAIN => last,
                            _ => renewing(lock, options.lease_ttl / 3, v.failing()).await,
                        };
                        match &failing {
                            Ok(bad) => view.verify_failed.clone_from(bad),
                            Err(e) => view.verify_error = Some(e.clone()),
                        }
                        seen.gates = gates::all(&view, &name);
                        // A pass is used once (the next look verifies
                        // anew); a failure is kept until VERIFY_AGAIN.
                        if seen.gates.iter().any(|g| !g.open) {
                            gates_verified = Some((std::time::Instant::now(), failing));
                        }
                    }
                }
                Err(e) => {
                    seen.gates = vec![Gate {
                        name: "api",
                        open: false,
                        detail: format!("cannot read the cluster: {e}"),
                        opens_at: None,
                    }];
                }
            },
            Phase::Network => {
                // Verified once the node is Ready (probes need a kubelet),
                // again every VERIFY_AGAIN while it fails.
                if let Some(v) = verifier
                    && seen.node.as_ref().is_some_and(|n| n.ready)
                {
                    let answer = match network_verified.take() {
                        Some((at, last)) if at.elapsed() < VERIFY_AGAIN => (at, last),
                        _ => {
                            let answer =
                                renewing(lock, options.lease_ttl / 3, v.verify(&name)).await;
                            (std::time::Instant::now(), answer)
                        }
                    };
                    seen.verify = Some(answer.1.clone());
                    network_verified = Some(answer);
                }
            }
            Phase::Storage => {
                seen.storage = match observe::storage(client, bound).await {
                    Ok(s) => s,
                    Err(e) => Some(vec![format!("cannot read Longhorn volumes: {e}")]),
                };
            }
            _ => {}
        }
        let before = node.phase;
        let actions = node.step(Timestamp::now(), &seen, config);
        seen = Seen::default();
        for action in actions {
            execute(
                client, options, lock, events, &name, action, &mut seen, emit, before,
            )
            .await;
        }
        if node.phase != before && node.stopped.is_none() {
            emit(entered(&name, node.phase));
        }
        if !node.finished() {
            tokio::time::sleep(options.poll).await;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    client: &Client,
    options: &Options,
    lock: &Lock,
    events: &act::Events,
    name: &str,
    action: Action,
    seen: &mut Seen,
    emit: &mut (dyn FnMut(Update) + Send),
    phase: Phase,
) {
    let bound = options.bound;
    let failed = |seen: &mut Seen, e: Error| {
        seen.failed = Some(Failure::judged(e, Error::is_retryable));
    };
    match action {
        Action::Lease => {
            seen.lease = Some(match lock.acquire().await {
                Ok(LockOutcome::Held { .. }) => Lease::Held,
                Ok(LockOutcome::Busy { holder, .. }) => Lease::Busy(holder),
                Err(e) => Lease::Failed(Failure::judged(
                    e,
                    rebootguard_cluster::node::Error::is_retryable,
                )),
            });
        }
        Action::Cordon => {
            if let Err(e) = act::cordon(client, name, true, bound).await {
                failed(seen, e);
            }
        }
        Action::Uncordon => {
            if let Err(e) = act::cordon(client, name, false, bound).await {
                failed(seen, e);
            }
        }
        Action::Evict { force } => {
            match act::evict(client, name, force, options.grace, bound).await {
                Ok(d) => seen.drain = Some(d),
                Err(e) => failed(seen, e),
            }
        }
        Action::Annotate(p) => {
            if let Err(e) = act::progress(client, name, &p, bound).await {
                failed(seen, e);
            }
        }
        Action::Request { id, expires } => {
            let r = Request { id, expires };
            if let Err(e) = act::request(client, name, Some(&r), bound).await {
                failed(seen, e);
            }
        }
        Action::RunCommand => {
            if let Err(e) =
                act::command(&options.command, name, bound.max(Duration::from_secs(60))).await
            {
                failed(seen, e);
            }
        }
        Action::CleanStale => {
            seen.cleaned = Some(
                act::clean_stale(client, name, bound)
                    .await
                    .map_err(|e| Failure::judged(e, Error::is_retryable)),
            );
        }
        Action::Finished => {
            if let Err(e) = act::request(client, name, None, bound).await {
                tracing::warn!("failed to withdraw the reboot request from {name}: {e}");
            }
        }
        Action::Note(note) => {
            let mut u = update("note", Some(name), note.message.clone());
            u.reason = Some(note.reason);
            u.warning = note.warning;
            u.phase = Some(phase.name());
            emit(u);
            events.publish(name, &note).await;
        }
    }
}

/// diagnose's first domino concerning `node` (else the cluster's first).
pub async fn domino(client: &Client, node: &str, bound: Duration) -> Option<Domino> {
    let snapshot = rebootguard_cluster::collect::collect(client, "rollout", bound).await;
    let report = rebootguard_diagnose::analyse(
        &snapshot,
        Timestamp::now(),
        &rebootguard_diagnose::Config::default(),
    );
    let root = report
        .roots
        .iter()
        .find(|r| {
            r.subjects
                .iter()
                .any(|s| s == node || s.ends_with(&format!("/{node}")))
        })
        .or_else(|| report.roots.first())?;
    Some(Domino {
        title: root.title.clone(),
        evidence: root
            .evidence
            .iter()
            .take(3)
            .map(|e| format!("{}: {}", e.reason, e.message))
            .collect(),
        fix: root
            .fix
            .iter()
            .map(|f| match &f.command {
                Some(c) => format!("{} ({c})", f.description),
                None => f.description.clone(),
            })
            .collect(),
    })
}
