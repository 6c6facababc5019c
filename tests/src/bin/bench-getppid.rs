//! Benchmark workload: times N `getppid` syscalls (default 10 million) in a
//! tight loop and prints the mean nanoseconds per call. With `--cpu`, the
//! time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which leaves
//! out the time other processes of a busy machine held the CPU; otherwise
//! wall time. Used by `scripts/bench-overhead.sh` and
//! `scripts/bench/cost.sh`. Usage: `bench-getppid [N] [--cpu]`.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let cpu = args.iter().any(|a| a == "--cpu");
    let (start_cpu, start) = (thread_cpu_ns(), Instant::now());
    for _ in 0..n {
        // SAFETY: getppid has no preconditions (glibc does not cache it).
        unsafe { libc::getppid() };
    }
    let ns = if cpu {
        (thread_cpu_ns() - start_cpu) as f64
    } else {
        start.elapsed().as_nanos() as f64
    };
    println!("{:.2}", ns / n as f64);
}

/// This thread's CPU time in ns.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into ts.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}
