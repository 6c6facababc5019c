//! Self-observability: a small registry of the agent's own counters and
//! gauges (events in, drops by reason, parse errors, tool restarts, map-full
//! counts, export outcomes, buffer fill). The aggregator reads it at every
//! collection, so these values leave the host like every other metric.
//!
//! Any module can add a metric: take a handle once with [`Registry::counter`]
//! or [`Registry::gauge`] (from [`global`] or a registry handed to it) and
//! update it with relaxed atomics, or register an observer closure that reads
//! an existing atomic ([`Registry::observe_counter`]).
//!
//! Names follow the scheme in `docs/metrics.md`.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicI64, AtomicU64, Ordering},
};

/// Label pairs of one self-metric series.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// A monotonic counter handle. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge handle (a value that goes up and down). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    pub(crate) fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value.
    pub(crate) fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether a self-metric is a counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SelfKind {
    /// Monotonic, exported as a cumulative Sum.
    Counter,
    /// Exported as a LastValue (gauge).
    Gauge,
}

/// One value read from the registry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SelfPoint {
    /// Metric name.
    pub(crate) name: &'static str,
    /// Help text.
    pub(crate) help: &'static str,
    /// Counter or gauge.
    pub(crate) kind: SelfKind,
    /// Labels.
    pub(crate) labels: Labels,
    /// The value.
    pub(crate) value: f64,
}

type Observer = Box<dyn Fn() -> f64 + Send + Sync>;

struct Entry {
    name: &'static str,
    help: &'static str,
    kind: SelfKind,
    labels: Labels,
    /// The handle, for counters made by [`Registry::counter`].
    counter: Option<Counter>,
    read: Observer,
}

/// The set of self-metrics. Registration is rare (start-up, a new tool);
/// reading happens once per collection.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<Vec<Entry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("series", &self.lock().len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        crate::sync::lock(&self.entries)
    }

    /// The counter `name{labels}`, created at zero on first use; the same
    /// name and labels give the same counter.
    pub(crate) fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Counter {
        let labels = own(labels);
        let mut entries = self.lock();
        let existing = entries
            .iter()
            .find(|e| e.name == name && e.labels == labels)
            .and_then(|e| e.counter.clone());
        if let Some(counter) = existing {
            return counter;
        }
        let counter = Counter::default();
        let c = counter.clone();
        entries.retain(|e| !(e.name == name && e.labels == labels));
        entries.push(Entry {
            name,
            help,
            kind: SelfKind::Counter,
            labels,
            counter: Some(counter.clone()),
            read: Box::new(move || c.get() as f64),
        });
        counter
    }

    /// The gauge `name{labels}`, created at zero (replacing an earlier one of
    /// the same name and labels).
    pub(crate) fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Gauge {
        let gauge = Gauge::default();
        let g = gauge.clone();
        self.push(
            name,
            help,
            SelfKind::Gauge,
            own(labels),
            Box::new(move || g.get() as f64),
        );
        gauge
    }

    /// Registers a counter whose value `read` returns (e.g. an atomic owned
    /// elsewhere, such as [`crate::pipeline::PipelineStats`]).
    pub(crate) fn observe_counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.push(
            name,
            help,
            SelfKind::Counter,
            own(labels),
            Box::new(move || read() as f64),
        );
    }

    /// Registers a counter whose fractional value `read` returns (seconds).
    pub(crate) fn observe_counter_f64(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        self.push(name, help, SelfKind::Counter, own(labels), Box::new(read));
    }

    /// Registers a gauge whose value `read` returns.
    pub(crate) fn observe_gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        self.push(name, help, SelfKind::Gauge, own(labels), Box::new(read));
    }

    fn push(
        &self,
        name: &'static str,
        help: &'static str,
        kind: SelfKind,
        labels: Labels,
        read: Observer,
    ) {
        let mut entries = self.lock();
        entries.retain(|e| !(e.name == name && e.labels == labels));
        entries.push(Entry {
            name,
            help,
            kind,
            labels,
            counter: None,
            read,
        });
    }

    /// Every registered value, read now.
    pub(crate) fn read(&self) -> Vec<SelfPoint> {
        self.lock()
            .iter()
            .map(|e| SelfPoint {
                name: e.name,
                help: e.help,
                kind: e.kind,
                labels: e.labels.clone(),
                value: (e.read)(),
            })
            .collect()
    }
}

fn own(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_counter_for_same_name_and_labels() {
        let r = Registry::new();
        let a = r.counter("eunomia_test_total", "t", &[("sink", "otlp")]);
        let b = r.counter("eunomia_test_total", "t", &[("sink", "otlp")]);
        a.inc();
        b.add(2);
        let points = r.read();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].value, 3.0);
    }

    #[test]
    fn observers_are_read_at_collection() {
        let r = Registry::new();
        let v = Arc::new(AtomicU64::new(5));
        let v2 = v.clone();
        r.observe_counter("eunomia_x_total", "x", &[], move || {
            v2.load(Ordering::Relaxed)
        });
        v.store(9, Ordering::Relaxed);
        assert_eq!(r.read()[0].value, 9.0);
    }
}
