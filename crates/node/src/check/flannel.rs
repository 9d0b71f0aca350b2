//! The flannel-specific checks: subnet.env, the VXLAN device and the
//! entries flannel programs for every peer (facts sections 1, 3 and 4).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use rebootguard_cluster::node::NodeView;
use rebootguard_errors::chain;
use rebootguard_flannel::annotations::{self, Announcement, Mac};
use rebootguard_hostnet::link::{Link, NeighState};

use super::{ApiFacts, Check, Facts, Id};
use crate::live::Live;

/// One address family of the overlay.
struct Overlay {
    v6: bool,
    /// flannel's VXLAN device for the family.
    device: &'static str,
}

const V4: Overlay = Overlay {
    v6: false,
    device: "flannel.1",
};
const V6: Overlay = Overlay {
    v6: true,
    device: "flannel-v6.1",
};

impl Overlay {
    fn of<'a>(&self, a: &'a Announcement) -> &'a annotations::Family {
        if self.v6 { &a.v6 } else { &a.v4 }
    }

    fn lease(&self, cidrs: &[IpNet]) -> Option<IpNet> {
        cidrs
            .iter()
            .find(|c| matches!(c, IpNet::V6(_)) == self.v6)
            .map(IpNet::trunc)
    }
}

/// The overlays net-conf.json enables (IPv4 when it cannot be read).
fn overlays(f: &Facts) -> Vec<&'static Overlay> {
    match &f.local.net_conf {
        Ok(conf) => {
            let mut out = Vec::new();
            if conf.enable_ipv4 {
                out.push(&V4);
            }
            if conf.enable_ipv6 {
                out.push(&V6);
            }
            out
        }
        Err(_) => vec![&V4],
    }
}

/// The backend type: net-conf.json's, else what this node announced, else vxlan.
fn backend(f: &Facts) -> String {
    if let Ok(conf) = &f.local.net_conf {
        return conf.backend.kind.clone();
    }
    f.api
        .cluster()
        .and_then(|c| c.me.as_ref())
        .and_then(|me| Announcement::from_annotations(&me.flannel).backend_type)
        .unwrap_or_else(|| "vxlan".into())
}

/// The node's podCIDRs and where they came from: the API, else the backup.
fn reference_cidrs(f: &Facts) -> Option<(Vec<IpNet>, &'static str)> {
    if let Some(me) = f.api.cluster().and_then(|c| c.me.as_ref())
        && !me.pod_cidrs.is_empty()
    {
        return Some((me.pod_cidrs.clone(), "the Node's podCIDRs"));
    }
    f.local
        .backup_pod_cidrs
        .clone()
        .filter(|c| !c.is_empty())
        .map(|c| (c, "the last backup's podCIDRs"))
}

fn list(cidrs: &[IpNet]) -> String {
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn set(cidrs: &[IpNet]) -> BTreeSet<IpNet> {
    cidrs.iter().map(IpNet::trunc).collect()
}

const NOT_FLANNEL: &str = "the CNI network is not flannel";

/// Check 1: subnet.env present, parsed as the plugin parses it, and in
/// agreement with net-conf.json, the node's podCIDRs and `flannel.1`'s MTU.
pub(super) fn subnet_env(f: &Facts) -> Check {
    let id = Id::SubnetEnv;
    if !f.local.is_flannel() {
        return Check::skip(id, NOT_FLANNEL);
    }
    let path = &f.local.subnet_env_path;
    let restore = "rebootguard node restore (puts back this node's backup, or regenerates the file from the API); restart k3s if flannel.1 is missing too";
    let parsed = match &f.local.live {
        Live::Missing => {
            return Check::fail(
                id,
                "SubnetEnvMissing",
                format!("{path} does not exist: every pod sandbox on this node fails CNI ADD"),
            )
            .evidence([format!(
                "the flannel plugin says: loadFlannelSubnetEnv failed: open {path}: no such file or directory"
            )])
            .fix(restore);
        }
        Live::Unusable(why) => {
            return Check::fail(id, "SubnetEnvUnusable", format!("{path} {why}"));
        }
        Live::Present { parsed, .. } => parsed,
    };
    if !parsed.is_valid() {
        let errors: Vec<_> = parsed.errors().collect();
        let mut evidence: Vec<String> = errors.iter().map(|p| p.to_string()).collect();
        evidence.extend(
            errors
                .iter()
                .filter_map(|p| p.plugin_message(path))
                .map(|m| format!("the flannel plugin says: loadFlannelSubnetEnv failed: {m}")),
        );
        let hint = errors.first().map(|p| p.hint()).unwrap_or_default();
        return Check::fail(
            id,
            "SubnetEnvInvalid",
            format!("{path} is invalid: pods on this node cannot get networking"),
        )
        .evidence(evidence)
        .fix(format!("{restore} ({hint})"));
    }
    let env = &parsed.env;
    let mut wrong = Vec::new();
    let mut agreed = Vec::new();
    if let Ok(conf) = &f.local.net_conf {
        let mut live = env.networks.clone();
        live.extend(env.ipv6_networks.iter().copied());
        let mut want = Vec::new();
        if conf.enable_ipv4 {
            want.extend(conf.networks.iter().copied());
        }
        if conf.enable_ipv6 {
            want.extend(conf.ipv6_networks.iter().copied());
        }
        if set(&live) == set(&want) {
            agreed.push("net-conf.json".to_owned());
        } else {
            wrong.push(format!(
                "its networks {} differ from net-conf.json's {}",
                list(&live),
                list(&want)
            ));
        }
    }
    match reference_cidrs(f) {
        Some((cidrs, from)) if set(&cidrs) == set(&env.pod_cidrs()) => {
            agreed.push(format!("{from} {}", list(&cidrs)));
        }
        Some((cidrs, from)) => wrong.push(format!(
            "it leases {} but {from} are {}",
            list(&env.pod_cidrs()),
            list(&cidrs)
        )),
        None => {}
    }
    if backend(f) == "vxlan"
        && let Ok(host) = &f.local.host
        && let (Some(link), Some(mtu)) = (host.link(V4.device), env.mtu)
    {
        if link.mtu == mtu {
            agreed.push(format!("{}'s MTU {mtu}", V4.device));
        } else {
            wrong.push(format!(
                "FLANNEL_MTU={mtu} but {} has MTU {}",
                V4.device, link.mtu
            ));
        }
    }
    if !wrong.is_empty() {
        return Check::fail(
            id,
            "SubnetEnvMismatch",
            format!("{path} disagrees with this node's configuration"),
        )
        .evidence(wrong)
        .fix("compare with `rebootguard node regenerate`; write it with `rebootguard node regenerate --write --force`, then restart k3s");
    }
    let summary = if agreed.is_empty() {
        format!("{path} is valid (not cross-checked: no API, no backup, no flannel.1)")
    } else {
        format!("{path} is valid and agrees with {}", agreed.join(", "))
    };
    Check::ok(id, summary)
}

/// Check 2: `flannel.1` exists, is VXLAN, up, with the configured VNI and
/// port, the announced public IP and VtepMAC, and the lease's /32.
pub(super) fn link(f: &Facts) -> Check {
    let id = Id::FlannelLink;
    if !f.local.is_flannel() {
        return Check::skip(id, NOT_FLANNEL);
    }
    let backend = backend(f);
    if backend != "vxlan" {
        return Check::skip(id, format!("backend {backend} uses no VXLAN device"));
    }
    let host = match &f.local.host {
        Ok(host) => host,
        Err(why) => {
            return Check::unknown(
                id,
                "NetlinkUnavailable",
                format!("links unknown: {}", chain(why)),
            );
        }
    };
    let me = f.api.cluster().and_then(|c| c.me.as_ref());
    let announced = me.map(|me| Announcement::from_annotations(&me.flannel));
    let leases = reference_cidrs(f)
        .map(|(c, _)| c)
        .or_else(|| match &f.local.live {
            Live::Present { parsed, .. } if parsed.is_valid() => Some(parsed.env.pod_cidrs()),
            _ => None,
        });
    let (vni, port) = match &f.local.net_conf {
        Ok(conf) => (conf.backend.vxlan_vni(), conf.backend.vxlan_port()),
        Err(_) => (1, 8472),
    };
    let mut wrong = Vec::new();
    let mut fine = Vec::new();
    for overlay in overlays(f) {
        let device = overlay.device;
        let Some(link) = host.link(device) else {
            return Check::fail(
                id,
                "FlannelLinkMissing",
                format!("{device} does not exist: pod traffic cannot leave this node"),
            )
            .fix("restart k3s (systemctl restart k3s): flannel creates the device when it starts with a valid subnet.env");
        };
        let expected_mac = announced
            .as_ref()
            .and_then(|a| overlay.of(a).data)
            .and_then(|d| d.vtep_mac);
        let public_ip = announced.as_ref().and_then(|a| overlay.of(a).public_ip);
        let lease = leases.as_deref().and_then(|l| overlay.lease(l));
        wrong.extend(vtep_problems(
            link,
            vni,
            port,
            expected_mac,
            public_ip,
            lease,
        ));
        fine.push(format!(
            "{device} is VXLAN {vni}/{port}{}{}",
            lease
                .map(|l| format!(", carries {}/{}", l.network(), l.max_prefix_len()))
                .unwrap_or_default(),
            expected_mac
                .map(|m| format!(", MAC {m}"))
                .unwrap_or_default()
        ));
    }
    if !wrong.is_empty() {
        return Check::fail(
            id,
            "FlannelLinkWrong",
            "flannel's VXLAN device does not match what flannel announced or net-conf.json says",
        )
        .evidence(wrong)
        .fix("restart k3s: flannel reconfigures the device at start (delete it first if its addresses are stale: ip link delete flannel.1)");
    }
    let mut check = Check::ok(id, fine.join("; "));
    if announced.is_none() {
        check = check.evidence([format!(
            "not compared with flannel's annotations: {}",
            why_no_node(&f.api)
        )]);
    }
    check
}

fn why_no_node(api: &ApiFacts) -> String {
    match api.cluster() {
        Some(_) => "the API has no Node of this name".into(),
        None => api.why_not(),
    }
}

fn vtep_problems(
    link: &Link,
    vni: u32,
    port: u16,
    mac: Option<Mac>,
    public_ip: Option<IpAddr>,
    lease: Option<IpNet>,
) -> Vec<String> {
    let device = &link.name;
    let mut wrong = Vec::new();
    if link.kind.as_deref() != Some("vxlan") {
        wrong.push(format!(
            "{device} is a {} device, not vxlan",
            link.kind.as_deref().unwrap_or("physical")
        ));
    }
    if !link.up {
        wrong.push(format!("{device} is down"));
    }
    if let Some(vxlan) = &link.vxlan {
        if vxlan.vni.is_some_and(|v| v != vni) {
            wrong.push(format!(
                "{device} has VNI {} but net-conf.json says {vni}",
                vxlan.vni.unwrap_or_default()
            ));
        }
        if vxlan.port.is_some_and(|p| p != port) {
            wrong.push(format!(
                "{device} uses UDP port {} but flannel's is {port}",
                vxlan.port.unwrap_or_default()
            ));
        }
        if let (Some(local), Some(ip)) = (vxlan.local, public_ip)
            && local != ip
        {
            wrong.push(format!(
                "{device} tunnels from {local} but this node announces public-ip {ip}"
            ));
        }
    }
    if let (Some(want), Some(have)) = (mac, link.mac.as_deref())
        && Mac::from_bytes(have) != Some(want)
    {
        wrong.push(format!(
            "{device} has MAC {} but this node announces VtepMAC {want}: peers send to the wrong MAC",
            link.mac_string().unwrap_or_default()
        ));
    }
    if let Some(lease) = lease {
        let own = IpNet::new(lease.network(), lease.max_prefix_len()).ok();
        if own.is_some_and(|own| !link.addresses.contains(&own)) {
            let has: Vec<String> = link.addresses.iter().map(ToString::to_string).collect();
            wrong.push(format!(
                "{device} carries {} instead of {}/{}",
                if has.is_empty() {
                    "no address".to_owned()
                } else {
                    has.join(", ")
                },
                lease.network(),
                lease.max_prefix_len()
            ));
        }
    }
    wrong
}

/// What one peer needs on this node: neighbour, FDB entry, onlink route.
struct Expected {
    peer: String,
    lease: IpNet,
    mac: Mac,
    public_ip: IpAddr,
}

/// Check 3: for every peer flannel announced, the FDB entry, the neighbour
/// and the onlink route on `flannel.1` match its annotations.
pub(super) fn peers(f: &Facts) -> Check {
    let id = Id::Peers;
    if !f.local.is_flannel() {
        return Check::skip(id, NOT_FLANNEL);
    }
    let backend = backend(f);
    if backend != "vxlan" {
        return Check::skip(
            id,
            format!("backend {backend}: peer entries are only checked for vxlan"),
        );
    }
    let host = match &f.local.host {
        Ok(host) => host,
        Err(why) => {
            return Check::unknown(
                id,
                "NetlinkUnavailable",
                format!("entries unknown: {}", chain(why)),
            );
        }
    };
    let cluster = match &f.api {
        ApiFacts::Cluster(cluster) => cluster,
        ApiFacts::NotAsked => return Check::skip(id, "the API was not asked (--no-api)"),
        ApiFacts::Unavailable(why) => {
            return Check::unknown(
                id,
                "ApiUnavailable",
                format!("peers unknown: the API is unavailable: {}", chain(why)),
            );
        }
    };
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut broken_peers = BTreeSet::new();
    let mut checked = 0usize;
    for overlay in overlays(f) {
        let Some(link) = host.link(overlay.device) else {
            return Check::skip(
                id,
                format!(
                    "{} does not exist (see flannel-link): no peer is reachable",
                    overlay.device
                ),
            );
        };
        let mut owned = Vec::new();
        for peer in cluster.peers.iter().filter(|p| p.name != f.local.node) {
            match expected(peer, overlay) {
                Ok(want) => {
                    owned.push(want.lease);
                    checked += 1;
                    let missing = peer_problems(host, link.index, &want);
                    if !missing.is_empty() {
                        broken_peers.insert(want.peer.clone());
                        problems.extend(missing);
                    }
                }
                Err(note) => notes.push(note),
            }
        }
        // Routes through the device to leases no peer holds any more.
        for route in host.routes.iter().filter(|r| {
            r.oif == Some(link.index)
                && r.destination.prefix_len() < r.destination.max_prefix_len()
                && !owned.contains(&r.destination.trunc())
                && Some(r.destination.trunc()) != own_lease(f, overlay)
        }) {
            notes.push(format!(
                "stale route {} via {}: no peer holds this lease",
                route.destination, overlay.device
            ));
        }
    }
    if !problems.is_empty() {
        let names: Vec<String> = broken_peers.into_iter().collect();
        return Check::fail(
            id,
            "PeerEntriesMissing",
            format!(
                "entries for {} of {checked} peer(s) are missing or wrong: {}; pods here cannot reach pods there",
                names.len(),
                names.join(", ")
            ),
        )
        .evidence(problems)
        .evidence(notes)
        .fix("restart k3s: flannel programs every peer's FDB entry, neighbour and route at start");
    }
    let summary = if checked == 0 {
        "no peer has announced flannel (single node, or peers not up yet)".to_owned()
    } else {
        format!("FDB entry, neighbour and route present for all {checked} peer(s)")
    };
    Check::ok(id, summary).evidence(notes)
}

fn own_lease(f: &Facts, overlay: &Overlay) -> Option<IpNet> {
    reference_cidrs(f).and_then(|(c, _)| overlay.lease(&c))
}

/// What `peer` needs on this node, or why it needs nothing (a note).
fn expected(peer: &NodeView, overlay: &Overlay) -> Result<Expected, String> {
    let a = Announcement::from_annotations(&peer.flannel);
    let name = &peer.name;
    if !a.subnet_manager {
        return Err(format!(
            "peer {name} has not announced flannel (no kube-subnet-manager annotation): no entries expected"
        ));
    }
    if a.backend_type.as_deref().is_some_and(|t| t != "vxlan") {
        return Err(format!(
            "peer {name} runs backend {}",
            a.backend_type.as_deref().unwrap_or_default()
        ));
    }
    let family = overlay.of(&a);
    let lease = overlay.lease(&peer.pod_cidrs);
    let mac = family.data.and_then(|d| d.vtep_mac);
    match (lease, mac, family.public_ip) {
        (Some(lease), Some(mac), Some(public_ip)) => Ok(Expected {
            peer: name.clone(),
            lease,
            mac,
            public_ip,
        }),
        _ => Err(format!(
            "peer {name} announced no complete {} entry (podCIDR, VtepMAC, public-ip){}",
            if overlay.v6 { "IPv6" } else { "IPv4" },
            if a.problems.is_empty() {
                String::new()
            } else {
                format!(": {}", a.problems.join("; "))
            }
        )),
    }
}

fn peer_problems(host: &super::Host, index: u32, want: &Expected) -> Vec<String> {
    let Expected {
        peer,
        lease,
        mac,
        public_ip,
    } = want;
    let gateway = lease.network();
    let device = host
        .links
        .iter()
        .find(|l| l.index == index)
        .map(|l| l.name.as_str())
        .unwrap_or("flannel.1");
    let at = format!("peer {peer} ({lease})");
    let mut out = Vec::new();

    let neighbour = host
        .neighbours
        .iter()
        .find(|n| n.index == index && n.ip == gateway);
    match neighbour {
        None => out.push(format!(
            "{at}: no neighbour entry {gateway} → {mac} on {device}"
        )),
        Some(n) if n.mac.as_deref().and_then(Mac::from_bytes) != Some(*mac) => out.push(format!(
            "{at}: neighbour {gateway} points to {} instead of {mac}",
            n.mac
                .as_deref()
                .and_then(Mac::from_bytes)
                .map(|m| m.to_string())
                .unwrap_or_else(|| "nothing".into())
        )),
        Some(n) if n.state != NeighState::Permanent => out.push(format!(
            "{at}: neighbour {gateway} is {:?}, not permanent (it will expire)",
            n.state
        )),
        Some(_) => {}
    }

    let fdb: Vec<_> = host
        .fdb
        .iter()
        .filter(|e| e.index == index && Mac::from_bytes(&e.mac) == Some(*mac))
        .collect();
    if fdb.is_empty() {
        out.push(format!(
            "{at}: no FDB entry {mac} → {public_ip} on {device}"
        ));
    } else if !fdb.iter().any(|e| e.destination == Some(*public_ip)) {
        let dst: Vec<String> = fdb
            .iter()
            .map(|e| {
                e.destination
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "?".into())
            })
            .collect();
        out.push(format!(
            "{at}: FDB entry {mac} tunnels to {} instead of {public_ip}",
            dst.join(", ")
        ));
    }

    let route = host
        .routes
        .iter()
        .find(|r| r.destination.trunc() == *lease && r.table == 254);
    match route {
        None => out.push(format!(
            "{at}: no route {lease} via {gateway} dev {device} onlink"
        )),
        Some(r) if r.oif != Some(index) || r.gateway != Some(gateway) => out.push(format!(
            "{at}: route {lease} goes {} instead of via {gateway} dev {device}",
            r.gateway
                .map(|g| format!("via {g}"))
                .unwrap_or_else(|| "directly".into())
        )),
        Some(_) => {}
    }
    out
}
