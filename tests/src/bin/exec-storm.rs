//! Benchmark workload: starts `/bin/true` at up to RATE processes per second
//! (0: as fast as possible) for SECONDS with WORKERS threads, waits for every
//! child, and prints `{"started": N, "seconds": S, "rate": R}`.
//!
//! Usage: `exec-storm RATE SECONDS [WORKERS]`.

use std::{
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("numeric arguments: RATE SECONDS [WORKERS]")
        })
        .collect();
    let rate = args.first().copied().unwrap_or(0);
    let seconds = args.get(1).copied().unwrap_or(10);
    let workers = args.get(2).copied().unwrap_or(2).max(1);
    let started = AtomicU64::new(0);
    let begin = Instant::now();
    let end = begin + Duration::from_secs(seconds);
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| storm(rate / workers, end, &started));
        }
    });
    let elapsed = begin.elapsed().as_secs_f64();
    let n = started.load(Ordering::Relaxed);
    println!(
        "{{\"started\": {n}, \"seconds\": {elapsed:.3}, \"rate\": {:.1}}}",
        n as f64 / elapsed
    );
}

/// Starts `/bin/true` at `rate` per second (0: unpaced) until `end`.
fn storm(rate: u64, end: Instant, started: &AtomicU64) {
    let begin = Instant::now();
    let mut mine = 0u64;
    while Instant::now() < end {
        if rate > 0 {
            let due = begin + Duration::from_secs_f64(mine as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        let status = Command::new("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if status.is_ok() {
            mine += 1;
            started.fetch_add(1, Ordering::Relaxed);
        }
    }
}
