//! `rebootguard-lab`: a test-only k3s-shaped cluster on kubesim over a real
//! flannel data plane in network namespaces, and replays of failure stories
//! on it (root only). Also serves as the lab's `flannel` CNI plugin when
//! started under that name, and as its own CNI and DNS helpers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rebootguard_lab::control::{self, Reply};
use rebootguard_lab::lab::{self, Lab, Options};
use rebootguard_lab::scenario::{self, Fault, Scenario};
use rebootguard_lab::{RuntimeFault, dns, replay, sandbox};

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
    /// Show running labs: nodes, roles, armed boot faults, namespaces, roots,
    /// kubeconfig (--json: also boot IDs and each node's reboot_command).
    Status(StatusArgs),
    /// Open a shell inside a node's network namespace (NODE_ROOT is its root).
    Shell(ShellArgs),
    /// Replay a scenario (a TOML file, or incident-2026-01-31) and print its timeline.
    Replay(ReplayArgs),
    /// Apply the post-mortem's manual fix to a running lab (`up`).
    FixManually(TargetArgs),
    /// Reboot nodes of a running lab (`up`) together; exits once they are
    /// back (a node already off is only booted after --down; one with
    /// stays-down armed stays off: the output says so).
    Reboot(RebootArgs),
    /// Apply a fault to a node of a running lab now; prints the instant it
    /// was applied (RFC 3339, UTC, milliseconds).
    ///
    /// Faults: delete-subnet-env, corrupt-subnet-env (no FLANNEL_MTU),
    /// delete-flannel-link, drop-peer PEER (its FDB, neighbour and route on
    /// flannel.1), stop-flannel. The emulated flannel repairs none of them
    /// until k3s restarts on the node.
    Break(BreakArgs),
    /// Restart the emulated k3s of a node of a running lab, as `systemctl
    /// restart k3s` would; exits 0 once the lab has done it.
    #[command(name = "k3s-restart")]
    K3sRestart(K3sRestartArgs),
    /// Arm a boot fault for a node's next boot, whoever reboots it (its
    /// agent through node-reboot, `reboot`, an orchestrator); one-shot.
    ///
    /// Prints what is armed. `status --json` lists armed faults per node.
    /// Faults: flannel-silent-skip, podcidr-never-assigned, leaked-leases,
    /// stale-flannel-address, missing-cni-binary,
    /// api-unreachable-during-boot, stays-down (the node powers off and
    /// does not boot until `power-on` or `reboot`).
    Arm(ArmArgs),
    /// The node reboots itself, as `systemctl reboot` on it would: returns
    /// at once (printing the instant), then the lab powers the node off,
    /// keeps it off for --down and boots it with a new boot ID (unless
    /// stays-down is armed).
    ///
    /// Made to be a node agent's reboot command (an argv; `status --json`
    /// prints each node's as `reboot_command`): the caller dies with the
    /// node's power-off anyway. Exits 1 when the node is already off.
    #[command(name = "node-reboot")]
    NodeReboot(NodeRebootArgs),
    /// Boot a powered-off node now: one that stays down (stays-down), or
    /// one in a reboot's dark period (which then ends here). Exits 1 when
    /// the node is already on.
    #[command(name = "power-on")]
    PowerOn(K3sRestartArgs),
    /// CNI helper (internal).
    #[command(name = "__cni", hide = true)]
    Cni { request: String },
    /// DNS responder (internal).
    #[command(name = "__dns", hide = true)]
    Dns {
        /// `name=ip[,ip...]` records.
        records: Vec<String>,
        /// A records file to follow (rewritten by the lab).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// A pod's container process (internal).
    #[command(name = "__exec", hide = true)]
    Exec { request: String },
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

#[derive(Debug, Clone, clap::Args)]
struct TargetArgs {
    #[command(flatten)]
    base: BaseArgs,
    /// The lab to ask (its id, `rglab-<pid>-<n>`, see `status`), when
    /// several run.
    #[arg(long)]
    lab: Option<String>,
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    base: BaseArgs,
    /// Print the running labs as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct BreakArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The node.
    node: String,
    /// The fault.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(RuntimeFault::NAMES))]
    fault: String,
    /// The peer whose entries drop-peer deletes.
    peer: Option<String>,
}

#[derive(Debug, clap::Args)]
struct K3sRestartArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The node.
    node: String,
}

#[derive(Debug, clap::Args)]
struct ArmArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The node.
    node: String,
    /// The boot fault.
    #[arg(value_parser = parse_fault_name)]
    fault: Fault,
}

#[derive(Debug, clap::Args)]
struct NodeRebootArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The node (the one the caller runs on).
    node: String,
    /// How long it stays off, in real-world time (scaled like scenarios).
    #[arg(long, default_value = "60s", value_parser = parse_down)]
    down: std::time::Duration,
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
    /// Run `rebootguard agent` on every node from boot, as its systemd unit
    /// would (log: <lab dir>/nodes/<node>/agent.log).
    #[arg(long)]
    agent: bool,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Number of nodes (boromir, theoden, samwise, then node3...).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=250))]
    nodes: u16,
    /// How many nodes are k3s servers (the first ones; with more than one
    /// they run embedded etcd and the API needs a majority of them up)
    /// [default: 1, or the scenario's].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=250))]
    servers: Option<u16>,
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
    target: TargetArgs,
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
    o.agent = a.agent;
    if o.protected || o.agent {
        let rg = o
            .rebootguard
            .clone()
            .unwrap_or_else(|| o.exe.with_file_name("rebootguard"));
        if !rg.is_file() {
            let flag = if o.protected {
                "--protected"
            } else {
                "--agent"
            };
            bail!(
                "{flag} needs the rebootguard binary; {} is missing: build it (cargo build -p rebootguard) or pass --rebootguard PATH",
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
        Command::Exec { request } => return rebootguard_lab::container::helper_main(&request),
        Command::Dns { records, file } => {
            let table = dns::parse_records(records.iter().map(String::as_str));
            return match dns::serve(&table, file.as_deref()) {
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
            eprintln!("error: {}", rebootguard_errors::chain(&*e));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Apiserver(args) => apiserver(args).await.map(|()| ExitCode::SUCCESS),
        Command::Up(args) => up(args).await,
        Command::Down(b) => down(&b),
        Command::Status(a) => status(&a),
        Command::Shell(a) => shell(&a),
        Command::Replay(a) => replay_cmd(a).await,
        Command::FixManually(t) => {
            let labs = pick(&t, None)?;
            ask_all(
                &labs,
                &lab::Request::FixManually,
                std::time::Duration::from_secs(120),
            )
        }
        Command::Reboot(a) => {
            let mut labs = pick(&a.target, None)?;
            labs.retain(|s| a.nodes.iter().all(|n| s["nodes"].get(n).is_some()));
            if labs.is_empty() {
                bail!(
                    "no running lab has every node of {}; see `rebootguard-lab status`",
                    a.nodes.join(", ")
                );
            }
            let mut code = ExitCode::SUCCESS;
            for s in labs {
                let scale = s["time_scale"].as_f64().unwrap_or(1.0).max(1.0);
                let down = a.down.div_f64(scale);
                let r = lab::Request::Reboot {
                    nodes: a.nodes.clone(),
                    faults: a.fault.clone(),
                    down_ms: u64::try_from(down.as_millis()).unwrap_or(u64::MAX),
                };
                if ask_all(&[s], &r, down + std::time::Duration::from_secs(120))?
                    != ExitCode::SUCCESS
                {
                    code = ExitCode::FAILURE;
                }
            }
            Ok(code)
        }
        Command::Break(a) => {
            let fault = match RuntimeFault::parse(&a.fault, a.peer.as_deref()) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let s = one(&a.target, &a.node)?;
            let r = lab::Request::Break {
                node: a.node.clone(),
                fault,
            };
            let reply = ask(&s, &r, std::time::Duration::from_secs(15))?;
            finish(reply, "break")
        }
        Command::K3sRestart(a) => {
            let s = one(&a.target, &a.node)?;
            let r = lab::Request::K3sRestart {
                node: a.node.clone(),
                asked_by: asked_by(),
            };
            let reply = ask(&s, &r, std::time::Duration::from_secs(30))?;
            finish(reply, "k3s-restart")
        }
        Command::Arm(a) => {
            let s = one(&a.target, &a.node)?;
            let r = lab::Request::Arm {
                node: a.node.clone(),
                fault: a.fault,
            };
            let reply = ask(&s, &r, std::time::Duration::from_secs(15))?;
            print_lines(reply, "arm")
        }
        Command::NodeReboot(a) => {
            let s = one(&a.target, &a.node)?;
            let scale = s["time_scale"].as_f64().unwrap_or(1.0).max(1.0);
            let r = lab::Request::PowerCycle {
                node: a.node.clone(),
                down_ms: u64::try_from(a.down.div_f64(scale).as_millis()).unwrap_or(u64::MAX),
                asked_by: asked_by(),
            };
            let reply = ask(&s, &r, std::time::Duration::from_secs(15))?;
            finish(reply, "node-reboot")
        }
        Command::PowerOn(a) => {
            let s = one(&a.target, &a.node)?;
            let r = lab::Request::PowerOn {
                node: a.node.clone(),
            };
            let reply = ask(&s, &r, std::time::Duration::from_secs(60))?;
            print_lines(reply, "power-on")
        }
        Command::Cni { .. } | Command::Dns { .. } | Command::Exec { .. } => Ok(ExitCode::SUCCESS),
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
    let mut s = match &args.scenario {
        Some(name) => load(name)?,
        None => Scenario::plain(usize::from(args.nodes)),
    };
    if let Some(servers) = args.servers {
        let servers = usize::from(servers);
        if servers > s.nodes.len() {
            bail!(
                "--servers {servers}: the lab has only {} node(s)",
                s.nodes.len()
            );
        }
        // The flag wins over the scenario's roles.
        for n in &mut s.nodes {
            n.role = None;
        }
        s.servers = Some(servers);
    }
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
    println!(
        "rebootguard-lab node-reboot NODE   # the node reboots itself; arm NODE FAULT first to break its next boot; power-on NODE"
    );
    // The lab serves requests itself; SIGUSR1 (what older senders send)
    // only makes it look at once.
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .context("failed to watch SIGUSR1")?;
    let mut served = lab.served();
    loop {
        tokio::select! {
            r = until_signal() => { r?; break; }
            _ = usr1.recv() => lab.wake(),
            line = served.recv() => match line {
                Ok(line) => println!("{line}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    println!("({n} lines of served requests not shown)");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {}
            },
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

/// The running labs `t` names (all of them without `--lab`).
fn pick(t: &TargetArgs, node: Option<&str>) -> anyhow::Result<Vec<serde_json::Value>> {
    let running = labs(&t.base);
    if running.is_empty() {
        bail!(
            "no running lab in {}; start one with `rebootguard-lab up`",
            base_dir(&t.base).display()
        );
    }
    let running: Vec<_> = match &t.lab {
        Some(id) => {
            let ids: Vec<String> = running
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect();
            let found: Vec<_> = running
                .into_iter()
                .filter(|s| s["id"] == id.as_str())
                .collect();
            if found.is_empty() {
                bail!("no running lab {id:?} (running: {})", ids.join(", "));
            }
            found
        }
        None => running,
    };
    Ok(match node {
        Some(n) => running
            .into_iter()
            .filter(|s| s["nodes"].get(n).is_some())
            .collect(),
        None => running,
    })
}

/// The one running lab with node `node`.
fn one(t: &TargetArgs, node: &str) -> anyhow::Result<serde_json::Value> {
    let mut found = pick(t, Some(node))?;
    match found.len() {
        0 => bail!("no running lab has a node {node:?}; see `rebootguard-lab status`"),
        1 => Ok(found.remove(0)),
        _ => bail!(
            "several running labs have a node {node:?} ({}); pass --lab ID",
            found
                .iter()
                .filter_map(|s| s["id"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Sends `r` to the lab `s` and waits up to `timeout` for its reply.
fn ask(
    s: &serde_json::Value,
    r: &lab::Request,
    timeout: std::time::Duration,
) -> anyhow::Result<Reply> {
    let dir = PathBuf::from(s["dir"].as_str().unwrap_or_default());
    let pid = s["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(0);
    let id = lab::send(&dir, r)
        .with_context(|| format!("failed to queue the request in {}", dir.display()))?;
    control::wait_reply(&dir, &id, pid, timeout)
        .with_context(|| format!("no answer from lab {}", s["id"].as_str().unwrap_or("?")))
}

/// Sends `r` to every lab in `labs`, prints what each did.
fn ask_all(
    labs: &[serde_json::Value],
    r: &lab::Request,
    timeout: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for s in labs {
        let reply = ask(s, r, timeout)?;
        for line in &reply.lines {
            println!("{line}");
        }
        if let Some(e) = &reply.error {
            eprintln!("error: lab {}: {e}", s["id"].as_str().unwrap_or("?"));
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// Prints the applied instant (stdout) or the error (stderr).
fn finish(reply: Reply, what: &str) -> anyhow::Result<ExitCode> {
    match (reply.ok, reply.applied) {
        (true, Some(at)) => {
            println!("{at}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!(
                "error: {what} failed: {}",
                reply.error.as_deref().unwrap_or("the lab gave no reason")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints what the lab did (stdout) or why not (stderr).
fn print_lines(reply: Reply, what: &str) -> anyhow::Result<ExitCode> {
    for line in &reply.lines {
        println!("{line}");
    }
    if reply.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {what} failed: {}",
            reply.error.as_deref().unwrap_or("the lab gave no reason")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Who runs this command, for the lab's timeline: `rebootguard agent` when
/// the parent is `rebootguard` (the agent runs its restart-command as an
/// argv), else the parent's name.
fn asked_by() -> String {
    let ppid = std::os::unix::process::parent_id();
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_default();
    match comm.as_str() {
        "rebootguard" => "rebootguard agent".to_owned(),
        "" => format!("pid {ppid}"),
        other => format!("{other}, pid {ppid}"),
    }
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

/// The running labs as `status --json` prints them.
fn status_json(running: &[serde_json::Value]) -> serde_json::Value {
    let labs: Vec<serde_json::Value> = running
        .iter()
        .map(|s| {
            let order: Vec<String> = s["node_order"]
                .as_array()
                .map(|o| {
                    o.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_else(|| {
                    s["nodes"]
                        .as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default()
                });
            let nodes: Vec<serde_json::Value> = order
                .iter()
                .map(|name| {
                    let n = &s["nodes"][name];
                    serde_json::json!({
                        "name": name, "role": n["role"], "netns": n["netns"],
                        "powered": !n["netns"].is_null(), "boot_id": n["boot_id"],
                        "armed": n.get("armed").cloned().unwrap_or_else(|| serde_json::json!([])),
                        "root": n["root"], "public_ip": n["public_ip"], "agent_log": n["agent_log"],
                        "reboot_command": n["reboot_command"],
                    })
                })
                .collect();
            serde_json::json!({
                "id": s["id"], "pid": s["pid"], "dir": s["dir"], "kubeconfig": s["kubeconfig"],
                "server": s["server"], "time_scale": s["time_scale"],
                "agent": s["agent"].as_bool().unwrap_or(false),
                "embedded_etcd": s["embedded_etcd"].as_bool().unwrap_or(false),
                "api_up": s["api_up"].as_bool().unwrap_or(true), "nodes": nodes,
            })
        })
        .collect();
    serde_json::json!({ "labs": labs })
}

fn status(a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let running = labs(&a.base);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&status_json(&running))?);
        return Ok(if running.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    if running.is_empty() {
        println!("no lab running");
        return Ok(ExitCode::from(1));
    }
    for s in running {
        println!(
            "lab {} (pid {}), API {}, KUBECONFIG={}{}",
            s["id"].as_str().unwrap_or("?"),
            s["pid"],
            s["server"].as_str().unwrap_or("?"),
            s["kubeconfig"].as_str().unwrap_or("?"),
            if s["agent"].as_bool() == Some(true) {
                ", agents on"
            } else {
                ""
            }
        );
        if let Some(nodes) = s["nodes"].as_object() {
            for (name, n) in nodes {
                let armed: Vec<&str> = n["armed"]
                    .as_array()
                    .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                    .unwrap_or_default();
                println!(
                    "  {name:<10} {:<6} {:<14} netns {:<20} root {}{}",
                    n["role"].as_str().unwrap_or("?"),
                    n["public_ip"].as_str().unwrap_or(""),
                    n["netns"].as_str().unwrap_or("(off)"),
                    n["root"].as_str().unwrap_or(""),
                    if armed.is_empty() {
                        String::new()
                    } else {
                        format!(" armed: {}", armed.join(", "))
                    }
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
    fn break_restart_and_status_flags() {
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "break",
            "--dir",
            "/tmp/labs",
            "--lab",
            "rglab-1-0",
            "boromir",
            "drop-peer",
            "theoden",
        ])
        .unwrap();
        let Command::Break(a) = cli.command else {
            panic!("break")
        };
        assert_eq!(
            (a.node.as_str(), a.fault.as_str(), a.peer.as_deref()),
            ("boromir", "drop-peer", Some("theoden"))
        );
        assert_eq!(a.target.lab.as_deref(), Some("rglab-1-0"));
        assert!(
            Cli::try_parse_from(["rebootguard-lab", "break", "boromir", "nope"]).is_err(),
            "unknown fault"
        );
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "k3s-restart",
            "--dir",
            "/tmp/labs",
            "samwise",
        ])
        .unwrap();
        let Command::K3sRestart(a) = cli.command else {
            panic!("k3s-restart")
        };
        assert_eq!(a.node, "samwise");
        assert!(Cli::try_parse_from(["rebootguard-lab", "k3s-restart"]).is_err());
        let cli = Cli::try_parse_from(["rebootguard-lab", "status", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Status(StatusArgs { json: true, .. })
        ));
        let cli = Cli::try_parse_from(["rebootguard-lab", "up", "--agent"]).unwrap();
        assert!(matches!(cli.command, Command::Up(ref u) if u.lab.agent));
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "replay",
            "incident-2026-01-31",
            "--agent",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Replay(ref r) if r.lab.agent));
    }

    #[test]
    fn arm_node_reboot_power_on_and_servers_flags() {
        let cli = Cli::try_parse_from(["rebootguard-lab", "arm", "theoden", "stays-down"]).unwrap();
        let Command::Arm(a) = cli.command else {
            panic!("arm")
        };
        assert_eq!((a.node.as_str(), a.fault), ("theoden", Fault::StaysDown));
        assert!(Cli::try_parse_from(["rebootguard-lab", "arm", "theoden", "nope"]).is_err());
        assert!(
            Cli::try_parse_from(["rebootguard-lab", "arm", "theoden", "delete-subnet-env"])
                .is_err(),
            "a runtime fault is for break, not arm"
        );
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "node-reboot",
            "--lab",
            "rglab-1-0",
            "boromir",
        ])
        .unwrap();
        let Command::NodeReboot(a) = cli.command else {
            panic!("node-reboot")
        };
        assert_eq!(a.down, std::time::Duration::from_secs(60), "default");
        assert_eq!(a.target.lab.as_deref(), Some("rglab-1-0"));
        let cli =
            Cli::try_parse_from(["rebootguard-lab", "node-reboot", "b", "--down", "2m"]).unwrap();
        assert!(matches!(cli.command, Command::NodeReboot(ref a) if a.down.as_secs() == 120));
        let cli = Cli::try_parse_from(["rebootguard-lab", "power-on", "samwise"]).unwrap();
        assert!(matches!(cli.command, Command::PowerOn(ref a) if a.node == "samwise"));
        let cli = Cli::try_parse_from(["rebootguard-lab", "up", "--servers", "3"]).unwrap();
        assert!(matches!(cli.command, Command::Up(ref u) if u.servers == Some(3)));
        assert!(Cli::try_parse_from(["rebootguard-lab", "up", "--servers", "0"]).is_err());
    }

    #[test]
    fn status_json_lists_nodes_in_boot_order() {
        let state = serde_json::json!({
            "id": "rglab-1-0", "pid": 1, "dir": "/l", "kubeconfig": "/l/kubeconfig",
            "server": "http://127.0.0.1:1", "time_scale": 20.0, "agent": true,
            "node_order": ["theoden", "boromir"],
            "nodes": {
                "boromir": {"netns": null, "root": "/l/nodes/boromir", "public_ip": "172.31.0.2", "agent_log": "/l/nodes/boromir/agent.log"},
                "theoden": {"netns": "rglab-1-3", "root": "/l/nodes/theoden", "public_ip": "172.31.0.1", "agent_log": "/l/nodes/theoden/agent.log",
                    "role": "server", "armed": ["stays-down"], "boot_id": "b1", "reboot_command": ["/x/rebootguard-lab", "node-reboot", "theoden"]},
            },
        });
        let out = status_json(&[state]);
        let lab = &out["labs"][0];
        assert_eq!(lab["server"], "http://127.0.0.1:1");
        assert_eq!(lab["time_scale"], 20.0);
        assert_eq!(lab["nodes"][0]["name"], "theoden");
        assert_eq!(lab["nodes"][1]["netns"], serde_json::Value::Null, "off");
        assert_eq!(lab["nodes"][1]["agent_log"], "/l/nodes/boromir/agent.log");
        assert_eq!(lab["nodes"][0]["role"], "server");
        assert_eq!(lab["nodes"][0]["armed"], serde_json::json!(["stays-down"]));
        assert_eq!(lab["nodes"][0]["powered"], true);
        assert_eq!(lab["nodes"][1]["powered"], false);
        assert_eq!(
            lab["nodes"][1]["armed"],
            serde_json::json!([]),
            "older state"
        );
        assert_eq!(lab["nodes"][0]["reboot_command"][1], "node-reboot");
        assert_eq!(status_json(&[]), serde_json::json!({"labs": []}));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
