//! The lab's performance targets, measured: a 20-node lab boots (every node
//! Ready, every flannel peer programmed, one pod per node Running) in
//! ≤ 30 s, and one replay of the 2026-01-31 incident takes ≤ 60 s.
//!
//! `cargo bench -p rebootguard-lab --bench lab` (root). Prints the figures;
//! exits 1 when a target is missed. Needs root and Debian's CNI plugins.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rebootguard_hostnet::link::{self, Family};
use rebootguard_lab::scenario::{Behaviour, Workload};
use rebootguard_lab::{Lab, Options, Scenario, api, replay};

fn exe() -> PathBuf {
    // Benches sit in target/<profile>/deps; the binary one level up.
    let me = std::env::current_exe().expect("bench path");
    let dir = me.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("rebootguard-lab")
}

async fn boot_20(o: Options) -> Duration {
    let mut s = Scenario::plain(20);
    s.workloads.push(Workload {
        namespace: "default".into(),
        name: "echo".into(),
        behaviour: Behaviour::Plain,
        replicas: None,
        nodes: vec![],
        bare: false,
    });
    let t = Instant::now();
    let lab = Lab::up(s, o).await.expect("lab up");
    loop {
        let pods = lab.ctx.api.pods();
        let running = pods.len() == 20 && pods.iter().all(api::pod_running);
        let meshed = running
            && lab.ctx.nodes.iter().all(|n| {
                let ns = n.netns();
                link::blocking(
                    ns.as_deref(),
                    |nl| async move { nl.routes(Family::V4).await },
                )
                .map(|r| r.iter().filter(|r| r.onlink).count() == 19)
                .unwrap_or(false)
            });
        if meshed {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "20-node lab never converged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = t.elapsed();
    drop(lab);
    took
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if let Err(reason) = rebootguard_hostnet::netns::privileged() {
        eprintln!(
            "skipping the lab benchmark: {}",
            rebootguard_errors::chain(&reason)
        );
        return ExitCode::SUCCESS;
    }
    let exe = exe();
    if !exe.is_file() {
        eprintln!(
            "build the binary first: cargo build --release -p rebootguard-lab ({} is missing)",
            exe.display()
        );
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .expect("runtime");
    let base = std::env::temp_dir().join("rebootguard-lab-bench");
    let options = || {
        let mut o = Options::new(exe.clone());
        o.base_dir = base.clone();
        o
    };
    let boot = runtime.block_on(boot_20(options()));
    println!(
        "lab boot, 20 nodes (Ready, full flannel mesh, 20 pods Running): {:.2} s (target <= 30 s)",
        boot.as_secs_f64()
    );
    let t = Instant::now();
    let report = runtime
        .block_on(replay::replay(
            Scenario::incident().expect("incident"),
            options(),
        ))
        .expect("replay");
    let took = t.elapsed();
    println!(
        "replay incident-2026-01-31 (unprotected): {:.2} s (target <= 60 s), unmet: {:?}",
        took.as_secs_f64(),
        report.unmet
    );
    if boot > Duration::from_secs(30) || took > Duration::from_secs(60) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
