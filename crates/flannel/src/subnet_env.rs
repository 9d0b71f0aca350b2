//! `/run/flannel/subnet.env`: read it like the flannel CNI plugin, judge it
//! like flanneld would, write it byte for byte like flanneld and k3s.
//!
//! The plugin's reader is deliberately reproduced, quirks included: lines are
//! split on `\n` with one trailing `\r` dropped, each line is cut at its first
//! `=`, keys match exactly (no trimming, no case folding, no quotes), unknown
//! keys are ignored and the last duplicate wins. What the plugin reads is what
//! pods get, so that is what we report; everything a human would want to know
//! on top of that is a [`Problem`].

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Where flanneld and k3s write the file.
pub const DEFAULT_PATH: &str = "/run/flannel/subnet.env";

/// Files larger than this are refused unread: a real one is under 300 bytes.
pub const MAX_SIZE: u64 = 1 << 20;

/// The plugin reads lines with Go's `bufio.Scanner`, whose default token
/// limit makes longer lines a read error.
const MAX_LINE: usize = 64 * 1024;

/// The keys, in the order flanneld and k3s write them.
pub const KEYS: [&str; 6] = [NETWORK, SUBNET, IPV6_NETWORK, IPV6_SUBNET, MTU, IPMASQ];
const NETWORK: &str = "FLANNEL_NETWORK";
const SUBNET: &str = "FLANNEL_SUBNET";
const IPV6_NETWORK: &str = "FLANNEL_IPV6_NETWORK";
const IPV6_SUBNET: &str = "FLANNEL_IPV6_SUBNET";
const MTU: &str = "FLANNEL_MTU";
const IPMASQ: &str = "FLANNEL_IPMASQ";

/// The content of a subnet.env, as the flannel CNI plugin reads it.
///
/// Fields are optional because a file may lack them; a file that passes
/// [`SubnetEnv::validate`] has `mtu`, `ipmasq` and at least one
/// network/subnet pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetEnv {
    /// `FLANNEL_NETWORK`: the IPv4 cluster CIDR(s).
    pub networks: Vec<IpNet>,
    /// `FLANNEL_SUBNET`: this node's IPv4 lease with host part `.1`, as written.
    pub subnet: Option<IpNet>,
    /// `FLANNEL_IPV6_NETWORK`: the IPv6 cluster CIDR(s).
    pub ipv6_networks: Vec<IpNet>,
    /// `FLANNEL_IPV6_SUBNET`: this node's IPv6 lease with host part `::1`.
    pub ipv6_subnet: Option<IpNet>,
    /// `FLANNEL_MTU`: the MTU pods get.
    pub mtu: Option<u32>,
    /// `FLANNEL_IPMASQ`: whether flannel masquerades (so the bridge must not).
    pub ipmasq: Option<bool>,
}

/// The outcome of reading a file: what the plugin would use, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The values the plugin would read (those it could parse).
    pub env: SubnetEnv,
    /// Everything found wrong, in file order, errors and warnings together.
    pub problems: Vec<Problem>,
}

impl Parsed {
    /// True when nothing is an [`Severity::Error`].
    pub fn is_valid(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    /// The file's values when it is valid, else every problem that makes it invalid.
    pub fn into_valid(self) -> Result<SubnetEnv, Vec<Problem>> {
        if self.is_valid() {
            Ok(self.env)
        } else {
            Err(self
                .problems
                .into_iter()
                .filter(|p| p.severity == Severity::Error)
                .collect())
        }
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Tolerated by the plugin and harmless, but not how flannel writes the file.
    Warning,
    /// The plugin fails, or reads a value nobody meant: pods get no (or wrong) networking.
    Error,
}

/// One thing wrong with a file, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Whether the file is unusable because of it.
    pub severity: Severity,
    /// The line, when the problem belongs to one.
    pub line: Option<usize>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What can be wrong with a subnet.env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Over [`MAX_SIZE`] bytes.
    TooLarge {
        /// The size found.
        size: u64,
    },
    /// Zero bytes.
    Empty,
    /// A line the plugin's scanner refuses (over 64 KiB).
    LineTooLong,
    /// A line that is not UTF-8 text.
    NotText,
    /// A non-blank line with no `=`.
    NoEquals {
        /// The line, lossily decoded and shortened.
        text: String,
    },
    /// A blank line (the plugin skips it; flannel never writes one).
    BlankLine,
    /// Required keys absent, named as the plugin names them.
    Missing {
        /// The key list exactly as the plugin prints it.
        keys: Vec<&'static str>,
    },
    /// A key that is not flannel's but looks like one of them.
    LooksLike {
        /// The key as found.
        found: String,
        /// The flannel key it was probably meant to be.
        key: &'static str,
    },
    /// A key flannel does not write.
    UnknownKey {
        /// The key as found.
        found: String,
    },
    /// A key set more than once (the last one wins).
    Duplicate {
        /// The key.
        key: &'static str,
    },
    /// A value that is not a CIDR.
    BadCidr {
        /// The key.
        key: &'static str,
        /// The value as found.
        value: String,
    },
    /// An IPv4 key holding IPv6, or the reverse.
    WrongFamily {
        /// The key.
        key: &'static str,
        /// The CIDR found.
        value: IpNet,
    },
    /// `FLANNEL_MTU` not an unsigned decimal.
    BadMtu {
        /// The value as found.
        value: String,
    },
    /// `FLANNEL_MTU` outside what a link can carry.
    MtuOutOfRange {
        /// The MTU.
        mtu: u32,
        /// The smallest acceptable value (68, or 1280 with IPv6).
        min: u32,
    },
    /// `FLANNEL_IPMASQ` neither `true` nor `false`.
    BadIpmasq {
        /// The value as found.
        value: String,
    },
    /// A network key without its subnet key, or the reverse.
    Unpaired {
        /// The key present.
        present: &'static str,
        /// The key missing.
        missing: &'static str,
    },
    /// The node's subnet is outside every cluster network.
    SubnetOutsideNetwork {
        /// The subnet key.
        key: &'static str,
        /// The subnet.
        subnet: IpNet,
    },
    /// The subnet's address is not the lease's first host.
    HostNotFirst {
        /// The subnet key.
        key: &'static str,
        /// The subnet as written.
        subnet: IpNet,
        /// What flannel would have written.
        expected: IpNet,
    },
    /// The subnet leaves no room for a gateway address (a /32 or /128).
    TooSmall {
        /// The subnet key.
        key: &'static str,
        /// The subnet.
        subnet: IpNet,
    },
    /// Lines end in CRLF (the plugin tolerates it).
    CrLf,
    /// The last line has no newline.
    NoFinalNewline,
    /// Keys are not in the order flannel writes them.
    Order,
}

impl Problem {
    fn error(line: Option<usize>, kind: ProblemKind) -> Self {
        Problem {
            severity: Severity::Error,
            line,
            kind,
        }
    }

    fn warning(line: Option<usize>, kind: ProblemKind) -> Self {
        Problem {
            severity: Severity::Warning,
            line,
            kind,
        }
    }

    /// What to do about it, for a human.
    pub fn hint(&self) -> &'static str {
        use ProblemKind::*;
        match &self.kind {
            TooLarge { .. } | NotText | LineTooLong | NoEquals { .. } | Empty => {
                "the file is damaged; restore it (rebootguard node restore) or regenerate it (rebootguard node regenerate --write)"
            }
            Missing { .. } => {
                "flannel never finished writing this file; restore or regenerate it, then restart k3s/flannel"
            }
            LooksLike { .. } => {
                "flannel matches keys exactly: no spaces, quotes, lower case or `export`"
            }
            BadCidr { value, .. } | BadMtu { value } | BadIpmasq { value }
                if value.trim() != value.as_str() || value.contains(['"', '\'']) =>
            {
                "values are read verbatim: remove the quotes/spaces"
            }
            BadCidr { .. } | WrongFamily { .. } => {
                "the value must be a CIDR of the key's address family, e.g. 10.42.0.1/24"
            }
            BadMtu { .. } | MtuOutOfRange { .. } => {
                "FLANNEL_MTU must be the overlay MTU, e.g. 1450 for vxlan over a 1500-byte link"
            }
            BadIpmasq { .. } => {
                "the plugin treats anything but exactly `true` as false; write true or false"
            }
            Unpaired { .. } => "each NETWORK key needs its SUBNET key and the reverse",
            SubnetOutsideNetwork { .. } => {
                "this subnet belongs to another cluster; regenerate the file from the node's podCIDR"
            }
            HostNotFirst { .. } | TooSmall { .. } => {
                "flannel writes the lease's first address (x.x.x.1); regenerate the file"
            }
            UnknownKey { .. } | Duplicate { .. } | BlankLine | CrLf | NoFinalNewline | Order => {
                "harmless, but not as flannel writes it; `rebootguard node regenerate` shows the canonical file"
            }
        }
    }

    /// The error text the flannel CNI plugin itself gives for this problem,
    /// when it fails on it (`path` is the file's path as the plugin saw it).
    pub fn plugin_message(&self, path: &str) -> Option<String> {
        use ProblemKind::*;
        match &self.kind {
            Missing { keys } => Some(format!("{path} is missing {}", keys.join(", "))),
            BadCidr { value, .. } => Some(format!("invalid CIDR address: {value}")),
            BadMtu { value } => Some(format!(
                "strconv.ParseUint: parsing {value:?}: {}",
                if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                    "value out of range"
                } else {
                    "invalid syntax"
                }
            )),
            LineTooLong => Some("bufio.Scanner: token too long".to_owned()),
            _ => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProblemKind::*;
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match &self.kind {
            TooLarge { size } => write!(f, "file is {size} bytes, over the {MAX_SIZE}-byte limit"),
            Empty => write!(f, "file is empty"),
            LineTooLong => write!(f, "line is longer than {MAX_LINE} bytes"),
            NotText => write!(f, "line is not UTF-8 text"),
            NoEquals { text } => write!(f, "no `=` in {text:?}"),
            BlankLine => write!(f, "blank line"),
            Missing { keys } => write!(f, "is missing {}", keys.join(", ")),
            LooksLike { found, key } => write!(f, "key {found:?} is not {key}, so it is ignored"),
            UnknownKey { found } => write!(f, "unknown key {found:?} (ignored)"),
            Duplicate { key } => write!(f, "{key} set again (the last value wins)"),
            BadCidr { key, value } => write!(f, "{key}={value:?} is not a CIDR"),
            WrongFamily { key, value } => write!(f, "{key}={value} has the wrong address family"),
            BadMtu { value } => write!(f, "FLANNEL_MTU={value:?} is not an unsigned number"),
            MtuOutOfRange { mtu, min } => {
                write!(f, "FLANNEL_MTU={mtu} is outside {min}..=65535")
            }
            BadIpmasq { value } => {
                write!(f, "FLANNEL_IPMASQ={value:?} is neither true nor false")
            }
            Unpaired { present, missing } => write!(f, "{present} is set but {missing} is not"),
            SubnetOutsideNetwork { key, subnet } => {
                write!(f, "{key}={subnet} is outside the cluster network")
            }
            HostNotFirst {
                key,
                subnet,
                expected,
            } => write!(f, "{key}={subnet} should be {expected}"),
            TooSmall { key, subnet } => write!(f, "{key}={subnet} has no room for pods"),
            CrLf => write!(f, "lines end with CRLF"),
            NoFinalNewline => write!(f, "no newline at the end of the file"),
            Order => write!(f, "keys are not in flannel's order"),
        }
    }
}

/// Reads `bytes` as the flannel CNI plugin would, then validates the result.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut env = SubnetEnv::default();
    let mut problems = Vec::new();

    if bytes.len() as u64 > MAX_SIZE {
        problems.push(Problem::error(
            None,
            ProblemKind::TooLarge {
                size: bytes.len() as u64,
            },
        ));
        return Parsed { env, problems };
    }
    if bytes.is_empty() {
        problems.push(Problem::error(None, ProblemKind::Empty));
    }

    let mut seen: Vec<&'static str> = Vec::new();
    let mut crlf = false;
    let mut raw_ipmasq: Option<(usize, String)> = None;
    let mut raw_mtu_line = None;

    for (index, raw_line) in lines(bytes).enumerate() {
        let number = index + 1;
        let line = match raw_line.strip_suffix(b"\r") {
            Some(stripped) => {
                crlf = true;
                stripped
            }
            None => raw_line,
        };
        if line.len() > MAX_LINE {
            problems.push(Problem::error(Some(number), ProblemKind::LineTooLong));
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            problems.push(Problem::error(Some(number), ProblemKind::NotText));
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            let problem = if line.trim().is_empty() {
                Problem::warning(Some(number), ProblemKind::BlankLine)
            } else {
                Problem::error(
                    Some(number),
                    ProblemKind::NoEquals {
                        text: shorten(line),
                    },
                )
            };
            problems.push(problem);
            continue;
        };
        let Some(key) = KEYS.iter().copied().find(|k| *k == key) else {
            let kind = match resembles(key) {
                Some(known) => ProblemKind::LooksLike {
                    found: shorten(key),
                    key: known,
                },
                None => ProblemKind::UnknownKey {
                    found: shorten(key),
                },
            };
            let severity = if matches!(kind, ProblemKind::LooksLike { .. }) {
                Severity::Error
            } else {
                Severity::Warning
            };
            problems.push(Problem {
                severity,
                line: Some(number),
                kind,
            });
            continue;
        };
        if seen.contains(&key) {
            problems.push(Problem::warning(
                Some(number),
                ProblemKind::Duplicate { key },
            ));
        }
        seen.push(key);

        let line = Some(number);
        match key {
            NETWORK | IPV6_NETWORK => {
                let mut networks = Vec::new();
                for item in value.split(',') {
                    match parse_cidr(key, item, line, &mut problems) {
                        Some(net) => networks.push(net),
                        None => break,
                    }
                }
                if key == NETWORK {
                    env.networks = networks;
                } else {
                    env.ipv6_networks = networks;
                }
            }
            SUBNET => env.subnet = parse_cidr(key, value, line, &mut problems),
            IPV6_SUBNET => env.ipv6_subnet = parse_cidr(key, value, line, &mut problems),
            MTU => {
                raw_mtu_line = line;
                match value.parse::<u32>() {
                    // Go's ParseUint takes only ASCII digits; Rust also takes a leading `+`.
                    Ok(mtu) if !value.starts_with('+') => env.mtu = Some(mtu),
                    _ => {
                        env.mtu = None;
                        problems.push(Problem::error(
                            line,
                            ProblemKind::BadMtu {
                                value: shorten(value),
                            },
                        ));
                    }
                }
            }
            IPMASQ => {
                env.ipmasq = Some(value == "true");
                raw_ipmasq = Some((number, value.to_owned()));
            }
            _ => unreachable!("KEYS covers every key"),
        }
    }

    if let Some((number, value)) = raw_ipmasq
        && value != "true"
        && value != "false"
    {
        problems.push(Problem::error(
            Some(number),
            ProblemKind::BadIpmasq {
                value: shorten(&value),
            },
        ));
    }

    let missing = env.missing();
    if !missing.is_empty() {
        problems.push(Problem::error(None, ProblemKind::Missing { keys: missing }));
    }

    if crlf {
        problems.push(Problem::warning(None, ProblemKind::CrLf));
    }
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        problems.push(Problem::warning(None, ProblemKind::NoFinalNewline));
    }
    let mut canonical = seen.clone();
    canonical.sort_by_key(|k| KEYS.iter().position(|known| known == k));
    canonical.dedup();
    let mut firsts = seen.clone();
    firsts.dedup();
    if firsts != canonical && firsts.len() == canonical.len() {
        problems.push(Problem::warning(None, ProblemKind::Order));
    }

    problems.extend(env.semantic_problems(raw_mtu_line));
    Parsed { env, problems }
}

impl SubnetEnv {
    /// The required keys the plugin would report missing, in its wording.
    fn missing(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.networks.is_empty() && self.ipv6_networks.is_empty() {
            keys.extend([NETWORK, IPV6_NETWORK]);
        }
        if self.subnet.is_none() && self.ipv6_subnet.is_none() {
            keys.extend([SUBNET, IPV6_SUBNET]);
        }
        if self.mtu.is_none() {
            keys.push(MTU);
        }
        if self.ipmasq.is_none() {
            keys.push(IPMASQ);
        }
        keys
    }

    /// Checks beyond the plugin's: families, pairing, containment, host part, MTU range.
    fn semantic_problems(&self, mtu_line: Option<usize>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let families = [
            (NETWORK, SUBNET, &self.networks, self.subnet, false),
            (
                IPV6_NETWORK,
                IPV6_SUBNET,
                &self.ipv6_networks,
                self.ipv6_subnet,
                true,
            ),
        ];
        for (network_key, subnet_key, networks, subnet, v6) in families {
            for network in networks.iter().filter(|n| is_v6(n) != v6) {
                problems.push(Problem::error(
                    None,
                    ProblemKind::WrongFamily {
                        key: network_key,
                        value: *network,
                    },
                ));
            }
            match (networks.is_empty(), subnet) {
                (false, None) => problems.push(Problem::error(
                    None,
                    ProblemKind::Unpaired {
                        present: network_key,
                        missing: subnet_key,
                    },
                )),
                (true, Some(_)) => problems.push(Problem::error(
                    None,
                    ProblemKind::Unpaired {
                        present: subnet_key,
                        missing: network_key,
                    },
                )),
                _ => {}
            }
            let Some(subnet) = subnet else { continue };
            if is_v6(&subnet) != v6 {
                problems.push(Problem::error(
                    None,
                    ProblemKind::WrongFamily {
                        key: subnet_key,
                        value: subnet,
                    },
                ));
                continue;
            }
            if !networks.is_empty() && !networks.iter().any(|n| n.contains(&subnet.trunc())) {
                problems.push(Problem::error(
                    None,
                    ProblemKind::SubnetOutsideNetwork {
                        key: subnet_key,
                        subnet,
                    },
                ));
            }
            match first_host(subnet.trunc()) {
                Some(expected) if expected != subnet => problems.push(Problem::error(
                    None,
                    ProblemKind::HostNotFirst {
                        key: subnet_key,
                        subnet,
                        expected,
                    },
                )),
                Some(_) => {}
                None => problems.push(Problem::error(
                    None,
                    ProblemKind::TooSmall {
                        key: subnet_key,
                        subnet,
                    },
                )),
            }
        }
        if let Some(mtu) = self.mtu {
            let min = if self.ipv6_subnet.is_some() { 1280 } else { 68 };
            if !(min..=65535).contains(&mtu) {
                problems.push(Problem::error(
                    mtu_line,
                    ProblemKind::MtuOutOfRange { mtu, min },
                ));
            }
        }
        problems
    }

    /// Validates the values (as [`parse`] does for a file's content).
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut errors: Vec<Problem> = self.semantic_problems(None);
        let missing = self.missing();
        if !missing.is_empty() {
            errors.push(Problem::error(None, ProblemKind::Missing { keys: missing }));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The file exactly as flanneld and k3s write it: their key order, one
    /// `KEY=VALUE` per line, LF endings, comma-joined network lists.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(192);
        let mut line = |key: &str, value: &dyn fmt::Display| {
            out.push_str(key);
            out.push('=');
            out.push_str(&value.to_string());
            out.push('\n');
        };
        if !self.networks.is_empty() {
            line(NETWORK, &Joined(&self.networks));
        }
        if let Some(subnet) = &self.subnet {
            line(SUBNET, subnet);
        }
        if !self.ipv6_networks.is_empty() {
            line(IPV6_NETWORK, &Joined(&self.ipv6_networks));
        }
        if let Some(subnet) = &self.ipv6_subnet {
            line(IPV6_SUBNET, subnet);
        }
        if let Some(mtu) = self.mtu {
            line(MTU, &mtu);
        }
        if let Some(ipmasq) = self.ipmasq {
            line(IPMASQ, &ipmasq);
        }
        out
    }

    /// The node's leases as masked CIDRs (`10.42.0.1/24` → `10.42.0.0/24`),
    /// which is what node `spec.podCIDRs` holds.
    pub fn pod_cidrs(&self) -> Vec<IpNet> {
        self.subnet
            .iter()
            .chain(self.ipv6_subnet.iter())
            .map(IpNet::trunc)
            .collect()
    }
}

/// A lease's first host address (`10.42.0.0/24` → `10.42.0.1/24`), as flannel writes it.
pub fn first_host(lease: IpNet) -> Option<IpNet> {
    let network = lease.network();
    let next = match network {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).checked_add(1)?.into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).checked_add(1)?.into()),
    };
    let host = IpNet::new(next, lease.prefix_len()).ok()?;
    // A /32 or /128 has no room for a host after the network address.
    (host.trunc() == lease.trunc()).then_some(host)
}

fn is_v6(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(_))
}

fn parse_cidr(
    key: &'static str,
    value: &str,
    line: Option<usize>,
    problems: &mut Vec<Problem>,
) -> Option<IpNet> {
    match value.parse::<IpNet>() {
        Ok(net) => Some(net),
        Err(_) => {
            problems.push(Problem::error(
                line,
                ProblemKind::BadCidr {
                    key,
                    value: shorten(value),
                },
            ));
            None
        }
    }
}

/// The known key a mistyped one was meant to be: spaces, quotes, `export`
/// and case are the usual hand-editing slips.
fn resembles(key: &str) -> Option<&'static str> {
    let cleaned = key
        .trim()
        .trim_start_matches("export ")
        .trim()
        .trim_matches(['"', '\''])
        .to_ascii_uppercase();
    KEYS.iter().copied().find(|k| *k == cleaned)
}

/// Go's `bufio.ScanLines` without the `\r` handling (done by the caller):
/// a final line without `\n` still counts, an empty tail does not.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = bytes.is_empty();
    body.split(|b| *b == b'\n').filter(move |_| !empty)
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 80;
    if text.len() <= LIMIT {
        return text.to_owned();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

struct Joined<'a>(&'a [IpNet]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}
