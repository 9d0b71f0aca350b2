//! flannel: the plugin reads `/run/flannel/subnet.env`, which flanneld (or
//! k3s's embedded flannel) writes at start. A reboot wipes it with the
//! tmpfs; until it is written again every sandbox on the node fails.
//!
//! Wordings: the plugin's old `loadFlannelSubnetEnv failed: open
//! /run/flannel/subnet.env: no such file or directory`, its new `failed to
//! load flannel 'subnet.env' file: ...`, and Multus waiting for the same
//! file as its default network's readiness indicator.

use super::{Sandbox, has, k3s_service};
use crate::escape::shell as sh;
use crate::fix::Fix;
use crate::snapshot::Snapshot;

pub(super) fn classify(message: &str) -> Option<Sandbox> {
    if !has(message, &["subnet.env"]) {
        return None;
    }
    // Multus polls for the file and never says why it is absent: absent it is.
    let missing = has(
        message,
        &[
            "no such file or directory",
            "cannot find the file",
            "not exist",
            "readinessindicatorfile",
        ],
    );
    Some(if missing {
        Sandbox::FlannelSubnetEnvMissing
    } else {
        Sandbox::FlannelSubnetEnvInvalid
    })
}

pub(super) fn fix(cause: &Sandbox, nodes: &[String], snapshot: &Snapshot) -> Option<Vec<Fix>> {
    if !matches!(
        cause,
        Sandbox::FlannelSubnetEnvMissing | Sandbox::FlannelSubnetEnvInvalid
    ) {
        return None;
    }
    let mut fix = Vec::new();
    for n in nodes {
        let node = snapshot.nodes.iter().find(|x| x.name() == n);
        let cidr = node.map(|x| x.spec.pod_cidr.as_str()).unwrap_or("");
        let hint = gateway(cidr)
            .map(|g| format!(" (podCIDR {cidr} → FLANNEL_SUBNET={g})"))
            .unwrap_or_default();
        fix.push(Fix::on_node(
            n,
            format!("put back a validated /run/flannel/subnet.env on {n}{hint}"),
            "rebootguard node restore",
        ));
        match node.and_then(k3s_service) {
            Some(service) => fix.push(Fix::on_node(
                n,
                format!("restart {service} on {n} so its embedded flannel brings up flannel.1"),
                format!("systemctl restart {service}"),
            )),
            None => fix.push(Fix::cluster(
                format!("restart the flannel pod on {n} so it brings up flannel.1"),
                format!(
                    "kubectl delete pod -A -l app=flannel --field-selector spec.nodeName={}",
                    sh(n)
                ),
            )),
        }
    }
    Some(fix)
}

/// `10.42.0.0/24` → `10.42.0.1/24`.
fn gateway(cidr: &str) -> Option<String> {
    let (addr, len) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = addr.parse().ok()?;
    let next = std::net::Ipv4Addr::from(u32::from(ip).checked_add(1)?);
    Some(format!("{next}/{len}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wording_of_a_missing_file() {
        for m in [
            "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory",
            "plugin type=\"flannel\" failed (add): failed to load flannel 'subnet.env' file: open /run/flannel/subnet.env: no such file or directory. Check the flannel pod log for this node.",
            "Multus: [default/web-1/0f3c]: have you checked that your default network is ready? still waiting for readinessindicatorfile @ /run/flannel/subnet.env. pollimmediate error: timed out waiting for the condition",
        ] {
            assert_eq!(classify(m), Some(Sandbox::FlannelSubnetEnvMissing), "{m}");
        }
    }

    #[test]
    fn a_file_without_its_keys_is_invalid_and_others_are_not_flannels() {
        assert_eq!(
            classify("loadFlannelSubnetEnv failed: /run/flannel/subnet.env is missing FLANNEL_MTU"),
            Some(Sandbox::FlannelSubnetEnvInvalid)
        );
        assert_eq!(classify("plugin type=\"calico\" failed (add)"), None);
    }

    #[test]
    fn the_gateway_is_the_first_address() {
        assert_eq!(gateway("10.42.3.0/24").as_deref(), Some("10.42.3.1/24"));
        assert_eq!(gateway("fd00::/64"), None);
    }
}
