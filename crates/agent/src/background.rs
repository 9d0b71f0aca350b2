//! The agent's long-lived tasks, watched: a watch or watcher that panics
//! or ends is an error of the whole agent, never a silent loss. The agent
//! then exits non-zero with the task's name and why, and its service
//! manager starts it afresh, instead of running on with a cache nobody
//! updates any more.

use std::any::Any;

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle, JoinSet};

/// A background task that stopped when it should not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{task} stopped: {why}")]
pub struct Stopped {
    /// Which task.
    pub task: &'static str,
    /// Why: its panic message, or that it ended.
    pub why: String,
}

/// The tasks being watched.
pub struct Background {
    set: JoinSet<Option<Stopped>>,
    joining: mpsc::UnboundedReceiver<(&'static str, JoinHandle<()>)>,
    registrar: Registrar,
}

/// Hands tasks started elsewhere (the API's watches, once a client exists)
/// to the [`Background`] it came from.
#[derive(Clone)]
pub struct Registrar(mpsc::UnboundedSender<(&'static str, JoinHandle<()>)>);

impl Registrar {
    /// [`Background::forever`], from anywhere.
    pub fn forever(&self, task: &'static str, handle: JoinHandle<()>) {
        let _ = self.0.send((task, handle));
    }
}

impl Default for Background {
    fn default() -> Self {
        let (tx, joining) = mpsc::unbounded_channel();
        Background {
            set: JoinSet::new(),
            joining,
            registrar: Registrar(tx),
        }
    }
}

impl Background {
    /// A handle for registering tasks from other tasks.
    pub fn registrar(&self) -> Registrar {
        self.registrar.clone()
    }

    /// Watches a task meant to run as long as the agent: its end, by
    /// panic or by return, is reported.
    pub fn forever(&mut self, task: &'static str, handle: JoinHandle<()>) {
        self.set.spawn(async move {
            let why = match handle.await {
                Ok(()) => "it ended".to_owned(),
                Err(e) => failure(e),
            };
            Some(Stopped { task, why })
        });
    }

    /// Watches a task that may finish: only a panic is reported.
    pub fn until_done(&mut self, task: &'static str, handle: JoinHandle<()>) {
        self.set.spawn(async move {
            let why = failure(handle.await.err()?);
            Some(Stopped { task, why })
        });
    }

    /// The next task that stopped badly; pending for ever while none does.
    pub async fn stopped(&mut self) -> Stopped {
        loop {
            tokio::select! {
                Some((task, handle)) = self.joining.recv() => self.forever(task, handle),
                // `None` when empty: wait for a registration instead.
                Some(joined) = self.set.join_next() => {
                    // The watching wrapper cannot panic; cancelled means shutdown.
                    if let Ok(Some(stopped)) = joined {
                        return stopped;
                    }
                }
            }
        }
    }
}

fn failure(error: JoinError) -> String {
    if error.is_panic() {
        format!("it panicked: {}", panic_text(error.into_panic()))
    } else {
        "it was cancelled".to_owned()
    }
}

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload
            .downcast::<&'static str>()
            .map(|text| (*text).to_owned())
            .unwrap_or_else(|_| "(no message)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_panic_is_reported_with_its_message() {
        let mut background = Background::default();
        background.forever("the Node watch", tokio::spawn(std::future::pending()));
        background.forever(
            "the pod watch",
            tokio::spawn(async { panic!("index out of bounds: the len is 0") }),
        );
        let stopped = tokio::time::timeout(Duration::from_secs(5), background.stopped())
            .await
            .expect("reported at once");
        assert_eq!(stopped.task, "the pod watch");
        assert_eq!(
            stopped.why,
            "it panicked: index out of bounds: the len is 0"
        );
    }

    #[tokio::test]
    async fn a_forever_task_that_returns_is_reported() {
        let mut background = Background::default();
        background.forever("netlink notifications", tokio::spawn(async {}));
        let stopped = tokio::time::timeout(Duration::from_secs(5), background.stopped())
            .await
            .expect("reported at once");
        assert_eq!(
            stopped,
            Stopped {
                task: "netlink notifications",
                why: "it ended".into()
            }
        );
    }

    #[tokio::test]
    async fn tasks_registered_from_elsewhere_are_watched_too() {
        let mut background = Background::default();
        let registrar = background.registrar();
        tokio::spawn(async move {
            registrar.forever("the event watch", tokio::spawn(async { panic!("boom") }));
        });
        let stopped = tokio::time::timeout(Duration::from_secs(5), background.stopped())
            .await
            .expect("reported");
        assert_eq!(stopped.task, "the event watch");
        assert_eq!(stopped.why, "it panicked: boom");
    }

    #[tokio::test]
    async fn a_task_that_may_finish_is_quiet_unless_it_panics() {
        let mut background = Background::default();
        background.until_done("connecting to the API", tokio::spawn(async {}));
        let quiet = tokio::time::timeout(Duration::from_millis(200), background.stopped()).await;
        assert!(quiet.is_err(), "a normal finish is no failure: {quiet:?}");
        background.until_done(
            "connecting to the API",
            tokio::spawn(async { panic!("{}", String::from("bad kubeconfig")) }),
        );
        let stopped = tokio::time::timeout(Duration::from_secs(5), background.stopped())
            .await
            .expect("reported");
        assert_eq!(stopped.why, "it panicked: bad kubeconfig");
    }
}
