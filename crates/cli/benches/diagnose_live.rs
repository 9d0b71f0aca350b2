//! Live `diagnose` against kubesim versus `kubectl get pods -A -o json`
//! alone against the same kubesim (issue target: diagnose takes less wall time).
//!
//! Run: `cargo bench -p rebootguard --bench diagnose_live`. Size by
//! environment: `LIVE_BENCH_NODES` (default 500), `LIVE_BENCH_PODS` (15000),
//! `LIVE_BENCH_EVENTS` (30000); the full size is 5000 / 150000 / 300000.
//! Both commands run alternately, `LIVE_BENCH_ROUNDS` (default 2) times each,
//! so machine noise hits them alike; the ratio of medians is the result.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kubesim::{KubeSim, fixtures};
use serde_json::json;

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Wall time of `command`, which must exit with one of `ok_codes`.
fn time(command: &mut Command, ok_codes: &[i32]) -> Duration {
    let started = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    let took = started.elapsed();
    assert!(
        status.code().is_some_and(|c| ok_codes.contains(&c)),
        "{command:?} failed: {status}"
    );
    took
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let nodes = env_or("LIVE_BENCH_NODES", 500);
    let pods = env_or("LIVE_BENCH_PODS", 15_000);
    let events = env_or("LIVE_BENCH_EVENTS", 30_000);
    let rounds = env_or("LIVE_BENCH_ROUNDS", 2);
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed: nothing to compare with");
        return;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = runtime.block_on(KubeSim::start()).expect("kubesim");
    let seeding = Instant::now();
    for i in 0..fixtures::NAMESPACES {
        sim.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{i}")}}))
            .expect("namespace");
    }
    for i in 0..nodes {
        sim.create(&fixtures::node(i)).expect("node");
    }
    for i in 0..pods {
        sim.create(&fixtures::pod(i, nodes)).expect("pod");
    }
    for i in 0..events {
        sim.create(&fixtures::event(i, pods, nodes)).expect("event");
    }
    println!(
        "kubesim seeded with {nodes} nodes, {pods} pods, {events} events in {:.1?}",
        seeding.elapsed()
    );

    let cache = tempfile::tempdir().expect("tempdir");
    let kubeconfig = sim.kubeconfig_path().to_path_buf();
    let mut diagnose = Vec::new();
    let mut kubectl = Vec::new();
    for _ in 0..rounds {
        diagnose.push(time(
            Command::new(env!("CARGO_BIN_EXE_rebootguard"))
                .args(["diagnose", "-o", "json", "--timeout", "5m", "--kubeconfig"])
                .arg(&kubeconfig),
            &[0, 1],
        ));
        kubectl.push(time(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--cache-dir")
                .arg(cache.path())
                .args([
                    "get",
                    "pods",
                    "-A",
                    "-o",
                    "json",
                    "--request-timeout",
                    "10m",
                ]),
            &[0],
        ));
    }
    let (diagnose, kubectl) = (median(diagnose), median(kubectl));
    println!("rebootguard diagnose (live, all kinds)     median {diagnose:>10.2?}");
    println!("kubectl get pods -A -o json (pods only)   median {kubectl:>10.2?}");
    println!(
        "ratio diagnose / kubectl: {:.3} (target < 1)",
        diagnose.as_secs_f64() / kubectl.as_secs_f64()
    );
    drop(sim);
}
