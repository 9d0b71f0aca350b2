//! Renderers: a [`Report`] to text. All pure; the caller decides colour
//! (honour `NO_COLOR` and whether stdout is a terminal) and where it goes.
//! Text from the cluster is shown inert ([`Report::for_terminal`]).

use std::fmt::Write as _;

use crate::report::{Evidence, Fix, Impact, Report, Root, Verdict};

/// Output formats the CLI offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Terminal report.
    Human,
    /// Versioned JSON (`docs/diagnose.md`).
    Json,
    /// Markdown for a post-mortem.
    Markdown,
    /// The causal graph as a Mermaid flowchart.
    Mermaid,
    /// The causal graph as Graphviz DOT.
    Dot,
}

/// A format name [`Format`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format {0:?}; use human, json, markdown, mermaid or dot")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        match s {
            "human" | "text" => Ok(Format::Human),
            "json" => Ok(Format::Json),
            "markdown" | "md" => Ok(Format::Markdown),
            "mermaid" => Ok(Format::Mermaid),
            "dot" => Ok(Format::Dot),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

/// Renders in the given format; `color` only affects [`Format::Human`].
pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Human => human(report, color),
        Format::Json => json(report),
        Format::Markdown => markdown(report),
        Format::Mermaid => mermaid(report),
        Format::Dot => dot(report),
    }
}

/// Pretty JSON with a trailing newline.
pub fn json(report: &Report) -> String {
    // Serialising plain data with string keys cannot fail.
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn red(&self, t: &str) -> String {
        self.wrap("1;31", t)
    }
    fn green(&self, t: &str) -> String {
        self.wrap("1;32", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.wrap("33", t)
    }
    fn cyan(&self, t: &str) -> String {
        self.wrap("36", t)
    }
    fn dim(&self, t: &str) -> String {
        self.wrap("2", t)
    }
    fn bold(&self, t: &str) -> String {
        self.wrap("1", t)
    }
}

const MAX_PODS_HUMAN: usize = 4;
/// Roots shown in full in the terminal; the rest get one line each.
const DETAILED_ROOTS: usize = 10;

fn time(t: Option<jiff::Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
}

/// `3m34s ago` from `now` (the report's time, never the clock).
fn ago(now: jiff::Timestamp, t: jiff::Timestamp) -> String {
    let secs = now.duration_since(t).as_secs();
    if secs < 0 {
        return "in the future".into();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s ago"),
        (0, _) => format!("{m}m{s:02}s ago"),
        _ if h < 48 => format!("{h}h{m:02}m ago"),
        _ => format!("{}d ago", h / 24),
    }
}

fn fmt_evidence(e: &Evidence, now: jiff::Timestamp) -> String {
    let count = if e.count > 1 {
        format!(" ×{}", e.count)
    } else {
        String::new()
    };
    let when = match (e.first_seen, e.last_seen) {
        (Some(a), Some(b)) if a != b => format!(" ({a} → {b}, last {})", ago(now, b)),
        (Some(a), _) | (None, Some(a)) => format!(" ({a}, {})", ago(now, a)),
        _ => String::new(),
    };
    format!("{} {}{count}{when}", e.object, e.reason)
}

fn fix_line(f: &Fix) -> String {
    match &f.run_on {
        Some(n) if f.as_root => format!("[on {n}, as root] {}", f.description),
        Some(n) => format!("[on {n}] {}", f.description),
        None => f.description.clone(),
    }
}

/// The terminal report: first domino first, impact as a tree.
pub fn human(report: &Report, color: bool) -> String {
    let report = &report.for_terminal();
    let p = Paint { on: color };
    let s = &report.summary;
    let mut out = String::new();
    if report.verdict == Verdict::Healthy {
        let _ = writeln!(
            out,
            "{} {} nodes Ready, {}/{} pods healthy, nothing stale{}",
            p.green("✓ healthy:"),
            s.nodes_ready,
            s.pods_healthy,
            s.pods,
            degraded_suffix(report)
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{}: {} root cause(s), {} stale pod(s) · {} nodes ({} Ready), {} pods ({} healthy, {} affected)",
        p.red("✗ problems found"),
        s.roots,
        s.stale_pods,
        s.nodes,
        s.nodes_ready,
        s.pods,
        s.pods_healthy,
        s.pods_affected
    );
    for m in &report.degraded {
        let _ = writeln!(
            out,
            "{} could not collect {}: {}",
            p.yellow("degraded:"),
            m.kind,
            m.reason
        );
    }
    for n in &report.notes {
        let _ = writeln!(out, "{} {n}", p.yellow("note:"));
    }
    for r in report.roots.iter().take(DETAILED_ROOTS) {
        out.push('\n');
        human_root(&mut out, r, &p, report.now);
    }
    if report.roots.len() > DETAILED_ROOTS {
        let _ = writeln!(
            out,
            "\n{} (details with --output json or markdown):",
            p.bold(&format!(
                "{} more root cause(s)",
                report.roots.len() - DETAILED_ROOTS
            ))
        );
        for r in &report.roots[DETAILED_ROOTS..] {
            let _ = writeln!(
                out,
                "  {} {} ({} pods)",
                p.red(&format!("#{}", r.rank)),
                r.title,
                r.blast_radius.pods
            );
        }
    }
    if !report.stale.pods.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "{} {} pod(s) left by reboots: noise to clean, not causes",
            p.bold("Stale pods:"),
            report.stale.pods.len()
        );
        for e in &report.stale.pods {
            let action = match e.action {
                crate::clean::Action::ForceDelete => "force-delete",
                crate::clean::Action::Delete => "delete",
                crate::clean::Action::Keep => "keep",
            };
            let _ = writeln!(
                out,
                "  {}/{} on {} ({}) → {}",
                e.namespace,
                e.name,
                e.node,
                e.status,
                p.bold(action)
            );
        }
        for f in &report.stale.fix {
            if let Some(c) = &f.command {
                let _ = writeln!(out, "  {}", p.cyan(&format!("$ {c}")));
            }
        }
    }
    out
}

fn degraded_suffix(report: &Report) -> String {
    if report.degraded.is_empty() {
        String::new()
    } else {
        let kinds: Vec<&str> = report.degraded.iter().map(|m| m.kind.as_str()).collect();
        format!(" (degraded: could not collect {})", kinds.join(", "))
    }
}

fn human_root(out: &mut String, r: &Root, p: &Paint, now: jiff::Timestamp) {
    let _ = writeln!(
        out,
        "{} {}",
        p.red(&format!("#{}", r.rank)),
        p.bold(&r.title)
    );
    let b = &r.blast_radius;
    let _ = writeln!(
        out,
        "   {}",
        p.dim(&format!(
            "blast radius: {} pods, {} workloads, {} objects, {} nodes · first seen {} · last seen {}",
            b.pods,
            b.workloads,
            b.objects,
            b.nodes,
            time(r.first_seen),
            time(r.last_seen)
        ))
    );
    if !r.evidence.is_empty() {
        let _ = writeln!(out, "   evidence:");
        for e in &r.evidence {
            let _ = writeln!(out, "     {}", p.yellow(&fmt_evidence(e, now)));
            let _ = writeln!(out, "       {}", e.message);
        }
    }
    let _ = writeln!(out, "   impact:");
    let n = r.impact.len();
    for (i, imp) in r.impact.iter().enumerate() {
        human_tree(out, imp, "     ", i + 1 == n, p);
    }
    if !r.fix.is_empty() {
        let _ = writeln!(out, "   fix:");
        for (i, f) in r.fix.iter().enumerate() {
            let _ = writeln!(out, "     {}. {}", i + 1, fix_line(f));
            if let Some(c) = &f.command {
                let _ = writeln!(out, "        {}", p.cyan(&format!("$ {c}")));
            }
        }
    }
}

fn human_tree(out: &mut String, imp: &Impact, prefix: &str, last: bool, p: &Paint) {
    let branch = if last { "└─ " } else { "├─ " };
    let _ = writeln!(out, "{prefix}{}{}", p.dim(branch), imp.title);
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    let shown = imp.pods.len().min(MAX_PODS_HUMAN);
    for pod in &imp.pods[..shown] {
        let _ = writeln!(
            out,
            "{child_prefix}{} pod {}/{} on {} ({})",
            p.dim("·"),
            pod.namespace,
            pod.name,
            if pod.node.is_empty() {
                "no node"
            } else {
                &pod.node
            },
            pod.status
        );
    }
    if imp.pods.len() > shown {
        let _ = writeln!(
            out,
            "{child_prefix}{}",
            p.dim(&format!("· … and {} more pod(s)", imp.pods.len() - shown))
        );
    }
    let n = imp.children.len();
    for (i, c) in imp.children.iter().enumerate() {
        human_tree(out, c, &child_prefix, i + 1 == n, p);
    }
}

/// Markdown for a post-mortem.
pub fn markdown(report: &Report) -> String {
    let report = &report.for_terminal();
    let s = &report.summary;
    let mut out = String::new();
    let _ = writeln!(out, "# Diagnosis ({})\n", report.now);
    if report.verdict == Verdict::Healthy {
        let _ = writeln!(
            out,
            "**Healthy**: {} nodes Ready, {}/{} pods healthy, nothing stale{}.",
            s.nodes_ready,
            s.pods_healthy,
            s.pods,
            degraded_suffix(report)
        );
        return out;
    }
    let _ = writeln!(
        out,
        "**{} root cause(s)**, {} stale pod(s). {} nodes ({} Ready), {} pods ({} healthy, {} affected).\n",
        s.roots, s.stale_pods, s.nodes, s.nodes_ready, s.pods, s.pods_healthy, s.pods_affected
    );
    for m in &report.degraded {
        let _ = writeln!(
            out,
            "> Degraded: could not collect {}: {}",
            m.kind, m.reason
        );
    }
    for r in &report.roots {
        let _ = writeln!(out, "## {}. {}\n", r.rank, md_escape(&r.title));
        let b = &r.blast_radius;
        let _ = writeln!(
            out,
            "Blast radius: {} pods, {} workloads, {} objects, {} nodes. First seen {}, last seen {}.\n",
            b.pods,
            b.workloads,
            b.objects,
            b.nodes,
            time(r.first_seen),
            time(r.last_seen)
        );
        if !r.evidence.is_empty() {
            let _ = writeln!(
                out,
                "### Evidence\n\n| object | reason | count | first seen | last seen | message |\n|---|---|---|---|---|---|"
            );
            for e in &r.evidence {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    md_cell(&e.object.to_string()),
                    md_cell(&e.reason),
                    e.count,
                    time(e.first_seen),
                    time(e.last_seen),
                    md_cell(&e.message)
                );
            }
            out.push('\n');
        }
        let _ = writeln!(out, "### Impact\n");
        for imp in &r.impact {
            md_tree(&mut out, imp, 0);
        }
        out.push('\n');
        if !r.fix.is_empty() {
            let _ = writeln!(out, "### Fix\n");
            for (i, f) in r.fix.iter().enumerate() {
                let _ = writeln!(out, "{}. {}", i + 1, md_escape(&fix_line(f)));
                if let Some(c) = &f.command {
                    let _ = writeln!(out, "   ```sh\n   {c}\n   ```");
                }
            }
            out.push('\n');
        }
    }
    if !report.stale.pods.is_empty() {
        let _ = writeln!(
            out,
            "## Stale pods (noise to clean)\n\n| pod | node | status | action | reason |\n|---|---|---|---|---|"
        );
        for e in &report.stale.pods {
            let _ = writeln!(
                out,
                "| {}/{} | {} | {} | {:?} | {} |",
                e.namespace,
                e.name,
                e.node,
                e.status,
                e.action,
                md_cell(&e.reason)
            );
        }
        out.push('\n');
        for f in &report.stale.fix {
            if let Some(c) = &f.command {
                let _ = writeln!(out, "```sh\n{c}\n```");
            }
        }
    }
    out
}

fn md_tree(out: &mut String, imp: &Impact, depth: usize) {
    let indent = "  ".repeat(depth);
    let _ = writeln!(out, "{indent}- {}", md_escape(&imp.title));
    const MAX: usize = 10;
    for pod in imp.pods.iter().take(MAX) {
        let _ = writeln!(
            out,
            "{indent}  - pod `{}/{}` on {} ({})",
            pod.namespace,
            pod.name,
            if pod.node.is_empty() {
                "no node".to_string()
            } else {
                format!("`{}`", pod.node)
            },
            pod.status
        );
    }
    if imp.pods.len() > MAX {
        let _ = writeln!(
            out,
            "{indent}  - … and {} more pod(s)",
            imp.pods.len() - MAX
        );
    }
    for c in &imp.children {
        md_tree(out, c, depth + 1);
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('*', "\\*")
        .replace('_', "\\_")
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The causal graph as a Mermaid flowchart (cause → consequence).
pub fn mermaid(report: &Report) -> String {
    let report = &report.for_terminal();
    let mut out = String::from("flowchart LR\n");
    let ids: std::collections::HashMap<&str, usize> = report
        .graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    for (i, n) in report.graph.nodes.iter().enumerate() {
        let label = n.title.replace('"', "#quot;").replace('\n', " ");
        if n.root {
            let _ = writeln!(out, "  n{i}[[\"{label}\"]]:::root");
        } else {
            let _ = writeln!(out, "  n{i}[\"{label}\"]");
        }
    }
    for e in &report.graph.edges {
        if let (Some(f), Some(t)) = (ids.get(e.from.as_str()), ids.get(e.to.as_str())) {
            let _ = writeln!(
                out,
                "  n{f} -->|\"{}\"| n{t}",
                e.reason.replace('"', "#quot;")
            );
        }
    }
    out.push_str("  classDef root fill:#fdd,stroke:#c00,stroke-width:2px\n");
    out
}

/// The causal graph as Graphviz DOT.
pub fn dot(report: &Report) -> String {
    let report = &report.for_terminal();
    fn q(s: &str) -> String {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', " ")
        )
    }
    let mut out = String::from(
        "digraph diagnose {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n",
    );
    for n in &report.graph.nodes {
        let style = if n.root {
            ", color=red, penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(out, "  {} [label={}{style}];", q(&n.id), q(&n.title));
    }
    for e in &report.graph.edges {
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            q(&e.from),
            q(&e.to),
            q(&e.reason)
        );
    }
    out.push_str("}\n");
    out
}
