//! `rebootguard node ...`: resolve settings, run, present, map to an exit code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use rebootguard_node::check::{self, Verdict};
use rebootguard_node::restore::Decision;
use rebootguard_node::settings::{self, File, Settings, parse_duration, under};
use rebootguard_node::{Profile, backup, probe, regenerate, restore, status};
use serde::Serialize;

use crate::cli::{Node, NodeCommand, NodeOpts, ProfileArg};
use crate::{CANNOT, NOT_RESTORED, OK, PROBLEM, USAGE};

pub fn run(node: Node) -> u8 {
    let timeout = match &node.command {
        NodeCommand::Restore { timeout, .. } => timeout.clone(),
        _ => None,
    };
    let settings = match resolve(&node.opts, timeout) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {}", rebootguard_errors::chain(&e));
            return USAGE;
        }
    };
    let runtime = match crate::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match node.command {
        NodeCommand::Restore { dry_run, json, .. } => {
            let outcome = runtime.block_on(restore::run(&settings, dry_run));
            if json {
                print_json(&outcome);
            } else {
                print!("{}", describe_restore(&outcome));
            }
            if outcome.applied || outcome.dry_run {
                OK
            } else {
                NOT_RESTORED
            }
        }
        NodeCommand::Backup { json } => match backup::run(&settings) {
            Ok(outcome) => {
                if json {
                    print_json(&outcome);
                } else {
                    match outcome {
                        backup::Outcome::Stored { generation } => {
                            println!("stored subnet.env as generation {generation}")
                        }
                        backup::Outcome::Unchanged { generation } => {
                            println!("unchanged since generation {generation}; nothing stored")
                        }
                    }
                }
                OK
            }
            Err(e) => {
                report_error(json, &e);
                PROBLEM
            }
        },
        NodeCommand::Regenerate { write, force, json } => {
            match runtime.block_on(regenerate::run(&settings, write, force)) {
                Ok(outcome) => {
                    if json {
                        print_json(&outcome);
                    } else {
                        println!(
                            "# derived for node {} (MTU from {})",
                            outcome.node, outcome.mtu_from
                        );
                        print!("{}", outcome.content);
                        if !outcome.diff.is_empty() {
                            println!("\n# diff against {}:", settings.paths.subnet_env.display());
                            print!("{}", outcome.diff);
                        }
                        match &outcome.not_written_because {
                            None => {
                                println!("\nwritten to {}", settings.paths.subnet_env.display())
                            }
                            Some(why) => println!("\nnot written: {why}"),
                        }
                    }
                    if outcome.written || outcome.diff.is_empty() || !write {
                        OK
                    } else {
                        PROBLEM
                    }
                }
                Err(e) => {
                    report_error(json, &e);
                    PROBLEM
                }
            }
        }
        NodeCommand::Check { json } => {
            let report = check::evaluate(&runtime.block_on(check::gather(&settings)));
            if json {
                print_json(&report);
            } else {
                print!("{}", report.render());
            }
            match report.verdict {
                Verdict::Ok => OK,
                Verdict::Fail => PROBLEM,
                Verdict::Unknown => CANNOT,
            }
        }
        NodeCommand::Status { json } => {
            let report = runtime.block_on(status::run(&settings));
            if json {
                print_json(&report);
            } else {
                print!("{}", report.render());
            }
            if report.healthy { OK } else { PROBLEM }
        }
        NodeCommand::Probe {
            timeout,
            ping_timeout,
            json,
        } => run_probe(&settings, &timeout, &ping_timeout, json),
    }
}

/// `node probe`: 0 passed, 1 failed, 2 could not probe, 128+signal when
/// interrupted (after DEL ran).
fn run_probe(settings: &Settings, timeout: &str, ping_timeout: &str, json: bool) -> u8 {
    let duration = |flag: &str, text: &str| {
        parse_duration(text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("{flag} {text:?} is not a duration (use e.g. 500ms, 5s, 1m)"))
    };
    let (timeout, ping_timeout) = match (
        duration("--timeout", timeout),
        duration("--ping-timeout", ping_timeout),
    ) {
        (Ok(t), Ok(p)) => (t, p),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return USAGE;
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let caught = watch_signals(cancel.clone());
    let options = probe::Options {
        timeout,
        ping_timeout,
        cancel: Some(cancel),
    };
    let code = match probe::run(settings, &options) {
        Ok(report) => {
            if json {
                print_json(&report);
            } else {
                print!("{}", report.render());
            }
            if report.passed { OK } else { PROBLEM }
        }
        Err(e) => {
            report_error(json, &e);
            CANNOT
        }
    };
    match caught.load(Ordering::SeqCst) {
        0 => code,
        signal => u8::try_from(128 + signal).unwrap_or(PROBLEM),
    }
}

/// Turns the first SIGINT or SIGTERM into a cancellation (the probe stops
/// and cleans up) and remembers it; a second one exits at once. Returns the
/// signal caught, 0 while none.
fn watch_signals(cancel: Arc<AtomicBool>) -> Arc<AtomicI32> {
    use tokio::signal::unix::{SignalKind, signal};
    let caught = Arc::new(AtomicI32::new(0));
    let (ready, installed) = std::sync::mpsc::channel();
    let seen = caught.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = ready.send(());
                return;
            };
            runtime.block_on(async move {
                let (Ok(mut interrupt), Ok(mut terminate)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    let _ = ready.send(());
                    return;
                };
                let _ = ready.send(());
                loop {
                    let number = tokio::select! {
                        _ = interrupt.recv() => 2,
                        _ = terminate.recv() => 15,
                    };
                    if seen.swap(number, Ordering::SeqCst) == 0 {
                        cancel.store(true, Ordering::SeqCst);
                        eprintln!(
                            "interrupted: finishing the running plugin call, then CNI DEL and cleanup; \
                             signal again to abandon the probe's pod"
                        );
                    } else {
                        eprintln!("abandoned: the probe's pod sandbox may be left behind");
                        std::process::exit(128 + number);
                    }
                }
            });
        });
    // Wait until the handlers are in place (or could not be), so no signal
    // in between kills the probe halfway.
    if spawned.is_ok() {
        let _ = installed.recv();
    }
    caught
}

pub(crate) fn resolve(
    opts: &NodeOpts,
    timeout: Option<String>,
) -> Result<Settings, settings::Error> {
    let config = opts
        .config
        .clone()
        .unwrap_or_else(|| opts.root.join(settings::CONFIG_FILE));
    let file = File::load(&config)?;
    let flags = File {
        node_name: opts.node_name.clone(),
        profile: opts.profile.map(|p| match p {
            ProfileArg::K3s => Profile::K3s,
            ProfileArg::KubeFlannel => Profile::KubeFlannel,
        }),
        store_dir: opts.store_dir.clone(),
        keep: opts.keep,
        timeout,
        api_timeout: opts.api_timeout.clone(),
        api: opts.no_api.then_some(false),
        mtu: opts.mtu,
        ipmasq: opts.ipmasq,
        kubeconfig: opts.kubeconfig.clone(),
        flannel_config_map: None,
        conflist: opts.conflist.clone(),
        cni_bin_dirs: (!opts.cni_bin_dir.is_empty()).then(|| opts.cni_bin_dir.clone()),
        agent: None,
    };
    let mut settings = Settings::resolve(&opts.root, flags.or(file))?;
    // An explicit kubeconfig from the config file is a host path too.
    if opts.kubeconfig.is_none()
        && let Some(path) = &settings.kubeconfig
    {
        settings.kubeconfig = Some(under(&opts.root, path));
    }
    Ok(settings)
}

fn describe_restore(outcome: &restore::Outcome) -> String {
    let path = &outcome.path;
    let would = if outcome.dry_run { "would be " } else { "" };
    let mut out = match &outcome.plan.decision {
        Decision::Keep => format!("{path} is valid; left as it is\n"),
        Decision::Restore {
            generation,
            verified,
        } => format!(
            "{path} {}restored from backup generation {generation} ({})\n",
            if outcome.applied || outcome.dry_run {
                would
            } else {
                "NOT "
            },
            if *verified {
                "verified against the API"
            } else {
                "not cross-checked with the API"
            }
        ),
        Decision::Regenerate { because, content } => format!(
            "{path} {}regenerated from the API and net-conf.json ({because}):\n{content}",
            if outcome.applied || outcome.dry_run {
                would
            } else {
                "NOT "
            },
        ),
        Decision::Refuse { reason } => format!("warning: {path} left alone: {reason}\n"),
        Decision::Nothing { missing } => format!(
            "warning: {path} could not be restored; missing: {}\n",
            missing.join("; ")
        ),
    };
    // Warnings went to the log (stderr) already; stdout carries the result.
    for freed in &outcome.leases.freed {
        out.push_str(&format!(
            "{}freed host-local lease {} in {} (container {})\n",
            would,
            freed.ip,
            freed.network,
            freed.container.as_deref().unwrap_or("?")
        ));
    }
    for error in &outcome.leases.errors {
        out.push_str(&format!("warning: {error}\n"));
    }
    out
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: failed to encode JSON: {e}"),
    }
}

fn report_error(json: bool, error: &dyn std::error::Error) {
    let text = rebootguard_errors::chain(error);
    if json {
        print_json(&serde_json::json!({ "error": text }));
    }
    eprintln!("error: {text}");
}
