//! restore's decision table, with plain data.

use std::path::PathBuf;

use rebootguard_cluster::NodeView;
use rebootguard_errors::Failure;
use rebootguard_flannel::{NetConf, subnet_env};
use rebootguard_node::live::{Live, Unusable};
use rebootguard_node::observe::{Api, MtuHints, Observation};
use rebootguard_node::restore::{Decision, decide};
use rebootguard_store::{Generation, Metadata, Source};

const BOROMIR: &str = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
const SAMWISE: &str = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

fn generation(number: u64, node: &str, content: &str) -> Generation {
    Generation {
        number,
        meta: Metadata {
            node: node.into(),
            boot_id: "old-boot".into(),
            saved_at: jiff::Timestamp::UNIX_EPOCH,
            sha256: rebootguard_store::format::sha256_hex(content.as_bytes()),
            pod_cidrs: vec![],
            source: Source::Live,
        },
        content: content.as_bytes().to_vec(),
        path: PathBuf::from(format!("subnet-env.{number:06}")),
    }
}

fn node(cidrs: &[&str]) -> Api {
    Api::Node(NodeView {
        name: "boromir".into(),
        pod_cidrs: cidrs.iter().map(|c| c.parse().expect("cidr")).collect(),
        boot_id: Some("new-boot".into()),
        flannel: Default::default(),
    })
}

fn observation(live: Live, backups: Vec<Generation>, api: Api) -> Observation {
    Observation {
        node: "boromir".into(),
        live,
        backup: backups.iter().find(|g| g.meta.node == "boromir").cloned(),
        generations: backups,
        store_problems: vec![],
        net_conf: NetConf::parse(br#"{"Network":"10.42.0.0/16","Backend":{"Type":"vxlan"}}"#)
            .map_err(|e| Failure::new(e, false)),
        api,
        mtu: MtuHints {
            underlay: Some(1500),
            ..MtuHints::default()
        },
    }
}

fn present(text: &str) -> Live {
    Live::Present {
        bytes: text.as_bytes().to_vec(),
        parsed: subnet_env::parse(text.as_bytes()),
    }
}

#[test]
fn valid_live_file_is_kept() {
    let plan = decide(&observation(present(BOROMIR), vec![], Api::NotAsked), true);
    assert_eq!(plan.decision, Decision::Keep);
    assert!(plan.warnings.is_empty());
    // Kept even when the API disagrees, but the operator is told.
    let plan = decide(
        &observation(present(BOROMIR), vec![], node(&["10.42.9.0/24"])),
        true,
    );
    assert_eq!(plan.decision, Decision::Keep);
    assert!(
        plan.warnings[0].contains("10.42.9.0/24"),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn incident_missing_file_is_restored_from_a_verified_backup() {
    let plan = decide(
        &observation(
            Live::Missing,
            vec![generation(3, "boromir", BOROMIR)],
            node(&["10.42.0.0/24"]),
        ),
        true,
    );
    assert_eq!(
        plan.decision,
        Decision::Restore {
            generation: 3,
            verified: true
        }
    );
}

#[test]
fn unreachable_api_restores_unverified_with_a_warning() {
    let plan = decide(
        &observation(
            present("garbage"),
            vec![generation(3, "boromir", BOROMIR)],
            Api::Unavailable(Failure::said("connection refused", true)),
        ),
        true,
    );
    assert_eq!(
        plan.decision,
        Decision::Restore {
            generation: 3,
            verified: false
        }
    );
    assert!(plan.warnings.iter().any(|w| w.contains("invalid")));
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("connection refused"))
    );
}

#[test]
fn backup_disagreeing_with_the_api_is_replaced_by_a_regenerated_file() {
    let mut o = observation(
        Live::Missing,
        vec![generation(3, "boromir", BOROMIR)],
        node(&["10.42.5.0/24"]),
    );
    o.mtu.previous = Some(1450);
    let plan = decide(&o, true);
    let Decision::Regenerate { content, because } = plan.decision else {
        panic!("expected regenerate, got {:?}", plan.decision);
    };
    assert!(content.contains("FLANNEL_SUBNET=10.42.5.1/24"));
    assert!(content.contains("FLANNEL_MTU=1450"));
    assert!(because.contains("disagrees"), "{because}");
}

#[test]
fn another_nodes_backup_is_never_used() {
    let o = observation(
        Live::Missing,
        vec![generation(9, "samwise", SAMWISE)],
        Api::Unavailable(Failure::said("timeout", true)),
    );
    let plan = decide(&o, true);
    let Decision::Nothing { missing } = plan.decision else {
        panic!("expected nothing, got {:?}", plan.decision);
    };
    assert!(missing.iter().any(|m| m.contains("timeout")), "{missing:?}");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("other nodes ignored"))
    );

    let with_api = decide(
        &observation(
            Live::Missing,
            vec![generation(9, "samwise", SAMWISE)],
            node(&["10.42.0.0/24"]),
        ),
        true,
    );
    let Decision::Regenerate { content, .. } = with_api.decision else {
        panic!("expected regenerate");
    };
    assert!(content.contains("10.42.0.1/24"));
}

#[test]
fn no_backup_no_api_says_exactly_what_is_missing() {
    let mut o = observation(Live::Missing, vec![], Api::NotAsked);
    o.net_conf = Err(Failure::said("net-conf.json does not exist", true));
    o.mtu = MtuHints::default();
    let Decision::Nothing { missing } = decide(&o, true).decision else {
        panic!("expected nothing");
    };
    assert_eq!(missing.len(), 3, "{missing:?}");
    assert!(missing[0].contains("podCIDR"));
    assert!(missing[1].contains("net-conf.json"));
    assert!(missing[2].contains("MTU"));
    // The links were not read without the API: no claim about them.
    assert!(!missing[2].contains("no default route"), "{}", missing[2]);
    assert!(missing[2].contains("pass --mtu"), "{}", missing[2]);

    o.mtu.links_read = true;
    let Decision::Nothing { missing } = decide(&o, true).decision else {
        panic!("expected nothing");
    };
    assert!(missing[2].contains("no default route"), "{}", missing[2]);
}

#[test]
fn a_deleted_node_or_unassigned_podcidr_restores_nothing() {
    let gone = decide(
        &observation(
            Live::Missing,
            vec![generation(3, "boromir", BOROMIR)],
            Api::NoNode("boromir".into()),
        ),
        true,
    );
    assert!(matches!(gone.decision, Decision::Nothing { .. }));
    let unassigned = decide(
        &observation(
            Live::Missing,
            vec![generation(3, "boromir", BOROMIR)],
            node(&[]),
        ),
        true,
    );
    let Decision::Nothing { missing } = unassigned.decision else {
        panic!("expected nothing");
    };
    assert!(missing[0].contains("CIDRNotAvailable"));
}

#[test]
fn unsafe_paths_are_refused() {
    let plan = decide(
        &observation(
            Live::Unusable(Unusable::Symlink("/tmp/x".into())),
            vec![generation(3, "boromir", BOROMIR)],
            Api::NotAsked,
        ),
        true,
    );
    let Decision::Refuse { reason } = plan.decision else {
        panic!("expected refuse");
    };
    assert!(reason.contains("symbolic link"));
}

#[test]
fn dual_stack_backup_is_verified_against_both_families() {
    let dual = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
    let mut o = observation(
        Live::Missing,
        vec![generation(1, "boromir", dual)],
        node(&["10.42.0.0/24", "2001:cafe:42::/64"]),
    );
    o.net_conf = NetConf::parse(
        br#"{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"vxlan"}}"#,
    )
    .map_err(|e| Failure::new(e, false));
    assert!(matches!(
        decide(&o, true).decision,
        Decision::Restore { verified: true, .. }
    ));
}

#[test]
fn an_unusable_store_is_named_when_nothing_could_be_restored() {
    let mut o = observation(Live::Missing, vec![], Api::NotAsked);
    o.store_problems =
        vec!["the store directory /var/lib/rebootguard is writable by every user".into()];
    let plan = decide(&o, true);
    let Decision::Nothing { missing } = &plan.decision else {
        panic!("{:?}", plan.decision);
    };
    assert!(
        missing
            .iter()
            .any(|m| m.starts_with("a backup (") && m.contains("writable by every user")),
        "{missing:?}"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.starts_with("the backup store: ")),
        "{:?}",
        plan.warnings
    );
    // A live valid file needs no store: nothing said about it.
    o.live = present(BOROMIR);
    let plan = decide(&o, true);
    assert!(matches!(plan.decision, Decision::Keep));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}
