//! `node check`: can a pod get networking on this node right now, and if
//! not, what is the first thing broken and how is it fixed?
//!
//! [`evaluate`] is pure: [`Facts`] in (files, kernel state, the API's view),
//! one [`Check`] per concern out, each OK/WARN/FAIL with its evidence and
//! its fix. The checks run in the order a pod's networking depends on them
//! (subnet.env → `flannel.1` → peers' entries → CNI config and bridge →
//! IPAM → what the kubelet reported), so the first failing one is the first
//! domino and names the Node condition's reason. The agent runs the same
//! function on every change it sees; `node check` runs it once.

pub mod facts;
mod flannel;
pub mod gather;
mod render;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use rebootguard_diagnose::classify;
use rebootguard_errors::chain;
use serde::Serialize;

pub use facts::{ApiFacts, Cluster, Conflist, ConflistError, Facts, Host, Leases, Local};
pub use gather::gather;

/// What a check concerns, in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Id {
    /// flannel's subnet.env.
    SubnetEnv,
    /// The VXLAN device `flannel.1`.
    FlannelLink,
    /// Every peer's FDB entry, neighbour and route.
    Peers,
    /// The conflist, its plugin binaries and the bridge.
    Cni,
    /// host-local's address range.
    Ipam,
    /// A real CNI ADD/DEL (`node probe`; run by the agent).
    Probe,
    /// What the kubelet reported for this node's pods.
    SandboxEvents,
}

impl Id {
    /// The kebab-case name used in output and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Id::SubnetEnv => "subnet-env",
            Id::FlannelLink => "flannel-link",
            Id::Peers => "peers",
            Id::Cni => "cni",
            Id::Ipam => "ipam",
            Id::Probe => "probe",
            Id::SandboxEvents => "sandbox-events",
        }
    }

    /// Every check [`evaluate`] runs, in order.
    pub const LOCAL: [Id; 6] = [
        Id::SubnetEnv,
        Id::FlannelLink,
        Id::Peers,
        Id::Cni,
        Id::Ipam,
        Id::SandboxEvents,
    ];
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Fine.
    Ok,
    /// Not applicable here (another network, another backend).
    Skip,
    /// Worth knowing; pods still get networking.
    Warn,
    /// Could not be checked.
    Unknown,
    /// Broken: pods on this node do not (or will not) get networking.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub id: Id,
    /// The verdict.
    pub status: Status,
    /// A CamelCase reason for WARN/FAIL/UNKNOWN (the Node condition's reason).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// One line.
    pub summary: String,
    /// What was seen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// What to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn new(id: Id, status: Status, reason: &str, summary: impl Into<String>) -> Check {
        Check {
            id,
            status,
            reason: reason.to_owned(),
            summary: summary.into(),
            evidence: Vec::new(),
            fix: None,
        }
    }

    pub(crate) fn ok(id: Id, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Ok, "", summary)
    }

    pub(crate) fn skip(id: Id, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Skip, "", summary)
    }

    pub(crate) fn fail(id: Id, reason: &str, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Fail, reason, summary)
    }

    pub(crate) fn warn(id: Id, reason: &str, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Warn, reason, summary)
    }

    pub(crate) fn unknown(id: Id, reason: &str, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Unknown, reason, summary)
    }

    pub(crate) fn evidence(mut self, lines: impl IntoIterator<Item = String>) -> Check {
        self.evidence.extend(lines);
        self
    }

    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every check passed (warnings allowed).
    Ok,
    /// At least one check failed.
    Fail,
    /// Nothing failed, but something could not be checked.
    Unknown,
}

/// Every check of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The node.
    pub node: String,
    /// The overall answer.
    pub verdict: Verdict,
    /// The checks, in dependency order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Builds a report from checks (verdict derived).
    pub fn new(node: &str, checks: Vec<Check>) -> Report {
        let verdict = verdict(&checks);
        Report {
            node: node.to_owned(),
            verdict,
            checks,
        }
    }

    /// The first failing check: the first domino.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.status == Status::Fail)
    }

    /// The check with this id.
    pub fn get(&self, id: Id) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// FAIL wins, then UNKNOWN, else OK.
pub fn verdict(checks: &[Check]) -> Verdict {
    if checks.iter().any(|c| c.status == Status::Fail) {
        Verdict::Fail
    } else if checks.iter().any(|c| c.status == Status::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Ok
    }
}

/// Sandbox failures at most this old fail the events check; older ones
/// within [`EVENTS_WINDOW`] only warn (the cause may be healed already).
pub const EVENTS_RECENT: Duration = Duration::from_secs(120);
/// Sandbox failures older than this are history.
pub const EVENTS_WINDOW: Duration = Duration::from_secs(600);
/// A lease younger than this may belong to a pod whose IP the API does not
/// show yet.
pub const LEASE_GRACE: Duration = Duration::from_secs(120);

/// Runs every check on `facts`.
pub fn evaluate(facts: &Facts) -> Report {
    let checks = vec![
        flannel::subnet_env(facts),
        flannel::link(facts),
        flannel::peers(facts),
        cni(facts),
        ipam(facts),
        sandbox_events(facts),
    ];
    Report::new(&facts.local.node, checks)
}

fn cni(f: &Facts) -> Check {
    let list = &f.local.conflist;
    let path = list.path.display();
    let value = match &list.parsed {
        Err(ConflistError::Missing) => {
            return Check::fail(
                Id::Cni,
                "CniConfigMissing",
                format!("no CNI configuration at {path}: the runtime reports \"cni plugin not initialized\" and no pod gets a sandbox"),
            )
            .fix("k3s writes its conflist when its agent starts: restart k3s (systemctl restart k3s); with kube-flannel, its pod's install-cni container writes it");
        }
        Err(ConflistError::Invalid(why)) => {
            return Check::fail(
                Id::Cni,
                "CniConfigInvalid",
                format!("the CNI configuration {path} cannot be used: {why}"),
            )
            .fix("restore the file: k3s rewrites it on start (restart k3s); kube-flannel's install-cni container rewrites it");
        }
        Ok(value) => value,
    };
    let missing: Vec<&String> = list
        .plugins
        .iter()
        .filter(|(_, found)| found.is_none())
        .map(|(name, _)| name)
        .collect();
    let dirs = list
        .bin_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    if !missing.is_empty() {
        return Check::fail(
            Id::Cni,
            "CniPluginMissing",
            format!(
                "CNI plugin binar{} missing: {}",
                if missing.len() == 1 { "y" } else { "ies" },
                missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
        .evidence(
            missing
                .iter()
                .map(|m| format!("failed to find plugin {m:?} in path [{dirs}]")),
        )
        .fix("k3s extracts its CNI plugins into its data dir on start: restart k3s, or reinstall it if the data dir was damaged; kube-flannel's init container copies flannel into /opt/cni/bin");
    }
    let name = facts::network_name(value).unwrap_or_default();
    let found: Vec<String> = list.plugins.keys().cloned().collect();
    let mut summary = format!("conflist {name} parses; plugins {} found", found.join(", "));
    // The bridge carries the subnet's gateway once a pod was networked.
    if f.local.is_flannel()
        && let Some(gateway) = live_gateway(&f.local)
        && let Ok(host) = &f.local.host
    {
        let bridge = facts::bridge_name(value);
        let link = host.link(&bridge);
        // Addresses of the gateway's family; a link-local one is the kernel's own.
        let others: Vec<String> = link
            .map(|l| {
                l.addresses
                    .iter()
                    .filter(|a| a.addr().is_ipv4() == gateway.addr().is_ipv4())
                    .filter(|a| !matches!(a.addr(), IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
                    .map(ToString::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let pods = running_pods(f);
        match link {
            Some(link) if link.addresses.contains(&gateway) => {
                summary.push_str(&format!("; {bridge} carries {gateway}"));
            }
            Some(_) if !others.is_empty() => {
                return Check::fail(
                    Id::Cni,
                    "BridgeAddressWrong",
                    format!(
                        "{bridge} carries {} instead of the subnet's gateway {gateway}",
                        others.join(", ")
                    ),
                )
                .evidence([format!(
                    "new sandboxes fail with: failed to set bridge addr: \"{bridge}\" already has an IP address different from {gateway}"
                )])
                .fix(format!(
                    "the node's subnet changed: ip link delete {bridge} (the bridge plugin recreates it with {gateway}), then delete this node's pods so they are recreated"
                ));
            }
            Some(_) if pods > 0 => {
                return Check::fail(
                    Id::Cni,
                    "BridgeAddressMissing",
                    format!("{bridge} carries no address though {pods} pod(s) on this node route through it"),
                )
                .fix(format!(
                    "the next pod sandbox puts {gateway} back on {bridge}; until then those pods reach nothing: delete them so they are recreated"
                ));
            }
            None if pods > 0 => {
                return Check::fail(
                    Id::Cni,
                    "BridgeMissing",
                    format!("{bridge} does not exist though {pods} pod(s) on this node use the pod network"),
                )
                .fix(format!(
                    "those pods lost their network: delete them so they are recreated (the bridge plugin recreates {bridge})"
                ));
            }
            Some(_) => summary.push_str(&format!("; {bridge} gets {gateway} with the next pod")),
            None => summary.push_str(&format!("; {bridge} appears with the first pod")),
        }
    }
    Check::ok(Id::Cni, summary)
}

/// FLANNEL_SUBNET as the bridge carries it (`10.42.0.1/24`).
fn live_gateway(local: &Local) -> Option<IpNet> {
    match &local.live {
        crate::live::Live::Present { parsed, .. } if parsed.is_valid() => parsed.env.subnet,
        _ => None,
    }
}

/// Pods on this node that use the pod network and should be up. A pod
/// being deleted is not one: after a reboot, the pods deleted while the
/// node was down still say `Running` with their old IPs until the kubelet
/// confirms, and counting them would demand a bridge no new pod has made
/// yet (and the taint that follows would keep the first one away).
fn running_pods(f: &Facts) -> usize {
    f.api
        .cluster()
        .and_then(|c| c.pods.as_ref().ok())
        .map(|pods| {
            pods.iter()
                .filter(|p| {
                    !p.host_network && !p.deleting && p.phase == "Running" && !p.ips.is_empty()
                })
                .count()
        })
        .unwrap_or(0)
}

fn ipam(f: &Facts) -> Check {
    let leases = &f.local.leases;
    let subnets: Vec<IpNet> = match &f.local.live {
        crate::live::Live::Present { parsed, .. } if parsed.is_valid() => parsed.env.pod_cidrs(),
        _ => Vec::new(),
    };
    if subnets.is_empty() {
        return Check::skip(
            Id::Ipam,
            "the address range is unknown without a valid subnet.env",
        );
    }
    let pod_ips = f
        .api
        .cluster()
        .and_then(|c| c.pods.as_ref().ok())
        .map(|pods| facts::pod_ips(pods));
    let now: SystemTime = f.now.into();
    let mut evidence = Vec::new();
    let mut leaked_total = 0usize;
    let mut exhausted = Vec::new();
    let mut summary = Vec::new();
    for subnet in &subnets {
        let in_subnet: Vec<_> = leases
            .files
            .iter()
            .filter(|l| subnet.contains(&l.ip))
            .collect();
        let leaked: Vec<(&crate::leases::Lease, &str)> = in_subnet
            .iter()
            .filter_map(|lease| {
                leak_reason(lease, leases, pod_ips.as_ref(), now).map(|why| (*lease, why))
            })
            .collect();
        let capacity = capacity(subnet);
        let free = capacity.saturating_sub(in_subnet.len() as u128);
        summary.push(format!("{subnet}: {} leased, {free} free", in_subnet.len()));
        if free == 0 {
            exhausted.push(format!(
                "{subnet}: no free address ({} leases, {} held by containers that no longer exist)",
                in_subnet.len(),
                leaked.len()
            ));
        }
        leaked_total += leaked.len();
        for (lease, why) in leaked.iter().take(5) {
            evidence.push(format!(
                "{} held by container {} ({why})",
                lease.ip,
                lease.container.as_deref().unwrap_or("?")
            ));
        }
        if leaked.len() > 5 {
            evidence.push(format!("... and {} more", leaked.len() - 5));
        }
    }
    evidence.extend(leases.errors.iter().cloned());
    let dir = leases.dir.display();
    if !exhausted.is_empty() {
        return Check::fail(Id::Ipam, "IpamExhausted", exhausted.join("; "))
            .evidence(evidence)
            .evidence(["sandboxes fail with: no IP addresses available in range set".to_owned()])
            .fix(format!(
                "rebootguard node restore frees the leases written before this boot; remove the other leaked files listed from {dir}"
            ));
    }
    if leaked_total > 0 {
        return Check::warn(
            Id::Ipam,
            "IpamLeasesLeaked",
            format!(
                "{leaked_total} host-local lease(s) held by containers that no longer exist ({})",
                summary.join("; ")
            ),
        )
        .evidence(evidence)
        .fix(format!(
            "rebootguard node restore frees the leases written before this boot; remove the others listed from {dir}"
        ));
    }
    Check::ok(Id::Ipam, summary.join("; ")).evidence(evidence)
}

/// Why a lease is leaked, if it is.
fn leak_reason(
    lease: &crate::leases::Lease,
    leases: &Leases,
    pod_ips: Option<&std::collections::BTreeSet<IpAddr>>,
    now: SystemTime,
) -> Option<&'static str> {
    if leases.boot_time.is_some_and(|boot| lease.modified < boot) {
        return Some("written before this boot");
    }
    if let (Some(live), Some(id)) = (&leases.live_containers, &lease.container)
        && !live.contains(id)
    {
        return Some("the runtime has no such container");
    }
    let old = now
        .duration_since(lease.modified)
        .is_ok_and(|age| age > LEASE_GRACE);
    if let Some(ips) = pod_ips
        && old
        && !ips.contains(&lease.ip)
    {
        return Some("no pod on this node has this IP");
    }
    None
}

/// Addresses host-local can hand out in `subnet`: all but the network and
/// broadcast addresses and the gateway.
fn capacity(subnet: &IpNet) -> u128 {
    let host_bits = u32::from(subnet.max_prefix_len() - subnet.prefix_len());
    let total = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
    total.saturating_sub(3)
}

fn sandbox_events(f: &Facts) -> Check {
    let cluster = match &f.api {
        ApiFacts::Cluster(c) => c,
        ApiFacts::NotAsked => {
            return Check::skip(Id::SandboxEvents, "the API was not asked (--no-api)");
        }
        ApiFacts::Unavailable(why) => {
            return Check::unknown(
                Id::SandboxEvents,
                "ApiUnavailable",
                format!("events unknown: the API is unavailable: {}", chain(why)),
            );
        }
    };
    let events = match &cluster.events {
        Ok(events) => events,
        Err(why) => {
            return Check::unknown(
                Id::SandboxEvents,
                "EventsUnavailable",
                format!("events unknown: {}", chain(why)),
            );
        }
    };
    let node = &f.local.node;
    let mine: std::collections::BTreeSet<(&str, &str)> = cluster
        .pods
        .as_ref()
        .map(|pods| {
            pods.iter()
                .map(|p| (p.namespace.as_str(), p.name.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let age = |e: &rebootguard_cluster::node::EventView| {
        e.last_seen.map(|t| {
            let span = f.now.duration_since(t);
            Duration::try_from(span).unwrap_or(Duration::ZERO)
        })
    };
    // Group by cause: one line per cause, not per pod.
    let mut causes: BTreeMap<classify::Sandbox, (u32, Duration, String, Vec<String>)> =
        BTreeMap::new();
    for e in events {
        let on_node = e.host.as_deref() == Some(node.as_str())
            || (e.kind == "Pod" && mine.contains(&(e.namespace.as_str(), e.name.as_str())));
        if !on_node || !classify::is_sandbox_failure(&e.reason, &e.message) {
            continue;
        }
        let Some(age) = age(e).filter(|a| *a <= EVENTS_WINDOW) else {
            continue;
        };
        let entry = causes
            .entry(classify::sandbox(&e.message))
            .or_insert_with(|| (0, age, e.message.clone(), Vec::new()));
        entry.0 += e.count;
        if age < entry.1 {
            entry.1 = age;
            entry.2 = e.message.clone();
        }
        if entry.3.len() < 5 {
            entry.3.push(format!("{}/{}", e.namespace, e.name));
        }
    }
    if causes.is_empty() {
        return Check::ok(
            Id::SandboxEvents,
            format!(
                "no sandbox failures on this node in the last {} min",
                EVENTS_WINDOW.as_secs() / 60
            ),
        );
    }
    let newest = causes.values().map(|c| c.1).min().unwrap_or(Duration::MAX);
    let evidence = causes.iter().map(|(cause, (count, age, message, pods))| {
        format!(
            "{} ({count}x, last {}s ago, pods {}): {}",
            cause.describe(),
            age.as_secs(),
            pods.join(", "),
            classify::short(message, 300)
        )
    });
    let names: Vec<String> = causes.keys().map(classify::Sandbox::describe).collect();
    let summary = format!(
        "the kubelet reported sandbox failures on this node: {}",
        names.join("; ")
    );
    let check = if newest <= EVENTS_RECENT {
        Check::fail(Id::SandboxEvents, "SandboxCreationFailing", summary)
    } else {
        Check::warn(Id::SandboxEvents, "SandboxCreationFailed", summary)
    };
    check
        .evidence(evidence)
        .fix("the first failing check above is the cause; `rebootguard diagnose` shows what fell because of it")
}

#[cfg(test)]
mod tests;
