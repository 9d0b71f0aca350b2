//! The real `rebootguard agent` in every lab node (`--agent`), against the
//! lab's real data plane: the incident with no backup anywhere, each
//! runtime fault, the API going away and misbehaving, two nodes failing at
//! once, and an agent restarted while its node is broken. What the Node
//! shows is recorded by a watch, so a transition shorter than any poll is
//! still seen. Needs root and Debian's CNI plugins; prints why it skips
//! otherwise.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::{WatchStreamExt, watcher};
use rebootguard_lab::runtime::RuntimeFault;
use rebootguard_lab::{Fault, Lab, api, node};

mod common;
use common::{agent_lab, annotation, boot_id, events, ready, status, wait};

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");
const CONDITION: &str = "PodNetworkReady";
const TAINT: &str = "rebootguard.io/pod-network-unready";

fn tainted(lab: &Lab, node: &str) -> bool {
    lab.ctx.api.node(node).is_some_and(|n| {
        n["spec"]["taints"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["key"] == TAINT))
    })
}

/// k3s restarts the agent asked for on `node`, from the lab's timeline.
fn restarts(lab: &Lab, node: &str) -> Vec<f64> {
    lab.ctx
        .timeline
        .entries()
        .iter()
        .filter(|e| {
            e.node.as_deref() == Some(node)
                && e.kind == "k3s"
                && e.text.starts_with("k3s restarted (asked by rebootguard")
        })
        .map(|e| e.t)
        .collect()
}

/// One `PodNetworkReady` a watch saw: (node, status, reason, when).
type Sighting = (String, String, String, Instant);

/// Every `PodNetworkReady` change a watch saw, on every node.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Sighting>>>);

impl Seen {
    /// Starts the watch and returns once it has listed every node, so what
    /// it records after that is news.
    async fn start(lab: &Lab) -> Seen {
        let seen = Seen::watch(lab);
        let nodes = lab.ctx.nodes.len();
        let t = Instant::now();
        while seen.0.lock().expect("lock").len() < nodes && t.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen
    }

    fn watch(lab: &Lab) -> Seen {
        let seen = Seen::default();
        let client = lab.ctx.api.sim.client().expect("client");
        let api: kube::Api<Node> = kube::Api::all(client);
        let out = seen.clone();
        tokio::spawn(async move {
            // Retried at once: the default backoff grows to seconds while
            // the test cuts the API, long enough to miss a transition.
            let stream = watcher::watcher(api, watcher::Config::default()).backoff(Quick);
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let n = match event {
                    Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => n,
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("test watch of Nodes failed (retrying): {e}");
                        continue;
                    }
                };
                let name = n.metadata.name.clone().unwrap_or_default();
                let Some(c) = n
                    .status
                    .and_then(|s| s.conditions)
                    .and_then(|c| c.into_iter().find(|c| c.type_ == CONDITION))
                else {
                    continue;
                };
                let mut all = out.0.lock().expect("lock");
                let last = all.iter().rev().find(|(n, ..)| *n == name);
                let reason = c.reason.unwrap_or_default();
                if last.is_none_or(|(_, s, r, _)| *s != c.status || *r != reason) {
                    all.push((name, c.status, reason, Instant::now()));
                }
            }
        });
        seen
    }

    /// What `node` went through since `since`.
    fn since(&self, node: &str, since: Instant) -> Vec<(String, String)> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(n, .., t)| n == node && *t >= since)
            .map(|(_, s, r, _)| (s.clone(), r.clone()))
            .collect()
    }
}

/// The test watch's retry: 50 ms, every time.
struct Quick;

impl Iterator for Quick {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(50))
    }
}

impl kube::runtime::utils::Backoff for Quick {
    fn reset(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn the_incident_with_no_backup_is_healed_and_alerted() {
    if !ready("the_incident_with_no_backup_is_healed_and_alerted") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = agent_lab(EXE, base.path(), 3).await;
    let seen = Seen::start(&lab).await;

    // A webhook receiver on samwise (a node that stays up), reached by
    // boromir's agent over the underlay.
    let samwise = lab.node("samwise").expect("samwise");
    let ns = samwise.netns().expect("powered");
    let listener = ns
        .run(|| std::net::TcpListener::bind((samwise.public_ip, 0)))
        .expect("netns")
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hooks = Arc::new(Mutex::new(Vec::<String>::new()));
    let got = hooks.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(body) = read_request(stream) {
                got.lock().expect("lock").push(body);
            }
        }
    });
    let boromir = lab.node("boromir").expect("boromir");
    let config = boromir.path("etc/rebootguard/config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[[agent.alert]]\nurl = \"http://{}:{port}/hook\"\n",
        samwise.public_ip
    ));
    std::fs::write(&config, text).expect("write config");

    // No backup anywhere: the agent must regenerate subnet.env from the API.
    for n in &lab.ctx.nodes {
        let store = n.path(node::paths::STORE);
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).expect("mkdir");
    }
    let before = Instant::now();
    lab.inject("boromir", Fault::FlannelSilentSkip)
        .expect("inject");
    lab.reboot(&["boromir".to_owned()], Duration::from_millis(200))
        .await
        .expect("reboot");
    wait(
        &lab,
        "boromir healthy again after the incident's reboot",
        60,
        |l| {
            seen.since("boromir", before)
                .last()
                .is_some_and(|(s, _)| s == "True")
                && !tainted(l, "boromir")
        },
    )
    .await;

    let went = seen.since("boromir", before);
    assert!(
        went.iter()
            .any(|(s, r)| s == "False" && (r == "SubnetEnvMissing" || r == "FlannelLinkMissing")),
        "{went:?}"
    );
    let restored = events(&lab, "boromir", "SubnetEnvRestored");
    assert!(
        restored
            .iter()
            .any(|m| m.contains("regenerated subnet.env from the API")),
        "{restored:?}"
    );
    assert_eq!(restarts(&lab, "boromir").len(), 1, "k3s restarted once");
    assert_eq!(events(&lab, "boromir", "RestartingK3s").len(), 1);
    assert_eq!(events(&lab, "boromir", "PodNetworkRecovered").len(), 1);
    for other in ["samwise", "theoden"] {
        assert!(restarts(&lab, other).is_empty(), "{other} left alone");
    }
    // The flannel that came up wrote a file the agent then backed up.
    assert!(
        std::fs::read_dir(boromir.path(node::paths::STORE))
            .expect("store")
            .count()
            > 0
    );
    wait(&lab, "the alert and its resolve", 20, |_| {
        hooks.lock().expect("lock").len() >= 2
    })
    .await;
    let bodies = hooks.lock().expect("lock").clone();
    let states: Vec<serde_json::Value> = bodies
        .iter()
        .map(|b| serde_json::from_str(b).expect("json"))
        .collect();
    assert_eq!(states[0]["state"], "firing", "{bodies:?}");
    assert_eq!(states[0]["node"], "boromir");
    assert_eq!(states[1]["state"], "resolved", "{bodies:?}");
    // Pods come back to boromir.
    wait(&lab, "boromir's pod running", 30, |l| {
        l.ctx.api.pods_on("boromir").iter().any(api::pod_running)
    })
    .await;
}

/// One HTTP request's body (answered 200).
fn read_request(mut stream: std::net::TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    String::from_utf8(body).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn every_runtime_fault_is_reported_and_healed() {
    if !ready("every_runtime_fault_is_reported_and_healed") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = agent_lab(EXE, base.path(), 3).await;
    let seen = Seen::start(&lab).await;
    let cases: [(RuntimeFault, &str, usize); 4] = [
        (RuntimeFault::DeleteSubnetEnv, "SubnetEnvMissing", 0),
        (RuntimeFault::CorruptSubnetEnv, "SubnetEnvInvalid", 0),
        (RuntimeFault::DeleteFlannelLink, "FlannelLinkMissing", 1),
        (
            RuntimeFault::DropPeer {
                peer: "samwise".into(),
            },
            "PeerEntriesMissing",
            1,
        ),
    ];
    for (fault, reason, k3s) in cases {
        let restarted = restarts(&lab, "boromir").len();
        let at = Instant::now();
        lab.break_now("boromir", fault.clone())
            .await
            .expect("break");
        wait(&lab, &format!("boromir healed after {fault}"), 30, |l| {
            let went = seen.since("boromir", at);
            went.iter().any(|(s, r)| s == "False" && r == reason)
                && went.last().is_some_and(|(s, _)| s == "True")
                && !tainted(l, "boromir")
        })
        .await;
        assert_eq!(
            restarts(&lab, "boromir").len() - restarted,
            k3s,
            "{fault}: k3s restarts"
        );
    }

    // A stopped flannel breaks nothing until the cluster changes: theoden's
    // flannel.1 gets a new MAC. samwise's running flannel follows; boromir's
    // stopped one cannot, and its agent restarts k3s to get it back.
    lab.break_now("boromir", RuntimeFault::StopFlannel)
        .await
        .expect("stop flannel");
    let at = Instant::now();
    let theoden = lab.node("theoden").expect("theoden");
    let new_mac = "0a:58:ac:1f:00:7e";
    let tns = theoden.netns().expect("powered");
    let out = tns
        .command("ip")
        .expect("command")
        .args(["link", "set", "flannel.1", "address", new_mac])
        .output()
        .expect("ip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = format!("{{\"VNI\":1,\"VtepMAC\":\"{new_mac}\"}}");
    lab.ctx
        .api
        .merge(
            "v1",
            "Node",
            "",
            "theoden",
            &serde_json::json!({"metadata": {"annotations": {"flannel.alpha.coreos.com/backend-data": data}}}),
        )
        .expect("annotate");
    wait(
        &lab,
        "boromir healed after theoden's new VtepMAC",
        30,
        |l| {
            let went = seen.since("boromir", at);
            went.iter()
                .any(|(s, r)| s == "False" && r == "PeerEntriesMissing")
                && went.last().is_some_and(|(s, _)| s == "True")
                && !tainted(l, "boromir")
        },
    )
    .await;
    // samwise may have seen the mismatch for a moment (its agent is faster
    // than flannel's peer loop), but its own flannel repaired it: no restart.
    assert!(restarts(&lab, "samwise").is_empty());
    assert_eq!(
        status(&lab, "samwise").map(|s| s.0).as_deref(),
        Some("True")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn the_api_going_away_or_misbehaving_ends_with_the_right_condition() {
    if !ready("the_api_going_away_or_misbehaving_ends_with_the_right_condition") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = agent_lab(EXE, base.path(), 2).await;
    let sim = &lab.ctx.api.sim;
    let boromir = lab.node("boromir").expect("boromir");
    let env = boromir.path(node::paths::SUBNET_ENV);

    // API down: the file is restored locally all the same.
    sim.down().await;
    let at = Instant::now();
    lab.break_now("boromir", RuntimeFault::DeleteSubnetEnv)
        .await
        .expect("break");
    let t = Instant::now();
    while !env.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "not restored while the API is down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.up().expect("up");
    let seen = Seen::start(&lab).await;
    wait(
        &lab,
        "the condition to catch up once the API is back",
        30,
        |l| {
            status(l, "boromir").is_some_and(|(s, _)| s == "True")
                && l.ctx
                    .api
                    .node("boromir")
                    .is_some_and(|n| heartbeat_after(&n, at))
        },
    )
    .await;

    // Throttling, errors, expired and cut watches, a server restart, all
    // while flannel.1 goes: the right condition in the end.
    use kubesim::faults::{Failure, Route};
    sim.fail_next(Route::resource("nodes/status"), 3, Failure::Internal);
    sim.fail_next(Route::any(), 2, Failure::TooManyRequests { retry_after: 1 });
    sim.expire_next_watches(3);
    sim.cut_watches();
    let at = Instant::now();
    lab.break_now("boromir", RuntimeFault::DeleteFlannelLink)
        .await
        .expect("break");
    sim.down().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.up().expect("up");
    sim.cut_watches();
    wait(&lab, "boromir healed through the API's faults", 40, |l| {
        status(l, "boromir").is_some_and(|(s, _)| s == "True")
            && !tainted(l, "boromir")
            && l.ctx
                .api
                .node("boromir")
                .is_some_and(|n| heartbeat_after(&n, at))
    })
    .await;
    let restarted = restarts(&lab, "boromir");
    assert!(
        seen.since("boromir", at)
            .iter()
            .any(|(s, r)| s == "False" && r == "FlannelLinkMissing")
            || restarted.len() == 1,
        "the failure was seen or healed by one restart: seen {:?}, restarts at {restarted:?}, timeline:\n{}",
        seen.since("boromir", at),
        lab.ctx
            .timeline
            .entries()
            .iter()
            .filter(|e| e.node.as_deref() == Some("boromir"))
            .map(|e| format!("{:>7.2} {} {}", e.t, e.kind, e.text))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The condition's heartbeat is surely later than `at` (whole seconds in
/// kubesim).
fn heartbeat_after(node: &serde_json::Value, at: Instant) -> bool {
    let Some(c) = node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == CONDITION))
    else {
        return false;
    };
    let Some(beat) = c["lastHeartbeatTime"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        return false;
    };
    let at =
        jiff::Timestamp::now() - jiff::SignedDuration::try_from(at.elapsed()).unwrap_or_default();
    // kubesim keeps whole seconds: a beat in `at`'s own second may have
    // come before it, so only a later second counts.
    beat.as_second() > at.as_second()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_nodes_failing_at_once_restart_one_after_the_other() {
    if !ready("two_nodes_failing_at_once_restart_one_after_the_other") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = agent_lab(EXE, base.path(), 3).await;
    let seen = Seen::start(&lab).await;
    // Who holds the restart Lease, as a watch sees it.
    let holders = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let holders = holders.clone();
        let api: kube::Api<Lease> =
            kube::Api::namespaced(lab.ctx.api.sim.client().expect("client"), "kube-system");
        tokio::spawn(async move {
            // Retried at once: the default backoff grows to seconds while
            // the test cuts the API, long enough to miss a transition.
            let stream = watcher::watcher(api, watcher::Config::default()).backoff(Quick);
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(l) | watcher::Event::InitApply(l)) = event {
                    let holder = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                    let mut h = holders.lock().expect("lock");
                    if h.last() != Some(&holder) {
                        h.push(holder);
                    }
                }
            }
        });
    }
    let at = Instant::now();
    let (a, b) = tokio::join!(
        lab.break_now("boromir", RuntimeFault::DeleteFlannelLink),
        lab.break_now("theoden", RuntimeFault::DeleteFlannelLink)
    );
    a.expect("break boromir");
    b.expect("break theoden");
    wait(&lab, "both nodes healed", 60, |l| {
        ["boromir", "theoden"].iter().all(|n| {
            let went = seen.since(n, at);
            went.iter().any(|(s, _)| s == "False")
                && went.last().is_some_and(|(s, _)| s == "True")
                && !tainted(l, n)
        })
    })
    .await;
    let (rb, rt) = (restarts(&lab, "boromir"), restarts(&lab, "theoden"));
    assert_eq!((rb.len(), rt.len()), (1, 1), "one restart each");
    let holders: Vec<String> = holders
        .lock()
        .expect("lock")
        .iter()
        .filter(|h| !h.is_empty())
        .cloned()
        .collect();
    assert_eq!(
        holders.len(),
        2,
        "the Lease went to one, then the other: {holders:?}"
    );
    assert_ne!(holders[0], holders[1]);
    // The second restart came only after the first node had recovered and
    // handed the Lease back.
    let (first, second) = if rb[0] < rt[0] {
        ("boromir", rt[0])
    } else {
        ("theoden", rb[0])
    };
    let recovered = lab
        .ctx
        .timeline
        .entries()
        .iter()
        .filter(|e| e.node.as_deref() == Some(first) && e.kind == "k3s")
        .map(|e| e.t)
        .fold(0.0_f64, f64::max);
    assert!(
        second >= recovered,
        "restarts overlapped: {second} < {recovered}"
    );
    assert_eq!(holders[0], first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn an_agent_restarted_while_broken_never_shows_true() {
    if !ready("an_agent_restarted_while_broken_never_shows_true") {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let lab = agent_lab(EXE, base.path(), 2).await;
    let seen = Seen::start(&lab).await;
    let boromir = lab.node("boromir").expect("boromir");
    // A missing plugin that a k3s restart does not bring back (the lab's k3s
    // does not re-extract its plugins): the agent tries once and gives up.
    let plugin = boromir.path(node::paths::CNI_BIN).join("flannel");
    let target = std::fs::read_link(&plugin).expect("symlink");
    std::fs::remove_file(&plugin).expect("rm");
    let at = Instant::now();
    wait(&lab, "CniPluginMissing reported", 20, |_| {
        seen.since("boromir", at)
            .iter()
            .any(|(s, r)| s == "False" && r == "CniPluginMissing")
    })
    .await;
    wait(&lab, "the agent to give up", 20, |l| {
        !events(l, "boromir", "RemediationExhausted").is_empty()
    })
    .await;
    for _ in 0..3 {
        let pid = agent_pid(&boromir.root);
        // SAFETY: kill(2) on the pid of the lab's own agent process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait(&lab, "the supervisor to start a new agent", 20, |_| {
            agent_pid(&boromir.root) != pid
        })
        .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    assert!(tainted(&lab, "boromir"));
    let went = seen.since("boromir", at);
    assert!(
        went.iter().all(|(s, _)| s != "True"),
        "True while broken: {went:?}"
    );
    std::os::unix::fs::symlink(&target, &plugin).expect("put back");
    wait(&lab, "boromir healthy once the plugin is back", 30, |l| {
        status(l, "boromir").is_some_and(|(s, _)| s == "True") && !tainted(l, "boromir")
    })
    .await;
}

fn agent_pid(root: &Path) -> i32 {
    std::fs::read_to_string(root.join("agent.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

/// The reboot handshake end to end: the agent reports the sentinel,
/// refuses a request on an uncordoned node, reboots a cordoned one once
/// (the lab power-cycles it through the agent's `reboot-command`), and the
/// agent after the reboot finds the request answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_reboot_asked_through_the_node_happens_once_and_only_when_cordoned() {
    if !ready("a_reboot_asked_through_the_node_happens_once_and_only_when_cordoned") {
        return;
    }
    use rebootguard_cluster::reboot::{ACCEPTED, REQUEST, REQUIRED, Request};
    let base = tempfile::tempdir().expect("tempdir");
    // theoden is an agent node: rebooting it leaves the API up.
    let lab = agent_lab(EXE, base.path(), 2).await;
    let theoden = lab.node("theoden").expect("theoden");

    let sentinel = theoden.path("var/run/reboot-required");
    std::fs::create_dir_all(sentinel.parent().expect("dir")).expect("mkdir");
    std::fs::write(&sentinel, "*** System restart required ***\n").expect("sentinel");
    wait(&lab, "reboot-required reported", 20, |l| {
        annotation(l, "theoden", REQUIRED).is_some()
    })
    .await;

    let before = boot_id(&lab, "theoden").expect("boot id");
    let request = Request {
        id: "test-rollout/theoden/1".into(),
        expires: jiff::Timestamp::now() + jiff::SignedDuration::from_secs(600),
    };
    let ask = serde_json::json!({"metadata": {"annotations": {REQUEST: request.to_annotation()}}});
    lab.ctx
        .api
        .merge("v1", "Node", "", "theoden", &ask)
        .expect("request");
    wait(&lab, "the request refused on an uncordoned node", 20, |l| {
        events(l, "theoden", "RebootRefused")
            .iter()
            .any(|m| m.contains("not cordoned"))
    })
    .await;
    assert_eq!(boot_id(&lab, "theoden").as_ref(), Some(&before));
    assert_eq!(annotation(&lab, "theoden", ACCEPTED), None);

    let cordon = serde_json::json!({"spec": {"unschedulable": true}});
    lab.ctx
        .api
        .merge("v1", "Node", "", "theoden", &cordon)
        .expect("cordon");
    wait(&lab, "theoden rebooted with a new boot ID", 30, |l| {
        boot_id(l, "theoden").is_some_and(|b| b != before)
    })
    .await;
    assert_eq!(
        annotation(&lab, "theoden", ACCEPTED).as_deref(),
        Some(request.id.as_str())
    );
    assert!(!events(&lab, "theoden", "Rebooting").is_empty());
    let after = boot_id(&lab, "theoden").expect("boot id");
    wait(&lab, "theoden's network verified again", 60, |l| {
        status(l, "theoden").is_some_and(|(s, _)| s == "True")
    })
    .await;
    // The agent of the new boot saw the request answered: no second reboot.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(boot_id(&lab, "theoden"), Some(after));

    std::fs::remove_file(&sentinel).ok();
    wait(&lab, "reboot-required withdrawn", 20, |l| {
        annotation(l, "theoden", REQUIRED).is_none()
    })
    .await;
}
