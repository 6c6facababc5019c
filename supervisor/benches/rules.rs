//! Rule evaluation throughput: the default rules over a synthetic stream of
//! enriched events (exec, open, TCP state, kill, mount; half of them in a
//! container), as the agent's rules stage sees them.
//!
//! `cargo bench -p eunomia --bench rules` (criterion prints elements/s: events
//! per second on one core).

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eunomia::rules::{self, Ctx, Engine, Lineage, RuleSet};
use parsers::{Event, EventKind, Value, fields as f};

type Labels = Vec<(&'static str, String)>;

/// A deterministic mix of realistic events, most of which match no rule.
fn stream(n: usize) -> Vec<(Event, Labels)> {
    let paths = [
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/etc/ld.so.cache",
        "/proc/self/stat",
        "/etc/shadow",
        "/home/app/.cache/data.db",
        "/usr/bin/python3",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "/tmp/build/output.o",
    ];
    let comms = [
        "bash", "python3", "nginx", "cat", "sh", "java", "node", "curl",
    ];
    (0..n)
        .map(|i| {
            let comm = comms[i % comms.len()];
            let pid = 1000 + (i % 5000) as u32;
            let mut e = match i % 20 {
                0..=5 => {
                    let mut e = Event::new("execsnoop".into(), EventKind::Exec);
                    e.ppid = Some(pid - 1);
                    e.uid = Some(if i % 7 == 0 { 1000 } else { 0 });
                    e.push(f::RET, Value::Int(0));
                    e.push(
                        f::PROC_ARGS,
                        Value::Str(format!("/usr/bin/{comm} --flag {i}").into()),
                    );
                    e
                }
                6..=15 => {
                    let mut e = Event::new("opensnoop".into(), EventKind::Open);
                    e.uid = Some(0);
                    e.push(f::RET, Value::Int(3));
                    e.push(f::ERROR, Value::Int(0));
                    e.push(
                        f::FILE_FLAGS,
                        Value::Int(if i % 9 == 0 { 0o1101 } else { 0o2000000 }),
                    );
                    e.push(f::FILE_PATH, Value::Str(paths[i % paths.len()].into()));
                    e
                }
                16 | 17 => {
                    let mut e = Event::new("tcpstates".into(), EventKind::TcpState);
                    e.push(f::NET_SADDR, Value::Ip("10.0.0.5".parse().unwrap()));
                    e.push(f::NET_SPORT, Value::Int(40000 + (i % 1000) as i64));
                    e.push(f::NET_DADDR, Value::Ip("203.0.113.9".parse().unwrap()));
                    e.push(f::NET_DPORT, Value::Int([443, 80, 4444, 5432][i % 4]));
                    e.push(f::NET_OLD_STATE, Value::Str("CLOSE".into()));
                    e.push(
                        f::NET_NEW_STATE,
                        Value::Str(["SYN_SENT", "ESTABLISHED", "LISTEN"][i % 3].into()),
                    );
                    e
                }
                18 => {
                    let mut e = Event::new("killsnoop".into(), EventKind::Kill);
                    e.push(f::SIGNAL_NUM, Value::Int(15));
                    e.push(f::TARGET_PID, Value::Int(i64::from(pid) + 1));
                    e.push(f::RET, Value::Int(0));
                    e
                }
                _ => {
                    let mut e = Event::new("mountsnoop".into(), EventKind::Mount);
                    e.tid = Some(pid);
                    e.push(f::MOUNT_OP, Value::Str("mount".into()));
                    e.push(f::MOUNT_SOURCE, Value::Str("tmpfs".into()));
                    e.push(f::MOUNT_TARGET, Value::Str("/mnt".into()));
                    e.push(f::MOUNT_FS, Value::Str("tmpfs".into()));
                    e
                }
            };
            e.pid = Some(pid);
            e.comm = Some(comm.into());
            e.ts_ns = 1_700_000_000_000_000_000 + i as u64;
            let labels = if i % 2 == 0 {
                vec![
                    ("container.id", format!("{:012x}", i % 50)),
                    ("container.runtime", "containerd".to_owned()),
                    ("k8s.namespace", "default".to_owned()),
                    ("k8s.pod.name", format!("web-{}", i % 50)),
                ]
            } else {
                Vec::new()
            };
            (e, labels)
        })
        .collect()
}

fn default_rules() -> Arc<RuleSet> {
    Arc::new(
        rules::load_str(rules::DEFAULT_RULES_NAME, rules::DEFAULT_RULES)
            .expect("default rules")
            .set,
    )
}

fn bench(c: &mut Criterion) {
    let events = stream(10_000);
    let set = default_rules();
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.measurement_time(Duration::from_secs(5));

    g.bench_function("evaluate_default_rules", |b| {
        b.iter(|| {
            let mut matches = 0u64;
            for (e, labels) in &events {
                let ctx = Ctx {
                    event: e,
                    labels,
                    lineage: Lineage::default(),
                };
                set.for_each_match(&ctx, |_, _| matches += 1);
            }
            black_box(matches)
        })
    });

    g.bench_function("engine_default_rules", |b| {
        let mut engine = Engine::new(set.clone(), Duration::from_secs(60));
        let mut out = Vec::new();
        b.iter(|| {
            let now = Instant::now();
            for (e, labels) in &events {
                engine.on_event(e, labels, now, &mut out);
            }
            out.clear();
            black_box(engine.stats().events)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
