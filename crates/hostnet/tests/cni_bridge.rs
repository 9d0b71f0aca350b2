//! Proof that a subnet.env derived by rebootguard really networks a pod:
//! the delegate config flannel would build is run through Debian's real
//! `bridge` and `host-local` plugins, in a fake node namespace and a pod
//! namespace made by the test, and a real ping crosses the result.
//!
//! Needs root and the reference plugins (Debian: containernetworking-plugins);
//! each test prints why it skips otherwise.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use rebootguard_flannel::{Mtu, NetConf, delegate, derive, subnet_env};
use rebootguard_hostnet::cni::{self, Args, DEBIAN_PLUGIN_DIR, Runtime};
use rebootguard_hostnet::link::{self, Family, Netlink};
use rebootguard_hostnet::netns::{self, Netns};
use rebootguard_hostnet::probe;
use serde_json::{Value, json};

fn unique(tag: &str) -> String {
    netns::unique_name(&format!("rgt-{tag}"))
}

fn ready(test: &str) -> bool {
    cni::test_ready(test, &["bridge", "host-local"])
}

fn cidr(text: &str) -> IpNet {
    text.parse().expect("test CIDR")
}

/// The flannel entry of k3s's conflist, as the runtime hands it over.
fn k3s_flannel_plugin() -> Value {
    json!({
        "name": "cbr0",
        "cniVersion": "1.0.0",
        "type": "flannel",
        "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}
    })
}

/// subnet.env for a node, derived, rendered and read back as the plugin
/// would, then turned into the bridge delegate config; host-local's state
/// goes to `leases`, never to the machine's own /var/lib/cni.
fn delegate_for(pod_cidrs: &[&str], net_conf: &str, leases: &Path) -> Value {
    let conf = NetConf::parse(net_conf.as_bytes()).expect("net-conf");
    let pod_cidrs: Vec<IpNet> = pod_cidrs.iter().map(|c| cidr(c)).collect();
    let env = derive(&pod_cidrs, &conf, Mtu::Underlay(1500), true).expect("derives");
    let file = env.render();
    let read = subnet_env::parse(file.as_bytes())
        .into_valid()
        .expect("the rendered file is valid");
    assert_eq!(read, env);
    let mut config = delegate::build(&k3s_flannel_plugin(), &read).expect("delegate");
    config["ipam"]["dataDir"] = json!(leases);
    config
}

fn ping(pod: &Netns, target: &str) -> bool {
    // IPv6 addresses may still be tentative for a moment: a few tries.
    (0..5).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        pod.command("ping")
            .expect("command")
            .args(["-c", "1", "-W", "1", target])
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

struct Lab {
    node: Netns,
    pod: Netns,
    leases: tempfile::TempDir,
}

impl Lab {
    fn new() -> Self {
        Lab {
            node: Netns::create_named(&unique("node")).expect("node namespace"),
            // Anonymous: the plugins reach it through /proc/<pid>/fd/<n>.
            pod: Netns::new().expect("pod namespace"),
            leases: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn runtime(&self) -> Runtime<'_> {
        Runtime::new(vec![PathBuf::from(DEBIAN_PLUGIN_DIR)])
            .in_host(&self.node)
            .with_timeout(Some(Duration::from_secs(8)))
    }

    fn args(&self) -> Args {
        Args::pod(
            "proof-sandbox-1",
            &self.pod.path(),
            "kube-system",
            "coredns-0",
        )
    }

    fn lease_files(&self) -> usize {
        let dir = self.leases.path().join("cbr0");
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().parse::<IpAddr>().is_ok())
                .count()
        })
    }
}

const V4: &str = r#"{"Network":"10.42.0.0/16","Backend":{"Type":"vxlan"}}"#;

#[test]
fn derived_subnet_env_networks_a_pod_through_real_bridge_plugin() {
    if !ready("derived_subnet_env_networks_a_pod_through_real_bridge_plugin") {
        return;
    }
    let lab = Lab::new();
    let config = delegate_for(&["10.42.0.0/24"], V4, lab.leases.path());
    let runtime = lab.runtime();
    let args = lab.args();

    let added = runtime.add(&config, &args).expect("bridge ADD");
    let addresses = added.success.addresses_of("eth0");
    assert_eq!(addresses.len(), 1, "{:?}", added.success);
    let pod_ip = addresses[0];
    assert!(cidr("10.42.0.0/24").contains(&pod_ip.addr()), "{pod_ip}");
    assert_eq!(pod_ip.prefix_len(), 24);
    assert_eq!(
        lab.lease_files(),
        1,
        "host-local kept its lease in our temp dir"
    );

    // What the kernel says, not what the plugin claims.
    let eth0 = link::get(Some(&lab.pod), "eth0").expect("pod eth0");
    assert_eq!(eth0.mtu, 1450);
    assert!(eth0.addresses.contains(&pod_ip));
    let routes = link::blocking(Some(&lab.pod), |netlink: Netlink| async move {
        netlink.routes(Family::V4).await
    })
    .expect("pod routes");
    let cluster = routes
        .iter()
        .find(|r| r.destination == cidr("10.42.0.0/16"))
        .unwrap_or_else(|| panic!("no route to the cluster network: {routes:?}"));
    assert_eq!(cluster.gateway, Some(IpAddr::from([10, 42, 0, 1])));
    assert_eq!(cluster.oif, Some(eth0.index));
    let cni0 = link::get(Some(&lab.node), "cni0").expect("node cni0");
    assert_eq!(cni0.kind.as_deref(), Some("bridge"));
    assert!(cni0.addresses.contains(&cidr("10.42.0.1/24")), "{cni0:?}");

    assert!(ping(&lab.pod, "10.42.0.1"), "the pod reaches its gateway");

    // CHECK gets the ADD result. The reference bridge plugin (seen with
    // v1.1.1) compares a result route without `gw` against the kernel's
    // route, which has the gateway filled in, and so rejects flannel's
    // routes; either answer proves the result reached the plugin intact.
    let mut check = config.clone();
    check["prevResult"] = added.json.clone();
    match runtime.check(&check, &args) {
        Ok(()) => {}
        Err(cni::Error::Plugin { error, .. }) => assert!(
            error.msg.contains("Expected Route") && error.msg.contains("10.42.0.0"),
            "unexpected CHECK failure: {error}"
        ),
        Err(other) => panic!("CHECK did not run: {other}"),
    }

    runtime.del(&config, &args).expect("bridge DEL");
    assert!(matches!(
        link::get(Some(&lab.pod), "eth0"),
        Err(link::Error::NoSuchLink(_))
    ));
    assert_eq!(lab.lease_files(), 0, "the lease was released");
    // DEL of something already gone succeeds, as the spec requires.
    runtime.del(&config, &args).expect("second DEL");
}

#[test]
fn dual_stack_subnet_env_networks_a_pod() {
    if !ready("dual_stack_subnet_env_networks_a_pod") {
        return;
    }
    if !Path::new("/proc/sys/net/ipv6").exists() {
        eprintln!("skipping dual_stack_subnet_env_networks_a_pod: this kernel has no IPv6");
        return;
    }
    let lab = Lab::new();
    let net_conf = r#"{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"vxlan"}}"#;
    let config = delegate_for(
        &["10.42.0.0/24", "2001:cafe:42::/64"],
        net_conf,
        lab.leases.path(),
    );
    let runtime = lab.runtime();
    let args = lab.args();

    let added = runtime.add(&config, &args).expect("bridge ADD");
    let addresses = added.success.addresses_of("eth0");
    assert_eq!(addresses.len(), 2, "{:?}", added.success);
    assert!(cidr("10.42.0.0/24").contains(&addresses[0].addr()));
    assert!(cidr("2001:cafe:42::/64").contains(&addresses[1].addr()));

    let eth0 = link::get(Some(&lab.pod), "eth0").expect("pod eth0");
    assert_eq!(eth0.mtu, 1450);
    for address in &addresses {
        assert!(eth0.addresses.contains(address), "{eth0:?}");
    }
    let routes6 = link::blocking(Some(&lab.pod), |netlink: Netlink| async move {
        netlink.routes(Family::V6).await
    })
    .expect("pod routes");
    assert!(
        routes6
            .iter()
            .any(|r| r.destination == cidr("2001:cafe:42::/56")),
        "{routes6:?}"
    );

    assert!(ping(&lab.pod, "10.42.0.1"));
    assert!(ping(&lab.pod, "2001:cafe:42::1"), "IPv6 gateway reachable");

    runtime.del(&config, &args).expect("bridge DEL");
    assert!(link::get(Some(&lab.pod), "eth0").is_err());
    assert_eq!(lab.lease_files(), 0);
}

/// Leases leaked by an unclean reboot exhaust host-local's range: the
/// failure comes back as the plugin's error object, with the wording seen in
/// kubelet events, and the DEL a runtime sends after a failed ADD cleans up.
#[test]
fn leaked_leases_give_no_ip_addresses_available() {
    if !ready("leaked_leases_give_no_ip_addresses_available") {
        return;
    }
    let lab = Lab::new();
    let config = delegate_for(&["10.42.0.0/24"], V4, lab.leases.path());
    let store = lab.leases.path().join("cbr0");
    std::fs::create_dir_all(&store).expect("lease dir");
    for host in 2..=254 {
        std::fs::write(
            store.join(format!("10.42.0.{host}")),
            "gone-before-reboot\neth0",
        )
        .expect("lease");
    }
    let err = lab
        .runtime()
        .add(&config, &lab.args())
        .expect_err("range exhausted");
    match &err {
        cni::Error::Plugin { plugin, error, .. } => {
            assert_eq!(plugin, "bridge");
            assert!(
                error.msg.contains("no IP addresses available in range set"),
                "{error}"
            );
        }
        other => panic!("expected a plugin error object, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("plugin type=\"bridge\" failed (add): "),
        "{err}"
    );
    lab.runtime()
        .del(&config, &lab.args())
        .expect("DEL after failed ADD");
    assert!(
        link::get(Some(&lab.pod), "eth0").is_err(),
        "nothing left in the pod"
    );
    assert_eq!(lab.lease_files(), 253, "other containers' leases untouched");
}

#[test]
fn version_reports_supported_specs() {
    if !ready("version_reports_supported_specs") {
        return;
    }
    let runtime = Runtime::new(vec![PathBuf::from(DEBIAN_PLUGIN_DIR)]);
    let info = runtime.version("bridge").expect("VERSION");
    assert!(
        info.supported_versions.iter().any(|v| v == "1.0.0"),
        "{info:?}"
    );
}

/// `node probe`'s check: ADD and DEL in a throwaway namespace, through a
/// conflist, with every step's failure kept.
#[test]
fn probe_reports_a_working_and_a_broken_node() {
    if !ready("probe_reports_a_working_and_a_broken_node") {
        return;
    }
    let lab = Lab::new();
    let mut plugin = delegate_for(&["10.42.0.0/24"], V4, lab.leases.path());
    if let Some(object) = plugin.as_object_mut() {
        object.remove("name");
        object.remove("cniVersion");
    }
    let list = cni::Conflist::from_value(&json!({
        "name": "cbr0", "cniVersion": "1.0.0", "plugins": [plugin]
    }))
    .expect("conflist");

    let report = probe::run(&list, &lab.runtime());
    assert!(report.is_ok(), "{:?}", report.failures);
    let addresses = report.addresses();
    assert!(
        addresses.iter().any(|a| cidr("10.42.0.0/24").contains(a)),
        "{addresses:?}"
    );
    assert_eq!(report.interface.as_ref().map(|l| l.mtu), Some(1450));
    assert_eq!(lab.lease_files(), 0, "DEL released the probe's lease");

    // The same node with its range used up by leaked leases.
    let store = lab.leases.path().join("cbr0");
    std::fs::create_dir_all(&store).expect("lease dir");
    for host in 2..=254 {
        std::fs::write(store.join(format!("10.42.0.{host}")), "leaked\neth0").expect("lease");
    }
    let report = probe::run(&list, &lab.runtime());
    assert!(!report.is_ok());
    assert!(report.added.is_none());
    assert_eq!(
        report.failures.len(),
        1,
        "ADD failed, DEL still ran and succeeded: {:?}",
        report.failures
    );
    let text = report.failures[0].to_string();
    assert!(
        text.starts_with("CNI ADD failed: plugin type=\"bridge\" failed (add): ")
            && text.contains("no IP addresses available"),
        "{text}"
    );
}
