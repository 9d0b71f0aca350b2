//! The deployment files agree with each other and parse.

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn nixos_module_mirrors_the_systemd_units() {
    let module = repo("nix/module.nix");
    let restore = repo("deploy/systemd/rebootguard-restore.service");
    let path = repo("deploy/systemd/rebootguard-backup.path");
    // Same watched file, same never-fail restore, same ordering targets.
    assert!(path.contains("PathChanged=/run/flannel/subnet.env"));
    assert!(module.contains("PathChanged = \"/run/flannel/subnet.env\";"));
    assert!(restore.contains("ExecStart=-/usr/local/bin/rebootguard node restore"));
    assert!(module.contains("ExecStart = \"-${bin} node ${flags} restore\";"));
    for target in ["local-fs.target", "network-online.target"] {
        assert!(
            restore.contains(target) && module.contains(target),
            "{target}"
        );
    }
    assert!(module.contains("before = cfg.k3sUnits;"));
    assert!(module.contains("wantedBy = cfg.k3sUnits;"));
}

#[test]
fn nix_files_parse() {
    if Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: nix-instantiate is not installed (Debian package nix-bin)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in ["flake.nix", "nix/module.nix", "nix/package.nix"] {
        let out = Command::new("nix-instantiate")
            .arg("--parse")
            .arg(root.join(file))
            .output()
            .expect("nix-instantiate");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The check has teeth.
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.nix");
    std::fs::write(&broken, "{ config, ... }: { options = ").expect("write");
    let out = Command::new("nix-instantiate")
        .arg("--parse")
        .arg(&broken)
        .output()
        .expect("nix-instantiate");
    assert!(!out.status.success());
}

/// `(section, key, value)` of every setting of a unit file, in order.
fn unit_settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            out.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        }
    }
    out
}

/// Every value of `key` in `section`, space-separated lists split.
fn values(settings: &[(String, String, String)], section: &str, key: &str) -> Vec<String> {
    settings
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .flat_map(|(_, _, v)| v.split_whitespace().map(str::to_owned))
        .collect()
}

fn one(settings: &[(String, String, String)], section: &str, key: &str) -> String {
    let all: Vec<&String> = settings
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(all.len(), 1, "exactly one {key}= in [{section}]: {all:?}");
    all[0].clone()
}

#[test]
fn agent_unit_runs_alongside_k3s_and_never_holds_it_back() {
    let unit = unit_settings(&repo("deploy/systemd/rebootguard-agent.service"));
    // Nothing ties k3s and the agent together: no strong dependency either
    // way, no ordering after k3s (a hanging k3s start would hold the agent
    // back), and k3s is not pulled in by starting the agent.
    for key in ["Requires", "Requisite", "BindsTo", "PartOf", "Upholds"] {
        assert!(values(&unit, "Unit", key).is_empty(), "{key}=");
    }
    for key in ["After", "Before", "Wants"] {
        assert!(
            values(&unit, "Unit", key)
                .iter()
                .all(|u| !u.starts_with("k3s")),
            "{key}= names k3s"
        );
    }
    let after = values(&unit, "Unit", "After");
    for needed in ["network-online.target", "rebootguard-restore.service"] {
        assert!(after.iter().any(|u| u == needed), "After={needed}");
    }
    assert_eq!(values(&unit, "Install", "WantedBy"), ["multi-user.target"]);
    assert!(values(&unit, "Install", "RequiredBy").is_empty());

    // sd_notify: READY=1 after the first verdict, WATCHDOG=1 while alive.
    assert_eq!(one(&unit, "Service", "Type"), "notify");
    assert!(one(&unit, "Service", "WatchdogSec").ends_with('s'));
    assert_eq!(one(&unit, "Service", "Restart"), "always");
    assert!(!one(&unit, "Service", "RestartSec").is_empty());
    // The taint is the config file's business in systemd mode.
    let exec = one(&unit, "Service", "ExecStart");
    assert_eq!(exec, "/usr/local/bin/rebootguard agent");

    // Hardened, but not past what the agent needs: namespaces, mounts,
    // links and raw sockets (capabilities), net sysctls written by the CNI
    // plugins (no ProtectKernelTunables), subnet.env under /run and backups
    // and IPAM leases under /var (not ProtectSystem=strict), the host's
    // network (no PrivateNetwork), systemctl's socket (AF_UNIX).
    let caps = values(&unit, "Service", "CapabilityBoundingSet");
    for cap in ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"] {
        assert!(caps.iter().any(|c| c == cap), "{cap}");
    }
    assert_eq!(one(&unit, "Service", "ProtectSystem"), "full");
    for absent in [
        "ProtectKernelTunables",
        "PrivateNetwork",
        "PrivateDevices",
        "PrivateUsers",
        "DynamicUser",
        "User",
        "ReadOnlyPaths",
        "InaccessiblePaths",
        "SystemCallFilter",
        "MemoryDenyWriteExecute",
        "IPAddressDeny",
    ] {
        assert!(values(&unit, "Service", absent).is_empty(), "{absent}=");
    }
    let namespaces = values(&unit, "Service", "RestrictNamespaces");
    assert!(namespaces.iter().any(|n| n == "net") && namespaces.iter().any(|n| n == "mnt"));
    let families = values(&unit, "Service", "RestrictAddressFamilies");
    for family in ["AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6"] {
        assert!(families.iter().any(|f| f == family), "{family}");
    }
}

fn run_install(root: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .arg("install")
        .arg("--root")
        .arg(root)
        .args(extra)
        .output()
        .expect("run install")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn install_agent_writes_a_unit_that_systemd_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_rebootguard");
    let units = dir.path().join("etc/systemd/system");

    let dry = run_install(dir.path(), &["--agent", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let said = text(&dry.stdout);
    assert!(
        said.contains(&format!(
            "would write {}",
            units.join("rebootguard-agent.service").display()
        )),
        "{said}"
    );
    assert!(said.contains("rebootguard-agent.service"), "{said}");
    assert!(!units.exists(), "a dry run writes nothing");

    // Without --agent, no agent unit.
    let out = run_install(dir.path(), &["--no-enable"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!units.join("rebootguard-agent.service").exists());
    assert!(
        !text(&out.stdout).contains("agent"),
        "{}",
        text(&out.stdout)
    );

    let out = run_install(dir.path(), &["--no-enable", "--agent"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("rebootguard-backup.path is up to date"),
        "{said}"
    );
    assert!(
        said.contains("enable --now rebootguard-restore.service rebootguard-backup.path rebootguard-agent.service"),
        "{said}"
    );
    let agent = std::fs::read_to_string(units.join("rebootguard-agent.service")).expect("unit");
    assert!(
        agent.contains(&format!("ExecStart={bin} agent\n")),
        "{agent}"
    );
    assert!(
        dir.path()
            .join("usr/local/share/man/man1/rebootguard-agent.1")
            .exists(),
        "the unit's Documentation= man page"
    );

    // Later runs without --agent leave it alone and quiet while it is current...
    let out = run_install(dir.path(), &["--no-enable"]);
    assert!(
        !text(&out.stdout).contains("note:"),
        "{}",
        text(&out.stdout)
    );
    // ... and say so when it is not.
    std::fs::write(
        units.join("rebootguard-agent.service"),
        agent.replace(bin, "/old/rebootguard"),
    )
    .expect("write");
    let out = run_install(dir.path(), &["--no-enable"]);
    assert!(
        text(&out.stdout).contains("was not updated (pass --agent to update it)"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(units.join("rebootguard-agent.service"), &agent).expect("write");

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped systemd-analyze verify: not installed");
        return;
    }
    let names = [
        "rebootguard-restore.service",
        "rebootguard-backup.path",
        "rebootguard-backup.service",
        "rebootguard-agent.service",
    ];
    let verify = |dir: &Path| {
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(names.iter().map(|n| dir.join(n)))
            .output()
            .expect("systemd-analyze")
    };
    let out = verify(&units);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Not even a warning about the agent's unit (unknown or misplaced keys
    // are warnings only, so look at what was said too).
    assert!(
        !text(&out.stderr).contains("rebootguard-agent.service"),
        "{}",
        text(&out.stderr)
    );

    // The check has teeth: a broken agent unit is refused.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).expect("mkdir");
    for name in names {
        let text = std::fs::read_to_string(units.join(name)).expect("unit");
        let text = if name == "rebootguard-agent.service" {
            text.replace(bin, "/nonexistent/rebootguard")
        } else {
            text
        };
        std::fs::write(broken.join(name), text).expect("write");
    }
    assert!(!verify(&broken).status.success());
    std::fs::write(
        broken.join("rebootguard-agent.service"),
        agent.replace("Type=notify", "Type=notfy"),
    )
    .expect("write");
    let out = verify(&broken);
    assert!(
        !out.status.success() || text(&out.stderr).contains("notfy"),
        "a bad Type= is caught: {}",
        text(&out.stderr)
    );
}

#[test]
fn install_dry_run_on_the_live_root_shows_the_agent_steps() {
    // A dry run reads the live unit directory but writes and runs nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(["install", "--agent", "--dry-run"])
        .args(["--unit-dir", "/nonexistent/rebootguard-test/units"])
        .output()
        .expect("run install");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for line in [
        "would write /nonexistent/rebootguard-test/units/rebootguard-agent.service",
        "would run systemctl daemon-reload",
        "would run systemctl enable rebootguard-restore.service rebootguard-backup.path rebootguard-agent.service",
        "would run systemctl start rebootguard-backup.path",
        "would run systemctl restart --no-block rebootguard-agent.service",
    ] {
        assert!(said.lines().any(|l| l == line), "{line:?} in\n{said}");
    }
    assert!(!Path::new("/nonexistent/rebootguard-test").exists());
}
