//! `rebootguard verify`'s performance targets, measured on the lab: the
//! whole command (pods created, probes run for real in every node's pod
//! namespace, results read back, everything deleted) takes ≤ 10 s on a
//! 3-node lab and ≤ 20 s on a 50-node lab.
//!
//! `cargo build --release -p rebootguard -p rebootguard-lab && cargo bench
//! -p rebootguard-lab --bench verify` (root); `TRIALS` runs per lab
//! (default 5). Prints the figures and the API requests each run cost;
//! exits 1 when a run misses its target or verify does not pass.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rebootguard_lab::scenario::{Behaviour, Workload};
use rebootguard_lab::{Lab, Options, Scenario};

mod common;

/// One `rebootguard verify` of every node of `lab`: `Ok(Err(report))` when
/// it ran and did not pass.
async fn run_verify(lab: &Lab, rebootguard: &PathBuf) -> Result<Result<(), String>, String> {
    let run = tokio::process::Command::new(rebootguard)
        .args(["verify", "--timeout", "60s", "--kubeconfig"])
        .arg(lab.ctx.api.sim.kubeconfig_path())
        .env_remove("KUBECONFIG")
        .output()
        .await
        .map_err(|e| e.to_string())?;
    Ok(if run.status.success() {
        Ok(())
    } else {
        Err(format!(
            "verify exited {:?}:\n{}{}",
            run.status.code(),
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ))
    })
}

/// What `TRIALS` runs of verify on one lab took.
struct Trials {
    /// Wall times, sorted.
    took: Vec<Duration>,
    /// API requests per run from the verify CLI (user agent
    /// `rebootguard/`), as kubesim counted them.
    requests: Vec<u64>,
    /// From CoreDNS up to the first passing run.
    settled: Duration,
}

/// Boots an `n`-node lab with CoreDNS, runs verify on every node `trials`
/// times; the wall time of each run, or why one failed.
async fn verify(
    n: usize,
    trials: usize,
    o: Options,
    rebootguard: &PathBuf,
) -> Result<Trials, String> {
    let mut s = Scenario::plain(n);
    s.time_scale = 20.0;
    s.workloads.push(Workload {
        namespace: "kube-system".into(),
        name: "coredns".into(),
        behaviour: Behaviour::Dns,
        replicas: Some(1),
        nodes: vec!["boromir".into()],
        bare: false,
    });
    let lab = Lab::up(s, o).await.map_err(|e| e.to_string())?;
    let t = Instant::now();
    while lab.ctx.dns_endpoints().is_empty() {
        if t.elapsed() > Duration::from_secs(120) {
            return Err("CoreDNS never ran".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The lab's emulated flannel programs every peer (n × (n-1) FDB,
    // neighbour and route entries) after boot, as a real cluster does
    // before it is steady: verify is timed on the steady cluster, after a
    // first passing run (whose wait is reported).
    let settle = Instant::now();
    loop {
        match run_verify(&lab, rebootguard).await? {
            Ok(()) => break,
            Err(why) if settle.elapsed() > Duration::from_secs(300) => {
                return Err(format!("never passed within 300 s of boot: {why}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
    let mut out = Trials {
        took: Vec::new(),
        requests: Vec::new(),
        settled: settle.elapsed(),
    };
    for _ in 0..trials {
        lab.ctx.api.sim.reset_requests();
        let t = Instant::now();
        run_verify(&lab, rebootguard).await??;
        out.took.push(t.elapsed());
        out.requests.push(
            lab.ctx
                .api
                .sim
                .requests_by_agent()
                .iter()
                .filter(|(ua, ..)| ua.starts_with("rebootguard/"))
                .map(|r| r.3)
                .sum(),
        );
    }
    out.took.sort();
    Ok(out)
}

fn main() -> ExitCode {
    let (lab_exe, rebootguard) = match common::binaries("verify") {
        Ok(b) => b,
        Err(code) => return code,
    };
    let runtime = common::runtime();
    let base = std::env::temp_dir().join("rebootguard-lab-bench");
    let options = || {
        let mut o = Options::new(lab_exe.clone());
        o.base_dir = base.clone();
        o.rebootguard = Some(rebootguard.clone());
        o
    };
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut ok = true;
    for (n, target) in [(3, Duration::from_secs(10)), (50, Duration::from_secs(20))] {
        match runtime.block_on(verify(n, trials, options(), &rebootguard)) {
            Ok(t) => {
                let median = t.took[t.took.len() / 2];
                let max = t.took[t.took.len() - 1];
                println!(
                    "verify, {n}-node lab, {trials} runs (every check passed): median {:.2} s, min {:.2} s, max {:.2} s (target <= {} s); API requests per run {:?}; first pass {:.1} s after CoreDNS ran",
                    median.as_secs_f64(),
                    t.took[0].as_secs_f64(),
                    max.as_secs_f64(),
                    target.as_secs(),
                    t.requests,
                    t.settled.as_secs_f64(),
                );
                ok &= max <= target;
            }
            Err(e) => {
                println!("verify, {n}-node lab: FAILED: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
