//! `rebootguard verify` against kubesim, with the test playing the kubelet:
//! the probe pods it creates (pinned, tolerating every taint), the verdict
//! it reads back from termination messages and sandbox events, and that it
//! deletes what it made on success, failure, timeout and SIGINT, removes a
//! killed run's leftovers, and says clearly when it cannot verify.

use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubesim::KubeSim;
use kubesim::faults::{Failure, Route};
use serde_json::{Value, json};

#[path = "common/probes.rs"]
mod probes;
use probes::{EVENT, Kubelet, NS, kubelet, nodes, ours, text};

async fn sim(nodes: &[&str]) -> Arc<KubeSim> {
    probes::cluster(nodes).await
}

fn command(sim: &KubeSim, args: &[&str]) -> tokio::process::Command {
    probes::rebootguard(sim, "verify", args)
}

async fn verify(sim: &KubeSim, args: &[&str]) -> Output {
    command(sim, args).output().await.expect("run rebootguard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_cluster_passes_and_nothing_is_left() {
    let sim = sim(&["boromir", "samwise", "theoden"]).await;
    let (task, seen) = kubelet(
        &sim,
        nodes(&[
            ("boromir", Kubelet::Works),
            ("samwise", Kubelet::Works),
            ("theoden", Kubelet::Works),
        ]),
    );
    let started = Instant::now();
    let out = verify(&sim, &["--json", "--timeout", "30s"]).await;
    task.abort();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["passed"], true);
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        v["nodes"][0]["checks"][3]["detail"],
        "reached 2: samwise, theoden"
    );
    // Pinned, tolerating every taint, never restarted, labelled with the run.
    let pods = seen.lock().unwrap().clone();
    assert_eq!(pods.len(), 3);
    let mut pinned: Vec<&str> = pods
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    pinned.sort_unstable();
    assert_eq!(pinned, ["boromir", "samwise", "theoden"]);
    for p in &pods {
        assert_eq!(p["spec"]["tolerations"], json!([{"operator": "Exists"}]));
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert_eq!(
            p["metadata"]["labels"]["rebootguard.io/verify-run"],
            json!(v["run"])
        );
    }
    assert!(ours(&sim, "Pod").is_empty(), "pods left");
    assert!(ours(&sim, "Service").is_empty(), "service left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_pod_network_is_named_with_the_event() {
    let sim = sim(&["boromir", "samwise"]).await;
    let (task, _) = kubelet(
        &sim,
        nodes(&[("boromir", Kubelet::NoSandbox), ("samwise", Kubelet::Works)]),
    );
    let out = verify(&sim, &["--timeout", "6s"]).await;
    task.abort();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("boromir  FAIL"), "{stdout}");
    assert!(
        stdout.contains("boromir: sandbox failed: no pod network: flannel subnet.env missing"),
        "{stdout}"
    );
    assert!(stdout.contains(EVENT), "{stdout}");
    // samwise's peer check has no peer to reach: boromir is named once.
    assert!(
        stdout.contains("samwise  ok        ok        ok        -\n"),
        "{stdout}"
    );
    assert!(ours(&sim, "Pod").is_empty(), "pods left");
    assert!(ours(&sim, "Service").is_empty(), "service left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_could_not_verify_and_cleans_up() {
    let sim = sim(&["boromir", "samwise"]).await;
    let started = Instant::now();
    let out = verify(&sim, &["--timeout", "3s", "--node", "samwise"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(12));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("samwise: sandbox unknown: no pod network within the timeout"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("boromir"),
        "only the node asked for: {stdout}"
    );
    assert!(ours(&sim, "Pod").is_empty(), "pods left");
    assert!(ours(&sim, "Service").is_empty(), "service left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_cleans_up_and_exits_130() {
    let sim = sim(&["boromir", "samwise"]).await;
    let child = command(&sim, &["--timeout", "60s"]).spawn().expect("spawn");
    let pid = child.id().expect("pid");
    let t = Instant::now();
    while ours(&sim, "Pod").len() < 2 {
        assert!(t.elapsed() < Duration::from_secs(15), "no pods created");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = libc::pid_t::try_from(pid).expect("pid");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("exits soon after SIGINT")
        .expect("output");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert!(ours(&sim, "Pod").is_empty(), "pods left");
    assert!(ours(&sim, "Service").is_empty(), "service left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_killed_run_are_removed_and_a_live_run_is_not() {
    let sim = sim(&["boromir"]).await;
    let leftover = |name: &str, kind: &str, expires: &str| {
        let mut o = json!({
            "apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": NS,
                "labels": {"app.kubernetes.io/name": "rebootguard-verify", "rebootguard.io/verify-run": name},
                "annotations": {"rebootguard.io/verify-expires": expires}},
        });
        if kind == "Pod" {
            o["spec"] =
                json!({"nodeName": "boromir", "containers": [{"name": "probe", "image": "x"}]});
        } else {
            o["spec"] =
                json!({"clusterIP": "None", "selector": {"rebootguard.io/verify-run": name}});
        }
        sim.create(&o).expect("seed");
    };
    leftover("rgv-dead-boromir", "Pod", "2020-01-01T00:00:00Z");
    leftover("rgv-dead", "Service", "2020-01-01T00:00:00Z");
    leftover("rgv-live-boromir", "Pod", "2999-01-01T00:00:00Z");
    let (task, _) = kubelet(&sim, nodes(&[("boromir", Kubelet::Works)]));
    let out = verify(&sim, &["--timeout", "10s"]).await;
    task.abort();
    // The live run's pod has no result, but it is not ours to judge.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("removed pod/rgv-dead-boromir"), "{stderr}");
    assert!(stderr.contains("removed service/rgv-dead"), "{stderr}");
    let left: Vec<Value> = ours(&sim, "Pod");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["metadata"]["name"], "rgv-live-boromir");
    assert!(ours(&sim, "Service").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_said_clearly_with_exit_2() {
    let sim = sim(&["boromir"]).await;
    let out = verify(&sim, &["--node", "gandalf"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such node: gandalf (nodes: boromir)"),
        "{}",
        text(&out)
    );
    let out = verify(&sim, &["-l", "index=7"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node to verify matches \"index=7\""));
    let out = verify(&sim, &["--namespace", "nowhere"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("namespace \"nowhere\" does not exist"),
        "{}",
        text(&out)
    );
    let out = verify(&sim, &["--timeout", "soon"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Pod creation refused: nothing learnt about the node, nothing left.
    sim.fail_next(Route::new("create", "pods"), 5, Failure::Internal);
    let out = verify(&sim, &["--timeout", "5s"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("boromir: sandbox unknown: could not create the probe pod"),
        "{}",
        text(&out)
    );
    assert!(ours(&sim, "Service").is_empty());
    sim.clear_faults();
    // The API gone.
    sim.down().await;
    let started = Instant::now();
    let out = verify(&sim, &["--api-timeout", "1s"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("error: could not verify: failed to list nodes")
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_objects_and_creates_nothing() {
    let sim = sim(&["boromir", "samwise"]).await;
    let out = verify(&sim, &["--dry-run", "--image", "example/rg:1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let docs: Vec<Value> = serde_saphyr::from_slice_multiple(&out.stdout).expect("yaml");
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0]["kind"], "Service");
    assert_eq!(docs[1]["spec"]["nodeName"], "boromir");
    assert_eq!(docs[2]["spec"]["containers"][0]["image"], "example/rg:1");
    assert!(ours(&sim, "Pod").is_empty());
    assert!(ours(&sim, "Service").is_empty());
}
