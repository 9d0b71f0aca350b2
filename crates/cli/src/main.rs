//! The `rebootguard` binary: parses the command line, sets up logging and
//! hands each command to the crate that owns it. No logic of its own beyond
//! presenting outcomes and mapping them to exit codes.

mod agent;
mod cli;
mod controller;
mod diagnose;
mod install;
mod node;
mod reboot;
mod status;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

/// Exit code: success.
pub const OK: u8 = 0;
/// Exit code: a problem was found, or an operation failed.
pub const PROBLEM: u8 = 1;
/// Exit code: usage or configuration error.
pub const USAGE: u8 = 2;
/// Exit code: `node restore` could not leave a valid subnet.env (its units
/// ignore the status, so k3s still starts; the reason is on its one line).
pub const NOT_RESTORED: u8 = 3;
/// Exit code: could not check or diagnose (the same number as [`USAGE`]:
/// nothing was learnt about the node or cluster).
pub const CANNOT: u8 = 2;

/// Commands that print a report and exit end quietly when their reader
/// goes away (`rebootguard node status | head -3`), as `cat` does: the
/// default action of SIGPIPE, which Rust's runtime sets to ignore (so a
/// print to a closed pipe would panic). Not for the agent, the controller,
/// a rollout or verify, which must finish their work (cleanups, a node
/// mid-reboot) whoever reads their output; their sockets are not
/// affected either way (std sends with MSG_NOSIGNAL).
fn die_quietly_on_closed_stdout() {
    // SAFETY: setting a signal's disposition to its default, before any
    // thread is started; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Node(_)
            | Command::Diagnose { .. }
            | Command::Snapshot { .. }
            | Command::Completions { .. }
            | Command::Man { .. }
    ) {
        die_quietly_on_closed_stdout();
    }
    let json_logs = cli.log_json || matches!(&cli.command, Command::Controller(a) if a.json);
    init_logging(&cli.log, json_logs);
    let code = match cli.command {
        Command::Node(node) => node::run(node),
        Command::Agent(args) => agent::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Reboot(args) => reboot::run(&args),
        Command::Controller(args) => controller::run(&args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "rebootguard",
                &mut std::io::stdout(),
            );
            OK
        }
        Command::Man { out_dir } => man(out_dir),
        Command::Diagnose {
            input,
            output,
            now,
            config,
            color,
        } => diagnose::diagnose(&input, output, now.as_deref(), config.as_deref(), color),
        Command::Snapshot {
            output,
            gzip,
            kubeconfig,
            timeout,
        } => diagnose::snapshot(&output, gzip, kubeconfig, &timeout),
        Command::CleanStale {
            input,
            yes,
            include_unowned,
            json,
        } => diagnose::clean_stale(&input, yes, include_unowned, json),
        Command::Install {
            root,
            unit_dir,
            bin,
            dry_run,
            no_enable,
            agent,
        } => {
            let bin = bin
                .or_else(|| std::env::current_exe().ok())
                .unwrap_or_else(|| "/usr/local/bin/rebootguard".into());
            install::run(&install::Options {
                root,
                unit_dir,
                bin,
                dry_run,
                no_enable,
                agent,
            })
        }
    };
    ExitCode::from(code)
}

/// The checked arguments and a runtime to act on them, or the exit code
/// after saying why not (bad arguments: [`USAGE`]).
pub(crate) fn prepare<T>(checked: Result<T, String>) -> Result<(T, tokio::runtime::Runtime), u8> {
    let checked = checked.map_err(|e| {
        eprintln!("error: {e}");
        USAGE
    })?;
    Ok((checked, runtime()?))
}

/// A single-threaded runtime for one command, or the exit code after
/// saying why there is none.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: failed to start the async runtime: {e}");
            PROBLEM
        })
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(&std::io::stderr()))
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Colour only for a terminal, and never when NO_COLOR is set (no-color.org).
pub(crate) fn colour(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn man(out_dir: Option<std::path::PathBuf>) -> u8 {
    let command = Cli::command();
    let result = match out_dir {
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
        Some(dir) => {
            std::fs::create_dir_all(&dir).and_then(|()| clap_mangen::generate_to(command, &dir))
        }
    };
    match result {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("error: failed to write the man page: {e}");
            PROBLEM
        }
    }
}
