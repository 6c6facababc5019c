//! `exec_event` (tp_btf `sched_process_exec`): one [`ExecEvent`] per
//! successful exec, sent through the `EXEC_EVENTS` ring buffer. The hook is
//! a scheduler tracepoint, not a syscall one: no cost to other syscalls
//! (execsnoop's `sys_enter_execve` puts every syscall of the machine on the
//! tracing path). argv is read from the new program's memory
//! (`mm->arg_start..arg_end`), cut at `EXEC_ARGS_LEN` bytes.

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_probe_read_kernel, generated::bpf_probe_read_user,
    },
    macros::{btf_tracepoint, map},
    maps::RingBuf,
    programs::BtfTracePointContext,
};
use hotpath_common::{Counter, EXEC_ARGS_LEN, EXEC_EVENTS_BYTES, ExecEvent, Offset};

use crate::{PID_CGROUPS, count, load, offset};

#[map]
static EXEC_EVENTS: RingBuf = RingBuf::with_byte_size(EXEC_EVENTS_BYTES, 0);

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct
/// linux_binprm *bprm)`, in the new program's context.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn exec_event(ctx: BtfTracePointContext) -> i32 {
    let Some(mut entry) = EXEC_EVENTS.reserve::<ExecEvent>(0) else {
        count(Counter::ExecEventsFull);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: `ev` points to a reserved entry of the right size, written
    // field by field before it is submitted; `p` is the tracepoint's
    // BTF-typed task, read with checked loads.
    unsafe {
        (*ev).pid = pid;
        (*ev).uid = bpf_get_current_uid_gid() as u32;
        let task: u64 = ctx.arg(0);
        (*ev).ppid = real_ppid(task).unwrap_or_else(|| PID_CGROUPS.get(&pid).map_or(0, |i| i.ppid));
        (*ev).vpid = ns_pid(task).unwrap_or(0);
        (*ev)._pad = 0;
        (*ev).cgroup_id = bpf_get_current_cgroup_id();
        (*ev).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*ev).args_len = 0;
        (*ev).args_full = 0;
        if let (Some(mm_off), Some(start_off), Some(end_off)) = (
            offset(Offset::TaskMm),
            offset(Offset::MmArgStart),
            offset(Offset::MmArgEnd),
        ) {
            let mm: u64 = load(task, mm_off);
            if mm != 0 {
                let start: u64 = load(mm, start_off);
                let end: u64 = load(mm, end_off);
                let full = end.saturating_sub(start);
                (*ev).args_full = full;
                let len = if full > EXEC_ARGS_LEN as u64 {
                    EXEC_ARGS_LEN as u32
                } else {
                    full as u32
                };
                // bounded for the verifier
                let len = len & (2 * EXEC_ARGS_LEN as u32 - 1);
                if len > 0
                    && len <= EXEC_ARGS_LEN as u32
                    && bpf_probe_read_user(
                        (*ev).args.as_mut_ptr().cast(),
                        len,
                        start as *const core::ffi::c_void,
                    ) == 0
                {
                    (*ev).args_len = len;
                }
            }
        }
    }
    entry.submit(0);
    0
}

/// `task->real_parent->tgid`: the parent at the exec, after any reparenting
/// (a container's first process belongs to its shim or conmon by then, not
/// to the runtime process that forked it), as execsnoop reports it. None
/// where the loader found no offsets.
#[inline(always)]
fn real_ppid(task: u64) -> Option<u32> {
    let parent: u64 = load(task, offset(Offset::TaskRealParent)?);
    if parent == 0 {
        return None;
    }
    let tgid: i32 = load(parent, offset(Offset::TaskTgid)?);
    u32::try_from(tgid).ok().filter(|&t| t > 0)
}

/// Deepest pid-namespace level the kernel allows (`MAX_PID_NS_LEVEL`).
const MAX_PID_NS_LEVEL: u32 = 32;

/// The task's pid in its own pid namespace:
/// `task->thread_pid->numbers[level].nr` (at `sched_process_exec` the task
/// is its thread group's leader, so this is its process id there; 1 for a
/// container's first process). None where the loader found no offsets.
#[inline(always)]
fn ns_pid(task: u64) -> Option<u32> {
    let pid: u64 = load(task, offset(Offset::TaskThreadPid)?);
    if pid == 0 {
        return None;
    }
    let level: u32 = load(pid, offset(Offset::PidLevel)?);
    if level >= MAX_PID_NS_LEVEL {
        return None;
    }
    let (numbers, nr, size) = (
        offset(Offset::PidNumbers)?,
        offset(Offset::UpidNr)?,
        offset(Offset::UpidSize)?,
    );
    // `numbers` is a flexible array: a variable index needs a checked read.
    let at = pid + (numbers + nr) as u64 + u64::from(level) * size as u64;
    // SAFETY: a probe read; a bad address yields an error, not a fault.
    let vpid: i32 = unsafe { bpf_probe_read_kernel(at as *const i32) }.ok()?;
    u32::try_from(vpid).ok().filter(|&v| v > 0)
}
