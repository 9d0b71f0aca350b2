//! The on-disk form of one generation, as pure functions over bytes.
//!
//! A generation file is three parts, so that `tail -n +3` shows the stored
//! `subnet.env` exactly as it was saved:
//!
//! ```text
//! rebootguard-store 1\n                      magic and format version
//! {"generation":7,"node":"n1",...}\n         metadata, one line of JSON
//! FLANNEL_NETWORK=10.42.0.0/16\n...          the content, `length` bytes
//! ```
//!
//! The metadata line carries the generation number (it must match the file
//! name, so a copied or renamed file is caught), the content's length (a
//! truncated file is caught before hashing) and its SHA-256. Nothing may
//! follow the content. The checksum covers the content only (it is the hash
//! an operator compares with the live file); damage to the metadata line is
//! caught by parsing, or at worst changes a name or a time, never the bytes
//! that get restored.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first line's word; the format version follows it after one space.
pub const MAGIC: &str = "rebootguard-store";

/// The only format version this crate writes and reads.
pub const VERSION: u32 = 1;

/// Largest generation file accepted or written, in bytes. A `subnet.env` is a
/// few hundred bytes; anything near this size is not one of ours.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Where a stored content came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A backup of the live file (`/run/flannel/subnet.env`) as flannel wrote it.
    Live,
    /// Rendered by rebootguard from the node's podCIDR(s) and net-conf.json.
    Regenerated,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Live => "live",
            Source::Regenerated => "regenerated",
        })
    }
}

/// What is known about a stored content besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Kubernetes node name the content belongs to.
    pub node: String,
    /// The node's boot ID (`/proc/sys/kernel/random/boot_id`) when it was saved.
    pub boot_id: String,
    /// When it was saved (serialised as RFC 3339, UTC).
    pub saved_at: Timestamp,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// The podCIDR(s) the content was derived from; empty when a live file was
    /// backed up without API access.
    pub pod_cidrs: Vec<String>,
    /// Whether the content was backed up live or regenerated.
    pub source: Source,
}

/// The metadata line as serialised.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    generation: u64,
    node: String,
    boot_id: String,
    saved_at: Timestamp,
    source: Source,
    pod_cidrs: Vec<String>,
    length: u64,
    sha256: String,
}

/// Why a file is not a valid generation. Every variant is final for that file:
/// reading it again gives the same answer.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// The file does not start with the magic line.
    #[error("not a rebootguard store file (no `{MAGIC}` first line)")]
    Foreign,
    /// Written by a different (probably newer) format version.
    #[error(
        "format version {0} is not known to this rebootguard (it reads version {VERSION}); upgrade rebootguard"
    )]
    UnknownVersion(String),
    /// The file ends before the metadata line is complete.
    #[error("truncated: the metadata line is incomplete")]
    TruncatedHeader,
    /// The metadata line is not the expected JSON.
    #[error("metadata line is not valid")]
    ParseHeader(#[source] serde_json::Error),
    /// The generation number inside differs from the one in the file name.
    #[error(
        "metadata says generation {inside} but the file name says {named} (copied or renamed by hand?)"
    )]
    NumberMismatch {
        /// Number from the metadata.
        inside: u64,
        /// Number from the file name.
        named: u64,
    },
    /// Fewer content bytes than the metadata announces.
    #[error("truncated: content has {actual} bytes, metadata says {expected}")]
    Truncated {
        /// Announced length.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// More bytes than the metadata announces.
    #[error("{extra} unexpected bytes after the content")]
    TrailingBytes {
        /// How many bytes follow the content.
        extra: u64,
    },
    /// The content does not hash to the recorded SHA-256.
    #[error("checksum mismatch: content hashes to {actual}, metadata says {expected}")]
    Checksum {
        /// Recorded hash.
        expected: String,
        /// Hash of the bytes present.
        actual: String,
    },
    /// The stored content is empty.
    #[error("content is empty")]
    Empty,
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("file is {size} bytes, more than the {MAX_FILE_BYTES}-byte limit")]
    TooLarge {
        /// Size of the file.
        size: u64,
    },
    /// The caller's validator refused the content.
    #[error("content rejected by the validator: {0}")]
    Rejected(crate::BadContent),
}

/// Lower-case hex SHA-256 of `content`.
pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// Serialises a generation. `meta.sha256` is ignored and recomputed, so a
/// caller cannot store a checksum that does not match.
pub fn encode(number: u64, meta: &Metadata, content: &[u8]) -> Vec<u8> {
    let mut out = encode_header(number, meta, content);
    out.extend_from_slice(content);
    out
}

/// The magic line and metadata line of [`encode`]'s output: everything before
/// the content. The writer writes it separately so tests can stop in between.
pub fn encode_header(number: u64, meta: &Metadata, content: &[u8]) -> Vec<u8> {
    let header = Header {
        generation: number,
        node: meta.node.clone(),
        boot_id: meta.boot_id.clone(),
        saved_at: meta.saved_at,
        source: meta.source,
        pod_cidrs: meta.pod_cidrs.clone(),
        length: content.len() as u64,
        sha256: sha256_hex(content),
    };
    // Serialising strings, numbers and a timestamp cannot fail; should it
    // ever, the empty line fails the writer's own decode check before any
    // byte reaches the disk.
    let json = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + json.len() + content.len());
    out.extend_from_slice(format!("{MAGIC} {VERSION}\n").as_bytes());
    out.extend_from_slice(&json);
    out.push(b'\n');
    out
}

/// Parses and verifies a generation file's bytes. `named` is the generation
/// number from the file name. The caller's validator is not applied here.
pub fn decode(named: u64, bytes: &[u8]) -> Result<(Metadata, Vec<u8>), Invalid> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Invalid::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let (first, rest) = split_line(bytes).ok_or(Invalid::Foreign)?;
    let version = first
        .strip_prefix(MAGIC.as_bytes())
        .and_then(|v| v.strip_prefix(b" "))
        .ok_or(Invalid::Foreign)?;
    if version != VERSION.to_string().as_bytes() {
        return Err(Invalid::UnknownVersion(
            String::from_utf8_lossy(version).into_owned(),
        ));
    }
    let (json, content) = split_line(rest).ok_or(Invalid::TruncatedHeader)?;
    let header: Header = serde_json::from_slice(json).map_err(Invalid::ParseHeader)?;
    if header.generation != named {
        return Err(Invalid::NumberMismatch {
            inside: header.generation,
            named,
        });
    }
    let actual = content.len() as u64;
    if actual < header.length {
        return Err(Invalid::Truncated {
            expected: header.length,
            actual,
        });
    }
    if actual > header.length {
        return Err(Invalid::TrailingBytes {
            extra: actual - header.length,
        });
    }
    if content.is_empty() {
        return Err(Invalid::Empty);
    }
    let hash = sha256_hex(content);
    if !hash.eq_ignore_ascii_case(&header.sha256) {
        return Err(Invalid::Checksum {
            expected: header.sha256,
            actual: hash,
        });
    }
    let meta = Metadata {
        node: header.node,
        boot_id: header.boot_id,
        saved_at: header.saved_at,
        sha256: hash,
        pod_cidrs: header.pod_cidrs,
        source: header.source,
    };
    Ok((meta, content.to_vec()))
}

/// Splits at the first LF: (line without LF, remainder). None without an LF.
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Metadata {
        Metadata {
            node: "boromir".into(),
            boot_id: "0b1c2d3e-0000-4000-8000-000000000001".into(),
            saved_at: "2026-01-31T07:33:00Z".parse().expect("timestamp"),
            sha256: String::new(),
            pod_cidrs: vec!["10.42.0.0/24".into()],
            source: Source::Live,
        }
    }

    const ENV: &[u8] = b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

    #[test]
    fn round_trip_keeps_everything_and_fills_the_checksum() {
        let bytes = encode(7, &meta(), ENV);
        let (got, content) = decode(7, &bytes).expect("valid");
        assert_eq!(content, ENV);
        assert_eq!(got.sha256, sha256_hex(ENV));
        assert_eq!(
            Metadata {
                sha256: String::new(),
                ..got
            },
            meta()
        );
    }

    #[test]
    fn layout_is_magic_then_json_line_then_raw_content() {
        let bytes = encode(3, &meta(), ENV);
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        let mut lines = text.splitn(3, '\n');
        assert_eq!(lines.next(), Some("rebootguard-store 1"));
        let json: serde_json::Value =
            serde_json::from_str(lines.next().expect("metadata")).expect("json");
        assert_eq!(json["generation"], 3);
        assert_eq!(json["saved_at"], "2026-01-31T07:33:00Z");
        assert_eq!(json["source"], "live");
        assert_eq!(json["pod_cidrs"][0], "10.42.0.0/24");
        assert_eq!(json["length"], ENV.len());
        assert_eq!(lines.next().expect("content").as_bytes(), ENV);
        assert_eq!(
            encode_header(3, &meta(), ENV).len(),
            bytes.len() - ENV.len()
        );
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = encode(1, &meta(), ENV);
        for cut in 0..bytes.len() {
            assert!(decode(1, &bytes[..cut]).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn every_single_bit_flip_in_the_content_is_rejected() {
        let bytes = encode(1, &meta(), ENV);
        let start = bytes.len() - ENV.len();
        for i in start..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    matches!(decode(1, &bad), Err(Invalid::Checksum { .. })),
                    "flip at {i}/{bit} not caught"
                );
            }
        }
    }

    #[test]
    fn reasons_name_the_problem() {
        let good = encode(5, &meta(), ENV);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                b"garbage\x00\xff\n".to_vec(),
                "not a rebootguard store file",
            ),
            (
                b"FLANNEL_MTU=1450\n".to_vec(),
                "not a rebootguard store file",
            ),
            (
                b"rebootguard-store 9\n{}\n".to_vec(),
                "format version 9 is not known",
            ),
            (
                b"rebootguard-store 1\n{\"gen".to_vec(),
                "metadata line is incomplete",
            ),
            (
                b"rebootguard-store 1\n{\"gen\n".to_vec(),
                "metadata line is not valid",
            ),
            ([good.as_slice(), b"x"].concat(), "1 unexpected bytes"),
            (good[..good.len() - 3].to_vec(), "truncated: content has"),
            (encode(4, &meta(), ENV), "file name says 5"),
            (encode(5, &meta(), b""), "content is empty"),
            (
                vec![b'a'; MAX_FILE_BYTES as usize + 1],
                "1048576-byte limit",
            ),
        ];
        for (bytes, want) in cases {
            let err = decode(5, &bytes).expect_err(want).to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_generation_round_trips_and_keeps_its_three_lines(
            number in proptest::prelude::any::<u64>(),
            node in "\\PC{1,40}|[a-z\n\"\\\\]{1,10}",
            boot_id in "\\PC{0,40}",
            pod_cidrs in proptest::collection::vec("\\PC{0,20}", 0..3),
            live in proptest::prelude::any::<bool>(),
            content in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..300),
            secs in 0i64..4_000_000_000,
        ) {
            let meta = Metadata {
                node,
                boot_id,
                saved_at: Timestamp::from_second(secs).expect("in range"),
                sha256: sha256_hex(&content),
                pod_cidrs,
                source: if live { Source::Live } else { Source::Regenerated },
            };
            let bytes = encode(number, &meta, &content);
            // Whatever the strings hold, the metadata stays on one line, so
            // `tail -n +3` is the content.
            let header = encode_header(number, &meta, &content);
            proptest::prop_assert_eq!(header.iter().filter(|&&b| b == b'\n').count(), 2);
            let (got, got_content) = decode(number, &bytes).expect("valid");
            proptest::prop_assert_eq!(got, meta);
            proptest::prop_assert_eq!(got_content, content);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_never_pass_by_accident(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            proptest::prop_assert!(decode(1, &bytes).is_err());
        }

        #[test]
        fn a_corrupted_byte_never_yields_other_content(
            at in proptest::prelude::any::<proptest::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let mut bytes = encode(1, &meta(), ENV);
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
            // Metadata damage may still parse (a changed letter in the node
            // name); content damage never gets through.
            if let Ok((_, content)) = decode(1, &bytes) {
                proptest::prop_assert_eq!(content, ENV);
            }
        }
    }

    #[test]
    fn a_wrong_checksum_is_reported_with_both_hashes() {
        let good = String::from_utf8(encode(2, &meta(), ENV)).expect("utf-8");
        let wrong = sha256_hex(b"something else");
        let bad = good.replace(&sha256_hex(ENV), &wrong);
        let err = decode(2, bad.as_bytes())
            .expect_err("wrong sha")
            .to_string();
        assert!(
            err.contains(&wrong) && err.contains(&sha256_hex(ENV)),
            "{err}"
        );
    }
}
