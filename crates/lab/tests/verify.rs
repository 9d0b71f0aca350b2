//! `rebootguard verify` on the lab, for real: the probe pods' command runs
//! as a process in each pod's network namespace (the lab's kubelet starts
//! `rebootguard verify probe`), resolves through the lab's DNS with the
//! pod's own resolv.conf and reaches the other probes across the VXLAN
//! overlay; verify itself only reads the API. A healthy lab passes; in the
//! unprotected incident the broken nodes are named with the kubelet's
//! event, and after the manual fix everything passes again. Needs root,
//! Debian's CNI plugins and the `rebootguard` binary (built here if missing).

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use rebootguard_lab::scenario::{Behaviour, Workload};
use rebootguard_lab::{Lab, Scenario, api, replay};
use serde_json::Value;

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

fn coredns() -> Workload {
    Workload {
        namespace: "kube-system".into(),
        name: "coredns".into(),
        behaviour: Behaviour::Dns,
        replicas: Some(1),
        nodes: vec!["boromir".into()],
        bare: false,
    }
}

async fn verify(lab: &Lab, args: &[&str]) -> (Output, Value, Duration) {
    let started = Instant::now();
    let out = tokio::process::Command::new(common::rebootguard(EXE))
        .arg("verify")
        .args(args)
        .arg("--json")
        .arg("--kubeconfig")
        .arg(lab.ctx.api.sim.kubeconfig_path())
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("run rebootguard verify");
    let took = started.elapsed();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!("{json:#}");
    (out, json, took)
}

fn cell<'a>(v: &'a Value, node: &str, check: &str) -> &'a Value {
    v["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|r| r["node"] == node))
        .and_then(|r| r["checks"].as_array())
        .and_then(|c| c.iter().find(|c| c["check"] == check))
        .unwrap_or(&Value::Null)
}

/// Nothing of a run stays: no pod or Service in the API, no container
/// process or files in the lab (the kubelet tears the probes down).
async fn nothing_left(lab: &Lab) {
    let t = Instant::now();
    loop {
        let pods = lab.ctx.api.sim.list("v1", "Pod", Some("rebootguard"));
        let services = lab.ctx.api.sim.list("v1", "Service", Some("rebootguard"));
        let dirs = std::fs::read_dir(lab.ctx.dir.join("pods"))
            .map(|d| d.count())
            .unwrap_or(0);
        let containers = lab
            .ctx
            .nodes
            .iter()
            .map(|n| {
                n.state()
                    .sandboxes
                    .values()
                    .filter(|s| s.container.is_some())
                    .count()
            })
            .sum::<usize>();
        if pods.is_empty() && services.is_empty() && dirs == 0 && containers == 0 {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "left: {} pods, {} services, {dirs} pod dirs, {containers} containers",
            pods.len(),
            services.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn dns_running(lab: &Lab) -> bool {
    !lab.ctx.dns_endpoints().is_empty()
}

fn options(base: &Path) -> rebootguard_lab::Options {
    let mut o = common::options(EXE, base);
    o.rebootguard = Some(common::rebootguard(EXE));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn verify_passes_on_a_healthy_three_node_lab() {
    if !ready("verify_passes_on_a_healthy_three_node_lab") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let mut s = common::echo_scenario(3, 20.0);
    s.workloads.push(coredns());
    let lab = Lab::up(s, options(base.path())).await.expect("lab up");
    wait_for("CoreDNS", Duration::from_secs(60), || dns_running(&lab)).await;
    let (out, v, took) = verify(&lab, &["--timeout", "30s"]).await;
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["passed"], true);
    for node in ["boromir", "theoden", "samwise"] {
        let ip = cell(&v, node, "pod-ip")["detail"]
            .as_str()
            .unwrap_or_default();
        assert!(ip.contains("is in 10.42."), "{node}: {ip}");
        let dns = cell(&v, node, "dns")["detail"].as_str().unwrap_or_default();
        assert!(
            dns.contains("kubernetes.default -> 10.43.0.1"),
            "{node}: {dns}"
        );
        assert!(dns.contains("rgv-"), "the run's Service resolved: {dns}");
        let peers = cell(&v, node, "peers")["detail"]
            .as_str()
            .unwrap_or_default();
        assert!(peers.starts_with("reached 2: "), "{node}: {peers}");
    }
    assert!(
        took < Duration::from_secs(10),
        "verify of 3 nodes took {took:?}"
    );
    nothing_left(&lab).await;

    // A selection verifies only its nodes; the probe alone has no peers.
    let (out, v, _) = verify(&lab, &["--node", "samwise", "--timeout", "20s"]).await;
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        cell(&v, "samwise", "peers")["detail"],
        "no other node to reach"
    );
    nothing_left(&lab).await;

    // What a container printed is its log, as `kubectl logs` reads it.
    lab.ctx
        .api
        .sim
        .create(&serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"nodeName": "theoden", "restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "rebootguard",
                                     "command": ["rebootguard", "--version"]}]}}))
        .expect("create the pod");
    wait_for("the pod to finish", Duration::from_secs(30), || {
        lab.ctx
            .api
            .sim
            .get("v1", "Pod", "default", "hello")
            .is_some_and(|p| {
                p.pointer("/status/phase").and_then(Value::as_str) == Some("Succeeded")
            })
    })
    .await;
    let client = lab.ctx.api.sim.client().expect("client");
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "default");
    let log = pods
        .logs("hello", &kube::api::LogParams::default())
        .await
        .expect("kubectl logs");
    assert!(log.starts_with("rebootguard "), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn verify_names_the_broken_nodes_of_the_incident_and_passes_after_the_fix() {
    if !ready("verify_names_the_broken_nodes_of_the_incident_and_passes_after_the_fix") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let scenario = Scenario::incident().expect("incident scenario");
    let want = scenario
        .workloads
        .iter()
        .filter(|w| w.behaviour != Behaviour::Broken)
        .map(|w| scenario.placements(w).len())
        .sum::<usize>();
    let lab = Lab::up(scenario, options(base.path()))
        .await
        .expect("lab up");
    let healthy = |lab: &Lab| replay::sample(lab).running >= want && dns_running(lab);
    wait_for("the cluster healthy", Duration::from_secs(120), || {
        healthy(&lab)
    })
    .await;

    // The incident: both reboot, flannel silently skips its init.
    let broken = ["boromir".to_owned(), "theoden".to_owned()];
    for n in &broken {
        lab.inject(n, rebootguard_lab::Fault::FlannelSilentSkip)
            .expect("arm");
    }
    lab.reboot(&broken, Duration::from_secs(2))
        .await
        .expect("reboot");
    wait_for("both nodes Ready again", Duration::from_secs(60), || {
        broken.iter().all(|n| {
            lab.ctx
                .api
                .node(n)
                .is_some_and(|o| api::condition(&o, "Ready") == Some("True"))
        })
    })
    .await;
    let (out, v, _) = verify(&lab, &["--timeout", "15s"]).await;
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    for n in &broken {
        let sandbox = cell(&v, n, "sandbox");
        assert_eq!(sandbox["status"], "fail", "{n}: {v:#}");
        assert_eq!(
            sandbox["detail"],
            "no pod network: flannel subnet.env missing"
        );
        let event = sandbox["evidence"][0].as_str().unwrap_or_default();
        assert!(
            event.contains("loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"),
            "{event}"
        );
    }
    // samwise works, but cluster DNS (CoreDNS lived on boromir) does not.
    assert_eq!(cell(&v, "samwise", "sandbox")["status"], "pass");
    assert_eq!(cell(&v, "samwise", "pod-ip")["status"], "pass");
    assert_eq!(cell(&v, "samwise", "dns")["status"], "fail");
    assert_eq!(cell(&v, "samwise", "peers")["status"], "skip");
    nothing_left(&lab).await;

    // The post-mortem's fix, then everything works again.
    lab.fix_manually().await;
    wait_for(
        "the cluster healthy again",
        Duration::from_secs(120),
        || healthy(&lab),
    )
    .await;
    let (out, v, _) = verify(&lab, &["--timeout", "30s"]).await;
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    nothing_left(&lab).await;
}
