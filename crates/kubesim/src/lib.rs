//! kubesim: an in-memory Kubernetes API server for rebootguard's tests and
//! lab, speaking real HTTP and real JSON so that kube-rs and the real
//! `kubectl` work against it unchanged.
//!
//! Key design decision: kinds are data, not code. Every object is stored
//! as JSON keyed by (resource, namespace, name), and a resource is a row in
//! [`registry`] (group, version, plural, kind, scope, subresources, field
//! selector labels). Semantics that the apiserver implements per kind
//! (pod graceful deletion, eviction through PodDisruptionBudgets, Table
//! columns for `kubectl get`) are the exceptions, each in one place.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kubesim::{KubeSim, faults::{Failure, Route}};
//! let sim = KubeSim::start().await?;
//! sim.create(&serde_json::json!({
//!     "apiVersion": "v1", "kind": "Node",
//!     "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.42.0.0/24"},
//! }))?;
//! sim.add_latency(Route::new("get", "nodes"), std::time::Duration::from_secs(2));
//! sim.fail_next(Route::any(), 3, Failure::Unavailable);
//! let client = sim.client()?;
//! # let _ = client; Ok(()) }
//! ```

pub mod auth;
pub mod convert;
pub mod defaults;
pub mod faults;
pub mod fixtures;
pub mod logs;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod registry;
pub mod review;
pub mod scale;
pub mod selector;
pub mod status;
pub mod store;
pub mod table;
pub mod time;
pub mod tls;

mod control;
mod server;
mod shared;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::faults::{Counts, Failure, Faults, Route};
use crate::registry::{CustomResource, Registry, ResourceId};
use crate::shared::Shared;
use crate::status::Status;
use crate::store::{DeleteOptions, Deletion, Filter, Origin, Scope, Store};

/// Why kubesim could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding the listening socket failed.
    #[error("failed to listen on {address}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the kubeconfig file failed.
    #[error("failed to write the kubeconfig file")]
    WriteKubeconfig(#[source] std::io::Error),
    /// Seeding the default namespaces failed.
    #[error("failed to create namespace {0}")]
    Seed(String, #[source] Status),
    /// Building a kube client failed.
    #[error("failed to build a kube client for kubesim")]
    Client(#[source] kube::Error),
    /// Generating the TLS material failed.
    #[error("failed to set up TLS")]
    Tls(#[source] tls::Error),
    /// An object passed to a seeding call is not valid.
    #[error("failed to seed object: {0}")]
    Object(#[source] Status),
}

/// What happens to a pod deleted gracefully (with a grace period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodTermination {
    /// The pod is removed when its grace period ends, as a healthy kubelet
    /// would do.
    Kubelet,
    /// The pod stays `Terminating` until deleted with grace 0 (a node whose
    /// kubelet is gone).
    Hold,
}

/// Start-up options. [`Options::default`] is a sensible test server.
#[derive(Debug, Clone)]
pub struct Options {
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The minor version `/version` reports (kubectl's dispatcher picks its
    /// client by it: keep it within 27..=33).
    pub version_minor: u32,
    /// Watch events kept for resuming watches; older resourceVersions get 410.
    pub history: usize,
    /// Custom resources served as unstructured JSON.
    pub custom_resources: Vec<CustomResource>,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Watch length when the client sends no `timeoutSeconds`.
    pub watch_timeout: Duration,
    /// What happens to gracefully deleted pods.
    pub pod_termination: PodTermination,
    /// Namespaces created at start.
    pub namespaces: Vec<String>,
    /// Serve HTTPS with a certificate from a CA generated at start (see
    /// [`KubeSim::ca_pem`]); the kubeconfig and [`KubeSim::config`] trust it.
    pub tls: bool,
    /// Authenticate every request by its bearer token and authorize it by
    /// the stored RBAC objects, as a real cluster does (see [`auth`] and
    /// [`rbac`]). Off, every client is the administrator.
    pub rbac: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: 0,
            version_minor: 33,
            history: 10_000,
            custom_resources: CustomResource::defaults(),
            bookmark_interval: Duration::from_secs(5),
            watch_timeout: Duration::from_secs(1800),
            pod_termination: PodTermination::Kubelet,
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .map(String::from)
                .to_vec(),
            tls: false,
            rbac: false,
        }
    }
}

pub(crate) fn version_json(options: &Options) -> Value {
    json!({
        "major": "1",
        "minor": options.version_minor.to_string(),
        "gitVersion": format!("v1.{}.0+kubesim", options.version_minor),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// The listening socket's task, kept in the shared state so the control
/// API can take the server down and up.
pub(crate) struct Running {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Whether the real `kubectl` runs here, for tests that drive it against
/// kubesim. Without it they skip, saying so; with `KUBESIM_REQUIRE_KUBECTL`
/// set (as CI sets it) its absence is a failure instead.
pub fn kubectl_available(test: &str) -> bool {
    let found = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("KUBESIM_REQUIRE_KUBECTL").is_none(),
            "{test}: KUBESIM_REQUIRE_KUBECTL is set but kubectl is not on PATH"
        );
        eprintln!("skipping {test}: kubectl is not on PATH (install kubectl to run it)");
    }
    found
}

/// The administrator's token, in [`KubeSim::kubeconfig_yaml`].
pub const ADMIN_TOKEN: &str = "kubesim";

/// A running kubesim. Dropping it stops the server.
pub struct KubeSim {
    shared: Arc<Shared>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for KubeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSim")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// Starts serving on the shared state's address.
/// Synchronous (std bind, then handed to tokio) so that the control API can
/// call it from inside a request without a recursive future type.
pub(crate) fn serve(shared: &Arc<Shared>) -> Result<(), Error> {
    let address = *shared
        .address
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let listener = std::net::TcpListener::bind(address)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(TcpListener::from_std)
        .map_err(|source| Error::Bind { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::Bind { address, source })?;
    *shared
        .address
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = bound;
    let (tx, mut rx) = watch::channel(false);
    let conn_shared = shared.clone();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let shared = conn_shared.clone();
                    conns.spawn(async move {
                        match shared.tls.clone() {
                            Some(authority) => {
                                // A failed handshake is the client's problem (e.g. an untrusted CA).
                                if let Ok(tls) = authority.acceptor.accept(stream).await {
                                    serve_connection(shared, tls).await;
                                }
                            }
                            None => serve_connection(shared, stream).await,
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                _ = rx.changed() => break,
            }
        }
        drop(listener);
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    });
    let previous = shared
        .running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .replace(Running { shutdown: tx, task });
    if let Some(p) = previous {
        let _ = p.shutdown.send(true);
    }
    Ok(())
}

async fn serve_connection<I>(shared: Arc<Shared>, io: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| server::handle(shared.clone(), req));
    // A client that hangs up mid-request is not an error of ours.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// Stops serving: closes the listener and every connection.
pub(crate) async fn stop(shared: &Arc<Shared>) {
    let running = shared
        .running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(r) = running {
        let _ = r.shutdown.send(true);
        let _ = r.task.await;
    }
    // Watches hold no connection of their own; end them too.
    shared.cut.send_modify(|g| *g += 1);
}

impl KubeSim {
    /// Starts kubesim with default [`Options`] on a free port.
    pub async fn start() -> Result<Self, Error> {
        Self::with_options(Options::default()).await
    }

    /// Starts kubesim with `options`.
    pub async fn with_options(options: Options) -> Result<Self, Error> {
        let registry = Arc::new(Registry::new(&options.custom_resources));
        let mut store = Store::new(registry.clone(), options.history);
        let ns = registry.find("", "v1", "namespaces");
        for name in &options.namespaces {
            if let Some(ns) = ns {
                store
                    .create(ns, None, json!({"metadata": {"name": name}}), Origin::Seed)
                    .map_err(|e| Error::Seed(name.clone(), e))?;
            }
        }
        if options.rbac {
            for object in rbac::bootstrap() {
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let id = object["kind"]
                    .as_str()
                    .and_then(|kind| registry.find_kind("rbac.authorization.k8s.io/v1", kind));
                if let Some(id) = id {
                    store
                        .create(id, None, object, Origin::Seed)
                        .map_err(|e| Error::Seed(name, e))?;
                }
            }
        }
        let mut tokens = auth::Tokens::default();
        tokens.insert(
            ADMIN_TOKEN,
            auth::Holder::User(rbac::User::new(review::USERNAME, review::GROUPS)),
        );
        let (cut, _) = watch::channel(0);
        let tls = if options.tls {
            Some(tls::Authority::generate().map_err(Error::Tls)?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            tls,
            rv: store.rv_counter(),
            store: Mutex::new(store),
            registry,
            faults: Mutex::new(Faults::default()),
            cut,
            address: Mutex::new(SocketAddr::from(([127, 0, 0, 1], options.port))),
            running: Mutex::new(None),
            logs: Mutex::new(logs::Logs::default()),
            tokens: Mutex::new(tokens),
            options,
        });
        serve(&shared)?;
        let dir = tempfile::Builder::new()
            .prefix("kubesim-")
            .tempdir()
            .map_err(Error::WriteKubeconfig)?;
        let kubeconfig = dir.path().join("kubeconfig");
        let sim = Self {
            shared,
            kubeconfig,
            _dir: dir,
        };
        std::fs::write(&sim.kubeconfig, sim.kubeconfig_yaml()).map_err(Error::WriteKubeconfig)?;
        Ok(sim)
    }

    /// Appends `text` to a container's log, as its kubelet would hold it:
    /// `kubectl logs` reads it back (`previous`: the run before the last
    /// restart, `kubectl logs --previous`).
    pub fn append_log(&self, pod: (&str, &str), container: &str, previous: bool, text: &str) {
        self.shared
            .logs()
            .append((pod.0, pod.1, container), previous, text);
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        *self
            .shared
            .address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `http://127.0.0.1:<port>`, or `https://` with [`Options::tls`].
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr())
    }

    /// The generated CA certificate (PEM) when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.shared.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// A kubeconfig (JSON, which is YAML too) pointing at this server, as
    /// the administrator (group `system:masters`). Without
    /// [`Options::rbac`] kubesim ignores the token; it is there anyway
    /// because with no credentials at all kubectl prompts for a password
    /// over HTTPS.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_for(ADMIN_TOKEN)
    }

    /// A token for a kubeconfig user `name` in `groups` (plus
    /// `system:authenticated`), like a line of the apiserver's token file.
    pub fn user_token(&self, name: &str, groups: &[&str]) -> String {
        self.shared
            .tokens()
            .issue(auth::Holder::User(rbac::User::new(name, groups)))
    }

    /// A token for the ServiceAccount `namespace/name` (as a TokenRequest
    /// would give one): it authenticates while the ServiceAccount exists.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        self.shared.tokens().issue(auth::Holder::ServiceAccount {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            secret: None,
        })
    }

    /// A kubeconfig like [`KubeSim::kubeconfig_yaml`] whose user sends `token`.
    pub fn kubeconfig_for(&self, token: &str) -> String {
        let mut cluster = json!({"server": self.url()});
        if let Some(t) = &self.shared.tls {
            cluster["certificate-authority-data"] = base64::engine::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &t.ca_pem,
            )
            .into();
        }
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubesim", "cluster": cluster}],
            "users": [{"name": "kubesim", "user": {"token": token}}],
            "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "kubesim", "namespace": "default"}}],
            "current-context": "kubesim",
        })
        .to_string()
    }

    /// Path of a kubeconfig file for this server, removed when kubesim is dropped.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs config for this server, as the administrator.
    pub fn config(&self) -> kube::Config {
        let uri = self
            .url()
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("http://127.0.0.1"));
        let mut config = kube::Config::new(uri);
        // The administrator, as in the kubeconfig (needed with `Options::rbac`).
        config.headers.push((
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {ADMIN_TOKEN}"))
                .unwrap_or_else(|_| http::HeaderValue::from_static("")),
        ));
        if let Some(t) = &self.shared.tls {
            config.root_cert = Some(vec![t.ca_der.clone()]);
        }
        config
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.config()).map_err(Error::Client)
    }

    /// A kube-rs client that sends `token` (see [`KubeSim::user_token`]).
    pub async fn client_for(&self, token: &str) -> Result<kube::Client, Error> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_for(token))
            .map_err(|e| Error::Client(kube::Error::InferKubeconfig(e)))?;
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Error::Client(kube::Error::InferKubeconfig(e)))?;
        kube::Client::try_from(config).map_err(Error::Client)
    }

    /// The current cluster-wide resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.rv.load(Ordering::Acquire)
    }

    fn resolve(&self, object: &Value) -> Result<ResourceId, Status> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.kind(api_version, kind)
    }

    fn kind(&self, api_version: &str, kind: &str) -> Result<ResourceId, Status> {
        self.shared.registry.find_kind(api_version, kind).ok_or_else(|| {
            Status::bad_request(format!(
                "kubesim serves no kind {kind:?} in {api_version:?}: set apiVersion and kind, or register it in Options::custom_resources"
            ))
        })
    }

    /// Creates an object as a test fixture: unlike an API create, status,
    /// `uid` and `creationTimestamp` are kept as written. Namespaced objects
    /// without a namespace go to `default`. Takes any serializable object
    /// with `apiVersion` and `kind` (k8s-openapi types, `json!`).
    pub fn create(&self, object: &impl Serialize) -> Result<Value, Error> {
        let v = serde_json::to_value(object)
            .map_err(|e| Error::Object(Status::bad_request(e.to_string())))?;
        let id = self.resolve(&v).map_err(Error::Object)?;
        let ns = v
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut v = v;
        self.shared
            .admit_new(id, ns.as_deref().unwrap_or("default"), &mut v);
        let o = self
            .shared
            .store()
            .create(id, ns.as_deref(), v, Origin::Seed)
            .map_err(Error::Object)?;
        Ok(o.value())
    }

    /// Creates the object, or replaces it (status included) if it exists.
    pub fn apply(&self, object: &impl Serialize) -> Result<Value, Error> {
        let mut v = serde_json::to_value(object)
            .map_err(|e| Error::Object(Status::bad_request(e.to_string())))?;
        let id = self.resolve(&v).map_err(Error::Object)?;
        let ns = v
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut store = self.shared.store();
        let o = match store.get(id, &ns, &name) {
            Ok(_) => {
                if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                store.update(id, &ns, &name, v, Scope::Main, Origin::Seed)
            }
            Err(_) => {
                self.shared.admit_new(id, &ns, &mut v);
                store.create(id, Some(&ns), v, Origin::Seed)
            }
        }
        .map_err(Error::Object)?;
        Ok(o.value())
    }

    /// One object, or `None`.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let id = self.kind(api_version, kind).ok()?;
        self.shared
            .store()
            .get(id, namespace, name)
            .ok()
            .map(|o| o.value())
    }

    /// Every object of a kind, optionally in one namespace, in name order.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Ok(id) = self.kind(api_version, kind) else {
            return Vec::new();
        };
        let filter = Filter {
            namespace: namespace.map(str::to_owned),
            ..Filter::default()
        };
        let page = self.shared.store().list(id, &filter, None, None);
        page.map(|p| p.items.iter().map(|o| o.value()).collect())
            .unwrap_or_default()
    }

    /// Patches an object as the API would: the status is kept as stored.
    pub fn patch(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        patch_kind: patch::Kind,
        body: &Value,
    ) -> Result<Value, Error> {
        self.patch_scoped(
            api_version,
            kind,
            (namespace, name),
            patch_kind,
            body,
            Scope::Main,
        )
    }

    /// Patches an object's `status` subresource as the API would.
    pub fn patch_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        patch_kind: patch::Kind,
        body: &Value,
    ) -> Result<Value, Error> {
        self.patch_scoped(
            api_version,
            kind,
            (namespace, name),
            patch_kind,
            body,
            Scope::Status,
        )
    }

    fn patch_scoped(
        &self,
        api_version: &str,
        kind: &str,
        (namespace, name): (&str, &str),
        patch_kind: patch::Kind,
        body: &Value,
        scope: Scope,
    ) -> Result<Value, Error> {
        let id = self.kind(api_version, kind).map_err(Error::Object)?;
        let o = self
            .shared
            .store()
            .patch(id, namespace, name, patch_kind, body, scope, Origin::Api)
            .map_err(Error::Object)?;
        Ok(o.value())
    }

    /// Deletes an object at once (grace period 0; finalizers still hold it).
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<(), Error> {
        let id = self.kind(api_version, kind).map_err(Error::Object)?;
        let options = DeleteOptions {
            grace_period: Some(0),
            ..DeleteOptions::default()
        };
        let outcome = self
            .shared
            .store()
            .delete(id, namespace, name, &options)
            .map_err(Error::Object)?;
        drop::<Deletion>(outcome);
        Ok(())
    }

    /// Adds latency to requests matching `route`.
    pub fn add_latency(&self, route: Route, delay: Duration) {
        self.shared.faults().add_latency(route, delay);
    }

    /// Fails the next `count` requests matching `route`.
    pub fn fail_next(&self, route: Route, count: u32, failure: Failure) {
        self.shared.faults().fail_next(route, count, failure);
    }

    /// Removes every latency and failure rule.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Ends every open watch (clients see the stream close and re-watch).
    pub fn cut_watches(&self) {
        self.shared.cut.send_modify(|g| *g += 1);
    }

    /// Answers the next `count` watch requests with 410 Gone.
    pub fn expire_next_watches(&self, count: u32) {
        self.shared.faults().expire_next_watches(count);
    }

    /// Stops serving: the port refuses connections, open ones are dropped.
    /// State is kept for [`KubeSim::up`].
    pub async fn down(&self) {
        stop(&self.shared).await;
    }

    /// Serves again on the same port after [`KubeSim::down`].
    pub fn up(&self) -> Result<(), Error> {
        serve(&self.shared)
    }

    /// Whether the server is accepting connections.
    pub fn is_up(&self) -> bool {
        self.shared
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Requests served so far per `(verb, resource)`, summed over user agents.
    pub fn requests(&self) -> Counts {
        self.shared.faults().counts()
    }

    /// Requests served so far with `verb` on `resource` (e.g. `"get"`,
    /// `"nodes"`), from every user agent.
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        self.shared
            .faults()
            .counts_by_agent()
            .iter()
            .filter(|((_, v, r), _)| v == verb && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests served so far as `(user agent, verb, resource, count)` rows,
    /// sorted; the user agent is the request's `User-Agent` header, empty
    /// when it had none.
    pub fn requests_by_agent(&self) -> Vec<(String, String, String, u64)> {
        self.shared
            .faults()
            .counts_by_agent()
            .iter()
            .map(|((a, v, r), n)| (a.clone(), v.clone(), r.clone(), *n))
            .collect()
    }

    /// Requests served so far from user agent `agent` (the exact
    /// `User-Agent` header), every verb and resource summed.
    pub fn request_count_by_agent(&self, agent: &str) -> u64 {
        self.shared
            .faults()
            .counts_by_agent()
            .iter()
            .filter(|((a, _, _), _)| a == agent)
            .map(|(_, n)| n)
            .sum()
    }

    /// Forgets the request counts.
    pub fn reset_requests(&self) {
        self.shared.faults().reset_counts();
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        let running = self
            .shared
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(r) = running {
            let _ = r.shutdown.send(true);
            r.task.abort();
        }
        self.shared.cut.send_modify(|g| *g += 1);
    }
}
