//! eunomia's hot-path BPF programs. Each program aggregates in kernel maps;
//! nothing is sent to user space per event. The supervisor polls the maps.
//!
//! - `count_sys_exit` (tp_btf `sys_exit`): syscalls and errors per (cgroup,
//!   syscall number). One program on the exit side sees both the number
//!   (`regs->orig_ax`) and the result, so one program run per syscall does
//!   it all. The current task's slot is cached per CPU by its `pt_regs`
//!   address (`syscalls_task_created`/`_moved` invalidate the caches), so
//!   the common case is: two inlined array lookups, a global read, two adds.
//! - `tcp_set_state`, `tcp_recv_reset`, `tcp_send_reset`: TCP sessions per
//!   (cgroup, direction, port/peer), durations and bytes at close.
//! - [`http`]: HTTP/1.x requests, from the same `sys_exit` program (the read
//!   and write families, connect, accept, close), to a ring buffer.
//! - `pid_fork`, `pid_exec`, `pid_exit`, `pid_moved`, `pid_renamed`, `uid_*` ([`pids`]): the
//!   pid map (cgroup, uid, comm, exec time per task), the kernel's truth that
//!   tool records are checked against.
//! - `bench_floor`, `bench_exit_floor`, `bench_tcp_floor`: empty programs on
//!   the probes' hooks, only for the benchmark (the floor of each hook).
#![no_std]
#![no_main]
// Atomic adds: BPF has `lock xadd` but core's atomics need CAS on this target.
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_NOEXIST},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        generated::{bpf_get_current_task_btf, bpf_skc_to_tcp_sock},
    },
    macros::{btf_tracepoint, map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, Queue},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};
use hotpath_common::{
    COUNTERS_LEN, Counter, DEFAULT_CGROUP_SLOTS, DIR_ACTIVE, DIR_OVERFLOW, DIR_PASSIVE,
    DURATION_BUCKETS, FlowKey, FlowStats, MAX_SYSCALLS, OFFSET_UNKNOWN, OFFSETS_LEN, OVERFLOW_SLOT,
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

#[inline(always)]
fn offset(which: Offset) -> Option<usize> {
    // SAFETY: reading a read-only global the loader set.
    match unsafe { core::ptr::read_volatile(&OFFSETS[which as usize]) } {
        OFFSET_UNKNOWN => None,
        off => Some(off as usize),
    }
}

// ---------------------------------------------------------------------------
// Syscalls
// ---------------------------------------------------------------------------

/// `raw_syscalls:sys_exit` (BTF): args are `(struct pt_regs *regs, long ret)`.
#[btf_tracepoint(function = "sys_exit")]
pub fn count_sys_exit(ctx: BtfTracePointContext) -> i32 {
    let regs: *const u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    // SAFETY: regs is a BTF pointer to struct pt_regs; orig_ax is its 16th
    // u64 on x86_64 and the verifier checks the access against BTF.
    let nr = (unsafe { *regs.add(15) } as u32) & (MAX_SYSCALLS - 1);
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
    if http::wanted(nr) {
        return http::on_sys_exit(regs, nr, ret);
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

/// An empty `sys_enter` program: the floor cost of any syscall probe.
/// Only the benchmark attaches it.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn bench_floor(_ctx: RawTracePointContext) -> i32 {
    0
}

/// An empty `sys_exit` (BTF) program: the floor on the exit side, where
/// `count_sys_exit` runs. Only the benchmark attaches it.
#[btf_tracepoint(function = "sys_exit")]
pub fn bench_exit_floor(_ctx: BtfTracePointContext) -> i32 {
    0
}

// ---------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------

/// An empty `inet_sock_set_state` program: the floor cost of any probe on
/// that hook. Only the benchmark attaches it.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn bench_tcp_floor(_ctx: BtfTracePointContext) -> i32 {
    0
}

const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_CLOSE: i32 = 7;
const TCP_LISTEN: i32 = 10;
const IPPROTO_TCP: u16 = 6;
const AF_INET: u16 = 2;

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

/// The cgroup v2 id of the socket's owner: `sk->sk_cgrp_data.cgroup->kn->id`.
#[inline(always)]
fn sock_cgroup(sk: u64) -> u64 {
    offset(Offset::SockCgroup)
        .and_then(|o| cgroup_v2_id(load(sk, o)))
        .unwrap_or(0)
}

/// The stats of `key`, creating them; the overflow key when the map is full.
#[inline(always)]
fn flow(key: &FlowKey) -> Option<*mut FlowStats> {
    if let Some(p) = TCP_FLOWS.get_ptr_mut(key) {
        return Some(p);
    }
    let _ = TCP_FLOWS.insert(key, &FlowStats::ZERO, BPF_NOEXIST as u64);
    if let Some(p) = TCP_FLOWS.get_ptr_mut(key) {
        // ours, or another CPU's that won the race
        return Some(p);
    }
    count(Counter::TcpFlowsFull);
    let overflow = FlowKey {
        direction: DIR_OVERFLOW,
        ..FlowKey::default()
    };
    TCP_FLOWS.get_ptr_mut(&overflow)
}

#[inline(always)]
fn add(p: *mut u64, n: u64) {
    // SAFETY: p points into a map value; other CPUs add too.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, n) };
}

#[inline(always)]
fn log2_bucket(v: u64) -> usize {
    if v == 0 {
        return 0;
    }
    // floor(log2 v) + 1, without a loop.
    let mut v = v;
    let mut r = 1usize;
    if v >= 1 << 32 {
        v >>= 32;
        r += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        r += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        r += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        r += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        r += 2;
    }
    if v >= 1 << 1 {
        r += 1;
    }
    if r >= DURATION_BUCKETS {
        DURATION_BUCKETS - 1
    } else {
        r
    }
}

/// `inet_sock_set_state` (BTF): args are `(const struct sock *sk, int
/// oldstate, int newstate)`. Most transitions (FIN_WAIT*, CLOSE_WAIT, ...)
/// are filtered out before any memory read.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn tcp_set_state(ctx: BtfTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let old: i32 = ctx.arg(1);
    let new: i32 = ctx.arg(2);
    if sk != 0 {
        let _ = on_tcp_state(sk, old, new);
    }
    0
}

/// Reads a field of `sk` at the BTF offset `which`.
#[inline(always)]
fn sk_field<T: Copy>(sk: u64, which: Offset) -> Option<T> {
    Some(load(sk, offset(which)?))
}

#[inline(always)]
fn is_tcp(sk: u64) -> bool {
    sk_field::<u16>(sk, Offset::SockProtocol) == Some(IPPROTO_TCP)
}

/// Dispatches one state change. Only four transitions do any work: a
/// session opens (SYN_SENT or SYN_RECV → ESTABLISHED), a connect fails
/// (SYN_SENT → CLOSE), an established session closes (→ CLOSE).
fn on_tcp_state(sk: u64, old: i32, new: i32) -> Option<()> {
    match (old, new) {
        (TCP_SYN_SENT, TCP_ESTABLISHED) => opened(sk, DIR_ACTIVE),
        // A passive open, usually in softirq context.
        (TCP_SYN_RECV, TCP_ESTABLISHED) => opened(sk, DIR_PASSIVE),
        (TCP_SYN_SENT, TCP_CLOSE) => {
            let f = flow(&flow_key(sk, DIR_ACTIVE)?)?;
            add(unsafe { &raw mut (*f).failed }, 1);
            Some(())
        }
        (_, TCP_CLOSE) if old != TCP_LISTEN && old != TCP_CLOSE && old != TCP_SYN_RECV => {
            closed(sk)
        }
        _ => None,
    }
}

/// The flow `sk` counts in. The owner is the cgroup recorded in the socket
/// when it was created (accepted sockets inherit the listener's), so it is
/// right in softirq context too, where the current task is unrelated.
#[inline(always)]
fn flow_key(sk: u64, direction: u8) -> Option<FlowKey> {
    if !is_tcp(sk) {
        return None;
    }
    let family: u16 = sk_field(sk, Offset::SockFamily)?;
    let mut key = FlowKey {
        cgroup_id: sock_cgroup(sk),
        direction,
        family: family as u8,
        ..FlowKey::default()
    };
    if direction == DIR_PASSIVE {
        key.lport = sk_field(sk, Offset::SockNum)?;
        return Some(key);
    }
    key.dport = u16::from_be(sk_field(sk, Offset::SockDport)?);
    if family == AF_INET {
        let a: u32 = sk_field(sk, Offset::SockDaddr)?;
        key.daddr[..4].copy_from_slice(&a.to_ne_bytes());
    } else {
        let a: [u64; 2] = sk_field(sk, Offset::SockDaddrV6)?;
        key.daddr[..8].copy_from_slice(&a[0].to_ne_bytes());
        key.daddr[8..].copy_from_slice(&a[1].to_ne_bytes());
    }
    Some(key)
}

/// A session became ESTABLISHED: remember when and where it counts (one
/// hash insert, removed at close), and count it opened.
#[inline(always)]
fn opened(sk: u64, direction: u8) -> Option<()> {
    let info = SockInfo {
        key: flow_key(sk, direction)?,
        // SAFETY: helper without preconditions.
        established_ns: unsafe { bpf_ktime_get_ns() },
    };
    if TCP_SOCKS.insert(&sk, &info, 0).is_err() {
        count(Counter::TcpSocksFull);
    }
    let f = flow(&info.key)?;
    add(unsafe { &raw mut (*f).opened }, 1);
    Some(())
}

/// An established session closed: its duration, bytes and the close.
#[inline(always)]
fn closed(sk: u64) -> Option<()> {
    // SAFETY: copied out at once.
    let Some(info) = (unsafe { TCP_SOCKS.get(&sk) }).copied() else {
        count(Counter::TcpUntracked);
        return None;
    };
    let _ = TCP_SOCKS.remove(&sk);
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let us = now.saturating_sub(info.established_ns) / 1000;
    let (tx, rx) = session_bytes(sk);
    let f = flow(&info.key)?;
    // SAFETY: pointers into the flow's map value.
    unsafe {
        add(&raw mut (*f).closed, 1);
        add(&raw mut (*f).bytes_tx, tx);
        add(&raw mut (*f).bytes_rx, rx);
        let b = log2_bucket(us);
        if b < DURATION_BUCKETS {
            add(&raw mut (*f).duration_us[b], 1);
        }
    }
    Some(())
}

/// Bytes acknowledged and received of a TCP socket, as tcplife reports them.
#[inline(always)]
fn session_bytes(sk: u64) -> (u64, u64) {
    // SAFETY: sk is the tracepoint's BTF-typed socket; the helper checks it
    // is a full TCP socket and returns a typed `struct tcp_sock *` or null.
    let tp = unsafe { bpf_skc_to_tcp_sock(sk as *mut _) } as u64;
    if tp == 0 {
        return (0, 0);
    }
    let read = |which| offset(which).map_or(0, |o| load::<u64>(tp, o));
    (read(Offset::TcpBytesAcked), read(Offset::TcpBytesReceived))
}

fn count_reset(ctx: &TracePointContext, which: Offset) -> Option<()> {
    let sk: u64 = field(ctx, which)?;
    if sk == 0 {
        return None;
    }
    // SAFETY: copied out at once.
    let key = unsafe { TCP_SOCKS.get(&sk)?.key };
    let f = flow(&key)?;
    add(unsafe { &raw mut (*f).resets }, 1);
    Some(())
}

/// `tcp:tcp_receive_reset`.
#[tracepoint(category = "tcp", name = "tcp_receive_reset")]
pub fn tcp_recv_reset(ctx: TracePointContext) -> i32 {
    let _ = count_reset(&ctx, Offset::RecvResetSkaddr);
    0
}

/// `tcp:tcp_send_reset`.
#[tracepoint(category = "tcp", name = "tcp_send_reset")]
pub fn tcp_send_reset(ctx: TracePointContext) -> i32 {
    let _ = count_reset(&ctx, Offset::SendResetSkaddr);
    0
}

mod http;
mod pids;
mod strings;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
