//! The command line, parsed and checked before anything touches the system.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps Kubernetes nodes truthful and working across reboots.
///
/// After a reboot, k3s's embedded flannel can fail to rewrite
/// /run/flannel/subnet.env (tmpfs): the node says Ready, yet no pod gets
/// networking. rebootguard keeps that file alive across reboots and tells
/// the truth about it.
#[derive(Debug, Parser)]
#[command(name = "rebootguard", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success, 1 a problem was found or an operation failed, 2 usage or configuration error.\n`node restore` exits 0 even when it could not restore: it must never hold k3s back."
)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, global = true, env = "REBOOTGUARD_LOG", default_value = "info")]
    pub log: String,
    /// Log as JSON lines instead of text (logs go to stderr).
    #[arg(long, global = true)]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Guard this node's flannel state (run on the node, as root).
    Node(Node),
    /// Watch this node and keep its PodNetworkReady condition (and taint) true; heal and alert.
    ///
    /// Event-driven: inotify on /run/flannel, netlink notifications (links,
    /// addresses, routes, neighbours, FDB), API watches on the Nodes, this
    /// node's pods and sandbox failure events; plus a slow full check and a
    /// periodic probe (a real CNI ADD/DEL). Writes the Node condition
    /// PodNetworkReady (True only after a check and a probe pass; False with
    /// the failing check's reason at once), optionally the taint
    /// rebootguard.io/pod-network-unready:NoSchedule, and Events on the Node.
    /// Heals: restores subnet.env (backup, else regenerated), then restarts
    /// k3s once under a cluster-wide Lease when flannel's device or peer
    /// entries stay broken; gives up, tainted and alerting, when that does not
    /// help. Settings: the node options plus the config file's [agent] table
    /// (docs/agent.md). Runs until SIGTERM; exit 0 then, 2 on bad settings.
    Agent(AgentArgs),
    /// Find the first domino: root causes of a cascading failure, ranked, with the fix.
    ///
    /// Reads the live cluster (kubeconfig like kubectl), or --snapshot files
    /// (`rebootguard snapshot`, or `kubectl get ... -A -o json|yaml` output,
    /// gzip allowed), or a `kubectl cluster-info dump` directory (--dump).
    /// Exit 0 healthy, 1 problems found, 2 could not diagnose.
    Diagnose {
        /// Where the cluster state comes from.
        #[command(flatten)]
        input: Input,
        /// Report format.
        #[arg(short, long, value_enum, default_value = "human")]
        output: Output,
        /// Analyse as of this time (RFC 3339) [default: the snapshot's collection time, else now].
        #[arg(long)]
        now: Option<String>,
        /// Components config (YAML or JSON) replacing the built-in list of CoreDNS, flannel, Longhorn, Flux, ...
        #[arg(long)]
        config: Option<PathBuf>,
        /// Colour: auto (a terminal without NO_COLOR), always, never.
        #[arg(long, value_enum, default_value = "auto")]
        color: Color,
    },
    /// Prove that a pod on every node really works: a probe pod per node gets
    /// an IP in the node's podCIDR, resolves cluster DNS and reaches the others.
    ///
    /// On every selected node at once (all by default, --node, -l), a probe pod
    /// pinned to the node (nodeName; it tolerates every taint, so the readiness
    /// taint and cordons do not keep it off) runs `rebootguard verify probe`
    /// from --image. Inside its own network namespace it checks:
    ///
    ///   sandbox  the pod got a sandbox and an address (else the kubelet's
    ///            FailedCreatePodSandBox event is the evidence)
    ///   pod-ip   its address lies in the node's podCIDR
    ///   dns      kubernetes.default and the run's Service resolve through the
    ///            pod's resolver (cluster DNS, search domains as for any app)
    ///   peers    it reaches the probe on every other node over TCP (peers found
    ///            through a headless Service made for the run)
    ///
    /// Results come back only through the API (each probe's termination
    /// message); verify never connects to a pod itself. Every pod and the
    /// Service are deleted on every exit path, Ctrl-C included; leftovers of a
    /// killed run are removed by the next run. Creates pods and one Service in
    /// --namespace, nothing else (RBAC: docs/verify.md).
    ///
    /// Exit codes: 0 every check passed on every node; 1 a check failed; 2
    /// could not verify (API unreachable or refusing, no such node, a probe
    /// that could not start or report); 130/143 interrupted (after cleanup).
    #[command(verbatim_doc_comment)]
    #[command(after_help = "Examples:\n  \
        rebootguard verify\n  \
        rebootguard verify --node boromir --node theoden --timeout 30s\n  \
        rebootguard verify -l node-role.kubernetes.io/control-plane!=true --json\n  \
        rebootguard verify --dry-run            # print the Service and pods it would create")]
    Verify(VerifyArgs),
    /// Save what `diagnose` reads from the live cluster into one file, to share or diagnose later.
    Snapshot {
        /// Output file (`-` for stdout); gzip when it ends in .gz or with --gzip.
        #[arg(short, long)]
        output: PathBuf,
        /// Compress with gzip.
        #[arg(long)]
        gzip: bool,
        /// Kubeconfig [default: KUBECONFIG, ~/.kube/config, in-cluster].
        #[arg(long, env = "REBOOTGUARD_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// Bound on each API request.
        #[arg(long, default_value = "30s")]
        timeout: String,
    },
    /// List, and with --yes delete, the pods a reboot left stale.
    ///
    /// Only pods on nodes whose boot ID changed since the pod started (or that
    /// are gone), whose containers cannot be running, and (unless
    /// --include-unowned) owned by a controller that recreates them. Force
    /// deletion only when the node proves the containers are gone. Dry run by default.
    CleanStale {
        /// Where the cluster state comes from (a snapshot only lists).
        #[command(flatten)]
        input: Input,
        /// Delete the listed pods (live cluster only).
        #[arg(long)]
        yes: bool,
        /// Also act on pods no recreating controller owns.
        #[arg(long)]
        include_unowned: bool,
        /// Print the plan and results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reboot nodes one at a time; move on only when the rebooted node really works.
    ///
    /// Per node: the gates (every other node healthy, server quorum kept,
    /// no Longhorn volume losing its last healthy replica, PodDisruptionBudgets,
    /// no alert firing (--prometheus), inside a --window, every other node
    /// passing verify (--verify)) → the rollout Lease → cordon → drain through the
    /// eviction API (DaemonSet and mirror pods stay; a budget answering 429 is
    /// retried until --timeout-drain, then reported, never forced unless
    /// --force) → the reboot (the node's agent, through the Node; or
    /// --reboot-command; or --manual) → a new boot ID → Ready → PodNetworkReady
    /// from the new boot (and verify, with --verify) → its stale pods deleted →
    /// storage healthy → uncordon. --webhook hears of the start, each node,
    /// a stop and the end.
    /// A failed gate or timeout stops the rollout with that node left
    /// cordoned, what failed, the first domino (diagnose) and what to do.
    /// Rerun to resume: the state lives in the Lease and Node annotations.
    /// Exit 0 done (or --dry-run printed), 1 stopped at a node, 2 could not run
    /// (bad arguments, API unreachable, another rollout holds the Lease).
    Reboot(Box<crate::reboot::Args>),
    /// Reboot, in the cluster, the nodes that need it: one at a time, in a maintenance window, verified.
    ///
    /// Runs as a Deployment (deploy/kubernetes/controller): replicas elect a
    /// leader with a Lease; the leader looks at the Nodes every --poll and
    /// reboots the ones marked as needing it (the agent writes
    /// rebootguard.io/reboot-required while /var/run/reboot-required exists),
    /// agents first, inside a --window, each through the same gates, agent
    /// handshake and verification as `rebootguard reboot`. A stopped rollout
    /// holds every further reboot until a human finishes or drops it.
    /// Runs until SIGTERM (exit 0); --once decides and acts once.
    Controller(crate::controller::Args),
    /// Install the systemd units for k3s: restore before k3s, back up subnet.env, and (--agent) the node agent.
    ///
    /// Writes rebootguard-restore.service, rebootguard-backup.path and
    /// rebootguard-backup.service (pointing at this binary) and the man
    /// pages, then runs systemctl daemon-reload, enable and start. With
    /// --agent, also rebootguard-agent.service, enabled and (re)started
    /// without waiting for its first verdict. Files already up to date are
    /// left alone; run it again after upgrading the binary.
    Install {
        /// Host root to install under.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Unit directory (under the root).
        #[arg(long, default_value = "/etc/systemd/system")]
        unit_dir: PathBuf,
        /// The binary the units run [default: this executable].
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the units but do not run systemctl.
        #[arg(long)]
        no_enable: bool,
        /// Also install, enable and (re)start the node agent (rebootguard-agent.service).
        ///
        /// Off by default, because the agent does more than the other units:
        /// they only keep this node's subnet.env, while the agent writes to the
        /// API (the Node condition PodNetworkReady, Events) and may restart
        /// k3s (once, under a cluster-wide Lease). Run it either here or as
        /// the DaemonSet (deploy/kubernetes/agent), not both. The readiness
        /// taint stays off unless `taint = true` is set in the [agent] table
        /// of /etc/rebootguard/config.toml. Without --agent, an agent unit
        /// installed earlier is left as it is.
        #[arg(long)]
        agent: bool,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) for `rebootguard` and its subcommands.
    Man {
        /// Write one page per command into this directory instead of printing the main page.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// `rebootguard verify ...`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct VerifyArgs {
    /// A node to verify; repeatable [default: every node].
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Only nodes matching this label selector (as kubectl's -l).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Bound on the whole run, from creating the pods to the verdict (cleanup after it).
    #[arg(long, default_value = "60s")]
    pub timeout: String,
    /// The probe's image: any image with `rebootguard` on its PATH.
    #[arg(long, default_value = rebootguard_verify::DEFAULT_IMAGE)]
    pub image: String,
    /// Namespace for the probe pods and the Service (must exist).
    #[arg(short = 'n', long, default_value = rebootguard_verify::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// TCP port the probes listen on and reach each other at.
    #[arg(long, default_value_t = rebootguard_verify::DEFAULT_PORT)]
    pub port: u16,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the Service and pods it would create (YAML); create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Kubeconfig [default: KUBECONFIG, ~/.kube/config, in-cluster].
    #[arg(long, env = "REBOOTGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Bound on each API request.
    #[arg(long, default_value = "10s")]
    pub api_timeout: String,
    /// The probe itself (runs inside each verify pod).
    #[command(subcommand)]
    pub command: Option<VerifyCommand>,
}

/// `rebootguard verify <command>`.
#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// Inside a verify pod: check this pod's address, DNS and peers, write the
    /// result as the termination message. Started by `rebootguard verify`.
    #[command(hide = true)]
    Probe(ProbeArgs),
}

/// `rebootguard verify probe ...` (what `verify` puts in each pod).
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The node this pod runs on.
    #[arg(long)]
    pub node: String,
    /// The node's podCIDR; repeatable (dual-stack).
    #[arg(long = "pod-cidr", value_name = "CIDR")]
    pub pod_cidrs: Vec<String>,
    /// The run's headless Service (every probe's address).
    #[arg(long)]
    pub service: String,
    /// Another name that must resolve; repeatable.
    #[arg(long = "lookup", value_name = "NAME")]
    pub lookups: Vec<String>,
    /// How many other probes to reach.
    #[arg(long, default_value_t = 0)]
    pub peers: usize,
    /// The port every probe listens on.
    #[arg(long, default_value_t = rebootguard_verify::DEFAULT_PORT)]
    pub port: u16,
    /// How long to wait for the peers.
    #[arg(long, default_value = "30s")]
    pub wait: String,
    /// Where to write the result (the container's terminationMessagePath).
    #[arg(long, default_value = rebootguard_verify::TERMINATION_MESSAGE_PATH)]
    pub message_path: PathBuf,
}

/// `rebootguard node ...`
#[derive(Debug, Args)]
#[command(after_help = "Paths default to k3s's: /run/flannel/subnet.env, \
/var/lib/rancher/k3s/agent/etc/flannel/net-conf.json, backups in /var/lib/rebootguard.\n\
Settings come from flags, then REBOOTGUARD_* environment variables, then the config file, then defaults.")]
pub struct Node {
    /// Shared node settings.
    #[command(flatten)]
    pub opts: NodeOpts,
    /// The operation.
    #[command(subcommand)]
    pub command: NodeCommand,
}

/// `rebootguard agent ...`
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Node settings, as for `rebootguard node`.
    #[command(flatten)]
    pub opts: NodeOpts,
    /// Manage the readiness taint rebootguard.io/pod-network-unready:NoSchedule
    /// [default: the config file's taint, else off].
    #[arg(long, overrides_with = "no_taint")]
    pub taint: bool,
    /// Never touch the readiness taint.
    #[arg(long)]
    pub no_taint: bool,
    /// Address for /metrics and /healthz, or "off" [default: 127.0.0.1:9478].
    #[arg(long, env = "REBOOTGUARD_LISTEN")]
    pub listen: Option<String>,
    /// Report (condition, taint, events, alerts) but never restore subnet.env or restart k3s.
    #[arg(long)]
    pub dry_run: bool,
}

/// Settings every node operation shares.
#[derive(Debug, Args, Clone, Default)]
pub struct NodeOpts {
    /// Prefix for every host path (e.g. /host in a pod that mounts the host).
    #[arg(long, global = true, env = "REBOOTGUARD_ROOT", default_value = "/")]
    pub root: PathBuf,
    /// Config file [default: <root>/etc/rebootguard/config.toml].
    #[arg(long, global = true, env = "REBOOTGUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The flannel deployment.
    #[arg(long, global = true, env = "REBOOTGUARD_PROFILE", value_enum)]
    pub profile: Option<ProfileArg>,
    /// This node's Kubernetes name [default: k3s's node-name, else the hostname].
    #[arg(long, global = true, env = "REBOOTGUARD_NODE_NAME")]
    pub node_name: Option<String>,
    /// Backup store directory (a host path) [default: /var/lib/rebootguard].
    #[arg(long, global = true, env = "REBOOTGUARD_STORE_DIR")]
    pub store_dir: Option<PathBuf>,
    /// Backups to keep [default: 5].
    #[arg(long, global = true, env = "REBOOTGUARD_KEEP")]
    pub keep: Option<NonZeroUsize>,
    /// Kubeconfig [default: KUBECONFIG, ~/.kube/config, in-cluster, then k3s's own].
    #[arg(long, global = true, env = "REBOOTGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Never ask the API server.
    #[arg(long, global = true)]
    pub no_api: bool,
    /// Bound on API calls, e.g. 500ms, 2s [default: 2s].
    #[arg(long, global = true, env = "REBOOTGUARD_API_TIMEOUT")]
    pub api_timeout: Option<String>,
    /// Overlay MTU to write instead of deriving it (flannel.1, previous file, underlay − overhead).
    #[arg(long, global = true, env = "REBOOTGUARD_MTU", value_parser = clap::value_parser!(u32).range(68..=65535))]
    pub mtu: Option<u32>,
    /// FLANNEL_IPMASQ to write when regenerating [default: true, as k3s].
    #[arg(long, global = true, env = "REBOOTGUARD_IPMASQ")]
    pub ipmasq: Option<bool>,
    /// The CNI conflist (a host path) [default: the profile's, e.g. k3s's 10-flannel.conflist].
    #[arg(long, global = true, env = "REBOOTGUARD_CONFLIST", value_name = "PATH")]
    pub conflist: Option<PathBuf>,
    /// A CNI plugin directory (a host path); repeatable, searched in order
    /// [default: the profile's, e.g. k3s's data/cni and data/current/bin].
    #[arg(
        long,
        global = true,
        env = "REBOOTGUARD_CNI_BIN_DIRS",
        value_delimiter = ':',
        value_name = "DIR"
    )]
    pub cni_bin_dir: Vec<PathBuf>,
}

/// Where cluster state comes from: files, or the live API.
#[derive(Debug, Args, Clone, Default)]
pub struct Input {
    /// Snapshot or kubectl output file(s) (JSON, YAML, gzip; `-` for stdin); repeatable.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Vec<PathBuf>,
    /// A `kubectl cluster-info dump --output-directory` directory.
    #[arg(long, value_name = "DIR", conflicts_with = "snapshot")]
    pub dump: Option<PathBuf>,
    /// Kubeconfig for the live cluster [default: KUBECONFIG, ~/.kube/config, in-cluster].
    #[arg(long, env = "REBOOTGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Bound on each API request in live mode.
    #[arg(long, default_value = "30s")]
    pub timeout: String,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For a terminal: the first domino first, as a tree.
    Human,
    /// Versioned JSON (schema in docs/diagnose.md).
    Json,
    /// Markdown, to paste into a post-mortem.
    Markdown,
    /// The causal graph as a Mermaid flowchart.
    Mermaid,
    /// The causal graph as Graphviz DOT.
    Dot,
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The flannel deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// k3s with embedded flannel.
    K3s,
    /// The kube-flannel DaemonSet.
    KubeFlannel,
}

/// The node operations.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Put back a valid subnet.env before k3s starts (run by rebootguard-restore.service).
    ///
    /// Keeps a valid live file. Otherwise restores this node's newest valid
    /// backup, cross-checked with the API when it answers in time; regenerates
    /// from the API and net-conf.json when the backup disagrees or none
    /// exists. Also frees host-local IP leases left from before this boot.
    /// Exits 0 when it leaves a valid subnet.env, 3 when it could not (the
    /// reason on its one line of output); its systemd unit ignores the
    /// status, so k3s starts either way.
    Restore {
        /// Bound on the whole run [default: 5s].
        #[arg(long, env = "REBOOTGUARD_TIMEOUT")]
        timeout: Option<String>,
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Store the live subnet.env as a new backup generation if it is valid and changed.
    Backup {
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Derive subnet.env from the API and net-conf.json; show it and its diff.
    ///
    /// Writes nothing unless --write; replaces a valid live file that differs
    /// only with --force.
    Regenerate {
        /// Write the derived file.
        #[arg(long)]
        write: bool,
        /// With --write: replace a valid live file too.
        #[arg(long, requires = "write")]
        force: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Can a pod get networking on this node? Every check, its evidence and the fix.
    ///
    /// Checks, in the order pod networking depends on them: subnet.env
    /// (present, parsed as the flannel plugin parses it, agreeing with
    /// net-conf.json, the Node's podCIDRs and flannel.1's MTU); flannel.1
    /// (VXLAN, up, VNI/port, local IP and MAC as flannel announced, the
    /// lease's /32); every peer's FDB entry, neighbour and route; the CNI
    /// conflist, its plugin binaries and cni0's gateway; host-local leases
    /// leaked by unclean reboots; recent FailedCreatePodSandBox events for
    /// this node's pods. Read-only. Run it in the node's network namespace.
    /// Exit 0 all OK (warnings allowed), 1 a check failed, 2 something could
    /// not be checked.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the live file, backups, net-conf.json and the API side by side. Exits 1 when unhealthy.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prove a pod on this node gets networking: a real CNI ADD and DEL for a throwaway pod.
    ///
    /// Runs this node's CNI conflist with its own plugins, as the kubelet's
    /// container runtime does for every pod sandbox, for a pod in a network
    /// namespace made for the purpose, then checks what a pod needs:
    ///
    ///   add        CNI ADD through every plugin of the conflist
    ///   interface  the pod's eth0 exists, is up, carries the address ADD reported
    ///   subnet     (flannel) the address lies in this node's FLANNEL_SUBNET
    ///   ping       from the pod: its gateway (cni0), and one peer node's
    ///              flannel.1 across the overlay (found in the routes flannel
    ///              installs; none on a single-node cluster, which is only a note)
    ///   del        CNI DEL, then that nothing is left (veth, IP lease, flannel's saved config)
    ///
    /// A failed ADD is printed exactly as containerd and the kubelet word it, e.g.
    /// plugin type="flannel" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory
    ///
    /// Under --root, the plugins see the node's run/ and var/ at /run and /var
    /// (a private mount namespace of this process), so they read the node's
    /// files and their errors name the real paths. Ctrl-C or SIGTERM stops the
    /// probe but still runs DEL first; a second one abandons it.
    ///
    /// Needs root. Exit codes: 0 the probe passed; 1 it failed (pods on this node
    /// would not get working networking); 2 it could not probe (no conflist, not
    /// root, bad settings); 130/143 interrupted by SIGINT/SIGTERM (after cleaning up).
    #[command(verbatim_doc_comment)]
    #[command(after_help = "Examples:\n  \
        rebootguard node probe\n  \
        rebootguard node probe --root /host --json\n  \
        rebootguard node probe --conflist /etc/cni/net.d/10-containerd-net.conflist --cni-bin-dir /opt/cni/bin")]
    Probe {
        /// Bound on each plugin call (ADD, DEL of each plugin), e.g. 5s.
        #[arg(long, default_value = "20s")]
        timeout: String,
        /// Bound on each ping from the pod.
        #[arg(long, default_value = "2s")]
        ping_timeout: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn node_flags_parse_anywhere() {
        let cli = Cli::try_parse_from([
            "rebootguard",
            "node",
            "restore",
            "--root",
            "/host",
            "--node-name",
            "boromir",
            "--dry-run",
            "--timeout",
            "1s",
        ])
        .expect("parses");
        let Command::Node(node) = cli.command else {
            panic!("node")
        };
        assert_eq!(node.opts.root, PathBuf::from("/host"));
        assert_eq!(node.opts.node_name.as_deref(), Some("boromir"));
        assert!(matches!(
            node.command,
            NodeCommand::Restore { dry_run: true, .. }
        ));
    }

    #[test]
    fn probe_takes_conflist_bin_dirs_and_timeouts() {
        let cli = Cli::try_parse_from([
            "rebootguard",
            "node",
            "probe",
            "--conflist",
            "/etc/cni/net.d/10-flannel.conflist",
            "--cni-bin-dir",
            "/opt/cni/bin",
            "--cni-bin-dir",
            "/usr/lib/cni:/usr/libexec/cni",
            "--timeout",
            "5s",
            "--json",
        ])
        .expect("parses");
        let Command::Node(node) = cli.command else {
            panic!("node")
        };
        assert_eq!(
            node.opts.conflist,
            Some(PathBuf::from("/etc/cni/net.d/10-flannel.conflist"))
        );
        assert_eq!(
            node.opts.cni_bin_dir,
            [
                PathBuf::from("/opt/cni/bin"),
                PathBuf::from("/usr/lib/cni"),
                PathBuf::from("/usr/libexec/cni")
            ]
        );
        let NodeCommand::Probe {
            timeout,
            ping_timeout,
            json,
        } = node.command
        else {
            panic!("probe")
        };
        assert_eq!(
            (timeout.as_str(), ping_timeout.as_str(), json),
            ("5s", "2s", true)
        );
    }

    #[test]
    fn verify_takes_nodes_selector_and_bounds() {
        let cli = Cli::try_parse_from([
            "rebootguard",
            "verify",
            "--node",
            "boromir",
            "--node",
            "theoden",
            "-l",
            "a=b",
            "--timeout",
            "20s",
            "--json",
            "-n",
            "probes",
        ])
        .expect("parses");
        let Command::Verify(v) = cli.command else {
            panic!("verify")
        };
        assert_eq!(v.nodes, ["boromir", "theoden"]);
        assert_eq!(v.selector.as_deref(), Some("a=b"));
        assert_eq!(
            (v.timeout.as_str(), v.json, v.namespace.as_str()),
            ("20s", true, "probes")
        );
        assert_eq!(v.image, rebootguard_verify::DEFAULT_IMAGE);
        assert!(v.command.is_none());
    }

    #[test]
    fn the_probe_parses_the_arguments_verify_gives_its_pods() {
        let run = rebootguard_verify::spec::Run {
            id: "0a1b2c3d".into(),
            namespace: "rebootguard".into(),
            image: "x".into(),
            port: 9479,
            wait: std::time::Duration::from_secs(45),
            expires: String::new(),
            targets: vec![rebootguard_verify::spec::Target {
                name: "boromir".into(),
                pod_cidrs: vec!["10.42.0.0/24".into()],
                ready: true,
            }],
        };
        let args = std::iter::once("rebootguard".to_owned()).chain(run.probe_args(0));
        let cli = Cli::try_parse_from(args).expect("parses");
        let Command::Verify(VerifyArgs {
            command: Some(VerifyCommand::Probe(p)),
            ..
        }) = cli.command
        else {
            panic!("verify probe")
        };
        assert_eq!(p.node, "boromir");
        assert_eq!(p.pod_cidrs, ["10.42.0.0/24"]);
        assert_eq!(p.service, "rgv-0a1b2c3d");
        assert_eq!(p.lookups, ["kubernetes.default"]);
        assert_eq!((p.peers, p.port, p.wait.as_str()), (0, 9479, "45000ms"));
        assert_eq!(p.message_path, PathBuf::from("/dev/termination-log"));
        // The probe is hidden and takes none of verify's own flags.
        assert!(Cli::try_parse_from(["rebootguard", "verify", "--json", "probe"]).is_err());
    }

    #[test]
    fn force_requires_write_and_mtu_is_bounded() {
        assert!(Cli::try_parse_from(["rebootguard", "node", "regenerate", "--force"]).is_err());
        assert!(Cli::try_parse_from(["rebootguard", "node", "status", "--mtu", "12"]).is_err());
    }
}
