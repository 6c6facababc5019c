//! Test workload: makes exactly N `getppid` syscalls (default 100000), then
//! prints its pid. Usage: `syscall-loop [N]`.

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    for _ in 0..n {
        // SAFETY: getppid has no preconditions; libc calls the syscall directly
        // (glibc does not cache it).
        unsafe { libc::getppid() };
    }
    println!("{}", std::process::id());
}
