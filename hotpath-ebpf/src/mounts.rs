//! Mounts from the syscall exit hook, without a syscall tracepoint of their
//! own: `count_sys_exit` calls [`on_sys_exit`] for `mount`, `umount2` and
//! `move_mount` (three compares on the syscall number; every other syscall
//! pays nothing more). At exit the arguments are still in `pt_regs` and the
//! strings in the caller's memory, and the result is known: one
//! [`MountEvent`] per call goes to the `MOUNT_EVENTS` ring buffer, what
//! mountsnoop reports (mountsnoop hooks `sys_enter_mount` and friends,
//! which put every syscall of the machine on the tracing path). A full ring
//! buffer is counted (`Counter::MountEventsFull`).

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_probe_read_user_str_bytes,
    },
    macros::map,
    maps::RingBuf,
};
use hotpath_common::{
    Counter, MOUNT_EVENTS_BYTES, MOUNT_OP_MOUNT, MOUNT_OP_MOVE, MOUNT_OP_UMOUNT, MountEvent,
};

use crate::{
    arch::{NR_MOUNT, NR_MOVE_MOUNT, NR_UMOUNT2, syscall_arg},
    count,
};

/// Set to 1 by the loader to report mounts.
#[unsafe(no_mangle)]
static MOUNTS_ENABLED: u32 = 0;

#[map]
static MOUNT_EVENTS: RingBuf = RingBuf::with_byte_size(MOUNT_EVENTS_BYTES, 0);

/// Whether mounts are reported and `nr` is one of the mount family.
#[inline(always)]
pub(crate) fn wanted(nr: u32) -> bool {
    // SAFETY: reading a read-only global the loader set.
    let on = unsafe { core::ptr::read_volatile(&MOUNTS_ENABLED) } != 0;
    on && (nr == NR_MOUNT || nr == NR_UMOUNT2 || nr == NR_MOVE_MOUNT)
}

/// One event for the mount-family syscall `nr` that returned `ret`.
#[inline(never)]
pub(crate) fn on_sys_exit(regs: *const u64, nr: u32, ret: i64) {
    let Some(mut entry) = MOUNT_EVENTS.reserve::<MountEvent>(0) else {
        count(Counter::MountEventsFull);
        return;
    };
    let ev = entry.as_mut_ptr();
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: `ev` points to a reserved entry of the right size; every
    // field is written before it is submitted (strings at least their
    // first byte); user strings are read with checked probe reads.
    unsafe {
        (*ev).pid = (pid_tgid >> 32) as u32;
        (*ev).tid = pid_tgid as u32;
        (*ev).uid = bpf_get_current_uid_gid() as u32;
        (*ev).ret = ret;
        (*ev).cgroup_id = bpf_get_current_cgroup_id();
        (*ev).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*ev).source[0] = 0;
        (*ev).target[0] = 0;
        (*ev).fs[0] = 0;
        (*ev).data[0] = 0;
        if nr == NR_UMOUNT2 {
            // umount2(target, flags)
            (*ev).op = MOUNT_OP_UMOUNT;
            (*ev).flags = syscall_arg::<1>(regs);
            user_str(syscall_arg::<0>(regs), &mut (*ev).target);
        } else if nr == NR_MOVE_MOUNT {
            // move_mount(from_dfd, from_path, to_dfd, to_path, flags)
            (*ev).op = MOUNT_OP_MOVE;
            (*ev).flags = syscall_arg::<4>(regs);
            user_str(syscall_arg::<1>(regs), &mut (*ev).source);
            user_str(syscall_arg::<3>(regs), &mut (*ev).target);
        } else {
            // mount(source, target, fstype, flags, data)
            (*ev).op = MOUNT_OP_MOUNT;
            (*ev).flags = syscall_arg::<3>(regs);
            user_str(syscall_arg::<0>(regs), &mut (*ev).source);
            user_str(syscall_arg::<1>(regs), &mut (*ev).target);
            user_str(syscall_arg::<2>(regs), &mut (*ev).fs);
            user_str(syscall_arg::<4>(regs), &mut (*ev).data);
        }
    }
    entry.submit(0);
}

/// Copies the user string at `addr` into `out` (empty for a null pointer
/// or an unreadable one).
#[inline(always)]
fn user_str(addr: u64, out: &mut [u8]) {
    if addr == 0 {
        out[0] = 0;
        return;
    }
    // SAFETY: a checked probe read of user memory into `out`.
    if unsafe { bpf_probe_read_user_str_bytes(addr as *const u8, out) }.is_err() {
        out[0] = 0;
    }
}
