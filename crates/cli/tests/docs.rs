//! The docs stay true to the code: every `rebootguard` command line the
//! README and `docs/` show names commands and flags the binary has, and
//! `docs/ARCHITECTURE.md` names every crate there is, no more, with the
//! layering its manifests keep.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rebootguard");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README and every page under `docs/`.
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.into_iter().map(|p| (p.clone(), read(&p))).collect()
}

/// The code on a page: fenced blocks line by line, and inline spans.
fn code(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push(line.to_owned());
        } else {
            out.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
        }
    }
    out
}

/// `rebootguard WORDS...` command lines in `code`, each cut at the end of
/// the command (a pipe, `;`, `&&`, a comment, a redirection).
fn commands(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let words: Vec<&str> = code.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        // `kubectl -n rebootguard ...` names the namespace, not the binary.
        if *w != "rebootguard" || i > 0 && matches!(words[i - 1], "-n" | "--namespace") {
            continue;
        }
        let command: Vec<String> = words[i + 1..]
            .iter()
            .take_while(|w| !matches!(**w, "|" | ";" | "&&" | "||" | "#" | ">" | "2>&1" | "\\"))
            .map(|w| (*w).to_owned())
            .collect();
        if command.first().is_some_and(|w| is_word(w)) {
            out.push(command);
        }
    }
    out
}

fn is_word(w: &str) -> bool {
    !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
}

/// `rebootguard ARGS --help` for each ARGS asked, run once each; empty
/// when ARGS is no command.
#[derive(Default)]
struct Helps(BTreeMap<Vec<String>, String>);

impl Helps {
    fn of(&mut self, args: &[String]) -> &str {
        self.0.entry(args.to_vec()).or_insert_with(|| {
            let out = Command::new(BIN)
                .args(args)
                .arg("--help")
                .output()
                .expect("run rebootguard");
            if out.status.success() {
                String::from_utf8_lossy(&out.stdout).into_owned()
            } else {
                String::new()
            }
        })
    }
}

/// The subcommands a help text lists under `Commands:`.
fn subcommands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn every_command_line_in_the_docs_exists_with_its_flags() {
    let mut helps = Helps::default();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (path, page) in pages() {
        let page_name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for command in code(&page).iter().flat_map(|c| commands(c)) {
            // Down the subcommands as far as the words go; a word where a
            // command expects a subcommand must be one.
            let mut path_words: Vec<String> = Vec::new();
            for w in command.iter().take_while(|w| is_word(w)) {
                let subs = subcommands(helps.of(&path_words));
                if subs.is_empty() {
                    break;
                }
                if !subs.contains(w) {
                    problems.push(format!(
                        "{page_name}: `rebootguard {}`: `{w}` is not a command of `{}`",
                        command.join(" "),
                        format!("rebootguard {}", path_words.join(" ")).trim_end()
                    ));
                    break;
                }
                path_words.push(w.clone());
            }
            let text = helps.of(&path_words);
            for flag in command
                .iter()
                .filter(|w| w.starts_with("--") && w.len() > 2)
            {
                let name = flag
                    .split(['=', '[', ']', ',', '.', ')'])
                    .next()
                    .unwrap_or(flag);
                let known = [" ", "\n", "=", "[", ","]
                    .iter()
                    .any(|end| text.contains(&format!("{name}{end}")));
                if !known {
                    problems.push(format!(
                        "{page_name}: `rebootguard {}`: `rebootguard {}` has no flag {name}",
                        command.join(" "),
                        path_words.join(" ")
                    ));
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked > 50,
        "only {checked} command lines found in the docs"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The crates under `crates/`, with the workspace crates each one's
/// `[dependencies]` name (dev-dependencies aside).
fn crates() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(repo().join("crates")).expect("crates/") {
        let dir = entry.expect("entry").path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let manifest: toml::Table = read(&manifest).parse().expect("a Cargo.toml");
        let deps = manifest
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .into_iter()
            .flat_map(|deps| deps.keys())
            .filter(|name| name.starts_with("rebootguard-") || *name == "kubesim")
            .map(|name| name.trim_start_matches("rebootguard-").to_owned())
            .collect();
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        out.insert(name, deps);
    }
    out
}

#[test]
fn the_architecture_page_names_every_crate_and_its_layering_holds() {
    let page = read(&repo().join("docs/ARCHITECTURE.md"));
    let crates = crates();
    let table: BTreeSet<String> = page
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let dirs: BTreeSet<String> = crates.keys().cloned().collect();
    assert_eq!(
        table, dirs,
        "the crate table in docs/ARCHITECTURE.md and crates/ disagree"
    );
    for name in &dirs {
        assert!(
            page.contains(&format!("crates/{name}")),
            "crates/{name} is missing from the picture in docs/ARCHITECTURE.md"
        );
    }
    // "Test infrastructure is never a dependency of the shipped binary."
    let test_only: BTreeSet<&str> = ["kubesim", "lab", "cni-flannel", "fuzzing"].into();
    let mut shipped = BTreeSet::new();
    let mut todo = vec!["cli".to_owned()];
    while let Some(name) = todo.pop() {
        if shipped.insert(name.clone()) {
            todo.extend(crates[&name].iter().cloned());
        }
    }
    for name in &shipped {
        assert!(
            !test_only.contains(name.as_str()),
            "the shipped binary depends on the test-only crate {name}"
        );
    }
    // "The pure crates know nothing of tokio, kube clients or the filesystem":
    // they depend on no adapter.
    for pure in ["flannel", "diagnose", "rollout", "errors"] {
        let adapters: Vec<&String> = crates[pure]
            .iter()
            .filter(|d| ["cluster", "hostnet", "store", "rootfs", "node"].contains(&d.as_str()))
            .collect();
        assert!(
            adapters.is_empty(),
            "the pure crate {pure} depends on {adapters:?}"
        );
    }
}
