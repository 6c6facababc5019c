//! The hot path: BPF programs compiled into the binary that aggregate in kernel
//! maps, and the user-space side that loads them and polls the maps.
//!
//! - [`loader`] loads the embedded object and attaches programs; dropping it
//!   detaches everything.
//! - [`syscalls`] reads the per-syscall counters and turns them into deltas.
//! - [`poller`] is the pipeline source that polls them every interval.
//! - [`config`] is the `[hotpath]` configuration section.

pub mod config;
pub mod loader;
pub mod poller;
pub mod syscalls;

pub use config::HotpathConfig;
pub use loader::{Hotpath, HotpathError};
