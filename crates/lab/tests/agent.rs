//! The agent supervisor (`--agent`), proven with a stand-in agent (a shell
//! one-liner through `Options::agent_command`): it starts in the node's
//! namespace with the agent's command line and environment, is restarted
//! with a backoff when it exits (no busy loop, the exit noted once), is
//! killed at power-off and started again at boot, and nothing of it is left
//! when the lab ends. The config file the agent reads is checked with the
//! real `rebootguard node` settings parser. Needs root and Debian's CNI
//! plugins; prints why it skips otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rebootguard_lab::{Lab, Options, Scenario};

mod common;
use common::ready;

const EXE: &str = env!("CARGO_BIN_EXE_rebootguard-lab");

/// Prints where it runs and with what, then sleeps, or exits 3 at once
/// while `<root>/crash` exists. `$3` is the node root (`agent --root ROOT`).
const STAND_IN: &str = r#"echo "start pid=$$ ns=$(readlink /proc/self/ns/net) log=$REBOOTGUARD_LOG kubeconfig=${KUBECONFIG:-unset} args=$*"; if [ -e "$3/crash" ]; then exit 3; fi; exec sleep 600"#;

fn log(root: &Path) -> String {
    std::fs::read_to_string(root.join("agent.log")).unwrap_or_default()
}

fn starts(root: &Path) -> Vec<String> {
    log(root)
        .lines()
        .filter(|l| l.starts_with("start "))
        .map(str::to_owned)
        .collect()
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_default()
}

/// Running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn pid_file(root: &Path) -> Option<u32> {
    std::fs::read_to_string(root.join("agent.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn netns_inode(lab: &Lab, node: &str) -> String {
    let ns = lab
        .node(node)
        .expect("a lab node")
        .netns()
        .expect("powered");
    format!("net:[{}]", ns.id().expect("its identity").1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn agents_start_in_their_node_restart_on_exit_die_at_power_off_and_leave_nothing() {
    if !ready("agents_start_in_their_node_restart_on_exit_die_at_power_off_and_leave_nothing") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let mut s = Scenario::plain(2);
    s.time_scale = 20.0;
    let mut o = Options::new(PathBuf::from(EXE));
    o.base_dir = base.path().to_path_buf();
    o.agent = true;
    o.agent_command = Some(vec![
        "sh".into(),
        "-c".into(),
        STAND_IN.into(),
        "stand-in".into(),
    ]);
    let lab = Lab::up(s, o).await.expect("lab up");
    let boromir = lab.node("boromir").unwrap();
    let root = boromir.root.clone();

    // The config the agent reads: the lab's restart command and scaled times,
    // accepted by rebootguard's own settings parser.
    let config = root.join("etc/rebootguard/config.toml");
    let file = rebootguard_node::settings::File::load(&config).expect("rebootguard accepts it");
    assert_eq!(file.node_name.as_deref(), Some("boromir"));
    let agent = file.agent.expect("[agent]");
    assert_eq!(agent["taint"].as_bool(), Some(true));
    assert_eq!(agent["restart-grace"].as_str(), Some("1.5s"));
    let argv: Vec<&str> = agent["restart-command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let base_dir = base.path().to_string_lossy();
    assert_eq!(
        argv,
        [
            EXE,
            "k3s-restart",
            "--dir",
            base_dir.as_ref(),
            "--lab",
            lab.ctx.id.as_str(),
            "boromir"
        ]
    );

    // Started in each node's namespace with the agent's command line.
    for name in ["boromir", "theoden"] {
        let r = lab.node(name).unwrap().root.clone();
        until("the agent's first start", Duration::from_secs(5), || {
            !starts(&r).is_empty() && pid_file(&r).is_some()
        })
        .await;
        let line = starts(&r).remove(0);
        assert_eq!(field(&line, "ns"), netns_inode(&lab, name), "{line}");
        assert_eq!(field(&line, "log"), "info");
        assert_eq!(
            field(&line, "kubeconfig"),
            "unset",
            "KUBECONFIG is not passed on"
        );
        let args = line.split_once("args=").unwrap().1;
        assert_eq!(
            args,
            format!(
                "agent --root {0} --node-name {name} --kubeconfig {0}/etc/rancher/k3s/k3s.yaml",
                r.display()
            )
        );
    }
    assert!(
        lab.ctx
            .timeline
            .entries()
            .iter()
            .any(|e| e.kind == "agent" && e.text.starts_with("rebootguard agent started (pid ")),
    );

    // Restarted when it exits, with a backoff (no busy loop), the exit noted once.
    let first = pid_file(&root).unwrap();
    std::fs::write(root.join("crash"), "").unwrap();
    // SAFETY: kill(2) on the stand-in this test's lab started.
    unsafe { libc::kill(i32::try_from(first).unwrap(), libc::SIGTERM) };
    until("crash loop", Duration::from_secs(5), || {
        starts(&root).len() >= 3
    })
    .await;
    let t = Instant::now();
    let before = starts(&root).len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = starts(&root).len() - before;
    assert!(
        (1..=6).contains(&during),
        "{during} starts in {:?}: not a backoff",
        t.elapsed()
    );
    let exits: Vec<String> = lab
        .ctx
        .timeline
        .entries()
        .into_iter()
        .filter(|e| e.node.as_deref() == Some("boromir") && e.kind == "agent")
        .map(|e| e.text)
        .filter(|t| t.contains("exited"))
        .collect();
    assert_eq!(
        exits
            .iter()
            .filter(|t| t.contains("exit status: 3"))
            .count(),
        1,
        "{exits:?}"
    );
    assert!(log(&root).contains("the agent exited (exit status: 3)"));
    std::fs::remove_file(root.join("crash")).unwrap();
    until("a healthy agent again", Duration::from_secs(10), || {
        pid_file(&root).is_some_and(alive)
    })
    .await;
    let healthy = pid_file(&root).unwrap();

    // Killed at power-off, started again at boot in the new namespace.
    let lab = std::sync::Arc::new(lab);
    let reboot = {
        let l = lab.clone();
        tokio::spawn(async move {
            l.reboot(&["boromir".to_owned()], Duration::from_millis(700))
                .await
        })
    };
    until("power-off", Duration::from_secs(5), || {
        boromir.netns().is_none()
    })
    .await;
    assert!(!alive(healthy), "the agent outlived its node's power");
    reboot.await.unwrap().unwrap();
    until("the agent of the new boot", Duration::from_secs(5), || {
        pid_file(&root).is_some_and(|p| p != healthy && alive(p))
    })
    .await;
    let new = pid_file(&root).unwrap().to_string();
    until("its start line", Duration::from_secs(5), || {
        starts(&root).iter().any(|l| field(l, "pid") == new)
    })
    .await;
    let line = starts(&root).pop().unwrap();
    assert_eq!(field(&line, "ns"), netns_inode(&lab, "boromir"), "{line}");

    // Nothing left when the lab ends.
    let pids: Vec<u32> = ["boromir", "theoden"]
        .iter()
        .flat_map(|n| starts(&lab.node(n).unwrap().root))
        .filter_map(|l| field(&l, "pid").parse().ok())
        .collect();
    assert!(pids.len() >= 5, "{pids:?}");
    let dir = lab.ctx.dir.clone();
    drop(boromir);
    let lab = std::sync::Arc::into_inner(lab).expect("the reboot task is done");
    drop(lab);
    let running: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(running.is_empty(), "agents left running: {running:?}");
    assert!(!dir.exists(), "lab dir left: {}", dir.display());
}
