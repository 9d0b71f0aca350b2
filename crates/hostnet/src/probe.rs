//! A real CNI ADD and DEL in a throwaway pod namespace: can this node give
//! a pod networking right now? This is what `node probe` runs; unlike a
//! file check it exercises the whole chain a kubelet would (conflist,
//! plugin binaries, subnet.env, IPAM, the bridge), and then the pod's
//! reach: its gateway and, across the overlay, a peer node.
//!
//! Every step runs even when an earlier one failed (DEL after a failed ADD,
//! as runtimes do), and every failure is kept: a probe never reports
//! success for a step that failed. Once ADD has started, DEL runs on every
//! path: after a failed check, after a cancellation, and while unwinding a
//! panic (a guard runs it), so a probe leaves no veth, lease or plugin state
//! behind. The pod namespace is anonymous and goes with the probe.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::Value;

use crate::cni::{self, Args, Conflist, Runtime};
use crate::link::{self, Link};
use crate::netns::{self, Netns};
use crate::ping;

/// What went wrong in one step of a probe. Worth a retry: an `Add` whose
/// CNI error has code 11, a timeout, a `Ping` that timed out; the rest
/// describe the node's state.
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
    /// The pod got an address outside every expected subnet.
    #[error("the pod got {address}, outside the node's pod subnet ({})", list(.subnets))]
    OutsideSubnets {
        /// The address.
        address: IpNet,
        /// The subnets it should be in.
        subnets: Vec<IpNet>,
    },
    /// The pod got no address of an expected subnet's family.
    #[error("the pod got no address in {0}")]
    NoAddressIn(IpNet),
    /// A target did not answer the pod.
    #[error("the pod cannot reach the {name}: {source}")]
    Ping {
        /// Which target (`gateway`, `peer flannel.1`).
        name: String,
        /// Why (shared with the [`Ping`] in the report).
        #[source]
        source: Arc<ping::Error>,
    },
    /// CNI DEL failed: the probe may have leaked an address lease.
    #[error("CNI DEL failed (a lease may have leaked): {0}")]
    Del(#[source] cni::Error),
    /// DEL succeeded but the node-side interface ADD made is still there.
    #[error("CNI DEL left the node-side interface {0} behind")]
    Leftover(String),
    /// The probe was cancelled before its checks finished (DEL still ran).
    #[error("the probe was interrupted before its checks finished")]
    Interrupted,
}

impl Error {
    /// The step this failure belongs to.
    pub fn step(&self) -> Step {
        match self {
            Error::CreateNamespace(_) => Step::Setup,
            Error::Add(_) => Step::Add,
            Error::ReadInterface(_)
            | Error::NoAddress(_)
            | Error::AddressMissing { .. }
            | Error::InterfaceDown(_) => Step::Interface,
            Error::OutsideSubnets { .. } | Error::NoAddressIn(_) => Step::Subnet,
            Error::Ping { .. } => Step::Ping,
            Error::Del(_) => Step::Del,
            Error::Leftover(_) => Step::Cleanup,
            Error::Interrupted => Step::Interrupted,
        }
    }
}

/// The steps of a probe, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Making the pod namespace.
    Setup,
    /// CNI ADD through the conflist.
    Add,
    /// The pod interface: present, up, carrying the reported addresses.
    Interface,
    /// The pod addresses fall in the expected subnets.
    Subnet,
    /// Pings from the pod.
    Ping,
    /// CNI DEL through the conflist.
    Del,
    /// Nothing left behind.
    Cleanup,
    /// Cancelled.
    Interrupted,
}

/// Where a ping target's address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// This address.
    Ip(IpAddr),
    /// The gateway(s) ADD reported for the pod interface (`ips[].gateway`);
    /// none reported is a note, not a failure.
    Gateway,
    /// Any one of these addresses, tried in order until one answers (one
    /// working peer proves the overlay from this node works; a broken peer
    /// must not fail its neighbours' probes).
    AnyOf(Vec<IpAddr>),
}

/// Something to ping from the pod after ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What it is, for reports: `gateway`, `peer flannel.1`.
    pub name: String,
    /// Its address.
    pub destination: Destination,
}

impl Target {
    /// A target at a fixed address.
    pub fn ip(name: &str, address: IpAddr) -> Self {
        Target {
            name: name.to_owned(),
            destination: Destination::Ip(address),
        }
    }

    /// The first of `addresses` to answer.
    pub fn any_of(name: &str, addresses: Vec<IpAddr>) -> Self {
        Target {
            name: name.to_owned(),
            destination: Destination::AnyOf(addresses),
        }
    }

    /// The gateway ADD reports.
    pub fn gateway() -> Self {
        Target {
            name: "gateway".to_owned(),
            destination: Destination::Gateway,
        }
    }
}

/// What to check beyond ADD and DEL.
#[derive(Debug, Clone)]
pub struct Options {
    /// The pod interface (`eth0`).
    pub ifname: String,
    /// Subnets the pod's addresses must fall in (for flannel: the masked
    /// FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET); empty: any address will do.
    pub subnets: Vec<IpNet>,
    /// Pinged from the pod after ADD, in order; each must answer.
    pub targets: Vec<Target>,
    /// Bound on each ping.
    pub ping_timeout: Duration,
    /// Set to stop early: the remaining checks are skipped, DEL still runs.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ifname: "eth0".to_owned(),
            subnets: Vec::new(),
            targets: Vec::new(),
            ping_timeout: Duration::from_secs(2),
            cancel: None,
        }
    }
}

impl Options {
    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    }
}

/// One ping from the pod.
#[derive(Debug)]
pub struct Ping {
    /// The target's name.
    pub name: String,
    /// The address pinged.
    pub address: IpAddr,
    /// The round trip, or why there was none.
    pub result: Result<Duration, Arc<ping::Error>>,
}

/// What a probe saw.
#[derive(Debug)]
pub struct Report {
    /// The sandbox ID the probe used.
    pub container_id: String,
    /// The ADD result, when ADD succeeded.
    pub added: Option<cni::Outcome>,
    /// How long ADD took (also when it failed).
    pub add_took: Option<Duration>,
    /// The pod interface as the kernel showed it after ADD.
    pub interface: Option<Link>,
    /// Every ping made, in order.
    pub pings: Vec<Ping>,
    /// Whether DEL ran, and how long it took.
    pub del_took: Option<Duration>,
    /// Things worth knowing that are not failures (no gateway reported...).
    pub notes: Vec<String>,
    /// Every failure, in the order the steps ran.
    pub failures: Vec<Error>,
}

impl Report {
    /// True when ADD gave a working interface, every check passed and DEL
    /// cleaned up.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Whether the probe was cancelled.
    pub fn interrupted(&self) -> bool {
        self.failures
            .iter()
            .any(|f| matches!(f, Error::Interrupted))
    }

    /// The pod addresses ADD assigned.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.interface
            .as_ref()
            .map(|link| link.addresses.iter().map(IpNet::addr).collect())
            .unwrap_or_default()
    }

    /// The pod addresses ADD reported for the pod interface, with prefix.
    pub fn reported_addresses(&self, ifname: &str) -> Vec<IpNet> {
        self.added
            .as_ref()
            .map(|o| o.success.addresses_of(ifname))
            .unwrap_or_default()
    }

    /// The failures of one step.
    pub fn failures_of(&self, step: Step) -> impl Iterator<Item = &Error> {
        self.failures.iter().filter(move |f| f.step() == step)
    }
}

/// Runs ADD, checks the pod interface, runs DEL, in a pod namespace made
/// for the purpose and removed afterwards. The interface is `eth0`.
pub fn run(list: &Conflist, runtime: &Runtime<'_>) -> Report {
    run_with(list, runtime, &Options::default())
}

/// Like [`run`], with the pod's subnets checked and targets pinged from the
/// pod after ADD (see [`Options`]).
pub fn run_with(list: &Conflist, runtime: &Runtime<'_>, options: &Options) -> Report {
    let container_id = netns::unique_name("rebootguard-probe");
    let mut report = Report {
        container_id: container_id.clone(),
        added: None,
        add_took: None,
        interface: None,
        pings: Vec::new(),
        del_took: None,
        notes: Vec::new(),
        failures: Vec::new(),
    };
    if options.cancelled() {
        report.failures.push(Error::Interrupted);
        return report;
    }
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
        ifname: options.ifname.clone(),
        extra: vec![("IgnoreUnknown".into(), "1".into())],
        capabilities: Default::default(),
    };
    let mut teardown = Teardown {
        list,
        runtime,
        args: &args,
        added: None,
        armed: true,
    };
    let started = Instant::now();
    let added = list.add(runtime, &args);
    report.add_took = Some(started.elapsed());
    match added {
        Ok(outcome) => {
            teardown.added = Some(outcome.json.clone());
            report.added = Some(outcome);
            check(&pod, options, &mut report);
        }
        Err(e) => report.failures.push(Error::Add(e)),
    }
    let started = Instant::now();
    let deleted = teardown.run();
    report.del_took = Some(started.elapsed());
    match deleted {
        Ok(()) => check_leftovers(runtime, &mut report),
        Err(e) => report.failures.push(Error::Del(e)),
    }
    drop(pod);
    report
}

/// Runs DEL when dropped armed: the path a panic between ADD and DEL takes.
struct Teardown<'a, 'r> {
    list: &'a Conflist,
    runtime: &'a Runtime<'r>,
    args: &'a Args,
    added: Option<Value>,
    armed: bool,
}

impl Teardown<'_, '_> {
    fn run(&mut self) -> Result<(), cni::Error> {
        self.armed = false;
        self.list.del(self.runtime, self.args, self.added.as_ref())
    }
}

impl Drop for Teardown<'_, '_> {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = self.run()
        {
            eprintln!(
                "warning: CNI DEL of probe sandbox {} failed while unwinding: {e}",
                self.args.container_id
            );
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Makes the checks panic, to prove DEL still runs.
    static PANIC_IN_CHECKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The checks after a successful ADD, stopping early when cancelled.
fn check(pod: &Netns, options: &Options, report: &mut Report) {
    #[cfg(test)]
    if PANIC_IN_CHECKS.with(std::cell::Cell::get) {
        panic!("injected panic in the probe's checks");
    }
    let Some(outcome) = report.added.clone() else {
        return;
    };
    if options.cancelled() {
        report.failures.push(Error::Interrupted);
        return;
    }
    check_interface(pod, &options.ifname, &outcome, report);
    let reported = outcome.success.addresses_of(&options.ifname);
    report
        .failures
        .extend(check_subnets(&reported, &options.subnets));
    for target in &options.targets {
        let (addresses, any) = match &target.destination {
            Destination::Ip(ip) => (vec![*ip], false),
            Destination::AnyOf(ips) => (ips.clone(), true),
            Destination::Gateway => {
                let gateways = gateways(&outcome.success, &options.ifname);
                if gateways.is_empty() {
                    report.notes.push(format!(
                        "CNI ADD reported no gateway for {}; the {} was not pinged",
                        options.ifname, target.name
                    ));
                }
                (gateways, false)
            }
        };
        let mut misses = Vec::new();
        for address in addresses {
            if options.cancelled() {
                report.failures.push(Error::Interrupted);
                return;
            }
            let result = ping::ping(Some(pod), address, options.ping_timeout).map_err(Arc::new);
            report.pings.push(Ping {
                name: target.name.clone(),
                address,
                result: result.clone(),
            });
            match result {
                Ok(_) if any => {
                    misses.clear();
                    break;
                }
                Ok(_) => {}
                Err(source) => misses.push(Error::Ping {
                    name: target.name.clone(),
                    source,
                }),
            }
        }
        // For "any of", only all of them missing is a failure (the last says why).
        if any {
            report.failures.extend(misses.pop());
        } else {
            report.failures.extend(misses);
        }
    }
    if options.cancelled() {
        report.failures.push(Error::Interrupted);
    }
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

/// Whether the pod's `addresses` fall in `subnets`: each address in one of
/// them, and each subnet's family given an address. Nothing to check
/// without subnets.
pub fn check_subnets(addresses: &[IpNet], subnets: &[IpNet]) -> Vec<Error> {
    if subnets.is_empty() {
        return Vec::new();
    }
    let mut failures = Vec::new();
    for address in addresses {
        if !subnets.iter().any(|s| s.contains(&address.addr())) {
            failures.push(Error::OutsideSubnets {
                address: *address,
                subnets: subnets.to_vec(),
            });
        }
    }
    for subnet in subnets {
        let same_family = |a: &&IpNet| a.addr().is_ipv4() == subnet.addr().is_ipv4();
        if !addresses.iter().any(|a| same_family(&a)) {
            failures.push(Error::NoAddressIn(*subnet));
        }
    }
    failures
}

/// The gateways ADD reported for the pod interface (or for no interface).
fn gateways(success: &cni::Success, ifname: &str) -> Vec<IpAddr> {
    let mut found = Vec::new();
    for ip in &success.ips {
        let ours = ip
            .interface
            .and_then(|i| success.interfaces.get(i))
            .is_none_or(|iface| iface.name == ifname);
        if let Some(gateway) = ip.gateway
            && ours
            && !found.contains(&gateway)
        {
            found.push(gateway);
        }
    }
    found
}

/// After a successful DEL, the node-side veth ADD reported must be gone.
fn check_leftovers(runtime: &Runtime<'_>, report: &mut Report) {
    let Some(outcome) = &report.added else {
        return;
    };
    // The node side of the pair: outside the sandbox, and a veth (the
    // bridge stays, as it does for every pod).
    for iface in &outcome.success.interfaces {
        if iface.sandbox.is_some() || iface.name.is_empty() {
            continue;
        }
        let is_veth = match link::get(runtime.host, &iface.name) {
            Ok(link) => link.kind.as_deref() == Some("veth"),
            Err(_) => false,
        };
        if is_veth {
            report.failures.push(Error::Leftover(iface.name.clone()));
        }
    }
}

fn list(subnets: &[IpNet]) -> String {
    subnets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(texts: &[&str]) -> Vec<IpNet> {
        texts
            .iter()
            .map(|t| t.parse().expect("test CIDR"))
            .collect()
    }

    #[test]
    fn subnets_hold_every_address_and_every_family_gets_one() {
        let v4 = nets(&["10.42.0.0/24"]);
        let dual = nets(&["10.42.0.0/24", "2001:cafe:42::/64"]);
        assert!(check_subnets(&nets(&["10.42.0.5/24"]), &v4).is_empty());
        assert!(check_subnets(&nets(&["10.42.0.5/24", "2001:cafe:42::5/64"]), &dual).is_empty());
        assert!(check_subnets(&nets(&["10.43.0.5/24"]), &[]).is_empty());

        let outside = check_subnets(&nets(&["10.42.1.5/24"]), &v4);
        assert_eq!(outside.len(), 1, "{outside:?}");
        assert_eq!(
            outside[0].to_string(),
            "the pod got 10.42.1.5/24, outside the node's pod subnet (10.42.0.0/24)"
        );
        let missing_v6 = check_subnets(&nets(&["10.42.0.5/24"]), &dual);
        assert_eq!(missing_v6.len(), 1, "{missing_v6:?}");
        assert_eq!(
            missing_v6[0].to_string(),
            "the pod got no address in 2001:cafe:42::/64"
        );
        assert_eq!(missing_v6[0].step(), Step::Subnet);
    }

    #[test]
    fn gateways_come_from_the_pod_interface() {
        let success: cni::Success = serde_json::from_value(serde_json::json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/p"}],
            "ips": [
                {"interface": 2, "address": "10.42.0.5/24", "gateway": "10.42.0.1"},
                {"interface": 0, "address": "10.42.0.1/24", "gateway": "10.42.0.254"},
                {"address": "fd00::5/64", "gateway": "fd00::1"},
                {"interface": 2, "address": "10.42.0.6/24", "gateway": "10.42.0.1"}
            ]
        }))
        .expect("result");
        assert_eq!(
            gateways(&success, "eth0"),
            vec![
                "10.42.0.1".parse::<IpAddr>().expect("ip"),
                "fd00::1".parse().expect("ip")
            ]
        );
    }

    /// A panic in the checks after ADD still runs DEL: the plugin's lease
    /// is released. Uses Debian's bridge and host-local; needs root.
    #[test]
    fn a_panic_after_add_still_runs_del() {
        if !cni::test_ready(
            "a_panic_after_add_still_runs_del",
            &["bridge", "host-local"],
        ) {
            return;
        }
        let plugins = std::path::Path::new(cni::DEBIAN_PLUGIN_DIR);
        let node = Netns::new().expect("node namespace");
        let leases = tempfile::tempdir().expect("tempdir");
        let list = Conflist::from_value(&serde_json::json!({
            "name": "probe-test", "cniVersion": "1.0.0",
            "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true,
                "ipam": {"type": "host-local", "dataDir": leases.path(),
                         "ranges": [[{"subnet": "10.77.0.0/24"}]]}}]
        }))
        .expect("conflist");
        let runtime = Runtime::new(vec![plugins.to_owned()]).in_host(&node);
        let lease_files = || {
            std::fs::read_dir(leases.path().join("probe-test"))
                .map(|dir| {
                    dir.filter_map(Result::ok)
                        .filter(|e| e.file_name().to_string_lossy().starts_with("10.77."))
                        .count()
                })
                .unwrap_or(0)
        };
        PANIC_IN_CHECKS.with(|flag| flag.set(true));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_with(&list, &runtime, &Options::default())
        }));
        PANIC_IN_CHECKS.with(|flag| flag.set(false));
        assert!(panicked.is_err(), "the injected panic propagates");
        assert_eq!(lease_files(), 0, "DEL released the lease while unwinding");
        let veths = link::blocking(Some(&node), |netlink: link::Netlink| async move {
            netlink.links().await
        })
        .expect("links")
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("veth"))
        .count();
        assert_eq!(veths, 0, "no veth left");

        // Without the panic the same probe passes and pings the gateway.
        let options = Options {
            subnets: nets(&["10.77.0.0/24"]),
            targets: vec![Target::gateway()],
            ..Options::default()
        };
        let report = run_with(&list, &runtime, &options);
        assert!(report.is_ok(), "{:?}", report.failures);
        assert_eq!(report.pings.len(), 1);
        assert_eq!(
            report.pings[0].address,
            "10.77.0.1".parse::<IpAddr>().expect("ip")
        );
        assert!(report.pings[0].result.is_ok());
        assert_eq!(lease_files(), 0);

        // A target nobody answers fails the probe; DEL still cleans up.
        let options = Options {
            targets: vec![Target::ip(
                "peer flannel.1",
                "10.77.0.200".parse().expect("ip"),
            )],
            ping_timeout: Duration::from_millis(200),
            ..Options::default()
        };
        let report = run_with(&list, &runtime, &options);
        assert!(!report.is_ok());
        assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
        assert_eq!(
            report.failures[0].to_string(),
            "the pod cannot reach the peer flannel.1: no reply from 10.77.0.200 within 200 ms"
        );
        assert!(report.del_took.is_some());
        assert_eq!(lease_files(), 0);

        // Cancelled before the pings: DEL runs, the report says so.
        let cancel = Arc::new(AtomicBool::new(true));
        let options = Options {
            cancel: Some(cancel),
            ..Options::default()
        };
        let report = run_with(&list, &runtime, &options);
        assert!(report.interrupted());
        assert!(report.added.is_none(), "cancelled before ADD");
    }
}
