//! Real-world failures from upstream reports, each built on a small healthy
//! k3s cluster (three nodes, CoreDNS, Longhorn CSI, a few apps).

use serde_json::{Value, json};

use super::kube::{self, NodeB, PodB, State, event};

pub const NOW: &str = "2026-03-14T12:00:00Z";
const T0: &str = "2026-03-14T11:40:00Z";
const T1: &str = "2026-03-14T11:59:30Z";

/// Builder for a scenario.
pub struct Cluster {
    pub nodes: Vec<(String, String, String)>, // name, ready, cidr
    pub pods: Vec<PodB>,
    pub extra: Vec<Value>,
    pub events: Vec<Value>,
    pub csi_registered: Vec<String>,
    pub coredns_ready: bool,
}

impl Cluster {
    /// Three Ready nodes, CoreDNS and Longhorn up, three apps running.
    pub fn healthy() -> Self {
        let mut pods = vec![
            PodB::deployment(
                "kube-system",
                "coredns",
                "ccb96694c",
                "a1b2c",
                "node1",
                "rancher/mirrored-coredns-coredns:1.12.0",
            )
            .label("k8s-app", "kube-dns")
            .ip("10.42.0.5"),
            PodB::deployment(
                "kube-system",
                "metrics-server",
                "5985cbc9d7",
                "m1n2o",
                "node2",
                "rancher/mirrored-metrics-server:v0.7.2",
            )
            .label("k8s-app", "metrics-server"),
        ];
        for (i, n) in ["node1", "node2", "node3"].iter().enumerate() {
            pods.push(
                PodB::daemonset(
                    "longhorn-system",
                    "longhorn-csi-plugin",
                    &format!("c{i}x9"),
                    n,
                    "longhornio/longhorn-manager:v1.7.2",
                )
                .container(
                    "node-driver-registrar",
                    "longhornio/csi-node-driver-registrar:v2.12.0",
                ),
            );
            pods.push(PodB::daemonset(
                "longhorn-system",
                "longhorn-manager",
                &format!("m{i}x9"),
                n,
                "longhornio/longhorn-manager:v1.7.2",
            ));
        }
        for (app, node) in [("shop", "node1"), ("blog", "node2"), ("wiki", "node3")] {
            pods.push(PodB::deployment(
                "apps",
                app,
                "6d7f8c9b5",
                &format!("{app}1"),
                node,
                &format!("ghcr.io/example/{app}:1.0"),
            ));
        }
        let mut job = PodB::bare(
            "apps",
            "backup-29012345-x7k2p",
            "node2",
            "restic/restic:0.17",
        )
        .state(State::Completed);
        job.owner = Some(("Job".into(), "backup-29012345".into()));
        pods.push(job);
        Cluster {
            nodes: vec![
                ("node1".into(), "True".into(), "10.42.0.0/24".into()),
                ("node2".into(), "True".into(), "10.42.1.0/24".into()),
                ("node3".into(), "True".into(), "10.42.2.0/24".into()),
            ],
            pods,
            extra: Vec::new(),
            events: vec![event(
                "apps",
                ("Pod", "apps", "shop-6d7f8c9b5-shop1"),
                "Pulled",
                "Normal",
                "Container image \"ghcr.io/example/shop:1.0\" already present on machine",
                1,
                T0,
                T0,
                ("kubelet", "node1"),
            )],
            csi_registered: vec!["node1".into(), "node2".into(), "node3".into()],
            coredns_ready: true,
        }
    }

    pub fn pod(&mut self, p: PodB) -> &mut Self {
        self.pods
            .retain(|x| !(x.namespace == p.namespace && x.name == p.name));
        self.pods.push(p);
        self
    }

    pub fn warn(
        &mut self,
        (kind, ns, name): (&str, &str, &str),
        reason: &str,
        message: &str,
        count: i64,
        host: &str,
    ) -> &mut Self {
        let component = if host.is_empty() {
            "controller"
        } else {
            "kubelet"
        };
        self.events.push(event(
            if ns.is_empty() { "default" } else { ns },
            (kind, ns, name),
            reason,
            "Warning",
            message,
            count,
            T0,
            T1,
            (component, host),
        ));
        self
    }

    pub fn objects(&self) -> Vec<Value> {
        let mut o = Vec::new();
        for (name, ready, cidr) in &self.nodes {
            o.push(
                NodeB {
                    name,
                    cidr,
                    ip: "192.168.10.1",
                    boot_id: kube::uid(&format!("boot/{name}")),
                    ready,
                    ready_since: "2026-03-01T08:00:00Z",
                    created: "2026-02-01T08:00:00Z",
                }
                .build(),
            );
            let drivers: Vec<&str> = if self.csi_registered.contains(name) {
                vec!["driver.longhorn.io"]
            } else {
                vec![]
            };
            o.push(kube::csinode(name, &drivers));
        }
        o.extend(self.pods.iter().map(PodB::build));
        o.push(kube::service(
            "kube-system",
            "kube-dns",
            "10.43.0.10",
            &[("k8s-app", "kube-dns")],
        ));
        let eps: Vec<(&str, &str, bool)> = if self.coredns_ready {
            vec![("10.42.0.5", "node1", true)]
        } else {
            vec![("10.42.0.5", "node1", false)]
        };
        o.push(kube::slice("kube-system", "kube-dns", &eps));
        o.push(kube::csidriver("driver.longhorn.io"));
        o.extend(self.extra.iter().cloned());
        o.extend(self.events.iter().cloned());
        o
    }
}

pub fn sandbox_event(c: &mut Cluster, ns: &str, pod: &str, node: &str, inner: &str, count: i64) {
    let msg = format!(
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{}\": {inner}",
        kube::uid(pod).replace('-', "")
    );
    c.warn(
        ("Pod", ns, pod),
        "FailedCreatePodSandBox",
        &msg,
        count,
        node,
    );
}

/// A Deployment pod stuck creating on `node`.
pub fn creating(ns: &str, app: &str, suffix: &str, node: &str) -> PodB {
    PodB::deployment(
        ns,
        app,
        "7c8d9f6b5",
        suffix,
        node,
        &format!("ghcr.io/example/{app}:2.1"),
    )
    .state(State::Creating)
    .start("2026-03-14T11:39:00Z")
}

pub fn flux_hr(name: &str, target: &str, ready: bool, reason: &str, message: &str) -> Value {
    kube::flux(
        "HelmRelease",
        "flux-system",
        name,
        ready,
        reason,
        message,
        json!({"releaseName": name, "targetNamespace": target}),
    )
}
