//! Cumulative histograms with explicit bucket bounds: filled one observation
//! at a time (event fields) or by adding log2 bucket counts (the hot path's
//! and the tools' histograms), keeping the source's bounds.

use std::sync::{Arc, OnceLock};

/// Most log2 buckets a histogram keeps (values up to 2^63).
pub(crate) const MAX_LOG2_BUCKETS: usize = 64;

/// A cumulative histogram. `counts[i]` counts values `v` with
/// `bounds[i-1] < v <= bounds[i]`; the last count is the `+Inf` bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histogram {
    bounds: Arc<[f64]>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
    sum_exact: bool,
    log2: bool,
    /// Base units per source unit of a log2 histogram (1e-6 for a
    /// histogram of microseconds kept in seconds); 1 otherwise.
    scale: f64,
}

impl Histogram {
    /// An empty histogram with the given (strictly increasing) upper bounds.
    pub(crate) fn with_bounds(bounds: Arc<[f64]>) -> Histogram {
        let n = bounds.len() + 1;
        Histogram {
            bounds,
            counts: vec![0; n],
            sum: 0.0,
            count: 0,
            sum_exact: true,
            log2: false,
            scale: 1.0,
        }
    }

    #[cfg(test)]
    /// An empty log2 histogram (bounds grow with the buckets added).
    pub(crate) fn log2() -> Histogram {
        Self::log2_scaled(1.0)
    }

    /// An empty log2 histogram whose source values are multiplied by
    /// `scale` (bounds and sum), so that a histogram of microseconds is
    /// kept and exported in seconds.
    pub(crate) fn log2_scaled(scale: f64) -> Histogram {
        Histogram {
            bounds: log2_bounds(0),
            counts: vec![0],
            sum: 0.0,
            count: 0,
            sum_exact: true,
            log2: true,
            scale,
        }
    }

    /// Records one value.
    pub(crate) fn observe(&mut self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// Adds log2 bucket counts: `counts[0]` counts values below 1,
    /// `counts[i]` values in `[2^(i-1), 2^i)`. For integer values the
    /// inclusive upper bound of bucket `i` is `2^i - 1`, which is the bound
    /// kept. The sum is estimated from bucket midpoints (no exact sum exists).
    pub(crate) fn add_log2(&mut self, counts: &[u64]) {
        let n = counts.len().min(MAX_LOG2_BUCKETS);
        if n > self.bounds.len() {
            self.grow_log2(n);
        }
        for (i, &c) in counts[..n].iter().enumerate() {
            if c == 0 {
                continue;
            }
            self.counts[i] += c;
            self.count += c;
            self.sum += c as f64 * log2_midpoint(i) * self.scale;
        }
        self.sum_exact = false;
    }

    /// Adds buckets given by inclusive upper bound and count (a tool's
    /// printed histogram), in the source unit (see [`Self::log2_scaled`]).
    /// Counts land in the bucket whose bound is the smallest one at or
    /// above `high`; the sum is estimated.
    pub(crate) fn add_buckets(&mut self, buckets: impl IntoIterator<Item = (f64, f64, u64)>) {
        for (low, high, c) in buckets {
            if c == 0 {
                continue;
            }
            if self.log2 && high * self.scale > *self.bounds.last().unwrap_or(&-1.0) {
                let needed = (high.max(1.0).log2().floor() as usize + 2).min(MAX_LOG2_BUCKETS);
                self.grow_log2(needed);
            }
            let i = self.bounds.partition_point(|b| *b < high * self.scale);
            self.counts[i] += c;
            self.count += c;
            self.sum += c as f64 * (low + high) / 2.0 * self.scale;
        }
        self.sum_exact = false;
    }

    /// Adds bucket counts taken with the same bounds (a source's own
    /// histogram of one interval) and their exact sum; counts beyond this
    /// histogram's buckets go to its last one.
    pub(crate) fn add_counts(&mut self, counts: &[u64], sum: f64) {
        let last = self.counts.len() - 1;
        for (i, &c) in counts.iter().enumerate() {
            self.counts[i.min(last)] += c;
            self.count += c;
        }
        self.sum += sum;
    }

    fn grow_log2(&mut self, n: usize) {
        if n <= self.bounds.len() {
            return;
        }
        let inf = self.counts.pop().unwrap_or(0);
        self.counts.resize(n, 0);
        self.counts.push(inf);
        self.bounds = match self.scale == 1.0 {
            true => log2_bounds(n),
            false => log2_bounds(n).iter().map(|b| b * self.scale).collect(),
        };
    }

    /// The upper bounds.
    pub(crate) fn bounds(&self) -> &Arc<[f64]> {
        &self.bounds
    }

    /// The bucket counts (one more than the bounds).
    pub(crate) fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Sum of the observed values (estimated unless [`Self::sum_exact`]).
    pub(crate) fn sum(&self) -> f64 {
        self.sum
    }

    /// Whether the sum is exact rather than estimated from buckets.
    pub(crate) fn sum_exact(&self) -> bool {
        self.sum_exact
    }

    /// Number of observed values.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }
}

/// Midpoint of integer log2 bucket `i` (`[2^(i-1), 2^i - 1]`).
fn log2_midpoint(i: usize) -> f64 {
    if i == 0 {
        return 0.0;
    }
    let low = (1u128 << (i - 1)) as f64;
    let high = ((1u128 << i) - 1) as f64;
    (low + high) / 2.0
}

/// The first `n` log2 bounds `0, 1, 3, 7, ..., 2^(n-1) - 1`, shared.
pub(crate) fn log2_bounds(n: usize) -> Arc<[f64]> {
    static TABLE: OnceLock<Vec<Arc<[f64]>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=MAX_LOG2_BUCKETS)
            .map(|n| {
                (0..n)
                    .map(|i| ((1u128 << i) - 1) as f64)
                    .collect::<Vec<f64>>()
                    .into()
            })
            .collect()
    });
    table[n.min(MAX_LOG2_BUCKETS)].clone()
}

/// Default bounds for durations in seconds: 100µs to 100s, ×~2.5 steps.
pub(crate) fn default_seconds_bounds() -> Arc<[f64]> {
    Arc::from(
        &[
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
        ][..],
    )
}

/// Default bounds for sizes in bytes: 64 B to 1 GiB, ×4 steps.
pub(crate) fn default_bytes_bounds() -> Arc<[f64]> {
    (0..13)
        .map(|i| 64.0 * 4f64.powi(i))
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_log2_keeps_microseconds_in_seconds() {
        let mut h = Histogram::log2_scaled(1e-6);
        h.add_log2(&[0, 0, 2]);
        assert_eq!(&h.bounds()[..], &[0.0, 1e-6, 3e-6]);
        assert_eq!(h.counts(), &[0, 0, 2, 0]);
        assert!((h.sum() - 2.0 * 2.5e-6).abs() < 1e-12, "{}", h.sum());
        h.add_buckets([(4.0, 7.0, 1)]);
        assert_eq!(h.bounds().len(), 4);
        assert_eq!(h.counts()[3], 1);
    }

    #[test]
    fn observe_puts_values_at_or_below_bound() {
        let mut h = Histogram::with_bounds(Arc::from(&[1.0, 2.0][..]));
        for v in [0.5, 1.0, 1.5, 2.0, 3.0] {
            h.observe(v);
        }
        assert_eq!(h.counts(), &[2, 2, 1]);
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum(), 8.0);
        assert!(h.sum_exact());
    }

    #[test]
    fn counts_of_a_source_histogram_add_up() {
        let mut h = Histogram::with_bounds(Arc::from(&[1.0, 2.0][..]));
        h.add_counts(&[1, 0, 2], 7.5);
        h.add_counts(&[0, 1, 0, 4], 1.5);
        assert_eq!(h.counts(), &[1, 1, 6]);
        assert_eq!((h.count(), h.sum()), (8, 9.0));
        assert!(h.sum_exact());
    }

    #[test]
    fn log2_grows_and_keeps_bounds() {
        let mut h = Histogram::log2();
        h.add_log2(&[1, 2]);
        assert_eq!(&h.bounds()[..], &[0.0, 1.0]);
        h.add_log2(&[0, 0, 0, 4]);
        assert_eq!(&h.bounds()[..], &[0.0, 1.0, 3.0, 7.0]);
        assert_eq!(h.counts(), &[1, 2, 0, 4, 0]);
        assert_eq!(h.count(), 7);
        assert!(!h.sum_exact());
    }

    #[test]
    fn printed_buckets_land_on_their_high_bound() {
        let mut h = Histogram::log2();
        h.add_buckets([(0.0, 1.0, 3), (2.0, 3.0, 0), (4.0, 7.0, 5)]);
        assert_eq!(h.counts()[1], 3);
        assert_eq!(h.counts()[3], 5);
        assert_eq!(h.count(), 8);
    }
}
