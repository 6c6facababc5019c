//! `eunomia run` against the real kernel: the syscall probe counts what a
//! child process did, and every program is detached when the agent exits.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use eunomia_tests::{Agent, bpf_programs, bpf_programs_of, kernel_lock, kernel_tests_can_run};

const CALLS: u64 = 100_000;
const ATTACHED: &str = "hot path attached";

/// Sums the `getppid` counts of every interval the agent printed as JSON.
fn getppid_total(lines: &[String]) -> u64 {
    lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON summary line"))
        .flat_map(|v| v["top"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["syscall"] == "getppid")
        .map(|e| e["count"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn counts_the_getppid_calls_of_a_child() {
    if !kernel_tests_can_run("counts_the_getppid_calls_of_a_child") {
        return;
    }
    let _serial = kernel_lock();
    let mut agent = Agent::start(&[
        "run",
        "--interval",
        "1s",
        "--for",
        "4s",
        "--json",
        "--top",
        "50",
    ]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    let out = Command::new(env!("CARGO_BIN_EXE_syscall-loop"))
        .arg(CALLS.to_string())
        .output()
        .expect("run syscall-loop");
    assert!(out.status.success());
    let (code, lines) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    let counted = getppid_total(&lines);
    assert!(
        counted >= CALLS,
        "counted {counted} getppid, expected >= {CALLS}"
    );
    assert!(
        counted < CALLS + CALLS / 10,
        "counted {counted} getppid, far more than the {CALLS} made"
    );
}

#[test]
fn programs_are_detached_after_for_elapses() {
    if !kernel_tests_can_run("programs_are_detached_after_for_elapses") {
        return;
    }
    let _serial = kernel_lock();
    let mut agent = Agent::start(&["run", "--interval", "1s", "--for", "2s"]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    let ids = bpf_programs_of(agent.pid());
    assert!(!ids.is_empty(), "agent holds no BPF program while running");
    let (code, lines) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    assert!(
        lines.iter().any(|l| l.starts_with("syscalls: ")),
        "no summary printed: {lines:?}"
    );
    assert_programs_gone(&ids);
}

#[test]
fn sigterm_and_sigint_detach_and_exit_cleanly() {
    if !kernel_tests_can_run("sigterm_and_sigint_detach_and_exit_cleanly") {
        return;
    }
    let _serial = kernel_lock();
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut agent = Agent::start(&["run", "--interval", "10s"]);
        agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
        let ids = bpf_programs_of(agent.pid());
        assert!(!ids.is_empty(), "agent holds no BPF program while running");
        agent.signal(sig);
        let (code, lines) = agent.finish(Duration::from_secs(10));
        assert_eq!(code, 0, "exit code after signal {sig}");
        assert_eq!(lines.len(), 1, "one final summary expected: {lines:?}");
        assert_programs_gone(&ids);
    }
}

/// None of `ids` is still loaded in the kernel. The kernel frees a program
/// shortly after its last reference is closed (after an RCU grace period), so
/// this allows a few seconds.
fn assert_programs_gone(ids: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let still: Vec<u64> = bpf_programs()
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .filter(|id| ids.contains(id))
            .collect();
        if still.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "programs {still:?} still loaded 5s after exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
