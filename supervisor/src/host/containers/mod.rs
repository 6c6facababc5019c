//! Which containers the host runs, as the runtimes leave them on disk:
//! [`naming`] reads a cgroup path by the runtimes' and the kubelet's naming
//! schemes, [`runtimes`] reads Docker's, Podman's and containerd's own
//! files. Asked by enrichment, the container stats source and the log
//! source.

pub(crate) mod naming;
pub(crate) mod runtimes;

pub(crate) use naming::{Classification, classify};
pub(crate) use runtimes::{ContainerFacts, RuntimeFiles};
