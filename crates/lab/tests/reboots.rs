//! What a rolling-reboot orchestrator meets in the lab: server and agent
//! roles on the Nodes (and the API following the servers' quorum), a node
//! rebooted at its agent's request through `node-reboot`, boot faults armed
//! with `arm` for whoever reboots next, a node that stays down until
//! `power-on`, and Longhorn volumes degrading, faulting and rebuilding with
//! their replicas' nodes. Needs root and Debian's CNI plugins; prints why
//! it skips otherwise.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use rebootguard_lab::{Lab, Scenario, api, longhorn};
use serde_json::Value;

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");
/// Real-world seconds per lab second in these tests: the default 60 s of
/// `node-reboot` is 2 s, the 40 s grace 1.3 s, a 60 s rebuild 2 s.
const SCALE: f64 = 30.0;

async fn lab_of(scenario: Scenario, base: &Path) -> Lab {
    let lab = Lab::up(scenario, common::options(EXE, base))
        .await
        .expect("lab up");
    assert!(lab.wait_ready(Duration::from_secs(30)).await, "nodes Ready");
    lab
}

/// Waits up to `secs` for `f`, failing the test with `what` otherwise.
async fn wait(lab: &Lab, secs: u64, what: &str, mut f: impl FnMut(&Lab) -> bool) {
    let t = Instant::now();
    while !f(lab) {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the lab binary with `args` (blocking, off the runtime the lab
/// serves its requests on).
async fn cli(base: &Path, args: &[&str]) -> Output {
    let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    argv.extend(["--dir".to_owned(), base.display().to_string()]);
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(EXE)
            .args(&argv)
            .output()
            .expect("the lab binary runs")
    })
    .await
    .expect("joined")
}

async fn status(base: &Path) -> Value {
    let out = cli(base, &["status", "--json"]).await;
    assert!(out.status.success(), "status: {out:?}");
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// Objects of a kind matching a label selector, listed over HTTP as a
/// gate would list them (`longhorn.io` kinds in `longhorn-system`).
async fn select(lab: &Lab, api_version: &str, kind: &str, selector: &str) -> Vec<Value> {
    let client = lab.ctx.api.sim.client().expect("a client");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let plural = if kind == "Node" { "nodes" } else { "replicas" };
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: kube::Api<kube::api::DynamicObject> = if kind == "Node" {
        kube::Api::all_with(client, &resource)
    } else {
        kube::Api::namespaced_with(client, longhorn::NAMESPACE, &resource)
    };
    api.list(&kube::api::ListParams::default().labels(selector))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("JSON"))
        .collect()
}

fn node_status<'a>(status: &'a Value, node: &str) -> &'a Value {
    status["labs"][0]["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == node))
        .unwrap_or_else(|| panic!("{node} in {status}"))
}

fn boot_id(lab: &Lab, node: &str) -> String {
    lab.ctx
        .api
        .node(node)
        .and_then(|n| {
            n.pointer("/status/nodeInfo/bootID")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

fn ready_status(lab: &Lab, node: &str) -> Option<String> {
    lab.ctx
        .api
        .node(node)
        .and_then(|n| api::condition(&n, "Ready").map(str::to_owned))
}

fn powered(lab: &Lab, node: &str) -> bool {
    lab.node(node).expect("node").netns().is_some()
}

/// Back from a reboot: a boot ID other than `old` on the Node, the same as
/// the node's own `/proc/sys/kernel/random/boot_id`, and Ready=True.
fn back(lab: &Lab, node: &str, old: &str) -> bool {
    let id = boot_id(lab, node);
    let own = std::fs::read_to_string(
        lab.node(node)
            .expect("node")
            .path(rebootguard_lab::node::paths::BOOT_ID),
    )
    .unwrap_or_default();
    !id.is_empty()
        && id != old
        && id == own.trim()
        && ready_status(lab, node).as_deref() == Some("True")
}

/// Runs a node's `reboot_command` from `status --json` as its agent would:
/// the argv as given, inside the node's network namespace.
async fn agent_reboots(lab: &Lab, base: &Path, node: &str) -> Output {
    let st = status(base).await;
    let argv: Vec<String> = node_status(&st, node)["reboot_command"]
        .as_array()
        .expect("a reboot_command")
        .iter()
        .map(|a| a.as_str().expect("strings").to_owned())
        .collect();
    assert_eq!(argv[1], "node-reboot", "{argv:?}");
    assert!(argv.contains(&lab.ctx.id), "names its lab: {argv:?}");
    let ns = lab.node(node).expect("node").netns().expect("powered");
    tokio::task::spawn_blocking(move || {
        ns.command(&argv[0])
            .expect("a command in the node")
            .args(&argv[1..])
            .output()
            .expect("runs")
    })
    .await
    .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn servers_carry_k3s_role_labels_and_status_shows_roles() {
    if !ready("servers_carry_k3s_role_labels_and_status_shows_roles") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let mut s = common::echo_scenario(3, SCALE);
    s.servers = Some(2);
    let lab = lab_of(s, base.path()).await;
    for (node, server) in [("boromir", true), ("theoden", true), ("samwise", false)] {
        let labels = lab.ctx.api.node(node).expect("Node")["metadata"]["labels"].clone();
        for key in [
            "node-role.kubernetes.io/control-plane",
            "node-role.kubernetes.io/master",
            "node-role.kubernetes.io/etcd",
        ] {
            let want = if server {
                Value::from("true")
            } else {
                Value::Null
            };
            assert_eq!(labels[key], want, "{node} {key}: {labels}");
        }
    }
    // A quorum gate counts them from the API, by label selector.
    let servers = select(
        &lab,
        "v1",
        "Node",
        "node-role.kubernetes.io/control-plane=true",
    )
    .await;
    assert_eq!(servers.len(), 2);
    let st = status(base.path()).await;
    assert_eq!(st["labs"][0]["embedded_etcd"], true);
    assert_eq!(st["labs"][0]["api_up"], true);
    let roles: Vec<&str> = st["labs"][0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["server", "server", "agent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn an_agent_requested_reboot_power_cycles_its_node() {
    if !ready("an_agent_requested_reboot_power_cycles_its_node") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = lab_of(common::echo_scenario(3, SCALE), base.path()).await;
    let old = boot_id(&lab, "theoden");
    let t = Instant::now();
    let out = agent_reboots(&lab, base.path(), "theoden").await;
    assert!(out.status.success(), "node-reboot: {out:?}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "returns at once, not after the reboot: {:?}",
        t.elapsed()
    );
    let at = String::from_utf8_lossy(&out.stdout);
    assert!(at.trim().ends_with('Z'), "the instant: {at}");
    wait(&lab, 5, "theoden powered off", |l| !powered(l, "theoden")).await;
    assert_eq!(boot_id(&lab, "theoden"), old, "no new boot while off");
    wait(&lab, 30, "theoden back with a new boot ID and Ready", |l| {
        back(l, "theoden", &old)
    })
    .await;
    let rebooted = lab.ctx.api.events_with_reason("Rebooted");
    assert!(
        rebooted.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Node theoden has been rebooted"))),
        "{rebooted:?}"
    );
    // Its pod runs again; the others never went away.
    wait(&lab, 30, "every pod running", |l| {
        let pods = l.ctx.api.pods();
        pods.len() == 3 && pods.iter().all(api::pod_running)
    })
    .await;
    // A node that is off cannot reboot itself.
    let again = agent_reboots(&lab, base.path(), "theoden").await;
    assert!(again.status.success());
    wait(&lab, 5, "theoden off again", |l| !powered(l, "theoden")).await;
    let off = cli(
        base.path(),
        &["node-reboot", "--lab", &lab.ctx.id, "theoden"],
    )
    .await;
    assert_eq!(off.status.code(), Some(1), "{off:?}");
    assert!(
        String::from_utf8_lossy(&off.stderr).contains("theoden is powered off"),
        "{off:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn an_armed_fault_hits_the_next_boot_only_whoever_reboots() {
    if !ready("an_armed_fault_hits_the_next_boot_only_whoever_reboots") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = lab_of(common::echo_scenario(2, SCALE), base.path()).await;
    let subnet_env = lab
        .node("theoden")
        .unwrap()
        .path(rebootguard_lab::node::paths::SUBNET_ENV);
    let armed = |st: &Value| node_status(st, "theoden")["armed"].clone();

    // Armed, then rebooted by its agent.
    let out = cli(base.path(), &["arm", "theoden", "flannel-silent-skip"]).await;
    assert!(out.status.success(), "arm: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("theoden: flannel-silent-skip armed for its next boot"),
        "{text}"
    );
    assert_eq!(
        armed(&status(base.path()).await),
        serde_json::json!(["flannel-silent-skip"])
    );
    let old = boot_id(&lab, "theoden");
    assert!(
        agent_reboots(&lab, base.path(), "theoden")
            .await
            .status
            .success()
    );
    wait(&lab, 30, "theoden back", |l| back(l, "theoden", &old)).await;
    assert!(
        !subnet_env.exists(),
        "the silent skip happened: no subnet.env while the node is Ready"
    );
    assert_eq!(
        armed(&status(base.path()).await),
        serde_json::json!([]),
        "used up"
    );

    // The next boot, by the same path, is clean: one-shot.
    let old = boot_id(&lab, "theoden");
    assert!(
        agent_reboots(&lab, base.path(), "theoden")
            .await
            .status
            .success()
    );
    wait(&lab, 30, "theoden back, flannel up", |l| {
        back(l, "theoden", &old) && subnet_env.exists()
    })
    .await;

    // Armed, then rebooted by someone else (`reboot`).
    let out = cli(base.path(), &["arm", "theoden", "flannel-silent-skip"]).await;
    assert!(out.status.success(), "arm: {out:?}");
    let out = cli(base.path(), &["reboot", "theoden", "--down", "15s"]).await;
    assert!(out.status.success(), "reboot: {out:?}");
    wait(&lab, 30, "theoden Ready", |l| {
        ready_status(l, "theoden").as_deref() == Some("True")
    })
    .await;
    assert!(!subnet_env.exists(), "the fault hit this boot too");
    // Unknown faults and nodes are refused.
    let bad = cli(base.path(), &["arm", "nobody", "stays-down"]).await;
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let bad = cli(base.path(), &["arm", "theoden", "nope"]).await;
    assert_eq!(bad.status.code(), Some(2), "usage: {bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_node_that_stays_down_stays_notready_until_powered_on() {
    if !ready("a_node_that_stays_down_stays_notready_until_powered_on") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let mut s = common::echo_scenario(3, SCALE);
    s.servers = Some(3);
    let lab = lab_of(s, base.path()).await;
    let old = boot_id(&lab, "theoden");
    let out = cli(base.path(), &["arm", "theoden", "stays-down"]).await;
    assert!(out.status.success(), "arm: {out:?}");
    assert!(
        agent_reboots(&lab, base.path(), "theoden")
            .await
            .status
            .success()
    );
    wait(&lab, 10, "the boot that does not happen", |l| {
        l.ctx
            .timeline
            .entries()
            .iter()
            .any(|e| e.node.as_deref() == Some("theoden") && e.text.starts_with("stays-down"))
    })
    .await;
    // Past its dark period the node lifecycle gives up on it, as on a dead
    // host: Unknown, tainted unreachable; and it is still off.
    wait(&lab, 10, "theoden Ready=Unknown and tainted", |l| {
        let tainted = l.ctx.api.node("theoden").is_some_and(|n| {
            n["spec"]["taints"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t["key"] == "node.kubernetes.io/unreachable")
            })
        });
        ready_status(l, "theoden").as_deref() == Some("Unknown") && tainted
    })
    .await;
    assert!(!powered(&lab, "theoden"));
    assert_eq!(boot_id(&lab, "theoden"), old);
    assert!(
        status(base.path()).await["labs"][0]["api_up"] == true,
        "two of three etcd servers up: quorum"
    );

    // A second server down too: etcd loses its majority, the API goes.
    let out = cli(base.path(), &["arm", "samwise", "stays-down"]).await;
    assert!(out.status.success());
    assert!(
        agent_reboots(&lab, base.path(), "samwise")
            .await
            .status
            .success()
    );
    wait(&lab, 10, "the API down without quorum", |l| {
        !l.ctx.api.sim.is_up()
    })
    .await;
    let out = cli(base.path(), &["power-on", "samwise"]).await;
    assert!(out.status.success(), "power-on: {out:?}");
    assert!(lab.ctx.api.sim.is_up(), "quorum back with samwise");
    assert!(!powered(&lab, "theoden"), "power-on boots only its node");

    // Told at last: theoden comes back.
    let out = cli(base.path(), &["power-on", "theoden"]).await;
    assert!(out.status.success(), "power-on: {out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("theoden: powered on, boot id"));
    wait(&lab, 30, "theoden back and untainted", |l| {
        let untainted = l.ctx.api.node("theoden").is_some_and(|n| {
            !n["spec"]["taints"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t["key"] == "node.kubernetes.io/unreachable")
            })
        });
        back(l, "theoden", &old) && untainted
    })
    .await;
    let on = cli(base.path(), &["power-on", "theoden"]).await;
    assert_eq!(on.status.code(), Some(1), "already on: {on:?}");
    assert!(String::from_utf8_lossy(&on.stderr).contains("already powered on"));
}

fn volume(lab: &Lab, name: &str) -> Value {
    lab.ctx
        .api
        .sim
        .get(longhorn::API_VERSION, "Volume", longhorn::NAMESPACE, name)
        .unwrap_or(Value::Null)
}

fn robustness(lab: &Lab, name: &str) -> (String, String) {
    let v = volume(lab, name);
    (
        v["status"]["state"].as_str().unwrap_or_default().to_owned(),
        v["status"]["robustness"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// `(node, currentState)` of the volume's replicas.
fn replicas(lab: &Lab, volume: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = lab
        .ctx
        .api
        .sim
        .list(longhorn::API_VERSION, "Replica", Some(longhorn::NAMESPACE))
        .iter()
        .filter(|r| r["spec"]["volumeName"] == volume)
        .map(|r| {
            (
                r["spec"]["nodeID"].as_str().unwrap_or_default().to_owned(),
                r["status"]["currentState"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn is(lab: &Lab, name: &str, state: &str, robust: &str) -> bool {
    robustness(lab, name) == (state.to_owned(), robust.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn longhorn_volumes_degrade_fault_and_rebuild_with_their_nodes() {
    if !ready("longhorn_volumes_degrade_fault_and_rebuild_with_their_nodes") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let mut s = common::echo_scenario(3, SCALE);
    s.volumes = Scenario::parse(
        r#"name = "v"
[[nodes]]
name = "boromir"
[[nodes]]
name = "theoden"
[[nodes]]
name = "samwise"
[[volumes]]
name = "pvc-data"
size = "10Gi"
replicas = 2
nodes = ["theoden", "samwise"]
attached_to = "boromir"
"#,
    )
    .expect("scenario")
    .volumes;
    let rebuild = s.scaled(s.longhorn.rebuild);
    let lab = lab_of(s, base.path()).await;
    wait(&lab, 10, "pvc-data attached and healthy", |l| {
        is(l, "pvc-data", "attached", "healthy")
    })
    .await;
    let v = volume(&lab, "pvc-data");
    assert_eq!(v["status"]["currentNodeID"], "boromir");
    assert_eq!(v["spec"]["numberOfReplicas"], 2);
    assert_eq!(v["spec"]["size"], "10737418240");
    assert_eq!(
        replicas(&lab, "pvc-data"),
        [
            ("samwise".to_owned(), "running".to_owned()),
            ("theoden".to_owned(), "running".to_owned())
        ]
    );
    // Found as a gate finds them: by Longhorn's labels, over HTTP.
    let on_theoden = select(
        &lab,
        longhorn::API_VERSION,
        "Replica",
        &format!(
            "{}=theoden,{}=pvc-data",
            longhorn::LABEL_NODE,
            longhorn::LABEL_VOLUME
        ),
    )
    .await;
    assert_eq!(on_theoden.len(), 1, "labelled with its node and volume");
    assert_eq!(on_theoden[0]["spec"]["volumeName"], "pvc-data");
    assert_eq!(on_theoden[0]["spec"]["nodeID"], "theoden");

    // A replica's node reboots: degraded while it is away and until its
    // replica is rebuilt, healthy again after the rebuild delay.
    let old = boot_id(&lab, "theoden");
    assert!(
        agent_reboots(&lab, base.path(), "theoden")
            .await
            .status
            .success()
    );
    wait(&lab, 5, "degraded with theoden's replica in error", |l| {
        is(l, "pvc-data", "attached", "degraded")
            && replicas(l, "pvc-data").contains(&("theoden".to_owned(), "error".to_owned()))
    })
    .await;
    wait(&lab, 30, "theoden back", |l| back(l, "theoden", &old)).await;
    let back_at = Instant::now();
    wait(&lab, 30, "pvc-data healthy again", |l| {
        is(l, "pvc-data", "attached", "healthy")
    })
    .await;
    assert!(
        back_at.elapsed() + Duration::from_millis(300) >= rebuild,
        "healthy {:?} after the node was back, before the {rebuild:?} rebuild",
        back_at.elapsed()
    );
    assert!(
        lab.ctx
            .timeline
            .entries()
            .iter()
            .any(|e| e.kind == "longhorn"
                && e.text.contains("rebuilding")
                && e.node.as_deref() == Some("theoden")),
        "rebuilt, not just restarted"
    );

    // Both replicas' nodes down: no healthy replica, faulted and detached.
    for node in ["theoden", "samwise"] {
        assert!(
            cli(base.path(), &["arm", node, "stays-down"])
                .await
                .status
                .success()
        );
        assert!(
            agent_reboots(&lab, base.path(), node)
                .await
                .status
                .success()
        );
    }
    wait(&lab, 10, "pvc-data faulted", |l| {
        is(l, "pvc-data", "detached", "faulted")
            && replicas(l, "pvc-data")
                .iter()
                .all(|(_, state)| state == "error")
    })
    .await;
    assert_eq!(volume(&lab, "pvc-data")["status"]["currentNodeID"], "");
    for node in ["theoden", "samwise"] {
        assert!(cli(base.path(), &["power-on", node]).await.status.success());
    }
    wait(&lab, 30, "pvc-data salvaged and healthy", |l| {
        is(l, "pvc-data", "attached", "healthy")
    })
    .await;
}

/// The shipped `rolling-reboot` scenario: every volume healthy once up; a
/// node rebooted with flannel's silent skip comes back Ready, but its
/// longhorn-manager cannot start, so its replicas never rebuild and the
/// volumes stay degraded (what a storage gate must wait on), until the
/// post-mortem's fix lets the manager run and the rebuild finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_silently_broken_node_is_ready_but_its_replicas_never_rebuild() {
    if !ready("a_silently_broken_node_is_ready_but_its_replicas_never_rebuild") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let s = Scenario::parse(include_str!("../../../scenarios/rolling-reboot.toml"))
        .expect("the shipped scenario");
    let rebuild = s.scaled(s.longhorn.rebuild);
    let lab = lab_of(s, base.path()).await;
    let volumes = ["pvc-gitea", "pvc-vaultwarden", "pvc-scratch"];
    wait(&lab, 60, "every pod running, every volume healthy", |l| {
        let pods = l.ctx.api.pods();
        pods.len() == 10
            && pods.iter().all(api::pod_running)
            && volumes.iter().all(|v| is(l, v, "attached", "healthy"))
    })
    .await;

    assert!(
        cli(base.path(), &["arm", "theoden", "flannel-silent-skip"])
            .await
            .status
            .success()
    );
    let old = boot_id(&lab, "theoden");
    assert!(
        agent_reboots(&lab, base.path(), "theoden")
            .await
            .status
            .success()
    );
    wait(&lab, 5, "the single-replica volume faulted", |l| {
        is(l, "pvc-scratch", "detached", "faulted")
    })
    .await;
    wait(&lab, 30, "theoden back and Ready", |l| {
        back(l, "theoden", &old)
    })
    .await;
    // Ready, yet its manager's sandbox fails: no rebuild, however long.
    wait(&lab, 30, "longhorn-manager failing on theoden", |l| {
        l.ctx
            .api
            .events_with_reason("FailedCreatePodSandBox")
            .iter()
            .any(|e| {
                e["involvedObject"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("longhorn-manager-"))
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("subnet.env"))
            })
    })
    .await;
    let broken_since = Instant::now();
    while broken_since.elapsed() < rebuild * 2 {
        assert!(
            is(&lab, "pvc-gitea", "attached", "degraded")
                && is(&lab, "pvc-vaultwarden", "attached", "degraded"),
            "degraded while theoden cannot run its replicas: {:?} {:?}",
            robustness(&lab, "pvc-gitea"),
            robustness(&lab, "pvc-vaultwarden")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The post-mortem's fix: subnet.env written, k3s restarted; the manager
    // runs, the replicas rebuild, the volumes are healthy again (the
    // single replica is salvaged: it held all the data).
    let out = cli(base.path(), &["fix-manually"]).await;
    assert!(out.status.success(), "fix-manually: {out:?}");
    wait(&lab, 60, "every volume healthy again", |l| {
        volumes.iter().all(|v| is(l, v, "attached", "healthy"))
    })
    .await;
}

/// `rebootguard-lab up` in the background, stopped with SIGTERM (so it
/// cleans up) when dropped, also when the test fails.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: SIGTERM to the lab this test started.
            unsafe { libc::kill(i32::try_from(self.0.id()).unwrap_or(0), libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_servers_makes_the_first_nodes_etcd_servers() {
    if !ready("up_servers_makes_the_first_nodes_etcd_servers") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let _up = Up(std::process::Command::new(EXE)
        .args(["up", "--nodes", "3", "--servers", "2", "--dir"])
        .arg(base.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("up starts"));
    let t = Instant::now();
    let st = loop {
        let out = cli(base.path(), &["status", "--json"]).await;
        let st: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let nodes = st["labs"][0]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if nodes.len() == 3 && nodes.iter().all(|n| n["powered"] == true) {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no lab up: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let roles: Vec<&str> = st["labs"][0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["server", "server", "agent"]);
    assert_eq!(st["labs"][0]["embedded_etcd"], true);
    let text = cli(base.path(), &["status"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("samwise") && l.contains(" agent ")),
        "{text}"
    );
    let too_many = cli(base.path(), &["up", "--nodes", "2", "--servers", "3"]).await;
    assert_eq!(too_many.status.code(), Some(1), "{too_many:?}");
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("only 2 node(s)"));
}
