//! subnet.env parsing, validation and rendering, pinned to the plugin's behaviour.

use ipnet::IpNet;
use proptest::prelude::*;
use rebootguard_flannel::subnet_env::{self, ProblemKind, Severity, SubnetEnv, parse};
use rebootguard_flannel::{Mtu, NetConf, derive};

const K3S: &str = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

fn kinds(bytes: &[u8]) -> Vec<(Severity, ProblemKind)> {
    parse(bytes)
        .problems
        .into_iter()
        .map(|p| (p.severity, p.kind))
        .collect()
}

fn net(s: &str) -> IpNet {
    s.parse().expect("test CIDR")
}

#[test]
fn k3s_file_is_valid_and_renders_identically() {
    let parsed = parse(K3S.as_bytes());
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    assert_eq!(parsed.env.networks, vec![net("10.42.0.0/16")]);
    assert_eq!(parsed.env.subnet, Some(net("10.42.0.1/24")));
    assert_eq!(parsed.env.pod_cidrs(), vec![net("10.42.0.0/24")]);
    assert_eq!(parsed.env.mtu, Some(1450));
    assert_eq!(parsed.env.ipmasq, Some(true));
    assert_eq!(parsed.env.render(), K3S);
}

#[test]
fn missing_keys_use_the_plugin_wording() {
    let parsed = parse(b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\n");
    let missing = parsed
        .problems
        .iter()
        .find(|p| matches!(p.kind, ProblemKind::Missing { .. }))
        .expect("missing reported");
    assert_eq!(
        missing.plugin_message("/run/flannel/subnet.env").as_deref(),
        Some("/run/flannel/subnet.env is missing FLANNEL_MTU, FLANNEL_IPMASQ")
    );
    let empty = parse(b"");
    let messages: Vec<String> = empty
        .problems
        .iter()
        .filter_map(|p| p.plugin_message("subnet.env"))
        .collect();
    assert_eq!(
        messages,
        vec![
            "subnet.env is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ"
        ]
    );
    assert!(!empty.is_valid());
}

#[test]
fn line_without_equals_is_an_error_not_a_panic() {
    let k = kinds(b"FLANNEL_NETWORK\n");
    assert!(k.contains(&(
        Severity::Error,
        ProblemKind::NoEquals {
            text: "FLANNEL_NETWORK".into()
        }
    )));
}

#[test]
fn keys_match_exactly_and_slips_are_named() {
    for line in [
        "FLANNEL_MTU =1450",
        " FLANNEL_MTU=1450",
        "export FLANNEL_MTU=1450",
        "flannel_mtu=1450",
        "\"FLANNEL_MTU\"=1450",
    ] {
        let text = K3S.replace("FLANNEL_MTU=1450", line);
        let parsed = parse(text.as_bytes());
        assert_eq!(parsed.env.mtu, None, "{line}");
        assert!(
            parsed.problems.iter().any(|p| matches!(
                &p.kind,
                ProblemKind::LooksLike {
                    key: "FLANNEL_MTU",
                    ..
                }
            ) && p.severity == Severity::Error),
            "{line}: {:?}",
            parsed.problems
        );
        assert!(!parsed.is_valid());
    }
}

#[test]
fn values_are_verbatim() {
    // Quotes and spaces make the plugin fail or, for IPMASQ, silently read false.
    let quoted = parse(K3S.replace("10.42.0.1/24", "\"10.42.0.1/24\"").as_bytes());
    let bad = quoted
        .problems
        .iter()
        .find(|p| matches!(p.kind, ProblemKind::BadCidr { .. }))
        .expect("bad cidr");
    assert_eq!(bad.line, Some(2));
    assert_eq!(
        bad.plugin_message("x").as_deref(),
        Some("invalid CIDR address: \"10.42.0.1/24\"")
    );
    assert!(bad.hint().contains("quotes"));

    let spaced = parse(K3S.replace("=true", "= true").as_bytes());
    assert_eq!(spaced.env.ipmasq, Some(false), "the plugin reads false");
    assert!(!spaced.is_valid());

    let mtu = parse(K3S.replace("1450", "1450 ").as_bytes());
    let bad = mtu
        .problems
        .iter()
        .find(|p| matches!(p.kind, ProblemKind::BadMtu { .. }))
        .expect("bad mtu");
    assert_eq!(
        bad.plugin_message("x").as_deref(),
        Some("strconv.ParseUint: parsing \"1450 \": invalid syntax")
    );
}

#[test]
fn crlf_is_tolerated_like_bufio_scanner() {
    let parsed = parse(K3S.replace('\n', "\r\n").as_bytes());
    assert!(parsed.is_valid());
    assert_eq!(parsed.env.mtu, Some(1450));
    assert!(
        parsed
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::CrLf && p.severity == Severity::Warning)
    );
}

#[test]
fn last_duplicate_wins_and_unknown_keys_are_ignored() {
    let text = format!("{K3S}FLANNEL_MTU=1400\nFLANNEL_FOO=bar\n");
    let parsed = parse(text.as_bytes());
    assert!(parsed.is_valid());
    assert_eq!(parsed.env.mtu, Some(1400));
    assert!(
        parsed
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Duplicate { key: "FLANNEL_MTU" })
    );
    assert!(
        parsed
            .problems
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::UnknownKey { .. }))
    );
}

#[test]
fn network_lists_are_comma_separated() {
    let text = K3S.replace("10.42.0.0/16", "10.42.0.0/16,10.100.0.0/16");
    let parsed = parse(text.as_bytes());
    assert!(parsed.is_valid(), "{:?}", parsed.problems);
    assert_eq!(parsed.env.networks.len(), 2);
    assert_eq!(parsed.env.render(), text);
}

#[test]
fn semantic_checks_beyond_the_plugin() {
    type Case = (&'static str, &'static str, fn(&ProblemKind) -> bool);
    let cases: [Case; 6] = [
        ("10.42.0.1/24", "10.43.0.1/24", |k| {
            matches!(k, ProblemKind::SubnetOutsideNetwork { .. })
        }),
        ("10.42.0.1/24", "10.42.0.7/24", |k| {
            matches!(k, ProblemKind::HostNotFirst { .. })
        }),
        ("10.42.0.1/24", "10.42.0.0/24", |k| {
            matches!(k, ProblemKind::HostNotFirst { .. })
        }),
        ("1450", "67", |k| {
            matches!(k, ProblemKind::MtuOutOfRange { .. })
        }),
        ("1450", "70000", |k| {
            matches!(k, ProblemKind::MtuOutOfRange { .. })
        }),
        ("=true", "=yes", |k| {
            matches!(k, ProblemKind::BadIpmasq { .. })
        }),
    ];
    for (from, to, want) in cases {
        let parsed = parse(K3S.replace(from, to).as_bytes());
        assert!(!parsed.is_valid(), "{to}");
        assert!(
            parsed.errors().any(|p| want(&p.kind)),
            "{to}: {:?}",
            parsed.problems
        );
    }
    let unpaired = parse(b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=fd00::/56\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
    assert!(unpaired.errors().any(|p| p.kind
        == ProblemKind::Unpaired {
            present: "FLANNEL_IPV6_NETWORK",
            missing: "FLANNEL_IPV6_SUBNET"
        }));
    let family = parse(K3S.replace("10.42.0.0/16", "fd00::/8").as_bytes());
    assert!(
        family
            .errors()
            .any(|p| matches!(p.kind, ProblemKind::WrongFamily { .. }))
    );
}

#[test]
fn garbage_and_oversized_input() {
    let garbage = parse(&[0xff, 0xfe, b'\n', 0x00, b'=', 0x80, b'\n']);
    assert!(!garbage.is_valid());
    assert!(
        garbage
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::NotText)
    );

    let huge = vec![b'A'; (subnet_env::MAX_SIZE + 1) as usize];
    assert!(matches!(
        parse(&huge).problems[0].kind,
        ProblemKind::TooLarge { .. }
    ));
    let long_line = format!("FLANNEL_FOO={}\n{K3S}", "x".repeat(70_000));
    let parsed = parse(long_line.as_bytes());
    let problem = parsed
        .errors()
        .find(|p| p.kind == ProblemKind::LineTooLong)
        .expect("long line");
    assert_eq!(
        problem.plugin_message("x").as_deref(),
        Some("bufio.Scanner: token too long")
    );
}

#[test]
fn every_problem_explains_itself() {
    let parsed = parse(b"FLANNEL_MTU=abc\nfoo\n\nFLANNEL_SUBNET=10.42.0.9/24\r\n");
    assert!(!parsed.problems.is_empty());
    for problem in &parsed.problems {
        assert!(!problem.to_string().is_empty());
        assert!(!problem.hint().is_empty());
    }
}

#[test]
fn order_and_final_newline_are_warnings() {
    let swapped = "FLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true";
    let parsed = parse(swapped.as_bytes());
    assert!(parsed.is_valid());
    let warnings: Vec<_> = parsed.problems.iter().map(|p| &p.kind).collect();
    assert!(warnings.contains(&&ProblemKind::Order));
    assert!(warnings.contains(&&ProblemKind::NoFinalNewline));
}

fn arb_env() -> impl Strategy<Value = SubnetEnv> {
    let v4 = (1u8..=223, 8u8..=16, 0u32..=255).prop_map(|(a, cluster_len, node)| {
        let network: IpNet = format!("{a}.0.0.0/{cluster_len}")
            .parse::<IpNet>()
            .expect("cidr")
            .trunc();
        let IpNet::V4(v4) = network else {
            unreachable!()
        };
        let base = u32::from(v4.network()) + (node << 8);
        let lease = IpNet::new(std::net::Ipv4Addr::from(base).into(), 24)
            .expect("lease")
            .trunc();
        (network, lease)
    });
    let v6 = (0u16..=0xffff, 0u16..=255).prop_map(|(site, node)| {
        let network: IpNet = format!("fd00:{site:x}::/56").parse().expect("cidr");
        let lease: IpNet = format!("fd00:{site:x}:0:{node:x}::/64")
            .parse()
            .expect("cidr");
        (network, lease)
    });
    (
        prop::option::of(v4),
        prop::option::of(v6),
        1280u32..=9000,
        any::<bool>(),
    )
        .prop_filter("one family at least", |(a, b, _, _)| {
            a.is_some() || b.is_some()
        })
        .prop_map(|(v4, v6, mtu, ipmasq)| {
            let mut env = SubnetEnv {
                mtu: Some(mtu),
                ipmasq: Some(ipmasq),
                ..SubnetEnv::default()
            };
            if let Some((network, lease)) = v4 {
                env.networks = vec![network];
                env.subnet = subnet_env::first_host(lease);
            }
            if let Some((network, lease)) = v6 {
                env.ipv6_networks = vec![network];
                env.ipv6_subnet = subnet_env::first_host(lease);
            }
            env
        })
}

proptest! {
    #[test]
    fn render_then_parse_is_identity(env in arb_env()) {
        let text = env.render();
        let parsed = parse(text.as_bytes());
        prop_assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        prop_assert_eq!(&parsed.env, &env);
        prop_assert_eq!(parsed.env.render(), text);
    }

    #[test]
    fn every_derived_file_parses_and_validates(
        env in arb_env(),
        mtu in 576u32..=9000,
        backend in prop::sample::select(vec!["vxlan", "host-gw", "wireguard", "udp", "ipip"]),
    ) {
        let conf = NetConf::parse(format!(
            r#"{{"Network":"{}","EnableIPv4":{},"EnableIPv6":{},"IPv6Network":"{}","Backend":{{"Type":"{backend}"}}}}"#,
            env.networks.first().map_or("0.0.0.0/0".into(), ToString::to_string),
            env.subnet.is_some(),
            env.ipv6_subnet.is_some(),
            env.ipv6_networks.first().map_or("::/0".into(), ToString::to_string),
        ).as_bytes()).expect("net-conf");
        let mtu = if env.ipv6_subnet.is_some() { mtu.max(1400) } else { mtu };
        let derived = derive(&env.pod_cidrs(), &conf, Mtu::Underlay(mtu), true).expect("derives");
        let parsed = parse(derived.render().as_bytes());
        prop_assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        prop_assert_eq!(parsed.env.pod_cidrs(), env.pod_cidrs());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let parsed = parse(&bytes);
        for problem in &parsed.problems {
            let _ = problem.to_string();
        }
    }

    #[test]
    fn arbitrary_lines_never_panic(lines in prop::collection::vec("[A-Z_=a-z0-9./:, \"\r]{0,40}", 0..12)) {
        let text = lines.join("\n");
        let _ = parse(text.as_bytes());
    }
}
