//! OTLP export end to end: the agent with the hot path exports to a receiver
//! built from the official protocol definitions; the receiver checks names,
//! kinds, labels, values and the resource, and — stopped for a while —
//! that everything produced meanwhile arrives afterwards, in order.

use std::{
    process::Command,
    time::{Duration, Instant},
};

mod hotpath_support;

use eunomia_tests::{
    Agent, kernel_lock, kernel_tests_can_run,
    otlp::{OtlpReceiver, Received, attr, attr_text, metrics_named, number_points},
};
use hotpath_support::TestCgroup;
use opentelemetry_proto::tonic::{
    logs::v1::LogRecord,
    metrics::v1::{AggregationTemporality, metric::Data},
};

const CALLS: u64 = 100_000;
const ATTACHED: &str = "hot path attached";

fn config_file(body: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), body).unwrap();
    f
}

fn otlp_config(endpoint: &str, interval: &str, extra: &str) -> String {
    format!(
        "[agent]\npoll_interval = \"{interval}\"\n\n[sinks.otlp]\nenabled = true\nendpoint = \"{endpoint}\"\nexport_interval = \"{interval}\"\ntimeout = \"2s\"\ninitial_backoff = \"100ms\"\nmax_backoff = \"500ms\"\n{extra}"
    )
}

/// The last value of `name`'s point whose attribute `key` is `value`.
fn last_value(r: &Received, name: &str, key: &str, value: &str) -> Option<f64> {
    let requests = r.metrics.iter().map(|(_, m)| m);
    metrics_named(requests, name)
        .into_iter()
        .flat_map(number_points)
        .filter(|(_, attrs, _)| attr(attrs, key) == Some(value))
        .map(|(_, _, v)| v)
        .next_back()
}

#[test]
fn otlp_receives_hot_path_metrics_self_metrics_and_resource() {
    if !kernel_tests_can_run("otlp_receives_hot_path_metrics_self_metrics_and_resource") {
        return;
    }
    let _serial = kernel_lock();
    let receiver = OtlpReceiver::start();
    let config = config_file(&otlp_config(&receiver.endpoint(), "1s", ""));
    let mut agent = Agent::start(&[
        "run",
        "--config",
        config.path().to_str().unwrap(),
        "--for",
        "5s",
    ]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    // In a cgroup of its own: other processes of the host calling getppid
    // do not count.
    let cgroup = TestCgroup::create("export-otlp");
    let out = cgroup
        .command(env!("CARGO_BIN_EXE_syscall-loop"), &[&CALLS.to_string()])
        .output()
        .expect("run syscall-loop");
    assert!(out.status.success());
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);

    let r = receiver.received();
    assert!(
        r.metrics.len() >= 3,
        "only {} metrics requests",
        r.metrics.len()
    );
    let (_, first) = &r.metrics[0];
    let resource = first.resource_metrics[0]
        .resource
        .as_ref()
        .expect("resource");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(attr(&resource.attributes, "host.name"), Some(host.trim()));
    assert_eq!(attr(&resource.attributes, "service.name"), Some("eunomia"));
    assert!(attr(&resource.attributes, "service.version").is_some());
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        assert_eq!(attr(&resource.attributes, "host.id"), Some(id.trim()));
    }

    let syscalls = metrics_named(r.metrics.iter().map(|(_, m)| m), "eunomia_syscalls_total");
    let Some(Data::Sum(sum)) = &syscalls.last().expect("eunomia_syscalls_total").data else {
        panic!("eunomia_syscalls_total is not a Sum");
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    // The child's cgroup's series.
    let last = r.metrics.last().map(|(_, m)| m);
    let id = cgroup.id.to_string();
    let getppid: f64 = metrics_named(last, "eunomia_syscalls_total")
        .into_iter()
        .flat_map(number_points)
        .filter(|(_, a, _)| attr(a, "syscall") == Some("getppid"))
        .filter(|(_, a, _)| attr_text(a, "cgroup.id").as_deref() == Some(id.as_str()))
        .map(|(_, _, v)| v)
        .sum();
    assert!(getppid >= CALLS as f64, "getppid {getppid} < {CALLS}");
    assert!(
        getppid < (CALLS + CALLS / 10) as f64,
        "getppid {getppid} far above {CALLS}"
    );

    let sent = last_value(&r, "eunomia_sink_exports_total", "outcome", "success")
        .expect("exports self-metric");
    // Requests are encoded into the retry buffer ahead of being acknowledged,
    // so the count a request carries lags the ones still in flight.
    assert!(sent >= 1.0, "successful exports {sent}");
    let series = last_value(
        &r,
        "eunomia_aggregate_series",
        "metric",
        "eunomia_syscalls_total",
    )
    .expect("series self-metric");
    assert!(series >= 1.0);
    let messages = metrics_named(
        r.metrics.iter().map(|(_, m)| m),
        "eunomia_pipeline_messages_total",
    );
    assert!(!messages.is_empty(), "no pipeline self-metric");
}

/// How long the receiver is down in the gap test (`EUNOMIA_TEST_OTLP_GAP`, default 6s).
fn gap() -> Duration {
    std::env::var("EUNOMIA_TEST_OTLP_GAP")
        .ok()
        .and_then(|s| humantime_like(&s))
        .unwrap_or(Duration::from_secs(6))
}

fn humantime_like(s: &str) -> Option<Duration> {
    let secs: u64 = s.trim_end_matches('s').parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// The collection time of each metrics request, in arrival order.
fn batch_times(r: &Received) -> Vec<u64> {
    r.metrics
        .iter()
        .map(|(_, m)| {
            let all = metrics_named(std::iter::once(m), "eunomia_pipeline_messages_total");
            number_points(all[0])[0].0
        })
        .collect()
}

#[test]
fn otlp_outage_loses_nothing_and_keeps_order() {
    if !kernel_tests_can_run("otlp_outage_loses_nothing_and_keeps_order") {
        return;
    }
    let _serial = kernel_lock();
    let interval = Duration::from_millis(500);
    let dir = tempfile::tempdir().unwrap();
    let probe = probe_binary(dir.path());
    let mut receiver = OtlpReceiver::start();
    let config = config_file(&format!(
        "{EXECSNOOP}\n{}",
        otlp_config(&receiver.endpoint(), "500ms", "")
    ));
    let mut agent = Agent::start(&["run", "--config", config.path().to_str().unwrap()]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    receiver.wait_for("a first batch", Duration::from_secs(10), |r| {
        !r.metrics.is_empty()
    });
    let logs_before = wait_until_execsnoop_reports(&receiver, &probe);

    receiver.stop();
    let down = Instant::now();
    let before = receiver.received().metrics.len();
    let mut runs_in_gap = 0;
    while down.elapsed() < gap() {
        run_probe(&probe);
        runs_in_gap += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    receiver.restart();
    let produced_in_gap = (down.elapsed().as_millis() / interval.as_millis()) as usize;
    receiver.wait_for("the batches of the gap", Duration::from_secs(30), |r| {
        r.metrics.len() >= before + produced_in_gap
            && probe_logs(r).len() >= logs_before + runs_in_gap
    });
    std::thread::sleep(Duration::from_secs(1));
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);

    let r = receiver.received();
    let times = batch_times(&r);
    for w in times.windows(2) {
        assert!(w[1] > w[0], "batches out of order or duplicated: {times:?}");
        let step = Duration::from_nanos(w[1] - w[0]);
        assert!(
            step < interval * 8 / 5,
            "a batch is missing: {step:?} between two collections (interval {interval:?}); {times:?}"
        );
    }
    // The last batch reports how many exports succeeded before it: all the others.
    let last = r.metrics.last().map(|(_, m)| m);
    let ok_metrics = metrics_named(last, "eunomia_sink_exports_total")
        .into_iter()
        .flat_map(number_points)
        .find(|(_, a, _)| {
            attr(a, "signal") == Some("metrics") && attr(a, "outcome") == Some("success")
        })
        .map(|(_, _, v)| v as usize)
        .expect("successful metrics exports self-metric");
    // The count is taken when the last batch is collected; the sender
    // delivers one batch at a time, so at most one earlier export can still
    // be in flight then (received here, counted only after).
    let received_before_last = r.metrics.len() - 1;
    assert!(
        (received_before_last.saturating_sub(1)..=received_before_last).contains(&ok_metrics),
        "exports counted {ok_metrics} vs received before the last {received_before_last}"
    );
    let failures =
        last_value(&r, "eunomia_sink_exports_total", "outcome", "failure").unwrap_or(0.0);
    assert!(failures >= 1.0, "the outage caused no failed export");
    let dropped = metrics_named(last, "eunomia_sink_dropped_items_total");
    assert!(
        dropped
            .iter()
            .flat_map(|m| number_points(m))
            .all(|(_, _, v)| v == 0.0),
        "items were dropped"
    );
    assert!(r.metrics.len() > before + produced_in_gap / 2);

    // Every exec of the gap arrived once, in order.
    let logs = probe_logs(&r);
    assert_eq!(logs.len(), logs_before + runs_in_gap, "exec log records");
    let times: Vec<u64> = logs.iter().map(|l| l.time_unix_nano).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "logs out of order: {times:?}"
    );
    let mut pids: Vec<String> = logs
        .iter()
        .filter_map(|l| attr_text(&l.attributes, "process.pid"))
        .collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), logs.len(), "duplicate exec log records");
    let execs = last_value(
        &r,
        "eunomia_process_execs_total",
        "process.executable.name",
        PROBE,
    )
    .unwrap();
    assert_eq!(execs as usize, logs.len(), "execs counted vs logged");
}

/// The process name of the probe binary whose execs the tests count.
const PROBE: &str = "eunomia-probe";

/// A copy of /bin/true named [`PROBE`], so its execs are recognisable.
fn probe_binary(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join(PROBE);
    std::fs::copy("/bin/true", &path).expect("copy /bin/true");
    path
}

fn run_probe(path: &std::path::Path) {
    let status = Command::new(path).status().expect("run probe");
    assert!(status.success());
}

/// Log records of the probe's execs, in arrival order.
fn probe_logs(r: &Received) -> Vec<&LogRecord> {
    r.logs
        .iter()
        .flat_map(|l| &l.resource_logs)
        .flat_map(|l| &l.scope_logs)
        .flat_map(|s| &s.log_records)
        .filter(|l| {
            l.event_name == "eunomia.exec"
                && attr(&l.attributes, "process.executable.name") == Some(PROBE)
        })
        .collect()
}

/// Runs the probe until execsnoop reports it (the tool is attached).
fn wait_until_execsnoop_reports(receiver: &OtlpReceiver, probe: &std::path::Path) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        run_probe(probe);
        std::thread::sleep(Duration::from_millis(300));
        let seen = probe_logs(&receiver.received()).len();
        if seen > 0 {
            std::thread::sleep(Duration::from_secs(1));
            return probe_logs(&receiver.received()).len();
        }
    }
    panic!("execsnoop events never reached the receiver");
}

const EXECSNOOP: &str = "[tools]\nenabled = [\"execsnoop\"]\n";

#[test]
fn otlp_receives_tool_events_as_logs_and_metrics() {
    if !kernel_tests_can_run("otlp_receives_tool_events_as_logs_and_metrics") {
        return;
    }
    let _serial = kernel_lock();
    let dir = tempfile::tempdir().unwrap();
    let probe = probe_binary(dir.path());
    let receiver = OtlpReceiver::start();
    let config = config_file(&format!(
        "{EXECSNOOP}\n{}",
        otlp_config(&receiver.endpoint(), "500ms", "")
    ));
    let mut agent = Agent::start(&["run", "--config", config.path().to_str().unwrap()]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    let before = wait_until_execsnoop_reports(&receiver, &probe);
    const RUNS: usize = 20;
    for _ in 0..RUNS {
        run_probe(&probe);
    }
    receiver.wait_for("the probe's exec logs", Duration::from_secs(20), |r| {
        probe_logs(r).len() >= before + RUNS
    });
    std::thread::sleep(Duration::from_secs(1));
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);

    let r = receiver.received();
    let logs = probe_logs(&r);
    assert_eq!(logs.len(), before + RUNS, "exactly one log record per exec");
    let log = logs[logs.len() - 1];
    assert_eq!(attr(&log.attributes, "tool"), Some("execsnoop"));
    assert_eq!(attr(&log.attributes, "kind"), Some("exec"));
    assert!(attr_text(&log.attributes, "process.pid").is_some_and(|p| p.parse::<u32>().is_ok()));
    assert!(log.time_unix_nano > 0);

    let execs = last_value(
        &r,
        "eunomia_process_execs_total",
        "process.executable.name",
        PROBE,
    )
    .expect("execs of the probe");
    assert_eq!(execs as usize, before + RUNS, "eunomia_process_execs_total");
    let events = metrics_named(r.metrics.iter().map(|(_, m)| m), "eunomia_events_total");
    let Some(Data::Sum(sum)) = &events.last().expect("eunomia_events_total").data else {
        panic!("eunomia_events_total is not a Sum");
    };
    let exec_events = sum
        .data_points
        .iter()
        .find(|p| {
            attr(&p.attributes, "tool") == Some("execsnoop")
                && attr(&p.attributes, "kind") == Some("exec")
        })
        .expect("events_total{tool=execsnoop,kind=exec}");
    assert!(
        number_points(events.last().unwrap())
            .iter()
            .any(|(_, _, v)| *v >= (before + RUNS) as f64)
    );
    assert!(exec_events.start_time_unix_nano > 0);
}
