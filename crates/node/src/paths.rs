//! Where things are on a node, per flannel deployment (profile), under the
//! host root.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Which flannel deployment the node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// k3s with its embedded flannel (the default).
    #[default]
    K3s,
    /// flannel as the kube-flannel DaemonSet (kubeadm and others).
    KubeFlannel,
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "k3s" => Ok(Profile::K3s),
            "kube-flannel" => Ok(Profile::KubeFlannel),
            other => Err(format!(
                "unknown profile {other:?}: expected k3s or kube-flannel"
            )),
        }
    }
}

/// Every host path the guardian reads or writes, already under the host root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Paths {
    /// The host root every other path is under (`/` on a host): no path
    /// is resolved out of it (see `rebootguard_rootfs`).
    pub root: PathBuf,
    /// The live `subnet.env`.
    pub subnet_env: PathBuf,
    /// `net-conf.json`.
    pub net_conf: PathBuf,
    /// The CNI conflist naming the flannel plugin.
    pub conflist: PathBuf,
    /// Where the container runtime finds CNI plugin binaries, searched in order.
    pub cni_bin_dirs: Vec<PathBuf>,
    /// The container runtime's per-container task directories (one
    /// directory per running container ID); gone after a reboot.
    pub runtime_tasks: PathBuf,
    /// The backup store.
    pub store: PathBuf,
    /// host-local's lease directories (`<dir>/<network>/<ip>`).
    pub cni_networks: PathBuf,
    /// k3s's config file (for `node-name`).
    pub k3s_config: PathBuf,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: PathBuf,
    /// `/proc/stat` (for `btime`, the boot time).
    pub proc_stat: PathBuf,
    /// `/etc/hostname`.
    pub hostname: PathBuf,
}

impl Paths {
    /// The profile's defaults under `root` (`/` on a host).
    pub fn new(profile: Profile, root: &Path) -> Paths {
        let at = |p: &str| root.join(p);
        let (net_conf, conflist, bin_dirs, tasks): (_, _, &[&str], _) = match profile {
            Profile::K3s => (
                "var/lib/rancher/k3s/agent/etc/flannel/net-conf.json",
                "var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist",
                // Newer k3s extracts plugins to data/cni, older ones to data/<hash>/bin.
                &[
                    "var/lib/rancher/k3s/data/cni",
                    "var/lib/rancher/k3s/data/current/bin",
                ],
                "run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io",
            ),
            Profile::KubeFlannel => (
                "etc/kube-flannel/net-conf.json",
                "etc/cni/net.d/10-flannel.conflist",
                &["opt/cni/bin"],
                "run/containerd/io.containerd.runtime.v2.task/k8s.io",
            ),
        };
        Paths {
            root: root.to_path_buf(),
            subnet_env: at("run/flannel/subnet.env"),
            net_conf: at(net_conf),
            conflist: at(conflist),
            cni_bin_dirs: bin_dirs.iter().map(|d| at(d)).collect(),
            runtime_tasks: at(tasks),
            store: at("var/lib/rebootguard"),
            cni_networks: at("var/lib/cni/networks"),
            k3s_config: at("etc/rancher/k3s/config.yaml"),
            boot_id: at("proc/sys/kernel/random/boot_id"),
            proc_stat: at("proc/stat"),
            hostname: at("etc/hostname"),
        }
    }
}
