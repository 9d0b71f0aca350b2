//! The exec protocol itself, with small shell plugins the test writes:
//! what the plugin is given, chaining, timeouts, crashes, missing binaries.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rebootguard_hostnet::cni::{self, Args, Command, Conflist, Runtime};
use rebootguard_hostnet::netns::{Netns, test_privileged};
use serde_json::{Value, json};

/// Writes an executable plugin `name` into `dir`.
fn plugin(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write plugin");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A plugin that logs its call and input under `dir`, then prints `result`.
fn recording_plugin(dir: &Path, name: &str, result: &Value) {
    let log = dir.join("calls.log");
    plugin(
        dir,
        name,
        &format!(
            "cat > {dir}/{name}.$CNI_COMMAND.json\n\
             echo \"$CNI_COMMAND {name} $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS $CNI_ARGS\" >> {log}\n\
             readlink /proc/self/ns/net > {dir}/{name}.netns\n\
             [ \"$CNI_COMMAND\" = ADD ] && echo '{result}'\n\
             exit 0",
            dir = dir.display(),
            log = log.display(),
        ),
    );
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_slice(&fs::read(&path).expect("plugin wrote its input")).expect("json")
}

fn args() -> Args {
    Args::pod(
        "sandbox-1",
        Path::new("/var/run/netns/pod-1"),
        "default",
        "web",
    )
}

#[test]
fn a_conflist_chains_results_and_deletes_in_reverse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/pod-1"}],
        "ips": [{"address": "10.42.0.5/24", "gateway": "10.42.0.1", "interface": 0}]});
    let second = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/pod-1"}],
        "ips": [{"address": "10.42.0.5/24", "gateway": "10.42.0.1", "interface": 0}], "routes": [{"dst": "0.0.0.0/0"}]});
    recording_plugin(dir.path(), "first", &first);
    recording_plugin(dir.path(), "second", &second);
    let list = Conflist::from_value(&json!({
        "name": "cbr0", "cniVersion": "1.0.0",
        "plugins": [{"type": "first", "own": 1}, {"type": "second", "capabilities": {"bandwidth": true}}]
    }))
    .expect("conflist");
    let runtime = Runtime::new(vec![PathBuf::from("/nonexistent"), dir.path().to_owned()]);
    let mut args = args();
    args.capabilities
        .insert("bandwidth".into(), json!({"ingressRate": 1000}));

    let outcome = list.add(&runtime, &args).expect("ADD");
    assert_eq!(
        outcome.json, second,
        "the last plugin's result is the network's"
    );
    let given_first = read_json(dir.path().join("first.ADD.json"));
    assert_eq!(given_first["name"], "cbr0");
    assert_eq!(given_first["cniVersion"], "1.0.0");
    assert_eq!(given_first["own"], 1);
    assert!(given_first.get("prevResult").is_none());
    let given_second = read_json(dir.path().join("second.ADD.json"));
    assert_eq!(given_second["prevResult"], first);
    assert_eq!(
        given_second["runtimeConfig"]["bandwidth"]["ingressRate"],
        1000
    );

    list.check(&runtime, &args, &outcome.json).expect("CHECK");
    list.del(&runtime, &args, Some(&outcome.json)).expect("DEL");
    let given_del = read_json(dir.path().join("first.DEL.json"));
    assert_eq!(given_del["prevResult"], second);

    let log = fs::read_to_string(dir.path().join("calls.log")).expect("log");
    let calls: Vec<String> = log
        .lines()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        calls,
        [
            "ADD first",
            "ADD second",
            "CHECK first",
            "CHECK second",
            "DEL second",
            "DEL first"
        ]
    );
    let first_line = log.lines().next().expect("a call");
    assert_eq!(
        first_line,
        "ADD first sandbox-1 eth0 /var/run/netns/pod-1 \
         IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sandbox-1"
    );
}

#[test]
fn plugins_run_inside_the_given_host_namespace() {
    if !test_privileged("plugins_run_inside_the_given_host_namespace") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    recording_plugin(dir.path(), "probe", &json!({"cniVersion": "1.0.0"}));
    let node = Netns::new().expect("node namespace");
    let runtime = Runtime::new(vec![dir.path().to_owned()]).in_host(&node);
    runtime
        .add(
            &json!({"type": "probe", "name": "n", "cniVersion": "1.0.0"}),
            &args(),
        )
        .expect("ADD");
    let seen = fs::read_to_string(dir.path().join("probe.netns")).expect("netns");
    let (_, inode) = node.id().expect("id");
    assert_eq!(seen.trim(), format!("net:[{inode}]"));
    let (_, here) = Netns::current().expect("current").id().expect("id");
    assert_ne!(here, inode);
}

#[test]
fn a_hung_plugin_and_its_children_are_killed_at_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("child.pid");
    plugin(
        dir.path(),
        "hang",
        &format!("sleep 30 &\necho $! > {}\nwait", pidfile.display()),
    );
    let runtime =
        Runtime::new(vec![dir.path().to_owned()]).with_timeout(Some(Duration::from_millis(300)));
    let err = runtime
        .add(
            &json!({"type": "hang", "name": "n", "cniVersion": "1.0.0"}),
            &args(),
        )
        .expect_err("times out");
    assert!(
        matches!(err, cni::Error::Timeout { ref plugin, command: Command::Add, .. } if plugin == "hang"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("did not finish within 300ms"),
        "{err}"
    );
    let child: i32 = fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid number");
    // The background sleep was in the plugin's process group: gone (or a
    // zombie awaiting its reaper, which /proc shows as state Z).
    // SIGKILL is delivered asynchronously: give the kernel a moment to act on it.
    let stat = format!("/proc/{child}/stat");
    let gone = |s: &str| s.is_empty() || s.contains(") Z ");
    let started = std::time::Instant::now();
    let mut state = fs::read_to_string(&stat).unwrap_or_default();
    while !gone(&state) && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        state = fs::read_to_string(&stat).unwrap_or_default();
    }
    assert!(gone(&state), "grandchild still running: {state}");
}

#[test]
fn missing_crashing_and_garbled_plugins_are_told_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(vec![dir.path().to_owned()]);
    let config = |kind: &str| json!({"type": kind, "name": "cbr0", "cniVersion": "1.0.0"});

    let err = runtime
        .add(&config("flannel"), &args())
        .expect_err("missing");
    assert_eq!(
        err.to_string(),
        format!(
            "failed to find plugin \"flannel\" in path [{}]",
            dir.path().display()
        )
    );

    plugin(
        dir.path(),
        "crash",
        "echo 'panic: runtime error' >&2\nexit 2",
    );
    let err = runtime.add(&config("crash"), &args()).expect_err("crash");
    assert!(matches!(err, cni::Error::Crashed { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("exit status 2: panic: runtime error"),
        "{err}"
    );

    plugin(dir.path(), "garbled", "echo 'not json'");
    let err = runtime
        .add(&config("garbled"), &args())
        .expect_err("garbled");
    assert!(matches!(err, cni::Error::BadResult { .. }), "{err:?}");

    plugin(
        dir.path(),
        "refuses",
        r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"no subnet"}'; exit 1"#,
    );
    let err = runtime
        .add(&config("refuses"), &args())
        .expect_err("refuses");
    assert_eq!(
        err.to_string(),
        "plugin type=\"refuses\" failed (add): invalid network config; no subnet"
    );

    let mut bad = args();
    bad.ifname = "this-name-is-too-long".into();
    assert!(matches!(
        runtime.add(&config("refuses"), &bad),
        Err(cni::Error::BadArgument(_))
    ));
}
