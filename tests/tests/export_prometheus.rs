//! Prometheus end to end with Debian's real Prometheus 2.42: it scrapes the
//! agent's `/metrics`, and in another test receives its remote write; both
//! then query Prometheus's HTTP API for the series, labels and values.

mod hotpath_support;

use std::time::Duration;

use eunomia_tests::{
    Agent, kernel_lock, kernel_tests_can_run,
    prom::{Prometheus, free_port, value_of},
};
use hotpath_support::TestCgroup;

const CALLS: u64 = 100_000;
const ATTACHED: &str = "hot path attached";

fn config_file(body: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), body).unwrap();
    f
}

/// Runs the syscall loop in a cgroup of its own (so other processes of the
/// host calling getppid do not count) and returns the cgroup's id.
fn run_syscall_loop() -> TestCgroup {
    let cgroup = TestCgroup::create("export-prom");
    let out = cgroup
        .command(env!("CARGO_BIN_EXE_syscall-loop"), &[&CALLS.to_string()])
        .output()
        .expect("run syscall-loop");
    assert!(out.status.success());
    cgroup
}

fn assert_getppid_counted(prom: &Prometheus, cgroup: &TestCgroup, selector: &str) {
    let q = format!(
        "sum(eunomia_syscalls_total{{syscall=\"getppid\",cgroup_id=\"{}\"{selector}}})",
        cgroup.id
    );
    let r = prom.wait_for(&q, Duration::from_secs(30), |r| {
        r.len() == 1 && value_of(&r[0]) >= CALLS as f64
    });
    let v = value_of(&r[0]);
    assert!(
        v < (CALLS + CALLS / 10) as f64,
        "getppid {v} far above {CALLS}"
    );
}

#[test]
fn prometheus_scrapes_metrics_endpoint() {
    if !kernel_tests_can_run("prometheus_scrapes_metrics_endpoint") {
        return;
    }
    let _serial = kernel_lock();
    let port = free_port();
    let config = config_file(&format!(
        "[agent]\npoll_interval = \"500ms\"\n\n[sinks.prometheus]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    let mut agent = Agent::start(&["run", "--config", config.path().to_str().unwrap()]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    let prom = Prometheus::start(&format!(
        "  - job_name: eunomia\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    ));
    let cgroup = run_syscall_loop();
    assert_getppid_counted(&prom, &cgroup, ",job=\"eunomia\"");
    let series = prom.wait_for(
        "eunomia_aggregate_series{metric=\"eunomia_syscalls_total\"}",
        Duration::from_secs(10),
        |r| r.len() == 1 && value_of(&r[0]) >= 1.0,
    );
    assert_eq!(series[0]["metric"]["instance"], format!("127.0.0.1:{port}"));
    prom.wait_for("up{job=\"eunomia\"}", Duration::from_secs(10), |r| {
        r.len() == 1 && value_of(&r[0]) == 1.0
    });
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
}

#[test]
fn prometheus_receives_remote_write() {
    if !kernel_tests_can_run("prometheus_receives_remote_write") {
        return;
    }
    let _serial = kernel_lock();
    let prom = Prometheus::start("");
    let config = config_file(&format!(
        "[agent]\npoll_interval = \"500ms\"\n\n[sinks.remote_write]\nenabled = true\nurl = \"{}\"\ninterval = \"500ms\"\nexternal_labels = {{ instance = \"test-host\" }}\n",
        prom.remote_write_url()
    ));
    let mut agent = Agent::start(&["run", "--config", config.path().to_str().unwrap()]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    let cgroup = run_syscall_loop();
    assert_getppid_counted(&prom, &cgroup, ",instance=\"test-host\"");
    let ok = prom.wait_for(
        "eunomia_sink_exports_total{sink=\"remote_write\",outcome=\"success\"}",
        Duration::from_secs(10),
        |r| r.len() == 1 && value_of(&r[0]) >= 1.0,
    );
    assert_eq!(ok[0]["metric"]["signal"], "metrics");
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
}
