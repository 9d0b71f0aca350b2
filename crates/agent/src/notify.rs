//! systemd's notification protocol: `READY=1` once the agent has judged
//! the node, `WATCHDOG=1` while its loop turns, `STOPPING=1` on the way
//! out. A datagram to `$NOTIFY_SOCKET`; without it (not under systemd, or
//! in a pod) every call does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The notification socket, if systemd gave one.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` and `WATCHDOG_USEC` (ignored unless `WATCHDOG_PID`
    /// is ours or unset, as systemd documents).
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .and_then(|path| address(&path))
            .and_then(|addr| UnixDatagram::unbound().ok().map(|s| (s, addr)));
        let ours = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|pid| pid.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|us| us.trim().parse::<u64>().ok())
            .filter(|us| *us > 0 && ours)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// How often to send `WATCHDOG=1` (half the watchdog timeout), if asked.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Sends one state string (`READY=1`, `STATUS=...`).
    pub fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.socket
            && let Err(e) = socket.send_to_addr(state.as_bytes(), addr)
        {
            tracing::debug!("sd_notify {state:?} failed: {e}");
        }
    }
}

/// `/path` or `@abstract` as a socket address.
fn address(path: &str) -> Option<SocketAddr> {
    match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok(),
        None if path.starts_with('/') => SocketAddr::from_pathname(path).ok(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_a_socket_like_systemds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier {
            socket: address(path.to_str().expect("utf-8"))
                .and_then(|a| UnixDatagram::unbound().ok().map(|s| (s, a))),
            watchdog: Some(Duration::from_secs(30)),
        };
        notifier.send("READY=1");
        let mut buf = [0u8; 64];
        let n = systemd.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(15)));
        assert!(address("relative").is_none());
        assert!(address("@rebootguard-test").is_some());
    }
}
