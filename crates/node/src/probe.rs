//! `node probe`: can a pod on this node get networking right now?
//!
//! Runs the node's own CNI conflist with its own plugins, as the kubelet's
//! runtime would, for a throwaway pod ([`rebootguard_hostnet::probe`]): ADD,
//! the pod interface, the pod's address against the node's subnet, pings
//! from the pod to its gateway (`cni0`) and across the overlay to a peer
//! node's `flannel.1` (any one of a few: a broken peer must not fail its
//! neighbours), then DEL, leaving nothing behind.
//!
//! What to expect is gathered first, from plain files and the routing table
//! ([`Expectations`]): for flannel, the subnet and gateway from
//! `subnet.env` and the peers from the routes flannel installs
//! (`10.42.1.0/24 via 10.42.1.0 dev flannel.1 onlink`: the gateway is the
//! peer's `flannel.1` address). A network that is not flannel is probed
//! without the flannel parts. Under a root other than `/` the plugins run on
//! a thread that sees the node's `run/` and `var/` at `/run` and `/var`
//! ([`rebootguard_hostnet::mounts`]), so they read the node's files and
//! word their errors exactly as on the node.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ipnet::IpNet;
use rebootguard_errors::chain;
use rebootguard_flannel::subnet_env;
use rebootguard_hostnet::cni::{self, Conflist, Runtime};
use rebootguard_hostnet::link::{self, Family, Netlink, Route};
use rebootguard_hostnet::probe::{self as hostprobe, Step, Target};
use rebootguard_hostnet::{mounts, netns};
use serde::Serialize;

use crate::settings::{Settings, under};

/// The JSON report's version.
pub const VERSION: u32 = 1;
/// flannel's IPv4 and IPv6 vxlan devices.
pub const FLANNEL_DEVICES: [&str; 2] = ["flannel.1", "flannel-v6.1"];

/// Why the node could not be probed at all (as opposed to a probe that
/// failed). None is retryable as is: each names its fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The conflist does not exist.
    #[error(
        "no CNI network config at {}: the kubelet reports `cni plugin not initialized` until k3s \
         (or flannel) writes it; start k3s, or pass --conflist PATH (conflist in the config file) \
         if it lives elsewhere",
        path.display()
    )]
    NoConflist {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The conflist could not be read.
    #[error("failed to read the CNI network config {}", path.display())]
    ReadConflist {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The conflist is not one the runtime would accept.
    #[error("the CNI network config {} is unusable: {problem}; fix or regenerate it", path.display())]
    BadConflist {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: Box<cni::Error>,
    },
    /// Namespaces cannot be made here.
    #[error(
        "node probe needs root to create a network namespace and run CNI plugins (run it as root)"
    )]
    NotPrivileged(#[source] netns::Unprivileged),
    /// The node's files could not be shown to the plugins at their real paths.
    #[error("failed to show the plugins the node's files at their real paths")]
    Mounts(#[source] mounts::Error),
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bound on each plugin call.
    pub timeout: Duration,
    /// Bound on each ping from the pod.
    pub ping_timeout: Duration,
    /// Set to stop early (a signal): the remaining checks are skipped, DEL
    /// still runs.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(20),
            ping_timeout: Duration::from_secs(2),
            cancel: None,
        }
    }
}

/// A step's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Passed.
    Ok,
    /// Failed: the probe fails.
    Failed,
    /// Not run (an earlier step failed, or it does not apply).
    Skipped,
    /// Information, not a verdict.
    Note,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "skipped",
            Outcome::Note => "note",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// `conflist`, `subnet.env`, `peer`, `add`, `interface`, `subnet`,
    /// `ping gateway`, `ping peer flannel.1`, `del`, `cleanup`.
    pub step: String,
    /// Its result.
    pub result: Outcome,
    /// What was seen.
    pub evidence: String,
}

/// What `node probe` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`VERSION`].
    pub version: u32,
    /// A pod on this node gets networking: every step passed.
    pub passed: bool,
    /// Stopped early by a signal (DEL still ran).
    pub interrupted: bool,
    /// The conflist probed.
    pub conflist: PathBuf,
    /// Its network name (`cbr0`).
    pub network: String,
    /// Its plugins, in order.
    pub plugins: Vec<String>,
    /// Whether the flannel checks applied (first plugin `flannel`).
    pub flannel: bool,
    /// The throwaway sandbox's ID.
    pub container_id: String,
    /// The pod's addresses from ADD.
    pub pod_addresses: Vec<IpNet>,
    /// Every step, in order.
    pub steps: Vec<StepReport>,
    /// The CNI error, worded as containerd and the kubelet word it
    /// (`plugin type="flannel" failed (add): ...`), when ADD or DEL failed.
    pub cni_error: Option<String>,
    /// One line for logs and conditions: what the pod got and reached, or
    /// the first failure (a failed ADD's CNI error verbatim).
    pub summary: String,
}

impl Report {
    /// The human table: step, result, evidence; then the verdict.
    pub fn render(&self) -> String {
        let width = self
            .steps
            .iter()
            .map(|s| s.step.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!("{:<width$}  {:<7}  EVIDENCE\n", "STEP", "RESULT");
        for step in &self.steps {
            out.push_str(&format!(
                "{:<width$}  {:<7}  {}\n",
                step.step,
                step.result.label(),
                step.evidence
            ));
        }
        out.push('\n');
        if self.passed {
            out.push_str("PASSED: a pod on this node gets networking\n");
        } else if self.interrupted {
            out.push_str("INTERRUPTED: the probe stopped early (its pod was cleaned up)\n");
        } else {
            out.push_str("FAILED: pods on this node would not get working networking\n");
            if let Some(error) = &self.cni_error {
                out.push_str(&format!("{error}\n"));
            }
        }
        out
    }
}

/// What the probe should find, gathered before any plugin runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// Steps already decided (conflist, subnet.env, peer).
    pub steps: Vec<StepReport>,
    /// The pod's addresses must fall in these.
    pub subnets: Vec<IpNet>,
    /// Pinged from the pod after ADD.
    pub targets: Vec<Target>,
}

/// A peer node's `flannel.1` address, from a route flannel installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's `flannel.1` address (the route's gateway).
    pub address: IpAddr,
    /// The peer's pod subnet (the route's destination).
    pub subnet: IpNet,
    /// The device (`flannel.1`).
    pub device: String,
}

/// Probes the node described by `settings`. `Err` only when it could not
/// probe; a failing probe is a [`Report`] with `passed: false`.
pub fn run(settings: &Settings, options: &Options) -> Result<Report, Error> {
    let path = settings.paths.conflist.clone();
    let bytes = match crate::host::read_file(&settings.root, &path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoConflist { path });
        }
        Err(source) => return Err(Error::ReadConflist { path, source }),
    };
    let list = Conflist::parse(&bytes).map_err(|problem| Error::BadConflist {
        path: path.clone(),
        problem: Box::new(problem),
    })?;
    netns::privileged().map_err(Error::NotPrivileged)?;

    // Everything under /run is read now, before a root other than / covers it.
    let flannel = plugin_types(&list).first().map(String::as_str) == Some("flannel");
    let expectations = if flannel {
        let subnet_file = list.plugins[0]
            .get("subnetFile")
            .and_then(|v| v.as_str())
            .filter(|p| !p.is_empty())
            .map(|p| under(&settings.root, Path::new(p)))
            .unwrap_or_else(|| settings.paths.subnet_env.clone());
        let subnet_env = crate::host::read_file(&settings.root, &subnet_file);
        let peers = find_peers();
        flannel_expectations(&list, &path, &subnet_file, subnet_env, peers)
    } else {
        other_expectations(&list, &path)
    };

    let runtime =
        Runtime::new(settings.paths.cni_bin_dirs.clone()).with_timeout(Some(options.timeout));
    let probe_options = hostprobe::Options {
        subnets: expectations.subnets.clone(),
        targets: expectations.targets.clone(),
        ping_timeout: options.ping_timeout,
        cancel: options.cancel.clone(),
        ..hostprobe::Options::default()
    };
    let work = || hostprobe::run_with(&list, &runtime, &probe_options);
    let root = std::path::absolute(&settings.root).unwrap_or_else(|_| settings.root.clone());
    let outcome = if root == Path::new("/") {
        work()
    } else {
        mounts::run_in_root(&root, work).map_err(Error::Mounts)?
    };
    Ok(assemble(&list, &path, flannel, expectations, &outcome))
}

fn plugin_types(list: &Conflist) -> Vec<String> {
    list.plugins
        .iter()
        .map(|p| {
            p.get("type")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn conflist_step(list: &Conflist, path: &Path) -> StepReport {
    StepReport {
        step: "conflist".into(),
        result: Outcome::Ok,
        evidence: format!(
            "{}: {} ({})",
            list.name,
            plugin_types(list).join(" → "),
            path.display()
        ),
    }
}

/// A network that is not flannel: the address must be there, and the
/// gateway ADD reports (if any) must answer.
pub fn other_expectations(list: &Conflist, path: &Path) -> Expectations {
    Expectations {
        steps: vec![
            conflist_step(list, path),
            StepReport {
                step: "flannel".into(),
                result: Outcome::Skipped,
                evidence:
                    "the first plugin is not flannel: subnet.env and peer checks do not apply"
                        .into(),
            },
        ],
        subnets: Vec::new(),
        targets: vec![Target::gateway()],
    }
}

/// flannel: the pod subnet(s) and gateway(s) from subnet.env, a few peers
/// from the routing table (any one answering will do). A missing or broken
/// subnet.env is reported here and left to ADD to judge (the plugin's own
/// words are the verdict).
pub fn flannel_expectations(
    list: &Conflist,
    path: &Path,
    subnet_file: &Path,
    subnet_env: std::io::Result<Vec<u8>>,
    peers: Result<Vec<Peer>, String>,
) -> Expectations {
    let mut steps = vec![conflist_step(list, path)];
    let mut subnets = Vec::new();
    let mut targets = Vec::new();
    match subnet_env {
        Err(e) => steps.push(StepReport {
            step: "subnet.env".into(),
            result: Outcome::Note,
            evidence: format!(
                "cannot read {}: {}; the flannel plugin will fail ADD",
                subnet_file.display(),
                io_reason(&e)
            ),
        }),
        Ok(bytes) => {
            let parsed = subnet_env::parse(&bytes);
            subnets = parsed.env.pod_cidrs();
            let mut said = Vec::new();
            for subnet in &subnets {
                if let Some(gateway) = subnet_env::first_host(*subnet) {
                    let name = if subnet.addr().is_ipv4() {
                        "gateway"
                    } else {
                        "gateway (IPv6)"
                    };
                    targets.push(Target::ip(name, gateway.addr()));
                    said.push(format!("pods in {subnet}, gateway {}", gateway.addr()));
                }
            }
            let errors: Vec<String> = parsed.errors().map(ToString::to_string).collect();
            let (result, evidence) = if errors.is_empty() && !said.is_empty() {
                (Outcome::Ok, said.join("; "))
            } else {
                let mut parts = said;
                parts.extend(errors);
                if parts.is_empty() {
                    parts.push("no FLANNEL_SUBNET or FLANNEL_IPV6_SUBNET".into());
                }
                (Outcome::Note, parts.join("; "))
            };
            steps.push(StepReport {
                step: "subnet.env".into(),
                result,
                evidence: format!("{} ({})", evidence, subnet_file.display()),
            });
        }
    }
    let evidence = match peers {
        Ok(peers) if !peers.is_empty() => {
            let device = peers[0].device.clone();
            targets.push(Target::any_of(
                &format!("peer {device}"),
                peers.iter().map(|p| p.address).collect(),
            ));
            let routes: Vec<String> = peers
                .iter()
                .map(|p| format!("{} (route {} dev {} onlink)", p.address, p.subnet, p.device))
                .collect();
            format!("any one of {}", routes.join(", "))
        }
        Ok(_) => "no route via flannel.1 to another node: nothing to ping across the \
                  overlay (a single-node cluster, or flannel has not learnt its peers yet)"
            .into(),
        Err(why) => format!("no peer to ping: {why}"),
    };
    steps.push(StepReport {
        step: "peer".into(),
        result: Outcome::Note,
        evidence,
    });
    Expectations {
        steps,
        subnets,
        targets,
    }
}

/// Peers to ping, at most this many (a dead one costs a ping timeout).
pub const PEERS_TRIED: usize = 3;

/// Up to [`PEERS_TRIED`] peer `flannel.1` addresses from this process's
/// routing table: IPv4 first, then IPv6, lowest destination first. `Err`
/// says why none could be looked for (no `flannel.1`, netlink unreadable).
fn find_peers() -> Result<Vec<Peer>, String> {
    let found = link::blocking(None, |netlink: Netlink| async move {
        let mut missing = Vec::new();
        for (device, family) in FLANNEL_DEVICES.iter().zip([Family::V4, Family::V6]) {
            let index = match netlink.index_of(device).await {
                Ok(index) => index,
                Err(link::Error::NoSuchLink(_)) => {
                    missing.push(*device);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let routes = netlink.routes(family).await?;
            let peers: Vec<Peer> = pick_peers(&routes, index)
                .into_iter()
                .take(PEERS_TRIED)
                .filter_map(|route| {
                    route.gateway.map(|address| Peer {
                        address,
                        subnet: route.destination,
                        device: (*device).to_owned(),
                    })
                })
                .collect();
            if !peers.is_empty() {
                return Ok(Ok(peers));
            }
        }
        if missing.len() == FLANNEL_DEVICES.len() {
            return Ok(Err(
                "no flannel.1 on this node (flannel not started, or not the vxlan backend)"
                    .to_owned(),
            ));
        }
        Ok(Ok(Vec::new()))
    });
    match found {
        Ok(result) => result,
        Err(e) => Err(format!("cannot read the routing table: {e}")),
    }
}

/// The routes to peers flannel installs on `device` (index): onlink, via a
/// gateway, in the main table; lowest destination first.
pub fn pick_peers(routes: &[Route], device: u32) -> Vec<&Route> {
    let mut peers: Vec<&Route> = routes
        .iter()
        .filter(|r| r.oif == Some(device) && r.onlink && r.gateway.is_some() && r.table == 254)
        .collect();
    peers.sort_by_key(|r| r.destination);
    peers
}

/// The report from what was expected and what the probe saw.
pub fn assemble(
    list: &Conflist,
    path: &Path,
    flannel: bool,
    expectations: Expectations,
    outcome: &hostprobe::Report,
) -> Report {
    let mut steps = expectations.steps;
    let failed = |step: Step| -> Vec<String> {
        outcome
            .failures_of(step)
            .map(|f| match f {
                // The CNI error alone, worded as the kubelet shows it.
                hostprobe::Error::Add(e) | hostprobe::Error::Del(e) => e.to_string(),
                other => other.to_string(),
            })
            .collect()
    };
    let row = |step: &str, result: Outcome, evidence: String| StepReport {
        step: step.to_owned(),
        result,
        evidence,
    };
    let interrupted = outcome.interrupted();
    let ifname = "eth0";
    let reported = outcome.reported_addresses(ifname);

    let setup = failed(Step::Setup);
    if !setup.is_empty() {
        steps.push(row("setup", Outcome::Failed, setup.join("; ")));
    }
    let add = failed(Step::Add);
    let added = outcome.added.is_some();
    steps.push(if !add.is_empty() {
        row("add", Outcome::Failed, add.join("; "))
    } else if added {
        row(
            "add",
            Outcome::Ok,
            format!(
                "{ifname} got {} in {}",
                join(&reported),
                outcome.add_took.map(ms).unwrap_or_default()
            ),
        )
    } else {
        row("add", Outcome::Skipped, not_run(interrupted))
    });
    let why_skipped = || {
        if interrupted {
            "interrupted".to_owned()
        } else {
            "ADD did not succeed".to_owned()
        }
    };
    let interface = failed(Step::Interface);
    steps.push(if !interface.is_empty() {
        row("interface", Outcome::Failed, interface.join("; "))
    } else if let Some(link) = &outcome.interface {
        row(
            "interface",
            Outcome::Ok,
            format!(
                "{} up, mtu {}, {}",
                link.name,
                link.mtu,
                join(&link.addresses)
            ),
        )
    } else {
        row("interface", Outcome::Skipped, why_skipped())
    });
    if !expectations.subnets.is_empty() {
        let subnet = failed(Step::Subnet);
        steps.push(if !subnet.is_empty() {
            row("subnet", Outcome::Failed, subnet.join("; "))
        } else if outcome.interface.is_some() {
            row(
                "subnet",
                Outcome::Ok,
                format!(
                    "{} in {}",
                    reported
                        .iter()
                        .map(|a| a.addr().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    join(&expectations.subnets)
                ),
            )
        } else {
            row("subnet", Outcome::Skipped, why_skipped())
        });
    }
    for target in &expectations.targets {
        let pings: Vec<_> = outcome
            .pings
            .iter()
            .filter(|p| p.name == target.name)
            .collect();
        let step = format!("ping {}", target.name);
        if pings.is_empty() {
            let because = if added && !interrupted {
                outcome
                    .notes
                    .iter()
                    .find(|n| n.contains(&target.name))
                    .cloned()
                    .unwrap_or_else(|| "not pinged".into())
            } else {
                why_skipped()
            };
            steps.push(row(&step, Outcome::Skipped, because));
        }
        if matches!(target.destination, hostprobe::Destination::AnyOf(_)) && !pings.is_empty() {
            // One row: the peer that answered, after those that did not.
            let missed: Vec<String> = pings
                .iter()
                .filter_map(|p| {
                    p.result
                        .as_ref()
                        .err()
                        .map(|e| format!("{}: {}", p.address, chain(&**e)))
                })
                .collect();
            steps.push(match pings.iter().find(|p| p.result.is_ok()) {
                Some(p) => {
                    let rtt = p.result.as_ref().map(|d| ms(*d)).unwrap_or_default();
                    let mut text = format!("{} reached in {rtt}", p.address);
                    if !missed.is_empty() {
                        text.push_str(&format!(" (no answer first from {})", missed.join("; ")));
                    }
                    row(&step, Outcome::Ok, text)
                }
                None => row(&step, Outcome::Failed, missed.join("; ")),
            });
            continue;
        }
        for ping in pings {
            steps.push(match &ping.result {
                Ok(rtt) => row(
                    &step,
                    Outcome::Ok,
                    format!("{} reached in {}", ping.address, ms(*rtt)),
                ),
                Err(e) => row(&step, Outcome::Failed, chain(&**e)),
            });
        }
    }
    let del = failed(Step::Del);
    steps.push(if !del.is_empty() {
        row("del", Outcome::Failed, del.join("; "))
    } else if let Some(took) = outcome.del_took {
        row("del", Outcome::Ok, format!("in {}", ms(took)))
    } else {
        row("del", Outcome::Skipped, "ADD never started".into())
    });
    let cleanup = failed(Step::Cleanup);
    steps.push(if !cleanup.is_empty() {
        row("cleanup", Outcome::Failed, cleanup.join("; "))
    } else if outcome.del_took.is_some() && del.is_empty() {
        row(
            "cleanup",
            Outcome::Ok,
            "pod namespace removed, no veth left on the node".into(),
        )
    } else {
        row("cleanup", Outcome::Skipped, "DEL did not succeed".into())
    });
    if interrupted {
        steps.push(row(
            "interrupted",
            Outcome::Failed,
            "stopped by a signal; the remaining checks were skipped, DEL ran".into(),
        ));
    }
    let cni_error = outcome.failures.iter().find_map(|f| match f {
        hostprobe::Error::Add(e) | hostprobe::Error::Del(e) => Some(e.to_string()),
        _ => None,
    });
    let passed = outcome.is_ok() && steps.iter().all(|s| s.result != Outcome::Failed);
    let summary = summarise(passed, interrupted, &reported, &steps, &add);
    Report {
        version: VERSION,
        passed,
        interrupted,
        conflist: path.to_owned(),
        network: list.name.clone(),
        plugins: plugin_types(list),
        flannel,
        container_id: outcome.container_id.clone(),
        pod_addresses: reported,
        steps,
        cni_error,
        summary,
    }
}

/// The report in one line.
fn summarise(
    passed: bool,
    interrupted: bool,
    reported: &[IpNet],
    steps: &[StepReport],
    add_failures: &[String],
) -> String {
    if interrupted {
        return "interrupted before the probe finished (its pod was cleaned up)".into();
    }
    if let Some(error) = add_failures.first() {
        return error.clone();
    }
    if !passed {
        return steps
            .iter()
            .find(|s| s.result == Outcome::Failed)
            .map(|s| format!("{} failed: {}", s.step, s.evidence))
            .unwrap_or_else(|| "the probe failed".into());
    }
    let mut parts = vec![format!("pod got {}", join(reported))];
    for step in steps {
        if let (Some(name), Outcome::Ok) = (step.step.strip_prefix("ping "), step.result) {
            parts.push(format!("{name} {}", step.evidence));
        }
    }
    parts.join("; ")
}

fn not_run(interrupted: bool) -> String {
    if interrupted {
        "interrupted before ADD".into()
    } else {
        "the pod namespace could not be made".into()
    }
}

fn join(nets: &[IpNet]) -> String {
    if nets.is_empty() {
        return "no address".into();
    }
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `0.08 ms`, `12 ms`, `1530 ms`.
fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 10.0 {
        format!("{millis:.2} ms")
    } else {
        format!("{millis:.0} ms")
    }
}

/// Go's wording for the common cases, as the plugin would print them.
fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebootguard_hostnet::cni::Outcome as CniOutcome;
    use serde_json::json;

    fn k3s() -> Conflist {
        Conflist::from_value(&json!({
            "name": "cbr0", "cniVersion": "1.0.0",
            "plugins": [{"type": "flannel", "delegate": {"isDefaultGateway": true}},
                        {"type": "portmap", "capabilities": {"portMappings": true}},
                        {"type": "bandwidth", "capabilities": {"bandwidth": true}}]
        }))
        .expect("conflist")
    }

    fn route(dst: &str, gateway: Option<&str>, oif: u32, onlink: bool) -> Route {
        Route {
            destination: dst.parse().expect("cidr"),
            gateway: gateway.map(|g| g.parse().expect("ip")),
            oif: Some(oif),
            table: 254,
            metric: 0,
            onlink,
        }
    }

    #[test]
    fn the_peer_is_an_onlink_gateway_on_flannel() {
        let routes = [
            route("0.0.0.0/0", Some("192.0.2.254"), 2, false),
            route("10.42.2.0/24", Some("10.42.2.0"), 5, true),
            route("10.42.1.0/24", Some("10.42.1.0"), 5, true),
            route("10.42.0.0/24", None, 6, false),
            route("10.42.9.0/24", Some("10.42.9.0"), 5, false),
        ];
        let peers = pick_peers(&routes, 5);
        let gateways: Vec<_> = peers.iter().map(|r| r.gateway).collect();
        assert_eq!(
            gateways,
            [
                Some("10.42.1.0".parse().expect("ip")),
                Some("10.42.2.0".parse().expect("ip"))
            ]
        );
        assert!(pick_peers(&routes[..1], 5).is_empty());
        assert!(pick_peers(&routes, 7).is_empty());
    }

    #[test]
    fn flannel_expectations_come_from_subnet_env_and_the_peer() {
        let list = k3s();
        let env = b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
        let peer = Peer {
            address: "10.42.1.0".parse().expect("ip"),
            subnet: "10.42.1.0/24".parse().expect("cidr"),
            device: "flannel.1".into(),
        };
        let expected = flannel_expectations(
            &list,
            Path::new("/c"),
            Path::new("/run/flannel/subnet.env"),
            Ok(env.to_vec()),
            Ok(vec![peer]),
        );
        assert_eq!(
            expected.subnets,
            vec![
                "10.42.0.0/24".parse::<IpNet>().expect("cidr"),
                "2001:cafe:42::/64".parse().expect("cidr")
            ]
        );
        assert_eq!(
            expected.targets,
            vec![
                Target::ip("gateway", "10.42.0.1".parse().expect("ip")),
                Target::ip("gateway (IPv6)", "2001:cafe:42::1".parse().expect("ip")),
                Target::any_of("peer flannel.1", vec!["10.42.1.0".parse().expect("ip")]),
            ]
        );
        assert_eq!(
            expected.steps[0].evidence,
            "cbr0: flannel → portmap → bandwidth (/c)"
        );
        assert_eq!(expected.steps[1].result, Outcome::Ok);

        let missing = flannel_expectations(
            &list,
            Path::new("/c"),
            Path::new("/run/flannel/subnet.env"),
            Err(std::io::ErrorKind::NotFound.into()),
            Ok(Vec::new()),
        );
        assert!(missing.subnets.is_empty() && missing.targets.is_empty());
        assert_eq!(missing.steps[1].result, Outcome::Note);
        assert_eq!(
            missing.steps[1].evidence,
            "cannot read /run/flannel/subnet.env: no such file or directory; the flannel plugin will fail ADD"
        );
        assert!(
            missing.steps[2].evidence.contains("single-node cluster"),
            "{:?}",
            missing.steps[2]
        );
    }

    fn hostnet_report(failures: Vec<hostprobe::Error>, added: bool) -> hostprobe::Report {
        let json = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/p"}],
            "ips": [{"interface": 2, "address": "10.42.0.5/24", "gateway": "10.42.0.1"}]});
        hostprobe::Report {
            container_id: "rebootguard-probe-1-0".into(),
            added: added.then(|| CniOutcome {
                success: serde_json::from_value(json.clone()).expect("result"),
                json,
            }),
            add_took: Some(Duration::from_millis(93)),
            interface: None,
            pings: Vec::new(),
            del_took: Some(Duration::from_millis(41)),
            notes: Vec::new(),
            failures,
        }
    }

    #[test]
    fn a_failed_add_reads_as_the_kubelet_would_show_it() {
        let list = k3s();
        let expected = flannel_expectations(
            &list,
            Path::new("/c"),
            Path::new("/run/flannel/subnet.env"),
            Err(std::io::ErrorKind::NotFound.into()),
            Ok(Vec::new()),
        );
        let error = cni::Error::Plugin {
            plugin: "flannel".into(),
            command: cni::Command::Add,
            error: cni::PluginError {
                code: 999,
                msg: "loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory".into(),
                ..Default::default()
            },
        };
        let outcome = hostnet_report(vec![hostprobe::Error::Add(error)], false);
        let report = assemble(&list, Path::new("/c"), true, expected, &outcome);
        assert!(!report.passed);
        let text = "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory";
        assert_eq!(report.cni_error.as_deref(), Some(text));
        assert_eq!(report.summary, text);
        let add = report
            .steps
            .iter()
            .find(|s| s.step == "add")
            .expect("add row");
        assert_eq!((add.result, add.evidence.as_str()), (Outcome::Failed, text));
        let del = report
            .steps
            .iter()
            .find(|s| s.step == "del")
            .expect("del row");
        assert_eq!(del.result, Outcome::Ok);
        let rendered = report.render();
        assert!(
            rendered.contains(&format!("add         FAILED   {text}")),
            "{rendered}"
        );
        assert!(
            rendered.ends_with(&format!(
                "FAILED: pods on this node would not get working networking\n{text}\n"
            )),
            "{rendered}"
        );
    }

    #[test]
    fn a_passing_probe_lists_every_step() {
        let list = k3s();
        let mut expected = other_expectations(&list, Path::new("/c"));
        expected.targets = vec![Target::gateway()];
        let mut outcome = hostnet_report(Vec::new(), true);
        outcome.interface = Some(rebootguard_hostnet::Link {
            index: 2,
            name: "eth0".into(),
            mtu: 1450,
            up: true,
            state: link::OperState::Up,
            mac: None,
            kind: Some("veth".into()),
            master: None,
            addresses: vec!["10.42.0.5/24".parse().expect("cidr")],
            vxlan: None,
        });
        outcome.pings.push(hostprobe::Ping {
            name: "gateway".into(),
            address: "10.42.0.1".parse().expect("ip"),
            result: Ok(Duration::from_micros(80)),
        });
        let report = assemble(&list, Path::new("/c"), false, expected, &outcome);
        assert!(report.passed, "{report:?}");
        let rows: Vec<(&str, Outcome)> = report
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.result))
            .collect();
        assert_eq!(
            rows,
            [
                ("conflist", Outcome::Ok),
                ("flannel", Outcome::Skipped),
                ("add", Outcome::Ok),
                ("interface", Outcome::Ok),
                ("ping gateway", Outcome::Ok),
                ("del", Outcome::Ok),
                ("cleanup", Outcome::Ok),
            ]
        );
        assert_eq!(report.steps[2].evidence, "eth0 got 10.42.0.5/24 in 93 ms");
        assert_eq!(report.steps[4].evidence, "10.42.0.1 reached in 0.08 ms");
        assert_eq!(
            report.summary,
            "pod got 10.42.0.5/24; gateway 10.42.0.1 reached in 0.08 ms"
        );
        assert!(
            report
                .render()
                .ends_with("PASSED: a pod on this node gets networking\n")
        );
    }
}
