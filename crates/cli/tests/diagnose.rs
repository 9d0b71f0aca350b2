//! `rebootguard diagnose`, `snapshot` and `clean-stale` end to end: from the
//! incident snapshot file, and live against kubesim seeded with the same objects.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use kubesim::KubeSim;
use serde_json::Value;

const NOW: &str = "2026-01-31T07:22:00Z";

fn incident() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/incident-2026-01-31/snapshot.json")
}

async fn run(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("run rebootguard")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn assert_incident_root(report: &Value) {
    let root = &report["roots"][0];
    let title = root["title"].as_str().expect("title");
    assert!(title.contains("subnet.env missing"), "{title}");
    assert!(
        title.contains("boromir") && title.contains("theoden"),
        "{title}"
    );
    assert_eq!(root["cause"]["cni"]["type"], "flannelSubnetEnvMissing");
    // CoreDNS, Flux and Longhorn are folded under it, not roots of their own.
    for root in report["roots"].as_array().expect("roots").iter().skip(1) {
        let title = root["title"].as_str().unwrap_or_default();
        for folded in ["CoreDNS", "flux-system/source-controller", "longhorn"] {
            assert!(
                !title.contains(folded),
                "{folded} reported as a root: {title}"
            );
        }
    }
}

/// Seeds kubesim with every object of the incident snapshot.
fn seed(sim: &KubeSim) {
    let text = std::fs::read_to_string(incident()).expect("snapshot");
    let snapshot: Value = serde_json::from_str(&text).expect("json");
    let mut objects = Vec::new();
    for (key, value) in snapshot.as_object().expect("object") {
        if key == "metadata" {
            continue;
        }
        if let Value::Array(items) = value {
            objects.extend(items.iter().cloned());
        }
    }
    let namespaces: BTreeSet<String> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_owned))
        .collect();
    for namespace in namespaces {
        let _ = sim.create(&serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}
        }));
    }
    let mut seeded = 0;
    for mut object in objects {
        // Stored as they were; kubesim assigns its own resource versions.
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        if sim.create(&object).is_ok() {
            seeded += 1;
        }
    }
    assert!(seeded > 150, "seeded {seeded} objects");
}

#[tokio::test]
async fn incident_snapshot_names_the_first_domino() {
    let path = incident();
    let out = run(&[
        "diagnose",
        "--snapshot",
        path.to_str().expect("utf-8"),
        "-o",
        "json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "problems found");
    assert_incident_root(&json(&out));

    let human = run(&["diagnose", "--snapshot", path.to_str().expect("utf-8")]).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("$ rebootguard node restore"), "{text}");
    assert!(!text.contains('\u{1b}'), "NO_COLOR honoured");

    for (format, marker) in [
        ("markdown", "#"),
        ("mermaid", "flowchart"),
        ("dot", "digraph"),
    ] {
        let out = run(&[
            "diagnose",
            "--snapshot",
            path.to_str().expect("utf-8"),
            "-o",
            format,
        ])
        .await;
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{format}"
        );
    }
}

#[tokio::test]
async fn unreadable_input_cannot_be_diagnosed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, b"{\"kind\": \"List\", \"items\": [").expect("write");
    let out = run(&["diagnose", "--snapshot", garbage.to_str().expect("utf-8")]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("garbage.json"), "{stderr}");

    let out = run(&["diagnose", "--snapshot", "/nonexistent/snapshot.json"]).await;
    assert_eq!(out.status.code(), Some(2));

    // No kubeconfig anywhere: live mode says so.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .arg("diagnose")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", dir.path())
        .output()
        .await
        .expect("run");
    if !Path::new("/etc/rancher/k3s/k3s.yaml").exists() {
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("kubeconfig"));
    }
}

/// `rebootguard diagnose ARGS` with `stdin` on its standard input.
async fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    child.wait_with_output().await.expect("wait")
}

#[tokio::test]
async fn input_without_nodes_is_not_called_healthy() {
    // Each was "healthy, exit 0" before: a wrong command must not look
    // like a good cluster.
    let dir = tempfile::tempdir().expect("tempdir");
    let empty_dump = dir.path().join("dump");
    std::fs::create_dir(&empty_dump).expect("mkdir");
    let cases: [(&str, &[u8]); 3] = [
        ("an empty List", br#"{"apiVersion":"v1","kind":"List","items":[]}"#),
        ("items: null", br#"{"apiVersion":"v1","kind":"List","items":null}"#),
        (
            "a List of other kinds",
            br#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}]}"#,
        ),
    ];
    for (what, input) in cases {
        let out = run_with_stdin(&["diagnose", "--snapshot", "-"], input).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("stdin holds no Nodes"), "{what}: {stderr}");
        assert!(
            stderr.contains("kubectl get nodes,pods,events"),
            "{what}: {stderr}"
        );
    }
    let out = run(&["diagnose", "--dump", empty_dump.to_str().expect("utf-8")]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no Nodes"));
}

#[tokio::test]
async fn stdin_and_null_metadata_are_read_as_kubectl_prints_them() {
    // `kubectl get ... -o json | rebootguard diagnose --snapshot -`, with
    // one broken object that is skipped, not fatal.
    let input = br#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"v1","kind":"Node","metadata":null,"status":{}},
        {"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},"spec":null,
         "status":{"conditions":[{"type":"Ready","status":"True"}]}},
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"apps"},
         "spec":{"nodeName":"n1"},"status":null}]}"#;
    let out = run_with_stdin(&["diagnose", "--snapshot", "-", "--output", "json"], input).await;
    let report = json(&out);
    assert_eq!(report["summary"]["nodes"], 1, "{report}");
    assert_eq!(report["summary"]["pods"], 1, "{report}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("skipped 1 Node without a name"), "{notes}");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_mode_finds_the_same_root_and_snapshot_round_trips() {
    let sim = KubeSim::start().await.expect("kubesim");
    seed(&sim);
    let kubeconfig = sim.kubeconfig_path().to_str().expect("utf-8").to_owned();

    let out = run(&[
        "diagnose",
        "--kubeconfig",
        &kubeconfig,
        "--now",
        NOW,
        "-o",
        "json",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_incident_root(&json(&out));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cluster.json.gz");
    let out = run(&[
        "snapshot",
        "-o",
        file.to_str().expect("utf-8"),
        "--kubeconfig",
        &kubeconfig,
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&file).expect("snapshot file");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
    let out = run(&[
        "diagnose",
        "--snapshot",
        file.to_str().expect("utf-8"),
        "--now",
        NOW,
        "-o",
        "json",
    ])
    .await;
    assert_incident_root(&json(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_stale_lists_then_deletes_only_the_stale_pods() {
    let sim = KubeSim::start().await.expect("kubesim");
    seed(&sim);
    let kubeconfig = sim.kubeconfig_path().to_str().expect("utf-8").to_owned();
    let pods_before = sim.list("v1", "Pod", None).len();

    let out = run(&["clean-stale", "--kubeconfig", &kubeconfig, "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let plan = json(&out);
    assert_eq!(plan["dryRun"], true);
    let entries = plan["plan"]["entries"].as_array().expect("entries").clone();
    let acting: Vec<&Value> = entries.iter().filter(|e| e["action"] != "keep").collect();
    assert_eq!(acting.len(), 24, "the incident's Unknown pods");
    assert_eq!(sim.list("v1", "Pod", None).len(), pods_before, "dry run");

    let out = run(&["clean-stale", "--kubeconfig", &kubeconfig, "--yes"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted 24 of 24"));
    let left: BTreeSet<String> = sim
        .list("v1", "Pod", None)
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(left.len(), pods_before - 24);
    for entry in acting {
        let name = entry["name"].as_str().expect("name");
        assert!(!left.contains(name), "{name} still there");
    }

    // A snapshot can be listed, never acted on.
    let path = incident();
    let out = run(&[
        "clean-stale",
        "--snapshot",
        path.to_str().expect("utf-8"),
        "--yes",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn the_same_objects_in_two_files_count_once() {
    let path = incident();
    let path = path.to_str().expect("utf-8");
    let once = json(&run(&["diagnose", "--snapshot", path, "-o", "json"]).await);
    let twice = json(
        &run(&[
            "diagnose",
            "--snapshot",
            path,
            "--snapshot",
            path,
            "-o",
            "json",
        ])
        .await,
    );
    assert_eq!(twice["summary"], once["summary"], "{}", twice["summary"]);
    assert_eq!(twice["roots"], once["roots"]);
}

/// The dry run's table names each stale pod's owner (what will recreate
/// it), and a name from the cluster cannot drive the terminal.
#[tokio::test]
async fn clean_stale_shows_owners_and_inert_names() {
    let mut snapshot: Value =
        serde_json::from_slice(&std::fs::read(incident()).expect("incident")).expect("JSON");
    let stale = snapshot["pods"]
        .as_array_mut()
        .expect("pods")
        .iter_mut()
        .find(|p| p["metadata"]["deletionTimestamp"].is_string())
        .expect("a stale pod");
    stale["metadata"]["name"] = "web-\u{1b}[2Jgone".into();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hostile.json");
    std::fs::write(&path, snapshot.to_string()).expect("write");
    let out = run(&["clean-stale", "--snapshot", path.to_str().expect("utf-8")]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let header = text.lines().next().expect("header");
    assert!(header.contains("OWNER"), "{header}");
    assert!(
        text.lines()
            .any(|l| l.contains("ReplicaSet/") || l.contains("DaemonSet/")),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("web-\\x1b[2Jgone"), "{text}");
}
