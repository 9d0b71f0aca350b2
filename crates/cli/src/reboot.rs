//! `rebootguard reboot`: the arguments (parsed and checked first), then the
//! rollout from `rebootguard-reboot`, presented as progress lines, a
//! per-node timeline and a report, or as a JSON event stream.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::SignedDuration;
use rebootguard_alert::webhook::{Format, Secret, Target, read};
use rebootguard_cluster::Discovery;
use rebootguard_node::settings::parse_duration;
use rebootguard_reboot::{Options, Outcome, Update};
use rebootguard_rollout::machine::{How, Timeouts, show};
use rebootguard_rollout::plan::Order;
use rebootguard_rollout::window::Window;

use crate::status::{Status, TICK};
use crate::{CANNOT, OK, PROBLEM, USAGE};

/// `rebootguard reboot`'s arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  rebootguard reboot --dry-run                      # the plan and every gate's answer now
  rebootguard reboot                                # every node, agents first, through the node agents
  rebootguard reboot -l node-role.kubernetes.io/control-plane!=true
  rebootguard reboot n1 n2 --order as-given --reboot-command ssh {node} sudo systemctl reboot
  rebootguard reboot --json | jq .                  # one JSON object per event
  rebootguard reboot --window 'sat,sun 02:00-06:00 Europe/Berlin' --timeout-gates 30m
  rebootguard reboot --window 'mon-fri 22:00-05:00' --window 'sun 00:00-24:00' --dry-run
  rebootguard reboot --prometheus http://prometheus.monitoring:9090 --ignore-alert Watchdog --ignore-alert CPUThrottlingHigh
  rebootguard reboot --verify --verify-image registry.example/rebootguard:0.1.0
  rebootguard reboot --webhook-file /etc/rebootguard/slack-url --webhook-format slack
  REBOOTGUARD_WEBHOOK=https://ntfy.example/reboots rebootguard reboot --webhook-format ntfy

Exit codes: 0 every node rebooted and verified (or --dry-run printed), 1 the rollout
stopped at a node (left cordoned; rerun to resume there), 2 could not run.
Flow, gates, resume and RBAC: docs/reboot.md.")]
pub struct Args {
    /// Nodes to reboot, by name [default: -l, else every node].
    pub nodes: Vec<String>,
    /// Nodes by label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Agents first and servers last, or exactly as given.
    #[arg(long, value_enum, default_value = "agents-first")]
    pub order: OrderArg,
    /// Print the plan and every gate's answer now; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After --timeout-drain, delete the pods a PodDisruptionBudget keeps.
    #[arg(long)]
    pub force: bool,
    /// Reboot by running this command (argv; `{node}` is the node's name) instead of asking the node's agent.
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "ARGV", conflicts_with = "manual")]
    pub reboot_command: Vec<String>,
    /// Wait for an operator to reboot each drained node.
    #[arg(long)]
    pub manual: bool,
    /// A maintenance window, `[DAYS] HH:MM-HH:MM [ZONE]`; repeatable, any open one will do.
    /// A node starts only inside one; a node already going finishes.
    #[arg(long = "window", value_name = "SPEC")]
    pub windows: Vec<String>,
    /// Alerts, verification and notifications.
    #[command(flatten)]
    pub checks: Checks,
    /// Gates may stay closed this long before the rollout stops (a window opening later stops it at once).
    #[arg(long, default_value = "2m")]
    pub timeout_gates: String,
    /// Evictions (PDBs answering 429 included) may take this long.
    #[arg(long, default_value = "5m")]
    pub timeout_drain: String,
    /// From the reboot request to a new boot ID.
    #[arg(long, default_value = "15m")]
    pub timeout_down: String,
    /// From the new boot to Ready.
    #[arg(long, default_value = "10m")]
    pub timeout_ready: String,
    /// From Ready to a working pod network (PodNetworkReady of the new boot).
    #[arg(long, default_value = "5m")]
    pub timeout_network: String,
    /// From the network to healthy Longhorn volumes.
    #[arg(long, default_value = "30m")]
    pub timeout_storage: String,
    /// Cordon, uncordon, the Lease, cleaning: one API action each.
    #[arg(long, default_value = "1m")]
    pub timeout_action: String,
    /// Grace period of evicted pods, in seconds [default: each pod's own].
    #[arg(long)]
    pub grace_period: Option<u32>,
    /// The rollout Lease, namespace/name.
    #[arg(long, default_value = "kube-system/rebootguard-reboot")]
    pub lease: String,
    /// The Lease's TTL: a rollout whose CLI died blocks the next one at most this long.
    #[arg(long, default_value = "60s")]
    pub lease_ttl: String,
    /// Who holds the Lease [default: reboot/<user>@<host>/<pid>].
    #[arg(long)]
    pub holder: Option<String>,
    /// How often the cluster is looked at.
    #[arg(long, default_value = "1s")]
    pub poll: String,
    /// Events as JSON, one object per line, on stdout.
    #[arg(long)]
    pub json: bool,
    /// Kubeconfig [default: KUBECONFIG, ~/.kube/config, in-cluster].
    #[arg(long, env = "REBOOTGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Bound on each API request.
    #[arg(long, default_value = "15s")]
    pub timeout: String,
}

/// The gates and notices `rebootguard reboot` and `rebootguard controller`
/// share: Prometheus's alerts, probe pods, a webhook.
#[derive(Debug, clap::Args)]
pub struct Checks {
    /// A Prometheus (base URL): a node starts only while no alert fires there; unreachable is closed.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// An alert that does not count; repeatable [default: Watchdog, InfoInhibitor]
    /// (giving any replaces the defaults; `--ignore-alert ''` ignores none).
    #[arg(long = "ignore-alert", value_name = "NAME")]
    pub ignore_alerts: Vec<String>,
    /// Verify with probe pods (as `rebootguard verify`): every other node before each node, the node after its reboot.
    #[arg(long)]
    pub verify: bool,
    /// The probe's image (with --verify): any image with `rebootguard` on its PATH.
    #[arg(long, default_value = rebootguard_verify::DEFAULT_IMAGE, requires = "verify")]
    pub verify_image: String,
    /// Namespace for the probe pods (with --verify; must exist).
    #[arg(long, default_value = rebootguard_verify::DEFAULT_NAMESPACE, requires = "verify")]
    pub verify_namespace: String,
    /// Bound on one verify run (with --verify).
    #[arg(long, default_value = "60s", requires = "verify")]
    pub verify_timeout: String,
    /// TCP port the probes reach each other at (with --verify).
    #[arg(long, default_value_t = rebootguard_verify::DEFAULT_PORT, requires = "verify")]
    pub verify_port: u16,
    /// Notify this webhook: rollout started, each node done, stopped, done. Put a URL
    /// with a secret in REBOOTGUARD_WEBHOOK or --webhook-file, not on the command line.
    #[arg(
        long,
        value_name = "URL",
        env = "REBOOTGUARD_WEBHOOK",
        hide_env_values = true
    )]
    pub webhook: Option<String>,
    /// Read the webhook's URL from this file's first line (a Slack webhook URL is a secret).
    #[arg(long, value_name = "FILE", conflicts_with = "webhook")]
    pub webhook_file: Option<PathBuf>,
    /// The webhook's payload: generic JSON, Slack-compatible `{"text"}`, or ntfy.
    #[arg(long, value_enum, default_value = "generic")]
    pub webhook_format: WebhookFormat,
    /// A bearer token for the webhook, from this file's first line [or env REBOOTGUARD_WEBHOOK_TOKEN].
    #[arg(long, value_name = "FILE")]
    pub webhook_token_file: Option<PathBuf>,
}

impl Checks {
    /// The alert gate's settings into the rollout's options.
    pub fn apply(&self, o: &mut Options) -> Result<(), String> {
        if let Some(url) = &self.prometheus {
            if rebootguard_alert::http::uri(url).is_none() {
                return Err(format!(
                    "--prometheus {url:?} is not an http(s) URL (e.g. http://prometheus.monitoring:9090)"
                ));
            }
            o.prometheus = Some(url.clone());
        }
        if !self.ignore_alerts.is_empty() {
            o.ignore_alerts = self
                .ignore_alerts
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect();
        }
        Ok(())
    }
}

/// `--webhook-format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WebhookFormat {
    /// `{"source", "event", "node", "message", "time", "data"}`.
    #[value(alias = "json")]
    Generic,
    /// Slack incoming webhook (and compatibles: Mattermost, Rocket.Chat).
    Slack,
    /// ntfy: the details as the body, title/priority/tags as headers.
    Ntfy,
}

/// The environment variable a webhook's bearer token may come from.
pub const TOKEN_ENV: &str = "REBOOTGUARD_WEBHOOK_TOKEN";

/// The webhook the flags name, if any (its secrets not read yet).
pub fn webhook(args: &Checks) -> Option<Target> {
    let url = match (&args.webhook, &args.webhook_file) {
        (Some(u), _) => Secret::Plain(u.clone()),
        (None, Some(f)) => Secret::File(f.clone()),
        (None, None) => return None,
    };
    let token = match &args.webhook_token_file {
        Some(f) => Some(Secret::File(f.clone())),
        None => std::env::var_os(TOKEN_ENV).map(|_| Secret::Env(TOKEN_ENV.into())),
    };
    Some(Target {
        kind: match args.webhook_format {
            WebhookFormat::Generic => Format::Json,
            WebhookFormat::Slack => Format::Slack,
            WebhookFormat::Ntfy => Format::Ntfy,
        },
        url,
        token,
    })
}

/// Starts the webhook's sender (inside the runtime), when one is named.
pub(crate) fn notifier(
    hook: Option<Target>,
) -> Result<Option<rebootguard_reboot::notify::Notifier>, String> {
    hook.map(|t| {
        rebootguard_reboot::notify::Notifier::spawn(vec![t])
            .map_err(|e| format!("cannot set up the webhook's HTTP client: {e}"))
    })
    .transpose()
}

/// Reads the webhook's secrets once before anything happens, so a missing
/// file stops the command at once (exit 2), not at the first notice.
pub(crate) fn check_webhook(target: &Target) -> Result<(), String> {
    let url = read(&target.url, "url").map_err(|e| format!("--webhook: {e}"))?;
    if rebootguard_alert::http::uri(&url).is_none() {
        // Never print the URL: it may hold a token.
        return Err("--webhook: the URL is not an http(s) URL".into());
    }
    if let Some(t) = &target.token {
        read(t, "token").map_err(|e| format!("--webhook-token-file: {e}"))?;
    }
    Ok(())
}

/// `--order`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OrderArg {
    /// Agents first, servers last.
    AgentsFirst,
    /// As given.
    AsGiven,
}

pub(crate) fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    parse_duration(text)
        .ok_or_else(|| format!("--{flag} {text:?} is not a duration (e.g. 30s, 5m)"))
}

fn signed(flag: &str, text: &str) -> Result<SignedDuration, String> {
    duration(flag, text)
        .and_then(|d| SignedDuration::try_from(d).map_err(|e| format!("--{flag}: {e}")))
}

/// `--verify`'s settings for verify's run, checked (`None` without it).
pub fn verify_options(args: &Checks) -> Result<Option<rebootguard_verify::run::Options>, String> {
    if !args.verify {
        return Ok(None);
    }
    let timeout = duration("verify-timeout", &args.verify_timeout)?;
    if timeout < Duration::from_secs(5) {
        return Err("--verify-timeout must be at least 5s (probes need time to start)".into());
    }
    Ok(Some(rebootguard_verify::run::Options {
        namespace: args.verify_namespace.clone(),
        image: args.verify_image.clone(),
        nodes: Vec::new(),
        selector: None,
        timeout,
        port: args.verify_port,
    }))
}

/// The arguments checked into the rollout's options.
pub fn options(args: &Args) -> Result<Options, String> {
    let mut o = Options::new(args.nodes.clone());
    o.selector.clone_from(&args.selector);
    o.order = match args.order {
        OrderArg::AgentsFirst => Order::AgentsFirst,
        OrderArg::AsGiven => Order::AsGiven,
    };
    o.how = if args.manual {
        How::Manual
    } else if args.reboot_command.is_empty() {
        How::Agent
    } else {
        How::Command
    };
    o.command.clone_from(&args.reboot_command);
    o.force = args.force;
    o.dry_run = args.dry_run;
    o.grace = args.grace_period;
    o.timeouts = Timeouts {
        gates: signed("timeout-gates", &args.timeout_gates)?,
        action: signed("timeout-action", &args.timeout_action)?,
        drain: signed("timeout-drain", &args.timeout_drain)?,
        down: signed("timeout-down", &args.timeout_down)?,
        ready: signed("timeout-ready", &args.timeout_ready)?,
        network: signed("timeout-network", &args.timeout_network)?,
        storage: signed("timeout-storage", &args.timeout_storage)?,
    };
    let (ns, name) = args
        .lease
        .split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| format!("--lease {:?} is not namespace/name", args.lease))?;
    o.lease = (ns.to_owned(), name.to_owned());
    o.lease_ttl = duration("lease-ttl", &args.lease_ttl)?;
    if o.lease_ttl < Duration::from_secs(3) {
        return Err("--lease-ttl must be at least 3s (it is renewed every third)".into());
    }
    if let Some(h) = &args.holder {
        o.holder.clone_from(h);
    }
    o.windows = args
        .windows
        .iter()
        .map(|w| w.parse::<Window>().map_err(|e| format!("--window: {e}")))
        .collect::<Result<_, _>>()?;
    args.checks.apply(&mut o)?;
    o.poll = duration("poll", &args.poll)?;
    o.bound = duration("timeout", &args.timeout)?;
    if !args.nodes.is_empty() && args.selector.is_some() {
        return Err("give node names or -l, not both".into());
    }
    Ok(o)
}

/// `rebootguard reboot`.
pub fn run(args: &Args) -> u8 {
    let (options, verify) = match options(args).and_then(|o| Ok((o, verify_options(&args.checks)?)))
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return USAGE;
        }
    };
    let hook = webhook(&args.checks);
    if let Some(Err(e)) = hook.as_ref().map(check_webhook) {
        eprintln!("error: {e}");
        return USAGE;
    }
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let json = args.json;
    let colour = crate::colour(&std::io::stderr());
    let result = runtime.block_on(async {
        let discovery = Discovery::from_env(args.kubeconfig.clone(), Path::new("/"));
        let (client, _) = rebootguard_cluster::connect(&discovery, options.bound)
            .await
            .map_err(|e| rebootguard_errors::chain(&e))?;
        let notifier = notifier(hook)?;
        // On a terminal, a status line (node i/N, phase, time in it)
        // redrawn every second below the progress lines.
        let status = (!json && std::io::stderr().is_terminal())
            .then(|| std::sync::Arc::new(std::sync::Mutex::new(Status::default())));
        let ticker = status.clone().map(|status| {
            tokio::spawn(async move {
                let mut every = tokio::time::interval(TICK);
                loop {
                    every.tick().await;
                    let text = status
                        .lock()
                        .map(|s| s.tick(std::time::Instant::now()))
                        .unwrap_or_default();
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(text.as_bytes());
                    let _ = err.flush();
                }
            })
        });
        let mut emit = |u: Update| {
            if let Some(n) = &notifier {
                n.send(&u);
            }
            if json {
                if let Ok(line) = serde_json::to_string(&u) {
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
            } else if let Some(status) = &status {
                let line = progress_line(&u, colour);
                if let Ok(mut s) = status.lock() {
                    let text = s.update(&u, &line, std::time::Instant::now());
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(text.as_bytes());
                    let _ = err.flush();
                }
            } else if u.event != "phase" {
                eprintln!("{}", progress_line(&u, colour));
            }
        };
        let probes = verify.map(|v| rebootguard_reboot::Probes::new(client.clone(), v));
        let verifier = probes.as_ref().map(|p| p as &dyn rebootguard_reboot::Verifier);
        let run = rebootguard_reboot::run(&client, &options, verifier, &mut emit);
        let result = tokio::select! {
            r = run => r.map_err(|e| rebootguard_errors::chain(&e)),
            _ = tokio::signal::ctrl_c() => Err("interrupted: the node in progress keeps its state; rerun to resume (the Lease expires after --lease-ttl)".into()),
        };
        if let Some(t) = ticker {
            t.abort();
            let _ = t.await;
        }
        if let Some(status) = &status
            && let Ok(s) = status.lock()
        {
            eprint!("{}", s.clear());
        }
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
        Ok(outcome) => {
            if json {
                if let Ok(line) = serde_json::to_string(
                    &serde_json::json!({"event": "result", "outcome": outcome}),
                ) {
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
            } else {
                let _ = std::io::stdout()
                    .lock()
                    .write_all(report(&outcome).as_bytes());
            }
            match outcome {
                Outcome::Done { .. } | Outcome::DryRun { .. } => OK,
                Outcome::Stopped { .. } => PROBLEM,
            }
        }
    }
}

fn progress_line(u: &Update, colour: bool) -> String {
    let time = u.at.strftime("%H:%M:%S");
    let node = u
        .node
        .as_deref()
        .map(|n| format!("{n}: "))
        .unwrap_or_default();
    let text = format!("{time} {node}{}", u.message);
    match (colour, u.warning) {
        (true, true) => format!("\x1b[33m{text}\x1b[0m"),
        _ => text,
    }
}

/// The human report: the plan with its gates, or the timelines and the stop.
pub fn report(outcome: &Outcome) -> String {
    let mut out = String::new();
    let timelines = |out: &mut String, nodes: &[(String, Vec<rebootguard_reboot::Milestone>)]| {
        for (name, milestones) in nodes {
            out.push_str(&format!("{name}:"));
            for m in milestones {
                let mark = serde_json::to_value(m.mark)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                out.push_str(&format!(
                    " {mark} +{}",
                    show(SignedDuration::from_secs_f64(m.seconds.max(0.0)))
                ));
            }
            out.push('\n');
        }
    };
    match outcome {
        Outcome::DryRun { plan } => {
            out.push_str("plan (nothing changed):\n");
            for (i, (node, gates)) in plan.iter().enumerate() {
                out.push_str(&format!("{}. {node}\n", i + 1));
                for g in gates {
                    let state = if g.open { "open  " } else { "CLOSED" };
                    out.push_str(&format!("   {state} {:<20} {}\n", g.name, g.detail));
                }
            }
            out.push_str(
                "gates are asked again before each node, after the previous one is back\n",
            );
        }
        Outcome::Done { rollout, nodes } => {
            out.push_str(&format!(
                "rollout {rollout} done: {} node(s) rebooted and verified\n",
                nodes.len()
            ));
            timelines(&mut out, nodes);
        }
        Outcome::Stopped {
            rollout,
            nodes,
            stop,
            first_domino,
        } => {
            timelines(&mut out, nodes);
            out.push_str(&format!(
                "rollout {rollout} STOPPED at {} ({}), {}\n  what failed: {}\n  what to do:  {}\n",
                stop.node,
                stop.phase.name(),
                rebootguard_reboot::notify::left(stop.phase.name()),
                stop.what,
                stop.hint
            ));
            match first_domino {
                Some(d) => {
                    out.push_str(&format!("  first domino: {}\n", d.title));
                    for e in &d.evidence {
                        out.push_str(&format!("    evidence: {e}\n"));
                    }
                    for f in &d.fix {
                        out.push_str(&format!("    fix: {f}\n"));
                    }
                }
                None => out.push_str("  first domino: diagnose found none\n"),
            }
            out.push_str("  rerun the same command to resume at that node\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> Result<Options, String> {
        let cli = crate::cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match cli.command {
            crate::cli::Command::Reboot(args) => options(&args),
            _ => Err("not reboot".into()),
        }
    }

    #[test]
    fn flags_become_options() {
        let o = parse(&[
            "rebootguard",
            "reboot",
            "a",
            "b",
            "--order",
            "as-given",
            "--timeout-drain",
            "90s",
        ])
        .expect("ok");
        assert_eq!(o.nodes, vec!["a", "b"]);
        assert_eq!(o.order, Order::AsGiven);
        assert_eq!(o.how, How::Agent);
        assert_eq!(o.timeouts.drain, SignedDuration::from_secs(90));
        let o = parse(&[
            "rebootguard",
            "reboot",
            "--reboot-command",
            "ssh",
            "{node}",
            "reboot",
        ])
        .expect("ok");
        assert_eq!((o.how, o.command.len()), (How::Command, 3));
        assert_eq!(
            parse(&["rebootguard", "reboot", "--manual"])
                .expect("ok")
                .how,
            How::Manual
        );
        assert_eq!(
            o.lease,
            ("kube-system".to_owned(), "rebootguard-reboot".to_owned())
        );
    }

    #[test]
    fn bad_flags_say_why() {
        assert!(
            parse(&["rebootguard", "reboot", "--timeout-down", "soon"])
                .expect_err("bad")
                .contains("--timeout-down")
        );
        assert!(
            parse(&["rebootguard", "reboot", "--lease", "x"])
                .expect_err("bad")
                .contains("namespace/name")
        );
        assert!(
            parse(&["rebootguard", "reboot", "a", "-l", "x=y"])
                .expect_err("bad")
                .contains("not both")
        );
        assert!(parse(&["rebootguard", "reboot", "--manual", "--reboot-command", "x"]).is_err());
        assert!(parse(&["rebootguard", "reboot", "--lease-ttl", "1s"]).is_err());
        let e = parse(&["rebootguard", "reboot", "--window", "mon-fri 2am-5am"]).expect_err("bad");
        assert!(
            e.starts_with("--window: ") && e.contains("HH:MM-HH:MM"),
            "{e}"
        );
    }

    #[test]
    fn prometheus_and_ignored_alerts() {
        let o = parse(&["rebootguard", "reboot"]).expect("ok");
        assert_eq!(o.prometheus, None);
        assert_eq!(o.ignore_alerts, ["Watchdog", "InfoInhibitor"]);
        let o = parse(&[
            "rebootguard",
            "reboot",
            "--prometheus",
            "http://prometheus.monitoring:9090",
            "--ignore-alert",
            "CPUThrottlingHigh",
        ])
        .expect("ok");
        assert_eq!(
            o.prometheus.as_deref(),
            Some("http://prometheus.monitoring:9090")
        );
        assert_eq!(o.ignore_alerts, ["CPUThrottlingHigh"]);
        let o = parse(&["rebootguard", "reboot", "--ignore-alert", ""]).expect("ok");
        assert!(o.ignore_alerts.is_empty());
        let e =
            parse(&["rebootguard", "reboot", "--prometheus", "prometheus:9090"]).expect_err("bad");
        assert!(e.contains("not an http(s) URL"), "{e}");
    }

    #[test]
    fn verify_is_opt_in_with_verify_s_defaults() {
        let args = |argv: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
            match cli.command {
                crate::cli::Command::Reboot(args) => verify_options(&args.checks),
                _ => Err("not reboot".into()),
            }
        };
        assert!(args(&["rebootguard", "reboot"]).expect("ok").is_none());
        let v = args(&["rebootguard", "reboot", "--verify"])
            .expect("ok")
            .expect("on");
        assert_eq!(v.image, rebootguard_verify::DEFAULT_IMAGE);
        assert_eq!(v.namespace, "rebootguard");
        assert_eq!(v.timeout, Duration::from_secs(60));
        assert_eq!(v.port, rebootguard_verify::DEFAULT_PORT);
        let e =
            args(&["rebootguard", "reboot", "--verify-image", "x"]).expect_err("needs --verify");
        assert!(e.contains("--verify"), "{e}");
        let e = args(&[
            "rebootguard",
            "reboot",
            "--verify",
            "--verify-timeout",
            "1s",
        ])
        .expect_err("short");
        assert!(e.contains("at least 5s"), "{e}");
    }

    #[test]
    fn windows_are_repeatable() {
        let o = parse(&[
            "rebootguard",
            "reboot",
            "--window",
            "sat,sun 02:00-06:00",
            "--window",
            "wed 22:00-01:00 +02:00",
        ])
        .expect("ok");
        let shown: Vec<String> = o.windows.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["sat,sun 02:00-06:00 UTC", "wed 22:00-01:00 +02:00"]);
        assert!(
            parse(&["rebootguard", "reboot"])
                .expect("ok")
                .windows
                .is_empty()
        );
    }
}
