//! The phases of one node's reboot, in order; shared by the state machine
//! ([`crate::machine`]) and the progress a rerun resumes from
//! ([`crate::progress`]).

use serde::{Deserialize, Serialize};

/// A phase of one node's reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Asking the gates.
    Gates,
    /// Taking (renewing) the rollout Lease.
    Lease,
    /// Cordoning.
    Cordon,
    /// Evicting its pods.
    Drain,
    /// Asking for the reboot (passes at once to [`Phase::Down`]).
    Reboot,
    /// Waiting for a new boot ID.
    Down,
    /// Waiting for `Ready=True`.
    Ready,
    /// Waiting for the pod network (PodNetworkReady of this boot, verify).
    Network,
    /// Deleting the pods the reboot left stale.
    Clean,
    /// Waiting for storage to be healthy again.
    Storage,
    /// Uncordoning.
    Uncordon,
    /// Rebooted and verified.
    Done,
}

impl Phase {
    /// Its name as annotations, events and `--json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Gates => "gates",
            Phase::Lease => "lease",
            Phase::Cordon => "cordon",
            Phase::Drain => "drain",
            Phase::Reboot => "reboot",
            Phase::Down => "down",
            Phase::Ready => "ready",
            Phase::Network => "network",
            Phase::Clean => "clean",
            Phase::Storage => "storage",
            Phase::Uncordon => "uncordon",
            Phase::Done => "done",
        }
    }
}
