//! The human table of a check report.

use super::{Report, Status, Verdict};

impl Report {
    /// One row per check, evidence and fix indented under a failing one.
    pub fn render(&self) -> String {
        let mut out = format!("node {}\n\n", self.node);
        out.push_str(&format!("{:<15} {:<7} {}\n", "CHECK", "STATUS", "SUMMARY"));
        for check in &self.checks {
            out.push_str(&format!(
                "{:<15} {:<7} {}\n",
                check.id.name(),
                label(check.status),
                check.summary
            ));
            for line in &check.evidence {
                out.push_str(&format!("{:<23} - {line}\n", ""));
            }
            if let Some(fix) = &check.fix
                && check.status != Status::Ok
            {
                out.push_str(&format!("{:<23} fix: {fix}\n", ""));
            }
        }
        out.push('\n');
        out.push_str(&match (self.verdict, self.first_failure()) {
            (Verdict::Fail, Some(first)) => format!(
                "NOT READY: pods on this node cannot get networking; first failure: {} ({})\n",
                first.id.name(),
                first.reason
            ),
            (Verdict::Unknown, _) => {
                "UNKNOWN: nothing failed, but some checks could not run\n".to_owned()
            }
            _ => "READY: pods on this node can get networking\n".to_owned(),
        });
        out
    }
}

fn label(status: Status) -> &'static str {
    match status {
        Status::Ok => "OK",
        Status::Skip => "SKIP",
        Status::Warn => "WARN",
        Status::Unknown => "UNKNOWN",
        Status::Fail => "FAIL",
    }
}
