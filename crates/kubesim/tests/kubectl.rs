//! The real `kubectl` against kubesim: what it prints is what an admin
//! would see from a real apiserver. Each test uses its own kubeconfig and
//! discovery cache directory.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use kubesim::KubeSim;
use serde_json::{Value, json};

struct Kubectl {
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "kubectl failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

/// `kubectl` from PATH, or `None` (with the reason printed) when the
/// machine has none: these tests need the real client.
fn kubectl(sim: &KubeSim) -> Option<Kubectl> {
    if !kubesim::kubectl_available("the kubectl tests") {
        return None;
    }
    Some(Kubectl {
        kubeconfig: sim.kubeconfig_path().to_owned(),
        cache: tempfile::tempdir().expect("temp cache dir"),
    })
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> Output {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .arg("--cache-dir")
                .arg(self.cache.path())
                .args(args)
                .env_remove("KUBECONFIG")
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("kubectl finished within 60s")
        .expect("kubectl ran");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn node(name: &str, ready: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "node-role.kubernetes.io/control-plane": "true"}},
        "spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady", "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": "2026-01-31T07:00:00Z", "lastTransitionTime": "2026-01-31T07:00:00Z"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.50.11"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.33.1+k3s1", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-18-amd64",
                         "containerRuntimeVersion": "containerd://1.7.27-k3s1", "bootID": "b00t-1", "machineID": "m1", "systemUUID": "s1",
                         "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}
        }
    })
}

fn pod(ns: &str, name: &str, node: &str, owner: Option<(&str, &str, &str)>) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name.split('-').next().unwrap_or(name)}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "nginx:1.27"}]},
        "status": {"phase": "Running", "podIP": "10.42.1.7", "hostIP": "192.168.50.11",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "main", "ready": true, "restartCount": 3, "image": "nginx:1.27", "imageID": "", "started": true,
                                          "state": {"running": {"startedAt": "2026-01-31T07:00:00Z"}}}]}
    });
    if let Some((kind, owner, uid)) = owner {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": uid, "controller": true}]);
    }
    p
}

/// Every line of `text` whose whitespace-separated words start with `words`.
fn row<'a>(text: &'a str, words: &[&str]) -> Option<&'a str> {
    text.lines().find(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() >= words.len() && w[..words.len()] == *words
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn get_nodes_and_pods_print_real_columns() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    sim.create(&node("cp1", "True")).unwrap();
    let mut down = node("cp2", "Unknown");
    down["spec"]["unschedulable"] = true.into();
    sim.create(&down).unwrap();
    sim.create(&pod("default", "web-1", "cp1", None)).unwrap();
    let mut stuck = pod("kube-system", "coredns-1", "cp2", None);
    stuck["status"] = json!({"phase": "Pending", "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0, "image": "coredns", "imageID": "",
        "state": {"waiting": {"reason": "ContainerCreating"}}}]});
    sim.create(&stuck).unwrap();
    // A fixture may be seeded already terminating: a stale pod on a dead node.
    let mut stale = pod("kube-system", "old-1", "cp2", None);
    stale["metadata"]["deletionTimestamp"] = "2026-01-31T07:05:00Z".into();
    stale["metadata"]["deletionGracePeriodSeconds"] = 30.into();
    sim.create(&stale).unwrap();
    let mut lost = pod("kube-system", "old-2", "cp2", None);
    lost["metadata"]["deletionTimestamp"] = "2026-01-31T07:05:00Z".into();
    lost["status"]["reason"] = "NodeLost".into();
    sim.create(&lost).unwrap();

    let out = k.run(&["get", "nodes"]).await.ok();
    assert!(
        row(&out, &["NAME", "STATUS", "ROLES", "AGE", "VERSION"]).is_some(),
        "{out}"
    );
    assert!(
        row(&out, &["cp1", "Ready", "control-plane"]).is_some(),
        "{out}"
    );
    assert!(
        row(
            &out,
            &["cp2", "NotReady,SchedulingDisabled", "control-plane"]
        )
        .is_some(),
        "{out}"
    );

    let out = k.run(&["get", "nodes", "-o", "wide"]).await.ok();
    let line = row(&out, &["cp1"]).unwrap();
    assert!(
        line.contains("192.168.50.11")
            && line.contains("Debian GNU/Linux 12 (bookworm)")
            && line.contains("containerd://1.7.27-k3s1"),
        "{out}"
    );

    let out = k.run(&["get", "pods", "-A", "-o", "wide"]).await.ok();
    assert!(
        row(
            &out,
            &[
                "NAMESPACE",
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "IP",
                "NODE",
                "NOMINATED",
                "NODE",
                "READINESS",
                "GATES"
            ]
        )
        .is_some(),
        "{out}"
    );
    let web =
        row(&out, &["default", "web-1", "1/1", "Running", "3"]).unwrap_or_else(|| panic!("{out}"));
    assert!(web.contains("10.42.1.7") && web.contains("cp1"), "{web}");
    assert!(
        row(
            &out,
            &["kube-system", "coredns-1", "0/1", "ContainerCreating", "0"]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        row(&out, &["kube-system", "old-1", "1/1", "Terminating"]).is_some(),
        "{out}"
    );
    assert!(
        row(&out, &["kube-system", "old-2", "1/1", "Unknown"]).is_some(),
        "{out}"
    );

    let out = k.run(&["get", "all", "-A"]).await.ok();
    assert!(
        out.contains("pod/web-1") && out.contains("pod/coredns-1"),
        "{out}"
    );

    let out = k.run(&["get", "ns"]).await.ok();
    assert!(row(&out, &["NAME", "STATUS", "AGE"]).is_some(), "{out}");
    assert!(row(&out, &["kube-node-lease", "Active"]).is_some(), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_node_and_pod_and_events() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    let n = sim.create(&node("cp1", "True")).unwrap();
    let uid = n["metadata"]["uid"].as_str().unwrap().to_owned();
    sim.create(&pod("default", "web-1", "cp1", None)).unwrap();
    sim.create(&json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "cp1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "cp1", "leaseDurationSeconds": 40, "renewTime": "2026-01-31T07:00:00.000000Z"}}))
    .unwrap();
    for (i, (kind, name, reason, msg)) in [
        ("Node", "cp1", "Rebooted", "Node cp1 has been rebooted, boot id: b00t-1"),
        ("Pod", "web-1", "FailedCreatePodSandBox", "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"),
    ]
    .iter()
    .enumerate()
    {
        let involved_uid = if *kind == "Node" { uid.clone() } else { sim.get("v1", "Pod", "default", "web-1").unwrap()["metadata"]["uid"].as_str().unwrap().to_owned() };
        sim.create(&json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("ev-{i}"), "namespace": "default"},
            "involvedObject": {"kind": kind, "name": name, "namespace": if *kind == "Pod" {"default"} else {""}, "uid": involved_uid},
            "reason": reason, "message": msg, "type": "Warning", "count": 4,
            "source": {"component": "kubelet", "host": "cp1"},
            "firstTimestamp": "2026-01-31T07:00:00Z", "lastTimestamp": "2026-01-31T07:02:00Z"}))
        .unwrap();
    }

    let out = k.run(&["describe", "node", "cp1"]).await.ok();
    for want in [
        "Name:               cp1",
        "PodCIDR:",
        "10.42.1.0/24",
        "KubeletReady",
        "Boot ID:                    b00t-1",
        "HolderIdentity:  cp1",
        "default                     web-1",
        "Rebooted",
    ] {
        assert!(out.contains(want), "describe node lacks {want:?}:\n{out}");
    }

    let out = k.run(&["describe", "pod", "web-1"]).await.ok();
    for want in [
        "Node:         cp1/192.168.50.11",
        "Restart Count:  3",
        "FailedCreatePodSandBox",
        "subnet.env",
    ] {
        assert!(out.contains(want), "describe pod lacks {want:?}:\n{out}");
    }

    let out = k
        .run(&[
            "get",
            "events",
            "-A",
            "--field-selector",
            "reason=FailedCreatePodSandBox",
        ])
        .await
        .ok();
    assert!(
        row(
            &out,
            &[
                "NAMESPACE",
                "LAST",
                "SEEN",
                "TYPE",
                "REASON",
                "OBJECT",
                "MESSAGE"
            ]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        out.contains("pod/web-1") && out.contains("(x4 over"),
        "{out}"
    );
    assert!(!out.contains("node/cp1"), "{out}");
    let out = k
        .run(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=Node,type=Warning",
        ])
        .await
        .ok();
    assert!(
        out.contains("node/cp1") && !out.contains("pod/web-1"),
        "{out}"
    );
    let bad = k
        .run(&["get", "events", "--field-selector", "spec.nodeName=cp1"])
        .await;
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("field label not supported"),
        "{}",
        bad.stderr
    );

    let out = k
        .run(&["get", "leases", "-n", "kube-node-lease"])
        .await
        .ok();
    assert!(
        row(&out, &["NAME", "HOLDER", "AGE"]).is_some() && row(&out, &["cp1", "cp1"]).is_some(),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cordon_taint_uncordon_and_force_delete() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    sim.create(&node("cp1", "True")).unwrap();
    sim.create(&pod("default", "web-1", "cp1", None)).unwrap();
    let spec = |sim: &KubeSim| sim.get("v1", "Node", "", "cp1").unwrap()["spec"].clone();

    assert!(
        k.run(&["cordon", "cp1"])
            .await
            .ok()
            .contains("node/cp1 cordoned")
    );
    assert_eq!(spec(&sim)["unschedulable"], true);
    let out = k
        .run(&[
            "taint",
            "nodes",
            "cp1",
            "rebootguard.io/cni-not-ready=true:NoSchedule",
        ])
        .await
        .ok();
    assert!(out.contains("node/cp1 tainted"), "{out}");
    k.run(&["taint", "nodes", "cp1", "example.com/other:NoExecute"])
        .await
        .ok();
    assert_eq!(spec(&sim)["taints"].as_array().unwrap().len(), 2);
    let out = k
        .run(&["taint", "nodes", "cp1", "rebootguard.io/cni-not-ready-"])
        .await
        .ok();
    assert!(out.contains("node/cp1 untainted"), "{out}");
    assert_eq!(
        spec(&sim)["taints"],
        json!([{"key": "example.com/other", "effect": "NoExecute"}])
    );
    assert!(
        k.run(&["uncordon", "cp1"])
            .await
            .ok()
            .contains("node/cp1 uncordoned")
    );
    assert!(spec(&sim).get("unschedulable").is_none_or(|u| u == false));
    assert_eq!(
        spec(&sim)["podCIDR"],
        "10.42.1.0/24",
        "unrelated fields survive the patches"
    );

    let out = k
        .run(&["delete", "pod", "web-1", "--grace-period=0", "--force"])
        .await;
    assert!(
        out.stdout.contains("pod \"web-1\" force deleted"),
        "{}",
        out.stdout
    );
    assert_eq!(out.code, 0);
    assert!(sim.get("v1", "Pod", "default", "web-1").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_evicts_through_the_budget() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    sim.create(&node("cp1", "True")).unwrap();
    let ds = sim
        .create(&json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "svclb", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"app": "svclb"}}, "template": {"metadata": {"labels": {"app": "svclb"}}, "spec": {"containers": [{"name": "lb", "image": "klipper-lb"}]}}}}))
        .unwrap();
    let ds_uid = ds["metadata"]["uid"].as_str().unwrap().to_owned();
    sim.create(&pod(
        "kube-system",
        "svclb-x1",
        "cp1",
        Some(("DaemonSet", "svclb", &ds_uid)),
    ))
    .unwrap();
    sim.create(&pod(
        "default",
        "web-1",
        "cp1",
        Some(("ReplicaSet", "web-5d4", "rs-uid")),
    ))
    .unwrap();
    sim.create(&pod(
        "default",
        "web-2",
        "cp1",
        Some(("ReplicaSet", "web-5d4", "rs-uid")),
    ))
    .unwrap();
    sim.create(
        &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .unwrap();

    let blocked = k
        .run(&["drain", "cp1", "--ignore-daemonsets", "--timeout=6s"])
        .await;
    assert_ne!(
        blocked.code, 0,
        "drain must fail while the budget blocks it"
    );
    let all = format!("{}{}", blocked.stdout, blocked.stderr);
    assert!(
        all.contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{all}"
    );
    assert!(sim.get("v1", "Pod", "default", "web-1").is_some());
    assert!(
        sim.request_count("create", "pods/eviction") >= 2,
        "{:?}",
        sim.requests()
    );
    assert_eq!(
        sim.get("v1", "Node", "", "cp1").unwrap()["spec"]["unschedulable"],
        true
    );

    // Room for both pods: without controllers nothing replaces them.
    let room = json!({"spec": {"minAvailable": null, "maxUnavailable": 2}});
    sim.patch(
        "policy/v1",
        "PodDisruptionBudget",
        "default",
        "web",
        kubesim::patch::Kind::Merge,
        &room,
    )
    .unwrap();
    let out = k
        .run(&["drain", "cp1", "--ignore-daemonsets", "--timeout=30s"])
        .await;
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{all}");
    assert!(
        all.contains("ignoring DaemonSet-managed Pods: kube-system/svclb-x1"),
        "{all}"
    );
    assert!(
        all.contains("pod/web-1 evicted") && all.contains("node/cp1 drained"),
        "{all}"
    );
    assert!(sim.get("v1", "Pod", "default", "web-1").is_none());
    assert!(
        sim.get("v1", "Pod", "kube-system", "svclb-x1").is_some(),
        "DaemonSet pods stay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn get_pods_json_pages_through_everything() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    sim.create(&node("cp1", "True")).unwrap();
    for i in 0..25 {
        sim.create(&pod("default", &format!("web-{i:02}"), "cp1", None))
            .unwrap();
    }
    sim.reset_requests();
    let out = k
        .run(&["get", "pods", "-A", "-o", "json", "--chunk-size=10"])
        .await
        .ok();
    let list: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 25);
    assert_eq!(names[0], "web-00");
    assert_eq!(names[24], "web-24");
    assert_eq!(sim.request_count("list", "pods"), 3, "{:?}", sim.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn get_watch_prints_table_rows_as_changes_happen() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    sim.create(&node("cp1", "True")).unwrap();
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .arg("--cache-dir")
        .arg(k.cache.path())
        .args(["get", "nodes", "--watch", "--output-watch-events"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait until kubectl has its watch open before changing anything.
    tokio::time::timeout(Duration::from_secs(20), async {
        while sim.request_count("watch", "nodes") == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("kubectl opens a watch");
    sim.patch(
        "v1",
        "Node",
        "",
        "cp1",
        kubesim::patch::Kind::Merge,
        &json!({"spec": {"unschedulable": true}}),
    )
    .unwrap();
    sim.delete("v1", "Node", "", "cp1").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        row(
            &text,
            &["EVENT", "NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        )
        .is_some(),
        "{text}"
    );
    assert!(
        row(&text, &["ADDED", "cp1", "Ready", "control-plane"]).is_some(),
        "{text}"
    );
    assert!(
        row(&text, &["MODIFIED", "cp1", "Ready,SchedulingDisabled"]).is_some(),
        "{text}"
    );
    assert!(row(&text, &["DELETED", "cp1"]).is_some(), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_and_delete_by_label() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flannel-cfg\n  labels:\n    app: flannel\ndata:\n  net-conf.json: '{\"Network\": \"10.42.0.0/16\"}'\n",
    )
    .unwrap();
    let path = manifest.to_str().unwrap();
    // kubesim serves no OpenAPI document, which kubectl's schema
    // validation needs: manifests go in with --validate=false.
    let out = k
        .run(&["apply", "--server-side", "--validate=false", "-f", path])
        .await
        .ok();
    assert!(
        out.contains("configmap/flannel-cfg serverside-applied"),
        "{out}"
    );
    let cm = sim
        .get("v1", "ConfigMap", "default", "flannel-cfg")
        .unwrap();
    assert_eq!(
        cm["data"]["net-conf.json"],
        "{\"Network\": \"10.42.0.0/16\"}"
    );
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("10.42.0.0/16", "10.52.0.0/16"),
    )
    .unwrap();
    k.run(&["apply", "--server-side", "--validate=false", "-f", path])
        .await
        .ok();
    let cm = sim
        .get("v1", "ConfigMap", "default", "flannel-cfg")
        .unwrap();
    assert_eq!(
        cm["data"]["net-conf.json"],
        "{\"Network\": \"10.52.0.0/16\"}"
    );

    sim.create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "default"}})).unwrap();
    let out = k
        .run(&["delete", "configmaps", "-l", "app=flannel"])
        .await
        .ok();
    assert!(out.contains("configmap \"flannel-cfg\" deleted"), "{out}");
    assert!(
        sim.get("v1", "ConfigMap", "default", "flannel-cfg")
            .is_none()
    );
    assert!(
        sim.get("v1", "ConfigMap", "default", "other").is_some(),
        "the selector limits the deletion"
    );
}

/// kubectl's `create` generators send protobuf bodies; what they sent
/// must come back from `get -o json`.
#[tokio::test(flavor = "multi_thread")]
async fn create_generators_send_protobuf_bodies() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    let get = async |args: &[&str]| -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&k.run(&all).await.ok()).unwrap()
    };

    let out = k.run(&["create", "namespace", "team-a"]).await.ok();
    assert!(out.contains("namespace/team-a created"), "{out}");
    let ns = get(&["namespace", "team-a"]).await;
    assert_eq!(ns["status"]["phase"], "Active", "{ns}");

    let out = k
        .run(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            "team-a",
            "--from-literal=a=b",
            "--from-literal=mode=fast",
        ])
        .await
        .ok();
    assert!(out.contains("configmap/cfg created"), "{out}");
    let cm = get(&["configmap", "cfg", "-n", "team-a"]).await;
    assert_eq!(cm["data"], json!({"a": "b", "mode": "fast"}), "{cm}");

    let out = k
        .run(&["create", "secret", "generic", "s", "--from-literal=k=v"])
        .await
        .ok();
    assert!(out.contains("secret/s created"), "{out}");
    let secret = get(&["secret", "s"]).await;
    assert_eq!(secret["data"], json!({"k": "dg=="}), "{secret}");

    let out = k
        .run(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=2",
            "--port=80",
        ])
        .await
        .ok();
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let deploy = get(&["deployment", "web"]).await;
    assert_eq!(deploy["spec"]["replicas"], 2, "{deploy}");
    assert_eq!(
        deploy["metadata"]["labels"],
        json!({"app": "web"}),
        "{deploy}"
    );
    assert_eq!(
        deploy["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}}),
        "{deploy}"
    );
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27", "{deploy}");
    assert_eq!(
        container["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}]),
        "{deploy}"
    );
    assert_eq!(
        deploy["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web"}),
        "{deploy}"
    );

    let out = k.run(&["create", "serviceaccount", "robot"]).await.ok();
    assert!(out.contains("serviceaccount/robot created"), "{out}");
    assert_eq!(
        get(&["serviceaccount", "robot"]).await["metadata"]["name"],
        "robot"
    );

    let out = k
        .run(&["create", "service", "clusterip", "web", "--tcp=5678:8080"])
        .await
        .ok();
    assert!(out.contains("service/web created"), "{out}");
    let svc = get(&["service", "web"]).await;
    assert_eq!(svc["spec"]["type"], "ClusterIP", "{svc}");
    assert_eq!(svc["spec"]["selector"], json!({"app": "web"}), "{svc}");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "5678-8080", "port": 5678, "protocol": "TCP", "targetPort": 8080}]),
        "{svc}"
    );

    // A kind without a protobuf schema is refused by name, not misread.
    let role = k
        .run(&["create", "role", "reader", "--verb=get", "--resource=pods"])
        .await;
    assert_ne!(role.code, 0, "{}", role.stdout);
    assert!(
        role.stderr
            .contains("cannot decode protobuf bodies of kind \"Role\""),
        "{}",
        role.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_show_and_bad_values_are_refused_not_stored() {
    let sim = KubeSim::start().await.expect("kubesim");
    let Some(k) = kubectl(&sim) else { return };
    let dir = tempfile::tempdir().expect("dir");
    let file = |name: &str, yaml: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).expect("write");
        path.to_str().expect("utf-8").to_owned()
    };
    let pod = file(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox}]\n",
    );
    let out = k.run(&["apply", "--validate=false", "-f", &pod]).await.ok();
    assert!(out.contains("pod/p created"), "{out}");
    let shown = k
        .run(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.spec.restartPolicy} {.spec.terminationGracePeriodSeconds} {.spec.containers[0].imagePullPolicy}",
        ])
        .await
        .ok();
    assert_eq!(shown, "Always 30 Always");

    let out = k
        .run(&["create", "service", "clusterip", "web", "--tcp=80:8080"])
        .await
        .ok();
    assert!(out.contains("service/web created"), "{out}");
    let table = k.run(&["get", "service", "web"]).await.ok();
    let ip = row(&table, &["web", "ClusterIP"])
        .and_then(|r| r.split_whitespace().nth(2))
        .unwrap_or_default()
        .to_owned();
    assert!(
        ip.starts_with("10.43."),
        "a cluster IP from k3s's range: {table}"
    );
    let dns = file(
        "dns.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: kube-dns}\nspec: {clusterIP: 10.43.0.10, ports: [{port: 53, protocol: UDP}]}\n",
    );
    let out = k.run(&["apply", "--validate=false", "-f", &dns]).await.ok();
    assert!(out.contains("service/kube-dns created"), "{out}");
    let again = file(
        "again.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {clusterIP: 10.43.0.10}\n",
    );
    let taken = k.run(&["apply", "--validate=false", "-f", &again]).await;
    assert_ne!(taken.code, 0);
    assert!(
        taken.stderr.contains("provided IP is already allocated"),
        "{}",
        taken.stderr
    );

    // A value of the wrong type: the decoder's 400, nothing stored.
    let typo = file(
        "typo.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: \"3\"}\n",
    );
    let refused = k.run(&["apply", "--validate=false", "-f", &typo]).await;
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("BadRequest")
            && refused
                .stderr
                .contains("Deployment in version \"v1\" cannot be handled as a Deployment"),
        "{}",
        refused.stderr
    );
    assert!(sim.get("apps/v1", "Deployment", "default", "d").is_none());
    // A value out of its range: validation's 422.
    let policy = file(
        "policy.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {restartPolicy: Sometimes, containers: [{name: c, image: x}]}\n",
    );
    let refused = k.run(&["apply", "--validate=false", "-f", &policy]).await;
    assert!(
        refused.stderr.contains("is invalid")
            && refused.stderr.contains("Unsupported value: \"Sometimes\""),
        "{}",
        refused.stderr
    );
    assert!(sim.get("v1", "Pod", "default", "q").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_deployment_through_the_scale_subresource() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    k.run(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ])
    .await
    .ok();
    let replicas = |sim: &KubeSim| {
        sim.get("apps/v1", "Deployment", "default", "web").unwrap()["spec"]["replicas"].clone()
    };

    let out = k
        .run(&["scale", "deployment", "web", "--replicas=3"])
        .await
        .ok();
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    assert_eq!(replicas(&sim), 3);
    assert_eq!(
        sim.get("apps/v1", "Deployment", "default", "web").unwrap()["metadata"]["generation"],
        2,
        "a replicas change is a spec change"
    );

    // --current-replicas makes kubectl read the Scale and PUT it back.
    let out = k
        .run(&[
            "scale",
            "deployment",
            "web",
            "--current-replicas=3",
            "--replicas=1",
        ])
        .await
        .ok();
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    assert_eq!(replicas(&sim), 1);
    let stale = k
        .run(&[
            "scale",
            "deployment",
            "web",
            "--current-replicas=3",
            "--replicas=5",
        ])
        .await;
    assert_ne!(stale.code, 0, "{}", stale.stdout);
    assert_eq!(replicas(&sim), 1);
    assert!(
        sim.request_count("get", "deployments.apps/scale") >= 1,
        "{:?}",
        sim.requests()
    );
    let scale: Value = serde_json::from_str(
        &k.run(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ])
        .await
        .ok(),
    )
    .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=web");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_whoami_and_can_i() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    let out = k.run(&["auth", "whoami"]).await.ok();
    assert!(row(&out, &["Username", "kubesim-admin"]).is_some(), "{out}");
    assert!(out.contains("system:masters"), "{out}");

    let out = k.run(&["auth", "can-i", "list", "pods"]).await.ok();
    assert_eq!(out.trim(), "yes");
    let out = k
        .run(&["auth", "can-i", "delete", "nodes", "--all-namespaces"])
        .await
        .ok();
    assert_eq!(out.trim(), "yes");
    let out = k.run(&["auth", "can-i", "get", "/healthz"]).await.ok();
    assert_eq!(out.trim(), "yes");
    assert_eq!(
        sim.request_count("create", "selfsubjectaccessreviews.authorization.k8s.io"),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_and_cluster_info_dump_read_what_the_kubelet_wrote() {
    let sim = KubeSim::start().await.unwrap();
    let Some(k) = kubectl(&sim) else { return };
    sim.create(&json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "coredns-1", "namespace": "kube-system"},
        "spec": {"nodeName": "node1", "containers": [{"name": "coredns", "image": "coredns:1.12"}]}}))
        .unwrap();
    sim.append_log(
        ("kube-system", "coredns-1"),
        "coredns",
        false,
        "[INFO] plugin/reload: Running\n",
    );
    sim.append_log(
        ("kube-system", "coredns-1"),
        "coredns",
        false,
        "[ERROR] plugin/errors: 2 example.org. A: read udp 10.42.0.5:53->1.1.1.1:53: i/o timeout\n",
    );

    let all = k
        .run(&["logs", "-n", "kube-system", "coredns-1"])
        .await
        .ok();
    assert!(
        all.starts_with("[INFO] plugin/reload") && all.contains("i/o timeout"),
        "{all}"
    );
    let last = k
        .run(&["logs", "-n", "kube-system", "coredns-1", "--tail=1"])
        .await
        .ok();
    assert!(last.starts_with("[ERROR]"), "{last}");
    let previous = k
        .run(&["logs", "-n", "kube-system", "coredns-1", "--previous"])
        .await;
    assert_ne!(previous.code, 0);
    assert!(
        previous.stderr.contains("previous terminated container"),
        "{}",
        previous.stderr
    );
    let missing = k.run(&["logs", "-n", "kube-system", "gone"]).await;
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);

    // The dump kubectl users attach to bug reports, read back by diagnose.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf-8");
    k.run(&[
        "cluster-info",
        "dump",
        "--namespaces",
        "kube-system",
        "--output-directory",
        out,
    ])
    .await
    .ok();
    let logs = std::fs::read_to_string(dir.path().join("kube-system/coredns-1/logs.txt"))
        .expect("the pod's logs in the dump");
    assert!(logs.contains("i/o timeout"), "{logs}");
    assert!(dir.path().join("kube-system/pods.json").exists());

    // A kind kubesim does not serve is an unknown resource, as upstream;
    // the Namespace's own status is not.
    let unknown = k
        .run(&["get", "--raw", "/api/v1/namespaces/kube-system/widgets"])
        .await;
    assert!(unknown.stderr.contains("NotFound"), "{}", unknown.stderr);
    let status = k
        .run(&["get", "--raw", "/api/v1/namespaces/kube-system/status"])
        .await
        .ok();
    assert!(status.contains("\"kind\":\"Namespace\""), "{status}");
}
