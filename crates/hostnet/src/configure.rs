//! Changing a namespace's network: the writes a lab node and flannel's data
//! plane need, each the typed twin of one `ip` or `bridge` command.
//!
//! These act on whatever namespace the [`Netlink`] was opened in. Open it
//! with [`Netlink::connect_in`] on a namespace you made: in the machine's own
//! namespace (this process's, or init's) every change is refused ([`crate::link::Error::HostNamespace`])
//! unless [`Netlink::allow_host_changes`] was called.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::neighbour::{NeighbourFlags, NeighbourMessage, NeighbourState};
use rtnetlink::packet_route::route::RouteFlags;
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};

use crate::link::{Error, Netlink, fdb_from, neighbour_from, request};
use crate::netns::Netns;

type Result<T, E = Error> = std::result::Result<T, E>;

/// A VXLAN device as flannel creates `flannel.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    /// Device name (`flannel.1`).
    pub name: String,
    /// VNI (flannel: 1).
    pub vni: u32,
    /// UDP port (flannel: 8472).
    pub port: u16,
    /// Local tunnel address (the node's public IP).
    pub local: Option<IpAddr>,
    /// The underlay device it sends through.
    pub underlay: Option<String>,
    /// Whether to learn remote MACs (flannel: false).
    pub learning: bool,
}

/// A route to add: `ip route add DST [via GW] [dev DEV] [onlink]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination.
    pub destination: IpNet,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Output device.
    pub device: Option<String>,
    /// Take the gateway as directly reachable (flannel's routes).
    pub onlink: bool,
}

impl Netlink {
    /// `ip link add NAME type veth peer name PEER`, then moves the peer into
    /// `peer_ns` when given. Both ends start down.
    pub async fn add_veth(&self, name: &str, peer: &str, peer_ns: Option<&Netns>) -> Result<()> {
        self.check_writable()?;
        self.handle
            .link()
            .add(LinkVeth::new(name, peer).build())
            .execute()
            .await
            .map_err(request(format!("add veth {name}/{peer}")))?;
        if let Some(ns) = peer_ns {
            self.move_to(peer, ns).await?;
        }
        Ok(())
    }

    /// `ip link add NAME type bridge`.
    pub async fn add_bridge(&self, name: &str) -> Result<()> {
        self.check_writable()?;
        self.handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
            .map_err(request(format!("add bridge {name}")))
    }

    /// `ip link add NAME type vxlan id VNI [local IP] [dev UNDERLAY] dstport PORT [nolearning]`.
    pub async fn add_vxlan(&self, spec: &VxlanSpec) -> Result<()> {
        self.check_writable()?;
        let mut builder = LinkVxlan::new(&spec.name, spec.vni)
            .port(spec.port)
            .learning(spec.learning);
        match spec.local {
            Some(IpAddr::V4(ip)) => builder = builder.local(ip),
            Some(IpAddr::V6(ip)) => builder = builder.local6(ip),
            None => {}
        }
        if let Some(underlay) = &spec.underlay {
            builder = builder.dev(self.index_of(underlay).await?);
        }
        self.handle
            .link()
            .add(builder.build())
            .execute()
            .await
            .map_err(request(format!("add vxlan {}", spec.name)))
    }

    /// `ip link del NAME`.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(request(format!("delete link {name}")))
    }

    /// `ip link set NAME mtu MTU`.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
            .execute()
            .await
            .map_err(request(format!("set {name} mtu {mtu}")))
    }

    /// `ip link set NAME address MAC`.
    pub async fn set_mac(&self, name: &str, mac: &[u8]) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .address(mac.to_vec())
                    .build(),
            )
            .execute()
            .await
            .map_err(request(format!("set {name} address")))
    }

    /// `ip link set NAME master BRIDGE`.
    pub async fn set_master(&self, name: &str, bridge: &str) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        let master = self.index_of(bridge).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).controller(master).build())
            .execute()
            .await
            .map_err(request(format!("set {name} master {bridge}")))
    }

    /// `ip link set NAME netns NS`.
    pub async fn move_to(&self, name: &str, ns: &Netns) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .setns_by_fd(ns.as_fd().as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(request(format!("move {name} to another namespace")))
    }

    /// `ip addr add ADDRESS dev NAME`.
    pub async fn add_address(&self, name: &str, address: IpNet) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        self.handle
            .address()
            .add(index, address.addr(), address.prefix_len())
            .execute()
            .await
            .map_err(request(format!("add {address} to {name}")))
    }

    /// `ip route add ...`, in the main table.
    pub async fn add_route(&self, route: &RouteSpec) -> Result<()> {
        self.check_writable()?;
        let what = || format!("add route {}", route.destination);
        // rtnetlink does not export the error type, so it is only displayed.
        let invalid = |e| Error::BadRoute(format!("{}: {e}", what()));
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(route.destination.addr(), route.destination.prefix_len())
            .map_err(invalid)?;
        if let Some(gateway) = route.gateway {
            builder = builder.gateway(gateway).map_err(invalid)?;
        }
        if let Some(device) = &route.device {
            builder = builder.output_interface(self.index_of(device).await?);
        }
        let mut message = builder.build();
        if route.onlink {
            message.header.flags |= RouteFlags::Onlink;
        }
        self.handle
            .route()
            .add(message)
            .execute()
            .await
            .map_err(request(what()))
    }

    /// `ip neigh replace IP lladdr MAC dev NAME nud permanent`.
    pub async fn add_neighbour(&self, name: &str, ip: IpAddr, mac: &[u8]) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        self.handle
            .neighbours()
            .add(index, ip)
            .link_layer_address(mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(request(format!("add neighbour {ip} on {name}")))
    }

    /// `bridge fdb replace MAC dev NAME dst IP self permanent`: where a
    /// VXLAN device sends frames for `mac`.
    pub async fn add_fdb(&self, name: &str, mac: &[u8], destination: IpAddr) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        self.handle
            .neighbours()
            .add_bridge(index, mac)
            .destination(destination)
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(request(format!("add fdb entry on {name}")))
    }

    /// `ip addr del ADDRESS dev NAME`.
    pub async fn delete_address(&self, name: &str, address: IpNet) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        let what = || format!("delete {address} from {name}");
        let found: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(address.addr())
            .execute()
            .try_collect()
            .await
            .map_err(request(what()))?;
        let message = found
            .into_iter()
            .find(|m| m.header.prefix_len == address.prefix_len())
            .ok_or_else(|| Error::NotFound(what()))?;
        self.handle
            .address()
            .del(message)
            .execute()
            .await
            .map_err(request(what()))
    }

    /// `ip route del ...`, in the main table.
    pub async fn delete_route(&self, route: &RouteSpec) -> Result<()> {
        self.check_writable()?;
        let what = || format!("delete route {}", route.destination);
        let invalid = |e| Error::BadRoute(format!("{}: {e}", what()));
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(route.destination.addr(), route.destination.prefix_len())
            .map_err(invalid)?;
        if let Some(gateway) = route.gateway {
            builder = builder.gateway(gateway).map_err(invalid)?;
        }
        if let Some(device) = &route.device {
            builder = builder.output_interface(self.index_of(device).await?);
        }
        self.handle
            .route()
            .del(builder.build())
            .execute()
            .await
            .map_err(request(what()))
    }

    /// `ip neigh del IP dev NAME`.
    pub async fn delete_neighbour(&self, name: &str, ip: IpAddr) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        let what = format!("delete neighbour {ip} on {name}");
        let family = match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        let entry = self
            .find_neighbour(family, &what, |m| {
                m.header.ifindex == index && neighbour_from(m).is_some_and(|n| n.ip == ip)
            })
            .await?;
        self.handle
            .neighbours()
            .del(entry)
            .execute()
            .await
            .map_err(request(what))
    }

    /// `bridge fdb del MAC dev NAME [dst IP] self`.
    pub async fn delete_fdb(
        &self,
        name: &str,
        mac: &[u8],
        destination: Option<IpAddr>,
    ) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        let what = format!("delete fdb entry on {name}");
        let entry = self
            .find_neighbour(AddressFamily::Bridge, &what, |m| {
                m.header.ifindex == index
                    && fdb_from(m).is_some_and(|f| {
                        f.mac == mac && destination.is_none_or(|d| f.destination == Some(d))
                    })
            })
            .await?;
        self.handle
            .neighbours()
            .del(entry)
            .execute()
            .await
            .map_err(request(what))
    }

    async fn find_neighbour(
        &self,
        family: AddressFamily,
        what: &str,
        wanted: impl Fn(&NeighbourMessage) -> bool,
    ) -> Result<NeighbourMessage> {
        let entries: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute()
            .try_collect()
            .await
            .map_err(request(what))?;
        entries
            .into_iter()
            .find(|m| wanted(m))
            .ok_or_else(|| Error::NotFound(what.to_owned()))
    }
}
