//! The lab's data plane proven end to end: a three-node lab comes up, pods
//! on different nodes reach each other through real `flannel.1` VXLAN
//! devices, and tearing the lab down leaves no namespace or directory.
//! Needs root and Debian's CNI plugins; prints why it skips otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rebootguard_lab::scenario::{Behaviour, Workload};
use rebootguard_lab::{Lab, Options, Scenario, api};

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

fn options(base: &Path) -> Options {
    let mut o = Options::new(PathBuf::from(EXE));
    o.base_dir = base.to_path_buf();
    o
}

fn our_namespaces(lab_names: &[String]) -> Vec<String> {
    let listed = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    listed
        .into_iter()
        .filter(|n| lab_names.contains(n))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn three_nodes_pods_ping_across_the_overlay_and_down_leaves_nothing() {
    if !ready("three_nodes_pods_ping_across_the_overlay_and_down_leaves_nothing") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let mut s = Scenario::plain(3);
    s.workloads.push(Workload {
        namespace: "default".into(),
        name: "echo".into(),
        behaviour: Behaviour::Plain,
        replicas: None,
        nodes: vec![],
        bare: false,
    });
    let lab = Lab::up(s, options(base.path())).await.expect("lab up");
    let ctx = lab.ctx.clone();

    // Nodes Ready with the incident's podCIDRs, flannel's annotations and real VTEPs.
    for (name, cidr) in [
        ("boromir", "10.42.0.0/24"),
        ("theoden", "10.42.2.0/24"),
        ("samwise", "10.42.1.0/24"),
    ] {
        let n = ctx.api.node(name).expect("node registered");
        assert_eq!(api::condition(&n, "Ready"), Some("True"), "{name}");
        assert_eq!(n["spec"]["podCIDR"], cidr);
        assert_eq!(
            n["metadata"]["annotations"]["flannel.alpha.coreos.com/kube-subnet-manager"],
            "true"
        );
        let node = lab.node(name).unwrap();
        let env = std::fs::read_to_string(node.path("run/flannel/subnet.env"))
            .expect("subnet.env written");
        assert!(
            env.contains(&format!(
                "FLANNEL_SUBNET={}",
                cidr.replace(".0/24", ".1/24")
            )),
            "{env}"
        );
        assert!(env.contains("FLANNEL_MTU=1450"), "{env}");
        let vtep = rebootguard_hostnet::link::get(node.netns().as_deref(), "flannel.1")
            .expect("flannel.1");
        assert_eq!(vtep.mtu, 1450);
        let mac = serde_json::from_str::<serde_json::Value>(
            n["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap()["VtepMAC"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(vtep.mac_string().as_deref(), Some(mac.as_str()));
    }

    // Every pod Running with an IP from its node's podCIDR.
    let t = Instant::now();
    let pods = loop {
        let pods = ctx.api.pods();
        if pods.len() == 3 && pods.iter().all(api::pod_running) {
            break pods;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "pods did not run: {pods:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ip_of = |node: &str| {
        let p = pods.iter().find(|p| p["spec"]["nodeName"] == node).unwrap();
        (
            format!("default/{}", api::name(p)),
            p["status"]["podIP"]
                .as_str()
                .unwrap()
                .parse::<std::net::Ipv4Addr>()
                .unwrap(),
        )
    };
    let (b, b_ip) = ip_of("boromir");
    let (t_pod, t_ip) = ip_of("theoden");
    let (s_pod, s_ip) = ip_of("samwise");
    assert!(b_ip.to_string().starts_with("10.42.0."), "{b_ip}");
    assert!(t_ip.to_string().starts_with("10.42.2."), "{t_ip}");
    // flannel follows its peers' annotations: allow it a moment to converge.
    for (from, to) in [(&b, t_ip), (&b, s_ip), (&t_pod, b_ip), (&s_pod, t_ip)] {
        let t = Instant::now();
        while lab.ping_from_pod(from, to) != Some(true) {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{from} cannot reach {to} through the overlay"
            );
        }
    }

    // Down: nothing left.
    let names: Vec<String> = std::iter::once(ctx.switch.name().unwrap().to_owned())
        .chain(
            ctx.nodes
                .iter()
                .filter_map(|n| n.netns().and_then(|ns| ns.name().map(str::to_owned))),
        )
        .collect();
    let dir = ctx.dir.clone();
    drop(ctx);
    drop(lab);
    assert!(
        our_namespaces(&names).is_empty(),
        "namespaces left: {:?}",
        our_namespaces(&names)
    );
    assert!(!dir.exists(), "lab dir left: {}", dir.display());
    let left: Vec<_> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| {
                    n.to_string_lossy()
                        .starts_with(&format!("rglab-{}-", std::process::id()))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "pod namespaces left: {left:?}");
}
