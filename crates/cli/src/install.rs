//! `rebootguard install`: put the systemd units (and man pages) on a
//! Debian/Ubuntu-style host and enable them.
//!
//! The units shipped in `deploy/systemd/` are the single source; install
//! only points their `ExecStart=` at the binary being installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::{OK, PROBLEM};

/// The binary path the shipped units name.
const SHIPPED_BIN: &str = "/usr/local/bin/rebootguard";

/// The shipped units, by file name.
pub const UNITS: [(&str, &str); 3] = [
    (
        "rebootguard-restore.service",
        include_str!("../../../deploy/systemd/rebootguard-restore.service"),
    ),
    (
        "rebootguard-backup.path",
        include_str!("../../../deploy/systemd/rebootguard-backup.path"),
    ),
    (
        "rebootguard-backup.service",
        include_str!("../../../deploy/systemd/rebootguard-backup.service"),
    ),
];

/// The units `systemctl enable` gets.
const ENABLE: [&str; 2] = ["rebootguard-restore.service", "rebootguard-backup.path"];

/// A unit's text with `ExecStart=` pointing at `bin`.
pub fn render(unit: &str, bin: &Path) -> String {
    unit.replace(SHIPPED_BIN, &bin.display().to_string())
}

/// Options of `rebootguard install`.
pub struct Options {
    /// Host root.
    pub root: PathBuf,
    /// Unit directory under the root.
    pub unit_dir: PathBuf,
    /// The binary the units run.
    pub bin: PathBuf,
    /// Say, don't do.
    pub dry_run: bool,
    /// Skip daemon-reload/enable/start.
    pub no_enable: bool,
}

/// Writes the units and man pages, then enables the units.
pub fn run(options: &Options) -> u8 {
    let unit_dir = rebootguard_node::settings::under(&options.root, &options.unit_dir);
    let man_dir = options.root.join("usr/local/share/man/man1");
    let verb = if options.dry_run {
        "would write"
    } else {
        "wrote"
    };
    let mut failed = false;
    for (name, text) in UNITS {
        let path = unit_dir.join(name);
        let text = render(text, &options.bin);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            println!("{} is up to date", path.display());
            continue;
        }
        if !options.dry_run
            && let Err(e) =
                std::fs::create_dir_all(&unit_dir).and_then(|()| std::fs::write(&path, &text))
        {
            eprintln!("error: failed to write {}: {e}", path.display());
            failed = true;
            continue;
        }
        println!("{verb} {}", path.display());
    }
    if !options.dry_run {
        match std::fs::create_dir_all(&man_dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), &man_dir))
        {
            Ok(()) => println!("wrote man pages to {}", man_dir.display()),
            // The units work without them; their Documentation= lines just dangle.
            Err(e) => eprintln!(
                "warning: failed to write man pages to {}: {e}",
                man_dir.display()
            ),
        }
    }
    if failed {
        return PROBLEM;
    }
    let steps: [&[&str]; 3] = [
        &["daemon-reload"],
        &["enable", ENABLE[0], ENABLE[1]],
        &["start", "rebootguard-backup.path"],
    ];
    if options.no_enable || options.root != Path::new("/") {
        println!(
            "not enabled; run: systemctl daemon-reload && systemctl enable --now {}",
            ENABLE.join(" ")
        );
        return OK;
    }
    for args in steps {
        if options.dry_run {
            println!("would run systemctl {}", args.join(" "));
            continue;
        }
        match Command::new("systemctl").args(args).status() {
            Ok(status) if status.success() => println!("ran systemctl {}", args.join(" ")),
            Ok(status) => {
                eprintln!("error: systemctl {} failed ({status})", args.join(" "));
                return PROBLEM;
            }
            Err(e) => {
                eprintln!(
                    "error: cannot run systemctl ({e}); is this a systemd host? Use --no-enable and enable the units yourself"
                );
                return PROBLEM;
            }
        }
    }
    OK
}
