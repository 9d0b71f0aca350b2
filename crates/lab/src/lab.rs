//! The lab itself: kubesim, a switch namespace with a bridge, the nodes,
//! and the cluster-side controllers k3s's server would run (node IPAM, node
//! lifecycle, the workload controllers of [`crate::workload`], Flux's
//! readiness).
//!
//! Everything made carries the lab's unique prefix (`rglab-<pid>-<n>`) and
//! is removed when the [`Lab`] drops, also on panic; [`sweep`] removes what
//! a killed lab left behind.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ipnet::Ipv4Net;
use kubesim::KubeSim;
use rebootguard_hostnet::netns::{self, Netns};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::api::{self, Api, Source};
use crate::control;
use crate::node::{self, Node};
use crate::runtime::{self, RuntimeFault};
use crate::scenario::{Behaviour, Fault, Scenario};
use crate::tasks::Lifetime;

/// The prefix of every namespace and directory a lab makes.
pub const PREFIX: &str = "rglab";

/// Why the lab could not be built or driven.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not root, or namespaces cannot be made here.
    #[error(
        "rebootguard-lab needs root for network namespaces, netlink and mounts (run it with sudo)"
    )]
    NotPrivileged(#[source] netns::Unprivileged),
    /// A plugin lives where the nodes' own `/run` or `/var` hide it.
    #[error(
        "CNI plugin {0} resolves under /run or /var, which the nodes' own directories cover during CNI calls; move the binary (or the target dir) elsewhere"
    )]
    HiddenPlugin(PathBuf),
    /// A CNI plugin the nodes need is missing.
    #[error("CNI plugin {0} not found; install containernetworking-plugins or pass --cni-bin-dir")]
    MissingPlugin(PathBuf),
    /// kubesim did not start.
    #[error("failed to start kubesim")]
    Kubesim(#[source] kubesim::Error),
    /// The lab directory could not be made.
    #[error("failed to create the lab directory {0}")]
    Dir(PathBuf, #[source] std::io::Error),
    /// The switch could not be made.
    #[error("failed to create the switch namespace")]
    Switch(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A node failed.
    #[error("node {0} failed")]
    Node(String, #[source] Box<node::Error>),
    /// No such node.
    #[error("no node named {0:?} in this lab (nodes: {1})")]
    NoNode(String, String),
    /// The node is powered off (rebooting).
    #[error("node {0} is powered off")]
    PoweredOff(String),
    /// The node is already powered on.
    #[error("node {0} is already powered on")]
    PoweredOn(String),
    /// A runtime fault could not be applied.
    #[error("failed to apply {1} on node {0}")]
    Break(String, String, #[source] crate::runtime::Error),
    /// The thread that starts agents could not start.
    #[error("failed to start the lab's process spawner")]
    Spawner(#[source] std::io::Error),
}

/// How the lab runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run rebootguard's units on every boot (restore before k3s, backup
    /// after flannel writes subnet.env).
    pub protected: bool,
    /// The `rebootguard` binary (default: next to this executable).
    pub rebootguard: Option<PathBuf>,
    /// A directory with the CNI plugins to install in every node (default:
    /// this binary as `flannel`, Debian's plugins for the rest).
    pub cni_bin_dir: Option<PathBuf>,
    /// Where lab directories go.
    pub base_dir: PathBuf,
    /// This executable (the CNI helper, `flannel`, the DNS responder).
    pub exe: PathBuf,
    /// Run the real `rebootguard agent` on every node (see [`crate::agent`]).
    pub agent: bool,
    /// Tests only: the program (and its first arguments) to run as the
    /// agent instead of `rebootguard`; the agent's arguments follow them.
    pub agent_command: Option<Vec<std::ffi::OsString>>,
}

impl Options {
    /// Defaults around the running executable.
    pub fn new(exe: PathBuf) -> Options {
        Options {
            protected: false,
            rebootguard: None,
            cni_bin_dir: None,
            base_dir: std::env::temp_dir().join("rebootguard-lab"),
            exe,
            agent: false,
            agent_command: None,
        }
    }
}

pub use crate::control::{Reply, Request, send};
pub use crate::power::{ApiChange, Then, Woke};

/// Durations in lab time.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    /// Node status updates.
    pub heartbeat: Duration,
    /// Node monitor grace period.
    pub grace: Duration,
    /// unreachable:NoExecute toleration.
    pub toleration: Duration,
    /// Kubelet sync period.
    pub kubelet: Duration,
    /// Kubelet retry period for failed sandboxes and crash checks.
    pub retry: Duration,
}

/// One timeline line.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Lab seconds since start.
    pub t: f64,
    /// Real-world seconds since start (`t * time_scale`).
    pub real: f64,
    /// The wall-clock instant (system clock, RFC 3339, UTC, milliseconds),
    /// comparable with kubesim's timestamps and a watcher's clock.
    pub at: String,
    /// What kind of entry.
    pub kind: String,
    /// The node, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What happened.
    pub text: String,
}

/// The lab's own record of what happened.
#[derive(Debug, Default)]
pub struct Timeline {
    entries: Mutex<Vec<Entry>>,
    failures: Mutex<BTreeSet<String>>,
}

impl Timeline {
    /// Adds a line.
    pub fn note(&self, ctx: &Ctx, node: Option<&str>, kind: &str, text: &str) {
        let t = ctx.start.elapsed().as_secs_f64();
        let e = Entry {
            t,
            real: t * ctx.scenario.time_scale,
            at: control::rfc3339_ms(control::timestamp(SystemTime::now())),
            kind: kind.into(),
            node: node.map(str::to_owned),
            text: text.into(),
        };
        tracing::info!(node = node.unwrap_or("-"), kind, "{text}");
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(e);
    }

    /// Records a failed sandbox (the first per node and message only).
    pub fn sandbox_failed(&self, ctx: &Ctx, node: &str, pod: &Value, message: &str) {
        let key = format!(
            "{node}\0{}",
            message.split("sandbox \"").next().unwrap_or(message)
        );
        let new = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
        if new {
            self.note(
                ctx,
                Some(node),
                "FailedCreatePodSandBox",
                &format!("{}/{}: {message}", api::namespace(pod), api::name(pod)),
            );
        }
    }

    /// Every line so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Shared by every task of one lab.
pub struct Ctx {
    /// The API server and event recorder.
    pub api: Api,
    /// The scenario.
    pub scenario: Scenario,
    /// Lab-time durations.
    pub times: Times,
    /// Options.
    pub options: Options,
    /// `rglab-<pid>-<n>`: this lab's name.
    pub id: String,
    /// Prefix for namespace names (`rglab`), see [`netns::unique_name`].
    pub prefix: String,
    /// This lab's directory.
    pub dir: PathBuf,
    /// The switch namespace (bridge `br0`).
    pub switch: Arc<Netns>,
    /// The nodes, in scenario order.
    pub nodes: Vec<Arc<Node>>,
    /// This executable.
    pub exe: PathBuf,
    /// When the lab started.
    pub start: Instant,
    /// What happened.
    pub timeline: Timeline,
    /// Starts the agents (they die with it).
    pub spawner: crate::agent::Spawner,
    /// What served requests did, line by line (`up` prints it).
    pub served: tokio::sync::broadcast::Sender<String>,
    /// Wakes the request server before its next poll.
    pub wake: tokio::sync::Notify,
    /// Set when the lab is being torn down: nothing boots any more.
    pub closed: std::sync::atomic::AtomicBool,
    /// The lab's own tasks that panicked or ended too early.
    pub task_failures: crate::tasks::Failures,
    /// Held by requests that act on the whole cluster (reboots, the manual
    /// fix), which run one at a time, as they did before requests were
    /// served concurrently; faults and k3s restarts do not wait for it.
    cluster_ops: tokio::sync::Mutex<()>,
    /// Held while the API server is taken down or brought back.
    pub(crate) api_power: tokio::sync::Mutex<()>,
    heartbeats: Mutex<HashMap<String, Instant>>,
    ipam_blocked: Mutex<BTreeSet<String>>,
    workloads: HashMap<(String, String), Behaviour>,
    state_file: Mutex<()>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// Records a heartbeat.
    pub fn beat(&self, node: &str) {
        self.heartbeats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node.to_owned(), Instant::now());
    }

    /// Never give `node` a podCIDR (fault).
    pub fn ipam_block(&self, node: &str) {
        self.ipam_blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node.to_owned());
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&Arc<Node>> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// What a pod does, from its workload.
    pub fn behaviour(&self, pod: &Value) -> Behaviour {
        let app = pod
            .pointer("/metadata/labels/app")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.workloads
            .get(&(api::namespace(pod).to_owned(), app.to_owned()))
            .copied()
            .unwrap_or(Behaviour::Plain)
    }

    /// Where a plugin comes from for the nodes' bin dirs.
    pub fn plugin_source(&self, plugin: &str) -> PathBuf {
        match &self.options.cni_bin_dir {
            Some(dir) => dir.join(plugin),
            None if plugin == "flannel" => self.exe.clone(),
            None => Path::new(rebootguard_hostnet::cni::DEBIAN_PLUGIN_DIR).join(plugin),
        }
    }

    /// Running CoreDNS pods' IPs (the kube-dns Service's endpoints).
    pub fn dns_endpoints(&self) -> Vec<Ipv4Addr> {
        self.api
            .pods()
            .iter()
            .filter(|p| self.behaviour(p) == Behaviour::Dns && api::pod_running(p))
            .filter_map(|p| p.pointer("/status/podIP")?.as_str()?.parse().ok())
            .collect()
    }

    /// `name=ip` for every workload's Service, for the DNS responder.
    pub fn dns_records(&self) -> Vec<String> {
        self.scenario
            .workloads
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let i = u8::try_from(i % 250).unwrap_or(0);
                format!(
                    "{}.{}.svc.cluster.local={}",
                    w.name,
                    w.namespace,
                    Ipv4Addr::new(10, 43, 1, i + 1)
                )
            })
            .chain(std::iter::once(
                "kube-dns.kube-system.svc.cluster.local=10.43.0.10".to_owned(),
            ))
            .collect()
    }

    /// The records file the DNS responders follow.
    pub fn dns_file(&self) -> PathBuf {
        self.dir.join("dns-records")
    }

    /// `name=ip[,ip...]` lines for every Service, as CoreDNS answers them:
    /// a ClusterIP Service by its address (`kubernetes.default`
    /// included), a headless one by the addresses of the pods it selects
    /// (Ready ones, or every one with an address when it publishes
    /// not-ready addresses; finished and terminating pods never), a
    /// headless one with no such pod exists without addresses.
    pub fn service_records(&self) -> String {
        let pods = self.api.pods();
        let mut lines = Vec::new();
        for svc in self.api.sim.list("v1", "Service", None) {
            let ns = api::namespace(&svc);
            let name = format!("{}.{ns}.svc.cluster.local", api::name(&svc));
            let cluster_ip = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("None");
            if cluster_ip != "None" && !cluster_ip.is_empty() {
                lines.push(format!("{name}={cluster_ip}"));
                continue;
            }
            let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
                continue;
            };
            let not_ready = svc
                .pointer("/spec/publishNotReadyAddresses")
                .and_then(Value::as_bool)
                == Some(true);
            let mut ips: Vec<&str> = pods
                .iter()
                .filter(|p| api::namespace(p) == ns && !api::terminating(p))
                .filter(|p| {
                    selector.iter().all(|(k, v)| {
                        p.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v)
                    })
                })
                .filter(|p| {
                    !matches!(
                        p.pointer("/status/phase").and_then(Value::as_str),
                        Some("Succeeded" | "Failed")
                    )
                })
                .filter(|p| not_ready || api::condition(p, "Ready") == Some("True"))
                .filter_map(|p| p.pointer("/status/podIP")?.as_str())
                .collect();
            ips.sort_unstable();
            lines.push(format!("{name}={}", ips.join(",")));
        }
        lines.sort();
        lines.join("\n") + "\n"
    }

    /// Rewrites the DNS records file (by rename) when the Services or
    /// their pods changed since `last`.
    pub fn publish_dns(&self, last: &mut String) {
        let text = self.service_records();
        if &text == last {
            return;
        }
        let path = self.dns_file();
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, &text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .is_ok()
        {
            *last = text;
        }
    }

    /// The PV bound to a claim.
    pub fn volume_of(&self, namespace: &str, claim: &str) -> String {
        self.api
            .sim
            .get("v1", "PersistentVolumeClaim", namespace, claim)
            .and_then(|c| {
                c.pointer("/spec/volumeName")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("pvc-{claim}"))
    }
}

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    /// Shared state.
    pub ctx: Arc<Ctx>,
    controllers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("id", &self.ctx.id)
            .finish_non_exhaustive()
    }
}

/// Random lower-case hex.
pub fn random_hex(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        let u = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
        out.extend(u.chars().filter(char::is_ascii_hexdigit));
        if u.is_empty() {
            out.push_str(&format!("{:x}", Instant::now().elapsed().as_nanos()));
        }
    }
    out.truncate(len);
    out
}

impl Lab {
    /// Builds the cluster and boots every node; returns when all are Ready.
    pub async fn up(scenario: Scenario, options: Options) -> Result<Lab, Error> {
        netns::privileged().map_err(Error::NotPrivileged)?;
        let spawner = crate::agent::Spawner::start().map_err(Error::Spawner)?;
        let id = netns::unique_name(PREFIX);
        let dir = options.base_dir.join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| Error::Dir(dir.clone(), e))?;
        let kube = kubesim::Options {
            pod_termination: kubesim::PodTermination::Hold,
            namespaces: [
                "default",
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "flux-system",
                "longhorn-system",
                "monitoring",
                "cert-manager",
                "apps",
                // Where `rebootguard verify` runs its probes by default.
                "rebootguard",
            ]
            .map(String::from)
            .to_vec(),
            ..kubesim::Options::default()
        };
        let sim = KubeSim::with_options(kube).await.map_err(Error::Kubesim)?;
        let switch = Arc::new(
            Netns::create_named(&netns::unique_name(PREFIX))
                .map_err(|e| Error::Switch(Box::new(e)))?,
        );
        node::netlink(switch.clone(), |nl| async move {
            nl.add_bridge("br0").await?;
            nl.set_up("br0").await?;
            nl.set_up("lo").await
        })
        .await
        .map_err(|e| Error::Switch(Box::new(e)))?;
        let s = |d| scenario.scaled(d);
        let times = Times {
            heartbeat: s(scenario.lifecycle.heartbeat),
            grace: s(scenario.lifecycle.grace),
            toleration: s(scenario.lifecycle.toleration),
            kubelet: Duration::from_millis(100),
            retry: s(Duration::from_secs(10)).max(Duration::from_millis(200)),
        };
        let (roles, etcd) = (scenario.roles(), scenario.etcd());
        let nodes = scenario
            .nodes
            .iter()
            .zip(roles)
            .enumerate()
            .map(|(i, (n, role))| {
                Arc::new(Node::new(
                    &n.name,
                    i,
                    dir.join("nodes").join(&n.name),
                    n.pod_cidr,
                    role,
                    etcd,
                ))
            })
            .collect();
        let workloads = scenario
            .workloads
            .iter()
            .map(|w| ((w.namespace.clone(), w.name.clone()), w.behaviour))
            .collect();
        let ctx = Arc::new(Ctx {
            api: Api::new(sim),
            times,
            id: id.clone(),
            prefix: PREFIX.into(),
            dir,
            switch,
            nodes,
            exe: options.exe.clone(),
            options,
            start: Instant::now(),
            timeline: Timeline::default(),
            spawner,
            served: tokio::sync::broadcast::channel(256).0,
            wake: tokio::sync::Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            task_failures: crate::tasks::Failures::default(),
            cluster_ops: tokio::sync::Mutex::new(()),
            api_power: tokio::sync::Mutex::new(()),
            heartbeats: Mutex::new(HashMap::new()),
            ipam_blocked: Mutex::new(BTreeSet::new()),
            workloads,
            state_file: Mutex::new(()),
            scenario,
        });
        // From here on, dropping `lab` (on an error too) cleans up.
        let mut lab = Lab {
            ctx: ctx.clone(),
            controllers: Vec::new(),
        };
        for plugin in node::PLUGINS {
            let p = ctx.plugin_source(plugin);
            if !p.is_file() {
                return Err(Error::MissingPlugin(p));
            }
            let real = std::fs::canonicalize(&p).unwrap_or(p);
            if real.starts_with("/run") || real.starts_with("/var") {
                return Err(Error::HiddenPlugin(real));
            }
        }
        ctx.write_state();
        seed(&ctx);
        lab.controllers.push(crate::tasks::spawn(
            &ctx,
            None,
            "controllers",
            Lifetime::Forever,
            controllers(ctx.clone()),
        ));
        for n in &ctx.nodes {
            n.install(&ctx)
                .map_err(|e| Error::Node(n.name.clone(), Box::new(e)))?;
        }
        let boots = ctx.nodes.iter().map(|n| {
            let (c, n) = (ctx.clone(), n.clone());
            async move {
                node::boot(&c, &n)
                    .await
                    .map_err(|e| Error::Node(n.name.clone(), Box::new(e)))
            }
        });
        for r in futures_join(boots).await {
            r?;
        }
        lab.controllers.push(crate::tasks::spawn(
            &ctx,
            None,
            "request server",
            Lifetime::Forever,
            serve_requests(ctx.clone()),
        ));
        ctx.write_state();
        lab.wait_ready(Duration::from_secs(60)).await;
        Ok(lab)
    }

    /// The lab's own tasks that panicked or ended while they should run
    /// (a broken lab, not a broken cluster): empty when all is well.
    pub fn task_failures(&self) -> Vec<String> {
        self.ctx.task_failures.all()
    }

    /// What requests served by this lab did, line by line, from now on.
    pub fn served(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.ctx.served.subscribe()
    }

    /// Looks for requests now rather than at the next poll.
    pub fn wake(&self) {
        self.ctx.wake.notify_one();
    }

    /// Waits until every node is Ready (or `timeout`).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < timeout {
            let ready = self.ctx.nodes.iter().all(|n| {
                self.ctx
                    .api
                    .node(&n.name)
                    .is_some_and(|o| api::condition(&o, "Ready") == Some("True"))
            });
            if ready {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// A node by name, or a clear error.
    pub fn node(&self, name: &str) -> Result<Arc<Node>, Error> {
        self.ctx.find(name)
    }

    /// Arms a fault for the node's next boot.
    pub fn inject(&self, node: &str, fault: Fault) -> Result<(), Error> {
        self.ctx.inject(node, fault)?;
        self.ctx.write_state();
        Ok(())
    }

    /// Boots a powered-off node now (a `stays-down` one, or one in a
    /// reboot's dark period, which then does not boot again at its end).
    pub async fn power_on(&self, node: &str) -> Result<(), Error> {
        self.ctx.power_on(node).await
    }

    /// Applies a runtime fault to a powered node now; the instant the
    /// change returned (system clock, as kubesim's timestamps).
    pub async fn break_now(
        &self,
        node: &str,
        fault: RuntimeFault,
    ) -> Result<jiff::Timestamp, Error> {
        self.ctx.break_now(node, &fault).await
    }

    /// Restarts k3s on a powered node (stop its tasks, start them again:
    /// registration, flannel init, heartbeats, kubelet); the instant it was
    /// restarted. `asked_by` goes on the timeline.
    pub fn restart_k3s(&self, node: &str, asked_by: &str) -> Result<jiff::Timestamp, Error> {
        self.ctx.restart_k3s(node, asked_by)
    }

    /// Reboots nodes together: off, `down` of darkness, then boot.
    pub async fn reboot(&self, nodes: &[String], down: Duration) -> Result<(), Error> {
        self.ctx.reboot(nodes, down).await
    }

    /// What the operator did in the post-mortem: force-delete the Unknown
    /// pods, write subnet.env on every node missing it from a working
    /// node's file and the node's podCIDR, restart k3s there.
    pub async fn fix_manually(&self) -> Vec<String> {
        self.ctx.fix_manually().await
    }

    /// Pings `target` from the network namespace of pod `namespace/name`.
    pub fn ping_from_pod(&self, pod: &str, target: Ipv4Addr) -> Option<bool> {
        let ns = self.pod_netns(pod)?;
        let out = ns
            .command("ping")
            .ok()?
            .args(["-c", "1", "-W", "1", &target.to_string()])
            .output()
            .ok()?;
        Some(out.status.success())
    }

    /// The namespace of a running pod sandbox (`namespace/name`).
    pub fn pod_netns(&self, pod: &str) -> Option<Arc<Netns>> {
        self.ctx.nodes.iter().find_map(|n| {
            n.state()
                .sandboxes
                .values()
                .find(|s| s.pod == pod)
                .map(|s| s.netns.clone())
        })
    }

    /// Writes `state.json` for `status`, `shell` and `down`.
    pub fn write_state(&self) {
        self.ctx.write_state();
    }
}

impl Ctx {
    /// A node by name, or a clear error.
    pub fn find(&self, name: &str) -> Result<Arc<Node>, Error> {
        self.node(name).cloned().ok_or_else(|| {
            Error::NoNode(
                name.to_owned(),
                self.nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
    }

    /// A powered node by name, or a clear error.
    fn powered(&self, name: &str) -> Result<(Arc<Node>, Arc<Netns>), Error> {
        let node = self.find(name)?;
        let ns = node
            .netns()
            .ok_or_else(|| Error::PoweredOff(name.to_owned()))?;
        Ok((node, ns))
    }

    /// Arms a fault for the node's next boot.
    pub fn inject(&self, node: &str, fault: Fault) -> Result<(), Error> {
        self.find(node)?.state().armed.insert(fault);
        Ok(())
    }

    /// The argv a node's agent runs to reboot its node (`node-reboot`):
    /// returns at once, the lab power-cycles the node.
    pub fn reboot_command(&self, node: &str) -> Vec<String> {
        vec![
            self.exe.to_string_lossy().into_owned(),
            "node-reboot".into(),
            "--dir".into(),
            self.options.base_dir.to_string_lossy().into_owned(),
            "--lab".into(),
            self.id.clone(),
            node.to_owned(),
        ]
    }

    /// The faults armed for a node's next boot, by name.
    pub fn armed(&self, node: &Node) -> Vec<&'static str> {
        node.state().armed.iter().map(|f| f.name()).collect()
    }

    /// The `rebootguard` binary the nodes run.
    pub fn rebootguard_exe(&self) -> PathBuf {
        self.options
            .rebootguard
            .clone()
            .unwrap_or_else(|| self.exe.with_file_name("rebootguard"))
    }

    /// What the operator did in the post-mortem: force-delete the Unknown
    /// pods, write subnet.env on every node missing it from a working
    /// node's file and the node's podCIDR, restart k3s there.
    pub async fn fix_manually(self: &Arc<Self>) -> Vec<String> {
        let mut done = Vec::new();
        for pod in self.api.pods() {
            let stale = pod.pointer("/status/reason").and_then(Value::as_str) == Some("NodeLost")
                || api::terminating(&pod);
            if stale
                && self
                    .api
                    .delete_now("v1", "Pod", api::namespace(&pod), api::name(&pod))
                    .is_ok()
            {
                done.push(format!(
                    "kubectl delete pod -n {} {} --force --grace-period=0",
                    api::namespace(&pod),
                    api::name(&pod)
                ));
            }
        }
        let reference = self.nodes.iter().find_map(|n| {
            let text = std::fs::read_to_string(n.path(node::paths::SUBNET_ENV)).ok()?;
            rebootguard_flannel::subnet_env::parse(text.as_bytes())
                .into_valid()
                .ok()
        });
        let Some(reference) = reference else {
            done.push("no node has a valid subnet.env to copy from".into());
            return done;
        };
        for n in &self.nodes {
            if n.netns().is_none() || n.path(node::paths::SUBNET_ENV).exists() {
                continue;
            }
            let Some(cidr) = self.api.node(&n.name).and_then(|o| {
                o.pointer("/spec/podCIDR")?
                    .as_str()?
                    .parse::<ipnet::IpNet>()
                    .ok()
            }) else {
                continue;
            };
            let mut env = reference.clone();
            env.subnet = rebootguard_flannel::subnet_env::first_host(cidr.trunc());
            if node::write(&n.path(node::paths::SUBNET_ENV), &env.render()).is_ok() {
                done.push(format!(
                    "{}: wrote /run/flannel/subnet.env (FLANNEL_SUBNET={})",
                    n.name,
                    env.subnet.map(|s| s.to_string()).unwrap_or_default()
                ));
            }
            node::stop_k3s(n);
            node::start_k3s(self, n);
            done.push(format!("{}: systemctl restart k3s", n.name));
        }
        for line in &done {
            self.timeline.note(self, None, "fix", line);
        }
        done
    }

    /// Applies a runtime fault to a powered node now (see
    /// [`crate::runtime`]); the instant the change returned, noted on the
    /// timeline.
    pub async fn break_now(
        self: &Arc<Self>,
        name: &str,
        fault: &RuntimeFault,
    ) -> Result<jiff::Timestamp, Error> {
        let (node, ns) = self.powered(name)?;
        let failed = |e| Error::Break(name.to_owned(), fault.to_string(), e);
        let (at, what) = match fault {
            RuntimeFault::DeleteSubnetEnv => {
                let path = node.path(node::paths::SUBNET_ENV);
                match std::fs::remove_file(&path) {
                    Ok(()) => (
                        SystemTime::now(),
                        "removed /run/flannel/subnet.env".to_owned(),
                    ),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(failed(runtime::Error::Nothing(
                            "/run/flannel/subnet.env does not exist".into(),
                        )));
                    }
                    Err(e) => return Err(failed(runtime::Error::File(path, e))),
                }
            }
            RuntimeFault::CorruptSubnetEnv => {
                let path = node.path(node::paths::SUBNET_ENV);
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(failed(runtime::Error::Nothing(
                            "/run/flannel/subnet.env does not exist".into(),
                        )));
                    }
                    Err(e) => return Err(failed(runtime::Error::File(path, e))),
                };
                let bad = runtime::without_mtu(&text);
                if bad == text {
                    return Err(failed(runtime::Error::Nothing(
                        "/run/flannel/subnet.env has no FLANNEL_MTU line".into(),
                    )));
                }
                node::write(&path, &bad).map_err(|e| match e {
                    node::Error::Write(p, e) => failed(runtime::Error::File(p, e)),
                    other => failed(runtime::Error::File(
                        path.clone(),
                        std::io::Error::other(other.to_string()),
                    )),
                })?;
                (
                    SystemTime::now(),
                    "replaced /run/flannel/subnet.env by a copy without FLANNEL_MTU".to_owned(),
                )
            }
            RuntimeFault::DeleteFlannelLink => {
                let at = tokio::task::spawn_blocking(move || runtime::delete_link(&ns))
                    .await
                    .map_err(|e| failed(runtime::Error::Netlink(e.to_string())))?
                    .map_err(failed)?;
                (at, format!("deleted {}", node::VTEP))
            }
            RuntimeFault::DropPeer { peer } => {
                if peer == name {
                    return Err(failed(runtime::Error::Nothing(format!(
                        "{name} is not its own peer"
                    ))));
                }
                self.find(peer)?;
                let (lease, mac, _) = self
                    .api
                    .node(peer)
                    .as_ref()
                    .and_then(node::peer_of)
                    .ok_or_else(|| {
                        failed(runtime::Error::Nothing(format!(
                            "{peer} has no flannel lease and VtepMAC in the API yet"
                        )))
                    })?;
                let (dropped, at) =
                    tokio::task::spawn_blocking(move || runtime::drop_peer(&ns, lease, mac))
                        .await
                        .map_err(|e| failed(runtime::Error::Netlink(e.to_string())))?
                        .map_err(failed)?;
                (
                    at,
                    format!(
                        "dropped {peer}'s entries on {}: {} fdb, {} neighbour, {} route ({lease})",
                        node::VTEP,
                        dropped.fdb,
                        dropped.neighbours,
                        dropped.routes
                    ),
                )
            }
            RuntimeFault::StopFlannel => {
                node::stop_flannel(&node);
                (
                    SystemTime::now(),
                    "flannel stopped maintaining its state (until k3s restarts)".to_owned(),
                )
            }
        };
        let at = control::timestamp(at);
        self.timeline.note(
            self,
            Some(name),
            "fault",
            &format!(
                "runtime fault {fault} at {}: {what}",
                control::rfc3339_ms(at)
            ),
        );
        Ok(at)
    }

    /// Restarts k3s on a powered node; the instant it was restarted.
    pub fn restart_k3s(
        self: &Arc<Self>,
        name: &str,
        asked_by: &str,
    ) -> Result<jiff::Timestamp, Error> {
        let (node, _) = self.powered(name)?;
        node::stop_k3s(&node);
        node::start_k3s(self, &node);
        let at = control::timestamp(SystemTime::now());
        let by = if asked_by.is_empty() {
            String::new()
        } else {
            format!(" (asked by {asked_by})")
        };
        self.timeline
            .note(self, Some(name), "k3s", &format!("k3s restarted{by}"));
        Ok(at)
    }

    /// Carries out one request (what follows its reply, a power-cycle,
    /// runs before this returns).
    pub async fn serve(self: &Arc<Self>, request: Request) -> Reply {
        let (reply, then) = self.serve_then(request).await;
        if let Some(then) = then {
            then.run(self).await;
        }
        reply
    }

    /// Carries out one request; the reply, and what must happen only once
    /// the reply is out (a node's own reboot kills the asker).
    pub async fn serve_then(self: &Arc<Self>, request: Request) -> (Reply, Option<Then>) {
        match request {
            Request::PowerCycle {
                node,
                down_ms,
                asked_by,
            } => match self.powered(&node) {
                Ok(_) => {
                    let at = control::rfc3339_ms(control::timestamp(SystemTime::now()));
                    let by = if asked_by.is_empty() {
                        String::new()
                    } else {
                        format!(" (asked by {asked_by})")
                    };
                    self.timeline
                        .note(self, Some(&node), "power", &format!("reboot{by}"));
                    let reply = Reply {
                        ok: true,
                        applied: Some(at.clone()),
                        lines: vec![format!(
                            "{node}: rebooting at {at}, off for {down_ms} ms (lab time)"
                        )],
                        error: None,
                    };
                    let then = Then::PowerCycle {
                        node,
                        down: Duration::from_millis(down_ms),
                    };
                    (reply, Some(then))
                }
                Err(e) => (Reply::failed(rebootguard_errors::chain(&e)), None),
            },
            other => (self.serve_now(other).await, None),
        }
    }

    async fn serve_now(self: &Arc<Self>, request: Request) -> Reply {
        match request {
            Request::PowerCycle { .. } => Reply::failed("a power-cycle is served by serve_then"),
            Request::Arm { node, fault } => match self.inject(&node, fault) {
                Ok(()) => {
                    let armed = self.node(&node).map(|n| self.armed(n)).unwrap_or_default();
                    self.timeline.note(
                        self,
                        Some(&node),
                        "fault",
                        &format!("{} armed for the next boot", fault.name()),
                    );
                    Reply {
                        ok: true,
                        applied: Some(control::rfc3339_ms(control::timestamp(SystemTime::now()))),
                        lines: vec![format!(
                            "{node}: {} armed for its next boot (armed: {})",
                            fault.name(),
                            armed.join(", ")
                        )],
                        error: None,
                    }
                }
                Err(e) => Reply::failed(rebootguard_errors::chain(&e)),
            },
            Request::PowerOn { node } => match self.power_on(&node).await {
                Ok(()) => Reply {
                    ok: true,
                    applied: Some(control::rfc3339_ms(control::timestamp(SystemTime::now()))),
                    lines: vec![format!(
                        "{node}: powered on, boot id {}",
                        self.node(&node)
                            .map(|n| n.state().boot_id.clone())
                            .unwrap_or_default()
                    )],
                    error: None,
                },
                Err(e) => Reply::failed(rebootguard_errors::chain(&e)),
            },
            Request::FixManually => {
                let _one_at_a_time = self.cluster_ops.lock().await;
                Reply {
                    ok: true,
                    lines: self.fix_manually().await,
                    ..Reply::default()
                }
            }
            Request::Reboot {
                nodes,
                faults,
                down_ms,
            } => {
                let _one_at_a_time = self.cluster_ops.lock().await;
                let armed = nodes
                    .iter()
                    .try_for_each(|n| faults.iter().try_for_each(|f| self.inject(n, *f)));
                let done = match armed {
                    Ok(()) => {
                        self.reboot_report(&nodes, Duration::from_millis(down_ms))
                            .await
                    }
                    Err(e) => Err(e),
                };
                match done {
                    Ok(woke) => {
                        let (booted, other): (Vec<_>, Vec<_>) =
                            woke.into_iter().partition(|(_, w)| *w == Woke::Booted);
                        let mut lines = Vec::new();
                        if !booted.is_empty() {
                            let names: Vec<&str> = booted.iter().map(|(n, _)| n.as_str()).collect();
                            lines.push(format!("rebooted {}", names.join(", ")));
                        }
                        for (n, w) in other {
                            lines.push(match w {
                                Woke::StayedDown => format!(
                                    "{n} stays down (stays-down); `rebootguard-lab power-on {n}` boots it"
                                ),
                                _ => format!("{n} was powered on by someone else meanwhile"),
                            });
                        }
                        Reply {
                            ok: true,
                            lines,
                            ..Reply::default()
                        }
                    }
                    Err(e) => {
                        Reply::failed(format!("reboot failed: {}", rebootguard_errors::chain(&e)))
                    }
                }
            }
            Request::Break { node, fault } => match self.break_now(&node, &fault).await {
                Ok(at) => Reply {
                    ok: true,
                    applied: Some(control::rfc3339_ms(at)),
                    lines: vec![format!(
                        "{node}: {fault} applied at {}",
                        control::rfc3339_ms(at)
                    )],
                    error: None,
                },
                Err(e) => Reply::failed(rebootguard_errors::chain(&e)),
            },
            Request::K3sRestart { node, asked_by } => match self.restart_k3s(&node, &asked_by) {
                Ok(at) => Reply {
                    ok: true,
                    applied: Some(control::rfc3339_ms(at)),
                    lines: vec![format!(
                        "{node}: k3s restarted at {}",
                        control::rfc3339_ms(at)
                    )],
                    error: None,
                },
                Err(e) => Reply::failed(rebootguard_errors::chain(&e)),
            },
        }
    }

    /// Writes `state.json` (and the kubeconfig) for `status`, `shell`,
    /// `down` and the request senders; atomically, so readers never see
    /// half of it.
    pub fn write_state(&self) {
        let _guard = self
            .state_file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let nodes: BTreeMap<String, Value> = self
            .nodes
            .iter()
            .map(|n| {
                let ns = n.netns().and_then(|ns| ns.name().map(str::to_owned));
                let log = self.options.agent.then(|| crate::agent::log_path(n));
                let boot_id = n.state().boot_id.clone();
                (
                    n.name.clone(),
                    json!({"netns": ns, "root": n.root, "public_ip": n.public_ip.to_string(), "agent_log": log,
                        "role": n.role.name(), "armed": self.armed(n), "boot_id": boot_id,
                        "reboot_command": self.reboot_command(&n.name)}),
                )
            })
            .collect();
        let order: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        let state = json!({
            "id": self.id, "pid": std::process::id(), "kubeconfig": self.dir.join("kubeconfig"),
            "server": self.api.sim.url(), "switch": self.switch.name(), "nodes": nodes,
            "node_order": order, "dir": self.dir, "time_scale": self.scenario.time_scale,
            "agent": self.options.agent, "embedded_etcd": self.scenario.etcd(),
            "api_up": self.api.sim.is_up(),
        });
        let publish = |name: &str, text: &str| {
            let tmp = self.dir.join(format!(".{name}.tmp"));
            let _ = std::fs::write(&tmp, text);
            let _ = std::fs::rename(&tmp, self.dir.join(name));
        };
        publish("kubeconfig", &self.api.sim.kubeconfig_yaml());
        publish("state.json", &state.to_string());
    }
}

/// The lab's request server: takes request files as they come (every
/// [`control::POLL`], or at once when woken) and serves each in a task of
/// its own, so a long reboot does not hold up a k3s restart; replies are
/// written for the senders to read.
async fn serve_requests(ctx: Arc<Ctx>) {
    let mut running = tokio::task::JoinSet::new();
    loop {
        for (id, request) in control::take(&ctx.dir) {
            let c = ctx.clone();
            running.spawn(async move {
                let (reply, then) = match request {
                    Ok(r) => c.serve_then(r).await,
                    Err(e) => (Reply::failed(rebootguard_errors::chain(&e)), None),
                };
                for line in reply.lines.iter().chain(reply.error.iter()) {
                    let _ = c.served.send(line.clone());
                }
                let _ = control::reply(&c.dir, &id, &reply);
                c.write_state();
                if let Some(then) = then {
                    then.run(&c).await;
                }
            });
        }
        while running.try_join_next().is_some() {}
        tokio::select! {
            () = tokio::time::sleep(control::POLL) => {}
            () = ctx.wake.notified() => {}
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A request still in flight (a reboot in its dark period) must not
        // boot a node after this.
        self.ctx
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        for c in &self.controllers {
            c.abort();
        }
        for n in &self.ctx.nodes {
            node::power_off(&self.ctx, n);
        }
        self.ctx.spawner.stop();
        let _ = std::fs::remove_dir_all(&self.ctx.dir);
        if let Some(parent) = self.ctx.dir.parent() {
            // Only when empty: other labs may be running.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

pub(crate) async fn futures_join<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// Starts the per-node API forwarder: 127.0.0.1:6443 inside the node's
/// namespace to kubesim in the host's (refused while the API is cut off).
pub fn forward_api(
    ctx: &Arc<Ctx>,
    node: &Arc<Node>,
    ns: &Netns,
) -> std::io::Result<JoinHandle<()>> {
    let listener = ns
        .run(|| {
            let l = std::net::TcpListener::bind(("127.0.0.1", node::API_PORT))?;
            l.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(l)
        })
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let target = ctx.api.sim.addr();
    let name = node.name.clone();
    let node = node.clone();
    Ok(crate::tasks::spawn(
        ctx,
        Some(&name),
        "API proxy",
        Lifetime::MayEnd,
        async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if node.reach().is_err() {
                    continue; // dropped: the client sees the connection close
                }
                tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        },
    ))
}

/// Runs the `rebootguard` binary as its systemd units would on `node`:
/// inside the node's namespace, with the node's root.
pub async fn rebootguard(ctx: &Arc<Ctx>, node: &Arc<Node>, args: &[&str]) {
    let Some(ns) = node.netns() else { return };
    let exe = ctx.rebootguard_exe();
    let mut cmd = match ns.command(&exe) {
        Ok(c) => c,
        Err(e) => {
            ctx.timeline.note(
                ctx,
                Some(&node.name),
                "rebootguard",
                &format!("failed: {e}"),
            );
            return;
        }
    };
    cmd.args(args)
        .arg("--root")
        .arg(&node.root)
        .args(["--node-name", &node.name, "--kubeconfig"])
        .arg(node.path(node::paths::KUBECONFIG))
        .env_remove("KUBECONFIG")
        .env("REBOOTGUARD_LOG", "warn");
    let what = args.join(" ");
    let out = tokio::task::spawn_blocking(move || cmd.output()).await;
    let text = match out {
        Ok(Ok(o)) => {
            let stdout = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            format!(
                "rebootguard {what}: {} {}",
                o.status,
                stdout.lines().next().unwrap_or_default()
            )
        }
        Ok(Err(e)) => format!("rebootguard {what}: failed to run {}: {e}", exe.display()),
        Err(e) => format!("rebootguard {what}: {e}"),
    };
    ctx.timeline
        .note(ctx, Some(&node.name), "rebootguard", &text);
}

/// Namespaces, PVCs, Flux objects, the API's own Service.
fn seed(ctx: &Ctx) {
    let _ = ctx.api.create(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": "10.43.0.1", "type": "ClusterIP", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    }));
    for w in &ctx.scenario.workloads {
        if w.behaviour == Behaviour::Volume {
            let pv = format!("pvc-{}", random_hex(8));
            let _ = ctx.api.create(&json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": format!("{}-data", w.name), "namespace": w.namespace},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "longhorn", "volumeName": pv, "resources": {"requests": {"storage": "1Gi"}}},
                "status": {"phase": "Bound"},
            }));
        }
    }
    for (kind, api_version, list) in [
        (
            "HelmRelease",
            "helm.toolkit.fluxcd.io/v2",
            &ctx.scenario.helmreleases,
        ),
        (
            "Kustomization",
            "kustomize.toolkit.fluxcd.io/v1",
            &ctx.scenario.kustomizations,
        ),
    ] {
        for r in list {
            let (ns, name) = r.split_once('/').unwrap_or(("default", r));
            let _ = ctx.api.create(&json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": {"interval": "10m"}}));
        }
    }
}

/// The cluster-side control loops, one tick at a time.
async fn controllers(ctx: Arc<Ctx>) {
    let mut unreachable: HashMap<String, Instant> = HashMap::new();
    let mut apps = crate::workload::Controllers::default();
    let mut was_up = true;
    let mut longhorn = crate::longhorn::Manager::new(&ctx.scenario);
    let mut dns = String::new();
    loop {
        // The controllers run on the servers: nothing while the API is down,
        // and a fresh grace period for every node when it returns, as the
        // node lifecycle controller gives at start.
        let up = ctx.api.sim.is_up();
        if !up {
            was_up = false;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if !was_up {
            was_up = true;
            let mut beats = ctx
                .heartbeats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for b in beats.values_mut() {
                *b = Instant::now();
            }
        }
        ipam(&ctx);
        lifecycle(&ctx, &mut unreachable).await;
        apps.tick(&ctx);
        flux(&ctx);
        longhorn.tick(&ctx);
        ctx.publish_dns(&mut dns);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Node IPAM: a /24 from the cluster CIDR for every Node without one.
fn ipam(ctx: &Ctx) {
    let nodes = ctx.api.nodes();
    // Taken: assigned ones, and those the scenario pins for its nodes.
    let mut used: BTreeSet<String> = nodes
        .iter()
        .filter_map(|n| n.pointer("/spec/podCIDR")?.as_str().map(str::to_owned))
        .chain(
            ctx.nodes
                .iter()
                .filter_map(|n| n.pinned_cidr.map(|c| c.to_string())),
        )
        .collect();
    let blocked = ctx
        .ipam_blocked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for n in &nodes {
        if n.pointer("/spec/podCIDR").is_some() {
            continue;
        }
        let name = api::name(n).to_owned();
        let pinned = ctx.node(&name).and_then(|x| x.pinned_cidr);
        let free = pinned.filter(|_| !blocked.contains(&name)).or_else(|| {
            if blocked.contains(&name) {
                None
            } else {
                next_free(ctx.scenario.cluster_cidr, &used)
            }
        });
        match free {
            Some(cidr) => {
                let c = cidr.to_string();
                used.insert(c.clone());
                let _ = ctx.api.merge(
                    "v1",
                    "Node",
                    "",
                    &name,
                    &json!({"spec": {"podCIDR": c, "podCIDRs": [c]}}),
                );
            }
            None => {
                ctx.api.event(
                    n,
                    "Normal",
                    "CIDRNotAvailable",
                    &format!("Node {name} status is now: CIDRNotAvailable"),
                    Source {
                        component: "cidrAllocator",
                        host: None,
                    },
                );
            }
        }
    }
}

/// The first /24 of `cluster` not in `used`.
pub fn next_free(cluster: Ipv4Net, used: &BTreeSet<String>) -> Option<Ipv4Net> {
    cluster
        .subnets(24)
        .ok()?
        .find(|s| !used.contains(&s.to_string()))
}

/// The taint the node lifecycle controller puts on a node that stopped
/// posting status.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// The node lifecycle controller and taint manager. It writes only its own
/// condition status (`Ready=Unknown`) and its own taint, so what the node
/// agent adds (`PodNetworkReady`, its NoSchedule taint) survives.
async fn lifecycle(ctx: &Ctx, unreachable: &mut HashMap<String, Instant>) {
    let beats = ctx
        .heartbeats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for n in ctx.api.nodes() {
        let name = api::name(&n).to_owned();
        let Some(last) = beats.get(&name) else {
            continue;
        };
        let stale = last.elapsed() > ctx.times.grace;
        let has_taint = n
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .is_some_and(|t| t.iter().any(|x| x["key"] == UNREACHABLE));
        if stale && !unreachable.contains_key(&name) {
            unreachable.insert(name.clone(), Instant::now());
            let now = kubesim::time::now();
            let heartbeat = n
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| c["lastHeartbeatTime"].clone())
                .unwrap_or(Value::Null);
            let _ = ctx.api.set_condition(
                "v1",
                "Node",
                "",
                &name,
                &json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": heartbeat, "lastTransitionTime": now}),
            );
            let taint = json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now});
            let _ = ctx.api.change_taints(&name, |taints| {
                if !taints.iter().any(|t| t["key"] == UNREACHABLE) {
                    taints.push(taint.clone());
                }
            });
            ctx.timeline.note(
                ctx,
                Some(&name),
                "node",
                "Ready=Unknown, tainted node.kubernetes.io/unreachable:NoExecute",
            );
            for pod in ctx.api.pods_on(&name) {
                let _ = ctx.api.set_condition(
                    "v1",
                    "Pod",
                    api::namespace(&pod),
                    api::name(&pod),
                    &json!({"type": "Ready", "status": "False"}),
                );
                ctx.api.event(
                    &pod,
                    "Warning",
                    "NodeNotReady",
                    "Node is not ready",
                    Source {
                        component: "node-controller",
                        host: None,
                    },
                );
            }
        }
        if !stale {
            if unreachable.remove(&name).is_some() || has_taint {
                // Only our taint goes: the others' (the agent's) stay.
                let _ = ctx
                    .api
                    .change_taints(&name, |taints| taints.retain(|t| t["key"] != UNREACHABLE));
            }
            continue;
        }
        // Past the toleration: the taint manager evicts (graceful delete).
        if unreachable
            .get(&name)
            .is_some_and(|t| t.elapsed() > ctx.times.toleration)
        {
            for pod in ctx.api.pods_on(&name) {
                if api::terminating(&pod) {
                    continue;
                }
                let msg = format!(
                    "Node {name} which was running pod {} is unresponsive",
                    api::name(&pod)
                );
                let _ = ctx.api.merge_status(
                    "v1",
                    "Pod",
                    api::namespace(&pod),
                    api::name(&pod),
                    &json!({"status": {"reason": "NodeLost", "message": msg}}),
                );
                ctx.api.event(
                    &pod,
                    "Normal",
                    "TaintManagerEviction",
                    &format!(
                        "Marking for deletion Pod {}/{}",
                        api::namespace(&pod),
                        api::name(&pod)
                    ),
                    Source {
                        component: "taint-eviction-controller",
                        host: None,
                    },
                );
                let _ = ctx
                    .api
                    .delete_pod_gracefully(api::namespace(&pod), api::name(&pod), 30)
                    .await;
            }
        }
    }
}

/// Flux's view: HelmReleases and Kustomizations are Ready while the
/// controllers that reconcile them run.
fn flux(ctx: &Ctx) {
    let pods = ctx.api.pods();
    let running = |name: &str| {
        pods.iter().any(|p| {
            p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(name)
                && api::pod_running(p)
        })
    };
    let source = running("source-controller");
    for (kind, api_version, list, controller) in [
        (
            "HelmRelease",
            "helm.toolkit.fluxcd.io/v2",
            &ctx.scenario.helmreleases,
            "helm-controller",
        ),
        (
            "Kustomization",
            "kustomize.toolkit.fluxcd.io/v1",
            &ctx.scenario.kustomizations,
            "kustomize-controller",
        ),
    ] {
        let ok = source && running(controller);
        for r in list {
            let (ns, name) = r.split_once('/').unwrap_or(("default", r));
            let Some(obj) = ctx.api.sim.get(api_version, kind, ns, name) else {
                continue;
            };
            let want = if ok { "True" } else { "False" };
            if api::condition(&obj, "Ready") == Some(want) {
                continue;
            }
            let (reason, message) = if ok {
                (
                    "ReconciliationSucceeded",
                    format!("Applied revision: main@sha1:{}", &random_hex(12)),
                )
            } else if !source {
                (
                    "ArtifactFailed",
                    "failed to get artifact: dial tcp: lookup source-controller.flux-system.svc.cluster.local on 10.43.0.10:53: no such host".to_owned(),
                )
            } else {
                (
                    "ReconciliationFailed",
                    format!("{controller} is not running"),
                )
            };
            let cond = json!({"type": "Ready", "status": want, "reason": reason, "message": message, "lastTransitionTime": kubesim::time::now()});
            let _ = ctx.api.merge_status(
                api_version,
                kind,
                ns,
                name,
                &json!({"status": {"conditions": [cond]}}),
            );
        }
    }
}

/// Removes what labs killed before cleaning up left behind: namespaces
/// named `rglab-<pid>-<n>` and lab directories whose process is gone.
/// Returns what was removed.
pub fn sweep(base_dir: &Path) -> Vec<String> {
    let mut removed = match netns::sweep_stale(PREFIX) {
        Ok(v) => v,
        Err(errors) => errors.iter().map(|e| format!("failed: {e}")).collect(),
    };
    if let Ok(entries) = std::fs::read_dir(base_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(PREFIX)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && !Path::new("/proc").join(pid.to_string()).exists()
            {
                removed.extend(crate::agent::sweep(&e.path()));
                if std::fs::remove_dir_all(e.path()).is_ok() {
                    removed.push(e.path().display().to_string());
                }
            }
        }
        let _ = std::fs::remove_dir(base_dir);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_takes_the_first_free_24() {
        let used: BTreeSet<String> = ["10.42.0.0/24".to_owned(), "10.42.1.0/24".to_owned()].into();
        let c: Ipv4Net = "10.42.0.0/16".parse().unwrap();
        assert_eq!(next_free(c, &used).unwrap().to_string(), "10.42.2.0/24");
        let tiny: Ipv4Net = "10.42.0.0/24".parse().unwrap();
        let full: BTreeSet<String> = ["10.42.0.0/24".to_owned()].into();
        assert_eq!(next_free(tiny, &full), None, "exhausted: CIDRNotAvailable");
    }
}
