//! Reboots asked of this node through its Node object (the handshake in
//! [`rebootguard_cluster::reboot`]) and the reboot-required sentinel,
//! decided without I/O: [`decide`] says whether to reboot, refuse or do
//! nothing; [`required_change`] says how the `reboot-required` annotation
//! must change. The run loop carries the answers out.
//!
//! A reboot needs a request that is well formed, unexpired, not yet
//! accepted, and a cordoned node: an uncordoned node has not been drained,
//! and rebooting it would kill its pods without notice.

use jiff::Timestamp;
use rebootguard_cluster::reboot::{Handshake, REQUEST, Request};

/// What to do about the node's reboot request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No request, one already answered, or one already refused.
    Nothing,
    /// Refuse the request: say `why` once (a warning Event), do not reboot.
    Refuse {
        /// The request's id (or its raw value when it does not parse).
        id: String,
        /// For the operator: what is wrong and what to do.
        why: String,
    },
    /// Record the request as accepted, then reboot.
    Reboot {
        /// The request's id.
        id: String,
    },
}

/// What the agent remembers between decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// The last refusal said (request value and reason), so it is said once.
    pub refused: Option<String>,
    /// A reboot was started and has not failed.
    pub in_flight: bool,
}

/// The agent's reboot settings that a decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// `reboot-on-request`.
    pub enabled: bool,
    /// `--dry-run`: say what would be done, do nothing.
    pub dry_run: bool,
}

/// Whether to reboot for `handshake`'s request, at `now`. A refusal is
/// returned once per request and reason (see [`Memory::refused`]).
pub fn decide(handshake: &Handshake, mode: Mode, now: Timestamp, memory: &Memory) -> Decision {
    let Some(raw) = handshake.request.as_deref() else {
        return Decision::Nothing;
    };
    if memory.in_flight {
        return Decision::Nothing;
    }
    let refuse = |id: &str, why: String| {
        if memory.refused.as_deref() == Some(refusal_key(raw, &why).as_str()) {
            Decision::Nothing
        } else {
            Decision::Refuse {
                id: id.to_owned(),
                why,
            }
        }
    };
    let request = match Request::parse(raw) {
        Ok(r) => r,
        Err(e) => return refuse(raw, rebootguard_errors::chain(&e)),
    };
    if handshake.accepted.as_deref() == Some(request.id.as_str()) {
        return Decision::Nothing;
    }
    if now > request.expires {
        return refuse(
            &request.id,
            format!(
                "reboot request {} expired at {}; ask again (rebootguard reboot renews it)",
                request.id, request.expires
            ),
        );
    }
    if !mode.enabled {
        return refuse(
            &request.id,
            format!(
                "reboot request {}: reboot-on-request is off in this agent's [agent] config; reboot the node another way or turn it on",
                request.id
            ),
        );
    }
    if !handshake.cordoned {
        return refuse(
            &request.id,
            format!(
                "reboot request {}: the node is not cordoned, so its pods were not drained; cordon and drain it first (rebootguard reboot does both), or remove the {REQUEST} annotation",
                request.id
            ),
        );
    }
    if mode.dry_run {
        return refuse(
            &request.id,
            format!(
                "reboot request {}: dry run, so not rebooting (the node is cordoned and would reboot now)",
                request.id
            ),
        );
    }
    Decision::Reboot { id: request.id }
}

/// The key [`Memory::refused`] keeps for a refusal of `raw` because `why`.
pub fn refusal_key(raw: &str, why: &str) -> String {
    format!("{raw}\n{why}")
}

/// How the `reboot-required` annotation must change: `Some(Some(since))`
/// to set it, `Some(None)` to remove it, `None` to leave it. `present` is
/// `None` when no sentinel is configured: then the annotation is somebody
/// else's business.
pub fn required_change(
    present: Option<bool>,
    shown: Option<&str>,
    now: Timestamp,
) -> Option<Option<String>> {
    match (present?, shown) {
        (true, None) => Some(Some(now.to_string())),
        (false, Some(_)) => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn request(id: &str, expires: &str) -> String {
        Request {
            id: id.into(),
            expires: at(expires),
        }
        .to_annotation()
    }

    fn asked(cordoned: bool) -> Handshake {
        Handshake {
            request: Some(request("r1", "2026-12-02T14:00:00Z")),
            cordoned,
            ..Handshake::default()
        }
    }

    const NOW: &str = "2026-12-02T13:00:00Z";
    const ON: Mode = Mode {
        enabled: true,
        dry_run: false,
    };
    const OFF: Mode = Mode {
        enabled: false,
        dry_run: false,
    };

    fn why(d: Decision) -> String {
        match d {
            Decision::Refuse { why, .. } => why,
            other => panic!("not a refusal: {other:?}"),
        }
    }

    #[test]
    fn a_valid_request_on_a_cordoned_node_reboots() {
        let d = decide(&asked(true), ON, at(NOW), &Memory::default());
        assert_eq!(d, Decision::Reboot { id: "r1".into() });
    }

    #[test]
    fn no_request_an_accepted_one_or_one_in_flight_does_nothing() {
        let none = Handshake {
            cordoned: true,
            ..Handshake::default()
        };
        assert_eq!(
            decide(&none, ON, at(NOW), &Memory::default()),
            Decision::Nothing
        );
        let mut done = asked(true);
        done.accepted = Some("r1".into());
        assert_eq!(
            decide(&done, ON, at(NOW), &Memory::default()),
            Decision::Nothing,
            "the agent after the reboot must not reboot again"
        );
        let busy = Memory {
            in_flight: true,
            ..Memory::default()
        };
        assert_eq!(decide(&asked(true), ON, at(NOW), &busy), Decision::Nothing);
        // An older id accepted: this one is new.
        let mut older = asked(true);
        older.accepted = Some("r0".into());
        assert_eq!(
            decide(&older, ON, at(NOW), &Memory::default()),
            Decision::Reboot { id: "r1".into() }
        );
    }

    #[test]
    fn refusals_name_the_problem_and_the_fix() {
        let uncordoned = why(decide(&asked(false), ON, at(NOW), &Memory::default()));
        assert!(uncordoned.contains("not cordoned") && uncordoned.contains("drain"));
        let off = why(decide(&asked(true), OFF, at(NOW), &Memory::default()));
        assert!(off.contains("reboot-on-request is off"));
        let dry = Mode {
            enabled: true,
            dry_run: true,
        };
        let dry = why(decide(&asked(true), dry, at(NOW), &Memory::default()));
        assert!(dry.contains("dry run"));
        let late = why(decide(
            &asked(true),
            ON,
            at("2026-12-02T14:00:01Z"),
            &Memory::default(),
        ));
        assert!(late.contains("expired"));
        let garbled = Handshake {
            request: Some("now".into()),
            cordoned: true,
            ..Handshake::default()
        };
        match decide(&garbled, ON, at(NOW), &Memory::default()) {
            Decision::Refuse { id, why } => {
                assert_eq!(id, "now");
                // The JSON parser's cause is kept.
                assert!(why.contains(REQUEST) && why.contains("line 1"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refusal_is_said_once_per_request_and_reason() {
        let h = asked(false);
        let first = why(decide(&h, ON, at(NOW), &Memory::default()));
        let memory = Memory {
            refused: Some(refusal_key(h.request.as_deref().expect("raw"), &first)),
            in_flight: false,
        };
        assert_eq!(decide(&h, ON, at(NOW), &memory), Decision::Nothing);
        // Cordoned since: the same request now reboots.
        assert_eq!(
            decide(&asked(true), ON, at(NOW), &memory),
            Decision::Reboot { id: "r1".into() }
        );
        // A different reason is said again.
        assert!(matches!(
            decide(&h, OFF, at(NOW), &memory),
            Decision::Refuse { .. }
        ));
    }

    #[test]
    fn the_required_annotation_follows_the_sentinel_only_when_configured() {
        let now = at(NOW);
        assert_eq!(
            required_change(Some(true), None, now),
            Some(Some(NOW.into()))
        );
        assert_eq!(required_change(Some(true), Some(NOW), now), None);
        assert_eq!(required_change(Some(false), Some(NOW), now), Some(None));
        assert_eq!(required_change(Some(false), None, now), None);
        assert_eq!(required_change(None, Some(NOW), now), None);
    }
}
