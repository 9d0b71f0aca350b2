//! kube-rs against kubesim: discovery, CRUD, selectors, conflicts, patches,
//! deletes, watches, fault injection and the kubeconfig file.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kubesim::KubeSim;
use kubesim::faults::{Failure, Route};
use serde_json::json;

fn node(name: &str, cidr: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": "a"}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastTransitionTime": "2026-01-31T07:00:00Z"},
            {"type": "MemoryPressure", "status": "False", "lastTransitionTime": "2026-01-31T07:00:00Z"}
        ]}
    })
}

fn pod(name: &str, node: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running"}
    })
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
async fn version_and_discovery() {
    let sim = KubeSim::start().await.unwrap();
    let client = sim.client().unwrap();
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let minor: u32 = v.minor.parse().unwrap();
    assert!(
        (27..=33).contains(&minor),
        "kubectl's dispatcher needs a minor in 27..=33, got {minor}"
    );
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
    assert!(
        groups.iter().any(|g| g.is_empty()),
        "core group missing: {groups:?}"
    );
    assert!(
        groups.iter().any(|g| g == "coordination.k8s.io"),
        "{groups:?}"
    );
    let (lease, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "coordination.k8s.io",
            "v1",
            "Lease",
        ))
        .unwrap();
    assert_eq!(lease.plural, "leases");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let namespaces: Api<Namespace> = Api::all(client);
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
}

#[tokio::test]
async fn seeded_node_is_read_with_its_pod_cidr() {
    let sim = KubeSim::start().await.unwrap();
    sim.create(&node("n1", "10.42.1.0/24")).unwrap();
    let nodes: Api<Node> = Api::all(sim.client().unwrap());
    let n = nodes.get("n1").await.unwrap();
    let spec = n.spec.unwrap();
    assert_eq!(spec.pod_cidr.as_deref(), Some("10.42.1.0/24"));
    assert_eq!(spec.pod_cidrs.unwrap(), ["10.42.1.0/24"]);
    assert!(n.metadata.uid.is_some());
    assert!(n.metadata.creation_timestamp.is_some());
    let rv: u64 = n.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv > 0);
    let err = nodes.get("nope").await.unwrap_err();
    assert_eq!(api_code(&err), Some(404));
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, "nodes \"nope\" not found");
        }
        other => panic!("expected a Status, got {other:?}"),
    }
}

#[tokio::test]
async fn list_selectors() {
    let sim = KubeSim::start().await.unwrap();
    for (i, zone) in ["a", "b", "c"].iter().enumerate() {
        let mut n = node(&format!("n{i}"), &format!("10.42.{i}.0/24"));
        n["metadata"]["labels"]["zone"] = (*zone).into();
        sim.create(&n).unwrap();
    }
    sim.create(&pod("p1", "n1")).unwrap();
    sim.create(&pod("p2", "n2")).unwrap();
    let mut p3 = pod("p3", "n1");
    p3["status"]["phase"] = "Failed".into();
    p3["metadata"]["labels"]["app"] = "db".into();
    sim.create(&p3).unwrap();
    let client = sim.client().unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let names = |l: Vec<Node>| {
        l.into_iter()
            .filter_map(|n| n.metadata.name)
            .collect::<Vec<_>>()
    };
    let by = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(nodes.list(&by("zone in (a,c)")).await.unwrap().items),
        ["n0", "n2"]
    );
    assert_eq!(
        names(nodes.list(&by("zone!=a")).await.unwrap().items),
        ["n1", "n2"]
    );
    assert_eq!(
        names(
            nodes
                .list(&by("zone notin (a,b),zone"))
                .await
                .unwrap()
                .items
        ),
        ["n2"]
    );
    assert_eq!(
        names(nodes.list(&by("!zone")).await.unwrap().items),
        Vec::<String>::new()
    );
    let one = nodes
        .list(&ListParams::default().fields("metadata.name=n1"))
        .await
        .unwrap();
    assert_eq!(names(one.items), ["n1"]);
    let list_rv: u64 = one.metadata.resource_version.unwrap().parse().unwrap();
    assert_eq!(list_rv, sim.resource_version());

    let pods: Api<Pod> = Api::all(client.clone());
    let on_n1 = pods
        .list(&ListParams::default().fields("spec.nodeName=n1,status.phase!=Failed"))
        .await
        .unwrap();
    assert_eq!(on_n1.items.len(), 1);
    assert_eq!(on_n1.items[0].metadata.name.as_deref(), Some("p1"));
    let web: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        web.list(&ListParams::default().labels("app==web"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let other: Api<Pod> = Api::namespaced(client, "kube-system");
    assert!(
        other
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let err = pods
        .list(&ListParams::default().fields("spec.bogus=1"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), Some(400));
}

#[tokio::test]
async fn create_update_and_conflict() {
    let sim = KubeSim::start().await.unwrap();
    let client = sim.client().unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(
        created.metadata.namespace.as_deref(),
        Some("kube-node-lease")
    );
    let err = leases
        .create(&PostParams::default(), &lease)
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), Some(409));

    let mut fresh = created.clone();
    fresh.spec.as_mut().unwrap().holder_identity = Some("agent-a".into());
    let updated = leases
        .replace("n1", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    // The same stale resourceVersion again: someone else won.
    let mut stale = created;
    stale.spec.as_mut().unwrap().holder_identity = Some("agent-b".into());
    let err = leases
        .replace("n1", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), Some(409));
    let now = leases.get("n1").await.unwrap();
    assert_eq!(
        now.spec.unwrap().holder_identity.as_deref(),
        Some("agent-a")
    );

    let ghost: Api<Pod> = Api::namespaced(client, "no-such-namespace");
    let mut p = pod("x", "n1");
    p["metadata"]["namespace"].take();
    let p: Pod = serde_json::from_value(p).unwrap();
    let err = ghost.create(&PostParams::default(), &p).await.unwrap_err();
    assert_eq!(api_code(&err), Some(404), "{err}");
}

#[tokio::test]
async fn node_patches() {
    let sim = KubeSim::start().await.unwrap();
    sim.create(&node("n1", "10.42.1.0/24")).unwrap();
    let client = sim.client().unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let pp = PatchParams::default();

    // Strategic merge on status.conditions: merged by type.
    let cond = json!({"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "CNINotReady", "lastTransitionTime": "2026-01-31T07:01:00Z"},
        {"type": "rebootguard.io/CNIHealthy", "status": "False", "reason": "SubnetEnvMissing", "lastTransitionTime": "2026-01-31T07:01:00Z"}
    ]}});
    let n = nodes
        .patch_status("n1", &pp, &Patch::Strategic(cond))
        .await
        .unwrap();
    let conds = n.status.unwrap().conditions.unwrap();
    let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        ["Ready", "MemoryPressure", "rebootguard.io/CNIHealthy"]
    );
    assert_eq!(conds[0].status, "False");

    // Status changes through the main resource are ignored, as upstream.
    let sneaky = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let n = nodes.patch("n1", &pp, &Patch::Merge(sneaky)).await.unwrap();
    assert_eq!(n.status.unwrap().conditions.unwrap()[0].status, "False");

    // Taints: the list is replaced, so removing one works.
    let taints = json!({"spec": {"taints": [
        {"key": "rebootguard.io/cni-not-ready", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    ]}});
    nodes
        .patch("n1", &pp, &Patch::Strategic(taints))
        .await
        .unwrap();
    let one = json!({"spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}});
    let n = nodes
        .patch("n1", &pp, &Patch::Strategic(one))
        .await
        .unwrap();
    let spec = n.spec.unwrap();
    assert_eq!(spec.taints.unwrap().len(), 1);
    assert_eq!(spec.pod_cidr.as_deref(), Some("10.42.1.0/24"));

    // JSON patch with a failing test is refused and changes nothing.
    // (Sent raw: kube's typed JSON patch needs a feature we do not enable.)
    let json_patch = |ops: serde_json::Value| {
        http::Request::patch("/api/v1/nodes/n1")
            .header("content-type", "application/json-patch+json")
            .body(serde_json::to_vec(&ops).unwrap())
            .unwrap()
    };
    let failing = json!([
        {"op": "test", "path": "/spec/podCIDR", "value": "10.42.9.0/24"},
        {"op": "replace", "path": "/spec/podCIDR", "value": "10.42.2.0/24"}
    ]);
    let err = client
        .request::<Node>(json_patch(failing))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), Some(422), "{err}");
    assert_eq!(
        nodes
            .get("n1")
            .await
            .unwrap()
            .spec
            .unwrap()
            .pod_cidr
            .as_deref(),
        Some("10.42.1.0/24")
    );
    let passing = json!([
        {"op": "test", "path": "/spec/podCIDR", "value": "10.42.1.0/24"},
        {"op": "add", "path": "/metadata/labels/rebootguard.io~1checked", "value": "yes"}
    ]);
    let n = client.request::<Node>(json_patch(passing)).await.unwrap();
    assert_eq!(n.metadata.labels.unwrap()["rebootguard.io/checked"], "yes");

    // Patch with a resourceVersion precondition.
    let stale = json!({"metadata": {"resourceVersion": "1"}, "spec": {"unschedulable": true}});
    let err = nodes
        .patch("n1", &pp, &Patch::Merge(stale))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), Some(409));
}

#[tokio::test]
async fn deletes_graceful_and_immediate() {
    let sim = KubeSim::start().await.unwrap();
    sim.create(&pod("p1", "n1")).unwrap();
    sim.create(&pod("p2", "n1")).unwrap();
    let pods: Api<Pod> = Api::namespaced(sim.client().unwrap(), "default");
    let out = pods.delete("p1", &DeleteParams::default()).await.unwrap();
    let terminating = out.left().expect("a graceful delete returns the pod");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(1));
    // The simulated kubelet finishes the deletion after the grace period.
    tokio::time::timeout(Duration::from_secs(5), async {
        while pods.get_opt("p1").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the pod goes once its grace period ends");
    pods.delete("p2", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(pods.get_opt("p2").await.unwrap().is_none());
    assert_eq!(
        api_code(
            &pods
                .delete("p2", &DeleteParams::default())
                .await
                .unwrap_err()
        ),
        Some(404)
    );
}

#[tokio::test]
async fn watch_streams_changes() {
    let sim = KubeSim::start().await.unwrap();
    sim.create(&node("n1", "10.42.1.0/24")).unwrap();
    let nodes: Api<Node> = Api::all(sim.client().unwrap());
    let list = nodes.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = nodes
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    sim.create(&node("n2", "10.42.2.0/24")).unwrap();
    nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    nodes.delete("n2", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("an event within 5s")
            .unwrap()
            .expect("stream open");
        seen.push(match ev {
            WatchEvent::Added(n) => format!("ADDED {}", n.metadata.name.unwrap()),
            WatchEvent::Modified(n) => format!("MODIFIED {}", n.metadata.name.unwrap()),
            WatchEvent::Deleted(n) => format!("DELETED {}", n.metadata.name.unwrap()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["ADDED n2", "MODIFIED n1", "DELETED n2"]);

    // A watch narrowed by a field selector sees only its object.
    let events: Api<Event> = Api::namespaced(sim.client().unwrap(), "default");
    let wp = WatchParams::default()
        .fields("involvedObject.name=n1")
        .timeout(10);
    let mut stream = events.watch(&wp, "0").await.unwrap().boxed();
    for (i, obj) in ["n2", "n1"].iter().enumerate() {
        sim.create(&json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("e{i}"), "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": obj}, "reason": "Rebooted", "type": "Warning"}))
        .unwrap();
    }
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Added(e) => assert_eq!(e.involved_object.name.as_deref(), Some("n1")),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_from_compacted_version_is_410() {
    let sim = KubeSim::with_options(kubesim::Options {
        history: 5,
        ..kubesim::Options::default()
    })
    .await
    .unwrap();
    for i in 0..20 {
        sim.create(&node(&format!("n{i}"), "10.42.0.0/24")).unwrap();
    }
    let nodes: Api<Node> = Api::all(sim.client().unwrap());
    // As the apiserver does, the watch opens and its first event is an
    // ERROR carrying the 410 Status.
    let mut stream = nodes
        .watch(&WatchParams::default(), "3")
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await {
        Ok(Some(WatchEvent::Error(e))) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // A forced expiry looks the same, on a fresh resourceVersion.
    sim.expire_next_watches(1);
    let rv = sim.resource_version().to_string();
    let mut stream = nodes
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let got = stream.try_next().await;
    assert!(
        matches!(&got, Ok(Some(WatchEvent::Error(e))) if e.code == 410),
        "{got:?}"
    );
}

#[tokio::test]
async fn injected_latency_and_errors() {
    let sim = KubeSim::start().await.unwrap();
    sim.create(&node("n1", "10.42.1.0/24")).unwrap();
    let nodes: Api<Node> = Api::all(sim.client().unwrap());

    sim.add_latency(Route::new("get", "nodes"), Duration::from_secs(3));
    let slow = tokio::time::timeout(Duration::from_millis(500), nodes.get("n1")).await;
    assert!(slow.is_err(), "a 3s latency must outlast a 500ms bound");
    sim.clear_faults();
    nodes.get("n1").await.unwrap();

    sim.fail_next(Route::resource("nodes"), 1, Failure::Internal);
    let err = nodes.get("n1").await.unwrap_err();
    assert_eq!(api_code(&err), Some(500));
    nodes.get("n1").await.unwrap();

    // kube retries 503 and 429 by default: the request succeeds on the
    // third try, and kubesim counts all three.
    sim.reset_requests();
    sim.fail_next(Route::new("get", "nodes"), 1, Failure::Unavailable);
    sim.fail_next(
        Route::new("get", "nodes"),
        1,
        Failure::TooManyRequests { retry_after: 0 },
    );
    nodes.get("n1").await.unwrap();
    assert_eq!(sim.request_count("get", "nodes"), 3);

    let mut no_retry = sim.config();
    no_retry.default_retry = false;
    let strict: Api<Node> = Api::all(Client::try_from(no_retry).unwrap());
    sim.fail_next(Route::any(), 2, Failure::TooManyRequests { retry_after: 7 });
    let err = strict.get("n1").await.unwrap_err();
    assert_eq!(api_code(&err), Some(429));
    assert_eq!(
        api_code(&strict.list(&ListParams::default()).await.unwrap_err()),
        Some(429)
    );
    strict.get("n1").await.unwrap();

    // A cut connection is no answer at all: a transport error, not a Status.
    sim.fail_next(Route::new("get", "nodes"), 1, Failure::Cut);
    let err = strict.get("n1").await.unwrap_err();
    assert!(api_code(&err).is_none(), "{err:?}");
    strict.get("n1").await.unwrap();
}

#[tokio::test]
async fn down_and_up_on_the_same_port() {
    let sim = KubeSim::start().await.unwrap();
    sim.create(&node("n1", "10.42.1.0/24")).unwrap();
    let addr = sim.addr();
    let mut cfg = sim.config();
    cfg.default_retry = false;
    let nodes: Api<Node> = Api::all(Client::try_from(cfg).unwrap());
    nodes.get("n1").await.unwrap();
    sim.down().await;
    assert!(!sim.is_up());
    let err = nodes.get("n1").await.unwrap_err();
    assert_eq!(
        api_code(&err),
        None,
        "a down server gives a transport error, not a Status: {err}"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port refuses connections"
    );
    sim.up().unwrap();
    assert_eq!(sim.addr(), addr);
    let n = nodes.get("n1").await.unwrap();
    assert_eq!(
        n.spec.unwrap().pod_cidr.as_deref(),
        Some("10.42.1.0/24"),
        "state survives"
    );
}

#[tokio::test]
async fn kubeconfig_file_builds_a_working_client() {
    let sim = KubeSim::start().await.unwrap();
    sim.create(&node("n1", "10.42.1.0/24")).unwrap();
    let kc = Kubeconfig::read_from(sim.kubeconfig_path()).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(cfg.default_namespace, "default");
    let nodes: Api<Node> = Api::all(Client::try_from(cfg).unwrap());
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// A kube client that sends `agent` as its `User-Agent` (kube-rs sends none
/// by default; `Config::headers` adds one to every request).
fn client_as(sim: &KubeSim, agent: &'static str) -> Client {
    let mut cfg = sim.config();
    cfg.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(agent),
    ));
    Client::try_from(cfg).expect("client")
}

#[tokio::test]
async fn requests_are_counted_per_user_agent() {
    let sim = KubeSim::start().await.unwrap();
    sim.create(&node("n1", "10.42.1.0/24")).unwrap();
    let agent: Api<Node> = Api::all(client_as(&sim, "rebootguard-agent/0.1.0"));
    let other: Api<Node> = Api::all(client_as(&sim, "kubectl/v1.33.1"));
    let anonymous: Api<Node> = Api::all(sim.client().unwrap());
    sim.reset_requests();
    for _ in 0..3 {
        agent.get("n1").await.unwrap();
    }
    agent
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"status": {"conditions": [{"type": "PodNetworkReady", "status": "True"}]}}),
            ),
        )
        .await
        .unwrap();
    other.get("n1").await.unwrap();
    other.list(&ListParams::default()).await.unwrap();
    anonymous.get("n1").await.unwrap();

    // The old views sum over agents.
    assert_eq!(sim.request_count("get", "nodes"), 5);
    assert_eq!(
        sim.requests()[&("get".to_owned(), "nodes".to_owned())],
        5,
        "{:?}",
        sim.requests()
    );
    // The new one splits them.
    let row = |a: &str, v: &str, r: &str, n: u64| (a.to_owned(), v.to_owned(), r.to_owned(), n);
    assert_eq!(
        sim.requests_by_agent(),
        [
            row("", "get", "nodes", 1),
            row("kubectl/v1.33.1", "get", "nodes", 1),
            row("kubectl/v1.33.1", "list", "nodes", 1),
            row("rebootguard-agent/0.1.0", "get", "nodes", 3),
            row("rebootguard-agent/0.1.0", "patch", "nodes/status", 1),
        ]
    );
    assert_eq!(sim.request_count_by_agent("rebootguard-agent/0.1.0"), 4);
    assert_eq!(sim.request_count_by_agent("nobody"), 0);

    // And the control API shows (and filters by) the agent.
    let text = raw_get(&sim, "/kubesim/requests").await;
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = rows["requests"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r["userAgent"] == "rebootguard-agent/0.1.0"
                && r["verb"] == "get"
                && r["resource"] == "nodes"
                && r["count"] == 3)
    );
    let text = raw_get(&sim, "/kubesim/requests?userAgent=kubectl%2Fv1.33.1").await;
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rows["requests"].as_array().unwrap().len(), 2, "{rows}");
}

/// A plain HTTP/1.1 GET without a `User-Agent` (the control API is not counted).
async fn raw_get(sim: &KubeSim, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8(out).expect("utf-8");
    let body = text
        .split_once("\r\n\r\n")
        .expect("headers end")
        .1
        .to_owned();
    // hyper may chunk the body: keep the JSON between the first { and the last }.
    let start = body.find('{').expect("a JSON body");
    let end = body.rfind('}').expect("a JSON body");
    body[start..=end].to_owned()
}
