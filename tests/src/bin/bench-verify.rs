//! The per-line cost of checking tool records against the kernel (issue 15).
//!
//! Loads the pid probe, starts a `sleep` (so the pid map knows it), and feeds
//! opensnoop lines naming it, as the tool prints them, through the parser
//! alone, through the parser and the record checker as it runs for open,
//! stat and mount records (a fresh pid map lookup per record: their newline
//! counts must be current), and as it runs for every other kind (the pid's
//! facts reused for 200 ms), in rotating order. Prints the lines per
//! CPU-second of each, per repetition and as medians, and the ratios to the
//! parser alone. Root; nothing else need run.
//!
//! `bench-verify [REPS] [LINES]` (defaults 7 and 200000).

use std::{process::Command, sync::Arc, time::Duration};

use eunomia::{
    context::PidLookup,
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
        syscalls: eunomia::hotpath::SyscallCounting::Off,
        tcp: false,
        execs: false,
        mounts: false,
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
    let modes = [
        ("parse only", None),
        ("parse + check, fresh lookups", Some(Some(EventKind::Open))),
        ("parse + check, reused facts", Some(None)),
    ];
    let mut rates = vec![Vec::new(); modes.len()];
    for rep in 0..reps {
        for k in 0..modes.len() {
            let m = (k + rep) % modes.len();
            rates[m].push(run(&pids, line.as_bytes(), lines, modes[m].1));
        }
        let row: Vec<String> = modes
            .iter()
            .zip(&rates)
            .map(|((name, _), r)| format!("{name} {:.0}", r[rep]))
            .collect();
        println!("rep {rep}: {} lines/CPU-s", row.join(", "));
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let base = median(&mut rates[0].clone());
    for (m, (name, _)) in modes.iter().enumerate().skip(1) {
        let mut ratios: Vec<f64> = rates[m].iter().zip(&rates[0]).map(|(c, p)| c / p).collect();
        ratios.sort_by(f64::total_cmp);
        let rate = median(&mut rates[m].clone());
        println!(
            "{name}: median {rate:.0} lines/CPU-s against {base:.0} for the parser alone; \
             ratio {:.3} (reps {:.3}..{:.3}); the check costs {:.2} us per line",
            rate / base,
            ratios[0],
            ratios[ratios.len() - 1],
            (1.0 / rate - 1.0 / base) * 1e6
        );
    }
}

/// Lines per CPU-second of this thread for `n` lines.
/// `check`: None for the parser alone, else the kind the checker is made
/// for (open: newlines counted, fresh lookups; none: facts reused).
fn run(pids: &PidCgroups, line: &[u8], n: usize, check: Option<Option<EventKind>>) -> f64 {
    let mut parser = parsers::builtin("opensnoop").expect("opensnoop parser");
    let mut checker = Checker::new(
        Arc::new(KernelFacts::new(PidLookup::kernel(Arc::new(pids.clone())))),
        check.flatten(),
    );
    let mut out: Vec<Record> = Vec::with_capacity(4);
    let mut accepted = 0usize;
    let _ = parser.feed(HEADER, &mut out);
    let start = thread_cpu();
    for _ in 0..n {
        if check.is_some() {
            checker.line(parser.as_mut(), line, &mut out, &mut |_| {});
        } else {
            let _ = parser.feed(line, &mut out);
        }
        accepted += out.len();
        out.clear();
    }
    if check.is_some() {
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
