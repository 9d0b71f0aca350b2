//! The agent's k3s restart over real D-Bus: a private `dbus-daemon` on a
//! unix socket in a temporary directory, a stand-in systemd on it (zbus's
//! object server owning `org.freedesktop.systemd1`, with a `Manager` that
//! records `Subscribe` and `RestartUnit` and answers `done`, `failed`,
//! never, or `NoSuchUnit`), and the agent's own restart pointed at it.
//!
//! Needs `dbus-daemon` (Debian: `dbus-daemon`); skipped with a printed
//! reason without it, unless `REBOOTGUARD_REQUIRE_DBUS=1` (CI sets it).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebootguard_agent::config::{RebootHow, Restart};
use rebootguard_agent::remedy::{reboot, restart_k3s, restart_k3s_within};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

/// Whether `dbus-daemon` runs here; its absence fails the test only when
/// `REBOOTGUARD_REQUIRE_DBUS=1`.
fn have_dbus_daemon(test: &str) -> bool {
    let found = Command::new("dbus-daemon")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("REBOOTGUARD_REQUIRE_DBUS").as_deref() != Ok("1"),
            "REBOOTGUARD_REQUIRE_DBUS=1 but dbus-daemon is not on PATH (apt-get install dbus-daemon)"
        );
        eprintln!("skipping {test}: dbus-daemon is not on PATH (apt-get install dbus-daemon)");
    }
    found
}

/// A private bus, killed when dropped.
struct Bus {
    child: Child,
    address: String,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dbus-daemon` listening on `socket`, everything allowed, except
/// calling `RestartUnit` when `deny_restart`.
fn start_bus(dir: &Path, socket: &Path, deny_restart: bool) -> Bus {
    std::fs::create_dir_all(socket.parent().expect("a directory")).expect("mkdir");
    let deny = if deny_restart {
        r#"<deny send_destination="org.freedesktop.systemd1" send_interface="org.freedesktop.systemd1.Manager" send_member="RestartUnit"/>"#
    } else {
        ""
    };
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    {deny}
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .expect("write the bus config");
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--print-address", "--nofork"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dbus-daemon");
    // It prints its address once it listens.
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut bus = Bus {
        child,
        address: String::new(),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("dbus-daemon printed its address within 10s");
    assert!(line.starts_with("unix:path="), "dbus-daemon said {line:?}");
    bus.address = line.trim().to_owned();
    bus
}

/// The stand-in systemd. zbus's `interface` macro also writes a public
/// signals trait whose methods carry no docs.
#[allow(missing_docs)]
mod standin {
    use super::*;

    /// How the stand-in systemd answers `RestartUnit`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Answer {
        /// `JobRemoved(done)`, sent before the method's reply (the race a
        /// subscription made after the call would lose), after another job's.
        Done,
        /// `JobRemoved(done)`, 200 ms after the reply.
        DoneLater,
        /// `JobRemoved(failed)`, before the reply.
        Failed,
        /// A job that never ends.
        Never,
        /// `org.freedesktop.systemd1.NoSuchUnit`, as systemd for a unit it has not.
        NoSuchUnit,
    }

    #[derive(Debug, zbus::DBusError)]
    #[zbus(prefix = "org.freedesktop.systemd1")]
    enum SystemdError {
        #[zbus(error)]
        ZBus(zbus::Error),
        NoSuchUnit(String),
    }

    /// The stand-in `org.freedesktop.systemd1.Manager`.
    pub struct Manager {
        pub answer: Answer,
        /// `Subscribe` and `RestartUnit <unit> <mode>`, in order.
        pub calls: Arc<Mutex<Vec<String>>>,
        /// Like systemd, signals go out only while someone is subscribed.
        pub subscribed: BTreeSet<String>,
        pub next_job: u32,
    }

    fn sender(header: &Header<'_>) -> String {
        header.sender().map(|s| s.to_string()).unwrap_or_default()
    }

    #[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
    impl Manager {
        async fn subscribe(&mut self, #[zbus(header)] header: Header<'_>) {
            self.calls
                .lock()
                .expect("calls")
                .push("Subscribe".to_owned());
            self.subscribed.insert(sender(&header));
        }

        async fn restart_unit(
            &mut self,
            name: &str,
            mode: &str,
            #[zbus(header)] header: Header<'_>,
            #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        ) -> Result<OwnedObjectPath, SystemdError> {
            self.calls
                .lock()
                .expect("calls")
                .push(format!("RestartUnit {name} {mode}"));
            if self.answer == Answer::NoSuchUnit {
                return Err(SystemdError::NoSuchUnit(format!("Unit {name} not found.")));
            }
            self.next_job += 1;
            let id = self.next_job;
            let job = OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{id}"))
                .map_err(zbus::Error::from)?;
            let signals = self.subscribed.contains(&sender(&header));
            let result = match self.answer {
                Answer::Done => Some("done"),
                Answer::Failed => Some("failed"),
                _ => None,
            };
            if let (true, Some(result)) = (signals, result) {
                // Someone else's job first: only the agent's own counts.
                let other = ObjectPath::try_from("/org/freedesktop/systemd1/job/1")
                    .map_err(zbus::Error::from)?;
                Manager::job_removed(&emitter, 1, other, "other.service", "failed").await?;
                Manager::job_removed(&emitter, id, job.as_ref(), name, result).await?;
            }
            if signals && self.answer == Answer::DoneLater {
                let (emitter, job, unit) = (emitter.to_owned(), job.clone(), name.to_owned());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = Manager::job_removed(&emitter, id, job.as_ref(), &unit, "done").await;
                });
            }
            Ok(job)
        }

        async fn start_unit(
            &mut self,
            name: &str,
            mode: &str,
        ) -> Result<OwnedObjectPath, SystemdError> {
            self.calls
                .lock()
                .expect("calls")
                .push(format!("StartUnit {name} {mode}"));
            if self.answer == Answer::NoSuchUnit {
                return Err(SystemdError::NoSuchUnit(format!("Unit {name} not found.")));
            }
            self.next_job += 1;
            OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{}", self.next_job))
                .map_err(|e| SystemdError::ZBus(e.into()))
        }

        /// A job finished.
        #[zbus(signal)]
        async fn job_removed(
            emitter: &SignalEmitter<'_>,
            id: u32,
            job: ObjectPath<'_>,
            unit: &str,
            result: &str,
        ) -> zbus::Result<()>;
    }
}

use standin::{Answer, Manager};

/// A node root whose system bus socket is a private bus, with (or
/// without) a stand-in systemd on it answering `answer`.
struct Node {
    root: tempfile::TempDir,
    bus: Bus,
    calls: Arc<Mutex<Vec<String>>>,
    _systemd: Option<zbus::Connection>,
}

impl Node {
    async fn start(answer: Option<Answer>, deny_restart: bool) -> Node {
        let root = tempfile::tempdir().expect("tempdir");
        let socket = root.path().join("run/dbus/system_bus_socket");
        let bus = start_bus(root.path(), &socket, deny_restart);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let systemd = match answer {
            None => None,
            Some(answer) => Some(
                zbus::connection::Builder::address(bus.address.as_str())
                    .expect("the daemon's address")
                    .name("org.freedesktop.systemd1")
                    .expect("a name")
                    .serve_at(
                        "/org/freedesktop/systemd1",
                        Manager {
                            answer,
                            calls: calls.clone(),
                            subscribed: BTreeSet::new(),
                            next_job: 100,
                        },
                    )
                    .expect("the manager")
                    .build()
                    .await
                    .expect("the stand-in systemd is on the bus"),
            ),
        };
        Node {
            root,
            bus,
            calls,
            _systemd: systemd,
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }

    /// The agent's default: the unit it picks, the socket under the root.
    fn default_restart() -> Restart {
        Restart::Systemd {
            unit: None,
            bus: None,
        }
    }

    /// The unit and bus as configured.
    fn configured(&self, unit: &str) -> Restart {
        Restart::Systemd {
            unit: Some(unit.to_owned()),
            bus: Some(self.bus.address.clone()),
        }
    }
}

#[tokio::test]
async fn restarts_the_unit_over_the_hosts_bus_and_waits_for_done() {
    if !have_dbus_daemon("restarts_the_unit_over_the_hosts_bus_and_waits_for_done") {
        return;
    }
    let node = Node::start(Some(Answer::Done), false).await;
    // An agent-only node: the default unit is k3s-agent.service.
    let units = node.root().join("etc/systemd/system");
    std::fs::create_dir_all(&units).expect("mkdir");
    std::fs::write(units.join("k3s-agent.service"), "").expect("write");
    // The default bus: <root>/run/dbus/system_bus_socket, as in the pod.
    restart_k3s(&Node::default_restart(), node.root())
        .await
        .expect("restarted");
    assert_eq!(
        node.calls(),
        ["Subscribe", "RestartUnit k3s-agent.service replace"],
        "subscribed first, then the restart of the right unit in replace mode"
    );
}

#[tokio::test]
async fn a_reboot_starts_reboot_target_irreversibly_over_the_hosts_bus() {
    if !have_dbus_daemon("a_reboot_starts_reboot_target_irreversibly_over_the_hosts_bus") {
        return;
    }
    let node = Node::start(Some(Answer::Done), false).await;
    let how = RebootHow::Systemd { bus: None };
    reboot(&how, node.root()).await.expect("reboot queued");
    assert_eq!(
        node.calls(),
        ["StartUnit reboot.target replace-irreversibly"],
        "queued, not waited for: the end of the job is the machine going down"
    );
    // A bus without systemd: the error names the bus and the unit.
    let empty = Node::start(None, false).await;
    let err = reboot(&how, empty.root())
        .await
        .expect_err("no systemd")
        .to_string();
    assert!(err.contains("reboot.target"), "{err}");
}

#[tokio::test]
async fn a_job_that_ends_after_the_reply_is_waited_for() {
    if !have_dbus_daemon("a_job_that_ends_after_the_reply_is_waited_for") {
        return;
    }
    let node = Node::start(Some(Answer::DoneLater), false).await;
    let started = Instant::now();
    restart_k3s(&node.configured("k3s.service"), Path::new("/nonexistent"))
        .await
        .expect("restarted");
    assert!(started.elapsed() >= Duration::from_millis(200), "waited");
    assert_eq!(
        node.calls(),
        ["Subscribe", "RestartUnit k3s.service replace"]
    );
}

#[tokio::test]
async fn a_failed_job_is_a_failure_naming_the_unit_and_where_to_look() {
    if !have_dbus_daemon("a_failed_job_is_a_failure_naming_the_unit_and_where_to_look") {
        return;
    }
    let node = Node::start(Some(Answer::Failed), false).await;
    let err = restart_k3s(&Node::default_restart(), node.root())
        .await
        .expect_err("failed")
        .to_string();
    assert!(
        err.contains("restarting k3s.service failed")
            && err.contains("\"failed\"")
            && err.contains("journalctl -u k3s.service"),
        "{err}"
    );
    assert_eq!(
        node.calls(),
        ["Subscribe", "RestartUnit k3s.service replace"]
    );
}

#[tokio::test]
async fn a_missing_unit_says_how_to_fix_it() {
    if !have_dbus_daemon("a_missing_unit_says_how_to_fix_it") {
        return;
    }
    let node = Node::start(Some(Answer::NoSuchUnit), false).await;
    let err = restart_k3s(&node.configured("k3s-server.service"), node.root())
        .await
        .expect_err("no such unit")
        .to_string();
    assert!(
        err.contains("asking systemd to restart k3s-server.service failed")
            && err.contains("org.freedesktop.systemd1.NoSuchUnit")
            && err.contains("Unit k3s-server.service not found.")
            && err.contains("k3s-unit"),
        "{err}"
    );
}

#[tokio::test]
async fn a_job_that_never_ends_is_bounded() {
    if !have_dbus_daemon("a_job_that_never_ends_is_bounded") {
        return;
    }
    let node = Node::start(Some(Answer::Never), false).await;
    let started = Instant::now();
    let err = restart_k3s_within(
        &Node::default_restart(),
        node.root(),
        Duration::from_secs(1),
    )
    .await
    .expect_err("times out")
    .to_string();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        err.contains("did not finish restarting k3s.service within 1s")
            && err.contains("/org/freedesktop/systemd1/job/101")
            && err.contains("journalctl -u k3s.service"),
        "{err}"
    );
    assert_eq!(
        node.calls(),
        ["Subscribe", "RestartUnit k3s.service replace"]
    );
}

#[tokio::test]
async fn a_bus_that_refuses_the_call_is_access_denied() {
    if !have_dbus_daemon("a_bus_that_refuses_the_call_is_access_denied") {
        return;
    }
    let node = Node::start(Some(Answer::Done), true).await;
    let err = restart_k3s(&Node::default_restart(), node.root())
        .await
        .expect_err("denied")
        .to_string();
    assert!(
        err.contains("org.freedesktop.DBus.Error.AccessDenied") && err.contains("root"),
        "{err}"
    );
    assert_eq!(node.calls(), ["Subscribe"], "the bus stopped the call");
}

#[tokio::test]
async fn a_bus_without_systemd_is_named() {
    if !have_dbus_daemon("a_bus_without_systemd_is_named") {
        return;
    }
    let node = Node::start(None, false).await;
    let err = restart_k3s_within(
        &Node::default_restart(),
        node.root(),
        Duration::from_secs(5),
    )
    .await
    .expect_err("no systemd")
    .to_string();
    assert!(
        err.contains("no systemd on the bus at unix:path=") && err.contains("systemd-bus"),
        "{err}"
    );
}

#[tokio::test]
async fn no_socket_names_the_path_and_the_fix() {
    // Needs no dbus-daemon: nothing is there.
    let root = tempfile::tempdir().expect("tempdir");
    let err = restart_k3s(&Node::default_restart(), root.path())
        .await
        .expect_err("no socket")
        .to_string();
    let socket: PathBuf = root.path().join("run/dbus/system_bus_socket");
    assert!(
        err.contains(&format!("unix:path={}", socket.display()))
            && err.contains("no socket there")
            && err.contains("--root")
            && err.contains("restart-command"),
        "{err}"
    );
}

#[tokio::test]
async fn a_socket_that_never_answers_is_bounded() {
    // Needs no dbus-daemon: a listener that accepts and says nothing.
    let root = tempfile::tempdir().expect("tempdir");
    let socket = root.path().join("run/dbus/system_bus_socket");
    std::fs::create_dir_all(socket.parent().expect("dir")).expect("mkdir");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let started = Instant::now();
    let err = restart_k3s_within(
        &Node::default_restart(),
        root.path(),
        Duration::from_millis(500),
    )
    .await
    .expect_err("no answer")
    .to_string();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        err.contains("no answer from the D-Bus system bus") && err.contains("k3s.service"),
        "{err}"
    );
}
