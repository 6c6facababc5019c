//! Benchmark: what eunomia's TCP probe costs in loopback connections per
//! second. One client/server loop (`churn`) runs pinned to one CPU for the
//! whole run; the controller, on another CPU, loads the hot path once with
//! only its TCP probe and toggles it — attached, detached — in alternating
//! windows (ABBA order). Each pair of neighbouring windows gives one drop
//! figure, so a VM whose speed drifts during the run is compared with
//! itself; the median over pairs is the result.
//!
//! Two figures per window: connections per second of wall-clock time, and
//! connections per CPU-second the workload's two threads actually ran
//! (their thread CPU clocks). On a shared VM the second is the steadier
//! one: wall-clock rates also move with the CPU time the hypervisor takes
//! away (steal), which has nothing to do with the probe, while the CPU
//! clocks count only the time the threads ran, including the kernel's TCP
//! work done on their behalf (softirqs run in their context here).
//!
//! Prints one JSON line (rates, per-pair drops, their medians, and how many
//! connections the probe counted, which proves it was live). Used by
//! `scripts/bench-overhead.sh`.
//!
//! Usage: `bench-tcp [--pairs N] [--window-ms W] [--cpu C] [--bytes M] [--floor]`
//! (defaults: 60 pairs of 250 ms windows, workload on CPU 1, 100 bytes;
//! `--floor` toggles an empty program on the same hook instead, the cost
//! any probe there pays).

use std::{
    net::{Ipv4Addr, TcpListener},
    os::unix::thread::JoinHandleExt as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use eunomia::hotpath::{Hotpath, HotpathConfig, Probe};
use eunomia_tests::churn::{connect_once, counted_connects, pin_to_cpu, spawn_echo_server};
use hotpath_common::BENCH_TCP_FLOOR_PROG;

struct Args {
    pairs: usize,
    window: Duration,
    cpu: usize,
    bytes: usize,
    floor: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        pairs: 60,
        window: Duration::from_millis(250),
        cpu: 1,
        bytes: 100,
        floor: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--floor" {
            a.floor = true;
            continue;
        }
        let v = args.next().unwrap_or_default();
        let bad = || -> ! {
            eprintln!("bench-tcp: bad value {v:?} for {flag}");
            std::process::exit(2)
        };
        match flag.as_str() {
            "--pairs" => a.pairs = v.parse().unwrap_or_else(|_| bad()),
            "--window-ms" => a.window = Duration::from_millis(v.parse().unwrap_or_else(|_| bad())),
            "--cpu" => a.cpu = v.parse().unwrap_or_else(|_| bad()),
            "--bytes" => a.bytes = v.parse().unwrap_or_else(|_| bad()),
            _ => {
                eprintln!(
                    "usage: bench-tcp [--pairs N] [--window-ms W] [--cpu C] [--bytes M] [--floor]"
                );
                std::process::exit(2)
            }
        }
    }
    a
}

fn main() {
    let args = parse_args();
    let done = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let clocks = start_workload(&args, done.clone(), made.clone());

    let config = HotpathConfig {
        syscalls: eunomia::hotpath::SyscallCounting::Off,
        tcp: true,
        pids: false,
        execs: false,
        mounts: false,
        ..HotpathConfig::default()
    };
    let loaded = if args.floor {
        Hotpath::load_bench(BENCH_TCP_FLOOR_PROG)
    } else {
        Hotpath::load(&config)
    };
    let mut hotpath = loaded.unwrap_or_else(|e| {
        eprintln!("bench-tcp: {e}");
        std::process::exit(1)
    });
    let mut set = |on: bool| {
        hotpath.set_attached(Probe::Tcp, on).unwrap_or_else(|e| {
            eprintln!("bench-tcp: {e}");
            std::process::exit(1)
        })
    };
    set(false);
    thread::sleep(args.window); // warm-up
    let (mut wall, mut cpu) = (Series::default(), Series::default());
    for pair in 0..args.pairs {
        let order = if pair % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut w = [Rates::default(); 2];
        for on in order {
            set(on);
            w[on as usize] = measure(&made, &clocks, args.window);
        }
        wall.push(w[0].per_wall_s, w[1].per_wall_s);
        cpu.push(w[0].per_cpu_s, w[1].per_cpu_s);
    }
    set(false);
    done.store(true, Ordering::Relaxed);
    let counted = counted_connects(&mut hotpath, None);
    println!(
        "{{\"pairs\":{},\"window_ms\":{},\"per_wall_s\":{},\"per_cpu_s\":{},\"probe_counted_connects\":{counted}}}",
        args.pairs,
        args.window.as_millis(),
        wall.json(),
        cpu.json(),
    );
}

/// Rates of one window.
#[derive(Clone, Copy, Default)]
struct Rates {
    /// Connections per second of wall-clock time.
    per_wall_s: f64,
    /// Connections per second of the workload threads' CPU time.
    per_cpu_s: f64,
}

/// Off and on rates of every pair, and the drop of each pair in percent.
#[derive(Default)]
struct Series {
    off: Vec<f64>,
    on: Vec<f64>,
    drops: Vec<f64>,
}

impl Series {
    fn push(&mut self, off: f64, on: f64) {
        self.off.push(off);
        self.on.push(on);
        self.drops.push((off - on) * 100.0 / off);
    }

    fn json(&self) -> String {
        let drops: Vec<String> = self.drops.iter().map(|d| format!("{d:.2}")).collect();
        format!(
            "{{\"off\":{:.1},\"on\":{:.1},\"drop_percent\":{:.2},\"drops\":[{}]}}",
            median(&self.off),
            median(&self.on),
            median(&self.drops),
            drops.join(",")
        )
    }
}

/// Starts the echo server and the client loop, both pinned to `args.cpu`
/// (threads inherit the affinity), then moves the caller to another CPU.
/// Returns the two threads' CPU clocks.
fn start_workload(
    args: &Args,
    done: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
) -> [libc::clockid_t; 2] {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    if let Err(e) = pin_to_cpu(args.cpu) {
        eprintln!("bench-tcp: cannot pin to CPU {}: {e}", args.cpu);
        std::process::exit(1);
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let server = spawn_echo_server(listener, args.bytes);
    let bytes = args.bytes;
    let client = thread::spawn(move || {
        let payload = vec![b'x'; bytes];
        let mut back = vec![0u8; bytes];
        while !done.load(Ordering::Relaxed) {
            connect_once(addr, &payload, &mut back, Duration::ZERO);
            made.fetch_add(1, Ordering::Relaxed);
        }
    });
    if cpus > 1 {
        let _ = pin_to_cpu((args.cpu + 1) % cpus);
    }
    [
        cpu_clock(server.as_pthread_t()),
        cpu_clock(client.as_pthread_t()),
    ]
}

/// The CPU-time clock of a thread.
fn cpu_clock(thread: libc::pthread_t) -> libc::clockid_t {
    let mut id: libc::clockid_t = 0;
    // SAFETY: the thread runs until the process exits; id is ours to write.
    let rc = unsafe { libc::pthread_getcpuclockid(thread, &mut id) };
    assert_eq!(rc, 0, "pthread_getcpuclockid");
    id
}

/// Seconds on `clock`.
fn seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is ours to write.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Connections completed during the next `window`, per wall-clock second
/// and per second of the workload threads' CPU time.
fn measure(made: &AtomicU64, clocks: &[libc::clockid_t; 2], window: Duration) -> Rates {
    let cpu = || clocks.iter().map(|&c| seconds(c)).sum::<f64>();
    let (c0, t0, u0) = (made.load(Ordering::Relaxed), Instant::now(), cpu());
    thread::sleep(window);
    let (c1, t1, u1) = (made.load(Ordering::Relaxed), Instant::now(), cpu());
    let n = (c1 - c0) as f64;
    Rates {
        per_wall_s: n / (t1 - t0).as_secs_f64(),
        per_cpu_s: n / (u1 - u0),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
