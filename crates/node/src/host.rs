//! Facts read from the host's files: its node name, boot ID and boot time,
//! and the backup store's directory, all under the host root given by
//! [`Paths`] and resolved inside it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rebootguard_store::{OpenError, Store};

use crate::paths::Paths;

/// The most bytes read from one host file (`/proc/stat` on a big machine
/// is a few hundred KiB; config files far less).
pub const FILE_LIMIT: u64 = 4 << 20;

/// Reads the host file `path` (under `root`, resolved inside it), at most
/// [`FILE_LIMIT`] bytes; a FIFO or device there is an error, never a hang.
pub fn read_file(root: &Path, path: &Path) -> std::io::Result<Vec<u8>> {
    let root = rebootguard_rootfs::Root::open(root)?;
    Ok(root.read(path, FILE_LIMIT)?)
}

/// [`read_file`] as text.
pub fn read_text(root: &Path, path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_file(root, path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// A kernel-wide file (`/proc/...`) as the root gives it, or, when the root
/// does not (a pod with the host's `/` mounted at `/host` but not its
/// `/proc`), from this kernel's own `/proc`: boot ID and boot time are
/// the same in every container.
fn read_kernel(paths: &Paths, path: &Path) -> std::io::Result<String> {
    match read_text(&paths.root, path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && paths.root != Path::new("/") => {
            let own = Path::new("/").join(path.strip_prefix(&paths.root).unwrap_or(path));
            let bytes = rebootguard_rootfs::read_regular(&own, FILE_LIMIT)?;
            String::from_utf8(bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        }
        other => other,
    }
}

/// Opens the backup store for writing, creating its directory (and the
/// missing ones on the way) inside the root: a symlink on the way, planted
/// or absolute as written for the host, cannot lead a write out of it.
pub fn open_store(paths: &Paths) -> Result<Store, OpenError> {
    match resolve_store(paths, true) {
        Ok(dir) => Store::open(dir),
        Err(e) => Err(store_error(paths, true, e)),
    }
}

/// Opens the backup store for reading, resolved inside the root as
/// [`open_store`] does: `None` when there is none yet, never creating it,
/// so a command that only looks leaves no trace.
pub fn find_store(paths: &Paths) -> Result<Option<Store>, OpenError> {
    match resolve_store(paths, false) {
        Ok(dir) => Store::open_existing(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(store_error(paths, false, e)),
    }
}

/// The store directory's real path inside the root, with no symlink left
/// on it (the store takes a path, not a handle).
fn resolve_store(paths: &Paths, create: bool) -> std::io::Result<PathBuf> {
    let root = rebootguard_rootfs::Root::open(&paths.root)?;
    root.dir(&paths.store, create.then_some(0o755))?
        .resolved_path()
}

fn store_error(paths: &Paths, create: bool, source: std::io::Error) -> OpenError {
    let path = paths.store.clone();
    match source.kind() {
        std::io::ErrorKind::NotADirectory => OpenError::NotADirectory { path },
        _ if create => OpenError::CreateDir { path, source },
        _ => OpenError::Inspect { path, source },
    }
}

/// The node name k3s would use: `node-name` from its config file (drop-ins in
/// `config.yaml.d/` override it, in name order), else the hostname, lower-cased
/// as the kubelet does.
pub fn node_name(paths: &Paths) -> Option<String> {
    let mut name = k3s_node_name(&read_text(&paths.root, &paths.k3s_config).unwrap_or_default());
    let drop_ins = paths.k3s_config.with_extension("yaml.d");
    if let Ok(entries) = std::fs::read_dir(&drop_ins) {
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        for file in files {
            if let Some(n) = k3s_node_name(&read_text(&paths.root, &file).unwrap_or_default()) {
                name = Some(n);
            }
        }
    }
    name.or_else(|| {
        let hostname = read_text(&paths.root, &paths.hostname)
            .or_else(|_| read_text(Path::new("/"), Path::new("/proc/sys/kernel/hostname")))
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
    Ok(read_kernel(paths, &paths.boot_id)?.trim().to_owned())
}

/// When this boot started, from `btime` in `/proc/stat`.
pub fn boot_time(paths: &Paths) -> std::io::Result<SystemTime> {
    let stat = read_kernel(paths, &paths.proc_stat)?;
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
