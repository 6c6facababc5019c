//! The agent context: what every source's and stage's `start` receives,
//! explicitly — the self-metrics registry, the shutdown token, the pipeline
//! sender and the kernel's pid → cgroup map. Nothing is looked up in a
//! global, so what a stage depends on is in its signature.

use std::sync::Arc;

use hotpath_common::PidInfo;
use tokio_util::sync::CancellationToken;

use crate::{pipeline::PipelineTx, selfmetrics::Registry};

/// What every source and stage is started with. Cheap to clone. The agent
/// drops its own copy once the sources are started, so the pipeline ends
/// when the last source lets go of its sender.
#[derive(Clone)]
pub struct AgentContext {
    /// Where self-metrics are registered.
    pub(crate) registry: Arc<Registry>,
    /// Cancelled on SIGINT, SIGTERM or the end of `--for`.
    pub(crate) shutdown: CancellationToken,
    /// The pipeline's sending side.
    pub(crate) tx: PipelineTx,
    /// The kernel's record of processes, once the hot path runs its pid
    /// probe; `/proc` otherwise.
    pub(crate) pids: PidLookup,
}

impl AgentContext {
    /// A context with a fresh registry and no kernel pid map.
    pub fn new(tx: PipelineTx, shutdown: CancellationToken) -> AgentContext {
        AgentContext {
            registry: Registry::new(),
            shutdown,
            tx,
            pids: PidLookup::default(),
        }
    }
}

/// What the kernel recorded of processes (the hot path's pid map).
pub trait KernelPids: Send + Sync {
    /// The cgroup v2 id of `pid` (a process or thread id), from the map,
    /// else from `/proc/PID/cgroup`.
    fn cgroup_of_pid(&self, pid: u32) -> Option<u64>;
    /// What the kernel recorded of task `pid`, if the map still has it.
    fn process(&self, pid: u32) -> Option<PidInfo>;
    /// Newlines the kernel counted in the strings of `family`
    /// (`hotpath_common::FAMILY_*`); `None` when that family is not counted.
    fn newlines(&self, family: u32) -> Option<u64>;
}

/// The kernel's pid map when there is one. Cheap to clone.
#[derive(Clone, Default)]
pub struct PidLookup(Option<Arc<dyn KernelPids>>);

impl PidLookup {
    /// Lookups answered by the kernel's map.
    pub fn kernel(pids: Arc<dyn KernelPids>) -> PidLookup {
        PidLookup(Some(pids))
    }

    /// The kernel's map, if the hot path runs its pid probe.
    pub(crate) fn map(&self) -> Option<&Arc<dyn KernelPids>> {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for PidLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "PidLookup(kernel)",
            None => "PidLookup(/proc)",
        })
    }
}
