//! The DaemonSet deployment (`deploy/kubernetes/agent`, with the agent's
//! identity and RBAC from `deploy/kubernetes/rbac`), the credentials for
//! agents run by systemd (`deploy/kubernetes/node-credentials`) and the
//! example monitoring (`deploy/kubernetes/prometheus`): rendered by the real
//! kubectl's kustomize, compared with a committed rendering, applied to
//! kubesim and read back; the RBAC is exactly the API calls the agent
//! makes; the config, arguments, Lease, metrics and condition they name are
//! the ones the agent's code uses. The controller's Deployment
//! (`deploy/kubernetes/controller`) and the operator's roles
//! (`deploy/kubernetes/reboot-operator`) the same way: their RBAC is what
//! the real controller, run against kubesim, asks for.
//!
//! Least privilege, enforced: the real agent and controller run against
//! kubesim enforcing RBAC (`Options::rbac`) with their ServiceAccounts'
//! tokens and the bases applied, and work; with one permission revoked they
//! fail saying which.
//!
//! Needs kubectl on PATH (it needs no network for a local kustomization);
//! skipped with a printed reason otherwise, unless `KUBESIM_REQUIRE_KUBECTL`
//! is set. After an intended change to the manifests, refresh the rendering
//! with `REBOOTGUARD_UPDATE_FIXTURES=1 cargo test -p rebootguard --test kubernetes`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kubesim::KubeSim;
use serde_json::{Value, json};

mod common;
#[path = "common/manifests.rs"]
mod manifests;
use manifests::{apply, documents, have_kubectl, kustomize, repo};

const AGENT_BASE: &str = "deploy/kubernetes/agent";
const PROMETHEUS: &str = "deploy/kubernetes/prometheus";
const NODE_CREDENTIALS: &str = "deploy/kubernetes/node-credentials";
const GOLDEN: &str = "crates/cli/tests/golden/kubernetes-agent.yaml";

fn key(object: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        s(&object["kind"]),
        s(&object["metadata"]["namespace"]),
        s(&object["metadata"]["name"]),
    )
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A role's rules as `(apiGroup, resource, resourceName or "*", verb)`.
fn grants(role: &Value) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let names = match strings(&rule["resourceNames"]) {
            n if n.is_empty() => vec!["*".to_owned()],
            n => n,
        };
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for name in &names {
                    for verb in strings(&rule["verbs"]) {
                        out.insert((group.clone(), resource.clone(), name.clone(), verb));
                    }
                }
            }
        }
    }
    out
}

fn expect(grants: &[(&str, &str, &str, &[&str])]) -> BTreeSet<(String, String, String, String)> {
    grants
        .iter()
        .flat_map(|(group, resource, name, verbs)| {
            verbs.iter().map(move |verb| {
                (
                    (*group).to_owned(),
                    (*resource).to_owned(),
                    (*name).to_owned(),
                    (*verb).to_owned(),
                )
            })
        })
        .collect()
}

/// The agent's config as resolved from the base's ConfigMap and the
/// DaemonSet's flags, through the agent's own parsers.
fn agent_config(config_toml: &str) -> rebootguard_agent::config::Config {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_toml).expect("write");
    let file = rebootguard_node::settings::File::load(&path).expect("the node settings parse");
    let table = file.agent.expect("an [agent] table");
    let agent =
        rebootguard_agent::config::File::from_table(&table).expect("the [agent] table parses");
    rebootguard_agent::config::resolve(
        agent,
        &rebootguard_agent::config::Flags {
            taint: Some(true),
            listen: Some("192.168.50.11:9478".into()),
            dry_run: false,
        },
    )
    .expect("the agent accepts it")
}

/// Every check of the rendered (or applied and read back) base.
fn check_base(objects: &[Value]) {
    let ds = find(objects, "DaemonSet", "rebootguard-agent");
    let namespace = ds["metadata"]["namespace"].as_str().expect("namespace");
    assert_eq!(
        find(objects, "Namespace", namespace)["metadata"]["name"],
        namespace
    );
    let pod = &ds["spec"]["template"]["spec"];
    let account = pod["serviceAccountName"]
        .as_str()
        .expect("serviceAccountName");
    find(objects, "ServiceAccount", account);
    assert_eq!(pod["automountServiceAccountToken"], true);

    // RBAC: exactly the calls the agent makes (docs/deploy.md, "Permissions").
    let cluster = find(objects, "ClusterRole", "rebootguard-agent");
    assert_eq!(
        grants(cluster),
        expect(&[
            // api::watch (every Node), taint::set and the restore (get),
            // taint::set (patch spec.taints).
            ("", "nodes", "*", &["get", "list", "watch", "patch"]),
            // condition::set: strategic merge patch of status.conditions.
            ("", "nodes/status", "*", &["patch"]),
            // api::watch: pods with spec.nodeName=<node>.
            ("", "pods", "*", &["list", "watch"]),
            // api::watch: core/v1 events with reason=FailedCreatePodSandBox.
            ("", "events", "*", &["list", "watch"]),
        ]),
        "ClusterRole"
    );
    // The restart Lease, by the name and in the namespace the agent uses
    // unless config.toml says otherwise (and the base's does not).
    let lease = rebootguard_agent::config::resolve(
        rebootguard_agent::config::File::default(),
        &rebootguard_agent::config::Flags::default(),
    )
    .expect("defaults")
    .lease;
    let lease_role = find(objects, "Role", "rebootguard-agent-lease");
    assert_eq!(
        lease_role["metadata"]["namespace"],
        lease.namespace.as_str()
    );
    assert_eq!(
        grants(lease_role),
        expect(&[(
            "coordination.k8s.io",
            "leases",
            &lease.name,
            // lease::Lock reads (get) and writes (update, a PUT) it; it is
            // shipped in the base, so no create (which RBAC cannot limit
            // to a name).
            &["get", "update"],
        )]),
        "Lease Role"
    );
    let shipped = find(objects, "Lease", &lease.name);
    assert_eq!(shipped["metadata"]["namespace"], lease.namespace.as_str());
    assert!(shipped["spec"]["holderIdentity"].is_null(), "shipped free");
    // kube-runtime's Recorder: events.k8s.io in `default` for a Node.
    let events_role = find(objects, "Role", "rebootguard-agent-events");
    assert_eq!(events_role["metadata"]["namespace"], "default");
    assert_eq!(
        grants(events_role),
        expect(&[("events.k8s.io", "events", "*", &["create", "patch"])]),
        "events Role"
    );
    let roles = [cluster, lease_role, events_role];
    assert_eq!(
        objects
            .iter()
            .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
            .count(),
        roles.len(),
        "no other roles"
    );
    for role in roles {
        for (group, resource, _, verb) in grants(role) {
            assert!(
                ![&group, &resource, &verb].contains(&&"*".to_owned()),
                "no wildcards"
            );
            assert_ne!(resource, "secrets");
        }
    }
    // Each role bound to the agent's service account, and to nothing else.
    for role in roles {
        let (kind, ns, name) = key(role);
        let binding_kind = format!("{kind}Binding");
        let binding = find(objects, &binding_kind, &name);
        assert_eq!(binding["metadata"]["namespace"].as_str().unwrap_or(""), ns);
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name})
        );
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": account, "namespace": namespace}])
        );
    }

    // The pod: the node's network namespace (not its PID namespace: k3s
    // is restarted over the host's D-Bus), everywhere, first.
    assert_eq!(pod["hostNetwork"], true);
    assert_ne!(pod["hostPID"], true, "no hostPID");
    assert_ne!(pod["hostIPC"], true, "no hostIPC");
    assert_eq!(
        pod["dnsPolicy"], "Default",
        "webhooks resolve without CoreDNS"
    );
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["tolerations"], json!([{"operator": "Exists"}]));
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let agent = &containers[0];
    assert_eq!(
        agent["image"],
        format!(
            "ghcr.io/rebootguard/rebootguard:{}",
            env!("CARGO_PKG_VERSION")
        ),
        "the image tag follows the workspace version"
    );
    assert_eq!(agent["securityContext"]["privileged"], true);
    let args = strings(&agent["args"]);
    assert_eq!(args[0], "agent");
    for arg in ["--root=/host", "--taint", "--listen=$(HOST_IP):9478"] {
        assert!(args.iter().any(|a| a == arg), "{arg} in {args:?}");
    }
    let env = |name: &str| {
        agent["env"]
            .as_array()
            .and_then(|e| e.iter().find(|v| v["name"] == name))
            .map(|v| v["valueFrom"]["fieldRef"]["fieldPath"].clone())
            .unwrap_or_else(|| panic!("env {name}"))
    };
    assert_eq!(env("REBOOTGUARD_NODE_NAME"), "spec.nodeName");
    assert_eq!(env("HOST_IP"), "status.hostIP");
    assert_eq!(
        agent["ports"],
        json!([{"name": "metrics", "containerPort": 9478, "protocol": "TCP"}])
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            agent[probe]["httpGet"],
            json!({"path": "/healthz", "port": "metrics"}),
            "{probe}"
        );
    }
    let resources = &agent["resources"];
    assert!(resources["requests"]["cpu"].is_string());
    assert!(resources["requests"]["memory"].is_string());
    assert!(resources["limits"]["memory"].is_string());

    // Volumes: the host's / at /host (host-to-container propagation, never
    // bidirectional), the config at the --config path, optional secrets.
    let mounts = agent["volumeMounts"].as_array().expect("volumeMounts");
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == name))
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    let mount_at = |path: &str| {
        mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("a mount at {path}"))
    };
    let host = mount_at("/host");
    assert_eq!(host["mountPropagation"], "HostToContainer");
    assert_ne!(
        host["readOnly"], true,
        "subnet.env, backups and IPAM leases are written"
    );
    assert_eq!(
        volume(host["name"].as_str().expect("name"))["hostPath"]["path"],
        "/"
    );
    let config_arg = args
        .iter()
        .find_map(|a| a.strip_prefix("--config="))
        .expect("--config");
    let config_dir = Path::new(config_arg).parent().expect("a directory");
    let config_mount = mount_at(config_dir.to_str().expect("utf-8"));
    let config_map = &volume(config_mount["name"].as_str().expect("name"))["configMap"];
    let config_map = find(
        objects,
        "ConfigMap",
        config_map["name"].as_str().expect("name"),
    );
    let file_name = Path::new(config_arg).file_name().expect("file").to_str();
    let config_toml = config_map["data"][file_name.expect("utf-8")]
        .as_str()
        .expect("the config file in the ConfigMap");
    let config = agent_config(config_toml);
    assert!(config.policy.taint);
    // k3s is restarted by the host's systemd over the host's system bus,
    // whose socket is under the host's / mounted at --root.
    let rebootguard_agent::config::Restart::Systemd { unit, bus } = &config.restart else {
        panic!("systemd over D-Bus, not {:?}", config.restart)
    };
    assert_eq!(unit, &None, "the unit follows what the host has installed");
    let root = args
        .iter()
        .find_map(|a| a.strip_prefix("--root="))
        .expect("--root");
    assert_eq!(host["mountPath"], root);
    let address = rebootguard_agent::systemd::bus_address(bus.as_deref(), Path::new(root))
        .expect("a bus address");
    assert_eq!(
        address.to_string(),
        "unix:path=/host/run/dbus/system_bus_socket"
    );
    assert_eq!(config.lease, lease, "the Lease the RBAC names");
    let alerts = mounts
        .iter()
        .find(|m| m["name"] == "alerts")
        .expect("the alerts mount");
    assert_eq!(alerts["readOnly"], true);
    assert_eq!(volume("alerts")["secret"]["optional"], true);
}

/// `base` rendered as the committed `golden` says (refreshed with
/// `REBOOTGUARD_UPDATE_FIXTURES=1`); the rendering.
fn renders_as_committed(base: &str, golden: &str) -> String {
    let rendered = kustomize(base);
    let path = repo().join(golden);
    if std::env::var_os("REBOOTGUARD_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &rendered).expect("write golden");
    }
    let committed = std::fs::read_to_string(&path).expect("the committed rendering");
    // Compared as objects, not text: kustomize versions differ in layout.
    let by_key = |text: &str| {
        let mut docs: Vec<(_, Value)> = documents(text).into_iter().map(|d| (key(&d), d)).collect();
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        docs
    };
    let (now, then) = (by_key(&rendered), by_key(&committed));
    let names = |d: &[((String, String, String), Value)]| -> Vec<_> {
        d.iter().map(|(k, _)| k.clone()).collect()
    };
    assert_eq!(
        names(&now),
        names(&then),
        "objects differ from {golden}; if intended, rerun with REBOOTGUARD_UPDATE_FIXTURES=1"
    );
    for ((k, a), (_, b)) in now.iter().zip(&then) {
        assert_eq!(
            a, b,
            "{k:?} differs from {golden}; if intended, rerun with REBOOTGUARD_UPDATE_FIXTURES=1"
        );
    }
    rendered
}

#[test]
fn agent_base_renders_as_committed() {
    if !have_kubectl("agent_base_renders_as_committed") {
        return;
    }
    let rendered = renders_as_committed(AGENT_BASE, GOLDEN);
    check_base(&documents(&rendered));
}

/// `kubectl apply -k` of the agent base to kubesim; what kubectl said.
async fn apply_base(sim: &KubeSim, cache: &Path) -> String {
    apply(sim, cache, AGENT_BASE).await
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_base_applies_to_kubesim_and_grants_exactly_the_agents_calls() {
    if !have_kubectl("agent_base_applies_to_kubesim_and_grants_exactly_the_agents_calls") {
        return;
    }
    let sim = KubeSim::start().await.expect("kubesim");
    let cache = tempfile::tempdir().expect("cache dir");
    let apply = async || apply_base(&sim, cache.path()).await;
    let rendered = documents(&kustomize(AGENT_BASE));
    let first = apply().await;
    assert_eq!(
        first.lines().filter(|l| l.ends_with(" created")).count(),
        rendered.len(),
        "{first}"
    );
    let second = apply().await;
    assert_eq!(
        second.lines().filter(|l| l.ends_with(" unchanged")).count(),
        rendered.len(),
        "applying again changes nothing:\n{second}"
    );

    // Read every object back from the server and check what it stores.
    let stored: Vec<Value> = rendered
        .iter()
        .map(|o| {
            let (kind, ns, name) = key(o);
            let api_version = o["apiVersion"].as_str().expect("apiVersion");
            sim.get(api_version, &kind, &ns, &name)
                .unwrap_or_else(|| panic!("{kind} {ns}/{name} was not stored"))
        })
        .collect();
    check_base(&stored);
}

#[tokio::test]
async fn events_on_a_node_land_where_the_events_role_is() {
    // kube-runtime's Recorder, as the agent uses it, for a cluster-scoped
    // Node: the Event is events.k8s.io/v1, in `default`.
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let sim = KubeSim::start().await.expect("kubesim");
    let recorder = Recorder::new(
        sim.client().expect("client"),
        Reporter {
            controller: "rebootguard-agent".into(),
            instance: Some("boromir".into()),
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "SubnetEnvMissing".into(),
        note: Some("test".into()),
        action: "Remediate".into(),
        secondary: None,
    };
    let node =
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node", "name": "boromir"}))
            .expect("an object reference");
    recorder.publish(&event, &node).await.expect("published");
    let events = sim.list("events.k8s.io/v1", "Event", None);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["metadata"]["namespace"], "default");
    let rendered = std::fs::read_to_string(repo().join(GOLDEN)).expect("rendering");
    let role = find(&documents(&rendered), "Role", "rebootguard-agent-events").clone();
    assert_eq!(
        role["metadata"]["namespace"],
        events[0]["metadata"]["namespace"]
    );
}

#[test]
fn daemonset_arguments_are_the_binarys() {
    // Every flag the DaemonSet passes exists (clap refuses an unknown one
    // before it gets to --help), and the node name comes from the env.
    let rendered = std::fs::read_to_string(repo().join(GOLDEN)).expect("rendering");
    let objects = documents(&rendered);
    let ds = find(&objects, "DaemonSet", "rebootguard-agent");
    let args = strings(&ds["spec"]["template"]["spec"]["containers"][0]["args"]);
    let out = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(&args)
        .arg("--help")
        .output()
        .expect("run rebootguard");
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(help.contains("[env: REBOOTGUARD_NODE_NAME"), "{help}");
    let typo = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(["agent", "--tain", "--help"])
        .output()
        .expect("run rebootguard");
    assert_eq!(typo.status.code(), Some(2), "the check has teeth");
}

#[test]
fn the_pod_restarts_the_unit_k3s_runs_as() {
    // Servers have k3s.service, agents only k3s-agent.service: the base's
    // config names no unit, and the agent picks it from the host's unit
    // files under --root.
    let rendered = std::fs::read_to_string(repo().join(GOLDEN)).expect("rendering");
    let objects = documents(&rendered);
    let config_map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .expect("the ConfigMap");
    let config = agent_config(config_map["data"]["config.toml"].as_str().expect("config"));
    assert!(
        matches!(
            config.restart,
            rebootguard_agent::config::Restart::Systemd { unit: None, .. }
        ),
        "{:?}",
        config.restart
    );
    for (installed, picked) in [
        (&[][..], "k3s.service"),
        (&["k3s.service"][..], "k3s.service"),
        (&["k3s-agent.service"][..], "k3s-agent.service"),
        (&["k3s.service", "k3s-agent.service"][..], "k3s.service"),
    ] {
        let host = tempfile::tempdir().expect("tempdir");
        let units = host.path().join("etc/systemd/system");
        std::fs::create_dir_all(&units).expect("mkdir");
        for unit in installed {
            std::fs::write(units.join(unit), "[Service]\n").expect("write");
        }
        assert_eq!(
            rebootguard_agent::remedy::default_unit(host.path()),
            picked,
            "{installed:?}"
        );
    }
}

#[test]
fn monitoring_names_what_the_agent_exports() {
    if !have_kubectl("monitoring_names_what_the_agent_exports") {
        return;
    }
    let objects = documents(&kustomize(PROMETHEUS));
    let base = documents(&std::fs::read_to_string(repo().join(GOLDEN)).expect("rendering"));
    let ds = find(&base, "DaemonSet", "rebootguard-agent");

    // The PodMonitor selects the agent's pods and their metrics port.
    let monitor = find(&objects, "PodMonitor", "rebootguard-agent");
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(&labels[k], v, "pod label {k}");
    }
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["port"], "metrics");
    assert_eq!(endpoint["path"], "/metrics");

    // Every rebootguard_* series a rule reads is one the agent exports.
    let metrics = rebootguard_agent::metrics::Metrics::new();
    metrics.remediation("restore", "failed");
    metrics.alert("failed");
    metrics.api_error("condition");
    let exported: BTreeSet<String> = metrics
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let rules = find(&objects, "PrometheusRule", "rebootguard");
    let exprs: Vec<String> = rules["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .map(|r| r["expr"].as_str().expect("expr").to_owned())
        .collect();
    let mut read = BTreeSet::new();
    for expr in &exprs {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("rebootguard_") {
                read.insert(word.to_owned());
            }
        }
    }
    for name in [
        "rebootguard_pod_network_ready",
        "rebootguard_remediation_exhausted",
        "rebootguard_remediations_total",
        "rebootguard_alerts_total",
        "rebootguard_api_errors_total",
    ] {
        assert!(read.contains(name), "a rule reads {name}");
    }
    for name in &read {
        assert!(
            exported.contains(name),
            "{name} is not exported: {exported:?}"
        );
    }
    // The condition kube-state-metrics exports is the agent's, and the
    // DaemonSet the rules count is the base's.
    let condition = format!("condition=\"{}\"", rebootguard_agent::machine::CONDITION);
    assert!(exprs.iter().any(|e| e.contains(&condition)));
    let ds_selector = format!(
        "namespace=\"{}\", daemonset=\"{}\"",
        ds["metadata"]["namespace"].as_str().expect("ns"),
        ds["metadata"]["name"].as_str().expect("name")
    );
    assert!(
        exprs.iter().any(|e| e.contains(&ds_selector)),
        "{ds_selector}"
    );
    // Rules carry a severity and say what to do.
    for group in rules["spec"]["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            assert!(rule["labels"]["severity"].is_string(), "{rule}");
            assert!(rule["annotations"]["summary"].is_string(), "{rule}");
            assert!(rule["annotations"]["description"].is_string(), "{rule}");
        }
    }
}

#[test]
fn node_credentials_are_the_agents_identity_and_a_token() {
    if !have_kubectl("node_credentials_are_the_agents_identity_and_a_token") {
        return;
    }
    let agent = documents(&kustomize(AGENT_BASE));
    let credentials = documents(&kustomize(NODE_CREDENTIALS));
    // Everything but the DaemonSet and its ConfigMap is the same object.
    let shared: Vec<&Value> = agent
        .iter()
        .filter(|o| o["kind"] != "DaemonSet" && o["kind"] != "ConfigMap")
        .collect();
    for object in &shared {
        let (kind, _, name) = key(object);
        assert_eq!(find(&credentials, &kind, &name), *object, "{kind} {name}");
    }
    assert_eq!(credentials.len(), shared.len() + 1, "and one token");
    let token = find(&credentials, "Secret", "rebootguard-agent-token");
    let ds = find(&agent, "DaemonSet", "rebootguard-agent");
    assert_eq!(token["type"], "kubernetes.io/service-account-token");
    assert_eq!(token["metadata"]["namespace"], ds["metadata"]["namespace"]);
    assert_eq!(
        token["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        ds["spec"]["template"]["spec"]["serviceAccountName"]
    );
}

/// Whether some rule of `roles` lets `verb` on a resource as kubesim counts
/// it (`pods`, `nodes/status`, `leases.coordination.k8s.io`).
fn granted(roles: &[&Value], verb: &str, counted: &str) -> bool {
    let (qualified, sub) = match counted.split_once('/') {
        Some((q, s)) => (q, Some(s)),
        None => (counted, None),
    };
    let (plural, group) = qualified.split_once('.').unwrap_or((qualified, ""));
    let resource = match sub {
        Some(sub) => format!("{plural}/{sub}"),
        None => plural.to_owned(),
    };
    roles.iter().any(|role| {
        grants(role)
            .iter()
            .any(|(g, r, _, v)| g == group && *r == resource && v == verb)
    })
}

/// SIGTERM to `child`, then its output; it must stop within 30 s.
async fn terminated(child: tokio::process::Child, what: &str) -> std::process::Output {
    if let Some(pid) = child.id() {
        // SAFETY: signalling a child this test started and still owns.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} stops on SIGTERM"))
        .expect("its output")
}

/// A request kubesim served: (user agent, verb, resource, count).
type Call = (String, String, String, u64);

/// The requests `sim` served to user agents starting with one of
/// `agents`: each granted by the roles `base` renders, those in `made`
/// among them, and no Lease created (the bases ship theirs).
fn granted_calls(sim: &KubeSim, base: &str, agents: &[&str], made: &[(&str, &str)]) -> Vec<Call> {
    let rendered = documents(&kustomize(base));
    let roles = roles(&rendered);
    let calls: Vec<Call> = sim
        .requests_by_agent()
        .into_iter()
        .filter(|(ua, ..)| agents.iter().any(|a| ua.starts_with(a)))
        .collect();
    for (ua, verb, resource, _) in &calls {
        assert!(
            granted(&roles, verb, resource),
            "{ua} made a call the RBAC of {base} does not grant: {verb} {resource}\n{calls:?}"
        );
    }
    for (verb, resource) in made {
        assert!(
            calls.iter().any(|(_, v, r, _)| v == verb && r == resource),
            "{agents:?} did {verb} {resource}: {calls:?}"
        );
    }
    assert!(
        !calls
            .iter()
            .any(|(_, v, r, _)| v == "create" && r == "leases.coordination.k8s.io"),
        "the shipped Leases are used, not created"
    );
    calls
}

/// kubesim enforcing the agent base's RBAC, with the base applied and two
/// flannel Nodes; the kubeconfig of the agent's ServiceAccount (the token
/// its pod would get) in `dir`.
async fn agent_cluster(dir: &Path) -> (KubeSim, std::path::PathBuf) {
    let sim = manifests::enforcing().await;
    apply_base(&sim, &dir.join("cache")).await;
    for (name, cidr, ip) in [
        ("boromir", "10.42.0.0/24", "192.168.50.11"),
        ("gimli", "10.42.1.0/24", "192.168.50.12"),
    ] {
        sim.create(&json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {
                "flannel.alpha.coreos.com/backend-type": "vxlan",
                "flannel.alpha.coreos.com/public-ip": ip,
                "flannel.alpha.coreos.com/backend-data": "{\"VNI\":1,\"VtepMAC\":\"6a:1f:0e:3b:9c:01\"}"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"nodeInfo": {"bootID": "3b9e7f2a-1c44-4d0e-8f6b-5a2c9d1e7b30"}}
        }))
        .expect("seed node");
    }
    let token = sim.service_account_token("rebootguard", "rebootguard-agent");
    let kubeconfig = manifests::kubeconfig(&sim, dir, "agent", &token);
    (sim, kubeconfig)
}

/// The real agent as `kubeconfig`'s user, on a copy of the example node
/// with no flannel.1 (the machine's own network, read only), until
/// `done(sim)` or `limit`: whether it got there, and its log.
async fn run_agent(
    sim: &KubeSim,
    kubeconfig: &Path,
    limit: Duration,
    done: impl Fn(&KubeSim, &str) -> bool,
) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::example_root(dir.path());
    std::fs::write(
        root.join("etc/rebootguard/config.toml"),
        "node-name = \"boromir\"\n[agent]\nrestart-command = [\"true\"]\nrestart-grace = \"1s\"\n\
         restart-settle = \"2s\"\nlease-ttl = \"5s\"\nheartbeat = \"1s\"\ncheck-interval = \"2s\"\n",
    )
    .expect("config");
    let log_file = dir.path().join("agent.log");
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .arg("agent")
        .arg("--root")
        .arg(&root)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--taint", "--listen", "off", "--log", "debug"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", &root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_file).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("start the agent");
    let deadline = tokio::time::Instant::now() + limit;
    let reached = loop {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        if done(sim, &log) {
            break true;
        }
        if tokio::time::Instant::now() > deadline || agent.try_wait().is_ok_and(|s| s.is_some()) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    terminated(agent, "the agent").await;
    (
        reached,
        std::fs::read_to_string(&log_file).unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_works_with_exactly_its_rbac_enforced() {
    // The real agent against kubesim enforcing the base's RBAC, with its
    // ServiceAccount's token: it restores subnet.env, reports, taints,
    // takes the Lease and "restarts k3s" (`true`). Every request it made
    // is one the base's roles grant (kubesim refused any other), and it
    // made each kind of call the roles exist for.
    if !have_kubectl("the_agent_works_with_exactly_its_rbac_enforced") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, kubeconfig) = agent_cluster(dir.path()).await;
    let lease_version = |sim: &KubeSim| {
        sim.get(
            "coordination.k8s.io/v1",
            "Lease",
            "kube-system",
            "rebootguard-k3s-restart",
        )
        .map(|l| l["metadata"]["resourceVersion"].clone())
    };
    let shipped_lease = lease_version(&sim);
    // Until it has written everything it writes: condition, taint, an
    // Event, and the Lease (taken, or taken and given back).
    let (done, log) = run_agent(&sim, &kubeconfig, Duration::from_secs(90), |sim, _| {
        let node = sim.get("v1", "Node", "", "boromir").expect("node");
        let condition = node["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "PodNetworkReady"));
        let tainted = node["spec"]["taints"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["key"] == "rebootguard.io/pod-network-unready")
        });
        let event = !sim
            .list("events.k8s.io/v1", "Event", Some("default"))
            .is_empty();
        condition && tainted && event && lease_version(sim) != shipped_lease
    })
    .await;
    assert!(
        done,
        "the agent did not write everything within 90s:\n{log}"
    );
    assert!(!log.contains("forbidden"), "nothing refused:\n{log}");

    // The agent's requests (its own user agent) and those of the restore
    // it runs (the node commands' user agent); not kubectl's.
    let calls = granted_calls(
        &sim,
        AGENT_BASE,
        &["rebootguard-agent/", "rebootguard/"],
        &[
            ("patch", "nodes/status"),
            ("patch", "nodes"),
            ("update", "leases.coordination.k8s.io"),
            ("create", "events.events.k8s.io"),
            ("watch", "pods"),
            ("watch", "events"),
        ],
    );
    assert!(
        calls
            .iter()
            .any(|(ua, ..)| ua.starts_with("rebootguard-agent/")),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_without_one_permission_names_it() {
    // The base minus `patch` on nodes/status: the agent cannot write its
    // condition and says so with the API's words (who, which verb, which
    // resource), and keeps running.
    if !have_kubectl("the_agent_without_one_permission_names_it") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, kubeconfig) = agent_cluster(dir.path()).await;
    manifests::revoke(
        &sim,
        ("ClusterRole", "", "rebootguard-agent"),
        "",
        "nodes/status",
        "patch",
    );
    let refusal = "User \"system:serviceaccount:rebootguard:rebootguard-agent\" cannot patch resource \"nodes/status\"";
    let (said, log) = run_agent(&sim, &kubeconfig, Duration::from_secs(60), |_, log| {
        // Said at warning level, not only in the client's debug lines.
        log.lines()
            .any(|l| l.contains(" WARN ") && l.contains(refusal))
    })
    .await;
    assert!(said, "no refusal naming the permission within 60s:\n{log}");
    let node = sim.get("v1", "Node", "", "boromir").expect("node");
    assert!(
        node["status"]["conditions"].is_null(),
        "no condition written"
    );
}

const CONTROLLER_BASE: &str = "deploy/kubernetes/controller";
const OPERATOR_BASE: &str = "deploy/kubernetes/reboot-operator";
const CONTROLLER_GOLDEN: &str = "crates/cli/tests/golden/kubernetes-controller.yaml";

/// The controller's ClusterRole: every call `rebootguard_reboot` makes
/// for a rollout, no more.
const CONTROLLER_CLUSTER: &[(&str, &str, &str, &[&str])] = &[
    // observe::nodes (list), observe::node (get); act::cordon,
    // act::progress, act::request, controller::REBOOTED (merge patches).
    ("", "nodes", "*", &["get", "list", "patch"]),
    // observe::view, observe::pods_on (list); act::clean_stale and
    // act::evict with --force (delete).
    ("", "pods", "*", &["list", "delete"]),
    // act::evict.
    ("", "pods/eviction", "*", &["create"]),
    // observe::refusal: the agent's RebootRefused/RebootFailed Events.
    ("", "events", "*", &["list"]),
    // observe::view.
    ("policy", "poddisruptionbudgets", "*", &["list"]),
    // observe::volumes, observe::storage.
    ("longhorn.io", "volumes", "*", &["list"]),
    ("longhorn.io", "replicas", "*", &["list"]),
];

/// A base's Roles and ClusterRoles.
fn roles(objects: &[Value]) -> Vec<&Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .collect()
}

#[test]
fn controller_base_is_a_locked_down_deployment_with_exactly_its_rbac() {
    if !have_kubectl("controller_base_is_a_locked_down_deployment_with_exactly_its_rbac") {
        return;
    }
    let objects = documents(&renders_as_committed(CONTROLLER_BASE, CONTROLLER_GOLDEN));
    let deployment = find(&objects, "Deployment", "rebootguard-controller");
    let namespace = deployment["metadata"]["namespace"].as_str().expect("ns");
    find(&objects, "Namespace", namespace);
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2, "a leader and a stand-by");
    let pod = &spec["template"]["spec"];
    let account = pod["serviceAccountName"].as_str().expect("account");
    find(&objects, "ServiceAccount", account);
    assert_ne!(pod["hostNetwork"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        container["image"],
        format!(
            "ghcr.io/rebootguard/rebootguard:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    // The probes ask /healthz on the port the controller listens on.
    let args = strings(&container["args"]);
    assert_eq!(args[0], "controller");
    let port = container["ports"][0]["containerPort"]
        .as_u64()
        .expect("port");
    assert!(
        args.contains(&format!("--listen=0.0.0.0:{port}")),
        "{args:?}"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(
            container[probe]["httpGet"]["port"],
            container["ports"][0]["name"]
        );
    }
    // Each replica has its own name in the leader Lease: the pod's.
    let identity = container["env"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|v| v["name"] == "REBOOTGUARD_CONTROLLER_IDENTITY")
        })
        .expect("identity env");
    assert_eq!(
        identity["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // The arguments are the binary's (clap refuses an unknown flag before --help).
    let out = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(&args)
        .arg("--help")
        .output()
        .expect("run rebootguard");
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("[env: REBOOTGUARD_CONTROLLER_IDENTITY"),
        "{help}"
    );

    // RBAC: exactly the controller's calls, the Leases by the names its
    // defaults use, shipped (so no `create`), each bound to its account.
    let defaults = rebootguard_reboot::controller::Options::new("x".into());
    assert_eq!(
        grants(find(&objects, "ClusterRole", "rebootguard-controller")),
        expect(CONTROLLER_CLUSTER),
        "ClusterRole"
    );
    let (leader_ns, leader) = &defaults.leader;
    let (rollout_ns, rollout) = &defaults.rollout.lease;
    for (role, ns, lease, verbs) in [
        // lease::Lock: get, update (a PUT).
        (
            "rebootguard-controller-leader",
            leader_ns,
            leader,
            &["get", "update"][..],
        ),
        // lease::Lock, and the plan written on the Lease (a merge patch).
        (
            "rebootguard-controller-rollout",
            rollout_ns,
            rollout,
            &["get", "update", "patch"][..],
        ),
    ] {
        let r = find(&objects, "Role", role);
        assert_eq!(r["metadata"]["namespace"], ns.as_str(), "{role}");
        assert_eq!(
            grants(r),
            expect(&[("coordination.k8s.io", "leases", lease.as_str(), verbs)]),
            "{role}"
        );
        let shipped = find(&objects, "Lease", lease);
        assert_eq!(shipped["metadata"]["namespace"], ns.as_str());
        assert!(shipped["spec"].is_null(), "shipped with no holder");
    }
    let events = find(&objects, "Role", "rebootguard-controller-events");
    assert_eq!(events["metadata"]["namespace"], "default");
    assert_eq!(
        grants(events),
        expect(&[("events.k8s.io", "events", "*", &["create", "patch"])])
    );
    let all = roles(&objects);
    assert_eq!(all.len(), 4, "no other roles");
    for role in &all {
        for (group, resource, _, verb) in grants(role) {
            assert!(
                ![&group, &resource, &verb].contains(&&"*".to_owned()),
                "no wildcards"
            );
            assert_ne!(resource, "secrets");
        }
        let (kind, ns, name) = key(role);
        let binding = find(&objects, &format!("{kind}Binding"), &name);
        assert_eq!(binding["metadata"]["namespace"].as_str().unwrap_or(""), ns);
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": account, "namespace": namespace}])
        );
    }

    // The operator's roles grant the same calls, for people.
    let operator = documents(&kustomize(OPERATOR_BASE));
    assert_eq!(
        grants(find(
            &operator,
            "ClusterRole",
            "rebootguard-reboot-operator"
        )),
        expect(CONTROLLER_CLUSTER)
    );
    let lease_role = find(&operator, "Role", "rebootguard-reboot-operator");
    assert_eq!(lease_role["metadata"]["namespace"], rollout_ns.as_str());
    assert_eq!(
        grants(lease_role),
        expect(&[(
            "coordination.k8s.io",
            "leases",
            rollout.as_str(),
            &["get", "update", "patch"]
        )])
    );
    find(&operator, "Lease", rollout);
    for role in roles(&operator) {
        let (kind, _, name) = key(role);
        let binding = find(&operator, &format!("{kind}Binding"), &name);
        assert_eq!(binding["subjects"][0]["kind"], "Group");
    }
}

/// A Node as k3s shows it: Ready, with a boot ID and a role.
fn lab_node(name: &str, server: bool, annotations: Value) -> Value {
    let mut labels = json!({"kubernetes.io/hostname": name});
    if server {
        labels["node-role.kubernetes.io/control-plane"] = json!("true");
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "status": {
            "conditions": [{"type": "Ready", "status": "True",
                "lastHeartbeatTime": jiff::Timestamp::now().to_string(),
                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "nodeInfo": {"bootID": format!("boot-{name}-1")}
        }
    })
}

/// A server, boromir, and an agent node, theoden, marked as needing a
/// reboot since 2026-12-01.
fn seed_marked(sim: &KubeSim) {
    use rebootguard_cluster::reboot::REQUIRED;
    sim.create(&lab_node("boromir", true, json!({})))
        .expect("node");
    let marked = json!({REQUIRED: "2026-12-01T00:00:00Z"});
    sim.create(&lab_node("theoden", false, marked))
        .expect("node");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_leads_once_asks_for_the_reboot_and_makes_no_call_its_rbac_does_not_grant() {
    // The real controller against kubesim with its base applied: it leads,
    // picks the marked node (not the other), cordons and drains it and asks
    // its agent to reboot it; a second replica stands by; SIGTERM releases
    // leadership and leaves the rollout for the next leader to resume.
    // kubesim enforces the base's RBAC, and the controller runs as its
    // ServiceAccount: every request it made is one the base's roles grant.
    if !have_kubectl(
        "the_controller_leads_once_asks_for_the_reboot_and_makes_no_call_its_rbac_does_not_grant",
    ) {
        return;
    }
    use rebootguard_cluster::reboot::REQUEST;
    let sim = manifests::enforcing().await;
    let cache = tempfile::tempdir().expect("cache dir");
    apply(&sim, cache.path(), CONTROLLER_BASE).await;
    let token = sim.service_account_token("rebootguard", "rebootguard-controller");
    let kubeconfig = manifests::kubeconfig(&sim, cache.path(), "controller", &token);
    seed_marked(&sim);
    sim.create(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "theoden", "containers": [{"name": "web", "image": "web"}]},
        "status": {"phase": "Running"}
    }))
    .expect("pod");
    let controller = |identity: &str, once: bool| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"));
        cmd.arg("controller")
            .args([
                "--identity",
                identity,
                "--poll",
                "300ms",
                "--rollout-poll",
                "200ms",
            ])
            .args(["--lease-ttl", "6s", "--json"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if once {
            cmd.arg("--once");
        }
        cmd.spawn().expect("start the controller")
    };
    let leader = controller("replica-a", false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let asked = loop {
        let node = sim.get("v1", "Node", "", "theoden").expect("node");
        if node["metadata"]["annotations"][REQUEST].is_string() {
            break Some(node);
        }
        if tokio::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A second replica, once: it finds the Lease held and does nothing.
    let second = controller("replica-b", true)
        .wait_with_output()
        .await
        .expect("the second replica ran");
    let second_log = String::from_utf8_lossy(&second.stderr).into_owned();
    let out = terminated(leader, "the controller").await;
    let log = String::from_utf8_lossy(&out.stderr);
    let node = asked.unwrap_or_else(|| panic!("no reboot asked of theoden within 60s:\n{log}"));
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("leadership released"), "{log}");
    assert_eq!(
        node["spec"]["unschedulable"], true,
        "cordoned before asking"
    );
    assert!(sim.get("v1", "Pod", "default", "web").is_none(), "drained");
    let boromir = sim.get("v1", "Node", "", "boromir").expect("node");
    assert_ne!(
        boromir["spec"]["unschedulable"], true,
        "only the marked node"
    );
    assert_eq!(second.status.code(), Some(0), "{second_log}");
    assert!(second_log.contains("replica-a leads"), "{second_log}");
    // Leadership given back; the rollout kept for the next leader.
    let lease = |ns: &str, name: &str| {
        sim.get("coordination.k8s.io/v1", "Lease", ns, name)
            .unwrap_or_else(|| panic!("Lease {ns}/{name}"))
    };
    assert!(lease("rebootguard", "rebootguard-controller")["spec"]["holderIdentity"].is_null());
    let rollout = lease("kube-system", "rebootguard-reboot");
    assert_eq!(rollout["spec"]["holderIdentity"], "rebootguard-controller");
    assert!(rollout["metadata"]["annotations"]["rebootguard.io/rollout"].is_string());
    let progress = node["metadata"]["annotations"]["rebootguard.io/rollout"]
        .as_str()
        .expect("progress on the node");
    assert!(
        progress.contains(r#""phase":"down""#),
        "waiting for the new boot: {progress}"
    );

    granted_calls(
        &sim,
        CONTROLLER_BASE,
        &["rebootguard/"],
        &[
            ("list", "nodes"),
            ("patch", "nodes"),
            ("create", "pods/eviction"),
            ("update", "leases.coordination.k8s.io"),
            ("patch", "leases.coordination.k8s.io"),
            ("create", "events.events.k8s.io"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_without_one_permission_stops_and_names_it() {
    // The controller base minus `create` on pods/eviction: the drain of
    // the marked node is refused, the rollout stops there (the node is
    // not asked to reboot) and the log names the missing permission.
    if !have_kubectl("the_controller_without_one_permission_stops_and_names_it") {
        return;
    }
    let sim = manifests::enforcing().await;
    let cache = tempfile::tempdir().expect("cache dir");
    apply(&sim, cache.path(), CONTROLLER_BASE).await;
    manifests::revoke(
        &sim,
        ("ClusterRole", "", "rebootguard-controller"),
        "",
        "pods/eviction",
        "create",
    );
    let token = sim.service_account_token("rebootguard", "rebootguard-controller");
    let kubeconfig = manifests::kubeconfig(&sim, cache.path(), "controller", &token);
    seed_marked(&sim);
    sim.create(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "theoden", "containers": [{"name": "web", "image": "web"}]},
        "status": {"phase": "Running"}
    }))
    .expect("pod");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
            .args([
                "controller",
                "--once",
                "--identity",
                "cron",
                "--rollout-poll",
                "200ms",
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("--once returns")
    .expect("ran");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(
            "User \"system:serviceaccount:rebootguard:rebootguard-controller\" cannot create resource \"pods/eviction\""
        ),
        "{log}"
    );
    assert_ne!(out.status.code(), Some(0), "{log}");
    let node = sim.get("v1", "Node", "", "theoden").expect("node");
    assert!(
        node["metadata"]["annotations"][rebootguard_cluster::reboot::REQUEST].is_null(),
        "not asked to reboot with its pods still on it"
    );
    assert!(
        sim.get("v1", "Pod", "default", "web").is_some(),
        "not drained"
    );
}

/// `rebootguard controller --once ARGS` against `sim`: (exit code, log).
async fn controller_once(sim: &KubeSim, args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
            .args(["controller", "--once", "--identity", "cron"])
            .args(args)
            .arg("--kubeconfig")
            .arg(sim.kubeconfig_path())
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("--once returns")
    .expect("ran");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_rollout_holds_every_reboot_until_its_node_is_deleted_and_dry_run_changes_nothing()
 {
    let sim = KubeSim::start().await.expect("kubesim");
    sim.create(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rebootguard"}}),
    )
    .expect("the leader Lease's namespace");
    seed_marked(&sim);

    // Dry run: it says what it would do, and does nothing.
    let (code, log) = controller_once(&sim, &["--dry-run"]).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("dry run: would act: rebooting theoden"),
        "{log}"
    );
    let theoden = sim.get("v1", "Node", "", "theoden").expect("node");
    assert_ne!(theoden["spec"]["unschedulable"], true);
    assert!(theoden["metadata"]["annotations"]["rebootguard.io/rollout"].is_null());

    // A rollout that stopped at samwise (cordoned, its progress at the
    // network phase; the rollout Lease released with the plan on it).
    let mut samwise = lab_node(
        "samwise",
        false,
        json!({"rebootguard.io/rollout": r#"{"rollout":"rollout-1","phase":"network","agent":true}"#}),
    );
    samwise["spec"] = json!({"unschedulable": true});
    sim.create(&samwise).expect("node");
    sim.create(&json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "rebootguard-reboot", "namespace": "kube-system",
            "annotations": {"rebootguard.io/rollout": r#"{"id":"rollout-1","nodes":["samwise"]}"#}},
        "spec": {}
    }))
    .expect("lease");
    let (code, log) = controller_once(&sim, &[]).await;
    assert_eq!(code, Some(1), "a held rollout needs a human: {log}");
    for part in [
        "rollout rollout-1 is unfinished at samwise (phase network), left cordoned",
        "rebootguard reboot",
    ] {
        assert!(log.contains(part), "{part}:\n{log}");
    }
    let theoden = sim.get("v1", "Node", "", "theoden").expect("node");
    assert_ne!(
        theoden["spec"]["unschedulable"], true,
        "nothing else rebooted"
    );
    let held = sim
        .list("events.k8s.io/v1", "Event", Some("default"))
        .into_iter()
        .filter(|e| e["reason"] == "RebootHeld" && e["regarding"]["name"] == "samwise")
        .count();
    assert_eq!(held, 1, "a Warning Event on the held node");

    // The held node is deleted: the rollout is closed, and the others go on.
    sim.delete("v1", "Node", "", "samwise").expect("deleted");
    let (code, log) = controller_once(&sim, &[]).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("its node samwise is gone from the cluster"),
        "{log}"
    );
    let lease = sim
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "kube-system",
            "rebootguard-reboot",
        )
        .expect("lease");
    assert!(lease["metadata"]["annotations"]["rebootguard.io/rollout"].is_null());
    let (code, log) = controller_once(&sim, &["--dry-run"]).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("dry run: would act: rebooting theoden"),
        "{log}"
    );
}
