//! Gathering what the host, the store and the API say, once, into plain
//! values every operation decides from.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rebootguard_cluster::{Discovery, NodeView};
use rebootguard_errors::Failure;
use rebootguard_flannel::NetConf;
use rebootguard_hostnet::link::Netlink;
use rebootguard_store::{BadContent, Generation};
use serde::Serialize;

use crate::live::{self, Live};
use crate::settings::{Profile, Settings};

/// What the API said, if asked.
#[derive(Debug, Clone)]
pub enum Api {
    /// Not asked (`--no-api`, or not needed).
    NotAsked,
    /// No answer, or an error; the reason.
    Unavailable(Failure),
    /// The API answered that this node does not exist.
    NoNode(String),
    /// The node as the API sees it.
    Node(NodeView),
}

/// Where an MTU could come from, best first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MtuHints {
    /// The operator's override.
    pub configured: Option<u32>,
    /// The live `flannel.1` MTU (equals FLANNEL_MTU for vxlan).
    pub flannel_link: Option<u32>,
    /// A previous subnet.env of this node (backup or damaged live file).
    pub previous: Option<u32>,
    /// The default route's interface MTU.
    pub underlay: Option<u32>,
    /// Whether `flannel.1` and the default route were looked at (only when
    /// a file may be derived: with the API).
    pub links_read: bool,
}

/// Everything one run knows.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The node name.
    pub node: String,
    /// The live file.
    pub live: Live,
    /// The newest valid backup of this node.
    pub backup: Option<Generation>,
    /// Every valid generation in the store, newest first (any node).
    pub generations: Vec<Generation>,
    /// Store problems: unreadable store, rejected files.
    pub store_problems: Vec<String>,
    /// net-conf.json, or why it is unusable.
    pub net_conf: Result<NetConf, Failure>,
    /// The API's view.
    pub api: Api,
    /// MTU sources.
    pub mtu: MtuHints,
}

/// The validator the store runs: only files the CNI plugin and flannel accept.
pub fn validate(bytes: &[u8]) -> Result<(), BadContent> {
    rebootguard_flannel::subnet_env::parse(bytes)
        .into_valid()
        .map(|_| ())
        .map_err(|problems| {
            let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
            BadContent(said.join("; "))
        })
}

/// Reads everything; asks the API and reads link MTUs only when `want_api`
/// (the API also only when the settings allow it), never past `deadline`.
pub async fn observe(settings: &Settings, want_api: bool, deadline: Instant) -> Observation {
    observe_with(
        settings,
        live::read(&settings.paths.root, &settings.paths.subnet_env),
        want_api,
        deadline,
    )
    .await
}

/// [`observe`] with the live file already read.
pub async fn observe_with(
    settings: &Settings,
    live: Live,
    want_api: bool,
    deadline: Instant,
) -> Observation {
    observe_with_client(settings, live, want_api, deadline)
        .await
        .0
}

/// [`observe_with`], also handing back the API client when the API answered,
/// for callers that ask it more.
pub async fn observe_with_client(
    settings: &Settings,
    live: Live,
    want_api: bool,
    deadline: Instant,
) -> (Observation, Option<kube::Client>) {
    let mut store_problems = Vec::new();
    let mut generations = Vec::new();
    // Looking never creates the store: status, dry runs and checks leave
    // no trace on the node.
    match crate::host::find_store(&settings.paths) {
        Err(e) => store_problems.push(e.to_string()),
        Ok(None) => {}
        Ok(Some(store)) => match store.load(validate) {
            Err(e) => store_problems.push(e.to_string()),
            Ok(inventory) => {
                store_problems.extend(
                    inventory
                        .rejected
                        .iter()
                        .map(|r| format!("{}: {}", r.path.display(), r.reason)),
                );
                generations = inventory.valid;
            }
        },
    }
    let backup = generations
        .iter()
        .find(|g| g.meta.node == settings.node_name)
        .cloned();

    let (api, client) = if want_api && settings.use_api {
        ask_api(settings, deadline).await
    } else {
        (Api::NotAsked, None)
    };
    let net_conf = read_net_conf(settings, client.as_ref(), deadline)
        .await
        .map_err(Failure::from);

    let previous_mtu = |bytes: &[u8]| rebootguard_flannel::subnet_env::parse(bytes).env.mtu;
    let previous = backup
        .as_ref()
        .and_then(|g| previous_mtu(&g.content))
        .or_else(|| match &live {
            Live::Present { bytes, .. } => previous_mtu(bytes),
            _ => None,
        });
    // Link MTUs only matter when a file may be derived, which needs the API.
    let (flannel_link, underlay) = if want_api {
        link_mtus().await
    } else {
        (None, None)
    };
    let mtu = MtuHints {
        configured: settings.mtu,
        flannel_link,
        previous,
        underlay,
        links_read: want_api,
    };
    let observation = Observation {
        node: settings.node_name.clone(),
        live,
        backup,
        generations,
        store_problems,
        net_conf,
        api,
        mtu,
    };
    (observation, client)
}

/// The MTUs of `flannel.1` and of the default route's interface, from the
/// network namespace we run in (the node's). Each is `None` when absent.
async fn link_mtus() -> (Option<u32>, Option<u32>) {
    let netlink = match Netlink::connect() {
        Ok(netlink) => netlink,
        Err(e) => {
            tracing::debug!("cannot read links over netlink: {e}");
            return (None, None);
        }
    };
    let flannel = netlink.link("flannel.1").await.ok().map(|l| l.mtu);
    let underlay = netlink.underlay().await.ok().map(|u| u.link.mtu);
    (flannel, underlay)
}

fn remaining(deadline: Instant, cap: Duration) -> Duration {
    deadline.saturating_duration_since(Instant::now()).min(cap)
}

async fn ask_api(settings: &Settings, deadline: Instant) -> (Api, Option<kube::Client>) {
    let bound = remaining(deadline, settings.api_timeout);
    if bound.is_zero() {
        return (
            Api::Unavailable(Failure::said("no time left to ask the API", true)),
            None,
        );
    }
    let discovery = Discovery::from_env(settings.kubeconfig.clone(), &settings.root);
    let attempt = async {
        let (client, source) = rebootguard_cluster::connect(&discovery, bound)
            .await
            .map_err(|e| Api::Unavailable(Failure::new(e, true)))?;
        tracing::debug!(%source, "asking the API server");
        match rebootguard_cluster::node_view(&client, &settings.node_name, bound).await {
            Ok(view) => Ok((Api::Node(view), client)),
            // The API answered: the client is good for more questions.
            Err(rebootguard_cluster::node::Error::NotFound(name)) => {
                Ok((Api::NoNode(name), client))
            }
            Err(e) => Err(Api::Unavailable(Failure::judged(
                e,
                rebootguard_cluster::node::Error::is_retryable,
            ))),
        }
    };
    match tokio::time::timeout(bound, attempt).await {
        Err(_) => (
            Api::Unavailable(Failure::said(
                format!("no successful answer from the API server within {bound:?}"),
                true,
            )),
            None,
        ),
        Ok(Err(api)) => (api, None),
        Ok(Ok((api, client))) => (api, Some(client)),
    }
}

/// Why net-conf.json could not be had. Retryable
/// ([`NetConfError::is_retryable`]): a missing file (k3s writes it when it
/// starts) and an API read that may pass later; an unreadable or invalid
/// file, or a ConfigMap without the key, needs a person.
#[derive(Debug, thiserror::Error)]
pub enum NetConfError {
    /// Neither on the host nor (kube-flannel with the API) in its ConfigMap.
    #[error("{} does not exist (k3s writes it on start; it survives reboots)", .0.display())]
    Missing(PathBuf),
    /// The file exists but could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file or ConfigMap holds no valid net-conf.json.
    #[error("{from}: {source}")]
    Invalid {
        /// The file or `configmap NS/NAME`.
        from: String,
        /// What is wrong with it.
        #[source]
        source: rebootguard_flannel::net_conf::Error,
    },
    /// kube-flannel's ConfigMap has no `net-conf.json` key.
    #[error("{0} has no net-conf.json")]
    NoKey(String),
    /// kube-flannel's ConfigMap could not be read.
    #[error("{from}: {source}")]
    Api {
        /// `configmap NS/NAME`.
        from: String,
        /// Why.
        #[source]
        source: rebootguard_cluster::node::Error,
    },
}

impl NetConfError {
    /// Whether a later read may succeed as things are (see [`NetConfError`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            NetConfError::Missing(_) => true,
            NetConfError::Api { source, .. } => source.is_retryable(),
            NetConfError::Read { .. } | NetConfError::Invalid { .. } | NetConfError::NoKey(_) => {
                false
            }
        }
    }
}

impl From<NetConfError> for Failure {
    fn from(error: NetConfError) -> Failure {
        Failure::judged(error, NetConfError::is_retryable)
    }
}

/// net-conf.json from the host, else (kube-flannel) from its ConfigMap
/// when a client is given, within `deadline`.
pub async fn read_net_conf(
    settings: &Settings,
    client: Option<&kube::Client>,
    deadline: Instant,
) -> Result<NetConf, NetConfError> {
    let path = &settings.paths.net_conf;
    let parse = |bytes: &[u8], from: String| {
        NetConf::parse(bytes).map_err(|source| NetConfError::Invalid { from, source })
    };
    match crate::host::read_file(&settings.paths.root, path) {
        Ok(bytes) => return parse(&bytes, path.display().to_string()),
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
            return Err(NetConfError::Read {
                path: path.clone(),
                source,
            });
        }
        Err(_) => {}
    }
    // kube-flannel keeps it in a ConfigMap rather than on the host.
    if settings.profile == Profile::KubeFlannel
        && let Some(client) = client
    {
        let (namespace, name) = &settings.flannel_config_map;
        let bound = remaining(deadline, settings.api_timeout);
        let from = format!("configmap {namespace}/{name}");
        return match rebootguard_cluster::node::config_map_key(
            client,
            namespace,
            name,
            "net-conf.json",
            bound,
        )
        .await
        {
            Ok(Some(text)) => parse(text.as_bytes(), from),
            Ok(None) => Err(NetConfError::NoKey(from)),
            Err(source) => Err(NetConfError::Api { from, source }),
        };
    }
    Err(NetConfError::Missing(path.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_conf_errors_read_as_before_and_say_whether_to_retry() {
        let missing = NetConfError::Missing(PathBuf::from("/run/flannel/net-conf.json"));
        assert!(missing.is_retryable(), "k3s writes it when it starts");
        let source = NetConf::parse(b"{").expect_err("not JSON");
        let invalid = NetConfError::Invalid {
            from: "configmap kube-flannel/kube-flannel-cfg".into(),
            source,
        };
        assert!(!invalid.is_retryable());
        // The cause is in the message once, not again from the chain.
        let text = rebootguard_errors::chain(&invalid);
        assert!(
            text.starts_with(
                "configmap kube-flannel/kube-flannel-cfg: net-conf.json is not valid JSON"
            ) && text.matches("not valid JSON").count() == 1,
            "{text}"
        );
        let timeout = rebootguard_cluster::node::Error::Timeout(Duration::from_secs(2));
        let api = NetConfError::Api {
            from: "configmap kube-flannel/kube-flannel-cfg".into(),
            source: timeout,
        };
        assert!(api.is_retryable());
    }
}
