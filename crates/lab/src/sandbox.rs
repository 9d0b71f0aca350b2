//! Pod sandboxes' networking, run the way containerd runs it: the node's
//! conflist and CNI bin dir, executed as the node's root sees them.
//!
//! Each CNI call runs in a short-lived helper process (this binary's hidden
//! `__cni` subcommand) that enters a private mount namespace and binds the
//! node's `run/` and `var/` over `/run` and `/var`. The plugins therefore
//! read the real paths (`/run/flannel/subnet.env`,
//! `/var/lib/cni/networks/cbr0`), and their errors carry the real texts,
//! while every file they touch is the node's. The host's mounts are never
//! changed: the private namespace dies with the helper.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rebootguard_hostnet::cni::{Args, Conflist, Runtime};
use rebootguard_hostnet::netns::Netns;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where k3s keeps its CNI config, as the node sees it.
pub const CONFLIST: &str = "/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist";
/// k3s's CNI bin dir, as the node sees it.
pub const BIN_DIR: &str = "/var/lib/rancher/k3s/data/cni";

/// A CNI call for one pod sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// `add` or `del`.
    pub op: String,
    /// The node's root directory.
    pub root: PathBuf,
    /// The node's network namespace.
    pub node_netns: PathBuf,
    /// The pod's network namespace.
    pub pod_netns: PathBuf,
    /// The sandbox (container) ID.
    pub container_id: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
}

/// The helper's answer on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    Ok(Value),
    Error(String),
}

/// Why a sandbox's CNI call failed. Only [`Error::Cni`] is retryable: the
/// node may heal before the kubelet's next try, as with containerd; the
/// others mean the lab's own helper is broken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be put into JSON for the helper.
    #[error("failed to encode the CNI helper's request")]
    Encode(#[source] serde_json::Error),
    /// The helper could not be started.
    #[error("failed to start the CNI helper {}", .exe.display())]
    Start {
        /// The helper's binary.
        exe: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The helper ended without a reply.
    #[error("CNI helper failed ({status}): {stderr}")]
    Helper {
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The network setup failed, worded as containerd words it
    /// (`plugin type="flannel" failed (add): ...`).
    #[error("{0}")]
    Cni(String),
}

impl Error {
    /// Whether the kubelet's next try may succeed (see [`Error`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Cni(_))
    }
}

/// Runs `request` through the helper `exe`; the CNI result, or the error as
/// containerd words it (`plugin type="flannel" failed (add): ...`).
pub fn call(exe: &Path, request: &Request) -> Result<Value, Error> {
    let json = serde_json::to_string(request).map_err(Error::Encode)?;
    let out = Command::new(exe)
        .arg("__cni")
        .arg(json)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| Error::Start {
            exe: exe.to_owned(),
            source,
        })?;
    match serde_json::from_slice::<Reply>(&out.stdout) {
        Ok(Reply::Ok(v)) => Ok(v),
        Ok(Reply::Error(e)) => Err(Error::Cni(e)),
        Err(_) => Err(Error::Helper {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
    }
}

/// The helper process: prints a [`Reply`] as JSON. Never returns an error:
/// failures are part of the reply.
pub fn helper_main(json: &str) -> std::process::ExitCode {
    let reply = match serde_json::from_str::<Request>(json) {
        Ok(r) => match run(&r) {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Error(e),
        },
        Err(e) => Reply::Error(format!("bad helper request: {e}")),
    };
    println!("{}", serde_json::to_string(&reply).unwrap_or_default());
    std::process::ExitCode::SUCCESS
}

fn run(r: &Request) -> Result<Value, String> {
    // Open both namespaces before /run is covered (named ones live there).
    let node = Netns::open(&r.node_netns).map_err(|e| e.to_string())?;
    let pod = Netns::open(&r.pod_netns).map_err(|e| e.to_string())?;
    enter_node_root(&r.root)?;
    let bytes = match std::fs::read(CONFLIST) {
        Ok(b) => b,
        Err(_) => {
            return Err("network plugin is not ready: cni config uninitialized".to_owned());
        }
    };
    let list = Conflist::parse(&bytes).map_err(|e| e.to_string())?;
    let runtime = Runtime::new(vec![PathBuf::from(BIN_DIR)])
        .in_host(&node)
        .with_timeout(Some(Duration::from_secs(20)));
    let args = Args::pod(&r.container_id, &pod.path(), &r.namespace, &r.name);
    match r.op.as_str() {
        "add" => list
            .add(&runtime, &args)
            .map(|o| o.json)
            .map_err(|e| e.to_string()),
        "del" => list
            .del(&runtime, &args, None)
            .map(|()| Value::Null)
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown CNI operation {other:?}")),
    }
}

/// Private mount namespace with the node's `run/` and `var/` on `/run` and
/// `/var` (the helper is a single-threaded, short-lived process).
fn enter_node_root(root: &Path) -> Result<(), String> {
    rebootguard_hostnet::mounts::enter_root(root).map_err(|e| rebootguard_errors::chain(&e))
}

/// containerd's and the kubelet's words for a failed sandbox.
pub fn kubelet_message(container_id: &str, error: &str) -> String {
    format!(
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{container_id}\": {error}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_text_is_the_incidents() {
        assert_eq!(
            kubelet_message(
                "abc",
                "plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
            ),
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"abc\": plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
        );
    }
}
