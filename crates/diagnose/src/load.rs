//! Loading a [`Snapshot`] from bytes, whatever the user has at hand.
//!
//! Accepted, detected from the content (never the file name):
//! - a snapshot file (`kind: Snapshot`), plain or gzip;
//! - `kubectl get ... -A -o json`: a `List`, several Lists or objects
//!   concatenated, or a single object;
//! - `kubectl get ... -o yaml`, multi-document YAML included;
//! - the files of a `kubectl cluster-info dump --output-directory` tree
//!   ([`dump`]), or its single-stream form on stdout.
//!
//! JSON is read in one pass by a streaming scanner (see the `stream`
//! module): big arrays are cut into elements and parsed in batches on all
//! cores; List items are dispatched by their own `kind` and API group to
//! the array the table of kinds in [`crate::snapshot`] gives them.

use std::io::Read;

use serde_json::Value;

pub use crate::error::Error;
use crate::snapshot::{Missing, Snapshot};
pub use crate::snapshot::{NAMELESS_NODE, NAMELESS_POD};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most bytes read from one input (after decompression): ten times the
/// biggest cluster diagnose is measured on, far below a gzip bomb's
/// expansion or an endless device.
pub const MAX_INPUT: u64 = 4 << 30;

/// The most bytes of YAML parsed as whole documents, in memory (JSON
/// streams): a parse tree takes many times its text.
pub const MAX_YAML: u64 = 512 << 20;

/// The most bytes of YAML in kubectl's List layout, which is read item by
/// item (memory about three times the file): a cluster of 5,000 nodes and
/// 150,000 pods is under 1 GiB of `kubectl get -o yaml`.
pub const MAX_YAML_LIST: u64 = 1536 << 20;

/// How much of an input [`load_reader_bounded`] reads before it gives up
/// with [`Error::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of input, and again of its decompressed form.
    pub input: u64,
    /// Bytes of YAML parsed as whole documents.
    pub yaml: u64,
    /// Bytes of YAML in kubectl's List layout (read item by item).
    pub yaml_list: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            input: MAX_INPUT,
            yaml: MAX_YAML,
            yaml_list: MAX_YAML_LIST,
        }
    }
}

/// A reader that fails with [`std::io::ErrorKind::FileTooLarge`] past `left`
/// bytes.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a file of exactly the limit from a bigger one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::ErrorKind::FileTooLarge.into()),
            };
        }
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A read error caused by [`Bounded`] becomes [`Error::TooLarge`].
fn too_large(e: Error, limit: u64, after: &'static str) -> Error {
    let hit = |io: &std::io::Error| io.kind() == std::io::ErrorKind::FileTooLarge;
    match e {
        Error::Read(io) | Error::Decompress(io) if hit(&io) => Error::TooLarge { limit, after },
        other => other,
    }
}

/// Where the first byte of `head` that no JSON, YAML or whitespace starts
/// with sits: NUL and the other control characters.
fn binary(head: &[u8]) -> Option<(u8, usize)> {
    let offset = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let byte = head[offset];
    (byte < 0x20 || byte == 0x7f).then_some((byte, offset))
}

/// Loads a snapshot from any supported input held in memory (see the
/// module docs). The result is deduplicated.
pub fn load(bytes: &[u8]) -> Result<Snapshot, Error> {
    load_reader(bytes)
}

/// Loads a snapshot from a reader (a file, stdin, a decompressor), reading it
/// once, in chunks: a big snapshot is never held whole in memory. The
/// reader is the caller's; this crate does no I/O of its own.
pub fn load_reader<R: Read>(reader: R) -> Result<Snapshot, Error> {
    load_reader_bounded(reader, Limits::default())
}

/// [`load_reader`] with other [`Limits`] than the documented defaults.
pub fn load_reader_bounded<R: Read>(reader: R, limits: Limits) -> Result<Snapshot, Error> {
    let mut bounded = Bounded {
        inner: reader,
        left: limits.input,
    };
    let mut snap = load_inner(&mut bounded, limits).map_err(|e| too_large(e, limits.input, ""))?;
    snap.dedup();
    Ok(snap)
}

fn load_inner(reader: &mut dyn Read, limits: Limits) -> Result<Snapshot, Error> {
    // Sniff the start: gzip, JSON or YAML.
    let mut head = vec![0u8; 64 << 10];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Read(e)),
        }
    }
    head.truncate(n);
    if head.starts_with(&GZIP_MAGIC) {
        let gz = flate2::read::MultiGzDecoder::new(std::io::Cursor::new(head).chain(reader));
        let mut gz = Bounded {
            inner: gz,
            left: limits.input,
        };
        // Any read error from here on is the decoder's (corrupt or truncated
        // gzip), or the bound's.
        return load_inner(&mut gz, limits).map_err(|e| {
            match too_large(e, limits.input, " after decompression") {
                Error::Read(io) => Error::Decompress(io),
                other => other,
            }
        });
    }
    if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        return Err(Error::Utf16);
    }
    if head.starts_with(&[0xef, 0xbb, 0xbf]) {
        head.drain(..3); // UTF-8 byte order mark
    }
    if let Some((byte, offset)) = binary(&head) {
        return Err(Error::Binary { byte, offset });
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        None if n == 0 || head.len() < (64 << 10) => Err(Error::Empty),
        Some(b'{' | b'[') | None => {
            let mut snap = Snapshot::default();
            crate::stream::Scanner::new(reader, head).run(&mut snap)?;
            Ok(snap)
        }
        Some(_) => {
            let mut all = head;
            let bound = limits.yaml.max(limits.yaml_list);
            let too_large_yaml = |limit| Error::YamlTooLarge { limit, after: "" };
            let Some(rest) = bound.checked_sub(all.len() as u64) else {
                return Err(too_large_yaml(bound));
            };
            Bounded {
                inner: reader,
                left: rest,
            }
            .read_to_end(&mut all)
            .map_err(|e| match too_large(Error::Read(e), bound, "") {
                Error::TooLarge { limit, after } => Error::YamlTooLarge { limit, after },
                other => other,
            })?;
            match crate::yaml::list_items(&all) {
                Some(items) => load_yaml_items(&all, &items),
                None if all.len() as u64 > limits.yaml => Err(too_large_yaml(limits.yaml)),
                None => load_yaml_documents(&all),
            }
        }
    }
}

/// Loads the files of a `kubectl cluster-info dump --output-directory DIR`
/// tree, given as (relative path, content) pairs: every `*.json` is loaded,
/// `<ns>/<pod>/logs.txt` files give [`LogExcerpt`](crate::snapshot::LogExcerpt)s, anything else is skipped.
pub fn dump<'a, P: AsRef<str>>(
    files: impl IntoIterator<Item = (P, &'a [u8])>,
) -> Result<Snapshot, Error> {
    let mut snap = Snapshot::default();
    let mut sources = Vec::new();
    for (path, bytes) in files {
        let path = path.as_ref();
        if path.ends_with(".json") {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let part = load_inner(&mut &bytes[..], Limits::default()).map_err(|e| Error::File {
                path: path.to_string(),
                source: Box::new(e),
            })?;
            snap.merge(part);
            sources.push(path.to_string());
        } else if path.ends_with("logs.txt") {
            let parts: Vec<&str> = path.trim_start_matches("./").split('/').collect();
            if parts.len() >= 3 {
                let n = parts.len();
                snap.push_log(
                    parts[n - 3],
                    parts[n - 2],
                    "",
                    &String::from_utf8_lossy(bytes),
                );
            }
        }
    }
    snap.metadata.source = format!("cluster-info dump ({} files)", sources.len());
    snap.dedup();
    Ok(snap)
}

/// The YAML parser's limits, sized to the input: the defaults are made
/// for configuration files (250,000 nodes, 1,024 documents) and a `kubectl
/// get -A -o yaml` of a big cluster has millions. Every node, event and
/// document costs at least one byte of input, so `len` bounds them all;
/// alias expansion keeps its default caps (the "billion laughs").
fn yaml_options(len: usize) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: None,
            max_events: len.max(1_000_000),
            max_nodes: len.max(250_000),
            max_documents: len.max(1_024),
            max_total_scalar_bytes: len.max(64 << 20),
        },
    }
}

/// kubectl's List item by item; if an item does not parse alone, the whole
/// document (which also gives the precise error).
fn load_yaml_items(body: &[u8], items: &[&[u8]]) -> Result<Snapshot, Error> {
    match crate::yaml::load_items(items, || yaml_options(body.len())) {
        Some(snap) => Ok(snap),
        None => load_yaml_documents(body),
    }
}

/// Parses every YAML document of `body` whole (the general path).
pub(crate) fn load_yaml_documents(body: &[u8]) -> Result<Snapshot, Error> {
    let mut snap = Snapshot::default();
    let mut reader = body;
    for (i, value) in
        serde_saphyr::read_with_options(&mut reader, yaml_options(body.len())).enumerate()
    {
        let document = i + 1;
        let value: Value = value.map_err(|source| Error::ParseYaml { document, source })?;
        if value.is_null() {
            continue; // empty document between `---` separators
        }
        let json =
            serde_json::to_vec(&value).map_err(|source| Error::ParseJson { document, source })?;
        let mut part = Snapshot::default();
        crate::stream::Scanner::new(&json[..], Vec::new())
            .run(&mut part)
            .map_err(|e| renumber(e, document))?;
        snap.merge(part);
    }
    if snap.is_empty() && snap.missing.is_empty() && snap.ignored.is_empty() {
        return Err(Error::Empty);
    }
    Ok(snap)
}

fn renumber(e: Error, document: usize) -> Error {
    match e {
        Error::NotKubernetes { what, .. } => Error::NotKubernetes { document, what },
        Error::Object {
            kind, name, source, ..
        } => Error::Object {
            document,
            kind,
            name,
            source,
        },
        other => other,
    }
}

/// Records kinds as missing (for a collector that got `403 Forbidden`).
pub fn missing(kind: &str, reason: &str) -> Missing {
    Missing {
        kind: kind.into(),
        reason: reason.into(),
    }
}
