//! Label and field selectors: parse the query strings the API accepts and
//! match them against an object's labels and selectable fields.
//!
//! Pure: no I/O, no store. The grammar follows the apiserver's: labels take
//! `=`, `==`, `!=`, `in`, `notin`, `key`, `!key`, `>` and `<`; fields take
//! `=`, `==` and `!=` with `\`-escaped `,` `=` and `\` in values.

use std::collections::BTreeMap;

/// Why a selector could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A label selector requirement did not follow the grammar.
    #[error("unable to parse requirement {requirement:?}: {reason}")]
    ParseLabel {
        /// The requirement as written.
        requirement: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A field selector term had no operator.
    #[error("invalid field selector {term:?}: expected key=value, key==value or key!=value")]
    ParseField {
        /// The term as written.
        term: String,
    },
}

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the key is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the key is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key>n`.
    GreaterThan(String, i64),
    /// `key<n`.
    LessThan(String, i64),
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    requirements: Vec<Requirement>,
}

impl Labels {
    /// Parses a selector as written in `?labelSelector=`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(term)?);
        }
        Ok(Self { requirements })
    }

    /// Builds a selector from a `matchLabels`/`matchExpressions` JSON object,
    /// as found in PodDisruptionBudgets and workloads.
    pub fn from_label_selector(selector: &serde_json::Value) -> Result<Self, Error> {
        let mut requirements = Vec::new();
        if let Some(map) = selector.get("matchLabels").and_then(|m| m.as_object()) {
            for (k, v) in map {
                requirements.push(Requirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        if let Some(exprs) = selector.get("matchExpressions").and_then(|m| m.as_array()) {
            for expr in exprs {
                let key = expr
                    .get("key")
                    .and_then(|k| k.as_str())
                    .unwrap_or_default()
                    .to_owned();
                let values: Vec<String> = expr
                    .get("values")
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let requirement = match expr.get("operator").and_then(|o| o.as_str()) {
                    Some("In") => Requirement::In(key, values),
                    Some("NotIn") => Requirement::NotIn(key, values),
                    Some("Exists") => Requirement::Exists(key),
                    Some("DoesNotExist") => Requirement::DoesNotExist(key),
                    _ => {
                        return Err(Error::ParseLabel {
                            requirement: expr.to_string(),
                            reason: "operator must be In, NotIn, Exists or DoesNotExist",
                        });
                    }
                };
                requirements.push(requirement);
            }
        }
        Ok(Self { requirements })
    }

    /// True when the selector has no requirement (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfies every requirement.
    pub fn matches<'a, F>(&self, get: F) -> bool
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
            Requirement::GreaterThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::LessThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }

    /// Matches against a JSON `metadata.labels` map.
    pub fn matches_map(&self, labels: Option<&serde_json::Map<String, serde_json::Value>>) -> bool {
        self.matches(|k| labels.and_then(|m| m.get(k)).and_then(|v| v.as_str()))
    }

    /// Matches against a sorted `(key, value)` list.
    pub fn matches_pairs(&self, labels: &[(Box<str>, Box<str>)]) -> bool {
        self.matches(|k| {
            labels
                .binary_search_by(|(key, _)| (**key).cmp(k))
                .ok()
                .map(|i| &*labels[i].1)
        })
    }
}

/// Splits on commas that are not inside a `( ... )` value set.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn parse_requirement(term: &str) -> Result<Requirement, Error> {
    let fail = |reason| Error::ParseLabel {
        requirement: term.to_owned(),
        reason,
    };
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        check_key(key).map_err(fail)?;
        return Ok(Requirement::DoesNotExist(key.to_owned()));
    }
    for (op, sep) in [("!=", "!="), ("==", "=="), ("=", "=")] {
        if let Some((k, v)) = term.split_once(sep) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k).map_err(fail)?;
            check_value(v).map_err(fail)?;
            return Ok(if op == "!=" {
                Requirement::NotEquals(k.to_owned(), v.to_owned())
            } else {
                Requirement::Equals(k.to_owned(), v.to_owned())
            });
        }
    }
    for (sep, gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = term.split_once(sep) {
            let k = k.trim();
            check_key(k).map_err(fail)?;
            let n = v
                .trim()
                .parse::<i64>()
                .map_err(|_| fail("for '>' and '<' the value must be an integer"))?;
            return Ok(if gt {
                Requirement::GreaterThan(k.to_owned(), n)
            } else {
                Requirement::LessThan(k.to_owned(), n)
            });
        }
    }
    let mut words = term.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim();
    check_key(key).map_err(fail)?;
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Requirement::Exists(key.to_owned()));
    };
    let (notin, set) = if let Some(set) = rest.strip_prefix("notin") {
        (true, set)
    } else if let Some(set) = rest.strip_prefix("in") {
        (false, set)
    } else {
        return Err(fail(
            "expected one of '=', '==', '!=', 'in', 'notin' after the key",
        ));
    };
    let set = set.trim();
    let inner = set
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| fail("a set must be written as (a,b,c)"))?;
    let mut values = Vec::new();
    for v in inner.split(',') {
        let v = v.trim();
        check_value(v).map_err(fail)?;
        values.push(v.to_owned());
    }
    Ok(if notin {
        Requirement::NotIn(key.to_owned(), values)
    } else {
        Requirement::In(key.to_owned(), values)
    })
}

fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the key is empty");
    }
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.is_empty() || name.len() > 63 {
        return Err("the key's name part must be 1 to 63 characters");
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        return Err("the key may contain only letters, digits, '-', '_', '.' and one '/'");
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), &'static str> {
    if value.len() > 63 {
        return Err("a value must be at most 63 characters");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("a value may contain only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// One field requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field label, e.g. `spec.nodeName`.
    pub label: String,
    /// The value to compare against.
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// A parsed field selector: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// The terms in the order written.
    pub terms: Vec<FieldTerm>,
}

impl Fields {
    /// Parses a selector as written in `?fieldSelector=`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut terms = Vec::new();
        for raw in split_escaped(text, ',') {
            if raw.trim().is_empty() {
                continue;
            }
            let term =
                parse_field_term(&raw).ok_or_else(|| Error::ParseField { term: raw.clone() })?;
            terms.push(term);
        }
        Ok(Self { terms })
    }

    /// True when the selector has no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the field values returned by `get` satisfy every term.
    /// `get` returns `None` for a label the resource does not support;
    /// callers reject those before matching.
    pub fn matches<'a, F>(&self, get: F) -> bool
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        self.terms.iter().all(|t| {
            let actual = get(&t.label).unwrap_or_default();
            (actual == t.value) != t.negated
        })
    }

    /// The value a term requires with `=`, if any (used to narrow lookups,
    /// e.g. `metadata.name=x`).
    pub fn required(&self, label: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.label == label && !t.negated)
            .map(|t| t.value.as_str())
    }
}

fn parse_field_term(raw: &str) -> Option<FieldTerm> {
    // Find the operator outside escapes.
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                return Some(field_term(&raw[..i], &raw[i + 2..], true));
            }
            b'=' => {
                let skip = if bytes.get(i + 1) == Some(&b'=') {
                    2
                } else {
                    1
                };
                return Some(field_term(&raw[..i], &raw[i + skip..], false));
            }
            _ => i += 1,
        }
    }
    None
}

fn field_term(label: &str, value: &str, negated: bool) -> FieldTerm {
    FieldTerm {
        label: label.trim().to_owned(),
        value: unescape(value.trim()),
        negated,
    }
}

fn split_escaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            current.push(c);
            if let Some(n) = chars.next() {
                current.push(n);
            }
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads the value a field selector sees at a dotted JSON path: strings as
/// they are, booleans and numbers as text, anything missing as `default`.
pub fn field_value(object: &serde_json::Value, path: &str, default: &str) -> String {
    let mut cur = object;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return default.to_owned(),
        }
    }
    match cur {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => default.to_owned(),
    }
}

/// Sorted `(key, value)` pairs of an object's `metadata.labels`.
pub fn label_pairs(object: &serde_json::Value) -> Vec<(Box<str>, Box<str>)> {
    let map: BTreeMap<&str, &str> = object
        .pointer("/metadata/labels")
        .and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                .collect()
        })
        .unwrap_or_default();
    map.into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(Box<str>, Box<str>)> {
        let mut v: Vec<_> = items
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn label_operators() {
        let l = pairs(&[("app", "web"), ("tier", "front"), ("rank", "5")]);
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (db, web)",
            "app notin (db)",
            "missing notin (db)",
            "app",
            "!missing",
            "rank>4,rank<6",
            "app=web,tier in (front,back)",
        ];
        for s in yes {
            assert!(
                Labels::parse(s).unwrap().matches_pairs(&l),
                "{s} should match"
            );
        }
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "app notin (web,db)",
            "missing",
            "!app",
            "rank>5",
            "app=web,tier=back",
        ];
        for s in no {
            assert!(
                !Labels::parse(s).unwrap().matches_pairs(&l),
                "{s} should not match"
            );
        }
        assert!(Labels::parse("").unwrap().is_empty());
    }

    #[test]
    fn label_errors_name_the_requirement() {
        let err = Labels::parse("app in db").unwrap_err();
        assert!(err.to_string().contains("app in db"), "{err}");
        assert!(Labels::parse("a b c").is_err());
        assert!(Labels::parse("=x").is_err());
        assert!(Labels::parse("rank>x").is_err());
    }

    #[test]
    fn selector_objects() {
        let sel = serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]
        });
        let s = Labels::from_label_selector(&sel).unwrap();
        assert!(s.matches_pairs(&pairs(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches_pairs(&pairs(&[("app", "web")])));
        let bad = serde_json::json!({"matchExpressions": [{"key": "a", "operator": "Maybe"}]});
        assert!(Labels::from_label_selector(&bad).is_err());
    }

    #[test]
    fn field_terms_and_escapes() {
        let f =
            Fields::parse(r"spec.nodeName=n1,status.phase!=Failed,metadata.name==a\,b").unwrap();
        assert_eq!(f.terms.len(), 3);
        assert_eq!(f.terms[2].value, "a,b");
        assert_eq!(f.required("spec.nodeName"), Some("n1"));
        assert_eq!(f.required("status.phase"), None);
        let vals = |k: &str| match k {
            "spec.nodeName" => Some("n1"),
            "status.phase" => Some("Running"),
            "metadata.name" => Some("a,b"),
            _ => None,
        };
        assert!(f.matches(vals));
        let g = Fields::parse("spec.nodeName=").unwrap();
        assert!(g.matches(|_| Some("")));
        assert!(!g.matches(|_| Some("n1")));
        assert!(Fields::parse("spec.nodeName").is_err());
    }

    #[test]
    fn field_values_from_json() {
        let o = serde_json::json!({"spec": {"unschedulable": true, "n": 3}, "source": {"component": "kubelet"}});
        assert_eq!(field_value(&o, "spec.unschedulable", "false"), "true");
        assert_eq!(field_value(&o, "spec.n", ""), "3");
        assert_eq!(field_value(&o, "source.component", ""), "kubelet");
        assert_eq!(field_value(&o, "spec.nodeName", ""), "");
    }
}
