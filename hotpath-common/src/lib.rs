//! Types shared by the hot-path BPF programs (`hotpath-ebpf`) and the
//! user-space loader in `supervisor`: map names, sizes, keys and values.
//! Everything here is `#[repr(C)]` and `no_std`.
#![no_std]

/// Number of slots in the per-syscall maps; x86_64 syscall numbers are below this.
pub const MAX_SYSCALLS: u32 = 512;

/// Name of the per-CPU array counting `sys_enter` by syscall number.
pub const SYSCALL_COUNTS_MAP: &str = "SYSCALL_COUNTS";

/// Name of the raw tracepoint program counting syscalls.
pub const SYS_ENTER_PROG: &str = "count_sys_enter";

pub mod profile;
