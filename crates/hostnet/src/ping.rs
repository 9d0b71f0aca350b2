//! ICMP echo (ping) without the `ping` binary, which minimal images lack.
//!
//! A raw ICMP socket sees every ICMP packet of its namespace: other pings'
//! replies, errors about other traffic, even our own request on loopback.
//! So each request carries an identifier, a sequence number and a cookie,
//! and only a reply (or an error quoting our request) that matches them
//! counts. Which packet counts is decided by a pure function
//! ([`classify`]), tested without a kernel.
//!
//! The socket is opened inside the target namespace, on a thread made for
//! the purpose ([`crate::netns::Netns::run`]). Raw sockets need root or
//! `CAP_NET_RAW`; without it the error says so ([`Error::Permission`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrIn6,
    SockaddrStorage, sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::netns::{self, Netns};

/// Why a ping failed. [`Error::Timeout`] is worth another try (a lost
/// packet); [`Error::Unreachable`] describes the routes as they are;
/// [`Error::Permission`] needs root or `CAP_NET_RAW`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The raw ICMP socket was refused: not root, or no `CAP_NET_RAW`.
    #[error("permission denied opening a raw ICMP socket: run as root or grant CAP_NET_RAW")]
    Permission(#[source] io::Error),
    /// The kernel or a router said the target cannot be reached.
    #[error("{target} is unreachable: {reason}")]
    Unreachable {
        /// The address pinged.
        target: IpAddr,
        /// Why, as the kernel or the reporting router put it.
        reason: String,
    },
    /// No matching reply in time.
    #[error("no reply from {target} within {} ms", timeout.as_millis())]
    Timeout {
        /// The address pinged.
        target: IpAddr,
        /// The bound.
        timeout: Duration,
    },
    /// The socket failed in another way.
    #[error("failed to ping {target}: could not {action}")]
    Socket {
        /// The address pinged.
        target: IpAddr,
        /// What was being done.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The namespace could not be entered.
    #[error(transparent)]
    Netns(#[from] netns::Error),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// Sends one echo request to `target` from inside `ns` (the calling
/// thread's namespace when `None`) and waits up to `timeout` for the reply;
/// returns the round-trip time. Blocks the calling thread.
pub fn ping(ns: Option<&Netns>, target: IpAddr, timeout: Duration) -> Result<Duration> {
    match ns {
        Some(ns) => ns.run(|| ping_here(target, timeout))?,
        None => ping_here(target, timeout),
    }
}

/// What a received packet means for the request in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The reply to our request.
    Reply,
    /// An ICMP error about our request: why the target is unreachable.
    Unreachable(String),
    /// Someone else's packet.
    Unrelated,
}

/// One echo request: what identifies it and its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// ICMP identifier.
    pub id: u16,
    /// ICMP sequence number.
    pub seq: u16,
    /// Payload the reply must echo.
    pub cookie: [u8; 16],
}

impl Echo {
    /// A request unique within this process, and very likely on the host.
    fn new() -> Echo {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut cookie = [0u8; 16];
        cookie[..8].copy_from_slice(b"rbtguard");
        cookie[8..].copy_from_slice(&(nanos as u64 ^ u64::from(n)).to_be_bytes());
        Echo {
            // Truncation intended: the pid's low bits, mixed with the high
            // bits of the counter, so (id, seq) never repeats in a process.
            id: (std::process::id() as u16) ^ ((n >> 16) as u16) ^ 0x5247,
            seq: n as u16,
            cookie,
        }
    }

    /// The ICMP (or ICMPv6) echo request message.
    pub fn request(&self, v4: bool) -> Vec<u8> {
        let mut packet = vec![if v4 { ECHO_REQUEST_V4 } else { ECHO_REQUEST_V6 }, 0, 0, 0];
        packet.extend_from_slice(&self.id.to_be_bytes());
        packet.extend_from_slice(&self.seq.to_be_bytes());
        packet.extend_from_slice(&self.cookie);
        // The kernel fills in the ICMPv6 checksum (it covers a pseudo-header).
        if v4 {
            let sum = checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        packet
    }
}

const ECHO_REPLY_V4: u8 = 0;
const UNREACHABLE_V4: u8 = 3;
const ECHO_REQUEST_V4: u8 = 8;
const TIME_EXCEEDED_V4: u8 = 11;
const UNREACHABLE_V6: u8 = 1;
const TIME_EXCEEDED_V6: u8 = 3;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

fn ping_here(target: IpAddr, timeout: Duration) -> Result<Duration> {
    let deadline = Instant::now() + timeout;
    let socket_error = |action, e: Errno| Error::Socket {
        target,
        action,
        source: e.into(),
    };
    let (family, protocol) = match target {
        IpAddr::V4(_) => (AddressFamily::Inet, SockProtocol::Icmp),
        IpAddr::V6(_) => (AddressFamily::Inet6, SockProtocol::IcmpV6),
    };
    let fd = socket::socket(family, SockType::Raw, SockFlag::SOCK_CLOEXEC, protocol).map_err(
        |e| match e {
            Errno::EPERM | Errno::EACCES => Error::Permission(e.into()),
            _ => socket_error("open a raw ICMP socket", e),
        },
    )?;
    let echo = Echo::new();
    let packet = echo.request(target.is_ipv4());
    let sent = Instant::now();
    let result = match target {
        IpAddr::V4(ip) => socket::sendto(
            fd.as_raw_fd(),
            &packet,
            &SockaddrIn::from(SocketAddrV4::new(ip, 0)),
            MsgFlags::empty(),
        ),
        IpAddr::V6(ip) => socket::sendto(
            fd.as_raw_fd(),
            &packet,
            &SockaddrIn6::from(SocketAddrV6::new(ip, 0, 0, 0)),
            MsgFlags::empty(),
        ),
    };
    result.map_err(|e| match e {
        Errno::ENETUNREACH => Error::Unreachable {
            target,
            reason: "no route to it (network is unreachable)".into(),
        },
        Errno::EHOSTUNREACH => Error::Unreachable {
            target,
            reason: "no route to host".into(),
        },
        _ => socket_error("send the echo request", e),
    })?;
    let mut buffer = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout { target, timeout });
        }
        // A zero timeout would mean "wait forever".
        let micros = i64::try_from(left.as_micros()).unwrap_or(i64::MAX).max(1);
        socket::setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::microseconds(micros))
            .map_err(|e| socket_error("set the receive timeout", e))?;
        let (len, from) = match socket::recvfrom::<SockaddrStorage>(fd.as_raw_fd(), &mut buffer) {
            Ok(received) => received,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(socket_error("receive", e)),
        };
        let from = from.and_then(|a| {
            a.as_sockaddr_in()
                .map(|a| IpAddr::V4(a.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
        });
        match classify(target, &echo, &buffer[..len], from) {
            Verdict::Reply => return Ok(sent.elapsed()),
            Verdict::Unreachable(reason) => return Err(Error::Unreachable { target, reason }),
            Verdict::Unrelated => {}
        }
    }
}

/// What `packet`, read from a raw socket of `target`'s family, means for
/// `echo`. IPv4 raw sockets deliver the IP header; IPv6 ones do not, so the
/// sender (`from`) comes from the socket address.
pub fn classify(target: IpAddr, echo: &Echo, packet: &[u8], from: Option<IpAddr>) -> Verdict {
    match target {
        IpAddr::V4(target) => classify_v4(target, echo, packet),
        IpAddr::V6(target) => classify_v6(target, echo, packet, from),
    }
}

fn classify_v4(target: Ipv4Addr, echo: &Echo, packet: &[u8]) -> Verdict {
    let Some((source, icmp)) = ipv4_payload(packet, PROTO_ICMP) else {
        return Verdict::Unrelated;
    };
    match (icmp.first().copied(), icmp.get(1).copied()) {
        (Some(ECHO_REPLY_V4), Some(0)) => {
            if source == target && echoes(icmp, echo, true) {
                Verdict::Reply
            } else {
                Verdict::Unrelated
            }
        }
        (Some(kind @ (UNREACHABLE_V4 | TIME_EXCEEDED_V4)), Some(code)) => {
            let quoted = icmp
                .get(8..)
                .and_then(|inner| ipv4_destination(inner, PROTO_ICMP));
            match quoted {
                Some((destination, request))
                    if destination == target
                        && request.first() == Some(&ECHO_REQUEST_V4)
                        && echoes(request, echo, false) =>
                {
                    Verdict::Unreachable(format!(
                        "{} (reported by {source})",
                        reason_v4(kind, code)
                    ))
                }
                _ => Verdict::Unrelated,
            }
        }
        _ => Verdict::Unrelated,
    }
}

fn classify_v6(target: Ipv6Addr, echo: &Echo, icmp: &[u8], from: Option<IpAddr>) -> Verdict {
    let source = from.map_or_else(|| "?".to_owned(), |ip| ip.to_string());
    match (icmp.first().copied(), icmp.get(1).copied()) {
        (Some(ECHO_REPLY_V6), Some(0)) => {
            if from == Some(IpAddr::V6(target)) && echoes(icmp, echo, true) {
                Verdict::Reply
            } else {
                Verdict::Unrelated
            }
        }
        (Some(kind @ (UNREACHABLE_V6 | TIME_EXCEEDED_V6)), Some(code)) => {
            // The quoted packet: a 40-byte IPv6 header, then our request
            // (extension headers are not expected on an echo request).
            let Some(inner) = icmp.get(8..) else {
                return Verdict::Unrelated;
            };
            let next_header = inner.get(6).copied();
            let destination = inner
                .get(24..40)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(Ipv6Addr::from);
            let request = inner.get(40..).unwrap_or_default();
            if next_header == Some(PROTO_ICMPV6)
                && destination == Some(target)
                && request.first() == Some(&ECHO_REQUEST_V6)
                && echoes(request, echo, false)
            {
                Verdict::Unreachable(format!("{} (reported by {source})", reason_v6(kind, code)))
            } else {
                Verdict::Unrelated
            }
        }
        _ => Verdict::Unrelated,
    }
}

/// Whether an echo message carries our identifier and sequence number
/// (and, when the whole payload is there, our cookie).
fn echoes(icmp: &[u8], echo: &Echo, whole: bool) -> bool {
    let field = |at: usize| {
        icmp.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    field(4) == Some(echo.id)
        && field(6) == Some(echo.seq)
        && (!whole || icmp.get(8..24) == Some(&echo.cookie[..]))
}

/// An IPv4 packet's source and payload, when it carries `protocol`.
fn ipv4_payload(packet: &[u8], protocol: u8) -> Option<(Ipv4Addr, &[u8])> {
    let (source, _, payload) = ipv4_parts(packet, protocol)?;
    Some((source, payload))
}

/// A quoted IPv4 packet's destination and payload, when it carries `protocol`.
fn ipv4_destination(packet: &[u8], protocol: u8) -> Option<(Ipv4Addr, &[u8])> {
    let (_, destination, payload) = ipv4_parts(packet, protocol)?;
    Some((destination, payload))
}

fn ipv4_parts(packet: &[u8], protocol: u8) -> Option<(Ipv4Addr, Ipv4Addr, &[u8])> {
    let first = *packet.first()?;
    let header = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header < 20 || *packet.get(9)? != protocol {
        return None;
    }
    let address = |at: usize| {
        packet
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(Ipv4Addr::from)
    };
    Some((address(12)?, address(16)?, packet.get(header..)?))
}

fn reason_v4(kind: u8, code: u8) -> String {
    match (kind, code) {
        (TIME_EXCEEDED_V4, _) => "time to live exceeded".into(),
        (_, 0) => "network unreachable".into(),
        (_, 1) => "destination host unreachable".into(),
        (_, 2) => "protocol unreachable".into(),
        (_, 3) => "port unreachable".into(),
        (_, 4) => "fragmentation needed".into(),
        (_, 9 | 10 | 13) => "communication administratively prohibited".into(),
        (_, other) => format!("destination unreachable (code {other})"),
    }
}

fn reason_v6(kind: u8, code: u8) -> String {
    match (kind, code) {
        (TIME_EXCEEDED_V6, _) => "hop limit exceeded".into(),
        (_, 0) => "no route to destination".into(),
        (_, 1) => "communication administratively prohibited".into(),
        (_, 3) => "address unreachable".into(),
        (_, 4) => "port unreachable".into(),
        (_, other) => format!("destination unreachable (code {other})"),
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Echo {
        Echo {
            id: 0x1234,
            seq: 7,
            cookie: *b"rbtguard\x00\x01\x02\x03\x04\x05\x06\x07",
        }
    }

    fn ipv4(source: [u8; 4], destination: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0];
        packet.extend_from_slice(&source);
        packet.extend_from_slice(&destination);
        packet.extend_from_slice(payload);
        packet
    }

    fn reply(request: &[u8], kind: u8) -> Vec<u8> {
        let mut reply = request.to_vec();
        reply[0] = kind;
        reply
    }

    #[test]
    fn request_checksum_verifies() {
        let request = echo().request(true);
        assert_eq!(request[0], ECHO_REQUEST_V4);
        assert_eq!(checksum(&request), 0, "a correct checksum sums to zero");
        assert_eq!(checksum(&[0x45, 0x00, 0x00]), !0x4500);
        // ICMPv6: the kernel computes it.
        assert_eq!(&echo().request(false)[..4], &[ECHO_REQUEST_V6, 0, 0, 0]);
    }

    #[test]
    fn v4_replies_match_by_id_sequence_cookie_and_source() {
        let echo = echo();
        let target = IpAddr::from([10, 42, 0, 1]);
        let ours = reply(&echo.request(true), ECHO_REPLY_V4);
        let packet = ipv4([10, 42, 0, 1], [10, 42, 0, 5], PROTO_ICMP, &ours);
        assert_eq!(classify(target, &echo, &packet, None), Verdict::Reply);

        // Another pinger's reply, our own request looping back, another
        // host's reply, a UDP packet, garbage: all ignored.
        let mut other = echo.clone();
        other.seq = 8;
        let theirs = reply(&other.request(true), ECHO_REPLY_V4);
        let own_request = echo.request(true);
        for unrelated in [
            ipv4([10, 42, 0, 1], [10, 42, 0, 5], PROTO_ICMP, &theirs),
            ipv4([10, 42, 0, 1], [10, 42, 0, 5], PROTO_ICMP, &own_request),
            ipv4([10, 42, 0, 9], [10, 42, 0, 5], PROTO_ICMP, &ours),
            ipv4([10, 42, 0, 1], [10, 42, 0, 5], 17, &ours),
            vec![0x45, 0],
            Vec::new(),
        ] {
            assert_eq!(
                classify(target, &echo, &unrelated, None),
                Verdict::Unrelated
            );
        }
    }

    #[test]
    fn v4_errors_quoting_our_request_mean_unreachable() {
        let echo = echo();
        let target = IpAddr::from([10, 42, 1, 0]);
        let quoted = ipv4(
            [10, 42, 0, 5],
            [10, 42, 1, 0],
            PROTO_ICMP,
            &echo.request(true)[..8],
        );
        let mut error = vec![UNREACHABLE_V4, 1, 0, 0, 0, 0, 0, 0];
        error.extend_from_slice(&quoted);
        let packet = ipv4([10, 42, 0, 1], [10, 42, 0, 5], PROTO_ICMP, &error);
        assert_eq!(
            classify(target, &echo, &packet, None),
            Verdict::Unreachable("destination host unreachable (reported by 10.42.0.1)".into())
        );
        // The same error about another destination is not ours.
        assert_eq!(
            classify(IpAddr::from([10, 42, 2, 0]), &echo, &packet, None),
            Verdict::Unrelated
        );
    }

    #[test]
    fn v6_replies_and_errors() {
        let echo = echo();
        let target: IpAddr = "fd00::1".parse().expect("ip");
        let ours = reply(&echo.request(false), ECHO_REPLY_V6);
        assert_eq!(classify(target, &echo, &ours, Some(target)), Verdict::Reply);
        let elsewhere: IpAddr = "fd00::2".parse().expect("ip");
        assert_eq!(
            classify(target, &echo, &ours, Some(elsewhere)),
            Verdict::Unrelated
        );

        let mut inner = vec![0x60, 0, 0, 0, 0, 24, PROTO_ICMPV6, 64];
        inner.extend_from_slice(&[0; 16]);
        inner.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().expect("ip").octets());
        inner.extend_from_slice(&echo.request(false));
        let mut error = vec![UNREACHABLE_V6, 3, 0, 0, 0, 0, 0, 0];
        error.extend_from_slice(&inner);
        assert_eq!(
            classify(target, &echo, &error, Some(elsewhere)),
            Verdict::Unreachable("address unreachable (reported by fd00::2)".into())
        );
    }
}
