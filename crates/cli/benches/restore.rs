//! `node restore` wall time and peak RSS, measured on the real binary.
//!
//! Run: `cargo bench -p rebootguard --bench restore`. Cases, side by side in
//! one run so the machine's noise hits them alike:
//! - `cp` of the backup into place (the floor for "a process that restores a file");
//! - restore from a backup, API cross-check disabled (target: ≤ 20 ms, ≤ 10 MB);
//! - restore with the API refusing connections;
//! - restore with an API that accepts but never answers (the bound must hold:
//!   about `--api-timeout`, never more).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

const BIN: &str = env!("CARGO_BIN_EXE_rebootguard");

struct Sample {
    wall: Duration,
    max_rss_kib: i64,
}

/// Runs `command` to completion and returns its wall time and peak RSS.
// The child is reaped by wait4 (which also yields its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn measure(command: &mut Command) -> Sample {
    let started = Instant::now();
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child, not yet reaped; pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    let wall = started.elapsed();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "command failed"
    );
    Sample {
        wall,
        max_rss_kib: usage.ru_maxrss,
    }
}

fn node_root(dir: &Path, config: &str) -> PathBuf {
    let root = common::example_root(dir);
    fs::write(root.join("etc/rebootguard/config.toml"), config).expect("config");
    root
}

fn report(name: &str, samples: &[Sample]) {
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    walls.sort();
    let median = walls[walls.len() / 2];
    let p95 = walls[(walls.len() * 95 / 100).min(walls.len() - 1)];
    let rss = samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
    println!(
        "{name:<44} runs {:>4}  median {:>9.2?}  p95 {:>9.2?}  peak RSS {:>6.1} MB",
        samples.len(),
        median,
        p95,
        rss as f64 / 1024.0
    );
}

fn run_case(root: &Path, runs: usize, args: &[&str]) -> Vec<Sample> {
    let live = root.join("run/flannel/subnet.env");
    (0..runs)
        .map(|_| {
            let _ = fs::remove_file(&live);
            let sample = measure(
                Command::new(BIN)
                    .args(["node", "restore", "--root"])
                    .arg(root)
                    .args(args)
                    .env("NO_COLOR", "1"),
            );
            assert!(live.exists(), "restore did not write the file");
            sample
        })
        .collect()
}

fn kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"
        ),
    )
    .expect("kubeconfig");
    path
}

fn main() {
    let runs: usize = std::env::var("RESTORE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");

    // The floor: a process that copies the backup's bytes into place.
    let offline = node_root(
        &dir.path().join("offline"),
        "node-name = \"boromir\"\napi = false\n",
    );
    let plain = offline.join("plain.env");
    fs::write(
        &plain,
        "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
    )
    .expect("write");
    let target = offline.join("copy.env");
    let cp: Vec<Sample> = (0..runs)
        .map(|_| {
            let _ = fs::remove_file(&target);
            measure(Command::new("cp").arg(&plain).arg(&target))
        })
        .collect();

    let no_api = run_case(&offline, runs, &[]);

    let refused_root = node_root(&dir.path().join("refused"), "node-name = \"boromir\"\n");
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let refused_config = kubeconfig(&dir.path().join("refused"), port);
    let refused = run_case(
        &refused_root,
        runs / 4,
        &["--kubeconfig", refused_config.to_str().expect("utf-8")],
    );

    // Accepts connections (the kernel completes the handshake from the
    // backlog) but never answers a byte.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_root = node_root(&dir.path().join("silent"), "node-name = \"boromir\"\n");
    let silent_config = kubeconfig(
        &dir.path().join("silent"),
        silent.local_addr().expect("addr").port(),
    );
    let blackholed = run_case(
        &silent_root,
        5,
        &[
            "--kubeconfig",
            silent_config.to_str().expect("utf-8"),
            "--api-timeout",
            "1s",
        ],
    );
    drop(silent);

    println!();
    report("cp (floor: a process copying the file)", &cp);
    report("restore, backup present, API disabled", &no_api);
    report("restore, API refuses connections", &refused);
    report("restore, API never answers, --api-timeout 1s", &blackholed);
    let median = |s: &[Sample]| {
        let mut w: Vec<Duration> = s.iter().map(|x| x.wall).collect();
        w.sort();
        w[w.len() / 2].as_secs_f64()
    };
    println!(
        "ratio restore(API disabled) / cp: {:.2}",
        median(&no_api) / median(&cp)
    );
}
