//! Shared fixture builders.

#![allow(dead_code)]

pub mod incident;
pub mod kube;
pub mod scenarios;

use rebootguard_diagnose::{Config, Report, Snapshot};
use serde_json::Value;

/// Loads objects through the snapshot file path (full objects in, slim out).
pub fn snapshot_of(objects: &[Value], now: &str) -> Snapshot {
    let doc = kube::snapshot_doc(now, "fixture", objects);
    let bytes = serde_json::to_vec(&doc).expect("serialise fixture");
    rebootguard_diagnose::load(&bytes).expect("fixture loads")
}

/// Analyses objects as of `now`.
pub fn analyse(objects: &[Value], now: &str) -> Report {
    let snap = snapshot_of(objects, now);
    rebootguard_diagnose::analyse(&snap, now.parse().expect("now"), &Config::default())
}
