//! A lab node: its root directory, its network namespace on the switch,
//! its boots and shutdowns, and the emulated k3s agent with its embedded
//! flannel (facts sections 3 and 4).
//!
//! Boot order, as on a host: new boot ID and `btime`, empty `/run`, network
//! up, faults armed for this boot, what the host runs before k3s
//! (`rebootguard node restore` when protected), then k3s: register the
//! Node, write net-conf.json and the conflist, wait for the podCIDR, run
//! flannel (`flannel.1`, annotations, peers, subnet.env), report Ready and
//! start the kubelet.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use ipnet::{IpNet, Ipv4Net};
use rebootguard_flannel::{Mtu, NetConf, derive};
use rebootguard_hostnet::configure::{RouteSpec, VxlanSpec};
use rebootguard_hostnet::link::{self, Netlink};
use rebootguard_hostnet::netns::{self, Netns};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::api::{self, Source};
use crate::lab::Ctx;
use crate::scenario::{Fault, Role};
use crate::tasks::{self, Lifetime};

/// Files under a node's root, as k3s and the kernel lay them out.
pub mod paths {
    /// This boot's ID.
    pub const BOOT_ID: &str = "proc/sys/kernel/random/boot_id";
    /// Kernel statistics with the boot time (`btime`).
    pub const PROC_STAT: &str = "proc/stat";
    /// flannel's subnet file (tmpfs on a real host).
    pub const SUBNET_ENV: &str = "run/flannel/subnet.env";
    /// k3s's flannel config.
    pub const NET_CONF: &str = "var/lib/rancher/k3s/agent/etc/flannel/net-conf.json";
    /// k3s's CNI config.
    pub const CONFLIST: &str = "var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist";
    /// k3s's CNI bin dir.
    pub const CNI_BIN: &str = "var/lib/rancher/k3s/data/cni";
    /// host-local's leases for flannel's network.
    pub const LEASES: &str = "var/lib/cni/networks/cbr0";
    /// rebootguard's store.
    pub const STORE: &str = "var/lib/rebootguard";
    /// k3s's config (node-name).
    pub const K3S_CONFIG: &str = "etc/rancher/k3s/config.yaml";
    /// The kubeconfig the node's tools use.
    pub const KUBECONFIG: &str = "etc/rancher/k3s/k3s.yaml";
}

/// The plugins k3s ships in its CNI bin dir that the conflist uses.
pub const PLUGINS: [&str; 5] = ["flannel", "bridge", "host-local", "portmap", "bandwidth"];
/// The API port inside every node namespace (forwarded to kubesim).
pub const API_PORT: u16 = 6443;
/// flannel's VXLAN device.
pub const VTEP: &str = "flannel.1";

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file under the node's root could not be written.
    #[error("failed to write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    /// The node's namespace could not be made.
    #[error("failed to create the network namespace of node {0}")]
    Netns(String, #[source] netns::Error),
    /// Netlink refused a change.
    #[error("failed to set up the network of node {0}")]
    Link(String, #[source] link::Error),
    /// A blocking task died.
    #[error("a node task panicked or was cancelled")]
    Join(#[source] tokio::task::JoinError),
    /// The lab is being torn down.
    #[error("the lab is shutting down")]
    Closed,
}

/// One pod sandbox this node runs.
#[derive(Debug)]
pub struct Sandbox {
    /// The sandbox ID.
    pub id: String,
    /// The pod's network namespace.
    pub netns: Arc<Netns>,
    /// Its address on `eth0`.
    pub ip: Option<Ipv4Addr>,
    /// The pod's process, if it has one (CoreDNS).
    pub process: Option<std::process::Child>,
    /// A container that really runs (a `rebootguard` command), if any;
    /// dropping it kills the process and removes its files.
    pub container: Option<crate::container::Running>,
    /// Pod `namespace/name`.
    pub pod: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

/// What changes from boot to boot.
#[derive(Debug, Default)]
pub struct State {
    /// The node's namespace while it is powered.
    pub netns: Option<Arc<Netns>>,
    /// This boot's ID.
    pub boot_id: String,
    /// Boots so far.
    pub boots: u32,
    /// Faults armed for the next boot.
    pub armed: BTreeSet<Fault>,
    /// Faults in effect this boot.
    pub active: BTreeSet<Fault>,
    /// k3s's tasks (agent, flannel, heartbeats, kubelet).
    pub k3s: Vec<JoinHandle<()>>,
    /// Bumped whenever k3s stops: a task of an earlier run that would add
    /// itself to [`State::k3s`] aborts instead.
    pub k3s_run: u64,
    /// flannel's peer loop, while it runs.
    pub peers: Option<tokio::task::AbortHandle>,
    /// flannel was stopped (`stop-flannel`) until k3s restarts.
    pub flannel_stopped: bool,
    /// The `rebootguard agent` supervisor of this boot (`--agent`).
    pub agent: Option<Arc<crate::agent::Supervisor>>,
    /// The API forwarder.
    pub proxy: Option<JoinHandle<()>>,
    /// Pod sandboxes by pod UID.
    pub sandboxes: HashMap<String, Sandbox>,
    /// Whether flannel initialised this boot.
    pub flannel_up: bool,
    /// CSI drivers registered with the kubelet this boot.
    pub csi_drivers: BTreeSet<String>,
    /// Bumped at every power-off and boot: a delayed boot planned at one
    /// power-off happens only if nothing else powered the node since.
    pub power_epoch: u64,
}

/// A node.
#[derive(Debug)]
pub struct Node {
    /// Kubernetes name.
    pub name: String,
    /// Position (decides the underlay address).
    pub index: usize,
    /// Root directory (its `/`).
    pub root: PathBuf,
    /// Underlay address (flannel's public-ip).
    pub public_ip: Ipv4Addr,
    /// The VtepMAC this node's flannel starts with.
    pub mac: [u8; 6],
    /// `eth0`'s MAC: fixed, so every other node can know it without ARP
    /// (see [`boot`]).
    pub underlay_mac: [u8; 6],
    /// podCIDR the scenario pins, if any.
    pub pinned_cidr: Option<Ipv4Net>,
    /// k3s server or agent.
    pub role: Role,
    /// Whether this lab's servers run embedded etcd.
    pub etcd: bool,
    /// The API server is unreachable from this node (injected).
    pub api_blocked: AtomicBool,
    /// Held while the node powers off or boots, so a power-on and the end
    /// of a reboot's dark period never boot it twice.
    pub power: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

impl Node {
    /// A node (nothing created yet).
    pub fn new(
        name: &str,
        index: usize,
        root: PathBuf,
        pinned_cidr: Option<Ipv4Net>,
        role: Role,
        etcd: bool,
    ) -> Node {
        let i = u8::try_from(index % 250).unwrap_or(0);
        let hi = u8::try_from(index / 250).unwrap_or(0);
        Node {
            name: name.to_owned(),
            index,
            root,
            public_ip: Ipv4Addr::new(172, 31, hi, i + 1),
            mac: [0x0a, 0x58, 0xac, 0x1f, hi, i + 1],
            underlay_mac: [0x02, 0x52, 0xac, 0x1f, hi, i + 1],
            pinned_cidr,
            role,
            etcd,
            api_blocked: AtomicBool::new(false),
            power: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
        }
    }

    /// The node's state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A path under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The namespace, while powered.
    pub fn netns(&self) -> Option<Arc<Netns>> {
        self.state().netns.clone()
    }

    /// Fails when this node cannot reach the API.
    pub fn reach(&self) -> Result<(), api::Error> {
        if self.api_blocked.load(Ordering::Acquire) {
            Err(api::Error::Unreachable(self.name.clone()))
        } else {
            Ok(())
        }
    }

    /// Its root's persistent parts, made once (`lab up`).
    pub fn install(&self, ctx: &Ctx) -> Result<(), Error> {
        for dir in [
            "proc/sys/kernel/random",
            "run",
            paths::CNI_BIN,
            paths::LEASES,
            paths::STORE,
            "etc/rancher/k3s",
            "var/lib/cni/flannel",
            "var/lib/rancher/k3s/agent/etc/flannel",
            "var/lib/rancher/k3s/agent/etc/cni/net.d",
        ] {
            let p = self.path(dir);
            std::fs::create_dir_all(&p).map_err(|e| Error::Write(p.clone(), e))?;
        }
        write(
            &self.path(paths::K3S_CONFIG),
            &format!("node-name: {}\n", self.name),
        )?;
        let kubeconfig = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "default", "cluster": {"server": format!("http://127.0.0.1:{API_PORT}")}}],
            "users": [{"name": "default", "user": {}}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
            "current-context": "default",
        });
        write(&self.path(paths::KUBECONFIG), &kubeconfig.to_string())?;
        // rebootguard's config: `node restore`/`backup` read it too.
        let config = crate::agent::Config {
            node: &self.name,
            exe: &ctx.exe,
            base_dir: &ctx.options.base_dir,
            lab: &ctx.id,
            time_scale: ctx.scenario.time_scale,
        };
        write(&self.path(crate::agent::CONFIG), &config.render())?;
        // /var/run is /run, as on Debian and every systemd distribution:
        // what is written there (the reboot-required sentinel) goes with
        // /run's tmpfs on a reboot.
        let var_run = self.path("var/run");
        if !var_run.is_symlink() {
            std::fs::create_dir_all(self.path("var"))
                .map_err(|e| Error::Write(var_run.clone(), e))?;
            let _ = std::fs::remove_dir_all(&var_run);
            std::os::unix::fs::symlink("../run", &var_run)
                .map_err(|e| Error::Write(var_run.clone(), e))?;
        }
        // k3s extracts its CNI plugins into its data dir.
        let bin = self.path(paths::CNI_BIN);
        for plugin in PLUGINS {
            let target = ctx.plugin_source(plugin);
            let link = bin.join(plugin);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link)
                .map_err(|e| Error::Write(link.clone(), e))?;
        }
        Ok(())
    }
}

/// Writes a file, creating its parent (0755), atomically (temp, rename), 0644.
pub fn write(path: &Path, content: &str) -> Result<(), Error> {
    let fail = |e| Error::Write(path.to_owned(), e);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let tmp = path.with_extension("lab-tmp");
    std::fs::write(&tmp, content).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn new_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| {
            format!(
                "{:032x}",
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            )
        })
}

/// Runs netlink work in `ns` off the async runtime.
pub async fn netlink<T, F, Fut>(ns: Arc<Netns>, work: F) -> Result<T, link::Error>
where
    F: FnOnce(Netlink) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, link::Error>>,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || link::blocking(Some(&ns), work))
        .await
        .unwrap_or_else(|e| Err(link::Error::Runtime(std::io::Error::other(e.to_string()))))
}

/// Powers the node on: everything up to and including starting k3s.
pub async fn boot(ctx: &Arc<Ctx>, node: &Arc<Node>) -> Result<(), Error> {
    if ctx.closed.load(Ordering::Acquire) {
        return Err(Error::Closed);
    }
    let boot_id = new_boot_id();
    let btime = kubesim::time::now_unix();
    write(&node.path(paths::BOOT_ID), &format!("{boot_id}\n"))?;
    write(
        &node.path(paths::PROC_STAT),
        &format!("cpu  0 0 0 0 0 0 0 0 0 0\nbtime {btime}\nprocesses 1\n"),
    )?;
    // /run is tmpfs: empty on every boot.
    let run = node.path("run");
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).map_err(|e| Error::Write(run.clone(), e))?;

    let ns = Arc::new(
        Netns::create_named(&netns::unique_name(&ctx.prefix))
            .map_err(|e| Error::Netns(node.name.clone(), e))?,
    );
    let port = format!("p{}", node.index);
    let public = node.public_ip;
    let switch = ctx.switch.clone();
    {
        // The kernel tears a dropped namespace down in the background: a
        // boot right after a power-off can find the last boot's switch port
        // still there. It is this node's own; delete it (and its peer).
        // Best effort: the kernel may win the race, and adding the new
        // port below reports any real trouble.
        let port = port.clone();
        let _ = netlink(ctx.switch.clone(), move |nl| async move {
            nl.delete_link(&port).await
        })
        .await;
    }
    // Every node knows every other node's underlay MAC, as if each had
    // ARPed it on a host of its own. Learned entries would all land in the
    // kernel's one ARP table shared by every namespace: at 50 nodes the
    // all-to-all traffic of `verify` wants ~2,500 of them, past the
    // default gc_thresh3 (1,024), and the kernel drops packets ("neighbor
    // table overflow"). Permanent entries do not count against it.
    let underlay: Vec<(Ipv4Addr, [u8; 6])> = ctx
        .nodes
        .iter()
        .filter(|n| n.name != node.name)
        .map(|n| (n.public_ip, n.underlay_mac))
        .collect();
    let mac = node.underlay_mac;
    {
        let port = port.clone();
        netlink(ns.clone(), move |nl| async move {
            nl.add_veth("eth0", &port, Some(&switch)).await?;
            nl.set_mac("eth0", &mac).await?;
            for (ip, mac) in underlay {
                nl.add_neighbour("eth0", IpAddr::V4(ip), &mac).await?;
            }
            nl.add_address(
                "eth0",
                IpNet::new(IpAddr::V4(public), 16).unwrap_or_default(),
            )
            .await?;
            nl.set_up("eth0").await?;
            nl.set_up("lo").await?;
            nl.add_route(&RouteSpec {
                destination: "0.0.0.0/0".parse().unwrap_or_default(),
                gateway: None,
                device: Some("eth0".into()),
                onlink: false,
            })
            .await
        })
        .await
        .map_err(|e| Error::Link(node.name.clone(), e))?;
    }
    netlink(ctx.switch.clone(), move |nl| async move {
        nl.set_master(&port, "br0").await?;
        nl.set_up(&port).await
    })
    .await
    .map_err(|e| Error::Link(node.name.clone(), e))?;
    let forward = ns.clone();
    tokio::task::spawn_blocking(move || {
        forward.run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
    })
    .await
    .map_err(Error::Join)?
    .map_err(|e| Error::Netns(node.name.clone(), e))?
    .map_err(|e| Error::Write("/proc/sys/net/ipv4/ip_forward".into(), e))?;

    let proxy = crate::lab::forward_api(ctx, node, &ns);
    let armed = {
        let mut st = node.state();
        st.netns = Some(ns.clone());
        st.boot_id = boot_id.clone();
        st.boots += 1;
        st.power_epoch += 1;
        st.flannel_up = false;
        st.csi_drivers.clear();
        st.proxy = proxy.ok();
        let armed = std::mem::take(&mut st.armed);
        st.active = armed.clone();
        armed
    };
    ctx.timeline
        .note(ctx, Some(&node.name), "boot", &format!("boot id {boot_id}"));
    for fault in &armed {
        arm(ctx, node, &ns, *fault).await?;
    }
    if ctx.options.protected {
        crate::lab::rebootguard(ctx, node, &["node", "restore"]).await;
    }
    // A server's k3s brings the API back when its datastore has quorum.
    if node.role == Role::Server {
        ctx.follow_servers(crate::lab::ApiChange::UpOnly).await;
    }
    // rebootguard-agent.service and k3s.service start together.
    start_k3s(ctx, node);
    if ctx.options.agent {
        let agent = crate::agent::start(ctx, node);
        let old = {
            let mut st = node.state();
            if st.netns.is_some() {
                st.agent.replace(agent)
            } else {
                // Powered off meanwhile: this boot's agent goes at once.
                Some(agent)
            }
        };
        if let Some(old) = old {
            old.stop();
        }
    }
    ctx.write_state();
    Ok(())
}

/// What a fault does at boot, before k3s starts.
async fn arm(ctx: &Arc<Ctx>, node: &Arc<Node>, ns: &Arc<Netns>, fault: Fault) -> Result<(), Error> {
    ctx.timeline
        .note(ctx, Some(&node.name), "fault", fault.name());
    match fault {
        // Acted on elsewhere: by flannel, IPAM, and the power-on that
        // does not happen.
        Fault::FlannelSilentSkip | Fault::PodCidrNeverAssigned | Fault::StaysDown => {}
        Fault::MissingCniBinary => {
            let _ = std::fs::remove_file(node.path(paths::CNI_BIN).join("flannel"));
        }
        Fault::LeakedLeases => {
            // Every address of the lease taken by a container that is gone.
            let cidr = ctx
                .api
                .node(&node.name)
                .and_then(|n| {
                    n.pointer("/spec/podCIDR")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .and_then(|c| c.parse::<Ipv4Net>().ok())
                .or(node.pinned_cidr);
            if let Some(cidr) = cidr {
                let dir = node.path(paths::LEASES);
                let past = SystemTime::now() - Duration::from_secs(3600);
                for ip in cidr.hosts().skip(1) {
                    let p = dir.join(ip.to_string());
                    std::fs::write(&p, format!("{:064x}\neth0", u32::from(ip)))
                        .map_err(|e| Error::Write(p.clone(), e))?;
                    if let Ok(f) = std::fs::File::options().write(true).open(&p) {
                        let _ = f.set_modified(past);
                    }
                }
            }
        }
        Fault::StaleFlannelAddress => {
            netlink(ns.clone(), |nl| async move {
                nl.add_vxlan(&vtep_spec(None)).await?;
                nl.add_address(VTEP, "10.42.99.0/32".parse().unwrap_or_default())
                    .await
            })
            .await
            .map_err(|e| Error::Link(node.name.clone(), e))?;
        }
        Fault::ApiUnreachableDuringBoot => {
            node.api_blocked.store(true, Ordering::Release);
            let node = node.clone();
            let d = ctx.scenario.scaled(Duration::from_secs(90));
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                node.api_blocked.store(false, Ordering::Release);
            });
        }
    }
    Ok(())
}

fn vtep_spec(local: Option<Ipv4Addr>) -> VxlanSpec {
    VxlanSpec {
        name: VTEP.into(),
        vni: 1,
        port: 8472,
        local: local.map(IpAddr::V4),
        underlay: local.map(|_| "eth0".into()),
        learning: false,
    }
}

/// Starts (or restarts) k3s on a powered node.
pub fn start_k3s(ctx: &Arc<Ctx>, node: &Arc<Node>) {
    let run = {
        let mut st = node.state();
        st.flannel_stopped = false;
        st.k3s_run
    };
    let task = agent(ctx.clone(), node.clone(), run);
    let agent = tasks::spawn(ctx, Some(&node.name), "k3s agent", Lifetime::MayEnd, task);
    adopt(node, run, agent);
}

/// Adds a task to k3s run `run`, or aborts it when that run has stopped.
fn adopt(node: &Node, run: u64, task: JoinHandle<()>) {
    let mut st = node.state();
    if st.k3s_run == run {
        st.k3s.push(task);
    } else {
        task.abort();
    }
}

/// Stops k3s (its tasks); pods' sandboxes keep running, as with containerd.
pub fn stop_k3s(node: &Node) {
    let tasks = {
        let mut st = node.state();
        st.k3s_run += 1;
        st.peers = None;
        std::mem::take(&mut st.k3s)
    };
    for t in tasks {
        t.abort();
    }
}

/// Stops flannel's peer loop until k3s restarts (`stop-flannel`).
pub fn stop_flannel(node: &Node) {
    let peers = {
        let mut st = node.state();
        st.flannel_stopped = true;
        st.peers.take()
    };
    if let Some(p) = peers {
        p.abort();
    }
}

/// Powers the node off: the agent and k3s stop, pods and devices vanish,
/// /run is lost.
pub fn power_off(ctx: &Ctx, node: &Node) {
    let agent = node.state().agent.take();
    if let Some(a) = agent {
        a.stop();
    }
    stop_k3s(node);
    let (sandboxes, ns, proxy) = {
        let mut st = node.state();
        st.power_epoch += 1;
        (
            std::mem::take(&mut st.sandboxes),
            st.netns.take(),
            st.proxy.take(),
        )
    };
    if let Some(p) = proxy {
        p.abort();
    }
    drop(sandboxes);
    drop(ns);
    let _ = std::fs::remove_dir_all(node.path("run"));
    ctx.timeline
        .note(ctx, Some(&node.name), "shutdown", "powered off");
    ctx.write_state();
}

/// Loops `f` every `period` until it returns `Some`.
async fn until<T>(period: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(period).await;
    }
}

/// The emulated k3s agent (run `run` of k3s on this boot).
async fn agent(ctx: Arc<Ctx>, node: Arc<Node>, run: u64) {
    let tick = Duration::from_millis(50);
    // Register (retrying while the API is unreachable).
    until(tick, || register(&ctx, &node).ok()).await;
    let conf = match net_conf(&ctx) {
        Ok(c) => c,
        Err(e) => {
            ctx.timeline.note(
                &ctx,
                Some(&node.name),
                "k3s",
                &format!("k3s exited: bad net-conf.json: {e}"),
            );
            return;
        }
    };
    let _ = write(&node.path(paths::NET_CONF), &conf.render());
    let _ = write(&node.path(paths::CONFLIST), &conflist().to_string());
    // Wait, without a timeout, for the podCIDR.
    let cidr = until(tick, || {
        node.reach().ok()?;
        ctx.api
            .node(&node.name)?
            .pointer("/spec/podCIDR")?
            .as_str()?
            .parse::<Ipv4Net>()
            .ok()
    })
    .await;
    flannel(&ctx, &node, cidr, &conf, run).await;
    let task = heartbeats(ctx.clone(), node.clone());
    let heartbeat = tasks::spawn(
        &ctx,
        Some(&node.name),
        "heartbeats",
        Lifetime::Forever,
        task,
    );
    adopt(&node, run, heartbeat);
    let task = crate::kubelet::run(ctx.clone(), node.clone());
    let kubelet = tasks::spawn(&ctx, Some(&node.name), "kubelet", Lifetime::Forever, task);
    adopt(&node, run, kubelet);
}

fn net_conf(ctx: &Ctx) -> Result<NetConf, String> {
    let text = json!({"Network": ctx.scenario.cluster_cidr.to_string(), "EnableIPv6": false, "EnableIPv4": true, "IPv6Network": "::/0", "Backend": {"Type": "vxlan"}});
    NetConf::parse(text.to_string().as_bytes()).map_err(|e| e.to_string())
}

/// k3s's 10-flannel.conflist.
pub fn conflist() -> Value {
    json!({
        "name": "cbr0",
        "cniVersion": "1.0.0",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    })
}

/// The kubelet's Ready message between a new boot and its first heartbeat.
pub const NOT_READY_AT_BOOT: &str = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";

/// The labels k3s puts on a node: a server's role labels
/// (`control-plane`, `master`, and `etcd` with embedded etcd, all `"true"`)
/// so a quorum gate can count servers; an agent has none.
pub fn role_labels(role: Role, etcd: bool) -> Vec<&'static str> {
    match (role, etcd) {
        (Role::Agent, _) => Vec::new(),
        (Role::Server, false) => vec![
            "node-role.kubernetes.io/control-plane",
            "node-role.kubernetes.io/master",
        ],
        (Role::Server, true) => vec![
            "node-role.kubernetes.io/control-plane",
            "node-role.kubernetes.io/etcd",
            "node-role.kubernetes.io/master",
        ],
    }
}

/// Every label the emulated k3s sets on `node`.
fn labels(node: &Node) -> Value {
    let mut labels = json!({"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"});
    for key in role_labels(node.role, node.etcd) {
        labels[key] = "true".into();
    }
    labels
}

/// Creates or refreshes the Node for this boot; a new boot ID is a reboot.
fn register(ctx: &Ctx, node: &Node) -> Result<(), api::Error> {
    node.reach()?;
    let boot_id = node.state().boot_id.clone();
    let existing = ctx.api.node(&node.name);
    let fault_no_cidr = node.state().active.contains(&Fault::PodCidrNeverAssigned);
    if fault_no_cidr && existing.is_some() {
        // The Node object was lost (re-registered from scratch).
        ctx.api.delete_now("v1", "Node", "", &node.name)?;
        ctx.ipam_block(&node.name);
    }
    let existing = ctx.api.node(&node.name);
    let now = kubesim::time::now();
    let status = json!({
        "addresses": [{"type": "InternalIP", "address": node.public_ip.to_string()}, {"type": "Hostname", "address": node.name}],
        "nodeInfo": {
            "bootID": boot_id, "machineID": format!("{:032x}", node.index + 1), "systemUUID": format!("lab-{}", node.name),
            "kernelVersion": "6.12.0-lab", "osImage": "rebootguard lab", "containerRuntimeVersion": "containerd://2.0.5-k3s1",
            "kubeletVersion": "v1.33.1+k3s1", "kubeProxyVersion": "v1.33.1+k3s1", "operatingSystem": "linux", "architecture": "amd64",
        },
        "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "container runtime status check may not have completed yet", "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
    });
    match existing {
        None => {
            ctx.api.create(&json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": labels(node),
                    "annotations": {"k3s.io/node-args": format!("[\"{}\"]", node.role.name())}},
                "spec": {},
                "status": status,
            }))?;
        }
        Some(old) => {
            let old_boot = old
                .pointer("/status/nodeInfo/bootID")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            // k3s applies its role labels at every start.
            ctx.api.merge(
                "v1",
                "Node",
                "",
                &node.name,
                &json!({"metadata": {"labels": labels(node)}}),
            )?;
            ctx.api.merge_status(
                "v1",
                "Node",
                "",
                &node.name,
                &json!({"status": {"nodeInfo": {"bootID": boot_id}}}),
            )?;
            if !old_boot.is_empty() && old_boot != boot_id {
                // A kubelet starting on a new boot reports NotReady until
                // its runtime and network are up (the heartbeats' first
                // Ready=True follows flannel's init).
                ctx.api.set_condition(
                    "v1",
                    "Node",
                    "",
                    &node.name,
                    &json!({"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                        "message": NOT_READY_AT_BOOT, "lastHeartbeatTime": now, "lastTransitionTime": now}),
                )?;
            }
            if !old_boot.is_empty()
                && old_boot != boot_id
                && let Some(obj) = ctx.api.node(&node.name)
            {
                ctx.api.event(
                    &obj,
                    "Warning",
                    "Rebooted",
                    &format!("Node {} has been rebooted, boot id: {boot_id}", node.name),
                    Source {
                        component: "kubelet",
                        host: Some(&node.name),
                    },
                );
                ctx.timeline
                    .note(ctx, Some(&node.name), "event", "Rebooted");
            }
        }
    }
    Ok(())
}

/// Node Ready heartbeats while k3s runs: only the `Ready` condition is
/// written (a strategic merge on `nodes/status`, merged by `type`, as the
/// kubelet does), so conditions other writers own survive.
async fn heartbeats(ctx: Arc<Ctx>, node: Arc<Node>) {
    let mut first = true;
    loop {
        if node.reach().is_ok() {
            let now = kubesim::time::now();
            let previous = ctx.api.node(&node.name).and_then(|n| {
                n.pointer("/status/conditions")?
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready")
                    .cloned()
            });
            // lastTransitionTime moves only when the status changes.
            let since = previous
                .as_ref()
                .filter(|c| c["status"] == "True")
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| now.clone().into());
            let ready = json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": since});
            if ctx
                .api
                .set_condition("v1", "Node", "", &node.name, &ready)
                .is_ok()
            {
                ctx.beat(&node.name);
                if first {
                    ctx.timeline
                        .note(ctx.as_ref(), Some(&node.name), "ready", "node Ready");
                    first = false;
                }
            }
        }
        tokio::time::sleep(ctx.times.heartbeat).await;
    }
}

/// The embedded flannel: init (or the incident's silent skip), then peers.
/// With a subnet.env present (or none and no fault) it creates `flannel.1`
/// when missing, rewrites subnet.env and programs every peer afresh: what
/// a k3s restart repairs.
async fn flannel(ctx: &Arc<Ctx>, node: &Arc<Node>, cidr: Ipv4Net, conf: &NetConf, run: u64) {
    let subnet_env = node.path(paths::SUBNET_ENV);
    let skip = node.state().active.contains(&Fault::FlannelSilentSkip) && !subnet_env.exists();
    if skip {
        // The incident: no error, no subnet.env, no flannel.1. Logged by
        // the lab only, never by the emulated k3s.
        ctx.timeline.note(
            ctx,
            Some(&node.name),
            "flannel",
            "embedded flannel skipped its init (silently)",
        );
        return;
    }
    let Some(ns) = node.netns() else { return };
    // Reuse the VtepMAC from the annotation, as flannel does.
    let mac = ctx
        .api
        .node(&node.name)
        .and_then(|n| {
            n.pointer("/metadata/annotations/flannel.alpha.coreos.com~1backend-data")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .and_then(|d| serde_json::from_str::<Value>(&d).ok())
        .and_then(|d| d["VtepMAC"].as_str().and_then(parse_mac))
        .unwrap_or(node.mac);
    let lease = cidr.trunc();
    let vtep_addr = Ipv4Net::new(lease.network(), 32).unwrap_or_default();
    let public = node.public_ip;
    let made = netlink(ns.clone(), move |nl| async move {
        match nl.link(VTEP).await {
            Ok(existing) => {
                // Like flannel's ensureV4AddressOnLink: only IPv4 addresses
                // count (the kernel's IPv6 link-local one does not).
                let stray: Vec<String> = existing.addresses.iter().filter(|a| matches!(a, IpNet::V4(_)) && **a != IpNet::V4(vtep_addr)).map(ToString::to_string).collect();
                if !stray.is_empty() {
                    return Ok(Err(format!(
                        "failed to configure interface {VTEP}: link has incompatible addresses. Remove additional addresses and try again. (found {})",
                        stray.join(", ")
                    )));
                }
            }
            Err(link::Error::NoSuchLink(_)) => nl.add_vxlan(&vtep_spec(Some(public))).await?,
            Err(e) => return Err(e),
        }
        nl.set_mtu(VTEP, 1450).await?;
        nl.set_mac(VTEP, &mac).await?;
        if !nl.link(VTEP).await?.addresses.iter().any(|a| matches!(a, IpNet::V4(_))) {
            nl.add_address(VTEP, IpNet::V4(vtep_addr)).await?;
        }
        nl.set_up(VTEP).await?;
        Ok(Ok(()))
    })
    .await;
    match made {
        Ok(Ok(())) => {}
        Ok(Err(text)) => {
            ctx.timeline.note(
                ctx,
                Some(&node.name),
                "flannel",
                &format!("flannel exited: {text}"),
            );
            return;
        }
        Err(e) => {
            ctx.timeline.note(
                ctx,
                Some(&node.name),
                "flannel",
                &format!("flannel exited: {e}"),
            );
            return;
        }
    }
    let backend = json!({"VNI": 1, "VtepMAC": format_mac(&mac)}).to_string();
    let annotations = json!({"metadata": {"annotations": {
        "flannel.alpha.coreos.com/backend-type": "vxlan",
        "flannel.alpha.coreos.com/backend-data": backend,
        "flannel.alpha.coreos.com/kube-subnet-manager": "true",
        "flannel.alpha.coreos.com/public-ip": public.to_string(),
    }}});
    until(Duration::from_millis(50), || {
        ctx.api
            .merge("v1", "Node", "", &node.name, &annotations)
            .ok()
            .filter(|_| node.reach().is_ok())
    })
    .await;
    match derive(&[IpNet::V4(cidr)], conf, Mtu::Overlay(1450), true) {
        Ok(env) => {
            // A failed write is only a warning in k3s.
            if write(&subnet_env, &env.render()).is_ok() {
                node.state().flannel_up = true;
                ctx.timeline.note(
                    ctx,
                    Some(&node.name),
                    "flannel",
                    "wrote /run/flannel/subnet.env",
                );
                if ctx.options.protected {
                    crate::lab::rebootguard(ctx, node, &["node", "backup"]).await;
                }
            }
        }
        Err(e) => ctx
            .timeline
            .note(ctx, Some(&node.name), "flannel", &format!("warning: {e}")),
    }
    let task = peers(ctx.clone(), node.clone(), ns);
    let task = tasks::spawn(
        ctx,
        Some(&node.name),
        "flannel peers",
        Lifetime::MayEnd,
        task,
    );
    let mut st = node.state();
    if st.k3s_run == run && !st.flannel_stopped {
        st.peers = Some(task.abort_handle());
        st.k3s.push(task);
    } else {
        task.abort();
    }
}

/// Programs every peer's neighbour, FDB entry and route, following changes
/// in the API only: an entry deleted behind its back stays deleted until
/// the next k3s start, which begins with nothing programmed.
async fn peers(ctx: Arc<Ctx>, node: Arc<Node>, ns: Arc<Netns>) {
    let mut programmed: BTreeMap<String, (Ipv4Net, [u8; 6], Ipv4Addr)> = BTreeMap::new();
    loop {
        if node.state().flannel_stopped {
            return;
        }
        if node.reach().is_ok() {
            for peer in ctx.api.nodes() {
                let name = api::name(&peer).to_owned();
                if name == node.name {
                    continue;
                }
                let Some(want) = peer_of(&peer) else { continue };
                if programmed.get(&name) == Some(&want) {
                    continue;
                }
                let (lease, mac, ip) = want;
                let done = netlink(ns.clone(), move |nl| async move {
                    nl.add_neighbour(VTEP, IpAddr::V4(lease.network()), &mac)
                        .await?;
                    nl.add_fdb(VTEP, &mac, IpAddr::V4(ip)).await?;
                    let route = RouteSpec {
                        destination: IpNet::V4(lease),
                        gateway: Some(IpAddr::V4(lease.network())),
                        device: Some(VTEP.into()),
                        onlink: true,
                    };
                    // `ip route add` refuses a route that is already there.
                    let exists = nl
                        .routes(rebootguard_hostnet::link::Family::V4)
                        .await?
                        .iter()
                        .any(|r| r.destination == route.destination);
                    if exists {
                        Ok(())
                    } else {
                        nl.add_route(&route).await
                    }
                })
                .await;
                // Runtime FDB/route errors are only logged by flannel.
                if done.is_ok() {
                    programmed.insert(name, want);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (lease, VtepMAC, public-ip) of a peer Node, when flannel runs there.
pub fn peer_of(node: &Value) -> Option<(Ipv4Net, [u8; 6], Ipv4Addr)> {
    let a = node.pointer("/metadata/annotations")?;
    if a["flannel.alpha.coreos.com/kube-subnet-manager"].as_str() != Some("true") {
        return None;
    }
    let data: Value =
        serde_json::from_str(a["flannel.alpha.coreos.com/backend-data"].as_str()?).ok()?;
    let mac = parse_mac(data["VtepMAC"].as_str()?)?;
    let ip = a["flannel.alpha.coreos.com/public-ip"]
        .as_str()?
        .parse()
        .ok()?;
    let lease = node
        .pointer("/spec/podCIDR")?
        .as_str()?
        .parse::<Ipv4Net>()
        .ok()?
        .trunc();
    Some((lease, mac, ip))
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Time since `t`, for loops that wait.
pub fn since(t: Instant) -> Duration {
    t.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_carry_k3s_role_labels() {
        assert!(role_labels(Role::Agent, true).is_empty());
        assert_eq!(
            role_labels(Role::Server, false),
            [
                "node-role.kubernetes.io/control-plane",
                "node-role.kubernetes.io/master"
            ]
        );
        assert!(role_labels(Role::Server, true).contains(&"node-role.kubernetes.io/etcd"));
    }

    #[test]
    fn macs_round_trip() {
        let m = [0x0a, 0x58, 0xac, 0x1f, 0, 1];
        assert_eq!(format_mac(&m), "0a:58:ac:1f:00:01");
        assert_eq!(parse_mac("0a:58:ac:1f:00:01"), Some(m));
        assert_eq!(parse_mac("0a:58"), None);
    }

    #[test]
    fn peers_need_flannels_annotations() {
        let mut n = json!({"metadata": {"name": "b", "annotations": {
            "flannel.alpha.coreos.com/backend-data": "{\"VNI\":1,\"VtepMAC\":\"0a:58:ac:1f:00:02\"}",
            "flannel.alpha.coreos.com/public-ip": "172.31.0.2"}}, "spec": {"podCIDR": "10.42.2.0/24"}});
        assert_eq!(peer_of(&n), None, "no kube-subnet-manager: no routes");
        n["metadata"]["annotations"]["flannel.alpha.coreos.com/kube-subnet-manager"] =
            "true".into();
        let (lease, mac, ip) = peer_of(&n).unwrap();
        assert_eq!(
            (lease.to_string(), mac[5], ip.to_string()),
            ("10.42.2.0/24".into(), 2, "172.31.0.2".into())
        );
    }
}
