//! On-CPU sampling: loads the hot path's profiler program, attaches it to the
//! software CPU clock of every CPU at the chosen frequency, waits, and reads
//! back the sample counts and their stacks from the kernel.

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
    COUNTS_MAP, FILTER_CGROUP, FILTER_TGID, PROFILER_PROG, ProfileKey, STACKS_MAP, USER_ONLY,
};

use super::{FlameError, Target};

/// The profiler object built from `hotpath-ebpf/src/profiler.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler"));

/// What the kernel counted: samples per (process, stacks) and the stacks.
#[derive(Debug, Default)]
pub struct RawProfile {
    /// Sample counts by key.
    pub samples: Vec<(ProfileKey, u64)>,
    /// Instruction pointers by stack id, innermost frame first.
    pub stacks: HashMap<u32, Vec<u64>>,
    /// How long sampling ran.
    pub elapsed: Duration,
    /// Whether the target went away before the end.
    pub target_exited: bool,
}

impl RawProfile {
    /// Total samples.
    pub fn total(&self) -> u64 {
        self.samples.iter().map(|(_, n)| n).sum()
    }
}

/// How to sample.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Samples per second per CPU.
    pub freq: u64,
    /// How long to sample.
    pub duration: Duration,
    /// Skip kernel stacks.
    pub user_only: bool,
}

/// Samples `target` and returns what the kernel counted. `progress` is called
/// about once a second with the time left.
pub fn sample(
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
    let mut ebpf = EbpfLoader::new()
        .override_global(FILTER_TGID, &tgid, true)
        .override_global(FILTER_CGROUP, &cgroup, true)
        .override_global(USER_ONLY, &user_only, true)
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
    let (elapsed, target_exited) = wait(target, opts.duration, &mut progress);
    let mut profile = read_maps(&ebpf).map_err(|e| bpf_err("reading maps", &e))?;
    profile.elapsed = elapsed;
    profile.target_exited = target_exited;
    Ok(profile)
}

/// Sleeps for `duration` in steps of at most a second, stopping early when
/// the target goes away. Returns the time waited and whether it went away.
fn wait(
    target: &Target,
    duration: Duration,
    progress: &mut impl FnMut(Duration),
) -> (Duration, bool) {
    let start = Instant::now();
    loop {
        let left = duration.saturating_sub(start.elapsed());
        progress(left);
        if left.is_zero() {
            return (start.elapsed(), false);
        }
        if !target.alive() {
            return (start.elapsed(), true);
        }
        std::thread::sleep(left.min(Duration::from_secs(1)));
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
