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
    for file in [
        "flake.nix",
        "nix/module.nix",
        "nix/package.nix",
        "crates/cli/tests/nix/eval-module.nix",
    ] {
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
    // network (no PrivateNetwork), the D-Bus system bus socket for the k3s
    // restart (AF_UNIX, /run neither hidden nor replaced).
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
        "TemporaryFileSystem",
        "RootDirectory",
        "RootImage",
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

/// `rebootguard install | head -1`: with its reader gone the install still
/// finishes, and a write to the closed pipe is no panic.
#[test]
fn install_finishes_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .arg("install")
        .arg("--root")
        .arg(dir.path())
        .args(["--no-enable", "--agent"])
        .stdout(writer)
        .output()
        .expect("run install");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    let units = dir.path().join("etc/systemd/system");
    for name in ["rebootguard-restore.service", "rebootguard-agent.service"] {
        assert!(units.join(name).is_file(), "{name} written all the same");
    }
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

/// Splits an `ExecStart=` the way the NixOS module quotes it (words, and
/// single-quoted words with `'\''` for a quote).
fn exec_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            '\\' if !quoted => {}
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

fn json_strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `nix/module.nix` evaluated by `tests/nix/eval-module.nix` for its
/// configurations, or `None` (with the reason printed) without nix.
fn evaluated_module() -> Option<serde_json::Value> {
    if Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: nix-instantiate is not installed (Debian package nix-bin)");
        return None;
    }
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nix/eval-module.nix");
    let out = Command::new("nix-instantiate")
        .args(["--read-write-mode", "--eval", "--strict", "--json"])
        .arg(&harness)
        .output()
        .expect("nix-instantiate");
    let stderr = text(&out.stderr);
    if !out.status.success()
        && (stderr.contains("Permission denied") || stderr.contains("read-only"))
    {
        eprintln!("skipped: the Nix store is not writable here: {stderr}");
        return None;
    }
    assert!(out.status.success(), "{stderr}");
    Some(serde_json::from_slice(&out.stdout).expect("JSON"))
}

#[test]
fn nixos_module_runs_the_agent_as_the_shipped_unit_does() {
    let Some(eval) = evaluated_module() else {
        return;
    };
    // The agent is opt-in, and can run without the restore units.
    assert!(eval["restore"]["services"]["rebootguard-agent"].is_null());
    assert!(eval["agentOnly"]["services"]["rebootguard-restore"].is_null());
    for scenario in ["restore", "agent", "agentOnly"] {
        assert_eq!(
            eval[scenario]["failedAssertions"],
            serde_json::json!([]),
            "{scenario}"
        );
    }
    let unit = unit_settings(&repo("deploy/systemd/rebootguard-agent.service"));
    let service = &eval["agent"]["services"]["rebootguard-agent"];

    // The same unit as deploy/systemd/rebootguard-agent.service.
    assert_eq!(service["description"], one(&unit, "Unit", "Description"));
    assert_eq!(
        json_strings(&service["documentation"]),
        values(&unit, "Unit", "Documentation")
    );
    assert_eq!(
        json_strings(&service["after"]),
        values(&unit, "Unit", "After")
    );
    assert_eq!(
        json_strings(&service["wants"]),
        values(&unit, "Unit", "Wants")
    );
    assert_eq!(
        json_strings(&service["wantedBy"]),
        values(&unit, "Install", "WantedBy")
    );
    for key in ["before", "requires", "bindsTo", "partOf", "requiredBy"] {
        assert!(service[key].is_null(), "{key}");
    }
    let config = service["serviceConfig"].as_object().expect("serviceConfig");
    let shipped: Vec<&(String, String, String)> = unit
        .iter()
        .filter(|(s, k, _)| s == "Service" && k != "ExecStart")
        .collect();
    for (_, key, value) in &shipped {
        assert_eq!(
            config.get(key.as_str()).and_then(|v| v.as_str()),
            Some(value.as_str()),
            "{key}"
        );
    }
    for key in config.keys() {
        assert!(
            shipped.iter().any(|(_, k, _)| k == key)
                || ["ExecStart", "EnvironmentFile"].contains(&key.as_str()),
            "{key} is not in the shipped unit"
        );
    }
    assert_eq!(
        config["EnvironmentFile"],
        "/run/secrets/rebootguard-agent.env"
    );

    // Its command line is the binary's.
    let exec = exec_words(config["ExecStart"].as_str().expect("ExecStart"));
    assert!(exec[0].ends_with("/bin/rebootguard"), "{exec:?}");
    assert_eq!(exec[1], "agent");
    assert!(exec.contains(&"--taint".to_owned()), "{exec:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_rebootguard"))
        .args(&exec[1..])
        .arg("--help")
        .output()
        .expect("run rebootguard");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{exec:?}: {}",
        text(&out.stderr)
    );
    let only = exec_words(
        eval["agentOnly"]["services"]["rebootguard-agent"]["serviceConfig"]["ExecStart"]
            .as_str()
            .expect("ExecStart"),
    );
    assert!(only.contains(&"--no-taint".to_owned()), "{only:?}");

    // Its config file holds the settings and names the secrets, and the
    // agent reads it.
    let file = exec
        .iter()
        .position(|w| w == "--config")
        .map(|i| exec[i + 1].clone())
        .expect("--config");
    assert!(file.starts_with("/nix/store/"), "{file}");
    let generated: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("the generated file"))
            .expect("JSON");
    let table: rebootguard_agent::config::File =
        serde_json::from_value(generated["agent"].clone()).expect("an [agent] table");
    let resolved = rebootguard_agent::config::resolve(
        table,
        &rebootguard_agent::config::Flags {
            taint: Some(true),
            ..rebootguard_agent::config::Flags::default()
        },
    )
    .expect("the agent accepts it");
    use rebootguard_agent::config::{AlertKind, Secret};
    assert_eq!(
        resolved.policy.restart_grace,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(resolved.listen, Some("0.0.0.0:9478".parse().expect("addr")));
    assert_eq!(resolved.alerts.len(), 2);
    assert_eq!(resolved.alerts[0].kind, AlertKind::Slack);
    assert_eq!(
        resolved.alerts[0].url,
        Secret::File("/run/secrets/slack-url".into())
    );
    assert_eq!(resolved.alerts[1].url, Secret::Env("HOOK_URL".into()));
    assert_eq!(
        resolved.alerts[1].token,
        Some(Secret::File("/run/secrets/hook-token".into()))
    );

    // Mistakes are refused at evaluation, secrets in the store first.
    for (scenario, says) in [
        ("secretInStore", "must not be in the Nix store"),
        ("twoUrls", "exactly one of url, urlFile or urlEnv"),
        ("taintInSettings", "not settings.taint"),
    ] {
        let failed = json_strings(&eval[scenario]["failedAssertions"]);
        assert!(
            failed.iter().any(|m| m.contains(says)),
            "{scenario}: {failed:?}"
        );
    }

    // The unit NixOS would write passes systemd-analyze verify.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped systemd-analyze verify: not installed");
        return;
    }
    let mut rendered = format!(
        "[Unit]\nDescription={}\nDocumentation={}\nAfter={}\nWants={}\n\n[Service]\n",
        service["description"].as_str().expect("description"),
        json_strings(&service["documentation"]).join(" "),
        json_strings(&service["after"]).join(" "),
        json_strings(&service["wants"]).join(" "),
    );
    for (key, value) in config {
        let value = value.as_str().expect("a string");
        let value = if key == "ExecStart" {
            value.replacen(&exec[0], env!("CARGO_BIN_EXE_rebootguard"), 1)
        } else {
            value.to_owned()
        };
        rendered.push_str(&format!("{key}={value}\n"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rebootguard-agent.service");
    std::fs::write(&path, &rendered).expect("write");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    assert!(out.status.success(), "{rendered}\n{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("rebootguard-agent.service"),
        "{rendered}\n{}",
        text(&out.stderr)
    );
}
