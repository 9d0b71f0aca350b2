//! Issue 5's end-to-end proof: `rebootguard diagnose`'s live collection and
//! analysis, pointed at the lab's API while the 2026-01-31 incident is
//! happening (unprotected, before the manual fix), names the same first
//! domino as the post-mortem: flannel's subnet.env missing on boromir and
//! theoden, with the cascade folded under it, workload by workload (the
//! lab's pods are owned by ReplicaSets and DaemonSets).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rebootguard_diagnose::{Config, analyse};
use rebootguard_lab::replay::sample;
use rebootguard_lab::scenario::{Behaviour, Fault};
use rebootguard_lab::{Lab, Options, Scenario};

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn diagnose_names_the_first_domino_of_the_replayed_incident() {
    if !ready("diagnose_names_the_first_domino_of_the_replayed_incident") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let mut options = Options::new(PathBuf::from(EXE));
    options.base_dir = base.path().to_path_buf();
    let scenario = Scenario::incident().expect("incident scenario");
    let lab = Lab::up(scenario.clone(), options).await.expect("lab up");

    // Healthy first, as in the replay.
    let want: usize = scenario
        .workloads
        .iter()
        .filter(|w| w.behaviour != Behaviour::Broken)
        .map(|w| scenario.placements(w).len())
        .sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    while sample(&lab).running < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(sample(&lab).running >= want, "lab never got healthy");

    // The incident: both reboot, flannel silently skips its init on both.
    let rebooted = ["boromir".to_owned(), "theoden".to_owned()];
    for node in &rebooted {
        lab.inject(node, Fault::FlannelSilentSkip).expect("inject");
    }
    lab.reboot(&rebooted, scenario.scaled(Duration::from_secs(360)))
        .await
        .expect("reboot");
    tokio::time::sleep(scenario.scaled(Duration::from_secs(240))).await;

    let client = lab.ctx.api.sim.client().expect("client");
    let snapshot =
        rebootguard_cluster::collect::collect(&client, "lab", Duration::from_secs(10)).await;
    if let Ok(path) = std::env::var("LAB_DIAGNOSE_SNAPSHOT") {
        std::fs::write(path, snapshot.to_json().expect("json")).expect("write snapshot");
    }
    let report = analyse(&snapshot, jiff::Timestamp::now(), &Config::default());
    let titles: Vec<&str> = report.roots.iter().map(|r| r.title.as_str()).collect();
    let first = titles.first().copied().unwrap_or_default();
    assert!(first.contains("subnet.env missing"), "{titles:#?}");
    assert!(
        first.contains("boromir") && first.contains("theoden"),
        "{titles:#?}"
    );
    // The lab's pods are owned as a real cluster's: the cascade is told
    // by workload (Deployment, DaemonSet), never pod by pod.
    let mut impact: Vec<&str> = Vec::new();
    let mut stack: Vec<&rebootguard_diagnose::report::Impact> =
        report.roots.iter().flat_map(|r| &r.impact).collect();
    while let Some(i) = stack.pop() {
        impact.push(&i.title);
        stack.extend(&i.children);
    }
    assert!(
        impact
            .iter()
            .any(|t| t.starts_with("Deployment kube-system/coredns: ")),
        "{impact:#?}"
    );
    assert!(
        impact
            .iter()
            .any(|t| t.starts_with("DaemonSet longhorn-system/longhorn-csi-plugin: ")),
        "{impact:#?}"
    );
    assert!(!impact.iter().any(|t| t.starts_with("Pod ")), "{impact:#?}");
    for title in titles.iter().skip(1) {
        for folded in ["CoreDNS", "source-controller", "longhorn"] {
            assert!(
                !title.contains(folded),
                "{folded} is a root of its own: {titles:#?}"
            );
        }
    }
    drop(lab);
}
