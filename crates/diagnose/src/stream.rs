//! Streaming JSON reading for big inputs.
//!
//! A byte scanner walks the top level of each document and cuts the big
//! arrays (a snapshot's `pods`, `events`, ...; a List's `items`) into their
//! elements. Elements are collected into batches of a few MiB and each batch
//! is deserialised on all cores, so neither the whole file nor a `Value`
//! tree is ever held: memory is the slim model plus a few batches.
//! serde_json still validates every element; the scanner only finds where
//! each one ends (strings, escapes and nesting), so it cannot accept
//! anything serde would reject.
//!
//! Which arrays a snapshot has, and what each holds, comes from the table
//! of kinds in [`crate::snapshot`]: the scanner only cuts and batches.

use std::io::Read;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::Error;
use crate::snapshot::{self, Snapshot};

const CHUNK: usize = 4 << 20;
const BATCH_BYTES: usize = 8 << 20;

/// `apiVersion`, `kind` and name of an object, read before its body.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Head {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    #[serde(deserialize_with = "crate::model::nullable")]
    pub(crate) metadata: HeadMeta,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct HeadMeta {
    pub(crate) name: Option<String>,
    #[serde(rename = "generateName")]
    _generate: Option<IgnoredAny>,
}

pub(crate) struct Scanner<R> {
    r: R,
    /// Minimum read size (small in tests to put boundaries everywhere).
    chunk: usize,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Bytes dropped from the front of `buf` so far (for error offsets).
    consumed: u64,
    document: usize,
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    /// Room for a full batch up front, for the batches after a first full
    /// one: growing each would copy and fault pages.
    fn sized() -> Self {
        Batch {
            data: Vec::with_capacity(BATCH_BYTES + (256 << 10)),
            ends: Vec::with_capacity(4096),
        }
    }

    /// An array's first batch, which grows as needed: most arrays of a
    /// small snapshot hold a few objects, and 8 MiB for each of them (a
    /// snapshot has twenty arrays) cost more than parsing them.
    fn first() -> Self {
        Batch {
            data: Vec::with_capacity(64 << 10),
            ends: Vec::with_capacity(64),
        }
    }
    fn push(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        self.ends.push(self.data.len());
    }
    fn items(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&e| {
            let s = &self.data[start..e];
            start = e;
            s
        })
    }
}

/// Per-document state.
#[derive(Default)]
struct Doc {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<Vec<u8>>,
    others: Vec<(String, Vec<u8>)>,
    /// List items without `kind` (typed lists), dispatched once the list kind is known.
    pending: Vec<Vec<u8>>,
    part: Snapshot,
    has_snapshot_fields: bool,
    had_items: bool,
}

impl<R: Read> Scanner<R> {
    pub(crate) fn new(r: R, prefix: Vec<u8>) -> Self {
        Scanner {
            r,
            chunk: CHUNK,
            buf: prefix,
            pos: 0,
            eof: false,
            consumed: 0,
            document: 0,
        }
    }

    /// Reads more input; `want` grows the read for values larger than a chunk.
    fn fill(&mut self, want: usize) -> Result<bool, Error> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.consumed += self.pos as u64;
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + want.max(self.chunk), 0);
        let mut filled = old;
        while filled < self.buf.len() {
            match self.r.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(Error::Read(e));
                }
            }
        }
        self.buf.truncate(filled);
        Ok(filled > old)
    }

    fn scan_error(&self, at: usize, message: impl Into<String>) -> Error {
        Error::Scan {
            offset: self.consumed + at as u64,
            message: message.into(),
        }
    }

    /// The next non-whitespace byte, without consuming it.
    fn peek(&mut self) -> Result<Option<u8>, Error> {
        loop {
            while self.pos < self.buf.len() {
                let b = self.buf[self.pos];
                if b.is_ascii_whitespace() {
                    self.pos += 1;
                } else {
                    return Ok(Some(b));
                }
            }
            if !self.fill(self.chunk)? {
                return Ok(None);
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<(), Error> {
        match self.peek()? {
            Some(b) if b == want => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => {
                Err(self.scan_error(self.pos, format!("expected {what}, found {:?}", b as char)))
            }
            None => Err(self.scan_error(
                self.pos,
                format!("input ends where {what} was expected (truncated?)"),
            )),
        }
    }

    /// Where the value starting at `from` ends, if it is complete in `buf`.
    fn value_end(&self, from: usize) -> Result<Option<usize>, Error> {
        let b = &self.buf;
        match b[from] {
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut i = from;
                while i < b.len() {
                    match b[i] {
                        b'"' => match string_end(b, i) {
                            Some(e) => {
                                i = e;
                                continue;
                            }
                            None => return Ok(None),
                        },
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(Some(i + 1));
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                Ok(None)
            }
            b'"' => Ok(string_end(b, from)),
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                let end = b[from..]
                    .iter()
                    .position(|c| matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n'))
                    .map(|p| from + p);
                Ok(end.or(self.eof.then_some(b.len())))
            }
            other => Err(self.scan_error(
                from,
                format!(
                    "unexpected {:?} where a JSON value should start",
                    other as char
                ),
            )),
        }
    }

    /// Consumes one value; returns its range in `buf` (valid until the next read).
    fn take(&mut self) -> Result<std::ops::Range<usize>, Error> {
        if self.peek()?.is_none() {
            return Err(self.scan_error(
                self.pos,
                "input ends where a value was expected (truncated?)",
            ));
        }
        loop {
            if let Some(end) = self.value_end(self.pos)? {
                let r = self.pos..end;
                self.pos = end;
                return Ok(r);
            }
            let have = self.buf.len() - self.pos;
            if !self.fill(have)? {
                return Err(
                    self.scan_error(self.pos, "input ends inside a value (truncated file?)")
                );
            }
        }
    }

    fn take_string(&mut self) -> Result<String, Error> {
        let r = self.take()?;
        serde_json::from_slice(&self.buf[r.clone()])
            .map_err(|_| self.scan_error(r.start, "expected a string"))
    }

    fn take_line(&mut self) -> Result<Option<String>, Error> {
        loop {
            if let Some(nl) = self.buf[self.pos..].iter().position(|&c| c == b'\n') {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + nl]).into_owned();
                self.pos += nl + 1;
                return Ok(Some(line));
            }
            let have = self.buf.len() - self.pos;
            if !self.fill(have)? {
                if self.pos < self.buf.len() {
                    let line = String::from_utf8_lossy(&self.buf[self.pos..]).into_owned();
                    self.pos = self.buf.len();
                    return Ok(Some(line));
                }
                return Ok(None);
            }
        }
    }

    /// Reads every document into `snap`.
    pub(crate) fn run(&mut self, snap: &mut Snapshot) -> Result<(), Error> {
        let mut any = false;
        while let Some(b) = self.peek()? {
            match b {
                b'{' => {
                    self.document += 1;
                    self.object(snap)?;
                }
                b'[' => {
                    self.document += 1;
                    let mut doc = Doc {
                        kind: Some("List".into()),
                        ..Doc::default()
                    };
                    self.items(&mut doc, snap)?;
                    self.finish(doc, snap)?;
                }
                b'=' => self.log_section(snap)?,
                b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    let what = match b {
                        b'"' => "a string",
                        b't' | b'f' => "a boolean",
                        b'n' => "null",
                        _ => "a number",
                    };
                    return Err(Error::NotKubernetes {
                        document: self.document + 1,
                        what: what.into(),
                    });
                }
                other => {
                    return Err(self.scan_error(
                        self.pos,
                        format!("unexpected {:?} between documents", other as char),
                    ));
                }
            }
            any = true;
        }
        if !any {
            return Err(Error::Empty);
        }
        Ok(())
    }

    /// `==== START logs for container C of pod NS/P ====` ... `==== END ...`.
    fn log_section(&mut self, snap: &mut Snapshot) -> Result<(), Error> {
        let at = self.pos;
        let first = self.take_line()?.unwrap_or_default();
        let Some(rest) = first.strip_prefix("==== START logs for container ") else {
            return Err(self.scan_error(
                at,
                format!("unexpected line {:?}", crate::classify::short(&first, 60)),
            ));
        };
        let rest = rest.trim_end_matches('=').trim();
        let (container, pod) = rest.split_once(" of pod ").unwrap_or((rest, ""));
        let (ns, name) = pod.split_once('/').unwrap_or(("", pod));
        let (container, ns, name) = (container.to_string(), ns.to_string(), name.to_string());
        let mut text = String::new();
        while let Some(line) = self.take_line()? {
            if line.starts_with("==== END logs for container ") {
                break;
            }
            text.push_str(&line);
            text.push('\n');
        }
        snap.push_log(&ns, &name, &container, &text);
        Ok(())
    }

    fn object(&mut self, snap: &mut Snapshot) -> Result<(), Error> {
        self.expect(b'{', "'{'")?;
        let mut doc = Doc::default();
        loop {
            match self.peek()? {
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                Some(b'"') => {}
                Some(other) => {
                    return Err(self.scan_error(
                        self.pos,
                        format!("expected a key, found {:?}", other as char),
                    ));
                }
                None => {
                    return Err(
                        self.scan_error(self.pos, "input ends inside an object (truncated file?)")
                    );
                }
            }
            let key = self.take_string()?;
            self.expect(b':', "':'")?;
            let is_snapshot = doc.kind.as_deref().is_none_or(|k| k == snapshot::KIND);
            let next = self.peek()?;
            match key.as_str() {
                "apiVersion" | "kind" => {
                    let v = self.take_string()?;
                    if key == "kind" {
                        doc.kind = Some(v)
                    } else {
                        doc.api_version = Some(v)
                    }
                    if doc.kind.as_deref() == Some(snapshot::KIND)
                        && let Some(found) = doc.api_version.as_deref()
                        && found != snapshot::API_VERSION
                    {
                        return Err(Error::UnsupportedVersion {
                            found: found.into(),
                            supported: snapshot::API_VERSION,
                        });
                    }
                }
                "items" if next == Some(b'[') => self.items(&mut doc, snap)?,
                k if is_snapshot && next == Some(b'[') && snapshot::ARRAY_KEYS.contains(&k) => {
                    self.array(k, &mut doc)?
                }
                _ => {
                    let r = self.take()?;
                    let bytes = self.buf[r].to_vec();
                    if key == "metadata" {
                        doc.metadata = Some(bytes);
                    } else {
                        doc.others.push((key, bytes));
                    }
                }
            }
        }
        self.finish(doc, snap)
    }

    /// A snapshot array: elements are batched and parsed on all cores.
    /// A snapshot array. The scanner keeps cutting elements while earlier
    /// batches are parsed on other threads; results are merged in order.
    fn array(&mut self, key: &str, doc: &mut Doc) -> Result<(), Error> {
        doc.has_snapshot_fields = true;
        self.expect(b'[', "'['")?;
        let document = self.document;
        let max_in_flight = threads();
        std::thread::scope(|s| -> Result<(), Error> {
            let mut in_flight = std::collections::VecDeque::new();
            // Parsed batches' buffers come back for reuse: fresh 8 MiB
            // buffers would cost a page fault per 4 KiB each time.
            let mut pool: Vec<Batch> = Vec::new();
            let mut batch = Batch::first();
            let mut done = false;
            while !done {
                match self.peek()? {
                    Some(b']') => {
                        self.pos += 1;
                        done = true;
                    }
                    Some(b',') => {
                        self.pos += 1;
                        continue;
                    }
                    Some(_) => {
                        let r = self.take()?;
                        batch.push(&self.buf[r]);
                    }
                    None => {
                        return Err(self
                            .scan_error(self.pos, "input ends inside an array (truncated file?)"));
                    }
                }
                if done && in_flight.is_empty() && !batch.ends.is_empty() {
                    // The whole array in one batch: no thread to hand it to.
                    return flush(key, document, &batch, &mut doc.part);
                }
                if batch.data.len() >= BATCH_BYTES || (done && !batch.ends.is_empty()) {
                    if in_flight.len() >= max_in_flight {
                        merge_parsed(&mut in_flight, &mut doc.part, &mut pool)?;
                    }
                    let next = pool.pop().unwrap_or_else(Batch::sized);
                    let full = std::mem::replace(&mut batch, next);
                    in_flight.push_back(s.spawn(move || {
                        let mut part = Snapshot::default();
                        let parsed = flush(key, document, &full, &mut part).map(|()| part);
                        (parsed, full)
                    }));
                }
            }
            while !in_flight.is_empty() {
                merge_parsed(&mut in_flight, &mut doc.part, &mut pool)?;
            }
            Ok(())
        })
    }

    /// A List's items, each dispatched by its own `kind`; batched and
    /// parsed on other threads like snapshot arrays.
    fn items(&mut self, doc: &mut Doc, snap: &mut Snapshot) -> Result<(), Error> {
        doc.had_items = true;
        self.expect(b'[', "'['")?;
        let document = self.document;
        let list_api = doc.api_version.clone().unwrap_or_default();
        let list_api = list_api.as_str();
        let max_in_flight = threads();
        std::thread::scope(|s| -> Result<(), Error> {
            let mut in_flight = std::collections::VecDeque::new();
            let mut batch = Batch::first();
            let mut done = false;
            let mut merge =
                |in_flight: &mut std::collections::VecDeque<ItemsJob<'_>>| -> Result<(), Error> {
                    if let Some(h) = in_flight.pop_front() {
                        let (part, pending) =
                            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                        snap.merge(part);
                        doc.pending.extend(pending);
                    }
                    Ok(())
                };
            while !done {
                match self.peek()? {
                    Some(b']') => {
                        self.pos += 1;
                        done = true;
                    }
                    Some(b',') => {
                        self.pos += 1;
                        continue;
                    }
                    Some(_) => {
                        let r = self.take()?;
                        batch.push(&self.buf[r]);
                    }
                    None => {
                        return Err(
                            self.scan_error(self.pos, "input ends inside a List (truncated file?)")
                        );
                    }
                }
                if done && in_flight.is_empty() && !batch.ends.is_empty() {
                    // The whole List in one batch: parsed here.
                    let (part, pending) = list_items(&batch, list_api, document)?;
                    snap.merge(part);
                    doc.pending.extend(pending);
                    return Ok(());
                }
                if batch.data.len() >= BATCH_BYTES || (done && !batch.ends.is_empty()) {
                    if in_flight.len() >= max_in_flight {
                        merge(&mut in_flight)?;
                    }
                    let full = std::mem::replace(&mut batch, Batch::sized());
                    in_flight.push_back(s.spawn(move || list_items(&full, list_api, document)));
                }
            }
            while !in_flight.is_empty() {
                merge(&mut in_flight)?;
            }
            Ok(())
        })
    }

    fn finish(&mut self, doc: Doc, snap: &mut Snapshot) -> Result<(), Error> {
        let document = self.document;
        let kind = doc.kind.unwrap_or_default();
        let api_version = doc.api_version.unwrap_or_default();
        if kind == snapshot::KIND || (kind.is_empty() && doc.has_snapshot_fields) {
            if api_version != snapshot::API_VERSION {
                return Err(Error::UnsupportedVersion {
                    found: api_version,
                    supported: snapshot::API_VERSION,
                });
            }
            let mut part = doc.part;
            if let Some(meta) = doc.metadata {
                part.metadata = serde_json::from_slice(&meta).map_err(|source| Error::Object {
                    document,
                    kind: "Snapshot".into(),
                    name: "metadata".into(),
                    source,
                })?;
            }
            snap.merge(part);
            return Ok(());
        }
        if doc.had_items {
            let item_kind = kind.strip_suffix("List").unwrap_or("");
            for bytes in doc.pending {
                if item_kind.is_empty() {
                    return Err(Error::NotKubernetes {
                        document,
                        what: "a List item without `kind`".into(),
                    });
                }
                snap.add_raw(&api_version, item_kind, &bytes)
                    .map_err(|source| Error::Object {
                        document,
                        kind: item_kind.into(),
                        name: name_of(&bytes),
                        source,
                    })?;
            }
            return Ok(());
        }
        if kind.is_empty() {
            let keys: Vec<&str> = doc.others.iter().map(|(k, _)| k.as_str()).take(5).collect();
            return Err(Error::NotKubernetes {
                document,
                what: if keys.is_empty() {
                    "an empty object".into()
                } else {
                    format!("an object without `kind` (keys: {})", keys.join(", "))
                },
            });
        }
        // A single object: put its top-level fields back together.
        let mut text: Vec<u8> = b"{".to_vec();
        let fields = doc
            .metadata
            .map(|m| ("metadata".to_string(), m))
            .into_iter()
            .chain(doc.others);
        for (i, (k, v)) in fields.enumerate() {
            if i > 0 {
                text.push(b',');
            }
            text.extend_from_slice(serde_json::Value::String(k).to_string().as_bytes());
            text.push(b':');
            text.extend_from_slice(&v);
        }
        text.push(b'}');
        snap.add_raw(&api_version, &kind, &text)
            .map_err(|source| Error::Object {
                document,
                kind: kind.clone(),
                name: name_of(&text),
                source,
            })
    }
}

/// End (exclusive) of the string starting at `from` (a `"`), if complete.
fn string_end(b: &[u8], from: usize) -> Option<usize> {
    // Strings are most of a Kubernetes object's bytes: jump between quotes
    // and backslashes with memchr instead of looking at every byte.
    let mut i = from + 1;
    while i < b.len() {
        let at = i + memchr::memchr2(b'"', b'\\', &b[i..])?;
        if b[at] == b'"' {
            return Some(at + 1);
        }
        i = at + 2;
    }
    None
}

fn name_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<Head>(bytes)
        .ok()
        .and_then(|h| h.metadata.name)
        .unwrap_or_default()
}

fn object_error(document: usize, kind: &str, bytes: Vec<u8>, source: serde_json::Error) -> Error {
    Error::Object {
        document,
        kind: kind.into(),
        name: name_of(&bytes),
        source,
    }
}

type ItemsJob<'s> = std::thread::ScopedJoinHandle<'s, Result<(Snapshot, Vec<Vec<u8>>), Error>>;

/// Dispatches List items by kind; items without one (typed lists) come back
/// to wait for the list's kind.
fn list_items(
    batch: &Batch,
    list_api: &str,
    document: usize,
) -> Result<(Snapshot, Vec<Vec<u8>>), Error> {
    let mut part = Snapshot::default();
    let mut pending = Vec::new();
    for bytes in batch.items() {
        let head: Head = serde_json::from_slice(bytes).map_err(|source| Error::Object {
            document,
            kind: "List item".into(),
            name: String::new(),
            source,
        })?;
        if head.kind.is_empty() {
            pending.push(bytes.to_vec());
            continue;
        }
        let api = if head.api_version.is_empty() {
            list_api
        } else {
            head.api_version.as_str()
        };
        part.add_raw(api, &head.kind, bytes)
            .map_err(|source| Error::Object {
                document,
                kind: head.kind.clone(),
                name: head.metadata.name.clone().unwrap_or_default(),
                source,
            })?;
    }
    Ok((part, pending))
}

type Parsed<'s> = std::thread::ScopedJoinHandle<'s, (Result<Snapshot, Error>, Batch)>;

fn merge_parsed(
    in_flight: &mut std::collections::VecDeque<Parsed<'_>>,
    part: &mut Snapshot,
    pool: &mut Vec<Batch>,
) -> Result<(), Error> {
    if let Some(h) = in_flight.pop_front() {
        let (parsed, mut batch) = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        part.merge(parsed?);
        batch.data.clear();
        batch.ends.clear();
        pool.push(batch);
    }
    Ok(())
}

fn threads() -> usize {
    // Asked once: the answer reads cgroup files, which costs more than
    // parsing a small snapshot.
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
    })
}

/// Parses one batch of the array `key` into `part`.
fn flush(key: &str, document: usize, batch: &Batch, part: &mut Snapshot) -> Result<(), Error> {
    part.parse_array(key, batch.items())
        .map_err(|bad| object_error(document, bad.kind, bad.bytes.to_vec(), bad.source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Strings that look like structure, escapes, numbers and literals at
    /// the ends of values, several documents: what chunk boundaries must not break.
    const TRICKY: &str = r#"
{"apiVersion": "rebootguard.io/v1alpha1", "kind": "Snapshot",
 "metadata": {"collectedAt": "2026-01-01T00:00:00Z", "source": "brace } bracket ] quote \" backslash \\"},
 "nodes": [{"metadata": {"name": "n1", "labels": {"a": "{[", "b": "]}"}}, "spec": {"unschedulable": false},
            "status": {"nodeInfo": {"bootID": "x\"y"}, "conditions": [{"type": "Ready", "status": "True"}]}}],
 "pods": [{"metadata": {"name": "p\u00e9", "namespace": "a"}, "spec": {"nodeName": "n1", "hostNetwork": true},
           "status": {"phase": "Running", "containerStatuses": [{"name": "c", "restartCount": 12, "ready": true,
                      "state": {"terminated": {"exitCode": -1, "message": "line1\nline2 \\\" end"}}}]}}],
 "events": [{"metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"kind": "Pod", "name": "p"},
             "reason": "BackOff", "type": "Warning", "message": "x", "count": 3}],
 "custom": [{"apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "metadata": {"name": "v"}, "spec": {"size": 1e3, "x": null, "y": [true, false, []]}}]}
{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "a"}, "spec": {"clusterIP": "10.43.0.10"}}]}
[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q", "namespace": "b"}}]
"#;

    fn scan(text: &[u8], chunk: usize) -> Result<Snapshot, Error> {
        let mut snap = Snapshot::default();
        let mut sc = Scanner::new(text, Vec::new());
        sc.chunk = chunk;
        sc.run(&mut snap)?;
        Ok(snap)
    }

    #[test]
    fn tricky_input_parses() {
        let s = scan(TRICKY.as_bytes(), CHUNK).expect("parses");
        assert_eq!(s.nodes[0].status.node_info.boot_id, "x\"y");
        assert_eq!(s.pods.len(), 2);
        assert_eq!(s.pods[0].metadata.name, "p\u{e9}");
        assert_eq!(s.services[0].spec.cluster_ip, "10.43.0.10");
        assert_eq!(s.custom.len(), 1);
        assert_eq!(s.metadata.source, "brace } bracket ] quote \" backslash \\");
    }

    proptest! {
        #[test]
        fn chunk_boundaries_change_nothing(chunk in 1usize..48) {
            let want = scan(TRICKY.as_bytes(), CHUNK).expect("parses");
            let got = scan(TRICKY.as_bytes(), chunk).expect("parses with small chunks");
            prop_assert_eq!(got, want);
        }

        #[test]
        fn truncation_at_any_chunk_size_is_an_error(chunk in 1usize..48, cut in 1usize..60) {
            // The last document is a bare array of ~80 bytes: any cut inside
            // it leaves it open.
            let text = TRICKY.trim_end().as_bytes();
            let at = text.len() - cut;
            prop_assert!(scan(&text[..at], chunk).is_err());
        }
    }
}
