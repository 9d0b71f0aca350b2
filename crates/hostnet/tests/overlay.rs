//! flannel's vxlan data plane built entirely through `configure` between
//! two node namespaces joined by a switch namespace, then crossed by a real
//! ping: the writes do what their `ip`/`bridge` twins do. Needs root; prints
//! why it skips otherwise.

use std::net::IpAddr;

use ipnet::IpNet;
use rebootguard_hostnet::configure::{RouteSpec, VxlanSpec};
use rebootguard_hostnet::link::{self, Netlink};
use rebootguard_hostnet::netns::{self, Netns, test_privileged};

fn cidr(text: &str) -> IpNet {
    text.parse().expect("test CIDR")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IP")
}

struct Peer {
    ns: Netns,
    public: IpAddr,
    lease: IpNet,
    mac: [u8; 6],
}

#[test]
fn two_nodes_ping_across_flannel_vxlan() {
    if !test_privileged("two_nodes_ping_across_flannel_vxlan") {
        return;
    }
    let switch = Netns::create_named(&netns::unique_name("rgt-switch")).expect("switch");
    let nodes = [
        Peer {
            ns: Netns::create_named(&netns::unique_name("rgt-a")).expect("node a"),
            public: ip("192.0.2.1"),
            lease: cidr("10.42.0.0/24"),
            mac: [0x0a, 0x58, 0, 0, 0, 1],
        },
        Peer {
            ns: Netns::create_named(&netns::unique_name("rgt-b")).expect("node b"),
            public: ip("192.0.2.2"),
            lease: cidr("10.42.1.0/24"),
            mac: [0x0a, 0x58, 0, 0, 0, 2],
        },
    ];

    link::blocking(Some(&switch), |netlink: Netlink| async move {
        netlink.add_bridge("br0").await?;
        netlink.set_up("br0").await
    })
    .expect("switch bridge");

    for (i, node) in nodes.iter().enumerate() {
        let port = format!("port{i}");
        let public = node.public;
        let mac = node.mac;
        let vtep = IpNet::new(node.lease.network(), 32).expect("vtep address");
        let switch = &switch;
        let port_name = port.clone();
        link::blocking(Some(&node.ns), |netlink: Netlink| async move {
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
            // flannel reuses the VtepMAC from its node annotation.
            netlink.set_mac("flannel.1", &mac).await?;
            netlink.add_address("flannel.1", vtep).await?;
            netlink.set_up("flannel.1").await
        })
        .expect("node setup");
        link::blocking(Some(switch), |netlink: Netlink| async move {
            netlink.set_master(&port, "br0").await?;
            netlink.set_up(&port).await
        })
        .expect("switch port");
    }

    // Each node learns the other as flannel does from the node annotations.
    for (me, other) in [(&nodes[0], &nodes[1]), (&nodes[1], &nodes[0])] {
        let (gateway, lease, mac, public) =
            (other.lease.network(), other.lease, other.mac, other.public);
        link::blocking(Some(&me.ns), |netlink: Netlink| async move {
            netlink.add_neighbour("flannel.1", gateway, &mac).await?;
            netlink.add_fdb("flannel.1", &mac, public).await?;
            netlink
                .add_route(&RouteSpec {
                    destination: lease,
                    gateway: Some(gateway),
                    device: Some("flannel.1".into()),
                    onlink: true,
                })
                .await
        })
        .expect("peer entries");
    }

    let vtep = link::get(Some(&nodes[0].ns), "flannel.1").expect("flannel.1");
    assert_eq!(vtep.mtu, 1450);
    assert_eq!(vtep.mac.as_deref(), Some(&nodes[0].mac[..]));
    let vxlan = vtep.vxlan.expect("vxlan");
    assert_eq!(
        (vxlan.vni, vxlan.port, vxlan.learning),
        (Some(1), Some(8472), Some(false))
    );

    // Underlay first, then the overlay: A's flannel.1 to B's.
    for (from, to) in [
        (&nodes[0], "192.0.2.2"),
        (&nodes[0], "10.42.1.0"),
        (&nodes[1], "10.42.0.0"),
    ] {
        let out = from
            .ns
            .command("ping")
            .expect("command")
            .args(["-c", "1", "-W", "2", to])
            .output()
            .expect("ping runs");
        assert!(
            out.status.success(),
            "ping {to}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
