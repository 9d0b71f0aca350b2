//! Facts read from the host: its node name, boot ID and boot time, and the
//! MTUs the overlay MTU is derived from.
//!
//! Files under the host root come from [`Paths`]; link facts come from the
//! kernel of the network namespace we run in (`/sys/class/net`,
//! `/proc/net/route`), which is the node's own when run on the host, in a
//! hostNetwork pod, or under `ip netns exec` in the lab.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::settings::Paths;

/// The node name k3s would use: `node-name` from its config file (drop-ins in
/// `config.yaml.d/` override it, in name order), else the hostname, lower-cased
/// as the kubelet does.
pub fn node_name(paths: &Paths) -> Option<String> {
    let mut name = k3s_node_name(&std::fs::read_to_string(&paths.k3s_config).unwrap_or_default());
    let drop_ins = paths.k3s_config.with_extension("yaml.d");
    if let Ok(entries) = std::fs::read_dir(&drop_ins) {
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        for file in files {
            if let Some(n) = k3s_node_name(&std::fs::read_to_string(&file).unwrap_or_default()) {
                name = Some(n);
            }
        }
    }
    name.or_else(|| {
        let hostname = std::fs::read_to_string(&paths.hostname)
            .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
            .ok()?;
        let hostname = hostname.trim().to_ascii_lowercase();
        (!hostname.is_empty()).then_some(hostname)
    })
}

/// `node-name` in a k3s config file's text.
pub fn k3s_node_name(yaml: &str) -> Option<String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).ok()?;
    doc.get("node-name")?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// This boot's ID.
pub fn boot_id(paths: &Paths) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(&paths.boot_id)?.trim().to_owned())
}

/// When this boot started, from `btime` in `/proc/stat`.
pub fn boot_time(paths: &Paths) -> std::io::Result<SystemTime> {
    let stat = std::fs::read_to_string(&paths.proc_stat)?;
    parse_btime(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no btime line in {}", paths.proc_stat.display()),
        )
    })
}

/// The `btime` line of `/proc/stat` as a time.
pub fn parse_btime(stat: &str) -> Option<SystemTime> {
    let seconds: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// A link's MTU in the current network namespace, if the link exists.
pub fn link_mtu(name: &str) -> Option<u32> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    read_u32(&Path::new("/sys/class/net").join(name).join("mtu"))
}

/// The MTU of the interface carrying the default route (IPv4 first, then
/// IPv6): the underlay flannel encapsulates over unless told otherwise.
pub fn default_route_mtu() -> Option<(String, u32)> {
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    let iface = default_route_v4(&v4).or_else(|| default_route_v6(&v6))?;
    let mtu = link_mtu(&iface)?;
    Some((iface, mtu))
}

/// The interface of the IPv4 default route in `/proc/net/route`'s text.
pub fn default_route_v4(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        let (iface, destination, mask) = (fields.first()?, fields.get(1)?, fields.get(7)?);
        (*destination == "00000000" && *mask == "00000000").then(|| (*iface).to_owned())
    })
}

/// The interface of the IPv6 default route in `/proc/net/ipv6_route`'s text.
pub fn default_route_v6(table: &str) -> Option<String> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (destination, prefix, iface) = (fields.first()?, fields.get(1)?, fields.get(9)?);
        (destination.chars().all(|c| c == '0') && *prefix == "00" && *iface != "lo")
            .then(|| (*iface).to_owned())
    })
}

fn read_u32(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Profile;

    #[test]
    fn node_name_prefers_k3s_config_then_drop_ins_then_hostname() {
        let root = tempfile::tempdir().expect("tempdir");
        let paths = Paths::new(Profile::K3s, root.path());
        std::fs::create_dir_all(paths.hostname.parent().expect("parent")).expect("mkdir");
        std::fs::write(&paths.hostname, "Boromir\n").expect("write");
        assert_eq!(node_name(&paths).as_deref(), Some("boromir"));

        std::fs::create_dir_all(paths.k3s_config.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &paths.k3s_config,
            "node-name: gondor-1\nwrite-kubeconfig-mode: 644\n",
        )
        .expect("write");
        assert_eq!(node_name(&paths).as_deref(), Some("gondor-1"));

        let drop_ins = root.path().join("etc/rancher/k3s/config.yaml.d");
        std::fs::create_dir_all(&drop_ins).expect("mkdir");
        std::fs::write(drop_ins.join("50-name.yaml"), "node-name: gondor-2\n").expect("write");
        assert_eq!(node_name(&paths).as_deref(), Some("gondor-2"));
    }

    #[test]
    fn btime_and_routes_parse() {
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1769843000\nprocesses 9\n"),
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(1_769_843_000))
        );
        assert_eq!(parse_btime("cpu 1\n"), None);
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  cni0\t00002A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_v4(v4).as_deref(), Some("eth0"));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 ens3\n";
        assert_eq!(default_route_v6(v6).as_deref(), Some("ens3"));
        assert_eq!(link_mtu("../etc"), None);
        assert_eq!(link_mtu("lo"), Some(65536));
    }
}
