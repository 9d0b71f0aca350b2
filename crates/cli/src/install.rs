//! `rebootguard install`: put the systemd units (and man pages) on a
//! Debian/Ubuntu-style host and enable them.
//!
//! The units shipped in `deploy/systemd/` are the single source; install
//! only points their `ExecStart=` at the binary being installed. What it
//! will do is planned first ([`plan`], reading files only), then done
//! ([`run`]); `--dry-run` prints the plan.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::{OK, PROBLEM};

/// The binary path the shipped units name.
const SHIPPED_BIN: &str = "/usr/local/bin/rebootguard";

/// The units every install writes, by file name.
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

/// The node agent's unit, written with `--agent`.
pub const AGENT: (&str, &str) = (
    "rebootguard-agent.service",
    include_str!("../../../deploy/systemd/rebootguard-agent.service"),
);

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
    /// Also the node agent.
    pub agent: bool,
}

/// One unit file to put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// Where it goes.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Whether the file there already says exactly this.
    pub up_to_date: bool,
}

/// What install will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The unit files, in order.
    pub units: Vec<UnitFile>,
    /// Where the man pages go.
    pub man_dir: PathBuf,
    /// `systemctl` argument lists, in order; empty when not enabling.
    pub systemctl: Vec<Vec<&'static str>>,
    /// The command to enable the units by hand, when install does not.
    pub enable_hint: Option<String>,
    /// Things worth saying that change nothing.
    pub notes: Vec<String>,
}

/// The `systemctl` steps that enable and start the units.
///
/// The agent is restarted rather than started, so that an upgrade takes
/// effect, and with `--no-block`: it reports ready only after its first
/// verdict, which may wait for the API server.
pub fn systemctl_steps(agent: bool) -> Vec<Vec<&'static str>> {
    let mut enable = vec!["enable", UNITS[0].0, UNITS[1].0];
    if agent {
        enable.push(AGENT.0);
    }
    let mut steps = vec![vec!["daemon-reload"], enable, vec!["start", UNITS[1].0]];
    if agent {
        steps.push(vec!["restart", "--no-block", AGENT.0]);
    }
    steps
}

/// Decides what to write and run; reads the existing unit files only.
pub fn plan(options: &Options) -> Plan {
    let unit_dir = rebootguard_node::settings::under(&options.root, &options.unit_dir);
    let unit = |(name, text): (&str, &str)| {
        let path = unit_dir.join(name);
        let text = render(text, &options.bin);
        let up_to_date = std::fs::read_to_string(&path).is_ok_and(|old| old == text);
        UnitFile {
            path,
            text,
            up_to_date,
        }
    };
    let mut units: Vec<UnitFile> = UNITS.into_iter().map(unit).collect();
    let mut notes = Vec::new();
    let agent = unit(AGENT);
    if options.agent {
        units.push(agent);
    } else if agent.path.exists() && !agent.up_to_date {
        notes.push(format!(
            "{} is installed but was not updated (pass --agent to update it)",
            agent.path.display()
        ));
    }
    let enabling = !options.no_enable && options.root == Path::new("/");
    let mut names = vec![UNITS[0].0, UNITS[1].0];
    if options.agent {
        names.push(AGENT.0);
    }
    Plan {
        units,
        man_dir: options.root.join("usr/local/share/man/man1"),
        systemctl: if enabling {
            systemctl_steps(options.agent)
        } else {
            Vec::new()
        },
        enable_hint: (!enabling).then(|| {
            format!(
                "systemctl daemon-reload && systemctl enable --now {}",
                names.join(" ")
            )
        }),
        notes,
    }
}

/// Prints one line of progress. An install goes on whoever reads its
/// output: a reader that went away (`| head -1`) must not leave it half
/// done, so a failed write is dropped where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Writes the units and man pages, then enables the units.
pub fn run(options: &Options) -> u8 {
    let plan = plan(options);
    let verb = if options.dry_run {
        "would write"
    } else {
        "wrote"
    };
    let mut failed = false;
    for unit in &plan.units {
        let path = &unit.path;
        if unit.up_to_date {
            say!("{} is up to date", path.display());
            continue;
        }
        if !options.dry_run
            && let Err(e) = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(path, &unit.text))
        {
            eprintln!("error: failed to write {}: {e}", path.display());
            failed = true;
            continue;
        }
        say!("{verb} {}", path.display());
    }
    for note in &plan.notes {
        say!("note: {note}");
    }
    let man_dir = &plan.man_dir;
    if !options.dry_run {
        match std::fs::create_dir_all(man_dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), man_dir))
        {
            Ok(()) => say!("wrote man pages to {}", man_dir.display()),
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
    if let Some(hint) = &plan.enable_hint {
        say!("not enabled; run: {hint}");
        return OK;
    }
    for args in &plan.systemctl {
        if options.dry_run {
            say!("would run systemctl {}", args.join(" "));
            continue;
        }
        match Command::new("systemctl").args(args).status() {
            Ok(status) if status.success() => say!("ran systemctl {}", args.join(" ")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn options(root: &Path, agent: bool) -> Options {
        Options {
            root: root.to_path_buf(),
            unit_dir: "/etc/systemd/system".into(),
            bin: "/opt/rg/bin/rebootguard".into(),
            dry_run: true,
            no_enable: false,
            agent,
        }
    }

    #[test]
    fn the_agent_flag_parses_and_is_off_by_default() {
        let parse = |args: &[&str]| match Cli::try_parse_from(args).expect("parses").command {
            crate::cli::Command::Install { agent, .. } => agent,
            other => panic!("install, not {other:?}"),
        };
        assert!(!parse(&["rebootguard", "install"]));
        assert!(parse(&["rebootguard", "install", "--agent", "--dry-run"]));
    }

    #[test]
    fn units_point_at_the_binary() {
        let services = UNITS
            .into_iter()
            .chain([AGENT])
            .filter(|(name, _)| name.ends_with(".service"));
        for (name, text) in services {
            assert!(text.contains(SHIPPED_BIN), "{name} names {SHIPPED_BIN}");
            let rendered = render(text, Path::new("/opt/rg/bin/rebootguard"));
            assert!(!rendered.contains(SHIPPED_BIN), "{name}");
            assert!(rendered.contains("ExecStart="), "{name}");
        }
        assert!(
            render(AGENT.1, Path::new("/opt/rg/bin/rebootguard"))
                .contains("ExecStart=/opt/rg/bin/rebootguard agent\n")
        );
    }

    #[test]
    fn the_agent_is_planned_only_when_asked() {
        let root = tempfile::tempdir().expect("tempdir");
        let without = plan(&options(root.path(), false));
        assert_eq!(without.units.len(), 3);
        assert!(without.units.iter().all(|u| !u.up_to_date));
        assert!(without.notes.is_empty());
        let hint = without.enable_hint.expect("not / : not enabled");
        assert!(!hint.contains("agent"), "{hint}");

        let with = plan(&options(root.path(), true));
        assert_eq!(with.units.len(), 4);
        assert!(
            with.units[3]
                .path
                .ends_with("etc/systemd/system/rebootguard-agent.service")
        );
        let hint = with.enable_hint.expect("not / : not enabled");
        assert!(hint.ends_with("rebootguard-agent.service"), "{hint}");

        // An agent unit written earlier is left alone, and said so.
        let agent = &with.units[3];
        std::fs::create_dir_all(agent.path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&agent.path, "[Service]\nExecStart=/old/rebootguard agent\n")
            .expect("write");
        let without = plan(&options(root.path(), false));
        assert_eq!(without.units.len(), 3);
        assert_eq!(without.notes.len(), 1, "{:?}", without.notes);
        assert!(without.notes[0].contains("--agent"));
        std::fs::write(&agent.path, &agent.text).expect("write");
        assert!(plan(&options(root.path(), false)).notes.is_empty());
        assert!(plan(&options(root.path(), true)).units[3].up_to_date);
    }

    #[test]
    fn enabling_starts_the_agent_without_waiting_for_its_verdict() {
        assert_eq!(
            systemctl_steps(false),
            [
                vec!["daemon-reload"],
                vec![
                    "enable",
                    "rebootguard-restore.service",
                    "rebootguard-backup.path"
                ],
                vec!["start", "rebootguard-backup.path"],
            ]
        );
        let steps = systemctl_steps(true);
        assert_eq!(
            steps[1],
            [
                "enable",
                "rebootguard-restore.service",
                "rebootguard-backup.path",
                "rebootguard-agent.service"
            ]
        );
        assert_eq!(
            steps.last().expect("a step"),
            &["restart", "--no-block", "rebootguard-agent.service"]
        );
        // Installing on the live root enables; elsewhere, it only says how.
        let live = plan(&Options {
            root: "/".into(),
            unit_dir: "/nonexistent/rebootguard-test/units".into(),
            ..options(Path::new("/"), true)
        });
        assert_eq!(live.systemctl, steps);
        assert_eq!(live.enable_hint, None);
        let no_enable = plan(&Options {
            root: "/".into(),
            unit_dir: "/nonexistent/rebootguard-test/units".into(),
            no_enable: true,
            ..options(Path::new("/"), true)
        });
        assert!(no_enable.systemctl.is_empty());
    }
}
