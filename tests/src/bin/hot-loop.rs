//! Test workload for flame graphs: spends about 90% of its CPU time in
//! `eunomia_test_hot_spin` and 10% in `eunomia_test_warm_spin`, for the number
//! of seconds given as the first argument (default 10). Prints its pid first.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

#[inline(never)]
fn eunomia_test_hot_spin(until: Instant) -> u64 {
    let mut x = 0u64;
    while Instant::now() < until {
        for i in 0..10_000u64 {
            x = black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    x
}

#[inline(never)]
fn eunomia_test_warm_spin(until: Instant) -> u64 {
    eunomia_test_hot_spin(until) ^ 1
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    println!("{}", std::process::id());
    let end = Instant::now() + Duration::from_secs(secs);
    let mut acc = 0u64;
    while Instant::now() < end {
        let now = Instant::now();
        acc ^= eunomia_test_hot_spin(now + Duration::from_millis(90));
        acc ^= eunomia_test_warm_spin(Instant::now() + Duration::from_millis(10));
    }
    black_box(acc);
}
