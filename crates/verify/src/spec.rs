//! What a run creates, built from the node list and the run id: one probe
//! pod pinned to each node and a headless Service through which the probes
//! find each other.
//!
//! The pods are made to run where ordinary pods may not: `nodeName` skips
//! the scheduler (a cordoned node is verified too), a single toleration
//! with `operator: Exists` tolerates every taint (the readiness taint
//! `rebootguard.io/pod-network-unready`, `unreachable`, `not-ready`), and
//! `restartPolicy: Never` makes a result final. The Service publishes
//! not-ready addresses, because a probe never becomes Ready (it has no
//! readiness probe and must be found as soon as it has an address).

use std::time::Duration;

use serde_json::{Value, json};

use crate::{EXPIRES_ANNOTATION, NAME, NAME_LABEL, RUN_LABEL, TERMINATION_MESSAGE_PATH};

/// A node to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Node's name.
    pub name: String,
    /// `spec.podCIDRs` (or `spec.podCIDR`).
    pub pod_cidrs: Vec<String>,
    /// `Ready=True` when verify started.
    pub ready: bool,
}

/// One verify run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Random, lower-case hex: names and labels everything of this run.
    pub id: String,
    /// Where pods and the Service go.
    pub namespace: String,
    /// The probe's image.
    pub image: String,
    /// The probes' TCP port.
    pub port: u16,
    /// How long a probe waits for its peers.
    pub wait: Duration,
    /// After this instant (RFC 3339) the run is over for sure; a later run
    /// deletes what it left.
    pub expires: String,
    /// The nodes, each with a probe.
    pub targets: Vec<Target>,
}

/// The longest name Kubernetes accepts for a pod.
const MAX_NAME: usize = 253;

impl Run {
    /// The headless Service's name (a DNS label: `rgv-<id>`).
    pub fn service_name(&self) -> String {
        format!("rgv-{}", self.id)
    }

    /// The probe pod's name on node `index` of the targets: `rgv-<id>-<node>`
    /// when that is a valid name, else `rgv-<id>-<index>`.
    pub fn pod_name(&self, index: usize) -> String {
        let node = self.targets.get(index).map_or("", |t| t.name.as_str());
        let name = format!("rgv-{}-{}", self.id, node.to_ascii_lowercase());
        let valid = !node.is_empty()
            && name.len() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !name.ends_with(['-', '.']);
        if valid {
            name
        } else {
            format!("rgv-{}-{index}", self.id)
        }
    }

    /// The label selector of this run's objects.
    pub fn selector(&self) -> String {
        format!("{RUN_LABEL}={}", self.id)
    }

    fn metadata(&self, name: &str) -> Value {
        json!({
            "name": name,
            "namespace": self.namespace,
            "labels": {
                NAME_LABEL: NAME,
                "app.kubernetes.io/managed-by": "rebootguard",
                RUN_LABEL: self.id,
            },
            "annotations": {EXPIRES_ANNOTATION: self.expires},
        })
    }

    /// The headless Service the probes resolve to find each other.
    pub fn service(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.metadata(&self.service_name()),
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": {RUN_LABEL: self.id},
                "ports": [{"name": "probe", "port": self.port, "targetPort": self.port, "protocol": "TCP"}],
            },
        })
    }

    /// The probe's command line after `rebootguard` (see the CLI's hidden
    /// `verify probe`).
    pub fn probe_args(&self, index: usize) -> Vec<String> {
        let Some(target) = self.targets.get(index) else {
            return Vec::new();
        };
        let mut args = vec!["verify".to_owned(), "probe".to_owned()];
        let mut flag = |name: &str, value: String| {
            args.push(format!("--{name}"));
            args.push(value);
        };
        flag("node", target.name.clone());
        for cidr in &target.pod_cidrs {
            flag("pod-cidr", cidr.clone());
        }
        flag("service", self.service_name());
        flag("lookup", "kubernetes.default".to_owned());
        flag("peers", (self.targets.len() - 1).to_string());
        flag("port", self.port.to_string());
        flag("wait", format!("{}ms", self.wait.as_millis()));
        flag("message-path", TERMINATION_MESSAGE_PATH.to_owned());
        args
    }

    /// The probe pod for target `index`.
    pub fn pod(&self, index: usize) -> Value {
        let node = self.targets.get(index).map_or("", |t| t.name.as_str());
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self.metadata(&self.pod_name(index)),
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "tolerations": [{"operator": "Exists"}],
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                "dnsPolicy": "ClusterFirst",
                // Nothing to shut down: deletion need not wait.
                "terminationGracePeriodSeconds": 0,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 65532,
                    "runAsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [{
                    "name": "probe",
                    "image": self.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["rebootguard"],
                    "args": self.probe_args(index),
                    "ports": [{"name": "probe", "containerPort": self.port, "protocol": "TCP"}],
                    "terminationMessagePath": TERMINATION_MESSAGE_PATH,
                    // A probe that dies before writing its result still
                    // says why (its last log lines).
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"memory": "64Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }],
            },
        })
    }

    /// The probe's wait for a run bounded by `timeout`: enough margin left
    /// for the kubelet to report and verify to read (a quarter, at least 3 s).
    pub fn wait_for(timeout: Duration) -> Duration {
        let margin = (timeout / 4).max(Duration::from_secs(3));
        timeout.saturating_sub(margin).max(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        Run {
            id: "0a1b2c3d".into(),
            namespace: "rebootguard".into(),
            image: "example/rebootguard:1".into(),
            port: 9479,
            wait: Duration::from_secs(45),
            expires: "2026-01-31T10:01:00Z".into(),
            targets: vec![
                Target {
                    name: "boromir".into(),
                    pod_cidrs: vec!["10.42.0.0/24".into(), "fd00:42::/64".into()],
                    ready: true,
                },
                Target {
                    name: "Theoden_".into(),
                    pod_cidrs: vec![],
                    ready: true,
                },
                Target {
                    name: "samwise".into(),
                    pod_cidrs: vec!["10.42.1.0/24".into()],
                    ready: false,
                },
            ],
        }
    }

    #[test]
    fn pods_are_pinned_tolerate_every_taint_and_never_restart() {
        let r = run();
        let pod = r.pod(0);
        assert_eq!(pod["metadata"]["name"], "rgv-0a1b2c3d-boromir");
        assert_eq!(pod["metadata"]["namespace"], "rebootguard");
        assert_eq!(pod["metadata"]["labels"][RUN_LABEL], "0a1b2c3d");
        assert_eq!(pod["metadata"]["labels"][NAME_LABEL], NAME);
        assert_eq!(
            pod["metadata"]["annotations"][EXPIRES_ANNOTATION],
            "2026-01-31T10:01:00Z"
        );
        assert_eq!(pod["spec"]["nodeName"], "boromir");
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["spec"]["tolerations"], json!([{"operator": "Exists"}]));
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["image"], "example/rebootguard:1");
        assert_eq!(c["command"], json!(["rebootguard"]));
        assert_eq!(c["terminationMessagePath"], TERMINATION_MESSAGE_PATH);
        assert_eq!(c["terminationMessagePolicy"], "FallbackToLogsOnError");
        assert_eq!(
            c["args"],
            json!([
                "verify",
                "probe",
                "--node",
                "boromir",
                "--pod-cidr",
                "10.42.0.0/24",
                "--pod-cidr",
                "fd00:42::/64",
                "--service",
                "rgv-0a1b2c3d",
                "--lookup",
                "kubernetes.default",
                "--peers",
                "2",
                "--port",
                "9479",
                "--wait",
                "45000ms",
                "--message-path",
                "/dev/termination-log"
            ])
        );
    }

    #[test]
    fn names_fall_back_to_the_index_when_the_node_name_cannot_be_used() {
        let r = run();
        assert_eq!(r.pod_name(1), "rgv-0a1b2c3d-1");
        assert_eq!(r.pod_name(2), "rgv-0a1b2c3d-samwise");
        assert_eq!(r.pod_name(7), "rgv-0a1b2c3d-7");
        let mut long = run();
        long.targets[0].name = "n".repeat(260);
        assert_eq!(long.pod_name(0), "rgv-0a1b2c3d-0");
        assert!(
            r.pod(7)["spec"]["containers"][0]["args"]
                .as_array()
                .is_some_and(Vec::is_empty)
        );
    }

    #[test]
    fn the_service_is_headless_and_publishes_not_ready_probes() {
        let r = run();
        let s = r.service();
        assert_eq!(s["metadata"]["name"], "rgv-0a1b2c3d");
        assert_eq!(s["spec"]["clusterIP"], "None");
        assert_eq!(s["spec"]["publishNotReadyAddresses"], true);
        assert_eq!(s["spec"]["selector"], json!({RUN_LABEL: "0a1b2c3d"}));
        assert_eq!(s["spec"]["ports"][0]["port"], 9479);
        assert_eq!(r.selector(), "rebootguard.io/verify-run=0a1b2c3d");
    }

    #[test]
    fn the_probe_leaves_a_margin_of_its_run() {
        assert_eq!(
            Run::wait_for(Duration::from_secs(60)),
            Duration::from_secs(45)
        );
        assert_eq!(
            Run::wait_for(Duration::from_secs(8)),
            Duration::from_secs(5)
        );
        assert_eq!(
            Run::wait_for(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
    }
}
