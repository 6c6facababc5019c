//! The sampling profiler behind `eunomia flamegraph`: a perf-event program on
//! the software CPU clock that counts (process, user stack, kernel stack)
//! in the kernel. Filters (a process or a cgroup) are globals the loader sets.
//! For DWARF unwinding (`UNWIND_DWARF`), it copies the user registers and up
//! to 16 KiB of the user stack into a ring buffer instead, for user space to
//! unwind with each binary's `.eh_frame`.
#![no_std]
#![no_main]

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_F_USER_STACK, pt_regs},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_probe_read_kernel,
        generated::{bpf_get_current_task_btf, bpf_probe_read_user, bpf_task_pt_regs},
    },
    macros::{map, perf_event},
    maps::{HashMap, PerCpuArray, RingBuf, StackTrace},
    programs::PerfEventContext,
};
use hotpath_common::profile::{
    MAX_FP_TGIDS, MAX_PROFILE_KEYS, MAX_STACKS, ProfileKey, SAMPLES_RING_BYTES, StackSample,
    USER_STACK_BYTES,
};

/// Only sample this process (tgid); 0 means any.
#[unsafe(no_mangle)]
static FILTER_TGID: u32 = 0;
/// Only sample this cgroup v2 id; 0 means any.
#[unsafe(no_mangle)]
static FILTER_CGROUP: u64 = 0;
/// 1 to skip kernel stacks.
#[unsafe(no_mangle)]
static USER_ONLY: u32 = 0;
/// 1 to copy user stacks for DWARF unwinding (except `PROFILE_FP_TGIDS`).
#[unsafe(no_mangle)]
static UNWIND_DWARF: u32 = 0;

#[map]
static PROFILE_SAMPLES: RingBuf = RingBuf::with_byte_size(SAMPLES_RING_BYTES, 0);

#[map]
static PROFILE_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map]
static PROFILE_FP_TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_FP_TGIDS, 0);

/// Page size: stack copies go page by page, so one ends where the stack
/// mapping does.
const PAGE: u64 = 4096;

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
    let kernel_stack = if read(&USER_ONLY) == 1 {
        -1
    } else {
        stack_id(&ctx, 0)
    };
    // SAFETY: a lookup of a plain map with no other precondition.
    if read(&UNWIND_DWARF) == 1 && unsafe { PROFILE_FP_TGIDS.get(&tgid) }.is_none() {
        copy_stack(tgid, kernel_stack);
        return 0;
    }
    let user_stack = stack_id(&ctx, BPF_F_USER_STACK as u64);
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

/// Sends the user registers and stack of the current thread to the ring
/// buffer; counts the sample as lost when the ring buffer is full.
fn copy_stack(tgid: u32, kernel_stack: i32) {
    let Some(mut entry) = PROFILE_SAMPLES.reserve::<StackSample>(0) else {
        if let Some(lost) = PROFILE_LOST.get_ptr_mut(0) {
            // SAFETY: a per-CPU value, only this CPU writes it.
            unsafe { *lost += 1 };
        }
        return;
    };
    let sample = entry.as_mut_ptr();
    // SAFETY: `sample` points to a reserved entry of the right size, written
    // field by field before it is submitted; the task and its registers come
    // from helpers and are only read through probe reads.
    unsafe {
        (*sample).tgid = tgid;
        (*sample).kernel_stack = kernel_stack;
        (*sample).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        let regs = bpf_task_pt_regs(bpf_get_current_task_btf()) as *const pt_regs;
        let ip = bpf_probe_read_kernel(&(*regs).rip).unwrap_or(0);
        let sp = bpf_probe_read_kernel(&(*regs).rsp).unwrap_or(0);
        (*sample).ip = ip;
        (*sample).sp = sp;
        (*sample).bp = bpf_probe_read_kernel(&(*regs).rbp).unwrap_or(0);
        (*sample).len = copy_pages((*sample).stack.as_mut_ptr(), sp);
    }
    entry.submit(0);
}

/// Copies the user stack from `sp` up, page by page, into `dst` (room for
/// `USER_STACK_BYTES`); stops at the first page that cannot be read (the
/// end of the stack mapping). Returns the bytes copied.
///
/// # Safety
/// `dst` must have room for `USER_STACK_BYTES` bytes.
unsafe fn copy_pages(dst: *mut u8, sp: u64) -> u64 {
    let max = USER_STACK_BYTES as u64;
    let mut off: u64 = 0;
    let mut len = PAGE - (sp & (PAGE - 1));
    for _ in 0..(USER_STACK_BYTES as u64 / PAGE + 1) {
        if off > max - PAGE || len > PAGE {
            break;
        }
        // SAFETY: off <= max - PAGE and len <= PAGE keep the write in `dst`.
        let failed = unsafe {
            bpf_probe_read_user(
                dst.add(off as usize).cast(),
                len as u32,
                (sp + off) as *const core::ffi::c_void,
            )
        } != 0;
        if failed {
            break;
        }
        off += len;
        len = PAGE;
    }
    off
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
