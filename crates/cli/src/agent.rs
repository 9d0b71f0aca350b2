//! `rebootguard agent`: resolve the node settings and the `[agent]` table,
//! then run the agent until SIGTERM.

use std::ffi::OsString;

use rebootguard_agent::ProbeCommand;
use rebootguard_agent::config::{self, Flags};

use crate::cli::AgentArgs;
use crate::{OK, PROBLEM, USAGE};

pub fn run(args: AgentArgs) -> u8 {
    let settings = match crate::node::resolve(&args.opts, None) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return USAGE;
        }
    };
    let flags = Flags {
        taint: if args.no_taint {
            Some(false)
        } else {
            args.taint.then_some(true)
        },
        listen: args.listen.clone(),
        dry_run: args.dry_run,
    };
    let config = match config::File::from_table(&settings.agent)
        .and_then(|file| config::resolve(file, &flags))
    {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return USAGE;
        }
    };
    let probe = match probe_command(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find this executable to run probes with: {e}");
            return PROBLEM;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return PROBLEM;
        }
    };
    match runtime.block_on(rebootguard_agent::run(settings, config, probe)) {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("error: {}", rebootguard_node::observe::error_chain(&e));
            PROBLEM
        }
    }
}

/// `rebootguard node probe --json` with the same node settings as this agent.
fn probe_command(args: &AgentArgs) -> std::io::Result<ProbeCommand> {
    let exe = std::env::current_exe()?;
    let mut argv: Vec<OsString> = vec![exe.into(), "node".into(), "probe".into(), "--json".into()];
    let opts = &args.opts;
    argv.push("--root".into());
    argv.push(opts.root.clone().into());
    let mut pair = |flag: &str, value: Option<OsString>| {
        if let Some(value) = value {
            argv.push(flag.into());
            argv.push(value);
        }
    };
    pair("--config", opts.config.clone().map(Into::into));
    pair("--node-name", opts.node_name.clone().map(Into::into));
    pair(
        "--profile",
        opts.profile.map(|p| {
            match p {
                crate::cli::ProfileArg::K3s => "k3s",
                crate::cli::ProfileArg::KubeFlannel => "kube-flannel",
            }
            .into()
        }),
    );
    Ok(ProbeCommand { argv })
}
