//! The node's `run/` and `var/` seen at `/run` and `/var` by one thread (and
//! what it starts) while the rest of this multi-threaded test process, and
//! the machine, keep their view. Needs root; prints why it skips otherwise.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;

use rebootguard_hostnet::mounts::{self, Error};
use rebootguard_hostnet::netns::{Netns, test_privileged};

#[test]
fn one_thread_sees_the_node_files_at_their_real_paths() {
    if !test_privileged("one_thread_sees_the_node_files_at_their_real_paths") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let name = format!("rebootguard-mounts-test-{}", std::process::id());
    fs::create_dir_all(root.join("run/flannel")).expect("run");
    fs::create_dir_all(root.join("var/lib/cni")).expect("var");
    fs::write(root.join("run/flannel").join(&name), "node run").expect("marker");
    fs::write(root.join("var/lib/cni").join(&name), "node var").expect("marker");
    let in_run = Path::new("/run/flannel").join(&name);
    let in_var = Path::new("/var/lib/cni").join(&name);
    // An anonymous namespace's /proc path keeps working inside.
    let pod = Netns::new().expect("namespace");

    let (entered, wait_entered) = mpsc::channel::<()>();
    let (checked, wait_checked) = mpsc::channel::<()>();
    let (in_run, in_var, pod) = (&in_run, &in_var, &pod);
    let seen = std::thread::scope(|scope| {
        let watcher = scope.spawn(move || {
            // Meanwhile, another thread of this process: unaffected.
            wait_entered.recv().expect("signal");
            let seen = in_run.exists();
            checked.send(()).expect("signal");
            seen
        });
        let seen = mounts::run_in_root(&root, move || {
            let direct = (
                fs::read_to_string(in_run).ok(),
                fs::read_to_string(in_var).ok(),
            );
            let child = Command::new("cat")
                .arg(in_run)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .ok();
            let thread = std::thread::spawn({
                let in_var = in_var.to_owned();
                move || fs::read_to_string(in_var).ok()
            })
            .join()
            .expect("thread");
            let netns = Netns::open(&pod.path()).is_ok();
            entered.send(()).expect("signal");
            wait_checked.recv().expect("signal");
            (direct, child, thread, netns)
        })
        .expect("run in root");
        (seen, watcher.join().expect("watcher"))
    });
    let ((direct, child, thread, netns), other_thread_saw_it) = seen;
    assert_eq!(direct.0.as_deref(), Some("node run"));
    assert_eq!(direct.1.as_deref(), Some("node var"));
    assert_eq!(
        child.as_deref(),
        Some("node run"),
        "a child process sees it"
    );
    assert_eq!(
        thread.as_deref(),
        Some("node var"),
        "a later thread sees it"
    );
    assert!(netns, "the pod namespace stays reachable");
    assert!(!other_thread_saw_it, "another thread does not");
    assert!(!in_run.exists() && !in_var.exists(), "nor does the machine");
}

#[test]
fn a_missing_directory_and_a_covered_root_are_named() {
    if !test_privileged("a_missing_directory_and_a_covered_root_are_named") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("run")).expect("run");
    let err = mounts::run_in_root(dir.path(), || ()).expect_err("no var/");
    assert!(
        matches!(&err, Error::Bind { source_dir, .. } if source_dir == &dir.path().join("var")),
        "{err:?}"
    );
    assert!(err.to_string().ends_with("on /var"), "{err}");
    let err = mounts::run_in_root(Path::new("/var/lib/node"), || ()).expect_err("covered");
    assert!(err.to_string().contains("under /run or /var"), "{err}");
    // `/` needs nothing.
    assert_eq!(mounts::run_in_root(Path::new("/"), || 7).expect("slash"), 7);
}
