//! `rebootguard-cni-flannel`: a flannel-compatible CNI plugin for the lab and
//! tests (installed as `flannel` in a lab node's CNI bin directory).
//!
//! Exit status: 0 on success (the result, if any, on stdout); 1 on failure,
//! with a CNI error object on stdout.

use std::io::{Read, Write};
use std::process::ExitCode;

use rebootguard_cni_flannel::{Request, run};

fn main() -> ExitCode {
    let mut stdin = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
        eprintln!("failed to read the network config from stdin: {e}");
    }
    let request = Request::from_env(stdin);
    let mut stdout = std::io::stdout().lock();
    match run(&request) {
        Ok(output) => {
            if let Some(output) = output {
                let _ = stdout.write_all(&output);
                let _ = stdout.write_all(b"\n");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            let object = error.to_json(&request.cni_version());
            let _ = writeln!(stdout, "{object}");
            ExitCode::FAILURE
        }
    }
}
