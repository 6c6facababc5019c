//! The sampling profiler behind `eunomia flamegraph`: a perf-event program on
//! the software CPU clock that counts (process, user stack, kernel stack)
//! in the kernel. Filters (a process or a cgroup) are globals the loader sets.
#![no_std]
#![no_main]

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_comm},
    macros::{map, perf_event},
    maps::{HashMap, StackTrace},
    programs::PerfEventContext,
};
use hotpath_common::profile::{MAX_PROFILE_KEYS, MAX_STACKS, ProfileKey};

/// Only sample this process (tgid); 0 means any.
#[unsafe(no_mangle)]
static FILTER_TGID: u32 = 0;
/// Only sample this cgroup v2 id; 0 means any.
#[unsafe(no_mangle)]
static FILTER_CGROUP: u64 = 0;
/// 1 to skip kernel stacks.
#[unsafe(no_mangle)]
static USER_ONLY: u32 = 0;

#[map]
static PROFILE_STACKS: StackTrace = StackTrace::with_max_entries(MAX_STACKS, 0);

#[map]
static PROFILE_COUNTS: HashMap<ProfileKey, u64> = HashMap::with_max_entries(MAX_PROFILE_KEYS, 0);

/// Runs on every CPU-clock sample.
#[perf_event]
pub fn profile_cpu(ctx: PerfEventContext) -> u32 {
    let tgid = ctx.tgid();
    if tgid == 0 || !wanted(tgid) {
        return 0;
    }
    let user_stack = stack_id(&ctx, BPF_F_USER_STACK as u64);
    let kernel_stack = if read(&USER_ONLY) == 1 {
        -1
    } else {
        stack_id(&ctx, 0)
    };
    let key = ProfileKey {
        tgid,
        user_stack,
        kernel_stack,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    match PROFILE_COUNTS.get_ptr_mut(&key) {
        // SAFETY: the pointer is to a live map value; a lost increment between
        // two CPUs only costs one sample.
        Some(count) => unsafe { *count += 1 },
        None => {
            let _ = PROFILE_COUNTS.insert(&key, &1, 0);
        }
    }
    0
}

/// Whether the filters let this process be sampled.
fn wanted(tgid: u32) -> bool {
    let want_tgid = read(&FILTER_TGID);
    if want_tgid != 0 && want_tgid != tgid {
        return false;
    }
    let want_cgroup = read(&FILTER_CGROUP);
    // SAFETY: the helper has no preconditions.
    want_cgroup == 0 || want_cgroup == unsafe { bpf_get_current_cgroup_id() }
}

/// The stack id for `flags`, or the (negative) error.
fn stack_id(ctx: &PerfEventContext, flags: u64) -> i32 {
    use aya_ebpf::programs::tracing::StackIdContext as _;
    match ctx.get_stackid(&PROFILE_STACKS, flags) {
        Ok(id) => id as i32,
        Err(e) => e,
    }
}

/// Reads a global the loader may have overridden (volatile, so the compiler
/// does not fold the default value in).
fn read<T: Copy>(global: &T) -> T {
    // SAFETY: `global` is a valid reference.
    unsafe { core::ptr::read_volatile(global) }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
