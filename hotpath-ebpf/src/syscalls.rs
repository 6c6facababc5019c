//! Syscalls and errors per (cgroup, syscall number): `count_sys_exit` on
//! tp_btf `sys_exit`, with the current task's cgroup slot cached per CPU and
//! the caches invalidated by `syscalls_task_created`/`_moved`.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_smp_processor_id, generated::bpf_get_current_task_btf,
    },
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use hotpath_common::{Counter, MAX_SYSCALLS, OVERFLOW_SLOT, Offset};

use crate::{
    CGROUP_SLOT_COUNT, CGROUP_SLOTS, FREE_SLOTS, SLOT_CACHE, SLOT_OWNERS, SYSCALL_COUNTERS,
    TASKS_GENERATION, cgroup_v2_id, count, load, offset,
};

/// `raw_syscalls:sys_exit` (BTF): args are `(struct pt_regs *regs, long ret)`.
#[btf_tracepoint(function = "sys_exit")]
pub fn count_sys_exit(ctx: BtfTracePointContext) -> i32 {
    let regs: *const u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    let nr = crate::arch::syscall_nr(regs) & (MAX_SYSCALLS - 1);
    let slot = current_slot(regs as u64);
    // SAFETY: reading a read-only global the loader may have set.
    let slots = unsafe { core::ptr::read_volatile(&CGROUP_SLOT_COUNT) };
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(c) = SYSCALL_COUNTERS.get_ptr_mut(cpu * slots + slot) else {
        return 0;
    };
    // SAFETY: this CPU's element; the kernel never runs this program twice
    // at once on one CPU (recursion protection), so plain adds do not race.
    unsafe {
        (*c).calls[nr as usize] += 1;
        if (-4095..0).contains(&ret) {
            (*c).errors[nr as usize] += 1;
        }
    }
    if crate::mounts::wanted(nr) {
        crate::mounts::on_sys_exit(regs, nr, ret);
    }
    if crate::http::wanted(nr) {
        return crate::http::on_sys_exit(regs, nr, ret);
    }
    0
}

/// The current task's cgroup v2 id: `current->cgroups->dfl_cgrp->kn->id`,
/// what `bpf_get_current_cgroup_id()` returns, read with direct loads from
/// `bpf_get_current_task_btf()`. Only the slot cache's miss path needs it.
/// Falls back to the helper where the loader found no offsets.
#[inline(always)]
fn current_cgroup_id() -> u64 {
    let (Some(o1), Some(o2)) = (offset(Offset::TaskCgroups), offset(Offset::CssSetDflCgrp)) else {
        // SAFETY: helper without preconditions.
        return unsafe { bpf_get_current_cgroup_id() };
    };
    // SAFETY: helper without preconditions; returns a trusted task pointer.
    let task = unsafe { bpf_get_current_task_btf() } as u64;
    let cset: u64 = load(task, o1);
    // SAFETY: helper without preconditions.
    cgroup_v2_id(load(cset, o2)).unwrap_or_else(|| unsafe { bpf_get_current_cgroup_id() })
}

/// The current task's slot. Fast path: the same task (same `pt_regs`
/// address) as the last syscall on this CPU, and no task created or moved
/// since: nothing but the cache is read. Otherwise the cgroup id is read,
/// and only a cgroup other than the cached one needs the slot table.
#[inline(always)]
fn current_slot(regs: u64) -> u32 {
    let Some(cache) = SLOT_CACHE.get_ptr_mut(0) else {
        return OVERFLOW_SLOT;
    };
    // Read before the cgroup id: a move racing with this syscall bumps it
    // afterwards, so the entry stored below is stale at the next syscall.
    // SAFETY: a plain read of a global other CPUs add to atomically.
    let generation = unsafe { core::ptr::read_volatile(&raw const TASKS_GENERATION) };
    // SAFETY: this CPU's cache entry.
    unsafe {
        if (*cache).regs == regs && (*cache).generation == generation {
            return (*cache).slot;
        }
        let cgroup_id = current_cgroup_id();
        if (*cache).cgroup_id != cgroup_id || (*cache).regs == 0 {
            (*cache).slot = slot_of(cgroup_id);
            (*cache).cgroup_id = cgroup_id;
        }
        (*cache).regs = regs;
        (*cache).generation = generation;
        (*cache).slot
    }
}

/// Invalidates every CPU's slot cache.
#[inline(always)]
fn bump_generation() {
    // SAFETY: an atomic add to a global.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut TASKS_GENERATION, 1) };
}

/// `sched_process_fork` (BTF): a new task, whose kernel stack (and so
/// `pt_regs` address) may be a dead task's. Fires before the child runs.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn syscalls_task_created(_ctx: BtfTracePointContext) -> i32 {
    bump_generation();
    0
}

/// `cgroup_attach_task` (BTF): tasks moved to another cgroup.
#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn syscalls_task_moved(_ctx: BtfTracePointContext) -> i32 {
    bump_generation();
    0
}

/// Looks up (or allocates) the slot of `cgroup_id`.
#[inline(never)]
fn slot_of(cgroup_id: u64) -> u32 {
    // SAFETY: the value is copied out at once.
    if let Some(&slot) = unsafe { CGROUP_SLOTS.get(&cgroup_id) } {
        return slot;
    }
    let Ok(Some(slot)) = FREE_SLOTS.pop() else {
        count(Counter::CgroupSlotsFull);
        return OVERFLOW_SLOT;
    };
    if let Some(owner) = SLOT_OWNERS.get_ptr_mut(slot) {
        // SAFETY: we popped the slot, nobody else owns it.
        unsafe { *owner = cgroup_id };
    }
    if CGROUP_SLOTS
        .insert(&cgroup_id, &slot, BPF_NOEXIST as u64)
        .is_ok()
    {
        return slot;
    }
    // Another CPU allocated a slot for this cgroup at the same time (or the
    // table is full): give ours back.
    if let Some(owner) = SLOT_OWNERS.get_ptr_mut(slot) {
        unsafe { *owner = 0 };
    }
    let _ = FREE_SLOTS.push(&slot, 0);
    // SAFETY: copied out at once.
    match unsafe { CGROUP_SLOTS.get(&cgroup_id) } {
        Some(&s) => s,
        None => {
            count(Counter::CgroupSlotsFull);
            OVERFLOW_SLOT
        }
    }
}
