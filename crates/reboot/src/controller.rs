//! `rebootguard controller`: the rollout loop in the cluster. Replicas
//! elect a leader with a `coordination.k8s.io` Lease (not the rollout's);
//! the leader looks at the Nodes every `--poll`, asks
//! [`rebootguard_rollout::schedule`] what to do, and reboots the node that
//! needs it with [`crate::run`]: the same gates, the agent handshake, the
//! same verification and the same progress on the cluster as
//! `rebootguard reboot`, one node per rollout.
//!
//! Leadership: the Lease is renewed every third of its TTL; a leader that
//! could not renew it for two thirds of the TTL steps down before anyone
//! else may take it, and a leader that finds it taken steps down at once.
//! A leader that steps down or is told to stop (SIGTERM) in the middle of
//! a rollout closes its client's [`Valve`]: the API call in flight
//! finishes, no other starts, the rollout is dropped there. Every replica
//! holds the rollout Lease under one name, so the next leader renews it
//! as its own and resumes the node where its progress annotation says.

mod valve;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease as LeaseObject;
use kube::{Api, Client};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rebootguard_cluster::lease::{Lock, Outcome as LockOutcome};
use rebootguard_rollout::gates;
use rebootguard_rollout::machine::Note;
use rebootguard_rollout::plan::Order;
use rebootguard_rollout::progress::{self, ANNOTATION, Holder, Plan, Progress};
use rebootguard_rollout::schedule::{self, Decision, Schedule};
use rebootguard_rollout::window::Window;
use tokio::sync::watch;

pub use valve::{Valve, Valved};

use crate::{Error, Outcome, Update, act, observe};

/// When the controller last finished rebooting a node (RFC 3339, on the
/// Node): a sentinel still there with an older time survived the reboot,
/// and is not obeyed twice.
pub const REBOOTED: &str = "rebootguard.io/controller-rebooted";

/// The controller's identity on the rollout Lease, the same in every
/// replica: leadership already makes them one.
pub const ROLLOUT_HOLDER: &str = "rebootguard-controller";

/// What the controller does and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// Each rollout's settings (its nodes are the decision's): how to
    /// reboot, timeouts, the rollout Lease, the poll, the API bound.
    pub rollout: crate::Options,
    /// When a reboot may start (none: any time).
    pub windows: Vec<Window>,
    /// The annotation that says a node needs a reboot.
    pub sentinel: String,
    /// The leader-election Lease, namespace and name.
    pub leader: (String, String),
    /// This replica's name in it.
    pub identity: String,
    /// The leader Lease's TTL.
    pub leader_ttl: Duration,
    /// How often the leader looks at the Nodes.
    pub every: Duration,
    /// Decide (and act) once, then return.
    pub once: bool,
    /// Decide and say so; change nothing but the leader Lease.
    pub dry_run: bool,
}

impl Options {
    /// Defaults: the agent's sentinel, the Lease
    /// `rebootguard/rebootguard-controller`, 15 s TTL, a look every 30 s.
    pub fn new(identity: String) -> Options {
        let mut rollout = crate::Options::new(Vec::new());
        rollout.holder = ROLLOUT_HOLDER.into();
        rollout.order = Order::AsGiven;
        Options {
            rollout,
            windows: Vec::new(),
            sentinel: rebootguard_cluster::reboot::REQUIRED.into(),
            leader: ("rebootguard".into(), "rebootguard-controller".into()),
            identity,
            leader_ttl: Duration::from_secs(15),
            every: Duration::from_secs(30),
            once: false,
            dry_run: false,
        }
    }
}

/// How a `--once` turn (or the loop) ended.
#[derive(Debug, Clone)]
pub enum Exit {
    /// Told to stop; leadership released.
    Shutdown,
    /// `--once`: another replica leads.
    NotLeader {
        /// Who.
        holder: String,
    },
    /// `--once`: what was decided, and the rollout it ran, if any.
    Once {
        /// The decision.
        decision: Decision,
        /// The rollout's end, when one ran.
        outcome: Option<Box<Outcome>>,
    },
}

impl Exit {
    /// Whether a human is needed: a rollout stopped, or one is held.
    pub fn needs_a_human(&self) -> bool {
        match self {
            Exit::Once { decision, outcome } => {
                matches!(decision, Decision::Hold { .. })
                    || matches!(outcome.as_deref(), Some(Outcome::Stopped { .. }))
            }
            Exit::Shutdown | Exit::NotLeader { .. } => false,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// What the controller exports on `/metrics`, and its `/healthz`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    leader: Gauge,
    waiting: Gauge,
    held: Gauge,
    rollouts: Family<ResultLabel, Counter>,
    errors: Counter,
    /// Unix seconds of the last leadership attempt.
    alive: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rebootguard_controller");
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads (only the leader reboots)",
            leader.clone(),
        );
        let waiting = Gauge::default();
        registry.register(
            "nodes_needing_reboot",
            "Nodes marked as needing a reboot and not yet rebooted, as the leader saw them last",
            waiting.clone(),
        );
        let held = Gauge::default();
        registry.register(
            "held",
            "1 while a stopped rollout holds every reboot until a human finishes or drops it",
            held.clone(),
        );
        let rollouts = Family::<ResultLabel, Counter>::default();
        registry.register(
            "rollouts",
            "Rollouts run by this replica, by result (done, stopped, interrupted, failed)",
            rollouts.clone(),
        );
        let errors = Counter::default();
        registry.register(
            "api_errors",
            "Turns that could not read or write the cluster",
            errors.clone(),
        );
        Metrics {
            registry,
            leader,
            waiting,
            held,
            rollouts,
            errors,
            alive: AtomicU64::new(0),
        }
    }

    fn alive(&self) {
        self.alive.store(unix_now(), Ordering::Relaxed);
    }

    fn rollout(&self, result: &str) {
        self.rollouts
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// The answer to an HTTP GET of `path`: `/metrics` (OpenMetrics) or
    /// `/healthz` (fails once the loop has not tried to lead or renew for
    /// `stale`), as (status, content type, body).
    pub fn page(&self, path: &str, stale: Duration) -> (u16, &'static str, String) {
        match path {
            "/metrics" => {
                let mut out = String::new();
                if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
                    out.clear();
                }
                (
                    200,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    out,
                )
            }
            "/healthz" => {
                let quiet = unix_now().saturating_sub(self.alive.load(Ordering::Relaxed));
                if quiet <= stale.as_secs() {
                    (200, "text/plain", "ok\n".into())
                } else {
                    (
                        503,
                        "text/plain",
                        format!("the controller's loop has not turned for {quiet} s\n"),
                    )
                }
            }
            _ => (
                404,
                "text/plain",
                "not found: try /metrics or /healthz\n".into(),
            ),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The clients the controller works with: `acting` (behind `valve`) for
/// rollouts, `spare` for leadership and the last words on the way out.
#[derive(Clone)]
pub struct Clients {
    /// Rollouts go through it.
    pub acting: Client,
    /// Its valve.
    pub valve: Valve,
    /// Leadership, reads and annotations.
    pub spare: Client,
}

impl Clients {
    /// Both clients from one configuration.
    pub fn new(config: kube::Config) -> Result<Clients, kube::Error> {
        let valve = Valve::default();
        let acting = kube::client::ClientBuilder::try_from(config.clone())?
            .with_layer(&valve)
            .build();
        let spare = Client::try_from(config)?;
        Ok(Clients {
            acting,
            valve,
            spare,
        })
    }
}

/// Why a rollout was cut short.
enum Cut {
    Lost(String),
    Shutdown,
}

/// What a rollout may use besides the API: probe pods (`--verify`) and a
/// webhook (`--webhook`).
#[derive(Default, Clone, Copy)]
pub struct Hooks<'a> {
    /// Checks each rebooted node, and the others at the gates.
    pub verifier: Option<&'a dyn crate::Verifier>,
    /// Told every rollout update.
    pub notifier: Option<&'a crate::notify::Notifier>,
}

/// Runs the controller until `shutdown` turns true (or one turn with
/// [`Options::once`]). Errors end it only with `once`; otherwise they are
/// logged and the next turn tries again.
pub async fn run(
    clients: &Clients,
    options: &Options,
    metrics: &Metrics,
    hooks: &Hooks<'_>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Exit, Error> {
    let bound = options.rollout.bound;
    // For the alerts gate at admission, as the rollout asks it.
    let http = match &options.rollout.prometheus {
        Some(_) => Some(rebootguard_alert::http::client().map_err(Error::Http)?),
        None => None,
    };
    let looks = Looks {
        http: http.as_ref(),
        hooks,
    };
    let (namespace, name) = &options.leader;
    let lock = Lock::new(
        clients.spare.clone(),
        namespace,
        name,
        &options.identity,
        options.leader_ttl,
        bound,
    );
    let renew_every = options.leader_ttl / 3;
    let mut leading = false;
    let mut last_renewal = Instant::now();
    let mut standing_by: Option<String> = None;
    let mut next_look = Instant::now();
    let mut said = Said::default();
    tracing::info!(
        identity = %options.identity,
        lease = %format!("{namespace}/{name}"),
        "controller starting; windows: {}",
        describe_windows(&options.windows)
    );
    loop {
        if *shutdown.borrow() {
            break;
        }
        metrics.alive();
        match lock.acquire().await {
            Ok(LockOutcome::Held { took_from }) => {
                last_renewal = Instant::now();
                if !leading {
                    match took_from {
                        Some(from) => tracing::info!(
                            "leading now (took the Lease {namespace}/{name} over from {from}, who stopped renewing it)"
                        ),
                        None => tracing::info!("leading now (Lease {namespace}/{name})"),
                    }
                    leading = true;
                    standing_by = None;
                    next_look = Instant::now();
                    said = Said::default();
                    metrics.leader.set(1);
                }
            }
            Ok(LockOutcome::Busy { holder, .. }) => {
                if leading {
                    tracing::warn!("lost leadership to {holder}; standing by");
                    leading = false;
                    metrics.leader.set(0);
                }
                if standing_by.as_deref() != Some(holder.as_str()) {
                    tracing::info!("{holder} leads; standing by");
                    standing_by = Some(holder.clone());
                }
                if options.once {
                    return Ok(Exit::NotLeader { holder });
                }
            }
            Err(e) => {
                metrics.errors.inc();
                if options.once {
                    return Err(Error::Cluster {
                        what: format!("leader Lease {namespace}/{name}"),
                        source: e,
                    });
                }
                tracing::warn!(
                    "failed to renew the leader Lease: {}",
                    rebootguard_errors::chain(&e)
                );
                if leading && !still_leads(last_renewal.elapsed(), options.leader_ttl) {
                    tracing::warn!("stepping down: the leader Lease could not be renewed in time");
                    leading = false;
                    metrics.leader.set(0);
                }
            }
        }
        if leading && Instant::now() >= next_look {
            next_look = Instant::now() + options.every;
            match turn(
                clients,
                options,
                metrics,
                &looks,
                &lock,
                &mut said,
                &mut shutdown,
            )
            .await
            {
                Ok(Turned::Decided(decision, outcome)) if options.once => {
                    release(&lock).await;
                    return Ok(Exit::Once {
                        decision: *decision,
                        outcome,
                    });
                }
                Ok(Turned::Decided(..)) => {}
                Ok(Turned::Cut(Cut::Shutdown)) => break,
                Ok(Turned::Cut(Cut::Lost(why))) => {
                    tracing::warn!(
                        "stepping down: {why}; the next leader takes over (and resumes a rollout left unfinished)"
                    );
                    leading = false;
                    metrics.leader.set(0);
                }
                Err(e) => {
                    metrics.errors.inc();
                    if options.once {
                        release(&lock).await;
                        return Err(e);
                    }
                    tracing::warn!(
                        "this turn failed, trying again: {}",
                        rebootguard_errors::chain(&e)
                    );
                }
            }
        }
        let nap = if leading {
            renew_every.min(next_look.saturating_duration_since(Instant::now()))
        } else {
            renew_every
        };
        tokio::select! {
            () = tokio::time::sleep(nap.max(Duration::from_millis(50))) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    metrics.leader.set(0);
    if leading {
        release(&lock).await;
        tracing::info!("stopped; leadership released");
    } else {
        tracing::info!("stopped");
    }
    Ok(Exit::Shutdown)
}

/// Whether a leader whose last renewal was `since` ago may go on acting:
/// for two thirds of the TTL. Another replica may take the Lease only
/// after the whole TTL, so the two never act at once (clocks agreeing
/// within the last third).
fn still_leads(since: Duration, ttl: Duration) -> bool {
    since < ttl * 2 / 3
}

async fn release(lock: &Lock) {
    if let Err(e) = lock.release().await {
        tracing::warn!(
            "failed to release the leader Lease: {}",
            rebootguard_errors::chain(&e)
        );
    }
}

enum Turned {
    Decided(Box<Decision>, Option<Box<Outcome>>),
    Cut(Cut),
}

/// What was last said, so a steady state is logged and recorded once.
#[derive(Default)]
struct Said {
    decision: String,
    skipped: BTreeMap<String, String>,
    /// Per node, the last Event reason recorded by the controller.
    events: BTreeMap<String, &'static str>,
}

/// What a turn uses besides the API clients.
struct Looks<'a> {
    http: Option<&'a rebootguard_alert::http::Client>,
    hooks: &'a Hooks<'a>,
}

/// One look: read, decide, say, act.
async fn turn(
    clients: &Clients,
    options: &Options,
    metrics: &Metrics,
    looks: &Looks<'_>,
    lock: &Lock,
    said: &mut Said,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Turned, Error> {
    let client = &clients.spare;
    let bound = options.rollout.bound;
    let now = Timestamp::now();
    let nodes = observe::nodes(client, None, bound).await?;
    let seen: Vec<schedule::Node> = nodes.iter().map(|n| node(n, &options.sentinel)).collect();
    let lease = rollout_lease(client, options, now).await?;
    let Schedule { decision, skipped } = schedule::decide(&schedule::Input {
        nodes: &seen,
        lease: &lease,
        me: &options.rollout.holder,
        windows: &options.windows,
        now,
    });
    let decision = match decision {
        Decision::Start { ref node, .. } => {
            // The gates the rollout asks first (alerts included), so a
            // closed one waits here instead of stopping the rollout.
            let mut view = crate::gate_view(client, &options.rollout, looks.http).await?;
            view.window = gates::Windows::new(&options.windows, now);
            let gates = gates::all(&view, node);
            schedule::admit(decision, &gates)
        }
        other => other,
    };
    metrics
        .held
        .set(i64::from(matches!(decision, Decision::Hold { .. })));
    let waiting = match &decision {
        Decision::Wait { nodes, .. } => nodes.len(),
        Decision::Start { queue, .. } => queue.len() + 1,
        Decision::Blocked { .. } => 1,
        _ => 0,
    };
    metrics
        .waiting
        .set(i64::try_from(waiting + skipped.len()).unwrap_or(i64::MAX));
    let events = act::Events::new(client.clone(), &options.identity);
    say(&decision, &skipped, options.dry_run, said, &events).await;

    if let (Decision::Close { .. }, false) = (&decision, options.dry_run) {
        let (namespace, name) = &options.rollout.lease;
        let leases: Api<LeaseObject> = Api::namespaced(client.clone(), namespace);
        crate::write_plan(&leases, name, None, bound).await?;
        let ours = Lock::new(
            client.clone(),
            namespace,
            name,
            &options.rollout.holder,
            options.rollout.lease_ttl,
            bound,
        );
        if let Err(e) = ours.release().await {
            tracing::warn!(
                "failed to release the rollout Lease: {}",
                rebootguard_errors::chain(&e)
            );
        }
        return Ok(Turned::Decided(Box::new(decision), None));
    }
    let nodes = match &decision {
        _ if options.dry_run => None,
        Decision::Start { node, .. } => Some(vec![node.clone()]),
        Decision::Resume { nodes, .. } => Some(nodes.clone()),
        _ => None,
    };
    let Some(nodes) = nodes else {
        return Ok(Turned::Decided(Box::new(decision), None));
    };
    // The reads may have been slow: make sure this replica still leads
    // (and has just renewed) before it touches a node.
    match lock.acquire().await {
        Ok(LockOutcome::Held { .. }) => {}
        Ok(LockOutcome::Busy { holder, .. }) => {
            return Ok(Turned::Cut(Cut::Lost(format!(
                "{holder} took the leader Lease"
            ))));
        }
        Err(e) => {
            return Err(Error::Cluster {
                what: "leader Lease".into(),
                source: e,
            });
        }
    }
    let mut rollout = options.rollout.clone();
    rollout.nodes = nodes;
    match roll(
        clients,
        &rollout,
        options,
        looks.hooks,
        lock,
        metrics,
        shutdown,
    )
    .await
    {
        Rolled::Ended(Ok(outcome)) => {
            conclude(client, &outcome, metrics, bound).await;
            *said = Said::default();
            Ok(Turned::Decided(Box::new(decision), Some(Box::new(outcome))))
        }
        Rolled::Ended(Err(e)) => {
            metrics.rollout("failed");
            Err(e)
        }
        Rolled::Cut(cut) => {
            metrics.rollout("interrupted");
            Ok(Turned::Cut(cut))
        }
    }
}

/// The rollout Lease as the schedule sees it.
async fn rollout_lease(
    client: &Client,
    options: &Options,
    now: Timestamp,
) -> Result<schedule::Lease, Error> {
    let (namespace, name) = &options.rollout.lease;
    let leases: Api<LeaseObject> = Api::namespaced(client.clone(), namespace);
    let current = observe::bounded(
        options.rollout.bound,
        "read the rollout Lease",
        leases.get_opt(name),
    )
    .await?;
    let Some(lease) = current else {
        return Ok(schedule::Lease::default());
    };
    let state = rebootguard_cluster::lease::state(&lease);
    let holder = state.holder.filter(|h| !h.is_empty());
    let ttl = SignedDuration::try_from(state.duration).unwrap_or(SignedDuration::ZERO);
    Ok(schedule::Lease {
        plan: lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION))
            .and_then(|v| Plan::parse(v).ok()),
        alive: holder.is_some() && progress::holder(state.renewed, ttl, now) == Holder::Alive,
        holder,
    })
}

/// A Node as the schedule sees it.
fn node(n: &k8s_openapi::api::core::v1::Node, sentinel: &str) -> schedule::Node {
    let annotations = n.metadata.annotations.as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key));
    schedule::Node {
        name: n.metadata.name.clone().unwrap_or_default(),
        role: observe::role(n),
        required: get(sentinel).map(|v| v.trim().parse::<Timestamp>().ok()),
        cordoned: n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        progress: get(ANNOTATION).and_then(|v| Progress::parse(v).ok()),
        rebooted: get(REBOOTED).and_then(|v| v.parse().ok()),
    }
}

/// Logs the decision and the skipped nodes when they change, and records
/// an Event on each node concerned when its reason changes.
async fn say(
    decision: &Decision,
    skipped: &[schedule::Skipped],
    dry_run: bool,
    said: &mut Said,
    events: &act::Events,
) {
    let text = decision.describe();
    if text != said.decision {
        let data = serde_json::to_string(decision).unwrap_or_default();
        let prefix = if dry_run { "dry run: would act: " } else { "" };
        match decision {
            Decision::Hold { .. } => tracing::error!(decision = %data, "{prefix}{text}"),
            _ => tracing::info!(decision = %data, "{prefix}{text}"),
        }
        said.decision = text.clone();
    }
    let mut now_skipped = BTreeMap::new();
    for s in skipped {
        if said.skipped.get(&s.node) != Some(&s.why) {
            tracing::warn!(node = %s.node, "not rebooting {}: {}", s.node, s.why);
        }
        now_skipped.insert(s.node.clone(), s.why.clone());
    }
    said.skipped = now_skipped;
    if dry_run {
        return;
    }
    let mut notes: Vec<(String, Note)> = Vec::new();
    let note = |reason, message: String, warning| Note {
        reason,
        message,
        warning,
    };
    match decision {
        Decision::Wait { nodes, until } => {
            for n in nodes {
                notes.push((
                    n.clone(),
                    note(
                        "RebootWaitingForWindow",
                        format!("needs a reboot; the maintenance window opens at {until}"),
                        false,
                    ),
                ));
            }
        }
        Decision::Blocked { node, .. } => {
            notes.push((node.clone(), note("RebootBlocked", text.clone(), false)));
        }
        Decision::Hold {
            node: Some(node), ..
        } => notes.push((node.clone(), note("RebootHeld", text.clone(), true))),
        Decision::Start { node, .. } => {
            notes.push((
                node.clone(),
                note(
                    "RebootScheduled",
                    "needs a reboot and its gates are open: rebooting it".into(),
                    false,
                ),
            ));
        }
        _ => {}
    }
    for s in skipped {
        notes.push((s.node.clone(), note("RebootSkipped", s.why.clone(), true)));
    }
    for (node, n) in notes {
        if said.events.get(&node) != Some(&n.reason) {
            said.events.insert(node.clone(), n.reason);
            events.publish(&node, &n).await;
        }
    }
}

enum Rolled {
    Ended(Result<Outcome, Error>),
    Cut(Cut),
}

/// Runs one rollout while renewing leadership; cut short between two API
/// calls when leadership is lost or `shutdown` turns true.
async fn roll(
    clients: &Clients,
    rollout: &crate::Options,
    options: &Options,
    hooks: &Hooks<'_>,
    lock: &Lock,
    metrics: &Metrics,
    shutdown: &mut watch::Receiver<bool>,
) -> Rolled {
    let mut emit = |u: Update| {
        log_update(&u);
        if let Some(n) = hooks.notifier {
            n.send(&u);
        }
    };
    // Boxed, so it can be dropped (and what it holds with it) once cut.
    let mut run = Box::pin(crate::run(
        &clients.acting,
        rollout,
        hooks.verifier,
        &mut emit,
    ));
    let keep = keep_leading(lock, options.leader_ttl, metrics);
    tokio::pin!(keep);
    let cut = tokio::select! {
        result = &mut run => return Rolled::Ended(result),
        why = &mut keep => Cut::Lost(why),
        _ = shutdown.wait_for(|stop| *stop) => Cut::Shutdown,
    };
    clients.valve.close();
    tracing::info!(
        in_flight = clients.valve.in_flight(),
        "interrupting the rollout after the API call in flight"
    );
    let settled = tokio::time::timeout(rollout.bound, clients.valve.idle());
    tokio::pin!(settled);
    let ended = tokio::select! {
        result = &mut run => Some(result),
        _ = &mut settled => None,
    };
    drop(run);
    clients.valve.open();
    match ended {
        Some(result) => Rolled::Ended(result),
        None => Rolled::Cut(cut),
    }
}

/// Renews leadership every third of `ttl`; resolves with why once it is lost.
async fn keep_leading(lock: &Lock, ttl: Duration, metrics: &Metrics) -> String {
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        metrics.alive();
        match lock.acquire().await {
            Ok(LockOutcome::Held { .. }) => last = Instant::now(),
            Ok(LockOutcome::Busy { holder, .. }) => {
                return format!("{holder} took the leader Lease");
            }
            Err(e) => {
                metrics.errors.inc();
                tracing::warn!(
                    "failed to renew the leader Lease: {}",
                    rebootguard_errors::chain(&e)
                );
                if !still_leads(last.elapsed(), ttl) {
                    return format!(
                        "the leader Lease could not be renewed for {:?}",
                        last.elapsed()
                    );
                }
            }
        }
    }
}

/// After a rollout: count it, mark the nodes rebooted, say how it ended.
async fn conclude(client: &Client, outcome: &Outcome, metrics: &Metrics, bound: Duration) {
    match outcome {
        Outcome::Done { rollout, nodes } => {
            metrics.rollout("done");
            let at = Timestamp::now().to_string();
            for (node, _) in nodes {
                let mark = [(REBOOTED, Some(at.as_str()))];
                if let Err(e) =
                    rebootguard_cluster::reboot::annotate(client, node, &mark, bound).await
                {
                    tracing::warn!(node = %node, "failed to mark {node} as rebooted: {}", rebootguard_errors::chain(&e));
                }
            }
            let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
            tracing::info!(rollout = %rollout, "rollout {rollout} done: {} rebooted and verified", names.join(", "));
        }
        Outcome::Stopped {
            rollout,
            stop,
            first_domino,
            ..
        } => {
            metrics.rollout("stopped");
            let domino = first_domino
                .as_ref()
                .map(|d| format!("; first domino: {} (fix: {})", d.title, d.fix.join("; ")))
                .unwrap_or_default();
            tracing::error!(
                rollout = %rollout,
                node = %stop.node,
                phase = stop.phase.name(),
                "rollout {rollout} STOPPED at {} ({}), left cordoned: {}; {}{domino}",
                stop.node,
                stop.phase.name(),
                stop.what,
                stop.hint
            );
        }
        Outcome::DryRun { .. } => {}
    }
}

/// A rollout update as a structured log line.
fn log_update(u: &Update) {
    let node = u.node.as_deref().unwrap_or("");
    let phase = u.phase.unwrap_or("");
    let reason = u.reason.unwrap_or("");
    if u.warning {
        tracing::warn!(event = u.event, node, phase, reason, "{}", u.message);
    } else {
        tracing::info!(event = u.event, node, phase, reason, "{}", u.message);
    }
}

fn describe_windows(windows: &[Window]) -> String {
    if windows.is_empty() {
        return "none (any time)".into();
    }
    windows
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_and_healthz() {
        let m = Metrics::new();
        assert_eq!(m.page("/healthz", Duration::from_secs(60)).0, 503);
        m.alive();
        m.leader.set(1);
        m.rollout("done");
        assert_eq!(m.page("/healthz", Duration::from_secs(60)).0, 200);
        let (status, _, text) = m.page("/metrics", Duration::from_secs(60));
        assert_eq!(status, 200);
        for line in [
            "rebootguard_controller_leader 1",
            "rebootguard_controller_rollouts_total{result=\"done\"} 1",
            "# TYPE rebootguard_controller_held gauge",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert_eq!(m.page("/nope", Duration::from_secs(60)).0, 404);
    }

    #[test]
    fn a_node_reads_into_the_schedules_shape() {
        let n: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "theoden", "annotations": {
                "example.com/reboot": "yes",
                REBOOTED: "2026-12-01T00:00:00Z",
                ANNOTATION: r#"{"rollout":"r1","phase":"down","agent":true}"#,
            }},
            "spec": {"unschedulable": true}
        }))
        .expect("node");
        let s = node(&n, "example.com/reboot");
        assert_eq!(s.required, Some(None));
        assert!(s.cordoned);
        assert_eq!(
            s.rebooted,
            Some("2026-12-01T00:00:00Z".parse().expect("time"))
        );
        assert_eq!(s.progress.map(|p| p.rollout), Some("r1".to_owned()));
        assert_eq!(
            node(&n, rebootguard_cluster::reboot::REQUIRED).required,
            None
        );
    }

    #[test]
    fn a_leader_that_cannot_renew_steps_down_before_the_lease_expires() {
        let ttl = Duration::from_secs(15);
        assert!(still_leads(Duration::from_secs(9), ttl));
        assert!(!still_leads(Duration::from_secs(10), ttl));
        assert!(!still_leads(ttl, ttl));
    }

    #[test]
    fn a_stop_or_a_hold_needs_a_human() {
        let hold = Decision::Hold {
            rollout: "r1".into(),
            node: None,
            phase: None,
            cordoned: false,
            holder: None,
        };
        assert!(
            Exit::Once {
                decision: hold,
                outcome: None
            }
            .needs_a_human()
        );
        assert!(
            !Exit::Once {
                decision: Decision::Idle,
                outcome: None
            }
            .needs_a_human()
        );
        assert!(!Exit::Shutdown.needs_a_human());
    }
}
