//! Shared by the lab's tests: what a lab needs to run here, and the
//! `rebootguard` binary the protected runs install on the nodes.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rebootguard_lab::{Lab, api};

const CONDITION: &str = "PodNetworkReady";

/// True when this test can run a lab (root, Debian's CNI plugins); else
/// prints why it skips.
pub fn ready(test: &str) -> bool {
    rebootguard_hostnet::cni::test_ready(test, &["bridge", "host-local", "portmap", "bandwidth"])
}

/// The `rebootguard` binary next to `lab_exe`, built on demand.
pub fn rebootguard(lab_exe: &str) -> PathBuf {
    let path = Path::new(lab_exe).with_file_name("rebootguard");
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "rebootguard", "--bin", "rebootguard"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo runs").success(),
            "building rebootguard failed"
        );
    }
    path
}

/// `nodes` plain nodes at `time_scale`, with one plain pod on each (the
/// DaemonSet `default/echo`): what most lab tests start from.
pub fn echo_scenario(nodes: usize, time_scale: f64) -> rebootguard_lab::Scenario {
    let mut s = rebootguard_lab::Scenario::plain(nodes);
    s.time_scale = time_scale;
    s.workloads.push(rebootguard_lab::scenario::Workload {
        namespace: "default".into(),
        name: "echo".into(),
        behaviour: rebootguard_lab::scenario::Behaviour::Plain,
        replicas: None,
        nodes: vec![],
        bare: false,
    });
    s
}

/// Lab options around the test's `rebootguard-lab` binary, with lab
/// directories under `base`.
pub fn options(lab_exe: &str, base: &Path) -> rebootguard_lab::Options {
    let mut o = rebootguard_lab::Options::new(PathBuf::from(lab_exe));
    o.base_dir = base.to_path_buf();
    o
}

/// A lab of `nodes` echo nodes with the real agent in each (`--agent`),
/// once every node's PodNetworkReady is True and every pod runs.
pub async fn agent_lab(lab_exe: &str, base: &Path, nodes: usize) -> Lab {
    let s = echo_scenario(nodes, 30.0);
    let mut o = options(lab_exe, base);
    o.agent = true;
    o.rebootguard = Some(rebootguard(lab_exe));
    let lab = Lab::up(s, o).await.expect("lab up");
    let names: Vec<String> = lab.ctx.nodes.iter().map(|n| n.name.clone()).collect();
    wait(
        &lab,
        "every node's PodNetworkReady True and every pod running",
        60,
        |l| {
            names
                .iter()
                .all(|n| status(l, n).is_some_and(|(s, _)| s == "True"))
                && l.ctx.api.pods().iter().all(api::pod_running)
        },
    )
    .await;
    lab
}

pub async fn wait(lab: &Lab, what: &str, secs: u64, mut done: impl FnMut(&Lab) -> bool) {
    let t = Instant::now();
    while !done(lab) {
        // A lab task that panicked or ended is the lab failing, not the
        // cluster: say so at once instead of timing out.
        let failed = lab.task_failures();
        assert!(
            failed.is_empty(),
            "the lab failed while waiting for {what}: {failed:?}"
        );
        if t.elapsed() > Duration::from_secs(secs) {
            let logs: Vec<String> = lab
                .ctx
                .nodes
                .iter()
                .map(|n| {
                    let log = std::fs::read_to_string(n.root.join("agent.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    format!(
                        "--- {}:\n{}",
                        n.name,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!("timed out waiting for {what}\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `PodNetworkReady`'s (status, reason) on a node.
pub fn status(lab: &Lab, node: &str) -> Option<(String, String)> {
    let n = lab.ctx.api.node(node)?;
    let c = n["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == CONDITION)?
        .clone();
    Some((
        c["status"].as_str()?.to_owned(),
        c["reason"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// The Events on `node` with `reason`, messages in order.
pub fn events(lab: &Lab, node: &str, reason: &str) -> Vec<String> {
    lab.ctx
        .api
        .events_with_reason(reason)
        .iter()
        .filter(|e| e["involvedObject"]["name"] == node)
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

pub fn boot_id(lab: &Lab, node: &str) -> Option<String> {
    lab.ctx.api.node(node)?["status"]["nodeInfo"]["bootID"]
        .as_str()
        .map(str::to_owned)
}

pub fn annotation(lab: &Lab, node: &str, key: &str) -> Option<String> {
    lab.ctx.api.node(node)?["metadata"]["annotations"][key]
        .as_str()
        .map(str::to_owned)
}

/// The Lease `namespace/name` as the lab's API stores it.
pub fn lease(lab: &Lab, namespace: &str, name: &str) -> Option<serde_json::Value> {
    lab.ctx
        .api
        .sim
        .get("coordination.k8s.io/v1", "Lease", namespace, name)
}
