//! The hot path: BPF programs compiled into the binary that aggregate in kernel
//! maps, and the user-space side that loads them and polls the maps.
//!
//! - [`loader`] loads the embedded object and attaches programs; dropping it
//!   detaches everything.
//! - [`maps`] hands the loaded object's maps to their readers.
//! - [`syscalls`] reads the per-cgroup syscall table (through mmap) and
//!   turns it into deltas; it frees the slots of dead cgroups.
//! - [`tcp`] reads the TCP flow table.
//! - [`pids`] is the pid → cgroup map and its lookup handle.
//! - [`execs`] reads the exec events' ring buffer into exec records,
//!   [`mounts`] the mount events' into mount records (both through [`ring`]).
//! - [`poller`] is the pipeline source that polls them every interval.
//! - [`offsets`] finds tracepoint-record and kernel-struct offsets at load time.
//! - [`config`] is the `[hotpath]` configuration section.

pub(crate) mod batch;
pub(crate) mod config;
pub(crate) mod execs;
pub(crate) mod loader;
pub(crate) mod maps;
pub(crate) mod mmap;
pub(crate) mod mounts;
pub(crate) mod offsets;
pub(crate) mod pids;
pub(crate) mod poller;
pub(crate) mod ring;
pub(crate) mod syscalls;
pub(crate) mod tcp;

pub use config::{HotpathConfig, HttpCapture, SAMPLED_FRACTION, SyscallCounting};
pub use loader::{Hotpath, HotpathError, Probe};
pub(crate) use maps::HttpMaps;
pub use pids::PidCgroups;
