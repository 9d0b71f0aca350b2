//! Deriving the node's subnet.env from the API and net-conf.json, and
//! writing it only when asked.

use std::time::Instant;

use rebootguard_flannel::{Mtu, SubnetEnv, derive};
use serde::Serialize;

use crate::live::{self, Live};
use crate::observe::{Api, MtuHints, Observation, observe};
use crate::settings::Settings;

/// A derived file and where its parts came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The file's values.
    pub env: SubnetEnv,
    /// Where the MTU came from, for humans.
    pub mtu_from: String,
}

/// The MTU to derive with, best source first.
pub fn pick_mtu(hints: &MtuHints) -> Option<(Mtu, String)> {
    if let Some(mtu) = hints.configured {
        return Some((Mtu::Overlay(mtu), "the configured MTU".into()));
    }
    if let Some(mtu) = hints.flannel_link {
        return Some((Mtu::Overlay(mtu), "the MTU of flannel.1".into()));
    }
    if let Some(mtu) = hints.previous {
        return Some((Mtu::Overlay(mtu), "this node's previous subnet.env".into()));
    }
    hints.underlay.map(|mtu| {
        (
            Mtu::Underlay(mtu),
            format!("the default route's interface MTU ({mtu}) minus the backend overhead"),
        )
    })
}

/// Derives the file from an observation, or lists exactly what is missing.
pub fn derive_from(observation: &Observation, ipmasq: bool) -> Result<Derived, Vec<String>> {
    let mut missing = Vec::new();
    let view = match &observation.api {
        Api::Node(view) => Some(view),
        Api::NotAsked => {
            missing.push("the node's podCIDR (the API was not asked)".to_owned());
            None
        }
        Api::Unavailable(why) => {
            missing.push(format!(
                "the node's podCIDR (API unavailable: {})",
                rebootguard_errors::chain(why)
            ));
            None
        }
        Api::NoNode(name) => {
            missing.push(format!(
                "the node's podCIDR (the API has no node {name:?}; check the node name)"
            ));
            None
        }
    };
    let net_conf = match &observation.net_conf {
        Ok(conf) => Some(conf),
        Err(why) => {
            missing.push(format!(
                "net-conf.json ({})",
                rebootguard_errors::chain(why)
            ));
            None
        }
    };
    let mtu = pick_mtu(&observation.mtu);
    if mtu.is_none() {
        // Say only what was looked at: without the API the links are not.
        missing.push(if observation.mtu.links_read {
            "an MTU (no flannel.1, no previous file, no default route; pass --mtu)".to_owned()
        } else {
            "an MTU (no previous file; flannel.1 and the default route are only read when the API answers; pass --mtu)".to_owned()
        });
    }
    let (Some(view), Some(net_conf), Some((mtu, mtu_from))) = (view, net_conf, mtu) else {
        return Err(missing);
    };
    derive(&view.pod_cidrs, net_conf, mtu, ipmasq)
        .map(|env| Derived { env, mtu_from })
        .map_err(|e| vec![e.to_string()])
}

/// What `node regenerate` did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The node.
    pub node: String,
    /// The derived file.
    pub content: String,
    /// The live file, when readable.
    pub live: Option<String>,
    /// A unified-style diff, live → derived (empty when equal).
    pub diff: String,
    /// Whether the live file was written.
    pub written: bool,
    /// Why it was not written, when it was not.
    pub not_written_because: Option<String>,
    /// Where the MTU came from.
    pub mtu_from: String,
}

/// Why `node regenerate` could not derive the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Inputs are missing.
    #[error("cannot derive subnet.env; missing: {}", .0.join("; "))]
    Missing(Vec<String>),
    /// The write failed.
    #[error(transparent)]
    Write(#[from] live::WriteError),
}

/// Derives the file; writes it when `write`, replacing a valid live file
/// that differs only when `force`.
pub async fn run(settings: &Settings, write: bool, force: bool) -> Result<Outcome, Error> {
    let deadline = Instant::now() + settings.api_timeout * 2;
    let observation = observe(settings, true, deadline).await;
    let derived = derive_from(&observation, settings.ipmasq).map_err(Error::Missing)?;
    let content = derived.env.render();
    let live_text = match &observation.live {
        Live::Present { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    };
    let diff = diff(live_text.as_deref().unwrap_or(""), &content);
    let same = live_text.as_deref() == Some(content.as_str());
    let not_written_because = if same {
        Some("the live file already says this".to_owned())
    } else if !write {
        Some("dry run (pass --write to write it)".to_owned())
    } else if observation.live.is_valid() && !force {
        Some("the live file is valid and differs; pass --force to replace it".to_owned())
    } else {
        None
    };
    let written = not_written_because.is_none();
    if written {
        live::write_atomic(
            &settings.paths.root,
            &settings.paths.subnet_env,
            content.as_bytes(),
        )?;
        tracing::info!(path = %settings.paths.subnet_env.display(), "wrote regenerated subnet.env");
    }
    Ok(Outcome {
        node: observation.node,
        content,
        live: live_text,
        diff,
        written,
        not_written_because,
        mtu_from: derived.mtu_from,
    })
}

/// A line diff of two small files (`-` old, `+` new, ` ` same), by key order.
pub fn diff(old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    // Longest common subsequence; files are a handful of lines.
    let (n, m) = (old_lines.len(), new_lines.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old_lines[i] == new_lines[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && old_lines[i] == new_lines[j] {
            out.push_str(&format!(" {}\n", old_lines[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{}\n", old_lines[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", new_lines[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_changes() {
        let old = "A=1\nB=2\nC=3\n";
        let new = "A=1\nB=9\nC=3\n";
        assert_eq!(diff(old, new), " A=1\n-B=2\n+B=9\n C=3\n");
        assert_eq!(diff(old, old), "");
        assert_eq!(diff("", "A=1\n"), "+A=1\n");
    }

    #[test]
    fn mtu_sources_in_order() {
        let mut hints = MtuHints {
            configured: Some(1400),
            flannel_link: Some(1450),
            previous: Some(1440),
            underlay: Some(9000),
            links_read: true,
        };
        assert_eq!(pick_mtu(&hints).map(|m| m.0), Some(Mtu::Overlay(1400)));
        hints.configured = None;
        assert_eq!(pick_mtu(&hints).map(|m| m.0), Some(Mtu::Overlay(1450)));
        hints.flannel_link = None;
        assert_eq!(pick_mtu(&hints).map(|m| m.0), Some(Mtu::Overlay(1440)));
        hints.previous = None;
        assert_eq!(pick_mtu(&hints).map(|m| m.0), Some(Mtu::Underlay(9000)));
        hints.underlay = None;
        assert_eq!(pick_mtu(&hints), None);
    }
}
