//! Storage: faulted Longhorn volumes, CSI drivers not registered on a node
//! (caused by the failing node plugin there, or by the storage system's own
//! failing pods on the node), and Longhorn's own workloads behind its
//! faulted volumes.

use std::collections::HashSet;

use super::{Key, Run, str_at};
use crate::config::Role;
use crate::model::ObjectRef;
use crate::report::{Cause, Evidence};

/// Longhorn volumes that are faulted.
pub(super) fn faulted_longhorn_volumes(run: &mut Run<'_>) {
    let snapshot = run.snapshot;
    let Run {
        g,
        longhorn_faulted,
        ..
    } = run;
    for v in &snapshot.custom {
        if v["kind"] == "Volume" && str_at(v, &["apiVersion"]).starts_with("longhorn.io/") {
            let robustness = str_at(v, &["status", "robustness"]);
            if robustness == "faulted" {
                let name = str_at(v, &["metadata", "name"]);
                longhorn_faulted.insert(name);
                let key = Key::Longhorn(name.to_string());
                let n = g.node(&key, || format!("Longhorn volume {name} is faulted"));
                n.own = Some(Cause::LonghornVolumeFaulted);
                n.evidence.push(Evidence {
                    object: ObjectRef::new("Volume", str_at(v, &["metadata", "namespace"]), name),
                    reason: "robustness".into(),
                    message: format!(
                        "state {}, robustness faulted",
                        str_at(v, &["status", "state"])
                    ),
                    count: 1,
                    first_seen: None,
                    last_seen: None,
                });
            }
        }
    }
}

/// CSI registration per node: caused by the failing node plugin there.
pub(super) fn csi_registration(run: &mut Run<'_>) {
    let config = run.config;
    let Run {
        ix,
        g,
        csi_plugin_pods,
        node_pods,
        ..
    } = run;
    let csi_keys: Vec<Key> = g
        .nodes
        .keys()
        .filter(|k| matches!(k, Key::Csi { .. }))
        .cloned()
        .collect();
    for key in &csi_keys {
        let Key::Csi { driver, node } = key else {
            continue;
        };
        let registered = ix
            .csinode
            .get(node.as_str())
            .is_some_and(|d| d.contains(&driver.as_str()));
        if !registered && ix.csinode.contains_key(node.as_str()) {
            g.node(key, String::new).evidence.push(Evidence {
                object: ObjectRef::new("CSINode", "", node),
                reason: "DriverNotRegistered".into(),
                message: format!("CSINode {node} lists no {driver}"),
                count: 1,
                first_seen: None,
                last_seen: None,
            });
        }
        let storage_ns: Vec<&str> = config
            .components
            .iter()
            .filter(|c| matches!(&c.role, Role::Storage { driver: d } if d == driver))
            .map(|c| c.namespace.as_str())
            .collect();
        let mut linked = false;
        for (pod, wkey) in csi_plugin_pods.iter() {
            let ns_ok =
                storage_ns.is_empty() || storage_ns.contains(&pod.metadata.namespace.as_str());
            if pod.spec.node_name == *node && ns_ok {
                g.edge(wkey, key, "the CSI node plugin on this node is not running");
                linked = true;
            }
        }
        // No recognisable node plugin (no driver-registrar status, as
        // while its sandbox cannot even be created): the storage
        // system's own failing pods on the node are why it is not registered.
        if !linked && !storage_ns.is_empty() {
            for (pod, wkey) in node_pods.iter() {
                if pod.spec.node_name == *node
                    && storage_ns.contains(&pod.metadata.namespace.as_str())
                    && wkey != key
                {
                    g.edge(
                        wkey,
                        key,
                        "the storage system's pods on this node are not running",
                    );
                    linked = true;
                }
            }
        }
        if !linked {
            let n = g.node(key, String::new);
            n.own = Some(Cause::CsiDriverNotRegistered {
                driver: driver.clone(),
            });
        }
    }
}

/// Faulted Longhorn volumes: caused by failing workloads of the storage system.
pub(super) fn longhorn_causes(run: &mut Run<'_>) {
    let config = run.config;
    let Run { g, .. } = run;
    let lh_keys: Vec<Key> = g
        .nodes
        .keys()
        .filter(|k| matches!(k, Key::Longhorn(_)))
        .cloned()
        .collect();
    if !lh_keys.is_empty() {
        let storage_ns: HashSet<&str> = config
            .components
            .iter()
            .filter(
                |c| matches!(&c.role, Role::Storage { driver } if driver == "driver.longhorn.io"),
            )
            .map(|c| c.namespace.as_str())
            .collect();
        let storage_workloads: Vec<Key> = g
            .nodes
            .keys()
            .filter(|k| matches!(k, Key::Workload { namespace, .. } if storage_ns.contains(namespace.as_str())))
            .cloned()
            .collect();
        for lh in &lh_keys {
            for w in &storage_workloads {
                g.edge(w, lh, "Longhorn's own pods are not running");
            }
        }
    }
}
