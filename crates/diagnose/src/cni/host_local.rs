//! host-local IPAM (flannel's and the bridge plugin's): one file per
//! address under `/var/lib/cni/networks/<network>/`. An unclean reboot
//! leaves the files of pods that no longer exist, and once the range is
//! full every sandbox on the node fails.

use super::{Sandbox, has};
use crate::escape::shell as sh;
use crate::fix::Fix;
use crate::snapshot::Snapshot;

pub(super) fn classify(message: &str) -> Option<Sandbox> {
    has(
        message,
        &[
            "no ip addresses available in range set",
            "no ip addresses available in network",
        ],
    )
    .then_some(Sandbox::HostLocalExhausted)
}

pub(super) fn fix(cause: &Sandbox, nodes: &[String], snapshot: &Snapshot) -> Option<Vec<Fix>> {
    if *cause != Sandbox::HostLocalExhausted {
        return None;
    }
    let mut fix = Vec::new();
    for n in nodes {
        let service = super::kubelet_service(snapshot, n);
        fix.push(Fix::cluster(
            format!("drain {n}"),
            format!(
                "kubectl drain {} --ignore-daemonsets --delete-emptydir-data",
                sh(n)
            ),
        ));
        fix.push(Fix::on_node(
            n,
            format!("drop the leaked host-local leases on {n} (no pods run there after the drain)"),
            format!(
                "systemctl stop {service} && rm -f /var/lib/cni/networks/cbr0/[0-9]* && systemctl start {service}"
            ),
        ));
        fix.push(Fix::cluster(
            format!("uncordon {n}"),
            format!("kubectl uncordon {}", sh(n)),
        ));
    }
    Some(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_range() {
        assert_eq!(
            classify(
                "plugin type=\"host-local\" failed (add): failed to allocate for range 0: no IP addresses available in range set: 10.42.1.1-10.42.1.254"
            ),
            Some(Sandbox::HostLocalExhausted)
        );
        assert_eq!(
            classify("failed to allocate for range 0: permission denied"),
            None
        );
    }
}
