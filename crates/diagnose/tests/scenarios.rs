//! One test per real-world failure shape reported upstream, each with the
//! root causes diagnose must name, plus a healthy cluster that yields none.

mod common;

use rebootguard_diagnose::classify::Sandbox;
use rebootguard_diagnose::clean::{self, Action};
use rebootguard_diagnose::render;
use rebootguard_diagnose::report::{Cause, Impact, Report, Verdict};

use common::kube::{self, PodB, State};
use common::scenarios::{Cluster, NOW, creating, flux_hr, sandbox_event};

fn run(c: &Cluster) -> Report {
    common::analyse(&c.objects(), NOW)
}

fn causes(r: &Report) -> Vec<Cause> {
    r.roots.iter().map(|x| x.cause.clone()).collect()
}

fn titles(r: &Report, root: usize) -> Vec<String> {
    fn walk(i: &Impact, out: &mut Vec<String>) {
        out.push(i.title.clone());
        i.children.iter().for_each(|c| walk(c, out));
    }
    let mut out = Vec::new();
    r.roots[root].impact.iter().for_each(|i| walk(i, &mut out));
    out
}

#[test]
fn healthy_cluster_has_no_finding() {
    let r = run(&Cluster::healthy());
    assert_eq!(r.verdict, Verdict::Healthy, "{:#?}", r.roots);
    assert!(r.roots.is_empty() && r.stale.pods.is_empty() && r.graph.nodes.is_empty());
    assert_eq!(r.exit_code(), 0);
    let text = render::human(&r, false);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("✓ healthy: 3 nodes Ready"), "{text}");
}

/// k3s #7028 / kubernetes #70202: cluster CIDR exhausted, the new node gets
/// no podCIDR (`CIDRNotAvailable`), flannel never writes subnet.env there.
#[test]
fn cluster_cidr_exhausted_names_the_node_without_pod_cidr() {
    let mut c = Cluster::healthy();
    c.nodes.push(("node4".into(), "True".into(), String::new()));
    c.csi_registered.push("node4".into());
    c.warn(
        ("Node", "", "node4"),
        "CIDRNotAvailable",
        "Node node4 status is now: CIDRNotAvailable",
        37,
        "",
    );
    for (i, app) in ["api", "worker"].iter().enumerate() {
        let p = creating("apps", app, &format!("n4p{i}"), "node4");
        sandbox_event(
            &mut c,
            "apps",
            &p.name.clone(),
            "node4",
            "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory",
            14,
        );
        c.pod(p);
    }
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::Cni {
            cni: Sandbox::PodCidrNotAssigned
        }],
        "{:#?}",
        r.roots
    );
    assert_eq!(r.roots[0].subjects, vec!["node4"]);
    assert_eq!(r.roots[0].blast_radius.pods, 2);
    assert!(
        r.roots[0]
            .evidence
            .iter()
            .any(|e| e.reason == "CIDRNotAvailable" && e.count == 37)
    );
    assert!(
        r.roots[0]
            .fix
            .iter()
            .any(|f| f.command.as_deref().is_some_and(|c| c.contains("podCIDR")))
    );
}

/// containernetworking/plugins #206, k3s #5556: host-local leases leaked by
/// an unclean reboot exhaust the node's range.
#[test]
fn host_local_leak_is_a_per_node_root() {
    let mut c = Cluster::healthy();
    for i in 0..3 {
        let p = creating("apps", "queue", &format!("q{i}"), "node2");
        sandbox_event(
            &mut c,
            "apps",
            &p.name.clone(),
            "node2",
            "plugin type=\"flannel\" failed (add): failed to delegate add: failed to allocate for range 0: no IP addresses available in range set: 10.42.1.1-10.42.1.254",
            20 + i,
        );
        c.pod(p);
    }
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::Cni {
            cni: Sandbox::HostLocalExhausted
        }]
    );
    assert_eq!(r.roots[0].subjects, vec!["node2"]);
    assert!(r.roots[0].fix.iter().any(|f| {
        f.command
            .as_deref()
            .is_some_and(|c| c.contains("/var/lib/cni/networks/cbr0"))
    }));
    assert_eq!(r.roots[0].blast_radius.pods, 3);
}

/// The same failure reported only through events.k8s.io/v1 (no core/v1 list):
/// normalisation makes no difference.
#[test]
fn events_k8s_io_v1_events_are_understood() {
    let mut c = Cluster::healthy();
    let p = creating("apps", "queue", "q0", "node2");
    sandbox_event(
        &mut c,
        "apps",
        &p.name.clone(),
        "node2",
        "failed to allocate for range 0: no IP addresses available in range set: 10.42.1.1-10.42.1.254",
        20,
    );
    c.pod(p);
    c.events = c.events.iter().map(kube::event_v1).collect();
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::Cni {
            cni: Sandbox::HostLocalExhausted
        }]
    );
    assert_eq!(r.roots[0].evidence[0].count, 20);
}

/// longhorn #2427 and friends: the CSI node plugin runs but never
/// registered on one node; volumes there fail to attach.
#[test]
fn csi_not_registered_on_its_own() {
    let mut c = Cluster::healthy();
    c.csi_registered.retain(|n| n != "node3");
    for (i, app) in ["postgres", "minio"].iter().enumerate() {
        let claim = format!("{app}-data");
        let pvname = format!("pvc-{}", kube::uid(&claim));
        c.extra.push(kube::pvc("apps", &claim, &pvname));
        c.extra
            .push(kube::pv(&pvname, "apps", &claim, "driver.longhorn.io"));
        let p = PodB::statefulset("apps", app, 0, "node3", "docker.io/library/postgres:16")
            .claim(&claim)
            .state(State::Creating);
        c.warn(("Pod", "apps", &p.name.clone()), "FailedMount", &format!("MountVolume.MountDevice failed for volume \"{pvname}\" : kubernetes.io/csi: attacher.MountDevice failed to create newCsiDriverClient: driver name driver.longhorn.io not found in the list of registered CSI drivers"), 6 + i as i64, "node3");
        c.pod(p);
    }
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::CsiDriverNotRegistered {
            driver: "driver.longhorn.io".into()
        }],
        "{:#?}",
        r.roots
    );
    assert_eq!(r.roots[0].subjects, vec!["node3"]);
    assert!(
        r.roots[0]
            .evidence
            .iter()
            .any(|e| e.object.kind == "CSINode")
    );
    assert_eq!(r.roots[0].blast_radius.pods, 2);
    assert!(
        r.roots[0].fix.iter().any(|f| f.command.as_deref()
            == Some("kubectl -n longhorn-system delete pod longhorn-csi-plugin-c2x9")),
        "{:#?}",
        r.roots[0].fix
    );
}

/// coredns #2087 (plugin/loop) and k3s #5030: CoreDNS crash-loops; pods
/// that need DNS crash with lookup errors and are folded under it.
#[test]
fn coredns_crash_loop_on_its_own_folds_its_dns_victims() {
    let mut c = Cluster::healthy();
    c.coredns_ready = false;
    c.pod(
        PodB::deployment("kube-system", "coredns", "ccb96694c", "a1b2c", "node1", "rancher/mirrored-coredns-coredns:1.12.0")
            .label("k8s-app", "kube-dns")
            .state(State::CrashLoop { exit: 1, message: "[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone \".\", see https://coredns.io/plugins/loop#troubleshooting".into(), restarts: 9 }),
    );
    c.pod(PodB::deployment("apps", "blog", "6d7f8c9b5", "blog1", "node2", "ghcr.io/example/blog:1.0").state(State::CrashLoop {
        exit: 2,
        message: "panic: dial tcp: lookup postgres.apps.svc.cluster.local on 10.43.0.10:53: read udp 10.42.1.9:50211->10.43.0.10:53: i/o timeout".into(),
        restarts: 4,
    }));
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::CrashLoop], "{:#?}", r.roots);
    assert!(
        r.roots[0].title.contains("kube-system/coredns")
            && r.roots[0].title.contains("plugin/loop"),
        "{}",
        r.roots[0].title
    );
    let t = titles(&r, 0);
    assert!(t.iter().any(|x| x.starts_with("CoreDNS is down")), "{t:#?}");
    assert!(
        t.iter()
            .any(|x| x.contains("apps/blog") && x.contains("lookup postgres")),
        "{t:#?}"
    );
}

/// DNS lookups fail while CoreDNS has ready endpoints: not blamed on CoreDNS.
#[test]
fn dns_errors_with_healthy_coredns_stay_separate() {
    let mut c = Cluster::healthy();
    c.pod(
        PodB::deployment(
            "apps",
            "blog",
            "6d7f8c9b5",
            "blog1",
            "node2",
            "ghcr.io/example/blog:1.0",
        )
        .state(State::CrashLoop {
            exit: 2,
            message: "dial tcp: lookup db.example.internal on 10.43.0.10:53: no such host".into(),
            restarts: 4,
        }),
    );
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::DnsLookupFailures], "{:#?}", r.roots);
}

/// A Deployment's pod on `node` crash-looping with `message`.
fn crashing(ns: &str, app: &str, hash: &str, node: &str, message: &str) -> PodB {
    PodB::deployment(
        ns,
        app,
        hash,
        "x1y2z",
        node,
        &format!("ghcr.io/example/{app}:1.0"),
    )
    .state(State::CrashLoop {
        exit: 1,
        message: message.into(),
        restarts: 5,
    })
}

const DNS_TIMEOUT: &str = "dial tcp: lookup redis.apps.svc.cluster.local on 10.43.0.10:53: read udp 10.42.2.14:41020->10.43.0.10:53: i/o timeout";

/// flannel-io/flannel#1279, k3s-io/k3s#6880: CoreDNS is Ready, but the
/// overlay from one node drops its packets; every pod there times out on
/// lookups. One root, that node's path to DNS; an NXDOMAIN elsewhere stays
/// its workload's own.
#[test]
fn lookups_without_an_answer_on_one_node_are_that_nodes_path_to_dns() {
    let mut c = Cluster::healthy();
    c.pod(crashing("apps", "api", "6d7f8c9b5", "node3", DNS_TIMEOUT));
    c.pod(crashing(
        "apps",
        "notify",
        "7b8c9d6f5",
        "node3",
        "Error: getaddrinfo EAI_AGAIN smtp.apps.svc.cluster.local",
    ));
    c.pod(crashing(
        "apps",
        "blog",
        "5f6d7c8b9",
        "node2",
        "dial tcp: lookup db.example.internal on 10.43.0.10:53: no such host",
    ));
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![
            Cause::DnsUnreachable {
                server: Some("10.43.0.10:53".into())
            },
            Cause::DnsLookupFailures
        ],
        "{:#?}",
        r.roots
    );
    let path = &r.roots[0];
    assert_eq!(path.subjects, ["node3"]);
    assert!(
        path.title.starts_with(
            "pods on node3 get no answer from cluster DNS at 10.43.0.10:53 while CoreDNS is up"
        ),
        "{}",
        path.title
    );
    let t = titles(&r, 0);
    for w in ["Deployment apps/api", "Deployment apps/notify"] {
        assert!(t.iter().any(|x| x.starts_with(w)), "{w}: {t:#?}");
    }
    assert!(
        path.evidence
            .iter()
            .any(|e| e.message.contains("i/o timeout"))
    );
    assert!(
        path.fix.iter().any(|f| f.run_on.as_deref() == Some("node3")
            && f.command.as_deref() == Some("rebootguard node check")),
        "{:#?}",
        path.fix
    );
    assert!(
        r.roots[1].title.contains("apps/blog"),
        "{}",
        r.roots[1].title
    );
}

/// Timeouts from pods on several nodes: one root for the cluster's path to
/// DNS (Service routing, NetworkPolicies), not one per workload.
#[test]
fn lookups_without_an_answer_across_nodes_are_the_clusters_path_to_dns() {
    let mut c = Cluster::healthy();
    c.pod(crashing("apps", "api", "6d7f8c9b5", "node2", DNS_TIMEOUT));
    c.pod(crashing(
        "apps",
        "notify",
        "7b8c9d6f5",
        "node3",
        "lookup smtp on 10.43.0.10:53: dial udp 10.43.0.10:53: connect: connection refused",
    ));
    let r = run(&c);
    assert_eq!(r.roots.len(), 1, "{:#?}", r.roots);
    let path = &r.roots[0];
    assert!(matches!(path.cause, Cause::DnsUnreachable { .. }));
    assert_eq!(path.subjects, ["cluster DNS"]);
    assert!(
        path.title.starts_with("pods on node2, node3 get no answer"),
        "{}",
        path.title
    );
    assert!(
        path.fix.iter().any(|f| f
            .command
            .as_deref()
            .is_some_and(|c| c.contains("networkpolicies") && c.contains("kube-dns"))),
        "{:#?}",
        path.fix
    );
    // CoreDNS runs on node1: the others reach it over node1's overlay.
    assert!(
        path.fix.iter().any(|f| f.run_on.as_deref() == Some("node1")
            && f.description.contains("CoreDNS runs there")),
        "{:#?}",
        path.fix
    );
}

/// One workload timing out is no pattern: its own root, as before.
#[test]
fn one_workload_without_an_answer_stays_its_own() {
    let mut c = Cluster::healthy();
    c.pod(crashing("apps", "api", "6d7f8c9b5", "node3", DNS_TIMEOUT));
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::DnsLookupFailures], "{:#?}", r.roots);
}

/// Image pulls fail (typo'd tag, private registry without secret): one root
/// per workload, nothing else implicated.
#[test]
fn image_pull_failures_only() {
    let mut c = Cluster::healthy();
    c.pod(
        PodB::deployment(
            "apps",
            "shop",
            "7f8b9c6d5",
            "s9k2m",
            "node1",
            "ghcr.io/example/shop:1.0.1-typo",
        )
        .state(State::ImagePull {
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling image \"ghcr.io/example/shop:1.0.1-typo\"".into(),
        }),
    );
    c.warn(("Pod", "apps", "shop-7f8b9c6d5-s9k2m"), "Failed", "Failed to pull image \"ghcr.io/example/shop:1.0.1-typo\": rpc error: code = NotFound desc = failed to pull and unpack image \"ghcr.io/example/shop:1.0.1-typo\": not found", 5, "node1");
    c.pod(PodB::deployment("apps", "billing", "5d6c7b8f9", "b3x7p", "node3", "registry.example.com/billing:3.2").state(State::ImagePull {
        reason: "ErrImagePull".into(),
        message: "failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized".into(),
    }));
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::ImagePull, Cause::ImagePull]);
    let all: String = r
        .roots
        .iter()
        .map(|x| x.title.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        all.contains("shop:1.0.1-typo") && all.contains("not found"),
        "{all}"
    );
    assert!(all.contains("401 Unauthorized"), "{all}");
    assert!(!r.graph.nodes.iter().any(|n| n.kind == "node"));
}

/// ingress-nginx #5401: the admission webhook has no endpoints, so every
/// Ingress create/update fails; the objects are folded under the webhook.
#[test]
fn webhook_without_endpoints_blocks_objects() {
    let mut c = Cluster::healthy();
    c.extra.push(kube::service(
        "ingress-nginx",
        "ingress-nginx-controller-admission",
        "10.43.9.9",
        &[("app.kubernetes.io/component", "controller")],
    ));
    c.extra.push(kube::slice(
        "ingress-nginx",
        "ingress-nginx-controller-admission",
        &[],
    ));
    c.extra.push(serde_json::json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "ingress-nginx-admission"},
        "webhooks": [{"name": "validate.nginx.ingress.kubernetes.io", "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                      "clientConfig": {"service": {"name": "ingress-nginx-controller-admission", "namespace": "ingress-nginx", "path": "/networking/v1/ingresses"}}}]}));
    let msg = "Internal error occurred: failed calling webhook \"validate.nginx.ingress.kubernetes.io\": failed to call webhook: Post \"https://ingress-nginx-controller-admission.ingress-nginx.svc:443/networking/v1/ingresses?timeout=10s\": no endpoints available for service \"ingress-nginx-controller-admission\"";
    c.extra.push(flux_hr(
        "wiki",
        "apps",
        false,
        "UpgradeFailed",
        &format!("Helm upgrade failed: {msg}"),
    ));
    c.warn(
        ("HelmRelease", "flux-system", "wiki"),
        "UpgradeFailed",
        &format!("Helm upgrade failed: {msg}"),
        3,
        "",
    );
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::WebhookUnavailable {
            webhook: "validate.nginx.ingress.kubernetes.io".into()
        }],
        "{:#?}",
        r.roots
    );
    let t = titles(&r, 0);
    assert!(
        t.iter().any(|x| x.contains("HelmRelease flux-system/wiki")),
        "{t:#?}"
    );
    // The patch names the one configuration and the webhook's index in it.
    let patch = r.roots[0]
        .fix
        .iter()
        .filter_map(|f| f.command.as_deref())
        .find(|c| c.contains("failurePolicy"))
        .expect("a failurePolicy patch");
    assert!(
        patch.starts_with(
            "kubectl patch validatingwebhookconfiguration ingress-nginx-admission --type=json"
        ) && patch.contains("/webhooks/0/failurePolicy"),
        "{patch}"
    );
}

/// Names in a snapshot are outside input: an escape sequence or newline in
/// a node name must not reach the terminal, and the name must stay one
/// quoted word of the suggested command.
#[test]
fn hostile_names_are_shown_inert_and_quoted() {
    let node = "node4\u{1b}]0;owned\u{7}\n✓ healthy: all good";
    let mut c = Cluster::healthy();
    c.nodes
        .push((node.into(), "Unknown".into(), "10.42.3.0/24".into()));
    c.csi_registered.push(node.into());
    let p = creating("apps", "api", "x;$(reboot)", node);
    let pod = p.name.clone();
    sandbox_event(
        &mut c,
        "apps",
        &pod,
        node,
        "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory",
        3,
    );
    c.pod(p);
    let r = run(&c);
    assert_eq!(r.roots.len(), 1, "{:#?}", r.roots);
    for text in [
        render::human(&r, false),
        render::human(&r, true),
        render::markdown(&r),
        render::mermaid(&r),
        render::dot(&r),
    ] {
        assert!(
            !text.contains("\u{7}") && !text.contains("]0;owned\u{1b}"),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("✓ healthy")),
            "a forged line: {text}"
        );
        // Shown as visible escapes (DOT doubles the backslashes).
        assert!(
            text.contains("x1b]0;owned") && text.contains("x07"),
            "{text}"
        );
    }
    // Colour still works: only rebootguard's own SGR sequences remain.
    let coloured = render::human(&r, true);
    assert!(
        coloured.split('\u{1b}').skip(1).all(|s| s.starts_with('[')),
        "{coloured}"
    );
    // The JSON keeps the names as they are.
    assert!(render::json(&r).contains("node4\\u001b]0;owned"));
    let commands: Vec<&str> = r.roots[0]
        .fix
        .iter()
        .filter_map(|f| f.command.as_deref())
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("kubectl describe node 'node4\u{1b}]0;owned")),
        "{commands:#?}"
    );
}

/// A node goes NotReady (kubelet stopped): its pods and the pods that can
/// no longer be scheduled fold under it; nothing on it is "stale".
#[test]
fn not_ready_node_owns_its_pods() {
    let mut c = Cluster::healthy();
    c.nodes[2].1 = "Unknown".into();
    c.extra.push(serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node3", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node3", "leaseDurationSeconds": 40, "renewTime": "2026-03-14T11:50:00.000000Z"}}));
    c.extra.push(serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40, "renewTime": "2026-03-14T11:59:50.000000Z"}}));
    c.pod(
        PodB::deployment(
            "apps",
            "wiki",
            "6d7f8c9b5",
            "wiki1",
            "node3",
            "ghcr.io/example/wiki:1.0",
        )
        .state(State::NotReady),
    );
    c.pod(
        PodB::deployment("apps", "cache", "5b6c7d8f9", "c7x2q", "", "valkey/valkey:8")
            .state(State::Unschedulable { message: "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 node(s) didn't match pod anti-affinity rules.".into() }),
    );
    c.warn(("Pod", "apps", "cache-5b6c7d8f9-c7x2q"), "FailedScheduling", "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.", 12, "");
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::NodeNotReady], "{:#?}", r.roots);
    assert_eq!(r.roots[0].subjects, vec!["node3"]);
    let lease = r.roots[0]
        .evidence
        .iter()
        .find(|e| e.reason == "LeaseNotRenewed")
        .expect("stale lease evidence");
    assert!(lease.message.contains("600s before"), "{}", lease.message);
    let t = titles(&r, 0);
    assert!(t.iter().any(|x| x.contains("apps/wiki")), "{t:#?}");
    assert!(t.iter().any(|x| x.contains("apps/cache")), "{t:#?}");
    assert!(r.stale.pods.is_empty());
}

/// Two unrelated failures at once stay two roots, larger blast radius first.
#[test]
fn two_independent_problems_stay_separate() {
    let mut c = Cluster::healthy();
    for i in 0..3 {
        let p = creating("apps", "queue", &format!("q{i}"), "node2");
        sandbox_event(
            &mut c,
            "apps",
            &p.name.clone(),
            "node2",
            "no IP addresses available in range set: 10.42.1.1-10.42.1.254",
            9,
        );
        c.pod(p);
    }
    c.pod(
        PodB::deployment(
            "apps",
            "shop",
            "7f8b9c6d5",
            "s9k2m",
            "node1",
            "ghcr.io/example/shop:9.9",
        )
        .state(State::ImagePull {
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling image \"ghcr.io/example/shop:9.9\"".into(),
        }),
    );
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![
            Cause::Cni {
                cni: Sandbox::HostLocalExhausted
            },
            Cause::ImagePull
        ],
        "{:#?}",
        r.roots
    );
    assert_eq!((r.roots[0].rank, r.roots[1].rank), (1, 2));
    assert!(r.roots[0].blast_radius.pods > r.roots[1].blast_radius.pods);
}

/// CNI not initialized after a reboot (k3s #11619): flannel never started.
#[test]
fn cni_not_initialized() {
    let mut c = Cluster::healthy();
    let p = creating("apps", "api", "a0", "node1");
    c.warn(("Pod", "apps", &p.name.clone()), "FailedCreatePodSandBox", "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to create containerd task: container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized", 30, "node1");
    c.pod(p);
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::Cni {
            cni: Sandbox::CniNotInitialized
        }]
    );
}

/// After a graceful reboot: `Failed`/`Terminated` pods, and a pod on a node
/// that is gone. Nothing is broken but there is noise to clean.
#[test]
fn graceful_shutdown_leftovers_are_stale_not_causes() {
    let mut c = Cluster::healthy();
    c.events.push(kube::event(
        "default",
        ("Node", "", "node2"),
        "Rebooted",
        "Warning",
        &format!(
            "Node node2 has been rebooted, boot id: {}",
            kube::uid("boot/node2")
        ),
        1,
        "2026-03-14T11:00:00Z",
        "2026-03-14T11:00:00Z",
        ("kubelet", "node2"),
    ));
    c.pod(
        PodB::deployment(
            "apps",
            "blog",
            "6d7f8c9b5",
            "old77",
            "node2",
            "ghcr.io/example/blog:1.0",
        )
        .state(State::Shutdown)
        .start("2026-03-10T10:00:00Z"),
    );
    c.pod(
        PodB::deployment(
            "apps",
            "blog",
            "6d7f8c9b5",
            "term8",
            "node2",
            "ghcr.io/example/blog:1.0",
        )
        .state(State::Terminating {
            deleted: "2026-03-14T10:58:00Z".into(),
        })
        .start("2026-03-10T10:00:00Z"),
    );
    c.pod(
        PodB::bare("apps", "debug-shell", "node2", "busybox")
            .state(State::Terminating {
                deleted: "2026-03-14T10:58:00Z".into(),
            })
            .start("2026-03-10T10:00:00Z"),
    );
    c.pod(PodB::daemonset(
        "longhorn-system",
        "longhorn-manager",
        "gone1",
        "node9",
        "longhornio/longhorn-manager:v1.7.2",
    ));
    // A pod restarted in place after the boot is not stale.
    c.pod(
        PodB::deployment(
            "apps",
            "blog",
            "6d7f8c9b5",
            "blog1",
            "node2",
            "ghcr.io/example/blog:1.0",
        )
        .start("2026-03-14T11:01:00Z"),
    );
    let r = run(&c);
    assert!(r.roots.is_empty(), "{:#?}", r.roots);
    assert_eq!(r.verdict, Verdict::ProblemsFound);
    let plan: Vec<(&str, Action)> = r
        .stale
        .pods
        .iter()
        .map(|e| (e.name.as_str(), e.action))
        .collect();
    assert_eq!(
        plan,
        vec![
            ("blog-6d7f8c9b5-old77", Action::ForceDelete),
            ("blog-6d7f8c9b5-term8", Action::ForceDelete),
            ("debug-shell", Action::Keep),
            ("longhorn-manager-gone1", Action::ForceDelete),
        ]
    );
    let snap = common::snapshot_of(&c.objects(), NOW);
    let with_unowned = clean::plan(
        &snap,
        NOW.parse().expect("now"),
        &clean::Options {
            include_unowned: true,
        },
    );
    let debug = with_unowned
        .entries
        .iter()
        .find(|e| e.name == "debug-shell")
        .expect("listed");
    assert_eq!(debug.action, Action::ForceDelete);
    assert_eq!(
        debug.command.as_deref(),
        Some("kubectl delete pod -n apps debug-shell --grace-period=0 --force")
    );
}

/// Without a `Rebooted` event only the Ready transition dates the boot: the
/// plan deletes gracefully, never by force.
#[test]
fn weak_reboot_evidence_never_forces() {
    let mut c = Cluster::healthy();
    c.pod(
        PodB::deployment(
            "apps",
            "blog",
            "6d7f8c9b5",
            "term8",
            "node2",
            "ghcr.io/example/blog:1.0",
        )
        .state(State::Terminating {
            deleted: "2026-03-01T07:58:00Z".into(),
        })
        .start("2026-02-20T10:00:00Z"),
    );
    let snap = common::snapshot_of(&c.objects(), NOW);
    let plan = clean::plan(&snap, NOW.parse().expect("now"), &clean::Options::default());
    assert_eq!(plan.entries.len(), 1);
    assert_eq!(
        plan.entries[0].action,
        Action::Delete,
        "{:?}",
        plan.entries[0]
    );
    assert!(plan.entries[0].reason.contains("became Ready"));
}

/// A Flux object failing for its own reason is its own root; one failing
/// because a dependency failed is folded under it.
#[test]
fn flux_objects_fail_on_their_own_and_through_dependencies() {
    let mut c = Cluster::healthy();
    c.extra.push(kube::flux("Kustomization", "flux-system", "infra", false, "BuildFailed", "kustomize build failed: accumulating resources: accumulation err='accumulating resources from './monitoring'': missing Resource metadata", serde_json::json!({})));
    c.extra.push(kube::flux(
        "Kustomization",
        "flux-system",
        "apps",
        false,
        "DependencyNotReady",
        "dependency 'flux-system/infra' is not ready",
        serde_json::json!({}),
    ));
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::FluxNotReady], "{:#?}", r.roots);
    assert!(r.roots[0].title.contains("Kustomization flux-system/infra"));
    assert!(
        titles(&r, 0)
            .iter()
            .any(|t| t.contains("Kustomization flux-system/apps"))
    );
}

/// A missing RBAC permission degrades the report and says so.
#[test]
fn missing_kinds_degrade_the_report() {
    let c = Cluster::healthy();
    let mut snap = common::snapshot_of(&c.objects(), NOW);
    snap.missing.push(rebootguard_diagnose::load::missing(
        "Lease",
        "leases.coordination.k8s.io is forbidden: User \"dev\" cannot list resource \"leases\"",
    ));
    let r = rebootguard_diagnose::analyse(&snap, NOW.parse().expect("now"), &Default::default());
    assert_eq!(r.degraded.len(), 1);
    assert!(render::human(&r, false).contains("degraded: could not collect Lease"));
}

/// Vanilla flannel as a DaemonSet (flannel #1321 and friends): its pod on a
/// node crash-loops, so sandboxes there fail on a missing subnet.env. The
/// first domino is the flannel pod, with the node's failures under it.
#[test]
fn crashing_flannel_daemonset_pod_is_the_first_domino() {
    let mut c = Cluster::healthy();
    c.pod(
        PodB::daemonset("kube-flannel", "kube-flannel-ds", "f2x8k", "node2", "ghcr.io/flannel-io/flannel:v0.26.4")
            .label("app", "flannel")
            .host_network()
            .state(State::CrashLoop {
                exit: 1,
                message: "E0314 11:58:01.123 main.go:359] Error registering network: failed to acquire lease: node \"node2\" pod cidr not assigned".into(),
                restarts: 12,
            }),
    );
    for i in 0..2 {
        let p = creating("apps", "api", &format!("a{i}"), "node2");
        sandbox_event(
            &mut c,
            "apps",
            &p.name.clone(),
            "node2",
            "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory",
            9,
        );
        c.pod(p);
    }
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::CrashLoop], "{:#?}", r.roots);
    assert!(
        r.roots[0].title.contains("kube-flannel/kube-flannel-ds"),
        "{}",
        r.roots[0].title
    );
    let t = titles(&r, 0);
    assert!(
        t.iter()
            .any(|x| x.starts_with("node node2: flannel subnet.env missing")),
        "{t:#?}"
    );
    assert!(t.iter().any(|x| x.contains("apps/api")), "{t:#?}");
}

/// A broken or partial subnet.env (a hand-written one missing a key) and a
/// missing CNI binary: both named for what they are.
#[test]
fn invalid_subnet_env_and_missing_plugin_are_told_apart() {
    let mut c = Cluster::healthy();
    let p = creating("apps", "api", "a0", "node1");
    sandbox_event(
        &mut c,
        "apps",
        &p.name.clone(),
        "node1",
        "plugin type=\"flannel\" failed (add): failed to load flannel 'subnet.env' file: /run/flannel/subnet.env is missing FLANNEL_MTU. Check the flannel pod log for this node.",
        7,
    );
    c.pod(p);
    let p = creating("apps", "web", "w0", "node3");
    sandbox_event(
        &mut c,
        "apps",
        &p.name.clone(),
        "node3",
        "failed to find plugin \"flannel\" in path [/var/lib/rancher/k3s/data/cni]",
        5,
    );
    c.pod(p);
    let r = run(&c);
    let mut got = causes(&r);
    got.sort();
    assert_eq!(
        got,
        vec![
            Cause::Cni {
                cni: Sandbox::FlannelSubnetEnvInvalid
            },
            Cause::Cni {
                cni: Sandbox::CniPluginMissing {
                    plugin: "flannel".into()
                }
            },
        ],
        "{:#?}",
        r.roots
    );
}

/// Another CNI (Calico): its node agent is down on one node, so the plugin
/// cannot find its node name; the agent is the first domino.
#[test]
fn calico_node_down_is_the_first_domino() {
    let mut c = Cluster::healthy();
    c.pod(
        PodB::daemonset(
            "calico-system",
            "calico-node",
            "k4m2p",
            "node3",
            "docker.io/calico/node:v3.29.1",
        )
        .label("k8s-app", "calico-node")
        .host_network()
        .state(State::CrashLoop {
            exit: 1,
            message: "calico/node is not ready: BIRD is not ready: Error querying BIRD".into(),
            restarts: 5,
        }),
    );
    let p = creating("apps", "api", "c0", "node3");
    sandbox_event(
        &mut c,
        "apps",
        &p.name.clone(),
        "node3",
        "plugin type=\"calico\" failed (add): stat /var/lib/calico/nodename: no such file or directory: check that the calico/node container is running and has mounted /var/lib/calico/",
        11,
    );
    c.pod(p);
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::CrashLoop], "{:#?}", r.roots);
    assert!(
        r.roots[0].title.contains("calico-system/calico-node"),
        "{}",
        r.roots[0].title
    );
    assert!(
        titles(&r, 0)
            .iter()
            .any(|t| t.starts_with("node node3: Calico: /var/lib/calico/nodename missing")),
        "{:#?}",
        titles(&r, 0)
    );
}

/// rebootguard's agent reports a node's pod network broken before (or
/// without) any sandbox event: the condition alone names the root, with
/// its message as the evidence.
#[test]
fn a_fresh_pod_network_ready_false_is_the_nodes_root() {
    let mut objects = Cluster::healthy().objects();
    set_pod_network_ready(
        &mut objects,
        "node2",
        "False",
        "FlannelLinkMissing",
        "2026-03-14T11:59:30Z",
    );
    let r = common::analyse(&objects, NOW);
    assert_eq!(
        causes(&r),
        vec![Cause::Cni {
            cni: Sandbox::PodNetworkNotReady {
                reason: "FlannelLinkMissing".into()
            }
        }],
        "{:#?}",
        r.roots
    );
    assert_eq!(r.roots[0].subjects, vec!["node2"]);
    let text = render::human(&r, false);
    assert!(
        text.contains("pod network not ready (FlannelLinkMissing)"),
        "{text}"
    );
    assert!(
        text.contains("flannel-link: flannel.1 does not exist"),
        "{text}"
    );
    assert!(text.contains("rebootguard node check"), "{text}");

    // The reasons a sandbox error would give fold into the same class.
    let mut objects = Cluster::healthy().objects();
    set_pod_network_ready(
        &mut objects,
        "node2",
        "False",
        "SubnetEnvMissing",
        "2026-03-14T11:59:30Z",
    );
    assert_eq!(
        causes(&common::analyse(&objects, NOW)),
        vec![Cause::Cni {
            cni: Sandbox::FlannelSubnetEnvMissing
        }]
    );
}

/// A condition whose agent stopped reporting is not trusted: no root, a note.
#[test]
fn a_stale_pod_network_ready_is_unknown() {
    let mut objects = Cluster::healthy().objects();
    set_pod_network_ready(
        &mut objects,
        "node2",
        "False",
        "FlannelLinkMissing",
        "2026-03-14T11:40:00Z",
    );
    set_pod_network_ready(
        &mut objects,
        "node3",
        "True",
        "ChecksAndProbePassed",
        "2026-03-14T11:59:50Z",
    );
    let r = common::analyse(&objects, NOW);
    assert!(r.roots.is_empty(), "{:#?}", r.roots);
    let agent: Vec<&String> = r
        .notes
        .iter()
        .filter(|n| n.contains("PodNetworkReady"))
        .collect();
    assert_eq!(agent.len(), 1, "{:?}", r.notes);
    assert!(
        agent[0].starts_with("node node2: PodNetworkReady=False was last confirmed 1200s ago"),
        "{agent:?}"
    );
}

fn set_pod_network_ready(
    objects: &mut [serde_json::Value],
    node: &str,
    status: &str,
    reason: &str,
    heartbeat: &str,
) {
    let n = objects
        .iter_mut()
        .find(|o| o["kind"] == "Node" && o["metadata"]["name"] == node)
        .expect("node");
    let message = match reason {
        "FlannelLinkMissing" => {
            "flannel-link: flannel.1 does not exist: pod traffic cannot leave this node; fix: restart k3s"
        }
        _ => "subnet-env: /run/flannel/subnet.env does not exist",
    };
    n["status"]["conditions"]
        .as_array_mut()
        .expect("conditions")
        .push(serde_json::json!({
            "type": "PodNetworkReady", "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2026-03-14T11:30:00Z",
        }));
}

/// The kubelet's `Rebooted` event for `node`'s current boot, at `at`.
fn rebooted(c: &mut Cluster, node: &str, at: &str) {
    c.events.push(kube::event(
        "default",
        ("Node", "", node),
        "Rebooted",
        "Warning",
        &format!(
            "Node {node} has been rebooted, boot id: {}",
            kube::uid(&format!("boot/{node}"))
        ),
        1,
        at,
        at,
        ("kubelet", node),
    ));
}

const BEFORE_BOOT: &str = "2026-03-10T10:00:00Z";

/// Pods a reboot killed on node2, each in one of the shapes the kubelet
/// shows after the boot: waiting with the killed container as its last
/// state, terminated `Unknown`/255 with restarts counted before the boot,
/// and still `Running` since before the boot with its Ready condition False.
fn reboot_victims(c: &mut Cluster) {
    c.pod(
        PodB::daemonset(
            "kube-system",
            "svclb-traefik",
            "k9d4m",
            "node2",
            "rancher/klipper-lb:v0.4.9",
        )
        .state(State::RestartingAfterReboot)
        .start(BEFORE_BOOT),
    );
    c.pod(
        PodB::deployment(
            "apps",
            "queue",
            "5c6d7b8f9",
            "qu2x4",
            "node2",
            "ghcr.io/example/queue:3.1",
        )
        .state(State::KilledByReboot { restarts: 7 })
        .start(BEFORE_BOOT),
    );
    c.pod(
        PodB::statefulset(
            "apps",
            "postgres",
            0,
            "node2",
            "docker.io/library/postgres:16",
        )
        .state(State::NotReady)
        .start(BEFORE_BOOT),
    );
}

/// A rebooted node whose CNI fails (its sandbox events expired; only one
/// new pod still shows one): every pod the reboot killed there is a
/// consequence of the node's network, none a crash of its own.
#[test]
fn reboot_killed_pods_fold_under_the_nodes_failing_network() {
    let mut c = Cluster::healthy();
    rebooted(&mut c, "node2", "2026-03-14T11:00:00Z");
    reboot_victims(&mut c);
    let p = creating("apps", "api", "a0", "node2");
    sandbox_event(
        &mut c,
        "apps",
        &p.name.clone(),
        "node2",
        "plugin type=\"flannel\" failed (add): failed to load flannel 'subnet.env' file: open /run/flannel/subnet.env: no such file or directory. Check the flannel pod log for this node.",
        12,
    );
    c.pod(p);
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::Cni {
            cni: Sandbox::FlannelSubnetEnvMissing
        }],
        "{:#?}",
        r.roots
    );
    assert_eq!(r.roots[0].subjects, vec!["node2"]);
    assert_eq!(r.roots[0].blast_radius.pods, 4, "{:#?}", r.roots[0]);
    let t = titles(&r, 0);
    for w in [
        "DaemonSet kube-system/svclb-traefik",
        "Deployment apps/queue",
        "StatefulSet apps/postgres",
        "Deployment apps/api",
    ] {
        assert!(t.iter().any(|x| x.starts_with(w)), "{w}: {t:#?}");
    }
    assert!(r.roots[0].evidence.iter().any(|e| e.reason == "Rebooted"));
    assert!(
        r.notes.iter().all(|n| !n.contains("not back yet")),
        "{:?}",
        r.notes
    );

    // The same with no sandbox event left at all: the agent's condition
    // names the node's failure, and the reboot's victims still fold under it.
    let mut c = Cluster::healthy();
    rebooted(&mut c, "node2", "2026-03-14T11:00:00Z");
    reboot_victims(&mut c);
    let mut objects = c.objects();
    set_pod_network_ready(
        &mut objects,
        "node2",
        "False",
        "SubnetEnvMissing",
        "2026-03-14T11:59:30Z",
    );
    let r = common::analyse(&objects, NOW);
    assert_eq!(
        causes(&r),
        vec![Cause::Cni {
            cni: Sandbox::FlannelSubnetEnvMissing
        }],
        "{:#?}",
        r.roots
    );
    assert_eq!(r.roots[0].blast_radius.pods, 3, "{:#?}", r.roots[0]);
}

/// A rebooted node that is fine: the containers the reboot killed (exit
/// code 255, reason `Unknown`, finished before the boot, restarts counted
/// before it) are no crash loop, and nothing else makes them a root. They
/// are named as not back yet, five minutes after the boot.
#[test]
fn reboot_killed_containers_on_a_healthy_node_are_no_crash_root() {
    let mut c = Cluster::healthy();
    rebooted(&mut c, "node2", "2026-03-14T11:55:00Z");
    reboot_victims(&mut c);
    let r = run(&c);
    assert!(r.roots.is_empty(), "{:#?}", r.roots);
    assert!(r.stale.pods.is_empty(), "{:#?}", r.stale.pods);
    assert_eq!(r.verdict, Verdict::ProblemsFound);
    assert_eq!(r.summary.pods_affected, 3);
    let notes: Vec<&String> = r
        .notes
        .iter()
        .filter(|n| n.contains("not back yet"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", r.notes);
    assert!(
        notes[0].starts_with("node node2 rebooted: 3 pod(s)")
            && notes[0].contains("apps/queue-5c6d7b8f9-qu2x4"),
        "{notes:?}"
    );
    let text = render::human(&r, false);
    assert!(
        text.contains("0 root cause(s)") && text.contains("not crashes"),
        "{text}"
    );
}

/// The kubelet brings a reboot's victims back within minutes: an hour
/// after the boot they are stuck, each its workload's root. Without a
/// `Rebooted` event the node's Ready transition dates the boot; the
/// runtime's `Unknown` is evidence enough that the reboot killed it.
#[test]
fn reboot_killed_pods_long_after_the_boot_are_stuck() {
    let mut c = Cluster::healthy();
    rebooted(&mut c, "node2", "2026-03-14T11:00:00Z");
    reboot_victims(&mut c);
    c.pod(
        PodB::deployment(
            "apps",
            "wiki",
            "6d7f8c9b5",
            "wiki1",
            "node3",
            "ghcr.io/example/wiki:1.0",
        )
        .state(State::KilledByReboot { restarts: 2 })
        .start("2026-02-20T10:00:00Z"),
    );
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::PodStuck; 4], "{:#?}", r.roots);
    for (workload, says) in [
        ("apps/queue", "not back 60 min after node2's reboot"),
        ("apps/wiki", "not back 13 d after node3's reboot"),
    ] {
        let root = r
            .roots
            .iter()
            .find(|x| x.title.contains(workload))
            .unwrap_or_else(|| panic!("{workload} is a root: {:#?}", r.roots));
        assert!(root.title.contains(says), "{}", root.title);
        assert!(root.evidence.iter().any(|e| e.reason == "KilledByReboot"));
    }
    assert!(
        r.notes.iter().all(|n| !n.contains("not back yet")),
        "{:?}",
        r.notes
    );
}

/// On the same rebooted node, a container that crashes after the boot
/// (exit 1, finished after it, restarting since) is still its own root;
/// the reboot's victims beside it are not.
#[test]
fn a_crash_loop_after_the_reboot_is_still_its_own_root() {
    let mut c = Cluster::healthy();
    rebooted(&mut c, "node2", "2026-03-14T11:55:00Z");
    reboot_victims(&mut c);
    c.pod(
        PodB::deployment(
            "apps",
            "blog",
            "6d7f8c9b5",
            "blog1",
            "node2",
            "ghcr.io/example/blog:1.0",
        )
        .state(State::CrashLoop {
            exit: 1,
            message: "Error: SQLITE_CORRUPT: database disk image is malformed".into(),
            restarts: 6,
        })
        .start("2026-03-14T11:56:00Z"),
    );
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::CrashLoop], "{:#?}", r.roots);
    assert!(
        r.roots[0].title.contains("apps/blog") && r.roots[0].title.contains("last exit code 1"),
        "{}",
        r.roots[0].title
    );
    assert_eq!(r.roots[0].blast_radius.pods, 1);
}

fn coredns(state: State) -> PodB {
    PodB::deployment(
        "kube-system",
        "coredns",
        "ccb96694c",
        "a1b2c",
        "node1",
        "rancher/mirrored-coredns-coredns:1.12.0",
    )
    .label("k8s-app", "kube-dns")
    .state(state)
}

/// Workloads and Flux objects failing on DNS, each in another wording:
/// Go's resolver (SERVFAIL, a UDP dial, NXDOMAIN), node's getaddrinfo,
/// libpq through glibc in a log line, curl in an event, Flux's messages.
fn dns_dependents(c: &mut Cluster) {
    c.pod(crashing(
        "apps",
        "blog",
        "6d7f8c9b5",
        "node2",
        "panic: dial tcp: lookup postgres.apps.svc.cluster.local on 10.43.0.10:53: server misbehaving",
    ));
    c.pod(crashing(
        "apps",
        "notify",
        "7b8c9d6f5",
        "node3",
        "Error: getaddrinfo EAI_AGAIN smtp.example.com\n    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:120:26)",
    ));
    c.pod(crashing(
        "apps",
        "mailer",
        "5f6d7c8b9",
        "node3",
        "fatal: could not start",
    ));
    c.warn(
        ("Pod", "apps", "mailer-5f6d7c8b9-x1y2z"),
        "Failed",
        "Error: failed to fetch templates: curl: (6) Could not resolve host: templates.example.com",
        4,
        "node3",
    );
    c.pod(
        PodB::deployment(
            "apps",
            "wiki",
            "6d7f8c9b5",
            "wiki1",
            "node3",
            "ghcr.io/example/wiki:1.0",
        )
        .state(State::NotReady),
    );
    c.pod(crashing(
        "flux-system",
        "source-controller",
        "6f4c8d9b7",
        "node2",
        "{\"level\":\"error\",\"msg\":\"unable to start manager\",\"error\":\"dial udp 10.43.0.10:53: connect: network is unreachable\"}",
    ));
    c.extra.push(kube::flux(
        "GitRepository",
        "flux-system",
        "fleet",
        false,
        "GitOperationFailed",
        "failed to checkout and determine revision: unable to clone 'https://github.com/example/fleet': dial tcp: lookup github.com on 10.43.0.10:53: no such host",
        serde_json::json!({}),
    ));
    c.extra.push(flux_hr(
        "grafana",
        "monitoring",
        false,
        "ArtifactFailed",
        "HelmChart 'flux-system/monitoring-grafana' is not ready: chart pull error: failed to download chart: Get \"https://grafana.github.io/helm-charts/index.yaml\": dial tcp: lookup grafana.github.io: Temporary failure in name resolution",
    ));
}

const DEPENDENTS: [&str; 7] = [
    "Deployment apps/blog",
    "Deployment apps/notify",
    "Deployment apps/mailer",
    "Deployment apps/wiki",
    "Deployment flux-system/source-controller",
    "GitRepository flux-system/fleet",
    "HelmRelease flux-system/grafana",
];

/// Analyses the cluster with `patch` applied to its objects and the wiki's
/// log excerpt (the only place its DNS failure shows).
fn dns_run(c: &Cluster, patch: impl FnOnce(&mut Vec<serde_json::Value>)) -> Report {
    let mut objects = c.objects();
    patch(&mut objects);
    let mut snap = common::snapshot_of(&objects, NOW);
    snap.log_excerpts.push(rebootguard_diagnose::snapshot::LogExcerpt {
        namespace: "apps".into(),
        pod: "wiki-6d7f8c9b5-wiki1".into(),
        container: "wiki".into(),
        lines: vec![
            "2026-03-14T11:58:02Z ERROR psycopg2.OperationalError: could not translate host name \"postgres\" to address: Temporary failure in name resolution".into(),
        ],
    });
    rebootguard_diagnose::analyse(&snap, NOW.parse().expect("now"), &Default::default())
}

/// One root, every dependent under it, none a DNS root of its own.
fn assert_one_dns_root(r: &Report, cause: Cause, title_has: &str) {
    assert_eq!(causes(r), vec![cause], "{:#?}", r.roots);
    assert!(r.roots[0].title.contains(title_has), "{}", r.roots[0].title);
    let t = titles(r, 0);
    assert!(t.iter().any(|x| x.starts_with("CoreDNS is down")), "{t:#?}");
    for d in DEPENDENTS {
        assert!(t.iter().any(|x| x.starts_with(d)), "{d}: {t:#?}");
    }
}

/// CoreDNS crash-looping for each of its own reasons (a Corefile it cannot
/// parse, plugin/loop, OOMKilled): the root is CoreDNS with its reason,
/// every DNS failure under it.
#[test]
fn dns_failures_fold_under_a_crash_looping_coredns_whatever_its_reason() {
    for (message, exit, shown) in [
        (
            "plugin/errors: /etc/coredns/Corefile:4 - Error during parsing: Unknown directive 'forwad'",
            1,
            "Error during parsing",
        ),
        (
            "[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone \".\", see https://coredns.io/plugins/loop#troubleshooting",
            1,
            "Loop (127.0.0.1:55953 -> :53) detected",
        ),
        ("", 137, "last exit code 137 (OOMKilled)"),
    ] {
        let mut c = Cluster::healthy();
        c.coredns_ready = false;
        c.pod(coredns(State::CrashLoop {
            exit,
            message: message.into(),
            restarts: 9,
        }));
        dns_dependents(&mut c);
        let r = dns_run(&c, |objects| {
            if exit == 137 {
                let p = objects
                    .iter_mut()
                    .find(|o| o["metadata"]["name"] == "coredns-ccb96694c-a1b2c")
                    .expect("coredns");
                p["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"] =
                    serde_json::json!("OOMKilled");
            }
        });
        assert_one_dns_root(&r, Cause::CrashLoop, shown);
        assert!(r.roots[0].title.contains("kube-system/coredns"));
    }
}

/// CoreDNS cannot be scheduled: its Pending pod is the root.
#[test]
fn dns_failures_fold_under_a_pending_coredns() {
    let mut c = Cluster::healthy();
    c.coredns_ready = false;
    let mut p = coredns(State::Unschedulable {
        message: "0/3 nodes are available: 3 Insufficient memory.".into(),
    });
    p.node = String::new();
    c.pod(p);
    c.warn(
        ("Pod", "kube-system", "coredns-ccb96694c-a1b2c"),
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
        14,
        "",
    );
    dns_dependents(&mut c);
    let r = dns_run(&c, |_| {});
    assert_one_dns_root(&r, Cause::Unschedulable, "Insufficient memory");
}

/// CoreDNS sits on a node whose CNI fails: DNS itself folds under that
/// node's network, and so does everything failing on DNS, also when
/// CoreDNS's own events expired and only the reboot's kill shows.
#[test]
fn dns_failures_fold_under_the_network_of_corednss_node() {
    let subnet_env = "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory";
    let missing = Cause::Cni {
        cni: Sandbox::FlannelSubnetEnvMissing,
    };
    let mut c = Cluster::healthy();
    c.coredns_ready = false;
    c.pod(coredns(State::Creating).start("2026-03-14T11:39:00Z"));
    sandbox_event(
        &mut c,
        "kube-system",
        "coredns-ccb96694c-a1b2c",
        "node1",
        subnet_env,
        31,
    );
    dns_dependents(&mut c);
    let r = dns_run(&c, |_| {});
    assert_one_dns_root(&r, missing.clone(), "node1");
    assert_eq!(r.roots[0].subjects, vec!["node1"]);

    let mut c = Cluster::healthy();
    c.coredns_ready = false;
    rebooted(&mut c, "node1", "2026-03-14T11:00:00Z");
    c.pod(coredns(State::RestartingAfterReboot).start(BEFORE_BOOT));
    let p = creating("apps", "api", "a0", "node1");
    sandbox_event(&mut c, "apps", &p.name.clone(), "node1", subnet_env, 12);
    c.pod(p);
    dns_dependents(&mut c);
    let r = dns_run(&c, |_| {});
    assert_one_dns_root(&r, missing, "node1");
}

/// CoreDNS runs and is Ready, but its Service has no ready endpoints (a
/// selector that no longer matches): the Service is the root.
#[test]
fn dns_failures_fold_under_coredns_running_without_endpoints() {
    let mut c = Cluster::healthy();
    c.coredns_ready = false;
    dns_dependents(&mut c);
    let r = dns_run(&c, |_| {});
    assert_one_dns_root(
        &r,
        Cause::ComponentDown {
            component: "CoreDNS".into(),
        },
        "no ready endpoints while 1 of its pod(s) are Ready",
    );
    assert!(
        r.roots[0].fix.iter().any(|f| f
            .command
            .as_deref()
            .is_some_and(|c| c.contains("endpointslices"))),
        "{:#?}",
        r.roots[0].fix
    );
}

/// The kube-dns Service was deleted: nothing answers on 10.43.0.10.
#[test]
fn dns_failures_fold_under_a_missing_kube_dns_service() {
    let mut c = Cluster::healthy();
    c.extra.push(kube::service(
        "kube-system",
        "metrics-server",
        "10.43.77.1",
        &[("k8s-app", "metrics-server")],
    ));
    dns_dependents(&mut c);
    let r = dns_run(&c, |objects| {
        objects.retain(|o| {
            !(matches!(o["kind"].as_str(), Some("Service" | "EndpointSlice"))
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kube-dns")))
        })
    });
    assert_one_dns_root(
        &r,
        Cause::ComponentDown {
            component: "CoreDNS".into(),
        },
        "Service kube-system/kube-dns does not exist",
    );
    assert!(
        r.roots[0].fix.iter().any(|f| f
            .command
            .as_deref()
            .is_some_and(|c| c.contains("coredns.yaml"))),
        "{:#?}",
        r.roots[0].fix
    );
}

/// A Flux controller crash-looping on DNS is DNS's consequence even with
/// another root in flux-system (a controller failing on its own).
#[test]
fn a_controller_crashing_on_dns_is_a_consequence_beside_other_roots() {
    let mut c = Cluster::healthy();
    c.coredns_ready = false;
    c.pod(coredns(State::CrashLoop {
        exit: 1,
        message: "plugin/errors: /etc/coredns/Corefile:4 - Error during parsing: Unknown directive 'forwad'".into(),
        restarts: 9,
    }));
    c.pod(
        PodB::deployment("flux-system", "helm-controller", "5d8f7c9b6", "h2k4p", "node2", "ghcr.io/fluxcd/helm-controller:v1.1.0")
            .state(State::CrashLoop {
                exit: 1,
                message: "unable to start manager: Get \"https://10.43.0.1:443/api\": dial tcp: lookup kubernetes.default.svc on 10.43.0.10:53: read udp 10.42.1.31:46213->10.43.0.10:53: i/o timeout".into(),
                restarts: 14,
            }),
    );
    c.pod(
        PodB::deployment(
            "flux-system",
            "notification-controller",
            "7c9d8b6f5",
            "n3m5q",
            "node3",
            "ghcr.io/fluxcd/notification-controller:v1.4.0",
        )
        .state(State::CrashLoop {
            exit: 2,
            message: "flag provided but not defined: -events-addr-typo".into(),
            restarts: 14,
        }),
    );
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::CrashLoop, Cause::CrashLoop],
        "{:#?}",
        r.roots
    );
    let (dns, own): (Vec<_>, Vec<_>) = r
        .roots
        .iter()
        .partition(|x| x.title.contains("kube-system/coredns"));
    assert_eq!((dns.len(), own.len()), (1, 1), "{:#?}", r.roots);
    assert!(
        own[0].title.contains("notification-controller"),
        "{}",
        own[0].title
    );
    let t = titles(
        &r,
        r.roots
            .iter()
            .position(|x| x.title.contains("coredns"))
            .expect("dns root"),
    );
    assert!(
        t.iter()
            .any(|x| x.starts_with("Deployment flux-system/helm-controller")),
        "{t:#?}"
    );
}

/// A healthy cluster with one transient DNS failure behind it (an event
/// on a pod that is Ready again, on a Kustomization Ready again): no root.
#[test]
fn a_transient_dns_event_in_a_healthy_cluster_is_no_root() {
    let mut c = Cluster::healthy();
    c.warn(
        ("Pod", "apps", "shop-6d7f8c9b5-shop1"),
        "Unhealthy",
        "Readiness probe failed: Get \"http://10.42.0.9:8080/readyz\": dial tcp: lookup redis.apps.svc.cluster.local on 10.43.0.10:53: read udp 10.42.0.9:41234->10.43.0.10:53: i/o timeout",
        1,
        "node1",
    );
    c.extra.push(kube::flux(
        "Kustomization",
        "flux-system",
        "apps",
        true,
        "ReconciliationSucceeded",
        "Applied revision: main@sha1:5f2c",
        serde_json::json!({}),
    ));
    c.warn(
        ("Kustomization", "flux-system", "apps"),
        "ReconciliationFailed",
        "dial tcp: lookup source-controller.flux-system.svc.cluster.local on 10.43.0.10:53: no such host",
        1,
        "",
    );
    let r = run(&c);
    assert_eq!(r.verdict, Verdict::Healthy, "{:#?}", r.roots);
    assert!(r.roots.is_empty());
}

/// A sandbox error no rule knows, on three pods of one node and on one pod
/// of another with a different text: one root per node and text, never one
/// per pod, each with the error's own words.
#[test]
fn an_unknown_cni_error_is_one_root_per_node_and_text() {
    let mut c = Cluster::healthy();
    for (i, node, id, text) in [
        (
            0,
            "node2",
            "4f1c9a2e4f1c9a2e4f1c",
            "lease 9a2e4f1c9a2e4f1c9a2e rejected by acme-ipam",
        ),
        (
            1,
            "node2",
            "77aa0c1d77aa0c1d77aa",
            "lease 0c1d77aa0c1d77aa0c1d rejected by acme-ipam",
        ),
        (
            2,
            "node2",
            "5b5b5b5b5b5b5b5b5b5b",
            "lease 1e1e1e1e1e1e1e1e1e1e rejected by acme-ipam",
        ),
        (
            3,
            "node3",
            "9c9c9c9c9c9c9c9c9c9c",
            "acme-cni: bridge acme0 is down",
        ),
    ] {
        let p = creating("apps", &format!("app{i}"), &format!("u{i}"), node);
        sandbox_event(
            &mut c,
            "apps",
            &p.name.clone(),
            node,
            &format!(
                "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{id}\": plugin type=\"acme\" failed (add): {text}"
            ),
            4,
        );
        c.pod(p);
    }
    let r = run(&c);
    assert_eq!(r.roots.len(), 2, "{:#?}", r.roots);
    let by_node = |n: &str| r.roots.iter().find(|x| x.subjects == [n]).unwrap();
    assert_eq!(by_node("node2").blast_radius.pods, 3);
    assert_eq!(
        by_node("node2").cause,
        Cause::Cni {
            cni: Sandbox::Other {
                message: "plugin type=\"acme\" failed (add): lease … rejected by acme-ipam".into()
            }
        }
    );
    assert!(
        by_node("node3").title.contains("acme0 is down"),
        "{}",
        by_node("node3").title
    );
}

/// Cilium's agent crash-loops on a node: it is the first domino, the
/// node's failing sandboxes (in Cilium's words) are its consequence, and
/// the fix names Cilium's own status command.
#[test]
fn a_crashing_cilium_agent_is_the_first_domino() {
    let mut c = Cluster::healthy();
    c.pod(
        PodB::daemonset("kube-system", "cilium", "x7k2q", "node2", "quay.io/cilium/cilium:v1.16.5")
            .label("k8s-app", "cilium")
            .host_network()
            .state(State::CrashLoop {
                exit: 1,
                message: "failed to start: daemon creation failed: error while initializing daemon: failed while reinitializing datapath".into(),
                restarts: 7,
            }),
    );
    for i in 0..2 {
        let p = creating("shop", "web", &format!("c{i}"), "node2");
        sandbox_event(
            &mut c,
            "shop",
            &p.name.clone(),
            "node2",
            "plugin type=\"cilium-cni\" failed (add): unable to connect to Cilium daemon: failed to create cilium agent client after 30.000000 seconds timeout: Get \"http:///var/run/cilium/cilium.sock/v1/config\": dial unix /var/run/cilium/cilium.sock: connect: no such file or directory\nIs the agent running?",
            9,
        );
        c.pod(p);
    }
    let r = run(&c);
    assert_eq!(causes(&r), vec![Cause::CrashLoop], "{:#?}", r.roots);
    assert!(
        r.roots[0].title.contains("kube-system/cilium"),
        "{}",
        r.roots[0].title
    );
    assert!(
        titles(&r, 0)
            .iter()
            .any(|t| t.starts_with("node node2: Cilium: the agent does not answer")),
        "{:#?}",
        titles(&r, 0)
    );

    // Without the agent's pod in the snapshot, the node's failure is the
    // root, and its fix restarts the agent the way Cilium is installed.
    c.pods.retain(|p| !p.name.starts_with("cilium-"));
    let r = run(&c);
    assert_eq!(
        causes(&r),
        vec![Cause::Cni {
            cni: Sandbox::Cilium(rebootguard_diagnose::cni::cilium::Failure::AgentUnreachable)
        }],
        "{:#?}",
        r.roots
    );
}

/// kubernetes docs, "Node-pressure Eviction": a node low on ephemeral
/// storage reports `DiskPressure`, its kubelet evicts pods (`Failed`,
/// reason `Evicted`, "The node was low on resource: ephemeral-storage") and
/// the scheduler keeps replacements off it (its taint). One root, the
/// node's pressure, with the evicted pods and the unschedulable
/// replacement beneath it; after the pressure clears, the evicted pods are
/// history, noted, not a root.
#[test]
fn evictions_fold_under_the_nodes_pressure() {
    let mut c = Cluster::healthy();
    for i in 0..2 {
        c.pod(
            PodB::deployment(
                "shop",
                "cache",
                "5d6f7b8c9",
                &format!("e{i}"),
                "node2",
                "redis:7",
            )
            .state(State::Shutdown),
        );
    }
    c.pod(
        PodB::deployment("shop", "cache", "5d6f7b8c9", "p0", "", "redis:7").state(
            State::Unschedulable {
                message: "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }, 2 Insufficient memory. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".into(),
            },
        ),
    );
    c.warn(
        ("Node", "", "node2"),
        "EvictionThresholdMet",
        "Attempting to reclaim ephemeral-storage",
        6,
        "",
    );
    let mut objects = c.objects();
    for o in objects.iter_mut().filter(|o| {
        o["kind"] == "Pod"
            && o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-e0") || n.ends_with("-e1"))
    }) {
        o["status"]["reason"] = "Evicted".into();
        o["status"]["message"] = "The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: 812Mi. Container redis was using 3Gi, request is 0, has larger consumption of ephemeral-storage. ".into();
    }
    let with_pressure = |objects: &[serde_json::Value]| {
        let mut objects = objects.to_vec();
        let n = objects
            .iter_mut()
            .find(|o| o["kind"] == "Node" && o["metadata"]["name"] == "node2")
            .expect("node2");
        let conditions = n["status"]["conditions"]
            .as_array_mut()
            .expect("conditions");
        conditions.retain(|c| c["type"] != "DiskPressure");
        conditions.push(serde_json::json!({
            "type": "DiskPressure", "status": "True", "reason": "KubeletHasDiskPressure",
            "message": "kubelet has disk pressure",
            "lastHeartbeatTime": "2026-03-14T11:59:40Z", "lastTransitionTime": "2026-03-14T11:20:00Z",
        }));
        objects
    };
    let r = common::analyse(&with_pressure(&objects), NOW);
    assert_eq!(
        causes(&r),
        vec![Cause::NodePressure {
            condition: "DiskPressure".into()
        }],
        "{:#?}",
        r.roots
    );
    let root = &r.roots[0];
    assert_eq!(root.subjects, vec!["node2"]);
    assert_eq!(root.id, "nodePressure/DiskPressure");
    assert_eq!(root.blast_radius.pods, 3);
    assert!(
        root.evidence
            .iter()
            .any(|e| e.reason == "EvictionThresholdMet"),
        "{:#?}",
        root.evidence
    );
    assert!(
        titles(&r, 0)
            .iter()
            .any(|t| t.contains("low on resource: ephemeral-storage")),
        "{:#?}",
        titles(&r, 0)
    );
    assert!(root.fix.iter().any(|f| {
        f.command
            .as_deref()
            .is_some_and(|c| c.contains("crictl rmi --prune"))
    }));

    // The pressure cleared and the replacement runs: the evicted pods are history.
    objects.retain(|o| {
        o["metadata"]["name"]
            .as_str()
            .is_none_or(|n| !n.ends_with("-p0"))
    });
    let r = common::analyse(&objects, NOW);
    assert!(r.roots.is_empty(), "{:#?}", r.roots);
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("node node2: 2 pod(s) evicted")),
        "{:#?}",
        r.notes
    );
}

/// Flux's chains (fluxcd/helm-controller, kustomize-controller): a
/// HelmRepository whose index cannot be fetched leaves its HelmChart
/// without an artifact and the HelmRelease on it failing; a GitRepository
/// refused by the Git server fails the Kustomization on it and the one that
/// `dependsOn` that. Two roots, the sources, each with its chain beneath;
/// a release failing on its own despite a failing source stays its own.
#[test]
fn flux_chains_fold_under_the_failing_source() {
    let mut c = Cluster::healthy();
    let f = |kind, ns, name, reason, message, spec| {
        kube::flux(kind, ns, name, false, reason, message, spec)
    };
    c.extra.push(f(
        "HelmRepository",
        "flux-system",
        "bitnami",
        "FetchFailed",
        "failed to fetch Helm repository index: failed to cache index to temporary file: failed to fetch https://charts.example.com/index.yaml : 404 Not Found",
        serde_json::json!({"url": "https://charts.example.com", "interval": "1h"}),
    ));
    c.extra.push(f(
        "HelmChart",
        "flux-system",
        "apps-redis",
        "ArtifactFailed",
        "HelmRepository 'flux-system/bitnami' is not ready",
        serde_json::json!({"chart": "redis", "sourceRef": {"kind": "HelmRepository", "name": "bitnami"}}),
    ));
    let mut release = f(
        "HelmRelease",
        "apps",
        "redis",
        "ArtifactFailed",
        "HelmChart 'flux-system/apps-redis' is not ready: latest generation of object has not been reconciled",
        serde_json::json!({"chart": {"spec": {"chart": "redis", "sourceRef": {"kind": "HelmRepository", "name": "bitnami", "namespace": "flux-system"}}}}),
    );
    release["status"]["helmChart"] = "flux-system/apps-redis".into();
    c.extra.push(release);
    c.extra.push(f(
        "HelmRelease",
        "apps",
        "queue",
        "InstallFailed",
        "Helm install failed for release apps/queue with chart rabbitmq@14.0.0: context deadline exceeded",
        serde_json::json!({"chart": {"spec": {"chart": "rabbitmq", "sourceRef": {"kind": "HelmRepository", "name": "bitnami", "namespace": "flux-system"}}}}),
    ));
    c.extra.push(f(
        "GitRepository",
        "flux-system",
        "infra",
        "GitOperationFailed",
        "failed to checkout and determine revision: unable to clone 'ssh://git@git.example.com/ops/infra': ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain",
        serde_json::json!({"url": "ssh://git@git.example.com/ops/infra"}),
    ));
    c.extra.push(f(
        "Kustomization",
        "flux-system",
        "infra-controllers",
        "ArtifactFailed",
        "Source artifact not found, retrying in 30s",
        serde_json::json!({"sourceRef": {"kind": "GitRepository", "name": "infra"}, "path": "./controllers"}),
    ));
    c.extra.push(f(
        "Kustomization",
        "flux-system",
        "infra-configs",
        "DependencyNotReady",
        "dependency 'flux-system/infra-controllers' is not ready",
        serde_json::json!({"sourceRef": {"kind": "GitRepository", "name": "infra"}, "dependsOn": [{"name": "infra-controllers"}]}),
    ));
    let r = run(&c);
    let subjects: Vec<&str> = r.roots.iter().map(|x| x.subjects[0].as_str()).collect();
    assert_eq!(r.roots.len(), 3, "{subjects:?}");
    for s in [
        "HelmRepository flux-system/bitnami",
        "GitRepository flux-system/infra",
        "HelmRelease apps/queue",
    ] {
        assert!(subjects.contains(&s), "{s} not in {subjects:?}");
    }
    let root = |s: &str| r.roots.iter().position(|x| x.subjects[0] == s).unwrap();
    let helm = titles(&r, root("HelmRepository flux-system/bitnami"));
    assert!(
        helm.iter()
            .any(|t| t.contains("HelmChart flux-system/apps-redis")),
        "{helm:#?}"
    );
    assert!(
        helm.iter().any(|t| t.contains("HelmRelease apps/redis")),
        "{helm:#?}"
    );
    let git = titles(&r, root("GitRepository flux-system/infra"));
    assert!(
        git.iter()
            .any(|t| t.contains("Kustomization flux-system/infra-controllers")),
        "{git:#?}"
    );
    assert!(
        git.iter()
            .any(|t| t.contains("Kustomization flux-system/infra-configs")),
        "{git:#?}"
    );
    assert!(
        r.roots[root("GitRepository flux-system/infra")]
            .title
            .contains("unable to authenticate")
    );
}

/// An Argo CD Application (argoproj.io/v1alpha1) as Argo CD reports it.
fn argo_app(name: &str, status: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "uid": kube::uid(name)},
        "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
                 "source": {"repoURL": "https://git.example.com/ops/shop.git", "path": "deploy", "targetRevision": "HEAD"}},
        "status": status,
    })
}

/// Argo CD (argoproj/argo-cd, `ComparisonError` from the repo-server): an
/// Application whose repository cannot be resolved while CoreDNS is down
/// folds under CoreDNS; one degraded by a workload that cannot pull its
/// image folds under that workload; one whose repository does not exist is
/// its own root, named with Argo CD's words and fixed with its CLI.
#[test]
fn argo_cd_applications_fold_under_what_breaks_them() {
    let mut c = Cluster::healthy();
    c.coredns_ready = false;
    c.pod(coredns(State::CrashLoop {
        exit: 1,
        message: "[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone \".\""
            .into(),
        restarts: 9,
    }));
    c.extra.push(argo_app("infra", serde_json::json!({
        "sync": {"status": "Unknown"}, "health": {"status": "Healthy"},
        "conditions": [{"type": "ComparisonError", "lastTransitionTime": "2026-03-14T11:40:00Z",
            "message": "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = failed to list refs: Get \"https://git.example.com/ops/infra.git/info/refs?service=git-upload-pack\": dial tcp: lookup git.example.com on 10.43.0.10:53: read udp 10.42.0.12:40122->10.43.0.10:53: i/o timeout"}],
    })));
    c.pod(
        PodB::deployment(
            "shop",
            "web",
            "7b9c5d6f8",
            "w1",
            "node2",
            "registry.example.com/shop/web:2.1",
        )
        .state(State::ImagePull {
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling image \"registry.example.com/shop/web:2.1\"".into(),
        }),
    );
    c.extra.push(argo_app("shop", serde_json::json!({
        "sync": {"status": "Synced"}, "health": {"status": "Degraded"},
        "resources": [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web",
                       "status": "Synced", "health": {"status": "Degraded", "message": "Deployment \"web\" exceeded its progress deadline"}}],
    })));
    c.extra.push(argo_app("billing", serde_json::json!({
        "sync": {"status": "Unknown"}, "health": {"status": "Healthy"},
        "conditions": [{"type": "ComparisonError", "lastTransitionTime": "2026-03-14T11:10:00Z",
            "message": "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = NotFound desc = manifest generation error (cached): failed to get git client for repo https://git.example.com/ops/billing.git: repository not found"}],
    })));
    let r = run(&c);
    let root = |f: &dyn Fn(&rebootguard_diagnose::report::Root) -> bool| {
        r.roots
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("{:#?}", r.roots))
    };
    assert_eq!(r.roots.len(), 3, "{:#?}", r.roots);
    let dns = root(&|x| x.title.contains("coredns"));
    assert!(
        titles(&r, dns)
            .iter()
            .any(|t| t.contains("Application argocd/infra")),
        "{:#?}",
        titles(&r, dns)
    );
    let web = root(&|x| x.cause == Cause::ImagePull);
    assert!(
        titles(&r, web)
            .iter()
            .any(|t| t.contains("Application argocd/shop")),
        "{:#?}",
        titles(&r, web)
    );
    let billing = root(&|x| x.cause == Cause::ArgoApplicationNotHealthy);
    let b = &r.roots[billing];
    assert_eq!(b.subjects, vec!["Application argocd/billing"]);
    assert!(
        b.title.contains("ComparisonError") && b.title.contains("repository not found"),
        "{}",
        b.title
    );
    assert!(
        b.fix.iter().any(|f| f
            .command
            .as_deref()
            .is_some_and(|c| c.starts_with("argocd app get billing"))),
        "{:#?}",
        b.fix
    );
}
