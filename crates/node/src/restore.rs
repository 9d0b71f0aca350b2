//! `node restore`: put back a valid subnet.env before k3s starts.
//!
//! The decision ([`decide`]) is pure. Its rules, in order:
//! 1. something unsafe at the path (symlink, directory) → touch nothing, say so;
//! 2. a valid live file → keep it;
//! 3. a backup of *this* node → restore it, unless the API answered and
//!    disagrees (podCIDRs or cluster networks), in which case regenerate;
//!    if the API says the node is gone or has no podCIDR yet, restore
//!    nothing: a new lease is coming and an old one would collide;
//! 4. no backup → regenerate from the API and net-conf.json;
//! 5. otherwise → do nothing and list exactly what was missing.
//!
//! Restore never holds k3s back: every step is bounded by one deadline and a
//! failure to restore is a warning, not an error exit.

use std::collections::BTreeSet;
use std::time::Instant;

use ipnet::IpNet;
use rebootguard_flannel::subnet_env;
use rebootguard_store::{NewGeneration, Source};
use serde::Serialize;

use crate::leases;
use crate::live::{self, Live};
use crate::observe::{Api, Observation, observe_with, validate};
use crate::regenerate::derive_from;
use crate::settings::Settings;

/// What restore decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Decision {
    /// The live file is valid: left as it is.
    Keep,
    /// A stored generation of this node is put back.
    Restore {
        /// The generation.
        generation: u64,
        /// Whether the API confirmed it.
        verified: bool,
    },
    /// A file derived from the API and net-conf.json is written.
    Regenerate {
        /// The content.
        content: String,
        /// Why not a backup.
        because: String,
    },
    /// The path holds something that must not be replaced.
    Refuse {
        /// What and how to fix it.
        reason: String,
    },
    /// Nothing could be done.
    Nothing {
        /// Everything that was missing.
        missing: Vec<String>,
    },
}

/// A decision and the warnings that came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// What to do.
    #[serde(flatten)]
    pub decision: Decision,
    /// Things the operator should know.
    pub warnings: Vec<String>,
}

/// Decides what restore does from what was observed.
pub fn decide(o: &Observation, ipmasq: bool) -> Plan {
    let mut warnings = Vec::new();
    let plan = |decision, warnings| Plan { decision, warnings };
    match &o.live {
        Live::Unusable(why) => {
            return plan(
                Decision::Refuse {
                    reason: format!("the subnet.env path {why}"),
                },
                warnings,
            );
        }
        Live::Present { parsed, .. } if parsed.is_valid() => {
            if let Api::Node(view) = &o.api
                && !same_cidrs(&parsed.env.pod_cidrs(), &view.pod_cidrs)
            {
                warnings.push(format!(
                    "the live file leases {} but the API gives node {} podCIDRs {}; compare with `rebootguard node regenerate`",
                    list(&parsed.env.pod_cidrs()),
                    view.name,
                    list(&view.pod_cidrs)
                ));
            }
            return plan(Decision::Keep, warnings);
        }
        Live::Present { parsed, .. } => warnings.push(format!(
            "the live file is invalid: {}",
            parsed
                .errors()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Live::Missing => {}
    }

    // A store that could not be read (untrusted, unreadable) or held
    // rejected files explains a missing backup: say so, not just "none".
    if !o.store_problems.is_empty() {
        warnings.push(format!("the backup store: {}", o.store_problems.join("; ")));
    }
    let backup = o.backup.as_ref().filter(|g| g.meta.node == o.node);
    let regenerate = |because: String, mut warnings: Vec<String>| match derive_from(o, ipmasq) {
        Ok(derived) => plan(
            Decision::Regenerate {
                content: derived.env.render(),
                because,
            },
            warnings,
        ),
        Err(mut missing) => {
            warnings.push(because);
            if backup.is_none() && !o.store_problems.is_empty() {
                missing.push(format!("a backup ({})", o.store_problems.join("; ")));
            }
            plan(Decision::Nothing { missing }, warnings)
        }
    };

    match (backup, &o.api) {
        (_, Api::NoNode(name)) => plan(
            Decision::Nothing {
                missing: vec![format!(
                    "node {name:?} in the API: it was deleted (k3s will register it with a new podCIDR) or the node name is wrong (--node-name)"
                )],
            },
            warnings,
        ),
        (_, Api::Node(view)) if view.pod_cidrs.is_empty() => plan(
            Decision::Nothing {
                missing: vec![format!(
                    "a podCIDR for node {}: none is assigned yet (look for CIDRNotAvailable events); flannel will write subnet.env once one is",
                    view.name
                )],
            },
            warnings,
        ),
        (Some(backup), Api::Node(view)) => {
            let stored = subnet_env::parse(&backup.content).env;
            let mut disagreements = Vec::new();
            if !same_cidrs(&stored.pod_cidrs(), &view.pod_cidrs) {
                disagreements.push(format!(
                    "it leases {} but the node's podCIDRs are {}",
                    list(&stored.pod_cidrs()),
                    list(&view.pod_cidrs)
                ));
            }
            if let Ok(conf) = &o.net_conf {
                let mut stored_networks = stored.networks.clone();
                stored_networks.extend(stored.ipv6_networks.iter().copied());
                let mut networks = Vec::new();
                if conf.enable_ipv4 {
                    networks.extend(conf.networks.iter().copied());
                }
                if conf.enable_ipv6 {
                    networks.extend(conf.ipv6_networks.iter().copied());
                }
                if !same_cidrs(&stored_networks, &networks) {
                    disagreements.push(format!(
                        "its cluster networks {} differ from net-conf.json's {}",
                        list(&stored_networks),
                        list(&networks)
                    ));
                }
            }
            if disagreements.is_empty() {
                plan(
                    Decision::Restore {
                        generation: backup.number,
                        verified: true,
                    },
                    warnings,
                )
            } else {
                regenerate(
                    format!(
                        "backup generation {} disagrees with the API: {}",
                        backup.number,
                        disagreements.join("; ")
                    ),
                    warnings,
                )
            }
        }
        (Some(backup), api) => {
            let why = match api {
                Api::Unavailable(why) => {
                    format!(
                        "the API is unavailable ({})",
                        rebootguard_errors::chain(why)
                    )
                }
                _ => "the API was not asked".to_owned(),
            };
            warnings.push(format!(
                "backup generation {} chosen without a cross-check against the API: {why}",
                backup.number
            ));
            plan(
                Decision::Restore {
                    generation: backup.number,
                    verified: false,
                },
                warnings,
            )
        }
        (None, _) => {
            let foreign = o
                .generations
                .iter()
                .filter(|g| g.meta.node != o.node)
                .count();
            let mut because = format!("no backup of node {} in the store", o.node);
            if foreign > 0 {
                because.push_str(&format!(
                    " ({foreign} backup(s) of other nodes ignored: never used for this one)"
                ));
            }
            regenerate(because, warnings)
        }
    }
}

fn same_cidrs(a: &[IpNet], b: &[IpNet]) -> bool {
    let set = |l: &[IpNet]| l.iter().map(IpNet::trunc).collect::<BTreeSet<_>>();
    set(a) == set(b)
}

fn list(cidrs: &[IpNet]) -> String {
    if cidrs.is_empty() {
        return "[]".into();
    }
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What a restore run did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The node.
    pub node: String,
    /// The live path.
    pub path: String,
    /// The plan.
    #[serde(flatten)]
    pub plan: Plan,
    /// Whether the plan was carried out (false in a dry run or on a failed write).
    pub applied: bool,
    /// Leases freed from before this boot.
    pub leases: leases::Report,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Runs restore within `settings.timeout`.
pub async fn run(settings: &Settings, dry_run: bool) -> Outcome {
    let started = Instant::now();
    let deadline = started + settings.timeout;
    let current = live::read(&settings.paths.root, &settings.paths.subnet_env);
    // The fast path asks nobody: a valid file is kept as it is, and without
    // the API nothing can be derived, so link MTUs are not needed either.
    let want_api = !current.is_valid() && settings.use_api;
    let observation = observe_with(settings, current, want_api, deadline).await;
    let mut plan = decide(&observation, settings.ipmasq);

    let write = |bytes: &[u8], warnings: &mut Vec<String>| {
        if dry_run {
            return false;
        }
        match live::write_atomic(&settings.paths.root, &settings.paths.subnet_env, bytes) {
            Ok(()) => true,
            Err(e) => {
                warnings.push(rebootguard_errors::chain(&e));
                false
            }
        }
    };
    let applied = match &plan.decision {
        Decision::Keep => {
            tracing::info!(path = %settings.paths.subnet_env.display(), "subnet.env is valid; left as it is");
            true
        }
        Decision::Restore {
            generation,
            verified,
        } => {
            let stored = observation
                .generations
                .iter()
                .find(|g| g.number == *generation && g.meta.node == observation.node);
            let done = match stored {
                Some(g) => write(&g.content, &mut plan.warnings),
                None => {
                    plan.warnings.push(format!(
                        "backup generation {generation} vanished from the store"
                    ));
                    false
                }
            };
            if done {
                tracing::info!(
                    generation,
                    verified,
                    store = %settings.paths.store.display(),
                    path = %settings.paths.subnet_env.display(),
                    "restored subnet.env from backup"
                );
            }
            done
        }
        Decision::Regenerate { content, because } => {
            let done = write(content.as_bytes(), &mut plan.warnings);
            if done {
                tracing::info!(because, path = %settings.paths.subnet_env.display(), "wrote subnet.env regenerated from the API and net-conf.json");
                if let Err(e) = store_regenerated(settings, &observation, content) {
                    plan.warnings
                        .push(format!("could not back up the regenerated file: {e}"));
                }
            }
            done
        }
        Decision::Refuse { reason } => {
            tracing::warn!(reason, "refusing to touch subnet.env");
            false
        }
        Decision::Nothing { missing } => {
            tracing::warn!(missing = missing.join("; "), "could not restore subnet.env");
            false
        }
    };
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }

    let leases = match crate::host::boot_time(&settings.paths) {
        Ok(boot) => leases::free_stale(&settings.paths.cni_networks, boot, dry_run),
        Err(e) => leases::Report {
            errors: vec![format!("boot time unknown, leases left alone: {e}")],
            ..leases::Report::default()
        },
    };
    Outcome {
        node: observation.node.clone(),
        path: settings.paths.subnet_env.display().to_string(),
        plan,
        applied,
        leases,
        elapsed_ms: started.elapsed().as_millis() as u64,
        dry_run,
    }
}

fn store_regenerated(
    settings: &Settings,
    observation: &Observation,
    content: &str,
) -> Result<(), String> {
    let store = crate::host::open_store(&settings.paths)
        .map_err(|e| rebootguard_errors::chain(&e))?
        .keep(settings.keep);
    let pod_cidrs: Vec<String> = match &observation.api {
        Api::Node(view) => view.pod_cidrs.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    };
    let boot_id = crate::host::boot_id(&settings.paths).unwrap_or_default();
    store
        .save(
            &NewGeneration {
                content: content.as_bytes(),
                node: &settings.node_name,
                boot_id: &boot_id,
                pod_cidrs: &pod_cidrs,
                source: Source::Regenerated,
                saved_at: jiff::Timestamp::now(),
            },
            validate,
        )
        .map(|_| ())
        .map_err(|e| rebootguard_errors::chain(&e))
}
