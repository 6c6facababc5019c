//! Seccomp profiles from what a workload really did: [`profile`] turns a
//! workload's recorded syscalls into an OCI/Docker seccomp profile (JSON)
//! that allows them and denies everything else with EPERM; [`runtime`]
//! lists what the container runtime needs once the profile is in force.

pub(crate) mod profile;
pub(crate) mod runtime;

pub(crate) use profile::{Profile, Source};
