//! Register access that depends on the architecture the programs run on:
//! where `struct pt_regs` keeps the syscall number (the `hotpath` programs)
//! and the user-space instruction, stack and frame pointers (the
//! `profiler`; both binaries include this file). The architecture is
//! `bpf_target_arch`, which `build.rs` sets from the host (or from
//! `AYA_BPF_TARGET_ARCH` when cross-building); an architecture without an
//! entry here does not compile.
//!
//! - x86_64: `orig_ax`, the 16th `u64` of `pt_regs`
//!   (arch/x86/include/asm/ptrace.h: r15, r14, r13, r12, bp, bx, r11, r10,
//!   r9, r8, ax, cx, dx, si, di, orig_ax).
//! - aarch64: `syscallno`, the `s32` at byte 280 of `pt_regs`
//!   (arch/arm64/include/asm/ptrace.h: `user_pt_regs` is regs[31], sp, pc,
//!   pstate = 272 bytes, then `u64 orig_x0`, then `s32 syscallno` in the
//!   low half of the next `u64` on little-endian); the user registers are
//!   `user_pt_regs` (pc, sp, frame pointer x29).
//!
//! Check both: `AYA_BPF_TARGET_ARCH=aarch64 cargo +nightly check -p
//! hotpath-ebpf --target bpfel-unknown-none -Z build-std=core` (and without
//! the variable for the host's).

use aya_ebpf::{bindings::pt_regs, helpers::bpf_probe_read_kernel};

/// The index, in `u64`s, of the word of `pt_regs` that holds the syscall
/// number in its low 32 bits.
#[cfg(bpf_target_arch = "x86_64")]
const SYSCALL_NR_WORD: usize = 15;
#[cfg(bpf_target_arch = "aarch64")]
const SYSCALL_NR_WORD: usize = 35;
#[cfg(not(any(bpf_target_arch = "x86_64", bpf_target_arch = "aarch64")))]
compile_error!("hotpath-ebpf: no pt_regs layout for this bpf_target_arch (see arch.rs)");

/// The syscall number in `regs`, a BTF pointer to the `struct pt_regs` of a
/// `sys_exit` tracepoint.
#[inline(always)]
pub fn syscall_nr(regs: *const u64) -> u32 {
    // SAFETY: regs is a BTF pointer to struct pt_regs and SYSCALL_NR_WORD
    // lies inside it; the verifier checks the access against BTF.
    (unsafe { *regs.add(SYSCALL_NR_WORD) }) as u32
}

/// The user-space instruction pointer, stack pointer and frame pointer in
/// `regs` (a task's saved registers, from `bpf_task_pt_regs`); 0 for one
/// that cannot be read.
#[inline(always)]
pub fn user_ip_sp_fp(regs: *const pt_regs) -> (u64, u64, u64) {
    // SAFETY: only probe reads of fields of `regs`, which may be anything.
    #[cfg(bpf_target_arch = "x86_64")]
    unsafe {
        (
            bpf_probe_read_kernel(&(*regs).rip).unwrap_or(0),
            bpf_probe_read_kernel(&(*regs).rsp).unwrap_or(0),
            bpf_probe_read_kernel(&(*regs).rbp).unwrap_or(0),
        )
    }
    // SAFETY: as above; arm64's pt_regs starts with user_pt_regs.
    #[cfg(bpf_target_arch = "aarch64")]
    unsafe {
        let regs = regs as *const aya_ebpf::bindings::user_pt_regs;
        (
            bpf_probe_read_kernel(&(*regs).pc).unwrap_or(0),
            bpf_probe_read_kernel(&(*regs).sp).unwrap_or(0),
            bpf_probe_read_kernel(&(*regs).regs[29]).unwrap_or(0),
        )
    }
}
