//! Pipeline throughput on one core: synthetic, already-enriched events
//! (`exec` and `tcp_session`, spread over containers, commands and ports)
//! through aggregation, with one OTLP metrics encode per batch as an export
//! interval would do; and the events-as-logs path as the OTLP sink takes it
//! (`otlp_logs_encode`: each event encoded to log-record bytes, the records
//! framed as one request), beside the earlier path that built the
//! `opentelemetry-proto` messages and encoded them
//! (`otlp_logs_encode_messages`, for the ratio). Before criterion, prints
//! the two logs paths' rates per CPU-second of this thread, in alternating
//! repetitions (median and range; the machine is shared). Prints events/s
//! and the process's resident memory before and after, to show it stays
//! flat while millions of events go through.
//!
//! `cargo bench -p eunomia --bench pipeline`

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eunomia::{
    aggregate::{AggregateConfig, Aggregator},
    sinks::otlp::{
        encode::{log_record, logs_request, metrics_request},
        logs_wire::{LogsBuilder, log_record_bytes},
    },
    sinks::resource::resource,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use parsers::{Event, EventKind, Value, fields};
use prost::Message as _;

/// Events per measured batch (one export per batch).
const BATCH: usize = 100_000;

/// A cycle of distinct synthetic events, as enrichment would leave them.
fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let container = format!("container-{}", i % 20);
            let mut e = if i % 2 == 0 {
                let mut e = Event::new("execsnoop".into(), EventKind::Exec);
                e.push(
                    fields::PROC_ARGS,
                    Value::Str(format!("/bin/cmd{} --flag", i % 50).into()),
                );
                e.ppid = Some(1);
                e
            } else {
                let mut e = Event::new("tcplife".into(), EventKind::TcpSession);
                e.push(
                    fields::NET_SADDR,
                    Value::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                );
                e.push(
                    fields::NET_DADDR,
                    Value::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, (i % 200) as u8))),
                );
                e.push(fields::NET_DPORT, Value::Int([80, 443, 5432, 6379][i % 4]));
                e.push(fields::NET_TX_BYTES, Value::Int((i * 37 % 100_000) as i64));
                e.push(
                    fields::NET_RX_BYTES,
                    Value::Int((i * 91 % 1_000_000) as i64),
                );
                e.push(
                    fields::DURATION,
                    Value::Duration((i as u64 % 5000) * 1_000_000),
                );
                e
            };
            e.ts_ns = 1_700_000_000_000_000_000 + i as u64;
            e.pid = Some(1000 + i as u32);
            e.comm = Some(format!("cmd{}", i % 50).as_str().into());
            e.push(
                "container.id",
                Value::Str(format!("{:064x}", i % 20).into()),
            );
            e.push("container.name", Value::Str(container.into()));
            e.push("k8s.namespace", Value::Str("default".into()));
            e
        })
        .collect()
}

/// Resident set size in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// This thread's CPU time in ns (first field of /proc/thread-self/schedstat).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The sink's logs path: each event to its record's bytes (what the event
/// handle queues), the records framed as one request.
fn logs_encode(builder: &mut LogsBuilder, logs: &[Event], res: &Resource) -> usize {
    for e in logs {
        builder.push_encoded(&log_record_bytes(e, 0));
    }
    builder.finish(res).bytes().len()
}

/// The earlier path: `opentelemetry-proto` messages, then prost's encode.
fn logs_encode_messages(logs: &[Event], res: &Resource) -> usize {
    let records = logs.iter().map(|e| log_record(e, 0)).collect();
    logs_request(records, res).encode_to_vec().len()
}

/// Events per CPU-second of `f` (which encodes `n` events) over `rounds`.
fn per_cpu_s(n: usize, rounds: usize, mut f: impl FnMut() -> usize) -> f64 {
    let start = cpu_ns();
    for _ in 0..rounds {
        black_box(f());
    }
    (n * rounds) as f64 / ((cpu_ns() - start).max(1) as f64 / 1e9)
}

/// Median, min and max.
fn median_range(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// The logs paths per CPU-second, alternating, `REPS` times: one line the
/// benchmark report reads.
fn logs_summary(logs: &[Event], res: &Resource) {
    const REPS: usize = 7;
    let mut builder = LogsBuilder::default();
    let (mut wire, mut messages) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        wire.push(per_cpu_s(logs.len(), 30, || {
            logs_encode(&mut builder, logs, res)
        }));
        messages.push(per_cpu_s(logs.len(), 10, || {
            logs_encode_messages(logs, res)
        }));
    }
    let ratios = wire.iter().zip(&messages).map(|(w, m)| w / m).collect();
    let (w, w_lo, w_hi) = median_range(wire);
    let (m, m_lo, m_hi) = median_range(messages);
    let (r, r_lo, r_hi) = median_range(ratios);
    println!(
        "otlp_logs_encode per CPU-s: {:.3}M [{:.3}, {:.3}] messages path {:.3}M [{:.3}, {:.3}] ratio {r:.2} [{r_lo:.2}, {r_hi:.2}] ({REPS} alternating reps, medians [min, max])",
        w / 1e6,
        w_lo / 1e6,
        w_hi / 1e6,
        m / 1e6,
        m_lo / 1e6,
        m_hi / 1e6,
    );
}

fn aggregate_and_encode(a: &mut Aggregator, evs: &[Event], res: &Resource) -> usize {
    for e in evs {
        a.ingest_event(e);
    }
    let req = metrics_request(&a.collect(), res);
    req.encode_to_vec().len()
}

fn bench(c: &mut Criterion) {
    let evs = events(BATCH);
    let res = resource(&Default::default());
    let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);

    // A plain timed run first, for the summary line and the memory figure.
    aggregate_and_encode(&mut a, &evs, &res);
    let rss_before = rss_kib();
    let rounds = 30;
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(aggregate_and_encode(&mut a, &evs, &res));
    }
    let secs = start.elapsed().as_secs_f64();
    let rss_after = rss_kib();
    eprintln!(
        "pipeline: {:.2} M events/s through aggregate + OTLP metrics encode ({} events, {} KiB RSS before, {} KiB after)",
        (rounds * BATCH) as f64 / secs / 1e6,
        rounds * BATCH,
        rss_before,
        rss_after
    );

    logs_summary(&evs[..10_000], &res);

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.measurement_time(Duration::from_secs(10));
    g.sample_size(20);
    g.bench_function("aggregate+otlp_metrics_encode", |b| {
        b.iter(|| black_box(aggregate_and_encode(&mut a, &evs, &res)))
    });
    let logs = &evs[..10_000];
    g.throughput(Throughput::Elements(logs.len() as u64));
    let mut builder = LogsBuilder::default();
    g.bench_function("otlp_logs_encode", |b| {
        b.iter(|| black_box(logs_encode(&mut builder, logs, &res)))
    });
    g.bench_function("otlp_logs_encode_messages", |b| {
        b.iter(|| black_box(logs_encode_messages(logs, &res)))
    });
    g.finish();
    eprintln!("pipeline: {} KiB RSS at the end", rss_kib());
}

criterion_group!(benches, bench);
criterion_main!(benches);
