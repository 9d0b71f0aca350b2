//! Generators of Kubernetes objects shaped the way `kubectl get -o json`
//! prints them (defaults filled in by the API server included), for the
//! fixtures and the scale benchmark.

#![allow(dead_code)]

use serde_json::{Value, json};

/// Deterministic UUID-looking id from a seed (FNV-1a based).
pub fn uid(seed: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut parts = [0u64; 2];
    for (i, p) in parts.iter_mut().enumerate() {
        for b in seed.bytes().chain([i as u8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        *p = h;
    }
    let hex = format!("{:016x}{:016x}", parts[0], parts[1]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A node.
pub struct NodeB<'a> {
    pub name: &'a str,
    pub cidr: &'a str,
    pub ip: &'a str,
    pub boot_id: String,
    /// `True`, `False` or `Unknown`.
    pub ready: &'a str,
    pub ready_since: &'a str,
    pub created: &'a str,
}

impl NodeB<'_> {
    pub fn build(&self) -> Value {
        let name = self.name;
        let ready_reason = match self.ready {
            "True" => ("KubeletReady", "kubelet is posting ready status"),
            "False" => ("KubeletNotReady", "container runtime is down"),
            _ => ("NodeStatusUnknown", "Kubelet stopped posting node status."),
        };
        let mut spec = json!({"providerID": format!("k3s://{name}")});
        if !self.cidr.is_empty() {
            spec["podCIDR"] = json!(self.cidr);
            spec["podCIDRs"] = json!([self.cidr]);
        }
        if self.ready != "True" {
            spec["taints"] = json!([
                {"effect": "NoSchedule", "key": "node.kubernetes.io/unreachable", "timeAdded": self.ready_since},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "timeAdded": self.ready_since}
            ]);
        }
        let cond = |t: &str, s: &str, r: &str, m: &str| {
            json!({"type": t, "status": s, "reason": r, "message": m,
                   "lastHeartbeatTime": self.ready_since, "lastTransitionTime": self.ready_since})
        };
        let other = if self.ready == "Unknown" {
            "Unknown"
        } else {
            "False"
        };
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "annotations": {
                    "alpha.kubernetes.io/provided-node-ip": self.ip,
                    "flannel.alpha.coreos.com/backend-data": format!("{{\"VNI\":1,\"VtepMAC\":\"{}\"}}", mac(name)),
                    "flannel.alpha.coreos.com/backend-type": "vxlan",
                    "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                    "flannel.alpha.coreos.com/public-ip": self.ip,
                    "k3s.io/hostname": name,
                    "k3s.io/internal-ip": self.ip,
                    "k3s.io/node-args": "[\"server\"]",
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true"
                },
                "creationTimestamp": self.created,
                "finalizers": ["wrangler.cattle.io/node"],
                "labels": {
                    "beta.kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/instance-type": "k3s",
                    "beta.kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "node-role.kubernetes.io/control-plane": "true",
                    "node-role.kubernetes.io/master": "true",
                    "node.kubernetes.io/instance-type": "k3s"
                },
                "name": name,
                "resourceVersion": "918273",
                "uid": uid(name)
            },
            "spec": spec,
            "status": {
                "addresses": [{"address": self.ip, "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
                "allocatable": {"cpu": "4", "ephemeral-storage": "95069439022", "memory": "16242424Ki", "pods": "110"},
                "capacity": {"cpu": "4", "ephemeral-storage": "97725392Ki", "memory": "16242424Ki", "pods": "110"},
                "conditions": [
                    cond("MemoryPressure", other, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    cond("DiskPressure", other, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    cond("PIDPressure", other, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    cond("Ready", self.ready, ready_reason.0, ready_reason.1)
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": self.boot_id,
                    "containerRuntimeVersion": "containerd://1.7.23-k3s2",
                    "kernelVersion": "6.6.63",
                    "kubeProxyVersion": "v1.31.4+k3s1",
                    "kubeletVersion": "v1.31.4+k3s1",
                    "machineID": uid(&format!("machine-{name}")).replace('-', ""),
                    "operatingSystem": "linux",
                    "osImage": "NixOS 24.11 (Vicuna)",
                    "systemUUID": uid(&format!("system-{name}"))
                }
            }
        })
    }
}

fn mac(seed: &str) -> String {
    let u = uid(seed).replace('-', "");
    format!(
        "{}:{}:{}:{}:{}:{}",
        &u[0..2],
        &u[2..4],
        &u[4..6],
        &u[6..8],
        &u[8..10],
        &u[10..12]
    )
}

/// What a pod is doing.
#[derive(Clone)]
pub enum State {
    /// Running and Ready.
    Running,
    /// Waiting in ContainerCreating (sandbox or volume trouble).
    Creating,
    /// CrashLoopBackOff with the last termination message.
    CrashLoop {
        exit: i64,
        message: String,
        restarts: i64,
    },
    /// ImagePullBackOff / ErrImagePull.
    ImagePull { reason: String, message: String },
    /// Pending, unscheduled.
    Unschedulable { message: String },
    /// Running but not Ready.
    NotReady,
    /// Deleted by the taint manager while the node was away: kubectl `Unknown`.
    Unknown { deleted: String },
    /// Being deleted: kubectl `Terminating`.
    Terminating { deleted: String },
    /// Failed by graceful node shutdown.
    Shutdown,
    /// Completed job pod.
    Completed,
    /// Containers waiting after the node rebooted (DaemonSet pod kept).
    RestartingAfterReboot,
    /// The kubelet back after a reboot shows the containers the reboot
    /// killed as terminated (`Unknown`, 255), with the restarts counted before.
    KilledByReboot { restarts: i64 },
}

/// A pod.
#[derive(Clone)]
pub struct PodB {
    pub namespace: String,
    pub name: String,
    pub node: String,
    /// (kind, name) of the controller.
    pub owner: Option<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub containers: Vec<(String, String)>,
    pub state: State,
    pub start: String,
    pub claims: Vec<String>,
    pub host_network: bool,
    pub ip: String,
}

impl PodB {
    /// A pod of a Deployment (through its ReplicaSet).
    pub fn deployment(
        ns: &str,
        deploy: &str,
        hash: &str,
        suffix: &str,
        node: &str,
        image: &str,
    ) -> Self {
        let mut p = PodB::bare(ns, &format!("{deploy}-{hash}-{suffix}"), node, image);
        p.owner = Some(("ReplicaSet".into(), format!("{deploy}-{hash}")));
        p.labels.push(("pod-template-hash".into(), hash.into()));
        p.labels
            .push(("app.kubernetes.io/name".into(), deploy.into()));
        p.labels
            .push(("app.kubernetes.io/instance".into(), deploy.into()));
        p.containers[0].0 = deploy.to_string();
        p
    }
    /// A pod of a DaemonSet.
    pub fn daemonset(ns: &str, ds: &str, suffix: &str, node: &str, image: &str) -> Self {
        let mut p = PodB::bare(ns, &format!("{ds}-{suffix}"), node, image);
        p.owner = Some(("DaemonSet".into(), ds.into()));
        p.labels.push(("app".into(), ds.into()));
        p.labels
            .push(("controller-revision-hash".into(), "7d9f8b6c5".into()));
        p.containers[0].0 = ds.to_string();
        p
    }
    /// A pod of a StatefulSet.
    pub fn statefulset(ns: &str, sts: &str, ordinal: u32, node: &str, image: &str) -> Self {
        let mut p = PodB::bare(ns, &format!("{sts}-{ordinal}"), node, image);
        p.owner = Some(("StatefulSet".into(), sts.into()));
        p.labels.push(("app.kubernetes.io/name".into(), sts.into()));
        p.labels
            .push(("app.kubernetes.io/instance".into(), sts.into()));
        p.labels.push((
            "statefulset.kubernetes.io/pod-name".into(),
            format!("{sts}-{ordinal}"),
        ));
        p.containers[0].0 = sts.to_string();
        p
    }
    /// A pod without owner.
    pub fn bare(ns: &str, name: &str, node: &str, image: &str) -> Self {
        PodB {
            namespace: ns.into(),
            name: name.into(),
            node: node.into(),
            owner: None,
            labels: Vec::new(),
            containers: vec![("main".into(), image.into())],
            state: State::Running,
            start: "2026-01-10T09:00:00Z".into(),
            claims: Vec::new(),
            host_network: false,
            ip: String::new(),
        }
    }
    pub fn state(mut self, s: State) -> Self {
        self.state = s;
        self
    }
    pub fn start(mut self, t: &str) -> Self {
        self.start = t.into();
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.retain(|(kk, _)| kk != k);
        self.labels.push((k.into(), v.into()));
        self
    }
    pub fn claim(mut self, c: &str) -> Self {
        self.claims.push(c.into());
        self
    }
    pub fn container(mut self, name: &str, image: &str) -> Self {
        self.containers.push((name.into(), image.into()));
        self
    }
    pub fn host_network(mut self) -> Self {
        self.host_network = true;
        self
    }
    pub fn ip(mut self, ip: &str) -> Self {
        self.ip = ip.into();
        self
    }

    pub fn build(&self) -> Value {
        let t = self.start.as_str();
        let labels: serde_json::Map<String, Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let mut meta = json!({
            "annotations": {
                "checksum/config": uid(&format!("cfg/{}", self.name)).replace('-', ""),
                "kubectl.kubernetes.io/restartedAt": "2026-01-02T10:00:00Z",
                "prometheus.io/port": "9090",
                "prometheus.io/scrape": "true"
            },
            "creationTimestamp": t,
            "labels": labels,
            "name": self.name,
            "namespace": self.namespace,
            "resourceVersion": "4471",
            "uid": uid(&format!("pod/{}/{}/{}", self.namespace, self.name, t)),
        });
        if let Some((kind, name)) = &self.owner {
            let api = match kind.as_str() {
                "Job" => "batch/v1",
                "InstanceManager" => "longhorn.io/v1beta2",
                _ => "apps/v1",
            };
            meta["generateName"] = json!(format!("{}-", name));
            meta["ownerReferences"] = json!([{
                "apiVersion": api, "blockOwnerDeletion": true, "controller": true,
                "kind": kind, "name": name, "uid": uid(&format!("{kind}/{}/{name}", self.namespace))
            }]);
        }
        let mut volumes = vec![json!({
            "name": "kube-api-access-abcde",
            "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}
            ]}
        })];
        let mut mounts = vec![
            json!({"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-abcde", "readOnly": true}),
        ];
        for (i, c) in self.claims.iter().enumerate() {
            volumes.push(
                json!({"name": format!("data-{i}"), "persistentVolumeClaim": {"claimName": c}}),
            );
            mounts.push(json!({"mountPath": format!("/data/{i}"), "name": format!("data-{i}")}));
        }
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|(n, img)| {
                let probe = |path: &str, delay: u32| {
                    json!({"failureThreshold": 3, "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
                           "initialDelaySeconds": delay, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1})
                };
                json!({
                    "args": ["--log-level=info", "--metrics-addr=:9090", "--health-addr=:8080"],
                    "env": [
                        {"name": "TZ", "value": "America/Chicago"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
                        {"name": "GOMEMLIMIT", "valueFrom": {"resourceFieldRef": {"divisor": "0", "resource": "limits.memory"}}}
                    ],
                    "image": img, "imagePullPolicy": "IfNotPresent", "name": n,
                    "livenessProbe": probe("/healthz", 15),
                    "readinessProbe": probe("/readyz", 5),
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}, {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
                    "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "50m", "memory": "128Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "volumeMounts": mounts
                })
            })
            .collect();
        let app = self
            .labels
            .iter()
            .find(|(k, _)| k == "app.kubernetes.io/name" || k == "app")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut spec = json!({
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}}, "topologyKey": "kubernetes.io/hostname"}, "weight": 100}]}},
            "containers": containers,
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ],
            "volumes": volumes
        });
        if !self.node.is_empty() {
            spec["nodeName"] = json!(self.node);
        }
        if self.host_network {
            spec["hostNetwork"] = json!(true);
        }
        let cond = |ty: &str, st: &str| json!({"lastProbeTime": null, "lastTransitionTime": t, "status": st, "type": ty});
        let running = |name: &str, img: &str, ready: bool, restarts: i64| {
            json!({"containerID": format!("containerd://{}", uid(name).replace('-', "")), "image": img,
                   "imageID": format!("{img}@sha256:{}", uid(img).replace('-', "")), "lastState": {},
                   "name": name, "ready": ready, "restartCount": restarts, "started": true,
                   "state": {"running": {"startedAt": t}}})
        };
        let waiting =
            |name: &str, img: &str, reason: &str, message: &str, restarts: i64, last: Value| {
                let mut w = json!({"reason": reason});
                if !message.is_empty() {
                    w["message"] = json!(message);
                }
                json!({"image": img, "imageID": "", "lastState": last, "name": name, "ready": false,
                   "restartCount": restarts, "started": false, "state": {"waiting": w}})
            };
        let (phase, reason, conds, statuses, deleted): (&str, Option<&str>, Vec<Value>, Vec<Value>, Option<&str>) = match &self.state {
            State::Running => (
                "Running",
                None,
                vec![cond("PodReadyToStartContainers", "True"), cond("Initialized", "True"), cond("Ready", "True"), cond("ContainersReady", "True"), cond("PodScheduled", "True")],
                self.containers.iter().map(|(n, i)| running(n, i, true, 0)).collect(),
                None,
            ),
            State::NotReady => (
                "Running",
                None,
                vec![cond("PodReadyToStartContainers", "True"), cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
                self.containers.iter().map(|(n, i)| running(n, i, false, 0)).collect(),
                None,
            ),
            State::Creating => (
                "Pending",
                None,
                vec![cond("PodReadyToStartContainers", "False"), cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
                self.containers.iter().map(|(n, i)| waiting(n, i, "ContainerCreating", "", 0, json!({}))).collect(),
                None,
            ),
            State::RestartingAfterReboot => (
                "Running",
                None,
                vec![cond("PodReadyToStartContainers", "False"), cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
                self.containers
                    .iter()
                    .map(|(n, i)| {
                        waiting(n, i, "ContainerCreating", "", 1, json!({"terminated": {"exitCode": 255, "reason": "Unknown", "startedAt": t, "finishedAt": t}}))
                    })
                    .collect(),
                None,
            ),
            State::KilledByReboot { restarts } => (
                "Running",
                None,
                vec![cond("PodReadyToStartContainers", "False"), cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
                self.containers
                    .iter()
                    .map(|(n, i)| {
                        json!({"image": i, "imageID": "", "lastState": {}, "name": n, "ready": false, "restartCount": restarts, "started": false,
                               "state": {"terminated": {"containerID": format!("containerd://{}", uid(n).replace('-', "")), "exitCode": 255, "reason": "Unknown", "startedAt": t, "finishedAt": t}}})
                    })
                    .collect(),
                None,
            ),
            State::CrashLoop { exit, message, restarts } => (
                "Running",
                None,
                vec![cond("PodReadyToStartContainers", "True"), cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
                self.containers
                    .iter()
                    .map(|(n, i)| {
                        waiting(
                            n,
                            i,
                            "CrashLoopBackOff",
                            &format!("back-off 5m0s restarting failed container={n} pod={}_{}({})", self.name, self.namespace, uid(&self.name)),
                            *restarts,
                            json!({"terminated": {"containerID": format!("containerd://{}", uid(n).replace('-', "")), "exitCode": exit, "finishedAt": t, "message": message, "reason": "Error", "startedAt": t}}),
                        )
                    })
                    .collect(),
                None,
            ),
            State::ImagePull { reason, message } => (
                "Pending",
                None,
                vec![cond("PodReadyToStartContainers", "True"), cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
                self.containers.iter().map(|(n, i)| waiting(n, i, reason, message, 0, json!({}))).collect(),
                None,
            ),
            State::Unschedulable { message } => (
                "Pending",
                None,
                vec![json!({"lastProbeTime": null, "lastTransitionTime": t, "message": message, "reason": "Unschedulable", "status": "False", "type": "PodScheduled"})],
                Vec::new(),
                None,
            ),
            State::Unknown { deleted } => (
                "Running",
                Some("NodeLost"),
                vec![cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "True"), cond("PodScheduled", "True"), json!({"lastProbeTime": null, "lastTransitionTime": t, "message": "Taint manager: deleting due to NoExecute taint", "reason": "DeletionByTaintManager", "status": "True", "type": "DisruptionTarget"})],
                self.containers.iter().map(|(n, i)| running(n, i, false, 0)).collect(),
                Some(deleted.as_str()),
            ),
            State::Terminating { deleted } => (
                "Running",
                None,
                vec![cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "True"), cond("PodScheduled", "True")],
                self.containers.iter().map(|(n, i)| running(n, i, false, 0)).collect(),
                Some(deleted.as_str()),
            ),
            State::Shutdown => (
                "Failed",
                Some("Terminated"),
                vec![cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
                self.containers
                    .iter()
                    .map(|(n, i)| json!({"image": i, "imageID": "", "lastState": {}, "name": n, "ready": false, "restartCount": 0, "started": false, "state": {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": t, "finishedAt": t}}}))
                    .collect(),
                None,
            ),
            State::Completed => (
                "Succeeded",
                None,
                vec![cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False"), cond("PodScheduled", "True")],
                self.containers
                    .iter()
                    .map(|(n, i)| json!({"image": i, "imageID": "", "lastState": {}, "name": n, "ready": false, "restartCount": 0, "started": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t, "finishedAt": t}}}))
                    .collect(),
                None,
            ),
        };
        if let Some(d) = deleted {
            meta["deletionTimestamp"] = json!(d);
            meta["deletionGracePeriodSeconds"] = json!(30);
        }
        let mut status = json!({
            "conditions": conds,
            "phase": phase,
            "qosClass": "Burstable",
        });
        if !self.node.is_empty() {
            status["hostIP"] = json!("192.168.1.10");
            status["startTime"] = json!(t);
            if !statuses.is_empty() {
                status["containerStatuses"] = json!(statuses);
            }
        }
        if !self.ip.is_empty() {
            status["podIP"] = json!(self.ip);
            status["podIPs"] = json!([{"ip": self.ip}]);
        }
        if let Some(r) = reason {
            status["reason"] = json!(r);
            if r == "Terminated" {
                status["message"] =
                    json!("Pod was terminated in response to imminent node shutdown.");
            }
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status})
    }
}

/// A core/v1 event as the kubelet or a controller records it.
#[allow(clippy::too_many_arguments)]
pub fn event(
    namespace: &str,
    (kind, obj_ns, name): (&str, &str, &str),
    reason: &str,
    type_: &str,
    message: &str,
    count: i64,
    first: &str,
    last: &str,
    source: (&str, &str),
) -> Value {
    let ev_name = format!("{name}.{:x}", {
        let u = uid(&format!("{reason}/{name}/{first}/{message}"));
        u64::from_str_radix(&u.replace('-', "")[..12], 16).unwrap_or(0)
    });
    let mut src = json!({"component": source.0});
    if !source.1.is_empty() {
        src["host"] = json!(source.1);
    }
    let mut involved = json!({"apiVersion": if kind == "Pod" || kind == "Node" { "v1" } else { "apps/v1" }, "kind": kind, "name": name, "uid": uid(&format!("{kind}/{obj_ns}/{name}"))});
    if !obj_ns.is_empty() {
        involved["namespace"] = json!(obj_ns);
    }
    json!({
        "apiVersion": "v1",
        "count": count,
        "eventTime": null,
        "firstTimestamp": first,
        "involvedObject": involved,
        "kind": "Event",
        "lastTimestamp": last,
        "message": message,
        "metadata": {"creationTimestamp": first, "name": ev_name, "namespace": namespace, "resourceVersion": "77812", "uid": uid(&ev_name)},
        "reason": reason,
        "reportingComponent": source.0,
        "reportingInstance": source.1,
        "source": src,
        "type": type_
    })
}

/// The same event as events.k8s.io/v1 prints it.
pub fn event_v1(core: &Value) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": core["metadata"],
        "regarding": core["involvedObject"],
        "reason": core["reason"],
        "note": core["message"],
        "type": core["type"],
        "deprecatedCount": core["count"],
        "deprecatedFirstTimestamp": core["firstTimestamp"],
        "deprecatedLastTimestamp": core["lastTimestamp"],
        "deprecatedSource": core["source"],
        "reportingController": core["source"]["component"],
        "reportingInstance": core["source"]["host"],
        "eventTime": null
    })
}

pub fn service(ns: &str, name: &str, ip: &str, selector: &[(&str, &str)]) -> Value {
    let sel: serde_json::Map<String, Value> = selector
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "uid": uid(&format!("svc/{ns}/{name}")), "creationTimestamp": "2026-01-02T10:00:00Z"},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                 "selector": sel, "sessionAffinity": "None", "type": "ClusterIP"},
        "status": {"loadBalancer": {}}})
}

/// An EndpointSlice with (ip, node, ready) endpoints.
pub fn slice(ns: &str, svc: &str, endpoints: &[(&str, &str, bool)]) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(ip, node, ready)| json!({"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": false}, "nodeName": node}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "endpoints": eps,
        "metadata": {"name": format!("{svc}-x7k2p"), "namespace": ns, "labels": {"kubernetes.io/service-name": svc, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}, "uid": uid(&format!("eps/{ns}/{svc}"))},
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
}

pub fn pvc(ns: &str, name: &str, pv: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "uid": uid(&format!("pvc/{ns}/{name}"))},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}, "storageClassName": "longhorn", "volumeMode": "Filesystem", "volumeName": pv},
        "status": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"}, "phase": "Bound"}})
}

pub fn pv(name: &str, ns: &str, claim: &str, driver: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "uid": uid(&format!("pv/{name}"))},
        "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"},
                 "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": claim, "namespace": ns},
                 "csi": {"driver": driver, "fsType": "ext4", "volumeHandle": name, "volumeAttributes": {"numberOfReplicas": "3"}},
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "longhorn", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}})
}

pub fn csinode(node: &str, drivers: &[&str]) -> Value {
    let d: Vec<Value> = drivers
        .iter()
        .map(|d| json!({"name": d, "nodeID": node, "topologyKeys": null}))
        .collect();
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": node, "uid": uid(&format!("csinode/{node}"))}, "spec": {"drivers": d}})
}

pub fn csidriver(name: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": name}, "spec": {"attachRequired": true, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent"]}})
}

/// A Flux object with its Ready condition.
pub fn flux(
    kind: &str,
    ns: &str,
    name: &str,
    ready: bool,
    reason: &str,
    message: &str,
    extra_spec: Value,
) -> Value {
    let group = match kind {
        "HelmRelease" => "helm.toolkit.fluxcd.io/v2",
        "Kustomization" => "kustomize.toolkit.fluxcd.io/v1",
        _ => "source.toolkit.fluxcd.io/v1",
    };
    json!({"apiVersion": group, "kind": kind,
        "metadata": {"name": name, "namespace": ns, "uid": uid(&format!("{kind}/{ns}/{name}")), "generation": 3},
        "spec": extra_spec,
        "status": {"conditions": [{"lastTransitionTime": "2026-01-31T07:19:02Z", "message": message, "observedGeneration": 3,
                                    "reason": reason, "status": if ready { "True" } else { "False" }, "type": "Ready"}],
                   "observedGeneration": 3}})
}

/// A snapshot document holding full objects (any kind; the loader sorts them).
pub fn snapshot_doc(collected_at: &str, source: &str, objects: &[Value]) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert("apiVersion".into(), json!("rebootguard.io/v1alpha1"));
    doc.insert("kind".into(), json!("Snapshot"));
    doc.insert(
        "metadata".into(),
        json!({"collectedAt": collected_at, "source": source}),
    );
    let field = |kind: &str, api: &str| -> &'static str {
        match kind {
            "Node" => "nodes",
            "Pod" => "pods",
            "Event" => "events",
            "Service" => "services",
            "EndpointSlice" => "endpointSlices",
            "PersistentVolumeClaim" => "persistentVolumeClaims",
            "PersistentVolume" => "persistentVolumes",
            "VolumeAttachment" => "volumeAttachments",
            "CSINode" => "csiNodes",
            "CSIDriver" => "csiDrivers",
            "ValidatingWebhookConfiguration" => "validatingWebhookConfigurations",
            "MutatingWebhookConfiguration" => "mutatingWebhookConfigurations",
            "APIService" => "apiServices",
            "Lease" => "leases",
            _ if rebootguard_diagnose::snapshot::is_kept_custom(api, kind) => "custom",
            other => panic!("fixture has an unexpected kind {other}"),
        }
    };
    for name in [
        "nodes",
        "pods",
        "events",
        "services",
        "endpointSlices",
        "persistentVolumeClaims",
        "persistentVolumes",
        "volumeAttachments",
        "csiNodes",
        "csiDrivers",
        "validatingWebhookConfigurations",
        "mutatingWebhookConfigurations",
        "apiServices",
        "leases",
        "custom",
    ] {
        doc.insert(name.into(), json!([]));
    }
    for o in objects {
        let f = field(
            o["kind"].as_str().unwrap_or(""),
            o["apiVersion"].as_str().unwrap_or(""),
        );
        doc[f].as_array_mut().expect("array").push(o.clone());
    }
    Value::Object(doc)
}

/// The same objects as `kubectl get ... -A -o json` prints them (one List).
pub fn list_doc(objects: &[Value]) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": objects, "metadata": {"resourceVersion": ""}})
}
