//! ICMP echo from inside namespaces, without the `ping` binary: loopback
//! answers, a destination without a route fails at once, an on-link address
//! nobody answers for times out within the bound, and without CAP_NET_RAW
//! the error says so. Needs root; prints why it skips otherwise.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rebootguard_hostnet::link::{self, Netlink};
use rebootguard_hostnet::netns::{Netns, test_privileged};
use rebootguard_hostnet::ping::{Error, ping};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IP")
}

/// A fresh namespace with `lo` up.
fn fresh() -> Netns {
    let ns = Netns::new().expect("namespace");
    link::blocking(Some(&ns), |netlink: Netlink| async move {
        netlink.set_up("lo").await
    })
    .expect("lo up");
    ns
}

fn ipv6() -> bool {
    let on = Path::new("/proc/sys/net/ipv6").is_dir();
    if !on {
        eprintln!("note: IPv6 is disabled here; IPv6 cases skipped");
    }
    on
}

#[test]
fn loopback_answers() {
    if !test_privileged("loopback_answers") {
        return;
    }
    let ns = fresh();
    let mut targets = vec![ip("127.0.0.1")];
    if ipv6() {
        targets.push(ip("::1"));
    }
    for target in targets {
        let rtt = ping(Some(&ns), target, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(rtt < Duration::from_secs(1), "{target}: {rtt:?}");
        // Several in a row: each matches its own reply.
        for _ in 0..3 {
            ping(Some(&ns), target, Duration::from_secs(2)).expect("again");
        }
    }
}

#[test]
fn loopback_down_or_no_route_is_unreachable_at_once() {
    if !test_privileged("loopback_down_or_no_route_is_unreachable_at_once") {
        return;
    }
    let down = Netns::new().expect("namespace");
    let up = fresh();
    let mut cases = vec![
        (&down, ip("127.0.0.1")),
        (&up, ip("192.0.2.1")),
        (&up, ip("10.42.1.0")),
    ];
    if ipv6() {
        cases.push((&up, ip("2001:db8::1")));
    }
    for (ns, target) in cases {
        let start = Instant::now();
        let err = ping(Some(ns), target, Duration::from_secs(5)).expect_err("no route");
        assert!(
            matches!(err, Error::Unreachable { .. }),
            "{target}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("unreachable") && text.contains("no route"),
            "{text}"
        );
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{target} failed fast: {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn unanswered_on_link_address_times_out_within_the_bound() {
    if !test_privileged("unanswered_on_link_address_times_out_within_the_bound") {
        return;
    }
    let ns = fresh();
    let silent = Netns::new().expect("peer namespace");
    let peer = &silent;
    link::blocking(Some(&ns), |netlink: Netlink| async move {
        netlink.add_veth("v0", "v1", Some(peer)).await?;
        netlink
            .add_address("v0", "10.9.0.1/24".parse::<IpNet>().expect("cidr"))
            .await?;
        netlink.set_up("v0").await
    })
    .expect("veth");
    link::blocking(Some(&silent), |netlink: Netlink| async move {
        netlink.set_up("v1").await
    })
    .expect("peer up");
    let bound = Duration::from_millis(300);
    let start = Instant::now();
    let err = ping(Some(&ns), ip("10.9.0.2"), bound).expect_err("nobody answers");
    let took = start.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(err.to_string(), "no reply from 10.9.0.2 within 300 ms");
    assert!(
        took >= bound && took < bound + Duration::from_millis(300),
        "{took:?}"
    );
}

/// Capabilities belong to threads: this one gives up CAP_NET_RAW, and the
/// namespace thread `ping` starts inherits that.
#[test]
fn without_cap_net_raw_the_error_says_so() {
    if !test_privileged("without_cap_net_raw_the_error_says_so") {
        return;
    }
    let ns = fresh();
    let err = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                drop_cap_net_raw();
                ping(Some(&ns), ip("127.0.0.1"), Duration::from_secs(1))
            })
            .join()
            .expect("thread")
    })
    .expect_err("no CAP_NET_RAW");
    assert!(matches!(err, Error::Permission(_)), "{err:?}");
    assert!(err.to_string().contains("CAP_NET_RAW"), "{err}");
}

fn drop_cap_net_raw() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_RAW: u32 = 13;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as the
    // kernel ABI requires; pid 0 is the calling thread.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_NET_RAW);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}
