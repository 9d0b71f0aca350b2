//! kubesim as the tests of `verify` and `reboot` need it, shared by both:
//! a cluster of Ready nodes with podCIDRs and boot IDs, the real binary
//! pointed at it, and a fake kubelet for verify's probe pods (it gives
//! each probe an address and the result a real probe would write, or the
//! incident's sandbox failure).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kubesim::KubeSim;
use rebootguard_verify::message::{Message, Outcome, Peers, VERSION};
use serde_json::{Value, json};

/// The namespace the probes run in.
pub const NS: &str = "rebootguard";
/// kubesim with the probes' namespace and `nodes`, each Ready, with a
/// podCIDR (`10.42.<index>.0/24`), a boot ID (`<node>-boot-0`) and the
/// agent's readiness taint.
pub async fn cluster(nodes: &[&str]) -> Arc<KubeSim> {
    cluster_with(kubesim::Options::default(), nodes).await
}

/// [`cluster`] on a kubesim started with `options` (its namespaces get
/// the probes' own).
pub async fn cluster_with(options: kubesim::Options, nodes: &[&str]) -> Arc<KubeSim> {
    let sim = KubeSim::with_options(kubesim::Options {
        namespaces: ["default", "kube-system", NS].map(String::from).to_vec(),
        ..options
    })
    .await
    .expect("kubesim");
    for (i, n) in nodes.iter().enumerate() {
        sim.create(&json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n, "labels": {"index": i.to_string()}},
            "spec": {"podCIDR": format!("10.42.{i}.0/24"), "podCIDRs": [format!("10.42.{i}.0/24")],
                     "taints": [{"key": "rebootguard.io/pod-network-unready", "effect": "NoSchedule"}]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"bootID": format!("{n}-boot-0")},
            },
        }))
        .expect("node");
    }
    Arc::new(sim)
}

/// `rebootguard <subcommand> ARGS --kubeconfig <sim>`, output captured,
/// nothing inherited that would change it.
pub fn rebootguard(sim: &KubeSim, subcommand: &str, args: &[&str]) -> tokio::process::Command {
    rebootguard_as(sim.kubeconfig_path(), subcommand, args)
}

/// [`rebootguard`] as the user of `kubeconfig`.
pub fn rebootguard_as(
    kubeconfig: &std::path::Path,
    subcommand: &str,
    args: &[&str],
) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"));
    c.arg(subcommand)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("REBOOTGUARD_WEBHOOK")
        .env_remove("REBOOTGUARD_WEBHOOK_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// A finished command's status and output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The incident's sandbox failure, as the kubelet reports it.
pub const EVENT: &str = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"0123\": plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory";

pub fn ours(sim: &KubeSim, kind: &str) -> Vec<Value> {
    sim.list("v1", kind, Some(NS))
        .into_iter()
        .filter(|o| {
            o.pointer("/metadata/labels/app.kubernetes.io~1name")
                == Some(&json!("rebootguard-verify"))
        })
        .collect()
}

/// How the fake kubelet treats the probe on a node.
#[derive(Clone, Copy, PartialEq)]
pub enum Kubelet {
    /// Runs it: an IP, then a result that reached every other working probe.
    Works,
    /// No sandbox: the incident's event, Pending forever.
    NoSandbox,
}

pub fn pod_ip(node_index: usize) -> String {
    format!("10.42.{node_index}.5")
}

/// Plays the kubelet for every probe pod until aborted; `nodes` maps a node
/// to its index (its podCIDR) and behaviour. Records every pod it saw.
pub fn kubelet(
    sim: &Arc<KubeSim>,
    nodes: BTreeMap<String, (usize, Kubelet)>,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (sim, record) = (sim.clone(), seen.clone());
    let task = tokio::spawn(async move {
        let mut done = std::collections::BTreeSet::new();
        loop {
            let pods = ours(&sim, "Pod");
            let working: Vec<String> = pods
                .iter()
                .filter_map(|p| {
                    let n = p["spec"]["nodeName"].as_str()?;
                    (nodes.get(n)?.1 == Kubelet::Works).then(|| pod_ip(nodes[n].0))
                })
                .collect();
            for p in &pods {
                let name = p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if done.contains(&name) {
                    continue;
                }
                // Wait until every pod of the run exists, as real probes would.
                if pods.len() < nodes.len() {
                    break;
                }
                done.insert(name.clone());
                record.lock().expect("lock").push(p.clone());
                let node = p["spec"]["nodeName"].as_str().unwrap_or_default();
                let Some(&(i, how)) = nodes.get(node) else {
                    continue;
                };
                match how {
                    Kubelet::Works => {
                        let own = pod_ip(i);
                        let reached: Vec<std::net::IpAddr> = working
                            .iter()
                            .filter(|ip| **ip != own)
                            .map(|ip| ip.parse().expect("ip"))
                            .collect();
                        let m = Message {
                            v: VERSION,
                            node: node.into(),
                            ips: vec![own.parse().expect("ip")],
                            pod_ip: Outcome::pass(format!("{own} is in 10.42.{i}.0/24")),
                            dns: Outcome::pass("kubernetes.default -> 10.43.0.1"),
                            peers: Peers {
                                expected: nodes.len() - 1,
                                found: reached.len(),
                                reached_count: reached.len(),
                                reached: Some(reached),
                                ..Peers::default()
                            },
                            millis: 800,
                        };
                        let ok = m.ok();
                        let status = json!({"status": {
                            "phase": if ok { "Succeeded" } else { "Failed" },
                            "podIP": own, "podIPs": [{"ip": own}],
                            "containerStatuses": [{"name": "probe", "image": "x", "imageID": "", "ready": false,
                                "restartCount": 0, "state": {"terminated": {"exitCode": i32::from(!ok),
                                "reason": if ok { "Completed" } else { "Error" }, "message": m.to_json(4096).expect("fits")}}}],
                        }});
                        let _ = sim.patch_status(
                            "v1",
                            "Pod",
                            NS,
                            &name,
                            kubesim::patch::Kind::Merge,
                            &status,
                        );
                    }
                    Kubelet::NoSandbox => {
                        let _ = sim.create(&json!({
                            "apiVersion": "v1", "kind": "Event",
                            "metadata": {"name": format!("{name}.1"), "namespace": NS},
                            "involvedObject": {"kind": "Pod", "name": name, "namespace": NS},
                            "reason": "FailedCreatePodSandBox", "type": "Warning", "message": EVENT,
                            "lastTimestamp": "2026-01-31T10:00:00Z", "count": 1,
                            "source": {"component": "kubelet", "host": node},
                        }));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (task, seen)
}

pub fn nodes(list: &[(&str, Kubelet)]) -> BTreeMap<String, (usize, Kubelet)> {
    list.iter()
        .enumerate()
        .map(|(i, (n, k))| ((*n).to_owned(), (i, *k)))
        .collect()
}
