//! Links, addresses and routes of a namespace, read over rtnetlink.
//!
//! A [`Netlink`] is a socket opened *inside* a namespace (the socket stays
//! bound to the namespace it was created in), then driven from any tokio
//! runtime: no thread has to sit in the namespace while requests run.
//! rtnetlink's raw messages are turned into small typed values ([`Link`],
//! [`Route`]) by pure functions, so the mapping is tested without a kernel.
//!
//! [`Netlink::underlay`] answers the question `node restore` asks when
//! `flannel.1` does not exist yet: which interface carries the default route,
//! and what is its MTU (flannel's vxlan MTU is that minus 50).

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteType,
};
use rtnetlink::sys::{Socket, TokioSocket, protocols::NETLINK_ROUTE};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::netns::{self, Netns};

/// Why reading (or changing) a namespace's network failed. `Request`
/// failures are worth one retry (the kernel may be busy); the others are not.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening the netlink socket failed.
    #[error("failed to open a netlink socket")]
    Connect(#[source] io::Error),
    /// A netlink socket needs a tokio runtime with I/O enabled.
    #[error("netlink needs a tokio runtime with I/O enabled; call this from inside one")]
    NoRuntime,
    /// Building a runtime for the blocking helpers failed.
    #[error("failed to start a tokio runtime for netlink")]
    Runtime(#[source] io::Error),
    /// The namespace could not be used.
    #[error(transparent)]
    Netns(#[from] netns::Error),
    /// The kernel refused or failed a request.
    #[error("netlink request failed: {what}")]
    Request {
        /// What was asked.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// No link of that name in the namespace.
    #[error("no network interface named {0:?} in this namespace")]
    NoSuchLink(String),
    /// No default route, so no underlay interface.
    #[error(
        "no default route in this namespace, so the underlay interface (and its MTU) is unknown; \
         bring up the node's uplink first, or pass the MTU explicitly"
    )]
    NoDefaultRoute,
    /// A route that cannot be expressed (mixed address families).
    #[error("invalid route: {0}")]
    BadRoute(String),
    /// A change was asked of the machine's own namespace without
    /// [`Netlink::allow_host_changes`].
    #[error(
        "refusing to change the machine's own network namespace; open the handle in a namespace you made, \
         or call allow_host_changes() if changing the host is really meant"
    )]
    HostNamespace,
    /// Nothing matched what was to be deleted (an address, a neighbour...).
    #[error("{0}: no such entry")]
    NotFound(String),
    /// The default route has no single output interface (multipath).
    #[error("the default route {0} has no single output interface; pass the MTU explicitly")]
    NoRouteInterface(IpNet),
}

impl Error {
    /// Whether trying again may help: a failed request (the kernel may have
    /// been busy). The rest name something to fix or a state to accept.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Request { .. })
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// RFC 2863 operational state, as the kernel reports it (`ip link`'s `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperState {
    /// Up and able to pass packets.
    Up,
    /// Down.
    Down,
    /// Down because a lower link is (a veth whose peer is down).
    LowerLayerDown,
    /// The driver does not track it (loopback, some virtual devices).
    Unknown,
    /// Waiting for an external event.
    Dormant,
    /// A component is missing.
    NotPresent,
    /// In test mode.
    Testing,
    /// A state this crate does not know.
    Other(u8),
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// MTU in bytes.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operational state.
    pub state: OperState,
    /// Hardware address, if it has one.
    pub mac: Option<Vec<u8>>,
    /// Device kind (`veth`, `bridge`, `vxlan`...); `None` for physical ones and `lo`.
    pub kind: Option<String>,
    /// Index of the bridge (or bond) it is enslaved to.
    pub master: Option<u32>,
    /// Its addresses with prefix length, IPv4 first, in kernel order.
    pub addresses: Vec<IpNet>,
    /// VXLAN settings, for a `vxlan` device such as `flannel.1`.
    pub vxlan: Option<Vxlan>,
}

/// A VXLAN device's settings (what `ip -d link show flannel.1` prints).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vxlan {
    /// VNI (flannel: 1).
    pub vni: Option<u32>,
    /// UDP destination port (flannel: 8472, the kernel's default when 0 is asked).
    pub port: Option<u16>,
    /// Local tunnel address.
    pub local: Option<IpAddr>,
    /// Index of the underlay link it is bound to.
    pub underlay: Option<u32>,
    /// Whether the device learns remote MACs (flannel: `nolearning`, so false).
    pub learning: Option<bool>,
}

impl Link {
    /// The hardware address as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> Option<String> {
        self.mac.as_ref().map(|bytes| {
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
    }
}

/// One route of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination (`0.0.0.0/0` for a default route).
    pub destination: IpNet,
    /// Next hop, if not on-link.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Routing table (254 is main).
    pub table: u32,
    /// Metric (priority); lower wins.
    pub metric: u32,
    /// The gateway is taken as directly reachable (`onlink`), as flannel's
    /// routes via `flannel.1` are.
    pub onlink: bool,
}

/// A neighbour (ARP/NDP) entry: `ip neigh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface index.
    pub index: u32,
    /// The neighbour's IP address.
    pub ip: IpAddr,
    /// Its link-layer address, when resolved.
    pub mac: Option<Vec<u8>>,
    /// Cache state.
    pub state: NeighState,
}

/// A neighbour entry's state (NUD_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighState {
    /// Set by hand or by flannel: never expires.
    Permanent,
    /// Confirmed recently.
    Reachable,
    /// Not confirmed recently.
    Stale,
    /// Being resolved.
    Incomplete,
    /// Resolution failed.
    Failed,
    /// No resolution needed (point-to-point, loopback).
    Noarp,
    /// Delay, probe or a state this crate does not name.
    Other,
}

/// A forwarding-database entry of a bridge or VXLAN device: `bridge fdb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fdb {
    /// Interface index.
    pub index: u32,
    /// The MAC address.
    pub mac: Vec<u8>,
    /// Remote tunnel endpoint, for VXLAN entries (flannel: the peer's public IP).
    pub destination: Option<IpAddr>,
    /// Static entry (`permanent`).
    pub permanent: bool,
    /// Entry of the device itself (`self`), not of a bridge it is enslaved to.
    pub own: bool,
}

/// The interface the default route leaves by, with the route itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    /// The interface.
    pub link: Link,
    /// The default route through it.
    pub route: Route,
}

/// A netlink connection bound to one namespace.
#[derive(Debug)]
pub struct Netlink {
    pub(crate) handle: Handle,
    connection: tokio::task::JoinHandle<()>,
    /// Whether writes are allowed: not in the machine's own namespace
    /// unless the caller said so.
    writable: bool,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netlink {
    /// Connects in the calling thread's namespace. Needs a tokio runtime.
    pub fn connect() -> Result<Self> {
        let writable = !is_host(&Netns::current()?);
        Self::from_socket(open_socket()?, writable)
    }

    /// Connects inside `ns`: the socket is opened on a short-lived thread
    /// in the namespace, the requests then run on the caller's runtime.
    pub fn connect_in(ns: &Netns) -> Result<Self> {
        let socket = ns.run(open_socket)??;
        Self::from_socket(socket, !is_host(ns))
    }

    /// Allows changes even in the machine's own namespace (the one this
    /// process's main thread is in, or init's). Reads never need this; a
    /// process started inside a lab node's namespace that means to change
    /// that node's network does.
    pub fn allow_host_changes(mut self) -> Self {
        self.writable = true;
        self
    }

    /// Refuses a change in the machine's own namespace unless allowed.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::HostNamespace)
        }
    }

    fn from_socket(fd: OwnedFd, writable: bool) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        // SAFETY: `fd` is a netlink socket we own; ownership moves into the
        // tokio socket, which closes it.
        let socket = unsafe { TokioSocket::from_raw_fd(fd.into_raw_fd()) };
        let (connection, handle, _) = rtnetlink::from_socket(socket);
        Ok(Netlink {
            handle,
            connection: tokio::spawn(connection),
            writable,
        })
    }

    /// Every link, with its addresses.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let messages: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(request("list links"))?;
        let addresses = self.addresses().await?;
        Ok(messages
            .iter()
            .map(|m| {
                let mut link = link_from(m);
                link.addresses = addresses_of(&addresses, link.index);
                link
            })
            .collect())
    }

    /// The link called `name`, with its addresses.
    pub async fn link(&self, name: &str) -> Result<Link> {
        let mut link = link_from(&self.link_message(name).await?);
        link.addresses = addresses_of(&self.addresses().await?, link.index);
        Ok(link)
    }

    /// The interface index of the link called `name`.
    pub async fn index_of(&self, name: &str) -> Result<u32> {
        Ok(self.link_message(name).await?.header.index)
    }

    async fn link_message(&self, name: &str) -> Result<LinkMessage> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(Some(message)) => Ok(message),
            Ok(None) => Err(Error::NoSuchLink(name.to_owned())),
            Err(e) if is_errno(&e, nix::errno::Errno::ENODEV) => {
                Err(Error::NoSuchLink(name.to_owned()))
            }
            Err(e) => Err(request(format!("get link {name}"))(e)),
        }
    }

    /// The link with interface index `index`.
    pub async fn link_by_index(&self, index: u32) -> Result<Link> {
        let found = self
            .handle
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_next()
            .await;
        let message = match found {
            Ok(Some(message)) => message,
            Ok(None) => return Err(Error::NoSuchLink(format!("#{index}"))),
            Err(e) if is_errno(&e, nix::errno::Errno::ENODEV) => {
                return Err(Error::NoSuchLink(format!("#{index}")));
            }
            Err(e) => return Err(request(format!("get link #{index}"))(e)),
        };
        let mut link = link_from(&message);
        link.addresses = addresses_of(&self.addresses().await?, index);
        Ok(link)
    }

    async fn addresses(&self) -> Result<Vec<AddressMessage>> {
        self.handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(request("list addresses"))
    }

    /// Unicast routes of one family, every table.
    pub async fn routes(&self, family: Family) -> Result<Vec<Route>> {
        let query = match family {
            Family::V4 => RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            Family::V6 => RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        };
        let messages: Vec<RouteMessage> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(request("list routes"))?;
        Ok(messages.iter().filter_map(route_from).collect())
    }

    /// Neighbour (ARP and NDP) entries of every interface.
    pub async fn neighbours(&self) -> Result<Vec<Neighbour>> {
        let mut found = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let messages: Vec<NeighbourMessage> = self
                .handle
                .neighbours()
                .get()
                .set_address_family(family)
                .execute()
                .try_collect()
                .await
                .map_err(request("list neighbours"))?;
            found.extend(messages.iter().filter_map(neighbour_from));
        }
        Ok(found)
    }

    /// Forwarding-database entries of every bridge and VXLAN device.
    pub async fn fdb(&self) -> Result<Vec<Fdb>> {
        let messages: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute()
            .try_collect()
            .await
            .map_err(request("list fdb entries"))?;
        Ok(messages.iter().filter_map(fdb_from).collect())
    }

    /// The default route the kernel would use (IPv4 preferred, then IPv6).
    pub async fn default_route(&self) -> Result<Option<Route>> {
        for family in [Family::V4, Family::V6] {
            if let Some(route) = pick_default(&self.routes(family).await?) {
                return Ok(Some(route.clone()));
            }
        }
        Ok(None)
    }

    /// The default route's interface and MTU: the underlay flannel sends over.
    pub async fn underlay(&self) -> Result<Underlay> {
        let route = self.default_route().await?.ok_or(Error::NoDefaultRoute)?;
        let index = route
            .oif
            .ok_or(Error::NoRouteInterface(route.destination))?;
        let link = self.link_by_index(index).await?;
        Ok(Underlay { link, route })
    }

    /// Sets a link administratively up (`ip link set NAME up`).
    pub async fn set_up(&self, name: &str) -> Result<()> {
        self.check_writable()?;
        let index = self.index_of(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(request(format!("set {name} up")))
    }
}

/// Runs `work` with a [`Netlink`] inside `ns` (or the calling thread's
/// namespace when `None`), on a private thread and runtime, and blocks until
/// it is done. For callers without a tokio runtime, such as `node restore`.
pub fn blocking<T, F, Fut>(ns: Option<&Netns>, work: F) -> Result<T>
where
    F: FnOnce(Netlink) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
    T: Send,
{
    let body = move || -> Result<T> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(Error::Runtime)?;
        runtime.block_on(async move { work(Netlink::connect()?).await })
    };
    match ns {
        Some(ns) => ns.run(body)?,
        None => std::thread::scope(|scope| match scope.spawn(body).join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

/// Where FLANNEL_MTU should come from on this node, blocking: the MTU of
/// flannel's device (`flannel.1` for vxlan) when it exists, which is the
/// overlay MTU itself; otherwise the underlay's, for
/// [`rebootguard_flannel::derive()`] to take the backend's overhead off.
pub fn flannel_mtu(ns: Option<&Netns>, device: &str) -> Result<rebootguard_flannel::Mtu> {
    blocking(ns, |netlink| async move {
        match netlink.link(device).await {
            Ok(link) => Ok(rebootguard_flannel::Mtu::Overlay(link.mtu)),
            Err(Error::NoSuchLink(_)) => Ok(rebootguard_flannel::Mtu::Underlay(
                netlink.underlay().await?.link.mtu,
            )),
            Err(e) => Err(e),
        }
    })
}

/// Reads one link by name, blocking. See [`blocking`].
pub fn get(ns: Option<&Netns>, name: &str) -> Result<Link> {
    blocking(ns, |netlink| async move { netlink.link(name).await })
}

/// The underlay interface and MTU, blocking. See [`Netlink::underlay`].
pub fn underlay(ns: Option<&Netns>) -> Result<Underlay> {
    blocking(ns, |netlink| async move { netlink.underlay().await })
}

/// Whether `ns` is the machine's own namespace as far as this process can
/// tell: the one its main thread is in, or init's (pid 1) when that is
/// visible. When it cannot be told, it is assumed to be.
fn is_host(ns: &Netns) -> bool {
    let id_of = |path: &str| Netns::open(std::path::Path::new(path)).and_then(|n| n.id());
    let Ok(ours) = ns.id() else {
        return true;
    };
    let own = id_of("/proc/self/ns/net");
    let init = id_of("/proc/1/ns/net");
    own.map_or(true, |own| own == ours) || init.is_ok_and(|init| init == ours)
}

fn open_socket() -> Result<OwnedFd> {
    let socket = Socket::new(NETLINK_ROUTE).map_err(Error::Connect)?;
    // SAFETY: into_raw_fd hands over sole ownership of a valid descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) })
}

pub(crate) fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let what = what.into();
    move |source| Error::Request { what, source }
}

fn is_errno(error: &rtnetlink::Error, errno: nix::errno::Errno) -> bool {
    matches!(error, rtnetlink::Error::NetlinkError(message)
        if message.raw_code().abs() == errno as i32)
}

/// A link message as a [`Link`] (addresses are filled in separately).
pub(crate) fn link_from(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        mtu: 0,
        up: message.header.flags.contains(LinkFlags::Up),
        state: OperState::Unknown,
        mac: None,
        kind: None,
        master: None,
        addresses: Vec::new(),
        vxlan: None,
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::OperState(state) => link.state = oper_state(*state),
            LinkAttribute::Address(mac) if !mac.is_empty() => link.mac = Some(mac.clone()),
            LinkAttribute::Controller(index) => link.master = Some(*index),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                        LinkInfo::Data(InfoData::Vxlan(settings)) => {
                            link.vxlan = Some(vxlan_from(settings));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn vxlan_from(settings: &[InfoVxlan]) -> Vxlan {
    let mut vxlan = Vxlan::default();
    for setting in settings {
        match setting {
            InfoVxlan::Id(vni) => vxlan.vni = Some(*vni),
            InfoVxlan::Port(port) => vxlan.port = Some(*port),
            InfoVxlan::Local(ip) => vxlan.local = Some(IpAddr::V4(*ip)),
            InfoVxlan::Local6(ip) => vxlan.local = Some(IpAddr::V6(*ip)),
            InfoVxlan::Link(index) => vxlan.underlay = Some(*index),
            InfoVxlan::Learning(on) => vxlan.learning = Some(*on),
            _ => {}
        }
    }
    vxlan
}

/// A neighbour message as a [`Neighbour`]; `None` without an IP destination.
pub(crate) fn neighbour_from(message: &NeighbourMessage) -> Option<Neighbour> {
    let mut ip = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                ip = Some(IpAddr::V6(*a))
            }
            NeighbourAttribute::LinkLayerAddress(lla) if !lla.is_empty() => mac = Some(lla.clone()),
            _ => {}
        }
    }
    let state = match message.header.state {
        state if is_permanent(state) => NeighState::Permanent,
        NeighbourState::Reachable => NeighState::Reachable,
        NeighbourState::Stale => NeighState::Stale,
        NeighbourState::Incomplete => NeighState::Incomplete,
        NeighbourState::Failed => NeighState::Failed,
        NeighbourState::Noarp => NeighState::Noarp,
        _ => NeighState::Other,
    };
    Some(Neighbour {
        index: message.header.ifindex,
        ip: ip?,
        mac,
        state,
    })
}

/// A bridge-family neighbour message as an [`Fdb`] entry.
pub(crate) fn fdb_from(message: &NeighbourMessage) -> Option<Fdb> {
    let mut mac = None;
    let mut destination = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::LinkLayerAddress(lla) => mac = Some(lla.clone()),
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                destination = Some(IpAddr::V4(*a));
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                destination = Some(IpAddr::V6(*a));
            }
            // In the bridge family the destination is not decoded as an IP.
            NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                destination = raw_ip(bytes);
            }
            _ => {}
        }
    }
    Some(Fdb {
        index: message.header.ifindex,
        mac: mac?,
        destination,
        permanent: is_permanent(message.header.state),
        own: message.header.flags.contains(NeighbourFlags::Own),
    })
}

/// NUD states are bits, and static FDB entries carry NOARP beside PERMANENT.
fn is_permanent(state: NeighbourState) -> bool {
    u16::from(state) & u16::from(NeighbourState::Permanent) != 0
}

fn raw_ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn oper_state(state: State) -> OperState {
    match state {
        State::Up => OperState::Up,
        State::Down => OperState::Down,
        State::LowerLayerDown => OperState::LowerLayerDown,
        State::Unknown => OperState::Unknown,
        State::Dormant => OperState::Dormant,
        State::NotPresent => OperState::NotPresent,
        State::Testing => OperState::Testing,
        State::Other(other) => OperState::Other(other),
        _ => OperState::Other(u8::MAX),
    }
}

/// The addresses of link `index`, IPv4 before IPv6.
fn addresses_of(messages: &[AddressMessage], index: u32) -> Vec<IpNet> {
    let mut found: Vec<IpNet> = messages
        .iter()
        .filter(|m| m.header.index == index)
        .filter_map(|m| {
            // IFA_LOCAL is the interface's own address on point-to-point
            // links, where IFA_ADDRESS is the peer's.
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let address = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            IpNet::new(local.or(address)?, m.header.prefix_len).ok()
        })
        .collect();
    found.sort_by_key(|net| matches!(net, IpNet::V6(_)));
    found
}

/// A route message as a [`Route`]; `None` for non-unicast routes (local,
/// broadcast, multicast...) and other families.
pub(crate) fn route_from(message: &RouteMessage) -> Option<Route> {
    if message.header.kind != RouteType::Unicast {
        return None;
    }
    let mut destination = None;
    let mut gateway = None;
    let mut oif = None;
    let mut table = u32::from(message.header.table);
    let mut metric = 0;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(address) => destination = route_ip(address),
            RouteAttribute::Gateway(address) => gateway = route_ip(address),
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Priority(priority) => metric = *priority,
            _ => {}
        }
    }
    let prefix = message.header.destination_prefix_length;
    let destination = match (destination, message.header.address_family) {
        (Some(ip), _) => IpNet::new(ip, prefix).ok()?,
        (None, AddressFamily::Inet) => IpNet::new(IpAddr::from([0u8; 4]), prefix).ok()?,
        (None, AddressFamily::Inet6) => IpNet::new(IpAddr::from([0u16; 8]), prefix).ok()?,
        (None, _) => return None,
    };
    Some(Route {
        destination,
        gateway,
        oif,
        table,
        metric,
        onlink: message.header.flags.contains(RouteFlags::Onlink),
    })
}

fn route_ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// The main table's default route with the lowest metric.
pub fn pick_default(routes: &[Route]) -> Option<&Route> {
    routes
        .iter()
        .filter(|r| r.destination.prefix_len() == 0)
        .filter(|r| r.table == u32::from(RouteHeader::RT_TABLE_MAIN))
        .min_by_key(|r| r.metric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::InfoKind;

    #[test]
    fn link_message_maps_to_link() {
        let mut message = LinkMessage::default();
        message.header.index = 7;
        message.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        message.attributes = vec![
            LinkAttribute::IfName("cni0".into()),
            LinkAttribute::Mtu(1450),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::Address(vec![0xaa, 0xbb, 0xcc, 0, 1, 2]),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        let link = link_from(&message);
        assert_eq!(link.index, 7);
        assert_eq!(link.name, "cni0");
        assert_eq!(link.mtu, 1450);
        assert!(link.up);
        assert_eq!(link.state, OperState::Up);
        assert_eq!(link.kind.as_deref(), Some("bridge"));
        assert_eq!(link.mac_string().as_deref(), Some("aa:bb:cc:00:01:02"));
        assert_eq!(link.master, None);
    }

    fn route(dst: &str, table: u32, metric: u32) -> Route {
        Route {
            destination: dst.parse().expect("cidr"),
            gateway: None,
            oif: Some(2),
            table,
            metric,
            onlink: false,
        }
    }

    #[test]
    fn default_route_is_main_table_lowest_metric() {
        let routes = [
            route("10.0.0.0/8", 254, 0),
            route("0.0.0.0/0", 100, 0),
            route("0.0.0.0/0", 254, 600),
            route("0.0.0.0/0", 254, 100),
        ];
        assert_eq!(pick_default(&routes), Some(&routes[3]));
        assert_eq!(pick_default(&routes[..2]), None);
    }

    #[test]
    fn static_fdb_entries_count_as_permanent() {
        assert!(is_permanent(NeighbourState::Permanent));
        // PERMANENT | NOARP, as the kernel reports `bridge fdb ... permanent`.
        assert!(is_permanent(NeighbourState::Other(0xc0)));
        assert!(!is_permanent(NeighbourState::Reachable));
        assert_eq!(
            raw_ip(&[192, 0, 2, 20]),
            Some(IpAddr::from([192, 0, 2, 20]))
        );
        assert_eq!(raw_ip(&[1, 2, 3]), None);
    }

    #[test]
    fn route_message_maps_to_route() {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.kind = RouteType::Unicast;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.destination_prefix_length = 0;
        message.attributes = vec![
            RouteAttribute::Gateway(RouteAddress::Inet([192, 0, 2, 1].into())),
            RouteAttribute::Oif(3),
            RouteAttribute::Priority(100),
        ];
        let route = route_from(&message).expect("unicast");
        assert_eq!(
            route.destination,
            "0.0.0.0/0".parse::<IpNet>().expect("cidr")
        );
        assert_eq!(route.gateway, Some(IpAddr::from([192, 0, 2, 1])));
        assert_eq!(route.oif, Some(3));
        assert_eq!(route.metric, 100);
        message.header.kind = RouteType::Local;
        assert_eq!(route_from(&message), None);
    }
}
