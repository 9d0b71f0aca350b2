//! The doctor's roles (`deploy/kubernetes/doctor`) against the real binary:
//! `rebootguard diagnose`, `snapshot` and `clean-stale --yes` run as a
//! kubeconfig user in the base's groups, against kubesim enforcing exactly
//! the base's RBAC (applied with the real kubectl) and serving every kind
//! diagnose reads. They work, and every request they make is one a rule
//! grants and every rule is used; with one permission less, diagnose
//! degrades and names the refusal (Nodes or Pods: it cannot diagnose, and
//! says why), and clean-stale deletes nothing and names the verb it lacks.

#[path = "common/manifests.rs"]
mod manifests;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use kubesim::KubeSim;
use kubesim::registry::CustomResource;
use manifests::{documents, have_kubectl, kustomize};
use rebootguard_diagnose::clean;
use rebootguard_diagnose::snapshot::{KINDS, Kind};
use serde_json::{Value, json};

const BASE: &str = "deploy/kubernetes/doctor";
const DOCTORS: &str = "rebootguard:doctors";
const CLEANERS: &str = "rebootguard:stale-pod-cleaners";

/// The node every scenario has, and its current boot.
const NODE: &str = "boromir";
const BOOT_ID: &str = "7c1e5f0a-2b4d-4e8f-9a36-d5b0c2e1f470";

/// A permission: `(apiGroup, resource, verb)`.
type Grant = (String, String, String);

/// `(apiGroup, resource, verb)` for every rule of `role`.
fn grants(role: &Value) -> BTreeSet<Grant> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(rule["resourceNames"].is_null(), "lists take no names");
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

fn grant(group: &str, resource: &str, verb: &str) -> Grant {
    (group.to_owned(), resource.to_owned(), verb.to_owned())
}

/// A resource as kubesim counts its requests: `pods`, `leases.coordination.k8s.io`.
fn counted(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// What diagnose lists: the cluster-wide kinds, and the one namespaced
/// (Leases, in kube-node-lease).
fn kinds_listed() -> (BTreeSet<Grant>, BTreeSet<Grant>) {
    let (namespaced, cluster): (Vec<_>, Vec<_>) = KINDS.iter().partition(|k| k.namespace.is_some());
    let set = |kinds: Vec<&Kind>| {
        kinds
            .into_iter()
            .map(|k| grant(k.group, k.plural, "list"))
            .collect()
    };
    (set(cluster), set(namespaced))
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_doctor_base_grants_exactly_what_diagnose_lists_and_clean_stale_deletes() {
    // The roles follow `snapshot::KINDS`: a kind added there without its
    // rule (or a rule left behind) fails here, not in a user's cluster.
    if !have_kubectl("the_doctor_base_grants_exactly_what_diagnose_lists_and_clean_stale_deletes") {
        return;
    }
    let objects = documents(&kustomize(BASE));
    let (cluster, namespaced) = kinds_listed();
    let doctor = find(&objects, "ClusterRole", "rebootguard-doctor");
    assert_eq!(grants(doctor), cluster);
    let leases = find(&objects, "Role", "rebootguard-doctor");
    assert_eq!(leases["metadata"]["namespace"], "kube-node-lease");
    assert_eq!(
        namespaced,
        [grant("coordination.k8s.io", "leases", "list")].into()
    );
    assert_eq!(grants(leases), namespaced);
    let cleaner = find(&objects, "ClusterRole", "rebootguard-stale-pod-cleaner");
    assert_eq!(grants(cleaner), [grant("", "pods", "delete")].into());

    let roles: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .collect();
    assert_eq!(roles.len(), 3, "no other roles");
    for role in &roles {
        for (group, resource, verb) in grants(role) {
            assert!(
                ![&group, &resource, &verb].contains(&&"*".to_owned()),
                "no wildcards"
            );
            assert!(!["secrets", "configmaps"].contains(&resource.as_str()));
            assert!(
                !["get", "watch"].contains(&verb.as_str()),
                "no get, no watch"
            );
        }
        let kind = role["kind"].as_str().expect("kind");
        let name = role["metadata"]["name"].as_str().expect("name");
        let binding = find(&objects, &format!("{kind}Binding"), name);
        assert_eq!(
            binding["metadata"]["namespace"],
            role["metadata"]["namespace"]
        );
        assert_eq!(binding["roleRef"]["kind"], kind);
        assert_eq!(binding["roleRef"]["name"], name);
        let group = if name == "rebootguard-stale-pod-cleaner" {
            CLEANERS
        } else {
            DOCTORS
        };
        assert_eq!(
            binding["subjects"],
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}])
        );
        assert_eq!(
            role["metadata"]["labels"]["app.kubernetes.io/component"],
            "doctor"
        );
    }
    assert_eq!(objects.len(), 6, "three roles and their bindings");
}

/// kubesim enforcing RBAC over HTTPS, serving every kind diagnose reads
/// (the Flux source kinds and APIServices too, which it does not serve by
/// default), with the doctor base applied as the administrator.
async fn cluster(dir: &Path) -> KubeSim {
    let mut custom_resources = CustomResource::defaults();
    for kind in KINDS.iter().filter(|k| k.optional) {
        if !custom_resources
            .iter()
            .any(|c| c.group == kind.group && c.plural == kind.plural)
        {
            custom_resources.push(CustomResource::namespaced(
                kind.group,
                kind.version,
                kind.plural,
                kind.kind,
            ));
        }
    }
    // Built into every real API server (kube-aggregator), not into kubesim.
    custom_resources.push(CustomResource {
        namespaced: false,
        ..CustomResource::namespaced("apiregistration.k8s.io", "v1", "apiservices", "APIService")
    });
    let sim = KubeSim::with_options(kubesim::Options {
        rbac: true,
        tls: true,
        custom_resources,
        ..kubesim::Options::default()
    })
    .await
    .expect("kubesim");
    manifests::apply(&sim, &dir.join("cache"), BASE).await;
    sim
}

/// A kubeconfig for user `name` in `groups`.
fn user(sim: &KubeSim, dir: &Path, name: &str, groups: &[&str]) -> PathBuf {
    let token = sim.user_token(name, groups);
    manifests::kubeconfig(sim, dir, name, &token)
}

/// The real binary with `args`, and nothing from this machine's kubeconfig.
async fn run(args: &[&str]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .env_remove("REBOOTGUARD_KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("rebootguard finished within 60s")
    .expect("run rebootguard")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn said(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn parsed(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", said(out)))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `minutes` before now, as the API writes times.
fn ago(minutes: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The Node, Ready for ten minutes in its current boot.
fn seed_node(sim: &KubeSim) {
    sim.create(&json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "uid": "0b7f3c52-9d1e-4a6b-8e2f-1c5d7a9b3e60"},
        "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": ago(0), "lastTransitionTime": ago(10)}],
            "nodeInfo": {"bootID": BOOT_ID}
        }
    }))
    .expect("seed node");
}

/// A pod of Deployment `web`'s ReplicaSet on `node`.
fn web_pod(name: &str, node: &str, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "default",
            "uid": format!("uid-{name}"),
            "creationTimestamp": ago(60),
            "labels": {"app": "web", "pod-template-hash": "6d8f9b7c4"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-6d8f9b7c4", "uid": "9f2a4c6e-1b3d-4f5a-8c7e-2d4b6a8c0e13",
                                 "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx:1.27"}]},
        "status": status
    })
}

/// A core/v1 Event about `object` (`kind`, `namespace`, `name`).
fn event(name: &str, object: (&str, &str, &str), reason: &str, message: &str) -> Value {
    let (kind, namespace, object_name) = object;
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": if namespace.is_empty() { "default" } else { namespace }},
        "involvedObject": {"kind": kind, "namespace": namespace, "name": object_name},
        "reason": reason, "message": message, "type": "Warning", "count": 12,
        "firstTimestamp": ago(9), "lastTimestamp": ago(1),
        "source": {"component": "kubelet", "host": NODE}
    })
}

/// The incident in small: a Ready node whose pod gets no sandbox because
/// flannel's subnet.env is missing.
fn seed_sick(sim: &KubeSim) {
    seed_node(sim);
    let pod = "web-6d8f9b7c4-x2x7q";
    sim.create(&web_pod(
        pod,
        NODE,
        json!({"phase": "Pending", "containerStatuses": [{
            "name": "web", "image": "nginx:1.27", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
    ))
    .expect("seed pod");
    sim.create(&event(
        &format!("{pod}.1826a1b2c3d4e5f6"),
        ("Pod", "default", pod),
        "FailedCreatePodSandBox",
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network \
         for sandbox \"4f1c\": plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: \
         open /run/flannel/subnet.env: no such file or directory",
    ))
    .expect("seed event");
}

/// Asserts the requests the binary made (its user agent, not kubectl's):
/// a list of each of `kinds`, the `also` calls, nothing else but discovery
/// of the optional kinds' groups.
fn made_exactly(sim: &KubeSim, kinds: &[Kind], also: &[(&str, &str)]) {
    let calls: BTreeSet<(String, String)> = sim
        .requests_by_agent()
        .into_iter()
        .filter(|(ua, ..)| ua.starts_with("rebootguard/"))
        .map(|(_, verb, resource, _)| (verb, resource))
        .collect();
    let mut expected: BTreeSet<(String, String)> = kinds
        .iter()
        .map(|k| ("list".to_owned(), counted(k.group, k.plural)))
        .collect();
    expected.extend(also.iter().map(|(v, r)| ((*v).to_owned(), (*r).to_owned())));
    let resource_calls: BTreeSet<(String, String)> = calls
        .iter()
        .filter(|(_, r)| !r.starts_with('/'))
        .cloned()
        .collect();
    assert_eq!(resource_calls, expected, "all calls: {calls:?}");
    let groups: BTreeSet<String> = kinds
        .iter()
        .filter(|k| k.optional)
        .map(|k| format!("/apis/{}", k.group))
        .collect();
    for (verb, resource) in calls.iter().filter(|(_, r)| r.starts_with('/')) {
        assert!(
            verb == "get" && groups.contains(resource),
            "{verb} {resource}: {calls:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnose_and_snapshot_work_with_exactly_the_doctor_role() {
    // A user in `rebootguard:doctors` and nothing else: diagnose finds the
    // first domino with nothing missing, snapshot writes the file without a
    // warning, and between them they made exactly the base's calls.
    if !have_kubectl("diagnose_and_snapshot_work_with_exactly_the_doctor_role") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = cluster(dir.path()).await;
    seed_sick(&sim);
    let kubeconfig = user(&sim, dir.path(), "dora", &[DOCTORS]);

    let out = run(&["diagnose", "--kubeconfig", path(&kubeconfig), "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "problems found\n{}", said(&out));
    let report = parsed(&out);
    assert_eq!(report["degraded"], json!([]), "{}", said(&out));
    assert_eq!(report["verdict"], "problemsFound");
    let root = &report["roots"][0];
    assert_eq!(
        root["cause"]["cni"]["type"], "flannelSubnetEnvMissing",
        "{report:#}"
    );
    assert_eq!(root["subjects"], json!([NODE]));
    assert!(!text(&out.stderr).contains("forbidden"), "{}", said(&out));

    let file = dir.path().join("cluster.json");
    let out = run(&[
        "snapshot",
        "-o",
        path(&file),
        "--kubeconfig",
        path(&kubeconfig),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!text(&out.stderr).contains("warning"), "{}", said(&out));
    let snapshot: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("snapshot file")).expect("json");
    assert!(
        snapshot["missing"].as_array().is_none_or(Vec::is_empty),
        "{}",
        snapshot["missing"]
    );
    assert_eq!(snapshot["nodes"][0]["metadata"]["name"], NODE);

    // Every kind, each through its rule: every rule of the base is used.
    made_exactly(&sim, &KINDS, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnose_without_one_permission_degrades_and_names_it() {
    // The doctor role less `list` on core Events: diagnose still runs to
    // the end, says it is degraded with the API's refusal (who, which verb,
    // which resource) in the JSON, on the terminal and in its log, and
    // still finds the root through events.k8s.io. Less `list` on Nodes:
    // nothing to judge, exit 2, naming the refusal.
    if !have_kubectl("diagnose_without_one_permission_degrades_and_names_it") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = cluster(dir.path()).await;
    seed_sick(&sim);
    let kubeconfig = user(&sim, dir.path(), "dora", &[DOCTORS]);
    let doctor = ("ClusterRole", "", "rebootguard-doctor");
    manifests::revoke(&sim, doctor, "", "events", "list");
    let refusal = "User \"dora\" cannot list resource \"events\" in API group \"\"";

    let out = run(&["diagnose", "--kubeconfig", path(&kubeconfig), "-o", "json"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "degraded, not aborted\n{}",
        said(&out)
    );
    let report = parsed(&out);
    let degraded = report["degraded"].as_array().expect("degraded");
    assert_eq!(degraded.len(), 1, "{degraded:?}");
    assert_eq!(degraded[0]["kind"], "v1 Event");
    let reason = degraded[0]["reason"].as_str().expect("reason");
    assert!(reason.contains(refusal), "{reason}");
    assert_eq!(
        report["roots"][0]["cause"]["cni"]["type"], "flannelSubnetEnvMissing",
        "found through events.k8s.io: {report:#}"
    );
    assert!(
        text(&out.stderr).contains(refusal),
        "logged\n{}",
        said(&out)
    );

    let out = run(&["diagnose", "--kubeconfig", path(&kubeconfig)]).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let human = text(&out.stdout);
    let line = human
        .lines()
        .find(|l| l.starts_with("degraded: could not collect v1 Event"))
        .unwrap_or_else(|| panic!("no degraded line\n{}", said(&out)));
    assert!(line.contains(refusal), "{line}");
    assert!(human.contains("subnet.env missing"), "{human}");

    // snapshot writes what it could, and warns about the rest.
    let file = dir.path().join("cluster.json");
    let out = run(&[
        "snapshot",
        "-o",
        path(&file),
        "--kubeconfig",
        path(&kubeconfig),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("warning: not collected: v1 Event") && l.contains(refusal)),
        "{}",
        said(&out)
    );

    // Without the Nodes there is no cluster to judge: exit 2, saying why.
    manifests::revoke(&sim, doctor, "", "nodes", "list");
    let out = run(&["diagnose", "--kubeconfig", path(&kubeconfig), "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.lines().any(
            |l| l.starts_with("error: could not diagnose: cannot list v1 Node")
                && l.contains("User \"dora\" cannot list resource \"nodes\" in API group \"\"")
        ),
        "{}",
        said(&out)
    );
    assert!(out.stdout.is_empty(), "no report: {}", said(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_verdict_without_one_permission_still_says_what_was_not_read() {
    // Nothing wrong in the cluster, core Events unreadable: healthy (exit
    // 0, as documented), and the one line a healthy report prints still
    // names the kind it could not read; the log says why.
    if !have_kubectl("a_healthy_verdict_without_one_permission_still_says_what_was_not_read") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = cluster(dir.path()).await;
    seed_node(&sim);
    sim.create(&web_pod("web-6d8f9b7c4-alive", NODE, running()))
        .expect("seed pod");
    let kubeconfig = user(&sim, dir.path(), "dora", &[DOCTORS]);
    manifests::revoke(
        &sim,
        ("ClusterRole", "", "rebootguard-doctor"),
        "",
        "events",
        "list",
    );

    let out = run(&["diagnose", "--kubeconfig", path(&kubeconfig), "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let report = parsed(&out);
    assert_eq!(report["verdict"], "healthy");
    assert_eq!(report["degraded"][0]["kind"], "v1 Event", "{report:#}");

    let out = run(&["diagnose", "--kubeconfig", path(&kubeconfig)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("✓ healthy:")
            && stdout.contains("(degraded: could not collect v1 Event)"),
        "{}",
        said(&out)
    );
    assert!(
        text(&out.stderr).contains("User \"dora\" cannot list resource \"events\""),
        "{}",
        said(&out)
    );
}

/// A running, ready pod status.
fn running() -> Value {
    json!({"phase": "Running", "startTime": ago(50),
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "web", "image": "nginx:1.27", "imageID": "", "ready": true,
            "restartCount": 0, "state": {"running": {"startedAt": ago(50)}}}]})
}

/// Two pods a reboot left stale, both for a force delete, beside a
/// healthy one: one on a Node that is gone, one the graceful shutdown
/// stopped before the node's `Rebooted` into its current boot.
fn seed_stale(sim: &KubeSim) -> [&'static str; 2] {
    seed_node(sim);
    let gone = "web-6d8f9b7c4-gone1";
    let shutdown = "web-6d8f9b7c4-shut1";
    let running = running();
    sim.create(&web_pod(gone, "faramir", running.clone()))
        .expect("seed pod");
    sim.create(&web_pod(
        shutdown,
        NODE,
        json!({"phase": "Failed", "reason": "NodeShutdown", "startTime": ago(50),
               "message": "Pod was terminated in response to imminent node shutdown."}),
    ))
    .expect("seed pod");
    sim.create(&web_pod("web-6d8f9b7c4-alive", NODE, running))
        .expect("seed pod");
    sim.create(&event(
        &format!("{NODE}.1826a1b2c3d4e5f7"),
        ("Node", "", NODE),
        "Rebooted",
        &format!("Node {NODE} has been rebooted, boot id: {BOOT_ID}"),
    ))
    .expect("seed event");
    [gone, shutdown]
}

fn pod_names(sim: &KubeSim) -> BTreeSet<String> {
    sim.list("v1", "Pod", Some("default"))
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_stale_works_as_a_doctor_and_cleaner() {
    // A user in both groups: the dry run plans both stale pods for a force
    // delete, `--yes` deletes exactly them (UID preconditions, grace 0),
    // and it listed only what the plan reads (so a role without the rest
    // of diagnose's kinds gets no warning about them).
    if !have_kubectl("clean_stale_works_as_a_doctor_and_cleaner") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = cluster(dir.path()).await;
    let stale = seed_stale(&sim);
    let kubeconfig = user(&sim, dir.path(), "carol", &[DOCTORS, CLEANERS]);

    let out = run(&["clean-stale", "--kubeconfig", path(&kubeconfig), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let plan = parsed(&out);
    let planned: BTreeSet<(String, String)> = plan["plan"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["action"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        planned,
        stale
            .iter()
            .map(|n| ((*n).to_owned(), "\"forceDelete\"".to_owned()))
            .collect(),
        "{plan:#}"
    );

    let out = run(&["clean-stale", "--kubeconfig", path(&kubeconfig), "--yes"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        text(&out.stdout).contains("deleted 2 of 2"),
        "{}",
        said(&out)
    );
    assert_eq!(pod_names(&sim), ["web-6d8f9b7c4-alive".to_owned()].into());

    // Only what the plan reads (Nodes, pods, core Events), and the deletes.
    let read: Vec<Kind> = KINDS.into_iter().filter(clean::reads).collect();
    assert_eq!(read.len(), 3);
    made_exactly(&sim, &read, &[("delete", "pods")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_stale_without_delete_names_the_refusal_and_deletes_nothing() {
    // A doctor who is no cleaner, then a cleaner whose role lost `delete`:
    // the plan is made, each delete is refused, the refusal names the user,
    // the verb and the resource, exit 1 (an operation failed), no pod gone.
    if !have_kubectl("clean_stale_without_delete_names_the_refusal_and_deletes_nothing") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = cluster(dir.path()).await;
    let stale = seed_stale(&sim);
    let before = pod_names(&sim);

    let doctor = user(&sim, dir.path(), "dora", &[DOCTORS]);
    let out = run(&["clean-stale", "--kubeconfig", path(&doctor), "--yes"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("deleted 0 of 2"), "{}", said(&out));
    for name in stale {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("failed: default/{name}: ")))
            .unwrap_or_else(|| panic!("no failure for {name}\n{}", said(&out)));
        assert!(
            line.contains("User \"dora\" cannot delete resource \"pods\" in API group \"\""),
            "{line}"
        );
    }
    assert_eq!(pod_names(&sim), before);

    manifests::revoke(
        &sim,
        ("ClusterRole", "", "rebootguard-stale-pod-cleaner"),
        "",
        "pods",
        "delete",
    );
    let cleaner = user(&sim, dir.path(), "carol", &[DOCTORS, CLEANERS]);
    let out = run(&[
        "clean-stale",
        "--kubeconfig",
        path(&cleaner),
        "--yes",
        "--json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let results = parsed(&out)["results"].clone();
    let results = results.as_array().expect("results");
    assert_eq!(results.len(), 2, "{results:?}");
    for result in results {
        assert_eq!(result["deleted"], false, "{result}");
        let error = result["error"].as_str().expect("error");
        assert!(
            error.contains("User \"carol\" cannot delete resource \"pods\" in API group \"\""),
            "{error}"
        );
    }
    assert_eq!(pod_names(&sim), before);
}
