//! Every check's branches, on hand-written facts of the incident's cluster:
//! boromir (10.42.0.0/24) with peers samwise (10.42.1.0/24) and theoden
//! (10.42.2.0/24).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use rebootguard_cluster::node::{EventView, NodeView, PodView};
use rebootguard_errors::Failure;
use rebootguard_flannel::NetConf;
use rebootguard_hostnet::link::{Fdb, Link, NeighState, Neighbour, OperState, Route, Vxlan};
use serde_json::json;

use super::*;
use crate::leases::Lease;
use crate::live::Live;

const ENV: &[u8] = b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
const FLANNEL_INDEX: u32 = 3;

fn cidr(s: &str) -> IpNet {
    s.parse().expect("cidr")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn mac(last: u8) -> Vec<u8> {
    vec![0x0a, 0x58, 0xac, 0x1f, 0x00, last]
}

fn node(name: &str, lease: &str, last: u8) -> NodeView {
    let data = format!(r#"{{"VNI":1,"VtepMAC":"0a:58:ac:1f:00:{last:02x}"}}"#);
    let flannel = [
        ("backend-type", "vxlan".to_owned()),
        ("backend-data", data),
        ("kube-subnet-manager", "true".to_owned()),
        ("public-ip", format!("172.31.0.{last}")),
    ]
    .into_iter()
    .map(|(k, v)| (format!("flannel.alpha.coreos.com/{k}"), v))
    .collect();
    NodeView {
        name: name.into(),
        pod_cidrs: vec![cidr(lease)],
        boot_id: Some("b".into()),
        flannel,
    }
}

fn link(index: u32, name: &str, kind: Option<&str>, addresses: &[&str]) -> Link {
    Link {
        index,
        name: name.into(),
        mtu: 1500,
        up: true,
        state: OperState::Up,
        mac: Some(mac(0x99)),
        kind: kind.map(str::to_owned),
        master: None,
        addresses: addresses.iter().map(|a| cidr(a)).collect(),
        vxlan: None,
    }
}

fn healthy_host() -> Host {
    let mut vtep = link(FLANNEL_INDEX, "flannel.1", Some("vxlan"), &["10.42.0.0/32"]);
    vtep.mtu = 1450;
    vtep.state = OperState::Unknown;
    vtep.mac = Some(mac(1));
    vtep.vxlan = Some(Vxlan {
        vni: Some(1),
        port: Some(8472),
        local: Some(ip("172.31.0.1")),
        underlay: Some(2),
        learning: Some(false),
    });
    let mut host = Host {
        links: vec![
            link(1, "lo", None, &["127.0.0.1/8"]),
            link(2, "eth0", None, &["172.31.0.1/16"]),
            vtep,
            link(4, "cni0", Some("bridge"), &["10.42.0.1/24"]),
        ],
        ..Host::default()
    };
    for (lease, last) in [("10.42.1.0/24", 3u8), ("10.42.2.0/24", 2)] {
        let lease = cidr(lease);
        host.neighbours.push(Neighbour {
            index: FLANNEL_INDEX,
            ip: lease.network(),
            mac: Some(mac(last)),
            state: NeighState::Permanent,
        });
        host.fdb.push(Fdb {
            index: FLANNEL_INDEX,
            mac: mac(last),
            destination: Some(ip(&format!("172.31.0.{last}"))),
            permanent: true,
            own: true,
        });
        host.routes.push(Route {
            destination: lease,
            gateway: Some(lease.network()),
            oif: Some(FLANNEL_INDEX),
            table: 254,
            metric: 0,
            onlink: true,
        });
    }
    host
}

fn k3s_conflist() -> Conflist {
    let value = json!({"name": "cbr0", "cniVersion": "1.0.0", "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}},
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "bandwidth", "capabilities": {"bandwidth": true}}
    ]});
    let dir = PathBuf::from("/var/lib/rancher/k3s/data/cni");
    Conflist {
        path: "/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist".into(),
        plugins: facts::required_plugins(&value)
            .into_iter()
            .map(|p| (p.clone(), Some(dir.join(p))))
            .collect(),
        parsed: Ok(value),
        bin_dirs: vec![dir],
    }
}

fn now() -> jiff::Timestamp {
    "2026-01-31T07:30:00Z".parse().expect("time")
}

fn healthy() -> Facts {
    let boot: SystemTime = (now() - jiff::SignedDuration::from_secs(3600)).into();
    Facts {
        local: Local {
            node: "boromir".into(),
            subnet_env_path: "/run/flannel/subnet.env".into(),
            live: crate::live::Live::Present {
                bytes: ENV.to_vec(),
                parsed: rebootguard_flannel::subnet_env::parse(ENV),
            },
            net_conf: NetConf::parse(br#"{"Network":"10.42.0.0/16","Backend":{"Type":"vxlan"}}"#)
                .map_err(|e| Failure::new(e, false)),
            conflist: k3s_conflist(),
            backup_pod_cidrs: Some(vec![cidr("10.42.0.0/24")]),
            host: Ok(healthy_host()),
            leases: Leases {
                dir: "/var/lib/cni/networks/cbr0".into(),
                boot_time: Some(boot),
                ..Leases::default()
            },
        },
        api: ApiFacts::Cluster(Cluster {
            me: Some(node("boromir", "10.42.0.0/24", 1)),
            peers: vec![
                node("samwise", "10.42.1.0/24", 3),
                node("theoden", "10.42.2.0/24", 2),
            ],
            pods: Ok(vec![pod("kube-system", "coredns-1", "10.42.0.5")]),
            events: Ok(Vec::new()),
        }),
        now: now(),
    }
}

fn pod(namespace: &str, name: &str, ip_text: &str) -> PodView {
    PodView {
        namespace: namespace.into(),
        name: name.into(),
        node: Some("boromir".into()),
        ips: vec![ip(ip_text)],
        host_network: false,
        phase: "Running".into(),
        deleting: false,
    }
}

fn cluster(f: &mut Facts) -> &mut Cluster {
    match &mut f.api {
        ApiFacts::Cluster(c) => c,
        _ => panic!("no cluster"),
    }
}

fn host(f: &mut Facts) -> &mut Host {
    f.local.host.as_mut().expect("host")
}

fn live(bytes: &[u8]) -> Live {
    Live::Present {
        bytes: bytes.to_vec(),
        parsed: rebootguard_flannel::subnet_env::parse(bytes),
    }
}

#[track_caller]
fn status(report: &Report, id: Id) -> &Check {
    report.get(id).expect("check present")
}

#[test]
fn a_healthy_node_passes_every_check() {
    let report = evaluate(&healthy());
    for check in &report.checks {
        assert_eq!(check.status, Status::Ok, "{check:?}");
    }
    assert_eq!(report.verdict, Verdict::Ok);
    let env = status(&report, Id::SubnetEnv);
    assert!(
        env.summary.contains("net-conf.json")
            && env.summary.contains("10.42.0.0/24")
            && env.summary.contains("MTU 1450"),
        "{}",
        env.summary
    );
    assert!(status(&report, Id::Peers).summary.contains("all 2 peer(s)"));
    assert!(report.render().contains("READY"));
}

#[test]
fn the_incident_missing_subnet_env_is_the_first_domino() {
    let mut f = healthy();
    f.local.live = Live::Missing;
    let report = evaluate(&f);
    let first = report.first_failure().expect("fails");
    assert_eq!(
        (first.id, first.reason.as_str()),
        (Id::SubnetEnv, "SubnetEnvMissing")
    );
    assert!(
        first.evidence[0].contains(
            "loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
        ),
        "{first:?}"
    );
    assert!(
        first
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("rebootguard node restore"))
    );
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(status(&report, Id::Ipam).status, Status::Skip);
    let text = report.render();
    assert!(
        text.contains("NOT READY") && text.contains("SubnetEnvMissing"),
        "{text}"
    );
}

#[test]
fn an_invalid_file_carries_the_plugins_own_words() {
    let mut f = healthy();
    f.local.live =
        live(b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPMASQ=true\n");
    let check = evaluate(&f).checks[0].clone();
    assert_eq!(check.reason, "SubnetEnvInvalid");
    assert!(
        check
            .evidence
            .iter()
            .any(|e| e.contains("/run/flannel/subnet.env is missing FLANNEL_MTU")),
        "{check:?}"
    );
}

#[test]
fn a_file_that_disagrees_names_what_with() {
    let mut f = healthy();
    cluster(&mut f).me = Some(node("boromir", "10.42.7.0/24", 1));
    let check = evaluate(&f).checks[0].clone();
    assert_eq!(check.reason, "SubnetEnvMismatch");
    assert!(
        check.evidence[0].contains("10.42.7.0/24") && check.evidence[0].contains("Node's podCIDRs"),
        "{check:?}"
    );

    let mut f = healthy();
    let vtep = host(&mut f)
        .links
        .iter_mut()
        .find(|l| l.name == "flannel.1");
    vtep.expect("flannel.1").mtu = 1400;
    let check = evaluate(&f).checks[0].clone();
    assert!(
        check
            .evidence
            .iter()
            .any(|e| e.contains("FLANNEL_MTU=1450 but flannel.1 has MTU 1400"))
    );

    let mut f = healthy();
    f.local.net_conf = NetConf::parse(br#"{"Network":"10.50.0.0/16","Backend":{"Type":"vxlan"}}"#)
        .map_err(|e| Failure::new(e, false));
    assert!(evaluate(&f).checks[0].evidence[0].contains("net-conf.json's 10.50.0.0/16"));
}

#[test]
fn without_the_api_the_backup_is_the_reference_and_peers_are_unknown() {
    let mut f = healthy();
    f.api = ApiFacts::Unavailable(Failure::said("connection refused", true));
    let report = evaluate(&f);
    let env = status(&report, Id::SubnetEnv);
    assert_eq!(env.status, Status::Ok);
    assert!(
        env.summary.contains("last backup's podCIDRs"),
        "{}",
        env.summary
    );
    assert_eq!(status(&report, Id::Peers).status, Status::Unknown);
    assert!(
        status(&report, Id::Peers)
            .summary
            .contains("connection refused")
    );
    assert_eq!(report.verdict, Verdict::Unknown);

    f.local.backup_pod_cidrs = Some(vec![cidr("10.42.9.0/24")]);
    assert_eq!(evaluate(&f).checks[0].reason, "SubnetEnvMismatch");
}

#[test]
fn a_missing_flannel_link_fails_and_peers_wait_for_it() {
    let mut f = healthy();
    host(&mut f).links.retain(|l| l.name != "flannel.1");
    let report = evaluate(&f);
    assert_eq!(
        report.first_failure().expect("fails").reason,
        "FlannelLinkMissing"
    );
    assert_eq!(status(&report, Id::Peers).status, Status::Skip);
    // Without flannel.1, the MTU is not compared.
    assert_eq!(status(&report, Id::SubnetEnv).status, Status::Ok);
}

#[test]
fn a_flannel_link_unlike_its_announcement_is_named() {
    let mut f = healthy();
    {
        let vtep = host(&mut f)
            .links
            .iter_mut()
            .find(|l| l.name == "flannel.1")
            .expect("flannel.1");
        vtep.mac = Some(mac(0x42));
        vtep.up = false;
        vtep.addresses = vec![cidr("10.42.99.0/32")];
        if let Some(v) = vtep.vxlan.as_mut() {
            v.local = Some(ip("172.31.0.77"));
            v.vni = Some(4);
        }
    }
    let check = evaluate(&f).checks[1].clone();
    assert_eq!(check.reason, "FlannelLinkWrong");
    let all = check.evidence.join("\n");
    for needle in [
        "VtepMAC 0a:58:ac:1f:00:01",
        "is down",
        "carries 10.42.99.0/32 instead of 10.42.0.0/32",
        "tunnels from 172.31.0.77 but this node announces public-ip 172.31.0.1",
        "VNI 4",
    ] {
        assert!(all.contains(needle), "{needle}: {all}");
    }
}

#[test]
fn a_dropped_peer_is_named() {
    let mut f = healthy();
    let samwise_mac = mac(3);
    host(&mut f).fdb.retain(|e| e.mac != samwise_mac);
    host(&mut f)
        .routes
        .retain(|r| r.destination != cidr("10.42.1.0/24"));
    let check = evaluate(&f).checks[2].clone();
    assert_eq!(check.reason, "PeerEntriesMissing");
    assert!(
        check.summary.contains("1 of 2") && check.summary.contains("samwise"),
        "{}",
        check.summary
    );
    assert!(!check.summary.contains("theoden"));
    let all = check.evidence.join("\n");
    assert!(
        all.contains("no FDB entry 0a:58:ac:1f:00:03 → 172.31.0.3"),
        "{all}"
    );
    assert!(
        all.contains("no route 10.42.1.0/24 via 10.42.1.0 dev flannel.1 onlink"),
        "{all}"
    );
}

#[test]
fn wrong_peer_entries_say_what_they_point_to() {
    let mut f = healthy();
    for n in &mut host(&mut f).neighbours {
        if n.ip == ip("10.42.2.0") {
            n.mac = Some(mac(0x77));
        }
    }
    for e in &mut host(&mut f).fdb {
        if e.mac == mac(3) {
            e.destination = Some(ip("172.31.0.200"));
        }
    }
    let all = evaluate(&f).checks[2].evidence.join("\n");
    assert!(
        all.contains(
            "neighbour 10.42.2.0 points to 0a:58:ac:1f:00:77 instead of 0a:58:ac:1f:00:02"
        ),
        "{all}"
    );
    assert!(
        all.contains("tunnels to 172.31.0.200 instead of 172.31.0.3"),
        "{all}"
    );
}

#[test]
fn peers_that_announced_nothing_expect_nothing() {
    let mut f = healthy();
    let mut quiet = node("newnode", "10.42.5.0/24", 9);
    quiet.flannel.clear();
    cluster(&mut f).peers.push(quiet);
    // A route for a lease nobody holds any more is only a note.
    host(&mut f).routes.push(Route {
        destination: cidr("10.42.8.0/24"),
        gateway: Some(ip("10.42.8.0")),
        oif: Some(FLANNEL_INDEX),
        table: 254,
        metric: 0,
        onlink: true,
    });
    let check = evaluate(&f).checks[2].clone();
    assert_eq!(check.status, Status::Ok, "{check:?}");
    let all = check.evidence.join("\n");
    assert!(all.contains("newnode has not announced flannel"), "{all}");
    assert!(all.contains("stale route 10.42.8.0/24"), "{all}");
}

#[test]
fn another_cni_skips_the_flannel_checks() {
    let mut f = healthy();
    let value = json!({"name": "mynet", "cniVersion": "1.0.0", "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}]});
    f.local.conflist.plugins = facts::required_plugins(&value)
        .into_iter()
        .map(|p| (p.clone(), Some(PathBuf::from("/opt/cni/bin").join(p))))
        .collect();
    f.local.conflist.parsed = Ok(value);
    f.local.live = Live::Missing;
    let report = evaluate(&f);
    for id in [Id::SubnetEnv, Id::FlannelLink, Id::Peers, Id::Ipam] {
        assert_eq!(status(&report, id).status, Status::Skip, "{id:?}");
    }
    assert_eq!(status(&report, Id::Cni).status, Status::Ok);
    assert_eq!(report.verdict, Verdict::Ok);
}

#[test]
fn other_backends_skip_the_vxlan_checks() {
    let mut f = healthy();
    f.local.net_conf =
        NetConf::parse(br#"{"Network":"10.42.0.0/16","Backend":{"Type":"host-gw"}}"#)
            .map_err(|e| Failure::new(e, false));
    host(&mut f).links.retain(|l| l.name != "flannel.1");
    let report = evaluate(&f);
    assert_eq!(status(&report, Id::FlannelLink).status, Status::Skip);
    assert!(status(&report, Id::FlannelLink).summary.contains("host-gw"));
    assert_eq!(report.verdict, Verdict::Ok);
}

#[test]
fn cni_config_and_binaries_are_checked() {
    let mut f = healthy();
    f.local.conflist.plugins.insert("flannel".into(), None);
    let check = evaluate(&f).checks[3].clone();
    assert_eq!(check.reason, "CniPluginMissing");
    assert_eq!(
        check.evidence,
        ["failed to find plugin \"flannel\" in path [/var/lib/rancher/k3s/data/cni]"]
    );

    f.local.conflist.parsed = Err(ConflistError::Missing);
    assert_eq!(evaluate(&f).checks[3].reason, "CniConfigMissing");
    f.local.conflist.parsed = Err(ConflistError::Invalid("expected value at line 1".into()));
    assert_eq!(evaluate(&f).checks[3].reason, "CniConfigInvalid");
}

#[test]
fn the_bridge_must_carry_the_gateway() {
    let mut f = healthy();
    for l in &mut host(&mut f).links {
        if l.name == "cni0" {
            l.addresses = vec![cidr("10.42.5.1/24")];
        }
    }
    let check = evaluate(&f).checks[3].clone();
    assert_eq!(check.reason, "BridgeAddressWrong");
    assert!(check.evidence[0].contains("already has an IP address different from 10.42.0.1/24"));

    // Being set up by the first sandbox: only the kernel's link-local address.
    let mut f = healthy();
    for l in &mut host(&mut f).links {
        if l.name == "cni0" {
            l.addresses = vec![cidr("fe80::447c:3aff:fea6:c1dd/64")];
        }
    }
    cluster(&mut f).pods = Ok(Vec::new());
    let check = evaluate(&f).checks[3].clone();
    assert_eq!(check.status, Status::Ok, "{check:?}");
    cluster(&mut f).pods = Ok(vec![pod("kube-system", "coredns-1", "10.42.0.5")]);
    assert_eq!(evaluate(&f).checks[3].reason, "BridgeAddressMissing");

    let mut f = healthy();
    host(&mut f).links.retain(|l| l.name != "cni0");
    assert_eq!(evaluate(&f).checks[3].reason, "BridgeMissing");
    cluster(&mut f).pods = Ok(Vec::new());
    let check = evaluate(&f).checks[3].clone();
    assert_eq!(check.status, Status::Ok);
    assert!(check.summary.contains("appears with the first pod"));

    // After a reboot: the pods deleted while the node was down still say
    // Running with their old IPs; they use no bridge of this boot.
    let mut stale = pod("apps", "web-1", "10.42.0.7");
    stale.deleting = true;
    cluster(&mut f).pods = Ok(vec![stale]);
    let check = evaluate(&f).checks[3].clone();
    assert_eq!(check.status, Status::Ok, "{check:?}");
}

fn lease(ip_text: &str, age: Duration, container: &str) -> Lease {
    Lease {
        network: "cbr0".into(),
        ip: ip(ip_text),
        path: PathBuf::from("/var/lib/cni/networks/cbr0").join(ip_text),
        modified: SystemTime::from(now()) - age,
        container: Some(container.into()),
    }
}

#[test]
fn leaked_leases_warn_and_an_exhausted_range_fails() {
    let mut f = healthy();
    f.local.leases.files = vec![
        lease("10.42.0.5", Duration::from_secs(600), "coredns"),
        lease("10.42.0.6", Duration::from_secs(7200), "before-boot"),
        lease("10.42.0.7", Duration::from_secs(600), "gone"),
        lease("10.42.0.8", Duration::from_secs(10), "starting"),
    ];
    let check = evaluate(&f).checks[4].clone();
    assert_eq!(check.reason, "IpamLeasesLeaked");
    assert!(
        check.summary.starts_with("2 host-local"),
        "{}",
        check.summary
    );
    assert!(
        check.summary.contains("4 leased, 249 free"),
        "{}",
        check.summary
    );
    let all = check.evidence.join("\n");
    assert!(
        all.contains("10.42.0.6 held by container before-boot (written before this boot)"),
        "{all}"
    );
    assert!(
        all.contains("10.42.0.7 held by container gone (no pod on this node has this IP)"),
        "{all}"
    );

    // The runtime's own list is better evidence than the API's.
    f.local.leases.live_containers = Some(BTreeSet::from(["coredns".to_owned()]));
    let all = evaluate(&f).checks[4].evidence.join("\n");
    assert!(
        all.contains("starting (the runtime has no such container)"),
        "{all}"
    );

    let mut f = healthy();
    f.local.live = live(b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/29\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
    f.local.backup_pod_cidrs = None;
    f.api = ApiFacts::NotAsked;
    f.local.leases.files = (2..=6)
        .map(|i| lease(&format!("10.42.0.{i}"), Duration::from_secs(7200), "old"))
        .collect();
    let check = evaluate(&f).checks[4].clone();
    assert_eq!(check.reason, "IpamExhausted");
    assert!(
        check.summary.contains("no free address (5 leases, 5 held"),
        "{}",
        check.summary
    );
}

fn event(name: &str, host: Option<&str>, age_secs: i64, message: &str) -> EventView {
    EventView {
        namespace: "kube-system".into(),
        kind: "Pod".into(),
        name: name.into(),
        reason: "FailedCreatePodSandBox".into(),
        message: message.into(),
        host: host.map(str::to_owned),
        last_seen: Some(now() - jiff::SignedDuration::from_secs(age_secs)),
        count: 3,
    }
}

const INCIDENT: &str = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"abc\": plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory";

#[test]
fn sandbox_failures_are_classified_like_diagnose_does() {
    let mut f = healthy();
    cluster(&mut f).events = Ok(vec![
        event("coredns-1", Some("boromir"), 30, INCIDENT),
        event("coredns-1", None, 60, INCIDENT),
        event("elsewhere", Some("samwise"), 10, INCIDENT),
    ]);
    let check = evaluate(&f).checks[5].clone();
    assert_eq!(check.reason, "SandboxCreationFailing");
    assert_eq!(check.evidence.len(), 1, "one line per cause: {check:?}");
    assert!(
        check.evidence[0].starts_with("flannel subnet.env missing (6x, last 30s ago"),
        "{check:?}"
    );
    assert!(!check.evidence[0].contains("elsewhere"));

    cluster(&mut f).events = Ok(vec![event("coredns-1", Some("boromir"), 400, INCIDENT)]);
    assert_eq!(evaluate(&f).checks[5].status, Status::Warn);
    cluster(&mut f).events = Ok(vec![event("coredns-1", Some("boromir"), 4000, INCIDENT)]);
    assert_eq!(evaluate(&f).checks[5].status, Status::Ok);
    cluster(&mut f).events = Err(Failure::said("forbidden", false));
    assert_eq!(evaluate(&f).checks[5].status, Status::Unknown);
}

#[test]
fn the_report_serializes_for_scripts() {
    let mut f = healthy();
    f.local.live = Live::Missing;
    let value = serde_json::to_value(evaluate(&f)).expect("json");
    assert_eq!(value["verdict"], "fail");
    assert_eq!(value["checks"][0]["id"], "subnet-env");
    assert_eq!(value["checks"][0]["status"], "FAIL");
    assert_eq!(value["checks"][0]["reason"], "SubnetEnvMissing");
    assert!(
        value["checks"][1].get("reason").is_none(),
        "OK checks carry no reason"
    );
    let _: BTreeMap<String, serde_json::Value> = serde_json::from_value(value).expect("an object");
}
