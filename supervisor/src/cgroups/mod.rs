//! Container resource metrics: per container and per systemd service, CPU,
//! memory (usage and limit), OOM kills, block I/O and task counts, read from
//! cgroupfs every poll interval and sent into the pipeline as samples
//! labelled with the cgroup (the enrichment stage adds container, pod and
//! service labels).
//!
//! Files are read directly rather than through cgroups-rs: cgroups-rs picks
//! one hierarchy version per host (v2 only when `/sys/fs/cgroup` itself is
//! cgroup2), so on hybrid hosts it ignores the unified hierarchy at
//! `/sys/fs/cgroup/unified` where the cgroup ids live, and it pulls in a
//! D-Bus stack for its systemd manager.
//!
//! - [`stats`] reads one cgroup's files (v2 first, v1 at the same path).
//! - [`poller`] discovers the cgroups, turns counters into deltas and sends
//!   the samples.

pub mod poller;
pub(crate) mod stats;

pub use poller::{CgroupStatsPoller, SOURCE, StatsSettings, start};
pub use stats::{CgroupStats, StatsReader};
