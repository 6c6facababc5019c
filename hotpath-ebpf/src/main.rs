//! eunomia's hot-path BPF programs. Each program aggregates in kernel maps;
//! nothing is sent to user space per event. The supervisor polls the maps.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{map, raw_tracepoint},
    maps::PerCpuArray,
    programs::RawTracePointContext,
};
use hotpath_common::MAX_SYSCALLS;

/// Syscalls entered, by syscall number, one counter per CPU.
#[map]
static SYSCALL_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_SYSCALLS, 0);

/// `raw_syscalls:sys_enter`: args are `(struct pt_regs *regs, long id)`.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn count_sys_enter(ctx: RawTracePointContext) -> i32 {
    let id: u64 = ctx.arg(1);
    if let Some(slot) = SYSCALL_COUNTS.get_ptr_mut(id as u32) {
        // Per-CPU slot: no other CPU writes it, and preemption is off in BPF.
        unsafe { *slot += 1 };
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
