//! API semantics beyond basic CRUD, through kube-rs: every served group,
//! custom resources, pagination, bookmarks, finalizers, eviction, binding,
//! namespace deletion and the HTTP control API.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, VolumeAttachment};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, EvictParams, GroupVersionKind, ListParams,
    Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Client, Resource};
use kubesim::{KubeSim, Options, PodTermination};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

async fn round_trip<K>(client: &Client, namespace: Option<&str>, object: Value)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace.unwrap_or("default"));
    let obj: K = serde_json::from_value(object).expect("valid object");
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    let name = created.meta().name.clone().expect("a name");
    assert_eq!(
        api.get(&name).await.expect("get").meta().uid,
        created.meta().uid
    );
    assert_eq!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get_opt(&name).await.expect("get").is_none());
}

async fn round_trip_cluster<K>(client: &Client, object: Value)
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let obj: K = serde_json::from_value(object).expect("valid object");
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    let name = created.meta().name.clone().expect("a name");
    assert!(created.meta().namespace.is_none());
    assert_eq!(
        api.get(&name).await.expect("get").meta().uid,
        created.meta().uid
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get_opt(&name).await.expect("get").is_none());
}

#[tokio::test]
async fn every_served_group_round_trips() {
    let sim = KubeSim::start().await.unwrap();
    let c = sim.client().unwrap();
    let tpl = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let sel = json!({"matchLabels": {"app": "x"}});
    round_trip::<Deployment>(
        &c,
        None,
        json!({"metadata": {"name": "d"}, "spec": {"selector": sel, "template": tpl}}),
    )
    .await;
    round_trip::<DaemonSet>(
        &c,
        Some("kube-system"),
        json!({"metadata": {"name": "d"}, "spec": {"selector": sel, "template": tpl}}),
    )
    .await;
    round_trip::<ReplicaSet>(
        &c,
        None,
        json!({"metadata": {"name": "r"}, "spec": {"selector": sel, "template": tpl}}),
    )
    .await;
    round_trip::<StatefulSet>(&c, None, json!({"metadata": {"name": "s"}, "spec": {"selector": sel, "template": tpl, "serviceName": "s"}})).await;
    round_trip::<PodDisruptionBudget>(
        &c,
        None,
        json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "selector": sel}}),
    )
    .await;
    round_trip::<Service>(
        &c,
        None,
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    round_trip::<Endpoints>(&c, None, json!({"metadata": {"name": "s"}})).await;
    round_trip::<EndpointSlice>(
        &c,
        None,
        json!({"metadata": {"name": "s-1"}, "addressType": "IPv4", "endpoints": []}),
    )
    .await;
    round_trip::<ConfigMap>(
        &c,
        None,
        json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
    )
    .await;
    round_trip::<PersistentVolumeClaim>(
        &c,
        None,
        json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"]}}),
    )
    .await;
    round_trip_cluster::<PersistentVolume>(
        &c,
        json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"}}}),
    )
    .await;
    round_trip_cluster::<VolumeAttachment>(&c, json!({"metadata": {"name": "va"}, "spec": {"attacher": "driver.longhorn.io", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}})).await;
    round_trip_cluster::<CSIDriver>(
        &c,
        json!({"metadata": {"name": "driver.longhorn.io"}, "spec": {}}),
    )
    .await;
    round_trip_cluster::<CSINode>(
        &c,
        json!({"metadata": {"name": "n1"}, "spec": {"drivers": []}}),
    )
    .await;
    round_trip_cluster::<ValidatingWebhookConfiguration>(&c, json!({"metadata": {"name": "w"}}))
        .await;
}

#[tokio::test]
async fn custom_resources_are_unstructured() {
    let sim = KubeSim::start().await.unwrap();
    let client = sim.client().unwrap();
    let gvk = GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease");
    let (ar, _) = kube::discovery::pinned_kind(&client, &gvk).await.unwrap();
    assert_eq!(ar.plural, "helmreleases");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "flux-system", &ar);
    // The namespace must exist first, as on a real cluster.
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "longhorn"}, "spec": {"chart": {"spec": {"chart": "longhorn"}}, "interval": "5m"}
    }))
    .unwrap();
    assert!(api.create(&PostParams::default(), &obj).await.is_err());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "flux-system"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let hr = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(hr.metadata.generation, Some(1));
    assert_eq!(hr.data["spec"]["interval"], "5m");
    // Status through the subresource; spec change bumps generation.
    let st = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "InstallFailed"}]}});
    api.patch_status("longhorn", &PatchParams::default(), &Patch::Merge(st))
        .await
        .unwrap();
    let hr = api
        .patch(
            "longhorn",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"interval": "10m"}})),
        )
        .await
        .unwrap();
    assert_eq!(hr.metadata.generation, Some(2));
    assert_eq!(
        hr.data["status"]["conditions"][0]["reason"],
        "InstallFailed"
    );
    // Custom resources take no strategic merge patch, as upstream.
    let err = api
        .patch(
            "longhorn",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"interval": "1m"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 415),
        "{err}"
    );
    // Longhorn's Node kind does not collide with the core Node.
    let lh = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("longhorn.io", "v1beta2", "Node"),
        "nodes",
    );
    let lhn: Api<DynamicObject> = Api::namespaced_with(client, "default", &lh);
    assert!(
        lhn.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn pagination_uses_a_consistent_snapshot() {
    let sim = KubeSim::start().await.unwrap();
    for i in 0..7 {
        sim.create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}})).unwrap();
    }
    let api: Api<ConfigMap> = Api::namespaced(sim.client().unwrap(), "default");
    let first = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let token = first.metadata.continue_.clone().unwrap();
    // Changes after the first page do not show up in later pages.
    sim.create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c9"}}))
        .unwrap();
    sim.delete("v1", "ConfigMap", "default", "c6").unwrap();
    let second = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    let third = api
        .list(
            &ListParams::default()
                .limit(3)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    let names: Vec<String> = [first.items, second.items, third.items]
        .concat()
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]);
    assert_eq!(third.metadata.continue_, None);
    assert_eq!(
        third.metadata.resource_version,
        first.metadata.resource_version
    );
    // Tokens stay valid (a pager may retry a page); an unknown one is
    // answered like one from before a compaction: 410 Expired.
    let again = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(again.items[0].metadata.name.as_deref(), Some("c3"));
    let gone = api
        .list(&ListParams::default().limit(3).continue_token("5eed.3"))
        .await
        .unwrap_err();
    assert!(
        matches!(gone, kube::Error::Api(ref s) if s.code == 410 && s.reason == "Expired"),
        "{gone}"
    );
}

#[tokio::test]
async fn bookmarks_and_timeouts() {
    let sim = KubeSim::with_options(Options {
        bookmark_interval: Duration::from_millis(100),
        ..Options::default()
    })
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(sim.client().unwrap(), "default");
    let rv = sim.resource_version().to_string();
    let mut s = api
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            }
            .timeout(1),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    sim.create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
        .unwrap();
    let mut added = false;
    let mut bookmark_rv = 0u64;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), s.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match ev {
            WatchEvent::Added(_) => added = true,
            WatchEvent::Bookmark(b) => bookmark_rv = b.metadata.resource_version.parse().unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }
    // The stream ended by itself after timeoutSeconds.
    assert!(added);
    assert_eq!(
        bookmark_rv,
        sim.resource_version(),
        "bookmarks carry the current resourceVersion"
    );
    // Without allowWatchBookmarks, none are sent.
    let rv = sim.resource_version().to_string();
    let mut s = api
        .watch(&WatchParams::default().disable_bookmarks().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), s.try_next())
            .await
            .unwrap()
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let sim = KubeSim::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(sim.client().unwrap(), "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "c", "finalizers": ["rebootguard.io/cleanup"]}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let pending = api
        .delete("c", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    let err = api
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["rebootguard.io/cleanup", "x/y"]}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err}"
    );
    assert!(api.get_opt("c").await.unwrap().is_some());
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("c").await.unwrap().is_none());
}

#[tokio::test]
async fn eviction_binding_and_held_termination() {
    let sim = KubeSim::with_options(Options {
        pod_termination: PodTermination::Hold,
        ..Options::default()
    })
    .await
    .unwrap();
    // kube retries 429s by default; this test wants to see the first one.
    let mut cfg = sim.config();
    cfg.default_retry = false;
    let client = Client::try_from(cfg).unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b"] {
        sim.create(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap();
    }
    sim.create(&json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}))
    .unwrap();
    pods.evict("a", &EvictParams::default()).await.unwrap();
    let a = pods.get("a").await.unwrap();
    assert!(
        a.metadata.deletion_timestamp.is_some(),
        "evicted pods terminate gracefully"
    );
    let err = pods.evict("b", &EvictParams::default()).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 429);
            assert!(s.message.contains("disruption budget"), "{}", s.message);
        }
        other => panic!("{other}"),
    }
    // With Hold, the terminating pod stays until a zero-grace delete.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(pods.get_opt("a").await.unwrap().is_some());
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(pods.get_opt("a").await.unwrap().is_none());

    // Binding an unscheduled pod.
    let p: Pod = serde_json::from_value(
        json!({"metadata": {"name": "u"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .unwrap();
    let created = pods.create(&PostParams::default(), &p).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    let bind = |node: &str| {
        http::Request::post("/api/v1/namespaces/default/pods/u/binding")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "u"}, "target": {"kind": "Node", "name": node}})).unwrap())
            .unwrap()
    };
    client.request_text(bind("n2")).await.unwrap();
    assert_eq!(
        pods.get("u")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .as_deref(),
        Some("n2")
    );
    assert!(
        client.request_text(bind("n3")).await.is_err(),
        "a bound pod cannot be bound again"
    );
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let sim = KubeSim::start().await.unwrap();
    let client = sim.client().unwrap();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "tmp"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "tmp");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    Api::<Namespace>::all(client)
        .delete("tmp", &DeleteParams::default())
        .await
        .unwrap();
    assert!(sim.get("v1", "ConfigMap", "tmp", "c").is_none());
    assert!(sim.get("v1", "Namespace", "", "tmp").is_none());
}

#[tokio::test]
async fn http_control_api() {
    let sim = KubeSim::start().await.unwrap();
    let client = sim.client().unwrap();
    let post = |path: &str| {
        http::Request::post(path.to_owned())
            .body(Vec::new())
            .unwrap()
    };
    let mut cfg = sim.config();
    cfg.default_retry = false;
    let strict = Client::try_from(cfg).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(strict, "default");

    client
        .request_text(post("/kubesim/fail?count=1&code=503&verb=list"))
        .await
        .unwrap();
    let err = cms.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 503),
        "{err}"
    );
    cms.list(&ListParams::default()).await.unwrap();

    client
        .request_text(post("/kubesim/latency?ms=400&resource=configmaps"))
        .await
        .unwrap();
    let t = std::time::Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(400));
    client
        .request_text(post("/kubesim/faults/clear"))
        .await
        .unwrap();

    let counts: Value = serde_json::from_str(
        &client
            .request_text(post("/kubesim/requests"))
            .await
            .unwrap(),
    )
    .unwrap();
    let lists = counts["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["verb"] == "list" && r["resource"] == "configmaps")
        .unwrap();
    assert_eq!(lists["count"], 3);
    let bad = client
        .request_text(post("/kubesim/fail?code=404"))
        .await
        .unwrap_err();
    assert!(
        matches!(bad, kube::Error::Api(ref s) if s.code == 400),
        "{bad}"
    );

    // Down for a moment, then up again on its own.
    client
        .request_text(post("/kubesim/down?seconds=0.5"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!sim.is_up());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(sim.is_up());
    cms.list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn recorder_events_are_read_through_both_event_apis() {
    use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
    use k8s_openapi::api::events::v1::Event as NewEvent;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let sim = KubeSim::start().await.unwrap();
    let client = sim.client().unwrap();
    let new_api: Api<NewEvent> = Api::namespaced(client.clone(), "default");
    let rv = sim.resource_version().to_string();
    let mut watch = new_api
        .watch(
            &WatchParams::default()
                .fields("regarding.name=n1")
                .timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "rebootguard-agent".into(),
            instance: Some("n1".into()),
        },
    );
    let node = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some("n1".into()),
        ..Default::default()
    };
    let ev = Event {
        type_: EventType::Warning,
        reason: "SubnetEnvMissing".into(),
        note: Some("/run/flannel/subnet.env is missing".into()),
        action: "Check".into(),
        secondary: None,
    };
    recorder.publish(&ev, &node).await.unwrap();
    recorder.publish(&ev, &node).await.unwrap();

    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let got = core
        .list(&ListParams::default().fields("involvedObject.name=n1,reason=SubnetEnvMissing"))
        .await
        .unwrap();
    assert_eq!(got.items.len(), 1, "the second publish updates the series");
    let e = &got.items[0];
    assert_eq!(
        e.message.as_deref(),
        Some("/run/flannel/subnet.env is missing")
    );
    assert_eq!(e.reporting_component.as_deref(), Some("rebootguard-agent"));
    assert_eq!(e.series.as_ref().unwrap().count, Some(2));

    let got = new_api
        .list(
            &ListParams::default()
                .fields("regarding.kind=Node,reportingController=rebootguard-agent"),
        )
        .await
        .unwrap();
    assert_eq!(got.items.len(), 1);
    assert_eq!(
        got.items[0].note.as_deref(),
        Some("/run/flannel/subnet.env is missing")
    );
    assert_eq!(
        got.items[0].regarding.as_ref().unwrap().name.as_deref(),
        Some("n1")
    );

    // A core event written by a kubelet shows up in the new API's watch.
    sim.create(&json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "kubelet.1", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "Rebooted", "message": "Node n1 has been rebooted", "type": "Warning"}))
    .unwrap();
    let mut reasons = Vec::new();
    while reasons.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(5), watch.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(e) | WatchEvent::Modified(e) => {
                assert!(
                    e.regarding.is_some(),
                    "watch objects are in the events.k8s.io form"
                );
                reasons.push(e.reason.unwrap_or_default());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        reasons,
        ["SubnetEnvMissing", "SubnetEnvMissing", "Rebooted"]
    );
}

#[tokio::test]
async fn delete_collection_honours_selectors() {
    let sim = KubeSim::start().await.unwrap();
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        sim.create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}})).unwrap();
    }
    let api: Api<ConfigMap> = Api::namespaced(sim.client().unwrap(), "default");
    let out = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=web"),
        )
        .await
        .unwrap();
    let deleted: Vec<String> = out
        .left()
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(deleted, ["a", "b"]);
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);
    assert_eq!(sim.request_count("deletecollection", "configmaps"), 1);
}

#[tokio::test]
async fn metadata_only_reads() {
    let sim = KubeSim::start().await.unwrap();
    for name in ["a", "b"] {
        sim.create(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}}))
        .unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(sim.client().unwrap(), "default");
    let m = pods.get_metadata("a").await.unwrap();
    assert_eq!(m.metadata.labels.unwrap()["app"], "web");
    assert_eq!(m.types.unwrap().kind, "PartialObjectMetadata");
    let list = pods
        .list_metadata(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 2);
    let rv = list.metadata.resource_version.unwrap();
    let mut w = pods
        .watch_metadata(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    sim.patch(
        "v1",
        "Pod",
        "default",
        "b",
        kubesim::patch::Kind::Merge,
        &json!({"metadata": {"labels": {"app": "db"}}}),
    )
    .unwrap();
    match tokio::time::timeout(Duration::from_secs(5), w.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Modified(m) => assert_eq!(m.metadata.labels.unwrap()["app"], "db"),
        other => panic!("unexpected {other:?}"),
    }
    // A raw request shows that no spec or status is sent.
    let client = sim.client().unwrap();
    let raw = client
        .request_text(
            http::Request::get("/api/v1/namespaces/default/pods/a")
                .header(
                    "accept",
                    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
                )
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&raw).unwrap();
    assert!(v.get("spec").is_none() && v.get("status").is_none(), "{v}");
}
