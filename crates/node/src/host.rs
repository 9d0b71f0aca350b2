//! Facts read from the host's files: its node name, boot ID and boot time,
//! all under the host root given by [`Paths`].

use std::time::{Duration, SystemTime};

use crate::paths::Paths;

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
    let doc: serde_json::Value = serde_saphyr::from_str(yaml).ok()?;
    // k3s turns every value into a flag's text: `node-name: 1234` is "1234".
    let name = match doc.get("node-name")? {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!name.is_empty()).then_some(name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::Profile;

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
    fn k3s_config_files_as_users_write_them() {
        let config = r#"# written by hand, then by Ansible
write-kubeconfig-mode: "0644"
tls-san:
  - "k3s.example.internal"
  - 192.168.1.10
node-label:
  - "topology.kubernetes.io/zone=a"
node-name: "gondor-3"   # must match the DHCP name
cluster-init: true
disable: [traefik, servicelb]
kubelet-arg:
  - "max-pods=250"
"#;
        assert_eq!(k3s_node_name(config).as_deref(), Some("gondor-3"));
        assert_eq!(k3s_node_name("node-name: 1234\n").as_deref(), Some("1234"));
        assert_eq!(
            k3s_node_name("node-name: '  rohan '\n").as_deref(),
            Some("rohan")
        );
        // No name, an empty one, a list, broken YAML, an empty file.
        for text in [
            "token: abc\n",
            "node-name: \"\"\n",
            "node-name: [a, b]\n",
            "node-name: \"unterminated\n",
            "",
            "---\n",
        ] {
            assert_eq!(k3s_node_name(text), None, "{text:?}");
        }
    }

    #[test]
    fn btime_parses() {
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1769843000\nprocesses 9\n"),
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(1_769_843_000))
        );
        assert_eq!(parse_btime("cpu 1\n"), None);
    }
}
