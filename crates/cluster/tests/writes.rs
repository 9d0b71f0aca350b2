//! The agent's writes against kubesim over real HTTP: a condition that
//! leaves the kubelet's alone, a taint that never clobbers another
//! writer's, a Lease that admits one holder and frees itself when its
//! holder vanishes.

use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;
use kubesim::KubeSim;
use rebootguard_cluster::condition::{self, Condition};
use rebootguard_cluster::lease::{Lock, Outcome};
use rebootguard_cluster::taint;
use serde_json::json;

const BOUND: Duration = Duration::from_secs(5);

async fn sim_with_node() -> KubeSim {
    let sim = KubeSim::start().await.expect("kubesim");
    sim.create(&json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "boromir"},
        "spec": {"podCIDR": "10.42.0.0/24",
            "taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }))
    .expect("node");
    sim
}

fn ours() -> Taint {
    Taint {
        key: "rebootguard.io/pod-network-unready".into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    }
}

fn keys(sim: &KubeSim) -> Vec<String> {
    let node = sim.get("v1", "Node", "", "boromir").expect("node");
    node["spec"]["taints"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| t["key"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_condition_is_one_entry_and_moves_its_transition_only_on_change() {
    let sim = sim_with_node().await;
    let client = sim.client().expect("client");
    let t1: jiff::Timestamp = "2026-01-31T07:00:00Z".parse().expect("time");
    let false_ = Condition {
        kind: "PodNetworkReady".into(),
        status: "False".into(),
        reason: "SubnetEnvMissing".into(),
        message: "subnet-env: /run/flannel/subnet.env does not exist".into(),
    };
    condition::set(&client, "boromir", &false_, None, t1, BOUND)
        .await
        .expect("set");
    let node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(sim.get("v1", "Node", "", "boromir").expect("node")).expect("typed");
    assert!(
        condition::find(&node, "Ready").is_some(),
        "the kubelet's is kept"
    );
    let written = condition::find(&node, "PodNetworkReady")
        .expect("ours")
        .clone();
    assert_eq!(written.reason.as_deref(), Some("SubnetEnvMissing"));

    let t2 = t1 + jiff::SignedDuration::from_secs(30);
    condition::set(&client, "boromir", &false_, Some(&written), t2, BOUND)
        .await
        .expect("heartbeat");
    let node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(sim.get("v1", "Node", "", "boromir").expect("node")).expect("typed");
    let beat = condition::find(&node, "PodNetworkReady")
        .expect("ours")
        .clone();
    assert_eq!(beat.last_transition_time.as_ref().map(|t| t.0), Some(t1));
    assert_eq!(beat.last_heartbeat_time.as_ref().map(|t| t.0), Some(t2));

    let true_ = Condition {
        status: "True".into(),
        reason: "PodNetworkWorks".into(),
        ..false_
    };
    let t3 = t2 + jiff::SignedDuration::from_secs(1);
    condition::set(&client, "boromir", &true_, Some(&beat), t3, BOUND)
        .await
        .expect("transition");
    let node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(sim.get("v1", "Node", "", "boromir").expect("node")).expect("typed");
    let now = condition::find(&node, "PodNetworkReady").expect("ours");
    assert_eq!(now.last_transition_time.as_ref().map(|t| t.0), Some(t3));
    assert_eq!(
        node.status.and_then(|s| s.conditions).map(|c| c.len()),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_taint_never_clobbers_another_writers() {
    let sim = sim_with_node().await;
    let client = sim.client().expect("client");
    assert!(
        taint::set(&client, "boromir", &ours(), true, BOUND)
            .await
            .expect("add")
    );
    assert!(
        !taint::set(&client, "boromir", &ours(), true, BOUND)
            .await
            .expect("again")
    );
    assert_eq!(
        keys(&sim),
        [
            "node.kubernetes.io/unreachable",
            "rebootguard.io/pod-network-unready"
        ]
    );

    // Another writer races us: each of its writes lands between our read
    // and our write. Ours must retry, never overwrite.
    let racer = sim.client().expect("client");
    let race = tokio::spawn(async move {
        let mut written = Vec::new();
        for i in 0..20 {
            let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(racer.clone());
            let mut node = api.get("boromir").await.expect("get");
            let taints = node
                .spec
                .get_or_insert_with(Default::default)
                .taints
                .get_or_insert_with(Vec::new);
            taints.push(Taint {
                key: format!("example.com/other-{i}"),
                effect: "NoSchedule".into(),
                ..Taint::default()
            });
            // A conflict is the racer's own problem (it read before our write).
            if api
                .replace("boromir", &Default::default(), &node)
                .await
                .is_ok()
            {
                written.push(format!("example.com/other-{i}"));
            }
        }
        written
    });
    for _ in 0..10 {
        taint::set(&client, "boromir", &ours(), false, BOUND)
            .await
            .expect("remove");
        taint::set(&client, "boromir", &ours(), true, BOUND)
            .await
            .expect("add");
    }
    let written = race.await.expect("racer");
    let keys = keys(&sim);
    assert!(!written.is_empty(), "the racer never got a write in");
    // Whatever the interleaving, each of the racer's successful writes survives.
    for key in &written {
        assert!(keys.contains(key), "{key} lost: {keys:?}");
    }
    assert!(keys.contains(&"rebootguard.io/pod-network-unready".to_owned()));
    assert!(keys.contains(&"node.kubernetes.io/unreachable".to_owned()));
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("rebootguard.io/"))
            .count(),
        1
    );
    let missing = taint::set(&client, "gone", &ours(), true, BOUND).await;
    assert!(matches!(
        missing,
        Err(rebootguard_cluster::node::Error::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lease_admits_one_holder_and_expires() {
    let sim = KubeSim::start().await.expect("kubesim");
    let client = sim.client().expect("client");
    let ttl = Duration::from_secs(1);
    let lock = |who: &str| {
        Lock::new(
            client.clone(),
            "kube-system",
            "rebootguard-k3s-restart",
            who,
            ttl,
            BOUND,
        )
    };
    let (boromir, theoden) = (lock("boromir"), lock("theoden"));

    let (a, b) = tokio::join!(boromir.acquire(), theoden.acquire());
    let outcomes = [a.expect("boromir"), b.expect("theoden")];
    let held = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Held { .. }))
        .count();
    assert_eq!(held, 1, "exactly one holder: {outcomes:?}");
    let (winner, loser) = if matches!(outcomes[0], Outcome::Held { .. }) {
        (&boromir, &theoden)
    } else {
        (&theoden, &boromir)
    };
    assert!(matches!(
        loser.acquire().await.expect("busy"),
        Outcome::Busy { .. }
    ));
    assert!(matches!(
        winner.acquire().await.expect("renew"),
        Outcome::Held { took_from: None }
    ));

    // The winner vanishes without releasing: after its TTL the loser takes over.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    match loser.acquire().await.expect("take over") {
        Outcome::Held { took_from } => assert!(took_from.is_some()),
        other => panic!("not taken over: {other:?}"),
    }
    // Releasing gives it to the next contender at once.
    loser.release().await.expect("release");
    assert!(matches!(
        winner.acquire().await.expect("free"),
        Outcome::Held { took_from: None }
    ));
    assert_eq!(
        winner.holder().await.expect("holder"),
        Some(winner_name(&boromir, winner))
    );
}

fn winner_name(boromir: &Lock, winner: &Lock) -> String {
    if std::ptr::eq(boromir, winner) {
        "boromir".into()
    } else {
        "theoden".into()
    }
}
