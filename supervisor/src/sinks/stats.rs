//! The one stats type every sink reports through: exports by signal and
//! outcome, items dropped by signal and reason, the backlog, the last
//! success and the last error. The labelled counters are the sink
//! self-metrics (`eunomia_sink_exports_total`,
//! `eunomia_sink_dropped_items_total`, `eunomia_sink_buffer_batches`);
//! the totals and times are what `eunomia status` shows, so both agree.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use crate::{
    selfmetrics::{Counter, Registry},
    sync::lock,
};

const EXPORTS: &str = "eunomia_sink_exports_total";
const EXPORTS_HELP: &str =
    "Export requests by sink, signal and outcome (success, failure, rejected).";
const DROPPED: &str = "eunomia_sink_dropped_items_total";
const DROPPED_HELP: &str = "Data points and log records a sink dropped, by reason.";

/// One running sink's counters and health. Shared by the sink's tasks, the
/// self-metrics and `eunomia status`.
#[derive(Debug)]
pub struct SinkStats {
    /// The sink's name, as in the `sink` label (`otlp`, `prometheus`, ...).
    pub(crate) name: &'static str,
    /// Where it sends (or listens).
    pub(crate) target: String,
    registry: Arc<Registry>,
    exports_ok: AtomicU64,
    exports_failed: AtomicU64,
    dropped: AtomicU64,
    backlog: Mutex<Backlog>,
    health: Mutex<Health>,
}

/// Reads a sink's backlog (requests waiting), when it keeps one.
#[derive(Default)]
struct Backlog(Option<Box<dyn Fn() -> u64 + Send + Sync>>);

impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Backlog(reader)"
        } else {
            "Backlog(none)"
        })
    }
}

#[derive(Debug, Default, Clone)]
struct Health {
    last_success: Option<SystemTime>,
    last_error: Option<(SystemTime, String)>,
}

/// How an export attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered (or, for Prometheus, served).
    Success,
    /// Failed; it may be retried.
    Failure,
    /// The peer refused it for good.
    Rejected,
    /// Too large for the peer.
    TooLarge,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Rejected => "rejected",
            Outcome::TooLarge => "too_large",
        }
    }
}

/// A copy of one sink's stats, for `eunomia status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsView {
    /// The sink.
    pub name: &'static str,
    /// Where it sends.
    pub(crate) target: String,
    /// Whether the last attempt succeeded (true before the first attempt).
    pub up: bool,
    /// When it last delivered (or served).
    pub last_success: Option<SystemTime>,
    /// Its last error and when.
    pub last_error: Option<(SystemTime, String)>,
    /// Exports that succeeded.
    pub exports_ok: u64,
    /// Exports that failed (any outcome but success).
    pub exports_failed: u64,
    /// Items dropped, whatever the reason.
    pub dropped: u64,
    /// Requests waiting to be sent.
    pub(crate) backlog: u64,
}

impl SinkStats {
    /// Stats of sink `name` sending to `target`, exported into `registry`.
    pub(crate) fn new(
        name: &'static str,
        target: String,
        registry: Arc<Registry>,
    ) -> Arc<SinkStats> {
        Arc::new(SinkStats {
            name,
            target,
            registry,
            exports_ok: AtomicU64::new(0),
            exports_failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            backlog: Mutex::new(Backlog::default()),
            health: Mutex::new(Health::default()),
        })
    }

    /// Counts one export of `signal` that ended with `outcome`; a success
    /// is also the sink's last success.
    pub(crate) fn export(&self, signal: &str, outcome: Outcome) {
        self.registry
            .counter(
                EXPORTS,
                EXPORTS_HELP,
                &[
                    ("sink", self.name),
                    ("signal", signal),
                    ("outcome", outcome.as_str()),
                ],
            )
            .inc();
        match outcome {
            Outcome::Success => {
                self.exports_ok.fetch_add(1, Ordering::Relaxed);
                self.success();
            }
            _ => {
                self.exports_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Registers the export counter of `signal` and `outcome` at zero, so
    /// the series exists before the first export.
    pub(crate) fn declare_export(&self, signal: &str, outcome: Outcome) {
        let labels = [
            ("sink", self.name),
            ("signal", signal),
            ("outcome", outcome.as_str()),
        ];
        let _ = self.registry.counter(EXPORTS, EXPORTS_HELP, &labels);
    }

    /// Counts `n` items of `signal` dropped for `reason`.
    pub(crate) fn dropped(&self, signal: &str, reason: &str, n: u64) {
        self.registry
            .counter(
                DROPPED,
                DROPPED_HELP,
                &[("sink", self.name), ("signal", signal), ("reason", reason)],
            )
            .add(n);
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// A handle that counts drops of `signal` for `reason` without a
    /// look-up per item (for queues on the pipeline's path).
    pub(crate) fn drop_counter(self: &Arc<Self>, signal: &str, reason: &str) -> DropCounter {
        DropCounter {
            labelled: self.registry.counter(
                DROPPED,
                DROPPED_HELP,
                &[("sink", self.name), ("signal", signal), ("reason", reason)],
            ),
            stats: self.clone(),
        }
    }

    /// Registers the drop counter of `signal` and `reason` at zero, so the
    /// series exists before the first drop.
    pub(crate) fn declare_drops(self: &Arc<Self>, signal: &str, reason: &str) {
        let _ = self.drop_counter(signal, reason);
    }

    /// Reads the backlog (requests waiting) with `read`.
    pub(crate) fn set_backlog(&self, read: impl Fn() -> u64 + Send + Sync + 'static) {
        lock(&self.backlog).0 = Some(Box::new(read));
    }

    /// Records a delivery (or a served scrape).
    pub(crate) fn success(&self) {
        lock(&self.health).last_success = Some(SystemTime::now());
    }

    /// Records a failure.
    pub(crate) fn failure(&self, error: impl std::fmt::Display) {
        lock(&self.health).last_error = Some((SystemTime::now(), error.to_string()));
    }

    /// A copy for status.
    pub(crate) fn view(&self) -> StatsView {
        let h = lock(&self.health).clone();
        let up = match (&h.last_success, &h.last_error) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(ok), Some((err, _))) => ok >= err,
        };
        StatsView {
            name: self.name,
            target: self.target.clone(),
            up,
            last_success: h.last_success,
            last_error: h.last_error,
            exports_ok: self.exports_ok.load(Ordering::Relaxed),
            exports_failed: self.exports_failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            backlog: lock(&self.backlog).0.as_ref().map_or(0, |read| read()),
        }
    }
}

/// Counts drops of one signal and reason (see [`SinkStats::drop_counter`]).
#[derive(Debug, Clone)]
pub(crate) struct DropCounter {
    labelled: Counter,
    stats: Arc<SinkStats>,
}

impl DropCounter {
    /// Counts `n` dropped items.
    pub(crate) fn add(&self, n: u64) {
        self.labelled.add(n);
        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one dropped item.
    pub(crate) fn inc(&self) {
        self.add(1);
    }
}

/// The stats of every started sink, in start order. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SinkBook(Arc<Mutex<Vec<Arc<SinkStats>>>>);

impl SinkBook {
    /// Adds a started sink's stats (replacing an earlier one of its name).
    pub(crate) fn add(&self, stats: Arc<SinkStats>) {
        let mut all = lock(&self.0);
        all.retain(|s| s.name != stats.name);
        all.push(stats);
    }

    /// Every sink's stats, in start order.
    pub fn views(&self) -> Vec<StatsView> {
        lock(&self.0).iter().map(|s| s.view()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_follows_the_last_attempt() {
        let book = SinkBook::default();
        let h = SinkStats::new("test-health", "somewhere".into(), Registry::new());
        book.add(h.clone());
        assert!(h.view().up);
        h.failure("connection refused");
        let v = h.view();
        assert!(!v.up);
        assert_eq!(v.last_error.unwrap().1, "connection refused");
        std::thread::sleep(std::time::Duration::from_millis(2));
        h.success();
        assert!(h.view().up);
        assert!(book.views().iter().any(|v| v.name == "test-health"));
    }
}
