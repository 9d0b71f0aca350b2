//! The workload controllers of k3s's server, as the lab runs them. For each
//! scenario workload the API holds what a real cluster holds: a Deployment
//! and the ReplicaSet it made (`<deployment>-<pod-template-hash>`, owned by
//! the Deployment), or a DaemonSet, created once with the uids kubesim
//! gives them. Their pods are made as those controllers make them: named
//! `<replicaset>-<5 chars>` or `<daemonset>-<5 chars>`, labelled with the
//! template's hash, owned by their controller (`controller: true`), one
//! live pod per replica slot, bound to its node while the node is
//! schedulable. A `bare` workload's pods have no owner and are created
//! once: nothing recreates a bare pod that is gone.
//!
//! The lab's own bookkeeping rides on two labels every pod carries: `app`
//! (the workload) and `rebootguard.lab/slot` (the replica). The workload
//! objects' status (`replicas`, `readyReplicas`, `numberReady`...) follows
//! their pods.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::api::{self, Api};
use crate::lab::Ctx;
use crate::scenario::{Behaviour, Controller, Workload};

/// The alphabet of the apiserver's generated names and hashes
/// (`rand.SafeEncodeString`: no vowels, no look-alike digits).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The lab's replica-slot label.
pub const SLOT: &str = "rebootguard.lab/slot";

/// Who owns a workload's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A Deployment's ReplicaSet, `<deployment>-<hash>`.
    ReplicaSet {
        /// The ReplicaSet's name.
        name: String,
        /// Its uid, as kubesim gave it.
        uid: String,
        /// `pod-template-hash`.
        hash: String,
    },
    /// A DaemonSet.
    DaemonSet {
        /// The DaemonSet's name.
        name: String,
        /// Its uid, as kubesim gave it.
        uid: String,
        /// `controller-revision-hash`.
        hash: String,
    },
    /// Nobody: a bare pod.
    Nobody,
}

/// (namespace, workload, slot): one replica.
type SlotKey = (String, String, String);

/// The controllers' state across ticks.
#[derive(Debug, Default)]
pub struct Controllers {
    /// Each workload's owner, once its objects exist.
    owners: HashMap<(String, String), Owner>,
    /// Bare pods already made (never made again).
    made: BTreeSet<SlotKey>,
    /// The status last written per object, so unchanged ones are not
    /// written again.
    written: HashMap<(String, String, String), Value>,
}

impl Controllers {
    /// One pass: the objects of workloads that lack them, a pod for every
    /// slot without a live one whose node is schedulable, the objects'
    /// status.
    pub fn tick(&mut self, ctx: &Ctx) {
        let pods = ctx.api.pods();
        let live = live_slots(&pods);
        let nodes = ctx.api.nodes();
        // The scheduler's filter: Ready, not cordoned, taints tolerated.
        let schedulable = |name: &str, tolerations: &[Value]| {
            nodes
                .iter()
                .any(|n| api::name(n) == name && api::schedulable(n, tolerations))
        };
        for w in &ctx.scenario.workloads {
            let Some(owner) = self.owner(&ctx.api, w) else {
                continue;
            };
            for (slot, node) in ctx.scenario.placements(w).iter().enumerate() {
                let key = (w.namespace.clone(), w.name.clone(), slot.to_string());
                if live.contains(&key) || self.made.contains(&key) {
                    continue;
                }
                let pod = pod_for(w, slot, node, &owner, &suffix());
                let tolerations = pod
                    .pointer("/spec/tolerations")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !schedulable(node, &tolerations) {
                    continue;
                }
                if ctx.api.create(&pod).is_ok() && owner == Owner::Nobody {
                    self.made.insert(key);
                }
            }
            self.status(ctx, w, &owner, &pods);
        }
    }

    /// The workload's owner, creating its objects the first time.
    fn owner(&mut self, api: &Api, w: &Workload) -> Option<Owner> {
        let key = (w.namespace.clone(), w.name.clone());
        if let Some(o) = self.owners.get(&key) {
            return Some(o.clone());
        }
        let owner = create_objects(api, w)?;
        self.owners.insert(key, owner.clone());
        Some(owner)
    }

    /// Writes the objects' status from their pods, when it changed.
    fn status(&mut self, ctx: &Ctx, w: &Workload, owner: &Owner, pods: &[Value]) {
        let mine: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                api::namespace(p) == w.namespace
                    && p.pointer("/metadata/labels/app").and_then(Value::as_str)
                        == Some(w.name.as_str())
                    && !api::terminating(p)
            })
            .collect();
        let (have, ready) = (
            mine.len(),
            mine.iter().filter(|p| api::pod_running(p)).count(),
        );
        let want = ctx.scenario.placements(w).len();
        let writes = match owner {
            Owner::ReplicaSet { name, .. } => vec![
                (
                    "Deployment",
                    w.name.clone(),
                    deployment_status(want, have, ready),
                ),
                ("ReplicaSet", name.clone(), replicaset_status(have, ready)),
            ],
            Owner::DaemonSet { name, .. } => {
                vec![(
                    "DaemonSet",
                    name.clone(),
                    daemonset_status(want, have, ready),
                )]
            }
            Owner::Nobody => vec![],
        };
        for (kind, name, body) in writes {
            let key = (kind.to_owned(), w.namespace.clone(), name.clone());
            if self.written.get(&key) == Some(&body) {
                continue;
            }
            if ctx
                .api
                .merge_status("apps/v1", kind, &w.namespace, &name, &body)
                .is_ok()
            {
                self.written.insert(key, body);
            }
        }
    }
}

/// The slots that have a pod not being deleted.
fn live_slots(pods: &[Value]) -> BTreeSet<SlotKey> {
    pods.iter()
        .filter(|p| !api::terminating(p))
        .map(|p| {
            let label = |k: &str| {
                p.pointer(&format!("/metadata/labels/{}", k.replace('/', "~1")))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            (api::namespace(p).to_owned(), label("app"), label(SLOT))
        })
        .collect()
}

/// A count as the apiserver writes it: zero is omitted (null removes it
/// in a merge patch).
fn count(n: usize) -> Value {
    if n == 0 { Value::Null } else { n.into() }
}

fn deployment_status(want: usize, have: usize, ready: usize) -> Value {
    json!({"status": {
        "observedGeneration": 1,
        "replicas": count(have),
        "updatedReplicas": count(have),
        "readyReplicas": count(ready),
        "availableReplicas": count(ready),
        "unavailableReplicas": count(want.saturating_sub(ready)),
    }})
}

fn replicaset_status(have: usize, ready: usize) -> Value {
    json!({"status": {
        "observedGeneration": 1,
        "replicas": have,
        "fullyLabeledReplicas": count(have),
        "readyReplicas": count(ready),
        "availableReplicas": count(ready),
    }})
}

fn daemonset_status(want: usize, have: usize, ready: usize) -> Value {
    json!({"status": {
        "observedGeneration": 1,
        "desiredNumberScheduled": want,
        "currentNumberScheduled": have,
        "updatedNumberScheduled": count(have),
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": count(ready),
        "numberUnavailable": count(want.saturating_sub(ready)),
    }})
}

/// Creates the workload's objects (or finds them, made by an earlier
/// lab task) and returns who owns its pods; `None` while the API refuses.
fn create_objects(api: &Api, w: &Workload) -> Option<Owner> {
    let template = template(w);
    let hash = template_hash(&template);
    match w.controller() {
        Controller::Bare => Some(Owner::Nobody),
        Controller::DaemonSet => {
            let ds = ensure(api, &daemonset(w, &template))?;
            Some(Owner::DaemonSet {
                name: w.name.clone(),
                uid: uid(&ds)?,
                hash,
            })
        }
        Controller::Deployment => {
            let d = ensure(api, &deployment(w, &template))?;
            let rs = ensure(api, &replicaset(w, &template, &hash, &uid(&d)?))?;
            Some(Owner::ReplicaSet {
                name: api::name(&rs).to_owned(),
                uid: uid(&rs)?,
                hash,
            })
        }
    }
}

/// Creates `object`, or reads it back when it exists already.
fn ensure(api: &Api, object: &Value) -> Option<Value> {
    api.create(object).ok().or_else(|| {
        api.sim.get(
            object["apiVersion"].as_str()?,
            object["kind"].as_str()?,
            object.pointer("/metadata/namespace")?.as_str()?,
            object.pointer("/metadata/name")?.as_str()?,
        )
    })
}

fn uid(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The workload's pod template (what its controller stamps pods from).
pub fn template(w: &Workload) -> Value {
    let mut labels = json!({"app": w.name});
    if w.behaviour == Behaviour::Dns {
        labels["k8s-app"] = "kube-dns".into();
    }
    let container = match w.behaviour {
        Behaviour::Flux | Behaviour::LonghornManager => "manager",
        Behaviour::LonghornCsi => "longhorn-csi-plugin",
        _ => w.name.as_str(),
    };
    let mut spec = json!({
        "containers": [{"name": container, "image": format!("lab/{}:1", w.name)}],
    });
    if w.behaviour == Behaviour::Volume {
        spec["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": format!("{}-data", w.name)}}]);
    }
    json!({"metadata": {"labels": labels}, "spec": spec})
}

/// `pod-template-hash` as the Deployment controller computes it: the
/// template's 32-bit FNV-1a hash, its decimal digits spelled in the safe
/// alphabet (so `7d9f8c6b5`-like).
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// A generated name's random tail: 5 characters of the safe alphabet.
pub fn suffix() -> String {
    let hex = crate::lab::random_hex(10);
    (0..5)
        .map(|i| {
            let byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
            char::from(ALPHABET[usize::from(byte) % ALPHABET.len()])
        })
        .collect()
}

fn deployment(w: &Workload, template: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": w.name, "namespace": w.namespace, "labels": {"app": w.name},
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": w.replicas.unwrap_or(1), "selector": {"matchLabels": {"app": w.name}},
                 "template": template},
    })
}

fn replicaset(w: &Workload, template: &Value, hash: &str, deployment_uid: &str) -> Value {
    let replicas = w.replicas.unwrap_or(1);
    let mut template = template.clone();
    template["metadata"]["labels"]["pod-template-hash"] = hash.into();
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", w.name), "namespace": w.namespace,
            "labels": {"app": w.name, "pod-template-hash": hash},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                // maxSurge 25%, rounded up.
                "deployment.kubernetes.io/max-replicas": (replicas + replicas.div_ceil(4)).to_string(),
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name,
                                 "uid": deployment_uid, "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": w.name, "pod-template-hash": hash}},
                 "template": template},
    })
}

fn daemonset(w: &Workload, template: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": w.name, "namespace": w.namespace, "labels": {"app": w.name},
                     "annotations": {"deprecated.daemonset.template.generation": "1"}},
        "spec": {"selector": {"matchLabels": {"app": w.name}}, "template": template},
    })
}

/// A workload's pod for replica `slot`, already bound to `node` (the
/// scheduler's job done), named, labelled and owned as `owner` makes it.
pub fn pod_for(w: &Workload, slot: usize, node: &str, owner: &Owner, suffix: &str) -> Value {
    let template = template(w);
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": w.namespace, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
    });
    pod["metadata"]["labels"][SLOT] = slot.to_string().into();
    pod["spec"]["nodeName"] = node.into();
    // What the DefaultTolerationSeconds admission plugin adds.
    pod["spec"]["tolerations"] = json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    ]);
    let (name, controller) = match owner {
        Owner::ReplicaSet { name, uid, hash } => {
            pod["metadata"]["labels"]["pod-template-hash"] = hash.as_str().into();
            (format!("{name}-{suffix}"), Some(("ReplicaSet", name, uid)))
        }
        Owner::DaemonSet { name, uid, hash } => {
            let labels = &mut pod["metadata"]["labels"];
            labels["controller-revision-hash"] = hash.as_str().into();
            labels["pod-template-generation"] = "1".into();
            // DaemonSet pods tolerate a cordon: a drain leaves them and
            // they come back on a cordoned node after its reboot.
            if let Some(t) = pod["spec"]["tolerations"].as_array_mut() {
                t.push(json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}));
            }
            (format!("{name}-{suffix}"), Some(("DaemonSet", name, uid)))
        }
        Owner::Nobody if one_pod(w) => (w.name.clone(), None),
        Owner::Nobody => (format!("{}-{slot}", w.name), None),
    };
    pod["metadata"]["name"] = name.into();
    if let Some((kind, name, uid)) = controller {
        pod["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid,
            "controller": true, "blockOwnerDeletion": true
        }]);
    }
    pod
}

/// Whether a bare workload is one pod (named as the workload).
fn one_pod(w: &Workload) -> bool {
    w.replicas.unwrap_or(1) == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(replicas: Option<usize>, bare: bool) -> Workload {
        Workload {
            namespace: "kube-system".into(),
            name: "coredns".into(),
            behaviour: Behaviour::Dns,
            replicas,
            nodes: vec![],
            bare,
        }
    }

    fn rs() -> Owner {
        Owner::ReplicaSet {
            name: "coredns-7d9f8c6b5".into(),
            uid: "u-rs".into(),
            hash: "7d9f8c6b5".into(),
        }
    }

    #[test]
    fn replicaset_pods_are_named_labelled_and_owned_as_the_controller_makes_them() {
        let p = pod_for(&workload(Some(1), false), 0, "boromir", &rs(), "x2b4z");
        assert_eq!(p["metadata"]["name"], "coredns-7d9f8c6b5-x2b4z");
        assert_eq!(p["metadata"]["labels"]["k8s-app"], "kube-dns");
        assert_eq!(p["metadata"]["labels"]["app"], "coredns");
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], "7d9f8c6b5");
        assert_eq!(p["metadata"]["labels"][SLOT], "0");
        assert_eq!(p["spec"]["nodeName"], "boromir");
        assert_eq!(
            p["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "coredns-7d9f8c6b5",
                    "uid": "u-rs", "controller": true, "blockOwnerDeletion": true}])
        );
    }

    #[test]
    fn daemonset_pods_tolerate_a_cordon_and_bare_pods_have_no_owner() {
        let ds = Owner::DaemonSet {
            name: "svclb".into(),
            uid: "u-ds".into(),
            hash: "5c6b8d".into(),
        };
        let p = pod_for(&workload(None, false), 2, "samwise", &ds, "abcde");
        assert_eq!(p["metadata"]["name"], "svclb-abcde");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u-ds");
        assert!(p.to_string().contains("node.kubernetes.io/unschedulable"));

        let bare = pod_for(&workload(None, true), 0, "samwise", &Owner::Nobody, "abcde");
        assert_eq!(bare["metadata"]["name"], "coredns");
        assert!(bare["metadata"].get("ownerReferences").is_none());
        let several = pod_for(&workload(Some(2), true), 1, "samwise", &Owner::Nobody, "x");
        assert_eq!(several["metadata"]["name"], "coredns-1");
    }

    #[test]
    fn the_template_hash_is_stable_and_in_the_safe_alphabet() {
        let t = template(&workload(Some(1), false));
        let h = template_hash(&t);
        assert_eq!(h, template_hash(&t));
        assert!((1..=10).contains(&h.len()), "{h}");
        assert!(h.bytes().all(|b| ALPHABET.contains(&b)), "{h}");
        let other = template(&Workload {
            name: "metrics-server".into(),
            ..workload(Some(1), false)
        });
        assert_ne!(h, template_hash(&other));
        let s = suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| ALPHABET.contains(&b)), "{s}");
    }

    #[test]
    fn the_replicaset_is_owned_by_its_deployment_and_selects_by_hash() {
        let w = workload(Some(3), false);
        let t = template(&w);
        let rs = replicaset(&w, &t, "abc", "u-d");
        assert_eq!(rs["metadata"]["name"], "coredns-abc");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["uid"], "u-d");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            rs["spec"]["selector"]["matchLabels"],
            json!({"app": "coredns", "pod-template-hash": "abc"})
        );
        assert_eq!(
            rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
            "abc"
        );
        assert_eq!(
            rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
            "4"
        );
        assert_eq!(deployment(&w, &t)["spec"]["replicas"], 3);
    }
}
