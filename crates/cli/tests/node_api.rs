//! `rebootguard node ...` cross-checking with a real HTTP API (kubesim).

use std::fs;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use kubesim::KubeSim;
use kubesim::faults::{Failure, Route};
use serde_json::{Value, json};

mod common;
#[path = "common/manifests.rs"]
mod manifests;

const BACKUP: &str = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

struct Node {
    _dir: tempfile::TempDir,
    root: PathBuf,
    kubeconfig: PathBuf,
}

impl Node {
    fn new(sim: &KubeSim) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = common::example_root(dir.path());
        // The example never asks an API; these tests do.
        fs::write(
            root.join("etc/rebootguard/config.toml"),
            "node-name = \"boromir\"\n",
        )
        .expect("config");
        Node {
            _dir: dir,
            root,
            kubeconfig: sim.kubeconfig_path().to_path_buf(),
        }
    }

    fn subnet_env(&self) -> PathBuf {
        self.root.join("run/flannel/subnet.env")
    }

    async fn run(&self, args: &[&str]) -> (Output, Duration) {
        let started = Instant::now();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
            .args(args)
            .arg("--root")
            .arg(&self.root)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("NO_COLOR", "1")
            .output()
            .await
            .expect("run rebootguard");
        (out, started.elapsed())
    }

    async fn json(&self, args: &[&str]) -> Value {
        let (out, _) = self.run(args).await;
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

async fn sim_with_node(name: &str, pod_cidrs: &[&str]) -> KubeSim {
    let sim = KubeSim::start().await.expect("kubesim");
    let mut spec = json!({});
    if let Some(first) = pod_cidrs.first() {
        spec = json!({"podCIDR": first, "podCIDRs": pod_cidrs});
    }
    sim.create(&json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": spec,
        "status": {"nodeInfo": {"bootID": "7c1d4a0e-2f5b-4c58-9a63-0b8d2e4f6a11"}},
    }))
    .expect("seed node");
    sim
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_matching_the_api_is_restored_verified() {
    let sim = sim_with_node("boromir", &["10.42.0.0/24"]).await;
    let node = Node::new(&sim);
    let outcome = node.json(&["node", "restore", "--json"]).await;
    assert_eq!(outcome["action"], "restore", "{outcome}");
    assert_eq!(outcome["verified"], true);
    assert_eq!(fs::read_to_string(node.subnet_env()).expect("file"), BACKUP);
    assert_eq!(sim.request_count("get", "nodes"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_live_file_costs_the_api_nothing() {
    let sim = sim_with_node("boromir", &["10.42.0.0/24"]).await;
    let node = Node::new(&sim);
    fs::create_dir_all(node.subnet_env().parent().expect("parent")).expect("mkdir");
    fs::write(node.subnet_env(), BACKUP).expect("write");
    sim.reset_requests();
    let outcome = node.json(&["node", "restore", "--json"]).await;
    assert_eq!(outcome["action"], "keep");
    assert_eq!(sim.request_count("get", "nodes"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_disagreeing_with_the_api_is_regenerated_and_stored() {
    let sim = sim_with_node("boromir", &["10.42.7.0/24"]).await;
    let node = Node::new(&sim);
    let outcome = node.json(&["node", "restore", "--json"]).await;
    assert_eq!(outcome["action"], "regenerate", "{outcome}");
    assert!(
        outcome["because"]
            .as_str()
            .expect("because")
            .contains("10.42.7.0/24")
    );
    let written = fs::read_to_string(node.subnet_env()).expect("file");
    assert_eq!(
        written,
        "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
    );
    let status = node.json(&["node", "status", "--json"]).await;
    assert_eq!(status["healthy"], true, "{status}");
    let backups = status["backups"].as_array().expect("backups");
    assert_eq!(backups[0]["source"], "regenerated");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_backup_regenerates_from_the_api() {
    let sim = sim_with_node("theoden", &["10.42.2.0/24"]).await;
    let node = Node::new(&sim);
    let outcome = node
        .json(&[
            "node",
            "--node-name",
            "theoden",
            "--mtu",
            "1450",
            "restore",
            "--json",
        ])
        .await;
    assert_eq!(outcome["action"], "regenerate", "{outcome}");
    assert!(
        fs::read_to_string(node.subnet_env())
            .expect("file")
            .contains("FLANNEL_SUBNET=10.42.2.1/24\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_slow_or_failing_api_falls_back_to_the_backup_within_the_bound() {
    let sim = sim_with_node("boromir", &["10.42.0.0/24"]).await;

    sim.add_latency(Route::new("get", "nodes"), Duration::from_secs(30));
    let node = Node::new(&sim);
    let (out, took) = node
        .run(&["node", "--api-timeout", "300ms", "restore", "--json"])
        .await;
    let outcome: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(outcome["action"], "restore");
    assert_eq!(outcome["verified"], false);
    assert!(took < Duration::from_secs(10), "bounded, took {took:?}");
    assert_eq!(fs::read_to_string(node.subnet_env()).expect("file"), BACKUP);
    sim.clear_faults();

    sim.fail_next(Route::any(), 100, Failure::Internal);
    let node = Node::new(&sim);
    let outcome = node.json(&["node", "restore", "--json"]).await;
    assert_eq!(outcome["verified"], false, "{outcome}");
    assert!(outcome["warnings"].to_string().contains("API"), "{outcome}");
    sim.clear_faults();

    sim.down().await;
    let node = Node::new(&sim);
    let (out, took) = node.run(&["node", "restore", "--json"]).await;
    let outcome: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(outcome["action"], "restore");
    assert_eq!(outcome["verified"], false);
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_node_name_or_unassigned_podcidr_writes_nothing() {
    let sim = sim_with_node("samwise", &["10.42.1.0/24"]).await;
    let node = Node::new(&sim);
    let outcome = node.json(&["node", "restore", "--json"]).await;
    assert_eq!(outcome["action"], "nothing", "{outcome}");
    assert!(
        outcome["missing"]
            .to_string()
            .contains("node name is wrong")
    );
    assert!(!node.subnet_env().exists());

    let sim = sim_with_node("boromir", &[]).await;
    let node = Node::new(&sim);
    let outcome = node.json(&["node", "restore", "--json"]).await;
    assert_eq!(outcome["action"], "nothing", "{outcome}");
    assert!(outcome["missing"].to_string().contains("CIDRNotAvailable"));
}

#[tokio::test(flavor = "multi_thread")]
async fn regenerate_shows_a_diff_and_writes_only_when_told() {
    let sim = sim_with_node("boromir", &["10.42.0.0/24"]).await;
    let node = Node::new(&sim);
    fs::create_dir_all(node.subnet_env().parent().expect("parent")).expect("mkdir");
    let stale = BACKUP.replace("1450", "1400");
    fs::write(node.subnet_env(), &stale).expect("write");

    let (out, _) = node.run(&["node", "--mtu", "1450", "regenerate"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-FLANNEL_MTU=1400\n+FLANNEL_MTU=1450"),
        "{text}"
    );
    assert!(text.contains("not written: dry run"));
    assert_eq!(fs::read_to_string(node.subnet_env()).expect("file"), stale);

    let (out, _) = node
        .run(&["node", "--mtu", "1450", "regenerate", "--write"])
        .await;
    assert_eq!(out.status.code(), Some(1), "valid file needs --force");
    assert_eq!(fs::read_to_string(node.subnet_env()).expect("file"), stale);

    let (out, _) = node
        .run(&["node", "--mtu", "1450", "regenerate", "--write", "--force"])
        .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fs::read_to_string(node.subnet_env()).expect("file"), BACKUP);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_compares_every_source() {
    let sim = sim_with_node("boromir", &["10.42.3.0/24"]).await;
    let node = Node::new(&sim);
    fs::create_dir_all(node.subnet_env().parent().expect("parent")).expect("mkdir");
    fs::write(node.subnet_env(), BACKUP).expect("write");
    let (out, _) = node.run(&["node", "status"]).await;
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("live leases 10.42.0.0/24 but the API's podCIDRs are 10.42.3.0/24"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_flannel_reads_net_conf_from_its_config_map() {
    let sim = sim_with_node("boromir", &["10.244.5.0/24"]).await;
    sim.create(&json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "kube-flannel"},
    }))
    .expect("namespace");
    sim.create(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
        "data": {"net-conf.json": "{\n  \"Network\": \"10.244.0.0/16\",\n  \"Backend\": {\n    \"Type\": \"vxlan\"\n  }\n}\n"},
    }))
    .expect("configmap");
    let node = Node::new(&sim);
    let (out, _) = node
        .run(&[
            "node",
            "--profile",
            "kube-flannel",
            "--mtu",
            "1450",
            "--node-name",
            "boromir",
            "regenerate",
            "--write",
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(node.subnet_env()).expect("file"),
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_cross_checks_with_the_node_credentials_and_names_a_missing_permission() {
    // The credentials deploy.md gives systemd-run nodes: the agent's
    // ServiceAccount, its RBAC and a token Secret, applied with kubectl and
    // the token read out as the docs say, against kubesim enforcing RBAC.
    if !manifests::have_kubectl(
        "restore_cross_checks_with_the_node_credentials_and_names_a_missing_permission",
    ) {
        return;
    }
    let sim = manifests::enforcing().await;
    let dir = tempfile::tempdir().expect("tempdir");
    manifests::apply(
        &sim,
        &dir.path().join("cache"),
        "deploy/kubernetes/node-credentials",
    )
    .await;
    sim.create(&json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "boromir"},
        "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]},
    }))
    .expect("seed node");
    let read_token = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(
            "kubectl -n rebootguard get secret rebootguard-agent-token -o jsonpath='{.data.token}' | base64 -d",
        )
        .env("KUBECONFIG", sim.kubeconfig_path())
        .env("HOME", dir.path())
        .output()
        .await
        .expect("sh");
    let token = String::from_utf8(read_token.stdout).expect("utf-8");
    assert!(
        !token.is_empty(),
        "{}",
        String::from_utf8_lossy(&read_token.stderr)
    );
    let kubeconfig = manifests::kubeconfig(&sim, dir.path(), "node", &token);

    let mut node = Node::new(&sim);
    node.kubeconfig = kubeconfig.clone();
    let outcome = node.json(&["node", "restore", "--json"]).await;
    assert_eq!(outcome["action"], "restore", "{outcome}");
    assert_eq!(
        outcome["verified"], true,
        "cross-checked with the API: {outcome}"
    );

    // Without `get` on nodes the backup is still restored (k3s must
    // start), unverified, and the warning names what is missing.
    manifests::revoke(
        &sim,
        ("ClusterRole", "", "rebootguard-agent"),
        "",
        "nodes",
        "get",
    );
    let mut node = Node::new(&sim);
    node.kubeconfig = kubeconfig;
    let (out, _) = node.run(&["node", "restore", "--json"]).await;
    let outcome: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(0), "{outcome}");
    assert_eq!(outcome["action"], "restore", "{outcome}");
    assert_eq!(outcome["verified"], false);
    let warnings = outcome["warnings"].to_string();
    assert!(
        warnings.contains(
            r#"User \"system:serviceaccount:rebootguard:rebootguard-agent\" cannot get resource \"nodes\""#
        ),
        "{warnings}"
    );
    assert_eq!(fs::read_to_string(node.subnet_env()).expect("file"), BACKUP);
}
