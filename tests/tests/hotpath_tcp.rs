//! The TCP probe: a loopback server and client in a cgroup the test creates.
//! The samples show the connects and accepts under that cgroup with the
//! right ports, the refused connect as a failure, the bytes, and the session
//! durations in the right log2 buckets.

mod hotpath_support;

use std::time::Duration;

use eunomia_tests::{kernel_lock, kernel_tests_can_run};
use hotpath_support::{TestCgroup, histogram, samples, start_sampling_agent, sum};

#[test]
fn tcp_sessions_per_cgroup_port_and_peer() {
    if !kernel_tests_can_run("tcp_sessions_per_cgroup_port_and_peer") {
        return;
    }
    let _serial = kernel_lock();
    let cgroup = TestCgroup::create("tcp");
    let id = cgroup.id.to_string();
    const N: u64 = 40;
    const M: u64 = 3000;
    const HOLD_MS: u64 = 20;

    let agent = start_sampling_agent(6);
    let out = cgroup
        .command(
            env!("CARGO_BIN_EXE_tcp-churn"),
            &[
                "--conns",
                &N.to_string(),
                "--bytes",
                &M.to_string(),
                "--refused",
                "1",
                "--hold-ms",
                &HOLD_MS.to_string(),
            ],
        )
        .output()
        .expect("run tcp-churn");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("tcp-churn JSON line");
    assert_eq!(report["refused"], 1, "{report}");
    let port = report["port"].as_u64().unwrap().to_string();
    let (code, lines) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    let s = samples(&lines);

    let outbound = [
        ("cgroup.id", id.as_str()),
        ("direction", "active"),
        ("net.daddr", "127.0.0.1"),
        ("net.dport", port.as_str()),
    ];
    let inbound = [
        ("cgroup.id", id.as_str()),
        ("direction", "passive"),
        ("net.lport", port.as_str()),
    ];
    let connects = sum(&s, "eunomia_tcp_connections_total", &outbound);
    let accepts = sum(&s, "eunomia_tcp_connections_total", &inbound);
    assert_eq!(connects, N, "connects to :{port} in cgroup {id}");
    assert_eq!(
        accepts, N,
        "accepts on :{port} in cgroup {id} (passive opens happen in softirq context)"
    );
    let failures = sum(
        &s,
        "eunomia_tcp_connect_failures_total",
        &[("cgroup.id", &id), ("direction", "active")],
    );
    assert_eq!(failures, 1, "the refused connect");
    assert_eq!(sum(&s, "eunomia_tcp_sessions_closed_total", &outbound), N);
    assert_eq!(sum(&s, "eunomia_tcp_sessions_closed_total", &inbound), N);

    // bytes of closed sessions: each side sent and received M per session
    let bytes = |role: &str, dir: &str| {
        let mut labels: Vec<(&str, &str)> =
            vec![("cgroup.id", &id), ("role", role), ("direction", dir)];
        if role == "active" {
            labels.push(("net.dport", &port));
        } else {
            labels.push(("net.lport", &port));
        }
        sum(&s, "eunomia_tcp_bytes_total", &labels)
    };
    for role in ["active", "passive"] {
        for dir in ["tx", "rx"] {
            let b = bytes(role, dir);
            assert!(
                (N * M..=N * M + N * 2).contains(&b),
                "{role} {dir}: {b} bytes, expected about {}",
                N * M
            );
        }
    }

    // durations: each client session is held HOLD_MS (20 ms → log2 µs
    // bucket 15, [16384, 32768) µs); allow the next bucket for slow runs
    let h = histogram(&s, "eunomia_tcp_connection_duration_seconds", &outbound);
    let total: u64 = h.iter().sum();
    assert_eq!(total, N, "histogram {h:?}");
    let in_range: u64 = h.iter().skip(15).take(2).sum();
    assert!(
        in_range >= N - 2,
        "durations not around {HOLD_MS} ms: {h:?}"
    );

    let lost = sum(&s, "eunomia_hotpath_map_full_total", &[]);
    assert_eq!(lost, 0, "map-full counted");
}

/// Detaching the TCP probe pauses counting and re-attaching resumes it, the
/// maps intact: what `bench-tcp` relies on to compare with and without the
/// probe in one run.
#[test]
fn tcp_probe_pauses_and_resumes() {
    use std::net::{Ipv4Addr, TcpListener};

    use eunomia::hotpath::{Hotpath, HotpathConfig, Probe};
    use eunomia_tests::churn::{connect_once, counted_connects, spawn_echo_server};

    if !kernel_tests_can_run("tcp_probe_pauses_and_resumes") {
        return;
    }
    let _serial = kernel_lock();
    let config = HotpathConfig {
        syscalls: eunomia::hotpath::SyscallCounting::Off,
        tcp: true,
        pids: false,
        execs: false,
        mounts: false,
        ..HotpathConfig::default()
    };
    let mut hotpath = Hotpath::load(&config).expect("load the TCP probe");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    spawn_echo_server(listener, 10);
    let connect = |n: u64| {
        let mut back = [0u8; 10];
        for _ in 0..n {
            connect_once(addr, &[b'x'; 10], &mut back, Duration::ZERO);
        }
    };
    let counted = |hotpath: &mut Hotpath| counted_connects(hotpath, Some(addr.port()));

    connect(5);
    assert_eq!(counted(&mut hotpath), 5, "attached: counts");
    hotpath.set_attached(Probe::Tcp, false).expect("detach");
    connect(7);
    assert_eq!(counted(&mut hotpath), 5, "detached: nothing counted");
    hotpath.set_attached(Probe::Tcp, true).expect("re-attach");
    connect(9);
    assert_eq!(counted(&mut hotpath), 14, "re-attached: counts again");
}
