//! The remediation steps the machine asks for, carried out: restoring
//! subnet.env (the same code as `node restore`), restarting k3s (a
//! configured argv, or systemd over D-Bus, [`crate::systemd`]), and the probe (`node probe`, run as a child
//! process so a hung plugin or a mount namespace never touches the agent).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rebootguard_node::Settings;
use rebootguard_node::restore::{self, Decision};

use crate::config::{RebootHow, Restart};
use crate::systemd;

/// Restores subnet.env like `node restore`: this node's backup
/// (cross-checked with the API), else regenerated from the API. What it
/// did, or why nothing could be done.
pub async fn restore(settings: &Settings) -> Result<String, String> {
    let outcome = restore::run(settings, false).await;
    let warnings = if outcome.plan.warnings.is_empty() {
        String::new()
    } else {
        format!(" ({})", outcome.plan.warnings.join("; "))
    };
    match (&outcome.plan.decision, outcome.applied) {
        (Decision::Keep, _) => Ok("subnet.env is valid again; left as it is".into()),
        (
            Decision::Restore {
                generation,
                verified,
            },
            true,
        ) => Ok(format!(
            "restored subnet.env from backup generation {generation} ({}){warnings}",
            if *verified {
                "verified against the API"
            } else {
                "the API could not cross-check it"
            }
        )),
        (Decision::Regenerate { because, .. }, true) => Ok(format!(
            "regenerated subnet.env from the API and net-conf.json: {because}"
        )),
        (Decision::Refuse { reason }, _) => Err(format!("subnet.env left alone: {reason}")),
        (Decision::Nothing { missing }, _) => Err(format!(
            "subnet.env could not be restored; missing: {}",
            missing.join("; ")
        )),
        (_, false) => Err(format!("subnet.env could not be written{warnings}")),
    }
}

/// How long a k3s restart may take before it counts as failed.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// Restarts k3s as configured, within [`RESTART_TIMEOUT`]: the configured
/// argv, or systemd's `RestartUnit` over D-Bus. `root` is the host root:
/// where the unit files are looked for, and the system bus socket is.
pub async fn restart_k3s(how: &Restart, root: &Path) -> Result<(), String> {
    restart_k3s_within(how, root, RESTART_TIMEOUT).await
}

/// [`restart_k3s`] with another bound (tests).
pub async fn restart_k3s_within(
    how: &Restart,
    root: &Path,
    timeout: Duration,
) -> Result<(), String> {
    match how {
        Restart::Command(argv) => run(argv, timeout).await,
        Restart::Systemd { unit, bus } => {
            let unit = unit.clone().unwrap_or_else(|| default_unit(root));
            let address = systemd::bus_address(bus.as_deref(), root).map_err(|e| e.to_string())?;
            tracing::info!(%address, unit, "asking systemd to restart k3s over D-Bus");
            systemd::restart(&address, &unit, timeout)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// How long a reboot may take to be *queued* (the command to return, or
/// systemd to accept the job).
pub const REBOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// Reboots the host as configured: the configured argv, or systemd's
/// `reboot.target` over D-Bus. Returns once the reboot is under way.
pub async fn reboot(how: &RebootHow, root: &Path) -> Result<(), String> {
    match how {
        RebootHow::Command(argv) => run(argv, REBOOT_TIMEOUT).await,
        RebootHow::Systemd { bus } => {
            let address = systemd::bus_address(bus.as_deref(), root).map_err(|e| e.to_string())?;
            tracing::warn!(%address, "asking systemd to reboot the node over D-Bus");
            systemd::reboot(&address, REBOOT_TIMEOUT)
                .await
                .map(|job| tracing::info!(job, "systemd queued the reboot"))
                .map_err(|e| e.to_string())
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
pub async fn run(argv: &[String], timeout: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "{program} did not finish within {timeout:?} (killed)"
        )),
        Ok(Err(e)) => Err(format!("{program} failed: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(format!(
                "{program} exited with {}: {}",
                out.status,
                last.trim()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_run_as_argv_and_report_failures() {
        let ok = run(&["true".into()], Duration::from_secs(5)).await;
        assert_eq!(ok, Ok(()));
        // A shell metacharacter is an argument, never interpreted.
        let literal = run(
            &["test".into(), "a;b".into(), "=".into(), "a;b".into()],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(literal, Ok(()));
        let failed = run(
            &["sh".into(), "-c".into(), "echo nope >&2; exit 3".into()],
            Duration::from_secs(5),
        )
        .await
        .expect_err("fails");
        assert!(
            failed.contains("exit status: 3") && failed.contains("nope"),
            "{failed}"
        );
        let missing = run(&["/nonexistent/k3s-restart".into()], Duration::from_secs(5))
            .await
            .expect_err("fails");
        assert!(
            missing.contains("cannot run /nonexistent/k3s-restart"),
            "{missing}"
        );
        let slow = run(&["sleep".into(), "10".into()], Duration::from_millis(200))
            .await
            .expect_err("times out");
        assert!(slow.contains("did not finish"), "{slow}");
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
