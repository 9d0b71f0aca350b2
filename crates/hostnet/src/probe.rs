//! A real CNI ADD and DEL in a throwaway pod namespace: can this node give
//! a pod networking right now? This is what `node probe` runs; unlike a
//! file check it exercises the whole chain a kubelet would (conflist,
//! plugin binaries, subnet.env, IPAM, the bridge).
//!
//! Every step runs even when an earlier one failed (DEL after a failed ADD,
//! as runtimes do), and every failure is kept: a probe never reports
//! success for a step that failed.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::cni::{self, Args, Conflist, Runtime};
use crate::link::{self, Link};
use crate::netns::{self, Netns};

/// What went wrong in one step of a probe. Worth a retry: an `Add` whose
/// CNI error has code 11, a timeout; the rest describe the node's state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The throwaway pod namespace could not be made.
    #[error("failed to create the probe's pod namespace")]
    CreateNamespace(#[source] netns::Error),
    /// CNI ADD failed: pods on this node get no networking.
    #[error("CNI ADD failed: {0}")]
    Add(#[source] cni::Error),
    /// The pod interface could not be read after ADD.
    #[error("failed to read the probe pod's interface")]
    ReadInterface(#[source] link::Error),
    /// ADD reported no address for the pod interface.
    #[error("CNI ADD gave the pod no address on {0}")]
    NoAddress(String),
    /// ADD reported an address the interface does not carry.
    #[error("CNI ADD reported {address} but {ifname} does not carry it")]
    AddressMissing {
        /// The interface.
        ifname: String,
        /// The address reported.
        address: IpNet,
    },
    /// The pod interface is administratively down.
    #[error("the pod interface {0} is down")]
    InterfaceDown(String),
    /// CNI DEL failed: the probe may have leaked an address lease.
    #[error("CNI DEL failed (a lease may have leaked): {0}")]
    Del(#[source] cni::Error),
}

/// What a probe saw.
#[derive(Debug)]
pub struct Report {
    /// The sandbox ID the probe used.
    pub container_id: String,
    /// The ADD result, when ADD succeeded.
    pub added: Option<cni::Outcome>,
    /// The pod interface as the kernel showed it after ADD.
    pub interface: Option<Link>,
    /// Every failure, in the order the steps ran.
    pub failures: Vec<Error>,
}

impl Report {
    /// True when ADD gave a working interface and DEL cleaned up.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The pod addresses ADD assigned.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.interface
            .as_ref()
            .map(|link| link.addresses.iter().map(IpNet::addr).collect())
            .unwrap_or_default()
    }
}

/// Runs ADD, checks the pod interface, runs DEL, in a pod namespace made
/// for the purpose and removed afterwards. The interface is `eth0`.
pub fn run(list: &Conflist, runtime: &Runtime<'_>) -> Report {
    let container_id = netns::unique_name("rebootguard-probe");
    let mut report = Report {
        container_id: container_id.clone(),
        added: None,
        interface: None,
        failures: Vec::new(),
    };
    let pod = match Netns::new() {
        Ok(pod) => pod,
        Err(e) => {
            report.failures.push(Error::CreateNamespace(e));
            return report;
        }
    };
    let args = Args {
        container_id,
        netns: pod.path(),
        ifname: "eth0".to_owned(),
        extra: vec![("IgnoreUnknown".into(), "1".into())],
        capabilities: Default::default(),
    };
    match list.add(runtime, &args) {
        Ok(outcome) => {
            check_interface(&pod, &args.ifname, &outcome, &mut report);
            report.added = Some(outcome);
        }
        Err(e) => report.failures.push(Error::Add(e)),
    }
    let prev = report.added.as_ref().map(|o| &o.json);
    if let Err(e) = list.del(runtime, &args, prev) {
        report.failures.push(Error::Del(e));
    }
    report
}

fn check_interface(pod: &Netns, ifname: &str, outcome: &cni::Outcome, report: &mut Report) {
    let link = match link::get(Some(pod), ifname) {
        Ok(link) => link,
        Err(e) => {
            report.failures.push(Error::ReadInterface(e));
            return;
        }
    };
    let reported = outcome.success.addresses_of(ifname);
    if reported.is_empty() {
        report.failures.push(Error::NoAddress(ifname.to_owned()));
    }
    for address in reported {
        if !link.addresses.contains(&address) {
            report.failures.push(Error::AddressMissing {
                ifname: ifname.to_owned(),
                address,
            });
        }
    }
    if !link.up {
        report
            .failures
            .push(Error::InterfaceDown(ifname.to_owned()));
    }
    report.interface = Some(link);
}
