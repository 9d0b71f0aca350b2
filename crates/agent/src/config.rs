//! The agent's settings: the config file's `[agent]` table (every key
//! optional, unknown keys refused), under the flags, resolved into plain
//! values. Parsing touches nothing; secrets are read only when an alert
//! is sent (see [`crate::alert`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rebootguard_node::settings::parse_duration;
use serde::Deserialize;

use crate::machine::Policy;

/// The `[agent]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    /// Manage the readiness taint.
    pub taint: Option<bool>,
    /// Restart k3s by running this argv (never through a shell).
    pub restart_command: Option<Vec<String>>,
    /// Restart this systemd unit over D-Bus (default: k3s.service, else k3s-agent.service).
    pub k3s_unit: Option<String>,
    /// The D-Bus system bus systemd is on (default: the socket under `--root`).
    pub systemd_bus: Option<String>,
    /// How long a restart-worthy failure must last before restarting k3s.
    pub restart_grace: Option<String>,
    /// How long to wait after a restart before giving up.
    pub restart_settle: Option<String>,
    /// Restart budget: at most this many ...
    pub max_restarts: Option<usize>,
    /// ... per this window.
    pub restart_window: Option<String>,
    /// Condition heartbeat.
    pub heartbeat: Option<String>,
    /// Slow full check besides the event-driven ones.
    pub check_interval: Option<String>,
    /// Real CNI ADD/DEL probe.
    pub probe_interval: Option<String>,
    /// Bound on one probe.
    pub probe_timeout: Option<String>,
    /// Namespace of the restart Lease.
    pub lease_namespace: Option<String>,
    /// Name of the restart Lease.
    pub lease_name: Option<String>,
    /// The Lease's duration (a vanished holder blocks at most this long).
    pub lease_ttl: Option<String>,
    /// `/metrics` and `/healthz` address; `"off"` for none.
    pub listen: Option<String>,
    /// The condition must be False this long before an alert fires.
    pub alert_after: Option<String>,
    /// At most one alert per this interval.
    pub alert_interval: Option<String>,
    /// Reboot when asked through the Node (default true; the node must be cordoned).
    pub reboot_on_request: Option<bool>,
    /// Reboot by running this argv (default: systemd's `reboot.target` over D-Bus).
    pub reboot_command: Option<Vec<String>>,
    /// The file whose presence means the node needs a reboot; `"off"` for none.
    pub reboot_sentinel: Option<String>,
    /// Webhooks.
    #[serde(default)]
    pub alert: Vec<AlertFile>,
}

/// One `[[agent.alert]]` webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertFile {
    /// `json` (default), `slack` or `ntfy`.
    pub kind: Option<AlertKind>,
    /// The URL, when it is no secret (an ntfy topic on your own server).
    pub url: Option<String>,
    /// A file holding the URL (Slack's webhook URLs are secrets).
    pub url_file: Option<PathBuf>,
    /// An environment variable holding the URL.
    pub url_env: Option<String>,
    /// A file holding a bearer token.
    pub token_file: Option<PathBuf>,
    /// An environment variable holding a bearer token.
    pub token_env: Option<String>,
}

pub use rebootguard_alert::webhook::{Format as AlertKind, Secret, Target as AlertTarget};

/// How k3s is restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// This argv.
    Command(Vec<String>),
    /// systemd's `RestartUnit` over D-Bus ([`crate::systemd`]).
    Systemd {
        /// The unit (`None`: k3s.service, else k3s-agent.service).
        unit: Option<String>,
        /// The bus address (`None`: `unix:path=<root>/run/dbus/system_bus_socket`).
        bus: Option<String>,
    },
}

/// How the node is rebooted when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebootHow {
    /// This argv.
    Command(Vec<String>),
    /// systemd's `StartUnit("reboot.target")` over D-Bus, as `systemctl reboot` does.
    Systemd {
        /// The bus address (`None`: the system bus under the root).
        bus: Option<String>,
    },
}

/// Reboots on request and the reboot-required sentinel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reboot {
    /// Honour reboot requests on the Node.
    pub on_request: bool,
    /// How.
    pub how: RebootHow,
    /// The sentinel, as a host path (under `--root` when it is read).
    pub sentinel: Option<PathBuf>,
}

/// The default reboot-required sentinel (Debian's and Ubuntu's).
pub const DEFAULT_SENTINEL: &str = "/var/run/reboot-required";

/// The restart Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Duration.
    pub ttl: Duration,
}

/// Everything the agent runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The machine's tunables.
    pub policy: Policy,
    /// Condition heartbeat.
    pub heartbeat: Duration,
    /// Slow full check.
    pub check_interval: Duration,
    /// Bound on one probe.
    pub probe_timeout: Duration,
    /// How k3s is restarted.
    pub restart: Restart,
    /// Reboots on request.
    pub reboot: Reboot,
    /// The restart Lease.
    pub lease: Lease,
    /// `/metrics` and `/healthz`.
    pub listen: Option<SocketAddr>,
    /// Webhooks.
    pub alerts: Vec<AlertTarget>,
    /// Report only: never restore or restart.
    pub dry_run: bool,
}

/// What the flags say (they win over the file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--taint` / `--no-taint`.
    pub taint: Option<bool>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
}

/// Why the agent's settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `[agent]` table does not parse.
    #[error("the config file's [agent] table is invalid: {0}")]
    Parse(String),
    /// A duration that is not one.
    #[error("agent {field} = {value:?} is not a duration (use e.g. 500ms, 30s, 5m, 1h)")]
    Duration {
        /// The key.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// A listen address that is not one.
    #[error("agent listen = {0:?} is not an address (use e.g. 127.0.0.1:9478, or \"off\")")]
    Listen(String),
    /// An empty restart command.
    #[error(
        "agent restart-command is empty: give the argv, e.g. [\"systemctl\", \"restart\", \"k3s\"]"
    )]
    EmptyCommand,
    /// An empty reboot command.
    #[error("agent reboot-command is empty: give the argv, e.g. [\"systemctl\", \"reboot\"]")]
    EmptyRebootCommand,
    /// An alert without a URL, or with two.
    #[error(
        "agent alert #{0} needs exactly one of url, url-file or url-env (a webhook URL with a secret in it belongs in a file or the environment)"
    )]
    AlertUrl(usize),
    /// An alert with two token sources.
    #[error("agent alert #{0} has both token-file and token-env; keep one")]
    AlertToken(usize),
    /// A `systemd-bus` that is not a D-Bus address.
    #[error(transparent)]
    Bus(#[from] crate::systemd::Error),
    /// Values that contradict each other.
    #[error("agent {0}")]
    Inconsistent(String),
}

impl File {
    /// Reads the `[agent]` table.
    pub fn from_table(table: &toml::Table) -> Result<File, Error> {
        File::deserialize(toml::Value::Table(table.clone()))
            .map_err(|e| Error::Parse(e.message().to_owned()))
    }
}

/// The default `/metrics` address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9478";

/// Resolves the file's values under the flags, with defaults.
pub fn resolve(file: File, flags: &Flags) -> Result<Config, Error> {
    let duration = |field: &'static str, value: &Option<String>, default: u64| match value {
        None => Ok(Duration::from_millis(default)),
        Some(v) => parse_duration(v).ok_or_else(|| Error::Duration {
            field,
            value: v.clone(),
        }),
    };
    if let Some(bus) = &file.systemd_bus {
        if file.restart_command.is_some() && file.reboot_command.is_some() {
            return Err(Error::Inconsistent(
                "systemd-bus is for restarting k3s and rebooting over D-Bus, but restart-command and reboot-command are both set: drop systemd-bus or a command".into(),
            ));
        }
        // Refused at start, not at the first restart.
        crate::systemd::bus_address(Some(bus), std::path::Path::new("/"))?;
    }
    let restart = match file.restart_command {
        Some(argv) if argv.is_empty() || argv[0].is_empty() => return Err(Error::EmptyCommand),
        Some(argv) => Restart::Command(argv),
        None => Restart::Systemd {
            unit: file.k3s_unit.clone(),
            bus: file.systemd_bus.clone(),
        },
    };
    let reboot = Reboot {
        on_request: file.reboot_on_request.unwrap_or(true),
        how: match file.reboot_command {
            Some(argv) if argv.is_empty() || argv[0].is_empty() => {
                return Err(Error::EmptyRebootCommand);
            }
            Some(argv) => RebootHow::Command(argv),
            None => RebootHow::Systemd {
                bus: file.systemd_bus.clone(),
            },
        },
        sentinel: match file.reboot_sentinel.as_deref() {
            Some("off" | "") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from(DEFAULT_SENTINEL)),
        },
    };
    let listen_text = flags
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen = match listen_text.as_str() {
        "off" | "" => None,
        text => Some(
            text.parse::<SocketAddr>()
                .map_err(|_| Error::Listen(text.to_owned()))?,
        ),
    };
    let mut alerts = Vec::new();
    for (i, a) in file.alert.into_iter().enumerate() {
        let n = i + 1;
        let url = match (a.url, a.url_file, a.url_env) {
            (Some(u), None, None) => Secret::Plain(u),
            (None, Some(f), None) => Secret::File(f),
            (None, None, Some(e)) => Secret::Env(e),
            _ => return Err(Error::AlertUrl(n)),
        };
        let token = match (a.token_file, a.token_env) {
            (Some(f), None) => Some(Secret::File(f)),
            (None, Some(e)) => Some(Secret::Env(e)),
            (None, None) => None,
            _ => return Err(Error::AlertToken(n)),
        };
        alerts.push(AlertTarget {
            kind: a.kind.unwrap_or_default(),
            url,
            token,
        });
    }
    let restart_grace = duration("restart-grace", &file.restart_grace, 30_000)?;
    let restart_settle = duration("restart-settle", &file.restart_settle, 60_000)?;
    let lease_ttl = duration("lease-ttl", &file.lease_ttl, 120_000)?;
    if lease_ttl < restart_settle {
        return Err(Error::Inconsistent(format!(
            "lease-ttl ({lease_ttl:?}) must be at least restart-settle ({restart_settle:?}): the Lease is held while k3s recovers"
        )));
    }
    let policy = Policy {
        taint: flags.taint.or(file.taint).unwrap_or(false),
        restart_grace,
        restart_settle,
        max_restarts: file.max_restarts.unwrap_or(3),
        restart_window: duration("restart-window", &file.restart_window, 3_600_000)?,
        can_restart: true,
        remediate: !flags.dry_run,
        restore_interval: Duration::from_secs(5).min(restart_grace.max(Duration::from_millis(100))),
        probe_interval: duration("probe-interval", &file.probe_interval, 300_000)?,
        lease_retry: Duration::from_secs(2).min(restart_grace.max(Duration::from_millis(100))),
        alert_after: duration("alert-after", &file.alert_after, 10_000)?,
        alert_interval: duration("alert-interval", &file.alert_interval, 900_000)?,
    };
    Ok(Config {
        policy,
        heartbeat: duration("heartbeat", &file.heartbeat, 30_000)?,
        check_interval: duration("check-interval", &file.check_interval, 60_000)?,
        probe_timeout: duration("probe-timeout", &file.probe_timeout, 30_000)?,
        restart,
        reboot,
        lease: Lease {
            namespace: file.lease_namespace.unwrap_or_else(|| "kube-system".into()),
            name: file
                .lease_name
                .unwrap_or_else(|| "rebootguard-k3s-restart".into()),
            ttl: lease_ttl,
        },
        listen,
        alerts,
        dry_run: flags.dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        let doc: toml::Table = toml::from_str(text).expect("toml");
        doc.get("agent")
            .and_then(|a| a.as_table())
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = resolve(File::default(), &Flags::default()).expect("resolves");
        assert!(!config.policy.taint);
        assert_eq!(config.policy.restart_grace, Duration::from_secs(30));
        assert_eq!(config.policy.max_restarts, 3);
        assert_eq!(config.policy.restart_window, Duration::from_secs(3600));
        assert_eq!(config.heartbeat, Duration::from_secs(30));
        assert_eq!(config.policy.probe_interval, Duration::from_secs(300));
        assert_eq!(
            config.restart,
            Restart::Systemd {
                unit: None,
                bus: None
            }
        );
        assert_eq!(config.lease.name, "rebootguard-k3s-restart");
        assert_eq!(config.listen, Some("127.0.0.1:9478".parse().expect("addr")));
        assert_eq!(
            config.reboot,
            Reboot {
                on_request: true,
                how: RebootHow::Systemd { bus: None },
                sentinel: Some(PathBuf::from("/var/run/reboot-required")),
            }
        );
    }

    #[test]
    fn the_lab_config_reads() {
        let file = File::from_table(&table(
            r#"
node-name = "boromir"
[agent]
taint = true
restart-command = ["/opt/lab/rebootguard-lab", "k3s-restart", "boromir"]
restart-grace = "1.5s"
restart-settle = "3s"
heartbeat = "1.5s"
probe-interval = "15s"
lease-ttl = "6s"
lease-namespace = "kube-system"
[[agent.alert]]
url = "http://127.0.0.1:9999/hook"
[[agent.alert]]
kind = "slack"
url-env = "SLACK_URL"
token-file = "/etc/rebootguard/token"
"#,
        ))
        .expect("parses");
        let config = resolve(
            file,
            &Flags {
                listen: Some("off".into()),
                ..Flags::default()
            },
        )
        .expect("resolves");
        assert!(config.policy.taint);
        assert_eq!(config.policy.restart_grace, Duration::from_millis(1500));
        assert_eq!(config.policy.restore_interval, Duration::from_millis(1500));
        assert_eq!(
            config.restart,
            Restart::Command(vec![
                "/opt/lab/rebootguard-lab".into(),
                "k3s-restart".into(),
                "boromir".into()
            ])
        );
        assert_eq!(config.listen, None);
        assert_eq!(config.alerts.len(), 2);
        assert_eq!(config.alerts[1].kind, AlertKind::Slack);
        assert_eq!(config.alerts[1].url, Secret::Env("SLACK_URL".into()));
    }

    #[test]
    fn bad_values_are_named() {
        let err = File::from_table(&table("[agent]\nrestart-grase = \"1s\"\n")).expect_err("typo");
        assert!(err.to_string().contains("restart-grase"), "{err}");
        let bad = |text: &str| {
            resolve(
                File::from_table(&table(text)).expect("parses"),
                &Flags::default(),
            )
            .expect_err("refused")
            .to_string()
        };
        assert!(bad("[agent]\nheartbeat = \"soon\"\n").contains("heartbeat"));
        assert!(bad("[agent]\nlisten = \"everywhere\"\n").contains("listen"));
        assert!(bad("[agent]\nrestart-command = []\n").contains("restart-command"));
        assert!(bad("[agent]\n[[agent.alert]]\nkind = \"json\"\n").contains("alert #1"));
        assert!(
            bad("[agent]\n[[agent.alert]]\nurl = \"http://x\"\nurl-env = \"Y\"\n")
                .contains("alert #1")
        );
        assert!(
            bad("[agent]\nlease-ttl = \"10s\"\nrestart-settle = \"60s\"\n").contains("lease-ttl")
        );
        assert!(
            bad("[agent]\nsystemd-bus = \"/run/dbus/system_bus_socket\"\n")
                .contains("systemd-bus = \"/run/dbus/system_bus_socket\" is not a D-Bus address")
        );
        assert!(
            bad("[agent]\nsystemd-bus = \"unix:path=/x\"\nrestart-command = [\"true\"]\nreboot-command = [\"true\"]\n")
                .contains("drop systemd-bus or a command")
        );
        assert!(bad("[agent]\nreboot-command = [\"\"]\n").contains("reboot-command"));
    }

    #[test]
    fn reboots_by_command_or_over_the_configured_bus() {
        let config = |text: &str| {
            resolve(
                File::from_table(&table(text)).expect("parses"),
                &Flags::default(),
            )
            .expect("resolves")
        };
        let lab = config(
            "[agent]\nreboot-command = [\"/opt/lab/rebootguard-lab\", \"power-cycle\", \"boromir\"]\nreboot-sentinel = \"off\"\nreboot-on-request = false\n",
        );
        assert_eq!(
            lab.reboot,
            Reboot {
                on_request: false,
                how: RebootHow::Command(vec![
                    "/opt/lab/rebootguard-lab".into(),
                    "power-cycle".into(),
                    "boromir".into()
                ]),
                sentinel: None,
            }
        );
        // One bus for both: a restart command does not take the bus from the reboot.
        let bus = config(
            "[agent]\nsystemd-bus = \"unix:path=/x\"\nrestart-command = [\"true\"]\nreboot-sentinel = \"/run/needs-reboot\"\n",
        );
        assert_eq!(
            bus.reboot.how,
            RebootHow::Systemd {
                bus: Some("unix:path=/x".into())
            }
        );
        assert_eq!(
            bus.reboot.sentinel,
            Some(PathBuf::from("/run/needs-reboot"))
        );
    }

    #[test]
    fn systemd_unit_and_bus_are_taken_as_written() {
        let file = File::from_table(&table(
            "[agent]\nk3s-unit = \"k3s-agent.service\"\nsystemd-bus = \"unix:path=/run/dbus/system_bus_socket\"\n",
        ))
        .expect("parses");
        let config = resolve(file, &Flags::default()).expect("resolves");
        assert_eq!(
            config.restart,
            Restart::Systemd {
                unit: Some("k3s-agent.service".into()),
                bus: Some("unix:path=/run/dbus/system_bus_socket".into())
            }
        );
    }

    #[test]
    fn flags_win_and_dry_run_never_restarts() {
        let file = File::from_table(&table("[agent]\ntaint = false\n")).expect("parses");
        let config = resolve(
            file,
            &Flags {
                taint: Some(true),
                dry_run: true,
                ..Flags::default()
            },
        )
        .expect("resolves");
        assert!(config.policy.taint);
        assert!(!config.policy.remediate);
        assert!(config.dry_run);
    }
}
