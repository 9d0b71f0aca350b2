//! `rebootguard verify` (and its hidden in-pod `verify probe`): parse and
//! check the flags, connect, hand the run to the verify crate, present the
//! verdict, map it to the exit code. SIGINT/SIGTERM cancel the run, which
//! still deletes what it created.

use std::path::Path;
use std::time::Duration;

use rebootguard_cluster::Discovery;
use rebootguard_node::settings::parse_duration;
use rebootguard_verify::judge::End;
use rebootguard_verify::probe;
use rebootguard_verify::render;
use rebootguard_verify::run::{self, Options};

use crate::cli::{ProbeArgs, VerifyArgs, VerifyCommand};
use crate::{CANNOT, OK, PROBLEM, USAGE};

fn duration(flag: &str, text: &str) -> Result<Duration, u8> {
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => {
            eprintln!("error: {flag} {text:?} is not a duration (e.g. 30s, 1500ms)");
            Err(USAGE)
        }
    }
}

/// `rebootguard verify`.
pub fn run(args: VerifyArgs) -> u8 {
    if let Some(VerifyCommand::Probe(p)) = args.command {
        return probe(&p);
    }
    let (timeout, api_timeout) = match (
        duration("--timeout", &args.timeout),
        duration("--api-timeout", &args.api_timeout),
    ) {
        (Ok(t), Ok(a)) => (t, a),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let options = Options {
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        nodes: args.nodes.clone(),
        selector: args.selector.clone(),
        timeout,
        port: args.port,
    };
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(verify(&args, &options, api_timeout))
}

async fn verify(args: &VerifyArgs, options: &Options, api_timeout: Duration) -> u8 {
    use tokio::signal::unix::{SignalKind, signal};
    // Handlers first: a signal from here on cancels, never kills halfway.
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("error: cannot install signal handlers");
        return PROBLEM;
    };
    let discovery = Discovery::from_env(args.kubeconfig.clone(), Path::new("/"));
    let (client, source) = match rebootguard_cluster::connect(&discovery, api_timeout).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: could not verify: {}", rebootguard_errors::chain(&e));
            return CANNOT;
        }
    };
    // kube retries a throttled or unavailable API for minutes: every call
    // here is bounded by --api-timeout.
    let targets = match tokio::time::timeout(api_timeout, run::targets(&client, options)).await {
        Err(_) => {
            eprintln!(
                "error: could not verify: no successful answer from the API server to the list of nodes within {} (from {source}; unreachable, or throttling or failing: the log shows what it answered)",
                args.api_timeout
            );
            return CANNOT;
        }
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            eprintln!(
                "error: could not verify: {} (from {source})",
                rebootguard_errors::chain(&e)
            );
            return CANNOT;
        }
    };
    let now = jiff::Timestamp::now();
    let plan = run::new_run(options, targets, now);
    if args.dry_run {
        return dry_run(&plan);
    }
    match tokio::time::timeout(api_timeout, run::sweep(&client, &options.namespace, now)).await {
        Ok(swept) => {
            for gone in swept {
                eprintln!("removed {gone}, left by an earlier run that did not finish");
            }
        }
        Err(_) => eprintln!(
            "warning: no successful answer from the API server within {} while removing what earlier runs left; the next run tries again",
            args.api_timeout
        ),
    }
    eprintln!(
        "verify run {}: a probe on {} node(s) in namespace {}, up to {}",
        plan.id,
        plan.targets.len(),
        plan.namespace,
        args.timeout
    );
    let mut caught = 0;
    let cancel = async {
        caught = tokio::select! {
            _ = interrupt.recv() => 2,
            _ = terminate.recv() => 15,
        };
        eprintln!("interrupted: deleting the probe pods and the Service");
    };
    let outcome = run::execute(&client, &plan, options.timeout, cancel).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: could not verify: {}", rebootguard_errors::chain(&e));
            return CANNOT;
        }
    };
    for e in &outcome.cleanup_errors {
        eprintln!("warning: could not delete {e}; the next run removes it");
    }
    if let Some(e) = &outcome.read_error {
        eprintln!("warning: reading the probes failed at least once: {e}");
    }
    let text = if args.json {
        render::json(&outcome.verdict, &plan.id, &plan.namespace)
    } else {
        render::text(&outcome.verdict)
    };
    if crate::diagnose::write_stdout(text.as_bytes()).is_err() {
        return PROBLEM;
    }
    if outcome.verdict.end == End::Interrupted && caught != 0 {
        return u8::try_from(128 + caught).unwrap_or(PROBLEM);
    }
    outcome.verdict.exit_code()
}

fn dry_run(plan: &rebootguard_verify::spec::Run) -> u8 {
    let mut docs = vec![plan.service()];
    docs.extend((0..plan.targets.len()).map(|i| plan.pod(i)));
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&d).unwrap_or_default());
    }
    if crate::diagnose::write_stdout(out.as_bytes()).is_err() {
        return PROBLEM;
    }
    OK
}

/// `rebootguard verify probe`, inside the pod.
fn probe(p: &ProbeArgs) -> u8 {
    let wait = match duration("--wait", &p.wait) {
        Ok(w) => w,
        Err(c) => return c,
    };
    let mut pod_cidrs = Vec::new();
    for c in &p.pod_cidrs {
        match c.parse() {
            Ok(n) => pod_cidrs.push(n),
            Err(_) => {
                eprintln!("error: --pod-cidr {c:?} is not a CIDR");
                return USAGE;
            }
        }
    }
    probe::main(&probe::Config {
        node: p.node.clone(),
        pod_cidrs,
        service: p.service.clone(),
        lookups: p.lookups.clone(),
        peers: p.peers,
        port: p.port,
        wait,
        message_path: p.message_path.clone(),
    })
}
