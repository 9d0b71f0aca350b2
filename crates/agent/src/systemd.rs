//! k3s restarted by systemd over D-Bus, as `systemctl restart` does it,
//! with no `systemctl` and no shell: connect to the system bus, subscribe
//! to the manager's `JobRemoved` signal, call
//! `org.freedesktop.systemd1.Manager.RestartUnit(unit, "replace")` and wait,
//! bounded, for the job's result.
//!
//! The bus is the host's: `unix:path=<root>/run/dbus/system_bus_socket`
//! by default, so an agent in a pod with the host's `/` at `/host` reaches
//! the host's systemd through `/host/run/dbus/system_bus_socket` (no
//! `hostPID`, no `nsenter`), or the `systemd-bus` address when set.
//!
//! What to call and what its answers mean ([`bus_address`], [`job_result`],
//! [`refused`], [`connect_problem`]) are pure and tested without a bus; the
//! round trip ([`restart`]) is tested against a real `dbus-daemon` with a
//! stand-in systemd (`tests/systemd_dbus.rs`). Every error names the unit
//! or the bus, what went wrong and what to do: it becomes the Node
//! condition's message and an Event, read by someone who has only that.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use zbus::DBusError;
use zbus::address::transport::{Transport, Unix, UnixSocket};
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

/// The system bus socket, under the host root.
pub const SYSTEM_BUS_SOCKET: &str = "run/dbus/system_bus_socket";

/// The job mode `systemctl restart` uses: replace a conflicting queued job.
pub const MODE: &str = "replace";

/// The unit a reboot starts.
pub const REBOOT_UNIT: &str = "reboot.target";
/// The mode `systemctl reboot` starts it in: nothing may cancel it once queued.
pub const REBOOT_MODE: &str = "replace-irreversibly";

/// systemd's error for a unit it cannot find.
pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// systemd's manager, as far as a restart needs it.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_blocking = false
)]
trait Manager {
    /// Asks the manager to send its signals (systemd sends `JobRemoved` on
    /// the system bus only while someone is subscribed).
    fn subscribe(&self) -> zbus::Result<()>;

    /// Queues a restart job for `name`; the job's object path.
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    /// Queues a start job for `name`; the job's object path.
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    /// A job finished: its id, object path, unit and result.
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// Why a restart over D-Bus failed. All but `Address` may pass on a later
/// try (a bus or systemd that was restarting, a unit that was fixed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configured `systemd-bus` is not a D-Bus address.
    #[error(
        "agent systemd-bus = {value:?} is not a D-Bus address ({detail}); use e.g. \"unix:path=/run/dbus/system_bus_socket\""
    )]
    Address {
        /// As configured.
        value: String,
        /// What the parser said.
        detail: String,
    },
    /// Failed to connect to the bus (or to be let on it).
    #[error("failed to connect to the D-Bus system bus at {address}: {problem}")]
    Connect {
        /// The bus address.
        address: String,
        /// What went wrong, and the fix.
        problem: String,
    },
    /// The bus or systemd refused the restart.
    #[error("asking systemd to restart {unit} failed: {problem}")]
    Refused {
        /// The unit.
        unit: String,
        /// What was said, and the fix.
        problem: String,
    },
    /// The restart job finished, but not with `done`.
    #[error(
        "restarting {unit} failed: the job's result is \"{result}\" ({meaning}); see `systemctl status {unit}` and `journalctl -u {unit}` on the node"
    )]
    Job {
        /// The unit.
        unit: String,
        /// systemd's word for it (`failed`, `timeout`, ...).
        result: String,
        /// What that means.
        meaning: String,
    },
    /// No answer from the bus or systemd before the job was even queued.
    #[error(
        "no answer from the D-Bus system bus at {address} within {}s while asking systemd to restart {unit}: is the bus or systemd hung? See `systemctl status dbus` on the node",
        .waited.as_secs_f32()
    )]
    NoAnswer {
        /// The bus address.
        address: String,
        /// The unit.
        unit: String,
        /// How long it was given.
        waited: Duration,
    },
    /// The job was queued but did not finish in time.
    #[error(
        "systemd did not finish restarting {unit} within {}s (job {job}; it may still be running): see `systemctl status {unit}` and `journalctl -u {unit}` on the node",
        .waited.as_secs_f32()
    )]
    Timeout {
        /// The unit.
        unit: String,
        /// The job's object path.
        job: String,
        /// How long it was given.
        waited: Duration,
    },
    /// The connection ended before the job's result came.
    #[error(
        "the D-Bus connection to {address} closed before systemd said how restarting {unit} ended; see `systemctl status {unit}` on the node"
    )]
    Closed {
        /// The bus address.
        address: String,
        /// The unit.
        unit: String,
    },
    /// Anything else the D-Bus library reported.
    #[error("talking to systemd at {address} about {unit} failed: {detail}")]
    Bus {
        /// The bus address.
        address: String,
        /// The unit.
        unit: String,
        /// What the library said.
        detail: String,
    },
}

/// The bus to ask: `configured` (the `systemd-bus` key) as written, else the
/// system bus socket under the host root.
pub fn bus_address(configured: Option<&str>, root: &Path) -> Result<zbus::Address, Error> {
    match configured {
        Some(text) => text.parse().map_err(|e: zbus::Error| Error::Address {
            value: text.to_owned(),
            detail: match e {
                zbus::Error::Address(detail) => detail,
                other => other.to_string(),
            },
        }),
        // Built rather than parsed: a root with `,` or `=` in it stays a path.
        None => Ok(zbus::Address::new(Transport::Unix(Unix::new(
            UnixSocket::File(root.join(SYSTEM_BUS_SOCKET)),
        )))),
    }
}

/// What a `JobRemoved` result means: `done` is the only success
/// (systemd's `JobResult`, `systemctl`'s reading of it).
pub fn job_result(unit: &str, result: &str) -> Result<(), Error> {
    let meaning = match result {
        "done" => return Ok(()),
        "failed" => "the unit failed to stop or to start",
        "timeout" => "the unit did not start within its start timeout",
        "canceled" => {
            "the job was canceled before it finished (a stop, or another job replaced it)"
        }
        "dependency" => "a unit it requires failed to start",
        "skipped" => "systemd skipped the job for the unit's state",
        "invalid" => "the job does not apply to this unit",
        "assert" => "an Assert... setting of the unit failed",
        "unsupported" => "the unit's type is not supported here",
        "collected" => "the unit was garbage-collected before the job ran",
        "once" => "the unit may only be started once",
        "frozen" => "the unit is frozen",
        "concurrency" => "the unit's slice is at its concurrency limit",
        _ => "a result this agent does not know",
    };
    Err(Error::Job {
        unit: unit.to_owned(),
        result: result.to_owned(),
        meaning: meaning.to_owned(),
    })
}

/// What a D-Bus error reply to the restart means, and what to do.
pub fn refused(unit: &str, address: &str, name: &str, description: Option<&str>) -> Error {
    let said = match description {
        Some(d) if !d.is_empty() => format!("{name}: {d}"),
        _ => name.to_owned(),
    };
    let problem = match name {
        NO_SUCH_UNIT => format!(
            "systemd has no such unit ({said}); set k3s-unit in the [agent] table to the unit k3s runs as (`systemctl list-units 'k3s*'`), or restart-command"
        ),
        "org.freedesktop.systemd1.UnitMasked" => {
            format!("the unit is masked ({said}); `systemctl unmask {unit}` if k3s should run")
        }
        "org.freedesktop.systemd1.LoadFailed" => {
            format!("the unit failed to load ({said}); see `systemctl status {unit}`")
        }
        "org.freedesktop.DBus.Error.AccessDenied"
        | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => format!(
            "access denied ({said}); only root may restart units: run the agent as root (uid 0), as the shipped systemd unit and DaemonSet do"
        ),
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner" => {
            format!(
                "no systemd on the bus at {address} ({said}); systemd-bus must be the host's system bus"
            )
        }
        "org.freedesktop.DBus.Error.UnknownMethod"
        | "org.freedesktop.DBus.Error.UnknownObject"
        | "org.freedesktop.DBus.Error.UnknownInterface" => format!(
            "what answers as org.freedesktop.systemd1 on {address} is not systemd's manager ({said}); systemd-bus must be the host's system bus"
        ),
        _ => said,
    };
    Error::Refused {
        unit: unit.to_owned(),
        problem,
    }
}

/// What a failed connection means, and what to do.
pub fn connect_problem(kind: std::io::ErrorKind, detail: &str) -> String {
    use std::io::ErrorKind;
    match kind {
        ErrorKind::NotFound => format!(
            "no socket there ({detail}); the host runs no D-Bus system bus (`systemctl status dbus`), or this is not the host's: the agent's --root must be the host's / (in the DaemonSet, /host), or set systemd-bus, or restart k3s with restart-command"
        ),
        ErrorKind::PermissionDenied => {
            format!("permission denied ({detail}); run the agent as root (uid 0)")
        }
        ErrorKind::ConnectionRefused => format!(
            "nothing listens on it ({detail}); is the D-Bus system bus running? `systemctl status dbus`"
        ),
        _ => detail.to_owned(),
    }
}

fn connect_error(address: &str, e: zbus::Error) -> Error {
    let problem = match &e {
        zbus::Error::Connection(io, _) | zbus::Error::InputOutput(io) => {
            connect_problem(io.kind(), &io.to_string())
        }
        zbus::Error::Handshake(detail) => format!(
            "the bus did not let this agent on ({detail}); systemd-bus must be a D-Bus bus that accepts uid 0 (EXTERNAL authentication)"
        ),
        zbus::Error::Unsupported => {
            "that kind of address cannot be connected to (use unix:path=...)".to_owned()
        }
        other => other.to_string(),
    };
    Error::Connect {
        address: address.to_owned(),
        problem,
    }
}

fn call_error(unit: &str, address: &str, e: zbus::Error) -> Error {
    match &e {
        zbus::Error::MethodError(name, description, _) => {
            refused(unit, address, name.as_str(), description.as_deref())
        }
        zbus::Error::FDO(fdo) => refused(unit, address, fdo.name().as_str(), fdo.description()),
        _ => Error::Bus {
            address: address.to_owned(),
            unit: unit.to_owned(),
            detail: e.to_string(),
        },
    }
}

/// systemd's manager on the bus at `address`, for a job on `unit` (named
/// in the errors). The proxy owns its connection.
async fn manager(address: &zbus::Address, unit: &str) -> Result<ManagerProxy<'static>, Error> {
    let shown = address.to_string();
    let connection = zbus::connection::Builder::address(address.clone())
        .map_err(|e| connect_error(&shown, e))?
        .build()
        .await
        .map_err(|e| connect_error(&shown, e))?;
    ManagerProxy::builder(&connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|e| call_error(unit, &shown, e))
}

/// Restarts `unit` through systemd on the bus at `address`, like
/// `systemctl restart`: done when the job's `JobRemoved` says `done`, an
/// error otherwise; everything (connecting included) bounded by `timeout`.
pub async fn restart(address: &zbus::Address, unit: &str, timeout: Duration) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    let shown = address.to_string();
    let queued = async {
        let manager = manager(address, unit).await?;
        // The match rule is in place before the job exists: a restart can
        // end before RestartUnit's reply reaches us.
        let removed = manager
            .receive_job_removed()
            .await
            .map_err(|e| call_error(unit, &shown, e))?;
        match manager.subscribe().await {
            // Another client of this connection subscribed: as good.
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
            other => other.map_err(|e| call_error(unit, &shown, e))?,
        }
        let job = manager
            .restart_unit(unit, MODE)
            .await
            .map_err(|e| call_error(unit, &shown, e))?;
        tracing::info!(unit, job = job.as_str(), "systemd queued the restart");
        Ok::<_, Error>((removed, job))
    };
    let (mut removed, job) = tokio::time::timeout_at(deadline, queued)
        .await
        .map_err(|_| Error::NoAnswer {
            address: shown.clone(),
            unit: unit.to_owned(),
            waited: timeout,
        })??;
    let finished = async {
        while let Some(signal) = removed.next().await {
            // Other jobs' signals (and malformed ones) are not ours.
            let Ok(args) = signal.args() else { continue };
            if *args.job() == *job {
                return job_result(unit, args.result());
            }
        }
        Err(Error::Closed {
            address: shown.clone(),
            unit: unit.to_owned(),
        })
    };
    tokio::time::timeout_at(deadline, finished)
        .await
        .map_err(|_| Error::Timeout {
            unit: unit.to_owned(),
            job: job.to_string(),
            waited: timeout,
        })?
}

/// Reboots the host through systemd on the bus at `address`, as
/// `systemctl reboot` falls back to doing without logind: a start job for
/// `reboot.target`, irreversible. Done once systemd queued it (the job's
/// path); nothing waits for the end, which is the machine going down.
pub async fn reboot(address: &zbus::Address, timeout: Duration) -> Result<String, Error> {
    let shown = address.to_string();
    let queued = async {
        let manager = manager(address, REBOOT_UNIT).await?;
        let job = manager
            .start_unit(REBOOT_UNIT, REBOOT_MODE)
            .await
            .map_err(|e| call_error(REBOOT_UNIT, &shown, e))?;
        Ok::<_, Error>(job.to_string())
    };
    tokio::time::timeout(timeout, queued)
        .await
        .map_err(|_| Error::NoAnswer {
            address: shown.clone(),
            unit: REBOOT_UNIT.to_owned(),
            waited: timeout,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bus_is_the_hosts_system_bus_under_root() {
        let host = bus_address(None, Path::new("/host")).expect("an address");
        assert_eq!(
            host.to_string(),
            "unix:path=/host/run/dbus/system_bus_socket"
        );
        let on_host = bus_address(None, Path::new("/")).expect("an address");
        assert_eq!(on_host.to_string(), "unix:path=/run/dbus/system_bus_socket");
        // A root that would break an address string stays one path.
        let odd = bus_address(None, Path::new("/srv/a,b=c")).expect("an address");
        let Transport::Unix(unix) = odd.transport() else {
            panic!("a unix socket")
        };
        assert_eq!(
            unix.path(),
            &UnixSocket::File("/srv/a,b=c/run/dbus/system_bus_socket".into())
        );
        let configured =
            bus_address(Some("unix:path=/run/other/bus"), Path::new("/host")).expect("an address");
        assert_eq!(configured.to_string(), "unix:path=/run/other/bus");
    }

    #[test]
    fn a_bad_address_is_named() {
        let err = bus_address(Some("/run/dbus/system_bus_socket"), Path::new("/"))
            .expect_err("no transport");
        let text = err.to_string();
        assert!(
            text.contains("systemd-bus = \"/run/dbus/system_bus_socket\"")
                && text.contains("unix:path="),
            "{text}"
        );
    }

    #[test]
    fn only_done_is_success() {
        assert_eq!(job_result("k3s.service", "done"), Ok(()));
        for result in [
            "failed",
            "timeout",
            "canceled",
            "dependency",
            "skipped",
            "new-one",
        ] {
            let text = job_result("k3s.service", result)
                .expect_err(result)
                .to_string();
            assert!(
                text.contains("k3s.service")
                    && text.contains(&format!("\"{result}\""))
                    && text.contains("journalctl -u k3s.service"),
                "{text}"
            );
        }
        let timeout = job_result("k3s-agent.service", "timeout").expect_err("timeout");
        assert!(timeout.to_string().contains("start timeout"), "{timeout}");
    }

    #[test]
    fn refusals_name_the_problem_and_the_fix() {
        let text = |name: &str, description: Option<&str>| {
            refused(
                "k3s.service",
                "unix:path=/host/run/dbus/system_bus_socket",
                name,
                description,
            )
            .to_string()
        };
        let missing = text(NO_SUCH_UNIT, Some("Unit k3s.service not found."));
        assert!(
            missing.contains("k3s.service")
                && missing.contains("Unit k3s.service not found.")
                && missing.contains("k3s-unit"),
            "{missing}"
        );
        let denied = text(
            "org.freedesktop.DBus.Error.AccessDenied",
            Some("Permission denied"),
        );
        assert!(
            denied.contains("access denied") && denied.contains("root"),
            "{denied}"
        );
        let nobody = text("org.freedesktop.DBus.Error.ServiceUnknown", None);
        assert!(
            nobody.contains("no systemd on the bus at unix:path=/host/run/dbus/system_bus_socket")
                && nobody.contains("systemd-bus"),
            "{nobody}"
        );
        assert!(text("org.freedesktop.systemd1.UnitMasked", None).contains("systemctl unmask"));
        let other = text("org.example.Odd", Some("something"));
        assert!(other.contains("org.example.Odd: something"), "{other}");
    }

    #[test]
    fn connection_failures_say_what_to_do() {
        use std::io::ErrorKind;
        let missing = connect_problem(ErrorKind::NotFound, "No such file or directory");
        assert!(
            missing.contains("--root") && missing.contains("systemd-bus"),
            "{missing}"
        );
        assert!(connect_problem(ErrorKind::PermissionDenied, "denied").contains("root"));
        assert!(
            connect_problem(ErrorKind::ConnectionRefused, "refused")
                .contains("systemctl status dbus")
        );
    }
}
