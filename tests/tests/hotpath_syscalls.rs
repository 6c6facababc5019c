//! The syscall probe per cgroup: a workload in a cgroup the test creates is
//! counted under that cgroup's id, with its errors, and the samples say so.

mod hotpath_support;

use std::time::Duration;

use eunomia_tests::{kernel_lock, kernel_tests_can_run};
use hotpath_support::{TestCgroup, samples, start_sampling_agent, sum};

#[test]
fn counts_syscalls_and_errors_per_cgroup() {
    if !kernel_tests_can_run("counts_syscalls_and_errors_per_cgroup") {
        return;
    }
    let _serial = kernel_lock();
    let cgroup = TestCgroup::create("syscalls");
    let id = cgroup.id.to_string();
    const CALLS: u64 = 200_000;
    const FAILS: u64 = 3;

    let agent = start_sampling_agent(5);
    let out = cgroup
        .command(env!("CARGO_BIN_EXE_syscall-loop"), &[&CALLS.to_string()])
        .output()
        .expect("run syscall-loop");
    assert!(out.status.success(), "{out:?}");
    for _ in 0..FAILS {
        // execs cat, whose openat of a missing file fails with ENOENT
        let st = cgroup
            .command("cat", &["/nonexistent/eunomia-test"])
            .output()
            .expect("run cat");
        assert!(!st.status.success());
    }
    let (code, lines) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    let s = samples(&lines);
    assert!(!s.is_empty(), "no --samples output: {lines:?}");

    let getppid = sum(
        &s,
        "eunomia_syscalls_total",
        &[("cgroup.id", &id), ("syscall", "getppid")],
    );
    assert!(
        (CALLS..CALLS + 100).contains(&getppid),
        "cgroup {id}: counted {getppid} getppid, made {CALLS}"
    );
    let openat_errors = sum(
        &s,
        "eunomia_syscall_errors_total",
        &[("cgroup.id", &id), ("syscall", "openat")],
    );
    assert!(
        openat_errors >= FAILS,
        "cgroup {id}: {openat_errors} failed openat, expected >= {FAILS}"
    );
    // the summary still aggregates per syscall, and lists the cgroup
    let summaries: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("top").is_some())
        .collect();
    assert!(!summaries.is_empty());
    assert!(
        summaries
            .iter()
            .flat_map(|v| v["cgroups"].as_array().cloned().unwrap_or_default())
            .any(|c| c["cgroup_id"] == id.as_str()),
        "cgroup {id} missing from the summaries"
    );
    // nothing was lost
    let lost = sum(&s, "eunomia_hotpath_map_full_total", &[]);
    assert_eq!(lost, 0, "map-full counted");
}

/// A process that moves itself to another cgroup between two bursts of
/// syscalls is counted in each cgroup for its own burst: the per-CPU cache
/// of the current task's slot is invalidated by the move.
#[test]
fn a_task_moving_between_cgroups_is_counted_in_each() {
    if !kernel_tests_can_run("a_task_moving_between_cgroups_is_counted_in_each") {
        return;
    }
    let _serial = kernel_lock();
    let first = TestCgroup::create("move-from");
    let second = TestCgroup::create("move-to");
    const BEFORE: u64 = 150_000;
    const AFTER: u64 = 70_000;

    let agent = start_sampling_agent(4);
    let second_dir = second.path.to_string_lossy().into_owned();
    let out = first
        .command(
            env!("CARGO_BIN_EXE_syscall-loop"),
            &[
                &BEFORE.to_string(),
                "--then-move-to",
                &second_dir,
                &AFTER.to_string(),
            ],
        )
        .output()
        .expect("run syscall-loop");
    assert!(out.status.success(), "{out:?}");
    let (code, lines) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    let s = samples(&lines);
    let getppid = |c: &TestCgroup| {
        sum(
            &s,
            "eunomia_syscalls_total",
            &[("cgroup.id", &c.id.to_string()), ("syscall", "getppid")],
        )
    };
    let (a, b) = (getppid(&first), getppid(&second));
    assert!(
        (BEFORE..BEFORE + 100).contains(&a),
        "before the move: counted {a}, made {BEFORE}"
    );
    assert!(
        (AFTER..AFTER + 100).contains(&b),
        "after the move: counted {b}, made {AFTER}"
    );
}
