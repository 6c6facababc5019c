//! Snapshots for the control API's subscribers (`StreamSnapshots`) and the
//! ledger for `WorkloadSyscalls`. Publishing never blocks: a subscriber that
//! falls behind loses the oldest snapshots and is told how many.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{ledger::Ledger, snapshot::Snapshot};

/// How many snapshots wait for the slowest subscriber.
pub const CAPACITY: usize = 16;

/// The publishing side, shared by the agent's consume loop and the control
/// server.
#[derive(Debug, Clone)]
pub struct LiveHub {
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
    pub fn publish(&self, snapshot: Snapshot) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(snapshot));
        }
    }

    /// A new subscriber, seeing snapshots published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// The syscall ledger the view fills.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}
