//! Links and routes read over rtnetlink inside namespaces the test made,
//! set up with `ip` so the reader is checked against an independent writer.
//! Needs root; each test prints why it skips otherwise.

use std::net::IpAddr;
use std::process::Command;

use rebootguard_flannel::Mtu;
use rebootguard_hostnet::link::{self, Family, NeighState, Netlink, OperState};
use rebootguard_hostnet::netns::{self, Netns, test_privileged};

fn unique(tag: &str) -> String {
    netns::unique_name(&format!("rgt-{tag}"))
}

fn ip(ns: &Netns, args: &str) {
    let name = ns.name().expect("named namespace");
    let out = Command::new("ip")
        .arg("-n")
        .arg(name)
        .args(args.split_whitespace())
        .output()
        .expect("ip runs");
    assert!(
        out.status.success(),
        "ip -n {name} {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace with a veth pair whose `uplink` end carries the default route.
fn node(mtu: u32) -> Netns {
    let ns = Netns::create_named(&unique("link")).expect("create");
    ip(&ns, "link add uplink type veth peer name peer0");
    ip(&ns, &format!("link set uplink mtu {mtu} up"));
    ip(&ns, "link set peer0 up");
    ip(&ns, "addr add 192.0.2.10/24 dev uplink");
    ip(&ns, "route add default via 192.0.2.1 dev uplink metric 50");
    ns
}

#[test]
fn underlay_is_the_default_route_interface() {
    if !test_privileged("underlay_is_the_default_route_interface") {
        return;
    }
    let ns = node(1400);
    let underlay = link::underlay(Some(&ns)).expect("underlay");
    assert_eq!(underlay.link.name, "uplink");
    assert_eq!(underlay.link.mtu, 1400);
    assert_eq!(underlay.link.kind.as_deref(), Some("veth"));
    assert_eq!(underlay.route.gateway, Some(IpAddr::from([192, 0, 2, 1])));
    assert_eq!(underlay.route.metric, 50);
    // IPv4 first; the kernel adds an IPv6 link-local address after it.
    assert_eq!(
        underlay.link.addresses.first(),
        Some(&"192.0.2.10/24".parse().expect("cidr"))
    );
}

#[test]
fn underlay_falls_back_to_ipv6_and_reports_absence() {
    if !test_privileged("underlay_falls_back_to_ipv6_and_reports_absence") {
        return;
    }
    let ns = Netns::create_named(&unique("v6")).expect("create");
    assert!(matches!(
        link::underlay(Some(&ns)),
        Err(link::Error::NoDefaultRoute)
    ));
    ip(&ns, "link add up6 type veth peer name peer6");
    ip(&ns, "link set up6 mtu 9000 up");
    ip(&ns, "link set peer6 up");
    ip(&ns, "-6 route add default dev up6");
    let underlay = link::underlay(Some(&ns)).expect("underlay");
    assert_eq!(underlay.link.name, "up6");
    assert_eq!(underlay.link.mtu, 9000);
    assert!(underlay.route.destination.addr().is_ipv6());
}

#[test]
fn links_by_name_state_and_missing() {
    if !test_privileged("links_by_name_state_and_missing") {
        return;
    }
    let ns = node(1500);
    let lo = link::get(Some(&ns), "lo").expect("lo");
    assert!(!lo.up, "lo starts down in a new namespace");
    assert_eq!(lo.kind, None);
    let peer = link::get(Some(&ns), "peer0").expect("peer0");
    assert!(peer.up);
    assert_eq!(peer.state, OperState::Up);
    assert_eq!(peer.mac_string().map(|m| m.len()), Some(17));
    let missing = link::get(Some(&ns), "flannel.1").expect_err("absent");
    assert!(matches!(missing, link::Error::NoSuchLink(ref n) if n == "flannel.1"));
    assert!(missing.to_string().contains("flannel.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_reads_from_a_runtime_outside_the_namespace() {
    if !test_privileged("async_reads_from_a_runtime_outside_the_namespace") {
        return;
    }
    let ns = node(1450);
    let netlink = Netlink::connect_in(&ns).expect("connect");
    netlink.set_up("lo").await.expect("lo up");
    let links = netlink.links().await.expect("links");
    let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for expected in ["lo", "uplink", "peer0"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let lo = netlink.link("lo").await.expect("lo");
    assert!(lo.up);
    assert!(lo.addresses.contains(&"127.0.0.1/8".parse().expect("cidr")));
    let routes = netlink.routes(Family::V4).await.expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r.destination == "192.0.2.0/24".parse().expect("cidr")),
        "{routes:?}"
    );
    // The host's namespace was never touched: it has no link called uplink
    // unless the machine has one of its own.
    let host = Netlink::connect().expect("host netlink");
    let host_links = host.links().await.expect("host links");
    assert!(!host_links.iter().any(|l| l.name == "peer0"));
}

/// flannel's data plane as flannel sets it up (facts §4), read back:
/// `flannel.1` (VNI 1, port 8472, nolearning), a permanent neighbour and a
/// permanent FDB entry per peer, and an onlink route to the peer's lease.
#[test]
fn flannel_vxlan_data_plane_is_read_back() {
    if !test_privileged("flannel_vxlan_data_plane_is_read_back") {
        return;
    }
    let ns = node(1500);
    ip(
        &ns,
        "link add flannel.1 type vxlan id 1 local 192.0.2.10 dev uplink dstport 8472 nolearning",
    );
    ip(&ns, "link set flannel.1 mtu 1450 up");
    ip(&ns, "addr add 10.42.0.0/32 dev flannel.1");
    ip(
        &ns,
        "neigh add 10.42.1.0 lladdr aa:bb:cc:00:00:01 dev flannel.1 nud permanent",
    );
    let name = ns.name().expect("named").to_owned();
    let out = Command::new("bridge")
        .args(["-n", &name, "fdb", "append", "aa:bb:cc:00:00:01"])
        .args(["dev", "flannel.1", "dst", "192.0.2.20", "self", "permanent"])
        .output()
        .expect("bridge runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ip(
        &ns,
        "route add 10.42.1.0/24 via 10.42.1.0 dev flannel.1 onlink",
    );

    let (vtep, uplink, neighbours, fdb, routes) =
        link::blocking(Some(&ns), |netlink: Netlink| async move {
            Ok((
                netlink.link("flannel.1").await?,
                netlink.link("uplink").await?,
                netlink.neighbours().await?,
                netlink.fdb().await?,
                netlink.routes(Family::V4).await?,
            ))
        })
        .expect("read");

    assert_eq!(vtep.kind.as_deref(), Some("vxlan"));
    assert_eq!(vtep.mtu, 1450);
    assert_eq!(
        vtep.addresses.first(),
        Some(&"10.42.0.0/32".parse().expect("cidr"))
    );
    let vxlan = vtep.vxlan.as_ref().expect("vxlan settings");
    assert_eq!(vxlan.vni, Some(1));
    assert_eq!(vxlan.port, Some(8472));
    assert_eq!(vxlan.local, Some(IpAddr::from([192, 0, 2, 10])));
    assert_eq!(vxlan.underlay, Some(uplink.index));
    assert_eq!(vxlan.learning, Some(false));

    let peer = neighbours
        .iter()
        .find(|n| n.index == vtep.index && n.ip == IpAddr::from([10, 42, 1, 0]))
        .unwrap_or_else(|| panic!("no neighbour for the peer: {neighbours:?}"));
    assert_eq!(peer.state, NeighState::Permanent);
    assert_eq!(peer.mac.as_deref(), Some(&[0xaa, 0xbb, 0xcc, 0, 0, 1][..]));

    let entry = fdb
        .iter()
        .find(|f| f.index == vtep.index && f.mac == [0xaa, 0xbb, 0xcc, 0, 0, 1])
        .unwrap_or_else(|| panic!("no fdb entry for the peer: {fdb:?}"));
    assert_eq!(entry.destination, Some(IpAddr::from([192, 0, 2, 20])));
    assert!(entry.permanent && entry.own, "{entry:?}");

    let route = routes
        .iter()
        .find(|r| r.destination == "10.42.1.0/24".parse().expect("cidr"))
        .unwrap_or_else(|| panic!("no route to the peer: {routes:?}"));
    assert!(route.onlink);
    assert_eq!(route.gateway, Some(IpAddr::from([10, 42, 1, 0])));
    assert_eq!(route.oif, Some(vtep.index));
    assert!(uplink.vxlan.is_none());
}

/// `node restore` before and after flannel made its device: the underlay's
/// MTU first, then flannel.1's own.
#[test]
fn flannel_mtu_prefers_the_vtep_then_the_underlay() {
    if !test_privileged("flannel_mtu_prefers_the_vtep_then_the_underlay") {
        return;
    }
    let ns = node(1400);
    assert_eq!(
        link::flannel_mtu(Some(&ns), "flannel.1").expect("mtu"),
        Mtu::Underlay(1400)
    );
    ip(
        &ns,
        "link add flannel.1 type vxlan id 1 dev uplink dstport 8472 nolearning",
    );
    ip(&ns, "link set flannel.1 mtu 1350");
    assert_eq!(
        link::flannel_mtu(Some(&ns), "flannel.1").expect("mtu"),
        Mtu::Overlay(1350)
    );
    let bare = Netns::create_named(&unique("bare")).expect("create");
    assert!(matches!(
        link::flannel_mtu(Some(&bare), "flannel.1"),
        Err(link::Error::NoDefaultRoute)
    ));
}

/// Writes are refused in the machine's own namespace. (`set_up("lo")` is
/// harmless there even if the guard failed: the host's lo is already up.)
#[tokio::test]
async fn the_host_namespace_is_read_only_by_default() {
    if !test_privileged("the_host_namespace_is_read_only_by_default") {
        return;
    }
    let host = Netlink::connect().expect("host netlink");
    assert!(host.link("lo").await.expect("reads work").up);
    assert!(matches!(
        host.set_up("lo").await,
        Err(link::Error::HostNamespace)
    ));
    let same = Netlink::connect_in(&Netns::current().expect("current")).expect("netlink");
    let err = same
        .add_bridge("rgt-never")
        .await
        .expect_err("refused before any request");
    assert!(matches!(err, link::Error::HostNamespace), "{err}");
    assert!(err.to_string().contains("allow_host_changes"));
    assert!(matches!(
        host.link("rgt-never").await,
        Err(link::Error::NoSuchLink(_))
    ));
}
