//! Each injectable fault, on a small lab, fails the way its upstream
//! reports say it does. Needs root and Debian's CNI plugins; prints why it
//! skips otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rebootguard_lab::{Fault, Lab, api};
use serde_json::Value;

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

/// Two nodes (boromir, theoden), one plain pod on each.
async fn small_lab(base: &Path) -> Lab {
    small_lab_with(base, None).await
}

async fn small_lab_with(base: &Path, rebootguard: Option<PathBuf>) -> Lab {
    let mut o = common::options(EXE, base);
    o.protected = rebootguard.is_some();
    o.rebootguard = rebootguard;
    let lab = Lab::up(common::echo_scenario(2, 20.0), o)
        .await
        .expect("lab up");
    wait(&lab, "every pod running", |l| {
        let pods = l.ctx.api.pods();
        pods.len() == 2 && pods.iter().all(api::pod_running)
    })
    .await;
    lab
}

async fn wait(lab: &Lab, what: &str, mut f: impl FnMut(&Lab) -> bool) {
    let t = Instant::now();
    while !f(lab) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn events(lab: &Lab, reason: &str) -> Vec<String> {
    lab.ctx
        .api
        .events_with_reason(reason)
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

/// Reboots boromir with `fault` and waits for a FailedCreatePodSandBox on it.
async fn sandbox_error_after(fault: Fault, base: &Path) -> (Lab, String) {
    let lab = small_lab(base).await;
    lab.inject("boromir", fault).expect("inject");
    lab.reboot(&["boromir".to_owned()], Duration::from_millis(200))
        .await
        .expect("reboot");
    wait(&lab, "a failed sandbox", |l| {
        !events(l, "FailedCreatePodSandBox").is_empty()
    })
    .await;
    let message = events(&lab, "FailedCreatePodSandBox").remove(0);
    (lab, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn missing_cni_binary_fails_like_libcni() {
    if !ready("missing_cni_binary_fails_like_libcni") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let (_lab, m) = sandbox_error_after(Fault::MissingCniBinary, base.path()).await;
    assert!(
        m.contains("failed to find plugin \"flannel\" in path [/var/lib/rancher/k3s/data/cni]"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn leaked_leases_exhaust_the_range() {
    if !ready("leaked_leases_exhaust_the_range") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let (_lab, m) = sandbox_error_after(Fault::LeakedLeases, base.path()).await;
    assert!(m.contains("no IP addresses available in range set"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn stale_flannel_address_stops_flannel_and_leaves_no_subnet_env() {
    if !ready("stale_flannel_address_stops_flannel_and_leaves_no_subnet_env") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let (lab, m) = sandbox_error_after(Fault::StaleFlannelAddress, base.path()).await;
    assert!(
        m.contains(
            "loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
        ),
        "{m}"
    );
    assert!(
        lab.ctx
            .timeline
            .entries()
            .iter()
            .any(|e| e.text.contains("link has incompatible addresses"))
    );
    let node = lab.node("boromir").unwrap();
    let vtep = rebootguard_hostnet::link::get(node.netns().as_deref(), "flannel.1").unwrap();
    assert_eq!(
        vtep.addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.42.99.0/32"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn flannel_silent_skip_is_the_incident_and_the_manual_fix_heals_it() {
    if !ready("flannel_silent_skip_is_the_incident_and_the_manual_fix_heals_it") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let (lab, m) = sandbox_error_after(Fault::FlannelSilentSkip, base.path()).await;
    assert!(m.ends_with("plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"), "{m}");
    let node = lab.node("boromir").unwrap();
    assert!(
        rebootguard_hostnet::link::get(node.netns().as_deref(), "flannel.1").is_err(),
        "flannel.1 must be absent"
    );
    // Back before the toleration: the same pod, a new sandbox.
    assert_eq!(
        events(&lab, "SandboxChanged"),
        ["Pod sandbox changed, it will be killed and re-created."]
    );
    let rebooted = events(&lab, "Rebooted");
    assert!(
        rebooted.len() == 1 && rebooted[0].starts_with("Node boromir has been rebooted, boot id: "),
        "{rebooted:?}"
    );
    assert_eq!(
        api::condition(&lab.ctx.api.node("boromir").unwrap(), "Ready"),
        Some("True"),
        "the node says Ready"
    );
    // Restarting k3s alone does not help (the post-mortem's 01:30).
    rebootguard_lab::node::stop_k3s(&node);
    rebootguard_lab::node::start_k3s(&lab.ctx, &node);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!node.path("run/flannel/subnet.env").exists());
    let done = lab.fix_manually().await;
    assert!(
        done.iter()
            .any(|d| d
                .contains("boromir: wrote /run/flannel/subnet.env (FLANNEL_SUBNET=10.42.0.1/24)")),
        "{done:?}"
    );
    wait(&lab, "recovery", |l| {
        l.ctx
            .api
            .pods()
            .iter()
            .filter(|p| api::pod_running(p))
            .count()
            == 2
    })
    .await;
    assert!(rebootguard_hostnet::link::get(node.netns().as_deref(), "flannel.1").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn podcidr_never_assigned_blocks_flannel_with_cidr_not_available() {
    if !ready("podcidr_never_assigned_blocks_flannel_with_cidr_not_available") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = small_lab(base.path()).await;
    lab.inject("boromir", Fault::PodCidrNeverAssigned).unwrap();
    lab.reboot(&["boromir".to_owned()], Duration::from_millis(200))
        .await
        .unwrap();
    wait(&lab, "CIDRNotAvailable", |l| {
        !events(l, "CIDRNotAvailable").is_empty()
    })
    .await;
    assert_eq!(
        events(&lab, "CIDRNotAvailable")[0],
        "Node boromir status is now: CIDRNotAvailable"
    );
    let node = lab.ctx.api.node("boromir").unwrap();
    assert!(node.pointer("/spec/podCIDR").is_none());
    assert!(
        !lab.node("boromir")
            .unwrap()
            .path("run/flannel/subnet.env")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn api_unreachable_during_boot_delays_registration_then_recovers() {
    if !ready("api_unreachable_during_boot_delays_registration_then_recovers") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = small_lab(base.path()).await;
    lab.inject("boromir", Fault::ApiUnreachableDuringBoot)
        .unwrap();
    lab.reboot(&["boromir".to_owned()], Duration::from_millis(200))
        .await
        .unwrap();
    let node = lab.node("boromir").unwrap();
    assert!(
        node.reach().is_err(),
        "the API must be cut off while booting"
    );
    let boot_id = node.state().boot_id.clone();
    wait(&lab, "re-registration", |l| {
        l.ctx.api.node("boromir").and_then(|n| {
            n.pointer("/status/nodeInfo/bootID")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }) == Some(boot_id.clone())
    })
    .await;
    assert!(node.reach().is_ok());
    wait(&lab, "recovery", |l| {
        l.ctx
            .api
            .pods()
            .iter()
            .filter(|p| api::pod_running(p))
            .count()
            == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn whole_cluster_with_silent_flannel_leaves_nothing_to_copy_from() {
    if !ready("whole_cluster_with_silent_flannel_leaves_nothing_to_copy_from") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = small_lab(base.path()).await;
    for n in ["boromir", "theoden"] {
        lab.inject(n, Fault::FlannelSilentSkip).unwrap();
    }
    lab.reboot(
        &["boromir".to_owned(), "theoden".to_owned()],
        Duration::from_millis(500),
    )
    .await
    .unwrap();
    assert!(
        lab.ctx
            .timeline
            .entries()
            .iter()
            .any(|e| e.text.contains("API server down"))
    );
    wait(&lab, "failed sandboxes on both nodes", |l| {
        let failed: std::collections::BTreeSet<String> = l
            .ctx
            .api
            .events_with_reason("FailedCreatePodSandBox")
            .iter()
            .filter_map(|e| e["source"]["host"].as_str().map(str::to_owned))
            .collect();
        failed.len() == 2
    })
    .await;
    let done = lab.fix_manually().await;
    assert!(
        done.iter()
            .any(|d| d.contains("no node has a valid subnet.env to copy from")),
        "{done:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn leaked_leases_are_freed_by_rebootguard_before_k3s() {
    if !ready("leaked_leases_are_freed_by_rebootguard_before_k3s") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = small_lab_with(base.path(), Some(common::rebootguard(EXE))).await;
    lab.inject("boromir", Fault::LeakedLeases).unwrap();
    lab.reboot(&["boromir".to_owned()], Duration::from_millis(1200))
        .await
        .unwrap();
    wait(&lab, "recovery", |l| {
        let pods = l.ctx.api.pods();
        pods.len() == 2 && pods.iter().all(api::pod_running)
    })
    .await;
    assert!(
        events(&lab, "FailedCreatePodSandBox").is_empty(),
        "{:?}",
        events(&lab, "FailedCreatePodSandBox")
    );
    let leases = std::fs::read_dir(
        lab.node("boromir")
            .unwrap()
            .path("var/lib/cni/networks/cbr0"),
    )
    .unwrap()
    .count();
    assert!(leases < 10, "{leases} lease files left");
}
