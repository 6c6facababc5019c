//! The agent's own cost, measured while it runs (always on), exported as
//! `eunomia_overhead_*` self-metrics and shown by `eunomia status`:
//!
//! - the CPU time of the agent's process and of each supervised tool's
//!   process (`/proc/PID/stat`);
//! - the run time and count of every BPF program the agent and each tool
//!   hold (the kernel's BPF statistics, read from `/proc/PID/fdinfo`). The
//!   statistics add two clock reads to every program run on the machine
//!   (about 47 ns per run in this VM, `scripts/bench/cost.sh`), so the
//!   agent enables them (`BPF_ENABLE_STATS`) only for the first
//!   [`STATS_FRACTION`] of one interval in [`STATS_EVERY`] (1% of the
//!   time), or of every interval under a CPU budget (10%: the budget needs
//!   fresh figures), and scales what it measured there to the time since
//!   the last window: estimates for bursty work, close for steady work;
//! - the share of the machine each part used over the last interval
//!   (`eunomia_overhead_cpu_ratio`), and in all (`component="total"`),
//!   which a CPU budget can hold against a limit.
//!
//! Not seen here: the kernel's dispatch of the hooks outside any program
//! (for syscall hooks, the syscall slow path every syscall of the machine
//! takes while one is attached; `scripts/bench/cost.sh` measures it).

pub(crate) mod procfs;

use std::{
    collections::BTreeMap,
    os::fd::OwnedFd,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::procfs::ProgStats;
use crate::{context::AgentContext, selfmetrics::Registry, tools::Supervisor};

/// The fraction of a measured interval during which BPF statistics are
/// enabled (one tenth: one period of sampled syscall counting, so that a
/// window sees one sampled window whatever their phases).
pub(crate) const STATS_FRACTION: f64 = 0.1;
/// Without a CPU budget, BPF statistics are taken in one interval of this
/// many.
pub(crate) const STATS_EVERY: u32 = 10;
/// The component label of the agent's own process and programs.
pub(crate) const AGENT: &str = "agent";
/// The component label of all parts together (`eunomia_overhead_cpu_ratio`).
pub(crate) const TOTAL: &str = "total";

const CPU_METRIC: &str = "eunomia_overhead_process_cpu_seconds_total";
const BPF_SECONDS_METRIC: &str = "eunomia_overhead_bpf_run_seconds_total";
const BPF_RUNS_METRIC: &str = "eunomia_overhead_bpf_runs_total";
const RATIO_METRIC: &str = "eunomia_overhead_cpu_ratio";
const BPF_RATIO_METRIC: &str = "eunomia_overhead_bpf_cpu_ratio";
const PER_RUN_METRIC: &str = "eunomia_overhead_bpf_seconds_per_run";

/// What one part of the agent cost: its totals and its last interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Cost {
    /// CPU seconds of its process so far (0 for BPF-only parts).
    pub(crate) process_s: f64,
    /// BPF run seconds so far (estimated from the statistics windows).
    pub(crate) bpf_s: f64,
    /// Share of the machine (all CPUs) over the last interval.
    pub(crate) ratio: f64,
    /// The part of `ratio` its BPF programs ran.
    pub(crate) bpf_ratio: f64,
}

/// One BPF program's cost.
#[derive(Debug, Clone, Default, PartialEq)]
struct ProgCost {
    run_s: f64,
    runs: f64,
    ratio: f64,
    per_run_s: f64,
}

#[derive(Default)]
struct State {
    /// component → (pid, its CPU seconds at the last look, cost).
    parts: BTreeMap<String, (u32, f64, Cost)>,
    /// (component, program name) → cost.
    programs: BTreeMap<(String, String), ProgCost>,
    /// Share of the machine of everything, over the last interval.
    total: f64,
    /// Program id → name.
    names: BTreeMap<u32, String>,
}

/// A shared view of the measured cost (cheap to clone).
#[derive(Clone, Default)]
pub(crate) struct Overhead(Arc<Mutex<State>>);

impl Overhead {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The share of the machine the agent, its tools and their BPF
    /// programs used over the last interval.
    pub(crate) fn total_ratio(&self) -> f64 {
        self.lock().total
    }

    /// Each component's cost (`agent`, `tool/NAME`).
    pub(crate) fn components(&self) -> Vec<(String, Cost)> {
        let s = self.lock();
        s.parts
            .iter()
            .map(|(k, v)| (k.clone(), v.2.clone()))
            .collect()
    }
}

/// Starts measuring the agent and the tools `supervisor` runs every
/// `interval`, their BPF programs every `stats_every` intervals
/// (self-metrics in the context's registry); returns the view of what it
/// measured and the task.
pub(crate) fn start(
    interval: Duration,
    stats_every: u32,
    supervisor: Supervisor,
    ctx: &AgentContext,
) -> (Overhead, JoinHandle<()>) {
    let view = Overhead::default();
    let registry = ctx.registry.clone();
    registry.observe_gauge(
        RATIO_METRIC,
        "Share of the machine's CPU the agent, its tools and their BPF programs used over the last interval.",
        &[("component", TOTAL)],
        {
            let v = view.clone();
            move || v.total_ratio()
        },
    );
    let task = tokio::spawn(run(
        view.clone(),
        registry,
        (interval, stats_every.max(1)),
        supervisor,
        ctx.shutdown.clone(),
    ));
    (view, task)
}

/// The processes to measure: the agent and each running tool.
fn processes(supervisor: &Supervisor) -> Vec<(String, u32)> {
    let mut out = vec![(AGENT.to_owned(), std::process::id())];
    for t in supervisor.stats() {
        if let crate::tools::ToolState::Running(pid) = t.state()
            && pid != 0
        {
            out.push((format!("tool/{}", t.tool), pid));
        }
    }
    out
}

/// Turns BPF statistics on while the returned descriptor lives (None, and
/// a warning once, where the kernel refuses).
fn enable_stats() -> Option<OwnedFd> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
        Ok(fd) => Some(fd),
        Err(e) => {
            WARNED.call_once(|| {
                tracing::warn!("BPF statistics unavailable ({e}): BPF run time is not measured")
            });
            None
        }
    }
}

async fn run(
    view: Overhead,
    registry: Arc<Registry>,
    (interval, stats_every): (Duration, u32),
    supervisor: Supervisor,
    shutdown: CancellationToken,
) {
    let window = interval.mul_f64(STATS_FRACTION);
    let mut n = 0u32;
    // since the last statistics window began (what it is scaled to)
    let mut since_window: Option<Instant> = None;
    let mut last = Instant::now();
    loop {
        let start = Instant::now();
        let procs = processes(&supervisor);
        let measure = n.is_multiple_of(stats_every);
        n = n.wrapping_add(1);
        if !measure {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.cancelled() => return,
            }
            let windows = procs.into_iter().map(|(c, p)| (c, p, None)).collect();
            update(&view, &registry, windows, None, last.elapsed());
            last = Instant::now();
            continue;
        }
        let stats = enable_stats();
        let before: Vec<_> = procs
            .iter()
            .map(|(_, pid)| procfs::bpf_programs(*pid))
            .collect();
        tokio::select! {
            _ = tokio::time::sleep(window) => {}
            _ = shutdown.cancelled() => return,
        }
        let after: Vec<_> = procs
            .iter()
            .map(|(_, pid)| procfs::bpf_programs(*pid))
            .collect();
        let measured = start.elapsed();
        let enabled = stats.is_some();
        drop(stats);
        tokio::select! {
            _ = tokio::time::sleep(interval.saturating_sub(start.elapsed())) => {}
            _ = shutdown.cancelled() => return,
        }
        let windows = procs
            .into_iter()
            .zip(before.into_iter().zip(after))
            .map(|((part, pid), (b, a))| (part, pid, enabled.then_some((b, a))))
            .collect();
        // the first window stands for its own interval; later ones for the
        // time since the one before
        let span = since_window.map_or(start.elapsed(), |t| t.elapsed());
        since_window = Some(start);
        update(
            &view,
            &registry,
            windows,
            Some((measured, span)),
            last.elapsed(),
        );
        last = Instant::now();
    }
}

/// One process's programs before and after the statistics window.
type Window = (
    String,
    u32,
    Option<(BTreeMap<u32, ProgStats>, BTreeMap<u32, ProgStats>)>,
);

/// Folds one interval of `elapsed` into the totals and registers new
/// series; `stats` is the statistics window's length and the time it stands
/// for, None in an interval without a window (each part's BPF share is then
/// the last one measured).
fn update(
    view: &Overhead,
    registry: &Registry,
    windows: Vec<Window>,
    stats: Option<(Duration, Duration)>,
    elapsed: Duration,
) {
    let machine = elapsed.as_secs_f64() * procfs::cpus();
    let (measured, span) = stats.unwrap_or((elapsed, elapsed));
    let scale = span.as_secs_f64() / measured.as_secs_f64().max(1e-3);
    let span_machine = span.as_secs_f64() * procfs::cpus();
    let mut s = view.lock();
    let live: Vec<&String> = windows.iter().map(|w| &w.0).collect();
    // parts gone since (a stopped tool) cost nothing now
    for (part, p) in s.parts.iter_mut() {
        p.2.ratio = 0.0;
        if stats.is_some() || !live.contains(&part) {
            p.2.bpf_ratio = 0.0;
        }
    }
    if stats.is_some() {
        s.programs.values_mut().for_each(|p| p.ratio = 0.0);
    }
    let mut total = 0.0;
    for (part, pid, progs) in windows {
        let cpu_now = procfs::cpu_seconds(pid).unwrap_or(0.0);
        let new = !s.parts.contains_key(&part);
        let entry = s
            .parts
            .entry(part.clone())
            .or_insert((pid, cpu_now, Cost::default()));
        // a restarted tool's new process started within this interval
        let cpu_d = if entry.0 == pid {
            (cpu_now - entry.1).max(0.0)
        } else {
            cpu_now
        };
        *entry = (pid, cpu_now, entry.2.clone());
        entry.2.process_s += cpu_d;
        let mut bpf_d = 0.0;
        for (id, d) in progs.map(|(b, a)| deltas(&b, &a)).unwrap_or_default() {
            let name = program_name(&mut s.names, id);
            let run_s = d.run_ns as f64 * 1e-9 * scale;
            bpf_d += run_s;
            let key = (part.clone(), name.clone());
            if !s.programs.contains_key(&key) {
                register_program(registry, view, &part, &name);
            }
            let p = s.programs.entry(key).or_default();
            p.run_s += run_s;
            p.runs += d.runs as f64 * scale;
            p.ratio = run_s / span_machine;
            p.per_run_s = if d.runs > 0 {
                d.run_ns as f64 * 1e-9 / d.runs as f64
            } else {
                0.0
            };
        }
        let entry = s.parts.get_mut(&part).expect("inserted above");
        entry.2.bpf_s += bpf_d;
        if stats.is_some() {
            entry.2.bpf_ratio = bpf_d / span_machine;
        }
        entry.2.ratio = cpu_d / machine + entry.2.bpf_ratio;
        total += entry.2.ratio;
        if new {
            register_part(registry, view, &part);
        }
    }
    s.total = total;
}

/// What each program did between two looks (programs in both).
fn deltas(
    before: &BTreeMap<u32, ProgStats>,
    after: &BTreeMap<u32, ProgStats>,
) -> Vec<(u32, ProgStats)> {
    after
        .iter()
        .filter_map(|(id, a)| {
            let b = before.get(id)?;
            Some((
                *id,
                ProgStats {
                    run_ns: a.run_ns.saturating_sub(b.run_ns),
                    runs: a.runs.saturating_sub(b.runs),
                },
            ))
        })
        .collect()
}

/// The name of program `id` (looked up once; `prog_ID` if unknown).
fn program_name(names: &mut BTreeMap<u32, String>, id: u32) -> String {
    if !names.contains_key(&id) {
        for info in aya::programs::loaded_programs().flatten() {
            if let Some(n) = info.name_as_str() {
                names.insert(info.id(), n.to_owned());
            }
        }
    }
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("prog_{id}"))
}

fn register_part(registry: &Registry, view: &Overhead, part: &str) {
    let read = |f: fn(&Cost) -> f64| {
        let (v, part) = (view.clone(), part.to_owned());
        move || v.lock().parts.get(&part).map_or(0.0, |p| f(&p.2))
    };
    let labels = [("component", part)];
    registry.observe_counter_f64(
        CPU_METRIC,
        "CPU seconds of the agent's process and of each supervised tool's process.",
        &labels,
        read(|c| c.process_s),
    );
    registry.observe_gauge(
        RATIO_METRIC,
        "Share of the machine's CPU the agent, its tools and their BPF programs used over the last interval.",
        &labels,
        read(|c| c.ratio),
    );
}

fn register_program(registry: &Registry, view: &Overhead, part: &str, program: &str) {
    let read = |f: fn(&ProgCost) -> f64| {
        let (v, key) = (view.clone(), (part.to_owned(), program.to_owned()));
        move || v.lock().programs.get(&key).map_or(0.0, f)
    };
    let labels = [("component", part), ("program", program)];
    registry.observe_counter_f64(
        BPF_SECONDS_METRIC,
        "Run time of each BPF program of the agent and its tools (estimated from the statistics windows).",
        &labels,
        read(|p| p.run_s),
    );
    registry.observe_counter_f64(
        BPF_RUNS_METRIC,
        "Runs of each BPF program of the agent and its tools (estimated from the statistics windows).",
        &labels,
        read(|p| p.runs.round()),
    );
    registry.observe_gauge(
        BPF_RATIO_METRIC,
        "Share of the machine's CPU each BPF program used over the last statistics window.",
        &labels,
        read(|p| p.ratio),
    );
    registry.observe_gauge(
        PER_RUN_METRIC,
        "Mean run time of each BPF program over the last statistics window.",
        &labels,
        read(|p| p.per_run_s),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(run_ns: u64, runs: u64) -> ProgStats {
        ProgStats { run_ns, runs }
    }

    #[test]
    fn one_interval_is_scaled_from_its_window() {
        let view = Overhead::default();
        let registry = Registry::new();
        let before = BTreeMap::from([(7, stats(1_000, 10))]);
        let after = BTreeMap::from([(7, stats(3_000, 30))]);
        let windows = vec![(
            "tool/x".to_owned(),
            u32::MAX, // no such process: no process CPU
            Some((before, after)),
        )];
        update(
            &view,
            &registry,
            windows,
            Some((Duration::from_millis(100), Duration::from_secs(1))),
            Duration::from_secs(1),
        );
        let s = view.lock();
        let p = s.programs.values().next().expect("one program");
        assert!((p.runs - 200.0).abs() < 1e-6, "{p:?}");
        assert!((p.run_s - 20e-6).abs() < 1e-12, "{p:?}");
        assert!((p.per_run_s - 100e-9).abs() < 1e-15, "{p:?}");
        let ratio = 20e-6 / procfs::cpus();
        assert!((s.total - ratio).abs() < 1e-12, "{}", s.total);
        drop(s);
        let names: Vec<_> = registry.read().into_iter().map(|p| p.name).collect();
        for m in [
            CPU_METRIC,
            RATIO_METRIC,
            BPF_SECONDS_METRIC,
            BPF_RUNS_METRIC,
            PER_RUN_METRIC,
        ] {
            assert!(names.contains(&m), "{m} in {names:?}");
        }
    }

    #[test]
    fn an_interval_without_a_window_keeps_the_last_bpf_share() {
        let view = Overhead::default();
        let registry = Registry::new();
        let window = |b| {
            let before = BTreeMap::from([(7, stats(0, 0))]);
            let after = BTreeMap::from([(7, stats(b, 10))]);
            vec![("tool/x".to_owned(), u32::MAX, Some((before, after)))]
        };
        // a 100 ms window standing for the 10 s since the last one
        update(
            &view,
            &registry,
            window(1_000_000),
            Some((Duration::from_millis(100), Duration::from_secs(10))),
            Duration::from_secs(1),
        );
        let share = 0.01 / procfs::cpus();
        assert!((view.total_ratio() - share).abs() < 1e-12);
        let bare = vec![("tool/x".to_owned(), u32::MAX, None)];
        update(&view, &registry, bare, None, Duration::from_secs(1));
        assert!((view.total_ratio() - share).abs() < 1e-12);
        // the run time counted once, for the 10 s it stands for
        let s = view.lock();
        assert!((s.parts["tool/x"].2.bpf_s - 0.1).abs() < 1e-9);
    }

    #[test]
    fn programs_that_came_or_went_in_the_window_are_left_out() {
        let before = BTreeMap::from([(1, stats(5, 1)), (2, stats(5, 1))]);
        let after = BTreeMap::from([(2, stats(9, 3)), (3, stats(100, 100))]);
        assert_eq!(deltas(&before, &after), vec![(2, stats(4, 2))]);
    }
}
