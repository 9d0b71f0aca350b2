//! The controller's judgement: given the nodes, the rollout Lease, the
//! maintenance windows and the time, what to do now. Pure; the controller
//! asks it on every turn of its loop and carries the answer out.
//!
//! The rules, in the order they are applied:
//!
//! 1. **An unfinished rollout comes first.** The rollout Lease holds the plan
//!    of a rollout until it finishes ([`crate::progress::Plan`]).
//!    - Held by the controller itself (its leader died or was stopped
//!      mid-rollout): [`Decision::Resume`], window or not: a node whose
//!      reboot began inside the window is finished, never left cordoned
//!      until the next one (a window bounds when a reboot *starts*).
//!    - Held by someone else who still renews it (an operator's
//!      `rebootguard reboot`): [`Decision::Busy`].
//!    - Released with the plan still there (the rollout *stopped* at a
//!      node and left it cordoned), or held by someone else who stopped
//!      renewing it (an operator's CLI that died): [`Decision::Hold`].
//!      Nothing else is rebooted until a human finishes that rollout
//!      (`rebootguard reboot` resumes it) or drops it. A stop is never
//!      retried by the controller: what stopped it (a node that did not
//!      come back, a network that did not work) needs someone to look.
//!    - Every node of the plan already done: [`Decision::Resume`] (the
//!      rollout only has to be closed).
//!    - The node it is at gone from the cluster (deleted while cordoned or
//!      down): [`Decision::Close`], unless someone else is working on it. A
//!      deleted node never holds the others back (kured's lesson).
//! 2. **Which nodes need a reboot**: the sentinel annotation is present
//!    (the agent's `rebootguard.io/reboot-required`, or another), unless the
//!    controller rebooted the node after the annotation's time
//!    ([`Node::rebooted`]): a sentinel that survives the reboot would
//!    otherwise reboot the node in a loop. Such a node is skipped (silently
//!    for [`SETTLE`], while its agent may not have looked yet), and so
//!    is one cordoned outside any rollout (someone's maintenance; it is not
//!    ours to uncordon). None left: [`Decision::Idle`].
//! 3. **The window**: outside every configured window,
//!    [`Decision::Wait`] until the next one opens.
//! 4. **One node**: agents first, servers last; within each, the one that
//!    has waited longest, then by name. [`Decision::Start`]; the gates are
//!    asked by [`admit`] before it really starts ([`Decision::Blocked`]
//!    while one is closed: waiting is not a stop).

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::gates::{Gate, Role};
use crate::phase::Phase;
use crate::plan::{self, Order};
use crate::progress::{Plan, Progress};
use crate::window::{self, Window};

/// A node as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Server or agent.
    pub role: Role,
    /// The sentinel annotation: `None` absent; `Some(since)` present, with
    /// its time when the value is one (the agent writes RFC 3339).
    pub required: Option<Option<Timestamp>>,
    /// `spec.unschedulable`.
    pub cordoned: bool,
    /// Its rollout progress annotation, any rollout's.
    pub progress: Option<Progress>,
    /// When the controller last finished rebooting it.
    pub rebooted: Option<Timestamp>,
}

/// The rollout Lease as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// The unfinished rollout's plan, if one is on it.
    pub plan: Option<Plan>,
    /// Its holder (`None`: free or released).
    pub holder: Option<String>,
    /// The holder renews it (see [`crate::progress::holder`]).
    pub alive: bool,
}

/// How long after the controller rebooted a node a mark older than the
/// reboot is taken for one its agent has not withdrawn yet (it looks at
/// the sentinel on its next full check), rather than one that survived.
pub const SETTLE: SignedDuration = SignedDuration::from_mins(10);

/// What the controller is asked to decide from.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// Every node.
    pub nodes: &'a [Node],
    /// The rollout Lease.
    pub lease: &'a Lease,
    /// Who the controller is on the rollout Lease.
    pub me: &'a str,
    /// The maintenance windows (none: always open).
    pub windows: &'a [Window],
    /// Now.
    pub now: Timestamp,
}

/// A node that needs a reboot but is left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The node.
    pub node: String,
    /// Why, and what would change it.
    pub why: String,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "decision")]
pub enum Decision {
    /// No node needs a reboot.
    Idle,
    /// Someone else's rollout is running.
    Busy {
        /// Its holder.
        holder: String,
    },
    /// Continue the controller's unfinished rollout.
    Resume {
        /// The rollout.
        rollout: String,
        /// Its nodes.
        nodes: Vec<String>,
    },
    /// A rollout stopped (or its operator vanished): a human must finish
    /// or drop it; nothing else is rebooted meanwhile.
    Hold {
        /// The rollout.
        rollout: String,
        /// The node it stopped at (the first of its plan not done).
        node: Option<String>,
        /// That node's last phase.
        phase: Option<Phase>,
        /// Whether it is still cordoned.
        cordoned: bool,
        /// Who held it, when someone still does (a vanished operator).
        holder: Option<String>,
    },
    /// The node an unfinished rollout is at is gone from the cluster:
    /// close that rollout (remove its plan), so a deleted node never holds
    /// the others back.
    Close {
        /// The rollout.
        rollout: String,
        /// The node that is gone.
        gone: String,
    },
    /// Nodes need a reboot; the window is closed.
    Wait {
        /// When the next window opens.
        until: Timestamp,
        /// The nodes waiting, in the order they will go.
        nodes: Vec<String>,
    },
    /// Reboot this node now (once [`admit`] says the gates are open).
    Start {
        /// The node.
        node: String,
        /// The nodes after it, in order.
        queue: Vec<String>,
    },
    /// The next node's gates are closed; asked again on the next turn.
    Blocked {
        /// The node.
        node: String,
        /// The closed gates.
        gates: Vec<Gate>,
    },
}

/// The decision, and the nodes left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// What to do.
    pub decision: Decision,
    /// Nodes needing a reboot that the controller does not take, with why.
    pub skipped: Vec<Skipped>,
}

/// Decides what to do now.
pub fn decide(input: &Input<'_>) -> Schedule {
    if let Some(decision) = unfinished(input) {
        return Schedule {
            decision,
            skipped: Vec::new(),
        };
    }
    if let Some(holder) = input
        .lease
        .holder
        .as_ref()
        .filter(|h| input.lease.alive && *h != input.me)
    {
        // No plan yet, but someone holds the Lease: a rollout starting.
        return Schedule {
            decision: Decision::Busy {
                holder: holder.clone(),
            },
            skipped: Vec::new(),
        };
    }
    let (mut wanted, skipped) = wanted(input.nodes, input.now);
    let decision = if wanted.is_empty() {
        Decision::Idle
    } else if window::open(input.windows, input.now) == Some(false) {
        Decision::Wait {
            until: window::next_open(input.windows, input.now).unwrap_or(input.now),
            nodes: wanted,
        }
    } else {
        let node = wanted.remove(0);
        Decision::Start {
            node,
            queue: wanted,
        }
    };
    Schedule { decision, skipped }
}

/// Rule 1: an unfinished rollout on the Lease.
fn unfinished(input: &Input<'_>) -> Option<Decision> {
    let lease = input.lease;
    let plan = lease.plan.as_ref()?;
    let progress = |name: &str| {
        input
            .nodes
            .iter()
            .find(|n| n.name == name)
            .and_then(|n| n.progress.as_ref())
            .filter(|p| p.rollout == plan.id)
    };
    let open = plan
        .nodes
        .iter()
        .find(|n| progress(n).is_none_or(|p| p.phase != Phase::Done));
    let holder = lease.holder.as_deref().filter(|h| !h.is_empty());
    let someone_else = lease.alive && holder.is_some_and(|h| h != input.me);
    if let Some(gone) = open.filter(|name| !input.nodes.iter().any(|n| &&n.name == name))
        && !someone_else
    {
        return Some(Decision::Close {
            rollout: plan.id.clone(),
            gone: gone.clone(),
        });
    }
    let resume = Decision::Resume {
        rollout: plan.id.clone(),
        nodes: plan.nodes.clone(),
    };
    match holder {
        Some(h) if h == input.me => Some(resume),
        _ if open.is_none() => Some(resume),
        Some(h) if lease.alive => Some(Decision::Busy {
            holder: h.to_owned(),
        }),
        _ => {
            let node = open.cloned();
            let cordoned = node
                .as_deref()
                .is_some_and(|name| input.nodes.iter().any(|n| n.name == name && n.cordoned));
            Some(Decision::Hold {
                rollout: plan.id.clone(),
                phase: node.as_deref().and_then(progress).map(|p| p.phase),
                node,
                cordoned,
                holder: holder.map(str::to_owned),
            })
        }
    }
}

/// Rule 2: the nodes that need a reboot, in order, and those skipped.
fn wanted(nodes: &[Node], now: Timestamp) -> (Vec<String>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let mut wanted: Vec<&Node> = Vec::new();
    for n in nodes {
        let Some(since) = n.required else { continue };
        let in_rollout = n.progress.as_ref().is_some_and(|p| p.phase != Phase::Done);
        if let Some(rebooted) = n.rebooted
            && since.is_none_or(|s| s <= rebooted)
        {
            if now.duration_since(rebooted) < SETTLE {
                // Its agent has yet to look at the new boot's sentinel.
                continue;
            }
            skipped.push(Skipped {
                node: n.name.clone(),
                why: format!(
                    "still marked as needing a reboot after the controller rebooted it at {rebooted}: the sentinel survived the reboot (is it on a tmpfs like /run?); not rebooting it again until the mark is renewed"
                ),
            });
        } else if n.cordoned && !in_rollout {
            skipped.push(Skipped {
                node: n.name.clone(),
                why: "cordoned outside any rollout (someone's maintenance): uncordon it to let the controller reboot it".into(),
            });
        } else {
            wanted.push(n);
        }
    }
    // Longest waiting first (an unreadable time last), then by name; a
    // stable sort by role then puts the agents first.
    wanted.sort_by(|a, b| {
        let key = |n: &Node| (n.required.flatten().is_none(), n.required.flatten());
        key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
    let names: Vec<String> = wanted.iter().map(|n| n.name.clone()).collect();
    let roles: Vec<(String, Role)> = wanted.iter().map(|n| (n.name.clone(), n.role)).collect();
    let ordered = plan::order(&roles, &names, Order::AgentsFirst).unwrap_or(names);
    (ordered, skipped)
}

/// Rule 4's second half: a [`Decision::Start`] goes ahead only when every
/// gate for its node is open; anything else passes through unchanged.
pub fn admit(decision: Decision, gates: &[Gate]) -> Decision {
    match decision {
        Decision::Start { node, .. } if gates.iter().any(|g| !g.open) => Decision::Blocked {
            node,
            gates: gates.iter().filter(|g| !g.open).cloned().collect(),
        },
        other => other,
    }
}

impl Decision {
    /// One line for the log and the controller's Events.
    pub fn describe(&self) -> String {
        match self {
            Decision::Idle => "no node needs a reboot".into(),
            Decision::Busy { holder } => {
                format!(
                    "another rollout is running (the rollout Lease is held by {holder}); waiting"
                )
            }
            Decision::Resume { rollout, nodes } => {
                format!(
                    "resuming the unfinished rollout {rollout} ({})",
                    nodes.join(" → ")
                )
            }
            Decision::Hold {
                rollout,
                node,
                phase,
                cordoned,
                holder,
            } => {
                let at = match (node, phase) {
                    (Some(n), Some(p)) => format!(" at {n} (phase {})", p.name()),
                    (Some(n), None) => format!(" at {n}"),
                    _ => String::new(),
                };
                let state = if *cordoned { ", left cordoned" } else { "" };
                let why = match holder {
                    Some(h) => format!("its holder {h} stopped renewing the Lease"),
                    None => "it stopped".into(),
                };
                format!(
                    "rollout {rollout} is unfinished{at}{state}: {why}. Rebooting nothing else until a human finishes it (fix what stopped it, then `rebootguard reboot` resumes it) or drops it (remove the rebootguard.io/rollout annotation from the rollout Lease, uncordon the node)"
                )
            }
            Decision::Close { rollout, gone } => format!(
                "closing the unfinished rollout {rollout}: its node {gone} is gone from the cluster (deleted), so nothing is left to finish there"
            ),
            Decision::Wait { until, nodes } => format!(
                "{} need(s) a reboot; outside the maintenance window until {until}",
                nodes.join(", ")
            ),
            Decision::Start { node, queue } if queue.is_empty() => {
                format!("rebooting {node}")
            }
            Decision::Start { node, queue } => {
                format!("rebooting {node} (then {})", queue.join(", "))
            }
            Decision::Blocked { node, gates } => {
                let closed: Vec<String> = gates
                    .iter()
                    .map(|g| format!("{}: {}", g.name, g.detail))
                    .collect();
                format!(
                    "{node} needs a reboot; waiting for its gates ({})",
                    closed.join("; ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "rebootguard-controller";

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn node(name: &str, role: Role) -> Node {
        Node {
            name: name.into(),
            role,
            required: None,
            cordoned: false,
            progress: None,
            rebooted: None,
        }
    }

    fn needs(mut n: Node, since: &str) -> Node {
        n.required = Some(Some(at(since)));
        n
    }

    fn progress(rollout: &str, phase: Phase) -> Option<Progress> {
        Some(Progress {
            rollout: rollout.into(),
            phase,
            boot_id: None,
            request: None,
            agent: true,
        })
    }

    fn plan(id: &str, nodes: &[&str]) -> Plan {
        Plan {
            id: id.into(),
            nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    // 2026-12-02 is a Wednesday.
    const NOW: &str = "2026-12-02T03:00:00Z";

    fn decide_with(nodes: &[Node], lease: &Lease, windows: &[&str]) -> Schedule {
        let windows: Vec<Window> = windows.iter().map(|w| w.parse().expect("window")).collect();
        decide(&Input {
            nodes,
            lease,
            me: ME,
            windows: &windows,
            now: at(NOW),
        })
    }

    fn cluster() -> Vec<Node> {
        vec![
            node("boromir", Role::Server),
            node("theoden", Role::Agent),
            node("merry", Role::Agent),
        ]
    }

    #[test]
    fn nothing_marked_is_idle() {
        let s = decide_with(&cluster(), &Lease::default(), &[]);
        assert_eq!(s.decision, Decision::Idle);
        assert!(s.skipped.is_empty());
        assert_eq!(s.decision.describe(), "no node needs a reboot");
    }

    #[test]
    fn agents_first_then_the_longest_waiting_then_by_name() {
        let mut nodes = cluster();
        nodes[0] = needs(nodes[0].clone(), "2026-11-01T00:00:00Z");
        nodes[1] = needs(nodes[1].clone(), "2026-12-01T00:00:00Z");
        nodes[2] = needs(nodes[2].clone(), "2026-11-30T00:00:00Z");
        let s = decide_with(&nodes, &Lease::default(), &[]);
        assert_eq!(
            s.decision,
            Decision::Start {
                node: "merry".into(),
                queue: vec!["theoden".into(), "boromir".into()],
            }
        );
        // Same time, or no readable time (last): by name.
        nodes[1].required = Some(None);
        nodes[2].required = Some(None);
        let s = decide_with(&nodes, &Lease::default(), &[]);
        let Decision::Start { node, queue } = s.decision else {
            panic!("start");
        };
        assert_eq!(
            (node.as_str(), queue),
            ("merry", vec!["theoden".to_owned(), "boromir".to_owned()])
        );
    }

    #[test]
    fn a_closed_window_waits_until_it_opens() {
        let mut nodes = cluster();
        nodes[1] = needs(nodes[1].clone(), "2026-12-01T00:00:00Z");
        let s = decide_with(
            &nodes,
            &Lease::default(),
            &["sat 02:00-05:00", "thu 01:00-02:00"],
        );
        assert_eq!(
            s.decision,
            Decision::Wait {
                until: at("2026-12-03T01:00:00Z"),
                nodes: vec!["theoden".into()],
            }
        );
        assert!(s.decision.describe().contains("until 2026-12-03T01:00:00Z"));
        // Open now: start.
        let s = decide_with(&nodes, &Lease::default(), &["wed 02:00-05:00"]);
        assert!(matches!(s.decision, Decision::Start { ref node, .. } if node == "theoden"));
        // A closed window with nothing to do is still idle.
        let s = decide_with(&cluster(), &Lease::default(), &["sat 02:00-05:00"]);
        assert_eq!(s.decision, Decision::Idle);
    }

    #[test]
    fn a_sentinel_that_survived_our_reboot_is_not_rebooted_again() {
        let mut nodes = cluster();
        nodes[1] = needs(nodes[1].clone(), "2026-12-01T00:00:00Z");
        // Just rebooted: its agent has not withdrawn the mark yet.
        nodes[1].rebooted = Some(at("2026-12-02T02:55:00Z"));
        let s = decide_with(&nodes, &Lease::default(), &[]);
        assert_eq!(s.decision, Decision::Idle);
        assert!(s.skipped.is_empty());
        // Long enough after: it survived, and is said so.
        nodes[1].rebooted = Some(at("2026-12-01T01:00:00Z"));
        let s = decide_with(&nodes, &Lease::default(), &[]);
        assert_eq!(s.decision, Decision::Idle);
        assert_eq!(s.skipped.len(), 1);
        assert!(
            s.skipped[0].why.contains("survived the reboot"),
            "{:?}",
            s.skipped
        );
        // An unreadable mark after a reboot: the same.
        nodes[1].required = Some(None);
        assert_eq!(decide_with(&nodes, &Lease::default(), &[]).skipped.len(), 1);
        // Marked again after that reboot: it goes.
        nodes[1].required = Some(Some(at("2026-12-01T02:00:00Z")));
        let s = decide_with(&nodes, &Lease::default(), &[]);
        assert!(matches!(s.decision, Decision::Start { ref node, .. } if node == "theoden"));
        assert!(s.skipped.is_empty());
    }

    #[test]
    fn a_node_cordoned_by_someone_else_is_left_alone() {
        let mut nodes = cluster();
        nodes[1] = needs(nodes[1].clone(), "2026-12-01T00:00:00Z");
        nodes[1].cordoned = true;
        nodes[2] = needs(nodes[2].clone(), "2026-12-01T00:00:00Z");
        let s = decide_with(&nodes, &Lease::default(), &[]);
        assert!(matches!(s.decision, Decision::Start { ref node, .. } if node == "merry"));
        assert_eq!(s.skipped[0].node, "theoden");
        assert!(s.skipped[0].why.contains("uncordon"));
        // Cordoned by a rollout that finished long ago counts as someone's too.
        nodes[1].progress = progress("old", Phase::Done);
        assert_eq!(decide_with(&nodes, &Lease::default(), &[]).skipped.len(), 1);
    }

    #[test]
    fn our_unfinished_rollout_resumes_even_outside_the_window() {
        let mut nodes = cluster();
        nodes[1].progress = progress("r1", Phase::Down);
        nodes[1].cordoned = true;
        let lease = Lease {
            plan: Some(plan("r1", &["theoden"])),
            holder: Some(ME.into()),
            alive: false,
        };
        let s = decide_with(&nodes, &lease, &["sat 02:00-05:00"]);
        assert_eq!(
            s.decision,
            Decision::Resume {
                rollout: "r1".into(),
                nodes: vec!["theoden".into()],
            }
        );
    }

    #[test]
    fn a_stopped_rollout_holds_everything_until_a_human_acts() {
        let mut nodes = cluster();
        nodes[1].progress = progress("r1", Phase::Network);
        nodes[1].cordoned = true;
        nodes[2] = needs(nodes[2].clone(), "2026-12-01T00:00:00Z");
        // run() releases the Lease on a stop and leaves the plan.
        let lease = Lease {
            plan: Some(plan("r1", &["theoden"])),
            holder: None,
            alive: false,
        };
        let s = decide_with(&nodes, &lease, &[]);
        assert_eq!(
            s.decision,
            Decision::Hold {
                rollout: "r1".into(),
                node: Some("theoden".into()),
                phase: Some(Phase::Network),
                cordoned: true,
                holder: None,
            }
        );
        let text = s.decision.describe();
        for part in [
            "at theoden (phase network)",
            "left cordoned",
            "rebootguard reboot",
            "drops it",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // An operator's rollout whose CLI died: the same, naming them.
        let lease = Lease {
            holder: Some("reboot/op@laptop/7".into()),
            ..lease
        };
        let s = decide_with(&nodes, &lease, &[]);
        assert!(
            matches!(s.decision, Decision::Hold { holder: Some(ref h), .. } if h == "reboot/op@laptop/7")
        );
        assert!(s.decision.describe().contains("stopped renewing"));
    }

    #[test]
    fn a_stopped_rollout_whose_nodes_are_all_done_is_only_closed() {
        let mut nodes = cluster();
        nodes[1].progress = progress("r1", Phase::Done);
        let lease = Lease {
            plan: Some(plan("r1", &["theoden"])),
            holder: None,
            alive: false,
        };
        assert!(matches!(
            decide_with(&nodes, &lease, &[]).decision,
            Decision::Resume { .. }
        ));
        // A node of the plan without progress (never reached) is not done.
        let lease = Lease {
            plan: Some(plan("r1", &["theoden", "merry"])),
            ..lease
        };
        let s = decide_with(&nodes, &lease, &[]);
        assert!(
            matches!(s.decision, Decision::Hold { node: Some(ref n), phase: None, cordoned: false, .. } if n == "merry")
        );
        assert!(s.decision.describe().contains("at merry:"));
    }

    #[test]
    fn a_rollout_at_a_deleted_node_is_closed_not_held() {
        let nodes = cluster();
        let mut lease = Lease {
            plan: Some(plan("r1", &["gone"])),
            holder: None,
            alive: false,
        };
        let close = Decision::Close {
            rollout: "r1".into(),
            gone: "gone".into(),
        };
        assert_eq!(decide_with(&nodes, &lease, &[]).decision, close);
        assert!(close.describe().contains("gone from the cluster"));
        // Ours, interrupted: the same.
        lease.holder = Some(ME.into());
        lease.alive = true;
        assert_eq!(decide_with(&nodes, &lease, &[]).decision, close);
        // Someone else still working on it: theirs to finish.
        lease.holder = Some("reboot/op@laptop/7".into());
        assert!(matches!(
            decide_with(&nodes, &lease, &[]).decision,
            Decision::Busy { .. }
        ));
    }

    #[test]
    fn someone_elses_live_rollout_is_waited_for() {
        let mut nodes = cluster();
        nodes[1] = needs(nodes[1].clone(), "2026-12-01T00:00:00Z");
        let mut lease = Lease {
            plan: Some(plan("r9", &["merry"])),
            holder: Some("reboot/op@laptop/7".into()),
            alive: true,
        };
        let busy = Decision::Busy {
            holder: "reboot/op@laptop/7".into(),
        };
        assert_eq!(decide_with(&nodes, &lease, &[]).decision, busy);
        // Before it wrote its plan.
        lease.plan = None;
        assert_eq!(decide_with(&nodes, &lease, &[]).decision, busy);
        assert!(busy.describe().contains("reboot/op@laptop/7"));
        // Our own live hold without a plan is no obstacle.
        lease.holder = Some(ME.into());
        assert!(matches!(
            decide_with(&nodes, &lease, &[]).decision,
            Decision::Start { .. }
        ));
        // A dead holder without a plan is no obstacle either.
        lease.holder = Some("reboot/op@laptop/7".into());
        lease.alive = false;
        assert!(matches!(
            decide_with(&nodes, &lease, &[]).decision,
            Decision::Start { .. }
        ));
    }

    #[test]
    fn closed_gates_block_a_start_and_nothing_else() {
        let open = Gate {
            name: "quorum",
            open: true,
            detail: "fine".into(),
            opens_at: None,
        };
        let closed = Gate {
            name: "others-healthy",
            open: false,
            detail: "merry is not Ready".into(),
            opens_at: None,
        };
        let start = Decision::Start {
            node: "theoden".into(),
            queue: vec![],
        };
        assert_eq!(admit(start.clone(), std::slice::from_ref(&open)), start);
        let blocked = admit(start, &[open, closed.clone()]);
        assert_eq!(
            blocked,
            Decision::Blocked {
                node: "theoden".into(),
                gates: vec![closed],
            }
        );
        assert!(
            blocked
                .describe()
                .contains("others-healthy: merry is not Ready")
        );
        assert_eq!(admit(Decision::Idle, &[]), Decision::Idle);
    }

    #[test]
    fn every_decision_describes_itself() {
        let start = Decision::Start {
            node: "a".into(),
            queue: vec!["b".into()],
        };
        assert_eq!(start.describe(), "rebooting a (then b)");
        let resume = Decision::Resume {
            rollout: "r1".into(),
            nodes: vec!["a".into(), "b".into()],
        };
        assert!(resume.describe().contains("r1 (a → b)"));
        let json = serde_json::to_value(&resume).expect("json");
        assert_eq!(json["decision"], "resume");
    }
}
