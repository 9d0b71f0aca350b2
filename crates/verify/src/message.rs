//! The probe's result, as it travels from the pod to verify: JSON in the
//! container's termination message, read back from
//! `status.containerStatuses[].state.terminated.message`.
//!
//! The kubelet keeps at most 4096 bytes of it, so [`Message::to_json`]
//! shrinks a large result (many peers) by dropping the list of reached
//! peers first (their count stays), then unreachable peers beyond what fits
//! (counted in `omitted`): a message always parses.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The schema version of [`Message`].
pub const VERSION: u32 = 1;

/// One check's outcome as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether it passed.
    pub ok: bool,
    /// What was seen (the address and CIDR, the names and answers, the
    /// error text).
    pub detail: String,
}

impl Outcome {
    /// A pass.
    pub fn pass(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            detail: detail.into(),
        }
    }

    /// A failure.
    pub fn fail(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// A peer the probe found but could not connect to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerError {
    /// The peer probe's address.
    pub ip: IpAddr,
    /// The last connect error.
    pub error: String,
}

/// Reaching the other nodes' probes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Peers {
    /// Peers verify said to expect (the other selected nodes).
    pub expected: usize,
    /// Peer addresses found through the Service's DNS name.
    pub found: usize,
    /// Peers connected to (count; the list may have been dropped to fit).
    pub reached_count: usize,
    /// Peers connected to, when it fits the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<Vec<IpAddr>>,
    /// Peers found but not reachable, with the error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<PeerError>,
    /// Unreachable peers left out to fit the message.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: usize,
    /// Distinct peers that connected to this probe.
    pub heard: usize,
    /// Why peers could not be looked up, when the last lookup failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Schema version ([`VERSION`]).
    pub v: u32,
    /// The node the probe ran on (as verify told it).
    pub node: String,
    /// The pod's own addresses (not loopback).
    pub ips: Vec<IpAddr>,
    /// The address lies in the node's podCIDR.
    pub pod_ip: Outcome,
    /// Cluster DNS answered every name.
    pub dns: Outcome,
    /// The other probes.
    pub peers: Peers,
    /// Milliseconds the probe ran.
    pub millis: u64,
}

impl Message {
    /// Whether every check passed from the probe's own point of view.
    pub fn ok(&self) -> bool {
        self.pod_ip.ok
            && self.dns.ok
            && self.peers.unreachable.is_empty()
            && self.peers.omitted == 0
            && self.peers.reached_count >= self.peers.expected
    }

    /// JSON of at most `limit` bytes (see the module doc for what goes
    /// first); `None` only if even the smallest form does not fit.
    pub fn to_json(&self, limit: usize) -> Option<String> {
        let mut m = self.clone();
        for detail in [&mut m.pod_ip.detail, &mut m.dns.detail] {
            truncate(detail, 1024);
        }
        if let Some(e) = &mut m.peers.lookup_error {
            truncate(e, 512);
        }
        let fits = |m: &Message| serde_json::to_string(m).ok().filter(|s| s.len() <= limit);
        if let Some(s) = fits(&m) {
            return Some(s);
        }
        m.peers.reached = None;
        loop {
            if let Some(s) = fits(&m) {
                return Some(s);
            }
            if m.peers.unreachable.pop().is_none() {
                break;
            }
            m.peers.omitted += 1;
        }
        m.ips.truncate(1);
        truncate(&mut m.pod_ip.detail, 200);
        truncate(&mut m.dns.detail, 200);
        m.peers.lookup_error = None;
        fits(&m)
    }

    /// Parses a termination message.
    pub fn parse(text: &str) -> Option<Message> {
        serde_json::from_str(text.trim()).ok()
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
fn truncate(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str("...");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(peers: usize, unreachable: usize) -> Message {
        let ip = |i: usize| {
            IpAddr::from([
                10,
                42,
                u8::try_from(i / 250).unwrap(),
                1 + u8::try_from(i % 250).unwrap(),
            ])
        };
        Message {
            v: VERSION,
            node: "boromir".into(),
            ips: vec![IpAddr::from([10, 42, 0, 5])],
            pod_ip: Outcome::pass("10.42.0.5 is in 10.42.0.0/24"),
            dns: Outcome::pass("kubernetes.default -> 10.43.0.1"),
            peers: Peers {
                expected: peers + unreachable,
                found: peers + unreachable,
                reached_count: peers,
                reached: Some((0..peers).map(ip).collect()),
                unreachable: (0..unreachable)
                    .map(|i| PeerError {
                        ip: ip(1000 + i),
                        error: "connection timed out".into(),
                    })
                    .collect(),
                omitted: 0,
                heard: peers,
                lookup_error: None,
            },
            millis: 1500,
        }
    }

    #[test]
    fn small_messages_round_trip_whole() {
        let m = message(2, 1);
        let text = m.to_json(4096).unwrap();
        assert_eq!(Message::parse(&text), Some(m.clone()));
        assert!(!m.ok());
        assert!(message(2, 0).ok());
    }

    #[test]
    fn large_messages_drop_the_reached_list_then_unreachable_peers() {
        let m = message(400, 10);
        let text = m.to_json(4096).unwrap();
        assert!(text.len() <= 4096);
        let back = Message::parse(&text).unwrap();
        assert_eq!(back.peers.reached, None);
        assert_eq!(back.peers.reached_count, 400);
        assert_eq!(back.peers.unreachable.len(), 10);
        let m = message(10, 400);
        let back = Message::parse(&m.to_json(4096).unwrap()).unwrap();
        assert!(back.peers.omitted > 0);
        assert_eq!(back.peers.unreachable.len() + back.peers.omitted, 400);
        assert!(!back.ok(), "omitted failures still fail");
    }

    #[test]
    fn long_details_are_cut_on_a_character_boundary() {
        let mut m = message(1, 0);
        m.dns.detail = "é".repeat(5000);
        let back = Message::parse(&m.to_json(4096).unwrap()).unwrap();
        assert!(back.dns.detail.ends_with("..."));
        assert!(back.dns.detail.len() <= 1024);
        assert_eq!(m.to_json(10), None);
    }

    #[test]
    fn garbage_is_no_message() {
        assert_eq!(Message::parse("Error: exec format error"), None);
    }
}
