//! A flannel-compatible CNI plugin for the lab and for tests: it behaves like
//! upstream's `flannel` plugin (flannel-io/cni-plugin) on the exec protocol,
//! but reads subnet.env with rebootguard's own reader and builds the
//! delegate with `rebootguard_flannel::delegate::build`.
//!
//! Key design decision: be faithful to upstream, quirks included, so that a
//! lab node fails exactly as a real node does. It fails only where upstream
//! fails (a missing file, a missing key, an unparsable value), with
//! upstream's words, and tolerates what upstream tolerates. Both wrappers
//! seen in the wild are available (see [`Wording`]).
//!
//! What it does, per `CNI_COMMAND`:
//! - `ADD`: reads `subnetFile` (default `/run/flannel/subnet.env`), builds the
//!   delegate config, saves it as `dataDir/<containerID>` (default
//!   `/var/lib/cni/flannel`, mode 0600), runs the delegate (`bridge` unless
//!   `delegate.type` says otherwise) from `CNI_PATH` and prints its result.
//! - `DEL`: reads the saved config, runs the delegate's DEL, removes the file;
//!   nothing saved means nothing to do.
//! - `CHECK`: succeeds, as upstream's does.
//! - `VERSION`: the spec versions it speaks.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rebootguard_flannel::subnet_env::{self, Severity, SubnetEnv};
use rebootguard_flannel::{Problem, delegate};
use rebootguard_hostnet::cni::{self, Args, Command, Runtime};
use serde_json::{Map, Value, json};

/// Where upstream reads subnet.env unless `subnetFile` says otherwise.
pub const DEFAULT_SUBNET_FILE: &str = "/run/flannel/subnet.env";
/// Where upstream keeps delegate configs unless `dataDir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/flannel";
/// Environment variable choosing the error wording when the config has no
/// `errorWording` field: `legacy` or `current`.
pub const WORDING_ENV: &str = "REBOOTGUARD_CNI_FLANNEL_WORDING";
/// The spec versions this plugin speaks (those Debian's delegates speak).
pub const SUPPORTED_VERSIONS: [&str; 6] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// How a subnet.env failure is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wording {
    /// Plugin up to v1.7.1-flannel1: `loadFlannelSubnetEnv failed: <err>`.
    #[default]
    Legacy,
    /// Plugin from v1.7.1-flannel2: `failed to load flannel 'subnet.env'
    /// file: <err>. Check the flannel pod log for this node.`
    Current,
}

impl Wording {
    /// Parses `legacy` / `current`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "legacy" => Some(Wording::Legacy),
            "current" => Some(Wording::Current),
            _ => None,
        }
    }

    /// Wraps the reader's error the way that plugin version does.
    pub fn wrap(self, cause: &str) -> String {
        match self {
            Wording::Legacy => format!("loadFlannelSubnetEnv failed: {cause}"),
            Wording::Current => format!(
                "failed to load flannel 'subnet.env' file: {cause}. Check the flannel pod log for this node."
            ),
        }
    }
}

/// Why a call failed; each maps to a CNI error code ([`Error::code`]).
/// The runtime retries a failed ADD with a new sandbox anyway; none of these
/// clears up by itself except a missing subnet.env that flannel later writes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Required `CNI_*` variables are absent.
    #[error("required env variables [{}] missing", .0.join(","))]
    MissingEnv(Vec<&'static str>),
    /// `CNI_COMMAND` is not one this plugin knows.
    #[error("unknown CNI_COMMAND: {0}")]
    UnknownCommand(String),
    /// The container ID cannot name a file.
    #[error("{0}")]
    BadArgument(#[source] cni::Error),
    /// The network config on stdin is not a flannel config.
    #[error("failed to load netconf: {0}")]
    LoadNetConf(String),
    /// The config's `cniVersion` is not one this plugin speaks.
    #[error("incompatible CNI versions; config is {config:?}, plugin supports {}", quoted(&SUPPORTED_VERSIONS))]
    IncompatibleVersion {
        /// The config's version.
        config: String,
    },
    /// `errorWording` (or the environment variable) has an unknown value.
    #[error("invalid errorWording {0:?}: use \"legacy\" or \"current\"")]
    BadWording(String),
    /// subnet.env could not be read; the text is upstream's.
    #[error("{0}")]
    LoadSubnetEnv(String),
    /// The `delegate` block breaks upstream's rules.
    #[error("{0}")]
    BadDelegate(&'static str),
    /// The delegate config could not be built.
    #[error("failed to assemble the delegate config: {0}")]
    BuildDelegate(#[source] delegate::Error),
    /// Saving the delegate config for DEL failed.
    #[error("failed to save the delegate config {}: {source}", path.display())]
    SaveNetConf {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading the saved delegate config on DEL failed.
    #[error("failed to read the saved delegate config {}: {source}", path.display())]
    ReadNetConf {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The delegate's ADD failed.
    #[error("failed to delegate add: {}", delegate_text(.0))]
    DelegateAdd(#[source] cni::Error),
    /// The delegate's DEL failed (upstream passes its error on unwrapped).
    #[error("{}", delegate_text(.0))]
    DelegateDel(#[source] cni::Error),
}

impl Error {
    /// The CNI error code: the spec's where one fits, the delegate's own
    /// when it gave one, else 999 as skeleton-based plugins use.
    pub fn code(&self) -> u32 {
        match self {
            Error::IncompatibleVersion { .. } => 1,
            Error::MissingEnv(_) | Error::UnknownCommand(_) | Error::BadArgument(_) => 4,
            Error::BadWording(_) => 7,
            Error::DelegateAdd(cni::Error::Plugin { error, .. })
            | Error::DelegateDel(cni::Error::Plugin { error, .. }) => error.code,
            _ => cni::PluginError::INTERNAL,
        }
    }

    /// The error object printed on stdout.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut object = Map::new();
        if !cni_version.is_empty() {
            object.insert("cniVersion".into(), json!(cni_version));
        }
        object.insert("code".into(), json!(self.code()));
        object.insert("msg".into(), json!(self.to_string()));
        Value::Object(object)
    }
}

/// What the delegate's failure says, without containerd's prefix.
fn delegate_text(error: &cni::Error) -> String {
    match error {
        cni::Error::Plugin { error, .. } => error.to_string(),
        other => other.to_string(),
    }
}

fn quoted(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", inner.join(" "))
}

/// One invocation, as the runtime made it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `CNI_COMMAND`, as given.
    pub command: Option<String>,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<String>,
    /// `CNI_NETNS`.
    pub netns: Option<String>,
    /// `CNI_IFNAME`.
    pub ifname: Option<String>,
    /// `CNI_ARGS`.
    pub args: Option<String>,
    /// `CNI_PATH`.
    pub path: Option<String>,
    /// The network config.
    pub stdin: Vec<u8>,
    /// The wording from [`WORDING_ENV`].
    pub wording: Option<String>,
}

impl Request {
    /// Reads the `CNI_*` variables (and [`WORDING_ENV`]) of this process.
    pub fn from_env(stdin: Vec<u8>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Request {
            command: var("CNI_COMMAND"),
            container_id: var("CNI_CONTAINERID"),
            netns: var("CNI_NETNS"),
            ifname: var("CNI_IFNAME"),
            args: var("CNI_ARGS"),
            path: var("CNI_PATH"),
            stdin,
            wording: var(WORDING_ENV),
        }
    }

    /// The config's `cniVersion`, for the error object.
    pub fn cni_version(&self) -> String {
        serde_json::from_slice::<Value>(&self.stdin)
            .ok()
            .and_then(|v| {
                v.get("cniVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    }

    fn require(&self, names: &[&'static str]) -> Result<(), Error> {
        let missing: Vec<&'static str> = names
            .iter()
            .copied()
            .filter(|name| match *name {
                "CNI_COMMAND" => self.command.is_none(),
                "CNI_CONTAINERID" => self.container_id.is_none(),
                "CNI_NETNS" => self.netns.is_none(),
                "CNI_IFNAME" => self.ifname.is_none(),
                "CNI_PATH" => self.path.is_none(),
                _ => false,
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingEnv(missing))
        }
    }

    /// The arguments handed to the delegate: the `CNI_*` values and the
    /// `CNI_ARGS` pairs (`K=V;K=V`; a pair without `=` has an empty value).
    pub fn cni_args(&self) -> Args {
        let extra = self
            .args
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (pair.to_owned(), String::new()),
            })
            .collect();
        Args {
            container_id: self.container_id.clone().unwrap_or_default(),
            netns: PathBuf::from(self.netns.clone().unwrap_or_default()),
            ifname: self.ifname.clone().unwrap_or_default(),
            extra,
            capabilities: Map::new(),
        }
    }

    fn runtime(&self) -> Runtime<'static> {
        let path = self
            .path
            .as_deref()
            .unwrap_or_default()
            .split(':')
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .collect();
        // The runtime that called us enforces the deadline, and its kill
        // must reach the delegate too: same process group, no timer here.
        let mut runtime = Runtime::new(path).with_timeout(None);
        runtime.own_process_group = false;
        runtime
    }
}

/// The plugin's own config (the conflist entry, as injected by the runtime).
#[derive(Debug, Clone)]
pub struct NetConf {
    /// The whole entry, handed to the delegate builder.
    pub raw: Value,
    /// `cniVersion`.
    pub cni_version: String,
    /// `subnetFile`.
    pub subnet_file: String,
    /// `dataDir`.
    pub data_dir: PathBuf,
    /// `errorWording`, else [`WORDING_ENV`], else legacy.
    pub wording: Wording,
}

impl NetConf {
    /// Parses the stdin config; `env_wording` is [`WORDING_ENV`]'s value.
    pub fn parse(stdin: &[u8], env_wording: Option<&str>) -> Result<Self, Error> {
        let raw: Value =
            serde_json::from_slice(stdin).map_err(|e| Error::LoadNetConf(e.to_string()))?;
        let object = raw
            .as_object()
            .ok_or_else(|| Error::LoadNetConf("the config is not a JSON object".into()))?;
        let text = |key: &str, default: &str| -> Result<String, Error> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(default.to_owned()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(Error::LoadNetConf(format!("{key:?} must be a string"))),
            }
        };
        let cni_version = text("cniVersion", "")?;
        let subnet_file = text("subnetFile", DEFAULT_SUBNET_FILE)?;
        let data_dir = PathBuf::from(text("dataDir", DEFAULT_DATA_DIR)?);
        let wording = match object
            .get("errorWording")
            .and_then(Value::as_str)
            .or(env_wording)
        {
            None => Wording::default(),
            Some(text) => Wording::parse(text).ok_or_else(|| Error::BadWording(text.to_owned()))?,
        };
        Ok(NetConf {
            raw,
            cni_version,
            // Go's zero value: an empty field means the default.
            subnet_file: if subnet_file.is_empty() {
                DEFAULT_SUBNET_FILE.to_owned()
            } else {
                subnet_file
            },
            data_dir: if data_dir.as_os_str().is_empty() {
                PathBuf::from(DEFAULT_DATA_DIR)
            } else {
                data_dir
            },
            wording,
        })
    }

    fn check_version(&self) -> Result<(), Error> {
        if self.cni_version.is_empty() || SUPPORTED_VERSIONS.contains(&self.cni_version.as_str()) {
            Ok(())
        } else {
            Err(Error::IncompatibleVersion {
                config: self.cni_version.clone(),
            })
        }
    }

    /// The delegate config for `env`, after upstream's checks of the
    /// `delegate` block; `runtimeConfig` is passed down to the delegate.
    pub fn delegate(&self, env: &SubnetEnv) -> Result<Value, Error> {
        let mut plugin = self.raw.clone();
        if let Some(Value::Object(block)) = plugin.get("delegate") {
            if block.get("type").is_some_and(|t| !t.is_string()) {
                return Err(Error::BadDelegate(
                    "'delegate' dictionary, if present, must have (string) 'type' field",
                ));
            }
            if block.contains_key("name") {
                return Err(Error::BadDelegate(
                    "'delegate' dictionary must not have 'name' field, it'll be set by flannel",
                ));
            }
            if block.contains_key("ipam") {
                return Err(Error::BadDelegate(
                    "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel",
                ));
            }
        }
        if let Some(runtime) = plugin.get("runtimeConfig").cloned()
            && let Some(object) = plugin.as_object_mut()
        {
            let block = object
                .entry("delegate")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(block) = block.as_object_mut() {
                block.insert("runtimeConfig".into(), runtime);
            }
        }
        delegate::build(&plugin, env).map_err(Error::BuildDelegate)
    }
}

/// Reads subnet.env as upstream does; the error is upstream's text (before
/// the [`Wording`] wrapper). Problems upstream tolerates are returned as
/// warnings alongside the values.
fn load_subnet_env(path: &str) -> Result<(SubnetEnv, Vec<Problem>), String> {
    let mut file = File::open(path).map_err(|e| go_path_error("open", path, &e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| go_path_error("read", path, &e))?;
    let parsed = subnet_env::parse(&bytes);
    if let Some(message) = parsed
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .find_map(|p| p.plugin_message(path))
    {
        return Err(message);
    }
    Ok((parsed.env, parsed.problems))
}

/// Go's `*os.PathError` text: `open /x: no such file or directory`.
pub fn go_path_error(op: &str, path: &str, error: &io::Error) -> String {
    let text = match error.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            match chars.next() {
                // Go's errno strings are glibc's, starting lower case.
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => desc.to_owned(),
            }
        }
        None => error.to_string(),
    };
    format!("{op} {path}: {text}")
}

/// The whole plugin process: reads stdin and the environment, runs the call,
/// prints the result or the error object, and returns the exit status (0 on
/// success, 1 on failure). For a binary that wants to act as this plugin,
/// for instance a lab's multi-call binary run under the name `flannel`.
pub fn plugin_main() -> std::process::ExitCode {
    let mut stdin = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut stdin) {
        eprintln!("failed to read the network config from stdin: {e}");
    }
    let request = Request::from_env(stdin);
    let mut stdout = io::stdout().lock();
    match run(&request) {
        Ok(output) => {
            if let Some(output) = output {
                let _ = stdout.write_all(&output);
                let _ = stdout.write_all(b"\n");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            let object = error.to_json(&request.cni_version());
            let _ = writeln!(stdout, "{object}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs one call; `Ok(Some(bytes))` is what to print on success.
pub fn run(request: &Request) -> Result<Option<Vec<u8>>, Error> {
    request.require(&["CNI_COMMAND"])?;
    let text = request.command.as_deref().unwrap_or_default();
    let command = Command::parse(text).ok_or_else(|| Error::UnknownCommand(text.to_owned()))?;
    match command {
        Command::Version => {
            let info = json!({"cniVersion": "1.0.0", "supportedVersions": SUPPORTED_VERSIONS});
            Ok(Some(info.to_string().into_bytes()))
        }
        Command::Add => {
            request.require(&["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"])?;
            add(request).map(Some)
        }
        Command::Del => {
            request.require(&["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"])?;
            del(request).map(|()| None)
        }
        Command::Check => {
            request.require(&["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"])?;
            let conf = NetConf::parse(&request.stdin, request.wording.as_deref())?;
            conf.check_version()?;
            Ok(None)
        }
    }
}

fn add(request: &Request) -> Result<Vec<u8>, Error> {
    let conf = NetConf::parse(&request.stdin, request.wording.as_deref())?;
    conf.check_version()?;
    let container_id = request.container_id.as_deref().unwrap_or_default();
    cni::validate_container_id(container_id).map_err(Error::BadArgument)?;
    let (env, problems) = load_subnet_env(&conf.subnet_file)
        .map_err(|cause| Error::LoadSubnetEnv(conf.wording.wrap(&cause)))?;
    for problem in problems {
        eprintln!(
            "warning: {}: {problem} ({})",
            conf.subnet_file,
            problem.hint()
        );
    }
    let delegate = conf.delegate(&env)?;
    let bytes = delegate.to_string().into_bytes();
    save(&conf.data_dir, container_id, &bytes)?;
    let outcome = request
        .runtime()
        .add(&delegate, &request.cni_args())
        .map_err(Error::DelegateAdd)?;
    Ok(outcome.json.to_string().into_bytes())
}

fn del(request: &Request) -> Result<(), Error> {
    let conf = NetConf::parse(&request.stdin, request.wording.as_deref())?;
    let container_id = request.container_id.as_deref().unwrap_or_default();
    cni::validate_container_id(container_id).map_err(Error::BadArgument)?;
    let path = conf.data_dir.join(container_id);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        // Never added, or already deleted: nothing to undo.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(Error::ReadNetConf { path, source }),
    };
    let Ok(delegate) = serde_json::from_slice::<Value>(&bytes) else {
        // Upstream gives up quietly: the interface goes away with the node.
        eprintln!("failed to parse netconf {}", path.display());
        return Ok(());
    };
    request
        .runtime()
        .del(&delegate, &request.cni_args())
        .map_err(Error::DelegateDel)?;
    // Kept when the delegate failed, so the runtime's retry can finish the
    // job (upstream meant to, but its deferred cleanup always removes it).
    let _ = fs::remove_file(&path);
    Ok(())
}

fn save(dir: &Path, container_id: &str, bytes: &[u8]) -> Result<(), Error> {
    let path = dir.join(container_id);
    let fail = |source| Error::SaveNetConf {
        path: path.clone(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    // An existing file keeps its mode on open: make sure it is 0600.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_errors_read_like_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("subnet.env");
        let missing = missing.to_str().expect("utf-8");
        assert_eq!(
            load_subnet_env(missing).expect_err("missing"),
            format!("open {missing}: no such file or directory")
        );
        let as_dir = dir.path().to_str().expect("utf-8");
        assert_eq!(
            load_subnet_env(as_dir).expect_err("directory"),
            format!("read {as_dir}: is a directory")
        );
    }

    #[test]
    fn subnet_env_failures_are_upstreams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("subnet.env");
        let path_str = path.to_str().expect("utf-8");
        let cases: [(&str, String); 3] = [
            (
                "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPMASQ=true\n",
                format!("{path_str} is missing FLANNEL_MTU"),
            ),
            (
                "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=nope\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
                "invalid CIDR address: nope".to_owned(),
            ),
            (
                "",
                format!(
                    "{path_str} is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ"
                ),
            ),
        ];
        for (content, want) in cases {
            fs::write(&path, content).expect("write");
            assert_eq!(load_subnet_env(path_str).expect_err(content), want);
        }
        // Upstream reads `.5` hosts and stray keys without complaint.
        fs::write(
            &path,
            "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.5/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\nEXTRA=1\n",
        )
        .expect("write");
        let (env, warnings) = load_subnet_env(path_str).expect("tolerated");
        assert_eq!(env.mtu, Some(1450));
        assert!(!warnings.is_empty());
    }

    #[test]
    fn wordings() {
        let cause = "open /run/flannel/subnet.env: no such file or directory";
        assert_eq!(
            Wording::Legacy.wrap(cause),
            "loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
        );
        assert_eq!(
            Wording::Current.wrap(cause),
            "failed to load flannel 'subnet.env' file: open /run/flannel/subnet.env: no such file or directory. Check the flannel pod log for this node."
        );
        let conf = NetConf::parse(br#"{"type":"flannel"}"#, Some("current")).expect("conf");
        assert_eq!(conf.wording, Wording::Current);
        let conf = NetConf::parse(
            br#"{"type":"flannel","errorWording":"legacy"}"#,
            Some("current"),
        )
        .expect("conf");
        assert_eq!(conf.wording, Wording::Legacy, "the config field wins");
        assert!(matches!(
            NetConf::parse(br#"{"errorWording":"loud"}"#, None),
            Err(Error::BadWording(_))
        ));
    }

    #[test]
    fn delegate_block_rules_and_runtime_config() {
        let env = subnet_env::parse(
            b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
        )
        .into_valid()
        .expect("valid");
        for (block, want) in [
            (json!({"type": 1}), "(string) 'type'"),
            (json!({"name": "x"}), "'name'"),
            (json!({"ipam": {}}), "'ipam'"),
        ] {
            let conf = NetConf::parse(
                json!({"name": "cbr0", "type": "flannel", "delegate": block})
                    .to_string()
                    .as_bytes(),
                None,
            )
            .expect("conf");
            let err = conf.delegate(&env).expect_err("refused");
            assert!(err.to_string().contains(want), "{err}");
        }
        let conf = NetConf::parse(
            json!({"name": "cbr0", "cniVersion": "1.0.0", "type": "flannel",
                   "runtimeConfig": {"bandwidth": {"ingressRate": 1}}})
            .to_string()
            .as_bytes(),
            None,
        )
        .expect("conf");
        let delegate = conf.delegate(&env).expect("builds");
        assert_eq!(delegate["type"], "bridge");
        assert_eq!(delegate["runtimeConfig"]["bandwidth"]["ingressRate"], 1);
        assert_eq!(delegate["mtu"], 1450);
    }

    #[test]
    fn environment_and_version_errors() {
        let err = run(&Request::default()).expect_err("no command");
        assert_eq!(
            err.to_string(),
            "required env variables [CNI_COMMAND] missing"
        );
        assert_eq!(err.code(), 4);
        let request = Request {
            command: Some("ADD".into()),
            ..Request::default()
        };
        let err = run(&request).expect_err("no args");
        assert_eq!(
            err.to_string(),
            "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"
        );
        let request = Request {
            command: Some("VERSION".into()),
            ..Request::default()
        };
        let out = run(&request).expect("version").expect("output");
        let info: cni::VersionInfo = serde_json::from_slice(&out).expect("json");
        assert!(info.supported_versions.contains(&"1.0.0".to_owned()));
        let conf = NetConf::parse(br#"{"cniVersion":"9.9.9"}"#, None).expect("conf");
        let err = conf.check_version().expect_err("too new");
        assert_eq!(err.code(), 1);
        assert!(
            err.to_string()
                .starts_with("incompatible CNI versions; config is \"9.9.9\"")
        );
        assert_eq!(
            err.to_json("9.9.9")["msg"],
            json!(err.to_string()),
            "the object carries the message"
        );
    }
}
