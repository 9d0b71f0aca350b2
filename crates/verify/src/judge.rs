//! The verdict: node × check, from what the API shows of each probe pod
//! (its status, its termination message, its sandbox failure events).
//!
//! Checks, in the order a pod depends on them:
//!
//! - `sandbox`: the pod got a sandbox with networking (an IP). Failing
//!   evidence is the kubelet's `FailedCreatePodSandBox` event, classified by
//!   diagnose's classifier (one source of truth for "subnet.env missing").
//! - `pod-ip`: the probe's address lies in the node's podCIDR.
//! - `dns`: cluster DNS answered through the pod's resolver.
//! - `peers`: the probe reached every other probe that got an address.
//!   A peer without pod networking fails in its own `sandbox` cell, not in
//!   everyone else's `peers`: the first domino is named once.
//!
//! A cell is `unknown` when verify could not learn the answer (the pod
//! could not be created, the probe never ran or left no result): that is
//! "could not verify" (exit 2), never a pass.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rebootguard_diagnose::classify;
use serde::Serialize;

use crate::message::Message;

/// A check, a column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The pod got a sandbox and an address.
    Sandbox,
    /// The address is in the node's podCIDR.
    PodIp,
    /// Cluster DNS resolves.
    Dns,
    /// The other nodes' probes are reachable.
    Peers,
}

impl Check {
    /// Every check, in table order.
    pub const ALL: [Check; 4] = [Check::Sandbox, Check::PodIp, Check::Dns, Check::Peers];

    /// The column name.
    pub fn name(self) -> &'static str {
        match self {
            Check::Sandbox => "sandbox",
            Check::PodIp => "pod-ip",
            Check::Dns => "dns",
            Check::Peers => "peers",
        }
    }
}

/// A cell's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Proven to work.
    Pass,
    /// Proven broken.
    Fail,
    /// Not run, for a reason named elsewhere (an earlier failure, no peer).
    Skip,
    /// Could not be learnt.
    Unknown,
}

/// One node × check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// Which check.
    pub check: Check,
    /// Its outcome.
    pub status: Status,
    /// One line: what was seen.
    pub detail: String,
    /// The raw texts behind it (an event's message, unreachable peers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

impl Cell {
    fn new(check: Check, status: Status, detail: impl Into<String>) -> Cell {
        Cell {
            check,
            status,
            detail: detail.into(),
            evidence: Vec::new(),
        }
    }
}

/// A container's end, as `state.terminated` says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Terminated {
    /// `exitCode`.
    pub exit_code: i32,
    /// `reason` (`Completed`, `Error`, `OOMKilled`, ...).
    pub reason: String,
    /// `message`: the termination message (or log tail).
    pub message: String,
}

/// What the API shows of a probe pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pod {
    /// `status.phase`.
    pub phase: String,
    /// `status.podIP`.
    pub ip: Option<IpAddr>,
    /// The container ended.
    pub terminated: Option<Terminated>,
    /// The container waits: (reason, message).
    pub waiting: Option<(String, String)>,
}

/// Everything verify learnt about one node's probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The node.
    pub node: String,
    /// The Node was Ready when verify started.
    pub node_ready: bool,
    /// Why the pod could not be created, if so.
    pub create_error: Option<String>,
    /// The pod as last seen (`None`: never seen, or gone).
    pub pod: Option<Pod>,
    /// `FailedCreatePodSandBox` messages for the pod, oldest first.
    pub sandbox_events: Vec<String>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// Every probe settled.
    Settled,
    /// `--timeout` ran out first.
    TimedOut,
    /// SIGINT or SIGTERM.
    Interrupted,
}

/// One node's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The node.
    pub node: String,
    /// Every check, in [`Check::ALL`] order.
    pub checks: Vec<Cell>,
}

impl Row {
    /// The row's outcome: fail if a cell failed, unknown if one is
    /// unknown, else pass.
    pub fn status(&self) -> Status {
        let worst = |s| self.checks.iter().any(|c| c.status == s);
        if worst(Status::Fail) {
            Status::Fail
        } else if worst(Status::Unknown) {
            Status::Unknown
        } else {
            Status::Pass
        }
    }

    /// The first cell that is not a pass or skip: this node's first domino.
    pub fn first_problem(&self) -> Option<&Cell> {
        self.checks
            .iter()
            .find(|c| matches!(c.status, Status::Fail | Status::Unknown))
    }
}

/// The verdict of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// One row per node, in the order given.
    pub nodes: Vec<Row>,
    /// How the run ended.
    pub end: End,
}

impl Verdict {
    /// `0` every check passed, `1` one failed, `2` none failed but something
    /// could not be verified.
    pub fn exit_code(&self) -> u8 {
        match self.status() {
            Status::Pass | Status::Skip => 0,
            Status::Fail => 1,
            Status::Unknown => 2,
        }
    }

    /// The run's outcome, as [`Row::status`] over every row.
    pub fn status(&self) -> Status {
        let has = |s| self.nodes.iter().any(|r| r.status() == s);
        if has(Status::Fail) {
            Status::Fail
        } else if has(Status::Unknown) || self.nodes.is_empty() {
            Status::Unknown
        } else {
            Status::Pass
        }
    }
}

/// Judges every node's probe.
pub fn judge(observed: &[Observed], end: End) -> Verdict {
    // Which probe owns which address, for naming peers.
    let owners: BTreeMap<IpAddr, &str> = observed
        .iter()
        .filter_map(|o| Some((o.pod.as_ref()?.ip?, o.node.as_str())))
        .collect();
    let nodes = observed
        .iter()
        .map(|o| Row {
            node: o.node.clone(),
            checks: row(o, observed, &owners, end),
        })
        .collect();
    Verdict { nodes, end }
}

fn row(o: &Observed, all: &[Observed], owners: &BTreeMap<IpAddr, &str>, end: End) -> Vec<Cell> {
    let skip_rest = |first: Cell, why: &str| {
        let mut cells = vec![first];
        cells.extend(
            Check::ALL[1..]
                .iter()
                .map(|c| Cell::new(*c, Status::Skip, why)),
        );
        cells
    };
    let unknown_rest = |first: Cell, why: String| {
        let mut cells = vec![first];
        cells.extend(
            Check::ALL[1..]
                .iter()
                .map(|c| Cell::new(*c, Status::Unknown, why.clone())),
        );
        cells
    };
    if let Some(e) = &o.create_error {
        return skip_rest(
            Cell::new(
                Check::Sandbox,
                Status::Unknown,
                format!("could not create the probe pod: {e}"),
            ),
            "no probe pod",
        );
    }
    let Some(pod) = &o.pod else {
        return skip_rest(
            Cell::new(
                Check::Sandbox,
                Status::Unknown,
                "the probe pod vanished before it reported (deleted by someone else?)",
            ),
            "no probe pod",
        );
    };
    let sandbox = sandbox_cell(o, pod, end);
    if sandbox.status != Status::Pass {
        return skip_rest(sandbox, "no pod network");
    }
    let Some(t) = &pod.terminated else {
        let why = match (&pod.waiting, end) {
            (Some((reason, message)), _) if reason != "ContainerCreating" => {
                format!("the probe did not start: {reason}: {message}")
            }
            (_, End::Interrupted) => "interrupted before the probe reported".to_owned(),
            _ => "the probe had not reported when verify stopped (raise --timeout?)".to_owned(),
        };
        return unknown_rest(sandbox, why);
    };
    let Some(m) = Message::parse(&t.message) else {
        let text = t.message.trim();
        let why = format!(
            "the probe exited {} ({}) without a result{}",
            t.exit_code,
            if t.reason.is_empty() {
                "no reason"
            } else {
                &t.reason
            },
            if text.is_empty() {
                String::new()
            } else {
                format!(": {}", last_line(text))
            }
        );
        let mut cells = unknown_rest(sandbox, why);
        if !text.is_empty() {
            cells[1].evidence.push(text.to_owned());
        }
        return cells;
    };
    let outcome = |check, ok: &crate::message::Outcome| {
        Cell::new(
            check,
            if ok.ok { Status::Pass } else { Status::Fail },
            ok.detail.clone(),
        )
    };
    vec![
        sandbox,
        outcome(Check::PodIp, &m.pod_ip),
        outcome(Check::Dns, &m.dns),
        peers_cell(o, &m, all, owners),
    ]
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
}

fn sandbox_cell(o: &Observed, pod: &Pod, end: End) -> Cell {
    if let Some(ip) = pod.ip {
        return Cell::new(Check::Sandbox, Status::Pass, format!("pod got {ip}"));
    }
    if pod.terminated.is_some() {
        return Cell::new(
            Check::Sandbox,
            Status::Pass,
            "the probe ran (no address reported)",
        );
    }
    if let Some(last) = o.sandbox_events.last() {
        let class = classify::sandbox(last);
        let mut cell = Cell::new(
            Check::Sandbox,
            Status::Fail,
            format!("no pod network: {}", class.describe()),
        );
        cell.evidence.push(last.clone());
        return cell;
    }
    if !o.node_ready {
        return Cell::new(
            Check::Sandbox,
            Status::Fail,
            "the node is not Ready: its kubelet did not start the probe",
        );
    }
    let phase = if pod.phase.is_empty() {
        "Pending"
    } else {
        &pod.phase
    };
    let waiting = pod
        .waiting
        .as_ref()
        .map(|(r, m)| {
            if m.is_empty() {
                format!(", {r}")
            } else {
                format!(", {r}: {m}")
            }
        })
        .unwrap_or_default();
    let when = if end == End::Interrupted {
        "before verify was interrupted"
    } else {
        "within the timeout"
    };
    Cell::new(
        Check::Sandbox,
        Status::Unknown,
        format!("no pod network {when} and no sandbox event (phase {phase}{waiting})"),
    )
}

fn peers_cell(
    o: &Observed,
    m: &Message,
    all: &[Observed],
    owners: &BTreeMap<IpAddr, &str>,
) -> Cell {
    let others: Vec<&Observed> = all.iter().filter(|p| p.node != o.node).collect();
    let expected: BTreeMap<IpAddr, &str> = others
        .iter()
        .filter_map(|p| Some((p.pod.as_ref()?.ip?, p.node.as_str())))
        .collect();
    let without: Vec<&str> = others
        .iter()
        .filter(|p| p.pod.as_ref().and_then(|q| q.ip).is_none())
        .map(|p| p.node.as_str())
        .collect();
    let name = |ip: &IpAddr| {
        owners
            .get(ip)
            .map_or_else(|| ip.to_string(), |n| format!("{n} ({ip})"))
    };
    let note = if without.is_empty() {
        String::new()
    } else {
        format!("; not tried: {} (no pod network)", without.join(", "))
    };
    if others.is_empty() {
        return Cell::new(Check::Peers, Status::Pass, "no other node to reach");
    }
    if expected.is_empty() && m.peers.unreachable.is_empty() {
        return Cell::new(
            Check::Peers,
            Status::Skip,
            format!("no peer to reach{note}"),
        );
    }
    let mut evidence: Vec<String> = m
        .peers
        .unreachable
        .iter()
        .map(|u| format!("{}: {}", name(&u.ip), u.error))
        .collect();
    if m.peers.omitted > 0 {
        evidence.push(format!("... and {} more unreachable", m.peers.omitted));
    }
    let failed: Vec<IpAddr> = m.peers.unreachable.iter().map(|u| u.ip).collect();
    let missing: Vec<&str> = match &m.peers.reached {
        Some(reached) => expected
            .iter()
            .filter(|(ip, _)| !reached.contains(ip) && !failed.contains(ip))
            .map(|(_, n)| *n)
            .collect(),
        None => Vec::new(),
    };
    let short = m.peers.reached.is_none() && m.peers.reached_count < expected.len();
    let lookup = m
        .peers
        .lookup_error
        .as_deref()
        .map(|e| format!(" (lookup: {e})"))
        .unwrap_or_default();
    if !missing.is_empty() {
        evidence.push(format!(
            "not found through DNS: {}{lookup}",
            missing.join(", ")
        ));
    }
    if short {
        evidence.push(format!(
            "found {} of {} peers through DNS{lookup}",
            m.peers.found,
            expected.len()
        ));
    }
    let unreachable = failed.len() + m.peers.omitted;
    if unreachable == 0 && missing.is_empty() && !short {
        let names: Vec<&str> = expected.values().copied().collect();
        return Cell::new(
            Check::Peers,
            Status::Pass,
            format!("reached {}: {}{note}", names.len(), names.join(", ")),
        );
    }
    let mut parts = Vec::new();
    if unreachable > 0 {
        parts.push(format!("{unreachable} unreachable"));
    }
    if !missing.is_empty() || short {
        parts.push("not all found".to_owned());
    }
    let mut cell = Cell::new(
        Check::Peers,
        Status::Fail,
        format!(
            "{} of {} peers: {}{note}",
            m.peers.reached_count.min(expected.len()),
            expected.len(),
            parts.join(", ")
        ),
    );
    cell.evidence = evidence;
    cell
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Outcome, PeerError, Peers, VERSION};

    const EVENT: &str = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"abc\": plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory";

    fn ip(last: u8, net: u8) -> IpAddr {
        IpAddr::from([10, 42, net, last])
    }

    fn msg(node: &str, own: IpAddr, reached: Vec<IpAddr>, expected: usize) -> String {
        Message {
            v: VERSION,
            node: node.into(),
            ips: vec![own],
            pod_ip: Outcome::pass(format!("{own} is in the podCIDR")),
            dns: Outcome::pass("kubernetes.default -> 10.43.0.1"),
            peers: Peers {
                expected,
                found: reached.len(),
                reached_count: reached.len(),
                reached: Some(reached),
                ..Peers::default()
            },
            millis: 1000,
        }
        .to_json(4096)
        .unwrap()
    }

    fn done(node: &str, net: u8, message: String) -> Observed {
        Observed {
            node: node.into(),
            node_ready: true,
            create_error: None,
            pod: Some(Pod {
                phase: "Succeeded".into(),
                ip: Some(ip(5, net)),
                terminated: Some(Terminated {
                    exit_code: 0,
                    reason: "Completed".into(),
                    message,
                }),
                waiting: None,
            }),
            sandbox_events: vec![],
        }
    }

    fn broken(node: &str) -> Observed {
        Observed {
            node: node.into(),
            node_ready: true,
            create_error: None,
            pod: Some(Pod {
                phase: "Pending".into(),
                ip: None,
                terminated: None,
                waiting: Some(("ContainerCreating".into(), String::new())),
            }),
            sandbox_events: vec![EVENT.into()],
        }
    }

    fn statuses(row: &Row) -> Vec<Status> {
        row.checks.iter().map(|c| c.status).collect()
    }

    #[test]
    fn healthy_cluster_passes_everything() {
        let a = done("a", 0, msg("a", ip(5, 0), vec![ip(5, 1)], 1));
        let b = done("b", 1, msg("b", ip(5, 1), vec![ip(5, 0)], 1));
        let v = judge(&[a, b], End::Settled);
        assert_eq!(v.exit_code(), 0);
        assert_eq!(statuses(&v.nodes[0]), [Status::Pass; 4]);
        assert_eq!(v.nodes[0].checks[3].detail, "reached 1: b");
        assert!(v.nodes[0].first_problem().is_none());
    }

    #[test]
    fn the_incident_names_the_broken_nodes_once() {
        // samwise works; boromir and theoden get no sandbox; DNS is down
        // everywhere (CoreDNS lived on boromir).
        let mut sam = Message::parse(&msg("samwise", ip(5, 1), vec![], 2)).unwrap();
        sam.dns = Outcome::fail(
            "kubernetes.default: failed to lookup address information: Temporary failure in name resolution",
        );
        sam.peers.lookup_error = Some("Temporary failure in name resolution".into());
        let v = judge(
            &[
                broken("boromir"),
                broken("theoden"),
                done("samwise", 1, sam.to_json(4096).unwrap()),
            ],
            End::Settled,
        );
        assert_eq!(v.exit_code(), 1);
        let boromir = &v.nodes[0];
        assert_eq!(
            statuses(boromir),
            [Status::Fail, Status::Skip, Status::Skip, Status::Skip]
        );
        let first = boromir.first_problem().unwrap();
        assert_eq!(first.check, Check::Sandbox);
        assert_eq!(first.detail, "no pod network: flannel subnet.env missing");
        assert_eq!(first.evidence, [EVENT]);
        let samwise = &v.nodes[2];
        assert_eq!(
            statuses(samwise),
            [Status::Pass, Status::Pass, Status::Fail, Status::Skip]
        );
        assert!(samwise.checks[2].detail.contains("Temporary failure"));
        assert_eq!(
            samwise.checks[3].detail,
            "no peer to reach; not tried: boromir, theoden (no pod network)"
        );
    }

    #[test]
    fn unreachable_and_missing_peers_fail_with_their_names() {
        let mut m = Message::parse(&msg("a", ip(5, 0), vec![], 2)).unwrap();
        m.peers.found = 1;
        m.peers.unreachable = vec![PeerError {
            ip: ip(5, 1),
            error: "connection timed out".into(),
        }];
        let v = judge(
            &[
                done("a", 0, m.to_json(4096).unwrap()),
                done("b", 1, msg("b", ip(5, 1), vec![ip(5, 0), ip(5, 2)], 2)),
                done("c", 2, msg("c", ip(5, 2), vec![ip(5, 0), ip(5, 1)], 2)),
            ],
            End::Settled,
        );
        let peers = &v.nodes[0].checks[3];
        assert_eq!(peers.status, Status::Fail);
        assert_eq!(peers.detail, "0 of 2 peers: 1 unreachable, not all found");
        assert_eq!(
            peers.evidence,
            [
                "b (10.42.1.5): connection timed out",
                "not found through DNS: c"
            ]
        );
        assert_eq!(v.nodes[1].status(), Status::Pass);
    }

    #[test]
    fn a_summarised_message_is_judged_by_its_counts() {
        let mut m = Message::parse(&msg("a", ip(5, 0), vec![], 2)).unwrap();
        m.peers.reached = None;
        m.peers.reached_count = 1;
        m.peers.found = 1;
        let b = done("b", 1, msg("b", ip(5, 1), vec![ip(5, 0)], 1));
        let c = done("c", 2, msg("c", ip(5, 2), vec![ip(5, 0)], 1));
        let v = judge(
            &[done("a", 0, m.to_json(4096).unwrap()), b.clone(), c.clone()],
            End::Settled,
        );
        assert_eq!(v.nodes[0].checks[3].status, Status::Fail);
        assert_eq!(
            v.nodes[0].checks[3].evidence,
            ["found 1 of 2 peers through DNS"]
        );
        m.peers.reached_count = 2;
        m.peers.omitted = 3;
        let v = judge(
            &[done("a", 0, m.to_json(4096).unwrap()), b, c],
            End::Settled,
        );
        assert_eq!(v.nodes[0].checks[3].detail, "2 of 2 peers: 3 unreachable");
        assert_eq!(
            v.nodes[0].checks[3].evidence,
            ["... and 3 more unreachable"]
        );
    }

    #[test]
    fn a_single_node_has_no_peers_to_reach() {
        let v = judge(&[done("a", 0, msg("a", ip(5, 0), vec![], 0))], End::Settled);
        assert_eq!(v.nodes[0].checks[3].detail, "no other node to reach");
        assert_eq!(v.exit_code(), 0);
    }

    #[test]
    fn probe_failures_are_reported_as_the_probe_saw_them() {
        let mut m = Message::parse(&msg("a", ip(5, 0), vec![], 0)).unwrap();
        m.pod_ip = Outcome::fail("10.42.0.5 (eth0) is not in the node's podCIDR 10.42.9.0/24");
        let v = judge(&[done("a", 0, m.to_json(4096).unwrap())], End::Settled);
        assert_eq!(v.nodes[0].first_problem().unwrap().check, Check::PodIp);
        assert_eq!(v.exit_code(), 1);
    }

    #[test]
    fn what_could_not_be_learnt_is_unknown_not_a_pass() {
        let mut refused = broken("a");
        refused.create_error = Some("pods is forbidden".into());
        let mut gone = broken("b");
        gone.pod = None;
        let mut pending = broken("c");
        pending.sandbox_events.clear();
        let mut pulling = done("d", 3, String::new());
        if let Some(p) = &mut pulling.pod {
            p.terminated = None;
            p.phase = "Pending".into();
            p.waiting = Some(("ImagePullBackOff".into(), "Back-off pulling image".into()));
        }
        let mut crashed = done("e", 4, "exec /rebootguard: exec format error\n".into());
        if let Some(p) = &mut crashed.pod {
            p.terminated = Some(Terminated {
                exit_code: 2,
                reason: "Error".into(),
                message: "exec /rebootguard: exec format error\n".into(),
            });
        }
        let mut running = done("f", 5, String::new());
        if let Some(p) = &mut running.pod {
            p.terminated = None;
            p.phase = "Running".into();
        }
        let v = judge(
            &[refused, gone, pending, pulling, crashed, running.clone()],
            End::TimedOut,
        );
        let first = |i: usize| v.nodes[i].first_problem().unwrap().detail.clone();
        assert_eq!(
            first(0),
            "could not create the probe pod: pods is forbidden"
        );
        assert!(first(1).contains("vanished"));
        assert_eq!(
            first(2),
            "no pod network within the timeout and no sandbox event (phase Pending, ContainerCreating)"
        );
        assert_eq!(
            first(3),
            "the probe did not start: ImagePullBackOff: Back-off pulling image"
        );
        assert_eq!(
            first(4),
            "the probe exited 2 (Error) without a result: exec /rebootguard: exec format error"
        );
        assert_eq!(v.nodes[4].checks[1].evidence.len(), 1);
        assert!(first(5).contains("had not reported"));
        assert!(v.nodes.iter().all(|r| r.status() == Status::Unknown));
        assert_eq!(v.exit_code(), 2);
        let v = judge(&[running], End::Interrupted);
        assert_eq!(
            v.nodes[0].first_problem().unwrap().detail,
            "interrupted before the probe reported"
        );
        assert_eq!(judge(&[], End::Settled).exit_code(), 2);
    }

    #[test]
    fn a_node_that_is_not_ready_fails_without_an_event() {
        let mut dead = broken("a");
        dead.sandbox_events.clear();
        dead.node_ready = false;
        let v = judge(&[dead], End::TimedOut);
        assert_eq!(v.nodes[0].checks[0].status, Status::Fail);
        assert_eq!(v.exit_code(), 1);
    }

    #[test]
    fn a_failure_outranks_an_unknown() {
        let mut refused = broken("b");
        refused.create_error = Some("quota".into());
        assert_eq!(judge(&[broken("a"), refused], End::Settled).exit_code(), 1);
    }
}
