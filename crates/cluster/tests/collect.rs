//! Live collection against kubesim: paging, custom resources, degraded kinds.

use std::time::Duration;

use kubesim::KubeSim;
use kubesim::faults::{Failure, Route};
use kubesim::registry::CustomResource;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn collects_every_page_custom_resources_and_what_is_missing() {
    let sim = KubeSim::start().await.expect("kubesim");
    sim.create(
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "boromir"},
        "spec": {"podCIDR": "10.42.0.0/24"}}),
    )
    .expect("node");
    for i in 0..1203 {
        sim.create(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p{i}"), "namespace": "default"},
            "spec": {"nodeName": "boromir", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"},
        }))
        .expect("pod");
    }
    sim.create(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    )
    .expect("ns");
    sim.create(&json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "longhorn", "namespace": "flux-system"},
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "InstallFailed"}]},
    }))
    .expect("helmrelease");
    sim.fail_next(
        Route::new("list", "leases.coordination.k8s.io"),
        10,
        Failure::Internal,
    );

    let client = sim.client().expect("client");
    let snapshot =
        rebootguard_cluster::collect::collect(&client, "kubesim", Duration::from_secs(5)).await;
    assert_eq!(snapshot.nodes.len(), 1);
    assert_eq!(snapshot.pods.len(), 1203, "every page");
    assert!(
        sim.request_count("list", "pods") >= 3,
        "paged by 500: {}",
        sim.request_count("list", "pods")
    );
    let json = String::from_utf8(snapshot.to_json().expect("json")).expect("utf-8");
    assert!(json.contains("InstallFailed"), "HelmRelease kept");
    assert!(
        snapshot.missing.iter().any(|m| m.kind.contains("Lease")),
        "{:?}",
        snapshot.missing
    );
    assert!(
        !snapshot.missing.iter().any(|m| m.kind.contains("Pod")),
        "{:?}",
        snapshot.missing
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_kind_served_only_in_an_older_version_is_collected() {
    // Flux 2.0 to 2.2: the source group prefers v1 (GitRepository) while
    // HelmRepository is served as v1beta2 only.
    let mut custom_resources = CustomResource::defaults();
    custom_resources.push(CustomResource::namespaced(
        "source.toolkit.fluxcd.io",
        "v1",
        "gitrepositories",
        "GitRepository",
    ));
    custom_resources.push(CustomResource::namespaced(
        "source.toolkit.fluxcd.io",
        "v1beta2",
        "helmrepositories",
        "HelmRepository",
    ));
    let sim = KubeSim::with_options(kubesim::Options {
        custom_resources,
        ..kubesim::Options::default()
    })
    .await
    .expect("kubesim");
    sim.create(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    )
    .expect("ns");
    for (api_version, kind) in [
        ("source.toolkit.fluxcd.io/v1", "GitRepository"),
        ("source.toolkit.fluxcd.io/v1beta2", "HelmRepository"),
    ] {
        sim.create(&json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
        }))
        .expect("source");
    }

    let client = sim.client().expect("client");
    let snapshot =
        rebootguard_cluster::collect::collect(&client, "kubesim", Duration::from_secs(5)).await;
    let mut kept: Vec<&str> = snapshot
        .custom
        .iter()
        .filter_map(|v| v["apiVersion"].as_str())
        .filter(|a| a.starts_with("source."))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            "source.toolkit.fluxcd.io/v1",
            "source.toolkit.fluxcd.io/v1beta2"
        ]
    );
    assert!(
        !snapshot.missing.iter().any(|m| m.kind.contains("fluxcd")),
        "{:?}",
        snapshot.missing
    );
}
