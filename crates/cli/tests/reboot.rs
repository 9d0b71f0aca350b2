//! `rebootguard reboot` against kubesim, the real binary: the gates the
//! flags add (maintenance windows, Prometheus alerts) as `--dry-run` shows
//! them and as a rollout obeys them, and the webhook notifications of a
//! rollout the test plays the nodes of (`--manual`: the test "reboots" a
//! drained node by giving it a new boot ID).

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kubesim::KubeSim;
use serde_json::{Value, json};

async fn sim(nodes: &[&str]) -> Arc<KubeSim> {
    let sim = KubeSim::start().await.expect("kubesim");
    for (i, n) in nodes.iter().enumerate() {
        sim.create(&json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n, "labels": {"index": i.to_string()}},
            "spec": {"podCIDR": format!("10.42.{i}.0/24"), "podCIDRs": [format!("10.42.{i}.0/24")]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"bootID": format!("{n}-boot-0")},
            },
        }))
        .expect("node");
    }
    Arc::new(sim)
}

fn command(sim: &KubeSim, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"));
    c.arg("reboot")
        .args(args)
        .arg("--kubeconfig")
        .arg(sim.kubeconfig_path())
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

async fn reboot(sim: &KubeSim, args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(120), command(sim, args).output())
        .await
        .expect("rebootguard reboot finished")
        .expect("run rebootguard")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// A daily window starting `from` hours after the current UTC hour, one hour long.
fn window_in(from: i64) -> (String, jiff::Timestamp) {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let start = now
        .with()
        .minute(0)
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .expect("hour")
        .checked_add(jiff::SignedDuration::from_hours(from))
        .expect("later");
    let spec = format!("{:02}:00-{:02}:00", start.hour(), (start.hour() + 1) % 24);
    (spec, start.timestamp())
}

/// A window open now (this hour to two hours on).
fn window_now() -> String {
    let h = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .hour();
    format!("{h:02}:00-{:02}:00", (h + 2) % 24)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_the_window_gate_and_when_it_opens() {
    let sim = sim(&["boromir", "theoden"]).await;
    let (closed, opens) = window_in(3);
    let out = reboot(&sim, &["--dry-run", "--window", &closed]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("window"))
        .unwrap_or_else(|| panic!("no window gate: {}", text(&out)));
    assert!(line.contains("CLOSED"), "{line}");
    assert!(
        line.contains(&format!("the next one opens at {opens}")),
        "{line}"
    );
    // Two windows, one open now: open.
    let out = reboot(
        &sim,
        &["--dry-run", "--window", &closed, "--window", &window_now()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains("window"))
            .all(|l| l.contains("open ") && l.contains("inside the maintenance window")),
        "{}",
        text(&out)
    );
    // Nothing changed.
    for n in sim.list("v1", "Node", None) {
        assert_eq!(n["spec"].get("unschedulable"), None, "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_opening_after_the_gates_timeout_stops_at_once_untouched() {
    let sim = sim(&["boromir", "theoden"]).await;
    let (closed, opens) = window_in(3);
    let started = std::time::Instant::now();
    let out = reboot(
        &sim,
        &[
            "--window",
            &closed,
            "--timeout-gates",
            "10m",
            "--manual",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "no waiting for the window"
    );
    let events = events(&out);
    let stopped = events
        .iter()
        .find(|e| e["event"] == "stopped")
        .unwrap_or_else(|| panic!("no stop: {}", text(&out)));
    let what = stopped["data"]["stop"]["what"].as_str().unwrap_or_default();
    assert!(
        what.contains(&format!("the next one opens at {opens}"))
            && what.contains("after --timeout-gates 10m"),
        "{what}"
    );
    assert_eq!(stopped["data"]["stop"]["phase"], "gates");
    let result = events.last().expect("result");
    assert_eq!(result["event"], "result");
    assert_eq!(result["outcome"]["result"], "stopped");
    for n in sim.list("v1", "Node", None) {
        assert_eq!(n["spec"].get("unschedulable"), None, "untouched: {n}");
    }
}
