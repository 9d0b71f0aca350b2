//! Freeing host-local IPAM leases a reboot left behind.
//!
//! host-local keeps one file per allocated address in
//! `/var/lib/cni/networks/<network>/<ip>`. No container survives a reboot,
//! but those files do (the directory is on disk), and after unclean reboots
//! they exhaust the node's range: `no IP addresses available in range set`.
//! A lease file last written before this boot began cannot belong to a live
//! container, so it is freed; anything written since boot is left alone,
//! which is what makes a plain k3s restart safe.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

/// One lease file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The CNI network (directory) name, e.g. `cbr0`.
    pub network: String,
    /// The leased address (the file name).
    pub ip: IpAddr,
    /// The file.
    pub path: PathBuf,
    /// Its modification time.
    pub modified: SystemTime,
    /// The container ID recorded in it, if readable.
    pub container: Option<String>,
}

/// A lease that was (or, in a dry run, would be) freed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Freed {
    /// The CNI network.
    pub network: String,
    /// The address returned to the pool.
    pub ip: IpAddr,
    /// The container that held it before the reboot.
    pub container: Option<String>,
}

/// What a cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Leases freed (or that would be, in a dry run).
    pub freed: Vec<Freed>,
    /// Leases from this boot, kept.
    pub kept: usize,
    /// Files that could not be inspected or removed, with why.
    pub errors: Vec<String>,
}

/// The leases to free: those last written before `boot_time`.
pub fn stale(leases: &[Lease], boot_time: SystemTime) -> Vec<&Lease> {
    leases.iter().filter(|l| l.modified < boot_time).collect()
}

/// Lists lease files under `dir` (`<dir>/<network>/<ip>`); other files
/// (`lock`, `last_reserved_ip.0`) are not leases and are never touched.
pub fn scan(dir: &Path) -> (Vec<Lease>, Vec<String>) {
    let mut leases = Vec::new();
    let mut errors = Vec::new();
    let networks = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (leases, errors),
        Err(e) => {
            errors.push(format!("cannot list {}: {e}", dir.display()));
            return (leases, errors);
        }
    };
    for network in networks.flatten() {
        let Ok(kind) = network.file_type() else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        let name = network.file_name().to_string_lossy().into_owned();
        let entries = match std::fs::read_dir(network.path()) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(format!("cannot list {}: {e}", network.path().display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => meta,
                Ok(_) => continue,
                Err(e) => {
                    errors.push(format!("cannot inspect {}: {e}", path.display()));
                    continue;
                }
            };
            let Ok(modified) = meta.modified() else {
                continue;
            };
            let container = rebootguard_rootfs::read_regular(&path, 4096)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|text| {
                    text.lines()
                        .next()
                        .map(|l| l.trim().to_owned())
                        .filter(|l| !l.is_empty())
                });
            leases.push(Lease {
                network: name.clone(),
                ip,
                path,
                modified,
                container,
            });
        }
    }
    leases.sort_by(|a, b| (&a.network, a.ip).cmp(&(&b.network, b.ip)));
    (leases, errors)
}

/// Frees the leases under `dir` written before `boot_time` (only reports
/// them when `dry_run`). Every freed address is logged.
pub fn free_stale(dir: &Path, boot_time: SystemTime, dry_run: bool) -> Report {
    let (leases, mut errors) = scan(dir);
    let stale = stale(&leases, boot_time);
    let mut report = Report {
        kept: leases.len() - stale.len(),
        ..Report::default()
    };
    for lease in stale {
        if !dry_run
            && let Err(e) = std::fs::remove_file(&lease.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(format!("cannot remove {}: {e}", lease.path.display()));
            continue;
        }
        tracing::info!(
            network = %lease.network,
            ip = %lease.ip,
            container = lease.container.as_deref().unwrap_or("?"),
            dry_run,
            "freed host-local lease left from before this boot"
        );
        report.freed.push(Freed {
            network: lease.network.clone(),
            ip: lease.ip,
            container: lease.container.clone(),
        });
    }
    report.errors = errors;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, FileTimes};
    use std::time::Duration;

    fn lease(dir: &Path, network: &str, ip: &str, age: Duration) {
        let path = dir.join(network).join(ip);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, format!("c0ffee{ip}\r\neth0")).expect("write");
        let file = fs::File::options().write(true).open(&path).expect("open");
        file.set_times(FileTimes::new().set_modified(SystemTime::now() - age))
            .expect("set mtime");
    }

    #[test]
    fn frees_only_leases_from_before_the_boot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hour = Duration::from_secs(3600);
        lease(dir.path(), "cbr0", "10.42.0.5", 3 * hour);
        lease(dir.path(), "cbr0", "10.42.0.6", 2 * hour);
        lease(dir.path(), "cbr0", "10.42.0.7", Duration::from_secs(10));
        lease(dir.path(), "cbr0", "2001:cafe:42::9", 3 * hour);
        fs::write(dir.path().join("cbr0/last_reserved_ip.0"), "10.42.0.7").expect("write");
        fs::write(dir.path().join("cbr0/lock"), "").expect("write");
        let boot = SystemTime::now() - hour;

        let dry = free_stale(dir.path(), boot, true);
        assert_eq!(dry.freed.len(), 3);
        assert!(
            dir.path().join("cbr0/10.42.0.5").exists(),
            "dry run removes nothing"
        );

        let report = free_stale(dir.path(), boot, false);
        let freed: Vec<String> = report.freed.iter().map(|f| f.ip.to_string()).collect();
        assert_eq!(freed, ["10.42.0.5", "10.42.0.6", "2001:cafe:42::9"]);
        assert_eq!(
            report.freed[0].container.as_deref(),
            Some("c0ffee10.42.0.5")
        );
        assert_eq!(report.kept, 1);
        assert!(report.errors.is_empty());
        assert!(dir.path().join("cbr0/10.42.0.7").exists());
        assert!(dir.path().join("cbr0/last_reserved_ip.0").exists());
        assert!(dir.path().join("cbr0/lock").exists());

        // A plain restart later in the same boot frees nothing more.
        assert!(free_stale(dir.path(), boot, false).freed.is_empty());
    }

    #[test]
    fn missing_directory_is_nothing_to_do() {
        let report = free_stale(Path::new("/nonexistent/cni"), SystemTime::now(), false);
        assert_eq!(report, Report::default());
    }
}
