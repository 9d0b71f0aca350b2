//! The lab's own writers leave the node agent's alone: a foreign Node
//! condition (`PodNetworkReady`) and a foreign taint
//! (`rebootguard.io/pod-network-unready:NoSchedule`), written over HTTP as
//! the agent writes them, survive the emulated kubelet's heartbeats, an
//! unreachable period (`Ready=Unknown`, the unreachable taint) and the
//! recovery; and the workload controllers schedule around the taint.
//! Needs root and Debian's CNI plugins; prints why it skips otherwise.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use rebootguard_lab::{Lab, api};
use serde_json::{Value, json};

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");
const AGENT_TAINT: &str = "rebootguard.io/pod-network-unready";

async fn wait(lab: &Lab, what: &str, limit: Duration, mut f: impl FnMut(&Lab) -> bool) {
    let t = Instant::now();
    while !f(lab) {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn taint_keys(node: &Value) -> Vec<String> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t["key"].as_str().map(str::to_owned))
        .collect()
}

fn pods_on(lab: &Lab, node: &str) -> Vec<Value> {
    lab.ctx
        .api
        .pods_on(node)
        .into_iter()
        .filter(|p| !api::terminating(p))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn foreign_condition_and_taint_survive_heartbeats_unreachable_and_recovery() {
    if !ready("foreign_condition_and_taint_survive_heartbeats_unreachable_and_recovery") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    // Time scale 20: heartbeat 0.5 s, grace 2 s, toleration 15 s.
    let lab = Lab::up(
        common::echo_scenario(2, 20.0),
        common::options(EXE, base.path()),
    )
    .await
    .expect("lab up");
    wait(&lab, "every pod running", Duration::from_secs(30), |l| {
        let pods = l.ctx.api.pods();
        pods.len() == 2 && pods.iter().all(api::pod_running)
    })
    .await;

    // The agent's writes, over HTTP like the agent's.
    let nodes: Api<Node> = Api::all(lab.ctx.api.sim.client().unwrap());
    nodes
        .patch_status(
            "boromir",
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": [{
                "type": "PodNetworkReady", "status": "False", "reason": "SubnetEnvMissing",
                "message": "lab test", "lastHeartbeatTime": kubesim::time::now(),
                "lastTransitionTime": kubesim::time::now()}]}})),
        )
        .await
        .unwrap();
    nodes
        .patch(
            "boromir",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"taints": [{"key": AGENT_TAINT, "effect": "NoSchedule"}]}}),
            ),
        )
        .await
        .unwrap();
    let foreign_intact = |l: &Lab| {
        let n = l.ctx.api.node("boromir").unwrap();
        api::condition(&n, "PodNetworkReady") == Some("False")
            && taint_keys(&n).contains(&AGENT_TAINT.to_owned())
    };

    // Heartbeats (every 0.5 s) keep Ready fresh and leave the rest alone.
    let beat = |l: &Lab| {
        l.ctx.api.node("boromir").and_then(|n| {
            n.pointer("/status/conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")?
                .get("lastHeartbeatTime")
                .cloned()
        })
    };
    let first = beat(&lab);
    wait(&lab, "a newer heartbeat", Duration::from_secs(5), |l| {
        beat(l) != first
    })
    .await;
    assert!(
        foreign_intact(&lab),
        "{:#}",
        lab.ctx.api.node("boromir").unwrap()
    );

    // The taint keeps new pods away: the one force-deleted is not replaced.
    let pod = pods_on(&lab, "boromir").remove(0);
    lab.ctx
        .api
        .delete_now("v1", "Pod", "default", api::name(&pod))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        pods_on(&lab, "boromir").is_empty(),
        "a pod was scheduled onto a node with an untolerated NoSchedule taint"
    );

    // Unreachable: Ready=Unknown and the unreachable taint, next to the agent's.
    let node = lab.node("boromir").unwrap();
    node.api_blocked.store(true, Ordering::Release);
    wait(&lab, "Ready=Unknown", Duration::from_secs(10), |l| {
        let n = l.ctx.api.node("boromir").unwrap();
        api::condition(&n, "Ready") == Some("Unknown")
            && taint_keys(&n).contains(&"node.kubernetes.io/unreachable".to_owned())
    })
    .await;
    assert!(
        foreign_intact(&lab),
        "{:#}",
        lab.ctx.api.node("boromir").unwrap()
    );

    // Recovery: Ready again, only the unreachable taint removed.
    node.api_blocked.store(false, Ordering::Release);
    wait(&lab, "Ready=True again", Duration::from_secs(10), |l| {
        let n = l.ctx.api.node("boromir").unwrap();
        api::condition(&n, "Ready") == Some("True") && taint_keys(&n) == [AGENT_TAINT]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        foreign_intact(&lab),
        "{:#}",
        lab.ctx.api.node("boromir").unwrap()
    );
    assert!(
        pods_on(&lab, "boromir").is_empty(),
        "still tainted: no pods"
    );

    // The agent lifts its taint: the workload comes back.
    nodes
        .patch(
            "boromir",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": null}})),
        )
        .await
        .unwrap();
    wait(
        &lab,
        "the pod back on boromir",
        Duration::from_secs(15),
        |l| pods_on(l, "boromir").iter().any(api::pod_running),
    )
    .await;
    assert_eq!(
        api::condition(&lab.ctx.api.node("boromir").unwrap(), "PodNetworkReady"),
        Some("False"),
        "the condition is the agent's to change"
    );
}
