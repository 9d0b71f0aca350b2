//! The 2026-01-31 incident as the cluster looked at 01:22 CST (07:22 UTC),
//! when the investigation began: boromir and theoden rebooted, k3s's
//! embedded flannel did not rewrite /run/flannel/subnet.env on either, the
//! nodes report Ready, dozens of pre-reboot pods show `Unknown`.

use serde_json::{Value, json};

use super::kube::{self, NodeB, PodB, State, event, uid};

pub const COLLECTED_AT: &str = "2026-01-31T07:22:00Z";
const OLD: &str = "2026-01-20T14:02:11Z";
const DELETED: &str = "2026-01-31T07:04:12Z";
const NEW: &str = "2026-01-31T07:04:13Z";
const SANDBOX_FIRST: &str = "2026-01-31T07:18:26Z";
const SANDBOX_LAST: &str = "2026-01-31T07:21:52Z";

pub fn boot_id(node: &str) -> String {
    uid(&format!("boot/{node}/2026-01-31"))
}

fn sandbox_msg(pod: &str, newer: bool) -> String {
    let id = uid(pod).replace('-', "");
    let inner = if newer {
        "failed to load flannel 'subnet.env' file: open /run/flannel/subnet.env: no such file or directory. Check the flannel pod log for this node."
    } else {
        "loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
    };
    format!(
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{id}\": plugin type=\"flannel\" failed (add): {inner}"
    )
}

const DNS_CRASH: &str = "{\"level\":\"error\",\"ts\":\"2026-01-31T07:21:40.118Z\",\"logger\":\"setup\",\"msg\":\"unable to start manager\",\"error\":\"Get \\\"https://10.43.0.1:443/api?timeout=32s\\\": dial tcp: lookup notification-controller.flux-system.svc.cluster.local on 10.43.0.10:53: read udp 10.42.1.31:46213->10.43.0.10:53: read: connection refused\"}";

/// All objects of the incident. `newer_wording` switches the flannel CNI
/// plugin's error text to the ≥ v1.7.1-flannel2 wording.
pub fn objects(newer_wording: bool) -> Vec<Value> {
    let mut o: Vec<Value> = Vec::new();
    let mut pods: Vec<PodB> = Vec::new();
    let mut events: Vec<Value> = Vec::new();

    for (name, cidr, ip, rebooted) in [
        ("boromir", "10.42.0.0/24", "192.168.1.10", true),
        ("theoden", "10.42.2.0/24", "192.168.1.12", true),
        ("samwise", "10.42.1.0/24", "192.168.1.11", false),
    ] {
        let since = match name {
            "boromir" => "2026-01-31T07:18:05Z",
            "theoden" => "2026-01-31T07:18:12Z",
            _ => "2026-01-10T08:40:00Z",
        };
        o.push(
            NodeB {
                name,
                cidr,
                ip,
                boot_id: boot_id(name),
                ready: "True",
                ready_since: since,
                created: "2025-11-02T12:00:00Z",
            }
            .build(),
        );
        o.push(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease", "uid": uid(&format!("lease/{name}"))},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": "2026-01-31T07:21:58.000000Z"}}));
        if rebooted {
            let at = if name == "boromir" {
                "2026-01-31T07:17:40Z"
            } else {
                "2026-01-31T07:17:52Z"
            };
            events.push(event(
                "default",
                ("Node", "", name),
                "NodeNotReady",
                "Normal",
                &format!("Node {name} status is now: NodeNotReady"),
                1,
                "2026-01-31T06:59:31Z",
                "2026-01-31T06:59:31Z",
                ("node-controller", ""),
            ));
            events.push(event(
                "default",
                ("Node", "", name),
                "Rebooted",
                "Warning",
                &format!("Node {name} has been rebooted, boot id: {}", boot_id(name)),
                1,
                at,
                at,
                ("kubelet", name),
            ));
            events.push(event(
                "default",
                ("Node", "", name),
                "NodeReady",
                "Normal",
                &format!("Node {name} status is now: NodeReady"),
                1,
                since,
                since,
                ("kubelet", name),
            ));
        }
    }

    // kube-system
    let dep = |ns: &str, d: &str, h: &str, s: &str, node: &str, img: &str| {
        PodB::deployment(ns, d, h, s, node, img)
    };
    pods.push(
        dep(
            "kube-system",
            "coredns",
            "ccb96694c",
            "7xk2p",
            "boromir",
            "rancher/mirrored-coredns-coredns:1.12.0",
        )
        .label("k8s-app", "kube-dns")
        .state(State::Creating)
        .start(NEW),
    );
    pods.push(
        dep(
            "kube-system",
            "coredns",
            "ccb96694c",
            "4lq8n",
            "boromir",
            "rancher/mirrored-coredns-coredns:1.12.0",
        )
        .label("k8s-app", "kube-dns")
        .state(State::Unknown {
            deleted: DELETED.into(),
        })
        .start(OLD),
    );
    pods.push(
        dep(
            "kube-system",
            "local-path-provisioner",
            "5cf85fd84d",
            "q9z7w",
            "theoden",
            "rancher/local-path-provisioner:v0.0.30",
        )
        .state(State::Creating)
        .start(NEW),
    );
    pods.push(
        dep(
            "kube-system",
            "local-path-provisioner",
            "5cf85fd84d",
            "jm2cx",
            "theoden",
            "rancher/local-path-provisioner:v0.0.30",
        )
        .state(State::Unknown {
            deleted: DELETED.into(),
        })
        .start(OLD),
    );
    pods.push(
        dep(
            "kube-system",
            "metrics-server",
            "5985cbc9d7",
            "h2k4d",
            "boromir",
            "rancher/mirrored-metrics-server:v0.7.2",
        )
        .label("k8s-app", "metrics-server")
        .state(State::Creating)
        .start(NEW),
    );
    pods.push(
        dep(
            "kube-system",
            "metrics-server",
            "5985cbc9d7",
            "zt8rf",
            "boromir",
            "rancher/mirrored-metrics-server:v0.7.2",
        )
        .label("k8s-app", "metrics-server")
        .state(State::Unknown {
            deleted: DELETED.into(),
        })
        .start(OLD),
    );
    pods.push(
        dep(
            "kube-system",
            "traefik",
            "5d45fc8cc9",
            "tw6rl",
            "samwise",
            "rancher/mirrored-library-traefik:3.3.2",
        )
        .label("app.kubernetes.io/name", "traefik")
        .ip("10.42.1.12"),
    );
    for (s, node) in [
        ("7bq2x", "boromir"),
        ("k9d4m", "theoden"),
        ("p3w8z", "samwise"),
    ] {
        let p = PodB::daemonset(
            "kube-system",
            "svclb-traefik-1d0f5b7e",
            s,
            node,
            "rancher/klipper-lb:v0.4.9",
        );
        pods.push(if node == "samwise" {
            p
        } else {
            p.state(State::RestartingAfterReboot).start(OLD)
        });
    }
    for (n, h) in [
        ("helm-install-traefik-crd", "x2k9p"),
        ("helm-install-traefik", "r7m3q"),
    ] {
        let mut p = PodB::bare(
            "kube-system",
            &format!("{n}-{h}"),
            "samwise",
            "rancher/klipper-helm:v0.9.3-build20241008",
        )
        .state(State::Completed);
        p.owner = Some(("Job".into(), n.into()));
        pods.push(p);
    }

    // flux-system: the controllers moved to samwise and crash on DNS.
    for (d, h, s, stale_node, stale_s) in [
        (
            "source-controller",
            "6ff87cb475",
            "8mzk2",
            Some("boromir"),
            "c4v7n",
        ),
        (
            "kustomize-controller",
            "5b69d8c9f7",
            "vx2nq",
            Some("theoden"),
            "h8j2w",
        ),
        (
            "helm-controller",
            "7f8b95c6d4",
            "kq5tw",
            Some("boromir"),
            "m5t9x",
        ),
        ("notification-controller", "7d8c9f4b5", "p6rxh", None, ""),
    ] {
        let img = format!("ghcr.io/fluxcd/{d}:v1.4.1");
        pods.push(
            dep("flux-system", d, h, s, "samwise", &img)
                .label("app", d)
                .state(State::CrashLoop {
                    exit: 1,
                    message: DNS_CRASH.replace("notification-controller", d),
                    restarts: 6,
                })
                .start(NEW),
        );
        events.push(event(
            "flux-system",
            ("Pod", "flux-system", &format!("{d}-{h}-{s}")),
            "BackOff",
            "Warning",
            &format!(
                "Back-off restarting failed container manager in pod {d}-{h}-{s}_flux-system({})",
                uid(d)
            ),
            31,
            "2026-01-31T07:05:40Z",
            "2026-01-31T07:21:44Z",
            ("kubelet", "samwise"),
        ));
        if let Some(n) = stale_node {
            pods.push(
                dep("flux-system", d, h, stale_s, n, &img)
                    .label("app", d)
                    .state(State::Unknown {
                        deleted: DELETED.into(),
                    })
                    .start(OLD),
            );
        }
    }

    // longhorn-system
    for ds in [
        "longhorn-manager",
        "longhorn-csi-plugin",
        "engine-image-ei-db6c2b6f",
    ] {
        for (s, node) in [
            ("b7x2k", "boromir"),
            ("t4n8q", "theoden"),
            ("s9w3m", "samwise"),
        ] {
            let img = if ds.starts_with("engine-image") {
                "longhornio/longhorn-engine:v1.7.2"
            } else {
                "longhornio/longhorn-manager:v1.7.2"
            };
            let mut p = PodB::daemonset("longhorn-system", ds, s, node, img)
                .label("app.kubernetes.io/instance", "longhorn");
            if ds == "longhorn-csi-plugin" {
                p.containers = vec![
                    (
                        "node-driver-registrar".into(),
                        "longhornio/csi-node-driver-registrar:v2.12.0".into(),
                    ),
                    (
                        "longhorn-liveness-probe".into(),
                        "longhornio/livenessprobe:v2.14.0".into(),
                    ),
                    (
                        "longhorn-csi-plugin".into(),
                        "longhornio/longhorn-manager:v1.7.2".into(),
                    ),
                ];
            }
            pods.push(if node == "samwise" {
                p
            } else {
                p.state(State::RestartingAfterReboot).start(OLD)
            });
        }
    }
    for node in ["boromir", "theoden", "samwise"] {
        let name = format!("instance-manager-{}", &uid(node).replace('-', "")[..32]);
        let mut p = PodB::bare(
            "longhorn-system",
            &name,
            node,
            "longhornio/longhorn-instance-manager:v1.7.2",
        )
        .label("longhorn.io/component", "instance-manager")
        .label("app.kubernetes.io/instance", "longhorn");
        p.owner = Some(("InstanceManager".into(), name.clone()));
        pods.push(if node == "samwise" {
            p
        } else {
            p.state(State::Creating).start("2026-01-31T07:18:40Z")
        });
    }
    for (d, h) in [
        ("csi-attacher", "6c8b9d7f5"),
        ("csi-provisioner", "7d9c6b8f4"),
        ("csi-resizer", "5f8d7c9b6"),
        ("csi-snapshotter", "8b6f9d7c5"),
    ] {
        let img = format!("longhornio/{d}:v4.7.0");
        pods.push(
            dep("longhorn-system", d, h, "sw4k2", "samwise", &img)
                .label("app.kubernetes.io/instance", "longhorn"),
        );
        for (node, s, stale_s) in [("boromir", "bx7n3", "bq2m8"), ("theoden", "tz5p9", "tr4k6")] {
            pods.push(
                dep("longhorn-system", d, h, s, node, &img)
                    .label("app.kubernetes.io/instance", "longhorn")
                    .state(State::Creating)
                    .start(NEW),
            );
            pods.push(
                dep("longhorn-system", d, h, stale_s, node, &img)
                    .label("app.kubernetes.io/instance", "longhorn")
                    .state(State::Unknown {
                        deleted: DELETED.into(),
                    })
                    .start(OLD),
            );
        }
    }
    pods.push(
        dep(
            "longhorn-system",
            "longhorn-driver-deployer",
            "66d8f7b9c5",
            "d2x8k",
            "samwise",
            "longhornio/longhorn-manager:v1.7.2",
        )
        .label("app.kubernetes.io/instance", "longhorn"),
    );
    pods.push(
        dep(
            "longhorn-system",
            "longhorn-ui",
            "7f8c9d6b4",
            "u3k7p",
            "samwise",
            "longhornio/longhorn-ui:v1.7.2",
        )
        .label("app.kubernetes.io/instance", "longhorn"),
    );
    pods.push(
        dep(
            "longhorn-system",
            "longhorn-ui",
            "7f8c9d6b4",
            "u8m2w",
            "theoden",
            "longhornio/longhorn-ui:v1.7.2",
        )
        .label("app.kubernetes.io/instance", "longhorn")
        .state(State::Creating)
        .start(NEW),
    );
    pods.push(
        dep(
            "longhorn-system",
            "longhorn-ui",
            "7f8c9d6b4",
            "u5q9z",
            "theoden",
            "longhornio/longhorn-ui:v1.7.2",
        )
        .label("app.kubernetes.io/instance", "longhorn")
        .state(State::Unknown {
            deleted: DELETED.into(),
        })
        .start(OLD),
    );

    // Applications with Longhorn volumes on the rebooted nodes.
    let mut volumes: Vec<(String, String, String, String)> = Vec::new(); // (ns, claim, pv, node)
    for (ns, d, h, s, stale_s, node, img) in [
        (
            "vaultwarden",
            "vaultwarden",
            "6d5f9c7b8",
            "r4t2m",
            "f7h3k",
            "theoden",
            "vaultwarden/server:1.32.7",
        ),
        (
            "gitea",
            "gitea",
            "7c9d8f6b5",
            "w8x3n",
            "g2p6v",
            "boromir",
            "gitea/gitea:1.22.6-rootless",
        ),
        (
            "paperless",
            "paperless-ngx",
            "5f6d7c8b9",
            "k2m4p",
            "n7c4x",
            "theoden",
            "ghcr.io/paperless-ngx/paperless-ngx:2.13.5",
        ),
        (
            "media",
            "jellyfin",
            "84c7d9f6b",
            "n5q8r",
            "j3w9t",
            "boromir",
            "jellyfin/jellyfin:10.10.3",
        ),
    ] {
        let claim = format!("{d}-data");
        let pvname = format!("pvc-{}", uid(&claim));
        volumes.push((ns.into(), claim.clone(), pvname.clone(), node.into()));
        let pname = format!("{d}-{h}-{s}");
        pods.push(
            dep(ns, d, h, s, node, img)
                .claim(&claim)
                .state(State::Creating)
                .start(NEW),
        );
        pods.push(
            dep(ns, d, h, stale_s, node, img)
                .claim(&claim)
                .state(State::Unknown {
                    deleted: DELETED.into(),
                })
                .start(OLD),
        );
        events.push(event(ns, ("Pod", ns, &pname), "FailedAttachVolume", "Warning", &format!("AttachVolume.Attach failed for volume \"{pvname}\" : CSINode {node} does not contain driver driver.longhorn.io"), 9, "2026-01-31T07:18:31Z", "2026-01-31T07:21:35Z", ("attachdetach-controller", "")));
        events.push(event(ns, ("Pod", ns, &pname), "FailedMount", "Warning", &format!("MountVolume.MountDevice failed for volume \"{pvname}\" : kubernetes.io/csi: attacher.MountDevice failed to create newCsiDriverClient: driver name driver.longhorn.io not found in the list of registered CSI drivers"), 4, "2026-01-31T07:18:33Z", "2026-01-31T07:21:37Z", ("kubelet", node)));
    }
    // home-assistant's StatefulSet cannot replace its pod until the stale one goes.
    pods.push(
        PodB::statefulset(
            "home-automation",
            "home-assistant",
            0,
            "boromir",
            "ghcr.io/home-assistant/home-assistant:2025.1.2",
        )
        .claim("config-home-assistant-0")
        .state(State::Unknown {
            deleted: DELETED.into(),
        })
        .start(OLD),
    );
    volumes.push((
        "home-automation".into(),
        "config-home-assistant-0".into(),
        format!("pvc-{}", uid("config-home-assistant-0")),
        "boromir".into(),
    ));
    for (ns, d, h, s, node) in [
        (
            "immich",
            "immich-machine-learning",
            "6b7c8d9f5",
            "ml4x2",
            "theoden",
        ),
        ("headscale", "headscale", "6b8d7f5c4", "j7v2x", "theoden"),
        ("homepage", "homepage", "7f9c8d6b5", "m3n8k", "boromir"),
        ("monitoring", "grafana", "5c7d8b9f6", "g9r2t", "theoden"),
        (
            "monitoring",
            "kube-prometheus-stack-operator",
            "7d6c9b8f5",
            "o4p7s",
            "boromir",
        ),
    ] {
        let img = format!("ghcr.io/example/{d}:latest");
        let inst = if ns == "monitoring" {
            "kube-prometheus-stack"
        } else {
            ns
        };
        pods.push(
            dep(ns, d, h, s, node, &img)
                .label("app.kubernetes.io/instance", inst)
                .state(State::Creating)
                .start(NEW),
        );
        if ns != "immich" {
            pods.push(
                dep(ns, d, h, &format!("{}q", &s[..4]), node, &img)
                    .label("app.kubernetes.io/instance", inst)
                    .state(State::Unknown {
                        deleted: DELETED.into(),
                    })
                    .start(OLD),
            );
        }
    }
    // Running on samwise.
    pods.push(
        dep(
            "immich",
            "immich-server",
            "5d9f8c7b6",
            "sv2k8",
            "samwise",
            "ghcr.io/immich-app/immich-server:v1.123.0",
        )
        .claim("immich-library")
        .label("app.kubernetes.io/instance", "immich"),
    );
    volumes.push((
        "immich".into(),
        "immich-library".into(),
        format!("pvc-{}", uid("immich-library")),
        "samwise".into(),
    ));
    pods.push(PodB::statefulset(
        "immich",
        "immich-postgresql",
        0,
        "samwise",
        "ghcr.io/immich-app/postgres:16-vectorchord0.3.0",
    ));
    pods.push(dep(
        "immich",
        "immich-redis",
        "6f7d8c9b5",
        "rd3x7",
        "samwise",
        "valkey/valkey:8.0-alpine",
    ));
    pods.push(PodB::statefulset(
        "gitea",
        "gitea-postgresql",
        0,
        "samwise",
        "bitnami/postgresql:16.4.0",
    ));
    pods.push(
        PodB::statefulset(
            "monitoring",
            "prometheus-kube-prometheus-stack-prometheus",
            0,
            "samwise",
            "quay.io/prometheus/prometheus:v3.1.0",
        )
        .label("app.kubernetes.io/instance", "kube-prometheus-stack"),
    );
    pods.push(
        PodB::statefulset(
            "monitoring",
            "alertmanager-kube-prometheus-stack-alertmanager",
            0,
            "samwise",
            "quay.io/prometheus/alertmanager:v0.28.0",
        )
        .label("app.kubernetes.io/instance", "kube-prometheus-stack"),
    );
    pods.push(
        dep(
            "monitoring",
            "kube-state-metrics",
            "7b8c9d6f5",
            "ks4m2",
            "samwise",
            "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0",
        )
        .label("app.kubernetes.io/instance", "kube-prometheus-stack"),
    );
    // hostNetwork pods need no CNI: they run fine on the rebooted nodes.
    for (s, node) in [
        ("ne7b2", "boromir"),
        ("ne3t9", "theoden"),
        ("ne5s4", "samwise"),
    ] {
        pods.push(
            PodB::daemonset(
                "monitoring",
                "prometheus-node-exporter",
                s,
                node,
                "quay.io/prometheus/node-exporter:v1.8.2",
            )
            .host_network()
            .label("app.kubernetes.io/instance", "kube-prometheus-stack")
            .start("2026-01-31T07:18:30Z"),
        );
    }
    for (ns, d, h, s) in [
        ("tailscale", "subnet-router", "6c7d8f9b5", "tr8k3"),
        ("apps", "uptime-kuma", "5b6c7d8f9", "uk2m7"),
        ("apps", "mealie", "7c8d9f6b5", "ml9x3"),
        ("apps", "miniflux", "6d7f8c9b4", "mf4n8"),
        ("apps", "ntfy", "5f6c7d8b9", "nt3q6"),
        ("apps", "syncthing", "7b8d9c6f5", "sy7w2"),
        ("apps", "whoami", "6f7b8c9d5", "wh5k9"),
        ("apps", "linkding", "5d6f7c8b9", "lk3m8"),
        ("apps", "freshrss", "6c7b8d9f4", "fr7q2"),
        ("apps", "vikunja", "7d8f9b6c5", "vk4t9"),
        ("paperless", "paperless-redis", "5c6d7b8f9", "pr2x4"),
    ] {
        pods.push(dep(
            ns,
            d,
            h,
            s,
            "samwise",
            &format!("ghcr.io/example/{d}:stable"),
        ));
    }
    // Pre-existing, unrelated: codeberg-runner's registration is broken.
    pods.push(
        dep("codeberg-runner", "codeberg-runner", "5c8d9f7b6", "t4w2z", "samwise", "code.forgejo.org/forgejo/runner:6.0.1")
            .state(State::CrashLoop { exit: 1, message: "level=fatal msg=\"failed to load runner registration: .runner: unexpected end of JSON input\"".into(), restarts: 212 })
            .start("2026-01-28T10:00:00Z"),
    );
    events.push(event("codeberg-runner", ("Pod", "codeberg-runner", "codeberg-runner-5c8d9f7b6-t4w2z"), "BackOff", "Warning", "Back-off restarting failed container codeberg-runner in pod codeberg-runner-5c8d9f7b6-t4w2z_codeberg-runner(9b1f)", 4410, "2026-01-28T10:01:10Z", "2026-01-31T07:21:30Z", ("kubelet", "samwise")));

    // Sandbox failures for every pod waiting for a sandbox on the rebooted nodes.
    for (i, p) in pods.iter().enumerate() {
        let waiting = matches!(p.state, State::Creating | State::RestartingAfterReboot);
        if !waiting || p.node == "samwise" || !p.claims.is_empty() {
            continue;
        }
        let name = &p.name;
        if matches!(p.state, State::RestartingAfterReboot) {
            events.push(event(
                &p.namespace,
                ("Pod", &p.namespace, name),
                "SandboxChanged",
                "Normal",
                "Pod sandbox changed, it will be killed and re-created.",
                1,
                "2026-01-31T07:18:21Z",
                "2026-01-31T07:18:21Z",
                ("kubelet", &p.node),
            ));
        } else {
            events.push(event(
                &p.namespace,
                ("Pod", &p.namespace, name),
                "Scheduled",
                "Normal",
                &format!("Successfully assigned {}/{name} to {}", p.namespace, p.node),
                1,
                "2026-01-31T07:18:20Z",
                "2026-01-31T07:18:20Z",
                ("default-scheduler", ""),
            ));
        }
        let count = 12 + (i as i64 % 9);
        let mut msg = sandbox_msg(name, newer_wording);
        if i % 2 == 0 {
            msg = format!("(combined from similar events): {msg}");
        }
        events.push(event(
            &p.namespace,
            ("Pod", &p.namespace, name),
            "FailedCreatePodSandBox",
            "Warning",
            &msg,
            count,
            SANDBOX_FIRST,
            SANDBOX_LAST,
            ("kubelet", &p.node),
        ));
    }
    o.extend(pods.iter().map(PodB::build));

    // Services and endpoints.
    o.push(kube::service(
        "kube-system",
        "kube-dns",
        "10.43.0.10",
        &[("k8s-app", "kube-dns")],
    ));
    o.push(kube::slice("kube-system", "kube-dns", &[]));
    o.push(kube::service(
        "kube-system",
        "metrics-server",
        "10.43.88.21",
        &[("k8s-app", "metrics-server")],
    ));
    o.push(kube::slice("kube-system", "metrics-server", &[]));
    o.push(kube::service(
        "kube-system",
        "traefik",
        "10.43.12.7",
        &[("app.kubernetes.io/name", "traefik")],
    ));
    o.push(kube::slice(
        "kube-system",
        "traefik",
        &[("10.42.1.12", "samwise", true)],
    ));
    o.push(kube::service(
        "longhorn-system",
        "longhorn-admission-webhook",
        "10.43.201.4",
        &[("app", "longhorn-manager")],
    ));
    o.push(kube::slice(
        "longhorn-system",
        "longhorn-admission-webhook",
        &[("10.42.1.40", "samwise", true)],
    ));
    o.push(kube::service(
        "flux-system",
        "source-controller",
        "10.43.150.9",
        &[("app", "source-controller")],
    ));
    o.push(kube::slice(
        "flux-system",
        "source-controller",
        &[("10.42.1.31", "samwise", false)],
    ));
    for (kind, name) in [
        (
            "ValidatingWebhookConfiguration",
            "longhorn-webhook-validator",
        ),
        ("MutatingWebhookConfiguration", "longhorn-webhook-mutator"),
    ] {
        o.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": name, "uid": uid(name)},
            "webhooks": [{"admissionReviewVersions": ["v1"], "clientConfig": {"service": {"name": "longhorn-admission-webhook", "namespace": "longhorn-system", "path": "/v1/webhook/validation", "port": 9502}},
                          "failurePolicy": "Fail", "matchPolicy": "Equivalent", "name": format!("{name}.longhorn.io"), "sideEffects": "None", "timeoutSeconds": 10,
                          "rules": [{"apiGroups": ["longhorn.io"], "apiVersions": ["v1beta2"], "operations": ["CREATE", "UPDATE"], "resources": ["volumes"], "scope": "Namespaced"}]}]}));
    }
    o.push(json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io", "uid": uid("apiservice-metrics")},
        "spec": {"group": "metrics.k8s.io", "groupPriorityMinimum": 100, "insecureSkipTLSVerify": true, "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443}, "version": "v1beta1", "versionPriority": 100},
        "status": {"conditions": [{"lastTransitionTime": "2026-01-31T06:59:40Z", "message": "endpoints for service/metrics-server in \"kube-system\" have no addresses with port name \"https\"", "reason": "MissingEndpoints", "status": "False", "type": "Available"}]}}));

    // Storage.
    o.push(kube::csidriver("driver.longhorn.io"));
    o.push(kube::csinode("boromir", &[]));
    o.push(kube::csinode("theoden", &[]));
    o.push(kube::csinode("samwise", &["driver.longhorn.io"]));
    for (ns, claim, pvname, node) in &volumes {
        o.push(kube::pvc(ns, claim, pvname));
        o.push(kube::pv(pvname, ns, claim, "driver.longhorn.io"));
        let (state, robustness) = if node == "samwise" {
            ("attached", "degraded")
        } else {
            ("detached", "unknown")
        };
        o.push(json!({"apiVersion": "longhorn.io/v1beta2", "kind": "Volume",
            "metadata": {"name": pvname, "namespace": "longhorn-system", "uid": uid(&format!("lhv/{pvname}"))},
            "spec": {"numberOfReplicas": 3, "frontend": "blockdev", "size": "5368709120"},
            "status": {"state": state, "robustness": robustness, "currentNodeID": if node == "samwise" { "samwise" } else { "" },
                       "kubernetesStatus": {"namespace": ns, "pvcName": claim, "pvName": pvname}}}));
        for rnode in ["boromir", "theoden", "samwise"] {
            o.push(json!({"apiVersion": "longhorn.io/v1beta2", "kind": "Replica",
                "metadata": {"name": format!("{pvname}-r-{}", &uid(rnode)[..8]), "namespace": "longhorn-system", "labels": {"longhornvolume": pvname}},
                "spec": {"nodeID": rnode, "volumeName": pvname},
                "status": {"currentState": if rnode == "samwise" { "running" } else { "stopped" }}}));
        }
    }

    // Flux objects.
    let src_dns = "failed to download artifact from http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/flux-system/e3b0c442.tar.gz: dial tcp: lookup source-controller.flux-system.svc.cluster.local. on 10.43.0.10:53: no such host";
    o.push(kube::flux("GitRepository", "flux-system", "flux-system", false, "GitOperationFailed", "failed to checkout and determine revision: unable to clone 'ssh://git@codeberg.org/homelab/cluster.git': dial tcp: lookup codeberg.org on 10.43.0.10:53: read udp 10.42.1.31:46213->10.43.0.10:53: read: connection refused", json!({"interval": "1m0s", "url": "ssh://git@codeberg.org/homelab/cluster.git"})));
    o.push(kube::flux("Kustomization", "flux-system", "flux-system", false, "ArtifactFailed", src_dns, json!({"path": "./clusters/home", "sourceRef": {"kind": "GitRepository", "name": "flux-system"}})));
    o.push(kube::flux(
        "Kustomization",
        "flux-system",
        "infrastructure",
        false,
        "DependencyNotReady",
        "dependency 'flux-system/flux-system' is not ready",
        json!({"dependsOn": [{"name": "flux-system"}]}),
    ));
    o.push(kube::flux(
        "Kustomization",
        "flux-system",
        "apps",
        false,
        "DependencyNotReady",
        "dependency 'flux-system/infrastructure' is not ready",
        json!({"dependsOn": [{"name": "infrastructure"}]}),
    ));
    for (name, target) in [
        ("longhorn", "longhorn-system"),
        ("home-assistant", "home-automation"),
        ("vaultwarden", "vaultwarden"),
        ("gitea", "gitea"),
        ("headscale", "headscale"),
        ("immich", "immich"),
        ("jellyfin", "media"),
        ("paperless-ngx", "paperless"),
        ("kube-prometheus-stack", "monitoring"),
        ("homepage", "homepage"),
        ("codeberg-runner", "codeberg-runner"),
    ] {
        let (reason, msg) = if name == "codeberg-runner" {
            ("UpgradeFailed", "Helm upgrade failed for release codeberg-runner/codeberg-runner with chart forgejo-runner@0.4.1: context deadline exceeded".to_string())
        } else {
            (
                "ArtifactFailed",
                format!("HelmChart 'flux-system/flux-system-{name}' is not ready: {src_dns}"),
            )
        };
        o.push(kube::flux(
            "HelmRelease",
            "flux-system",
            name,
            false,
            reason,
            &msg,
            json!({"releaseName": name, "targetNamespace": target, "interval": "30m"}),
        ));
    }
    o.extend(events);
    o
}
