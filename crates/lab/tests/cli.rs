//! The `rebootguard-lab` binary: a scenario file replayed with `--json`,
//! another flannel plugin build dropped in with `--cni-bin-dir`, and the
//! exit codes. Needs root and Debian's CNI plugins for the replays.

use std::path::Path;
use std::process::Command;

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

/// A short story: one node of two reboots with flannel silently skipping,
/// then the manual fix.
const SCENARIO: &str = r#"
name = "two-nodes"
time_scale = 60

[[nodes]]
name = "alpha"

[[nodes]]
name = "beta"

[[workloads]]
namespace = "default"
name = "echo"

[[steps]]
action = "wait-healthy"
timeout = "10m"

[[steps]]
action = "reboot"
nodes = ["alpha"]
faults = ["flannel-silent-skip"]
down = "30s"

[[steps]]
action = "wait"
for = "2m"

[[steps]]
action = "fix-manually"

[[steps]]
action = "wait-healthy"
timeout = "10m"

[expect]
pods = 2
unprotected_failure_contains = "loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
unprotected_cross_node_broken = true
running_at_end = 2
"#;

fn replay(dir: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let file = dir.join("s.toml");
    std::fs::write(&file, SCENARIO).expect("write scenario");
    let out = Command::new(EXE)
        .args(["replay", "--json", "--dir"])
        .arg(dir.join("labs"))
        .arg(&file)
        .args(extra)
        .output()
        .expect("runs");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}

#[test]
fn replay_file_as_json() {
    if !ready("replay_file_as_json") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = replay(dir.path(), &[]);
    assert_eq!(code, 0, "{}", r["unmet"]);
    assert_eq!(r["scenario"], "two-nodes");
    assert!(r["sandbox_failures"].as_u64().unwrap() > 0);
    assert!(
        r["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "fix")
    );
    assert!(
        !dir.path().join("labs").exists(),
        "lab directory left behind"
    );
}

#[test]
fn another_flannel_plugin_build_behaves_the_same() {
    if !ready("another_flannel_plugin_build_behaves_the_same") {
        return;
    }
    // rebootguard-cni-flannel, built on its own, as the nodes' flannel.
    let plugin = Path::new(EXE).with_file_name("rebootguard-cni-flannel");
    if !plugin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "rebootguard-cni-flannel"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success());
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(&plugin, bin.join("flannel")).unwrap();
    for p in ["bridge", "host-local", "portmap", "bandwidth"] {
        std::os::unix::fs::symlink(Path::new("/usr/lib/cni").join(p), bin.join(p)).unwrap();
    }
    let (code, r) = replay(dir.path(), &["--cni-bin-dir", bin.to_str().unwrap()]);
    assert_eq!(code, 0, "{}", r["unmet"]);
    assert!(r["first_failure"].as_str().unwrap().ends_with("plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"));
}

#[test]
fn bad_input_is_named() {
    let out = Command::new(EXE)
        .args(["replay", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed to read scenario /nonexistent.toml")
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = 'x'\n[[nodes]]\nname = 'Bad_Name'\n").unwrap();
    let out = Command::new(EXE)
        .args(["replay"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a DNS label"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(EXE)
        .args(["status", "--dir"])
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn non_root_stops_at_once_with_a_clear_message() {
    let setpriv = Path::new("/usr/bin/setpriv");
    if !nix_root() || !setpriv.is_file() {
        eprintln!(
            "skipping non_root_stops_at_once_with_a_clear_message: needs root and setpriv to drop to nobody"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(setpriv)
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            EXE,
            "up",
            "--dir",
        ])
        .arg(dir.path().join("labs"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") {
        eprintln!("skipping non_root_stops_at_once_with_a_clear_message: nobody cannot run {EXE}");
        return;
    }
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("rebootguard-lab needs root") && err.contains("run it with sudo"),
        "{err}"
    );
}

fn nix_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
