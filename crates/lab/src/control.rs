//! How other `rebootguard-lab` processes (and the agents' `k3s-restart`)
//! drive a running lab: a JSON request file in `<lab>/requests/`, picked up
//! by the lab itself within [`POLL`] (a task every [`crate::Lab`] runs, so
//! `up`, `replay` and library users all serve them), and a JSON reply in
//! `<lab>/replies/<id>.json` the caller waits for.
//!
//! Files are published by rename, so neither side ever reads half of one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::runtime::RuntimeFault;
use crate::scenario::Fault;

/// How often the lab looks for requests.
pub const POLL: Duration = Duration::from_millis(50);

/// Something asked of a running lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// Apply the post-mortem's manual fix.
    FixManually,
    /// Reboot nodes together, with faults for their next boot.
    Reboot {
        /// The nodes.
        nodes: Vec<String>,
        /// Faults armed first.
        faults: Vec<Fault>,
        /// Lab milliseconds off.
        down_ms: u64,
    },
    /// Apply a runtime fault to a node now.
    Break {
        /// The node.
        node: String,
        /// The fault.
        fault: RuntimeFault,
    },
    /// Arm a boot fault for the node's next boot, whoever reboots it.
    Arm {
        /// The node.
        node: String,
        /// The fault.
        fault: Fault,
    },
    /// The node reboots itself (`systemctl reboot` on it): the reply comes
    /// at once, then the node powers off, stays off `down_ms` (lab time)
    /// and boots, unless `stays-down` is armed.
    PowerCycle {
        /// The node.
        node: String,
        /// Lab milliseconds off.
        down_ms: u64,
        /// Who asked (for the timeline), e.g. `rebootguard agent`.
        #[serde(default)]
        asked_by: String,
    },
    /// Boot a powered-off node now.
    PowerOn {
        /// The node.
        node: String,
    },
    /// Restart the node's k3s (`systemctl restart k3s`).
    K3sRestart {
        /// The node.
        node: String,
        /// Who asked (for the timeline), e.g. `rebootguard agent`.
        #[serde(default)]
        asked_by: String,
    },
}

/// The lab's answer to one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// When it took effect (RFC 3339, UTC, milliseconds): the instant a
    /// fault's change returned, or k3s was restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<String>,
    /// What was done, line by line.
    #[serde(default)]
    pub lines: Vec<String>,
    /// Why it was not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A failure.
    pub fn failed(error: impl std::fmt::Display) -> Reply {
        Reply {
            ok: false,
            error: Some(error.to_string()),
            ..Reply::default()
        }
    }
}

/// `2026-01-31T07:10:34.123Z`: RFC 3339, UTC, milliseconds.
pub fn rfc3339_ms(t: jiff::Timestamp) -> String {
    format!("{t:.3}")
}

/// A [`SystemTime`] as a timestamp (the system clock, as kubesim's).
pub fn timestamp(t: SystemTime) -> jiff::Timestamp {
    jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Queues `request` for the lab whose directory is `dir`; returns the
/// request's id (its reply will be `replies/<id>.json`).
pub fn send(dir: &Path, request: &Request) -> std::io::Result<String> {
    let requests = dir.join("requests");
    std::fs::create_dir_all(&requests)?;
    let id = format!(
        "{:020}-{}-{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        std::process::id(),
        crate::lab::random_hex(6)
    );
    let tmp = requests.join(format!(".{id}.json"));
    std::fs::write(&tmp, serde_json::to_vec(request).unwrap_or_default())?;
    std::fs::rename(tmp, requests.join(format!("{id}.json")))?;
    Ok(id)
}

/// Why no reply came.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The lab ended before answering.
    #[error("the lab (pid {0}) ended before answering")]
    LabGone(u32),
    /// No answer in time.
    #[error("the lab (pid {0}) did not answer within {1:?}")]
    Timeout(u32, Duration),
    /// The reply could not be read.
    #[error("failed to read the lab's reply {0}")]
    Read(PathBuf, #[source] std::io::Error),
}

/// Waits up to `timeout` for the reply to request `id` from the lab in
/// `dir` run by `pid`, and removes it.
pub fn wait_reply(dir: &Path, id: &str, pid: u32, timeout: Duration) -> Result<Reply, WaitError> {
    let path = dir.join("replies").join(format!("{id}.json"));
    let start = Instant::now();
    loop {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let _ = std::fs::remove_file(&path);
                return serde_json::from_slice(&bytes)
                    .map_err(|e| WaitError::Read(path.clone(), std::io::Error::other(e)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WaitError::Read(path, e)),
        }
        if !Path::new("/proc").join(pid.to_string()).exists() {
            return Err(WaitError::LabGone(pid));
        }
        if start.elapsed() > timeout {
            return Err(WaitError::Timeout(pid, timeout));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Why a queued request could not be taken. Not retryable: the file is
/// gone once taken; the sender may send a new one.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// The file could not be read.
    #[error("unreadable request {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    /// The file is not a [`Request`].
    #[error("unreadable request {}", .0.display())]
    Parse(PathBuf, #[source] serde_json::Error),
}

/// Takes every queued request, oldest first: (id, request or why it could
/// not be read).
pub fn take(dir: &Path) -> Vec<(String, Result<Request, TakeError>)> {
    let requests = dir.join("requests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&requests)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|f| {
            let id = f.file_stem()?.to_string_lossy().into_owned();
            let read = std::fs::read(&f);
            // Gone already: someone else took it.
            std::fs::remove_file(&f).ok()?;
            let request = match read {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TakeError::Parse(f, e)),
                Err(e) => Err(TakeError::Read(f, e)),
            };
            Some((id, request))
        })
        .collect()
}

/// Publishes the reply to request `id`.
pub fn reply(dir: &Path, id: &str, reply: &Reply) -> std::io::Result<()> {
    let replies = dir.join("replies");
    std::fs::create_dir_all(&replies)?;
    let tmp = replies.join(format!(".{id}.json"));
    std::fs::write(&tmp, serde_json::to_vec(reply).unwrap_or_default())?;
    std::fs::rename(tmp, replies.join(format!("{id}.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "rglab-unit-{}-{}",
            std::process::id(),
            crate::lab::random_hex(6)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn requests_queue_in_order_as_json_and_are_taken_once() {
        let dir = temp_dir();
        let r = Request::Reboot {
            nodes: vec!["boromir".into()],
            faults: vec![Fault::FlannelSilentSkip],
            down_ms: 300,
        };
        let b = Request::Break {
            node: "boromir".into(),
            fault: RuntimeFault::DropPeer {
                peer: "theoden".into(),
            },
        };
        let first = send(&dir, &r).unwrap();
        let second = send(&dir, &Request::FixManually).unwrap();
        let third = send(&dir, &b).unwrap();
        let power = [
            Request::Arm {
                node: "boromir".into(),
                fault: Fault::StaysDown,
            },
            Request::PowerCycle {
                node: "boromir".into(),
                down_ms: 2000,
                asked_by: "rebootguard agent".into(),
            },
            Request::PowerOn {
                node: "boromir".into(),
            },
        ];
        assert!(first < second && second < third, "ids sort by time");
        let text =
            std::fs::read_to_string(dir.join("requests").join(format!("{first}.json"))).unwrap();
        assert!(
            text.contains("\"request\":\"reboot\"") && text.contains("flannel-silent-skip"),
            "{text}"
        );
        let taken = take(&dir);
        let ids: Vec<&str> = taken.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, [first.as_str(), second.as_str(), third.as_str()]);
        let requests: Vec<Request> = taken.into_iter().map(|(_, r)| r.unwrap()).collect();
        assert_eq!(requests, [r, Request::FixManually, b]);
        assert!(take(&dir).is_empty(), "taken once");
        for p in &power {
            send(&dir, p).unwrap();
        }
        let taken: Vec<Request> = take(&dir).into_iter().map(|(_, r)| r.unwrap()).collect();
        assert_eq!(taken, power, "the power requests round-trip");
        let text = serde_json::to_string(&power[0]).unwrap();
        assert!(
            text.contains("\"request\":\"arm\"") && text.contains("stays-down"),
            "{text}"
        );
        std::fs::write(dir.join("requests").join("junk.json"), "{").unwrap();
        let junk = take(&dir);
        let why = rebootguard_errors::chain(junk[0].1.as_ref().unwrap_err());
        assert!(
            why.contains("unreadable request") && why.contains("junk.json: EOF"),
            "{why}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replies_are_waited_for_and_bounded() {
        let dir = temp_dir();
        let me = std::process::id();
        let answer = Reply {
            ok: true,
            applied: Some("2026-01-31T07:10:34.123Z".into()),
            lines: vec!["done".into()],
            error: None,
        };
        reply(&dir, "abc", &answer).unwrap();
        assert_eq!(
            wait_reply(&dir, "abc", me, Duration::from_secs(1)).unwrap(),
            answer
        );
        assert!(!dir.join("replies").join("abc.json").exists(), "consumed");
        let t = Instant::now();
        let late = wait_reply(&dir, "abc", me, Duration::from_millis(100));
        assert!(matches!(late, Err(WaitError::Timeout(..))), "{late:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
        // A pid that cannot exist: the lab is gone.
        let gone = wait_reply(&dir, "abc", u32::MAX, Duration::from_secs(5));
        assert!(matches!(gone, Err(WaitError::LabGone(_))), "{gone:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn instants_have_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_769_843_434_120);
        assert_eq!(rfc3339_ms(timestamp(t)), "2026-01-31T07:10:34.120Z");
        let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(1_769_843_434);
        assert_eq!(rfc3339_ms(timestamp(whole)), "2026-01-31T07:10:34.000Z");
    }
}
