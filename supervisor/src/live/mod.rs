//! The live view of the workloads on this host, for `eunomia top` and
//! `eunomia advise seccomp`: enriched sample batches (hot-path syscalls and
//! TCP, cgroup CPU and memory) folded into one [`Snapshot`] per poll
//! interval, with one [`Row`] per container, systemd service, and the host.
//!
//! - [`snapshot`]: what a snapshot holds (also its JSON form).
//! - [`view`]: the fold from sample batches to snapshots.
//! - [`ledger`]: every syscall each container made since the view started
//!   (what a seccomp profile needs).
//! - [`hub`]: snapshots fanned out to the control API's subscribers.
//!
//! Without an agent, [`crate::standalone`] feeds a view.

pub(crate) mod hub;
pub(crate) mod ledger;
pub(crate) mod snapshot;
pub(crate) mod view;

pub(crate) use hub::LiveHub;
pub(crate) use ledger::{Ledger, Recorded};
#[cfg(test)]
pub(crate) use snapshot::{Rate, RowKind};
pub(crate) use snapshot::{Row, Snapshot};
pub(crate) use view::LiveView;
