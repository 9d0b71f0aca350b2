//! `rebootguard reboot`'s performance target, measured on the lab: the
//! orchestration's own time per node, beyond the drain and the reboot and
//! boot themselves, is ≤ 5 s; and the API requests a rollout costs, as
//! kubesim counts them.
//!
//! `cargo build --release -p rebootguard -p rebootguard-lab && cargo bench
//! -p rebootguard-lab --bench rollout` (root). The lab is the shipped
//! `rolling-reboot` scenario (three etcd servers, CoreDNS, a DaemonSet)
//! without its Longhorn volumes (their emulated rebuild is Longhorn's time,
//! not ours), with the real agent in every node: each reboot goes through
//! the agent's handshake, and the network step waits for the new boot's
//! `PodNetworkReady`. The rollout runs with its defaults (it looks every `--poll`, 1 s).
//!
//! Per node, from the previous node's uncordon (or the plan) to this
//! node's uncordon: drain = started → drained (the Lease, the cordon and
//! the evictions), reboot and boot = asked → Ready; the overhead is the
//! rest (the gates, the request, the network check, stale pods, the
//! uncordon). `ROUNDS` (default 2) rollouts of all three nodes; `JSON=1`
//! prints the figures as JSON too. Exits 1 when a rollout fails or the
//! target is missed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rebootguard_lab::{Lab, Options, Scenario, api};
use serde_json::{Value, json};

mod common;

fn scenario() -> Scenario {
    let mut s = Scenario::parse(include_str!("../../../scenarios/rolling-reboot.toml"))
        .expect("the shipped scenario");
    s.volumes.clear();
    s
}

/// One node's share of a rollout, in seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Share {
    wall: f64,
    drain: f64,
    reboot: f64,
    network: f64,
}

impl Share {
    fn overhead(&self) -> f64 {
        self.wall - self.drain - self.reboot
    }
}

/// The rollout's user agent: the CLI's, not the agents' or the lab's.
const CLI_UA: &str = "rebootguard/";

struct Round {
    shares: Vec<(String, Share)>,
    requests: u64,
    by_route: Vec<(String, String, u64)>,
}

async fn healthy(lab: &Lab) -> Result<(), String> {
    let t = Instant::now();
    loop {
        let pods = lab.ctx.api.pods();
        let nodes = lab.ctx.api.sim.list("v1", "Node", None);
        let network = nodes.iter().all(|n| {
            n["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "PodNetworkReady" && c["status"] == "True")
            })
        });
        if !pods.is_empty() && pods.iter().all(api::pod_running) && network {
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(90) {
            return Err("the lab never became healthy".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn round(lab: &Lab, rebootguard: &PathBuf) -> Result<Round, String> {
    healthy(lab).await?;
    lab.ctx.api.sim.reset_requests();
    let out = tokio::process::Command::new(rebootguard)
        .args(["reboot", "--json", "--order", "as-given"])
        .args(["boromir", "theoden", "samwise"])
        .env("KUBECONFIG", lab.ctx.api.sim.kubeconfig_path())
        .env("REBOOTGUARD_LOG", "warn")
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if !out.status.success() {
        return Err(format!(
            "the rollout exited {:?}: {}\n{}",
            out.status.code(),
            lines.last().map(Value::to_string).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let rows = lab.ctx.api.sim.requests_by_agent();
    let mine: Vec<_> = rows
        .into_iter()
        .filter(|(ua, ..)| ua.starts_with(CLI_UA))
        .collect();
    let requests = mine.iter().map(|r| r.3).sum();
    let by_route = mine.into_iter().map(|(_, v, r, n)| (v, r, n)).collect();

    let at = |v: &Value| v["at"].as_str().and_then(|s| s.parse::<Timestamp>().ok());
    let mut since = lines
        .iter()
        .find(|l| l["event"] == "plan")
        .and_then(at)
        .ok_or("no plan event")?;
    let mut shares = Vec::new();
    for t in lines.iter().filter(|l| l["event"] == "timeline") {
        let node = t["node"].as_str().unwrap_or_default().to_owned();
        let marks: Vec<(&str, Timestamp, f64)> = t["data"]
            .as_array()
            .ok_or("a timeline without marks")?
            .iter()
            .filter_map(|m| {
                Some((
                    m["mark"].as_str()?,
                    m["at"].as_str()?.parse().ok()?,
                    m["seconds"].as_f64()?,
                ))
            })
            .collect();
        let when = |mark: &str| marks.iter().find(|m| m.0 == mark).map(|m| m.1);
        let (Some(started), Some(drained), Some(asked), Some(ready), Some(network), Some(end)) = (
            when("started"),
            when("drained"),
            when("asked"),
            when("ready"),
            when("network"),
            when("uncordoned"),
        ) else {
            return Err(format!("{node}: incomplete timeline {t}"));
        };
        let secs = |a: Timestamp, b: Timestamp| b.duration_since(a).as_secs_f64();
        shares.push((
            node,
            Share {
                wall: secs(since, end),
                drain: secs(started, drained),
                reboot: secs(asked, ready),
                network: secs(ready, network),
            },
        ));
        since = end;
    }
    if shares.len() != 3 {
        return Err(format!("{} timelines, expected 3", shares.len()));
    }
    Ok(Round {
        shares,
        requests,
        by_route,
    })
}

fn main() -> ExitCode {
    let (lab_exe, rebootguard) = match common::binaries("rollout") {
        Ok(b) => b,
        Err(code) => return code,
    };
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let runtime = common::runtime();
    let mut o = Options::new(lab_exe.clone());
    o.base_dir = std::env::temp_dir().join("rebootguard-lab-bench");
    o.rebootguard = Some(rebootguard.clone());
    o.agent = true;
    o.protected = true;
    let result: Result<Vec<Round>, String> = runtime.block_on(async {
        let lab = Lab::up(scenario(), o).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for _ in 0..rounds {
            out.push(round(&lab, &rebootguard).await?);
        }
        Ok(out)
    });
    let rounds = match result {
        Ok(r) => r,
        Err(e) => {
            println!("rollout benchmark FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("node       wall s  drain s  reboot+boot s  network s  overhead s");
    let mut overheads = Vec::new();
    for (i, r) in rounds.iter().enumerate() {
        for (node, s) in &r.shares {
            println!(
                "{node:<9} {:>7.2} {:>8.2} {:>14.2} {:>10.2} {:>11.2}   (round {})",
                s.wall,
                s.drain,
                s.reboot,
                s.network,
                s.overhead(),
                i + 1
            );
            overheads.push(s.overhead());
        }
    }
    overheads.sort_by(f64::total_cmp);
    let mean = overheads.iter().sum::<f64>() / overheads.len() as f64;
    let max = overheads.last().copied().unwrap_or(0.0);
    let requests: Vec<u64> = rounds.iter().map(|r| r.requests).collect();
    println!(
        "overhead per node: mean {mean:.2} s, max {max:.2} s (target <= 5 s); API requests per 3-node rollout: {requests:?} ({:.0} per node)",
        requests.iter().sum::<u64>() as f64 / (3 * rounds.len()) as f64
    );
    if let Some(r) = rounds.first() {
        let mut routes = r.by_route.clone();
        routes.sort_by_key(|r| std::cmp::Reverse(r.2));
        let top: Vec<String> = routes
            .iter()
            .take(8)
            .map(|(v, r, n)| format!("{v} {r}: {n}"))
            .collect();
        println!("busiest routes (round 1): {}", top.join(", "));
    }
    if std::env::var_os("JSON").is_some() {
        let nodes: Vec<Value> = rounds
            .iter()
            .flat_map(|r| &r.shares)
            .map(|(n, s)| {
                json!({"node": n, "wall": s.wall, "drain": s.drain, "rebootBoot": s.reboot,
                       "network": s.network, "overhead": s.overhead()})
            })
            .collect();
        println!(
            "{}",
            json!({"nodes": nodes, "overheadMean": mean, "overheadMax": max, "requests": requests})
        );
    }
    if max <= 5.0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
