//! Diagnoses a snapshot file (any supported input) and prints the report:
//! `cargo run -p rebootguard-diagnose --example diagnose -- FILE [human|json|markdown|mermaid|dot]`.
//! A stand-in for `rebootguard diagnose --snapshot FILE` until the CLI is wired.

use rebootguard_diagnose::render::{self, Format};
use rebootguard_diagnose::{Config, analyse, load};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: diagnose FILE [human|json|markdown|mermaid|dot]");
        std::process::exit(2);
    };
    let format: Format = match args.next().unwrap_or_else(|| "human".into()).parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("failed to read {path}: {e}");
            std::process::exit(2);
        }
    };
    let snapshot = match load(&bytes) {
        Ok(s) => s,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let now = snapshot
        .metadata
        .collected_at
        .unwrap_or_else(jiff::Timestamp::now);
    let report = analyse(&snapshot, now, &Config::default());
    let color = std::env::var_os("NO_COLOR").is_none();
    print!("{}", render::render(&report, format, color));
    std::process::exit(report.exit_code());
}
