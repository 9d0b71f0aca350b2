//! `rebootguard diagnose`, `snapshot` and `clean-stale`: get cluster state
//! (files or the live API), hand it to the pure diagnose crate, present.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rebootguard_cluster::{Discovery, collect};
use rebootguard_diagnose::clean::{self, Action};
use rebootguard_diagnose::render::{self, Format};
use rebootguard_diagnose::snapshot::{KINDS, Kind};
use rebootguard_diagnose::{Config, Snapshot, analyse};
use rebootguard_node::settings::parse_duration;

use crate::cli::{Color, Input, Output};
use crate::{CANNOT, OK, PROBLEM, USAGE};

/// Why state could not be had; always means exit 2.
struct Failed(String);

/// Cluster state and, in live mode, the client it came from.
struct State {
    snapshot: Snapshot,
    client: Option<kube::Client>,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed(format!("failed to start the async runtime: {e}")))
}

fn bound(text: &str) -> Result<Duration, Failed> {
    parse_duration(text)
        .ok_or_else(|| Failed(format!("--timeout {text:?} is not a duration (e.g. 30s)")))
}

/// Cluster state from `input`; in live mode only `kinds` are listed (a
/// command that reads less needs no permission for the rest, and warns
/// about nothing it does not use).
fn read(input: &Input, kinds: &[Kind], runtime: &tokio::runtime::Runtime) -> Result<State, Failed> {
    if !input.snapshot.is_empty() {
        let mut merged: Option<Snapshot> = None;
        for path in &input.snapshot {
            // `-` is stdin: `kubectl get ... -o json | rebootguard diagnose --snapshot -`.
            let reader: Box<dyn Read> = if path.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let file = std::fs::File::open(path)
                    .map_err(|e| Failed(format!("cannot open {}: {e}", path.display())))?;
                Box::new(file)
            };
            let part = rebootguard_diagnose::load_reader(BufReader::new(reader)).map_err(|e| {
                Failed(format!(
                    "{}: {}",
                    shown(path),
                    rebootguard_errors::chain(&e)
                ))
            })?;
            match &mut merged {
                None => merged = Some(part),
                Some(all) => all.merge(part),
            }
        }
        let mut snapshot = merged.unwrap_or_default();
        // Overlapping files (two dumps, a list and a later one) hold the
        // same objects: each counts once.
        snapshot.dedup();
        let named: Vec<String> = input.snapshot.iter().map(|p| shown(p)).collect();
        has_nodes(&snapshot, &named.join(", "))?;
        return Ok(State {
            snapshot,
            client: None,
        });
    }
    if let Some(dir) = &input.dump {
        let files = read_tree(dir)?;
        let snapshot = rebootguard_diagnose::load::dump(
            files
                .iter()
                .map(|(path, bytes)| (path.as_str(), bytes.as_slice())),
        )
        .map_err(|e| {
            Failed(format!(
                "{}: {}",
                dir.display(),
                rebootguard_errors::chain(&e)
            ))
        })?;
        has_nodes(&snapshot, &dir.display().to_string())?;
        return Ok(State {
            snapshot,
            client: None,
        });
    }
    let bound = bound(&input.timeout)?;
    let discovery = Discovery::from_env(input.kubeconfig.clone(), Path::new("/"));
    runtime.block_on(async {
        let (client, source) = rebootguard_cluster::connect(&discovery, bound)
            .await
            .map_err(|e| Failed(rebootguard_errors::chain(&e)))?;
        let snapshot = collect::collect_kinds(&client, &source.to_string(), bound, kinds).await;
        let unreadable = |kind: &str| snapshot.missing.iter().find(|m| m.kind == kind);
        if let Some(missing) = unreadable("v1 Node").or_else(|| unreadable("v1 Pod")) {
            return Err(Failed(format!(
                "cannot list {} from {source}: {}",
                missing.kind, missing.reason
            )));
        }
        Ok(State {
            snapshot,
            client: Some(client),
        })
    })
}

/// An input file as the user named it (`-` is stdin).
fn shown(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Input without a single Node is not a cluster that could be judged
/// healthy: a List of other kinds, `items: null`, an empty file or
/// directory. Saying "healthy" there would hide a wrong command.
fn has_nodes(snapshot: &Snapshot, source: &str) -> Result<(), Failed> {
    if snapshot.nodes.is_empty() {
        return Err(Failed(format!(
            "{source} holds no Nodes, so there is no cluster to judge; give the Nodes with \
             the pods and events, e.g. `kubectl get nodes,pods,events -A -o json > state.json` \
             or a `kubectl cluster-info dump --output-directory DIR`"
        )));
    }
    Ok(())
}

/// Every regular file under `dir`, as (path relative to `dir`, bytes).
fn read_tree(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, Failed> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries = std::fs::read_dir(&next)
            .map_err(|e| Failed(format!("cannot read {}: {e}", next.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() => {
                    let bytes = read_bounded(&path)?;
                    let relative = path.strip_prefix(dir).unwrap_or(&path);
                    files.push((relative.to_string_lossy().into_owned(), bytes));
                }
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A dump file, at most [`rebootguard_diagnose::load::MAX_INPUT`] bytes of it.
fn read_bounded(path: &Path) -> Result<Vec<u8>, Failed> {
    let limit = rebootguard_diagnose::load::MAX_INPUT;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| Failed(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > limit {
        return Err(Failed(format!(
            "{} is larger than {limit} bytes, the most diagnose reads from one file; is it part of a cluster-info dump?",
            path.display()
        )));
    }
    Ok(bytes)
}

fn now_for(snapshot: &Snapshot, now: Option<&str>) -> Result<jiff::Timestamp, Failed> {
    match now {
        Some(text) => text
            .parse()
            .map_err(|e| Failed(format!("--now {text:?} is not an RFC 3339 time: {e}"))),
        None => Ok(snapshot
            .metadata
            .collected_at
            .unwrap_or_else(jiff::Timestamp::now)),
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, Failed> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failed(format!("cannot read {}: {e}", path.display())))?;
    serde_saphyr::from_str(&text).map_err(|e| Failed(format!("{} is invalid: {e}", path.display())))
}

/// `rebootguard diagnose`.
pub fn diagnose(
    input: &Input,
    output: Output,
    now: Option<&str>,
    config: Option<&Path>,
    color: Color,
) -> u8 {
    let result = (|| {
        let config = load_config(config)?;
        let runtime = runtime()?;
        let state = read(input, &KINDS, &runtime)?;
        let now = now_for(&state.snapshot, now)?;
        Ok::<_, Failed>(analyse(&state.snapshot, now, &config))
    })();
    let report = match result {
        Ok(report) => report,
        Err(Failed(message)) => {
            eprintln!("error: could not diagnose: {message}");
            return CANNOT;
        }
    };
    let format = match output {
        Output::Human => Format::Human,
        Output::Json => Format::Json,
        Output::Markdown => Format::Markdown,
        Output::Mermaid => Format::Mermaid,
        Output::Dot => Format::Dot,
    };
    let color = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => crate::colour(&std::io::stdout()),
    };
    let text = render::render(&report, format, color);
    if write_stdout(text.as_bytes()).is_err() {
        return PROBLEM;
    }
    u8::try_from(report.exit_code()).unwrap_or(PROBLEM)
}

/// `rebootguard snapshot`.
pub fn snapshot(output: &Path, gzip: bool, kubeconfig: Option<PathBuf>, timeout: &str) -> u8 {
    let input = Input {
        kubeconfig,
        timeout: timeout.to_owned(),
        ..Input::default()
    };
    let state = match runtime().and_then(|rt| read(&input, &KINDS, &rt)) {
        Ok(state) => state,
        Err(Failed(message)) => {
            eprintln!("error: {message}");
            return CANNOT;
        }
    };
    let gzip = gzip || output.extension().is_some_and(|e| e == "gz");
    let bytes = if gzip {
        state.snapshot.to_gzip()
    } else {
        state.snapshot.to_json()
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: {}", rebootguard_errors::chain(&e));
            return PROBLEM;
        }
    };
    let written = if output == Path::new("-") {
        write_stdout(&bytes)
    } else {
        std::fs::write(output, &bytes).map_err(|e| {
            eprintln!("error: cannot write {}: {e}", output.display());
        })
    };
    if written.is_err() {
        return PROBLEM;
    }
    for missing in &state.snapshot.missing {
        eprintln!(
            "warning: not collected: {} ({})",
            missing.kind, missing.reason
        );
    }
    if output != Path::new("-") {
        eprintln!(
            "wrote {} ({} nodes, {} pods, {} events)",
            output.display(),
            state.snapshot.nodes.len(),
            state.snapshot.pods.len(),
            state.snapshot.events.len()
        );
    }
    OK
}

/// `rebootguard clean-stale`.
pub fn clean_stale(input: &Input, yes: bool, include_unowned: bool, json: bool) -> u8 {
    if yes && (!input.snapshot.is_empty() || input.dump.is_some()) {
        eprintln!(
            "error: --yes acts on the live cluster; a snapshot can only be listed (drop --snapshot/--dump)"
        );
        return USAGE;
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(Failed(message)) => {
            eprintln!("error: {message}");
            return CANNOT;
        }
    };
    // Only what the plan reads: Nodes, pods and core Events.
    let kinds: Vec<Kind> = KINDS.into_iter().filter(clean::reads).collect();
    let state = match read(input, &kinds, &runtime) {
        Ok(state) => state,
        Err(Failed(message)) => {
            eprintln!("error: {message}");
            return CANNOT;
        }
    };
    let now = state
        .snapshot
        .metadata
        .collected_at
        .unwrap_or_else(jiff::Timestamp::now);
    let plan = clean::plan(&state.snapshot, now, &clean::Options { include_unowned });
    let mut results = Vec::new();
    if yes && let Some(client) = &state.client {
        let bound = bound(&input.timeout).unwrap_or(Duration::from_secs(30));
        for entry in plan.actionable() {
            let force = entry.action == Action::ForceDelete;
            let outcome = runtime.block_on(rebootguard_cluster::node::delete_pod(
                client,
                &entry.namespace,
                &entry.name,
                &entry.uid,
                force,
                bound,
            ));
            match &outcome {
                Ok(()) => tracing::info!(
                    pod = %format!("{}/{}", entry.namespace, entry.name),
                    force,
                    reason = %entry.reason,
                    "deleted stale pod"
                ),
                Err(e) => tracing::warn!(
                    pod = %format!("{}/{}", entry.namespace, entry.name),
                    "failed to delete stale pod: {}",
                    rebootguard_errors::chain(e)
                ),
            }
            results.push((entry, outcome.map_err(|e| rebootguard_errors::chain(&e))));
        }
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if json {
        let value = serde_json::json!({
            "dryRun": !yes,
            "plan": plan,
            "results": results.iter().map(|(entry, result)| serde_json::json!({
                "namespace": entry.namespace,
                "name": entry.name,
                "deleted": result.is_ok(),
                "error": result.as_ref().err(),
            })).collect::<Vec<_>>(),
        });
        let _ = write_stdout(format!("{value:#}\n").as_bytes());
    } else {
        let _ = write_stdout(describe_plan(&plan, yes, &results).as_bytes());
    }
    if failed > 0 { PROBLEM } else { OK }
}

fn describe_plan(
    plan: &clean::Plan,
    yes: bool,
    results: &[(&clean::Entry, Result<(), String>)],
) -> String {
    if plan.is_empty() {
        return "no stale pods\n".into();
    }
    // Names come from the cluster: shown inert on a terminal.
    let t = |text: &str| rebootguard_diagnose::escape::terminal(text).into_owned();
    let mut out = format!(
        "{:<48} {:<12} {:<12} {:<32} {:<12} REASON\n",
        "POD", "NODE", "STATUS", "OWNER", "ACTION"
    );
    for entry in &plan.entries {
        let action = match entry.action {
            Action::ForceDelete => "force-delete",
            Action::Delete => "delete",
            Action::Keep => "keep",
        };
        out.push_str(&format!(
            "{:<48} {:<12} {:<12} {:<32} {:<12} {}\n",
            t(&format!("{}/{}", entry.namespace, entry.name)),
            t(&entry.node),
            t(&entry.status),
            t(entry.owner.as_deref().unwrap_or("<none>")),
            action,
            t(&entry.reason)
        ));
    }
    if yes {
        let deleted = results.iter().filter(|(_, r)| r.is_ok()).count();
        out.push_str(&format!("\ndeleted {deleted} of {}\n", results.len()));
        for (entry, result) in results {
            if let Err(e) = result {
                out.push_str(&format!(
                    "failed: {}: {}\n",
                    t(&format!("{}/{}", entry.namespace, entry.name)),
                    t(e)
                ));
            }
        }
    } else {
        let n = plan.actionable().count();
        out.push_str(&format!(
            "\ndry run: {n} pod(s) would be deleted; run again with --yes to delete them\n"
        ));
    }
    out
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), ()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            Err(())
        }
    }
}
