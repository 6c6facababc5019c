//! The pid map (`PID_CGROUPS`): what the kernel knows of each task — its
//! cgroup (at fork, exec and every move), uid (at fork, exec, setuid, exit),
//! comm (at exec, before the last exec, after renames, a thread's), exec
//! times, exit time. Tool records are checked against it.

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_ktime_get_ns, bpf_probe_read_kernel_str_bytes,
    },
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use hotpath_common::{Counter, Offset, PID_FLAG_RENAMED, PidInfo};

use crate::{PID_CGROUPS, cgroup_v2_id, count, field, load, offset};

// ---------------------------------------------------------------------------
// pid → cgroup
// ---------------------------------------------------------------------------

/// The entry of `pid`, made from the current task's facts when missing.
/// At fork the current task is the parent, whose facts the child inherits.
#[inline(always)]
pub(crate) fn pid_entry(pid: u32, ppid: u32) -> Option<*mut PidInfo> {
    if let Some(p) = PID_CGROUPS.get_ptr_mut(&pid) {
        return Some(p);
    }
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    let uid = bpf_get_current_uid_gid() as u32;
    let info = PidInfo {
        // SAFETY: helper without preconditions.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        // SAFETY: helper without preconditions.
        start_ns: unsafe { bpf_ktime_get_ns() },
        uid,
        uid_last: uid,
        uid_prev: uid,
        ppid,
        comm,
        comm_prev: comm,
        comm_now: comm,
        comm_thread: comm,
        ..PidInfo::default()
    };
    if PID_CGROUPS.insert(&pid, &info, 0).is_err() {
        count(Counter::PidCgroupsFull);
        return None;
    }
    PID_CGROUPS.get_ptr_mut(&pid)
}

/// `sched:sched_process_fork`, in the parent's context: the child starts in
/// the parent's cgroup, with its comm and uid (a reused pid's old entry is
/// replaced).
#[tracepoint(category = "sched", name = "sched_process_fork")]
pub fn pid_fork(ctx: TracePointContext) -> i32 {
    if let Some(pid) = field::<i32>(&ctx, Offset::ForkChildPid) {
        let pid = pid as u32;
        let _ = PID_CGROUPS.remove(&pid);
        let ppid = (bpf_get_current_pid_tgid() >> 32) as u32;
        let _ = pid_entry(pid, ppid);
    }
    0
}

/// `sched:sched_process_exec`, in the new program's context: the new comm,
/// the uid, the cgroup and the time of the exec.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn pid_exec(_ctx: TracePointContext) -> i32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(p) = pid_entry(tgid, 0) else {
        return 0;
    };
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    let uid = bpf_get_current_uid_gid() as u32;
    // SAFETY: pointer into the map value.
    unsafe {
        (*p).cgroup_id = bpf_get_current_cgroup_id();
        (*p).exec_prev_ns = (*p).exec_ns;
        (*p).uid_prev = (*p).uid_last;
        (*p).comm_prev = (*p).comm;
        (*p).exec_ns = bpf_ktime_get_ns();
        (*p).uid = uid;
        (*p).uid_last = uid;
        (*p).comm = comm;
        (*p).comm_now = comm;
        (*p).flags &= !PID_FLAG_RENAMED;
    }
    0
}

/// `sched:sched_process_exit`: marks the entry; the supervisor removes it
/// after a grace period so late lookups still resolve.
#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn pid_exit(_ctx: TracePointContext) -> i32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    if let Some(p) = PID_CGROUPS.get_ptr_mut(&tid) {
        // SAFETY: pointer into the map value.
        unsafe {
            (*p).exited_ns = bpf_ktime_get_ns();
            (*p).uid_last = bpf_get_current_uid_gid() as u32;
        }
    }
    0
}

/// `cgroup_attach_task` (BTF): args are `(struct cgroup *dst, const char
/// *path, struct task_struct *task, bool threadgroup)`, after the move. The
/// task's cgroup v2 id is read again (on hybrid hosts the move may be in a
/// v1 hierarchy, which leaves it unchanged).
#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn pid_moved(ctx: BtfTracePointContext) -> i32 {
    let task: u64 = ctx.arg(2);
    let (Some(pid_off), Some(cg_off), Some(dfl_off)) = (
        offset(Offset::TaskPid),
        offset(Offset::TaskCgroups),
        offset(Offset::CssSetDflCgrp),
    ) else {
        return 0;
    };
    if task == 0 {
        return 0;
    }
    let pid: i32 = load(task, pid_off);
    let cset: u64 = load(task, cg_off);
    let Some(cgroup_id) = cgroup_v2_id(load(cset, dfl_off)) else {
        return 0;
    };
    if let Some(p) = PID_CGROUPS.get_ptr_mut(&(pid as u32)) {
        // SAFETY: pointer into the map value.
        unsafe { (*p).cgroup_id = cgroup_id };
    }
    0
}

/// `task_rename` (BTF): args are `(struct task_struct *task, const char
/// *comm)`; a task renames itself or a thread of its group, so the current
/// task's entry is updated when the renamed task is the current one.
#[btf_tracepoint(function = "task_rename")]
pub fn pid_renamed(ctx: BtfTracePointContext) -> i32 {
    let task: u64 = ctx.arg(0);
    let comm: u64 = ctx.arg(1);
    let pid = match offset(Offset::TaskPid) {
        Some(off) if task != 0 => load::<i32>(task, off) as u32,
        _ => bpf_get_current_pid_tgid() as u32,
    };
    let mut buf = [0u8; 16];
    // SAFETY: reads at most 16 bytes of a kernel string into buf.
    if unsafe { bpf_probe_read_kernel_str_bytes(comm as *const u8, &mut buf) }.is_err() {
        return 0;
    }
    if let Some(p) = PID_CGROUPS.get_ptr_mut(&pid) {
        // SAFETY: pointer into the map value.
        unsafe {
            (*p).comm_now = buf;
            (*p).flags |= PID_FLAG_RENAMED;
            (*p).uid_last = bpf_get_current_uid_gid() as u32;
        }
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid != pid
        && let Some(p) = PID_CGROUPS.get_ptr_mut(&tgid)
    {
        // SAFETY: pointer into the map value.
        unsafe { (*p).comm_thread = buf };
    }
    0
}

macro_rules! uid_probe {
    ($name:ident, $tp:literal) => {
        #[doc = concat!("`syscalls:", $tp, "`: the process's uid after the change.")]
        #[tracepoint(category = "syscalls", name = $tp)]
        pub fn $name(_ctx: TracePointContext) -> i32 {
            let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
            if let Some(p) = PID_CGROUPS.get_ptr_mut(&tgid) {
                // SAFETY: pointer into the map value.
                unsafe { (*p).uid_last = bpf_get_current_uid_gid() as u32 };
            }
            0
        }
    };
}

uid_probe!(uid_setuid, "sys_exit_setuid");
uid_probe!(uid_setreuid, "sys_exit_setreuid");
uid_probe!(uid_setresuid, "sys_exit_setresuid");
