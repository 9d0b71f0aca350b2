//! CNI plugins run by the exec protocol, one at a time or as a whole
//! conflist, the way containerd's libcni does.
//!
//! A plugin is a program found in `CNI_PATH`, told what to do by `CNI_*`
//! environment variables, given its network config on stdin; it prints a
//! result (or an error object) on stdout. [`Runtime`] starts it directly
//! inside a chosen "host" namespace (setns between fork and exec), with a
//! deadline after which its whole process group is killed, so a lab can run
//! Debian's real `bridge` and `host-local` against a fake node and a hung
//! plugin cannot hang a test.
//!
//! The pure half (config injection, result and error parsing, name checks)
//! is separate from the half that spawns processes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::netns::{self, Netns};

/// Where Debian installs the reference plugins.
pub const DEBIAN_PLUGIN_DIR: &str = "/usr/lib/cni";

/// For tests: [`netns::test_privileged`], and Debian's CNI `plugins` installed.
pub fn test_ready(test: &str, plugins: &[&str]) -> bool {
    if !netns::test_privileged(test) {
        return false;
    }
    let dir = std::path::Path::new(DEBIAN_PLUGIN_DIR);
    match plugins.iter().find(|p| !dir.join(p).is_file()) {
        None => true,
        Some(missing) => {
            let reason = format!(
                "{}/{missing} is missing (install containernetworking-plugins)",
                dir.display()
            );
            netns::test_skip(test, &reason);
            false
        }
    }
}

/// The deadline [`Runtime::new`] sets for one plugin call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a CNI call failed. A [`Error::Plugin`] with code 11 ("try again
/// later") and a [`Error::Timeout`] are worth retrying; the rest need a fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No executable of that name in any `CNI_PATH` directory.
    #[error("failed to find plugin {plugin:?} in path [{}]", join_paths(.path))]
    FindPlugin {
        /// The plugin type.
        plugin: String,
        /// The directories searched.
        path: Vec<PathBuf>,
    },
    /// The network config is not usable.
    #[error("invalid CNI network config: {0}")]
    BadConfig(String),
    /// A container ID, interface name or plugin type the spec forbids.
    #[error("invalid CNI argument: {0}")]
    BadArgument(String),
    /// The plugin could not be started or talked to.
    #[error("failed to run plugin type={plugin:?} ({command})")]
    Spawn {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The plugin did not finish in time and was killed.
    #[error("plugin type={plugin:?} ({command}) did not finish within {timeout:?} and was killed")]
    Timeout {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// The deadline.
        timeout: Duration,
    },
    /// The plugin failed and said why, as a CNI error object. The text
    /// reads like containerd's, which is what kubelet events show.
    #[error("plugin type={plugin:?} failed ({command}): {error}")]
    Plugin {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// The plugin's error object.
        error: PluginError,
    },
    /// The plugin failed without a readable error object.
    #[error("plugin type={plugin:?} failed ({command}): {status}: {}", stderr.trim())]
    Crashed {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// How it exited.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The plugin succeeded but printed something that is not a CNI result.
    #[error("plugin type={plugin:?} ({command}) printed an unreadable result: {output:?}")]
    BadResult {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// The output, shortened.
        output: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The host namespace could not be used.
    #[error(transparent)]
    Netns(#[from] netns::Error),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// A CNI operation (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Attach the container to the network.
    Add,
    /// Detach it; must succeed when there is nothing left to remove.
    Del,
    /// Verify the attachment still holds.
    Check,
    /// Report supported spec versions.
    Version,
}

impl Command {
    /// The value of `CNI_COMMAND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
        }
    }

    /// Parses `CNI_COMMAND`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }
}

impl fmt::Display for Command {
    /// Lower case, as containerd prints it (`failed (add)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_ascii_lowercase())
    }
}

/// The per-container arguments of a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`: path of the container's network namespace.
    pub netns: PathBuf,
    /// `CNI_IFNAME`: the interface to create inside it (`eth0`).
    pub ifname: String,
    /// `CNI_ARGS` pairs (`K8S_POD_NAME=...`), joined with `;`.
    pub extra: Vec<(String, String)>,
    /// Capability arguments (`portMappings`, `bandwidth`...), injected as
    /// `runtimeConfig` into plugins that declare the capability.
    pub capabilities: Map<String, Value>,
}

impl Args {
    /// Arguments for a pod sandbox, with the `CNI_ARGS` Kubernetes runtimes pass.
    pub fn pod(container_id: &str, netns: &Path, namespace: &str, name: &str) -> Self {
        Args {
            container_id: container_id.to_owned(),
            netns: netns.to_owned(),
            ifname: "eth0".to_owned(),
            extra: vec![
                ("IgnoreUnknown".into(), "1".into()),
                ("K8S_POD_NAMESPACE".into(), namespace.into()),
                ("K8S_POD_NAME".into(), name.into()),
                ("K8S_POD_INFRA_CONTAINER_ID".into(), container_id.into()),
            ],
            capabilities: Map::new(),
        }
    }

    /// Checks the container ID and interface name as libcni does.
    pub fn validate(&self) -> Result<()> {
        validate_container_id(&self.container_id)?;
        validate_ifname(&self.ifname)
    }

    fn cni_args(&self) -> String {
        self.extra
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// A successful ADD's result (spec 0.3.0 and later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    /// The result's spec version.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// Interfaces created or used.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    /// Routes added in the container.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// DNS settings.
    #[serde(default)]
    pub dns: Dns,
}

impl Success {
    /// The addresses assigned to the interface called `ifname` inside the
    /// container (`sandbox` set).
    pub fn addresses_of(&self, ifname: &str) -> Vec<IpNet> {
        self.ips
            .iter()
            .filter(|ip| {
                ip.interface
                    .and_then(|i| self.interfaces.get(i))
                    .is_some_and(|iface| iface.name == ifname && iface.sandbox.is_some())
            })
            .map(|ip| ip.address)
            .collect()
    }
}

/// An interface in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Its MTU, when the plugin reports it (spec 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The namespace path, for interfaces inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// An address in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// The address with its prefix.
    pub address: IpNet,
    /// The gateway for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteConfig {
    /// Destination.
    pub dst: IpNet,
    /// Next hop (the interface's gateway when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// DNS settings in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A plugin's error object (`{"code": 7, "msg": "...", "details": "..."}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginError {
    /// The spec version, when given.
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cni_version: String,
    /// The error code: 1-99 are the spec's, 100+ the plugin's own.
    pub code: u32,
    /// The message.
    pub msg: String,
    /// More detail, when given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl PluginError {
    /// Spec code 11: the plugin asks to be called again later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// The code skeleton-based plugins use for their own failures.
    pub const INTERNAL: u32 = 999;
}

impl fmt::Display for PluginError {
    /// `msg`, then `; details` when there are details (libcni's form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if !self.details.is_empty() {
            write!(f, "; {}", self.details)?;
        }
        Ok(())
    }
}

/// What a plugin reports for VERSION.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version of this answer.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Every spec version the plugin speaks.
    #[serde(rename = "supportedVersions", default)]
    pub supported_versions: Vec<String>,
}

/// A plugin's ADD output: parsed, and as JSON (the `prevResult` for the
/// next plugin of a chain, and for DEL and CHECK).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The parsed result.
    pub success: Success,
    /// The result exactly as printed.
    pub json: Value,
}

/// How plugins are found and started.
#[derive(Debug, Clone)]
pub struct Runtime<'a> {
    /// `CNI_PATH`: directories searched for plugin binaries, in order.
    pub path: Vec<PathBuf>,
    /// The namespace plugins run in, standing for the node's own; `None`
    /// runs them in the caller's namespace (the real node's, normally).
    pub host: Option<&'a Netns>,
    /// Deadline per plugin call; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Start each plugin in a process group of its own, so a timeout kills
    /// everything it started. A plugin that runs its own delegates turns
    /// this off, so its delegates die with it when its caller kills it.
    pub own_process_group: bool,
}

impl<'a> Runtime<'a> {
    /// Plugins from `path`, run in the caller's namespace, [`DEFAULT_TIMEOUT`].
    pub fn new(path: Vec<PathBuf>) -> Self {
        Runtime {
            path,
            host: None,
            timeout: Some(DEFAULT_TIMEOUT),
            own_process_group: true,
        }
    }

    /// Runs plugins inside `host` instead of the caller's namespace.
    pub fn in_host(mut self, host: &'a Netns) -> Self {
        self.host = Some(host);
        self
    }

    /// Sets the deadline per plugin call.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The binary for `plugin`: the first regular file of that name in `path`.
    pub fn find(&self, plugin: &str) -> Result<PathBuf> {
        if plugin.is_empty() || plugin.contains('/') || plugin == "." || plugin == ".." {
            return Err(Error::BadArgument(format!(
                "plugin type {plugin:?} must be a plain file name"
            )));
        }
        self.path
            .iter()
            .map(|dir| dir.join(plugin))
            .find(|candidate| candidate.metadata().is_ok_and(|m| m.is_file()))
            .ok_or_else(|| Error::FindPlugin {
                plugin: plugin.to_owned(),
                path: self.path.clone(),
            })
    }

    /// Runs one plugin once and returns its stdout; a failure is an error.
    ///
    /// For VERSION, `args` is ignored.
    pub fn exec(
        &self,
        plugin: &str,
        command: Command,
        args: &Args,
        config: &[u8],
    ) -> Result<Vec<u8>> {
        if command != Command::Version {
            args.validate()?;
        }
        let binary = self.find(plugin)?;
        let spawn = |source| Error::Spawn {
            plugin: plugin.to_owned(),
            command,
            source,
        };
        let mut process = std::process::Command::new(&binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CNI_") {
                process.env_remove(key);
            }
        }
        process.env("CNI_COMMAND", command.as_str()).env(
            "CNI_PATH",
            std::env::join_paths(&self.path)
                .map_err(|e| Error::BadArgument(format!("CNI_PATH entry: {e}")))?,
        );
        if command != Command::Version {
            process
                .env("CNI_CONTAINERID", &args.container_id)
                .env("CNI_NETNS", &args.netns)
                .env("CNI_IFNAME", &args.ifname)
                .env("CNI_ARGS", args.cni_args());
        }
        process
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.own_process_group {
            process.process_group(0);
        }
        if let Some(host) = self.host {
            host.apply(&mut process)?;
        }
        let child = process.spawn().map_err(spawn)?;
        let finished = wait(child, config, self.timeout, self.own_process_group).map_err(spawn)?;
        let Some((status, stdout, stderr)) = finished else {
            return Err(Error::Timeout {
                plugin: plugin.to_owned(),
                command,
                timeout: self.timeout.unwrap_or_default(),
            });
        };
        if status.success() {
            return Ok(stdout);
        }
        match serde_json::from_slice::<PluginError>(&stdout) {
            Ok(error) => Err(Error::Plugin {
                plugin: plugin.to_owned(),
                command,
                error,
            }),
            Err(_) => Err(Error::Crashed {
                plugin: plugin.to_owned(),
                command,
                status: describe(status),
                stderr: shorten(&String::from_utf8_lossy(if stderr.is_empty() {
                    &stdout
                } else {
                    &stderr
                })),
            }),
        }
    }

    /// ADD with one plugin's config (already carrying `name` and `cniVersion`).
    pub fn add(&self, config: &Value, args: &Args) -> Result<Outcome> {
        let plugin = plugin_type(config)?;
        let stdout = self.exec(plugin, Command::Add, args, &to_bytes(config))?;
        parse_outcome(plugin, &stdout)
    }

    /// DEL with one plugin's config.
    pub fn del(&self, config: &Value, args: &Args) -> Result<()> {
        let plugin = plugin_type(config)?;
        self.exec(plugin, Command::Del, args, &to_bytes(config))
            .map(drop)
    }

    /// CHECK with one plugin's config (which must carry `prevResult`).
    pub fn check(&self, config: &Value, args: &Args) -> Result<()> {
        let plugin = plugin_type(config)?;
        self.exec(plugin, Command::Check, args, &to_bytes(config))
            .map(drop)
    }

    /// VERSION: the spec versions `plugin` supports.
    pub fn version(&self, plugin: &str) -> Result<VersionInfo> {
        let stdout = self.exec(
            plugin,
            Command::Version,
            &Args::default(),
            br#"{"cniVersion":"1.0.0"}"#,
        )?;
        serde_json::from_slice(&stdout).map_err(|source| Error::BadResult {
            plugin: plugin.to_owned(),
            command: Command::Version,
            output: shorten(&String::from_utf8_lossy(&stdout)),
            source,
        })
    }
}

/// A network configuration list (`*.conflist`).
#[derive(Debug, Clone, PartialEq)]
pub struct Conflist {
    /// The network's name (`cbr0` on k3s).
    pub name: String,
    /// The spec version of every plugin config.
    pub cni_version: String,
    /// The plugin configs, in order.
    pub plugins: Vec<Value>,
}

impl Conflist {
    /// Parses and checks a conflist as libcni does.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::BadConfig(format!("not JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Checks a conflist given as JSON.
    pub fn from_value(value: &Value) -> Result<Self> {
        let name = value
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::BadConfig("the conflist has no \"name\"".into()))?;
        validate_network_name(name)?;
        let cni_version = value
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let plugins = value
            .get("plugins")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Error::BadConfig(format!(
                    "conflist {name:?} has no \"plugins\" (a non-empty array)"
                ))
            })?
            .clone();
        for (i, plugin) in plugins.iter().enumerate() {
            plugin_type(plugin).map_err(|_| {
                Error::BadConfig(format!(
                    "plugin {i} of conflist {name:?} has no string \"type\""
                ))
            })?;
        }
        Ok(Conflist {
            name: name.to_owned(),
            cni_version,
            plugins,
        })
    }

    /// The config plugin `index` is given: its own, with the list's `name`
    /// and `cniVersion`, `runtimeConfig` for the capabilities it declares,
    /// and the previous plugin's result.
    pub fn plugin_config(&self, index: usize, args: &Args, prev: Option<&Value>) -> Value {
        let mut config = match self.plugins.get(index) {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        config.insert("name".into(), json!(self.name));
        config.insert("cniVersion".into(), json!(self.cni_version));
        let mut runtime = Map::new();
        if let Some(Value::Object(declared)) = config.get("capabilities") {
            for (capability, enabled) in declared {
                if enabled == &Value::Bool(true)
                    && let Some(value) = args.capabilities.get(capability)
                {
                    runtime.insert(capability.clone(), value.clone());
                }
            }
        }
        if !runtime.is_empty() {
            config.insert("runtimeConfig".into(), Value::Object(runtime));
        }
        if let Some(prev) = prev {
            config.insert("prevResult".into(), prev.clone());
        }
        Value::Object(config)
    }

    /// ADD through every plugin in order, each getting the previous result;
    /// the last result is the network's.
    pub fn add(&self, runtime: &Runtime<'_>, args: &Args) -> Result<Outcome> {
        let mut prev: Option<Outcome> = None;
        for index in 0..self.plugins.len() {
            let config = self.plugin_config(index, args, prev.as_ref().map(|o| &o.json));
            prev = Some(runtime.add(&config, args)?);
        }
        prev.ok_or_else(|| Error::BadConfig("the conflist has no plugins".into()))
    }

    /// CHECK through every plugin in order, with the ADD result.
    pub fn check(&self, runtime: &Runtime<'_>, args: &Args, added: &Value) -> Result<()> {
        for index in 0..self.plugins.len() {
            runtime.check(&self.plugin_config(index, args, Some(added)), args)?;
        }
        Ok(())
    }

    /// DEL through every plugin in reverse order, with the ADD result when
    /// known; stops at the first failure, as libcni does.
    pub fn del(&self, runtime: &Runtime<'_>, args: &Args, added: Option<&Value>) -> Result<()> {
        for index in (0..self.plugins.len()).rev() {
            runtime.del(&self.plugin_config(index, args, added), args)?;
        }
        Ok(())
    }
}

/// Parses a plugin's ADD output.
pub fn parse_outcome(plugin: &str, stdout: &[u8]) -> Result<Outcome> {
    let bad = |source| Error::BadResult {
        plugin: plugin.to_owned(),
        command: Command::Add,
        output: shorten(&String::from_utf8_lossy(stdout)),
        source,
    };
    let json: Value = serde_json::from_slice(stdout).map_err(bad)?;
    let success: Success = serde_json::from_value(json.clone()).map_err(bad)?;
    Ok(Outcome { success, json })
}

fn plugin_type(config: &Value) -> Result<&str> {
    config
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadConfig("the plugin config has no string \"type\"".into()))
}

fn to_bytes(config: &Value) -> Vec<u8> {
    // Serialising a Value cannot fail: its keys are strings.
    serde_json::to_vec(config).unwrap_or_default()
}

/// libcni's rule for container IDs and network names.
fn valid_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks a container ID (letters, digits, `_.-`, starting alphanumeric).
pub fn validate_container_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::BadArgument("empty CNI_CONTAINERID".into()));
    }
    if !valid_identifier(id) {
        return Err(Error::BadArgument(format!(
            "invalid characters in container ID {id:?}"
        )));
    }
    Ok(())
}

/// Checks a network name (same rule as container IDs).
pub fn validate_network_name(name: &str) -> Result<()> {
    if !valid_identifier(name) {
        return Err(Error::BadConfig(format!(
            "invalid network name {name:?}: letters, digits and `_.-`, starting with a letter or digit"
        )));
    }
    Ok(())
}

/// Checks an interface name as the kernel would take it.
pub fn validate_ifname(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::BadArgument(format!("interface name {name:?} {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > 15 {
        return bad("is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("is reserved");
    }
    if name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace()) {
        return bad("contains `/`, `:` or whitespace");
    }
    Ok(())
}

type Finished = Option<(ExitStatus, Vec<u8>, Vec<u8>)>;

/// Feeds `input`, collects stdout and stderr, and waits up to `timeout`;
/// `None` when the process group was killed for running late.
fn wait(
    mut child: Child,
    input: &[u8],
    timeout: Option<Duration>,
    group: bool,
) -> io::Result<Finished> {
    let kill = |child: &mut Child| {
        if group {
            kill_group(child);
        } else {
            let _ = child.kill();
        }
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    std::thread::scope(|scope| {
        // The plugin may never read its stdin: write from a thread.
        scope.spawn(move || {
            if let Some(mut pipe) = stdin.take() {
                let _ = pipe.write_all(input);
            }
        });
        let out = scope.spawn(move || drain(stdout.as_mut()));
        let err = scope.spawn(move || drain(stderr.as_mut()));
        let mut pause = Duration::from_millis(1);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                kill(&mut child);
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        // A child the plugin left running may hold the pipes open: it gets
        // until the deadline, then the group is killed. While any member
        // lives the group ID cannot be reused, so this kills no stranger.
        while status.is_some() && !(out.is_finished() && err.is_finished()) {
            if group && deadline.is_some_and(|d| Instant::now() >= d) {
                kill_group(&child);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Ok(status.map(|s| (s, stdout, stderr)))
    })
}

fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn drain(pipe: Option<&mut impl Read>) -> Vec<u8> {
    let mut buffer = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.read_to_end(&mut buffer);
    }
    buffer
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "failed".to_owned(),
    }
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 2000;
    if text.len() <= LIMIT {
        return text.to_owned();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Go's `%s` of a string slice, as libcni prints the search path.
fn join_paths(path: &[PathBuf]) -> String {
    path.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const K3S: &str = r#"{
      "name": "cbr0",
      "cniVersion": "1.0.0",
      "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}},
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "bandwidth", "capabilities": {"bandwidth": true}}
      ]
    }"#;

    #[test]
    fn conflist_injects_name_version_prev_and_capabilities() {
        let list = Conflist::parse(K3S.as_bytes()).expect("parses");
        let mut args = Args::pod("abc", Path::new("/run/netns/p"), "default", "web");
        args.capabilities.insert(
            "portMappings".into(),
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
        let first = list.plugin_config(0, &args, None);
        assert_eq!(first["name"], "cbr0");
        assert_eq!(first["cniVersion"], "1.0.0");
        assert!(first.get("prevResult").is_none());
        assert!(first.get("runtimeConfig").is_none());
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        let second = list.plugin_config(1, &args, Some(&prev));
        assert_eq!(second["prevResult"], prev);
        assert_eq!(second["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        let third = list.plugin_config(2, &args, Some(&prev));
        assert!(
            third.get("runtimeConfig").is_none(),
            "no bandwidth arg given"
        );
    }

    #[test]
    fn conflist_errors_name_the_problem() {
        for (text, want) in [
            (r#"{"plugins": [{"type": "x"}]}"#, "no \"name\""),
            (
                r#"{"name": "a b", "plugins": [{"type": "x"}]}"#,
                "invalid network name",
            ),
            (r#"{"name": "n", "plugins": []}"#, "no \"plugins\""),
            (r#"{"name": "n", "plugins": [{}]}"#, "plugin 0"),
            ("nope", "not JSON"),
        ] {
            let err = Conflist::parse(text.as_bytes()).expect_err(text);
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn result_and_error_objects_parse() {
        let out = br#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"aa:bb:cc:dd:ee:ff"},
            {"name":"veth1","mac":"aa:bb:cc:dd:ee:00"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:01","sandbox":"/run/netns/p"}],
            "ips":[{"interface":2,"address":"10.42.0.2/24","gateway":"10.42.0.1"}],
            "routes":[{"dst":"10.42.0.0/16"},{"dst":"0.0.0.0/0","gw":"10.42.0.1"}],"dns":{}}"#;
        let outcome = parse_outcome("bridge", out).expect("parses");
        assert_eq!(
            outcome.success.addresses_of("eth0"),
            vec!["10.42.0.2/24".parse::<IpNet>().expect("cidr")]
        );
        assert_eq!(outcome.success.routes[0].gw, None);
        assert_eq!(outcome.json["interfaces"][0]["name"], "cni0");

        let error: PluginError = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no subnet"}"#,
        )
        .expect("parses");
        assert_eq!(error.to_string(), "bad config; no subnet");
        let err = Error::Plugin {
            plugin: "flannel".into(),
            command: Command::Add,
            error,
        };
        assert_eq!(
            err.to_string(),
            "plugin type=\"flannel\" failed (add): bad config; no subnet"
        );
    }

    #[test]
    fn find_plugin_error_reads_like_libcni() {
        let runtime = Runtime::new(vec!["/nonexistent/a".into(), "/nonexistent/b".into()]);
        let err = runtime.find("flannel").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "failed to find plugin \"flannel\" in path [/nonexistent/a /nonexistent/b]"
        );
        assert!(matches!(
            runtime.find("../bin/sh"),
            Err(Error::BadArgument(_))
        ));
    }

    #[test]
    fn arguments_are_checked() {
        assert!(validate_container_id("abc-1.2_3").is_ok());
        assert!(validate_container_id("-abc").is_err());
        assert!(validate_container_id("a/b").is_err());
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("a-very-long-name0").is_err());
        assert!(validate_ifname("e:0").is_err());
        assert_eq!(Command::parse("DEL"), Some(Command::Del));
        assert_eq!(Command::Check.to_string(), "check");
    }
}
