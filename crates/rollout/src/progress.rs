//! What a rollout leaves on the cluster so that a rerun continues it: a
//! [`Progress`] on each Node it touched (annotation [`ANNOTATION`]) and the
//! plan on its Lease ([`Plan`], the same annotation key on the Lease).
//!
//! Resuming is conservative: a node stopped before its reboot was asked
//! goes back to the gates (nothing irreversible happened, and the cluster
//! may have changed meanwhile); one stopped after goes on waiting for what
//! it was waiting for, without asking for a second reboot.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::phase::Phase;

/// The annotation key, on Nodes ([`Progress`]) and on the Lease ([`Plan`]).
pub const ANNOTATION: &str = "rebootguard.io/rollout";

/// One node's place in a rollout, as its annotation holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The rollout's id.
    pub rollout: String,
    /// The phase the node entered last.
    pub phase: Phase,
    /// The boot ID before the reboot (once the reboot was asked).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "bootID")]
    pub boot_id: Option<String>,
    /// The reboot request's id (the agent's handshake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The node reported `PodNetworkReady` before its reboot (an agent runs there).
    #[serde(default)]
    pub agent: bool,
}

impl Progress {
    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The progress an annotation holds, or why it holds none.
    pub fn parse(value: &str) -> Result<Progress, ParseError> {
        serde_json::from_str(value).map_err(ParseError::Progress)
    }
}

/// The rollout as its Lease remembers it, so a rerun takes the same nodes
/// in the same order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The rollout's id.
    pub id: String,
    /// The nodes, in order.
    pub nodes: Vec<String>,
}

impl Plan {
    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The plan an annotation holds, or why it holds none.
    pub fn parse(value: &str) -> Result<Plan, ParseError> {
        serde_json::from_str(value).map_err(ParseError::Plan)
    }
}

/// Why an annotation holds no progress or plan. Never retryable: the same
/// value fails the same way until someone rewrites it.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// A Node's annotation is not a [`Progress`].
    #[error("{ANNOTATION} is not a rollout progress")]
    Progress(#[source] serde_json::Error),
    /// The Lease's annotation is not a [`Plan`].
    #[error("{ANNOTATION} is not a rollout plan")]
    Plan(#[source] serde_json::Error),
}

/// Where a rerun picks a node up, from its progress.
pub fn resume_at(phase: Phase) -> Phase {
    match phase {
        // Nothing irreversible yet: ask the gates again.
        Phase::Gates | Phase::Lease | Phase::Cordon | Phase::Drain => Phase::Gates,
        // Asked: never ask twice, wait for the boot.
        Phase::Reboot | Phase::Down => Phase::Down,
        other => other,
    }
}

/// What to do about a rollout Lease someone else holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// The holder renews it: a rollout is running; refuse.
    Alive,
    /// The holder missed its renewals (its CLI died): wait until the Lease
    /// expires, then take it.
    Vanished {
        /// When the Lease expires.
        until: Timestamp,
    },
}

/// Judges a Lease held by someone else: renewed within `renew_every` plus
/// a margin means alive. Holders renew at a third of the TTL, so a holder
/// that missed one renewal is presumed gone, and taking over still waits
/// for the expiry (a slow holder keeps its lock until then).
pub fn holder(renewed: Option<Timestamp>, ttl: SignedDuration, now: Timestamp) -> Holder {
    let Some(renewed) = renewed else {
        return Holder::Vanished { until: now };
    };
    let renew_every = ttl / 3;
    let margin = renew_every / 2;
    let until = renewed.checked_add(ttl).unwrap_or(now);
    if now.duration_since(renewed) <= renew_every + margin && until > now {
        Holder::Alive
    } else {
        Holder::Vanished { until }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    #[test]
    fn progress_and_plan_round_trip() {
        let p = Progress {
            rollout: "r1".into(),
            phase: Phase::Down,
            boot_id: Some("b0".into()),
            request: Some("r1/boromir/1".into()),
            agent: true,
        };
        let text = p.to_annotation();
        assert!(
            text.contains(r#""phase":"down""#) && text.contains(r#""bootID":"b0""#),
            "{text}"
        );
        assert_eq!(Progress::parse(&text).expect("progress"), p);
        let bad = Progress::parse("nope").expect_err("bad");
        assert!(matches!(bad, ParseError::Progress(_)), "{bad:?}");
        assert!(bad.to_string().contains(ANNOTATION), "{bad}");
        let plan = Plan {
            id: "r1".into(),
            nodes: vec!["a".into(), "b".into()],
        };
        assert_eq!(Plan::parse(&plan.to_annotation()).expect("plan"), plan);
        assert!(matches!(Plan::parse("{}"), Err(ParseError::Plan(_))));
    }

    #[test]
    fn before_the_reboot_back_to_the_gates_after_it_wait_on() {
        assert_eq!(resume_at(Phase::Drain), Phase::Gates);
        assert_eq!(resume_at(Phase::Cordon), Phase::Gates);
        assert_eq!(resume_at(Phase::Reboot), Phase::Down);
        assert_eq!(resume_at(Phase::Down), Phase::Down);
        assert_eq!(resume_at(Phase::Network), Phase::Network);
        assert_eq!(resume_at(Phase::Storage), Phase::Storage);
        assert_eq!(resume_at(Phase::Uncordon), Phase::Uncordon);
    }

    #[test]
    fn a_renewing_holder_is_alive_a_silent_one_is_waited_out() {
        let ttl = SignedDuration::from_secs(30);
        let renewed = at("2026-02-01T10:00:00Z");
        assert_eq!(
            holder(Some(renewed), ttl, at("2026-02-01T10:00:14Z")),
            Holder::Alive
        );
        assert_eq!(
            holder(Some(renewed), ttl, at("2026-02-01T10:00:16Z")),
            Holder::Vanished {
                until: at("2026-02-01T10:00:30Z")
            }
        );
        assert!(matches!(
            holder(None, ttl, renewed),
            Holder::Vanished { until } if until == renewed
        ));
    }
}
