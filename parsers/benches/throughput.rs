//! Parse throughput of the hot parsers against a baseline that only splits
//! the same text into lines with `memchr`, measured in one run.
//!
//! `cargo bench -p parsers --bench throughput` (`-- summary-only` for the
//! summary alone, as `scripts/bench.sh` runs it)
//!
//! Besides criterion's report, prints one summary line per workload: lines
//! per CPU-second of the baseline and the parser, in [`REPS`] alternating
//! repetitions (medians, the parser's range in brackets: the machine is
//! shared), and the median of the per-repetition ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parsers::{Record, ToolParser, builtin};

/// Real lines from the captured fixtures (data lines only), repeated to
/// about `n` lines.
fn workload(tool: &str, variant: &str, n: usize) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(tool)
        .join(format!("{variant}.txt"));
    let text = std::fs::read(path).expect("fixture");
    let mut out = Vec::with_capacity(n * 120);
    let mut count = 0;
    while count < n {
        for line in text.split(|b| *b == b'\n') {
            out.extend_from_slice(line);
            out.push(b'\n');
            count += 1;
        }
    }
    out
}

/// The baseline: find every line, touch its first byte.
fn split_only(text: &[u8]) -> usize {
    let mut n = 0;
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', text) {
        let line = &text[start..nl];
        n += usize::from(line.first().copied().unwrap_or(0) & 1);
        start = nl + 1;
    }
    n
}

/// Split and parse; records are dropped in batches as a consumer would.
fn parse(p: &mut dyn ToolParser, text: &[u8], out: &mut Vec<Record>) -> usize {
    let mut n = 0;
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', text) {
        let _ = p.feed(&text[start..nl], out);
        start = nl + 1;
        if out.len() >= 256 {
            n += out.len();
            out.clear();
        }
    }
    p.finish(out);
    n += out.len();
    out.clear();
    n
}

fn lines_in(text: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', text).count() as u64
}

const WORKLOADS: &[(&str, &str, &str)] = &[
    ("execsnoop", "execsnoop", "canonical"),
    ("opensnoop", "opensnoop", "canonical"),
    ("tcplife", "tcplife", "canonical"),
    ("histogram", "runqlat", "pids"),
];

fn bench(c: &mut Criterion) {
    for (name, tool, variant) in WORKLOADS {
        let text = workload(tool, variant, 20_000);
        let mut g = c.benchmark_group(*name);
        g.throughput(Throughput::Elements(lines_in(&text)));
        g.bench_function("memchr_split", |b| b.iter(|| split_only(black_box(&text))));
        let mut p = builtin(tool).expect("builtin");
        let mut out = Vec::with_capacity(512);
        g.bench_function("parse", |b| {
            b.iter(|| parse(p.as_mut(), black_box(&text), &mut out))
        });
        g.finish();
    }
    summary();
}

/// This thread's CPU time in ns (first field of /proc/thread-self/schedstat),
/// so rates stay meaningful on a machine busy with other work.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Lines per wall-clock second and per CPU-second of `f` over `text`,
/// measured for about `budget`.
fn rate(text: &[u8], budget: Duration, mut f: impl FnMut(&[u8]) -> usize) -> (f64, f64) {
    let lines = lines_in(text) as f64;
    let cpu0 = cpu_ns();
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < budget {
        black_box(f(black_box(text)));
        rounds += 1;
    }
    let total = lines * f64::from(rounds);
    let wall = total / start.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_ns()) {
        (Some(a), Some(b)) if b > a => total / ((b - a) as f64 / 1e9),
        _ => wall,
    };
    (wall, cpu)
}

/// Alternating repetitions of the summary.
const REPS: usize = 5;

/// The median of `v`.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One line per workload: baseline and parser rates per CPU-second
/// (medians of [`REPS`] alternating repetitions; in brackets the baseline's
/// wall-clock rate, and the parser's CPU range and wall-clock rate) and the
/// median ratio of the CPU rates.
fn summary() {
    println!("\nlines per CPU-second, medians of {REPS} alternating reps");
    println!("workload   memchr split (wall)   parse ([min, max] wall)   parse/split");
    for (name, tool, variant) in WORKLOADS {
        let text = workload(tool, variant, 20_000);
        let mut p = builtin(tool).expect("builtin");
        let mut out = Vec::with_capacity(512);
        let (mut base, mut base_wall, mut parsed, mut parsed_wall, mut ratio) =
            (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..REPS {
            let (w, c) = rate(&text, Duration::from_millis(300), split_only);
            base.push(c);
            base_wall.push(w);
            let (w, pc) = rate(&text, Duration::from_millis(600), |t| {
                parse(p.as_mut(), t, &mut out)
            });
            parsed.push(pc);
            parsed_wall.push(w);
            ratio.push(pc / c);
        }
        let (lo, hi) = (
            parsed.iter().copied().fold(f64::MAX, f64::min),
            parsed.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "{name:<10} {:>7.2}M ({:>6.2}M) {:>7.2}M ([{:.2}, {:.2}] {:>5.2}M) {:>9.4}",
            median(&mut base) / 1e6,
            median(&mut base_wall) / 1e6,
            median(&mut parsed) / 1e6,
            lo / 1e6,
            hi / 1e6,
            median(&mut parsed_wall) / 1e6,
            median(&mut ratio)
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
