//! Netlink notifications from a real kernel: each change flannel's data
//! plane is made of (the vxlan device, its address, a peer's onlink route,
//! neighbour and FDB entry), made and removed in a fresh namespace, shows up
//! as the matching `Change` within a bounded wait; a flood that overflows
//! the socket shows up as `Change::Overrun`. Needs root; prints why it skips
//! otherwise.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rebootguard_hostnet::configure::{RouteSpec, VxlanSpec};
use rebootguard_hostnet::link::{self, Family, Netlink};
use rebootguard_hostnet::monitor::{Change, Config, Monitor};
use rebootguard_hostnet::netns::{Netns, test_privileged};

/// How long a notification may take; they normally arrive in well under 1 ms.
const BOUND: Duration = Duration::from_secs(2);

fn cidr(text: &str) -> IpNet {
    text.parse().expect("test CIDR")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IP")
}

/// Reads changes until one satisfies `wanted`; panics after [`BOUND`].
async fn expect(monitor: &mut Monitor, what: &str, wanted: impl Fn(&Change) -> bool) -> Change {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at((start + BOUND).into(), monitor.next()).await {
            Ok(Ok(change)) if wanted(&change) => {
                eprintln!("{what}: {change:?} after {:?}", start.elapsed());
                return change;
            }
            Ok(Ok(other)) => seen.push(other),
            Ok(Err(e)) => panic!("{what}: monitor failed: {e}"),
            Err(_) => panic!("{what}: no matching change within {BOUND:?}; saw {seen:?}"),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn flannel_data_plane_changes_are_reported() {
    if !test_privileged("flannel_data_plane_changes_are_reported") {
        return;
    }
    let ns = Netns::new().expect("namespace");
    let mut monitor = Monitor::open_in(&ns).expect("monitor");
    let netlink = Netlink::connect_in(&ns).expect("netlink");
    let mac = [0x0a, 0x58, 0, 0, 0, 2];
    let route = RouteSpec {
        destination: cidr("10.42.1.0/24"),
        gateway: Some(ip("10.42.1.0")),
        device: Some("flannel.1".into()),
        onlink: true,
    };

    netlink
        .add_vxlan(&VxlanSpec {
            name: "flannel.1".into(),
            vni: 1,
            port: 8472,
            local: None,
            underlay: None,
            learning: false,
        })
        .await
        .expect("add vxlan");
    let Change::Link { index, .. } = expect(
        &mut monitor,
        "vxlan created",
        |c| matches!(c, Change::Link { name: Some(n), removed: false, .. } if n == "flannel.1"),
    )
    .await
    else {
        unreachable!("matched a link")
    };
    netlink.set_up("flannel.1").await.expect("up");
    expect(
        &mut monitor,
        "vxlan up",
        |c| matches!(c, Change::Link { index: i, removed: false, .. } if *i == index),
    )
    .await;

    netlink
        .add_address("flannel.1", cidr("10.42.0.0/32"))
        .await
        .expect("address");
    expect(&mut monitor, "address added", |c| {
        *c == Change::Address {
            index,
            removed: false,
        }
    })
    .await;
    netlink.add_route(&route).await.expect("route");
    expect(&mut monitor, "onlink route added", |c| {
        *c == Change::Route {
            family: Family::V4,
            removed: false,
        }
    })
    .await;
    netlink
        .add_neighbour("flannel.1", ip("10.42.1.0"), &mac)
        .await
        .expect("neighbour");
    expect(&mut monitor, "neighbour added", |c| {
        *c == Change::Neighbour {
            index,
            removed: false,
        }
    })
    .await;
    netlink
        .add_fdb("flannel.1", &mac, ip("192.0.2.2"))
        .await
        .expect("fdb");
    expect(&mut monitor, "fdb entry added", |c| {
        *c == Change::Fdb {
            index,
            removed: false,
        }
    })
    .await;
    netlink
        .add_address("flannel.1", cidr("fd00:42::/128"))
        .await
        .expect("IPv6 address");
    expect(&mut monitor, "IPv6 route (the address's own)", |c| {
        *c == Change::Route {
            family: Family::V6,
            removed: false,
        }
    })
    .await;

    // Now break it the way a node breaks: the peer's entries first.
    netlink
        .delete_fdb("flannel.1", &mac, Some(ip("192.0.2.2")))
        .await
        .expect("delete fdb");
    expect(&mut monitor, "fdb entry removed", |c| {
        *c == Change::Fdb {
            index,
            removed: true,
        }
    })
    .await;
    netlink
        .delete_neighbour("flannel.1", ip("10.42.1.0"))
        .await
        .expect("delete neighbour");
    expect(&mut monitor, "neighbour removed", |c| {
        *c == Change::Neighbour {
            index,
            removed: true,
        }
    })
    .await;
    netlink.delete_route(&route).await.expect("delete route");
    expect(&mut monitor, "route removed", |c| {
        *c == Change::Route {
            family: Family::V4,
            removed: true,
        }
    })
    .await;
    netlink
        .delete_address("flannel.1", cidr("10.42.0.0/32"))
        .await
        .expect("delete address");
    expect(&mut monitor, "address removed", |c| {
        *c == Change::Address {
            index,
            removed: true,
        }
    })
    .await;
    netlink.delete_link("flannel.1").await.expect("delete link");
    expect(
        &mut monitor,
        "vxlan deleted",
        |c| matches!(c, Change::Link { index: i, removed: true, .. } if *i == index),
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_monitor_sees_only_its_namespace() {
    if !test_privileged("a_monitor_sees_only_its_namespace") {
        return;
    }
    let watched = Netns::new().expect("watched");
    let other = Netns::new().expect("other");
    let mut monitor = Monitor::open_in(&watched).expect("monitor");
    Netlink::connect_in(&other)
        .expect("netlink")
        .add_bridge("elsewhere")
        .await
        .expect("bridge elsewhere");
    Netlink::connect_in(&watched)
        .expect("netlink")
        .add_bridge("here")
        .await
        .expect("bridge here");
    let change = expect(&mut monitor, "first link change", |c| {
        matches!(c, Change::Link { .. })
    })
    .await;
    assert!(
        matches!(&change, Change::Link { name: Some(n), .. } if n == "here"),
        "{change:?}"
    );
}

/// While nothing reads the socket (this runtime is blocked), a burst larger
/// than its buffer is made; the kernel drops the excess and the next read
/// says so.
#[tokio::test(flavor = "current_thread")]
async fn a_socket_overrun_is_reported() {
    if !test_privileged("a_socket_overrun_is_reported") {
        return;
    }
    let ns = Netns::new().expect("namespace");
    let mut monitor = Monitor::open_with(
        Some(&ns),
        &Config {
            receive_buffer: 4096,
        },
    )
    .expect("monitor");
    link::blocking(Some(&ns), |netlink: Netlink| async move {
        netlink.add_bridge("br0").await?;
        for i in 0..200u32 {
            let address = IpNet::new(
                IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8 + 1]),
                32,
            )
            .expect("address");
            netlink.add_address("br0", address).await?;
        }
        Ok(())
    })
    .expect("burst");
    expect(&mut monitor, "overrun", |c| *c == Change::Overrun).await;
    // The monitor keeps working afterwards.
    Netlink::connect_in(&ns)
        .expect("netlink")
        .add_bridge("br1")
        .await
        .expect("bridge");
    expect(
        &mut monitor,
        "link after the overrun",
        |c| matches!(c, Change::Link { name: Some(n), .. } if n == "br1"),
    )
    .await;
}

#[test]
fn opening_outside_a_runtime_is_refused() {
    assert!(matches!(
        Monitor::open(),
        Err(rebootguard_hostnet::monitor::Error::NoRuntime)
    ));
}
