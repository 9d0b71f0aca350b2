//! Generated objects shaped like a real cluster's, for scale tests and
//! benchmarks (here and in the crates that test against kubesim).
//!
//! Names are deterministic: node `node-00042`, pods in namespaces `ns-0` to
//! `ns-49` ([`NAMESPACES`]), so separate runs and separate tools see the same
//! cluster.

use serde_json::json;

/// The namespaces [`pod`] and [`event`] use: create them first.
pub const NAMESPACES: usize = 50;

/// Node `i`, Ready, with a podCIDR, flannel annotations and a boot ID
/// (about 2 KB of JSON).
pub fn node(i: usize) -> serde_json::Value {
    let name = format!("node-{i:05}");
    let conditions: Vec<serde_json::Value> = ["MemoryPressure", "DiskPressure", "PIDPressure"]
        .iter()
        .map(|t| json!({"type": t, "status": "False", "reason": "KubeletHasSufficient", "lastHeartbeatTime": "2026-01-31T07:00:00Z", "lastTransitionTime": "2026-01-31T07:00:00Z"}))
        .chain(std::iter::once(json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": "2026-01-31T07:00:00Z", "lastTransitionTime": "2026-01-31T07:00:00Z"})))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "k3s"},
                     "annotations": {"flannel.alpha.coreos.com/backend-type": "vxlan", "flannel.alpha.coreos.com/public-ip": format!("192.168.{}.{}", i / 250, i % 250 + 1)}},
        "spec": {"podCIDR": format!("10.{}.{}.0/24", 42 + i / 256, i % 256), "podCIDRs": [format!("10.{}.{}.0/24", 42 + i / 256, i % 256)]},
        "status": {
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": format!("192.168.{}.{}", i / 250, i % 250 + 1)}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "nodeInfo": {"kubeletVersion": "v1.33.1+k3s1", "kubeProxyVersion": "", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-18-amd64",
                         "containerRuntimeVersion": "containerd://1.7.27-k3s1", "operatingSystem": "linux", "architecture": "amd64",
                         "bootID": format!("b00t-{i}"), "machineID": format!("m{i}"), "systemUUID": format!("s{i}")}
        }
    })
}

/// Pod `i` of a cluster of `nodes` nodes, shaped like a real Deployment
/// replica (about 2.5 KB of JSON): namespace `ns-{i % 50}`, on `node-{i % nodes}`.
pub fn pod(i: usize, nodes: usize) -> serde_json::Value {
    let app = format!("app-{}", i % 500);
    let node = format!("node-{:05}", i % nodes);
    let conditions: Vec<serde_json::Value> = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-31T07:00:00Z"}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{app}-7d9f8c6b5-{i:06}"), "namespace": format!("ns-{}", i % NAMESPACES),
                     "labels": {"app": app, "pod-template-hash": "7d9f8c6b5", "tier": "backend"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-7d9f8c6b5"), "uid": "0b7c5d9e-0000-4000-8000-000000000000", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"nodeName": node, "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccountName": "default",
                 "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                 "containers": [{"name": "main", "image": "registry.example/app:1.2.3", "imagePullPolicy": "IfNotPresent",
                                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                                 "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                                 "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]}],
                 "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                                 {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "qosClass": "Burstable", "podIP": format!("10.{}.{}.{}", 42 + (i % nodes) / 256, (i % nodes) % 256, i % 250 + 2),
                   "hostIP": "192.168.0.1", "startTime": "2026-01-31T07:00:00Z",
                   "conditions": conditions,
                   "containerStatuses": [{"name": "main", "ready": true, "started": true, "restartCount": 0, "image": "registry.example/app:1.2.3",
                                          "imageID": "registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                                          "containerID": format!("containerd://{i:064x}"), "state": {"running": {"startedAt": "2026-01-31T07:00:01Z"}}}]}
    })
}

/// Event `i` about pod `i % pods`: mostly Normal (`Pulled`, `Started`),
/// every tenth a Warning `BackOff`, as a busy cluster's event stream looks.
pub fn event(i: usize, pods: usize, nodes: usize) -> serde_json::Value {
    let target = i % pods.max(1);
    let app = format!("app-{}", target % 500);
    let pod = format!("{app}-7d9f8c6b5-{target:06}");
    let namespace = format!("ns-{}", target % NAMESPACES);
    let (kind, reason, message) = match i % 10 {
        0 => (
            "Warning",
            "BackOff",
            "Back-off restarting failed container main in pod".to_owned(),
        ),
        n if n % 2 == 1 => (
            "Normal",
            "Pulled",
            "Container image \"registry.example/app:1.2.3\" already present on machine".to_owned(),
        ),
        _ => ("Normal", "Started", "Started container main".to_owned()),
    };
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{pod}.{i:016x}"), "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": format!("ns-{}", target % NAMESPACES), "fieldPath": "spec.containers{main}"},
        "reason": reason, "message": message, "type": kind, "count": 1 + (i % 7),
        "source": {"component": "kubelet", "host": format!("node-{:05}", target % nodes.max(1))},
        "firstTimestamp": "2026-01-31T07:00:00Z", "lastTimestamp": "2026-01-31T07:10:00Z",
        "reportingComponent": "kubelet", "reportingInstance": format!("node-{:05}", target % nodes.max(1)),
    })
}
