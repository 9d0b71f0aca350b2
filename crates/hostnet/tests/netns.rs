//! Network namespaces: made, entered, left and removed, on a real kernel.
//! Needs root; each test prints why it skips otherwise.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Command;

use rebootguard_hostnet::netns::{self, Netns, RUN_DIR, test_privileged};

fn unique(tag: &str) -> String {
    netns::unique_name(&format!("rgt-{tag}"))
}

fn ip_netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn here() -> (u64, u64) {
    Netns::current().expect("current").id().expect("id")
}

#[test]
fn named_namespace_is_visible_to_ip_and_removed() {
    if !test_privileged("named_namespace_is_visible_to_ip_and_removed") {
        return;
    }
    let name = unique("named");
    let ns = Netns::create_named(&name).expect("create");
    assert_eq!(ns.name(), Some(name.as_str()));
    assert!(ip_netns_list().contains(&name), "ip netns list shows it");
    assert!(matches!(
        Netns::create_named(&name),
        Err(netns::Error::Exists(_))
    ));

    let before = here();
    let inside = ns.run(here).expect("run");
    assert_eq!(inside, ns.id().expect("id"));
    assert_ne!(inside, before);
    assert_eq!(here(), before, "the calling thread never moved");

    // `ip` sees the same namespace through the bind mount.
    let out = Command::new("ip")
        .args(["-n", &name, "-o", "link", "show"])
        .output()
        .expect("ip runs");
    let links = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    assert!(links.contains("lo:"));

    let reopened = Netns::open_named(&name).expect("open");
    assert_eq!(reopened.id().expect("id"), inside);
    drop(reopened); // opened, not owned: removes nothing
    assert!(Path::new(RUN_DIR).join(&name).exists());

    ns.destroy().expect("destroy");
    assert!(!Path::new(RUN_DIR).join(&name).exists());
    assert!(!ip_netns_list().contains(&name));
    assert!(matches!(
        Netns::open_named(&name),
        Err(netns::Error::Open { .. })
    ));
}

#[test]
fn anonymous_namespace_lives_in_its_fd() {
    if !test_privileged("anonymous_namespace_lives_in_its_fd") {
        return;
    }
    let ns = Netns::new().expect("create");
    assert_eq!(ns.name(), None);
    let by_path = Netns::open(&ns.path()).expect("open by /proc path");
    assert_eq!(by_path.id().expect("id"), ns.id().expect("id"));
    assert_ne!(ns.id().expect("id"), here());
    // A command started in it sees only its loopback.
    let out = ns
        .command("ip")
        .expect("command")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip runs");
    let links = String::from_utf8_lossy(&out.stdout);
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
}

#[test]
fn a_panic_inside_leaves_the_thread_where_it_was() {
    if !test_privileged("a_panic_inside_leaves_the_thread_where_it_was") {
        return;
    }
    let ns = Netns::new().expect("create");
    let before = here();

    // Through run: the panic reaches the caller, who never moved.
    let caught = catch_unwind(AssertUnwindSafe(|| ns.run(|| panic!("boom inside"))));
    assert!(caught.is_err());
    assert_eq!(here(), before);

    // Through the guard on a thread of our own: unwinding restores it.
    std::thread::spawn(move || {
        let before = here();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _inside = ns.enter().expect("enter");
            assert_eq!(here(), ns.id().expect("id"));
            panic!("boom under the guard");
        }));
        assert!(caught.is_err());
        assert_eq!(here(), before, "guard restored the thread");
        let guard = ns.enter().expect("enter again");
        guard.exit().expect("explicit exit");
        assert_eq!(here(), before);
    })
    .join()
    .expect("thread ran");
}

#[test]
fn plain_files_are_not_namespaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-netns");
    std::fs::write(&file, b"").expect("write");
    assert!(matches!(Netns::open(&file), Err(netns::Error::NotNetns(_))));
}

#[test]
fn stale_namespaces_of_dead_processes_are_swept() {
    if !test_privileged("stale_namespaces_of_dead_processes_are_swept") {
        return;
    }
    // A namespace left by a process that no longer exists: a child that
    // made one with `ip` and exited.
    let mut child = Command::new("sleep").arg("0").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("reaped");
    let stale = format!("rgt-sweep-{dead}-0");
    let status = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .expect("ip runs");
    assert!(status.success());
    let alive = Netns::create_named(&netns::unique_name("rgt-sweep")).expect("ours");

    let removed = netns::sweep_stale("rgt-sweep").expect("sweep");
    // Leftovers of earlier killed runs may be swept too.
    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!Path::new(RUN_DIR).join(&stale).exists());
    assert!(
        Path::new(RUN_DIR)
            .join(alive.name().expect("named"))
            .exists()
    );
}

#[test]
fn other_kinds_of_namespace_are_refused() {
    assert!(matches!(
        Netns::open(Path::new("/proc/self/ns/uts")),
        Err(netns::Error::NotNetns(_))
    ));
    if test_privileged("other_kinds_of_namespace_are_refused") {
        assert!(Netns::open(Path::new("/proc/self/ns/net")).is_ok());
    }
}
