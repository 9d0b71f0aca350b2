//! What the container runtime and kubelet say whatever the CNI: no network
//! configuration yet, a plugin binary missing, no podCIDR for the node; and
//! the fixes for those, for the agent's `PodNetworkNotReady`, and for an
//! error no rule knows.

use super::{Sandbox, has};
use crate::fix::Fix;
use crate::snapshot::Snapshot;

pub(super) fn classify(message: &str) -> Option<Sandbox> {
    if let Some(plugin) = missing_plugin(message) {
        return Some(Sandbox::CniPluginMissing { plugin });
    }
    if has(
        message,
        &[
            "cni plugin not initialized",
            "cni config uninitialized",
            "no networks found in /etc/cni/net.d",
            "no valid networks found in",
            "networkpluginnotready",
            "network plugin is not ready",
        ],
    ) {
        return Some(Sandbox::CniNotInitialized);
    }
    if has(message, &["podcidr", "no pod cidr", "cidrnotavailable"]) {
        return Some(Sandbox::PodCidrNotAssigned);
    }
    None
}

/// `failed to find plugin "flannel" in path [...]` → `flannel`.
fn missing_plugin(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("failed to find plugin")?;
    let rest = &message[at + "failed to find plugin".len()..];
    let name = rest
        .trim_start()
        .trim_start_matches(['"', '\\'])
        .split(['"', '\\', ' '])
        .next()
        .unwrap_or("");
    Some(name.to_string())
}

/// The part of a sandbox error that says what failed, the same for every
/// pod it hits: after the (innermost) `failed to setup network for sandbox
/// "<id>": ` when present, IDs (long hex runs) blanked, one line, bounded.
pub(super) fn essence(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let mut text = message;
    for marker in [
        "failed to setup network for sandbox",
        "failed to set up pod",
    ] {
        if let Some(at) = lower.rfind(marker) {
            let rest = &message[at + marker.len()..];
            // Skip the quoted sandbox ID and the colon after it.
            text = rest.split_once(": ").map(|(_, tail)| tail).unwrap_or(rest);
            break;
        }
    }
    let mut out = String::with_capacity(text.len().min(200));
    let mut hex_run = String::new();
    let flush = |out: &mut String, run: &mut String| {
        if run.len() >= 12 {
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.lines().next().unwrap_or("").trim().chars() {
        if c.is_ascii_hexdigit() {
            hex_run.push(c);
        } else {
            flush(&mut out, &mut hex_run);
            out.push(c);
        }
        if out.chars().count() >= 160 {
            break;
        }
    }
    flush(&mut out, &mut hex_run);
    out
}

pub(super) fn fix(cause: &Sandbox, nodes: &[String], snapshot: &Snapshot) -> Option<Vec<Fix>> {
    let mut fix = Vec::new();
    match cause {
        Sandbox::PodNetworkNotReady { .. } => {
            for n in nodes {
                let service = super::kubelet_service(snapshot, n);
                fix.push(Fix::on_node(
                    n,
                    format!("see which check fails on {n}, with its evidence and fix"),
                    "rebootguard node check",
                ));
                fix.push(Fix::on_node(
                    n,
                    format!("restart {service} on {n}: flannel rebuilds flannel.1 and every peer's entries at start"),
                    format!("systemctl restart {service}"),
                ));
            }
        }
        Sandbox::CniNotInitialized | Sandbox::CniPluginMissing { .. } | Sandbox::Other { .. } => {
            for n in nodes {
                let service = super::kubelet_service(snapshot, n);
                fix.push(Fix::on_node(
                    n,
                    format!("check the CNI on {n} with a real CNI ADD"),
                    "rebootguard node check",
                ));
                fix.push(Fix::on_node(
                    n,
                    format!("see which CNI configuration and plugins {n} has"),
                    "ls -l /etc/cni/net.d /var/lib/rancher/k3s/agent/etc/cni/net.d /opt/cni/bin 2>/dev/null",
                ));
                fix.push(Fix::on_node(
                    n,
                    "read why the CNI did not start",
                    format!("journalctl -u {service} -b | grep -iE 'flannel|cni'"),
                ));
            }
        }
        Sandbox::PodCidrNotAssigned => {
            fix.push(Fix::cluster(
                "see which nodes hold podCIDRs (deleted nodes free theirs)",
                "kubectl get nodes -o custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR",
            ));
            fix.push(Fix::cluster(
                "free CIDRs by deleting Node objects of machines that are gone, or widen --cluster-cidr / shrink --node-cidr-mask-size",
                "kubectl delete node <gone-node>",
            ));
        }
        _ => return None,
    }
    Some(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_wordings() {
        assert_eq!(
            classify("failed to find plugin \"flannel\" in path [/opt/cni/bin]"),
            Some(Sandbox::CniPluginMissing {
                plugin: "flannel".into()
            })
        );
        assert_eq!(
            classify(
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
            ),
            Some(Sandbox::CniNotInitialized)
        );
        assert_eq!(classify("something odd"), None);
    }

    #[test]
    fn the_essence_is_the_same_for_every_pod() {
        let a = essence(
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"4f1c9a2e4f1c9a2e4f1c9a2e\": plugin type=\"acme\" failed (add): lease 9a2e4f1c9a2e4f1c9a2e rejected",
        );
        let b = essence(
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"77aa0c1d77aa0c1d77aa0c1d\": plugin type=\"acme\" failed (add): lease 0c1d77aa0c1d77aa0c1d rejected",
        );
        assert_eq!(a, b);
        assert_eq!(a, "plugin type=\"acme\" failed (add): lease … rejected");
        assert!(essence(&"x".repeat(5000)).chars().count() <= 161);
    }
}
