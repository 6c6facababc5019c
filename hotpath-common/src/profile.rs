//! Types of the sampling profiler (`hotpath-ebpf/src/profiler.rs`): the key of
//! its sample counts and the names of its maps, program and filter globals.

/// Name of the perf-event program that samples stacks.
pub const PROFILER_PROG: &str = "profile_cpu";
/// Name of the stack-trace map (stack id → instruction pointers).
pub const STACKS_MAP: &str = "PROFILE_STACKS";
/// Name of the hash map of sample counts by [`ProfileKey`].
pub const COUNTS_MAP: &str = "PROFILE_COUNTS";
/// Global: only sample this process (tgid); 0 means any.
pub const FILTER_TGID: &str = "FILTER_TGID";
/// Global: only sample this cgroup v2 id; 0 means any.
pub const FILTER_CGROUP: &str = "FILTER_CGROUP";
/// Global: set to 1 to skip kernel stacks.
pub const USER_ONLY: &str = "USER_ONLY";
/// Global: set to 1 to copy user stacks (DWARF unwinding) instead of
/// walking frame pointers in the kernel.
pub const UNWIND_DWARF: &str = "UNWIND_DWARF";
/// Name of the ring buffer of [`StackSample`]s (DWARF unwinding).
pub const SAMPLES_RING: &str = "PROFILE_SAMPLES";
/// Name of the per-CPU counter of stack samples lost to a full ring buffer.
pub const LOST_MAP: &str = "PROFILE_LOST";
/// Name of the hash map of processes (tgid → 1) whose stacks frame pointers
/// unwind well: no stack copy for them, even with [`UNWIND_DWARF`] set.
pub const FP_TGIDS_MAP: &str = "PROFILE_FP_TGIDS";
/// Entries of [`FP_TGIDS_MAP`].
pub const MAX_FP_TGIDS: u32 = 8_192;
/// Bytes of user stack copied per sample (from the stack pointer up).
pub const USER_STACK_BYTES: usize = 16_384;
/// Bytes of the samples ring buffer (a power of two pages).
pub const SAMPLES_RING_BYTES: u32 = 8 << 20;
/// Entries of the stack-trace map.
pub const MAX_STACKS: u32 = 16_384;
/// Entries of the counts map.
pub const MAX_PROFILE_KEYS: u32 = 32_768;

/// One distinct sampled situation: which process, which user and kernel
/// stacks (ids in the stack-trace map; negative when not captured).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileKey {
    /// Process id (thread group id).
    pub tgid: u32,
    /// User stack id, or a negative errno when unavailable.
    pub user_stack: i32,
    /// Kernel stack id, or a negative errno when unavailable.
    pub kernel_stack: i32,
    /// The thread's command name, NUL-padded.
    pub comm: [u8; 16],
}

#[cfg(feature = "user")]
// SAFETY: plain old data, `#[repr(C)]`, no padding (4+4+4+16 bytes).
unsafe impl aya::Pod for ProfileKey {}

/// One sample for DWARF unwinding: who, the kernel stack, the user
/// registers the unwinder starts from, and a copy of the user stack.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StackSample {
    /// Process id (thread group id).
    pub tgid: u32,
    /// Kernel stack id, or a negative errno when unavailable.
    pub kernel_stack: i32,
    /// The thread's command name, NUL-padded.
    pub comm: [u8; 16],
    /// User instruction pointer.
    pub ip: u64,
    /// User stack pointer (the address of `stack[0]`).
    pub sp: u64,
    /// User frame pointer (rbp).
    pub bp: u64,
    /// Bytes of `stack` copied (0 when the stack could not be read).
    pub len: u64,
    /// The user stack from `sp` up.
    pub stack: [u8; USER_STACK_BYTES],
}

/// Bytes of a [`StackSample`] before its stack copy.
pub const STACK_SAMPLE_HEADER: usize = 56;
