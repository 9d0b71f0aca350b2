//! `rebootguard node check`, the real binary run inside a lab node's
//! namespace with the node's root, against the lab's real data plane: a
//! healthy node passes, and each break is named by the first failing check.
//! Needs root and Debian's CNI plugins; prints why it skips otherwise.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rebootguard_lab::{Fault, Lab, api, node};
use serde_json::Value;

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

async fn lab(base: &Path) -> Lab {
    let lab = Lab::up(common::echo_scenario(3, 20.0), common::options(EXE, base))
        .await
        .expect("lab up");
    wait("every pod running and every peer programmed", || {
        let pods = lab.ctx.api.pods();
        pods.len() == 3 && pods.iter().all(api::pod_running) && programmed(&lab)
    })
    .await;
    lab
}

/// Every node has an onlink route for both of its peers.
fn programmed(lab: &Lab) -> bool {
    lab.ctx.nodes.iter().all(|n| {
        let Some(ns) = n.netns() else { return false };
        rebootguard_hostnet::link::blocking(Some(&ns), |nl| async move {
            nl.routes(rebootguard_hostnet::link::Family::V4).await
        })
        .is_ok_and(|routes| routes.iter().filter(|r| r.onlink).count() == 2)
    })
}

async fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `rebootguard node check --json` as the node's own tooling would.
async fn check(lab: &Lab, name: &str) -> (i32, Value) {
    let node = lab.node(name).expect("node");
    let ns = node.netns().expect("powered");
    let exe = common::rebootguard(EXE);
    let mut cmd = ns.command(&exe).expect("command");
    cmd.args(["node", "check", "--json", "--root"])
        .arg(&node.root)
        .args(["--node-name", name, "--kubeconfig"])
        .arg(node.path(node::paths::KUBECONFIG))
        .env_remove("KUBECONFIG")
        .env("REBOOTGUARD_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn first_failure(report: &Value) -> (String, String) {
    let failing = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["status"] == "FAIL"))
        .unwrap_or_else(|| panic!("no failing check: {report:#}"));
    (
        failing["reason"].as_str().unwrap_or_default().to_owned(),
        failing.to_string(),
    )
}

fn ip(ns: &Arc<rebootguard_hostnet::Netns>, args: &[&str]) {
    let out = ns
        .command("ip")
        .expect("command")
        .args(args)
        .output()
        .expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn node_check_names_each_break_on_the_real_data_plane() {
    if !ready("node_check_names_each_break_on_the_real_data_plane") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = lab(base.path()).await;

    let (code, report) = check(&lab, "boromir").await;
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verdict"], "ok");
    for c in report["checks"].as_array().expect("checks") {
        assert_eq!(c["status"], "OK", "{c}");
    }

    let boromir = lab.node("boromir").expect("node");
    let ns = boromir.netns().expect("powered");
    let env = boromir.path(node::paths::SUBNET_ENV);
    let saved = std::fs::read(&env).expect("subnet.env");

    std::fs::remove_file(&env).expect("rm");
    let (code, report) = check(&lab, "boromir").await;
    assert_eq!(code, 1);
    let (reason, text) = first_failure(&report);
    assert_eq!(reason, "SubnetEnvMissing", "{text}");
    assert!(text.contains("open /run/flannel/subnet.env: no such file or directory"));
    std::fs::write(&env, &saved).expect("put back");

    // theoden's entries on boromir, dropped as a failed flannel would leave them.
    let theoden = lab.ctx.api.node("theoden").expect("theoden");
    let lease = theoden["spec"]["podCIDR"]
        .as_str()
        .expect("podCIDR")
        .to_owned();
    ip(&ns, &["route", "del", &lease]);
    let (code, report) = check(&lab, "boromir").await;
    assert_eq!(code, 1);
    let (reason, text) = first_failure(&report);
    assert_eq!(reason, "PeerEntriesMissing", "{text}");
    assert!(
        text.contains("theoden") && !text.contains("samwise ("),
        "{text}"
    );

    ip(&ns, &["link", "del", "flannel.1"]);
    let (code, report) = check(&lab, "boromir").await;
    assert_eq!(code, 1);
    assert_eq!(first_failure(&report).0, "FlannelLinkMissing");

    // samwise's own state is untouched: its check passes.
    let (code, report) = check(&lab, "samwise").await;
    assert_eq!(code, 0, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn node_check_after_the_incidents_reboot_points_at_subnet_env() {
    if !ready("node_check_after_the_incidents_reboot_points_at_subnet_env") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = lab(base.path()).await;
    lab.inject("boromir", Fault::FlannelSilentSkip)
        .expect("inject");
    lab.reboot(&["boromir".to_owned()], Duration::from_millis(200))
        .await
        .expect("reboot");
    wait("a failed sandbox on boromir", || {
        !lab.ctx
            .api
            .events_with_reason("FailedCreatePodSandBox")
            .is_empty()
    })
    .await;
    let (code, report) = check(&lab, "boromir").await;
    assert_eq!(code, 1);
    let (reason, _) = first_failure(&report);
    assert_eq!(reason, "SubnetEnvMissing");
    let events = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "sandbox-events"))
        .expect("events check")
        .clone();
    assert_eq!(events["status"], "FAIL", "{events:#}");
    assert!(
        events["evidence"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("flannel subnet.env missing")),
        "{events:#}"
    );
    let flannel = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "flannel-link"))
        .expect("link check");
    assert_eq!(flannel["reason"], "FlannelLinkMissing");
}
