//! Scenarios as data: the nodes, CIDRs, workloads, faults, reboot schedule
//! and expected outcome of one failure story, read from TOML.
//!
//! Pure: parsing and checking only. Durations in a scenario are written in
//! real-world time (`"300s"`, `"18m"`) and divided by `time_scale` when the
//! lab runs them, so the incident's 300 s toleration takes 10 s at scale 30.

use std::collections::BTreeSet;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The built-in incident scenario, as shipped in `scenarios/`.
pub const INCIDENT: &str = include_str!("../../../scenarios/incident-2026-01-31.toml");

/// The name under which [`INCIDENT`] is found.
pub const INCIDENT_NAME: &str = "incident-2026-01-31";

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TOML did not parse into a scenario.
    #[error("failed to parse the scenario: {0}")]
    Parse(#[source] toml::de::Error),
    /// It parsed but says something impossible.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

/// One failure story.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (used in reports).
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// How many real-world seconds one lab second stands for.
    #[serde(default = "default_scale")]
    pub time_scale: f64,
    /// The cluster CIDR (k3s's `--cluster-cidr`).
    #[serde(default = "default_cluster_cidr")]
    pub cluster_cidr: Ipv4Net,
    /// How many of the nodes are k3s servers (the first ones), when no
    /// node names its `role`; default 1.
    #[serde(default)]
    pub servers: Option<usize>,
    /// The servers run k3s's embedded etcd (`--cluster-init`): they carry
    /// the `etcd` role label and the API needs a majority of them; default:
    /// true with more than one server, false (k3s's SQLite) with one.
    #[serde(default)]
    pub embedded_etcd: Option<bool>,
    /// Node lifecycle timings (real-world).
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// The nodes, in boot order.
    pub nodes: Vec<NodeSpec>,
    /// The workloads.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// Flux HelmReleases (`namespace/name`).
    #[serde(default)]
    pub helmreleases: Vec<String>,
    /// Flux Kustomizations (`namespace/name`).
    #[serde(default)]
    pub kustomizations: Vec<String>,
    /// Longhorn's timings (see [`crate::longhorn`]).
    #[serde(default)]
    pub longhorn: LonghornSettings,
    /// Longhorn volumes and where their replicas live.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    /// What happens, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// What must be seen.
    #[serde(default)]
    pub expect: Expect,
}

fn default_scale() -> f64 {
    30.0
}

fn default_cluster_cidr() -> Ipv4Net {
    Ipv4Net::new(std::net::Ipv4Addr::new(10, 42, 0, 0), 16).unwrap_or_default()
}

/// Node lifecycle timings, real-world.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Kubelet status updates (and node lease renewals).
    #[serde(default = "d10", with = "human")]
    pub heartbeat: Duration,
    /// Without a heartbeat for this long a node goes `Unknown`.
    #[serde(default = "d40", with = "human")]
    pub grace: Duration,
    /// The default `unreachable:NoExecute` toleration of pods.
    #[serde(default = "d300", with = "human")]
    pub toleration: Duration,
}

fn d10() -> Duration {
    Duration::from_secs(10)
}
fn d40() -> Duration {
    Duration::from_secs(40)
}
fn d300() -> Duration {
    Duration::from_secs(300)
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            heartbeat: d10(),
            grace: d40(),
            toleration: d300(),
        }
    }
}

/// A node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Its Kubernetes name.
    pub name: String,
    /// Its podCIDR; assigned in order from the cluster CIDR when absent.
    #[serde(default)]
    pub pod_cidr: Option<Ipv4Net>,
    /// `server` or `agent`; when any node names one, the nodes that do not
    /// are agents and `servers` must be absent.
    #[serde(default)]
    pub role: Option<Role>,
}

/// A node's k3s role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `k3s server`: the API server, controllers and datastore run here.
    Server,
    /// `k3s agent`: kubelet and flannel only.
    Agent,
}

impl Role {
    /// `server` or `agent`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Agent => "agent",
        }
    }
}

/// Whether the API answers with `up` of `servers` servers powered: a
/// majority with embedded etcd (its raft quorum), any one otherwise (the
/// servers share an external or SQLite datastore).
pub fn api_available(servers: usize, up: usize, embedded_etcd: bool) -> bool {
    if embedded_etcd {
        up > servers / 2
    } else {
        up > 0
    }
}

/// Longhorn's timings (real-world) and how its volumes hold pods.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LonghornSettings {
    /// How long a replica takes to rebuild once its node is back.
    #[serde(default = "d60", with = "human")]
    pub rebuild: Duration,
    /// The kubelet removes a deleted pod that ran with a Longhorn volume
    /// only once it can unmount it, with `driver.longhorn.io` registered
    /// on the node (as a real kubelet): after a reboot that leaves the CSI
    /// plugin down, such pods stay `Unknown`. Off by default: the shipped
    /// scenarios' replays are written without these stale pods.
    #[serde(default)]
    pub unmount_needs_driver: bool,
}

fn d60() -> Duration {
    Duration::from_secs(60)
}

impl Default for LonghornSettings {
    fn default() -> Self {
        LonghornSettings {
            rebuild: d60(),
            unmount_needs_driver: false,
        }
    }
}

/// A Longhorn volume (`volumes.longhorn.io` in `longhorn-system`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// The volume's name (a PV name such as `pvc-<uid>` in real clusters).
    pub name: String,
    /// Its size: bytes, or with a `Ki`/`Mi`/`Gi`/`Ti` suffix.
    #[serde(default = "default_size")]
    pub size: String,
    /// `numberOfReplicas`.
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// The nodes holding its replicas, one each (default: `replicas` nodes
    /// in order, starting after the previous volume's first, as Longhorn's
    /// scheduler spreads them).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// The node it is attached to (where its engine runs); default: the
    /// first replica's node.
    #[serde(default)]
    pub attached_to: Option<String>,
}

fn default_size() -> String {
    "1Gi".into()
}

fn default_replicas() -> usize {
    3
}

/// Bytes of `1Gi`, `512Mi`, `1073741824`.
pub fn parse_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let shift = match unit {
        "" => 0,
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        "Ti" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// What a workload's pods do, which decides when they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Runs once its sandbox has networking.
    Plain,
    /// CoreDNS: a DNS responder for cluster names in the pod's namespace.
    Dns,
    /// A Flux controller: crash-loops while cluster DNS does not answer.
    Flux,
    /// Longhorn's manager (a DaemonSet).
    LonghornManager,
    /// Longhorn's CSI node plugin: registers `driver.longhorn.io` in the
    /// node's CSINode while running next to a running manager.
    LonghornCsi,
    /// Mounts a Longhorn PVC: waits for the CSI driver on its node.
    Volume,
    /// Broken before anything happened (crash-loops forever).
    Broken,
}

/// A set of pods with one behaviour.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Namespace.
    pub namespace: String,
    /// Name: of the Deployment (pods `<name>-<hash>-<5 chars>`), the
    /// DaemonSet (pods `<name>-<5 chars>`) or the bare pod (`<name>`, or
    /// `<name>-<replica>` when there are several).
    pub name: String,
    /// Behaviour.
    #[serde(default = "plain")]
    pub behaviour: Behaviour,
    /// Replicas; a DaemonSet when absent (one per node), unless `bare`.
    #[serde(default)]
    pub replicas: Option<usize>,
    /// Nodes the replicas are placed on, round robin (all nodes when empty).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Bare pods (`kubectl run`): no controller owns them, so the lab
    /// creates each once and never again; `replicas` of them, default 1.
    #[serde(default)]
    pub bare: bool,
}

/// What makes a workload's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// A Deployment, through its ReplicaSet.
    Deployment,
    /// A DaemonSet: one pod per node.
    DaemonSet,
    /// Nothing: bare pods.
    Bare,
}

impl Workload {
    /// What makes its pods.
    pub fn controller(&self) -> Controller {
        match (self.bare, self.replicas) {
            (true, _) => Controller::Bare,
            (false, None) => Controller::DaemonSet,
            (false, Some(_)) => Controller::Deployment,
        }
    }
}

fn plain() -> Behaviour {
    Behaviour::Plain
}

/// A fault injected on a node's next boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// k3s's embedded flannel skips its init without a word while
    /// subnet.env is missing at start: no subnet.env, no `flannel.1`.
    FlannelSilentSkip,
    /// The node's podCIDR is never assigned (`CIDRNotAvailable`).
    PodCidrNeverAssigned,
    /// host-local leases survive an unclean reboot and fill the range.
    LeakedLeases,
    /// `flannel.1` comes up carrying an address from an earlier lease.
    StaleFlannelAddress,
    /// The `flannel` CNI binary is missing from the node's bin dir.
    MissingCniBinary,
    /// The API server is unreachable from the node while it boots.
    ApiUnreachableDuringBoot,
    /// The node powers off and does not boot again until told to
    /// (`power-on`, `reboot`): a node that never comes back.
    StaysDown,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 7] = [
        Fault::FlannelSilentSkip,
        Fault::PodCidrNeverAssigned,
        Fault::LeakedLeases,
        Fault::StaleFlannelAddress,
        Fault::MissingCniBinary,
        Fault::ApiUnreachableDuringBoot,
        Fault::StaysDown,
    ];

    /// The kebab-case name used in scenarios and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::FlannelSilentSkip => "flannel-silent-skip",
            Fault::PodCidrNeverAssigned => "podcidr-never-assigned",
            Fault::LeakedLeases => "leaked-leases",
            Fault::StaleFlannelAddress => "stale-flannel-address",
            Fault::MissingCniBinary => "missing-cni-binary",
            Fault::ApiUnreachableDuringBoot => "api-unreachable-during-boot",
            Fault::StaysDown => "stays-down",
        }
    }

    /// Parses a kebab-case name.
    pub fn parse(text: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == text)
    }
}

/// One step of the schedule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Reboot nodes together: down for `down` (real-world), faults armed
    /// for their next boot.
    Reboot {
        /// The nodes (`"*"` for all).
        nodes: Vec<String>,
        /// Faults for the next boot.
        #[serde(default)]
        faults: Vec<Fault>,
        /// How long they stay off.
        #[serde(with = "human")]
        down: Duration,
    },
    /// Let time pass (real-world).
    Wait {
        /// How long.
        #[serde(with = "human")]
        r#for: Duration,
    },
    /// Wait until every pod but the broken ones runs, or `timeout`.
    WaitHealthy {
        /// Give up after this long (real-world).
        #[serde(with = "human")]
        timeout: Duration,
    },
    /// Apply the post-mortem's manual fix (unprotected runs only).
    FixManually,
}

/// What a scenario must show.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Pods (all workloads) expected.
    #[serde(default)]
    pub pods: Option<usize>,
    /// Unprotected: a `FailedCreatePodSandBox` message contains this.
    #[serde(default)]
    pub unprotected_failure_contains: Option<String>,
    /// Unprotected: cross-node pod traffic broken while failing.
    #[serde(default)]
    pub unprotected_cross_node_broken: bool,
    /// Protected: no sandbox fails at all.
    #[serde(default)]
    pub protected_no_sandbox_failures: bool,
    /// Pods Running at the end (both ways).
    #[serde(default)]
    pub running_at_end: Option<usize>,
    /// HelmReleases Ready at the end.
    #[serde(default)]
    pub helmreleases_ready_at_end: Option<usize>,
}

impl Scenario {
    /// Parses and checks a scenario.
    pub fn parse(text: &str) -> Result<Scenario, Error> {
        let s: Scenario = toml::from_str(text).map_err(Error::Parse)?;
        s.check()?;
        Ok(s)
    }

    /// The built-in incident.
    pub fn incident() -> Result<Scenario, Error> {
        Scenario::parse(INCIDENT)
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.nodes.is_empty() {
            return bad("no nodes: add at least one [[nodes]] entry".into());
        }
        if !(self.time_scale.is_finite() && self.time_scale >= 1.0) {
            return bad(format!(
                "time_scale {} must be a number >= 1",
                self.time_scale
            ));
        }
        let mut names = BTreeSet::new();
        for n in &self.nodes {
            if !valid_name(&n.name) {
                return bad(format!(
                    "node name {:?} is not a DNS label (lower-case letters, digits, '-')",
                    n.name
                ));
            }
            if !names.insert(n.name.as_str()) {
                return bad(format!("node {:?} is listed twice", n.name));
            }
            if let Some(c) = n.pod_cidr
                && !self.cluster_cidr.contains(&c)
            {
                return bad(format!(
                    "podCIDR {c} of {} is outside the cluster CIDR {}",
                    n.name, self.cluster_cidr
                ));
            }
        }
        let known = |n: &String| n == "*" || names.contains(n.as_str());
        for w in &self.workloads {
            if let Some(n) = w.nodes.iter().find(|n| !known(n)) {
                return bad(format!(
                    "workload {}/{} names unknown node {n:?}",
                    w.namespace, w.name
                ));
            }
            if w.replicas == Some(0) {
                return bad(format!(
                    "workload {}/{} has 0 replicas",
                    w.namespace, w.name
                ));
            }
        }
        for step in &self.steps {
            if let Step::Reboot { nodes, .. } = step
                && let Some(n) = nodes.iter().find(|n| !known(n))
            {
                return bad(format!("reboot step names unknown node {n:?}"));
            }
        }
        let named = self.nodes.iter().filter(|n| n.role.is_some()).count();
        if named > 0 && self.servers.is_some() {
            return bad(
                "set either `servers` or the nodes' `role`, not both (with roles, unnamed nodes are agents)"
                    .into(),
            );
        }
        if let Some(s) = self.servers
            && !(1..=self.nodes.len()).contains(&s)
        {
            return bad(format!(
                "servers = {s}: a cluster needs at least one server and has {} node(s)",
                self.nodes.len()
            ));
        }
        if named > 0 && !self.nodes.iter().any(|n| n.role == Some(Role::Server)) {
            return bad("no node has role = \"server\": a k3s cluster needs one".into());
        }
        let mut volumes = BTreeSet::new();
        for v in &self.volumes {
            if !valid_name(&v.name) {
                return bad(format!("volume name {:?} is not a DNS label", v.name));
            }
            if !volumes.insert(v.name.as_str()) {
                return bad(format!("volume {:?} is listed twice", v.name));
            }
            if parse_size(&v.size).is_none_or(|b| b == 0) {
                return bad(format!(
                    "volume {}: size {:?} is not a size (write e.g. \"10Gi\", \"512Mi\")",
                    v.name, v.size
                ));
            }
            if v.replicas == 0 || v.replicas > self.nodes.len() {
                return bad(format!(
                    "volume {} wants {} replicas on {} node(s): one replica per node, at least one",
                    v.name,
                    v.replicas,
                    self.nodes.len()
                ));
            }
            if !v.nodes.is_empty() {
                if let Some(n) = v.nodes.iter().find(|n| !names.contains(n.as_str())) {
                    return bad(format!("volume {} names unknown node {n:?}", v.name));
                }
                let distinct: BTreeSet<&String> = v.nodes.iter().collect();
                if v.nodes.len() != v.replicas || distinct.len() != v.replicas {
                    return bad(format!(
                        "volume {}: nodes must name {} different nodes, one per replica",
                        v.name, v.replicas
                    ));
                }
            }
            if let Some(n) = &v.attached_to
                && !names.contains(n.as_str())
            {
                return bad(format!(
                    "volume {} is attached to unknown node {n:?}",
                    v.name
                ));
            }
        }
        for r in self.helmreleases.iter().chain(&self.kustomizations) {
            if r.split_once('/')
                .is_none_or(|(a, b)| a.is_empty() || b.is_empty())
            {
                return bad(format!("{r:?} must be namespace/name"));
            }
        }
        Ok(())
    }

    /// Real-world `d` in lab time.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.div_f64(self.time_scale)
    }

    /// How many pods the workloads make.
    pub fn pod_count(&self) -> usize {
        self.workloads
            .iter()
            .map(|w| self.placements(w).len())
            .sum()
    }

    /// The node of each replica of `w`, in replica order.
    pub fn placements(&self, w: &Workload) -> Vec<String> {
        let all: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let pool: Vec<String> = if w.nodes.is_empty() || w.nodes.iter().any(|n| n == "*") {
            all
        } else {
            w.nodes.clone()
        };
        match (w.controller(), w.replicas) {
            (Controller::DaemonSet, _) => pool,
            (_, r) => (0..r.unwrap_or(1))
                .map(|i| pool[i % pool.len()].clone())
                .collect(),
        }
    }

    /// Every node's role, in node order: the nodes' own `role` when any
    /// names one, else the first `servers` (default 1) are servers.
    pub fn roles(&self) -> Vec<Role> {
        let named = self.nodes.iter().any(|n| n.role.is_some());
        let servers = self.servers.unwrap_or(1);
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| match (named, n.role) {
                (true, role) => role.unwrap_or(Role::Agent),
                (false, _) if i < servers => Role::Server,
                (false, _) => Role::Agent,
            })
            .collect()
    }

    /// Whether the servers run embedded etcd (see [`Scenario::embedded_etcd`]).
    pub fn etcd(&self) -> bool {
        self.embedded_etcd
            .unwrap_or_else(|| self.roles().iter().filter(|r| **r == Role::Server).count() > 1)
    }

    /// The nodes holding `v`'s replicas: its own list, else `replicas`
    /// consecutive nodes starting at the `index`-th (so volumes spread).
    pub fn replica_nodes(&self, index: usize, v: &VolumeSpec) -> Vec<String> {
        if !v.nodes.is_empty() {
            return v.nodes.clone();
        }
        let n = self.nodes.len();
        (0..v.replicas.min(n))
            .map(|i| self.nodes[(index + i) % n].name.clone())
            .collect()
    }

    /// The node the `index`-th volume is attached to.
    pub fn attached_node(&self, index: usize, v: &VolumeSpec) -> String {
        v.attached_to.clone().unwrap_or_else(|| {
            self.replica_nodes(index, v)
                .into_iter()
                .next()
                .unwrap_or_default()
        })
    }

    /// The node names of a step (`"*"` expanded).
    pub fn expand(&self, nodes: &[String]) -> Vec<String> {
        if nodes.iter().any(|n| n == "*") {
            self.nodes.iter().map(|n| n.name.clone()).collect()
        } else {
            nodes.to_vec()
        }
    }

    /// A plain scenario of `n` nodes with no workloads (for `up`).
    pub fn plain(n: usize) -> Scenario {
        const NAMES: [&str; 3] = ["boromir", "theoden", "samwise"];
        const CIDRS: [u8; 3] = [0, 2, 1];
        let nodes = (0..n)
            .map(|i| NodeSpec {
                name: NAMES
                    .get(i)
                    .map_or_else(|| format!("node{i}"), |s| (*s).to_owned()),
                pod_cidr: CIDRS
                    .get(i)
                    .and_then(|c| Ipv4Net::new(std::net::Ipv4Addr::new(10, 42, *c, 0), 24).ok()),
                role: None,
            })
            .collect();
        Scenario {
            name: format!("{n}-nodes"),
            description: String::new(),
            time_scale: default_scale(),
            cluster_cidr: default_cluster_cidr(),
            servers: None,
            embedded_etcd: None,
            lifecycle: Lifecycle::default(),
            nodes,
            workloads: Vec::new(),
            helmreleases: Vec::new(),
            kustomizations: Vec::new(),
            longhorn: LonghornSettings::default(),
            volumes: Vec::new(),
            steps: Vec::new(),
            expect: Expect::default(),
        }
    }
}

/// Whether `name` is a DNS label.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `"300s"`, `"18m"`, `"1.5s"`, `"500ms"` as serde.
mod human {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", d.as_secs_f64()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration: write e.g. \"500ms\", \"40s\", \"18m\""
            ))
        })
    }
}

/// Parses `500ms`, `40s`, `1.5s`, `18m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_scenario_parses_with_the_post_mortems_numbers() {
        let s = Scenario::incident().unwrap();
        assert_eq!(s.name, INCIDENT_NAME);
        let cidrs: Vec<_> = s
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.pod_cidr.unwrap().to_string()))
            .collect();
        assert_eq!(
            cidrs,
            [
                ("boromir", "10.42.0.0/24".to_owned()),
                ("theoden", "10.42.2.0/24".to_owned()),
                ("samwise", "10.42.1.0/24".to_owned())
            ]
        );
        assert_eq!(s.pod_count(), 71);
        let roles = s.roles();
        assert_eq!(
            roles,
            [Role::Agent, Role::Agent, Role::Server],
            "samwise served kubectl"
        );
        assert_eq!(s.helmreleases.len(), 11);
        assert!(
            s.steps
                .iter()
                .any(|st| matches!(st, Step::Reboot { nodes, faults, .. }
            if nodes == &["boromir", "theoden"] && faults == &[Fault::FlannelSilentSkip]))
        );
    }

    #[test]
    fn the_rolling_reboot_scenario_parses() {
        let s = Scenario::parse(include_str!("../../../scenarios/rolling-reboot.toml")).unwrap();
        assert_eq!(s.roles(), [Role::Server; 3]);
        assert!(s.etcd());
        assert_eq!(s.pod_count(), 10);
        let replicas: Vec<usize> = s.volumes.iter().map(|v| v.replicas).collect();
        assert_eq!(replicas, [3, 2, 1]);
        assert_eq!(s.replica_nodes(2, &s.volumes[2]), ["theoden"]);
    }

    #[test]
    fn durations_and_faults() {
        assert_eq!(parse_duration("18m"), Some(Duration::from_secs(1080)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), None);
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()), Some(f));
        }
    }

    #[test]
    fn bad_scenarios_say_what_is_wrong() {
        let e = Scenario::parse("name='x'\nnodes=[]").unwrap_err();
        assert!(e.to_string().contains("no nodes"), "{e}");
        let e =
            Scenario::parse("name='x'\n[[nodes]]\nname='a'\npod_cidr='10.99.0.0/24'").unwrap_err();
        assert!(e.to_string().contains("outside the cluster CIDR"), "{e}");
        let e = Scenario::parse(
            "name='x'\n[[nodes]]\nname='a'\n[[steps]]\naction='reboot'\nnodes=['b']\ndown='1s'",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown node \"b\""), "{e}");
        let e =
            Scenario::parse("name='x'\n[[nodes]]\nname='a'\n[[steps]]\naction='wait'\nfor='soon'")
                .unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
    }

    #[test]
    fn roles_come_from_servers_or_from_the_nodes() {
        let mut s = Scenario::plain(3);
        assert_eq!(s.roles(), [Role::Server, Role::Agent, Role::Agent]);
        assert!(!s.etcd(), "one server: SQLite");
        s.servers = Some(3);
        assert_eq!(s.roles(), [Role::Server; 3]);
        assert!(s.etcd(), "several servers: embedded etcd");
        s.embedded_etcd = Some(false);
        assert!(!s.etcd(), "an external datastore, said so");
        let named = Scenario::parse(
            "name='x'\n[[nodes]]\nname='a'\n[[nodes]]\nname='b'\nrole='server'\n[[nodes]]\nname='c'",
        )
        .unwrap();
        assert_eq!(named.roles(), [Role::Agent, Role::Server, Role::Agent]);
        let e = Scenario::parse("name='x'\nservers=2\n[[nodes]]\nname='a'").unwrap_err();
        assert!(e.to_string().contains("has 1 node(s)"), "{e}");
        let e = Scenario::parse("name='x'\nservers=0\n[[nodes]]\nname='a'").unwrap_err();
        assert!(e.to_string().contains("at least one server"), "{e}");
        let e =
            Scenario::parse("name='x'\nservers=1\n[[nodes]]\nname='a'\nrole='server'").unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = Scenario::parse("name='x'\n[[nodes]]\nname='a'\nrole='agent'").unwrap_err();
        assert!(e.to_string().contains("needs one"), "{e}");
    }

    #[test]
    fn the_api_needs_an_etcd_majority_or_any_server() {
        // Embedded etcd: a raft majority.
        assert!(api_available(3, 3, true));
        assert!(api_available(3, 2, true));
        assert!(!api_available(3, 1, true));
        assert!(!api_available(2, 1, true), "two servers tolerate no loss");
        assert!(api_available(1, 1, true));
        assert!(!api_available(1, 0, true));
        // SQLite or an external datastore: any server.
        assert!(api_available(3, 1, false));
        assert!(!api_available(3, 0, false));
    }

    #[test]
    fn volumes_are_checked_and_placed() {
        let base = "name='x'\n[[nodes]]\nname='a'\n[[nodes]]\nname='b'\n[[nodes]]\nname='c'\n";
        let s = Scenario::parse(&format!(
            "{base}[longhorn]\nrebuild='2m'\n[[volumes]]\nname='v0'\nreplicas=2\n[[volumes]]\nname='v1'\nreplicas=2\n[[volumes]]\nname='v2'\nsize='10Gi'\nreplicas=2\nnodes=['c','a']\nattached_to='b'"
        ))
        .unwrap();
        assert_eq!(s.longhorn.rebuild, Duration::from_secs(120));
        assert!(!s.longhorn.unmount_needs_driver, "off by default");
        let strict = Scenario::parse(&format!("{base}[longhorn]\nunmount_needs_driver=true"));
        assert!(strict.unwrap().longhorn.unmount_needs_driver);
        assert_eq!(s.replica_nodes(0, &s.volumes[0]), ["a", "b"]);
        assert_eq!(s.replica_nodes(1, &s.volumes[1]), ["b", "c"], "spread");
        assert_eq!(s.attached_node(1, &s.volumes[1]), "b", "first replica's");
        assert_eq!(s.replica_nodes(2, &s.volumes[2]), ["c", "a"]);
        assert_eq!(s.attached_node(2, &s.volumes[2]), "b");
        assert_eq!(parse_size(&s.volumes[2].size), Some(10 << 30));
        assert_eq!(parse_size("1Gi"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1GB"), None);
        for (volume, want) in [
            ("name='v'\nreplicas=4", "wants 4 replicas on 3 node(s)"),
            ("name='v'\nreplicas=0", "wants 0 replicas"),
            ("name='v'\nsize='big'", "is not a size"),
            ("name='v'\nreplicas=2\nnodes=['a','a']", "2 different nodes"),
            ("name='v'\nreplicas=1\nnodes=['z']", "unknown node \"z\""),
            ("name='v'\nattached_to='z'", "attached to unknown node"),
            ("name='V'", "not a DNS label"),
        ] {
            let e = Scenario::parse(&format!("{base}[[volumes]]\n{volume}")).unwrap_err();
            assert!(e.to_string().contains(want), "{volume}: {e}");
        }
        let twice =
            format!("{base}[[volumes]]\nname='v'\nreplicas=1\n[[volumes]]\nname='v'\nreplicas=1");
        assert!(
            Scenario::parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn placements_round_robin_and_daemonsets() {
        let mut s = Scenario::plain(3);
        s.workloads.push(Workload {
            namespace: "a".into(),
            name: "ds".into(),
            behaviour: Behaviour::Plain,
            replicas: None,
            nodes: vec![],
            bare: false,
        });
        s.workloads.push(Workload {
            namespace: "a".into(),
            name: "d".into(),
            behaviour: Behaviour::Plain,
            replicas: Some(3),
            nodes: vec!["theoden".into(), "samwise".into()],
            bare: false,
        });
        s.workloads.push(Workload {
            namespace: "a".into(),
            name: "debug".into(),
            behaviour: Behaviour::Plain,
            replicas: None,
            nodes: vec!["samwise".into()],
            bare: true,
        });
        assert_eq!(
            s.placements(&s.workloads[0]),
            ["boromir", "theoden", "samwise"]
        );
        assert_eq!(
            s.placements(&s.workloads[1]),
            ["theoden", "samwise", "theoden"]
        );
        assert_eq!(s.placements(&s.workloads[2]), ["samwise"]);
        assert_eq!(
            s.workloads
                .iter()
                .map(Workload::controller)
                .collect::<Vec<_>>(),
            [
                Controller::DaemonSet,
                Controller::Deployment,
                Controller::Bare
            ]
        );
        assert_eq!(s.pod_count(), 7);
    }
}
