//! What flows through the agent: sources (hot-path pollers, supervised tools,
//! cgroup stats) send [`Message`]s over one bounded channel to the stages and
//! sinks. Sending never blocks a source: when the channel is full the message
//! is dropped and counted in [`PipelineStats`].

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::mpsc;

pub use model::ToolRecord;

/// One unit of work for the pipeline.
#[derive(Debug)]
pub enum Message {
    /// A record parsed from a supervised tool's output.
    Record(ToolRecord),
    /// Values polled at one instant from one source.
    Samples(SampleBatch),
    /// HTTP requests, every one the kernel delivered, compact
    /// ([`model::request`]): enrichment names their workload, the traces
    /// stage links them, counts them in the service map and turns those
    /// whose trace is kept into span events (records) for the later stages.
    Requests(Vec<model::request::HttpRequest>),
}

/// Samples read at one poll from one source.
#[derive(Debug)]
pub struct SampleBatch {
    /// The source, e.g. `hotpath.syscalls`, `hotpath.tcp`, `cgroups`.
    pub(crate) source: &'static str,
    /// How long the poll interval that these deltas cover was, in seconds.
    pub(crate) interval_s: f64,
    /// The values.
    pub(crate) samples: Vec<Sample>,
}

/// One value of one metric with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, `eunomia_<area>_<name>_<unit>`.
    pub metric: &'static str,
    /// Label pairs, e.g. `("syscall", "read")`, `("cgroup.id", "1234")`.
    pub(crate) labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: SampleValue,
}

/// The kinds of values sources produce.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    /// Increase of a monotonic counter since the previous poll.
    Delta(u64),
    /// Increase of a monotonic counter with a fractional value (e.g. CPU
    /// seconds) since the previous poll.
    DeltaF64(f64),
    /// A value at the poll instant.
    Gauge(f64),
    /// Increase of a log2 histogram since the previous poll: `counts[0]`
    /// counts values below 1, `counts[i]` values in `[2^(i-1), 2^i)`.
    Log2Histogram {
        /// Unit of the observed values, e.g. `us`, `ms`, `bytes`.
        unit: &'static str,
        /// Bucket counts.
        counts: Vec<u64>,
    },
    /// Increase of a histogram with explicit bounds since the previous
    /// poll: `counts[i]` counts values `v` with `bounds[i-1] < v <= bounds[i]`,
    /// the last one those above every bound; `sum` is their exact sum.
    Histogram {
        /// Upper bounds, strictly increasing, in the metric's base unit.
        bounds: &'static [f64],
        /// Bucket counts (one more than the bounds).
        counts: Vec<u64>,
        /// Sum of the values.
        sum: f64,
    },
}

impl Sample {
    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Counters of the pipeline itself (self-observability).
#[derive(Debug, Default)]
pub(crate) struct PipelineStats {
    /// Messages accepted into the channel.
    pub(crate) sent: AtomicU64,
    /// Messages dropped because the channel was full.
    pub(crate) dropped_full: AtomicU64,
    /// Messages accepted, per source (indexed like [`SOURCES`]).
    pub(crate) by_source: [AtomicU64; SOURCES.len()],
}

/// The sources the pipeline counts separately: sample batches by their
/// `source`, tool records as `tools`; anything else is `other`.
pub(crate) const SOURCES: [&str; 8] = [
    "hotpath.syscalls",
    "hotpath.tcp",
    "hotpath.http",
    "hotpath.pids",
    "cgroups",
    "tools",
    "logs",
    "other",
];

fn source_slot(msg: &Message) -> usize {
    let name = match msg {
        Message::Samples(b) => b.source,
        Message::Requests(_) => "hotpath.http",
        Message::Record(r) if &*r.tool == "logs" => "logs",
        Message::Record(r) if &*r.tool == "http" => "hotpath.http",
        Message::Record(_) => "tools",
    };
    SOURCES
        .iter()
        .position(|s| *s == name)
        .unwrap_or(SOURCES.len() - 1)
}

impl PipelineStats {
    /// `(source, messages accepted)` for every source.
    pub(crate) fn per_source(&self) -> Vec<(&'static str, u64)> {
        SOURCES
            .iter()
            .zip(&self.by_source)
            .map(|(s, n)| (*s, n.load(Ordering::Relaxed)))
            .collect()
    }
}

/// The sending side handed to every source. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PipelineTx {
    tx: mpsc::Sender<Message>,
    stats: Arc<PipelineStats>,
}

impl PipelineTx {
    /// Queues `msg` without waiting; returns false (and counts the drop)
    /// when the pipeline is full or closed.
    pub(crate) fn send(&self, msg: Message) -> bool {
        let slot = source_slot(&msg);
        match self.tx.try_send(msg) {
            Ok(()) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                self.stats.by_source[slot].fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Messages the channel can take now.
    pub(crate) fn room(&self) -> usize {
        self.tx.capacity()
    }

    /// Messages the channel holds at most.
    pub(crate) fn max_room(&self) -> usize {
        self.tx.max_capacity()
    }

    /// The shared pipeline counters.
    pub(crate) fn stats(&self) -> &Arc<PipelineStats> {
        &self.stats
    }
}

/// Creates the pipeline channel with room for `capacity` messages.
pub fn channel(capacity: usize) -> (PipelineTx, mpsc::Receiver<Message>) {
    let (tx, rx) = mpsc::channel(capacity);
    let stats = Arc::new(PipelineStats::default());
    (PipelineTx { tx, stats }, rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Message {
        Message::Samples(SampleBatch {
            source: "test",
            interval_s: 1.0,
            samples: vec![],
        })
    }

    #[test]
    fn full_channel_drops_and_counts() {
        let (tx, mut rx) = channel(2);
        assert!(tx.send(batch()));
        assert!(tx.send(batch()));
        assert!(!tx.send(batch()));
        assert_eq!(tx.stats().sent.load(Ordering::Relaxed), 2);
        assert_eq!(tx.stats().dropped_full.load(Ordering::Relaxed), 1);
        assert_eq!(
            tx.stats().per_source().last(),
            Some(&("other", 2)),
            "source `test` counts as other"
        );
        assert!(rx.try_recv().is_ok());
        assert!(tx.send(batch()));
    }
}
