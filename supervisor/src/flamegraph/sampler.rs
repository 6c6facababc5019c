//! On-CPU sampling: loads the hot path's profiler program, attaches it to the
//! software CPU clock of every CPU at the chosen frequency, waits, and reads
//! back the sample counts and their stacks from the kernel. With DWARF
//! unwinding, user stacks arrive as copies in a ring buffer that
//! [`dwarf::Collector`] drains and unwinds while sampling runs.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use aya::{
    EbpfLoader,
    maps::{HashMap as BpfHashMap, StackTraceMap},
    programs::{
        PerfEvent,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
    util::online_cpus,
};
use hotpath_common::profile::{
    COUNTS_MAP, FILTER_CGROUP, FILTER_TGID, LOST_MAP, PROFILER_PROG, ProfileKey, STACKS_MAP,
    UNWIND_DWARF, USER_ONLY,
};

use super::{
    FlameError, Target,
    dwarf::{self, UnwoundKey},
    unwind::{UnwindMode, UnwindStats, process_has_frame_pointers},
};

/// The profiler object built from `hotpath-ebpf/src/profiler.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler"));

/// What the kernel counted: samples per (process, stacks) and the stacks.
#[derive(Debug, Default)]
pub(crate) struct RawProfile {
    /// Sample counts by key (user stacks walked by frame pointers).
    pub(crate) samples: Vec<(ProfileKey, u64)>,
    /// Sample counts by unwound stack (DWARF).
    pub(crate) unwound: HashMap<UnwoundKey, u64>,
    /// Whether user stacks were copied for DWARF unwinding.
    pub(crate) dwarf: bool,
    /// Stack samples lost to a full ring buffer.
    pub(crate) lost: u64,
    /// What DWARF unwinding cost.
    pub(crate) unwind: UnwindStats,
    /// Time the profiler program ran in the kernel and how often (zero
    /// unless `kernel.bpf_stats_enabled` is 1).
    pub(crate) kernel: (Duration, u64),
    /// Instruction pointers by stack id, innermost frame first.
    pub(crate) stacks: HashMap<u32, Vec<u64>>,
    /// How long sampling ran.
    pub(crate) elapsed: Duration,
    /// Whether the target went away before the end.
    pub(crate) target_exited: bool,
}

impl RawProfile {
    /// Total samples.
    pub(crate) fn total(&self) -> u64 {
        self.samples.iter().map(|(_, n)| n).sum::<u64>() + self.unwound.values().sum::<u64>()
    }
}

/// How to sample.
#[derive(Debug, Clone)]
pub(crate) struct SampleOptions {
    /// Samples per second per CPU.
    pub(crate) freq: u64,
    /// How long to sample.
    pub(crate) duration: Duration,
    /// Skip kernel stacks.
    pub(crate) user_only: bool,
    /// How user stacks are unwound.
    pub(crate) unwind: UnwindMode,
}

/// Whether `target` is sampled with stack copies (DWARF): always for
/// `dwarf`, never for `fp`; for `auto`, a process whose program keeps frame
/// pointers is not, and a cgroup or the host is (their processes that keep
/// frame pointers are switched to the kernel's walk at their first sample).
pub(crate) fn uses_dwarf(mode: UnwindMode, target: &Target) -> bool {
    match (mode, target) {
        (UnwindMode::Fp, _) => false,
        (UnwindMode::Dwarf, _) => true,
        (UnwindMode::Auto, Target::Pid(pid)) => !process_has_frame_pointers(*pid),
        (UnwindMode::Auto, _) => true,
    }
}

/// Samples `target` and returns what the kernel counted. `progress` is called
/// about once a second with the time left.
pub(crate) fn sample(
    target: &Target,
    opts: &SampleOptions,
    mut progress: impl FnMut(Duration),
) -> Result<RawProfile, FlameError> {
    if OBJECT.is_empty() {
        return Err(FlameError::NotBuilt);
    }
    let bpf_err = |what: &str, e: &dyn std::fmt::Display| FlameError::Bpf(format!("{what}: {e}"));
    let (tgid, cgroup) = match target {
        Target::Pid(pid) => (*pid, 0u64),
        Target::Cgroup { id, .. } => (0, *id),
        Target::Host => (0, 0),
    };
    let user_only = u32::from(opts.user_only);
    let dwarf = uses_dwarf(opts.unwind, target);
    let dwarf_flag = u32::from(dwarf);
    let mut ebpf = EbpfLoader::new()
        .override_global(FILTER_TGID, &tgid, true)
        .override_global(FILTER_CGROUP, &cgroup, true)
        .override_global(USER_ONLY, &user_only, true)
        .override_global(UNWIND_DWARF, &dwarf_flag, true)
        .load(OBJECT)
        .map_err(|e| bpf_err("loading", &e))?;
    let program: &mut PerfEvent = ebpf
        .program_mut(PROFILER_PROG)
        .ok_or_else(|| FlameError::Bpf(format!("no program {PROFILER_PROG}")))?
        .try_into()
        .map_err(|e| bpf_err("program type", &e))?;
    program.load().map_err(|e| bpf_err("loading program", &e))?;
    let cpus = online_cpus().map_err(|(what, e)| bpf_err(what, &e))?;
    for cpu in cpus {
        program
            .attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                SamplePolicy::Frequency(opts.freq),
                false,
            )
            .map_err(|e| bpf_err(&format!("attaching to CPU {cpu}"), &e))?;
    }
    let mut collector = if dwarf {
        let auto = opts.unwind == UnwindMode::Auto;
        Some(dwarf::Collector::new(&mut ebpf, auto).map_err(|e| bpf_err("ring buffer", &e))?)
    } else {
        None
    };
    let (elapsed, target_exited) = wait(target, opts.duration, &mut progress, &mut collector);
    let mut profile = read_maps(&ebpf).map_err(|e| bpf_err("reading maps", &e))?;
    profile.elapsed = elapsed;
    profile.target_exited = target_exited;
    profile.kernel = kernel_cost(&ebpf);
    profile.dwarf = dwarf;
    if let Some(mut c) = collector {
        c.drain();
        profile.lost = lost_samples(&ebpf);
        profile.unwind = c.unwinder.stats;
        profile.unwound = c.counts;
    }
    Ok(profile)
}

/// The profiler's run time and run count from the kernel's BPF statistics.
fn kernel_cost(ebpf: &aya::Ebpf) -> (Duration, u64) {
    ebpf.program(PROFILER_PROG)
        .and_then(|p| p.info().ok())
        .map(|i| (i.run_time(), i.run_count()))
        .unwrap_or_default()
}

/// Stack samples the ring buffer had no room for, over all CPUs.
fn lost_samples(ebpf: &aya::Ebpf) -> u64 {
    ebpf.map(LOST_MAP)
        .and_then(|m| aya::maps::PerCpuArray::<_, u64>::try_from(m).ok())
        .and_then(|a| a.get(&0, 0).ok())
        .map(|v| v.iter().sum())
        .unwrap_or(0)
}

/// Sleeps for `duration` in steps of at most a second (20 ms while a
/// collector drains stack copies), stopping early when the target goes away.
/// Returns the time waited and whether it went away.
fn wait(
    target: &Target,
    duration: Duration,
    progress: &mut impl FnMut(Duration),
    collector: &mut Option<dwarf::Collector>,
) -> (Duration, bool) {
    let start = Instant::now();
    let step = if collector.is_some() {
        Duration::from_millis(20)
    } else {
        Duration::from_secs(1)
    };
    let mut shown = None;
    loop {
        let left = duration.saturating_sub(start.elapsed());
        if shown != Some(left.as_secs()) {
            shown = Some(left.as_secs());
            progress(left);
        }
        if let Some(c) = collector.as_mut() {
            c.drain();
        }
        if left.is_zero() {
            return (start.elapsed(), false);
        }
        if !target.alive() {
            return (start.elapsed(), true);
        }
        std::thread::sleep(left.min(step));
    }
}

/// Reads the sample counts and every stack they reference.
fn read_maps(ebpf: &aya::Ebpf) -> Result<RawProfile, aya::maps::MapError> {
    let missing = |name: &str| aya::maps::MapError::InvalidName { name: name.into() };
    let counts: BpfHashMap<_, ProfileKey, u64> =
        BpfHashMap::try_from(ebpf.map(COUNTS_MAP).ok_or_else(|| missing(COUNTS_MAP))?)?;
    let stack_map =
        StackTraceMap::try_from(ebpf.map(STACKS_MAP).ok_or_else(|| missing(STACKS_MAP))?)?;
    let samples: Vec<(ProfileKey, u64)> = counts.iter().filter_map(Result::ok).collect();
    let mut stacks = HashMap::new();
    for (key, _) in &samples {
        for id in [key.user_stack, key.kernel_stack] {
            if id < 0 || stacks.contains_key(&(id as u32)) {
                continue;
            }
            if let Ok(trace) = stack_map.get(&(id as u32), 0) {
                let ips = trace.frames().iter().map(|f| f.ip).collect();
                stacks.insert(id as u32, ips);
            }
        }
    }
    Ok(RawProfile {
        samples,
        stacks,
        ..RawProfile::default()
    })
}
