//! Every branch of the machine with plain values and a made-up clock.

use std::time::{Duration, Instant};

use rebootguard_node::check::{Check, Id, Report, Status};

use super::*;

fn policy() -> Policy {
    Policy {
        taint: true,
        restart_grace: Duration::from_secs(30),
        restart_settle: Duration::from_secs(60),
        max_restarts: 3,
        restart_window: Duration::from_secs(3600),
        can_restart: true,
        remediate: true,
        restore_interval: Duration::from_secs(5),
        probe_interval: Duration::from_secs(300),
        lease_retry: Duration::from_secs(2),
        alert_after: Duration::from_secs(10),
        alert_interval: Duration::from_secs(900),
    }
}

fn check(id: Id, status: Status, reason: &str) -> Check {
    Check {
        id,
        status,
        reason: reason.into(),
        summary: format!("{} is {reason}", id.name()),
        evidence: vec![format!("evidence of {reason}")],
        fix: Some(format!("fix {reason}")),
    }
}

fn ok() -> Report {
    Report::new(
        "boromir",
        Id::LOCAL
            .iter()
            .map(|id| check(*id, Status::Ok, ""))
            .collect(),
    )
}

fn failing(id: Id, reason: &str) -> Report {
    let mut report = ok();
    for c in &mut report.checks {
        if c.id == id {
            *c = check(id, Status::Fail, reason);
        }
    }
    Report::new("boromir", report.checks)
}

struct Clock(Instant);

impl Clock {
    fn at(&self, secs: u64) -> Instant {
        self.0 + Duration::from_secs(secs)
    }
}

fn clock() -> Clock {
    Clock(Instant::now())
}

fn status(m: &Machine) -> Option<Truth> {
    m.desired().condition.map(|c| c.status)
}

fn events(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.reason),
            _ => None,
        })
        .collect()
}

fn alerts(actions: &[Action]) -> Vec<AlertKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Alert(a) => Some(a.kind),
            _ => None,
        })
        .collect()
}

fn probed(ok: bool) -> Input {
    Input::Probed {
        ok,
        summary: if ok {
            "10.42.0.9 in 10.42.0.0/24, gateway and samwise answered".into()
        } else {
            "CNI ADD failed".into()
        },
    }
}

#[test]
fn never_true_before_a_check_and_a_probe_pass() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    assert_eq!(
        m.desired(),
        Desired {
            condition: None,
            taint: true
        }
    );
    let actions = m.step(Input::Checked(ok()), c.at(0));
    assert_eq!(actions, [Action::Probe]);
    assert_eq!(status(&m), None, "a check alone is not enough");
    assert!(m.desired().taint);
    m.step(probed(true), c.at(1));
    let desired = m.desired();
    assert_eq!(status(&m), Some(Truth::True));
    assert_eq!(
        desired.condition.map(|c| c.reason),
        Some(READY_REASON.to_owned())
    );
    assert!(!desired.taint);
}

#[test]
fn a_restart_while_broken_never_shows_true() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    let actions = m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(0),
    );
    assert!(actions.is_empty(), "{actions:?}");
    let desired = m.desired();
    let condition = desired.condition.expect("False at once");
    assert_eq!(condition.status, Truth::False);
    assert_eq!(condition.reason, "FlannelLinkMissing");
    assert!(
        condition
            .message
            .starts_with("flannel-link: flannel-link is FlannelLinkMissing (evidence")
    );
    assert!(condition.message.contains("fix: fix FlannelLinkMissing"));
    assert!(desired.taint);
}

#[test]
fn an_agent_restart_on_a_healthy_node_keeps_the_taint_off() {
    let c = clock();
    let mut m = Machine::new(policy(), true);
    assert!(!m.desired().taint);
    assert_eq!(m.step(Input::Checked(ok()), c.at(0)), [Action::Probe]);
    assert_eq!(
        m.desired(),
        Desired {
            condition: None,
            taint: false
        }
    );
    m.step(probed(true), c.at(1));
    assert_eq!(status(&m), Some(Truth::True));
    // ... but a failure at start taints it.
    let mut m = Machine::new(policy(), true);
    m.step(
        Input::Checked(failing(Id::SubnetEnv, "SubnetEnvMissing")),
        c.at(0),
    );
    assert!(m.desired().taint);
}

#[test]
fn a_failing_check_turns_true_to_false_at_once_and_back_only_after_a_probe() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(Input::Checked(ok()), c.at(0));
    m.step(probed(true), c.at(0));
    m.step(
        Input::Checked(failing(Id::Peers, "PeerEntriesMissing")),
        c.at(10),
    );
    assert_eq!(status(&m), Some(Truth::False));
    assert!(m.desired().taint);
    // The checks pass again: still False until a fresh probe passes.
    let actions = m.step(Input::Checked(ok()), c.at(11));
    assert_eq!(actions, [Action::Probe]);
    assert_eq!(status(&m), Some(Truth::False));
    m.step(probed(true), c.at(12));
    assert_eq!(status(&m), Some(Truth::True));
    assert!(!m.desired().taint);
}

#[test]
fn a_probe_started_before_a_failure_does_not_count() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    assert_eq!(m.step(Input::Checked(ok()), c.at(0)), [Action::Probe]);
    m.step(
        Input::Checked(failing(Id::SubnetEnv, "SubnetEnvMissing")),
        c.at(1),
    );
    m.step(probed(true), c.at(2));
    assert_eq!(status(&m), Some(Truth::False));
    let actions = m.step(Input::Checked(ok()), c.at(3));
    assert_eq!(actions, [Action::Probe], "a new probe is asked for");
}

#[test]
fn a_failed_probe_is_a_failure_and_is_retried_at_a_slower_pace() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(Input::Checked(ok()), c.at(0));
    m.step(probed(false), c.at(1));
    let condition = m.desired().condition.expect("condition");
    assert_eq!(
        (condition.status, condition.reason.as_str()),
        (Truth::False, "ProbeFailed")
    );
    assert_eq!(condition.message, "probe: CNI ADD failed");
    assert!(m.step(Input::Tick, c.at(2)).is_empty(), "no retry storm");
    assert_eq!(m.step(Input::Tick, c.at(6)), [Action::Probe]);
    m.step(probed(true), c.at(7));
    assert_eq!(status(&m), Some(Truth::True));
}

#[test]
fn passing_probes_repeat_on_their_interval() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(Input::Checked(ok()), c.at(0));
    m.step(probed(true), c.at(0));
    assert!(m.step(Input::Tick, c.at(299)).is_empty());
    assert_eq!(m.step(Input::Tick, c.at(300)), [Action::Probe]);
    assert!(m.step(Input::Tick, c.at(301)).is_empty(), "one at a time");
}

/// The incident with no backup anywhere: subnet.env is regenerated, flannel
/// still does nothing, k3s is restarted once under the Lease, and the node
/// recovers.
#[test]
fn the_incident_is_healed_by_restore_then_one_restart() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    let a = m.step(
        Input::Checked(failing(Id::SubnetEnv, "SubnetEnvMissing")),
        c.at(0),
    );
    assert_eq!(a, [Action::Restore]);
    let a = m.step(
        Input::Restored(Ok("regenerated from the API".into())),
        c.at(0),
    );
    assert_eq!(events(&a), ["SubnetEnvRestored"]);
    let a = m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(1),
    );
    assert!(a.is_empty(), "{a:?}");
    let a = m.step(Input::Tick, c.at(10));
    assert_eq!(alerts(&a), [AlertKind::Firing]);
    assert!(m.step(Input::Tick, c.at(29)).is_empty(), "grace not over");
    assert_eq!(m.step(Input::Tick, c.at(30)), [Action::AcquireLease]);
    assert!(
        m.step(Input::Tick, c.at(31)).is_empty(),
        "one request at a time"
    );
    let a = m.step(Input::Lease(LeaseAnswer::Held), c.at(31));
    assert_eq!(events(&a), ["RestartingK3s"]);
    assert!(a.contains(&Action::RestartK3s));
    let a = m.step(Input::Restarted(Ok(())), c.at(32));
    assert_eq!(events(&a), ["K3sRestarted"]);
    let a = m.step(Input::Checked(ok()), c.at(34));
    assert_eq!(a, [Action::Probe]);
    assert_eq!(status(&m), Some(Truth::False), "not before the probe");
    let a = m.step(probed(true), c.at(35));
    assert_eq!(events(&a), ["PodNetworkRecovered"]);
    assert!(a.contains(&Action::ReleaseLease));
    assert_eq!(alerts(&a), [AlertKind::Resolved]);
    assert_eq!(status(&m), Some(Truth::True));
    assert!(!m.desired().taint);
}

#[test]
fn k3s_is_restarted_once_then_the_agent_gives_up_and_stops_acting() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(
        Input::Checked(failing(Id::Peers, "PeerEntriesMissing")),
        c.at(0),
    );
    assert!(
        m.step(Input::Tick, c.at(30))
            .contains(&Action::AcquireLease)
    );
    m.step(Input::Lease(LeaseAnswer::Held), c.at(30));
    m.step(Input::Restarted(Ok(())), c.at(31));
    assert!(
        m.step(
            Input::Checked(failing(Id::Peers, "PeerEntriesMissing")),
            c.at(60)
        )
        .is_empty()
    );
    let a = m.step(Input::Tick, c.at(91));
    assert_eq!(events(&a), ["RemediationExhausted"]);
    assert_eq!(alerts(&a), [AlertKind::Escalated]);
    assert!(a.contains(&Action::ReleaseLease));
    assert!(m.exhausted());
    for t in 92..400 {
        let a = m.step(
            Input::Checked(failing(Id::Peers, "PeerEntriesMissing")),
            c.at(t),
        );
        assert!(a.is_empty(), "stopped acting, yet at {t}: {a:?}");
    }
    assert!(m.desired().taint, "stays tainted");
    // A human fixes it: the agent notices and resolves.
    m.step(Input::Checked(ok()), c.at(400));
    let a = m.step(probed(true), c.at(401));
    assert_eq!(alerts(&a), [AlertKind::Resolved]);
    assert!(!m.exhausted());
}

#[test]
fn a_failure_that_turns_into_a_fixable_one_gets_fixed() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(Input::Checked(ok()), c.at(0));
    m.step(probed(false), c.at(0));
    let a = m.step(Input::Tick, c.at(30));
    assert_eq!(
        events(&a),
        ["RemediationExhausted"],
        "nothing fixes a failed probe"
    );
    // Then subnet.env goes: restoring it is still worth a try.
    let a = m.step(
        Input::Checked(failing(Id::SubnetEnv, "SubnetEnvMissing")),
        c.at(31),
    );
    assert_eq!(a, [Action::Restore]);
    // Giving up again is said, but escalated only once.
    let mut p = policy();
    p.can_restart = false;
    let mut m = Machine::new(p, false);
    m.step(Input::Checked(failing(Id::Ipam, "IpamExhausted")), c.at(0));
    assert_eq!(
        alerts(&m.step(Input::Tick, c.at(30))),
        [AlertKind::Escalated]
    );
    let a = m.step(
        Input::Checked(failing(Id::Cni, "BridgeAddressWrong")),
        c.at(31),
    );
    assert_eq!(events(&a), ["RemediationExhausted"]);
    assert!(alerts(&a).is_empty());
}

#[test]
fn a_busy_lease_is_waited_for() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(0),
    );
    m.step(Input::Tick, c.at(30));
    let a = m.step(
        Input::Lease(LeaseAnswer::Busy("held by theoden".into())),
        c.at(30),
    );
    assert_eq!(events(&a), ["WaitingForRestartLease"]);
    assert!(m.step(Input::Tick, c.at(31)).is_empty());
    assert_eq!(m.step(Input::Tick, c.at(32)), [Action::AcquireLease]);
    let a = m.step(
        Input::Lease(LeaseAnswer::Failed(errors::Failure::said("API down", true))),
        c.at(32),
    );
    assert!(events(&a).is_empty(), "waiting is said once");
    assert_eq!(m.step(Input::Tick, c.at(34)), [Action::AcquireLease]);
    assert!(
        m.step(Input::Lease(LeaseAnswer::Held), c.at(34))
            .contains(&Action::RestartK3s)
    );
}

#[test]
fn a_lease_granted_after_healing_is_handed_back() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(0),
    );
    m.step(Input::Tick, c.at(30));
    m.step(Input::Checked(ok()), c.at(31));
    let a = m.step(probed(true), c.at(31));
    assert!(a.contains(&Action::ReleaseLease), "{a:?}");
    let a = m.step(Input::Lease(LeaseAnswer::Held), c.at(32));
    assert_eq!(a, [Action::ReleaseLease]);
    assert!(!a.contains(&Action::RestartK3s));
}

#[test]
fn the_restart_budget_bounds_restarts_per_window() {
    let c = clock();
    let mut p = policy();
    p.max_restarts = 1;
    let mut m = Machine::new(p, false);
    m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(0),
    );
    m.step(Input::Tick, c.at(30));
    m.step(Input::Lease(LeaseAnswer::Held), c.at(30));
    m.step(Input::Restarted(Ok(())), c.at(30));
    m.step(Input::Checked(ok()), c.at(35));
    m.step(probed(true), c.at(35));
    assert_eq!(status(&m), Some(Truth::True));
    // The same failure again within the hour: no second restart.
    m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(100),
    );
    let a = m.step(Input::Tick, c.at(130));
    assert!(!a.contains(&Action::AcquireLease), "{a:?}");
    assert_eq!(events(&a), ["RemediationExhausted"]);
    // After the window, the budget is back.
    m.step(Input::Checked(ok()), c.at(3700));
    m.step(probed(true), c.at(3700));
    m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(3800),
    );
    assert!(
        m.step(Input::Tick, c.at(3830))
            .contains(&Action::AcquireLease)
    );
}

#[test]
fn a_flapping_failure_never_restarts_k3s() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    let mut seen = Vec::new();
    for cycle in 0..100u64 {
        let t = cycle * 20;
        seen.extend(m.step(
            Input::Checked(failing(Id::Peers, "PeerEntriesMissing")),
            c.at(t),
        ));
        seen.extend(m.step(Input::Tick, c.at(t + 5)));
        seen.extend(m.step(Input::Checked(ok()), c.at(t + 10)));
        seen.extend(m.step(probed(true), c.at(t + 10)));
    }
    assert!(!seen.contains(&Action::AcquireLease));
    assert!(!seen.contains(&Action::RestartK3s));
    // Alerts too are rate-limited: one per alert interval at most.
    let fired = alerts(&seen)
        .iter()
        .filter(|k| **k == AlertKind::Firing)
        .count();
    assert!(fired <= 3, "{fired} alerts in 2000s");
}

#[test]
fn restores_are_rate_limited() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    let mut restores = 0;
    for t in 0..20 {
        let a = m.step(
            Input::Checked(failing(Id::SubnetEnv, "SubnetEnvMissing")),
            c.at(t),
        );
        if a.contains(&Action::Restore) {
            restores += 1;
            let a = m.step(
                Input::Restored(Err(errors::Failure::said("no backup, API down", true))),
                c.at(t),
            );
            assert_eq!(events(&a), ["SubnetEnvRestoreFailed"]);
        }
    }
    assert_eq!(restores, 4, "every 5s over 20s");
}

#[test]
fn without_an_automatic_remedy_the_agent_says_so_once() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    assert!(
        m.step(Input::Checked(failing(Id::Ipam, "IpamExhausted")), c.at(0))
            .is_empty()
    );
    let a = m.step(Input::Tick, c.at(30));
    assert_eq!(events(&a), ["RemediationExhausted"]);
    assert_eq!(alerts(&a), [AlertKind::Escalated]);
    assert!(m.step(Input::Tick, c.at(31)).is_empty());

    // Nor when no way to restart k3s is configured.
    let mut p = policy();
    p.can_restart = false;
    let mut m = Machine::new(p, false);
    m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(0),
    );
    let a = m.step(Input::Tick, c.at(30));
    assert!(!a.contains(&Action::AcquireLease));
    assert_eq!(events(&a), ["RemediationExhausted"]);
}

#[test]
fn a_failed_restart_gives_up_and_hands_the_lease_back() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(
        Input::Checked(failing(Id::FlannelLink, "FlannelLinkMissing")),
        c.at(0),
    );
    m.step(Input::Tick, c.at(30));
    m.step(Input::Lease(LeaseAnswer::Held), c.at(30));
    let a = m.step(
        Input::Restarted(Err(errors::Failure::said("systemctl exited 1", true))),
        c.at(31),
    );
    assert!(a.contains(&Action::ReleaseLease));
    assert_eq!(events(&a), ["RemediationExhausted"]);
    assert!(m.exhausted());
}

#[test]
fn alerts_wait_fire_once_and_resolve() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    m.step(Input::Checked(ok()), c.at(0));
    m.step(probed(true), c.at(0));
    assert!(
        alerts(&m.step(
            Input::Checked(failing(Id::Cni, "BridgeAddressWrong")),
            c.at(1)
        ))
        .is_empty()
    );
    assert!(
        alerts(&m.step(Input::Tick, c.at(10))).is_empty(),
        "not before alert_after"
    );
    let a = m.step(Input::Tick, c.at(11));
    assert_eq!(alerts(&a), [AlertKind::Firing]);
    let Some(Action::Alert(alert)) = a.iter().find(|a| matches!(a, Action::Alert(_))) else {
        panic!("alert")
    };
    assert_eq!(alert.reason, "BridgeAddressWrong");
    assert!(
        alerts(&m.step(Input::Tick, c.at(12))).is_empty(),
        "deduplicated"
    );
    m.step(Input::Checked(ok()), c.at(20));
    assert_eq!(
        alerts(&m.step(probed(true), c.at(20))),
        [AlertKind::Resolved]
    );
    // A short blip heals before alert_after: nothing is sent.
    m.step(
        Input::Checked(failing(Id::Peers, "PeerEntriesMissing")),
        c.at(2000),
    );
    m.step(Input::Checked(ok()), c.at(2001));
    let a = m.step(probed(true), c.at(2001));
    assert!(alerts(&a).is_empty(), "{a:?}");
}

#[test]
fn a_dry_run_reports_and_alerts_but_never_acts() {
    let c = clock();
    let mut p = policy();
    p.remediate = false;
    let mut m = Machine::new(p, false);
    let mut seen = m.step(
        Input::Checked(failing(Id::SubnetEnv, "SubnetEnvMissing")),
        c.at(0),
    );
    for t in 1..100 {
        seen.extend(m.step(Input::Tick, c.at(t)));
    }
    assert_eq!(status(&m), Some(Truth::False));
    assert!(
        seen.iter().all(|a| matches!(a, Action::Alert(_))),
        "{seen:?}"
    );
    assert_eq!(alerts(&seen), [AlertKind::Firing]);
}

#[test]
fn the_taint_can_be_off() {
    let c = clock();
    let mut p = policy();
    p.taint = false;
    let mut m = Machine::new(p, false);
    assert!(!m.desired().taint);
    m.step(
        Input::Checked(failing(Id::SubnetEnv, "SubnetEnvMissing")),
        c.at(0),
    );
    assert!(!m.desired().taint);
    assert_eq!(status(&m), Some(Truth::False));
}

#[test]
fn unknown_checks_and_old_events_do_not_decide() {
    let c = clock();
    let mut m = Machine::new(policy(), false);
    let mut report = ok();
    report.checks[2] = check(Id::Peers, Status::Unknown, "ApiUnavailable");
    m.step(Input::Checked(report), c.at(0));
    m.step(probed(true), c.at(0));
    assert_eq!(status(&m), None, "peers unknown: not a complete check");
    let mut report = ok();
    report.checks[5] = check(Id::SandboxEvents, Status::Fail, "SandboxCreationFailing");
    m.step(Input::Checked(report), c.at(1));
    m.step(Input::Tick, c.at(1));
    m.step(probed(true), c.at(1));
    assert_eq!(
        status(&m),
        Some(Truth::True),
        "events are evidence, not a verdict"
    );
}
