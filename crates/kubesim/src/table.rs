//! `meta.k8s.io/v1` Table responses, so `kubectl get` prints the columns
//! the real apiserver gives it (STATUS, READY, RESTARTS, ...).
//!
//! The column logic mirrors the apiserver's printers for pods, nodes,
//! events and leases; every other resource gets the default table (NAME,
//! CREATED AT), as the apiserver gives resources without printers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::registry::Resource;
use crate::store::{Object, Page};
use crate::time;

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

fn col(name: &str, kind: &str, format: &str, priority: u8, description: &str) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
}

fn columns(r: &Resource) -> Vec<Value> {
    let name = col(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace.",
    );
    let age = col(
        "Age",
        "string",
        "",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match (r.group.as_str(), r.plural.as_str()) {
        ("", "pods") => vec![
            name,
            col(
                "Ready",
                "string",
                "",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age,
            col(
                "IP",
                "string",
                "",
                1,
                "IP address allocated to the pod. Routable at least within the cluster.",
            ),
            col(
                "Node",
                "string",
                "",
                1,
                "Name of the Node this pod runs on.",
            ),
            col(
                "Nominated Node",
                "string",
                "",
                1,
                "nominatedNodeName is set when this pod preempts other pods on the node.",
            ),
            col(
                "Readiness Gates",
                "string",
                "",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        ("", "nodes") => vec![
            name,
            col("Status", "string", "", 0, "The status of the node"),
            col("Roles", "string", "", 0, "The roles of the node"),
            age,
            col(
                "Version",
                "string",
                "",
                0,
                "Kubelet Version reported by the node.",
            ),
            col(
                "Internal-IP",
                "string",
                "",
                1,
                "List of addresses reachable to the node.",
            ),
            col(
                "External-IP",
                "string",
                "",
                1,
                "List of addresses reachable to the node.",
            ),
            col(
                "OS-Image",
                "string",
                "",
                1,
                "OS Image reported by the node from /etc/os-release.",
            ),
            col(
                "Kernel-Version",
                "string",
                "",
                1,
                "Kernel Version reported by the node from 'uname -r'.",
            ),
            col(
                "Container-Runtime",
                "string",
                "",
                1,
                "Container runtime version reported by the node.",
            ),
        ],
        ("", "events") => vec![
            col(
                "Last Seen",
                "string",
                "",
                0,
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            col(
                "Type",
                "string",
                "",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            col(
                "Reason",
                "string",
                "",
                0,
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            col(
                "Object",
                "string",
                "",
                0,
                "The object that this event is about.",
            ),
            col(
                "Subobject",
                "string",
                "",
                1,
                "The subobject (fieldPath) of the object.",
            ),
            col(
                "Source",
                "string",
                "",
                1,
                "The component reporting this event.",
            ),
            col(
                "Message",
                "string",
                "",
                0,
                "A human-readable description of the status of this operation.",
            ),
            col(
                "First Seen",
                "string",
                "",
                1,
                "The time at which the event was first recorded.",
            ),
            col(
                "Count",
                "string",
                "",
                1,
                "The number of times this event has occurred.",
            ),
            col(
                "Name",
                "string",
                "name",
                1,
                "Name must be unique within a namespace.",
            ),
        ],
        ("coordination.k8s.io", "leases") => vec![
            name,
            col("Holder", "string", "", 0, "The holder of the lease."),
            age,
        ],
        (g, p) if simple(g, p).is_some() => simple(g, p)
            .map(|cols| {
                cols.iter()
                    .map(|(header, priority, cell)| {
                        let format = if matches!(cell, Cell::Name) {
                            "name"
                        } else {
                            ""
                        };
                        col(header, "string", format, *priority, header)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![
            name,
            col(
                "Created At",
                "date",
                "",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ],
    }
}

fn s(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn or_none(x: String) -> Value {
    if x.is_empty() {
        "<none>".into()
    } else {
        x.into()
    }
}

fn cells(r: &Resource, v: &Value) -> Vec<Value> {
    let name = s(v, "/metadata/name");
    let created = v
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str);
    match (r.group.as_str(), r.plural.as_str()) {
        ("", "pods") => pod_cells(v, name, time::age(created)),
        ("", "nodes") => node_cells(v, name, time::age(created)),
        ("", "events") => event_cells(v, name),
        ("coordination.k8s.io", "leases") => vec![
            name.into(),
            s(v, "/spec/holderIdentity").into(),
            time::age(created).into(),
        ],
        (g, p) => match simple(g, p) {
            Some(cols) => cols.iter().map(|(_, _, cell)| cell.render(v)).collect(),
            None => vec![name.into(), created.map_or(Value::Null, Value::from)],
        },
    }
}

/// How a cell of a [`simple`] table is computed from the object.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Name,
    Age,
    /// A string at a JSON pointer, `<none>` when absent.
    Str(&'static str),
    /// An integer at a JSON pointer, 0 when absent.
    Int(&'static str),
    /// An integer or percentage at a JSON pointer, `N/A` when absent.
    IntOrNa(&'static str),
    /// `a/b` from two integers.
    Ratio(&'static str, &'static str),
    /// Number of keys of a map plus entries of a second map (ConfigMap DATA).
    Keys(&'static str, &'static str),
    /// A `key=value,...` map, `<none>` when empty.
    Map(&'static str),
    /// Service ports as `80/TCP,443:30443/TCP`.
    Ports,
    /// Comma-joined string list at a pointer, `<none>` when empty.
    List(&'static str),
}

impl Cell {
    fn render(self, v: &Value) -> Value {
        let int = |p: &str| v.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        match self {
            Self::Name => s(v, "/metadata/name").into(),
            Self::Age => time::age(
                v.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str),
            )
            .into(),
            Self::Str(p) => or_none(s(v, p)),
            Self::Int(p) => int(p).to_string().into(),
            Self::IntOrNa(p) => match v.pointer(p) {
                Some(Value::Number(n)) => n.to_string().into(),
                Some(Value::String(x)) => x.clone().into(),
                _ => "N/A".into(),
            },
            Self::Ratio(a, b) => format!("{}/{}", int(a), int(b)).into(),
            Self::Keys(a, b) => {
                let n = |p: &str| {
                    v.pointer(p)
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len())
                };
                (n(a) + n(b)).to_string().into()
            }
            Self::Map(p) => or_none(
                v.pointer(p)
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            ),
            Self::Ports => or_none(
                v.pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                let proto = p["protocol"].as_str().unwrap_or("TCP");
                                match p["nodePort"].as_i64() {
                                    Some(np) => format!("{}:{np}/{proto}", p["port"]),
                                    None => format!("{}/{proto}", p["port"]),
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            ),
            Self::List(p) => or_none(
                v.pointer(p)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            ),
        }
    }
}

type Columns = &'static [(&'static str, u8, Cell)];

/// Tables that are a plain projection of fields, as data: the columns
/// `kubectl get` shows for these kinds.
fn simple(group: &str, plural: &str) -> Option<Columns> {
    use Cell::*;
    Some(match (group, plural) {
        ("", "namespaces") => &[
            ("Name", 0, Name),
            ("Status", 0, Str("/status/phase")),
            ("Age", 0, Age),
        ],
        ("", "configmaps") => &[
            ("Name", 0, Name),
            ("Data", 0, Keys("/data", "/binaryData")),
            ("Age", 0, Age),
        ],
        ("", "services") => &[
            ("Name", 0, Name),
            ("Type", 0, Str("/spec/type")),
            ("Cluster-IP", 0, Str("/spec/clusterIP")),
            ("External-IP", 0, List("/spec/externalIPs")),
            ("Port(s)", 0, Ports),
            ("Age", 0, Age),
            ("Selector", 1, Map("/spec/selector")),
        ],
        ("apps", "deployments") => &[
            ("Name", 0, Name),
            ("Ready", 0, Ratio("/status/readyReplicas", "/spec/replicas")),
            ("Up-to-date", 0, Int("/status/updatedReplicas")),
            ("Available", 0, Int("/status/availableReplicas")),
            ("Age", 0, Age),
        ],
        ("apps", "statefulsets") => &[
            ("Name", 0, Name),
            ("Ready", 0, Ratio("/status/readyReplicas", "/spec/replicas")),
            ("Age", 0, Age),
        ],
        ("apps", "replicasets") => &[
            ("Name", 0, Name),
            ("Desired", 0, Int("/spec/replicas")),
            ("Current", 0, Int("/status/replicas")),
            ("Ready", 0, Int("/status/readyReplicas")),
            ("Age", 0, Age),
        ],
        ("apps", "daemonsets") => &[
            ("Name", 0, Name),
            ("Desired", 0, Int("/status/desiredNumberScheduled")),
            ("Current", 0, Int("/status/currentNumberScheduled")),
            ("Ready", 0, Int("/status/numberReady")),
            ("Up-to-date", 0, Int("/status/updatedNumberScheduled")),
            ("Available", 0, Int("/status/numberAvailable")),
            ("Node Selector", 0, Map("/spec/template/spec/nodeSelector")),
            ("Age", 0, Age),
        ],
        ("policy", "poddisruptionbudgets") => &[
            ("Name", 0, Name),
            ("Min Available", 0, IntOrNa("/spec/minAvailable")),
            ("Max Unavailable", 0, IntOrNa("/spec/maxUnavailable")),
            ("Allowed Disruptions", 0, Int("/status/disruptionsAllowed")),
            ("Age", 0, Age),
        ],
        _ => return None,
    })
}

fn pod_cells(v: &Value, name: String, age: String) -> Vec<Value> {
    let spec_containers = v
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut reason = s(v, "/status/phase");
    if let Some(r) = v
        .pointer("/status/reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        reason = r.to_owned();
    }
    let mut restarts = 0i64;
    let mut last_restart: Option<i64> = None;
    let mut note_restart = |c: &Value, restarts: &mut i64| {
        *restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        if let Some(t) = c
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            .and_then(time::parse)
        {
            last_restart = Some(last_restart.map_or(t, |l| l.max(t)));
        }
    };
    let empty = Vec::new();
    let inits = v
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let init_count = v
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map_or(inits.len(), Vec::len);
    let mut initializing = false;
    for (i, c) in inits.iter().enumerate() {
        note_restart(c, &mut restarts);
        if let Some(t) = c.pointer("/state/terminated") {
            if t.get("exitCode").and_then(Value::as_i64) == Some(0) {
                continue;
            }
            reason = match t
                .get("reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                Some(r) => format!("Init:{r}"),
                None => match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                    Some(sig) => format!("Init:Signal:{sig}"),
                    None => format!(
                        "Init:ExitCode:{}",
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                    ),
                },
            };
        } else if let Some(r) = c
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_count}");
        }
        initializing = true;
        break;
    }
    let mut ready = 0;
    if !initializing {
        restarts = 0;
        let statuses = v
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        let mut has_running = false;
        for c in statuses.iter().rev() {
            note_restart(c, &mut restarts);
            if let Some(r) = c
                .pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                reason = r.to_owned();
            } else if let Some(t) = c.pointer("/state/terminated") {
                reason = match t
                    .get("reason")
                    .and_then(Value::as_str)
                    .filter(|r| !r.is_empty())
                {
                    Some(r) => r.to_owned(),
                    None => match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                        Some(sig) => format!("Signal:{sig}"),
                        None => format!(
                            "ExitCode:{}",
                            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                        ),
                    },
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }
    if v.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if s(v, "/status/reason") == "NodeLost" {
            "Unknown"
        } else {
            "Terminating"
        }
        .to_owned();
    }
    let restarts = match last_restart {
        Some(t) if restarts > 0 => format!(
            "{restarts} ({} ago)",
            time::human(Duration::from_secs(
                u64::try_from(time::now_unix() - t).unwrap_or(0)
            ))
        ),
        _ => restarts.to_string(),
    };
    let gates = v
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let gates = if gates == 0 {
        "<none>".to_owned()
    } else {
        let conds = v
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let met = v
            .pointer("/spec/readinessGates")
            .and_then(Value::as_array)
            .map_or(0, |gs| {
                gs.iter()
                    .filter(|g| {
                        conds
                            .iter()
                            .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
                    })
                    .count()
            });
        format!("{met}/{gates}")
    };
    vec![
        name.into(),
        format!("{ready}/{spec_containers}").into(),
        reason.into(),
        restarts.into(),
        age.into(),
        or_none(s(v, "/status/podIP")),
        or_none(s(v, "/spec/nodeName")),
        or_none(s(v, "/status/nominatedNodeName")),
        gates.into(),
    ]
}

fn node_cells(v: &Value, name: String, age: String) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(ready) = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
    {
        status.push(
            if ready["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
            .to_owned(),
        );
    }
    if status.is_empty() {
        status.push("Unknown".to_owned());
    }
    if v.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".to_owned());
    }
    let mut roles: Vec<String> = v
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, val)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        Some(role.to_owned())
                    } else if k == "kubernetes.io/role" {
                        val.as_str().map(str::to_owned)
                    } else {
                        None
                    }
                })
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    let address = |kind: &str| {
        v.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| x["type"] == kind))
            .and_then(|x| x["address"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    vec![
        name.into(),
        status.join(",").into(),
        or_none(roles.join(",")),
        age.into(),
        s(v, "/status/nodeInfo/kubeletVersion").into(),
        or_none(address("InternalIP")),
        or_none(address("ExternalIP")),
        or_none(s(v, "/status/nodeInfo/osImage")),
        or_none(s(v, "/status/nodeInfo/kernelVersion")),
        or_none(s(v, "/status/nodeInfo/containerRuntimeVersion")),
    ]
}

fn event_cells(v: &Value, name: String) -> Vec<Value> {
    let first = ["/firstTimestamp", "/eventTime"]
        .iter()
        .find_map(|p| v.pointer(p).and_then(Value::as_str).and_then(time::parse));
    let last = [
        "/lastTimestamp",
        "/series/lastObservedTime",
        "/eventTime",
        "/firstTimestamp",
    ]
    .iter()
    .find_map(|p| v.pointer(p).and_then(Value::as_str).and_then(time::parse));
    let now = time::now_unix();
    let ago = |t: Option<i64>| {
        t.map_or_else(
            || "<unknown>".to_owned(),
            |t| time::human(Duration::from_secs(u64::try_from(now - t).unwrap_or(0))),
        )
    };
    let count = v
        .get("count")
        .and_then(Value::as_i64)
        .or_else(|| v.pointer("/series/count").and_then(Value::as_i64))
        .unwrap_or(1);
    let last_seen = if count > 1 {
        format!("{} (x{count} over {})", ago(last), ago(first))
    } else {
        ago(last)
    };
    let mut source = s(v, "/source/component");
    if source.is_empty() {
        source = s(v, "/reportingComponent");
    }
    let host = s(v, "/source/host");
    if !host.is_empty() {
        source = format!("{source}, {host}");
    }
    let object = format!(
        "{}/{}",
        s(v, "/involvedObject/kind").to_ascii_lowercase(),
        s(v, "/involvedObject/name")
    );
    vec![
        last_seen.into(),
        s(v, "/type").into(),
        s(v, "/reason").into(),
        object.into(),
        s(v, "/involvedObject/fieldPath").into(),
        source.into(),
        s(v, "/message").trim().to_owned().into(),
        ago(first).into(),
        count.to_string().into(),
        name.into(),
    ]
}

fn row(r: &Resource, o: &Object, include: Include) -> Value {
    let v = o.value();
    let mut row = json!({"cells": cells(r, &v)});
    match include {
        Include::None => {}
        Include::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": v.get("metadata").cloned().unwrap_or_else(|| json!({})),
            });
        }
        Include::Object => row["object"] = v,
    }
    row
}

fn table(r: &Resource, meta: Value, rows: Vec<Value>) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(r),
        "rows": rows,
    })
}

/// The Table for a list page.
pub fn list(r: &Resource, page: &Page, include: Include) -> Value {
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = c.clone().into();
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = n.into();
    }
    table(
        r,
        meta,
        page.items.iter().map(|o| row(r, o, include)).collect(),
    )
}

/// The Table for one object.
pub fn single(r: &Resource, o: &Object, include: Include) -> Value {
    table(
        r,
        json!({"resourceVersion": o.rv.to_string()}),
        vec![row(r, o, include)],
    )
}

/// A watch event's Table after the first: the columns are not repeated.
pub fn without_columns(mut t: Value) -> Value {
    t["columnDefinitions"] = Value::Null;
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn cells_of(plural: &str, group: &str, v: Value) -> Vec<Value> {
        let reg = Registry::new(&[]);
        let r = reg.get(reg.find(group, "v1", plural).unwrap());
        cells(r, &v)
    }

    #[test]
    fn pod_status_column() {
        let running = json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": {"phase": "Running", "podIP": "10.42.0.5", "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
            {"name": "b", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ]}});
        let c = cells_of("pods", "", running);
        assert_eq!(c[1], "1/2");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], "2");
        assert_eq!(c[5], "10.42.0.5");
        assert_eq!(c[6], "n1");
        let sandbox = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(cells_of("pods", "", sandbox)[2], "ContainerCreating");
        let gone = json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-31T07:00:00Z"}, "spec": {"containers": []}, "status": {"phase": "Running", "reason": "NodeLost"}});
        assert_eq!(cells_of("pods", "", gone)[2], "Unknown");
        let init = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}});
        assert_eq!(cells_of("pods", "", init)[2], "Init:0/1");
    }

    #[test]
    fn node_status_and_roles() {
        let n = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}], "nodeInfo": {"kubeletVersion": "v1.33.1+k3s1"},
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
        let c = cells_of("nodes", "", n);
        assert_eq!(c[1], "NotReady,SchedulingDisabled");
        assert_eq!(c[2], "control-plane,master");
        assert_eq!(c[4], "v1.33.1+k3s1");
        assert_eq!(c[5], "10.0.0.1");
        assert_eq!(c[6], "<none>");
        assert_eq!(
            cells_of("nodes", "", json!({"metadata": {"name": "x"}}))[1],
            "Unknown"
        );
    }

    #[test]
    fn event_object_and_count() {
        let e = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "FailedCreatePodSandBox", "count": 3,
            "involvedObject": {"kind": "Pod", "name": "web"}, "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2026-01-31T07:00:00Z", "lastTimestamp": "2026-01-31T07:05:00Z", "message": "failed "});
        let c = cells_of("events", "", e);
        assert!(c[0].as_str().unwrap().contains("(x3 over"), "{}", c[0]);
        assert_eq!(c[3], "pod/web");
        assert_eq!(c[5], "kubelet, n1");
        assert_eq!(c[6], "failed");
    }
}
