//! `rebootguard reboot` against kubesim, the real binary: the gates the
//! flags add (maintenance windows, Prometheus alerts) as `--dry-run` shows
//! them and as a rollout obeys them, and the webhook notifications of a
//! rollout the test plays the nodes of (`--manual`: the test "reboots" a
//! drained node by giving it a new boot ID), with `--verify` (the test
//! plays the kubelet of the probe pods).

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use kubesim::KubeSim;
use serde_json::{Value, json};

#[path = "common/manifests.rs"]
mod manifests;
#[path = "common/probes.rs"]
mod probes;
use probes::{Kubelet, kubelet, nodes, ours, text};

async fn sim(nodes: &[&str]) -> Arc<KubeSim> {
    probes::cluster(nodes).await
}

fn command(sim: &KubeSim, args: &[&str]) -> tokio::process::Command {
    probes::rebootguard(sim, "reboot", args)
}

async fn reboot(sim: &KubeSim, args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(120), command(sim, args).output())
        .await
        .expect("rebootguard reboot finished")
        .expect("run rebootguard")
}

/// The `stopped` event among `events` and what failed.
fn stopped<'a>(events: &'a [Value], out: &Output) -> (&'a Value, &'a str) {
    let stopped = events
        .iter()
        .find(|e| e["event"] == "stopped")
        .unwrap_or_else(|| panic!("no stop: {}", text(out)));
    (
        stopped,
        stopped["data"]["stop"]["what"].as_str().unwrap_or_default(),
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
    let (stopped, what) = stopped(&events, &out);
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

/// A loopback HTTP server answering every request with `status` and
/// `body`; records each request's head and body.
async fn http_server(
    status: u16,
    body: &'static str,
) -> (
    u16,
    Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as much body as content-length says.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if rest.len() >= length {
                            break;
                        }
                    }
                }
                record
                    .lock()
                    .expect("lock")
                    .push(String::from_utf8_lossy(&request).into_owned());
                let reason = if status == 200 { "OK" } else { "Error" };
                let answer = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, seen, task)
}

const ALERTS: &str = r#"{"status":"success","data":{"alerts":[
    {"labels":{"alertname":"Watchdog","severity":"none"},"state":"firing","activeAt":"2026-12-01T00:00:00Z","value":"1e+00"},
    {"labels":{"alertname":"InfoInhibitor","severity":"none"},"state":"firing"},
    {"labels":{"alertname":"KubePodCrashLooping","namespace":"apps","pod":"web-1","severity":"warning"},"state":"pending"},
    {"labels":{"alertname":"KubeNodeNotReady","node":"theoden","severity":"warning"},"state":"firing"}
]}}"#;

const QUIET: &str = r#"{"status":"success","data":{"alerts":[
    {"labels":{"alertname":"Watchdog","severity":"none"},"state":"firing"},
    {"labels":{"alertname":"KubePodCrashLooping","namespace":"apps","pod":"web-1"},"state":"pending"}
]}}"#;

/// The alerts gate's line of a `--dry-run` against a Prometheus answering
/// `status` and `body`, with the requests it got.
async fn alerts_gate(status: u16, body: &'static str, extra: &[&str]) -> (String, Vec<String>) {
    let sim = sim(&["boromir", "theoden"]).await;
    let (port, seen, server) = http_server(status, body).await;
    let url = format!("http://127.0.0.1:{port}");
    let mut args = vec!["--dry-run", "--prometheus", &url, "boromir"];
    args.extend_from_slice(extra);
    let out = reboot(&sim, &args).await;
    server.abort();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains(" alerts "))
        .unwrap_or_else(|| panic!("no alerts gate: {}", text(&out)))
        .to_owned();
    let requests = seen.lock().expect("lock").clone();
    (line, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alerts_close_the_gate_pending_and_ignored_ones_do_not() {
    let (line, requests) = alerts_gate(200, ALERTS, &[]).await;
    assert!(line.contains("CLOSED"), "{line}");
    assert!(
        line.ends_with(r#"firing: KubeNodeNotReady{severity="warning", node="theoden"}"#),
        "{line}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.starts_with("GET /api/v1/alerts HTTP/1.1")),
        "{requests:?}"
    );
    let (line, _) = alerts_gate(200, QUIET, &[]).await;
    assert!(
        line.contains("open") && line.ends_with("no alert firing"),
        "{line}"
    );
    // Ignoring another name replaces the defaults: Watchdog counts again.
    let (line, _) = alerts_gate(200, ALERTS, &["--ignore-alert", "KubeNodeNotReady"]).await;
    assert!(
        line.contains("CLOSED") && line.contains("Watchdog") && line.contains("InfoInhibitor"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswering_prometheus_closes_the_gate_saying_why() {
    let (line, _) = alerts_gate(500, "{\"error\":\"overloaded\"}", &[]).await;
    assert!(line.contains("CLOSED"), "{line}");
    assert!(
        line.contains("alerts unknown: Prometheus at http://127.0.0.1:")
            && line.contains("/api/v1/alerts answered 500: {\"error\":\"overloaded\"}"),
        "{line}"
    );
    let (line, _) = alerts_gate(200, "<html>please sign in</html>", &[]).await;
    assert!(
        line.contains("CLOSED") && line.contains("is not Prometheus's alerts API"),
        "{line}"
    );
    // Nobody listening.
    let sim = sim(&["boromir"]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = reboot(&sim, &["--dry-run", "--json", "--prometheus", &url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events = events(&out);
    let plan = &events.last().expect("result")["outcome"]["plan"];
    let gate = plan[0][1]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == "alerts"))
        .unwrap_or_else(|| panic!("no alerts gate: {plan}"));
    assert_eq!(gate["open"], false);
    assert!(
        gate["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("alerts unknown: cannot reach Prometheus")),
        "{gate}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_prometheus_url_is_refused_before_anything() {
    let sim = sim(&["boromir"]).await;
    let out = reboot(&sim, &["--prometheus", "prometheus:9090"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--prometheus \"prometheus:9090\" is not an http(s) URL"),
        "{}",
        text(&out)
    );
}

/// Plays the operator of a `--manual` rollout: a node whose progress says
/// `down` gets a new boot ID (it "rebooted").
fn operator(sim: &Arc<KubeSim>) -> tokio::task::JoinHandle<()> {
    let sim = sim.clone();
    tokio::spawn(async move {
        loop {
            for n in sim.list("v1", "Node", None) {
                let name = n["metadata"]["name"].as_str().unwrap_or_default();
                let progress = n["metadata"]["annotations"]["rebootguard.io/rollout"]
                    .as_str()
                    .and_then(|p| serde_json::from_str::<Value>(p).ok());
                let boot = n["status"]["nodeInfo"]["bootID"]
                    .as_str()
                    .unwrap_or_default();
                if progress.is_some_and(|p| p["phase"] == "down") && boot.ends_with("-boot-0") {
                    let _ = sim.patch_status(
                        "v1",
                        "Node",
                        "",
                        name,
                        kubesim::patch::Kind::Merge,
                        &json!({"status": {"nodeInfo": {"bootID": format!("{name}-boot-1")}}}),
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

const FAST: [&str; 6] = ["--manual", "--poll", "200ms", "--lease-ttl", "6s", "--json"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_verify_each_node_waits_for_its_probes_and_nothing_is_left() {
    let sim = sim(&["boromir", "theoden"]).await;
    let (probes, seen) = kubelet(
        &sim,
        nodes(&[("boromir", Kubelet::Works), ("theoden", Kubelet::Works)]),
    );
    let operator = operator(&sim);
    let mut args = FAST.to_vec();
    args.extend(["--verify", "--verify-timeout", "20s"]);
    let out = reboot(&sim, &args).await;
    probes.abort();
    operator.abort();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events = events(&out);
    assert_eq!(events.last().expect("result")["outcome"]["result"], "done");
    // Two runs per node (its gates, its network), each a probe on every node.
    let runs: std::collections::BTreeSet<String> = seen
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|p| {
            p["metadata"]["labels"]["rebootguard.io/verify-run"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(ours(&sim, "Pod").is_empty() && ours(&sim, "Service").is_empty());
    for n in sim.list("v1", "Node", None) {
        assert!(
            n["status"]["nodeInfo"]["bootID"]
                .as_str()
                .is_some_and(|b| b.ends_with("-boot-1")),
            "{n}"
        );
        assert_eq!(n["spec"].get("unschedulable"), None, "uncordoned: {n}");
    }
}

/// Two nodes whose probes pass on boromir and get no sandbox on theoden,
/// and a `--verify` rollout of boromir with `--verify-timeout timeout`.
async fn theoden_without_sandbox(
    timeout: &'static str,
) -> (Arc<KubeSim>, tokio::task::JoinHandle<()>, Vec<&'static str>) {
    let sim = sim(&["boromir", "theoden"]).await;
    let (probes, _) = kubelet(
        &sim,
        nodes(&[("boromir", Kubelet::Works), ("theoden", Kubelet::NoSandbox)]),
    );
    let mut args = FAST.to_vec();
    args.extend([
        "--verify",
        "--verify-timeout",
        timeout,
        "--timeout-gates",
        "3s",
        "boromir",
    ]);
    (sim, probes, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_failing_verify_closes_the_gates() {
    let (sim, probes, args) = theoden_without_sandbox("6s").await;
    let out = reboot(&sim, &args).await;
    probes.abort();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let events = events(&out);
    let (_, what) = stopped(&events, &out);
    assert!(
        what.contains("gate others-healthy closed: theoden failed verify: sandbox failed: no pod network: flannel subnet.env missing"),
        "{what}"
    );
    let boromir = sim.get("v1", "Node", "", "boromir").expect("node");
    assert_eq!(boromir["spec"].get("unschedulable"), None, "untouched");
    assert!(ours(&sim, "Pod").is_empty(), "probes deleted");
}

/// The JSON bodies of the POSTs a receiver got, with their heads.
fn posts(requests: &[String]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|r| r.starts_with("POST / HTTP/1.1"))
        .filter_map(|r| {
            let (head, body) = r.split_once("\r\n\r\n")?;
            Some((head.to_ascii_lowercase(), body.to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_hear_of_the_start_each_node_and_the_end() {
    let sim = sim(&["boromir", "theoden"]).await;
    let (port, seen, server) = http_server(200, "{}").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").expect("token");
    let operator = operator(&sim);
    let url = format!("http://127.0.0.1:{port}/");
    let mut args = FAST.to_vec();
    args.extend([
        "--webhook",
        &url,
        "--webhook-token-file",
        token.to_str().expect("utf-8"),
    ]);
    let out = reboot(&sim, &args).await;
    operator.abort();
    server.abort();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let posts = posts(&seen.lock().expect("lock"));
    let bodies: Vec<Value> = posts
        .iter()
        .map(|(_, b)| serde_json::from_str(b).expect("json body"))
        .collect();
    let said: Vec<(String, String)> = bodies
        .iter()
        .map(|b| {
            (
                b["event"].as_str().unwrap_or("").to_owned(),
                b["node"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let order: Vec<&str> = said.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        order,
        ["started", "node-done", "node-done", "done"],
        "{bodies:?}"
    );
    let mut nodes: Vec<&str> = said[1..3].iter().map(|(_, n)| n.as_str()).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, ["boromir", "theoden"]);
    // The node's timeline rides along.
    assert!(
        bodies[1]["message"].as_str().is_some_and(|m| m
            .contains("rebooted and verified: started +")
            && m.contains("uncordoned +")),
        "{}",
        bodies[1]
    );
    assert_eq!(bodies[0]["source"], "rebootguard-reboot");
    for (head, _) in &posts {
        assert!(head.contains("authorization: bearer s3cret"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
    }
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("s3cret"),
        "the token is never printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_is_notified_with_what_failed_and_what_to_do() {
    let sim = sim(&["boromir"]).await;
    let (port, seen, server) = http_server(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url_file = dir.path().join("url");
    std::fs::write(&url_file, format!("http://127.0.0.1:{port}/\n")).expect("url");
    let (closed, _) = window_in(3);
    let out = reboot(
        &sim,
        &[
            "--manual",
            "--window",
            &closed,
            "--webhook-file",
            url_file.to_str().expect("utf-8"),
            "--webhook-format",
            "slack",
        ],
    )
    .await;
    server.abort();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let posts = posts(&seen.lock().expect("lock"));
    assert_eq!(posts.len(), 2, "started and stopped: {posts:?}");
    let stopped: Value = serde_json::from_str(&posts[1].1).expect("json");
    let text = stopped["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with(":rotating_light: rollout stopped at boromir (gates): gate window closed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_webhook_secret_stops_before_anything() {
    let sim = sim(&["boromir"]).await;
    let out = reboot(
        &sim,
        &["--manual", "--webhook-file", "/nonexistent/rebootguard-url"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--webhook: cannot read the webhook's url: /nonexistent/rebootguard-url"),
        "{stderr}"
    );
    let mut c = command(&sim, &["--manual", "--webhook", "hooks.example/x"]);
    let out = c.output().await.expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--webhook: the URL is not an http(s) URL")
            && !stderr.contains("hooks.example"),
        "{stderr}"
    );
    assert!(sim.list("v1", "Node", None).iter().all(|n| {
        n["metadata"]["annotations"]
            .get("rebootguard.io/rollout")
            .is_none()
    }));
}

/// A verify run outlasting the Lease's renewal interval renews it
/// meanwhile: a second rollout started during the run finds the holder
/// alive and is refused (exit 2), rather than seeing a silent holder and
/// waiting to take over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_stays_renewed_during_a_long_verify_run() {
    let (sim, probes, args) = theoden_without_sandbox("12s").await;
    let first = command(&sim, &args).spawn().expect("first rollout");
    // The first probe run settles only after the probes' wait (9 s): at
    // 6 s the first rollout last renewed its Lease at most 2 s ago.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!ours(&sim, "Pod").is_empty(), "the verify run is going on");
    let second = reboot(&sim, &["--manual", "--lease-ttl", "6s", "boromir"]).await;
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another rollout is running"),
        "{}",
        text(&second)
    );
    let first = tokio::time::timeout(Duration::from_secs(60), first.wait_with_output())
        .await
        .expect("first finished")
        .expect("first ran");
    probes.abort();
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
}

/// `rebootguard controller --once ARGS`: a replica deciding once.
async fn controller_once(sim: &KubeSim, args: &[&str]) -> Output {
    let mut all = vec!["--once", "--identity", "cron"];
    all.extend_from_slice(args);
    tokio::time::timeout(
        Duration::from_secs(60),
        probes::rebootguard(sim, "controller", &all).output(),
    )
    .await
    .expect("--once returns")
    .expect("run rebootguard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_waits_while_an_alert_fires_instead_of_starting() {
    // The controller asks the rollout's gates, alerts included, before it
    // starts one: a firing alert keeps the marked node waiting (not a
    // rollout that would stop on its gates and hold everything).
    let sim = sim(&["boromir", "theoden"]).await;
    let marked = json!({"metadata": {"annotations": {
        rebootguard_cluster::reboot::REQUIRED: "2026-12-01T00:00:00Z"}}});
    sim.patch(
        "v1",
        "Node",
        "",
        "theoden",
        kubesim::patch::Kind::Merge,
        &marked,
    )
    .expect("mark theoden");
    let (port, seen, server) = http_server(200, ALERTS).await;
    let url = format!("http://127.0.0.1:{port}");
    let out = controller_once(&sim, &["--prometheus", &url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = text(&out);
    assert!(
        log.contains("theoden") && log.contains("KubeNodeNotReady"),
        "{log}"
    );
    assert!(!log.contains("Watchdog"), "ignored by default: {log}");
    let theoden = sim.get("v1", "Node", "", "theoden").expect("node");
    assert_ne!(theoden["spec"]["unschedulable"], true, "untouched");
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .any(|r| r.starts_with("GET /api/v1/alerts")),
        "Prometheus was asked"
    );
    server.abort();

    // Quiet: it would go.
    let (port, _, server) = http_server(200, QUIET).await;
    let url = format!("http://127.0.0.1:{port}");
    let out = controller_once(&sim, &["--dry-run", "--prometheus", &url]).await;
    server.abort();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("dry run: would act: rebooting theoden"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_refuses_an_unreadable_webhook_secret_before_anything() {
    let sim = sim(&["boromir"]).await;
    let out = controller_once(
        &sim,
        &["--webhook-file", "/nonexistent/rebootguard-webhook-url"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--webhook"), "{}", text(&out));
    assert!(
        sim.list("coordination.k8s.io/v1", "Lease", None).is_empty(),
        "no Lease taken"
    );
}

/// `rebootguard reboot ARGS` as a member of `rebootguard:reboot-operators`,
/// on kubesim enforcing the shipped `deploy/kubernetes/reboot-operator`
/// roles (minus `revoked`: a `(ClusterRole, resource, verb)`).
async fn reboot_as_operator(
    nodes: &[&str],
    revoked: Option<(&str, &str, &str)>,
    args: &[&str],
) -> (Arc<KubeSim>, Output) {
    let sim = probes::cluster_with(
        kubesim::Options {
            rbac: true,
            tls: true,
            ..kubesim::Options::default()
        },
        nodes,
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    manifests::apply(
        &sim,
        &dir.path().join("cache"),
        "deploy/kubernetes/reboot-operator",
    )
    .await;
    if let Some((role, resource, verb)) = revoked {
        manifests::revoke(&sim, ("ClusterRole", "", role), "", resource, verb);
    }
    let token = sim.user_token("alice", &["rebootguard:reboot-operators"]);
    let kubeconfig = manifests::kubeconfig(&sim, dir.path(), "alice", &token);
    let operator = operator(&sim);
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        probes::rebootguard_as(&kubeconfig, "reboot", args).output(),
    )
    .await
    .expect("rebootguard reboot finished")
    .expect("run rebootguard");
    operator.abort();
    (sim, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_with_exactly_the_shipped_roles_reboots_and_one_permission_less_is_named() {
    if !manifests::have_kubectl(
        "an_operator_with_exactly_the_shipped_roles_reboots_and_one_permission_less_is_named",
    ) {
        return;
    }
    let (sim, out) = reboot_as_operator(&["boromir", "theoden"], None, &FAST).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for node in ["boromir", "theoden"] {
        let n = sim.get("v1", "Node", "", node).expect("node");
        assert_eq!(
            n["status"]["nodeInfo"]["bootID"],
            format!("{node}-boot-1"),
            "{node} rebooted"
        );
        assert_ne!(n["spec"]["unschedulable"], true, "{node} uncordoned");
    }
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{}",
        text(&out)
    );

    // Without `patch` on nodes: nothing can be cordoned; the rollout stops
    // at once at the first node, saying which permission is missing.
    let (sim, out) = reboot_as_operator(
        &["boromir"],
        Some(("rebootguard-reboot-operator", "nodes", "patch")),
        &FAST,
    )
    .await;
    let events = events(&out);
    let (_, what) = stopped(&events, &out);
    assert!(
        what.contains(
            r#"User "alice" cannot patch resource "nodes" in API group "" at the cluster scope"#
        ),
        "{what}"
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let n = sim.get("v1", "Node", "", "boromir").expect("node");
    assert_eq!(
        n["status"]["nodeInfo"]["bootID"], "boromir-boot-0",
        "not rebooted"
    );
}
