//! The series of one metric: cumulative values by label set, bounded in
//! number (overflow folds into one series and is counted), expiring when not
//! updated for a while.

use std::sync::Arc;

use hashbrown::HashMap;

use super::{MetricKind, histogram::Histogram};

/// Label pairs of one series, shared between the store and snapshots.
pub(crate) type Labels = Arc<[(&'static str, Box<str>)]>;

/// The value the overflow series has for every label.
pub(crate) const OVERFLOW_VALUE: &str = "other";

/// The cumulative value of one series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SeriesValue {
    /// A monotonic sum or a count.
    Sum(f64),
    /// The last value set.
    Last(f64),
    /// A histogram.
    Histogram(Histogram),
}

/// One series.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Its labels.
    pub(crate) labels: Labels,
    /// When it was created (ns since the epoch): the start of the cumulative values.
    pub(crate) start_ns: u64,
    /// When it was last updated.
    pub(crate) last_ns: u64,
    /// The value.
    pub(crate) value: SeriesValue,
}

/// Static description of a metric.
#[derive(Debug, Clone)]
pub(crate) struct MetricDesc {
    /// Name, `eunomia_<area>_<name>_<unit>`.
    pub(crate) name: &'static str,
    /// Help text.
    pub(crate) help: &'static str,
    /// Kind.
    pub(crate) kind: MetricKind,
    /// Bounds of histograms filled by observations; `None` for log2 histograms.
    pub(crate) bounds: Option<Arc<[f64]>>,
    /// Base units per source unit of a log2 histogram (see
    /// [`Histogram::log2_scaled`]); 1 for everything else.
    pub(crate) log2_scale: f64,
}

/// The series of one metric.
#[derive(Debug)]
pub(crate) struct MetricStore {
    /// What it is.
    pub(crate) desc: MetricDesc,
    limit: usize,
    series: HashMap<String, Series>,
    overflow: Option<Series>,
    /// Updates folded into the overflow series since start.
    pub(crate) overflowed: u64,
    /// Series dropped because they were not updated within the TTL.
    pub(crate) expired: u64,
}

impl MetricStore {
    /// An empty metric holding at most `limit` series (plus overflow).
    pub(crate) fn new(desc: MetricDesc, limit: usize) -> Self {
        Self {
            desc,
            limit: limit.max(1),
            series: HashMap::new(),
            overflow: None,
            overflowed: 0,
            expired: 0,
        }
    }

    /// The series with encoded label key `key`, created with `labels()` if
    /// new, or the overflow series when the bound is reached.
    pub(crate) fn series_mut(
        &mut self,
        key: &str,
        now_ns: u64,
        labels: impl FnOnce() -> Labels,
    ) -> &mut Series {
        let full = self.series.len() >= self.limit;
        if full && !self.series.contains_key(key) {
            self.overflowed += 1;
            let desc = &self.desc;
            let s = self.overflow.get_or_insert_with(|| {
                let labels = labels();
                let other: Labels = labels
                    .iter()
                    .map(|(k, _)| (*k, Box::from(OVERFLOW_VALUE)))
                    .collect();
                new_series(desc, other, now_ns)
            });
            s.last_ns = now_ns;
            return s;
        }
        let desc = &self.desc;
        let s = self
            .series
            .entry_ref(key)
            .or_insert_with(|| new_series(desc, labels(), now_ns));
        s.last_ns = now_ns;
        s
    }

    /// Drops series last updated before `cutoff_ns`.
    pub(crate) fn expire(&mut self, cutoff_ns: u64) {
        let before = self.series.len();
        self.series.retain(|_, s| s.last_ns >= cutoff_ns);
        self.expired += (before - self.series.len()) as u64;
        if self
            .overflow
            .as_ref()
            .is_some_and(|s| s.last_ns < cutoff_ns)
        {
            self.overflow = None;
        }
    }

    /// Every series (the overflow one last).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Series> {
        self.series.values().chain(self.overflow.iter())
    }

    /// Number of series, not counting the overflow series.
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether there is no series at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.series.is_empty() && self.overflow.is_none()
    }
}

fn new_series(desc: &MetricDesc, labels: Labels, now_ns: u64) -> Series {
    let value = match desc.kind {
        MetricKind::Sum | MetricKind::Count => SeriesValue::Sum(0.0),
        MetricKind::LastValue => SeriesValue::Last(0.0),
        MetricKind::Histogram => SeriesValue::Histogram(match &desc.bounds {
            Some(b) => Histogram::with_bounds(b.clone()),
            None => Histogram::log2_scaled(desc.log2_scale),
        }),
    };
    Series {
        labels,
        start_ns: now_ns,
        last_ns: now_ns,
        value,
    }
}
