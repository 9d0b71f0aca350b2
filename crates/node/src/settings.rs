//! Where things are on a node and how the guardian behaves, resolved from
//! flags, environment, the TOML config file and defaults (in that order).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::paths::{Paths, Profile};

/// The default config file, under the host root.
pub const CONFIG_FILE: &str = "etc/rebootguard/config.toml";

/// The TOML config file. Every key is optional; flags and environment win.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    /// The Kubernetes node name.
    pub node_name: Option<String>,
    /// `k3s` or `kube-flannel`.
    pub profile: Option<Profile>,
    /// The backup store directory (a host path, under the root).
    pub store_dir: Option<PathBuf>,
    /// Generations to keep.
    pub keep: Option<NonZeroUsize>,
    /// Bound on a whole `node restore`, e.g. `"5s"`.
    pub timeout: Option<String>,
    /// Bound on the API cross-check, e.g. `"2s"`.
    pub api_timeout: Option<String>,
    /// Whether to ask the API at all.
    pub api: Option<bool>,
    /// The overlay MTU to write instead of deriving it.
    pub mtu: Option<u32>,
    /// Whether flannel masquerades (`FLANNEL_IPMASQ`; k3s: always true).
    pub ipmasq: Option<bool>,
    /// A kubeconfig to use.
    pub kubeconfig: Option<PathBuf>,
    /// `namespace/name` of kube-flannel's ConfigMap holding `net-conf.json`.
    pub flannel_config_map: Option<String>,
    /// The CNI conflist to check and probe (a host path) instead of the profile's.
    pub conflist: Option<PathBuf>,
    /// CNI plugin directories (host paths) instead of the profile's.
    pub cni_bin_dirs: Option<Vec<PathBuf>>,
    /// The `[agent]` table, read by the agent itself (`rebootguard agent`).
    pub agent: Option<toml::Table>,
}

/// Why settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file exists but cannot be read.
    #[error("failed to read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
    /// The config file is not valid TOML for us.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A duration that does not parse.
    #[error("{field} = {value:?} is not a duration (use e.g. 500ms, 5s, 1m)")]
    Duration {
        /// The setting.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// A `namespace/name` that is not one.
    #[error("flannel-config-map = {0:?} must be namespace/name")]
    ConfigMap(String),
    /// No node name could be found.
    #[error(
        "cannot tell this node's name: pass --node-name, or set node-name in the config file or k3s's config.yaml"
    )]
    NodeName,
}

impl File {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<File, Error> {
        let read = rebootguard_rootfs::read_regular(path, crate::host::FILE_LIMIT)
            .map_err(std::io::Error::from)
            .and_then(|b| {
                String::from_utf8(b)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            });
        match read {
            Ok(text) => toml::from_str(&text).map_err(|e| Error::Parse {
                path: path.to_path_buf(),
                message: e.to_string().trim().to_owned(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(cause) => Err(Error::Read {
                path: path.to_path_buf(),
                cause,
            }),
        }
    }

    /// Fills every unset field from `lower` (which has lower precedence).
    pub fn or(self, lower: File) -> File {
        File {
            node_name: self.node_name.or(lower.node_name),
            profile: self.profile.or(lower.profile),
            store_dir: self.store_dir.or(lower.store_dir),
            keep: self.keep.or(lower.keep),
            timeout: self.timeout.or(lower.timeout),
            api_timeout: self.api_timeout.or(lower.api_timeout),
            api: self.api.or(lower.api),
            mtu: self.mtu.or(lower.mtu),
            ipmasq: self.ipmasq.or(lower.ipmasq),
            kubeconfig: self.kubeconfig.or(lower.kubeconfig),
            flannel_config_map: self.flannel_config_map.or(lower.flannel_config_map),
            conflist: self.conflist.or(lower.conflist),
            cni_bin_dirs: self.cni_bin_dirs.or(lower.cni_bin_dirs),
            agent: self.agent.or(lower.agent),
        }
    }
}

/// Resolved settings for one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// The host root every path is under.
    pub root: PathBuf,
    /// The flannel deployment.
    pub profile: Profile,
    /// The host paths.
    pub paths: Paths,
    /// The node name.
    pub node_name: String,
    /// Generations to keep.
    pub keep: NonZeroUsize,
    /// Bound on a whole `node restore`.
    pub timeout: Duration,
    /// Bound on API calls.
    pub api_timeout: Duration,
    /// Whether to ask the API.
    pub use_api: bool,
    /// An overlay MTU override.
    pub mtu: Option<u32>,
    /// `FLANNEL_IPMASQ` to write when regenerating.
    pub ipmasq: bool,
    /// An explicit kubeconfig (not under the root: it is the caller's file).
    pub kubeconfig: Option<PathBuf>,
    /// kube-flannel's ConfigMap (namespace, name) holding `net-conf.json`.
    pub flannel_config_map: (String, String),
    /// The config file's `[agent]` table, unparsed (the agent owns its keys).
    #[serde(skip)]
    pub agent: toml::Table,
}

impl Settings {
    /// Resolves `given` (flags and environment already merged over the
    /// config file) on the host under `root`; the node name falls back to
    /// k3s's `node-name`, then the hostname.
    pub fn resolve(root: &Path, given: File) -> Result<Settings, Error> {
        let profile = given.profile.unwrap_or_default();
        let mut paths = Paths::new(profile, root);
        if let Some(dir) = given.store_dir {
            paths.store = under(root, &dir);
        }
        if let Some(conflist) = given.conflist {
            paths.conflist = under(root, &conflist);
        }
        if let Some(dirs) = given.cni_bin_dirs {
            paths.cni_bin_dirs = dirs.iter().map(|d| under(root, d)).collect();
        }
        let node_name = match given.node_name {
            Some(name) => name,
            None => crate::host::node_name(&paths).ok_or(Error::NodeName)?,
        };
        let duration = |field, value: Option<String>, default| match value {
            None => Ok(default),
            Some(v) => parse_duration(&v).ok_or(Error::Duration { field, value: v }),
        };
        let config_map = given
            .flannel_config_map
            .unwrap_or_else(|| "kube-flannel/kube-flannel-cfg".into());
        let flannel_config_map = config_map
            .split_once('/')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
            .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
            .ok_or_else(|| Error::ConfigMap(config_map.clone()))?;
        Ok(Settings {
            root: root.to_path_buf(),
            profile,
            paths,
            node_name,
            keep: given
                .keep
                .unwrap_or(NonZeroUsize::new(5).expect("5 is not zero")),
            timeout: duration("timeout", given.timeout, Duration::from_secs(5))?,
            api_timeout: duration("api-timeout", given.api_timeout, Duration::from_secs(2))?,
            use_api: given.api.unwrap_or(true),
            mtu: given.mtu,
            ipmasq: given.ipmasq.unwrap_or(true),
            kubeconfig: given.kubeconfig,
            flannel_config_map,
            agent: given.agent.unwrap_or_default(),
        })
    }
}

/// `path` as a host path under `root` (absolute paths are re-rooted).
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// `500ms`, `5s`, `1.5s`, `2m`, `1h`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn paths_are_rooted_per_profile() {
        let k3s = Paths::new(Profile::K3s, Path::new("/host"));
        assert_eq!(k3s.subnet_env, Path::new("/host/run/flannel/subnet.env"));
        assert_eq!(
            k3s.net_conf,
            Path::new("/host/var/lib/rancher/k3s/agent/etc/flannel/net-conf.json")
        );
        assert_eq!(
            k3s.cni_bin_dirs[0],
            Path::new("/host/var/lib/rancher/k3s/data/cni")
        );
        let kf = Paths::new(Profile::KubeFlannel, Path::new("/"));
        assert_eq!(kf.conflist, Path::new("/etc/cni/net.d/10-flannel.conflist"));
        assert_eq!(kf.cni_bin_dirs, [Path::new("/opt/cni/bin")]);
        assert_eq!(
            under(Path::new("/host"), Path::new("/srv/rg")),
            Path::new("/host/srv/rg")
        );
    }

    #[test]
    fn config_file_is_strict_and_layered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "node-name = \"boromir\"\nkeep = 3\ntimeout = \"3s\"\ncni-bin-dirs = [\"/opt/cni/bin\"]\n[agent]\ntaint = true\n",
        )
        .expect("write");
        let file = File::load(&path).expect("loads");
        let flags = File {
            keep: NonZeroUsize::new(7),
            ..File::default()
        };
        let settings = Settings::resolve(dir.path(), flags.or(file)).expect("resolves");
        assert_eq!(settings.node_name, "boromir");
        assert_eq!(settings.keep.get(), 7);
        assert_eq!(settings.timeout, Duration::from_secs(3));
        assert_eq!(settings.api_timeout, Duration::from_secs(2));
        assert_eq!(
            settings.paths.cni_bin_dirs,
            [dir.path().join("opt/cni/bin")]
        );
        assert_eq!(
            settings.agent.get("taint"),
            Some(&toml::Value::Boolean(true))
        );

        std::fs::write(&path, "node_nmae = \"x\"\n").expect("write");
        let err = File::load(&path).expect_err("unknown key refused");
        assert!(err.to_string().contains("node_nmae"), "{err}");
        assert_eq!(
            File::load(&dir.path().join("absent.toml")).expect("missing is empty"),
            File::default()
        );
        let bad = File {
            node_name: Some("n".into()),
            flannel_config_map: Some("nope".into()),
            ..File::default()
        };
        assert!(matches!(
            Settings::resolve(dir.path(), bad),
            Err(Error::ConfigMap(_))
        ));
    }
}
