//! A tiny DNS responder (CoreDNS's part in the cascade) and the lookups the
//! Flux controllers make, both over real UDP inside pod namespaces.
//!
//! Only what the lab needs: A queries answered from a table (one or more
//! addresses a name: a headless Service has one per pod), NXDOMAIN for any
//! other name. The table is the responder's arguments plus a records file
//! the lab rewrites from the API ([`crate::lab::Ctx::publish_dns`]:
//! `kubernetes.default`, every Service, headless ones by their pods),
//! read again whenever it changes, as CoreDNS follows the API.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Names and their addresses.
pub type Records = HashMap<String, Vec<Ipv4Addr>>;

/// `name=ip[,ip...]` lines (arguments or the records file) as a table;
/// names lower-cased, bad lines skipped.
pub fn parse_records<'a>(lines: impl IntoIterator<Item = &'a str>) -> Records {
    let mut table = Records::new();
    for line in lines {
        let Some((name, ips)) = line.trim().split_once('=') else {
            continue;
        };
        let ips: Vec<Ipv4Addr> = ips
            .split(',')
            .filter_map(|ip| ip.trim().parse().ok())
            .collect();
        table
            .entry(name.to_ascii_lowercase())
            .or_default()
            .extend(ips);
    }
    table
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer in time (no DNS server reachable).
    #[error("read udp {local}->{server}:53: i/o timeout")]
    Timeout {
        /// Our socket.
        local: String,
        /// The server.
        server: Ipv4Addr,
    },
    /// The server says the name does not exist.
    #[error("no such host")]
    NxDomain,
    /// The socket could not be used.
    #[error("failed to query {0}")]
    Socket(Ipv4Addr, #[source] std::io::Error),
    /// The answer made no sense.
    #[error("malformed DNS answer")]
    Malformed,
}

/// Encodes a query for `name`, type A.
pub fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        let l = label.as_bytes();
        m.push(u8::try_from(l.len().min(63)).unwrap_or(63));
        m.extend_from_slice(&l[..l.len().min(63)]);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// The question name and where the question ends, from a message.
fn question(m: &[u8]) -> Option<(String, usize)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*m.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(m.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    Some((labels.join("."), i + 4))
}

/// Most addresses in one answer over UDP (512 bytes); more set TC, and the
/// resolver asks again over TCP.
pub const UDP_ANSWERS: usize = 28;

/// The answer to `request` from `records` with at most `max` addresses
/// (more: truncated, TC set), or `None` for garbage. A name that exists
/// answers NOERROR, with its addresses for type A and none for other types
/// (AAAA).
pub fn answer_at_most(request: &[u8], records: &Records, max: usize) -> Option<Vec<u8>> {
    if request.len() < 12 {
        return None;
    }
    let (name, end) = question(request)?;
    let qtype = u16::from_be_bytes([*request.get(end - 4)?, *request.get(end - 3)?]);
    let mut m = request.get(..end)?.to_vec();
    m[2] = 0x85; // QR, AA, RD
    let exists = records.get(&name);
    m[3] = if exists.is_some() {
        0x80
    } else {
        0x83 // RA, NXDOMAIN
    };
    let ips: &[Ipv4Addr] = match exists {
        Some(ips) if qtype == 1 => ips,
        _ => &[],
    };
    if ips.len() > max {
        m[2] |= 0x02; // TC
    }
    let ips = &ips[..ips.len().min(max)];
    let count = u16::try_from(ips.len()).unwrap_or(0).to_be_bytes();
    m[6..12].copy_from_slice(&[count[0], count[1], 0, 0, 0, 0]);
    for ip in ips {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]);
        m.extend_from_slice(&ip.octets());
    }
    Some(m)
}

/// The answer to `request`, as over TCP (every address).
pub fn answer(request: &[u8], records: &Records) -> Option<Vec<u8>> {
    answer_at_most(request, records, usize::MAX)
}

/// `fixed` plus the records in `file`, read again whenever its
/// modification time or size changes.
struct Table<'a> {
    fixed: &'a Records,
    file: Option<&'a Path>,
    seen: Option<(SystemTime, u64)>,
    table: Records,
}

impl Table<'_> {
    fn current(&mut self) -> &Records {
        if let Some(file) = self.file {
            let stamp = std::fs::metadata(file)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            if stamp != self.seen {
                self.seen = stamp;
                self.table = self.fixed.clone();
                let text = std::fs::read_to_string(file).unwrap_or_default();
                for (name, ips) in parse_records(text.lines()) {
                    self.table.insert(name, ips);
                }
            }
        }
        &self.table
    }
}

/// Serves `fixed` plus the records in `file` on port 53 of every address,
/// UDP (truncated past [`UDP_ANSWERS`]) and TCP, until the process ends.
pub fn serve(fixed: &Records, file: Option<&Path>) -> std::io::Result<()> {
    let socket = UdpSocket::bind(("0.0.0.0", 53))?;
    let tcp = std::net::TcpListener::bind(("0.0.0.0", 53))?;
    let (f, path) = (fixed.clone(), file.map(Path::to_path_buf));
    std::thread::spawn(move || {
        let mut table = Table {
            fixed: &f,
            file: path.as_deref(),
            seen: None,
            table: f.clone(),
        };
        for stream in tcp.incoming().flatten() {
            let _ = serve_tcp(stream, table.current());
        }
    });
    let mut table = Table {
        fixed,
        file,
        seen: None,
        table: fixed.clone(),
    };
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        if let Some(reply) = answer_at_most(&buf[..n], table.current(), UDP_ANSWERS) {
            let _ = socket.send_to(&reply, from);
        }
    }
}

/// One TCP connection: length-prefixed questions, answered in full.
fn serve_tcp(mut stream: std::net::TcpStream, records: &Records) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len)?;
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut request)?;
        if let Some(reply) = answer(&request, records) {
            let len = u16::try_from(reply.len()).unwrap_or(u16::MAX).to_be_bytes();
            stream.write_all(&len)?;
            stream.write_all(&reply)?;
        }
    }
}

/// Looks `name` up at `server`, as a pod's resolver would (one try).
pub fn lookup(server: Ipv4Addr, name: &str, timeout: Duration) -> Result<Ipv4Addr, Error> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).map_err(|e| Error::Socket(server, e))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| Error::Socket(server, e))?;
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(7);
    let to = SocketAddr::from((server, 53));
    // An unreachable network is a timeout to the resolver as well.
    let _ = socket.send_to(&query(id, name), to);
    let local = socket
        .local_addr()
        .map_or_else(|_| "0.0.0.0:0".to_owned(), |a| a.to_string());
    let mut buf = [0u8; 512];
    let n = match socket.recv(&mut buf) {
        Ok(n) => n,
        Err(_) => return Err(Error::Timeout { local, server }),
    };
    let m = &buf[..n];
    if m.len() < 12 {
        return Err(Error::Malformed);
    }
    if m[3] & 0x0f == 3 {
        return Err(Error::NxDomain);
    }
    let (_, end) = question(m).ok_or(Error::Malformed)?;
    let rdata = m.get(end + 12..end + 16).ok_or(Error::Malformed)?;
    Ok(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_known_names_and_nxdomain_for_others() {
        let records = parse_records([
            "source-controller.flux-system.svc.cluster.local=10.43.0.50",
            "probes.rebootguard.svc.cluster.local=10.42.0.5,10.42.1.5",
            "empty.rebootguard.svc.cluster.local=",
            "garbage",
        ]);
        let a = answer(
            &query(7, "Source-Controller.flux-system.svc.cluster.local."),
            &records,
        )
        .unwrap();
        assert_eq!(&a[..2], &7u16.to_be_bytes());
        assert_eq!(a[3] & 0x0f, 0);
        assert_eq!(&a[a.len() - 4..], &[10, 43, 0, 50]);
        let n = answer(&query(8, "nope.svc.cluster.local"), &records).unwrap();
        assert_eq!(n[3] & 0x0f, 3);
        // A headless Service: one A record a pod.
        let h = answer(&query(9, "probes.rebootguard.svc.cluster.local"), &records).unwrap();
        assert_eq!(&h[6..8], &[0, 2]);
        assert_eq!(&h[h.len() - 20..h.len() - 16], &[10, 42, 0, 5]);
        assert_eq!(&h[h.len() - 4..], &[10, 42, 1, 5]);
        // A Service without endpoints exists: NOERROR, no address.
        let e = answer(&query(10, "empty.rebootguard.svc.cluster.local"), &records).unwrap();
        assert_eq!((e[3] & 0x0f, e[7]), (0, 0));
        assert_eq!(records.len(), 3);
        // Too many for UDP: truncated, TC set, the rest over TCP.
        let many = parse_records(
            ["big.x=".to_owned()
                + &(1..=40)
                    .map(|i| format!("10.42.{i}.5"))
                    .collect::<Vec<_>>()
                    .join(",")]
            .iter()
            .map(String::as_str),
        );
        let t = answer_at_most(&query(11, "big.x"), &many, UDP_ANSWERS).unwrap();
        assert!(t.len() <= 512 && t[2] & 0x02 != 0);
        assert_eq!(t[7], 28);
        let full = answer(&query(11, "big.x"), &many).unwrap();
        assert!(full[2] & 0x02 == 0 && full[7] == 40);
        assert!(answer(&[1, 2, 3], &records).is_none());
    }

    #[test]
    fn lookup_over_loopback() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        // lookup() always uses port 53; exercise the codec round trip here.
        let records = parse_records(["a.b=1.2.3.4"]);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .send_to(&query(1, "a.b"), ("127.0.0.1", port))
            .unwrap();
        let mut buf = [0u8; 512];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        server
            .send_to(&answer(&buf[..n], &records).unwrap(), from)
            .unwrap();
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[n - 4..n], &[1, 2, 3, 4]);
    }
}
