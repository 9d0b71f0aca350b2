//! Faults applied to a running node at once (`rebootguard-lab break`), the
//! ones a node agent must notice and heal while the node runs, as opposed
//! to the boot faults of [`crate::scenario::Fault`], armed for a node's next
//! boot.
//!
//! Each one changes the kernel or a file the way the real failure does and
//! reports the wall-clock instant the change returned, so a benchmark can
//! measure "fault applied → the agent's condition changed on the API"
//! against kubesim's clock (both are the system clock). What the emulated
//! flannel repairs, it repairs only when k3s restarts on that node, like the
//! vxlan backend of the flannel versions k3s embeds.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::SystemTime;

use futures::TryStreamExt as _;
use ipnet::Ipv4Net;
use rebootguard_hostnet::netns::Netns;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use serde::{Deserialize, Serialize};

use crate::node::VTEP;

/// A fault applied to a running node at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum RuntimeFault {
    /// `run/flannel/subnet.env` is removed (someone cleaned `/run`).
    DeleteSubnetEnv,
    /// `subnet.env` is atomically replaced by a copy without its
    /// `FLANNEL_MTU` line, which the flannel CNI plugin refuses
    /// (`... is missing FLANNEL_MTU`).
    CorruptSubnetEnv,
    /// `flannel.1` is deleted; flannel does not recreate it until k3s
    /// restarts.
    DeleteFlannelLink,
    /// The peer's FDB entry, neighbour entry and onlink route on
    /// `flannel.1` are deleted; flannel's peer loop only programs what
    /// changes in the API, so they stay gone until k3s restarts.
    DropPeer {
        /// The peer node whose entries go.
        peer: String,
    },
    /// The emulated flannel stops maintaining its state (its peer loop
    /// ends: nothing repaired or added for new or changed peers) until k3s
    /// restarts.
    StopFlannel,
}

impl RuntimeFault {
    /// Every fault's name, as the command line takes it.
    pub const NAMES: [&'static str; 5] = [
        "delete-subnet-env",
        "corrupt-subnet-env",
        "delete-flannel-link",
        "drop-peer",
        "stop-flannel",
    ];

    /// The fault named `name`; `peer` is required by `drop-peer` and refused
    /// by the others.
    pub fn parse(name: &str, peer: Option<&str>) -> Result<RuntimeFault, String> {
        let fault = match name {
            "delete-subnet-env" => RuntimeFault::DeleteSubnetEnv,
            "corrupt-subnet-env" => RuntimeFault::CorruptSubnetEnv,
            "delete-flannel-link" => RuntimeFault::DeleteFlannelLink,
            "stop-flannel" => RuntimeFault::StopFlannel,
            "drop-peer" => {
                let peer = peer.ok_or("drop-peer needs the PEER whose entries to drop")?;
                return Ok(RuntimeFault::DropPeer {
                    peer: peer.to_owned(),
                });
            }
            other => {
                return Err(format!(
                    "unknown fault {other:?}; one of {}",
                    Self::NAMES.join(", ")
                ));
            }
        };
        match peer {
            Some(p) => Err(format!("{name} takes no PEER (got {p:?})")),
            None => Ok(fault),
        }
    }

    /// The kebab-case name.
    pub fn name(&self) -> &'static str {
        match self {
            RuntimeFault::DeleteSubnetEnv => "delete-subnet-env",
            RuntimeFault::CorruptSubnetEnv => "corrupt-subnet-env",
            RuntimeFault::DeleteFlannelLink => "delete-flannel-link",
            RuntimeFault::DropPeer { .. } => "drop-peer",
            RuntimeFault::StopFlannel => "stop-flannel",
        }
    }
}

impl std::fmt::Display for RuntimeFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeFault::DropPeer { peer } => write!(f, "drop-peer {peer}"),
            other => f.write_str(other.name()),
        }
    }
}

/// Why a runtime fault could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is nothing for the fault to remove or change.
    #[error("nothing to break: {0}")]
    Nothing(String),
    /// A file could not be changed.
    #[error("failed to change {0}")]
    File(PathBuf, #[source] std::io::Error),
    /// Netlink refused.
    #[error("failed to {0}")]
    Netlink(String),
}

/// `subnet.env` without its `FLANNEL_MTU` line(s).
pub fn without_mtu(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("FLANNEL_MTU="))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// What [`drop_peer`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Neighbour entries.
    pub neighbours: usize,
    /// FDB entries.
    pub fdb: usize,
    /// Routes.
    pub routes: usize,
}

/// Runs rtnetlink `work` inside `ns` on a thread of its own; returns its
/// result and the instant it returned.
fn in_netns<T, F, Fut>(ns: &Netns, what: &str, work: F) -> Result<(T, SystemTime), Error>
where
    F: FnOnce(rtnetlink::Handle) -> Fut + Send,
    Fut: std::future::Future<Output = Result<T, Error>>,
    T: Send,
{
    let fail = |e: String| Error::Netlink(format!("{what}: {e}"));
    ns.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        runtime.block_on(async {
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(|e| fail(e.to_string()))?;
            let conn = tokio::spawn(connection);
            let out = work(handle).await;
            let at = SystemTime::now();
            conn.abort();
            out.map(|v| (v, at))
        })
    })
    .map_err(|e| fail(e.to_string()))?
}

async fn vtep_index(handle: &rtnetlink::Handle) -> Result<u32, Error> {
    let missing = || Error::Nothing(format!("{VTEP} does not exist"));
    let link: Option<LinkMessage> = handle
        .link()
        .get()
        .match_name(VTEP.to_owned())
        .execute()
        .try_next()
        .await
        .map_err(|e| match e {
            rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::ENODEV => missing(),
            other => Error::Netlink(format!("look up {VTEP}: {other}")),
        })?;
    link.map(|l| l.header.index).ok_or_else(missing)
}

/// Deletes `flannel.1` in `ns`; the instant the kernel confirmed.
pub fn delete_link(ns: &Netns) -> Result<SystemTime, Error> {
    in_netns(ns, &format!("delete {VTEP}"), |handle| async move {
        let index = vtep_index(&handle).await?;
        handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| Error::Netlink(format!("delete {VTEP}: {e}")))
    })
    .map(|((), at)| at)
}

/// Deletes, in `ns`, the neighbour entry (`lease`'s network address), the
/// FDB entries (`mac`) and the route (`lease`) flannel programmed on
/// `flannel.1` for one peer; what went and the instant the last deletion
/// returned. Nothing found is an error.
pub fn drop_peer(ns: &Netns, lease: Ipv4Net, mac: [u8; 6]) -> Result<(Dropped, SystemTime), Error> {
    let (dropped, at) = in_netns(ns, "drop a peer's entries", |handle| async move {
        let index = vtep_index(&handle).await?;
        let fail = |what: &str| {
            let what = what.to_owned();
            move |e: rtnetlink::Error| Error::Netlink(format!("{what}: {e}"))
        };
        let mut dropped = Dropped::default();
        let neighbours: Vec<_> = handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Inet)
            .execute()
            .try_collect()
            .await
            .map_err(fail("list neighbours"))?;
        let gateway = NeighbourAddress::Inet(lease.network());
        for n in neighbours {
            let ours = n.header.ifindex == index
                && n.attributes
                    .iter()
                    .any(|a| matches!(a, NeighbourAttribute::Destination(d) if *d == gateway));
            if ours {
                handle
                    .neighbours()
                    .del(n)
                    .execute()
                    .await
                    .map_err(fail("delete a neighbour"))?;
                dropped.neighbours += 1;
            }
        }
        let fdb: Vec<_> = handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute()
            .try_collect()
            .await
            .map_err(fail("list fdb entries"))?;
        for e in fdb {
            let ours = e.header.ifindex == index
                && e.attributes.iter().any(
                    |a| matches!(a, NeighbourAttribute::LinkLayerAddress(m) if m.as_slice() == mac),
                );
            if ours {
                handle
                    .neighbours()
                    .del(e)
                    .execute()
                    .await
                    .map_err(fail("delete an fdb entry"))?;
                dropped.fdb += 1;
            }
        }
        let query = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes: Vec<_> = handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(fail("list routes"))?;
        for r in routes {
            let ours = r.header.destination_prefix_length == lease.prefix_len()
                && r.attributes.iter().any(|a| {
                    matches!(a, RouteAttribute::Destination(RouteAddress::Inet(d)) if *d == lease.network())
                })
                && r.attributes
                    .iter()
                    .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index));
            if ours {
                handle
                    .route()
                    .del(r)
                    .execute()
                    .await
                    .map_err(fail("delete a route"))?;
                dropped.routes += 1;
            }
        }
        Ok(dropped)
    })?;
    if dropped == Dropped::default() {
        return Err(Error::Nothing(format!(
            "no neighbour, fdb entry or route for {lease} ({}) on {VTEP}",
            IpAddr::V4(lease.network())
        )));
    }
    Ok((dropped, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_peers() {
        for name in RuntimeFault::NAMES {
            let peer = (name == "drop-peer").then_some("theoden");
            let f = RuntimeFault::parse(name, peer).unwrap();
            assert_eq!(f.name(), name);
        }
        assert_eq!(
            RuntimeFault::parse("drop-peer", Some("theoden"))
                .unwrap()
                .to_string(),
            "drop-peer theoden"
        );
        assert!(
            RuntimeFault::parse("drop-peer", None)
                .unwrap_err()
                .contains("needs the PEER")
        );
        assert!(
            RuntimeFault::parse("stop-flannel", Some("x"))
                .unwrap_err()
                .contains("takes no PEER")
        );
        assert!(
            RuntimeFault::parse("nope", None)
                .unwrap_err()
                .contains("one of delete-subnet-env")
        );
        let json = serde_json::to_string(&RuntimeFault::DropPeer {
            peer: "theoden".into(),
        })
        .unwrap();
        assert_eq!(json, r#"{"fault":"drop-peer","peer":"theoden"}"#);
    }

    #[test]
    fn corrupting_drops_only_the_mtu() {
        let env = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
        let bad = without_mtu(env);
        assert_eq!(
            bad,
            "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPMASQ=true\n"
        );
        let parsed = rebootguard_flannel::subnet_env::parse(bad.as_bytes());
        assert!(parsed.into_valid().is_err(), "the plugin must refuse it");
    }
}
