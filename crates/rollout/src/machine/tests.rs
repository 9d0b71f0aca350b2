//! Every branch of [`Node::step`], with plain values and a clock moved by hand.

use super::*;

fn t0() -> Timestamp {
    "2026-02-01T10:00:00Z".parse().expect("time")
}

fn at(secs: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(secs))
        .expect("time")
}

fn config(how: How) -> Config {
    let s = SignedDuration::from_secs;
    Config {
        rollout: "r1".into(),
        how,
        force: false,
        timeouts: Timeouts {
            gates: s(10),
            action: s(10),
            drain: s(30),
            down: s(60),
            ready: s(30),
            network: s(30),
            storage: s(60),
        },
        renew_every: s(10),
        request_ttl: s(300),
        verify: false,
    }
}

fn up(boot: &str) -> NodeSeen {
    NodeSeen {
        boot_id: boot.into(),
        ready: true,
        cordoned: false,
        pod_network: Some(PodNetwork {
            ready: true,
            heartbeat: Some(t0()),
            why: "ProbePassed".into(),
        }),
        ..NodeSeen::default()
    }
}

fn seen(node: NodeSeen) -> Seen {
    Seen {
        node: Some(node),
        ..Seen::default()
    }
}

fn open_gate() -> Gate {
    Gate {
        name: "quorum",
        open: true,
        detail: "fine".into(),
        opens_at: None,
    }
}

fn closed_gate() -> Gate {
    Gate {
        name: "storage",
        open: false,
        detail: "1 volume(s) would lose their last healthy replica: pvc-scratch".into(),
        opens_at: None,
    }
}

fn notes(actions: &[Action]) -> Vec<&Note> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Note(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn without_notes(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Note(_) | Action::Annotate(_) | Action::Lease))
        .collect()
}

/// Drives a node from the gates to [`Phase::Down`] with the agent.
fn to_down(cfg: &Config) -> Node {
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate()];
    n.step(at(0), &s, cfg);
    s.lease = Some(Lease::Held);
    n.step(at(1), &s, cfg);
    assert_eq!(n.phase, Phase::Cordon);
    s.node.as_mut().expect("node").cordoned = true;
    n.step(at(2), &s, cfg);
    assert_eq!(n.phase, Phase::Drain);
    s.drain = Some(Drain::default());
    n.step(at(3), &s, cfg);
    assert_eq!(n.phase, Phase::Down);
    n
}

#[test]
fn the_whole_way_with_the_agent() {
    let cfg = config(How::Agent);
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate()];
    assert_eq!(without_notes(n.step(at(0), &s, &cfg)), vec![]);
    assert_eq!(n.phase, Phase::Lease);
    s.lease = Some(Lease::Held);
    let a = n.step(at(1), &s, &cfg);
    assert_eq!(n.phase, Phase::Cordon);
    assert!(matches!(&a[0], Action::Annotate(p) if p.phase == Phase::Cordon && p.rollout == "r1"));
    assert_eq!(a[1], Action::Cordon);
    s.lease = None;
    // Not cordoned yet: asked again.
    assert!(n.step(at(2), &s, &cfg).contains(&Action::Cordon));
    s.node.as_mut().expect("node").cordoned = true;
    let a = n.step(at(2), &s, &cfg);
    assert_eq!(n.phase, Phase::Drain);
    assert!(a.contains(&Action::Evict { force: false }));
    s.drain = Some(Drain {
        left: vec!["default/web-1".into()],
        blocked: vec![],
    });
    assert!(
        n.step(at(3), &s, &cfg)
            .contains(&Action::Evict { force: false })
    );
    s.drain = Some(Drain::default());
    let a = n.step(at(4), &s, &cfg);
    assert_eq!(n.phase, Phase::Down);
    // The progress (with the old boot ID) goes out before the request.
    let annotate = a
        .iter()
        .position(|x| matches!(x, Action::Annotate(p) if p.phase == Phase::Down && p.boot_id.as_deref() == Some("b0")))
        .expect("annotated");
    let request = a
        .iter()
        .position(|x| matches!(x, Action::Request { id, .. } if id == "r1/theoden/1"))
        .expect("requested");
    assert!(annotate < request);
    assert!(n.agent, "PodNetworkReady was there before");
    // Accepted, still the old boot.
    let node = s.node.as_mut().expect("node");
    node.requested = Some("r1/theoden/1".into());
    node.accepted = Some("r1/theoden/1".into());
    node.ready = false;
    let a = n.step(at(10), &s, &cfg);
    assert!(
        notes(&a)
            .iter()
            .any(|x| x.message.contains("accepted the reboot"))
    );
    assert!(
        !a.iter().any(|x| matches!(x, Action::Request { .. })),
        "never asked twice"
    );
    // Back with a new boot ID, not Ready yet.
    s.node.as_mut().expect("node").boot_id = "b1".into();
    n.step(at(20), &s, &cfg);
    assert_eq!(n.phase, Phase::Ready);
    n.step(at(21), &s, &cfg);
    assert_eq!(n.phase, Phase::Ready);
    s.node.as_mut().expect("node").ready = true;
    n.step(at(22), &s, &cfg);
    assert_eq!(n.phase, Phase::Network);
    // The condition from before the reboot does not count.
    n.step(at(23), &s, &cfg);
    assert_eq!(n.phase, Phase::Network);
    s.node.as_mut().expect("node").pod_network = Some(PodNetwork {
        ready: true,
        heartbeat: Some(at(20)),
        why: String::new(),
    });
    let a = n.step(at(24), &s, &cfg);
    assert_eq!(n.phase, Phase::Clean);
    assert!(a.contains(&Action::CleanStale));
    s.cleaned = Some(Ok(2));
    let a = n.step(at(25), &s, &cfg);
    assert!(notes(&a).iter().any(|x| x.reason == "RolloutCleaned"));
    assert_eq!(n.phase, Phase::Storage);
    s.storage = Some(vec!["pvc-gitea (degraded)".into()]);
    n.step(at(26), &s, &cfg);
    assert_eq!(n.phase, Phase::Storage);
    s.storage = Some(vec![]);
    let a = n.step(at(40), &s, &cfg);
    assert_eq!(n.phase, Phase::Uncordon);
    assert!(a.contains(&Action::Uncordon));
    s.node.as_mut().expect("node").cordoned = false;
    let a = n.step(at(41), &s, &cfg);
    assert_eq!(n.phase, Phase::Done);
    assert!(a.contains(&Action::Finished));
    assert!(n.finished() && n.stopped.is_none());
    assert!(n.step(at(42), &s, &cfg).is_empty());
    let marks: Vec<Mark> = n.timeline.iter().map(|(m, _)| *m).collect();
    assert_eq!(
        marks,
        vec![
            Mark::Started,
            Mark::Drained,
            Mark::Asked,
            Mark::Booted,
            Mark::Ready,
            Mark::Network,
            Mark::Cleaned,
            Mark::Storage,
            Mark::Uncordoned
        ]
    );
    let d = n.durations();
    assert_eq!(d[3], (Mark::Booted, SignedDuration::from_secs(16)));
    assert_eq!(d[7], (Mark::Storage, SignedDuration::from_secs(15)));
}

#[test]
fn a_closed_gate_waits_then_stops_with_the_gate_named() {
    let cfg = config(How::Agent);
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate(), closed_gate()];
    let a = n.step(at(0), &s, &cfg);
    assert_eq!(notes(&a)[0].reason, "RolloutWaiting");
    assert!(notes(&n.step(at(1), &s, &cfg)).is_empty(), "said once");
    n.step(at(10), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped");
    assert_eq!(stop.phase, Phase::Gates);
    assert!(stop.what.contains("gate storage closed") && stop.what.contains("pvc-scratch"));
    assert!(stop.hint.contains("rebuild"));
}

/// The window gate as `gates::window` closes it, opening at `opens`.
fn window_closed_until(opens: Timestamp) -> Gate {
    Gate {
        name: "window",
        open: false,
        detail: format!(
            "outside the maintenance window (02:00-05:00 UTC): the next one opens at {opens}"
        ),
        opens_at: Some(opens),
    }
}

#[test]
fn a_window_opening_within_the_gates_timeout_is_waited_for() {
    let cfg = config(How::Agent);
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    // Opens at +8 s, the gates wait up to 10 s.
    s.gates = vec![open_gate(), window_closed_until(at(8))];
    let a = n.step(at(0), &s, &cfg);
    assert_eq!(notes(&a)[0].reason, "RolloutWaiting");
    assert!(notes(&a)[0].message.contains("gate window closed"));
    n.step(at(5), &s, &cfg);
    assert!(n.stopped.is_none() && n.phase == Phase::Gates);
    s.gates = vec![open_gate()];
    n.step(at(8), &s, &cfg);
    assert_eq!(n.phase, Phase::Lease);
    assert_eq!(n.timeline[0], (Mark::Started, at(8)));
}

#[test]
fn a_window_opening_after_the_gates_timeout_stops_at_once_with_its_time() {
    let cfg = config(How::Agent);
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate(), window_closed_until(at(11))];
    n.step(at(0), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped at once, not after 10 s");
    assert_eq!(stop.phase, Phase::Gates);
    assert!(
        stop.what
            .contains(&format!("the next one opens at {}", at(11)))
            && stop.what.contains("after --timeout-gates 10s"),
        "{}",
        stop.what
    );
    assert!(stop.hint.contains("--timeout-gates"), "{}", stop.hint);
    // Another gate closed first still names the window's hint: waiting
    // would not help either way.
    let mut n = Node::new("theoden", t0());
    s.gates = vec![closed_gate(), window_closed_until(at(3600))];
    n.step(at(0), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped");
    assert!(stop.what.contains("gate storage closed") && stop.what.contains("gate window closed"));
    assert!(stop.hint.contains("window opens"), "{}", stop.hint);
}

#[test]
fn a_busy_lease_or_a_lost_node_stops() {
    let cfg = config(How::Agent);
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate()];
    n.step(at(0), &s, &cfg);
    s.lease = Some(Lease::Busy("reboot/alice@laptop/42".into()));
    n.step(at(1), &s, &cfg);
    assert!(
        n.stopped
            .as_ref()
            .expect("stopped")
            .what
            .contains("alice@laptop")
    );

    let mut n = Node::new("theoden", t0());
    n.step(at(0), &Seen::default(), &cfg);
    assert!(n.stopped.as_ref().expect("stopped").what.contains("gone"));

    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate()];
    n.step(at(0), &s, &cfg);
    s.lease = Some(Lease::Failed(Failure::said("503", true)));
    assert_eq!(n.step(at(1), &s, &cfg), vec![Action::Lease]);
    n.step(at(10), &s, &cfg);
    assert!(n.stopped.as_ref().expect("stopped").what.contains("503"));
    // Refused (RBAC on leases): stopped at once.
    let mut n = Node::new("theoden", t0());
    n.step(at(0), &s, &cfg);
    s.lease = Some(Lease::Failed(Failure::said("leases is forbidden", false)));
    n.step(at(1), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped at once");
    assert!(stop.what.contains("leases is forbidden"), "{}", stop.what);
}

#[test]
fn the_lease_is_renewed_every_interval() {
    let cfg = config(How::Agent);
    let mut n = to_down(&cfg);
    let s = seen(up("b0"));
    assert!(!n.step(at(5), &s, &cfg).contains(&Action::Lease));
    assert!(n.step(at(14), &s, &cfg).contains(&Action::Lease));
    let mut held = s.clone();
    held.lease = Some(Lease::Held);
    n.step(at(15), &held, &cfg);
    assert!(!n.step(at(16), &s, &cfg).contains(&Action::Lease));
}

#[test]
fn the_lease_is_renewed_while_the_gates_wait_too() {
    let mut cfg = config(How::Agent);
    cfg.timeouts.gates = SignedDuration::from_hours(12);
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![window_closed_until(at(3600))];
    assert!(n.step(at(0), &s, &cfg).contains(&Action::Lease));
    assert!(!n.step(at(5), &s, &cfg).contains(&Action::Lease));
    assert!(n.step(at(10), &s, &cfg).contains(&Action::Lease));
    s.lease = Some(Lease::Held);
    n.step(at(11), &s, &cfg);
    s.lease = None;
    assert!(!n.step(at(20), &s, &cfg).contains(&Action::Lease));
    assert!(n.step(at(21), &s, &cfg).contains(&Action::Lease));
    // The gates open: asked once, not twice.
    s.gates = vec![open_gate()];
    let a = n.step(at(3600), &s, &cfg);
    assert_eq!(
        a.iter().filter(|a| **a == Action::Lease).count(),
        1,
        "{a:?}"
    );
    assert_eq!(n.phase, Phase::Lease);
}

#[test]
fn cordon_and_uncordon_stop_when_the_api_refuses() {
    let cfg = config(How::Agent);
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate()];
    n.step(at(0), &s, &cfg);
    s.lease = Some(Lease::Held);
    n.step(at(0), &s, &cfg);
    s.failed = Some(Failure::said("403 Forbidden", true));
    n.step(at(10), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped");
    assert_eq!(stop.phase, Phase::Cordon);
    assert!(stop.what.contains("403"));

    let mut n = Node::resume(
        "theoden",
        &Progress {
            rollout: "r1".into(),
            phase: Phase::Uncordon,
            boot_id: Some("b0".into()),
            request: None,
            agent: false,
        },
        t0(),
    );
    let mut s = seen(up("b1"));
    s.node.as_mut().expect("node").cordoned = true;
    assert!(n.step(at(1), &s, &cfg).contains(&Action::Uncordon));
    n.step(at(10), &s, &cfg);
    assert_eq!(n.stopped.as_ref().expect("stopped").phase, Phase::Uncordon);
}

#[test]
fn a_drain_pass_that_fails_is_retried_until_the_action_timeout_or_stops_when_it_cannot_succeed() {
    let cfg = config(How::Agent);
    let draining = || {
        let mut n = Node::new("theoden", t0());
        let mut s = seen(up("b0"));
        s.gates = vec![open_gate()];
        s.lease = Some(Lease::Held);
        n.step(at(0), &s, &cfg);
        n.step(at(0), &s, &cfg);
        s.node.as_mut().expect("node").cordoned = true;
        n.step(at(0), &s, &cfg);
        assert_eq!(n.phase, Phase::Drain);
        (n, s)
    };
    // An API hiccup: evicted again, and again, until the action timeout.
    let (mut n, mut s) = draining();
    s.failed = Some(Failure::said(
        "the API server did not answer within 5s (eviction)",
        true,
    ));
    assert!(
        n.step(at(5), &s, &cfg)
            .contains(&Action::Evict { force: false })
    );
    assert!(n.stopped.is_none());
    n.step(at(11), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped at the action timeout");
    assert_eq!(stop.phase, Phase::Drain);
    assert!(
        stop.what.contains("could not drain theoden"),
        "{}",
        stop.what
    );
    assert!(stop.hint.contains("pods/eviction"), "{}", stop.hint);
    // RBAC refused the eviction: retrying cannot help, stopped at once.
    let (mut n, mut s) = draining();
    s.failed = Some(Failure::said(
        "pods \"web\" is forbidden: cannot create resource \"pods/eviction\"",
        false,
    ));
    assert!(
        !n.step(at(1), &s, &cfg)
            .contains(&Action::Evict { force: false })
    );
    assert!(
        n.stopped
            .as_ref()
            .expect("stopped")
            .what
            .contains("pods/eviction")
    );
}

#[test]
fn a_budget_that_never_allows_is_reported_not_forced() {
    let cfg = config(How::Agent);
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate()];
    s.lease = Some(Lease::Held);
    n.step(at(0), &s, &cfg);
    n.step(at(0), &s, &cfg);
    s.node.as_mut().expect("node").cordoned = true;
    n.step(at(0), &s, &cfg);
    s.drain = Some(Drain {
        left: vec!["apps/web-1".into()],
        blocked: vec![
            "apps/web-1: Cannot evict pod as it would violate the pod's disruption budget.".into(),
        ],
    });
    let a = n.step(at(5), &s, &cfg);
    assert!(notes(&a)[0].message.contains("disruption budget"));
    n.step(at(30), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped");
    assert_eq!(stop.phase, Phase::Drain);
    assert!(stop.what.contains("apps/web-1") && stop.what.contains("disruption budget"));
    assert!(stop.hint.contains("--force"));
}

#[test]
fn force_deletes_after_the_drain_timeout() {
    let mut cfg = config(How::Agent);
    cfg.force = true;
    let mut n = Node::new("theoden", t0());
    let mut s = seen(up("b0"));
    s.gates = vec![open_gate()];
    s.lease = Some(Lease::Held);
    n.step(at(0), &s, &cfg);
    n.step(at(0), &s, &cfg);
    s.node.as_mut().expect("node").cordoned = true;
    n.step(at(0), &s, &cfg);
    s.drain = Some(Drain {
        left: vec!["apps/web-1".into()],
        blocked: vec!["429".into()],
    });
    let a = n.step(at(30), &s, &cfg);
    assert!(a.contains(&Action::Evict { force: true }));
    assert!(
        notes(&a)
            .iter()
            .any(|x| x.reason == "RolloutForced" && x.warning)
    );
    assert!(
        n.step(at(35), &s, &cfg)
            .contains(&Action::Evict { force: true })
    );
    n.step(at(40), &s, &cfg);
    assert!(
        n.stopped.is_some(),
        "even forced, a pod that never goes stops it"
    );
}

#[test]
fn a_command_runs_once_and_manual_waits_for_the_operator() {
    for (how, wanted) in [(How::Command, true), (How::Manual, false)] {
        let cfg = config(how);
        let n = {
            let mut n = Node::new("theoden", t0());
            let mut s = seen(up("b0"));
            s.gates = vec![open_gate()];
            s.lease = Some(Lease::Held);
            n.step(at(0), &s, &cfg);
            n.step(at(0), &s, &cfg);
            s.node.as_mut().expect("node").cordoned = true;
            n.step(at(0), &s, &cfg);
            s.drain = Some(Drain::default());
            let a = n.step(at(1), &s, &cfg);
            assert_eq!(a.contains(&Action::RunCommand), wanted, "{how:?}");
            if how == How::Manual {
                assert!(
                    notes(&a)
                        .iter()
                        .any(|x| x.reason == "RolloutWaitingForOperator")
                );
            }
            assert!(!a.iter().any(|x| matches!(x, Action::Request { .. })));
            let a = n.step(at(2), &s, &cfg);
            assert!(!a.contains(&Action::RunCommand), "once");
            n
        };
        assert_eq!(n.request, None);
    }
}

#[test]
fn a_node_that_never_comes_back_stops_the_rollout() {
    let cfg = config(How::Agent);
    let mut n = to_down(&cfg);
    let mut s = seen(up("b0"));
    s.node.as_mut().expect("node").accepted = Some("r1/theoden/1".into());
    s.node.as_mut().expect("node").requested = Some("r1/theoden/1".into());
    n.step(at(64), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped");
    assert_eq!(stop.phase, Phase::Down);
    assert!(stop.what.contains("did not come back"), "{}", stop.what);
    assert!(stop.hint.contains("no second reboot"));

    let mut n = to_down(&cfg);
    n.step(at(70), &seen(up("b0")), &cfg);
    assert!(
        n.stopped
            .as_ref()
            .expect("stopped")
            .what
            .contains("never accepted")
    );
}

#[test]
fn a_refusal_or_a_failed_command_stops_at_once() {
    let cfg = config(How::Agent);
    let mut n = to_down(&cfg);
    let mut s = seen(up("b0"));
    s.node.as_mut().expect("node").refused = Some("RebootRefused: node is not cordoned".into());
    n.step(at(5), &s, &cfg);
    assert!(
        n.stopped
            .as_ref()
            .expect("stopped")
            .what
            .contains("not cordoned")
    );

    let mut n = to_down(&config(How::Command));
    let mut s = seen(up("b0"));
    s.failed = Some(Failure::said("reboot command exited with 1", true));
    n.step(at(5), &s, &cfg);
    assert!(
        n.stopped
            .as_ref()
            .expect("stopped")
            .what
            .contains("exited with 1")
    );
}

#[test]
fn a_lost_request_is_asked_again_with_the_same_id() {
    let cfg = config(How::Agent);
    let mut n = to_down(&cfg);
    let a = n.step(at(5), &seen(up("b0")), &cfg);
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Request { id, .. } if id == "r1/theoden/1"))
    );
}

#[test]
fn ready_times_out() {
    let cfg = config(How::Agent);
    let mut n = to_down(&cfg);
    let mut s = seen(up("b1"));
    s.node.as_mut().expect("node").ready = false;
    n.step(at(10), &s, &cfg);
    assert_eq!(n.phase, Phase::Ready);
    n.step(at(40), &s, &cfg);
    assert!(
        n.stopped
            .as_ref()
            .expect("stopped")
            .what
            .contains("not Ready")
    );
}

#[test]
fn a_broken_pod_network_stops_with_the_agents_reason() {
    let cfg = config(How::Agent);
    let mut n = to_down(&cfg);
    let mut s = seen(up("b1"));
    n.step(at(10), &s, &cfg);
    n.step(at(11), &s, &cfg);
    assert_eq!(n.phase, Phase::Network);
    s.node.as_mut().expect("node").pod_network = Some(PodNetwork {
        ready: false,
        heartbeat: Some(at(12)),
        why: "SubnetEnvMissing: /run/flannel/subnet.env is missing".into(),
    });
    let a = n.step(at(12), &s, &cfg);
    assert!(notes(&a)[0].message.contains("subnet.env"));
    n.step(at(41), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped");
    assert_eq!(stop.phase, Phase::Network);
    assert!(
        stop.what
            .contains("PodNetworkReady=False: SubnetEnvMissing")
    );
    // The condition vanishing after the reboot is no pass either.
    let mut n = to_down(&cfg);
    let mut s = seen(up("b1"));
    s.node.as_mut().expect("node").pod_network = None;
    n.step(at(10), &s, &cfg);
    n.step(at(11), &s, &cfg);
    n.step(at(41), &s, &cfg);
    assert!(
        n.stopped
            .as_ref()
            .expect("stopped")
            .what
            .contains("missing")
    );
}

/// From [`to_down`] to the network phase (entered at 11 s), this boot's
/// PodNetworkReady True: only verify is left to answer.
fn to_network(cfg: &Config) -> (Node, Seen) {
    let mut n = to_down(cfg);
    let mut s = seen(up("b1"));
    s.node.as_mut().expect("node").pod_network = Some(PodNetwork {
        ready: true,
        heartbeat: Some(at(30)),
        why: String::new(),
    });
    n.step(at(10), &s, cfg);
    n.step(at(11), &s, cfg);
    (n, s)
}

#[test]
fn the_verify_hook_must_pass_too() {
    let cfg = config(How::Agent);
    let (mut n, mut s) = to_network(&cfg);
    s.verify = Some(Err(Failure::said(
        "DNS: kubernetes.default: no answer",
        true,
    )));
    n.step(at(12), &s, &cfg);
    assert_eq!(n.phase, Phase::Network);
    s.verify = Some(Ok(()));
    n.step(at(13), &s, &cfg);
    assert_eq!(n.phase, Phase::Clean);
    // Verify cannot run at all: no use waiting for the network timeout.
    let (mut n, mut s) = to_network(&cfg);
    s.verify = Some(Err(Failure::said(
        "namespace \"rebootguard\" does not exist",
        false,
    )));
    n.step(at(12), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped at once");
    assert_eq!(stop.phase, Phase::Network);
    assert!(
        stop.what.contains("verify cannot run on theoden") && stop.hint.contains("RBAC"),
        "{stop:?}"
    );
}

#[test]
fn with_a_verifier_no_answer_yet_is_no_pass() {
    let mut cfg = config(How::Agent);
    cfg.verify = true;
    let (mut n, s) = to_network(&cfg);
    let a = n.step(at(12), &s, &cfg);
    assert_eq!(n.phase, Phase::Network);
    assert!(
        notes(&a)
            .iter()
            .any(|n| n.message.contains("verify has not passed yet")),
        "{a:?}"
    );
    n.step(at(12 + 30), &s, &cfg);
    let stop = n.stopped.as_ref().expect("times out without an answer");
    assert!(
        stop.what.contains("verify has not passed yet"),
        "{}",
        stop.what
    );
}

#[test]
fn without_an_agent_the_network_is_passed_with_a_warning() {
    let cfg = config(How::Command);
    let mut n = Node::new("theoden", t0());
    let mut plain = up("b0");
    plain.pod_network = None;
    let mut s = seen(plain);
    s.gates = vec![open_gate()];
    s.lease = Some(Lease::Held);
    n.step(at(0), &s, &cfg);
    n.step(at(0), &s, &cfg);
    s.node.as_mut().expect("node").cordoned = true;
    n.step(at(0), &s, &cfg);
    s.drain = Some(Drain::default());
    n.step(at(1), &s, &cfg);
    assert!(!n.agent);
    s.node.as_mut().expect("node").boot_id = "b1".into();
    n.step(at(5), &s, &cfg);
    n.step(at(6), &s, &cfg);
    let a = n.step(at(7), &s, &cfg);
    assert_eq!(n.phase, Phase::Clean);
    assert!(
        notes(&a)
            .iter()
            .any(|x| x.reason == "RolloutNetworkUnverified" && x.warning)
    );
}

#[test]
fn cleaning_is_retried_then_stops_and_storage_times_out() {
    let cfg = config(How::Agent);
    let at_phase = |phase| {
        let progress = Progress {
            rollout: "r1".into(),
            phase,
            boot_id: Some("b0".into()),
            request: None,
            agent: true,
        };
        Node::resume("theoden", &progress, t0())
    };
    let mut n = at_phase(Phase::Clean);
    let mut s = seen(up("b1"));
    s.node.as_mut().expect("node").cordoned = true;
    s.cleaned = Some(Err(Failure::said("the API server did not answer", true)));
    assert!(n.step(at(1), &s, &cfg).contains(&Action::CleanStale));
    n.step(at(10), &s, &cfg);
    assert_eq!(n.stopped.as_ref().expect("stopped").phase, Phase::Clean);
    // Refused by RBAC: retrying cannot help, stopped at once.
    let mut refused = at_phase(Phase::Clean);
    s.cleaned = Some(Err(Failure::said("pods is forbidden", false)));
    assert!(!refused.step(at(1), &s, &cfg).contains(&Action::CleanStale));
    let stop = refused.stopped.as_ref().expect("stopped at once");
    assert!(stop.what.contains("pods is forbidden"), "{}", stop.what);

    let mut n = at_phase(Phase::Storage);
    s.cleaned = None;
    s.storage = Some(vec!["pvc-gitea: degraded".into()]);
    n.step(at(60), &s, &cfg);
    let stop = n.stopped.as_ref().expect("stopped");
    assert!(stop.what.contains("pvc-gitea") && stop.hint.contains("longhorn-manager"));
    // No Longhorn: nothing to wait for.
    let mut n = Node::resume(
        "theoden",
        &Progress {
            rollout: "r1".into(),
            phase: Phase::Storage,
            boot_id: None,
            request: None,
            agent: false,
        },
        t0(),
    );
    s.storage = None;
    assert!(n.step(at(1), &s, &cfg).contains(&Action::Uncordon));
}

#[test]
fn resuming_after_the_request_waits_without_asking_again() {
    let cfg = config(How::Command);
    let progress = Progress {
        rollout: "r1".into(),
        phase: Phase::Down,
        boot_id: Some("b0".into()),
        request: None,
        agent: true,
    };
    let mut n = Node::resume("theoden", &progress, t0());
    assert_eq!(n.phase, Phase::Down);
    let a = n.step(at(1), &seen(up("b0")), &cfg);
    assert!(!a.contains(&Action::RunCommand));
    n.step(at(2), &seen(up("b1")), &cfg);
    assert_eq!(n.phase, Phase::Ready);
    // Resumed past the boot: the condition must be newer than the resume.
    let mut n = Node::resume(
        "theoden",
        &Progress {
            phase: Phase::Network,
            ..progress
        },
        at(100),
    );
    n.step(at(101), &seen(up("b1")), &cfg);
    assert_eq!(
        n.phase,
        Phase::Network,
        "a heartbeat from before the resume"
    );
}

#[test]
fn durations_read_like_people_write_them() {
    assert_eq!(show(SignedDuration::from_secs(300)), "5m");
    assert_eq!(show(SignedDuration::from_secs(90)), "90s");
    assert_eq!(show(SignedDuration::from_millis(1500)), "1.5s");
}
