//! What the checks look at, as plain values: the node's files, its kernel
//! network state and what the API says. [`super::gather`] fills them from a
//! live node; the agent fills the API half from its watches; tests write them
//! by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use ipnet::IpNet;
use rebootguard_cluster::node::{EventView, NodeView, PodView};
use rebootguard_errors::{Failure, chain};
use rebootguard_flannel::NetConf;
use rebootguard_hostnet::link::{Fdb, Link, Neighbour, Route};
use serde_json::Value;

use crate::leases::Lease;
use crate::live::Live;

/// Everything one check run knows.
#[derive(Debug, Clone)]
pub struct Facts {
    /// What was read on the node itself.
    pub local: Local,
    /// What the API said.
    pub api: ApiFacts,
    /// When, for the age of events.
    pub now: jiff::Timestamp,
}

/// The node-local half: files and kernel state.
#[derive(Debug, Clone)]
pub struct Local {
    /// The node's name.
    pub node: String,
    /// The live subnet.env path as the node sees it (for messages).
    pub subnet_env_path: String,
    /// The live subnet.env.
    pub live: Live,
    /// net-conf.json, or why it is unusable.
    pub net_conf: Result<NetConf, Failure>,
    /// The CNI conflist.
    pub conflist: Conflist,
    /// The podCIDRs recorded with this node's newest backup (the reference
    /// when the API cannot be asked).
    pub backup_pod_cidrs: Option<Vec<IpNet>>,
    /// The kernel's view of the node's network namespace.
    pub host: Result<Host, Failure>,
    /// host-local's leases for the conflist's network.
    pub leases: Leases,
}

/// The CNI configuration and the plugins it needs.
#[derive(Debug, Clone)]
pub struct Conflist {
    /// The file, as the node names it.
    pub path: PathBuf,
    /// Its parsed JSON, or why it cannot be used.
    pub parsed: Result<Value, ConflistError>,
    /// The directories the runtime searches for plugins, as the node names them.
    pub bin_dirs: Vec<PathBuf>,
    /// Every plugin the network needs (the conflist's, and what flannel
    /// delegates to), with where it was found (under the root).
    pub plugins: BTreeMap<String, Option<PathBuf>>,
}

/// Why the conflist cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflistError {
    /// No file: the runtime reports `cni plugin not initialized`.
    Missing,
    /// The file cannot be read or parsed.
    Invalid(String),
}

/// Links, FDB, neighbours and routes of the node's namespace.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Every link with its addresses.
    pub links: Vec<Link>,
    /// Forwarding-database entries (bridge family).
    pub fdb: Vec<Fdb>,
    /// Neighbour entries.
    pub neighbours: Vec<Neighbour>,
    /// IPv4 and IPv6 unicast routes.
    pub routes: Vec<Route>,
}

impl Host {
    /// The link called `name`.
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}

/// host-local's lease files and what tells a live one from a leaked one.
#[derive(Debug, Clone, Default)]
pub struct Leases {
    /// The network's lease directory.
    pub dir: PathBuf,
    /// The lease files.
    pub files: Vec<Lease>,
    /// Problems reading them.
    pub errors: Vec<String>,
    /// When this boot began (leases older than that are leaked for sure).
    pub boot_time: Option<SystemTime>,
    /// Container IDs the runtime has tasks for, when its state directory
    /// exists (k3s's containerd: one directory per running container).
    pub live_containers: Option<BTreeSet<String>>,
}

/// What the API said.
#[derive(Debug, Clone)]
pub enum ApiFacts {
    /// Not asked (`--no-api`).
    NotAsked,
    /// No answer; why.
    Unavailable(Failure),
    /// The cluster as seen from this node.
    Cluster(Cluster),
}

/// The Nodes, this node's pods and the recent sandbox failures.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// This node's Node, `None` when the API has no such node.
    pub me: Option<NodeView>,
    /// Every other Node.
    pub peers: Vec<NodeView>,
    /// The pods bound to this node, or why they could not be listed.
    pub pods: Result<Vec<PodView>, Failure>,
    /// `FailedCreatePodSandBox` events (any node; the check keeps this
    /// node's), or why they could not be listed.
    pub events: Result<Vec<EventView>, Failure>,
}

impl ApiFacts {
    /// The cluster view, when the API answered.
    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            ApiFacts::Cluster(c) => Some(c),
            _ => None,
        }
    }

    /// Why there is no cluster view.
    pub fn why_not(&self) -> String {
        match self {
            ApiFacts::NotAsked => "the API was not asked (--no-api)".into(),
            ApiFacts::Unavailable(why) => format!("the API is unavailable: {}", chain(why)),
            ApiFacts::Cluster(_) => String::new(),
        }
    }
}

impl Local {
    /// Whether the node's pod network is flannel's: the conflist names the
    /// flannel plugin, or cannot be read (a flannel node before k3s wrote it).
    pub fn is_flannel(&self) -> bool {
        match &self.conflist.parsed {
            Ok(list) => plugin_types(list).iter().any(|t| t == "flannel"),
            Err(_) => true,
        }
    }
}

/// The `type` of every plugin in a conflist (or a single-plugin `.conf`).
pub fn plugin_types(list: &Value) -> Vec<String> {
    let entries: Vec<&Value> = match list.get("plugins").and_then(Value::as_array) {
        Some(plugins) => plugins.iter().collect(),
        None => vec![list],
    };
    entries
        .iter()
        .filter_map(|p| p.get("type").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Every plugin binary the network needs: the conflist's plugins, their
/// `ipam` plugins, and for flannel its delegate (default `bridge`) and the
/// `host-local` IPAM flannel always hands that delegate.
pub fn required_plugins(list: &Value) -> Vec<String> {
    let entries: Vec<&Value> = match list.get("plugins").and_then(Value::as_array) {
        Some(plugins) => plugins.iter().collect(),
        None => vec![list],
    };
    let mut needed: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !name.is_empty() && !needed.iter().any(|n| n == name) {
            needed.push(name.to_owned());
        }
    };
    for plugin in entries {
        let Some(kind) = plugin.get("type").and_then(Value::as_str) else {
            continue;
        };
        add(kind);
        if let Some(ipam) = plugin.pointer("/ipam/type").and_then(Value::as_str) {
            add(ipam);
        }
        if kind == "flannel" {
            add(plugin
                .pointer("/delegate/type")
                .and_then(Value::as_str)
                .unwrap_or("bridge"));
            add("host-local");
        }
    }
    needed
}

/// The flannel delegate's bridge name (`cni0` unless the delegate sets one).
pub fn bridge_name(list: &Value) -> String {
    let entries: Vec<&Value> = match list.get("plugins").and_then(Value::as_array) {
        Some(plugins) => plugins.iter().collect(),
        None => vec![list],
    };
    entries
        .iter()
        .find(|p| p.get("type").and_then(Value::as_str) == Some("flannel"))
        .and_then(|p| p.pointer("/delegate/bridge").and_then(Value::as_str))
        .unwrap_or("cni0")
        .to_owned()
}

/// The network name host-local keeps leases under (`cbr0` for k3s).
pub fn network_name(list: &Value) -> Option<String> {
    list.get("name").and_then(Value::as_str).map(str::to_owned)
}

/// Every IP address held by a pod that needs the CNI.
pub fn pod_ips(pods: &[PodView]) -> BTreeSet<IpAddr> {
    pods.iter()
        .filter(|p| !p.host_network)
        .flat_map(|p| p.ips.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k3s() -> Value {
        json!({"name": "cbr0", "cniVersion": "1.0.0", "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]})
    }

    #[test]
    fn flannel_needs_its_delegate_and_host_local() {
        assert_eq!(
            required_plugins(&k3s()),
            ["flannel", "bridge", "host-local", "portmap", "bandwidth"]
        );
        assert_eq!(bridge_name(&k3s()), "cni0");
        assert_eq!(network_name(&k3s()).as_deref(), Some("cbr0"));
        let custom = json!({"name": "x", "plugins": [{"type": "flannel", "delegate": {"type": "ipvlan", "bridge": "kbr"}}]});
        assert_eq!(
            required_plugins(&custom),
            ["flannel", "ipvlan", "host-local"]
        );
        assert_eq!(bridge_name(&custom), "kbr");
    }

    #[test]
    fn other_networks_and_single_plugin_confs() {
        let bridge = json!({"name": "mynet", "type": "bridge", "ipam": {"type": "host-local"}});
        assert_eq!(required_plugins(&bridge), ["bridge", "host-local"]);
        assert_eq!(plugin_types(&bridge), ["bridge"]);
        let calico = json!({"name": "k8s-pod-network", "plugins": [{"type": "calico", "ipam": {"type": "calico-ipam"}}, {"type": "portmap"}]});
        assert_eq!(
            required_plugins(&calico),
            ["calico", "calico-ipam", "portmap"]
        );
    }
}
