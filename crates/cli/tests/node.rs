//! `rebootguard node ...` end to end on copies of the example node root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

const BACKUP: &str = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

/// A private copy of `examples/node-boromir`.
struct Node {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = common::example_root(dir.path());
        Node { _dir: dir, root }
    }

    fn subnet_env(&self) -> PathBuf {
        self.root.join("run/flannel/subnet.env")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rebootguard"))
            .args(args)
            .arg("--root")
            .arg(&self.root)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("HOME", &self.root)
            .env("NO_COLOR", "1")
            .output()
            .expect("run rebootguard")
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn incident_restore_puts_the_backup_back() {
    let node = Node::new();
    assert!(!node.subnet_env().exists());
    let out = node.run(&["node", "restore", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let outcome = json(&out);
    assert_eq!(outcome["action"], "restore");
    assert_eq!(outcome["generation"], 1);
    assert_eq!(outcome["applied"], true);
    assert_eq!(
        fs::read_to_string(node.subnet_env()).expect("restored"),
        BACKUP
    );
    let mode = fs::metadata(node.subnet_env())
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);

    // Next boot of k3s in the same boot: the file is valid, nothing changes.
    let again = node.run(&["node", "restore", "--json"]);
    assert_eq!(json(&again)["action"], "keep");
}

#[test]
fn dry_run_changes_nothing() {
    let node = Node::new();
    let out = node.run(&["node", "restore", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("would be restored from backup generation 1"));
    assert!(!node.subnet_env().exists());
}

#[test]
fn invalid_live_files_are_replaced_by_the_backup() {
    let cases: [&[u8]; 5] = [
        b"",
        b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\n",
        b"FLANNEL_NETWORK=\"10.42.0.0/16\"\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
        b"FLANNEL_NETWORK = 10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
        &[0xde, 0xad, 0xbe, 0xef, 0x00, b'\n'],
    ];
    for content in cases {
        let node = Node::new();
        fs::create_dir_all(node.subnet_env().parent().expect("parent")).expect("mkdir");
        fs::write(node.subnet_env(), content).expect("write");
        let out = node.run(&["node", "restore"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            stderr(&out).contains("the live file is invalid"),
            "{}",
            stderr(&out)
        );
        assert_eq!(
            fs::read_to_string(node.subnet_env()).expect("restored"),
            BACKUP,
            "{content:?}"
        );
    }
}

#[test]
fn crlf_file_is_valid_for_the_plugin_and_kept() {
    let node = Node::new();
    fs::create_dir_all(node.subnet_env().parent().expect("parent")).expect("mkdir");
    let crlf = BACKUP.replace('\n', "\r\n");
    fs::write(node.subnet_env(), &crlf).expect("write");
    let out = node.run(&["node", "restore", "--json"]);
    assert_eq!(json(&out)["action"], "keep");
    assert_eq!(fs::read_to_string(node.subnet_env()).expect("kept"), crlf);
}

#[test]
fn symlink_directory_or_huge_file_at_the_path_is_left_alone() {
    let node = Node::new();
    let run = node.root.join("run/flannel");
    fs::create_dir_all(&run).expect("mkdir");
    let target = node.root.join("precious");
    fs::write(&target, "do not touch").expect("write");
    std::os::unix::fs::symlink(&target, node.subnet_env()).expect("symlink");
    let out = node.run(&["node", "restore", "--json"]);
    assert_eq!(out.status.code(), Some(3), "refused: not restored");
    assert_eq!(json(&out)["action"], "refuse");
    assert_eq!(fs::read_to_string(&target).expect("target"), "do not touch");

    fs::remove_file(node.subnet_env()).expect("rm link");
    fs::create_dir(node.subnet_env()).expect("dir");
    let out = node.run(&["node", "restore"]);
    assert!(stdout(&out).contains("is a directory"), "{}", stdout(&out));
    assert!(node.subnet_env().is_dir());

    fs::remove_dir(node.subnet_env()).expect("rmdir");
    fs::write(node.subnet_env(), vec![b'#'; 2 << 20]).expect("huge");
    let out = node.run(&["node", "restore", "--json"]);
    assert_eq!(json(&out)["action"], "refuse");
    assert_eq!(
        fs::metadata(node.subnet_env()).expect("meta").len(),
        2 << 20
    );
}

#[test]
fn another_nodes_backup_is_never_restored() {
    let node = Node::new();
    let out = node.run(&["node", "--node-name", "theoden", "restore", "--json"]);
    assert_eq!(out.status.code(), Some(3), "nothing restored");
    let outcome = json(&out);
    assert_eq!(outcome["action"], "nothing");
    let warnings = outcome["warnings"].to_string();
    assert!(warnings.contains("other nodes ignored"), "{warnings}");
    assert!(!node.subnet_env().exists());
}

#[test]
fn backup_stores_only_valid_changed_files() {
    let node = Node::new();
    let out = node.run(&["node", "backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    node.run(&["node", "restore"]);
    let out = node.run(&["node", "backup", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["result"], "unchanged");

    fs::write(node.subnet_env(), BACKUP.replace("1450", "1400")).expect("write");
    let out = node.run(&["node", "backup", "--json"]);
    assert_eq!(json(&out)["result"], "stored");
    assert_eq!(json(&out)["generation"], 2);

    fs::write(node.subnet_env(), "FLANNEL_MTU=1400\n").expect("write");
    let out = node.run(&["node", "backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is invalid and was not backed up"));
    let status = json(&node.run(&["node", "status", "--json"]));
    assert_eq!(status["backups"].as_array().expect("backups").len(), 2);
}

#[test]
fn store_in_the_way_is_named() {
    let node = Node::new();
    node.run(&["node", "restore"]);
    let store = node.root.join("var/lib/rebootguard");
    fs::remove_dir_all(&store).expect("rm store");
    fs::write(&store, "a file, not a directory").expect("write");
    let out = node.run(&["node", "backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rebootguard"), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&store).expect("untouched"),
        "a file, not a directory"
    );
}

/// Runs `rebootguard ARGS --root ROOT` with `dir` mounted read-only in a
/// private mount namespace; `None` (the reason printed) where that cannot
/// be done.
fn run_with_read_only(test: &str, node: &Node, dir: &Path, args: &[&str]) -> Option<Output> {
    if !rebootguard_hostnet::netns::test_privileged(test) {
        return None;
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        rebootguard_hostnet::netns::test_skip(test, "unshare(1) is missing (util-linux)");
        return None;
    }
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,ro,bind {d} && exec {bin} {args} --root {root}",
        d = dir.display(),
        bin = env!("CARGO_BIN_EXE_rebootguard"),
        args = args.join(" "),
        root = node.root.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("unshare");
    Some(out)
}

#[test]
fn read_only_store_is_reported_not_fatal() {
    let node = Node::new();
    node.run(&["node", "restore"]);
    fs::write(node.subnet_env(), BACKUP.replace("1450", "1400")).expect("write");
    let store = node.root.join("var/lib/rebootguard");
    let test = "read_only_store_is_reported_not_fatal";
    let Some(out) = run_with_read_only(test, &node, &store, &["node", "backup"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
}

#[test]
fn a_read_only_run_directory_is_no_restore() {
    // After the incident's reboot, but /run/flannel cannot be written: the
    // journal must not say "restored", and the exit code says it failed.
    let node = Node::new();
    let run = node.root.join("run/flannel");
    fs::create_dir_all(&run).expect("mkdir");
    let test = "a_read_only_run_directory_is_no_restore";
    let args = ["node", "restore", "--json"];
    let Some(out) = run_with_read_only(test, &node, &run, &args) else {
        return;
    };
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(json(&out)["applied"], false, "{}", stdout(&out));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("restored"), "{}", stderr(&out));
    assert!(!node.subnet_env().exists());
}

#[test]
fn regenerate_without_api_lists_what_is_missing() {
    let node = Node::new();
    let out = node.run(&["node", "regenerate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("podCIDR"), "{}", stderr(&out));
}

#[test]
fn corrupt_net_conf_is_reported_by_status() {
    let node = Node::new();
    fs::write(
        node.root
            .join("var/lib/rancher/k3s/agent/etc/flannel/net-conf.json"),
        "{\"Network\": ",
    )
    .expect("write");
    let out = node.run(&["node", "status", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let net_conf = report["views"]
        .as_array()
        .expect("views")
        .iter()
        .find(|v| v["source"] == "net-conf")
        .expect("net-conf view")
        .clone();
    assert_eq!(net_conf["state"], "unavailable");
    assert!(
        net_conf["detail"]
            .as_str()
            .expect("detail")
            .contains("not valid JSON")
    );
}

#[test]
fn bad_config_is_a_usage_error() {
    let node = Node::new();
    fs::write(
        node.root.join("etc/rebootguard/config.toml"),
        "keep = \"many\"\n",
    )
    .expect("write");
    let out = node.run(&["node", "status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("config.toml"), "{}", stderr(&out));
    fs::write(
        node.root.join("etc/rebootguard/config.toml"),
        "api = false\n",
    )
    .expect("write");
    let out = node.run(&["node", "restore", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a duration"), "{}", stderr(&out));
}

#[test]
fn completions_and_man_page_come_from_the_definition() {
    let node = Node::new();
    let out = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(["completions", "bash"])
        .output()
        .expect("run");
    assert!(stdout(&out).contains("rebootguard"));
    let out = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .arg("man")
        .output()
        .expect("run");
    assert!(stdout(&out).contains(".TH rebootguard"), "{}", stdout(&out));
    let dir = node.root.join("man");
    let out = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(["man", "--out-dir"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.join("rebootguard-node-restore.1").exists());
}

#[test]
fn install_writes_units_that_systemd_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_rebootguard");
    let run = |extra: &[&str]| {
        Command::new(bin)
            .arg("install")
            .arg("--root")
            .arg(dir.path())
            .arg("--no-enable")
            .args(extra)
            .output()
            .expect("run install")
    };
    let dry = run(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("would write"));
    let units = dir.path().join("etc/systemd/system");
    assert!(!units.exists(), "dry run writes nothing");

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let restore = fs::read_to_string(units.join("rebootguard-restore.service")).expect("unit");
    assert!(restore.contains(&format!("ExecStart=-{bin} node restore")));
    assert!(restore.contains("Before=k3s.service k3s-agent.service"));
    assert!(restore.contains("WantedBy=k3s.service k3s-agent.service"));
    assert!(
        dir.path()
            .join("usr/local/share/man/man1/rebootguard-node-restore.1")
            .exists()
    );
    assert!(stdout(&run(&[])).contains("up to date"));

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped systemd-analyze verify: not installed");
        return;
    }
    let names = [
        "rebootguard-restore.service",
        "rebootguard-backup.path",
        "rebootguard-backup.service",
    ];
    let verify = |dir: &Path| {
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(names.iter().map(|n| dir.join(n)))
            .output()
            .expect("systemd-analyze")
    };
    let out = verify(&units);
    assert!(out.status.success(), "{}", stderr(&out));

    // The check has teeth: a unit whose binary is missing is refused.
    let broken = dir.path().join("broken");
    fs::create_dir(&broken).expect("mkdir");
    for name in names {
        let text = fs::read_to_string(units.join(name)).expect("unit");
        fs::write(
            broken.join(name),
            text.replace(bin, "/nonexistent/rebootguard"),
        )
        .expect("write");
    }
    assert!(!verify(&broken).status.success());
}

#[test]
fn commands_that_only_look_leave_no_store_behind() {
    // A node that never had a backup: looking (status, a regeneration
    // preview, a restore dry run, the checks) must not create the store.
    let node = Node::new();
    let store = node.root.join("var/lib/rebootguard");
    std::fs::remove_dir_all(&store).expect("no store yet");
    assert!(
        !node.subnet_env().exists(),
        "the example is the incident's node"
    );
    for args in [
        &["node", "status", "--json"][..],
        &["node", "regenerate"],
        &["node", "restore", "--dry-run"],
        &["node", "check", "--json"],
    ] {
        let out = node.run(args);
        assert_ne!(out.status.code(), None, "{args:?} ran");
        assert!(
            !store.exists(),
            "{args:?} created {}: {}",
            store.display(),
            stderr(&out)
        );
    }
    assert!(!node.subnet_env().exists(), "and wrote no subnet.env");
}

#[test]
fn a_reader_that_goes_away_ends_reports_quietly() {
    // `rebootguard ... | head -1`: the pipe closes early; the command ends
    // by SIGPIPE like cat, never with a panic on stderr.
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let node = Node::new();
    for args in [&["completions", "bash"][..], &["node", "status", "--root"]] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rebootguard"));
        cmd.args(args);
        if args.last() == Some(&"--root") {
            cmd.arg(&node.root).env_remove("KUBECONFIG");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // The reader goes away at once.
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        let status = child.wait().expect("wait");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            status.success() || status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {status:?} {err}"
        );
    }
}

#[test]
fn restore_never_writes_through_a_symlinked_directory_out_of_the_root() {
    // `<root>/run/flannel` is a link to a directory outside the root (an
    // absolute link written for the host, or planted): the restore must
    // neither write there nor report success.
    let node = Node::new();
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("subnet.env"), "precious\n").expect("write");
    fs::create_dir_all(node.root.join("run")).expect("mkdir");
    std::os::unix::fs::symlink(outside.path(), node.root.join("run/flannel")).expect("symlink");
    let out = node.run(&["node", "restore", "--json"]);
    assert_eq!(
        fs::read_to_string(outside.path().join("subnet.env")).expect("read"),
        "precious\n",
        "{}",
        stderr(&out)
    );
    let names: Vec<_> = fs::read_dir(outside.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "nothing new outside the root: {names:?}");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let outcome = json(&out);
    assert_eq!(outcome["applied"], false, "{outcome}");
    assert!(
        stderr(&out).contains("run/flannel"),
        "the message names the path: {}",
        stderr(&out)
    );
}

#[test]
fn the_store_is_resolved_inside_the_root() {
    // A store directory linked out of the root (planted, or an absolute
    // link written for the host): backup must not follow it out.
    let node = Node::new();
    node.run(&["node", "restore"]);
    fs::write(node.subnet_env(), BACKUP.replace("1450", "1400")).expect("write");
    let store = node.root.join("var/lib/rebootguard");
    fs::remove_dir_all(&store).expect("rm store");
    let outside = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(outside.path(), &store).expect("symlink");
    let out = node.run(&["node", "backup", "--json"]);
    let left: Vec<_> = fs::read_dir(outside.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "backup wrote outside the root: {left:?}");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("var/lib/rebootguard"),
        "the message names the store: {}",
        stderr(&out)
    );

    // The same absolute link, its target present inside the root: that
    // is where the host would put the backups, and where they go.
    let inside = node
        .root
        .join(outside.path().strip_prefix("/").expect("absolute"));
    fs::create_dir_all(&inside).expect("mkdir");
    let out = node.run(&["node", "backup", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["result"], "stored", "{}", stdout(&out));
    assert_eq!(fs::read_dir(outside.path()).expect("ls").count(), 0);
    assert_eq!(
        fs::read_dir(&inside).expect("ls").count(),
        2,
        "generation and lock"
    );
    let status = json(&node.run(&["node", "status", "--json"]));
    assert_eq!(
        status["backups"].as_array().expect("backups").len(),
        1,
        "{status}"
    );
}

/// Runs `rebootguard ARGS --root ROOT`, killed after `bound`: `None` when
/// it had to be killed.
fn run_bounded(node: &Node, args: &[&str], bound: std::time::Duration) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(args)
        .arg("--root")
        .arg(&node.root)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", &node.root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some(child.wait_with_output().expect("output"))
}

#[test]
fn a_fifo_in_place_of_any_input_never_hangs_a_command() {
    // Each input the node commands read, replaced by a FIFO nobody writes:
    // opened blocking, it would hang restore before k3s forever.
    let inputs = [
        "var/lib/rancher/k3s/agent/etc/flannel/net-conf.json",
        "etc/rebootguard/config.toml",
        "proc/stat",
        "proc/sys/kernel/random/boot_id",
        "etc/rancher/k3s/config.yaml",
        "run/flannel/subnet.env",
        "etc/rancher/k3s/k3s.yaml",
    ];
    for input in inputs {
        let node = Node::new();
        let path = node.root.join(input);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let _ = fs::remove_file(&path);
        let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
        assert!(made.success());
        for args in [
            &["node", "restore", "--json", "--timeout", "5s"][..],
            &["node", "backup", "--json"],
            &["node", "status", "--json"],
        ] {
            let out = run_bounded(&node, args, std::time::Duration::from_secs(60));
            let out = out.unwrap_or_else(|| panic!("{args:?} hung on a FIFO at {input}"));
            assert!(
                !stderr(&out).contains("panicked"),
                "{args:?} with a FIFO at {input}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn a_store_every_user_can_write_is_not_restored_from() {
    // The incident's reboot, with the store left world-writable: its backup
    // could have been planted by anyone, so it is not restored; the output
    // line and the journal say why and how to fix it.
    let node = Node::new();
    let store = node.root.join("var/lib/rebootguard");
    fs::set_permissions(&store, fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = node.run(&["node", "restore"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.contains("could not be restored")
            && line.contains("writable by every user")
            && line.contains("chmod go-w"),
        "{line}"
    );
    assert!(!node.subnet_env().exists());
    fs::set_permissions(&store, fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = node.run(&["node", "restore", "--json"]);
    assert_eq!(json(&out)["action"], "restore", "{}", stderr(&out));
}
