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

/// `nodes` plain nodes at `time_scale`, with one plain pod on each (the
/// DaemonSet `default/echo`): what most lab tests start from.
pub fn echo_scenario(nodes: usize, time_scale: f64) -> rebootguard_lab::Scenario {
    let mut s = rebootguard_lab::Scenario::plain(nodes);
    s.time_scale = time_scale;
    s.workloads.push(rebootguard_lab::scenario::Workload {
        namespace: "default".into(),
        name: "echo".into(),
        behaviour: rebootguard_lab::scenario::Behaviour::Plain,
        replicas: None,
        nodes: vec![],
    });
    s
}

/// Lab options around the test's `rebootguard-lab` binary, with lab
/// directories under `base`.
pub fn options(lab_exe: &str, base: &Path) -> rebootguard_lab::Options {
    let mut o = rebootguard_lab::Options::new(PathBuf::from(lab_exe));
    o.base_dir = base.to_path_buf();
    o
}
