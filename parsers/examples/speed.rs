//! Quick parse-rate check outside criterion: `cargo run --release -p parsers --example speed -- execsnoop canonical`
//! (compare with `perf stat -e task-clock` to get lines per CPU-second on a busy machine).
use std::time::Instant;
fn main() {
    let tool = std::env::args().nth(1).unwrap_or("execsnoop".into());
    let variant = std::env::args().nth(2).unwrap_or("canonical".into());
    let text = std::fs::read(format!(
        "{}/fixtures/{tool}/{variant}.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut big = Vec::new();
    for _ in 0..100 {
        big.extend_from_slice(&text);
    }
    let mut p = parsers::builtin(&tool).unwrap();
    let mut out = Vec::with_capacity(512);
    let lines = memchr::memchr_iter(b'\n', &big).count();
    let t = Instant::now();
    let mut rounds = 0;
    while t.elapsed().as_secs_f64() < 2.0 {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &big) {
            let _ = p.feed(&big[start..nl], &mut out);
            start = nl + 1;
            if out.len() >= 256 {
                out.clear();
            }
        }
        out.clear();
        rounds += 1;
    }
    println!(
        "{tool}: {:.2}M lines/s",
        (lines * rounds) as f64 / t.elapsed().as_secs_f64() / 1e6
    );
}
