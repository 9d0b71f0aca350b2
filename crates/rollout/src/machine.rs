//! One node's way through a rolling reboot, as a state machine: [`Node`]
//! holds where it is, [`Node::step`] takes the time and what the driver
//! observed ([`Seen`]) and returns the [`Action`]s to carry out. No I/O and
//! no clock inside: every branch is a unit test.
//!
//! Each phase is level-triggered: it looks at the cluster, moves on when
//! what it waits for holds, otherwise asks again for the action that
//! brings it about (all idempotent, except running a reboot command, done
//! once), and stops the rollout when its timeout passes. A stop leaves the
//! node as it is (cordoned) and says what failed and what to do; nothing
//! moves on silently.
//!
//! gates → lease → cordon → drain → reboot → down (new boot ID) → Ready →
//! network (PodNetworkReady from this boot, and the verify hook) → clean
//! stale pods → storage healthy → uncordon → done.

use jiff::{SignedDuration, Timestamp};
use rebootguard_errors::{Failure, chain};
use serde::Serialize;

use crate::gates::Gate;
pub use crate::phase::Phase;
use crate::progress::{Progress, resume_at};

/// How the reboot is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// The node's agent, through the handshake on the Node.
    Agent,
    /// A configured command (run once by the driver).
    Command,
    /// An operator reboots the node; the rollout waits.
    Manual,
}

/// How long each wait may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Gates closed this long stop the rollout.
    pub gates: SignedDuration,
    /// Cordon, the Lease, cleaning, uncordon: one API action.
    pub action: SignedDuration,
    /// Evictions (PDBs answering 429 included).
    pub drain: SignedDuration,
    /// From the request to a new boot ID.
    pub down: SignedDuration,
    /// From the new boot ID to `Ready`.
    pub ready: SignedDuration,
    /// From Ready to a working pod network.
    pub network: SignedDuration,
    /// From the network to healthy storage.
    pub storage: SignedDuration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let m = SignedDuration::from_mins;
        Timeouts {
            gates: m(2),
            action: m(1),
            drain: m(5),
            down: m(15),
            ready: m(10),
            network: m(5),
            storage: m(30),
        }
    }
}

/// The rollout's settings a node's steps depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The rollout's id.
    pub rollout: String,
    /// How the reboot is asked for.
    pub how: How,
    /// After the drain timeout, delete the pods PDBs keep instead of stopping.
    pub force: bool,
    /// The waits.
    pub timeouts: Timeouts,
    /// Renew the Lease this often (a third of its TTL).
    pub renew_every: SignedDuration,
    /// A reboot request is void after this long.
    pub request_ttl: SignedDuration,
    /// A verifier is plugged in: the network phase needs its pass (no
    /// answer yet is no pass).
    pub verify: bool,
}

/// `PodNetworkReady` as the Node shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// `status: "True"`.
    pub ready: bool,
    /// `lastHeartbeatTime` (whole seconds, as Kubernetes writes it).
    pub heartbeat: Option<Timestamp>,
    /// Its reason and message, for the report.
    pub why: String,
}

/// The node as observed on this tick.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeSeen {
    /// `status.nodeInfo.bootID`.
    pub boot_id: String,
    /// `Ready=True`.
    pub ready: bool,
    /// `spec.unschedulable`.
    pub cordoned: bool,
    /// The agent's condition, if present.
    pub pod_network: Option<PodNetwork>,
    /// The reboot request on the Node (its id), if any.
    pub requested: Option<String>,
    /// The id the agent accepted last.
    pub accepted: Option<String>,
    /// The agent's refusal or failure (`RebootRefused`, `RebootFailed`)
    /// since the request, if any.
    pub refused: Option<String>,
}

/// The last drain pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Drain {
    /// Pods that must leave and are still there (`namespace/name`).
    pub left: Vec<String>,
    /// Why evictions were refused (429 from a PodDisruptionBudget, errors).
    pub blocked: Vec<String>,
}

/// The Lease's answer to the last [`Action::Lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// Held by us.
    Held,
    /// Someone else holds it.
    Busy(String),
    /// The API call failed.
    Failed(Failure),
}

/// What the driver observed (or got back from the previous actions).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Seen {
    /// The node (`None`: gone from the cluster).
    pub node: Option<NodeSeen>,
    /// Every gate's answer (asked in [`Phase::Gates`]).
    pub gates: Vec<Gate>,
    /// The answer to [`Action::Lease`].
    pub lease: Option<Lease>,
    /// The answer to [`Action::Evict`].
    pub drain: Option<Drain>,
    /// The verify hook's answer on this node (`None`: no verifier, or none yet).
    pub verify: Option<Result<(), Failure>>,
    /// The answer to [`Action::CleanStale`]: pods deleted, or why not.
    pub cleaned: Option<Result<usize, Failure>>,
    /// Volumes not healthy (`None`: no Longhorn in the cluster).
    pub storage: Option<Vec<String>>,
    /// An action of the previous tick that failed (cordon, request, ...).
    pub failed: Option<Failure>,
}

impl Seen {
    /// The last action failed in a way retrying cannot mend (RBAC refused
    /// it, the request was rejected): the rollout stops at once instead of
    /// retrying until the step's timeout.
    fn failed_for_good(&self) -> bool {
        self.failed.as_ref().is_some_and(|f| !f.is_retryable())
    }
}

/// Something to carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Take or renew the rollout Lease; answer in [`Seen::lease`].
    Lease,
    /// Cordon the node.
    Cordon,
    /// One eviction pass over the node's pods (`force`: delete those
    /// evictions refuse); answer in [`Seen::drain`].
    Evict {
        /// Delete instead of evicting.
        force: bool,
    },
    /// Write the node's progress annotation.
    Annotate(Progress),
    /// Ask the agent: the handshake's request.
    Request {
        /// Its id.
        id: String,
        /// Void after.
        expires: Timestamp,
    },
    /// Run the configured reboot command.
    RunCommand,
    /// Delete the node's stale pods; answer in [`Seen::cleaned`].
    CleanStale,
    /// Uncordon the node.
    Uncordon,
    /// Say something: progress line, Kubernetes Event on the Node, JSON.
    Note(Note),
    /// The node is done: withdraw the reboot request from the Node (the
    /// progress stays, `phase: done`, so a rerun skips the node).
    Finished,
}

/// A progress message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The Event reason (`RolloutDrained`, ...).
    pub reason: &'static str,
    /// For people.
    pub message: String,
    /// A Warning Event (a stop, a refusal).
    pub warning: bool,
}

/// A milestone on the node's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    /// Work on the node began (gates open).
    Started,
    /// Cordoned and drained.
    Drained,
    /// The reboot was asked for.
    Asked,
    /// A new boot ID.
    Booted,
    /// `Ready=True`.
    Ready,
    /// Pod network verified.
    Network,
    /// Stale pods cleaned.
    Cleaned,
    /// Storage healthy.
    Storage,
    /// Uncordoned.
    Uncordoned,
}

/// Why the rollout stopped at this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stop {
    /// The node.
    pub node: String,
    /// Where.
    pub phase: Phase,
    /// What failed, with the evidence.
    pub what: String,
    /// What to do.
    pub hint: String,
}

/// One node's reboot in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Where it is.
    pub phase: Phase,
    /// When that phase began.
    pub since: Timestamp,
    /// The boot ID before the reboot.
    pub boot_id: Option<String>,
    /// The reboot request's id.
    pub request: Option<String>,
    /// It reported PodNetworkReady before the reboot: demand it after.
    pub agent: bool,
    /// When the new boot was seen (the condition must be newer).
    pub booted_at: Option<Timestamp>,
    /// Milestones with their times.
    pub timeline: Vec<(Mark, Timestamp)>,
    /// Set when the rollout stopped here.
    pub stopped: Option<Stop>,
    /// The last thing waited on, said once per change.
    waiting: Option<String>,
    lease_renewed: Option<Timestamp>,
    forced: bool,
}

impl Node {
    /// A node not yet touched, starting at its gates.
    pub fn new(name: &str, now: Timestamp) -> Node {
        Node {
            name: name.to_owned(),
            phase: Phase::Gates,
            since: now,
            boot_id: None,
            request: None,
            agent: false,
            booted_at: None,
            timeline: Vec::new(),
            stopped: None,
            waiting: None,
            lease_renewed: None,
            forced: false,
        }
    }

    /// A node picked up from its progress annotation (see
    /// [`crate::progress::resume_at`]). The clock of its phase starts now.
    pub fn resume(name: &str, progress: &Progress, now: Timestamp) -> Node {
        let mut node = Node::new(name, now);
        node.phase = resume_at(progress.phase);
        node.boot_id.clone_from(&progress.boot_id);
        node.request.clone_from(&progress.request);
        node.agent = progress.agent;
        if node.phase > Phase::Down {
            node.booted_at = Some(now);
        }
        node
    }

    /// Finished: done or stopped.
    pub fn finished(&self) -> bool {
        self.phase == Phase::Done || self.stopped.is_some()
    }

    /// The timeline as (milestone, time since the previous one).
    pub fn durations(&self) -> Vec<(Mark, SignedDuration)> {
        let mut last = self.timeline.first().map(|(_, t)| *t);
        self.timeline
            .iter()
            .map(|(mark, at)| {
                let d = last.map_or(SignedDuration::ZERO, |l| at.duration_since(l));
                last = Some(*at);
                (*mark, d)
            })
            .collect()
    }

    /// One step: what was seen at `now` → actions (also changes `self`).
    pub fn step(&mut self, now: Timestamp, seen: &Seen, config: &Config) -> Vec<Action> {
        let mut out = Vec::new();
        if self.finished() {
            return out;
        }
        let Some(node) = &seen.node else {
            self.stop(
                &mut out,
                format!("node {} is gone from the cluster", self.name),
                "check whether it was deleted on purpose; rerun to go on with the others",
            );
            return out;
        };
        match &seen.lease {
            Some(Lease::Busy(holder)) => {
                self.stop(
                    &mut out,
                    format!("the rollout Lease is held by {holder}: another rollout runs"),
                    "wait for it to finish (or for its Lease to expire if its holder died), then rerun",
                );
                return out;
            }
            Some(Lease::Held) => self.lease_renewed = Some(now),
            Some(Lease::Failed(_)) | None => {}
        }
        // The rollout holds its Lease from the start (the first node's
        // gates included: a long wait for a maintenance window must not
        // let it lapse); the Lease phase asks for it itself.
        if self.phase != Phase::Lease
            && self
                .lease_renewed
                .is_none_or(|t| now.duration_since(t) >= config.renew_every)
        {
            // Renewing is asked once per interval; a failure is retried on
            // the next tick until the Lease would lapse.
            out.push(Action::Lease);
            if self.lease_renewed.is_none() {
                self.lease_renewed = Some(now);
            }
        }
        let elapsed = now.duration_since(self.since);
        let t = &config.timeouts;
        match self.phase {
            Phase::Gates => {
                let closed: Vec<&Gate> = seen.gates.iter().filter(|g| !g.open).collect();
                // A gate known to open only after the gates' timeout (the
                // next maintenance window) is not waited for in vain.
                let deadline = self.since.checked_add(t.gates).unwrap_or(self.since);
                let too_late = closed
                    .iter()
                    .find(|g| g.opens_at.is_some_and(|at| at > deadline));
                if closed.is_empty() {
                    self.mark(Mark::Started, now);
                    self.enter(Phase::Lease, now);
                    if !out.contains(&Action::Lease) {
                        out.push(Action::Lease);
                    }
                } else if elapsed >= t.gates || too_late.is_some() {
                    let mut what = closed
                        .iter()
                        .map(|g| format!("gate {} closed: {}", g.name, g.detail))
                        .collect::<Vec<_>>()
                        .join("; ");
                    if let Some(g) = too_late {
                        what.push_str(&format!(
                            " (after --timeout-gates {}: not waited for)",
                            show(t.gates)
                        ));
                        self.stop(&mut out, what, gate_hint(g.name));
                    } else {
                        self.stop(&mut out, what, gate_hint(closed[0].name));
                    }
                } else {
                    let what = format!("gate {} closed: {}", closed[0].name, closed[0].detail);
                    self.wait(&mut out, what);
                }
            }
            Phase::Lease => match &seen.lease {
                Some(Lease::Held) => {
                    self.enter(Phase::Cordon, now);
                    out.push(Action::Annotate(self.progress(config)));
                    out.push(Action::Cordon);
                }
                Some(Lease::Failed(e)) if elapsed >= t.action || !e.is_retryable() => {
                    self.stop(
                        &mut out,
                        format!("could not take the rollout Lease: {}", chain(e)),
                        "check the API and the RBAC on leases; rerun",
                    );
                }
                _ => out.push(Action::Lease),
            },
            Phase::Cordon => {
                if node.cordoned {
                    self.enter(Phase::Drain, now);
                    out.push(Action::Annotate(self.progress(config)));
                    out.push(Action::Evict { force: false });
                } else if elapsed >= t.action || seen.failed_for_good() {
                    let why = seen
                        .failed
                        .as_ref()
                        .map_or_else(|| "still schedulable".into(), |f| chain(f));
                    self.stop(
                        &mut out,
                        format!("could not cordon {}: {why}", self.name),
                        "check the RBAC on nodes (patch); rerun",
                    );
                } else {
                    out.push(Action::Cordon);
                }
            }
            Phase::Drain => self.drain(now, node, seen, config, &mut out),
            Phase::Reboot => self.ask(now, node, config, &mut out),
            Phase::Down => self.down(now, node, seen, config, &mut out),
            Phase::Ready => {
                if node.ready {
                    self.mark(Mark::Ready, now);
                    self.enter(Phase::Network, now);
                    out.push(Action::Annotate(self.progress(config)));
                } else if elapsed >= t.ready {
                    self.stop(
                        &mut out,
                        format!(
                            "{} came back (new boot ID) but is not Ready after {}",
                            self.name,
                            show(t.ready)
                        ),
                        "look at the kubelet and k3s logs on the node; rerun to resume here",
                    );
                } else {
                    self.wait(&mut out, format!("waiting for {} to be Ready", self.name));
                }
            }
            Phase::Network => self.network(now, node, seen, config, &mut out),
            Phase::Clean => match &seen.cleaned {
                Some(Ok(n)) => {
                    if *n > 0 {
                        out.push(note(
                            "RolloutCleaned",
                            format!("deleted {n} stale pod(s) on {}", self.name),
                            false,
                        ));
                    }
                    self.mark(Mark::Cleaned, now);
                    self.enter(Phase::Storage, now);
                    out.push(Action::Annotate(self.progress(config)));
                }
                Some(Err(e)) if elapsed >= t.action || !e.is_retryable() => {
                    self.stop(
                        &mut out,
                        format!(
                            "could not clean the stale pods on {}: {}",
                            self.name,
                            chain(e)
                        ),
                        "run `rebootguard clean-stale --yes`, then rerun",
                    );
                }
                _ => out.push(Action::CleanStale),
            },
            Phase::Storage => match &seen.storage {
                None => {
                    self.mark(Mark::Storage, now);
                    self.enter(Phase::Uncordon, now);
                    out.push(Action::Annotate(self.progress(config)));
                    out.push(Action::Uncordon);
                }
                Some(bad) if bad.is_empty() => {
                    self.mark(Mark::Storage, now);
                    self.enter(Phase::Uncordon, now);
                    out.push(Action::Annotate(self.progress(config)));
                    out.push(Action::Uncordon);
                }
                Some(bad) if elapsed >= t.storage => {
                    self.stop(
                        &mut out,
                        format!("storage not healthy {} after {} came back: {}", show(t.storage), self.name, bad.join(", ")),
                        "see why the replicas on the node do not rebuild (longhorn-manager running there?); rerun once healthy",
                    );
                }
                Some(bad) => {
                    self.wait(&mut out, format!("waiting for storage: {}", bad.join(", ")))
                }
            },
            Phase::Uncordon => {
                if node.cordoned {
                    if elapsed >= t.action || seen.failed_for_good() {
                        let why = seen
                            .failed
                            .as_ref()
                            .map_or_else(|| "still cordoned".into(), |f| chain(f));
                        self.stop(
                            &mut out,
                            format!("could not uncordon {}: {why}", self.name),
                            "`kubectl uncordon` it, then rerun",
                        );
                    } else {
                        out.push(Action::Uncordon);
                    }
                } else {
                    self.mark(Mark::Uncordoned, now);
                    self.enter(Phase::Done, now);
                    out.push(Action::Annotate(self.progress(config)));
                    out.push(note(
                        "RolloutNodeDone",
                        format!("{} rebooted, verified and uncordoned", self.name),
                        false,
                    ));
                    out.push(Action::Finished);
                }
            }
            Phase::Done => {}
        }
        out
    }

    fn drain(
        &mut self,
        now: Timestamp,
        node: &NodeSeen,
        seen: &Seen,
        config: &Config,
        out: &mut Vec<Action>,
    ) {
        let elapsed = now.duration_since(self.since);
        let Some(drain) = &seen.drain else {
            // The pass itself failed (listing the node's pods, a refused
            // eviction): retried for the action timeout, unless it cannot
            // succeed.
            match &seen.failed {
                Some(failed) if !failed.is_retryable() || elapsed >= config.timeouts.action => {
                    self.stop(
                        out,
                        format!("could not drain {}: {}", self.name, chain(failed)),
                        "check the API and the RBAC on pods (list, delete) and pods/eviction (create); rerun",
                    );
                }
                _ => out.push(Action::Evict { force: self.forced }),
            }
            return;
        };
        if drain.left.is_empty() {
            self.mark(Mark::Drained, now);
            self.enter(Phase::Reboot, now);
            self.ask(now, node, config, out);
            return;
        }
        if elapsed < config.timeouts.drain {
            let what = match drain.blocked.first() {
                Some(b) => format!("draining: {} pod(s) left; {b}", drain.left.len()),
                None => format!("draining: {} pod(s) left", drain.left.len()),
            };
            self.wait(out, what);
            out.push(Action::Evict { force: self.forced });
        } else if config.force && !self.forced {
            self.forced = true;
            out.push(note(
                "RolloutForced",
                format!(
                    "drain timed out, --force: deleting {} pod(s): {}",
                    drain.left.len(),
                    drain.left.join(", ")
                ),
                true,
            ));
            out.push(Action::Evict { force: true });
        } else if self.forced && elapsed < config.timeouts.drain + config.timeouts.action {
            out.push(Action::Evict { force: true });
        } else {
            let mut what = format!(
                "drain of {} timed out after {}: {} pod(s) left ({})",
                self.name,
                show(config.timeouts.drain),
                drain.left.len(),
                drain.left.join(", ")
            );
            if !drain.blocked.is_empty() {
                what.push_str("; ");
                what.push_str(&drain.blocked.join("; "));
            }
            self.stop(out, what, "a PodDisruptionBudget allows no disruption: scale the workload up or fix the budget, or rerun with --force; the node stays cordoned");
        }
    }

    /// Asks for the reboot, once, and moves to [`Phase::Down`].
    fn ask(&mut self, now: Timestamp, node: &NodeSeen, config: &Config, out: &mut Vec<Action>) {
        let attempt = self
            .timeline
            .iter()
            .filter(|(m, _)| *m == Mark::Asked)
            .count()
            + 1;
        let id = format!("{}/{}/{attempt}", config.rollout, self.name);
        self.boot_id = Some(node.boot_id.clone());
        self.agent = node.pod_network.is_some();
        self.request = (config.how == How::Agent).then(|| id.clone());
        self.enter(Phase::Down, now);
        // The progress first: a CLI dying right after asking resumes by
        // waiting for the boot, never by asking again.
        out.push(Action::Annotate(self.progress(config)));
        self.mark(Mark::Asked, now);
        match config.how {
            How::Agent => out.push(Action::Request {
                id,
                expires: now.checked_add(config.request_ttl).unwrap_or(now),
            }),
            How::Command => out.push(Action::RunCommand),
            How::Manual => out.push(note(
                "RolloutWaitingForOperator",
                format!(
                    "{} is drained: reboot it now (waiting for a new boot ID)",
                    self.name
                ),
                false,
            )),
        }
        out.push(note(
            "RolloutRebootAsked",
            format!("reboot of {} asked ({})", self.name, how_name(config.how)),
            false,
        ));
    }

    fn down(
        &mut self,
        now: Timestamp,
        node: &NodeSeen,
        seen: &Seen,
        config: &Config,
        out: &mut Vec<Action>,
    ) {
        let elapsed = now.duration_since(self.since);
        if self
            .boot_id
            .as_deref()
            .is_some_and(|old| !node.boot_id.is_empty() && node.boot_id != old)
        {
            self.mark(Mark::Booted, now);
            self.booted_at = Some(now);
            self.enter(Phase::Ready, now);
            out.push(Action::Annotate(self.progress(config)));
            out.push(note(
                "RolloutNodeBooted",
                format!("{} is back with boot ID {}", self.name, node.boot_id),
                false,
            ));
            return;
        }
        if let Some(refused) = &node.refused {
            self.stop(
                out,
                format!("the agent on {} did not reboot it: {refused}", self.name),
                "fix what the agent says (its Events on the Node), then rerun",
            );
            return;
        }
        if let Some(failed) = &seen.failed {
            self.stop(
                out,
                format!("asking {} to reboot failed: {}", self.name, chain(failed)),
                "fix the reboot command or the API access, then rerun",
            );
            return;
        }
        if elapsed >= config.timeouts.down {
            let accepted = self.request.is_some() && node.accepted == self.request;
            let what = match config.how {
                How::Agent if !accepted => format!(
                    "the agent on {} never accepted the reboot request within {} (is `rebootguard agent` running there, with reboot-on-request?)",
                    self.name,
                    show(config.timeouts.down)
                ),
                _ => format!(
                    "{} did not come back within {} (boot ID unchanged)",
                    self.name,
                    show(config.timeouts.down)
                ),
            };
            self.stop(out, what, "power the node on or look at its console; rerun to resume here (no second reboot is asked)");
            return;
        }
        // A request lost with a CLI that died between annotating and asking.
        if let Some(id) = &self.request
            && node.requested.as_deref() != Some(id.as_str())
            && node.accepted.as_deref() != Some(id.as_str())
        {
            out.push(Action::Request {
                id: id.clone(),
                expires: now.checked_add(config.request_ttl).unwrap_or(now),
            });
        }
        let what = if self.request.is_some() && node.accepted == self.request {
            format!(
                "{} accepted the reboot; waiting for a new boot ID",
                self.name
            )
        } else {
            format!("waiting for {} to reboot", self.name)
        };
        self.wait(out, what);
    }

    fn network(
        &mut self,
        now: Timestamp,
        node: &NodeSeen,
        seen: &Seen,
        config: &Config,
        out: &mut Vec<Action>,
    ) {
        let elapsed = now.duration_since(self.since);
        if let Some(Err(e)) = &seen.verify
            && !e.is_retryable()
        {
            // Its namespace is missing, RBAC refuses it: waiting out the
            // network timeout would end the same way.
            self.stop(
                out,
                format!("verify cannot run on {}: {}", self.name, chain(e)),
                "give verify what it needs (its namespace, image and RBAC: docs/verify.md), then rerun to resume here",
            );
            return;
        }
        let booted = self.booted_at.unwrap_or(self.since);
        // The condition must come from this boot's agent: one written
        // before the reboot may still say True. Kubernetes keeps whole
        // seconds, so compare with the second the boot was seen in.
        let fresh_after = Timestamp::from_second(booted.as_second()).unwrap_or(booted);
        let mut problems = Vec::new();
        match (&node.pod_network, self.agent) {
            (Some(pn), _) if pn.ready && pn.heartbeat.is_some_and(|h| h >= fresh_after) => {}
            (Some(pn), _) if !pn.ready => {
                problems.push(format!("PodNetworkReady=False: {}", pn.why))
            }
            (Some(_), _) => {
                problems.push("PodNetworkReady not yet reported by this boot's agent".into())
            }
            (None, true) => problems
                .push("PodNetworkReady missing (the agent reported it before the reboot)".into()),
            (None, false) => {}
        }
        match &seen.verify {
            Some(Err(e)) => problems.push(format!("verify failed: {}", chain(e))),
            None if config.verify => problems.push("verify has not passed yet".into()),
            Some(Ok(())) | None => {}
        }
        if !node.ready {
            problems.push(format!("{} is not Ready", self.name));
        }
        if problems.is_empty() {
            if node.pod_network.is_none() && !self.agent {
                out.push(note(
                    "RolloutNetworkUnverified",
                    format!(
                        "{} reports no PodNetworkReady (no agent): its pod network is not verified",
                        self.name
                    ),
                    true,
                ));
            }
            self.mark(Mark::Network, now);
            self.enter(Phase::Clean, now);
            out.push(Action::Annotate(self.progress(config)));
            out.push(Action::CleanStale);
        } else if elapsed >= config.timeouts.network {
            self.stop(
                out,
                format!("{}'s pod network does not work {} after Ready: {}", self.name, show(config.timeouts.network), problems.join("; ")),
                "follow the first domino below; the node stays cordoned; rerun to resume here once fixed",
            );
        } else {
            self.wait(
                out,
                format!(
                    "waiting for {}'s pod network: {}",
                    self.name,
                    problems.join("; ")
                ),
            );
        }
    }

    fn progress(&self, config: &Config) -> Progress {
        Progress {
            rollout: config.rollout.clone(),
            phase: self.phase,
            boot_id: self.boot_id.clone(),
            request: self.request.clone(),
            agent: self.agent,
        }
    }

    fn enter(&mut self, phase: Phase, now: Timestamp) {
        self.phase = phase;
        self.since = now;
        self.waiting = None;
    }

    fn mark(&mut self, mark: Mark, at: Timestamp) {
        self.timeline.push((mark, at));
    }

    fn wait(&mut self, out: &mut Vec<Action>, what: String) {
        if self.waiting.as_deref() != Some(what.as_str()) {
            out.push(note("RolloutWaiting", what.clone(), false));
            self.waiting = Some(what);
        }
    }

    fn stop(&mut self, out: &mut Vec<Action>, what: String, hint: &str) {
        out.push(note(
            "RolloutStopped",
            format!("stopped at {} ({}): {what}", self.name, self.phase.name()),
            true,
        ));
        self.stopped = Some(Stop {
            node: self.name.clone(),
            phase: self.phase,
            what,
            hint: hint.to_owned(),
        });
    }
}

fn note(reason: &'static str, message: String, warning: bool) -> Action {
    Action::Note(Note {
        reason,
        message,
        warning,
    })
}

fn how_name(how: How) -> &'static str {
    match how {
        How::Agent => "through its agent",
        How::Command => "by the configured command",
        How::Manual => "from the operator",
    }
}

fn gate_hint(gate: &str) -> &'static str {
    match gate {
        "others-healthy" => "fix the other node first (rebootguard diagnose), then rerun",
        "quorum" => "bring the other servers back to Ready first, then rerun",
        "storage" => "let the volume rebuild a replica on another node (or add one), then rerun",
        "disruption-budgets" => {
            "scale the workload up or relax its PodDisruptionBudget, then rerun"
        }
        "alerts" => {
            "resolve the firing alerts (or make --prometheus reachable; --ignore-alert for one that always fires), then rerun"
        }
        "window" => {
            "rerun when the window opens (e.g. from a systemd timer or a CronJob), or raise --timeout-gates to wait for it"
        }
        _ => "fix what the gate says, then rerun",
    }
}

/// A duration as people write it (`90s`, `5m`).
pub fn show(d: SignedDuration) -> String {
    let s = d.as_secs();
    if s >= 60 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else if d.subsec_millis() != 0 && s < 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests;
