//! Container logs: what `kubectl logs` and `kubectl cluster-info dump` read
//! (`GET .../pods/NAME/log`). A real apiserver asks the node's kubelet;
//! kubesim keeps the text it is given ([`crate::KubeSim::append_log`], fed
//! by whoever runs the containers, the lab's kubelet for one), per pod and
//! container, the current run and the previous one.

use std::collections::HashMap;

use serde_json::Value;

use crate::status::Status;

/// Log text per (namespace, pod, container, previous run?).
#[derive(Debug, Default)]
pub struct Logs(HashMap<(String, String, String, bool), String>);

impl Logs {
    /// Appends `text` to a container's log.
    pub fn append(
        &mut self,
        (namespace, pod, container): (&str, &str, &str),
        previous: bool,
        text: &str,
    ) {
        let key = (
            namespace.to_owned(),
            pod.to_owned(),
            container.to_owned(),
            previous,
        );
        self.0.entry(key).or_default().push_str(text);
    }

    /// What `GET pods/NAME/log` answers for `pod` (the stored object) with
    /// the request's `container`, `previous` and `tailLines`, worded as the
    /// apiserver words its refusals.
    pub fn read(
        &self,
        pod: &Value,
        container: Option<&str>,
        previous: bool,
        tail_lines: Option<usize>,
    ) -> Result<String, Status> {
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let containers: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let container = match (container, containers.as_slice()) {
            (Some(c), _) => c,
            (None, [only]) => only,
            (None, []) => {
                return Err(Status::bad_request(format!("pod {name} has no containers")));
            }
            (None, many) => {
                return Err(Status::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                )));
            }
        };
        if !containers.contains(&container) {
            return Err(Status::bad_request(format!(
                "container {container} is not valid for pod {name}"
            )));
        }
        let key = (
            namespace.to_owned(),
            name.to_owned(),
            container.to_owned(),
            previous,
        );
        let text = match self.0.get(&key) {
            Some(text) => text.as_str(),
            None if previous => {
                return Err(Status::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                )));
            }
            None => "",
        };
        Ok(match tail_lines {
            Some(n) => tail(text, n),
            None => text.to_owned(),
        })
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines[lines.len().saturating_sub(n)..].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str]) -> Value {
        let containers: Vec<Value> = containers.iter().map(|c| json!({"name": c})).collect();
        json!({"metadata": {"namespace": "apps", "name": "web"}, "spec": {"containers": containers}})
    }

    #[test]
    fn one_container_is_read_without_naming_it() {
        let mut logs = Logs::default();
        logs.append(("apps", "web", "app"), false, "a\nb\n");
        logs.append(("apps", "web", "app"), false, "c\n");
        assert_eq!(
            logs.read(&pod(&["app"]), None, false, None).unwrap(),
            "a\nb\nc\n"
        );
        assert_eq!(
            logs.read(&pod(&["app"]), None, false, Some(2)).unwrap(),
            "b\nc\n"
        );
        assert_eq!(
            logs.read(&pod(&["app"]), Some("app"), false, Some(0))
                .unwrap(),
            ""
        );
    }

    #[test]
    fn refusals_read_like_the_apiserver() {
        let logs = Logs::default();
        let two = pod(&["app", "sidecar"]);
        let err = logs.read(&two, None, false, None).unwrap_err();
        assert!(
            err.message.contains("choose one of: [app sidecar]"),
            "{}",
            err.message
        );
        let err = logs.read(&two, Some("nope"), false, None).unwrap_err();
        assert!(
            err.message.contains("container nope is not valid"),
            "{}",
            err.message
        );
        let err = logs.read(&two, Some("app"), true, None).unwrap_err();
        assert!(
            err.message.contains("previous terminated container"),
            "{}",
            err.message
        );
        // A container that has written nothing has an empty log.
        assert_eq!(logs.read(&two, Some("sidecar"), false, None).unwrap(), "");
    }
}
