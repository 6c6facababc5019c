//! The per-line cost of checking tool records against the kernel (issue 15).
//!
//! Loads the pid probe, starts a `sleep` (so the pid map knows it), and feeds
//! opensnoop lines naming it, as the tool prints them, through the parser
//! alone and through the parser and the record checker (pid map lookup, comm
//! and uid compare, newline count), in alternating repetitions. Prints the
//! lines per CPU-second of each, per repetition and as medians, and their
//! ratio. Root; nothing else need run.
//!
//! `bench-verify [REPS] [LINES]` (defaults 7 and 200000).

use std::{process::Command, sync::Arc, time::Duration};

use eunomia::{
    hotpath::{Hotpath, HotpathConfig, PidCgroups},
    tools::verify::{Checker, KernelFacts},
};
use parsers::{EventKind, Record};

const HEADER: &[u8] = b"TIME     UID     PID    COMM              FD ERR FLAGS    PATH";

fn main() {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let lines: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let mut config = HotpathConfig {
        syscalls: false,
        tcp: false,
        ..HotpathConfig::default()
    };
    config.check_strings_of([EventKind::Open]);
    let probe = match Hotpath::load(&config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench-verify: cannot load the pid probe (root needed): {e}");
            std::process::exit(1);
        }
    };
    let pids = probe.pid_cgroups().expect("the pid map");
    let mut sleeper = Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    std::thread::sleep(Duration::from_millis(100));
    let line = format!(
        "12:00:00 0       {:<6} sleep              3   0 00000000 /etc/hosts",
        sleeper.id()
    );
    let mut parse_only = Vec::new();
    let mut checked = Vec::new();
    for rep in 0..reps {
        let order = if rep % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for check in order {
            let rate = run(&pids, line.as_bytes(), lines, check);
            if check {
                checked.push(rate)
            } else {
                parse_only.push(rate)
            }
        }
        let (a, b) = (parse_only[rep], checked[rep]);
        println!(
            "rep {rep}: parse only {:>10.0} lines/CPU-s, parse + check {:>10.0} lines/CPU-s, ratio {:.3}",
            a,
            b,
            b / a
        );
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let (a, b) = (median(&mut parse_only), median(&mut checked));
    let mut ratios: Vec<f64> = checked
        .iter()
        .zip(&parse_only)
        .map(|(c, p)| c / p)
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "median: parse only {a:.0} lines/CPU-s, parse + check {b:.0} lines/CPU-s; \
         ratio {:.3} (reps {:.3}..{:.3}); the check costs {:.2} us per line",
        b / a,
        ratios[0],
        ratios[ratios.len() - 1],
        (1.0 / b - 1.0 / a) * 1e6
    );
}

/// Lines per CPU-second of this thread for `n` lines.
fn run(pids: &PidCgroups, line: &[u8], n: usize, check: bool) -> f64 {
    let mut parser = parsers::builtin("opensnoop").expect("opensnoop parser");
    let mut checker = Checker::new(
        Arc::new(KernelFacts::new(Some(pids.clone()))),
        Some(EventKind::Open),
    );
    let mut out: Vec<Record> = Vec::with_capacity(4);
    let mut accepted = 0usize;
    let _ = parser.feed(HEADER, &mut out);
    let start = thread_cpu();
    for _ in 0..n {
        if check {
            checker.line(parser.as_mut(), line, &mut out, &mut |_| {});
        } else {
            let _ = parser.feed(line, &mut out);
        }
        accepted += out.len();
        out.clear();
    }
    if check {
        checker.release_with(parser.as_mut(), &mut out, &mut |_| {});
        accepted += out.len();
    }
    let secs = thread_cpu() - start;
    assert_eq!(accepted, n, "every line is a record of the live process");
    n as f64 / secs
}

fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into ts.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
