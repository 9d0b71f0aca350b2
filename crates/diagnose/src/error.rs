//! What can go wrong loading input ([`crate::load`]): one type for the
//! whole loader, the streaming scanner and the YAML path alike.

/// Errors loading input. Only [`Error::Read`] may succeed on retry; the
/// others mean the input itself is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is empty or whitespace.
    #[error(
        "failed to load: the input is empty; pass a snapshot file, `kubectl get -A -o json` output or a cluster-info dump"
    )]
    Empty,
    /// The input is UTF-16 (PowerShell's `>` writes it).
    #[error(
        "failed to load: the input is UTF-16; write it as UTF-8 (PowerShell: `kubectl get ... | Out-File -Encoding utf8 FILE`)"
    )]
    Utf16,
    /// The input is bigger than diagnose reads (a gzip bomb, `/dev/zero`, the
    /// wrong file).
    #[error(
        "failed to load: the input is larger than {limit} bytes{after}, the most diagnose reads (a gzip bomb or the wrong file?); a cluster of 5,000 nodes and 150,000 pods is about 400 MB of JSON"
    )]
    TooLarge {
        /// The limit: [`crate::load::Limits::input`].
        limit: u64,
        /// " after decompression" when the input was gzip, else empty.
        after: &'static str,
    },
    /// The input is YAML bigger than diagnose reads into memory.
    #[error(
        "failed to load: the YAML input is larger than {limit} bytes{after}, the most YAML diagnose reads (YAML is held in memory, JSON is streamed): give it kubectl's JSON instead (`kubectl get ... -A -o json`)"
    )]
    YamlTooLarge {
        /// The limit: [`crate::load::Limits::yaml`] or [`crate::load::Limits::yaml_list`].
        limit: u64,
        /// " after decompression" when the input was gzip, else empty.
        after: &'static str,
    },
    /// The input is not text.
    #[error(
        "failed to load: the input is binary data (byte {byte:#04x} at offset {offset}), not JSON, YAML or gzip; pass a snapshot file, `kubectl get -A -o json` output or a cluster-info dump"
    )]
    Binary {
        /// The first byte that cannot start JSON or YAML.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("failed to decompress gzip input (truncated or corrupt file?)")]
    Decompress(#[source] std::io::Error),
    /// The input could not be read.
    #[error("failed to read the input")]
    Read(#[source] std::io::Error),
    /// The JSON structure is broken (truncated, corrupt, not JSON).
    #[error("failed to parse JSON at byte {offset}: {message}")]
    Scan {
        /// Byte offset in the (decompressed) input.
        offset: u64,
        /// What was wrong.
        message: String,
    },
    /// A JSON document did not parse.
    #[error("failed to parse JSON document {document} (truncated file or not JSON?)")]
    ParseJson {
        /// 1-based document number in the stream.
        document: usize,
        /// serde_json's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A YAML document did not parse.
    #[error("failed to parse YAML document {document} (not Kubernetes YAML?)")]
    ParseYaml {
        /// 1-based document number.
        document: usize,
        /// The YAML parser's error, with its location.
        #[source]
        source: serde_saphyr::Error,
    },
    /// A document is valid JSON/YAML but not a Kubernetes object or List.
    #[error(
        "failed to read document {document}: it is {what}, not a Kubernetes object, List or rebootguard Snapshot"
    )]
    NotKubernetes {
        /// 1-based document number.
        document: usize,
        /// What it is instead.
        what: String,
    },
    /// A snapshot written by a newer or unknown format version.
    #[error(
        "failed to read snapshot: apiVersion {found:?} is not supported (this build reads {supported}); re-create it with this rebootguard version or upgrade rebootguard"
    )]
    UnsupportedVersion {
        /// The version found.
        found: String,
        /// The one supported.
        supported: &'static str,
    },
    /// One object did not have the expected shape.
    #[error(
        "failed to read {kind} {name:?} (document {document}): a field has an unexpected type; is it from a compatible Kubernetes version?"
    )]
    Object {
        /// 1-based document number.
        document: usize,
        /// Its kind.
        kind: String,
        /// Its name, as far as known.
        name: String,
        /// The field-level error.
        #[source]
        source: serde_json::Error,
    },
    /// A file of a cluster-info dump failed to load.
    #[error("failed to load {path}")]
    File {
        /// The path, as given.
        path: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
}
