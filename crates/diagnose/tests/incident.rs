//! Regression test for the 2026-01-31 incident (shared/incident-2026-01-31.md):
//! diagnose must name flannel's missing subnet.env on boromir and theoden as
//! the one root cause of the outage, fold CoreDNS, Flux, Longhorn and the
//! workloads under it, and list the stale `Unknown` pods as noise to clean.

mod common;

use std::path::PathBuf;

use rebootguard_diagnose::classify::Sandbox;
use rebootguard_diagnose::clean::Action;
use rebootguard_diagnose::report::{Cause, Impact, Report, Verdict};
use rebootguard_diagnose::{Config, analyse, load};

use common::incident;

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/incident-2026-01-31/snapshot.json")
}

fn fixture_bytes() -> Vec<u8> {
    let doc = common::kube::snapshot_doc(
        incident::COLLECTED_AT,
        "incident 2026-01-31 (boromir, theoden rebooted)",
        &incident::objects(false),
    );
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("serialise");
    bytes.push(b'\n');
    bytes
}

/// The shipped example is exactly what the generator builds. Regenerate with
/// `REBOOTGUARD_UPDATE_FIXTURES=1 cargo test -p rebootguard-diagnose --test incident`.
#[test]
fn shipped_example_matches_generator() {
    let want = fixture_bytes();
    let path = example_path();
    if std::env::var_os("REBOOTGUARD_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &want).expect("write example");
    }
    let have = std::fs::read(&path).expect("examples/incident-2026-01-31/snapshot.json exists");
    assert!(
        have == want,
        "examples/incident-2026-01-31/snapshot.json is out of date; regenerate it (see this test's doc)"
    );
}

fn collect_titles(i: &Impact, out: &mut Vec<String>) {
    out.push(i.title.clone());
    for c in &i.children {
        collect_titles(c, out);
    }
}

fn check_incident(report: &Report) {
    assert_eq!(report.verdict, Verdict::ProblemsFound);
    assert_eq!(report.exit_code(), 1);
    let first = &report.roots[0];
    assert_eq!(
        first.cause,
        Cause::Cni {
            cni: Sandbox::FlannelSubnetEnvMissing
        },
        "{:#?}",
        report.roots
    );
    assert_eq!(
        first.subjects,
        vec!["boromir".to_string(), "theoden".to_string()]
    );
    assert!(first.title.contains("subnet.env"), "{}", first.title);
    // The only other root is the pre-existing codeberg-runner breakage.
    let others: Vec<&str> = report.roots[1..].iter().map(|r| r.title.as_str()).collect();
    assert_eq!(report.roots.len(), 2, "unexpected extra roots: {others:#?}");
    assert_eq!(report.roots[1].cause, Cause::CrashLoop);
    assert!(
        report.roots[1].title.contains("codeberg-runner"),
        "{}",
        report.roots[1].title
    );
    // CoreDNS, Flux, Longhorn and the workloads are folded under the flannel root.
    let mut titles = Vec::new();
    for i in &first.impact {
        collect_titles(i, &mut titles);
    }
    let has = |needle: &str| titles.iter().any(|t| t.contains(needle));
    for needle in [
        "CoreDNS is down",
        "Deployment flux-system/source-controller",
        "Deployment flux-system/helm-controller",
        "HelmRelease flux-system/vaultwarden",
        "Kustomization flux-system/apps",
        "DaemonSet longhorn-system/longhorn-csi-plugin",
        "CSI driver driver.longhorn.io not registered on node boromir",
        "Deployment gitea/gitea",
        "Deployment vaultwarden/vaultwarden",
        "APIService v1beta1.metrics.k8s.io",
    ] {
        assert!(
            has(needle),
            "{needle:?} not folded under the root:\n{titles:#?}"
        );
    }
    assert!(
        !has("prometheus-node-exporter"),
        "hostNetwork pods need no CNI and are healthy"
    );
    assert!(first.blast_radius.pods >= 30, "{:?}", first.blast_radius);
    assert_eq!(first.blast_radius.nodes, 2);
    // Evidence carries the event text, counts and times.
    let ev = first
        .evidence
        .iter()
        .find(|e| e.reason == "FailedCreatePodSandBox")
        .expect("sandbox evidence");
    assert!(
        ev.message
            .contains("/run/flannel/subnet.env: no such file or directory")
    );
    assert!(!ev.message.starts_with("(combined"));
    assert!(ev.count >= 12);
    assert!(first.evidence.iter().any(|e| e.reason == "Rebooted"));
    assert!(first.first_seen.is_some() && first.last_seen.is_some());
    // Fix: restore on each node as root, then clean the stale pods.
    let cmds: Vec<(Option<&str>, &str)> = first
        .fix
        .iter()
        .map(|f| (f.run_on.as_deref(), f.command.as_deref().unwrap_or("")))
        .collect();
    assert!(
        cmds.contains(&(Some("boromir"), "rebootguard node restore")),
        "{cmds:?}"
    );
    assert!(
        cmds.contains(&(Some("theoden"), "rebootguard node restore")),
        "{cmds:?}"
    );
    assert!(
        cmds.contains(&(None, "rebootguard clean-stale --yes")),
        "{cmds:?}"
    );
    assert!(
        cmds.contains(&(Some("theoden"), "systemctl restart k3s")),
        "{cmds:?}"
    );
    assert!(
        first
            .fix
            .iter()
            .any(|f| f.description.contains("FLANNEL_SUBNET=10.42.0.1/24"))
    );
    // Stale Unknown pods: listed, all on the rebooted nodes, force-deletable.
    assert_eq!(
        report.stale.pods.len(),
        24,
        "{:#?}",
        report
            .stale
            .pods
            .iter()
            .map(|p| &p.name)
            .collect::<Vec<_>>()
    );
    for p in &report.stale.pods {
        assert!(p.node == "boromir" || p.node == "theoden", "{p:?}");
        assert_eq!(p.status, "Unknown");
        assert_eq!(p.action, Action::ForceDelete, "{p:?}");
    }
    assert!(
        report
            .stale
            .pods
            .iter()
            .any(|p| p.name == "home-assistant-0")
    );
}

#[test]
fn incident_example_names_flannel_as_the_one_root_cause() {
    let bytes = std::fs::read(example_path()).expect("example exists");
    let snap = load(&bytes).expect("loads");
    assert_eq!(
        snap.pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count(),
        71
    );
    assert_eq!(
        snap.custom
            .iter()
            .filter(|v| v["kind"] == "HelmRelease")
            .count(),
        11
    );
    let now = snap.metadata.collected_at.expect("collectedAt");
    let report = analyse(&snap, now, &Config::default());
    check_incident(&report);
}

#[test]
fn incident_with_newer_flannel_plugin_wording() {
    let report = common::analyse(&incident::objects(true), incident::COLLECTED_AT);
    check_incident(&report);
}

#[test]
fn incident_from_kubectl_list_and_yaml() {
    let objects = incident::objects(false);
    let list = serde_json::to_vec(&common::kube::list_doc(&objects)).expect("json");
    let from_list = load(&list).expect("List loads");
    let now = incident::COLLECTED_AT.parse().expect("now");
    check_incident(&analyse(&from_list, now, &Config::default()));
    let yaml = serde_saphyr::to_string(&common::kube::list_doc(&objects)).expect("yaml");
    let from_yaml = load(yaml.as_bytes()).expect("YAML loads");
    assert_eq!(from_yaml.pods.len(), from_list.pods.len());
    assert_eq!(from_yaml.events.len(), from_list.events.len());
    check_incident(&analyse(&from_yaml, now, &Config::default()));
}

#[test]
fn incident_round_trips_through_the_snapshot_format() {
    let snap = common::snapshot_of(&incident::objects(false), incident::COLLECTED_AT);
    let again = load(&snap.to_json().expect("json")).expect("reload");
    assert_eq!(snap, again);
    let gz = load(&snap.to_gzip().expect("gzip")).expect("gzip reload");
    assert_eq!(snap, gz);
}

/// Found by the lab replay: a CSI node plugin whose sandbox was never
/// created has no container statuses at all, so no `driver-registrar` to
/// recognise it by. Its driver's missing registration must still fold under
/// the node's CNI failure (through the storage system's failing pods there)
/// instead of standing as a root of its own.
#[test]
fn incident_with_csi_plugin_pods_that_never_got_a_container_status() {
    let mut objects = incident::objects(false);
    let mut stripped = 0;
    for object in objects.iter_mut() {
        let is_plugin = object["kind"] == "Pod"
            && object["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("longhorn-csi-plugin-"));
        let rebooted = matches!(
            object["spec"]["nodeName"].as_str(),
            Some("boromir" | "theoden")
        );
        if is_plugin
            && rebooted
            && let Some(status) = object["status"].as_object_mut()
        {
            status.remove("containerStatuses");
            status.remove("initContainerStatuses");
            stripped += 1;
        }
    }
    assert!(stripped >= 2, "stripped {stripped} plugin pods");
    let report = common::analyse(&objects, incident::COLLECTED_AT);
    check_incident(&report);
}
