//! Loading every supported input, and failing clearly (never panicking) on
//! garbage, truncated and mixed-version input.

mod common;

use proptest::prelude::*;
use rebootguard_diagnose::load::{self, Error};
use rebootguard_diagnose::snapshot::Builder;
use serde_json::json;

use common::kube::{self, PodB, State};

fn pod(name: &str) -> serde_json::Value {
    PodB::deployment("apps", name, "6d7f8c9b5", "x1", "node1", "img:1").build()
}

#[test]
fn empty_and_whitespace_are_rejected() {
    assert!(matches!(load::load(b""), Err(Error::Empty)));
    assert!(matches!(load::load(b" \n\t "), Err(Error::Empty)));
    assert!(
        load::load(b"")
            .expect_err("must fail")
            .to_string()
            .contains("kubectl get -A -o json")
    );
}

#[test]
fn truncated_json_names_the_document_and_position() {
    let full = serde_json::to_vec(&kube::list_doc(&[pod("a"), pod("b")])).expect("json");
    let err = load::load(&full[..full.len() / 2]).expect_err("must fail");
    assert!(matches!(err, Error::Scan { .. }), "{err:?}");
    let text = rebootguard_errors::chain(&err);
    assert!(
        text.contains("truncated") && text.contains("at byte"),
        "{text}"
    );
}

#[test]
fn non_kubernetes_json_is_rejected() {
    let err = load::load(br#"{"hello": "world"}"#).expect_err("must fail");
    assert!(matches!(err, Error::NotKubernetes { .. }), "{err:?}");
    assert!(err.to_string().contains("keys: hello"), "{err}");
    let err = load::load(b"42").expect_err("must fail");
    assert!(err.to_string().contains("a number"), "{err}");
    let err = load::load(b"just some words: not yaml for kubernetes").expect_err("must fail");
    assert!(
        matches!(err, Error::NotKubernetes { .. } | Error::ParseYaml { .. }),
        "{err:?}"
    );
}

#[test]
fn snapshot_of_an_unknown_version_is_rejected() {
    let doc = json!({"apiVersion": "rebootguard.io/v2", "kind": "Snapshot", "pods": []});
    let err = load::load(&serde_json::to_vec(&doc).expect("json")).expect_err("must fail");
    assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err:?}");
    assert!(err.to_string().contains("rebootguard.io/v2"));
}

#[test]
fn object_with_a_wrong_field_type_names_kind_and_name() {
    let mut p = pod("broken");
    p["status"]["containerStatuses"][0]["restartCount"] = json!("many");
    let err = load::load(&serde_json::to_vec(&kube::list_doc(&[p])).expect("json"))
        .expect_err("must fail");
    let text = rebootguard_errors::chain(&err);
    assert!(matches!(err, Error::Object { .. }), "{err:?}");
    assert!(
        text.contains("Pod") && text.contains("broken-6d7f8c9b5-x1"),
        "{text}"
    );
}

#[test]
fn corrupt_gzip_is_rejected() {
    let mut gz = rebootguard_diagnose::Snapshot::default()
        .to_gzip()
        .expect("gzip");
    let n = gz.len();
    gz.truncate(n - 6);
    let err = load::load(&gz).expect_err("must fail");
    assert!(matches!(err, Error::Decompress(_)), "{err:?}");
}

#[test]
fn concatenated_lists_single_objects_and_typed_lists() {
    let a = serde_json::to_string(&kube::list_doc(&[pod("a")])).expect("json");
    let b = serde_json::to_string_pretty(&pod("b")).expect("json");
    // A PodList from the API: items carry no kind.
    let mut bare = pod("c");
    bare.as_object_mut().expect("object").remove("kind");
    let typed =
        serde_json::to_string(&json!({"apiVersion": "v1", "kind": "PodList", "items": [bare]}))
            .expect("json");
    let node = kube::NodeB {
        name: "n1",
        cidr: "10.42.0.0/24",
        ip: "192.168.1.1",
        boot_id: "b".into(),
        ready: "True",
        ready_since: "2026-01-01T00:00:00Z",
        created: "2026-01-01T00:00:00Z",
    }
    .build();
    let text = format!(
        "{a}\n{b}\n{typed}{}",
        serde_json::to_string(&node).expect("json")
    );
    let snap = load::load(text.as_bytes()).expect("loads");
    let mut names: Vec<&str> = snap.pods.iter().map(|p| p.metadata.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["a-6d7f8c9b5-x1", "b-6d7f8c9b5-x1", "c-6d7f8c9b5-x1"]
    );
    assert_eq!(snap.nodes.len(), 1);
    assert_eq!(snap.nodes[0].status.node_info.boot_id, "b");
}

#[test]
fn multi_document_yaml_with_empty_documents() {
    let p = serde_saphyr::to_string(&pod("a")).expect("yaml");
    let l = serde_saphyr::to_string(&kube::list_doc(&[pod("b")])).expect("yaml");
    let text = format!("---\n{p}---\n---\n{l}");
    let snap = load::load(text.as_bytes()).expect("loads");
    assert_eq!(snap.pods.len(), 2);
}

#[test]
fn unknown_kinds_are_counted_not_fatal() {
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "a"}, "spec": {}});
    let snap = load::load(&serde_json::to_vec(&kube::list_doc(&[dep, pod("a")])).expect("json"))
        .expect("loads");
    assert_eq!(snap.pods.len(), 1);
    assert_eq!(snap.ignored.get("Deployment.apps"), Some(&1));
}

#[test]
fn the_same_event_from_both_apis_counts_once() {
    let core = kube::event(
        "apps",
        ("Pod", "apps", "a"),
        "FailedCreatePodSandBox",
        "Warning",
        "(combined from similar events): Failed to create pod sandbox: x",
        17,
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:10:00Z",
        ("kubelet", "n1"),
    );
    let v1 = kube::event_v1(&core);
    let text = format!(
        "{}\n{}",
        serde_json::to_string(&kube::list_doc(&[core])).expect("json"),
        serde_json::to_string(&kube::list_doc(&[v1])).expect("json")
    );
    let snap = load::load(text.as_bytes()).expect("loads");
    assert_eq!(snap.events.len(), 1);
    let e = &snap.events[0];
    assert_eq!(e.count, 17);
    assert_eq!(e.message, "Failed to create pod sandbox: x");
    assert_eq!(e.source.host, "n1");
    assert_eq!(e.involved_object.name, "a");
}

#[test]
fn events_k8s_io_series_give_count_and_last_time() {
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "a.1", "namespace": "apps", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "series": {"count": 42, "lastObservedTime": "2026-01-01T01:00:00.000000Z"},
        "regarding": {"kind": "Pod", "namespace": "apps", "name": "a"}, "reason": "BackOff", "note": "Back-off restarting", "type": "Warning",
        "reportingController": "kubelet", "reportingInstance": "n1"});
    let snap = load::load(&serde_json::to_vec(&ev).expect("json")).expect("loads");
    let e = &snap.events[0];
    assert_eq!(e.count, 42);
    assert_eq!(
        e.last_seen.map(|t| t.to_string()).as_deref(),
        Some("2026-01-01T01:00:00Z")
    );
    assert_eq!(e.source.component, "kubelet");
}

#[test]
fn cluster_info_dump_directory() {
    let nodes = serde_json::to_vec(&json!({"kind": "NodeList", "apiVersion": "v1", "items": [
        kube::NodeB { name: "n1", cidr: "10.42.0.0/24", ip: "192.168.1.1", boot_id: "b".into(), ready: "True", ready_since: "2026-01-01T00:00:00Z", created: "2026-01-01T00:00:00Z" }.build()
    ]})).expect("json");
    let pods =
        serde_json::to_vec(&json!({"kind": "PodList", "apiVersion": "v1", "items": [pod("a")]}))
            .expect("json");
    let events = serde_json::to_vec(&json!({"kind": "EventList", "apiVersion": "v1", "items": []}))
        .expect("json");
    let logs = b"2026-01-01T00:00:00Z info starting\n2026-01-01T00:00:01Z error dial tcp: lookup db on 10.43.0.10:53: no such host\n".to_vec();
    let files: Vec<(&str, &[u8])> = vec![
        ("nodes.json", &nodes),
        ("apps/pods.json", &pods),
        ("apps/events.json", &events),
        ("apps/a-6d7f8c9b5-x1/logs.txt", &logs),
        (
            "apps/replicasets.json",
            b"{\"kind\":\"ReplicaSetList\",\"apiVersion\":\"apps/v1\",\"items\":[]}",
        ),
    ];
    let snap = load::dump(files).expect("loads");
    assert_eq!((snap.nodes.len(), snap.pods.len()), (1, 1));
    assert_eq!(snap.log_excerpts.len(), 1);
    assert_eq!(snap.log_excerpts[0].pod, "a-6d7f8c9b5-x1");
    assert_eq!(
        snap.log_excerpts[0].lines.len(),
        1,
        "only the error line is kept"
    );
    let err = load::dump(vec![(
        "apps/pods.json",
        &b"{\"kind\": \"PodList\", \"items\": [{"[..],
    )])
    .expect_err("must fail");
    assert!(
        rebootguard_errors::chain(&err).contains("apps/pods.json"),
        "{}",
        rebootguard_errors::chain(&err)
    );
}

#[test]
fn cluster_info_dump_on_stdout_with_log_sections() {
    let pods = serde_json::to_string_pretty(
        &json!({"kind": "PodList", "apiVersion": "v1", "items": [pod("a")]}),
    )
    .expect("json");
    let text = format!(
        "{pods}\n==== START logs for container a of pod apps/a-6d7f8c9b5-x1 ====\nE0101 panic: lookup db: no such host\n==== END logs for container a of pod apps/a-6d7f8c9b5-x1 ====\n{}\n",
        serde_json::to_string(&json!({"kind": "EventList", "apiVersion": "v1", "items": []}))
            .expect("json")
    );
    let snap = load::load(text.as_bytes()).expect("loads");
    assert_eq!(snap.pods.len(), 1);
    assert_eq!(snap.log_excerpts[0].container, "a");
}

#[test]
fn builder_takes_typed_objects_and_records_missing_kinds() {
    #[derive(serde::Serialize)]
    struct Typed {
        #[serde(rename = "apiVersion")]
        api_version: &'static str,
        kind: &'static str,
        metadata: serde_json::Value,
    }
    let mut b = Builder::new(
        "2026-01-01T00:00:00Z".parse().expect("time"),
        "context home",
    );
    b.add(&Typed {
        api_version: "v1",
        kind: "Node",
        metadata: json!({"name": "n1"}),
    })
    .expect("adds");
    b.add_value(pod("a")).expect("adds");
    assert!(b.add_value(json!({"metadata": {}})).is_err());
    b.missing("Lease", "forbidden");
    let snap = b.build();
    assert_eq!(
        (snap.nodes.len(), snap.pods.len(), snap.missing.len()),
        (1, 1, 1)
    );
    let again = load::load(&snap.to_json().expect("json")).expect("reloads");
    assert_eq!(again, snap);
}

fn incident_bytes() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let doc = kube::snapshot_doc(
            common::incident::COLLECTED_AT,
            "x",
            &common::incident::objects(false),
        );
        serde_json::to_vec(&doc).expect("json")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = load::load(&bytes);
        let _ = load::dump(vec![("x/pods.json", bytes.as_slice()), ("x/y/logs.txt", bytes.as_slice())]);
    }

    #[test]
    fn json_like_noise_never_panics(s in "[\\[\\]{}\":,a-z0-9 \\n-]{0,400}") {
        let _ = load::load(s.as_bytes());
    }

    #[test]
    fn any_truncation_of_a_real_snapshot_errors_cleanly(cut in 0usize..1000) {
        let bytes = incident_bytes();
        let at = bytes.len() * cut / 1000;
        // One JSON document: every strict prefix is incomplete.
        prop_assert!(load::load(&bytes[..at]).is_err());
    }

    #[test]
    fn flipped_bytes_in_a_real_snapshot_never_panic(pos in 0usize..10_000, byte in any::<u8>()) {
        let mut bytes = incident_bytes().to_vec();
        let i = pos * bytes.len() / 10_000;
        bytes[i] = byte;
        if let Ok(snap) = load::load(&bytes) {
            let _ = rebootguard_diagnose::analyse(&snap, "2026-01-31T07:22:00Z".parse().expect("now"), &Default::default());
        }
    }
}

#[test]
fn state_builder_covers_all_states() {
    // Guards the fixture generator itself: every state serialises to a pod
    // the loader accepts.
    for s in [
        State::Running,
        State::Creating,
        State::NotReady,
        State::Shutdown,
        State::Completed,
        State::RestartingAfterReboot,
    ] {
        let p = PodB::bare("a", "p", "n", "img").state(s).build();
        load::load(&serde_json::to_vec(&p).expect("json")).expect("loads");
    }
}

/// Older API versions of the same kinds (clusters mid-upgrade, old dumps)
/// load side by side with current ones.
#[test]
fn mixed_api_versions_load_together() {
    let items = vec![
        json!({"apiVersion": "events.k8s.io/v1beta1", "kind": "Event", "metadata": {"name": "e1", "namespace": "a", "uid": "u1"},
               "regarding": {"kind": "Pod", "namespace": "a", "name": "p"}, "reason": "FailedMount", "note": "MountVolume.SetUp failed", "type": "Warning", "deprecatedCount": 3}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e2", "namespace": "a", "uid": "u2"},
               "involvedObject": {"kind": "Pod", "namespace": "a", "name": "p"}, "reason": "BackOff", "message": "Back-off", "type": "Warning", "count": 2}),
        json!({"apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice", "metadata": {"name": "s", "namespace": "a", "labels": {"kubernetes.io/service-name": "svc"}},
               "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.9"], "conditions": {"ready": true}, "topology": {"kubernetes.io/hostname": "n1"}}]}),
        json!({"apiVersion": "storage.k8s.io/v1beta1", "kind": "CSINode", "metadata": {"name": "n1"}, "spec": {"drivers": null}}),
        pod("a"),
    ];
    let snap =
        load::load(&serde_json::to_vec(&kube::list_doc(&items)).expect("json")).expect("loads");
    assert_eq!(snap.events.len(), 2);
    assert_eq!(snap.events.iter().map(|e| e.count).sum::<i64>(), 5);
    assert_eq!(snap.endpoint_slices[0].ready_count(), 1);
    assert!(snap.csi_nodes[0].spec.drivers.is_empty());
}

#[test]
fn byte_order_marks() {
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend(serde_json::to_vec(&kube::list_doc(&[pod("a")])).expect("json"));
    assert_eq!(
        load::load(&bom).expect("UTF-8 with BOM loads").pods.len(),
        1
    );
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("{}".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let err = load::load(&utf16).expect_err("must fail");
    assert!(matches!(err, Error::Utf16), "{err:?}");
    assert!(err.to_string().contains("UTF-8"));
}

/// Every kind the live collector is told to list is one the loader keeps.
#[test]
fn every_collected_kind_is_kept() {
    for k in rebootguard_diagnose::snapshot::KINDS {
        let mut b = Builder::new("2026-01-01T00:00:00Z".parse().expect("time"), "test");
        b.add_value(json!({"apiVersion": k.api_version(), "kind": k.kind, "type": "Warning", "metadata": {"name": "x", "namespace": "n"}}))
            .expect("adds");
        let snap = b.build();
        assert_eq!(snap.len(), 1, "{k:?} was dropped");
    }
}

/// One object of every kind of `KINDS`, each under its own name (events of
/// both APIs with one name would be one event).
fn one_of_each_kind() -> rebootguard_diagnose::Snapshot {
    let mut b = Builder::new("2026-01-01T00:00:00Z".parse().expect("time"), "test");
    for (i, k) in rebootguard_diagnose::snapshot::KINDS.iter().enumerate() {
        b.add_value(json!({"apiVersion": k.api_version(), "kind": k.kind, "type": "Warning",
                           "metadata": {"name": format!("x{i}"), "namespace": "n", "uid": format!("u{i}")}}))
            .expect("adds");
    }
    b.build()
}

/// Every array the table of kinds writes goes through the snapshot file,
/// `merge`, `dedup` and `len`.
#[test]
fn every_kind_round_trips_merges_and_dedups() {
    let snap = one_of_each_kind();
    let count = rebootguard_diagnose::snapshot::KINDS.len();
    assert_eq!(snap.len(), count);
    let again = load::load(&snap.to_json().expect("json")).expect("reloads");
    assert_eq!(again, snap);
    let mut twice = snap.clone();
    twice.merge(again);
    assert_eq!(twice.len(), 2 * count);
    twice.dedup();
    assert_eq!(twice.len(), count);
}

/// Objects are kept by kind and API group, whatever the version: an older
/// version is still read, a kind of the same name in another group is not
/// taken for the built-in one.
#[test]
fn kinds_are_told_apart_by_group_in_any_version() {
    let objects = [
        json!({"apiVersion": "events.k8s.io/v1beta1", "kind": "Event", "type": "Warning",
               "reason": "BackOff", "metadata": {"name": "e", "namespace": "a", "uid": "e1"}}),
        json!({"apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
               "metadata": {"name": "s", "namespace": "a"}}),
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "HelmRepository",
               "metadata": {"name": "h", "namespace": "flux-system"}}),
        // Longhorn's own Nodes are no cluster Nodes.
        json!({"apiVersion": "longhorn.io/v1beta2", "kind": "Node",
               "metadata": {"name": "n1", "namespace": "longhorn-system"}}),
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
               "metadata": {"name": "k", "namespace": "a"}}),
    ];
    let snap =
        load::load(&serde_json::to_vec(&kube::list_doc(&objects)).expect("json")).expect("loads");
    assert_eq!(snap.events.len(), 1);
    assert_eq!(snap.endpoint_slices.len(), 1);
    assert!(snap.nodes.is_empty(), "{:?}", snap.nodes);
    assert!(snap.services.is_empty(), "{:?}", snap.services);
    let custom: Vec<&str> = snap
        .custom
        .iter()
        .filter_map(|v| v["apiVersion"].as_str())
        .collect();
    assert_eq!(
        custom,
        ["source.toolkit.fluxcd.io/v1beta2", "longhorn.io/v1beta2"]
    );
    assert_eq!(snap.ignored.get("Service.serving.knative.dev"), Some(&1));
}

/// Flux's sources of the version before their GA (a file from an older
/// Flux) and Argo CD's Applications are kept; Argo's Workflows, many and
/// big, are not.
#[test]
fn flux_sources_of_any_version_and_argo_applications_are_kept() {
    let object = |api_version: &str, kind: &str| {
        json!({"apiVersion": api_version, "kind": kind,
               "metadata": {"name": api_version, "namespace": "ci"},
               "status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    };
    let objects = [
        object("source.toolkit.fluxcd.io/v1beta2", "OCIRepository"),
        object("source.toolkit.fluxcd.io/v1beta2", "Bucket"),
        object("source.toolkit.fluxcd.io/v1", "Bucket"),
        object("argoproj.io/v1alpha1", "Application"),
        object("argoproj.io/v1alpha1", "Workflow"),
    ];
    let snap =
        load::load(&serde_json::to_vec(&kube::list_doc(&objects)).expect("json")).expect("loads");
    let kept: Vec<(&str, &str)> = snap
        .custom
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or("");
            (s("apiVersion"), s("kind"))
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("source.toolkit.fluxcd.io/v1beta2", "OCIRepository"),
            ("source.toolkit.fluxcd.io/v1beta2", "Bucket"),
            ("source.toolkit.fluxcd.io/v1", "Bucket"),
            ("argoproj.io/v1alpha1", "Application"),
        ]
    );
    assert_eq!(snap.ignored.get("Workflow.argoproj.io"), Some(&1));
}

/// `kubectl get nodes,pods,events -A -o yaml` as kubectl prints it: quoted
/// timestamps and label values, a block-scalar annotation holding JSON,
/// `{}` and `[]` in flow style, integers, booleans and a `null`.
const KUBECTL_YAML: &str = r#"apiVersion: v1
items:
- apiVersion: v1
  kind: Node
  metadata:
    annotations:
      flannel.alpha.coreos.com/backend-data: '{"VNI":1,"VtepMAC":"4a:7e:0b:22:31:9c"}'
      node.alpha.kubernetes.io/ttl: "0"
    creationTimestamp: "2026-01-12T08:00:00Z"
    labels:
      kubernetes.io/hostname: boromir
      node-role.kubernetes.io/control-plane: "true"
    name: boromir
    resourceVersion: "901233"
    uid: 4f1c2c9e-0a61-4e0e-9d9b-1f9b7d6e8a01
  spec:
    podCIDR: 10.42.0.0/24
    podCIDRs:
    - 10.42.0.0/24
  status:
    conditions:
    - lastHeartbeatTime: "2026-01-31T09:14:00Z"
      lastTransitionTime: "2026-01-31T09:03:41Z"
      message: kubelet is posting ready status
      reason: KubeletReady
      status: "True"
      type: Ready
    nodeInfo:
      bootID: 0c1b8a52-44f9-4a1b-9d0e-2b7f4f3e9a77
      kubeletVersion: v1.31.4+k3s1
- apiVersion: v1
  kind: Pod
  metadata:
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: |
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-0"}}
    creationTimestamp: "2026-01-31T09:05:10Z"
    labels:
      app: web
    name: web-0
    namespace: shop
    ownerReferences:
    - apiVersion: apps/v1
      blockOwnerDeletion: true
      controller: true
      kind: StatefulSet
      name: web
      uid: 7d3f0b1e-2c4a-4f6e-8a9b-0c1d2e3f4a5b
    resourceVersion: "901100"
    uid: 0a0b0c0d-1111-2222-3333-444455556666
  spec:
    containers:
    - image: nginx:1.27
      name: web
      resources: {}
    nodeName: boromir
    tolerations: []
  status:
    conditions: null
    phase: Pending
    containerStatuses:
    - image: nginx:1.27
      imageID: ""
      lastState: {}
      name: web
      ready: false
      restartCount: 0
      started: false
      state:
        waiting:
          reason: ContainerCreating
- apiVersion: v1
  count: 14
  firstTimestamp: "2026-01-31T09:05:11Z"
  involvedObject:
    apiVersion: v1
    kind: Pod
    name: web-0
    namespace: shop
    uid: 0a0b0c0d-1111-2222-3333-444455556666
  kind: Event
  lastTimestamp: "2026-01-31T09:13:40Z"
  message: 'Failed to create pod sandbox: rpc error: code = Unknown desc = failed
    to setup network for sandbox "9f2c": plugin type="flannel" failed (add): failed
    to load flannel ''subnet.env'' file: open /run/flannel/subnet.env: no such file
    or directory. Check the flannel pod log for this node.'
  metadata:
    creationTimestamp: "2026-01-31T09:05:11Z"
    name: web-0.181f3a2b4c5d6e7f
    namespace: shop
  reason: FailedCreatePodSandBox
  source:
    component: kubelet
    host: boromir
  type: Warning
kind: List
metadata:
  resourceVersion: ""
"#;

#[test]
fn kubectl_yaml_output_loads_like_its_json() {
    let snap = load::load(KUBECTL_YAML.as_bytes()).expect("kubectl's YAML loads");
    assert_eq!(snap.nodes.len(), 1);
    assert_eq!(
        snap.nodes[0].status.node_info.boot_id,
        "0c1b8a52-44f9-4a1b-9d0e-2b7f4f3e9a77"
    );
    assert_eq!(snap.pods.len(), 1);
    assert_eq!(snap.pods[0].spec.node_name, "boromir");
    assert_eq!(snap.events.len(), 1);
    // A folded single-quoted scalar: one line, its '' an apostrophe.
    assert!(
        snap.events[0]
            .message
            .contains("failed to load flannel 'subnet.env' file: open /run/flannel/subnet.env: no such file or directory"),
        "{}",
        snap.events[0].message
    );
    // The same objects as JSON give the same snapshot.
    let value: serde_json::Value = serde_saphyr::from_str(KUBECTL_YAML).expect("yaml");
    let json = serde_json::to_vec(&value).expect("json");
    let from_json = load::load(&json).expect("the JSON loads");
    assert_eq!(from_json.pods, snap.pods);
    assert_eq!(from_json.nodes, snap.nodes);
    assert_eq!(from_json.events, snap.events);
}

#[test]
fn yaml_alias_bombs_are_refused_not_expanded() {
    // Nine levels of ten aliases each: a billion strings if expanded.
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let err = load::load(text.as_bytes()).expect_err("an alias bomb must not load");
    assert!(
        matches!(err, Error::ParseYaml { .. }),
        "{}",
        rebootguard_errors::chain(&err)
    );
}

#[test]
fn an_endless_device_is_binary_not_a_snapshot() {
    let zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
    let err = load::load_reader(zero).expect_err("/dev/zero is no snapshot");
    assert!(
        matches!(err, Error::Binary { byte: 0, offset: 0 }),
        "{}",
        rebootguard_errors::chain(&err)
    );
    assert!(err.to_string().contains("binary data"), "{err}");
    // Text that starts well and turns to NULs is caught by the parser.
    let mut text = b"  \n".to_vec();
    text.extend([0u8; 16]);
    assert!(matches!(
        load::load(&text),
        Err(Error::Binary { offset: 3, .. })
    ));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // 8 MiB of JSON whitespace around an empty List, compressed to a few KiB.
    let mut json = vec![b' '; 8 << 20];
    json.extend_from_slice(br#"{"apiVersion":"v1","kind":"List","items":[]}"#);
    let bomb = gzip(&json);
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    let limits = load::Limits {
        input: 1 << 20,
        yaml: 1 << 20,
        yaml_list: 0,
    };
    let err = load::load_reader_bounded(&bomb[..], limits).expect_err("past the limit");
    assert!(
        matches!(
            err,
            Error::TooLarge {
                limit: 1_048_576,
                after: " after decompression"
            }
        ),
        "{}",
        rebootguard_errors::chain(&err)
    );
    assert!(err.to_string().contains("gzip bomb"), "{err}");
    // Within the limit the same input is just an (empty) List.
    let roomy = load::Limits {
        input: 16 << 20,
        yaml: 1 << 20,
        yaml_list: 0,
    };
    assert!(!matches!(
        load::load_reader_bounded(&bomb[..], roomy),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn yaml_is_bounded_on_its_own_and_an_input_of_exactly_the_limit_loads() {
    let doc = serde_saphyr::to_string(&pod("a")).expect("yaml");
    let mut yaml = doc.clone();
    yaml.push_str(&"# padding\n".repeat(4096));
    let limits = load::Limits {
        input: 1 << 30,
        yaml: 4096,
        yaml_list: 0,
    };
    let err = load::load_reader_bounded(yaml.as_bytes(), limits).expect_err("YAML limit");
    assert!(
        matches!(
            err,
            Error::YamlTooLarge {
                limit: 4096,
                after: ""
            }
        ),
        "{}",
        rebootguard_errors::chain(&err)
    );
    assert!(err.to_string().contains("-o json"), "{err}");
    let exact = load::Limits {
        input: doc.len() as u64,
        yaml: doc.len() as u64,
        yaml_list: 0,
    };
    let snap = load::load_reader_bounded(doc.as_bytes(), exact).expect("exactly the limit loads");
    assert_eq!(snap.pods.len(), 1);
    let short = load::Limits {
        input: doc.len() as u64 - 1,
        yaml: 1 << 30,
        yaml_list: 0,
    };
    assert!(matches!(
        load::load_reader_bounded(doc.as_bytes(), short),
        Err(Error::TooLarge { .. })
    ));
}

/// kubectl's YAML List is read item by item, so it may be bigger than YAML
/// parsed whole: past `yaml` but within `yaml_list` it loads; any other
/// YAML of that size is refused.
#[test]
fn kubectls_yaml_list_has_its_own_bound() {
    let list = format!(
        "apiVersion: v1\nitems:\n{}kind: List\nmetadata:\n  resourceVersion: \"\"\n",
        (0..20)
            .map(|i| serde_saphyr::to_string(&vec![pod(&format!("p{i}"))]).expect("yaml"))
            .collect::<String>()
    );
    let limits = load::Limits {
        input: 1 << 30,
        yaml: 1024,
        yaml_list: 1 << 20,
    };
    let snap = load::load_reader_bounded(list.as_bytes(), limits).expect("the List loads");
    assert_eq!(snap.pods.len(), 20);
    let documents: String = (0..20)
        .map(|i| {
            format!(
                "---\n{}",
                serde_saphyr::to_string(&pod(&format!("p{i}"))).expect("yaml")
            )
        })
        .collect();
    let err = load::load_reader_bounded(documents.as_bytes(), limits).expect_err("whole documents");
    assert!(
        matches!(err, Error::YamlTooLarge { limit: 1024, .. }),
        "{}",
        rebootguard_errors::chain(&err)
    );
    let tight = load::Limits {
        yaml_list: 2048,
        ..limits
    };
    let err = load::load_reader_bounded(list.as_bytes(), tight).expect_err("past both");
    assert!(
        matches!(err, Error::YamlTooLarge { limit: 2048, .. }),
        "{err}"
    );
}
