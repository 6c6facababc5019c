//! Bounds under churn: 10,000 short-lived processes spread over 40 cgroups
//! that come and go (with a 16-slot syscall table), and 10,000 TCP
//! connections. The maps stay within their bounds, dead cgroups' slots and
//! idle flows are evicted, and every count is either where it belongs or in
//! an overflow series with the map-full counter saying so.

mod hotpath_support;

use std::time::Duration;

use eunomia_tests::{Agent, kernel_lock, kernel_tests_can_run};
use hotpath_support::{ATTACHED, TestCgroup, last_gauge, matching, samples, sum};

const CGROUPS: usize = 40;
const PER_CGROUP: usize = 250; // 40 x 250 = 10,000 processes
const CALLS: u64 = 10; // getppid per process
const CONNS: u64 = 10_000;
const SLOTS: u64 = 16;

#[test]
fn maps_stay_bounded_and_losses_are_counted() {
    if !kernel_tests_can_run("maps_stay_bounded_and_losses_are_counted") {
        return;
    }
    let _serial = kernel_lock();
    let dir = std::env::temp_dir().join(format!("eunomia-stress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!("[hotpath]\ncgroup_slots = {SLOTS}\npid_grace = \"1s\"\n"),
    )
    .unwrap();
    let mut agent = Agent::start(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--interval",
        "1s",
        "--json",
        "--samples",
    ]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));

    let mut ids = Vec::new();
    for i in 0..CGROUPS {
        let cg = TestCgroup::create(&format!("stress{i}"));
        ids.push(cg.id.to_string());
        let script = format!(
            "for i in $(seq {PER_CGROUP}); do {} {CALLS} >/dev/null; done",
            env!("CARGO_BIN_EXE_syscall-loop")
        );
        let st = cg
            .command("sh", &["-c", &script])
            .status()
            .expect("run the processes");
        assert!(st.success());
        drop(cg); // the cgroup dies; its slot must be freed
    }
    let tcp = TestCgroup::create("stress-tcp");
    let out = tcp
        .command(
            env!("CARGO_BIN_EXE_tcp-churn"),
            &["--conns", &CONNS.to_string(), "--bytes", "10"],
        )
        .output()
        .expect("run tcp-churn");
    assert!(out.status.success(), "{out:?}");
    let tcp_id = tcp.id.to_string();
    // a few more polls: evictions and the pid sweep happen at poll time
    std::thread::sleep(Duration::from_secs(4));
    agent.signal(libc::SIGTERM);
    let (code, lines) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
    let s = samples(&lines);

    // syscalls: every getppid of the 10,000 processes is in its cgroup or,
    // when the table was full, in the overflow series with map-full counted
    let made = (CGROUPS * PER_CGROUP) as u64 * CALLS;
    let in_cgroups: u64 = ids
        .iter()
        .map(|id| {
            sum(
                &s,
                "eunomia_syscalls_total",
                &[("cgroup.id", id), ("syscall", "getppid")],
            )
        })
        .sum();
    let overflow = sum(
        &s,
        "eunomia_syscalls_total",
        &[("cgroup.id", "other"), ("syscall", "getppid")],
    );
    let full = sum(
        &s,
        "eunomia_hotpath_map_full_total",
        &[("map", "cgroup_slots")],
    );
    let misses = sum(&s, "eunomia_hotpath_recursion_misses_total", &[]);
    assert!(
        in_cgroups + overflow + misses >= made,
        "getppid: {in_cgroups} in cgroups + {overflow} overflow + {misses} recursion misses < {made} made"
    );
    if in_cgroups < made {
        assert!(
            full > 0 || misses > 0,
            "{} getppid missing from their cgroups and no drop counter says why",
            made - in_cgroups
        );
    }
    let evicted = sum(
        &s,
        "eunomia_hotpath_evictions_total",
        &[("map", "cgroup_slots")],
    );
    assert!(
        evicted >= (CGROUPS as u64).saturating_sub(SLOTS),
        "only {evicted} dead cgroups' slots freed"
    );
    let max_slots = matching(
        &s,
        "eunomia_hotpath_map_entries",
        &[("map", "cgroup_slots")],
    )
    .filter_map(|x| x["gauge"].as_f64())
    .fold(0.0, f64::max);
    assert!(max_slots <= (SLOTS - 1) as f64, "{max_slots} slots used");

    // TCP: all connections counted, the flow and socket maps drained
    let active = [("cgroup.id", tcp_id.as_str()), ("direction", "active")];
    let passive = [("cgroup.id", tcp_id.as_str()), ("direction", "passive")];
    let flows_full = sum(
        &s,
        "eunomia_hotpath_map_full_total",
        &[("map", "tcp_flows")],
    );
    let socks_full = sum(
        &s,
        "eunomia_hotpath_map_full_total",
        &[("map", "tcp_socks")],
    );
    let connects = sum(&s, "eunomia_tcp_connections_total", &active);
    let accepts = sum(&s, "eunomia_tcp_connections_total", &passive);
    let closed = sum(&s, "eunomia_tcp_sessions_closed_total", &active)
        + sum(&s, "eunomia_tcp_sessions_closed_total", &passive);
    if flows_full + socks_full == 0 {
        assert_eq!(connects, CONNS);
        assert_eq!(accepts, CONNS);
        assert_eq!(closed, 2 * CONNS);
    }
    let socks = last_gauge(&s, "eunomia_hotpath_map_entries", &[("map", "tcp_socks")])
        .expect("tcp_socks gauge");
    assert!(
        socks < 100.0,
        "{socks} sockets still tracked after all closed"
    );
    let flows = last_gauge(&s, "eunomia_hotpath_map_entries", &[("map", "tcp_flows")])
        .expect("tcp_flows gauge");
    assert!(flows < 50.0, "{flows} flow entries left");
    let pids = last_gauge(&s, "eunomia_hotpath_map_entries", &[("map", "pid_cgroups")])
        .expect("pid_cgroups gauge");
    assert!(pids <= 32_768.0, "{pids} pid entries");
    let pids_evicted = sum(
        &s,
        "eunomia_hotpath_evictions_total",
        &[("map", "pid_cgroups")],
    );
    assert!(
        pids_evicted >= (CGROUPS * PER_CGROUP) as u64 / 2,
        "only {pids_evicted} exited pids removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
