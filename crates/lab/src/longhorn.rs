//! Longhorn's manager, as much as a storage gate needs: the scenario's
//! volumes as `volumes.longhorn.io`, their replicas as `replicas.longhorn.io`
//! and their engines as `engines.longhorn.io` in `longhorn-system`, with the
//! fields, values and labels longhorn-manager writes (`status.state`,
//! `status.robustness`, `status.currentNodeID`; `spec.nodeID`,
//! `spec.volumeName`, `status.currentState`; `longhornvolume`,
//! `longhornnode`, `longhorndiskuuid`).
//!
//! Key design decision: the replica life cycle is a pure step function
//! ([`step`]) over what the lab knows about each replica's node (powered,
//! Ready, its longhorn-manager pod running when the scenario has one), and
//! robustness a pure function of the replicas' modes ([`robustness`]); the
//! [`Manager`] only feeds them facts and writes what changed. A replica
//! fails the moment its node powers off (its process dies with the node),
//! is reused and rebuilt once the node can run it again, and counts as
//! healthy only after the scenario's rebuild time; with no healthy replica
//! left the volume is faulted, and auto-salvage revives the replicas that
//! held complete data when their nodes return.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api;
use crate::lab::Ctx;
use crate::scenario::{Behaviour, Scenario};

/// Longhorn's namespace.
pub const NAMESPACE: &str = "longhorn-system";
/// The API version of Longhorn's objects.
pub const API_VERSION: &str = "longhorn.io/v1beta2";
/// The label naming a replica's or engine's volume.
pub const LABEL_VOLUME: &str = "longhornvolume";
/// The label naming a replica's or engine's node.
pub const LABEL_NODE: &str = "longhornnode";
/// The label naming a replica's disk.
pub const LABEL_DISK: &str = "longhorndiskuuid";
/// The engine image the objects name.
const IMAGE: &str = "longhornio/longhorn-engine:v1.8.1";

/// A replica's mode, as the volume's engine sees it
/// (`status.replicaModeMap`: `RW`, `WO`, `ERR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In sync (`RW`).
    Healthy,
    /// Being rebuilt from a healthy replica since the instant (`WO`).
    Rebuilding(Instant),
    /// Failed (`ERR`); `complete` when it held all the data when it
    /// failed (it was healthy), so auto-salvage may revive it.
    Failed {
        /// It was healthy when it failed.
        complete: bool,
    },
}

impl Mode {
    /// The engine's word for it.
    pub fn engine_mode(self) -> &'static str {
        match self {
            Mode::Healthy => "RW",
            Mode::Rebuilding(_) => "WO",
            Mode::Failed { .. } => "ERR",
        }
    }
}

/// `status.state` of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `attached`: its engine runs on `currentNodeID`.
    Attached,
    /// `detached`: no engine.
    Detached,
}

/// `status.robustness` of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Robustness {
    /// `healthy`: every wanted replica is in sync.
    Healthy,
    /// `degraded`: attached, fewer healthy replicas than wanted.
    Degraded,
    /// `faulted`: no healthy replica left (and so detached).
    Faulted,
    /// `unknown`: detached for another reason (its engine's node is down).
    Unknown,
}

impl State {
    /// Longhorn's value.
    pub fn name(self) -> &'static str {
        match self {
            State::Attached => "attached",
            State::Detached => "detached",
        }
    }
}

impl Robustness {
    /// Longhorn's value.
    pub fn name(self) -> &'static str {
        match self {
            Robustness::Healthy => "healthy",
            Robustness::Degraded => "degraded",
            Robustness::Faulted => "faulted",
            Robustness::Unknown => "unknown",
        }
    }
}

/// One step of a volume's replicas: `modes` and `node_ok` (can the
/// replica's node run it now) side by side, `engine_ok` whether the
/// engine's node can run the engine. Pure.
pub fn step(
    modes: &[Mode],
    node_ok: &[bool],
    engine_ok: bool,
    now: Instant,
    rebuild: Duration,
) -> Vec<Mode> {
    // A replica whose node went away fails at once; a half-rebuilt one
    // never held all the data.
    let mut next: Vec<Mode> = modes
        .iter()
        .zip(node_ok)
        .map(|(m, ok)| match (m, ok) {
            (Mode::Healthy, false) => Mode::Failed { complete: true },
            (Mode::Rebuilding(_), false) => Mode::Failed { complete: false },
            (m, _) => *m,
        })
        .collect();
    if !engine_ok {
        // No engine, no rebuild: what was being rebuilt is lost.
        for m in &mut next {
            if let Mode::Rebuilding(_) = m {
                *m = Mode::Failed { complete: false };
            }
        }
        return next;
    }
    let sources = next.iter().filter(|m| **m == Mode::Healthy).count();
    for (m, ok) in next.iter_mut().zip(node_ok) {
        *m = match (*m, *ok) {
            // Its source died mid-rebuild.
            (Mode::Rebuilding(_), _) if sources == 0 => Mode::Failed { complete: false },
            (Mode::Rebuilding(since), _) if now.duration_since(since) >= rebuild => Mode::Healthy,
            (Mode::Failed { .. }, true) if sources > 0 => Mode::Rebuilding(now),
            // Auto-salvage: with nothing to rebuild from, a replica that
            // held all the data is taken as it is.
            (Mode::Failed { complete: true }, true) => Mode::Healthy,
            (m, _) => m,
        };
    }
    next
}

/// A volume's state and robustness from its replicas' modes, whether its
/// engine's node is up, and `numberOfReplicas`. Pure.
pub fn robustness(modes: &[Mode], engine_ok: bool, wanted: usize) -> (State, Robustness) {
    let healthy = modes.iter().filter(|m| **m == Mode::Healthy).count();
    if healthy == 0 {
        (State::Detached, Robustness::Faulted)
    } else if !engine_ok {
        (State::Detached, Robustness::Unknown)
    } else if healthy < wanted {
        (State::Attached, Robustness::Degraded)
    } else {
        (State::Attached, Robustness::Healthy)
    }
}

/// A replica's `status.currentState`: `error` once failed, else `running`
/// while its volume is attached and `stopped` while it is not.
pub fn replica_state(mode: Mode, state: State) -> &'static str {
    match (mode, state) {
        (Mode::Failed { .. }, _) => "error",
        (_, State::Attached) => "running",
        (_, State::Detached) => "stopped",
    }
}

#[derive(Debug)]
struct Replica {
    name: String,
    node: String,
    data_dir: String,
    mode: Mode,
    failed_at: String,
    healthy_at: String,
    last_failed_at: String,
    last_healthy_at: String,
}

#[derive(Debug)]
struct Volume {
    name: String,
    size: u64,
    wanted: usize,
    attached_to: String,
    replicas: Vec<Replica>,
    last_degraded_at: String,
}

/// The emulated longhorn-manager: owns the scenario's volumes.
#[derive(Debug)]
pub struct Manager {
    volumes: Vec<Volume>,
    disks: BTreeMap<String, String>,
    rebuild: Duration,
    created: bool,
    written: BTreeMap<(String, String), Value>,
}

impl Manager {
    /// The volumes of `scenario`, all healthy, not yet in the API.
    pub fn new(scenario: &Scenario) -> Manager {
        let now = kubesim::time::now();
        let volumes = scenario
            .volumes
            .iter()
            .enumerate()
            .map(|(i, v)| Volume {
                name: v.name.clone(),
                size: crate::scenario::parse_size(&v.size).unwrap_or(1 << 30),
                wanted: v.replicas,
                attached_to: scenario.attached_node(i, v),
                replicas: scenario
                    .replica_nodes(i, v)
                    .into_iter()
                    .map(|node| {
                        let id = crate::lab::random_hex(8);
                        Replica {
                            name: format!("{}-r-{id}", v.name),
                            data_dir: format!("{}-{id}", v.name),
                            node,
                            mode: Mode::Healthy,
                            failed_at: String::new(),
                            healthy_at: now.clone(),
                            last_failed_at: String::new(),
                            last_healthy_at: now.clone(),
                        }
                    })
                    .collect(),
                last_degraded_at: String::new(),
            })
            .collect();
        let disks = scenario
            .nodes
            .iter()
            .map(|n| (n.name.clone(), uuid()))
            .collect();
        Manager {
            volumes,
            disks,
            rebuild: scenario.scaled(scenario.longhorn.rebuild),
            created: false,
            written: BTreeMap::new(),
        }
    }

    /// One reconcile: every replica's node judged, the modes stepped, and
    /// the objects written where they changed.
    pub fn tick(&mut self, ctx: &Ctx) {
        if self.volumes.is_empty() {
            return;
        }
        let now = Instant::now();
        let stamp = kubesim::time::now();
        let ok = nodes_ok(ctx);
        let can = |node: &str| ok.get(node).copied().unwrap_or(false);
        for v in &mut self.volumes {
            let modes: Vec<Mode> = v.replicas.iter().map(|r| r.mode).collect();
            let node_ok: Vec<bool> = v.replicas.iter().map(|r| can(&r.node)).collect();
            let engine_ok = can(&v.attached_to);
            let next = step(&modes, &node_ok, engine_ok, now, self.rebuild);
            for (r, m) in v.replicas.iter_mut().zip(next) {
                match (r.mode, m) {
                    (Mode::Failed { .. }, Mode::Failed { .. }) => {}
                    (_, Mode::Failed { .. }) => {
                        r.failed_at.clone_from(&stamp);
                        r.last_failed_at.clone_from(&stamp);
                        r.healthy_at.clear();
                        ctx.timeline.note(
                            ctx,
                            Some(&r.node),
                            "longhorn",
                            &format!("replica {} of {} failed", r.name, v.name),
                        );
                    }
                    (Mode::Failed { .. }, Mode::Rebuilding(_)) => {
                        // Reused: Longhorn clears failedAt when it rebuilds
                        // a failed replica in place.
                        r.failed_at.clear();
                        ctx.timeline.note(
                            ctx,
                            Some(&r.node),
                            "longhorn",
                            &format!("replica {} of {} rebuilding", r.name, v.name),
                        );
                    }
                    (old, Mode::Healthy) if old != Mode::Healthy => {
                        r.failed_at.clear();
                        r.healthy_at.clone_from(&stamp);
                        r.last_healthy_at.clone_from(&stamp);
                        ctx.timeline.note(
                            ctx,
                            Some(&r.node),
                            "longhorn",
                            &format!("replica {} of {} healthy", r.name, v.name),
                        );
                    }
                    _ => {}
                }
                r.mode = m;
            }
            let modes: Vec<Mode> = v.replicas.iter().map(|r| r.mode).collect();
            if robustness(&modes, engine_ok, v.wanted).1 == Robustness::Degraded
                && v.last_degraded_at.is_empty()
            {
                v.last_degraded_at.clone_from(&stamp);
            }
        }
        self.write(ctx, &ok);
    }

    /// Creates the objects once, then writes each whose content changed.
    fn write(&mut self, ctx: &Ctx, ok: &BTreeMap<String, bool>) {
        let mut objects = Vec::new();
        for v in &self.volumes {
            let modes: Vec<Mode> = v.replicas.iter().map(|r| r.mode).collect();
            let engine_ok = ok.get(&v.attached_to).copied().unwrap_or(false);
            let (state, robust) = robustness(&modes, engine_ok, v.wanted);
            objects.push(volume_object(v, state, robust));
            objects.push(engine_object(v, state));
            for r in &v.replicas {
                let disk = self.disks.get(&r.node).cloned().unwrap_or_default();
                objects.push(replica_object(v, r, state, &disk));
            }
        }
        for o in objects {
            let key = (
                o["kind"].as_str().unwrap_or_default().to_owned(),
                api::name(&o).to_owned(),
            );
            if self.written.get(&key) == Some(&o) {
                continue;
            }
            let done = if self.created {
                ctx.api
                    .merge(API_VERSION, &key.0, NAMESPACE, &key.1, &json!({"metadata": {"labels": o["metadata"]["labels"]}, "spec": o["spec"]}))
                    .and_then(|_| {
                        ctx.api.merge_status(
                            API_VERSION,
                            &key.0,
                            NAMESPACE,
                            &key.1,
                            &json!({"status": o["status"]}),
                        )
                    })
                    .is_ok()
            } else {
                ctx.api.apply(&o).is_ok()
            };
            if done {
                self.written.insert(key, o);
            }
        }
        self.created = true;
    }
}

/// Whether each node can run Longhorn's instances now: powered, Ready in
/// the API, and (when the scenario runs longhorn-manager) its manager pod
/// running there, which needs the node's pod networking.
fn nodes_ok(ctx: &Ctx) -> BTreeMap<String, bool> {
    let has_manager = ctx
        .scenario
        .workloads
        .iter()
        .any(|w| w.behaviour == Behaviour::LonghornManager);
    let pods = if has_manager {
        ctx.api.pods()
    } else {
        Vec::new()
    };
    ctx.nodes
        .iter()
        .map(|n| {
            let ready = n.netns().is_some()
                && ctx
                    .api
                    .node(&n.name)
                    .is_some_and(|o| api::condition(&o, "Ready") == Some("True"));
            let manager = !has_manager
                || pods.iter().any(|p| {
                    ctx.behaviour(p) == Behaviour::LonghornManager
                        && p.pointer("/spec/nodeName").and_then(Value::as_str)
                            == Some(n.name.as_str())
                        && api::pod_running(p)
                });
            (n.name.clone(), ready && manager)
        })
        .collect()
}

fn volume_object(v: &Volume, state: State, robust: Robustness) -> Value {
    let current = if state == State::Attached {
        v.attached_to.as_str()
    } else {
        ""
    };
    json!({
        "apiVersion": API_VERSION, "kind": "Volume",
        "metadata": {"name": v.name, "namespace": NAMESPACE,
            "labels": {"recurring-job-group.longhorn.io/default": "enabled"}},
        "spec": {
            "size": v.size.to_string(), "numberOfReplicas": v.wanted, "frontend": "blockdev",
            "dataEngine": "v1", "accessMode": "rwo", "dataLocality": "disabled",
            "staleReplicaTimeout": 30, "image": IMAGE,
        },
        "status": {
            "state": state.name(), "robustness": robust.name(), "currentNodeID": current,
            "ownerID": v.attached_to, "frontendDisabled": false, "currentImage": IMAGE,
            "lastDegradedAt": v.last_degraded_at,
        },
    })
}

fn engine_object(v: &Volume, state: State) -> Value {
    let attached = state == State::Attached;
    let modes: serde_json::Map<String, Value> = if attached {
        v.replicas
            .iter()
            .map(|r| (r.name.clone(), r.mode.engine_mode().into()))
            .collect()
    } else {
        serde_json::Map::new()
    };
    json!({
        "apiVersion": API_VERSION, "kind": "Engine",
        "metadata": {"name": format!("{}-e-0", v.name), "namespace": NAMESPACE,
            "labels": {LABEL_VOLUME: v.name, LABEL_NODE: v.attached_to}},
        "spec": {
            "volumeName": v.name, "nodeID": v.attached_to, "volumeSize": v.size.to_string(),
            "frontend": "blockdev", "dataEngine": "v1", "image": IMAGE, "active": true,
            "desireState": if attached { "running" } else { "stopped" },
        },
        "status": {
            "currentState": if attached { "running" } else { "stopped" },
            "ownerID": v.attached_to, "started": attached,
            "endpoint": if attached { format!("/dev/longhorn/{}", v.name) } else { String::new() },
            "replicaModeMap": modes,
        },
    })
}

fn replica_object(v: &Volume, r: &Replica, state: State, disk: &str) -> Value {
    let current = replica_state(r.mode, state);
    json!({
        "apiVersion": API_VERSION, "kind": "Replica",
        "metadata": {"name": r.name, "namespace": NAMESPACE,
            "labels": {LABEL_VOLUME: v.name, LABEL_NODE: r.node, LABEL_DISK: disk}},
        "spec": {
            "nodeID": r.node, "volumeName": v.name, "volumeSize": v.size.to_string(),
            "engineName": format!("{}-e-0", v.name), "diskID": disk,
            "diskPath": "/var/lib/longhorn/", "dataDirectoryName": r.data_dir,
            "active": true, "dataEngine": "v1", "image": IMAGE,
            "desireState": if state == State::Attached { "running" } else { "stopped" },
            "failedAt": r.failed_at, "lastFailedAt": r.last_failed_at,
            "healthyAt": r.healthy_at, "lastHealthyAt": r.last_healthy_at,
            "rebuildRetryCount": 0,
        },
        "status": {
            "currentState": current, "ownerID": r.node,
            "instanceManagerName": format!("instance-manager-{}", r.node),
            "started": current == "running",
        },
    })
}

fn uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| crate::lab::random_hex(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REBUILD: Duration = Duration::from_secs(2);
    const FAILED: Mode = Mode::Failed { complete: true };
    const LOST: Mode = Mode::Failed { complete: false };

    #[test]
    fn robustness_follows_the_healthy_replicas() {
        use Mode::Healthy;
        let t = Instant::now();
        assert_eq!(
            robustness(&[Healthy, Healthy, Healthy], true, 3),
            (State::Attached, Robustness::Healthy)
        );
        assert_eq!(
            robustness(&[Healthy, FAILED, Mode::Rebuilding(t)], true, 3),
            (State::Attached, Robustness::Degraded),
            "a rebuilding replica is not healthy yet"
        );
        assert_eq!(
            robustness(&[FAILED, LOST], true, 2),
            (State::Detached, Robustness::Faulted)
        );
        assert_eq!(
            robustness(&[Healthy, Healthy], false, 2),
            (State::Detached, Robustness::Unknown),
            "no engine: detached"
        );
        assert_eq!(
            robustness(&[FAILED], false, 1),
            (State::Detached, Robustness::Faulted),
            "faulted wins over unknown"
        );
    }

    #[test]
    fn a_replica_fails_with_its_node_and_rebuilds_after_the_delay() {
        let t0 = Instant::now();
        let healthy = [Mode::Healthy, Mode::Healthy];
        // Node of the second replica powers off.
        let s1 = step(&healthy, &[true, false], true, t0, REBUILD);
        assert_eq!(s1, [Mode::Healthy, FAILED]);
        // Still away: nothing changes.
        assert_eq!(step(&s1, &[true, false], true, t0, REBUILD), s1);
        // Back: rebuilt from the healthy one, starting now.
        let t1 = t0 + Duration::from_secs(5);
        let s2 = step(&s1, &[true, true], true, t1, REBUILD);
        assert_eq!(s2, [Mode::Healthy, Mode::Rebuilding(t1)]);
        // Not before the rebuild time...
        let early = t1 + REBUILD - Duration::from_millis(1);
        assert_eq!(step(&s2, &[true, true], true, early, REBUILD), s2);
        // ...and healthy at it.
        assert_eq!(
            step(&s2, &[true, true], true, t1 + REBUILD, REBUILD),
            healthy
        );
    }

    #[test]
    fn a_rebuild_is_lost_with_its_node_its_source_or_its_engine() {
        let t = Instant::now();
        let s = [Mode::Healthy, Mode::Rebuilding(t)];
        assert_eq!(
            step(&s, &[true, false], true, t, REBUILD),
            [Mode::Healthy, LOST],
            "its own node went away"
        );
        assert_eq!(
            step(&s, &[false, true], true, t, REBUILD),
            [FAILED, LOST],
            "its only source went away"
        );
        assert_eq!(
            step(&s, &[true, true], false, t, REBUILD),
            [Mode::Healthy, LOST],
            "the engine's node went away"
        );
        // Without an engine a failed replica waits, even with its node back.
        assert_eq!(
            step(&[Mode::Healthy, FAILED], &[true, true], false, t, REBUILD),
            [Mode::Healthy, FAILED]
        );
    }

    #[test]
    fn auto_salvage_revives_only_complete_replicas() {
        let t = Instant::now();
        // Every replica failed; the nodes return.
        assert_eq!(
            step(&[FAILED, LOST], &[true, true], true, t, REBUILD),
            [Mode::Healthy, LOST],
            "the complete one is salvaged; the other rebuilds at the next step"
        );
        assert_eq!(
            step(&[Mode::Healthy, LOST], &[true, true], true, t, REBUILD),
            [Mode::Healthy, Mode::Rebuilding(t)]
        );
        // Nothing complete: the data is gone, the volume stays faulted.
        let lost = step(&[LOST, LOST], &[true, true], true, t, REBUILD);
        assert_eq!(lost, [LOST, LOST]);
        assert_eq!(robustness(&lost, true, 2).1, Robustness::Faulted);
        // A salvage candidate whose node is still away stays failed.
        assert_eq!(
            step(&[FAILED, FAILED], &[false, true], true, t, REBUILD),
            [FAILED, Mode::Healthy]
        );
    }

    #[test]
    fn replicas_show_error_running_or_stopped() {
        let t = Instant::now();
        assert_eq!(replica_state(FAILED, State::Attached), "error");
        assert_eq!(replica_state(LOST, State::Detached), "error");
        assert_eq!(replica_state(Mode::Healthy, State::Attached), "running");
        assert_eq!(
            replica_state(Mode::Rebuilding(t), State::Attached),
            "running"
        );
        assert_eq!(replica_state(Mode::Healthy, State::Detached), "stopped");
        assert_eq!(
            [
                Mode::Healthy.engine_mode(),
                Mode::Rebuilding(t).engine_mode(),
                FAILED.engine_mode()
            ],
            ["RW", "WO", "ERR"]
        );
    }
}
