//! Test workload: makes exactly N `getppid` syscalls (default 100000), then
//! prints its pid. With `--then-move-to DIR M`, it then moves itself into
//! the cgroup DIR (writing its pid to `DIR/cgroup.procs`) and makes M more.
//! Usage: `syscall-loop [N] [--then-move-to DIR M]`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let work: u64 = args
        .iter()
        .position(|a| a == "--work")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(0);
    getppid_times(n, work);
    if let Some(i) = args.iter().position(|a| a == "--then-move-to") {
        let dir = args.get(i + 1).expect("--then-move-to DIR M");
        let m: u64 = args
            .get(i + 2)
            .and_then(|a| a.parse().ok())
            .expect("--then-move-to DIR M");
        std::fs::write(
            format!("{dir}/cgroup.procs"),
            std::process::id().to_string(),
        )
        .expect("move into the cgroup");
        getppid_times(m, 0);
    }
    println!("{}", std::process::id());
}

fn getppid_times(n: u64, work: u64) {
    for _ in 0..n {
        for i in 0..work {
            std::hint::black_box(i);
        }
        // SAFETY: getppid has no preconditions; libc calls the syscall directly
        // (glibc does not cache it).
        unsafe { libc::getppid() };
    }
}
