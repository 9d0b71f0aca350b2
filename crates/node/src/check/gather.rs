//! Filling [`Facts`] on a live node: files under the root, the kernel's
//! network state over netlink (in the namespace this process runs in), and
//! the API within a time bound.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rebootguard_cluster::node as api;
use rebootguard_errors::Failure;
use rebootguard_hostnet::link::{self, Family, Netlink};

use super::facts::{self, ApiFacts, Cluster, Conflist, ConflistError, Facts, Host, Leases, Local};
use crate::live;
use crate::observe::{self, Api};
use crate::settings::Settings;

/// Gathers everything; asks the API (when the settings allow) within
/// `settings.api_timeout` per call.
pub async fn gather(settings: &Settings) -> Facts {
    let deadline = Instant::now() + settings.api_timeout * 4;
    let (observation, client) = observe::observe_with_client(
        settings,
        live::read(&settings.paths.root, &settings.paths.subnet_env),
        settings.use_api,
        deadline,
    )
    .await;
    let api = match (&observation.api, client) {
        (Api::NotAsked, _) => ApiFacts::NotAsked,
        (Api::Unavailable(why), _) => ApiFacts::Unavailable(why.clone()),
        (Api::NoNode(_), Some(client)) => cluster(settings, &client, None).await,
        (Api::Node(view), Some(client)) => cluster(settings, &client, Some(view.clone())).await,
        (Api::NoNode(_) | Api::Node(_), None) => {
            ApiFacts::Unavailable(Failure::said("no client after the first read", true))
        }
    };
    let local = local(settings, observation.net_conf.clone()).await;
    Facts {
        local,
        api,
        now: jiff::Timestamp::now(),
    }
}

/// The node-local facts. `net_conf` is passed in because kube-flannel keeps
/// it in a ConfigMap that only the API can give.
pub async fn local(
    settings: &Settings,
    net_conf: Result<rebootguard_flannel::NetConf, Failure>,
) -> Local {
    let paths = &settings.paths;
    let conflist = conflist(&settings.root, &paths.conflist, &paths.cni_bin_dirs);
    let network = conflist
        .parsed
        .as_ref()
        .ok()
        .and_then(facts::network_name)
        .unwrap_or_else(|| "cbr0".into());
    Local {
        node: settings.node_name.clone(),
        subnet_env_path: node_path(&settings.root, &paths.subnet_env),
        live: live::read(&paths.root, &paths.subnet_env),
        net_conf,
        backup_pod_cidrs: backup_pod_cidrs(settings),
        host: host()
            .await
            .map_err(|e| Failure::judged(e, link::Error::is_retryable)),
        leases: leases(settings, &network),
        conflist,
    }
}

/// The path as the node itself names it (without the `--root` prefix).
fn node_path(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) => Path::new("/").join(rel).display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

fn backup_pod_cidrs(settings: &Settings) -> Option<Vec<ipnet::IpNet>> {
    let store = crate::host::find_store(&settings.paths).ok()??;
    let inventory = store.load(observe::validate).ok()?;
    let newest = inventory
        .valid
        .iter()
        .find(|g| g.meta.node == settings.node_name)?;
    Some(
        newest
            .meta
            .pod_cidrs
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
    )
}

/// Reads the conflist and looks up every plugin it needs (paths under
/// `root`; the facts name them as the node does).
pub fn conflist(root: &Path, path: &Path, bin_dirs: &[PathBuf]) -> Conflist {
    let parsed = match crate::host::read_file(root, path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConflistError::Missing),
        Err(e) => Err(ConflistError::Invalid(format!("cannot read it: {e}"))),
        Ok(bytes) => rebootguard_hostnet::cni::Conflist::parse(&bytes)
            .map_err(|e| ConflistError::Invalid(e.to_string()))
            .and_then(|_| {
                serde_json::from_slice(&bytes).map_err(|e| ConflistError::Invalid(e.to_string()))
            }),
    };
    let plugins: BTreeMap<String, Option<PathBuf>> = parsed
        .as_ref()
        .map(facts::required_plugins)
        .unwrap_or_default()
        .into_iter()
        .map(|plugin| {
            let found = bin_dirs
                .iter()
                .map(|d| d.join(&plugin))
                .find(|p| is_executable(p));
            (plugin, found)
        })
        .collect();
    Conflist {
        path: PathBuf::from(node_path(root, path)),
        parsed,
        bin_dirs: bin_dirs
            .iter()
            .map(|d| PathBuf::from(node_path(root, d)))
            .collect(),
        plugins,
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Links, FDB, neighbours and routes of the namespace this process is in.
pub async fn host() -> Result<Host, link::Error> {
    let netlink = Netlink::connect()?;
    let links = netlink.links().await?;
    let fdb = netlink.fdb().await?;
    let neighbours = netlink.neighbours().await?;
    let mut routes = netlink.routes(Family::V4).await?;
    routes.extend(netlink.routes(Family::V6).await?);
    Ok(Host {
        links,
        fdb,
        neighbours,
        routes,
    })
}

fn leases(settings: &Settings, network: &str) -> Leases {
    let (files, errors) = crate::leases::scan(&settings.paths.cni_networks);
    let live_containers = std::fs::read_dir(&settings.paths.runtime_tasks)
        .ok()
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<BTreeSet<_>>()
        });
    Leases {
        dir: settings.paths.cni_networks.join(network),
        files: files.into_iter().filter(|l| l.network == network).collect(),
        errors,
        boot_time: crate::host::boot_time(&settings.paths).ok(),
        live_containers,
    }
}

/// The cluster half: every Node, this node's pods, sandbox failure events.
async fn cluster(
    settings: &Settings,
    client: &kube::Client,
    me: Option<api::NodeView>,
) -> ApiFacts {
    let bound = settings.api_timeout;
    let nodes = match api::nodes(client, bound).await {
        Ok(nodes) => nodes,
        Err(e) => return ApiFacts::Unavailable(Failure::new(e, true)),
    };
    let peers = nodes
        .into_iter()
        .filter(|n| n.name != settings.node_name)
        .collect();
    let (pods, events) = tokio::join!(
        api::pods_on(client, &settings.node_name, bound),
        api::sandbox_failures(client, bound)
    );
    ApiFacts::Cluster(Cluster {
        me,
        peers,
        pods: pods.map_err(|e| Failure::new(e, true)),
        events: events.map_err(|e| Failure::new(e, true)),
    })
}
