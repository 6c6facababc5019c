//! RED metrics of every request, aggregated in the source: one histogram
//! of durations per (cgroup, side, method, status class, route, and the
//! server's address and port for calls), filled per request and handed to
//! the pipeline once per interval as samples of
//! `http_{server,client}_request_duration_seconds` (the aggregator keeps
//! them cumulative, enrichment adds the container and pod). Rate, errors
//! and duration all come from these histograms.

use std::{net::IpAddr, sync::Arc};

use rustc_hash::FxHashMap as HashMap;

use model::{
    labels::CGROUP_ID,
    metrics::{HTTP_CLIENT_DURATION_METRIC, HTTP_SERVER_DURATION_METRIC},
};

use crate::pipeline::{Sample, SampleValue};

/// The OpenTelemetry HTTP duration buckets, in seconds.
pub(crate) const BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Series one interval holds at most; requests of further series are
/// counted (`series_full`) and left out.
pub(crate) const MAX_SERIES: usize = 20_000;

/// What a series is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// cgroup v2 id of the process.
    pub(crate) cgroup: u64,
    /// A request made (client side) rather than served.
    pub(crate) client: bool,
    /// `GET`, ... (the kernel only follows a fixed set of methods).
    pub(crate) method: &'static str,
    /// `2xx`, ...
    pub(crate) class: &'static str,
    /// The bounded route.
    pub(crate) route: Arc<str>,
    /// The server called (client side only).
    pub(crate) server: Option<(IpAddr, u16)>,
}

#[derive(Debug, Default)]
struct Buckets {
    counts: [u64; BOUNDS.len() + 1],
    sum: f64,
}

/// The histograms of the current interval.
#[derive(Debug, Default)]
pub(crate) struct Red {
    series: HashMap<Key, Buckets>,
}

impl Red {
    /// Counts one request of `seconds`; false when the interval holds
    /// [`MAX_SERIES`] series already and `key` is new.
    pub(crate) fn observe(&mut self, key: Key, seconds: f64) -> bool {
        if self.series.len() >= MAX_SERIES && !self.series.contains_key(&key) {
            return false;
        }
        let b = self.series.entry(key).or_default();
        b.counts[BOUNDS.partition_point(|x| *x < seconds)] += 1;
        b.sum += seconds;
        true
    }

    /// Adds a histogram the kernel counted (`counts` per bucket of
    /// [`BOUNDS`] and one above, `sum` seconds); false as [`Red::observe`].
    pub(crate) fn add(&mut self, key: Key, counts: &[u64], sum: f64) -> bool {
        if self.series.len() >= MAX_SERIES && !self.series.contains_key(&key) {
            return false;
        }
        let b = self.series.entry(key).or_default();
        for (to, n) in b.counts.iter_mut().zip(counts) {
            *to += n;
        }
        b.sum += sum;
        true
    }

    /// The interval's histograms as samples; starts a new interval.
    pub(crate) fn drain(&mut self) -> Vec<Sample> {
        self.series
            .drain()
            .map(|(k, b)| {
                let mut labels = vec![
                    (CGROUP_ID, k.cgroup.to_string()),
                    (model::fields::HTTP_METHOD, k.method.to_owned()),
                    (model::fields::HTTP_STATUS_CLASS, k.class.to_owned()),
                    (model::fields::HTTP_ROUTE, k.route.to_string()),
                ];
                if let Some((addr, port)) = k.server {
                    labels.push((model::fields::SERVER_ADDRESS, addr.to_string()));
                    labels.push((model::fields::SERVER_PORT, port.to_string()));
                }
                Sample {
                    metric: match k.client {
                        true => HTTP_CLIENT_DURATION_METRIC,
                        false => HTTP_SERVER_DURATION_METRIC,
                    },
                    labels,
                    value: SampleValue::Histogram {
                        bounds: &BOUNDS,
                        counts: b.counts.to_vec(),
                        sum: b.sum,
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(route: &str, client: bool) -> Key {
        Key {
            cgroup: 7,
            client,
            method: "GET",
            class: "2xx",
            route: route.into(),
            server: client.then(|| ("10.0.0.1".parse().unwrap(), 80)),
        }
    }

    #[test]
    fn requests_fold_into_one_histogram_per_series() {
        let mut red = Red::default();
        for s in [0.001, 0.02, 0.02, 20.0] {
            assert!(red.observe(key("/a", false), s));
        }
        assert!(red.observe(key("/a", true), 0.3));
        let mut samples = red.drain();
        samples.sort_by_key(|s| s.metric);
        assert_eq!(samples.len(), 2);
        let server = &samples[1];
        assert_eq!(server.metric, HTTP_SERVER_DURATION_METRIC);
        assert_eq!(server.label("http.route"), Some("/a"));
        assert_eq!(server.label("cgroup.id"), Some("7"));
        assert_eq!(server.label("server.address"), None);
        let SampleValue::Histogram { counts, sum, .. } = &server.value else {
            panic!("{server:?}");
        };
        assert_eq!(counts.iter().sum::<u64>(), 4);
        assert_eq!((counts[0], counts[2], counts[14]), (1, 2, 1));
        assert!((sum - 20.041).abs() < 1e-9);
        assert_eq!(samples[0].label("server.port"), Some("80"));
        assert!(red.drain().is_empty());
    }

    #[test]
    fn kernel_histograms_add_to_the_same_series() {
        let mut red = Red::default();
        assert!(red.observe(key("/a", false), 0.001));
        let mut counts = [0u64; BOUNDS.len() + 1];
        counts[0] = 2;
        counts[14] = 1;
        assert!(red.add(key("/a", false), &counts, 12.0));
        let samples = red.drain();
        assert_eq!(samples.len(), 1);
        let SampleValue::Histogram { counts, sum, .. } = &samples[0].value else {
            panic!("{samples:?}");
        };
        assert_eq!((counts[0], counts[14]), (3, 1));
        assert!((sum - 12.001).abs() < 1e-9);
    }
}
