//! The `rebootguard-lab` binary: a scenario file replayed with `--json`,
//! another flannel plugin build dropped in with `--cni-bin-dir`, and the
//! exit codes. Needs root and Debian's CNI plugins for the replays.

use std::path::{Path, PathBuf};
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
        rebootguard_hostnet::netns::test_skip(
            "non_root_stops_at_once_with_a_clear_message",
            "needs root and setpriv to drop to nobody",
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

/// A background `rebootguard-lab up`, stopped (SIGTERM, so it cleans up)
/// when dropped, also when a test fails.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: SIGTERM to the lab this test started.
            unsafe { libc::kill(i32::try_from(self.0.id()).unwrap_or(0), libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
}

/// `rebootguard-lab up` in the background, with `extra` flags; returns it
/// once `status --json` shows it with every node powered.
fn up(labs: &Path, extra: &[&str]) -> (Up, serde_json::Value) {
    let child = Up(Command::new(EXE)
        .args(["up", "--nodes", "2", "--dir"])
        .arg(labs)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("up starts"));
    let t = std::time::Instant::now();
    let (up, status) = loop {
        let (code, status) = status_json(labs);
        let up = code == 0
            && status["labs"][0]["nodes"]
                .as_array()
                .is_some_and(|n| n.len() == 2 && n.iter().all(|n| n["netns"].is_string()));
        if up || t.elapsed() > std::time::Duration::from_secs(60) {
            break (up, status);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(up, "the lab did not come up: {status}");
    (child, status["labs"][0].clone())
}

fn status_json(labs: &Path) -> (i32, serde_json::Value) {
    let out = Command::new(EXE)
        .args(["status", "--json", "--dir"])
        .arg(labs)
        .output()
        .expect("status runs");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), v)
}

/// Runs the lab binary with `args` against `labs`: (exit code, stdout, stderr).
fn lab(labs: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(EXE)
        .args(args)
        .arg("--dir")
        .arg(labs)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn is_rfc3339_ms(text: &str) -> bool {
    let t = text.trim();
    t.len() == 24
        && t.ends_with('Z')
        && t.as_bytes()[19] == b'.'
        && t.parse::<jiff::Timestamp>().is_ok()
}

#[test]
fn break_k3s_restart_and_status_json_on_a_running_lab() {
    if !ready("break_k3s_restart_and_status_json_on_a_running_lab") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    // No lab yet: clear errors, non-zero.
    let (code, status) = status_json(&labs);
    assert_eq!((code, status), (1, serde_json::json!({"labs": []})));
    let (code, _, err) = lab(&labs, &["k3s-restart", "boromir"]);
    assert_eq!(code, 1);
    assert!(err.contains("no running lab"), "{err}");

    let (mut child, status) = up(&labs, &[]);
    assert_eq!(status["pid"], child.0.id());
    assert_eq!(status["time_scale"], 30.0);
    assert!(
        status["server"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(Path::new(status["kubeconfig"].as_str().unwrap()).is_file());
    assert_eq!(status["nodes"][0]["name"], "boromir");
    assert_eq!(status["nodes"][1]["public_ip"], "172.31.0.2");
    assert_eq!(status["agent"], false);
    assert_eq!(status["nodes"][0]["agent_log"], serde_json::Value::Null);
    let root = PathBuf::from(status["nodes"][0]["root"].as_str().unwrap());
    let env = root.join("run/flannel/subnet.env");
    let t = std::time::Instant::now();
    while !env.exists() {
        assert!(t.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // break prints the instant, with milliseconds.
    let before = jiff::Timestamp::now();
    let (code, out, err) = lab(&labs, &["break", "boromir", "delete-subnet-env"]);
    assert_eq!(code, 0, "{err}");
    assert!(is_rfc3339_ms(&out), "{out:?}");
    let at: jiff::Timestamp = out.trim().parse().unwrap();
    assert!(
        at >= before.round(jiff::Unit::Millisecond).unwrap() - jiff::SignedDuration::from_millis(1)
    );
    assert!(!env.exists());
    // Nothing left to break: non-zero, the reason on stderr.
    let (code, _, err) = lab(&labs, &["break", "boromir", "delete-subnet-env"]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing to break"), "{err}");
    // Usage: drop-peer needs a peer (2); unknown nodes (1).
    let (code, _, err) = lab(&labs, &["break", "boromir", "drop-peer"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = lab(&labs, &["k3s-restart", "nobody"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no running lab has a node \"nobody\""),
        "{err}"
    );
    let (code, _, err) = lab(&labs, &["k3s-restart", "--lab", "rglab-0-0", "boromir"]);
    assert_eq!(code, 1);
    assert!(err.contains("no running lab \"rglab-0-0\""), "{err}");

    // k3s-restart: confirmed, and flannel writes subnet.env again.
    let (code, out, err) = lab(&labs, &["k3s-restart", "boromir"]);
    assert_eq!(code, 0, "{err}");
    assert!(is_rfc3339_ms(&out), "{out:?}");
    let t = std::time::Instant::now();
    while !env.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "k3s restart did not rewrite subnet.env"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // A node powered off (rebooting): refused with the reason.
    let reboot = {
        let labs = labs.clone();
        std::thread::spawn(move || {
            Command::new(EXE)
                .args(["reboot", "theoden", "--down", "2m", "--dir"])
                .arg(&labs)
                .output()
        })
    };
    let t = std::time::Instant::now();
    while status_json(&labs).1["labs"][0]["nodes"][1]["netns"].is_string() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "theoden did not go down"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, _, err) = lab(&labs, &["k3s-restart", "theoden"]);
    assert_eq!(code, 1);
    assert!(err.contains("node theoden is powered off"), "{err}");
    let (code, _, err) = lab(&labs, &["break", "theoden", "stop-flannel"]);
    assert_eq!(code, 1);
    assert!(err.contains("node theoden is powered off"), "{err}");
    let out = reboot.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rebooted theoden"));
    // SAFETY: SIGTERM to the lab this test started.
    unsafe { libc::kill(i32::try_from(child.0.id()).unwrap(), libc::SIGTERM) };
    assert!(child.0.wait().unwrap().success());
    let (code, status) = status_json(&labs);
    assert_eq!((code, status), (1, serde_json::json!({"labs": []})));
    assert!(!labs.exists(), "lab directory left behind");
}

#[test]
fn agents_die_with_a_killed_lab_and_down_sweeps_the_rest() {
    if !ready("agents_die_with_a_killed_lab_and_down_sweeps_the_rest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    // A stand-in `rebootguard` whose `agent` runs until killed.
    let fake = dir.path().join("rebootguard");
    std::fs::write(&fake, "#!/bin/sh\necho \"fake $*\"\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (mut child, status) = up(&labs, &["--agent", "--rebootguard", fake.to_str().unwrap()]);
    assert_eq!(status["agent"], true);
    let roots: Vec<PathBuf> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| PathBuf::from(n["root"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status["nodes"][0]["agent_log"].as_str().map(PathBuf::from),
        Some(roots[0].join("agent.log"))
    );
    let pid_of = |root: &Path| {
        std::fs::read_to_string(root.join("agent.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
    };
    let t = std::time::Instant::now();
    while !roots.iter().all(|r| pid_of(r).is_some()) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "agents did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pids: Vec<i32> = roots.iter().filter_map(|r| pid_of(r)).collect();
    let alive = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| !r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    };
    assert!(pids.iter().all(|p| alive(*p)));
    let log = std::fs::read_to_string(roots[0].join("agent.log")).unwrap();
    assert!(
        log.contains(&format!("fake agent --root {}", roots[0].display())),
        "{log}"
    );

    // kill -9 the lab: no cleanup ran, yet the agents die with it.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let t = std::time::Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "agents outlived the lab"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // `down` removes what the killed lab left (namespaces, directory).
    let id = status["id"].as_str().unwrap().to_owned();
    let (code, out, err) = lab(&labs, &["down"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed"), "{out}");
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("rglab-{}-", child.0.id())))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "namespaces of {id} left: {left:?}");
    assert!(!labs.join(&id).exists());
}
