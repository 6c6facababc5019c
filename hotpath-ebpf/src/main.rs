//! eunomia's hot-path BPF programs. Each program aggregates in kernel maps;
//! nothing is sent to user space per event. The supervisor polls the maps.
//!
//! - `count_sys_exit` (tp_btf `sys_exit`): syscalls and errors per (cgroup,
//!   syscall number). One program on the exit side sees both the number
//!   ([`arch::syscall_nr`]) and the result, so one program run per syscall does
//!   it all. The current task's slot is cached per CPU by its `pt_regs`
//!   address (`syscalls_task_created`/`_moved` invalidate the caches), so
//!   the common case is: two inlined array lookups, a global read, two adds.
//! - `tcp_set_state`, `tcp_recv_reset`, `tcp_send_reset`: TCP sessions per
//!   (cgroup, direction, port/peer), durations and bytes at close.
//! - [`http`]: HTTP/1.x requests, from the same `sys_exit` program (the read
//!   and write families, connect, accept, close): every request counted in
//!   RED histograms in a map ([`http_series`]), a record to a ring buffer
//!   for those spans need ([`http_sample`]) or for every one.
//! - [`mounts`]: mount, umount2 and move_mount, from the same `sys_exit`
//!   program, one event each through a ring buffer.
//! - `pid_fork`, `pid_exec`, `pid_exit`, `pid_moved`, `pid_renamed`, `uid_*` ([`pids`]): the
//!   pid map (cgroup, uid, comm, exec time per task), the kernel's truth that
//!   tool records are checked against.
//! - `exec_event` ([`execs`]): one event per exec, through a ring buffer
//!   (a scheduler tracepoint, so execs are seen without a syscall hook).
//! - `bench_floor`, `bench_exit_floor`, `bench_tcp_floor`: empty programs on
//!   the probes' hooks, only for the benchmark (the floor of each hook).
//!
//! One file per probe family: [`syscalls`], [`tcp`], [`pids`] (with
//! [`strings`]), [`execs`], [`bench`]; register access per architecture in [`arch`].
//! This file holds the maps and the helpers the families share.
#![no_std]
#![no_main]
// Atomic adds: BPF has `lock xadd` but core's atomics need CAS on this target.
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, Queue},
    programs::TracePointContext,
};
use hotpath_common::{
    COUNTERS_LEN, Counter, DEFAULT_CGROUP_SLOTS, FlowKey, FlowStats, OFFSET_UNKNOWN, OFFSETS_LEN,
    Offset, PID_CGROUPS_MAX, PidInfo, SlotCache, SlotCounters, SockInfo, TCP_FLOWS_MAX,
    TCP_SOCKS_MAX,
};

// ---------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------

/// Number of cgroup slots; set by the loader (`set_global`), so the verifier
/// sees a constant.
#[unsafe(no_mangle)]
static CGROUP_SLOT_COUNT: u32 = DEFAULT_CGROUP_SLOTS;

/// `cpu * slots + slot` → counters. The loader sets max_entries.
#[map]
static SYSCALL_COUNTERS: Array<SlotCounters> =
    Array::with_max_entries(2 * DEFAULT_CGROUP_SLOTS, BPF_F_MMAPABLE);

/// slot → cgroup id.
#[map]
static SLOT_OWNERS: Array<u64> = Array::with_max_entries(DEFAULT_CGROUP_SLOTS, BPF_F_MMAPABLE);

/// cgroup id → slot.
#[map]
static CGROUP_SLOTS: HashMap<u64, u32> = HashMap::with_max_entries(DEFAULT_CGROUP_SLOTS, 0);

/// Free slots, pushed by the supervisor at start and when it evicts a dead cgroup.
#[map]
static FREE_SLOTS: Queue<u32> = Queue::with_max_entries(DEFAULT_CGROUP_SLOTS, 0);

/// Bumped by `syscalls_task_created` and `syscalls_task_moved`; a per-CPU
/// slot cache entry is only trusted while it is unchanged.
#[unsafe(no_mangle)]
static mut TASKS_GENERATION: u64 = 0;

/// The slot of the task (and cgroup) that last made a syscall on this CPU.
#[map]
static SLOT_CACHE: PerCpuArray<SlotCache> = PerCpuArray::with_max_entries(1, 0);

/// Self-observability counters, indexed by `Counter`.
#[map]
static COUNTERS: Array<u64> = Array::with_max_entries(COUNTERS_LEN, BPF_F_MMAPABLE);

/// Field offsets, indexed by `Offset`, set by the loader (`override_global`).
/// Read-only data: the verifier sees each entry as a constant, so the TCP
/// program reads `struct sock` fields with direct, BTF-checked loads instead
/// of `bpf_probe_read_kernel` calls.
#[unsafe(no_mangle)]
static OFFSETS: [u32; OFFSETS_LEN as usize] = [OFFSET_UNKNOWN; OFFSETS_LEN as usize];

#[map]
static TCP_SOCKS: HashMap<u64, SockInfo> = HashMap::with_max_entries(TCP_SOCKS_MAX, 0);

#[map]
static TCP_FLOWS: HashMap<FlowKey, FlowStats> = HashMap::with_max_entries(TCP_FLOWS_MAX, 0);

#[map]
static PID_CGROUPS: LruHashMap<u32, PidInfo> = LruHashMap::with_max_entries(PID_CGROUPS_MAX, 0);

#[inline(always)]
fn count(counter: Counter) {
    if let Some(p) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: p points into the map's value; atomic because every CPU adds.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, 1) };
    }
}

/// Adds `n` to the counter at `p` (a map value other CPUs add to too).
#[inline(always)]
fn add(p: *mut u64, n: u64) {
    // SAFETY: p points into a map value; other CPUs add too.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, n) };
}

/// `IPPROTO_TCP`, as `sock.sk_protocol` holds it.
const IPPROTO_TCP: u16 = 6;
/// `AF_INET`, as `sock.__sk_common.skc_family` holds it.
const AF_INET: u16 = 2;

#[inline(always)]
fn offset(which: Offset) -> Option<usize> {
    // SAFETY: reading a read-only global the loader set.
    match unsafe { core::ptr::read_volatile(&OFFSETS[which as usize]) } {
        OFFSET_UNKNOWN => None,
        off => Some(off as usize),
    }
}

#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, which: Offset) -> Option<T> {
    let off = offset(which)?;
    if off > 256 {
        return None;
    }
    // SAFETY: tracepoint records are readable; bpf_probe_read_kernel checks.
    unsafe { ctx.read_at::<T>(off).ok() }
}

/// Loads a `T` at `base + off`, where `base` is a BTF-typed kernel pointer
/// (a `tp_btf` argument or a pointer loaded from one) and `off` a loader
/// constant: the verifier checks the access against the kernel's BTF and
/// turns it into a fault-safe load, without a helper call.
#[inline(always)]
fn load<T: Copy>(base: u64, off: usize) -> T {
    // SAFETY: see above; a faulting load yields zero instead of crashing.
    unsafe { core::ptr::read((base as usize + off) as *const T) }
}

/// The id of the cgroup `cgrp` points to: `cgrp->kn->id` (0 for a null
/// pointer); None where the loader found no offsets.
#[inline(always)]
fn cgroup_v2_id(cgrp: u64) -> Option<u64> {
    let (kn_off, id_off) = (offset(Offset::CgroupKn)?, offset(Offset::KernfsId)?);
    if cgrp == 0 {
        return Some(0);
    }
    let kn: u64 = load(cgrp, kn_off);
    if kn == 0 {
        return Some(0);
    }
    Some(load(kn, id_off))
}

// Shared with the profiler, which uses other parts of it.
#[allow(dead_code)]
mod arch;
mod bench;
mod execs;
mod http;
mod http_sample;
mod http_series;
mod mounts;
mod pids;
mod strings;
mod syscalls;
mod tcp;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
