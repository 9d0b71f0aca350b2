//! The probe that runs inside each verify pod (`rebootguard verify probe`,
//! hidden): everything it learns, it learns from inside the pod's own
//! network namespace, exactly as a workload there would.
//!
//! 1. Its own address (the interfaces' addresses) must lie in the node's
//!    podCIDR, which verify passes from the Node object.
//! 2. Names resolve through the system resolver (getaddrinfo through std's
//!    `ToSocketAddrs`), so the pod's `/etc/resolv.conf` search domains and
//!    `ndots` apply as they do for real applications; the error text is
//!    kept as evidence.
//! 3. It listens on a TCP port and connects to the other probes, found by
//!    resolving the run's headless Service until the expected count shows
//!    up. It stays until it has reached every peer *and* every peer has
//!    reached it (or its wait ends), so no probe leaves before a slower one
//!    had the chance to connect.
//! 4. It writes its [`Message`] to the termination message path and exits
//!    0 when every check passed, 1 when one did not.
//!
//! Blocking std networking on plain threads: the probe is a short-lived
//! process, and a lookup stuck in the resolver is abandoned (its thread is
//! left behind) rather than waited for.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::MESSAGE_LIMIT;
use crate::message::{Message, Outcome, PeerError, Peers, VERSION};

/// What the probe is told (its command-line arguments).
#[derive(Debug, Clone)]
pub struct Config {
    /// The node it runs on.
    pub node: String,
    /// The node's podCIDRs.
    pub pod_cidrs: Vec<IpNet>,
    /// The headless Service listing every probe of the run.
    pub service: String,
    /// Names that must resolve besides the Service (`kubernetes.default`).
    pub lookups: Vec<String>,
    /// How many other probes to reach.
    pub peers: usize,
    /// The TCP port every probe listens on.
    pub port: u16,
    /// How long to wait for the peers (and for DNS).
    pub wait: Duration,
    /// Where to write the result.
    pub message_path: PathBuf,
}

/// Pause between rounds of peer lookups and connects.
const ROUND: Duration = Duration::from_millis(200);
/// Bound on one TCP connect to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the probe; returns the process exit code (0 pass, 1 a check
/// failed, 2 the probe could not run).
pub fn main(config: &Config) -> u8 {
    let started = Instant::now();
    let deadline = started + config.wait;
    // Listen first: peers may come looking before we are done with DNS.
    let listener = match TcpListener::bind(("::", config.port))
        .or_else(|_| TcpListener::bind(("0.0.0.0", config.port)))
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on port {}: {e}", config.port);
            return 2;
        }
    };
    let heard = Arc::new(Mutex::new(BTreeSet::new()));
    let h = heard.clone();
    std::thread::spawn(move || accept(&listener, &h));
    let addresses = match own_addresses() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot list this pod's interfaces: {e}");
            return 2;
        }
    };
    let pod_ip = pod_ip(&addresses, &config.pod_cidrs);
    let own: Vec<IpAddr> = addresses.iter().map(|(_, ip)| *ip).collect();
    let primary = primary(&addresses, &config.pod_cidrs);
    let mut names = config.lookups.clone();
    names.push(config.service.clone());
    // DNS may take half the wait: the Service's name appears only once
    // the DNS server has seen this pod's address.
    let dns_deadline = started + config.wait / 2;
    let answers: Vec<(String, Result<Vec<IpAddr>, String>)> = names
        .iter()
        .map(|n| (n.clone(), resolve_until(n, dns_deadline)))
        .collect();
    let dns = dns(&answers);
    let peers = reach_peers(config, &own, primary, &heard, deadline);
    let message = Message {
        v: VERSION,
        node: config.node.clone(),
        ips: own,
        pod_ip,
        dns,
        peers,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let json = message.to_json(MESSAGE_LIMIT).unwrap_or_default();
    println!("{json}");
    if let Err(e) =
        std::fs::File::create(&config.message_path).and_then(|mut f| f.write_all(json.as_bytes()))
    {
        eprintln!(
            "error: cannot write the result to {}: {e}",
            config.message_path.display()
        );
        return 2;
    }
    u8::from(!message.ok())
}

fn accept(listener: &TcpListener, heard: &Mutex<BTreeSet<IpAddr>>) {
    for stream in listener.incoming().flatten() {
        if let Ok(peer) = stream.peer_addr() {
            heard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(canonical(peer.ip()));
        }
    }
}

/// An IPv4 peer seen on a dual-stack socket as `::ffff:a.b.c.d` is `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The pod's addresses, loopback and link-local excluded, by interface.
pub fn own_addresses() -> std::io::Result<Vec<(String, IpAddr)>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_unicast_link_local(),
        };
        if !ip.is_loopback() && !link_local {
            out.push((ifa.interface_name, ip));
        }
    }
    Ok(out)
}

/// Check 1: some address lies in a podCIDR, and every podCIDR's family has
/// an address in it.
pub fn pod_ip(addresses: &[(String, IpAddr)], cidrs: &[IpNet]) -> Outcome {
    let list = |a: &[(String, IpAddr)]| {
        a.iter()
            .map(|(i, ip)| format!("{ip} ({i})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if addresses.is_empty() {
        return Outcome::fail("the pod has no address besides loopback");
    }
    if cidrs.is_empty() {
        return Outcome::fail(format!(
            "the node has no podCIDR to check {} against",
            list(addresses)
        ));
    }
    let mut inside = Vec::new();
    let mut missing = Vec::new();
    for cidr in cidrs {
        match addresses.iter().find(|(_, ip)| cidr.contains(ip)) {
            Some((_, ip)) => inside.push(format!("{ip} is in {cidr}")),
            None => missing.push(cidr.to_string()),
        }
    }
    if missing.is_empty() {
        Outcome::pass(inside.join(", "))
    } else {
        Outcome::fail(format!(
            "{} is not in the node's podCIDR {}",
            list(addresses),
            missing.join(", ")
        ))
    }
}

/// The address peers should be reached on: the family of the first podCIDR
/// with an address in it (one address per peer, even when dual-stack).
fn primary(addresses: &[(String, IpAddr)], cidrs: &[IpNet]) -> Option<IpAddr> {
    cidrs
        .iter()
        .find_map(|c| addresses.iter().find(|(_, ip)| c.contains(ip)))
        .or_else(|| addresses.first())
        .map(|(_, ip)| *ip)
}

/// One lookup through the system resolver, abandoned after `timeout`.
fn resolve(name: &str, timeout: Duration) -> Result<Vec<IpAddr>, String> {
    let (tx, rx) = mpsc::channel();
    let owned = name.to_owned();
    std::thread::spawn(move || {
        let r = (owned.as_str(), 0)
            .to_socket_addrs()
            .map(|a| a.map(|s| s.ip()).collect::<BTreeSet<_>>());
        let _ = tx.send(r);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(ips)) if ips.is_empty() => Err("no address in the answer".to_owned()),
        Ok(Ok(ips)) => Ok(ips.into_iter().collect()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {:.1}s (resolver timed out)",
            timeout.as_secs_f64()
        )),
    }
}

/// Resolves `name` again and again until it answers or `deadline`; the
/// last error otherwise.
fn resolve_until(name: &str, deadline: Instant) -> Result<Vec<IpAddr>, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = resolve(name, left.max(Duration::from_millis(100)));
        if result.is_ok() || Instant::now() + ROUND >= deadline {
            return result;
        }
        std::thread::sleep(ROUND);
    }
}

/// Check 2: every name answered.
fn dns(answers: &[(String, Result<Vec<IpAddr>, String>)]) -> Outcome {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (name, r) in answers {
        match r {
            Ok(ips) => good.push(format!(
                "{name} -> {}",
                ips.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            Err(e) => bad.push(format!("{name}: {e}")),
        }
    }
    if bad.is_empty() {
        Outcome::pass(good.join("; "))
    } else {
        Outcome::fail(bad.join("; "))
    }
}

/// Connects to every one of `peers` at once, each bounded by
/// [`CONNECT_TIMEOUT`]: a round costs one timeout whatever the number of
/// peers not up yet (one after the other, 49 of them would take 49 s and
/// leave no time to try again once they come up).
fn connect_all(peers: &[IpAddr], port: u16) -> Vec<(IpAddr, Result<(), String>)> {
    std::thread::scope(|scope| {
        let attempts: Vec<_> = peers
            .iter()
            .map(|&ip| {
                scope.spawn(move || {
                    TcpStream::connect_timeout(&SocketAddr::new(ip, port), CONNECT_TIMEOUT)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        peers
            .iter()
            .zip(attempts)
            .map(|(&ip, attempt)| {
                let result = attempt
                    .join()
                    .unwrap_or_else(|_| Err("the connect attempt failed".into()));
                (ip, result)
            })
            .collect()
    })
}

/// Check 3: find the peers through the Service, connect to each; wait
/// until every one is reached and has reached us, or `deadline`.
fn reach_peers(
    config: &Config,
    own: &[IpAddr],
    primary: Option<IpAddr>,
    heard: &Mutex<BTreeSet<IpAddr>>,
    deadline: Instant,
) -> Peers {
    let mut reached: BTreeSet<IpAddr> = BTreeSet::new();
    let mut failed: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut found: BTreeSet<IpAddr> = BTreeSet::new();
    let mut lookup_error = None;
    let heard_count = || {
        heard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    };
    loop {
        if config.peers == 0 {
            break;
        }
        if reached.len() < config.peers {
            let left = deadline.saturating_duration_since(Instant::now());
            match resolve(
                &config.service,
                left.clamp(Duration::from_millis(100), Duration::from_secs(5)),
            ) {
                Ok(ips) => {
                    lookup_error = None;
                    found = ips
                        .into_iter()
                        .filter(|ip| !own.contains(ip))
                        .filter(|ip| primary.is_none_or(|p| p.is_ipv4() == ip.is_ipv4()))
                        .collect();
                }
                Err(e) => lookup_error = Some(e),
            }
            let todo: Vec<IpAddr> = found.difference(&reached).copied().collect();
            for (ip, result) in connect_all(&todo, config.port) {
                match result {
                    Ok(()) => {
                        failed.remove(&ip);
                        reached.insert(ip);
                    }
                    Err(e) => {
                        failed.insert(ip, e);
                    }
                }
            }
        }
        let done = reached.len() >= config.peers && heard_count() >= config.peers;
        if done || Instant::now() + ROUND >= deadline {
            break;
        }
        std::thread::sleep(ROUND);
    }
    // A peer that vanished from the answers is no longer unreachable.
    failed.retain(|ip, _| found.contains(ip));
    Peers {
        expected: config.peers,
        found: found.len(),
        reached_count: reached.len(),
        reached: Some(reached.into_iter().collect()),
        unreachable: failed
            .into_iter()
            .map(|(ip, error)| PeerError { ip, error })
            .collect(),
        omitted: 0,
        heard: heard_count(),
        lookup_error,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn peers_are_tried_at_once_not_one_after_the_other() {
        // Addresses that never answer (TEST-NET-1, documentation only):
        // each attempt runs into its timeout, together.
        let silent: Vec<std::net::IpAddr> = (1..=8)
            .map(|i| std::net::IpAddr::from([192, 0, 2, i]))
            .collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut peers = silent.clone();
        peers.push(std::net::IpAddr::from([127, 0, 0, 1]));
        let t = std::time::Instant::now();
        let results = super::connect_all(&peers, port);
        // One timeout for all, where one after the other would take eight.
        assert!(
            t.elapsed() < super::CONNECT_TIMEOUT * 4,
            "{:?}",
            t.elapsed()
        );
        assert_eq!(results.len(), peers.len());
        for (ip, result) in &results {
            assert_eq!(result.is_ok(), ip.is_loopback(), "{ip}: {result:?}");
        }
    }

    use super::*;

    fn addr(s: &str) -> (String, IpAddr) {
        ("eth0".into(), s.parse().unwrap())
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn the_pod_ip_must_be_in_every_pod_cidr_family() {
        let a = [addr("10.42.1.7")];
        assert_eq!(
            pod_ip(&a, &[net("10.42.1.0/24")]),
            Outcome::pass("10.42.1.7 is in 10.42.1.0/24")
        );
        assert_eq!(
            pod_ip(&a, &[net("10.42.9.0/24")]),
            Outcome::fail("10.42.1.7 (eth0) is not in the node's podCIDR 10.42.9.0/24")
        );
        assert!(!pod_ip(&a, &[net("10.42.1.0/24"), net("fd00::/64")]).ok);
        assert!(!pod_ip(&[], &[net("10.42.1.0/24")]).ok);
        assert_eq!(
            pod_ip(&a, &[]),
            Outcome::fail("the node has no podCIDR to check 10.42.1.7 (eth0) against")
        );
        let dual = [addr("fd00::7"), addr("10.42.1.7")];
        assert!(pod_ip(&dual, &[net("10.42.1.0/24"), net("fd00::/64")]).ok);
        assert_eq!(primary(&dual, &[net("10.42.1.0/24")]), Some(dual[1].1));
        assert_eq!(primary(&dual, &[]), Some(dual[0].1));
    }

    #[test]
    fn dns_names_every_failing_lookup() {
        let ok = (
            "kubernetes.default".to_owned(),
            Ok(vec!["10.43.0.1".parse().unwrap()]),
        );
        let bad = (
            "rgv-x".to_owned(),
            Err("Name or service not known".to_owned()),
        );
        assert_eq!(
            dns(std::slice::from_ref(&ok)),
            Outcome::pass("kubernetes.default -> 10.43.0.1")
        );
        assert_eq!(
            dns(&[ok, bad]),
            Outcome::fail("rgv-x: Name or service not known")
        );
    }

    #[test]
    fn the_system_resolver_answers_for_localhost_and_fails_for_nonsense() {
        let ips = resolve("localhost", Duration::from_secs(5)).unwrap();
        assert!(ips.iter().all(IpAddr::is_loopback), "{ips:?}");
        assert!(resolve("no-such-name.invalid", Duration::from_secs(5)).is_err());
    }

    #[test]
    fn dual_stack_sockets_report_ipv4_peers_as_ipv4() {
        let mapped: IpAddr = "::ffff:10.42.0.5".parse().unwrap();
        assert_eq!(canonical(mapped), "10.42.0.5".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn two_probes_on_loopback_find_and_reach_each_other() {
        // Peers are found through /etc/hosts here ("localhost"), which
        // resolves to this host's loopback: both probes listen on one port
        // each and reach the other through the port they are told.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heard = Arc::new(Mutex::new(BTreeSet::new()));
        let h = heard.clone();
        std::thread::spawn(move || accept(&listener, &h));
        let dir = std::env::temp_dir();
        let config = Config {
            node: "a".into(),
            pod_cidrs: vec![],
            service: "localhost".into(),
            lookups: vec![],
            peers: 1,
            port,
            wait: Duration::from_secs(3),
            message_path: dir.join("unused"),
        };
        let deadline = Instant::now() + config.wait;
        let v4 = Some(IpAddr::from([127, 0, 0, 1]));
        let peers = reach_peers(&config, &[], v4, &heard, deadline);
        assert_eq!(peers.reached_count, 1, "{peers:?}");
        assert_eq!(peers.heard, 1, "our own connect was heard");
        assert!(peers.unreachable.is_empty());
        // A port nobody listens on: found, unreachable, with the error.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let config = Config {
            port: closed_port,
            wait: Duration::from_millis(600),
            ..config
        };
        let peers = reach_peers(&config, &[], v4, &heard, Instant::now() + config.wait);
        assert_eq!(peers.reached_count, 0);
        assert_eq!(peers.unreachable.len(), 1, "{peers:?}");
        assert!(
            peers.unreachable[0]
                .error
                .to_lowercase()
                .contains("refused")
        );
    }
}
