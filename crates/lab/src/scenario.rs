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
    /// Name (pods are `<name>-<suffix>`).
    pub name: String,
    /// Behaviour.
    #[serde(default = "plain")]
    pub behaviour: Behaviour,
    /// Replicas; a DaemonSet when absent (one per node).
    #[serde(default)]
    pub replicas: Option<usize>,
    /// Nodes the replicas are placed on, round robin (all nodes when empty).
    #[serde(default)]
    pub nodes: Vec<String>,
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
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 6] = [
        Fault::FlannelSilentSkip,
        Fault::PodCidrNeverAssigned,
        Fault::LeakedLeases,
        Fault::StaleFlannelAddress,
        Fault::MissingCniBinary,
        Fault::ApiUnreachableDuringBoot,
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
        match w.replicas {
            None => pool,
            Some(r) => (0..r).map(|i| pool[i % pool.len()].clone()).collect(),
        }
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
            })
            .collect();
        Scenario {
            name: format!("{n}-nodes"),
            description: String::new(),
            time_scale: default_scale(),
            cluster_cidr: default_cluster_cidr(),
            lifecycle: Lifecycle::default(),
            nodes,
            workloads: Vec::new(),
            helmreleases: Vec::new(),
            kustomizations: Vec::new(),
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
        assert_eq!(s.helmreleases.len(), 11);
        assert!(
            s.steps
                .iter()
                .any(|st| matches!(st, Step::Reboot { nodes, faults, .. }
            if nodes == &["boromir", "theoden"] && faults == &[Fault::FlannelSilentSkip]))
        );
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
    fn placements_round_robin_and_daemonsets() {
        let mut s = Scenario::plain(3);
        s.workloads.push(Workload {
            namespace: "a".into(),
            name: "ds".into(),
            behaviour: Behaviour::Plain,
            replicas: None,
            nodes: vec![],
        });
        s.workloads.push(Workload {
            namespace: "a".into(),
            name: "d".into(),
            behaviour: Behaviour::Plain,
            replicas: Some(3),
            nodes: vec!["theoden".into(), "samwise".into()],
        });
        assert_eq!(
            s.placements(&s.workloads[0]),
            ["boromir", "theoden", "samwise"]
        );
        assert_eq!(
            s.placements(&s.workloads[1]),
            ["theoden", "samwise", "theoden"]
        );
        assert_eq!(s.pod_count(), 6);
    }
}
