//! The agent's judgement as a state machine: what the Node condition and
//! taint should say, and what to do about a failure, decided from check and
//! probe results and the clock alone.
//!
//! [`Machine::step`] takes one [`Input`] (a check ran, a probe finished, a
//! remediation step finished, time passed) and the current instant, and
//! returns the [`Action`]s to carry out; [`Machine::desired`] says what the
//! Node should show. Nothing here waits, reads a clock or does I/O, so every
//! branch is tested with plain values (`tests.rs`).
//!
//! The rules, in the words of the issue they come from:
//! - the condition is never `True` before this process saw a check *and* a
//!   probe pass, and a failing check makes it `False` at once;
//! - the taint is on from start (unless the condition was already `True`
//!   for this boot) and whenever the condition is not `True`;
//! - remediation ladder: (1) restore subnet.env when it is missing or
//!   invalid (rate-limited); (2) when a failure k3s's restart fixes persists
//!   past the grace period, restart k3s *once* per failure, under the
//!   cluster-wide Lease, within a budget of restarts per window; (3) still
//!   failing after the settle time (or nothing automatic can fix it): stay
//!   tainted, alert, stop acting until the node is healthy again;
//! - alerts fire once per failure (after `alert_after`, at most once per
//!   `alert_interval`) and resolve when the condition is `True` again.

use std::time::{Duration, Instant};

use rebootguard_errors::{self as errors, chain};
use rebootguard_node::check::{Id, Report, Status};

/// The tunables of the ladder and of alerting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether the taint is managed at all.
    pub taint: bool,
    /// A restart-worthy failure must last this long before k3s is restarted.
    pub restart_grace: Duration,
    /// After a restart, this long to recover before giving up.
    pub restart_settle: Duration,
    /// At most this many restarts ...
    pub max_restarts: usize,
    /// ... per this window.
    pub restart_window: Duration,
    /// Whether a way to restart k3s is configured.
    pub can_restart: bool,
    /// Whether to heal at all (`--dry-run`: report and alert only).
    pub remediate: bool,
    /// At least this long between two restores of subnet.env.
    pub restore_interval: Duration,
    /// A passing probe is repeated this often.
    pub probe_interval: Duration,
    /// A busy or unreachable Lease is asked again after this long.
    pub lease_retry: Duration,
    /// The condition must be `False` this long before an alert fires.
    pub alert_after: Duration,
    /// At most one alert fires per this interval.
    pub alert_interval: Duration,
}

/// The Node condition's type.
pub const CONDITION: &str = "PodNetworkReady";
/// The readiness taint's key (effect `NoSchedule`).
pub const TAINT: &str = "rebootguard.io/pod-network-unready";
/// The reason of a `True` condition.
pub const READY_REASON: &str = "ChecksAndProbePassed";

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// Pods here get networking.
    True,
    /// They do not.
    False,
    /// The agent cannot tell.
    Unknown,
}

impl Truth {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Truth::True => "True",
            Truth::False => "False",
            Truth::Unknown => "Unknown",
        }
    }
}

/// What the condition should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Its status.
    pub status: Truth,
    /// CamelCase reason: the failing check's, or [`READY_REASON`].
    pub reason: String,
    /// The failing check, its evidence and the fix; or what passed.
    pub message: String,
}

/// What the Node should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The condition; `None` before there is anything true to say.
    pub condition: Option<Condition>,
    /// Whether the readiness taint should be on.
    pub taint: bool,
}

/// A probe's result, as the machine keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Probe {
    /// When it started (results of probes started before a failure are stale).
    started: Instant,
    /// Whether a pod got networking.
    ok: bool,
    /// What it saw (the address, what answered, or the CNI error).
    summary: String,
}

/// The answer to a Lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAnswer {
    /// We hold it.
    Held,
    /// Another node holds it.
    Busy(String),
    /// The API could not be asked.
    Failed(errors::Failure),
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The checks ran.
    Checked(Report),
    /// The probe asked for finished: whether a pod got networking, and
    /// what it saw (the address and what answered, or the CNI error).
    Probed {
        /// Passed.
        ok: bool,
        /// Evidence.
        summary: String,
    },
    /// A restore finished: what it did, or why it failed.
    Restored(Result<String, errors::Failure>),
    /// The Lease was asked for.
    Lease(LeaseAnswer),
    /// A k3s restart finished.
    Restarted(Result<(), errors::Failure>),
    /// Time passed.
    Tick,
}

/// A Kubernetes Event to record on the Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Warning (else Normal).
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// For humans.
    pub message: String,
}

/// What an alert says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// Pod networking on this node is broken.
    Firing,
    /// ... and the agent gave up healing it.
    Escalated,
    /// It works again.
    Resolved,
}

/// An alert to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Firing, escalated or resolved.
    pub kind: AlertKind,
    /// The condition's reason when it fired.
    pub reason: String,
    /// For humans.
    pub message: String,
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run a CNI ADD/DEL probe.
    Probe,
    /// Restore subnet.env (from the store, else regenerated from the API).
    Restore,
    /// Ask for the cluster-wide restart Lease.
    AcquireLease,
    /// Restart k3s (the Lease is held).
    RestartK3s,
    /// Give the Lease up.
    ReleaseLease,
    /// Record an Event on the Node.
    Event(Event),
    /// Send an alert.
    Alert(Alert),
}

/// Failures a k3s restart repairs: flannel rebuilds its device, its peers'
/// entries and subnet.env at start, and k3s rewrites its CNI config and
/// plugins.
const RESTART_FIXES: [&str; 7] = [
    "FlannelLinkMissing",
    "FlannelLinkWrong",
    "PeerEntriesMissing",
    "SubnetEnvMismatch",
    "SubnetEnvMissing",
    "CniConfigMissing",
    "CniPluginMissing",
];

/// Failures a restore of subnet.env repairs.
const RESTORE_FIXES: [&str; 2] = ["SubnetEnvMissing", "SubnetEnvInvalid"];

/// Where the restart step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    /// Nothing under way.
    Idle,
    /// The Lease was asked for (or will be asked again at `retry`).
    Lease { retry: Option<Instant> },
    /// k3s is being restarted.
    Running,
    /// Restarted; recovering until `until`.
    Settling { until: Instant },
}

/// The failure under way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// When it began.
    since: Instant,
    /// Its first failing reason now.
    reason: String,
    /// The condition message.
    message: String,
    /// k3s was restarted for it.
    restarted: bool,
    /// The reasons the ladder gave up on: for those, stay tainted and stop
    /// acting. A failure that turns into another reason gets its own try.
    given_up: std::collections::BTreeSet<String>,
    /// The escalation alert went out (once per failure).
    escalated: bool,
    /// An alert fired for it.
    alerted: bool,
    /// Waiting for the Lease was recorded.
    told_waiting: bool,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    policy: Policy,
    /// The condition was `True` for this boot when the agent started.
    verified_at_start: bool,
    /// The latest checks.
    report: Option<Report>,
    /// When the checks last turned OK (None while failing or before any).
    healthy_since: Option<Instant>,
    /// A probe is running (started at).
    probing: Option<Instant>,
    /// The latest probe that counts.
    probe: Option<Probe>,
    failure: Option<Failure>,
    restore_running: bool,
    last_restore: Option<Instant>,
    restart: Restart,
    restarts: Vec<Instant>,
    alert_firing: bool,
    last_alert: Option<Instant>,
    /// The condition last desired (kept while a probe is pending).
    condition: Option<Condition>,
}

impl Machine {
    /// A machine at start. `verified_at_start`: the Node's condition was
    /// already `True` in this boot (an agent restart on a healthy node), so
    /// the taint is not put on before the first check.
    pub fn new(policy: Policy, verified_at_start: bool) -> Machine {
        Machine {
            policy,
            verified_at_start,
            report: None,
            healthy_since: None,
            probing: None,
            probe: None,
            failure: None,
            restore_running: false,
            last_restore: None,
            restart: Restart::Idle,
            restarts: Vec::new(),
            alert_firing: false,
            last_alert: None,
            condition: None,
        }
    }

    /// What the Node should show now.
    pub fn desired(&self) -> Desired {
        let taint = self.policy.taint
            && match &self.condition {
                Some(c) => c.status != Truth::True,
                None => !(self.verified_at_start && self.failure.is_none()),
            };
        Desired {
            condition: self.condition.clone(),
            taint,
        }
    }

    /// Whether the ladder gave up on the current failure.
    pub fn exhausted(&self) -> bool {
        self.failure.as_ref().is_some_and(Failure::exhausted)
    }

    /// The latest checks.
    pub fn report(&self) -> Option<&Report> {
        self.report.as_ref()
    }

    /// Takes one input at `now`; returns what to do.
    pub fn step(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Checked(report) => self.checked(report, now),
            Input::Probed { ok, summary } => self.probed(ok, summary),
            Input::Restored(result) => {
                self.restore_running = false;
                actions.push(Action::Event(match result {
                    Ok(what) => Event {
                        warning: false,
                        reason: "SubnetEnvRestored",
                        message: what,
                    },
                    Err(why) => Event {
                        warning: true,
                        reason: "SubnetEnvRestoreFailed",
                        message: chain(&why),
                    },
                }));
            }
            Input::Lease(answer) => self.lease(answer, now, &mut actions),
            Input::Restarted(result) => self.restarted(result, now, &mut actions),
            Input::Tick => {}
        }
        self.update_condition();
        self.ladder(now, &mut actions);
        self.probe_due(now, &mut actions);
        self.alerts(now, &mut actions);
        actions
    }

    fn checked(&mut self, report: Report, now: Instant) {
        let failing = first_local_failure(&report).map(|c| (c.reason.clone(), message(&report)));
        match failing {
            Some((reason, message)) => {
                self.healthy_since = None;
                self.probing = None;
                match &mut self.failure {
                    Some(f) => {
                        f.reason = reason;
                        f.message = message;
                    }
                    None => self.failure = Some(Failure::new(now, reason, message)),
                }
            }
            None => {
                if self.healthy_since.is_none() {
                    self.healthy_since = Some(now);
                }
            }
        }
        self.report = Some(report);
    }

    fn probed(&mut self, ok: bool, summary: String) {
        // A probe the checks failed under (they cancel it) says nothing
        // about the node as it is now.
        let Some(started) = self.probing.take() else {
            return;
        };
        let probe = Probe {
            started,
            ok,
            summary,
        };
        if !probe.ok {
            let message = format!("probe: {}", probe.summary);
            match &mut self.failure {
                Some(f) => {
                    f.reason = "ProbeFailed".into();
                    f.message = message;
                }
                None => {
                    self.failure = Some(Failure::new(probe.started, "ProbeFailed".into(), message))
                }
            }
        }
        self.probe = Some(probe);
    }

    /// True when the checks pass, nothing is unknown, and a probe started
    /// after they turned OK passed.
    fn verified(&self) -> bool {
        let Some(report) = &self.report else {
            return false;
        };
        let complete = report
            .checks
            .iter()
            .filter(|c| c.id != Id::SandboxEvents)
            .all(|c| !matches!(c.status, Status::Fail | Status::Unknown));
        complete
            && self.healthy_since.is_some_and(|since| {
                self.probe
                    .as_ref()
                    .is_some_and(|p| p.ok && p.started >= since)
            })
    }

    fn update_condition(&mut self) {
        if self.verified() {
            if let Some(f) = self.failure.take() {
                tracing::info!(reason = f.reason, "pod networking works again");
            }
            let summary = self
                .probe
                .as_ref()
                .map(|p| p.summary.clone())
                .unwrap_or_default();
            self.condition = Some(Condition {
                status: Truth::True,
                reason: READY_REASON.into(),
                message: format!("every check passed; probe: {summary}"),
            });
            return;
        }
        if let Some(f) = &self.failure {
            let probe_failed = f.reason == "ProbeFailed";
            let checks_failing = self.healthy_since.is_none();
            if checks_failing || probe_failed {
                self.condition = Some(Condition {
                    status: Truth::False,
                    reason: f.reason.clone(),
                    message: f.message.clone(),
                });
            }
        }
        // Otherwise a probe is pending: the condition stays as it was.
    }

    fn ladder(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let Some(failure) = self.failure.clone() else {
            // Healthy: a restart under way has done its job.
            if matches!(
                self.restart,
                Restart::Settling { .. } | Restart::Lease { .. }
            ) {
                if matches!(self.restart, Restart::Settling { .. }) {
                    actions.push(Action::Event(Event {
                        warning: false,
                        reason: "PodNetworkRecovered",
                        message: "pod networking works again after the k3s restart".into(),
                    }));
                }
                actions.push(Action::ReleaseLease);
                self.restart = Restart::Idle;
            }
            return;
        };
        // Checks pass and a probe is pending: nothing to repair yet.
        if !self.policy.remediate
            || failure.exhausted()
            || (self.healthy_since.is_some() && failure.reason != "ProbeFailed")
        {
            return;
        }
        let reason = failure.reason.as_str();
        // (1) Restore subnet.env.
        let restorable = RESTORE_FIXES.contains(&reason);
        if restorable
            && !self.restore_running
            && self
                .last_restore
                .is_none_or(|t| now.duration_since(t) >= self.policy.restore_interval)
        {
            self.restore_running = true;
            self.last_restore = Some(now);
            actions.push(Action::Restore);
        }
        // (3) after a restart that did not help.
        if let Restart::Settling { until } = self.restart
            && now >= until
        {
            self.restart = Restart::Idle;
            actions.push(Action::ReleaseLease);
            self.give_up(
                format!(
                    "still failing {}s after restarting k3s: {}",
                    self.policy.restart_settle.as_secs(),
                    failure.message
                ),
                actions,
            );
            return;
        }
        // (2) Restart k3s once, under the Lease.
        let restartable = RESTART_FIXES.contains(&reason) && self.policy.can_restart;
        let lasted = now.duration_since(failure.since) >= self.policy.restart_grace;
        // A restore under way (or just done) gets its chance first.
        let restoring = self.restore_running
            || self
                .last_restore
                .is_some_and(|t| now.duration_since(t) < self.policy.restore_interval);
        if restartable && lasted && !failure.restarted && !restoring {
            match self.restart {
                Restart::Idle => {
                    self.restarts
                        .retain(|t| now.duration_since(*t) < self.policy.restart_window);
                    if self.restarts.len() >= self.policy.max_restarts {
                        self.give_up(
                            format!(
                                "k3s was restarted {} time(s) in the last {}s already (the budget); {}",
                                self.restarts.len(),
                                self.policy.restart_window.as_secs(),
                                failure.message
                            ),
                            actions,
                        );
                        return;
                    }
                    self.restart = Restart::Lease { retry: None };
                    actions.push(Action::AcquireLease);
                }
                Restart::Lease { retry: Some(at) } if now >= at => {
                    self.restart = Restart::Lease { retry: None };
                    actions.push(Action::AcquireLease);
                }
                _ => {}
            }
            return;
        }
        // Nothing automatic fixes this one: say so once, then wait for a human.
        if !restartable && !restorable && lasted {
            self.give_up(
                format!("no automatic remedy for {reason}: {}", failure.message),
                actions,
            );
        }
    }

    fn give_up(&mut self, message: String, actions: &mut Vec<Action>) {
        let Some(f) = &mut self.failure else {
            return;
        };
        f.given_up.insert(f.reason.clone());
        actions.push(Action::Event(Event {
            warning: true,
            reason: "RemediationExhausted",
            message: message.clone(),
        }));
        if !f.escalated {
            f.escalated = true;
            f.alerted = true;
            self.alert_firing = true;
            actions.push(Action::Alert(Alert {
                kind: AlertKind::Escalated,
                reason: f.reason.clone(),
                message,
            }));
        }
    }

    fn lease(&mut self, answer: LeaseAnswer, now: Instant, actions: &mut Vec<Action>) {
        if !matches!(self.restart, Restart::Lease { .. }) {
            // Healed (or gave up) while asking: hand it back if we got it.
            if answer == LeaseAnswer::Held {
                actions.push(Action::ReleaseLease);
            }
            return;
        }
        let Some(failure) = &mut self.failure else {
            if answer == LeaseAnswer::Held {
                actions.push(Action::ReleaseLease);
            }
            self.restart = Restart::Idle;
            return;
        };
        let who = match answer {
            LeaseAnswer::Held => {
                self.restart = Restart::Running;
                actions.push(Action::Event(Event {
                    warning: true,
                    reason: "RestartingK3s",
                    message: format!(
                        "{} for {}s: restarting k3s (holding the restart Lease)",
                        failure.reason,
                        now.duration_since(failure.since).as_secs()
                    ),
                }));
                actions.push(Action::RestartK3s);
                return;
            }
            LeaseAnswer::Busy(holder) => holder,
            LeaseAnswer::Failed(e) => chain(&e),
        };
        self.restart = Restart::Lease {
            retry: Some(now + self.policy.lease_retry),
        };
        if !failure.told_waiting {
            failure.told_waiting = true;
            actions.push(Action::Event(Event {
                warning: false,
                reason: "WaitingForRestartLease",
                message: format!("k3s restart waits for the cluster-wide Lease: {who}"),
            }));
        }
    }

    fn restarted(
        &mut self,
        result: Result<(), errors::Failure>,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        self.restarts.push(now);
        if let Some(f) = &mut self.failure {
            f.restarted = true;
        }
        match result {
            Ok(()) => {
                self.restart = Restart::Settling {
                    until: now + self.policy.restart_settle,
                };
                actions.push(Action::Event(Event {
                    warning: false,
                    reason: "K3sRestarted",
                    message: format!(
                        "k3s restarted; waiting up to {}s for pod networking",
                        self.policy.restart_settle.as_secs()
                    ),
                }));
            }
            Err(why) => {
                self.restart = Restart::Idle;
                actions.push(Action::ReleaseLease);
                self.give_up(format!("restarting k3s failed: {}", chain(&why)), actions);
            }
        }
    }

    fn probe_due(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let Some(since) = self.healthy_since else {
            return;
        };
        if self.probing.is_some() {
            return;
        }
        let due = match &self.probe {
            Some(p) if p.started >= since => {
                !p.ok && self.failure.as_ref().is_some_and(|f| !f.exhausted())
                    || now.duration_since(p.started) >= self.policy.probe_interval
            }
            _ => true,
        };
        if due && !self.probe_backing_off(now) {
            self.probing = Some(now);
            actions.push(Action::Probe);
        }
    }

    /// A failed probe is retried no faster than the restore interval.
    fn probe_backing_off(&self, now: Instant) -> bool {
        self.probe
            .as_ref()
            .is_some_and(|p| !p.ok && now.duration_since(p.started) < self.policy.restore_interval)
    }

    fn alerts(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let is_true = self
            .condition
            .as_ref()
            .is_some_and(|c| c.status == Truth::True);
        if is_true {
            if self.alert_firing {
                self.alert_firing = false;
                actions.push(Action::Alert(Alert {
                    kind: AlertKind::Resolved,
                    reason: READY_REASON.into(),
                    message: "pod networking works again".into(),
                }));
            }
            return;
        }
        let Some(f) = &mut self.failure else {
            return;
        };
        let long_enough = now.duration_since(f.since) >= self.policy.alert_after;
        let allowed = self
            .last_alert
            .is_none_or(|t| now.duration_since(t) >= self.policy.alert_interval);
        if !f.alerted && long_enough && allowed {
            f.alerted = true;
            self.alert_firing = true;
            self.last_alert = Some(now);
            actions.push(Action::Alert(Alert {
                kind: AlertKind::Firing,
                reason: f.reason.clone(),
                message: f.message.clone(),
            }));
        }
    }
}

impl Failure {
    fn exhausted(&self) -> bool {
        self.given_up.contains(&self.reason)
    }

    fn new(since: Instant, reason: String, message: String) -> Failure {
        Failure {
            since,
            reason,
            message,
            restarted: false,
            given_up: Default::default(),
            escalated: false,
            alerted: false,
            told_waiting: false,
        }
    }
}

/// The first failing check that decides the condition (the kubelet's
/// events are evidence, not a verdict: they stay for minutes after a fix).
fn first_local_failure(report: &Report) -> Option<&rebootguard_node::check::Check> {
    report
        .checks
        .iter()
        .find(|c| c.status == Status::Fail && c.id != Id::SandboxEvents)
}

/// The condition message: the first failure with its evidence and fix, and
/// what else fails.
fn message(report: &Report) -> String {
    let mut failing = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail && c.id != Id::SandboxEvents);
    let Some(first) = failing.next() else {
        return String::new();
    };
    let mut text = format!("{}: {}", first.id.name(), first.summary);
    if let Some(e) = first.evidence.first() {
        text.push_str(&format!(" ({e})"));
    }
    if let Some(fix) = &first.fix {
        text.push_str(&format!("; fix: {fix}"));
    }
    let others: Vec<&str> = failing.map(|c| c.id.name()).collect();
    if !others.is_empty() {
        text.push_str(&format!("; also failing: {}", others.join(", ")));
    }
    // The API caps a condition message; keep it readable well below that.
    if text.len() > 1000 {
        let mut cut = 1000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests;
