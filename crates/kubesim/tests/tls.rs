//! kubesim over HTTPS with its generated CA: kube-rs and kubectl trust it
//! through the config and kubeconfig kubesim hands out, and a client that
//! does not trust it is refused.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kubesim::{KubeSim, Options};
use serde_json::json;

async fn tls_sim() -> KubeSim {
    let sim = KubeSim::with_options(Options {
        tls: true,
        ..Options::default()
    })
    .await
    .expect("kubesim with TLS starts");
    sim.create(&json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.42.1.0/24"}}))
        .expect("seed");
    sim
}

#[tokio::test]
async fn kube_rs_verifies_the_generated_ca() {
    let sim = tls_sim().await;
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    assert!(
        sim.ca_pem()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let nodes: Api<Node> = Api::all(sim.client().unwrap());
    assert_eq!(
        nodes
            .get("n1")
            .await
            .unwrap()
            .spec
            .unwrap()
            .pod_cidr
            .as_deref(),
        Some("10.42.1.0/24")
    );

    let kc = Kubeconfig::read_from(sim.kubeconfig_path()).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(Client::try_from(cfg).unwrap());
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Without the CA the handshake fails: the TLS path is really checked.
    let mut untrusting = sim.config();
    untrusting.root_cert = None;
    untrusting.default_retry = false;
    let nodes: Api<Node> = Api::all(Client::try_from(untrusting).unwrap());
    let err = nodes.get("n1").await.unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "expected a TLS error, got {err}"
    );

    // Plain HTTP to the TLS port gets nothing useful either.
    let plain: Config = Config::new(sim.url().replace("https://", "http://").parse().unwrap());
    let nodes: Api<Node> = Api::all(Client::try_from(plain).unwrap());
    assert!(nodes.get("n1").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_over_https() {
    let sim = tls_sim().await;
    if !kubesim::kubectl_available("kubectl_over_https") {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(sim.kubeconfig_path())
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["get", "nodes", "-o", "name"])
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "node/n1");
}
