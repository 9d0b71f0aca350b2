//! Issue 11's proof on the lab: its workloads are real apps/v1 objects
//! (a Deployment and its ReplicaSet, DaemonSets) owning their pods as the
//! controllers do, and the real `rebootguard` binary, pointed at the lab's
//! API after a reboot that left stale pods, acts on those owners:
//! `clean-stale` force-deletes the stale pods a ReplicaSet or a DaemonSet
//! recreates, keeps the bare one until `--include-unowned`, and `diagnose`
//! groups the failing pods under their Deployment.
//!
//! The stale pods are the post-mortem's: theoden reboots with
//! `flannel-silent-skip`, so its Longhorn CSI plugin never runs again; the
//! pods that ran there with a Longhorn volume were evicted (`NodeLost`)
//! while it was down and stay `Unknown`, since the kubelet cannot unmount
//! their volumes without the driver (`[longhorn] unmount_needs_driver`). Needs root, Debian's CNI plugins and
//! the `rebootguard` binary (built here if missing).

use std::process::Command;
use std::time::Duration;

use rebootguard_lab::{Fault, Lab, Scenario, api};
use serde_json::Value;

mod common;
use common::{options, ready, wait};

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

/// Two nodes; theoden holds a Deployment's, a DaemonSet's and a bare pod
/// with Longhorn volumes, besides a plain Deployment on both nodes.
const SCENARIO: &str = r#"
name = "stale-pods"
time_scale = 30

[longhorn]
unmount_needs_driver = true

[[nodes]]
name = "samwise"

[[nodes]]
name = "theoden"

[[workloads]]
namespace = "longhorn-system"
name = "longhorn-manager"
behaviour = "longhorn-manager"

[[workloads]]
namespace = "longhorn-system"
name = "longhorn-csi-plugin"
behaviour = "longhorn-csi"

[[workloads]]
namespace = "apps"
name = "web"
replicas = 2

[[workloads]]
namespace = "apps"
name = "gitea"
behaviour = "volume"
replicas = 1
nodes = ["theoden"]

# A DaemonSet whose pods mount a (ReadWriteMany) Longhorn volume.
[[workloads]]
namespace = "apps"
name = "log-shipper"
behaviour = "volume"

# `kubectl run debug`: nothing recreates it.
[[workloads]]
namespace = "apps"
name = "debug"
behaviour = "volume"
bare = true
nodes = ["theoden"]
"#;

fn get(lab: &Lab, kind: &str, ns: &str, name: &str) -> Value {
    lab.ctx
        .api
        .sim
        .get("apps/v1", kind, ns, name)
        .unwrap_or_else(|| panic!("no {kind} {ns}/{name}"))
}

fn pods_of<'a>(pods: &'a [Value], app: &str) -> Vec<&'a Value> {
    pods.iter()
        .filter(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app))
        .collect()
}

fn owner(pod: &Value) -> (String, String, String) {
    let o = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(o["controller"], true, "{o}");
    let s = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
    (s("kind"), s("name"), s("uid"))
}

/// The objects behind the pods, and the pods' names, labels and owners.
fn assert_owned_like_a_real_cluster(lab: &Lab) {
    let pods = lab.ctx.api.pods();
    let deployment = get(lab, "Deployment", "apps", "web");
    let rs_list = lab.ctx.api.sim.list("apps/v1", "ReplicaSet", Some("apps"));
    let rs = rs_list
        .iter()
        .find(|r| r["metadata"]["labels"]["app"] == "web")
        .expect("web's ReplicaSet");
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .expect("hash");
    assert_eq!(api::name(rs), format!("web-{hash}"));
    let rs_owner = &rs["metadata"]["ownerReferences"][0];
    assert_eq!(rs_owner["kind"], "Deployment");
    assert_eq!(rs_owner["uid"], deployment["metadata"]["uid"]);
    assert_eq!(rs_owner["controller"], true);
    let web = pods_of(&pods, "web");
    assert_eq!(web.len(), 2);
    for p in web {
        let name = api::name(p);
        let tail = name.strip_prefix(&format!("web-{hash}-")).expect(name);
        assert_eq!(tail.len(), 5, "{name}");
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], hash);
        assert_eq!(
            owner(p),
            (
                "ReplicaSet".into(),
                api::name(rs).into(),
                rs["metadata"]["uid"].as_str().expect("uid").into()
            )
        );
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
    }
    let ds = get(lab, "DaemonSet", "apps", "log-shipper");
    for p in pods_of(&pods, "log-shipper") {
        assert!(api::name(p).starts_with("log-shipper-"), "{}", api::name(p));
        assert_eq!(owner(p).2, ds["metadata"]["uid"].as_str().expect("uid"));
    }
    let debug = pods_of(&pods, "debug");
    assert_eq!(api::name(debug[0]), "debug");
    assert!(debug[0]["metadata"].get("ownerReferences").is_none());
}

/// `rebootguard ARGS... --kubeconfig <the lab's>`: (exit code, stdout).
fn rebootguard(lab: &Lab, args: &[&str]) -> (i32, String) {
    let out = Command::new(common::rebootguard(EXE))
        .args(args)
        .arg("--kubeconfig")
        .arg(lab.ctx.api.sim.kubeconfig_path())
        .env("NO_COLOR", "1")
        .output()
        .expect("rebootguard runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "rebootguard {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The lab's stale pods: deleted (NodeLost, Terminating) on Ready theoden,
/// their deletion grace period over.
fn stale_and_past_grace(lab: &Lab) -> Vec<String> {
    let ready = lab
        .ctx
        .api
        .node("theoden")
        .is_some_and(|n| api::condition(&n, "Ready") == Some("True"));
    if !ready {
        return Vec::new();
    }
    let now = jiff::Timestamp::now();
    lab.ctx
        .api
        .pods_on("theoden")
        .iter()
        .filter(|p| {
            p.pointer("/metadata/deletionTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t + jiff::SignedDuration::from_secs(1) < now)
        })
        .map(|p| api::name(p).to_owned())
        .collect()
}

/// Every impact title under the roots of a diagnose JSON report, with the
/// pods listed there.
fn impacts(report: &Value) -> Vec<(String, Vec<String>)> {
    fn walk(items: &Value, out: &mut Vec<(String, Vec<String>)>) {
        for i in items.as_array().into_iter().flatten() {
            let pods = i["pods"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p["namespace"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or("")
                    )
                })
                .collect();
            out.push((i["title"].as_str().unwrap_or("").to_owned(), pods));
            walk(&i["children"], out);
        }
    }
    let mut out = Vec::new();
    for root in report["roots"].as_array().into_iter().flatten() {
        walk(&root["impact"], &mut out);
    }
    out
}

fn entry<'a>(plan: &'a Value, name_prefix: &str) -> &'a Value {
    plan["plan"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(name_prefix))
        })
        .unwrap_or_else(|| panic!("no entry {name_prefix}* in {plan:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn clean_stale_and_diagnose_see_the_labs_owners_after_a_reboot() {
    if !ready("clean_stale_and_diagnose_see_the_labs_owners_after_a_reboot") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let scenario = Scenario::parse(SCENARIO).expect("scenario");
    let lab = Lab::up(scenario.clone(), options(EXE, base.path()))
        .await
        .expect("lab up");
    let want = scenario.pod_count();
    wait(&lab, "every pod running", 90, |l| {
        l.ctx
            .api
            .pods()
            .iter()
            .filter(|p| api::pod_running(p))
            .count()
            == want
    })
    .await;
    assert_owned_like_a_real_cluster(&lab);
    wait(
        &lab,
        "the workloads' status following their pods",
        10,
        |l| {
            let d = get(l, "Deployment", "apps", "web");
            let ds = get(l, "DaemonSet", "apps", "log-shipper");
            d["status"]["readyReplicas"] == 2 && ds["status"]["numberReady"] == 2
        },
    )
    .await;

    // theoden reboots for 10 minutes (past the eviction) and comes back
    // Ready without pod networking.
    lab.inject("theoden", Fault::FlannelSilentSkip)
        .expect("inject");
    lab.reboot(
        &["theoden".into()],
        scenario.scaled(Duration::from_secs(600)),
    )
    .await
    .expect("reboot");
    wait(
        &lab,
        "3 stale pods on Ready theoden, past their grace",
        90,
        |l| stale_and_past_grace(l).len() == 3,
    )
    .await;
    let stale = stale_and_past_grace(&lab);
    let gitea = stale
        .iter()
        .find(|n| n.starts_with("gitea-"))
        .expect("gitea")
        .clone();

    // diagnose: the failing pods under their Deployment, never one root
    // per pod.
    let (code, out) = rebootguard(&lab, &["diagnose", "-o", "json"]);
    assert_eq!(code, 1, "problems found: {out}");
    let report = json(&out);
    let titles: Vec<&str> = report["roots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["title"].as_str())
        .collect();
    assert!(
        titles[0].contains("subnet.env missing") && titles[0].contains("theoden"),
        "{titles:#?}"
    );
    assert!(!titles.iter().any(|t| t.starts_with("Pod ")), "{titles:#?}");
    let impact = impacts(&report);
    let web = impact
        .iter()
        .find(|(_, pods)| pods.iter().any(|p| p.starts_with("apps/web-")))
        .unwrap_or_else(|| panic!("web's failing pod not in the impact: {impact:#?}"));
    assert!(web.0.starts_with("Deployment apps/web: "), "{impact:#?}");
    assert!(
        !impact.iter().any(|(t, _)| t.starts_with("Pod ")),
        "{impact:#?}"
    );
    let stale_pods = report["stale"]["pods"].as_array().expect("stale pods");
    assert_eq!(stale_pods.len(), 3, "{stale_pods:#?}");

    // clean-stale, dry run: the owners named, the bare pod kept.
    let (code, out) = rebootguard(&lab, &["clean-stale", "--json"]);
    assert_eq!(code, 0, "{out}");
    let plan = json(&out);
    assert_eq!(plan["dryRun"], true);
    assert_eq!(
        plan["plan"]["entries"].as_array().map(Vec::len),
        Some(3),
        "{plan:#}"
    );
    let deployment = get(&lab, "Deployment", "apps", "gitea");
    let rs_name = lab
        .ctx
        .api
        .sim
        .list("apps/v1", "ReplicaSet", Some("apps"))
        .into_iter()
        .find(|r| r["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"])
        .map(|r| api::name(&r).to_owned())
        .expect("gitea's ReplicaSet");
    let e = entry(&plan, "gitea-");
    assert_eq!(e["name"], gitea.as_str());
    assert_eq!(e["owner"], format!("ReplicaSet/{rs_name}"));
    assert_eq!(
        (&e["action"], &e["status"]),
        (&"forceDelete".into(), &"Unknown".into()),
        "{e:#}"
    );
    let e = entry(&plan, "log-shipper-");
    assert_eq!(e["owner"], "DaemonSet/log-shipper");
    assert_eq!(e["action"], "forceDelete", "{e:#}");
    let e = entry(&plan, "debug");
    assert!(e.get("owner").is_none(), "{e:#}");
    assert_eq!(e["action"], "keep");
    assert!(
        e["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("--include-unowned"),
        "{e:#}"
    );
    let (_, human) = rebootguard(&lab, &["clean-stale"]);
    eprintln!("roots: {titles:#?}\n{human}");
    assert!(
        human.contains("dry run: 2 pod(s) would be deleted"),
        "{human}"
    );

    // --yes: the owned ones go (their controllers already replaced them),
    // the bare one stays.
    let (code, out) = rebootguard(&lab, &["clean-stale", "--yes", "--json"]);
    assert_eq!(code, 0, "{out}");
    let done = json(&out);
    let deleted: Vec<&str> = done["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["deleted"] == true)
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(deleted.len(), 2, "{done:#}");
    let names = |l: &Lab| -> Vec<String> {
        l.ctx
            .api
            .pods_on("theoden")
            .iter()
            .map(|p| api::name(p).to_owned())
            .collect()
    };
    let left = names(&lab);
    assert!(!left.contains(&gitea), "{left:?}");
    assert!(left.iter().any(|n| n == "debug"), "{left:?}");
    let replacement = lab
        .ctx
        .api
        .pods_on("theoden")
        .into_iter()
        .find(|p| api::name(p).starts_with(&format!("{rs_name}-")) && !api::terminating(p))
        .expect("gitea's replacement");
    assert_eq!(owner(&replacement).1, rs_name);

    // --include-unowned: the bare pod goes too, and nothing recreates it.
    let (code, out) = rebootguard(
        &lab,
        &["clean-stale", "--yes", "--include-unowned", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(entry(&json(&out), "debug")["action"], "forceDelete");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !names(&lab).iter().any(|n| n == "debug"),
        "{:?}",
        names(&lab)
    );
    let (_, out) = rebootguard(&lab, &["clean-stale"]);
    assert!(out.starts_with("no stale pods"), "{out}");

    assert!(lab.task_failures().is_empty(), "{:?}", lab.task_failures());
    drop(lab);
    let left = std::fs::read_dir(base.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "lab directory left behind");
}
