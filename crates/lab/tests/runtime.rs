//! Runtime faults (`rebootguard-lab break`) on a running three-node lab:
//! each one has its effect in the node's kernel or files at once, the
//! emulated flannel does not repair it on its own, and a k3s restart of
//! that node repairs what flannel repairs when it starts. Needs root and
//! Debian's CNI plugins; prints why it skips otherwise.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use rebootguard_hostnet::link::{self, Family};
use rebootguard_lab::lab::Error;
use rebootguard_lab::node::{self, paths};
use rebootguard_lab::{Lab, RuntimeFault, api};
use serde_json::json;

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

async fn lab3(base: &std::path::Path) -> Lab {
    let lab = Lab::up(common::echo_scenario(3, 20.0), common::options(EXE, base))
        .await
        .expect("lab up");
    wait(&lab, "every pod running", |l| {
        let pods = l.ctx.api.pods();
        pods.len() == 3 && pods.iter().all(api::pod_running)
    })
    .await;
    lab
}

async fn wait(lab: &Lab, what: &str, mut f: impl FnMut(&Lab) -> bool) {
    let t = Instant::now();
    while !f(lab) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What flannel programmed on boromir's `flannel.1`: (fdb destinations,
/// neighbour IPs, onlink routes), or None without `flannel.1`.
type Entries = (Vec<IpAddr>, Vec<IpAddr>, Vec<String>);

fn entries(lab: &Lab, name: &str) -> Option<Entries> {
    let ns = lab
        .node(name)
        .expect("a lab node")
        .netns()
        .expect("powered");
    link::blocking(Some(&ns), |nl| async move {
        let vtep = match nl.link(node::VTEP).await {
            Ok(l) => l.index,
            Err(link::Error::NoSuchLink(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut fdb: Vec<IpAddr> = nl
            .fdb()
            .await?
            .into_iter()
            .filter(|f| f.index == vtep)
            .filter_map(|f| f.destination)
            .collect();
        let mut neigh: Vec<IpAddr> = nl
            .neighbours()
            .await?
            .into_iter()
            .filter(|n| n.index == vtep && n.ip.is_ipv4())
            .map(|n| n.ip)
            .collect();
        let mut routes: Vec<String> = nl
            .routes(Family::V4)
            .await?
            .into_iter()
            .filter(|r| r.oif == Some(vtep) && r.onlink)
            .map(|r| r.destination.to_string())
            .collect();
        fdb.sort();
        neigh.sort();
        routes.sort();
        Ok(Some((fdb, neigh, routes)))
    })
    .expect("netlink answers")
}

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

/// Everything flannel programs on boromir for theoden and samwise.
fn full_mesh() -> Entries {
    (
        vec![ip([172, 31, 0, 2]), ip([172, 31, 0, 3])],
        vec![ip([10, 42, 1, 0]), ip([10, 42, 2, 0])],
        vec!["10.42.1.0/24".into(), "10.42.2.0/24".into()],
    )
}

fn pod_on(lab: &Lab, node: &str) -> (String, Ipv4Addr) {
    let p = lab
        .ctx
        .api
        .pods_on(node)
        .into_iter()
        .find(api::pod_running)
        .unwrap_or_else(|| panic!("no running pod on {node}"));
    (
        format!("default/{}", api::name(&p)),
        p["status"]["podIP"]
            .as_str()
            .and_then(|ip| ip.parse().ok())
            .expect("a pod IP"),
    )
}

/// Applies `fault` and checks the instant returned is now.
async fn apply(lab: &Lab, node: &str, fault: RuntimeFault) -> jiff::Timestamp {
    let before = jiff::Timestamp::try_from(SystemTime::now()).expect("now");
    let at = lab.break_now(node, fault.clone()).await.expect("applied");
    let after = jiff::Timestamp::try_from(SystemTime::now()).expect("now");
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    assert!(
        lab.ctx.timeline.entries().iter().any(|e| e.kind == "fault"
            && e.node.as_deref() == Some(node)
            && e.text.starts_with(&format!("runtime fault {fault} at "))),
        "{fault} not on the timeline"
    );
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn runtime_faults_act_at_once_and_a_k3s_restart_repairs_them() {
    if !ready("runtime_faults_act_at_once_and_a_k3s_restart_repairs_them") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let lab = lab3(base.path()).await;
    let boromir = lab.node("boromir").unwrap();
    let env = boromir.path(paths::SUBNET_ENV);
    let good = std::fs::read_to_string(&env).unwrap();
    wait(&lab, "the full flannel mesh", |l| {
        entries(l, "boromir") == Some(full_mesh())
    })
    .await;
    let restart = |lab: &Lab| {
        lab.restart_k3s("boromir", "the test").expect("k3s restart");
        assert!(
            lab.ctx
                .timeline
                .entries()
                .iter()
                .any(|e| e.text == "k3s restarted (asked by the test)")
        );
    };

    // delete-subnet-env: gone, and flannel does not write it again ...
    apply(&lab, "boromir", RuntimeFault::DeleteSubnetEnv).await;
    assert!(!env.exists());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!env.exists(), "nothing but a k3s restart rewrites it");
    // ... until k3s restarts.
    restart(&lab);
    wait(&lab, "subnet.env rewritten", |_| env.exists()).await;
    assert_eq!(std::fs::read_to_string(&env).unwrap(), good);

    // corrupt-subnet-env: no FLANNEL_MTU; the plugin refuses new sandboxes.
    apply(&lab, "boromir", RuntimeFault::CorruptSubnetEnv).await;
    let bad = std::fs::read_to_string(&env).unwrap();
    assert!(!bad.contains("FLANNEL_MTU") && bad.contains("FLANNEL_SUBNET=10.42.0.1/24"));
    let (pod, _) = pod_on(&lab, "boromir");
    let (_, name) = pod.split_once('/').unwrap();
    lab.ctx
        .api
        .delete_now("v1", "Pod", "default", name)
        .unwrap();
    wait(&lab, "a sandbox refused for the missing MTU", |l| {
        l.ctx
            .api
            .events_with_reason("FailedCreatePodSandBox")
            .iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains("FLANNEL_MTU"))
    })
    .await;
    restart(&lab);
    wait(&lab, "subnet.env valid and the pod running", |l| {
        std::fs::read_to_string(&env).ok().as_deref() == Some(good.as_str())
            && l.ctx.api.pods_on("boromir").iter().any(api::pod_running)
    })
    .await;

    // delete-flannel-link: flannel.1 and everything on it gone, not recreated ...
    apply(&lab, "boromir", RuntimeFault::DeleteFlannelLink).await;
    assert_eq!(entries(&lab, "boromir"), None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        entries(&lab, "boromir"),
        None,
        "flannel does not recreate it"
    );
    // ... until k3s restarts: flannel.1 as before, every peer programmed.
    restart(&lab);
    wait(&lab, "flannel.1 and its peers back", |l| {
        entries(l, "boromir") == Some(full_mesh())
    })
    .await;
    let vtep = link::get(boromir.netns().as_deref(), node::VTEP).unwrap();
    assert_eq!(vtep.mtu, 1450);
    assert!(
        vtep.addresses
            .iter()
            .any(|a| a.to_string() == "10.42.0.0/32"),
        "{:?}",
        vtep.addresses
    );
    let (from, _) = pod_on(&lab, "boromir");
    let (_, theoden_ip) = pod_on(&lab, "theoden");
    let (_, samwise_ip) = pod_on(&lab, "samwise");
    let pings = |lab: &Lab, to: Ipv4Addr| {
        let t = Instant::now();
        loop {
            if lab.ping_from_pod(&from, to) == Some(true) {
                return true;
            }
            if t.elapsed() > Duration::from_secs(3) {
                return false;
            }
        }
    };
    assert!(pings(&lab, theoden_ip), "the overlay works again");

    // drop-peer: theoden's fdb, neighbour and route go; samwise's stay; pings fail ...
    apply(
        &lab,
        "boromir",
        RuntimeFault::DropPeer {
            peer: "theoden".into(),
        },
    )
    .await;
    let without_theoden: Entries = (
        vec![ip([172, 31, 0, 3])],
        vec![ip([10, 42, 1, 0])],
        vec!["10.42.1.0/24".into()],
    );
    assert_eq!(entries(&lab, "boromir"), Some(without_theoden.clone()));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        entries(&lab, "boromir"),
        Some(without_theoden),
        "flannel's peer loop programs only what changes in the API"
    );
    assert_eq!(lab.ping_from_pod(&from, theoden_ip), Some(false));
    assert!(pings(&lab, samwise_ip));
    // ... until k3s restarts.
    restart(&lab);
    wait(&lab, "theoden's entries back", |l| {
        entries(l, "boromir") == Some(full_mesh())
    })
    .await;
    assert!(pings(&lab, theoden_ip));

    // stop-flannel: a new peer is programmed on samwise but not on boromir ...
    apply(&lab, "boromir", RuntimeFault::StopFlannel).await;
    lab.ctx
        .api
        .create(&json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "ghost", "annotations": {
                "flannel.alpha.coreos.com/backend-type": "vxlan",
                "flannel.alpha.coreos.com/backend-data": "{\"VNI\":1,\"VtepMAC\":\"0a:58:ac:1f:00:63\"}",
                "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                "flannel.alpha.coreos.com/public-ip": "172.31.0.99"}},
            "spec": {"podCIDR": "10.42.9.0/24", "podCIDRs": ["10.42.9.0/24"]}}))
        .unwrap();
    let has_ghost =
        |l: &Lab, n: &str| entries(l, n).is_some_and(|e| e.2.contains(&"10.42.9.0/24".to_owned()));
    wait(&lab, "samwise follows the new peer", |l| {
        has_ghost(l, "samwise")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!has_ghost(&lab, "boromir"), "stopped flannel added a peer");
    // ... until k3s restarts.
    restart(&lab);
    wait(&lab, "boromir follows again", |l| has_ghost(l, "boromir")).await;

    // Errors: nothing to break, unknown nodes, itself as a peer, a node off.
    let e = lab
        .break_now(
            "boromir",
            RuntimeFault::DropPeer {
                peer: "nobody".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoNode(..)), "{e}");
    let e = lab
        .break_now(
            "boromir",
            RuntimeFault::DropPeer {
                peer: "boromir".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("drop-peer boromir"), "{e}");
    lab.break_now("theoden", RuntimeFault::DeleteSubnetEnv)
        .await
        .unwrap();
    let e = lab
        .break_now("theoden", RuntimeFault::CorruptSubnetEnv)
        .await
        .unwrap_err();
    assert!(
        rebootguard_errors::chain(&e).contains("nothing to break"),
        "{}",
        rebootguard_errors::chain(&e)
    );
    let l = std::sync::Arc::new(lab);
    let rebooting = {
        let l = l.clone();
        tokio::spawn(async move {
            l.reboot(&["samwise".to_owned()], Duration::from_millis(800))
                .await
        })
    };
    wait(&l, "samwise off", |l| {
        l.node("samwise").unwrap().netns().is_none()
    })
    .await;
    let e = l
        .break_now("samwise", RuntimeFault::StopFlannel)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PoweredOff(_)), "{e}");
    assert!(matches!(
        l.restart_k3s("samwise", "").unwrap_err(),
        Error::PoweredOff(_)
    ));
    rebooting.await.unwrap().unwrap();
}
