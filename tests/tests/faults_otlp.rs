//! The fault suite, OTLP: the real agent, inside a memory cgroup, with a core
//! that is down when the agent stops, and a core whose message limit is
//! smaller than a batch. Each test prints its figures (`FAULT <scenario>:`).

use std::{
    os::unix::fs::PermissionsExt as _,
    time::{Duration, Instant},
};

use eunomia_tests::{
    faults::*,
    kernel_tests_can_run,
    memcg::{MemCgroup, mb},
    otlp::OtlpReceiver,
    temp_dir,
};

/// Fault 7: The core is down at stop: the stop is bounded by `shutdown_timeout`
/// (not the backoff), what was not delivered is in the spill directory
/// (files 0600), and the next run delivers it all.
#[test]
fn a_stop_with_the_core_down_is_bounded_and_spills() {
    if !kernel_tests_can_run("a_stop_with_the_core_down_is_bounded_and_spills") {
        return;
    }
    let made = 2000;
    let mut core = OtlpReceiver::start();
    core.stop();
    let endpoint = core.endpoint();
    let spill = temp_dir("fault-spill-dir").join("otlp");
    let extra = otlp_extra(
        &endpoint,
        &format!(
            "shutdown_timeout = \"2s\"\n\n[sinks.otlp.buffer]\nspill_dir = {:?}\n",
            spill.display().to_string()
        ),
    );
    let (dir, config) = setup("fault-spill", &counter_tool(made), &["burst"], &extra);
    let cg = MemCgroup::new("spill", LIMIT);
    let mut agent = start_in(&cg, &config, &[]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    // Long enough for the backoff to grow past the shutdown timeout.
    let s = wait_status(&dir, "all events read", Duration::from_secs(60), |s| {
        metric(s, "eunomia_tool_records_total", &[("tool", "burst")])
            .is_some_and(|v| v >= made as f64)
    });
    assert_eq!(
        metric(&s, "eunomia_tool_dropped_total", &[("tool", "burst")]),
        Some(0.0)
    );
    std::thread::sleep(Duration::from_secs(8));
    let rss = peak_rss(&agent);
    let stopping = Instant::now();
    agent.signal(libc::SIGTERM);
    let (code, _, log) = agent.finish_with_stderr(Duration::from_secs(30));
    let stop_took = stopping.elapsed();
    assert_eq!(code, 0);
    assert!(
        log.iter()
            .any(|l| l.contains("OTLP export failed") && l.contains(&endpoint)),
        "the first failure is a WARN naming the endpoint"
    );
    let files: Vec<_> = std::fs::read_dir(&spill).unwrap().flatten().collect();
    assert!(!files.is_empty(), "nothing spilled: {log:#?}");
    for f in &files {
        let mode = f.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.path().display());
    }
    // The tools stop (SIGKILL) and the sender waits at most 2 s.
    assert!(
        stop_took < Duration::from_secs(6),
        "stop took {stop_took:?}"
    );

    // The next run, with the core up, delivers what was spilled.
    core.restart();
    let no_tools = std::fs::read_to_string(&config)
        .unwrap()
        .replace("enabled = [\"burst\"]", "enabled = []");
    std::fs::write(&config, no_tools).unwrap();
    let agent = start_in(&cg, &config, &["--for", "4s"]);
    core.wait_for("the spilled events", Duration::from_secs(20), |r| {
        burst_logs(r) >= made as usize
    });
    let (code, _) = agent.finish(Duration::from_secs(20));
    let delivered = burst_logs(&core.received());
    println!(
        "FAULT core-down-at-stop: stop took {:.1}s (shutdown_timeout 2s), spilled {} files, delivered {delivered} / lost 0 / made {made}, agent peak RSS {:.1} MB, cgroup peak {:.1} MB",
        stop_took.as_secs_f64(),
        files.len(),
        mb(rss),
        mb(cg.peak())
    );
    assert_eq!(code, 0);
    assert_eq!(delivered, made as usize, "each event once");
    let _ = std::fs::remove_dir_all(spill.parent().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 8: A core whose message limit is smaller than a batch: batches are split
/// until they fit, every event arrives once, and metrics keep flowing.
#[test]
fn batches_too_large_for_the_core_are_split_and_never_block() {
    if !kernel_tests_can_run("batches_too_large_for_the_core_are_split_and_never_block") {
        return;
    }
    let made = 3000;
    let core = OtlpReceiver::start_with_limit(64 << 10);
    let extra = otlp_extra(&core.endpoint(), "max_logs_per_batch = 1000\n");
    let (dir, config) = setup("fault-too-large", &counter_tool(made), &["burst"], &extra);
    let cg = MemCgroup::new("too-large", LIMIT);
    let mut agent = start_in(&cg, &config, &[]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    core.wait_for("every event", Duration::from_secs(30), |r| {
        burst_logs(r) >= made as usize
    });
    let metrics_before = core.received().metrics.len();
    core.wait_for(
        "metrics after the large batches",
        Duration::from_secs(10),
        |r| r.metrics.len() >= metrics_before + 2,
    );
    let s = status(&dir);
    let too_large = metric(
        &s,
        "eunomia_sink_exports_total",
        &[
            ("sink", "otlp"),
            ("signal", "logs"),
            ("outcome", "too_large"),
        ],
    );
    let rss = peak_rss(&agent);
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(20));
    let delivered = burst_logs(&core.received());
    println!(
        "FAULT too-large: delivered {delivered} / lost 0 / made {made}, batches refused as too large {too_large:?}, agent peak RSS {:.1} MB, cgroup peak {:.1} MB",
        mb(rss),
        mb(cg.peak())
    );
    assert_eq!(code, 0);
    assert!(
        too_large.is_some_and(|n| n >= 1.0),
        "the core refused some batch: {too_large:?}"
    );
    assert_eq!(delivered, made as usize, "each event exactly once");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 11: a slow core (it takes each request, then answers 3 s later)
/// with a 2 s request deadline: after a timeout the agent waits longer
/// instead of sending the same batch again and again, so each batch arrives
/// at most twice (before: once per timeout, without end).
#[test]
fn a_slow_core_gets_each_batch_at_most_twice() {
    if !kernel_tests_can_run("a_slow_core_gets_each_batch_at_most_twice") {
        return;
    }
    let made = 200;
    let core = OtlpReceiver::start();
    core.set_delay(Duration::from_secs(3));
    let extra = otlp_extra(&core.endpoint(), "")
        .replace("export_interval = \"500ms\"", "export_interval = \"5s\"");
    let (dir, config) = setup("fault-slow-core", &counter_tool(made), &["burst"], &extra);
    let cg = MemCgroup::new("slow-core", LIMIT);
    let mut agent = start_in(&cg, &config, &[]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    core.wait_for("every event", Duration::from_secs(40), |r| {
        burst_logs(r) >= made as usize
    });
    // Time for any further copy to arrive.
    std::thread::sleep(Duration::from_secs(5));
    let rss = peak_rss(&agent);
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    let received = burst_logs(&core.received());
    println!(
        "FAULT slow-core: made {made}, received {received} ({:.1} copies each), agent peak RSS {:.1} MB, cgroup peak {:.1} MB",
        received as f64 / made as f64,
        mb(rss),
        mb(cg.peak())
    );
    assert_eq!(code, 0);
    assert!(
        received <= 2 * made as usize,
        "{received} records for {made} made"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
