use super::*;
use crate::pipeline::Sample;
use crate::testing::{OwnedEvent, OwnedValue};

fn exec(comm: &str, container: Option<&str>) -> OwnedEvent {
    let mut fields = vec![("proc.comm".to_owned(), OwnedValue::Str(comm.into()))];
    if let Some(c) = container {
        fields.push(("container.name".into(), OwnedValue::Str(c.into())));
    }
    OwnedEvent {
        tool: "execsnoop".into(),
        kind: "exec".into(),
        ts_ns: 1,
        fields,
    }
}

fn metric<'a>(snap: &'a Snapshot, name: &str) -> &'a MetricSnapshot {
    snap.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no {name} in {:?}",
                snap.metrics.iter().map(|m| m.name).collect::<Vec<_>>()
            )
        })
}

fn number(p: &Point) -> f64 {
    match &p.value {
        PointValue::Number(x) => *x,
        PointValue::Histogram(_) => panic!("histogram"),
    }
}

fn label<'a>(p: &'a Point, key: &str) -> Option<&'a str> {
    p.labels.iter().find(|(k, _)| *k == key).map(|(_, v)| &**v)
}

#[test]
fn a_nameless_container_is_not_merged_with_the_host() {
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    let mut in_container = exec("sh", None);
    in_container
        .fields
        .push(("container.id".into(), OwnedValue::Str("e16ctr1".into())));
    a.ingest_event(&in_container);
    a.ingest_event(&exec("sh", None));
    let snap = a.collect();
    let m = metric(&snap, "eunomia_process_execs_total");
    assert_eq!(m.points.len(), 2, "{:?}", m.points);
    assert!(
        m.points
            .iter()
            .any(|p| label(p, "container.id") == Some("e16ctr1") && number(p) == 1.0)
    );
    assert!(
        m.points
            .iter()
            .any(|p| label(p, "container.id").is_none() && number(p) == 1.0)
    );
}

#[test]
fn exec_events_count_by_container_and_comm() {
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    for _ in 0..3 {
        a.ingest_event(&exec("sh", Some("web")));
    }
    a.ingest_event(&exec("ls", None));
    let snap = a.collect();
    let m = metric(&snap, "eunomia_process_execs_total");
    assert_eq!(m.kind, MetricKind::Count);
    let sh = m
        .points
        .iter()
        .find(|p| label(p, "proc.comm") == Some("sh"))
        .unwrap();
    assert_eq!(number(sh), 3.0);
    assert_eq!(label(sh, "container.name"), Some("web"));
    let ls = m
        .points
        .iter()
        .find(|p| label(p, "proc.comm") == Some("ls"))
        .unwrap();
    assert_eq!(
        label(ls, "container.name"),
        None,
        "missing labels are omitted"
    );
    let all = metric(&snap, "eunomia_events_total");
    assert_eq!(number(&all.points[0]), 4.0);
    assert_eq!(label(&all.points[0], "tool"), Some("execsnoop"));
}

#[test]
fn tcp_sessions_give_duration_histogram_and_byte_sums() {
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    for (dur_ms, tx) in [(5u64, 100i64), (50, 1000)] {
        a.ingest_event(&OwnedEvent {
            tool: "tcplife".into(),
            kind: "tcp_session".into(),
            ts_ns: 1,
            fields: vec![
                ("net.dport".into(), OwnedValue::Int(443)),
                ("duration".into(), OwnedValue::Duration(dur_ms * 1_000_000)),
                ("net.tx_bytes".into(), OwnedValue::Int(tx)),
                ("net.rx_bytes".into(), OwnedValue::Int(7)),
            ],
        });
    }
    let snap = a.collect();
    let sent = metric(&snap, "eunomia_tcp_sent_bytes_total");
    assert_eq!(sent.unit, "By");
    assert_eq!(number(&sent.points[0]), 1100.0);
    assert_eq!(label(&sent.points[0], "net.dport"), Some("443"));
    let h = metric(&snap, "eunomia_tcp_session_duration_seconds");
    let PointValue::Histogram(h) = &h.points[0].value else {
        panic!("not a histogram")
    };
    assert_eq!(h.count(), 2);
    assert!((h.sum() - 0.055).abs() < 1e-9);
}

#[test]
fn samples_become_sums_gauges_and_log2_histograms() {
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    let batch = |n| SampleBatch {
        source: "test",
        interval_s: 1.0,
        samples: vec![
            Sample {
                metric: "eunomia_syscalls_total",
                labels: vec![("syscall", "read".into())],
                value: SampleValue::Delta(n),
            },
            Sample {
                metric: "eunomia_memory_used_bytes",
                labels: vec![],
                value: SampleValue::Gauge(n as f64),
            },
            Sample {
                metric: "eunomia_syscall_latency_seconds",
                labels: vec![("syscall", "read".into())],
                value: SampleValue::Log2Histogram {
                    unit: "us",
                    counts: vec![0, n, 1],
                },
            },
        ],
    };
    a.ingest_samples(&batch(5));
    a.ingest_samples(&batch(7));
    let snap = a.collect();
    assert_eq!(
        number(&metric(&snap, "eunomia_syscalls_total").points[0]),
        12.0
    );
    assert_eq!(
        number(&metric(&snap, "eunomia_memory_used_bytes").points[0]),
        7.0
    );
    let h = metric(&snap, "eunomia_syscall_latency_seconds");
    let PointValue::Histogram(h) = &h.points[0].value else {
        panic!("not a histogram")
    };
    assert_eq!(h.counts(), &[0, 12, 2, 0]);
    // Microseconds kept in seconds.
    assert_eq!(&h.bounds()[..], &[0.0, 1e-6, 3e-6]);
}

#[test]
fn cardinality_is_bounded_with_one_counted_overflow_series() {
    let config = AggregateConfig {
        series_limits: [("eunomia_process_execs_total".to_owned(), 1000)].into(),
        ..Default::default()
    };
    let mut a = Aggregator::new(&config, vec![]);
    for i in 0..5000 {
        a.ingest_event(&exec(&format!("comm{i}"), Some("c")));
    }
    let snap = a.collect();
    let m = metric(&snap, "eunomia_process_execs_total");
    assert_eq!(m.points.len(), 1001);
    let other: Vec<_> = m
        .points
        .iter()
        .filter(|p| label(p, "proc.comm") == Some(OVERFLOW_VALUE))
        .collect();
    assert_eq!(other.len(), 1);
    assert_eq!(number(other[0]), 4000.0);
    assert_eq!(label(other[0], "container.name"), Some(OVERFLOW_VALUE));
    let overflow = metric(&snap, "eunomia_aggregate_overflow_total");
    let p = overflow
        .points
        .iter()
        .find(|p| label(p, "metric") == Some("eunomia_process_execs_total"))
        .unwrap();
    assert_eq!(number(p), 4000.0);
    // Known series keep counting.
    a.ingest_event(&exec("comm1", Some("c")));
    assert_eq!(a.series_count("eunomia_process_execs_total"), Some(1000));
}

#[test]
fn idle_series_expire() {
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    a.set_now(1);
    a.ingest_event(&exec("old", Some("gone")));
    a.set_now(now_ns());
    a.ingest_event(&exec("new", Some("here")));
    let snap = a.collect();
    let m = metric(&snap, "eunomia_process_execs_total");
    assert_eq!(m.points.len(), 1);
    assert_eq!(label(&m.points[0], "container.name"), Some("here"));
    let expired = metric(&snap, "eunomia_aggregate_expired_series_total");
    assert!(expired.points.iter().any(|p| number(p) >= 1.0));
}

#[test]
fn self_metrics_are_collected() {
    let r = crate::selfmetrics::Registry::new();
    r.counter("eunomia_sink_exports_total", "x", &[("sink", "otlp")])
        .add(3);
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![r]);
    let snap = a.collect();
    assert_eq!(
        number(&metric(&snap, "eunomia_sink_exports_total").points[0]),
        3.0
    );
}

#[test]
fn units_follow_the_name() {
    assert_eq!(unit_of("eunomia_tcp_session_duration_seconds"), "s");
    assert_eq!(unit_of("eunomia_tcp_sent_bytes_total"), "By");
    assert_eq!(unit_of("eunomia_syscalls_total"), "1");
}

#[test]
fn tool_histograms_keep_printed_bounds_and_labels() {
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    let snap = parsers::HistogramSnapshot {
        ts_ns: 1,
        tool_time: None,
        tool: "biolatency".into(),
        unit: parsers::Unit::Usecs,
        label: Some(parsers::Label {
            key: "disk",
            value: "vda".into(),
            comm: None,
        }),
        buckets: vec![
            parsers::Bucket {
                low: 0,
                high: 1,
                count: 2,
            },
            parsers::Bucket {
                low: 2,
                high: 3,
                count: 0,
            },
            parsers::Bucket {
                low: 4,
                high: 7,
                count: 5,
            },
        ],
    };
    a.ingest_tool_histogram(&snap);
    a.ingest_tool_histogram(&snap);
    let s = a.collect();
    // Printed in usecs, kept in seconds.
    let m = metric(&s, "eunomia_tool_biolatency_seconds");
    assert_eq!(m.unit, "s");
    assert_eq!(label(&m.points[0], "disk"), Some("vda"));
    let PointValue::Histogram(h) = &m.points[0].value else {
        panic!("not a histogram")
    };
    assert_eq!(h.count(), 14);
    assert_eq!(h.counts()[1], 4);
    assert_eq!(h.counts()[3], 10);
    assert_eq!(h.bounds()[3], 7e-6);
}

#[test]
fn tables_become_gauges_labelled_by_text_columns() {
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    a.ingest_table(&parsers::TableSnapshot {
        ts_ns: 1,
        tool_time: None,
        tool: "syscount".into(),
        columns: vec!["syscall", "count"],
        rows: vec![
            vec![parsers::Value::Str("read".into()), parsers::Value::Int(10)],
            vec![parsers::Value::Str("write".into()), parsers::Value::Int(4)],
        ],
    });
    let s = a.collect();
    let m = metric(&s, "eunomia_tool_syscount_count");
    assert_eq!(m.kind, MetricKind::LastValue);
    let read = m
        .points
        .iter()
        .find(|p| label(p, "syscall") == Some("read"))
        .unwrap();
    assert_eq!(number(read), 10.0);
}

#[test]
fn table_durations_kbytes_and_percentages_are_in_base_units() {
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    a.ingest_table(&parsers::TableSnapshot {
        ts_ns: 1,
        tool_time: None,
        tool: "syscount".into(),
        columns: vec!["syscall", "total_time"],
        rows: vec![vec![
            parsers::Value::Str("read".into()),
            parsers::Value::Duration(1_500_000),
        ]],
    });
    a.ingest_table(&parsers::TableSnapshot {
        ts_ns: 1,
        tool_time: None,
        tool: "biopattern".into(),
        columns: vec!["disk", "random_pct", "kbytes"],
        rows: vec![vec![
            parsers::Value::Str("vda".into()),
            parsers::Value::Int(25),
            parsers::Value::Int(8),
        ]],
    });
    let s = a.collect();
    let t = metric(&s, "eunomia_tool_syscount_total_time_seconds");
    assert!((number(&t.points[0]) - 0.0015).abs() < 1e-12);
    assert_eq!(
        number(&metric(&s, "eunomia_tool_biopattern_random_ratio").points[0]),
        0.25
    );
    assert_eq!(
        number(&metric(&s, "eunomia_tool_biopattern_bytes").points[0]),
        8192.0
    );
}

#[test]
fn parser_events_aggregate_and_expose_proc_fields() {
    let mut e = parsers::Event::new("execsnoop".into(), parsers::EventKind::Exec);
    e.comm = Some("bash".into());
    e.pid = Some(9);
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
    a.ingest_event(&e);
    let s = a.collect();
    let m = metric(&s, "eunomia_process_execs_total");
    assert_eq!(label(&m.points[0], "proc.comm"), Some("bash"));
    let mut names = Vec::new();
    EventView::for_each_field(&e, &mut |n, _| names.push(n.to_owned()));
    assert_eq!(names, ["proc.pid", "proc.comm"]);
}
