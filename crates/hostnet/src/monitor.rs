//! Netlink notifications: the kernel telling us, as it happens, that a
//! link, an address, a route, a neighbour or an FDB entry changed.
//!
//! This is how the node agent notices within milliseconds that flannel's
//! data plane broke (`flannel.1` deleted, a peer's neighbour, FDB entry or
//! route removed, `cni0` losing its address) instead of polling for it.
//!
//! A [`Monitor`] is a netlink socket opened inside the namespace to watch
//! and subscribed to the link, IPv4/IPv6 address, IPv4/IPv6 route and
//! neighbour groups (the neighbour group also carries bridge-family FDB
//! entries, such as flannel's `bridge fdb ... self permanent` on
//! `flannel.1`). Raw messages become small [`Change`] values through a pure
//! function ([`change_from`]), tested without a kernel. A `Change` says
//! *what kind* of thing changed, not its new state: the consumer re-reads
//! what it cares about with [`crate::link::Netlink`].
//!
//! The kernel drops notifications when the socket's receive buffer is full
//! and then fails the next read with `ENOBUFS`. That is reported as
//! [`Change::Overrun`]: something was lost, so the consumer must re-read
//! everything rather than trust that nothing happened.

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::constants::{
    RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_LINK,
    RTMGRP_NEIGH,
};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::neighbour::NeighbourMessage;
use rtnetlink::packet_route::route::RouteMessage;
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{Socket, SocketAddr, TokioSocket, protocols::NETLINK_ROUTE};

use crate::link::Family;
use crate::netns::{self, Netns};

/// The groups a monitor joins (`RTMGRP_*` bits).
const GROUPS: u32 = RTMGRP_LINK
    | RTMGRP_NEIGH
    | RTMGRP_IPV4_IFADDR
    | RTMGRP_IPV6_IFADDR
    | RTMGRP_IPV4_ROUTE
    | RTMGRP_IPV6_ROUTE;

/// The receive buffer [`Config::default`] asks for.
pub const DEFAULT_RECEIVE_BUFFER: usize = 1 << 20;

/// Why a monitor could not be opened or stopped working. [`Error::Closed`]
/// is worth reopening (and re-reading everything); the others need a fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The netlink socket could not be opened.
    #[error("failed to open a netlink socket for notifications")]
    Connect(#[source] io::Error),
    /// Joining the notification groups failed.
    #[error("failed to subscribe to link, address, route and neighbour notifications")]
    Subscribe(#[source] io::Error),
    /// A monitor needs a tokio runtime with I/O enabled.
    #[error("the netlink monitor needs a tokio runtime with I/O enabled; open it from inside one")]
    NoRuntime,
    /// The namespace could not be used.
    #[error(transparent)]
    Netns(#[from] netns::Error),
    /// The socket stopped delivering (a read error, an undecodable message).
    #[error("the netlink notification socket closed; reopen the monitor and re-read everything")]
    Closed,
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// One notification, reduced to what changed and where.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A link appeared, changed (up/down, MTU, master...) or was deleted.
    Link {
        /// Interface index.
        index: u32,
        /// Its name, when the message carried it.
        name: Option<String>,
        /// The link was deleted (not merely released from a bridge).
        removed: bool,
    },
    /// An IPv4 or IPv6 address was added to or removed from a link.
    Address {
        /// Interface index.
        index: u32,
        /// The address was removed.
        removed: bool,
    },
    /// A route was added, changed or removed.
    Route {
        /// Its family.
        family: Family,
        /// The route was removed.
        removed: bool,
    },
    /// An ARP/NDP neighbour entry changed.
    Neighbour {
        /// Interface index.
        index: u32,
        /// The entry was removed.
        removed: bool,
    },
    /// A bridge or VXLAN forwarding-database entry changed.
    Fdb {
        /// Interface index.
        index: u32,
        /// The entry was removed.
        removed: bool,
    },
    /// The kernel dropped notifications (socket buffer full): re-read everything.
    Overrun,
}

/// How a monitor's socket is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Receive buffer in bytes (`SO_RCVBUF`; as root `SO_RCVBUFFORCE`, so
    /// the system limit does not cap it). Bigger survives longer bursts
    /// before an [`Change::Overrun`].
    pub receive_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            receive_buffer: DEFAULT_RECEIVE_BUFFER,
        }
    }
}

/// A subscription to a namespace's link, address, route, neighbour and FDB
/// notifications. Read it with [`Monitor::next`] or as a [`Stream`] (which
/// ends when the socket closes).
#[derive(Debug)]
pub struct Monitor {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Monitor {
    /// Watches the calling thread's namespace. Needs a tokio runtime.
    pub fn open() -> Result<Self> {
        Self::open_with(None, &Config::default())
    }

    /// Watches `ns`: the socket is opened on a short-lived thread inside it,
    /// then read on the caller's runtime.
    pub fn open_in(ns: &Netns) -> Result<Self> {
        Self::open_with(Some(ns), &Config::default())
    }

    /// Watches `ns` (the calling thread's namespace when `None`) with `config`.
    pub fn open_with(ns: Option<&Netns>, config: &Config) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        let fd = match ns {
            Some(ns) => ns.run(|| open_socket(config))??,
            None => open_socket(config)?,
        };
        // SAFETY: `fd` is a netlink socket we own; ownership moves into the
        // tokio socket, which closes it.
        let socket = unsafe { TokioSocket::from_raw_fd(fd.into_raw_fd()) };
        // No requests are ever sent on this connection, so every message
        // (an overrun included) arrives as an unsolicited one.
        let (connection, _handle, messages) = rtnetlink::from_socket(socket);
        Ok(Monitor {
            messages,
            connection: tokio::spawn(connection),
        })
    }

    /// The next change. [`Error::Closed`] when the socket stopped delivering:
    /// reopen and re-read everything.
    pub async fn next(&mut self) -> Result<Change> {
        futures::StreamExt::next(self).await.ok_or(Error::Closed)
    }
}

impl Stream for Monitor {
    type Item = Change;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Change>> {
        loop {
            match Pin::new(&mut self.messages).poll_next(cx) {
                Poll::Ready(Some((message, _))) => {
                    if let Some(change) = change_from(&message) {
                        return Poll::Ready(Some(change));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn open_socket(config: &Config) -> Result<OwnedFd> {
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(Error::Connect)?;
    socket
        .bind(&SocketAddr::new(0, GROUPS))
        .map_err(Error::Subscribe)?;
    let fd = {
        // SAFETY: into_raw_fd hands over sole ownership of a valid descriptor.
        unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) }
    };
    let size = config.receive_buffer;
    // As root the system's rmem_max does not apply; otherwise ask within it.
    if nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBufForce, &size).is_err() {
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBuf, &size)
            .map_err(|e| Error::Subscribe(e.into()))?;
    }
    Ok(fd)
}

/// A raw rtnetlink notification as a [`Change`]; `None` for what a monitor
/// does not report (rules, traffic control, acknowledgements...).
pub fn change_from(message: &NetlinkMessage<RouteNetlinkMessage>) -> Option<Change> {
    let inner = match &message.payload {
        NetlinkPayload::Overrun(_) => return Some(Change::Overrun),
        NetlinkPayload::InnerMessage(inner) => inner,
        _ => return None,
    };
    use RouteNetlinkMessage as M;
    Some(match inner {
        M::NewLink(link) => link_change(link, false),
        M::DelLink(link) => link_change(link, true),
        M::NewAddress(address) => Change::Address {
            index: address.header.index,
            removed: false,
        },
        M::DelAddress(address) => Change::Address {
            index: address.header.index,
            removed: true,
        },
        M::NewRoute(route) => route_change(route, false)?,
        M::DelRoute(route) => route_change(route, true)?,
        M::NewNeighbour(neighbour) => neighbour_change(neighbour, false),
        M::DelNeighbour(neighbour) => neighbour_change(neighbour, true),
        _ => return None,
    })
}

fn link_change(link: &LinkMessage, deleted: bool) -> Change {
    let name = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    });
    Change::Link {
        index: link.header.index,
        name,
        // A bridge-family RTM_DELLINK means a port left its bridge; the
        // device itself lives on.
        removed: deleted && link.header.interface_family != AddressFamily::Bridge,
    }
}

fn route_change(route: &RouteMessage, removed: bool) -> Option<Change> {
    let family = match route.header.address_family {
        AddressFamily::Inet => Family::V4,
        AddressFamily::Inet6 => Family::V6,
        _ => return None,
    };
    Some(Change::Route { family, removed })
}

fn neighbour_change(neighbour: &NeighbourMessage, removed: bool) -> Change {
    let index = neighbour.header.ifindex;
    if neighbour.header.family == AddressFamily::Bridge {
        Change::Fdb { index, removed }
    } else {
        Change::Neighbour { index, removed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::NetlinkHeader;
    use rtnetlink::packet_route::address::AddressMessage;

    fn message(inner: RouteNetlinkMessage) -> NetlinkMessage<RouteNetlinkMessage> {
        NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(inner),
        )
    }

    fn link(index: u32, family: AddressFamily, name: Option<&str>) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.header.interface_family = family;
        if let Some(name) = name {
            link.attributes.push(LinkAttribute::IfName(name.into()));
        }
        link
    }

    #[test]
    fn links_map_with_name_and_removal() {
        let new = message(RouteNetlinkMessage::NewLink(link(
            5,
            AddressFamily::Unspec,
            Some("flannel.1"),
        )));
        assert_eq!(
            change_from(&new),
            Some(Change::Link {
                index: 5,
                name: Some("flannel.1".into()),
                removed: false
            })
        );
        let deleted = message(RouteNetlinkMessage::DelLink(link(
            5,
            AddressFamily::Unspec,
            None,
        )));
        assert_eq!(
            change_from(&deleted),
            Some(Change::Link {
                index: 5,
                name: None,
                removed: true
            })
        );
        // A veth leaving cni0 is not a deleted link.
        let released = message(RouteNetlinkMessage::DelLink(link(
            9,
            AddressFamily::Bridge,
            Some("veth1"),
        )));
        assert_eq!(
            change_from(&released),
            Some(Change::Link {
                index: 9,
                name: Some("veth1".into()),
                removed: false
            })
        );
    }

    #[test]
    fn addresses_routes_neighbours_and_fdb_map() {
        let mut address = AddressMessage::default();
        address.header.index = 3;
        assert_eq!(
            change_from(&message(RouteNetlinkMessage::DelAddress(address))),
            Some(Change::Address {
                index: 3,
                removed: true
            })
        );

        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet6;
        assert_eq!(
            change_from(&message(RouteNetlinkMessage::NewRoute(route.clone()))),
            Some(Change::Route {
                family: Family::V6,
                removed: false
            })
        );
        route.header.address_family = AddressFamily::Mpls;
        assert_eq!(
            change_from(&message(RouteNetlinkMessage::DelRoute(route))),
            None
        );

        let mut neighbour = NeighbourMessage::default();
        neighbour.header.ifindex = 4;
        neighbour.header.family = AddressFamily::Inet;
        assert_eq!(
            change_from(&message(RouteNetlinkMessage::DelNeighbour(
                neighbour.clone()
            ))),
            Some(Change::Neighbour {
                index: 4,
                removed: true
            })
        );
        neighbour.header.family = AddressFamily::Bridge;
        assert_eq!(
            change_from(&message(RouteNetlinkMessage::NewNeighbour(neighbour))),
            Some(Change::Fdb {
                index: 4,
                removed: false
            })
        );
    }

    #[test]
    fn overrun_is_reported_and_the_rest_ignored() {
        let overrun = NetlinkMessage::<RouteNetlinkMessage>::new(
            NetlinkHeader::default(),
            NetlinkPayload::Overrun(Vec::new()),
        );
        assert_eq!(change_from(&overrun), Some(Change::Overrun));
        let done = NetlinkMessage::<RouteNetlinkMessage>::new(
            NetlinkHeader::default(),
            NetlinkPayload::Noop,
        );
        assert_eq!(change_from(&done), None);
        let rule = message(RouteNetlinkMessage::NewRule(Default::default()));
        assert_eq!(change_from(&rule), None);
    }
}
