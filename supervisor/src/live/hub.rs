//! Snapshots for the control API's subscribers (`StreamSnapshots`) and the
//! ledger for `WorkloadSyscalls`. Publishing never blocks: a subscriber that
//! falls behind loses the oldest snapshots and is told how many.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{ledger::Ledger, snapshot::Snapshot};
use crate::selfmetrics::Registry;

/// How many snapshots wait for the slowest subscriber.
pub(crate) const CAPACITY: usize = 16;

/// The publishing side, shared by the agent's consume loop and the control
/// server.
#[derive(Debug, Clone)]
pub(crate) struct LiveHub {
    tx: broadcast::Sender<Arc<Snapshot>>,
    ledger: Ledger,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub {
            tx: broadcast::channel(CAPACITY).0,
            ledger: Ledger::default(),
        }
    }
}

impl LiveHub {
    /// Sends `snapshot` to every subscriber (nothing when there is none).
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(snapshot));
        }
    }

    /// A new subscriber, seeing snapshots published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// The syscall ledger the view fills.
    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Exports the ledger's size and what it had to forget as self-metrics.
    pub(crate) fn register(&self, registry: &Registry) {
        let ledger = self.ledger.clone();
        registry.observe_gauge(
            "eunomia_live_workloads",
            "Workloads whose syscalls the agent remembers (for advise seccomp).",
            &[],
            move || ledger.len() as f64,
        );
        let ledger = self.ledger.clone();
        registry.observe_counter(
            "eunomia_live_workloads_forgotten_total",
            "Workloads forgotten, least recently seen first, to stay within the bound.",
            &[],
            move || ledger.forgotten(),
        );
    }
}
