//! A fix step: what to run, where, and as whom. Plain data, below both the
//! rules that suggest steps and the report that carries them.

use serde::Serialize;

/// One fix step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fix {
    /// What the step does.
    pub description: String,
    /// The command, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Where to run it: a node name, or none for any admin machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_on: Option<String>,
    /// Needs root on that node.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub as_root: bool,
}

impl Fix {
    /// A step run with kubectl/rebootguard from an admin machine.
    pub fn cluster(description: impl Into<String>, command: impl Into<String>) -> Self {
        Fix {
            description: description.into(),
            command: Some(command.into()),
            run_on: None,
            as_root: false,
        }
    }
    /// A step run as root on a node.
    pub fn on_node(node: &str, description: impl Into<String>, command: impl Into<String>) -> Self {
        Fix {
            description: description.into(),
            command: Some(command.into()),
            run_on: Some(node.into()),
            as_root: true,
        }
    }
}
