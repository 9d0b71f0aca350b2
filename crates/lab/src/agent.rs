//! The real `rebootguard agent` on every lab node (`--agent`), run as its
//! systemd unit would run it: in the node's network namespace from boot
//! (after the network and, when protected, `node restore`), alongside k3s,
//! restarted with a short backoff whenever it exits while the node is
//! powered, killed at power-off and when the lab ends.
//!
//! Key design decision: agents are spawned from one long-lived thread of
//! the lab ([`Spawner`]) with `PR_SET_PDEATHSIG`, which the kernel ties to
//! the spawning *thread*: a tokio worker or blocking thread could exit and
//! take a healthy agent with it, a dedicated thread lives exactly as long
//! as the lab, and a `kill -9`ed lab leaves no agent behind.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::lab::Ctx;
use crate::node::{self, Node};

/// The agent's log, under the node's root (so `<lab dir>/nodes/<n>/agent.log`).
pub const LOG: &str = "agent.log";
/// The running agent's pid, under the node's root (for `sweep`).
pub const PID: &str = "agent.pid";
/// rebootguard's config file, under the node's root.
pub const CONFIG: &str = "etc/rebootguard/config.toml";

/// First restart delay after an exit; doubled on every quick exit.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A run this long resets the backoff.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// How often the supervisor looks for an exit.
const POLL: Duration = Duration::from_millis(50);

/// The restart delays of the supervisor, as a small state machine: each
/// exit after a short run doubles the next delay (up to [`BACKOFF_MAX`]),
/// a run of [`BACKOFF_RESET`] or more starts again from [`BACKOFF_MIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The delay before the next start, after a run of `ran` (or a start
    /// that failed: `Duration::ZERO`).
    pub fn after(&mut self, ran: Duration) -> Duration {
        if ran >= BACKOFF_RESET {
            self.next = BACKOFF_MIN;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }
}

/// The agent's real-world time settings (docs/agent.md), scaled by the
/// scenario's time scale into the config the lab writes.
pub const TIMES: [(&str, Duration); 8] = [
    ("restart-grace", Duration::from_secs(30)),
    ("restart-settle", Duration::from_secs(60)),
    ("heartbeat", Duration::from_secs(30)),
    ("check-interval", Duration::from_secs(60)),
    ("probe-interval", Duration::from_secs(300)),
    ("lease-ttl", Duration::from_secs(120)),
    ("alert-after", Duration::from_secs(10)),
    ("alert-interval", Duration::from_secs(900)),
];

/// The shortest duration the lab writes into an agent's config.
pub const MIN_DURATION: Duration = Duration::from_millis(100);

/// A duration as the config takes it: `250ms`, `1.5s`, `15s`; never below
/// [`MIN_DURATION`], rounded to the millisecond.
pub fn duration_text(d: Duration) -> String {
    let ms = d.max(MIN_DURATION).as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, frac.trim_end_matches('0'))
    }
}

/// What the lab writes in a node's `etc/rebootguard/config.toml`.
#[derive(Debug, Clone)]
pub struct Config<'a> {
    /// The node's name.
    pub node: &'a str,
    /// The lab executable (runs `k3s-restart`).
    pub exe: &'a Path,
    /// Where lab directories live (`--dir`).
    pub base_dir: &'a Path,
    /// This lab's id (`--lab`), in case several labs run.
    pub lab: &'a str,
    /// Real-world seconds per lab second.
    pub time_scale: f64,
}

impl Config<'_> {
    /// `rebootguard-lab <subcommand> --dir D --lab L <node>`, as a TOML argv.
    fn lab_command(&self, subcommand: &str) -> toml::Value {
        let argv = [
            self.exe.to_string_lossy().into_owned(),
            subcommand.to_owned(),
            "--dir".into(),
            self.base_dir.to_string_lossy().into_owned(),
            "--lab".into(),
            self.lab.to_owned(),
            self.node.to_owned(),
        ];
        toml::Value::Array(argv.into_iter().map(toml::Value::String).collect())
    }

    /// The TOML text: `node-name`, and the `[agent]` table with the taint
    /// on, the k3s restart and reboot commands (argvs that ask this lab to
    /// restart the node's k3s, or to power-cycle the node) and the time
    /// settings scaled.
    pub fn render(&self) -> String {
        let mut agent = toml::Table::new();
        agent.insert("taint".into(), true.into());
        // A k3s restart, and a reboot asked through the Node, are asked of
        // this lab for this node: `k3s-restart` and `node-reboot`.
        agent.insert("restart-command".into(), self.lab_command("k3s-restart"));
        agent.insert("reboot-command".into(), self.lab_command("node-reboot"));
        for (key, real) in TIMES {
            let scaled = real.div_f64(self.time_scale.max(1.0));
            agent.insert(key.into(), duration_text(scaled).into());
        }
        agent.insert("lease-namespace".into(), "kube-system".into());
        let mut top = toml::Table::new();
        top.insert("node-name".into(), self.node.into());
        top.insert("agent".into(), toml::Value::Table(agent));
        format!(
            "# Written by rebootguard-lab for this lab's node {}.\n{}",
            self.node,
            toml::to_string(&top).unwrap_or_default()
        )
    }
}

/// A thread that spawns processes which die with the lab
/// (`PR_SET_PDEATHSIG`, tied to the spawning thread).
#[derive(Debug)]
pub struct Spawner {
    tx: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

type Job = (
    Command,
    tokio::sync::oneshot::Sender<std::io::Result<Child>>,
);

impl Spawner {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Spawner> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("lab-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })?;
        Ok(Spawner {
            tx: Mutex::new(Some(tx)),
        })
    }

    /// Spawns `command` (made to die when the spawner thread ends) from the
    /// spawner thread.
    pub async fn spawn(&self, mut command: Command) -> std::io::Result<Child> {
        let parent = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe and allocate
        // nothing; the error is built only on the failure path, where the
        // child is about to exit anyway.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The lab died before prctl took effect: do not outlive it.
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    return Err(std::io::Error::other("the lab is gone"));
                }
                Ok(())
            });
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|tx| tx.send((command, reply)).is_ok());
        if sent != Some(true) {
            return Err(std::io::Error::other("the lab's spawner has stopped"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the lab's spawner has stopped")))
    }

    /// Ends the thread: everything it spawned that still runs gets SIGKILL.
    pub fn stop(&self) {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

/// One node's agent supervisor for one boot.
#[derive(Debug, Default)]
pub struct Supervisor {
    stopped: AtomicBool,
    child: Mutex<Option<Child>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Supervisor {
    /// Kills the agent (and its process group) and stops restarting it;
    /// returns once it is gone.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        if let Some(t) = lock(&self.task).take() {
            t.abort();
        }
        let child = lock(&self.child).take();
        if let Some(mut c) = child {
            kill_group(c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The running agent's pid, if one runs.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.child).as_ref().map(Child::id)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// SIGKILL to the process group led by `pid` (the agent and whatever it
/// started, such as a `k3s-restart` in flight).
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        // SAFETY: kill(2) on a process group this lab created.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

/// The agent's command line for `node`: `rebootguard agent --root <root>
/// --node-name <n> --kubeconfig <root>/etc/rancher/k3s/k3s.yaml` (or the
/// test stand-in of [`crate::Options::agent_command`] with the same
/// arguments after its own).
pub fn argv(ctx: &Ctx, node: &Node) -> Vec<OsString> {
    let mut argv: Vec<OsString> = match &ctx.options.agent_command {
        Some(cmd) if !cmd.is_empty() => cmd.clone(),
        _ => vec![ctx.rebootguard_exe().into_os_string()],
    };
    argv.extend([
        OsString::from("agent"),
        "--root".into(),
        node.root.clone().into_os_string(),
        "--node-name".into(),
        node.name.clone().into(),
        "--kubeconfig".into(),
        node.path(node::paths::KUBECONFIG).into_os_string(),
    ]);
    argv
}

fn command(ctx: &Ctx, node: &Node) -> std::io::Result<Command> {
    let ns = node
        .netns()
        .ok_or_else(|| std::io::Error::other("the node is powered off"))?;
    let argv = argv(ctx, node);
    let mut cmd = ns
        .command(&argv[0])
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    cmd.args(&argv[1..]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REBOOTGUARD_") {
            cmd.env_remove(key);
        }
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node.path(LOG))?;
    cmd.env_remove("KUBECONFIG")
        .env("REBOOTGUARD_LOG", "info")
        .current_dir(&node.root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(cmd)
}

fn log_line(node: &Node, text: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node.path(LOG))
    {
        let _ = writeln!(f, "[rebootguard-lab {}] {text}", kubesim::time::now());
    }
}

/// Starts supervising the agent of a node that just booted.
pub fn start(ctx: &Arc<Ctx>, node: &Arc<Node>) -> Arc<Supervisor> {
    let sup = Arc::new(Supervisor::default());
    let task = supervise(ctx.clone(), node.clone(), Arc::downgrade(&sup));
    let task = crate::tasks::spawn(
        ctx,
        Some(&node.name),
        "agent supervisor",
        crate::tasks::Lifetime::MayEnd,
        task,
    );
    *lock(&sup.task) = Some(task);
    if sup.stopped.load(Ordering::Acquire) {
        sup.stop();
    }
    sup
}

async fn supervise(ctx: Arc<Ctx>, node: Arc<Node>, sup: std::sync::Weak<Supervisor>) {
    let mut backoff = Backoff::default();
    let mut last_exit: Option<String> = None;
    let mut last_error: Option<String> = None;
    let mut starts = 0u64;
    loop {
        let Some(s) = sup.upgrade() else { return };
        let started = Instant::now();
        let spawned = match command(&ctx, &node) {
            Ok(cmd) => ctx.spawner.spawn(cmd).await,
            Err(e) => Err(e),
        };
        match spawned {
            Ok(child) => {
                let pid = child.id();
                {
                    let mut slot = lock(&s.child);
                    if s.stopped.load(Ordering::Acquire) {
                        drop(slot);
                        let mut child = child;
                        kill_group(pid);
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                    *slot = Some(child);
                }
                starts += 1;
                let _ = std::fs::write(node.path(PID), format!("{pid}\n"));
                log_line(
                    &node,
                    &format!("started the agent (pid {pid}, start {starts})"),
                );
                if starts == 1 {
                    ctx.timeline.note(
                        &ctx,
                        Some(&node.name),
                        "agent",
                        &format!("rebootguard agent started (pid {pid})"),
                    );
                }
            }
            Err(e) => {
                let text = format!("failed to start rebootguard agent: {e}");
                if last_error.as_ref() != Some(&text) {
                    ctx.timeline.note(&ctx, Some(&node.name), "agent", &text);
                    last_error = Some(text.clone());
                }
                log_line(&node, &text);
                drop(s);
                tokio::time::sleep(backoff.after(Duration::ZERO)).await;
                continue;
            }
        }
        drop(s);
        // Wait for it to exit (or for power-off to take it).
        let status = loop {
            tokio::time::sleep(POLL).await;
            let Some(s) = sup.upgrade() else { return };
            let mut slot = lock(&s.child);
            let Some(child) = slot.as_mut() else { return };
            match child.try_wait() {
                Ok(Some(status)) => {
                    slot.take();
                    break status.to_string();
                }
                Ok(None) => {}
                Err(e) => {
                    slot.take();
                    break format!("lost track of it: {e}");
                }
            }
        };
        let _ = std::fs::remove_file(node.path(PID));
        let ran = started.elapsed();
        let delay = backoff.after(ran);
        log_line(
            &node,
            &format!(
                "the agent exited ({status}) after {:.1}s; restarting in {}",
                ran.as_secs_f64(),
                duration_text(delay)
            ),
        );
        if last_exit.as_ref() != Some(&status) {
            ctx.timeline.note(
                &ctx,
                Some(&node.name),
                "agent",
                &format!("rebootguard agent exited ({status}); restarting it (logged in {LOG})"),
            );
            last_exit = Some(status);
        }
        tokio::time::sleep(delay).await;
    }
}

/// Kills agents a killed lab left running (normally `PR_SET_PDEATHSIG` has
/// already): the pid in each `nodes/*/agent.pid` of the dead lab's
/// directory `dir`, when that process still runs with an argument inside
/// `dir`. Returns what was killed.
pub fn sweep(dir: &Path) -> Vec<String> {
    let mut killed = Vec::new();
    let Ok(nodes) = std::fs::read_dir(dir.join("nodes")) else {
        return killed;
    };
    for n in nodes.flatten() {
        let Some(pid) = std::fs::read_to_string(n.path().join(PID))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = cmdline
            .split(|b| *b == 0)
            .any(|arg| Path::new(&*String::from_utf8_lossy(arg)).starts_with(dir));
        if ours {
            kill_group(pid);
            if let Ok(p) = i32::try_from(pid) {
                // SAFETY: kill(2) on a process whose arguments name the dead lab's directory.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            killed.push(format!("agent pid {pid} of {}", dir.display()));
        }
    }
    killed
}

/// `<root>/agent.log` of `node`.
pub fn log_path(node: &Node) -> PathBuf {
    node.path(LOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_on_quick_exits_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(50);
        let delays: Vec<u128> = (0..8).map(|_| b.after(quick).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(b.after(BACKOFF_RESET), BACKOFF_MIN, "a long run resets it");
        assert_eq!(b.after(quick), Duration::from_millis(400));
        assert_eq!(
            b.after(Duration::ZERO),
            Duration::from_millis(800),
            "failed starts back off too"
        );
    }

    #[test]
    fn durations_are_written_as_the_config_reads_them() {
        assert_eq!(duration_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration_text(Duration::from_millis(250)), "250ms");
        assert_eq!(duration_text(Duration::from_secs(15)), "15s");
        assert_eq!(duration_text(Duration::from_millis(1250)), "1.25s");
        assert_eq!(duration_text(Duration::from_millis(20)), "100ms", "floor");
        assert_eq!(duration_text(Duration::from_micros(1_234_567)), "1.234s");
    }

    #[test]
    fn config_scales_the_agents_times_and_asks_this_lab_for_restarts() {
        let text = Config {
            node: "boromir",
            exe: Path::new("/opt/lab/rebootguard-lab"),
            base_dir: Path::new("/tmp/labs"),
            lab: "rglab-42-0",
            time_scale: 20.0,
        }
        .render();
        let v: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(v["node-name"].as_str(), Some("boromir"));
        let a = v["agent"].as_table().unwrap();
        assert_eq!(a["taint"].as_bool(), Some(true));
        let argv: Vec<&str> = a["restart-command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(
            argv,
            [
                "/opt/lab/rebootguard-lab",
                "k3s-restart",
                "--dir",
                "/tmp/labs",
                "--lab",
                "rglab-42-0",
                "boromir"
            ]
        );
        let reboot: Vec<&str> = a["reboot-command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(reboot[1], "node-reboot");
        assert_eq!(reboot[2..], argv[2..], "the same lab and node");
        let get = |k: &str| a[k].as_str().unwrap().to_owned();
        assert_eq!(
            [
                get("restart-grace"),
                get("restart-settle"),
                get("heartbeat"),
                get("check-interval"),
                get("probe-interval"),
                get("lease-ttl"),
                get("alert-after"),
                get("alert-interval")
            ],
            ["1.5s", "3s", "1.5s", "3s", "15s", "6s", "500ms", "45s"]
        );
        assert_eq!(get("lease-namespace"), "kube-system");
        // Unscaled (time scale 1): the real-world defaults.
        let real = Config {
            time_scale: 1.0,
            ..Config {
                node: "n",
                exe: Path::new("/x"),
                base_dir: Path::new("/y"),
                lab: "l",
                time_scale: 1.0,
            }
        }
        .render();
        assert!(real.contains("probe-interval = \"300s\""), "{real}");
    }

    #[tokio::test]
    async fn spawned_processes_die_with_the_spawner_thread() {
        let spawner = Spawner::start().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let mut child = spawner.spawn(cmd).await.unwrap();
        assert!(child.try_wait().unwrap().is_none(), "sleep runs");
        spawner.stop();
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "sleep outlived the lab"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(
            spawner.spawn(Command::new("true")).await.is_err(),
            "a stopped spawner refuses"
        );
    }
}
