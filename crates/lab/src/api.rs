//! The lab's side of the API: thin helpers over kubesim for the emulated
//! k3s, kubelet and controllers, and an event recorder that aggregates as
//! the client-go recorder does (`count`, `lastTimestamp`).
//!
//! The emulated components run in this process and call kubesim directly;
//! a node whose API is cut off (a fault) gets [`Error::Unreachable`] from
//! every call, as a real agent would get a refused connection.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{Api as KubeApi, ApiResource, DeleteParams, DynamicObject};
use kubesim::KubeSim;
use kubesim::patch::Kind;
use serde_json::{Value, json};

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node cannot reach the API server (injected).
    #[error("failed to reach the API server from {0}: connection refused")]
    Unreachable(String),
    /// kubesim refused the call.
    #[error("failed to {action}")]
    Call {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: Box<kubesim::Error>,
    },
    /// A graceful delete over HTTP failed.
    #[error("failed to delete pod {0} gracefully")]
    Delete(String, #[source] Box<kube::Error>),
}

/// An event's identity for aggregation: (namespace, object, reason, message).
type EventKey = (String, String, String, String);

/// The `User-Agent` of the lab's own HTTP requests to kubesim, so that
/// kubesim's per-agent counts tell them from a node agent's.
pub const USER_AGENT: &str = concat!("rebootguard-lab/", env!("CARGO_PKG_VERSION"));

/// Attempts of a read-modify-write that meets 409 Conflicts.
const CONFLICT_RETRIES: usize = 10;

/// kubesim plus the lab's event recorder.
pub struct Api {
    /// The API server.
    pub sim: KubeSim,
    events: Mutex<HashMap<EventKey, (String, u64)>>,
    seq: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("sim", &self.sim)
            .finish_non_exhaustive()
    }
}

/// Who reports an event (`source.component`, `source.host`).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// `kubelet`, `node-controller`, `attachdetach-controller`...
    pub component: &'a str,
    /// The node, for the kubelet.
    pub host: Option<&'a str>,
}

impl Api {
    /// Wraps a running kubesim.
    pub fn new(sim: KubeSim) -> Api {
        Api {
            sim,
            events: Mutex::new(HashMap::new()),
            seq: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Every pod.
    pub fn pods(&self) -> Vec<Value> {
        self.sim.list("v1", "Pod", None)
    }

    /// Pods bound to `node`.
    pub fn pods_on(&self, node: &str) -> Vec<Value> {
        self.pods()
            .into_iter()
            .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
            .collect()
    }

    /// One node.
    pub fn node(&self, name: &str) -> Option<Value> {
        self.sim.get("v1", "Node", "", name)
    }

    /// Every node.
    pub fn nodes(&self) -> Vec<Value> {
        self.sim.list("v1", "Node", None)
    }

    /// Merge-patches an object.
    pub fn merge(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
        body: &Value,
    ) -> Result<Value, Error> {
        self.sim
            .patch(api_version, kind, ns, name, Kind::Merge, body)
            .map_err(|source| Error::Call {
                action: format!("patch {kind} {ns}/{name}"),
                source: Box::new(source),
            })
    }

    /// Merge-patches an object's status.
    pub fn merge_status(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
        body: &Value,
    ) -> Result<Value, Error> {
        self.sim
            .patch_status(api_version, kind, ns, name, Kind::Merge, body)
            .map_err(|source| Error::Call {
                action: format!("patch the status of {kind} {ns}/{name}"),
                source: Box::new(source),
            })
    }

    /// Sets one condition in an object's `status.conditions` with a
    /// strategic merge patch on its status, which merges the list by
    /// `type`: conditions other writers own (the agent's `PodNetworkReady`)
    /// are left as they are, as the kubelet leaves them.
    pub fn set_condition(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
        condition: &Value,
    ) -> Result<Value, Error> {
        self.sim
            .patch_status(
                api_version,
                kind,
                ns,
                name,
                Kind::Strategic,
                &json!({"status": {"conditions": [condition]}}),
            )
            .map_err(|source| Error::Call {
                action: format!(
                    "set condition {} of {kind} {ns}/{name}",
                    condition["type"].as_str().unwrap_or("?")
                ),
                source: Box::new(source),
            })
    }

    /// Changes a Node's `spec.taints`, which is an atomic list (a merge
    /// replaces all of it): reads the Node, lets `change` edit the list,
    /// and writes it back with the read `resourceVersion` as a
    /// precondition, retrying on conflict, so taints others add meanwhile
    /// are never lost. Returns whether anything was written.
    pub fn change_taints(
        &self,
        node: &str,
        change: impl Fn(&mut Vec<Value>),
    ) -> Result<bool, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(current) = self.node(node) else {
                return Ok(false);
            };
            let before: Vec<Value> = current
                .pointer("/spec/taints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut after = before.clone();
            change(&mut after);
            if after == before {
                return Ok(false);
            }
            let rv = current
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            let taints = if after.is_empty() {
                Value::Null
            } else {
                Value::Array(after)
            };
            let body = json!({"metadata": {"resourceVersion": rv}, "spec": {"taints": taints}});
            match self.sim.patch("v1", "Node", "", node, Kind::Merge, &body) {
                Ok(_) => return Ok(true),
                Err(kubesim::Error::Object(s)) if s.code == 409 && attempt < CONFLICT_RETRIES => {}
                Err(source) => {
                    return Err(Error::Call {
                        action: format!("change the taints of Node {node}"),
                        source: Box::new(source),
                    });
                }
            }
        }
    }

    /// Creates an object.
    pub fn create(&self, object: &Value) -> Result<Value, Error> {
        self.sim.create(object).map_err(|source| Error::Call {
            action: format!("create {}", describe(object)),
            source: Box::new(source),
        })
    }

    /// Creates or replaces an object.
    pub fn apply(&self, object: &Value) -> Result<Value, Error> {
        self.sim.apply(object).map_err(|source| Error::Call {
            action: format!("apply {}", describe(object)),
            source: Box::new(source),
        })
    }

    /// Deletes at once (grace 0): the kubelet confirming a pod is gone, or
    /// `kubectl delete --force --grace-period=0`.
    pub fn delete_now(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
    ) -> Result<(), Error> {
        self.sim
            .delete(api_version, kind, ns, name)
            .map_err(|source| Error::Call {
                action: format!("delete {kind} {ns}/{name}"),
                source: Box::new(source),
            })
    }

    /// Deletes a pod gracefully over HTTP, as the taint manager does: it
    /// stays `Terminating` until its kubelet confirms.
    pub async fn delete_pod_gracefully(
        &self,
        ns: &str,
        name: &str,
        grace: u32,
    ) -> Result<(), Error> {
        let mut config = self.sim.config();
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        ));
        let client = kube::Client::try_from(config).map_err(|source| Error::Call {
            action: "build a client".into(),
            source: Box::new(kubesim::Error::Client(source)),
        })?;
        let ar = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
        };
        let api: KubeApi<DynamicObject> = KubeApi::namespaced_with(client, ns, &ar);
        let params = DeleteParams {
            grace_period_seconds: Some(grace),
            ..DeleteParams::default()
        };
        api.delete(name, &params)
            .await
            .map(drop)
            .map_err(|e| Error::Delete(format!("{ns}/{name}"), Box::new(e)))
    }

    /// Records an event about `object` (a Node or Pod JSON), aggregating
    /// repeats into `count`; more than 10 distinct messages for the same
    /// reason get client-go's `(combined from similar events): ` prefix.
    pub fn event(
        &self,
        object: &Value,
        kind_type: &str,
        reason: &str,
        message: &str,
        source: Source<'_>,
    ) {
        let kind = object["kind"].as_str().unwrap_or("Pod").to_owned();
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let uid = object
            .pointer("/metadata/uid")
            .cloned()
            .unwrap_or(Value::Null);
        let now = kubesim::time::now();
        let key = (
            ns.clone(),
            name.clone(),
            reason.to_owned(),
            message.to_owned(),
        );
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((event_name, count)) = events.get_mut(&key) {
            *count += 1;
            let body = json!({"count": *count, "lastTimestamp": now});
            if self.merge("v1", "Event", &ns, event_name, &body).is_ok() {
                return;
            }
        }
        let similar = events
            .keys()
            .filter(|k| k.0 == ns && k.1 == name && k.2 == reason)
            .count();
        let combined = similar >= 10;
        let shown = if combined {
            format!("(combined from similar events): {message}")
        } else {
            message.to_owned()
        };
        // Past 10 similar events client-go keeps one aggregate event up to date.
        let aggregate = (
            ns.clone(),
            name.clone(),
            reason.to_owned(),
            "\0combined".to_owned(),
        );
        if combined && let Some((event_name, count)) = events.get_mut(&aggregate) {
            *count += 1;
            let body = json!({"count": *count, "lastTimestamp": now, "message": shown});
            if self.merge("v1", "Event", &ns, event_name, &body).is_ok() {
                return;
            }
        }
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let event_name = format!("{name}.{:016x}", 0x1800_0000_0000_0000u64 + n);
        let mut src = json!({"component": source.component});
        if let Some(h) = source.host {
            src["host"] = h.into();
        }
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": kind,
                "namespace": if kind == "Node" { Value::Null } else { ns.clone().into() },
                "name": name,
                "uid": uid,
            },
            "reason": reason,
            "message": shown,
            "type": kind_type,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": src,
            "reportingComponent": source.component,
            "reportingInstance": source.host.unwrap_or(""),
        });
        if self.sim.create(&event).is_ok() {
            events.insert(if combined { aggregate } else { key }, (event_name, 1));
        }
    }

    /// Every event with `reason`, oldest first by creation.
    pub fn events_with_reason(&self, reason: &str) -> Vec<Value> {
        self.sim
            .list("v1", "Event", None)
            .into_iter()
            .filter(|e| e["reason"].as_str() == Some(reason))
            .collect()
    }
}

/// The status of condition `kind` in an object's `status.conditions`.
pub fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(kind))?["status"]
        .as_str()
}

/// Whether a toleration tolerates a taint, as the scheduler and the taint
/// manager decide it: the effect must match unless the toleration leaves
/// it empty; an empty key with `Exists` tolerates every taint; `Exists`
/// ignores the value, `Equal` (the default) compares it.
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let effect = text(toleration, "effect");
    if !effect.is_empty() && effect != text(taint, "effect") {
        return false;
    }
    let key = text(toleration, "key");
    let exists = text(toleration, "operator") == "Exists";
    if key.is_empty() {
        return exists;
    }
    if key != text(taint, "key") {
        return false;
    }
    exists || text(toleration, "value") == text(taint, "value")
}

/// Whether the scheduler would bind a new pod with `tolerations` to
/// `node`: Ready, not cordoned, and every `NoSchedule`/`NoExecute` taint
/// tolerated (`PreferNoSchedule` only lowers a score).
pub fn schedulable(node: &Value, tolerations: &[Value]) -> bool {
    if condition(node, "Ready") != Some("True") {
        return false;
    }
    let cordoned = node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true);
    let unschedulable = json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"});
    if cordoned && !tolerations.iter().any(|t| tolerates(t, &unschedulable)) {
        return false;
    }
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")))
        .all(|taint| tolerations.iter().any(|t| tolerates(t, taint)))
}

/// `metadata.name`.
pub fn name(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.namespace`.
pub fn namespace(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
}

/// Whether the object is being deleted.
pub fn terminating(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some()
}

/// A pod that runs: phase Running and Ready.
pub fn pod_running(pod: &Value) -> bool {
    !terminating(pod)
        && pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && condition(pod, "Ready") == Some("True")
}

/// `Kind name` of an object, for error messages.
fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("object"),
        object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_node(taints: Value) -> Value {
        json!({"metadata": {"name": "n"}, "spec": {"taints": taints},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn scheduling_honours_taints_like_the_scheduler() {
        // The lab's pods tolerate not-ready and unreachable (NoExecute) only.
        let lab_pod = [
            json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
            json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
        ];
        let agent = json!({"key": "rebootguard.io/pod-network-unready", "effect": "NoSchedule"});
        let unreachable = json!({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"});
        assert!(schedulable(&ready_node(Value::Null), &lab_pod));
        assert!(schedulable(&ready_node(json!([unreachable])), &lab_pod));
        assert!(!schedulable(&ready_node(json!([agent])), &lab_pod));
        assert!(!schedulable(
            &ready_node(json!([unreachable, agent])),
            &lab_pod
        ));
        let soft = json!({"key": "x", "effect": "PreferNoSchedule"});
        assert!(schedulable(&ready_node(json!([soft])), &lab_pod));
        // A pod that tolerates everything goes anywhere Ready.
        assert!(schedulable(
            &ready_node(json!([agent])),
            &[json!({"operator": "Exists"})]
        ));
        // Values: Equal compares, Exists does not; effects must match when given.
        let valued = json!({"key": "k", "value": "a", "effect": "NoSchedule"});
        assert!(tolerates(&json!({"key": "k", "value": "a"}), &valued));
        assert!(!tolerates(&json!({"key": "k", "value": "b"}), &valued));
        assert!(tolerates(
            &json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"}),
            &valued
        ));
        assert!(!tolerates(
            &json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}),
            &valued
        ));
        assert!(!tolerates(
            &json!({"key": "", "operator": "Equal"}),
            &valued
        ));
        // Not Ready, or cordoned: no new pods.
        let mut n = ready_node(Value::Null);
        n["status"]["conditions"][0]["status"] = "Unknown".into();
        assert!(!schedulable(&n, &lab_pod));
        let mut n = ready_node(Value::Null);
        n["spec"]["unschedulable"] = true.into();
        assert!(!schedulable(&n, &lab_pod));
    }

    #[tokio::test]
    async fn conditions_and_taints_of_others_survive_our_writes() {
        let api = Api::new(KubeSim::start().await.unwrap());
        api.create(&json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "spec": {"taints": [{"key": "rebootguard.io/pod-network-unready", "effect": "NoSchedule"}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "PodNetworkReady", "status": "False", "reason": "SubnetEnvMissing"}]}}))
            .unwrap();
        api.set_condition(
            "v1",
            "Node",
            "",
            "n",
            &json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}),
        )
        .unwrap();
        let n = api.node("n").unwrap();
        assert_eq!(condition(&n, "Ready"), Some("Unknown"));
        assert_eq!(condition(&n, "PodNetworkReady"), Some("False"));
        assert_eq!(n["status"]["conditions"][1]["reason"], "SubnetEnvMissing");
        let unreachable = json!({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"});
        let add = |t: &mut Vec<Value>| {
            if !t.iter().any(|x| x["key"] == unreachable["key"]) {
                t.push(unreachable.clone());
            }
        };
        assert!(api.change_taints("n", add).unwrap());
        assert!(!api.change_taints("n", add).unwrap(), "no second write");
        let keys = |n: &Value| -> Vec<String> {
            n["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| t["key"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            keys(&api.node("n").unwrap()),
            [
                "rebootguard.io/pod-network-unready",
                "node.kubernetes.io/unreachable"
            ]
        );
        // A writer racing between our read and our write: its taint stays.
        let raced = std::sync::atomic::AtomicBool::new(false);
        api.change_taints("n", |t| {
            if !raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                api.sim
                    .patch(
                        "v1",
                        "Node",
                        "",
                        "n",
                        Kind::Merge,
                        &json!({"spec": {"taints": [
                        {"key": "rebootguard.io/pod-network-unready", "effect": "NoSchedule"},
                        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                        {"key": "other", "effect": "NoSchedule"}]}}),
                    )
                    .unwrap();
            }
            t.retain(|x| x["key"] != "node.kubernetes.io/unreachable");
        })
        .unwrap();
        assert_eq!(
            keys(&api.node("n").unwrap()),
            ["rebootguard.io/pod-network-unready", "other"]
        );
        api.change_taints("n", Vec::clear).unwrap();
        assert!(api.node("n").unwrap().pointer("/spec/taints").is_none());
        assert!(!api.change_taints("absent", Vec::clear).unwrap());
    }

    #[tokio::test]
    async fn events_aggregate_like_client_go() {
        let api = Api::new(KubeSim::start().await.unwrap());
        let pod =
            json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u1"}});
        let src = Source {
            component: "kubelet",
            host: Some("boromir"),
        };
        api.event(&pod, "Warning", "FailedCreatePodSandBox", "same", src);
        api.event(&pod, "Warning", "FailedCreatePodSandBox", "same", src);
        let e = api.events_with_reason("FailedCreatePodSandBox");
        assert_eq!((e.len(), e[0]["count"].as_u64()), (1, Some(2)));
        assert_eq!(e[0]["source"]["host"], "boromir");
        for i in 0..15 {
            api.event(
                &pod,
                "Warning",
                "FailedCreatePodSandBox",
                &format!("sandbox {i}"),
                src,
            );
        }
        let e = api.events_with_reason("FailedCreatePodSandBox");
        // 1 repeated + 9 distinct, then one aggregate for the other 6.
        assert_eq!(e.len(), 11, "{e:#?}");
        let agg: Vec<_> = e
            .iter()
            .filter(|e| {
                e["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("(combined from similar events): ")
            })
            .collect();
        assert_eq!(agg.len(), 1);
        assert_eq!(agg[0]["count"], 6);
        assert_eq!(
            agg[0]["message"],
            "(combined from similar events): sandbox 14"
        );
    }
}
