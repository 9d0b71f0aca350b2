//! Workloads: every unhealthy pod gets one explanation (its node down, its
//! sandbox, a volume, an image pull, a crash loop, its node's reboot,
//! scheduling, readiness, stuck) and joins its workload's node in the
//! graph; pods the reboot killed are placed once the node's state is known;
//! workload titles are written last, when causes are known.

use std::collections::{BTreeMap, HashSet};

use jiff::SignedDuration;

use super::{Builder, DnsVictim, Index, Key, Run, evidence, healthy, pod_ref, workload_of};
use crate::classify::{self, Sandbox};
use crate::clean;
use crate::config::Role;
use crate::model::{ContainerStatus, Event, ObjectRef, Pod, Terminated};
use crate::report::{Cause, Evidence};

/// What explains one unhealthy pod.
enum PodCause<'a> {
    NodeDown,
    Sandbox(Sandbox, Option<&'a Event>),
    Csi(String, Option<&'a Event>),
    Longhorn(String, Option<&'a Event>),
    Volume(&'a Event),
    ImagePull(String, String),
    CrashLoop {
        dns: bool,
        detail: String,
    },
    /// Its containers died with the node's reboot: the node's state
    /// explains it, never a root of its own.
    RebootKilled(String),
    /// Its kubelet evicted it under node pressure (its message says which
    /// resource ran low).
    Evicted(String),
    Unschedulable {
        node_down: bool,
        /// Its message names a node-pressure taint.
        pressure: bool,
        event: Option<&'a Event>,
        detail: String,
    },
    NotReady {
        dns: bool,
        msg: String,
    },
    Stuck(String),
}

/// Whether a container's termination is the reboot of its node killing
/// it: the runtime lost it (`Unknown`, exit code 255) and it ended at or
/// before the node's current boot. Without a finish time (the kubelet's
/// `ContainerStatusUnknown` carries none), the pod's own start stands in.
fn killed_by_reboot(t: &Terminated, pod: &Pod, boot: &clean::Boot) -> bool {
    if !classify::lost_container(&t.reason, t.exit_code) {
        return false;
    }
    // A zero time (`0001-01-01T00:00:00Z`) is as good as none.
    let finished = t.finished_at.filter(|f| f.as_second() > 0);
    finished
        .or(pod.status.start_time)
        .or(pod.metadata.creation_timestamp)
        .is_some_and(|f| f <= boot.since)
}

/// The container's last termination when it says nothing about the
/// application: the reboot killed it, so its exit and the restarts counted
/// before it predate the boot.
fn last_killed_by_reboot(c: &ContainerStatus, pod: &Pod, boot: Option<&clean::Boot>) -> bool {
    let Some(boot) = boot else {
        return false;
    };
    let last = match &c.state.terminated {
        Some(t) => Some(t),
        None => c.last_state.terminated.as_ref(),
    };
    last.is_some_and(|t| killed_by_reboot(t, pod, boot))
}

fn crash_detail(pod: &Pod, boot: Option<&clean::Boot>) -> Option<(String, String)> {
    for c in pod.containers() {
        if last_killed_by_reboot(c, pod, boot) {
            continue;
        }
        let waiting = c
            .state
            .waiting
            .as_ref()
            .map(|w| w.reason.as_str())
            .unwrap_or("");
        let crashing = waiting == "CrashLoopBackOff"
            || (c.restart_count > 0 && !c.ready && c.last_state.terminated.is_some())
            || c.state
                .terminated
                .as_ref()
                .is_some_and(|t| t.exit_code != 0);
        if crashing {
            let t = c
                .last_state
                .terminated
                .as_ref()
                .or(c.state.terminated.as_ref());
            let (code, reason, msg) = t
                .map(|t| (t.exit_code, t.reason.as_str(), t.message.as_str()))
                .unwrap_or((0, "", ""));
            // `OOMKilled` says more than its exit code; `Error` says nothing.
            let reason = match reason {
                "" | "Error" => String::new(),
                r => format!(" ({r})"),
            };
            let detail = format!(
                "container {} restarted {} times, last exit code {code}{reason}",
                c.name, c.restart_count
            );
            return Some((detail, msg.to_string()));
        }
    }
    None
}

/// Why a pod that is not crashing is down because its node rebooted: a
/// container the reboot killed (and not back yet), or one whose status
/// still says it runs since before a proven reboot (the kubelet has not
/// rewritten it). `None` when the node's boot is unknown.
fn reboot_killed(pod: &Pod, boot: Option<&clean::Boot>) -> Option<String> {
    let b = boot?;
    let proven = b.evidence == clean::BootEvidence::RebootedEvent;
    let killed: Vec<&str> = pod
        .containers()
        .filter(|c| {
            let stale_running = proven
                && c.state
                    .running
                    .as_ref()
                    .and_then(|r| r.started_at)
                    .is_some_and(|t| t < b.since);
            let back = c.state.running.is_some() && !stale_running;
            stale_running || (!back && last_killed_by_reboot(c, pod, boot))
        })
        .map(|c| c.name.as_str())
        .collect();
    if killed.is_empty() {
        return None;
    }
    Some(format!(
        "container(s) {} killed by the reboot of {} at {}, not crashed",
        killed.join(", "),
        pod.spec.node_name,
        b.since
    ))
}

fn classify_pod<'a>(
    pod: &'a Pod,
    ix: &Index<'a>,
    longhorn_faulted: &HashSet<&str>,
    boot: Option<&clean::Boot>,
) -> PodCause<'a> {
    let node = ix.nodes.get(pod.spec.node_name.as_str());
    if let Some(n) = node
        && !n.is_ready()
    {
        return PodCause::NodeDown;
    }
    if classify::evicted(&pod.status.phase, &pod.status.reason) {
        return PodCause::Evicted(pod.status.message.clone());
    }
    let events = ix.pod_events(pod);
    let warnings = || events.iter().copied().filter(|e| e.type_ != "Normal");
    // A pod that got as far as running, crashing or pulling images has its
    // sandbox and volumes: older sandbox/volume events no longer explain it.
    let past_setup = pod.containers().any(|c| {
        c.state.running.is_some()
            || c.state.waiting.as_ref().is_some_and(|w| {
                w.reason == "CrashLoopBackOff"
                    || classify::is_image_pull_failure(&w.reason, &w.message)
            })
    });
    if !pod.spec.host_network
        && !past_setup
        && let Some(e) = warnings().find(|e| classify::is_sandbox_failure(&e.reason, &e.message))
    {
        return PodCause::Sandbox(classify::sandbox(&e.message), Some(e));
    }
    if !past_setup
        && let Some(e) = warnings()
            .filter(|e| classify::is_volume_failure(&e.reason, &e.message))
            // The kubelet's own error (`MountVolume.SetUp failed ...:
            // mount.nfs: Connection timed out`) over its later summary
            // (`Unable to attach or mount volumes ...: timed out`); newest first.
            .min_by_key(|e| classify::is_volume_summary(&e.message))
    {
        if let Some(driver) = classify::unregistered_csi_driver(&e.message) {
            return PodCause::Csi(driver, Some(e));
        }
        for claim in pod.claims() {
            if let Some(pv) = ix.claims.get(&(pod.metadata.namespace.as_str(), claim))
                && let Some((_, handle)) = ix.pv_driver.get(pv)
                && longhorn_faulted.contains(handle)
            {
                return PodCause::Longhorn(handle.to_string(), Some(e));
            }
        }
        return PodCause::Volume(e);
    }
    for c in pod.containers() {
        if let Some(w) = &c.state.waiting
            && classify::is_image_pull_failure(&w.reason, &w.message)
        {
            let msg = warnings()
                .find(|e| {
                    classify::is_image_pull_failure(&e.reason, &e.message) && e.reason != "BackOff"
                })
                .map(|e| e.message.clone())
                .unwrap_or_else(|| w.message.clone());
            return PodCause::ImagePull(c.image.clone(), msg);
        }
    }
    // The first text saying a lookup failed: its termination message, an
    // event about it, a line of its log.
    let dns_text = |msg: &str| -> Option<String> {
        if classify::is_dns_error(msg) {
            return Some(msg.to_string());
        }
        if let Some(e) = warnings().find(|e| classify::is_dns_error(&e.message)) {
            return Some(e.message.clone());
        }
        ix.logs
            .get(&(pod.metadata.namespace.as_str(), pod.metadata.name.as_str()))
            .and_then(|l| l.iter().find(|l| classify::is_dns_error(l)))
            .map(|l| l.to_string())
    };
    if let Some((detail, msg)) = crash_detail(pod, boot) {
        // Without a termination message (most containers write none), the
        // last error its log shows says why it exits.
        let msg = if msg.is_empty() {
            ix.logs
                .get(&(pod.metadata.namespace.as_str(), pod.metadata.name.as_str()))
                .and_then(|lines| classify::last_error_line(lines))
                .map(str::to_string)
                .unwrap_or_default()
        } else {
            msg
        };
        let dns = dns_text(&msg);
        // Show the part of a long text that says what failed.
        let shown = match &dns {
            Some(t) => classify::dns_snippet(t).unwrap_or(t),
            None => &msg,
        };
        let detail = if shown.is_empty() {
            detail
        } else {
            format!("{detail}: {}", classify::short(shown, 160))
        };
        return PodCause::CrashLoop {
            dns: dns.is_some(),
            detail,
        };
    }
    if let Some(detail) = reboot_killed(pod, boot) {
        return PodCause::RebootKilled(detail);
    }
    if pod.spec.node_name.is_empty() {
        let ev = warnings().find(|e| e.reason == "FailedScheduling");
        let msg = ev
            .map(|e| e.message.clone())
            .or_else(|| pod.condition("PodScheduled").map(|c| c.message.clone()))
            .unwrap_or_default();
        return PodCause::Unschedulable {
            node_down: classify::unschedulable_due_to_node_down(&msg),
            pressure: classify::unschedulable_due_to_pressure(&msg),
            event: ev,
            detail: msg,
        };
    }
    if pod.status.phase == "Running" {
        let msg = warnings()
            .find(|e| e.reason == "Unhealthy")
            .map(|e| e.message.clone())
            .unwrap_or_else(|| "Running but not Ready".into());
        return match dns_text(&msg) {
            Some(t) => PodCause::NotReady {
                dns: true,
                msg: format!("not Ready: {}", classify::dns_snippet(&t).unwrap_or(&t)),
            },
            None => PodCause::NotReady { dns: false, msg },
        };
    }
    PodCause::Stuck(format!("{} with no explaining event", pod.display_status()))
}

/// Every unhealthy pod gets one explanation (see the module docs) and
/// joins its workload's node in the graph.
pub(super) fn pods(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let config = run.config;
    let Run {
        ix,
        g,
        stale,
        longhorn_faulted,
        node_sandbox,
        sandbox_totals,
        sandbox_pods,
        dns_victims,
        pods_affected,
        pods_healthy,
        csi_plugin_pods,
        node_pods,
        stuck_creating,
        pod_workload,
        boots,
        reboot_killed,
        evicted,
        ..
    } = run;
    let nodes_of = |pick: fn(&Key) -> bool| -> Vec<Key> {
        g.nodes.keys().filter(|k| pick(k)).cloned().collect()
    };
    let down_nodes = nodes_of(|k| matches!(k, Key::NodeDown(_)));
    let pressure_nodes = nodes_of(|k| matches!(k, Key::NodePressure(_)));
    for pod in &snapshot.pods {
        if healthy(pod) {
            *pods_healthy += 1;
            continue;
        }
        let ns = pod.metadata.namespace.as_str();
        if stale.contains(&(ns, pod.metadata.name.as_str()))
            || (pod.is_terminal() && pod.status.phase == "Succeeded")
        {
            continue;
        }
        if pod.status.phase == "Failed"
            && pod.metadata.controller().is_some_and(|o| o.kind == "Job")
        {
            // A failed Job attempt; the Job's own status tells whether it matters.
            continue;
        }
        let (wkind, wname) = workload_of(pod);
        let wkey = Key::Workload {
            namespace: ns.into(),
            kind: wkind.clone(),
            name: wname.clone(),
        };
        *pods_affected += 1;
        let node = pod.spec.node_name.as_str();
        let cause = classify_pod(pod, ix, longhorn_faulted, boots.get(node));
        if let PodCause::RebootKilled(detail) = cause {
            // In the graph only once the node's state explains it.
            reboot_killed.push((pod, wkey, detail));
            continue;
        }
        let under_pressure = |node: &str| {
            pressure_nodes
                .iter()
                .any(|k| matches!(k, Key::NodePressure(n) if n == node))
        };
        if matches!(cause, PodCause::Evicted(_)) && !under_pressure(node) {
            // Evicted while the node was under a pressure it no longer is:
            // history (its controller has replaced it), not a problem.
            *pods_affected -= 1;
            evicted.entry(node).or_default().push(pod.key());
            continue;
        }
        pod_workload.insert((ns, pod.metadata.name.as_str()), wkey.clone());
        let w = g.node(&wkey, || format!("{wkind} {ns}/{wname}"));
        let mut r = pod_ref(pod);
        if matches!(cause, PodCause::NodeDown) {
            // Its status is what the node said before it went silent.
            r.status = format!("{}, node NotReady", r.status);
        }
        w.pods.insert((ns.into(), pod.metadata.name.clone()), r);
        if pod
            .containers()
            .any(|c| c.name.contains("driver-registrar"))
            && !node.is_empty()
        {
            csi_plugin_pods.push((pod, wkey.clone()));
        }
        if !node.is_empty() {
            node_pods.push((pod, wkey.clone()));
        }
        let dns_component = config
            .components
            .iter()
            .any(|c| c.role == Role::Dns && c.matches(pod));
        let own = |g: &mut Builder, cause: Cause, detail: String, ev: Option<Evidence>| {
            let w = g.node(&wkey, String::new);
            w.own_pods += 1;
            if w.own.is_none() {
                w.own = Some(cause);
                w.own_detail = detail;
            }
            if let Some(ev) = ev
                && w.evidence.len() < 5
            {
                w.evidence.push(ev);
            }
        };
        match cause {
            PodCause::NodeDown => g.edge(
                &Key::NodeDown(node.into()),
                &wkey,
                "pods on a NotReady node",
            ),
            PodCause::Sandbox(kind, ev) => {
                *node_sandbox
                    .entry(node)
                    .or_default()
                    .entry(kind)
                    .or_default() += ev.map_or(1, |e| e.count);
                let nkey = Key::NodeNetwork(node.into());
                let n = g.node(&nkey, String::new);
                if let Some(e) = ev {
                    n.evidence.push(evidence(e));
                    // The node-wide total: every failing sandbox on it.
                    let total = sandbox_totals.entry(node).or_insert_with(|| Evidence {
                        object: ObjectRef::new("Node", "", node),
                        reason: e.reason.clone(),
                        message: e.message.clone(),
                        count: 0,
                        first_seen: e.first_seen,
                        last_seen: e.last_seen,
                    });
                    total.count += e.count;
                    total.first_seen = total.first_seen.min(e.first_seen).or(e.first_seen);
                    total.last_seen = total.last_seen.max(e.last_seen);
                }
                *sandbox_pods.entry(node).or_default() += 1;
                g.edge(&nkey, &wkey, "pod sandboxes fail CNI ADD on this node");
            }
            PodCause::Csi(driver, ev) => {
                let key = Key::Csi {
                    driver: driver.clone(),
                    node: node.into(),
                };
                let n = g.node(&key, || {
                    format!("CSI driver {driver} not registered on node {node}")
                });
                if let Some(e) = ev {
                    n.evidence.push(evidence(e));
                }
                g.edge(
                    &key,
                    &wkey,
                    "volumes of this driver cannot attach/mount on the node",
                );
            }
            PodCause::Longhorn(vol, ev) => {
                let key = Key::Longhorn(vol);
                if let Some(e) = ev {
                    g.node(&key, String::new).evidence.push(evidence(e));
                }
                g.edge(&key, &wkey, "mounts the faulted volume");
            }
            PodCause::Volume(e) => own(
                &mut *g,
                Cause::VolumeFailure,
                classify::short(&e.message, 200),
                Some(evidence(e)),
            ),
            PodCause::ImagePull(image, msg) => {
                own(
                    &mut *g,
                    Cause::ImagePull,
                    format!("image {image}: {}", classify::short(&msg, 260)),
                    None,
                );
                let w = g.node(&wkey, String::new);
                if w.evidence.len() < 5 {
                    w.evidence.push(Evidence {
                        object: ObjectRef::new("Pod", ns, &pod.metadata.name),
                        reason: "ErrImagePull".into(),
                        message: msg,
                        count: 1,
                        first_seen: None,
                        last_seen: None,
                    });
                }
            }
            PodCause::CrashLoop { dns, detail } => {
                let ev = Evidence {
                    object: ObjectRef::new("Pod", ns, &pod.metadata.name),
                    reason: "CrashLoopBackOff".into(),
                    message: detail.clone(),
                    count: pod.containers().map(|c| c.restart_count).max().unwrap_or(0),
                    first_seen: pod.status.start_time,
                    last_seen: None,
                };
                // The DNS server's own upstream errors are not it
                // being a victim of DNS.
                if dns && !dns_component {
                    dns_victims.push(DnsVictim::new(wkey.clone(), pod, &detail));
                    let w = g.node(&wkey, String::new);
                    w.evidence.push(ev);
                    w.own_detail = detail;
                } else {
                    own(&mut *g, Cause::CrashLoop, detail, Some(ev));
                }
            }
            PodCause::Evicted(msg) => {
                let pressure_key = Key::NodePressure(node.into());
                let p = g.node(&pressure_key, String::new);
                if p.evidence.iter().filter(|e| e.reason == "Evicted").count() < 2 {
                    p.evidence.push(Evidence {
                        object: ObjectRef::new("Pod", ns, &pod.metadata.name),
                        reason: "Evicted".into(),
                        message: msg.clone(),
                        count: 1,
                        first_seen: None,
                        last_seen: None,
                    });
                }
                let w = g.node(&wkey, String::new);
                if w.own_detail.is_empty() {
                    w.own_detail = format!("evicted: {}", classify::short(&msg, 160));
                }
                g.edge(
                    &pressure_key,
                    &wkey,
                    "evicted by the kubelet under node pressure",
                );
            }
            PodCause::Unschedulable {
                node_down,
                pressure,
                event,
                detail,
            } => {
                if node_down && !down_nodes.is_empty() {
                    for k in &down_nodes {
                        g.edge(k, &wkey, "cannot schedule while nodes are NotReady");
                    }
                } else if pressure && !pressure_nodes.is_empty() {
                    for k in &pressure_nodes {
                        g.edge(k, &wkey, "cannot schedule on nodes under pressure");
                    }
                } else {
                    own(
                        &mut *g,
                        Cause::Unschedulable,
                        classify::short(&detail, 200),
                        event.map(evidence),
                    );
                }
            }
            // Taken out of the loop above, before it joins the graph.
            PodCause::RebootKilled(_) => {}
            PodCause::NotReady { dns: true, msg } if !dns_component => {
                dns_victims.push(DnsVictim::new(wkey.clone(), pod, &msg));
                let w = g.node(&wkey, String::new);
                if w.own_detail.is_empty() {
                    w.own_detail = classify::short(&msg, 200);
                }
            }
            PodCause::NotReady { msg, .. } => own(
                &mut *g,
                Cause::PodNotReady,
                classify::short(&msg, 200),
                None,
            ),
            PodCause::Stuck(msg) => {
                if !pod.spec.host_network && !node.is_empty() && pod.status.phase == "Pending" {
                    stuck_creating.push((pod, wkey.clone()));
                } else {
                    own(&mut *g, Cause::PodStuck, msg, None);
                }
            }
        }
    }
}

/// Pods stuck Pending on a node whose CNI fails (their events may have expired).
pub(super) fn stuck_pods(run: &mut Run<'_>) {
    let Run {
        g,
        stuck_creating,
        node_cause,
        ..
    } = run;
    for (pod, wkey) in stuck_creating {
        let node = pod.spec.node_name.as_str();
        if node_cause.contains_key(node) {
            g.edge(
                &Key::NodeNetwork(node.into()),
                wkey,
                "pod sandboxes fail CNI ADD on this node",
            );
        } else {
            let w = g.node(wkey, String::new);
            w.own_pods += 1;
            w.own.get_or_insert(Cause::PodStuck);
            if w.own_detail.is_empty() {
                w.own_detail = format!("{} with no explaining event", pod.display_status());
            }
        }
    }
}

/// Pods evicted under a pressure their node no longer reports: noted, with
/// how to list them, never a root.
pub(super) fn evicted_history(run: &mut Run<'_>) {
    let Run { evicted, notes, .. } = run;
    for (node, pods) in std::mem::take(evicted) {
        let shown: Vec<&str> = pods.iter().take(5).map(String::as_str).collect();
        let more = pods.len() - shown.len();
        notes.push(format!(
            "node {node}: {} pod(s) evicted under a resource pressure it no longer reports (their controllers replace them; list them with kubectl get pods -A --field-selector status.phase=Failed): {}{}",
            pods.len(),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
}

/// How long after its node's boot a pod the reboot killed may take to come
/// back: the kubelet restarts such pods within a minute or two; one still
/// not back after this is stuck, not recovering.
pub const NOT_BACK_AFTER: SignedDuration = SignedDuration::from_mins(10);

/// `age` in its largest whole unit: `12 min`, `3 h`, `13 d`.
fn span(age: SignedDuration) -> String {
    let mins = age.as_mins();
    match mins {
        ..120 => format!("{mins} min"),
        120..2880 => format!("{} h", mins / 60),
        _ => format!("{} d", mins / 1440),
    }
}

/// Pods the reboot of their node killed: consequences of the node's
/// network when its CNI fails (they cannot come back); otherwise not back
/// yet, which is the kubelet's work in progress and no root (noted), until
/// [`NOT_BACK_AFTER`] the boot: then stuck, their workload's own root.
pub(super) fn reboot_killed_pods(run: &mut Run<'_>) {
    let now = run.now;
    let Run {
        g,
        reboot_killed,
        node_cause,
        pod_workload,
        node_pods,
        csi_plugin_pods,
        notes,
        recovering,
        boots,
        ..
    } = run;
    let mut waiting: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (pod, wkey, detail) in reboot_killed.drain(..) {
        let node = pod.spec.node_name.as_str();
        let ns = pod.metadata.namespace.as_str();
        // Its node's failing CNI keeps it from coming back, or it is
        // stuck, or the kubelet is still at work.
        let explained = !pod.spec.host_network && node_cause.contains_key(node);
        let stuck_for = boots
            .get(node)
            .map(|b| now.duration_since(b.since))
            .filter(|age| !explained && *age >= NOT_BACK_AFTER);
        if !explained && stuck_for.is_none() {
            *recovering += 1;
            waiting.entry(node).or_default().push(pod.key());
            continue;
        }
        let Key::Workload { kind, name, .. } = &wkey else {
            continue;
        };
        let title = format!("{kind} {ns}/{name}");
        let w = g.node(&wkey, || title);
        w.pods
            .insert((ns.into(), pod.metadata.name.clone()), pod_ref(pod));
        if let Some(age) = stuck_for {
            w.own_pods += 1;
            if w.own.is_none() {
                // What holds it now (ImagePullBackOff, ...), if said.
                let waiting_on = pod
                    .containers()
                    .filter_map(|c| c.state.waiting.as_deref())
                    .find(|w| !w.reason.is_empty())
                    .map(|w| format!("; waiting: {} {}", w.reason, w.message))
                    .unwrap_or_default();
                w.own = Some(Cause::PodStuck);
                w.own_detail = format!(
                    "not back {} after {node}'s reboot (the kubelet restarts such pods within minutes){}",
                    span(age),
                    classify::short(waiting_on.trim_end(), 200)
                );
            }
        }
        if w.evidence.len() < 5 {
            w.evidence.push(Evidence {
                object: ObjectRef::new("Pod", ns, &pod.metadata.name),
                reason: "KilledByReboot".into(),
                message: detail,
                count: 1,
                first_seen: None,
                last_seen: None,
            });
        }
        pod_workload.insert((ns, pod.metadata.name.as_str()), wkey.clone());
        if !explained {
            continue;
        }
        g.edge(
            &Key::NodeNetwork(node.into()),
            &wkey,
            "the reboot killed its containers and pod sandboxes fail CNI ADD on this node",
        );
        node_pods.push((pod, wkey.clone()));
        if pod
            .containers()
            .any(|c| c.name.contains("driver-registrar"))
        {
            csi_plugin_pods.push((pod, wkey));
        }
    }
    for (node, pods) in waiting {
        let shown: Vec<&str> = pods.iter().take(5).map(String::as_str).collect();
        let more = pods.len().saturating_sub(shown.len());
        notes.push(format!(
            "node {node} rebooted: {} pod(s) whose containers the reboot killed are not back yet (not crashes; the kubelet restarts them): {}{}",
            pods.len(),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
}

/// Workload titles now that causes are known.
pub(super) fn workload_titles(run: &mut Run<'_>) {
    let Run { g, .. } = run;
    for (key, n) in g.nodes.iter_mut() {
        if let Key::Workload {
            namespace,
            kind,
            name,
        } = key
        {
            let total = n.pods.len();
            let detail = if n.own_detail.is_empty() {
                let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
                for p in n.pods.values() {
                    *statuses.entry(p.status.as_str()).or_default() += 1;
                }
                statuses
                    .iter()
                    .map(|(s, c)| format!("{c} {s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                n.own_detail.clone()
            };
            n.title = format!("{kind} {namespace}/{name}: {total} pod(s) failing: {detail}");
        }
    }
}
