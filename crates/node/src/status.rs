//! `node status`: the live file, the backups, net-conf.json and the API side
//! by side, and whether they agree.

use std::time::Instant;

use ipnet::IpNet;
use rebootguard_flannel::subnet_env;
use serde::Serialize;

use crate::live::Live;
use crate::observe::{Api, MtuHints, Observation, observe};
use crate::settings::Settings;

/// One source's view.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// `live`, `backup`, `net-conf`, `api`.
    pub source: &'static str,
    /// `ok`, `missing`, `invalid`, `unavailable`, ...
    pub state: String,
    /// The node's leases (podCIDRs) it says.
    pub pod_cidrs: Vec<String>,
    /// The cluster networks it says.
    pub networks: Vec<String>,
    /// The MTU it says.
    pub mtu: Option<u32>,
    /// Details: problems, generation, boot ID.
    pub detail: String,
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The node.
    pub node: String,
    /// Each source.
    pub views: Vec<View>,
    /// Where the sources disagree, or what is wrong.
    pub disagreements: Vec<String>,
    /// Every valid generation in the store, newest first.
    pub backups: Vec<Backup>,
    /// Store problems.
    pub store_problems: Vec<String>,
    /// MTU sources seen.
    pub mtu: MtuHints,
    /// True when the live file is valid and nothing disagrees.
    pub healthy: bool,
}

/// One stored generation.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// Its number.
    pub generation: u64,
    /// Its node.
    pub node: String,
    /// When it was saved.
    pub saved_at: String,
    /// `live` or `regenerated`.
    pub source: String,
    /// The boot it was saved in.
    pub boot_id: String,
}

/// Gathers and compares.
pub async fn run(settings: &Settings) -> Report {
    let deadline = Instant::now() + settings.api_timeout * 2;
    compare(&observe(settings, true, deadline).await)
}

/// Compares an observation's sources (pure).
pub fn compare(o: &Observation) -> Report {
    let strings = |l: &[IpNet]| l.iter().map(ToString::to_string).collect::<Vec<_>>();
    let mut views = Vec::new();
    let mut disagreements = Vec::new();

    let live_env = match &o.live {
        Live::Missing => {
            disagreements.push(
                "the live subnet.env is missing: pods on this node cannot get networking".into(),
            );
            views.push(view("live", "missing", None, ""));
            None
        }
        Live::Unusable(why) => {
            disagreements.push(format!("the live subnet.env path {why}"));
            views.push(view("live", "unusable", None, &why.to_string()));
            None
        }
        Live::Present { parsed, .. } => {
            let errors: Vec<String> = parsed.errors().map(ToString::to_string).collect();
            if !errors.is_empty() {
                disagreements.push(format!(
                    "the live subnet.env is invalid: {}",
                    errors.join("; ")
                ));
            }
            let state = if errors.is_empty() { "ok" } else { "invalid" };
            views.push(view("live", state, Some(&parsed.env), &errors.join("; ")));
            Some(parsed.env.clone())
        }
    };

    let backup_env = o.backup.as_ref().map(|g| {
        let env = subnet_env::parse(&g.content).env;
        views.push(view(
            "backup",
            "ok",
            Some(&env),
            &format!(
                "generation {} ({}, {}, boot {})",
                g.number, g.meta.source, g.meta.saved_at, g.meta.boot_id
            ),
        ));
        env
    });
    if backup_env.is_none() {
        views.push(view("backup", "none", None, "no backup of this node"));
    }

    match &o.net_conf {
        Ok(conf) => {
            let mut networks = conf.networks.clone();
            networks.extend(conf.ipv6_networks.iter().copied());
            views.push(View {
                source: "net-conf",
                state: "ok".into(),
                pod_cidrs: Vec::new(),
                networks: strings(&networks),
                mtu: None,
                detail: format!("backend {}", conf.backend.kind),
            });
            if let Some(env) = &live_env {
                let mut live_networks = env.networks.clone();
                live_networks.extend(env.ipv6_networks.iter().copied());
                if set(&live_networks) != set(&networks) {
                    disagreements.push(format!(
                        "live networks {} differ from net-conf.json's {}",
                        strings(&live_networks).join(","),
                        strings(&networks).join(",")
                    ));
                }
            }
        }
        Err(why) => views.push(view(
            "net-conf",
            "unavailable",
            None,
            &rebootguard_errors::chain(why),
        )),
    }

    match &o.api {
        Api::Node(node) => {
            views.push(View {
                source: "api",
                state: "ok".into(),
                pod_cidrs: strings(&node.pod_cidrs),
                networks: Vec::new(),
                mtu: None,
                detail: format!("boot {}", node.boot_id.as_deref().unwrap_or("?")),
            });
            for (name, env) in [("live", &live_env), ("backup", &backup_env)] {
                if let Some(env) = env
                    && set(&env.pod_cidrs()) != set(&node.pod_cidrs)
                {
                    disagreements.push(format!(
                        "{name} leases {} but the API's podCIDRs are {}",
                        strings(&env.pod_cidrs()).join(","),
                        strings(&node.pod_cidrs).join(",")
                    ));
                }
            }
        }
        Api::NoNode(name) => {
            disagreements.push(format!("the API has no node {name:?}"));
            views.push(view("api", "no-such-node", None, name));
        }
        Api::Unavailable(why) => views.push(view(
            "api",
            "unavailable",
            None,
            &rebootguard_errors::chain(why),
        )),
        Api::NotAsked => views.push(view("api", "not-asked", None, "")),
    }
    if let (Some(live), Some(backup)) = (&live_env, &backup_env)
        && live != backup
    {
        disagreements.push(
            "the live file differs from the newest backup (run `rebootguard node backup`)".into(),
        );
    }
    if let (Some(live), Some(link)) = (&live_env, o.mtu.flannel_link)
        && live.mtu.is_some_and(|m| m != link)
    {
        disagreements.push(format!(
            "FLANNEL_MTU={} but flannel.1 has MTU {link}",
            live.mtu.unwrap_or_default()
        ));
    }

    Report {
        node: o.node.clone(),
        healthy: o.live.is_valid() && disagreements.is_empty(),
        views,
        disagreements,
        backups: o
            .generations
            .iter()
            .map(|g| Backup {
                generation: g.number,
                node: g.meta.node.clone(),
                saved_at: g.meta.saved_at.to_string(),
                source: g.meta.source.to_string(),
                boot_id: g.meta.boot_id.clone(),
            })
            .collect(),
        store_problems: o.store_problems.clone(),
        mtu: o.mtu,
    }
}

fn set(l: &[IpNet]) -> std::collections::BTreeSet<IpNet> {
    l.iter().map(IpNet::trunc).collect()
}

fn view(
    source: &'static str,
    state: &str,
    env: Option<&subnet_env::SubnetEnv>,
    detail: &str,
) -> View {
    let strings = |l: &[IpNet]| l.iter().map(ToString::to_string).collect::<Vec<_>>();
    View {
        source,
        state: state.into(),
        pod_cidrs: env.map(|e| strings(&e.pod_cidrs())).unwrap_or_default(),
        networks: env
            .map(|e| {
                let mut n = strings(&e.networks);
                n.extend(strings(&e.ipv6_networks));
                n
            })
            .unwrap_or_default(),
        mtu: env.and_then(|e| e.mtu),
        detail: detail.into(),
    }
}

impl Report {
    /// A human table.
    pub fn render(&self) -> String {
        let mut out = format!("node {}\n\n", self.node);
        out.push_str(&format!(
            "{:<9} {:<13} {:<28} {:<28} {:<6} {}\n",
            "SOURCE", "STATE", "PODCIDRS", "NETWORKS", "MTU", "DETAIL"
        ));
        for v in &self.views {
            out.push_str(&format!(
                "{:<9} {:<13} {:<28} {:<28} {:<6} {}\n",
                v.source,
                v.state,
                or_dash(&v.pod_cidrs.join(",")),
                or_dash(&v.networks.join(",")),
                v.mtu.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                v.detail
            ));
        }
        out.push_str(&format!("\nbackups: {}\n", self.backups.len()));
        for b in &self.backups {
            out.push_str(&format!(
                "  #{:<6} {:<16} {:<11} {}  boot {}\n",
                b.generation, b.node, b.source, b.saved_at, b.boot_id
            ));
        }
        for p in &self.store_problems {
            out.push_str(&format!("  skipped: {p}\n"));
        }
        out.push('\n');
        if self.healthy {
            out.push_str("OK: the live file is valid and every source agrees\n");
        } else {
            for d in &self.disagreements {
                out.push_str(&format!("PROBLEM: {d}\n"));
            }
        }
        out
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
