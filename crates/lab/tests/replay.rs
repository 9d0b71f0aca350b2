//! The 2026-01-31 incident replayed on the lab, both ways. Unprotected, the
//! post-mortem's symptoms appear (nodes Ready while every sandbox on the
//! rebooted nodes fails with the incident's text, stale Unknown pods, the
//! CoreDNS → Flux → Longhorn → workloads cascade, cross-node pod traffic
//! broken) until the manual fix; protected by the real `rebootguard node
//! restore` run before k3s, no sandbox fails at all; unprotected but with
//! the real `rebootguard agent` on every node, the failure happens and is
//! healed with no human. Needs root, Debian's
//! CNI plugins and the `rebootguard` binary (built here if missing).

use std::path::PathBuf;

use rebootguard_lab::replay::{self, Report};
use rebootguard_lab::{Options, Scenario};

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");
const INCIDENT_TEXT: &str = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"";
const PLUGIN_TEXT: &str = "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory";

async fn run(protected: bool) -> Report {
    run_with(protected, false).await
}

async fn run_with(protected: bool, agent: bool) -> Report {
    let base = tempfile::tempdir().expect("tempdir");
    let mut o = Options::new(PathBuf::from(EXE));
    o.base_dir = base.path().to_path_buf();
    o.protected = protected;
    o.agent = agent;
    o.rebootguard = (protected || agent).then(|| common::rebootguard(EXE));
    let report = replay::replay(Scenario::incident().expect("incident scenario"), o)
        .await
        .expect("replay");
    eprintln!("{}", replay::render(&report));
    let left = std::fs::read_dir(base.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "lab directory left behind");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn incident_2026_01_31_unprotected_reproduces_the_outage_until_the_manual_fix() {
    if !ready("incident_2026_01_31_unprotected_reproduces_the_outage_until_the_manual_fix") {
        return;
    }
    let r = run(false).await;
    assert!(r.unmet.is_empty(), "{:?}", r.unmet);
    let first = r.first_failure.as_deref().unwrap();
    assert!(
        first.starts_with(INCIDENT_TEXT) && first.ends_with(PLUGIN_TEXT),
        "{first}"
    );
    assert!(r.sandbox_failures > 0);
    // Nodes Ready while the pods are not: the misleading part.
    assert!(
        r.samples
            .iter()
            .any(|s| s.nodes_ready == 3 && s.creating > 0 && s.running < 60),
        "no sample with Ready nodes and stuck pods"
    );
    assert!(
        r.samples.iter().any(|s| s.unknown > 0),
        "no stale Unknown pods"
    );
    // The cascade, in the real texts.
    assert!(
        r.events.get("Rebooted").copied().unwrap_or(0) >= 2,
        "{:?}",
        r.events
    );
    assert!(
        r.event_examples
            .get("Rebooted")
            .is_some_and(|m| m.contains("has been rebooted, boot id: "))
    );
    assert!(
        r.events.contains_key("NodeNotReady") && r.events.contains_key("SandboxChanged")
            || r.events.contains_key("TaintManagerEviction"),
        "{:?}",
        r.events
    );
    assert!(
        r.event_examples
            .get("FailedMount")
            .is_some_and(|m| m.contains(
                "driver name driver.longhorn.io not found in the list of registered CSI drivers"
            )),
        "{:?}",
        r.event_examples
    );
    assert!(
        r.event_examples
            .get("FailedAttachVolume")
            .is_some_and(|m| m.contains("does not contain driver driver.longhorn.io"))
    );
    assert!(
        r.events.contains_key("BackOff"),
        "Flux never crash-looped: {:?}",
        r.events
    );
    assert!(
        r.samples.iter().any(|s| s.helmreleases_ready == 0),
        "HelmReleases never went not Ready"
    );
    // Real pings between pod namespaces across nodes.
    let phase = |p: &str| r.probes.iter().find(|x| x.phase == p).unwrap();
    assert!(phase("before").results.values().all(|ok| *ok));
    assert!(phase("during").results.values().any(|ok| !ok));
    assert!(
        r.probes
            .iter()
            .rev()
            .find(|x| x.phase == "after")
            .unwrap()
            .results
            .values()
            .all(|ok| *ok)
    );
    assert!(
        r.timeline.iter().any(|e| e.kind == "fix"),
        "the manual fix was not applied"
    );
    assert_eq!((r.running_at_end, r.helmreleases_ready_at_end), (70, 11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn incident_2026_01_31_protected_no_sandbox_ever_fails() {
    if !ready("incident_2026_01_31_protected_no_sandbox_ever_fails") {
        return;
    }
    let r = run(true).await;
    assert!(r.unmet.is_empty(), "{:?}", r.unmet);
    assert_eq!(r.sandbox_failures, 0, "{:?}", r.first_failure);
    assert!(!r.events.contains_key("FailedCreatePodSandBox"));
    // rebootguard really ran before k3s and put the file back.
    assert!(
        r.timeline.iter().any(|e| e.kind == "rebootguard"
            && e.text.contains("node restore")
            && e.text.contains("exit status: 0")),
        "{:#?}",
        r.timeline
    );
    assert!(
        r.timeline
            .iter()
            .filter(|e| e.kind == "flannel" && e.text.contains("wrote"))
            .count()
            >= 5,
        "flannel did not initialise after the restore"
    );
    for p in &r.probes {
        assert!(
            p.results.values().all(|ok| *ok),
            "{} {:?}",
            p.phase,
            p.results
        );
    }
    assert_eq!((r.running_at_end, r.helmreleases_ready_at_end), (70, 11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn incident_2026_01_31_with_the_agent_heals_without_a_human() {
    if !ready("incident_2026_01_31_with_the_agent_heals_without_a_human") {
        return;
    }
    let r = run_with(false, true).await;
    assert!(r.unmet.is_empty(), "{:?}", r.unmet);
    // The silent failure happened on both rebooted nodes ...
    for node in ["boromir", "theoden"] {
        assert!(
            r.timeline.iter().any(|e| e.node.as_deref() == Some(node)
                && e.kind == "flannel"
                && e.text.contains("skipped its init")),
            "{node}"
        );
    }
    // ... pods that met it before the agent's taint failed as in the
    // incident (a fast agent may have kept every pod off) ...
    if let Some(first) = &r.first_failure {
        assert!(first.contains(PLUGIN_TEXT), "{first}");
    }
    // ... and no human fixed it: the agent restarted k3s on each broken node.
    assert!(!r.timeline.iter().any(|e| e.kind == "fix"));
    for node in ["boromir", "theoden"] {
        assert_eq!(
            r.timeline
                .iter()
                .filter(|e| e.node.as_deref() == Some(node)
                    && e.text == "k3s restarted (asked by rebootguard agent)")
                .count(),
            1,
            "{node}"
        );
    }
    assert!(
        !r.timeline
            .iter()
            .any(|e| e.node.as_deref() == Some("samwise") && e.kind == "k3s"),
        "samwise left alone"
    );
    assert_eq!((r.running_at_end, r.helmreleases_ready_at_end), (70, 11));
}
