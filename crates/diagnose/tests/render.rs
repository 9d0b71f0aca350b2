//! Renderers: the JSON contract (golden file), colour handling, Markdown,
//! Mermaid and DOT.

mod common;

use std::path::PathBuf;

use rebootguard_diagnose::render::{self, Format};
use rebootguard_diagnose::report::Report;

use common::kube::{PodB, State};
use common::scenarios::{Cluster, NOW, creating, sandbox_event};

/// Host-local leak on node2 plus an unrelated image pull failure.
fn two_roots() -> Report {
    let mut c = Cluster::healthy();
    for i in 0..2 {
        let p = creating("apps", "queue", &format!("q{i}"), "node2");
        sandbox_event(
            &mut c,
            "apps",
            &p.name.clone(),
            "node2",
            "plugin type=\"flannel\" failed (add): failed to delegate add: failed to allocate for range 0: no IP addresses available in range set: 10.42.1.1-10.42.1.254",
            11 + i,
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
    common::analyse(&c.objects(), NOW)
}

/// The JSON output is a contract (docs/diagnose.md). Regenerate after an
/// intended change with `REBOOTGUARD_UPDATE_FIXTURES=1 cargo test -p rebootguard-diagnose --test render`.
#[test]
fn json_matches_golden() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/two-roots.json");
    let json = render::json(&two_roots());
    if std::env::var_os("REBOOTGUARD_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &json).expect("write golden");
    }
    let golden = std::fs::read_to_string(&path).expect("golden exists");
    assert_eq!(
        json, golden,
        "JSON output changed; if intended, regenerate the golden file and document the change"
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["apiVersion"], "rebootguard.io/v1alpha1");
    assert_eq!(v["kind"], "DiagnoseReport");
    assert_eq!(v["roots"][0]["cause"]["type"], "cni");
    assert_eq!(v["roots"][0]["cause"]["cni"]["type"], "hostLocalExhausted");
}

#[test]
fn the_same_input_gives_the_same_output() {
    assert_eq!(render::json(&two_roots()), render::json(&two_roots()));
}

#[test]
fn colour_only_when_asked() {
    let r = two_roots();
    let plain = render::human(&r, false);
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(render::human(&r, true).contains("\x1b[1;31m"));
    // First domino first.
    let first = plain.find("#1 host-local").expect("root 1");
    let second = plain.find("#2 Deployment apps/shop").expect("root 2");
    assert!(first < second, "{plain}");
    assert!(plain.contains("[on node2, as root]"), "{plain}");
}

#[test]
fn markdown_for_a_post_mortem() {
    let md = render::markdown(&two_roots());
    assert!(md.starts_with("# Diagnosis (2026-03-14T12:00:00Z)"), "{md}");
    assert!(md.contains("## 1. host-local IP range exhausted"), "{md}");
    assert!(md.contains("| object | reason | count |"));
    assert!(md.contains("```sh"));
}

#[test]
fn mermaid_and_dot_draw_every_edge() {
    let r = two_roots();
    let m = render::mermaid(&r);
    assert!(m.starts_with("flowchart LR\n"));
    assert_eq!(
        m.matches(" --> ").count() + m.matches(" -->|").count(),
        r.graph.edges.len()
    );
    assert!(m.contains(":::root"));
    let d = render::dot(&r);
    assert!(d.starts_with("digraph diagnose {"));
    assert!(d.trim_end().ends_with('}'));
    assert_eq!(d.matches(" -> ").count(), r.graph.edges.len());
    assert!(
        d.contains("\"node-network/node2\" -> \"workload/apps/Deployment/queue\""),
        "{d}"
    );
}

#[test]
fn format_names_parse() {
    for (s, f) in [
        ("human", Format::Human),
        ("json", Format::Json),
        ("markdown", Format::Markdown),
        ("mermaid", Format::Mermaid),
        ("dot", Format::Dot),
    ] {
        assert_eq!(s.parse::<Format>(), Ok(f));
    }
    assert!(
        "yaml"
            .parse::<Format>()
            .expect_err("must fail")
            .to_string()
            .contains("use human, json")
    );
}

#[test]
fn incident_renders_in_every_format() {
    let r = common::analyse(
        &common::incident::objects(false),
        common::incident::COLLECTED_AT,
    );
    for f in [
        Format::Human,
        Format::Json,
        Format::Markdown,
        Format::Mermaid,
        Format::Dot,
    ] {
        let out = render::render(&r, f, false);
        assert!(out.contains("boromir"), "{f:?}");
    }
    let human = render::human(&r, false);
    assert!(human.contains("Stale pods: 24 pod(s)"), "{human}");
    assert!(human.contains("$ rebootguard clean-stale --yes"));
}

#[test]
fn human_report_details_ten_roots_then_one_line_each() {
    let mut c = Cluster::healthy();
    for i in 0..12 {
        c.pod(
            PodB::deployment(
                "apps",
                &format!("app{i:02}"),
                "7f8b9c6d5",
                "x",
                "node1",
                &format!("ghcr.io/example/app{i:02}:0"),
            )
            .state(State::ImagePull {
                reason: "ImagePullBackOff".into(),
                message: "not found".into(),
            }),
        );
    }
    let r = common::analyse(&c.objects(), NOW);
    assert_eq!(r.roots.len(), 12);
    let text = render::human(&r, false);
    assert!(text.contains("2 more root cause(s)"), "{text}");
    assert_eq!(text.matches("   fix:").count(), 10, "{text}");
    assert!(text.contains("  #12 Deployment apps/"), "{text}");
}
