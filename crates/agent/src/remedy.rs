//! The remediation steps the machine asks for, carried out: restoring
//! subnet.env (the same code as `node restore`), restarting k3s (a
//! configured argv, or systemd over D-Bus, [`crate::systemd`]), and the probe (`node probe`, run as a child
//! process so a hung plugin or a mount namespace never touches the agent).

use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rebootguard_errors::Failure;
use rebootguard_node::Settings;
use rebootguard_node::restore::{self, Decision};

use crate::config::{RebootHow, Restart};
use crate::systemd;

/// Why a remedy failed. Retryable ([`Error::is_retryable`]): a restore that
/// lacked something or could not write (a backup, the API or the disk may
/// come back), a command that failed or timed out, and systemd's answers
/// but a bad bus address. A refused restore and an empty command are not:
/// each needs a fix first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The restore judged writing unsafe.
    #[error("subnet.env left alone: {0}")]
    RestoreRefused(String),
    /// Neither a backup nor the API gave enough to write a file.
    #[error("subnet.env could not be restored; missing: {}", .0.join("; "))]
    RestoreMissing(Vec<String>),
    /// The restore decided what to write but did not write it.
    #[error("subnet.env could not be written{}", warnings(.0))]
    RestoreUnwritten(Vec<String>),
    /// The configured command is empty.
    #[error("empty command")]
    EmptyCommand,
    /// The command could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Waiting for the command failed.
    #[error("{program} failed")]
    Wait {
        /// The program.
        program: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The command ran past its bound and was killed.
    #[error("{program} did not finish within {timeout:?} (killed)")]
    Timeout {
        /// The program.
        program: String,
        /// The bound.
        timeout: Duration,
    },
    /// The command exited unsuccessfully.
    #[error("{program} exited with {status}: {stderr}")]
    Exited {
        /// The program.
        program: String,
        /// How it exited.
        status: ExitStatus,
        /// The last non-empty line of its stderr.
        stderr: String,
    },
    /// systemd over D-Bus failed.
    #[error(transparent)]
    Systemd(#[from] systemd::Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::judged(error, Error::is_retryable)
    }
}

impl Error {
    /// Whether the same remedy may succeed later without a change of
    /// configuration.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RestoreRefused(_) | Error::EmptyCommand => false,
            Error::Systemd(e) => !matches!(e, systemd::Error::Address { .. }),
            Error::RestoreMissing(_)
            | Error::RestoreUnwritten(_)
            | Error::Spawn { .. }
            | Error::Wait { .. }
            | Error::Timeout { .. }
            | Error::Exited { .. } => true,
        }
    }
}

/// ` (a; b)`, or nothing without warnings.
fn warnings(list: &[String]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" ({})", list.join("; "))
    }
}

/// Restores subnet.env like `node restore`: this node's backup
/// (cross-checked with the API), else regenerated from the API. What it
/// did, or why nothing could be done.
pub async fn restore(settings: &Settings) -> Result<String, Error> {
    let outcome = restore::run(settings, false).await;
    let plan = outcome.plan;
    match (plan.decision, outcome.applied) {
        (Decision::Keep, _) => Ok("subnet.env is valid again; left as it is".into()),
        (
            Decision::Restore {
                generation,
                verified,
            },
            true,
        ) => Ok(format!(
            "restored subnet.env from backup generation {generation} ({}){}",
            if verified {
                "verified against the API"
            } else {
                "the API could not cross-check it"
            },
            warnings(&plan.warnings)
        )),
        (Decision::Regenerate { because, .. }, true) => Ok(format!(
            "regenerated subnet.env from the API and net-conf.json: {because}"
        )),
        (Decision::Refuse { reason }, _) => Err(Error::RestoreRefused(reason)),
        (Decision::Nothing { missing }, _) => Err(Error::RestoreMissing(missing)),
        (_, false) => Err(Error::RestoreUnwritten(plan.warnings)),
    }
}

/// How long a k3s restart may take before it counts as failed.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// Restarts k3s as configured, within [`RESTART_TIMEOUT`]: the configured
/// argv, or systemd's `RestartUnit` over D-Bus. `root` is the host root:
/// where the unit files are looked for, and the system bus socket is.
pub async fn restart_k3s(how: &Restart, root: &Path) -> Result<(), Error> {
    restart_k3s_within(how, root, RESTART_TIMEOUT).await
}

/// [`restart_k3s`] with another bound (tests).
pub async fn restart_k3s_within(
    how: &Restart,
    root: &Path,
    timeout: Duration,
) -> Result<(), Error> {
    match how {
        Restart::Command(argv) => run(argv, timeout).await,
        Restart::Systemd { unit, bus } => {
            let unit = unit.clone().unwrap_or_else(|| default_unit(root));
            let address = systemd::bus_address(bus.as_deref(), root)?;
            tracing::info!(%address, unit, "asking systemd to restart k3s over D-Bus");
            Ok(systemd::restart(&address, &unit, timeout).await?)
        }
    }
}

/// How long a reboot may take to be *queued* (the command to return, or
/// systemd to accept the job).
pub const REBOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// Reboots the host as configured: the configured argv, or systemd's
/// `reboot.target` over D-Bus. Returns once the reboot is under way.
pub async fn reboot(how: &RebootHow, root: &Path) -> Result<(), Error> {
    match how {
        RebootHow::Command(argv) => run(argv, REBOOT_TIMEOUT).await,
        RebootHow::Systemd { bus } => {
            let address = systemd::bus_address(bus.as_deref(), root)?;
            tracing::warn!(%address, "asking systemd to reboot the node over D-Bus");
            let job = systemd::reboot(&address, REBOOT_TIMEOUT).await?;
            tracing::info!(job, "systemd queued the reboot");
            Ok(())
        }
    }
}

/// `k3s.service` where it is installed, else the agent-only `k3s-agent.service`.
pub fn default_unit(root: &Path) -> String {
    let installed = |unit: &str| {
        [
            "etc/systemd/system",
            "lib/systemd/system",
            "usr/lib/systemd/system",
        ]
        .iter()
        .any(|dir| root.join(dir).join(unit).exists())
    };
    if !installed("k3s.service") && installed("k3s-agent.service") {
        "k3s-agent.service".into()
    } else {
        "k3s.service".into()
    }
}

/// Runs an argv (never a shell) within `timeout`; its stderr's last line on failure.
pub async fn run(argv: &[String], timeout: Duration) -> Result<(), Error> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::EmptyCommand);
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: program.clone(),
            source,
        })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(Error::Timeout {
            program: program.clone(),
            timeout,
        }),
        Ok(Err(source)) => Err(Error::Wait {
            program: program.clone(),
            source,
        }),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(Error::Exited {
                program: program.clone(),
                status: out.status,
                stderr: last.trim().to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_run_as_argv_and_report_failures() {
        run(&["true".into()], Duration::from_secs(5))
            .await
            .expect("true runs");
        // A shell metacharacter is an argument, never interpreted.
        run(
            &["test".into(), "a;b".into(), "=".into(), "a;b".into()],
            Duration::from_secs(5),
        )
        .await
        .expect("the argument is literal");
        let failed = run(
            &["sh".into(), "-c".into(), "echo nope >&2; exit 3".into()],
            Duration::from_secs(5),
        )
        .await
        .expect_err("fails");
        assert!(failed.is_retryable());
        let failed = failed.to_string();
        assert!(
            failed.contains("exit status: 3") && failed.contains("nope"),
            "{failed}"
        );
        let missing = run(&["/nonexistent/k3s-restart".into()], Duration::from_secs(5))
            .await
            .expect_err("fails");
        assert!(matches!(missing, Error::Spawn { .. }), "{missing:?}");
        // The OS's reason follows in the chain.
        let missing = rebootguard_errors::chain(&missing);
        assert!(
            missing.contains("cannot run /nonexistent/k3s-restart: No such file"),
            "{missing}"
        );
        let slow = run(&["sleep".into(), "10".into()], Duration::from_millis(200))
            .await
            .expect_err("times out");
        assert!(slow.is_retryable());
        assert!(slow.to_string().contains("did not finish"), "{slow}");
        let empty = run(&[], Duration::from_secs(5)).await.expect_err("empty");
        assert!(!empty.is_retryable(), "a configuration to fix");
    }

    #[test]
    fn the_unit_follows_what_is_installed() {
        let root = tempfile::tempdir().expect("tempdir");
        assert_eq!(default_unit(root.path()), "k3s.service");
        let dir = root.path().join("etc/systemd/system");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("k3s-agent.service"), "").expect("write");
        assert_eq!(default_unit(root.path()), "k3s-agent.service");
    }
}
