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
//! - syscall arguments at `sys_exit`: x86_64 keeps them in di, si, dx,
//!   r10, r8, r9 (words 14, 13, 12, 7, 9, 8); aarch64 in x0..x5, except
//!   that x0 holds the result by then and the first argument is `orig_x0`
//!   (word 34).
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

/// The `u64` words of `pt_regs` that hold syscall arguments 0..=4 at exit.
#[cfg(bpf_target_arch = "x86_64")]
const SYSCALL_ARG_WORDS: [usize; 5] = [14, 13, 12, 7, 9];
#[cfg(bpf_target_arch = "aarch64")]
const SYSCALL_ARG_WORDS: [usize; 5] = [34, 1, 2, 3, 4];

/// Syscall numbers of the mount family (`mount`, `umount2`, `move_mount`).
#[cfg(bpf_target_arch = "x86_64")]
pub const NR_MOUNT: u32 = 165;
#[cfg(bpf_target_arch = "x86_64")]
pub const NR_UMOUNT2: u32 = 166;
#[cfg(bpf_target_arch = "aarch64")]
pub const NR_MOUNT: u32 = 40;
#[cfg(bpf_target_arch = "aarch64")]
pub const NR_UMOUNT2: u32 = 39;
/// `move_mount` (the same number on every architecture since 5.2).
pub const NR_MOVE_MOUNT: u32 = 429;

/// Syscall argument `N` (0..=4) in `regs`, a BTF pointer to the `struct
/// pt_regs` of a `sys_exit` tracepoint.
#[inline(always)]
pub fn syscall_arg<const N: usize>(regs: *const u64) -> u64 {
    // SAFETY: as in `syscall_nr`: a word inside pt_regs, checked against BTF.
    unsafe { *regs.add(SYSCALL_ARG_WORDS[N]) }
}

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
