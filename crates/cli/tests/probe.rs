//! `rebootguard node probe` end to end: the real binary, started inside a
//! network namespace that stands in for the node, probing a fake node root
//! (k3s's conflist flannel → portmap → bandwidth, a CNI bin dir with the
//! test flannel plugin and Debian's delegates, subnet.env under the root's
//! run/). The plugins see the root's run/ and var/ at /run and /var, so the
//! errors are the node's exact texts, and every file they touch is the fake
//! root's.
//!
//! Needs root and Debian's CNI plugins (containernetworking-plugins); each
//! test prints why it skips otherwise.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rebootguard_hostnet::cni::{self, DEBIAN_PLUGIN_DIR};
use rebootguard_hostnet::configure::{RouteSpec, VxlanSpec};
use rebootguard_hostnet::link::{self, Netlink};
use rebootguard_hostnet::netns::{self, Netns};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rebootguard");
const DELEGATES: [&str; 4] = ["bridge", "host-local", "portmap", "bandwidth"];
const CONFLIST: &str = "var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist";
const BIN_DIR: &str = "var/lib/rancher/k3s/data/cni";
/// k3s's 10-flannel.conflist, as k3s writes it.
const K3S_CONFLIST: &str = r#"{
  "name":"cbr0",
  "cniVersion":"1.0.0",
  "plugins":[
    {"type":"flannel","delegate":{"hairpinMode":true,"forceAddress":true,"isDefaultGateway":true}},
    {"type":"portmap","capabilities":{"portMappings":true}},
    {"type":"bandwidth","capabilities":{"bandwidth":true}}
  ]
}
"#;
const SUBNET_ENV: &str = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
const MISSING: &str = "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory";

fn ready(test: &str) -> bool {
    cni::test_ready(test, &DELEGATES)
}

/// The test flannel plugin, next to the rebootguard binary; built on demand.
fn flannel_plugin() -> PathBuf {
    let path = Path::new(BIN).with_file_name("rebootguard-cni-flannel");
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "rebootguard-cni-flannel"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo runs").success(),
            "building rebootguard-cni-flannel failed"
        );
    }
    path
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IP")
}

fn cidr(text: &str) -> IpNet {
    text.parse().expect("test CIDR")
}

/// A node: its network namespace (with `lo` up) and its root directory.
struct Node {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ns: Netns,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        // Traversable by others, for the unprivileged run.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = dir.path().join("root");
        for sub in ["run/flannel", "var/lib/cni", "etc", BIN_DIR] {
            fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let conflist = root.join(CONFLIST);
        fs::create_dir_all(conflist.parent().expect("parent")).expect("mkdir");
        fs::write(&conflist, K3S_CONFLIST).expect("conflist");
        let bin = root.join(BIN_DIR);
        symlink(flannel_plugin(), bin.join("flannel")).expect("install flannel");
        for plugin in DELEGATES {
            symlink(Path::new(DEBIAN_PLUGIN_DIR).join(plugin), bin.join(plugin)).expect("link");
        }
        let ns = Netns::create_named(&netns::unique_name("rgt-probe")).expect("node namespace");
        link::blocking(Some(&ns), |netlink: Netlink| async move {
            netlink.set_up("lo").await
        })
        .expect("lo up");
        Node {
            _dir: dir,
            root,
            ns,
        }
    }

    fn write_subnet_env(&self, text: &str) {
        fs::write(self.root.join("run/flannel/subnet.env"), text).expect("subnet.env");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.ns.command(BIN).expect("command");
        command
            .args(["node", "probe", "--node-name", "probe-node", "--root"])
            .arg(&self.root)
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("REBOOTGUARD_CONFLIST")
            .env_remove("REBOOTGUARD_CNI_BIN_DIRS")
            .env("NO_COLOR", "1");
        command
    }

    fn probe(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run rebootguard")
    }

    /// What a probe may not leave: flannel's saved configs, host-local
    /// leases, veths on the node.
    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let files = |dir: PathBuf| -> Vec<PathBuf> {
            fs::read_dir(dir)
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        for file in files(self.root.join("var/lib/cni/flannel")) {
            found.push(format!("flannel state {}", file.display()));
        }
        for network in files(self.root.join("var/lib/cni/networks")) {
            for lease in files(network) {
                let name = lease
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if name.parse::<IpAddr>().is_ok() {
                    found.push(format!("lease {}", lease.display()));
                }
            }
        }
        let links = link::blocking(Some(&self.ns), |netlink: Netlink| async move {
            netlink.links().await
        })
        .expect("links");
        // eth0 is the node's own uplink in the two-node test.
        for veth in links
            .iter()
            .filter(|l| l.kind.as_deref() == Some("veth") && l.name != "eth0")
        {
            found.push(format!("veth {}", veth.name));
        }
        found
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["step"] == name))
        .unwrap_or_else(|| panic!("no step {name:?} in {report:#}"))
}

/// The machine's own flannel state must never get the probe's sandbox.
fn untouched_machine(report: &Value) {
    let id = report["container_id"].as_str().expect("container id");
    assert!(!id.is_empty());
    assert!(!Path::new("/var/lib/cni/flannel").join(id).exists());
}

#[test]
fn a_healthy_node_passes_and_nothing_is_left() {
    if !ready("a_healthy_node_passes_and_nothing_is_left") {
        return;
    }
    let node = Node::new();
    node.write_subnet_env(SUBNET_ENV);
    let out = node.probe(&["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json(&out);
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["version"], 1);
    assert_eq!(report["network"], "cbr0");
    assert_eq!(report["flannel"], true);
    let address: IpNet = report["pod_addresses"][0]
        .as_str()
        .expect("address")
        .parse()
        .expect("cidr");
    assert!(cidr("10.42.0.0/24").contains(&address.addr()), "{address}");
    assert_eq!(step(&report, "subnet")["result"], "ok");
    assert!(
        report["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("pod got 10.42.0.")
                && s.contains("; gateway 10.42.0.1 reached in ")),
        "{report:#}"
    );
    let gateway = step(&report, "ping gateway");
    assert_eq!(gateway["result"], "ok", "{report:#}");
    assert!(
        gateway["evidence"]
            .as_str()
            .is_some_and(|e| e.starts_with("10.42.0.1 reached in ")),
        "{gateway}"
    );
    assert_eq!(
        step(&report, "interface")["evidence"]
            .as_str()
            .map(|e| e.contains("mtu 1450")),
        Some(true)
    );
    // Single node: no peer, which is a note, not a failure.
    let peer = step(&report, "peer");
    assert_eq!(peer["result"], "note");
    assert!(
        peer["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("flannel.1")),
        "{peer}"
    );
    assert_eq!(step(&report, "del")["result"], "ok");
    assert_eq!(step(&report, "cleanup")["result"], "ok");
    assert_eq!(node.leftovers(), Vec::<String>::new());
    untouched_machine(&report);

    // The human table says the same.
    let out = node.probe(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("STEP"), "{text}");
    assert!(text.contains("ping gateway"), "{text}");
    assert!(
        text.ends_with("PASSED: a pod on this node gets networking\n"),
        "{text}"
    );
    assert_eq!(node.leftovers(), Vec::<String>::new());
}

/// Regression for the 2026-01-31 incident: subnet.env gone after a reboot.
#[test]
fn incident_2026_01_31_missing_subnet_env_fails_with_the_kubelet_text() {
    if !ready("incident_2026_01_31_missing_subnet_env_fails_with_the_kubelet_text") {
        return;
    }
    let node = Node::new();
    let out = node.probe(&["--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json(&out);
    assert_eq!(report["passed"], false);
    assert_eq!(report["cni_error"], MISSING);
    assert_eq!(report["summary"], MISSING);
    assert_eq!(step(&report, "add")["result"], "failed");
    assert_eq!(step(&report, "add")["evidence"], MISSING);
    assert_eq!(step(&report, "subnet.env")["result"], "note");
    assert_eq!(step(&report, "del")["result"], "ok", "DEL still ran");
    assert_eq!(node.leftovers(), Vec::<String>::new());
    untouched_machine(&report);

    let out = node.probe(&[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains(&format!("FAILED   {MISSING}\n")), "{text}");
    assert!(text.ends_with(&format!("{MISSING}\n")), "{text}");

    // Restored, the same node passes.
    node.write_subnet_env(SUBNET_ENV);
    assert_eq!(node.probe(&[]).status.code(), Some(0));
}

#[test]
fn a_missing_plugin_binary_is_named() {
    if !ready("a_missing_plugin_binary_is_named") {
        return;
    }
    let node = Node::new();
    node.write_subnet_env(SUBNET_ENV);
    fs::remove_file(node.root.join(BIN_DIR).join("flannel")).expect("remove flannel");
    let out = node.probe(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let expected = format!(
        "failed to find plugin \"flannel\" in path [{} {}]",
        node.root.join(BIN_DIR).display(),
        node.root
            .join("var/lib/rancher/k3s/data/current/bin")
            .display()
    );
    assert_eq!(report["cni_error"], expected.as_str());
    assert_eq!(node.leftovers(), Vec::<String>::new());

    // A delegate missing is named by flannel, in its words. DEL cannot
    // finish either (flannel keeps its saved config for a retry), and the
    // report says so.
    node.write_subnet_env(SUBNET_ENV);
    symlink(flannel_plugin(), node.root.join(BIN_DIR).join("flannel")).expect("flannel back");
    fs::remove_file(node.root.join(BIN_DIR).join("bridge")).expect("remove bridge");
    let report = json(&node.probe(&["--json"]));
    let error = report["cni_error"].as_str().expect("error");
    assert!(
        error.starts_with("plugin type=\"flannel\" failed (add): failed to delegate add: ")
            && error.contains("failed to find plugin \"bridge\""),
        "{error}"
    );
    let del = step(&report, "del");
    assert_eq!(del["result"], "failed");
    assert!(
        del["evidence"]
            .as_str()
            .is_some_and(|e| e.starts_with("plugin type=\"flannel\" failed (del): ")),
        "{del}"
    );
    let id = report["container_id"].as_str().expect("id");
    assert_eq!(
        node.leftovers(),
        [format!(
            "flannel state {}",
            node.root.join("var/lib/cni/flannel").join(id).display()
        )]
    );
}

#[test]
fn a_plain_bridge_network_passes_without_flannel_checks() {
    if !ready("a_plain_bridge_network_passes_without_flannel_checks") {
        return;
    }
    let node = Node::new();
    let conf = node.root.join("etc/cni/net.d/10-bridge.conflist");
    fs::create_dir_all(conf.parent().expect("parent")).expect("mkdir");
    fs::write(
        &conf,
        r#"{"name":"podnet","cniVersion":"1.0.0","plugins":[{"type":"bridge","bridge":"cni0",
            "isGateway":true,"ipMasq":false,"ipam":{"type":"host-local",
            "ranges":[[{"subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}"#,
    )
    .expect("conflist");
    let bin = node.root.join("opt/cni/bin");
    fs::create_dir_all(&bin).expect("bin");
    for plugin in ["bridge", "host-local"] {
        symlink(Path::new(DEBIAN_PLUGIN_DIR).join(plugin), bin.join(plugin)).expect("link");
    }
    let out = node.probe(&[
        "--json",
        "--conflist",
        "/etc/cni/net.d/10-bridge.conflist",
        "--cni-bin-dir",
        "/opt/cni/bin",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json(&out);
    assert_eq!(report["flannel"], false);
    assert_eq!(report["plugins"], serde_json::json!(["bridge"]));
    assert_eq!(step(&report, "flannel")["result"], "skipped");
    let gateway = step(&report, "ping gateway");
    assert_eq!(gateway["result"], "ok", "{report:#}");
    assert!(
        gateway["evidence"]
            .as_str()
            .is_some_and(|e| e.starts_with("10.88.0.1 reached"))
    );
    assert!(
        report["steps"]
            .as_array()
            .is_some_and(|s| !s.iter().any(|s| s["step"] == "subnet"))
    );
    assert_eq!(node.leftovers(), Vec::<String>::new());
}

/// Two nodes joined by flannel's vxlan overlay (as crates/hostnet/tests/overlay.rs
/// builds it): node A's probe reaches node B's flannel.1 from its pod, and
/// fails, naming the peer, once A has lost B's FDB entry.
#[test]
fn a_peer_flannel_1_answers_across_the_overlay() {
    if !ready("a_peer_flannel_1_answers_across_the_overlay") {
        return;
    }
    let a = Node::new();
    a.write_subnet_env(SUBNET_ENV);
    let b = Netns::create_named(&netns::unique_name("rgt-probe-b")).expect("node b");
    let switch = Netns::create_named(&netns::unique_name("rgt-probe-sw")).expect("switch");
    let nodes = [
        (
            &a.ns,
            ip("192.0.2.1"),
            cidr("10.42.0.0/24"),
            [0x0a, 0x58, 0, 0, 0, 1],
        ),
        (
            &b,
            ip("192.0.2.2"),
            cidr("10.42.1.0/24"),
            [0x0a, 0x58, 0, 0, 0, 2],
        ),
    ];
    link::blocking(Some(&switch), |netlink: Netlink| async move {
        netlink.add_bridge("br0").await?;
        netlink.set_up("br0").await
    })
    .expect("switch");
    for (i, (ns, public, lease, mac)) in nodes.iter().enumerate() {
        let (public, lease, mac, switch) = (*public, *lease, *mac, &switch);
        let port = format!("port{i}");
        let port_name = port.clone();
        link::blocking(Some(ns), |netlink: Netlink| async move {
            netlink.add_veth("eth0", &port_name, Some(switch)).await?;
            netlink
                .add_address("eth0", IpNet::new(public, 24).expect("cidr"))
                .await?;
            netlink.set_up("eth0").await?;
            netlink.set_up("lo").await?;
            netlink
                .add_vxlan(&VxlanSpec {
                    name: "flannel.1".into(),
                    vni: 1,
                    port: 8472,
                    local: Some(public),
                    underlay: Some("eth0".into()),
                    learning: false,
                })
                .await?;
            netlink.set_mtu("flannel.1", 1450).await?;
            netlink.set_mac("flannel.1", &mac).await?;
            netlink
                .add_address("flannel.1", IpNet::new(lease.network(), 32).expect("vtep"))
                .await?;
            netlink.set_up("flannel.1").await
        })
        .expect("node");
        link::blocking(Some(switch), |netlink: Netlink| async move {
            netlink.set_master(&port, "br0").await?;
            netlink.set_up(&port).await
        })
        .expect("port");
    }
    for (me, other) in [(&nodes[0], &nodes[1]), (&nodes[1], &nodes[0])] {
        let (_, public, lease, mac) = *other;
        link::blocking(Some(me.0), |netlink: Netlink| async move {
            netlink
                .add_neighbour("flannel.1", lease.network(), &mac)
                .await?;
            netlink.add_fdb("flannel.1", &mac, public).await?;
            netlink
                .add_route(&RouteSpec {
                    destination: lease,
                    gateway: Some(lease.network()),
                    device: Some("flannel.1".into()),
                    onlink: true,
                })
                .await
        })
        .expect("peer entries");
    }
    // A peer that answers nothing, tried first (lowest destination): a
    // broken neighbour must not fail this node's probe.
    link::blocking(Some(&a.ns), |netlink: Netlink| async move {
        netlink
            .add_route(&RouteSpec {
                destination: cidr("10.41.9.0/24"),
                gateway: Some(ip("10.41.9.0")),
                device: Some("flannel.1".into()),
                onlink: true,
            })
            .await
    })
    .expect("dead peer route");

    let out = a.probe(&["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json(&out);
    assert!(
        step(&report, "peer")["evidence"]
            .as_str()
            .is_some_and(|e| e
                .starts_with("any one of 10.41.9.0 (route 10.41.9.0/24 dev flannel.1 onlink), 10.42.1.0 (route 10.42.1.0/24 dev flannel.1 onlink)")),
        "{report:#}"
    );
    let peer = step(&report, "ping peer flannel.1");
    assert_eq!(peer["result"], "ok", "{report:#}");
    assert!(
        peer["evidence"]
            .as_str()
            .is_some_and(|e| e.starts_with("10.42.1.0 reached in ")
                && e.contains("no answer first from 10.41.9.0")),
        "{report:#}"
    );
    assert_eq!(a.leftovers(), Vec::<String>::new());

    // A loses B's FDB entry (as when flannel's runtime updates fail).
    link::blocking(Some(&a.ns), |netlink: Netlink| async move {
        netlink
            .delete_fdb(
                "flannel.1",
                &[0x0a, 0x58, 0, 0, 0, 2],
                Some(ip("192.0.2.2")),
            )
            .await
    })
    .expect("delete fdb");
    let out = a.probe(&["--json", "--ping-timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = json(&out);
    assert_eq!(
        report["summary"],
        "ping peer flannel.1 failed: 10.41.9.0: no reply from 10.41.9.0 within 500 ms; 10.42.1.0: no reply from 10.42.1.0 within 500 ms"
    );
    let peer = step(&report, "ping peer flannel.1");
    assert_eq!(peer["result"], "failed");
    assert_eq!(
        peer["evidence"],
        "10.41.9.0: no reply from 10.41.9.0 within 500 ms; 10.42.1.0: no reply from 10.42.1.0 within 500 ms"
    );
    assert_eq!(step(&report, "ping gateway")["result"], "ok");
    assert_eq!(step(&report, "del")["result"], "ok");
    assert_eq!(a.leftovers(), Vec::<String>::new());
}

/// SIGINT and SIGTERM during ADD: the running plugin call finishes, the
/// checks are skipped, DEL runs, and the exit code says which signal.
#[test]
fn a_signal_during_the_probe_still_cleans_up() {
    if !ready("a_signal_during_the_probe_still_cleans_up") {
        return;
    }
    let node = Node::new();
    node.write_subnet_env(SUBNET_ENV);
    let marker = node.root.join("portmap-add-started");
    // portmap runs after flannel has set the pod up: hold ADD there a while.
    let portmap = node.root.join(BIN_DIR).join("portmap");
    fs::remove_file(&portmap).expect("unlink portmap");
    fs::write(
        &portmap,
        format!(
            "#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then : > {}; sleep 1; fi\nexec {DEBIAN_PLUGIN_DIR}/portmap\n",
            marker.display()
        ),
    )
    .expect("wrapper");
    fs::set_permissions(&portmap, fs::Permissions::from_mode(0o755)).expect("chmod");

    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let _ = fs::remove_file(&marker);
        let child = node
            .command(&["--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let start = Instant::now();
        while !marker.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "ADD never reached portmap"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
        let report = json(&out);
        assert_eq!(report["interrupted"], true);
        assert_eq!(report["passed"], false);
        assert_eq!(step(&report, "del")["result"], "ok", "{report:#}");
        assert_eq!(step(&report, "interrupted")["result"], "failed");
        assert_eq!(node.leftovers(), Vec::<String>::new());
    }
}

#[test]
fn no_conflist_is_a_usage_error_naming_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["node", "probe", "--node-name", "n", "--root"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("no CNI network config at ")
            && text.contains(CONFLIST)
            && text.contains("--conflist"),
        "{text}"
    );
    let out = Command::new(BIN)
        .args([
            "node",
            "probe",
            "--node-name",
            "n",
            "--timeout",
            "soon",
            "--root",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--timeout \"soon\" is not a duration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_root_it_says_so() {
    if !ready("without_root_it_says_so") {
        return;
    }
    let node = Node::new();
    node.write_subnet_env(SUBNET_ENV);
    let out = Command::new(BIN)
        .args(["node", "probe", "--node-name", "n", "--root"])
        .arg(&node.root)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("node probe needs root"),
        "{}",
        stderr(&out)
    );
}
