//! What subnet.env must say for a node, worked out from what the cluster knows:
//! the Node's `spec.podCIDRs`, `net-conf.json`, the backend's MTU rule and
//! whether flannel masquerades. This is the file k3s would have written had it
//! not failed.

use ipnet::IpNet;

use crate::net_conf::NetConf;
use crate::subnet_env::{Problem, SubnetEnv, first_host};

/// Where the MTU comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtu {
    /// The MTU of the interface flannel sends over; the backend's
    /// encapsulation overhead is taken off (vxlan −50, wireguard −80, ...).
    Underlay(u32),
    /// The overlay MTU itself, used as is: the live `flannel.1` MTU, a
    /// previous subnet.env's value, or an operator's override.
    Overlay(u32),
}

/// Why no file could be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// net-conf enables a family the Node has no podCIDR for.
    #[error(
        "the node has no {family} podCIDR (spec.podCIDRs = [{have}]) but net-conf.json enables {family}; \
         the node IPAM controller has not assigned one yet (look for a CIDRNotAvailable event on the node)"
    )]
    NoPodCidr {
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The podCIDRs the node has.
        have: String,
    },
    /// The podCIDR is not inside the cluster network.
    #[error("podCIDR {pod_cidr} is outside the cluster network(s) {networks} in net-conf.json")]
    OutsideNetwork {
        /// The node's podCIDR.
        pod_cidr: IpNet,
        /// The configured networks.
        networks: String,
    },
    /// The podCIDR has no room for the gateway address.
    #[error("podCIDR {0} is too small to hold a gateway address")]
    TooSmall(IpNet),
    /// The backend's overhead is unknown, so the MTU can't be computed from the underlay.
    #[error(
        "the MTU overhead of backend {0:?} is unknown; pass the overlay MTU explicitly (--mtu) or bring up flannel.1 first"
    )]
    UnknownOverhead(String),
    /// The result would be invalid (an MTU out of range, most likely).
    #[error("the derived subnet.env would be invalid: {}", join(.0))]
    Invalid(Vec<Problem>),
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Derives the node's subnet.env.
///
/// `pod_cidrs` is the Node's `spec.podCIDRs` (or `[spec.podCIDR]` on old
/// clusters); the first CIDR of each enabled family is the node's lease.
/// `ipmasq` is what flannel runs with (`true` on k3s).
pub fn derive(
    pod_cidrs: &[IpNet],
    net_conf: &NetConf,
    mtu: Mtu,
    ipmasq: bool,
) -> Result<SubnetEnv, Error> {
    let have = || {
        pod_cidrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let lease = |v6: bool, family: &'static str, networks: &[IpNet]| -> Result<IpNet, Error> {
        let pod_cidr = pod_cidrs
            .iter()
            .find(|c| matches!(c, IpNet::V6(_)) == v6)
            .ok_or_else(|| Error::NoPodCidr {
                family,
                have: have(),
            })?
            .trunc();
        if !networks.iter().any(|n| n.contains(&pod_cidr)) {
            return Err(Error::OutsideNetwork {
                pod_cidr,
                networks: networks
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            });
        }
        first_host(pod_cidr).ok_or(Error::TooSmall(pod_cidr))
    };

    let mut env = SubnetEnv {
        ipmasq: Some(ipmasq),
        ..SubnetEnv::default()
    };
    if net_conf.enable_ipv4 {
        env.subnet = Some(lease(false, "IPv4", &net_conf.networks)?);
        env.networks = net_conf.networks.clone();
    }
    if net_conf.enable_ipv6 {
        env.ipv6_subnet = Some(lease(true, "IPv6", &net_conf.ipv6_networks)?);
        env.ipv6_networks = net_conf.ipv6_networks.clone();
    }
    env.mtu = Some(match mtu {
        Mtu::Overlay(mtu) => mtu,
        Mtu::Underlay(link) => {
            let overhead = net_conf
                .backend
                .mtu_overhead()
                .ok_or_else(|| Error::UnknownOverhead(net_conf.backend.kind.clone()))?;
            link.saturating_sub(overhead)
        }
    });
    env.validate().map_err(Error::Invalid)?;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(json: &str) -> NetConf {
        NetConf::parse(json.as_bytes()).expect("test net-conf parses")
    }

    fn cidrs(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|c| c.parse().expect("test CIDR")).collect()
    }

    const V4: &str = r#"{"Network":"10.42.0.0/16","Backend":{"Type":"vxlan"}}"#;

    #[test]
    fn incident_node_boromir() {
        let env = derive(
            &cidrs(&["10.42.0.0/24"]),
            &conf(V4),
            Mtu::Underlay(1500),
            true,
        )
        .expect("derives");
        assert_eq!(
            env.render(),
            "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
    }

    #[test]
    fn mtu_rules_per_backend() {
        let cases = [
            ("vxlan", 1450),
            ("wireguard", 1420),
            ("host-gw", 1500),
            ("udp", 1472),
            ("ipip", 1480),
        ];
        for (backend, want) in cases {
            let conf = conf(&format!(
                r#"{{"Network":"10.42.0.0/16","Backend":{{"Type":"{backend}"}}}}"#
            ));
            let env = derive(&cidrs(&["10.42.3.0/24"]), &conf, Mtu::Underlay(1500), true)
                .expect("derives");
            assert_eq!(env.mtu, Some(want), "{backend}");
        }
        let live = derive(
            &cidrs(&["10.42.3.0/24"]),
            &conf(V4),
            Mtu::Overlay(8950),
            true,
        )
        .expect("derives");
        assert_eq!(live.mtu, Some(8950));
    }

    #[test]
    fn unknown_backend_needs_an_overlay_mtu() {
        let conf = conf(r#"{"Network":"10.42.0.0/16","Backend":{"Type":"extension"}}"#);
        assert_eq!(
            derive(&cidrs(&["10.42.3.0/24"]), &conf, Mtu::Underlay(1500), true),
            Err(Error::UnknownOverhead("extension".into()))
        );
        assert!(derive(&cidrs(&["10.42.3.0/24"]), &conf, Mtu::Overlay(1400), true).is_ok());
    }

    #[test]
    fn dual_stack_and_v6_only() {
        let dual = conf(
            r#"{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"vxlan"}}"#,
        );
        let env = derive(
            &cidrs(&["10.42.0.0/24", "2001:cafe:42::/64"]),
            &dual,
            Mtu::Underlay(1500),
            true,
        )
        .expect("derives");
        assert_eq!(
            env.render(),
            "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
        let v6 = conf(
            r#"{"Network":"0.0.0.0/0","EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"vxlan"}}"#,
        );
        let env = derive(
            &cidrs(&["2001:cafe:42:1::/64"]),
            &v6,
            Mtu::Underlay(1500),
            false,
        )
        .expect("derives");
        assert_eq!(
            env.render(),
            "FLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
        );
    }

    #[test]
    fn missing_or_foreign_pod_cidr_is_explained() {
        let err = derive(&[], &conf(V4), Mtu::Underlay(1500), true).expect_err("no podCIDR");
        assert!(err.to_string().contains("CIDRNotAvailable"), "{err}");
        let err = derive(
            &cidrs(&["10.99.0.0/24"]),
            &conf(V4),
            Mtu::Underlay(1500),
            true,
        )
        .expect_err("outside");
        assert!(matches!(err, Error::OutsideNetwork { .. }));
        let err = derive(
            &cidrs(&["10.42.0.0/32"]),
            &conf(V4),
            Mtu::Underlay(1500),
            true,
        )
        .expect_err("too small");
        assert!(matches!(err, Error::TooSmall(_)));
        let err = derive(
            &cidrs(&["10.42.0.0/24"]),
            &conf(V4),
            Mtu::Underlay(60),
            true,
        )
        .expect_err("tiny MTU");
        assert!(matches!(err, Error::Invalid(_)));
    }

    #[test]
    fn host_bits_of_pod_cidr_are_ignored() {
        let env = derive(
            &cidrs(&["10.42.7.9/24"]),
            &conf(V4),
            Mtu::Underlay(1500),
            true,
        )
        .expect("derives");
        assert_eq!(env.subnet, Some("10.42.7.1/24".parse().expect("cidr")));
    }
}
