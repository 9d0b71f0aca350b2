//! Node power: reboots (off, a dark period, boot), a node's own reboot
//! (`node-reboot`), `power-on`, the `stays-down` boot fault, and the API
//! server following the servers' quorum as nodes go off and come back.
//!
//! Key design decision: every power change of a node happens under its
//! power lock and bumps its power epoch, and the boot planned at the end of
//! a dark period happens only if the epoch is still the one its power-off
//! left: a `power-on` or another reboot meanwhile supersedes it, so a node
//! is never booted twice, whoever asked.

use std::sync::Arc;
use std::time::Duration;

use crate::lab::{Ctx, Error, futures_join};
use crate::node::{self, Node};
use crate::scenario::{Fault, Role};

/// What the end of a node's dark period did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// It booted.
    Booted,
    /// `stays-down` was armed: it stays off until powered on.
    StayedDown,
    /// Something else powered it on (or off again) meanwhile.
    Superseded,
}

/// Which way [`Ctx::follow_servers`] may move the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiChange {
    /// After power-offs: only take it down.
    DownOnly,
    /// At a server's boot: only bring it back.
    UpOnly,
}

/// What a request does once its reply is out.
#[derive(Debug)]
pub enum Then {
    /// A node's own reboot: off, dark, boot.
    PowerCycle {
        /// The node.
        node: String,
        /// Lab time off.
        down: Duration,
    },
}

impl Then {
    /// Does it.
    pub async fn run(self, ctx: &Arc<Ctx>) {
        match self {
            Then::PowerCycle { node, down } => {
                if let Err(e) = ctx.power_cycle(&node, down).await {
                    ctx.timeline.note(
                        ctx,
                        Some(&node),
                        "power",
                        &format!("reboot failed: {}", rebootguard_errors::chain(&e)),
                    );
                }
            }
        }
    }
}

impl Ctx {
    /// Reboots nodes together: off, `down` of darkness, then boot (a node
    /// already off is only booted; one with `stays-down` armed stays off).
    pub async fn reboot(self: &Arc<Self>, nodes: &[String], down: Duration) -> Result<(), Error> {
        self.reboot_report(nodes, down).await.map(|_| ())
    }

    /// [`Ctx::reboot`], saying what became of each node.
    pub async fn reboot_report(
        self: &Arc<Self>,
        nodes: &[String],
        down: Duration,
    ) -> Result<Vec<(String, Woke)>, Error> {
        let list: Vec<Arc<Node>> = nodes
            .iter()
            .map(|n| self.find(n))
            .collect::<Result<_, _>>()?;
        let mut epochs = Vec::new();
        for n in &list {
            epochs.push(self.power_off(n).await);
        }
        self.follow_servers(ApiChange::DownOnly).await;
        tokio::time::sleep(down).await;
        let boots = list.iter().zip(epochs).map(|(n, epoch)| {
            let (c, n) = (self.clone(), n.clone());
            async move { (n.name.clone(), c.wake_up(&n, epoch).await) }
        });
        let mut out = Vec::new();
        for (name, r) in futures_join(boots).await {
            out.push((name, r?));
        }
        self.write_state();
        Ok(out)
    }

    /// Powers `node` off now (nothing when it is off already); the power
    /// epoch a boot planned for the end of its dark period must find.
    pub async fn power_off(&self, node: &Arc<Node>) -> u64 {
        let _power = node.power.lock().await;
        if node.netns().is_some() {
            node::power_off(self, node);
        }
        node.state().power_epoch
    }

    /// The end of a dark period that began at power epoch `epoch`: boots
    /// the node unless something powered it since (a `power-on`, another
    /// reboot) or `stays-down` is armed (then consumed: the node stays off
    /// until told).
    pub async fn wake_up(self: &Arc<Self>, node: &Arc<Node>, epoch: u64) -> Result<Woke, Error> {
        let _power = node.power.lock().await;
        if node.state().power_epoch != epoch || node.netns().is_some() {
            return Ok(Woke::Superseded);
        }
        if node.state().armed.remove(&Fault::StaysDown) {
            self.timeline.note(
                self,
                Some(&node.name),
                "fault",
                "stays-down: the node does not come back until powered on",
            );
            self.write_state();
            return Ok(Woke::StayedDown);
        }
        node::boot(self, node)
            .await
            .map_err(|e| Error::Node(node.name.clone(), Box::new(e)))?;
        Ok(Woke::Booted)
    }

    /// Boots a powered-off node now; a `stays-down` armed for it is
    /// dropped (this is the "until told").
    pub async fn power_on(self: &Arc<Self>, name: &str) -> Result<(), Error> {
        let node = self.find(name)?;
        let _power = node.power.lock().await;
        if node.netns().is_some() {
            return Err(Error::PoweredOn(name.to_owned()));
        }
        node.state().armed.remove(&Fault::StaysDown);
        self.timeline
            .note(self, Some(name), "power", "powered on (asked)");
        node::boot(self, &node)
            .await
            .map_err(|e| Error::Node(name.to_owned(), Box::new(e)))?;
        self.write_state();
        Ok(())
    }

    /// A powered node's own reboot, as `systemctl reboot` on it: off now,
    /// `down` dark, then boot (unless `stays-down`).
    pub async fn power_cycle(self: &Arc<Self>, name: &str, down: Duration) -> Result<Woke, Error> {
        let node = self.find(name)?;
        let epoch = self.power_off(&node).await;
        self.follow_servers(ApiChange::DownOnly).await;
        tokio::time::sleep(down).await;
        let woke = self.wake_up(&node, epoch).await;
        self.write_state();
        woke
    }

    /// Servers powered, servers in all.
    pub fn servers_up(&self) -> (usize, usize) {
        let servers = self.nodes.iter().filter(|n| n.role == Role::Server);
        let total = servers.clone().count();
        (total, servers.filter(|n| n.netns().is_some()).count())
    }

    /// Takes the API server down when too few servers are powered for the
    /// datastore (etcd's majority, or any server), or brings it back when
    /// enough are, as `change` allows. A server's boot only brings it up:
    /// while the lab's nodes first boot one after the other, it stays up.
    pub async fn follow_servers(&self, change: ApiChange) {
        let _one = self.api_power.lock().await;
        let (total, up) = self.servers_up();
        let want = crate::scenario::api_available(total, up, self.scenario.etcd());
        let is = self.api.sim.is_up();
        if is && !want && change == ApiChange::DownOnly {
            self.api.sim.down().await;
            self.timeline.note(
                self,
                None,
                "api",
                &format!("API server down ({up} of {total} servers powered)"),
            );
        } else if !is && want && change == ApiChange::UpOnly {
            if let Err(e) = self.api.sim.up() {
                self.timeline.note(
                    self,
                    None,
                    "api",
                    &format!("API server failed to start: {e}"),
                );
                return;
            }
            self.timeline.note(
                self,
                None,
                "api",
                &format!("API server up ({up} of {total} servers powered)"),
            );
        }
    }
}
