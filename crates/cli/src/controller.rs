//! `rebootguard controller`: the arguments (parsed and checked first), then
//! the loop from `rebootguard_reboot::controller`, with `/metrics` and
//! `/healthz` served by the agent's small HTTP endpoint, until SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rebootguard_cluster::Discovery;
use rebootguard_reboot::controller::{self, Clients, Metrics, Options};
use rebootguard_rollout::window::Window;

use crate::reboot::duration;
use crate::{CANNOT, OK, PROBLEM};

/// `rebootguard controller`'s arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  rebootguard controller --window 'mon-fri 02:00-05:00 Europe/Berlin' --listen 0.0.0.0:9479
  rebootguard controller --once --dry-run           # what the leader would do now, changing nothing
  rebootguard controller --once --window 'sat,sun 22:00-06:00'    # cron-like: one decision, one rollout
  rebootguard controller --prometheus http://prometheus.monitoring:9090 --verify --webhook-file /etc/rebootguard/webhook

What needs a reboot: a node whose agent found /var/run/reboot-required writes
rebootguard.io/reboot-required on its Node (--sentinel-annotation names another).
One node at a time, agents first; each through the same gates, agent handshake
and verification as `rebootguard reboot`. A rollout that stops leaves its node
cordoned and holds every further reboot until a human finishes it
(`rebootguard reboot` resumes it) or drops it; the log, a Warning Event and
rebootguard_controller_held say so.

Exit codes: 0 stopped by SIGTERM/SIGINT, or --once decided (and its rollout, if
any, finished); 1 --once found a held rollout or its rollout stopped (a node
is left cordoned); 2 could not run (bad arguments, no kubeconfig, --listen
address taken, --once could not read the cluster).
Decisions, windows, RBAC and deployment: docs/controller.md.")]
pub struct Args {
    /// A maintenance window, `[DAYS] HH:MM-HH:MM [ZONE]`; repeat for several. A reboot starts only inside one [default: any time].
    #[arg(long = "window", value_name = "WINDOW")]
    pub windows: Vec<String>,
    /// The Node annotation that marks a node as needing a reboot (present = needed; an RFC 3339 value is when it was marked).
    #[arg(long, default_value = rebootguard_cluster::reboot::REQUIRED)]
    pub sentinel_annotation: String,
    /// The leader-election Lease, namespace/name (not the rollout Lease).
    #[arg(long, default_value = "rebootguard/rebootguard-controller")]
    pub lease: String,
    /// The leader Lease's TTL: a dead leader is replaced after at most this long.
    #[arg(long, default_value = "15s")]
    pub lease_ttl: String,
    /// This replica's name in the leader Lease [default: <hostname>/<pid>].
    #[arg(long, env = "REBOOTGUARD_CONTROLLER_IDENTITY")]
    pub identity: Option<String>,
    /// The rollout Lease, namespace/name: the one `rebootguard reboot` takes, so the two never run together.
    #[arg(long, default_value = "kube-system/rebootguard-reboot")]
    pub rollout_lease: String,
    /// The rollout Lease's TTL.
    #[arg(long, default_value = "60s")]
    pub rollout_lease_ttl: String,
    /// How often the leader looks at the Nodes.
    #[arg(long, default_value = "30s")]
    pub poll: String,
    /// How often a running rollout looks at its node.
    #[arg(long, default_value = "1s")]
    pub rollout_poll: String,
    /// Decide once (and run that rollout, if any), then exit.
    #[arg(long)]
    pub once: bool,
    /// Log what would be done; reboot nothing (the leader Lease is still taken).
    #[arg(long)]
    pub dry_run: bool,
    /// Log as JSON lines (the same as --log-json).
    #[arg(long)]
    pub json: bool,
    /// Serve /metrics and /healthz on this address (e.g. 0.0.0.0:9479) [default: not served].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Alerts, verification and notifications, as for `rebootguard reboot`.
    #[command(flatten)]
    pub checks: crate::reboot::Checks,
    /// Kubeconfig [default: KUBECONFIG, ~/.kube/config, in-cluster].
    #[arg(long, env = "REBOOTGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Bound on each API request.
    #[arg(long, default_value = "15s")]
    pub timeout: String,
}

fn lease(flag: &str, text: &str) -> Result<(String, String), String> {
    text.split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .ok_or_else(|| format!("--{flag} {text:?} is not namespace/name"))
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}/{}", std::process::id())
}

/// The arguments checked into the controller's options, and the address
/// to serve on.
pub fn options(args: &Args) -> Result<(Options, Option<SocketAddr>), String> {
    let mut o = Options::new(args.identity.clone().unwrap_or_else(default_identity));
    o.windows = args
        .windows
        .iter()
        .map(|w| w.parse::<Window>().map_err(|e| format!("--window: {e}")))
        .collect::<Result<_, _>>()?;
    let sentinel = args.sentinel_annotation.trim();
    if sentinel.is_empty() || sentinel.contains(char::is_whitespace) {
        return Err(format!(
            "--sentinel-annotation {:?} is not an annotation key (e.g. rebootguard.io/reboot-required)",
            args.sentinel_annotation
        ));
    }
    o.sentinel = sentinel.to_owned();
    o.leader = lease("lease", &args.lease)?;
    o.leader_ttl = duration("lease-ttl", &args.lease_ttl)?;
    if o.leader_ttl < Duration::from_secs(3) {
        return Err("--lease-ttl must be at least 3s (it is renewed every third)".into());
    }
    o.rollout.lease = lease("rollout-lease", &args.rollout_lease)?;
    if o.rollout.lease == o.leader {
        return Err(
            "--lease and --rollout-lease must differ: leadership and the rollout are two locks"
                .into(),
        );
    }
    o.rollout.lease_ttl = duration("rollout-lease-ttl", &args.rollout_lease_ttl)?;
    if o.rollout.lease_ttl < Duration::from_secs(3) {
        return Err("--rollout-lease-ttl must be at least 3s (it is renewed every third)".into());
    }
    o.every = duration("poll", &args.poll)?;
    o.rollout.poll = duration("rollout-poll", &args.rollout_poll)?;
    o.rollout.bound = duration("timeout", &args.timeout)?;
    o.once = args.once;
    o.dry_run = args.dry_run;
    args.checks.apply(&mut o.rollout)?;
    let listen = args
        .listen
        .as_deref()
        .map(|a| {
            a.parse::<SocketAddr>().map_err(|_| {
                format!("--listen {a:?} is not an address:port (e.g. 0.0.0.0:9479, [::]:9479)")
            })
        })
        .transpose()?;
    Ok((o, listen))
}

/// `rebootguard controller`.
pub fn run(args: &Args) -> u8 {
    let checked = options(args).and_then(|(o, listen)| {
        let verify = crate::reboot::verify_options(&args.checks)?;
        let hook = crate::reboot::webhook(&args.checks);
        if let Some(t) = &hook {
            crate::reboot::check_webhook(t)?;
        }
        Ok((o, listen, verify, hook))
    });
    let ((options, listen, verify, hook), runtime) = match crate::prepare(checked) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let metrics = Arc::new(Metrics::new());
        let _server = match listen {
            None => None,
            Some(addr) => {
                let m = metrics.clone();
                // Three missed renewals of the leader Lease, at least 30 s.
                let stale = (options.leader_ttl).max(Duration::from_secs(30));
                let page = move |path: &str| m.page(path, stale);
                Some(
                    rebootguard_agent::metrics::serve_with(addr, page)
                        .await
                        .map_err(|e| format!("failed to listen on {addr}: {e}"))?,
                )
            }
        };
        let discovery = Discovery::from_env(args.kubeconfig.clone(), Path::new("/"));
        let (mut config, _) = rebootguard_cluster::client::load(&discovery)
            .await
            .map_err(|e| rebootguard_errors::chain(&e))?;
        let bound = options.rollout.bound;
        config.connect_timeout = Some(bound);
        config.read_timeout = Some(bound);
        config.write_timeout = Some(bound);
        let config = rebootguard_cluster::client::identified(
            config,
            rebootguard_cluster::client::USER_AGENT,
        );
        let clients = Clients::new(config)
            .map_err(|e| format!("failed to build a Kubernetes client: {e}"))?;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            stopped().await;
            tracing::info!("stopping: finishing the API call in flight, then releasing leadership");
            let _ = stop.send(true);
            // Keep the sender: a dropped one reads as a stop too.
            std::future::pending::<()>().await;
        });
        let notifier = crate::reboot::notifier(hook)?;
        let probes = verify.map(|v| rebootguard_reboot::Probes::new(clients.acting.clone(), v));
        let hooks = controller::Hooks {
            verifier: probes
                .as_ref()
                .map(|p| p as &dyn rebootguard_reboot::Verifier),
            notifier: notifier.as_ref(),
        };
        let result = controller::run(&clients, &options, &metrics, &hooks, shutdown)
            .await
            .map_err(|e| rebootguard_errors::chain(&e));
        if let Some(n) = notifier {
            n.finish().await;
        }
        result
    });
    match result {
        Err(e) => {
            eprintln!("error: {e}");
            CANNOT
        }
        Ok(exit) if exit.needs_a_human() => PROBLEM,
        Ok(_) => OK,
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> Result<(Options, Option<SocketAddr>), String> {
        let argv = std::iter::once("rebootguard")
            .chain(std::iter::once("controller"))
            .chain(argv.iter().copied());
        let cli = crate::cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match cli.command {
            crate::cli::Command::Controller(args) => options(&args),
            _ => Err("not controller".into()),
        }
    }

    #[test]
    fn defaults_and_flags() {
        let (o, listen) = parse(&[]).expect("defaults");
        assert!(o.windows.is_empty() && listen.is_none() && !o.once && !o.dry_run);
        assert_eq!(o.sentinel, "rebootguard.io/reboot-required");
        assert_eq!(
            o.leader,
            (
                "rebootguard".to_owned(),
                "rebootguard-controller".to_owned()
            )
        );
        assert_eq!(
            o.rollout.lease,
            ("kube-system".to_owned(), "rebootguard-reboot".to_owned())
        );
        assert_eq!(o.rollout.holder, controller::ROLLOUT_HOLDER);
        assert_eq!(o.every, Duration::from_secs(30));
        let (o, listen) = parse(&[
            "--window",
            "sat 02:00-05:00",
            "--window",
            "sun 02:00-05:00 +01:00",
            "--sentinel-annotation",
            "example.com/needs-reboot",
            "--identity",
            "replica-a",
            "--poll",
            "2s",
            "--once",
            "--dry-run",
            "--listen",
            "127.0.0.1:9479",
        ])
        .expect("flags");
        assert_eq!(o.windows.len(), 2);
        assert_eq!(o.sentinel, "example.com/needs-reboot");
        assert_eq!(o.identity, "replica-a");
        assert_eq!(o.every, Duration::from_secs(2));
        assert!(o.once && o.dry_run);
        assert_eq!(listen, Some("127.0.0.1:9479".parse().expect("addr")));
    }

    #[test]
    fn bad_flags_name_the_flag_and_the_fix() {
        for (argv, says) in [
            (&["--window", "02:00"][..], "HH:MM-HH:MM"),
            (&["--window", "02:00-03:00 Mars/Olympus"][..], "time zone"),
            (&["--lease", "nonamespace"][..], "namespace/name"),
            (&["--rollout-lease", "a/b/c"][..], "namespace/name"),
            (
                &["--lease", "kube-system/rebootguard-reboot"][..],
                "must differ",
            ),
            (&["--lease-ttl", "1s"][..], "at least 3s"),
            (&["--poll", "often"][..], "--poll"),
            (&["--listen", "9479"][..], "address:port"),
            (&["--sentinel-annotation", " "][..], "annotation key"),
        ] {
            let e = parse(argv).expect_err("bad");
            assert!(e.contains(says), "{argv:?}: {e}");
        }
    }
}
