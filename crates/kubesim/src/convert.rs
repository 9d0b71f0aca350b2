//! Conversions between a stored kind and another API version of it that
//! shares its storage. The one upstream pair kubesim serves: core/v1 Event
//! (stored) and events.k8s.io/v1 Event (what kube-runtime's `Recorder`
//! writes), so events written through either are read through both.

use serde_json::{Map, Value};

/// A served resource that is a view of another's storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// events.k8s.io/v1 events over core/v1 events.
    EventsV1,
}

/// `(events.k8s.io/v1 field, core/v1 field)`, top level.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(v: &Value, api_version: &str, to_view: bool) -> Value {
    let Some(o) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, x) in o {
        let renamed = EVENT_FIELDS.iter().find_map(|(view, core)| {
            if to_view && k == core {
                Some(*view)
            } else if !to_view && k == view {
                Some(*core)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(k).to_owned(), x.clone());
    }
    out.insert("apiVersion".into(), api_version.into());
    Value::Object(out)
}

/// The stored object as the view's version.
pub fn to_view(view: View, stored: &Value) -> Value {
    match view {
        View::EventsV1 => rename(stored, "events.k8s.io/v1", true),
    }
}

/// A view-version object in the stored version.
pub fn from_view(view: View, object: &Value) -> Value {
    match view {
        View::EventsV1 => rename(object, "v1", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node", "name": "n1"}, "message": "m", "reason": "Rebooted",
            "source": {"component": "kubelet"}, "count": 2, "reportingComponent": "kubelet", "type": "Warning"});
        let v = to_view(View::EventsV1, &core);
        assert_eq!(v["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v["regarding"]["name"], "n1");
        assert_eq!(v["note"], "m");
        assert_eq!(v["deprecatedCount"], 2);
        assert_eq!(v["reportingController"], "kubelet");
        assert!(v.get("message").is_none());
        assert_eq!(from_view(View::EventsV1, &v), core);
    }
}
