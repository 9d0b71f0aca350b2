//! The network config the flannel CNI plugin hands to its delegate (the
//! `bridge` plugin) on ADD, built from the plugin's own config and subnet.env.
//!
//! With it, a test can prove a subnet.env works by running the real `bridge`
//! and `host-local` plugins exactly as flannel would, and the lab's plugin can
//! behave like upstream's.

use serde_json::{Map, Value, json};

use crate::subnet_env::SubnetEnv;

/// Why no delegate config could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The plugin config is not a JSON object.
    #[error("the flannel plugin config must be a JSON object")]
    NotObject,
    /// `delegate` or `ipam` present but not an object.
    #[error("the flannel plugin config's {0:?} must be a JSON object")]
    BadSection(&'static str),
    /// subnet.env lacks a value the delegate needs.
    #[error("subnet.env has no {0}; it cannot configure pods")]
    Incomplete(&'static str),
}

/// Builds the delegate config as the flannel CNI plugin does on ADD.
///
/// `plugin` is the flannel entry of the conflist as the runtime passes it
/// (with `name` and `cniVersion` injected). Values the operator set in its
/// `delegate` block win; the rest comes from subnet.env: `ipMasq` is the
/// negation of `FLANNEL_IPMASQ` (one of the two masquerades, never both),
/// `mtu` is `FLANNEL_MTU`, host-local gets one range per leased subnet
/// (masked) and one route per cluster network.
pub fn build(plugin: &Value, env: &SubnetEnv) -> Result<Value, Error> {
    let plugin = plugin.as_object().ok_or(Error::NotObject)?;
    let section = |name: &'static str| -> Result<Map<String, Value>, Error> {
        match plugin.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(_) => Err(Error::BadSection(name)),
        }
    };
    let mut delegate = section("delegate")?;
    let mtu = env.mtu.ok_or(Error::Incomplete("FLANNEL_MTU"))?;
    let ipmasq = env.ipmasq.ok_or(Error::Incomplete("FLANNEL_IPMASQ"))?;

    if let Some(name) = plugin.get("name") {
        delegate.insert("name".into(), name.clone());
    }
    delegate.entry("type").or_insert_with(|| json!("bridge"));
    delegate.entry("ipMasq").or_insert_with(|| json!(!ipmasq));
    delegate.entry("mtu").or_insert_with(|| json!(mtu));
    if delegate.get("type") == Some(&json!("bridge")) {
        delegate.entry("isGateway").or_insert_with(|| json!(true));
    }
    if let Some(version) = plugin.get("cniVersion").filter(|v| v.as_str() != Some("")) {
        delegate.insert("cniVersion".into(), version.clone());
    }

    let mut ipam = section("ipam")?;
    ipam.entry("type").or_insert_with(|| json!("host-local"));
    let ranges: Vec<Value> = env
        .subnet
        .iter()
        .chain(env.ipv6_subnet.iter())
        .map(|subnet| json!([{ "subnet": subnet.trunc().to_string() }]))
        .collect();
    if ranges.is_empty() {
        return Err(Error::Incomplete("FLANNEL_SUBNET or FLANNEL_IPV6_SUBNET"));
    }
    ipam.insert("ranges".into(), Value::Array(ranges));
    let mut routes = match ipam.remove("routes") {
        Some(Value::Array(routes)) => routes,
        _ => Vec::new(),
    };
    routes.extend(
        env.networks
            .iter()
            .chain(env.ipv6_networks.iter())
            .map(|network| json!({ "dst": network.to_string() })),
    );
    ipam.insert("routes".into(), Value::Array(routes));
    delegate.insert("ipam".into(), Value::Object(ipam));
    Ok(Value::Object(delegate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subnet_env::parse;

    fn k3s_plugin() -> Value {
        json!({
            "name": "cbr0",
            "cniVersion": "1.0.0",
            "type": "flannel",
            "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}
        })
    }

    #[test]
    fn k3s_dual_stack_delegate() {
        let env = parse(
            b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
        )
        .into_valid()
        .expect("valid");
        let delegate = build(&k3s_plugin(), &env).expect("builds");
        assert_eq!(
            delegate,
            json!({
                "name": "cbr0",
                "cniVersion": "1.0.0",
                "type": "bridge",
                "hairpinMode": true,
                "forceAddress": true,
                "isDefaultGateway": true,
                "isGateway": true,
                "ipMasq": false,
                "mtu": 1450,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "10.42.0.0/24"}], [{"subnet": "2001:cafe:42::/64"}]],
                    "routes": [{"dst": "10.42.0.0/16"}, {"dst": "2001:cafe:42::/56"}]
                }
            })
        );
    }

    #[test]
    fn operator_values_win() {
        let env = parse(
            b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
        )
        .into_valid()
        .expect("valid");
        let plugin = json!({"name": "cbr0", "type": "flannel", "delegate": {"mtu": 1400},
            "ipam": {"routes": [{"dst": "0.0.0.0/0"}]}});
        let delegate = build(&plugin, &env).expect("builds");
        assert_eq!(delegate["mtu"], 1400);
        assert_eq!(delegate["ipMasq"], true);
        assert_eq!(
            delegate["ipam"]["routes"],
            json!([{"dst": "0.0.0.0/0"}, {"dst": "10.42.0.0/16"}])
        );
        assert!(delegate.get("cniVersion").is_none());
    }

    #[test]
    fn incomplete_env_is_refused() {
        assert_eq!(
            build(&k3s_plugin(), &SubnetEnv::default()),
            Err(Error::Incomplete("FLANNEL_MTU"))
        );
        assert_eq!(
            build(&json!([]), &SubnetEnv::default()),
            Err(Error::NotObject)
        );
    }
}
