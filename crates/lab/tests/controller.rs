//! `rebootguard controller` against the lab, with the real agent in every
//! node (`--agent`): a node marked the way a real one is (its agent finds
//! `/var/run/reboot-required` under the node's root and writes
//! `rebootguard.io/reboot-required`) is cordoned, rebooted through the
//! agent handshake, verified and uncordoned, and the mark is gone with the
//! reboot's fresh `/run`; no other node is touched; a second controller
//! stands by while the first leads. A leader stopped in the middle of the
//! rollout leaves it whole, and the next one finishes it with one reboot.
//! Outside the window nothing happens and the log says when it opens. Needs root and Debian's CNI plugins; prints
//! why it skips otherwise.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rebootguard_cluster::reboot::{REQUEST, REQUIRED};
use rebootguard_lab::Lab;

mod common;
use common::{agent_lab, annotation, boot_id, events, ready, status, wait};

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");
/// Where the controller notes when it rebooted a node.
const REBOOTED: &str = "rebootguard.io/controller-rebooted";

/// Marks `node` as needing a reboot the way Debian does, and waits for its
/// agent to say so on the Node.
async fn mark(lab: &Lab, node: &str) {
    let sentinel = lab
        .node(node)
        .expect("node")
        .path("var/run/reboot-required");
    std::fs::write(&sentinel, "*** System restart required ***\n").expect("sentinel");
    wait(lab, "the agent reports reboot-required", 30, |l| {
        annotation(l, node, REQUIRED).is_some()
    })
    .await;
}

/// A `rebootguard controller` started against the lab, logging to a file;
/// killed when dropped.
struct Controller {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Controller {
    fn start(lab: &Lab, dir: &Path, identity: &str, args: &[&str]) -> Controller {
        let log = dir.join(format!("controller-{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(common::rebootguard(EXE))
            .arg("controller")
            .args(["--identity", identity, "--json"])
            .args([
                "--poll",
                "500ms",
                "--rollout-poll",
                "200ms",
                "--lease-ttl",
                "6s",
            ])
            .args(["--rollout-lease-ttl", "10s"])
            .args(args)
            .env("KUBECONFIG", lab.ctx.api.sim.kubeconfig_path())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("rebootguard controller runs");
        Controller { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then its exit code.
    async fn stop(mut self) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling a child this test started and still owns.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the controller stops on SIGTERM")
            .expect("waited")
            .code()
    }
}

/// A free loopback port.
fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A real HTTP GET of `path` on `127.0.0.1:port`: (status line, body).
fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

fn leader(lab: &Lab) -> Option<String> {
    common::lease(lab, "rebootguard", "rebootguard-controller")?["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_owned)
}

fn cordoned(lab: &Lab, node: &str) -> bool {
    lab.ctx
        .api
        .node(node)
        .is_some_and(|n| n["spec"]["unschedulable"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn the_controller_reboots_only_the_marked_node_verified_while_a_second_stands_by() {
    if !ready("the_controller_reboots_only_the_marked_node_verified_while_a_second_stands_by") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = agent_lab(EXE, base.path(), 3).await;
    let names: Vec<String> = lab.ctx.nodes.iter().map(|n| n.name.clone()).collect();
    let before: Vec<Option<String>> = names.iter().map(|n| boot_id(&lab, n)).collect();
    mark(&lab, "theoden").await;

    let (port_a, port_b) = (port(), port());
    let listen = |p: u16| format!("127.0.0.1:{p}");
    let a = Controller::start(
        &lab,
        base.path(),
        "replica-a",
        &["--window", "00:00-24:00", "--listen", &listen(port_a)],
    );
    wait(&lab, "replica-a leads", 30, |l| {
        leader(l).as_deref() == Some("replica-a")
    })
    .await;
    let b = Controller::start(
        &lab,
        base.path(),
        "replica-b",
        &["--window", "00:00-24:00", "--listen", &listen(port_b)],
    );

    // Until theoden is back, verified and uncordoned, sampling what is
    // cordoned every 20 ms.
    let mut ever_cordoned = BTreeSet::new();
    let mut most_at_once = 0;
    let t = std::time::Instant::now();
    let old = before[1].clone();
    loop {
        let now: Vec<&String> = names.iter().filter(|n| cordoned(&lab, n)).collect();
        most_at_once = most_at_once.max(now.len());
        ever_cordoned.extend(now.into_iter().cloned());
        let back = boot_id(&lab, "theoden") != old
            && !cordoned(&lab, "theoden")
            && ever_cordoned.contains("theoden")
            && status(&lab, "theoden").is_some_and(|(s, _)| s == "True")
            && annotation(&lab, "theoden", REBOOTED).is_some();
        if back {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "theoden not rebooted and verified within 180 s\n--- replica-a:\n{}\n--- replica-b:\n{}",
            a.log(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log_a = a.log();
    eprintln!("--- replica-a:\n{log_a}");
    // Only the marked node, once, through the agent's handshake.
    assert_eq!(
        ever_cordoned,
        BTreeSet::from(["theoden".to_owned()]),
        "{log_a}"
    );
    assert_eq!(most_at_once, 1);
    for (name, boot) in names.iter().zip(&before) {
        if name != "theoden" {
            assert_eq!(&boot_id(&lab, name), boot, "{name} was not rebooted");
        }
    }
    assert!(
        !events(&lab, "theoden", "Rebooting").is_empty(),
        "the agent rebooted it"
    );
    assert!(
        annotation(&lab, "theoden", REQUEST).is_none(),
        "request withdrawn"
    );
    // The new boot's /run has no sentinel: the agent withdraws the mark.
    wait(&lab, "reboot-required gone after the reboot", 30, |l| {
        annotation(l, "theoden", REQUIRED).is_none()
    })
    .await;
    let progress = annotation(&lab, "theoden", "rebootguard.io/rollout").expect("progress");
    assert!(progress.contains(r#""phase":"done""#), "{progress}");
    assert!(log_a.contains("rebooting theoden"), "{log_a}");
    assert!(log_a.contains("rebooted and verified"), "{log_a}");

    // The stand-by never acted, and says who leads; both answer over HTTP.
    let log_b = b.log();
    assert!(log_b.contains("replica-a leads; standing by"), "{log_b}");
    assert!(!log_b.contains("rebooting theoden"), "{log_b}");
    let (status_a, metrics_a) = get(port_a, "/metrics");
    assert!(status_a.contains("200"), "{status_a}");
    assert!(
        metrics_a.contains("rebootguard_controller_leader 1"),
        "{metrics_a}"
    );
    assert!(
        metrics_a.contains("rebootguard_controller_rollouts_total{result=\"done\"} 1"),
        "{metrics_a}"
    );
    let (_, metrics_b) = get(port_b, "/metrics");
    assert!(
        metrics_b.contains("rebootguard_controller_leader 0"),
        "{metrics_b}"
    );
    assert!(get(port_b, "/healthz").0.contains("200"));

    // Nothing more to do: idle, and a clean stop of both.
    wait(&lab, "the leader idles", 30, |_| {
        a.log().contains("no node needs a reboot")
    })
    .await;
    assert_eq!(b.stop().await, Some(0));
    assert_eq!(a.stop().await, Some(0));
    assert_eq!(leader(&lab), None, "leadership released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_leader_stopped_mid_rollout_hands_it_over_and_the_node_reboots_once() {
    if !ready("a_leader_stopped_mid_rollout_hands_it_over_and_the_node_reboots_once") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = agent_lab(EXE, base.path(), 2).await;
    mark(&lab, "theoden").await;
    let before = boot_id(&lab, "theoden");
    let a = Controller::start(&lab, base.path(), "replica-a", &[]);
    // SIGTERM as soon as the rollout has cordoned the node.
    wait(&lab, "theoden cordoned by the rollout", 60, |l| {
        cordoned(l, "theoden")
    })
    .await;
    let log_a = a.log.clone();
    assert_eq!(a.stop().await, Some(0), "a clean stop");
    let log_a = std::fs::read_to_string(log_a).unwrap_or_default();
    assert!(
        log_a.contains("interrupting the rollout after the API call in flight"),
        "{log_a}"
    );
    assert_eq!(leader(&lab), None, "leadership released on SIGTERM");
    assert!(
        annotation(&lab, "theoden", "rebootguard.io/rollout").is_some(),
        "the node keeps its progress"
    );
    let rollout_holder = common::lease(&lab, "kube-system", "rebootguard-reboot")
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned));
    assert_eq!(
        rollout_holder.as_deref(),
        Some("rebootguard-controller"),
        "the rollout stays the controller's"
    );

    let b = Controller::start(&lab, base.path(), "replica-b", &[]);
    wait(
        &lab,
        "theoden rebooted, verified and uncordoned by replica-b",
        120,
        |l| {
            boot_id(l, "theoden") != before
                && !cordoned(l, "theoden")
                && annotation(l, "theoden", REBOOTED).is_some()
        },
    )
    .await;
    let log_b = b.log();
    assert!(log_b.contains("resuming the unfinished rollout"), "{log_b}");
    assert_eq!(
        events(&lab, "theoden", "Rebooting").len(),
        1,
        "one reboot, whoever asked:\n{log_b}"
    );
    assert_eq!(b.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn outside_the_window_nothing_happens_and_the_log_says_when_it_opens() {
    if !ready("outside_the_window_nothing_happens_and_the_log_says_when_it_opens") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = agent_lab(EXE, base.path(), 2).await;
    mark(&lab, "theoden").await;
    let before = boot_id(&lab, "theoden");
    // A one-hour window starting two hours from now (UTC).
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let hour = now.hour();
    let (from, to) = ((hour + 2) % 24, (hour + 3) % 24);
    let window = format!("{from:02}:00-{to:02}:00");
    let day = if from > hour {
        now.date()
    } else {
        now.date().tomorrow().expect("a tomorrow")
    };
    let opens = day
        .at(from, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("a time")
        .timestamp();
    let out = tokio::process::Command::new(common::rebootguard(EXE))
        .args(["controller", "--once", "--json", "--identity", "cron"])
        .args(["--window", &window])
        .env("KUBECONFIG", lab.ctx.api.sim.kubeconfig_path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("rebootguard controller --once");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains(&format!("outside the maintenance window until {opens}")),
        "expected the opening time {opens}:\n{log}"
    );
    assert!(!cordoned(&lab, "theoden"));
    assert!(annotation(&lab, "theoden", REQUEST).is_none());
    assert_eq!(boot_id(&lab, "theoden"), before);
    let said = events(&lab, "theoden", "RebootWaitingForWindow");
    assert!(
        said.iter().any(|m| m.contains(&opens.to_string())),
        "{said:?}"
    );
    assert_eq!(leader(&lab), None, "--once gives leadership back");
}
