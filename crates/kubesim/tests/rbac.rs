//! rbac.authorization.k8s.io/v1: ClusterRole, ClusterRoleBinding, Role and
//! RoleBinding through kube-rs, discovery, and the real kubectl's `apply`
//! (twice: created, then unchanged) and `get`; and, with `Options::rbac`,
//! enforced: bearer tokens authenticate, the stored roles authorize, and
//! kube-rs and kubectl see the apiserver's 401 and 403.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kubesim::{KubeSim, Options};
use serde_json::json;

#[tokio::test]
async fn rbac_objects_round_trip_through_kube_rs() {
    let sim = KubeSim::start().await.expect("kubesim");
    let client = sim.client().expect("client");

    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "reader"},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}
        ]
    }))
    .expect("role");
    let created = roles
        .create(&PostParams::default(), &role)
        .await
        .expect("create");
    assert!(created.metadata.namespace.is_none(), "cluster-scoped");
    let read = roles.get("reader").await.expect("get");
    assert_eq!(read.rules, role.rules);

    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "kube-system"}]
    }))
    .expect("binding");
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("create");
    assert_eq!(
        bindings.get("reader").await.expect("get").role_ref.name,
        "reader"
    );

    let leases: Api<Role> = Api::namespaced(client.clone(), "kube-system");
    let lease_role: Role = serde_json::from_value(json!({
        "metadata": {"name": "lease"},
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                   "resourceNames": ["the-lock"], "verbs": ["get", "update"]}]
    }))
    .expect("role");
    leases
        .create(&PostParams::default(), &lease_role)
        .await
        .expect("create");
    let read = leases.get("lease").await.expect("get");
    assert_eq!(read.metadata.namespace.as_deref(), Some("kube-system"));
    let rules = read.rules.expect("rules");
    assert_eq!(
        rules[0].resource_names.as_deref(),
        Some(&["the-lock".to_owned()][..])
    );
    // Namespaced: not seen from another namespace.
    let elsewhere: Api<Role> = Api::namespaced(client.clone(), "default");
    assert!(elsewhere.get_opt("lease").await.expect("get").is_none());
    let everywhere: Api<Role> = Api::all(client.clone());
    assert_eq!(
        everywhere
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );

    let role_bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "kube-system");
    let rb: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "lease"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lease"},
        "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "kube-system"}]
    }))
    .expect("binding");
    role_bindings
        .create(&PostParams::default(), &rb)
        .await
        .expect("create");
    role_bindings
        .delete("lease", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(role_bindings.get_opt("lease").await.expect("get").is_none());

    // Seeded fixtures read back through the Rust handle too.
    assert!(
        sim.get("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader")
            .is_some()
    );
    assert_eq!(
        sim.list("rbac.authorization.k8s.io/v1", "Role", Some("kube-system"))
            .len(),
        1
    );
}

#[tokio::test]
async fn discovery_lists_the_rbac_group() {
    let sim = KubeSim::start().await.expect("kubesim");
    let client = sim.client().expect("client");
    let discovery = kube::Discovery::new(client)
        .filter(&["rbac.authorization.k8s.io"])
        .run()
        .await
        .expect("discovery");
    let mut found: Vec<(String, bool)> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .map(|(resource, caps)| {
            (
                resource.plural.clone(),
                caps.scope == kube::discovery::Scope::Namespaced,
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("clusterrolebindings".to_owned(), false),
            ("clusterroles".to_owned(), false),
            ("rolebindings".to_owned(), true),
            ("roles".to_owned(), true),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_applies_and_reads_roles_and_bindings() {
    let sim = KubeSim::start().await.expect("kubesim");
    if !kubesim::kubectl_available("kubectl_applies_and_reads_roles_and_bindings") {
        return;
    }
    let cache = tempfile::tempdir().expect("cache dir");
    let kubeconfig = sim.kubeconfig_path().to_owned();
    let kubectl = async |args: &[&str]| -> String {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--cache-dir")
                .arg(cache.path())
                .args(args)
                .env_remove("KUBECONFIG")
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("kubectl finished within 60s")
        .expect("kubectl ran");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // `kubectl create clusterrole` would send protobuf, which kubesim does
    // not read; apply sends JSON, after finding each kind in discovery.
    let manifests = tempfile::tempdir().expect("manifests");
    std::fs::write(
        manifests.path().join("rbac.yaml"),
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: agent
rules:
  - apiGroups: [""]
    resources: ["nodes/status"]
    verbs: ["patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: agent
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agent}
subjects: [{kind: ServiceAccount, name: agent, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: lease
  namespace: kube-system
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: ["the-lock"]
    verbs: ["get", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: lease
  namespace: kube-system
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: lease}
subjects: [{kind: ServiceAccount, name: agent, namespace: kube-system}]
"#,
    )
    .expect("write");
    let dir = manifests.path().to_str().expect("utf-8");
    let applied = kubectl(&["apply", "--validate=false", "-f", dir]).await;
    assert_eq!(applied.matches(" created").count(), 4, "{applied}");
    let again = kubectl(&["apply", "--validate=false", "-f", dir]).await;
    assert_eq!(again.matches(" unchanged").count(), 4, "{again}");

    let role = sim
        .get(
            "rbac.authorization.k8s.io/v1",
            "Role",
            "kube-system",
            "lease",
        )
        .expect("stored");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                "resourceNames": ["the-lock"], "verbs": ["get", "update"]}])
    );
    let cluster_role = sim
        .get("rbac.authorization.k8s.io/v1", "ClusterRole", "", "agent")
        .expect("stored");
    assert_eq!(
        cluster_role["rules"],
        json!([{"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}])
    );
    let listed = kubectl(&["get", "clusterroles,clusterrolebindings", "-o", "name"]).await;
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "clusterrole.rbac.authorization.k8s.io/agent",
            "clusterrolebinding.rbac.authorization.k8s.io/agent"
        ]
    );
    let bindings = kubectl(&["get", "rolebindings", "-A"]).await;
    assert!(
        bindings
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["kube-system", "lease"])),
        "{bindings}"
    );
}

/// kubesim enforcing RBAC, over HTTPS: kubectl sends no credentials to a
/// plain-HTTP server.
async fn enforcing() -> KubeSim {
    KubeSim::with_options(Options {
        rbac: true,
        tls: true,
        ..Options::default()
    })
    .await
    .expect("kubesim")
}

/// A ServiceAccount `rebootguard/agent` that may read Nodes and patch
/// their status, and get one Lease by name in kube-system.
fn grant_agent(sim: &KubeSim) {
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rebootguard"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "agent", "namespace": "rebootguard"}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "agent"}, "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "agent"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "agent"},
               "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "rebootguard"}]}),
    ] {
        sim.create(&object).expect("seed");
    }
}

fn api_code(e: &kube::Error) -> Option<(u16, String)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.message.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn with_rbac_on_only_granted_requests_pass() {
    let sim = enforcing().await;
    grant_agent(&sim);
    // The kubeconfig's administrator may do everything.
    let admin = sim.client().expect("client");
    Api::<Node>::all(admin.clone())
        .delete("n1", &DeleteParams::default())
        .await
        .expect("the administrator deletes");
    sim.create(&json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}))
        .expect("seed");

    let token = sim.service_account_token("rebootguard", "agent");
    let agent = sim.client_for(&token).await.expect("client");
    let nodes: Api<Node> = Api::all(agent.clone());
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .expect("status patch is granted");
    let refused = nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect_err("a patch of the Node itself is not granted");
    assert_eq!(
        api_code(&refused),
        Some((
            403,
            "nodes \"n1\" is forbidden: User \"system:serviceaccount:rebootguard:agent\" cannot patch resource \"nodes\" in API group \"\" at the cluster scope".to_owned()
        ))
    );
    let secrets: Api<Secret> = Api::namespaced(agent.clone(), "rebootguard");
    let refused = secrets
        .list(&ListParams::default())
        .await
        .expect_err("no Secrets");
    assert_eq!(api_code(&refused).map(|(c, _)| c), Some(403));

    // No token, an unknown one, or one whose ServiceAccount is gone: 401.
    let unknown = sim.client_for("kubesim.not-issued").await.expect("client");
    let err = Api::<Node>::all(unknown)
        .list(&ListParams::default())
        .await
        .expect_err("401");
    assert_eq!(api_code(&err).map(|(c, _)| c), Some(401));
    let err = Api::<Node>::all(anonymous(&sim))
        .list(&ListParams::default())
        .await
        .expect_err("401");
    assert_eq!(api_code(&err).map(|(c, _)| c), Some(401));
    sim.delete("v1", "ServiceAccount", "rebootguard", "agent")
        .expect("delete");
    let err = nodes
        .list(&ListParams::default())
        .await
        .expect_err("401 once the account is gone");
    assert_eq!(api_code(&err).map(|(c, _)| c), Some(401));
}

/// A kube-rs client that sends no credentials at all.
fn anonymous(sim: &KubeSim) -> kube::Client {
    let mut config = sim.config();
    config.headers.clear();
    kube::Client::try_from(config).expect("client")
}

#[tokio::test]
async fn a_token_secret_is_filled_in_and_dies_with_its_secret() {
    let sim = enforcing().await;
    grant_agent(&sim);
    let admin = sim.client().expect("client");
    let secrets: Api<Secret> = Api::namespaced(admin, "rebootguard");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "agent-token",
                     "annotations": {"kubernetes.io/service-account.name": "agent"}},
        "type": "kubernetes.io/service-account-token",
    }))
    .expect("secret");
    let created = secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create");
    let data = created.data.expect("the token controller filled data");
    let token = String::from_utf8(data["token"].0.clone()).expect("utf-8");
    assert_eq!(data["namespace"].0, b"rebootguard");

    let agent = sim.client_for(&token).await.expect("client");
    let nodes: Api<Node> = Api::all(agent);
    nodes
        .get("n1")
        .await
        .expect("the Secret's token is the agent");
    secrets
        .delete("agent-token", &DeleteParams::default())
        .await
        .expect("delete");
    let err = nodes.get("n1").await.expect_err("revoked with its Secret");
    assert_eq!(api_code(&err).map(|(c, _)| c), Some(401));
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_sees_whoami_can_i_and_forbidden() {
    let sim = enforcing().await;
    if !kubesim::kubectl_available("kubectl_sees_whoami_can_i_and_forbidden") {
        return;
    }
    grant_agent(&sim);
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = dir.path().join("agent.kubeconfig");
    std::fs::write(
        &kubeconfig,
        sim.kubeconfig_for(&sim.service_account_token("rebootguard", "agent")),
    )
    .expect("write");
    let kubectl = async |args: &[&str]| -> std::process::Output {
        tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--cache-dir")
                .arg(dir.path().join("cache"))
                .args(args)
                .env_remove("KUBECONFIG")
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("kubectl finished within 60s")
        .expect("kubectl ran")
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let who = kubectl(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ])
    .await;
    assert_eq!(
        text(&who.stdout),
        "system:serviceaccount:rebootguard:agent",
        "{}",
        text(&who.stderr)
    );
    let yes = kubectl(&["auth", "can-i", "patch", "nodes", "--subresource=status"]).await;
    assert!(yes.status.success(), "{}", text(&yes.stderr));
    assert_eq!(text(&yes.stdout).trim(), "yes");
    let no = kubectl(&["auth", "can-i", "delete", "nodes"]).await;
    assert_eq!(no.status.code(), Some(1), "can-i says no with exit 1");
    assert_eq!(text(&no.stdout).trim(), "no");

    let listed = kubectl(&["get", "nodes", "-o", "name"]).await;
    assert_eq!(
        text(&listed.stdout).trim(),
        "node/n1",
        "{}",
        text(&listed.stderr)
    );
    let refused = kubectl(&["get", "pods", "-n", "kube-system"]).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains(
            "pods is forbidden: User \"system:serviceaccount:rebootguard:agent\" cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\""
        ),
        "{}",
        text(&refused.stderr)
    );
}
