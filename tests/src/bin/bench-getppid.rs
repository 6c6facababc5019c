//! Benchmark workload: times N `getppid` syscalls (default 10 million) in a
//! tight loop and prints the mean nanoseconds per call. Used by
//! `scripts/bench-overhead.sh`. Usage: `bench-getppid [N]`.

use std::time::Instant;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: getppid has no preconditions (glibc does not cache it).
        unsafe { libc::getppid() };
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{ns:.2}");
}
