//! `eunomia flamegraph`: where a process, a container or the host spends its
//! time. On-CPU stacks come from the hot path's sampling profiler ([`sampler`]),
//! user stacks walked by frame pointers in the kernel or copied and
//! unwound with DWARF tables in user space ([`unwind`], [`dwarf`]), are
//! symbolized ([`symbolize`]), folded ([`folded`]) and rendered with
//! inferno ([`render`]). Off-CPU stacks come from the supervised offcputime
//! tool ([`offcpu`]). Two recordings compare as a differential graph
//! ([`diff`]).

pub(crate) mod diff;
pub(crate) mod dwarf;
pub(crate) mod elf;
pub(crate) mod folded;
pub(crate) mod offcpu;
pub(crate) mod perf_map;
pub(crate) mod render;
pub(crate) mod sampler;
pub(crate) mod symbolize;
pub(crate) mod target;
pub(crate) mod unwind;

pub(crate) use target::Target;

/// Why a flame graph could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlameError {
    /// The target does not exist (no such pid, cgroup or container).
    #[error("{0}")]
    NoTarget(String),
    /// The binary carries no profiler object (built with AYA_BUILD_SKIP=1).
    #[error("this binary was built without its BPF programs (AYA_BUILD_SKIP=1)")]
    NotBuilt,
    /// Loading or attaching the profiler failed.
    #[error("profiler: {0}")]
    Bpf(String),
    /// Nothing was sampled.
    #[error("nothing was sampled: {0}")]
    Empty(String),
}
