//! Finding a kubeconfig and building a client from it.
//!
//! Order: an explicit path, `KUBECONFIG` (a `:`-separated list, merged like
//! kubectl merges it), `~/.kube/config`, the in-cluster service account,
//! then k3s's server kubeconfig and the agent's kubelet kubeconfig. The k3s
//! paths are read under the host root, so a DaemonSet mounting the host at
//! `/host` finds them too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The k3s server's admin kubeconfig.
pub const K3S_SERVER_KUBECONFIG: &str = "etc/rancher/k3s/k3s.yaml";
/// The k3s agent's kubelet kubeconfig (node credentials; enough to read its own Node).
pub const K3S_AGENT_KUBECONFIG: &str = "var/lib/rancher/k3s/agent/kubelet.kubeconfig";

/// Where credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--kubeconfig` or the config file.
    Explicit(PathBuf),
    /// The `KUBECONFIG` environment variable.
    Env(Vec<PathBuf>),
    /// `~/.kube/config`.
    Home(PathBuf),
    /// The pod's service account.
    InCluster,
    /// k3s's server kubeconfig.
    K3sServer(PathBuf),
    /// k3s's agent kubelet kubeconfig.
    K3sAgent(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Explicit(p) => write!(f, "kubeconfig {}", p.display()),
            Source::Env(paths) => {
                let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "KUBECONFIG={}", list.join(":"))
            }
            Source::Home(p) => write!(f, "kubeconfig {}", p.display()),
            Source::InCluster => write!(f, "in-cluster service account"),
            Source::K3sServer(p) => write!(f, "k3s server kubeconfig {}", p.display()),
            Source::K3sAgent(p) => write!(f, "k3s agent kubeconfig {}", p.display()),
        }
    }
}

/// Everything discovery looks at, gathered up front so the order is testable.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// An explicit kubeconfig path.
    pub explicit: Option<PathBuf>,
    /// The value of `KUBECONFIG`.
    pub env: Option<String>,
    /// The user's home directory.
    pub home: Option<PathBuf>,
    /// Whether `KUBERNETES_SERVICE_HOST` is set.
    pub in_cluster: bool,
    /// The host root for k3s's own paths (`/` on a host, `/host` in a pod).
    pub root: PathBuf,
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No candidate exists.
    #[error(
        "no kubeconfig found (tried --kubeconfig, KUBECONFIG, ~/.kube/config, the in-cluster service account, {} and {}); pass --kubeconfig",
        K3S_SERVER_KUBECONFIG,
        K3S_AGENT_KUBECONFIG
    )]
    NotFound,
    /// A kubeconfig exists but could not be read or used.
    #[error("failed to load {source_name}: {cause}")]
    Load {
        /// Where it came from.
        source_name: String,
        /// Why it failed.
        cause: String,
    },
    /// Building the HTTP client failed.
    #[error("failed to build a Kubernetes client from {source_name}")]
    Client {
        /// Where the config came from.
        source_name: String,
        /// The cause.
        #[source]
        cause: kube::Error,
    },
}

impl Discovery {
    /// Reads the process environment; `explicit` and `root` come from flags.
    pub fn from_env(explicit: Option<PathBuf>, root: &Path) -> Discovery {
        Discovery {
            explicit,
            env: std::env::var("KUBECONFIG").ok().filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
            in_cluster: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            root: root.to_path_buf(),
        }
    }

    /// The first usable source, in order; `exists` is the filesystem check.
    pub fn pick(&self, exists: impl Fn(&Path) -> bool) -> Option<Source> {
        if let Some(path) = &self.explicit {
            return Some(Source::Explicit(path.clone()));
        }
        if let Some(list) = &self.env {
            let paths: Vec<PathBuf> = list
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .filter(|p| exists(p))
                .collect();
            if !paths.is_empty() {
                return Some(Source::Env(paths));
            }
        }
        if let Some(home) = &self.home {
            let path = home.join(".kube/config");
            if exists(&path) {
                return Some(Source::Home(path));
            }
        }
        if self.in_cluster {
            return Some(Source::InCluster);
        }
        let server = self.root.join(K3S_SERVER_KUBECONFIG);
        if exists(&server) {
            return Some(Source::K3sServer(server));
        }
        let agent = self.root.join(K3S_AGENT_KUBECONFIG);
        if exists(&agent) {
            return Some(Source::K3sAgent(agent));
        }
        None
    }
}

/// The `User-Agent` every rebootguard request carries unless a caller
/// names itself more precisely (the agent adds its node).
pub const USER_AGENT: &str = concat!("rebootguard/", env!("CARGO_PKG_VERSION"));

/// Builds a client from the first usable source; `timeout` bounds connecting
/// and each read, so a dead API fails fast instead of hanging the caller.
pub async fn connect(discovery: &Discovery, timeout: Duration) -> Result<(Client, Source), Error> {
    let (mut config, source) = load(discovery).await?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    let client = build(config, &source, USER_AGENT)?;
    Ok((client, source))
}

/// kube's own reader, after checking that `path` is a regular file: a
/// FIFO or device there would block the read forever.
fn read_kubeconfig(path: &std::path::Path) -> Result<Kubeconfig, String> {
    rebootguard_rootfs::check_regular(path).map_err(|e| format!("{} {e}", path.display()))?;
    Kubeconfig::read_from(path).map_err(|e| e.to_string())
}

/// The client configuration from the first usable source, for callers that
/// set their own timeouts (a watch must not have a short read timeout).
pub async fn load(discovery: &Discovery) -> Result<(Config, Source), Error> {
    let source = discovery.pick(|p| p.exists()).ok_or(Error::NotFound)?;
    let load = |cause: String| Error::Load {
        source_name: source.to_string(),
        cause,
    };
    let config = match &source {
        Source::InCluster => Config::incluster().map_err(|e| load(e.to_string()))?,
        Source::Env(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for path in paths {
                let next = read_kubeconfig(path).map_err(load)?;
                merged = Some(match merged {
                    None => next,
                    Some(prev) => prev.merge(next).map_err(|e| load(e.to_string()))?,
                });
            }
            let merged = merged.ok_or_else(|| load("KUBECONFIG lists no file".into()))?;
            Config::from_custom_kubeconfig(merged, &KubeConfigOptions::default())
                .await
                .map_err(|e| load(e.to_string()))?
        }
        Source::Explicit(path)
        | Source::Home(path)
        | Source::K3sServer(path)
        | Source::K3sAgent(path) => {
            let file = read_kubeconfig(path).map_err(load)?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| load(e.to_string()))?
        }
    };
    Ok((config, source))
}

/// A client from `config`, identifying itself as `user_agent` (or as
/// [`USER_AGENT`] when that is not a valid header value).
pub fn build(config: Config, source: &Source, user_agent: &str) -> Result<Client, Error> {
    Client::try_from(identified(config, user_agent)).map_err(|cause| Error::Client {
        source_name: source.to_string(),
        cause,
    })
}

/// `config` sending `user_agent` (or [`USER_AGENT`] when that is not a
/// valid header value), for callers that build their own client stack.
pub fn identified(mut config: Config, user_agent: &str) -> Config {
    let value = http::HeaderValue::from_str(user_agent)
        .unwrap_or_else(|_| http::HeaderValue::from_static(USER_AGENT));
    config.headers.push((http::header::USER_AGENT, value));
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery() -> Discovery {
        Discovery {
            root: PathBuf::from("/host"),
            ..Discovery::default()
        }
    }

    #[test]
    fn order_follows_kubectl_then_k3s() {
        let all = |_: &Path| true;
        let mut d = discovery();
        d.home = Some("/home/op".into());
        d.in_cluster = true;
        d.env = Some("/a:/b".into());
        d.explicit = Some("/x".into());
        assert_eq!(d.pick(all), Some(Source::Explicit("/x".into())));
        d.explicit = None;
        assert_eq!(
            d.pick(all),
            Some(Source::Env(vec!["/a".into(), "/b".into()]))
        );
        d.env = None;
        assert_eq!(
            d.pick(all),
            Some(Source::Home("/home/op/.kube/config".into()))
        );
        d.home = None;
        assert_eq!(d.pick(all), Some(Source::InCluster));
        d.in_cluster = false;
        assert_eq!(
            d.pick(all),
            Some(Source::K3sServer("/host/etc/rancher/k3s/k3s.yaml".into()))
        );
        let agent_only = |p: &Path| p.ends_with("kubelet.kubeconfig");
        assert_eq!(
            d.pick(agent_only),
            Some(Source::K3sAgent(
                "/host/var/lib/rancher/k3s/agent/kubelet.kubeconfig".into()
            ))
        );
        assert_eq!(d.pick(|_| false), None);
    }

    #[test]
    fn missing_kubeconfig_env_entries_are_skipped() {
        let mut d = discovery();
        d.env = Some("/gone::/here".into());
        assert_eq!(
            d.pick(|p| p == Path::new("/here")),
            Some(Source::Env(vec!["/here".into()]))
        );
    }

    #[tokio::test]
    async fn unusable_kubeconfig_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        std::fs::write(&path, "not: [a kubeconfig").expect("write");
        let mut d = discovery();
        d.explicit = Some(path.clone());
        let Err(err) = connect(&d, Duration::from_secs(1)).await else {
            panic!("garbage kubeconfig accepted");
        };
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        let mut none = discovery();
        none.root = dir.path().to_path_buf();
        let Err(err) = connect(&none, Duration::from_secs(1)).await else {
            panic!("found a kubeconfig in an empty root");
        };
        assert!(matches!(err, Error::NotFound), "{err}");
    }
}
