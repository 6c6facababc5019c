//! `eunomia flamegraph`: where a process, a container or the host spends its
//! time. On-CPU stacks come from the hot path's sampling profiler ([`sampler`]),
//! user stacks walked by frame pointers in the kernel or copied and
//! unwound with DWARF tables in user space ([`unwind`], [`dwarf`]), are
//! symbolized ([`symbolize`]), folded ([`folded`]) and rendered with
//! inferno ([`render`]). Off-CPU stacks come from the supervised offcputime
//! tool ([`offcpu`]). Two recordings compare as a differential graph
//! ([`diff`]).

pub mod diff;
pub mod dwarf;
pub mod elf;
pub mod folded;
pub mod offcpu;
pub mod perf_map;
pub mod render;
pub mod sampler;
pub mod symbolize;
pub mod target;
pub mod unwind;

pub use target::Target;

/// Why a flame graph could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FlameError {
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
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The output file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
