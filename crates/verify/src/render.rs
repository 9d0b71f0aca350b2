//! The verdict for people (a node × check table, then each failing node's
//! first problem with its evidence) and for programs (versioned JSON).

use std::fmt::Write as _;

use serde::Serialize;

use crate::judge::{Check, Status, Verdict};

/// The schema version of [`json`].
pub const JSON_VERSION: u32 = 1;

fn mark(status: Status) -> &'static str {
    match status {
        Status::Pass => "ok",
        Status::Fail => "FAIL",
        Status::Skip => "-",
        Status::Unknown => "?",
    }
}

/// The table and the details under it.
pub fn text(verdict: &Verdict) -> String {
    let mut out = String::new();
    let width = verdict
        .nodes
        .iter()
        .map(|r| r.node.len())
        .chain(std::iter::once("NODE".len()))
        .max()
        .unwrap_or(4);
    let _ = write!(out, "{:width$}", "NODE");
    for c in Check::ALL {
        let _ = write!(out, "  {:8}", c.name().to_ascii_uppercase());
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    for row in &verdict.nodes {
        let _ = write!(out, "{:width$}", row.node);
        for cell in &row.checks {
            let _ = write!(out, "  {:8}", mark(cell.status));
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    for row in &verdict.nodes {
        let Some(cell) = row.first_problem() else {
            continue;
        };
        let _ = write!(
            out,
            "\n{}: {} {}: {}\n",
            row.node,
            cell.check.name(),
            if cell.status == Status::Fail {
                "failed"
            } else {
                "unknown"
            },
            cell.detail
        );
        for e in &cell.evidence {
            let _ = writeln!(out, "  {e}");
        }
        // Later failures on the same node are consequences, but say them.
        for later in row
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail && c.check != cell.check)
        {
            let _ = writeln!(
                out,
                "  also {} failed: {}",
                later.check.name(),
                later.detail
            );
            for e in &later.evidence {
                let _ = writeln!(out, "    {e}");
            }
        }
    }
    let count = |s: Status| verdict.nodes.iter().filter(|r| r.status() == s).count();
    let total = verdict.nodes.len();
    let summary = match verdict.status() {
        Status::Pass | Status::Skip => format!("\nverify passed: {total} of {total} nodes work\n"),
        Status::Fail => format!(
            "\nverify failed: {} of {total} nodes broken{}\n",
            count(Status::Fail),
            match count(Status::Unknown) {
                0 => String::new(),
                n => format!(", {n} could not be verified"),
            }
        ),
        Status::Unknown => format!(
            "\nverify could not verify {} of {total} nodes\n",
            count(Status::Unknown)
        ),
    };
    out.push_str(&summary);
    out
}

#[derive(Serialize)]
struct Json<'a> {
    version: u32,
    run: &'a str,
    namespace: &'a str,
    status: Status,
    passed: bool,
    #[serde(flatten)]
    verdict: &'a Verdict,
}

/// The verdict as JSON: `version`, `run`, `namespace`, `status`, `passed`,
/// `end`, and `nodes[]` with `node` and `checks[]` (`check`, `status`,
/// `detail`, `evidence`).
pub fn json(verdict: &Verdict, run: &str, namespace: &str) -> String {
    let doc = Json {
        version: JSON_VERSION,
        run,
        namespace,
        status: verdict.status(),
        passed: verdict.exit_code() == 0,
        verdict,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{Cell, End, Row};

    fn cell(check: Check, status: Status, detail: &str) -> Cell {
        Cell {
            check,
            status,
            detail: detail.into(),
            evidence: vec![],
        }
    }

    fn verdict() -> Verdict {
        let mut sandbox = cell(
            Check::Sandbox,
            Status::Fail,
            "no pod network: flannel subnet.env missing",
        );
        sandbox
            .evidence
            .push("Failed to create pod sandbox: ...".into());
        let mut peers = cell(Check::Peers, Status::Fail, "0 of 1 peers: 1 unreachable");
        peers
            .evidence
            .push("boromir (10.42.0.5): connection refused".into());
        Verdict {
            nodes: vec![
                Row {
                    node: "boromir".into(),
                    checks: vec![
                        sandbox,
                        cell(Check::PodIp, Status::Skip, "no pod network"),
                        cell(Check::Dns, Status::Skip, "no pod network"),
                        cell(Check::Peers, Status::Skip, "no pod network"),
                    ],
                },
                Row {
                    node: "samwise".into(),
                    checks: vec![
                        cell(Check::Sandbox, Status::Pass, "pod got 10.42.1.5"),
                        cell(Check::PodIp, Status::Pass, "ok"),
                        cell(Check::Dns, Status::Fail, "kubernetes.default: no such host"),
                        peers,
                    ],
                },
                Row {
                    node: "theoden".into(),
                    checks: Check::ALL
                        .iter()
                        .map(|c| cell(*c, Status::Pass, "ok"))
                        .collect(),
                },
            ],
            end: End::Settled,
        }
    }

    #[test]
    fn the_table_names_each_broken_node_and_its_evidence() {
        let t = text(&verdict());
        assert_eq!(
            t,
            "NODE     SANDBOX   POD-IP    DNS       PEERS\n\
             boromir  FAIL      -         -         -\n\
             samwise  ok        ok        FAIL      FAIL\n\
             theoden  ok        ok        ok        ok\n\
             \n\
             boromir: sandbox failed: no pod network: flannel subnet.env missing\n  \
             Failed to create pod sandbox: ...\n\
             \n\
             samwise: dns failed: kubernetes.default: no such host\n  \
             also peers failed: 0 of 1 peers: 1 unreachable\n    \
             boromir (10.42.0.5): connection refused\n\
             \n\
             verify failed: 2 of 3 nodes broken\n"
        );
    }

    #[test]
    fn summaries_for_pass_and_unknown() {
        let mut v = verdict();
        v.nodes.truncate(0);
        assert!(text(&v).ends_with("verify could not verify 0 of 0 nodes\n"));
        let mut v = verdict();
        v.nodes.remove(0);
        v.nodes.remove(0);
        assert!(text(&v).ends_with("verify passed: 1 of 1 nodes work\n"));
        let mut v = verdict();
        v.nodes[2].checks[1].status = Status::Unknown;
        assert!(text(&v).ends_with("2 of 3 nodes broken, 1 could not be verified\n"));
        v.nodes[2].checks[1].evidence.push("log line".into());
        assert!(text(&v).contains("theoden: pod-ip unknown: ok\n  log line\n"));
    }

    #[test]
    fn json_carries_every_cell() {
        let v: serde_json::Value =
            serde_json::from_str(&json(&verdict(), "0a1b", "rebootguard")).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["run"], "0a1b");
        assert_eq!(v["status"], "fail");
        assert_eq!(v["passed"], false);
        assert_eq!(v["end"], "settled");
        assert_eq!(v["nodes"][0]["node"], "boromir");
        assert_eq!(v["nodes"][0]["checks"][0]["check"], "sandbox");
        assert_eq!(v["nodes"][0]["checks"][0]["status"], "fail");
        assert_eq!(
            v["nodes"][0]["checks"][0]["evidence"][0],
            "Failed to create pod sandbox: ..."
        );
        assert_eq!(v["nodes"][1]["checks"][1]["check"], "pod-ip");
        assert!(v["nodes"][2]["checks"][0].get("evidence").is_none());
    }
}
