//! The emulated kubelet: for every pod bound to its node it creates a real
//! sandbox network namespace through the node's conflist (see
//! [`crate::sandbox`]), and writes pod status and events in the kubelet's
//! shapes: `SandboxChanged` after a reboot, `FailedCreatePodSandBox` with
//! containerd's text, `ContainerCreating`, `CrashLoopBackOff`, volume
//! attach/mount failures while the Longhorn CSI driver is not registered.
//! A deleted pod is removed at once, or with `[longhorn]
//! unmount_needs_driver` once its volumes are unmounted: one that ran with
//! a Longhorn volume stays `Terminating` while the driver is not
//! registered (after a reboot, until the CSI plugin runs again). A pod whose container command is `rebootguard ...` runs that command
//! for real in its sandbox ([`crate::container`]) and ends `Succeeded` or
//! `Failed` with the container's exit code and termination message.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rebootguard_hostnet::netns::{self, Netns};
use serde_json::{Value, json};

use crate::api::{self, Source};
use crate::lab::Ctx;
use crate::node::{Node, Sandbox};
use crate::sandbox::{self, Request};
use crate::scenario::Behaviour;

/// Longhorn's CSI driver name.
pub const LONGHORN_DRIVER: &str = "driver.longhorn.io";
/// The marker for a sandbox lost to a power-off mid-creation (no event:
/// the kubelet that would report it is gone too).
const POWERED_OFF: &str = "node powered off";

/// The name Flux controllers resolve.
pub const FLUX_LOOKUP: &str = "source-controller.flux-system.svc.cluster.local";

/// What the kubelet remembers about a pod within one run.
#[derive(Debug, Default)]
struct Memo {
    written: Option<Value>,
    started: Option<String>,
    next_try: Option<Instant>,
    next_check: Option<Instant>,
    dns_ok: bool,
    dns_error: String,
    restarts: u64,
    crashed: bool,
    changed_sent: bool,
    /// A real container was started in this run.
    container_started: bool,
    /// ... and ended.
    exited: Option<Exited>,
}

/// A real container's end.
#[derive(Debug, Clone, PartialEq)]
struct Exited {
    code: i32,
    reason: String,
    message: String,
    started: String,
    finished: String,
}

fn source(node: &Node) -> Source<'_> {
    Source {
        component: "kubelet",
        host: Some(&node.name),
    }
}

/// The kubelet's sync loop.
pub async fn run(ctx: Arc<Ctx>, node: Arc<Node>) {
    let mut memos: HashMap<String, Memo> = HashMap::new();
    publish_csi(&ctx, &node, &BTreeSet::new());
    loop {
        if node.reach().is_ok() {
            sync(&ctx, &node, &mut memos).await;
        }
        tokio::time::sleep(ctx.times.kubelet).await;
    }
}

fn uid(pod: &Value) -> String {
    pod.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn sync(ctx: &Arc<Ctx>, node: &Arc<Node>, memos: &mut HashMap<String, Memo>) {
    let pods = ctx.api.pods_on(&node.name);
    let live: BTreeSet<String> = pods.iter().map(uid).collect();
    // Sandboxes of pods that are gone (force-deleted) are torn down.
    let orphans: Vec<String> = node
        .state()
        .sandboxes
        .keys()
        .filter(|u| !live.contains(*u))
        .cloned()
        .collect();
    for u in orphans {
        teardown(ctx, node, &u).await;
    }
    memos.retain(|u, _| live.contains(u));
    let now = Instant::now();
    let mut to_add = Vec::new();
    for pod in &pods {
        let u = uid(pod);
        if api::terminating(pod) {
            if !volumes_unmountable(ctx, node, pod) {
                // The kubelet removes a pod only once its volumes are
                // unmounted: stuck Terminating (Unknown after NodeLost).
                continue;
            }
            // Confirm the deletion: stop the sandbox and remove the pod.
            teardown(ctx, node, &u).await;
            let _ = ctx
                .api
                .delete_now("v1", "Pod", api::namespace(pod), api::name(pod));
            continue;
        }
        if terminal(pod) {
            // restartPolicy Never: a finished pod never runs again.
            continue;
        }
        let behaviour = ctx.behaviour(pod);
        let memo = memos.entry(u.clone()).or_default();
        if behaviour == Behaviour::Volume && !node.state().csi_drivers.contains(LONGHORN_DRIVER) {
            if memo.next_try.is_none_or(|t| t <= now) {
                volume_failure(ctx, node, pod);
                memo.next_try = Some(now + ctx.times.retry);
            }
            write_status(ctx, pod, memo, Phase::Creating, None);
            continue;
        }
        let has = node.state().sandboxes.contains_key(&u);
        if !has {
            if memo.next_try.is_some_and(|t| t > now) {
                continue;
            }
            if !memo.changed_sent && had_sandbox_before(pod) {
                ctx.api.event(
                    pod,
                    "Normal",
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.",
                    source(node),
                );
                memo.changed_sent = true;
            }
            to_add.push(pod.clone());
        }
    }
    // Sandboxes are created a few at a time, as the runtime would.
    for chunk in to_add.chunks(6) {
        let mut set = tokio::task::JoinSet::new();
        for pod in chunk {
            let (c, n, p) = (ctx.clone(), node.clone(), pod.clone());
            set.spawn(async move {
                let r = add(&c, &n, &p).await;
                (p, r)
            });
        }
        while let Some(Ok((pod, result))) = set.join_next().await {
            let memo = memos.entry(uid(&pod)).or_default();
            match result {
                Ok(()) => memo.next_try = None,
                Err((_, error)) if error == POWERED_OFF => {}
                Err((id, error)) => {
                    let message = sandbox::kubelet_message(&id, &error);
                    ctx.timeline.sandbox_failed(ctx, &node.name, &pod, &message);
                    ctx.api.event(
                        &pod,
                        "Warning",
                        "FailedCreatePodSandBox",
                        &message,
                        source(node),
                    );
                    memo.next_try = Some(Instant::now() + ctx.times.retry);
                    write_status(ctx, &pod, memo, Phase::Creating, None);
                }
            }
        }
    }
    // Containers: run, or crash, by what they need.
    let mut csi = BTreeSet::new();
    let managers_running = pods.iter().any(|p| {
        ctx.behaviour(p) == Behaviour::LonghornManager
            && node.state().sandboxes.contains_key(&uid(p))
    });
    for pod in &pods {
        let u = uid(pod);
        if api::terminating(pod) {
            continue;
        }
        let ip = node.state().sandboxes.get(&u).and_then(|s| s.ip);
        let Some(ip) = ip else { continue };
        if terminal(pod) {
            continue;
        }
        let memo = memos.entry(u.clone()).or_default();
        if let Some(argv) = crate::container::argv(pod) {
            let phase = real_container(ctx, node, pod, memo, ip, &argv).await;
            write_status(ctx, pod, memo, phase, Some(ip));
            continue;
        }
        let behaviour = ctx.behaviour(pod);
        let phase = match behaviour {
            Behaviour::Broken => crash(
                ctx,
                node,
                pod,
                memo,
                "Error: failed to register the runner: instance returned 401 Unauthorized (token in config.yaml is invalid)",
            ),
            Behaviour::Flux => {
                if memo.next_check.is_none_or(|t| t <= now) {
                    memo.next_check = Some(now + ctx.times.retry);
                    let netns = node.state().sandboxes.get(&u).map(|s| s.netns.clone());
                    if let Some(ns) = netns {
                        let servers = ctx.dns_endpoints();
                        let result = tokio::task::spawn_blocking(move || lookup(&ns, &servers))
                            .await
                            .unwrap_or_else(|e| Err(e.to_string()));
                        memo.dns_ok = result.is_ok();
                        memo.dns_error = result.err().unwrap_or_default();
                    }
                }
                if memo.dns_ok {
                    Phase::Running
                } else {
                    let msg = format!(
                        "unable to start manager: dial tcp: lookup {FLUX_LOOKUP} on 10.43.0.10:53: {}",
                        memo.dns_error
                    );
                    crash(ctx, node, pod, memo, &msg)
                }
            }
            Behaviour::LonghornCsi => {
                if managers_running {
                    csi.insert(LONGHORN_DRIVER.to_owned());
                    Phase::Running
                } else {
                    crash(
                        ctx,
                        node,
                        pod,
                        memo,
                        "failed to connect to longhorn-backend:9500: connection refused",
                    )
                }
            }
            _ => Phase::Running,
        };
        if phase == Phase::Running {
            memo.crashed = false;
        }
        write_status(ctx, pod, memo, phase, Some(ip));
    }
    publish_csi(ctx, node, &csi);
}

/// Whether the pod finished (`Succeeded` or `Failed`).
fn terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// A `rebootguard` container: started once in the pod's sandbox, then
/// followed until it exits.
async fn real_container(
    ctx: &Arc<Ctx>,
    node: &Arc<Node>,
    pod: &Value,
    memo: &mut Memo,
    ip: Ipv4Addr,
    argv: &[String],
) -> Phase {
    if let Some(e) = &memo.exited {
        return Phase::Exited(e.clone());
    }
    let u = uid(pod);
    if !memo.container_started {
        memo.container_started = true;
        let started = kubesim::time::now();
        match start_container(ctx, node, pod, ip, argv).await {
            Ok(running) => {
                let mut st = node.state();
                if let Some(s) = st.sandboxes.get_mut(&u) {
                    s.container = Some(running);
                }
                memo.started = Some(started);
                return Phase::Running;
            }
            Err(message) => {
                let e = Exited {
                    code: 128,
                    reason: "StartError".into(),
                    message,
                    started: started.clone(),
                    finished: started,
                };
                memo.exited = Some(e.clone());
                return Phase::Exited(e);
            }
        }
    }
    let ended = {
        let mut st = node.state();
        match st.sandboxes.get_mut(&u).and_then(|s| s.container.as_mut()) {
            None => Some((255, String::new(), "ContainerStatusUnknown")),
            Some(r) => match r.child.try_wait() {
                Ok(Some(status)) => {
                    let code = crate::container::exit_code(status);
                    let log = crate::container::log_text(&r.dir);
                    let message = crate::container::message(
                        &r.dir,
                        &r.message_path,
                        r.fallback_to_logs,
                        code,
                        &log,
                    );
                    // What it printed, for `kubectl logs`, as a kubelet keeps it.
                    let container = pod
                        .pointer("/spec/containers/0/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    ctx.api.sim.append_log(
                        (api::namespace(pod), api::name(pod)),
                        container,
                        false,
                        &log,
                    );
                    Some((code, message, if code == 0 { "Completed" } else { "Error" }))
                }
                _ => None,
            },
        }
    };
    let Some((code, message, reason)) = ended else {
        return Phase::Running;
    };
    let e = Exited {
        code,
        reason: reason.into(),
        message,
        started: memo.started.clone().unwrap_or_else(kubesim::time::now),
        finished: kubesim::time::now(),
    };
    memo.exited = Some(e.clone());
    Phase::Exited(e)
}

/// Prepares the pod's files and starts its command in the sandbox.
async fn start_container(
    ctx: &Arc<Ctx>,
    node: &Arc<Node>,
    pod: &Value,
    ip: Ipv4Addr,
    argv: &[String],
) -> Result<crate::container::Running, String> {
    use crate::container::{self, Exec};
    let u = uid(pod);
    let netns = node
        .state()
        .sandboxes
        .get(&u)
        .map(|s| s.netns.clone())
        .ok_or_else(|| "the pod's sandbox is gone".to_owned())?;
    let c = pod
        .pointer("/spec/containers/0")
        .cloned()
        .unwrap_or_default();
    let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
    let message_path =
        text("terminationMessagePath").unwrap_or_else(|| container::DEFAULT_MESSAGE_PATH.into());
    let fallback_to_logs =
        text("terminationMessagePolicy").as_deref() == Some("FallbackToLogsOnError");
    let program = ctx.rebootguard_exe();
    if !program.is_file() {
        return Err(format!(
            "exec: \"{}\": executable file not found (the lab's rebootguard is {})",
            container::PROGRAM,
            program.display()
        ));
    }
    let dir = ctx.dir.join("pods").join(&u);
    let exec = Exec {
        dir: dir.clone(),
        program,
        args: argv.get(1..).unwrap_or_default().to_vec(),
        message_path: message_path.clone(),
        hostname: api::name(pod).to_owned(),
    };
    let mut nameservers = ctx.dns_endpoints();
    if nameservers.is_empty() {
        // The kube-dns Service's address: nothing answers behind it.
        nameservers.push(Ipv4Addr::new(10, 43, 0, 10));
    }
    let started = async {
        container::prepare(&dir, api::namespace(pod), &nameservers, ip, &exec)
            .map_err(|e| format!("failed to prepare the container's files: {e}"))?;
        let mut cmd = container::command(&ctx.exe, &exec)
            .map_err(|e| format!("failed to create the container's log: {e}"))?;
        netns.apply(&mut cmd).map_err(|e| e.to_string())?;
        ctx.spawner
            .spawn(cmd)
            .await
            .map_err(|e| format!("failed to start the container: {e}"))
    };
    match started.await {
        Ok(child) => Ok(container::Running {
            child,
            dir,
            message_path,
            fallback_to_logs,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// Whether the pod ran a sandbox in an earlier boot (or k3s run).
/// Whether the kubelet can unmount the pod's volumes: with
/// `[longhorn] unmount_needs_driver`, a Longhorn volume mounted before
/// (the pod ran) needs the CSI driver registered on the node to be torn
/// down (`UnmountVolume.TearDown failed ... driver name driver.longhorn.io
/// not found in the list of registered CSI drivers`), which after a
/// reboot it is only once the CSI plugin pod runs again.
fn volumes_unmountable(ctx: &Ctx, node: &Node, pod: &Value) -> bool {
    !ctx.scenario.longhorn.unmount_needs_driver
        || ctx.behaviour(pod) != Behaviour::Volume
        || !had_sandbox_before(pod)
        || node.state().csi_drivers.contains(LONGHORN_DRIVER)
}

fn had_sandbox_before(pod: &Value) -> bool {
    pod.pointer("/status/podIP").is_some()
        || pod
            .pointer("/status/containerStatuses/0/state/running")
            .is_some()
}

fn lookup(ns: &Netns, servers: &[Ipv4Addr]) -> Result<(), String> {
    if servers.is_empty() {
        // No endpoints behind the kube-dns Service: the query goes nowhere.
        return Err("read udp: i/o timeout".to_owned());
    }
    ns.run(|| {
        let mut last = String::new();
        for s in servers {
            match crate::dns::lookup(*s, FLUX_LOOKUP, Duration::from_millis(300)) {
                Ok(_) => return Ok(()),
                Err(crate::dns::Error::NxDomain) => return Err("no such host".to_owned()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    })
    .map_err(|e| e.to_string())?
}

fn crash(ctx: &Ctx, node: &Node, pod: &Value, memo: &mut Memo, message: &str) -> Phase {
    if !memo.crashed {
        memo.crashed = true;
        memo.restarts += 1;
        let container = container_name(pod);
        ctx.api.event(
            pod,
            "Warning",
            "BackOff",
            &format!(
                "Back-off restarting failed container {container} in pod {}_{}({})",
                api::name(pod),
                api::namespace(pod),
                uid(pod)
            ),
            source(node),
        );
    }
    Phase::Crash(message.to_owned())
}

fn container_name(pod: &Value) -> String {
    pod.pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .unwrap_or("main")
        .to_owned()
}

fn volume_failure(ctx: &Ctx, node: &Node, pod: &Value) {
    let claim = pod
        .pointer("/spec/volumes/0/persistentVolumeClaim/claimName")
        .and_then(Value::as_str)
        .unwrap_or("data");
    let pv = ctx.volume_of(api::namespace(pod), claim);
    ctx.api.event(
        pod,
        "Warning",
        "FailedAttachVolume",
        &format!("AttachVolume.Attach failed for volume \"{pv}\" : CSINode {} does not contain driver {LONGHORN_DRIVER}", node.name),
        Source { component: "attachdetach-controller", host: None },
    );
    ctx.api.event(
        pod,
        "Warning",
        "FailedMount",
        &format!("MountVolume.MountDevice failed for volume \"{pv}\" : kubernetes.io/csi: attacher.MountDevice failed to create newCsiDriverClient: driver name {LONGHORN_DRIVER} not found in the list of registered CSI drivers"),
        source(node),
    );
}

fn publish_csi(ctx: &Ctx, node: &Node, drivers: &BTreeSet<String>) {
    {
        let mut st = node.state();
        if &st.csi_drivers == drivers
            && ctx
                .api
                .sim
                .get("storage.k8s.io/v1", "CSINode", "", &node.name)
                .is_some()
        {
            return;
        }
        st.csi_drivers = drivers.clone();
    }
    let list: Vec<Value> = drivers
        .iter()
        .map(|d| json!({"name": d, "nodeID": node.name, "topologyKeys": null}))
        .collect();
    let _ = ctx.api.apply(&json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
        "metadata": {"name": node.name},
        "spec": {"drivers": list},
    }));
}

/// Creates the pod's sandbox; on failure the sandbox ID and the error.
async fn add(ctx: &Arc<Ctx>, node: &Arc<Node>, pod: &Value) -> Result<(), (String, String)> {
    let id = crate::lab::random_hex(64);
    let fail = |e: String| (id.clone(), e);
    let boot = node.state().boots;
    let node_ns = node.netns().ok_or_else(|| fail(POWERED_OFF.into()))?;
    let pod_ns = Arc::new(
        Netns::create_named(&netns::unique_name(&ctx.prefix)).map_err(|e| fail(e.to_string()))?,
    );
    let request = Request {
        op: "add".into(),
        root: node.root.clone(),
        node_netns: node_ns.path(),
        pod_netns: pod_ns.path(),
        container_id: id.clone(),
        namespace: api::namespace(pod).to_owned(),
        name: api::name(pod).to_owned(),
    };
    let exe = ctx.exe.clone();
    let result = tokio::task::spawn_blocking(move || sandbox::call(&exe, &request))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let json = match result {
        Ok(json) => json,
        Err(e) => {
            // The runtime's DEL after a failed ADD (bridge may leave a veth).
            let mut del = Request {
                op: "del".into(),
                root: node.root.clone(),
                node_netns: node_ns.path(),
                pod_netns: pod_ns.path(),
                container_id: id.clone(),
                namespace: api::namespace(pod).to_owned(),
                name: api::name(pod).to_owned(),
            };
            del.op = "del".into();
            let exe = ctx.exe.clone();
            let _ = tokio::task::spawn_blocking(move || sandbox::call(&exe, &del)).await;
            return Err(fail(rebootguard_errors::chain(&e)));
        }
    };
    // containerd brings the sandbox's loopback up itself.
    let _ = crate::node::netlink(pod_ns.clone(), |nl| async move { nl.set_up("lo").await }).await;
    let ip = json
        .pointer("/ips/0/address")
        .and_then(Value::as_str)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse::<Ipv4Addr>().ok());
    let process = if ctx.behaviour(pod) == Behaviour::Dns {
        let mut cmd = pod_ns.command(&ctx.exe).map_err(|e| fail(e.to_string()))?;
        cmd.arg("__dns")
            .args(ctx.dns_records())
            .arg("--file")
            .arg(ctx.dns_file());
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        // SAFETY: prctl is async-signal-safe and allocates nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Some(
            cmd.spawn()
                .map_err(|e| fail(format!("failed to start coredns: {e}")))?,
        )
    } else {
        None
    };
    let sandbox = Sandbox {
        id: id.clone(),
        netns: pod_ns,
        ip,
        process,
        container: None,
        pod: format!("{}/{}", api::namespace(pod), api::name(pod)),
    };
    // The node may have gone down while the plugins ran: that sandbox is gone
    // (dropping it stops its process and removes its namespace).
    let mut st = node.state();
    if st.boots != boot || st.netns.is_none() {
        drop(st);
        drop(sandbox);
        return Err(fail(POWERED_OFF.into()));
    }
    st.sandboxes.insert(uid(pod), sandbox);
    Ok(())
}

/// Stops a pod's sandbox: CNI DEL, then its namespace goes.
async fn teardown(ctx: &Arc<Ctx>, node: &Arc<Node>, uid: &str) {
    let Some(sandbox) = node.state().sandboxes.remove(uid) else {
        return;
    };
    let Some(node_ns) = node.netns() else { return };
    let (ns, name) = sandbox
        .pod
        .split_once('/')
        .unwrap_or(("default", &sandbox.pod));
    let request = Request {
        op: "del".into(),
        root: node.root.clone(),
        node_netns: node_ns.path(),
        pod_netns: sandbox.netns.path(),
        container_id: sandbox.id.clone(),
        namespace: ns.to_owned(),
        name: name.to_owned(),
    };
    let exe = ctx.exe.clone();
    let _ = tokio::task::spawn_blocking(move || sandbox::call(&exe, &request)).await;
    drop(sandbox);
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Creating,
    Running,
    Crash(String),
    /// A real container ended (restartPolicy Never: for good).
    Exited(Exited),
}

fn write_status(ctx: &Ctx, pod: &Value, memo: &mut Memo, phase: Phase, ip: Option<Ipv4Addr>) {
    let container = container_name(pod);
    let image = pod
        .pointer("/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or("lab/app:1")
        .to_owned();
    let (state, ready, sandbox_ready) = match &phase {
        Phase::Creating => (
            json!({"waiting": {"reason": "ContainerCreating"}}),
            false,
            false,
        ),
        Phase::Running => {
            let started = memo.started.get_or_insert_with(kubesim::time::now).clone();
            (json!({"running": {"startedAt": started}}), true, true)
        }
        Phase::Crash(_) => (
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 10s restarting failed container={container} pod={}_{}({})", api::name(pod), api::namespace(pod), uid(pod))}}),
            false,
            true,
        ),
        Phase::Exited(e) => (
            json!({"terminated": {"exitCode": e.code, "reason": e.reason, "message": e.message,
                "startedAt": e.started, "finishedAt": e.finished,
                "containerID": format!("containerd://{}", uid(pod).replace('-', ""))}}),
            false,
            true,
        ),
    };
    if phase != Phase::Running {
        memo.started = None;
    }
    let t = |b: bool| if b { "True" } else { "False" };
    let mut status = json!({
        "phase": match &phase {
            Phase::Creating => "Pending",
            Phase::Exited(e) if e.code == 0 => "Succeeded",
            Phase::Exited(_) => "Failed",
            _ => "Running",
        },
        "hostIP": ctx.node(pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default()).map(|n| n.public_ip.to_string()),
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": t(sandbox_ready)},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": t(ready), "reason": if ready { Value::Null } else { "ContainersNotReady".into() }},
            {"type": "ContainersReady", "status": t(ready), "reason": if ready { Value::Null } else { "ContainersNotReady".into() }},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [{
            "name": container, "image": image, "imageID": "", "ready": ready, "started": ready,
            "restartCount": memo.restarts, "state": state,
            "containerID": if ready { format!("containerd://{}", uid(pod).replace('-', "")) } else { String::new() },
        }],
        "qosClass": "BestEffort",
    });
    if let Phase::Crash(m) = &phase {
        status["containerStatuses"][0]["lastState"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error", "message": m}});
    }
    match ip {
        Some(ip) => {
            status["podIP"] = ip.to_string().into();
            status["podIPs"] = json!([{"ip": ip.to_string()}]);
        }
        None => {
            status["podIP"] = Value::Null;
            status["podIPs"] = Value::Null;
            // Containers of the previous sandbox died with the node.
            if had_sandbox_before(pod) {
                status["containerStatuses"][0]["lastState"] =
                    json!({"terminated": {"exitCode": 255, "reason": "Unknown"}});
            }
        }
    }
    // Others write pod status too (the node controller's Ready=False):
    // rewrite whenever the stored status is not what the kubelet says.
    let stored_matches = pod.pointer("/status/phase") == status.get("phase")
        && api::condition(pod, "Ready") == Some(t(ready))
        && pod.pointer("/status/podIP").cloned().unwrap_or(Value::Null) == status["podIP"];
    if stored_matches && memo.written.as_ref() == Some(&status) {
        return;
    }
    let mut body = status.clone();
    body["startTime"] = pod
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or_else(|| kubesim::time::now().into());
    if pod.pointer("/status/reason").is_some() {
        body["reason"] = Value::Null;
        body["message"] = Value::Null;
    }
    if ctx
        .api
        .merge_status(
            "v1",
            "Pod",
            api::namespace(pod),
            api::name(pod),
            &json!({"status": body}),
        )
        .is_ok()
    {
        memo.written = Some(status);
    }
}
