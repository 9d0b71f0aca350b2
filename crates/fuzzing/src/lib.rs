//! The bodies of rebootguard's fuzz targets, one function per parser of
//! outside input, each also checking the properties its parser promises
//! (what parses renders back to the same thing, what decodes re-encodes).
//!
//! `fuzz/` runs them under libFuzzer (`cargo +nightly fuzz run NAME`);
//! this crate's test replays the committed corpora and the crashers found
//! so far on every `cargo test`, with no nightly and no fuzzer. A target
//! panics on a broken property: that is the finding.

use rebootguard_diagnose::{Config, render};
use rebootguard_flannel::{NetConf, SubnetEnv, subnet_env};
use rebootguard_store::format;

/// A target: one input in, a panic when the parser or a property breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory has.
pub const TARGETS: &[(&str, Target)] = &[
    ("subnet_env", subnet_env),
    ("net_conf", net_conf),
    ("k3s_config", k3s_config),
    ("settings", settings),
    ("cni_config", cni_config),
    ("store_format", store_format),
    ("snapshot", snapshot),
    ("cluster_info_dump", cluster_info_dump),
    ("selectors", selectors),
    ("patch", patch),
    ("protobuf", protobuf),
    ("cni_env", cni_env),
    ("request", request),
    ("admission", admission),
];

/// `/run/flannel/subnet.env`: a valid file renders back to what parses to
/// the same values, and rendering is stable.
pub fn subnet_env(data: &[u8]) {
    let parsed = subnet_env::parse(data);
    if parsed.is_valid() {
        let text = parsed.env.render();
        let again = subnet_env::parse(text.as_bytes());
        assert_eq!(
            again.env, parsed.env,
            "render then parse changed the values"
        );
        assert_eq!(again.env.render(), text, "rendering is not stable");
    }
    let _ = parsed.env.pod_cidrs();
    for problem in &parsed.problems {
        let _ = (problem.to_string(), problem.hint());
    }
}

/// flannel's `net-conf.json`: what parses renders to a file that parses to
/// the same configuration.
pub fn net_conf(data: &[u8]) {
    let Ok(conf) = NetConf::parse(data) else {
        return;
    };
    let b = &conf.backend;
    let _ = (b.mtu_overhead(), b.vxlan_vni(), b.vxlan_port());
    let again = NetConf::parse(conf.render().as_bytes()).expect("a rendered net-conf.json parses");
    assert_eq!(again, conf, "render then parse changed the configuration");
}

/// k3s's `config.yaml`: the node name it sets, if any.
pub fn k3s_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rebootguard_node::host::k3s_node_name(text);
    }
}

/// rebootguard's `config.toml`, and the durations written in it.
pub fn settings(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = toml::from_str::<rebootguard_node::settings::File>(text);
    let _ = rebootguard_node::settings::parse_duration(text);
}

/// The CNI plugin's stdin config, its wording variable, and the delegate
/// config built from it for a valid subnet.env.
pub fn cni_config(data: &[u8]) {
    // `stdin \0 wording`: both outside input.
    let (stdin, wording) = split(data);
    let wording = std::str::from_utf8(wording).ok();
    let request = rebootguard_cni_flannel::Request {
        stdin: stdin.to_vec(),
        ..Default::default()
    };
    let _ = request.cni_version();
    if let Ok(conf) = rebootguard_cni_flannel::NetConf::parse(stdin, wording) {
        let _ = conf.delegate(&valid_env());
    }
}

/// A generation file of the backup store: what decodes re-encodes to bytes
/// that decode to the same metadata and content.
pub fn store_format(data: &[u8]) {
    let Some((&named, bytes)) = data.split_first() else {
        return;
    };
    let named = u64::from(named);
    if let Ok((meta, content)) = format::decode(named, bytes) {
        let encoded = format::encode(named, &meta, &content);
        let (again, again_content) =
            format::decode(named, &encoded).expect("a re-encoded generation decodes");
        assert_eq!(again, meta, "re-encoding changed the metadata");
        assert_eq!(again_content, content, "re-encoding changed the content");
    }
}

/// A snapshot as `diagnose --snapshot` reads it (rebootguard JSON, kubectl
/// List JSON or YAML, gzip of any), analysed and rendered every way.
pub fn snapshot(data: &[u8]) {
    if let Ok(snapshot) = rebootguard_diagnose::load(data) {
        analyse_and_render(&snapshot);
    }
}

/// The files of a `kubectl cluster-info dump` tree. Chunks split at `0xff`
/// (never in UTF-8 text) become files; each chunk's first byte picks its
/// path.
pub fn cluster_info_dump(data: &[u8]) {
    const PATHS: [&str; 6] = [
        "nodes.json",
        "kube-system/pods.json",
        "kube-system/events.json",
        "default/services.json",
        "kube-system/coredns-7b98449c4-x2x9z/logs.txt",
        "README",
    ];
    let files = data.split(|b| *b == 0xff).filter_map(|chunk| {
        let (&pick, content) = chunk.split_first()?;
        Some((PATHS[usize::from(pick) % PATHS.len()], content))
    });
    if let Ok(snapshot) = rebootguard_diagnose::load::dump(files) {
        analyse_and_render(&snapshot);
    }
}

/// kubesim's label and field selectors (query strings), matched against an
/// object, and a `LabelSelector` object.
pub fn selectors(data: &[u8]) {
    use kubesim::selector::{Fields, Labels};
    let object = serde_json::json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web", "tier": ""}},
        "spec": {"nodeName": "node1"},
        "status": {"phase": "Running"},
    });
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(labels) = Labels::parse(text) {
            let _ = labels.matches_map(object["metadata"]["labels"].as_object());
        }
        if let Ok(fields) = Fields::parse(text) {
            let values: std::collections::HashMap<&str, String> = fields
                .terms
                .iter()
                .map(|t| {
                    let value = kubesim::selector::field_value(&object, &t.label, "");
                    (t.label.as_str(), value)
                })
                .collect();
            let _ = fields.matches(|label| values.get(label).map(String::as_str));
        }
    }
    if let Ok(selector) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(labels) = Labels::from_label_selector(&selector)
    {
        let _ = labels.matches_map(object["metadata"]["labels"].as_object());
    }
}

/// kubesim's PATCH bodies: `kind byte, target JSON \0 patch JSON`.
pub fn patch(data: &[u8]) {
    use kubesim::patch::{Kind, apply};
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = [Kind::Merge, Kind::Json, Kind::Strategic, Kind::Apply][usize::from(pick) % 4];
    let (target, patch) = split(rest);
    let (Ok(mut target), Ok(patch)) = (
        serde_json::from_slice::<serde_json::Value>(target),
        serde_json::from_slice::<serde_json::Value>(patch),
    ) else {
        return;
    };
    let _ = apply(kind, &mut target, &patch);
}

/// kubesim's protobuf request bodies (what `kubectl create` sends):
/// decoded or refused, never a panic.
pub fn protobuf(data: &[u8]) {
    let _ = kubesim::protobuf::decode_object(data);
}

/// The plugin's environment (`CNI_ARGS \0 CNI_CONTAINERID \0
/// CNI_IFNAME`): the delegate's arguments keep every pair, and joining
/// them back gives what was parsed.
pub fn cni_env(data: &[u8]) {
    let (args, rest) = split(data);
    let (container, ifname) = split(rest);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let request = rebootguard_cni_flannel::Request {
        args: Some(text(args)),
        container_id: Some(text(container)),
        ifname: Some(text(ifname)),
        ..Default::default()
    };
    let parsed = request.cni_args();
    assert_eq!(parsed.container_id, text(container));
    for (key, value) in &parsed.extra {
        assert!(
            !key.contains(';') && !value.contains(';'),
            "a pair spans a ';'"
        );
        assert!(!key.contains('='), "the key ends at the first '='");
    }
    let joined: Vec<String> = parsed
        .extra
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let again = rebootguard_cni_flannel::Request {
        args: Some(joined.join(";")),
        ..Default::default()
    }
    .cni_args();
    assert_eq!(
        again.extra, parsed.extra,
        "joining the pairs back changed them"
    );
}

/// kubesim's reading of a request: `method \0 path?query \0
/// Authorization` gives RBAC's attributes, a bearer token and a decision
/// against the bootstrap roles, never a panic; a resource request's 403
/// names its verb and resource.
pub fn request(data: &[u8]) {
    use kubesim::rbac::{self, Policy, Request, User};
    let (method, rest) = split(data);
    let (target, header) = split(rest);
    let (Ok(method), Ok(target), Ok(header)) = (
        std::str::from_utf8(method),
        std::str::from_utf8(target),
        std::str::from_utf8(header),
    ) else {
        return;
    };
    let _ = kubesim::auth::bearer(Some(header));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let asked = Request::from_http(method, path, &query);
    // Built once: the target is the request, not the roles' JSON.
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        let mut policy = Policy::default();
        for object in rbac::bootstrap() {
            match object["kind"].as_str() {
                Some("ClusterRole") => policy
                    .cluster_roles
                    .push(serde_json::from_value(object).expect("a bootstrap role")),
                _ => policy
                    .cluster_role_bindings
                    .push(serde_json::from_value(object).expect("a bootstrap binding")),
            }
        }
        policy
    });
    let user = User::service_account("ns", "sa");
    let _ = rbac::authorize(policy, &user, &asked);
    let refused = rbac::forbidden(&user, &asked);
    assert_eq!(refused.code, 403);
    if let Request::Resource { verb, resource, .. } = &asked {
        assert!(
            refused
                .message
                .contains(&format!("cannot {verb} resource \"{resource}")),
            "{}",
            refused.message
        );
    }
}

/// kubesim's admission of an API object (`kind index, JSON`): decoding
/// against the kind's schema and defaulting never panic, and defaulting
/// what was defaulted changes nothing.
pub fn admission(data: &[u8]) {
    use kubesim::defaults::{decode, defaults};
    use kubesim::registry::{CustomResource, Registry};
    const KINDS: [&str; 8] = [
        "Pod",
        "Service",
        "Secret",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "PersistentVolumeClaim",
    ];
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let Ok(mut object) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    if !object.is_object() {
        return;
    }
    let registry = Registry::new(&CustomResource::defaults());
    let kind = KINDS[usize::from(pick) % KINDS.len()];
    let Some(resource) = registry.all().iter().find(|r| r.kind == kind && !r.custom) else {
        return;
    };
    if decode(resource, &object).is_err() {
        return;
    }
    if defaults(resource, &mut object).is_ok() {
        let once = object.clone();
        defaults(resource, &mut object).expect("defaulted values stay valid");
        assert_eq!(object, once, "defaulting twice changed the object");
    }
}

fn analyse_and_render(snapshot: &rebootguard_diagnose::Snapshot) {
    let now: jiff::Timestamp = "2026-03-14T12:00:00Z".parse().expect("a fixed time");
    let report = rebootguard_diagnose::analyse(snapshot, now, &Config::default());
    for format in [
        render::Format::Human,
        render::Format::Json,
        render::Format::Markdown,
        render::Format::Mermaid,
        render::Format::Dot,
    ] {
        let _ = render::render(&report, format, true);
    }
}

/// `a \0 b` → (a, b); no NUL → (all, empty).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

fn valid_env() -> SubnetEnv {
    let text = "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
    subnet_env::parse(text.as_bytes()).env
}
