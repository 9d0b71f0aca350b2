//! The shipped Kubernetes manifests as the tests use them: rendered by the
//! real kubectl's kustomize and applied to kubesim, as the administrator.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kubesim::KubeSim;
use serde_json::{Value, json};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether kubectl runs here; its absence is a failure only when
/// `KUBESIM_REQUIRE_KUBECTL` is set.
pub use kubesim::kubectl_available as have_kubectl;

/// `kubectl kustomize DIR`, as CI runs it.
pub fn kustomize(dir: &str) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join(dir))
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The documents of a multi-document YAML stream, as JSON.
pub fn documents(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("YAML documents");
    docs.into_iter().filter(|v| !v.is_null()).collect()
}

/// `kubectl apply -k` of `base` to kubesim; what kubectl said.
pub async fn apply(sim: &KubeSim, cache: &Path, base: &str) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(sim.kubeconfig_path())
            .arg("--cache-dir")
            .arg(cache)
            // kubesim serves no OpenAPI documents to validate against.
            .args(["apply", "--validate=false", "-k"])
            .arg(repo().join(base))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("kubectl finished within 60s")
    .expect("kubectl ran");
    assert!(
        out.status.success(),
        "kubectl apply -k: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kubesim enforcing RBAC (bearer tokens, the stored roles), over HTTPS:
/// kubectl sends no credentials to a plain-HTTP server.
pub async fn enforcing() -> KubeSim {
    KubeSim::with_options(kubesim::Options {
        rbac: true,
        tls: true,
        ..kubesim::Options::default()
    })
    .await
    .expect("kubesim")
}

/// Removes `verb` on `group`'s `resource` from the role `kind`
/// `namespace/name`, and nothing else: a rule naming other resources or
/// groups keeps them with every verb: exactly one permission less.
pub fn revoke(
    sim: &KubeSim,
    (kind, namespace, name): (&str, &str, &str),
    group: &str,
    resource: &str,
    verb: &str,
) {
    let api = "rbac.authorization.k8s.io/v1";
    let mut role = sim
        .get(api, kind, namespace, name)
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name}"));
    let mut rules = Vec::new();
    let mut found = false;
    for rule in role["rules"].as_array().expect("rules") {
        let has = |key: &str, want: &str| {
            rule[key]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == want))
        };
        if !(has("apiGroups", group) && has("resources", resource) && has("verbs", verb)) {
            rules.push(rule.clone());
            continue;
        }
        found = true;
        let without = |key: &str, gone: &str| -> Value {
            rule[key]
                .as_array()
                .expect("list")
                .iter()
                .filter(|v| *v != gone)
                .cloned()
                .collect()
        };
        // The rest of the rule, as it was.
        for (key, gone) in [("apiGroups", group), ("resources", resource)] {
            let rest = without(key, gone);
            if rest.as_array().is_some_and(|a| !a.is_empty()) {
                let mut kept = rule.clone();
                kept[key] = rest;
                rules.push(kept);
            }
        }
        // This group's resource, less the verb.
        let mut narrowed = rule.clone();
        narrowed["apiGroups"] = json!([group]);
        narrowed["resources"] = json!([resource]);
        narrowed["verbs"] = without("verbs", verb);
        rules.push(narrowed);
    }
    assert!(
        found,
        "{kind} {name} grants no {verb} on {resource} in {group:?}"
    );
    role["rules"] = rules.into();
    sim.apply(&role).expect("revoke");
}

/// A kubeconfig file `dir/NAME.kubeconfig` whose user sends `token`.
pub fn kubeconfig(sim: &KubeSim, dir: &Path, name: &str, token: &str) -> PathBuf {
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, sim.kubeconfig_for(token)).expect("write kubeconfig");
    path
}
