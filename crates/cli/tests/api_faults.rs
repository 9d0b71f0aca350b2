//! The API misbehaving under every command that talks to it: throttled
//! (429 with Retry-After), failing (500, 503), cutting connections,
//! answering too slowly, down, or restarting mid-run. Each command ends
//! within its bound with its documented result: a clear error, never a
//! hang, a panic, success claimed for work not done, or a partial write.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kubesim::KubeSim;
use kubesim::faults::{Failure, Route};
use serde_json::{Value, json};

mod common;

/// What goes wrong with the API.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// 429 with `Retry-After: 1` on every request.
    Throttled,
    /// 500 on every request.
    Internal,
    /// 503 on every request.
    Unavailable,
    /// Every connection closed without an answer.
    Cut,
    /// Every answer 60 s late.
    Slow,
    /// Nothing listens.
    Down,
    /// Down for 1.5 s from the start, then up again with its state.
    Restart,
}

const FAULTS: [Fault; 7] = [
    Fault::Throttled,
    Fault::Internal,
    Fault::Unavailable,
    Fault::Cut,
    Fault::Slow,
    Fault::Down,
    Fault::Restart,
];

impl Fault {
    /// Whether the API stays broken for the whole run.
    fn lasting(self) -> bool {
        !matches!(self, Self::Restart)
    }

    async fn inject(self, sim: &KubeSim) {
        let all = Route::any();
        match self {
            Self::Throttled => {
                sim.fail_next(all, u32::MAX, Failure::TooManyRequests { retry_after: 1 })
            }
            Self::Internal => sim.fail_next(all, u32::MAX, Failure::Internal),
            Self::Unavailable => sim.fail_next(all, u32::MAX, Failure::Unavailable),
            Self::Cut => sim.fail_next(all, u32::MAX, Failure::Cut),
            Self::Slow => sim.add_latency(all, Duration::from_secs(60)),
            Self::Down | Self::Restart => sim.down().await,
        }
    }
}

/// A one-node cluster (Ready, flannel's podCIDR, a running pod) and the
/// namespace verify's probes run in.
async fn cluster() -> KubeSim {
    let sim = KubeSim::with_options(kubesim::Options {
        namespaces: ["default", "kube-system", "kube-node-lease", "rebootguard"]
            .map(String::from)
            .to_vec(),
        ..kubesim::Options::default()
    })
    .await
    .expect("kubesim");
    sim.create(&json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "boromir"},
        "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "nodeInfo": {"bootID": "7c1d4a0e-2f5b-4c58-9a63-0b8d2e4f6a11"}},
    }))
    .expect("node");
    sim.create(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "boromir", "containers": [{"name": "web", "image": "web"}]},
        "status": {"phase": "Running"},
    }))
    .expect("pod");
    sim
}

/// A command under test: its arguments (`{root}` and `{out}` replaced),
/// the exit codes it may end with while the API is broken, and the bound
/// it documents.
struct Command {
    args: &'static [&'static str],
    /// Exit codes with the API broken for the whole run.
    broken: &'static [i32],
    bound: Duration,
}

const COMMANDS: &[Command] = &[
    // The node's own file comes first: restored from the backup, unverified.
    Command {
        args: &[
            "node",
            "--root",
            "{root}",
            "--api-timeout",
            "2s",
            "restore",
            "--json",
        ],
        broken: &[0],
        bound: Duration::from_secs(20),
    },
    Command {
        args: &[
            "node",
            "--root",
            "{root}",
            "--api-timeout",
            "2s",
            "status",
            "--json",
        ],
        broken: &[0, 1],
        bound: Duration::from_secs(20),
    },
    Command {
        args: &["diagnose", "--timeout", "2s", "-o", "json"],
        broken: &[2],
        bound: Duration::from_secs(30),
    },
    Command {
        args: &["snapshot", "--timeout", "2s", "-o", "{out}"],
        broken: &[2],
        bound: Duration::from_secs(30),
    },
    Command {
        args: &["clean-stale", "--timeout", "2s", "--json"],
        broken: &[2],
        bound: Duration::from_secs(30),
    },
    Command {
        args: &[
            "verify",
            "--api-timeout",
            "2s",
            "--timeout",
            "10s",
            "--json",
        ],
        broken: &[2],
        bound: Duration::from_secs(40),
    },
    Command {
        args: &[
            "reboot",
            "--manual",
            "--poll",
            "200ms",
            "--timeout",
            "2s",
            "--json",
        ],
        broken: &[2],
        bound: Duration::from_secs(40),
    },
    Command {
        args: &[
            "controller",
            "--once",
            "--identity",
            "faults",
            "--timeout",
            "2s",
            "--json",
        ],
        broken: &[2],
        bound: Duration::from_secs(40),
    },
];

/// Words a message about the API failing carries (one is enough).
const SAYS_WHY: &[&str] = &[
    "API",
    "api server",
    "apiserver",
    "429",
    "500",
    "503",
    "TooManyRequests",
    "InternalError",
    "ServiceUnavailable",
    "connect",
    "closed",
    "did not answer",
    "no successful answer",
    "within",
    "timed out",
    "unreachable",
    "could not",
];

struct Run {
    code: Option<i32>,
    took: Duration,
    stdout: String,
    stderr: String,
}

async fn run(sim: &KubeSim, command: &Command, dir: &Path) -> Run {
    let root = common::example_root(&dir.join("node"));
    std::fs::write(
        root.join("etc/rebootguard/config.toml"),
        "node-name = \"boromir\"\n",
    )
    .expect("config");
    let out: PathBuf = dir.join("snapshot.json");
    let args: Vec<String> = command
        .args
        .iter()
        .map(|a| {
            a.replace("{root}", root.to_str().expect("utf-8"))
                .replace("{out}", out.to_str().expect("utf-8"))
        })
        .collect();
    let started = Instant::now();
    // Output to files, so that a hang still shows what the command said.
    let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(&args)
        .arg("--kubeconfig")
        .arg(sim.kubeconfig_path())
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .kill_on_drop(true)
        .spawn()
        .expect("ran");
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let Ok(status) =
        tokio::time::timeout(command.bound + Duration::from_secs(10), child.wait()).await
    else {
        panic!(
            "rebootguard {args:?} hung past {:?}\nstdout:\n{}\nstderr:\n{}",
            command.bound,
            read(&stdout),
            read(&stderr)
        );
    };
    let status = status.expect("waited");
    Run {
        code: status.code(),
        took: started.elapsed(),
        stdout: read(&stdout),
        stderr: read(&stderr),
    }
}

async fn check(command: &Command, fault: Fault) {
    let sim = cluster().await;
    let dir = tempfile::tempdir().expect("tempdir");
    fault.inject(&sim).await;
    let restart = matches!(fault, Fault::Restart).then(|| {
        let sim = &sim;
        async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            sim.up().expect("up again");
        }
    });
    let (r, ()) = match restart {
        Some(up) => tokio::join!(run(&sim, command, dir.path()), up),
        None => (run(&sim, command, dir.path()).await, ()),
    };
    let what = format!(
        "{} under {fault:?}: exit {:?} after {:?}\nstdout:\n{}\nstderr:\n{}",
        command.args.join(" "),
        r.code,
        r.took,
        r.stdout,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "a panic: {what}");
    assert!(r.took <= command.bound, "past its bound: {what}");
    let code = r.code.expect("exited, not killed");
    if fault.lasting() {
        assert!(
            command.broken.contains(&code),
            "documented exit codes {:?}: {what}",
            command.broken
        );
    } else {
        assert!(matches!(code, 0..=2), "{what}");
    }
    if code != 0 {
        let said = format!("{}{}", r.stdout, r.stderr);
        assert!(
            SAYS_WHY.iter().any(|w| said.contains(w)),
            "no reason given: {what}"
        );
    }
    match command.args[0] {
        // Nothing valid is lost: the backup is restored whatever the API does.
        "node" if command.args.contains(&"restore") => {
            let outcome: Value = serde_json::from_str(&r.stdout).expect("--json");
            assert_eq!(outcome["action"], "restore", "{what}");
            if fault.lasting() {
                assert_eq!(outcome["verified"], false, "{what}");
            }
        }
        // No half-written snapshot is left where one was asked for.
        "snapshot" => {
            let file = dir.path().join("snapshot.json");
            if code != 0 {
                assert!(!file.exists(), "a partial snapshot: {what}");
            } else {
                let bytes = std::fs::read(&file).expect("the snapshot");
                serde_json::from_slice::<Value>(&bytes).expect("a whole JSON snapshot");
            }
        }
        _ => {}
    }
}

/// One test per command, each through every fault.
macro_rules! matrix {
    ($($name:ident => $index:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for fault in FAULTS {
                eprintln!("{} under {fault:?}", COMMANDS[$index].args.join(" "));
                check(&COMMANDS[$index], fault).await;
            }
        }
    )*};
}

matrix! {
    node_restore_survives_every_api_fault => 0,
    node_status_survives_every_api_fault => 1,
    diagnose_survives_every_api_fault => 2,
    snapshot_survives_every_api_fault => 3,
    clean_stale_survives_every_api_fault => 4,
    verify_survives_every_api_fault => 5,
    reboot_survives_every_api_fault => 6,
    controller_once_survives_every_api_fault => 7,
}
