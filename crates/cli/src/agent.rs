//! `rebootguard agent`: resolve the node settings and the `[agent]` table,
//! then run the agent until SIGTERM.

use rebootguard_agent::config::{self, Flags};

use crate::cli::AgentArgs;
use crate::{OK, PROBLEM, USAGE};

pub fn run(args: AgentArgs) -> u8 {
    let settings = match crate::node::resolve(&args.opts, None) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {}", rebootguard_errors::chain(&e));
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
    let runtime = match crate::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(rebootguard_agent::run(settings, config)) {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("error: {}", rebootguard_errors::chain(&e));
            PROBLEM
        }
    }
}
