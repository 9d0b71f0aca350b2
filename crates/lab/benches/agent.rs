//! The node agent's performance targets (issue 9), measured in the lab with
//! the real `rebootguard agent` on every node at real-world times (time
//! scale 1: heartbeat 30 s, full check every 60 s, probe every 5 min):
//!
//! - fault to `PodNetworkReady` change seen on the API, over `TRIALS`
//!   trials per fault: p50 ≤ 200 ms, p99 ≤ 1 s;
//! - an idle agent: RSS ≤ 15 MB, CPU near zero;
//! - API requests per node per minute, counted by kubesim per user agent
//!   (each agent names its node), on a 3-node and a 50-node lab: the count
//!   must not grow with the node count (50-node ≤ 1.2 × 3-node).
//!
//! `cargo bench -p rebootguard-lab --bench agent` (root, Debian's CNI
//! plugins). Environment: `TRIALS` (default 20), `IDLE_SECS` (default 300),
//! `BIG_NODES` (default 50; 0 skips the big lab), `JSON` (a file for the
//! figures). Prints the figures; exits 1 when a target is missed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::{WatchStreamExt, watcher};
use rebootguard_lab::runtime::RuntimeFault;
use rebootguard_lab::scenario::{Behaviour, Workload};
use rebootguard_lab::{Lab, Options, Scenario};
use serde_json::{Value, json};

const CONDITION: &str = "PodNetworkReady";
const TAINT: &str = "rebootguard.io/pod-network-unready";
const AGENT_UA: &str = "rebootguard-agent/";

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Benches sit in target/<profile>/deps; the binaries one level up.
fn sibling(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("bench path");
    let dir = me.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join(name)
}

/// Builds the release `rebootguard` and `rebootguard-lab` when missing.
fn binaries() -> (PathBuf, PathBuf) {
    let (lab, agent) = (sibling("rebootguard-lab"), sibling("rebootguard"));
    if !lab.is_file() || !agent.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = std::process::Command::new(cargo)
            .args(["build", "--release", "-p", "rebootguard", "-p"])
            .arg("rebootguard-lab")
            .status()
            .expect("cargo runs");
        assert!(built.success(), "building the binaries failed");
    }
    (lab, agent)
}

/// `nodes` plain nodes at time scale 1, one plain pod on each.
fn scenario(nodes: usize) -> Scenario {
    let mut s = Scenario::plain(nodes);
    s.time_scale = 1.0;
    s.workloads.push(Workload {
        namespace: "default".into(),
        name: "echo".into(),
        behaviour: Behaviour::Plain,
        replicas: None,
        nodes: vec![],
        bare: false,
    });
    s
}

async fn agent_lab(nodes: usize, lab_exe: &Path, agent_exe: &Path) -> Lab {
    let mut o = Options::new(lab_exe.to_path_buf());
    o.base_dir = std::env::temp_dir().join("rebootguard-agent-bench");
    o.agent = true;
    o.rebootguard = Some(agent_exe.to_path_buf());
    let lab = Lab::up(scenario(nodes), o).await.expect("lab up");
    let names = names(&lab);
    wait(
        &lab,
        "every node PodNetworkReady True",
        Duration::from_secs(300),
        |l| names.iter().all(|n| healthy(l, n)),
    )
    .await;
    lab
}

fn names(lab: &Lab) -> Vec<String> {
    lab.ctx.nodes.iter().map(|n| n.name.clone()).collect()
}

async fn wait(lab: &Lab, what: &str, limit: Duration, mut done: impl FnMut(&Lab) -> bool) {
    let t = Instant::now();
    while !done(lab) {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `PodNetworkReady` True and the readiness taint gone.
fn healthy(lab: &Lab, node: &str) -> bool {
    lab.ctx.api.node(node).is_some_and(|n| {
        let ready = n["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == CONDITION && c["status"] == "True")
        });
        let tainted = n["spec"]["taints"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["key"] == TAINT));
        ready && !tainted
    })
}

/// Every `PodNetworkReady` status change a watch delivered: (node, status,
/// when it arrived).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String, Timestamp)>>>);

impl Seen {
    fn watch(lab: &Lab) -> Seen {
        let seen = Seen::default();
        let api: kube::Api<Node> = kube::Api::all(lab.ctx.api.sim.client().expect("client"));
        let out = seen.clone();
        tokio::spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let n = match event {
                    Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => n,
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("the benchmark's watch of Nodes failed (retrying): {e}");
                        continue;
                    }
                };
                let now = Timestamp::now();
                let name = n.metadata.name.clone().unwrap_or_default();
                let Some(c) = n
                    .status
                    .and_then(|s| s.conditions)
                    .and_then(|c| c.into_iter().find(|c| c.type_ == CONDITION))
                else {
                    continue;
                };
                let mut all = out.0.lock().expect("lock");
                if all
                    .iter()
                    .rev()
                    .find(|(n, ..)| *n == name)
                    .is_none_or(|(_, s, _)| *s != c.status)
                {
                    all.push((name, c.status, now));
                }
            }
        });
        seen
    }

    /// When `node` was first seen `False` at or after `since`.
    fn went_false(&self, node: &str, since: Timestamp) -> Option<Timestamp> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .find(|(n, s, t)| n == node && s == "False" && *t >= since)
            .map(|(.., t)| *t)
    }
}

/// One kind of trial: the fault, and whether the agent heals it alone
/// (subnet.env from its store) or the bench restarts k3s after detection.
struct Trial {
    name: &'static str,
    fault: fn(&str) -> RuntimeFault,
    heals_alone: bool,
}

const TRIALS: [Trial; 4] = [
    Trial {
        name: "delete-subnet-env",
        fault: |_| RuntimeFault::DeleteSubnetEnv,
        heals_alone: true,
    },
    Trial {
        name: "corrupt-subnet-env",
        fault: |_| RuntimeFault::CorruptSubnetEnv,
        heals_alone: true,
    },
    Trial {
        name: "delete-flannel-link",
        fault: |_| RuntimeFault::DeleteFlannelLink,
        heals_alone: false,
    },
    Trial {
        name: "drop-peer",
        fault: |peer| RuntimeFault::DropPeer { peer: peer.into() },
        heals_alone: false,
    },
];

/// Milliseconds from each fault to the condition's change, per fault.
async fn latencies(lab: &Lab, trials: usize) -> Vec<(String, Vec<f64>)> {
    let seen = Seen::watch(lab);
    let names = names(lab);
    let (node, peers) = (&names[0], &names[1..]);
    let mut out = Vec::new();
    for kind in &TRIALS {
        let mut ms = Vec::with_capacity(trials);
        for i in 0..trials {
            wait(
                lab,
                &format!("{node} healthy before {} #{i}", kind.name),
                Duration::from_secs(120),
                |l| healthy(l, node),
            )
            .await;
            // Let the last heal's writes settle so this trial starts idle.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let fault = (kind.fault)(&peers[i % peers.len()]);
            // The instant before the fault: the agent can see it and the
            // watch deliver its verdict before `break_now` returns (two
            // cores), so the lab's own timestamp would come late.
            let at = Timestamp::now();
            lab.break_now(node, fault).await.expect("break");
            let mut changed = None;
            let t = Instant::now();
            while changed.is_none() {
                changed = seen.went_false(node, at);
                if t.elapsed() > Duration::from_secs(30) {
                    let log = std::fs::read_to_string(
                        lab.ctx.node(node).expect("node").root.join("agent.log"),
                    )
                    .unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(20).collect();
                    panic!(
                        "{node} never seen False after {} at {at}; seen: {:?}\nagent log (newest first):\n{}",
                        kind.name,
                        seen.0.lock().expect("lock"),
                        tail.join("\n")
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let took = changed.expect("seen").duration_since(at);
            ms.push(took.as_secs_f64() * 1000.0);
            if !kind.heals_alone {
                lab.restart_k3s(node, "the benchmark").expect("k3s restart");
            }
        }
        out.push((kind.name.to_owned(), ms));
    }
    out
}

/// The `q`-quantile (0..=1) of `values`, nearest rank.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// An agent's resident memory (kB: total, anonymous, file-backed) and CPU
/// time so far (clock ticks), from /proc.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kb: u64,
    anon_kb: u64,
    file_kb: u64,
    cpu_ticks: u64,
}

fn usage(pid: i32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the whole line.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| rest[i].parse::<u64>().expect("ticks");
    Usage {
        rss_kb: kb("VmRSS:"),
        anon_kb: kb("RssAnon:"),
        file_kb: kb("RssFile:"),
        cpu_ticks: ticks(11) + ticks(12),
    }
}

fn agent_pid(lab: &Lab, node: &str) -> i32 {
    let root = &lab.ctx.node(node).expect("node").root;
    std::fs::read_to_string(root.join("agent.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("agent.pid")
}

/// What the idle agents of a lab cost over `idle`.
struct Idle {
    nodes: usize,
    requests_per_node_min: f64,
    max_node_requests_per_min: f64,
    by_route: Vec<(String, String, f64)>,
    rss_mb: f64,
    anon_mb: f64,
    file_mb: f64,
    cpu_ms_per_min: f64,
}

async fn idle(lab: &Lab, idle: Duration) -> Idle {
    let names = names(lab);
    let pids: Vec<i32> = names.iter().map(|n| agent_pid(lab, n)).collect();
    let before: Vec<Usage> = pids.iter().map(|p| usage(*p)).collect();
    lab.ctx.api.sim.reset_requests();
    tokio::time::sleep(idle).await;
    let rows = lab.ctx.api.sim.requests_by_agent();
    let after: Vec<Usage> = pids.iter().map(|p| usage(*p)).collect();
    for (name, pid) in names.iter().zip(&pids) {
        assert_eq!(agent_pid(lab, name), *pid, "{name}'s agent restarted");
    }
    let minutes = idle.as_secs_f64() / 60.0;
    let n = names.len() as f64;
    let agents: Vec<_> = rows
        .iter()
        .filter(|(ua, ..)| ua.starts_with(AGENT_UA))
        .collect();
    let total: u64 = agents.iter().map(|r| r.3).sum();
    let per_node = names.iter().map(|name| {
        let tag = format!("({name})");
        agents
            .iter()
            .filter(|r| r.0.ends_with(&tag))
            .map(|r| r.3)
            .sum::<u64>()
    });
    let max_node = per_node.max().unwrap_or(0) as f64 / minutes;
    let mut routes: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for (_, verb, resource, count) in &agents {
        *routes.entry((verb.clone(), resource.clone())).or_default() += count;
    }
    let by_route = routes
        .into_iter()
        .map(|((verb, resource), c)| (verb, resource, c as f64 / minutes / n))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu_ms: f64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.cpu_ticks - b.cpu_ticks) as f64 * 1000.0 / hz)
        .sum();
    let mean = |f: fn(&Usage) -> u64| after.iter().map(f).sum::<u64>() as f64 / n / 1024.0;
    Idle {
        nodes: names.len(),
        requests_per_node_min: total as f64 / minutes / n,
        max_node_requests_per_min: max_node,
        by_route,
        rss_mb: after.iter().map(|u| u.rss_kb).max().unwrap_or(0) as f64 / 1024.0,
        anon_mb: mean(|u| u.anon_kb),
        file_mb: mean(|u| u.file_kb),
        cpu_ms_per_min: cpu_ms / minutes / n,
    }
}

fn print_idle(i: &Idle) {
    println!(
        "{} nodes, idle: {:.2} API requests/node/min (busiest node {:.2}); RSS max {:.1} MB (mean anon {:.1} MB, file-backed {:.1} MB); CPU {:.1} ms/min per agent ({:.3}% of a core)",
        i.nodes,
        i.requests_per_node_min,
        i.max_node_requests_per_min,
        i.rss_mb,
        i.anon_mb,
        i.file_mb,
        i.cpu_ms_per_min,
        i.cpu_ms_per_min / 600.0
    );
    for (verb, resource, per) in &i.by_route {
        println!("    {verb:>6} {resource:<24} {per:.2}/node/min");
    }
}

fn idle_json(i: &Idle) -> Value {
    json!({
        "nodes": i.nodes,
        "requests_per_node_per_min": i.requests_per_node_min,
        "busiest_node_requests_per_min": i.max_node_requests_per_min,
        "routes_per_node_per_min": i.by_route.iter()
            .map(|(v, r, c)| json!({"verb": v, "resource": r, "per_min": c}))
            .collect::<Vec<_>>(),
        "rss_max_mb": i.rss_mb,
        "rss_anon_mean_mb": i.anon_mb,
        "rss_file_mean_mb": i.file_mb,
        "cpu_ms_per_min": i.cpu_ms_per_min,
    })
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if let Err(reason) = rebootguard_hostnet::netns::privileged() {
        eprintln!(
            "skipping the agent benchmark: {}",
            rebootguard_errors::chain(&reason)
        );
        return ExitCode::SUCCESS;
    }
    let trials = env_or("TRIALS", 20usize);
    let idle_for = Duration::from_secs(env_or("IDLE_SECS", 300u64));
    let big = env_or("BIG_NODES", 50usize);
    let (lab_exe, agent_exe) = binaries();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .expect("runtime");
    let mut missed = Vec::new();

    let (faults, small) = runtime.block_on(async {
        let lab = agent_lab(3, &lab_exe, &agent_exe).await;
        let faults = latencies(&lab, trials).await;
        let names = names(&lab);
        wait(
            &lab,
            "every node healthy before the idle window",
            Duration::from_secs(120),
            |l| names.iter().all(|n| healthy(l, n)),
        )
        .await;
        (faults, idle(&lab, idle_for).await)
    });
    println!("fault → {CONDITION} False on the API, {trials} trials each (ms):");
    let mut fault_json = Vec::new();
    for (name, ms) in &faults {
        let (p50, p99, max) = (quantile(ms, 0.5), quantile(ms, 0.99), quantile(ms, 1.0));
        println!("    {name:<20} p50 {p50:7.1}  p99 {p99:7.1}  max {max:7.1}");
        if p50 > 200.0 || p99 > 1000.0 {
            missed.push(format!("{name}: p50 {p50:.0} ms, p99 {p99:.0} ms"));
        }
        fault_json.push(
            json!({"fault": name, "p50_ms": p50, "p99_ms": p99, "max_ms": max, "samples_ms": ms}),
        );
    }
    print_idle(&small);
    if small.rss_mb > 15.0 {
        missed.push(format!("RSS {:.1} MB > 15 MB", small.rss_mb));
    }
    let mut report = json!({
        "trials": trials,
        "idle_secs": idle_for.as_secs(),
        "faults": fault_json,
        "idle": [idle_json(&small)],
    });
    if big > 0 {
        let large = runtime.block_on(async {
            let lab = agent_lab(big, &lab_exe, &agent_exe).await;
            idle(&lab, idle_for).await
        });
        print_idle(&large);
        let ratio = large.requests_per_node_min / small.requests_per_node_min.max(f64::EPSILON);
        println!("requests per node per minute, {big} nodes / 3 nodes: {ratio:.2} (target <= 1.2)");
        if ratio > 1.2 {
            missed.push(format!("API load grows with the cluster: ratio {ratio:.2}"));
        }
        report["idle"]
            .as_array_mut()
            .expect("array")
            .push(idle_json(&large));
        report["ratio_big_to_small"] = json!(ratio);
    }
    if let Ok(path) = std::env::var("JSON") {
        std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json"))
            .expect("write JSON");
    }
    if missed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("targets missed: {}", missed.join("; "));
        ExitCode::FAILURE
    }
}
