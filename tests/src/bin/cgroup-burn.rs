//! Test workload for the container metrics tests: burns CPU_MS milliseconds
//! of CPU time (not wall time: the machine may be busy), allocates and touches MEM_MIB mebibytes, prints `ready`,
//! then sleeps SLEEP_S seconds holding the memory.
//!
//! Usage: cgroup-burn CPU_MS MEM_MIB SLEEP_S

use std::{hint::black_box, io::Write, time::Duration};

/// CPU time this thread has used.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let [cpu_ms, mem_mib, sleep_s] = args[..] else {
        eprintln!("usage: cgroup-burn CPU_MS MEM_MIB SLEEP_S");
        std::process::exit(2);
    };
    let until = cpu_time() + Duration::from_millis(cpu_ms);
    let mut x = 0u64;
    while cpu_time() < until {
        for i in 0..10_000u64 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    let mut memory = vec![0u8; (mem_mib as usize) << 20];
    for page in memory.chunks_mut(4096) {
        page[0] = 1;
    }
    black_box(&memory);
    println!("ready");
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(sleep_s));
    black_box(memory);
}
