//! Enrichment: who did it. Every event and sample is tied to the container,
//! Kubernetes pod or systemd service it came from, resolved from the kernel
//! and the cgroup tree alone, so it works on any host without a runtime API.
//!
//! pid → cgroup id (the hot path's kernel map, then `/proc/PID/cgroup`) →
//! cgroup path ([`cgroupfs`]) → container, pod and service ([`naming`]) →
//! names ([`pods`]) → one shared [`model::Workload`] whose labels the
//! [`stage`] attaches.
//!
//! - [`mounts`] finds the v2 and v1 hierarchies (pure v1, hybrid, pure v2).
//! - [`cgroupfs`] maps cgroup v2 ids to paths and back.
//! - [`procfs`] reads `/proc/PID/cgroup`.
//! - [`naming`] classifies cgroup paths by the runtimes' naming schemes.
//! - [`pods`] finds pod and container names in the node's files, and
//!   [`kubelet`] in the kubelet's pod list, [`runtimes`] in Docker's,
//!   Podman's and containerd's own files.
//! - [`resolver`] ties these together behind bounded caches.
//! - [`stage`] is the pipeline stage.
//! - [`config`] is the `[enrich]` configuration section.
//! - [`filter`] selects events by container, pod and namespace.

pub mod cgroupfs;
pub mod config;
pub mod filter;
pub mod kubelet;
pub mod mounts;
pub mod naming;
pub mod pods;
pub mod procfs;
pub mod resolver;
pub mod runtimes;
pub mod stage;

pub use config::EnrichConfig;
pub use filter::WorkloadFilter;
pub use resolver::{PidCgroupLookup, Resolver};
pub use stage::Enricher;
