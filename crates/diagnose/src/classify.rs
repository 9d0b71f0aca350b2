//! Recognising failures from the text Kubernetes and its plugins print.
//!
//! Every rule matches by case-insensitive substring, never by the whole
//! message: the wrappers around an error change between versions (containerd
//! prefixes, the flannel plugin's old `loadFlannelSubnetEnv failed:` and new
//! `failed to load flannel 'subnet.env' file:` wordings, the event recorder's
//! `(combined from similar events): `), the inner error does not.

pub use crate::cni::{Sandbox, is_sandbox_failure, pod_network_reason, sandbox};

fn has(hay: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| contains_ci(hay, n))
}

/// ASCII case-insensitive substring search without allocating.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Termination reasons given to a container whose process nobody saw end:
/// containerd, restarting after a reboot, finds the task gone and reports
/// `Unknown`; the kubelet, unable to locate the container at all,
/// `ContainerStatusUnknown`.
pub const LOST_CONTAINER_REASONS: [&str; 2] = ["Unknown", "ContainerStatusUnknown"];

/// The exit code containerd reports for a task that vanished with the
/// machine (it never saw an exit status).
pub const LOST_CONTAINER_EXIT_CODE: i64 = 255;

/// Whether a termination is the runtime losing the container (a reboot, a
/// runtime restart) rather than the application exiting. Whether it
/// happened at the boot is for the caller to tell from the times.
pub fn lost_container(reason: &str, exit_code: i64) -> bool {
    LOST_CONTAINER_REASONS.contains(&reason) || exit_code == LOST_CONTAINER_EXIT_CODE
}

/// Texts that mean name resolution failed wherever they appear, as the
/// resolvers and clients in pods print them, beside [`DNS_ANSWERED`] and
/// [`DNS_NO_ANSWER`] (which also say how it failed).
pub const DNS_FAILURES: [&str; 10] = [
    // glibc/musl getaddrinfo (EAI_NODATA), as Go's cgo resolver, Python,
    // Ruby and most C clients print them.
    "no address associated with hostname",
    "nodename nor servname provided",
    "name does not resolve",
    // node.js.
    "getaddrinfo failed",
    // curl, libpq, Rust's std, Java.
    "could not resolve host",
    "could not translate host name",
    "failed to lookup address information",
    "unknownhostexception",
    // Tools.
    "dns resolution failed",
    "name resolution",
];

/// Texts of an answered lookup: the name does not exist, or the server
/// failed or refused it (NXDOMAIN, SERVFAIL, REFUSED).
pub const DNS_ANSWERED: [&str; 7] = [
    // Go's resolver: `lookup H on 10.43.0.10:53: no such host`, and
    // `server misbehaving` for SERVFAIL/REFUSED answers.
    "no such host",
    "server misbehaving",
    // glibc/musl EAI_NONAME; node.js's `getaddrinfo ENOTFOUND h`.
    "name or service not known",
    "enotfound",
    // Answers as dig/nslookup print them.
    "nxdomain",
    "servfail",
    "server can't find",
];

/// Texts of a lookup that got no answer at all: no DNS server could be
/// reached.
pub const DNS_NO_ANSWER: [&str; 3] = [
    // glibc/musl EAI_AGAIN, node.js's `getaddrinfo EAI_AGAIN h`: every
    // server timed out.
    "temporary failure in name resolution",
    "eai_again",
    // dig/nslookup.
    "no servers could be reached",
];

/// Transport failures that mean resolution failed when they are about a
/// lookup or a DNS server (`dial udp 10.43.0.10:53: connect: network is
/// unreachable`, `read udp 10.42.1.9:50211->10.43.0.10:53: i/o timeout`).
pub const DNS_TRANSPORT_FAILURES: [&str; 7] = [
    "i/o timeout",
    "connection refused",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "operation was canceled",
    "try again",
];

/// Whether a message reports failing name resolution: a text of
/// [`DNS_FAILURES`], [`DNS_ANSWERED`] or [`DNS_NO_ANSWER`], Go's `lookup H
/// on SERVER:53: ...` whatever follows, or a transport failure
/// ([`DNS_TRANSPORT_FAILURES`]) about a lookup or a DNS server's address.
pub fn is_dns_error(message: &str) -> bool {
    if has(message, &DNS_FAILURES) || has(message, &DNS_ANSWERED) || has(message, &DNS_NO_ANSWER) {
        return true;
    }
    let lookup = contains_ci(message, "lookup ");
    let server = dns_server(message).is_some();
    (lookup && server) || ((lookup || server) && has(message, &DNS_TRANSPORT_FAILURES))
}

/// The first DNS server address the message names, port included
/// (`10.43.0.10:53`, `[fd00:43::a]:53`, `kube-dns.kube-system.svc:53`), not
/// a time of day (`07:12:53`) or another port (`:5353`).
fn dns_server(message: &str) -> Option<&str> {
    let b = message.as_bytes();
    let mut from = 0;
    while let Some(at) = message[from..].find(":53").map(|i| i + from) {
        from = at + 3;
        if b.get(at + 3).is_some_and(u8::is_ascii_digit) {
            continue;
        }
        if at > 0 && b[at - 1] == b']' {
            let open = message[..at].rfind('[')?;
            return Some(&message[open..at + 3]);
        }
        let host = message[..at]
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .next()
            .unwrap_or("");
        if host.contains('.') && !host.starts_with('.') && !host.ends_with('.') {
            return Some(&message[at - host.len()..at + 3]);
        }
    }
    None
}

/// Whether a failed lookup never reached a DNS server (a timeout, a refused
/// or unroutable connection to it, EAI_AGAIN): the path to cluster DNS is
/// broken, not the name. With the server named (`10.43.0.10:53` in Go's
/// `lookup H on 10.43.0.10:53: read udp ...: i/o timeout`), `Some(server)`;
/// `Some("")` when the text names none.
pub fn dns_unreachable(message: &str) -> Option<&str> {
    if !is_dns_error(message) || has(message, &DNS_ANSWERED) {
        return None;
    }
    // dig/nslookup's `;; connection timed out` too.
    (has(message, &DNS_TRANSPORT_FAILURES)
        || has(message, &DNS_NO_ANSWER)
        || contains_ci(message, "connection timed out"))
    .then(|| dns_server(message).unwrap_or(""))
}

/// The part of a message from its DNS lookup on (`lookup x on y:53: ...`).
pub fn dns_snippet(message: &str) -> Option<&str> {
    let at = message.find("lookup ")?;
    Some(message[at..].trim_end_matches(['"', '}']))
}

/// Whether a volume event reports a failure.
pub fn is_volume_failure(reason: &str, message: &str) -> bool {
    matches!(
        reason,
        "FailedAttachVolume" | "FailedMount" | "FailedMapVolume" | "FailedUnMount"
    ) || has(
        message,
        &[
            "attachvolume.attach failed",
            "mountvolume.setup failed",
            "mountvolume.mountdevice failed",
        ],
    )
}

/// Whether a volume event is the kubelet's summary of a mount that timed
/// out (`Unable to attach or mount volumes: unmounted volumes=[...]`), which
/// names no cause, rather than the failing operation's own error.
pub fn is_volume_summary(message: &str) -> bool {
    contains_ci(message, "unable to attach or mount volumes")
}

/// The last line of a log excerpt that reports an error (`[FATAL]`,
/// `panic:`, `level=error`, `Error:` ...), else its last non-empty line.
pub fn last_error_line<S: AsRef<str>>(lines: &[S]) -> Option<&str> {
    let lines = || {
        lines
            .iter()
            .map(|l| l.as_ref().trim())
            .filter(|l| !l.is_empty())
    };
    lines()
        .rfind(|l| has(l, &["fatal", "panic", "error", "failed", "refused"]))
        .or_else(|| lines().last())
}

/// Whether a NotReady node's `Ready` message is its container runtime
/// reporting the pod network not ready (`container runtime network not
/// ready: NetworkReady=false reason:NetworkPluginNotReady message:...`):
/// the kubelet runs, the CNI does not.
pub fn runtime_network_not_ready(message: &str) -> bool {
    has(
        message,
        &[
            "networkready=false",
            "runtime network not ready",
            "networkpluginnotready",
            "cni plugin not initialized",
        ],
    )
}

/// `driver name driver.longhorn.io not found in the list of registered CSI
/// drivers` → `driver.longhorn.io`.
pub fn unregistered_csi_driver(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    if let Some(at) = lower.find("does not contain driver ") {
        // The attacher's wording: `CSINode boromir does not contain driver X`.
        let rest = &message[at + "does not contain driver ".len()..];
        let name = rest.split([' ', '"', '\'', ',']).next().unwrap_or("");
        return (!name.is_empty()).then(|| name.to_string());
    }
    let end = lower.find("not found in the list of registered csi drivers")?;
    let before = message[..end].trim_end();
    let name = before.rsplit([' ', '"', '\'']).find(|s| !s.is_empty())?;
    Some(name.trim_matches(['"', '\'', ':']).to_string())
}

/// `failed calling webhook "validate.nginx.ingress.kubernetes.io"` → the name.
pub fn failed_webhook(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("failed calling webhook")?;
    let rest = &message[at + "failed calling webhook".len()..];
    let rest = rest.trim_start().trim_start_matches(['"', '\\']);
    let name: String = rest
        .chars()
        .take_while(|c| !matches!(c, '"' | '\\' | ':' | ' '))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Whether an image pull failed (waiting reason or event).
pub fn is_image_pull_failure(reason: &str, message: &str) -> bool {
    matches!(
        reason,
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull"
    ) || has(message, &["failed to pull image", "back-off pulling image"])
}

/// Why a FailedScheduling event failed, when it names not-ready nodes.
pub fn unschedulable_due_to_node_down(message: &str) -> bool {
    has(
        message,
        &[
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
            "node(s) were unschedulable",
        ],
    )
}

/// The node conditions under which the kubelet evicts pods.
pub const PRESSURE_CONDITIONS: [&str; 3] = ["DiskPressure", "MemoryPressure", "PIDPressure"];

/// Whether a FailedScheduling message names a node-pressure taint
/// (`node.kubernetes.io/disk-pressure`, `memory-pressure`, `pid-pressure`).
pub fn unschedulable_due_to_pressure(message: &str) -> bool {
    has(
        message,
        &[
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/pid-pressure",
        ],
    )
}

/// Whether a pod was evicted by its kubelet under node pressure (phase
/// `Failed`, reason `Evicted`).
pub fn evicted(phase: &str, reason: &str) -> bool {
    phase == "Failed" && reason == "Evicted"
}

/// `dependency 'flux-system/infra' is not ready` → `("flux-system", "infra")`.
pub fn flux_dependency(message: &str) -> Option<(String, String)> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("dependency '")?;
    let rest = &message[at + "dependency '".len()..];
    let id = rest.split('\'').next()?;
    let (ns, name) = id.split_once('/')?;
    Some((ns.to_string(), name.to_string()))
}

/// The boot ID named in a `Rebooted` event, when present.
pub fn rebooted_boot_id(message: &str) -> Option<&str> {
    let at = message.find("boot id:")?;
    let id = message[at + "boot id:".len()..].trim();
    (!id.is_empty()).then_some(id)
}

/// The innermost error of a gRPC chain (`rpc error: code = X desc = ...`,
/// as Argo CD's repo-server and containerd wrap theirs): what comes after
/// the last `desc = `, else the whole message.
pub fn innermost(message: &str) -> &str {
    message
        .rfind("desc = ")
        .map_or(message, |at| &message[at + "desc = ".len()..])
}

/// Shortens a message for titles: first line, at most `max` characters.
pub fn short(message: &str, max: usize) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let mut s: String = line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csi_driver_name_is_extracted() {
        let m = "AttachVolume.Attach failed for volume \"pvc-1\" : CSINode boromir does not contain driver driver.longhorn.io";
        assert_eq!(
            unregistered_csi_driver(m).as_deref(),
            Some("driver.longhorn.io")
        );
        let m = "MountVolume.MountDevice failed for volume \"pvc-1\" : kubernetes.io/csi: attacher.MountDevice failed to create newCsiDriverClient: driver name driver.longhorn.io not found in the list of registered CSI drivers";
        assert_eq!(
            unregistered_csi_driver(m).as_deref(),
            Some("driver.longhorn.io")
        );
    }

    #[test]
    fn a_lost_container_is_the_runtimes_word_not_the_apps() {
        assert!(lost_container("Unknown", 255));
        assert!(lost_container("ContainerStatusUnknown", 137));
        assert!(lost_container("", 255));
        assert!(!lost_container("Error", 1));
        assert!(!lost_container("OOMKilled", 137));
    }

    #[test]
    fn dns_errors() {
        assert!(is_dns_error(
            "dial tcp: lookup source-controller.flux-system.svc.cluster.local on 10.43.0.10:53: no such host"
        ));
        assert!(is_dns_error(
            "dial tcp: lookup github.com on 10.43.0.10:53: read udp 10.42.1.5:4000->10.43.0.10:53: i/o timeout"
        ));
        assert!(!is_dns_error("connection refused to 10.0.0.1:443"));
    }

    #[test]
    fn every_resolver_wording_is_a_dns_error() {
        for m in [
            "dial tcp: lookup source-controller.flux-system.svc.cluster.local on 10.43.0.10:53: server misbehaving",
            "Get \"https://ghcr.io/v2/\": dial tcp: lookup ghcr.io on 10.43.0.10:53: read udp 10.42.1.9:50211->10.43.0.10:53: read: connection refused",
            "lookup postgres.apps.svc.cluster.local on 10.43.0.10:53: dial udp 10.43.0.10:53: connect: network is unreachable",
            "dial udp 10.43.0.10:53: connect: no route to host",
            "lookup redis: Temporary failure in name resolution",
            "lookup [fd00:43::a]:53 failed",
            "socket.gaierror: [Errno -2] Name or service not known",
            "psycopg2.OperationalError: could not translate host name \"db\" to address: Name or service not known",
            "Error: getaddrinfo ENOTFOUND api.example.com",
            "Error: getaddrinfo EAI_AGAIN registry.npmjs.org",
            "curl: (6) Could not resolve host: example.com",
            "error sending request for url (https://x/): error trying to connect: dns error: failed to lookup address information: Try again",
            "java.net.UnknownHostException: kafka-0.kafka-headless",
            "** server can't find db.apps.svc.cluster.local: NXDOMAIN",
            ";; connection timed out; no servers could be reached",
            "wget: bad address 'x': Name does not resolve",
        ] {
            assert!(is_dns_error(m), "{m}");
        }
        for m in [
            "2026-01-31T07:12:53Z dial tcp 10.0.0.5:443: i/o timeout",
            "listening on 0.0.0.0:5353: connection refused",
            "at 12:53: connection reset by peer",
            "[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone \".\"",
            "dial tcp 10.43.12.7:8080: connect: connection refused",
        ] {
            assert!(!is_dns_error(m), "{m}");
        }
    }

    #[test]
    fn a_dns_server_out_of_reach_is_told_from_an_answer() {
        for (m, server) in [
            (
                "dial tcp: lookup redis.shop.svc.cluster.local on 10.43.0.10:53: read udp 10.42.2.14:41020->10.43.0.10:53: i/o timeout",
                "10.43.0.10:53",
            ),
            (
                "lookup db on [fd00:43::a]:53: dial udp [fd00:43::a]:53: connect: network is unreachable",
                "[fd00:43::a]:53",
            ),
            (
                "Error: getaddrinfo EAI_AGAIN redis.shop.svc.cluster.local",
                "",
            ),
            (
                "socket.gaierror: [Errno -3] Temporary failure in name resolution",
                "",
            ),
            (";; connection timed out; no servers could be reached", ""),
        ] {
            assert_eq!(dns_unreachable(m), Some(server), "{m}");
        }
        for m in [
            "dial tcp: lookup redis on 10.43.0.10:53: no such host",
            "lookup x on 10.43.0.10:53: server misbehaving",
            "Error: getaddrinfo ENOTFOUND api.example.com",
            "** server can't find db.apps.svc.cluster.local: NXDOMAIN",
            "dial tcp 10.43.12.7:8080: connect: connection refused",
        ] {
            assert_eq!(dns_unreachable(m), None, "{m}");
        }
    }

    #[test]
    fn webhook_and_flux_parsing() {
        assert_eq!(
            failed_webhook("Internal error occurred: failed calling webhook \"validate.nginx.ingress.kubernetes.io\": failed to call webhook: Post ...").as_deref(),
            Some("validate.nginx.ingress.kubernetes.io")
        );
        assert_eq!(
            flux_dependency("dependency 'flux-system/infra' is not ready"),
            Some(("flux-system".into(), "infra".into()))
        );
        assert_eq!(
            rebooted_boot_id("Node boromir has been rebooted, boot id: abc-1"),
            Some("abc-1")
        );
    }

    #[test]
    fn the_innermost_error_of_a_grpc_chain() {
        assert_eq!(
            innermost(
                "failed to generate manifest: rpc error: code = Unknown desc = rpc error: code = NotFound desc = repository not found"
            ),
            "repository not found"
        );
        assert_eq!(innermost("plain"), "plain");
    }

    #[test]
    fn contains_ci_is_case_insensitive_and_safe() {
        assert!(contains_ci("No Such Host", "no such host"));
        assert!(!contains_ci("ab", "abc"));
        assert!(contains_ci("é no such host", "NO SUCH"));
    }
}
