//! `net-conf.json`: the cluster-wide flannel configuration k3s writes on
//! every start and kube-flannel mounts from its ConfigMap.
//!
//! flannel decodes it with Go's `encoding/json`, which matches object keys
//! case-insensitively; so do we, so a file flannel accepts is never refused here.

use ipnet::IpNet;
use serde_json::{Map, Value};

/// Where k3s writes it.
pub const K3S_PATH: &str = "/var/lib/rancher/k3s/agent/etc/flannel/net-conf.json";
/// Where the kube-flannel DaemonSet mounts it.
pub const KUBE_FLANNEL_PATH: &str = "/etc/kube-flannel/net-conf.json";

/// The parts of `net-conf.json` that decide what subnet.env holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConf {
    /// IPv4 cluster networks (`Networks`, else `Network`).
    pub networks: Vec<IpNet>,
    /// IPv6 cluster networks (`IPv6Networks`, else `IPv6Network`).
    pub ipv6_networks: Vec<IpNet>,
    /// `EnableIPv4` (flannel's default: true).
    pub enable_ipv4: bool,
    /// `EnableIPv6` (default: false).
    pub enable_ipv6: bool,
    /// `Backend`.
    pub backend: Backend,
}

/// The `Backend` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `Backend.Type`, lower-cased (flannel's default when absent: `udp`).
    pub kind: String,
    /// `Backend.VNI` when set (vxlan's default is 1).
    pub vni: Option<u32>,
    /// `Backend.Port` when set and not 0 (vxlan's default, 0, lets the
    /// kernel pick 8472).
    pub port: Option<u16>,
}

impl Backend {
    /// Bytes the backend's encapsulation takes from the underlay MTU, as
    /// flannel computes the overlay MTU; `None` when not known for this type.
    pub fn mtu_overhead(&self) -> Option<u32> {
        match self.kind.as_str() {
            "vxlan" => Some(50),
            "wireguard" | "wireguard-native" => Some(80),
            "host-gw" | "alloc" => Some(0),
            "udp" => Some(28),
            "ipip" => Some(20),
            _ => None,
        }
    }

    /// The VXLAN network identifier `flannel.1` gets.
    pub fn vxlan_vni(&self) -> u32 {
        self.vni.unwrap_or(1)
    }

    /// The VXLAN UDP port `flannel.1` gets (the kernel's 8472 unless set).
    pub fn vxlan_port(&self) -> u16 {
        self.port.unwrap_or(8472)
    }
}

/// Why a net-conf.json could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not JSON at all.
    #[error("net-conf.json is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("net-conf.json must be a JSON object, found {0}")]
    NotObject(&'static str),
    /// A network field that is not a CIDR string (or list of them).
    #[error("net-conf.json field {field} = {value} is not a CIDR of the right address family")]
    BadNetwork {
        /// The field.
        field: &'static str,
        /// The value as JSON.
        value: String,
    },
    /// A boolean field that is not a boolean.
    #[error("net-conf.json field {field} = {value} is not true or false")]
    BadBool {
        /// The field.
        field: &'static str,
        /// The value as JSON.
        value: String,
    },
    /// A backend number (`VNI`, `Port`) out of range or not a number.
    #[error("net-conf.json field Backend.{field} = {value} is not a valid number")]
    BadNumber {
        /// The field.
        field: &'static str,
        /// The value as JSON.
        value: String,
    },
    /// `Backend.Type` not a string.
    #[error("net-conf.json Backend.Type = {0} is not a string")]
    BadBackend(String),
    /// IPv4 enabled with no IPv4 network.
    #[error("net-conf.json enables IPv4 but sets no Network (e.g. \"Network\": \"10.42.0.0/16\")")]
    NoNetwork,
    /// IPv6 enabled with no IPv6 network.
    #[error("net-conf.json enables IPv6 but sets no IPv6Network")]
    NoIpv6Network,
    /// Both families disabled.
    #[error("net-conf.json disables both IPv4 and IPv6")]
    NoFamily,
}

impl NetConf {
    /// Parses the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<NetConf, Error> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::Json(e.to_string()))?;
        let Value::Object(object) = value else {
            return Err(Error::NotObject(kind_of(&value)));
        };
        let enable_ipv4 = boolean(&object, "EnableIPv4")?.unwrap_or(true);
        let enable_ipv6 = boolean(&object, "EnableIPv6")?.unwrap_or(false);
        let ipv6_networks = cidr_list(&object, "IPv6Networks", "IPv6Network", true)?;
        let networks = cidr_list(&object, "Networks", "Network", false)?;
        let backend = match field(&object, "Backend").and_then(|b| b.as_object()) {
            None => Backend {
                kind: "udp".to_owned(),
                vni: None,
                port: None,
            },
            Some(backend) => Backend {
                kind: match field(backend, "Type") {
                    None | Some(Value::Null) => "udp".to_owned(),
                    Some(Value::String(kind)) => kind.to_ascii_lowercase(),
                    Some(other) => return Err(Error::BadBackend(other.to_string())),
                },
                vni: number(backend, "VNI")?,
                port: number(backend, "Port")?.filter(|p| *p != 0),
            },
        };
        if !enable_ipv4 && !enable_ipv6 {
            return Err(Error::NoFamily);
        }
        if enable_ipv4 && networks.is_empty() {
            return Err(Error::NoNetwork);
        }
        if enable_ipv6 && ipv6_networks.is_empty() {
            return Err(Error::NoIpv6Network);
        }
        Ok(NetConf {
            networks,
            ipv6_networks,
            enable_ipv4,
            enable_ipv6,
            backend,
        })
    }

    /// The file as k3s writes it (one `Network`, the backend's `Type`),
    /// with what k3s leaves out written only when set: more than one
    /// network as `Networks`, the backend's `VNI` and `Port`. Parsing the
    /// result gives this configuration back.
    pub fn render(&self) -> String {
        let mut object = Map::new();
        let mut networks = |one: &str, many: &str, nets: &[IpNet]| match nets {
            [] => {}
            [net] => {
                object.insert(one.to_owned(), Value::from(net.to_string()));
            }
            nets => {
                let list = nets.iter().map(|n| Value::from(n.to_string())).collect();
                object.insert(many.to_owned(), Value::Array(list));
            }
        };
        networks("Network", "Networks", &self.networks);
        networks("IPv6Network", "IPv6Networks", &self.ipv6_networks);
        object.insert("EnableIPv6".to_owned(), Value::from(self.enable_ipv6));
        object.insert("EnableIPv4".to_owned(), Value::from(self.enable_ipv4));
        let mut backend = Map::new();
        backend.insert("Type".to_owned(), Value::from(self.backend.kind.clone()));
        if let Some(vni) = self.backend.vni {
            backend.insert("VNI".to_owned(), Value::from(vni));
        }
        if let Some(port) = self.backend.port {
            backend.insert("Port".to_owned(), Value::from(port));
        }
        object.insert("Backend".to_owned(), Value::Object(backend));
        let mut text = serde_json::to_string_pretty(&Value::Object(object))
            .unwrap_or_else(|_| String::from("{}"));
        text.push('\n');
        text
    }
}

/// Go's decoder prefers an exact key match, then any case-insensitive one.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn boolean(object: &Map<String, Value>, name: &'static str) -> Result<Option<bool>, Error> {
    match field(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Error::BadBool {
            field: name,
            value: other.to_string(),
        }),
    }
}

/// An unsigned number field of the backend block (`VNI`, `Port`).
fn number<T: TryFrom<u64>>(
    object: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<T>, Error> {
    match field(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Error::BadNumber {
                field: name,
                value: value.to_string(),
            }),
    }
}

/// The list field when present and non-empty, else the single one. k3s
/// writes `0.0.0.0/0` / `::/0` as placeholders for a disabled family; those
/// mean "none".
fn cidr_list(
    object: &Map<String, Value>,
    list: &'static str,
    single: &'static str,
    v6: bool,
) -> Result<Vec<IpNet>, Error> {
    let cidr = |field: &'static str, value: &Value| -> Result<Option<IpNet>, Error> {
        let bad = || Error::BadNetwork {
            field,
            value: value.to_string(),
        };
        match value {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => {
                let net: IpNet = s.parse().map_err(|_| bad())?;
                if matches!(net, IpNet::V6(_)) != v6 {
                    return Err(bad());
                }
                Ok((net.prefix_len() != 0).then_some(net))
            }
            _ => Err(bad()),
        }
    };
    if let Some(value) = field(object, list) {
        match value {
            Value::Array(items) if !items.is_empty() => {
                return items
                    .iter()
                    .filter_map(|item| cidr(list, item).transpose())
                    .collect();
            }
            Value::Array(_) | Value::Null => {}
            other => {
                return Err(Error::BadNetwork {
                    field: list,
                    value: other.to_string(),
                });
            }
        }
    }
    Ok(match field(object, single) {
        Some(value) => cidr(single, value)?.into_iter().collect(),
        None => Vec::new(),
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_k3s_default() {
        let conf = NetConf::parse(
            br#"{
	"Network": "10.42.0.0/16",
	"EnableIPv6": false,
	"EnableIPv4": true,
	"IPv6Network": "::/0",
	"Backend": {
	"Type": "vxlan"
}
}"#,
        )
        .expect("k3s default parses");
        assert_eq!(
            conf.networks,
            vec!["10.42.0.0/16".parse::<IpNet>().unwrap()]
        );
        assert!(conf.ipv6_networks.is_empty());
        assert!(conf.enable_ipv4 && !conf.enable_ipv6);
        assert_eq!(conf.backend.kind, "vxlan");
        assert_eq!(conf.backend.mtu_overhead(), Some(50));
    }

    #[test]
    fn keys_match_case_insensitively_like_go() {
        let conf = NetConf::parse(br#"{"network":"10.1.0.0/16","backend":{"type":"host-gw"}}"#)
            .expect("lower-case keys parse");
        assert_eq!(conf.networks[0].to_string(), "10.1.0.0/16");
        assert_eq!(conf.backend.kind, "host-gw");
    }

    #[test]
    fn vxlan_vni_and_port_default_like_flannel() {
        let conf = NetConf::parse(br#"{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}"#)
            .expect("parses");
        assert_eq!(
            (conf.backend.vxlan_vni(), conf.backend.vxlan_port()),
            (1, 8472)
        );
        let conf = NetConf::parse(
            br#"{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","vni":4096,"Port":4789}}"#,
        )
        .expect("parses");
        assert_eq!(
            (conf.backend.vxlan_vni(), conf.backend.vxlan_port()),
            (4096, 4789)
        );
        let zero =
            NetConf::parse(br#"{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","Port":0}}"#)
                .expect("parses");
        assert_eq!(zero.backend.vxlan_port(), 8472);
        assert!(matches!(
            NetConf::parse(br#"{"Network":"10.1.0.0/16","Backend":{"Port":70000}}"#),
            Err(Error::BadNumber { field: "Port", .. })
        ));
    }

    #[test]
    fn defaults_follow_flannel() {
        let conf = NetConf::parse(br#"{"Network":"10.244.0.0/16"}"#).expect("minimal parses");
        assert!(conf.enable_ipv4 && !conf.enable_ipv6);
        assert_eq!(conf.backend.kind, "udp");
    }

    #[test]
    fn networks_list_wins_over_single() {
        let conf = NetConf::parse(
            br#"{"Network":"10.1.0.0/16","Networks":["10.2.0.0/16","10.3.0.0/16"]}"#,
        )
        .expect("parses");
        assert_eq!(conf.networks.len(), 2);
        assert_eq!(conf.networks[0].to_string(), "10.2.0.0/16");
    }

    #[test]
    fn dual_stack_and_v6_only() {
        let dual = NetConf::parse(
            br#"{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"vxlan"}}"#,
        )
        .expect("dual");
        assert_eq!(dual.ipv6_networks[0].to_string(), "2001:cafe:42::/56");
        let v6 = NetConf::parse(
            br#"{"Network":"0.0.0.0/0","EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56"}"#,
        )
        .expect("v6 only");
        assert!(v6.networks.is_empty());
    }

    #[test]
    fn bad_input_is_named() {
        assert!(matches!(NetConf::parse(b"{"), Err(Error::Json(_))));
        assert_eq!(NetConf::parse(b"[]"), Err(Error::NotObject("an array")));
        assert_eq!(NetConf::parse(b"{}"), Err(Error::NoNetwork));
        assert!(matches!(
            NetConf::parse(br#"{"Network":"10.42.0.0"}"#),
            Err(Error::BadNetwork {
                field: "Network",
                ..
            })
        ));
        assert!(matches!(
            NetConf::parse(br#"{"Network":"fd00::/8"}"#),
            Err(Error::BadNetwork { .. })
        ));
        assert!(matches!(
            NetConf::parse(br#"{"Network":"10.42.0.0/16","EnableIPv6":"yes"}"#),
            Err(Error::BadBool { .. })
        ));
        assert_eq!(
            NetConf::parse(br#"{"Network":"10.42.0.0/16","EnableIPv6":true}"#),
            Err(Error::NoIpv6Network)
        );
        assert_eq!(
            NetConf::parse(br#"{"EnableIPv4":false}"#),
            Err(Error::NoFamily)
        );
    }

    #[test]
    fn render_round_trips() {
        let conf = NetConf::parse(br#"{"Network":"10.42.0.0/16","Backend":{"Type":"vxlan"}}"#)
            .expect("parses");
        assert_eq!(NetConf::parse(conf.render().as_bytes()), Ok(conf));
    }

    #[test]
    fn render_keeps_everything_parse_reads() {
        // Found by fuzzing: a backend type with a backslash was written
        // unescaped, and VNI, Port and a second network were dropped.
        let text = br#"{"Networks":["10.42.0.0/16","10.99.0.0/16"],"IPv6Network":"::/0",
            "Backend":{"Type":"vxlan\\\"x","VNI":4097,"Port":4789}}"#;
        let conf = NetConf::parse(text).expect("parses");
        assert_eq!(conf.backend.kind, "vxlan\\\"x");
        assert_eq!(NetConf::parse(conf.render().as_bytes()), Ok(conf));
    }
}
