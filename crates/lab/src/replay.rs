//! Replaying a scenario: boot the lab, run the schedule, sample what the
//! cluster looks like, and sum it up against the scenario's expectations.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::api;
use crate::lab::{Entry, Lab, Options};
use crate::scenario::{Behaviour, Scenario, Step};

/// One sample of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Lab seconds since start.
    pub t: f64,
    /// Real-world seconds.
    pub real: f64,
    /// Pods that exist.
    pub pods: usize,
    /// Pods Running and Ready.
    pub running: usize,
    /// Pods shown `Unknown` (NodeLost).
    pub unknown: usize,
    /// Pods in ContainerCreating.
    pub creating: usize,
    /// Nodes Ready.
    pub nodes_ready: usize,
    /// HelmReleases Ready.
    pub helmreleases_ready: usize,
    /// Per part of the cascade (CoreDNS, Flux, Longhorn, PVC workloads):
    /// `[running, pods]`.
    pub groups: BTreeMap<String, [usize; 2]>,
}

/// The part of the cascade a behaviour belongs to.
pub fn group(b: Behaviour) -> Option<&'static str> {
    match b {
        Behaviour::Dns => Some("CoreDNS"),
        Behaviour::Flux => Some("Flux"),
        Behaviour::LonghornManager | Behaviour::LonghornCsi => Some("Longhorn"),
        Behaviour::Volume => Some("PVC workloads"),
        Behaviour::Plain | Behaviour::Broken => None,
    }
}

/// Pushes a sample and notes in the timeline when a part of the cascade
/// goes down (not every pod running) or comes back.
fn record(lab: &Lab, samples: &mut Vec<Sample>, up: &mut BTreeMap<String, bool>) {
    let s = sample(lab);
    for (g, [running, total]) in &s.groups {
        let now = running == total && *total > 0;
        let before = up.insert(g.clone(), now);
        if before.is_some_and(|b| b != now) || (before.is_none() && now) {
            let what = if now { "up" } else { "down" };
            lab.ctx.timeline.note(
                &lab.ctx,
                None,
                "cascade",
                &format!("{g} {what} ({running}/{total} running)"),
            );
        }
    }
    samples.push(s);
}

/// A cross-node probe: from a pod on one node to another node's overlay.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// When (lab seconds).
    pub t: f64,
    /// The phase of the replay.
    pub phase: String,
    /// `node -> node: ok` for every pair tried.
    pub results: BTreeMap<String, bool>,
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Protected by rebootguard?
    pub protected: bool,
    /// The node agent ran on every node (and no human fixed anything)?
    pub agent: bool,
    /// Lab-to-real time scale.
    pub time_scale: f64,
    /// Events and actions.
    pub timeline: Vec<Entry>,
    /// Samples, once per lab second or so.
    pub samples: Vec<Sample>,
    /// Cross-node probes.
    pub probes: Vec<Probe>,
    /// The first `FailedCreatePodSandBox` message, if any.
    pub first_failure: Option<String>,
    /// `FailedCreatePodSandBox` events (sum of counts).
    pub sandbox_failures: u64,
    /// Events by reason: total count (aggregated repeats included).
    pub events: BTreeMap<String, u64>,
    /// The first message seen for each event reason.
    pub event_examples: BTreeMap<String, String>,
    /// Pods running at the end / pods.
    pub running_at_end: usize,
    /// Pods at the end.
    pub pods_at_end: usize,
    /// HelmReleases Ready at the end.
    pub helmreleases_ready_at_end: usize,
    /// Lab seconds from the first failure to the end of the last wait-healthy.
    pub recovered_after: Option<f64>,
    /// Expectations that failed (empty: the scenario behaved as written).
    pub unmet: Vec<String>,
    /// Wall time of the replay, seconds.
    pub wall: f64,
}

/// Samples the cluster now.
pub fn sample(lab: &Lab) -> Sample {
    let ctx = &lab.ctx;
    let pods = ctx.api.pods();
    let t = ctx.start.elapsed().as_secs_f64();
    let hr = ctx
        .scenario
        .helmreleases
        .iter()
        .filter(|r| {
            let (ns, n) = r.split_once('/').unwrap_or(("default", r));
            ctx.api
                .sim
                .get("helm.toolkit.fluxcd.io/v2", "HelmRelease", ns, n)
                .is_some_and(|o| api::condition(&o, "Ready") == Some("True"))
        })
        .count();
    Sample {
        t,
        real: t * ctx.scenario.time_scale,
        pods: pods.len(),
        running: pods.iter().filter(|p| api::pod_running(p)).count(),
        unknown: pods
            .iter()
            .filter(|p| p.pointer("/status/reason").and_then(Value::as_str) == Some("NodeLost"))
            .count(),
        creating: pods
            .iter()
            .filter(|p| {
                p.pointer("/status/containerStatuses/0/state/waiting/reason")
                    .and_then(Value::as_str)
                    == Some("ContainerCreating")
            })
            .count(),
        nodes_ready: ctx
            .api
            .nodes()
            .iter()
            .filter(|n| api::condition(n, "Ready") == Some("True"))
            .count(),
        helmreleases_ready: hr,
        groups: {
            let mut g: BTreeMap<String, [usize; 2]> = BTreeMap::new();
            for p in &pods {
                if let Some(name) = group(ctx.behaviour(p)) {
                    let e = g.entry(name.to_owned()).or_default();
                    e[1] += 1;
                    if api::pod_running(p) {
                        e[0] += 1;
                    }
                }
            }
            g
        },
    }
}

/// Pings, from one running pod per node, every other node's flannel
/// address (the peer's lease network address on `flannel.1`) and one
/// running pod there if any. When the cluster should be `healthy`, pods
/// still starting after a reboot get a moment (a loaded machine is slow),
/// and so does flannel to follow new peers; otherwise what is, is recorded.
pub fn probe(lab: &Lab, phase: &str, healthy: bool) -> Probe {
    let ctx = &lab.ctx;
    let mut results = BTreeMap::new();
    let settle = if healthy {
        Duration::from_secs(15)
    } else {
        Duration::ZERO
    };
    let started = Instant::now();
    let running_everywhere = || {
        let pods = ctx.api.pods();
        ctx.nodes.iter().all(|n| {
            pods.iter().any(|p| {
                p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(n.name.as_str())
                    && api::pod_running(p)
                    && ctx.behaviour(p) == Behaviour::Plain
            })
        })
    };
    while !running_everywhere() && started.elapsed() < settle {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pods = ctx.api.pods();
    let pod_on = |node: &str| {
        pods.iter()
            .filter(|p| {
                p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
                    && api::pod_running(p)
                    && ctx.behaviour(p) == Behaviour::Plain
            })
            .find_map(|p| {
                let ip: Ipv4Addr = p.pointer("/status/podIP")?.as_str()?.parse().ok()?;
                Some((format!("{}/{}", api::namespace(p), api::name(p)), ip))
            })
    };
    for a in &ctx.nodes {
        for b in &ctx.nodes {
            if a.name == b.name {
                continue;
            }
            let Some((from, _)) = pod_on(&a.name) else {
                results.insert(
                    format!("{} -> {}: no running pod on {}", a.name, b.name, a.name),
                    false,
                );
                continue;
            };
            let target = match pod_on(&b.name) {
                Some((_, ip)) => ip,
                None => match ctx.api.node(&b.name).and_then(|n| {
                    n.pointer("/spec/podCIDR")?
                        .as_str()?
                        .parse::<ipnet::Ipv4Net>()
                        .ok()
                }) {
                    Some(c) => c.network(),
                    None => continue,
                },
            };
            let deadline = Instant::now()
                + if healthy {
                    Duration::from_secs(3)
                } else {
                    Duration::ZERO
                };
            let ok = loop {
                let ok = lab.ping_from_pod(&from, target).unwrap_or(false);
                if ok || Instant::now() >= deadline {
                    break ok;
                }
            };
            results.insert(format!("{} -> {} ({target})", a.name, b.name), ok);
        }
    }
    Probe {
        t: ctx.start.elapsed().as_secs_f64(),
        phase: phase.into(),
        results,
    }
}

/// Runs a scenario from start to end and reports.
pub async fn replay(scenario: Scenario, options: Options) -> Result<Report, crate::lab::Error> {
    let wall = Instant::now();
    let protected = options.protected;
    let agent = options.agent;
    let lab = Lab::up(scenario.clone(), options).await?;
    let lab = Arc::new(lab);
    let mut samples = Vec::new();
    let mut up = BTreeMap::new();
    let mut probes = Vec::new();
    let mut recovered_after = None;
    for (i, step) in scenario.steps.iter().enumerate() {
        match step {
            Step::WaitHealthy { timeout } => {
                let want = scenario
                    .workloads
                    .iter()
                    .filter(|w| w.behaviour != Behaviour::Broken)
                    .map(|w| scenario.placements(w).len())
                    .sum::<usize>();
                let deadline = Instant::now() + scenario.scaled(*timeout);
                loop {
                    record(&lab, &mut samples, &mut up);
                    let healthy = samples.last().is_some_and(|s| {
                        s.running >= want && s.helmreleases_ready == scenario.helmreleases.len()
                    });
                    if healthy || Instant::now() > deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                lab.ctx.timeline.note(
                    &lab.ctx,
                    None,
                    "step",
                    &format!("healthy check {} done", i + 1),
                );
                probes.push(probe(&lab, if i == 0 { "before" } else { "after" }, true));
                if i > 0 {
                    recovered_after = Some(lab.ctx.start.elapsed().as_secs_f64());
                }
            }
            Step::Reboot {
                nodes,
                faults,
                down,
            } => {
                let nodes = scenario.expand(nodes);
                for n in &nodes {
                    for f in faults {
                        lab.inject(n, *f)?;
                    }
                }
                lab.ctx.timeline.note(
                    &lab.ctx,
                    None,
                    "step",
                    &format!("reboot {}", nodes.join(", ")),
                );
                let lab2 = lab.clone();
                let d = scenario.scaled(*down);
                let task = tokio::spawn(async move { lab2.reboot(&nodes, d).await });
                while !task.is_finished() {
                    record(&lab, &mut samples, &mut up);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                task.await
                    .map_err(|e| crate::lab::Error::Switch(Box::new(e)))??;
            }
            Step::Wait { r#for } => {
                let deadline = Instant::now() + scenario.scaled(*r#for);
                while Instant::now() < deadline {
                    record(&lab, &mut samples, &mut up);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                // Protected, the reboot must not have broken anything.
                probes.push(probe(&lab, "during", protected));
            }
            Step::FixManually => {
                if protected {
                    lab.ctx.timeline.note(
                        &lab.ctx,
                        None,
                        "step",
                        "fix-manually skipped: protected, nothing to fix",
                    );
                } else if agent {
                    lab.ctx.timeline.note(
                        &lab.ctx,
                        None,
                        "step",
                        "fix-manually skipped: the node agent heals, no human acts",
                    );
                } else {
                    lab.fix_manually().await;
                }
            }
        }
    }
    let failures = lab.ctx.api.events_with_reason("FailedCreatePodSandBox");
    let first_failure = failures
        .iter()
        .min_by_key(|e| e["metadata"]["name"].as_str().map(str::to_owned))
        .and_then(|e| e["message"].as_str().map(str::to_owned));
    let sandbox_failures = failures
        .iter()
        .map(|e| e["count"].as_u64().unwrap_or(1))
        .sum();
    let mut events = BTreeMap::new();
    let mut event_examples = BTreeMap::new();
    let mut all = lab.ctx.api.sim.list("v1", "Event", None);
    all.sort_by_key(|e| e["metadata"]["name"].as_str().map(str::to_owned));
    for e in &all {
        let reason = e["reason"].as_str().unwrap_or_default().to_owned();
        *events.entry(reason.clone()).or_insert(0) += e["count"].as_u64().unwrap_or(1);
        event_examples
            .entry(reason)
            .or_insert_with(|| e["message"].as_str().unwrap_or_default().to_owned());
    }
    let last = sample(&lab);
    let mut report = Report {
        scenario: scenario.name.clone(),
        protected,
        agent,
        time_scale: scenario.time_scale,
        timeline: lab.ctx.timeline.entries(),
        samples,
        probes,
        first_failure,
        sandbox_failures,
        events,
        event_examples,
        running_at_end: last.running,
        pods_at_end: last.pods,
        helmreleases_ready_at_end: last.helmreleases_ready,
        recovered_after,
        unmet: Vec::new(),
        wall: 0.0,
    };
    report.unmet = check(&scenario, &report);
    drop(lab);
    report.wall = wall.elapsed().as_secs_f64();
    Ok(report)
}

/// The scenario's expectations this report does not meet.
pub fn check(s: &Scenario, r: &Report) -> Vec<String> {
    let e = &s.expect;
    let mut unmet = Vec::new();
    if let Some(n) = e.pods
        && r.pods_at_end != n
    {
        unmet.push(format!("expected {n} pods, found {}", r.pods_at_end));
    }
    if let Some(n) = e.running_at_end
        && r.running_at_end < n
    {
        unmet.push(format!(
            "expected {n} pods Running at the end, found {}",
            r.running_at_end
        ));
    }
    if let Some(n) = e.helmreleases_ready_at_end
        && r.helmreleases_ready_at_end < n
    {
        unmet.push(format!(
            "expected {n} HelmReleases Ready at the end, found {}",
            r.helmreleases_ready_at_end
        ));
    }
    if r.protected {
        if e.protected_no_sandbox_failures && r.sandbox_failures > 0 {
            unmet.push(format!(
                "protected, yet {} sandbox failures: {}",
                r.sandbox_failures,
                r.first_failure.clone().unwrap_or_default()
            ));
        }
    } else {
        // With the agent, no sandbox may ever fail: its taint can keep pods
        // off a broken node until it has healed it. A failure that did
        // happen must still be the expected one.
        let prevented = r.agent && r.first_failure.is_none();
        if let Some(text) = &e.unprotected_failure_contains
            && !prevented
            && !r
                .first_failure
                .as_deref()
                .is_some_and(|f| f.contains(text.as_str()))
        {
            unmet.push(format!(
                "expected a FailedCreatePodSandBox containing {text:?}, first was {:?}",
                r.first_failure
            ));
        }
        // The agent may well have healed it before anyone looked.
        if e.unprotected_cross_node_broken && !r.agent {
            let during = r.probes.iter().find(|p| p.phase == "during");
            if !during.is_some_and(|p| p.results.values().any(|ok| !ok)) {
                unmet
                    .push("expected cross-node pod traffic to be broken during the failure".into());
            }
        }
    }
    if let Some(before) = r.probes.iter().find(|p| p.phase == "before")
        && before.results.values().any(|ok| !ok)
    {
        unmet.push(format!(
            "cross-node traffic broken before the reboot: {:?}",
            before.results
        ));
    }
    if let Some(after) = r.probes.iter().rev().find(|p| p.phase == "after")
        && after.results.values().any(|ok| !ok)
    {
        unmet.push(format!(
            "cross-node traffic still broken at the end: {:?}",
            after.results
        ));
    }
    unmet
}

/// The timeline and summary as text.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mode = if r.protected {
        "protected by rebootguard"
    } else if r.agent {
        "unprotected, healed by rebootguard's node agent"
    } else {
        "unprotected"
    };
    let _ = writeln!(
        out,
        "replay {} ({mode}); 1 lab second = {} real seconds\n",
        r.scenario, r.time_scale
    );
    let _ = writeln!(out, "timeline (real-world mm:ss since start):");
    let mut last_running = (usize::MAX, 0, 0, 0, 0, 0);
    let key = |s: &Sample| {
        (
            s.running,
            s.pods,
            s.unknown,
            s.creating,
            s.nodes_ready,
            s.helmreleases_ready,
        )
    };
    let mut samples = r.samples.iter().peekable();
    for e in &r.timeline {
        while let Some(s) = samples.peek() {
            if s.t > e.t {
                break;
            }
            if key(s) != last_running {
                let _ = writeln!(
                    out,
                    "  {}  pods running {}/{} (Unknown {}, ContainerCreating {}), nodes Ready {}, HelmReleases Ready {}",
                    clock(s.real),
                    s.running,
                    s.pods,
                    s.unknown,
                    s.creating,
                    s.nodes_ready,
                    s.helmreleases_ready
                );
                last_running = key(s);
            }
            samples.next();
        }
        if e.kind == "rebootguard" && e.text.contains("backup") {
            continue;
        }
        let _ = writeln!(
            out,
            "  {}  [{}] {}{}",
            clock(e.real),
            e.kind,
            e.node
                .as_deref()
                .map(|n| format!("{n}: "))
                .unwrap_or_default(),
            e.text
        );
    }
    for s in samples {
        if key(s) != last_running {
            let _ = writeln!(
                out,
                "  {}  pods running {}/{} (Unknown {}, ContainerCreating {}), nodes Ready {}, HelmReleases Ready {}",
                clock(s.real),
                s.running,
                s.pods,
                s.unknown,
                s.creating,
                s.nodes_ready,
                s.helmreleases_ready
            );
            last_running = key(s);
        }
    }
    let _ = writeln!(out, "\ncross-node pings:");
    for p in &r.probes {
        let ok = p.results.values().filter(|v| **v).count();
        let _ = writeln!(out, "  {:<7} {ok}/{} ok", p.phase, p.results.len());
        for (k, v) in &p.results {
            if !v {
                let _ = writeln!(out, "          failed: {k}");
            }
        }
    }
    let _ = writeln!(out, "\nsummary:");
    let _ = writeln!(
        out,
        "  first failing event: {}",
        r.first_failure.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        out,
        "  FailedCreatePodSandBox events: {}",
        r.sandbox_failures
    );
    let _ = writeln!(
        out,
        "  at the end: {}/{} pods Running, {} HelmReleases Ready",
        r.running_at_end, r.pods_at_end, r.helmreleases_ready_at_end
    );
    let _ = writeln!(out, "  wall time: {:.1}s", r.wall);
    if r.unmet.is_empty() {
        let _ = writeln!(out, "  outcome: as the scenario expects");
    } else {
        for u in &r.unmet {
            let _ = writeln!(out, "  UNMET: {u}");
        }
    }
    out
}

fn clock(real: f64) -> String {
    let s = real.max(0.0) as u64;
    format!("{:02}:{:02}", s / 60, s % 60)
}
