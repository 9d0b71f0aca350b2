//! The rollout's status line on a terminal: one line at the bottom of
//! stderr, redrawn in place (`\r`) with the node (i/N), its phase, the
//! time in that phase and what it waits for; every other update is
//! printed above it as a plain line, as without a terminal. A thin
//! presenter over the rollout's `Update` stream: it keeps no state the
//! stream does not give it.

use std::time::{Duration, Instant};

use rebootguard_reboot::Update;

/// Clear the line, go to its start.
const CLEAR: &str = "\r\x1b[2K";

/// What the status line shows.
#[derive(Debug, Default)]
pub struct Status {
    nodes: Vec<String>,
    node: Option<String>,
    phase: &'static str,
    since: Option<Instant>,
    waiting: String,
}

impl Status {
    /// Takes `update` in at `now`; returns what to write to stderr: the
    /// update's own line (`line`, as printed without a terminal) above
    /// the redrawn status.
    pub fn update(&mut self, update: &Update, line: &str, now: Instant) -> String {
        match update.event {
            "plan" => {
                self.nodes = update.data["nodes"]
                    .as_array()
                    .map(|n| {
                        n.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            "phase" => {
                if update.node != self.node {
                    self.node.clone_from(&update.node);
                }
                self.phase = update.phase.unwrap_or("");
                self.since = Some(now);
                self.waiting.clear();
            }
            "note" if update.reason == Some("RolloutWaiting") => {
                self.waiting.clone_from(&update.message);
            }
            "timeline" | "stopped" | "done" => {
                self.node = None;
                self.since = None;
            }
            _ => {}
        }
        // Waiting notes live in the status line; everything else scrolls.
        let mut out = String::from(CLEAR);
        if update.reason != Some("RolloutWaiting") && update.event != "phase" {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&self.line(now));
        out
    }

    /// The status line redrawn at `now` (empty between nodes).
    pub fn tick(&self, now: Instant) -> String {
        format!("{CLEAR}{}", self.line(now))
    }

    /// Clears the status line for good.
    pub fn clear(&self) -> &'static str {
        CLEAR
    }

    fn line(&self, now: Instant) -> String {
        let (Some(node), Some(since)) = (&self.node, self.since) else {
            return String::new();
        };
        let position = self
            .nodes
            .iter()
            .position(|n| n == node)
            .map_or_else(String::new, |i| {
                format!("[{}/{}] ", i + 1, self.nodes.len())
            });
        let secs = now.saturating_duration_since(since).as_secs();
        let mut line = format!(
            "{position}{node} {} {}:{:02}",
            self.phase,
            secs / 60,
            secs % 60
        );
        if !self.waiting.is_empty() {
            line.push_str(" · ");
            line.push_str(&self.waiting);
        }
        // One terminal line: never wrap (a wrapped line cannot be redrawn).
        let width = terminal_width().saturating_sub(1);
        if line.chars().count() > width {
            line = line.chars().take(width.saturating_sub(1)).collect();
            line.push('…');
        }
        line
    }
}

/// `COLUMNS`, else 80.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}

/// How often the status line's clock moves.
pub const TICK: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    fn update(event: &'static str, node: Option<&str>, message: &str) -> Update {
        Update::new(event, node, message)
    }

    #[test]
    fn the_line_shows_the_node_its_phase_and_the_time_in_it() {
        let t0 = Instant::now();
        let mut status = Status::default();
        let mut plan = update("plan", None, "rollout r: samwise → theoden");
        plan.data = serde_json::json!({"nodes": ["samwise", "theoden"]});
        assert_eq!(
            status.update(&plan, "10:00:00 rollout r: samwise → theoden", t0),
            "\r\x1b[2K10:00:00 rollout r: samwise → theoden\n"
        );
        let mut phase = update("phase", Some("theoden"), "theoden: drain");
        phase.phase = Some("drain");
        assert_eq!(
            status.update(&phase, "unused", t0),
            "\r\x1b[2K[2/2] theoden drain 0:00",
            "a phase change only redraws"
        );
        let mut wait = update("note", Some("theoden"), "draining: 2 pod(s) left");
        wait.reason = Some("RolloutWaiting");
        assert_eq!(
            status.update(&wait, "unused", t0),
            "\r\x1b[2K[2/2] theoden drain 0:00 · draining: 2 pod(s) left"
        );
        assert_eq!(
            status.tick(t0 + Duration::from_secs(75)),
            "\r\x1b[2K[2/2] theoden drain 1:15 · draining: 2 pod(s) left"
        );
        let mut asked = update("note", Some("theoden"), "reboot of theoden asked");
        asked.reason = Some("RolloutRebootAsked");
        let out = status.update(&asked, "10:01:15 theoden: reboot of theoden asked", t0);
        assert!(
            out.starts_with("\r\x1b[2K10:01:15 theoden: reboot of theoden asked\n[2/2] theoden"),
            "other notes scroll above: {out:?}"
        );
        let done = update("timeline", Some("theoden"), "theoden done");
        assert_eq!(
            status.update(&done, "10:02:00 theoden: theoden done", t0),
            "\r\x1b[2K10:02:00 theoden: theoden done\n"
        );
        assert_eq!(status.tick(t0), "\r\x1b[2K", "nothing between nodes");
    }
}
