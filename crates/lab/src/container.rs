//! Containers that really run: a pod whose container command is
//! `rebootguard ...` (what `rebootguard verify` creates) runs the lab's
//! `rebootguard` binary as a process inside the pod's network namespace,
//! as the container runtime would, instead of being emulated.
//!
//! What the runtime gives a container and the process needs is made per
//! pod under `<lab dir>/pods/<uid>/`: `/etc/resolv.conf` as the kubelet
//! writes it for `dnsPolicy: ClusterFirst` (the lab's DNS, the pod's search
//! domains, `ndots:5`), `/etc/hosts`, an `/etc/nsswitch.conf` standing for
//! the image's (files, then DNS), a minimal `/dev` (null, zero, full,
//! random, urandom) holding the termination-message file, and the
//! container's log. A helper (this binary's hidden `__exec`, started in the
//! pod's namespace from the lab's spawner thread, so it dies with the lab)
//! enters a private mount namespace, binds those over the host's paths and
//! execs the command: the host's files and mounts are never changed.
//!
//! When the process exits, the kubelet reads the termination message (at
//! most 4096 bytes; with `FallbackToLogsOnError` and an empty file, the
//! log's tail) and reports the container terminated.

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The program name a container command must have to run for real.
pub const PROGRAM: &str = "rebootguard";
/// The kubelet's default termination message path.
pub const DEFAULT_MESSAGE_PATH: &str = "/dev/termination-log";
/// The kubelet keeps this much of a termination message.
pub const MESSAGE_LIMIT: usize = 4096;
/// ... and this much of a log tail (and at most 80 lines).
pub const LOG_LIMIT: usize = 2048;
/// Devices a container's `/dev` offers.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// The command line (`command` + `args`) of the pod's first container when
/// it runs `rebootguard`; `None` for the emulated pods.
pub fn argv(pod: &Value) -> Option<Vec<String>> {
    let c = pod.pointer("/spec/containers/0")?;
    let strings = |k: &str| -> Vec<String> {
        c.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut argv = strings("command");
    argv.extend(strings("args"));
    let program = Path::new(argv.first()?).file_name()?;
    (program == PROGRAM).then_some(argv)
}

/// `/etc/resolv.conf` for a `ClusterFirst` pod in `namespace`; the first
/// three `nameservers` (glibc reads no more).
pub fn resolv_conf(namespace: &str, nameservers: &[std::net::Ipv4Addr]) -> String {
    let mut out = format!("search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n");
    for ns in nameservers.iter().take(3) {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    out.push_str("options ndots:5\n");
    out
}

/// `/etc/hosts` as the kubelet writes it.
pub fn hosts(ip: std::net::Ipv4Addr, hostname: &str) -> String {
    format!(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{hostname}\n"
    )
}

/// What the helper does, as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exec {
    /// The pod's directory.
    pub dir: PathBuf,
    /// The program to exec (the lab's `rebootguard`).
    pub program: PathBuf,
    /// Its arguments (after the command's first word).
    pub args: Vec<String>,
    /// The container's terminationMessagePath.
    pub message_path: String,
    /// The pod's hostname.
    pub hostname: String,
}

/// Where the termination message lies in the pod's directory.
pub fn message_file(dir: &Path, message_path: &str) -> PathBuf {
    match message_path.strip_prefix("/dev/") {
        Some(rest) => dir.join("dev").join(rest),
        None => dir.join("termination-log"),
    }
}

/// Writes the pod's directory.
pub fn prepare(
    dir: &Path,
    namespace: &str,
    nameservers: &[std::net::Ipv4Addr],
    ip: std::net::Ipv4Addr,
    exec: &Exec,
) -> std::io::Result<()> {
    let dev = dir.join("dev");
    std::fs::create_dir_all(&dev)?;
    for d in DEVICES {
        std::fs::write(dev.join(d), "")?;
    }
    let message = message_file(dir, &exec.message_path);
    if let Some(parent) = message.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&message, "")?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(namespace, nameservers))?;
    std::fs::write(dir.join("hosts"), hosts(ip, &exec.hostname))?;
    std::fs::write(dir.join("nsswitch.conf"), "hosts: files dns\n")?;
    Ok(())
}

/// The helper's command: `<lab exe> __exec <json>`, output to the log.
pub fn command(lab_exe: &Path, exec: &Exec) -> std::io::Result<Command> {
    let log = std::fs::File::create(exec.dir.join("log"))?;
    let mut cmd = Command::new(lab_exe);
    cmd.arg("__exec")
        .arg(serde_json::to_string(exec).map_err(std::io::Error::other)?)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(cmd)
}

/// The helper: private mount namespace, the pod's files over the host's,
/// then exec. Returns only on failure (exit 127, the reason on stderr).
pub fn helper_main(json: &str) -> ExitCode {
    let e = match serde_json::from_str::<Exec>(json) {
        Ok(exec) => enter(&exec).map(|()| run(&exec)),
        Err(e) => Err(format!("bad exec request: {e}")),
    };
    match e {
        Ok(err) => eprintln!("failed to start the container: {err}"),
        Err(err) => eprintln!("failed to set up the container: {err}"),
    }
    ExitCode::from(127)
}

fn bind(source: &Path, target: &Path, flags: MsFlags) -> Result<(), String> {
    // /etc/resolv.conf may be a symlink: cover what it points at.
    let target = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    mount(
        Some(source),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | flags,
        None::<&str>,
    )
    .map_err(|e| format!("bind {} on {}: {e}", source.display(), target.display()))
}

fn enter(exec: &Exec) -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare the mount namespace: {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make the mounts private: {e}"))?;
    let dir = &exec.dir;
    for d in DEVICES {
        bind(
            &Path::new("/dev").join(d),
            &dir.join("dev").join(d),
            MsFlags::empty(),
        )?;
    }
    bind(&dir.join("dev"), Path::new("/dev"), MsFlags::MS_REC)?;
    for f in ["resolv.conf", "hosts", "nsswitch.conf"] {
        bind(&dir.join(f), &Path::new("/etc").join(f), MsFlags::empty())?;
    }
    if !exec.message_path.starts_with("/dev/") {
        bind(
            &message_file(dir, &exec.message_path),
            Path::new(&exec.message_path),
            MsFlags::empty(),
        )?;
    }
    Ok(())
}

/// Execs the program; returns the error when exec failed.
fn run(exec: &Exec) -> String {
    let e = Command::new(&exec.program)
        .args(&exec.args)
        .current_dir("/")
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOSTNAME", &exec.hostname)
        .exec();
    format!("exec {}: {e}", exec.program.display())
}

/// The exit code the kubelet reports (128 + signal when killed).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

/// The termination message: the file (at most [`MESSAGE_LIMIT`] bytes);
/// when it is empty, the process failed and the policy says so, the last
/// 80 lines (at most [`LOG_LIMIT`] bytes) of `log`, its output
/// ([`log_text`]).
pub fn message(
    dir: &Path,
    message_path: &str,
    fallback_to_logs: bool,
    exit_code: i32,
    log: &str,
) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(message_file(dir, message_path)) {
        let _ = f.take(MESSAGE_LIMIT as u64).read_to_end(&mut buf);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    if !text.trim().is_empty() || !fallback_to_logs || exit_code == 0 {
        return text;
    }
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    let cut = tail.len().saturating_sub(LOG_LIMIT);
    let mut start = cut;
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    tail[start..].to_owned()
}

/// The most of a container's output kept for `kubectl logs`.
const LOG_KEEP: u64 = 1 << 20;

/// The container's output (stdout and stderr, as `kubectl logs` shows it),
/// its last [`LOG_KEEP`] bytes.
pub fn log_text(dir: &Path) -> String {
    use std::io::{Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(dir.join("log")) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_KEEP)));
    let mut buf = Vec::new();
    let _ = file.take(LOG_KEEP).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A running container: the process, its directory and what the kubelet
/// needs to report its end.
#[derive(Debug)]
pub struct Running {
    /// The process (the helper, replaced by the command).
    pub child: Child,
    /// The pod's directory.
    pub dir: PathBuf,
    /// The container's terminationMessagePath.
    pub message_path: String,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    pub fallback_to_logs: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rebootguard_commands_run_for_real() {
        let pod = |c: Value| json!({"spec": {"containers": [c]}});
        assert_eq!(
            argv(&pod(
                json!({"command": ["rebootguard"], "args": ["verify", "probe"]})
            )),
            Some(vec!["rebootguard".into(), "verify".into(), "probe".into()])
        );
        assert!(
            argv(&pod(
                json!({"command": ["/usr/local/bin/rebootguard", "x"]})
            ))
            .is_some()
        );
        assert_eq!(argv(&pod(json!({"command": ["coredns"]}))), None);
        assert_eq!(argv(&pod(json!({"image": "x"}))), None);
    }

    #[test]
    fn resolv_conf_is_the_kubelets_for_cluster_first() {
        let ns = [
            "10.42.0.3".parse().unwrap(),
            "10.42.1.3".parse().unwrap(),
            "10.42.2.3".parse().unwrap(),
            "10.42.3.3".parse().unwrap(),
        ];
        assert_eq!(
            resolv_conf("rebootguard", &ns),
            "search rebootguard.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver 10.42.0.3\nnameserver 10.42.1.3\nnameserver 10.42.2.3\noptions ndots:5\n"
        );
        assert!(hosts("10.42.0.9".parse().unwrap(), "p").ends_with("10.42.0.9\tp\n"));
    }

    #[test]
    fn the_message_comes_from_the_file_else_the_logs_tail_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("dev")).unwrap();
        std::fs::write(d.join("dev/termination-log"), "x".repeat(5000)).unwrap();
        assert_eq!(
            message(d, DEFAULT_MESSAGE_PATH, true, 1, &log_text(d)).len(),
            MESSAGE_LIMIT
        );
        std::fs::write(d.join("dev/termination-log"), "").unwrap();
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(d.join("log"), log).unwrap();
        let tail = message(d, DEFAULT_MESSAGE_PATH, true, 1, &log_text(d));
        assert!(
            tail.starts_with("line 20\n") && tail.ends_with("line 99"),
            "{tail}"
        );
        assert_eq!(message(d, DEFAULT_MESSAGE_PATH, false, 1, &log_text(d)), "");
        assert_eq!(message(d, DEFAULT_MESSAGE_PATH, true, 0, &log_text(d)), "");
        assert_eq!(message_file(d, "/tmp/msg"), d.join("termination-log"));
    }
}
