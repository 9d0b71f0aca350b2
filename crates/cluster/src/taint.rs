//! One taint on a Node, put on or taken off without touching anybody
//! else's.
//!
//! `spec.taints` is an atomic list: any merge or apply replaces the whole
//! list. So the list is read, only our key changed, and written back with
//! the read `resourceVersion` as a precondition; a 409 (someone wrote in
//! between) means read again and redo, after a short jittered pause so two
//! writers in lockstep drift apart. node-readiness-controller lost other
//! controllers' taints exactly this way before it did the same.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::lease::is_conflict;
use crate::node::{Error, bounded};

/// The first pause after a lost race; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_millis(320);

/// The node's taints with `taint` present (or absent), if that changes them.
pub fn with(taints: &[Taint], taint: &Taint, present: bool) -> Option<Vec<Taint>> {
    let same = |t: &Taint| t.key == taint.key && t.effect == taint.effect;
    let has = taints.iter().any(same);
    match (present, has) {
        (true, true) | (false, false) => None,
        (true, false) => {
            let mut out = taints.to_vec();
            out.push(taint.clone());
            Some(out)
        }
        (false, true) => Some(taints.iter().filter(|t| !same(t)).cloned().collect()),
    }
}

/// Makes `taint` present or absent on node `name`. `Ok(true)` when the node
/// changed, `Ok(false)` when it already was as asked. Lost races are redone
/// until `bound` has passed since the first attempt; then the last conflict
/// is returned.
pub async fn set(
    client: &Client,
    name: &str,
    taint: &Taint,
    present: bool,
    bound: Duration,
) -> Result<bool, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + bound;
    let mut pause = FIRST_PAUSE;
    loop {
        let node = bounded(bound, format!("node {name:?}"), api.get_opt(name))
            .await?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let Some(next) = with(&taints, taint, present) else {
            return Ok(false);
        };
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": next},
        });
        let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
        let write = api.patch(name, &params, &patch);
        match bounded(bound, format!("taints of node {name:?}"), write).await {
            Ok(_) => return Ok(true),
            Err(e) if is_conflict(&e) && Instant::now() + pause < deadline => {
                tokio::time::sleep(jittered(pause)).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

/// `pause` stretched by up to half again, so racing writers fall out of step.
fn jittered(pause: Duration) -> Duration {
    // The clock's nanoseconds are noise enough; no RNG crate for this.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    pause + pause.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Taint::default()
        }
    }

    #[test]
    fn only_our_key_and_effect_change() {
        let ours = taint("rebootguard.io/pod-network-unready", "NoSchedule");
        let theirs = vec![
            taint("node.kubernetes.io/unreachable", "NoExecute"),
            taint("rebootguard.io/pod-network-unready", "NoExecute"),
        ];
        let added = with(&theirs, &ours, true).expect("changes");
        assert_eq!(added.len(), 3);
        assert_eq!(added[..2], theirs[..]);
        assert_eq!(with(&added, &ours, true), None, "already there");
        assert_eq!(with(&added, &ours, false), Some(theirs.clone()));
        assert_eq!(with(&theirs, &ours, false), None, "already absent");
    }

    #[test]
    fn the_pause_grows_by_at_most_half() {
        for _ in 0..100 {
            let p = jittered(FIRST_PAUSE);
            assert!(p >= FIRST_PAUSE && p <= FIRST_PAUSE.mul_f64(1.5), "{p:?}");
        }
    }
}
