//! The agent's view of the API and its writes to it.
//!
//! Reads are three watches, whatever the cluster's size: every Node (this
//! one and the peers whose entries `flannel.1` must carry), the pods bound to
//! this node (`spec.nodeName`), and `FailedCreatePodSandBox` events (kept
//! only when they concern this node). Each keeps a slim view in [`Cache`];
//! the checks read it instead of listing. No polling lists.
//!
//! Writes go through [`reconcile`]: the machine's desired condition and
//! taint are written when they change and the condition again every
//! heartbeat; a failed write is retried with backoff, so when the API comes
//! back the Node catches up on its own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use rebootguard_cluster::condition::{self, Condition};
use rebootguard_cluster::node::{self as views, EventView, NodeView, PodView};
use rebootguard_cluster::reboot::Handshake;
use rebootguard_errors::Failure;
use rebootguard_node::check::{ApiFacts, Cluster, EVENTS_WINDOW};
use tokio::sync::{mpsc, watch};

use crate::machine::{CONDITION, Desired, TAINT, Truth};
use crate::metrics::Metrics;

/// What the watches have seen.
#[derive(Debug, Default)]
pub struct Cache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    nodes: Option<BTreeMap<String, NodeView>>,
    /// This node's `PodNetworkReady` as the API shows it.
    condition: Option<NodeCondition>,
    /// This node's UID (events name it).
    uid: Option<String>,
    /// This node's side of the reboot handshake.
    handshake: Handshake,
    pods: Option<BTreeMap<(String, String), PodView>>,
    events: Option<BTreeMap<(String, String), EventView>>,
    /// The watches' latest error, cleared by their next success.
    error: Option<Failure>,
}

impl Cache {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cluster half of the checks' facts, as of the watches' last word.
    pub fn facts(&self, node: &str) -> ApiFacts {
        let state = self.state();
        let Some(nodes) = &state.nodes else {
            return ApiFacts::Unavailable(
                state
                    .error
                    .clone()
                    .unwrap_or_else(|| Failure::said("waiting for the first list of Nodes", true)),
            );
        };
        let pods = match &state.pods {
            Some(pods) => Ok(pods.values().cloned().collect()),
            None => Err(waiting(&state.error, "pods")),
        };
        let events = match &state.events {
            Some(events) => Ok(events.values().cloned().collect()),
            None => Err(waiting(&state.error, "events")),
        };
        ApiFacts::Cluster(Cluster {
            me: nodes.get(node).cloned(),
            peers: nodes.values().filter(|n| n.name != node).cloned().collect(),
            pods,
            events,
        })
    }

    /// This node's `PodNetworkReady` as the API last showed it.
    pub fn condition(&self) -> Option<NodeCondition> {
        self.state().condition.clone()
    }

    /// This node's UID, once seen.
    pub fn uid(&self) -> Option<String> {
        self.state().uid.clone()
    }

    /// The reboot handshake as this node's object last showed it.
    pub fn handshake(&self) -> Handshake {
        self.state().handshake.clone()
    }

    fn failed(&self, error: watcher::Error) {
        // The watcher retries on its own: every watch error is retryable.
        self.state().error = Some(Failure::new(error, true));
    }
}

/// Why a watched kind has no list yet.
#[derive(Debug, thiserror::Error)]
#[error("{what} unknown")]
struct Unknown {
    what: &'static str,
    #[source]
    source: Failure,
}

fn waiting(error: &Option<Failure>, what: &'static str) -> Failure {
    match error {
        Some(e) => Failure::new(
            Unknown {
                what,
                source: e.clone(),
            },
            true,
        ),
        None => Failure::said(format!("waiting for the first list of {what}"), true),
    }
}

/// A watch's changes applied to one map of the cache; `Init` starts a
/// fresh buffer that `InitDone` swaps in, so a relist never shows a half
/// list. `None` as a value means "not ours": dropped like a delete.
struct Fold<K, V> {
    buffer: Option<BTreeMap<K, V>>,
}

impl<K: Ord, V: PartialEq> Fold<K, V> {
    fn new() -> Self {
        Fold { buffer: None }
    }

    /// Applies one event; returns whether the live map changed. Only what
    /// the slim views keep counts: a Node's heartbeat changes nothing here,
    /// so it costs no check.
    fn apply(&mut self, live: &mut Option<BTreeMap<K, V>>, event: Event<(K, Option<V>)>) -> bool {
        match event {
            Event::Init => {
                self.buffer = Some(BTreeMap::new());
                false
            }
            Event::InitApply((key, value)) => {
                if let (Some(buffer), Some(value)) = (&mut self.buffer, value) {
                    buffer.insert(key, value);
                }
                false
            }
            Event::InitDone => {
                let fresh = Some(self.buffer.take().unwrap_or_default());
                let changed = *live != fresh;
                *live = fresh;
                changed
            }
            Event::Apply((key, value)) => {
                let map = live.get_or_insert_with(BTreeMap::new);
                match value {
                    Some(v) => {
                        let changed = map.get(&key) != Some(&v);
                        if changed {
                            map.insert(key, v);
                        }
                        changed
                    }
                    None => map.remove(&key).is_some(),
                }
            }
            Event::Delete((key, _)) => live.as_mut().is_some_and(|m| m.remove(&key).is_some()),
        }
    }
}

/// Starts the three watches, each handed to `background` so its end is
/// never silent; `changed` hears about every change the checks care about
/// (Nodes, pods).
pub fn watch(
    client: Client,
    node: String,
    cache: Arc<Cache>,
    changed: mpsc::Sender<()>,
    background: &crate::background::Registrar,
) {
    // Nodes: the peers' flannel annotations and podCIDRs, and our own.
    {
        let (cache, changed, me) = (cache.clone(), changed.clone(), node.clone());
        let api = Api::<Node>::all(client.clone());
        let mut fold = Fold::new();
        background.forever(
            "the Node watch",
            tokio::spawn(follow(
                watcher::watcher(api, watcher::Config::default()),
                cache.clone(),
                move |event| {
                    let mut own = None;
                    let event = map(event, |n: Node| {
                        let name = n.metadata.name.clone().unwrap_or_default();
                        if name == me {
                            own = Some((
                                condition::find(&n, CONDITION).cloned(),
                                n.metadata.uid.clone(),
                                Handshake::of(&n),
                            ));
                        }
                        (name, views::view(&n).ok())
                    });
                    let mut state = cache.state();
                    if let Some((c, uid, handshake)) = own {
                        state.condition = c;
                        state.uid = uid;
                        state.handshake = handshake;
                    }
                    if fold.apply(&mut state.nodes, event) {
                        let _ = changed.try_send(());
                    }
                },
            )),
        );
    }
    // The pods bound to this node.
    {
        let (cache, changed) = (cache.clone(), changed.clone());
        let api = Api::<Pod>::all(client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let mut fold = Fold::new();
        background.forever(
            "the watch of this node's pods",
            tokio::spawn(follow(
                watcher::watcher(api, config),
                cache.clone(),
                move |event| {
                    let event = map(event, |p: Pod| {
                        let view = views::pod_view(&p);
                        ((view.namespace.clone(), view.name.clone()), Some(view))
                    });
                    if fold.apply(&mut cache.state().pods, event) {
                        let _ = changed.try_send(());
                    }
                },
            )),
        );
    }
    // Sandbox failures: one field selector for the reason; only this
    // node's are kept, and only for the checks' window.
    {
        let api = Api::<CoreEvent>::all(client);
        let config =
            watcher::Config::default().fields(&format!("reason={}", views::SANDBOX_FAILED));
        let mut fold = Fold::new();
        background.forever(
            "the sandbox event watch",
            tokio::spawn(follow(
                watcher::watcher(api, config),
                cache.clone(),
                move |event| {
                    let mut state = cache.state();
                    let event = map(event, |e: CoreEvent| {
                        let view = views::event_view(&e);
                        let ours = view.host.as_deref() == Some(node.as_str())
                            || state.pods.as_ref().is_some_and(|p| {
                                p.contains_key(&(view.namespace.clone(), view.name.clone()))
                            });
                        let key = (
                            e.metadata.namespace.clone().unwrap_or_default(),
                            e.metadata.name.clone().unwrap_or_default(),
                        );
                        (key, ours.then_some(view))
                    });
                    fold.apply(&mut state.events, event);
                    let window = jiff::SignedDuration::try_from(EVENTS_WINDOW).unwrap_or_default();
                    let horizon = jiff::Timestamp::now() - window;
                    if let Some(events) = &mut state.events {
                        events.retain(|_, e| e.last_seen.is_none_or(|t| t >= horizon));
                    }
                },
            )),
        );
    }
}

/// A watch event with its object turned into something else.
fn map<K, T>(event: Event<K>, f: impl FnOnce(K) -> T) -> Event<T> {
    match event {
        Event::Apply(k) => Event::Apply(f(k)),
        Event::Delete(k) => Event::Delete(f(k)),
        Event::Init => Event::Init,
        Event::InitApply(k) => Event::InitApply(f(k)),
        Event::InitDone => Event::InitDone,
    }
}

/// Drives one watch: every event to `apply`, every error into the cache
/// (the watcher retries with backoff on its own).
async fn follow<K, S>(stream: S, cache: Arc<Cache>, mut apply: impl FnMut(Event<K>) + Send)
where
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream.default_backoff());
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                apply(event);
            }
            Err(e) => {
                tracing::debug!("watch failed (retrying): {e}");
                cache.failed(e);
            }
        }
    }
}

/// The readiness taint.
pub fn taint() -> Taint {
    Taint {
        key: TAINT.into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    }
}

/// Keeps the Node's condition and taint as `desired` says: at once on a
/// change, the condition again every `heartbeat`, failed writes retried
/// with backoff (1 s doubling to 16 s).
pub async fn reconcile(
    client: Client,
    node: String,
    mut desired: watch::Receiver<Desired>,
    cache: Arc<Cache>,
    heartbeat: Duration,
    manage_taint: bool,
    metrics: Arc<Metrics>,
) {
    let bound = Duration::from_secs(10);
    let mut written: Option<(Condition, jiff::Timestamp)> = None;
    let mut transition: Option<(String, jiff::Timestamp)> = None;
    let mut tainted: Option<bool> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let want = desired.borrow_and_update().clone();
        let now = jiff::Timestamp::now();
        let mut failed = false;
        if let Some(c) = &want.condition {
            let condition = Condition {
                kind: CONDITION.into(),
                status: c.status.as_str().into(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            };
            let beat_due = written.as_ref().is_none_or(|(w, at)| {
                *w != condition
                    || now.duration_since(*at)
                        >= jiff::SignedDuration::try_from(heartbeat).unwrap_or_default()
            });
            if beat_due {
                // The transition time the API shows, unless we wrote since.
                let previous = match &transition {
                    Some((status, at)) => Some(NodeCondition {
                        type_: CONDITION.into(),
                        status: status.clone(),
                        last_transition_time: Some(Time(*at)),
                        ..NodeCondition::default()
                    }),
                    None => cache.condition(),
                };
                match condition::set(&client, &node, &condition, previous.as_ref(), now, bound)
                    .await
                {
                    Ok(()) => {
                        let changed = previous
                            .as_ref()
                            .is_none_or(|p| p.status != condition.status);
                        if changed || transition.is_none() {
                            let at = previous
                                .filter(|p| p.status == condition.status)
                                .and_then(|p| p.last_transition_time.map(|t| t.0))
                                .unwrap_or(now);
                            transition = Some((condition.status.clone(), at));
                        }
                        if written.as_ref().is_none_or(|(w, _)| {
                            w.status != condition.status || w.reason != condition.reason
                        }) {
                            tracing::info!(
                                status = condition.status,
                                reason = condition.reason,
                                "{CONDITION}: {}",
                                condition.message
                            );
                        }
                        metrics.condition(c.status == Truth::True);
                        written = Some((condition, now));
                    }
                    Err(e) => {
                        failed = true;
                        metrics.api_error("condition");
                        tracing::warn!(
                            "failed to write the {CONDITION} condition (retrying): {}",
                            rebootguard_errors::chain(&e)
                        );
                    }
                }
            }
        }
        if manage_taint && tainted != Some(want.taint) {
            match rebootguard_cluster::taint::set(&client, &node, &taint(), want.taint, bound).await
            {
                Ok(changed) => {
                    if changed {
                        tracing::info!(
                            "{} taint {TAINT}:NoSchedule",
                            if want.taint { "put on" } else { "took off" }
                        );
                    }
                    tainted = Some(want.taint);
                }
                Err(e) => {
                    failed = true;
                    metrics.api_error("taint");
                    tracing::warn!(
                        "failed to {} the taint (retrying): {}",
                        if want.taint { "put on" } else { "take off" },
                        rebootguard_errors::chain(&e)
                    );
                }
            }
        }
        let retry_at = if failed {
            let at = tokio::time::Instant::now() + backoff;
            backoff = (backoff * 2).min(Duration::from_secs(16));
            Some(at)
        } else {
            backoff = Duration::from_secs(1);
            None
        };
        let next_beat = tokio::time::Instant::now() + heartbeat;
        let wake = retry_at.map_or(next_beat, |r| r.min(next_beat));
        tokio::select! {
            changed = desired.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_changed_view_counts_as_a_change() {
        let mut fold = Fold::<String, u32>::new();
        let mut live = None;
        assert!(!fold.apply(&mut live, Event::Init));
        assert!(!fold.apply(&mut live, Event::InitApply(("a".into(), Some(1)))));
        assert!(fold.apply(&mut live, Event::InitDone), "the first list");
        // A heartbeat: the slim view is the same.
        assert!(!fold.apply(&mut live, Event::Apply(("a".into(), Some(1)))));
        assert!(fold.apply(&mut live, Event::Apply(("a".into(), Some(2)))));
        assert!(fold.apply(&mut live, Event::Apply(("b".into(), Some(3)))));
        // Not ours any more: gone from the map.
        assert!(fold.apply(&mut live, Event::Apply(("b".into(), None))));
        assert!(!fold.apply(&mut live, Event::Apply(("b".into(), None))));
        assert!(fold.apply(&mut live, Event::Delete(("a".into(), None))));
        // A relist that finds what was there is no change.
        assert!(!fold.apply(&mut live, Event::Init));
        assert!(!fold.apply(&mut live, Event::InitDone));
        assert_eq!(live, Some(BTreeMap::new()));
    }
}
