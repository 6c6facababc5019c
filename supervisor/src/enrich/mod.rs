//! Enrichment: who did it. Every event and sample is tied to the container,
//! Kubernetes pod or systemd service it came from, resolved from the kernel
//! and the cgroup tree alone, so it works on any host without a runtime API.
//!
//! pid → cgroup id (the hot path's kernel map, then `/proc/PID/cgroup`) →
//! cgroup path ([`cgroupfs`]) → container, pod and service (by the
//! runtimes' naming schemes, [`crate::host::containers`]) → names ([`pods`])
//! → one shared [`model::Workload`] whose labels the [`stage`] attaches.
//! Where the hierarchies are mounted, `/proc/PID/cgroup` and the runtimes'
//! own files are read by [`crate::host`].
//!
//! - [`cgroupfs`] maps cgroup v2 ids to paths and back.
//! - [`pods`] finds pod and container names in the node's files, and
//!   [`kubelet`] in the kubelet's pod list.
//! - [`resolver`] ties these together behind bounded caches.
//! - [`stage`] is the pipeline stage.
//! - [`config`] is the `[enrich]` configuration section.
//! - [`filter`] selects events by container, pod and namespace.

pub(crate) mod cgroupfs;
pub(crate) mod config;
pub(crate) mod filter;
pub(crate) mod kubelet;
pub(crate) mod pods;
pub(crate) mod resolver;
pub(crate) mod stage;

pub use config::EnrichConfig;
pub(crate) use filter::WorkloadFilter;
pub use resolver::{PidCgroupLookup, Resolver};
pub use stage::Enricher;
