//! What every connection shares: the store, the faults, the tokens and
//! the options behind one [`Shared`], and the [`ResponseBody`] every
//! handler answers with (the server's and the control API's alike).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::auth::Holder;
use crate::faults::Faults;
use crate::rbac::{self, User};
use crate::registry::{Registry, ResourceId};
use crate::review;
use crate::status::Status;
use crate::store::{Filter, Object, Store};
use crate::{Options, PodTermination};

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) rv: Arc<AtomicU64>,
    /// Bumped to end every open watch.
    pub(crate) cut: watch::Sender<u64>,
    pub(crate) options: Options,
    pub(crate) address: Mutex<SocketAddr>,
    pub(crate) running: Mutex<Option<crate::Running>>,
    pub(crate) tls: Option<crate::tls::Authority>,
    pub(crate) logs: Mutex<crate::logs::Logs>,
    pub(crate) tokens: Mutex<crate::auth::Tokens>,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves consistent data: every
        // mutation is a single map insert plus history push.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn logs(&self) -> MutexGuard<'_, crate::logs::Logs> {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn tokens(&self) -> MutexGuard<'_, crate::auth::Tokens> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the apiserver's controllers add to a new object before anyone
    /// reads it: a token Secret's token.
    pub(crate) fn admit_new(&self, id: ResourceId, namespace: &str, object: &mut Value) {
        let r = self.registry.get(id);
        if r.group.is_empty() && r.plural == "secrets" {
            let ca = self.tls.as_ref().map(|t| t.ca_pem.as_str());
            self.tokens().fill_secret(namespace, object, ca);
        }
    }

    /// Who sent a request: the holder of its bearer token. Without
    /// [`crate::Options::rbac`], everyone is the administrator.
    pub(crate) fn authenticate(&self, headers: &http::HeaderMap) -> Result<User, Status> {
        if !self.options.rbac {
            return Ok(User::new(review::USERNAME, review::GROUPS));
        }
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = crate::auth::bearer(header).ok_or_else(Status::unauthorized)?;
        let holder = self
            .tokens()
            .holder(token)
            .cloned()
            .ok_or_else(Status::unauthorized)?;
        match holder {
            Holder::User(user) => Ok(user),
            Holder::ServiceAccount {
                namespace,
                name,
                secret,
            } => {
                let store = self.store();
                let exists = |plural: &str, object: &str| {
                    self.registry
                        .find("", "v1", plural)
                        .is_some_and(|id| store.get(id, &namespace, object).is_ok())
                };
                let live = exists("serviceaccounts", &name)
                    && secret.as_deref().is_none_or(|s| exists("secrets", s));
                if live {
                    Ok(User::service_account(&namespace, &name))
                } else {
                    Err(Status::unauthorized())
                }
            }
        }
    }

    /// The RBAC objects stored now.
    fn policy(&self) -> rbac::Policy {
        fn all<T: serde::de::DeserializeOwned>(
            shared: &Shared,
            store: &mut Store,
            plural: &str,
        ) -> Vec<T> {
            let Some(id) = shared
                .registry
                .find("rbac.authorization.k8s.io", "v1", plural)
            else {
                return Vec::new();
            };
            let page = store.list(id, &Filter::default(), None, None);
            page.map(|p| {
                p.items
                    .iter()
                    .filter_map(|o| serde_json::from_slice(&o.json).ok())
                    .collect()
            })
            .unwrap_or_default()
        }
        let mut store = self.store();
        rbac::Policy {
            cluster_roles: all(self, &mut store, "clusterroles"),
            cluster_role_bindings: all(self, &mut store, "clusterrolebindings"),
            roles: all(self, &mut store, "roles"),
            role_bindings: all(self, &mut store, "rolebindings"),
        }
    }

    /// Why `user` may make `request`, or `None`. Without
    /// [`crate::Options::rbac`], everything is allowed.
    pub(crate) fn authorize(&self, user: &User, request: &rbac::Request) -> Option<String> {
        if !self.options.rbac {
            return Some("kubesim does not enforce RBAC: every client may do everything".into());
        }
        rbac::authorize(&self.policy(), user, request)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a kubelet-like timer that finishes a pod's graceful deletion.
    pub(crate) fn schedule_termination(
        self: &Arc<Self>,
        resource: ResourceId,
        object: &Object,
        grace: u64,
    ) {
        if self.options.pod_termination != PodTermination::Kubelet {
            return;
        }
        let uid = object
            .value()
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (ns, name) = (object.namespace.to_string(), object.name.to_string());
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(grace)).await;
            if let Some(shared) = weak.upgrade() {
                shared
                    .store()
                    .finish_termination(resource, &ns, &name, &uid);
            }
        });
    }
}

/// The response body: a whole buffer or a stream of watch lines.
pub(crate) enum ResponseBody {
    Full(Full<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(f) => Pin::new(f).poll_frame(cx),
            Self::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(f) => f.size_hint(),
            Self::Stream(_) => SizeHint::default(),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(f) => f.is_end_stream(),
            Self::Stream(_) => false,
        }
    }
}
