//! The lab's long-lived tasks, watched: the cluster's controllers and
//! request server, and each node's emulated k3s (registration, heartbeats,
//! kubelet, flannel's peer watch, the API proxy). One that panics, or ends
//! while it should run, is a failure of the lab itself: it goes on the
//! timeline and into [`Failures`], which the lab's tests check, instead of
//! vanishing with its task. An aborted task (k3s stopped, a node powered
//! off, the lab dropped) is not a failure.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::task::JoinHandle;

/// Whether a task may end on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// It runs until aborted: ending is a failure.
    Forever,
    /// It may finish its work and end: only a panic is a failure.
    MayEnd,
}

/// The failures recorded so far, in order.
#[derive(Debug, Default)]
pub struct Failures(Mutex<Vec<String>>);

impl Failures {
    /// Every failure so far.
    pub fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn push(&self, failure: String) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(failure);
    }
}

/// Spawns `task` named `name`; `failed` hears, once, why it failed.
pub fn watch<F>(
    name: String,
    lifetime: Lifetime,
    task: F,
    failed: impl FnOnce(String) + Send + 'static,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        match AssertUnwindSafe(task).catch_unwind().await {
            Ok(()) if lifetime == Lifetime::MayEnd => {}
            Ok(()) => failed(format!("{name} ended while it should run")),
            Err(panic) => failed(format!("{name} panicked: {}", message(&*panic))),
        }
    })
}

/// [`watch`] for a task of `ctx`'s lab (of `node`, if any): a failure is
/// logged, put on the timeline and kept in the lab's [`Failures`], unless
/// the lab is being torn down.
pub fn spawn<F>(
    ctx: &Arc<crate::lab::Ctx>,
    node: Option<&str>,
    name: &str,
    lifetime: Lifetime,
    task: F,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let name = match node {
        Some(node) => format!("{node}'s {name}"),
        None => name.to_owned(),
    };
    let (c, node) = (ctx.clone(), node.map(str::to_owned));
    watch(name, lifetime, task, move |failure| {
        if c.closed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        tracing::error!("lab task failed: {failure}");
        c.timeline
            .note(&c, node.as_deref(), "LabTaskFailed", &failure);
        c.task_failures.push(failure);
    })
}

/// A panic's message, when it has one.
fn message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn outcome(
        lifetime: Lifetime,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Vec<String> {
        let failures = Arc::new(Failures::default());
        let f = failures.clone();
        let handle = watch("kubelet".into(), lifetime, task, move |why| f.push(why));
        let _ = handle.await;
        failures.all()
    }

    #[tokio::test]
    async fn a_panic_or_an_unexpected_end_is_recorded_an_expected_end_is_not() {
        assert_eq!(
            outcome(Lifetime::MayEnd, async { panic!("no pod CIDR") }).await,
            ["kubelet panicked: no pod CIDR"]
        );
        let name = String::from("n1");
        assert_eq!(
            outcome(Lifetime::Forever, async move { panic!("bad node {name}") }).await,
            ["kubelet panicked: bad node n1"]
        );
        assert_eq!(
            outcome(Lifetime::Forever, async {}).await,
            ["kubelet ended while it should run"]
        );
        assert!(outcome(Lifetime::MayEnd, async {}).await.is_empty());
    }

    #[tokio::test]
    async fn an_aborted_task_is_no_failure() {
        let failures = Arc::new(Failures::default());
        let f = failures.clone();
        let handle = watch(
            "heartbeats".into(),
            Lifetime::Forever,
            std::future::pending(),
            move |why| f.push(why),
        );
        handle.abort();
        assert!(handle.await.is_err_and(|e| e.is_cancelled()));
        assert!(failures.all().is_empty());
    }
}
