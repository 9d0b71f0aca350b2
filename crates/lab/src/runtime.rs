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

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use ipnet::{IpNet, Ipv4Net};
use rebootguard_hostnet::configure::RouteSpec;
use rebootguard_hostnet::link::{self, Family, Netlink};
use rebootguard_hostnet::netns::Netns;
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
    pub fn parse(name: &str, peer: Option<&str>) -> Result<RuntimeFault, ParseError> {
        let fault = match name {
            "delete-subnet-env" => RuntimeFault::DeleteSubnetEnv,
            "corrupt-subnet-env" => RuntimeFault::CorruptSubnetEnv,
            "delete-flannel-link" => RuntimeFault::DeleteFlannelLink,
            "stop-flannel" => RuntimeFault::StopFlannel,
            "drop-peer" => {
                let peer = peer.ok_or(ParseError::NoPeer)?;
                return Ok(RuntimeFault::DropPeer {
                    peer: peer.to_owned(),
                });
            }
            other => return Err(ParseError::Unknown(other.to_owned())),
        };
        match peer {
            Some(p) => Err(ParseError::NoPeerTaken {
                fault: name.to_owned(),
                peer: p.to_owned(),
            }),
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

/// Why a fault's name and peer name no fault. Usage errors, never
/// retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No fault has that name.
    #[error("unknown fault {0:?}; one of {names}", names = RuntimeFault::NAMES.join(", "))]
    Unknown(String),
    /// `drop-peer` without its peer.
    #[error("drop-peer needs the PEER whose entries to drop")]
    NoPeer,
    /// A peer given to a fault that takes none.
    #[error("{fault} takes no PEER (got {peer:?})")]
    NoPeerTaken {
        /// The fault.
        fault: String,
        /// The peer given.
        peer: String,
    },
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

/// Runs `work` with a netlink handle inside `ns` (on a thread of its own);
/// its result and the instant it returned. A missing `flannel.1` is
/// [`Error::Nothing`].
fn in_netns<T, F, Fut>(ns: &Netns, what: &str, work: F) -> Result<(T, SystemTime), Error>
where
    F: FnOnce(Netlink) -> Fut + Send,
    Fut: std::future::Future<Output = Result<T, link::Error>>,
    T: Send,
{
    match link::blocking(Some(ns), |nl| async move {
        let out = work(nl).await?;
        Ok((out, SystemTime::now()))
    }) {
        Ok(done) => Ok(done),
        Err(link::Error::NoSuchLink(name)) => Err(Error::Nothing(format!("{name} does not exist"))),
        Err(e) => Err(Error::Netlink(format!("{what}: {e}"))),
    }
}

/// Deletes `flannel.1` in `ns`; the instant the kernel confirmed.
pub fn delete_link(ns: &Netns) -> Result<SystemTime, Error> {
    in_netns(ns, &format!("delete {VTEP}"), |nl| async move {
        nl.delete_link(VTEP).await
    })
    .map(|((), at)| at)
}

/// Deletes, in `ns`, the neighbour entry (`lease`'s network address), the
/// FDB entries (`mac`) and the route (`lease`) flannel programmed on
/// `flannel.1` for one peer; what went and the instant the last deletion
/// returned. Nothing found is an error.
pub fn drop_peer(ns: &Netns, lease: Ipv4Net, mac: [u8; 6]) -> Result<(Dropped, SystemTime), Error> {
    let (dropped, at) = in_netns(ns, "drop a peer's entries", |nl| async move {
        // Each entry: deleted (1), absent (0), or a real failure.
        let count = |r: Result<(), link::Error>| match r {
            Ok(()) => Ok(1),
            Err(link::Error::NotFound(_)) => Ok(0),
            Err(e) => Err(e),
        };
        let gateway = IpAddr::V4(lease.network());
        let neighbours = count(nl.delete_neighbour(VTEP, gateway).await)?;
        let mut fdb = 0;
        while count(nl.delete_fdb(VTEP, &mac, None).await)? == 1 {
            fdb += 1;
        }
        let on_vtep = nl
            .routes(Family::V4)
            .await?
            .iter()
            .any(|r| r.destination == IpNet::V4(lease));
        let routes = if on_vtep {
            let route = RouteSpec {
                destination: IpNet::V4(lease),
                gateway: Some(gateway),
                device: Some(VTEP.into()),
                onlink: true,
            };
            nl.delete_route(&route).await?;
            1
        } else {
            0
        };
        Ok(Dropped {
            neighbours,
            fdb,
            routes,
        })
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
        let said = |name, peer| RuntimeFault::parse(name, peer).unwrap_err().to_string();
        assert!(said("drop-peer", None).contains("needs the PEER"));
        assert!(said("stop-flannel", Some("x")).contains("takes no PEER"));
        assert!(said("nope", None).contains("one of delete-subnet-env"));
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
