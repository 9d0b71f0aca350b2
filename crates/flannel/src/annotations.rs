//! What flannel announces about a node on its Node object, read back.
//!
//! In kube-subnet-manager mode (k3s, kube-flannel) each node's flannel writes
//! annotations under `flannel.alpha.coreos.com/`: the backend type, the
//! backend data (`{"VNI":1,"VtepMAC":"aa:bb:.."}` for vxlan), the public IP its
//! peers tunnel to, and `kube-subnet-manager: "true"`. Every other node
//! programs its FDB entry, neighbour and route for this one from them, and a
//! node without `kube-subnet-manager` gets no routes from its peers. So these
//! values are both what this node must match (its `flannel.1` MAC and local
//! IP) and what its peers' kernel entries must match.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The prefix of every flannel annotation.
pub const PREFIX: &str = "flannel.alpha.coreos.com/";

/// A MAC address, printed `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Text that is not `xx:xx:xx:xx:xx:xx` in hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address")]
pub struct NotAMac(pub String);

impl FromStr for Mac {
    type Err = NotAMac;
    fn from_str(text: &str) -> Result<Mac, NotAMac> {
        let mut out = [0u8; 6];
        let mut parts = text.split(':');
        let not_a_mac = || NotAMac(text.to_owned());
        for byte in &mut out {
            *byte = parts
                .next()
                .filter(|p| p.len() == 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(not_a_mac)?;
        }
        match parts.next() {
            None => Ok(Mac(out)),
            Some(_) => Err(not_a_mac()),
        }
    }
}

impl Mac {
    /// The MAC in a kernel byte slice, if it is one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Mac> {
        bytes.try_into().ok().map(Mac)
    }
}

/// `backend-data` of the vxlan backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendData {
    /// `VNI`.
    pub vni: Option<u32>,
    /// `VtepMAC`: the MAC of the node's `flannel.1`.
    pub vtep_mac: Option<Mac>,
}

#[derive(Deserialize)]
struct RawBackendData {
    #[serde(rename = "VNI", alias = "vni")]
    vni: Option<u32>,
    #[serde(rename = "VtepMAC", alias = "vtepMAC", alias = "vtepmac")]
    vtep_mac: Option<String>,
}

/// One address family's announcement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Family {
    /// `backend-data` (or `backend-v6-data`).
    pub data: Option<BackendData>,
    /// `public-ip` (or `public-ipv6`): where peers send this node's tunnel traffic.
    pub public_ip: Option<IpAddr>,
}

/// Everything a node's flannel announced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Announcement {
    /// `backend-type` (`vxlan`, `host-gw`, `wireguard`...).
    pub backend_type: Option<String>,
    /// `kube-subnet-manager: "true"`: flannel runs there in this mode, so
    /// peers program entries for it.
    pub subnet_manager: bool,
    /// IPv4.
    pub v4: Family,
    /// IPv6.
    pub v6: Family,
    /// Values present but unreadable, each naming the annotation.
    pub problems: Vec<String>,
}

impl Announcement {
    /// Reads the flannel annotations out of a Node's annotations.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Announcement {
        let get = |key: &str| annotations.get(&format!("{PREFIX}{key}"));
        let mut problems = Vec::new();
        let mut data = |key: &str| {
            let text = get(key)?;
            match serde_json::from_str::<RawBackendData>(text) {
                Ok(raw) => {
                    let vtep_mac = raw.vtep_mac.and_then(|m| match m.parse::<Mac>() {
                        Ok(mac) => Some(mac),
                        Err(e) => {
                            problems.push(format!("{PREFIX}{key}: {e}"));
                            None
                        }
                    });
                    Some(BackendData {
                        vni: raw.vni,
                        vtep_mac,
                    })
                }
                Err(e) => {
                    problems.push(format!("{PREFIX}{key} is not valid backend data: {e}"));
                    None
                }
            }
        };
        let v4_data = data("backend-data");
        let v6_data = data("backend-v6-data");
        let mut ip = |key: &str| {
            let text = get(key)?;
            match text.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    problems.push(format!("{PREFIX}{key} = {text:?} is not an IP address"));
                    None
                }
            }
        };
        let v4_ip = ip("public-ip");
        let v6_ip = ip("public-ipv6");
        Announcement {
            backend_type: get("backend-type").map(|t| t.to_ascii_lowercase()),
            subnet_manager: get("kube-subnet-manager").is_some_and(|v| v == "true"),
            v4: Family {
                data: v4_data,
                public_ip: v4_ip,
            },
            v6: Family {
                data: v6_data,
                public_ip: v6_ip,
            },
            problems,
        }
    }
}

/// Keeps only flannel's annotations (what the checks need of a Node).
pub fn flannel_only(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    annotations
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_what_k3s_writes() {
        let a = Announcement::from_annotations(&annotations(&[
            ("backend-type", "vxlan"),
            ("backend-data", r#"{"VNI":1,"VtepMAC":"0a:58:AC:1f:00:02"}"#),
            ("kube-subnet-manager", "true"),
            ("public-ip", "172.31.0.2"),
        ]));
        assert_eq!(a.backend_type.as_deref(), Some("vxlan"));
        assert!(a.subnet_manager);
        let data = a.v4.data.expect("backend data");
        assert_eq!(data.vni, Some(1));
        assert_eq!(
            data.vtep_mac.map(|m| m.to_string()).as_deref(),
            Some("0a:58:ac:1f:00:02")
        );
        assert_eq!(a.v4.public_ip, Some(IpAddr::from([172, 31, 0, 2])));
        assert_eq!(a.v6, Family::default());
        assert!(a.problems.is_empty());
    }

    #[test]
    fn bad_values_are_named_not_fatal() {
        let a = Announcement::from_annotations(&annotations(&[
            ("backend-data", r#"{"VNI":1,"VtepMAC":"zz"}"#),
            ("public-ip", "not-an-ip"),
            ("kube-subnet-manager", "yes"),
        ]));
        assert!(!a.subnet_manager, "only \"true\" counts");
        assert_eq!(a.v4.data.and_then(|d| d.vtep_mac), None);
        assert_eq!(a.problems.len(), 2, "{:?}", a.problems);
        assert!(a.problems[1].contains("public-ip"), "{:?}", a.problems);
        let broken = Announcement::from_annotations(&annotations(&[("backend-data", "{")]));
        assert!(broken.problems[0].contains("backend-data"));
    }

    #[test]
    fn macs_round_trip_and_refuse_garbage() {
        let mac: Mac = "0a:58:ac:1f:00:01".parse().expect("mac");
        assert_eq!(mac.to_string(), "0a:58:ac:1f:00:01");
        assert_eq!(Mac::from_bytes(&mac.0), Some(mac));
        for bad in [
            "0a:58",
            "0a:58:ac:1f:00:01:02",
            "0a:58:ac:1f:00:g1",
            "a:58:ac:1f:00:01",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        assert_eq!(Mac::from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn only_flannel_keys_are_kept() {
        let mut all = annotations(&[("public-ip", "172.31.0.2")]);
        all.insert("k3s.io/node-args".into(), "[\"server\"]".into());
        let kept = flannel_only(&all);
        assert_eq!(kept.len(), 1);
    }
}
