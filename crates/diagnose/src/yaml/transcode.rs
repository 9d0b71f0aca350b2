//! kubectl's YAML straight to JSON, for the shapes kubectl prints.
//!
//! kubectl writes YAML through go-yaml: block mappings and sequences by
//! indentation, plain or quoted scalars (folded over several lines when
//! long), literal blocks (`|`, `|-`) for multi-line text, `{}` and `[]` for
//! empty collections; no anchors, tags, flow content or comments. This
//! reads exactly that, byte by byte, a few times faster than a general YAML
//! parser, and gives up (`None`) on anything else, so the caller can parse
//! that item with the general parser: it never guesses. Plain scalars
//! resolve as YAML 1.2's core schema does (null, booleans, integers,
//! floats, else strings); the few that YAML 1.1 would read otherwise
//! (`yes`, `off`, ...) make it give up too.

use std::fmt::Write as _;

/// One line of the input: its indentation and its text after it.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// Why the fast path gave up; the caller only needs to know that it did.
struct GiveUp;

type Result<T> = std::result::Result<T, GiveUp>;

/// The JSON of one list item (`- key: value` and its indented lines),
/// appended to `out`; `None` (with `out` unchanged) when the item uses
/// YAML this does not read.
pub(crate) fn item(yaml: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let text = std::str::from_utf8(yaml).ok()?;
    let lines: Vec<Line<'_>> = text
        .split('\n')
        .map(|l| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            let body = l.trim_start_matches(' ');
            Line {
                indent: l.len() - body.len(),
                text: body,
            }
        })
        .collect();
    let start = out.len();
    let mut p = Parser {
        lines,
        at: 0,
        out: String::new(),
    };
    let ok = p.document();
    match ok {
        Ok(()) => {
            out.extend_from_slice(p.out.as_bytes());
            Some(())
        }
        Err(GiveUp) => {
            out.truncate(start);
            None
        }
    }
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    /// The next line to read.
    at: usize,
    out: String,
}

impl<'a> Parser<'a> {
    /// The item: a one-entry block sequence at column 0.
    fn document(&mut self) -> Result<()> {
        self.skip_blank();
        let first = self.line().ok_or(GiveUp)?;
        if first.indent != 0 || !(first.text == "-" || first.text.starts_with("- ")) {
            return Err(GiveUp);
        }
        self.at += 1;
        self.entry_content(0, first.text)?;
        self.skip_blank();
        // Exactly one entry.
        if self.at < self.lines.len() {
            return Err(GiveUp);
        }
        Ok(())
    }

    fn line(&self) -> Option<Line<'a>> {
        self.lines.get(self.at).copied()
    }

    fn skip_blank(&mut self) {
        while self.line().is_some_and(|l| l.text.is_empty()) {
            self.at += 1;
        }
    }

    /// The next non-blank line, without consuming it.
    fn peek(&mut self) -> Option<Line<'a>> {
        self.skip_blank();
        self.line()
    }

    /// A node whose first text is `text` at column `col` of the current
    /// line (already consumed up to there); `parent` is the indentation
    /// of the structure holding it.
    fn node(&mut self, col: usize, text: &'a str, parent: usize) -> Result<()> {
        if text == "-" || text.starts_with("- ") {
            return self.sequence(col, text);
        }
        if key_end(text).is_some() {
            return self.mapping(col, text);
        }
        self.scalar_value(text, parent)
    }

    /// A block sequence whose first entry starts with `text` at `col`.
    fn sequence(&mut self, col: usize, text: &'a str) -> Result<()> {
        self.out.push('[');
        let mut first = true;
        let mut text = text;
        loop {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.entry_content(col, text)?;
            match self.peek() {
                Some(l) if l.indent == col && (l.text == "-" || l.text.starts_with("- ")) => {
                    self.at += 1;
                    text = l.text;
                }
                Some(l) if l.indent > col => return Err(GiveUp),
                _ => break,
            }
        }
        self.out.push(']');
        Ok(())
    }

    /// One entry `- ...` at `col` (its line consumed).
    fn entry_content(&mut self, col: usize, text: &'a str) -> Result<()> {
        let rest = text.strip_prefix('-').ok_or(GiveUp)?;
        if rest.is_empty() {
            // `-` alone: the entry is on the next, more indented lines.
            return self.nested(col);
        }
        let rest = rest.strip_prefix(' ').ok_or(GiveUp)?;
        let skipped = rest.len() - rest.trim_start_matches(' ').len();
        let rest = &rest[skipped..];
        self.node(col + 2 + skipped, rest, col)
    }

    /// A value on the lines after a key or `-` whose own line held none:
    /// a more indented node, a sequence at the key's indentation
    /// (go-yaml's `key:\n- a`), or null.
    fn nested(&mut self, parent: usize) -> Result<()> {
        match self.peek() {
            Some(l) if l.indent > parent => {
                self.at += 1;
                self.node(l.indent, l.text, parent)
            }
            _ => {
                self.out.push_str("null");
                Ok(())
            }
        }
    }

    /// A block mapping whose first line's text is `text` at `col`.
    fn mapping(&mut self, col: usize, text: &'a str) -> Result<()> {
        self.out.push('{');
        let mut text = text;
        let mut first = true;
        loop {
            if !first {
                self.out.push(',');
            }
            first = false;
            let end = key_end(text).ok_or(GiveUp)?;
            let key = key(&text[..end])?;
            write_string(&mut self.out, &key);
            self.out.push(':');
            let value = text[end + 1..].trim_start_matches(' ');
            if value.is_empty() {
                // Value below: more indented, or a sequence at this indent.
                match self.peek() {
                    Some(l) if l.indent == col && (l.text == "-" || l.text.starts_with("- ")) => {
                        self.at += 1;
                        self.sequence(col, l.text)?;
                    }
                    _ => self.nested(col)?,
                }
            } else {
                if value.starts_with("- ") || value == "-" {
                    return Err(GiveUp); // `key: - a` is not YAML
                }
                if key_end(value).is_some() && !is_quoted(value) {
                    return Err(GiveUp); // `a: b: c`
                }
                self.scalar_value(value, col)?;
            }
            match self.peek() {
                Some(l) if l.indent == col && !(l.text == "-" || l.text.starts_with("- ")) => {
                    self.at += 1;
                    text = l.text;
                }
                Some(l) if l.indent > col => return Err(GiveUp),
                _ => break,
            }
        }
        self.out.push('}');
        Ok(())
    }

    /// A scalar (or `{}`/`[]`) starting with `text`, continued on lines
    /// indented more than `parent`.
    fn scalar_value(&mut self, text: &'a str, parent: usize) -> Result<()> {
        // Empty only after trailing spaces (`- ` ending a line), which
        // go-yaml never prints.
        let Some(&first) = text.as_bytes().first() else {
            return Err(GiveUp);
        };
        match first {
            b'|' => return self.literal(text, parent),
            b'"' => {
                let s = self.double_quoted(text, parent)?;
                write_string(&mut self.out, &s);
                return Ok(());
            }
            b'\'' => {
                let s = self.single_quoted(text, parent)?;
                write_string(&mut self.out, &s);
                return Ok(());
            }
            b'{' | b'[' => {
                return match text {
                    "{}" => {
                        self.out.push_str("{}");
                        Ok(())
                    }
                    "[]" => {
                        self.out.push_str("[]");
                        Ok(())
                    }
                    _ => Err(GiveUp),
                };
            }
            // Indicators go-yaml never starts a plain scalar with.
            b'&' | b'*' | b'!' | b'>' | b'%' | b'@' | b'`' | b'#' | b'?' | b',' | b']' | b'}' => {
                return Err(GiveUp);
            }
            _ => {}
        }
        let mut plain = text.to_string();
        let mut folded = false;
        // Continuation lines: more indented than the parent, folded.
        let mut blank = 0;
        while let Some(l) = self.line() {
            if l.text.is_empty() {
                blank += 1;
                self.at += 1;
                continue;
            }
            if l.indent <= parent {
                break;
            }
            if l.text.starts_with("- ") || key_end(l.text).is_some() || l.text.starts_with('#') {
                return Err(GiveUp);
            }
            if blank == 0 {
                plain.push(' ');
            } else {
                plain.extend(std::iter::repeat_n('\n', blank));
            }
            blank = 0;
            plain.push_str(l.text);
            folded = true;
            self.at += 1;
        }
        // Give the blank lines back: they belong to what follows.
        self.at -= blank;
        if plain.contains(" #") || plain.contains(": ") || plain.ends_with(':') {
            return Err(GiveUp);
        }
        let plain = plain.trim_end_matches(' ');
        if folded {
            write_string(&mut self.out, plain);
        } else {
            resolve_plain(plain, &mut self.out)?;
        }
        Ok(())
    }

    /// A literal block scalar (`|`, `|-`, `|+`, with an optional
    /// indentation digit), its lines those indented more than `parent`.
    fn literal(&mut self, header: &str, parent: usize) -> Result<()> {
        let mut chomp = b' ';
        let mut explicit = None;
        for b in header[1..].bytes() {
            match b {
                b'-' | b'+' if chomp == b' ' => chomp = b,
                b'1'..=b'9' if explicit.is_none() => explicit = Some(usize::from(b - b'0')),
                _ => return Err(GiveUp),
            }
        }
        let mut body: Vec<String> = Vec::new();
        let mut indent = explicit.map(|e| parent + e);
        // Leading blank lines and the content, up to a less indented line.
        while let Some(l) = self.line() {
            if l.text.is_empty() {
                // Spaces beyond the block's indentation are content.
                let extra = indent.map_or(0, |want| l.indent.saturating_sub(want));
                body.push(" ".repeat(extra));
                self.at += 1;
                continue;
            }
            let want = *indent.get_or_insert(l.indent);
            if l.indent < want || l.indent <= parent {
                break;
            }
            // Keep the spaces beyond the block's indentation.
            body.push(format!("{}{}", " ".repeat(l.indent - want), l.text));
            self.at += 1;
        }
        // Trailing blank lines are the block's only when chomping keeps them.
        let mut trailing = 0;
        while body.last().is_some_and(String::is_empty) {
            body.pop();
            trailing += 1;
        }
        let mut s = body.join("\n");
        match chomp {
            b'-' => {}
            b'+' => {
                if !body.is_empty() {
                    s.push('\n');
                }
                s.extend(std::iter::repeat_n('\n', trailing));
            }
            _ => {
                if !body.is_empty() {
                    s.push('\n');
                }
            }
        }
        write_string(&mut self.out, &s);
        Ok(())
    }

    /// A single-quoted scalar, possibly over several lines.
    fn single_quoted(&mut self, first: &str, parent: usize) -> Result<String> {
        let mut s = String::new();
        let mut text = &first[1..];
        loop {
            let mut chars = text.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|(_, c)| *c) == Some('\'') {
                        chars.next();
                        s.push('\'');
                        continue;
                    }
                    // The closing quote: nothing but spaces may follow.
                    if !text[i + 1..].trim_end_matches(' ').is_empty() {
                        return Err(GiveUp);
                    }
                    return Ok(s);
                }
                s.push(c);
            }
            text = self.continuation(&mut s, parent)?;
        }
    }

    /// A double-quoted scalar, possibly over several lines.
    fn double_quoted(&mut self, first: &str, parent: usize) -> Result<String> {
        let mut s = String::new();
        let mut text = &first[1..];
        loop {
            let mut chars = text.char_indices();
            let mut escaped_break = false;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        if !text[i + 1..].trim_end_matches(' ').is_empty() {
                            return Err(GiveUp);
                        }
                        return Ok(s);
                    }
                    '\\' => match chars.next() {
                        None => escaped_break = true,
                        Some((_, e)) => match e {
                            '0' => s.push('\0'),
                            'a' => s.push('\x07'),
                            'b' => s.push('\x08'),
                            't' | '\t' => s.push('\t'),
                            'n' => s.push('\n'),
                            'v' => s.push('\x0b'),
                            'f' => s.push('\x0c'),
                            'r' => s.push('\r'),
                            'e' => s.push('\x1b'),
                            ' ' => s.push(' '),
                            '"' => s.push('"'),
                            '/' => s.push('/'),
                            '\\' => s.push('\\'),
                            'N' => s.push('\u{85}'),
                            '_' => s.push('\u{a0}'),
                            'L' => s.push('\u{2028}'),
                            'P' => s.push('\u{2029}'),
                            'x' | 'u' | 'U' => {
                                let n = match e {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                                if hex.len() != n {
                                    return Err(GiveUp);
                                }
                                let code = u32::from_str_radix(&hex, 16).map_err(|_| GiveUp)?;
                                s.push(char::from_u32(code).ok_or(GiveUp)?);
                            }
                            _ => return Err(GiveUp),
                        },
                    },
                    c => s.push(c),
                }
            }
            if escaped_break {
                // `\` at the end of a line: the break is dropped, and so
                // are the next line's leading spaces.
                let l = self.line().ok_or(GiveUp)?;
                if l.indent <= parent && !l.text.is_empty() {
                    return Err(GiveUp);
                }
                self.at += 1;
                text = l.text;
                continue;
            }
            // Trailing spaces before a folded break are dropped.
            let kept = s.trim_end_matches(' ').len();
            s.truncate(kept);
            text = self.continuation(&mut s, parent)?;
        }
    }

    /// Folds a line break inside a quoted scalar: one break becomes a
    /// space, each blank line a `\n`; returns the next line's text.
    fn continuation(&mut self, s: &mut String, parent: usize) -> Result<&'a str> {
        let mut blank = 0;
        loop {
            let l = self.line().ok_or(GiveUp)?;
            self.at += 1;
            if l.text.is_empty() {
                blank += 1;
                continue;
            }
            if l.indent <= parent {
                return Err(GiveUp);
            }
            if blank == 0 {
                s.push(' ');
            } else {
                s.extend(std::iter::repeat_n('\n', blank));
            }
            return Ok(l.text);
        }
    }
}

fn is_quoted(text: &str) -> bool {
    text.starts_with('"') || text.starts_with('\'')
}

/// Where the `:` ending a mapping key sits in `text` (a `: ` or a final
/// `:`), for plain keys and quoted ones.
fn key_end(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let from = match b.first()? {
        q @ (b'"' | b'\'') => {
            // The closing quote, skipping escapes ('' or \").
            let mut i = 1;
            loop {
                match b.get(i)? {
                    b'\\' if *q == b'"' => i += 2,
                    c if c == q => {
                        if *q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                        } else {
                            break i + 1;
                        }
                    }
                    _ => i += 1,
                }
            }
        }
        b'-' if b.get(1) == Some(&b' ') => return None,
        _ => 0,
    };
    let rest = &text[from..];
    let at = rest
        .find(": ")
        .or_else(|| rest.ends_with(':').then(|| rest.len() - 1))?;
    if from > 0 && at != 0 {
        return None; // text between a quoted key and its colon
    }
    Some(from + at)
}

/// A mapping key's text.
fn key(raw: &str) -> Result<String> {
    let raw = raw.trim_end_matches(' ');
    // A quoted key is one line: a parser without lines cannot continue it.
    let mut one_line = Parser {
        lines: Vec::new(),
        at: 0,
        out: String::new(),
    };
    match raw.as_bytes().first() {
        Some(b'"') => one_line.double_quoted(raw, 0),
        Some(b'\'') => one_line.single_quoted(raw, 0),
        Some(
            b'&' | b'*' | b'!' | b'?' | b'{' | b'[' | b'<' | b'|' | b'>' | b'#' | b'%' | b'@'
            | b'`',
        )
        | None => Err(GiveUp),
        _ => Ok(raw.to_string()),
    }
}

/// A one-line plain scalar as YAML 1.2's core schema reads it. Scalars
/// YAML versions read differently (`yes`, `0x1F`, `010`, `1_000`, `1:30`,
/// `.inf`) are left to the general parser.
fn resolve_plain(s: &str, out: &mut String) -> Result<()> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => out.push_str("null"),
        "true" | "True" | "TRUE" => out.push_str("true"),
        "false" | "False" | "FALSE" => out.push_str("false"),
        _ => {
            let lower = s.to_ascii_lowercase();
            let unsigned = lower.strip_prefix(['-', '+']).unwrap_or(&lower);
            if matches!(lower.as_str(), "y" | "n" | "yes" | "no" | "on" | "off")
                || matches!(unsigned, ".inf" | ".nan")
            {
                return Err(GiveUp);
            }
            // Only scalars made of number characters can be numbers.
            let b = unsigned.as_bytes();
            let radix = matches!(b, [b'0', b'x' | b'o' | b'b', rest @ ..]
                if !rest.is_empty() && rest.iter().all(u8::is_ascii_alphanumeric));
            let numeric = unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                && b.iter().all(|b| {
                    b.is_ascii_digit()
                        || matches!(b, b'.' | b'_' | b':' | b'+' | b'-' | b'e' | b'E')
                });
            if radix {
                return Err(GiveUp);
            }
            if numeric {
                if (b.len() > 1 && b[0] == b'0' && b[1].is_ascii_digit()) || s.contains(['_', ':'])
                {
                    return Err(GiveUp);
                }
                if let Some(n) = number(s) {
                    out.push_str(&n);
                    return Ok(());
                }
            }
            write_string(out, s);
        }
    }
    Ok(())
}

/// The JSON text of a YAML 1.2 core integer or float, when `s` is one.
fn number(s: &str) -> Option<String> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Some(i.to_string());
        }
        return s.parse::<u64>().ok().map(|u| u.to_string());
    }
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let b = digits.as_bytes();
    let mut i = 0;
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac;
    }
    if int == 0 && frac == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return None;
        }
        i += exp;
    }
    if i != b.len() {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let mut text = String::new();
    let _ = write!(text, "{}", serde_json::Number::from_f64(f)?);
    Some(text)
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn fast(yaml: &str) -> Option<Value> {
        let mut out = Vec::new();
        item(yaml.as_bytes(), &mut out)?;
        Some(serde_json::from_slice(&out).expect("the fast path writes JSON"))
    }

    /// What the general parser makes of the same item.
    fn general(yaml: &str) -> Option<Value> {
        let mut one: Vec<Value> = serde_saphyr::from_str(yaml).ok()?;
        // Through JSON text as the loader reads it (floats as serde_json parses them).
        (one.len() == 1)
            .then(|| serde_json::from_str(&one.pop().expect("one").to_string()).expect("JSON"))
    }

    /// The fast path either agrees with the general parser or gives up.
    fn agrees(yaml: &str) -> bool {
        match fast(yaml) {
            Some(v) => {
                assert_eq!(Some(&v), general(yaml).as_ref(), "{yaml}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn kubectls_shapes() {
        let yaml = "- apiVersion: v1\n  kind: Pod\n  metadata:\n    creationTimestamp: \"2026-01-31T07:00:00Z\"\n    labels:\n      app.kubernetes.io/name: web\n      pod-template-hash: 7c8d9f6b5\n    name: web-7c8d9f6b5-x1\n    ownerReferences:\n    - apiVersion: apps/v1\n      blockOwnerDeletion: true\n      controller: true\n      kind: ReplicaSet\n      name: web-7c8d9f6b5\n  spec:\n    containers:\n    - args:\n      - --port=80\n      image: nginx:1.27\n      name: web\n      resources: {}\n    tolerations: []\n  status:\n    containerStatuses:\n    - lastState:\n        terminated:\n          exitCode: 255\n          message: |\n            line one\n              indented\n\n            after a blank\n          reason: Unknown\n      ready: false\n      restartCount: 3\n    message: 'The node was low on resource: ephemeral-storage. It''s full.'\n    phase: Failed\n    podIP: 10.42.1.7\n    qosClass: ~\n";
        assert!(agrees(yaml));
        let v = fast(yaml).expect("fast");
        assert_eq!(
            v["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"],
            json!("line one\n  indented\n\nafter a blank\n")
        );
        assert_eq!(v["spec"]["containers"][0]["args"], json!(["--port=80"]));
        assert_eq!(
            v["status"]["containerStatuses"][0]["restartCount"],
            json!(3)
        );
        assert_eq!(v["status"]["qosClass"], Value::Null);
    }

    #[test]
    fn go_yaml_folds_long_scalars_over_lines() {
        let yaml = "- message: 'Failed to create pod sandbox: rpc error: code = Unknown desc = failed\n    to setup network for sandbox \"4f1c\": plugin type=\"flannel\" failed (add):\n    loadFlannelSubnetEnv failed'\n  note: Back-off pulling image \"registry.example.com/web:2.1\" because the\n    registry answered 503\n  quoted: \"a \\\"quoted\\\" word, a tab\\t and a break\\nthen \\\n    continued\"\n  kept: |-\n    no final newline\n";
        assert!(agrees(yaml));
        let v = fast(yaml).expect("fast");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("failed to setup network for sandbox \"4f1c\"")
        );
        assert_eq!(
            v["note"],
            json!(
                "Back-off pulling image \"registry.example.com/web:2.1\" because the registry answered 503"
            )
        );
        assert_eq!(
            v["quoted"],
            json!("a \"quoted\" word, a tab\t and a break\nthen continued")
        );
        assert_eq!(v["kept"], json!("no final newline"));
    }

    #[test]
    fn scalars_resolve_as_the_general_parser_does() {
        for s in [
            "0",
            "-3",
            "+4",
            "12.5",
            "1e3",
            "-.5",
            "true",
            "False",
            "null",
            "~",
            "10.42.0.0/24",
            "v1.31.4+k3s1",
            "web",
            "1.2.3",
            "a b",
        ] {
            assert!(agrees(&format!("- k: {s}\n")), "{s}");
        }
    }

    #[test]
    fn what_it_does_not_read_is_left_to_the_general_parser() {
        for yaml in [
            "- a: &x 1\n  b: *x\n",
            "- a: !!str 1\n",
            "- a: {b: 1}\n",
            "- a: [1, 2]\n",
            "- a: >\n    folded\n",
            "- a: yes\n",
            "- a: 0x1F\n",
            "- a: 010\n",
            "- a: 1_000\n",
            "- a: .inf\n",
            "- a: 1:30\n",
            "- ? complex\n  : key\n",
            "- a: b # comment\n",
            "- a: 1\n- b: 2\n",
            // Found by the `snapshot` fuzz target: an entry that is only
            // trailing spaces once indexed an empty scalar.
            "- ",
            "- a:\n  - \n",
            "-   \n",
        ] {
            assert_eq!(fast(yaml), None, "{yaml}");
        }
    }

    /// Every item of the corpus's kubectl YAML: the fast path reads all of
    /// them, as the general parser does.
    #[test]
    fn the_corpus_reads_the_same_both_ways() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        let (mut read, mut total) = (0, 0);
        for case in std::fs::read_dir(corpus).expect("corpus") {
            let path = case.expect("entry").path().join("list.yaml");
            let Ok(body) = std::fs::read(&path) else {
                continue;
            };
            for item in super::super::list_items(&body).expect("kubectl's layout") {
                total += 1;
                let text = std::str::from_utf8(item).expect("UTF-8");
                if agrees(text) {
                    read += 1;
                } else {
                    eprintln!("gave up on:\n{text}");
                }
            }
        }
        assert!(total > 100, "{total} items");
        assert_eq!(
            read,
            total,
            "the fast path gave up on {} of {total} items",
            total - read
        );
    }

    fn value() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            "[a-zA-Z][a-zA-Z0-9._/-]{0,12}",
            ".{0,40}",
            "[ -~]{0,60}",
            "([a-z ]{1,20}\n){1,3}[a-z]{0,5}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            text.prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9._/-]{0,10}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The property below is not vacuous: the fast path reads most of
    /// what a YAML emitter writes, not only kubectl's files.
    #[test]
    fn the_fast_path_reads_most_emitted_yaml() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let objects = prop::collection::btree_map("[a-z]{1,8}", value(), 1..6);
        let (mut read, total) = (0, 500);
        for _ in 0..total {
            let v: serde_json::Map<String, Value> = objects
                .new_tree(&mut runner)
                .expect("tree")
                .current()
                .into_iter()
                .collect();
            let yaml = serde_saphyr::to_string(&vec![Value::Object(v)]).expect("emit");
            read += usize::from(fast(&yaml).is_some());
        }
        assert!(read * 10 >= total * 7, "read {read} of {total}");
    }

    proptest! {
        /// Any object, written by a YAML emitter as one list item: the fast
        /// path reads it as the general parser does, or gives up.
        #[test]
        fn the_fast_path_never_disagrees(v in prop::collection::btree_map("[a-z]{1,8}", value(), 1..6)) {
            let v = Value::Object(v.into_iter().collect());
            let yaml = serde_saphyr::to_string(&vec![&v]).expect("emit");
            if let Some(got) = fast(&yaml) {
                prop_assert_eq!(Some(got), general(&yaml), "{}", yaml);
            }
        }
    }
}
