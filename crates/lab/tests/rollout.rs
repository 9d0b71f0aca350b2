//! `rebootguard reboot` against the lab: the real binary rolls reboots over
//! a three-server lab (the shipped `rolling-reboot` scenario without its
//! unreplicated volume), each node rebooted by the lab's `node-reboot`
//! (what a node's own reboot is). A watch records that never more than one
//! node is cordoned or down. Needs root and Debian's CNI plugins; prints
//! why it skips otherwise.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rebootguard_lab::scenario::Fault;
use rebootguard_lab::{Lab, Scenario, api};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

fn scenario() -> Scenario {
    let mut s = Scenario::parse(include_str!("../../../scenarios/rolling-reboot.toml"))
        .expect("the shipped scenario");
    // Its single-replica volume would (rightly) close the storage gate.
    s.volumes.retain(|v| v.name != "pvc-scratch");
    s
}

async fn lab_of(base: &Path, agent: bool, protected: bool) -> Lab {
    let mut o = common::options(EXE, base);
    o.agent = agent;
    o.protected = protected;
    o.rebootguard = Some(common::rebootguard(EXE));
    let lab = Lab::up(scenario(), o).await.expect("lab up");
    let t = Instant::now();
    loop {
        let pods = lab.ctx.api.pods();
        let volumes =
            lab.ctx
                .api
                .sim
                .list("longhorn.io/v1beta2", "Volume", Some("longhorn-system"));
        if pods.len() == 10
            && pods.iter().all(api::pod_running)
            && volumes
                .iter()
                .all(|v| v["status"]["robustness"] == "healthy")
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "lab healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lab
}

fn boot_ids(lab: &Lab) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = lab
        .ctx
        .api
        .sim
        .list("v1", "Node", None)
        .iter()
        .map(|n| {
            (
                n["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                n["status"]["nodeInfo"]["bootID"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Nodes cordoned or not Ready now.
fn disturbed(lab: &Lab) -> Vec<String> {
    lab.ctx
        .api
        .sim
        .list("v1", "Node", None)
        .iter()
        .filter(|n| {
            let cordoned = n["spec"]["unschedulable"] == true;
            let ready = n["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            cordoned || !ready
        })
        .map(|n| n["metadata"]["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

struct Run {
    code: Option<i32>,
    lines: Vec<Value>,
    /// The most nodes seen cordoned or down at once, and which.
    most_disturbed: Vec<String>,
}

/// Runs `rebootguard reboot --json` with `args` against the lab, sampling
/// the Nodes every 50 ms; `kill_when` kills it (SIGKILL) at the first
/// event it matches.
async fn rollout(
    lab: &Lab,
    base: &Path,
    args: &[&str],
    kill_when: Option<&dyn Fn(&Value) -> bool>,
) -> Run {
    let mut cmd = tokio::process::Command::new(common::rebootguard(EXE));
    cmd.arg("reboot")
        .args([
            "--json",
            "--poll",
            "200ms",
            "--lease-ttl",
            "6s",
            "--grace-period",
            "1",
        ])
        .args([
            "--timeout-gates",
            "60s",
            "--timeout-drain",
            "30s",
            "--timeout-down",
            "20s",
        ])
        .args([
            "--timeout-ready",
            "30s",
            "--timeout-network",
            "30s",
            "--timeout-storage",
            "20s",
        ])
        .args(args)
        .args(["--reboot-command", EXE, "node-reboot", "--dir"])
        .arg(base)
        .arg("{node}")
        .env("KUBECONFIG", lab.ctx.api.sim.kubeconfig_path())
        .env("REBOOTGUARD_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("rebootguard runs");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut run = Run {
        code: None,
        lines: Vec::new(),
        most_disturbed: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        tokio::select! {
            line = out.next_line() => match line {
                Ok(Some(line)) => {
                    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    eprintln!("{line}");
                    let kill = kill_when.is_some_and(|k| k(&v));
                    run.lines.push(v);
                    if kill {
                        child.start_kill().expect("killed");
                        break;
                    }
                }
                _ => break,
            },
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                let now = disturbed(lab);
                if now.len() > run.most_disturbed.len() {
                    run.most_disturbed = now;
                }
                assert!(Instant::now() < deadline, "the rollout took too long");
            }
        }
    }
    run.code = child.wait().await.expect("waited").code();
    run
}

fn events<'a>(run: &'a Run, kind: &str) -> Vec<&'a Value> {
    run.lines.iter().filter(|l| l["event"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_rolling_reboot_takes_one_node_at_a_time_and_verifies_each() {
    if !ready("a_rolling_reboot_takes_one_node_at_a_time_and_verifies_each") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = lab_of(base.path(), true, false).await;
    let before = boot_ids(&lab);
    let run = rollout(
        &lab,
        base.path(),
        &["boromir", "theoden", "samwise", "--order", "as-given"],
        None,
    )
    .await;
    assert_eq!(run.code, Some(0), "{:#?}", run.lines.last());
    assert!(
        run.most_disturbed.len() <= 1,
        "more than one node cordoned or down: {:?}",
        run.most_disturbed
    );
    let timelines = events(&run, "timeline");
    let order: Vec<&str> = timelines
        .iter()
        .filter_map(|t| t["node"].as_str())
        .collect();
    assert_eq!(order, ["boromir", "theoden", "samwise"]);
    for t in &timelines {
        let marks: Vec<&str> = t["data"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter_map(|m| m["mark"].as_str())
            .collect();
        assert_eq!(
            marks,
            [
                "started",
                "drained",
                "asked",
                "booted",
                "ready",
                "network",
                "cleaned",
                "storage",
                "uncordoned"
            ],
            "{t}"
        );
    }
    let after = boot_ids(&lab);
    for ((n, b), (_, a)) in before.iter().zip(&after) {
        assert_ne!(a, b, "{n} rebooted");
    }
    assert!(disturbed(&lab).is_empty(), "all uncordoned and Ready");
    // Events on the Nodes, and the Lease free again.
    let reasons: Vec<String> = lab
        .ctx
        .api
        .sim
        .list("v1", "Event", Some("default"))
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reasons.iter().any(|r| r == "RolloutNodeDone"),
        "{reasons:?}"
    );
    let lease = common::lease(&lab, "kube-system", "rebootguard-reboot").expect("lease");
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_none_or(str::is_empty),
        "{lease}"
    );
    let requests: u64 = lab
        .ctx
        .api
        .sim
        .requests_by_agent()
        .iter()
        .filter(|(agent, ..)| agent.is_empty() || agent.starts_with("rebootguard/"))
        .map(|(_, _, _, n)| *n)
        .sum();
    eprintln!(
        "figures: API requests by the CLI (and other agent-less clients) during the rollout: {requests}"
    );
    for t in &timelines {
        eprintln!("figures: {} timeline {}", t["node"], t["data"]);
    }
}

/// The incident's silent flannel failure on the second node: unprotected
/// (and no agent to heal it) the rollout stops there with the first domino
/// naming subnet.env and the third node untouched; protected, it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn flannels_silent_skip_stops_the_rollout_unless_protected() {
    if !ready("flannels_silent_skip_stops_the_rollout_unless_protected") {
        return;
    }
    for protected in [false, true] {
        let base = tempfile::tempdir().unwrap();
        let lab = lab_of(base.path(), false, protected).await;
        lab.inject("theoden", Fault::FlannelSilentSkip)
            .expect("armed");
        let before = boot_ids(&lab);
        let run = rollout(
            &lab,
            base.path(),
            &["boromir", "theoden", "samwise", "--order", "as-given"],
            None,
        )
        .await;
        assert!(run.most_disturbed.len() <= 1, "{:?}", run.most_disturbed);
        if protected {
            assert_eq!(run.code, Some(0), "protected: {:#?}", run.lines.last());
            continue;
        }
        assert_eq!(run.code, Some(1), "{:#?}", run.lines.last());
        let stopped = events(&run, "stopped");
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0]["node"], "theoden");
        let domino = stopped[0]["data"]["firstDomino"].to_string();
        assert!(domino.contains("subnet.env"), "first domino: {domino}");
        let after = boot_ids(&lab);
        let samwise = |ids: &[(String, String)]| {
            ids.iter()
                .find(|(n, _)| n == "samwise")
                .map(|(_, b)| b.clone())
        };
        assert_eq!(samwise(&before), samwise(&after), "samwise untouched");
        assert_eq!(
            disturbed(&lab),
            ["theoden"],
            "theoden left cordoned, the rest untouched"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_node_that_never_comes_back_stops_the_rollout() {
    if !ready("a_node_that_never_comes_back_stops_the_rollout") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = lab_of(base.path(), false, false).await;
    lab.inject("boromir", Fault::StaysDown).expect("armed");
    let before = boot_ids(&lab);
    let run = rollout(
        &lab,
        base.path(),
        &["boromir", "theoden", "samwise", "--order", "as-given"],
        None,
    )
    .await;
    assert_eq!(run.code, Some(1));
    let stopped = events(&run, "stopped");
    assert_eq!(stopped[0]["node"], "boromir");
    assert_eq!(stopped[0]["phase"], "down");
    assert!(
        stopped[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("did not come back"))
    );
    let after = boot_ids(&lab);
    assert_eq!(before[1..], after[1..], "the others untouched");
}

/// Killed mid-rollout (right after asking the second node to reboot), the
/// rerun waits out the dead holder's Lease and resumes at that node,
/// without rebooting it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_killed_rollout_resumes_at_the_same_node() {
    if !ready("a_killed_rollout_resumes_at_the_same_node") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = lab_of(base.path(), false, false).await;
    let args = ["boromir", "theoden", "samwise", "--order", "as-given"];
    let asked = |v: &Value| v["reason"] == "RolloutRebootAsked" && v["node"] == "theoden";
    let first = rollout(&lab, base.path(), &args, Some(&asked)).await;
    assert_ne!(first.code, Some(0), "killed");
    let theoden_boot = boot_ids(&lab)[2].1.clone();
    // A second rollout meanwhile is refused with the holder's name.
    let busy = rollout(&lab, base.path(), &args, None).await;
    assert_eq!(
        busy.code,
        Some(2),
        "refused while the holder's renewal is recent"
    );
    // Past a missed renewal (every 2 s with a 6 s TTL, plus half), the
    // holder counts as vanished: the rerun waits out its Lease.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let second = rollout(&lab, base.path(), &args, None).await;
    assert_eq!(second.code, Some(0), "{:#?}", second.lines.last());
    let text: Vec<String> = second
        .lines
        .iter()
        .map(|l| l["message"].to_string())
        .collect();
    assert!(
        text.iter().any(|m| m.contains("resuming rollout")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|m| m.contains("boromir already done")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|m| m.contains("resuming theoden at down")),
        "{text:#?}"
    );
    assert!(
        second
            .lines
            .iter()
            .all(|l| !(l["reason"] == "RolloutRebootAsked" && l["node"] == "theoden")),
        "theoden not asked twice"
    );
    assert_ne!(boot_ids(&lab)[2].1, theoden_boot);
}

/// With `--verify`, real probe pods (the lab's kubelet runs `rebootguard
/// verify probe` in each pod's namespace) prove each node: the first
/// passes after its reboot; the second, rebooted into flannel's silent
/// skip without protection or agent, is stopped in its network phase by
/// its own probe's sandbox failure, before storage or anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn with_verify_a_node_without_pod_network_stops_at_its_network() {
    if !ready("with_verify_a_node_without_pod_network_stops_at_its_network") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = lab_of(base.path(), false, false).await;
    lab.inject("theoden", Fault::FlannelSilentSkip)
        .expect("armed");
    let run = rollout(
        &lab,
        base.path(),
        &[
            "boromir",
            "theoden",
            "samwise",
            "--order",
            "as-given",
            "--verify",
            "--verify-timeout",
            "20s",
        ],
        None,
    )
    .await;
    assert_eq!(run.code, Some(1), "{:#?}", run.lines.last());
    assert!(run.most_disturbed.len() <= 1, "{:?}", run.most_disturbed);
    let timelines = events(&run, "timeline");
    assert_eq!(timelines.len(), 1, "boromir done");
    assert_eq!(timelines[0]["node"], "boromir");
    let stopped = events(&run, "stopped");
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["node"], "theoden");
    assert_eq!(stopped[0]["phase"], "network");
    let what = stopped[0]["data"]["stop"]["what"].as_str().unwrap_or("");
    assert!(
        what.contains("verify failed: sandbox failed: no pod network")
            && what.contains("subnet.env"),
        "{what}"
    );
    // No probe pod or Service left behind.
    let left: Vec<Value> = lab
        .ctx
        .api
        .sim
        .list("v1", "Pod", None)
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] == "rebootguard-verify")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
