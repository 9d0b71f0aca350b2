//! `rebootguard verify` inside a rollout: the [`Verifier`] hook, and
//! [`Probes`], the verifier that runs verify's probe pods
//! (`rebootguard_verify::run`, the same code as the command).
//!
//! The rollout asks it twice per node: at the node's gates, whether every
//! other node passes (one run, only once the cheaper gates are open); and
//! after the reboot, whether the node itself passes (the network phase
//! waits for it). Each run puts one probe pod on every node, so the
//! rebooted node proves it reaches the others and they it; a run lasts a
//! few seconds when the probes settle, at most the verify timeout.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use kube::Client;
use rebootguard_errors::Failure;
use rebootguard_verify::judge::{Status, Verdict};
use rebootguard_verify::run::{self, Options};

/// A verify answer for one node: `Ok`, or why not: the failing check and
/// its evidence (worth asking again: the node may still be settling), or
/// why verify could not run.
pub type Answer = Result<(), Failure>;

/// The nodes that do not pass, each with why; `Err` when verify could not run.
pub type Failing = Result<BTreeMap<String, String>, Failure>;

/// Checks that pods on a node really work (a probe pod: an IP in the
/// node's podCIDR, DNS, the other nodes reachable).
pub trait Verifier: Send + Sync {
    /// `Ok` when `node` passes; `Err` names the failing check and its
    /// evidence. Called repeatedly while the rollout waits for the node's
    /// network, so it must be bounded in time and clean up after itself.
    fn verify<'a>(&'a self, node: &'a str) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

    /// Every node that does not pass, with why (empty: all pass); `Err`
    /// when verify could not run at all.
    fn failing(&self) -> Pin<Box<dyn Future<Output = Failing> + Send + '_>>;
}

/// The verifier of `rebootguard reboot --verify`: a verify run over every
/// node per question.
pub struct Probes {
    client: Client,
    options: Options,
}

impl Probes {
    /// Probes in `options.namespace` with `options.image`, each run bounded
    /// by `options.timeout` (the node selection in `options` is ignored:
    /// every node takes part).
    pub fn new(client: Client, mut options: Options) -> Probes {
        options.nodes.clear();
        options.selector = None;
        Probes { client, options }
    }

    /// One run over every node: its verdict, or why verify could not run
    /// ([`run::Error::is_retryable`] says whether a later run may).
    pub async fn verdict(&self) -> Result<Verdict, run::Error> {
        let targets = run::targets(&self.client, &self.options).await?;
        let now = jiff::Timestamp::now();
        // A killed rollout's probes are deleted here, as by `verify`.
        run::sweep(&self.client, &self.options.namespace, now).await;
        let plan = run::new_run(&self.options, targets, now);
        let outcome = run::execute(
            &self.client,
            &plan,
            self.options.timeout,
            std::future::pending(),
        )
        .await?;
        for e in &outcome.cleanup_errors {
            tracing::warn!("verify left {e} behind; the next run removes it");
        }
        Ok(outcome.verdict)
    }
}

/// The nodes of `verdict` that do not pass, each with its first problem.
pub fn failing(verdict: &Verdict) -> BTreeMap<String, String> {
    verdict
        .nodes
        .iter()
        .filter(|row| row.status() != Status::Pass)
        .map(|row| {
            let why = row.first_problem().map_or_else(
                || "no result".to_owned(),
                |c| format!("{} {}: {}", c.check.name(), status_word(c.status), c.detail),
            );
            (row.node.clone(), why)
        })
        .collect()
}

/// `node`'s answer in `verdict`.
pub fn answer(verdict: &Verdict, node: &str) -> Answer {
    if !verdict.nodes.iter().any(|r| r.node == node) {
        return Err(Failure::said(format!("verify did not run on {node}"), true));
    }
    match failing(verdict).remove(node) {
        Some(why) => Err(Failure::said(why, true)),
        None => Ok(()),
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Fail => "failed",
        Status::Unknown => "unknown",
        Status::Pass | Status::Skip => "passed",
    }
}

impl Verifier for Probes {
    fn verify<'a>(&'a self, node: &'a str) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>> {
        Box::pin(async move {
            answer(
                &self
                    .verdict()
                    .await
                    .map_err(|e| Failure::judged(e, run::Error::is_retryable))?,
                node,
            )
        })
    }

    fn failing(&self) -> Pin<Box<dyn Future<Output = Failing> + Send + '_>> {
        Box::pin(async move {
            Ok(failing(&self.verdict().await.map_err(|e| {
                Failure::judged(e, run::Error::is_retryable)
            })?))
        })
    }
}

#[cfg(test)]
mod tests {
    use rebootguard_verify::judge::{Cell, Check, End, Row};

    use super::*;

    fn row(node: &str, statuses: [Status; 4]) -> Row {
        Row {
            node: node.into(),
            checks: Check::ALL
                .iter()
                .zip(statuses)
                .map(|(check, status)| Cell {
                    check: *check,
                    status,
                    detail: format!("{} said so", check.name()),
                    evidence: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_node_passes_only_on_its_own_passing_row() {
        use Status::{Fail, Pass, Skip, Unknown};
        let verdict = Verdict {
            nodes: vec![
                row("boromir", [Pass, Pass, Pass, Pass]),
                row("theoden", [Fail, Skip, Skip, Skip]),
                row("samwise", [Pass, Pass, Unknown, Unknown]),
            ],
            end: End::Settled,
        };
        let why = |text: &str| Err(Failure::said(text, true));
        assert_eq!(answer(&verdict, "boromir"), Ok(()));
        assert_eq!(
            answer(&verdict, "theoden"),
            why("sandbox failed: sandbox said so")
        );
        assert_eq!(
            answer(&verdict, "samwise"),
            why("dns unknown: dns said so"),
            "unknown is no pass"
        );
        assert_eq!(
            answer(&verdict, "gandalf"),
            why("verify did not run on gandalf")
        );
        let bad = failing(&verdict);
        assert_eq!(
            bad.keys().collect::<Vec<_>>(),
            ["samwise", "theoden"],
            "{bad:?}"
        );
    }
}
