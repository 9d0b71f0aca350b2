//! Shared by the lab's tests: what a lab needs to run here, and the
//! `rebootguard` binary the protected runs install on the nodes.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};

/// True when this test can run a lab (root, Debian's CNI plugins); else
/// prints why it skips.
pub fn ready(test: &str) -> bool {
    if !rebootguard_hostnet::netns::test_privileged(test) {
        return false;
    }
    for p in ["bridge", "host-local", "portmap", "bandwidth"] {
        if !Path::new("/usr/lib/cni").join(p).is_file() {
            eprintln!(
                "skipping {test}: /usr/lib/cni/{p} is missing (install containernetworking-plugins)"
            );
            return false;
        }
    }
    true
}

/// The `rebootguard` binary next to `lab_exe`, built on demand.
pub fn rebootguard(lab_exe: &str) -> PathBuf {
    let path = Path::new(lab_exe).with_file_name("rebootguard");
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "rebootguard", "--bin", "rebootguard"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo runs").success(),
            "building rebootguard failed"
        );
    }
    path
}
