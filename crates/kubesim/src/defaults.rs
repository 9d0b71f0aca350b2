//! What the apiserver does to an object before storing it, for the kinds
//! kubectl users create by hand: decode it against the kind's schema (a
//! value of the wrong type is refused with 400, as the apiserver's decoder
//! refuses it), fill in the defaults `kubectl get -o yaml` shows, and
//! validate the few values whose range a typo breaks (422).
//!
//! Pure: the stateful part of defaulting (a Service's cluster IP) is the
//! store's; [`defaults`] only says where one is needed.

use k8s_openapi::api;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::registry::Resource;
use crate::status::Status;

/// Decodes `value` as its kind's schema. A missing field is not a decoding
/// error (the apiserver's decoder leaves it zero; validation, not
/// reproduced here, may require it); a value of the wrong type is.
pub fn decode(r: &Resource, value: &Value) -> Result<(), Status> {
    fn as_kind<T: DeserializeOwned>(value: &Value) -> Result<(), serde_json::Error> {
        T::deserialize(value).map(drop)
    }
    let decoded = match (r.group.as_str(), r.kind.as_str()) {
        ("", "Pod") => as_kind::<api::core::v1::Pod>(value),
        ("", "Node") => as_kind::<api::core::v1::Node>(value),
        ("", "Namespace") => as_kind::<api::core::v1::Namespace>(value),
        ("", "Service") => as_kind::<api::core::v1::Service>(value),
        ("", "ConfigMap") => as_kind::<api::core::v1::ConfigMap>(value),
        ("", "Secret") => as_kind::<api::core::v1::Secret>(value),
        ("", "ServiceAccount") => as_kind::<api::core::v1::ServiceAccount>(value),
        ("", "Event") => as_kind::<api::core::v1::Event>(value),
        ("", "PersistentVolumeClaim") => as_kind::<api::core::v1::PersistentVolumeClaim>(value),
        ("", "PersistentVolume") => as_kind::<api::core::v1::PersistentVolume>(value),
        ("apps", "Deployment") => as_kind::<api::apps::v1::Deployment>(value),
        ("apps", "DaemonSet") => as_kind::<api::apps::v1::DaemonSet>(value),
        ("apps", "ReplicaSet") => as_kind::<api::apps::v1::ReplicaSet>(value),
        ("apps", "StatefulSet") => as_kind::<api::apps::v1::StatefulSet>(value),
        ("policy", "PodDisruptionBudget") => as_kind::<api::policy::v1::PodDisruptionBudget>(value),
        ("coordination.k8s.io", "Lease") => as_kind::<api::coordination::v1::Lease>(value),
        _ => Ok(()),
    };
    match decoded {
        Err(e) if !e.to_string().starts_with("missing field") => Err(Status::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
            kind = r.kind,
            version = r.version,
        ))),
        _ => Ok(()),
    }
}

/// Where the store must allocate something for a new object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocate {
    /// Nothing.
    Nothing,
    /// A Service's cluster IP (`requested`: the one asked for).
    ClusterIp {
        /// `spec.clusterIP` as sent, if an address.
        requested: Option<String>,
    },
}

/// Fills in the defaults of `value` (its kind's, and those of the pod
/// templates it holds) and validates what a typo breaks. Returns what the
/// store must allocate.
pub fn defaults(r: &Resource, value: &mut Value) -> Result<Allocate, Status> {
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let invalid = |message: String| Status::invalid(&r.kind, &name, message);
    let mut allocate = Allocate::Nothing;
    match (r.group.as_str(), r.kind.as_str()) {
        ("", "Pod") => pod_spec(spec(value), "spec").map_err(invalid)?,
        ("", "Secret") => {
            object(value)
                .entry("type")
                .or_insert_with(|| "Opaque".into());
        }
        ("", "Service") => {
            allocate = service(spec(value)).map_err(invalid)?;
        }
        ("", "PersistentVolumeClaim") => {
            spec(value)
                .entry("volumeMode")
                .or_insert_with(|| "Filesystem".into());
        }
        ("apps", "Deployment") => {
            let s = spec(value);
            replicas(s).map_err(invalid)?;
            strategy(
                s,
                "strategy",
                json!({"maxUnavailable": "25%", "maxSurge": "25%"}),
            );
            s.entry("revisionHistoryLimit").or_insert_with(|| 10.into());
            s.entry("progressDeadlineSeconds")
                .or_insert_with(|| 600.into());
            template(s).map_err(invalid)?;
        }
        ("apps", "ReplicaSet") => {
            let s = spec(value);
            replicas(s).map_err(invalid)?;
            template(s).map_err(invalid)?;
        }
        ("apps", "StatefulSet") => {
            let s = spec(value);
            replicas(s).map_err(invalid)?;
            s.entry("podManagementPolicy")
                .or_insert_with(|| "OrderedReady".into());
            s.entry("updateStrategy").or_insert_with(
                || json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            s.entry("revisionHistoryLimit").or_insert_with(|| 10.into());
            template(s).map_err(invalid)?;
        }
        ("apps", "DaemonSet") => {
            let s = spec(value);
            strategy(
                s,
                "updateStrategy",
                json!({"maxUnavailable": 1, "maxSurge": 0}),
            );
            s.entry("revisionHistoryLimit").or_insert_with(|| 10.into());
            template(s).map_err(invalid)?;
        }
        _ => {}
    }
    Ok(allocate)
}

/// The object's top level (a non-object body was refused before).
fn object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("an object")
}

/// `value.spec`, created empty when absent.
fn spec(value: &mut Value) -> &mut Map<String, Value> {
    let spec = object(value).entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        *spec = json!({});
    }
    spec.as_object_mut().expect("an object")
}

/// A workload's update strategy: `RollingUpdate` unless set, with
/// `rolling` as its parameters unless given (also inside an empty object,
/// as kubectl's generators send it).
fn strategy(spec: &mut Map<String, Value>, key: &str, rolling: Value) {
    let strategy = spec.entry(key).or_insert_with(|| json!({}));
    let Some(strategy) = strategy.as_object_mut() else {
        return;
    };
    let kind = strategy
        .entry("type")
        .or_insert_with(|| "RollingUpdate".into());
    if kind == "RollingUpdate" {
        strategy.entry("rollingUpdate").or_insert(rolling);
    }
}

fn replicas(spec: &mut Map<String, Value>) -> Result<(), String> {
    let n = spec.entry("replicas").or_insert_with(|| 1.into());
    match n.as_i64() {
        Some(n) if n < 0 => Err(format!(
            "spec.replicas: Invalid value: {n}: must be greater than or equal to 0"
        )),
        _ => Ok(()),
    }
}

/// A workload's `spec.template.spec`.
fn template(spec: &mut Map<String, Value>) -> Result<(), String> {
    let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    else {
        return Ok(());
    };
    pod_spec(pod, "spec.template.spec")
}

fn pod_spec(spec: &mut Map<String, Value>, at: &str) -> Result<(), String> {
    let policy = spec
        .entry("restartPolicy")
        .or_insert_with(|| "Always".into());
    if let Some(p) = policy.as_str()
        && !matches!(p, "Always" | "OnFailure" | "Never")
    {
        return Err(format!(
            "{at}.restartPolicy: Unsupported value: \"{p}\": supported values: \"Always\", \"OnFailure\", \"Never\""
        ));
    }
    spec.entry("terminationGracePeriodSeconds")
        .or_insert_with(|| 30.into());
    spec.entry("dnsPolicy")
        .or_insert_with(|| "ClusterFirst".into());
    spec.entry("schedulerName")
        .or_insert_with(|| "default-scheduler".into());
    spec.entry("securityContext").or_insert_with(|| json!({}));
    spec.entry("enableServiceLinks")
        .or_insert_with(|| true.into());
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for (i, c) in containers.iter_mut().enumerate() {
            let Some(c) = c.as_object_mut() else { continue };
            let pull = pull_policy(c.get("image").and_then(Value::as_str).unwrap_or_default());
            c.entry("imagePullPolicy").or_insert_with(|| pull.into());
            c.entry("terminationMessagePath")
                .or_insert_with(|| "/dev/termination-log".into());
            c.entry("terminationMessagePolicy")
                .or_insert_with(|| "File".into());
            for (j, port) in ports(c.get_mut("ports")) {
                port.entry("protocol").or_insert_with(|| "TCP".into());
                in_range(
                    port.get("containerPort"),
                    &format!("{at}.{list}[{i}].ports[{j}].containerPort"),
                )?;
            }
        }
    }
    Ok(())
}

/// `Always` for `:latest` or no tag, `IfNotPresent` for a tag or digest.
fn pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn ports(list: Option<&mut Value>) -> impl Iterator<Item = (usize, &mut Map<String, Value>)> {
    list.and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, p)| p.as_object_mut().map(|p| (i, p)))
}

fn in_range(port: Option<&Value>, at: &str) -> Result<(), String> {
    match port.and_then(Value::as_i64) {
        Some(p) if !(1..=65535).contains(&p) => Err(format!(
            "{at}: Invalid value: {p}: must be between 1 and 65535, inclusive"
        )),
        _ => Ok(()),
    }
}

fn service(spec: &mut Map<String, Value>) -> Result<Allocate, String> {
    let kind = spec
        .entry("type")
        .or_insert_with(|| "ClusterIP".into())
        .as_str()
        .unwrap_or("ClusterIP")
        .to_owned();
    spec.entry("sessionAffinity")
        .or_insert_with(|| "None".into());
    for (j, port) in ports(spec.get_mut("ports")) {
        port.entry("protocol").or_insert_with(|| "TCP".into());
        in_range(port.get("port"), &format!("spec.ports[{j}].port"))?;
        if let Some(p) = port.get("port").cloned() {
            port.entry("targetPort").or_insert(p);
        }
    }
    if kind == "ExternalName" {
        return Ok(Allocate::Nothing);
    }
    spec.entry("internalTrafficPolicy")
        .or_insert_with(|| "Cluster".into());
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .map(str::to_owned);
    if requested.as_deref() == Some("None") {
        // Headless: no address, no families to allocate from.
        spec.insert("clusterIPs".into(), json!(["None"]));
        return Ok(Allocate::Nothing);
    }
    spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
    spec.entry("ipFamilyPolicy")
        .or_insert_with(|| "SingleStack".into());
    Ok(Allocate::ClusterIp { requested })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{CustomResource, Registry};

    fn resource(kind: &str) -> Resource {
        let registry = Registry::new(&CustomResource::defaults());
        registry
            .all()
            .iter()
            .find(|r| r.kind == kind && !r.custom)
            .cloned()
            .unwrap_or_else(|| panic!("{kind}"))
    }

    #[test]
    fn a_value_of_the_wrong_type_is_a_bad_request_a_missing_one_is_not() {
        let d = resource("Deployment");
        let err = decode(
            &d,
            &json!({"metadata": {"name": "web"}, "spec": {"replicas": "3"}}),
        )
        .unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment: invalid type: string \"3\""),
            "{}",
            err.message
        );
        decode(
            &d,
            &json!({"metadata": {"name": "web"}, "spec": {"replicas": 3}}),
        )
        .unwrap();
        // The selector and template are required by validation, not decoding.
        decode(&d, &json!({"metadata": {"name": "web"}})).unwrap();
        let pod = resource("Pod");
        let err = decode(&pod, &json!({"metadata": {"labels": {"a": 1}}})).unwrap_err();
        assert_eq!(err.code, 400, "{}", err.message);
        decode(&resource("ClusterRole"), &json!({"rules": "anything"})).unwrap();
    }

    #[test]
    fn pods_get_what_kubectl_shows() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "nginx"},
            {"name": "b", "image": "registry.local:5000/app:1.2", "ports": [{"containerPort": 80}]},
            {"name": "c", "image": "busybox@sha256:00", "imagePullPolicy": "Never"},
        ]}});
        assert_eq!(
            defaults(&resource("Pod"), &mut pod).unwrap(),
            Allocate::Nothing
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        let pulls: Vec<&Value> = (0..3)
            .map(|i| &spec["containers"][i]["imagePullPolicy"])
            .collect();
        assert_eq!(pulls, ["Always", "IfNotPresent", "Never"]);
        assert_eq!(spec["containers"][1]["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["containers"][0]["terminationMessagePolicy"], "File");

        let mut kept = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5, "containers": []}});
        defaults(&resource("Pod"), &mut kept).unwrap();
        assert_eq!(kept["spec"]["restartPolicy"], "Never");
        assert_eq!(kept["spec"]["terminationGracePeriodSeconds"], 5);
    }

    #[test]
    fn typos_in_ranges_and_enums_are_invalid() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Sometimes"}});
        let err = defaults(&resource("Pod"), &mut pod).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .contains("spec.restartPolicy: Unsupported value: \"Sometimes\""),
            "{}",
            err.message
        );
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 70000}]}});
        let err = defaults(&resource("Service"), &mut svc).unwrap_err();
        assert!(
            err.message
                .contains("spec.ports[0].port: Invalid value: 70000"),
            "{}",
            err.message
        );
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"replicas": -1}});
        assert_eq!(
            defaults(&resource("Deployment"), &mut d).unwrap_err().code,
            422
        );
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "x", "ports": [{"containerPort": 0}]}]}}}});
        let err = defaults(&resource("Deployment"), &mut d).unwrap_err();
        assert!(
            err.message
                .contains("spec.template.spec.containers[0].ports[0].containerPort"),
            "{}",
            err.message
        );
    }

    #[test]
    fn services_secrets_and_workloads() {
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            defaults(&resource("Service"), &mut svc).unwrap(),
            Allocate::ClusterIp { requested: None }
        );
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 53, "protocol": "UDP", "targetPort": 53})
        );
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        let mut headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}});
        assert_eq!(
            defaults(&resource("Service"), &mut headless).unwrap(),
            Allocate::Nothing
        );
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut asked = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "10.43.0.10"}});
        assert_eq!(
            defaults(&resource("Service"), &mut asked).unwrap(),
            Allocate::ClusterIp {
                requested: Some("10.43.0.10".into())
            }
        );
        let mut external = json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "x.org"}});
        assert_eq!(
            defaults(&resource("Service"), &mut external).unwrap(),
            Allocate::Nothing
        );

        let mut secret = json!({"metadata": {"name": "s"}});
        defaults(&resource("Secret"), &mut secret).unwrap();
        assert_eq!(secret["type"], "Opaque");

        let mut d = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}}});
        defaults(&resource("Deployment"), &mut d).unwrap();
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        let mut empty = json!({"metadata": {"name": "d"}, "spec": {"strategy": {}}});
        defaults(&resource("Deployment"), &mut empty).unwrap();
        assert_eq!(
            empty["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
            "25%"
        );
        let mut recreate =
            json!({"metadata": {"name": "d"}, "spec": {"strategy": {"type": "Recreate"}}});
        defaults(&resource("Deployment"), &mut recreate).unwrap();
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        let mut ds = json!({"metadata": {"name": "ds"}, "spec": {}});
        defaults(&resource("DaemonSet"), &mut ds).unwrap();
        assert_eq!(
            ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            1
        );
    }
}
