//! The one publisher of metric snapshots: it collects the aggregator (which
//! also expires idle series) once per interval and publishes the snapshot;
//! every metrics sink reads the latest one instead of collecting itself.
//! The agent publishes once more after the pipeline has drained, so the
//! sinks' last export holds everything.

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::aggregate::{SharedAggregator, Snapshot};

/// The latest published snapshot, as the sinks receive it.
pub type Snapshots = watch::Receiver<Arc<Snapshot>>;

/// Collects the aggregator and publishes the snapshot.
#[derive(Debug, Clone)]
pub struct Publisher {
    aggregator: SharedAggregator,
    tx: Arc<watch::Sender<Arc<Snapshot>>>,
}

impl Publisher {
    /// A publisher of `aggregator`'s snapshots; the first is published now.
    pub fn new(aggregator: SharedAggregator) -> Publisher {
        let (tx, _) = watch::channel(Arc::new(Snapshot::default()));
        let p = Publisher {
            aggregator,
            tx: Arc::new(tx),
        };
        p.publish();
        p
    }

    /// Where the sinks read the latest snapshot.
    pub fn subscribe(&self) -> Snapshots {
        self.tx.subscribe()
    }

    /// Collects now and publishes the snapshot.
    pub(crate) fn publish(&self) {
        let snap = crate::sync::lock(&self.aggregator).collect();
        self.tx.send_replace(Arc::new(snap));
    }

    /// Publishes every `interval` until `stop`.
    pub(crate) fn spawn(&self, interval: Duration, stop: CancellationToken) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => me.publish(),
                    _ = stop.cancelled() => return,
                }
            }
        })
    }
}

/// A periodic sink's view of the published snapshots: each snapshot is
/// handed out at most once, so two exports never carry the same one.
#[derive(Debug)]
pub(crate) struct Fresh {
    rx: Snapshots,
    last_ns: Option<u64>,
}

impl Fresh {
    /// Reads from `rx`, from the next snapshot published on (the one
    /// published when the agent started, before every source had
    /// registered its counters, is not exported).
    pub(crate) fn new(rx: Snapshots) -> Fresh {
        let last_ns = Some(rx.borrow().time_ns);
        Fresh { rx, last_ns }
    }

    /// The latest snapshot, if it was not handed out yet.
    fn take(&mut self) -> Option<Arc<Snapshot>> {
        let snap = self.rx.borrow_and_update().clone();
        (self.last_ns != Some(snap.time_ns)).then(|| {
            self.last_ns = Some(snap.time_ns);
            snap
        })
    }

    /// Waits until a snapshot not handed out yet is published (cancel-safe).
    pub(crate) async fn next(&mut self) -> Arc<Snapshot> {
        loop {
            if let Some(snap) = self.take() {
                return snap;
            }
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The latest snapshot, handed out before or not (the last export).
    pub(crate) fn latest(&mut self) -> Arc<Snapshot> {
        let snap = self.rx.borrow_and_update().clone();
        self.last_ns = Some(snap.time_ns);
        snap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator};

    #[test]
    fn publishes_what_the_aggregator_holds() {
        let a = Aggregator::new(&AggregateConfig::default(), vec![]).shared();
        let p = Publisher::new(a.clone());
        let rx = p.subscribe();
        let before = rx.borrow().metrics.len();
        a.lock().unwrap().ingest_event(&parsers::Event::new(
            "execsnoop".into(),
            parsers::EventKind::Exec,
        ));
        assert_eq!(rx.borrow().metrics.len(), before, "not before publishing");
        p.publish();
        assert!(
            rx.borrow()
                .metrics
                .iter()
                .any(|m| m.name == "eunomia_process_execs_total")
        );
    }

    #[tokio::test]
    async fn fresh_hands_each_snapshot_out_once() {
        let a = Aggregator::new(&AggregateConfig::default(), vec![]).shared();
        let p = Publisher::new(a);
        let mut fresh = Fresh::new(p.subscribe());
        let at_start = tokio::time::timeout(Duration::from_millis(50), fresh.next()).await;
        assert!(
            at_start.is_err(),
            "the snapshot of the start is not exported"
        );
        std::thread::sleep(Duration::from_millis(1));
        p.publish();
        let first = fresh.next().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), fresh.next()).await;
        assert!(waiting.is_err(), "the same snapshot twice");
        std::thread::sleep(Duration::from_millis(1));
        p.publish();
        let second = fresh.next().await;
        assert!(second.time_ns > first.time_ns);
    }
}
