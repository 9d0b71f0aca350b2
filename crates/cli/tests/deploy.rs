//! The deployment files agree with each other and parse.

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn nixos_module_mirrors_the_systemd_units() {
    let module = repo("nix/module.nix");
    let restore = repo("deploy/systemd/rebootguard-restore.service");
    let path = repo("deploy/systemd/rebootguard-backup.path");
    // Same watched file, same never-fail restore, same ordering targets.
    assert!(path.contains("PathChanged=/run/flannel/subnet.env"));
    assert!(module.contains("PathChanged = \"/run/flannel/subnet.env\";"));
    assert!(restore.contains("ExecStart=-/usr/local/bin/rebootguard node restore"));
    assert!(module.contains("ExecStart = \"-${bin} node ${flags} restore\";"));
    for target in ["local-fs.target", "network-online.target"] {
        assert!(
            restore.contains(target) && module.contains(target),
            "{target}"
        );
    }
    assert!(module.contains("before = cfg.k3sUnits;"));
    assert!(module.contains("wantedBy = cfg.k3sUnits;"));
}

#[test]
fn nix_files_parse() {
    if Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: nix-instantiate is not installed (Debian package nix-bin)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in ["flake.nix", "nix/module.nix", "nix/package.nix"] {
        let out = Command::new("nix-instantiate")
            .arg("--parse")
            .arg(root.join(file))
            .output()
            .expect("nix-instantiate");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The check has teeth.
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.nix");
    std::fs::write(&broken, "{ config, ... }: { options = ").expect("write");
    let out = Command::new("nix-instantiate")
        .arg("--parse")
        .arg(&broken)
        .output()
        .expect("nix-instantiate");
    assert!(!out.status.success());
}
