//! The real-world regression corpus (issue 11).
//!
//! Every directory under `tests/corpus/` is one case: a cluster snapshot in
//! a format kubectl writes (`list.json`, `list.json.gz`, `list.yaml`, or a
//! `dump/` tree from `kubectl cluster-info dump --output-directory`) and
//! `expected.json`, the roots diagnose must name for it (format in
//! `tests/corpus/README.md`). Each input is loaded the way `rebootguard
//! diagnose --snapshot FILE` / `--dump DIR` loads it, analysed at the case's
//! `now` with the default config, and compared. All failing cases are
//! reported at once, each with the roots diagnose actually named, so one run
//! shows the whole gap.

use std::collections::BTreeSet;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rebootguard_diagnose::report::{Impact, Report};
use rebootguard_diagnose::{Config, Snapshot, analyse};
use serde::Deserialize;
use serde_json::{Value, json};

/// The inputs a case may hold; exactly one of them.
const INPUTS: [&str; 4] = ["list.json", "list.json.gz", "list.yaml", "dump"];

/// The corpus the issue asks for: at least this many cases.
const MIN_CASES: usize = 30;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// Where the texts and shapes come from; required, never read.
    #[allow(dead_code)]
    source: String,
    now: String,
    verdict: String,
    roots: Vec<ExpectedRoot>,
    stale: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedRoot {
    cause: String,
    cni: Option<String>,
    subjects: BTreeSet<String>,
    #[serde(default)]
    title: Vec<String>,
    #[serde(default)]
    evidence: Vec<String>,
    #[serde(default)]
    impact: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Every regular file under `dir`, as (path relative to `dir`, bytes),
/// sorted: what the CLI hands to `load::dump` for `--dump DIR`.
fn read_tree(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                files.push((relative.to_string_lossy().into_owned(), fs::read(&path)?));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The case's input, loaded through the same public functions the CLI uses.
fn load(case: &Path) -> Result<Snapshot, String> {
    let present: Vec<&str> = INPUTS
        .into_iter()
        .filter(|input| case.join(input).exists())
        .collect();
    let [input] = present[..] else {
        return Err(format!(
            "expected exactly one input of {INPUTS:?}, found {present:?}"
        ));
    };
    let path = case.join(input);
    let loaded = if input == "dump" {
        let files = read_tree(&path).map_err(|e| format!("cannot read dump/: {e}"))?;
        rebootguard_diagnose::load::dump(files.iter().map(|(p, b)| (p.as_str(), b.as_slice())))
    } else {
        // One streaming read; gzip is told from its magic bytes, as for the CLI.
        let file = fs::File::open(&path).map_err(|e| format!("cannot open {input}: {e}"))?;
        rebootguard_diagnose::load_reader(BufReader::new(file))
    };
    let snapshot =
        loaded.map_err(|e| format!("{input} does not load: {}", rebootguard_errors::chain(&e)))?;
    // The CLI refuses input without Nodes; a case must be one it diagnoses.
    if snapshot.nodes.is_empty() {
        return Err(format!("{input} holds no Nodes"));
    }
    Ok(snapshot)
}

fn run(case: &Path) -> Result<(Report, Expected), String> {
    let text = fs::read_to_string(case.join("expected.json"))
        .map_err(|e| format!("cannot read expected.json: {e}"))?;
    let want: Expected =
        serde_json::from_str(&text).map_err(|e| format!("expected.json is invalid: {e}"))?;
    let now = want
        .now
        .parse()
        .map_err(|e| format!("expected.json: now {:?}: {e}", want.now))?;
    let report = analyse(&load(case)?, now, &Config::default());
    Ok((report, want))
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

fn impact_titles<'r>(impact: &'r [Impact], out: &mut Vec<&'r str>) {
    for i in impact {
        out.push(&i.title);
        impact_titles(&i.children, out);
    }
}

/// `cause.type`, and `cause.cni.type` for CNI roots, as the JSON report has them.
fn cause_of(cause: &impl serde::Serialize) -> (String, Option<String>) {
    let v = serde_json::to_value(cause).unwrap_or(Value::Null);
    let name = |v: &Value| v.as_str().map(str::to_owned);
    (
        name(&v["type"]).unwrap_or_default(),
        name(&v["cni"]["type"]),
    )
}

/// What differs between the report and the expectation, one line each.
fn differences(report: &Report, want: &Expected) -> Vec<String> {
    let mut diffs = Vec::new();
    let verdict = serde_json::to_value(report.verdict).unwrap_or(Value::Null);
    if verdict != want.verdict.as_str() {
        diffs.push(format!("verdict {verdict}, expected {:?}", want.verdict));
    }
    if report.roots.len() != want.roots.len() {
        diffs.push(format!(
            "{} root(s), expected {}",
            report.roots.len(),
            want.roots.len()
        ));
    }
    for (got, exp) in report.roots.iter().zip(&want.roots) {
        let rank = got.rank;
        let (cause, cni) = cause_of(&got.cause);
        if cause != exp.cause || (exp.cni.is_some() && cni != exp.cni) {
            diffs.push(format!(
                "root {rank}: cause {cause}{}, expected {}{}",
                cni.map(|c| format!("/{c}")).unwrap_or_default(),
                exp.cause,
                exp.cni
                    .as_ref()
                    .map(|c| format!("/{c}"))
                    .unwrap_or_default()
            ));
        }
        let subjects: BTreeSet<String> = got.subjects.iter().cloned().collect();
        if subjects != exp.subjects {
            diffs.push(format!(
                "root {rank}: subjects {subjects:?}, expected {:?}",
                exp.subjects
            ));
        }
        for t in exp.title.iter().filter(|t| !contains(&got.title, t)) {
            diffs.push(format!("root {rank}: title lacks {t:?}"));
        }
        for e in &exp.evidence {
            if !got
                .evidence
                .iter()
                .any(|ev| contains(&ev.message, e) || contains(&ev.reason, e))
            {
                diffs.push(format!("root {rank}: no evidence with {e:?}"));
            }
        }
        let mut titles = Vec::new();
        impact_titles(&got.impact, &mut titles);
        for i in &exp.impact {
            if !titles.iter().any(|t| contains(t, i)) {
                diffs.push(format!("root {rank}: impact lacks {i:?}"));
            }
        }
    }
    if let Some(stale) = want.stale
        && report.stale.pods.len() != stale
    {
        diffs.push(format!(
            "{} stale pod(s), expected {stale}",
            report.stale.pods.len()
        ));
    }
    diffs
}

/// The roots diagnose named, one compact JSON line each.
fn actual_roots(report: &Report) -> String {
    if report.roots.is_empty() {
        return "    (no roots)".into();
    }
    report
        .roots
        .iter()
        .map(|r| {
            let (cause, cni) = cause_of(&r.cause);
            let cause = cni.map(|c| format!("{cause}/{c}")).unwrap_or(cause);
            let line =
                json!({"rank": r.rank, "cause": cause, "subjects": r.subjects, "title": r.title});
            format!("    {line}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_corpus_case_names_its_expected_roots() {
    let dir = corpus_dir();
    let readme = fs::read_to_string(dir.join("README.md")).expect("tests/corpus/README.md");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    if cases.len() < MIN_CASES {
        failures.push(format!(
            "the corpus has {} cases, the issue asks for at least {MIN_CASES}",
            cases.len()
        ));
    }
    for case in &cases {
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        let mut diffs = Vec::new();
        if !readme.contains(&format!("`{name}`")) {
            diffs.push("no line in README.md".to_string());
        }
        let actual = match run(case) {
            Ok((report, want)) => {
                diffs.extend(differences(&report, &want));
                actual_roots(&report)
            }
            Err(e) => {
                diffs.push(e);
                String::new()
            }
        };
        if !diffs.is_empty() {
            failures.push(format!(
                "{name}:\n  - {}\n  actual roots:\n{actual}",
                diffs.join("\n  - ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} finding(s) over {} corpus cases:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
