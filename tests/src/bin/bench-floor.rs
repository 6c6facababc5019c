//! Benchmark helper: attaches only one of eunomia's empty benchmark
//! programs — `bench_floor` (raw tracepoint `sys_enter`, the cost floor of
//! any syscall probe; the default), `bench_exit_floor` (tp_btf
//! `sys_exit`) or `bench_exit_raw_floor` (raw tracepoint `sys_exit`) — prints `attached`, and keeps it attached until stdin closes
//! or a signal ends the process. Used by `scripts/bench-overhead.sh`.
//! Usage: `bench-floor [PROGRAM]`.

use std::io::{Read as _, Write as _};

fn main() {
    let hotpath = match eunomia::hotpath::Hotpath::load_bench(
        &std::env::args()
            .nth(1)
            .unwrap_or_else(|| "bench_floor".into()),
    ) {
        Ok(h) => h,
        Err(err) => {
            eprintln!("bench-floor: {err}");
            std::process::exit(1);
        }
    };
    println!("attached");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(hotpath);
}
