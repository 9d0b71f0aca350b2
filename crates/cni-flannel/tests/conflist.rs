//! rebootguard-cni-flannel installed as `flannel` and run through a
//! k3s-shaped conflist (cbr0: flannel → portmap → bandwidth) with Debian's
//! real delegates, in a fake node namespace and a pod namespace the test
//! made. Proves the pod gets networking from a good subnet.env, and that a
//! missing file or key fails with upstream's exact words.
//!
//! Needs root and the reference plugins (Debian: containernetworking-plugins);
//! each test prints why it skips otherwise.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use rebootguard_flannel::{Mtu, NetConf, derive};
use rebootguard_hostnet::cni::{self, Args, Conflist, DEBIAN_PLUGIN_DIR, Runtime};
use rebootguard_hostnet::link;
use rebootguard_hostnet::netns::{self, Netns};
use rebootguard_hostnet::probe;
use serde_json::{Value, json};

const PLUGIN: &str = env!("CARGO_BIN_EXE_rebootguard-cni-flannel");
const DELEGATES: [&str; 4] = ["bridge", "host-local", "portmap", "bandwidth"];

fn unique(tag: &str) -> String {
    netns::unique_name(&format!("rgt-{tag}"))
}

fn ready(test: &str) -> bool {
    cni::test_ready(test, &DELEGATES)
}

fn cidr(text: &str) -> IpNet {
    text.parse().expect("test CIDR")
}

/// A fake node: its namespace, a pod namespace, a CNI bin dir with our
/// plugin as `flannel` beside Debian's, and every state directory in a
/// temp dir (never the machine's /run/flannel or /var/lib/cni).
struct Node {
    ns: Netns,
    pod: Netns,
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("bin dir");
        symlink(PLUGIN, bin.join("flannel")).expect("install flannel");
        for plugin in DELEGATES {
            symlink(Path::new(DEBIAN_PLUGIN_DIR).join(plugin), bin.join(plugin)).expect("link");
        }
        Node {
            ns: Netns::create_named(&unique("node")).expect("node namespace"),
            pod: Netns::create_named(&unique("pod")).expect("pod namespace"),
            dir,
        }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn subnet_env(&self) -> PathBuf {
        self.dir.path().join("subnet.env")
    }

    fn flannel_data(&self) -> PathBuf {
        self.dir.path().join("flannel")
    }

    fn write_subnet_env(&self, content: &str) {
        fs::write(self.subnet_env(), content).expect("write subnet.env");
    }

    /// subnet.env as k3s writes it for podCIDR 10.42.0.0/24.
    fn write_derived_subnet_env(&self) {
        let conf = NetConf::parse(br#"{"Network":"10.42.0.0/16","Backend":{"Type":"vxlan"}}"#)
            .expect("net-conf");
        let env =
            derive(&[cidr("10.42.0.0/24")], &conf, Mtu::Underlay(1500), true).expect("derive");
        self.write_subnet_env(&env.render());
    }

    /// k3s's 10-flannel.conflist, with the state paths moved into the temp
    /// dir (`subnetFile`, `dataDir`, and host-local's `ipam.dataDir`, which
    /// flannel passes on to its delegate).
    fn conflist(&self, extra: Value) -> Conflist {
        let mut flannel = json!({
            "type": "flannel",
            "subnetFile": self.subnet_env(),
            "dataDir": self.flannel_data(),
            "ipam": {"dataDir": self.dir.path().join("networks")},
            "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}
        });
        if let (Some(object), Value::Object(extra)) = (flannel.as_object_mut(), extra) {
            object.extend(extra);
        }
        Conflist::from_value(&json!({
            "name": "cbr0",
            "cniVersion": "1.0.0",
            "plugins": [
                flannel,
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "bandwidth", "capabilities": {"bandwidth": true}}
            ]
        }))
        .expect("conflist")
    }

    fn runtime(&self) -> Runtime<'_> {
        Runtime::new(vec![self.bin()])
            .in_host(&self.ns)
            .with_timeout(Some(Duration::from_secs(8)))
    }

    fn args(&self, id: &str) -> Args {
        Args::pod(id, &self.pod.path(), "kube-system", "coredns-0")
    }

    fn in_node(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .ns
            .command(program)
            .expect("command")
            .args(args)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn has_program(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

fn ping(pod: &Netns, target: &str) -> bool {
    pod.command("ping")
        .expect("command")
        .args(["-c", "1", "-W", "2", target])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn flannel_error(err: &cni::Error) -> &cni::PluginError {
    match err {
        cni::Error::Plugin { plugin, error, .. } if plugin == "flannel" => error,
        other => panic!("expected flannel's error object, got {other:?}"),
    }
}

#[test]
fn k3s_conflist_networks_a_pod_and_tears_it_down() {
    if !ready("k3s_conflist_networks_a_pod_and_tears_it_down") {
        return;
    }
    let node = Node::new();
    node.write_derived_subnet_env();
    let list = node.conflist(json!({}));
    let runtime = node.runtime();
    let mut args = node.args("sandbox-ok");
    // portmap needs iptables; without it, it is still run, with nothing to map.
    let iptables = has_program("iptables");
    if iptables {
        args.capabilities.insert(
            "portMappings".into(),
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
    } else {
        eprintln!("note: no iptables here; portmap runs without port mappings");
    }
    args.capabilities.insert(
        "bandwidth".into(),
        json!({"ingressRate": 1_000_000, "ingressBurst": 100_000}),
    );

    let added = list.add(&runtime, &args).expect("conflist ADD");
    let pod_ip = added.success.addresses_of("eth0");
    assert_eq!(pod_ip.len(), 1, "{:?}", added.success);
    assert!(cidr("10.42.0.0/24").contains(&pod_ip[0].addr()));

    let eth0 = link::get(Some(&node.pod), "eth0").expect("pod eth0");
    assert_eq!(eth0.mtu, 1450);
    assert!(eth0.addresses.contains(&pod_ip[0]));
    assert!(ping(&node.pod, "10.42.0.1"), "the pod reaches cni0");

    // flannel saved the delegate config for DEL, private to root.
    let saved = node.flannel_data().join("sandbox-ok");
    let mode = fs::metadata(&saved).expect("saved").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let delegate: Value = serde_json::from_slice(&fs::read(&saved).expect("read")).expect("json");
    assert_eq!(delegate["type"], "bridge");
    assert_eq!(delegate["name"], "cbr0");
    assert_eq!(delegate["mtu"], 1450);
    assert_eq!(delegate["ipMasq"], false);
    assert_eq!(
        delegate["ipam"]["ranges"],
        json!([[{"subnet": "10.42.0.0/24"}]])
    );

    // portmap and bandwidth really acted, in the node namespace only.
    let nat = node.in_node("iptables", &["-t", "nat", "-S"]);
    assert!(
        nat.contains("CNI-HOSTPORT-DNAT") && nat.contains("8080"),
        "{nat}"
    );
    let host_veth = added
        .success
        .interfaces
        .iter()
        .find(|i| i.sandbox.is_none() && i.name != "cni0")
        .expect("host veth in the result")
        .name
        .clone();
    // bandwidth shapes over netlink; `tc` only reads its work back.
    if has_program("tc") {
        let qdisc = node.in_node("tc", &["qdisc", "show", "dev", &host_veth]);
        assert!(qdisc.contains("tbf"), "{qdisc}");
    } else {
        eprintln!("note: no tc here; the bandwidth qdisc is not read back");
    }

    list.del(&runtime, &args, Some(&added.json))
        .expect("conflist DEL");
    assert!(link::get(Some(&node.pod), "eth0").is_err());
    assert!(!saved.exists(), "DEL removed the saved config");
    if iptables {
        let nat = node.in_node("iptables", &["-t", "nat", "-S"]);
        assert!(!nat.contains("8080"), "{nat}");
    }
    // A second DEL finds nothing to do and succeeds.
    list.del(&runtime, &args, None).expect("second DEL");
}

#[test]
fn missing_subnet_env_fails_with_upstream_text() {
    if !ready("missing_subnet_env_fails_with_upstream_text") {
        return;
    }
    let node = Node::new();
    let path = node.subnet_env();
    let err = node
        .conflist(json!({}))
        .add(&node.runtime(), &node.args("sandbox-missing"))
        .expect_err("no subnet.env");
    let error = flannel_error(&err);
    assert_eq!(error.code, 999);
    assert_eq!(
        error.msg,
        format!(
            "loadFlannelSubnetEnv failed: open {}: no such file or directory",
            path.display()
        )
    );
    assert!(
        err.to_string().starts_with(
            "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open "
        )
    );
    assert!(link::get(Some(&node.pod), "eth0").is_err(), "no interface");
    assert!(!node.flannel_data().join("sandbox-missing").exists());

    let err = node
        .conflist(json!({"errorWording": "current"}))
        .add(&node.runtime(), &node.args("sandbox-missing"))
        .expect_err("no subnet.env");
    assert_eq!(
        flannel_error(&err).msg,
        format!(
            "failed to load flannel 'subnet.env' file: open {}: no such file or directory. Check the flannel pod log for this node.",
            path.display()
        )
    );
}

/// The incident's exact kubelet text needs the default path. The plugin runs
/// in a private mount namespace with an empty tmpfs over /run, as on a node
/// whose tmpfs was wiped by the reboot; the machine's /run is not touched.
#[test]
fn wiped_run_gives_the_incident_error_verbatim() {
    if !ready("wiped_run_gives_the_incident_error_verbatim") {
        return;
    }
    if !Path::new("/usr/bin/unshare").is_file() {
        netns::test_skip(
            "wiped_run_gives_the_incident_error_verbatim",
            "no unshare(1) (util-linux)",
        );
        return;
    }
    let node = Node::new();
    let wrapper = node.bin().join("flannel");
    fs::remove_file(&wrapper).expect("unlink");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec /usr/bin/unshare --mount --propagation private \
             /bin/sh -c 'mount -t tmpfs tmpfs /run && exec {PLUGIN}'\n"
        ),
    )
    .expect("write wrapper");
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod");
    // Defaults everywhere, as in k3s's conflist (only host-local is moved).
    let list = Conflist::from_value(&json!({
        "name": "cbr0", "cniVersion": "1.0.0",
        "plugins": [{"type": "flannel", "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}},
                    {"type": "portmap", "capabilities": {"portMappings": true}},
                    {"type": "bandwidth", "capabilities": {"bandwidth": true}}]
    }))
    .expect("conflist");
    // Anonymous pod namespace: its /proc path survives the /run tmpfs.
    let pod = Netns::new().expect("pod namespace");
    let args = Args::pod("sandbox-reboot", &pod.path(), "kube-system", "coredns-0");
    let err = list.add(&node.runtime(), &args).expect_err("wiped /run");
    assert_eq!(
        err.to_string(),
        "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
    );
}

#[test]
fn missing_mtu_is_named() {
    if !ready("missing_mtu_is_named") {
        return;
    }
    let node = Node::new();
    node.write_subnet_env(
        "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPMASQ=true\n",
    );
    let err = node
        .conflist(json!({}))
        .add(&node.runtime(), &node.args("sandbox-nomtu"))
        .expect_err("no MTU");
    assert_eq!(
        flannel_error(&err).msg,
        format!(
            "loadFlannelSubnetEnv failed: {} is missing FLANNEL_MTU",
            node.subnet_env().display()
        )
    );
    assert!(link::get(Some(&node.pod), "eth0").is_err());
}

#[test]
fn flannel_missing_from_cni_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = Conflist::from_value(&json!({
        "name": "cbr0", "cniVersion": "1.0.0", "plugins": [{"type": "flannel"}]
    }))
    .expect("conflist");
    let runtime = Runtime::new(vec![dir.path().to_owned()]);
    let err = list
        .add(
            &runtime,
            &Args::pod(
                "sandbox-1",
                Path::new("/proc/self/ns/net"),
                "default",
                "web",
            ),
        )
        .expect_err("no binary");
    assert_eq!(
        err.to_string(),
        format!(
            "failed to find plugin \"flannel\" in path [{}]",
            dir.path().display()
        )
    );
}

/// A hung delegate is killed with flannel when the runtime's deadline
/// passes: flannel keeps its delegates in its own process group.
#[test]
fn a_hung_delegate_dies_with_flannel_at_the_deadline() {
    if !ready("a_hung_delegate_dies_with_flannel_at_the_deadline") {
        return;
    }
    let node = Node::new();
    node.write_derived_subnet_env();
    let pidfile = node.dir.path().join("hang.pid");
    let hang = node.bin().join("hang");
    fs::write(
        &hang,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 30\n",
            pidfile.display()
        ),
    )
    .expect("write");
    fs::set_permissions(&hang, fs::Permissions::from_mode(0o755)).expect("chmod");
    let list = node.conflist(json!({"delegate": {"type": "hang"}}));
    let runtime = node
        .runtime()
        .with_timeout(Some(Duration::from_millis(1000)));
    let err = list
        .add(&runtime, &node.args("sandbox-hang"))
        .expect_err("times out");
    assert!(
        matches!(err, cni::Error::Timeout { ref plugin, .. } if plugin == "flannel"),
        "{err:?}"
    );
    let pid = fs::read_to_string(&pidfile).expect("delegate started");
    // SIGKILL is delivered asynchronously: give the kernel a moment to act on it.
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = |s: &str| s.is_empty() || s.contains(") Z ");
    let started = std::time::Instant::now();
    let mut state = fs::read_to_string(&stat).unwrap_or_default();
    while !gone(&state) && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        state = fs::read_to_string(&stat).unwrap_or_default();
    }
    assert!(gone(&state), "delegate still running: {state}");
}

#[test]
fn version_is_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    symlink(PLUGIN, dir.path().join("flannel")).expect("install");
    let info = Runtime::new(vec![dir.path().to_owned()])
        .version("flannel")
        .expect("VERSION");
    assert_eq!(info.cni_version, "1.0.0");
    assert!(info.supported_versions.iter().any(|v| v == "0.4.0"));
    // And the binary stands alone, as a runtime would call it.
    let out = Command::new(PLUGIN)
        .env("CNI_COMMAND", "VERSION")
        .output()
        .expect("runs");
    assert!(out.status.success());
}

/// Regression for the 2026-01-31 incident: subnet.env gone after a reboot.
/// The node probe catches it before any pod does, and recovers once the
/// file is back.
#[test]
fn incident_2026_01_31_probe_sees_the_missing_subnet_env() {
    if !ready("incident_2026_01_31_probe_sees_the_missing_subnet_env") {
        return;
    }
    let node = Node::new();
    let list = node.conflist(json!({}));
    let report = probe::run(&list, &node.runtime());
    assert!(!report.is_ok());
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0]
            .to_string()
            .contains("loadFlannelSubnetEnv failed: open "),
        "{}",
        report.failures[0]
    );

    node.write_derived_subnet_env();
    let report = probe::run(&list, &node.runtime());
    assert!(report.is_ok(), "{:?}", report.failures);
    assert!(
        report
            .addresses()
            .iter()
            .any(|a| cidr("10.42.0.0/24").contains(a))
    );
    assert_eq!(
        fs::read_dir(node.flannel_data()).expect("data dir").count(),
        0,
        "DEL removed the saved delegate config"
    );
}

/// The binary as a runtime sees it: exit status 1 and an error object on
/// stdout; the wording can also come from the environment.
#[test]
fn binary_reports_failure_by_exit_status_and_error_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("subnet.env");
    let config = json!({"name": "cbr0", "cniVersion": "1.0.0", "type": "flannel",
        "subnetFile": missing, "dataDir": dir.path().join("flannel")});
    let run = |wording: Option<&str>| {
        let mut command = Command::new(PLUGIN);
        command
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", "sandbox-1")
            .env("CNI_NETNS", "/proc/self/ns/net")
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", dir.path())
            .env_remove("REBOOTGUARD_CNI_FLANNEL_WORDING")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        if let Some(wording) = wording {
            command.env("REBOOTGUARD_CNI_FLANNEL_WORDING", wording);
        }
        let mut child = command.spawn().expect("spawn");
        std::io::Write::write_all(
            &mut child.stdin.take().expect("stdin"),
            config.to_string().as_bytes(),
        )
        .expect("write config");
        let out = child.wait_with_output().expect("runs");
        let object: Value = serde_json::from_slice(&out.stdout).expect("error object");
        (out.status.code(), object)
    };

    let (code, object) = run(None);
    assert_eq!(code, Some(1));
    assert_eq!(object["cniVersion"], "1.0.0");
    assert_eq!(object["code"], 999);
    assert_eq!(
        object["msg"],
        format!(
            "loadFlannelSubnetEnv failed: open {}: no such file or directory",
            missing.display()
        )
    );
    let (code, object) = run(Some("current"));
    assert_eq!(code, Some(1));
    assert!(
        object["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("failed to load flannel 'subnet.env' file: open ")),
        "{object}"
    );
    assert!(
        !dir.path().join("flannel").exists(),
        "nothing saved on failure"
    );
}

#[test]
fn dual_stack_through_the_k3s_conflist() {
    if !ready("dual_stack_through_the_k3s_conflist") {
        return;
    }
    if !Path::new("/proc/sys/net/ipv6").exists() {
        eprintln!("skipping dual_stack_through_the_k3s_conflist: this kernel has no IPv6");
        return;
    }
    let node = Node::new();
    let conf = NetConf::parse(
        br#"{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"vxlan"}}"#,
    )
    .expect("net-conf");
    let env = derive(
        &[cidr("10.42.0.0/24"), cidr("2001:cafe:42::/64")],
        &conf,
        Mtu::Underlay(1500),
        true,
    )
    .expect("derive");
    node.write_subnet_env(&env.render());
    let list = node.conflist(json!({}));
    let runtime = node.runtime();
    let args = node.args("sandbox-dual");

    let added = list.add(&runtime, &args).expect("conflist ADD");
    let addresses = added.success.addresses_of("eth0");
    assert_eq!(addresses.len(), 2, "{:?}", added.success);
    assert!(cidr("10.42.0.0/24").contains(&addresses[0].addr()));
    assert!(cidr("2001:cafe:42::/64").contains(&addresses[1].addr()));
    let reached = (0..5).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        ping(&node.pod, "2001:cafe:42::1")
    });
    assert!(reached, "the pod reaches its IPv6 gateway");

    list.del(&runtime, &args, Some(&added.json))
        .expect("conflist DEL");
    assert!(link::get(Some(&node.pod), "eth0").is_err());
}

/// Issue 2's proof with real parts: after the incident's reboot (no
/// subnet.env), `node restore` puts the backup back and a pod sandbox then
/// gets networking from Debian's bridge and host-local through the k3s
/// conflist, with the file's MTU.
#[test]
fn restored_subnet_env_gives_pods_networking() {
    use rebootguard_node::restore::{self, Decision};
    use rebootguard_node::settings::{self, File, Settings};

    if !ready("restored_subnet_env_gives_pods_networking") {
        return;
    }
    let node = Node::new();
    let root = node.dir.path().join("root");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node-boromir");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&example)
        .arg(&root)
        .status()
        .expect("cp");
    assert!(copied.success());
    let live = root.join("run/flannel/subnet.env");
    let list = node.conflist(json!({ "subnetFile": live }));

    let before = probe::run(&list, &node.runtime());
    assert!(
        before
            .failures
            .iter()
            .any(|f| f.to_string().contains("loadFlannelSubnetEnv failed: open ")),
        "{:?}",
        before.failures
    );

    let settings = Settings::resolve(
        &root,
        File::load(&root.join(settings::CONFIG_FILE)).expect("example config"),
    )
    .expect("settings");
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(restore::run(&settings, false));
    assert!(outcome.applied, "{outcome:?}");
    assert!(matches!(
        outcome.plan.decision,
        Decision::Restore { generation: 1, .. }
    ));

    let after = probe::run(&list, &node.runtime());
    assert!(after.is_ok(), "{:?}", after.failures);
    assert!(
        after
            .addresses()
            .iter()
            .any(|a| cidr("10.42.0.0/24").contains(a)),
        "{:?}",
        after.addresses()
    );
    assert_eq!(after.interface.as_ref().map(|l| l.mtu), Some(1450));
}
