//! What the lab's command benchmarks share: whether they can run here, and
//! the release binaries they drive.

use std::path::PathBuf;
use std::process::ExitCode;

/// The release `rebootguard-lab` and `rebootguard` next to this bench, once
/// it may run; otherwise the exit code after saying why not (`--list` and
/// a machine without root skip with success; missing binaries fail).
pub fn binaries(bench: &str) -> Result<(PathBuf, PathBuf), ExitCode> {
    if std::env::args().any(|a| a == "--list") {
        return Err(ExitCode::SUCCESS);
    }
    if let Err(reason) = rebootguard_hostnet::netns::privileged() {
        eprintln!(
            "skipping the {bench} benchmark: {}",
            rebootguard_errors::chain(&reason)
        );
        return Err(ExitCode::SUCCESS);
    }
    // Benches sit in target/<profile>/deps; the binaries one level up.
    let me = std::env::current_exe().expect("bench path");
    let dir = me
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    let (lab, rebootguard) = (dir.join("rebootguard-lab"), dir.join("rebootguard"));
    for exe in [&lab, &rebootguard] {
        if !exe.is_file() {
            eprintln!(
                "build the binaries first: cargo build --release -p rebootguard -p rebootguard-lab ({} is missing)",
                exe.display()
            );
            return Err(ExitCode::FAILURE);
        }
    }
    Ok((lab, rebootguard))
}

/// A runtime with room for a lab's many tasks.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .expect("runtime")
}
