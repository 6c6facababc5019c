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
