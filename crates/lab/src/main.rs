//! `rebootguard-lab`: a test-only k3s-shaped cluster on kubesim over a real
//! flannel data plane in network namespaces, and replays of failure stories
//! on it (root only). Also serves as the lab's `flannel` CNI plugin when
//! started under that name, and as its own CNI and DNS helpers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rebootguard_lab::lab::{self, Lab, Options};
use rebootguard_lab::scenario::{self, Fault, Scenario};
use rebootguard_lab::{dns, replay, sandbox};

/// Test-only lab for rebootguard.
#[derive(Debug, Parser)]
#[command(name = "rebootguard-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run kubesim, the in-memory Kubernetes API server, on 127.0.0.1.
    ///
    /// Point kubectl at it with the kubeconfig it writes. Faults and request
    /// counts are under /kubesim/ (see docs/kubesim.md).
    Apiserver(ApiserverArgs),
    /// Build a lab cluster and keep it up until Ctrl-C (or `down`).
    Up(UpArgs),
    /// Stop a running lab and remove what crashed labs left behind.
    Down(BaseArgs),
    /// Show running labs: nodes, namespaces, roots, kubeconfig.
    Status(BaseArgs),
    /// Open a shell inside a node's network namespace (NODE_ROOT is its root).
    Shell(ShellArgs),
    /// Replay a scenario (a TOML file, or incident-2026-01-31) and print its timeline.
    Replay(ReplayArgs),
    /// Apply the post-mortem's manual fix to a running lab (`up`).
    FixManually(BaseArgs),
    /// Reboot nodes of a running lab (`up`) together.
    Reboot(RebootArgs),
    /// CNI helper (internal).
    #[command(name = "__cni", hide = true)]
    Cni { request: String },
    /// DNS responder (internal).
    #[command(name = "__dns", hide = true)]
    Dns { records: Vec<String> },
}

#[derive(Debug, clap::Args)]
struct ApiserverArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Kubernetes minor version reported by /version (kubectl picks its
    /// client by it).
    #[arg(long, default_value_t = 33, value_parser = clap::value_parser!(u32).range(27..=33))]
    minor: u32,
    /// Write a kubeconfig for this server here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Keep gracefully deleted pods Terminating (as on a dead node) instead
    /// of removing them when their grace period ends.
    #[arg(long)]
    hold_terminating: bool,
    /// Serve HTTPS with a certificate from a CA generated at start; the
    /// kubeconfig written trusts that CA.
    #[arg(long)]
    tls: bool,
}

#[derive(Debug, Clone, clap::Args)]
struct BaseArgs {
    /// Where lab directories live.
    #[arg(long, env = "REBOOTGUARD_LAB_DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct LabArgs {
    #[command(flatten)]
    base: BaseArgs,
    /// Install rebootguard on the nodes (restore before k3s, backups after flannel).
    #[arg(long)]
    protected: bool,
    /// The rebootguard binary [default: next to this one].
    #[arg(long)]
    rebootguard: Option<PathBuf>,
    /// A directory holding the CNI plugins (flannel, bridge, host-local,
    /// portmap, bandwidth) to install on every node [default: this binary as
    /// flannel, Debian's for the rest].
    #[arg(long)]
    cni_bin_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Number of nodes (boromir, theoden, samwise, then node3...).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=250))]
    nodes: u16,
    /// A scenario file whose nodes and workloads to bring up (its steps are not run).
    #[arg(long)]
    scenario: Option<String>,
    /// Arm a fault for a node's next boot: NODE=FAULT (repeatable).
    #[arg(long, value_parser = parse_fault)]
    fault: Vec<(String, Fault)>,
}

#[derive(Debug, clap::Args)]
struct RebootArgs {
    #[command(flatten)]
    base: BaseArgs,
    /// The nodes.
    #[arg(required = true)]
    nodes: Vec<String>,
    /// A fault for their next boot (repeatable).
    #[arg(long, value_parser = parse_fault_name)]
    fault: Vec<Fault>,
    /// How long they stay off, in real-world time (scaled like scenarios).
    #[arg(long, default_value = "60s", value_parser = parse_down)]
    down: std::time::Duration,
}

fn parse_fault_name(text: &str) -> Result<Fault, String> {
    let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
    Fault::parse(text).ok_or_else(|| format!("unknown fault {text:?}; one of {}", names.join(", ")))
}

fn parse_down(text: &str) -> Result<std::time::Duration, String> {
    scenario::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration: write e.g. 500ms, 40s, 6m"))
}

#[derive(Debug, clap::Args)]
struct ShellArgs {
    #[command(flatten)]
    base: BaseArgs,
    /// The node.
    node: String,
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// A scenario file, or `incident-2026-01-31`.
    scenario: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_fault(text: &str) -> Result<(String, Fault), String> {
    let (node, fault) = text.split_once('=').ok_or("write NODE=FAULT")?;
    let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
    let fault = Fault::parse(fault)
        .ok_or_else(|| format!("unknown fault {fault:?}; one of {}", names.join(", ")))?;
    Ok((node.to_owned(), fault))
}

fn load(name: &str) -> anyhow::Result<Scenario> {
    if name == scenario::INCIDENT_NAME {
        return Ok(Scenario::incident()?);
    }
    let text = std::fs::read_to_string(name).with_context(|| {
        format!(
            "failed to read scenario {name} (a TOML file, or {})",
            scenario::INCIDENT_NAME
        )
    })?;
    Scenario::parse(&text).with_context(|| format!("in {name}"))
}

fn base_dir(b: &BaseArgs) -> PathBuf {
    b.dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("rebootguard-lab"))
}

fn options(a: &LabArgs) -> anyhow::Result<Options> {
    let exe = std::env::current_exe().context("failed to find this executable")?;
    let mut o = Options::new(exe);
    o.protected = a.protected;
    o.rebootguard = a.rebootguard.clone();
    o.cni_bin_dir = a.cni_bin_dir.clone();
    o.base_dir = base_dir(&a.base);
    if o.protected {
        let rg = o
            .rebootguard
            .clone()
            .unwrap_or_else(|| o.exe.with_file_name("rebootguard"));
        if !rg.is_file() {
            bail!(
                "--protected needs the rebootguard binary; {} is missing: build it (cargo build -p rebootguard) or pass --rebootguard PATH",
                rg.display()
            );
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    // Multi-call: the nodes' CNI bin dirs install this binary as `flannel`.
    let argv0 = std::env::args_os().next().map(PathBuf::from);
    if argv0
        .as_ref()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "flannel")
    {
        return rebootguard_cni_flannel::plugin_main();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Cni { request } => return sandbox::helper_main(&request),
        Command::Dns { records } => {
            let table = records
                .iter()
                .filter_map(|r| {
                    let (n, ip) = r.split_once('=')?;
                    Some((n.to_ascii_lowercase(), ip.parse().ok()?))
                })
                .collect();
            return match dns::serve(&table) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dns: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // Spare workers: kubesim and the node loops share this runtime,
        // and a starved heartbeat would look like a dead node.
        .worker_threads(8)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Apiserver(args) => apiserver(args).await.map(|()| ExitCode::SUCCESS),
        Command::Up(args) => up(args).await,
        Command::Down(b) => down(&b),
        Command::Status(b) => status(&b),
        Command::Shell(a) => shell(&a),
        Command::Replay(a) => replay_cmd(a).await,
        Command::FixManually(b) => request(&b, &lab::Request::FixManually, "fix-manually"),
        Command::Reboot(a) => {
            let running = labs(&a.base);
            let scale = running
                .first()
                .and_then(|s| s["time_scale"].as_f64())
                .unwrap_or(1.0)
                .max(1.0);
            let r = lab::Request::Reboot {
                nodes: a.nodes.clone(),
                faults: a.fault.clone(),
                down_ms: u64::try_from(a.down.div_f64(scale).as_millis()).unwrap_or(u64::MAX),
            };
            request(&a.base, &r, "reboot")
        }
        Command::Cni { .. } | Command::Dns { .. } => Ok(ExitCode::SUCCESS),
    }
}

async fn until_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to watch SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("failed to wait for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let o = options(&args.lab)?;
    let s = match &args.scenario {
        Some(name) => load(name)?,
        None => Scenario::plain(usize::from(args.nodes)),
    };
    lab::sweep(&o.base_dir);
    let lab = tokio::select! {
        l = Lab::up(s, o) => l?,
        r = until_signal() => { r?; return Ok(ExitCode::from(130)); }
    };
    for (node, fault) in &args.fault {
        lab.inject(node, *fault)?;
    }
    println!("lab {} up: {} nodes", lab.ctx.id, lab.ctx.nodes.len());
    println!(
        "export KUBECONFIG={}",
        lab.ctx.dir.join("kubeconfig").display()
    );
    println!(
        "rebootguard-lab shell NODE   # a shell on a node; rebootguard-lab fix-manually; Ctrl-C or rebootguard-lab down to stop"
    );
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .context("failed to watch SIGUSR1")?;
    loop {
        tokio::select! {
            r = until_signal() => { r?; break; }
            _ = usr1.recv() => {
                for line in lab.serve_requests().await {
                    println!("{line}");
                }
            }
        }
    }
    drop(lab);
    Ok(ExitCode::SUCCESS)
}

fn labs(b: &BaseArgs) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(base_dir(b)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("state.json")).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter(|s| {
            s["pid"]
                .as_u64()
                .is_some_and(|p| std::path::Path::new("/proc").join(p.to_string()).exists())
        })
        .collect()
}

fn request(b: &BaseArgs, r: &lab::Request, what: &str) -> anyhow::Result<ExitCode> {
    let running = labs(b);
    if running.is_empty() {
        bail!("no running lab to {what}; start one with `rebootguard-lab up`");
    }
    for s in running {
        let dir = PathBuf::from(s["dir"].as_str().unwrap_or_default());
        lab::send(&dir, r)
            .with_context(|| format!("failed to queue the request in {}", dir.display()))?;
        let signal = libc::SIGUSR1;
        let pid = s["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0);
        if pid > 0 {
            // SAFETY: kill(2) with a pid read from a lab's own state file.
            unsafe { libc::kill(pid, signal) };
            println!(
                "{what}: signalled lab {} (pid {pid})",
                s["id"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn down(b: &BaseArgs) -> anyhow::Result<ExitCode> {
    let running = labs(b);
    let pids: Vec<i32> = running
        .iter()
        .filter_map(|s| s["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect();
    for pid in &pids {
        // SAFETY: as above.
        unsafe { libc::kill(*pid, libc::SIGTERM) };
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pids
        .iter()
        .any(|p| std::path::Path::new("/proc").join(p.to_string()).exists())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let removed = lab::sweep(&base_dir(b));
    println!(
        "stopped {} lab(s); removed {} leftover(s)",
        pids.len(),
        removed.len()
    );
    for r in removed {
        println!("  {r}");
    }
    Ok(ExitCode::SUCCESS)
}

fn status(b: &BaseArgs) -> anyhow::Result<ExitCode> {
    let running = labs(b);
    if running.is_empty() {
        println!("no lab running");
        return Ok(ExitCode::from(1));
    }
    for s in running {
        println!(
            "lab {} (pid {}), API {}, KUBECONFIG={}",
            s["id"].as_str().unwrap_or("?"),
            s["pid"],
            s["server"].as_str().unwrap_or("?"),
            s["kubeconfig"].as_str().unwrap_or("?")
        );
        if let Some(nodes) = s["nodes"].as_object() {
            for (name, n) in nodes {
                println!(
                    "  {name:<10} {:<14} netns {:<20} root {}",
                    n["public_ip"].as_str().unwrap_or(""),
                    n["netns"].as_str().unwrap_or("(off)"),
                    n["root"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn shell(a: &ShellArgs) -> anyhow::Result<ExitCode> {
    for s in labs(&a.base) {
        if let Some(n) = s["nodes"].get(&a.node) {
            let ns = n["netns"].as_str().context("that node is powered off")?;
            let netns = rebootguard_hostnet::netns::Netns::open_named(ns)?;
            let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
            let status = netns
                .command(&shell)?
                .env("NODE_ROOT", n["root"].as_str().unwrap_or(""))
                .env("KUBECONFIG", s["kubeconfig"].as_str().unwrap_or(""))
                .status()
                .context("failed to start the shell")?;
            return Ok(if status.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    bail!(
        "no running lab has a node {:?}; see `rebootguard-lab status`",
        a.node
    )
}

async fn replay_cmd(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let s = load(&a.scenario)?;
    let o = options(&a.lab)?;
    lab::sweep(&o.base_dir);
    let report = tokio::select! {
        r = replay::replay(s, o) => r?,
        r = until_signal() => { r?; eprintln!("interrupted; lab removed"); return Ok(ExitCode::from(130)); }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", replay::render(&report));
    }
    Ok(if report.unmet.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn apiserver(args: ApiserverArgs) -> anyhow::Result<()> {
    let options = kubesim::Options {
        port: args.port,
        version_minor: args.minor,
        pod_termination: if args.hold_terminating {
            kubesim::PodTermination::Hold
        } else {
            kubesim::PodTermination::Kubelet
        },
        tls: args.tls,
        ..kubesim::Options::default()
    };
    let sim = kubesim::KubeSim::with_options(options)
        .await
        .with_context(|| format!("failed to start kubesim on port {}", args.port))?;
    let kubeconfig = match args.kubeconfig {
        Some(path) => {
            std::fs::write(&path, sim.kubeconfig_yaml())
                .with_context(|| format!("failed to write the kubeconfig to {}", path.display()))?;
            path
        }
        None => sim.kubeconfig_path().to_owned(),
    };
    println!("kubesim serving {}", sim.url());
    println!("export KUBECONFIG={}", kubeconfig.display());
    tokio::signal::ctrl_c()
        .await
        .context("failed to wait for Ctrl-C")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_flags() {
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "apiserver",
            "--port",
            "0",
            "--minor",
            "31",
        ])
        .unwrap();
        let Command::Apiserver(a) = cli.command else {
            panic!("apiserver")
        };
        assert_eq!(
            (a.port, a.minor, a.hold_terminating, a.tls),
            (0, 31, false, false)
        );
        assert!(Cli::try_parse_from(["rebootguard-lab", "apiserver", "--minor", "34"]).is_err());
    }

    #[test]
    fn up_and_replay_flags() {
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "up",
            "--nodes",
            "20",
            "--fault",
            "boromir=flannel-silent-skip",
        ])
        .unwrap();
        let Command::Up(a) = cli.command else {
            panic!("up")
        };
        assert_eq!(a.nodes, 20);
        assert_eq!(a.fault, [("boromir".to_owned(), Fault::FlannelSilentSkip)]);
        assert!(Cli::try_parse_from(["rebootguard-lab", "up", "--fault", "boromir=nope"]).is_err());
        assert!(Cli::try_parse_from(["rebootguard-lab", "up", "--nodes", "0"]).is_err());
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "replay",
            "incident-2026-01-31",
            "--protected",
            "--json",
        ])
        .unwrap();
        let Command::Replay(r) = cli.command else {
            panic!("replay")
        };
        assert!(r.json && r.lab.protected);
    }

    #[test]
    fn reboot_flags() {
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "reboot",
            "boromir",
            "theoden",
            "--fault",
            "flannel-silent-skip",
            "--down",
            "6m",
        ])
        .unwrap();
        let Command::Reboot(a) = cli.command else {
            panic!("reboot")
        };
        assert_eq!(a.nodes, ["boromir", "theoden"]);
        assert_eq!(a.fault, [Fault::FlannelSilentSkip]);
        assert_eq!(a.down, std::time::Duration::from_secs(360));
        assert!(Cli::try_parse_from(["rebootguard-lab", "reboot"]).is_err());
        assert!(Cli::try_parse_from(["rebootguard-lab", "reboot", "a", "--down", "soon"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
