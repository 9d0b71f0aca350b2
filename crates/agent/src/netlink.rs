//! Netlink notifications as check triggers: any change to a link, an
//! address, a route, a neighbour or an FDB entry in the node's namespace
//! makes the agent look again, within milliseconds of the change.

use std::time::Duration;

use rebootguard_hostnet::monitor::{self, Change, Monitor};
use tokio::sync::mpsc;

/// Subscribes in the namespace this process runs in (the node's); every
/// change becomes a `()` on `changes`. A socket that stops delivering is
/// reopened, and a full re-check asked for (notifications may be lost).
pub fn watch(changes: mpsc::Sender<()>) -> Result<tokio::task::JoinHandle<()>, monitor::Error> {
    let mut monitor = Monitor::open()?;
    Ok(tokio::spawn(async move {
        loop {
            match monitor.next().await {
                Ok(change) => {
                    if change == Change::Overrun {
                        tracing::debug!("netlink notifications were dropped; re-checking");
                    }
                    // Full: a check is pending anyway.
                    let _ = changes.try_send(());
                }
                Err(e) => {
                    tracing::warn!("netlink notifications stopped ({e}); reopening");
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        match Monitor::open() {
                            Ok(m) => {
                                monitor = m;
                                break;
                            }
                            Err(e) => tracing::warn!("cannot reopen netlink notifications: {e}"),
                        }
                    }
                    let _ = changes.try_send(());
                }
            }
        }
    }))
}
